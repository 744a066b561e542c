//! f32 matrix products: `matmul_t`, `matmul`, and the strided product the other kernels use.
//!
//! Our GEMM follows the usual BLIS structure: B is packed into NR-wide column panels and A
//! into MR-tall row panels, depth in blocks that keep one panel of each in L1, and a register
//! tile (`Backend::gemm_tile`) multiplies a pair of panels into a 6×16 block of C. Threads take
//! blocks of rows of C. The `gemm` crate is the other engine; `Engine::Best` picks by shape.

use super::{Backend, Isa};
use rayon::prelude::*;

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

    /// The view starting at element (i, j).
    fn shifted(self, i: usize, j: usize) -> Self {
        let start = (i * self.rs + j * self.cs).min(self.data.len());
        View {
            data: &self.data[start..],
            ..self
        }
    }

    fn transposed(self) -> Self {
        View {
            rs: self.cs,
            cs: self.rs,
            ..self
        }
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
    engine: Engine,
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
    let threads = rayon::current_num_threads();
    gemm_with(be, engine, m, n, k, a, bt, c, n, init, threads);
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
    gemm_with(be, Engine::Best, m, n, k, a, b, c, ldc, init, threads);
}

/// Weight rows converted per slab by [`matmul_t_unpacked`]; bounds its scratch to this many
/// rows.
const SLAB_ROWS: usize = 256;

/// C[m×n] = A[m×k] · Bᵀ (+ bias) for weights B stored in another format (f16, quantized
/// blocks): `unpack(j0..j1, slab)` writes rows j0..j1 of B as f32 into `slab` (k values per
/// row), a slab at a time, and the f32 GEMM multiplies each slab with all of A. For many rows
/// of A the product is bound by arithmetic, and converting each weight once costs little
/// beside it. C is row-major `m × n`.
#[allow(clippy::too_many_arguments)]
pub(super) fn matmul_t_unpacked(
    be: Backend,
    a: &[f32],
    bias: Option<&[f32]>,
    c: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
    unpack: impl Fn(std::ops::Range<usize>, &mut [f32]),
) {
    assert_eq!(a.len(), m * k, "matmul_t_unpacked: a.len() != m*k");
    assert_eq!(c.len(), m * n, "matmul_t_unpacked: c.len() != m*n");
    if let Some(bias) = bias {
        assert_eq!(bias.len(), n, "matmul_t_unpacked: bias.len() != n");
    }
    let av = View {
        data: a,
        rs: k,
        cs: 1,
    };
    // Taken out while in use: the GEMM's threads may run another product on this thread
    // meanwhile (rayon steals work while it waits), which then makes its own.
    let mut slab = SLAB.take();
    // Kept between calls: a fresh megabyte per product would be fresh pages from the system
    // each time, whose faults cost as much as the conversion.
    slab.resize(slab.len().max(SLAB_ROWS.min(n) * k), 0.0);
    for j0 in (0..n).step_by(SLAB_ROWS) {
        let rows = SLAB_ROWS.min(n - j0);
        let w = &mut slab[..rows * k];
        unpack(j0..j0 + rows, w);
        let bt = View {
            data: w,
            rs: 1,
            cs: k,
        };
        let init = bias.map_or(Init::Zero, |bias| Init::Bias(&bias[j0..j0 + rows]));
        let threads = rayon::current_num_threads();
        gemm(be, m, rows, k, av, bt, &mut c[j0..], n, init, threads);
    }
    SLAB.set(slab);
}

thread_local! {
    /// [`matmul_t_unpacked`]'s converted weights: at most [`SLAB_ROWS`] rows of the widest
    /// matrix the thread has multiplied (1.5 MB for Whisper tiny, 2 MB for base).
    static SLAB: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Which implementation runs the f32 products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Whichever is fastest for this backend and shape (see `benches/kernels.rs`): ours for
    /// large products on AVX2, the crate for few rows of A and on NEON.
    Best,
    /// This module's packed, cache-blocked GEMM around the backend's register tile.
    Own,
    /// The `gemm` crate.
    GemmCrate,
}

