//! `voxd wyoming`: a server of the Wyoming protocol, which Home Assistant speaks to its
//! speech services. It offers speech to text (`transcribe` + audio → `transcript`), the
//! grammar's commands from text (`recognize` → `intent` / `not-recognized`) and from audio
//! (`transcribe` naming [`info::COMMANDS_MODEL`]), and the intents' actions (`transcript` or
//! `intent` → `handled` / `not-handled`).
//!
//! One file per concern:
//! - `event.rs`: the wire format and its limits;
//! - `audio.rs`: a request's audio in any rate, width and channel count, to 16 kHz mono;
//! - `info.rs`: the `info` event;
//! - `live.rs`: the live transcript (`transcript-chunk`) while a request's audio arrives;
//! - `model.rs`: the shared model, loaded in the background, and its bounded queue;
//! - `server.rs`: the listener and the clients' sessions;
//! - `reply.rs`: the reply model (`[llm]`), answering what no intent matches, in a lane of
//!   its own;
//! - `zeroconf.rs`: the mDNS advertisement Home Assistant discovers the server by;
//! - `client.rs`: the other way round, `voxd run` asking a server (`[model] remote`).
//!
//! [`serve`] runs the server alone, with a model of its own (`voxd wyoming`);
//! [`start_beside`] starts it beside the daemon (`voxd run` with `[wyoming] serve`), on
//! the daemon's model, whose recogniser thread does the clients' work after the
//! microphone's.

pub mod audio;
pub mod client;
pub mod event;
pub mod info;
pub mod live;
pub mod model;
pub mod reply;
pub mod server;
pub mod zeroconf;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;

use crate::actions::{ActionError, ActionRunner};
use crate::command::Recognizer;
use crate::config::{ListenUri, WyomingSection};
use crate::daemon::commands::CommandSet;
use crate::daemon::{Engine, Guest};
use crate::whisper::tokenizer::Tokenizer;
use crate::whisper::transcribe::{TranscribeOptions, Transcriber};

use info::Offer;
pub use live::LiveSettings;
use model::Model;
use reply::{Replies, ReplySettings};
use server::{Commands, Current, Listener, Shared};
use zeroconf::{Advertisement, ZeroconfError};

