//! Text generation: a prompt in, tokens out one at a time until a stop.
//!
//! [`Engine`] owns the model, its tokenizer, a KV cache and a thread pool. Each call reuses
//! the cache for the part of the new prompt that matches what the cache already holds (a chat
//! turn's prompt starts with the previous turn's), runs the rest in batches, then samples one
//! token at a time, streaming text as it becomes whole UTF-8 and never showing the start of a
//! stop string.

use std::ops::ControlFlow;
use std::path::Path;
use std::time::{Duration, Instant};

use super::model::{Llama, ModelError};
use super::sampling::Sampler;
use super::tokenizer::{StreamDecoder, Tokenizer, TokenizerError};

/// Why generation could not run.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    #[error("the prompt is {tokens} tokens; the context holds {context} (at least one must be left to answer)")]
    PromptTooLong { tokens: usize, context: usize },
    #[error(transparent)]
    NoModel(#[from] crate::util::paths::NoLlmModel),
    #[error(transparent)]
    Template(#[from] super::gguf::GgufError),
    #[error("cannot start {threads} threads: {reason}")]
    Threads { threads: usize, reason: String },
}

/// Limits of one generation.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Tokens generated at most.
    pub max_tokens: usize,
    /// Wall time for the whole call (prompt included), if limited.
    pub max_time: Option<Duration>,
    /// Text that ends the answer (not included in it).
    pub stop_strings: Vec<String>,
    /// Tokens that end the answer besides the tokenizer's end-of-generation tokens.
    pub stop_tokens: Vec<u32>,
}

/// The longest time limit a reply may be given, in seconds (a day): beyond any spoken
/// answer, and far inside what a [`Duration`] holds.
pub const MAX_REPLY_SECONDS: f64 = 86_400.0;

/// A time limit that is not a number of seconds above 0 and at most [`MAX_REPLY_SECONDS`].
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
#[error("{0}: must be a number of seconds above 0 and at most {MAX_REPLY_SECONDS}")]
pub struct InvalidTimeLimit(pub f64);

impl Limits {
    /// `seconds` as a limit on a reply's wall time. The one check of the value, for
    /// `[llm] max_seconds` and `--max-seconds` alike: NaN, infinities, 0, negative and
    /// overlong values are refused (each would panic in [`Duration::from_secs_f64`] or end
    /// every reply at once).
    pub fn time_limit(seconds: f64) -> Result<Duration, InvalidTimeLimit> {
        if seconds > 0.0 && seconds <= MAX_REPLY_SECONDS {
            Ok(Duration::from_secs_f64(seconds))
        } else {
            Err(InvalidTimeLimit(seconds))
        }
    }

    /// A number of seconds written as text, checked by [`Limits::time_limit`]: the parser
    /// of command-line flags.
    pub fn parse_seconds(text: &str) -> Result<f64, String> {
        let seconds: f64 = text
            .trim()
            .parse()
            .map_err(|_| format!("{text:?} is not a number of seconds"))?;
        Limits::time_limit(seconds).map_err(|e| e.to_string())?;
        Ok(seconds)
    }
}

/// Why generation stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The model ended its turn (an end-of-generation token).
    Eos,
    MaxTokens,
    Time,
    StopString,
    /// The context is full.
    Context,
    /// The caller's callback asked to stop.
    Cancelled,
}

impl StopReason {
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::Eos => "eos",
            StopReason::MaxTokens => "max_tokens",
            StopReason::Time => "time",
            StopReason::StopString => "stop_string",
            StopReason::Context => "context",
            StopReason::Cancelled => "cancelled",
        }
    }
}

/// What one generation made, and how fast.
#[derive(Clone, Debug)]
pub struct Generated {
    pub text: String,
    /// Generated tokens (without the end-of-generation token).
    pub tokens: Vec<u32>,
    pub stop: StopReason,
    pub prompt_tokens: usize,
    /// Prompt tokens found in the cache already (not run again).
    pub reused_tokens: usize,
    pub prompt_time: Duration,
    pub generate_time: Duration,
}

/// A model ready to generate: weights, tokenizer, cache and threads.
pub struct Engine {
    model: Llama,
    tokenizer: Tokenizer,
    pool: rayon::ThreadPool,
    cache: super::model::KvCache,
    /// The tokens whose keys and values the cache holds, in order.
    cached: Vec<u32>,
}

