//! A command's stdout and stderr, line by line into the log, up to a size. Actions use it,
//! and so does the daemon's speech command.

use std::io::{self, BufRead, BufReader, Read};

/// Bytes of one stream of one command that reach the log; the rest is read and counted
/// (so the command never blocks on a full pipe) but not logged: a chatty command must not
/// flood the daemon's log.
pub const MAX_LOGGED_BYTES: usize = 16 * 1024;

#[derive(Clone, Copy, Debug)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Reads `pipe` to its end on a thread of its own, logging what the command wrote with
/// `command` (e.g. "action 3 (LightOn)") before each line. The thread is not joined: a
/// background process the command left behind may hold the pipe open long after the
/// command itself has exited. [`Logging::wait`] waits a bounded time for the end instead.
pub(crate) fn log_in_background(
    pipe: impl Read + Send + 'static,
    stream: Stream,
    command: String,
) -> Logging {
    // Dropped by the thread when it ends: the receiver then sees the channel closed.
    let (ended, end) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name(format!("voxd-{}", stream.name()))
        .spawn(move || {
            let _ended = ended;
            if let Err(error) = log_stream(pipe, stream, &command) {
                tracing::warn!("reading the {} of {command}: {error}", stream.name());
            }
        });
    // Without the thread the pipe is closed here, and a command that writes gets EPIPE.
    if let Err(error) = spawned {
        tracing::warn!(
            "cannot start a thread to log the {}: {error}",
            stream.name()
        );
    }
    Logging { end }
}

/// The logging of one stream, from [`log_in_background`].
pub(crate) struct Logging {
    end: std::sync::mpsc::Receiver<()>,
}

impl Logging {
    /// Waits until the stream was read to its end, or `deadline` passed: a command that
    /// exited has written everything, and its last lines should reach the log before its
    /// `finished` event (and before the daemon exits), unless something it started still
    /// holds the pipe.
    /// True when the stream ended.
    pub(crate) fn wait(&self, deadline: std::time::Instant) -> bool {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        matches!(
            self.end.recv_timeout(left),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
        )
    }
}

fn log_stream(pipe: impl Read, stream: Stream, command: &str) -> io::Result<()> {
    let mut reader = BufReader::new(pipe);
    let mut logged = 0;
    let mut line = Vec::new();
    while logged < MAX_LOGGED_BYTES {
        line.clear();
        // The budget also bounds one line without a newline.
        let budget = (MAX_LOGGED_BYTES - logged) as u64;
        let read = (&mut reader).take(budget).read_until(b'\n', &mut line)?;
        if read == 0 {
            return Ok(());
        }
        logged += read;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        match stream {
            Stream::Stdout => tracing::info!(stream = stream.name(), "{command}: {text}"),
            Stream::Stderr => tracing::warn!(stream = stream.name(), "{command}: {text}"),
        }
    }
    let unlogged = io::copy(&mut reader, &mut io::sink())?;
    if unlogged > 0 {
        tracing::warn!(
            "the {} of {command} went on for {unlogged} bytes past the {MAX_LOGGED_BYTES} \
             logged",
            stream.name()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    #[test]
    fn waiting_for_the_output_ends_with_it_or_at_the_deadline() {
        let run = |script: &str| {
            let mut child = std::process::Command::new("sh")
                .args(["-c", script])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            let logging = log_in_background(stdout, Stream::Stdout, "test".to_string());
            child.wait().unwrap();
            logging
        };
        let soon = || std::time::Instant::now() + std::time::Duration::from_millis(200);
        // The command's last line is read once it has exited.
        assert!(run("echo one; echo two").wait(soon()));
        // A process it left behind keeps the pipe open: the wait gives up.
        assert!(!run("sleep 5 & echo started").wait(soon()));
    }

    #[test]
    fn output_past_the_limit_is_drained_not_logged() {
        let mut text = b"first line\r\nsecond\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 3 * MAX_LOGGED_BYTES));
        text.extend(b"\ninvalid utf-8 \xff\n");
        let mut pipe = Cursor::new(text);
        log_stream(&mut pipe, Stream::Stdout, "action 1 (Test)").unwrap();
        assert_eq!(pipe.position() as usize, pipe.get_ref().len());
    }
}
