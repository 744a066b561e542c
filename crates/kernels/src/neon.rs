//! aarch64 NEON versions of the kernels in `scalar.rs`, and the GEMM register tile.
//!
//! NEON is part of the aarch64 baseline, so these functions are safe to call; the only
//! `unsafe` is in the load/store helpers, which check their bounds. f16 → f32 uses the base
//! ARMv8 `FCVTL`/`FCVTL2` instructions through inline assembly, because the `float16x*_t`
//! intrinsics are not stable Rust. Ragged tails go through zero-padded 4- or 8-lane buffers so
//! they take the same arithmetic as full vectors.

use super::gemm::{add_tile, MR, NR};
use super::scalar::{ERF_A, ERF_P};
use half::f16;
use std::arch::aarch64::*;
use std::arch::asm;

const LANES: usize = 4;

#[inline(always)]
fn load(s: &[f32]) -> float32x4_t {
    assert!(s.len() >= LANES);
    // SAFETY: four in-bounds elements.
    unsafe { vld1q_f32(s.as_ptr()) }
}

/// Up to four values, zeros in the missing lanes.
#[inline(always)]
fn load_tail(s: &[f32]) -> float32x4_t {
    let mut buf = [0.0f32; LANES];
    buf[..s.len()].copy_from_slice(s);
    load(&buf)
}

#[inline(always)]
fn store(s: &mut [f32], v: float32x4_t) {
    assert!(s.len() >= LANES);
    // SAFETY: four in-bounds elements, exclusively borrowed.
    unsafe { vst1q_f32(s.as_mut_ptr(), v) }
}

/// Stores the first `s.len()` (≤ 4) lanes.
#[inline(always)]
fn store_tail(s: &mut [f32], v: float32x4_t) {
    let mut buf = [0.0f32; LANES];
    store(&mut buf, v);
    let n = s.len();
    s.copy_from_slice(&buf[..n]);
}

/// Eight f16 values widened to two f32 vectors (low and high half).
#[inline(always)]
fn load_f16(s: &[f16]) -> (float32x4_t, float32x4_t) {
    assert!(s.len() >= 2 * LANES);
    // SAFETY: eight in-bounds u16-sized elements (f16 is a transparent u16).
    let h = unsafe { vld1q_u16(s.as_ptr() as *const u16) };
    let (lo, hi): (float32x4_t, float32x4_t);
    // SAFETY: FCVTL/FCVTL2 are base ARMv8 instructions touching only these registers. `out`
    // (not `lateout`) keeps `lo` from sharing a register with `h`, which FCVTL2 still reads.
    unsafe {
        asm!(
            "fcvtl {lo:v}.4s, {h:v}.4h",
            "fcvtl2 {hi:v}.4s, {h:v}.8h",
            h = in(vreg) h,
            lo = out(vreg) lo,
            hi = out(vreg) hi,
            options(pure, nomem, nostack, preserves_flags),
        );
    }
    (lo, hi)
}

/// Up to eight f16 values, zeros in the missing lanes.
#[inline(always)]
fn load_f16_tail(s: &[f16]) -> (float32x4_t, float32x4_t) {
    let mut buf = [f16::ZERO; 2 * LANES];
    buf[..s.len()].copy_from_slice(s);
    load_f16(&buf)
}

/// e^x per lane; the same range reduction and polynomial as the AVX2 version.
#[inline(always)]
fn exp(x: float32x4_t) -> float32x4_t {
    // SAFETY: NEON is part of the aarch64 baseline; memory goes through the checked helpers.
    unsafe {
        let x = vmaxq_f32(vminq_f32(x, vdupq_n_f32(88.3)), vdupq_n_f32(-87.3));
        let n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(std::f32::consts::LOG2_E)));
        let r = vfmsq_f32(x, n, vdupq_n_f32(0.693_359_4));
        let r = vfmsq_f32(r, n, vdupq_n_f32(-2.121_944_4e-4));
        let mut p = vdupq_n_f32(1.0 / 5040.0);
        for c in [
            1.0 / 720.0,
            1.0 / 120.0,
            1.0 / 24.0,
            1.0 / 6.0,
            0.5,
            1.0,
            1.0,
        ] {
            p = vfmaq_f32(vdupq_n_f32(c), p, r);
        }
        let bits = vshlq_n_s32::<23>(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)));
        vmulq_f32(p, vreinterpretq_f32_s32(bits))
    }
}

pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    // SAFETY: NEON is part of the aarch64 baseline; memory goes through the checked helpers.
    unsafe {
        let mut acc = [vdupq_n_f32(0.0); 4];
        let (ac, bc) = (a.chunks_exact(4 * LANES), b.chunks_exact(4 * LANES));
        let (ar, br) = (ac.remainder(), bc.remainder());
        for (x, y) in ac.zip(bc) {
            for (j, s) in acc.iter_mut().enumerate() {
                let o = j * LANES;
                *s = vfmaq_f32(*s, load(&x[o..]), load(&y[o..]));
            }
        }
        let (ac, bc) = (ar.chunks_exact(LANES), br.chunks_exact(LANES));
        let (at, bt) = (ac.remainder(), bc.remainder());
        for (x, y) in ac.zip(bc) {
            acc[0] = vfmaq_f32(acc[0], load(x), load(y));
        }
        acc[1] = vfmaq_f32(acc[1], load_tail(at), load_tail(bt));
        vaddvq_f32(vaddq_f32(
            vaddq_f32(acc[0], acc[1]),
            vaddq_f32(acc[2], acc[3]),
        ))
    }
}

pub(super) fn dot_f16(a: &[f16], b: &[f32]) -> f32 {
    // SAFETY: NEON is part of the aarch64 baseline; memory goes through the checked helpers.
    unsafe {
        let mut acc = [vdupq_n_f32(0.0); 4];
        let (ac, bc) = (a.chunks_exact(2 * LANES), b.chunks_exact(2 * LANES));
        let (at, bt) = (ac.remainder(), bc.remainder());
        for (i, (x, y)) in ac.zip(bc).enumerate() {
            let (lo, hi) = load_f16(x);
            let s = 2 * (i % 2);
            acc[s] = vfmaq_f32(acc[s], lo, load(y));
            acc[s + 1] = vfmaq_f32(acc[s + 1], hi, load(&y[LANES..]));
        }
        let (lo, hi) = load_f16_tail(at);
        let split = bt.len().min(LANES);
        acc[0] = vfmaq_f32(acc[0], lo, load_tail(&bt[..split]));
        acc[1] = vfmaq_f32(acc[1], hi, load_tail(&bt[split..]));
        vaddvq_f32(vaddq_f32(
            vaddq_f32(acc[0], acc[1]),
            vaddq_f32(acc[2], acc[3]),
        ))
    }
}

pub(super) fn axpy(x: &mut [f32], alpha: f32, y: &[f32]) {
    // SAFETY: NEON is part of the aarch64 baseline; memory goes through the checked helpers.
    unsafe {
        let va = vdupq_n_f32(alpha);
        let mut xc = x.chunks_exact_mut(LANES);
        let mut yc = y.chunks_exact(LANES);
        for (xs, ys) in (&mut xc).zip(&mut yc) {
            store(xs, vfmaq_f32(load(xs), va, load(ys)));
        }
        let (xt, yt) = (xc.into_remainder(), yc.remainder());
        store_tail(xt, vfmaq_f32(load_tail(xt), va, load_tail(yt)));
    }
}

pub(super) fn f16_to_f32(src: &[f16], dst: &mut [f32]) {
    let mut sc = src.chunks_exact(2 * LANES);
    let mut dc = dst.chunks_exact_mut(2 * LANES);
    for (s, d) in (&mut sc).zip(&mut dc) {
        let (lo, hi) = load_f16(s);
        store(d, lo);
        store(&mut d[LANES..], hi);
    }
    let (st, dt) = (sc.remainder(), dc.into_remainder());
    let (lo, hi) = load_f16_tail(st);
    let split = dt.len().min(LANES);
    let (d_lo, d_hi) = dt.split_at_mut(split);
    store_tail(d_lo, lo);
    store_tail(d_hi, hi);
}

/// The largest value of `x` (−∞ when empty).
pub(super) fn max(x: &[f32]) -> f32 {
    let chunks = x.chunks_exact(LANES);
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    // SAFETY: NEON is part of the aarch64 baseline; memory goes through the checked helpers.
    let vmax = chunks.fold(unsafe { vdupq_n_f32(f32::NEG_INFINITY) }, |m, c| unsafe {
        vmaxq_f32(m, load(c))
    });
    // SAFETY: as above.
    tail.max(unsafe { vmaxvq_f32(vmax) })
}

