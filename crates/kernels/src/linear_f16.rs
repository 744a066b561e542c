//! `matmul_t_f16`: C = A · Bᵀ (+ bias) with f16 weights B, built for the decoder.
//!
//! With few rows in A the product is bound by reading B from memory. With one row (a
//! decoding step) or `STREAM_MIN_M` to `STREAM_MAX_M` rows (a beam's or the best-of
//! candidates' step), each weight row is read alone, in order, and met with every row of A
//! in one register tile: B is then one sequential stream, which the hardware prefetcher
//! follows at full bandwidth. Tiles over two or more weight rows at once wait on memory
//! instead (the logits' 40 MB at 5 rows ran at a fifth of the bandwidth). Otherwise, up to
//! `DIRECT_MAX_M` rows, the order is: for each group of weight rows (read once, then hot in
//! L1), for each block of up to four rows of A, one register tile. Threads split the weight
//! rows. Large `m` is compute-bound instead; there the weights are converted to f32 a slab
//! at a time and handed to the f32 GEMM.

use super::gemm;
use super::shared::SharedOut;
use super::Backend;
use half::f16;
use rayon::prelude::*;

/// Beyond this many rows of A, re-reading each weight group once per four rows costs more
/// than converting the weights once for the f32 GEMM.
const DIRECT_MAX_M: usize = 32;
/// From `STREAM_MIN_M` to this many rows of A, one weight row at a time meets all of them (see
/// above); a tile of 8 rows and one weight row keeps its accumulators within AVX2's 16 vector
/// registers.
const STREAM_MAX_M: usize = 8;
/// Below this, a tile of one weight row has too few accumulators to hide the multiply-add's
/// latency: two or three rows of A run in the group tiles.
const STREAM_MIN_M: usize = 4;
/// Weights at least this large (the logits' 40 MB for tiny.en and base; no layer's) are read,
/// where it pays (`passing_prefetch_pays`), with a non-temporal prefetch ahead of the loads: they pass through the caches without
/// pushing out the layers' weights and the cross-attention keys and values (25 MB for
/// tiny.en), which the next decoding step reads again.
const PASSING_MIN_BYTES: usize = 8 << 20;
/// How far ahead of the weight row being read the prefetch asks.
const PREFETCH_AHEAD_BYTES: usize = 16 << 10;
/// Weight rows per task when a slab of weights is converted for the f32 GEMM.
const CONVERT_CHUNK_ROWS: usize = 32;
/// Rows of A per register tile.
const MR: usize = 4;
/// Weight rows per group: one tile of 4, or two of 2 when the tile has more rows of A, which
/// keeps accumulators + converted weights within the 16 vector registers of AVX2.
const GROUP: usize = 4;
/// Products smaller than this many multiply-adds run on one thread.
const PARALLEL_MIN_MACS: usize = 1 << 16;

#[allow(clippy::too_many_arguments)]
pub(super) fn matmul_t_f16(
    be: Backend,
    a: &[f32],
    b: &[f16],
    bias: Option<&[f32]>,
    c: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
) {
    assert_eq!(a.len(), m * k, "matmul_t_f16: a.len() != m*k");
    assert_eq!(b.len(), n * k, "matmul_t_f16: b.len() != n*k");
    assert_eq!(c.len(), m * n, "matmul_t_f16: c.len() != m*n");
    if let Some(bias) = bias {
        assert_eq!(bias.len(), n, "matmul_t_f16: bias.len() != n");
    }
    if m > DIRECT_MAX_M {
        // Compute-bound: each weight converted once, for the f32 GEMM.
        // The threads share the conversion of each slab (one thread alone kept the other
        // waiting).
        return gemm::matmul_t_unpacked(be, a, bias, c, m, k, n, |rows, slab| {
            slab.par_chunks_mut(CONVERT_CHUNK_ROWS * k)
                .zip(b[rows.start * k..rows.end * k].par_chunks(CONVERT_CHUNK_ROWS * k))
                .for_each(|(dst, src)| be.f16_to_f32(src, dst));
        });
    }
    let job = Job {
        be,
        a,
        b,
        bias,
        out: SharedOut::new(c),
        m,
        k,
        n,
        passing: n * k * size_of::<f16>() >= PASSING_MIN_BYTES && super::passing_prefetch_pays(),
    };
    let threads = rayon::current_num_threads();
    if threads == 1 || m * n * k < PARALLEL_MIN_MACS {
        job.columns(0, n);
        return;
    }
    // A few chunks per thread even out uneven progress; whole groups keep tiles full.
    let chunk = n
        .div_ceil(threads * 4)
        .next_multiple_of(GROUP)
        .max(2 * GROUP);
    (0..n.div_ceil(chunk)).into_par_iter().for_each(|t| {
        job.columns(t * chunk, n.min((t + 1) * chunk));
    });
}

