//! Quantized weight matrices in ggml's block formats, and products with them.
//!
//! # Formats
//!
//! A matrix is row-major; each row is a whole number of blocks, bit-exact as in ggml (GGUF
//! tensor data). Scales are little-endian IEEE f16 (`d`, `m`, `dmin`); `q` are the stored
//! integers, value = the formula on the right.
//!
//! | type | values | bytes | layout (byte offsets)                                          | value           |
//! |------|--------|-------|----------------------------------------------------------------|-----------------|
//! | F32  | 1      | 4     | f32                                                            | x               |
//! | F16  | 1      | 2     | f16                                                            | x               |
//! | Q8_0 | 32     | 34    | 0 d, 2..34 q as i8                                             | q·d             |
//! | Q4_0 | 32     | 18    | 0 d, 2..18 nibbles                                             | (q-8)·d         |
//! | Q4_1 | 32     | 20    | 0 d, 2 m, 4..20 nibbles                                        | q·d + m         |
//! | Q5_0 | 32     | 22    | 0 d, 2..6 qh, 6..22 nibbles                                    | (q-16)·d        |
//! | Q5_1 | 32     | 24    | 0 d, 2 m, 4..8 qh, 8..24 nibbles                               | q·d + m         |
//! | Q4_K | 256    | 144   | 0 d, 2 dmin, 4..16 packed scales/mins, 16..144 nibbles         | d·s·q - dmin·m  |
//! | Q6_K | 256    | 210   | 0..128 ql, 128..192 qh, 192..208 i8 scales, 208 d              | d·s·(q-32)      |
//!
//! - Q4_0/Q4_1: byte `i` holds value `i` in its low nibble and value `i + 16` in its high one.
//! - Q5_0/Q5_1: the low four bits as in Q4_0/Q4_1; the fifth bit of value `j` is bit `j` of
//!   `qh`, a little-endian u32.
//! - Q4_K: eight sub-blocks of 32, each with a 6-bit scale `s` and 6-bit min `m`. Bytes 4..16
//!   hold them: for sub-block `j < 4`, `s` and `m` are the low six bits of bytes `4 + j` and
//!   `8 + j`; for `j ≥ 4`, their low four bits are the low and high nibble of byte `12 + j - 4`
//!   and their top two bits are the top two bits of bytes `4 + j - 4` (for `s`) and `8 + j - 4`
//!   (for `m`). The nibbles come in four chunks of 32 bytes: chunk `c` holds values
//!   `64c..64c+32` (sub-block `2c`) in its low nibbles and `64c+32..64c+64` (sub-block `2c+1`)
//!   in its high nibbles.
//! - Q6_K: sixteen groups of 16 values, each with an i8 scale `s`; `q` is six bits, the low
//!   four in `ql`, the high two in `qh`. Each half `h` of 128 values uses `ql[64h..64h+64]` and
//!   `qh[32h..32h+32]`: value `128h + 32g + l` (g in 0..4, l in 0..32) has its low bits in the
//!   low (g = 0, 1) or high (g = 2, 3) nibble of `ql[64h + l]` (g even) or `ql[64h + 32 + l]`
//!   (g odd), and its high bits at bits `2g..2g+2` of `qh[32h + l]`.
//!
//! # Products
//!
//! [`matmul_q`] computes `out = x · Wᵀ` for `n` rows of activations, as llama.cpp does: the
//! activations are quantized once per call to 8 bits (blocks of 32 with an f32 scale for
//! Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 weights, blocks of 256 for the k-quants; both keep sums of every 16 values,
//! which Q4_1's, Q5_1's and Q4_K's offsets and Q6_K's -32 need), the block products are exact integer
//! sums, and only their scaling is in f32. Weight rows are split among rayon's current pool;
//! each weight row is dotted with up to four activation rows at a time, so a block is unpacked
//! once for the four, and with panels of activation rows that stay in cache (prompt
//! processing). F32 and F16 weights go to the f32 GEMM and `matmul_t_f16`.
//!
//! `scalar.rs` defines every operation (the reference); `x86.rs` (AVX2, with AVX-VNNI's byte
//! dot product where the CPU has one; on AVX-512 two 32-value blocks to a register, with VNNI's
//! byte dot product where the CPU has it) and `neon.rs` (NEON, with `sdot`
//! where the CPU has the dot product extension) compute the same integer sums and agree with
//! it to f32 rounding (see the tests).

