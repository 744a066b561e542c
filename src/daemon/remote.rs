//! Recognition on another machine (`[model] remote`): the utterances go to a speech-to-text
//! server, and the transcript that comes back is read against the grammar here, where the
//! wake phrase and the actions stay.
//!
//! The daemon knows the server only as a [`SpeechService`]; the Wyoming client that
//! implements it (`wyoming::client`) sits beside the Wyoming server, above the daemon.
//!
//! A server that cannot be reached does not lose an utterance silently: the utterance is
//! retried with back-off for `retry` (`[model] remote_retry_s`), `remote` events saying
//! `lost`, `retrying` and `resumed` as a microphone's `capture` events do; past the window
//! it is given up (`gave_up`) and the recogniser reports it as an error. Utterances that
//! arrive meanwhile wait in the daemon's queue like any others.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::command::{Recognition, RecognizerOptions};
use crate::grammar::Grammar;

/// A speech-to-text service elsewhere: 16 kHz mono audio in, its transcript out.
pub trait SpeechService: Send {
    /// Where it is, for the events and the log (`tcp://host:10300`).
    fn address(&self) -> String;
    /// The transcript of one utterance; the error says what went wrong (unreachable,
    /// refused, closed early, timed out) in a sentence.
    fn transcribe(&mut self, samples: &[f32], language: &str) -> Result<String, String>;
}

/// What happens to the connection to the server, as the `remote` event's `kind`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RemoteEvent {
    /// A request failed; the utterance will be retried.
    Lost { reason: String },
    /// A retry is scheduled.
    Retrying {
        /// 1 for the first retry after a loss.
        attempt: u32,
        /// Wait before it.
        delay_ms: u64,
    },
    /// The server answered again after a loss.
    Resumed,
    /// The retry window passed: the utterance is not recognised (an `error` event names
    /// it).
    GaveUp { reason: String, waited_ms: u64 },
}

/// The first wait after a failure; each next one doubles, up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_millis(250);
/// The longest wait between two attempts: a server that comes back is used within this.
const MAX_DELAY: Duration = Duration::from_secs(4);

/// The grammar and the server that hears for it.
pub struct Remote {
    service: Box<dyn SpeechService>,
    grammar: Grammar,
    options: RecognizerOptions,
    retry: Duration,
    /// Since when the server has not answered (None: it answered last time).
    down_since: Option<Instant>,
}

impl Remote {
    pub fn new(
        service: Box<dyn SpeechService>,
        grammar: Grammar,
        options: RecognizerOptions,
        retry: Duration,
    ) -> Remote {
        Remote {
            service,
            grammar,
            options,
            retry,
            down_since: None,
        }
    }

    pub fn address(&self) -> String {
        self.service.address()
    }

    pub fn grammar(&self) -> &Grammar {
        &self.grammar
    }

    /// A reloaded grammar and its options.
    pub fn set_grammar(&mut self, grammar: Grammar, options: RecognizerOptions) {
        self.grammar = grammar;
        self.options = options;
    }