impl Engine {
    /// Loads the model at `path` with a context of `n_ctx` tokens (capped at the model's
    /// training context) and `threads` threads.
    pub fn load(path: &Path, n_ctx: usize, threads: usize) -> Result<Self, GenerateError> {
        let model = Llama::load(path)?;
        let tokenizer = Tokenizer::from_gguf(model.file())?;
        let n_ctx = n_ctx.clamp(1, model.hyper().n_ctx_train);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .build()
            .map_err(|e| GenerateError::Threads {
                threads,
                reason: e.to_string(),
            })?;
        Ok(Engine {
            cache: model.new_cache(n_ctx),
            model,
            tokenizer,
            pool,
            cached: Vec::new(),
        })
    }

    pub fn model(&self) -> &Llama {
        &self.model
    }

    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Tokens the context holds.
    pub fn context(&self) -> usize {
        self.cache.capacity()
    }

    /// Logits for every position of `tokens`, run from an empty cache: `[n × vocab]`.
    pub fn logits_all(&mut self, tokens: &[u32]) -> Result<Vec<f32>, GenerateError> {
        self.cache.truncate(0);
        self.cached.clear();
        let (model, cache) = (&self.model, &mut self.cache);
        let logits = self.pool.install(|| model.forward(tokens, cache, true))?;
        self.cached.extend_from_slice(tokens);
        Ok(logits)
    }

    /// Continues `prompt` (token ids, special tokens included) with sampled tokens until a
    /// stop, calling `on_text` with each piece of text as it becomes final.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        sampler: &mut Sampler,
        limits: &Limits,
        mut on_text: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generated, GenerateError> {
        let start = Instant::now();
        let context = self.cache.capacity();
        if prompt.is_empty() || prompt.len() >= context {
            return Err(GenerateError::PromptTooLong {
                tokens: prompt.len(),
                context,
            });
        }
        for &t in prompt {
            sampler.accept(t);
        }
        let (mut logits, reused) = self.run_prompt(prompt)?;
        let prompt_time = start.elapsed();

        let Engine {
            model,
            tokenizer,
            pool,
            cache,
            cached,
        } = self;
        let mut out = StopStrings::new(&limits.stop_strings);
        let mut decoder = StreamDecoder::new(tokenizer, false);
        let mut tokens = Vec::new();
        let stop = loop {
            if tokens.len() >= limits.max_tokens {
                break StopReason::MaxTokens;
            }
            if limits.max_time.is_some_and(|t| start.elapsed() >= t) {
                break StopReason::Time;
            }
            let token = sampler.sample(&logits);
            if tokenizer.is_end_of_generation(token) || limits.stop_tokens.contains(&token) {
                break StopReason::Eos;
            }
            sampler.accept(token);
            tokens.push(token);
            if let Some(stop) = out.push(&decoder.push(token), &mut on_text) {
                break stop;
            }
            if tokens.len() >= limits.max_tokens {
                break StopReason::MaxTokens;
            }
            if cache.len() == context {
                break StopReason::Context;
            }
            logits = pool.install(|| model.forward(&[token], cache, false))?;
            cached.push(token);
        };
        if stop != StopReason::StopString {
            out.push(&decoder.finish(), &mut on_text);
            out.flush(&mut on_text);
        }
        Ok(Generated {
            text: out.text,
            tokens,
            stop,
            prompt_tokens: prompt.len(),
            reused_tokens: reused,
            prompt_time,
            generate_time: start.elapsed() - prompt_time,
        })
    }

    /// Brings the cache to `prompt` (reusing the longest shared prefix, and always running at
    /// least the last token to get its logits); returns those logits and the tokens reused.
    fn run_prompt(&mut self, prompt: &[u32]) -> Result<(Vec<f32>, usize), GenerateError> {
        let shared = self
            .cached
            .iter()
            .zip(prompt)
            .take_while(|(a, b)| a == b)
            .count()
            .min(prompt.len() - 1);
        self.cache.truncate(shared);
        self.cached.truncate(shared);
        let (model, cache) = (&self.model, &mut self.cache);
        let rest = &prompt[shared..];
        let logits = self.pool.install(|| model.forward(rest, cache, false))?;
        self.cached.extend_from_slice(rest);
        Ok((logits, shared))
    }
}

/// The answer's text, streamed out without ever showing a stop string or its beginning.
struct StopStrings<'s> {
    stops: &'s [String],
    text: String,
    /// Bytes of `text` already passed on.
    shown: usize,
}

impl<'s> StopStrings<'s> {
    fn new(stops: &'s [String]) -> Self {
        StopStrings {
            stops,
            text: String::new(),
            shown: 0,
        }
    }