/// `Σ e^(x[i] − shift)`, four lanes at a time.
pub(super) fn sum_exp(x: &[f32], shift: f32) -> f32 {
    // SAFETY: NEON is part of the aarch64 baseline; memory goes through the checked helpers.
    unsafe {
        let vshift = vdupq_n_f32(shift);
        let mut vsum = vdupq_n_f32(0.0);
        let chunks = x.chunks_exact(LANES);
        let tail = chunks.remainder();
        for c in chunks {
            vsum = vaddq_f32(vsum, exp(vsubq_f32(load(c), vshift)));
        }
        vaddvq_f32(vsum) + tail.iter().map(|&v| (v - shift).exp()).sum::<f32>()
    }
}

pub(super) fn softmax_scaled(x: &mut [f32], scale: f32) {
    // SAFETY: NEON is part of the aarch64 baseline; memory goes through the checked helpers.
    unsafe {
        let (vm, vs) = (vdupq_n_f32(max(x)), vdupq_n_f32(scale));
        let mut vsum = vdupq_n_f32(0.0);
        let mut chunks = x.chunks_exact_mut(LANES);
        for c in &mut chunks {
            let e = exp(vmulq_f32(vsubq_f32(load(c), vm), vs));
            store(c, e);
            vsum = vaddq_f32(vsum, e);
        }
        let tail = chunks.into_remainder();
        let mut sum = vaddvq_f32(vsum);
        if !tail.is_empty() {
            let e = exp(vmulq_f32(vsubq_f32(load_tail(tail), vm), vs));
            store_tail(tail, e);
            sum += tail.iter().sum::<f32>();
        }

        let inv = vdupq_n_f32(1.0 / sum);
        let mut chunks = x.chunks_exact_mut(LANES);
        for c in &mut chunks {
            store(c, vmulq_f32(load(c), inv));
        }
        let tail = chunks.into_remainder();
        store_tail(tail, vmulq_f32(load_tail(tail), inv));
    }
}

pub(super) fn layer_norm_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    // SAFETY: NEON is part of the aarch64 baseline; memory goes through the checked helpers.
    unsafe {
        let n = row.len() as f32;
        let chunks = row.chunks_exact(LANES);
        let tail = chunks.remainder();
        let mut vsum = load_tail(tail);
        for c in chunks {
            vsum = vaddq_f32(vsum, load(c));
        }
        let mean = vaddvq_f32(vsum) / n;
        let vmean = vdupq_n_f32(mean);

        let chunks = row.chunks_exact(LANES);
        let mut var: f32 = tail.iter().map(|v| (v - mean) * (v - mean)).sum();
        let mut vvar = vdupq_n_f32(0.0);
        for c in chunks {
            let d = vsubq_f32(load(c), vmean);
            vvar = vfmaq_f32(vvar, d, d);
        }
        var = (var + vaddvq_f32(vvar)) / n;
        let vinv = vdupq_n_f32(1.0 / (var + eps).sqrt());

        let norm = |x: float32x4_t, g: float32x4_t, b: float32x4_t| {
            vfmaq_f32(b, vmulq_f32(vsubq_f32(x, vmean), vinv), g)
        };
        let mut rc = row.chunks_exact_mut(LANES);
        let mut gc = gamma.chunks_exact(LANES);
        let mut bc = beta.chunks_exact(LANES);
        for ((x, g), b) in (&mut rc).zip(&mut gc).zip(&mut bc) {
            store(x, norm(load(x), load(g), load(b)));
        }
        let (xt, gt, bt) = (rc.into_remainder(), gc.remainder(), bc.remainder());
        store_tail(xt, norm(load_tail(xt), load_tail(gt), load_tail(bt)));
    }
}

/// 0.5·x·(1 + erf(x/√2)) per lane, with the erf formula of `scalar.rs`.
#[inline(always)]
fn gelu4(x: float32x4_t) -> float32x4_t {
    // SAFETY: NEON is part of the aarch64 baseline; memory goes through the checked helpers.
    unsafe {
        let z = vmulq_f32(x, vdupq_n_f32(std::f32::consts::FRAC_1_SQRT_2));
        let az = vabsq_f32(z);
        let one = vdupq_n_f32(1.0);
        let t = vdivq_f32(one, vfmaq_f32(one, vdupq_n_f32(ERF_P), az));
        let mut poly = vdupq_n_f32(ERF_A[4]);
        for &a in ERF_A[..4].iter().rev() {
            poly = vfmaq_f32(vdupq_n_f32(a), poly, t);
        }
        poly = vmulq_f32(poly, t);
        let e = exp(vnegq_f32(vmulq_f32(az, az)));
        let erf_abs = vfmsq_f32(one, poly, e);
        let sign = vandq_u32(vreinterpretq_u32_f32(z), vdupq_n_u32(0x8000_0000));
        let erf = vreinterpretq_f32_u32(vorrq_u32(vreinterpretq_u32_f32(erf_abs), sign));
        vmulq_f32(vmulq_f32(vdupq_n_f32(0.5), x), vaddq_f32(one, erf))
    }
}

