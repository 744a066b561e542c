//! Voice-command grammars: TOML files with hassil's template syntax, compiled to a compact
//! character-level graph, matched against text whole or piece by piece.
//!
//! Stages, one file each:
//! - `file.rs`: the TOML files (strict) merged into one specification;
//! - `template.rs`: the template syntax parsed into a tree;
//! - `normalize.rs` and `numbers.rs`: the text form shared by grammar and input, and
//!   numbers as digits and as words;
//! - `compile.rs` and `graph.rs`: lists and ranges as tries, templates as a graph of arcs;
//! - `matcher.rs`: reading text through the graph, whole ([`Grammar::match_text`]) or
//!   incrementally ([`PrefixState`], for constrained decoding);
//! - `sample.rs`: random sentences for `voxd grammar check` and the tests.
//!
//! Ambiguity: when a text matches several ways, the match with the fewest wildcard words
//! wins, then the one whose earlier wildcards are shorter, then the intent that comes first
//! (files in the order given, intents in the order written).

mod compile;
mod error;
mod file;
mod graph;
mod matcher;
pub mod normalize;
pub mod numbers;
mod sample;
pub mod template;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use compile::{MAX_PERMUTATION_ITEMS, MAX_RANGE_VALUES, WAKE_SLOT};
pub use error::{GrammarError, Location};
pub use matcher::PrefixState;
pub use sample::{Sample, WILDCARD_SAMPLE};

use crate::util::rng::Rng;
use file::{GrammarSpec, Origin, ValueSpec};
use graph::Graph;

/// A slot's value: a list's `out` (text or number), a number from a range, or free text.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SlotValue {
    Text(String),
    Integer(i64),
    Float(f64),
}

impl std::fmt::Display for SlotValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SlotValue::Text(s) => f.write_str(s),
            SlotValue::Integer(n) => write!(f, "{n}"),
            SlotValue::Float(x) => write!(f, "{x}"),
        }
    }
}

/// An intent as written: what to do when one of its sentences is heard. Kept as plain data
/// for the action stage.
#[derive(Clone, Debug, PartialEq)]
pub struct Intent {
    pub name: String,
    /// The file it is defined in.
    pub file: PathBuf,
    /// The line its definition starts on, from 1.
    pub line: usize,
    /// Slots every match of this intent carries (`slots = { ... }`).
    pub fixed_slots: BTreeMap<String, SlotValue>,
    /// The command, as argv with `{slot}` placeholders; empty for none.
    pub run: Vec<String>,
    /// A notification text with `{slot}` placeholders.
    pub notify: Option<String>,
    pub cooldown_ms: Option<u64>,
    pub timeout_ms: Option<u64>,
}

/// A text recognised as a sentence of the grammar.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    pub intent: String,
    /// Captured slots: list `out` values, range numbers, wildcard text (normalised words).
    pub slots: BTreeMap<String, SlotValue>,
    /// The intent's fixed slots.
    pub fixed_slots: BTreeMap<String, SlotValue>,
    /// The normalised text with list values in their canonical form (the list's `in` as
    /// written, numbers in digits).
    pub text: String,
    /// The sentence began with the grammar's wake phrase ([`Grammar::from_texts_with_wake`]).
    pub wake: bool,
}

impl Match {
    /// Fixed and captured slots together; a captured slot wins over a fixed one of the same
    /// name.
    pub fn all_slots(&self) -> BTreeMap<String, SlotValue> {
        let mut all = self.fixed_slots.clone();
        all.extend(self.slots.clone());
        all
    }
}

/// The texts of grammar files, paired with their paths, for [`Grammar::from_texts`]. Callers
/// that keep the texts (to tell whether a file changed) read them with this; errors name the
/// file.
pub fn read_files<P: AsRef<Path>>(paths: &[P]) -> Result<Vec<(PathBuf, String)>, GrammarError> {
    paths
        .iter()
        .map(|path| {
            let path = path.as_ref();
            std::fs::read_to_string(path)
                .map(|text| (path.to_path_buf(), text))
                .map_err(|source| GrammarError::Io {
                    path: path.to_path_buf(),
                    source,
                })
        })
        .collect()
}

