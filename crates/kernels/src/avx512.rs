//! AVX-512 (F, BW, VL) versions of the kernels that carry the models' products: the f32 GEMM
//! tile (the encoder), the f16 tile and the f16 dot product (the decoder), and the f32 dot
//! product; and of the encoder's elementwise work, softmax and GELU. Sixteen lanes per register halve the instructions of the AVX2 code in `x86.rs`,
//! and mask registers handle ragged edges without a copy.
//!
//! # Safety
//!
//! Every function here is `#[target_feature(enable = "avx512f,avx512bw,avx512vl,...")]` and
//! therefore `unsafe`: `mod.rs` calls them only through `Isa::Avx512` or `Isa::Avx512Vnni`,
//! which exist only after detection, and only after checking the slice lengths that the
//! raw-pointer loops rely on.

use super::gemm::{Start, MR, NR};
use super::prefetch::RowsAhead;
use super::scalar::{ERF_A, ERF_P};
use half::f16;
use std::arch::x86_64::*;

const LANES: usize = 16;

/// The first `n` (≤ 16) lanes.
#[inline(always)]
fn first_lanes(n: usize) -> __mmask16 {
    ((1u32 << n) - 1) as __mmask16
}

/// Values that load into sixteen f32 lanes.
trait Wide: Copy {
    /// The first `lanes` values at `p` widened to f32, zeros in the other lanes.
    unsafe fn load(p: *const Self, lanes: __mmask16) -> __m512;
}

impl Wide for f32 {
    #[inline(always)]
    unsafe fn load(p: *const f32, lanes: __mmask16) -> __m512 {
        _mm512_maskz_loadu_ps(lanes, p)
    }
}

impl Wide for f16 {
    #[inline(always)]
    unsafe fn load(p: *const f16, lanes: __mmask16) -> __m512 {
        _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(lanes, p as *const i16))
    }
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_wide(a, b)
}

#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) unsafe fn dot_f16(a: &[f16], b: &[f32]) -> f32 {
    dot_wide(a, b)
}

/// `Σ a[i]·b[i]` for equal lengths (checked by the caller), in four accumulators that hide
/// the FMA latency.
#[inline(always)]
unsafe fn dot_wide<T: Wide>(a: &[T], b: &[f32]) -> f32 {
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let all = first_lanes(LANES);
    let mut acc = [_mm512_setzero_ps(); 4];
    let mut i = 0;
    while i + 4 * LANES <= n {
        for (j, s) in acc.iter_mut().enumerate() {
            let o = i + j * LANES;
            *s = _mm512_fmadd_ps(T::load(pa.add(o), all), _mm512_loadu_ps(pb.add(o)), *s);
        }
        i += 4 * LANES;
    }
    while i < n {
        let lanes = first_lanes(LANES.min(n - i));
        let x = T::load(pa.add(i), lanes);
        acc[0] = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(lanes, pb.add(i)), acc[0]);
        i += LANES;
    }
    let sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
    _mm512_reduce_add_ps(sum)
}

/// `out[r][c] = a[r] · b[c]` for `R` rows of `a` (f32) and `C` rows of `b` (f16), all of length
/// `k`: the AVX2 tile's plan with sixteen lanes, the tail done under a mask.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) unsafe fn f16_tile<const R: usize, const C: usize>(
    a: &[f32],
    b: &[f16],
    k: usize,
) -> [[f32; C]; R] {
    assert!(a.len() >= R * k && b.len() >= C * k);
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [[_mm512_setzero_ps(); C]; R];
    let body = k - k % LANES;
    let mut p = 0;
    while p < body {
        f16_step(pa, pb, k, p, first_lanes(LANES), &mut acc);
        p += LANES;
    }
    if body < k {
        f16_step(pa, pb, k, body, first_lanes(k - body), &mut acc);
    }
    let mut out = [[0.0; C]; R];
    for (o_r, acc_r) in out.iter_mut().zip(&acc) {
        for (o, &s) in o_r.iter_mut().zip(acc_r) {
            *o = _mm512_reduce_add_ps(s);
        }
    }
    out
}

