//! The template syntax (hassil's): a sentence template as a tree.
//!
//! - `(a|b|c)` alternatives, `[x]` or `[a|b]` optional parts,
//! - `(a; b; c)` the items in any order (separated by spaces),
//! - `{list}` or `{list:slot}` a value from a list, `<rule>` an expansion rule,
//! - anything else is text; `\` makes the next character text. Punctuation in text separates
//!   words like a space (see `normalize`), so "what's the time?" needs no escaping.
//!
//! A group mixes `|` and `;` only through nesting: `((a|b); c)`.

use std::str::CharIndices;

/// A parsed template. Offsets are byte offsets into the template string, for error messages.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    Text {
        text: String,
        at: usize,
    },
    Seq(Vec<Expr>),
    /// One of the alternatives; an optional part is an alternative with the empty sequence.
    Alt(Vec<Expr>),
    /// All items, in any order; `at` is where the group opens.
    Perm {
        items: Vec<Expr>,
        at: usize,
    },
    List {
        name: String,
        slot: String,
        at: usize,
    },
    Rule {
        name: String,
        at: usize,
    },
}

/// A syntax error at a byte offset of the template.
#[derive(Clone, Debug, PartialEq)]
pub struct TemplateError {
    pub at: usize,
    pub message: String,
}

/// Groups nest at most this deep (the parser recurses once per level).
pub const MAX_NESTING: usize = 32;

/// Parses a whole template.
pub fn parse(template: &str) -> Result<Expr, TemplateError> {
    let mut parser = Parser {
        chars: template.char_indices(),
        depth: 0,
    };
    parser.group(None)
}

struct Parser<'a> {
    chars: CharIndices<'a>,
    depth: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Separator {
    Alternative,
    Permutation,
}

/// The delimiter that closes an open group, and where it was opened.
#[derive(Clone, Copy)]
struct Open {
    close: char,
    at: usize,
}

impl Parser<'_> {
    /// Items up to `open`'s closing delimiter (or the end of the template at the top level),
    /// split by `|` or `;`.
    fn group(&mut self, open: Option<Open>) -> Result<Expr, TemplateError> {
        let mut items = Vec::new();
        let mut current = Vec::new();
        let mut separator = None;
        let mut text = TextRun::default();
        loop {
            let Some((at, c)) = self.chars.next() else {
                return match open {
                    Some(open) => Err(TemplateError {
                        at: open.at,
                        message: format!(
                            "`{}` is never closed: expected `{}` before the end of the template",
                            opening(open.close),
                            open.close
                        ),
                    }),
                    None => {
                        text.flush(&mut current);
                        items.push(Expr::Seq(current));
                        Ok(combine(items, separator, 0))
                    }
                };
            };
            if open.is_some_and(|o| o.close == c) {
                text.flush(&mut current);
                items.push(Expr::Seq(current));
                return Ok(combine(items, separator, open.map_or(0, |o| o.at)));
            }
            match c {
                '(' | '[' => {
                    text.flush(&mut current);
                    if self.depth == MAX_NESTING {
                        return Err(TemplateError {
                            at,
                            message: format!("groups nest more than {MAX_NESTING} deep"),
                        });
                    }
                    let close = if c == '(' { ')' } else { ']' };
                    self.depth += 1;
                    let inner = self.group(Some(Open { close, at }))?;
                    self.depth -= 1;
                    current.push(if c == '[' {
                        Expr::Alt(vec![inner, Expr::Seq(Vec::new())])
                    } else {
                        inner
                    });
                }
                '{' => {
                    text.flush(&mut current);
                    current.push(self.list(at)?);
                }
                '<' => {
                    text.flush(&mut current);
                    let name = self.name(at, '<', '>')?;
                    current.push(Expr::Rule { name, at });
                }
                '|' | ';' => {
                    let this = if c == '|' {
                        Separator::Alternative
                    } else {
                        Separator::Permutation
                    };
                    if separator.is_some_and(|s| s != this) {
                        return Err(TemplateError {
                            at,
                            message: "a group cannot mix `|` and `;`: put the alternatives in \
                                      their own parentheses, as in `((a|b); c)`"
                                .into(),
                        });
                    }
                    separator = Some(this);
                    text.flush(&mut current);
                    items.push(Expr::Seq(std::mem::take(&mut current)));
                }
                ')' | ']' | '}' | '>' => {
                    let expected = match open {
                        Some(o) => format!("expected `{}` or more of the template", o.close),
                        None => "nothing is open here".to_string(),
                    };
                    return Err(TemplateError {
                        at,
                        message: format!("unexpected `{c}`: {expected}"),
                    });
                }
                '\\' => match self.chars.next() {
                    Some((_, escaped)) => text.push(at, escaped),
                    None => {
                        return Err(TemplateError {
                            at,
                            message: "expected a character after `\\`".into(),
                        })
                    }
                },
                _ => text.push(at, c),
            }
        }
    }

    /// `{name}` or `{name:slot}`, after the `{` at `at`.
    fn list(&mut self, at: usize) -> Result<Expr, TemplateError> {
        let inside = self.name(at, '{', '}')?;
        let (name, slot) = match inside.split_once(':') {
            Some((name, slot)) => (name.trim(), slot.trim()),
            None => (inside.as_str(), inside.as_str()),
        };
        if !is_name(name) || !is_name(slot) {
            return Err(TemplateError {
                at,
                message: format!(
                    "expected `{{list}}` or `{{list:slot}}` with names of letters, digits, \
                     `_`, `-` or `.`, got `{{{inside}}}`"
                ),
            });
        }
        Ok(Expr::List {
            name: name.to_string(),
            slot: slot.to_string(),
            at,
        })
    }

    /// The text up to `close`, trimmed, for a reference opened at `at`.
    fn name(&mut self, at: usize, open: char, close: char) -> Result<String, TemplateError> {
        let mut name = String::new();
        for (_, c) in self.chars.by_ref() {
            if c == close {
                let name = name.trim().to_string();
                if open == '<' && !is_name(&name) {
                    return Err(TemplateError {
                        at,
                        message: format!(
                            "expected `<rule>` with a name of letters, digits, `_`, `-` or \
                             `.`, got `<{name}>`"
                        ),
                    });
                }
                return Ok(name);
            }
            name.push(c);
        }
        Err(TemplateError {
            at,
            message: format!("`{open}` is never closed: expected `{close}`"),
        })
    }
}

