//! Multi-head scaled dot-product attention over strided views.
//!
//! Work is split into tasks of (head, block of query rows). A task computes its block of
//! scores against every key it may see, takes the softmax of each row in place and multiplies
//! by V, so memory stays at one block of scores per task. Blocks of a handful of rows (the
//! decoder's single new token) use dot products and axpys straight on K and V. Larger blocks
//! use the blocked GEMM's register tiles, with each head's Kᵀ and V packed once up front and
//! shared by all of its query blocks (the packed copies are as large as K and V themselves).
//!
//! Causal attention (a prompt, a token at a time) never takes the GEMM: its dot products and
//! axpys give each row the same numbers whichever rows share its call, so a prompt run after
//! a cached prefix, or in several batches, computes exactly what one batch does. With the
//! GEMM, the same row summed in another order by another path, and a reused prefix changed
//! greedy text wherever two tokens were nearly tied. Its share of a prompt's work is small
//! (the products with the weights dominate), and reading each key once per block of rows
//! keeps it close to the GEMM's speed.
//!
//! Keys and values may come in several parts read in order as one (a prompt's shared by
//! every beam, then a beam's own) and in f16 (the decoder's cross-attention). The direct path
//! reads them in place; the blocked path, for many query rows, first joins them into one f32
//! copy. Either way the result is exactly that of the parts joined.

use super::gemm::{self, PackedB, View};
use super::shared::SharedOut;
use super::{Backend, KvElement};
use rayon::prelude::*;

/// Query rows per task: a multiple of the GEMM tile height; 36 rows × 1500 keys of scores is
/// 216 KiB, which stays in L2 between the two products.
const BLOCK_ROWS: usize = 6 * gemm::MR;
/// Blocks with at most this many rows skip the GEMM and its packing. A beam's or the best-of
/// candidates' step (5 rows) stays direct: on the decoder's f16 cross-attention keys, the
/// blocked path would widen and pack the whole window of audio at every step, which cost
/// more than the rest of the step.
const DIRECT_MAX_ROWS: usize = 8;

/// A row-major matrix view with a row stride (in elements), so fused q|k|v buffers can be
/// read in place: element (i, j) is `data[i * row_stride + j]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a, T = f32> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
}

impl<'a, T> MatRef<'a, T> {
    /// A contiguous `rows × cols` matrix.
    pub fn new(data: &'a [T], rows: usize, cols: usize) -> Self {
        MatRef {
            data,
            rows,
            cols,
            row_stride: cols,
        }
    }

    /// Columns `start..start + cols` of this view, e.g. the k part of a fused q|k|v buffer.
    /// Panics if they do not fit.
    pub fn columns(self, start: usize, cols: usize) -> Self {
        assert!(start + cols <= self.cols, "MatRef::columns out of range");
        MatRef {
            data: &self.data[start.min(self.data.len())..],
            rows: self.rows,
            cols,
            row_stride: self.row_stride,
        }
    }

    /// Panics unless the view is consistent: rows no wider than the stride, all inside `data`.
    fn check(&self, name: &str) {
        assert!(self.cols <= self.row_stride, "{name}: cols > row_stride");
        if self.rows > 0 && self.cols > 0 {
            let needed = (self.rows - 1) * self.row_stride + self.cols;
            assert!(
                self.data.len() >= needed,
                "{name}: data too short for its shape"
            );
        }
    }

    /// Row `i`, columns `start..start + len`.
    fn row(&self, i: usize, start: usize, len: usize) -> &'a [T] {
        let o = i * self.row_stride + start;
        &self.data[o..o + len]
    }

    /// Everything from column `start` of the first row on: one head's keys or values, read
    /// with the row stride.
    fn tail_from(&self, start: usize) -> &'a [T] {
        &self.data[start.min(self.data.len())..]
    }
}

impl<'a> MatRef<'a> {
    /// Rows `i0..`, columns `start..`, as a GEMM operand; `transposed` swaps the strides.
    fn view(&self, i0: usize, start: usize, transposed: bool) -> View<'a> {
        let data = &self.data[i0 * self.row_stride + start..];
        let (rs, cs) = if transposed {
            (1, self.row_stride)
        } else {
            (self.row_stride, 1)
        };
        View { data, rs, cs }
    }
}

