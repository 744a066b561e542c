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
/// command itself has exited.
pub(crate) fn log_in_background(pipe: impl Read + Send + 'static, stream: Stream, command: String) {
    let spawned = std::thread::Builder::new()
        .name(format!("voxd-{}", stream.name()))
        .spawn(move || {
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
    fn output_past_the_limit_is_drained_not_logged() {
        let mut text = b"first line\r\nsecond\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 3 * MAX_LOGGED_BYTES));
        text.extend(b"\ninvalid utf-8 \xff\n");
        let mut pipe = Cursor::new(text);
        log_stream(&mut pipe, Stream::Stdout, "action 1 (Test)").unwrap();
        assert_eq!(pipe.position() as usize, pipe.get_ref().len());
    }
}
