//! `voxd run`: the daemon, started from the config and the flags.

use std::path::PathBuf;

use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::Args;

use super::{ModelArgs, Settings, SourceArgs};
use voxd::captions::Captioner;
use voxd::command::Recognizer;
use voxd::config::{Config, ListenUri, RunMode, StdoutFormat};
use voxd::daemon::remote::{Remote, SpeechService};
use voxd::daemon::{self, commands::CommandFlags, CommandSet};
use voxd::wyoming::{self, client::WyomingClient};

#[derive(Args)]
pub struct RunArgs {
    /// What to listen for [default: the config's [run] mode: commands].
    #[arg(long, value_parser = PossibleValuesParser::new(RunMode::NAMES).try_map(|s| s.parse::<RunMode>()))]
    mode: Option<RunMode>,
    /// Grammar files (TOML) [default: `[commands] grammars` of the config].
    #[arg(short, long, num_args = 1.., value_name = "FILE")]
    grammar: Vec<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// Have this Wyoming speech-to-text server (tcp://HOST:PORT or unix://PATH) transcribe
    /// the utterances instead of the model here; the grammars and actions stay here
    /// [default: [model] remote].
    #[arg(long, value_name = "URI", conflicts_with = "model")]
    remote: Option<String>,
    #[command(flatten)]
    source: SourceArgs,
    /// Events on standard output: auto (text on a terminal, else JSON lines), json, text,
    /// off [default: the config's [events] stdout, else auto].
    #[arg(long, value_name = "FORMAT",
          value_parser = PossibleValuesParser::new(StdoutFormat::NAMES).try_map(|s| s.parse::<StdoutFormat>()))]
    stdout: Option<StdoutFormat>,
    /// Also append the events as JSON lines to this file [default: [events] file].
    #[arg(long, value_name = "FILE")]
    events_file: Option<PathBuf>,
    /// Also serve the events on this Unix socket, mode 0600 [default: [events] socket].
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Write the final captions to this subtitle file too, cue by cue (.vtt or .srt;
    /// repeatable) [default: [captions] vtt and srt].
    #[arg(long, value_name = "FILE")]
    subtitles: Vec<PathBuf>,
    /// Do not reload when the config or a grammar file changes (SIGHUP still reloads).
    #[arg(long)]
    no_watch: bool,
}

pub fn run(args: RunArgs, settings: &Settings) -> Result<()> {
    let (config, config_path) = (&settings.config, settings.path.as_deref());
    let mode = args.mode.unwrap_or(config.run.mode);
    if config.wyoming.serve && args.remote.is_some() {
        bail!(
            "--remote: {}",
            voxd::config::SERVE_REMOTE.replace("[model] remote", "--remote")
        );
    }
    let commands = if mode.commands() {
        let flags = CommandFlags {
            grammars: args.grammar.clone(),
            ..Default::default()
        };
        let set = CommandSet::load(config_path, &flags)?;
        tracing::info!(
            intents = set.grammar().intents().len(),
            files = set.settings().grammars.len(),
            "commands loaded"
        );
        Some(set)
    } else {
        None
    };
    let remote = args.remote.as_ref().or(config.model.remote.as_ref());
    if config.wyoming.serve && args.remote.is_some() {
        bail!(
            "--remote: {}",
            voxd::config::SERVE_REMOTE.replace("[model] remote", "--remote")
        );
    }
    // With the Wyoming server beside the daemon, both ask the one reply model.
    let mut shared_answerer = None;
    let reply = if config.llm.enabled {
        let mut answer =
            daemon::reply::model_answerer(config).context("cannot load the reply model")?;
        if config.wyoming.serve {
            let shared = std::sync::Arc::new(std::sync::Mutex::new(answer));
            answer = daemon::reply::asking(&shared);
            shared_answerer = Some(shared);
        }
        Some(daemon::ReplyOptions::new(config, answer))
    } else {
        None
    };
    let source = args.source.source(config)?;
    let mut front_end = config.front_end(mode.captions());
    if let Some(set) = &commands {
        front_end.segment.early_close_ms = set.settings().early_close_ms;
    }
    let (engine, model_name) = match remote {
        Some(uri) => remote_engine(uri, args.remote.is_some(), mode, commands.as_ref(), config)?,
        None => local_engine(&args.model, commands.as_ref(), config)?,
    };
    let server = if config.wyoming.serve {
        let mut options = super::wyoming::serve_options(
            config,
            config.wyoming.clone(),
            args.model.path(config)?,
            args.model.threads.unwrap_or(config.model.threads),
            commands.clone(),
        );
        if let Some(replies) = &mut options.replies {
            replies.shared = shared_answerer;
        }
        let (running, work) = wyoming::start_beside(options, &engine)?;
        Some((std::sync::Arc::new(running), work))
    } else {
        None
    };
    let guest = server.map(|(running, work)| daemon::GuestServer {
        work,
        reloaded: reload_server(running, config_path.map(PathBuf::from)),
    });
    let output = daemon::OutputOptions {
        stdout: args.stdout.unwrap_or(config.events.stdout),
        file: args.events_file.or_else(|| config.events.file.clone()),
        socket: args.socket.or_else(|| config.events.socket.clone()),
    };
    daemon::run(daemon::RunOptions {
        mode,
        commands,
        engine,
        model_name,
        source,
        front_end,
        output,
        captions: mode
            .captions()
            .then(|| Captioner::new(config.captions.options(config.transcribe.language.clone()))),
        subtitles: if args.subtitles.is_empty() {
            config.captions.subtitle_files()
        } else {
            args.subtitles
        },
        watch_files: !args.no_watch,
        reply,
        guest,
    })?;
    Ok(())
}

