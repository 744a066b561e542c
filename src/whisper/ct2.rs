//! CTranslate2 (faster-whisper) model directories: `model.bin`, `config.json`, `vocabulary.txt`.
//!
//! `model.bin` (binary version 6) is a header, a list of named variables and a list of
//! aliases; each variable is read into a vector of its type, which the weights then take
//! over (see `bytes.rs`). The layout is described in
//! the project's FORMATS notes; every read is bounds-checked so that a truncated or foreign
//! file gives an error naming the file and what was wrong.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::bytes::{open_file, ByteReader};
use super::weights::{
    assemble, DType, Fused, HParams, LoadError, Tensor, TensorNames, TensorSource, WhisperWeights,
    WEIGHT,
};

const SUPPORTED_VERSION: u32 = 6;
const SPEC_NAME: &str = "WhisperSpec";

/// CTranslate2's names for Whisper's tensors.
pub const NAMES: TensorNames = TensorNames {
    sep: "/",
    norm_scale: "gamma",
    norm_shift: "beta",
    encoder_layers: "encoder/layer_",
    decoder_layers: "decoder/layer_",
    conv1: "encoder/conv1",
    conv2: "encoder/conv2",
    audio_positions: "encoder/position_encodings/encodings",
    audio_ln: "encoder/layer_norm",
    token_embedding: "decoder/embeddings/weight",
    text_positions: "decoder/position_encodings/encodings",
    text_ln: "decoder/layer_norm",
    attn_ln: "self_attention/layer_norm",
    attn_qkv: Fused::Stacked("self_attention/linear_0"),
    attn_out: "self_attention/linear_1",
    cross_ln: "attention/layer_norm",
    cross_q: "attention/linear_0",
    cross_kv: Fused::Stacked("attention/linear_1"),
    cross_out: "attention/linear_2",
    mlp_ln: "ffn/layer_norm",
    fc1: "ffn/linear_0",
    fc2: "ffn/linear_1",
};

/// The scalars that hold the head counts.
const ENCODER_HEADS: &str = "encoder/num_heads";
const DECODER_HEADS: &str = "decoder/num_heads";

/// The parts of `config.json` the decoder needs.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Ct2Config {
    /// Tokens the reference implementation suppresses at every step (its `-1` default).
    #[serde(default)]
    pub suppress_ids: Vec<u32>,
    /// Tokens suppressed at the first sampled step.
    #[serde(default)]
    pub suppress_ids_begin: Vec<u32>,
    #[serde(default)]
    pub lang_ids: Vec<u32>,
    /// (decoder layer, head) pairs whose cross-attention follows the speech in time: where
    /// the decoder is listening when it writes a token.
    #[serde(default)]
    pub alignment_heads: Vec<(usize, usize)>,
}

enum Variable {
    /// Values of a type voxd computes with.
    Values(Tensor),
    /// Another type (the head counts are int32 scalars, a quantized model's weights int8):
    /// its code, its shape, and its bytes when it is a scalar.
    Other {
        code: u8,
        shape: Vec<usize>,
        bytes: Vec<u8>,
    },
}

/// The largest variable of another type that is kept: a scalar.
const MAX_SCALAR_BYTES: usize = 8;

/// A parsed `model.bin`, read into memory.
pub struct Ct2File {
    path: PathBuf,
    variables: HashMap<String, Variable>,
    aliases: HashMap<String, String>,
}

/// A `u16` length followed by that many bytes, NUL-terminated.
fn string(c: &mut ByteReader<impl Read>, what: &str) -> Result<String, LoadError> {
    let n = c.u16(what)? as usize;
    let raw = c.take(n, what)?;
    let raw = raw.strip_suffix(&[0]).unwrap_or(&raw);
    String::from_utf8(raw.to_vec()).map_err(|_| c.error(format!("{what} is not UTF-8")))
}

fn dtype_from_code(code: u8) -> Result<DType, u8> {
    match code {
        0 => Ok(DType::F32),
        4 => Ok(DType::F16),
        other => Err(other),
    }
}

fn dtype_name(code: u8) -> &'static str {
    match code {
        1 => "int8 (a quantized model; convert it with CTranslate2's float16 quantization)",
        2 => "int16",
        3 => "int32",
        5 => "bfloat16",
        _ => "unknown",
    }
}

