//! AVX2 + FMA + F16C versions of the kernels in `scalar.rs`.
//!
//! # Safety
//!
//! Every function here is `#[target_feature(enable = "avx2,fma,f16c")]` and therefore
//! `unsafe`: callers must have checked that the CPU supports those features. `mod.rs` calls
//! them only through `Isa::Avx2`, which exists only after detection. Slice bounds are checked
//! by the safe wrappers in `mod.rs` (equal lengths) or asserted here before raw-pointer loops.
//!
//! Ragged tails (lengths that are not a multiple of 8) use masked loads and stores so that
//! they go through the same arithmetic as the full vectors.

use super::gemm::{add_tile, Start, MR, NR};
use super::prefetch::RowsAhead;
use super::scalar::{ERF_A, ERF_P};
use half::f16;
use std::arch::x86_64::*;

const LANES: usize = 8;

/// Lane mask with the first `rem` (< 8) lanes set, for `_mm256_maskload_ps` and friends.
#[inline(always)]
unsafe fn tail_mask(rem: usize) -> __m256i {
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_cmpgt_epi32(_mm256_set1_epi32(rem as i32), lanes)
}

#[inline(always)]
pub(super) unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

#[inline(always)]
unsafe fn hmax(v: __m256) -> f32 {
    let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

/// Eight f16 values at `p` widened to f32.
#[inline(always)]
unsafe fn load_f16(p: *const f16) -> __m256 {
    _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
}

/// The first `rem` (< 8) f16 values at `p` widened to f32, zeros in the other lanes.
#[inline(always)]
unsafe fn load_f16_tail(p: *const f16, rem: usize) -> __m256 {
    let mut buf = [0u16; LANES];
    std::ptr::copy_nonoverlapping(p as *const u16, buf.as_mut_ptr(), rem);
    _mm256_cvtph_ps(_mm_loadu_si128(buf.as_ptr() as *const __m128i))
}

/// e^x for every lane, relative error a few ulp; inputs below ≈ -87.3 give ≈ 1e-38, not 0.
#[inline(always)]
unsafe fn exp(x: __m256) -> __m256 {
    // The clamp keeps 2^n a normal float (n in -126..=127).
    let x = _mm256_max_ps(
        _mm256_min_ps(x, _mm256_set1_ps(88.3)),
        _mm256_set1_ps(-87.3),
    );
    let n = _mm256_round_ps(
        _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::LOG2_E)),
        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC,
    );
    // r = x - n·ln2 with ln2 split in two so the first product is exact (Cody & Waite).
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), x);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
    // |r| ≤ ln2/2, where the degree-7 Taylor polynomial is accurate to ~5e-9.
    let mut p = _mm256_set1_ps(1.0 / 5040.0);
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(c));
    }
    let bits = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)),
        23,
    );
    _mm256_mul_ps(p, _mm256_castsi256_ps(bits))
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    // Four accumulators hide the FMA latency.
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 4 * LANES <= n {
        for (j, s) in acc.iter_mut().enumerate() {
            let o = i + j * LANES;
            *s = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(o)), _mm256_loadu_ps(pb.add(o)), *s);
        }
        i += 4 * LANES;
    }
    while i + LANES <= n {
        acc[0] = _mm256_fmadd_ps(
            _mm256_loadu_ps(pa.add(i)),
            _mm256_loadu_ps(pb.add(i)),
            acc[0],
        );
        i += LANES;
    }
    if i < n {
        let mask = tail_mask(n - i);
        let (x, y) = (
            _mm256_maskload_ps(pa.add(i), mask),
            _mm256_maskload_ps(pb.add(i), mask),
        );
        acc[1] = _mm256_fmadd_ps(x, y, acc[1]);
    }
    hsum(_mm256_add_ps(
        _mm256_add_ps(acc[0], acc[1]),
        _mm256_add_ps(acc[2], acc[3]),
    ))
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_f16(a: &[f16], b: &[f32]) -> f32 {
    let n = a.len();
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [_mm256_setzero_ps(); 4];
    let mut i = 0;
    while i + 4 * LANES <= n {
        for (j, s) in acc.iter_mut().enumerate() {
            let o = i + j * LANES;
            *s = _mm256_fmadd_ps(load_f16(pa.add(o)), _mm256_loadu_ps(pb.add(o)), *s);
        }
        i += 4 * LANES;
    }
    while i + LANES <= n {
        acc[0] = _mm256_fmadd_ps(load_f16(pa.add(i)), _mm256_loadu_ps(pb.add(i)), acc[0]);
        i += LANES;
    }
    if i < n {
        let x = load_f16_tail(pa.add(i), n - i);
        let y = _mm256_maskload_ps(pb.add(i), tail_mask(n - i));
        acc[1] = _mm256_fmadd_ps(x, y, acc[1]);
    }
    hsum(_mm256_add_ps(
        _mm256_add_ps(acc[0], acc[1]),
        _mm256_add_ps(acc[2], acc[3]),
    ))
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn axpy(x: &mut [f32], alpha: f32, y: &[f32]) {
    let n = x.len();
    let (px, py) = (x.as_mut_ptr(), y.as_ptr());
    let va = _mm256_set1_ps(alpha);
    let mut i = 0;
    while i + LANES <= n {
        let r = _mm256_fmadd_ps(va, _mm256_loadu_ps(py.add(i)), _mm256_loadu_ps(px.add(i)));
        _mm256_storeu_ps(px.add(i), r);
        i += LANES;
    }
    if i < n {
        let mask = tail_mask(n - i);
        let r = _mm256_fmadd_ps(
            va,
            _mm256_maskload_ps(py.add(i), mask),
            _mm256_maskload_ps(px.add(i), mask),
        );
        _mm256_maskstore_ps(px.add(i), mask, r);
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f16_to_f32(src: &[f16], dst: &mut [f32]) {
    let n = src.len();
    let mut i = 0;
    while i + LANES <= n {
        _mm256_storeu_ps(dst.as_mut_ptr().add(i), load_f16(src.as_ptr().add(i)));
        i += LANES;
    }
    if i < n {
        let v = load_f16_tail(src.as_ptr().add(i), n - i);
        _mm256_maskstore_ps(dst.as_mut_ptr().add(i), tail_mask(n - i), v);
    }
}

/// The largest value of `x` (−∞ when empty).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn max(x: &[f32]) -> f32 {
    let mut chunks = x.chunks_exact(LANES);
    let mut vmax = _mm256_set1_ps(f32::NEG_INFINITY);
    for c in &mut chunks {
        vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(c.as_ptr()));
    }
    chunks.remainder().iter().fold(hmax(vmax), |m, &v| m.max(v))
}

/// `Σ e^(x[i] − shift)`, eight lanes at a time.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn sum_exp(x: &[f32], shift: f32) -> f32 {
    let rem = x.len() % LANES;
    let body = x.len() - rem;
    let vshift = _mm256_set1_ps(shift);
    let mut vsum = _mm256_setzero_ps();
    for i in (0..body).step_by(LANES) {
        let v = _mm256_loadu_ps(x.as_ptr().add(i));
        vsum = _mm256_add_ps(vsum, exp(_mm256_sub_ps(v, vshift)));
    }
    if rem > 0 {
        let mask = tail_mask(rem);
        let v = _mm256_maskload_ps(x.as_ptr().add(body), mask);
        let e = exp(_mm256_sub_ps(v, vshift));
        vsum = _mm256_add_ps(vsum, _mm256_and_ps(e, _mm256_castsi256_ps(mask)));
    }
    hsum(vsum)
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn softmax_scaled(x: &mut [f32], scale: f32) {
    let n = x.len();
    let p = x.as_mut_ptr();
    let rem = n % LANES;
    let body = n - rem;
    let mask = tail_mask(rem);

    let (vm, vs) = (_mm256_set1_ps(max(x)), _mm256_set1_ps(scale));
    let mut vsum = _mm256_setzero_ps();
    for i in (0..body).step_by(LANES) {
        let e = exp(_mm256_mul_ps(
            _mm256_sub_ps(_mm256_loadu_ps(p.add(i)), vm),
            vs,
        ));
        _mm256_storeu_ps(p.add(i), e);
        vsum = _mm256_add_ps(vsum, e);
    }
    if rem > 0 {
        let v = _mm256_maskload_ps(p.add(body), mask);
        let e = exp(_mm256_mul_ps(_mm256_sub_ps(v, vm), vs));
        _mm256_maskstore_ps(p.add(body), mask, e);
        vsum = _mm256_add_ps(vsum, _mm256_and_ps(e, _mm256_castsi256_ps(mask)));
    }

    let inv = _mm256_set1_ps(1.0 / hsum(vsum));
    for i in (0..body).step_by(LANES) {
        _mm256_storeu_ps(p.add(i), _mm256_mul_ps(_mm256_loadu_ps(p.add(i)), inv));
    }
    if rem > 0 {
        let v = _mm256_maskload_ps(p.add(body), mask);
        _mm256_maskstore_ps(p.add(body), mask, _mm256_mul_ps(v, inv));
    }
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn layer_norm_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len();
    let p = row.as_mut_ptr();
    let rem = n % LANES;
    let body = n - rem;
    let mask = tail_mask(rem);
    let fmask = _mm256_castsi256_ps(mask);

    let mut vsum = _mm256_maskload_ps(p.add(body), mask);
    for i in (0..body).step_by(LANES) {
        vsum = _mm256_add_ps(vsum, _mm256_loadu_ps(p.add(i)));
    }
    let mean = hsum(vsum) / n as f32;
    let vmean = _mm256_set1_ps(mean);

    // The masked tail lanes load 0, so their deviation is cleared before squaring.
    let d = _mm256_and_ps(
        _mm256_sub_ps(_mm256_maskload_ps(p.add(body), mask), vmean),
        fmask,
    );
    let mut vvar = _mm256_mul_ps(d, d);
    for i in (0..body).step_by(LANES) {
        let d = _mm256_sub_ps(_mm256_loadu_ps(p.add(i)), vmean);
        vvar = _mm256_fmadd_ps(d, d, vvar);
    }
    let var = hsum(vvar) / n as f32;
    let vinv = _mm256_set1_ps(1.0 / (var + eps).sqrt());

    let (pg, pb) = (gamma.as_ptr(), beta.as_ptr());
    for i in (0..body).step_by(LANES) {
        let y = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(p.add(i)), vmean), vinv);
        let y = _mm256_fmadd_ps(y, _mm256_loadu_ps(pg.add(i)), _mm256_loadu_ps(pb.add(i)));
        _mm256_storeu_ps(p.add(i), y);
    }
    if rem > 0 {
        let x = _mm256_maskload_ps(p.add(body), mask);
        let y = _mm256_mul_ps(_mm256_sub_ps(x, vmean), vinv);
        let y = _mm256_fmadd_ps(
            y,
            _mm256_maskload_ps(pg.add(body), mask),
            _mm256_maskload_ps(pb.add(body), mask),
        );
        _mm256_maskstore_ps(p.add(body), mask, y);
    }
}

