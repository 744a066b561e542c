//! AVX2 and AVX-512 versions of the quantized dot products in `scalar.rs`, with `maddubs` or
//! with AVX-VNNI's or AVX-512 VNNI's byte dot product.
//!
//! The integer sums are the scalar path's, computed 32 bytes at a time:
//! `_mm256_maddubs_epi16` multiplies unsigned weight bytes by signed activation bytes and adds
//! neighbouring pairs into i16 (never saturating here: |pair| ≤ 2·128·127), and
//! `_mm256_madd_epi16` widens pairs of those to i32, multiplied by one (or by the sub-block's
//! scale for the k-quants). Signed weights (Q8_0, Q4_0, Q5_0) move their sign onto the activation
//! first. Each block's i32 sums are then scaled in f32 into per-row accumulators.
//!
//! The 32-value formats are generic over [`ByteDot`], the one step where the paths differ: the
//! `maddubs` + `madd` pair, or one `vpdpbusd` (VNNI), which sums four products into each i32
//! lane directly. AVX-VNNI is the VEX encoding of the same instruction, for CPUs without
//! AVX-512 (Alder Lake and later client chips). The k-quants stay on `maddubs`, whose i16
//! pairs their sub-block scales multiply in the widening `madd`.
//!
//! The AVX-512 tiles ([`tile_avx512`], [`tile_avx512_vnni`]) take the 32-value formats two
//! blocks to a 512-bit register ([`WideByteDot`]): one unpacking, one byte dot and one
//! scaling FMA per row serve both blocks, the fifth bits of Q5_0/Q5_1 become a 64-bit byte
//! mask that one masked add (or subtract) applies, and the signs of Q8_0/Q4_0/Q5_0 move onto
//! the activations with a masked negation. With one activation row (a generated token) the
//! products are bound by these instructions, not by reading the weights, so halving them pays.
//!
//! # Safety
//!
//! Every function is `unsafe` and runs with AVX2, FMA and F16C enabled: `Backend::q_tile`
//! calls [`tile`] only through an x86 SIMD `Isa`, [`tile_avx_vnni`] only through
//! `Isa::AvxVnni`, [`tile_avx512`] only through `Isa::Avx512` (AVX-512 F, BW and VL) and
//! [`tile_avx512_vnni`] only through `Isa::Avx512Vnni`, which exist only after detection, and only after checking the lengths of the weight row and the activation
//! rows, which the raw-pointer loads below rely on (the weight row is `cols / block_len` whole
//! blocks; the activations hold `R` rows of `cols` values, their scales and their 16-value
//! sums).

use super::super::x86::hsum;
use super::scalar::q4_k_scales_mins;
use super::{ActRows, QuantType, SUM_LEN};
use std::arch::x86_64::*;

#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn tile<const R: usize>(ty: QuantType, w: &[u8], acts: ActRows) -> [f32; R] {
    tile_with::<R, Maddubs>(ty, w, acts)
}

/// [`tile`] with AVX-VNNI's `vpdpbusd` for the byte dot products of the 32-value formats.
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub(super) unsafe fn tile_avx_vnni<const R: usize>(
    ty: QuantType,
    w: &[u8],
    acts: ActRows,
) -> [f32; R] {
    tile_with::<R, AvxVnni>(ty, w, acts)
}

/// [`tile`] with the 32-value formats two blocks to a 512-bit register (AVX-512 BW's
/// `maddubs`); the k-quants as in [`tile`].
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
pub(super) unsafe fn tile_avx512<const R: usize>(
    ty: QuantType,
    w: &[u8],
    acts: ActRows,
) -> [f32; R] {
    tile_wide::<R, Maddubs>(ty, w, acts)
}

/// [`tile_avx512`] with AVX-512 VNNI's `vpdpbusd` for the byte dot products.
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")]
pub(super) unsafe fn tile_avx512_vnni<const R: usize>(
    ty: QuantType,
    w: &[u8],
    acts: ActRows,
) -> [f32; R] {
    tile_wide::<R, Avx512Vnni>(ty, w, acts)
}

