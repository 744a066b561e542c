//! The commit policy: which words of a streaming transcription are final.
//!
//! The streaming transcriber re-transcribes a growing audio buffer every step, and Whisper
//! revises its guess at the end of the buffer as more audio arrives. Showing every guess as
//! final would make captions flicker and repeat, so a word is committed only once two
//! successive hypotheses agree on it (LocalAgreement-2, as in whisper_streaming). Committed
//! words never change and never repeat; the rest of the newest hypothesis is shown as a
//! partial that may still change.

use std::collections::VecDeque;

/// Seconds a re-transcribed word may end before the last committed word and still be new:
/// word timings shift a little between hypotheses of the same audio.
const TIME_TOLERANCE: f32 = 0.1;

/// Longest run of words looked for where a new hypothesis overlaps the committed text.
const MAX_OVERLAP_WORDS: usize = 5;

/// A hypothesis that starts this long after the last committed word follows a pause, so its
/// first words are speech of their own, not the committed tail heard again.
const JOIN_WINDOW: f32 = 1.0;

/// One transcribed word with its time in the stream, in seconds from the stream's start.
#[derive(Clone, Debug, PartialEq)]
pub struct Word {
    pub text: String,
    pub start: f32,
    pub end: f32,
}

/// What one hypothesis changed: words that became final, and the still-uncertain rest.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Update {
    /// Newly committed words, in order; shown once and never revised.
    pub finals: Vec<Word>,
    /// The uncommitted rest of the newest hypothesis; replaces the previous partial.
    pub partial: Vec<Word>,
}

/// Commits the words that successive hypotheses of a growing audio buffer agree on.
#[derive(Debug, Default)]
pub struct Committer {
    /// The uncommitted rest of the previous hypothesis, which the next one must agree with.
    pending: Vec<Word>,
    /// The last committed words, normalised: only the tail is needed to find the overlap at
    /// the join, so the history stays bounded however long the stream runs.
    committed_tail: VecDeque<String>,
    /// End of the last committed word.
    committed_end: Option<f32>,
    /// Start of the last committed word.
    last_start: Option<f32>,
    /// Start of the last committed word that closes a sentence.
    sentence_last_start: Option<f32>,
}

impl Committer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the newest hypothesis of the buffer and commits what it shares with the last.
    pub fn push(&mut self, hypothesis: Vec<Word>) -> Update {
        let mut fresh = self.after_committed(hypothesis);
        let agreed = self
            .pending
            .iter()
            .zip(&fresh)
            .take_while(|(old, new)| normalise(&old.text) == normalise(&new.text))
            .count();
        let partial = fresh.split_off(agreed);
        // The newest hypothesis heard more context, so its timing and punctuation are kept.
        let finals = fresh;
        self.commit(&finals);
        self.pending = partial.clone();
        Update { finals, partial }
    }

    /// Commits the rest of the last hypothesis: the stream ended or went silent, so no newer
    /// hypothesis will come to confirm it.
    pub fn flush(&mut self) -> Vec<Word> {
        let finals = std::mem::take(&mut self.pending);
        self.commit(&finals);
        finals
    }

    /// Start of the last committed word, if any: where a buffer may be cut when no
    /// sentence ends in it (see [`Committer::trim_point`]).
    pub fn last_committed_start(&self) -> Option<f32> {
        self.last_start
    }

    /// Whether the last hypothesis left words that are not final yet.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// The words of the last hypothesis that are not final yet.
    pub fn pending(&self) -> &[Word] {
        &self.pending
    }

    /// Where the caller may cut its audio buffer: at the last committed sentence, so audio
    /// before it is never decoded again and the buffer stays bounded. The cut is at the start
    /// of the sentence's last word, not its end: word times are estimates, and a cut a little
    /// late would clip the next word, which is then lost; the last word heard again is
    /// recognised as the committed tail and dropped.
    pub fn trim_point(&self) -> Option<f32> {
        self.sentence_last_start
    }

    /// Drops the words of a hypothesis that the committed text already covers: those that
    /// end before the last committed word, and a leading repeat of the committed tail.
    fn after_committed(&self, hypothesis: Vec<Word>) -> Vec<Word> {
        let Some(committed_end) = self.committed_end else {
            return hypothesis;
        };
        let mut fresh: Vec<Word> = hypothesis
            .into_iter()
            .filter(|word| word.end >= committed_end - TIME_TOLERANCE)
            .collect();
        let at_join = fresh
            .first()
            .is_some_and(|word| word.start < committed_end + JOIN_WINDOW);
        if at_join {
            let repeated = self.overlap_with_tail(&fresh);
            fresh.drain(..repeated);
        }
        fresh
    }

    /// The length of the longest run of leading words equal to the committed tail's last
    /// words; longest first, so a tail like "a b a" is not mistaken for a one-word overlap.
    fn overlap_with_tail(&self, words: &[Word]) -> usize {
        let longest = MAX_OVERLAP_WORDS
            .min(self.committed_tail.len())
            .min(words.len());
        (1..=longest)
            .rev()
            .find(|&n| {
                let tail = self.committed_tail.range(self.committed_tail.len() - n..);
                tail.zip(&words[..n])
                    .all(|(committed, word)| *committed == normalise(&word.text))
            })
            .unwrap_or(0)
    }

    fn commit(&mut self, words: &[Word]) {
        for word in words {
            if self.committed_tail.len() == MAX_OVERLAP_WORDS {
                self.committed_tail.pop_front();
            }
            self.committed_tail.push_back(normalise(&word.text));
            self.committed_end = Some(word.end);
            self.last_start = Some(word.start);
            if ends_sentence(&word.text) {
                self.sentence_last_start = Some(word.start);
            }
        }
    }
}