/// 0.5·x·(1 + erf(x/√2)) for every lane, with the erf formula of `scalar.rs`.
#[inline(always)]
unsafe fn gelu8(x: __m256) -> __m256 {
    let sign_bit = _mm256_set1_ps(-0.0);
    let z = _mm256_mul_ps(x, _mm256_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
    let az = _mm256_andnot_ps(sign_bit, z);
    let one = _mm256_set1_ps(1.0);
    let t = _mm256_div_ps(one, _mm256_fmadd_ps(_mm256_set1_ps(ERF_P), az, one));
    let mut poly = _mm256_set1_ps(ERF_A[4]);
    for &a in ERF_A[..4].iter().rev() {
        poly = _mm256_fmadd_ps(poly, t, _mm256_set1_ps(a));
    }
    poly = _mm256_mul_ps(poly, t);
    let e = exp(_mm256_sub_ps(_mm256_setzero_ps(), _mm256_mul_ps(az, az)));
    let erf_abs = _mm256_fnmadd_ps(poly, e, one);
    let erf = _mm256_or_ps(erf_abs, _mm256_and_ps(sign_bit, z));
    _mm256_mul_ps(
        _mm256_mul_ps(_mm256_set1_ps(0.5), x),
        _mm256_add_ps(one, erf),
    )
}

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn gelu(x: &mut [f32]) {
    let n = x.len();
    let p = x.as_mut_ptr();
    let mut i = 0;
    while i + LANES <= n {
        _mm256_storeu_ps(p.add(i), gelu8(_mm256_loadu_ps(p.add(i))));
        i += LANES;
    }
    if i < n {
        let mask = tail_mask(n - i);
        let y = gelu8(_mm256_maskload_ps(p.add(i), mask));
        _mm256_maskstore_ps(p.add(i), mask, y);
    }
}

/// `out[r][c] = a[r] · b[c]` for `MR` rows of `a` (f32) and `NR` rows of `b` (f16), all rows of
/// length `k`. Each converted weight vector is reused for all `MR` rows, and the `MR × NR`
/// independent accumulators keep both FMA pipes busy.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f16_tile<const MR: usize, const NR: usize>(
    a: &[f32],
    b: &[f16],
    k: usize,
) -> [[f32; NR]; MR] {
    assert!(a.len() >= MR * k && b.len() >= NR * k);
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let mut acc = [[_mm256_setzero_ps(); NR]; MR];
    let body = k - k % LANES;
    let mut p = 0;
    while p < body {
        let mut bv = [_mm256_setzero_ps(); NR];
        for (c, v) in bv.iter_mut().enumerate() {
            *v = load_f16(pb.add(c * k + p));
        }
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let av = _mm256_loadu_ps(pa.add(r * k + p));
            for (s, &w) in acc_r.iter_mut().zip(&bv) {
                *s = _mm256_fmadd_ps(av, w, *s);
            }
        }
        p += LANES;
    }
    if body < k {
        let rem = k - body;
        let mask = tail_mask(rem);
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let av = _mm256_maskload_ps(pa.add(r * k + body), mask);
            for (c, s) in acc_r.iter_mut().enumerate() {
                *s = _mm256_fmadd_ps(av, load_f16_tail(pb.add(c * k + body), rem), *s);
            }
        }
    }
    let mut out = [[0.0; NR]; MR];
    for (o_r, acc_r) in out.iter_mut().zip(&acc) {
        for (o, &s) in o_r.iter_mut().zip(acc_r) {
            *o = hsum(s);
        }
    }
    out
}

