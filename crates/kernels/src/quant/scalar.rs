//! The reference for every quantized operation: dequantizing a row, quantizing activations,
//! and the dot products of a weight row with quantized activation rows. Written to be
//! obviously correct; the SIMD paths compute the same integer sums.

use super::{ActRows, QuantType, SUM_LEN};
use half::f16;

/// The little-endian f16 at `at`, widened.
pub(super) fn f16_le(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

/// Q4_0/Q4_1 nibbles (16 bytes) as 32 values: low nibbles first, then high nibbles.
fn nibbles32(packed: &[u8]) -> [u8; 32] {
    let mut q = [0; 32];
    for (i, &b) in packed[..16].iter().enumerate() {
        q[i] = b & 0x0F;
        q[i + 16] = b >> 4;
    }
    q
}

/// Q5_0/Q5_1 values (0..=31) from their 16 nibble bytes and their `qh` word.
fn fives32(qh: &[u8], packed: &[u8]) -> [u8; 32] {
    let high = u32::from_le_bytes(qh[..4].try_into().expect("four bytes"));
    let mut q = nibbles32(packed);
    for (j, q) in q.iter_mut().enumerate() {
        *q |= (((high >> j) & 1) as u8) << 4;
    }
    q
}

/// The eight 6-bit scales and mins of a Q4_K block from its 12 packed bytes.
pub(super) fn q4_k_scales_mins(packed: &[u8]) -> ([u8; 8], [u8; 8]) {
    let (mut scales, mut mins) = ([0; 8], [0; 8]);
    for j in 0..4 {
        scales[j] = packed[j] & 0x3F;
        mins[j] = packed[j + 4] & 0x3F;
        scales[j + 4] = (packed[j + 8] & 0x0F) | ((packed[j] >> 6) << 4);
        mins[j + 4] = (packed[j + 8] >> 4) | ((packed[j + 4] >> 6) << 4);
    }
    (scales, mins)
}

/// The 256 nibbles of a Q4_K block (0..=15), in value order.
fn q4_k_quants(block: &[u8]) -> [u8; 256] {
    let mut q = [0; 256];
    for (c, chunk) in block[16..144].chunks_exact(32).enumerate() {
        for (l, &b) in chunk.iter().enumerate() {
            q[64 * c + l] = b & 0x0F;
            q[64 * c + 32 + l] = b >> 4;
        }
    }
    q
}

/// The 256 six-bit values of a Q6_K block minus 32 (-32..=31), in value order.
fn q6_k_quants(block: &[u8]) -> [i8; 256] {
    let (ql, qh) = (&block[..128], &block[128..192]);
    let mut q = [0; 256];
    for h in 0..2 {
        for l in 0..32 {
            let (lo_a, lo_b, high) = (ql[64 * h + l], ql[64 * h + 32 + l], qh[32 * h + l]);
            let low = [lo_a & 0x0F, lo_b & 0x0F, lo_a >> 4, lo_b >> 4];
            for (g, low) in low.into_iter().enumerate() {
                let six = low | (((high >> (2 * g)) & 3) << 4);
                q[128 * h + 32 * g + l] = six as i8 - 32;
            }
        }
    }
    q
}

/// The sixteen i8 scales of a Q6_K block.
fn q6_k_scales(block: &[u8]) -> [i8; 16] {
    std::array::from_fn(|g| block[192 + g] as i8)
}

pub(super) fn dequantize_row(ty: QuantType, bytes: &[u8], out: &mut [f32]) {
    let blocks = bytes
        .chunks_exact(ty.block_bytes())
        .zip(out.chunks_exact_mut(ty.block_len()));
    for (block, out) in blocks {
        match ty {
            QuantType::F32 => out[0] = f32::from_le_bytes(block.try_into().expect("4 bytes")),
            QuantType::F16 => out[0] = f16_le(block, 0),
            QuantType::Q8_0 => {
                let d = f16_le(block, 0);
                for (o, &q) in out.iter_mut().zip(&block[2..]) {
                    *o = q as i8 as f32 * d;
                }
            }
            QuantType::Q4_0 => {
                let d = f16_le(block, 0);
                for (o, q) in out.iter_mut().zip(nibbles32(&block[2..])) {
                    *o = (q as i32 - 8) as f32 * d;
                }
            }
            QuantType::Q4_1 => {
                let (d, m) = (f16_le(block, 0), f16_le(block, 2));
                for (o, q) in out.iter_mut().zip(nibbles32(&block[4..])) {
                    *o = q as f32 * d + m;
                }
            }
            QuantType::Q5_0 => {
                let d = f16_le(block, 0);
                for (o, q) in out.iter_mut().zip(fives32(&block[2..6], &block[6..])) {
                    *o = (q as i32 - 16) as f32 * d;
                }
            }
            QuantType::Q5_1 => {
                let (d, m) = (f16_le(block, 0), f16_le(block, 2));
                for (o, q) in out.iter_mut().zip(fives32(&block[4..8], &block[8..])) {
                    *o = q as f32 * d + m;
                }
            }
            QuantType::Q4_K => {
                let (d, dmin) = (f16_le(block, 0), f16_le(block, 2));
                let (scales, mins) = q4_k_scales_mins(&block[4..16]);
                let q = q4_k_quants(block);
                for (j, (o, q)) in out.chunks_exact_mut(32).zip(q.chunks_exact(32)).enumerate() {
                    let (step, offset) = (d * scales[j] as f32, dmin * mins[j] as f32);
                    for (o, &q) in o.iter_mut().zip(q) {
                        *o = step * q as f32 - offset;
                    }
                }
            }
            QuantType::Q6_K => {
                let d = f16_le(block, 208);
                let scales = q6_k_scales(block);
                let q = q6_k_quants(block);
                for (g, (o, q)) in out.chunks_exact_mut(16).zip(q.chunks_exact(16)).enumerate() {
                    let step = d * scales[g] as f32;
                    for (o, &q) in o.iter_mut().zip(q) {
                        *o = step * q as f32;
                    }
                }
            }
        }
    }
}

/// Quantizes whole blocks of 32 values into `ty` (Q8_0, Q4_0, Q4_1, Q5_0 or Q5_1), rounding
/// as ggml's reference quantizers do, so that a file voxd writes holds the bytes whisper.cpp's
/// `quantize` would: Q8_0 scales by max|x| / 127 and rounds half away from zero; Q4_0/Q5_0
/// scale by the value of largest magnitude (the first such) over -8 / -16 and truncate
/// `x / d + 8.5` (`+ 16.5`); Q4_1/Q5_1 span min..max in 15 / 31 steps and truncate
/// `(x - min) / d + 0.5`. The step is taken in f32 before it is stored as f16.
pub(super) fn quantize_row(ty: QuantType, x: &[f32], out: &mut [u8]) {
    let blocks = x
        .chunks_exact(32)
        .zip(out.chunks_exact_mut(ty.block_bytes()));
    let inverse = |d: f32| if d != 0.0 { 1.0 / d } else { 0.0 };
    for (x, block) in blocks {
        match ty {
            QuantType::Q8_0 => {
                let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let d = amax / 127.0;
                let inv = inverse(d);
                put_f16(block, 0, d);
                for (q, &v) in block[2..].iter_mut().zip(x) {
                    *q = (v * inv).round() as i8 as u8;
                }
            }
            QuantType::Q4_0 | QuantType::Q5_0 => {
                let levels = if ty == QuantType::Q4_0 { 8 } else { 16 };
                let extreme = x
                    .iter()
                    .fold(0.0f32, |e, &v| if v.abs() > e.abs() { v } else { e });
                let d = extreme / -(levels as f32);
                let inv = inverse(d);
                put_f16(block, 0, d);
                let q = map32(x, |v| {
                    ((v * inv + levels as f32 + 0.5) as i32).min(2 * levels - 1)
                });
                pack(ty, &q, &mut block[2..]);
            }
            QuantType::Q4_1 | QuantType::Q5_1 => {
                let top = if ty == QuantType::Q4_1 { 15 } else { 31 };
                let (min, max) = x
                    .iter()
                    .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
                let d = (max - min) / top as f32;
                let inv = inverse(d);
                put_f16(block, 0, d);
                put_f16(block, 2, min);
                let q = map32(x, |v| (((v - min) * inv + 0.5) as i32).min(top));
                pack(ty, &q, &mut block[4..]);
            }
            _ => unreachable!("no quantizer for {ty:?}"),
        }
    }
}

/// A block of 32 values mapped to small non-negative integers.
fn map32(x: &[f32], f: impl Fn(f32) -> i32) -> [u8; 32] {
    std::array::from_fn(|i| f(x[i]) as u8)
}

/// Packs 32 values of 4 or 5 bits: for five-bit types the `qh` word first, then the nibbles
/// (value `j` low, value `j + 16` high, in byte `j`).
fn pack(ty: QuantType, q: &[u8; 32], out: &mut [u8]) {
    let nibbles = match ty {
        QuantType::Q5_0 | QuantType::Q5_1 => {
            let qh = q
                .iter()
                .enumerate()
                .fold(0u32, |qh, (j, &q)| qh | (((q >> 4) as u32 & 1) << j));
            out[..4].copy_from_slice(&qh.to_le_bytes());
            &mut out[4..]
        }
        _ => out,
    };
    for j in 0..16 {
        nibbles[j] = (q[j] & 0x0F) | ((q[j + 16] & 0x0F) << 4);
    }
}

/// Q8_0 blocks of integers that already share one step: no rounding but the step's to f16.
pub(super) fn q8_0_from_i8(values: &[i8], step: f32, out: &mut [u8]) {
    let blocks = values
        .chunks_exact(32)
        .zip(out.chunks_exact_mut(QuantType::Q8_0.block_bytes()));
    for (q, block) in blocks {
        put_f16(block, 0, step);
        for (b, &v) in block[2..].iter_mut().zip(q) {
            *b = v as u8;
        }
    }
}

fn put_f16(bytes: &mut [u8], at: usize, v: f32) {
    bytes[at..at + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes());
}

/// Rounds to the nearest integer, ties to even, for |v| < 2^22: adding 1.5·2^23 leaves no
/// fraction bits, so the addition itself rounds. (`round_ties_even` is a library call on
/// baseline x86-64; this vectorises, and it is what the SIMD conversions compute.)
fn round_small(v: f32) -> f32 {
    const SHIFTER: f32 = 12_582_912.0;
    (v + SHIFTER) - SHIFTER
}

/// Quantizes one block of activations as `QuantizedActs` defines, writing `qs` and the sums of
/// each 16 of them; returns the block's scale.
pub(super) fn quantize_act_block(x: &[f32], qs: &mut [i8], sums: &mut [i16]) -> f32 {
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let inv = if amax > 0.0 { 127.0 / amax } else { 0.0 };
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = round_small(v * inv) as i8;
    }
    for (s, q) in sums.iter_mut().zip(qs.chunks_exact(SUM_LEN)) {
        *s = q.iter().map(|&q| q as i16).sum();
    }
    amax / 127.0
}

