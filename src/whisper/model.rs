//! Whisper's forward pass: the audio encoder and the text decoder, read top to bottom as in
//! the model's diagram. S is the model width, T the audio context (encoder positions), m the
//! number of decoder rows processed at once.
//!
//! ```text
//! mel [n_mels, 2T] ─ conv1+GELU ─ conv2(stride 2)+GELU ─ + positions ─ N × (self-attn, MLP) ─ LN
//!                                                                       = audio features [T, S]
//! tokens ─ embed + positions ─ N × (causal self-attn with KV cache, cross-attn on audio, MLP)
//!        ─ LN ─ · token embeddingᵀ = logits [vocab]
//! ```
//! Every block is pre-norm with a residual connection: `x += f(LN(x))`.

use super::mel::LogMel;
use super::weights::{Conv1d, DecoderLayer, EncoderLayer, HParams, Linear, Mlp, WhisperWeights};
use half::{f16, slice::HalfFloatSliceExt};
use rayon::prelude::*;
use std::sync::Arc;

use crate::kernels::{self, MatRef};

/// Errors a caller can cause by asking for more than the model has room for.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("the decoder's context holds {max} tokens; {requested} were requested")]
    TextContext { requested: usize, max: usize },
    #[error("token id {token} is outside the vocabulary of {n_vocab} tokens")]
    Token { token: u32, n_vocab: usize },
    #[error("the audio context must be between 1 and {max} positions, got {requested}")]
    AudioContext { requested: usize, max: usize },
}

pub struct Whisper {
    pub weights: WhisperWeights,
}

/// Per-layer keys and values of the cross-attention, computed once per audio window.
///
/// Stored head-major, [H, T, head_dim] for keys and for values, so that each head's
/// attention reads one contiguous block: every decoded token sweeps all of them, and strided
/// rows would leave the hardware prefetcher behind. Stored in f16, as whisper.cpp keeps
/// them: a 30 s window's are 17.6 MiB in f32 for tiny.en and 35 MiB for base, and every
/// token reads all of them, beside weights it reads in f16 too.
pub struct CrossKv {
    /// Per layer: (keys, values), each [H, T, head_dim].
    layers: Vec<(Vec<f16>, Vec<f16>)>,
    n_audio: usize,
}

impl CrossKv {
    /// Audio positions (encoder frames) the decoder attends to.
    pub fn n_audio(&self) -> usize {
        self.n_audio
    }
}

/// One decoding sequence's self-attention keys and values: the rows it shares with other
/// sequences (the prompt every beam continues), then its own.
pub struct KvCache {
    /// Rows before this sequence's own, read-only and shared by its copies.
    shared: Option<Arc<Rows>>,
    own: Rows,
}

/// Rows of keys and values, per layer [len, S], with room for [`growth_rows`] more at most.
#[derive(Default)]
struct Rows {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    len: usize,
}

/// Free rows a cache of `rows` rows gets when it grows: an eighth more, at least four.
/// Not `Vec`'s doubling: every hypothesis of a beam holds a cache as long as the text so far
/// (and the prompt, with an old cache not shared), and doubling would leave up to half of
/// each empty. Moving a cache to a larger buffer every `rows / 8` tokens copies far less
/// than attention reads from it meanwhile.
fn growth_rows(rows: usize) -> usize {
    (rows / 8).max(4)
}

/// Makes room in `buf` (rows of `width` values) for `rows` more rows.
fn make_room(buf: &mut Vec<f32>, rows: usize, width: usize) {
    let needed = rows * width;
    if buf.capacity() - buf.len() < needed {
        let total = buf.len() / width.max(1) + rows;
        buf.reserve_exact(needed + growth_rows(total) * width);
    }
}

/// A copy of `buf` (rows of `width` values) with room to grow.
fn copy_with_room(buf: &[f32], width: usize) -> Vec<f32> {
    let rows = buf.len() / width.max(1);
    let mut out = Vec::with_capacity(buf.len() + growth_rows(rows) * width);
    out.extend_from_slice(buf);
    out
}

