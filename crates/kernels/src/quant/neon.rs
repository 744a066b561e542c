//! aarch64 NEON versions of the quantized dot products in `scalar.rs`, on the aarch64 baseline
//! and with the dot product extension (`sdot`, ARMv8.2).
//!
//! The integer sums are the scalar path's, sixteen bytes at a time. Every weight value is
//! brought to a signed byte first (nibbles as 0..=15 or minus 8, Q6_K's six bits minus 32);
//! [`ByteDot`] then adds sixteen byte products into four i32 lanes, the one step where the
//! paths differ:
//!
//! - [`Widening`], the baseline: `vmull_s8` and `vmlal_high_s8` multiply signed bytes into i16
//!   and add the two halves (|sum| ≤ 2·128·127, so never overflowing), and `vpadalq_s16` widens
//!   pairs into the i32 accumulators;
//! - [`Sdot`]: one `sdot`, which adds four neighbouring products into each i32 lane. Its
//!   intrinsic (`vdotq_s32`) is not stable Rust yet, so it is written as inline assembly.
//!
//! Each block's sum is then scaled in f32 into per-row accumulators.
//!
//! NEON is part of the aarch64 baseline, so the intrinsics' `unsafe` only asks for that
//! (each block says so); memory is read through the bounds-checked load helpers. The
//! functions generic over [`ByteDot`] are `unsafe` for the one thing beyond NEON they may
//! need: `sdot`, which `Backend::q_tile` reaches only through `Isa::NeonDotprod`, which exists
//! only once the extension was detected.

use super::scalar::{f16_le, q4_k_scales_mins};
use super::{ActRows, QuantType};
use std::arch::aarch64::*;
use std::arch::asm;

pub(super) fn tile<const R: usize>(ty: QuantType, w: &[u8], acts: ActRows) -> [f32; R] {
    // SAFETY: `Widening` needs only NEON, part of the aarch64 baseline.
    unsafe { tile_with::<R, Widening>(ty, w, acts) }
}

/// [`tile`] with `sdot` for the byte dot products.
///
/// # Safety
///
/// The CPU has the dot product extension.
#[target_feature(enable = "dotprod")]
pub(super) unsafe fn tile_dotprod<const R: usize>(
    ty: QuantType,
    w: &[u8],
    acts: ActRows,
) -> [f32; R] {
    tile_with::<R, Sdot>(ty, w, acts)
}

/// # Safety
///
/// The CPU has `D`'s instructions.
#[inline(always)]
unsafe fn tile_with<const R: usize, D: ByteDot>(
    ty: QuantType,
    w: &[u8],
    acts: ActRows,
) -> [f32; R] {
    match ty {
        QuantType::Q8_0 => blocks32::<R, Q8_0, D>(w, acts),
        QuantType::Q4_0 => blocks32::<R, Q4_0, D>(w, acts),
        QuantType::Q4_1 => blocks32::<R, Q4_1, D>(w, acts),
        QuantType::Q5_0 => blocks32::<R, Q5_0, D>(w, acts),
        QuantType::Q5_1 => blocks32::<R, Q5_1, D>(w, acts),
        QuantType::Q4_K => q4_k::<R, D>(w, acts),
        QuantType::Q6_K => q6_k::<R, D>(w, acts),
        QuantType::F32 | QuantType::F16 => unreachable!("not a quantized type: {ty:?}"),
    }
}

/// `acc` plus Σ q·y over sixteen signed bytes, as four i32 partial sums. The implementations
/// spread the products over the lanes differently; the lanes' total is the same integer.
trait ByteDot {
    /// # Safety
    ///
    /// The CPU has the implementation's instructions (inlined into a function that enables
    /// them).
    unsafe fn dot16(acc: int32x4_t, q: int8x16_t, y: int8x16_t) -> int32x4_t;
}

/// The aarch64 baseline's widening multiplies.
struct Widening;
/// The dot product extension's `sdot`.
struct Sdot;

