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
use crate::daemon::Engine;
use crate::whisper::tokenizer::Tokenizer;
use crate::whisper::transcribe::{TranscribeOptions, Transcriber};

use info::Offer;
pub use live::LiveSettings;
use model::Model;
use reply::{Replies, ReplySettings};
use server::{Commands, Listener, Shared};
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
    let uri = ListenUri::parse(&options.settings.uri).map_err(WyomingError::Uri)?;
    if options.settings.zeroconf && matches!(uri, ListenUri::Unix(_)) {
        return Err(ZeroconfError::UnixSocket.into());
    }
    let listener = Listener::bind(&uri)?;
    // The accepting thread keeps the listener to the end of the process; the socket file
    // goes when this function returns, however it returns.
    let _socket_file = SocketFile(match &uri {
        ListenUri::Unix(path) => Some(path.clone()),
        ListenUri::Tcp { .. } => None,
    });
    let offer = offer(&options)?;
    let zeroconf_name = options
        .settings
        .zeroconf
        .then(|| options.settings.zeroconf_name.clone());
    let (commands, recognizer_parts) = match options.commands {
        Some(set) => {
            let (runner, events) =
                ActionRunner::start(set.actions().clone(), set.actions_config())?;
            // The runner logs every outcome; the events are only read so that none wait.
            thread::Builder::new()
                .name("voxd-wyoming-actions".into())
                .spawn(move || events.iter().for_each(drop))
                .map_err(WyomingError::Thread)?;
            let parts = (set.grammar().clone(), set.recognizer_options().clone());
            let commands = Commands {
                grammar: set.grammar().clone(),
                actions: set.actions().clone(),
                runner,
            };
            (Some(commands), Some(parts))
        }
        None => (None, None),
    };
    let (path, threads) = (options.model_path.clone(), options.threads);
    let load = move || load_engine(&path, threads, recognizer_parts);
    let (loaded_tx, loaded) = crossbeam_channel::bounded(1);
    let (model, _model_thread) =
        Model::start(load, options.transcribe, options.settings.queue, loaded_tx)
            .map_err(WyomingError::Thread)?;
    let replies = match options.replies {
        Some(settings) => {
            let intent = settings.llm.intent.clone();
            let (replies, _reply_thread) =
                Replies::start(intent, move || settings.load()).map_err(WyomingError::Thread)?;
            Some(replies)
        }
        None => None,
    };
    let shared = Arc::new(Shared {
        model,
        offer,
        commands,
        replies,
        limits: options.settings,
        live: options.live,
    });
    let address = listener.address();
    let bound = listener.tcp_address();
    thread::Builder::new()
        .name("voxd-wyoming-accept".into())
        .spawn(move || listener.serve(&shared))
        .map_err(WyomingError::Thread)?;
    tracing::info!(address, "wyoming: listening");
    // Withdrawn when this function returns, however it returns.
    let _advertisement = match (zeroconf_name, bound) {
        (Some(name), Some(bound)) => Some(Advertisement::start(&name, bound)?),
        _ => None,
    };
    listening(&address);
    crossbeam_channel::select! {
        recv(loaded) -> outcome => match outcome {
            Ok(Err(detail)) => {
                return Err(WyomingError::Model { path: options.model_path, detail })
            }
            Ok(Ok(())) => tracing::info!("wyoming: model ready"),
            Err(_) => {}
        },
        recv(stop) -> _ => return Ok(()),
    }
    let _ = stop.recv();
    Ok(())
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
    let (intents, handled_intents, command_language) = match &options.commands {
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
    };
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
