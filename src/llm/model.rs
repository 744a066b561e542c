//! The LLaMA forward pass, on weights straight from a GGUF file.
//!
//! ```text
//! tokens ─ token_embd ─ x[n × d]
//!   for each block:
//!     h = rms_norm(x) · attn_norm
//!     q = h·Wqᵀ [n × n_head·hd]   k = h·Wkᵀ, v = h·Wvᵀ [n × n_kv·hd]
//!     rotate q and k by position (RoPE); append k, v to the cache
//!     x += attention(q, cache.k, cache.v; causal, grouped) · Woᵀ
//!     h = rms_norm(x) · ffn_norm
//!     x += (silu(h·Wgateᵀ) ⊙ h·Wupᵀ) · Wdownᵀ        [n × ff] → [n × d]
//!   logits = rms_norm(x) · output_norm · Woutᵀ      [n × vocab] (Wout = token_embd when tied)
//! ```
//!
//! Matrices stay in the file's quantized blocks and go through [`matmul_q`]; norms are f32.
//! Numerics follow llama.cpp where it matters for agreeing with it token for token: RoPE on
//! adjacent pairs (GGUF stores Q and K rows permuted for that layout), the rotation angle as a
//! running product in f32, and keys, values and queries rounded to f16 as llama.cpp's default
//! f16 cache holds them.

use std::path::{Path, PathBuf};

use half::f16;

use super::gguf::{GgufError, GgufFile, TensorInfo};
use crate::kernels::quant::{get_row, matmul_q, matmul_q_each, QMatRef, QuantType};
use crate::kernels::{self, MatRef};

/// Prompt tokens processed together: large enough for the matrix kernels' panels, small
/// enough that the feed-forward activations stay a few MiB.
const BATCH: usize = 256;

/// The largest count a hyper-parameter may hold (widths, layers, heads, vocabulary,
/// context): far beyond any model, so that only a broken or hostile file is refused.
pub const MAX_HYPER: usize = 1 << 24;

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Gguf(#[from] GgufError),
    #[error("{path}: architecture {arch:?} is not supported (voxd runs \"llama\" models)")]
    Architecture { path: PathBuf, arch: String },
    #[error("{path}: tensor {name} is missing")]
    MissingTensor { path: PathBuf, name: String },
    #[error(
        "{path}: tensor {name} is {ty}, which voxd cannot compute with (supported: {})",
        QuantType::supported_names()
    )]
    UnsupportedType {
        path: PathBuf,
        name: String,
        ty: String,
    },
    #[error("{path}: tensor {name} has shape {found:?}, expected {expected:?}")]
    Shape {
        path: PathBuf,
        name: String,
        expected: Vec<u64>,
        found: Vec<u64>,
    },
    #[error("{path}: {what}")]
    Hyper { path: PathBuf, what: String },
    #[error("the context holds {capacity} tokens; {needed} do not fit")]
    ContextFull { capacity: usize, needed: usize },
}

/// Rotary position embedding settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Rope {
    /// Leading dimensions of each head that are rotated (the rest pass through).
    pub dims: usize,
    /// θ base: pair `i` turns by `pos · base^(-2i/dims)`.
    pub freq_base: f32,
    /// Linear scaling: positions are multiplied by this (1 / the scaling factor).
    pub freq_scale: f32,
    /// Per-pair divisors of the angle (`rope_freqs.weight`, Llama 3.1 style), if any.
    pub freq_factors: Option<Vec<f32>>,
}

/// The model's shape, from the file's metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Hyper {
    pub n_vocab: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub n_ff: usize,
    /// Context length the model was trained for.
    pub n_ctx_train: usize,
    pub rms_eps: f32,
    pub rope: Rope,
}

