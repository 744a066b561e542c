//! The `voxd` command line: one file per subcommand, each with its arguments and its `run`.
//! What several subcommands share is here: the settings file, the Whisper model flags, the
//! audio source flags and the error text.

pub mod ask;
pub mod bench;
pub mod chat;
pub mod devices;
pub mod doctor;
pub mod grammar;
pub mod install_service;
pub mod listen;
pub mod model;
pub mod recognize;
pub mod run;
pub mod transcribe;
pub mod wyoming;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context as _, Result};
use clap::Args;

use voxd::capture;
use voxd::config::Config;
use voxd::frontend;
use voxd::whisper::transcribe::Transcriber;

/// The settings file a subcommand reads when it asks for it: `--config`, else the user's
/// own when there is one, else the built-in defaults.
pub struct Settings {
    /// The file read (None: the defaults).
    pub path: Option<PathBuf>,
    pub config: Config,
}

impl Settings {
    pub fn load(flag: Option<&Path>) -> Result<Settings, voxd::config::ConfigError> {
        let path = match flag {
            Some(p) => p.to_path_buf(),
            None => match Config::default_path() {
                Some(p) => p,
                None => {
                    return Ok(Settings {
                        path: None,
                        config: Config::default(),
                    })
                }
            },
        };
        let config = Config::load(&path)?;
        Ok(Settings {
            path: Some(path),
            config,
        })
    }
}

/// The Whisper model and its threads.
#[derive(Args)]
pub struct ModelArgs {
    /// Whisper model: a CTranslate2 directory (model.bin, config.json, vocabulary.txt or
    /// .json; float or int8) or a whisper.cpp ggml .bin.
    /// Defaults to $VOXD_MODEL, then models/tiny.en, then the user's data folder.
    #[arg(short, long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Compute threads (default: all cores).
    #[arg(short, long, value_name = "N")]
    pub threads: Option<usize>,
}

impl ModelArgs {
    /// The model `--model`, the config or the defaults name.
    pub fn path(&self, config: &Config) -> Result<PathBuf> {
        Ok(config.model_path(self.model.as_deref())?)
    }

    /// Loads the model, saying on failure where its path came from.
    pub fn load(&self, config: &Config) -> Result<Transcriber> {
        let path = self.path(config)?;
        let threads = self.threads.unwrap_or(config.model.threads);
        let started = Instant::now();
        // The loader's errors name the model's path; the context says what failed and, for
        // a path from the config file, where it was set, so the user knows what to edit.
        let loaded = Transcriber::load(&path, threads).context("cannot load the model");
        let origin = match self.model {
            None if config.model.path.is_some() => config.origin("model", "path"),
            _ => None,
        };
        let transcriber = match origin {
            Some(origin) => loaded.context(origin)?,
            None => loaded?,
        };
        tracing::info!(
            model = %path.display(),
            threads = transcriber.threads(),
            ms = started.elapsed().as_millis() as u64,
            "model loaded"
        );
        Ok(transcriber)
    }
}

/// Where `voxd listen` and `voxd run` take audio from.
#[derive(Args)]
pub struct SourceArgs {
    /// Input device: `default`, a number from `voxd devices`, or part of a name
    /// [default: the config's [audio] device, else the default device].
    #[arg(short, long, value_name = "DEVICE", conflicts_with_all = ["wav", "stdin"])]
    device: Option<String>,
    /// Capture rate in Hz [default: the device's own].
    #[arg(long, value_name = "HZ")]
    rate: Option<u32>,
    /// Capture channels [default: the device's own].
    #[arg(long, value_name = "N")]
    channels: Option<u16>,
    /// Audio per driver period in ms; 0 lets the driver choose [default: 20].
    #[arg(long, value_name = "MS")]
    buffer_ms: Option<u32>,
    /// Audio API: cpal, pulse, or auto (the sound server for the default device when one
    /// answers, else cpal) [default: the config's [audio] backend, else auto].
    #[arg(long, value_name = "API", conflicts_with_all = ["wav", "stdin"])]
    backend: Option<capture::CaptureBackend>,
    /// Read a WAV file instead of a device (as fast as possible unless --realtime).
    #[arg(long, value_name = "FILE", conflicts_with = "stdin")]
    wav: Option<PathBuf>,
    /// Read raw interleaved PCM from standard input (needs --rate and --channels).
    #[arg(long, requires_all = ["rate", "channels"])]
    stdin: bool,
    /// Sample encoding on standard input: u8, s16le, s24le, s32le, f32le or f64le.
    #[arg(long, default_value = "s16le", value_name = "FORMAT")]
    pcm_format: String,
    /// Deliver --wav / --stdin at real time, as a microphone would.
    #[arg(long)]
    realtime: bool,
}

impl SourceArgs {
    /// The audio source the flags and the config's [audio] section name.
    pub fn source(&self, config: &Config) -> Result<frontend::Source> {
        let pace = if self.realtime {
            capture::Pace::RealTime
        } else {
            capture::Pace::Fast
        };
        Ok(if let Some(path) = self.wav.clone() {
            frontend::Source::Wav { path, pace }
        } else if self.stdin {
            frontend::Source::Stdin {
                format: capture::PcmFormat::parse(&self.pcm_format)?,
                rate: self.rate.unwrap_or_default(),
                channels: self.channels.unwrap_or_default(),
                pace,
            }
        } else {
            let mut audio = config.audio.clone();
            if let Some(device) = &self.device {
                audio.device = device.clone();
            }
            audio.rate = self.rate.or(audio.rate);
            audio.channels = self.channels.or(audio.channels);
            audio.buffer_ms = self.buffer_ms.unwrap_or(audio.buffer_ms);
            audio.backend = self.backend.unwrap_or(audio.backend);
            frontend::Source::Device(audio.capture_options())
        })
    }
}

/// An error and its causes on one line, each cause once: many errors already quote their
/// cause in their own message, and the chain would print it again.
pub fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}
