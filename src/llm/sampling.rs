//! Choosing the next token from the logits.
//!
//! The filters run in llama.cpp's default order: repetition penalty, top-k, top-p, min-p,
//! temperature, then a draw. Temperature 0 is greedy: the highest logit after the penalty.

use std::collections::VecDeque;

use crate::whisper::decode::Rng;

/// How to sample. The defaults are llama.cpp's.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingConfig {
    /// 0 picks the most likely token (greedy); higher flattens the distribution.
    pub temperature: f32,
    /// Keep only the `top_k` most likely tokens (0: all).
    pub top_k: usize,
    /// Keep the most likely tokens whose probabilities add up to `top_p` (1: all).
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one (0: none).
    pub min_p: f32,
    /// Divide positive logits (multiply negative ones) of recently seen tokens by this (1: off).
    pub repeat_penalty: f32,
    /// How many of the latest tokens the penalty looks at.
    pub repeat_last_n: usize,
    /// Seed of the draw.
    pub seed: u64,
}

impl Default for SamplingConfig {
    fn default() -> Self {
        SamplingConfig {
            temperature: 0.8,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            seed: 0x5eed,
        }
    }
}

impl SamplingConfig {
    /// Always the most likely token.
    pub fn greedy() -> Self {
        SamplingConfig {
            temperature: 0.0,
            repeat_penalty: 1.0,
            ..SamplingConfig::default()
        }
    }
}

/// A sampler: the configuration, the random stream and the recent tokens.
pub struct Sampler {
    config: SamplingConfig,
    rng: Rng,
    recent: VecDeque<u32>,
    /// (token, logit) candidates, reused between calls.
    candidates: Vec<(u32, f32)>,
}

impl Sampler {
    pub fn new(config: SamplingConfig) -> Self {
        Sampler {
            rng: Rng::new(config.seed),
            recent: VecDeque::with_capacity(config.repeat_last_n),
            candidates: Vec::new(),
            config,
        }
    }

    /// Records a token of the context (prompt or generated) for the repetition penalty.
    pub fn accept(&mut self, token: u32) {
        if self.config.repeat_last_n == 0 {
            return;
        }
        if self.recent.len() == self.config.repeat_last_n {
            self.recent.pop_front();
        }
        self.recent.push_back(token);
    }

    /// Picks the next token from `logits` (one per vocabulary entry).
    pub fn sample(&mut self, logits: &[f32]) -> u32 {
        let c = &self.config;
        self.candidates.clear();
        self.candidates
            .extend(logits.iter().enumerate().map(|(i, &l)| (i as u32, l)));
        if c.repeat_penalty != 1.0 {
            // Each distinct recent token is penalised once, however often it came.
            let mut seen: Vec<u32> = self.recent.iter().copied().collect();
            seen.sort_unstable();
            seen.dedup();
            for t in seen {
                if let Some(cand) = self.candidates.get_mut(t as usize) {
                    cand.1 = penalize(cand.1, c.repeat_penalty);
                }
            }
        }
        if c.temperature <= 0.0 {
            return argmax(&self.candidates);
        }
        self.candidates.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        if c.top_k > 0 {
            self.candidates.truncate(c.top_k);
        }
        let probs = softmax(&self.candidates, 1.0);
        let mut keep = self.candidates.len();
        if c.top_p < 1.0 {
            let mut sum = 0.0;
            for (i, p) in probs.iter().enumerate() {
                sum += p;
                if sum >= c.top_p {
                    keep = keep.min(i + 1);
                    break;
                }
            }
        }
        if c.min_p > 0.0 {
            let floor = probs[0] * c.min_p;
            keep = keep.min(probs.iter().take_while(|&&p| p >= floor).count().max(1));
        }
        self.candidates.truncate(keep);
        let probs = softmax(&self.candidates, c.temperature);
        let mut r = self.rng.next_f32();
        for (&(token, _), p) in self.candidates.iter().zip(&probs) {
            if r < *p {
                return token;
            }
            r -= p;
        }
        self.candidates[0].0
    }
}

/// llama.cpp's repetition penalty: shrinks a logit towards "less likely" whatever its sign.
fn penalize(logit: f32, penalty: f32) -> f32 {
    if logit > 0.0 {
        logit / penalty
    } else {
        logit * penalty
    }
}

fn argmax(candidates: &[(u32, f32)]) -> u32 {
    candidates
        .iter()
        .fold(
            (0, f32::NEG_INFINITY),
            |best, &c| if c.1 > best.1 { c } else { best },
        )
        .0
}

/// Probabilities of `candidates` (sorted, most likely first) at `temperature`.
fn softmax(candidates: &[(u32, f32)], temperature: f32) -> Vec<f32> {
    let max = candidates.first().map_or(0.0, |c| c.1);
    let exps: Vec<f32> = candidates
        .iter()
        .map(|c| ((c.1 - max) / temperature).exp())
        .collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}