/// A compiled grammar.
#[derive(Clone, Debug)]
pub struct Grammar {
    intents: Vec<Intent>,
    graph: Graph,
    /// The wake phrase every sentence may begin with, as given.
    wake: Option<String>,
}

impl Grammar {
    /// Reads, merges and compiles grammar files.
    pub fn load<P: AsRef<Path>>(paths: &[P]) -> Result<Grammar, GrammarError> {
        Grammar::from_texts(read_files(paths)?)
    }

    /// Compiles grammar files given as (path for messages, TOML text).
    pub fn from_texts(
        files: impl IntoIterator<Item = (PathBuf, String)>,
    ) -> Result<Grammar, GrammarError> {
        Grammar::from_texts_with_wake(files, None)
    }

    /// Compiles grammar files with a wake phrase: every sentence may begin with it (its
    /// [`Match::wake`] then says so), and the phrase alone is a sentence of no intent
    /// ([`Grammar::is_wake_phrase`]). Numbers and punctuation in it read as in templates.
    pub fn from_texts_with_wake(
        files: impl IntoIterator<Item = (PathBuf, String)>,
        wake: Option<&str>,
    ) -> Result<Grammar, GrammarError> {
        let mut spec = GrammarSpec::default();
        for (path, text) in files {
            spec.add_file(path, text)?;
        }
        if spec.intents.is_empty() {
            return Err(GrammarError::NoIntents);
        }
        let wake_value = wake.map(|phrase| {
            // Errors about the phrase name the setting it comes from.
            let file = spec
                .sources
                .add(PathBuf::from("[commands] wake"), phrase.to_string());
            ValueSpec {
                spoken: phrase.to_string(),
                out: SlotValue::Text(phrase.to_string()),
                origin: Origin {
                    file,
                    span: 0..phrase.len(),
                },
            }
        });
        let graph = compile::compile(&spec, wake_value.as_ref())?;
        let intents = spec
            .intents
            .into_iter()
            .map(|i| Intent {
                name: i.name,
                file: spec.sources.path(i.origin.file).clone(),
                line: spec.sources.locate(i.origin.file, i.origin.span.start).line,
                fixed_slots: i.fixed_slots,
                run: i.run,
                notify: i.notify,
                cooldown_ms: i.cooldown_ms,
                timeout_ms: i.timeout_ms,
            })
            .collect();
        Ok(Grammar {
            intents,
            graph,
            wake: wake.map(str::to_string),
        })
    }

    /// The intents in file order.
    pub fn intents(&self) -> &[Intent] {
        &self.intents
    }

    /// The names of the slots an intent's sentences capture (lists, ranges, wildcards), its
    /// fixed slots not included. One sentence may capture only some of them.
    pub fn captured_slot_names(&self, intent: usize) -> BTreeSet<&str> {
        let entries = self
            .graph
            .sentences
            .iter()
            .filter(|(i, _)| *i as usize == intent)
            .map(|&(_, node)| node);
        self.graph
            .slots_reachable(entries)
            .into_iter()
            .map(|slot| self.graph.slots[slot as usize].as_str())
            .collect()
    }

    /// The number of sentences of an intent, counting each list value and number once and a
    /// wildcard as one; saturates at `u128::MAX`.
    pub fn sentence_count(&self, intent: usize) -> u128 {
        self.graph
            .sentences
            .iter()
            .filter(|(i, _)| *i as usize == intent)
            .fold(0u128, |sum, &(_, node)| {
                sum.saturating_add(self.graph.paths(node))
            })
    }

