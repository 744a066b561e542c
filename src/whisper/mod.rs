//! Whisper: features, tokenizer, model and decoding.
//!
//! `load_model` reads a model from either file format into [`weights::WhisperWeights`];
//! [`transcribe::Transcriber`] is what the rest of voxd uses.

mod bytes;
pub mod config;
pub mod ct2;
pub mod decode;
pub mod ggml;
pub mod mel;
pub mod model;
#[cfg(test)]
mod test_files;
pub mod tokenizer;
pub mod transcribe;
pub mod weights;

use std::path::Path;

use mel::MelFilters;
use tokenizer::Tokenizer;
use weights::{LoadError, WhisperWeights};

/// Everything read from a model file or directory.
pub struct LoadedModel {
    pub weights: WhisperWeights,
    pub tokenizer: Tokenizer,
    /// CTranslate2's `config.json`, when the model came with one.
    pub ct2_config: Option<ct2::Ct2Config>,
    /// Mel filters shipped inside the file (ggml files carry them).
    pub mel_filters: Option<MelFilters>,
}

/// Loads a model: a whisper.cpp ggml file (recognised by its magic number), a folder whose
/// `model.bin` is one (what `voxd models fetch tiny.en-q8_0` makes), or a CTranslate2
/// directory (or the `model.bin` inside one).
pub fn load_model(path: &Path) -> Result<LoadedModel, LoadError> {
    let in_folder = path.join("model.bin");
    if path.is_file() && has_ggml_magic(path)? {
        return ggml::load(path);
    }
    if path.is_dir() && in_folder.is_file() && has_ggml_magic(&in_folder)? {
        return ggml::load(&in_folder);
    }
    load_ct2(path)
}

fn has_ggml_magic(path: &Path) -> Result<bool, LoadError> {
    use std::io::Read;
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(f.read_exact(&mut magic).is_ok() && u32::from_le_bytes(magic) == ggml::MAGIC)
}

fn load_ct2(path: &Path) -> Result<LoadedModel, LoadError> {
    let dir = if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent().unwrap_or(Path::new(".")).to_path_buf()
    };
    let model_bin = if path.is_dir() {
        path.join("model.bin")
    } else {
        path.to_path_buf()
    };
    if !model_bin.exists() {
        return Err(LoadError::Io {
            path: model_bin,
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such model file (expected a CTranslate2 model directory with model.bin, \
                 config.json and vocabulary.txt or vocabulary.json)",
            ),
        });
    }
    let weights = ct2::load_weights(&model_bin)?;
    let tokenizer = Tokenizer::from_ct2_dir(&dir).map_err(|e| LoadError::Format {
        path: dir.clone(),
        message: e.to_string(),
    })?;
    if tokenizer.n_vocab() != weights.hparams.n_vocab {
        return Err(LoadError::Format {
            path: Tokenizer::ct2_vocabulary_file(&dir),
            message: format!(
                "has {} tokens but the model has {}",
                tokenizer.n_vocab(),
                weights.hparams.n_vocab
            ),
        });
    }
    let config_path = dir.join("config.json");
    let ct2_config = if config_path.exists() {
        Some(ct2::load_config(&config_path)?)
    } else {
        None
    };
    let hp = &weights.hparams;
    let heads = ct2_config.iter().flat_map(|c| &c.alignment_heads);
    if let Some((layer, head)) = heads
        .into_iter()
        .find(|(l, h)| *l >= hp.n_text_layer || *h >= hp.n_text_head)
    {
        return Err(LoadError::Format {
            path: config_path,
            message: format!(
                "alignment head [{layer}, {head}] is outside the decoder's {} layers of {} heads",
                hp.n_text_layer, hp.n_text_head
            ),
        });
    }
    Ok(LoadedModel {
        weights,
        tokenizer,
        ct2_config,
        mel_filters: None,
    })
}
