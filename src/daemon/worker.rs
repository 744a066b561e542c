//! The recogniser thread: owns the model and its compute threads, takes utterances (for
//! commands) and caption windows, and sends back events and the actions to start.
//!
//! Utterances come first: a command waits for at most the caption window being decoded,
//! never for a queue of them. Windows arrive through a one-place queue that the control
//! thread keeps filled with the newest window.

use std::thread::{self, JoinHandle};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::event::Event;
use super::remote::Remote;
use super::wake::{Heard, WakeGate};
use super::DaemonError;
use crate::actions::{ActionRequest, WAKE_ACTION};
use crate::captions::{CaptionUpdate, Captioner};
use crate::command::{Recognition, Recognizer, RecognizerOptions};
use crate::frontend::{ms, CaptionWindow, Utterance};
use crate::grammar::Grammar;
use crate::whisper::transcribe::{TranscribeError, Transcriber};

/// What the control thread asks of the recogniser.
pub enum Job {
    /// Speech began at this sample (captions decode partials from here).
    SpeechStart(u64),
    /// Recognise this utterance as a command. A `provisional` one (speech paused) is only
    /// recognised and kept: if the final utterance turns out the same, its result is
    /// reported then, without decoding again.
    Utterance {
        utterance: Utterance,
        provisional: bool,
    },
    /// The command set was reloaded: recognise this grammar from now on, and judge the wake
    /// phrase (when the grammar has one) with this conversation window.
    Grammar {
        grammar: Box<Grammar>,
        options: RecognizerOptions,
        follow_up_ms: u64,
    },
}

/// What the recogniser sends back.
pub enum Outcome {
    /// An event to emit.
    Event(Event),
    /// An accepted command whose action should start; `end_ms` is its utterance's end.
    Act { request: ActionRequest, end_ms: u64 },
}

/// The model, with the grammar when commands are on; or the grammar and the speech server
/// that hears for it (`[model] remote`).
pub enum Engine {
    Commands(Box<Recognizer>),
    Transcriber(Box<Transcriber>),
    Remote(Box<Remote>),
}

impl Engine {
    /// The command grammar's wake phrase, if any.
    fn wake_phrase(&self) -> Option<&str> {
        match self {
            Engine::Commands(r) => r.grammar().wake_phrase(),
            Engine::Transcriber(_) => None,
            Engine::Remote(r) => r.grammar().wake_phrase(),
        }
    }

    /// The model on this machine; None when a server hears instead.
    pub fn transcriber(&self) -> Option<&Transcriber> {
        match self {
            Engine::Commands(r) => Some(r.transcriber()),
            Engine::Transcriber(t) => Some(t),
            Engine::Remote(_) => None,
        }
    }

    /// Runs the model once on quiet noise, so the weights are paged in and the compute
    /// threads started before the first real utterance.
    pub fn warm_up(&mut self) {
        let started = Instant::now();
        let mut seed = 0x2545_f491_u32;
        let noise: Vec<f32> = (0..crate::audio::SAMPLE_RATE as usize)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                (seed as f32 / u32::MAX as f32 - 0.5) * 0.02
            })
            .collect();
        let warmed = match self {
            // The server warms up its own model.
            Engine::Remote(_) => return,
            Engine::Commands(r) => r.recognize(&noise).map(drop).map_err(|e| e.to_string()),
            Engine::Transcriber(t) => {
                let options = crate::whisper::transcribe::TranscribeOptions {
                    audio_ctx: crate::whisper::transcribe::AudioCtx::Fit,
                    ..Default::default()
                };
                t.transcribe(&noise, &options, |_| {})
                    .map(drop)
                    .map_err(|e| e.to_string())
            }
        };
        if let Err(e) = warmed {
            tracing::warn!("model warm-up failed: {e}");
        }
        tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            threads = self.transcriber().map_or(0, Transcriber::threads),
            "model warmed up"
        );
    }
}

