//! `[commands]` of the config file: its values, their defaults (the recogniser's own) and
//! their checks.

use std::path::PathBuf;

use super::RecognizerOptions;

/// The widest command beam: every beam is one more decoder sequence per step, and past a
/// few the grammar already keeps the candidates apart.
const MAX_COMMAND_BEAM: usize = 32;

/// `[commands]` of the config file: the grammars, and how sure recognition must be before
/// it acts (see `reject`).
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommandsConfig {
    /// Grammar files, merged in this order; relative paths in a config file are taken from
    /// its folder.
    pub grammars: Vec<PathBuf>,
    /// Beam width of the constrained search.
    pub beam: usize,
    /// Largest share of the sentence's letters that may differ from the free transcript.
    pub max_mismatch: f32,
    /// Largest log-likelihood ratio (nats) of free transcript over sentence at which a
    /// sentence the letters refuse is still taken.
    pub max_ratio: f32,
    /// Smallest mean log-probability per token that still accepts.
    pub min_score: f32,
    /// Largest no-speech probability that still accepts.
    pub max_no_speech: f32,
    /// A phrase ("hey computer") that must come before a command, in the same utterance or
    /// alone in the one before; None takes every utterance as a possible command.
    pub wake: Option<String>,
    /// After an accepted command, further commands that start within this many
    /// milliseconds of its end need no wake phrase (a conversation); 0 for none.
    pub follow_up_ms: u64,
    /// A program to run when the wake phrase is heard (a sound, say), as an intent's `run`:
    /// argv, never a shell; empty for none.
    pub wake_run: Vec<String>,
    /// A notification to show when the wake phrase is heard.
    pub wake_notify: Option<String>,
    /// Act on a command after this much silence, instead of waiting for the end of the
    /// utterance (`[segment] end_silence_ms`), when it is complete: the grammar has no
    /// longer sentence that begins with it and the model expects no more words. 0 always
    /// waits for the end. Below `end_silence_ms`.
    pub early_close_ms: u32,
}

/// The longest conversation window: a window of minutes is no wake phrase at all.
const MAX_FOLLOW_UP_MS: u64 = 60_000;

impl Default for CommandsConfig {
    /// The recogniser's own defaults.
    fn default() -> Self {
        let options = RecognizerOptions::default();
        CommandsConfig {
            grammars: Vec::new(),
            beam: options.beam_size,
            max_mismatch: options.thresholds.max_mismatch,
            max_ratio: options.thresholds.max_ratio,
            min_score: options.thresholds.min_avg_logprob,
            max_no_speech: options.thresholds.max_no_speech,
            wake: None,
            follow_up_ms: 5000,
            wake_run: Vec::new(),
            wake_notify: None,
            early_close_ms: 150,
        }
    }
}

impl CommandsConfig {
    /// The recogniser's options for these settings.
    pub fn recognizer_options(&self) -> RecognizerOptions {
        let mut options = RecognizerOptions {
            beam_size: self.beam,
            ..Default::default()
        };
        let thresholds = &mut options.thresholds;
        thresholds.max_mismatch = self.max_mismatch;
        thresholds.max_ratio = self.max_ratio;
        thresholds.min_avg_logprob = self.min_score;
        thresholds.max_no_speech = self.max_no_speech;
        options
    }

    /// On failure, the key to point at and what is wrong with it.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(1..=MAX_COMMAND_BEAM).contains(&self.beam) {
            let problem = format!("beam = {}: must be 1 to {MAX_COMMAND_BEAM}", self.beam);
            return Err(("beam", problem));
        }
        // TOML allows nan and inf: NaN fails every comparison, is_finite catches the rest.
        let check = |key, value: f32, valid: bool, expected| {
            if valid && value.is_finite() {
                Ok(())
            } else {
                Err((key, format!("{key} = {value}: must be {expected}")))
            }
        };
        check(
            "max_mismatch",
            self.max_mismatch,
            self.max_mismatch > 0.0 && self.max_mismatch <= 1.0,
            "a share of letters above 0 and at most 1",
        )?;
        check(
            "max_ratio",
            self.max_ratio,
            self.max_ratio >= 0.0,
            "nats, at least 0",
        )?;
        check(
            "min_score",
            self.min_score,
            self.min_score < 0.0,
            "a mean log-probability below 0",
        )?;
        check(
            "max_no_speech",
            self.max_no_speech,
            self.max_no_speech > 0.0 && self.max_no_speech <= 1.0,
            "a probability above 0 and at most 1",
        )?;
        if let Some(wake) = &self.wake {
            if !wake.chars().any(char::is_alphanumeric) {
                return Err((
                    "wake",
                    format!("wake = {wake:?}: must be a phrase with a word"),
                ));
            }
        }
        if self.follow_up_ms > MAX_FOLLOW_UP_MS {
            let problem = format!(
                "follow_up_ms = {}: must be at most {MAX_FOLLOW_UP_MS}",
                self.follow_up_ms
            );
            return Err(("follow_up_ms", problem));
        }
        let wake_action = !self.wake_run.is_empty() || self.wake_notify.is_some();
        if wake_action && self.wake.is_none() {
            let key = if self.wake_run.is_empty() {
                "wake_notify"
            } else {
                "wake_run"
            };
            return Err((key, format!("{key} needs a wake phrase: set `wake` too")));
        }
        Ok(())
    }
}