    /// Has the server transcribe `samples` and reads the transcript against the grammar,
    /// retrying while the server cannot be reached (each step reported through `report`).
    /// The error, after the retry window, says why the utterance was given up.
    pub fn recognize(
        &mut self,
        samples: &[f32],
        report: &impl Fn(RemoteEvent),
    ) -> Result<Recognition, String> {
        let started = Instant::now();
        let mut attempt = 0;
        let mut delay = FIRST_DELAY;
        loop {
            let error = match self.service.transcribe(samples, &self.options.language) {
                Ok(text) => {
                    if self.down_since.take().is_some() {
                        tracing::info!(server = self.address(), "speech server answers again");
                        report(RemoteEvent::Resumed);
                    }
                    tracing::debug!(text, "transcript from the server");
                    let keep_heard = self.options.transcribe_refused;
                    return Ok(Recognition::from_text(&self.grammar, &text, keep_heard));
                }
                Err(error) => error,
            };
            if attempt == 0 && self.down_since.is_none() {
                tracing::warn!(server = self.address(), "speech server lost: {error}");
                report(RemoteEvent::Lost {
                    reason: error.clone(),
                });
            }
            let down_since = *self.down_since.get_or_insert(started);
            // Waiting is bounded by this utterance's window; once the server has been down
            // that long, later utterances get one attempt each until it answers again.
            let waited = started.elapsed();
            if waited + delay > self.retry || down_since.elapsed() > self.retry + delay {
                let waited_ms = waited.as_millis() as u64;
                report(RemoteEvent::GaveUp {
                    reason: error.clone(),
                    waited_ms,
                });
                return Err(format!(
                    "the speech server {} did not answer within {} s: {error}",
                    self.address(),
                    self.retry.as_secs_f32()
                ));
            }
            attempt += 1;
            report(RemoteEvent::Retrying {
                attempt,
                delay_ms: delay.as_millis() as u64,
            });
            std::thread::sleep(delay);
            delay = (delay * 2).min(MAX_DELAY);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::command::Rejection;
    use crate::grammar::SlotValue;

    /// Fails `failures` times, then answers `text`; counts the calls.
    struct Flaky {
        failures: usize,
        text: String,
        calls: Arc<Mutex<usize>>,
    }

    impl SpeechService for Flaky {
        fn address(&self) -> String {
            "tcp://test:1".into()
        }

        fn transcribe(&mut self, _: &[f32], language: &str) -> Result<String, String> {
            assert_eq!(language, "en");
            let mut calls = self.calls.lock().unwrap();
            *calls += 1;
            if *calls <= self.failures {
                return Err("connection refused".into());
            }
            Ok(self.text.clone())
        }
    }

    fn grammar() -> Grammar {
        let text = r#"
[lists.room]
values = ["kitchen", "bedroom"]

[intents.LightOn]
sentences = ["turn on the {room} light[s]"]
slots = { domain = "light" }
"#;
        Grammar::from_texts_with_wake(
            [(PathBuf::from("test.toml"), text.into())],
            Some("hey computer"),
        )
        .unwrap()
    }

    fn remote(failures: usize, text: &str, retry: Duration) -> (Remote, Arc<Mutex<usize>>) {
        let calls = Arc::new(Mutex::new(0));
        let service = Flaky {
            failures,
            text: text.into(),
            calls: Arc::clone(&calls),
        };
        let options = RecognizerOptions {
            transcribe_refused: true,
            ..RecognizerOptions::default()
        };
        (
            Remote::new(Box::new(service), grammar(), options, retry),
            calls,
        )
    }

    #[test]
    fn a_transcript_is_read_against_the_grammar() {
        let (mut remote, _) = remote(0, " Turn on the kitchen lights.", Duration::from_secs(1));
        let events = RefCell::new(Vec::new());
        let report = |e| events.borrow_mut().push(e);
        let found = remote.recognize(&[0.0; 160], &report).unwrap();
        assert_eq!(found.intent.as_deref(), Some("LightOn"));
        assert_eq!(found.slots["room"], SlotValue::Text("kitchen".into()));
        assert_eq!(found.slots["domain"], SlotValue::Text("light".into()));
        assert_eq!((found.reason, found.wake), (None, false));

        let (mut remote, _) = remote_with("Hey computer, turn on the bedroom light.");
        let found = remote.recognize(&[0.0; 160], &report).unwrap();
        assert_eq!(
            (found.intent.as_deref(), found.wake),
            (Some("LightOn"), true)
        );
        let (mut remote, _) = remote_with("Hey computer.");
        let found = remote.recognize(&[0.0; 160], &report).unwrap();
        assert_eq!((found.intent, found.reason, found.wake), (None, None, true));
        let (mut remote, _) = remote_with("What is the weather like?");
        let found = remote.recognize(&[0.0; 160], &report).unwrap();
        assert_eq!(found.reason, Some(Rejection::NoSentence));
        assert_eq!(found.heard.as_deref(), Some("What is the weather like?"));
        let (mut remote, _) = remote_with(" ");
        let found = remote.recognize(&[0.0; 160], &report).unwrap();
        assert_eq!(found.reason, Some(Rejection::NoSpeech));
        assert!(events.borrow().is_empty(), "{:?}", events.borrow());
    }

    fn remote_with(text: &str) -> (Remote, Arc<Mutex<usize>>) {
        remote(0, text, Duration::from_secs(1))
    }

    #[test]
    fn an_unreachable_server_is_retried_and_the_utterance_kept() {
        let (mut remote, calls) = remote(3, "turn on the kitchen light", Duration::from_secs(30));
        let events = RefCell::new(Vec::new());
        let report = |e| events.borrow_mut().push(e);
        let found = remote.recognize(&[0.0; 160], &report).unwrap();
        assert_eq!(found.intent.as_deref(), Some("LightOn"));
        assert_eq!(*calls.lock().unwrap(), 4);
        let events = events.into_inner();
        assert_eq!(
            events,
            [
                RemoteEvent::Lost {
                    reason: "connection refused".into()
                },
                RemoteEvent::Retrying {
                    attempt: 1,
                    delay_ms: 250
                },
                RemoteEvent::Retrying {
                    attempt: 2,
                    delay_ms: 500
                },
                RemoteEvent::Retrying {
                    attempt: 3,
                    delay_ms: 1000
                },
                RemoteEvent::Resumed,
            ]
        );
    }

    #[test]
    fn past_the_window_the_utterance_is_given_up_and_said_so() {
        let (mut remote, calls) = remote(usize::MAX, "", Duration::from_millis(600));
        let events = RefCell::new(Vec::new());
        let report = |e| events.borrow_mut().push(e);
        let error = remote.recognize(&[0.0; 160], &report).unwrap_err();
        assert!(
            error.contains("tcp://test:1") && error.contains("connection refused"),
            "{error}"
        );
        // 250 ms, then 500 ms would pass the 600 ms window: two attempts.
        assert_eq!(*calls.lock().unwrap(), 2);
        let events = events.into_inner();
        assert!(matches!(events[0], RemoteEvent::Lost { .. }), "{events:?}");
        assert!(
            matches!(events.last(), Some(RemoteEvent::GaveUp { .. })),
            "{events:?}"
        );
        // Once it has been down for the window, the next utterance gets one attempt, not
        // another window.
        let events = RefCell::new(Vec::new());
        let report = |e| events.borrow_mut().push(e);
        std::thread::sleep(Duration::from_millis(700));
        assert!(remote.recognize(&[0.0; 160], &report).is_err());
        assert_eq!(*calls.lock().unwrap(), 3);
        let events = events.into_inner();
        assert!(
            matches!(events.as_slice(), [RemoteEvent::GaveUp { .. }]),
            "{events:?}"
        );
    }
}