/// The products of one weight row of a quantized type with `R` activation rows.
pub(super) fn tile<const R: usize>(ty: QuantType, w: &[u8], acts: ActRows) -> [f32; R] {
    let mut out = [0.0f32; R];
    let blocks = w.chunks_exact(ty.block_bytes()).enumerate();
    match ty {
        QuantType::Q8_0 => {
            for (b, block) in blocks {
                let d = f16_le(block, 0);
                let q = block[2..].iter().map(|&q| q as i8 as i32);
                for (r, o) in out.iter_mut().enumerate() {
                    *o +=
                        d * acts.scale(r, b, 32) * dot_i32(q.clone(), acts.block(r, b, 32)) as f32;
                }
            }
        }
        QuantType::Q4_0 => {
            for (b, block) in blocks {
                let d = f16_le(block, 0);
                let q = nibbles32(&block[2..]).map(|q| q as i32 - 8);
                for (r, o) in out.iter_mut().enumerate() {
                    let sumi = dot_i32(q.into_iter(), acts.block(r, b, 32));
                    *o += d * acts.scale(r, b, 32) * sumi as f32;
                }
            }
        }
        QuantType::Q4_1 | QuantType::Q5_1 => {
            for (b, block) in blocks {
                let (d, m) = (f16_le(block, 0), f16_le(block, 2));
                let q = match ty {
                    QuantType::Q4_1 => nibbles32(&block[4..]),
                    _ => fives32(&block[4..8], &block[8..]),
                };
                for (r, o) in out.iter_mut().enumerate() {
                    let sumi = dot_i32(q.map(i32::from).into_iter(), acts.block(r, b, 32));
                    let dx = acts.scale(r, b, 32);
                    *o += d * dx * sumi as f32 + m * acts.scaled_sum(r, b, 32);
                }
            }
        }
        QuantType::Q5_0 => {
            for (b, block) in blocks {
                let d = f16_le(block, 0);
                let q = fives32(&block[2..6], &block[6..]).map(|q| q as i32 - 16);
                for (r, o) in out.iter_mut().enumerate() {
                    let sumi = dot_i32(q.into_iter(), acts.block(r, b, 32));
                    *o += d * acts.scale(r, b, 32) * sumi as f32;
                }
            }
        }
        QuantType::Q4_K => {
            for (b, block) in blocks {
                let (d, dmin) = (f16_le(block, 0), f16_le(block, 2));
                let (scales, mins) = q4_k_scales_mins(&block[4..16]);
                let q = q4_k_quants(block);
                for (r, o) in out.iter_mut().enumerate() {
                    let y = acts.block(r, b, 256);
                    let sums = acts.sums(r, b, 256);
                    let mut sumi = 0i32;
                    let mut summ = 0i32;
                    for j in 0..8 {
                        let sub = j * 32..(j + 1) * 32;
                        let q = q[sub.clone()].iter().map(|&q| q as i32);
                        sumi += scales[j] as i32 * dot_i32(q, &y[sub]);
                        summ += mins[j] as i32 * (sums[2 * j] as i32 + sums[2 * j + 1] as i32);
                    }
                    let dx = acts.scale(r, b, 256);
                    *o += d * dx * sumi as f32 - dmin * dx * summ as f32;
                }
            }
        }
        QuantType::Q6_K => {
            for (b, block) in blocks {
                let d = f16_le(block, 208);
                let scales = q6_k_scales(block);
                let q = q6_k_quants(block);
                for (r, o) in out.iter_mut().enumerate() {
                    let y = acts.block(r, b, 256);
                    let mut sumi = 0i32;
                    for (g, &scale) in scales.iter().enumerate() {
                        let sub = g * 16..(g + 1) * 16;
                        let q = q[sub.clone()].iter().map(|&q| q as i32);
                        sumi += scale as i32 * dot_i32(q, &y[sub]);
                    }
                    *o += d * acts.scale(r, b, 256) * sumi as f32;
                }
            }
        }
        QuantType::F32 | QuantType::F16 => unreachable!("not a quantized type: {ty:?}"),
    }
    out
}

