//! Rejection: is the utterance really the sentence the constrained search chose?
//!
//! Constrained decoding always ends in some sentence of the grammar, whatever was said. The
//! evidence that it is the right one is how hard the grammar had to push the model:
//!
//! - the *gap* (the search's regret): at every step of the chosen sentence, the
//!   log-probability of the token the model liked best minus that of the token the grammar
//!   let it take, summed in nats. It is zero when the model would have written the sentence
//!   by itself, whatever the spelling the grammar accepts ("Turn on the lights!" and "turn
//!   on the lights" are both fine), and a wrong, missing or extra word costs several nats.
//!   It is measured along the sentence rather than against a separate free decode, so a
//!   free decode stuck in a repetition loop cannot distort it, and it costs nothing extra;
//! - the no-speech probability and the sentence's mean log-probability per token catch
//!   audio with no speech in it, where every token is a guess and the model's favourite
//!   is barely better than the grammar's.

use serde::Serialize;

/// Why an utterance was not taken as a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rejection {
    /// The audio never rises above the silence level.
    Silence,
    /// Longer than one decoding window: not a command.
    TooLong,
    /// Whisper's no-speech probability says there is no speech.
    NoSpeech,
    /// No sentence of the grammar could be completed.
    NoSentence,
    /// The grammar had to overrule the model by more than the allowed gap.
    NotInGrammar,
    /// Even the best sentence is improbable token by token.
    Unlikely,
}

/// Where the decision thresholds live; the defaults are explained field by field.
#[derive(Clone, Debug)]
pub struct Thresholds {
    /// Largest gap (nats) that still accepts. 5 nats: the grammar's sentence may be up to
    /// e^5 ≈ 150 times less likely than the model's own choices, about what one unclear
    /// word in noise costs; one word the model clearly did not hear costs more.
    pub max_gap: f32,
    /// Utterances with a no-speech probability above this are refused. Whisper skips
    /// windows above 0.6, but a one-word command in noise reaches that; noise alone
    /// sits near 0.9.
    pub max_no_speech: f32,
    /// Smallest mean log-probability per token of the constrained sentence (end-of-text
    /// included). Whisper's fallback treats windows below -1 as failed, but a command is a
    /// few tokens whose end and capitalisation are uncertain; forced guesses on noise or
    /// other speech average near -4.
    pub min_avg_logprob: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_gap: 5.0,
            max_no_speech: 0.8,
            min_avg_logprob: -2.0,
        }
    }
}

/// What the decodes measured of one utterance.
#[derive(Clone, Debug)]
pub struct Evidence {
    /// Log-probability of the chosen sentence (its tokens and end-of-text).
    pub sentence_logprob: f32,
    /// Its tokens, end-of-text included.
    pub sentence_tokens: usize,
    /// The search's regret for the sentence (see the module's notes).
    pub gap: f32,
    pub no_speech_prob: f32,
}

impl Evidence {
    pub fn avg_logprob(&self) -> f32 {
        self.sentence_logprob / self.sentence_tokens.max(1) as f32
    }
}

/// Accepts (None) or gives the reason for refusing.
pub fn judge(evidence: &Evidence, thresholds: &Thresholds) -> Option<Rejection> {
    if evidence.no_speech_prob > thresholds.max_no_speech {
        return Some(Rejection::NoSpeech);
    }
    if evidence.gap > thresholds.max_gap {
        return Some(Rejection::NotInGrammar);
    }
    if evidence.avg_logprob() < thresholds.min_avg_logprob {
        return Some(Rejection::Unlikely);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence() -> Evidence {
        Evidence {
            sentence_logprob: -2.0,
            sentence_tokens: 6,
            gap: 0.5,
            no_speech_prob: 0.01,
        }
    }

    #[test]
    fn a_close_decode_is_accepted() {
        assert_eq!(judge(&evidence(), &Thresholds::default()), None);
    }

    #[test]
    fn each_threshold_refuses_on_its_own() {
        let t = Thresholds::default();
        let far = Evidence {
            gap: 9.0,
            ..evidence()
        };
        assert_eq!(judge(&far, &t), Some(Rejection::NotInGrammar));
        let quiet = Evidence {
            no_speech_prob: 0.95,
            ..evidence()
        };
        assert_eq!(judge(&quiet, &t), Some(Rejection::NoSpeech));
        let unlikely = Evidence {
            sentence_logprob: -15.0,
            ..evidence()
        };
        assert_eq!(judge(&unlikely, &t), Some(Rejection::Unlikely));
    }
}
