//! Pre-tokenization: splitting text into the words byte-level BPE then merges, by the
//! patterns GPT-2, SmolLM, Llama 3 and Qwen 2 use (GGUF's `tokenizer.ggml.pre` names them).
//! Whisper's tokenizer uses GPT-2's; the reply model's the one its file names.
//!
//! The patterns are regular expressions with look-ahead (`\s+(?!\S)`), which the `regex`
//! crate does not have, so each is written out as a scan over the characters, with the
//! Unicode classes (`\p{L}`, `\p{N}`, `\p{P}`) taken from `regex-syntax`'s tables.

use std::cmp::Ordering;
use std::sync::OnceLock;

use regex_syntax::hir::{Class, HirKind};

/// The byte-level BPE pre-tokenizers voxd implements, by the names `tokenizer.ggml.pre` uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreTokenizer {
    /// llama.cpp's fallback (`default`, or no `tokenizer.ggml.pre`): runs of punctuation apart,
    /// then GPT-2's pattern, then runs of numbers apart, then groups of three ASCII digits.
    Default,
    /// GPT-2's pattern: `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
    /// (also `gpt-2`, `phi-2`, `mpt`, `olmo`, `jais`, `trillion`, `granite-docling`, `exaone4`).
    Gpt2,
    /// `smollm` (also `starcoder`, `refact`, `command-r`, `codeshell`, `exaone`,
    /// `minerva-7b`): every number character alone, then GPT-2's pattern.
    Smollm,
    /// `llama3` (also `llama-bpe`, `llama-v3`, `falcon3`, `pixtral`, ...):
    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
    /// ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`; a word that is a token as a whole is
    /// not merged.
    Llama3,
    /// `qwen2` (also `stablelm2`, `deepseek-r1-qwen`, `megrez`): Llama 3's pattern with every
    /// number character alone (`\p{N}` instead of `\p{N}{1,3}`).
    Qwen2,
}

impl PreTokenizer {
    /// The pre-tokenizer `tokenizer.ggml.pre` names, if voxd implements it.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "default" => PreTokenizer::Default,
            "gpt-2" | "gpt2" | "phi-2" | "mpt" | "olmo" | "jais" | "trillion"
            | "granite-docling" | "exaone4" => PreTokenizer::Gpt2,
            "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone"
            | "minerva-7b" => PreTokenizer::Smollm,
            "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral"
            | "midm-2.0" | "lfm2" => PreTokenizer::Llama3,
            "qwen2" | "stablelm2" | "deepseek-r1-qwen" | "megrez" | "kormo" => PreTokenizer::Qwen2,
            _ => return None,
        })
    }

    /// Splits `text` into the words that byte-pair merging then works on, in order.
    pub fn split(self, text: &str) -> Vec<&str> {
        pre_tokenize(text, self.stages())
    }

    /// The splitting stages, applied in order.
    fn stages(self) -> &'static [Stage] {
        match self {
            PreTokenizer::Default => &[
                Stage::PunctuationRuns,
                Stage::Gpt2,
                Stage::NumberRuns,
                Stage::DigitTriples,
            ],
            PreTokenizer::Gpt2 => &[Stage::Gpt2],
            PreTokenizer::Smollm => &[Stage::EachNumber, Stage::Gpt2],
            PreTokenizer::Llama3 => &[Stage::Llama3 { max_digits: 3 }],
            PreTokenizer::Qwen2 => &[Stage::Llama3 { max_digits: 1 }],
        }
    }

    /// Llama 3's tokenizer takes a word that is itself a token without merging it.
    pub fn ignores_merges(self) -> bool {
        self == PreTokenizer::Llama3
    }
}

/// One splitting pass. Each pass splits every piece of the previous one; the text between
/// matches of the isolating passes stays a piece of its own.
#[derive(Clone, Copy, Debug)]
enum Stage {
    /// `\p{N}`: every number character alone.
    EachNumber,
    /// `\p{N}+`.
    NumberRuns,
    /// `[0-9][0-9][0-9]`.
    DigitTriples,
    /// `[\p{P}\$\+<=>\^~\|]+`.
    PunctuationRuns,
    /// GPT-2's pattern.
    Gpt2,
    /// Llama 3's pattern with numbers in groups of up to `max_digits`.
    Llama3 { max_digits: usize },
}

/// A Unicode character class as sorted inclusive ranges, with a table for ASCII.
struct CharClass {
    ascii: [bool; 128],
    ranges: Vec<(u32, u32)>,
}