/// C[rows×cols] += A·B for one 6×16 register tile of the blocked GEMM; `a` and `b` are packed
/// micro-panels (see `Backend::gemm_tile`, which checks the slice lengths). Per depth step:
/// two B vectors, six broadcast A values, twelve FMAs into twelve accumulators.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma,f16c")]
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
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let pc = c.as_mut_ptr();
    // C is only touched after the depth loop; fetching it now hides the miss (wide C blocks
    // do not stay in L2 between depth blocks).
    for r in 0..rows {
        _mm_prefetch::<_MM_HINT_T0>(pc.add(r * ldc) as *const i8);
        _mm_prefetch::<_MM_HINT_T0>(pc.add(r * ldc + cols - 1) as *const i8);
    }
    let mut acc = [[_mm256_setzero_ps(); 2]; MR];
    for p in 0..kc {
        let b0 = _mm256_loadu_ps(pb.add(p * NR));
        let b1 = _mm256_loadu_ps(pb.add(p * NR + LANES));
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let av = _mm256_broadcast_ss(&*pa.add(p * MR + r));
            acc_r[0] = _mm256_fmadd_ps(av, b0, acc_r[0]);
            acc_r[1] = _mm256_fmadd_ps(av, b1, acc_r[1]);
        }
    }
    if rows == MR && cols == NR {
        for (r, acc_r) in acc.iter().enumerate() {
            let row = pc.add(r * ldc);
            for (half, &sum) in acc_r.iter().enumerate() {
                let at = row.add(half * LANES);
                let old = match start {
                    Start::Held => _mm256_loadu_ps(at),
                    Start::Zero => _mm256_setzero_ps(),
                    Start::Row(init) => _mm256_loadu_ps(init.as_ptr().add(half * LANES)),
                };
                _mm256_storeu_ps(at, _mm256_add_ps(old, sum));
            }
        }
    } else {
        let mut buf = [[0.0f32; NR]; MR];
        for (b_row, acc_r) in buf.iter_mut().zip(&acc) {
            _mm256_storeu_ps(b_row.as_mut_ptr(), acc_r[0]);
            _mm256_storeu_ps(b_row.as_mut_ptr().add(LANES), acc_r[1]);
        }
        add_tile(c, ldc, rows, cols, &buf, start);
    }
}

