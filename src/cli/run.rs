//! `voxd run`: the daemon, started from the config and the flags.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::Args;

use super::{ModelArgs, Settings, SourceArgs};
use voxd::captions::Captioner;
use voxd::command::Recognizer;
use voxd::config::{RunMode, StdoutFormat};
use voxd::daemon::{self, commands::CommandFlags, CommandSet};

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
    let reply = if config.llm.enabled {
        let answer =
            daemon::reply::model_answerer(config).context("cannot load the reply model")?;
        Some(daemon::ReplyOptions::new(config, answer))
    } else {
        None
    };
    let source = args.source.source(config)?;
    let transcriber = args.model.load(config)?;
    let model_name = args
        .model
        .path(config)?
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut front_end = config.front_end(mode.captions());
    if let Some(set) = &commands {
        front_end.segment.early_close_ms = set.settings().early_close_ms;
    }
    let engine = match &commands {
        Some(set) => {
            let options = set.recognizer_options().clone();
            let recognizer = Recognizer::new(transcriber, set.grammar().clone(), options)?;
            daemon::Engine::Commands(Box::new(recognizer))
        }
        None => daemon::Engine::Transcriber(Box::new(transcriber)),
    };
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
    })?;
    Ok(())
}
