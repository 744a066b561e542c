//! Spoken questions answered by the local language model: which utterances are questions,
//! the thread that answers them, and where each reply goes.
//!
//! ```text
//! [control thread]  intent event of `[llm] intent`, or a refusal's free transcription
//!                    (`heard`) ──► question() ──► ReplyRequest
//!      Replier::try_ask (live source: never waits; a full queue refuses: error event)
//!      Replier::ask     (file read as fast as possible: waits for a place)
//!          │ queue of QUESTION_QUEUE
//!          ▼
//! [replier thread]  Answerer (the model, supplied by the caller) ──► ReplyOutcome
//!      ──► Event::Reply, Event::Error ──► bounded channel ──► [control thread] emits them
//!      ──► notification thread (notify-rust), speech thread (SpeechCommand)
//! ```
//!
//! The answering itself is not here: [`Replier::start`] takes an [`Answerer`], a closure
//! that owns the model and turns a question into a [`ReplyOutcome`]. It runs on the replier
//! thread only, so the recogniser and the audio never wait for a reply, and one question
//! is answered at a time.

use std::collections::BTreeMap;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

use super::event::Event;
use super::speech::SpeechCommand;
use super::DaemonError;
use crate::actions::notify;
use crate::config::{Config, LlmConfig, LlmLoad};
use crate::grammar::{Grammar, SlotValue};
use crate::llm::assistant::Assistant;
pub use crate::llm::generate::StopReason;
use crate::util::background::Background;

/// The slot of `[llm] intent` that holds the question (a wildcard in the grammar).
pub const QUESTION_SLOT: &str = "question";

/// Questions waiting while one is answered. A reply takes seconds: a third question in a
/// row is refused rather than answered a minute late.
pub const QUESTION_QUEUE: usize = 2;

/// Replies waiting to be spoken while one is; more are not spoken (and reported), so
/// speech never falls minutes behind.
const SPEECH_QUEUE: usize = 2;

/// Notifications waiting for the notification server; more are dropped and logged.
const NOTIFY_QUEUE: usize = 4;

/// Events of the reply thread waiting for the control thread; when it stops reading, more
/// are logged and dropped rather than holding the replier.
const REPLY_EVENTS: usize = 64;

/// A question to answer, with the audio clock of the utterance that asked it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyRequest {
    pub question: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// A finished reply, as the model gives it.
#[derive(Clone, Debug, PartialEq)]
pub struct ReplyOutcome {
    pub text: String,
    /// Tokens generated.
    pub tokens: usize,
    pub stopped: StopReason,
}

/// Answers one question. It owns the model (loading it at the first call when `[llm] load
/// = "lazy"`) and the conversation; it is only ever called from the replier thread, one
/// question at a time. An `Err` (a model that cannot be loaded, a failed step) becomes an
/// `error` event and the next question is answered as usual.
pub type Answerer = Box<dyn FnMut(&str) -> Result<ReplyOutcome, String> + Send>;

/// One answerer asked from two threads (the daemon's replier and the Wyoming server
/// beside it, `[wyoming] serve`): one model in memory, one question at a time.
pub type SharedAnswerer = std::sync::Arc<std::sync::Mutex<Answerer>>;

/// An answerer that asks `shared`, waiting for the question it is answering.
pub fn asking(shared: &SharedAnswerer) -> Answerer {
    let shared = std::sync::Arc::clone(shared);
    Box::new(move |question: &str| {
        let mut answer = shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        answer(question)
    })
}

/// What the replier needs: the model behind an [`Answerer`] and where replies go.
pub struct ReplyOptions {
    /// The intent whose `question` slot is asked (`[llm] intent`).
    pub intent: String,
    pub answer: Answerer,
    /// Show each reply as a desktop notification (`[actions] notifications`).
    pub notify: bool,
    /// Speak each reply (`[llm] speak`).
    pub speak: Option<SpeechCommand>,
}

impl ReplyOptions {
    /// The options `config` sets, answering with `answer`.
    pub fn new(config: &Config, answer: Answerer) -> ReplyOptions {
        let llm = &config.llm;
        ReplyOptions {
            intent: llm.intent.clone(),
            answer,
            notify: config.actions.notifications,
            speak: llm.speak.clone().map(|argv| SpeechCommand {
                argv,
                working_dir: config.actions.working_dir.clone(),
                timeout: Duration::from_millis(llm.speak_timeout_ms),
            }),
        }
    }
}

