//! CTranslate2 (faster-whisper) model directories: `model.bin`, `config.json`, `vocabulary.txt`.
//!
//! `model.bin` (binary version 6) is a header, a list of named variables and a list of
//! aliases; each variable is read into a vector of its type, which the weights then take
//! over (see `bytes.rs`). The layout is described in
//! the project's FORMATS notes; every read is bounds-checked so that a truncated or foreign
//! file gives an error naming the file and what was wrong.
//!
//! Quantized models (`--quantization int8`, `int8_float16`, `int8_float32`) store each
//! weight (linear layers, convolutions, the token embedding) as int8 with one f32 scale per
//! output row beside it, `<name>_scale`: value = q / scale. The int8 values are kept as read
//! until the weight is taken; then a matrix whose rows are whole Q8_0 blocks becomes Q8_0,
//! the integers unchanged and the step 1 / scale rounded to f16 (a relative error below
//! 2⁻¹¹ of each row's step, some fifty times smaller than int8's own rounding), so it is
//! multiplied by the quantized kernels; anything else (the convolutions) is dequantized to
//! f32. The other tensors are f16 or f32 as usual.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::bytes::{open_file, ByteReader};
use super::weights::{
    assemble, DType, Fused, HParams, LoadError, Tensor, TensorData, TensorNames, TensorSource,
    WhisperWeights, WEIGHT,
};
use crate::kernels::quant::{self, QuantType};

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
    /// A quantized weight, whose scales are the variable `<name>_scale`; converted to a
    /// type voxd computes with when it is taken.
    Int8 { shape: Vec<usize>, values: Vec<i8> },
    /// Another type (the head counts are integer scalars): its code, its shape, and its
    /// bytes when it is a scalar.
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

/// How a variable's values are stored.
enum Stored {
    Float(DType),
    Int8,
    /// A data type code voxd does not read.
    Other(u8),
}

impl Stored {
    fn from_code(code: u8) -> Stored {
        match code {
            0 => Stored::Float(DType::F32),
            1 => Stored::Int8,
            4 => Stored::Float(DType::F16),
            other => Stored::Other(other),
        }
    }
}

fn dtype_name(code: u8) -> &'static str {
    match code {
        2 => "int16 (convert the model with CTranslate2's int8 or float16 quantization)",
        3 => "int32",
        5 => "bfloat16",
        _ => "unknown",
    }
}

