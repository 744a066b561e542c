//! The recogniser thread: owns the model and its compute threads, takes utterances (for
//! commands) and caption windows, and sends back events and the actions to start.
//!
//! Utterances come first: a command waits for at most the caption window being decoded,
//! never for a queue of them. Windows arrive through a one-place queue that the control
//! thread keeps filled with the newest window.
//!
//! A [`Guest`] (the Wyoming server of `[wyoming] serve`) shares the model: the order is the
//! microphone's utterances, then the guest's requests (a client waits for each), then the
//! microphone's caption window, then the guest's. The microphone is never starved: it
//! waits for at most the one piece of guest work being decoded. The guest's work is
//! bounded by its own queues, which refuse when full.
//!
//! Closing early (`[commands] early_close_ms`): the speech so far is recognised at a pause
//! ([`PauseStage::Peek`], or at the close itself), and at the close ([`PauseStage::Close`])
//! a command is acted on at once when it is accepted, the grammar has no longer sentence
//! that begins with it, and the model expects no more words ([`MIN_END_PROB`]). The
//! utterance's own end then reports nothing more. If the speaker goes on after such a close,
//! what follows the close is an utterance of its own (recognised, and acted on, by itself):
//! nothing is lost and nothing runs twice.

use std::thread::{self, JoinHandle};
use std::time::Instant;

use crossbeam_channel::{Receiver, Select, Sender, TryRecvError};

use super::event::Event;
use super::remote::Remote;
use super::wake::{Heard, WakeGate};
use super::DaemonError;
use crate::actions::{ActionRequest, WAKE_ACTION};
use crate::captions::{CaptionUpdate, Captioner};
use crate::command::{Recognition, Recognizer, RecognizerOptions};
use crate::frontend::{ms, CaptionWindow, PauseStage, Utterance, VoiceMark};
use crate::grammar::Grammar;
use crate::whisper::transcribe::{TranscribeError, Transcriber};

/// What the control thread asks of the recogniser.
pub enum Job {
    /// Speech began at this sample (captions decode partials from here).
    SpeechStart(u64),
    /// Recognise this utterance as a command. At a pause it is recognised and kept (and,
    /// at a close, acted on when complete): if the final utterance turns out the same, the
    /// kept result is reported then, without decoding again.
    Utterance { utterance: Utterance, stage: Stage },
    /// Where the front end hears voice, as it hears it (a live source): a peek at a pause
    /// that the speech has already gone on from is skipped.
    Voice(VoiceMark),
    /// The command set was reloaded: recognise this grammar from now on, and judge the wake
    /// phrase (when the grammar has one) with this conversation window.
    Grammar {
        grammar: Box<Grammar>,
        options: RecognizerOptions,
        follow_up_ms: u64,
    },
}

/// Where an utterance stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The speech paused; it may go on.
    Pause(PauseStage),
    /// The speech ended.
    End,
}

/// The least probability the model must give to no more words after a sentence for it to
/// be acted on at an early close ([`crate::command::Recognition::end_prob`]). Measured with
/// tiny.en and the example grammars on the real recorded commands: every accepted whole
/// command is at 0.59 to 0.99 (median 0.91); speech cut half way through a sentence is
/// mostly refused or left incomplete, and what is left of it comes as low as 0.05.
pub const MIN_END_PROB: f32 = 0.5;

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

/// Work for the model from beside the daemon (the Wyoming server of `[wyoming] serve`),
/// done on the recogniser thread in the order the module's documentation gives.
pub trait Guest: Send {
    /// Adds the channels the guest's work arrives on to `select`, to wait on.
    fn watch<'a>(&'a self, select: &mut Select<'a>);
    /// Does one request that waits, if any; false when none does.
    fn request(&mut self, engine: &mut Engine) -> bool;
    /// Does one caption window that waits, if any; false when none does.
    fn caption(&mut self, engine: &mut Engine) -> bool;
}

