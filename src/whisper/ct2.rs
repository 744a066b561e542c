//! CTranslate2 (faster-whisper) model directories: `model.bin`, `config.json`, `vocabulary.txt`.
//!
//! `model.bin` (binary version 6) is a header, a list of named variables and a list of
//! aliases; the file is read into memory and each variable's bytes are borrowed from it
//! until the weights are converted to their compute layout. The layout is described in
//! the project's FORMATS notes; every read is bounds-checked so that a truncated or foreign
//! file gives an error naming the file and what was wrong.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::weights::{
    Conv1d, DType, DecoderLayer, DecoderWeights, EncoderLayer, EncoderWeights, HParams, LoadError,
    RawTensor, Storage, TensorSource, WhisperWeights,
};

const SUPPORTED_VERSION: u32 = 6;
const SPEC_NAME: &str = "WhisperSpec";

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
}

struct Variable {
    dtype: Result<DType, u8>,
    shape: Vec<usize>,
    offset: usize,
    len: usize,
}

/// A parsed `model.bin`, read into memory.
pub struct Ct2File {
    path: PathBuf,
    /// The file's bytes.
    map: Vec<u8>,
    variables: HashMap<String, Variable>,
    aliases: HashMap<String, String>,
}

/// A bounds-checked little-endian reader over the file's bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], LoadError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(LoadError::Format {
                path: self.path.to_path_buf(),
                message: format!(
                    "file is truncated: {what} needs {n} bytes at offset {}, but the file has {} bytes",
                    self.pos,
                    self.bytes.len()
                ),
            }),
        }
    }

    fn u8(&mut self, what: &str) -> Result<u8, LoadError> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, LoadError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, LoadError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A `u16` length followed by that many bytes, NUL-terminated.
    fn string(&mut self, what: &str) -> Result<String, LoadError> {
        let n = self.u16(what)? as usize;
        let raw = self.take(n, what)?;
        let raw = raw.strip_suffix(&[0]).unwrap_or(raw);
        String::from_utf8(raw.to_vec()).map_err(|_| self.error(format!("{what} is not UTF-8")))
    }

    fn error(&self, message: String) -> LoadError {
        LoadError::Format {
            path: self.path.to_path_buf(),
            message,
        }
    }
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
        let io = |source| LoadError::Io {
            path: path.to_path_buf(),
            source,
        };
        // Read, not memory-mapped: a file replaced or cut short while it is open would end
        // the process with SIGBUS on the first page past its new end.
        let map = std::fs::read(path).map_err(io)?;
        Self::from_bytes(path, map)
    }

    /// Parses a `model.bin` image already in memory; `path` only names it in errors.
    pub fn from_bytes(path: impl Into<PathBuf>, map: Vec<u8>) -> Result<Self, LoadError> {
        let path = path.into();
        let (variables, aliases) = Self::parse(&map, &path)?;
        Ok(Self {
            path,
            map,
            variables,
            aliases,
        })
    }

    #[allow(clippy::type_complexity)]
    fn parse(
        bytes: &[u8],
        path: &Path,
    ) -> Result<(HashMap<String, Variable>, HashMap<String, String>), LoadError> {
        let mut c = Cursor {
            bytes,
            pos: 0,
            path,
        };
        if bytes.len() < 4 {
            return Err(c.error(format!(
                "not a CTranslate2 model: the file has only {} bytes",
                bytes.len()
            )));
        }
        let version = c.u32("version")?;
        if version != SUPPORTED_VERSION {
            return Err(c.error(format!(
                "not a supported CTranslate2 model: binary version {version}, expected {SUPPORTED_VERSION}"
            )));
        }
        let spec = c.string("spec name")?;
        if spec != SPEC_NAME {
            return Err(c.error(format!(
                "model spec is `{spec}`, expected `{SPEC_NAME}` (is this a Whisper model?)"
            )));
        }
        let _revision = c.u32("spec revision")?;
        let count = c.u32("variable count")?;
        let mut variables = HashMap::new();
        for _ in 0..count {
            let name = c.string("variable name")?;
            let rank = c.u8("rank")? as usize;
            let shape = (0..rank)
                .map(|_| c.u32("dimension").map(|d| d as usize))
                .collect::<Result<Vec<_>, _>>()?;
            let code = c.u8("data type")?;
            let len = c.u32("byte count")? as usize;
            let offset = c.pos;
            c.take(len, &format!("data of `{name}`"))?;
            let dtype = dtype_from_code(code);
            if let Ok(dt) = dtype {
                // Checked: the dimensions are the file's, and their product can overflow.
                let expected = shape.iter().try_fold(dt.size(), |n, &d| n.checked_mul(d));
                if expected != Some(len) {
                    let expected = expected.map_or("more than 2^64".to_string(), |n| n.to_string());
                    return Err(c.error(format!(
                        "variable `{name}` of shape {shape:?} should have {expected} bytes, has {len}"
                    )));
                }
            }
            variables.insert(
                name,
                Variable {
                    dtype,
                    shape,
                    offset,
                    len,
                },
            );
        }
        let n_aliases = c.u32("alias count")?;
        let mut aliases = HashMap::new();
        for _ in 0..n_aliases {
            let alias = c.string("alias")?;
            let target = c.string("alias target")?;
            aliases.insert(alias, target);
        }
        Ok((variables, aliases))
    }

    fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables
            .get(name)
            .or_else(|| self.variables.get(self.aliases.get(name)?))
    }

    /// A small integer scalar such as `encoder/num_heads`.
    fn scalar(&self, name: &str) -> Result<i64, LoadError> {
        let v = self.variable(name).ok_or_else(|| self.missing(name))?;
        let b = &self.map[v.offset..v.offset + v.len];
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

    fn count_layers(&self, prefix: &str) -> usize {
        (0..)
            .take_while(|i| {
                self.variable(&format!("{prefix}/layer_{i}/ffn/layer_norm/gamma"))
                    .is_some()
            })
            .count()
    }

    fn dims(&self, name: &str) -> Result<&[usize], LoadError> {
        Ok(&self.variable(name).ok_or_else(|| self.missing(name))?.shape)
    }

    pub fn hparams(&self) -> Result<HParams, LoadError> {
        let conv1 = self.dims("encoder/conv1/weight")?;
        let enc_pos = self.dims("encoder/position_encodings/encodings")?;
        let emb = self.dims("decoder/embeddings/weight")?;
        let dec_pos = self.dims("decoder/position_encodings/encodings")?;
        let bad = |what: &str| LoadError::Format {
            path: self.path.clone(),
            message: format!("unexpected shape of {what}"),
        };
        let (&[s_a, n_mels, 3], &[ctx_a, _], &[n_vocab, s_t], &[ctx_t, _]) =
            (conv1, enc_pos, emb, dec_pos)
        else {
            return Err(bad("the convolution, position or embedding tensors"));
        };
        let heads = |name| {
            self.scalar(name).and_then(|h| {
                usize::try_from(h)
                    .ok()
                    .filter(|&h| h > 0)
                    .ok_or_else(|| bad(name))
            })
        };
        let hp = HParams {
            n_vocab,
            n_audio_ctx: ctx_a,
            n_audio_state: s_a,
            n_audio_head: heads("encoder/num_heads")?,
            n_audio_layer: self.count_layers("encoder"),
            n_text_ctx: ctx_t,
            n_text_state: s_t,
            n_text_head: heads("decoder/num_heads")?,
            n_text_layer: self.count_layers("decoder"),
            n_mels,
        };
        if !hp.n_audio_state.is_multiple_of(hp.n_audio_head)
            || !hp.n_text_state.is_multiple_of(hp.n_text_head)
        {
            return Err(bad(
                "the attention heads (width not divisible by head count)",
            ));
        }
        Ok(hp)
    }

    /// The model's weights in their compute layout, every name and shape checked.
    pub fn weights(&self) -> Result<WhisperWeights, LoadError> {
        let hparams = self.hparams()?;
        Ok(WhisperWeights {
            hparams,
            encoder: encoder(self, &hparams)?,
            decoder: decoder(self, &hparams)?,
        })
    }
}

