//! Numbers as digits and as English words, both ways.
//!
//! A grammar accepts every number it contains in each spoken form: digits ("21"), words
//! ("twenty one"; the hyphen of "twenty-one" is a separator after normalisation), with or
//! without "and" after hundreds, "a hundred" for "one hundred", and "minus" for negatives.

const UNITS: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = [
    "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
];
const SCALES: [(i64, &str); 3] = [
    (1_000_000_000, "billion"),
    (1_000_000, "million"),
    (1_000, "thousand"),
];

/// The number in words, normalised ("minus one hundred twenty one").
pub fn to_words(n: i64) -> String {
    let mut words = Vec::new();
    if n < 0 {
        words.push("minus".to_string());
    }
    let mut rest = n.unsigned_abs();
    if rest == 0 {
        return "zero".into();
    }
    // i64::MIN's magnitude exceeds the scales' range only in the billions count, which the
    // recursion below spells as its own number.
    for (scale, name) in SCALES {
        let scale = scale as u64;
        if rest >= scale {
            words.push(to_words((rest / scale) as i64));
            words.push(name.to_string());
            rest %= scale;
        }
    }
    if rest > 0 {
        words.push(below_thousand(rest as usize));
    }
    words.join(" ")
}

fn below_thousand(n: usize) -> String {
    let mut words = Vec::new();
    if n >= 100 {
        words.push(format!("{} hundred", UNITS[n / 100]));
    }
    let rest = n % 100;
    if rest >= 20 {
        words.push(TENS[rest / 10].to_string());
        if !rest.is_multiple_of(10) {
            words.push(UNITS[rest % 10].to_string());
        }
    } else if rest > 0 {
        words.push(UNITS[rest].to_string());
    }
    words.join(" ")
}

/// Every spoken form of a number, the digits first: "121", "one hundred twenty one",
/// "one hundred and twenty one", "a hundred twenty one", "a hundred and twenty one".
pub fn spoken_forms(n: i64) -> Vec<String> {
    let digits = if n < 0 {
        format!("minus {}", n.unsigned_abs())
    } else {
        n.to_string()
    };
    let words = to_words(n);
    let mut forms = vec![digits, words.clone()];
    let with_and = insert_and(&words);
    forms.extend(with_and.clone());
    for form in [Some(words), with_and].into_iter().flatten() {
        if let Some(rest) = form.strip_prefix("one hundred") {
            forms.push(format!("a hundred{rest}"));
        } else if let Some(rest) = form.strip_prefix("minus one hundred") {
            forms.push(format!("minus a hundred{rest}"));
        }
    }
    forms
}

/// "one hundred twenty" → "one hundred and twenty" (British usage), when the last "hundred"
/// is followed by more words.
fn insert_and(words: &str) -> Option<String> {
    let at = words.rfind(" hundred ")?;
    let split = at + " hundred".len();
    Some(format!("{} and{}", &words[..split], &words[split..]))
}

#[derive(Clone, Copy, PartialEq)]
enum Last {
    Nothing,
    Minus,
    A,
    Unit,
    Teen,
    Ten,
    Hundred,
    Scale,
    And,
}

/// The value of a run of normalised words that spells exactly one number ("minus twenty
/// one", "a hundred and five", "21"), or None.
pub fn parse(words: &[&str]) -> Option<i64> {
    match words {
        [] => None,
        [digits] if is_digits(digits) => digits.parse().ok(),
        ["minus", digits] if is_digits(digits) => digits.parse::<i64>().ok().map(|n| -n),
        ["zero"] => Some(0),
        ["minus", "zero"] => Some(0),
        _ => parse_words(words),
    }
}

fn is_digits(word: &str) -> bool {
    !word.is_empty() && word.bytes().all(|b| b.is_ascii_digit())
}

fn parse_words(words: &[&str]) -> Option<i64> {
    let (mut total, mut group, mut last_scale) = (0i64, 0i64, i64::MAX);
    let mut negative = false;
    let mut last = Last::Nothing;
    for &word in words {
        let after_group_start = matches!(last, Last::Nothing | Last::Minus | Last::Scale);
        let fresh = after_group_start || matches!(last, Last::Hundred | Last::And);
        last = if word == "minus" && last == Last::Nothing {
            negative = true;
            Last::Minus
        } else if word == "a" && after_group_start {
            group = 1;
            Last::A
        } else if let Some(n) = UNITS[1..10].iter().position(|&u| u == word) {
            if !(fresh || last == Last::Ten) {
                return None;
            }
            group += n as i64 + 1;
            Last::Unit
        } else if let Some(n) = UNITS[10..].iter().position(|&u| u == word) {
            if !fresh {
                return None;
            }
            group += n as i64 + 10;
            Last::Teen
        } else if let Some(n) = TENS.iter().position(|&t| !t.is_empty() && t == word) {
            if !fresh {
                return None;
            }
            group += n as i64 * 10;
            Last::Ten
        } else if word == "hundred" {
            if !matches!(last, Last::Unit | Last::A) || group >= 10 {
                return None;
            }
            group *= 100;
            Last::Hundred
        } else if word == "and" {
            if !matches!(last, Last::Hundred | Last::Scale) {
                return None;
            }
            Last::And
        } else if let Some(&(scale, _)) = SCALES.iter().find(|(_, name)| *name == word) {
            if matches!(last, Last::Nothing | Last::Minus | Last::Scale | Last::And)
                || scale >= last_scale
            {
                return None;
            }
            total = total.checked_add(group.checked_mul(scale)?)?;
            group = 0;
            last_scale = scale;
            Last::Scale
        } else {
            return None;
        };
    }
    if matches!(last, Last::Nothing | Last::Minus | Last::A | Last::And) {
        return None;
    }
    let value = total.checked_add(group)?;
    Some(if negative { -value } else { value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<&str> {
        text.split(' ').collect()
    }

    #[test]
    fn numbers_in_words() {
        assert_eq!(to_words(0), "zero");
        assert_eq!(to_words(7), "seven");
        assert_eq!(to_words(13), "thirteen");
        assert_eq!(to_words(21), "twenty one");
        assert_eq!(to_words(40), "forty");
        assert_eq!(to_words(100), "one hundred");
        assert_eq!(to_words(-105), "minus one hundred five");
        assert_eq!(
            to_words(2_012_345),
            "two million twelve thousand three hundred forty five"
        );
        assert!(to_words(i64::MIN).starts_with("minus nine billion"));
    }

    #[test]
    fn spoken_forms_include_digits_and_variants() {
        assert_eq!(spoken_forms(21), ["21", "twenty one"]);
        assert_eq!(
            spoken_forms(121),
            [
                "121",
                "one hundred twenty one",
                "one hundred and twenty one",
                "a hundred twenty one",
                "a hundred and twenty one"
            ]
        );
        assert_eq!(
            spoken_forms(-100),
            ["minus 100", "minus one hundred", "minus a hundred"]
        );
    }

    #[test]
    fn words_parse_back_for_every_form() {
        for n in (-1200..=1200).chain([1_000_000, 2_012_345, 999_999_999]) {
            for form in spoken_forms(n) {
                assert_eq!(parse(&words(&form)), Some(n), "{form}");
            }
        }
    }

    #[test]
    fn non_numbers_are_refused() {
        for text in [
            "one two",
            "twenty twenty",
            "a",
            "and",
            "hundred",
            "one hundred and",
            "thousand thousand",
            "one thousand million",
            "ten one",
            "minus",
            "lights",
            "twelve hundred",
        ] {
            assert_eq!(parse(&words(text)), None, "{text}");
        }
        assert_eq!(parse(&[]), None);
    }
}
