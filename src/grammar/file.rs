//! Grammar files: TOML in, plain specifications out.
//!
//! Parsing is strict (unknown keys and wrong types are errors with file, line and column).
//! Several files merge into one grammar: intents, lists and expansion rules share one
//! namespace each, and a name defined twice is an error naming both places.

use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::PathBuf;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use super::error::{FileId, GrammarError, Sources};
use super::SlotValue;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDef {
    #[serde(default)]
    intents: BTreeMap<String, Spanned<IntentDef>>,
    #[serde(default)]
    lists: BTreeMap<String, Spanned<ListDef>>,
    #[serde(default)]
    expansion_rules: BTreeMap<String, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntentDef {
    sentences: Vec<Spanned<String>>,
    #[serde(default)]
    slots: BTreeMap<String, ValueDef>,
    #[serde(default)]
    run: Vec<String>,
    notify: Option<String>,
    cooldown_ms: Option<u64>,
    timeout_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListDef {
    values: Option<Vec<Spanned<EntryDef>>>,
    range: Option<RangeDef>,
    wildcard: Option<bool>,
    /// `extend = true`: the values are added to the list of that name defined in an earlier
    /// file (a user's own names beside the examples' lists, without copying them).
    #[serde(default)]
    extend: bool,
}

/// A list value: `"text"` or `{ in = "text", out = value }`. Deserialized by hand (not as an
/// untagged enum) so that errors inside the table keep their line and column.
enum EntryDef {
    Plain(String),
    Mapped(MappedDef),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MappedDef {
    #[serde(rename = "in")]
    spoken: String,
    out: ValueDef,
}

impl<'de> Deserialize<'de> for EntryDef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = EntryDef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a table `{ in = \"...\", out = ... }`")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<EntryDef, E> {
                Ok(EntryDef::Plain(s.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<EntryDef, A::Error> {
                MappedDef::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(EntryDef::Mapped)
            }
        }
        deserializer.deserialize_any(EntryVisitor)
    }
}

/// A slot value in a file: a string or a number.
enum ValueDef {
    Integer(i64),
    Float(f64),
    Text(String),
}

impl<'de> Deserialize<'de> for ValueDef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl Visitor<'_> for ValueVisitor {
            type Value = ValueDef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<ValueDef, E> {
                Ok(ValueDef::Integer(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<ValueDef, E> {
                i64::try_from(n)
                    .map(ValueDef::Integer)
                    .map_err(|_| E::custom(format!("{n} is too large")))
            }
            fn visit_f64<E: de::Error>(self, x: f64) -> Result<ValueDef, E> {
                Ok(ValueDef::Float(x))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ValueDef, E> {
                Ok(ValueDef::Text(s.to_string()))
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RangeDef {
    from: i64,
    to: i64,
    #[serde(default = "one")]
    step: i64,
}

fn one() -> i64 {
    1
}

impl From<ValueDef> for SlotValue {
    fn from(value: ValueDef) -> Self {
        match value {
            ValueDef::Integer(n) => SlotValue::Integer(n),
            ValueDef::Float(x) => SlotValue::Float(x),
            ValueDef::Text(s) => SlotValue::Text(s),
        }
    }
}

/// Where a definition is: its file and the byte span of its TOML value.
#[derive(Clone, Debug)]
pub struct Origin {
    pub file: FileId,
    pub span: Range<usize>,
}

/// A template string and where it is written.
#[derive(Clone, Debug)]
pub struct TemplateSpec {
    pub text: String,
    pub origin: Origin,
}

#[derive(Debug)]
pub struct IntentSpec {
    pub name: String,
    pub origin: Origin,
    pub sentences: Vec<TemplateSpec>,
    pub fixed_slots: BTreeMap<String, SlotValue>,
    pub run: Vec<String>,
    pub notify: Option<String>,
    pub cooldown_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
}

#[derive(Debug)]
pub struct ListSpec {
    pub origin: Origin,
    pub kind: ListKind,
}

#[derive(Debug)]
pub enum ListKind {
    Values(Vec<ValueSpec>),
    Range { from: i64, to: i64, step: i64 },
    Wildcard,
}

/// One list value: what is spoken, and the slot value it gives.
#[derive(Debug)]
pub struct ValueSpec {
    pub spoken: String,
    pub out: SlotValue,
    pub origin: Origin,
}

/// All grammar files, merged.
#[derive(Debug, Default)]
pub struct GrammarSpec {
    pub sources: Sources,
    /// In file order: files as given, intents as written in each file.
    pub intents: Vec<IntentSpec>,
    pub lists: BTreeMap<String, ListSpec>,
    pub rules: BTreeMap<String, TemplateSpec>,
}

impl GrammarSpec {
    /// Parses one file's text and merges it in.
    pub fn add_file(&mut self, path: PathBuf, text: String) -> Result<(), GrammarError> {
        let file = self.sources.add(path, text);
        let def: FileDef = toml::from_str(self.sources.text(file)).map_err(|e| {
            let offset = e.span().map_or(0, |s| s.start);
            self.sources.error(file, offset, e.message().trim())
        })?;
        let origin = |span: Range<usize>| Origin { file, span };

        let mut intents: Vec<_> = def.intents.into_iter().collect();
        intents.sort_by_key(|(_, def)| def.span().start);
        for (name, def) in intents {
            let here = origin(def.span());
            if let Some(other) = self.intents.iter().find(|i| i.name == name) {
                return Err(self.duplicate("intent", &name, &here, &other.origin));
            }
            let def = def.into_inner();
            if def.sentences.is_empty() {
                return Err(self.error(&here, format!("intent `{name}` has no sentences")));
            }
            self.intents.push(IntentSpec {
                name,
                origin: here,
                sentences: def
                    .sentences
                    .into_iter()
                    .map(|s| TemplateSpec {
                        origin: origin(s.span()),
                        text: s.into_inner(),
                    })
                    .collect(),
                fixed_slots: def.slots.into_iter().map(|(k, v)| (k, v.into())).collect(),
                run: def.run,
                notify: def.notify,
                cooldown_ms: def.cooldown_ms,
                timeout_ms: def.timeout_ms,
            });
        }

        for (name, def) in def.lists {
            let here = origin(def.span());
            let def = def.into_inner();
            if def.extend {
                self.extend_list(&name, &here, def, file)?;
                continue;
            }
            if let Some(other) = self.lists.get(&name) {
                return Err(self.duplicate("list", &name, &here, &other.origin));
            }
            let kind = self.list_kind(&name, &here, def, file)?;
            self.lists.insert(name, ListSpec { origin: here, kind });
        }

        for (name, def) in def.expansion_rules {
            let here = origin(def.span());
            if let Some(other) = self.rules.get(&name) {
                return Err(self.duplicate("expansion rule", &name, &here, &other.origin));
            }
            self.rules.insert(
                name,
                TemplateSpec {
                    text: def.into_inner(),
                    origin: here,
                },
            );
        }
        Ok(())
    }

    /// Adds the values of an `extend = true` list to the values list of that name defined
    /// before (in an earlier file or earlier in this one).
    fn extend_list(
        &mut self,
        name: &str,
        here: &Origin,
        def: ListDef,
        file: FileId,
    ) -> Result<(), GrammarError> {
        let ListKind::Values(added) = self.list_kind(name, here, def, file)? else {
            return Err(self.error(
                here,
                format!("list `{name}`: `extend = true` takes `values = [...]` only"),
            ));
        };
        match self.lists.get_mut(name) {
            Some(ListSpec {
                kind: ListKind::Values(values),
                ..
            }) => {
                values.extend(added);
                Ok(())
            }
            Some(_) => Err(self.error(
                here,
                format!("list `{name}`: only a list of `values` can be extended"),
            )),
            None => Err(self.error(
                here,
                format!(
                    "list `{name}`: `extend = true` needs a list `{name}` with values in an \
                     earlier file"
                ),
            )),
        }
    }

    fn list_kind(
        &self,
        name: &str,
        here: &Origin,
        def: ListDef,
        file: FileId,
    ) -> Result<ListKind, GrammarError> {
        match (def.values, def.range, def.wildcard) {
            (Some(values), None, None) => Ok(ListKind::Values(
                values
                    .into_iter()
                    .map(|v| {
                        let origin = Origin {
                            file,
                            span: v.span(),
                        };
                        let (spoken, out) = match v.into_inner() {
                            EntryDef::Plain(s) => (s.clone(), SlotValue::Text(s)),
                            EntryDef::Mapped(m) => (m.spoken, m.out.into()),
                        };
                        ValueSpec {
                            spoken,
                            out,
                            origin,
                        }
                    })
                    .collect(),
            )),
            (None, Some(RangeDef { from, to, step }), None) => {
                if step <= 0 || from > to {
                    return Err(self.error(
                        here,
                        format!(
                            "list `{name}`: a range needs `from` <= `to` and a positive \
                             `step`, got from = {from}, to = {to}, step = {step}"
                        ),
                    ));
                }
                Ok(ListKind::Range { from, to, step })
            }
            (None, None, Some(true)) => Ok(ListKind::Wildcard),
            _ => Err(self.error(
                here,
                format!(
                    "list `{name}`: expected exactly one of `values = [...]`, \
                     `range = {{ from, to, step }}` or `wildcard = true`"
                ),
            )),
        }
    }

    pub fn error(&self, origin: &Origin, message: String) -> GrammarError {
        self.sources.error(origin.file, origin.span.start, message)
    }

    fn duplicate(&self, what: &str, name: &str, here: &Origin, first: &Origin) -> GrammarError {
        let first = self.sources.locate(first.file, first.span.start);
        self.error(
            here,
            format!("{what} `{name}` is defined twice: first at {first}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(files: &[(&str, &str)]) -> Result<GrammarSpec, GrammarError> {
        let mut spec = GrammarSpec::default();
        for (path, text) in files {
            spec.add_file(path.into(), text.to_string())?;
        }
        Ok(spec)
    }

    #[test]
    fn a_file_with_every_kind_of_definition() {
        let spec = spec(&[(
            "g.toml",
            r#"
[intents.Second]
sentences = ["b"]

[intents.First]
sentences = ["turn on {room}"]
slots = { domain = "light", level = 3, gain = 0.5 }
run = ["lightctl", "on", "{room}"]
notify = "Lights on in the {room}"
cooldown_ms = 500

[lists.room]
values = ["kitchen", { in = "bed room", out = "bedroom" }, { in = "two", out = 2 }]

[lists.level]
range = { from = 0, to = 100 }

[lists.anything]
wildcard = true

[expansion_rules]
the = "[the]"
"#,
        )])
        .unwrap();
        let names: Vec<_> = spec.intents.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["Second", "First"], "file order, not alphabetical");
        let first = &spec.intents[1];
        assert_eq!(first.fixed_slots["level"], SlotValue::Integer(3));
        assert_eq!(first.fixed_slots["gain"], SlotValue::Float(0.5));
        assert_eq!(first.cooldown_ms, Some(500));
        assert_eq!(first.timeout_ms, None);
        let ListKind::Values(values) = &spec.lists["room"].kind else {
            panic!("values expected")
        };
        assert_eq!(values[1].out, SlotValue::Text("bedroom".into()));
        assert_eq!(values[2].out, SlotValue::Integer(2));
        assert!(matches!(
            spec.lists["level"].kind,
            ListKind::Range {
                from: 0,
                to: 100,
                step: 1
            }
        ));
        assert!(matches!(spec.lists["anything"].kind, ListKind::Wildcard));
        assert_eq!(spec.rules["the"].text, "[the]");
    }

    #[test]
    fn strictness_and_duplicates() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("a.toml", "[intents.X]\nsentences = [\"x\"]\nrum = []\n")],
                "a.toml:3:1: unknown field `rum`",
            ),
            (
                &[("a.toml", "[intents.X]\nsentences = \"x\"\n")],
                "a.toml:2:13: invalid type",
            ),
            (
                &[("a.toml", "[lists.l]\nvalues = [\"a\", { in = \"b\" }]\n")],
                "a.toml:2:16: missing field `out`",
            ),
            (
                &[("a.toml", "[lists.l]\nvalues = [\"a\", 5]\n")],
                "a.toml:2:16: invalid type: integer `5`, expected a string or a table",
            ),
            (
                &[(
                    "a.toml",
                    "[lists.l]\nvalues = [{ in = \"b\", out = true }]\n",
                )],
                "a.toml:2:29: invalid type: boolean `true`, expected a string or a number",
            ),
            (
                &[("a.toml", "[lists.l]\nvalues = [\"a\"]\nwildcard = true\n")],
                "exactly one of",
            ),
            (
                &[("a.toml", "[lists.l]\nrange = { from = 5, to = 1 }\n")],
                "from = 5, to = 1",
            ),
            (
                &[("a.toml", "[intents.X]\nsentences = []\n")],
                "has no sentences",
            ),
            (
                &[
                    ("a.toml", "[lists.room]\nvalues = [\"a\"]\n"),
                    ("b.toml", "\n[lists.room]\nvalues = [\"b\"]\n"),
                ],
                "b.toml:2:1: list `room` is defined twice: first at a.toml:1:1",
            ),
        ];
        for (files, expected) in cases {
            let err = spec(files).unwrap_err().to_string();
            assert!(err.contains(expected), "expected {expected:?} in {err:?}");
        }
    }
}
