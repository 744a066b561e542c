//! The live-captions recording (`scripts/data/make_captions.py`) and how captions are scored
//! against the offline transcript.

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::Command;

use voxd::captions::CaptionText;
use voxd::whisper::transcribe::TranscribeOptions;

/// Makes the recordings with the project's script: `test.wav`, and with `minutes`
/// `long.wav` of at least that many minutes. Returns the folder.
pub fn make_recordings(minutes: Option<u32>) -> PathBuf {
    let dir = super::repo().join("data/captions");
    let mut command = Command::new("python3");
    command.arg(super::repo().join("scripts/data/make_captions.py"));
    if let Some(minutes) = minutes {
        command.args(["--minutes", &minutes.to_string()]);
    }
    let status = command.status().expect("run scripts/data/make_captions.py");
    assert!(status.success(), "scripts/data/make_captions.py failed");
    dir
}

/// The offline transcription the captions are compared with: the whole file with the
/// reference's defaults (as `voxd transcribe`), in English.
pub fn offline_options() -> TranscribeOptions {
    TranscribeOptions {
        language: Some("en".into()),
        ..TranscribeOptions::default()
    }
}

/// Word errors (substitutions, insertions, deletions) of `hypothesis` against `reference`,
/// after the reference transcripts' normalisation, and the reference's word count.
pub fn word_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let reference = super::normalize(reference);
    let hypothesis = super::normalize(hypothesis);
    let r: Vec<&str> = reference.split_whitespace().collect();
    let h: Vec<&str> = hypothesis.split_whitespace().collect();
    (edit_distance(&r, &h), r.len())
}

/// Word errors of `hypothesis` against `reference` after the captions' WER normaliser
/// ([`english_words`], then words written as one in either text joined in both), and the
/// reference's word count: how captions and the offline transcription are both scored
/// against the spoken text.
pub fn english_word_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let (r, h) = (english_words(reference), english_words(hypothesis));
    let vocabulary: HashSet<&str> = r.iter().chain(&h).map(String::as_str).collect();
    let (r, h) = (compounds(&r, &vocabulary), compounds(&h, &vocabulary));
    (edit_distance(&r, &h), r.len())
}

/// The words of `text` as the captions' WER counts them (Whisper's English normaliser in
/// spirit; `scripts/bench/bench_captions.py` applies the same rules): lower case,
/// punctuation and hyphens dropped, filler words left out, British spellings made American
/// by rule ("-our" -> "-or", "-lled" -> "-led", "-ise" -> "-ize"), numbers written as
/// digits ("fourteen sixty-two" and "1462" alike, "fifteenth" and "15th").
pub fn english_words(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let chars: Vec<char> = lower.chars().collect();
    let kept: String = chars
        .iter()
        .enumerate()
        .filter(|&(i, &c)| {
            // "1,462" is one number.
            let between_digits = i > 0
                && chars[i - 1].is_ascii_digit()
                && chars.get(i + 1).is_some_and(char::is_ascii_digit);
            !(c == ',' && between_digits)
        })
        .map(|(_, &c)| {
            if c.is_ascii_alphanumeric() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let words: Vec<String> = kept
        .split_whitespace()
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty() && !FILLERS.contains(w))
        .map(american)
        .collect();
    numbers(&words)
}

const FILLERS: &[&str] = &["uh", "um", "hmm", "mm", "mhm", "ah", "er"];
/// The number words 0-19, in order.
const UNITS: &str = "zero one two three four five six seven eight nine ten eleven twelve \
                     thirteen fourteen fifteen sixteen seventeen eighteen nineteen";
/// The tens 20-90, in order.
const TENS: &str = "twenty thirty forty fifty sixty seventy eighty ninety";

/// The value of a cardinal number word ("sixty"), if it is one.
fn cardinal(word: &str) -> Option<u64> {
    let unit = UNITS.split_whitespace().position(|u| u == word);
    let tens = TENS.split_whitespace().position(|t| t == word);
    unit.map(|n| n as u64).or(tens.map(|n| 20 + 10 * n as u64))
}

/// The value of an ordinal number word ("fifteenth", "twentieth"), if it is one.
fn ordinal(word: &str) -> Option<u64> {
    let irregular = [
        ("first", 1),
        ("third", 3),
        ("fifth", 5),
        ("eighth", 8),
        ("ninth", 9),
        ("twelfth", 12),
    ];
    if let Some(&(_, n)) = irregular.iter().find(|(w, _)| *w == word) {
        return Some(n);
    }
    let tens = word.strip_suffix("ieth").and_then(|stem| {
        TENS.split_whitespace()
            .position(|t| t.strip_suffix('y') == Some(stem))
    });
    if let Some(n) = tens {
        return Some(20 + 10 * n as u64);
    }
    let stem = word.strip_suffix("th")?;
    let regular = !(stem.ends_with('t') || stem.ends_with('e') || stem.ends_with('y'));
    cardinal(stem).filter(|&n| n >= 4 && regular)
}

/// Runs of number words as digits; numbers said one after another ("fourteen sixty two")
/// written one after another ("1462").
fn numbers(words: &[String]) -> Vec<String> {
    let number = |w: &str| cardinal(w).or_else(|| ordinal(w));
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if number(&words[i]).is_none() {
            out.push(words[i].clone());
            i += 1;
            continue;
        }
        let (mut digits, mut total, mut current) = (String::new(), 0u64, 0u64);
        // What the last word was: a number (1-19, 21, ...), tens ("twenty"), or a scale.
        #[derive(PartialEq)]
        enum Last {
            Number,
            Tens,
            Scale,
        }
        let mut last = Last::Number;
        let started = |total: u64, current: u64| total > 0 || current > 0;
        while i < words.len() {
            let w = words[i].as_str();
            let n = number(w);
            match n {
                _ if (w == "hundred" || w == "thousand") && last == Last::Number => {
                    if w == "hundred" {
                        current *= 100;
                    } else {
                        total += current * 1000;
                        current = 0;
                    }
                    last = Last::Scale;
                }
                None if w == "and"
                    && last == Last::Scale
                    && words
                        .get(i + 1)
                        .is_some_and(|next| cardinal(next).is_some()) => {}
                Some(n) => {
                    let joins =
                        (current % 100 == 0 && started(total, current) && last != Last::Number)
                            || (n < 10 && current % 100 >= 20 && current % 10 == 0);
                    if joins || !started(total, current) {
                        current += n;
                        last = if current % 100 < 20 || current % 10 != 0 {
                            Last::Number
                        } else {
                            Last::Tens
                        };
                    } else {
                        digits += &(total + current).to_string();
                        (total, current) = (0, n);
                        last = if n < 20 { Last::Number } else { Last::Tens };
                    }
                }
                None => break,
            }
            i += 1;
            if ordinal(w).is_some() {
                break;
            }
        }
        let value = digits + &(total + current).to_string();
        if ordinal(&words[i - 1]).is_some() {
            let n: u64 = value.parse().unwrap_or_default();
            let suffix = match (n % 100, n % 10) {
                (11..=13, _) => "th",
                (_, 1) => "st",
                (_, 2) => "nd",
                (_, 3) => "rd",
                _ => "th",
            };
            out.push(value + suffix);
        } else {
            out.push(value);
        }
    }
    out
}