/// Starts the thread. It ends when `jobs` is closed and everything queued is done (a
/// guest's work still waiting is then dropped: its clients are told the model stopped).
/// `follow_up_ms` is the wake phrase's conversation window (`[commands] follow_up_ms`).
pub fn start(
    mut engine: Engine,
    follow_up_ms: u64,
    mut captions: Option<Captions>,
    mut guest: Option<Box<dyn Guest>>,
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
            let mut utterances = Utterances {
                kept: None,
                closed: None,
                voice: None,
                gate: WakeGate::new(engine.wake_phrase().is_some(), follow_up_ms),
            };
            // Whether a decode freed memory since the recogniser last waited.
            let mut decoded = false;
            // A window taken, decoded once the jobs sent before it are done: the control
            // thread sends a fast file's utterances and windows in the stream's order.
            let mut taken: Option<CaptionWindow> = None;
            loop {
                let job = match jobs.try_recv() {
                    Ok(job) => Some(job),
                    Err(TryRecvError::Disconnected) if taken.is_none() => break,
                    Err(TryRecvError::Empty | TryRecvError::Disconnected) => {
                        if let Some(window) = taken.take() {
                            if let Some(captions) = &mut captions {
                                captions.window(&engine, &window, &send);
                                decoded = true;
                            }
                            continue;
                        }
                        if guest.as_mut().is_some_and(|g| g.request(&mut engine)) {
                            decoded = true;
                            continue;
                        }
                        match windows.try_recv() {
                            Ok(window) => {
                                taken = Some(window);
                                continue;
                            }
                            Err(TryRecvError::Empty) => {}
                            // Closed with the jobs: the next turn ends the loop.
                            Err(TryRecvError::Disconnected) => continue,
                        }
                        if guest.as_mut().is_some_and(|g| g.caption(&mut engine)) {
                            decoded = true;
                            continue;
                        }
                        if std::mem::take(&mut decoded) {
                            release_freed_memory();
                        }
                        wait_for_work(&jobs, &windows, guest.as_deref());
                        continue;
                    }
                };
                decoded |= matches!(job, Some(Job::Utterance { .. } | Job::Grammar { .. }));
                match job {
                    Some(Job::SpeechStart(start)) => {
                        if let Some(captions) = &mut captions {
                            captions.captioner.speech_start(start);
                        }
                    }
                    Some(Job::Voice(voice)) => utterances.voice = Some(voice),
                    Some(Job::Utterance { utterance, stage }) => {
                        utterances.take(&mut engine, &utterance, stage, &send);
                        if let (Stage::End, Some(captions)) = (stage, &mut captions) {
                            captions.utterance(&engine, &utterance, &send);
                        }
                    }
                    Some(Job::Grammar {
                        grammar,
                        options,
                        follow_up_ms,
                    }) => {
                        utterances
                            .gate
                            .configure(grammar.wake_phrase().is_some(), follow_up_ms);
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

/// Waits until an utterance, a window or the guest's work arrives (or a channel closes);
/// the caller then takes them in its order.
fn wait_for_work(
    jobs: &Receiver<Job>,
    windows: &Receiver<CaptionWindow>,
    guest: Option<&dyn Guest>,
) {
    let mut select = Select::new();
    select.recv(jobs);
    select.recv(windows);
    if let Some(guest) = guest {
        guest.watch(&mut select);
    }
    select.ready();
}

/// Gives the memory freed since the last call back to the system, before the recogniser
/// waits for work. Decoding an utterance or a caption window frees tens of megabytes of
/// activations, caches and scores (the encoder's alone are 15-20 MiB at 30 s); glibc keeps
/// most of it in its arenas, where only the next decode reuses it, and the daemon would sit
/// at its peak while it waits.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A recognised utterance, not yet reported.
struct Recognized {
    start: u64,
    end: u64,
    voice_end: u64,
    result: Result<Recognition, String>,
    took_ms: u64,
}

impl Recognized {
    /// Whether this result stands for `u` at `stage`: at a close, the same speech (a
    /// little more silence after it changes nothing that matters); at the settled pause
    /// and the end, exactly the same audio.
    fn stands_for(&self, u: &Utterance, stage: Stage) -> bool {
        match stage {
            Stage::Pause(PauseStage::Peek) => false,
            Stage::Pause(PauseStage::Close) => {
                (self.start, self.voice_end) == (u.start, u.voice_end)
            }
            Stage::Pause(PauseStage::Settled) | Stage::End => {
                (self.start, self.end) == (u.start, u.end)
            }
        }
    }

    /// A command to act on at an early close: accepted, the grammar has nothing longer
    /// that begins with it, and the model expects no more words.
    fn complete(&self) -> bool {
        self.result.as_ref().is_ok_and(|r| {
            r.intent.is_some() && r.reason.is_none() && !r.goes_on && r.end_prob >= MIN_END_PROB
        })
    }
}

/// An utterance of the front end acted on at an early close.
#[derive(Clone, Copy, Debug)]
struct Closed {
    /// The front end's utterance (its first sample).
    start: u64,
    /// The speech acted on ended here...
    voice_end: u64,
    /// ...and the command's utterance here: speech after it is another utterance.
    end: u64,
}

/// The command side of the recogniser: results kept from pauses, early closes, the wake
/// phrase's gate.
struct Utterances {
    /// The result for the last pause, waiting for the close or the end.
    kept: Option<Recognized>,
    /// The front end's current utterance, when it was acted on at an early close.
    closed: Option<Closed>,
    /// Where a live source last had voice.
    voice: Option<VoiceMark>,
    gate: WakeGate,
}

impl Utterances {
    /// Handles the utterance `u` at `stage`: recognises it (or takes the result kept for
    /// it), acts on it at a close when it is complete, and reports it at its end.
    fn take(&mut self, engine: &mut Engine, u: &Utterance, stage: Stage, send: &impl Fn(Outcome)) {
        let closed = self.closed.filter(|c| c.start == u.start);
        if stage == Stage::End || closed.is_none() {
            self.closed = None;
        }
        let rest;
        let u = match closed {
            // Nothing said since the close: the command was handled.
            Some(c) if u.voice_end <= c.voice_end => return,
            // The speaker went on: what follows the close is an utterance of its own.
            Some(c) => {
                rest = after(u, c.end);
                &rest
            }
            None => u,
        };
        // A peek serves only the close of the same speech, which will not come if the
        // speech went on: the recogniser is better kept free for what does come.
        let went_on = self.voice.as_ref().is_some_and(|v| v.get() > u.voice_end);
        if stage == Stage::Pause(PauseStage::Peek) && went_on {
            return;
        }
        // A speech server is asked once, for the whole utterance.
        if matches!(engine, Engine::Remote(_)) && stage != Stage::End {
            return;
        }
        let kept = self.kept.take().filter(|k| k.stands_for(u, stage));
        let Some(mut done) = kept.or_else(|| recognize(engine, u, send)) else {
            return;
        };
        match stage {
            Stage::Pause(PauseStage::Close) if done.complete() => {
                (done.end, done.voice_end) = (u.end, u.voice_end);
                report(done, true, &mut self.gate, engine, send);
                let front_start = closed.map_or(u.start, |c| c.start);
                self.closed = Some(Closed {
                    start: front_start,
                    voice_end: u.voice_end,
                    end: u.end,
                });
            }
            Stage::Pause(_) => self.kept = Some(done),
            Stage::End => report(done, false, &mut self.gate, engine, send),
        }
    }
}

/// The part of `u` from `from` on, as an utterance of its own.
fn after(u: &Utterance, from: u64) -> Utterance {
    let from = from.clamp(u.start, u.end);
    let skip = (from - u.start) as usize;
    Utterance {
        start: from,
        end: u.end,
        onset: u.onset.max(from),
        voice_end: u.voice_end.max(from),
        samples: u.samples[skip.min(u.samples.len())..].to_vec(),
        cut: u.cut,
        heard_to: u.heard_to,
        lead_in: Vec::new(),
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
        voice_end: u.voice_end,
        result,
        took_ms: started.elapsed().as_millis() as u64,
    })
}

/// Sends the action to start (first, so it is not held up) and the events: `wake` (and
/// the wake phrase's own action) when the phrase was said, then the recognition (`early`:
/// at an early close).
fn report(
    done: Recognized,
    early: bool,
    gate: &mut WakeGate,
    engine: &Engine,
    send: &impl Fn(Outcome),
) {
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
    let event = Event::recognition(result, start_ms, end_ms, done.took_ms, early);
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
