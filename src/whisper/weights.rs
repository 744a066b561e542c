//! Whisper's weights in the layout voxd computes with, independent of the file they came from.
//!
//! Both loaders (CTranslate2 directories and whisper.cpp ggml files) produce a [`WhisperWeights`].
//! The layout follows CTranslate2's: the self-attention projections are fused into one
//! `[3S, S]` matrix (q | k | v) and the cross-attention key/value projections into one `[2S, S]`
//! matrix (k | v), so each is a single matrix product. The key projections carry no bias in
//! the original model; a zero bias stands in for them.
//!
//! The tree is built in one place, [`assemble`], from any [`TensorSource`] (a file of named
//! tensors) and that format's [`TensorNames`]; writing a file walks the same table
//! ([`WhisperWeights::for_each_tensor`]). A format is therefore only its table of names and
//! its way of finding a named tensor.
//!
//! Storage follows use: matrices multiplied with many rows at once (the encoder, and the
//! cross-attention keys/values computed from the encoder output) stay in the file's float
//! type, and the GEMM converts f16 to f32 a slab of rows at a time (as fast as f32 weights,
//! at half the memory); matrices the decoder streams once per token are f16 (an f32 file's
//! rounded) to halve the memory traffic, which is what bounds the decoder's speed.
//! Block-quantized matrices (ggml's q8_0, q5_1, ...) stay in their blocks everywhere: a
//! [`Matrix`] knows its format, and [`Matrix::product`] picks the kernel.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use half::f16;

use crate::kernels;
use crate::kernels::quant::{self, QMatRef, QuantType};

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
    #[error("{path}: tensor `{name}` of shape {shape:?} is too large to address")]
    TooLarge {
        path: PathBuf,
        name: String,
        shape: Vec<usize>,
    },
    #[error("{path}: {name} is {value}, expected {expected}")]
    HParam {
        path: PathBuf,
        name: &'static str,
        value: usize,
        expected: String,
    },
    #[error("{path}: tensor `{name}` has data type {dtype}, which voxd does not support (expected f32, f16, CTranslate2's int8 or one of ggml's {})", QuantType::supported_names())]
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
    /// One of ggml's block formats (never `QuantType::F32` or `F16`): each row (innermost
    /// dimension) a whole number of blocks.
    Blocks(QuantType),
}

impl DType {
    /// The type of ggml's type id, if voxd reads it.
    pub fn from_ggml_id(id: u32) -> Option<DType> {
        Some(match QuantType::from_ggml_id(id)? {
            QuantType::F32 => DType::F32,
            QuantType::F16 => DType::F16,
            blocks => DType::Blocks(blocks),
        })
    }

    /// The same type as a `QuantType` (ggml's view: f32 and f16 are types of one-value blocks).
    pub fn as_quant(self) -> QuantType {
        match self {
            DType::F32 => QuantType::F32,
            DType::F16 => QuantType::F16,
            DType::Blocks(ty) => ty,
        }
    }

    /// Bytes of a tensor of `shape` (outermost first), or `None` when that number does not
    /// fit in a `usize` (a file's dimensions are not to be trusted before this check) or the
    /// innermost dimension is not a whole number of blocks.
    pub fn bytes_for(self, shape: &[usize]) -> Option<usize> {
        let ty = self.as_quant();
        let (&row, outer) = shape.split_last().unwrap_or((&1, &[]));
        let row_bytes = ty.row_bytes(row)?;
        outer
            .iter()
            .try_fold(row_bytes, |bytes, &dim| bytes.checked_mul(dim))
    }
}

/// A tensor's values as read from a model file, in the file's type; or, for a type voxd
/// does not compute with (CTranslate2's int8), converted to one it does.
#[derive(Clone, Debug)]
pub enum TensorData {
    F32(Vec<f32>),
    F16(Vec<f16>),
    /// Rows of ggml blocks of `ty` (a block format, not F32/F16).
    Blocks {
        ty: QuantType,
        data: Vec<u8>,
    },
}