/// One step of `f16_tile`: the `lanes` values from `p` on of every row.
#[inline(always)]
unsafe fn f16_step<const R: usize, const C: usize>(
    pa: *const f32,
    pb: *const f16,
    k: usize,
    p: usize,
    lanes: __mmask16,
    acc: &mut [[__m512; C]; R],
) {
    let mut bv = [_mm512_setzero_ps(); C];
    for (c, v) in bv.iter_mut().enumerate() {
        *v = f16::load(pb.add(c * k + p), lanes);
    }
    for (r, acc_r) in acc.iter_mut().enumerate() {
        let av = f32::load(pa.add(r * k + p), lanes);
        for (s, &w) in acc_r.iter_mut().zip(&bv) {
            *s = _mm512_fmadd_ps(av, w, *s);
        }
    }
}

/// C[rows×cols] += A·B for one register tile of the blocked GEMM: 6 rows × two B micro-panels
/// (32 columns), or one when `cols` ≤ 16; `a` and `b` are packed micro-panels, `b`'s two
/// halves one panel each (see `Backend::gemm_tile`, which checks the slice lengths).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) unsafe fn gemm_tile(
    kc: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    ldc: usize,
    rows: usize,
    cols: usize,
    start: Start,
) {
    tile(kc, PanelA(a.as_ptr()), b, c, ldc, rows, cols, start)
}

/// [`gemm_tile`] with A's `rows` rows read in place, row stride `lda` (see
/// `Backend::gemm_tile_rows`, which checks the slice lengths).
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) unsafe fn gemm_tile_rows(
    kc: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    c: &mut [f32],
    ldc: usize,
    rows: usize,
    cols: usize,
    start: Start,
) {
    let starts = std::array::from_fn(|r| a.as_ptr().add(r.min(rows - 1) * lda));
    tile(kc, RowsA(starts), b, c, ldc, rows, cols, start)
}

/// Where a register tile's A values come from.
trait TileA: Copy {
    /// A's value at depth step `p` of tile row `r`.
    unsafe fn at(self, p: usize, r: usize) -> f32;
}

/// A packed micro-panel: [`MR`] values per depth step.
#[derive(Clone, Copy)]
struct PanelA(*const f32);

impl TileA for PanelA {
    #[inline(always)]
    unsafe fn at(self, p: usize, r: usize) -> f32 {
        *self.0.add(p * MR + r)
    }
}

/// The rows of a row-major matrix, where each starts: attention's probabilities, which
/// packing would only copy. A tile of fewer rows repeats its last (those sums are not
/// stored).
#[derive(Clone, Copy)]
struct RowsA([*const f32; MR]);