impl Clone for Rows {
    fn clone(&self) -> Self {
        let width = |layer: &Vec<f32>| layer.len().checked_div(self.len).unwrap_or(0);
        let copy =
            |layers: &Vec<Vec<f32>>| layers.iter().map(|l| copy_with_room(l, width(l))).collect();
        Self {
            k: copy(&self.k),
            v: copy(&self.v),
            len: self.len,
        }
    }
}

impl Rows {
    /// No rows in each of `layers` layers.
    fn empty(layers: usize) -> Self {
        Self {
            k: vec![Vec::new(); layers],
            v: vec![Vec::new(); layers],
            len: 0,
        }
    }

    /// Layer `l`'s keys and values as attention reads them, rows of `width`.
    fn part(&self, l: usize, width: usize) -> (MatRef<'_>, MatRef<'_>) {
        (
            MatRef::new(&self.k[l], self.len, width),
            MatRef::new(&self.v[l], self.len, width),
        )
    }

    /// Without the room to grow: rows nobody appends to again.
    fn shrunk(mut self) -> Self {
        for layer in self.k.iter_mut().chain(&mut self.v) {
            layer.shrink_to_fit();
        }
        self
    }
}

impl Clone for KvCache {
    /// A copy of the sequence's own rows; the shared ones stay shared.
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            own: self.own.clone(),
        }
    }
}

/// The caches of a beam's next hypotheses, whose parents are `parents` (indices into
/// `caches`, the current hypotheses' caches): the last child of a parent takes its cache,
/// the others get copies, and the caches of parents without children are dropped first. A
/// step then never holds a hypothesis's cache twice, as cloning every child from its
/// parent would until the parents are dropped.
pub fn branch_caches(caches: Vec<KvCache>, parents: &[usize]) -> Vec<KvCache> {
    let mut children = vec![0usize; caches.len()];
    for &p in parents {
        children[p] += 1;
    }
    let mut caches: Vec<Option<KvCache>> = caches
        .into_iter()
        .zip(&children)
        .map(|(cache, &n)| (n > 0).then_some(cache))
        .collect();
    parents
        .iter()
        .map(|&p| {
            children[p] -= 1;
            let cache = &mut caches[p];
            if children[p] == 0 {
                cache.take()
            } else {
                cache.clone()
            }
            .expect("a parent's cache stays until its last child takes it")
        })
        .collect()
}

