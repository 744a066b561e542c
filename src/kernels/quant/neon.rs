//! aarch64 NEON versions of the quantized dot products in `scalar.rs`.
//!
//! The integer sums are the scalar path's, sixteen bytes at a time on the aarch64 baseline
//! (no `dotprod`): `vmull_s8` and `vmlal_high_s8` multiply signed bytes into i16 and add the
//! two halves (|sum| ≤ 2·128·127, so never overflowing), and `vpadalq_s16` widens pairs into
//! i32 accumulators. Every weight value is brought to a signed byte first (nibbles as 0..=15
//! or minus 8, Q6_K's six bits minus 32). Each block's sum is then scaled in f32 into
//! per-row accumulators.
//!
//! NEON is part of the aarch64 baseline, so the arithmetic intrinsics are safe to call; the
//! only `unsafe` is in the two load helpers, which check their bounds.

use super::scalar::{f16_le, q4_k_scales_mins};
use super::{ActRows, QuantType};
use std::arch::aarch64::*;

pub(super) fn tile<const R: usize>(ty: QuantType, w: &[u8], acts: ActRows) -> [f32; R] {
    match ty {
        QuantType::Q8_0 => blocks32::<R>(w, acts, 34, |block| {
            (load_i8(&block[2..18]), load_i8(&block[18..34]), 0.0)
        }),
        QuantType::Q4_0 => blocks32::<R>(w, acts, 18, |block| {
            let (low, high) = nibbles(&block[2..18]);
            let eight = vdupq_n_s8(8);
            (vsubq_s8(low, eight), vsubq_s8(high, eight), 0.0)
        }),
        QuantType::Q4_1 => blocks32::<R>(w, acts, 20, |block| {
            let (low, high) = nibbles(&block[4..20]);
            (low, high, f16_le(block, 2))
        }),
        QuantType::Q4_K => q4_k::<R>(w, acts),
        QuantType::Q6_K => q6_k::<R>(w, acts),
        QuantType::F32 | QuantType::F16 => unreachable!("not a quantized type: {ty:?}"),
    }
}

#[inline(always)]
fn load_u8(s: &[u8]) -> uint8x16_t {
    assert!(s.len() >= 16);
    // SAFETY: sixteen in-bounds bytes.
    unsafe { vld1q_u8(s.as_ptr()) }
}

#[inline(always)]
fn load_i8(s: &[u8]) -> int8x16_t {
    vreinterpretq_s8_u8(load_u8(s))
}

#[inline(always)]
fn load_acts(s: &[i8]) -> int8x16_t {
    assert!(s.len() >= 16);
    // SAFETY: sixteen in-bounds bytes.
    unsafe { vld1q_s8(s.as_ptr()) }
}

/// Sixteen bytes of nibbles as (low nibbles, high nibbles), each 0..=15.
#[inline(always)]
fn nibbles(packed: &[u8]) -> (int8x16_t, int8x16_t) {
    let bytes = load_u8(packed);
    let low = vandq_u8(bytes, vdupq_n_u8(0x0F));
    let high = vshrq_n_u8::<4>(bytes);
    (vreinterpretq_s8_u8(low), vreinterpretq_s8_u8(high))
}

/// `acc` plus Σ q·y over sixteen signed bytes, as four i32 partial sums.
#[inline(always)]
fn dot16(acc: int32x4_t, q: int8x16_t, y: int8x16_t) -> int32x4_t {
    let pairs = vmlal_high_s8(vmull_s8(vget_low_s8(q), vget_low_s8(y)), q, y);
    vpadalq_s16(acc, pairs)
}

/// Σ q·y over one 32-value block of row `r`, from value `at`.
#[inline(always)]
fn dot32(q: (int8x16_t, int8x16_t), acts: &ActRows, r: usize, at: usize) -> int32x4_t {
    let y = &acts.qs[r * acts.cols + at..][..32];
    let sum = dot16(vdupq_n_s32(0), q.0, load_acts(&y[..16]));
    dot16(sum, q.1, load_acts(&y[16..]))
}

/// The 32-value formats: `unpack` gives a block's 32 values as signed bytes and its offset
/// (Q4_1's `m`, zero for the others); the scale `d` is always the block's first f16.
#[inline(always)]
fn blocks32<const R: usize>(
    w: &[u8],
    acts: ActRows,
    block_bytes: usize,
    unpack: impl Fn(&[u8]) -> (int8x16_t, int8x16_t, f32),
) -> [f32; R] {
    let mut acc = [vdupq_n_f32(0.0); R];
    let mut offsets = [0.0f32; R];
    for (b, block) in w.chunks_exact(block_bytes).enumerate() {
        let d = f16_le(block, 0);
        let (low, high, m) = unpack(block);
        for r in 0..R {
            let sumi = dot32((low, high), &acts, r, 32 * b);
            let dx = acts.scale(r, b, 32);
            acc[r] = vfmaq_f32(acc[r], vcvtq_f32_s32(sumi), vdupq_n_f32(d * dx));
            if m != 0.0 {
                offsets[r] += m * (dx * acts.block_sum(r, b, 32) as f32);
            }
        }
    }
    std::array::from_fn(|r| vaddvq_f32(acc[r]) + offsets[r])
}