mod scalar;

#[cfg(target_arch = "aarch64")]
mod neon;
#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod tests;

use super::shared::SharedOut;
use super::{Backend, Isa};
use half::f16;
use rayon::prelude::*;
use std::borrow::Cow;

/// A weight format: ggml's type of the same name (see the module docs for the layouts).
#[allow(non_camel_case_types)] // ggml's names, as GGUF files and llama.cpp's tools print them
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuantType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q4_K,
    Q6_K,
}

impl QuantType {
    /// Every supported type: the one list of what voxd computes with (the GGUF reader, the
    /// model's errors and `voxd doctor` ask it).
    pub const ALL: [QuantType; 9] = [
        QuantType::F32,
        QuantType::F16,
        QuantType::Q4_0,
        QuantType::Q4_1,
        QuantType::Q5_0,
        QuantType::Q5_1,
        QuantType::Q8_0,
        QuantType::Q4_K,
        QuantType::Q6_K,
    ];

    /// ggml's name of the type, as GGUF files and llama.cpp's tools print it.
    pub fn name(self) -> &'static str {
        match self {
            QuantType::F32 => "F32",
            QuantType::F16 => "F16",
            QuantType::Q4_0 => "Q4_0",
            QuantType::Q4_1 => "Q4_1",
            QuantType::Q5_0 => "Q5_0",
            QuantType::Q5_1 => "Q5_1",
            QuantType::Q8_0 => "Q8_0",
            QuantType::Q4_K => "Q4_K",
            QuantType::Q6_K => "Q6_K",
        }
    }

    /// The supported types' names, for messages: `F32, F16, Q4_0, ...`.
    pub fn supported_names() -> String {
        Self::ALL.map(QuantType::name).join(", ")
    }

    /// The type named `name` (ggml's name, any case: `q5_1`, `Q8_0`), if supported.
    pub fn from_name(name: &str) -> Option<QuantType> {
        Self::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(name))
    }

    /// The type called `name` if [`quantize_row`] writes it (what `--quant` and a quantized
    /// model variant may name).
    pub fn writable(name: &str) -> Option<QuantType> {
        Self::from_name(name).filter(|t| t.has_quantizer())
    }

    /// Whether [`quantize_row`] writes this type: the 32-value block types.
    pub fn has_quantizer(self) -> bool {
        matches!(
            self,
            QuantType::Q4_0 | QuantType::Q4_1 | QuantType::Q5_0 | QuantType::Q5_1 | QuantType::Q8_0
        )
    }

    /// The type of ggml's type id (`ggml_type`, as stored in GGUF tensor infos), if supported.
    pub fn from_ggml_id(id: u32) -> Option<QuantType> {
        Self::ALL.into_iter().find(|t| t.ggml_id() == id)
    }

    /// ggml's id of this type.
    pub fn ggml_id(self) -> u32 {
        match self {
            QuantType::F32 => 0,
            QuantType::F16 => 1,
            QuantType::Q4_0 => 2,
            QuantType::Q4_1 => 3,
            QuantType::Q5_0 => 6,
            QuantType::Q5_1 => 7,
            QuantType::Q8_0 => 8,
            QuantType::Q4_K => 12,
            QuantType::Q6_K => 14,
        }
    }

    /// Values per block.
    pub fn block_len(self) -> usize {
        match self {
            QuantType::F32 | QuantType::F16 => 1,
            QuantType::Q4_0
            | QuantType::Q4_1
            | QuantType::Q5_0
            | QuantType::Q5_1
            | QuantType::Q8_0 => 32,
            QuantType::Q4_K | QuantType::Q6_K => 256,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            QuantType::F32 => 4,
            QuantType::F16 => 2,
            QuantType::Q4_0 => 18,
            QuantType::Q4_1 => 20,
            QuantType::Q5_0 => 22,
            QuantType::Q5_1 => 24,
            QuantType::Q8_0 => 34,
            QuantType::Q4_K => 144,
            QuantType::Q6_K => 210,
        }
    }

    /// Bytes of a row of `cols` values, or `None` when `cols` is not a whole number of blocks.
    pub fn row_bytes(self, cols: usize) -> Option<usize> {
        cols.is_multiple_of(self.block_len())
            .then(|| cols / self.block_len() * self.block_bytes())
    }

    /// The activation format the integer products with this weight type use.
    fn act_format(self) -> Option<ActFormat> {
        match self {
            QuantType::F32 | QuantType::F16 => None,
            QuantType::Q4_0
            | QuantType::Q4_1
            | QuantType::Q5_0
            | QuantType::Q5_1
            | QuantType::Q8_0 => Some(ActFormat::Q8_0),
            QuantType::Q4_K | QuantType::Q6_K => Some(ActFormat::Q8_K),
        }
    }
}