/// A tensor of a model file: its shape (outermost first, row-major) and its values.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl Tensor {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dtype(&self) -> DType {
        match &self.data {
            TensorData::F32(_) => DType::F32,
            TensorData::F16(_) => DType::F16,
            TensorData::Blocks { ty, .. } => DType::Blocks(*ty),
        }
    }

    /// The values as f32 (a copy).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            TensorData::F32(v) => v.clone(),
            TensorData::F16(halves) => {
                let mut out = vec![0.0; halves.len()];
                kernels::f16_to_f32(halves, &mut out);
                out
            }
            TensorData::Blocks { ty, data } => {
                // The whole tensor is a run of blocks: rows are whole numbers of them.
                let mut out = vec![0.0; self.len()];
                quant::dequantize_row(*ty, data, &mut out);
                out
            }
        }
    }

    /// The values as f32: f32 data moved, not copied.
    pub fn into_f32(self) -> Vec<f32> {
        match self.data {
            TensorData::F32(v) => v,
            _ => self.to_f32(),
        }
    }

    /// The values as f16 (f32 data is rounded): f16 data moved, not copied.
    pub fn into_f16(self) -> Vec<f16> {
        match self.data {
            TensorData::F16(v) => v,
            _ => self.to_f32().into_iter().map(f16::from_f32).collect(),
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

/// A hyper-parameter outside what the forward pass can run with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadHParam {
    pub name: &'static str,
    pub value: usize,
    pub expected: String,
}

/// The most of each dimension a model may have: far above every released Whisper (large-v3:
/// 51,866 tokens, width 1,280, 32 layers, 128 mel bands), far below sizes whose products
/// could overflow.
const MAX_VOCAB: usize = 1 << 20;
const MAX_CTX: usize = 1 << 16;
const MAX_WIDTH: usize = 1 << 16;
const MAX_LAYERS: usize = 1024;
const MAX_MELS: usize = 1024;

impl HParams {
    /// The dimensions with their names, in the order whisper.cpp's file header stores them.
    pub fn in_header_order(&self) -> [(&'static str, usize); 10] {
        [
            ("n_vocab", self.n_vocab),
            ("n_audio_ctx", self.n_audio_ctx),
            ("n_audio_state", self.n_audio_state),
            ("n_audio_head", self.n_audio_head),
            ("n_audio_layer", self.n_audio_layer),
            ("n_text_ctx", self.n_text_ctx),
            ("n_text_state", self.n_text_state),
            ("n_text_head", self.n_text_head),
            ("n_text_layer", self.n_text_layer),
            ("n_mels", self.n_mels),
        ]
    }

    /// Refuses dimensions the forward pass cannot run with: zero (an empty model would load
    /// and fail on its first window), absurdly large, head counts that do not divide the
    /// width, or a decoder whose width differs from the encoder's (it attends to the
    /// encoder's output). A text context below 2 leaves no room for a previous-text prompt.
    pub fn check(&self) -> Result<(), BadHParam> {
        let ranges = [
            ("n_vocab", self.n_vocab, 1, MAX_VOCAB),
            ("n_audio_ctx", self.n_audio_ctx, 1, MAX_CTX),
            ("n_audio_state", self.n_audio_state, 1, MAX_WIDTH),
            ("n_audio_head", self.n_audio_head, 1, self.n_audio_state),
            ("n_audio_layer", self.n_audio_layer, 1, MAX_LAYERS),
            ("n_text_ctx", self.n_text_ctx, 2, MAX_CTX),
            ("n_text_state", self.n_text_state, 1, MAX_WIDTH),
            ("n_text_head", self.n_text_head, 1, self.n_text_state),
            ("n_text_layer", self.n_text_layer, 1, MAX_LAYERS),
            ("n_mels", self.n_mels, 1, MAX_MELS),
        ];
        for (name, value, min, max) in ranges {
            if !(min..=max).contains(&value) {
                return Err(BadHParam {
                    name,
                    value,
                    expected: format!("{min}..={max}"),
                });
            }
        }
        let heads = [
            ("n_audio_head", self.n_audio_head, self.n_audio_state),
            ("n_text_head", self.n_text_head, self.n_text_state),
        ];
        for (name, value, width) in heads {
            if !width.is_multiple_of(value) {
                return Err(BadHParam {
                    name,
                    value,
                    expected: format!("a divisor of the width {width}"),
                });
            }
        }
        if self.n_text_state != self.n_audio_state {
            return Err(BadHParam {
                name: "n_text_state",
                value: self.n_text_state,
                expected: format!(
                    "the encoder's width n_audio_state {} (the decoder attends to its output)",
                    self.n_audio_state
                ),
            });
        }
        Ok(())
    }
}

/// A weight matrix `[n_out, n_in]` (PyTorch's layout) in the format it is computed in.
pub enum Matrix {
    F32(Vec<f32>),
    F16(Vec<f16>),
    /// Rows of ggml blocks of `ty` (a block format, not F32/F16), as in the file.
    Blocks {
        ty: QuantType,
        data: Vec<u8>,
    },
}

impl Matrix {
    /// The format, in ggml's terms.
    pub fn format(&self) -> QuantType {
        match self {
            Matrix::F32(_) => QuantType::F32,
            Matrix::F16(_) => QuantType::F16,
            Matrix::Blocks { ty, .. } => *ty,
        }
    }

    /// Bytes of weights held.
    pub fn bytes(&self) -> usize {
        match self {
            Matrix::F32(w) => 4 * w.len(),
            Matrix::F16(w) => 2 * w.len(),
            Matrix::Blocks { data, .. } => data.len(),
        }
    }

    /// The block matrix as a checked view. Panics if the bytes do not hold `n_out` rows of
    /// `n_in` values (`assemble` checks every shape).
    fn blocks(ty: QuantType, data: &[u8], n_out: usize, n_in: usize) -> QMatRef<'_> {
        QMatRef::new(ty, n_out, n_in, data).expect("block matrix of the checked shape")
    }

    /// `out[m, n_out] = x[m, n_in] · Wᵀ (+ bias)`, with the kernel of the matrix's format:
    /// block matrices times many rows (the encoder, the cross-attention keys and values) are
    /// unpacked to f32 for the GEMM, times a few rows (a decoder step, a beam) multiplied
    /// packed.
    pub fn product(
        &self,
        x: &[f32],
        bias: Option<&[f32]>,
        out: &mut [f32],
        m: usize,
        n_in: usize,
        n_out: usize,
    ) {
        match self {
            Matrix::F32(w) => kernels::matmul_t(x, w, bias, out, m, n_in, n_out),
            Matrix::F16(w) => kernels::matmul_t_f16(x, w, bias, out, m, n_in, n_out),
            Matrix::Blocks { ty, data } if m > UNPACK_MIN_ROWS => {
                quant::matmul_q_unpacked(Self::blocks(*ty, data, n_out, n_in), x, bias, out);
            }
            Matrix::Blocks { ty, data } => {
                quant::matmul_q(Self::blocks(*ty, data, n_out, n_in), x, out);
                if let Some(bias) = bias {
                    for row in out.chunks_exact_mut(n_out) {
                        kernels::add_assign(row, bias);
                    }
                }
            }
        }
    }

    /// Row `r` (of `n_in` values) as f32: an embedding lookup.
    pub fn row(&self, r: usize, n_in: usize, out: &mut [f32]) {
        match self {
            Matrix::F32(w) => out.copy_from_slice(&w[r * n_in..(r + 1) * n_in]),
            Matrix::F16(w) => kernels::f16_to_f32(&w[r * n_in..(r + 1) * n_in], out),
            Matrix::Blocks { ty, data } => {
                let row_bytes = ty.row_bytes(n_in).expect("whole blocks");
                quant::dequantize_row(*ty, &data[r * row_bytes..(r + 1) * row_bytes], out)
            }
        }
    }

    /// `x[i] += row first + i` for each row of `x` (`n_in` values each): adds position
    /// embeddings, one row converted at a time.
    pub fn add_rows(&self, first: usize, x: &mut [f32], n_in: usize) {
        if let Matrix::F32(w) = self {
            kernels::add_assign(x, &w[first * n_in..first * n_in + x.len()]);
            return;
        }
        let mut row = vec![0.0; n_in];
        for (i, out) in x.chunks_exact_mut(n_in).enumerate() {
            self.row(first + i, n_in, &mut row);
            kernels::add_assign(out, &row);
        }
    }

    /// Every value as f32 (for writing files).
    pub fn to_f32(&self, n_in: usize) -> Vec<f32> {
        match self {
            Matrix::F32(w) => w.clone(),
            Matrix::F16(w) => {
                let mut out = vec![0.0; w.len()];
                kernels::f16_to_f32(w, &mut out);
                out
            }
            Matrix::Blocks { ty, data } => {
                let rows = data.len() / ty.row_bytes(n_in).expect("whole blocks");
                let mut out = vec![0.0; rows * n_in];
                quant::dequantize_row(*ty, data, &mut out);
                out
            }
        }
    }
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
        let bias = Some(&self.bias[..]);
        self.weight.product(x, bias, out, m, self.n_in, self.n_out);
    }

    pub fn weight_f32(&self) -> Vec<f32> {
        self.weight.to_f32(self.n_in)
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
    /// `[n_out, 3 · n_in]`, tap-major: row o holds the kernel's three taps one after another,
    /// each over every input channel, so the convolution is one product with three frames
    /// side by side. In the file's format (whisper.cpp's and CTranslate2's f16 stay f16).
    pub weight: Matrix,
    pub bias: Vec<f32>,
    pub n_out: usize,
    pub n_in: usize,
}

impl Conv1d {
    /// From PyTorch's `[n_out, n_in, 3]` layout.
    pub fn from_pytorch(weight: TensorData, bias: Vec<f32>, n_out: usize, n_in: usize) -> Self {
        let weight = match weight {
            TensorData::F16(w) => Matrix::F16(reorder_taps(&w, n_out, n_in, TapOrder::TapMajor)),
            TensorData::F32(w) => Matrix::F32(reorder_taps(&w, n_out, n_in, TapOrder::TapMajor)),
            blocks @ TensorData::Blocks { .. } => {
                let values = Tensor {
                    shape: vec![n_out, n_in, 3],
                    data: blocks,
                }
                .into_f32();
                Matrix::F32(reorder_taps(&values, n_out, n_in, TapOrder::TapMajor))
            }
        };
        Self {
            weight,
            bias,
            n_out,
            n_in,
        }
    }

    /// Back to PyTorch's `[n_out, n_in, 3]` layout (for writing files).
    pub fn to_pytorch(&self) -> Vec<f32> {
        let tap_major = self.weight.to_f32(3 * self.n_in);
        reorder_taps(&tap_major, self.n_out, self.n_in, TapOrder::ChannelMajor)
    }
}

/// The order a convolution's weights are laid out in, for [`reorder_taps`].
#[derive(Clone, Copy)]
enum TapOrder {
    /// `[n_out, 3, n_in]`, as voxd computes.
    TapMajor,
    /// `[n_out, n_in, 3]`, as PyTorch stores.
    ChannelMajor,
}

/// `weight` (kernel width 3) in the other layout: into `to` from the other order.
fn reorder_taps<T: Copy + Default>(
    weight: &[T],
    n_out: usize,
    n_in: usize,
    to: TapOrder,
) -> Vec<T> {
    let mut out = vec![T::default(); weight.len()];
    for o in 0..n_out {
        for c in 0..n_in {
            for k in 0..3 {
                let channel_major = (o * n_in + c) * 3 + k;
                let tap_major = (o * 3 + k) * n_in + c;
                match to {
                    TapOrder::TapMajor => out[tap_major] = weight[channel_major],
                    TapOrder::ChannelMajor => out[channel_major] = weight[tap_major],
                }
            }
        }
    }
    out
}

pub struct SelfAttention {
    pub ln: LayerNorm,
    /// [3S, S]: q | k | v
    pub qkv: Linear,
    /// [S, S]
    pub out: Linear,
}

/// Pre-norm attention of the decoder on the encoder's output.
pub struct CrossAttention {
    pub ln: LayerNorm,
    /// [S, S]
    pub q: Linear,
    /// [2S, S]: k | v, applied to the encoder output once per audio window
    pub kv: Linear,
    /// [S, S]
    pub out: Linear,
}

/// Pre-norm feed-forward block: `x += fc2(GELU(fc1(ln(x))))`.
pub struct Mlp {
    pub ln: LayerNorm,
    /// [4S, S]
    pub fc1: Linear,
    /// [S, 4S]
    pub fc2: Linear,
}

pub struct EncoderLayer {
    pub attn: SelfAttention,
    pub mlp: Mlp,
}

pub struct EncoderWeights {
    pub conv1: Conv1d,
    pub conv2: Conv1d,
    /// [n_audio_ctx, S] sinusoidal positions, in the file's format
    pub positions: Matrix,
    pub layers: Vec<EncoderLayer>,
    pub ln_post: LayerNorm,
}

pub struct DecoderLayer {
    pub attn: SelfAttention,
    pub cross: CrossAttention,
    pub mlp: Mlp,
}

pub struct DecoderWeights {
    /// [n_vocab, S]; also the output projection (tied weights). f16, or the file's blocks.
    pub token_embedding: Matrix,
    /// [n_text_ctx, S] learned positions, in the file's format
    pub positions: Matrix,
    pub layers: Vec<DecoderLayer>,
    pub ln: LayerNorm,
}

impl DecoderWeights {
    /// Bytes of weight matrices one decoding step reads: every layer's self-attention,
    /// cross-attention query and output, and MLP, and the token embedding for the logits.
    /// (The cross-attention keys and values are computed once per audio window; norms and
    /// biases are a few KiB.) On a board whose memory bandwidth is the limit, this over the
    /// bandwidth bounds the time of a step from below.
    pub fn bytes_read_per_token(&self) -> usize {
        let layers: usize = self
            .layers
            .iter()
            .map(|l| {
                [
                    &l.attn.qkv,
                    &l.attn.out,
                    &l.cross.q,
                    &l.cross.out,
                    &l.mlp.fc1,
                    &l.mlp.fc2,
                ]
                .iter()
                .map(|linear| linear.weight.bytes())
                .sum::<usize>()
            })
            .sum();
        layers + self.token_embedding.bytes()
    }
}

pub struct WhisperWeights {
    pub hparams: HParams,
    pub encoder: EncoderWeights,
    pub decoder: DecoderWeights,
}

impl Matrix {
    /// Stacks matrices with `n_in` columns on top of each other (e.g. q, k, v into qkv):
    /// block matrices of one format by their rows of blocks, anything else in the first
    /// part's float type.
    pub fn stack(parts: Vec<Matrix>, n_in: usize) -> Matrix {
        if let Some(&Matrix::Blocks { ty, .. }) = parts.first() {
            if parts.iter().all(|p| p.format() == ty) {
                let data = parts
                    .into_iter()
                    .flat_map(|p| match p {
                        Matrix::Blocks { data, .. } => data,
                        _ => unreachable!("checked above"),
                    })
                    .collect();
                return Matrix::Blocks { ty, data };
            }
        }
        match parts.first() {
            Some(Matrix::F16(_)) => Matrix::F16(
                parts
                    .into_iter()
                    .flat_map(|p| match p {
                        Matrix::F16(v) => v,
                        other => other.to_f32(n_in).into_iter().map(f16::from_f32).collect(),
                    })
                    .collect(),
            ),
            _ => Matrix::F32(
                parts
                    .into_iter()
                    .flat_map(|p| match p {
                        Matrix::F32(v) => v,
                        other => other.to_f32(n_in),
                    })
                    .collect(),
            ),
        }
    }
}

/// Above this many rows of activations a block matrix's product unpacks the weights
/// ([`quant::matmul_q_unpacked`]); up to it they are read packed ([`quant::matmul_q`]).
/// Decoding steps have one row per beam, the encoder one per 20 ms of audio. Measured with
/// `voxd bench` on q8_0 tiny.en (AVX2, 2 threads): unpacked, the encoder takes 20 ms at 128
/// positions (a 2.6 s command) and 277 ms at 1500; packed, 27 and 462 ms. (The same bound
/// as f16's, `matmul_t_f16`.)
const UNPACK_MIN_ROWS: usize = 32;

// ------------------------------------------------------------------ names of the tensors

/// The parameters of a linear layer or convolution, under its name (both formats agree).
pub const WEIGHT: &str = "weight";
pub const BIAS: &str = "bias";

/// How one file format names Whisper's tensors. A component (layer norm, linear layer,
/// convolution) is a name whose parameters follow after `sep`; a layer's components follow
/// after the layer's own name (`{encoder_layers}{i}`) and `sep`.
pub struct TensorNames {
    /// Joins a name and what is inside it (`a/b/gamma`, `a.b.weight`).
    pub sep: &'static str,
    /// A layer norm's scale and shift.
    pub norm_scale: &'static str,
    pub norm_shift: &'static str,
    /// Encoder layer `i` is `{encoder_layers}{i}`.
    pub encoder_layers: &'static str,
    /// Decoder layer `i` is `{decoder_layers}{i}`.
    pub decoder_layers: &'static str,
    pub conv1: &'static str,
    pub conv2: &'static str,
    /// A tensor: the encoder's sinusoidal positions `[n_audio_ctx, S]`.
    pub audio_positions: &'static str,
    pub audio_ln: &'static str,
    /// A tensor: the token embedding `[n_vocab, S]`.
    pub token_embedding: &'static str,
    /// A tensor: the decoder's learned positions `[n_text_ctx, S]`.
    pub text_positions: &'static str,
    pub text_ln: &'static str,
    pub attn_ln: &'static str,
    pub attn_qkv: Fused<3>,
    pub attn_out: &'static str,
    pub cross_ln: &'static str,
    pub cross_q: &'static str,
    pub cross_kv: Fused<2>,
    pub cross_out: &'static str,
    pub mlp_ln: &'static str,
    pub fc1: &'static str,
    pub fc2: &'static str,
}

/// Where a format keeps a projection voxd computes as one matrix of `N` stacked parts.
pub enum Fused<const N: usize> {
    /// As one linear layer, stacked as voxd computes it.
    Stacked(&'static str),
    /// As one linear layer per part, `{prefix}{sep}{part}`, in stacking order; the part named
    /// `unbiased` has no bias (Whisper's key projections), so a zero bias stands in for it.
    Split {
        prefix: &'static str,
        parts: [&'static str; N],
        unbiased: &'static str,
    },
}

impl TensorNames {
    /// `inner` inside `outer`: a parameter of a component, or a component of a layer.
    pub fn join(&self, outer: &str, inner: &str) -> String {
        format!("{outer}{}{inner}", self.sep)
    }

    /// The name of the scale of layer `i`'s feed-forward norm, a tensor every layer has (for
    /// counting layers).
    pub fn layer_marker(&self, layers: &str, i: usize) -> String {
        let norm = self.join(&format!("{layers}{i}"), self.mlp_ln);
        self.join(&norm, self.norm_scale)
    }
}

// ------------------------------------------------------------------ reading: the assembly

/// Reads named tensors from some file, so that [`assemble`] can build the model whatever the
/// file format.
pub trait TensorSource {
    fn path(&self) -> &Path;
    /// The named tensor, to look at: borrowed, or converted when the file's type is not one
    /// voxd computes with.
    fn tensor(&self, name: &str) -> Result<Cow<'_, Tensor>, LoadError>;
    /// The named tensor, handed over so that its values move into the weights instead of
    /// being copied; it is gone from the source afterwards.
    fn take(&mut self, name: &str) -> Result<Tensor, LoadError>;
}

/// How a loaded float matrix is stored for compute (see the module comment); block-quantized
/// matrices keep their format.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// f16 (an f32 file's values rounded).
    F16,
    /// f16 or f32, as the file has it.
    AsFile,
}

/// Builds the model from `src`, whose tensors `names` names, checking `hparams` first and
/// every tensor's shape against them.
pub fn assemble(
    src: &mut impl TensorSource,
    names: &TensorNames,
    hparams: HParams,
) -> Result<WhisperWeights, LoadError> {
    hparams.check().map_err(|bad| LoadError::HParam {
        path: src.path().to_path_buf(),
        name: bad.name,
        value: bad.value,
        expected: bad.expected,
    })?;
    let r = &mut Assembler { src, names };
    let hp = &hparams;
    let s = hp.n_audio_state;
    let encoder = EncoderWeights {
        conv1: Conv1d::read(r, names.conv1, s, hp.n_mels)?,
        conv2: Conv1d::read(r, names.conv2, s, s)?,
        positions: r.matrix(names.audio_positions, hp.n_audio_ctx, s, Storage::AsFile)?,
        layers: (0..hp.n_audio_layer)
            .map(|i| EncoderLayer::read(r, &format!("{}{i}", names.encoder_layers), s))
            .collect::<Result<_, _>>()?,
        ln_post: LayerNorm::read(r, names.audio_ln, s)?,
    };
    let s = hp.n_text_state;
    let decoder = DecoderWeights {
        token_embedding: r.matrix(names.token_embedding, hp.n_vocab, s, Storage::F16)?,
        positions: r.matrix(names.text_positions, hp.n_text_ctx, s, Storage::AsFile)?,
        layers: (0..hp.n_text_layer)
            .map(|i| DecoderLayer::read(r, &format!("{}{i}", names.decoder_layers), s))
            .collect::<Result<_, _>>()?,
        ln: LayerNorm::read(r, names.text_ln, s)?,
    };
    Ok(WhisperWeights {
        hparams,
        encoder,
        decoder,
    })
}

/// A tensor source with its format's names.
struct Assembler<'a, S> {
    src: &'a mut S,
    names: &'a TensorNames,
}

impl<S: TensorSource> Assembler<'_, S> {
    fn shaped(&mut self, name: &str, expected: &[usize]) -> Result<Tensor, LoadError> {
        let t = self.src.take(name)?;
        if t.shape != expected {
            return Err(LoadError::Shape {
                path: self.src.path().to_path_buf(),
                name: name.to_string(),
                expected: expected.to_vec(),
                got: t.shape.clone(),
            });
        }
        Ok(t)
    }

    fn f32s(&mut self, name: &str, expected: &[usize]) -> Result<Vec<f32>, LoadError> {
        Ok(self.shaped(name, expected)?.into_f32())
    }

    /// A vector of `len` values that may also be stored as a `[len, 1]` column (whisper.cpp's
    /// convolution biases).
    fn column(&mut self, name: &str, len: usize) -> Result<Vec<f32>, LoadError> {
        let t = self.src.take(name)?;
        if t.shape != [len] && t.shape != [len, 1] {
            return Err(LoadError::Shape {
                path: self.src.path().to_path_buf(),
                name: name.to_string(),
                expected: vec![len],
                got: t.shape.clone(),
            });
        }
        Ok(t.into_f32())
    }

    fn matrix(
        &mut self,
        name: &str,
        rows: usize,
        cols: usize,
        storage: Storage,
    ) -> Result<Matrix, LoadError> {
        let t = self.shaped(name, &[rows, cols])?;
        Ok(match (t.data, storage) {
            (TensorData::Blocks { ty, data }, _) => Matrix::Blocks { ty, data },
            (TensorData::F32(values), Storage::AsFile) => Matrix::F32(values),
            (TensorData::F16(values), _) => Matrix::F16(values),
            (TensorData::F32(values), Storage::F16) => {
                Matrix::F16(values.into_iter().map(f16::from_f32).collect())
            }
        })
    }
}

