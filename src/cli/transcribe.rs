//! `voxd transcribe`: WAV files to text with timestamps, as the reference implementation
//! decodes them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use anyhow::{bail, Result};
use clap::Args;

use super::{describe, ModelArgs};
use voxd::audio;
use voxd::config::Config;
use voxd::whisper::transcribe::{AudioCtx, Segment, Task, TranscribeOptions, Transcriber};

#[derive(Args)]
pub struct TranscribeArgs {
    /// WAV files to transcribe.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// Beam width; 1 decodes greedily [default: 5].
    #[arg(long, value_name = "N")]
    beam: Option<usize>,
    /// Spoken language as a code (en, de, fr, ...); detected when omitted.
    #[arg(short, long, value_name = "CODE")]
    language: Option<String>,
    /// Translate into English instead of transcribing (multilingual models).
    #[arg(long)]
    translate: bool,
    /// Decode without timestamp tokens (one segment per 30 s window).
    #[arg(long)]
    no_timestamps: bool,
    /// Encoder context: `full` (1500 positions, 30 s), `fit` (sized to the audio) or a number
    /// of positions (20 ms each, at least 128) [default: full].
    #[arg(long, value_parser = AudioCtx::from_str, value_name = "CTX")]
    audio_ctx: Option<AudioCtx>,
    /// Decode at temperature 0 only (no fallback to sampling).
    #[arg(long)]
    no_fallback: bool,
    /// Text that precedes the audio (names, spelling, style).
    #[arg(long, value_name = "TEXT")]
    prompt: Option<String>,
    /// Print JSON lines: one per segment, then one per file.
    #[arg(long)]
    json: bool,
}

pub fn run(args: TranscribeArgs, config: &Config) -> Result<()> {
    let file = &config.transcribe;
    let beam = args.beam.unwrap_or(file.beam);
    if beam == 0 {
        bail!("--beam must be at least 1");
    }
    let transcriber = args.model.load(config)?;
    // The flags over the file's settings.
    let settings = voxd::config::TranscribeConfig {
        language: args.language.clone().or_else(|| file.language.clone()),
        beam,
        audio_ctx: args.audio_ctx.unwrap_or(file.audio_ctx),
        fallback: !args.no_fallback && file.fallback,
        timestamps: !args.no_timestamps && file.timestamps,
        prompt: args.prompt.clone().or_else(|| file.prompt.clone()),
    };
    let opts = TranscribeOptions {
        task: if args.translate {
            Task::Translate
        } else {
            Task::Transcribe
        },
        ..settings.options()
    };
    let mut failures = 0;
    for file in &args.files {
        if let Err(e) = transcribe_file(&transcriber, file, &opts, args.json) {
            eprintln!("voxd: {}", describe(&e));
            failures += 1;
        }
    }
    if failures > 0 {
        bail!("{failures} of {} files failed", args.files.len());
    }
    Ok(())
}

fn transcribe_file(
    t: &Transcriber,
    file: &Path,
    opts: &TranscribeOptions,
    json: bool,
) -> Result<()> {
    let samples = audio::read_wav(file)?;
    let started = Instant::now();
    let stdout = std::io::stdout();
    let name = file.display().to_string();
    let print_segment = |s: &Segment| {
        let mut out = stdout.lock();
        let line = if json {
            serde_json::json!({
                "type": "segment", "file": name, "start": s.start, "end": s.end,
                "text": s.text.trim(), "avg_logprob": s.avg_logprob,
                "no_speech_prob": s.no_speech_prob,
            })
            .to_string()
        } else {
            format!(
                "[{} --> {}]  {}",
                clock(s.start),
                clock(s.end),
                s.text.trim()
            )
        };
        // A closed stdout (e.g. `| head`) must not abort the transcription.
        let _ = writeln!(out, "{line}");
    };
    let transcript = t.transcribe(&samples, opts, print_segment)?;
    let ms = started.elapsed().as_millis() as u64;
    if json {
        let line = serde_json::json!({
            "type": "transcript", "file": name, "language": transcript.language,
            "text": transcript.text().trim(), "duration": samples.len() as f32 / audio::SAMPLE_RATE as f32,
            "ms": ms,
        });
        println!("{line}");
    }
    tracing::info!(file = %name, ms, "transcribed");
    Ok(())
}

/// `mm:ss.mmm`, or `h:mm:ss.mmm` past an hour.
fn clock(seconds: f32) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    let (h, m, s, ms) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}.{ms:03}")
    } else {
        format!("{m:02}:{s:02}.{ms:03}")
    }
}