/// Checks that variable `name` of `shape` has the `expected` bytes of its type (`None`: more
/// than a `usize` counts) before they are read.
fn check_byte_count(
    c: &ByteReader<impl Read>,
    name: &str,
    shape: &[usize],
    expected: Option<usize>,
    len: usize,
) -> Result<(), LoadError> {
    let expected = expected.ok_or_else(|| LoadError::TooLarge {
        path: c.path().to_path_buf(),
        name: name.to_string(),
        shape: shape.to_vec(),
    })?;
    if expected != len {
        return Err(c.error(format!(
            "variable `{name}` of shape {shape:?} should have {expected} bytes, has {len}"
        )));
    }
    Ok(())
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
            let variable = match Stored::from_code(code) {
                Stored::Float(dt) => {
                    check_byte_count(&c, &name, &shape, dt.bytes_for(&shape), len)?;
                    let data = c.tensor_data(dt, len, &what)?;
                    Variable::Values(Tensor { shape, data })
                }
                Stored::Int8 => {
                    let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
                    check_byte_count(&c, &name, &shape, count, len)?;
                    let values = c.i8s(len, &what)?;
                    Variable::Int8 { shape, values }
                }
                Stored::Other(code) if len <= MAX_SCALAR_BYTES => Variable::Other {
                    code,
                    shape,
                    bytes: c.take(len, &what)?,
                },
                Stored::Other(code) => {
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

    /// The variable `name` (through an alias or not) in a type voxd computes with; `own` is
    /// its own name.
    fn tensor_of<'v>(
        &self,
        name: &str,
        own: &str,
        variable: &'v Variable,
    ) -> Result<Cow<'v, Tensor>, LoadError> {
        match variable {
            Variable::Values(t) => Ok(Cow::Borrowed(t)),
            Variable::Int8 { shape, values } => {
                self.int8_tensor(own, shape, values).map(Cow::Owned)
            }
            Variable::Other { code, .. } => Err(LoadError::DType {
                path: self.path.clone(),
                name: name.to_string(),
                dtype: dtype_name(*code).to_string(),
            }),
        }
    }

    fn format_error(&self, message: String) -> LoadError {
        LoadError::Format {
            path: self.path.clone(),
            message,
        }
    }

    /// The int8 weight `name` (its own name, not an alias) of `shape` in a type voxd computes
    /// with: rows of whole Q8_0 blocks as Q8_0, anything else as f32 (see the module comment).
    fn int8_tensor(&self, name: &str, shape: &[usize], values: &[i8]) -> Result<Tensor, LoadError> {
        let Some((&rows, row_dims)) = shape.split_first() else {
            return Err(self.format_error(format!(
                "int8 variable `{name}` is a scalar, expected a weight with a row per output"
            )));
        };
        let steps = self.row_steps(name, rows)?;
        let shape = shape.to_vec();
        if values.is_empty() {
            return Ok(Tensor {
                shape,
                data: TensorData::F32(Vec::new()),
            });
        }
        // The byte count was checked against the shape when the file was parsed.
        let cols: usize = row_dims.iter().product();
        let rows_of_values = values.chunks_exact(cols).zip(steps);
        let data = match QuantType::Q8_0.row_bytes(cols) {
            Some(row_bytes) if shape.len() == 2 => {
                let mut blocks = vec![0u8; rows * row_bytes];
                for ((row, step), out) in rows_of_values.zip(blocks.chunks_exact_mut(row_bytes)) {
                    quant::q8_0_from_i8(row, step, out);
                }
                TensorData::Blocks {
                    ty: QuantType::Q8_0,
                    data: blocks,
                }
            }
            _ => TensorData::F32(
                rows_of_values
                    .flat_map(|(row, step)| row.iter().map(move |&q| f32::from(q) * step))
                    .collect(),
            ),
        };
        Ok(Tensor { shape, data })
    }

    /// The step (1 / scale) of each of the `rows` rows of the int8 weight `name`, from its
    /// scales `<name>_scale`: `[rows]` positive finite f32 or f16 values.
    fn row_steps(&self, name: &str, rows: usize) -> Result<Vec<f32>, LoadError> {
        let scale_name = format!("{name}_scale");
        let scale = self.variables.get(&scale_name).ok_or_else(|| {
            self.format_error(format!(
                "int8 variable `{name}` has no scales: `{scale_name}` is missing"
            ))
        })?;
        let Variable::Values(scales) = scale else {
            return Err(self.format_error(format!(
                "`{scale_name}` should hold float32 or float16 scales"
            )));
        };
        if scales.shape != [rows] {
            return Err(LoadError::Shape {
                path: self.path.clone(),
                name: scale_name,
                expected: vec![rows],
                got: scales.shape.clone(),
            });
        }
        scales
            .to_f32()
            .iter()
            .enumerate()
            .map(|(row, &s)| {
                if s.is_finite() && s > 0.0 {
                    Ok(1.0 / s)
                } else {
                    Err(self.format_error(format!(
                        "`{scale_name}` of row {row} is {s}, expected a positive finite scale"
                    )))
                }
            })
            .collect()
    }

    /// A small integer scalar such as `encoder/num_heads`.
    fn scalar(&self, name: &str) -> Result<i64, LoadError> {
        let b = match self.variable(name).ok_or_else(|| self.missing(name))? {
            Variable::Other { bytes, .. } => &bytes[..],
            Variable::Int8 { values, .. } => bytemuck::cast_slice(values),
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
                Variable::Int8 { shape, .. } | Variable::Other { shape, .. } => shape,
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

    fn tensor(&self, name: &str) -> Result<Cow<'_, Tensor>, LoadError> {
        let own = self.resolve(name);
        let v = self.variables.get(own).ok_or_else(|| self.missing(name))?;
        self.tensor_of(name, own, v)
    }

    fn take(&mut self, name: &str) -> Result<Tensor, LoadError> {
        let own = self.resolve(name).to_string();
        let v = self
            .variables
            .remove(&own)
            .ok_or_else(|| self.missing(name))?;
        // An int8 weight's values are dropped as soon as they are converted.
        Ok(match v {
            Variable::Values(t) => t,
            other => self.tensor_of(name, &own, &other)?.into_owned(),
        })
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

    /// The fuzz seed quantized as CTranslate2's converter does (`scripts/data/fuzz_seeds.py`)
    /// loads, and each weight lies within half a step of the float seed's.
    #[test]
    fn the_int8_fuzz_seed_loads_near_the_float_one() {
        let load = |name: &str| {
            let path = format!(
                "{}/fuzz/corpus/ct2_model/{name}",
                env!("CARGO_MANIFEST_DIR")
            );
            let mut file = Ct2File::open(Path::new(&path)).unwrap();
            (file.weights().unwrap(), file)
        };
        let (float, _) = load("tiny_en_1layer.bin");
        let (int8, file) = load("tiny_en_1layer_int8.bin");
        assert_eq!(float.hparams, int8.hparams);
        let (f, q) = (
            &float.encoder.layers[0].mlp.fc1,
            &int8.encoder.layers[0].mlp.fc1,
        );
        let scales = file
            .tensor("encoder/layer_0/ffn/linear_0/weight_scale")
            .unwrap();
        let rows = f.weight_f32();
        let got = q.weight_f32();
        for ((want, got), scale) in rows
            .chunks_exact(f.n_in)
            .zip(got.chunks_exact(q.n_in))
            .zip(scales.to_f32())
        {
            for (w, g) in want.iter().zip(got) {
                assert!((w - g).abs() <= 0.5 / scale + 1e-6, "{w} vs {g}");
            }
        }
    }

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