/// The answerer of `config`'s `[llm]`: the model, read now (`load = "start"`, so a broken
/// file stops the start) or at the first question (`"lazy"`; a failure then is that
/// question's error, and the next question tries again).
pub fn model_answerer(config: &Config) -> Result<Answerer, crate::llm::generate::GenerateError> {
    llm_answerer(config.llm.clone(), config.llm_threads())
}

/// The answerer of the reply model `llm` describes, computing on `threads` threads; read
/// now or at the first question as its `load` says.
pub fn llm_answerer(
    llm: LlmConfig,
    threads: usize,
) -> Result<Answerer, crate::llm::generate::GenerateError> {
    let when = llm.load;
    let load = move || Assistant::from_config(&llm, threads);
    let mut assistant = match when {
        LlmLoad::Start => Some(load()?),
        LlmLoad::Lazy => None,
    };
    Ok(Box::new(move |question: &str| {
        let assistant = match &mut assistant {
            Some(a) => a,
            None => assistant.insert(load().map_err(|e| e.to_string())?),
        };
        let reply = assistant
            .reply(question, |_| std::ops::ControlFlow::Continue(()))
            .map_err(|e| e.to_string())?;
        Ok(ReplyOutcome {
            text: reply.text.trim().to_string(),
            tokens: reply.tokens.len(),
            stopped: reply.stop,
        })
    }))
}

/// Checks that `intent` can ask: the grammar has it and its sentences capture the
/// `question` slot. On failure, what is wrong and what to do, for the log and `voxd doctor`.
pub fn check_intent(grammar: &Grammar, intent: &str) -> Result<(), String> {
    let Some(index) = grammar.intents().iter().position(|i| i.name == intent) else {
        return Err(format!(
            "the grammar has no intent `{intent}` to ask questions: add one (grammars/ask.toml \
             has `Ask`) or set [llm] intent to one"
        ));
    };
    if grammar.captured_slot_names(index).contains(QUESTION_SLOT) {
        Ok(())
    } else {
        Err(format!(
            "intent `{intent}` captures no `{QUESTION_SLOT}` slot, so it never asks: give its \
             sentences a {{{QUESTION_SLOT}}} wildcard list, as grammars/ask.toml does"
        ))
    }
}

/// The question an event asks: an `intent` event of `intent` with a non-empty `question`
/// slot, or a refused utterance that was transcribed freely (`heard`, only there with
/// `[llm] answer_unmatched`) into at least two words (a lone word is a noise more often than
/// a request).
pub fn question(event: &Event, intent: &str) -> Option<ReplyRequest> {
    let (question, start_ms, end_ms) = match event {
        Event::Intent {
            start_ms,
            end_ms,
            intent: heard,
            slots,
            ..
        } if heard == intent => (asked(slots)?, start_ms, end_ms),
        Event::NotRecognized {
            start_ms,
            end_ms,
            heard: Some(heard),
            ..
        } if heard.split_whitespace().count() >= 2 => (heard.clone(), start_ms, end_ms),
        _ => return None,
    };
    let question = question.trim();
    (!question.is_empty()).then(|| ReplyRequest {
        question: question.to_string(),
        start_ms: *start_ms,
        end_ms: *end_ms,
    })
}

/// The question the slots of `[llm] intent` ask: its `question` slot as text, trimmed;
/// None when it is missing or blank.
pub fn asked(slots: &BTreeMap<String, SlotValue>) -> Option<String> {
    let question = slots.get(QUESTION_SLOT)?.to_string();
    let question = question.trim();
    (!question.is_empty()).then(|| question.to_string())
}

/// Why a question was not taken.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{QUESTION_QUEUE} questions are already waiting for the reply model")]
    Busy,
    #[error("the reply thread has stopped")]
    Stopped,
}

/// The handle of the replier thread.
pub struct Replier {
    intent: String,
    questions: Sender<ReplyRequest>,
    thread: JoinHandle<()>,
}