#[inline(always)]
unsafe fn tile_wide<const R: usize, D: WideByteDot>(
    ty: QuantType,
    w: &[u8],
    acts: ActRows,
) -> [f32; R] {
    match ty {
        QuantType::Q8_0 => block_pairs::<R, Q8_0, D>(w, acts),
        QuantType::Q4_0 => block_pairs::<R, Q4_0, D>(w, acts),
        QuantType::Q4_1 => block_pairs::<R, Q4_1, D>(w, acts),
        QuantType::Q5_0 => block_pairs::<R, Q5_0, D>(w, acts),
        QuantType::Q5_1 => block_pairs::<R, Q5_1, D>(w, acts),
        _ => tile_with::<R, D>(ty, w, acts),
    }
}

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
        QuantType::Q4_K => q4_k::<R>(w, acts),
        QuantType::Q6_K => q6_k::<R>(w, acts),
        QuantType::F32 | QuantType::F16 => unreachable!("not a quantized type: {ty:?}"),
    }
}

/// Σ q·y over 32 bytes as eight i32 partial sums (each of four neighbouring products); `q`
/// unsigned (≤ 128), `y` signed. Every implementation gives the same integers: the pairs of
/// `maddubs` never saturate here.
trait ByteDot {
    /// # Safety
    ///
    /// The CPU has the implementation's instructions (inlined into a function that enables
    /// them).
    unsafe fn dot(q: __m256i, y: __m256i) -> __m256i;
}

/// [`ByteDot`] on 64 bytes, for AVX-512 (BW) tiles: sixteen i32 partial sums.
trait WideByteDot: ByteDot {
    /// # Safety
    ///
    /// As [`ByteDot::dot`], with AVX-512 BW.
    unsafe fn dot_wide(q: __m512i, y: __m512i) -> __m512i;
}

/// AVX2: `maddubs` into i16 pairs, `madd` by one into i32.
struct Maddubs;
/// AVX-VNNI's VEX-encoded `vpdpbusd`.
struct AvxVnni;
/// AVX-512 VNNI's EVEX-encoded `vpdpbusd` (with VL, on 256-bit registers).
struct Avx512Vnni;

impl ByteDot for Maddubs {
    #[inline(always)]
    unsafe fn dot(q: __m256i, y: __m256i) -> __m256i {
        _mm256_madd_epi16(_mm256_maddubs_epi16(q, y), _mm256_set1_epi16(1))
    }
}

impl ByteDot for AvxVnni {
    #[inline(always)]
    unsafe fn dot(q: __m256i, y: __m256i) -> __m256i {
        _mm256_dpbusd_avx_epi32(_mm256_setzero_si256(), q, y)
    }
}

impl ByteDot for Avx512Vnni {
    #[inline(always)]
    unsafe fn dot(q: __m256i, y: __m256i) -> __m256i {
        _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, y)
    }
}

impl WideByteDot for Maddubs {
    #[inline(always)]
    unsafe fn dot_wide(q: __m512i, y: __m512i) -> __m512i {
        _mm512_madd_epi16(_mm512_maddubs_epi16(q, y), _mm512_set1_epi16(1))
    }
}

impl WideByteDot for Avx512Vnni {
    #[inline(always)]
    unsafe fn dot_wide(q: __m512i, y: __m512i) -> __m512i {
        _mm512_dpbusd_epi32(_mm512_setzero_si512(), q, y)
    }
}

/// The little-endian f16 at `p`, widened.
#[inline(always)]
unsafe fn f16_at(p: *const u8) -> f32 {
    let bits = std::ptr::read_unaligned(p as *const u16);
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
}

/// 32 activation bytes of row `r` from value `at`.
#[inline(always)]
unsafe fn act32(acts: &ActRows, r: usize, at: usize) -> __m256i {
    _mm256_loadu_si256(acts.qs.as_ptr().add(r * acts.cols + at) as *const __m256i)
}

/// Sixteen bytes of nibbles at `p` as 32 bytes: low nibbles, then high nibbles.
#[inline(always)]
unsafe fn nibbles(p: *const u8) -> __m256i {
    let bytes = _mm_loadu_si128(p as *const __m128i);
    let mask = _mm_set1_epi8(0x0F);
    let low = _mm_and_si128(bytes, mask);
    let high = _mm_and_si128(_mm_srli_epi16(bytes, 4), mask);
    _mm256_set_m128i(high, low)
}

