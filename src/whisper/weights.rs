//! Whisper's weights in the layout voxd computes with, independent of the file they came from.
//!
//! Both loaders (CTranslate2 directories and whisper.cpp ggml files) produce a [`WhisperWeights`].
//! The layout follows CTranslate2's: the self-attention projections are fused into one
//! `[3S, S]` matrix (q | k | v) and the cross-attention key/value projections into one `[2S, S]`
//! matrix (k | v), so each is a single matrix product. The key projections carry no bias in
//! the original model; a zero bias stands in for them.
//!
//! Storage follows use: matrices multiplied with many rows at once (the encoder, and the
//! cross-attention keys/values computed from the encoder output) are kept in f32 for the
//! GEMM; matrices the decoder streams once per token stay in their file's f16 to halve the
//! memory traffic, which is what bounds the decoder's speed.

use std::path::PathBuf;

use half::f16;

use crate::kernels;

/// What can go wrong reading a model; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: tensor `{name}` is missing")]
    MissingTensor { path: PathBuf, name: String },
    #[error("{path}: tensor `{name}` has shape {got:?}, expected {expected:?}")]
    Shape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        got: Vec<usize>,
    },
    #[error("{path}: tensor `{name}` has data type {dtype}, which voxd does not support (expected f32 or f16)")]
    DType {
        path: PathBuf,
        name: String,
        dtype: String,
    },
}

/// The element types voxd reads weights in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    F16,
}

impl DType {
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 => 2,
        }
    }
}

/// A tensor as it lies in a (memory-mapped) file: little-endian bytes, row-major.
#[derive(Clone, Debug)]
pub struct RawTensor<'a> {
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub bytes: &'a [u8],
}

impl RawTensor<'_> {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as f32 (copied: file offsets need not be aligned).
    pub fn to_f32(&self) -> Vec<f32> {
        match self.dtype {
            DType::F32 => self
                .bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            DType::F16 => {
                let halves = self.to_f16();
                let mut out = vec![0.0; halves.len()];
                kernels::f16_to_f32(&halves, &mut out);
                out
            }
        }
    }

    /// The values as f16 (f32 data is rounded).
    pub fn to_f16(&self) -> Vec<f16> {
        match self.dtype {
            DType::F16 => self
                .bytes
                .chunks_exact(2)
                .map(|b| f16::from_bits(u16::from_le_bytes([b[0], b[1]])))
                .collect(),
            DType::F32 => self.to_f32().into_iter().map(f16::from_f32).collect(),
        }
    }
}

/// The model's dimensions, as whisper.cpp's header names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HParams {
    pub n_vocab: usize,
    pub n_audio_ctx: usize,
    pub n_audio_state: usize,
    pub n_audio_head: usize,
    pub n_audio_layer: usize,
    pub n_text_ctx: usize,
    pub n_text_state: usize,
    pub n_text_head: usize,
    pub n_text_layer: usize,
    pub n_mels: usize,
}

/// A weight matrix `[n_out, n_in]` (PyTorch's layout) in one of the two compute types.
pub enum Matrix {
    F32(Vec<f32>),
    F16(Vec<f16>),
}

/// `y = x · Wᵀ + b`.
pub struct Linear {
    pub weight: Matrix,
    pub bias: Vec<f32>,
    pub n_out: usize,
    pub n_in: usize,
}

impl Linear {
    /// x: [m, n_in] → out: [m, n_out]
    pub fn forward(&self, x: &[f32], m: usize, out: &mut [f32]) {
        match &self.weight {
            Matrix::F32(w) => {
                kernels::matmul_t(x, w, Some(&self.bias), out, m, self.n_in, self.n_out)
            }
            Matrix::F16(w) => {
                kernels::matmul_t_f16(x, w, Some(&self.bias), out, m, self.n_in, self.n_out)
            }
        }
    }

    pub fn weight_f32(&self) -> Vec<f32> {
        match &self.weight {
            Matrix::F32(w) => w.clone(),
            Matrix::F16(w) => {
                let mut out = vec![0.0; w.len()];
                kernels::f16_to_f32(w, &mut out);
                out
            }
        }
    }
}

pub struct LayerNorm {
    pub gamma: Vec<f32>,
    pub beta: Vec<f32>,
}

impl LayerNorm {
    /// Whisper's layer norms use PyTorch's default epsilon.
    pub const EPS: f32 = 1e-5;

    /// Normalises each row of `x` (rows of `gamma.len()` values) in place.
    pub fn forward(&self, x: &mut [f32]) {
        kernels::layer_norm(x, &self.gamma, &self.beta, self.gamma.len(), Self::EPS);
    }
}

/// A 1-D convolution with kernel size 3 and padding 1, applied as a matrix product over
/// im2col rows. Its weight is `[n_out, 3, n_in]` (tap-major), so that an im2col row is three
/// whole input frames side by side.
pub struct Conv1d {
    pub weight: Vec<f32>,
    pub bias: Vec<f32>,
    pub n_out: usize,
    pub n_in: usize,
}

impl Conv1d {
    /// From PyTorch's `[n_out, n_in, 3]` layout.
    pub fn from_pytorch(weight: &[f32], bias: Vec<f32>, n_out: usize, n_in: usize) -> Self {
        let mut tap_major = vec![0.0; weight.len()];
        for o in 0..n_out {
            for c in 0..n_in {
                for k in 0..3 {
                    tap_major[(o * 3 + k) * n_in + c] = weight[(o * n_in + c) * 3 + k];
                }
            }
        }
        Self {
            weight: tap_major,
            bias,
            n_out,
            n_in,
        }
    }