impl TileA for RowsA {
    #[inline(always)]
    unsafe fn at(self, p: usize, r: usize) -> f32 {
        *self.0[r].add(p)
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn tile<A: TileA>(
    kc: usize,
    a: A,
    b: &[f32],
    c: &mut [f32],
    ldc: usize,
    rows: usize,
    cols: usize,
    start: Start,
) {
    const { assert!(NR == LANES) };
    let pc = c.as_mut_ptr();
    // As in the AVX2 tile: C is fetched while the depth loop runs.
    for r in 0..rows {
        _mm_prefetch::<_MM_HINT_T0>(pc.add(r * ldc) as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(pc.add(r * ldc + cols - 1) as *const i8);
    }
    let sums = if cols > NR {
        two_panels(kc, a, b.as_ptr(), b.as_ptr().add(b.len() / 2))
    } else {
        [one_panel(kc, a, b.as_ptr()), [_mm512_setzero_ps(); MR]]
    };
    for (half, sums) in sums.iter().enumerate() {
        let width = cols.saturating_sub(half * NR).min(NR);
        if width == 0 {
            break;
        }
        let lanes = first_lanes(width);
        for (r, &sum) in sums.iter().enumerate().take(rows) {
            let at = pc.add(r * ldc + half * NR);
            let old = match start {
                Start::Held => _mm512_maskz_loadu_ps(lanes, at),
                Start::Zero => _mm512_setzero_ps(),
                Start::Row(init) => _mm512_maskz_loadu_ps(lanes, init.as_ptr().add(half * NR)),
            };
            _mm512_mask_storeu_ps(at, lanes, _mm512_add_ps(old, sum));
        }
    }
}

/// Six rows × two panels: per depth step two B vectors, six broadcast A values and twelve
/// FMAs into twelve accumulators, enough to keep both FMA pipes busy.
#[inline(always)]
unsafe fn two_panels<A: TileA>(
    kc: usize,
    a: A,
    pb: *const f32,
    pb1: *const f32,
) -> [[__m512; MR]; 2] {
    let (mut left, mut right) = ([_mm512_setzero_ps(); MR], [_mm512_setzero_ps(); MR]);
    for p in 0..kc {
        let b0 = _mm512_loadu_ps(pb.add(p * NR));
        let b1 = _mm512_loadu_ps(pb1.add(p * NR));
        for (r, (l, rt)) in left.iter_mut().zip(&mut right).enumerate() {
            let av = _mm512_set1_ps(a.at(p, r));
            *l = _mm512_fmadd_ps(av, b0, *l);
            *rt = _mm512_fmadd_ps(av, b1, *rt);
        }
    }
    [left, right]
}

/// Six rows × one panel (the last, narrow column block). A row is one register, so six FMAs
/// per depth step would wait on their own latency: even and odd depth steps go to separate
/// accumulators, added at the end.
#[inline(always)]
unsafe fn one_panel<A: TileA>(kc: usize, a: A, pb: *const f32) -> [__m512; MR] {
    let mut even = [_mm512_setzero_ps(); MR];
    let mut odd = [_mm512_setzero_ps(); MR];
    let mut p = 0;
    while p + 2 <= kc {
        let b0 = _mm512_loadu_ps(pb.add(p * NR));
        let b1 = _mm512_loadu_ps(pb.add((p + 1) * NR));
        for r in 0..MR {
            let a0 = _mm512_set1_ps(a.at(p, r));
            let a1 = _mm512_set1_ps(a.at(p + 1, r));
            even[r] = _mm512_fmadd_ps(a0, b0, even[r]);
            odd[r] = _mm512_fmadd_ps(a1, b1, odd[r]);
        }
        p += 2;
    }
    if p < kc {
        let b0 = _mm512_loadu_ps(pb.add(p * NR));
        for (r, acc) in even.iter_mut().enumerate() {
            *acc = _mm512_fmadd_ps(_mm512_set1_ps(a.at(p, r)), b0, *acc);
        }
    }
    std::array::from_fn(|r| _mm512_add_ps(even[r], odd[r]))
}

/// e^x for every lane: `x86::exp`'s method (Cody & Waite reduction, degree-7 polynomial, the
/// same clamp) on sixteen lanes.
#[inline(always)]
unsafe fn exp(x: __m512) -> __m512 {
    let x = _mm512_max_ps(
        _mm512_min_ps(x, _mm512_set1_ps(88.3)),
        _mm512_set1_ps(-87.3),
    );
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
    );
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
    let mut p = _mm512_set1_ps(1.0 / 5040.0);
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(c));
    }
    let bits = _mm512_slli_epi32::<23>(_mm512_add_epi32(
        _mm512_cvtps_epi32(n),
        _mm512_set1_epi32(127),
    ));
    _mm512_mul_ps(p, _mm512_castsi512_ps(bits))
}