impl KvCache {
    /// A cache with no layers, for hypotheses that will never be decoded further.
    pub fn empty() -> Self {
        Self {
            shared: None,
            own: Rows::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.shared.as_ref().map_or(0, |s| s.len) + self.own.len
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// This cache with every row so far shared by the copies made of it from now on (one
    /// copy of a prompt's keys and values for all the beams that continue it, instead of one
    /// per beam: with a previous-text prompt of 200 tokens, 2.6 MiB per beam for tiny.en
    /// and 5 MiB for base). Attention reads the shared rows and a copy's own as one, so the
    /// results are exactly those of an unshared cache.
    pub fn shared(self) -> Self {
        let layers = self.own.k.len();
        let shared = match self.shared {
            None => self.own,
            Some(before) if self.own.len == 0 => return Self::shared_rows(before, layers),
            Some(before) => Rows {
                k: joined_layers(&before.k, &self.own.k),
                v: joined_layers(&before.v, &self.own.v),
                len: before.len + self.own.len,
            },
        };
        Self::shared_rows(Arc::new(shared.shrunk()), layers)
    }

    /// A cache of `rows` shared and none of its own.
    fn shared_rows(rows: Arc<Rows>, layers: usize) -> Self {
        Self {
            shared: Some(rows),
            own: Rows::empty(layers),
        }
    }
}

/// Each layer's rows of `first` followed by those of `then`.
fn joined_layers(first: &[Vec<f32>], then: &[Vec<f32>]) -> Vec<Vec<f32>> {
    first
        .iter()
        .zip(then)
        .map(|(a, b)| [&a[..], b].concat())
        .collect()
}

/// Columns `offset..offset + S` of a [T, row width] buffer, rearranged as [H, T, S / H] and
/// rounded to f16.
fn head_major_f16(buf: &[f32], t: usize, s: usize, heads: usize, offset: usize) -> Vec<f16> {
    let head_dim = s / heads;
    let width = buf.len() / t;
    let mut out = vec![f16::ZERO; t * s];
    // A full window is 1500 rows a head: the heads convert side by side, each row with the
    // CPU's vector conversion.
    out.par_chunks_mut(t * head_dim)
        .enumerate()
        .for_each(|(h, block)| {
            for (i, dst) in block.chunks_exact_mut(head_dim).enumerate() {
                let src = i * width + offset + h * head_dim;
                dst.convert_from_f32_slice(&buf[src..src + head_dim]);
            }
        });
    out
}

/// The cross-attention heads of one decoder layer whose weights are recorded.
struct Listen {
    heads: Vec<usize>,
    /// Each head's weight in the average.
    share: f32,
}

/// `x += f(x)` for a [rows, width] buffer.
fn residual(x: &mut [f32], delta: &[f32]) {
    kernels::add_assign(x, delta);
}

/// Applies a linear layer to `rows` rows, returning a fresh buffer.
fn project(layer: &Linear, x: &[f32], rows: usize) -> Vec<f32> {
    let mut out = vec![0.0; rows * layer.n_out];
    layer.forward(x, rows, &mut out);
    out
}

/// Conv1d (kernel 3, padding 1) on time-major input x: [t_in, n_in] → [t_in / stride, n_out].
/// Rows of the im2col matrix are three consecutive input frames, matching the weight's
/// k-major column order (see [`Conv1d`]).
fn conv1d(conv: &Conv1d, x: &[f32], t_in: usize, stride: usize) -> Vec<f32> {
    let c = conv.n_in;
    let t_out = t_in.div_ceil(stride);
    let mut cols = vec![0.0f32; t_out * 3 * c];
    // Megabytes at a full window: both threads copy.
    cols.par_chunks_exact_mut(3 * c)
        .enumerate()
        .for_each(|(t, row)| {
            for k in 0..3 {
                let src = (t * stride + k) as isize - 1;
                if (0..t_in as isize).contains(&src) {
                    let src = src as usize;
                    row[k * c..(k + 1) * c].copy_from_slice(&x[src * c..(src + 1) * c]);
                }
            }
        });
    let mut out = vec![0.0; t_out * conv.n_out];
    let bias = Some(&conv.bias[..]);
    conv.weight
        .product(&cols, bias, &mut out, t_out, 3 * c, conv.n_out);
    out
}

/// The view of one of the q, k, v parts of a fused [rows, parts·S] projection.
fn part(buf: &[f32], rows: usize, width: usize, parts: usize, index: usize) -> MatRef<'_> {
    MatRef {
        data: &buf[index * width..],
        rows,
        cols: width,
        row_stride: parts * width,
    }
}

impl Whisper {
    pub fn new(weights: WhisperWeights) -> Self {
        Self { weights }
    }

    pub fn hparams(&self) -> &HParams {
        &self.weights.hparams
    }

    // ---------------------------------------------------------------- encoder

    /// Encodes the first `2 * n_ctx` frames of `mel` (zero beyond its end) into audio
    /// features [n_ctx, S]. `n_ctx` below the model's 1500 is whisper.cpp's `audio_ctx`:
    /// faster on short audio, at some cost in accuracy.
    pub fn encode(&self, mel: &LogMel, n_ctx: usize) -> Result<Vec<f32>, ModelError> {
        let hp = self.hparams();
        if n_ctx == 0 || n_ctx > hp.n_audio_ctx {
            return Err(ModelError::AudioContext {
                requested: n_ctx,
                max: hp.n_audio_ctx,
            });
        }
        let enc = &self.weights.encoder;
        let s = hp.n_audio_state;
        let frames = 2 * n_ctx;

        // mel [n_mels, n_frames] → time-major [frames, n_mels]
        let mut x0 = vec![0.0f32; frames * mel.n_mels];
        for (c, band) in mel.data.chunks_exact(mel.n_frames).enumerate() {
            for (t, &v) in band.iter().take(frames).enumerate() {
                x0[t * mel.n_mels + c] = v;
            }
        }
        let mut x1 = conv1d(&enc.conv1, &x0, frames, 1); // [2T, S]
        drop(x0);
        kernels::gelu(&mut x1);
        let mut x = conv1d(&enc.conv2, &x1, frames, 2); // [T, S]
        drop(x1);
        kernels::gelu(&mut x);
        enc.positions.add_rows(0, &mut x[..n_ctx * s], s);

        // Two buffers serve every block: at 1500 positions each activation is megabytes,
        // the encoder's peak is the daemon's, and buffers allocated and freed block by
        // block would each be faulted in afresh.
        let wide = enc.layers.iter().map(|l| l.mlp.fc1.n_out.max(4 * s)).max();
        let mut h = vec![0.0; n_ctx * s];
        let mut wide = vec![0.0; n_ctx * wide.unwrap_or(0)];
        for layer in &enc.layers {
            self.encoder_block(layer, &mut x, n_ctx, &mut h, &mut wide);
        }
        enc.ln_post.forward(&mut x);
        Ok(x)
    }