/// Why a [`QMatRef`] could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantError {
    #[error("{ty:?}: a row of {cols} values is not a whole number of {block}-value blocks")]
    RaggedRow {
        ty: QuantType,
        cols: usize,
        block: usize,
    },
    #[error("{ty:?} {rows}×{cols}: the data has {got} bytes, the shape needs {expected}")]
    DataLength {
        ty: QuantType,
        rows: usize,
        cols: usize,
        expected: usize,
        got: usize,
    },
    #[error("{ty:?} {rows}×{cols}: the shape is too large to address")]
    TooLarge {
        ty: QuantType,
        rows: usize,
        cols: usize,
    },
    #[error("{ty:?}: a matrix needs at least one column")]
    NoColumns { ty: QuantType },
}

/// A borrowed `rows × cols` weight matrix in format `ty`: row-major, each row
/// `ty.row_bytes(cols)` bytes of blocks. The constructor checks the shape, so every
/// `QMatRef` is consistent.
#[derive(Clone, Copy, Debug)]
pub struct QMatRef<'a> {
    ty: QuantType,
    rows: usize,
    cols: usize,
    data: &'a [u8],
}

impl<'a> QMatRef<'a> {
    /// Checks that `cols` is a positive whole number of blocks and that `data` holds exactly
    /// `rows` rows of them.
    pub fn new(
        ty: QuantType,
        rows: usize,
        cols: usize,
        data: &'a [u8],
    ) -> Result<Self, QuantError> {
        if cols == 0 {
            return Err(QuantError::NoColumns { ty });
        }
        let row_bytes = ty.row_bytes(cols).ok_or(QuantError::RaggedRow {
            ty,
            cols,
            block: ty.block_len(),
        })?;
        let expected =
            row_bytes
                .checked_mul(rows)
                .ok_or(QuantError::TooLarge { ty, rows, cols })?;
        if data.len() != expected {
            return Err(QuantError::DataLength {
                ty,
                rows,
                cols,
                expected,
                got: data.len(),
            });
        }
        Ok(QMatRef {
            ty,
            rows,
            cols,
            data,
        })
    }

    pub fn ty(&self) -> QuantType {
        self.ty
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Bytes per row.
    pub fn row_bytes(&self) -> usize {
        self.ty.row_bytes(self.cols).expect("checked in new")
    }

    /// The bytes of row `r`. Panics if `r >= rows`.
    pub fn row(&self, r: usize) -> &'a [u8] {
        assert!(r < self.rows, "row {r} of a {}-row matrix", self.rows);
        let rb = self.row_bytes();
        &self.data[r * rb..(r + 1) * rb]
    }
}

/// Dequantizes one row: `bytes` in format `ty` into `out.len()` values. Panics unless
/// `out.len()` is a whole number of blocks and `bytes.len() == ty.row_bytes(out.len())`.
pub fn dequantize_row(ty: QuantType, bytes: &[u8], out: &mut [f32]) {
    assert_eq!(
        Some(bytes.len()),
        ty.row_bytes(out.len()),
        "dequantize_row: {ty:?} bytes for {} values",
        out.len()
    );
    scalar::dequantize_row(ty, bytes, out);
}

/// Quantizes one row of values into `out` in format `ty`, as ggml's reference quantizer does
/// (see `scalar::quantize_row`). Panics unless `ty.has_quantizer()` and
/// `out.len() == ty.row_bytes(x.len())`.
pub fn quantize_row(ty: QuantType, x: &[f32], out: &mut [u8]) {
    assert!(ty.has_quantizer(), "quantize_row: no quantizer for {ty:?}");
    assert_eq!(
        Some(out.len()),
        ty.row_bytes(x.len()),
        "quantize_row: {ty:?} bytes for {} values",
        x.len()
    );
    scalar::quantize_row(ty, x, out);
}