/// The largest value of `x` (−∞ when empty).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) unsafe fn max(x: &[f32]) -> f32 {
    let lowest = _mm512_set1_ps(f32::NEG_INFINITY);
    let mut vmax = lowest;
    for i in (0..x.len()).step_by(LANES) {
        let lanes = first_lanes(LANES.min(x.len() - i));
        vmax = _mm512_max_ps(vmax, _mm512_mask_loadu_ps(lowest, lanes, x.as_ptr().add(i)));
    }
    _mm512_reduce_max_ps(vmax)
}

/// `Σ e^(x[i] − shift)`, sixteen lanes at a time.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) unsafe fn sum_exp(x: &[f32], shift: f32) -> f32 {
    let vshift = _mm512_set1_ps(shift);
    let mut vsum = _mm512_setzero_ps();
    for i in (0..x.len()).step_by(LANES) {
        let lanes = first_lanes(LANES.min(x.len() - i));
        let v = _mm512_maskz_loadu_ps(lanes, x.as_ptr().add(i));
        let e = _mm512_maskz_mov_ps(lanes, exp(_mm512_sub_ps(v, vshift)));
        vsum = _mm512_add_ps(vsum, e);
    }
    _mm512_reduce_add_ps(vsum)
}

/// Softmax of `x * scale` in place (see `Backend::softmax_scaled`): the maximum, then the
/// exponentials and their sum, then the division, each pass sixteen lanes at a time.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) unsafe fn softmax_scaled(x: &mut [f32], scale: f32) {
    let n = x.len();
    let p = x.as_mut_ptr();
    let (vm, vs) = (_mm512_set1_ps(max(x)), _mm512_set1_ps(scale));
    let mut vsum = _mm512_setzero_ps();
    let mut i = 0;
    while i < n {
        let lanes = first_lanes(LANES.min(n - i));
        let v = _mm512_maskz_loadu_ps(lanes, p.add(i));
        let e = _mm512_maskz_mov_ps(lanes, exp(_mm512_mul_ps(_mm512_sub_ps(v, vm), vs)));
        _mm512_mask_storeu_ps(p.add(i), lanes, e);
        vsum = _mm512_add_ps(vsum, e);
        i += LANES;
    }
    let inv = _mm512_set1_ps(1.0 / _mm512_reduce_add_ps(vsum));
    let mut i = 0;
    while i < n {
        let lanes = first_lanes(LANES.min(n - i));
        let v = _mm512_maskz_loadu_ps(lanes, p.add(i));
        _mm512_mask_storeu_ps(p.add(i), lanes, _mm512_mul_ps(v, inv));
        i += LANES;
    }
}

/// Exact GELU in place, with the erf formula of `scalar.rs` (see `Backend::gelu`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) unsafe fn gelu(x: &mut [f32]) {
    let n = x.len();
    let p = x.as_mut_ptr();
    for i in (0..n).step_by(LANES) {
        let lanes = first_lanes(LANES.min(n - i));
        let v = _mm512_maskz_loadu_ps(lanes, p.add(i));
        _mm512_mask_storeu_ps(p.add(i), lanes, gelu16(v));
    }
}

/// 0.5·x·(1 + erf(x/√2)) for every lane.
#[inline(always)]
unsafe fn gelu16(x: __m512) -> __m512 {
    let z = _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
    let az = _mm512_abs_ps(z);
    let one = _mm512_set1_ps(1.0);
    let t = _mm512_div_ps(one, _mm512_fmadd_ps(_mm512_set1_ps(ERF_P), az, one));
    let mut poly = _mm512_set1_ps(ERF_A[4]);
    for &a in ERF_A[..4].iter().rev() {
        poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(a));
    }
    poly = _mm512_mul_ps(poly, t);
    let e = exp(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(az, az)));
    let erf_abs = _mm512_fnmadd_ps(poly, e, one);
    // erf takes z's sign: copy its sign bit onto |erf|.
    let sign = _mm512_and_si512(_mm512_castps_si512(z), _mm512_set1_epi32(i32::MIN));
    let erf = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(erf_abs), sign));
    _mm512_mul_ps(
        _mm512_mul_ps(_mm512_set1_ps(0.5), x),
        _mm512_add_ps(one, erf),
    )
}

