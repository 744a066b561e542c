//! Where events go: standard output (JSON lines, or text for a person at a terminal), an
//! appended file, and the events socket. A failing output is reported once and dropped;
//! the daemon goes on.

use std::fs::File;
use std::io::{IsTerminal, LineWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::event::Event;
use super::socket::EventSocket;
use super::DaemonError;
use crate::config::StdoutFormat;

/// Where to send events.
#[derive(Clone, Debug, Default)]
pub struct OutputOptions {
    pub stdout: StdoutFormat,
    pub file: Option<PathBuf>,
    pub socket: Option<PathBuf>,
}

/// The open outputs.
pub struct EventOutput {
    started: Instant,
    stdout: Option<Stdout>,
    file: Option<(PathBuf, LineWriter<File>)>,
    socket: Option<EventSocket>,
}

enum Stdout {
    Json,
    Text(TextLine),
}

impl EventOutput {
    /// Opens the file (appending, private to the user) and binds the socket. `started`
    /// is time zero of every event's `clock_ms`.
    pub fn open(options: &OutputOptions, started: Instant) -> Result<EventOutput, DaemonError> {
        let stdout = match options.stdout {
            StdoutFormat::Off => None,
            StdoutFormat::Json => Some(Stdout::Json),
            StdoutFormat::Text => Some(Stdout::Text(TextLine::default())),
            StdoutFormat::Auto if std::io::stdout().is_terminal() => {
                Some(Stdout::Text(TextLine::default()))
            }
            StdoutFormat::Auto => Some(Stdout::Json),
        };
        let file = options
            .file
            .as_deref()
            .map(|path| open_log(path).map(|f| (path.to_path_buf(), f)))
            .transpose()?;
        let socket = options
            .socket
            .as_deref()
            .map(EventSocket::bind)
            .transpose()?;
        Ok(EventOutput {
            started,
            stdout,
            file,
            socket,
        })
    }

    /// Makes now time zero of `clock_ms`: the moment listening began.
    pub fn restart_clock(&mut self) {
        self.started = Instant::now();
    }

    /// Milliseconds since the start.
    pub fn clock_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Sends `event` to every output.
    pub fn emit(&mut self, event: &Event) {
        let line = event.to_json(self.clock_ms()).to_string();
        match &mut self.stdout {
            Some(Stdout::Json) => {
                let mut out = std::io::stdout().lock();
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    // Standard output is gone (a closed pipe): the other outputs go on.
                    self.stdout = None;
                }
            }
            Some(Stdout::Text(state)) => {
                if let Some(text) = state.render(event) {
                    let mut out = std::io::stdout().lock();
                    if out
                        .write_all(text.as_bytes())
                        .and_then(|()| out.flush())
                        .is_err()
                    {
                        self.stdout = None;
                    }
                }
            }
            None => {}
        }
        if let Some((path, file)) = &mut self.file {
            if let Err(e) = writeln!(file, "{line}") {
                tracing::error!("cannot write events to {}: {e}; stopped writing there", {
                    path.display()
                });
                self.file = None;
            }
        }
        if let Some(socket) = &self.socket {
            socket.send(&line);
        }
    }
}

fn open_log(path: &Path) -> Result<LineWriter<File>, DaemonError> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| DaemonError::EventsFile {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(LineWriter::new(file))
}

/// Events for a person: the caption line is redrawn while partial and kept once final;
/// commands and problems get a line each.
#[derive(Default)]
struct TextLine {
    /// A partial caption is on screen (the cursor is at the end of its line).
    partial_shown: bool,
}

/// Clears the current terminal line.
const CLEAR_LINE: &str = "\r\x1b[2K";