/// [`gemm`] on a chosen engine.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_with(
    be: Backend,
    engine: Engine,
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
    let c = &mut c[..(m - 1) * ldc + n];
    let own = match engine {
        Engine::Own => true,
        Engine::GemmCrate => false,
        Engine::Best => prefers_own(be, m),
    };
    if own && k > 0 {
        blocked(be, m, n, k, a, b, c, ldc, init, threads);
    } else {
        fill_init(m, n, c, ldc, init);
        if k > 0 {
            crate_gemm(m, n, k, a, b, c, ldc, threads);
        }
    }
}

/// Whether `Engine::Best` runs our GEMM for `m` rows of A.
fn prefers_own(be: Backend, m: usize) -> bool {
    let min_rows = match be.0 {
        // The portable reference stays ours so that tests exercise the blocked driver.
        Isa::Scalar => 0,
        // From about 512 rows our GEMM beats the crate (`cargo bench --bench kernels -- gemm`);
        // below, packing all of B costs more than the crate's small-m paths.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 | Isa::AvxVnni => 512,
        // The AVX-512 tile is ahead of the crate (which stays on AVX2) from about a dozen
        // rows.
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx512Vnni => 16,
        // Our NEON tile is tested but untuned (no aarch64 hardware to measure on).
        #[cfg(target_arch = "aarch64")]
        Isa::Neon | Isa::NeonDotprod => usize::MAX,
    };
    m >= min_rows
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

/// Register tile of the microkernel: MR rows of A × NR columns of B. 6×16 fills AVX2's 16
/// vector registers: 12 accumulators, two B vectors, one broadcast A value.
pub(super) const MR: usize = 6;
pub(super) const NR: usize = 16;
/// C[rows×cols] += tile (the top-left part of a full register tile), C with row stride `ldc`:
/// the write-back of edge tiles, shared by every backend's microkernel.
pub(super) fn add_tile(
    c: &mut [f32],
    ldc: usize,
    rows: usize,
    cols: usize,
    tile: &[[f32; NR]; MR],
) {
    for (c_row, t_row) in c.chunks_mut(ldc).zip(tile).take(rows) {
        for (o, t) in c_row[..cols].iter_mut().zip(t_row) {
            *o += t;
        }
    }
}

/// Most depth per packed block: an A micro-panel (KC·MR) and a B micro-panel (KC·NR, 16 KiB)
/// sit in L1 together.
const KC_MAX: usize = 256;
/// Upper bound on rows of A per task: MC_MAX·KC_MAX floats of packed A (144 KiB) stay in L2.
const MC_MAX: usize = 144;
/// Columns of B packed at a time: bounds the packed copy to NC·k floats, which stays in L3.
const NC: usize = 2048;

/// B packed into NR-wide column panels, per depth block of `kc` rows: panel `jp` of block
/// `pb` holds `kc × NR` values, row by row, zero-padded past the last column. Packing once
/// lets every row block of A stream the same contiguous panels.
pub(super) struct PackedB {
    data: Vec<f32>,
    k: usize,
    n: usize,
    /// Depth of every block but possibly the last.
    kc: usize,
}

/// Depth per block: the fewest blocks of at most `KC_MAX`, evened out (384 → 2 × 192, not
/// 256 + 128) so no block is a short, overhead-heavy tail.
fn depth_block(k: usize) -> usize {
    k.div_ceil(k.div_ceil(KC_MAX).max(1)).max(1)
}

impl PackedB {
    /// Packs the `k × n` matrix `b`, on up to `threads` threads.
    pub(super) fn new(b: View, k: usize, n: usize, threads: usize) -> PackedB {
        b.check(k, n);
        let kc = depth_block(k);
        let panels = n.div_ceil(NR);
        let mut data = vec![0.0; k * panels * NR];
        let pack_block = |(pb, dst): (usize, &mut [f32])| {
            let (p0, depth) = (pb * kc, kc.min(k - pb * kc));
            for (jp, panel) in dst.chunks_exact_mut(depth * NR).enumerate() {
                let j0 = jp * NR;
                pack_panel::<NR>(b, p0, depth, j0, NR.min(n - j0), panel);
            }
        };
        // `max(1)`: chunk sizes must be positive even for an empty matrix.
        let block_len = (kc * panels * NR).max(1);
        if threads > 1 {
            data.par_chunks_mut(block_len)
                .enumerate()
                .for_each(pack_block);
        } else {
            data.chunks_mut(block_len).enumerate().for_each(pack_block);
        }
        PackedB { data, k, n, kc }
    }

    /// Panels `jp..jp + count` of depth block `pb`, as packed (their full depth), one after
    /// the other.
    fn panels(&self, pb: usize, jp: usize, count: usize) -> &[f32] {
        let depth = self.kc.min(self.k - pb * self.kc);
        let panels = self.n.div_ceil(NR);
        let start = pb * self.kc * panels * NR + jp * depth * NR;
        &self.data[start..start + count * depth * NR]
    }
}

/// Copies `depth` rows × `width` (≤ `W`) columns of `src`, starting at (d0, c0), into `dst`
/// as `depth` rows of `W` values, zero-padding columns `width..W`.
fn pack_panel<const W: usize>(
    src: View,
    d0: usize,
    depth: usize,
    c0: usize,
    width: usize,
    dst: &mut [f32],
) {
    let dst = &mut dst[..depth * W];
    if src.cs == 1 {
        if width < W {
            dst.fill(0.0);
        }
        for (d, row) in dst.chunks_exact_mut(W).enumerate() {
            let s = (d0 + d) * src.rs + c0;
            row[..width].copy_from_slice(&src.data[s..s + width]);
        }
    } else if src.rs == 1 && width == W {
        // Transposing case (rows of A, weight rows of Bᵀ): read W contiguous runs in step and
        // write each packed row in one go.
        let runs: [&[f32]; W] = std::array::from_fn(|j| {
            let s = (c0 + j) * src.cs + d0;
            &src.data[s..s + depth]
        });
        for (d, row) in dst.chunks_exact_mut(W).enumerate() {
            for (o, run) in row.iter_mut().zip(&runs) {
                *o = run[d];
            }
        }
    } else {
        dst.fill(0.0);
        for j in 0..width {
            let base = (c0 + j) * src.cs + d0 * src.rs;
            for (d, row) in dst.chunks_exact_mut(W).enumerate() {
                row[j] = src.data[base + d * src.rs];
            }
        }
    }
}

/// Rows per task: at most `MC_MAX`, a multiple of MR, and blocks in a multiple of `threads`
/// so the threads finish together.
fn row_block(m: usize, threads: usize) -> usize {
    let blocks = m.div_ceil(MC_MAX).next_multiple_of(threads);
    m.div_ceil(blocks).next_multiple_of(MR)
}

/// This module's GEMM: C = init + A·B. B is packed NC columns at a time (shared by all
/// tasks), then each task writes the starting values of its block of C rows (in parallel, and
/// hot in cache for the tiles that follow: a serial pass over a full window's C had kept one
/// thread waiting), packs its block of A rows and runs the register tiles.
#[allow(clippy::too_many_arguments)]
fn blocked(
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
    let mc = row_block(m, threads);
    for jc in (0..n).step_by(NC) {
        let nc = NC.min(n - jc);
        let packed = PackedB::new(b.shifted(0, jc), k, nc, threads);
        let init = match init {
            Init::Zero => Init::Zero,
            Init::Bias(bias) => Init::Bias(&bias[jc..jc + nc]),
        };
        let task = |apack: &mut Vec<f32>, (t, c_rows): (usize, &mut [f32])| {
            let rows = mc.min(m - t * mc);
            fill_init(rows, nc, &mut c_rows[jc..], ldc, init);
            let a_rows = a.shifted(t * mc, 0);
            gemm_packed(
                be,
                a_rows,
                &packed,
                rows,
                nc,
                k,
                &mut c_rows[jc..],
                ldc,
                apack,
            );
        };
        if threads > 1 {
            let tasks = c.par_chunks_mut(mc * ldc).enumerate();
            tasks.for_each_init(Vec::new, task);
        } else {
            let mut apack = Vec::new();
            c.chunks_mut(mc * ldc)
                .enumerate()
                .for_each(|t| task(&mut apack, t));
        }
    }
}

/// C[m×n] += A[m×k] · B on one thread, with B prepacked (`k ≤ packed.k`, `n ≤ packed.n`:
/// a prefix of its rows and columns may be used). `apack` is reusable scratch.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm_packed(
    be: Backend,
    a: View,
    packed: &PackedB,
    m: usize,
    n: usize,
    k: usize,
    c: &mut [f32],
    ldc: usize,
    apack: &mut Vec<f32>,
) {
    assert!(
        k <= packed.k && n <= packed.n,
        "gemm_packed: B prefix too large"
    );
    a.check(m, k);
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        ldc >= n && (m - 1) * ldc + n <= c.len(),
        "gemm_packed: C too small"
    );
    let at = a.transposed();
    let a_panels = m.div_ceil(MR);
    for (pb, p0) in (0..k).step_by(packed.kc).enumerate() {
        let kc = packed.kc.min(k - p0);
        apack.resize(a_panels * kc * MR, 0.0);
        for (ip, panel) in apack.chunks_exact_mut(kc * MR).enumerate() {
            let i0 = ip * MR;
            pack_panel::<MR>(at, p0, kc, i0, MR.min(m - i0), panel);
        }
        // A backend's tile may span several B panels (AVX-512: two).
        let wide = be.tile_panels();
        for (jq, j0) in (0..n).step_by(wide * NR).enumerate() {
            let cols = (wide * NR).min(n - j0);
            let bpanel = packed.panels(pb, jq * wide, cols.div_ceil(NR));
            for (ip, apanel) in apack.chunks_exact(kc * MR).enumerate() {
                let i0 = ip * MR;
                let rows = MR.min(m - i0);
                let tile = &mut c[i0 * ldc + j0..];
                be.gemm_tile(kc, apanel, bpanel, tile, ldc, rows, cols);
            }
        }
    }
}