impl ByteDot for Widening {
    #[inline(always)]
    unsafe fn dot16(acc: int32x4_t, q: int8x16_t, y: int8x16_t) -> int32x4_t {
        let pairs = vmlal_high_s8(vmull_s8(vget_low_s8(q), vget_low_s8(y)), q, y);
        vpadalq_s16(acc, pairs)
    }
}

impl ByteDot for Sdot {
    #[inline(always)]
    unsafe fn dot16(acc: int32x4_t, q: int8x16_t, y: int8x16_t) -> int32x4_t {
        let mut acc = acc;
        asm!(
            "sdot {acc:v}.4s, {q:v}.16b, {y:v}.16b",
            acc = inout(vreg) acc,
            q = in(vreg) q,
            y = in(vreg) y,
            options(pure, nomem, nostack, preserves_flags),
        );
        acc
    }
}

/// The 32-value format `blocks32` reads.
const Q8_0: u8 = 0;
const Q4_0: u8 = 1;
const Q4_1: u8 = 2;
const Q5_0: u8 = 3;
const Q5_1: u8 = 4;

#[inline(always)]
fn load_u8(s: &[u8]) -> uint8x16_t {
    assert!(s.len() >= 16);
    // SAFETY: sixteen in-bounds bytes.
    unsafe { vld1q_u8(s.as_ptr()) }
}

#[inline(always)]
fn load_i8(s: &[i8]) -> int8x16_t {
    assert!(s.len() >= 16);
    // SAFETY: sixteen in-bounds bytes.
    unsafe { vld1q_s8(s.as_ptr()) }
}

/// Sixteen bytes of nibbles as (low nibbles, high nibbles), each 0..=15.
#[inline(always)]
fn nibbles(packed: &[u8]) -> (int8x16_t, int8x16_t) {
    let bytes = load_u8(packed);
    // SAFETY: NEON is part of the aarch64 baseline.
    unsafe {
        let low = vandq_u8(bytes, vdupq_n_u8(0x0F));
        let high = vshrq_n_u8::<4>(bytes);
        (vreinterpretq_s8_u8(low), vreinterpretq_s8_u8(high))
    }
}

/// Q5_0/Q5_1 values (0..=31) of a block: its sixteen nibble bytes with the fifth bits of its
/// `qh` word, as (values 0..16, values 16..32).
#[inline(always)]
fn fives(qh: &[u8], packed: &[u8]) -> (int8x16_t, int8x16_t) {
    let (low, high) = nibbles(packed);
    const BITS: [u8; 16] = [1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128];
    // SAFETY: NEON is part of the aarch64 baseline; BITS is sixteen bytes.
    unsafe {
        let bits = vld1q_u8(BITS.as_ptr());
        // Byte j of a half takes byte j / 8 of its half of qh and keeps bit j % 8 of it.
        let fifth = |a: u8, b: u8| {
            let spread = vcombine_u8(vdup_n_u8(a), vdup_n_u8(b));
            vreinterpretq_s8_u8(vandq_u8(vtstq_u8(spread, bits), vdupq_n_u8(0x10)))
        };
        (
            vorrq_s8(low, fifth(qh[0], qh[1])),
            vorrq_s8(high, fifth(qh[2], qh[3])),
        )
    }
}

/// Σ q·y of 32 weight values (two vectors) with row `r`'s activations from value `at`.
///
/// # Safety
///
/// The CPU has `D`'s instructions.
#[inline(always)]
unsafe fn dot32<D: ByteDot>(
    q: (int8x16_t, int8x16_t),
    acts: &ActRows,
    r: usize,
    at: usize,
) -> int32x4_t {
    let y = &acts.qs[r * acts.cols + at..][..32];
    let first = D::dot16(vdupq_n_s32(0), q.0, load_i8(&y[..16]));
    D::dot16(first, q.1, load_i8(&y[16..]))
}

/// `acc + sumi · scale` in f32.
#[inline(always)]
fn scale_into(acc: float32x4_t, sumi: int32x4_t, scale: f32) -> float32x4_t {
    // SAFETY: NEON is part of the aarch64 baseline.
    unsafe { vfmaq_f32(acc, vcvtq_f32_s32(sumi), vdupq_n_f32(scale)) }
}