/// The fifth bits of Q5_0/Q5_1 (the u32 `qh` at `p`) as 32 bytes: byte `j` is 0x10 when bit
/// `j` is set, else 0.
#[inline(always)]
unsafe fn fifth_bits(p: *const u8) -> __m256i {
    let qh = std::ptr::read_unaligned(p as *const u32);
    // Byte j takes byte j / 8 of qh (the shuffle works within each 128-bit half, and every
    // half holds all of qh), then keeps bit j % 8 of it.
    let spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(qh as i32),
        _mm256_set_epi64x(
            0x0303_0303_0303_0303,
            0x0202_0202_0202_0202,
            0x0101_0101_0101_0101,
            0,
        ),
    );
    let bit = _mm256_set1_epi64x(0x8040_2010_0804_0201_u64 as i64);
    let set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
    _mm256_and_si256(set, _mm256_set1_epi8(0x10))
}

/// The 32-value format `blocks32` reads.
const Q8_0: u8 = 0;
const Q4_0: u8 = 1;
const Q4_1: u8 = 2;
const Q5_0: u8 = 3;
const Q5_1: u8 = 4;

/// Per-row accumulators of `blocks32`: scaled integer sums, and Q4_1's offset terms.
struct Sums<const R: usize> {
    scaled: [__m256; R],
    offsets: [f32; R],
}

impl<const R: usize> Sums<R> {
    #[inline(always)]
    unsafe fn zero() -> Self {
        Sums {
            scaled: [_mm256_setzero_ps(); R],
            offsets: [0.0; R],
        }
    }
}

/// Q8_0, Q4_0, Q4_1, Q5_0 or Q5_1 (`FORMAT`). Even and odd blocks go to separate accumulators, so that
/// with one activation row the FMAs do not wait on each other's latency.
#[inline(always)]
unsafe fn blocks32<const R: usize, const FORMAT: u8, D: ByteDot>(
    w: &[u8],
    acts: ActRows,
) -> [f32; R] {
    let block_bytes = block32_bytes(FORMAT);
    let blocks = acts.cols / 32;
    let (mut even, mut odd) = (Sums::<R>::zero(), Sums::<R>::zero());
    let at = |b: usize| w.as_ptr().add(b * block_bytes);
    let mut b = 0;
    while b + 1 < blocks {
        block32::<R, FORMAT, D>(at(b), &acts, b, &mut even);
        block32::<R, FORMAT, D>(at(b + 1), &acts, b + 1, &mut odd);
        b += 2;
    }
    if b < blocks {
        block32::<R, FORMAT, D>(at(b), &acts, b, &mut even);
    }
    std::array::from_fn(|r| {
        hsum(_mm256_add_ps(even.scaled[r], odd.scaled[r])) + (even.offsets[r] + odd.offsets[r])
    })
}

/// Block `b` at `p` against every row.
#[inline(always)]
unsafe fn block32<const R: usize, const FORMAT: u8, D: ByteDot>(
    p: *const u8,
    acts: &ActRows,
    b: usize,
    sums: &mut Sums<R>,
) {
    let d = f16_at(p);
    let blocks = acts.cols / 32;
    if FORMAT == Q4_1 || FORMAT == Q5_1 {
        let m = f16_at(p.add(2));
        let q = if FORMAT == Q4_1 {
            nibbles(p.add(4))
        } else {
            _mm256_or_si256(nibbles(p.add(8)), fifth_bits(p.add(4)))
        };
        for r in 0..R {
            let sumi = D::dot(q, act32(acts, r, 32 * b));
            let i = r * blocks + b;
            let scale = _mm256_set1_ps(d * *acts.d.get_unchecked(i));
            sums.scaled[r] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(sumi), sums.scaled[r]);
            sums.offsets[r] += m * *acts.scaled_sums.get_unchecked(i);
        }
        return;
    }
    let q = match FORMAT {
        Q4_0 => _mm256_sub_epi8(nibbles(p.add(2)), _mm256_set1_epi8(8)),
        Q5_0 => {
            let five = _mm256_or_si256(nibbles(p.add(6)), fifth_bits(p.add(2)));
            _mm256_sub_epi8(five, _mm256_set1_epi8(16))
        }
        _ => _mm256_loadu_si256(p.add(2) as *const __m256i),
    };
    // maddubs wants unsigned × signed: |q| times y carrying q's sign. Activations are never
    // -128, so negating them is exact.
    let q_abs = _mm256_abs_epi8(q);
    for r in 0..R {
        let y = _mm256_sign_epi8(act32(acts, r, 32 * b), q);
        let sumi = D::dot(q_abs, y);
        let scale = _mm256_set1_ps(d * *acts.d.get_unchecked(r * blocks + b));
        sums.scaled[r] = _mm256_fmadd_ps(scale, _mm256_cvtepi32_ps(sumi), sums.scaled[r]);
    }
}

