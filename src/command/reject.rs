//! Rejection: is the utterance really the sentence the constrained search chose?
//!
//! Constrained decoding always ends in some sentence of the grammar, whatever was said. It
//! is taken when a listener would hear the same words in what the model writes *without*
//! the grammar: the free transcript (greedy, from the same audio; up to the sentence's first
//! regret it is the sentence itself, so only the rest is decoded). The two are compared
//! word by word as a listener would ([`word_mismatch`]): case, punctuation, hyphens, numbers
//! in digits or words, and words written apart or joined do not count, a letter more or
//! less counts as that letter. Two shares of differing letters decide: a word with half of
//! its letters different or more is heard as another word ([`WORD_HEARD_AS_ANOTHER`]:
//! `word_not_in_grammar`; most of the words: `not_in_grammar`; only words the model heard
//! after the sentence's end: `more_speech`), and the whole sentence may differ in at most
//! [`Thresholds::max_mismatch`] of its letters (`not_in_grammar`). Both are shares, so a
//! long command is judged as a short one is, and a word heard with an "-s" or "-ed" more or
//! less passes, whatever the model's confidence was.
//!
//! One greedy transcript is one guess: in noise it writes "wedding" where the grammar's
//! "weather" was a close second. So a word heard as another still passes when the grammar
//! pushed the model little ([`LITTLE_PUSH`], in nats of *regret*: the log-probability of
//! the model's favourite token minus that of the token taken): the model's own
//! alternative. The sentence's share of differing letters still applies, so a one-word
//! "next" for a free "just" is refused however close its regret.
//!
//! What the letters decide ([`by_letters`]) is in turn overruled by the model's own
//! probabilities: a sentence the model finds at most [`Thresholds::max_ratio`] nats less
//! likely than its free transcript ([`Evidence::ratio`]) is taken whatever their letters.
//!
//! The no-speech probability and the sentence's mean log-probability per token catch audio
//! with no speech in it, where the free transcript may be as much a guess as the sentence.

use serde::Serialize;

use crate::grammar::normalize::normalize;
use crate::grammar::numbers;

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
    /// Most words of the sentence are not what the model heard.
    NotInGrammar,
    /// A word was heard as something else.
    WordNotInGrammar,
    /// The model hears more words after the sentence's end.
    MoreSpeech,
    /// Even the best sentence is improbable token by token.
    Unlikely,
    /// A command heard clearly, but a wake phrase is set and neither this utterance nor
    /// the one before said it, and no conversation was going on (decided by the daemon).
    NoWake,
}

/// Where the decision thresholds live; the defaults are explained field by field. One set
/// serves every model: `max_mismatch` was chosen on the measured curves of tiny.en and base
/// on real and synthetic commands and non-commands together (README, *Command accuracy*).
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds {
    /// Largest share of the sentence's letters that may differ from the free transcript
    /// (the chosen value and its reason: README, *Command accuracy*).
    pub max_mismatch: f32,
    /// A sentence whose words differ from the free transcript is still taken when the
    /// model finds it at most this many nats less likely than that transcript
    /// ([`Evidence::ratio`]; the chosen value and its reason: README, *Command accuracy*).
    pub max_ratio: f32,
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
            max_mismatch: 0.45,
            max_ratio: 4.5,
            max_no_speech: 0.9,
            min_avg_logprob: -3.0,
        }
    }
}

/// The grammar's push the model would still have taken ([`Push`]): no word over 6 nats of
/// regret (its word e^6 ≈ 400 times less likely than the model's favourite: a short word
/// in loud noise), the end-of-text not over 3 (where a command ends the model puts the end
/// first), the whole sentence not over 10.
pub const LITTLE_PUSH: Push = Push {
    word: 6.0,
    end: 3.0,
    sentence: 10.0,
};

/// Regret (nats) of a sentence's worst word, of its end-of-text, and of all of it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Push {
    pub word: f32,
    pub end: f32,
    pub sentence: f32,
}

impl Push {
    fn within(&self, limit: &Push) -> bool {
        self.word <= limit.word && self.end <= limit.end && self.sentence <= limit.sentence
    }
}

