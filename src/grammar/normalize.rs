//! Text normalisation shared by grammar compilation and matching.
//!
//! Templates, list values and recognised text all pass through the same [`Normalizer`], so
//! they meet in one form: lower case, words of letters and digits separated by single spaces,
//! no leading or trailing space. The rules, chosen for what Whisper writes:
//!
//! - letters and digits are kept (lowercased); every other character separates words, so
//!   "twenty-one" is "twenty one" and "Hello, world!" is "hello world";
//! - apostrophes are dropped, not separators: "don't", "don’t" and "dont" are all "dont", so a
//!   grammar need not guess which one Whisper writes;
//! - a comma between digits is dropped ("1,000" is "1000"), a full stop is the word "point"
//!   ("22.5" is "22 point 5", as it is said);
//! - a minus sign starting a number is the word "minus" ("-5" is "minus 5");
//! - `%` is the word "percent" and `&` the word "and".
//!
//! Digits and number words are not converted here: the grammar accepts both forms of every
//! number it contains (see `numbers`), which keeps this stage a character-by-character filter
//! that the incremental matcher can run on arbitrary pieces of text.

/// The separator between words in normalised text.
pub const BOUNDARY: char = ' ';

/// A streaming normaliser: characters in, normalised characters out.
///
/// It holds at most one character back (a comma after a digit, a dash at the start of a
/// word) until the next character decides what it is, and owes a boundary until the next
/// word character, so no trailing boundary is ever emitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Normalizer {
    held: Option<char>,
    owes_boundary: bool,
    started: bool,
    after_digit: bool,
}

impl Normalizer {
    /// A normaliser in the middle of text, after a word: its output starts with a boundary
    /// when the input starts with a separator. Templates use it to see their edges.
    pub fn after_word() -> Self {
        Normalizer {
            started: true,
            ..Normalizer::default()
        }
    }

    /// Feeds one character; `out` receives the normalised characters it produces.
    pub fn push(&mut self, c: char, out: &mut impl FnMut(char)) {
        if let Some(held) = self.held.take() {
            match held {
                ',' if c.is_ascii_digit() => {}
                '.' if c.is_ascii_digit() => self.word("point", out),
                '-' if c.is_ascii_digit() => self.word("minus", out),
                _ => self.separate(),
            }
        }
        match c {
            '\'' | '\u{2019}' | '\u{2018}' | '\u{02bc}' => {}
            ',' | '.' if self.after_digit => self.held = Some(c),
            '-' | '\u{2212}' if self.at_word_start() => self.held = Some('-'),
            '%' => self.word("percent", out),
            '&' => self.word("and", out),
            c if c.is_alphanumeric() => {
                for lower in c.to_lowercase() {
                    self.emit(lower, out);
                }
            }
            _ => self.separate(),
        }
    }

    /// True when input so far ends between words (a separator or a held character is
    /// pending), i.e. the next word character would start a new word.
    pub fn owes_boundary(&self) -> bool {
        self.owes_boundary || self.held.is_some()
    }

    fn at_word_start(&self) -> bool {
        !self.started || self.owes_boundary
    }

    fn separate(&mut self) {
        self.owes_boundary = true;
        self.after_digit = false;
    }

    fn word(&mut self, word: &str, out: &mut impl FnMut(char)) {
        self.separate();
        for c in word.chars() {
            self.emit(c, out);
        }
        self.separate();
    }

    fn emit(&mut self, c: char, out: &mut impl FnMut(char)) {
        if self.owes_boundary && self.started {
            out(BOUNDARY);
        }
        self.owes_boundary = false;
        self.started = true;
        self.after_digit = c.is_ascii_digit();
        out(c);
    }
}

/// The normalised form of a whole text.
pub fn normalize(text: &str) -> String {
    let mut normalizer = Normalizer::default();
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        normalizer.push(c, &mut |n| out.push(n));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_punctuation_and_spaces() {
        assert_eq!(
            normalize("  Turn ON the Kitchen-Light!  "),
            "turn on the kitchen light"
        );
        assert_eq!(normalize("Hello,   world... ok?"), "hello world ok");
        assert_eq!(normalize(""), "");
        assert_eq!(normalize("?!"), "");
    }

    #[test]
    fn apostrophes_are_dropped() {
        assert_eq!(normalize("Don't stop"), "dont stop");
        assert_eq!(normalize("don\u{2019}t"), "dont");
    }

    #[test]
    fn numbers_symbols_and_signs() {
        assert_eq!(normalize("1,000 people, 3 cats"), "1000 people 3 cats");
        assert_eq!(
            normalize("Set it to 22.5. Then 21."),
            "set it to 22 point 5 then 21"
        );
        assert_eq!(normalize("set to -5 degrees"), "set to minus 5 degrees");
        assert_eq!(normalize("twenty-one"), "twenty one");
        assert_eq!(normalize("5-10"), "5 10");
        assert_eq!(normalize("50%"), "50 percent");
        assert_eq!(normalize("rock&roll"), "rock and roll");
        assert_eq!(normalize("- five"), "five");
    }

    #[test]
    fn edges_are_visible_after_a_word() {
        let mut n = Normalizer::after_word();
        let mut out = String::new();
        for c in " the ".chars() {
            n.push(c, &mut |x| out.push(x));
        }
        assert_eq!(out, " the");
        assert!(n.owes_boundary());
    }
}
