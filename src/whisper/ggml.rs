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
//!
//! Quantized files (whisper.cpp's `quantize`) hold every 2-D tensor in one of ggml's block
//! types but four: the convolution biases (stored as `[n_out, 1]` columns) and both position
//! embeddings stay f32; the 3-D convolution weights stay f16. Their header's float type is
//! ggml's file type plus 1000 × the quantization version (2), e.g. 2007 for q8_0. voxd reads
//! each tensor's own type, so any mix loads.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::bytes::{open_file, ByteReader};
use super::mel::MelFilters;
use super::tokenizer::Tokenizer;
use super::weights::{
    assemble, DType, Fused, HParams, LoadError, NamedTensor, Tensor, TensorNames, TensorRole,
    TensorSource, WhisperWeights,
};
use super::LoadedModel;
use crate::kernels::quant::{self, QuantType};

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

/// A parsed ggml file, read into memory.
pub struct GgmlFile {
    path: PathBuf,
    pub hparams: HParams,
    pub mel_filters: MelFilters,
    pub vocab: Vec<Vec<u8>>,
    /// Shapes outermost first (row-major), as voxd uses them.
    tensors: HashMap<String, Tensor>,
}

/// A non-negative `i32` that counts something, at most `max`.
fn count<R: Read>(r: &mut ByteReader<R>, what: &str, max: usize) -> Result<usize, LoadError> {
    let v = r.i32(what)?;
    usize::try_from(v)
        .ok()
        .filter(|&v| v <= max)
        .ok_or_else(|| r.error(format!("{what} is {v}, expected 0..={max}")))
}

impl GgmlFile {
    pub fn open(path: &Path) -> Result<Self, LoadError> {
        let (file, len) = open_file(path)?;
        Self::parse(ByteReader::new(file, len, path))
    }

    /// Parses a ggml image already in memory; `path` only names it in errors.
    pub fn from_bytes(path: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<Self, LoadError> {
        let path = path.into();
        Self::parse(ByteReader::new(&bytes[..], bytes.len(), &path))
    }

    fn parse(mut r: ByteReader<impl Read>) -> Result<Self, LoadError> {
        if r.u32("magic").ok() != Some(MAGIC) {
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
            path: r.path().to_path_buf(),
            hparams,
            mel_filters,
            vocab,
            tensors,
        })
    }

    fn read_filters(r: &mut ByteReader<impl Read>) -> Result<MelFilters, LoadError> {
        let n_mels = count(r, "mel filter count", 1024)?;
        let n_freqs = count(r, "mel filter length", 1 << 16)?;
        let data = r.f32s(n_mels * n_freqs, "mel filters")?;
        MelFilters::from_data(n_mels, n_freqs, data).map_err(|e| r.error(e.to_string()))
    }

    fn read_vocab(r: &mut ByteReader<impl Read>) -> Result<Vec<Vec<u8>>, LoadError> {
        let n = count(r, "vocabulary size", 1 << 20)?;
        (0..n)
            .map(|_| {
                let len = count(r, "token length", 1 << 16)?;
                r.take(len, "token")
            })
            .collect()
    }

    fn read_tensors(r: &mut ByteReader<impl Read>) -> Result<HashMap<String, Tensor>, LoadError> {
        let mut tensors = HashMap::new();
        while !r.at_end() {
            let rank = count(r, "tensor rank", 4)?;
            let name_len = count(r, "tensor name length", 1024)?;
            let ttype = r.i32("tensor type")?;
            let mut shape = (0..rank)
                .map(|_| count(r, "tensor dimension", 1 << 28))
                .collect::<Result<Vec<_>, _>>()?;
            shape.reverse();
            let name = String::from_utf8_lossy(&r.take(name_len, "tensor name")?).into_owned();
            let dtype = u32::try_from(ttype)
                .ok()
                .and_then(DType::from_ggml_id)
                .ok_or_else(|| {
                    r.error(format!(
                        "tensor `{name}` has ggml type {ttype}; voxd reads {}",
                        QuantType::supported_names()
                    ))
                })?;
            if let (DType::Blocks(ty), Some(&row)) = (dtype, shape.last()) {
                if ty.row_bytes(row).is_none() {
                    return Err(r.error(format!(
                        "tensor `{name}` is {}, but its rows of {row} values are not whole \
                         blocks of {}",
                        ty.name(),
                        ty.block_len()
                    )));
                }
            }
            let len = dtype.bytes_for(&shape).ok_or_else(|| LoadError::TooLarge {
                path: r.path().to_path_buf(),
                name: name.clone(),
                shape: shape.clone(),
            })?;
            let data = r.tensor_data(dtype, len, &format!("data of `{name}`"))?;
            tensors.insert(name, Tensor { shape, data });
        }
        Ok(tensors)
    }
}

