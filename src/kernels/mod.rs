//! Compute kernels behind a small safe API: SIMD paths beside their scalar references.
