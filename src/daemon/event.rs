//! The daemon's events: one JSON object per line, `event` naming it (DESIGN.md decision 6).
//!
//! Times called `*_ms` without a prefix are on the audio clock: milliseconds after the first
//! sample the source delivered. `clock_ms`, on every event, is the wall-clock time since
//! the daemon started listening, so a reader can tell how long after the audio something
//! happened. The README's "Events" section is the schema users read; keep the two in step.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::actions::ActionEvent;
use crate::captions::CaptionWord;
use crate::capture::CaptureEvent;
use crate::command::{Recognition, Rejection};
use crate::grammar::SlotValue;
use crate::llm::generate::StopReason;

use super::remote::RemoteEvent;

/// Something the daemon reports.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// Listening: the model is loaded and warm.
    Ready {
        mode: &'static str,
        model: String,
        /// Intents of the loaded grammar (0 when commands are off).
        intents: usize,
        /// What the source delivers, e.g. "48000 Hz, 2 ch, f32".
        audio: String,
    },
    /// The voice-activity detector heard speech begin.
    SpeechStart { start_ms: u64, onset_ms: u64 },
    /// The utterance ended (`cut`: at the length limit, speech went on).
    SpeechEnd {
        start_ms: u64,
        end_ms: u64,
        cut: bool,
    },
    /// An utterance was recognised as a command.
    Intent {
        start_ms: u64,
        end_ms: u64,
        intent: String,
        slots: BTreeMap<String, SlotValue>,
        text: String,
        /// Mean log-probability per token of the sentence.
        score: f32,
        /// Time spent recognising, from the utterance's end reaching the recogniser.
        recognize_ms: u64,
        /// Closed early (`[commands] early_close_ms`): the sentence was complete, nothing in
        /// the grammar could follow it, and the action did not wait for the end of the
        /// silence. `end_ms` is where it was closed; speech after it is an utterance of
        /// its own. Left out when false.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        early: bool,
    },
    /// The wake phrase was heard (`[commands] wake`): `alone` when the utterance held
    /// nothing else (the next one may then be a command without it); `text` is the
    /// sentence heard.
    Wake {
        start_ms: u64,
        end_ms: u64,
        alone: bool,
        text: String,
    },
    /// An utterance was refused: not a command, or not clearly one.
    NotRecognized {
        start_ms: u64,
        end_ms: u64,
        reason: Rejection,
        /// The closest sentence of the grammar, when the search found one.
        text: String,
        score: f32,
        recognize_ms: u64,
        /// What was said, transcribed without the grammar (with `[llm] answer_unmatched`).
        #[serde(skip_serializing_if = "Option::is_none")]
        heard: Option<String>,
        /// The language `heard` was transcribed in (`[transcribe] language`).
        #[serde(skip_serializing_if = "Option::is_none")]
        heard_language: Option<String>,
    },
    /// Caption text that may still change.
    Partial {
        text: String,
        start_ms: u64,
        end_ms: u64,
        /// The audio heard when the text was decided (audio clock).
        heard_ms: u64,
    },
    /// Caption text that will not change.
    Final {
        text: String,
        start_ms: u64,
        end_ms: u64,
        /// Each word's time, when the commit policy knows it.
        #[serde(skip_serializing_if = "Vec::is_empty")]
        words: Vec<CaptionWord>,
        /// The audio heard when the text was decided (audio clock).
        heard_ms: u64,
    },
    /// Something happened to a command's action (`status`: started, finished, timed_out,
    /// skipped_cooldown, refused_busy, failed_to_start, wait_failed, notified, notify_failed).
    /// `end_ms` is the end of the utterance that asked for it.
    Action {
        end_ms: u64,
        #[serde(flatten)]
        action: ActionReport,
    },
    /// The language model answered a question (`[llm]`). `start_ms` and `end_ms` are the
    /// utterance that asked it.
    Reply {
        start_ms: u64,
        end_ms: u64,
        question: String,
        text: String,
        /// Tokens the model generated.
        tokens: usize,
        /// Why it stopped: eos, max_tokens, time, stop_string, context.
        stopped: StopReason,
        /// Time spent answering, from the question reaching the model.
        reply_ms: u64,
    },
    /// The config or grammar files were read again.
    Reload {
        /// `replaced`, `unchanged` or `failed` (the previous set stays in use).
        outcome: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// The audio source: device lost, retrying, resumed, failed.
    Capture {
        #[serde(flatten)]
        detail: Value,
    },
    /// The speech server (`[model] remote`): lost, retrying, resumed, gave up.
    Remote {
        server: String,
        #[serde(flatten)]
        kind: RemoteEvent,
    },
    /// Audio was dropped: the front end fell behind the device.
    Overrun { dropped: u64 },
    /// Something went wrong that the daemon survives.
    Error { message: String },
    /// The daemon stopped; nothing follows.
    Stopped {
        /// Audio heard, ms.
        audio_ms: u64,
        utterances: u64,
        /// Utterances the recogniser could not take in time and were dropped (logged too).
        utterances_dropped: u64,
        /// Caption windows skipped because decoding was behind.
        windows_dropped: u64,
    },
}