#[inline(always)]
fn sum_lanes(acc: float32x4_t) -> f32 {
    // SAFETY: NEON is part of the aarch64 baseline.
    unsafe { vaddvq_f32(acc) }
}

/// Q8_0, Q4_0, Q4_1, Q5_0 or Q5_1 (`FORMAT`), as signed bytes: Q8_0 as stored, Q4_0's
/// nibbles minus 8, Q5_0's values minus 16, Q4_1's and Q5_1's as they are (their offset
/// multiplies the activations' block sums).
///
/// # Safety
///
/// The CPU has `D`'s instructions.
#[inline(always)]
unsafe fn blocks32<const R: usize, const FORMAT: u8, D: ByteDot>(
    w: &[u8],
    acts: ActRows,
) -> [f32; R] {
    let block_bytes = match FORMAT {
        Q8_0 => 34,
        Q4_0 => 18,
        Q4_1 => 20,
        Q5_0 => 22,
        _ => 24,
    };
    // SAFETY: NEON is part of the aarch64 baseline.
    let (mut acc, eight, sixteen) =
        unsafe { ([vdupq_n_f32(0.0); R], vdupq_n_s8(8), vdupq_n_s8(16)) };
    let mut offsets = [0.0f32; R];
    for (b, block) in w.chunks_exact(block_bytes).enumerate() {
        let d = f16_le(block, 0);
        let q = match FORMAT {
            Q8_0 => {
                let q = &block[2..34];
                // SAFETY: NEON is part of the aarch64 baseline.
                unsafe {
                    (
                        vreinterpretq_s8_u8(load_u8(&q[..16])),
                        vreinterpretq_s8_u8(load_u8(&q[16..])),
                    )
                }
            }
            Q4_0 => {
                let (low, high) = nibbles(&block[2..18]);
                // SAFETY: NEON is part of the aarch64 baseline.
                unsafe { (vsubq_s8(low, eight), vsubq_s8(high, eight)) }
            }
            Q4_1 => nibbles(&block[4..20]),
            Q5_0 => {
                let (low, high) = fives(&block[2..6], &block[6..22]);
                // SAFETY: NEON is part of the aarch64 baseline.
                unsafe { (vsubq_s8(low, sixteen), vsubq_s8(high, sixteen)) }
            }
            _ => fives(&block[4..8], &block[8..24]),
        };
        for r in 0..R {
            let sumi = dot32::<D>(q, &acts, r, 32 * b);
            acc[r] = scale_into(acc[r], sumi, d * acts.scale(r, b, 32));
            if FORMAT == Q4_1 || FORMAT == Q5_1 {
                offsets[r] += f16_le(block, 2) * acts.scaled_sum(r, b, 32);
            }
        }
    }
    std::array::from_fn(|r| sum_lanes(acc[r]) + offsets[r])
}