    /// Adds `piece`; passes on what can no longer be part of a stop string. Returns a stop
    /// reason when a stop string is complete (the text is cut before it) or the callback
    /// asks to stop.
    fn push(
        &mut self,
        piece: &str,
        on_text: &mut impl FnMut(&str) -> ControlFlow<()>,
    ) -> Option<StopReason> {
        self.text.push_str(piece);
        let search_from = self.shown.saturating_sub(self.longest_stop());
        let search_from = floor_char_boundary(&self.text, search_from);
        let found = self
            .stops
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| self.text[search_from..].find(s.as_str()))
            .min();
        if let Some(at) = found {
            self.text.truncate(search_from + at);
            return self
                .show(self.text.len(), on_text)
                .or(Some(StopReason::StopString));
        }
        let held = self.partial_stop_len();
        self.show(self.text.len() - held, on_text)
    }

    /// Passes on everything held back (generation ended without a stop string).
    fn flush(&mut self, on_text: &mut impl FnMut(&str) -> ControlFlow<()>) {
        let _ = self.show(self.text.len(), on_text);
    }

    fn show(
        &mut self,
        upto: usize,
        on_text: &mut impl FnMut(&str) -> ControlFlow<()>,
    ) -> Option<StopReason> {
        if upto <= self.shown {
            return None;
        }
        let piece = &self.text[self.shown..upto];
        self.shown = upto;
        match on_text(piece) {
            ControlFlow::Continue(()) => None,
            ControlFlow::Break(()) => Some(StopReason::Cancelled),
        }
    }

    fn longest_stop(&self) -> usize {
        self.stops.iter().map(String::len).max().unwrap_or(0)
    }

    /// Length of the longest end of `text` that begins some stop string.
    fn partial_stop_len(&self) -> usize {
        let text = self.text.as_bytes();
        self.stops
            .iter()
            .flat_map(|s| {
                (1..s.len().min(text.len() + 1))
                    .rev()
                    .find(|&n| text.ends_with(&s.as_bytes()[..n]))
            })
            .max()
            .map_or(0, |n| {
                // Keep the held part on a character boundary.
                let cut = floor_char_boundary(&self.text, self.text.len() - n);
                self.text.len() - cut
            })
    }
}

/// The largest char boundary of `s` at or before `i`.
fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn time_limits_are_positive_finite_and_at_most_a_day() {
        assert_eq!(Limits::time_limit(2.5), Ok(Duration::from_millis(2500)));
        assert_eq!(
            Limits::time_limit(MAX_REPLY_SECONDS),
            Ok(Duration::from_secs(86_400))
        );
        for bad in [
            0.0,
            -1.0,
            -0.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e30,
        ] {
            let err = Limits::time_limit(bad).unwrap_err().to_string();
            assert!(err.contains("must be a number of seconds"), "{bad}: {err}");
        }
        assert_eq!(Limits::parse_seconds(" 1.5 "), Ok(1.5));
        assert!(Limits::parse_seconds("-1").unwrap_err().contains("-1"));
        assert!(Limits::parse_seconds("soon").unwrap_err().contains("soon"));
    }

    fn stream(stops: &[&str], pieces: &[&str]) -> (Vec<String>, String, Option<StopReason>) {
        let stops: Vec<String> = stops.iter().map(|s| s.to_string()).collect();
        let mut out = StopStrings::new(&stops);
        let mut shown = Vec::new();
        let mut on = |t: &str| {
            shown.push(t.to_string());
            ControlFlow::Continue(())
        };
        let mut stop = None;
        for p in pieces {
            stop = out.push(p, &mut on);
            if stop.is_some() {
                break;
            }
        }
        if stop.is_none() {
            out.flush(&mut on);
        }
        (shown, out.text, stop)
    }

    #[test]
    fn stop_strings_end_the_text_and_are_never_shown() {
        let (shown, text, stop) =
            stream(&["<|im_end|>"], &["Hello", " world", "<|im", "_end|>", "x"]);
        assert_eq!(text, "Hello world");
        assert_eq!(shown.concat(), "Hello world");
        assert_eq!(stop, Some(StopReason::StopString));
    }

    #[test]
    fn a_held_prefix_that_is_not_a_stop_is_shown_later() {
        let (shown, text, stop) = stream(&["\nUser:"], &["a\nU", "se", "ful"]);
        assert_eq!(text, "a\nUseful");
        assert_eq!(shown, ["a", "\nUseful"]);
        assert_eq!(stop, None);
    }

    #[test]
    fn a_stop_string_inside_one_piece_cuts_it() {
        let (shown, text, _) = stream(&["STOP"], &["abcSTOPdef"]);
        assert_eq!(
            (shown.concat(), text),
            ("abc".to_string(), "abc".to_string())
        );
    }

    #[test]
    fn text_is_cut_on_character_boundaries() {
        let (shown, text, stop) = stream(&["é!"], &["caf", "é", "é!"]);
        assert_eq!(text, "café");
        assert_eq!(shown.concat(), "café");
        assert_eq!(stop, Some(StopReason::StopString));
    }
}