/// Values that load into eight f32 lanes: attention's keys and values, f32 or f16.
trait Narrow: Copy {
    /// Eight values at `p` widened to f32.
    unsafe fn load8(p: *const Self) -> __m256;
    /// The first `rem` (< 8) values at `p` widened to f32, zeros in the other lanes.
    unsafe fn load_tail(p: *const Self, rem: usize) -> __m256;
}

impl Narrow for f32 {
    #[inline(always)]
    unsafe fn load8(p: *const f32) -> __m256 {
        _mm256_loadu_ps(p)
    }

    #[inline(always)]
    unsafe fn load_tail(p: *const f32, rem: usize) -> __m256 {
        _mm256_maskload_ps(p, tail_mask(rem))
    }
}

impl Narrow for f16 {
    #[inline(always)]
    unsafe fn load8(p: *const f16) -> __m256 {
        load_f16(p)
    }

    #[inline(always)]
    unsafe fn load_tail(p: *const f16, rem: usize) -> __m256 {
        load_f16_tail(p, rem)
    }
}

/// `scores[j] = q · k[j·stride..][..q.len()]` (see `Backend::row_dots`), each score as [`dot`]
/// computes it, the keys asked for ahead.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn row_dots(q: &[f32], k: &[f32], stride: usize, scores: &mut [f32]) {
    let ahead = RowsAhead::new(k.as_ptr(), scores.len(), stride, q.len());
    for (j, s) in scores.iter_mut().enumerate() {
        ahead.ask(j);
        *s = dot(q, &k[j * stride..j * stride + q.len()]);
    }
}