impl LayerNorm {
    fn read<S: TensorSource>(
        r: &mut Assembler<S>,
        name: &str,
        width: usize,
    ) -> Result<Self, LoadError> {
        Ok(LayerNorm {
            gamma: r.f32s(&r.names.join(name, r.names.norm_scale), &[width])?,
            beta: r.f32s(&r.names.join(name, r.names.norm_shift), &[width])?,
        })
    }
}

impl Linear {
    fn read<S: TensorSource>(
        r: &mut Assembler<S>,
        name: &str,
        n_out: usize,
        n_in: usize,
        storage: Storage,
    ) -> Result<Self, LoadError> {
        Ok(Linear {
            weight: r.matrix(&r.names.join(name, WEIGHT), n_out, n_in, storage)?,
            bias: r.f32s(&r.names.join(name, BIAS), &[n_out])?,
            n_out,
            n_in,
        })
    }

    /// `N` stacked `[s, s]` projections of the layer named `layer`.
    fn read_fused<S: TensorSource, const N: usize>(
        r: &mut Assembler<S>,
        layer: &str,
        fused: &Fused<N>,
        s: usize,
        storage: Storage,
    ) -> Result<Self, LoadError> {
        let (prefix, parts, unbiased) = match fused {
            Fused::Stacked(name) => {
                return Linear::read(r, &r.names.join(layer, name), N * s, s, storage)
            }
            Fused::Split {
                prefix,
                parts,
                unbiased,
            } => (r.names.join(layer, prefix), parts, unbiased),
        };
        let mut weights = Vec::with_capacity(N);
        let mut bias = Vec::with_capacity(N * s);
        for part in parts {
            let name = r.names.join(&prefix, part);
            weights.push(r.matrix(&r.names.join(&name, WEIGHT), s, s, storage)?);
            if part == unbiased {
                bias.extend(std::iter::repeat_n(0.0, s));
            } else {
                bias.extend(r.f32s(&r.names.join(&name, BIAS), &[s])?);
            }
        }
        Ok(Linear {
            weight: Matrix::stack(weights, s),
            bias,
            n_out: N * s,
            n_in: s,
        })
    }
}