/// A British spelling made American by rule: "-our" -> "-or", "-lled"/"-lling" ->
/// "-led"/"-ling" after a vowel, "-ise" -> "-ize" (each with at least three letters before).
fn american(word: &str) -> String {
    let rules: [(&str, &str, &[&str], usize, bool); 3] = [
        (
            "our",
            "or",
            &["", "s", "ed", "ing", "ite", "ites", "able"],
            3,
            false,
        ),
        ("ll", "l", &["ed", "ing"], 4, true),
        (
            "is",
            "iz",
            &["e", "es", "ed", "ing", "ation", "ations"],
            3,
            false,
        ),
    ];
    let mut word = word.to_string();
    for (from, to, suffixes, least, after_vowel) in rules {
        let stem = suffixes
            .iter()
            .filter_map(|s| {
                let stem = word.strip_suffix(s)?.strip_suffix(from)?;
                let fits = stem.len() >= least
                    && stem.chars().all(|c| c.is_ascii_alphanumeric())
                    && (!after_vowel || stem.ends_with(['a', 'e', 'i', 'o', 'u']));
                fits.then(|| (stem.len(), format!("{stem}{to}{s}")))
            })
            .max_by_key(|(len, _)| *len);
        if let Some((_, respelt)) = stem {
            word = respelt;
        }
    }
    word
}

/// Two or three words one after another joined where `vocabulary` has them as one word
/// ("lower case" and "lowercase" alike).
fn compounds(words: &[String], vocabulary: &HashSet<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let n = [3, 2]
            .into_iter()
            .find(|&n| {
                i + n <= words.len() && vocabulary.contains(words[i..i + n].concat().as_str())
            })
            .unwrap_or(1);
        out.push(words[i..i + n].concat());
        i += n;
    }
    out
}

/// The fewest substitutions, insertions and deletions that make `h` of `r`.
fn edit_distance<T: PartialEq>(r: &[T], h: &[T]) -> usize {
    let mut row: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, hw) in h.iter().enumerate() {
            let substitution = diagonal + usize::from(rw != hw);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[h.len()]
}

/// Joins between consecutive finals where the words before the join are said again right
/// after it (two words or more: a single repeated word can be speech).
pub fn repeats_at_joins(finals: &[CaptionText]) -> Vec<String> {
    let words = |t: &CaptionText| -> Vec<String> {
        super::normalize(&t.text)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    finals
        .windows(2)
        .filter_map(|pair| {
            let (before, after) = (words(&pair[0]), words(&pair[1]));
            (2..=before.len().min(after.len()))
                .any(|k| before[before.len() - k..] == after[..k])
                .then(|| format!("{:?} | {:?}", pair[0].text, pair[1].text))
        })
        .collect()
}

/// For each word of `reference`, the word of `hypothesis` an edit-distance alignment pairs
/// it with (the same word or a substitute); `None` for a word the hypothesis leaves out.
pub fn align_words(reference: &[String], hypothesis: &[String]) -> Vec<Option<usize>> {
    let (n, m) = (reference.len(), hypothesis.len());
    let mut cost = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in cost.iter_mut().enumerate() {
        row[0] = i;
    }
    cost[0] = (0..=m).collect();
    for i in 1..=n {
        for j in 1..=m {
            let substitution =
                cost[i - 1][j - 1] + usize::from(reference[i - 1] != hypothesis[j - 1]);
            cost[i][j] = substitution.min(cost[i - 1][j] + 1).min(cost[i][j - 1] + 1);
        }
    }
    let mut aligned = vec![None; n];
    let (mut i, mut j) = (n, m);
    while i > 0 && j > 0 {
        let substitution = cost[i - 1][j - 1] + usize::from(reference[i - 1] != hypothesis[j - 1]);
        if cost[i][j] == substitution {
            aligned[i - 1] = Some(j - 1);
            (i, j) = (i - 1, j - 1);
        } else if cost[i][j] == cost[i - 1][j] + 1 {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    aligned
}
