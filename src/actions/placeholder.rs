//! `{slot}` placeholders in `run` arguments and `notify` texts.
//!
//! `{name}` stands for the value of slot `name`; `{{` and `}}` are literal braces. Any other
//! brace is an error when the action set is built, so a typo never reaches a command line as
//! text. A value replaces its placeholder as literal text inside the one argument that holds
//! it: `--room={room}` with "living room" is the single argument `--room=living room`. No
//! argument is ever split, joined or interpreted.
//!
//! A value must not turn an argument into an option either: a `run` argument that a slot
//! value would start with `-` (a range's `-5`, a list value `-rf`) is refused, since
//! getopt-style programs read it as an option. It is allowed after a literal `--` argument
//! (the end of options for those programs), or when written `{name:raw}` by a grammar whose
//! program expects such values.

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
    /// A slot's value; `raw` (`{name:raw}`) lets it start an argument with `-`.
    Slot {
        name: String,
        raw: bool,
    },
}

/// The suffix of a placeholder whose value may start an argument with `-`.
const RAW: &str = ":raw";

/// A slot named by a placeholder that the match does not carry: the sentence heard did not
/// capture it and the intent has no fixed value for it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "slot `{0}` was not captured by the sentence heard and the intent has no fixed value \
     for it"
)]
pub struct MissingSlot(pub String);

/// Why a `run` argument could not be filled in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArgumentError {
    #[error(transparent)]
    Missing(#[from] MissingSlot),
    /// The value would start the argument with `-`, and the program could read it as an
    /// option.
    #[error(
        "slot `{slot}` is {value:?}, which would start an argument with `-` that the program \
         could read as an option; put \"--\" before it in run, or write `{{{slot}:raw}}` if \
         the program expects such values"
    )]
    LooksLikeOption { slot: String, value: String },
}

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
                    let inner = placeholder_name(text, at)?;
                    for _ in 0..inner.chars().count() + 1 {
                        chars.next();
                    }
                    if !literal.is_empty() {
                        pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                    }
                    let (name, raw) = match inner.strip_suffix(RAW) {
                        Some(name) if !name.trim().is_empty() => (name, true),
                        _ => (inner, false),
                    };
                    pieces.push(Piece::Slot {
                        name: name.to_string(),
                        raw,
                    });
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
            Piece::Slot { name, .. } => Some(name.as_str()),
            Piece::Literal(_) => None,
        })
    }

    /// Whether the template is exactly `text`, without placeholders.
    pub fn is_literal(&self, text: &str) -> bool {
        matches!(self.pieces.as_slice(), [Piece::Literal(only)] if only == text)
    }

    /// The text with every placeholder replaced by its slot's value.
    pub fn render(&self, slots: &BTreeMap<String, SlotValue>) -> Result<String, MissingSlot> {
        self.fill(slots).map(|(text, _)| text)
    }

    /// One `run` argument: [`Template::render`], refusing a value that would start the
    /// argument with `-` unless `options_ended` (a literal `--` came before) or the
    /// placeholder is `{name:raw}`.
    pub fn render_argument(
        &self,
        slots: &BTreeMap<String, SlotValue>,
        options_ended: bool,
    ) -> Result<String, ArgumentError> {
        match self.fill(slots)? {
            (_, Some((slot, value))) if !options_ended => Err(ArgumentError::LooksLikeOption {
                slot: slot.to_string(),
                value,
            }),
            (text, _) => Ok(text),
        }
    }

    /// The filled-in text, and the slot (not `raw`) whose value starts it with `-`, if one
    /// does, with that value.
    #[allow(clippy::type_complexity)]
    fn fill(
        &self,
        slots: &BTreeMap<String, SlotValue>,
    ) -> Result<(String, Option<(&str, String)>), MissingSlot> {
        let mut out = String::new();
        let mut leading_dash = None;
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.push_str(text),
                Piece::Slot { name, raw } => {
                    let value = slots.get(name).ok_or_else(|| MissingSlot(name.clone()))?;
                    let value = value.to_string();
                    if out.is_empty() && !raw && value.starts_with('-') {
                        leading_dash = Some((name.as_str(), value.clone()));
                    }
                    out.push_str(&value);
                }
            }
        }
        Ok((out, leading_dash))
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
    fn a_value_may_not_start_an_argument_with_a_dash_unless_allowed() {
        let values = slots(&[
            ("level", SlotValue::Integer(-5)),
            ("flags", SlotValue::Text("-rf".into())),
            ("empty", SlotValue::Text(String::new())),
            ("room", SlotValue::Text("hall-way".into())),
        ]);
        let argument = |text: &str, options_ended: bool| {
            Template::parse(text)
                .unwrap()
                .render_argument(&values, options_ended)
        };
        for text in ["{level}", "{flags}", "{empty}{level}", "{level}%"] {
            let err = argument(text, false).unwrap_err();
            assert!(
                matches!(err, ArgumentError::LooksLikeOption { .. }),
                "{text}"
            );
            let message = err.to_string();
            assert!(message.contains("could read as an option"), "{message}");
            assert!(message.contains(":raw}`"), "{message}");
        }
        assert_eq!(
            argument("{level}", false).unwrap_err(),
            ArgumentError::LooksLikeOption {
                slot: "level".into(),
                value: "-5".into()
            }
        );
        // After `--`, written raw, or not at the start, the value is taken as it is.
        assert_eq!(argument("{level}", true).unwrap(), "-5");
        assert_eq!(argument("{level:raw}", false).unwrap(), "-5");
        assert_eq!(argument("--level={level}", false).unwrap(), "--level=-5");
        assert_eq!(argument("x{flags}", false).unwrap(), "x-rf");
        assert_eq!(argument("{room}", false).unwrap(), "hall-way");
        assert_eq!(argument("-{room}", false).unwrap(), "-hall-way");
        // `:raw` names the same slot; notify texts are not arguments.
        let raw = Template::parse("{level:raw} {flags}").unwrap();
        assert_eq!(raw.slot_names().collect::<Vec<_>>(), ["level", "flags"]);
        assert_eq!(raw.render(&values).unwrap(), "-5 -rf");
        assert!(Template::parse("--").unwrap().is_literal("--"));
        assert!(!Template::parse("{level}").unwrap().is_literal("--"));
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