/// Writes a row of 8-bit integers that share one step (value = q · step; CTranslate2's int8
/// weights, whose step is the reciprocal of their row's scale) as Q8_0 blocks: the integers
/// unchanged, the step rounded to f16 in every block. Panics unless `values.len()` is a
/// whole number of blocks and `out.len() == QuantType::Q8_0.row_bytes(values.len())`.
pub fn q8_0_from_i8(values: &[i8], step: f32, out: &mut [u8]) {
    assert_eq!(
        Some(out.len()),
        QuantType::Q8_0.row_bytes(values.len()),
        "q8_0_from_i8: Q8_0 bytes for {} values",
        values.len()
    );
    scalar::q8_0_from_i8(values, step, out);
}

/// Row `row` of `w` as f32 values (an embedding lookup). Panics unless `row < w.rows()` and
/// `out.len() == w.cols()`.
pub fn get_row(w: QMatRef, row: usize, out: &mut [f32]) {
    assert_eq!(out.len(), w.cols(), "get_row: out.len() != cols");
    dequantize_row(w.ty, w.row(row), out);
}

/// `out[n × rows] = x[n × cols] · Wᵀ` for `n ≥ 1` rows of activations (`n = x.len() / cols`),
/// all row-major. Multithreaded over weight rows in rayon's current pool. Panics unless
/// `x.len()` is a multiple of `cols` and `out.len() == n · rows`.
///
/// Quantized types quantize `x` to 8 bits first (see the module docs), so the result differs
/// from the f32 product by that rounding: at most half an activation step (`max|x| / 254` of
/// the block) times `Σ|w|` per output.
pub fn matmul_q(w: QMatRef, x: &[f32], out: &mut [f32]) {
    Backend::detect().matmul_q(w, x, out);
}

/// `out[n × rows] = x[n × cols] · Wᵀ (+ bias)` in f32: the weights are unpacked to f32 a slab
/// of rows at a time for the f32 GEMM, and the activations are not quantized. For many rows
/// of activations (an encoder's whole window) the product is bound by arithmetic, where the
/// GEMM's register tiles beat [`matmul_q`]'s integer dot products, and unpacking each weight
/// once costs little beside it; for a few rows (decoding token by token) reading the weights
/// is the cost, and [`matmul_q`] reads them packed. Panics on the shape mismatches of
/// [`matmul_q`], or unless `bias` has `rows` values.
pub fn matmul_q_unpacked(w: QMatRef, x: &[f32], bias: Option<&[f32]>, out: &mut [f32]) {
    let (rows, cols) = (w.rows, w.cols);
    assert_eq!(
        x.len() % cols,
        0,
        "matmul_q_unpacked: x.len() not a multiple of cols"
    );
    let n = x.len() / cols;
    let row_bytes = w.row_bytes();
    super::gemm::matmul_t_unpacked(
        Backend::detect(),
        x,
        bias,
        out,
        n,
        cols,
        rows,
        // Unpacking is scalar: threads share it, rows in chunks of a few.
        |range, slab| {
            slab.par_chunks_mut(UNPACK_CHUNK_ROWS * cols)
                .zip(
                    w.data[range.start * row_bytes..range.end * row_bytes]
                        .par_chunks(UNPACK_CHUNK_ROWS * row_bytes),
                )
                .for_each(|(values, bytes)| {
                    for (values, row) in values
                        .chunks_exact_mut(cols)
                        .zip(bytes.chunks_exact(row_bytes))
                    {
                        dequantize_row(w.ty, row, values);
                    }
                });
        },
    );
}

/// [`matmul_q`] of several matrices with the same `x` (a layer's query, key and value
/// projections; its gate and up projections), each into its own output: the activations
/// are quantized once per format, and the weight rows of all the matrices are shared among
/// the threads in one parallel pass. Generating a token, each product is small enough that
/// starting the threads once instead of once per matrix saves a measurable share. Each
/// output is exactly what [`matmul_q`] writes. Panics on [`matmul_q`]'s shape mismatches.
pub fn matmul_q_each(x: &[f32], products: &mut [(QMatRef, &mut [f32])]) {
    Backend::detect().matmul_q_each(x, products);
}

