//! Shared helpers for the kernel tests: random test vectors and tolerance checks.

use super::Backend;
use half::f16;

pub(super) use voxd_rng::Rng;

/// Random test vectors, uniform in [-scale, scale).
pub(super) trait RandomVec {
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32>;
    fn vec_f16(&mut self, n: usize, scale: f32) -> Vec<f16>;
}

impl RandomVec for Rng {
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.signed_f32() * scale).collect()
    }

    fn vec_f16(&mut self, n: usize, scale: f32) -> Vec<f16> {
        (0..n)
            .map(|_| f16::from_f32(self.signed_f32() * scale))
            .collect()
    }
}

/// Sizes that exercise full vectors, ragged tails and tiny edge cases.
pub(super) const ODD_SIZES: [usize; 12] = [0, 1, 3, 7, 8, 9, 31, 63, 64, 65, 384, 1000];

/// Asserts `|got - want| <= tol * (1 + |want|)` elementwise.
#[track_caller]
pub(super) fn assert_close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "length mismatch");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        assert!(
            err <= tol * (1.0 + w.abs()),
            "element {i}: got {g}, want {w}, err {err}, tol {tol}"
        );
    }
}

/// Tolerance for sums of `k` products of unit-scale values: rounding grows like √k.
pub(super) fn dot_tol(k: usize) -> f32 {
    1e-5 * (1.0 + (k as f32).sqrt())
}

/// Every SIMD backend this CPU can run (all of them are checked against the scalar path, not
/// only the best). Says so on stderr when this CPU lacks AVX-512, whose kernels then go
/// untested here.
pub(super) fn simd_backends() -> Vec<Backend> {
    let simd: Vec<Backend> = Backend::available()
        .into_iter()
        .filter(|&b| b != Backend::SCALAR)
        .collect();
    #[cfg(target_arch = "x86_64")]
    if !simd.iter().any(|b| b.name().starts_with("avx512")) {
        eprintln!("this CPU has no AVX-512: the avx512 kernels are not tested here");
    }
    simd
}