/// Q4_K: each 32-value sub-block's sum times its 6-bit scale; the mins multiply the
/// activations' 16-value sums.
///
/// # Safety
///
/// The CPU has `D`'s instructions.
#[inline(always)]
unsafe fn q4_k<const R: usize, D: ByteDot>(w: &[u8], acts: ActRows) -> [f32; R] {
    // SAFETY: NEON is part of the aarch64 baseline.
    let (mut acc, zero) = unsafe { ([vdupq_n_f32(0.0); R], vdupq_n_s32(0)) };
    let mut offsets = [0.0f32; R];
    for (b, block) in w.chunks_exact(144).enumerate() {
        let (d, dmin) = (f16_le(block, 0), f16_le(block, 2));
        let (scales, mins) = q4_k_scales_mins(&block[4..16]);
        let mut sumi = [zero; R];
        for (c, chunk) in block[16..].chunks_exact(32).enumerate() {
            let (low0, high0) = nibbles(&chunk[..16]);
            let (low1, high1) = nibbles(&chunk[16..]);
            for (r, sumi) in sumi.iter_mut().enumerate() {
                let at = 256 * b + 64 * c;
                let low = dot32::<D>((low0, low1), &acts, r, at);
                let high = dot32::<D>((high0, high1), &acts, r, at + 32);
                // SAFETY: NEON is part of the aarch64 baseline.
                unsafe {
                    *sumi = vmlaq_n_s32(*sumi, low, scales[2 * c] as i32);
                    *sumi = vmlaq_n_s32(*sumi, high, scales[2 * c + 1] as i32);
                }
            }
        }
        for r in 0..R {
            let sums = acts.sums(r, b, 256);
            let summ: i32 = (0..8)
                .map(|j| mins[j] as i32 * (sums[2 * j] as i32 + sums[2 * j + 1] as i32))
                .sum();
            let dx = acts.scale(r, b, 256);
            acc[r] = scale_into(acc[r], sumi[r], d * dx);
            offsets[r] += dmin * dx * summ as f32;
        }
    }
    std::array::from_fn(|r| sum_lanes(acc[r]) - offsets[r])
}

/// Q6_K: the six-bit values assembled from `ql` and `qh`, minus 32, as signed bytes; each
/// 16-value group's sum times its scale.
///
/// # Safety
///
/// The CPU has `D`'s instructions.
#[inline(always)]
unsafe fn q6_k<const R: usize, D: ByteDot>(w: &[u8], acts: ActRows) -> [f32; R] {
    // SAFETY: NEON is part of the aarch64 baseline.
    let (mut acc, zero) = unsafe { ([vdupq_n_f32(0.0); R], vdupq_n_s32(0)) };
    for (b, block) in w.chunks_exact(210).enumerate() {
        let d = f16_le(block, 208);
        let mut sumi = [zero; R];
        // Values l..l+16 (l = 16k) of the four 32-value groups of half h at a time.
        for (h, k) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
            let ql0 = load_u8(&block[64 * h + 16 * k..]);
            let ql1 = load_u8(&block[64 * h + 32 + 16 * k..]);
            let qh = load_u8(&block[128 + 32 * h + 16 * k..]);
            // SAFETY: NEON is part of the aarch64 baseline.
            let quants = unsafe {
                let (low_mask, high_mask) = (vdupq_n_u8(0x0F), vdupq_n_u8(0x30));
                // Bits 2g..2g+2 of qh moved to bits 4..6, below the low four bits.
                let six = [
                    vorrq_u8(
                        vandq_u8(ql0, low_mask),
                        vandq_u8(vshlq_n_u8::<4>(qh), high_mask),
                    ),
                    vorrq_u8(
                        vandq_u8(ql1, low_mask),
                        vandq_u8(vshlq_n_u8::<2>(qh), high_mask),
                    ),
                    vorrq_u8(vshrq_n_u8::<4>(ql0), vandq_u8(qh, high_mask)),
                    vorrq_u8(
                        vshrq_n_u8::<4>(ql1),
                        vandq_u8(vshrq_n_u8::<2>(qh), high_mask),
                    ),
                ];
                six.map(|q| vsubq_s8(vreinterpretq_s8_u8(q), vdupq_n_s8(32)))
            };
            for (g, q) in quants.into_iter().enumerate() {
                let at = 128 * h + 32 * g + 16 * k;
                let scale = block[192 + at / 16] as i8 as i32;
                for (r, sumi) in sumi.iter_mut().enumerate() {
                    let y = load_i8(&acts.qs[r * acts.cols + 256 * b + at..]);
                    let part = D::dot16(zero, q, y);
                    // SAFETY: NEON is part of the aarch64 baseline.
                    *sumi = unsafe { vmlaq_n_s32(*sumi, part, scale) };
                }
            }
        }
        for r in 0..R {
            acc[r] = scale_into(acc[r], sumi[r], d * acts.scale(r, b, 256));
        }
    }
    std::array::from_fn(|r| sum_lanes(acc[r]))
}