impl CharClass {
    /// The class of a one-class pattern such as `\p{L}`.
    fn new(pattern: &str) -> Self {
        let hir = regex_syntax::Parser::new()
            .parse(pattern)
            .expect("the character class patterns are valid");
        // The patterns are single Unicode classes (a unit test checks each is non-empty).
        let ranges: Vec<(u32, u32)> = match hir.kind() {
            HirKind::Class(Class::Unicode(class)) => class
                .ranges()
                .iter()
                .map(|r| (u32::from(r.start()), u32::from(r.end())))
                .collect(),
            _ => Vec::new(),
        };
        let mut ascii = [false; 128];
        for (c, slot) in ascii.iter_mut().enumerate() {
            *slot = ranges
                .iter()
                .any(|&(lo, hi)| (lo..=hi).contains(&(c as u32)));
        }
        CharClass { ascii, ranges }
    }

    fn contains(&self, c: char) -> bool {
        let c = u32::from(c);
        if c < 128 {
            return self.ascii[c as usize];
        }
        self.ranges
            .binary_search_by(|&(lo, hi)| {
                if hi < c {
                    Ordering::Less
                } else if lo > c {
                    Ordering::Greater
                } else {
                    Ordering::Equal
                }
            })
            .is_ok()
    }
}

/// The Unicode categories the pre-tokenizers use.
struct Classes {
    letter: CharClass,
    number: CharClass,
    punctuation: CharClass,
}

fn classes() -> &'static Classes {
    static CLASSES: OnceLock<Classes> = OnceLock::new();
    CLASSES.get_or_init(|| Classes {
        letter: CharClass::new(r"\p{L}"),
        number: CharClass::new(r"\p{N}"),
        punctuation: CharClass::new(r"\p{P}"),
    })
}

/// What the patterns distinguish about a character.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Letter,
    Number,
    Space,
    /// Neither letter, number nor white space (`[^\s\p{L}\p{N}]`).
    Other,
}

fn kind_of(c: char) -> Kind {
    let classes = classes();
    if classes.letter.contains(c) {
        Kind::Letter
    } else if classes.number.contains(c) {
        Kind::Number
    } else if c.is_whitespace() {
        Kind::Space
    } else {
        Kind::Other
    }
}

/// Splits `text` into the words the stages give, in order.
fn pre_tokenize<'t>(text: &'t str, stages: &[Stage]) -> Vec<&'t str> {
    let mut pieces = vec![text];
    for stage in stages {
        let mut split = Vec::with_capacity(pieces.len() * 2);
        for piece in pieces {
            let chars: Vec<(usize, char)> = piece.char_indices().collect();
            let ends = match *stage {
                Stage::EachNumber => isolate(&chars, |c, i| {
                    (kind_of(c[i].1) == Kind::Number).then_some(i + 1)
                }),
                Stage::NumberRuns => isolate(&chars, |c, i| {
                    let end = run_end(c, i, |ch| kind_of(ch) == Kind::Number);
                    (end > i).then_some(end)
                }),
                Stage::DigitTriples => isolate(&chars, |c, i| {
                    let digits = c[i..].iter().take(3).filter(|x| x.1.is_ascii_digit());
                    (digits.count() == 3).then_some(i + 3)
                }),
                Stage::PunctuationRuns => isolate(&chars, |c, i| {
                    let end = run_end(c, i, |ch| {
                        classes().punctuation.contains(ch) || "$+<=>^~|".contains(ch)
                    });
                    (end > i).then_some(end)
                }),
                Stage::Gpt2 => split_gpt2(&chars),
                Stage::Llama3 { max_digits } => split_llama3(&chars, max_digits),
            };
            let mut from = 0;
            for end in ends {
                let (a, b) = (byte_at(piece, &chars, from), byte_at(piece, &chars, end));
                split.push(&piece[a..b]);
                from = end;
            }
        }
        pieces = split;
    }
    pieces
}

/// The byte offset of character `i` of `piece` (its length at the end).
fn byte_at(piece: &str, chars: &[(usize, char)], i: usize) -> usize {
    chars.get(i).map_or(piece.len(), |c| c.0)
}

/// The end of the run of characters from `i` on that satisfy `keep`.
fn run_end(chars: &[(usize, char)], i: usize, keep: impl Fn(char) -> bool) -> usize {
    i + chars[i..].iter().take_while(|c| keep(c.1)).count()
}

