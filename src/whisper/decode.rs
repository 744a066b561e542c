//! Decoding one audio window into tokens: greedy, beam search and temperature sampling, with
//! the reference implementation's logit rules (suppressed tokens, blank suppression at the
//! start, and the timestamp rules).
//!
//! The rules follow openai-whisper's `ApplyTimestampRules` as CTranslate2 implements them,
//! since faster-whisper (CTranslate2) is the reference voxd's transcripts are checked against.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rayon::prelude::*;

use super::model::{branch_caches, CrossKv, KvCache, ModelError, Whisper};
use super::tokenizer::Tokenizer;
use crate::util::rng::Rng;

/// Options for decoding one window.
#[derive(Clone, Debug)]
pub struct DecodeOptions {
    /// 1 = greedy (or sampling when `temperature > 0`).
    pub beam_size: usize,
    /// Candidates sampled at a temperature above zero; the most likely one is kept.
    pub best_of: usize,
    /// openai-whisper's beam patience: stop after `beam_size * patience` finished candidates.
    pub patience: f32,
    pub temperature: f32,
    /// Whether the prompt asks for timestamps (so the timestamp rules apply).
    pub timestamps: bool,
    /// The latest timestamp allowed as the first token, in timestamp steps (50 = 1 s).
    pub max_initial_timestamp_index: Option<u32>,
    pub suppress_blank: bool,
    /// The total length (prompt + sampled) the decoder may reach.
    pub max_length: usize,
    /// Seed of the sampler used at temperatures above zero.
    pub seed: u64,
    /// Stops the search before its next step; what it returns then is unfinished.
    pub interrupt: Interrupt,
}

/// A flag another thread raises to stop a decode: its answer is no longer wanted, and
/// someone else waits for the model. The decoder looks at it before every step, the
/// transcriber before the encoder, each fallback temperature and each window. The default
/// is never raised.
#[derive(Clone, Debug, Default)]
pub struct Interrupt(Option<Arc<AtomicBool>>);

impl Interrupt {
    /// A flag not raised yet.
    pub fn new() -> Interrupt {
        Interrupt(Some(Arc::new(AtomicBool::new(false))))
    }

    pub fn raise(&self) {
        if let Some(flag) = &self.0 {
            flag.store(true, Ordering::Release);
        }
    }

    pub fn raised(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|flag| flag.load(Ordering::Acquire))
    }
}

/// Options carrying an interrupt are the same settings: the flag is not one.
impl PartialEq for Interrupt {
    fn eq(&self, _: &Interrupt) -> bool {
        true
    }
}

impl Default for DecodeOptions {
    fn default() -> Self {
        Self {
            beam_size: 1,
            best_of: 5,
            patience: 1.0,
            temperature: 0.0,
            timestamps: true,
            max_initial_timestamp_index: Some(50),
            suppress_blank: true,
            max_length: 448,
            seed: 0x5eed,
            interrupt: Interrupt::default(),
        }
    }
}

/// The outcome of decoding one window.
#[derive(Clone, Debug)]
pub struct Decoded {
    /// Sampled tokens, without the final end-of-text.
    pub tokens: Vec<u32>,
    /// Sum of the log-probabilities of the sampled tokens, end-of-text included.
    pub sum_logprob: f32,
    /// `sum_logprob / (tokens + 1)`, as faster-whisper reports it.
    pub avg_logprob: f32,
    /// Probability of the no-speech token at the start-of-transcript position.
    pub no_speech_prob: f32,
    /// With alignment heads ([`WindowDecoder::alignment`]) and greedy or sampled decoding:
    /// for each of the forced tokens and then of `tokens`, the audio position (encoder
    /// frame, 20 ms) the decoder listened to most when it wrote that token. Empty otherwise.
    pub frames: Vec<u32>,
}

/// The token sets the logit rules need, fixed for a model.
#[derive(Clone, Debug)]
pub struct TokenRules {
    pub eot: u32,
    pub no_timestamps: u32,
    pub timestamp_begin: u32,
    pub timestamp_end: u32,
    pub no_speech: Option<u32>,
    /// Suppressed at every step.
    pub suppress: Vec<u32>,
    /// Suppressed at the first sampled step when blank suppression is on.
    pub suppress_begin: Vec<u32>,
}