    /// One block on `x` [T, S]; `h` [T, S] and `wide` (at least [T, 4S] and the MLP's
    /// hidden width) are its scratch.
    fn encoder_block(
        &self,
        layer: &EncoderLayer,
        x: &mut [f32],
        t: usize,
        h: &mut [f32],
        wide: &mut [f32],
    ) {
        let hp = self.hparams();
        let (s, heads) = (hp.n_audio_state, hp.n_audio_head);
        let head_dim = s / heads;

        h.copy_from_slice(x);
        layer.attn.ln.forward(h);
        // q|k|v [T, 3S], then the attention's output [T, S].
        let (qkv, rest) = wide.split_at_mut(t * 3 * s);
        let attn = &mut rest[..t * s];
        layer.attn.qkv.forward(h, t, qkv);
        kernels::attention(
            part(qkv, t, s, 3, 0),
            part(qkv, t, s, 3, 1),
            part(qkv, t, s, 3, 2),
            attn,
            heads,
            head_dim,
            (head_dim as f32).powf(-0.5),
            None,
        );
        layer.attn.out.forward(attn, t, h);
        residual(x, h);

        mlp_with(&layer.mlp, x, t, h, wide);
    }

    // ---------------------------------------------------------------- decoder

    /// Cross-attention keys and values for the audio features [T, S] of one window.
    pub fn cross_kv(&self, audio: &[f32]) -> CrossKv {
        let hp = self.hparams();
        let (s, heads) = (hp.n_text_state, hp.n_text_head);
        let n_audio = audio.len() / s;
        let layers = self
            .weights
            .decoder
            .layers
            .iter()
            .map(|l| {
                let kv = project(&l.cross.kv, audio, n_audio); // [T, 2S]: k | v
                (
                    head_major_f16(&kv, n_audio, s, heads, 0),
                    head_major_f16(&kv, n_audio, s, heads, s),
                )
            })
            .collect();
        CrossKv { layers, n_audio }
    }

    pub fn new_cache(&self) -> KvCache {
        KvCache {
            shared: None,
            own: Rows::empty(self.weights.decoder.layers.len()),
        }
    }

    /// Runs the decoder on new tokens of several sequences at once (each with its own cache,
    /// all on the same audio), appending to their caches. Returns the final hidden states
    /// [Σ tokens, S], rows in sequence order; [`Whisper::logits`] turns chosen rows into scores.
    pub fn decode(
        &self,
        cross: &CrossKv,
        caches: &mut [KvCache],
        tokens: &[&[u32]],
    ) -> Result<Vec<f32>, ModelError> {
        Ok(self.decode_attending(cross, caches, tokens, &[])?.0)
    }