    /// The number of sentences of the whole grammar (saturating).
    pub fn total_sentence_count(&self) -> u128 {
        (0..self.intents.len()).fold(0u128, |sum, i| sum.saturating_add(self.sentence_count(i)))
    }

    /// A random sentence of an intent; wildcards say [`WILDCARD_SAMPLE`].
    pub fn sample(&self, intent: usize, rng: &mut Rng) -> Option<Sample> {
        let sentences: Vec<_> = self
            .graph
            .sentences
            .iter()
            .filter(|(i, _)| *i as usize == intent)
            .map(|&(_, node)| node)
            .collect();
        sample::sample(&self.graph, intent, &sentences, rng)
    }

    /// The sentence `text` is, if any (see the module's note on ambiguity). The wake phrase
    /// alone is no command's sentence: None.
    pub fn match_text(&self, text: &str) -> Option<Match> {
        let found = matcher::match_text(&self.graph, text)?;
        // The wake phrase alone is numbered after the intents.
        let intent = self.intents.get(found.intent as usize)?;
        let mut slots = found.slots;
        // A sentence of the grammar's own may begin with the phrase's words ("hey computer
        // {question}"): said, they are the phrase all the same.
        let wake = slots.remove(WAKE_SLOT).is_some()
            || self.wake.as_deref().is_some_and(|wake| {
                let wake = normalize::normalize(wake);
                found
                    .text
                    .strip_prefix(wake.as_str())
                    .is_some_and(|rest| rest.starts_with(normalize::BOUNDARY))
            });
        Some(Match {
            intent: intent.name.clone(),
            slots,
            fixed_slots: intent.fixed_slots.clone(),
            text: found.text,
            wake,
        })
    }

    /// The wake phrase the grammar was compiled with.
    pub fn wake_phrase(&self) -> Option<&str> {
        self.wake.as_deref()
    }

    /// The same grammar where the wake phrase alone is no sentence: what follows it must
    /// be a command.
    pub fn without_wake_alone(&self) -> Grammar {
        Grammar {
            intents: self.intents.clone(),
            graph: self.graph.without_accepting(self.intents.len() as u32),
            wake: self.wake.clone(),
        }
    }

    /// True when `text` is the wake phrase and nothing else.
    pub fn is_wake_phrase(&self, text: &str) -> bool {
        self.wake.is_some()
            && matcher::match_text(&self.graph, text)
                .is_some_and(|found| found.intent as usize == self.intents.len())
    }

    /// The state before any text.
    pub fn start(&self) -> PrefixState {
        PrefixState::start(&self.graph)
    }

    /// The state after reading `piece` (any text: a Whisper token with its leading space,
    /// part of a word, digits, capitals, punctuation), or None when no sentence of the
    /// grammar begins with the text read so far.
    pub fn advance(&self, state: &PrefixState, piece: &str) -> Option<PrefixState> {
        state.advance(&self.graph, piece)
    }

    /// True when the text read so far is a whole sentence; [`Grammar::match_text`] on that
    /// text then gives its slots.
    pub fn is_complete(&self, state: &PrefixState) -> bool {
        state.complete_intent(&self.graph).is_some()
    }

    /// True when `text` begins some sentence of the grammar that has more words after it
    /// (an optional part, a longer list value, a number that goes on, a wildcard): a
    /// speaker who stops after `text` may not have finished. False for text that begins
    /// no sentence.
    pub fn goes_on(&self, text: &str) -> bool {
        self.start()
            .advance(&self.graph, text)
            .is_some_and(|state| state.goes_on(&self.graph))
    }

    /// The intent a complete state's sentence belongs to: the first in file order when the
    /// text reads as sentences of several. Wildcard costs are not tracked here;
    /// [`Grammar::match_text`] on the text makes the final choice.
    pub fn complete_intent(&self, state: &PrefixState) -> Option<&Intent> {
        let intent = state.complete_intent(&self.graph)?;
        self.intents.get(intent as usize)
    }
}

#[cfg(test)]
mod tests;