impl TokenRules {
    /// The reference defaults: the non-speech symbols plus the task and control tokens are
    /// suppressed everywhere; a blank and end-of-text are suppressed at the start.
    pub fn new(tokenizer: &Tokenizer, non_speech: &[u32]) -> Self {
        let sp = tokenizer.special();
        let mut suppress: Vec<u32> = non_speech.to_vec();
        suppress.extend([
            sp.transcribe,
            sp.translate,
            sp.sot,
            sp.sot_prev,
            sp.sot_lm,
            sp.no_speech,
        ]);
        suppress.sort_unstable();
        suppress.dedup();
        let blank = tokenizer.encode(" ");
        let mut suppress_begin = blank;
        suppress_begin.push(sp.eot);
        Self {
            eot: sp.eot,
            no_timestamps: sp.no_timestamps,
            timestamp_begin: sp.timestamp_begin,
            timestamp_end: tokenizer.n_vocab() as u32 - 1,
            no_speech: Some(sp.no_speech),
            suppress,
            suppress_begin,
        }
    }
}

/// The tokens openai-whisper calls non-speech: symbols and music notes that are never
/// worth transcribing, found by tokenizing them (so it works for any vocabulary).
pub fn non_speech_tokens(tokenizer: &Tokenizer) -> Vec<u32> {
    let singles = "\"#()*+/:;<=>@[\\]^_`{|}~「」『』";
    let multi = "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪";
    let notes = "♩♪♫♬♭♮♯";
    let mut out = vec![tokenizer.encode(" -")[0], tokenizer.encode(" '")[0]];
    let symbols = singles
        .chars()
        .map(String::from)
        .chain(multi.split(' ').map(String::from));
    for symbol in symbols {
        for ids in [
            tokenizer.encode(&symbol),
            tokenizer.encode(&format!(" {symbol}")),
        ] {
            if ids.len() == 1 {
                out.push(ids[0]);
            }
        }
    }
    for note in notes.chars().map(String::from) {
        for ids in [
            tokenizer.encode(&note),
            tokenizer.encode(&format!(" {note}")),
        ] {
            out.push(ids[0]);
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Masks `logits` in place by the rules, given the tokens sampled so far in this window.
pub fn apply_rules(logits: &mut [f32], sampled: &[u32], rules: &TokenRules, opts: &DecodeOptions) {
    let mask = |logits: &mut [f32], range: std::ops::Range<usize>| {
        let end = range.end.min(logits.len());
        logits[range.start.min(end)..end].fill(f32::NEG_INFINITY);
    };
    if sampled.is_empty() && opts.suppress_blank {
        for &t in &rules.suppress_begin {
            logits[t as usize] = f32::NEG_INFINITY;
        }
    }
    for &t in &rules.suppress {
        logits[t as usize] = f32::NEG_INFINITY;
    }
    if !opts.timestamps {
        return;
    }
    let (tb, eot) = (rules.timestamp_begin as usize, rules.eot as usize);
    logits[rules.no_timestamps as usize] = f32::NEG_INFINITY;
    let is_ts = |t: u32| t >= rules.timestamp_begin;

    let check_probability = match sampled {
        [] => {
            // The first token must be a timestamp, and not too late.
            mask(logits, 0..tb);
            if let Some(max) = opts.max_initial_timestamp_index {
                mask(logits, tb + max as usize + 1..logits.len());
            }
            false
        }
        [.., penultimate, last] if is_ts(*last) && !is_ts(*penultimate) => {
            // Closing a segment: a timestamp no earlier than the last one, or the end.
            mask(logits, 0..eot);
            mask(logits, tb..*last as usize);
            true
        }
        [.., last] if is_ts(*last) => {
            // A pair just closed (or the window just opened): text must follow.
            mask(logits, tb..logits.len());
            false
        }
        _ => {
            // Inside a segment: timestamps must strictly increase.
            if let Some(&prev) = sampled.iter().rev().find(|&&t| is_ts(t)) {
                mask(logits, tb..prev as usize + 1);
            }
            true
        }
    };
    if check_probability && timestamps_more_likely(logits, tb) {
        mask(logits, 0..tb);
    }
}

/// Whether the total probability of all timestamps beats that of every single text token.
fn timestamps_more_likely(logits: &[f32], tb: usize) -> bool {
    let lse = log_sum_exp(logits);
    let ts = log_sum_exp(&logits[tb..]) - lse;
    let text = logits[..tb]
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max)
        - lse;
    ts > text
}

/// log Σ exp(x) of a row of logits: the normaliser of its log-probabilities (a vocabulary's
/// worth of exponentials per row and step: the kernels' vector exp keeps it from costing as
/// much as the decoder step).
pub use crate::kernels::log_sum_exp;

fn argmax(x: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in x.iter().enumerate() {
        if v > x[best] {
            best = i;
        }
    }
    best as u32
}

/// A token drawn from softmax(logits / temperature). `probs` is scratch the caller keeps
/// between draws: a vocabulary's probabilities per candidate and step, with the kernels'
/// vector exp (the scalar one, a draw at a time, was most of a fallback step's bookkeeping).
fn sample(logits: &[f32], temperature: f32, rng: &mut Rng, probs: &mut Vec<f32>) -> u32 {
    probs.clear();
    probs.extend(logits.iter().map(|&v| v / temperature));
    crate::kernels::softmax(probs);
    let mut r = rng.unit_f32();
    for (i, (&p, &logit)) in probs.iter().zip(logits).enumerate() {
        // A masked token's vector exp is a denormal sliver, not 0: never drawn.
        if logit == f32::NEG_INFINITY {
            continue;
        }
        if r < p {
            return i as u32;
        }
        r -= p;
    }
    // Rounding left a sliver above the total: the likeliest token.
    argmax(logits)
}

/// One decoding hypothesis.
#[derive(Clone)]
struct Hypothesis {
    tokens: Vec<u32>,
    sum_logprob: f32,
    cache: KvCache,
    /// Where each token was listened for (see [`Decoded::frames`]), and where the next one
    /// is: the last row's.
    frames: Vec<u32>,
    next_frame: u32,
}

/// Decodes one audio window (its cross-attention keys/values already computed).
pub struct WindowDecoder<'a> {
    pub model: &'a Whisper,
    pub rules: &'a TokenRules,
    pub cross: &'a CrossKv,
    /// (layer, head) pairs whose cross-attention says where each token was heard
    /// ([`Decoded::frames`]); empty: not computed.
    pub alignment: &'a [(usize, usize)],
}

impl WindowDecoder<'_> {
    /// Runs the decoder on new tokens of one or more sequences (`tokens[i]` continues
    /// `caches[i]`): the hidden rows, and for each row the audio position it listened to
    /// most (none without alignment heads).
    fn run(
        &self,
        caches: &mut [KvCache],
        tokens: &[&[u32]],
    ) -> Result<(Vec<f32>, Vec<u32>), ModelError> {
        if self.alignment.is_empty() {
            return Ok((self.model.decode(self.cross, caches, tokens)?, Vec::new()));
        }
        let (hidden, listened) =
            self.model
                .decode_attending(self.cross, caches, tokens, self.alignment)?;
        let frames = listened
            .chunks_exact(self.cross.n_audio())
            .map(argmax)
            .collect();
        Ok((hidden, frames))
    }

    /// Runs the prompt once, returning its cache, the logits after its last token, the
    /// no-speech probability read at `sot_index`, and where each row listened (see
    /// [`WindowDecoder::run`]).
    fn start(
        &self,
        prompt: &[u32],
        sot_index: usize,
    ) -> Result<(KvCache, Vec<f32>, f32, Vec<u32>), ModelError> {
        let s = self.model.hparams().n_text_state;
        let mut cache = self.model.new_cache();
        let (hidden, frames) = self.run(std::slice::from_mut(&mut cache), &[prompt])?;
        let last = prompt.len() - 1;
        let rows: Vec<f32> = if sot_index == last {
            hidden[last * s..].to_vec()
        } else {
            [
                &hidden[sot_index * s..(sot_index + 1) * s],
                &hidden[last * s..],
            ]
            .concat()
        };
        let logits = self.model.logits(&rows);
        let n_vocab = self.model.hparams().n_vocab;
        let no_speech_prob = match self.rules.no_speech {
            Some(ns) => (logits[ns as usize] - log_sum_exp(&logits[..n_vocab])).exp(),
            None => 0.0,
        };
        // Every beam or sample continues the prompt: one copy of its keys and values
        // serves them all.
        Ok((
            cache.shared(),
            logits[logits.len() - n_vocab..].to_vec(),
            no_speech_prob,
            frames,
        ))
    }

    /// Decodes after `prompt` (whose start-of-transcript is at `sot_index`). `forced` are
    /// tokens this window already holds (a stream decoded again as it grows): they are run
    /// with the prompt and count as sampled for the rules, and the result is what follows
    /// them.
    pub fn decode(
        &self,
        prompt: &[u32],
        sot_index: usize,
        forced: &[u32],
        opts: &DecodeOptions,
    ) -> Result<Decoded, ModelError> {
        let (cache, logits, no_speech_prob, frames) =
            self.start(&[prompt, forced].concat(), sot_index)?;
        // Row i predicts token i + 1: the forced tokens were written by the rows before them.
        let (forced_frames, next_frame) = match frames.split_last() {
            Some((&next, before)) => (before[prompt.len() - 1..].to_vec(), next),
            None => (Vec::new(), 0),
        };
        let root = Hypothesis {
            tokens: forced.to_vec(),
            sum_logprob: 0.0,
            cache,
            frames: forced_frames,
            next_frame,
        };
        let best = if opts.temperature > 0.0 {
            let candidates =
                self.sample_candidates(root, logits, prompt.len(), opts, opts.best_of.max(1))?;
            rank(candidates, forced.len())
        } else if opts.beam_size <= 1 {
            let mut greedy = self.sample_candidates(root, logits, prompt.len(), opts, 1)?;
            greedy.pop().expect("one candidate")
        } else {
            self.beam_search(root, logits, prompt.len(), opts)?
        };
        let tokens = best.tokens.get(forced.len()..).unwrap_or(&[]).to_vec();
        let frames = if best.frames.len() == best.tokens.len() {
            best.frames
        } else {
            Vec::new()
        };
        Ok(Decoded {
            avg_logprob: best.sum_logprob / (tokens.len() + 1) as f32,
            tokens,
            sum_logprob: best.sum_logprob,
            no_speech_prob,
            frames,
        })
    }

    /// `count` continuations of `root`: greedy at temperature 0, sampled above it. They
    /// run side by side, one decoder step for all of them per token (the weights are read
    /// once a step, not once per candidate: at a fallback temperature the `best_of`
    /// candidates cost little more than one), each drawing from a generator of its own, so
    /// that a candidate's tokens do not depend on how long the others run.
    fn sample_candidates(
        &self,
        root: Hypothesis,
        first_logits: Vec<f32>,
        prompt_len: usize,
        opts: &DecodeOptions,
        count: usize,
    ) -> Result<Vec<Hypothesis>, ModelError> {
        let n_vocab = self.model.hparams().n_vocab;
        let mut seeds = Rng::new(opts.seed);
        let mut live: Vec<(Hypothesis, Rng)> = (0..count)
            .map(|_| (root.clone(), Rng::new(seeds.next_u64())))
            .collect();
        let mut all_logits = first_logits.repeat(count);
        let mut finished = Vec::with_capacity(count);
        let mut probs = Vec::new();
        loop {
            let mut going = Vec::with_capacity(live.len());
            for ((mut hyp, mut rng), logits) in live.into_iter().zip(all_logits.chunks_mut(n_vocab))
            {
                apply_rules(logits, &hyp.tokens, self.rules, opts);
                let token = if opts.temperature > 0.0 {
                    sample(logits, opts.temperature, &mut rng, &mut probs)
                } else {
                    argmax(logits)
                };
                hyp.sum_logprob += logits[token as usize] - log_sum_exp(logits);
                if token == self.rules.eot {
                    finished.push(hyp);
                    continue;
                }
                hyp.tokens.push(token);
                if !self.alignment.is_empty() {
                    hyp.frames.push(hyp.next_frame);
                }
                if prompt_len + hyp.tokens.len() >= opts.max_length {
                    finished.push(hyp);
                } else {
                    going.push((hyp, rng));
                }
            }
            if going.is_empty() || opts.interrupt.raised() {
                finished.extend(going.into_iter().map(|(hyp, _)| hyp));
                return Ok(finished);
            }
            let mut caches: Vec<KvCache> = going
                .iter_mut()
                .map(|(hyp, _)| std::mem::replace(&mut hyp.cache, KvCache::empty()))
                .collect();
            let steps: Vec<[u32; 1]> = going
                .iter()
                .map(|(hyp, _)| [*hyp.tokens.last().unwrap_or(&0)])
                .collect();
            let step_refs: Vec<&[u32]> = steps.iter().map(|s| s.as_slice()).collect();
            let (hidden, frames) = self.run(&mut caches, &step_refs)?;
            for (i, ((hyp, _), cache)) in going.iter_mut().zip(caches).enumerate() {
                hyp.cache = cache;
                hyp.next_frame = frames.get(i).copied().unwrap_or(0);
            }
            self.model.logits_into(&hidden, &mut all_logits);
            live = going;
        }
    }

    /// openai-whisper's beam search: each live beam proposes its `beam_size + 1` best
    /// continuations; the best `beam_size` unfinished ones live on, finished ones are
    /// collected until `beam_size * patience` of them exist.
    fn beam_search(
        &self,
        root: Hypothesis,
        first_logits: Vec<f32>,
        prompt_len: usize,
        opts: &DecodeOptions,
    ) -> Result<Hypothesis, ModelError> {
        let n_vocab = self.model.hparams().n_vocab;
        let forced = root.tokens.len();
        let max_finished = ((opts.beam_size as f32 * opts.patience).round() as usize).max(1);
        let mut beams = vec![root];
        let mut all_logits = first_logits;
        let mut finished: Vec<Hypothesis> = Vec::new();
        loop {
            // (score, beam index, token); the beams' rows side by side, in beam order.
            let mut candidates: Vec<(f32, usize, u32)> = all_logits
                .par_chunks_mut(n_vocab)
                .zip(beams.par_iter())
                .enumerate()
                .flat_map_iter(|(b, (logits, beam))| {
                    apply_rules(logits, &beam.tokens, self.rules, opts);
                    let lse = log_sum_exp(logits);
                    top_k(logits, opts.beam_size + 1)
                        .into_iter()
                        .map(move |t| (beam.sum_logprob + (logits[t as usize] - lse), b, t))
                })
                .collect();
            candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
            // The live hypotheses of the next step, without their caches yet, and the
            // index of each one's parent.
            let mut next: Vec<Hypothesis> = Vec::new();
            let mut parents: Vec<usize> = Vec::new();
            for (score, b, token) in candidates {
                if score == f32::NEG_INFINITY {
                    break;
                }
                if token == self.rules.eot {
                    if finished.len() < max_finished {
                        finished.push(Hypothesis {
                            tokens: beams[b].tokens.clone(),
                            sum_logprob: score,
                            cache: KvCache::empty(),
                            frames: Vec::new(),
                            next_frame: 0,
                        });
                    }
                } else if next.len() < opts.beam_size {
                    let parent = &beams[b];
                    let mut tokens = parent.tokens.clone();
                    tokens.push(token);
                    next.push(Hypothesis {
                        tokens,
                        sum_logprob: score,
                        cache: KvCache::empty(),
                        frames: parent.frames.clone(),
                        next_frame: parent.next_frame,
                    });
                    parents.push(b);
                }
                // As openai-whisper: candidates ranked below the last live beam are dropped,
                // finished ones included.
                if next.len() == opts.beam_size {
                    break;
                }
            }
            let at_limit = next
                .first()
                .is_none_or(|h| prompt_len + h.tokens.len() >= opts.max_length);
            if finished.len() >= max_finished || at_limit || opts.interrupt.raised() {
                return Ok(rank(
                    final_candidates(finished, next, opts.beam_size),
                    forced,
                ));
            }
            let mut caches = branch_caches(beams.into_iter().map(|h| h.cache).collect(), &parents);
            beams = next;
            let steps: Vec<[u32; 1]> = beams
                .iter()
                .map(|h| [*h.tokens.last().unwrap_or(&0)])
                .collect();
            let step_refs: Vec<&[u32]> = steps.iter().map(|s| s.as_slice()).collect();
            let hidden = self.model.decode(self.cross, &mut caches, &step_refs)?;
            for (h, c) in beams.iter_mut().zip(caches) {
                h.cache = c;
            }
            self.model.logits_into(&hidden, &mut all_logits);
        }
    }
}