impl TensorSource for Ct2File {
    const NAMING: (&'static str, &'static str, &'static str) = ("/", "gamma", "beta");

    fn path(&self) -> &Path {
        &self.path
    }

    fn tensor(&self, name: &str) -> Result<RawTensor<'_>, LoadError> {
        let v = self.variable(name).ok_or_else(|| self.missing(name))?;
        let dtype = v.dtype.map_err(|code| LoadError::DType {
            path: self.path.clone(),
            name: name.to_string(),
            dtype: dtype_name(code).to_string(),
        })?;
        Ok(RawTensor {
            dtype,
            shape: v.shape.clone(),
            bytes: &self.map[v.offset..v.offset + v.len],
        })
    }
}

fn conv(src: &Ct2File, prefix: &str, n_out: usize, n_in: usize) -> Result<Conv1d, LoadError> {
    Ok(Conv1d::from_pytorch(
        &src.f32s(&format!("{prefix}/weight"), &[n_out, n_in, 3])?,
        src.f32s(&format!("{prefix}/bias"), &[n_out])?,
        n_out,
        n_in,
    ))
}

fn encoder(src: &Ct2File, hp: &HParams) -> Result<EncoderWeights, LoadError> {
    let s = hp.n_audio_state;
    let f32s = Storage::F32;
    let layers = (0..hp.n_audio_layer)
        .map(|i| {
            let p = format!("encoder/layer_{i}");
            Ok(EncoderLayer {
                attn_ln: src.layer_norm(&format!("{p}/self_attention/layer_norm"), s)?,
                attn_qkv: src.linear(&format!("{p}/self_attention/linear_0"), 3 * s, s, f32s)?,
                attn_out: src.linear(&format!("{p}/self_attention/linear_1"), s, s, f32s)?,
                mlp_ln: src.layer_norm(&format!("{p}/ffn/layer_norm"), s)?,
                fc1: src.linear(&format!("{p}/ffn/linear_0"), 4 * s, s, f32s)?,
                fc2: src.linear(&format!("{p}/ffn/linear_1"), s, 4 * s, f32s)?,
            })
        })
        .collect::<Result<Vec<_>, LoadError>>()?;
    Ok(EncoderWeights {
        conv1: conv(src, "encoder/conv1", s, hp.n_mels)?,
        conv2: conv(src, "encoder/conv2", s, s)?,
        positions: src.f32s("encoder/position_encodings/encodings", &[hp.n_audio_ctx, s])?,
        layers,
        ln_post: src.layer_norm("encoder/layer_norm", s)?,
    })
}