/// Shapes shared by all tasks of one call.
struct Job<'a, T> {
    be: Backend,
    q: MatRef<'a>,
    /// Keys and values, in parts read in order as one.
    parts: &'a [(MatRef<'a, T>, MatRef<'a, T>)],
    /// Rows of all parts together.
    keys: usize,
    out: SharedOut<'a>,
    head_dim: usize,
    width: usize,
    /// Query heads per key/value head (grouped-query attention; 1 for plain multi-head).
    group: usize,
    scale: f32,
    causal: Option<usize>,
    /// Per key/value head: Kᵀ (head_dim × keys) and V (keys × head_dim), packed for the GEMM;
    /// empty when every block takes the direct path.
    packs: Vec<(PackedB, PackedB)>,
}

/// Per-task buffers, reused across the tasks one thread runs.
#[derive(Default)]
struct Scratch {
    scores: Vec<f32>,
    ctx: Vec<f32>,
    apack: Vec<f32>,
}

/// The parts' keys and values joined into one f32 copy each, `[keys, width]`.
fn joined<T: KvElement>(
    be: Backend,
    parts: &[(MatRef<T>, MatRef<T>)],
    width: usize,
) -> (Vec<f32>, Vec<f32>) {
    let keys: usize = parts.iter().map(|(k, _)| k.rows).sum();
    let (mut k, mut v) = (vec![0.0; keys * width], vec![0.0; keys * width]);
    let mut rows = k.chunks_exact_mut(width).zip(v.chunks_exact_mut(width));
    for (pk, pv) in parts {
        for (i, (krow, vrow)) in (&mut rows).take(pk.rows).enumerate() {
            T::widen(be, pk.row(i, 0, width), krow);
            T::widen(be, pv.row(i, 0, width), vrow);
        }
    }
    (k, v)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn attention<T: KvElement>(
    be: Backend,
    q: MatRef,
    parts: &[(MatRef<T>, MatRef<T>)],
    out: &mut [f32],
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    scale: f32,
    causal: Option<usize>,
) {
    assert!(
        n_kv_head > 0 && n_head.is_multiple_of(n_kv_head),
        "attention: {n_head} query heads do not share {n_kv_head} key/value heads evenly"
    );
    let width = n_head * head_dim;
    let kv_width = n_kv_head * head_dim;
    check_shapes(q, parts, out.len(), width, kv_width, scale);
    if q.rows == 0 || width == 0 {
        return;
    }
    let shape = Shape {
        n_head,
        n_kv_head,
        head_dim,
        scale,
        causal,
    };
    if q.rows <= DIRECT_MAX_ROWS || causal.is_some() {
        return run(be, q, parts, out, &shape, Vec::new());
    }
    // The blocked path packs f32 keys and values from one view.
    let single = match parts {
        [(k, v)] => T::as_f32(*k).zip(T::as_f32(*v)),
        _ => None,
    };
    let owned;
    let (k, v) = match single {
        Some(kv) => kv,
        None => {
            owned = joined(be, parts, kv_width);
            let keys = owned.0.len() / kv_width;
            (
                MatRef::new(&owned.0[..], keys, kv_width),
                MatRef::new(&owned.1[..], keys, kv_width),
            )
        }
    };
    let seen = visible(k.rows, causal, q.rows - 1);
    let packs = pack_heads(k, v, head_dim, n_kv_head, seen);
    run(be, q, &[(k, v)], out, &shape, packs);
}

/// The heads and scores of one call.
struct Shape {
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    scale: f32,
    causal: Option<usize>,
}

/// Keys of `keys` that query row `i` may attend: all of them, or those at most `past + i`.
fn visible(keys: usize, causal: Option<usize>, i: usize) -> usize {
    causal.map_or(keys, |past| keys.min(past + i + 1))
}

/// Runs every (head, block of query rows) task; `packs` are the heads packed for blocks of
/// more than [`DIRECT_MAX_ROWS`] rows (from `parts`, then one f32 part).
fn run<T: KvElement>(
    be: Backend,
    q: MatRef,
    parts: &[(MatRef<T>, MatRef<T>)],
    out: &mut [f32],
    shape: &Shape,
    packs: Vec<(PackedB, PackedB)>,
) {
    let job = Job {
        be,
        q,
        parts,
        keys: parts.iter().map(|(k, _)| k.rows).sum(),
        out: SharedOut::new(out),
        head_dim: shape.head_dim,
        width: shape.n_head * shape.head_dim,
        group: shape.n_head / shape.n_kv_head,
        scale: shape.scale,
        causal: shape.causal,
        packs,
    };
    let blocks = q.rows.div_ceil(BLOCK_ROWS);
    (0..shape.n_head * blocks)
        .into_par_iter()
        .for_each_init(Scratch::default, |scratch, t| {
            let (h, b) = (t / blocks, t % blocks);
            let rows = b * BLOCK_ROWS..q.rows.min((b + 1) * BLOCK_ROWS);
            if rows.len() > 1 && job.parts.len() == 1 && job.packs.is_empty() {
                job.direct_together(h, rows, scratch);
            } else if rows.len() <= DIRECT_MAX_ROWS || job.packs.is_empty() {
                job.direct(h, rows, &mut scratch.scores);
            } else {
                job.blocked(h, rows, scratch);
            }
        });
}

/// Every key/value head's Kᵀ and V, up to key `keys`, packed for the GEMM in parallel.
fn pack_heads(
    k: MatRef,
    v: MatRef,
    hd: usize,
    n_kv_head: usize,
    keys: usize,
) -> Vec<(PackedB, PackedB)> {
    (0..n_kv_head)
        .into_par_iter()
        .map(|h| {
            let kt = PackedB::new(k.view(0, h * hd, true), hd, keys, 1);
            let vp = PackedB::new(v.view(0, h * hd, false), keys, hd, 1);
            (kt, vp)
        })
        .collect()
}

/// Panics unless q, the parts and out fit the documented shapes.
fn check_shapes<T>(
    q: MatRef,
    parts: &[(MatRef<T>, MatRef<T>)],
    out_len: usize,
    width: usize,
    kv_width: usize,
    scale: f32,
) {
    assert!(
        scale > 0.0 && scale.is_finite(),
        "attention: scale must be positive"
    );
    assert_eq!(q.cols, width, "attention: q.cols != n_head*head_dim");
    for (k, v) in parts {
        assert_eq!(k.cols, kv_width, "attention: k.cols != n_kv_head*head_dim");
        assert_eq!(v.cols, kv_width, "attention: v.cols != n_kv_head*head_dim");
        assert_eq!(k.rows, v.rows, "attention: k and v rows differ");
        k.check("attention k");
        v.check("attention v");
    }
    assert_eq!(
        out_len,
        q.rows * width,
        "attention: out.len() != tq*n_head*head_dim"
    );
    q.check("attention q");
    let keys: usize = parts.iter().map(|(k, _)| k.rows).sum();
    assert!(keys > 0 || q.rows == 0, "attention: no keys");
}

impl<T: KvElement> Job<'_, T> {
    /// Keys query row `i` may attend.
    fn visible(&self, i: usize) -> usize {
        visible(self.keys, self.causal, i)
    }

    /// The output cells of row `i`, head `h`.
    ///
    /// # Safety
    ///
    /// Only the task that owns (row `i`, head `h`) may call this, and it must drop the slice
    /// before asking again.
    #[allow(clippy::mut_from_ref)]
    unsafe fn out_row(&self, i: usize, h: usize) -> &mut [f32] {
        self.out
            .segment(i * self.width + h * self.head_dim, self.head_dim)
    }

    /// The first column of query head `h`'s key/value head in K and V.
    fn kv_column(&self, h: usize) -> usize {
        h / self.group * self.head_dim
    }

    /// The parts cut to the first `keys` keys: each part's key and value views with the
    /// index of its first key.
    fn visible_parts(
        &self,
        keys: usize,
    ) -> impl Iterator<Item = (usize, &MatRef<'_, T>, &MatRef<'_, T>)> + '_ {
        self.parts
            .iter()
            .scan(0, |first, (k, v)| {
                let start = *first;
                *first += k.rows;
                Some((start, k, v))
            })
            .take_while(move |&(start, _, _)| start < keys)
    }

    /// A block of rows with the keys in one part: scores = Q·Kᵀ and out = P·V with each key
    /// and value row read once for the block, exactly as [`Job::direct`] computes them row by
    /// row. Causal rows score every key the block's last row sees; a row's later keys get
    /// weight 0, which adds exactly nothing.
    fn direct_together(&self, h: usize, rows: std::ops::Range<usize>, scratch: &mut Scratch) {
        let (hd, c0, kv0, nk) = (
            self.head_dim,
            h * self.head_dim,
            self.kv_column(h),
            self.visible(rows.end - 1),
        );
        let (k, v) = &self.parts[0];
        // [rows, hd]
        let qs = &mut scratch.apack;
        qs.clear();
        for i in rows.clone() {
            qs.extend_from_slice(self.q.row(i, c0, hd));
        }
        // [rows, nk], every score written
        let scores = sized(&mut scratch.scores, rows.len() * nk);
        self.be
            .rows_dots(qs, hd, k.tail_from(kv0), k.row_stride, scores);
        for (i, srow) in rows.clone().zip(scores.chunks_exact_mut(nk)) {
            let seen = self.visible(i);
            self.be.softmax_scaled(&mut srow[..seen], self.scale);
            srow[seen..].fill(0.0);
        }
        // [rows, hd]
        let ctx = zeroed(&mut scratch.ctx, rows.len() * hd);
        self.be
            .add_weighted_rows_many(scores, hd, v.tail_from(kv0), v.row_stride, ctx);
        for (i, crow) in rows.zip(ctx.chunks_exact(hd)) {
            // SAFETY: this task owns head `h` of the rows in `rows`.
            unsafe { self.out_row(i, h) }.copy_from_slice(crow);
        }
    }

    /// Few query rows: one dot product per key, then out = Σ p_j · v_j.
    fn direct(&self, h: usize, rows: std::ops::Range<usize>, scores: &mut Vec<f32>) {
        let (hd, c0, kv0) = (self.head_dim, h * self.head_dim, self.kv_column(h));
        for i in rows {
            let nk = self.visible(i);
            scores.resize(nk, 0.0);
            let q = self.q.row(i, c0, hd);
            for (start, k, _) in self.visible_parts(nk) {
                let end = nk.min(start + k.rows);
                self.be
                    .row_dots(q, k.tail_from(kv0), k.row_stride, &mut scores[start..end]);
            }
            self.be.softmax_scaled(scores, self.scale);
            // SAFETY: this task owns head `h` of the rows in `rows`.
            let out = unsafe { self.out_row(i, h) };
            out.fill(0.0);
            for (start, _, v) in self.visible_parts(nk) {
                let end = nk.min(start + v.rows);
                self.be
                    .add_weighted_rows(&scores[start..end], v.tail_from(kv0), v.row_stride, out);
            }
        }
    }

    /// A block of query rows: scores = Q·Kᵀ and out = P·V as two GEMMs on the packed head.
    fn blocked(&self, h: usize, rows: std::ops::Range<usize>, scratch: &mut Scratch) {
        let (hd, c0, nr) = (self.head_dim, h * self.head_dim, rows.len());
        let (kt, v) = &self.packs[h / self.group];
        let nk = self.visible(rows.end - 1);
        // Both products write their C whole: no pass clears it first.
        let scores = sized(&mut scratch.scores, nr * nk);
        let q = self.q.view(rows.start, c0, false);
        let zero = gemm::Init::Zero;
        gemm::gemm_packed(
            self.be,
            q,
            kt,
            nr,
            nk,
            hd,
            scores,
            nk,
            zero,
            &mut scratch.apack,
        );
        for (r, srow) in scores.chunks_exact_mut(nk).enumerate() {
            let seen = self.visible(rows.start + r);
            self.be.softmax_scaled(&mut srow[..seen], self.scale);
            srow[seen..].fill(0.0);
        }

        let p = View {
            data: scores,
            rs: nk,
            cs: 1,
        };
        let ctx = sized(&mut scratch.ctx, nr * hd);
        gemm::gemm_packed(self.be, p, v, nr, hd, nk, ctx, hd, zero, &mut scratch.apack);
        for (i, crow) in rows.zip(ctx.chunks_exact(hd)) {
            // SAFETY: this task owns head `h` of the rows in `rows`.
            unsafe { self.out_row(i, h) }.copy_from_slice(crow);
        }
    }
}