/// Piece ends (in characters) when the matches of a pattern are cut out and the text
/// between them kept as pieces too. `matches(chars, i)` is the end of a match starting at `i`.
fn isolate(
    chars: &[(usize, char)],
    matches: impl Fn(&[(usize, char)], usize) -> Option<usize>,
) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut i = 0;
    let mut gap_start = 0;
    while i < chars.len() {
        match matches(chars, i) {
            Some(end) => {
                if i > gap_start {
                    ends.push(i);
                }
                ends.push(end);
                i = end;
                gap_start = end;
            }
            None => i += 1,
        }
    }
    if chars.len() > gap_start {
        ends.push(chars.len());
    }
    ends
}

/// The length of a contraction (`'s`, `'t`, `'re`, `'ve`, `'m`, `'ll`, `'d`) at `i`, if one
/// starts there; `fold` maps letters before comparing (case-insensitive for Llama 3).
fn contraction(chars: &[(usize, char)], i: usize, fold: fn(char) -> char) -> Option<usize> {
    let at = |k: usize| chars.get(i + k).map(|c| fold(c.1));
    if at(0) != Some('\'') {
        return None;
    }
    match (at(1), at(2)) {
        (Some('s' | 't' | 'm' | 'd'), _) => Some(2),
        (Some('r'), Some('e')) | (Some('v'), Some('e')) | (Some('l'), Some('l')) => Some(3),
        _ => None,
    }
}

/// The end of a run of white space starting at `i` as the patterns' last alternatives take
/// it: `\s+(?!\S)` leaves the last white-space character to the word that follows, `\s+`
/// takes a single one or a run that reaches the end.
fn whitespace_end(chars: &[(usize, char)], i: usize) -> usize {
    let end = run_end(chars, i, char::is_whitespace);
    if end - i > 1 && end < chars.len() {
        end - 1
    } else {
        end.max(i + 1)
    }
}

/// GPT-2's pattern: piece ends in characters.
fn split_gpt2(chars: &[(usize, char)]) -> Vec<usize> {
    let n = chars.len();
    let kind = |i: usize| chars.get(i).map(|c| kind_of(c.1));
    let mut ends = Vec::new();
    let mut i = 0;
    while i < n {
        if let Some(len) = contraction(chars, i, |c| c) {
            i += len;
            ends.push(i);
            continue;
        }
        // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: an optional space, then a run of one kind.
        let body = if chars[i].1 == ' ' { i + 1 } else { i };
        match kind(body) {
            Some(k @ (Kind::Letter | Kind::Number | Kind::Other)) => {
                i = run_end(chars, body, |c| kind_of(c) == k);
            }
            _ => i = whitespace_end(chars, i),
        }
        ends.push(i);
    }
    ends
}

