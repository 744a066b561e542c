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
    /// Largest gap (nats the grammar overruled the model by) that still accepts.
    pub max_gap: f32,
    /// Smallest mean log-probability per token that still accepts.
    pub min_score: f32,
    /// Largest no-speech probability that still accepts.
    pub max_no_speech: f32,
}

impl Default for CommandsConfig {
    /// The recogniser's own defaults.
    fn default() -> Self {
        let options = RecognizerOptions::default();
        CommandsConfig {
            grammars: Vec::new(),
            beam: options.beam_size,
            max_gap: options.thresholds.max_gap,
            min_score: options.thresholds.min_avg_logprob,
            max_no_speech: options.thresholds.max_no_speech,
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
        thresholds.max_gap = self.max_gap;
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
            "max_gap",
            self.max_gap,
            self.max_gap > 0.0,
            "a number of nats above 0",
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
        )
    }
}
