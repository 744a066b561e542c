//! `voxd wyoming`: the Wyoming protocol server for Home Assistant (speech to text, intents,
//! actions). The server is `voxd::wyoming`; this file turns the flags and the config into
//! its options.

use std::io::Write;

use anyhow::{Context, Result};
use clap::Args;

use super::{ModelArgs, Settings};
use voxd::config::{Config, ListenUri, WyomingSection};
use voxd::daemon::commands::{CommandFlags, CommandSet};
use voxd::wyoming::reply::ReplySettings;
use voxd::wyoming::{self, LiveSettings, ServeOptions};

pub const WYOMING_HELP: &str = "\
Home Assistant: Settings → Devices & services → Add integration → Wyoming Protocol, then
the host and port voxd listens on (10300 by default).

Events served:
  describe                                → info (asr, and with a grammar: intent, handle)
  transcribe, audio-start, audio-chunk…, audio-stop
                                          → transcript {text, language}
  transcribe {name: \"voxd-commands\"} + audio
                                          → transcript, then intent or not-recognized
  recognize {text}                        → intent {name, entities, text} | not-recognized
  transcript {text} | intent {name, entities}
                                          → handled {text} (the action runs; its notify
                                            text is the answer) | not-handled
                                            With [llm] enabled, text no intent matches
                                            (and [llm] intent's question) → handled {text:
                                            the reply model's answer, never run)

Wyoming has no authentication: whoever can connect can transcribe and run your intents'
actions. The default listens on 127.0.0.1 only; listen on another address only on purpose
and let a firewall admit only Home Assistant's machine. Limits: [wyoming] in the config.";

#[derive(Args)]
pub struct WyomingArgs {
    /// Where to listen: tcp://HOST:PORT or unix://PATH (created mode 0600)
    /// [default: [wyoming] uri, else tcp://127.0.0.1:10300]. A host other than 127.0.0.1 or
    /// ::1 lets other machines in: there is no authentication.
    #[arg(long, value_name = "URI")]
    uri: Option<String>,
    /// Advertise the server over mDNS as `_wyoming._tcp.local.` under NAME [default NAME:
    /// `[wyoming] zeroconf_name`, else voxd], so Home Assistant discovers it. Needs a TCP
    /// address other machines reach (0.0.0.0 or this machine's own).
    #[arg(long, value_name = "NAME", num_args = 0..=1)]
    zeroconf: Option<Option<String>>,
    /// Grammar files (TOML) for intents and actions [default: `[commands] grammars` of the
    /// config; none: speech to text only].
    #[arg(short, long, num_args = 1.., value_name = "FILE")]
    grammar: Vec<std::path::PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
}

pub fn run(args: WyomingArgs, settings: &Settings) -> Result<()> {
    let config = &settings.config;
    let mut wyoming_settings = config.wyoming.clone();
    if let Some(uri) = args.uri {
        ListenUri::parse(&uri).map_err(|problem| anyhow::anyhow!("--uri {problem}"))?;
        wyoming_settings.uri = uri;
    }
    if let Some(name) = args.zeroconf {
        wyoming_settings.zeroconf = true;
        if let Some(name) = name {
            voxd::config::check_zeroconf_name(&name)
                .map_err(|problem| anyhow::anyhow!("--zeroconf: {problem}"))?;
            wyoming_settings.zeroconf_name = name;
        }
    }
    let grammars_named = !args.grammar.is_empty() || !config.commands.grammars.is_empty();
    let commands = if grammars_named {
        let flags = CommandFlags {
            grammars: args.grammar.clone(),
            ..CommandFlags::default()
        };
        Some(CommandSet::load(settings.path.as_deref(), &flags)?)
    } else {
        None
    };
    let options = serve_options(
        config,
        wyoming_settings,
        args.model.path(config)?,
        args.model.threads.unwrap_or(config.model.threads),
        commands,
    );
    let (stop_tx, stop) = crossbeam_channel::bounded(1);
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .context("cannot watch for signals")?;
    std::thread::Builder::new()
        .name("voxd-signals".into())
        .spawn(move || {
            if signals.forever().next().is_some() {
                let _ = stop_tx.send(());
            }
        })
        .context("cannot start the signal thread")?;
    wyoming::serve(options, stop, |address| {
        // One line a script (or a test) can wait for: clients may connect from now on.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "voxd wyoming: listening on {address}");
        let _ = out.flush();
    })?;
    Ok(())
}

/// The server's options from `config`, with `settings` as its `[wyoming]` and the
/// model, threads and commands as the command line chose them.
pub fn serve_options(
    config: &Config,
    settings: WyomingSection,
    model_path: std::path::PathBuf,
    threads: usize,
    commands: Option<CommandSet>,
) -> ServeOptions {
    ServeOptions {
        settings,
        model_path,
        threads,
        transcribe: config.transcribe.options(),
        commands,
        live: LiveSettings::new(
            config.vad.clone(),
            config.captions.windows(),
            config.captions.options(config.transcribe.language.clone()),
        ),
        replies: config.llm.enabled.then(|| ReplySettings {
            llm: config.llm.clone(),
            threads: config.llm_threads(),
            shared: None,
        }),
    }
}