impl Hyper {
    fn from_gguf(file: &GgufFile) -> Result<Self, ModelError> {
        let arch = file.architecture()?;
        if arch != "llama" {
            return Err(ModelError::Architecture {
                path: file.path().to_path_buf(),
                arch: arch.to_string(),
            });
        }
        let key = |k: &str| format!("llama.{k}");
        let hyper_error = |what: String| ModelError::Hyper {
            path: file.path().to_path_buf(),
            what,
        };
        // A count of 0 leaves tensors without rows or columns, which no kernel can take.
        let count = |k: &str, v: usize| {
            if (1..=MAX_HYPER).contains(&v) {
                Ok(v)
            } else {
                Err(hyper_error(format!("{k} = {v}: expected 1 to {MAX_HYPER}")))
            }
        };
        let get = |k: &str| -> Result<usize, ModelError> {
            let name = key(k);
            count(&name, file.get_u32(&name)? as usize)
        };
        let get_opt = |k: &str| -> Result<Option<usize>, ModelError> {
            let name = key(k);
            file.get_u32_opt(&name)?
                .map(|v| count(&name, v as usize))
                .transpose()
        };
        let positive = |k: &str, v: f32| {
            if v > 0.0 && v.is_finite() {
                Ok(v)
            } else {
                Err(hyper_error(format!(
                    "llama.{k} = {v}: expected a finite number above 0"
                )))
            }
        };
        let n_embd = get("embedding_length")?;
        let n_head = get("attention.head_count")?;
        let n_kv_head = get_opt("attention.head_count_kv")?.unwrap_or(n_head);
        if n_head == 0 || n_embd % n_head != 0 || n_kv_head == 0 || n_head % n_kv_head != 0 {
            return Err(hyper_error(format!(
                "{n_head} attention heads ({n_kv_head} for keys and values) do not divide \
                 embedding_length {n_embd}"
            )));
        }
        let head_dim = n_embd / n_head;
        let dims = file
            .get_u32_opt(&key("rope.dimension_count"))?
            .map_or(head_dim, |n| n as usize);
        if dims > head_dim || dims % 2 != 0 {
            return Err(hyper_error(format!(
                "rope.dimension_count {dims}: expected an even number up to the head size \
                 {head_dim}"
            )));
        }
        let n_vocab = match get_opt("vocab_size")? {
            Some(n) => n,
            None => count(
                "the number of tokenizer.ggml.tokens",
                file.get_array("tokenizer.ggml.tokens")?.len(),
            )?,
        };
        Ok(Hyper {
            n_vocab,
            n_embd,
            n_layer: get("block_count")?,
            n_head,
            n_kv_head,
            head_dim,
            n_ff: get("feed_forward_length")?,
            n_ctx_train: get("context_length")?,
            rms_eps: positive(
                "attention.layer_norm_rms_epsilon",
                file.get_f32(&key("attention.layer_norm_rms_epsilon"))?,
            )?,
            rope: Rope {
                dims,
                freq_base: positive(
                    "rope.freq_base",
                    file.get_f32_opt(&key("rope.freq_base"))?
                        .unwrap_or(10_000.0),
                )?,
                freq_scale: rope_freq_scale(file)?,
                freq_factors: None,
            },
        })
    }

    /// Width of the key and value rows: `n_kv_head · head_dim`.
    pub fn kv_width(&self) -> usize {
        self.n_kv_head * self.head_dim
    }
}

/// `1 / factor` for linear RoPE scaling, 1 without scaling; other kinds are errors.
fn rope_freq_scale(file: &GgufFile) -> Result<f32, ModelError> {
    let kind = file.get_str_opt("llama.rope.scaling.type")?;
    let factor = match file.get_f32_opt("llama.rope.scaling.factor")? {
        Some(f) => Some(f),
        None => file.get_f32_opt("llama.rope.scale_linear")?,
    };
    match (kind, factor) {
        (None | Some("none"), None) | (Some("none"), _) => Ok(1.0),
        (None | Some("linear"), Some(f)) if f > 0.0 => Ok(1.0 / f),
        (None | Some("linear"), Some(0.0)) => Ok(1.0),
        (kind, factor) => Err(ModelError::Hyper {
            path: file.path().to_path_buf(),
            what: format!(
                "RoPE scaling {} with factor {factor:?} is not supported (none or linear)",
                kind.unwrap_or("linear")
            ),
        }),
    }
}

/// A weight matrix in the file: its type, shape (`rows` outputs × `cols` inputs) and place.
struct Weight {
    ty: QuantType,
    rows: usize,
    cols: usize,
    tensor: TensorInfo,
}