/// Starts the thread. It ends when `jobs` is closed and everything queued is done.
/// `follow_up_ms` is the wake phrase's conversation window (`[commands] follow_up_ms`).
pub fn start(
    mut engine: Engine,
    follow_up_ms: u64,
    mut captions: Option<Captions>,
    jobs: Receiver<Job>,
    windows: Receiver<CaptionWindow>,
    outcomes: Sender<Outcome>,
) -> Result<JoinHandle<()>, DaemonError> {
    thread::Builder::new()
        .name("voxd-recogniser".into())
        .spawn(move || {
            let send = |outcome| {
                // The control thread reads until this thread ends; a failed send means it
                // is gone already, and there is nobody left to tell.
                let _ = outcomes.send(outcome);
            };
            // The result for the last provisional utterance, waiting for its end.
            let mut early: Option<Recognized> = None;
            let mut gate = WakeGate::new(engine.wake_phrase().is_some(), follow_up_ms);
            loop {
                let job = match jobs.try_recv() {
                    Ok(job) => Some(job),
                    Err(TryRecvError::Disconnected) => break,
                    // A closed queue wakes this up with an error: the next turn ends the loop.
                    Err(TryRecvError::Empty) => crossbeam_channel::select! {
                        recv(jobs) -> job => job.ok(),
                        recv(windows) -> window => {
                            if let (Ok(window), Some(captions)) = (window, &mut captions) {
                                captions.window(&engine, &window, &send);
                            }
                            None
                        },
                    },
                };
                match job {
                    Some(Job::SpeechStart(start)) => {
                        if let Some(captions) = &mut captions {
                            captions.captioner.speech_start(start);
                        }
                    }
                    Some(Job::Utterance {
                        utterance,
                        provisional,
                    }) => {
                        let ready = early.take().filter(|e| e.same_span(&utterance));
                        match (provisional, ready) {
                            // A server is asked once, for the whole utterance.
                            (true, _) if matches!(engine, Engine::Remote(_)) => {}
                            (true, _) => early = recognize(&mut engine, &utterance, &send),
                            (false, Some(done)) => report(done, &mut gate, &engine, &send),
                            (false, None) => {
                                if let Some(done) = recognize(&mut engine, &utterance, &send) {
                                    report(done, &mut gate, &engine, &send);
                                }
                            }
                        }
                        if let (false, Some(captions)) = (provisional, &mut captions) {
                            captions.utterance(&engine, &utterance, &send);
                        }
                    }
                    Some(Job::Grammar {
                        grammar,
                        options,
                        follow_up_ms,
                    }) => {
                        gate.configure(grammar.wake_phrase().is_some(), follow_up_ms);
                        set_grammar(&mut engine, *grammar, options, &send)
                    }
                    None => {}
                }
            }
            if let Some(captions) = &mut captions {
                captions.finish(&engine, &send);
            }
        })
        .map_err(DaemonError::Thread)
}

/// A recognised utterance, not yet reported.
struct Recognized {
    start: u64,
    end: u64,
    result: Result<Recognition, String>,
    took_ms: u64,
}

impl Recognized {
    fn same_span(&self, u: &Utterance) -> bool {
        (self.start, self.end) == (u.start, u.end)
    }
}

/// Recognises `u`; None when there is no command recogniser (captions only). A speech
/// server's troubles are reported through `send` as they happen.
fn recognize(engine: &mut Engine, u: &Utterance, send: &impl Fn(Outcome)) -> Option<Recognized> {
    let started = Instant::now();
    let result = match engine {
        Engine::Commands(recognizer) => recognizer.recognize(&u.samples).map_err(|e| e.to_string()),
        Engine::Remote(remote) => {
            let server = remote.address();
            let report = |kind| {
                send(Outcome::Event(Event::Remote {
                    server: server.clone(),
                    kind,
                }))
            };
            remote.recognize(&u.samples, &report)
        }
        Engine::Transcriber(_) => return None,
    };
    Some(Recognized {
        start: u.start,
        end: u.end,
        result,
        took_ms: started.elapsed().as_millis() as u64,
    })
}

