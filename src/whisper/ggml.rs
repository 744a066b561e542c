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

use super::mel::MelFilters;
use super::tokenizer::Tokenizer;
use super::weights::{
    Conv1d, DType, DecoderLayer, DecoderWeights, EncoderLayer, EncoderWeights, HParams, LayerNorm,
    Linear, LoadError, Matrix, RawTensor, Storage, TensorSource, WhisperWeights,
};
use super::LoadedModel;

pub const MAGIC: u32 = 0x6767_6d6c;

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

/// A bounds-checked little-endian reader.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn error(&self, message: String) -> LoadError {
        LoadError::Format {
            path: self.path.to_path_buf(),
            message,
        }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], LoadError> {
        match self.pos.checked_add(n).filter(|&e| e <= self.bytes.len()) {
            Some(end) => {
                let s = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(self.error(format!(
                "file is truncated: {what} needs {n} bytes at offset {}, but the file has {} bytes",
                self.pos,
                self.bytes.len()
            ))),
        }
    }

    fn i32(&mut self, what: &str) -> Result<i32, LoadError> {
        let b = self.take(4, what)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A non-negative `i32` that counts something, at most `max`.
    fn count(&mut self, what: &str, max: usize) -> Result<usize, LoadError> {
        let v = self.i32(what)?;
        usize::try_from(v)
            .ok()
            .filter(|&v| v <= max)
            .ok_or_else(|| self.error(format!("{what} is {v}, expected 0..={max}")))
    }
}

impl GgmlFile {
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

    /// Parses a ggml image already in memory; `path` only names it in errors.
    pub fn from_bytes(path: impl Into<PathBuf>, map: Vec<u8>) -> Result<Self, LoadError> {
        let path = path.into();
        let mut r = Reader {
            bytes: &map,
            pos: 0,
            path: &path,
        };
        let magic = r
            .take(4, "magic")
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        if magic.ok() != Some(MAGIC) {
            return Err(r.error("not a whisper.cpp ggml model (bad magic number)".into()));
        }
        const BIG: usize = 1 << 20;
        let mut dim = |what: &str| r.count(what, BIG);
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
        if [hparams.n_audio_head, hparams.n_text_head, hparams.n_mels].contains(&0) {
            return Err(r.error(format!("implausible dimensions {hparams:?}")));
        }
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

    fn read_filters(r: &mut Reader) -> Result<MelFilters, LoadError> {
        let n_mels = r.count("mel filter count", 1024)?;
        let n_freqs = r.count("mel filter length", 1 << 16)?;
        let bytes = r.take(n_mels * n_freqs * 4, "mel filters")?;
        let data = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        MelFilters::from_data(n_mels, n_freqs, data).map_err(|e| r.error(e.to_string()))
    }

    fn read_vocab(r: &mut Reader) -> Result<Vec<Vec<u8>>, LoadError> {
        let n = r.count("vocabulary size", 1 << 20)?;
        (0..n)
            .map(|_| {
                let len = r.count("token length", 1 << 16)?;
                Ok(r.take(len, "token")?.to_vec())
            })
            .collect()
    }

    fn read_tensors(r: &mut Reader) -> Result<HashMap<String, TensorInfo>, LoadError> {
        let mut tensors = HashMap::new();
        while r.pos < r.bytes.len() {
            let rank = r.count("tensor rank", 4)?;
            let name_len = r.count("tensor name length", 1024)?;
            let ttype = r.i32("tensor type")?;
            let mut shape = (0..rank)
                .map(|_| r.count("tensor dimension", 1 << 28))
                .collect::<Result<Vec<_>, _>>()?;
            shape.reverse();
            let name = String::from_utf8_lossy(r.take(name_len, "tensor name")?).into_owned();
            let dtype = match ttype {
                GGML_F32 => Ok(DType::F32),
                GGML_F16 => Ok(DType::F16),
                other => Err(other),
            };
            let elem = match dtype {
                Ok(d) => d.size(),
                Err(t) => {
                    return Err(r.error(format!(
                        "tensor `{name}` has ggml type {t}; voxd reads f32 (0) and f16 (1) models"
                    )))
                }
            };
            // Checked: the dimensions are the file's, and their product can overflow.
            let len = shape
                .iter()
                .try_fold(elem, |n, &d| n.checked_mul(d))
                .ok_or_else(|| {
                    r.error(format!(
                        "tensor `{name}` of shape {shape:?} has more than 2^64 bytes"
                    ))
                })?;
            let offset = r.pos;
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
    const NAMING: (&'static str, &'static str, &'static str) = (".", "weight", "bias");

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

fn fused(
    src: &GgmlFile,
    prefix: &str,
    parts: &[&str],
    s: usize,
    st: Storage,
) -> Result<Linear, LoadError> {
    let mut weights = Vec::new();
    let mut bias = Vec::new();
    for part in parts {
        weights.push(src.matrix(&format!("{prefix}.{part}.weight"), s, s, st)?);
        if *part == "key" {
            bias.extend(std::iter::repeat_n(0.0, s));
        } else {
            bias.extend(src.f32s(&format!("{prefix}.{part}.bias"), &[s])?);
        }
    }
    Ok(Linear {
        weight: Matrix::stack(weights),
        bias,
        n_out: parts.len() * s,
        n_in: s,
    })
}

fn conv(src: &GgmlFile, prefix: &str, n_out: usize, n_in: usize) -> Result<Conv1d, LoadError> {
    let bias_name = format!("{prefix}.bias");
    // whisper.cpp stores conv biases as [n_out, 1]; a plain [n_out] is fine too.
    let bias = src.tensor(&bias_name)?;
    if bias.len() != n_out {
        return Err(LoadError::Shape {
            path: src.path().to_path_buf(),
            name: bias_name,
            expected: vec![n_out, 1],
            got: bias.shape,
        });
    }
    Ok(Conv1d::from_pytorch(
        &src.f32s(&format!("{prefix}.weight"), &[n_out, n_in, 3])?,
        bias.to_f32(),
        n_out,
        n_in,
    ))
}

fn encoder(src: &GgmlFile, hp: &HParams) -> Result<EncoderWeights, LoadError> {
    let s = hp.n_audio_state;
    let st = Storage::F32;
    let layers = (0..hp.n_audio_layer)
        .map(|i| {
            let p = format!("encoder.blocks.{i}");
            Ok(EncoderLayer {
                attn_ln: src.layer_norm(&format!("{p}.attn_ln"), s)?,
                attn_qkv: fused(src, &format!("{p}.attn"), &["query", "key", "value"], s, st)?,
                attn_out: src.linear(&format!("{p}.attn.out"), s, s, st)?,
                mlp_ln: src.layer_norm(&format!("{p}.mlp_ln"), s)?,
                fc1: src.linear(&format!("{p}.mlp.0"), 4 * s, s, st)?,
                fc2: src.linear(&format!("{p}.mlp.2"), s, 4 * s, st)?,
            })
        })
        .collect::<Result<Vec<_>, LoadError>>()?;
    Ok(EncoderWeights {
        conv1: conv(src, "encoder.conv1", s, hp.n_mels)?,
        conv2: conv(src, "encoder.conv2", s, s)?,
        positions: src.f32s("encoder.positional_embedding", &[hp.n_audio_ctx, s])?,
        layers,
        ln_post: src.layer_norm("encoder.ln_post", s)?,
    })
}

fn decoder(src: &GgmlFile, hp: &HParams) -> Result<DecoderWeights, LoadError> {
    let s = hp.n_text_state;
    let h16 = Storage::F16;
    let layers = (0..hp.n_text_layer)
        .map(|i| {
            let p = format!("decoder.blocks.{i}");
            Ok(DecoderLayer {
                attn_ln: src.layer_norm(&format!("{p}.attn_ln"), s)?,
                attn_qkv: fused(
                    src,
                    &format!("{p}.attn"),
                    &["query", "key", "value"],
                    s,
                    h16,
                )?,
                attn_out: src.linear(&format!("{p}.attn.out"), s, s, h16)?,
                cross_ln: src.layer_norm(&format!("{p}.cross_attn_ln"), s)?,
                cross_q: src.linear(&format!("{p}.cross_attn.query"), s, s, h16)?,
                cross_kv: fused(
                    src,
                    &format!("{p}.cross_attn"),
                    &["key", "value"],
                    s,
                    Storage::F32,
                )?,
                cross_out: src.linear(&format!("{p}.cross_attn.out"), s, s, h16)?,
                mlp_ln: src.layer_norm(&format!("{p}.mlp_ln"), s)?,
                fc1: src.linear(&format!("{p}.mlp.0"), 4 * s, s, h16)?,
                fc2: src.linear(&format!("{p}.mlp.2"), s, 4 * s, h16)?,
            })
        })
        .collect::<Result<Vec<_>, LoadError>>()?;
    Ok(DecoderWeights {
        token_embedding: src
            .shaped("decoder.token_embedding.weight", &[hp.n_vocab, s])?
            .to_f16(),
        positions: src.f32s("decoder.positional_embedding", &[hp.n_text_ctx, s])?,
        layers,
        ln: src.layer_norm("decoder.ln", s)?,
    })
}

impl GgmlFile {
    /// The tokenizer of the file's vocabulary and `n_vocab`.
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
        let hp = self.hparams;
        Ok(WhisperWeights {
            hparams: hp,
            encoder: encoder(self, &hp)?,
            decoder: decoder(self, &hp)?,
        })
    }
}

/// Loads a whisper.cpp ggml model file.
pub fn load(path: &Path) -> Result<LoadedModel, LoadError> {
    let file = GgmlFile::open(path)?;
    let tokenizer = file.tokenizer()?;
    Ok(LoadedModel {
        weights: file.weights()?,
        tokenizer,
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

    /// Writes one tensor; `shape` is outermost first. Matrices (rank 2 or more) use the file's
    /// float type unless `force_f32`.
    fn tensor(
        &mut self,
        name: &str,
        shape: &[usize],
        data: &[f32],
        force_f32: bool,
    ) -> std::io::Result<()> {
        let f16 = self.ftype == FloatType::F16 && shape.len() >= 2 && !force_f32;
        self.i32(shape.len())?;
        self.i32(name.len())?;
        self.i32(if f16 {
            GGML_F16 as usize
        } else {
            GGML_F32 as usize
        })?;
        for &d in shape.iter().rev() {
            self.i32(d)?;
        }
        self.out.write_all(name.as_bytes())?;
        if f16 {
            for v in data {
                self.out
                    .write_all(&half::f16::from_f32(*v).to_bits().to_le_bytes())?;
            }
            Ok(())
        } else {
            self.f32s(data)
        }
    }

    fn norm(&mut self, prefix: &str, ln: &LayerNorm) -> std::io::Result<()> {
        let n = ln.gamma.len();
        self.tensor(&format!("{prefix}.weight"), &[n], &ln.gamma, false)?;
        self.tensor(&format!("{prefix}.bias"), &[n], &ln.beta, false)
    }

    fn linear(&mut self, prefix: &str, l: &Linear) -> std::io::Result<()> {
        self.tensor(
            &format!("{prefix}.weight"),
            &[l.n_out, l.n_in],
            &l.weight_f32(),
            false,
        )?;
        self.tensor(&format!("{prefix}.bias"), &[l.n_out], &l.bias, false)
    }

    /// Splits a fused projection back into named parts (`key` without bias).
    fn split(&mut self, prefix: &str, l: &Linear, parts: &[&str]) -> std::io::Result<()> {
        let s = l.n_in;
        let w = l.weight_f32();
        for (i, part) in parts.iter().enumerate() {
            let rows = &w[i * s * s..(i + 1) * s * s];
            self.tensor(&format!("{prefix}.{part}.weight"), &[s, s], rows, false)?;
            if *part != "key" {
                let b = &l.bias[i * s..(i + 1) * s];
                self.tensor(&format!("{prefix}.{part}.bias"), &[s], b, false)?;
            }
        }
        Ok(())
    }

    fn conv(&mut self, prefix: &str, c: &Conv1d) -> std::io::Result<()> {
        self.tensor(
            &format!("{prefix}.weight"),
            &[c.n_out, c.n_in, 3],
            &c.to_pytorch(),
            false,
        )?;
        self.tensor(&format!("{prefix}.bias"), &[c.n_out, 1], &c.bias, true)
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
    for v in [
        hp.n_vocab,
        hp.n_audio_ctx,
        hp.n_audio_state,
        hp.n_audio_head,
        hp.n_audio_layer,
        hp.n_text_ctx,
        hp.n_text_state,
        hp.n_text_head,
        hp.n_text_layer,
        hp.n_mels,
        (w.ftype == FloatType::F16) as usize,
    ] {
        w.i32(v)?;
    }
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

    let enc = &weights.encoder;
    let s = hp.n_audio_state;
    w.tensor(
        "encoder.positional_embedding",
        &[hp.n_audio_ctx, s],
        &enc.positions,
        true,
    )?;
    w.conv("encoder.conv1", &enc.conv1)?;
    w.conv("encoder.conv2", &enc.conv2)?;
    for (i, l) in enc.layers.iter().enumerate() {
        let p = format!("encoder.blocks.{i}");
        w.norm(&format!("{p}.attn_ln"), &l.attn_ln)?;
        w.split(
            &format!("{p}.attn"),
            &l.attn_qkv,
            &["query", "key", "value"],
        )?;
        w.linear(&format!("{p}.attn.out"), &l.attn_out)?;
        w.norm(&format!("{p}.mlp_ln"), &l.mlp_ln)?;
        w.linear(&format!("{p}.mlp.0"), &l.fc1)?;
        w.linear(&format!("{p}.mlp.2"), &l.fc2)?;
    }
    w.norm("encoder.ln_post", &enc.ln_post)?;

    let dec = &weights.decoder;
    let s = hp.n_text_state;
    w.tensor(
        "decoder.positional_embedding",
        &[hp.n_text_ctx, s],
        &dec.positions,
        true,
    )?;
    let emb: Vec<f32> = dec.token_embedding.iter().map(|v| v.to_f32()).collect();
    w.tensor(
        "decoder.token_embedding.weight",
        &[hp.n_vocab, s],
        &emb,
        false,
    )?;
    for (i, l) in dec.layers.iter().enumerate() {
        let p = format!("decoder.blocks.{i}");
        w.norm(&format!("{p}.attn_ln"), &l.attn_ln)?;
        w.split(
            &format!("{p}.attn"),
            &l.attn_qkv,
            &["query", "key", "value"],
        )?;
        w.linear(&format!("{p}.attn.out"), &l.attn_out)?;
        w.norm(&format!("{p}.cross_attn_ln"), &l.cross_ln)?;
        w.linear(&format!("{p}.cross_attn.query"), &l.cross_q)?;
        w.split(&format!("{p}.cross_attn"), &l.cross_kv, &["key", "value"])?;
        w.linear(&format!("{p}.cross_attn.out"), &l.cross_out)?;
        w.norm(&format!("{p}.mlp_ln"), &l.mlp_ln)?;
        w.linear(&format!("{p}.mlp.0"), &l.fc1)?;
        w.linear(&format!("{p}.mlp.2"), &l.fc2)?;
    }
    w.norm("decoder.ln", &dec.ln)
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
        assert!(err.contains("more than 2^64 bytes"), "{err}");
    }
}