impl Weight {
    fn view<'f>(&self, file: &'f GgufFile) -> QMatRef<'f> {
        QMatRef::new(
            self.ty,
            self.rows,
            self.cols,
            file.tensor_bytes(&self.tensor),
        )
        .expect("shape checked at load")
    }
}

/// One transformer block's weights.
struct Block {
    attn_norm: Vec<f32>,
    wq: Weight,
    wk: Weight,
    wv: Weight,
    wo: Weight,
    ffn_norm: Vec<f32>,
    gate: Weight,
    up: Weight,
    down: Weight,
}

/// A loaded LLaMA-architecture model.
pub struct Llama {
    file: GgufFile,
    hyper: Hyper,
    token_embd: Weight,
    blocks: Vec<Block>,
    output_norm: Vec<f32>,
    /// `output.weight`, or the token embedding when the model ties them.
    output: Weight,
}

/// Reads weights out of `file`, checking names, types and shapes.
struct Loader<'f> {
    file: &'f GgufFile,
}

impl Loader<'_> {
    fn info(&self, name: &str) -> Result<&TensorInfo, ModelError> {
        self.file
            .tensor(name)
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.file.path().to_path_buf(),
                name: name.to_string(),
            })
    }

    fn check_shape(&self, info: &TensorInfo, expected: &[usize]) -> Result<(), ModelError> {
        let expected: Vec<u64> = expected.iter().map(|&d| d as u64).collect();
        if info.dims() != expected.as_slice() {
            return Err(ModelError::Shape {
                path: self.file.path().to_path_buf(),
                name: info.name().to_string(),
                expected,
                found: info.dims().to_vec(),
            });
        }
        Ok(())
    }

    /// A `rows × cols` matrix (GGUF dims `[cols, rows]`, innermost first).
    fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Weight, ModelError> {
        self.weight(name, &[cols, rows], rows, cols)
    }

    /// The tensor `name` of GGUF shape `dims`, as a `rows × cols` matrix.
    fn weight(
        &self,
        name: &str,
        dims: &[usize],
        rows: usize,
        cols: usize,
    ) -> Result<Weight, ModelError> {
        let info = self.info(name)?;
        self.check_shape(info, dims)?;
        let ty = QuantType::from_ggml_id(info.ggml_type().id())
            .filter(|ty| ty.row_bytes(cols).is_some())
            .ok_or_else(|| ModelError::UnsupportedType {
                path: self.file.path().to_path_buf(),
                name: name.to_string(),
                ty: info.ggml_type().name().to_string(),
            })?;
        let weight = Weight {
            ty,
            rows,
            cols,
            tensor: info.clone(),
        };
        // What `Weight::view` relies on, checked once here.
        QMatRef::new(ty, rows, cols, self.file.tensor_bytes(info)).map_err(|e| {
            ModelError::Hyper {
                path: self.file.path().to_path_buf(),
                what: format!("tensor {name}: {e}"),
            }
        })?;
        Ok(weight)
    }

    /// A vector of `len` values, whatever its stored type.
    fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>, ModelError> {
        let w = self.weight(name, &[len], 1, len)?;
        let mut out = vec![0.0; len];
        get_row(w.view(self.file), 0, &mut out);
        Ok(out)
    }

    fn optional_vector(&self, name: &str, len: usize) -> Result<Option<Vec<f32>>, ModelError> {
        match self.file.tensor(name) {
            Some(_) => self.vector(name, len).map(Some),
            None => Ok(None),
        }
    }

    fn block(&self, i: usize, hp: &Hyper) -> Result<Block, ModelError> {
        let name = |t: &str| format!("blk.{i}.{t}.weight");
        let (d, kv, ff) = (hp.n_embd, hp.kv_width(), hp.n_ff);
        Ok(Block {
            attn_norm: self.vector(&name("attn_norm"), d)?,
            wq: self.matrix(&name("attn_q"), d, d)?,
            wk: self.matrix(&name("attn_k"), kv, d)?,
            wv: self.matrix(&name("attn_v"), kv, d)?,
            wo: self.matrix(&name("attn_output"), d, d)?,
            ffn_norm: self.vector(&name("ffn_norm"), d)?,
            gate: self.matrix(&name("ffn_gate"), ff, d)?,
            up: self.matrix(&name("ffn_up"), ff, d)?,
            down: self.matrix(&name("ffn_down"), d, ff)?,
        })
    }
}