fn dot_i32(q: impl Iterator<Item = i32>, y: &[i8]) -> i32 {
    q.zip(y).map(|(q, &y)| q * y as i32).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_is_to_nearest_even() {
        for (v, want) in [
            (0.5, 0.0),
            (1.5, 2.0),
            (-2.5, -2.0),
            (126.49, 126.0),
            (-0.2, 0.0),
        ] {
            assert_eq!(round_small(v), want, "{v}");
        }
    }

    #[test]
    fn q4_k_scales_unpack_both_halves() {
        // Sub-block 0: scale 0b10_0001, min 0b11_0010 (bytes 0 and 4, top bits reused by 4).
        // Sub-block 4: scale low 0b0101, top 0b10; min low 0b1010, top 0b11.
        let mut packed = [0u8; 12];
        packed[0] = 0b1010_0001;
        packed[4] = 0b1111_0010;
        packed[8] = 0b1010_0101;
        let (s, m) = q4_k_scales_mins(&packed);
        assert_eq!((s[0], m[0]), (0b100001, 0b110010));
        assert_eq!((s[4], m[4]), (0b100101, 0b111010));
    }

    #[test]
    fn q6_k_values_come_from_their_bits() {
        let mut block = [0u8; 210];
        // Value 128 + 32·3 + 5 = 229: high nibble of ql[64 + 32 + 5], bits 6..8 of qh[32 + 5].
        block[64 + 32 + 5] = 0xB0;
        block[128 + 32 + 5] = 0b1000_0000;
        let q = q6_k_quants(&block);
        assert_eq!(q[229], (0x0B | (0b10 << 4)) - 32);
        assert_eq!(q.iter().filter(|&&v| v != -32).count(), 1);
    }
}
