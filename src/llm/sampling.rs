//! Choosing the next token from the logits.
//!
//! The filters run in llama.cpp's default order: repetition penalty, top-k, top-p, min-p,
//! temperature, then a draw. Temperature 0 is greedy: the highest logit after the penalty.

use std::collections::VecDeque;

use crate::util::rng::Rng;

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
        let mut r = self.rng.unit_f32();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Logits whose softmax is close to `probs`.
    fn logits(probs: &[f32]) -> Vec<f32> {
        probs.iter().map(|p| p.ln()).collect()
    }

    fn draws(config: SamplingConfig, logits: &[f32], n: usize) -> Vec<usize> {
        let mut counts = vec![0; logits.len()];
        let mut sampler = Sampler::new(config);
        for _ in 0..n {
            counts[sampler.sample(logits) as usize] += 1;
        }
        counts
    }

    #[test]
    fn greedy_takes_the_highest_logit() {
        let mut s = Sampler::new(SamplingConfig::greedy());
        assert_eq!(s.sample(&[0.1, 2.0, -1.0, 1.9]), 1);
    }

    #[test]
    fn draws_follow_the_distribution_and_the_seed() {
        let l = logits(&[0.5, 0.3, 0.2]);
        let plain = SamplingConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            ..SamplingConfig::default()
        };
        let counts = draws(plain.clone(), &l, 10_000);
        for (c, p) in counts.iter().zip([0.5, 0.3, 0.2]) {
            assert!((*c as f32 / 10_000.0 - p).abs() < 0.02, "{counts:?}");
        }
        assert_eq!(draws(plain.clone(), &l, 50), draws(plain, &l, 50));
    }

    #[test]
    fn top_k_top_p_and_min_p_cut_the_tail() {
        let l = logits(&[0.4, 0.3, 0.2, 0.06, 0.04]);
        let base = SamplingConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            ..SamplingConfig::default()
        };
        let allowed = |config: SamplingConfig| {
            draws(config, &l, 2_000)
                .iter()
                .map(|&c| c > 0)
                .collect::<Vec<_>>()
        };
        let top_k = allowed(SamplingConfig {
            top_k: 2,
            ..base.clone()
        });
        assert_eq!(top_k, [true, true, false, false, false]);
        // 0.4 + 0.3 < 0.85 <= 0.4 + 0.3 + 0.2: three tokens.
        let top_p = allowed(SamplingConfig {
            top_p: 0.85,
            ..base.clone()
        });
        assert_eq!(top_p, [true, true, true, false, false]);
        // Tokens below 0.4 · 0.6 = 0.24 go.
        let min_p = allowed(SamplingConfig {
            min_p: 0.6,
            ..base.clone()
        });
        assert_eq!(min_p, [true, true, false, false, false]);
    }

    #[test]
    fn the_repetition_penalty_turns_a_greedy_choice_once_per_token() {
        let config = SamplingConfig {
            repeat_penalty: 1.5,
            ..SamplingConfig::greedy()
        };
        let mut s = Sampler::new(config);
        // 2.0 / 1.5 = 1.33 < 1.5: the seen token loses to the next one.
        s.accept(0);
        s.accept(0);
        assert_eq!(s.sample(&[2.0, 1.5, -1.0]), 1);
        // Negative logits are pushed further down.
        s.accept(2);
        assert_eq!(penalize(-1.0, 1.5), -1.5);
        assert_eq!(s.sample(&[-1.2, -1.3, -1.0]), 1);
    }
}