/// Whisper spells the same word differently between hypotheses ("Hello," then "hello"), so
/// words are compared in lower case without punctuation.
pub(super) fn normalise(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

pub(super) fn ends_sentence(text: &str) -> bool {
    text.trim_end()
        .trim_end_matches(['"', '\'', ')', ']'])
        .ends_with(['.', '?', '!'])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Words from (text, start, end) triples.
    fn words(spec: &[(&str, f32, f32)]) -> Vec<Word> {
        spec.iter()
            .map(|&(text, start, end)| Word {
                text: text.to_string(),
                start,
                end,
            })
            .collect()
    }

    fn texts(words: &[Word]) -> Vec<&str> {
        words.iter().map(|word| word.text.as_str()).collect()
    }

    #[test]
    fn agreement_commits_only_the_shared_prefix() {
        let mut committer = Committer::new();
        let first = committer.push(words(&[
            ("hello", 0.0, 0.4),
            ("world", 0.5, 0.9),
            ("foo", 1.0, 1.2),
        ]));
        assert!(first.finals.is_empty());
        assert_eq!(texts(&first.partial), ["hello", "world", "foo"]);

        let second = committer.push(words(&[
            ("Hello,", 0.0, 0.4),
            ("world", 0.5, 0.9),
            ("bar", 1.0, 1.3),
            ("baz", 1.4, 1.6),
        ]));
        assert_eq!(texts(&second.finals), ["Hello,", "world"]);
        assert_eq!(texts(&second.partial), ["bar", "baz"]);
    }

    #[test]
    fn a_revised_word_waits_until_two_hypotheses_agree() {
        let mut committer = Committer::new();
        committer.push(words(&[("we", 0.0, 0.2), ("sail", 0.3, 0.6)]));
        let revised = committer.push(words(&[
            ("we", 0.0, 0.2),
            ("sell", 0.3, 0.6),
            ("tomorrow", 0.7, 1.2),
        ]));
        assert_eq!(texts(&revised.finals), ["we"]);
        assert_eq!(texts(&revised.partial), ["sell", "tomorrow"]);

        let confirmed = committer.push(words(&[
            ("we", 0.0, 0.2),
            ("sell", 0.3, 0.6),
            ("tomorrow", 0.7, 1.2),
            ("morning", 1.3, 1.7),
        ]));
        assert_eq!(texts(&confirmed.finals), ["sell", "tomorrow"]);
        assert_eq!(texts(&confirmed.partial), ["morning"]);
    }

    #[test]
    fn finals_never_repeat_across_a_window_shift() {
        let mut committer = Committer::new();
        let mut finals = Vec::new();
        let hypotheses = [
            words(&[("the", 0.0, 0.2), ("cat", 0.3, 0.6), ("sat", 0.7, 1.0)]),
            words(&[
                ("the", 0.0, 0.2),
                ("cat", 0.3, 0.6),
                ("sat", 0.7, 1.0),
                ("on", 1.1, 1.3),
            ]),
            // The window moved on: its start cuts into "cat", and the re-aligned timings of
            // "sat" and "on" drift past the committed end, so only the overlap removes them.
            words(&[
                ("cat.", 0.5, 0.6),
                ("sat", 0.9, 1.25),
                ("on", 1.3, 1.45),
                ("the", 1.5, 1.6),
                ("mat", 1.7, 2.0),
            ]),
            words(&[
                ("sat", 0.9, 1.25),
                ("on", 1.3, 1.45),
                ("the", 1.5, 1.6),
                ("mat", 1.7, 2.0),
                ("today", 2.1, 2.5),
            ]),
        ];
        for hypothesis in hypotheses {
            finals.extend(committer.push(hypothesis).finals);
        }
        finals.extend(committer.flush());
        assert_eq!(
            texts(&finals),
            ["the", "cat", "sat", "on", "the", "mat", "today"]
        );
    }

    #[test]
    fn a_repeat_after_a_pause_is_kept() {
        let mut committer = Committer::new();
        committer.push(words(&[("no", 0.0, 0.3)]));
        committer.push(words(&[("no", 0.0, 0.3)]));
        let again = words(&[("no", 2.0, 2.3)]);
        committer.push(again.clone());
        assert_eq!(texts(&committer.push(again).finals), ["no"]);
    }

    #[test]
    fn trim_point_is_the_last_word_of_the_last_committed_sentence() {
        let mut committer = Committer::new();
        let sentence = words(&[("Hi", 0.0, 0.3), ("there.", 0.4, 0.8), ("How", 1.0, 1.2)]);
        committer.push(sentence.clone());
        assert_eq!(committer.trim_point(), None);

        committer.push(sentence);
        assert_eq!(committer.trim_point(), Some(0.4));

        let more = words(&[("How", 1.0, 1.2), ("are", 1.3, 1.5), ("you", 1.6, 1.9)]);
        committer.push(more.clone());
        committer.push(more);
        assert_eq!(committer.trim_point(), Some(0.4));
    }

    #[test]
    fn flush_commits_the_rest_of_the_last_hypothesis_once() {
        let mut committer = Committer::new();
        committer.push(words(&[("good", 0.0, 0.3), ("night", 0.4, 0.7)]));
        let last = words(&[("good", 0.0, 0.3), ("night", 0.4, 0.7), ("all!", 0.8, 1.0)]);
        committer.push(last.clone());

        assert_eq!(texts(&committer.flush()), ["all!"]);
        assert_eq!(committer.trim_point(), Some(0.8));
        assert!(committer.flush().is_empty());

        let after = committer.push(last);
        assert!(after.finals.is_empty());
        assert!(after.partial.is_empty());
    }
}