/// `out += Σ_j p[j] · v[j·stride..][..out.len()]` (see `Backend::add_weighted_rows`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) unsafe fn add_weighted_rows(p: &[f32], v: &[f32], stride: usize, out: &mut [f32]) {
    add_weighted_rows_wide(p, v, stride, out)
}

/// [`add_weighted_rows`] with the rows in f16.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) unsafe fn add_weighted_rows_f16(p: &[f32], v: &[f16], stride: usize, out: &mut [f32]) {
    add_weighted_rows_wide(p, v, stride, out)
}

/// Up to 64 output columns stay in four registers while every row is added in, instead of a
/// load and a store of `out` per row. Each column is one chain of FMAs from `out`'s value in
/// row order, so rows split over several calls sum exactly as in one.
#[inline(always)]
unsafe fn add_weighted_rows_wide<T: Wide>(p: &[f32], v: &[T], stride: usize, out: &mut [f32]) {
    const CHUNK: usize = 4 * LANES;
    let len = out.len();
    let (pv, po) = (v.as_ptr(), out.as_mut_ptr());
    let ahead = RowsAhead::new(pv, p.len(), stride, len);
    for c0 in (0..len).step_by(CHUNK) {
        let mut lanes = [0 as __mmask16; 4];
        let mut acc = [_mm512_setzero_ps(); 4];
        for q in 0..4 {
            lanes[q] = first_lanes((len - c0).saturating_sub(q * LANES).min(LANES));
            acc[q] = _mm512_maskz_loadu_ps(lanes[q], po.add(c0 + q * LANES));
        }
        for (j, &pj) in p.iter().enumerate() {
            if c0 == 0 {
                ahead.ask(j);
            }
            let weight = _mm512_set1_ps(pj);
            let row = pv.add(j * stride + c0);
            for (q, a) in acc.iter_mut().enumerate() {
                let x = T::load(row.add(q * LANES), lanes[q]);
                *a = _mm512_fmadd_ps(weight, x, *a);
            }
        }
        for (q, a) in acc.iter().enumerate() {
            _mm512_mask_storeu_ps(po.add(c0 + q * LANES), lanes[q], *a);
        }
    }
}

/// Several rows' [`add_weighted_rows`] (see `Backend::add_weighted_rows_many`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) unsafe fn add_weighted_rows_many(
    p: &[f32],
    d: usize,
    v: &[f32],
    stride: usize,
    out: &mut [f32],
) {
    add_weighted_rows_many_wide(p, d, v, stride, out)
}

/// [`add_weighted_rows_many`] with the rows in f16.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) unsafe fn add_weighted_rows_many_f16(
    p: &[f32],
    d: usize,
    v: &[f16],
    stride: usize,
    out: &mut [f32],
) {
    add_weighted_rows_many_wide(p, d, v, stride, out)
}

/// Output rows summed together: 5 rows of 64 columns are 20 accumulators, with the value
/// row's four registers and the weight all in registers.
const SUM_ROWS: usize = 5;

/// The rows in groups of [`SUM_ROWS`]; each value row is widened once per group.
#[inline(always)]
unsafe fn add_weighted_rows_many_wide<T: Wide>(
    p: &[f32],
    d: usize,
    v: &[T],
    stride: usize,
    out: &mut [f32],
) {
    let rows = out.len() / d;
    let keys = p.len() / rows;
    for r0 in (0..rows).step_by(SUM_ROWS) {
        let (p, v, out) = (
            p.as_ptr().add(r0 * keys),
            v.as_ptr(),
            out.as_mut_ptr().add(r0 * d),
        );
        match (rows - r0).min(SUM_ROWS) {
            1 => rows_weighted_sum::<T, 1>(p, keys, v, stride, out, d),
            2 => rows_weighted_sum::<T, 2>(p, keys, v, stride, out, d),
            3 => rows_weighted_sum::<T, 3>(p, keys, v, stride, out, d),
            4 => rows_weighted_sum::<T, 4>(p, keys, v, stride, out, d),
            _ => rows_weighted_sum::<T, SUM_ROWS>(p, keys, v, stride, out, d),
        }
    }
}