impl Backend {
    /// See [`matmul_q`].
    pub fn matmul_q(self, w: QMatRef, x: &[f32], out: &mut [f32]) {
        let (rows, cols) = (w.rows, w.cols);
        assert_eq!(
            x.len() % cols,
            0,
            "matmul_q: x.len() not a multiple of cols"
        );
        let n = x.len() / cols;
        assert_eq!(out.len(), n * rows, "matmul_q: out.len() != n·rows");
        match w.ty.act_format() {
            None if w.ty == QuantType::F32 => {
                let b = cast_or_copy(w.data, f32::from_le_bytes);
                self.matmul_t(x, &b, None, out, n, cols, rows);
            }
            None => {
                let b = cast_or_copy(w.data, f16::from_le_bytes);
                self.matmul_t_f16(x, &b, None, out, n, cols, rows);
            }
            Some(_) => self.matmul_q_each(x, &mut [(w, out)]),
        }
    }

    /// See [`matmul_q_each`].
    pub fn matmul_q_each(self, x: &[f32], products: &mut [(QMatRef, &mut [f32])]) {
        let mut formats: Vec<(ActFormat, QuantizedActs)> = Vec::new();
        for (w, out) in products.iter_mut() {
            let cols = w.cols;
            assert_eq!(
                x.len() % cols,
                0,
                "matmul_q: x.len() not a multiple of cols"
            );
            assert_eq!(
                out.len(),
                x.len() / cols * w.rows,
                "matmul_q: out.len() != n·rows"
            );
            let Some(format) = w.ty.act_format() else {
                // Float weights: the f32 or f16 product, on its own.
                self.matmul_q(*w, x, out);
                continue;
            };
            if !formats
                .iter()
                .any(|(f, acts)| *f == format && acts.cols == cols)
            {
                formats.push((format, QuantizedActs::new(format, x, cols)));
            }
        }
        let jobs: Vec<Job> = products
            .iter_mut()
            .filter_map(|(w, out)| {
                let format = w.ty.act_format()?;
                let (_, acts) = formats
                    .iter()
                    .find(|(f, acts)| *f == format && acts.cols == w.cols)
                    .expect("quantized above");
                Some(Job {
                    w: *w,
                    acts,
                    out: SharedOut::new(out),
                })
            })
            .collect();
        quantized_products(self, &jobs);
    }

