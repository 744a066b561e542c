//! The model thread: one model shared by every client, loaded in the background (the
//! server answers `describe` meanwhile), working through a bounded queue of requests. A
//! request that finds the queue full is refused at once, never left waiting.
//!
//! Caption windows for the clients' live transcripts (`transcript-chunk`) come through a
//! lane of their own, taken only when no request waits: a transcript the client is waiting
//! for never waits behind captions, and a window that finds the lane full is skipped (the
//! next one holds the same audio and more).

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::captions::{CaptionUpdate, Captioner};
use crate::command::Recognition;
use crate::daemon::Engine;
use crate::frontend::CaptionWindow;
use crate::whisper::tokenizer::Tokenizer;
use crate::whisper::transcribe::TranscribeOptions;

/// What a client asks of the model, with 16 kHz mono audio.
pub enum Request {
    /// Free transcription; `language` overrides the configured one.
    Transcribe {
        samples: Vec<f32>,
        language: Option<String>,
    },
    /// Grammar-constrained recognition of one command.
    Recognize { samples: Vec<f32> },
}

/// The model's answer.
pub enum Answer {
    Transcript { text: String, language: String },
    Recognition(Box<Recognition>),
}

struct Job {
    request: Request,
    reply: Sender<Result<Answer, String>>,
}

/// A caption window of a client's audio, with that client's captioner (which travels to
/// the model thread and back, so each client's captions keep their own state).
pub struct CaptionJob {
    pub captioner: Box<Captioner>,
    pub window: CaptionWindow,
}

/// A decoded caption window: the captioner back, and what became final.
pub struct CaptionDone {
    pub captioner: Box<Captioner>,
    pub update: Result<CaptionUpdate, String>,
}

/// Caption windows waiting for the model, across all clients: captions use the time the
/// requests leave, and two keep the model busy while one more is cut.
const CAPTION_LANE: usize = 2;

/// Why a request was not queued.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("busy: {0} requests are already waiting for the model; try again")]
    Busy(usize),
    #[error("the model thread has stopped")]
    Stopped,
}

/// What is known of the model: nothing while it loads.
#[derive(Clone, Debug, Default)]
pub struct ModelState {
    /// The languages it transcribes, once loaded.
    pub languages: Option<Vec<String>>,
}

/// The clients' handle on the model thread.
#[derive(Clone)]
pub struct Model {
    jobs: Sender<Job>,
    captions: Sender<(CaptionJob, Sender<CaptionDone>)>,
    queue: usize,
    state: Arc<Mutex<ModelState>>,
}

impl Model {
    /// Starts the thread, which runs `load` first and then takes requests: up to `queue`
    /// wait behind the one being worked on (also while loading). `loaded` receives the
    /// outcome of the load once.
    pub fn start(
        load: impl FnOnce() -> Result<Engine, String> + Send + 'static,
        options: TranscribeOptions,
        queue: usize,
        loaded: Sender<Result<(), String>>,
    ) -> std::io::Result<(Model, JoinHandle<()>)> {
        let (jobs, waiting) = crossbeam_channel::bounded(queue);
        let (captions, windows) = crossbeam_channel::bounded(CAPTION_LANE);
        let state = Arc::new(Mutex::new(ModelState::default()));
        let shared = Arc::clone(&state);
        let handle = thread::Builder::new()
            .name("voxd-wyoming-model".into())
            .spawn(move || {
                let engine = load();
                if let Ok(engine) = &engine {
                    let languages = languages(engine);
                    shared
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .languages = Some(languages);
                }
                // Nobody waiting for the outcome is fine: the server is shutting down.
                let _ = loaded.send(engine.as_ref().map(drop).map_err(Clone::clone));
                serve(engine, &options, &waiting, &windows);
            })?;
        let model = Model {
            jobs,
            captions,
            queue,
            state,
        };
        Ok((model, handle))
    }