/// Bytes per block of a 32-value `FORMAT`.
const fn block32_bytes(format: u8) -> usize {
    match format {
        Q8_0 => 34,
        Q4_0 => 18,
        Q4_1 => 20,
        Q5_0 => 22,
        _ => 24,
    }
}

/// `blocks32` on AVX-512: blocks `b` and `b + 1` share a 512-bit register (values 0..32 of
/// the first, then of the second), so unpacking, the byte dot and the scaling take one
/// instruction for both. An odd last block goes through `block32`.
#[inline(always)]
unsafe fn block_pairs<const R: usize, const FORMAT: u8, D: WideByteDot>(
    w: &[u8],
    acts: ActRows,
) -> [f32; R] {
    let block_bytes = block32_bytes(FORMAT);
    let blocks = acts.cols / 32;
    // Alternate pairs go to separate accumulators, so that with one activation row the FMAs
    // do not wait on each other's latency.
    let (mut acc, mut acc_next) = ([_mm512_setzero_ps(); R], [_mm512_setzero_ps(); R]);
    // Q4_1's and Q5_1's m · (activation scale · Σ activations), in lanes 1 and 3.
    let mut offsets = [_mm_setzero_ps(); R];
    let at = |b: usize| w.as_ptr().add(b * block_bytes);
    let mut b = 0;
    while b + 3 < blocks {
        block_pair::<R, FORMAT, D>(at(b), &acts, b, &mut acc, &mut offsets);
        block_pair::<R, FORMAT, D>(at(b + 2), &acts, b + 2, &mut acc_next, &mut offsets);
        b += 4;
    }
    if b + 1 < blocks {
        block_pair::<R, FORMAT, D>(at(b), &acts, b, &mut acc, &mut offsets);
        b += 2;
    }
    for (acc, next) in acc.iter_mut().zip(acc_next) {
        *acc = _mm512_add_ps(*acc, next);
    }
    let mut tail = Sums::<R>::zero();
    if b < blocks {
        block32::<R, FORMAT, D>(at(b), &acts, b, &mut tail);
    }
    std::array::from_fn(|r| {
        let [_, m0, _, m1] = std::mem::transmute::<__m128, [f32; 4]>(offsets[r]);
        _mm512_reduce_add_ps(acc[r]) + hsum(tail.scaled[r]) + (m0 + m1 + tail.offsets[r])
    })
}

/// Blocks `b` and `b + 1` (at `p`) against every row.
#[inline(always)]
unsafe fn block_pair<const R: usize, const FORMAT: u8, D: WideByteDot>(
    p: *const u8,
    acts: &ActRows,
    b: usize,
    acc: &mut [__m512; R],
    offsets: &mut [__m128; R],
) {
    let next = p.add(block32_bytes(FORMAT));
    let has_min = FORMAT == Q4_1 || FORMAT == Q5_1;
    // The f16 scales as one vector: [d, m, d', m'] with mins, else [d, d'].
    let scales = if has_min {
        let dm = |p: *const u8| std::ptr::read_unaligned(p as *const i32);
        _mm_cvtph_ps(_mm_insert_epi32(_mm_cvtsi32_si128(dm(p)), dm(next), 1))
    } else {
        let d = |p: *const u8| std::ptr::read_unaligned(p as *const u16) as i32;
        _mm_cvtph_ps(_mm_cvtsi32_si128(d(p) | d(next) << 16))
    };
    // Which lane of the row's scale products each half of the register takes.
    let spread = if has_min {
        _mm512_set_epi32(2, 2, 2, 2, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0)
    } else {
        _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)
    };
    let q = match FORMAT {
        Q8_0 => _mm512_inserti64x4(
            _mm512_castsi256_si512(_mm256_loadu_si256(p.add(2) as *const __m256i)),
            _mm256_loadu_si256(next.add(2) as *const __m256i),
            1,
        ),
        Q4_0 => _mm512_sub_epi8(nibble_pair(p.add(2), next.add(2)), _mm512_set1_epi8(8)),
        Q4_1 => nibble_pair(p.add(4), next.add(4)),
        // The fifth bits, 64 of them, as a byte mask: Q5_1 adds 16 where set, Q5_0 takes 16
        // off where clear.
        Q5_0 => {
            let high = !fifth_bit_mask(p.add(2), next.add(2));
            let n = nibble_pair(p.add(6), next.add(6));
            _mm512_mask_sub_epi8(n, high, n, _mm512_set1_epi8(16))
        }
        _ => {
            let high = fifth_bit_mask(p.add(4), next.add(4));
            let n = nibble_pair(p.add(8), next.add(8));
            _mm512_mask_add_epi8(n, high, n, _mm512_set1_epi8(16))
        }
    };
    let signed = !has_min;
    // Unsigned × signed as in `block32`: |q| against y with q's sign, negated under a mask.
    let (q, negative) = if signed {
        (_mm512_abs_epi8(q), _mm512_movepi8_mask(q))
    } else {
        (q, 0)
    };
    let blocks = acts.cols / 32;
    for r in 0..R {
        let mut y = _mm512_loadu_si512(acts.qs.as_ptr().add(r * acts.cols + 32 * b) as *const _);
        if signed {
            y = _mm512_mask_sub_epi8(y, negative, _mm512_setzero_si512(), y);
        }
        let sumi = D::dot_wide(q, y);
        let i = r * blocks + b;
        let pair = |v: &[f32]| _mm_castsi128_ps(_mm_loadl_epi64(v.as_ptr().add(i) as *const _));
        let products = if has_min {
            let products = _mm_mul_ps(
                scales,
                _mm_unpacklo_ps(pair(acts.d), pair(acts.scaled_sums)),
            );
            offsets[r] = _mm_add_ps(offsets[r], products);
            products
        } else {
            _mm_mul_ps(scales, pair(acts.d))
        };
        let scale = _mm512_permutexvar_ps(spread, _mm512_castps128_ps512(products));
        acc[r] = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(sumi), acc[r]);
    }
}

