//! Desktop notifications through notify-rust, on a thread of their own: a D-Bus call can
//! wait for a slow or missing notification server, and nothing else may wait with it.

use crossbeam_channel::{Sender, TrySendError};

use super::event::{ActionEventKind, EventSink};

/// Notifications waiting for the notification thread; past this they are dropped and
/// reported, so a hung notification server cannot hold an unbounded backlog.
pub const NOTIFY_QUEUE: usize = 16;

/// The name notifications carry as their application.
const APP_NAME: &str = "voxd";

struct Notification {
    id: u64,
    intent: String,
    text: String,
}

/// The handle of the notification thread; the thread ends when this is dropped.
#[derive(Debug)]
pub(super) struct Notifier {
    queue: Sender<Notification>,
    events: EventSink,
}

impl Notifier {
    pub fn start(events: EventSink) -> std::io::Result<Notifier> {
        let (queue, waiting) = crossbeam_channel::bounded::<Notification>(NOTIFY_QUEUE);
        let thread_events = events.clone();
        std::thread::Builder::new()
            .name("voxd-notify".into())
            .spawn(move || {
                for notification in waiting {
                    let kind = match show(&notification.text) {
                        Ok(()) => ActionEventKind::Notified {
                            text: notification.text,
                        },
                        Err(error) => ActionEventKind::NotifyFailed { error },
                    };
                    thread_events.emit(notification.id, &notification.intent, kind);
                }
            })?;
        Ok(Notifier { queue, events })
    }

    /// Queues a notification; never blocks.
    pub fn send(&self, id: u64, intent: &str, text: String) {
        let notification = Notification {
            id,
            intent: intent.to_string(),
            text,
        };
        let error = match self.queue.try_send(notification) {
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

/// Shows `text` as the notification's summary.
fn show(text: &str) -> Result<(), String> {
    notify_rust::Notification::new()
        .appname(APP_NAME)
        .summary(text)
        .show()
        .map(drop)
        .map_err(|error| format!("desktop notification: {error}"))
}