impl Replier {
    /// Starts the replier thread and the threads it delivers replies through. The receiver
    /// gives the `reply` and `error` events to emit.
    pub fn start(options: ReplyOptions) -> Result<(Replier, Receiver<Event>), DaemonError> {
        let ReplyOptions {
            intent,
            mut answer,
            notify,
            speak,
        } = options;
        let (events_tx, events) = bounded(REPLY_EVENTS);
        let events_tx = ReplyEvents(events_tx);
        let delivery = Delivery::start(notify, speak, &events_tx).map_err(DaemonError::Thread)?;
        let (questions, waiting) = bounded::<ReplyRequest>(QUESTION_QUEUE);
        let thread = thread::Builder::new()
            .name("voxd-replier".into())
            .spawn(move || {
                for (id, request) in (1..).zip(waiting) {
                    let started = Instant::now();
                    let result = answer(&request.question);
                    let reply_ms = millis(started.elapsed());
                    match result {
                        Ok(outcome) => delivery.deliver(id, request, outcome, reply_ms),
                        Err(e) => {
                            let message = format!(
                                "answering the question at {}-{} ms: {e}",
                                request.start_ms, request.end_ms
                            );
                            tracing::error!("{message}");
                            events_tx.emit(Event::Error { message });
                        }
                    }
                }
                delivery.finish();
            })
            .map_err(DaemonError::Thread)?;
        let replier = Replier {
            intent,
            questions,
            thread,
        };
        Ok((replier, events))
    }

    /// The question `event` asks of this replier, if it asks one.
    pub fn question_in(&self, event: &Event) -> Option<ReplyRequest> {
        question(event, &self.intent)
    }

    /// Queues a question if there is a place; never waits.
    pub fn try_ask(&self, request: ReplyRequest) -> Result<(), Refused> {
        self.questions.try_send(request).map_err(|e| match e {
            TrySendError::Full(_) => Refused::Busy,
            TrySendError::Disconnected(_) => Refused::Stopped,
        })
    }

    /// Queues a question, waiting for a place: for a source that waits for the daemon (a
    /// file read as fast as possible), where every question is to be answered.
    pub fn ask(&self, request: ReplyRequest) -> Result<(), Refused> {
        self.questions.send(request).map_err(|_| Refused::Stopped)
    }

    /// Answers the questions still queued, lets their notifications and speech finish
    /// (each within its timeout), passes every event left to `emit`, and ends the threads.
    pub fn finish(self, events: &Receiver<Event>, mut emit: impl FnMut(Event)) {
        drop(self.questions);
        // The channel closes when the replier thread and its delivery threads have ended.
        for event in events.iter() {
            emit(event);
        }
        if self.thread.join().is_err() {
            tracing::error!("the reply thread panicked");
        }
    }
}

/// The reply thread's side of the events channel.
#[derive(Clone)]
struct ReplyEvents(Sender<Event>);

impl ReplyEvents {
    fn emit(&self, event: Event) {
        if let Err(e) = self.0.try_send(event) {
            tracing::warn!(
                "reply event dropped, the daemon is not reading them: {:?}",
                e
            );
        }
    }
}

/// Where a finished reply goes besides its event: a notification and speech, each on a
/// thread of its own so that a slow notification server or a long speech never holds the
/// next answer, nor each other.
struct Delivery {
    events: ReplyEvents,
    notifications: Option<Background<Notice>>,
    speech: Option<Background<Speech>>,
}

/// A reply to show.
struct Notice {
    question: String,
    text: String,
}

/// A reply to speak.
struct Speech {
    id: u64,
    text: String,
    start_ms: u64,
    end_ms: u64,
}

impl Delivery {
    fn start(
        notify: bool,
        speak: Option<SpeechCommand>,
        events: &ReplyEvents,
    ) -> std::io::Result<Delivery> {
        let notifications = notify
            .then(|| {
                Background::start("voxd-reply-notify", NOTIFY_QUEUE, |notice: Notice| {
                    if let Err(e) = notify::show(&notice.question, Some(&notice.text)) {
                        tracing::warn!("reply notification: {e}");
                    }
                })
            })
            .transpose()?;
        let speech =
            speak
                .map(|command| {
                    let events = events.clone();
                    Background::start("voxd-speech", SPEECH_QUEUE, move |speech: Speech| {
                        match command.speak(&speech.text, speech.id) {
                            Ok(took) => {
                                tracing::info!(reply = speech.id, ms = millis(took), "reply spoken")
                            }
                            Err(e) => {
                                let message = format!(
                                    "speaking the reply to the question at {}-{} ms: {e}",
                                    speech.start_ms, speech.end_ms
                                );
                                tracing::warn!("{message}");
                                events.emit(Event::Error { message });
                            }
                        }
                    })
                })
                .transpose()?;
        Ok(Delivery {
            events: events.clone(),
            notifications,
            speech,
        })
    }