fn decoder(src: &Ct2File, hp: &HParams) -> Result<DecoderWeights, LoadError> {
    let s = hp.n_text_state;
    let h16 = Storage::F16;
    let layers = (0..hp.n_text_layer)
        .map(|i| {
            let p = format!("decoder/layer_{i}");
            let sa = format!("{p}/self_attention");
            let ca = format!("{p}/attention");
            Ok(DecoderLayer {
                attn_ln: src.layer_norm(&format!("{sa}/layer_norm"), s)?,
                attn_qkv: src.linear(&format!("{sa}/linear_0"), 3 * s, s, h16)?,
                attn_out: src.linear(&format!("{sa}/linear_1"), s, s, h16)?,
                cross_ln: src.layer_norm(&format!("{ca}/layer_norm"), s)?,
                cross_q: src.linear(&format!("{ca}/linear_0"), s, s, h16)?,
                cross_kv: src.linear(&format!("{ca}/linear_1"), 2 * s, s, Storage::F32)?,
                cross_out: src.linear(&format!("{ca}/linear_2"), s, s, h16)?,
                mlp_ln: src.layer_norm(&format!("{p}/ffn/layer_norm"), s)?,
                fc1: src.linear(&format!("{p}/ffn/linear_0"), 4 * s, s, h16)?,
                fc2: src.linear(&format!("{p}/ffn/linear_1"), s, 4 * s, h16)?,
            })
        })
        .collect::<Result<Vec<_>, LoadError>>()?;
    let token_embedding = src
        .shaped("decoder/embeddings/weight", &[hp.n_vocab, s])?
        .to_f16();
    Ok(DecoderWeights {
        token_embedding,
        positions: src.f32s("decoder/position_encodings/encodings", &[hp.n_text_ctx, s])?,
        layers,
        ln: src.layer_norm("decoder/layer_norm", s)?,
    })
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
        assert!(err.contains("more than 2^64 bytes"), "{err}");
    }
}