impl TextLine {
    fn render(&mut self, event: &Event) -> Option<String> {
        let line = match event {
            Event::Partial { text, .. } => {
                self.partial_shown = true;
                return Some(format!("{CLEAR_LINE}\x1b[2m{text}\x1b[0m"));
            }
            Event::Final { text, .. } => text.clone(),
            Event::Ready {
                mode,
                model,
                intents,
                audio,
            } => format!(
                "voxd: listening for {mode} ({intents} intents, model {model}, audio {audio}); \
                 Ctrl-C stops"
            ),
            Event::Intent {
                end_ms,
                intent,
                slots,
                text,
                ..
            } => {
                let slots: Vec<String> = slots.iter().map(|(k, v)| format!("{k}={v}")).collect();
                format!(
                    "[{}] {intent} {} \u{201c}{text}\u{201d}",
                    seconds(*end_ms),
                    slots.join(" ")
                )
            }
            Event::Wake { end_ms, alone, .. } => format!(
                "[{}] wake phrase{}",
                seconds(*end_ms),
                if *alone { ": listening" } else { "" }
            ),
            Event::NotRecognized {
                end_ms,
                reason,
                text,
                ..
            } => {
                let reason = serde_json::to_value(reason).unwrap_or_default();
                let heard = if text.is_empty() {
                    String::new()
                } else {
                    format!(" (closest: \u{201c}{text}\u{201d})")
                };
                format!(
                    "[{}] not a command: {}{heard}",
                    seconds(*end_ms),
                    reason.as_str().unwrap_or("?")
                )
            }
            Event::Action { action, .. } => {
                let status = action.detail.get("status").and_then(|s| s.as_str());
                match status {
                    Some("started") | Some("finished") | Some("notified") | None => return None,
                    Some(status) => format!(
                        "  action {} #{}: {status} {}",
                        action.intent,
                        action.id,
                        serde_json::Value::Object(action.detail.clone())
                    ),
                }
            }
            Event::Reply { end_ms, text, .. } => {
                format!("[{}] reply: {}", seconds(*end_ms), text.trim())
            }
            Event::Reload { outcome, error } => match error {
                Some(e) => format!("voxd: reload {outcome}: {e}"),
                None => format!("voxd: reload {outcome}"),
            },
            Event::Capture { detail } => format!("voxd: audio {detail}"),
            Event::Remote { server, kind } => {
                let detail = serde_json::to_value(kind).unwrap_or_default();
                format!("voxd: speech server {server} {detail}")
            }
            Event::Overrun { dropped } => format!("voxd: audio overrun, {dropped} frames lost"),
            Event::Error { message } => format!("voxd: error: {message}"),
            Event::Stopped { audio_ms, .. } => {
                format!("voxd: stopped after {} of audio", seconds(*audio_ms))
            }
            Event::SpeechStart { .. } | Event::SpeechEnd { .. } => return None,
        };
        let prefix = if std::mem::take(&mut self.partial_shown) {
            CLEAR_LINE
        } else {
            ""
        };
        Some(format!("{prefix}{line}\n"))
    }
}

fn seconds(ms: u64) -> String {
    format!("{}.{} s", ms / 1000, ms % 1000 / 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_final_replaces_the_partial_line() {
        let mut t = TextLine::default();
        let partial = Event::Partial {
            text: "and so my".into(),
            start_ms: 0,
            end_ms: 900,
            heard_ms: 900,
        };
        let fin = Event::Final {
            text: "And so, my fellow Americans,".into(),
            start_ms: 0,
            end_ms: 1500,
            words: Vec::new(),
            heard_ms: 1500,
        };
        assert!(t.render(&partial).unwrap().starts_with(CLEAR_LINE));
        assert_eq!(
            t.render(&fin).unwrap(),
            format!("{CLEAR_LINE}And so, my fellow Americans,\n")
        );
        assert_eq!(t.render(&fin).unwrap(), "And so, my fellow Americans,\n");
    }

    #[test]
    fn the_events_file_is_appended_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        std::fs::write(&path, "{\"event\":\"earlier\"}\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let options = OutputOptions {
            stdout: StdoutFormat::Off,
            file: Some(path.clone()),
            socket: None,
        };
        let mut out = EventOutput::open(&options, Instant::now()).unwrap();
        out.emit(&Event::Overrun { dropped: 3 });
        drop(out);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].contains("\"dropped\":3"));
        let fresh = dir.path().join("new.jsonl");
        let options = OutputOptions {
            file: Some(fresh.clone()),
            ..options
        };
        drop(EventOutput::open(&options, Instant::now()).unwrap());
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