    /// [`Whisper::decode`], also returning where each row listened in the audio: the
    /// cross-attention weights of the `heads` ((layer, head) pairs, Whisper's alignment
    /// heads), averaged, [Σ tokens, T]. Each row sums to 1; with no heads it is empty and
    /// nothing extra is computed.
    pub fn decode_attending(
        &self,
        cross: &CrossKv,
        caches: &mut [KvCache],
        tokens: &[&[u32]],
        heads: &[(usize, usize)],
    ) -> Result<(Vec<f32>, Vec<f32>), ModelError> {
        let hp = *self.hparams();
        let s = hp.n_text_state;
        let dec = &self.weights.decoder;
        let rows: usize = tokens.iter().map(|t| t.len()).sum();

        // x [rows, S] = token embedding + position embedding
        let mut x = vec![0.0f32; rows * s];
        let mut row = 0;
        for (seq, cache) in tokens.iter().zip(caches.iter()) {
            let end = cache.len() + seq.len();
            if end > hp.n_text_ctx {
                return Err(ModelError::TextContext {
                    requested: end,
                    max: hp.n_text_ctx,
                });
            }
            for (i, &tok) in seq.iter().enumerate() {
                if tok as usize >= hp.n_vocab {
                    return Err(ModelError::Token {
                        token: tok,
                        n_vocab: hp.n_vocab,
                    });
                }
                let out = &mut x[row * s..(row + 1) * s];
                dec.token_embedding.row(tok as usize, s, out);
                let pos = cache.len() + i;
                dec.positions.add_rows(pos, out, s);
                row += 1;
            }
        }

        let mut listened = vec![
            0.0;
            if heads.is_empty() {
                0
            } else {
                rows * cross.n_audio
            }
        ];
        let share = 1.0 / heads.len().max(1) as f32;
        for (l, layer) in dec.layers.iter().enumerate() {
            self.self_attention(layer, l, &mut x, caches, tokens);
            let listen = Listen {
                heads: heads
                    .iter()
                    .filter(|(hl, _)| *hl == l)
                    .map(|&(_, h)| h)
                    .collect(),
                share,
            };
            let kv = &cross.layers[l];
            self.cross_attention(
                layer,
                kv,
                cross.n_audio,
                &mut x,
                rows,
                &listen,
                &mut listened,
            );
            mlp(&layer.mlp, &mut x, rows);
        }
        for (cache, seq) in caches.iter_mut().zip(tokens) {
            cache.own.len += seq.len();
        }
        dec.ln.forward(&mut x);
        Ok((x, listened))
    }

    /// Causal self-attention of each sequence over its cache and its new rows.
    fn self_attention(
        &self,
        layer: &DecoderLayer,
        l: usize,
        x: &mut [f32],
        caches: &mut [KvCache],
        tokens: &[&[u32]],
    ) {
        let hp = self.hparams();
        let (s, heads) = (hp.n_text_state, hp.n_text_head);
        let head_dim = s / heads;
        let rows = x.len() / s;

        let mut h = x.to_vec();
        layer.attn.ln.forward(&mut h);
        let qkv = project(&layer.attn.qkv, &h, rows); // [rows, 3S]
        let mut attn = vec![0.0; rows * s];
        let mut first = 0;
        for (cache, seq) in caches.iter_mut().zip(tokens) {
            let m = seq.len();
            let past = cache.len();
            let own = &mut cache.own;
            make_room(&mut own.k[l], m, s);
            make_room(&mut own.v[l], m, s);
            for row in qkv[first * 3 * s..(first + m) * 3 * s].chunks_exact(3 * s) {
                own.k[l].extend_from_slice(&row[s..2 * s]);
                own.v[l].extend_from_slice(&row[2 * s..]);
            }
            // The new rows count in `own.len` once every layer has them (see
            // `decode_attending`).
            let own_part = (
                MatRef::new(&own.k[l], own.len + m, s),
                MatRef::new(&own.v[l], own.len + m, s),
            );
            let parts: Vec<_> = cache
                .shared
                .iter()
                .map(|shared| shared.part(l, s))
                .chain([own_part])
                .collect();
            kernels::attention_parts(
                part(&qkv[first * 3 * s..], m, s, 3, 0),
                &parts,
                &mut attn[first * s..(first + m) * s],
                heads,
                head_dim,
                (head_dim as f32).powf(-0.5),
                Some(past),
            );
            first += m;
        }
        residual(x, &project(&layer.attn.out, &attn, rows));
    }