    /// Back to PyTorch's `[n_out, n_in, 3]` layout (for writing files).
    pub fn to_pytorch(&self) -> Vec<f32> {
        let (n_out, n_in) = (self.n_out, self.n_in);
        let mut out = vec![0.0; self.weight.len()];
        for o in 0..n_out {
            for c in 0..n_in {
                for k in 0..3 {
                    out[(o * n_in + c) * 3 + k] = self.weight[(o * 3 + k) * n_in + c];
                }
            }
        }
        out
    }
}

pub struct EncoderLayer {
    pub attn_ln: LayerNorm,
    /// [3S, S]: q | k | v
    pub attn_qkv: Linear,
    pub attn_out: Linear,
    pub mlp_ln: LayerNorm,
    /// [4S, S]
    pub fc1: Linear,
    /// [S, 4S]
    pub fc2: Linear,
}

pub struct EncoderWeights {
    pub conv1: Conv1d,
    pub conv2: Conv1d,
    /// [n_audio_ctx, S] sinusoidal positions
    pub positions: Vec<f32>,
    pub layers: Vec<EncoderLayer>,
    pub ln_post: LayerNorm,
}

pub struct DecoderLayer {
    pub attn_ln: LayerNorm,
    /// [3S, S]: q | k | v
    pub attn_qkv: Linear,
    pub attn_out: Linear,
    pub cross_ln: LayerNorm,
    /// [S, S]
    pub cross_q: Linear,
    /// [2S, S]: k | v, applied to the encoder output once per audio window
    pub cross_kv: Linear,
    pub cross_out: Linear,
    pub mlp_ln: LayerNorm,
    pub fc1: Linear,
    pub fc2: Linear,
}

pub struct DecoderWeights {
    /// [n_vocab, S]; also the output projection (tied weights)
    pub token_embedding: Vec<f16>,
    /// [n_text_ctx, S] learned positions
    pub positions: Vec<f32>,
    pub layers: Vec<DecoderLayer>,
    pub ln: LayerNorm,
}

pub struct WhisperWeights {
    pub hparams: HParams,
    pub encoder: EncoderWeights,
    pub decoder: DecoderWeights,
}

/// How a loaded matrix is stored for compute (see the module comment).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    F32,
    F16,
}

/// Reads named tensors from some file, checking shapes, so that the model can be assembled
/// the same way whatever the file format.
pub trait TensorSource {
    /// The format's names for a parameter under a prefix: (separator, layer-norm scale,
    /// layer-norm shift). CTranslate2 says `a/b/gamma`, whisper.cpp `a.b.weight`.
    const NAMING: (&'static str, &'static str, &'static str);

    fn path(&self) -> &std::path::Path;
    fn tensor(&self, name: &str) -> Result<RawTensor<'_>, LoadError>;

    fn layer_norm(&self, prefix: &str, width: usize) -> Result<LayerNorm, LoadError> {
        let (sep, scale, shift) = Self::NAMING;
        Ok(LayerNorm {
            gamma: self.f32s(&format!("{prefix}{sep}{scale}"), &[width])?,
            beta: self.f32s(&format!("{prefix}{sep}{shift}"), &[width])?,
        })
    }

    fn linear(
        &self,
        prefix: &str,
        n_out: usize,
        n_in: usize,
        storage: Storage,
    ) -> Result<Linear, LoadError> {
        let sep = Self::NAMING.0;
        Ok(Linear {
            weight: self.matrix(&format!("{prefix}{sep}weight"), n_out, n_in, storage)?,
            bias: self.f32s(&format!("{prefix}{sep}bias"), &[n_out])?,
            n_out,
            n_in,
        })
    }

    fn shaped(&self, name: &str, expected: &[usize]) -> Result<RawTensor<'_>, LoadError> {
        let t = self.tensor(name)?;
        if t.shape != expected {
            return Err(LoadError::Shape {
                path: self.path().to_path_buf(),
                name: name.to_string(),
                expected: expected.to_vec(),
                got: t.shape.clone(),
            });
        }
        Ok(t)
    }

    fn f32s(&self, name: &str, expected: &[usize]) -> Result<Vec<f32>, LoadError> {
        Ok(self.shaped(name, expected)?.to_f32())
    }

    fn matrix(
        &self,
        name: &str,
        rows: usize,
        cols: usize,
        storage: Storage,
    ) -> Result<Matrix, LoadError> {
        let t = self.shaped(name, &[rows, cols])?;
        Ok(match storage {
            Storage::F32 => Matrix::F32(t.to_f32()),
            Storage::F16 => Matrix::F16(t.to_f16()),
        })
    }
}

impl Matrix {
    /// Stacks matrices with the same column count on top of each other (e.g. q, k, v into qkv).
    pub fn stack(parts: Vec<Matrix>) -> Matrix {
        match parts.first() {
            Some(Matrix::F16(_)) => Matrix::F16(
                parts
                    .into_iter()
                    .flat_map(|p| match p {
                        Matrix::F16(v) => v,
                        Matrix::F32(v) => v.into_iter().map(f16::from_f32).collect(),
                    })
                    .collect(),
            ),
            _ => Matrix::F32(
                parts
                    .into_iter()
                    .flat_map(|p| match p {
                        Matrix::F32(v) => v,
                        Matrix::F16(v) => v.into_iter().map(f16::to_f32).collect(),
                    })
                    .collect(),
            ),
        }
    }
}
