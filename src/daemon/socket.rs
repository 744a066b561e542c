//! The events socket: a Unix stream socket local clients connect to; each receives every
//! event line from the moment it connects.
//!
//! The socket is private to the daemon's user (mode 0600, created under a restrictive
//! umask so no other user can connect even between bind and chmod). Each client has its own
//! writer thread and a bounded queue, so no client can hold up the daemon or the others, and
//! none keeps anything once it is gone:
//! - a client whose queue fills (it stopped reading) is disconnected: its socket is shut
//!   down, which ends a write blocked on it at once;
//! - a write that blocks longer than the write timeout ends the client too;
//! - a client that hangs up while no events flow is noticed within a second;
//! - at most [`MAX_CLIENTS`] are served at once; a further one is closed as it connects.
//!
//! A client's thread ends in each case, closing the connection and taking the client off
//! the list (with the server's handle on its socket).

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::DaemonError;

/// Lines queued for one client before it counts as gone.
const CLIENT_QUEUE: usize = 1024;
/// Clients served at once: each costs a thread and a queue.
pub const MAX_CLIENTS: usize = 16;
/// How long one write to a client may block before the client counts as gone. Events are
/// short lines; a reader that cannot take one in this long is not reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often an idle client's connection is looked at for a hang-up.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// The limits above, as one value so the tests can shorten the times.
#[derive(Clone, Copy, Debug)]
struct Limits {
    max_clients: usize,
    write_timeout: Duration,
    idle_check: Duration,
}

const LIMITS: Limits = Limits {
    max_clients: MAX_CLIENTS,
    write_timeout: WRITE_TIMEOUT,
    idle_check: IDLE_CHECK,
};

/// One connected client, as the daemon holds it.
struct Client {
    id: u64,
    lines: Sender<Arc<str>>,
    /// The daemon's handle on the connection, to shut it down when the client is dropped.
    stream: UnixStream,
}

/// The clients being served, shared by the daemon, the accepting thread and each writer.
#[derive(Default)]
struct Clients {
    list: Mutex<Vec<Client>>,
    next_id: AtomicU64,
}

impl Clients {
    fn lock(&self) -> MutexGuard<'_, Vec<Client>> {
        self.list.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a client off the list; dropping it closes the daemon's handle on the socket.
    fn remove(&self, id: u64) {
        self.lock().retain(|client| client.id != id);
    }
}

/// A bound events socket; the file is removed when this is dropped.
pub struct EventSocket {
    path: PathBuf,
    clients: Arc<Clients>,
    closing: Arc<AtomicBool>,
}

impl EventSocket {
    /// Binds `path`, replacing a stale socket file left by a daemon that died; a socket
    /// another daemon still answers on is an error, as is any other file there.
    pub fn bind(path: &Path) -> Result<EventSocket, DaemonError> {
        Self::bind_with(path, LIMITS)
    }

    fn bind_with(path: &Path, limits: Limits) -> Result<EventSocket, DaemonError> {
        let error = |detail: String| DaemonError::Socket {
            path: path.to_path_buf(),
            detail,
        };
        let listener =
            bind_fresh(path, "another voxd is already serving events there").map_err(error)?;
        let clients = Arc::new(Clients::default());
        let closing = Arc::new(AtomicBool::new(false));
        let (accepting, stop) = (Arc::clone(&clients), Arc::clone(&closing));
        thread::Builder::new()
            .name("voxd-events-socket".into())
            .spawn(move || accept_clients(listener, &accepting, &stop, limits))
            .map_err(|e| error(format!("cannot start its thread: {e}")))?;
        Ok(EventSocket {
            path: path.to_path_buf(),
            clients,
            closing,
        })
    }

    /// Queues `line` (without its newline) for every connected client.
    pub fn send(&self, line: &str) {
        let line: Arc<str> = Arc::from(line);
        self.clients
            .lock()
            .retain(|client| match client.lines.try_send(Arc::clone(&line)) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    tracing::warn!("an events client stopped reading: disconnected");
                    // Ends a write blocked on it now rather than at its timeout.
                    let _ = client.stream.shutdown(Shutdown::Both);
                    false
                }
                Err(TrySendError::Disconnected(_)) => false,
            });
    }

    /// Clients connected and served now.
    #[cfg(test)]
    fn client_count(&self) -> usize {
        self.clients.lock().len()
    }
}

impl Drop for EventSocket {
    /// Ends the accepting thread (woken by one last connection), closes every client's
    /// queue so their threads finish the lines already queued, and removes the file.
    fn drop(&mut self) {
        self.closing.store(true, Ordering::Release);
        let _ = UnixStream::connect(&self.path);
        self.clients.lock().clear();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds a private socket at `path` (creating its folder), replacing a stale socket file
/// left by a process that died. A socket something still answers on is an error (`busy`
/// says what is there), as is any other file there.
pub(crate) fn bind_fresh(path: &Path, busy: &str) -> Result<UnixListener, String> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err("exists and is not a socket".into());
        }
        if UnixStream::connect(path).is_ok() {
            return Err(busy.into());
        }
        std::fs::remove_file(path).map_err(|e| format!("cannot remove: {e}"))?;
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create: {e}"))?;
    }
    bind_private(path).map_err(|e| e.to_string())
}