/// [`row_dots`] with the keys in f16, each score as [`dot_f16`] computes it.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn row_dots_f16(q: &[f32], k: &[f16], stride: usize, scores: &mut [f32]) {
    let ahead = RowsAhead::new(k.as_ptr(), scores.len(), stride, q.len());
    for (j, s) in scores.iter_mut().enumerate() {
        ahead.ask(j);
        *s = dot_f16(&k[j * stride..j * stride + q.len()], q);
    }
}

/// `out += Σ_j p[j] · v[j·stride..][..out.len()]` (see `Backend::add_weighted_rows`).
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn add_weighted_rows(p: &[f32], v: &[f32], stride: usize, out: &mut [f32]) {
    add_weighted_rows_narrow(p, v, stride, out)
}

/// [`add_weighted_rows`] with the rows in f16, widened in registers.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn add_weighted_rows_f16(p: &[f32], v: &[f16], stride: usize, out: &mut [f32]) {
    add_weighted_rows_narrow(p, v, stride, out)
}

/// Output columns summed in registers: 64 (a head) in eight, beside the weight and a row's
/// vector.
const SUM_VECTORS: usize = 8;

/// The columns in groups of [`SUM_VECTORS`] vectors, then of one, then the ragged tail, each
/// group summed over every row in registers instead of a load and a store of `out` per row.
/// Each column is the chain of FMAs in row order from its value in `out` that [`axpy`] row
/// after row computes, so the sums are exactly its sums.
#[inline(always)]
unsafe fn add_weighted_rows_narrow<T: Narrow>(p: &[f32], v: &[T], stride: usize, out: &mut [f32]) {
    let len = out.len();
    let (pv, po) = (v.as_ptr(), out.as_mut_ptr());
    let ahead = RowsAhead::new(pv, p.len(), stride, len);
    let mut c0 = 0;
    while c0 + SUM_VECTORS * LANES <= len {
        weighted_columns::<T, SUM_VECTORS>(p, pv.add(c0), stride, po.add(c0), c0 == 0, &ahead);
        c0 += SUM_VECTORS * LANES;
    }
    while c0 + LANES <= len {
        weighted_columns::<T, 1>(p, pv.add(c0), stride, po.add(c0), c0 == 0, &ahead);
        c0 += LANES;
    }
    if c0 < len {
        let rem = len - c0;
        let mask = tail_mask(rem);
        let mut acc = _mm256_maskload_ps(po.add(c0), mask);
        for (j, &pj) in p.iter().enumerate() {
            if c0 == 0 {
                ahead.ask(j);
            }
            let x = T::load_tail(pv.add(j * stride + c0), rem);
            acc = _mm256_fmadd_ps(_mm256_set1_ps(pj), x, acc);
        }
        _mm256_maskstore_ps(po.add(c0), mask, acc);
    }
}

/// `N` vectors of columns at `out` summed over every row at `v` (rows `stride` apart); the
/// first group of columns asks for the rows ahead.
#[inline(always)]
unsafe fn weighted_columns<T: Narrow, const N: usize>(
    p: &[f32],
    v: *const T,
    stride: usize,
    out: *mut f32,
    first: bool,
    ahead: &RowsAhead,
) {
    let mut acc = [_mm256_setzero_ps(); N];
    for (n, a) in acc.iter_mut().enumerate() {
        *a = _mm256_loadu_ps(out.add(n * LANES));
    }
    for (j, &pj) in p.iter().enumerate() {
        if first {
            ahead.ask(j);
        }
        let weight = _mm256_set1_ps(pj);
        let row = v.add(j * stride);
        for (n, a) in acc.iter_mut().enumerate() {
            *a = _mm256_fmadd_ps(weight, T::load8(row.add(n * LANES)), *a);
        }
    }
    for (n, a) in acc.iter().enumerate() {
        _mm256_storeu_ps(out.add(n * LANES), *a);
    }
}