/// The `gemm` crate (sarah-quinones'), called with our strides: C += A·B.
#[allow(clippy::too_many_arguments)]
fn crate_gemm(
    m: usize,
    n: usize,
    k: usize,
    a: View,
    b: View,
    c: &mut [f32],
    ldc: usize,
    threads: usize,
) {
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: `gemm_with` checked that every element of A (m×k), B (k×n) and C (m×n, stride
    // ldc) addressed through these strides lies inside its slice; C is exclusively borrowed.
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
    use super::super::test_util::{assert_close, dot_tol, simd_backends, RandomVec, Rng};
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

    const SHAPES: [(usize, usize, usize); 13] = [
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
        (300, 70, 40),
        (9, 300, 1100),
        // Wider than one block of packed B columns: each block's bias columns.
        (20, 40, 2100),
    ];

    fn check_all(be: Backend, engine: Engine) {
        let mut rng = Rng::new(11);
        for (m, k, n) in SHAPES {
            let (a, b, bias) = (rng.vec(m * k, 1.0), rng.vec(n * k, 1.0), rng.vec(n, 1.0));
            for bias in [None, Some(&bias[..])] {
                let mut c = vec![f32::NAN; m * n];
                be.matmul_t_with(engine, &a, &b, bias, &mut c, m, k, n);
                assert_close(&c, &reference_t(&a, &b, bias, m, k, n), dot_tol(k));
            }
            let mut c = vec![f32::NAN; m * n];
            be.matmul(&a, &transpose(&b, n, k), &mut c, m, k, n);
            assert_close(&c, &reference_t(&a, &b, None, m, k, n), dot_tol(k));
        }
    }

    #[test]
    fn products_match_reference_on_every_backend() {
        for be in Backend::available() {
            for engine in [Engine::Best, Engine::Own, Engine::GemmCrate] {
                check_all(be, engine);
            }
        }
    }

    #[test]
    fn products_match_reference_in_a_two_thread_pool() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            for be in simd_backends() {
                for engine in [Engine::Own, Engine::GemmCrate] {
                    check_all(be, engine);
                }
            }
        });
    }

    #[test]
    fn blocking_is_even_and_tile_aligned() {
        assert_eq!(depth_block(384), 192);
        assert_eq!(depth_block(2048), 256);
        assert_eq!(depth_block(7), 7);
        for (m, threads) in [(1500, 1), (1500, 2), (37, 2), (1, 1)] {
            let mc = row_block(m, threads);
            assert!(mc.is_multiple_of(MR) && mc <= MC_MAX.next_multiple_of(MR));
        }
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
            Engine::Best,
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