impl Conv1d {
    fn read<S: TensorSource>(
        r: &mut Assembler<S>,
        name: &str,
        n_out: usize,
        n_in: usize,
    ) -> Result<Self, LoadError> {
        Ok(Conv1d::from_pytorch(
            r.shaped(&r.names.join(name, WEIGHT), &[n_out, n_in, 3])?
                .data,
            r.column(&r.names.join(name, BIAS), n_out)?,
            n_out,
            n_in,
        ))
    }
}

impl SelfAttention {
    fn read<S: TensorSource>(
        r: &mut Assembler<S>,
        p: &str,
        s: usize,
        storage: Storage,
    ) -> Result<Self, LoadError> {
        let n = r.names;
        Ok(SelfAttention {
            ln: LayerNorm::read(r, &n.join(p, n.attn_ln), s)?,
            qkv: Linear::read_fused(r, p, &n.attn_qkv, s, storage)?,
            out: Linear::read(r, &n.join(p, n.attn_out), s, s, storage)?,
        })
    }

    fn write<E>(&self, w: &mut Walker<E>, p: &str) -> Result<(), E> {
        let n = w.names;
        self.ln.write(w, &n.join(p, n.attn_ln))?;
        self.qkv.write_fused(w, p, &n.attn_qkv)?;
        self.out.write(w, &n.join(p, n.attn_out))
    }
}

