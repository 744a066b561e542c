//! `[llm]` of `config.toml`: the reply model's settings, their defaults and their checks.
//! The daemon reads them from the config file; `voxd ask` and `voxd chat` start from them
//! and let flags override single keys, then check the result the same way.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::assistant::AssistantConfig;
use super::generate::Limits;
use super::sampling::SamplingConfig;
use crate::util::paths::{self, NoLlmModel};
use crate::util::rng::clock_seed;

/// `[llm]`: the local language model that answers spoken questions. Off unless `enabled`.
///
/// A reply is asked for by one intent of the grammar (`intent`, `Ask` in
/// `grammars/ask.toml`): when it is recognised, the text of its `question` slot (a wildcard)
/// is the question. The intent's own action and notification run as for any intent; the
/// reply comes as a `reply` event, a desktop notification (with `[actions] notifications`)
/// and, with `speak`, spoken. With `answer_unmatched`, speech refused as a command is
/// transcribed freely and answered too; it is off by default because much of what a
/// microphone hears is chatter, and a spoken reply heard by the microphone would be answered
/// in turn.
///
/// The sampling keys mean what llama.cpp's options of the same name mean.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LlmConfig {
    /// Replies on or off.
    pub enabled: bool,
    /// The GGUF file (llama architecture); relative paths are taken from the config file's
    /// folder. None: `smollm2/model.gguf` in the checkout's or the user's models folder
    /// ([`crate::util::paths::default_llm_model`]).
    pub model: Option<PathBuf>,
    /// The system message of every conversation; empty: the model's own default (the one
    /// its chat template writes when there is none).
    pub system_prompt: String,
    /// The longest reply, in tokens.
    pub max_tokens: usize,
    /// The longest time one reply may take, prompt included; then it stops where it is.
    pub max_seconds: f64,
    /// Sampling temperature; 0 always takes the likeliest token.
    pub temperature: f32,
    /// Only the `top_k` likeliest tokens are drawn from; 0 = all.
    pub top_k: usize,
    /// Only the likeliest tokens whose probabilities add up to `top_p` are drawn from; 1 =
    /// all.
    pub top_p: f32,
    /// Tokens less likely than `min_p` times the likeliest one are never drawn; 0 = none
    /// excluded.
    pub min_p: f32,
    /// Logits of tokens already in the conversation are divided by this (a negative one
    /// multiplied); 1 = off.
    pub repeat_penalty: f32,
    /// Seed of the sampler's random numbers; None: a new one each start.
    pub seed: Option<u64>,
    /// Tokens of context: the system prompt, the remembered turns, the question and the
    /// reply must fit. Older turns are forgotten first.
    pub context: usize,
    /// Question-and-reply pairs remembered as the conversation; 0 answers every question
    /// alone.
    pub memory_turns: usize,
    /// When the model is read: at start (before `ready`, and a broken file stops the start)
    /// or at the first question (the start stays quick; the first reply waits for it).
    pub load: LlmLoad,
    /// A program that speaks each reply: argv, never a shell; the reply's text is written to
    /// its stdin, never to its command line. It is started as an action's `run` is: a name is
    /// looked up on PATH, a path with a slash is taken from `[actions] working_dir`.
    pub speak: Option<Vec<String>>,
    /// How long one reply may take to speak; then the program's process group is killed.
    pub speak_timeout_ms: u64,
    /// Compute threads; None: `[model] threads` (0 there is one per core).
    pub threads: Option<usize>,
    /// The intent that asks: its `question` slot is the question.
    pub intent: String,
    /// Also answer speech that is no command (transcribed without the grammar).
    pub answer_unmatched: bool,
}

impl Default for LlmConfig {
    fn default() -> Self {
        LlmConfig {
            enabled: false,
            model: None,
            system_prompt: String::new(),
            max_tokens: 128,
            max_seconds: 20.0,
            temperature: 0.7,
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            repeat_penalty: 1.1,
            seed: None,
            context: 2048,
            memory_turns: 4,
            load: LlmLoad::Lazy,
            speak: None,
            speak_timeout_ms: 60_000,
            threads: None,
            intent: "Ask".to_string(),
            answer_unmatched: false,
        }
    }
}