    /// Emits the reply's event, then shows and speaks it (an empty reply is neither).
    fn deliver(&self, id: u64, request: ReplyRequest, outcome: ReplyOutcome, reply_ms: u64) {
        let ReplyRequest {
            question,
            start_ms,
            end_ms,
        } = request;
        tracing::info!(
            reply = id,
            tokens = outcome.tokens,
            ms = reply_ms,
            stopped = ?outcome.stopped,
            "replied"
        );
        let text = outcome.text;
        self.events.emit(Event::Reply {
            start_ms,
            end_ms,
            question: question.clone(),
            text: text.clone(),
            tokens: outcome.tokens,
            stopped: outcome.stopped,
            reply_ms,
        });
        if text.trim().is_empty() {
            return;
        }
        if let Some(notifications) = &self.notifications {
            let notice = Notice {
                question,
                text: text.clone(),
            };
            if notifications.offer(notice).is_err() {
                tracing::warn!(
                    reply = id,
                    "reply notification dropped: {NOTIFY_QUEUE} are already waiting for the \
                     notification server"
                );
            }
        }
        if let Some(speech) = &self.speech {
            let offered = speech.offer(Speech {
                id,
                text,
                start_ms,
                end_ms,
            });
            if let Err(e) = offered {
                let why = match e {
                    TrySendError::Full(_) => {
                        format!("{SPEECH_QUEUE} replies are already waiting to be spoken")
                    }
                    TrySendError::Disconnected(_) => "the speech thread has stopped".into(),
                };
                let message = format!(
                    "the reply to the question at {start_ms}-{end_ms} ms is not spoken: {why}"
                );
                tracing::warn!("{message}");
                self.events.emit(Event::Error { message });
            }
        }
    }

