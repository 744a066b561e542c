//! whisper.cpp's ggml model files (`ggml-*.bin`): reading them, and writing them from any
//! loaded model (`voxd model convert`), so the same weights serve voxd and whisper.cpp.
//!
//! Layout: a `u32` magic, eleven `i32` dimensions (the last is the file's float type), the
//! mel filterbank (`i32` n_mels, `i32` n_freqs, f32 values), the regular vocabulary (`i32`
//! count, then `i32` length + bytes each; special tokens are implied by `n_vocab`), then
//! tensors until the end of the file: `i32` rank, `i32` name length, `i32` type, `i32` dims
//! innermost first, the name, the data. Names follow the original PyTorch checkpoint and the
//! attention projections are separate (q, k, v), so they are fused on reading and split on
//! writing; key projections have no bias.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::bytes::{read_file, ByteReader};
use super::mel::MelFilters;
use super::tokenizer::Tokenizer;
use super::weights::{
    assemble, DType, Fused, HParams, LoadError, NamedTensor, RawTensor, TensorNames, TensorRole,
    TensorSource, WhisperWeights,
};
use super::LoadedModel;

pub const MAGIC: u32 = 0x6767_6d6c;

/// whisper.cpp's names for Whisper's tensors (those of the original PyTorch checkpoint).
pub const NAMES: TensorNames = TensorNames {
    sep: ".",
    norm_scale: "weight",
    norm_shift: "bias",
    encoder_layers: "encoder.blocks.",
    decoder_layers: "decoder.blocks.",
    conv1: "encoder.conv1",
    conv2: "encoder.conv2",
    audio_positions: "encoder.positional_embedding",
    audio_ln: "encoder.ln_post",
    token_embedding: "decoder.token_embedding.weight",
    text_positions: "decoder.positional_embedding",
    text_ln: "decoder.ln",
    attn_ln: "attn_ln",
    attn_qkv: Fused::Split {
        prefix: "attn",
        parts: ["query", "key", "value"],
        unbiased: "key",
    },
    attn_out: "attn.out",
    cross_ln: "cross_attn_ln",
    cross_q: "cross_attn.query",
    cross_kv: Fused::Split {
        prefix: "cross_attn",
        parts: ["key", "value"],
        unbiased: "key",
    },
    cross_out: "cross_attn.out",
    mlp_ln: "mlp_ln",
    fc1: "mlp.0",
    fc2: "mlp.2",
};

/// ggml's type numbers for the element types voxd reads.
const GGML_F32: i32 = 0;
const GGML_F16: i32 = 1;

struct TensorInfo {
    dtype: Result<DType, i32>,
    /// Outermost first (row-major), as voxd uses shapes.
    shape: Vec<usize>,
    offset: usize,
    len: usize,
}

/// A parsed ggml file, read into memory.
pub struct GgmlFile {
    path: PathBuf,
    /// The file's bytes.
    map: Vec<u8>,
    pub hparams: HParams,
    pub mel_filters: MelFilters,
    pub vocab: Vec<Vec<u8>>,
    tensors: HashMap<String, TensorInfo>,
}

/// A non-negative `i32` that counts something, at most `max`.
fn count(r: &mut ByteReader, what: &str, max: usize) -> Result<usize, LoadError> {
    let v = r.i32(what)?;
    usize::try_from(v)
        .ok()
        .filter(|&v| v <= max)
        .ok_or_else(|| r.error(format!("{what} is {v}, expected 0..={max}")))
}

impl GgmlFile {
    pub fn open(path: &Path) -> Result<Self, LoadError> {
        Self::from_bytes(path, read_file(path)?)
    }