impl Llama {
    /// Maps and checks the model at `path`.
    pub fn load(path: &Path) -> Result<Self, ModelError> {
        Self::from_gguf(GgufFile::open(path)?)
    }

    /// Checks `file`'s hyper-parameters and every tensor the forward pass reads.
    pub fn from_gguf(file: GgufFile) -> Result<Self, ModelError> {
        let mut hyper = Hyper::from_gguf(&file)?;
        let loader = Loader { file: &file };
        let token_embd = loader.matrix("token_embd.weight", hyper.n_vocab, hyper.n_embd)?;
        let output = match file.tensor("output.weight") {
            Some(_) => loader.matrix("output.weight", hyper.n_vocab, hyper.n_embd)?,
            None => loader.matrix("token_embd.weight", hyper.n_vocab, hyper.n_embd)?,
        };
        hyper.rope.freq_factors =
            loader.optional_vector("rope_freqs.weight", hyper.rope.dims / 2)?;
        let blocks = (0..hyper.n_layer)
            .map(|i| loader.block(i, &hyper))
            .collect::<Result<_, _>>()?;
        let output_norm = loader.vector("output_norm.weight", hyper.n_embd)?;
        Ok(Llama {
            hyper,
            token_embd,
            blocks,
            output_norm,
            output,
            file,
        })
    }

    pub fn hyper(&self) -> &Hyper {
        &self.hyper
    }

    /// The GGUF file the weights live in (for the tokenizer and chat template).
    pub fn file(&self) -> &GgufFile {
        &self.file
    }

    /// An empty cache for up to `n_ctx` positions.
    pub fn new_cache(&self, n_ctx: usize) -> KvCache {
        KvCache::new(self.hyper.n_layer, self.hyper.kv_width(), n_ctx)
    }

