//! Shared helpers for the kernel tests: a tiny deterministic PRNG and tolerance checks.

use half::f16;

/// xorshift64*: deterministic, dependency-free, good enough for test data.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [-1, 1).
    pub(super) fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    pub(super) fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.unit() * scale).collect()
    }

    pub(super) fn vec_f16(&mut self, n: usize, scale: f32) -> Vec<f16> {
        (0..n).map(|_| f16::from_f32(self.unit() * scale)).collect()
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
