//! `voxd recognize`: voice commands in WAV files, one utterance each, decoded inside the
//! grammar; one JSON line per file.

use std::io::Write;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;

use super::ModelArgs;
use voxd::audio;
use voxd::command::Recognizer;
use voxd::config::Config;
use voxd::daemon::commands::{recognizer_settings, CommandFlags};
use voxd::grammar::{self, Grammar};
use voxd::whisper::transcribe::AudioCtx;

#[derive(Args)]
pub struct RecognizeArgs {
    /// Grammar files (TOML), merged into one grammar [default: `[commands] grammars` of the
    /// config].
    #[arg(short, long, num_args = 1.., value_name = "FILE")]
    grammar: Vec<PathBuf>,
    /// WAV files, one utterance each (silence around the speech is fine).
    #[arg(required = true, value_name = "AUDIO")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// Beam width of the constrained search [default: `[commands] beam`, else 5].
    #[arg(long, value_name = "N")]
    beam: Option<usize>,
    /// Largest share of the sentence's letters that may differ from what the model writes
    /// without the grammar [default: `[commands] max_mismatch`, else 0.45].
    #[arg(long, value_name = "SHARE")]
    max_mismatch: Option<f32>,
    /// A sentence the letters refuse is still taken when the model finds it at most this
    /// many nats less likely than its free transcript [default: `[commands] max_ratio`,
    /// else 4.5].
    #[arg(long, value_name = "NATS")]
    max_ratio: Option<f32>,
    /// Lowest mean log-probability per token of the sentence that still accepts
    /// [default: `[commands] min_score`, else -3].
    #[arg(long, value_name = "LOGPROB", allow_hyphen_values = true)]
    min_score: Option<f32>,
    /// Highest no-speech probability that still accepts [default: `[commands]
    /// max_no_speech`, else 0.9].
    #[arg(long, value_name = "P")]
    max_no_speech: Option<f32>,
    /// Also print each token of the sentence with its log-probability and regret.
    #[arg(long)]
    tokens: bool,
    /// Encoder context: `fit` (sized to the utterance), `full` (30 s) or a number of
    /// positions (20 ms each, at least 128) [default: fit].
    #[arg(long, value_parser = AudioCtx::from_str, value_name = "CTX")]
    audio_ctx: Option<AudioCtx>,
}

pub fn run(args: RecognizeArgs, config: &Config) -> Result<()> {
    let flags = CommandFlags {
        grammars: args.grammar.clone(),
        beam: args.beam,
        max_mismatch: args.max_mismatch,
        max_ratio: args.max_ratio,
        min_score: args.min_score,
        max_no_speech: args.max_no_speech,
        audio_ctx: args.audio_ctx,
    };
    let (settings, options) = recognizer_settings(config, &flags)?;
    if settings.grammars.is_empty() {
        bail!("no grammar: pass --grammar FILE... or set `grammars` in [commands] of the config");
    }
    let grammar = Grammar::from_texts_with_wake(
        grammar::read_files(&settings.grammars)?,
        settings.wake.as_deref(),
    )?;
    let transcriber = args.model.load(config)?;
    let mut recognizer = Recognizer::new(transcriber, grammar, options)?;
    let mut out = std::io::stdout().lock();
    for file in &args.files {
        let samples = audio::read_wav(file)?;
        let started = Instant::now();
        let result = recognizer
            .recognize(&samples)
            .with_context(|| format!("recognising {}", file.display()))?;
        let mut line = serde_json::to_value(&result)?;
        if !args.tokens {
            line.as_object_mut().map(|l| l.remove("tokens"));
        }
        line["file"] = file.display().to_string().into();
        line["ms"] = (started.elapsed().as_secs_f64() * 1000.0).round().into();
        writeln!(out, "{line}")?;
    }
    Ok(())
}