struct Job<'a> {
    be: Backend,
    a: &'a [f32],
    b: &'a [f16],
    bias: Option<&'a [f32]>,
    out: SharedOut<'a>,
    m: usize,
    k: usize,
    n: usize,
    /// Whether B streams past the caches (see `PASSING_MIN_BYTES`).
    passing: bool,
}

impl Job<'_> {
    /// With a passing B, asks for weight row `j + PREFETCH_AHEAD_BYTES / row bytes` now,
    /// non-temporally.
    fn prefetch_ahead(&self, j: usize) {
        if self.passing {
            let ahead = j + PREFETCH_AHEAD_BYTES / (self.k * size_of::<f16>()).max(1);
            if ahead < self.n {
                super::prefetch_passing(&self.b[ahead * self.k..(ahead + 1) * self.k]);
            }
        }
    }

    /// Computes output columns (weight rows) `j0..j1` for all rows of A. Concurrent calls
    /// must get disjoint column ranges.
    fn columns(&self, j0: usize, j1: usize) {
        match self.m {
            1 => return self.single_row(j0, j1),
            STREAM_MIN_M => return self.streamed::<STREAM_MIN_M>(j0, j1),
            5 => return self.streamed::<5>(j0, j1),
            6 => return self.streamed::<6>(j0, j1),
            7 => return self.streamed::<7>(j0, j1),
            STREAM_MAX_M => return self.streamed::<STREAM_MAX_M>(j0, j1),
            _ => {}
        }
        let mut j = j0;
        while j + GROUP <= j1 {
            self.for_row_blocks(j, GROUP);
            j += GROUP;
        }
        for j in j..j1 {
            self.for_row_blocks(j, 1);
        }
    }

    /// One row of A (a decoding step): one weight row after the other, so memory is read as
    /// a single sequential stream, which the hardware prefetcher follows best; interleaving
    /// several weight rows halves the bandwidth out of DRAM (the logits' 40 MB).
    fn single_row(&self, j0: usize, j1: usize) {
        let k = self.k;
        // SAFETY: callers own disjoint column ranges; row 0 holds columns j0..j1.
        let seg = unsafe { self.out.segment(j0, j1 - j0) };
        for (o, j) in seg.iter_mut().zip(j0..j1) {
            self.prefetch_ahead(j);
            let dot = self.be.dot_f16(&self.b[j * k..(j + 1) * k], &self.a[..k]);
            *o = dot + self.bias.map_or(0.0, |b| b[j]);
        }
    }

    /// All `R` (= m) rows of A against one weight row after the other.
    fn streamed<const R: usize>(&self, j0: usize, j1: usize) {
        for j in j0..j1 {
            self.prefetch_ahead(j);
            self.tile::<R, 1>(0, j);
        }
    }

    /// Weight rows `j..j + width` (`width` is `GROUP` or 1) against every block of A rows.
    fn for_row_blocks(&self, j: usize, width: usize) {
        for r0 in (0..self.m).step_by(MR) {
            match self.m - r0 {
                1 => self.block::<1>(r0, j, width),
                2 => self.block::<2>(r0, j, width),
                3 => self.block::<3>(r0, j, width),
                _ => self.block::<MR>(r0, j, width),
            }
        }
    }

    fn block<const R: usize>(&self, r0: usize, j: usize, width: usize) {
        if width == 1 {
            self.tile::<R, 1>(r0, j);
        } else if R <= 2 {
            self.tile::<R, GROUP>(r0, j);
        } else {
            self.tile::<R, 2>(r0, j);
            self.tile::<R, 2>(r0, j + 2);
        }
    }

    fn tile<const R: usize, const C: usize>(&self, r0: usize, j: usize) {
        let k = self.k;
        let vals = self
            .be
            .f16_tile::<R, C>(&self.a[r0 * k..], &self.b[j * k..], k);
        for (r, row) in vals.iter().enumerate() {
            // SAFETY: `columns` callers own disjoint column ranges, and this writes only
            // columns j..j+C (inside the caller's range) of row r0+r.
            let seg = unsafe { self.out.segment((r0 + r) * self.n + j, C) };
            match self.bias {
                Some(bias) => {
                    for ((o, v), bv) in seg.iter_mut().zip(row).zip(&bias[j..j + C]) {
                        *o = v + bv;
                    }
                }
                None => seg.copy_from_slice(row),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_close, dot_tol, RandomVec, Rng};
    use super::*;

    fn reference(
        a: &[f32],
        b: &[f16],
        bias: Option<&[f32]>,
        m: usize,
        k: usize,
        n: usize,
    ) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                let s: f64 = (0..k)
                    .map(|p| a[i * k + p] as f64 * b[j * k + p].to_f64())
                    .sum();
                c[i * n + j] = (s + bias.map_or(0.0, |b| b[j] as f64)) as f32;
            }
        }
        c
    }

    fn check(be: Backend, ms: &[usize], ks: &[usize], ns: &[usize]) {
        let mut rng = Rng::new(21);
        for &m in ms {
            for &k in ks {
                for &n in ns {
                    let (a, b, bias) = (
                        rng.vec(m * k, 1.0),
                        rng.vec_f16(n * k, 1.0),
                        rng.vec(n, 1.0),
                    );
                    for bias in [None, Some(&bias[..])] {
                        let mut c = vec![f32::NAN; m * n];
                        matmul_t_f16(be, &a, &b, bias, &mut c, m, k, n);
                        assert_close(&c, &reference(&a, &b, bias, m, k, n), dot_tol(k));
                    }
                }
            }
        }
    }

    #[test]
    fn small_m_matches_reference_on_every_backend() {
        for be in Backend::available() {
            check(
                be,
                &[1, 2, 3, 4, 5, 7, 8, 9],
                &[0, 1, 7, 63, 64, 65, 384],
                &[1, 3, 5, 9, 67],
            );
        }
    }

    #[test]
    fn threaded_and_large_m_paths_match_reference() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            for be in Backend::available() {
                check(be, &[1, 6, 32], &[1000], &[301]);
                check(be, &[33, 70], &[65], &[300, 531]);
            }
        });
    }

    /// Large-m products running at once on the pool's threads, each converting its weights
    /// into scratch of its own.
    #[test]
    fn large_m_products_at_once_agree() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let mut rng = Rng::new(22);
        let (m, k, n) = (128, 256, 520);
        let products: Vec<_> = (0..16)
            .map(|_| (rng.vec(m * k, 1.0), rng.vec_f16(n * k, 1.0)))
            .collect();
        let results: Vec<Vec<f32>> = pool.install(|| {
            products
                .par_iter()
                .map(|(a, b)| {
                    let mut c = vec![f32::NAN; m * n];
                    matmul_t_f16(Backend::detect(), a, b, None, &mut c, m, k, n);
                    c
                })
                .collect()
        });
        for ((a, b), c) in products.iter().zip(&results) {
            assert_close(c, &reference(a, b, None, m, k, n), dot_tol(k));
        }
    }
}