    /// Waits for the notifications and speech already queued.
    fn finish(self) {
        if let Some(notifications) = self.notifications {
            notifications.finish();
        }
        if let Some(speech) = self.speech {
            speech.finish();
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::os::unix::fs::PermissionsExt;
    use std::path::{Path, PathBuf};

    use super::*;

    fn intent_event(intent: &str, slots: &[(&str, SlotValue)]) -> Event {
        Event::Intent {
            start_ms: 1000,
            end_ms: 2500,
            intent: intent.into(),
            slots: slots
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect::<BTreeMap<_, _>>(),
            text: String::new(),
            score: -0.5,
            recognize_ms: 90,
            early: false,
        }
    }

    fn request(question: &str, start_ms: u64) -> ReplyRequest {
        ReplyRequest {
            question: question.into(),
            start_ms,
            end_ms: start_ms + 1500,
        }
    }

    /// Replies with the question in upper case.
    fn shout(question: &str) -> Result<ReplyOutcome, String> {
        Ok(ReplyOutcome {
            text: question.to_uppercase(),
            tokens: question.split(' ').count(),
            stopped: StopReason::Eos,
        })
    }

    fn options(answer: Answerer) -> ReplyOptions {
        ReplyOptions {
            intent: "Ask".into(),
            answer,
            notify: false,
            speak: None,
        }
    }

    fn finish(replier: Replier, events: &Receiver<Event>) -> Vec<Event> {
        let mut emitted = Vec::new();
        replier.finish(events, |e| emitted.push(e));
        emitted
    }

    /// The questions of the `reply` events, and the messages of the `error` events.
    fn summary(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| match e {
                Event::Reply { question, text, .. } => format!("{question} -> {text}"),
                Event::Error { message } => format!("error: {message}"),
                other => panic!("unexpected event {other:?}"),
            })
            .collect()
    }

    #[test]
    fn the_question_is_the_question_slot_of_the_asking_intent() {
        let text = |s: &str| SlotValue::Text(s.into());
        let asked = question(
            &intent_event("Ask", &[("question", text(" what time is it "))]),
            "Ask",
        );
        assert_eq!(asked, Some(request("what time is it", 1000)));
        let number = question(
            &intent_event("Ask", &[("question", SlotValue::Integer(42))]),
            "Ask",
        );
        assert_eq!(number.unwrap().question, "42");
        for event in [
            intent_event("LightOn", &[("question", text("what time is it"))]),
            intent_event("Ask", &[("room", text("kitchen"))]),
            intent_event("Ask", &[("question", text("  "))]),
            Event::Error {
                message: "question".into(),
            },
        ] {
            assert_eq!(question(&event, "Ask"), None, "{event:?}");
        }
    }

    #[test]
    fn the_asking_intent_must_capture_the_question_slot() {
        let grammar = Grammar::from_texts([(
            PathBuf::from("g.toml"),
            "[intents.Ask]\nsentences = [\"ask {question}\"]\n\
             [intents.Time]\nsentences = [\"what time is it\"]\n\
             [lists.question]\nwildcard = true\n"
                .to_string(),
        )])
        .unwrap();
        check_intent(&grammar, "Ask").unwrap();
        let err = check_intent(&grammar, "Time").unwrap_err();
        assert!(err.contains("`Time` captures no `question` slot"), "{err}");
        let err = check_intent(&grammar, "Question").unwrap_err();
        assert!(err.contains("no intent `Question`"), "{err}");
    }

    #[test]
    fn replies_come_in_order_with_the_clock_of_their_question() {
        let (replier, events) = Replier::start(options(Box::new(shout))).unwrap();
        replier.ask(request("what is the time", 1000)).unwrap();
        replier.ask(request("and the date", 5000)).unwrap();
        let emitted = finish(replier, &events);
        assert_eq!(
            summary(&emitted),
            [
                "what is the time -> WHAT IS THE TIME",
                "and the date -> AND THE DATE"
            ]
        );
        let Event::Reply {
            start_ms,
            end_ms,
            tokens,
            stopped,
            ..
        } = &emitted[1]
        else {
            unreachable!()
        };
        assert_eq!(
            (*start_ms, *end_ms, *tokens, *stopped),
            (5000, 6500, 3, StopReason::Eos)
        );
    }

    #[test]
    fn a_full_queue_refuses_the_newest_question_at_once() {
        // The answerer says which question it started on, then waits to be let go: the
        // replier is busy for as long as the test wants.
        let (started_tx, started) = bounded::<String>(8);
        let (release, gate) = bounded::<()>(8);
        let answer = move |question: &str| {
            started_tx.send(question.to_string()).unwrap();
            gate.recv().unwrap();
            shout(question)
        };
        let (replier, events) = Replier::start(options(Box::new(answer))).unwrap();
        replier.try_ask(request("one", 0)).unwrap();
        assert_eq!(started.recv().unwrap(), "one");
        for (n, question) in ["two", "three"].into_iter().enumerate() {
            replier.try_ask(request(question, 1000 * n as u64)).unwrap();
        }
        let asked = Instant::now();
        assert_eq!(replier.try_ask(request("four", 9000)), Err(Refused::Busy));
        assert!(asked.elapsed() < Duration::from_millis(100));
        // A waiting ask gets the place the first answer frees.
        for _ in 0..4 {
            release.send(()).unwrap();
        }
        replier.ask(request("five", 12000)).unwrap();
        let emitted = finish(replier, &events);
        assert_eq!(
            summary(&emitted),
            ["one -> ONE", "two -> TWO", "three -> THREE", "five -> FIVE"]
        );
    }

    #[test]
    fn a_failed_answer_is_an_error_event_and_the_next_question_is_answered() {
        let answer = |question: &str| match question {
            "fail" => Err("the model file is truncated".to_string()),
            _ => shout(question),
        };
        let (replier, events) = Replier::start(options(Box::new(answer))).unwrap();
        replier.ask(request("fail", 3000)).unwrap();
        replier.ask(request("hello", 6000)).unwrap();
        assert_eq!(
            summary(&finish(replier, &events)),
            [
                "error: answering the question at 3000-4500 ms: the model file is truncated",
                "hello -> HELLO"
            ]
        );
    }

    #[test]
    fn a_stopped_replier_refuses_instead_of_blocking() {
        let answer = |question: &str| -> Result<ReplyOutcome, String> {
            panic!("the answerer broke on {question}")
        };
        let (replier, events) = Replier::start(options(Box::new(answer))).unwrap();
        replier.try_ask(request("break", 0)).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let refused = loop {
            match replier.try_ask(request("again", 100)) {
                Err(Refused::Stopped) => break true,
                _ if Instant::now() > deadline => break false,
                _ => thread::sleep(Duration::from_millis(5)),
            }
        };
        assert!(refused, "the replier thread never stopped");
        assert_eq!(replier.ask(request("again", 200)), Err(Refused::Stopped));
        assert!(finish(replier, &events).is_empty());
    }

    /// A speech program that appends what it read on stdin, then a marker line, to `log`.
    fn speaker(dir: &Path) -> (PathBuf, PathBuf) {
        let script = dir.join("speak.sh");
        let log = dir.join("spoken");
        std::fs::write(
            &script,
            "#!/bin/sh\ncat >> \"$1\"\nprintf '\\n[end]\\n' >> \"$1\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        (script, log)
    }

    #[test]
    fn replies_are_spoken_one_after_the_other_and_empty_ones_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let (script, log) = speaker(dir.path());
        let answer = |question: &str| {
            Ok(ReplyOutcome {
                text: match question {
                    "silence" => " \n".to_string(),
                    _ => format!("You said \"{question}\"; $(date)\n`ok`"),
                },
                tokens: 4,
                stopped: StopReason::StopString,
            })
        };
        let speak = SpeechCommand {
            argv: vec![script.display().to_string(), log.display().to_string()],
            working_dir: None,
            timeout: Duration::from_secs(10),
        };
        let (replier, events) = Replier::start(ReplyOptions {
            speak: Some(speak),
            ..options(Box::new(answer))
        })
        .unwrap();
        for (n, question) in ["hi", "silence", "bye"].into_iter().enumerate() {
            replier.ask(request(question, 1000 * n as u64)).unwrap();
        }
        let emitted = finish(replier, &events);
        assert_eq!(emitted.len(), 3, "{emitted:?}");
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "You said \"hi\"; $(date)\n`ok`\n[end]\nYou said \"bye\"; $(date)\n`ok`\n[end]\n"
        );
    }