fn q4_k<const R: usize>(w: &[u8], acts: ActRows) -> [f32; R] {
    let mut acc = [vdupq_n_f32(0.0); R];
    let mut offsets = [0.0f32; R];
    for (b, block) in w.chunks_exact(144).enumerate() {
        let (d, dmin) = (f16_le(block, 0), f16_le(block, 2));
        let (scales, mins) = q4_k_scales_mins(&block[4..16]);
        let mut sumi = [vdupq_n_s32(0); R];
        for (c, chunk) in block[16..].chunks_exact(32).enumerate() {
            let (low0, high0) = nibbles(&chunk[..16]);
            let (low1, high1) = nibbles(&chunk[16..]);
            for (r, sumi) in sumi.iter_mut().enumerate() {
                let at = 256 * b + 64 * c;
                let low = dot32((low0, low1), &acts, r, at);
                let high = dot32((high0, high1), &acts, r, at + 32);
                *sumi = vmlaq_n_s32(*sumi, low, scales[2 * c] as i32);
                *sumi = vmlaq_n_s32(*sumi, high, scales[2 * c + 1] as i32);
            }
        }
        for r in 0..R {
            let sums = acts.sums(r, b, 256);
            let summ: i32 = (0..8)
                .map(|j| mins[j] as i32 * (sums[2 * j] as i32 + sums[2 * j + 1] as i32))
                .sum();
            let dx = acts.scale(r, b, 256);
            acc[r] = vfmaq_f32(acc[r], vcvtq_f32_s32(sumi[r]), vdupq_n_f32(d * dx));
            offsets[r] += dmin * dx * summ as f32;
        }
    }
    std::array::from_fn(|r| vaddvq_f32(acc[r]) - offsets[r])
}

fn q6_k<const R: usize>(w: &[u8], acts: ActRows) -> [f32; R] {
    let low_mask = vdupq_n_u8(0x0F);
    let high_mask = vdupq_n_u8(0x30);
    let thirty_two = vdupq_n_s8(32);
    let mut acc = [vdupq_n_f32(0.0); R];
    for (b, block) in w.chunks_exact(210).enumerate() {
        let d = f16_le(block, 208);
        let mut sumi = [vdupq_n_s32(0); R];
        // Sixteen values l..l+16 of each of the four 32-value groups of half h at a time.
        for (h, k) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            let ql0 = load_u8(&block[64 * h + 16 * k..]);
            let ql1 = load_u8(&block[64 * h + 32 + 16 * k..]);
            let qh = load_u8(&block[128 + 32 * h + 16 * k..]);
            let quants = [
                (
                    vandq_u8(ql0, low_mask),
                    vandq_u8(vshlq_n_u8::<4>(qh), high_mask),
                ),
                (
                    vandq_u8(ql1, low_mask),
                    vandq_u8(vshlq_n_u8::<2>(qh), high_mask),
                ),
                (vshrq_n_u8::<4>(ql0), vandq_u8(qh, high_mask)),
                (
                    vshrq_n_u8::<4>(ql1),
                    vandq_u8(vshrq_n_u8::<2>(qh), high_mask),
                ),
            ];
            for (g, (low, high)) in quants.into_iter().enumerate() {
                let q = vsubq_s8(vreinterpretq_s8_u8(vorrq_u8(low, high)), thirty_two);
                let at = 256 * b + 128 * h + 32 * g + 16 * k;
                let scale = block[192 + at % 256 / 16] as i8 as i32;
                for (r, sumi) in sumi.iter_mut().enumerate() {
                    let y = load_acts(&acts.qs[r * acts.cols + at..]);
                    let part = dot16(vdupq_n_s32(0), q, y);
                    *sumi = vmlaq_n_s32(*sumi, part, scale);
                }
            }
        }
        for r in 0..R {
            let dx = acts.scale(r, b, 256);
            acc[r] = vfmaq_f32(acc[r], vcvtq_f32_s32(sumi[r]), vdupq_n_f32(d * dx));
        }
    }
    std::array::from_fn(|r| vaddvq_f32(acc[r]))
}