/// What a reload does to the Wyoming server beside the daemon: the command set now in use
/// and `[wyoming]` read again from `config_path` (a file that no longer reads keeps the
/// server as it is).
fn reload_server(
    running: std::sync::Arc<wyoming::Running>,
    config_path: Option<PathBuf>,
) -> daemon::OnReload {
    Box::new(move |commands| {
        let settings = match &config_path {
            Some(path) => match Config::load(path) {
                Ok(config) => config.wyoming,
                Err(e) => {
                    tracing::error!("reload failed, the Wyoming server keeps its settings: {e}");
                    return;
                }
            },
            None => Config::default().wyoming,
        };
        running.reload(commands, &settings);
    })
}

/// The model here, with the grammar when commands are on, and its name for `ready`.
fn local_engine(
    model: &ModelArgs,
    commands: Option<&CommandSet>,
    config: &Config,
) -> Result<(daemon::Engine, String)> {
    let transcriber = model.load(config)?;
    let name = model
        .path(config)?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let engine = match commands {
        Some(set) => {
            let options = set.recognizer_options().clone();
            let recognizer = Recognizer::new(transcriber, set.grammar().clone(), options)?;
            daemon::Engine::Commands(Box::new(recognizer))
        }
        None => daemon::Engine::Transcriber(Box::new(transcriber)),
    };
    Ok((engine, name))
}

/// The grammar with the Wyoming server at `uri` hearing for it; its address is the name
/// in `ready`. `from_flag`: `uri` is `--remote`'s, else the config's.
fn remote_engine(
    uri: &str,
    from_flag: bool,
    mode: RunMode,
    commands: Option<&CommandSet>,
    config: &Config,
) -> Result<(daemon::Engine, String)> {
    let origin = || {
        if from_flag {
            "--remote".to_string()
        } else {
            config
                .origin("model", "remote")
                .unwrap_or_else(|| "[model] remote".into())
        }
    };
    let parsed = ListenUri::parse(uri).map_err(|e| anyhow::anyhow!("{}: {e}", origin()))?;
    let Some(set) = commands.filter(|_| !mode.captions()) else {
        bail!(
            "{}: a speech server hears commands only, and captions need the model on this \
             machine: use --mode commands (or [run] mode = \"commands\"), or leave out the \
             server",
            origin()
        );
    };
    let client = WyomingClient::new(parsed);
    let name = client.address();
    tracing::info!(server = name, "utterances go to the speech server");
    let remote = Remote::new(
        Box::new(client),
        set.grammar().clone(),
        set.recognizer_options().clone(),
        Duration::from_secs(config.model.remote_retry_s),
    );
    Ok((daemon::Engine::Remote(Box::new(remote)), name))
}