/// An [`ActionEvent`] as the `action` event carries it: its own `event` tag becomes
/// `status`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ActionReport {
    pub id: u64,
    pub intent: String,
    #[serde(flatten)]
    pub detail: serde_json::Map<String, Value>,
}

impl ActionReport {
    pub fn new(event: &ActionEvent) -> ActionReport {
        let mut detail = match serde_json::to_value(&event.kind) {
            Ok(Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        if let Some(status) = detail.remove("event") {
            detail.insert("status".into(), status);
        }
        ActionReport {
            id: event.id,
            intent: event.intent.clone(),
            detail,
        }
    }
}

impl Event {
    /// The event for a recognised or refused utterance spanning `start..end` samples;
    /// `early` when it was closed early.
    pub fn recognition(
        result: Recognition,
        start_ms: u64,
        end_ms: u64,
        took_ms: u64,
        early: bool,
    ) -> Event {
        match (result.intent, result.reason) {
            (Some(intent), None) => Event::Intent {
                start_ms,
                end_ms,
                intent,
                slots: result.slots,
                text: result.text,
                score: result.score,
                recognize_ms: took_ms,
                early,
            },
            (_, reason) => Event::NotRecognized {
                start_ms,
                end_ms,
                reason: reason.unwrap_or(Rejection::NotInGrammar),
                text: result.text,
                score: result.score,
                recognize_ms: took_ms,
                heard: result.heard,
                heard_language: result.heard_language,
            },
        }
    }

    /// The JSON line, with `clock_ms`. Scores that are not finite (a refusal before any
    /// decoding) become null rather than an invalid number.
    pub fn to_json(&self, clock_ms: u64) -> Value {
        let mut value = serde_json::to_value(self).unwrap_or_else(
            |e| serde_json::json!({"event": "error", "message": format!("unprintable event: {e}")}),
        );
        value["clock_ms"] = clock_ms.into();
        value
    }
}

impl From<&CaptureEvent> for Event {
    fn from(event: &CaptureEvent) -> Event {
        Event::Capture {
            detail: serde_json::to_value(event).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actions::ActionEventKind;

    #[test]
    fn events_are_flat_objects_named_by_event() {
        let e = Event::SpeechEnd {
            start_ms: 100,
            end_ms: 900,
            cut: false,
        };
        assert_eq!(
            e.to_json(950),
            serde_json::json!({"event": "speech_end", "start_ms": 100, "end_ms": 900,
                "cut": false, "clock_ms": 950})
        );
    }

    #[test]
    fn an_action_event_keeps_its_fields_under_status() {
        let report = ActionReport::new(&ActionEvent {
            id: 4,
            intent: "LightOn".into(),
            kind: ActionEventKind::Started { pid: 77 },
        });
        let e = Event::Action {
            end_ms: 1200,
            action: report,
        };
        assert_eq!(
            e.to_json(1300),
            serde_json::json!({"event": "action", "end_ms": 1200, "id": 4, "intent": "LightOn",
                "status": "started", "pid": 77, "clock_ms": 1300})
        );
    }

    #[test]
    fn a_reply_names_its_question_and_why_it_stopped() {
        let e = Event::Reply {
            start_ms: 1000,
            end_ms: 2500,
            question: "what is the capital of france".into(),
            text: "Paris.".into(),
            tokens: 3,
            stopped: StopReason::MaxTokens,
            reply_ms: 840,
        };
        assert_eq!(
            e.to_json(3400),
            serde_json::json!({"event": "reply", "start_ms": 1000, "end_ms": 2500,
                "question": "what is the capital of france", "text": "Paris.", "tokens": 3,
                "stopped": "max_tokens", "reply_ms": 840, "clock_ms": 3400})
        );
    }

    #[test]
    fn a_refusal_without_a_sentence_has_a_null_score() {
        let e = Event::NotRecognized {
            start_ms: 0,
            end_ms: 10,
            reason: Rejection::Silence,
            text: String::new(),
            score: f32::NEG_INFINITY,
            recognize_ms: 0,
            heard: None,
            heard_language: None,
        };
        let v = e.to_json(0);
        assert_eq!(v["reason"], "silence");
        assert!(v["score"].is_null());
    }
}
