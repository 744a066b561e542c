//! Rejection: is the utterance really the sentence the constrained search chose?
//!
//! Constrained decoding always ends in some sentence of the grammar, whatever was said. The
//! evidence that it is the right one is how hard the grammar had to push the model. At every
//! step of the chosen sentence, the *regret* is the log-probability of the token the model
//! liked best minus that of the token the grammar let it take (nats). It is zero when the
//! model would have written the token by itself, whatever spelling the grammar accepts
//! ("Turn on the lights!" and "turn on the lights" are both fine). It is measured along the
//! sentence rather than against a separate free decode, so a free decode stuck in a
//! repetition loop cannot distort it, and it costs nothing extra. Three sums of it decide:
//!
//! - the *word gap*: the regret of each word (its tokens and the punctuation after it). One
//!   word the model clearly heard as something else ("garden" forced to "garage") costs
//!   more than an unclear word in noise;
//! - the *end gap*: the regret of end-of-text. A sentence that stops where the model hears
//!   more words is a prefix of something else ("turn up" of "turn up the heating");
//! - the *gap*: the whole sentence's regret, for several unclear words together.
//!
//! The no-speech probability and the sentence's mean log-probability per token catch audio
//! with no speech in it, where every token is a guess and the model's favourite is barely
//! better than the grammar's.

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
    /// One word was heard as something else.
    WordNotInGrammar,
    /// The sentence ends where the model hears more words.
    MoreSpeech,
    /// Even the best sentence is improbable token by token.
    Unlikely,
    /// A command heard clearly, but a wake phrase is set and neither this utterance nor
    /// the one before said it, and no conversation was going on (decided by the daemon).
    NoWake,
}

/// Where the decision thresholds live; the defaults are explained field by field. They
/// were chosen on the command benchmark (scripts/bench/bench_commands.py) as round values that
/// keep false accepts under 2 % for both tiny.en and base with the most acceptance, one
/// set for both: a threshold per model would be tuning to the benchmark.
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds {
    /// Largest gap (nats) of the whole sentence that still accepts. 10 nats: a few unclear
    /// words in noise; a sentence the grammar forced throughout costs far more.
    pub max_gap: f32,
    /// Largest gap of any one word. 6 nats: the grammar's word may be up to e^6 ≈ 400
    /// times less likely than the model's own choice, what a short word in loud noise
    /// costs; a word the model clearly heard as another costs more.
    pub max_word_gap: f32,
    /// Largest gap of end-of-text. 3 nats: where a command truly ends, the model puts
    /// end-of-text (or a full stop) first; after a prefix of a longer sentence it expects
    /// the next word, twenty and more times as likely.
    pub max_end_gap: f32,
    /// Utterances with a no-speech probability above this are refused. Whisper skips
    /// windows above 0.6, but a one-word command in noise reaches 0.8; noise alone sits
    /// at 0.9 and above.
    pub max_no_speech: f32,
    /// Smallest mean log-probability per token of the constrained sentence (end-of-text
    /// included). Short commands in noise come near -3 (their end and capitalisation are
    /// uncertain); forced guesses on noise or other speech average -4 and below.
    pub min_avg_logprob: f32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            max_gap: 10.0,
            max_word_gap: 6.0,
            max_end_gap: 3.0,
            max_no_speech: 0.9,
            min_avg_logprob: -3.0,
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
    /// The largest regret of one word.
    pub max_word_gap: f32,
    /// The regret of end-of-text.
    pub end_gap: f32,
    pub no_speech_prob: f32,
}

impl Evidence {
    pub fn avg_logprob(&self) -> f32 {
        self.sentence_logprob / self.sentence_tokens.max(1) as f32
    }
}

/// The regret of each word of a sentence given as (token text, regret) pairs without
/// end-of-text: a word starts at a token with a leading space and a letter or digit (or at
/// the first token); other tokens (the rest of a word, punctuation) add to the word before.
pub fn word_gaps<'a>(tokens: impl IntoIterator<Item = (&'a str, f32)>) -> Vec<f32> {
    let mut words: Vec<f32> = Vec::new();
    for (text, regret) in tokens {
        let starts_word = text.starts_with(' ') && text.chars().any(char::is_alphanumeric);
        match words.last_mut() {
            Some(word) if !starts_word => *word += regret,
            _ => words.push(regret),
        }
    }
    words
}

/// Accepts (None) or gives the reason for refusing.
pub fn judge(evidence: &Evidence, thresholds: &Thresholds) -> Option<Rejection> {
    if evidence.no_speech_prob > thresholds.max_no_speech {
        return Some(Rejection::NoSpeech);
    }
    if evidence.end_gap > thresholds.max_end_gap {
        return Some(Rejection::MoreSpeech);
    }
    if evidence.max_word_gap > thresholds.max_word_gap {
        return Some(Rejection::WordNotInGrammar);
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
            max_word_gap: 0.5,
            end_gap: 0.0,
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
            gap: 13.0,
            ..evidence()
        };
        assert_eq!(judge(&far, &t), Some(Rejection::NotInGrammar));
        let quiet = Evidence {
            no_speech_prob: 0.95,
            ..evidence()
        };
        assert_eq!(judge(&quiet, &t), Some(Rejection::NoSpeech));
        let unlikely = Evidence {
            sentence_logprob: -25.0,
            ..evidence()
        };
        assert_eq!(judge(&unlikely, &t), Some(Rejection::Unlikely));
        let word = Evidence {
            max_word_gap: 7.0,
            gap: 7.0,
            ..evidence()
        };
        assert_eq!(judge(&word, &t), Some(Rejection::WordNotInGrammar));
        let cut = Evidence {
            end_gap: 4.0,
            gap: 4.0,
            ..evidence()
        };
        assert_eq!(judge(&cut, &t), Some(Rejection::MoreSpeech));
    }

    #[test]
    fn words_gather_their_pieces_and_punctuation() {
        let tokens = [
            (" Turn", 0.5),
            (" L", 1.0),
            ("igh", 2.0),
            ("ts", 0.5),
            (",", 0.25),
            (" on", 0.0),
            (".", 1.0),
        ];
        assert_eq!(word_gaps(tokens), vec![0.5, 3.75, 1.0]);
        assert_eq!(word_gaps([("Pause", 2.0), ("!", 1.0)]), vec![3.0]);
        assert!(word_gaps([]).is_empty());
    }
}