/// The nibbles of two blocks (sixteen bytes at `p`, sixteen at `next`) as 64 bytes: low
/// nibbles of `p`, high of `p`, low of `next`, high of `next`.
#[inline(always)]
unsafe fn nibble_pair(p: *const u8, next: *const u8) -> __m512i {
    let both = _mm512_castsi256_si512(_mm256_loadu2_m128i(next as *const _, p as *const _));
    // 128-bit lanes p, p, next, next; the second and fourth shifted down a nibble.
    let twice = _mm512_shuffle_i64x2(both, both, 0b01_01_00_00);
    let shifted = _mm512_mask_srli_epi16(twice, 0xFF00_FF00, twice, 4);
    _mm512_and_si512(shifted, _mm512_set1_epi8(0x0F))
}

/// The fifth bits of two Q5_0/Q5_1 blocks (the u32 `qh` at `p` and at `next`) as a mask of
/// their 64 values.
#[inline(always)]
unsafe fn fifth_bit_mask(p: *const u8, next: *const u8) -> __mmask64 {
    let qh = |p: *const u8| std::ptr::read_unaligned(p as *const u32) as u64;
    qh(p) | qh(next) << 32
}

/// Q4_K: per sub-block of 32, the pair sums are multiplied by the 6-bit scale in the widening
/// `madd`; the mins multiply the activations' 16-value sums.
#[inline(always)]
unsafe fn q4_k<const R: usize>(w: &[u8], acts: ActRows) -> [f32; R] {
    let blocks = acts.cols / 256;
    let low_mask = _mm256_set1_epi8(0x0F);
    let mut acc = [_mm256_setzero_ps(); R];
    let mut offsets = [0.0f32; R];
    for b in 0..blocks {
        let block = w.get_unchecked(b * 144..(b + 1) * 144);
        let p = block.as_ptr();
        let (d, dmin) = (f16_at(p), f16_at(p.add(2)));
        let (scales, mins) = q4_k_scales_mins(&block[4..16]);
        let mut sumi = [_mm256_setzero_si256(); R];
        for c in 0..4 {
            let bytes = _mm256_loadu_si256(p.add(16 + 32 * c) as *const __m256i);
            let low = _mm256_and_si256(bytes, low_mask);
            let high = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), low_mask);
            let scale_low = _mm256_set1_epi16(scales[2 * c] as i16);
            let scale_high = _mm256_set1_epi16(scales[2 * c + 1] as i16);
            for (r, sumi) in sumi.iter_mut().enumerate() {
                let at = 256 * b + 64 * c;
                let lo = _mm256_maddubs_epi16(low, act32(&acts, r, at));
                let hi = _mm256_maddubs_epi16(high, act32(&acts, r, at + 32));
                let both = _mm256_add_epi32(
                    _mm256_madd_epi16(lo, scale_low),
                    _mm256_madd_epi16(hi, scale_high),
                );
                *sumi = _mm256_add_epi32(*sumi, both);
            }
        }
        for r in 0..R {
            let dx = *acts.d.get_unchecked(r * blocks + b);
            let sums = acts
                .sums
                .get_unchecked((r * acts.cols + 256 * b) / SUM_LEN..);
            let summ: i32 = (0..8)
                .map(|j| mins[j] as i32 * (sums[2 * j] as i32 + sums[2 * j + 1] as i32))
                .sum();
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * dx), _mm256_cvtepi32_ps(sumi[r]), acc[r]);
            offsets[r] += dmin * dx * summ as f32;
        }
    }
    std::array::from_fn(|r| hsum(acc[r]) - offsets[r])
}