impl CrossAttention {
    /// The keys and values are multiplied with a whole window of audio at once, so they are
    /// kept in f32 for the GEMM whatever `storage` the rest of the decoder uses.
    fn read<S: TensorSource>(
        r: &mut Assembler<S>,
        p: &str,
        s: usize,
        storage: Storage,
    ) -> Result<Self, LoadError> {
        let n = r.names;
        Ok(CrossAttention {
            ln: LayerNorm::read(r, &n.join(p, n.cross_ln), s)?,
            q: Linear::read(r, &n.join(p, n.cross_q), s, s, storage)?,
            kv: Linear::read_fused(r, p, &n.cross_kv, s, Storage::AsFile)?,
            out: Linear::read(r, &n.join(p, n.cross_out), s, s, storage)?,
        })
    }

    fn write<E>(&self, w: &mut Walker<E>, p: &str) -> Result<(), E> {
        let n = w.names;
        self.ln.write(w, &n.join(p, n.cross_ln))?;
        self.q.write(w, &n.join(p, n.cross_q))?;
        self.kv.write_fused(w, p, &n.cross_kv)?;
        self.out.write(w, &n.join(p, n.cross_out))
    }
}

impl Mlp {
    fn read<S: TensorSource>(
        r: &mut Assembler<S>,
        p: &str,
        s: usize,
        storage: Storage,
    ) -> Result<Self, LoadError> {
        let n = r.names;
        Ok(Mlp {
            ln: LayerNorm::read(r, &n.join(p, n.mlp_ln), s)?,
            fc1: Linear::read(r, &n.join(p, n.fc1), 4 * s, s, storage)?,
            fc2: Linear::read(r, &n.join(p, n.fc2), s, 4 * s, storage)?,
        })
    }

