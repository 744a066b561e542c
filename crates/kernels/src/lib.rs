//! Compute kernels behind a small safe API: SIMD paths beside their scalar references.
//!
//! # Shape of the module
//!
//! - `mod.rs` (this file): the public API, the [`Backend`] type and its dispatch. Every public
//!   free function (`dot`, `softmax`, `matmul_t`, ...) forwards to the same-named method of
//!   [`backend()`], the backend detected once for this CPU.
//! - `scalar.rs`: portable reference kernels. They are the ground truth for the tests and the
//!   fallback on CPUs without the SIMD paths.
//! - `x86.rs`: AVX2 + FMA + F16C versions of the scalar kernels, plus the 6×16 GEMM register
//!   tile and attention's row kernels.
//! - `avx512.rs`: AVX-512 (F, BW, VL) versions of the kernels that the wider registers speed
//!   up: the GEMM register tile and the f16 tile. Everything else on an AVX-512 backend runs
//!   the AVX2 code, which such a CPU also has.
//! - `neon.rs`: aarch64 NEON versions, plus a 6×16 GEMM tile (NEON is part of the aarch64
//!   baseline, so it needs no detection). The dot product extension (`sdot`, detected at run
//!   time) only changes the quantized products, in `quant/neon.rs`.
//! - `gemm.rs`: the f32 products (`matmul_t`, `matmul`) on strided views: our packed,
//!   cache-blocked GEMM around the backend's register tile, and the `gemm` crate. The
//!   [`GemmEngine::Best`] choice follows the benchmarks: ours for large products on AVX2 (the
//!   encoder), the crate for few rows of A and on NEON.
//! - `linear_f16.rs`: `matmul_t_f16`, the decoder's weight-streaming product with f16 weights.
//! - `quant/`: ggml's quantized weight formats and their products (`matmul_q`, `get_row`,
//!   `dequantize_row`), with its own `scalar.rs` reference beside `x86.rs` and `neon.rs`
//!   (the same dispatch through [`Backend`]); its module docs give the block layouts. The
//!   byte dot-product instructions (AVX-VNNI, AVX-512 VNNI, aarch64 `sdot`) serve only these
//!   products: their backends run the other kernels as AVX2, AVX-512 or NEON do.
//! - `attention.rs`: multi-head scaled dot-product attention over strided views.
//! - `prefetch.rs`: attention's key and value rows asked for ahead of their use (x86).
//! - `shared.rs`: a tiny helper that lets parallel tasks write disjoint parts of one buffer.
//! - `test_util.rs`: the tests' deterministic PRNG and tolerance checks.
//!
//! # Dispatch
//!
//! [`Backend`] records which instruction set to use. It can only be obtained from
//! [`Backend::detect`] (run-time feature detection, cached in a `OnceLock`) or
//! [`Backend::SCALAR`] or [`Backend::available`], so a SIMD backend exists only on a CPU that
//! has the instructions; that is what makes the `unsafe` calls into `#[target_feature]` code
//! sound. Tests compare every backend of [`Backend::available`] against `Backend::SCALAR` on
//! the same inputs, so an AVX-512 machine tests its AVX2 paths too.
//!
//! `VOXD_KERNELS=<name>` (one of [`Backend::available`]'s names, e.g. `avx2` or `avx-vnni` on
//! an AVX-512 machine, `neon` on one with `dotprod`) makes [`Backend::detect`] pick a lesser
//! backend: the benchmarks' A/B switch.
//!
//! # Threading
//!
//! Parallel kernels (`matmul_t`, `matmul`, `matmul_t_f16`, `quant::matmul_q`, `attention`) use
//! rayon's *current* pool and size their work by `rayon::current_num_threads()`. The model
//! runs its forward pass inside `pool.install(..)` of a pool sized by the user's `--threads`,
//! so that is the knob.
//!
//! # Errors
//!
//! Mismatched slice lengths are programming errors, not run-time conditions: every function
//! documents its shape contract and panics (via `assert!`) when it is broken.

mod attention;
mod gemm;
mod linear_f16;
#[cfg(target_arch = "x86_64")]
mod prefetch;
pub mod quant;
mod scalar;
mod shared;

#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "aarch64")]
mod neon;
#[cfg(target_arch = "x86_64")]
mod x86;

#[cfg(test)]
mod test_util;

use half::f16;
use rayon::prelude::*;
use std::sync::OnceLock;

/// Elementwise work on at least this many values is split over the current rayon pool: the
/// encoder's activations at a full window are millions of values, and one thread alone kept
/// the other waiting; the decoder's few rows stay on the calling thread.
const PARALLEL_MIN_VALUES: usize = 1 << 16;
/// Values per task when elementwise work is split.
const PARALLEL_CHUNK: usize = 1 << 14;

pub use attention::MatRef;
pub use gemm::Engine as GemmEngine;

/// The instruction set the kernels run on. Copyable and cheap; obtain it from
/// [`Backend::detect`] or use [`Backend::SCALAR`] to force the portable path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backend(Isa);

/// Private so that a SIMD variant can only be built by detection (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// `Avx2` plus AVX-VNNI's byte dot products (the VEX-encoded `vpdpbusd`, e.g. Alder Lake)
    /// for the quantized kernels.
    #[cfg(target_arch = "x86_64")]
    AvxVnni,
    /// AVX2's features plus AVX-512 F, BW and VL.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// `Avx512` plus VNNI's byte dot products (`vpdpbusd`) for the quantized kernels.
    #[cfg(target_arch = "x86_64")]
    Avx512Vnni,
    #[cfg(target_arch = "aarch64")]
    Neon,
    /// `Neon` plus the dot product extension (`sdot`, ARMv8.2: Cortex-A76 and later, every
    /// Apple chip) for the quantized kernels.
    #[cfg(target_arch = "aarch64")]
    NeonDotprod,
}

impl Backend {
    /// The portable reference path, available everywhere.
    pub const SCALAR: Backend = Backend(Isa::Scalar);