    /// Runs `tokens` at the cache's next positions, appending their keys and values, and
    /// returns logits `[vocab]` for the last token, or `[tokens.len() × vocab]` for every
    /// token when `all_logits`. Uses rayon's current pool. Fails, leaving the cache as it
    /// was, when the tokens do not fit the cache or a token id is outside the vocabulary.
    pub fn forward(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        all_logits: bool,
    ) -> Result<Vec<f32>, ModelError> {
        let needed = cache.len + tokens.len();
        if needed > cache.capacity {
            return Err(ModelError::ContextFull {
                capacity: cache.capacity,
                needed,
            });
        }
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= self.hyper.n_vocab) {
            return Err(ModelError::Hyper {
                path: self.file.path().to_path_buf(),
                what: format!(
                    "token id {bad} is outside the vocabulary of {}",
                    self.hyper.n_vocab
                ),
            });
        }
        let mut logits = Vec::new();
        let chunks = tokens.chunks(BATCH);
        let n_chunks = chunks.len();
        for (c, chunk) in chunks.enumerate() {
            let x = self.run_blocks(chunk, cache);
            let last_chunk = c + 1 == n_chunks;
            if all_logits {
                logits.extend(self.logits(&x, chunk.len()));
            } else if last_chunk {
                let d = self.hyper.n_embd;
                logits = self.logits(&x[(chunk.len() - 1) * d..], 1);
            }
        }
        Ok(logits)
    }

    /// The transformer blocks over one batch: returns the residual stream `[n × d]`.
    fn run_blocks(&self, tokens: &[u32], cache: &mut KvCache) -> Vec<f32> {
        let hp = &self.hyper;
        let (n, d) = (tokens.len(), hp.n_embd);
        let past = cache.len;
        let embd = self.token_embd.view(&self.file);
        let mut x = vec![0.0f32; n * d];
        for (row, &t) in x.chunks_exact_mut(d).zip(tokens) {
            get_row(embd, t as usize, row);
        }
        let rotation = RopeTable::new(&hp.rope, past, n);
        let mut scratch = Scratch::new(hp, n);
        for (l, block) in self.blocks.iter().enumerate() {
            self.attention(block, &mut x, &mut scratch, cache.layer(l), past, &rotation);
            self.feed_forward(block, &mut x, &mut scratch);
        }
        cache.len += n;
        x
    }

    /// `x += attention(rms_norm(x))`, appending this batch's keys and values to the layer's
    /// cache at positions `past..past + n`.
    fn attention(
        &self,
        block: &Block,
        x: &mut [f32],
        s: &mut Scratch,
        cache: LayerCache,
        past: usize,
        rotation: &RopeTable,
    ) {
        let hp = &self.hyper;
        let (d, kv, hd) = (hp.n_embd, hp.kv_width(), hp.head_dim);
        let n = x.len() / d;
        rms_norm(x, &block.attn_norm, hp.rms_eps, &mut s.h);
        let k_new = &mut cache.k[past * kv..(past + n) * kv];
        let v_new = &mut cache.v[past * kv..(past + n) * kv];
        matmul_q_each(
            &s.h,
            &mut [
                (block.wq.view(&self.file), &mut s.q),
                (block.wk.view(&self.file), k_new),
                (block.wv.view(&self.file), v_new),
            ],
        );
        rotation.apply(&mut s.q, hd);
        rotation.apply(k_new, hd);
        round_to_f16(&mut s.q);
        round_to_f16(k_new);
        round_to_f16(v_new);

        let seen = past + n;
        kernels::grouped_attention(
            MatRef::new(&s.q, n, d),
            MatRef::new(&cache.k[..seen * kv], seen, kv),
            MatRef::new(&cache.v[..seen * kv], seen, kv),
            &mut s.att,
            hp.n_head,
            hp.n_kv_head,
            hd,
            (hd as f32).powf(-0.5),
            Some(past),
        );
        matmul_q(block.wo.view(&self.file), &s.att, &mut s.h);
        kernels::add_assign(x, &s.h);
    }

    /// `x += W_down · (silu(W_gate · h) ⊙ W_up · h)` with `h = rms_norm(x)`.
    fn feed_forward(&self, block: &Block, x: &mut [f32], s: &mut Scratch) {
        rms_norm(x, &block.ffn_norm, self.hyper.rms_eps, &mut s.h);
        matmul_q_each(
            &s.h,
            &mut [
                (block.gate.view(&self.file), &mut s.gate),
                (block.up.view(&self.file), &mut s.up),
            ],
        );
        for (g, &u) in s.gate.iter_mut().zip(&s.up) {
            *g = *g / (1.0 + (-*g).exp()) * u;
        }
        matmul_q(block.down.view(&self.file), &s.gate, &mut s.h);
        kernels::add_assign(x, &s.h);
    }

    /// Logits `[rows × vocab]` for the first `rows` rows of the residual stream `x`.
    fn logits(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let d = self.hyper.n_embd;
        let mut h = vec![0.0; rows * d];
        rms_norm(
            &x[..rows * d],
            &self.output_norm,
            self.hyper.rms_eps,
            &mut h,
        );
        let mut logits = vec![0.0; rows * self.hyper.n_vocab];
        matmul_q(self.output.view(&self.file), &h, &mut logits);
        logits
    }
}

/// Per-batch activations, reused by every block.
struct Scratch {
    /// Normed input of a sublayer, then its output: `[n × d]`.
    h: Vec<f32>,
    /// Queries `[n × d]` and the attention's result `[n × d]`.
    q: Vec<f32>,
    att: Vec<f32>,
    /// Feed-forward hidden activations `[n × ff]`.
    gate: Vec<f32>,
    up: Vec<f32>,
}

impl Scratch {
    fn new(hp: &Hyper, n: usize) -> Self {
        let (d, ff) = (hp.n_embd, hp.n_ff);
        Scratch {
            h: vec![0.0; n * d],
            q: vec![0.0; n * d],
            att: vec![0.0; n * d],
            gate: vec![0.0; n * ff],
            up: vec![0.0; n * ff],
        }
    }
}