impl TensorSource for GgmlFile {
    fn path(&self) -> &Path {
        &self.path
    }

    fn tensor(&self, name: &str) -> Result<Cow<'_, Tensor>, LoadError> {
        self.tensors
            .get(name)
            .map(Cow::Borrowed)
            .ok_or_else(|| self.missing(name))
    }

    fn take(&mut self, name: &str) -> Result<Tensor, LoadError> {
        self.tensors.remove(name).ok_or_else(|| self.missing(name))
    }
}

impl GgmlFile {
    fn missing(&self, name: &str) -> LoadError {
        LoadError::MissingTensor {
            path: self.path.clone(),
            name: name.to_string(),
        }
    }

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
    pub fn weights(&mut self) -> Result<WhisperWeights, LoadError> {
        assemble(self, &NAMES, self.hparams)
    }
}

/// Loads a whisper.cpp ggml model file.
pub fn load(path: &Path) -> Result<LoadedModel, LoadError> {
    let mut file = GgmlFile::open(path)?;
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

/// The type of the matrices in a written file (small tensors are always f32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FloatType {
    F32,
    F16,
    /// A ggml block type that has a quantizer ([`QuantType::has_quantizer`]), laid out as
    /// whisper.cpp's `quantize` writes it (see the module docs).
    Quant(QuantType),
}

/// What whisper.cpp's header adds to ggml's file type in a quantized file: the quantization
/// version (2) times 1000.
const QUANT_VERSION_OFFSET: usize = 2 * 1000;

impl FloatType {
    /// The header's float type (ggml's `ftype`).
    fn header(self) -> usize {
        match self {
            FloatType::F32 => 0,
            FloatType::F16 => 1,
            FloatType::Quant(ty) => {
                let file_type = match ty {
                    QuantType::Q4_0 => 2,
                    QuantType::Q4_1 => 3,
                    QuantType::Q8_0 => 7,
                    QuantType::Q5_0 => 8,
                    QuantType::Q5_1 => 9,
                    other => unreachable!("no ggml file type for {other:?}"),
                };
                QUANT_VERSION_OFFSET + file_type
            }
        }
    }

    /// The type a tensor is stored in: matrices (2-D weights) take the file's type,
    /// convolution weights (3-D) f16 unless the file is f32, everything else f32.
    fn tensor_type(self, t: &NamedTensor) -> QuantType {
        match (t.role, t.shape.len(), self) {
            (TensorRole::Weight, 2, FloatType::Quant(ty)) => ty,
            (TensorRole::Weight, _, FloatType::F32) => QuantType::F32,
            (TensorRole::Weight, _, _) => QuantType::F16,
            _ => QuantType::F32,
        }
    }
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

    /// Writes one tensor in the type [`FloatType::tensor_type`] gives it; convolution biases
    /// are `[n_out, 1]` columns, as whisper.cpp reads them.
    fn tensor(&mut self, t: NamedTensor<'_>) -> std::io::Result<()> {
        let ty = self.ftype.tensor_type(&t);
        let mut shape = t.shape;
        if t.role == TensorRole::ConvBias {
            shape.push(1);
        }
        let row = shape.last().copied().unwrap_or(1);
        let Some(row_bytes) = ty.row_bytes(row) else {
            return Err(std::io::Error::other(format!(
                "tensor `{}`: rows of {row} values are not whole {} blocks of {}",
                t.name,
                ty.name(),
                ty.block_len()
            )));
        };
        self.i32(shape.len())?;
        self.i32(t.name.len())?;
        self.i32(ty.ggml_id() as usize)?;
        for &d in shape.iter().rev() {
            self.i32(d)?;
        }
        self.out.write_all(t.name.as_bytes())?;
        match ty {
            QuantType::F32 => self.f32s(&t.values),
            QuantType::F16 => {
                for v in t.values.iter() {
                    self.out
                        .write_all(&half::f16::from_f32(*v).to_bits().to_le_bytes())?;
                }
                Ok(())
            }
            blocks => {
                let mut bytes = vec![0u8; row_bytes];
                for values in t.values.chunks_exact(row) {
                    quant::quantize_row(blocks, values, &mut bytes);
                    self.out.write_all(&bytes)?;
                }
                Ok(())
            }
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
    if let FloatType::Quant(ty) = ftype {
        if !ty.has_quantizer() || matches!(ty, QuantType::F32 | QuantType::F16) {
            return Err(LoadError::Format {
                path: path.to_path_buf(),
                message: format!(
                    "voxd cannot write {} files (it writes q8_0, q5_1, q5_0, q4_1 and q4_0)",
                    ty.name()
                ),
            });
        }
    }
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
    w.i32(w.ftype.header())?;
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