/// What the decodes measured of one utterance.
#[derive(Clone, Debug)]
pub struct Evidence {
    /// How hard the grammar pushed the model.
    pub push: Push,
    /// Log-probability of the chosen sentence (its tokens and end-of-text).
    pub sentence_logprob: f32,
    /// Its tokens, end-of-text included.
    pub sentence_tokens: usize,
    /// Its words against the free transcript.
    pub mismatch: Mismatch,
    /// Log-probability of the sentence's tokens and of stopping after them.
    pub stopped_logprob: f32,
    /// Log-probability of the free transcript, its end included (same audio, same prompt).
    pub free_logprob: f32,
    pub no_speech_prob: f32,
}

impl Evidence {
    pub fn avg_logprob(&self) -> f32 {
        self.sentence_logprob / self.sentence_tokens.max(1) as f32
    }

    /// How much less likely the model finds the sentence than its own free transcript: the
    /// log of their likelihood ratio, in nats. Near 0 when the sentence was a close second
    /// to the model's own guess, whatever their letters; below 0 when greedy decoding missed
    /// a likelier text. Not divided by the words: per word, one word in eleven that the
    /// model did not hear ("question of the more formal ecclesiastical writing ..." for a
    /// wildcard) costs a tenth of what it costs a short command (measured: README, *Command
    /// accuracy*).
    ///
    /// None where the two likelihoods are no evidence about the sentence's words: when the
    /// model rather hears no speech ([`RATIO_NO_SPEECH`]; over noise the free transcript is
    /// an invention, "I'm going to go to the end of the video.", whose many unlikely tokens
    /// make any short sentence look likely), or when it hears words after the sentence's
    /// end ([`Mismatch::hears_more`]: speech the grammar does not cover, whatever the
    /// sentence's own words scored).
    pub fn ratio(&self) -> Option<f32> {
        if self.no_speech_prob > RATIO_NO_SPEECH || self.mismatch.hears_more() {
            return None;
        }
        Some(self.free_logprob - self.stopped_logprob)
    }
}

/// Above this no-speech probability (the model finding no speech likelier than speech) the
/// likelihood ratio is not used ([`Evidence::ratio`]). A definition, not a fit.
pub const RATIO_NO_SPEECH: f32 = 0.5;

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

/// How far each word of the constrained sentence is from what the model wrote freely, as a
/// listener would compare them: from 0 (the same word) to 1 (nothing like it), the share of
/// its letters that differ.
///
/// Both texts are read as the grammar reads text (case, punctuation and apostrophes do not
/// matter; "dark-blue" is "dark blue") with numbers in words ("5-minute" is "five minute"),
/// and compared letter by letter without the spaces, so a word written apart or joined
/// ("eco bee", "ecobee") costs nothing and one written with a letter more or less ("light",
/// "lights") costs that letter. Each difference of the cheapest alignment is charged to the
/// constrained word it falls in; letters the free text has between two words are charged to
/// the word before (to the first word at the start), so words the model heard beyond the
/// sentence ("... lights please") count against its last word.
pub fn word_mismatch(constrained: &str, free: &str) -> Mismatch {
    let words = spoken_words(constrained);
    let (mut chars, mut owner) = (Vec::new(), Vec::new());
    for (w, word) in words.iter().enumerate() {
        chars.extend(word.chars());
        owner.extend(std::iter::repeat_n(w, word.chars().count()));
    }
    let heard: Vec<char> = spoken_words(free).concat().chars().collect();
    let (n, m) = (chars.len(), heard.len());
    // cost[i][j]: edits between the first i letters of the sentence and j of the free text.
    let width = m + 1;
    let mut cost = vec![0u32; (n + 1) * width];
    for (j, first_row) in cost.iter_mut().take(width).enumerate() {
        *first_row = j as u32;
    }
    for i in 1..=n {
        cost[i * width] = i as u32;
        for j in 1..=m {
            let substitute =
                cost[(i - 1) * width + j - 1] + u32::from(chars[i - 1] != heard[j - 1]);
            let delete = cost[(i - 1) * width + j] + 1;
            let insert = cost[i * width + j - 1] + 1;
            cost[i * width + j] = substitute.min(delete).min(insert);
        }
    }
    let mut edits = vec![0u32; words.len()];
    let mut trailing = 0u32;
    let (mut i, mut j) = (n, m);
    while i > 0 || j > 0 {
        let here = cost[i * width + j];
        // Past the sentence's end, letters of the free text are taken as heard after it
        // where an alignment allows: "lights please" is "lights" and more, not "light"
        // stretched to "lightsplea".
        if i == n && i > 0 && j > 0 && cost[i * width + j - 1] + 1 == here {
            edits[owner[i - 1]] += 1;
            trailing += 1;
            j -= 1;
            continue;
        }
        if i > 0 && j > 0 {
            let differs = u32::from(chars[i - 1] != heard[j - 1]);
            if cost[(i - 1) * width + j - 1] + differs == here {
                edits[owner[i - 1]] += differs;
                (i, j) = (i - 1, j - 1);
                continue;
            }
        }
        if i > 0 && cost[(i - 1) * width + j] + 1 == here {
            edits[owner[i - 1]] += 1;
            i -= 1;
        } else if let Some(&w) = owner.get(i.saturating_sub(1)) {
            edits[w] += 1;
            trailing += u32::from(i == n);
            j -= 1;
        } else {
            // No sentence to charge: nothing to judge.
            break;
        }
    }
    let share = |edits: u32, word: &String| (edits as f32 / word.chars().count() as f32).min(1.0);
    let last_without_trailing = words
        .last()
        .map_or(0.0, |word| share(edits[words.len() - 1] - trailing, word));
    let total: u32 = edits.iter().sum();
    Mismatch {
        sentence: if n == 0 {
            0.0
        } else {
            (total as f32 / n as f32).min(1.0)
        },
        words: words.iter().zip(edits).map(|(w, e)| share(e, w)).collect(),
        last_without_trailing,
    }
}