/// The indices of the `k` largest values, best first (the lower index first among equals).
/// One pass that keeps the best `k` so far: a vocabulary's row, once per beam and step.
fn top_k(x: &[f32], k: usize) -> Vec<u32> {
    let mut best: Vec<u32> = Vec::with_capacity(k + 1);
    let ranks_above = |a: u32, b: u32| x[a as usize].total_cmp(&x[b as usize]).is_gt();
    for i in 0..x.len() as u32 {
        if best.len() == k && !best.last().is_some_and(|&worst| ranks_above(i, worst)) {
            continue;
        }
        let at = best.partition_point(|&b| !ranks_above(i, b));
        best.insert(at, i);
        best.truncate(k);
    }
    best
}

/// The candidates a beam search ends with, as openai-whisper's `finalize` takes them: the
/// finished ones, and while fewer than `beam_size` finished (the token limit came first),
/// the likeliest live ones (`live` is best first) until there are `beam_size`. Without them
/// an end-of-text taken early would win over any text the limit cut.
fn final_candidates(
    mut finished: Vec<Hypothesis>,
    live: Vec<Hypothesis>,
    beam_size: usize,
) -> Vec<Hypothesis> {
    let short = beam_size.saturating_sub(finished.len());
    finished.extend(live.into_iter().take(short));
    finished
}

