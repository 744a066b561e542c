//! Desktop notifications through notify-rust, on a thread of their own: a D-Bus call can
//! wait for a slow or missing notification server, and nothing else may wait with it.

use crossbeam_channel::TrySendError;

use super::event::{ActionEventKind, EventSink};
use crate::util::background::Background;

/// Notifications waiting for the notification thread; past this they are dropped and
/// reported, so a hung notification server cannot hold an unbounded backlog.
pub const NOTIFY_QUEUE: usize = 16;

/// The name notifications carry as their application.
#[cfg(feature = "notifications")]
const APP_NAME: &str = "voxd";

/// An intent's notification, with the action it belongs to.
#[derive(Debug)]
struct Notification {
    id: u64,
    intent: String,
    text: String,
}

/// The handle of the notification thread; the thread ends when this is dropped.
#[derive(Debug)]
pub(super) struct Notifier {
    worker: Background<Notification>,
    events: EventSink,
}

impl Notifier {
    pub fn start(events: EventSink) -> std::io::Result<Notifier> {
        let thread_events = events.clone();
        let worker = Background::start("voxd-notify", NOTIFY_QUEUE, move |n: Notification| {
            let kind = match show(&n.text, None) {
                Ok(()) => ActionEventKind::Notified { text: n.text },
                Err(error) => ActionEventKind::NotifyFailed { error },
            };
            thread_events.emit(n.id, &n.intent, kind);
        })?;
        Ok(Notifier { worker, events })
    }

    /// Queues a notification; never blocks.
    pub fn send(&self, id: u64, intent: &str, text: String) {
        let notification = Notification {
            id,
            intent: intent.to_string(),
            text,
        };
        let error = match self.worker.offer(notification) {
            Ok(()) => return,
            Err(TrySendError::Full(_)) => format!(
                "{NOTIFY_QUEUE} notifications are already waiting for the notification server"
            ),
            Err(TrySendError::Disconnected(_)) => "the notification thread has stopped".into(),
        };
        self.events
            .emit(id, intent, ActionEventKind::NotifyFailed { error });
    }
}

/// Shows a desktop notification: `summary`, and `body` under it when there is one.
#[cfg(feature = "notifications")]
pub fn show(summary: &str, body: Option<&str>) -> Result<(), String> {
    let mut notification = notify_rust::Notification::new();
    notification.appname(APP_NAME).summary(summary);
    if let Some(body) = body {
        notification.body(body);
    }
    notification
        .show()
        .map(drop)
        .map_err(|error| format!("desktop notification: {error}"))
}

/// A build without desktop notifications says so each time one is asked for.
#[cfg(not(feature = "notifications"))]
pub fn show(_summary: &str, _body: Option<&str>) -> Result<(), String> {
    Err(
        "desktop notification: this voxd was built without them (cargo feature \
         `notifications`)"
            .to_string(),
    )
}