/// Q6_K: the six-bit values (0..=63) are assembled from `ql` and `qh` with shifts and masks;
/// their -32 is taken off once per block through the activations' 16-value sums.
#[inline(always)]
unsafe fn q6_k<const R: usize>(w: &[u8], acts: ActRows) -> [f32; R] {
    let blocks = acts.cols / 256;
    let low_mask = _mm256_set1_epi8(0x0F);
    let high_mask = _mm256_set1_epi8(0x30);
    let mut acc = [_mm256_setzero_ps(); R];
    for b in 0..blocks {
        let p = w.as_ptr().add(b * 210);
        let d = f16_at(p.add(208));
        let scales: [i8; 16] = std::ptr::read_unaligned(p.add(192) as *const [i8; 16]);
        let mut sumi = [_mm256_setzero_si256(); R];
        for h in 0..2 {
            let ql0 = _mm256_loadu_si256(p.add(64 * h) as *const __m256i);
            let ql1 = _mm256_loadu_si256(p.add(64 * h + 32) as *const __m256i);
            let qh = _mm256_loadu_si256(p.add(128 + 32 * h) as *const __m256i);
            // Bits 2g..2g+2 of qh moved to bits 4..6 (the 16-bit shifts only bring in bits
            // from the neighbouring byte outside the mask).
            let quants = [
                (
                    _mm256_and_si256(ql0, low_mask),
                    _mm256_and_si256(_mm256_slli_epi16(qh, 4), high_mask),
                ),
                (
                    _mm256_and_si256(ql1, low_mask),
                    _mm256_and_si256(_mm256_slli_epi16(qh, 2), high_mask),
                ),
                (
                    _mm256_and_si256(_mm256_srli_epi16(ql0, 4), low_mask),
                    _mm256_and_si256(qh, high_mask),
                ),
                (
                    _mm256_and_si256(_mm256_srli_epi16(ql1, 4), low_mask),
                    _mm256_and_si256(_mm256_srli_epi16(qh, 2), high_mask),
                ),
            ];
            for (g, (low, high)) in quants.into_iter().enumerate() {
                let q = _mm256_or_si256(low, high);
                let group = 8 * h + 2 * g;
                // maddubs' i16 lanes 0..8 cover values 0..16 (one scale), 8..16 the next 16.
                let scale = _mm256_set_m128i(
                    _mm_set1_epi16(scales[group + 1] as i16),
                    _mm_set1_epi16(scales[group] as i16),
                );
                for (r, sumi) in sumi.iter_mut().enumerate() {
                    let pairs =
                        _mm256_maddubs_epi16(q, act32(&acts, r, 256 * b + 128 * h + 32 * g));
                    *sumi = _mm256_add_epi32(*sumi, _mm256_madd_epi16(pairs, scale));
                }
            }
        }
        for r in 0..R {
            let sums = acts
                .sums
                .get_unchecked((r * acts.cols + 256 * b) / SUM_LEN..);
            let offset: i32 = (0..16).map(|g| scales[g] as i32 * sums[g] as i32).sum();
            let sumi =
                _mm256_sub_epi32(sumi[r], _mm256_setr_epi32(32 * offset, 0, 0, 0, 0, 0, 0, 0));
            let dx = *acts.d.get_unchecked(r * blocks + b);
            acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * dx), _mm256_cvtepi32_ps(sumi), acc[r]);
        }
    }
    std::array::from_fn(|r| hsum(acc[r]))
}