/// openai-whisper's default ranking: the highest log-probability per sampled token (the
/// first `forced` tokens were not sampled). With no candidate at all (every continuation was
/// masked), the window decodes to nothing.
fn rank(candidates: Vec<Hypothesis>, forced: usize) -> Hypothesis {
    candidates
        .into_iter()
        .max_by(|a, b| {
            let score = |h: &Hypothesis| {
                h.sum_logprob / h.tokens.len().saturating_sub(forced).max(1) as f32
            };
            score(a).total_cmp(&score(b))
        })
        .unwrap_or_else(|| Hypothesis {
            tokens: Vec::new(),
            sum_logprob: f32::NEG_INFINITY,
            cache: KvCache::empty(),
            frames: Vec::new(),
            next_frame: 0,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A toy vocabulary: text 0..10, end-of-text 10, no-timestamps 12, timestamps 13..=19.
    fn rules() -> TokenRules {
        TokenRules {
            eot: 10,
            no_timestamps: 12,
            timestamp_begin: 13,
            timestamp_end: 19,
            no_speech: Some(11),
            suppress: vec![5],
            suppress_begin: vec![1, 10],
        }
    }

    fn allowed(sampled: &[u32], opts: &DecodeOptions) -> Vec<u32> {
        allowed_from(vec![0.0f32; 20], sampled, opts)
    }

    fn allowed_from(mut logits: Vec<f32>, sampled: &[u32], opts: &DecodeOptions) -> Vec<u32> {
        apply_rules(&mut logits, sampled, &rules(), opts);
        (0..20)
            .filter(|&t| logits[t as usize].is_finite())
            .collect()
    }

    fn opts() -> DecodeOptions {
        DecodeOptions {
            max_initial_timestamp_index: Some(2),
            ..DecodeOptions::default()
        }
    }

    #[test]
    fn first_token_is_an_early_timestamp() {
        assert_eq!(allowed(&[], &opts()), vec![13, 14, 15]);
    }

    #[test]
    fn after_an_opening_timestamp_comes_text() {
        assert_eq!(
            allowed(&[14], &opts()),
            vec![0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11]
        );
    }

    #[test]
    fn inside_a_segment_timestamps_move_forward() {
        // Equal text and timestamp scores: the timestamps' total wins, so text is masked.
        assert_eq!(allowed(&[14, 3], &opts()), vec![15, 16, 17, 18, 19]);
    }

    #[test]
    fn closing_timestamp_is_followed_by_a_timestamp_or_the_end() {
        // Uniform scores: the timestamps' total beats any single other token.
        assert_eq!(allowed(&[14, 3, 16], &opts()), vec![16, 17, 18, 19]);
        // A likely end of text survives next to the later timestamps.
        let mut logits = vec![0.0f32; 20];
        logits[10] = 5.0;
        let got = allowed_from(logits, &[14, 3, 16], &opts());
        assert_eq!(got, vec![10, 11, 16, 17, 18, 19]);
    }

    #[test]
    fn a_pair_of_timestamps_is_followed_by_text() {
        let got = allowed(&[14, 3, 16, 16], &opts());
        assert!(got.iter().all(|&t| t < 13), "{got:?}");
    }

    #[test]
    fn without_timestamps_only_suppression_applies() {
        let o = DecodeOptions {
            timestamps: false,
            ..opts()
        };
        assert_eq!(
            allowed(&[3], &o),
            vec![0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19]
        );
        assert!(
            !allowed(&[], &o).contains(&1),
            "blank suppressed at the start"
        );
    }

    fn hypothesis(tokens: usize, sum_logprob: f32) -> Hypothesis {
        Hypothesis {
            tokens: vec![1; tokens],
            sum_logprob,
            cache: KvCache::empty(),
            frames: Vec::new(),
            next_frame: 0,
        }
    }

    /// At the token limit with one early end-of-text finished (-1 a token), the live beams
    /// (-0.25 and -0.375 a token) compete, and the likeliest per token wins; with
    /// `beam_size` finished, the live ones are left out, as openai-whisper leaves them.
    #[test]
    fn at_the_token_limit_the_live_beams_compete_with_an_early_end() {
        let early = || hypothesis(1, -1.0);
        let live = || vec![hypothesis(8, -2.0), hypothesis(8, -3.0)];
        let best = rank(final_candidates(vec![early()], live(), 5), 0);
        assert_eq!((best.tokens.len(), best.sum_logprob), (8, -2.0));
        let full: Vec<Hypothesis> = (0..5).map(|_| early()).collect();
        let best = rank(final_candidates(full, live(), 5), 0);
        assert_eq!(best.tokens.len(), 1);
        // Nothing finished: the live ones are the candidates.
        let best = rank(final_candidates(Vec::new(), live(), 5), 0);
        assert_eq!(best.sum_logprob, -2.0);
    }

    #[test]
    fn top_k_is_sorted_best_first() {
        assert_eq!(top_k(&[0.1, 0.9, 0.5, 0.7], 3), vec![1, 3, 2]);
        assert_eq!(top_k(&[0.1], 3), vec![0]);
        let masked = [f32::NEG_INFINITY, 0.5, 0.5, f32::NEG_INFINITY, 0.7, 0.2];
        assert_eq!(top_k(&masked, 3), vec![4, 1, 2]);
        assert_eq!(top_k(&masked, 0), Vec::<u32>::new());
        assert_eq!(top_k(&masked, 6), vec![4, 1, 2, 5, 0, 3]);
    }

    #[test]
    fn sampler_is_deterministic_and_follows_the_distribution() {
        let logits = [0.0f32, 2.0f32.ln(), f32::NEG_INFINITY];
        let mut rng = Rng::new(7);
        let mut probs = Vec::new();
        let draws: Vec<u32> = (0..3000)
            .map(|_| sample(&logits, 1.0, &mut rng, &mut probs))
            .collect();
        let ones = draws.iter().filter(|&&t| t == 1).count() as f32 / 3000.0;
        assert!((ones - 2.0 / 3.0).abs() < 0.05, "{ones}");
        assert!(!draws.contains(&2));
        let mut again = Rng::new(7);
        assert_eq!(sample(&logits, 1.0, &mut again, &mut probs), draws[0]);
    }
}