/// How far each word of a sentence is from the free transcript (see [`word_mismatch`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// Of the whole sentence: all differences over all its letters, 0 to 1.
    pub sentence: f32,
    /// Per word of the sentence, 0 to 1.
    pub words: Vec<f32>,
    /// The last word's share without the letters the free text has after the sentence.
    pub last_without_trailing: f32,
}

impl Mismatch {
    /// The free transcript goes on after the sentence's end with letters enough to make
    /// its last word heard as another on their own ("... lights please", not "... lights").
    pub fn hears_more(&self) -> bool {
        self.words
            .last()
            .is_some_and(|&last| last - self.last_without_trailing >= WORD_HEARD_AS_ANOTHER)
    }
}

/// The words of `text` as the grammar reads them, numbers in words.
fn spoken_words(text: &str) -> Vec<String> {
    normalize(text)
        .split(' ')
        .filter(|w| !w.is_empty())
        .flat_map(|word| match word.parse::<i64>() {
            Ok(n) if word.bytes().all(|b| b.is_ascii_digit()) => numbers::to_words(n)
                .split(' ')
                .map(str::to_string)
                .collect(),
            _ => vec![word.to_string()],
        })
        .collect()
}

/// A word with this share of its letters different or more is heard as another word:
/// "garden" for "garage", "on" for "in", "off" for "on".
pub const WORD_HEARD_AS_ANOTHER: f32 = 0.5;

/// Accepts (None) or gives the reason for refusing.
pub fn judge(evidence: &Evidence, thresholds: &Thresholds) -> Option<Rejection> {
    if evidence.no_speech_prob > thresholds.max_no_speech {
        return Some(Rejection::NoSpeech);
    }
    if let Some(reason) = heard_otherwise(evidence, thresholds) {
        return Some(reason);
    }
    if evidence.avg_logprob() < thresholds.min_avg_logprob {
        return Some(Rejection::Unlikely);
    }
    None
}

/// Whether the model heard other words than the sentence's, and why: the letters refuse it
/// and its likelihood does not overrule them. Letters that differ are one greedy guess
/// against the sentence; the model's own probabilities overrule them when it found the
/// sentence nearly as likely.
pub fn heard_otherwise(evidence: &Evidence, thresholds: &Thresholds) -> Option<Rejection> {
    by_letters(evidence, thresholds).filter(|_| {
        evidence
            .ratio()
            .is_none_or(|ratio| ratio > thresholds.max_ratio)
    })
}

