//! `voxd bench`: timings of the engine (encoder per audio context, decoder per token, end to
//! end), of the reply model (`--llm`) and of the quantized products (`--quant`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;

use voxd::whisper::transcribe::Transcriber;
use voxd::{audio, kernels};

#[derive(Args)]
pub struct BenchArgs {
    /// Models to time (default: models/tiny.en and models/base, where installed).
    #[arg(short, long = "model", value_name = "PATH")]
    models: Vec<PathBuf>,
    /// Compute threads.
    #[arg(short, long, default_value_t = 2, value_name = "N")]
    threads: usize,
    /// Timed repetitions of each measurement (after one warm-up).
    #[arg(long, default_value_t = 5, value_name = "N")]
    runs: usize,
    /// Speech for the timings: the encoder's window and the end-to-end run transcribe it
    /// (a few seconds to 30 s of speech, e.g. a sentence you recorded).
    #[arg(long, value_name = "WAV", required_unless_present_any = ["llm", "quant"])]
    audio: Option<PathBuf>,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
    /// Time the reply model (a GGUF file) instead: prompt processing and generation,
    /// tokens per second.
    #[arg(long, value_name = "GGUF", conflicts_with = "quant")]
    llm: Option<PathBuf>,
    /// Prompt length for --llm, in tokens.
    #[arg(long, default_value_t = 128, value_name = "N")]
    prompt_tokens: usize,
    /// Tokens generated for --llm.
    #[arg(long, default_value_t = 64, value_name = "N")]
    gen_tokens: usize,
    /// Time the quantized matrix products instead, on SmolLM2's weight shapes, for a
    /// generated token (1 row) and a prompt (128 rows).
    #[arg(long)]
    quant: bool,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads.max(1))
        .build()?;
    if let Some(path) = &args.llm {
        return pool.install(|| bench_llm(&args, path));
    }
    if args.quant {
        return pool.install(|| bench_quant(&args));
    }
    let models = if args.models.is_empty() {
        ["models/tiny.en", "models/base"]
            .iter()
            .map(PathBuf::from)
            .filter(|p| p.exists())
            .collect()
    } else {
        args.models.clone()
    };
    if models.is_empty() {
        bail!("no model to time: pass --model PATH or run `voxd models fetch tiny.en base`");
    }
    let wav = args
        .audio
        .clone()
        .context("--audio WAV: the speech to time the engine on")?;
    let samples = audio::read_wav(&wav)?;
    let runs = args.runs.max(1);
    if !args.json {
        println!(
            "threads {}, {runs} runs each, kernels {}, audio {}",
            args.threads,
            kernels::backend().name(),
            wav.display()
        );
        println!(
            "{:<10} {:<16} {:>10} {:>10}",
            "model", "measurement", "best ms", "median ms"
        );
    }
    for path in &models {
        let t = Transcriber::load(path, args.threads).context("cannot load the model")?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (e2e, tokens) = voxd::bench::end_to_end(&t, &samples, runs)?;
        let mut rows = voxd::bench::encoder(&t, &samples, &[1500, 512, 256, 128], runs)?;
        rows.push(voxd::bench::decoder_token(&t, &samples, &tokens, runs)?);
        rows.push(e2e);
        for m in rows {
            if args.json {
                let mut v = serde_json::to_value(&m)?;
                v["model"] = name.clone().into();
                v["threads"] = args.threads.into();
                v["kernels"] = kernels::backend().name().into();
                println!("{v}");
            } else {
                let label = match m.audio_ctx {
                    Some(ctx) => format!("{} ctx {ctx}", m.what),
                    None => m.what.clone(),
                };
                println!(
                    "{name:<10} {label:<16} {:>10.1} {:>10.1}",
                    m.best_ms, m.median_ms
                );
                if let Some(bytes) = m.weight_bytes {
                    println!(
                        "{:<10} {:<16} {:>10.1} MiB of weights a step, {:.1} GB/s at the median",
                        "",
                        "",
                        bytes as f64 / (1u64 << 20) as f64,
                        bytes as f64 / (m.median_ms * 1e6)
                    );
                }
            }
        }
    }
    Ok(())
}

/// `voxd bench --llm`: prompt processing and generation speed of a GGUF model.
fn bench_llm(args: &BenchArgs, path: &Path) -> Result<()> {
    if args.prompt_tokens == 0 || args.gen_tokens < 2 {
        bail!("--prompt-tokens must be at least 1 and --gen-tokens at least 2");
    }
    let model = voxd::llm::model::Llama::load(path)?;
    let m = voxd::bench::llm_speed(
        &model,
        args.prompt_tokens,
        args.gen_tokens,
        args.runs.max(1),
    )?;
    if args.json {
        let mut v = serde_json::to_value(&m)?;
        v["kernels"] = kernels::backend().name().into();
        println!("{v}");
    } else {
        println!(
            "{}: threads {}, kernels {}, {} runs; prompt {} tokens: best {:.1}, median {:.1} tok/s; \
             generation of {} tokens: best {:.1}, median {:.1} tok/s",
            path.display(),
            args.threads,
            kernels::backend().name(),
            m.runs,
            m.prompt_tokens,
            m.pp_best_tok_s,
            m.pp_median_tok_s,
            m.generated_tokens,
            m.tg_best_tok_s,
            m.tg_median_tok_s
        );
    }
    Ok(())
}

/// `voxd bench --quant`: the quantized matrix products on SmolLM2's shapes.
fn bench_quant(args: &BenchArgs) -> Result<()> {
    use voxd::kernels::quant::QuantType;
    let rows = voxd::bench::quant_matmul(
        &QuantType::ALL,
        &voxd::bench::SMOLLM2_SHAPES,
        &[1, 128],
        args.runs.max(1),
    );
    if !args.json {
        println!(
            "threads {}, {} runs each, kernels {}",
            args.threads,
            args.runs.max(1),
            kernels::backend().name()
        );
        println!(
            "{:<6} {:>12} {:>4} {:>10} {:>10} {:>8} {:>9}",
            "type", "rows×cols", "n", "best ms", "median ms", "GB/s", "GFLOP/s"
        );
    }
    for m in rows {
        if args.json {
            let mut v = serde_json::to_value(&m)?;
            v["kernels"] = kernels::backend().name().into();
            println!("{v}");
        } else {
            println!(
                "{:<6} {:>12} {:>4} {:>10.3} {:>10.3} {:>8.1} {:>9.1}",
                m.ty,
                format!("{}×{}", m.rows, m.cols),
                m.n,
                m.best_ms,
                m.median_ms,
                m.best_gb_s,
                m.best_gflop_s
            );
        }
    }
    Ok(())
}
