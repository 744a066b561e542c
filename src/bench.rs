//! `voxd bench`: the engine's speed on the measurements whisper.cpp and faster-whisper also
//! report, so the peer script can print ratios. Each measurement is repeated and reported as
//! best and median, since the machines it runs on are shared and noisy.

use std::time::Instant;

use crate::kernels::quant::{matmul_q, QMatRef, QuantType};

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
    /// For `decoder_token`: bytes of weights a step reads
    /// ([`crate::whisper::weights::DecoderWeights::bytes_read_per_token`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight_bytes: Option<usize>,
}

fn summarize(what: &str, audio_ctx: Option<usize>, mut times: Vec<f64>) -> Measurement {
    times.sort_by(f64::total_cmp);
    Measurement {
        what: what.to_string(),
        audio_ctx,
        best_ms: times[0],
        median_ms: times[times.len() / 2],
        runs: times.len(),
        weight_bytes: None,
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
    Ok(Measurement {
        weight_bytes: Some(model.weights.decoder.bytes_read_per_token()),
        ..summarize("decoder_token", None, times)
    })
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

/// One timed quantized matrix product ([`matmul_q`]).
#[derive(Clone, Debug, serde::Serialize)]
pub struct QuantMeasurement {
    /// ggml's name of the weight type.
    pub ty: String,
    /// Weight rows (outputs) and columns (inputs).
    pub rows: usize,
    pub cols: usize,
    /// Activation rows: 1 is a generated token, more a prompt.
    pub n: usize,
    pub best_ms: f64,
    pub median_ms: f64,
    pub runs: usize,
    /// Weight bytes read per second at the best and the median time.
    pub best_gb_s: f64,
    pub median_gb_s: f64,
    /// 2·n·rows·cols operations per second at the best and the median time.
    pub best_gflop_s: f64,
    pub median_gflop_s: f64,
}

/// SmolLM2-135M's weight shapes (rows × cols): the attention projections, the MLP's gate and
/// up, its down, and the logits (tied to the token embedding).
pub const SMOLLM2_SHAPES: [(usize, usize); 4] =
    [(576, 576), (1536, 576), (576, 1536), (49152, 576)];

/// Weights rotated through per measurement, so each product reads its weights from memory
/// (not cache), as a forward pass over the whole model does.
const COLD_BYTES: usize = 64 << 20;
/// Each timed run repeats the product until it has lasted this long.
const MIN_RUN_MS: f64 = 20.0;

/// Times [`matmul_q`] for every type, shape (rows × cols) and number of activation rows, in
/// rayon's current pool (run it inside `pool.install` to choose the threads). Shapes whose
/// rows are not whole blocks of a type (576 columns for Q4_K and Q6_K) are skipped for it.
/// Weights are random; their values do not change the time.
pub fn quant_matmul(
    types: &[QuantType],
    shapes: &[(usize, usize)],
    ns: &[usize],
    runs: usize,
) -> Vec<QuantMeasurement> {
    let mut out = Vec::new();
    for &ty in types {
        for &(rows, cols) in shapes {
            let Some(row_bytes) = ty.row_bytes(cols) else {
                continue;
            };
            let bytes = rows * row_bytes;
            // Bytes 0x30..0x3C: as f16 or f32 scales these are normal numbers (no slow
            // subnormals, no NaN), whatever the layout.
            let copies: Vec<Vec<u8>> = (0..COLD_BYTES.div_ceil(bytes))
                .map(|c| {
                    (0..bytes)
                        .map(|i| 0x30 + ((i * 7 + c * 13) % 12) as u8)
                        .collect()
                })
                .collect();
            let weights: Vec<QMatRef> = copies
                .iter()
                .map(|d| QMatRef::new(ty, rows, cols, d).expect("consistent shape"))
                .collect();
            for &n in ns {
                let x: Vec<f32> = (0..n * cols)
                    .map(|i| (i % 97) as f32 / 48.0 - 1.0)
                    .collect();
                let mut y = vec![0.0f32; n * rows];
                let mut next = 0;
                let mut product = || {
                    matmul_q(weights[next], &x, &mut y);
                    next = (next + 1) % weights.len();
                };
                let ((), once_ms) = timed(&mut product); // warm-up and calibration
                let reps = (MIN_RUN_MS / once_ms.max(1e-3)).ceil().max(1.0) as usize;
                let times: Vec<f64> = (0..runs)
                    .map(|_| timed(|| (0..reps).for_each(|_| product())).1 / reps as f64)
                    .collect();
                let m = summarize("matmul_q", None, times);
                let per_s = |ms: f64| 1e3 / ms;
                let flops = 2.0 * (n * rows * cols) as f64;
                out.push(QuantMeasurement {
                    ty: ty.name().to_string(),
                    rows,
                    cols,
                    n,
                    best_ms: m.best_ms,
                    median_ms: m.median_ms,
                    runs: m.runs,
                    best_gb_s: bytes as f64 * per_s(m.best_ms) / 1e9,
                    median_gb_s: bytes as f64 * per_s(m.median_ms) / 1e9,
                    best_gflop_s: flops * per_s(m.best_ms) / 1e9,
                    median_gflop_s: flops * per_s(m.median_ms) / 1e9,
                });
            }
        }
    }
    out
}

/// The reply model's speed on one prompt, as llama.cpp reports it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LlmMeasurement {
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    /// Prompt processing: prompt tokens per second of the prompt's pass.
    pub pp_best_tok_s: f64,
    pub pp_median_tok_s: f64,
    /// Generation: tokens per second over the generated tokens after the first (the first
    /// comes out of the prompt's pass).
    pub tg_best_tok_s: f64,
    pub tg_median_tok_s: f64,
    pub runs: usize,
}

/// Times the prompt's pass over `prompt_tokens` tokens and the generation of
/// `generated_tokens` more (the most likely each time, whatever it is), `runs` times after a
/// warm-up, in rayon's current pool. Each run's prompt differs, so nothing is reused.
pub fn llm_speed(
    model: &crate::llm::model::Llama,
    prompt_tokens: usize,
    generated_tokens: usize,
    runs: usize,
) -> Result<LlmMeasurement, crate::llm::model::ModelError> {
    let vocab = model.hyper().n_vocab;
    let (mut pp, mut tg) = (Vec::new(), Vec::new());
    for run in 0..=runs {
        // Ordinary tokens spread over the vocabulary; the values do not change the time.
        let prompt: Vec<u32> = (0..prompt_tokens)
            .map(|i| (1000 + (i * 7919 + run * 104_729) % (vocab - 1000)) as u32)
            .collect();
        let mut cache = model.new_cache(prompt_tokens + generated_tokens);
        let (logits, prompt_ms) = timed(|| model.forward(&prompt, &mut cache, false));
        let mut logits = logits?;
        let (generated, generate_ms) = timed(|| {
            for _ in 1..generated_tokens {
                let next = argmax(&logits);
                logits = model.forward(&[next], &mut cache, false)?;
            }
            Ok::<_, crate::llm::model::ModelError>(())
        });
        generated?;
        if run > 0 {
            pp.push(prompt_tokens as f64 / prompt_ms * 1e3);
            tg.push((generated_tokens - 1) as f64 / generate_ms * 1e3);
        }
    }
    let (pp_best, pp_median) = best_and_median_rate(pp);
    let (tg_best, tg_median) = best_and_median_rate(tg);
    Ok(LlmMeasurement {
        prompt_tokens,
        generated_tokens,
        pp_best_tok_s: pp_best,
        pp_median_tok_s: pp_median,
        tg_best_tok_s: tg_best,
        tg_median_tok_s: tg_median,
        runs,
    })
}

fn argmax(values: &[f32]) -> u32 {
    values
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |(i, _)| i as u32)
}

/// The highest and the median of rates (higher is better).
fn best_and_median_rate(mut rates: Vec<f64>) -> (f64, f64) {
    rates.sort_by(|a, b| b.total_cmp(a));
    (rates[0], rates[rates.len() / 2])
}