/// What the letters alone decide: None when a listener hears the sentence's words in the
/// free transcript, else why not.
pub fn by_letters(evidence: &Evidence, thresholds: &Thresholds) -> Option<Rejection> {
    let mismatch = &evidence.mismatch;
    let other = |m: f32| m >= WORD_HEARD_AS_ANOTHER;
    let over = mismatch.words.iter().filter(|&&m| other(m)).count();
    // A word the free transcript has as another word still passes when the model ranked
    // the grammar's word close to its own: one of its own alternatives, in noise. Words
    // heard after the sentence's end are no alternative to its words but speech the
    // grammar does not cover ("turn on the kitchen lights" for a free "... light to
    // sleep"), however little the grammar pushed (as for the ratio, `Evidence::ratio`).
    if over > 0 && (!evidence.push.within(&LITTLE_PUSH) || mismatch.hears_more()) {
        let only_the_end = over == 1
            && mismatch.words.last().is_some_and(|&m| other(m))
            && !other(mismatch.last_without_trailing);
        return Some(if only_the_end {
            Rejection::MoreSpeech
        } else if 2 * over > mismatch.words.len() {
            Rejection::NotInGrammar
        } else {
            Rejection::WordNotInGrammar
        });
    }
    (mismatch.sentence > thresholds.max_mismatch).then_some(Rejection::NotInGrammar)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(sentence: &str, free: &str) -> Evidence {
        Evidence {
            push: Push {
                word: 7.0,
                end: 0.0,
                sentence: 7.0,
            },
            sentence_logprob: -2.0,
            sentence_tokens: 6,
            mismatch: word_mismatch(sentence, free),
            // The free transcript far likelier: the letters decide.
            stopped_logprob: -20.0,
            free_logprob: -2.0,
            no_speech_prob: 0.01,
        }
    }

    #[test]
    fn a_sentence_heard_as_written_is_accepted() {
        let t = Thresholds::default();
        assert_eq!(
            judge(&evidence("Turn on the lights.", "turn on the light"), &t),
            None
        );
        assert_eq!(judge(&evidence("pause", "Pause!"), &t), None);
        let mood = evidence("activate mood lighting", "Activate Woo's lighting.");
        assert_eq!(mood.mismatch.words[1], 0.5);
        assert_eq!(judge(&mood, &t), Some(Rejection::WordNotInGrammar));
        // The same with the model ranking "mood" near its own "Woo's".
        let close = Evidence {
            push: Push {
                word: 3.5,
                end: 0.2,
                sentence: 3.7,
            },
            ..mood
        };
        assert_eq!(judge(&close, &t), None);
        // Nor when the model heard words after the sentence's end.
        let please = Evidence {
            push: close.push,
            ..evidence(
                "turn on the kitchen lights",
                "turn on the kitchen light to sleep",
            )
        };
        assert!(please.mismatch.hears_more());
        assert_eq!(judge(&please, &t), Some(Rejection::MoreSpeech));
        // A close second is not enough when most of the sentence differs.
        let next = Evidence {
            push: close.push,
            ..evidence("next", "Just.")
        };
        assert_eq!(judge(&next, &t), Some(Rejection::NotInGrammar));
        let status = evidence("timer status", "Time for status");
        assert_eq!(judge(&status, &t), None);
    }

    #[test]
    fn a_sentence_nearly_as_likely_as_the_free_transcript_is_accepted() {
        let t = Thresholds::default();
        // "wedding" for "weather", the grammar's push large: the letters refuse.
        let weather = evidence("what's the weather", "What's the wedding?");
        assert_eq!(by_letters(&weather, &t), Some(Rejection::WordNotInGrammar));
        assert_eq!(judge(&weather, &t), Some(Rejection::WordNotInGrammar));
        // The model finds the sentence 1.5 nats less likely than its own.
        let close = Evidence {
            stopped_logprob: -5.0,
            free_logprob: -3.5,
            ..weather
        };
        assert_eq!(close.ratio(), Some(1.5));
        assert_eq!(judge(&close, &t), None);
        // Over the default limit (4.5 nats).
        let far = Evidence {
            stopped_logprob: -9.0,
            ..close.clone()
        };
        assert_eq!(judge(&far, &t), Some(Rejection::WordNotInGrammar));
        // No evidence where the model rather hears no speech, or words after the sentence.
        let noise = Evidence {
            no_speech_prob: 0.6,
            ..close.clone()
        };
        assert_eq!(noise.ratio(), None);
        assert_eq!(judge(&noise, &t), Some(Rejection::WordNotInGrammar));
        let more = Evidence {
            stopped_logprob: -5.0,
            free_logprob: -3.5,
            ..evidence("turn on the lights", "Turn on the lights in the garden.")
        };
        assert_eq!(more.ratio(), None);
        assert_eq!(judge(&more, &t), Some(Rejection::MoreSpeech));
        // The sentence must still be likely enough token by token.
        let unlikely = Evidence {
            sentence_logprob: -25.0,
            ..close
        };
        assert_eq!(judge(&unlikely, &t), Some(Rejection::Unlikely));
    }

    #[test]
    fn each_reason_refuses_on_its_own() {
        let t = Thresholds::default();
        let quiet = Evidence {
            no_speech_prob: 0.95,
            ..evidence("pause", "pause")
        };
        assert_eq!(judge(&quiet, &t), Some(Rejection::NoSpeech));
        let unlikely = Evidence {
            sentence_logprob: -25.0,
            ..evidence("pause", "pause")
        };
        assert_eq!(judge(&unlikely, &t), Some(Rejection::Unlikely));
        let word = evidence("turn on the garage lights", "Turn on the garden lights.");
        assert_eq!(judge(&word, &t), Some(Rejection::WordNotInGrammar));
        let more = evidence("turn on the lights", "Turn on the lights in the garden.");
        assert_eq!(judge(&more, &t), Some(Rejection::MoreSpeech));
        let other = evidence("what time is it", "The printer is out of paper again.");
        assert_eq!(judge(&other, &t), Some(Rejection::NotInGrammar));
        // Every word within the per-word limit, but a third of the sentence different.
        let resume = evidence("resume", "Resumed.");
        assert_eq!(judge(&resume, &t), None);
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

    #[test]
    fn spellings_a_listener_hears_as_the_same_cost_little() {
        let most = |a: &str, b: &str| word_mismatch(a, b).sentence;
        assert_eq!(
            most("Set a 5 minute timer.", "set a five-minute timer"),
            0.0
        );
        assert_eq!(
            most(
                "set the lights to dark blue",
                "Set the lights to dark-blue."
            ),
            0.0
        );
        let eco = "What's the temperature of the Eco Bee?";
        assert_eq!(most("what's the temperature of the ecobee", eco), 0.0);
        let light = word_mismatch("turn on the lights", "Turn on the light.");
        assert_eq!(light.words, vec![0.0, 0.0, 0.0, 1.0 / 6.0]);
        let doors = word_mismatch("lock the front door", "Lock the front doors.");
        assert_eq!(doors.words, vec![0.0, 0.0, 0.0, 0.25]);
        assert_eq!(doors.last_without_trailing, 0.0);
        assert!(!doors.hears_more());
        assert!(word_mismatch("turn on the lights", "Turn on the lights, please.").hears_more());
        assert_eq!(doors.sentence, 1.0 / 16.0);
    }

    #[test]
    fn other_words_missing_words_and_more_words_cost_much() {
        let words = |a: &str, b: &str| word_mismatch(a, b).words;
        assert_eq!(
            words("turn on the garage lights", "Turn on the garden lights.")[3],
            0.5
        );
        assert_eq!(
            words("turn on the kitchen lights", "Turn off the kitchen lights.")[1],
            1.0
        );
        // The cheapest alignment may take a letter of "the" for "pause"'s: the words left
        // out are heard as other words either way, the one said is not.
        let missing = words("pause the music", "Pause.");
        assert!(missing[0] < WORD_HEARD_AS_ANOTHER && missing[1..].iter().all(|&m| m >= 0.5));
        assert_eq!(
            words("turn on the lights", "Turn on the lights, please.")[3],
            1.0
        );
        assert_eq!(words("pause", "Oh, pause.")[0], 0.4);
        assert_eq!(words("pause", ""), vec![1.0]);
        assert!(words("", "anything").is_empty());
    }
}
