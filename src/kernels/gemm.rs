//! f32 matrix products: `matmul_t`, `matmul`, and the strided product the other kernels use.

use super::{Backend, Isa};

/// A read-only strided matrix: element (i, j) is `data[i * rs + j * cs]`. Transposes and
/// column windows of row-major buffers are views of the same data with other strides.
#[derive(Clone, Copy)]
pub(super) struct View<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl View<'_> {
    /// Panics unless every element of a `rows × cols` matrix lies inside `data`.
    fn check(&self, rows: usize, cols: usize) {
        if rows > 0 && cols > 0 {
            let last = (rows - 1) * self.rs + (cols - 1) * self.cs;
            assert!(last < self.data.len(), "matrix view out of bounds");
        }
    }

    #[inline]
    fn at(&self, i: usize, j: usize) -> f32 {
        self.data[i * self.rs + j * self.cs]
    }
}

/// What C starts from before the product is added.
#[derive(Clone, Copy)]
pub(super) enum Init<'a> {
    Zero,
    /// One value per column, the same for every row.
    Bias(&'a [f32]),
}

/// Products smaller than this many multiply-adds run on one thread: splitting them costs
/// more in synchronisation than it saves.
const PARALLEL_MIN_MACS: usize = 1 << 18;

#[allow(clippy::too_many_arguments)]
pub(super) fn matmul_t(
    be: Backend,
    a: &[f32],
    b: &[f32],
    bias: Option<&[f32]>,
    c: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
) {
    assert_eq!(a.len(), m * k, "matmul_t: a.len() != m*k");
    assert_eq!(b.len(), n * k, "matmul_t: b.len() != n*k");
    assert_eq!(c.len(), m * n, "matmul_t: c.len() != m*n");
    let init = match bias {
        Some(bias) => {
            assert_eq!(bias.len(), n, "matmul_t: bias.len() != n");
            Init::Bias(bias)
        }
        None => Init::Zero,
    };
    let a = View {
        data: a,
        rs: k,
        cs: 1,
    };
    // Bᵀ[p][j] = b[j*k + p]: the transpose is just swapped strides.
    let bt = View {
        data: b,
        rs: 1,
        cs: k,
    };
    gemm(be, m, n, k, a, bt, c, n, init, rayon::current_num_threads());
}

pub(super) fn matmul(
    be: Backend,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
) {
    assert_eq!(a.len(), m * k, "matmul: a.len() != m*k");
    assert_eq!(b.len(), k * n, "matmul: b.len() != k*n");
    assert_eq!(c.len(), m * n, "matmul: c.len() != m*n");
    let a = View {
        data: a,
        rs: k,
        cs: 1,
    };
    let b = View {
        data: b,
        rs: n,
        cs: 1,
    };
    gemm(
        be,
        m,
        n,
        k,
        a,
        b,
        c,
        n,
        Init::Zero,
        rayon::current_num_threads(),
    );
}

/// C[m×n] = init + A[m×k] · B[k×n], where C has row stride `ldc` (columns are contiguous),
/// using up to `threads` threads of the current rayon pool.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm(
    be: Backend,
    m: usize,
    n: usize,
    k: usize,
    a: View,
    b: View,
    c: &mut [f32],
    ldc: usize,
    init: Init,
    threads: usize,
) {
    a.check(m, k);
    b.check(k, n);
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        ldc >= n && (m - 1) * ldc + n <= c.len(),
        "gemm: C too small"
    );
    if let Init::Bias(bias) = init {
        assert_eq!(bias.len(), n, "gemm: bias length");
    }
    let threads = if m * n * k < PARALLEL_MIN_MACS {
        1
    } else {
        threads
    };
    match be.0 {
        Isa::Scalar => naive(m, n, k, a, b, c, ldc, init),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => crate_gemm(m, n, k, a, b, c, ldc, init, threads),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => crate_gemm(m, n, k, a, b, c, ldc, init, threads),
    }
}