/// Sends the action to start (first, so it is not held up) and the events: `wake` (and
/// the wake phrase's own action) when the phrase was said, then the recognition.
fn report(done: Recognized, gate: &mut WakeGate, engine: &Engine, send: &impl Fn(Outcome)) {
    let (start_ms, end_ms) = (ms(done.start), ms(done.end));
    let mut result = match done.result {
        Ok(result) => result,
        Err(e) => {
            send(error_at("recognising", done.start, done.end, e));
            return;
        }
    };
    let heard = gate.judge(&mut result, start_ms, end_ms);
    if let Some(intent) = result.intent.clone().filter(|_| result.reason.is_none()) {
        let request = ActionRequest {
            intent,
            slots: result.slots.clone(),
            text: Some(result.text.clone()),
        };
        send(Outcome::Act { request, end_ms });
    }
    if let Heard::Wake { alone } = heard {
        send(Outcome::Event(Event::Wake {
            start_ms,
            end_ms,
            alone,
            text: result.text.clone(),
        }));
        let request = ActionRequest {
            intent: WAKE_ACTION.to_string(),
            slots: Default::default(),
            text: engine.wake_phrase().map(str::to_string),
        };
        send(Outcome::Act { request, end_ms });
        if alone {
            // The phrase alone is no command: the `wake` event says all there is.
            return;
        }
    }
    let event = Event::recognition(result, start_ms, end_ms, done.took_ms);
    send(Outcome::Event(event));
}

fn set_grammar(
    engine: &mut Engine,
    grammar: Grammar,
    options: RecognizerOptions,
    send: &impl Fn(Outcome),
) {
    let recognizer = match engine {
        Engine::Commands(recognizer) => recognizer,
        Engine::Remote(remote) => return remote.set_grammar(grammar, options),
        Engine::Transcriber(_) => return,
    };
    let started = Instant::now();
    match recognizer.set_grammar(grammar, options) {
        Ok(()) => tracing::info!(
            ms = started.elapsed().as_millis() as u64,
            "recognising the reloaded grammar"
        ),
        Err(e) => send(Outcome::Event(Event::Error {
            message: format!("the reloaded grammar cannot be used: {e}"),
        })),
    }
}

/// Live captions: the captioner and what the partial line shows now.
pub struct Captions {
    captioner: Captioner,
    shown: String,
}

impl Captions {
    pub fn new(captioner: Captioner) -> Captions {
        Captions {
            captioner,
            shown: String::new(),
        }
    }

    // Captions need the model here; `voxd run` refuses captions with a remote server, so
    // without one there is nothing to caption.
    fn window(&mut self, engine: &Engine, window: &CaptionWindow, send: &impl Fn(Outcome)) {
        if let Some(transcriber) = engine.transcriber() {
            let update = self.captioner.window(transcriber, window);
            self.send(update, window.start, window.end(), send);
        }
    }

    fn utterance(&mut self, engine: &Engine, u: &Utterance, send: &impl Fn(Outcome)) {
        if let Some(transcriber) = engine.transcriber() {
            let update = self.captioner.utterance(transcriber, u);
            self.send(update, u.start, u.end, send);
        }
    }

    /// The stream ended: the finals still waiting for more audio.
    fn finish(&mut self, engine: &Engine, send: &impl Fn(Outcome)) {
        if let Some(transcriber) = engine.transcriber() {
            let update = self.captioner.finish(transcriber);
            self.send(update, 0, 0, send);
        }
    }

    /// Sends the finals, then the partial line when it changed (empty text clears it).
    fn send(
        &mut self,
        update: Result<CaptionUpdate, TranscribeError>,
        start: u64,
        end: u64,
        send: &impl Fn(Outcome),
    ) {
        let update = match update {
            Ok(update) => update,
            Err(e) => return send(error_at("captioning", start, end, e)),
        };
        let heard_ms = update.heard_ms;
        for text in update.finals {
            send(Outcome::Event(Event::Final {
                text: text.text,
                start_ms: text.start_ms,
                end_ms: text.end_ms,
                words: text.words,
                heard_ms,
            }));
        }
        if let Some(partial) = update.partial.filter(|p| p.text != self.shown) {
            self.shown.clone_from(&partial.text);
            send(Outcome::Event(Event::Partial {
                text: partial.text,
                start_ms: partial.start_ms,
                end_ms: partial.end_ms,
                heard_ms,
            }));
        }
    }
}

/// An error event about the audio at `start..end` (16 kHz samples).
fn error_at(doing: &str, start: u64, end: u64, e: impl std::fmt::Display) -> Outcome {
    Outcome::Event(Event::Error {
        message: format!("{doing} the audio at {}-{} ms: {e}", ms(start), ms(end)),
    })
}