impl Ct2File {
    pub fn open(path: &Path) -> Result<Self, LoadError> {
        let (file, len) = open_file(path)?;
        Self::parse(ByteReader::new(file, len, path), len)
    }

    /// Parses a `model.bin` image already in memory; `path` only names it in errors.
    pub fn from_bytes(path: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<Self, LoadError> {
        let path = path.into();
        Self::parse(ByteReader::new(&bytes[..], bytes.len(), &path), bytes.len())
    }

    fn parse(mut c: ByteReader<impl Read>, len: usize) -> Result<Self, LoadError> {
        if len < 4 {
            return Err(c.error(format!(
                "not a CTranslate2 model: the file has only {len} bytes"
            )));
        }
        let version = c.u32("version")?;
        if version != SUPPORTED_VERSION {
            return Err(c.error(format!(
                "not a supported CTranslate2 model: binary version {version}, expected {SUPPORTED_VERSION}"
            )));
        }
        let spec = string(&mut c, "spec name")?;
        if spec != SPEC_NAME {
            return Err(c.error(format!(
                "model spec is `{spec}`, expected `{SPEC_NAME}` (is this a Whisper model?)"
            )));
        }
        let _revision = c.u32("spec revision")?;
        let count = c.u32("variable count")?;
        let mut variables = HashMap::new();
        for _ in 0..count {
            let name = string(&mut c, "variable name")?;
            let rank = c.u8("rank")? as usize;
            let shape = (0..rank)
                .map(|_| c.u32("dimension").map(|d| d as usize))
                .collect::<Result<Vec<_>, _>>()?;
            let code = c.u8("data type")?;
            let len = c.u32("byte count")? as usize;
            let what = format!("data of `{name}`");
            let variable = match dtype_from_code(code) {
                Ok(dt) => {
                    let expected = dt.bytes_for(&shape).ok_or_else(|| LoadError::TooLarge {
                        path: c.path().to_path_buf(),
                        name: name.clone(),
                        shape: shape.clone(),
                    })?;
                    if expected != len {
                        return Err(c.error(format!(
                            "variable `{name}` of shape {shape:?} should have {expected} bytes, has {len}"
                        )));
                    }
                    let data = c.tensor_data(dt, len, &what)?;
                    Variable::Values(Tensor { shape, data })
                }
                Err(code) if len <= MAX_SCALAR_BYTES => Variable::Other {
                    code,
                    shape,
                    bytes: c.take(len, &what)?,
                },
                Err(code) => {
                    c.skip(len, &what)?;
                    Variable::Other {
                        code,
                        shape,
                        bytes: Vec::new(),
                    }
                }
            };
            variables.insert(name, variable);
        }
        let n_aliases = c.u32("alias count")?;
        let mut aliases = HashMap::new();
        for _ in 0..n_aliases {
            let alias = string(&mut c, "alias")?;
            let target = string(&mut c, "alias target")?;
            aliases.insert(alias, target);
        }
        Ok(Self {
            path: c.path().to_path_buf(),
            variables,
            aliases,
        })
    }

    /// The variable's own name: `name`, or what it is an alias of.
    fn resolve<'n>(&'n self, name: &'n str) -> &'n str {
        match self.aliases.get(name) {
            Some(target) if !self.variables.contains_key(name) => target,
            _ => name,
        }
    }

    fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables.get(self.resolve(name))
    }