    fn write<E>(&self, w: &mut Walker<E>, p: &str) -> Result<(), E> {
        let n = w.names;
        self.ln.write(w, &n.join(p, n.mlp_ln))?;
        self.fc1.write(w, &n.join(p, n.fc1))?;
        self.fc2.write(w, &n.join(p, n.fc2))
    }
}

impl EncoderLayer {
    fn read<S: TensorSource>(r: &mut Assembler<S>, p: &str, s: usize) -> Result<Self, LoadError> {
        Ok(EncoderLayer {
            attn: SelfAttention::read(r, p, s, Storage::AsFile)?,
            mlp: Mlp::read(r, p, s, Storage::AsFile)?,
        })
    }

    fn write<E>(&self, w: &mut Walker<E>, p: &str) -> Result<(), E> {
        self.attn.write(w, p)?;
        self.mlp.write(w, p)
    }
}

impl DecoderLayer {
    fn read<S: TensorSource>(r: &mut Assembler<S>, p: &str, s: usize) -> Result<Self, LoadError> {
        Ok(DecoderLayer {
            attn: SelfAttention::read(r, p, s, Storage::F16)?,
            cross: CrossAttention::read(r, p, s, Storage::F16)?,
            mlp: Mlp::read(r, p, s, Storage::F16)?,
        })
    }