    /// `out[i] = W_row · activation row r0 + i` for `R` activation rows: one weight row
    /// unpacked once for all of them. `w_row` is one row of a quantized type.
    fn q_tile<const R: usize>(self, ty: QuantType, w_row: &[u8], acts: ActRows) -> [f32; R] {
        // Multiplications, not divisions: this runs once per weight row and tile.
        let cols = acts.cols;
        assert_eq!(
            w_row.len() * ty.block_len(),
            cols * ty.block_bytes(),
            "q_tile: weight row"
        );
        let act_block = ty.act_format().expect("a quantized type").block_len();
        assert!(
            acts.qs.len() >= R * cols
                && acts.d.len() * act_block >= R * cols
                && acts.scaled_sums.len() * act_block >= R * cols
                && acts.sums.len() * SUM_LEN >= R * cols,
            "q_tile: activation rows"
        );
        match self.0 {
            Isa::Scalar => scalar::tile::<R>(ty, w_row, acts),
            #[cfg(target_arch = "x86_64")]
            // SAFETY (the x86 arms): the x86 SIMD variants exist only when AVX2, FMA and F16C
            // were detected, `AvxVnni` only with AVX-VNNI too, `Avx512` only with AVX-512 F,
            // BW and VL too, `Avx512Vnni` only with those and VNNI; the slice lengths were
            // checked above.
            Isa::Avx2 => unsafe { x86::tile::<R>(ty, w_row, acts) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { x86::tile_avx512::<R>(ty, w_row, acts) },
            #[cfg(target_arch = "x86_64")]
            Isa::AvxVnni => unsafe { x86::tile_avx_vnni::<R>(ty, w_row, acts) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => unsafe { x86::tile_avx512_vnni::<R>(ty, w_row, acts) },
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => neon::tile::<R>(ty, w_row, acts),
            #[cfg(target_arch = "aarch64")]
            // SAFETY: `NeonDotprod` exists only when the dot product extension was detected.
            Isa::NeonDotprod => unsafe { neon::tile_dotprod::<R>(ty, w_row, acts) },
        }
    }
}

/// Weight bytes as `T`s: borrowed when aligned (GGUF aligns tensor data, and voxd reads it
/// into memory aligned to 64 bytes) and the machine is little-endian, else decoded into a copy.
fn cast_or_copy<T: bytemuck::Pod, const N: usize>(
    data: &[u8],
    from_le: impl Fn([u8; N]) -> T,
) -> Cow<'_, [T]> {
    match bytemuck::try_cast_slice(data) {
        Ok(values) if cfg!(target_endian = "little") => Cow::Borrowed(values),
        _ => Cow::Owned(
            data.chunks_exact(N)
                .map(|b| from_le(b.try_into().expect("N bytes")))
                .collect(),
        ),
    }
}

/// Weight rows per task of [`matmul_q_unpacked`]'s unpacking.
const UNPACK_CHUNK_ROWS: usize = 16;
/// Activation rows per register tile: each unpacked weight block serves this many.
const TILE_ROWS: usize = 4;
/// Activation rows per panel: a panel's quantized rows (≤ 64 × cols bytes) stay in L2 while
/// every weight row of a task passes over them.
const PANEL_ROWS: usize = 64;
/// Values per activation partial sum (ggml's Q8_K `bsums`); Q8_0 blocks use two of them.
const SUM_LEN: usize = 16;
/// Products smaller than this many multiply-adds run on one thread.
const PARALLEL_MIN_MACS: usize = 1 << 16;

/// One product of [`quantized_products`]: a matrix, its activations quantized in its
/// format, and where its result goes.
struct Job<'a> {
    w: QMatRef<'a>,
    acts: &'a QuantizedActs,
    out: SharedOut<'a>,
}

impl Job<'_> {
    /// Weight rows `j0..j1` for every activation row. Concurrent calls get disjoint ranges,
    /// so they write disjoint columns of the output.
    fn columns(&self, be: Backend, j0: usize, j1: usize) {
        let (w, acts) = (self.w, self.acts);
        let (rows, n, row_bytes) = (w.rows, acts.n, w.row_bytes());
        for p0 in (0..n).step_by(PANEL_ROWS) {
            let p1 = n.min(p0 + PANEL_ROWS);
            for j in j0..j1 {
                let w_row = &w.data[j * row_bytes..(j + 1) * row_bytes];
                for r0 in (p0..p1).step_by(TILE_ROWS) {
                    let vals: &[f32] = match p1 - r0 {
                        1 => &be.q_tile::<1>(w.ty, w_row, acts.rows(r0)),
                        2 => &be.q_tile::<2>(w.ty, w_row, acts.rows(r0)),
                        3 => &be.q_tile::<3>(w.ty, w_row, acts.rows(r0)),
                        _ => &be.q_tile::<TILE_ROWS>(w.ty, w_row, acts.rows(r0)),
                    };
                    for (i, &v) in vals.iter().enumerate() {
                        // SAFETY: this call owns columns j0..j1, and j is one of them.
                        unsafe { self.out.segment((r0 + i) * rows + j, 1)[0] = v };
                    }
                }
            }
        }
    }
}

/// Every job's product, the weight rows of all of them split among the pool's threads in
/// one parallel pass.
fn quantized_products(be: Backend, jobs: &[Job]) {
    let threads = rayon::current_num_threads();
    let macs: usize = jobs.iter().map(|j| j.acts.n * j.w.rows * j.w.cols).sum();
    if threads == 1 || macs < PARALLEL_MIN_MACS {
        for job in jobs {
            job.columns(be, 0, job.w.rows);
        }
        return;
    }
    // A few chunks per thread and matrix even out uneven progress.
    let chunks: Vec<(&Job, usize, usize)> = jobs
        .iter()
        .flat_map(|job| {
            let rows = job.w.rows;
            let chunk = rows.div_ceil(threads * 4).max(4);
            (0..rows.div_ceil(chunk)).map(move |t| (job, t * chunk, rows.min((t + 1) * chunk)))
        })
        .collect();
    chunks
        .into_par_iter()
        .for_each(|(job, j0, j1)| job.columns(be, j0, j1));
}