fn is_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn opening(close: char) -> char {
    match close {
        ')' => '(',
        _ => '[',
    }
}

fn combine(mut items: Vec<Expr>, separator: Option<Separator>, at: usize) -> Expr {
    match separator {
        None => items.pop().unwrap_or(Expr::Seq(Vec::new())),
        Some(Separator::Alternative) => Expr::Alt(items),
        Some(Separator::Permutation) => Expr::Perm { items, at },
    }
}

/// Consecutive text characters, remembered with the offset of the first.
#[derive(Default)]
struct TextRun {
    text: String,
    at: usize,
}

impl TextRun {
    fn push(&mut self, at: usize, c: char) {
        if self.text.is_empty() {
            self.at = at;
        }
        self.text.push(c);
    }

    fn flush(&mut self, into: &mut Vec<Expr>) {
        if !self.text.is_empty() {
            into.push(Expr::Text {
                text: std::mem::take(&mut self.text),
                at: self.at,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(text: &str, at: usize) -> Expr {
        Expr::Text {
            text: text.into(),
            at,
        }
    }

    #[test]
    fn plain_optional_alternatives_and_lists() {
        let parsed = parse("turn (on|off) [the] {room} light[s]").unwrap();
        let expected = Expr::Seq(vec![
            text("turn ", 0),
            Expr::Alt(vec![
                Expr::Seq(vec![text("on", 6)]),
                Expr::Seq(vec![text("off", 9)]),
            ]),
            text(" ", 13),
            Expr::Alt(vec![
                Expr::Seq(vec![text("the", 15)]),
                Expr::Seq(Vec::new()),
            ]),
            text(" ", 19),
            Expr::List {
                name: "room".into(),
                slot: "room".into(),
                at: 20,
            },
            text(" light", 26),
            Expr::Alt(vec![Expr::Seq(vec![text("s", 33)]), Expr::Seq(Vec::new())]),
        ]);
        assert_eq!(parsed, expected);
    }

    #[test]
    fn permutations_rules_and_named_slots() {
        let parsed = parse("(<set>; {level:brightness})").unwrap();
        assert_eq!(
            parsed,
            Expr::Seq(vec![Expr::Perm {
                items: vec![
                    Expr::Seq(vec![Expr::Rule {
                        name: "set".into(),
                        at: 1
                    }]),
                    Expr::Seq(vec![
                        text(" ", 7),
                        Expr::List {
                            name: "level".into(),
                            slot: "brightness".into(),
                            at: 8
                        }
                    ]),
                ],
                at: 0
            }])
        );
    }

    #[test]
    fn escapes_make_text() {
        assert_eq!(parse(r"a\(b").unwrap(), Expr::Seq(vec![text("a(b", 0)]));
    }

    #[test]
    fn errors_point_at_the_problem() {
        let cases = [
            ("turn (on|off light", 5, "never closed"),
            ("turn [on", 5, "expected `]`"),
            ("turn on)", 7, "unexpected `)`"),
            ("(a|b; c)", 4, "cannot mix"),
            ("set {room", 4, "expected `}`"),
            ("set {}", 4, "expected `{list}`"),
            ("set <a b>", 4, "expected `<rule>`"),
            ("end\\", 3, "after `\\`"),
            (&"(".repeat(40), 32, "nest more than"),
        ];
        for (template, at, message) in cases {
            let err = parse(template).unwrap_err();
            assert_eq!(err.at, at, "{template}: {err:?}");
            assert!(err.message.contains(message), "{template}: {err:?}");
        }
    }
}
