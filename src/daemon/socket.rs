//! The events socket: a Unix stream socket any number of local clients connect to; each
//! receives every event line from the moment it connects.
//!
//! The socket is private to the daemon's user (mode 0600, created under a restrictive
//! umask so no other user can connect even between bind and chmod). Each client has its own
//! writer thread and a bounded queue: a client that stops reading is disconnected when its
//! queue is full, so it can never hold up the daemon or the other clients.

use std::io::{ErrorKind, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use crossbeam_channel::{Sender, TrySendError};

use super::DaemonError;

/// Lines queued for one client before it counts as gone.
const CLIENT_QUEUE: usize = 1024;

/// A bound events socket; the file is removed when this is dropped.
pub struct EventSocket {
    path: PathBuf,
    clients: Arc<Mutex<Vec<Sender<Arc<str>>>>>,
    closing: Arc<AtomicBool>,
}

impl EventSocket {
    /// Binds `path`, replacing a stale socket file left by a daemon that died; a socket
    /// another daemon still answers on is an error, as is any other file there.
    pub fn bind(path: &Path) -> Result<EventSocket, DaemonError> {
        let error = |detail: String| DaemonError::Socket {
            path: path.to_path_buf(),
            detail,
        };
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(error("exists and is not a socket".into()));
            }
            if UnixStream::connect(path).is_ok() {
                return Err(error("another voxd is already serving events there".into()));
            }
            std::fs::remove_file(path).map_err(|e| error(format!("cannot remove: {e}")))?;
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| error(format!("cannot create: {e}")))?;
        }
        let listener = bind_private(path).map_err(|e| error(e.to_string()))?;
        let clients = Arc::new(Mutex::new(Vec::new()));
        let closing = Arc::new(AtomicBool::new(false));
        let (accepting, stop) = (Arc::clone(&clients), Arc::clone(&closing));
        thread::Builder::new()
            .name("voxd-events-socket".into())
            .spawn(move || accept_clients(listener, accepting, &stop))
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
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        clients.retain(|client| match client.try_send(Arc::clone(&line)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                tracing::warn!("an events client stopped reading: disconnected");
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        });
    }
}

impl Drop for EventSocket {
    /// Ends the accepting thread (woken by one last connection), closes every client's
    /// queue so their threads finish the lines already queued, and removes the file.
    fn drop(&mut self) {
        self.closing.store(true, Ordering::Release);
        let _ = UnixStream::connect(&self.path);
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        let _ = std::fs::remove_file(&self.path);
    }
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
    clients: Arc<Mutex<Vec<Sender<Arc<str>>>>>,
    closing: &AtomicBool,
) {
    for stream in listener.incoming() {
        if closing.load(Ordering::Acquire) {
            return;
        }
        let stream = match stream {
            Ok(s) => s,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!("events socket: accept failed: {e}");
                continue;
            }
        };
        let (lines, queued) = crossbeam_channel::bounded::<Arc<str>>(CLIENT_QUEUE);
        let spawned = thread::Builder::new()
            .name("voxd-events-client".into())
            .spawn(move || {
                let mut stream = stream;
                for line in queued {
                    let written = stream
                        .write_all(line.as_bytes())
                        .and_then(|()| stream.write_all(b"\n"));
                    if written.is_err() {
                        return;
                    }
                }
            });
        match spawned {
            Ok(_) => {
                tracing::debug!("events client connected");
                clients
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(lines);
            }
            Err(e) => tracing::warn!("events socket: cannot serve a client: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::time::{Duration, Instant};

    fn connect(path: &Path, socket: &EventSocket) -> BufReader<UnixStream> {
        let before = socket.clients.lock().unwrap().len();
        let stream = UnixStream::connect(path).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        // Wait until the acceptor has registered it, so no line is sent before.
        let deadline = Instant::now() + Duration::from_secs(10);
        while socket.clients.lock().unwrap().len() == before && Instant::now() < deadline {
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