/// Writes the starting value of every C element that the product will accumulate into.
fn fill_init(m: usize, n: usize, c: &mut [f32], ldc: usize, init: Init) {
    for row in c.chunks_mut(ldc).take(m) {
        match init {
            Init::Zero => row[..n].fill(0.0),
            Init::Bias(bias) => row[..n].copy_from_slice(bias),
        }
    }
}

/// The textbook triple loop: the reference the fast paths are tested against.
#[allow(clippy::too_many_arguments)]
fn naive(m: usize, n: usize, k: usize, a: View, b: View, c: &mut [f32], ldc: usize, init: Init) {
    fill_init(m, n, c, ldc, init);
    for i in 0..m {
        for j in 0..n {
            let s: f32 = (0..k).map(|p| a.at(i, p) * b.at(p, j)).sum();
            c[i * ldc + j] += s;
        }
    }
}

/// The `gemm` crate (sarah-quinones'), called with our strides.
#[allow(clippy::too_many_arguments)]
fn crate_gemm(
    m: usize,
    n: usize,
    k: usize,
    a: View,
    b: View,
    c: &mut [f32],
    ldc: usize,
    init: Init,
    threads: usize,
) {
    fill_init(m, n, c, ldc, init);
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: `gemm` checked that every element of A (m×k), B (k×n) and C (m×n, stride ldc)
    // addressed through these strides lies inside its slice; C is exclusively borrowed.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            ldc as isize,
            true,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_close, dot_tol, Rng};
    use super::*;

    /// C = A·Bᵀ (+ bias) straight from the definition, in f64.
    fn reference_t(
        a: &[f32],
        b: &[f32],
        bias: Option<&[f32]>,
        m: usize,
        k: usize,
        n: usize,
    ) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k)
                    .map(|p| a[i * k + p] as f64 * b[j * k + p] as f64)
                    .sum();
                c[i * n + j] = (s + bias.map_or(0.0, |b| b[j] as f64)) as f32;
            }
        }
        c
    }

    fn transpose(b: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        (0..cols * rows)
            .map(|x| b[(x % rows) * cols + x / rows])
            .collect()
    }

    const SHAPES: [(usize, usize, usize); 10] = [
        (1, 1, 1),
        (3, 7, 5),
        (7, 63, 9),
        (13, 64, 17),
        (5, 65, 33),
        (37, 384, 29),
        (70, 1000, 3),
        (2, 1, 100),
        (130, 96, 70),
        (0, 5, 4),
    ];

    fn check_all(be: Backend) {
        let mut rng = Rng::new(11);
        for (m, k, n) in SHAPES {
            let (a, b, bias) = (rng.vec(m * k, 1.0), rng.vec(n * k, 1.0), rng.vec(n, 1.0));
            for bias in [None, Some(&bias[..])] {
                let mut c = vec![f32::NAN; m * n];
                be.matmul_t(&a, &b, bias, &mut c, m, k, n);
                assert_close(&c, &reference_t(&a, &b, bias, m, k, n), dot_tol(k));
            }
            let mut c = vec![f32::NAN; m * n];
            be.matmul(&a, &transpose(&b, n, k), &mut c, m, k, n);
            assert_close(&c, &reference_t(&a, &b, None, m, k, n), dot_tol(k));
        }
    }

    #[test]
    fn products_match_reference_on_every_backend() {
        for be in [Backend::SCALAR, Backend::detect()] {
            check_all(be);
        }
    }

    #[test]
    fn products_match_reference_in_a_two_thread_pool() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| check_all(Backend::detect()));
    }

    #[test]
    fn zero_depth_product_is_the_bias() {
        let mut c = vec![f32::NAN; 6];
        Backend::detect().matmul_t(&[], &[], Some(&[1.0, 2.0, 3.0]), &mut c, 2, 0, 3);
        assert_eq!(c, [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    }

    #[test]
    #[should_panic(expected = "b.len() != n*k")]
    fn matmul_t_rejects_bad_shapes() {
        matmul_t(
            Backend::SCALAR,
            &[0.0; 6],
            &[0.0; 5],
            None,
            &mut [0.0; 4],
            2,
            3,
            2,
        );
    }
}