    /// Parses a ggml image already in memory; `path` only names it in errors.
    pub fn from_bytes(path: impl Into<PathBuf>, map: Vec<u8>) -> Result<Self, LoadError> {
        let path = path.into();
        let mut r = ByteReader::new(&map, &path);
        let magic = r
            .take(4, "magic")
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        if magic.ok() != Some(MAGIC) {
            return Err(r.error("not a whisper.cpp ggml model (bad magic number)".into()));
        }
        // Only non-negative here; `assemble` checks the values.
        let mut dim = |what: &str| count(&mut r, what, i32::MAX as usize);
        let hparams = HParams {
            n_vocab: dim("n_vocab")?,
            n_audio_ctx: dim("n_audio_ctx")?,
            n_audio_state: dim("n_audio_state")?,
            n_audio_head: dim("n_audio_head")?,
            n_audio_layer: dim("n_audio_layer")?,
            n_text_ctx: dim("n_text_ctx")?,
            n_text_state: dim("n_text_state")?,
            n_text_head: dim("n_text_head")?,
            n_text_layer: dim("n_text_layer")?,
            n_mels: dim("n_mels")?,
        };
        let _ftype = r.i32("ftype")?;
        let mel_filters = Self::read_filters(&mut r)?;
        let vocab = Self::read_vocab(&mut r)?;
        let tensors = Self::read_tensors(&mut r)?;
        Ok(Self {
            path,
            map,
            hparams,
            mel_filters,
            vocab,
            tensors,
        })
    }

    fn read_filters(r: &mut ByteReader) -> Result<MelFilters, LoadError> {
        let n_mels = count(r, "mel filter count", 1024)?;
        let n_freqs = count(r, "mel filter length", 1 << 16)?;
        let bytes = r.take(n_mels * n_freqs * 4, "mel filters")?;
        let data = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        MelFilters::from_data(n_mels, n_freqs, data).map_err(|e| r.error(e.to_string()))
    }

    fn read_vocab(r: &mut ByteReader) -> Result<Vec<Vec<u8>>, LoadError> {
        let n = count(r, "vocabulary size", 1 << 20)?;
        (0..n)
            .map(|_| {
                let len = count(r, "token length", 1 << 16)?;
                Ok(r.take(len, "token")?.to_vec())
            })
            .collect()
    }

    fn read_tensors(r: &mut ByteReader) -> Result<HashMap<String, TensorInfo>, LoadError> {
        let mut tensors = HashMap::new();
        while !r.at_end() {
            let rank = count(r, "tensor rank", 4)?;
            let name_len = count(r, "tensor name length", 1024)?;
            let ttype = r.i32("tensor type")?;
            let mut shape = (0..rank)
                .map(|_| count(r, "tensor dimension", 1 << 28))
                .collect::<Result<Vec<_>, _>>()?;
            shape.reverse();
            let name = String::from_utf8_lossy(r.take(name_len, "tensor name")?).into_owned();
            let dtype = match ttype {
                GGML_F32 => Ok(DType::F32),
                GGML_F16 => Ok(DType::F16),
                other => Err(other),
            };
            let elem = match dtype {
                Ok(d) => d,
                Err(t) => {
                    return Err(r.error(format!(
                        "tensor `{name}` has ggml type {t}; voxd reads f32 (0) and f16 (1) models"
                    )))
                }
            };
            let len = elem.bytes_for(&shape).ok_or_else(|| LoadError::TooLarge {
                path: r.path().to_path_buf(),
                name: name.clone(),
                shape: shape.clone(),
            })?;
            let offset = r.pos();
            r.take(len, &format!("data of `{name}`"))?;
            tensors.insert(
                name,
                TensorInfo {
                    dtype,
                    shape,
                    offset,
                    len,
                },
            );
        }
        Ok(tensors)
    }
}

impl TensorSource for GgmlFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn tensor(&self, name: &str) -> Result<RawTensor<'_>, LoadError> {
        let t = self
            .tensors
            .get(name)
            .ok_or_else(|| LoadError::MissingTensor {
                path: self.path.clone(),
                name: name.to_string(),
            })?;
        let dtype = t.dtype.map_err(|code| LoadError::DType {
            path: self.path.clone(),
            name: name.to_string(),
            dtype: format!("ggml type {code}"),
        })?;
        Ok(RawTensor {
            dtype,
            shape: t.shape.clone(),
            bytes: &self.map[t.offset..t.offset + t.len],
        })
    }
}

impl GgmlFile {
    /// The tokenizer from the file's vocabulary.
    pub fn tokenizer(&self) -> Result<Tokenizer, LoadError> {
        Tokenizer::from_ggml_vocab(self.vocab.clone(), self.hparams.n_vocab).map_err(|e| {
            LoadError::Format {
                path: self.path.clone(),
                message: e.to_string(),
            }
        })
    }