    fn write<E>(&self, w: &mut Walker<E>, p: &str) -> Result<(), E> {
        self.attn.write(w, p)?;
        self.cross.write(w, p)?;
        self.mlp.write(w, p)
    }
}

// ------------------------------------------------------------------ writing: the walk

/// What a tensor holds, which decides how a writer may store it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TensorRole {
    /// A weight matrix (linear layer, convolution, token embedding): may be stored in f16.
    Weight,
    /// A bias or a layer norm's scale or shift.
    Vector,
    /// A convolution's bias.
    ConvBias,
    /// Position embeddings.
    Positions,
}

/// One tensor of a model as a format names it, its values in PyTorch's layout.
pub struct NamedTensor<'a> {
    pub name: String,
    /// Outermost first.
    pub shape: Vec<usize>,
    pub values: Cow<'a, [f32]>,
    pub role: TensorRole,
}

/// Hands every tensor, named by `names`, to a writer.
struct Walker<'a, 'f, E> {
    names: &'a TensorNames,
    emit: &'f mut dyn FnMut(NamedTensor<'_>) -> Result<(), E>,
}

impl<E> Walker<'_, '_, E> {
    fn tensor(
        &mut self,
        name: String,
        shape: Vec<usize>,
        values: Cow<'_, [f32]>,
        role: TensorRole,
    ) -> Result<(), E> {
        (self.emit)(NamedTensor {
            name,
            shape,
            values,
            role,
        })
    }

