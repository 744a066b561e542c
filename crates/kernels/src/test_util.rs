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

/// The backends only some CPUs of this architecture have, each with what it needs.
#[cfg(target_arch = "x86_64")]
const OPTIONAL_BACKENDS: [(&str, &str); 3] = [
    ("avx-vnni", "AVX-VNNI"),
    ("avx512", "AVX-512"),
    ("avx512-vnni", "AVX-512 VNNI"),
];
#[cfg(target_arch = "aarch64")]
const OPTIONAL_BACKENDS: [(&str, &str); 1] =
    [("neon-dotprod", "dotprod (the dot product extension)")];
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const OPTIONAL_BACKENDS: [(&str, &str); 0] = [];

/// Every SIMD backend this CPU can run (all of them are checked against the scalar path, not
/// only the best). Says on stderr which of [`OPTIONAL_BACKENDS`] this CPU lacks, whose
/// kernels then go untested here.
pub(super) fn simd_backends() -> Vec<Backend> {
    let simd: Vec<Backend> = Backend::available()
        .into_iter()
        .filter(|&b| b != Backend::SCALAR)
        .collect();
    for (name, needs) in OPTIONAL_BACKENDS {
        if !simd.iter().any(|b| b.name() == name) {
            eprintln!("this CPU has no {needs}: the {name} kernels are not tested here");
        }
    }
    simd
}