    /// The model's weights in their compute layout, every name and shape checked.
    pub fn weights(&self) -> Result<WhisperWeights, LoadError> {
        assemble(self, &NAMES, self.hparams)
    }
}

/// Loads a whisper.cpp ggml model file.
pub fn load(path: &Path) -> Result<LoadedModel, LoadError> {
    let file = GgmlFile::open(path)?;
    // The weights first: their check of the hyper-parameters says more than the
    // vocabulary's size would.
    let weights = file.weights()?;
    Ok(LoadedModel {
        tokenizer: file.tokenizer()?,
        weights,
        ct2_config: None,
        mel_filters: Some(file.mel_filters),
    })
}

// ------------------------------------------------------------------------------- writing

/// The float type of the matrices in a written file (small tensors are always f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatType {
    F32,
    F16,
}

struct Writer<W: Write> {
    out: W,
    ftype: FloatType,
}

impl<W: Write> Writer<W> {
    fn i32(&mut self, v: usize) -> std::io::Result<()> {
        let v = i32::try_from(v).map_err(|_| std::io::Error::other("value exceeds i32"))?;
        self.out.write_all(&v.to_le_bytes())
    }

    fn f32s(&mut self, data: &[f32]) -> std::io::Result<()> {
        for v in data {
            self.out.write_all(&v.to_le_bytes())?;
        }
        Ok(())
    }

    /// Writes one tensor. Weight matrices take the file's float type; everything else is
    /// f32, and convolution biases are `[n_out, 1]` columns, as whisper.cpp reads them.
    fn tensor(&mut self, t: NamedTensor<'_>) -> std::io::Result<()> {
        let f16 = self.ftype == FloatType::F16 && t.role == TensorRole::Weight;
        let mut shape = t.shape;
        if t.role == TensorRole::ConvBias {
            shape.push(1);
        }
        self.i32(shape.len())?;
        self.i32(t.name.len())?;
        self.i32(if f16 {
            GGML_F16 as usize
        } else {
            GGML_F32 as usize
        })?;
        for &d in shape.iter().rev() {
            self.i32(d)?;
        }
        self.out.write_all(t.name.as_bytes())?;
        if f16 {
            for v in t.values.iter() {
                self.out
                    .write_all(&half::f16::from_f32(*v).to_bits().to_le_bytes())?;
            }
            Ok(())
        } else {
            self.f32s(&t.values)
        }
    }
}

/// Writes `model` as a whisper.cpp ggml file.
pub fn write(
    path: &Path,
    weights: &WhisperWeights,
    tokenizer: &Tokenizer,
    filters: &MelFilters,
    ftype: FloatType,
) -> Result<(), LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = File::create(path).map_err(io)?;
    let mut w = Writer {
        out: BufWriter::new(file),
        ftype,
    };
    write_all(&mut w, weights, tokenizer, filters).map_err(io)?;
    w.out.flush().map_err(io)
}

fn write_all<W: Write>(
    w: &mut Writer<W>,
    weights: &WhisperWeights,
    tokenizer: &Tokenizer,
    filters: &MelFilters,
) -> std::io::Result<()> {
    let hp = &weights.hparams;
    w.out.write_all(&MAGIC.to_le_bytes())?;
    for (_, v) in hp.in_header_order() {
        w.i32(v)?;
    }
    w.i32((w.ftype == FloatType::F16) as usize)?;
    w.i32(filters.n_mels)?;
    w.i32(filters.n_freqs)?;
    w.f32s(&filters.data)?;

    let regular = tokenizer.special().eot as usize;
    w.i32(regular)?;
    for id in 0..regular as u32 {
        let bytes = tokenizer.token_bytes(id);
        w.i32(bytes.len())?;
        w.out.write_all(bytes)?;
    }

    weights.for_each_tensor(&NAMES, |t| w.tensor(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the `ggml_model` fuzz target: a tensor whose dimensions multiply past `usize`
    /// overflowed while its byte count was computed.
    #[test]
    fn shape_whose_size_overflows_is_an_error() {
        let input = include_bytes!("../../fuzz/corpus/ggml_model/regression_shape_overflow.bin");
        let err = match GgmlFile::from_bytes("crash.bin", input.to_vec()) {
            Ok(_) => panic!("the overflowing shape was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("crash.bin"), "{err}");
        assert!(err.contains("too large to address"), "{err}");
    }
}