/// `out[i] = x[i] / rms(x[i]) · weight` for each row `x[i]` of `weight.len()` values.
fn rms_norm(x: &[f32], weight: &[f32], eps: f32, out: &mut [f32]) {
    let d = weight.len();
    for (row, out) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        // Summed in f64, as ggml does, so long rows lose nothing.
        let mean = row.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / d as f64;
        let scale = (1.0 / (mean + eps as f64).sqrt()) as f32;
        for ((o, &v), &w) in out.iter_mut().zip(row).zip(weight) {
            *o = v * scale * w;
        }
    }
}

/// Rounds every value to the nearest f16, as llama.cpp's f16 cache and f16 attention
/// products see them.
fn round_to_f16(x: &mut [f32]) {
    for v in x {
        *v = f16::from_f32(*v).to_f32();
    }
}

/// cos and sin of every rotated pair's angle at each position of a batch.
struct RopeTable {
    /// `[n × dims/2]` pairs of (cos, sin).
    turns: Vec<(f32, f32)>,
    pairs: usize,
}

impl RopeTable {
    fn new(rope: &Rope, past: usize, n: usize) -> Self {
        let pairs = rope.dims / 2;
        let step = rope.freq_base.powf(-2.0 / rope.dims as f32);
        let mut turns = Vec::with_capacity(n * pairs);
        for pos in past..past + n {
            // The angle of pair i is pos·step^i, kept as a running product in f32 as llama.cpp
            // computes it, so that both round alike.
            let mut theta = pos as f32;
            for i in 0..pairs {
                let factor = rope.freq_factors.as_ref().map_or(1.0, |f| f[i]);
                let angle = rope.freq_scale * theta / factor;
                turns.push((angle.cos(), angle.sin()));
                theta *= step;
            }
        }
        RopeTable { turns, pairs }
    }

    /// Rotates each `head_dim` head of each row of `x` (`[n × heads·head_dim]`): pair
    /// `(x[2i], x[2i+1])` of a head turns by its position's angle `i`.
    fn apply(&self, x: &mut [f32], head_dim: usize) {
        let n = self.turns.len() / self.pairs.max(1);
        let row_len = x.len() / n.max(1);
        for (row, turns) in x
            .chunks_exact_mut(row_len)
            .zip(self.turns.chunks_exact(self.pairs.max(1)))
        {
            for head in row.chunks_exact_mut(head_dim) {
                for (pair, &(cos, sin)) in head.chunks_exact_mut(2).zip(turns) {
                    let (a, b) = (pair[0], pair[1]);
                    pair[0] = a * cos - b * sin;
                    pair[1] = a * sin + b * cos;
                }
            }
        }
    }
}

/// Keys and values of every position run so far, per layer: `[n_ctx × n_kv·hd]` each.
pub struct KvCache {
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    len: usize,
    capacity: usize,
}

/// One layer's key and value rows.
struct LayerCache<'c> {
    k: &'c mut [f32],
    v: &'c mut [f32],
}

impl KvCache {
    fn new(n_layer: usize, kv_width: usize, capacity: usize) -> Self {
        let layer = || vec![0.0; capacity * kv_width];
        KvCache {
            k: (0..n_layer).map(|_| layer()).collect(),
            v: (0..n_layer).map(|_| layer()).collect(),
            len: 0,
            capacity,
        }
    }