/// How activations are quantized: ggml's Q8_0 (blocks of 32) or Q8_K (blocks of 256), with
/// f32 scales here since they never leave memory.
#[allow(non_camel_case_types)] // ggml's names
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ActFormat {
    Q8_0,
    Q8_K,
}

impl ActFormat {
    fn block_len(self) -> usize {
        match self {
            ActFormat::Q8_0 => 32,
            ActFormat::Q8_K => 256,
        }
    }
}

/// `n` rows of activations quantized in blocks: value ≈ `qs[i] · d[block]`, where
/// `d = max|x| / 127` over the block and `qs = round(x · 127 / max|x|)` (ties to even) lies in
/// -127..=127; `sums[k]` is the sum of `qs[16k..16k + 16]` and `scaled_sums[block]` is
/// `d · Σ qs` over the block (the term Q4_1's offset multiplies).
struct QuantizedActs {
    n: usize,
    cols: usize,
    blocks_per_row: usize,
    qs: Vec<i8>,
    d: Vec<f32>,
    sums: Vec<i16>,
    scaled_sums: Vec<f32>,
}

impl QuantizedActs {
    /// Quantizes `x` (`n × cols`, `cols` a multiple of `format`'s block).
    fn new(format: ActFormat, x: &[f32], cols: usize) -> Self {
        let block = format.block_len();
        assert_eq!(cols % block, 0, "activations: ragged row");
        let n = x.len() / cols;
        let mut acts = QuantizedActs {
            n,
            cols,
            blocks_per_row: cols / block,
            qs: vec![0; x.len()],
            d: vec![0.0; x.len() / block],
            sums: vec![0; x.len() / SUM_LEN],
            scaled_sums: vec![0.0; x.len() / block],
        };
        let blocks = x
            .chunks_exact(block)
            .zip(acts.qs.chunks_exact_mut(block))
            .zip(acts.sums.chunks_exact_mut(block / SUM_LEN));
        for (b, ((x, qs), sums)) in blocks.enumerate() {
            let d = scalar::quantize_act_block(x, qs, sums);
            acts.d[b] = d;
            acts.scaled_sums[b] = d * sums.iter().map(|&s| s as i32).sum::<i32>() as f32;
        }
        acts
    }

    /// Rows `r0..` (as many as remain).
    fn rows(&self, r0: usize) -> ActRows<'_> {
        let blocks_per_row = self.blocks_per_row;
        ActRows {
            cols: self.cols,
            qs: &self.qs[r0 * self.cols..],
            d: &self.d[r0 * blocks_per_row..],
            sums: &self.sums[r0 * self.cols / SUM_LEN..],
            scaled_sums: &self.scaled_sums[r0 * blocks_per_row..],
        }
    }
}

/// Consecutive rows of [`QuantizedActs`], each `cols` values long, starting at one row.
#[derive(Clone, Copy)]
struct ActRows<'a> {
    cols: usize,
    qs: &'a [i8],
    d: &'a [f32],
    sums: &'a [i16],
    scaled_sums: &'a [f32],
}

impl<'a> ActRows<'a> {
    /// The quantized values of block `b` (of `len` values) of row `r`.
    fn block(&self, r: usize, b: usize, len: usize) -> &'a [i8] {
        &self.qs[r * self.cols + b * len..][..len]
    }

    /// The scale of block `b` (of `len` values) of row `r`.
    fn scale(&self, r: usize, b: usize, len: usize) -> f32 {
        self.d[r * (self.cols / len) + b]
    }

    /// The sums of each 16 values of block `b` (of `len` values) of row `r`.
    fn sums(&self, r: usize, b: usize, len: usize) -> &'a [i16] {
        &self.sums[(r * self.cols + b * len) / SUM_LEN..][..len / SUM_LEN]
    }

    /// `d · Σ qs` of block `b` (of `len` values) of row `r`.
    fn scaled_sum(&self, r: usize, b: usize, len: usize) -> f32 {
        self.scaled_sums[r * (self.cols / len) + b]
    }
}
