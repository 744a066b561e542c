//! The model's lanes: one model shared by every client, working through a bounded queue
//! of requests. A request that finds the queue full is refused at once, never left
//! waiting. The model works on its own thread for `voxd wyoming` (loaded in the
//! background: the server answers `describe` meanwhile), or is the daemon's, beside its
//! microphone, for `voxd run` with `[wyoming] serve` ([`Lanes`] is then the daemon's
//! [`Guest`]).
//!
//! Caption windows for the clients' live transcripts (`transcript-chunk`) come through a
//! lane of their own, taken only when no request waits: a transcript the client is waiting
//! for never waits behind captions, and a window that finds the lane full is skipped (the
//! next one holds the same audio and more).

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use crossbeam_channel::{Receiver, Select, Sender, TryRecvError, TrySendError};

use crate::captions::{CaptionUpdate, Captioner};
use crate::command::Recognition;
use crate::daemon::{Engine, Guest};
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
    /// When it was queued: the log tells the wait from the work.
    queued: Instant,
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
    /// The clients' handle and the lanes behind it, for a model its owner works on:
    /// `languages` are what it transcribes (None while it loads). Up to `queue` requests wait
    /// behind the one being worked on.
    pub fn new(
        options: TranscribeOptions,
        queue: usize,
        languages: Option<Vec<String>>,
    ) -> (Model, Lanes) {
        let (jobs, waiting) = crossbeam_channel::bounded(queue);
        let (captions, windows) = crossbeam_channel::bounded(CAPTION_LANE);
        let model = Model {
            jobs,
            captions,
            queue,
            state: Arc::new(Mutex::new(ModelState { languages })),
        };
        let lanes = Lanes {
            jobs: waiting,
            captions: windows,
            options,
        };
        (model, lanes)
    }

    /// Starts a thread of its own, which runs `load` first and then takes requests (also
    /// queued while it loads). `loaded` receives the outcome of the load once.
    pub fn start(
        load: impl FnOnce() -> Result<Engine, String> + Send + 'static,
        options: TranscribeOptions,
        queue: usize,
        loaded: Sender<Result<(), String>>,
    ) -> std::io::Result<(Model, JoinHandle<()>)> {
        let (model, lanes) = Model::new(options, queue, None);
        let shared = Arc::clone(&model.state);
        let handle = thread::Builder::new()
            .name("voxd-wyoming-model".into())
            .spawn(move || {
                let engine = load();
                if let Ok(engine) = &engine {
                    shared
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .languages = Some(languages(engine));
                }
                // Nobody waiting for the outcome is fine: the server is shutting down.
                let _ = loaded.send(engine.as_ref().map(drop).map_err(Clone::clone));
                let mut engine = engine.map_err(|e| format!("the model did not load: {e}"));
                // A client that hung up meanwhile no longer wants the answer: sends may fail.
                while let Some(work) = lanes.next() {
                    lanes.work(work, engine.as_mut().map_err(|e| e.as_str()));
                }
            })?;
        Ok((model, handle))
    }

    /// Queues `request`; the answer arrives on the receiver.
    pub fn submit(&self, request: Request) -> Result<Receiver<Result<Answer, String>>, Refusal> {
        let (reply, answer) = crossbeam_channel::bounded(1);
        let job = Job {
            request,
            reply,
            queued: Instant::now(),
        };
        match self.jobs.try_send(job) {
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

/// The languages `engine`'s model transcribes.
pub fn languages(engine: &Engine) -> Vec<String> {
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

/// What the model takes next.
enum Work {
    Request(Job),
    Caption(CaptionJob, Sender<CaptionDone>),
}

/// The receiving ends of the lanes: what the model's owner works through.
pub struct Lanes {
    jobs: Receiver<Job>,
    captions: Receiver<(CaptionJob, Sender<CaptionDone>)>,
    options: TranscribeOptions,
}

impl Lanes {
    /// The next piece of work, waiting for one: a request whenever one waits, else
    /// whichever comes first. None once the clients' handles are gone.
    fn next(&self) -> Option<Work> {
        match self.jobs.try_recv() {
            Ok(job) => return Some(Work::Request(job)),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => {}
        }
        crossbeam_channel::select! {
            recv(self.jobs) -> job => job.ok().map(Work::Request),
            recv(self.captions) -> caption => {
                caption.ok().map(|(job, reply)| Work::Caption(job, reply))
            }
        }
    }

    /// Does `work` and sends its answer; `engine` is the model, or why there is none.
    fn work(&self, work: Work, engine: Result<&mut Engine, &str>) {
        let started = Instant::now();
        match work {
            Work::Request(job) => {
                let waited_ms = started.duration_since(job.queued).as_millis() as u64;
                let answer = match engine {
                    Ok(engine) => work_on(engine, &self.options, job.request, waited_ms),
                    Err(e) => Err(e.to_string()),
                };
                let _ = job.reply.send(answer);
            }
            Work::Caption(mut job, reply) => {
                let update = match engine.map(|e| e.transcriber()) {
                    Ok(Some(transcriber)) => job
                        .captioner
                        .window(transcriber, &job.window)
                        .map_err(|e| e.to_string()),
                    Ok(None) => Err("no model is loaded here".to_string()),
                    Err(e) => Err(e.to_string()),
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

/// Beside the daemon's microphone: requests are taken when no utterance waits, caption
/// windows when nothing else does.
impl Guest for Lanes {
    fn watch<'a>(&'a self, select: &mut Select<'a>) {
        select.recv(&self.jobs);
        select.recv(&self.captions);
    }

    fn request(&mut self, engine: &mut Engine) -> bool {
        match self.jobs.try_recv() {
            Ok(job) => {
                self.work(Work::Request(job), Ok(engine));
                true
            }
            Err(_) => false,
        }
    }

    fn caption(&mut self, engine: &mut Engine) -> bool {
        match self.captions.try_recv() {
            Ok((job, reply)) => {
                self.work(Work::Caption(job, reply), Ok(engine));
                true
            }
            Err(_) => false,
        }
    }
}

fn work_on(
    engine: &mut Engine,
    options: &TranscribeOptions,
    request: Request,
    waited_ms: u64,
) -> Result<Answer, String> {
    let started = Instant::now();
    let audio_ms = |samples: &[f32]| (samples.len() / 16) as u64;
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
            // A temperature above 0 means the fallback decoded the audio again, sampling:
            // the slow requests.
            let temperature = transcript
                .segments
                .iter()
                .map(|s| s.temperature)
                .fold(0.0, f32::max);
            tracing::info!(
                audio_ms = audio_ms(&samples),
                waited_ms,
                ms = started.elapsed().as_millis() as u64,
                temperature,
                "wyoming: transcribed"
            );
            Ok(Answer::Transcript {
                text: transcript.text().trim().to_string(),
                language: transcript.language,
            })
        }
        Request::Recognize { samples } => match engine {
            Engine::Commands(recognizer) => {
                let recognition = recognizer.recognize(&samples).map_err(|e| e.to_string())?;
                tracing::info!(
                    audio_ms = audio_ms(&samples),
                    waited_ms,
                    ms = started.elapsed().as_millis() as u64,
                    intent = recognition.intent.as_deref().unwrap_or(""),
                    "wyoming: recognised"
                );
                Ok(Answer::Recognition(Box::new(recognition)))
            }
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
