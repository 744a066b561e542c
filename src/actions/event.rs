//! What happened to an action, as values the daemon turns into JSON lines, and the bounded
//! channel that carries them.

use crossbeam_channel::{Receiver, Sender, TrySendError};
use serde::Serialize;

/// Events waiting for the daemon. Past this the newest are dropped (and logged) rather than
/// letting a daemon that stopped reading block the action threads.
pub const EVENT_QUEUE: usize = 1024;

/// One thing that happened to the action of one request.
///
/// Serialised flat: `{"id":3,"intent":"LightOn","event":"finished","exit_code":0,...}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActionEvent {
    /// The request's id, as [`super::ActionRunner::submit`] returned it; every event of one
    /// request carries the same id.
    pub id: u64,
    pub intent: String,
    #[serde(flatten)]
    pub kind: ActionEventKind,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ActionEventKind {
    /// The command's process is running.
    Started { pid: u32 },
    /// The command exited by itself: its exit code, or the signal that ended it.
    Finished {
        exit_code: Option<i32>,
        signal: Option<i32>,
        duration_ms: u64,
    },
    /// The command ran past its timeout; its process group was killed.
    TimedOut { timeout_ms: u64, duration_ms: u64 },
    /// The intent's previous run started `since_last_ms` ago, within its cooldown: nothing
    /// was run or shown.
    SkippedCooldown {
        cooldown_ms: u64,
        since_last_ms: u64,
    },
    /// Every command slot and every queue place was taken: nothing was run or shown.
    RefusedBusy { max_concurrent: usize, queue: usize },
    /// The command could not be started (no such program, not executable, a slot missing).
    FailedToStart { error: String },
    /// Waiting for the command failed; its process group was killed.
    WaitFailed { error: String },
    /// The notification server accepted the notification.
    Notified { text: String },
    /// The notification could not be shown (no session bus, no server, too many waiting).
    NotifyFailed { error: String },
}

/// The sending end, shared by the runner's threads.
#[derive(Clone, Debug)]
pub(super) struct EventSink {
    sender: Sender<ActionEvent>,
}

impl EventSink {
    pub fn new() -> (EventSink, Receiver<ActionEvent>) {
        let (sender, receiver) = crossbeam_channel::bounded(EVENT_QUEUE);
        (EventSink { sender }, receiver)
    }

    /// Logs the event and passes it on; never blocks.
    pub fn emit(&self, id: u64, intent: &str, kind: ActionEventKind) {
        log_event(id, intent, &kind);
        let event = ActionEvent {
            id,
            intent: intent.to_string(),
            kind,
        };
        match self.sender.try_send(event) {
            Ok(()) | Err(TrySendError::Disconnected(_)) => {}
            Err(TrySendError::Full(event)) => tracing::warn!(
                id,
                intent,
                "action event dropped: {EVENT_QUEUE} events are waiting to be read: {:?}",
                event.kind
            ),
        }
    }
}

/// The log line of every event, so a daemon run without JSON output still shows them.
fn log_event(id: u64, intent: &str, kind: &ActionEventKind) {
    match kind {
        ActionEventKind::Started { .. }
        | ActionEventKind::Finished {
            exit_code: Some(0), ..
        }
        | ActionEventKind::Notified { .. } => tracing::info!(id, intent, "action: {kind:?}"),
        _ => tracing::warn!(id, intent, "action: {kind:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_flat_with_snake_case_names() {
        let event = ActionEvent {
            id: 3,
            intent: "LightOn".into(),
            kind: ActionEventKind::Finished {
                exit_code: Some(0),
                signal: None,
                duration_ms: 12,
            },
        };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"id":3,"intent":"LightOn","event":"finished","exit_code":0,"signal":null,"duration_ms":12}"#
        );
        let skipped = ActionEvent {
            id: 4,
            intent: "LightOn".into(),
            kind: ActionEventKind::SkippedCooldown {
                cooldown_ms: 500,
                since_last_ms: 20,
            },
        };
        let json = serde_json::to_string(&skipped).unwrap();
        assert!(json.contains(r#""event":"skipped_cooldown""#), "{json}");
    }

    #[test]
    fn a_full_queue_drops_events_instead_of_blocking() {
        let (sink, receiver) = EventSink::new();
        for id in 0..EVENT_QUEUE as u64 + 5 {
            sink.emit(id, "X", ActionEventKind::Started { pid: 1 });
        }
        assert_eq!(receiver.len(), EVENT_QUEUE);
        drop(receiver);
        sink.emit(0, "X", ActionEventKind::Started { pid: 1 });
    }
}