    /// Queues `request`; the answer arrives on the receiver.
    pub fn submit(&self, request: Request) -> Result<Receiver<Result<Answer, String>>, Refusal> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        match self.jobs.try_send(Job { request, reply }) {
            Ok(()) => Ok(answer),
            Err(TrySendError::Full(_)) => Err(Refusal::Busy(self.queue)),
            Err(TrySendError::Disconnected(_)) => Err(Refusal::Stopped),
        }
    }

    /// Offers a caption window; when the lane is full the job comes back, to be offered
    /// again with a later window.
    pub fn submit_caption(&self, job: CaptionJob) -> Result<Receiver<CaptionDone>, CaptionJob> {
        let (reply, done) = crossbeam_channel::bounded(1);
        match self.captions.try_send((job, reply)) {
            Ok(()) => Ok(done),
            Err(TrySendError::Full((job, _)) | TrySendError::Disconnected((job, _))) => Err(job),
        }
    }

    pub fn state(&self) -> ModelState {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn languages(engine: &Engine) -> Vec<String> {
    engine
        .transcriber()
        .map(|t| tokenizer_languages(&t.tokenizer))
        .unwrap_or_default()
}

/// The languages a model with `tokenizer` transcribes: English alone for the English-only
/// vocabulary.
pub fn tokenizer_languages(tokenizer: &Tokenizer) -> Vec<String> {
    let languages = &tokenizer.special().languages;
    if tokenizer.is_multilingual() && !languages.is_empty() {
        languages.iter().map(|(code, _)| code.clone()).collect()
    } else {
        vec!["en".to_string()]
    }
}

/// What the model thread takes next.
enum Work {
    Request(Job),
    Caption(CaptionJob, Sender<CaptionDone>),
}

/// The next piece of work: a request whenever one waits, else whichever comes first.
/// None once the clients' handles are gone.
fn next(
    jobs: &Receiver<Job>,
    captions: &Receiver<(CaptionJob, Sender<CaptionDone>)>,
) -> Option<Work> {
    match jobs.try_recv() {
        Ok(job) => return Some(Work::Request(job)),
        Err(crossbeam_channel::TryRecvError::Disconnected) => return None,
        Err(crossbeam_channel::TryRecvError::Empty) => {}
    }
    crossbeam_channel::select! {
        recv(jobs) -> job => job.ok().map(Work::Request),
        recv(captions) -> caption => caption.ok().map(|(job, reply)| Work::Caption(job, reply)),
    }
}

/// Answers every job until the clients' handles are gone.
fn serve(
    engine: Result<Engine, String>,
    options: &TranscribeOptions,
    jobs: &Receiver<Job>,
    captions: &Receiver<(CaptionJob, Sender<CaptionDone>)>,
) {
    let mut engine = engine.map_err(|e| format!("the model did not load: {e}"));
    // A client that hung up meanwhile no longer wants the answer: sends may fail.
    while let Some(work) = next(jobs, captions) {
        let started = std::time::Instant::now();
        match (work, &mut engine) {
            (Work::Request(job), Ok(engine)) => {
                let answer = work_on(engine, options, job.request);
                tracing::debug!(ms = started.elapsed().as_millis() as u64, "request done");
                let _ = job.reply.send(answer);
            }
            (Work::Request(job), Err(e)) => {
                let _ = job.reply.send(Err(e.clone()));
            }
            (Work::Caption(mut job, reply), engine) => {
                let update = match engine.as_ref().map(|e| e.transcriber()) {
                    Ok(Some(transcriber)) => job
                        .captioner
                        .window(transcriber, &job.window)
                        .map_err(|e| e.to_string()),
                    Ok(None) => Err("no model is loaded here".to_string()),
                    Err(e) => Err(e.clone()),
                };
                tracing::debug!(
                    ms = started.elapsed().as_millis() as u64,
                    "caption window done"
                );
                let captioner = job.captioner;
                let _ = reply.send(CaptionDone { captioner, update });
            }
        }
    }
}

fn work_on(
    engine: &mut Engine,
    options: &TranscribeOptions,
    request: Request,
) -> Result<Answer, String> {
    match request {
        Request::Transcribe { samples, language } => {
            let options = TranscribeOptions {
                language: language.or_else(|| options.language.clone()),
                ..options.clone()
            };
            let transcript = engine
                .transcriber()
                .ok_or("no model is loaded here")?
                .transcribe(&samples, &options, |_| {})
                .map_err(|e| e.to_string())?;
            Ok(Answer::Transcript {
                text: transcript.text().trim().to_string(),
                language: transcript.language,
            })
        }
        Request::Recognize { samples } => match engine {
            Engine::Commands(recognizer) => recognizer
                .recognize(&samples)
                .map(|r| Answer::Recognition(Box::new(r)))
                .map_err(|e| e.to_string()),
            Engine::Transcriber(_) | Engine::Remote(_) => {
                Err("no grammar is loaded: start voxd wyoming with \
                                           --grammar or [commands] grammars"
                    .to_string())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model that is still loading takes `queue` requests and refuses the next at once;
    /// once the load fails, every waiting request is answered with the failure.
    #[test]
    fn a_full_queue_refuses_at_once_and_nothing_waits_forever() {
        let (release, gate) = crossbeam_channel::bounded::<()>(0);
        let (loaded_tx, loaded) = crossbeam_channel::bounded(1);
        let load = move || {
            let _ = gate.recv();
            Err("no model here".to_string())
        };
        let (model, thread) =
            Model::start(load, TranscribeOptions::default(), 2, loaded_tx).unwrap();
        let request = || Request::Recognize {
            samples: vec![0.0; 16],
        };
        let waiting: Vec<_> = (0..2).map(|_| model.submit(request()).unwrap()).collect();
        assert!(matches!(model.submit(request()), Err(Refusal::Busy(2))));
        assert!(model.state().languages.is_none());
        drop(release);
        assert_eq!(loaded.recv().unwrap(), Err("no model here".to_string()));
        for answer in waiting {
            let error = answer.recv().unwrap().err().unwrap();
            assert!(error.contains("did not load: no model here"), "{error}");
        }
        drop(model);
        thread.join().unwrap();
    }
}