#[derive(Debug, thiserror::Error)]
pub enum WyomingError {
    #[error("{uri}: cannot listen: {detail}")]
    Bind { uri: String, detail: String },
    #[error("--uri {0}")]
    Uri(String),
    #[error("cannot start the actions: {0}")]
    Actions(#[from] ActionError),
    #[error("cannot start a thread: {0}")]
    Thread(std::io::Error),
    #[error("{}: {detail}", path.display())]
    Model { path: PathBuf, detail: String },
    #[error(transparent)]
    Zeroconf(#[from] ZeroconfError),
    #[error("[llm]: {0}")]
    ReplyModel(String),
}

/// What the server runs with.
pub struct ServeOptions {
    /// `[wyoming]`, with `--uri` already laid over it.
    pub settings: WyomingSection,
    pub model_path: PathBuf,
    pub threads: usize,
    /// How `transcribe` decodes (`[transcribe]`).
    pub transcribe: TranscribeOptions,
    /// The grammar, its actions and the recogniser's options; None serves speech to text
    /// only.
    pub commands: Option<CommandSet>,
    /// How live transcripts are cut and decoded.
    pub live: LiveSettings,
    /// The reply model, with `[llm] enabled`.
    pub replies: Option<ReplySettings>,
}

/// Binds, starts loading the model and serves until `stop` says so (SIGINT or SIGTERM at
/// the command line). `listening` is told the address as soon as clients can connect —
/// before the model is loaded: `describe` is answered at once meanwhile. A model that
/// fails to load ends the server with its error.
pub fn serve(
    options: ServeOptions,
    stop: crossbeam_channel::Receiver<()>,
    listening: impl FnOnce(&str),
) -> Result<(), WyomingError> {
    let recognizer_parts = options
        .commands
        .as_ref()
        .map(|set| (set.grammar().clone(), set.recognizer_options().clone()));
    let (path, threads) = (options.model_path.clone(), options.threads);
    let load = move || load_engine(&path, threads, recognizer_parts);
    let (loaded_tx, loaded) = crossbeam_channel::bounded(1);
    let (model, _model_thread) = Model::start(
        load,
        options.transcribe.clone(),
        options.settings.queue,
        loaded_tx,
    )
    .map_err(WyomingError::Thread)?;
    // Withdrawn, and a Unix socket's file removed, when this function returns.
    let running = Running::open(options, model)?;
    listening(&running.address);
    crossbeam_channel::select! {
        recv(loaded) -> outcome => match outcome {
            Ok(Err(detail)) => {
                return Err(WyomingError::Model { path: running.model_path, detail })
            }
            Ok(Ok(())) => tracing::info!("wyoming: model ready"),
            Err(_) => {}
        },
        recv(stop) -> _ => return Ok(()),
    }
    let _ = stop.recv();
    Ok(())
}

/// Starts the server beside the daemon on `engine`, the daemon's model (loaded): the
/// server, to keep until the daemon stops, and its work for the model, which the daemon's
/// recogniser thread does ([`crate::daemon::GuestServer`]). `options.model_path` and
/// `threads` only name the model: nothing more is loaded.
pub fn start_beside(
    options: ServeOptions,
    engine: &Engine,
) -> Result<(Running, Box<dyn Guest>), WyomingError> {
    let (model, lanes) = Model::new(
        options.transcribe.clone(),
        options.settings.queue,
        Some(model::languages(engine)),
    );
    let running = Running::open(options, model)?;
    Ok((running, Box::new(lanes)))
}

/// A listening server. Dropping it withdraws the mDNS advertisement and removes a Unix
/// socket's file; the accepting thread keeps the listener to the end of the process.
pub struct Running {
    pub address: String,
    shared: Arc<Shared>,
    /// `[wyoming]` as the server started with it.
    settings: WyomingSection,
    model_path: PathBuf,
    _advertisement: Option<Advertisement>,
    _socket_file: SocketFile,
}

impl Running {
    /// Binds, starts the actions' runner and the reply model, and accepts clients for
    /// `model`.
    fn open(options: ServeOptions, model: Model) -> Result<Running, WyomingError> {
        let uri = ListenUri::parse(&options.settings.uri).map_err(WyomingError::Uri)?;
        if options.settings.zeroconf && matches!(uri, ListenUri::Unix(_)) {
            return Err(ZeroconfError::UnixSocket.into());
        }
        let listener = Listener::bind(&uri)?;
        let socket_file = SocketFile(match &uri {
            ListenUri::Unix(path) => Some(path.clone()),
            ListenUri::Tcp { .. } => None,
        });
        let offer = offer(&options)?;
        let runner = match &options.commands {
            Some(set) => {
                let (runner, events) =
                    ActionRunner::start(set.actions().clone(), set.actions_config())?;
                // The runner logs every outcome; the events are only read so that none wait.
                thread::Builder::new()
                    .name("voxd-wyoming-actions".into())
                    .spawn(move || events.iter().for_each(drop))
                    .map_err(WyomingError::Thread)?;
                Some(runner)
            }
            None => None,
        };
        let replies = match options.replies {
            Some(settings) => {
                let intent = settings.llm.intent.clone();
                let (replies, _reply_thread) = Replies::start(intent, move || settings.load())
                    .map_err(WyomingError::Thread)?;
                Some(replies)
            }
            None => None,
        };
        let current = Current {
            offer,
            commands: options.commands.as_ref().map(commands_of),
            limits: options.settings.clone(),
        };
        let shared = Arc::new(Shared::new(model, runner, replies, options.live, current));
        let address = listener.address();
        let bound = listener.tcp_address();
        let accepting = Arc::clone(&shared);
        thread::Builder::new()
            .name("voxd-wyoming-accept".into())
            .spawn(move || listener.serve(&accepting))
            .map_err(WyomingError::Thread)?;
        tracing::info!(address, "wyoming: listening");
        let advertisement = match (options.settings.zeroconf, bound) {
            (true, Some(bound)) => Some(Advertisement::start(
                &options.settings.zeroconf_name,
                bound,
            )?),
            _ => None,
        };
        Ok(Running {
            address,
            shared,
            settings: options.settings,
            model_path: options.model_path,
            _advertisement: advertisement,
            _socket_file: socket_file,
        })
    }

    /// After the daemon reloaded: `commands` (the grammar for `recognize`, the actions,
    /// the intents `info` lists) and `settings`' limits serve the requests and clients
    /// that come from now on; turning `serve` off, or a changed address, queue or
    /// advertisement, needs a restart, and the log says so.
    pub fn reload(&self, commands: Option<&CommandSet>, settings: &WyomingSection) {
        let now = self.shared.current();
        let mut offer = now.offer.clone();
        let (intents, handled, language) = command_offer(commands);
        (offer.intents, offer.handled_intents, offer.command_language) =
            (intents, handled, language);
        let restart_keys: Vec<&str> = [
            ("serve", self.settings.serve != settings.serve),
            ("uri", self.settings.uri != settings.uri),
            ("queue", self.settings.queue != settings.queue),
            ("zeroconf", self.settings.zeroconf != settings.zeroconf),
            (
                "zeroconf_name",
                self.settings.zeroconf_name != settings.zeroconf_name,
            ),
        ]
        .into_iter()
        .filter_map(|(key, changed)| changed.then_some(key))
        .collect();
        if !restart_keys.is_empty() {
            tracing::warn!(
                keys = restart_keys.join(", "),
                "[wyoming]: these changes take effect after a restart; the server keeps \
                 listening on {}",
                self.address
            );
        }
        self.shared.replace(Current {
            offer,
            commands: commands.map(commands_of),
            limits: settings.clone(),
        });
        tracing::info!("wyoming: reloaded (the requests that come from now on use it)");
    }
}

fn commands_of(set: &CommandSet) -> Commands {
    Commands {
        grammar: set.grammar().clone(),
        actions: set.actions().clone(),
    }
}

/// Removes a Unix socket's file when dropped.
struct SocketFile(Option<PathBuf>);

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Some(path) = &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The model, with the grammar when there is one, warmed up.
fn load_engine(
    path: &Path,
    threads: usize,
    commands: Option<(crate::grammar::Grammar, crate::command::RecognizerOptions)>,
) -> Result<Engine, String> {
    let started = std::time::Instant::now();
    let transcriber = Transcriber::load(path, threads).map_err(|e| e.to_string())?;
    let mut engine = match commands {
        Some((grammar, options)) => Engine::Commands(Box::new(
            Recognizer::new(transcriber, grammar, options).map_err(|e| e.to_string())?,
        )),
        None => Engine::Transcriber(Box::new(transcriber)),
    };
    engine.warm_up();
    tracing::info!(
        model = %path.display(),
        ms = started.elapsed().as_millis() as u64,
        "model loaded"
    );
    Ok(engine)
}

fn offer(options: &ServeOptions) -> Result<Offer, WyomingError> {
    let model_name = options
        .model_path
        .file_name()
        .map(|n| n.to_string_lossy().trim_end_matches(".bin").to_string())
        .unwrap_or_else(|| "whisper".into());
    let (intents, handled_intents, command_language) = command_offer(options.commands.as_ref());
    // The file is looked for now: a missing one is an error at start, not at the first
    // question.
    let reply_model = match &options.replies {
        Some(settings) => {
            let path = settings
                .llm
                .model_path()
                .map_err(|e| WyomingError::ReplyModel(e.to_string()))?;
            if !path.is_file() {
                let detail = format!("{}: no such file", path.display());
                return Err(WyomingError::ReplyModel(detail));
            }
            Some(short_name(&path))
        }
        None => None,
    };
    Ok(Offer {
        model_name,
        reply_model,
        command_language,
        early_languages: early_languages(options),
        intents,
        handled_intents,
    })
}

/// The intents of `set`, those with an action, and the language commands are heard in.
fn command_offer(set: Option<&CommandSet>) -> (Vec<String>, Vec<String>, String) {
    match set {
        Some(set) => {
            let names: Vec<String> = set
                .grammar()
                .intents()
                .iter()
                .map(|i| i.name.clone())
                .collect();
            let handled = names
                .iter()
                .filter(|name| set.actions().has_action(name))
                .cloned()
                .collect();
            (names, handled, set.recognizer_options().language.clone())
        }
        None => (Vec::new(), Vec::new(), "en".to_string()),
    }
}

/// A model file's folder and name (`smollm2/model.gguf`): what it is, without where this
/// machine keeps it.
fn short_name(path: &Path) -> String {
    let mut parts: Vec<String> = path
        .components()
        .rev()
        .take(2)
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.reverse();
    parts.join("/")
}

/// The model's languages without loading it: a CTranslate2 folder's vocabulary says (a few
/// milliseconds); a ggml file keeps its vocabulary inside the weights, so then the
/// configured transcription language stands in until the model is loaded.
fn early_languages(options: &ServeOptions) -> Vec<String> {
    match Tokenizer::from_ct2_dir(&options.model_path) {
        Ok(tokenizer) => model::tokenizer_languages(&tokenizer),
        Err(_) => options.transcribe.language.iter().cloned().collect(),
    }
}