    /// The values of a variable of a type voxd computes with.
    fn values<'v>(&self, name: &str, variable: &'v Variable) -> Result<&'v Tensor, LoadError> {
        match variable {
            Variable::Values(t) => Ok(t),
            Variable::Other { code, .. } => Err(LoadError::DType {
                path: self.path.clone(),
                name: name.to_string(),
                dtype: dtype_name(*code).to_string(),
            }),
        }
    }

    /// A small integer scalar such as `encoder/num_heads`.
    fn scalar(&self, name: &str) -> Result<i64, LoadError> {
        let b = match self.variable(name).ok_or_else(|| self.missing(name))? {
            Variable::Other { bytes, .. } => &bytes[..],
            Variable::Values(_) => &[],
        };
        Ok(match b.len() {
            1 => b[0] as i8 as i64,
            2 => i16::from_le_bytes([b[0], b[1]]) as i64,
            4 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64,
            _ => {
                return Err(LoadError::Format {
                    path: self.path.clone(),
                    message: format!("`{name}` should be an integer scalar"),
                })
            }
        })
    }

    fn missing(&self, name: &str) -> LoadError {
        LoadError::MissingTensor {
            path: self.path.clone(),
            name: name.to_string(),
        }
    }

    fn count_layers(&self, layers: &str) -> usize {
        (0..)
            .take_while(|&i| self.variable(&NAMES.layer_marker(layers, i)).is_some())
            .count()
    }

    fn dims(&self, name: &str) -> Result<&[usize], LoadError> {
        Ok(
            match self.variable(name).ok_or_else(|| self.missing(name))? {
                Variable::Values(t) => &t.shape,
                Variable::Other { shape, .. } => shape,
            },
        )
    }

    /// The dimensions, read off the tensors' shapes and the head-count scalars; [`assemble`]
    /// checks them.
    pub fn hparams(&self) -> Result<HParams, LoadError> {
        let conv1 = self.dims(&NAMES.join(NAMES.conv1, WEIGHT))?;
        let enc_pos = self.dims(NAMES.audio_positions)?;
        let emb = self.dims(NAMES.token_embedding)?;
        let dec_pos = self.dims(NAMES.text_positions)?;
        let (&[s_a, n_mels, 3], &[ctx_a, _], &[n_vocab, s_t], &[ctx_t, _]) =
            (conv1, enc_pos, emb, dec_pos)
        else {
            return Err(LoadError::Format {
                path: self.path.clone(),
                message: "unexpected shape of the convolution, position or embedding tensors"
                    .to_string(),
            });
        };
        let heads = |name| {
            self.scalar(name).and_then(|h| {
                usize::try_from(h).map_err(|_| LoadError::Format {
                    path: self.path.clone(),
                    message: format!("`{name}` is {h}, expected a positive head count"),
                })
            })
        };
        Ok(HParams {
            n_vocab,
            n_audio_ctx: ctx_a,
            n_audio_state: s_a,
            n_audio_head: heads(ENCODER_HEADS)?,
            n_audio_layer: self.count_layers(NAMES.encoder_layers),
            n_text_ctx: ctx_t,
            n_text_state: s_t,
            n_text_head: heads(DECODER_HEADS)?,
            n_text_layer: self.count_layers(NAMES.decoder_layers),
            n_mels,
        })
    }

    /// The model's weights in their compute layout, every name and shape checked.
    pub fn weights(&mut self) -> Result<WhisperWeights, LoadError> {
        let hparams = self.hparams()?;
        assemble(self, &NAMES, hparams)
    }
}

impl TensorSource for Ct2File {
    fn path(&self) -> &Path {
        &self.path
    }

    fn tensor(&self, name: &str) -> Result<&Tensor, LoadError> {
        let v = self.variable(name).ok_or_else(|| self.missing(name))?;
        self.values(name, v)
    }

    fn take(&mut self, name: &str) -> Result<Tensor, LoadError> {
        self.tensor(name)?;
        let own = self.resolve(name).to_string();
        match self.variables.remove(&own) {
            Some(Variable::Values(t)) => Ok(t),
            _ => Err(self.missing(name)),
        }
    }
}

/// Reads the weights of a CTranslate2 Whisper directory (or of its `model.bin`).
pub fn load_weights(model_bin: &Path) -> Result<WhisperWeights, LoadError> {
    Ct2File::open(model_bin)?.weights()
}

/// Reads `config.json` of a CTranslate2 directory.
pub fn load_config(path: &Path) -> Result<Ct2Config, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| LoadError::Format {
        path: path.to_path_buf(),
        message: format!("invalid JSON: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `ct2_model` fuzz target: a variable whose dimensions multiply past
    /// `usize` overflowed while its byte count was checked.
    #[test]
    fn shape_whose_size_overflows_is_an_error() {
        let input = include_bytes!("../../fuzz/corpus/ct2_model/regression_shape_overflow.bin");
        let err = match Ct2File::from_bytes("crash.bin", input.to_vec()) {
            Ok(_) => panic!("the overflowing shape was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("crash.bin"), "{err}");
        assert!(err.contains("too large to address"), "{err}");
    }
}
