//! `[transcribe]` of the config file: how `voxd transcribe` decodes, with the reference
//! implementation's defaults. Each flag of `voxd transcribe` overrides one key.

use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use super::transcribe::{AudioCtx, TranscribeOptions};

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TranscribeConfig {
    /// Spoken language as a code; None detects it (multilingual models).
    pub language: Option<String>,
    /// Beam width; 1 decodes greedily.
    pub beam: usize,
    /// `full`, `fit` or a number of positions.
    #[serde(deserialize_with = "audio_ctx")]
    pub audio_ctx: AudioCtx,
    /// Fall back to sampling at higher temperatures when a result looks wrong.
    pub fallback: bool,
    /// Decode with timestamp tokens (segments within a window).
    pub timestamps: bool,
    /// Text that precedes the audio (names, spelling, style).
    pub prompt: Option<String>,
}

impl Default for TranscribeConfig {
    fn default() -> Self {
        let reference = TranscribeOptions::default();
        TranscribeConfig {
            language: reference.language,
            beam: reference.beam_size,
            audio_ctx: reference.audio_ctx,
            fallback: reference.temperatures.len() > 1,
            timestamps: reference.timestamps,
            prompt: reference.initial_prompt,
        }
    }
}

impl TranscribeConfig {
    /// The decoding options these settings stand for; the other options keep the
    /// reference's defaults.
    pub fn options(&self) -> TranscribeOptions {
        let reference = TranscribeOptions::default();
        TranscribeOptions {
            language: self.language.clone(),
            beam_size: self.beam,
            temperatures: if self.fallback {
                reference.temperatures
            } else {
                vec![0.0]
            },
            initial_prompt: self.prompt.clone(),
            timestamps: self.timestamps,
            audio_ctx: self.audio_ctx,
            ..TranscribeOptions::default()
        }
    }

    /// On failure, the key to point at and what is wrong with it.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.beam == 0 {
            return Err(("beam", "beam must be at least 1".into()));
        }
        Ok(())
    }
}

impl FromStr for AudioCtx {
    type Err = String;

    /// `full`, `fit` (or `auto`) or a number of positions.
    fn from_str(text: &str) -> Result<AudioCtx, String> {
        match text {
            "full" => Ok(AudioCtx::Full),
            "fit" | "auto" => Ok(AudioCtx::Fit),
            n => n
                .parse::<usize>()
                .map(AudioCtx::Fixed)
                .map_err(|_| format!("expected `full`, `fit` or a number of positions, got `{n}`")),
        }
    }
}

fn audio_ctx<'de, D: Deserializer<'de>>(deserializer: D) -> Result<AudioCtx, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audio_contexts_are_read_by_name_or_number() {
        assert_eq!("full".parse(), Ok(AudioCtx::Full));
        assert_eq!("fit".parse(), Ok(AudioCtx::Fit));
        assert_eq!("512".parse(), Ok(AudioCtx::Fixed(512)));
        assert!("half".parse::<AudioCtx>().unwrap_err().contains("`half`"));
    }
}