/// When the reply model is read (`[llm] load`).
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LlmLoad {
    /// Before the daemon is ready.
    Start,
    /// At the first question.
    #[default]
    Lazy,
}

/// The longest reply `[llm] max_tokens` may ask for: far beyond a spoken answer already.
pub const MAX_REPLY_TOKENS: usize = 4096;
/// The largest `[llm] context`: its key/value cache grows with it, and small reply models
/// are trained on far less.
pub const MAX_LLM_CONTEXT: usize = 131_072;
/// The most turns `[llm] memory_turns` may keep.
pub const MAX_MEMORY_TURNS: usize = 64;

impl LlmConfig {
    /// On failure, the key to point at and what is wrong with it.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(1..=MAX_REPLY_TOKENS).contains(&self.max_tokens) {
            let problem = format!(
                "max_tokens = {}: must be 1 to {MAX_REPLY_TOKENS}",
                self.max_tokens
            );
            return Err(("max_tokens", problem));
        }
        if self.context <= self.max_tokens || self.context > MAX_LLM_CONTEXT {
            let problem = format!(
                "context = {}: must be more than max_tokens ({}) and at most {MAX_LLM_CONTEXT}",
                self.context, self.max_tokens
            );
            return Err(("context", problem));
        }
        if self.memory_turns > MAX_MEMORY_TURNS {
            let problem = format!(
                "memory_turns = {}: must be 0 to {MAX_MEMORY_TURNS}",
                self.memory_turns
            );
            return Err(("memory_turns", problem));
        }
        // TOML allows nan and inf: NaN fails every comparison, is_finite catches the rest.
        let check = |key, value: f64, valid: bool, expected| {
            if valid && value.is_finite() {
                Ok(())
            } else {
                Err((key, format!("{key} = {value}: must be {expected}")))
            }
        };
        if let Err(invalid) = Limits::time_limit(self.max_seconds) {
            return Err(("max_seconds", format!("max_seconds = {invalid}")));
        }
        let (t, p, m, r) = (
            self.temperature,
            self.top_p,
            self.min_p,
            self.repeat_penalty,
        );
        check("temperature", t.into(), (0.0..=2.0).contains(&t), "0 to 2")?;
        check(
            "top_p",
            p.into(),
            p > 0.0 && p <= 1.0,
            "above 0 and at most 1",
        )?;
        check(
            "min_p",
            m.into(),
            (0.0..1.0).contains(&m),
            "0 or more, below 1",
        )?;
        check(
            "repeat_penalty",
            r.into(),
            (1.0..=2.0).contains(&r),
            "1 (off) to 2",
        )?;
        match self.speak.as_deref() {
            Some([]) => return Err(("speak", "speak = []: must name a program".into())),
            Some([program, ..]) if program.is_empty() => {
                return Err((
                    "speak",
                    "speak: the program (the first element) must not be empty".into(),
                ))
            }
            _ => {}
        }
        if self.speak_timeout_ms == 0 {
            return Err((
                "speak_timeout_ms",
                "speak_timeout_ms must be at least 1".into(),
            ));
        }
        if self.intent.trim().is_empty() {
            return Err(("intent", "intent must name an intent of the grammar".into()));
        }
        Ok(())
    }
}

impl LlmConfig {
    /// The GGUF file: `model`, else the default model's place.
    pub fn model_path(&self) -> Result<PathBuf, NoLlmModel> {
        match &self.model {
            Some(path) => Ok(path.clone()),
            None => paths::default_llm_model(),
        }
    }

    /// How the assistant answers with these settings.
    pub fn assistant_config(&self) -> AssistantConfig {
        AssistantConfig {
            system_prompt: Some(self.system_prompt.clone()).filter(|s| !s.is_empty()),
            memory_turns: self.memory_turns,
            max_tokens: self.max_tokens,
            max_time: Some(Duration::from_secs_f64(self.max_seconds)),
            sampling: SamplingConfig {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
                min_p: self.min_p,
                repeat_penalty: self.repeat_penalty,
                seed: self.seed.unwrap_or_else(clock_seed),
                ..SamplingConfig::default()
            },
        }
    }
}
