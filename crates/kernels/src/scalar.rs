//! Portable reference kernels: the ground truth the SIMD paths are tested against, and the
//! fallback on CPUs without them. Written to be obviously correct; the eight-wide partial sums
//! only let the compiler vectorise the reductions.

use super::gemm::{add_tile, MR, NR};
use half::f16;

/// Abramowitz & Stegun 7.1.26: erf(x) ≈ 1 - (a1·t + … + a5·t⁵)·exp(-x²), t = 1/(1 + p·x),
/// for x ≥ 0, absolute error ≤ 1.5e-7. Shared with the SIMD paths so all compute one formula.
pub(super) const ERF_P: f32 = 0.327_591_1;
pub(super) const ERF_A: [f32; 5] = [
    0.254_829_6,
    -0.284_496_74,
    1.421_413_8,
    -1.453_152,
    1.061_405_4,
];

pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    dot_by(a, b, |x| x)
}

pub(super) fn dot_f16(a: &[f16], b: &[f32]) -> f32 {
    dot_by(a, b, f16::to_f32)
}

fn dot_by<T: Copy>(a: &[T], b: &[f32], to_f32: impl Fn(T) -> f32) -> f32 {
    let (ac, bc) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ac
        .remainder()
        .iter()
        .zip(bc.remainder())
        .map(|(&x, y)| to_f32(x) * y)
        .sum();
    let mut acc = [0.0f32; 8];
    for (xa, ya) in ac.zip(bc) {
        for ((s, &x), y) in acc.iter_mut().zip(xa).zip(ya) {
            *s += to_f32(x) * y;
        }
    }
    acc.iter().sum::<f32>() + tail
}

pub(super) fn axpy(x: &mut [f32], alpha: f32, y: &[f32]) {
    for (x, y) in x.iter_mut().zip(y) {
        *x += alpha * y;
    }
}

pub(super) fn f16_to_f32(src: &[f16], dst: &mut [f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = s.to_f32();
    }
}

pub(super) fn max(x: &[f32]) -> f32 {
    x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v))
}

pub(super) fn sum_exp(x: &[f32], shift: f32) -> f32 {
    x.iter().map(|&v| (v - shift).exp()).sum()
}

pub(super) fn softmax_scaled(x: &mut [f32], scale: f32) {
    let max = max(x);
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = ((*v - max) * scale).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

pub(super) fn layer_norm_row(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    // Two passes (mean, then squared deviations) stay accurate when |mean| ≫ std.
    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, g), b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = (*v - mean) * inv * g + b;
    }
}

pub(super) fn gelu(x: &mut [f32]) {
    for v in x {
        *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

fn erf(x: f32) -> f32 {
    let ax = x.abs();
    let t = 1.0 / (1.0 + ERF_P * ax);
    let poly = ERF_A.iter().rev().fold(0.0, |acc, &a| acc * t + a) * t;
    (1.0 - poly * (-ax * ax).exp()).copysign(x)
}

/// Dot products of `MR` rows of `a` with `NR` rows of `b` (both with row length `k`):
/// `out[r][c] = a[r] · b[c]`. The tile shape exists for the SIMD versions; here it is a loop.
pub(super) fn f16_tile<const MR: usize, const NR: usize>(
    a: &[f32],
    b: &[f16],
    k: usize,
) -> [[f32; NR]; MR] {
    let mut out = [[0.0; NR]; MR];
    for (r, row) in out.iter_mut().enumerate() {
        for (c, o) in row.iter_mut().enumerate() {
            *o = dot_f16(&b[c * k..(c + 1) * k], &a[r * k..(r + 1) * k]);
        }
    }
    out
}

/// C[rows×cols] += A·B for one register tile of the blocked GEMM (see `Backend::gemm_tile`).
pub(super) fn gemm_tile(
    kc: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    ldc: usize,
    rows: usize,
    cols: usize,
) {
    let mut acc = [[0.0f32; NR]; MR];
    for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)).take(kc) {
        for (acc_r, &av) in acc.iter_mut().zip(ap) {
            for (s, &bv) in acc_r.iter_mut().zip(bp) {
                *s += av * bv;
            }
        }
    }
    add_tile(c, ldc, rows, cols, &acc);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_libm() {
        let mut worst = 0.0f64;
        for i in -8000..=8000 {
            let x = i as f32 * 1e-3;
            let err = (erf(x) as f64 - libm::erf(x as f64)).abs();
            worst = worst.max(err);
        }
        // 1.5e-7 from the formula plus f32 rounding in the alternating-sign polynomial (worst
        // near |x| = 0.25, where GELU scales it by 0.5·|x|·√2 ≈ 0.18).
        assert!(worst < 5e-7, "erf worst abs error {worst}");
    }

    #[test]
    fn softmax_of_equal_values_is_uniform() {
        let mut x = [3.0f32; 4];
        softmax_scaled(&mut x, 1.0);
        assert!(x.iter().all(|&v| (v - 0.25).abs() < 1e-7));
    }

    #[test]
    fn layer_norm_row_normalises() {
        let mut row = [1.0f32, 2.0, 3.0, 4.0];
        layer_norm_row(&mut row, &[1.0; 4], &[0.0; 4], 0.0);
        let sd = 1.25f32.sqrt();
        let want = [-1.5 / sd, -0.5 / sd, 0.5 / sd, 1.5 / sd];
        for (g, w) in row.iter().zip(want) {
            assert!((g - w).abs() < 1e-6);
        }
    }

    #[test]
    fn dots_handle_tails() {
        let a: Vec<f32> = (1..=11).map(|v| v as f32).collect();
        let h: Vec<f16> = a.iter().map(|&v| f16::from_f32(v)).collect();
        let want: f32 = a.iter().map(|v| v * v).sum();
        assert_eq!(dot(&a, &a), want);
        assert_eq!(dot_f16(&h, &a), want);
    }
}