    /// Positions filled.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Positions it can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Forgets every position from `len` on (to reuse a shared prefix of a new prompt).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    fn layer(&mut self, l: usize) -> LayerCache<'_> {
        LayerCache {
            k: &mut self.k[l],
            v: &mut self.v[l],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::gguf::{GgmlType, Value};
    use crate::llm::test_gguf::{GgufWriter, TestTensor};

    const VOCAB: u64 = 16;
    const EMBD: u64 = 32;
    const FF: u64 = 64;

    /// A one-block llama with 2 query heads sharing 1 key/value head, f32 weights of small
    /// deterministic values; `arch` and `ffn_up_type` can be set to what voxd refuses.
    fn tiny_llama(arch: &str, ffn_up_type: GgmlType) -> GgufFile {
        GgufFile::from_bytes("tiny.gguf", tiny_llama_bytes(arch, ffn_up_type, EMBD, &[])).unwrap()
    }

    /// The file [`tiny_llama`] reads, `embd` wide, with `metadata` keys written instead of
    /// its own.
    fn tiny_llama_bytes(
        arch: &str,
        ffn_up_type: GgmlType,
        embd: u64,
        metadata: &[(&str, Value)],
    ) -> Vec<u8> {
        let mut w = GgufWriter::new(3);
        let u32v = |v: u64| Value::U32(v as u32);
        let mut keys = vec![
            ("general.architecture", Value::String(arch.into())),
            ("llama.block_count", u32v(1)),
            ("llama.context_length", u32v(64)),
            ("llama.embedding_length", u32v(embd)),
            ("llama.feed_forward_length", u32v(FF)),
            ("llama.attention.head_count", u32v(2)),
            ("llama.attention.head_count_kv", u32v(1)),
            ("llama.vocab_size", u32v(VOCAB)),
            ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ];
        for (key, value) in metadata {
            match keys.iter_mut().find(|(k, _)| k == key) {
                Some(slot) => slot.1 = value.clone(),
                None => keys.push((key, value.clone())),
            }
        }
        for (key, value) in keys {
            w.kv(key, value);
        }
        let mut seed = 1u32;
        let mut f32_tensor = |name: &str, dims: &[u64]| {
            let mut t = TestTensor::new(name, GgmlType::F32, dims);
            t.data = t
                .data
                .chunks_exact(4)
                .flat_map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    ((seed >> 8) as f32 / (1 << 24) as f32 - 0.5).to_le_bytes()
                })
                .collect();
            t
        };
        let (d, kv, ff) = (embd, embd / 2, FF);
        for (name, dims) in [
            ("token_embd.weight", vec![d, VOCAB]),
            ("output_norm.weight", vec![d]),
            ("blk.0.attn_norm.weight", vec![d]),
            ("blk.0.attn_q.weight", vec![d, d]),
            ("blk.0.attn_k.weight", vec![d, kv]),
            ("blk.0.attn_v.weight", vec![d, kv]),
            ("blk.0.attn_output.weight", vec![d, d]),
            ("blk.0.ffn_norm.weight", vec![d]),
            ("blk.0.ffn_gate.weight", vec![d, ff]),
            ("blk.0.ffn_down.weight", vec![ff, d]),
        ] {
            w.tensor(f32_tensor(name, &dims));
        }
        let up = if ffn_up_type == GgmlType::F32 {
            f32_tensor("blk.0.ffn_up.weight", &[d, ff])
        } else {
            TestTensor::new("blk.0.ffn_up.weight", ffn_up_type, &[d, ff])
        };
        w.tensor(up);
        w.build()
    }

    #[test]
    fn a_model_file_rewritten_in_place_after_loading_does_not_touch_the_running_model() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.gguf");
        let bytes = tiny_llama_bytes("llama", GgmlType::F32, EMBD, &[]);
        std::fs::write(&path, &bytes).unwrap();
        let model = Llama::load(&path).unwrap();
        let tokens = [3, 1, 4, 1, 5];
        let before = model
            .forward(&tokens, &mut model.new_cache(8), false)
            .unwrap();
        // `cp other.gguf model.gguf` truncates the file, then writes the new one: pages of a
        // memory map past the new end raise SIGBUS when touched.
        std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        let after_truncation = model
            .forward(&tokens, &mut model.new_cache(8), false)
            .unwrap();
        assert_eq!(before, after_truncation);
        let mut other = bytes.clone();
        let data_start = other.len() - 4096;
        other[data_start..]
            .iter_mut()
            .for_each(|b| *b = b.wrapping_add(1));
        std::fs::write(&path, &other).unwrap();
        let after_rewrite = model
            .forward(&tokens, &mut model.new_cache(8), false)
            .unwrap();
        assert_eq!(before, after_rewrite);
    }

    #[test]
    fn a_model_zero_wide_throughout_is_refused_at_load() {
        // Every tensor agrees with embedding_length = 0, so only the value itself is wrong;
        // it used to load and then panic on the first empty row.
        let bytes = tiny_llama_bytes("llama", GgmlType::F32, 0, &[]);
        let file = GgufFile::from_bytes("zero.gguf", bytes).unwrap();
        let err = Llama::from_gguf(file).err().expect("refused").to_string();
        assert!(
            err.contains("zero.gguf") && err.contains("llama.embedding_length = 0"),
            "{err}"
        );
    }

    #[test]
    fn zero_and_absurd_hyper_parameters_are_refused_with_their_key() {
        for (key, value) in [
            ("llama.embedding_length", Value::U32(0)),
            ("llama.block_count", Value::U32(0)),
            ("llama.feed_forward_length", Value::U32(0)),
            ("llama.context_length", Value::U32(0)),
            ("llama.vocab_size", Value::U32(0)),
            ("llama.attention.head_count", Value::U32(0)),
            ("llama.attention.head_count_kv", Value::U32(0)),
            ("llama.embedding_length", Value::U32(u32::MAX)),
            ("llama.block_count", Value::U32(u32::MAX)),
            (
                "llama.attention.layer_norm_rms_epsilon",
                Value::F32(f32::NAN),
            ),
            ("llama.attention.layer_norm_rms_epsilon", Value::F32(-1.0)),
            ("llama.rope.freq_base", Value::F32(0.0)),
            ("llama.rope.freq_base", Value::F32(f32::INFINITY)),
        ] {
            let bytes = tiny_llama_bytes("llama", GgmlType::F32, EMBD, &[(key, value.clone())]);
            let file = GgufFile::from_bytes("tiny.gguf", bytes).unwrap();
            let err = Llama::from_gguf(file).err().expect("refused").to_string();
            let short = key.trim_start_matches("llama.");
            assert!(err.contains(short), "{key} = {value}: {err}");
        }
    }

    #[test]
    fn a_tiny_model_runs_and_a_batch_equals_its_tokens_one_by_one() {
        let model = Llama::from_gguf(tiny_llama("llama", GgmlType::F32)).unwrap();
        let tokens = [3, 1, 4, 1, 5, 9, 2, 6];
        let mut cache = model.new_cache(16);
        let batch = model.forward(&tokens, &mut cache, true).unwrap();
        assert!(batch.iter().all(|v| v.is_finite()));
        let mut cache = model.new_cache(16);
        for (i, &t) in tokens.iter().enumerate() {
            let one = model.forward(&[t], &mut cache, false).unwrap();
            let row = &batch[i * VOCAB as usize..(i + 1) * VOCAB as usize];
            for (a, b) in one.iter().zip(row) {
                assert!((a - b).abs() < 1e-3, "token {i}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn tokens_beyond_the_context_are_refused_and_the_cache_kept() {
        let model = Llama::from_gguf(tiny_llama("llama", GgmlType::F32)).unwrap();
        let mut cache = model.new_cache(4);
        model.forward(&[1, 2, 3], &mut cache, false).unwrap();
        let err = model.forward(&[4, 5], &mut cache, false).unwrap_err();
        assert_eq!(err.to_string(), "the context holds 4 tokens; 5 do not fit");
        assert_eq!(cache.len(), 3);
        let err = model.forward(&[99], &mut cache, false).unwrap_err();
        assert!(err.to_string().contains("token id 99"), "{err}");
    }

    #[test]
    fn an_unknown_architecture_is_named() {
        let err = Llama::from_gguf(tiny_llama("mamba", GgmlType::F32))
            .err()
            .unwrap();
        assert!(
            matches!(&err, ModelError::Architecture { arch, .. } if arch == "mamba"),
            "{err}"
        );
        assert!(
            err.to_string().contains("\"mamba\" is not supported"),
            "{err}"
        );
    }

    #[test]
    fn an_unsupported_quant_type_names_the_tensor_and_type() {
        let err = Llama::from_gguf(tiny_llama("llama", GgmlType::Q8_1))
            .err()
            .unwrap();
        let text = err.to_string();
        assert!(
            text.contains("blk.0.ffn_up.weight is Q8_1") && text.contains("supported:"),
            "{text}"
        );
    }
}