    #[test]
    fn a_speech_failure_is_an_error_event() {
        let speak = SpeechCommand {
            argv: vec!["surely-no-such-speaker-voxd".into()],
            working_dir: None,
            timeout: Duration::from_secs(10),
        };
        let (replier, events) = Replier::start(ReplyOptions {
            speak: Some(speak),
            ..options(Box::new(shout))
        })
        .unwrap();
        replier.ask(request("hello", 2000)).unwrap();
        let lines = summary(&finish(replier, &events));
        assert_eq!(lines[0], "hello -> HELLO");
        assert!(
            lines[1].starts_with("error: speaking the reply to the question at 2000-3500 ms: ")
                && lines[1].contains("surely-no-such-speaker-voxd"),
            "{lines:?}"
        );
    }

    #[test]
    fn options_come_from_the_llm_and_actions_sections() {
        let mut config = Config::default();
        config.llm.intent = "Question".into();
        config.llm.speak = Some(vec!["espeak-ng".into(), "-s".into(), "150".into()]);
        config.llm.speak_timeout_ms = 1500;
        config.actions.notifications = false;
        config.actions.working_dir = Some(PathBuf::from("/srv/voxd"));
        let options = ReplyOptions::new(&config, Box::new(shout));
        assert_eq!(options.intent, "Question");
        assert!(!options.notify);
        assert_eq!(
            options.speak,
            Some(SpeechCommand {
                argv: vec!["espeak-ng".into(), "-s".into(), "150".into()],
                working_dir: Some(PathBuf::from("/srv/voxd")),
                timeout: Duration::from_millis(1500),
            })
        );
        assert!(ReplyOptions::new(&Config::default(), Box::new(shout))
            .speak
            .is_none());
    }
}