/// Llama 3's pattern (numbers in groups of up to `max_digits`): piece ends in characters.
fn split_llama3(chars: &[(usize, char)], max_digits: usize) -> Vec<usize> {
    let n = chars.len();
    let kind = |i: usize| chars.get(i).map(|c| kind_of(c.1));
    let is_newline = |i: usize| matches!(chars.get(i).map(|c| c.1), Some('\r' | '\n'));
    let mut ends = Vec::new();
    let mut i = 0;
    while i < n {
        if let Some(len) = contraction(chars, i, |c| c.to_ascii_lowercase()) {
            i += len;
            ends.push(i);
            continue;
        }
        let here = kind(i);
        // `[^\r\n\p{L}\p{N}]?\p{L}+`
        if !is_newline(i) && here != Some(Kind::Number) {
            let body = if here == Some(Kind::Letter) { i } else { i + 1 };
            if kind(body) == Some(Kind::Letter) {
                i = run_end(chars, body, |c| kind_of(c) == Kind::Letter);
                ends.push(i);
                continue;
            }
        }
        // `\p{N}{1,max_digits}`
        if here == Some(Kind::Number) {
            let run = run_end(chars, i, |c| kind_of(c) == Kind::Number);
            i += (run - i).min(max_digits);
            ends.push(i);
            continue;
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        let body = if chars[i].1 == ' ' { i + 1 } else { i };
        if kind(body) == Some(Kind::Other) {
            i = run_end(chars, body, |c| kind_of(c) == Kind::Other);
            i = run_end(chars, i, |c| c == '\r' || c == '\n');
            ends.push(i);
            continue;
        }
        // `\s*[\r\n]+`: a run of white space up to its last line break.
        let run = run_end(chars, i, char::is_whitespace);
        if let Some(last_break) = (i..run).rev().find(|&k| is_newline(k)) {
            i = last_break + 1;
        } else {
            i = whitespace_end(chars, i);
        }
        ends.push(i);
    }
    ends
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str, pre: PreTokenizer) -> Vec<&str> {
        pre.split(text)
    }

    #[test]
    fn character_classes_are_unicode_categories() {
        let c = classes();
        for ch in ['a', 'Z', 'é', 'ß', '日', 'ж', 'ª'] {
            assert!(c.letter.contains(ch), "{ch} is a letter");
        }
        for ch in ['5', '٣', '½', 'Ⅻ', '²'] {
            assert!(c.number.contains(ch), "{ch} is a number");
            assert!(!c.letter.contains(ch));
        }
        for ch in [',', '_', '、', '«', '!'] {
            assert!(c.punctuation.contains(ch), "{ch} is punctuation");
        }
        for ch in ['$', '+', '^', '😀', ' '] {
            assert!(!c.punctuation.contains(ch), "{ch} is not punctuation");
        }
        assert!(kind_of('\u{3000}') == Kind::Space && kind_of('😀') == Kind::Other);
        // A combining mark is neither a letter nor a number (\p{M}).
        assert!(kind_of('\u{0301}') == Kind::Other);
    }

    #[test]
    fn gpt2_pattern() {
        let gpt2 = PreTokenizer::Gpt2;
        assert_eq!(split("I'll don't", gpt2), ["I", "'ll", " don", "'t"]);
        assert_eq!(split("a  b", gpt2), ["a", " ", " b"]);
        assert_eq!(split("a \n b", gpt2), ["a", " \n", " b"]);
        assert_eq!(split("x\tb", gpt2), ["x", "\t", "b"]);
        assert_eq!(split("1234 abc", gpt2), ["1234", " abc"]);
        assert_eq!(split("3.14", gpt2), ["3", ".", "14"]);
        assert_eq!(split("hi  ", gpt2), ["hi", "  "]);
        assert_eq!(split("Hello!!! ?", gpt2), ["Hello", "!!!", " ?"]);
        assert_eq!(split("I'LL", gpt2), ["I", "'", "LL"]);
        assert_eq!(split("", gpt2), Vec::<&str>::new());
    }

    #[test]
    fn smollm_isolates_every_number_character() {
        let smollm = PreTokenizer::Smollm;
        assert_eq!(split("1234 abc", smollm), ["1", "2", "3", "4", " abc"]);
        assert_eq!(split("3.14", smollm), ["3", ".", "1", "4"]);
        assert_eq!(split("pi 3", smollm), ["pi", " ", "3"]);
        assert_eq!(split("x²", smollm), ["x", "²"]);
    }

    #[test]
    fn llama3_and_qwen2_patterns() {
        let llama3 = PreTokenizer::Llama3;
        assert_eq!(split("I'LL don't", llama3), ["I", "'LL", " don", "'t"]);
        assert_eq!(split("12345", llama3), ["123", "45"]);
        assert_eq!(
            split("12345", PreTokenizer::Qwen2),
            ["1", "2", "3", "4", "5"]
        );
        assert_eq!(
            split("hello\n\n  world", llama3),
            ["hello", "\n\n", " ", " world"]
        );
        assert_eq!(split("a...\n\nb", llama3), ["a", "...\n\n", "b"]);
        assert_eq!(split("\tword", llama3), ["\tword"]);
        assert_eq!(split("$100", llama3), ["$", "100"]);
        assert_eq!(split(" ?x", llama3), [" ?", "x"]);
        assert_eq!(split("x  ", llama3), ["x", "  "]);
        assert_eq!(split("a \n\t b", llama3), ["a", " \n", "\t", " b"]);
    }

    #[test]
    fn default_pattern_runs_four_passes() {
        assert_eq!(
            split("hello, world 12345!", PreTokenizer::Default),
            ["hello", ",", " world", " ", "123", "45", "!"]
        );
    }

    #[test]
    fn pre_tokenizer_names() {
        assert_eq!(
            PreTokenizer::from_name("smollm"),
            Some(PreTokenizer::Smollm)
        );
        assert_eq!(
            PreTokenizer::from_name("llama-bpe"),
            Some(PreTokenizer::Llama3)
        );
        assert_eq!(PreTokenizer::from_name("qwen2"), Some(PreTokenizer::Qwen2));
        assert_eq!(PreTokenizer::from_name("gpt-2"), Some(PreTokenizer::Gpt2));
        assert_eq!(PreTokenizer::from_name("deepseek-v3"), None);
    }
}