/// The first `len` elements of `buf`, grown if needed, set to zero.
fn zeroed(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    buf.clear();
    buf.resize(len, 0.0);
    buf
}

/// The first `len` elements of `buf`, grown if needed, as they are: for a caller that
/// writes them all.
fn sized(buf: &mut Vec<f32>, len: usize) -> &mut [f32] {
    buf.resize(len, 0.0);
    &mut buf[..len]
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{assert_close, simd_backends, RandomVec, Rng};
    use super::*;

    /// Attention straight from the definition, in f64, one (row, head) at a time.
    #[allow(clippy::too_many_arguments)]
    fn reference(
        q: MatRef,
        k: MatRef,
        v: MatRef,
        n_head: usize,
        hd: usize,
        scale: f32,
        causal: Option<usize>,
    ) -> Vec<f32> {
        let group = n_head * hd / k.cols;
        let at = |m: &MatRef, i: usize, j: usize| m.data[i * m.row_stride + j] as f64;
        let mut out = vec![0.0; q.rows * n_head * hd];
        for i in 0..q.rows {
            let seen = causal.map_or(k.rows, |past| k.rows.min(past + i + 1));
            for h in 0..n_head {
                let (c0, kv0) = (h * hd, h / group * hd);
                let s: Vec<f64> = (0..seen)
                    .map(|j| {
                        (0..hd)
                            .map(|d| at(&q, i, c0 + d) * at(&k, j, kv0 + d))
                            .sum::<f64>()
                            * scale as f64
                    })
                    .collect();
                let max = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = s.iter().map(|x| (x - max).exp()).collect();
                let sum: f64 = e.iter().sum();
                for d in 0..hd {
                    let o: f64 = e
                        .iter()
                        .enumerate()
                        .map(|(j, p)| p * at(&v, j, kv0 + d))
                        .sum();
                    out[i * n_head * hd + c0 + d] = (o / sum) as f32;
                }
            }
        }
        out
    }

    /// Runs one case with q, k, v as column windows of a fused q|k|v buffer (row stride 3·width).
    fn check(be: Backend, tq: usize, tk: usize, n_head: usize, hd: usize, causal: Option<usize>) {
        let width = n_head * hd;
        let mut rng = Rng::new((tq * 1000 + tk) as u64);
        let qbuf = rng.vec(tq * 3 * width, 1.0);
        let kvbuf = rng.vec(tk * 3 * width, 1.0);
        let q = MatRef {
            data: &qbuf,
            rows: tq,
            cols: 3 * width,
            row_stride: 3 * width,
        }
        .columns(0, width);
        let fused = MatRef {
            data: &kvbuf,
            rows: tk,
            cols: 3 * width,
            row_stride: 3 * width,
        };
        let (k, v) = (fused.columns(width, width), fused.columns(2 * width, width));
        let scale = (hd as f32).powf(-0.5);
        let mut out = vec![f32::NAN; tq * width];
        be.attention(q, k, v, &mut out, n_head, hd, scale, causal);
        let want = reference(q, k, v, n_head, hd, scale, causal);
        assert_close(&out, &want, 1e-5);
    }

    const CASES: [(usize, usize, usize, usize, Option<usize>); 11] = [
        (1, 1, 1, 1, None),
        (1, 37, 3, 5, None),
        (1, 37, 3, 64, Some(36)),
        (3, 10, 2, 7, Some(7)),
        (4, 4, 6, 64, Some(0)),
        (5, 40, 2, 16, Some(35)),
        (9, 40, 2, 16, Some(31)),
        (37, 37, 3, 9, Some(0)),
        (70, 50, 2, 64, None),
        (70, 90, 3, 8, Some(20)),
        (33, 1, 4, 3, None),
    ];

    #[test]
    fn matches_reference_on_every_backend() {
        for be in Backend::available() {
            for (tq, tk, n_head, hd, causal) in CASES {
                check(be, tq, tk, n_head, hd, causal);
            }
        }
    }

    #[test]
    fn grouped_query_heads_match_reference() {
        // (query rows, keys, query heads, key/value heads, head dim, causal)
        let cases = [
            (1, 37, 9, 3, 64, Some(36)),
            (3, 10, 4, 2, 7, Some(7)),
            (40, 40, 9, 3, 64, Some(0)),
            (70, 90, 6, 1, 8, Some(20)),
        ];
        for be in Backend::available() {
            for (tq, tk, n_head, n_kv, hd, causal) in cases {
                let mut rng = Rng::new((tq * 1000 + tk) as u64);
                let qbuf = rng.vec(tq * n_head * hd, 1.0);
                let kbuf = rng.vec(tk * n_kv * hd, 1.0);
                let vbuf = rng.vec(tk * n_kv * hd, 1.0);
                let q = MatRef::new(&qbuf, tq, n_head * hd);
                let k = MatRef::new(&kbuf, tk, n_kv * hd);
                let v = MatRef::new(&vbuf, tk, n_kv * hd);
                let scale = (hd as f32).powf(-0.5);
                let mut out = vec![f32::NAN; tq * n_head * hd];
                be.grouped_attention(q, k, v, &mut out, n_head, n_kv, hd, scale, causal);
                let want = reference(q, k, v, n_head, hd, scale, causal);
                assert_close(&out, &want, 1e-5);
            }
        }
    }

    #[test]
    fn matches_reference_in_a_two_thread_pool() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        pool.install(|| {
            for be in simd_backends() {
                for (tq, tk, n_head, hd, causal) in CASES {
                    check(be, tq, tk, n_head, hd, causal);
                }
            }
        });
    }

    /// Keys and values in parts give exactly what the parts joined give, in f32 and in f16,
    /// on every backend, for the direct path's few rows and the blocked path's many.
    #[test]
    fn parts_give_exactly_the_joined_result() {
        let (n_head, hd) = (3, 16);
        let width = n_head * hd;
        for be in Backend::available() {
            for (tq, cuts, causal) in [
                (1, vec![7, 1], Some(7)),
                (2, vec![13, 9, 1], Some(21)),
                (4, vec![5, 4], None),
                (40, vec![30, 12], Some(2)),
            ] {
                let tk: usize = cuts.iter().sum();
                let mut rng = Rng::new((tq * 100 + tk) as u64);
                let qbuf = rng.vec(tq * width, 1.0);
                let kbuf = rng.vec(tk * width, 1.0);
                let vbuf = rng.vec(tk * width, 1.0);
                let q = MatRef::new(&qbuf, tq, width);
                let scale = (hd as f32).powf(-0.5);
                let whole = [(MatRef::new(&kbuf, tk, width), MatRef::new(&vbuf, tk, width))];
                let mut parts = Vec::new();
                let mut first = 0;
                for &n in &cuts {
                    let rows = first * width..(first + n) * width;
                    parts.push((
                        MatRef::new(&kbuf[rows.clone()], n, width),
                        MatRef::new(&vbuf[rows], n, width),
                    ));
                    first += n;
                }
                let mut want = vec![f32::NAN; tq * width];
                attention(be, q, &whole, &mut want, n_head, n_head, hd, scale, causal);
                let mut got = vec![f32::NAN; tq * width];
                attention(be, q, &parts, &mut got, n_head, n_head, hd, scale, causal);
                assert_eq!(got, want, "{} {tq} rows, parts {cuts:?}", be.name());
            }
        }
    }

    /// Causal rows give the same numbers whichever rows share their call: a prompt's rows in
    /// one call, or a first batch and then the rest at their later positions over the keys
    /// so far, as a cached prefix runs, bit for bit, on every backend.
    #[test]
    fn causal_rows_are_the_same_in_one_call_or_in_batches() {
        let (n_head, n_kv_head, hd) = (6, 2, 64);
        let (width, kv_width) = (n_head * hd, n_kv_head * hd);
        let tq = 2 * BLOCK_ROWS + 5;
        let mut rng = Rng::new(7);
        let qbuf = rng.vec(tq * width, 1.0);
        let kbuf = rng.vec(tq * kv_width, 1.0);
        let vbuf = rng.vec(tq * kv_width, 1.0);
        let scale = (hd as f32).powf(-0.5);
        let rows = |first: usize, end: usize, out: &mut [f32], be: Backend| {
            let q = MatRef::new(&qbuf[first * width..end * width], end - first, width);
            let kv = [(
                MatRef::new(&kbuf[..end * kv_width], end, kv_width),
                MatRef::new(&vbuf[..end * kv_width], end, kv_width),
            )];
            let out = &mut out[first * width..end * width];
            attention(be, q, &kv, out, n_head, n_kv_head, hd, scale, Some(first));
        };
        for be in Backend::available() {
            let mut whole = vec![f32::NAN; tq * width];
            rows(0, tq, &mut whole, be);
            for split in [
                1,
                3,
                DIRECT_MAX_ROWS + 1,
                BLOCK_ROWS,
                BLOCK_ROWS + 7,
                tq - 1,
            ] {
                let mut batches = vec![f32::NAN; tq * width];
                rows(0, split, &mut batches, be);
                rows(split, tq, &mut batches, be);
                assert!(
                    whole
                        .iter()
                        .zip(&batches)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{}: rows split at {split} of {tq}",
                    be.name()
                );
            }
        }
    }

    /// f16 keys and values against the f64 reference on their f32 values, for the direct
    /// path's few rows and the blocked path's many.
    #[test]
    fn f16_keys_and_values_match_reference() {
        let (n_head, hd) = (2, 64);
        let width = n_head * hd;
        for be in Backend::available() {
            for (tq, tk, causal) in [
                (1, 1500, None),
                (3, 40, Some(37)),
                (5, 1500, None),
                (40, 300, None),
            ] {
                let mut rng = Rng::new((tq * 1000 + tk) as u64);
                let qbuf = rng.vec(tq * width, 1.0);
                let k16 = rng.vec_f16(tk * width, 1.0);
                let v16 = rng.vec_f16(tk * width, 1.0);
                let (k32, v32): (Vec<f32>, Vec<f32>) = k16
                    .iter()
                    .zip(&v16)
                    .map(|(k, v)| (k.to_f32(), v.to_f32()))
                    .unzip();
                let q = MatRef::new(&qbuf, tq, width);
                let parts = [(MatRef::new(&k16, tk, width), MatRef::new(&v16, tk, width))];
                let scale = (hd as f32).powf(-0.5);
                let mut out = vec![f32::NAN; tq * width];
                attention(be, q, &parts, &mut out, n_head, n_head, hd, scale, causal);
                let (k, v) = (MatRef::new(&k32, tk, width), MatRef::new(&v32, tk, width));
                let want = reference(q, k, v, n_head, hd, scale, causal);
                assert_close(&out, &want, 1e-5);
            }
        }
    }

    #[test]
    fn contiguous_view_helper_has_row_stride_cols() {
        let data = [0.0; 12];
        let m = MatRef::new(&data, 3, 4);
        assert_eq!((m.rows, m.cols, m.row_stride), (3, 4, 4));
    }

    #[test]
    #[should_panic(expected = "data too short")]
    fn rejects_short_views() {
        let data = [0.0; 7];
        let q = MatRef::new(&data, 2, 4);
        let mut out = [0.0; 8];
        attention(Backend::SCALAR, q, &[(q, q)], &mut out, 1, 1, 4, 1.0, None);
    }
}