    /// Cross-attention of `rows` rows on the audio; the weights of `listen`'s heads are
    /// added, each times its share, to `listened` [rows, T].
    #[allow(clippy::too_many_arguments)]
    fn cross_attention(
        &self,
        layer: &DecoderLayer,
        (k, v): &(Vec<f16>, Vec<f16>),
        n_audio: usize,
        x: &mut [f32],
        rows: usize,
        listen: &Listen,
        listened: &mut [f32],
    ) {
        let hp = self.hparams();
        let (s, heads) = (hp.n_text_state, hp.n_text_head);
        let head_dim = s / heads;
        let scale = (head_dim as f32).powf(-0.5);

        let mut h = x.to_vec();
        layer.cross.ln.forward(&mut h);
        let q = project(&layer.cross.q, &h, rows); // [rows, S]
        for &hd in &listen.heads {
            let keys = &k[hd * n_audio * head_dim..(hd + 1) * n_audio * head_dim];
            for (r, out) in listened.chunks_exact_mut(n_audio).enumerate() {
                let query = &q[r * s + hd * head_dim..r * s + (hd + 1) * head_dim];
                let mut weights: Vec<f32> = keys
                    .chunks_exact(head_dim)
                    .map(|key| kernels::dot_f16(key, query) * scale)
                    .collect();
                kernels::softmax(&mut weights);
                for (o, w) in out.iter_mut().zip(&weights) {
                    *o += w * listen.share;
                }
            }
        }
        let per_head: Vec<Vec<f32>> = (0..heads)
            .into_par_iter()
            .map(|hd| {
                let block = hd * n_audio * head_dim..(hd + 1) * n_audio * head_dim;
                let mut out = vec![0.0; rows * head_dim]; // [rows, head_dim]
                kernels::attention_parts(
                    MatRef {
                        data: &q[hd * head_dim..],
                        rows,
                        cols: head_dim,
                        row_stride: s,
                    },
                    &[(
                        MatRef::new(&k[block.clone()], n_audio, head_dim),
                        MatRef::new(&v[block], n_audio, head_dim),
                    )],
                    &mut out,
                    1,
                    head_dim,
                    scale,
                    None,
                );
                out
            })
            .collect();
        let mut attn = vec![0.0; rows * s];
        for (hd, out) in per_head.iter().enumerate() {
            for (r, row) in out.chunks_exact(head_dim).enumerate() {
                attn[r * s + hd * head_dim..r * s + (hd + 1) * head_dim].copy_from_slice(row);
            }
        }
        residual(x, &project(&layer.cross.out, &attn, rows));
    }

    /// Scores over the vocabulary for hidden rows [n, S]: [n, n_vocab].
    pub fn logits(&self, hidden: &[f32]) -> Vec<f32> {
        let mut out = Vec::new();
        self.logits_into(hidden, &mut out);
        out
    }

    /// [`Whisper::logits`] into `out`, whose allocation a decoding loop reuses step after
    /// step: a beam search's rows are megabytes, and two at once were its memory peak.
    pub fn logits_into(&self, hidden: &[f32], out: &mut Vec<f32>) {
        let hp = self.hparams();
        let n = hidden.len() / hp.n_text_state;
        out.clear();
        out.resize(n * hp.n_vocab, 0.0);
        self.weights.decoder.token_embedding.product(
            hidden,
            None,
            out,
            n,
            hp.n_text_state,
            hp.n_vocab,
        );
    }
}

/// The feed-forward block: x += fc2(GELU(fc1(LN(x)))).
fn mlp(block: &Mlp, x: &mut [f32], rows: usize) {
    let mut h = vec![0.0; x.len()];
    let mut f = vec![0.0; rows * block.fc1.n_out];
    mlp_with(block, x, rows, &mut h, &mut f);
}

/// [`mlp`] with its scratch: `h` as large as `x`, `f` at least [rows, hidden width].
fn mlp_with(block: &Mlp, x: &mut [f32], rows: usize, h: &mut [f32], f: &mut [f32]) {
    h.copy_from_slice(x);
    block.ln.forward(h);
    let f = &mut f[..rows * block.fc1.n_out];
    block.fc1.forward(h, rows, f);
    kernels::gelu(f);
    // fc2's output takes the place of its normalised input, which fc1 has used.
    block.fc2.forward(f, rows, h);
    residual(x, h);
}