/// Binds with a umask that leaves the socket to its owner, then sets 0600 explicitly
/// (macOS ignores the umask for sockets; Linux honours both).
fn bind_private(path: &Path) -> std::io::Result<UnixListener> {
    // SAFETY: umask only swaps the process's file-creation mask; restored right after.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    // SAFETY: as above.
    unsafe { libc::umask(old) };
    let listener = bound?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

fn accept_clients(
    listener: UnixListener,
    clients: &Arc<Clients>,
    closing: &AtomicBool,
    limits: Limits,
) {
    for stream in listener.incoming() {
        if closing.load(Ordering::Acquire) {
            return;
        }
        match stream {
            Ok(stream) => admit(stream, clients, limits),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => tracing::warn!("events socket: accept failed: {e}"),
        }
    }
}

/// Serves `stream` on a thread of its own, or closes it when every place is taken.
fn admit(stream: UnixStream, clients: &Arc<Clients>, limits: Limits) {
    let mut list = clients.lock();
    if list.len() >= limits.max_clients {
        drop(list);
        tracing::warn!(
            "events socket: {} clients are connected, the most served at once; another was \
             refused",
            limits.max_clients
        );
        return;
    }
    let prepared = stream
        .set_write_timeout(Some(limits.write_timeout))
        .and_then(|()| stream.try_clone());
    let handle = match prepared {
        Ok(handle) => handle,
        Err(e) => {
            tracing::warn!("events socket: cannot serve a client: {e}");
            return;
        }
    };
    let id = clients.next_id.fetch_add(1, Ordering::Relaxed);
    let (lines, queued) = crossbeam_channel::bounded::<Arc<str>>(CLIENT_QUEUE);
    let mine = Arc::clone(clients);
    let spawned = thread::Builder::new()
        .name("voxd-events-client".into())
        .spawn(move || {
            serve(stream, &queued, limits.idle_check);
            mine.remove(id);
        });
    match spawned {
        Ok(_) => {
            tracing::debug!("events client connected");
            list.push(Client {
                id,
                lines,
                stream: handle,
            });
        }
        Err(e) => tracing::warn!("events socket: cannot serve a client: {e}"),
    }
}

/// Writes each queued line to the client until the queue is closed, a write fails (the
/// client left, was shut down, or blocked past the write timeout) or the client hangs up.
fn serve(mut stream: UnixStream, queued: &Receiver<Arc<str>>, idle_check: Duration) {
    loop {
        match queued.recv_timeout(idle_check) {
            Ok(line) => {
                let written = stream
                    .write_all(line.as_bytes())
                    .and_then(|()| stream.write_all(b"\n"));
                if written.is_err() {
                    return;
                }
            }
            Err(RecvTimeoutError::Timeout) if hung_up(&mut stream) => return,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Whether the client has closed its end: a read that does not wait finds the end of the
/// stream. Anything the client sent is read and ignored.
fn hung_up(stream: &mut UnixStream) -> bool {
    if stream.set_nonblocking(true).is_err() {
        return true;
    }
    let mut scrap = [0u8; 256];
    let gone = match stream.read(&mut scrap) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted),
    };
    gone || stream.set_nonblocking(false).is_err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::time::{Duration, Instant};

    fn connect(path: &Path, socket: &EventSocket) -> BufReader<UnixStream> {
        let before = socket.client_count();
        let stream = UnixStream::connect(path).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // Wait until the acceptor has registered it, so no line is sent before.
        let deadline = Instant::now() + Duration::from_secs(10);
        while socket.client_count() == before && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        BufReader::new(stream)
    }

    #[test]
    fn every_client_gets_every_line_and_the_socket_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/events.sock");
        let socket = EventSocket::bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mut a = connect(&path, &socket);
        let mut b = connect(&path, &socket);
        socket.send("{\"event\":\"one\"}");
        socket.send("{\"event\":\"two\"}");
        for reader in [&mut a, &mut b] {
            let mut lines = Vec::new();
            for _ in 0..2 {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                lines.push(line);
            }
            assert_eq!(lines, ["{\"event\":\"one\"}\n", "{\"event\":\"two\"}\n"]);
        }
        drop(socket);
        assert!(!path.exists());
    }

    /// Short times, so that the tests do not wait seconds for a timeout.
    const TEST_LIMITS: Limits = Limits {
        max_clients: 3,
        write_timeout: Duration::from_millis(300),
        idle_check: Duration::from_millis(50),
    };

    /// Waits until `socket` serves `n` clients; false if that does not happen within 20 s.
    fn wait_for_clients(socket: &EventSocket, n: usize) -> bool {
        let deadline = Instant::now() + Duration::from_secs(20);
        while socket.client_count() != n {
            if Instant::now() > deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Entries of a /proc/self folder: the process's open file descriptors or threads.
    #[cfg(target_os = "linux")]
    fn proc_entries(folder: &str) -> usize {
        std::fs::read_dir(format!("/proc/self/{folder}"))
            .unwrap()
            .count()
    }

    /// Runs test `name` of this module alone in a new process of this test binary, so that
    /// counting the process's threads and file descriptors sees only that test's. Returns
    /// true in that child, where the test's body is to run.
    #[cfg(target_os = "linux")]
    fn alone_in_a_process(name: &str) -> bool {
        const CHILD: &str = "VOXD_SOCKET_TEST_CHILD";
        if std::env::var_os(CHILD).is_some() {
            return true;
        }
        let test = format!("daemon::socket::tests::{name}");
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([test.as_str(), "--exact", "--test-threads=1", "--nocapture"])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "{test} in its own process: {}\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        false
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn clients_that_never_read_are_dropped_with_their_threads_and_descriptors() {
        if !alone_in_a_process(
            "clients_that_never_read_are_dropped_with_their_threads_and_descriptors",
        ) {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.sock");
        let socket = EventSocket::bind_with(&path, TEST_LIMITS).unwrap();
        let (fds, threads) = (proc_entries("fd"), proc_entries("task"));
        // Silent clients, kept connected: their socket buffers fill, then their queues.
        let silent: Vec<UnixStream> = (0..TEST_LIMITS.max_clients)
            .map(|_| UnixStream::connect(&path).unwrap())
            .collect();
        assert!(wait_for_clients(&socket, silent.len()));
        let line = "x".repeat(1000);
        for _ in 0..4 * CLIENT_QUEUE {
            socket.send(&line);
        }
        assert!(
            wait_for_clients(&socket, 0),
            "{} clients left",
            socket.client_count()
        );
        // Every writer thread has ended and every descriptor of the daemon's side is closed:
        // what is left open is the test's own ends of the connections.
        let deadline = Instant::now() + Duration::from_secs(20);
        while proc_entries("task") > threads && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(proc_entries("task"), threads, "threads");
        assert_eq!(proc_entries("fd"), fds + silent.len(), "file descriptors");
        drop(silent);

        // The same for clients that never read while no events come: a write blocked on a
        // full buffer ends at the write timeout, not at the next event.
        let silent: Vec<UnixStream> = (0..2)
            .map(|_| UnixStream::connect(&path).unwrap())
            .collect();
        assert!(wait_for_clients(&socket, 2));
        for _ in 0..CLIENT_QUEUE / 2 {
            socket.send(&line);
        }
        assert!(
            wait_for_clients(&socket, 0),
            "{} clients left",
            socket.client_count()
        );
        drop(silent);
        let deadline = Instant::now() + Duration::from_secs(20);
        while proc_entries("task") > threads && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(proc_entries("task"), threads, "threads");
        assert_eq!(proc_entries("fd"), fds, "file descriptors");
    }

    #[test]
    fn clients_beyond_the_limit_are_closed_and_those_served_keep_their_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.sock");
        let socket = EventSocket::bind_with(&path, TEST_LIMITS).unwrap();
        let mut served: Vec<_> = (0..TEST_LIMITS.max_clients)
            .map(|_| connect(&path, &socket))
            .collect();
        for _ in 0..2 {
            let mut extra = UnixStream::connect(&path).unwrap();
            extra
                .set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let mut got = Vec::new();
            // The end of the stream, at once: the daemon closed it.
            assert_eq!(extra.read_to_end(&mut got).unwrap(), 0);
        }
        assert_eq!(socket.client_count(), TEST_LIMITS.max_clients);
        socket.send("{\"event\":\"one\"}");
        for reader in &mut served {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert_eq!(line, "{\"event\":\"one\"}\n");
        }
        // A client that leaves while nothing is sent frees its place.
        drop(served.pop());
        assert!(wait_for_clients(&socket, TEST_LIMITS.max_clients - 1));
        let _again = connect(&path, &socket);
        assert_eq!(socket.client_count(), TEST_LIMITS.max_clients);
    }

    #[test]
    fn a_live_socket_is_not_taken_over_and_a_stale_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.sock");
        let _first = EventSocket::bind(&path).unwrap();
        let err = EventSocket::bind(&path).err().unwrap().to_string();
        assert!(err.contains("another voxd"), "{err}");
        // A socket file nobody answers on (its daemon died without cleaning up).
        drop(UnixListener::bind(dir.path().join("stale.sock")).unwrap());
        assert!(EventSocket::bind(&dir.path().join("stale.sock")).is_ok());
        let file = dir.path().join("plain");
        std::fs::write(&file, "x").unwrap();
        let err = EventSocket::bind(&file).err().unwrap().to_string();
        assert!(err.contains("not a socket"), "{err}");
    }
}
