//! `voxd listen`: the audio front end alone (capture, resampling, voice activity,
//! segmentation), its events printed as JSON lines.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Args;

use super::SourceArgs;
use voxd::audio;
use voxd::config::Config;
use voxd::frontend;

/// The events `voxd listen` prints, shown under its help.
pub const LISTEN_EVENTS: &str = "\
Events, one JSON object per line, `event` naming it (times in ms on the audio clock; the
README's \"Listening\" table lists every field):
  speech_start   speech confirmed; where the utterance starts
  speech_pause   the silence after speech has lasted the tail (stage settled): the
                 utterance as it ends if no more speech comes (speech_end with the same
                 span follows unless speech resumes)
  speech_end     the utterance ended
  window         a caption window (with --captions)
  capture        the source opened, was lost, is retrying, resumed, or failed
  overrun        source audio dropped because the front end fell behind
  finished       the source ended: what was offered, processed and dropped";

#[derive(Args)]
pub struct ListenArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Also emit caption windows ([captions] window_ms / step_ms).
    #[arg(long)]
    captions: bool,
    /// Stop after this many seconds (wall clock); otherwise at the end of the input or on
    /// Ctrl-C.
    #[arg(long, value_name = "SECONDS")]
    seconds: Option<f64>,
    /// Write the 16 kHz audio the front end hears to this WAV file.
    #[arg(long, value_name = "FILE")]
    save_audio: Option<PathBuf>,
    /// Write each utterance to DIR/utterance-NNNN.wav.
    #[arg(long, value_name = "DIR")]
    save_utterances: Option<PathBuf>,
}

pub fn run(args: ListenArgs, config: &Config) -> Result<()> {
    let source = args.source.source(config)?;
    if let Some(dir) = &args.save_utterances {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut fe_config = config.front_end(args.captions);
    fe_config.record = args.save_audio.clone();
    let listening = frontend::listen(source, fe_config)?;
    tracing::info!(format = %listening.format, "listening");
    let deadline = args
        .seconds
        .map(|s| Instant::now() + std::time::Duration::from_secs_f64(s.max(0.0)));
    let fe = &listening.front_end;
    let mut out = std::io::stdout().lock();
    let mut saved = 0usize;
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            fe.request_stop();
        }
        crossbeam_channel::select! {
            recv(fe.events()) -> event => {
                let Ok(event) = event else { break };
                writeln!(out, "{}", event.to_json())?;
                if let (frontend::FrontEndEvent::SpeechEnd(u), Some(dir)) =
                    (&event, &args.save_utterances)
                {
                    saved += 1;
                    write_utterance(&dir.join(format!("utterance-{saved:04}.wav")), &u.samples)?;
                }
                if matches!(event, frontend::FrontEndEvent::Finished(_)) {
                    break;
                }
            }
            recv(fe.windows()) -> window => {
                if let Ok(w) = window {
                    let line = serde_json::json!({
                        "event": "window", "start_ms": frontend::ms(w.start),
                        "end_ms": frontend::ms(w.end()), "voiced_ms": w.voiced_ms,
                    });
                    writeln!(out, "{line}")?;
                }
            }
            default(std::time::Duration::from_millis(100)) => {}
        }
        out.flush()?;
    }
    Ok(())
}

fn write_utterance(path: &Path, samples: &[f32]) -> Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: audio::SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec)
        .with_context(|| format!("cannot write {}", path.display()))?;
    for &x in samples {
        w.write_sample((x.clamp(-1.0, 1.0) * 32_767.0).round() as i16)?;
    }
    w.finalize()?;
    Ok(())
}