    /// The best backend for this CPU (or the one `VOXD_KERNELS` names, if this CPU has it),
    /// detected on first use and cached.
    pub fn detect() -> Backend {
        static DETECTED: OnceLock<Backend> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            let available = Backend::available();
            let wanted = std::env::var("VOXD_KERNELS").ok();
            let named = wanted.and_then(|w| available.iter().copied().find(|b| b.name() == w));
            named.unwrap_or(*available.last().expect("scalar is always available"))
        })
    }

    /// Every backend this CPU can run, from the portable one to the best.
    pub fn available() -> Vec<Backend> {
        available_isas().into_iter().map(Backend).collect()
    }

    /// A short name for logs ("scalar", "avx2", "avx-vnni", "avx512", "avx512-vnni", "neon",
    /// "neon-dotprod").
    pub fn name(self) -> &'static str {
        match self.0 {
            Isa::Scalar => "scalar",
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => "avx2",
            #[cfg(target_arch = "x86_64")]
            Isa::AvxVnni => "avx-vnni",
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => "avx512",
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => "avx512-vnni",
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => "neon",
            #[cfg(target_arch = "aarch64")]
            Isa::NeonDotprod => "neon-dotprod",
        }
    }

    /// See [`dot`].
    pub fn dot(self, a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "dot: length mismatch");
        match self.0 {
            Isa::Scalar => scalar::dot(a, b),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the x86 SIMD variants exist only when AVX2, FMA and F16C were detected.
            Isa::Avx2 | Isa::AvxVnni => unsafe { x86::dot(a, b) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the AVX-512 variants exist only when AVX-512 F, BW and VL were detected.
            Isa::Avx512 | Isa::Avx512Vnni => unsafe { avx512::dot(a, b) },
            #[cfg(target_arch = "aarch64")]
            Isa::Neon | Isa::NeonDotprod => neon::dot(a, b),
        }
    }

    /// See [`dot_f16`].
    pub fn dot_f16(self, a: &[f16], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len(), "dot_f16: length mismatch");
        match self.0 {
            Isa::Scalar => scalar::dot_f16(a, b),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `dot`.
            Isa::Avx2 | Isa::AvxVnni => unsafe { x86::dot_f16(a, b) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the AVX-512 variants exist only when AVX-512 F, BW and VL were detected.
            Isa::Avx512 | Isa::Avx512Vnni => unsafe { avx512::dot_f16(a, b) },
            #[cfg(target_arch = "aarch64")]
            Isa::Neon | Isa::NeonDotprod => neon::dot_f16(a, b),
        }
    }

    /// See [`add_assign`].
    pub fn add_assign(self, x: &mut [f32], y: &[f32]) {
        assert_eq!(x.len(), y.len(), "add_assign: length mismatch");
        if x.len() < PARALLEL_MIN_VALUES {
            return self.axpy(x, 1.0, y);
        }
        x.par_chunks_mut(PARALLEL_CHUNK)
            .zip(y.par_chunks(PARALLEL_CHUNK))
            .for_each(|(x, y)| self.axpy(x, 1.0, y));
    }

    /// `x += alpha * y`, elementwise. Panics if the lengths differ.
    pub fn axpy(self, x: &mut [f32], alpha: f32, y: &[f32]) {
        assert_eq!(x.len(), y.len(), "axpy: length mismatch");
        match self.0 {
            Isa::Scalar => scalar::axpy(x, alpha, y),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `dot`.
            Isa::Avx2 | Isa::AvxVnni | Isa::Avx512 | Isa::Avx512Vnni => unsafe {
                x86::axpy(x, alpha, y)
            },
            #[cfg(target_arch = "aarch64")]
            Isa::Neon | Isa::NeonDotprod => neon::axpy(x, alpha, y),
        }
    }

    /// `scores[j] = q · k[j·stride ..][..q.len()]`: attention's scores of one query row
    /// against every key, keys in f32 or f16. Each score is computed the same way wherever
    /// its key falls, so keys split over several calls score exactly as in one. Panics if
    /// `k` is too short.
    fn row_dots<T: KvElement>(self, q: &[f32], k: &[T], stride: usize, scores: &mut [f32]) {
        assert!(
            scores.is_empty() || k.len() >= (scores.len() - 1) * stride + q.len(),
            "row_dots: k too short"
        );
        T::row_dots(self, q, k, stride, scores);
    }

    /// `out += Σ_j p[j] · v[j·stride ..][..out.len()]`: attention's sum of value rows weighted
    /// by the probabilities, for one query row, values in f32 or f16. Each output is one sum
    /// in row order from its value in `out`, so rows split over several calls sum exactly as
    /// in one. Panics if `v` is too short.
    fn add_weighted_rows<T: KvElement>(self, p: &[f32], v: &[T], stride: usize, out: &mut [f32]) {
        assert!(
            p.is_empty() || v.len() >= (p.len() - 1) * stride + out.len(),
            "add_weighted_rows: v too short"
        );
        T::add_weighted_rows(self, p, v, stride, out);
    }

    /// [`Backend::row_dots`] for several query rows at once: `qs` holds `n` rows of `d`
    /// values, `scores` is `n` rows of one score per key, row-major. Each key is read once
    /// for all the rows (a beam's rows share the decoder's cross-attention keys); every score
    /// is computed as `row_dots` computes it. Panics if the shapes disagree or `k` is short.
    fn rows_dots<T: KvElement>(
        self,
        qs: &[f32],
        d: usize,
        k: &[T],
        stride: usize,
        scores: &mut [f32],
    ) {
        let keys = many_rows_keys(qs.len(), d, scores.len(), "rows_dots");
        assert!(
            keys == 0 || k.len() >= (keys - 1) * stride + d,
            "rows_dots: k too short"
        );
        if keys > 0 {
            T::rows_dots(self, qs, d, k, stride, scores);
        }
    }

    /// [`Backend::add_weighted_rows`] for several query rows at once: `p` holds `n` rows of
    /// one probability per key, `out` `n` rows of `d` values, row-major. Each value row is
    /// read once for all the rows; every output is summed as `add_weighted_rows` sums it.
    /// Panics if the shapes disagree or `v` is short.
    fn add_weighted_rows_many<T: KvElement>(
        self,
        p: &[f32],
        d: usize,
        v: &[T],
        stride: usize,
        out: &mut [f32],
    ) {
        let keys = many_rows_keys(out.len(), d, p.len(), "add_weighted_rows_many");
        assert!(
            keys == 0 || v.len() >= (keys - 1) * stride + d,
            "add_weighted_rows_many: v too short"
        );
        if keys > 0 {
            T::add_weighted_rows_many(self, p, d, v, stride, out);
        }
    }

    /// See [`f16_to_f32`].
    pub fn f16_to_f32(self, src: &[f16], dst: &mut [f32]) {
        assert_eq!(src.len(), dst.len(), "f16_to_f32: length mismatch");
        match self.0 {
            Isa::Scalar => scalar::f16_to_f32(src, dst),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `dot`.
            Isa::Avx2 | Isa::AvxVnni | Isa::Avx512 | Isa::Avx512Vnni => unsafe {
                x86::f16_to_f32(src, dst)
            },
            #[cfg(target_arch = "aarch64")]
            Isa::Neon | Isa::NeonDotprod => neon::f16_to_f32(src, dst),
        }
    }

    /// See [`softmax`].
    pub fn softmax(self, x: &mut [f32]) {
        self.softmax_scaled(x, 1.0);
    }

    /// Softmax of `x * scale`, in place. `scale` must be positive (attention folds its score
    /// scale in here to save a pass over the scores).
    fn softmax_scaled(self, x: &mut [f32], scale: f32) {
        debug_assert!(scale > 0.0);
        match self.0 {
            Isa::Scalar => scalar::softmax_scaled(x, scale),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `dot`.
            Isa::Avx2 | Isa::AvxVnni => unsafe { x86::softmax_scaled(x, scale) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the AVX-512 variants exist only when AVX-512 F, BW and VL were detected.
            Isa::Avx512 | Isa::Avx512Vnni => unsafe { avx512::softmax_scaled(x, scale) },
            #[cfg(target_arch = "aarch64")]
            Isa::Neon | Isa::NeonDotprod => neon::softmax_scaled(x, scale),
        }
    }

    /// See [`log_sum_exp`].
    pub fn log_sum_exp(self, x: &[f32]) -> f32 {
        let max = match self.0 {
            Isa::Scalar => scalar::max(x),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `dot`.
            Isa::Avx2 | Isa::AvxVnni => unsafe { x86::max(x) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `softmax_scaled`.
            Isa::Avx512 | Isa::Avx512Vnni => unsafe { avx512::max(x) },
            #[cfg(target_arch = "aarch64")]
            Isa::Neon | Isa::NeonDotprod => neon::max(x),
        };
        // Nothing possible (all −∞, or no values): the sum is 0.
        if max == f32::NEG_INFINITY {
            return max;
        }
        let sum = match self.0 {
            Isa::Scalar => scalar::sum_exp(x, max),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `dot`.
            Isa::Avx2 | Isa::AvxVnni => unsafe { x86::sum_exp(x, max) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `softmax_scaled`.
            Isa::Avx512 | Isa::Avx512Vnni => unsafe { avx512::sum_exp(x, max) },
            #[cfg(target_arch = "aarch64")]
            Isa::Neon | Isa::NeonDotprod => neon::sum_exp(x, max),
        };
        max + sum.ln()
    }

    /// See [`layer_norm`].
    pub fn layer_norm(self, x: &mut [f32], gamma: &[f32], beta: &[f32], width: usize, eps: f32) {
        assert!(width > 0, "layer_norm: zero width");
        assert_eq!(
            x.len() % width,
            0,
            "layer_norm: length not a multiple of width"
        );
        assert_eq!(gamma.len(), width, "layer_norm: gamma length");
        assert_eq!(beta.len(), width, "layer_norm: beta length");
        if x.len() >= PARALLEL_MIN_VALUES {
            let rows = (PARALLEL_CHUNK / width).max(1);
            return x
                .par_chunks_mut(rows * width)
                .for_each(|x| self.layer_norm(x, gamma, beta, width, eps));
        }
        for row in x.chunks_exact_mut(width) {
            match self.0 {
                Isa::Scalar => scalar::layer_norm_row(row, gamma, beta, eps),
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as in `dot`.
                Isa::Avx2 | Isa::AvxVnni | Isa::Avx512 | Isa::Avx512Vnni => unsafe {
                    x86::layer_norm_row(row, gamma, beta, eps)
                },
                #[cfg(target_arch = "aarch64")]
                Isa::Neon | Isa::NeonDotprod => neon::layer_norm_row(row, gamma, beta, eps),
            }
        }
    }

    /// See [`gelu`].
    pub fn gelu(self, x: &mut [f32]) {
        if x.len() >= PARALLEL_MIN_VALUES {
            return x.par_chunks_mut(PARALLEL_CHUNK).for_each(|x| self.gelu(x));
        }
        match self.0 {
            Isa::Scalar => scalar::gelu(x),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `dot`.
            Isa::Avx2 | Isa::AvxVnni => unsafe { x86::gelu(x) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the AVX-512 variants exist only when AVX-512 F, BW and VL were detected.
            Isa::Avx512 | Isa::Avx512Vnni => unsafe { avx512::gelu(x) },
            #[cfg(target_arch = "aarch64")]
            Isa::Neon | Isa::NeonDotprod => neon::gelu(x),
        }
    }

    /// `out[r][c] = a[r·k..] · b[c·k..]` for `R` rows of `a` and `C` rows of `b`, each of
    /// length `k`: the register tile of `matmul_t_f16`. Panics if the slices are too short.
    fn f16_tile<const R: usize, const C: usize>(
        self,
        a: &[f32],
        b: &[f16],
        k: usize,
    ) -> [[f32; C]; R] {
        assert!(
            a.len() >= R * k && b.len() >= C * k,
            "f16_tile: slices too short"
        );
        match self.0 {
            Isa::Scalar => scalar::f16_tile::<R, C>(a, b, k),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `dot`.
            Isa::Avx2 | Isa::AvxVnni => unsafe { x86::f16_tile::<R, C>(a, b, k) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the AVX-512 variants exist only when AVX-512 F, BW and VL were detected.
            Isa::Avx512 | Isa::Avx512Vnni => unsafe { avx512::f16_tile::<R, C>(a, b, k) },
            #[cfg(target_arch = "aarch64")]
            Isa::Neon | Isa::NeonDotprod => neon::f16_tile::<R, C>(a, b, k),
        }
    }

    /// B micro-panels (of `gemm::NR` columns) per register tile of [`Backend::gemm_tile`].
    fn tile_panels(self) -> usize {
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 | Isa::Avx512Vnni => 2,
            _ => 1,
        }
    }

    /// C[rows×cols] = start + A·B for one register tile: `a` is a packed A micro-panel (`kc`
    /// steps of `gemm::MR` values), `b` holds `⌈cols / gemm::NR⌉` (at most
    /// [`Backend::tile_panels`]) packed B micro-panels one after the other, of equal length,
    /// each with at least `kc` steps of `gemm::NR` values (a panel packed deeper than `kc` is
    /// used in part), `c` starts at the tile's first element with row stride `ldc`; `start`
    /// says what the sums add to (C's values, nothing, or a row). Panics if any slice is too
    /// short.
    #[allow(clippy::too_many_arguments)]
    fn gemm_tile(
        self,
        kc: usize,
        a: &[f32],
        b: &[f32],
        c: &mut [f32],
        ldc: usize,
        rows: usize,
        cols: usize,
        start: gemm::Start,
    ) {
        assert!(a.len() >= kc * gemm::MR, "gemm_tile: A too short");
        self.check_tile(kc, b, c, ldc, rows, cols, start);
        match self.0 {
            Isa::Scalar => scalar::gemm_tile(kc, a, b, c, ldc, rows, cols, start),
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `dot`; the slice lengths were checked above.
            Isa::Avx2 | Isa::AvxVnni => unsafe {
                x86::gemm_tile(kc, a, b, c, ldc, rows, cols, start)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `f16_tile`; the slice lengths were checked above.
            Isa::Avx512 | Isa::Avx512Vnni => unsafe {
                avx512::gemm_tile(kc, a, b, c, ldc, rows, cols, start)
            },
            #[cfg(target_arch = "aarch64")]
            Isa::Neon | Isa::NeonDotprod => neon::gemm_tile(kc, a, b, c, ldc, rows, cols, start),
        }
    }

    /// Panics unless B, C and the start fit a register tile of `rows × cols` and depth `kc`.
    #[allow(clippy::too_many_arguments)]
    fn check_tile(
        self,
        kc: usize,
        b: &[f32],
        c: &[f32],
        ldc: usize,
        rows: usize,
        cols: usize,
        start: gemm::Start,
    ) {
        let panels = cols.div_ceil(gemm::NR);
        assert!(b.len() >= panels * kc * gemm::NR, "gemm tile: B too short");
        assert!(b.len().is_multiple_of(panels), "gemm tile: uneven B panels");
        assert!((1..=gemm::MR).contains(&rows) && (1..=self.tile_panels()).contains(&panels));
        assert!(c.len() >= (rows - 1) * ldc + cols, "gemm tile: C too short");
        if let gemm::Start::Row(row) = start {
            assert!(row.len() >= cols, "gemm tile: start row too short");
        }
    }

    /// Whether [`Backend::gemm_tile_rows`] reads A in place (the others pack it for
    /// `gemm_tile` first, so a caller packs once instead).
    fn tile_reads_rows(self) -> bool {
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 | Isa::Avx512Vnni => true,
            _ => false,
        }
    }

    /// [`Backend::gemm_tile`] with A's `rows` rows of `kc` values read in place from `a`, row
    /// stride `lda`: the same sums in the same order. Panics if any slice is too short.
    #[allow(clippy::too_many_arguments)]
    fn gemm_tile_rows(
        self,
        kc: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        c: &mut [f32],
        ldc: usize,
        rows: usize,
        cols: usize,
        start: gemm::Start,
    ) {
        assert!(
            (1..=gemm::MR).contains(&rows) && a.len() >= (rows - 1) * lda + kc,
            "gemm_tile_rows: A too short"
        );
        match self.0 {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 | Isa::Avx512Vnni => {
                self.check_tile(kc, b, c, ldc, rows, cols, start);
                // SAFETY: as in `f16_tile`; the slice lengths were checked above.
                unsafe { avx512::gemm_tile_rows(kc, a, lda, b, c, ldc, rows, cols, start) }
            }
            _ => {
                let mut panel = vec![0.0; kc * gemm::MR];
                for (p, step) in panel.chunks_exact_mut(gemm::MR).enumerate() {
                    for (r, x) in step.iter_mut().enumerate().take(rows) {
                        *x = a[r * lda + p];
                    }
                }
                self.gemm_tile(kc, &panel, b, c, ldc, rows, cols, start);
            }
        }
    }

    /// See [`matmul_t`].
    #[allow(clippy::too_many_arguments)]
    pub fn matmul_t(
        self,
        a: &[f32],
        b: &[f32],
        bias: Option<&[f32]>,
        c: &mut [f32],
        m: usize,
        k: usize,
        n: usize,
    ) {
        self.matmul_t_with(GemmEngine::Best, a, b, bias, c, m, k, n);
    }

    /// [`matmul_t`] on a chosen GEMM implementation, for benchmarks and A/B checks.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul_t_with(
        self,
        engine: GemmEngine,
        a: &[f32],
        b: &[f32],
        bias: Option<&[f32]>,
        c: &mut [f32],
        m: usize,
        k: usize,
        n: usize,
    ) {
        gemm::matmul_t(self, engine, a, b, bias, c, m, k, n);
    }

    /// See [`matmul`].
    pub fn matmul(self, a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
        gemm::matmul(self, a, b, c, m, k, n);
    }

    /// See [`matmul_t_f16`].
    #[allow(clippy::too_many_arguments)]
    pub fn matmul_t_f16(
        self,
        a: &[f32],
        b: &[f16],
        bias: Option<&[f32]>,
        c: &mut [f32],
        m: usize,
        k: usize,
        n: usize,
    ) {
        linear_f16::matmul_t_f16(self, a, b, bias, c, m, k, n);
    }

    /// See [`attention`].
    #[allow(clippy::too_many_arguments)]
    pub fn attention(
        self,
        q: MatRef,
        k: MatRef,
        v: MatRef,
        out: &mut [f32],
        n_head: usize,
        head_dim: usize,
        scale: f32,
        causal: Option<usize>,
    ) {
        attention::attention(
            self,
            q,
            &[(k, v)],
            out,
            n_head,
            n_head,
            head_dim,
            scale,
            causal,
        );
    }

    /// See [`attention_parts`].
    #[allow(clippy::too_many_arguments)]
    pub fn attention_parts<T: KvElement>(
        self,
        q: MatRef,
        parts: &[(MatRef<T>, MatRef<T>)],
        out: &mut [f32],
        n_head: usize,
        head_dim: usize,
        scale: f32,
        causal: Option<usize>,
    ) {
        attention::attention(self, q, parts, out, n_head, n_head, head_dim, scale, causal);
    }

    /// See [`grouped_attention`].
    #[allow(clippy::too_many_arguments)]
    pub fn grouped_attention(
        self,
        q: MatRef,
        k: MatRef,
        v: MatRef,
        out: &mut [f32],
        n_head: usize,
        n_kv_head: usize,
        head_dim: usize,
        scale: f32,
        causal: Option<usize>,
    ) {
        attention::attention(
            self,
            q,
            &[(k, v)],
            out,
            n_head,
            n_kv_head,
            head_dim,
            scale,
            causal,
        );
    }
}

/// The keys per row of a several-rows product: `rows_len` values of `d` per row give the
/// rows, `per_key_len` values one per (row, key). Panics unless both divide evenly.
fn many_rows_keys(rows_len: usize, d: usize, per_key_len: usize, name: &str) -> usize {
    assert!(
        d > 0 && rows_len.is_multiple_of(d),
        "{name}: rows of {d} do not fit"
    );
    let rows = rows_len / d;
    if rows == 0 {
        return 0;
    }
    assert!(
        per_key_len.is_multiple_of(rows),
        "{name}: {per_key_len} values are not {rows} rows"
    );
    per_key_len / rows
}

/// [`KvElement::rows_dots`] one row at a time: the other ISAs' path, and the reference.
fn rows_dots_by_row<T: KvElement>(
    be: Backend,
    qs: &[f32],
    d: usize,
    k: &[T],
    stride: usize,
    scores: &mut [f32],
) {
    let keys = scores.len() / (qs.len() / d);
    for (q, s) in qs.chunks_exact(d).zip(scores.chunks_exact_mut(keys)) {
        T::row_dots(be, q, k, stride, s);
    }
}

/// [`KvElement::add_weighted_rows_many`] one row at a time.
fn add_weighted_rows_by_row<T: KvElement>(
    be: Backend,
    p: &[f32],
    d: usize,
    v: &[T],
    stride: usize,
    out: &mut [f32],
) {
    let keys = p.len() / (out.len() / d);
    for (p, o) in p.chunks_exact(keys).zip(out.chunks_exact_mut(d)) {
        T::add_weighted_rows(be, p, v, stride, o);
    }
}

/// What attention's keys and values may be stored as: f32, or f16 (the decoder's
/// cross-attention keys and values, at half the memory and half the bytes read per token).
/// Its methods are [`Backend`]'s dispatch for that type; callers check the slice lengths.
pub trait KvElement: Copy + Send + Sync + sealed::Sealed {
    #[doc(hidden)]
    fn row_dots(be: Backend, q: &[f32], k: &[Self], stride: usize, scores: &mut [f32]);
    #[doc(hidden)]
    fn add_weighted_rows(be: Backend, p: &[f32], v: &[Self], stride: usize, out: &mut [f32]);
    #[doc(hidden)]
    fn rows_dots(be: Backend, qs: &[f32], d: usize, k: &[Self], stride: usize, out: &mut [f32]);
    #[doc(hidden)]
    fn add_weighted_rows_many(
        be: Backend,
        p: &[f32],
        d: usize,
        v: &[Self],
        stride: usize,
        out: &mut [f32],
    );
    /// `dst = src` as f32.
    #[doc(hidden)]
    fn widen(be: Backend, src: &[Self], dst: &mut [f32]);
    /// The view itself if it already holds f32, for the paths that read f32 only.
    #[doc(hidden)]
    fn as_f32(m: MatRef<'_, Self>) -> Option<MatRef<'_, f32>>;
}

mod sealed {
    /// Only the types [`super::KvElement`] is implemented for here.
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
}

impl KvElement for f32 {
    fn row_dots(be: Backend, q: &[f32], k: &[f32], stride: usize, scores: &mut [f32]) {
        match be.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the AVX-512 variants exist only when AVX-512 F, BW and VL were detected;
            // `Backend::row_dots` checked the length of `k`.
            Isa::Avx512 | Isa::Avx512Vnni => unsafe { avx512::row_dots(q, k, stride, scores) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: the AVX2 variants exist only when AVX2, FMA and F16C were detected;
            // `Backend::row_dots` checked the length of `k`.
            Isa::Avx2 | Isa::AvxVnni => unsafe { x86::row_dots(q, k, stride, scores) },
            _ => {
                for (j, s) in scores.iter_mut().enumerate() {
                    *s = be.dot(q, &k[j * stride..j * stride + q.len()]);
                }
            }
        }
    }

    fn add_weighted_rows(be: Backend, p: &[f32], v: &[f32], stride: usize, out: &mut [f32]) {
        match be.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `row_dots`; `Backend::add_weighted_rows` checked the length of `v`.
            Isa::Avx512 | Isa::Avx512Vnni => unsafe {
                avx512::add_weighted_rows(p, v, stride, out)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `row_dots`; `Backend::add_weighted_rows` checked the length of `v`.
            Isa::Avx2 | Isa::AvxVnni => unsafe { x86::add_weighted_rows(p, v, stride, out) },
            _ => {
                let len = out.len();
                for (j, &pj) in p.iter().enumerate() {
                    be.axpy(out, pj, &v[j * stride..j * stride + len]);
                }
            }
        }
    }

    fn rows_dots(be: Backend, qs: &[f32], d: usize, k: &[f32], stride: usize, out: &mut [f32]) {
        match be.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `row_dots`; `Backend::rows_dots` checked the shapes.
            Isa::Avx512 | Isa::Avx512Vnni => unsafe { avx512::rows_dots(qs, d, k, stride, out) },
            _ => rows_dots_by_row(be, qs, d, k, stride, out),
        }
    }

    fn add_weighted_rows_many(
        be: Backend,
        p: &[f32],
        d: usize,
        v: &[f32],
        stride: usize,
        out: &mut [f32],
    ) {
        match be.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `row_dots`; `Backend::add_weighted_rows_many` checked the shapes.
            Isa::Avx512 | Isa::Avx512Vnni => unsafe {
                avx512::add_weighted_rows_many(p, d, v, stride, out)
            },
            _ => add_weighted_rows_by_row(be, p, d, v, stride, out),
        }
    }

    fn widen(_: Backend, src: &[f32], dst: &mut [f32]) {
        dst.copy_from_slice(src);
    }

    fn as_f32(m: MatRef<'_, f32>) -> Option<MatRef<'_, f32>> {
        Some(m)
    }
}

impl KvElement for f16 {
    fn row_dots(be: Backend, q: &[f32], k: &[f16], stride: usize, scores: &mut [f32]) {
        match be.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as for f32.
            Isa::Avx512 | Isa::Avx512Vnni => unsafe { avx512::row_dots_f16(q, k, stride, scores) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as for f32.
            Isa::Avx2 | Isa::AvxVnni => unsafe { x86::row_dots_f16(q, k, stride, scores) },
            _ => {
                for (j, s) in scores.iter_mut().enumerate() {
                    *s = be.dot_f16(&k[j * stride..j * stride + q.len()], q);
                }
            }
        }
    }

    fn add_weighted_rows(be: Backend, p: &[f32], v: &[f16], stride: usize, out: &mut [f32]) {
        match be.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as for f32.
            Isa::Avx512 | Isa::Avx512Vnni => unsafe {
                avx512::add_weighted_rows_f16(p, v, stride, out)
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as for f32.
            Isa::Avx2 | Isa::AvxVnni => unsafe { x86::add_weighted_rows_f16(p, v, stride, out) },
            _ => {
                let len = out.len();
                let mut row = vec![0.0; len];
                for (j, &pj) in p.iter().enumerate() {
                    be.f16_to_f32(&v[j * stride..j * stride + len], &mut row);
                    be.axpy(out, pj, &row);
                }
            }
        }
    }

    fn rows_dots(be: Backend, qs: &[f32], d: usize, k: &[f16], stride: usize, out: &mut [f32]) {
        match be.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `row_dots`; `Backend::rows_dots` checked the shapes.
            Isa::Avx512 | Isa::Avx512Vnni => unsafe {
                avx512::rows_dots_f16(qs, d, k, stride, out)
            },
            _ => rows_dots_by_row(be, qs, d, k, stride, out),
        }
    }

    fn add_weighted_rows_many(
        be: Backend,
        p: &[f32],
        d: usize,
        v: &[f16],
        stride: usize,
        out: &mut [f32],
    ) {
        match be.0 {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as in `row_dots`; `Backend::add_weighted_rows_many` checked the shapes.
            Isa::Avx512 | Isa::Avx512Vnni => unsafe {
                avx512::add_weighted_rows_many_f16(p, d, v, stride, out)
            },
            _ => add_weighted_rows_by_row(be, p, d, v, stride, out),
        }
    }

    fn widen(be: Backend, src: &[f16], dst: &mut [f32]) {
        be.f16_to_f32(src, dst);
    }

    fn as_f32(_: MatRef<'_, f16>) -> Option<MatRef<'_, f32>> {
        None
    }
}

#[cfg(target_arch = "x86_64")]
fn available_isas() -> Vec<Isa> {
    let mut isas = vec![Isa::Scalar];
    let avx2 = is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c");
    if !avx2 {
        return isas;
    }
    isas.push(Isa::Avx2);
    if is_x86_feature_detected!("avxvnni") {
        isas.push(Isa::AvxVnni);
    }
    let avx512 = is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl");
    if !avx512 {
        return isas;
    }
    isas.push(Isa::Avx512);
    if is_x86_feature_detected!("avx512vnni") {
        isas.push(Isa::Avx512Vnni);
    }
    isas
}

#[cfg(target_arch = "aarch64")]
fn available_isas() -> Vec<Isa> {
    let mut isas = vec![Isa::Scalar, Isa::Neon];
    if std::arch::is_aarch64_feature_detected!("dotprod") {
        isas.push(Isa::NeonDotprod);
    }
    isas
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn available_isas() -> Vec<Isa> {
    vec![Isa::Scalar]
}

/// The backend the free functions below use: [`Backend::detect`].
pub fn backend() -> Backend {
    Backend::detect()
}

/// `C[m×n] = A[m×k] · B[n×k]ᵀ (+ bias[n] broadcast over rows)`. All row-major contiguous.
///
/// B is a weight matrix in PyTorch layout `[out_features, in_features]`. Built for large `m`
/// (the encoder, m up to 1500); multithreaded. Panics unless `a.len() == m*k`,
/// `b.len() == n*k`, `c.len() == m*n` and `bias.len() == n`.
pub fn matmul_t(
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    c: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
) {
    backend().matmul_t(a, b, bias, c, m, k, n);
}

/// `C[m×n] = A[m×k] · B[k×n]`, row-major contiguous. Multithreaded.
/// Panics unless `a.len() == m*k`, `b.len() == k*n` and `c.len() == m*n`.
pub fn matmul(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    backend().matmul(a, b, c, m, k, n);
}

/// Same as [`matmul_t`] with f16 weights, built for small `m` (the decoder, 1..~32 rows)
/// where the cost is streaming the weights once: each weight row is read once and dotted with
/// all `m` rows of A. Multithreaded over `n`. Large `m` takes a converted-weights GEMM path.
/// Panics on the same shape mismatches as [`matmul_t`].
pub fn matmul_t_f16(
    a: &[f32],
    b: &[f16],
    bias: Option<&[f32]>,
    c: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
) {
    backend().matmul_t_f16(a, b, bias, c, m, k, n);
}

/// Whether [`prefetch_passing`] pays on this CPU. Measured on the decoder step (tiny.en, the
/// logits' 40 MB read this way): on AMD EPYC it took 1.6-1.9 ms to 1.5-1.7; on an Intel Xeon
/// it took 1.7-1.8 ms to 4.7-5.0 (Intel's non-temporal prefetch fills one cache level and
/// the hardware's own streaming falls away), so only AMD's x86 uses it.
fn passing_prefetch_pays() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static AMD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *AMD.get_or_init(|| {
            let id = std::arch::x86_64::__cpuid(0);
            let vendor: Vec<u8> = [id.ebx, id.edx, id.ecx]
                .iter()
                .flat_map(|r| r.to_le_bytes())
                .collect();
            vendor == b"AuthenticAMD"
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// Asks the CPU for `data` ahead of its use without keeping it in the outer caches: x86's
/// non-temporal prefetch, one per cache line; nothing elsewhere. A hint only: the values read
/// later are the same either way.
fn prefetch_passing<T>(data: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        let (start, bytes) = (data.as_ptr() as *const i8, std::mem::size_of_val(data));
        for offset in (0..bytes).step_by(64) {
            // SAFETY: a prefetch never faults and reads nothing into the program; the address
            // lies inside `data` (SSE is part of x86_64).
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_NTA }>(
                    start.add(offset),
                )
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = data;
}

/// `Σ a[i]·b[i]`. Panics if the lengths differ.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    backend().dot(a, b)
}

/// `Σ a[i]·b[i]` with `a` in f16. Panics if the lengths differ.
pub fn dot_f16(a: &[f16], b: &[f32]) -> f32 {
    backend().dot_f16(a, b)
}

/// In place, each row of `width` elements: (x - mean)/sqrt(var + eps) * gamma + beta
/// (biased variance, as PyTorch's `nn.LayerNorm`). Panics unless `width > 0`, `x.len()` is a
/// multiple of `width` and `gamma`, `beta` have `width` elements.
pub fn layer_norm(x: &mut [f32], gamma: &[f32], beta: &[f32], width: usize, eps: f32) {
    backend().layer_norm(x, gamma, beta, width, eps);
}

/// Exact (erf-based) GELU in place, as PyTorch's `nn.GELU()` default. Absolute error below
/// 1e-6 · max(1, |x|) against the libm-erf formula.
pub fn gelu(x: &mut [f32]) {
    backend().gelu(x);
}

/// Numerically stable softmax in place over one row (a row of all `-inf` gives NaN, as in
/// PyTorch).
pub fn softmax(x: &mut [f32]) {
    backend().softmax(x);
}

/// `x += y`, elementwise. Panics if the lengths differ.
/// `ln Σ e^x[i]`, computed from the maximum so that it cannot overflow; −∞ when every
/// value is −∞ (or there are none). Lanes that are −∞ add nothing (below 1e-38 each).
pub fn log_sum_exp(x: &[f32]) -> f32 {
    backend().log_sum_exp(x)
}

pub fn add_assign(x: &mut [f32], y: &[f32]) {
    backend().add_assign(x, y);
}

/// Bulk f16 → f32 conversion (F16C on x86, FCVTL on aarch64). Panics if the lengths differ.
pub fn f16_to_f32(src: &[f16], dst: &mut [f32]) {
    backend().f16_to_f32(src, dst);
}

/// Multi-head scaled dot-product attention.
///
/// `q`: `[tq, n_head*head_dim]` view; `k`, `v`: `[tk, n_head*head_dim]` views (row strides
/// allowed, so fused q|k|v buffers can be read in place); `out`: `[tq, n_head*head_dim]`
/// contiguous. Scores are `(q_h · k_hᵀ) * scale`, `scale > 0`. `causal: Some(past)` lets query
/// row `i` attend key `j` only if `j <= past + i` (decoder self-attention over a KV cache
/// holding `past` earlier positions); `None` is full attention.
///
/// Multithreaded over (head × block of query rows); memory stays bounded by one block of
/// scores per task. Panics on inconsistent shapes.
#[allow(clippy::too_many_arguments)]
pub fn attention(
    q: MatRef,
    k: MatRef,
    v: MatRef,
    out: &mut [f32],
    n_head: usize,
    head_dim: usize,
    scale: f32,
    causal: Option<usize>,
) {
    backend().attention(q, k, v, out, n_head, head_dim, scale, causal);
}

/// [`attention`] over keys and values given in parts, read in order as one `[tk, n_head *
/// head_dim]` pair (`tk` the parts' rows together): a prompt's keys shared by several
/// sequences, then one sequence's own. The result is exactly that of the parts joined. Keys
/// and values may be f16 (see [`KvElement`]). Panics on inconsistent shapes.
#[allow(clippy::too_many_arguments)]
pub fn attention_parts<T: KvElement>(
    q: MatRef,
    parts: &[(MatRef<T>, MatRef<T>)],
    out: &mut [f32],
    n_head: usize,
    head_dim: usize,
    scale: f32,
    causal: Option<usize>,
) {
    backend().attention_parts(q, parts, out, n_head, head_dim, scale, causal);
}

/// Grouped-query attention: as [`attention`], but `k` and `v` hold `n_kv_head` heads
/// (`[tk, n_kv_head*head_dim]`) and query head `h` attends key/value head
/// `h / (n_head / n_kv_head)`. Panics unless `n_kv_head` divides `n_head`.
#[allow(clippy::too_many_arguments)]
pub fn grouped_attention(
    q: MatRef,
    k: MatRef,
    v: MatRef,
    out: &mut [f32],
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    scale: f32,
    causal: Option<usize>,
) {
    backend().grouped_attention(q, k, v, out, n_head, n_kv_head, head_dim, scale, causal);
}

#[cfg(test)]
mod tests {
    use super::test_util::{assert_close, dot_tol, simd_backends, RandomVec, Rng, ODD_SIZES};
    use super::*;

    #[test]
    fn dot_matches_scalar() {
        for be in simd_backends() {
            let mut rng = Rng::new(1);
            for n in ODD_SIZES {
                let (a, b) = (rng.vec(n, 1.0), rng.vec(n, 1.0));
                let want = Backend::SCALAR.dot(&a, &b);
                assert_close(&[be.dot(&a, &b)], &[want], dot_tol(n));
            }
        }
    }

    #[test]
    fn dot_f16_matches_scalar() {
        for be in simd_backends() {
            let mut rng = Rng::new(2);
            for n in ODD_SIZES {
                let (a, b) = (rng.vec_f16(n, 1.0), rng.vec(n, 1.0));
                let want = Backend::SCALAR.dot_f16(&a, &b);
                assert_close(&[be.dot_f16(&a, &b)], &[want], dot_tol(n));
            }
        }
    }

    #[test]
    fn axpy_and_add_match_scalar() {
        for be in simd_backends() {
            let mut rng = Rng::new(3);
            for n in ODD_SIZES {
                let (x, y) = (rng.vec(n, 1.0), rng.vec(n, 1.0));
                let (mut want, mut got) = (x.clone(), x.clone());
                Backend::SCALAR.axpy(&mut want, 0.37, &y);
                be.axpy(&mut got, 0.37, &y);
                assert_close(&got, &want, 1e-6);
                let mut sum = x.clone();
                be.add_assign(&mut sum, &y);
                let exact: Vec<f32> = x.iter().zip(&y).map(|(a, b)| a + b).collect();
                assert_eq!(sum, exact);
            }
        }
    }

    #[test]
    fn f16_to_f32_is_exact() {
        for be in simd_backends() {
            let mut rng = Rng::new(4);
            for n in ODD_SIZES {
                let mut src = rng.vec_f16(n, 1000.0);
                if n > 2 {
                    src[0] = f16::INFINITY;
                    src[1] = f16::MIN_POSITIVE_SUBNORMAL;
                }
                let want: Vec<f32> = src.iter().map(|h| h.to_f32()).collect();
                let mut got = vec![0.0; n];
                be.f16_to_f32(&src, &mut got);
                assert_eq!(got, want);
            }
        }
    }

    #[test]
    fn softmax_matches_scalar_and_sums_to_one() {
        for be in simd_backends() {
            let mut rng = Rng::new(5);
            for n in ODD_SIZES.into_iter().filter(|&n| n > 0) {
                let x = rng.vec(n, 20.0);
                for scale in [1.0, 0.125] {
                    let (mut want, mut got) = (x.clone(), x.clone());
                    Backend::SCALAR.softmax_scaled(&mut want, scale);
                    be.softmax_scaled(&mut got, scale);
                    assert_close(&got, &want, 1e-5);
                    let sum: f32 = got.iter().sum();
                    assert!((sum - 1.0).abs() < 1e-5, "sum {sum}");
                }
            }
        }
    }

    #[test]
    fn softmax_treats_neg_infinity_as_masked() {
        let mut x = [0.0, f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY, 0.0];
        softmax(&mut x);
        assert_close(&x, &[1.0 / 3.0, 0.0, 1.0 / 3.0, 0.0, 1.0 / 3.0], 1e-6);
    }

    /// Large inputs are split over the pool's threads; every value must be what the same
    /// backend gives a row (or a few values) at a time.
    #[test]
    fn bulk_elementwise_ops_split_over_threads_give_the_same_values() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let mut rng = Rng::new(12);
        let width = 384;
        let x = rng.vec(PARALLEL_MIN_VALUES * 3 + width * 7, 3.0);
        let y = rng.vec(x.len(), 3.0);
        let (gamma, beta) = (rng.vec(width, 1.5), rng.vec(width, 0.5));
        for be in Backend::available() {
            let (mut want_gelu, mut want_ln, mut want_sum) = (x.clone(), x.clone(), x.clone());
            for (((g, l), s), yc) in want_gelu
                .chunks_mut(width)
                .zip(want_ln.chunks_mut(width))
                .zip(want_sum.chunks_mut(width))
                .zip(y.chunks(width))
            {
                be.gelu(g);
                be.layer_norm(l, &gamma, &beta, width, 1e-5);
                be.add_assign(s, yc);
            }
            let (mut gelu, mut ln, mut sum) = (x.clone(), x.clone(), x.clone());
            pool.install(|| {
                be.gelu(&mut gelu);
                be.layer_norm(&mut ln, &gamma, &beta, width, 1e-5);
                be.add_assign(&mut sum, &y);
            });
            assert_eq!(gelu, want_gelu, "{}", be.name());
            assert_eq!(ln, want_ln, "{}", be.name());
            assert_eq!(sum, want_sum, "{}", be.name());
        }
    }

    #[test]
    fn log_sum_exp_matches_scalar_and_f64() {
        let mut rng = Rng::new(9);
        let mut rows: Vec<Vec<f32>> = ODD_SIZES
            .into_iter()
            .filter(|&n| n > 0)
            .map(|n| rng.vec(n, 20.0))
            .collect();
        // A vocabulary-sized row of logits, half of them masked as the decoding rules do.
        let mut logits = rng.vec(51865, 15.0);
        logits
            .iter_mut()
            .step_by(2)
            .for_each(|v| *v = f32::NEG_INFINITY);
        rows.push(logits);
        for x in &rows {
            let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let sum: f64 = x.iter().map(|&v| (v as f64 - max).exp()).sum();
            let want = (max + sum.ln()) as f32;
            for be in Backend::available() {
                let got = be.log_sum_exp(x);
                assert!(
                    (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                    "{}: {got} vs {want} (n = {})",
                    be.name(),
                    x.len()
                );
            }
        }
    }

    #[test]
    fn log_sum_exp_of_nothing_possible_is_neg_infinity() {
        for be in Backend::available() {
            assert_eq!(be.log_sum_exp(&[]), f32::NEG_INFINITY);
            assert_eq!(be.log_sum_exp(&[f32::NEG_INFINITY; 21]), f32::NEG_INFINITY);
        }
    }

    #[test]
    fn layer_norm_matches_scalar() {
        for be in simd_backends() {
            let mut rng = Rng::new(6);
            for width in ODD_SIZES.into_iter().filter(|&n| n > 0) {
                // An offset mean checks that the variance is taken around the mean.
                let x: Vec<f32> = rng.vec(3 * width, 2.0).iter().map(|v| v + 5.0).collect();
                let (gamma, beta) = (rng.vec(width, 1.5), rng.vec(width, 0.5));
                let (mut want, mut got) = (x.clone(), x);
                Backend::SCALAR.layer_norm(&mut want, &gamma, &beta, width, 1e-5);
                be.layer_norm(&mut got, &gamma, &beta, width, 1e-5);
                assert_close(&got, &want, 1e-4);
            }
        }
    }

    fn gelu_exact(x: f32) -> f64 {
        let x = x as f64;
        0.5 * x * (1.0 + libm::erf(x / std::f64::consts::SQRT_2))
    }

    #[test]
    fn gelu_is_accurate_on_every_backend() {
        let mut x: Vec<f32> = (-12_000..=12_000).map(|i| i as f32 * 1e-3).collect();
        x.extend([-100.0, -30.0, 30.0, 100.0, 1e-30, -1e-30, 0.0]);
        for be in Backend::available() {
            let mut y = x.clone();
            be.gelu(&mut y);
            for (&xi, &yi) in x.iter().zip(&y) {
                let err = (yi as f64 - gelu_exact(xi)).abs();
                let tol = 1e-6 * (xi.abs() as f64).max(1.0);
                assert!(err <= tol, "{}: gelu({xi}) = {yi}, err {err}", be.name());
            }
        }
    }

    #[test]
    fn gelu_matches_scalar_on_ragged_lengths() {
        for be in simd_backends() {
            let mut rng = Rng::new(7);
            for n in ODD_SIZES {
                let x = rng.vec(n, 6.0);
                let (mut want, mut got) = (x.clone(), x);
                Backend::SCALAR.gelu(&mut want);
                be.gelu(&mut got);
                assert_close(&got, &want, 1e-6);
            }
        }
    }

    /// (rows, row length, stride) of the row kernels' cases.
    const ROW_CASES: [(usize, usize, usize); 6] = [
        (0, 5, 5),
        (1, 64, 64),
        (7, 64, 384),
        (37, 64, 384),
        (1500, 64, 130),
        (9, 100, 100),
    ];

    /// `row_dots` on every backend against the scalar path, keys in f32 and in f16.
    #[test]
    fn row_dots_match_scalar() {
        let mut rng = Rng::new(9);
        for (rows, len, stride) in ROW_CASES {
            let k = rng.vec(rows.max(1) * stride, 1.0);
            let k16: Vec<f16> = k.iter().map(|&x| f16::from_f32(x)).collect();
            let q = rng.vec(len, 1.0);
            let mut want = vec![f32::NAN; rows];
            let mut want16 = vec![f32::NAN; rows];
            Backend::SCALAR.row_dots(&q, &k, stride, &mut want);
            Backend::SCALAR.row_dots(&q, &k16, stride, &mut want16);
            for be in simd_backends() {
                let mut got = vec![f32::NAN; rows];
                be.row_dots(&q, &k, stride, &mut got);
                assert_close(&got, &want, dot_tol(len));
                be.row_dots(&q, &k16, stride, &mut got);
                assert_close(&got, &want16, dot_tol(len));
            }
        }
    }

    /// Query rows taken together score and sum exactly as one at a time, on every backend,
    /// keys and values in f32 and in f16 (the beam's cross-attention; the one-row kernels
    /// are checked against the scalar path above).
    #[test]
    fn several_rows_at_once_match_one_at_a_time() {
        let mut rng = Rng::new(12);
        for (keys, d, stride) in ROW_CASES {
            let kv = rng.vec(keys.max(1) * stride, 1.0);
            let kv16: Vec<f16> = kv.iter().map(|&x| f16::from_f32(x)).collect();
            for n in [1, 2, 5, 8, 11] {
                let qs = rng.vec(n * d, 1.0);
                let p = rng.vec(n * keys, 1.0);
                let start = rng.vec(n * d, 1.0);
                for be in std::iter::once(Backend::SCALAR).chain(simd_backends()) {
                    check_rows_together(be, &qs, d, &kv, stride, &p, &start);
                    check_rows_together(be, &qs, d, &kv16, stride, &p, &start);
                }
            }
        }
    }

    fn check_rows_together<T: KvElement>(
        be: Backend,
        qs: &[f32],
        d: usize,
        kv: &[T],
        stride: usize,
        p: &[f32],
        start: &[f32],
    ) {
        let n = qs.len() / d;
        let keys = p.len() / n;
        let mut want = vec![f32::NAN; n * keys];
        for (q, s) in qs.chunks_exact(d).zip(want.chunks_exact_mut(keys.max(1))) {
            be.row_dots(q, kv, stride, s);
        }
        let mut got = vec![f32::NAN; n * keys];
        be.rows_dots(qs, d, kv, stride, &mut got);
        assert_eq!(got, want, "{be:?}, {n} rows of {d}, {keys} keys");

        let mut want = start.to_vec();
        for (p, o) in p.chunks_exact(keys.max(1)).zip(want.chunks_exact_mut(d)) {
            be.add_weighted_rows(&p[..keys], kv, stride, o);
        }
        let mut got = start.to_vec();
        be.add_weighted_rows_many(p, d, kv, stride, &mut got);
        assert_eq!(got, want, "{be:?}, {n} rows of {d}, {keys} keys");
    }

    /// `add_weighted_rows` on every backend against the scalar path, values in f32 and f16,
    /// adding to what `out` holds.
    #[test]
    fn add_weighted_rows_match_scalar() {
        let mut rng = Rng::new(8);
        for (rows, len, stride) in ROW_CASES {
            let v = rng.vec(rows.max(1) * stride, 1.0);
            let v16: Vec<f16> = v.iter().map(|&x| f16::from_f32(x)).collect();
            let p = rng.vec(rows, 1.0);
            let start = rng.vec(len, 1.0);
            let mut want = start.clone();
            let mut want16 = start.clone();
            Backend::SCALAR.add_weighted_rows(&p, &v, stride, &mut want);
            Backend::SCALAR.add_weighted_rows(&p, &v16, stride, &mut want16);
            for be in simd_backends() {
                let mut got = start.clone();
                be.add_weighted_rows(&p, &v, stride, &mut got);
                assert_close(&got, &want, dot_tol(rows));
                let mut got = start.clone();
                be.add_weighted_rows(&p, &v16, stride, &mut got);
                assert_close(&got, &want16, dot_tol(rows));
            }
        }
    }

    /// Keys and value rows split over two calls give exactly what one call gives, on every
    /// backend: what lets beams share a prompt's keys and values.
    #[test]
    fn row_kernels_split_exactly() {
        let mut rng = Rng::new(10);
        let (rows, len, stride) = (23, 64, 96);
        let k = rng.vec(rows * stride, 1.0);
        let p = rng.vec(rows, 1.0);
        let q = rng.vec(len, 1.0);
        for be in Backend::available() {
            let mut whole = vec![0.0; rows];
            be.row_dots(&q, &k, stride, &mut whole);
            let mut sum = vec![0.0; len];
            be.add_weighted_rows(&p, &k, stride, &mut sum);
            for cut in [1, 2, 3, 5, 6, 22] {
                let mut split = vec![0.0; rows];
                let (a, b) = split.split_at_mut(cut);
                be.row_dots(&q, &k, stride, a);
                be.row_dots(&q, &k[cut * stride..], stride, b);
                assert_eq!(split, whole, "{} row_dots cut at {cut}", be.name());
                let mut split_sum = vec![0.0; len];
                be.add_weighted_rows(&p[..cut], &k, stride, &mut split_sum);
                be.add_weighted_rows(&p[cut..], &k[cut * stride..], stride, &mut split_sum);
                assert_eq!(
                    split_sum,
                    sum,
                    "{} add_weighted_rows cut at {cut}",
                    be.name()
                );
            }
        }
    }

    /// Outside AVX-512, which has kernels of its own, attention's row kernels compute exactly
    /// a dot product per key and an axpy per value row: the rows asked for ahead, and AVX2's
    /// sums held in registers, change no bit of what the decoder computed before them.
    #[test]
    fn row_kernels_are_dots_and_axpys() {
        let mut rng = Rng::new(13);
        for (rows, len, stride) in ROW_CASES {
            let kv = rng.vec(rows.max(1) * stride, 1.0);
            let kv16: Vec<f16> = kv.iter().map(|&x| f16::from_f32(x)).collect();
            let (q, p, start) = (rng.vec(len, 1.0), rng.vec(rows, 1.0), rng.vec(len, 1.0));
            #[cfg(target_arch = "x86_64")]
            let has_own = |be: &Backend| matches!(be.0, Isa::Avx512 | Isa::Avx512Vnni);
            #[cfg(not(target_arch = "x86_64"))]
            let has_own = |_: &Backend| false;
            for be in Backend::available().into_iter().filter(|be| !has_own(be)) {
                let name = be.name();
                let rows_of = |j: usize| j * stride..j * stride + len;
                let mut got = vec![f32::NAN; rows];
                be.row_dots(&q, &kv, stride, &mut got);
                let want: Vec<f32> = (0..rows).map(|j| be.dot(&q, &kv[rows_of(j)])).collect();
                assert_eq!(got, want, "{name} row_dots, {rows} rows of {len}");
                be.row_dots(&q, &kv16, stride, &mut got);
                let want: Vec<f32> = (0..rows)
                    .map(|j| be.dot_f16(&kv16[rows_of(j)], &q))
                    .collect();
                assert_eq!(got, want, "{name} row_dots f16, {rows} rows of {len}");

                let (mut got, mut want) = (start.clone(), start.clone());
                be.add_weighted_rows(&p, &kv, stride, &mut got);
                for (j, &pj) in p.iter().enumerate() {
                    be.axpy(&mut want, pj, &kv[rows_of(j)]);
                }
                assert_eq!(got, want, "{name} add_weighted_rows, {rows} rows of {len}");
                let (mut got, mut want) = (start.clone(), start.clone());
                be.add_weighted_rows(&p, &kv16, stride, &mut got);
                let mut row = vec![0.0; len];
                for (j, &pj) in p.iter().enumerate() {
                    be.f16_to_f32(&kv16[rows_of(j)], &mut row);
                    be.axpy(&mut want, pj, &row);
                }
                assert_eq!(
                    got, want,
                    "{name} add_weighted_rows f16, {rows} rows of {len}"
                );
            }
        }
    }

    #[test]
    fn available_backends_follow_the_cpu() {
        let names: Vec<&str> = Backend::available().iter().map(|b| b.name()).collect();
        assert_eq!(names[0], "scalar");
        if std::env::var_os("VOXD_KERNELS").is_none() {
            assert_eq!(Backend::detect().name(), *names.last().unwrap());
        }
        #[cfg(target_arch = "x86_64")]
        {
            let has = |f: bool, name: &str| assert_eq!(f, names.contains(&name), "{name}");
            let avx2 = is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c");
            let avx512 = avx2
                && is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vl");
            has(avx2, "avx2");
            has(avx2 && is_x86_feature_detected!("avxvnni"), "avx-vnni");
            has(avx512, "avx512");
            has(
                avx512 && is_x86_feature_detected!("avx512vnni"),
                "avx512-vnni",
            );
        }
        #[cfg(target_arch = "aarch64")]
        assert_eq!(
            std::arch::is_aarch64_feature_detected!("dotprod"),
            names.contains(&"neon-dotprod")
        );
    }

    #[test]
    #[should_panic(expected = "length mismatch")]
    fn dot_rejects_mismatched_lengths() {
        dot(&[1.0, 2.0], &[1.0]);
    }
}