/// `out[r] += Σ_j p[r·keys + j] · v[j·stride..][..d]` for `R` rows, 64 columns at a time;
/// each output is the same chain of FMAs in key order as in [`add_weighted_rows_wide`].
#[inline(always)]
unsafe fn rows_weighted_sum<T: Wide, const R: usize>(
    p: *const f32,
    keys: usize,
    v: *const T,
    stride: usize,
    out: *mut f32,
    d: usize,
) {
    const CHUNK: usize = 4 * LANES;
    let ahead = RowsAhead::new(v, keys, stride, d);
    for c0 in (0..d).step_by(CHUNK) {
        let mut lanes = [0 as __mmask16; 4];
        for (q, l) in lanes.iter_mut().enumerate() {
            *l = first_lanes((d - c0).saturating_sub(q * LANES).min(LANES));
        }
        let mut acc = [[_mm512_setzero_ps(); 4]; R];
        for (r, row) in acc.iter_mut().enumerate() {
            for (q, a) in row.iter_mut().enumerate() {
                *a = _mm512_maskz_loadu_ps(lanes[q], out.add(r * d + c0 + q * LANES));
            }
        }
        for j in 0..keys {
            if c0 == 0 {
                ahead.ask(j);
            }
            let src = v.add(j * stride + c0);
            let mut x = [_mm512_setzero_ps(); 4];
            for (q, xq) in x.iter_mut().enumerate() {
                *xq = T::load(src.add(q * LANES), lanes[q]);
            }
            for (r, row) in acc.iter_mut().enumerate() {
                let weight = _mm512_set1_ps(*p.add(r * keys + j));
                for (a, xq) in row.iter_mut().zip(x) {
                    *a = _mm512_fmadd_ps(weight, xq, *a);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (q, a) in row.iter().enumerate() {
                _mm512_mask_storeu_ps(out.add(r * d + c0 + q * LANES), lanes[q], *a);
            }
        }
    }
}

/// Several rows' [`row_dots`] (see `Backend::rows_dots`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) unsafe fn rows_dots(qs: &[f32], d: usize, k: &[f32], stride: usize, out: &mut [f32]) {
    rows_dots_wide(qs, d, k, stride, out)
}

/// [`rows_dots`] with the keys in f16.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) unsafe fn rows_dots_f16(
    qs: &[f32],
    d: usize,
    k: &[f16],
    stride: usize,
    out: &mut [f32],
) {
    rows_dots_wide(qs, d, k, stride, out)
}

/// Query rows scored together: one accumulator each, the key in a register.
const DOT_ROWS: usize = 8;

/// The rows in groups of [`DOT_ROWS`]; each key is widened once per group.
#[inline(always)]
unsafe fn rows_dots_wide<T: Wide>(qs: &[f32], d: usize, k: &[T], stride: usize, out: &mut [f32]) {
    let rows = qs.len() / d;
    let keys = out.len() / rows;
    for r0 in (0..rows).step_by(DOT_ROWS) {
        let (q, k, out) = (
            qs.as_ptr().add(r0 * d),
            k.as_ptr(),
            out.as_mut_ptr().add(r0 * keys),
        );
        match (rows - r0).min(DOT_ROWS) {
            1 => rows_key_dots::<T, 1>(q, d, k, stride, keys, out),
            2 => rows_key_dots::<T, 2>(q, d, k, stride, keys, out),
            3 => rows_key_dots::<T, 3>(q, d, k, stride, keys, out),
            4 => rows_key_dots::<T, 4>(q, d, k, stride, keys, out),
            5 => rows_key_dots::<T, 5>(q, d, k, stride, keys, out),
            6 => rows_key_dots::<T, 6>(q, d, k, stride, keys, out),
            7 => rows_key_dots::<T, 7>(q, d, k, stride, keys, out),
            _ => rows_key_dots::<T, DOT_ROWS>(q, d, k, stride, keys, out),
        }
    }
}

