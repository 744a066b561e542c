//! `voxd bench`: the engine's speed on the measurements whisper.cpp and faster-whisper also
//! report, so the peer script can print ratios. Each measurement is repeated and reported as
//! best and median, since the machines it runs on are shared and noisy.

use std::time::Instant;

use crate::whisper::mel::CHUNK_FRAMES;
use crate::whisper::model::ModelError;
use crate::whisper::transcribe::{AudioCtx, TranscribeError, TranscribeOptions, Transcriber};

/// One timed quantity.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Measurement {
    /// `encoder`, `decoder_token` or `end_to_end`.
    pub what: String,
    /// Encoder positions used (1500 = a full 30 s window).
    pub audio_ctx: Option<usize>,
    pub best_ms: f64,
    pub median_ms: f64,
    pub runs: usize,
}

fn summarize(what: &str, audio_ctx: Option<usize>, mut times: Vec<f64>) -> Measurement {
    times.sort_by(f64::total_cmp);
    Measurement {
        what: what.to_string(),
        audio_ctx,
        best_ms: times[0],
        median_ms: times[times.len() / 2],
        runs: times.len(),
    }
}

/// Runs `f`, returning its result and how long it took in milliseconds.
fn timed<R>(f: impl FnOnce() -> R) -> (R, f64) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed().as_secs_f64() * 1e3)
}

/// Encoder time on one window for each audio context (full = the model's maximum).
pub fn encoder(
    t: &Transcriber,
    samples: &[f32],
    contexts: &[usize],
    runs: usize,
) -> Result<Vec<Measurement>, ModelError> {
    let mel = t.features(samples).window(0, CHUNK_FRAMES);
    contexts
        .iter()
        .map(|&ctx| {
            let mut times = Vec::new();
            t.encode_window(&mel, CHUNK_FRAMES, AudioCtx::Fixed(ctx))?; // warm-up
            for _ in 0..runs {
                let (r, ms) = timed(|| t.encode_window(&mel, CHUNK_FRAMES, AudioCtx::Fixed(ctx)));
                r?;
                times.push(ms);
            }
            Ok(summarize("encoder", Some(ctx), times))
        })
        .collect()
}

/// Mean time of one decoder step (one token, with the KV cache and the logits), stepping
/// through `tokens` after the start-of-transcript token.
pub fn decoder_token(
    t: &Transcriber,
    samples: &[f32],
    tokens: &[u32],
    runs: usize,
) -> Result<Measurement, ModelError> {
    let mel = t.features(samples).window(0, CHUNK_FRAMES);
    let audio = t.encode_window(&mel, CHUNK_FRAMES, AudioCtx::Full)?;
    let model = &t.model;
    let cross = t.install(|| model.cross_kv(&audio));
    let sot = t.tokenizer.special().sot;
    let mut times = Vec::new();
    for _ in 0..runs + 1 {
        let mut cache = [model.new_cache()];
        t.install(|| model.decode(&cross, &mut cache, &[&[sot]]))?;
        let (result, ms) = timed(|| {
            t.install(|| -> Result<(), ModelError> {
                for &tok in tokens {
                    let hidden = model.decode(&cross, &mut cache, &[&[tok]])?;
                    std::hint::black_box(model.logits(&hidden));
                }
                Ok(())
            })
        });
        result?;
        times.push(ms / tokens.len().max(1) as f64);
    }
    times.remove(0); // warm-up
    Ok(summarize("decoder_token", None, times))
}

/// Whole transcription of `samples` (features, encoder, greedy decoding), and its tokens.
pub fn end_to_end(
    t: &Transcriber,
    samples: &[f32],
    runs: usize,
) -> Result<(Measurement, Vec<u32>), TranscribeError> {
    let opts = TranscribeOptions {
        language: Some("en".into()),
        beam_size: 1,
        temperatures: vec![0.0],
        ..TranscribeOptions::default()
    };
    let mut tokens = Vec::new();
    let mut times = Vec::new();
    for i in 0..runs + 1 {
        let (result, ms) = timed(|| t.transcribe(samples, &opts, |_| {}));
        let transcript = result?;
        if i == 0 {
            tokens = transcript
                .segments
                .iter()
                .flat_map(|s| s.tokens.clone())
                .collect();
        } else {
            times.push(ms);
        }
    }
    Ok((summarize("end_to_end", None, times), tokens))
}
