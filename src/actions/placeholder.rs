//! `{slot}` placeholders in `run` arguments and `notify` texts.
//!
//! `{name}` stands for the value of slot `name`; `{{` and `}}` are literal braces. Any other
//! brace is an error when the action set is built, so a typo never reaches a command line as
//! text. A value replaces its placeholder as literal text inside the one argument that holds
//! it: `--room={room}` with "living room" is the single argument `--room=living room`. No
//! argument is ever split, joined or interpreted.

use std::collections::BTreeMap;

use crate::grammar::SlotValue;

/// A text with placeholders, parsed once when the action set is built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Slot(String),
}

/// A slot named by a placeholder that the match does not carry: the sentence heard did not
/// capture it and the intent has no fixed value for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "slot `{0}` was not captured by the sentence heard and the intent has no fixed value \
     for it"
)]
pub struct MissingSlot(pub String);

impl Template {
    /// Parses `text`; the error says what is wrong with its braces.
    pub fn parse(text: &str) -> Result<Template, String> {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.next_if(|&(_, next)| next == '{').is_some() => literal.push('{'),
                '}' if chars.next_if(|&(_, next)| next == '}').is_some() => literal.push('}'),
                '{' => {
                    let name = placeholder_name(text, at)?;
                    for _ in 0..name.chars().count() + 1 {
                        chars.next();
                    }
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    pieces.push(Piece::Slot(name.to_string()));
                }
                '}' => {
                    return Err(format!(
                        "`}}` at character {} closes no placeholder (write `}}}}` for a \
                         literal brace)",
                        char_number(text, at)
                    ))
                }
                _ => literal.push(c),
            }
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Template { pieces })
    }

    /// The slot names of the placeholders, in order, with repeats.
    pub fn slot_names(&self) -> impl Iterator<Item = &str> {
        self.pieces.iter().filter_map(|piece| match piece {
            Piece::Slot(name) => Some(name.as_str()),
            Piece::Literal(_) => None,
        })
    }

    /// The text with every placeholder replaced by its slot's value.
    pub fn render(&self, slots: &BTreeMap<String, SlotValue>) -> Result<String, MissingSlot> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Slot(name) => {
                    let value = slots.get(name).ok_or_else(|| MissingSlot(name.clone()))?;
                    out.push_str(&value.to_string());
                }
            }
        }
        Ok(out)
    }
}

/// The name inside the placeholder opened by the `{` at byte `open`.
fn placeholder_name(text: &str, open: usize) -> Result<&str, String> {
    let rest = &text[open + 1..];
    let unclosed = || {
        format!(
            "`{{` at character {} opens a placeholder that is not closed by `}}` (write `{{{{` \
             for a literal brace)",
            char_number(text, open)
        )
    };
    let end = rest.find(['{', '}']).ok_or_else(unclosed)?;
    if !rest[end..].starts_with('}') {
        return Err(unclosed());
    }
    let name = &rest[..end];
    if name.trim().is_empty() {
        return Err(format!(
            "the placeholder at character {} names no slot",
            char_number(text, open)
        ));
    }
    Ok(name)
}

/// The 1-based character position of byte offset `at`, for messages.
fn char_number(text: &str, at: usize) -> usize {
    text[..at].chars().count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(pairs: &[(&str, SlotValue)]) -> BTreeMap<String, SlotValue> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn whole_and_inner_placeholders_are_replaced_as_literal_text() {
        let values = slots(&[
            (
                "room",
                SlotValue::Text("living room; $(rm -rf ~) `x` \"q\"\n".into()),
            ),
            ("level", SlotValue::Integer(40)),
            ("gain", SlotValue::Float(0.5)),
        ]);
        let whole = Template::parse("{room}").unwrap();
        assert_eq!(
            whole.render(&values).unwrap(),
            "living room; $(rm -rf ~) `x` \"q\"\n"
        );
        let inner = Template::parse("--level={level}/{gain} {{raw}} }}").unwrap();
        assert_eq!(inner.render(&values).unwrap(), "--level=40/0.5 {raw} }");
        assert_eq!(inner.slot_names().collect::<Vec<_>>(), ["level", "gain"]);
    }

    #[test]
    fn values_are_never_read_as_placeholders() {
        let values = slots(&[
            ("a", SlotValue::Text("{b}".into())),
            ("b", SlotValue::Text("no".into())),
        ]);
        assert_eq!(
            Template::parse("{a}").unwrap().render(&values).unwrap(),
            "{b}"
        );
    }

    #[test]
    fn non_ascii_text_keeps_its_characters() {
        let values = slots(&[("t", SlotValue::Text("21°".into()))]);
        let template = Template::parse("Thermostat → {t} ✓").unwrap();
        assert_eq!(template.render(&values).unwrap(), "Thermostat → 21° ✓");
    }

    #[test]
    fn a_missing_slot_is_named() {
        let template = Template::parse("lights {room}").unwrap();
        let error = template.render(&BTreeMap::new()).unwrap_err();
        assert_eq!(error, MissingSlot("room".into()));
    }

    #[test]
    fn stray_braces_are_errors_with_their_position() {
        for (text, expected) in [
            (
                "awk {print}x{",
                "character 13 opens a placeholder that is not closed",
            ),
            ("{room", "character 1 opens"),
            ("a{b{c}}", "character 2 opens"),
            ("é}", "character 2 closes no placeholder"),
            ("{}", "names no slot"),
            ("{ }", "names no slot"),
        ] {
            let error = Template::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text}: {error}");
        }
    }
}