    /// A weight under `name` and its bias, if it has one.
    fn weight_and_bias(
        &mut self,
        name: &str,
        shape: Vec<usize>,
        weight: Cow<'_, [f32]>,
        bias: Option<(&[f32], TensorRole)>,
    ) -> Result<(), E> {
        let n = self.names;
        self.tensor(n.join(name, WEIGHT), shape, weight, TensorRole::Weight)?;
        match bias {
            Some((bias, role)) => {
                self.tensor(n.join(name, BIAS), vec![bias.len()], bias.into(), role)
            }
            None => Ok(()),
        }
    }
}

impl WhisperWeights {
    /// Calls `emit` with every tensor of the model as `names` names it, in the order
    /// whisper.cpp's converter writes them: the encoder (positions, convolutions, layers,
    /// final norm), then the decoder (positions, token embedding, layers, final norm).
    pub fn for_each_tensor<E>(
        &self,
        names: &TensorNames,
        mut emit: impl FnMut(NamedTensor<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let w = &mut Walker {
            names,
            emit: &mut emit,
        };
        let hp = &self.hparams;
        let (enc, dec) = (&self.encoder, &self.decoder);
        let positions = vec![hp.n_audio_ctx, hp.n_audio_state];
        let name = names.audio_positions.to_string();
        w.tensor(
            name,
            positions,
            enc.positions.to_f32(hp.n_audio_state).into(),
            TensorRole::Positions,
        )?;
        enc.conv1.write(w, names.conv1)?;
        enc.conv2.write(w, names.conv2)?;
        for (i, layer) in enc.layers.iter().enumerate() {
            layer.write(w, &format!("{}{i}", names.encoder_layers))?;
        }
        enc.ln_post.write(w, names.audio_ln)?;

        let positions = vec![hp.n_text_ctx, hp.n_text_state];
        let name = names.text_positions.to_string();
        w.tensor(
            name,
            positions,
            dec.positions.to_f32(hp.n_text_state).into(),
            TensorRole::Positions,
        )?;
        let embedding = dec.token_embedding.to_f32(hp.n_text_state);
        let shape = vec![hp.n_vocab, hp.n_text_state];
        let name = names.token_embedding.to_string();
        w.tensor(name, shape, embedding.into(), TensorRole::Weight)?;
        for (i, layer) in dec.layers.iter().enumerate() {
            layer.write(w, &format!("{}{i}", names.decoder_layers))?;
        }
        dec.ln.write(w, names.text_ln)
    }
}

impl LayerNorm {
    fn write<E>(&self, w: &mut Walker<E>, name: &str) -> Result<(), E> {
        let n = self.gamma.len();
        for (param, values) in [
            (w.names.norm_scale, &self.gamma),
            (w.names.norm_shift, &self.beta),
        ] {
            let name = w.names.join(name, param);
            w.tensor(name, vec![n], values[..].into(), TensorRole::Vector)?;
        }
        Ok(())
    }
}

impl Linear {
    fn write<E>(&self, w: &mut Walker<E>, name: &str) -> Result<(), E> {
        let shape = vec![self.n_out, self.n_in];
        let bias = Some((&self.bias[..], TensorRole::Vector));
        w.weight_and_bias(name, shape, self.weight_f32().into(), bias)
    }

    /// The inverse of [`Linear::read_fused`].
    fn write_fused<E, const N: usize>(
        &self,
        w: &mut Walker<E>,
        layer: &str,
        fused: &Fused<N>,
    ) -> Result<(), E> {
        let n = w.names;
        let (prefix, parts, unbiased) = match fused {
            Fused::Stacked(name) => return self.write(w, &n.join(layer, name)),
            Fused::Split {
                prefix,
                parts,
                unbiased,
            } => (n.join(layer, prefix), parts, unbiased),
        };
        let s = self.n_in;
        let weight = self.weight_f32();
        for (i, part) in parts.iter().enumerate() {
            let rows = &weight[i * s * s..(i + 1) * s * s];
            let bias =
                (part != unbiased).then(|| (&self.bias[i * s..(i + 1) * s], TensorRole::Vector));
            w.weight_and_bias(&n.join(&prefix, part), vec![s, s], rows.into(), bias)?;
        }
        Ok(())
    }
}

impl Conv1d {
    fn write<E>(&self, w: &mut Walker<E>, name: &str) -> Result<(), E> {
        let shape = vec![self.n_out, self.n_in, 3];
        let bias = Some((&self.bias[..], TensorRole::ConvBias));
        w.weight_and_bias(name, shape, self.to_pytorch().into(), bias)
    }
}