/// `out[r·keys + j] = q[r] · k[j·stride..][..d]` for `R` rows: each score the same chain of
/// FMAs and the same final sum as in [`key_dots`].
#[inline(always)]
unsafe fn rows_key_dots<T: Wide, const R: usize>(
    q: *const f32,
    d: usize,
    k: *const T,
    stride: usize,
    keys: usize,
    out: *mut f32,
) {
    let ahead = RowsAhead::new(k, keys, stride, d);
    for j in 0..keys {
        ahead.ask(j);
        let key = k.add(j * stride);
        let mut acc = [_mm512_setzero_ps(); R];
        let mut i = 0;
        while i < d {
            let lanes = first_lanes(LANES.min(d - i));
            let x = T::load(key.add(i), lanes);
            for (r, a) in acc.iter_mut().enumerate() {
                *a = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(lanes, q.add(r * d + i)), x, *a);
            }
            i += LANES;
        }
        for (r, a) in acc.iter().enumerate() {
            *out.add(r * keys + j) = _mm512_reduce_add_ps(*a);
        }
    }
}

/// `scores[j] = q · k[j·stride..][..q.len()]` (see `Backend::row_dots`).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) unsafe fn row_dots(q: &[f32], k: &[f32], stride: usize, scores: &mut [f32]) {
    row_dots_wide(q, k, stride, scores)
}

/// [`row_dots`] with the keys in f16.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2,fma,f16c")]
pub(super) unsafe fn row_dots_f16(q: &[f32], k: &[f16], stride: usize, scores: &mut [f32]) {
    row_dots_wide(q, k, stride, scores)
}

/// Four keys at a time, so that their FMAs and their final sums overlap instead of waiting
/// on each other; the last few one at a time in the same way, so that every key's score is
/// the same wherever it falls (keys split over several calls score exactly as in one).
#[inline(always)]
unsafe fn row_dots_wide<T: Wide>(q: &[f32], k: &[T], stride: usize, scores: &mut [f32]) {
    const KEYS: usize = 4;
    let pk = k.as_ptr();
    let done = scores.len() - scores.len() % KEYS;
    let (grouped, rest) = scores.split_at_mut(done);
    let ahead = RowsAhead::new(pk, done + rest.len(), stride, q.len());
    for (g, out) in grouped.chunks_exact_mut(KEYS).enumerate() {
        for key in g * KEYS..(g + 1) * KEYS {
            ahead.ask(key);
        }
        key_dots::<T, KEYS>(q, pk.add(g * KEYS * stride), stride, out);
    }
    for (j, s) in rest.iter_mut().enumerate() {
        key_dots::<T, 1>(
            q,
            pk.add((done + j) * stride),
            stride,
            std::slice::from_mut(s),
        );
    }
}

/// `out[n] = q · k[n·stride..][..q.len()]` for `N` keys, one accumulator each.
#[inline(always)]
unsafe fn key_dots<T: Wide, const N: usize>(
    q: &[f32],
    k: *const T,
    stride: usize,
    out: &mut [f32],
) {
    let (len, pq) = (q.len(), q.as_ptr());
    let mut acc = [_mm512_setzero_ps(); N];
    let mut i = 0;
    while i < len {
        let lanes = first_lanes(LANES.min(len - i));
        let x = _mm512_maskz_loadu_ps(lanes, pq.add(i));
        for (key, a) in acc.iter_mut().enumerate() {
            *a = _mm512_fmadd_ps(x, T::load(k.add(key * stride + i), lanes), *a);
        }
        i += LANES;
    }
    for (o, a) in out.iter_mut().zip(acc) {
        *o = _mm512_reduce_add_ps(a);
    }
}