pub(super) fn gelu(x: &mut [f32]) {
    let mut chunks = x.chunks_exact_mut(LANES);
    for c in &mut chunks {
        store(c, gelu4(load(c)));
    }
    let tail = chunks.into_remainder();
    store_tail(tail, gelu4(load_tail(tail)));
}

/// `acc[r][c] += a[r] · b[c]` over one eight-element step (low and high halves).
#[inline(always)]
fn accumulate<const MR: usize, const NR: usize>(
    acc: &mut [[float32x4_t; NR]; MR],
    av: &[(float32x4_t, float32x4_t); MR],
    bv: &[(float32x4_t, float32x4_t); NR],
) {
    // SAFETY: NEON is part of the aarch64 baseline; memory goes through the checked helpers.
    unsafe {
        for (acc_r, &(a_lo, a_hi)) in acc.iter_mut().zip(av) {
            for (s, &(w_lo, w_hi)) in acc_r.iter_mut().zip(bv) {
                *s = vfmaq_f32(vfmaq_f32(*s, a_lo, w_lo), a_hi, w_hi);
            }
        }
    }
}

/// `out[r][c] = a[r] · b[c]` for `MR` rows of `a` (f32) and `NR` rows of `b` (f16), rows of
/// length `k`; each converted weight vector is reused for all `MR` rows.
pub(super) fn f16_tile<const MR: usize, const NR: usize>(
    a: &[f32],
    b: &[f16],
    k: usize,
) -> [[f32; NR]; MR] {
    // SAFETY: NEON is part of the aarch64 baseline; memory goes through the checked helpers.
    unsafe {
        let mut acc = [[vdupq_n_f32(0.0); NR]; MR];
        let body = k - k % (2 * LANES);
        for p in (0..body).step_by(2 * LANES) {
            let bv = std::array::from_fn(|c| load_f16(&b[c * k + p..]));
            let av = std::array::from_fn(|r| {
                let s = &a[r * k + p..];
                (load(s), load(&s[LANES..]))
            });
            accumulate(&mut acc, &av, &bv);
        }
        if body < k {
            let bv = std::array::from_fn(|c| load_f16_tail(&b[c * k + body..(c + 1) * k]));
            let av = std::array::from_fn(|r| {
                let s = &a[r * k + body..(r + 1) * k];
                let split = s.len().min(LANES);
                (load_tail(&s[..split]), load_tail(&s[split..]))
            });
            accumulate(&mut acc, &av, &bv);
        }
        let mut out = [[0.0; NR]; MR];
        for (o_r, acc_r) in out.iter_mut().zip(&acc) {
            for (o, &s) in o_r.iter_mut().zip(acc_r) {
                *o = vaddvq_f32(s);
            }
        }
        out
    }
}

/// C[rows×cols] += A·B for one 6×16 register tile of the blocked GEMM (see
/// `Backend::gemm_tile`): 24 accumulators, four B vectors and one A value fit NEON's 32
/// registers.
pub(super) fn gemm_tile(
    kc: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    ldc: usize,
    rows: usize,
    cols: usize,
) {
    // SAFETY: NEON is part of the aarch64 baseline; memory goes through the checked helpers.
    unsafe {
        let mut acc = [[vdupq_n_f32(0.0); NR / LANES]; MR];
        for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)).take(kc) {
            let bv: [float32x4_t; NR / LANES] = std::array::from_fn(|q| load(&bp[q * LANES..]));
            for (acc_r, &av) in acc.iter_mut().zip(ap) {
                for (s, &w) in acc_r.iter_mut().zip(&bv) {
                    *s = vfmaq_n_f32(*s, w, av);
                }
            }
        }
        let mut tile = [[0.0f32; NR]; MR];
        for (t_row, acc_r) in tile.iter_mut().zip(&acc) {
            for (chunk, &s) in t_row.chunks_exact_mut(LANES).zip(acc_r) {
                store(chunk, s);
            }
        }
        add_tile(c, ldc, rows, cols, &tile);
    }
}
