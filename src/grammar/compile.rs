//! From parsed grammar files to the graph: lists become tries, templates become arcs.

use crate::util::trie::CharTrie;
use std::collections::HashMap;

use super::error::GrammarError;
use super::file::{GrammarSpec, ListKind, Origin, TemplateSpec, ValueSpec};
use super::graph::{Builder, Entry, Graph, Label, NodeId, Vocab};
use super::normalize::{normalize, Normalizer, BOUNDARY};
use super::numbers;
use super::template::{self, Expr};
use super::SlotValue;

/// Ranges are spelled out into tries; past this many values a trie would cost more memory
/// than a voice command is worth.
pub const MAX_RANGE_VALUES: usize = 10_000;

/// `(a; b; c)` compiles to one branch per order: k! of them.
pub const MAX_PERMUTATION_ITEMS: usize = 6;

/// Rules within rules deeper than this are refused (a chain this long is a mistake).
pub const MAX_RULE_DEPTH: usize = 16;

/// The compiled graph may not grow past this many nodes: rules that use each other twice
/// over double the graph at every level, and that must end in an error, not in exhausted
/// memory.
pub const MAX_GRAPH_NODES: usize = 1_000_000;

/// A list as the templates see it.
#[derive(Clone, Copy)]
enum ListRef {
    Vocab(u32),
    Wildcard,
}

/// The slot the wake phrase is captured as: not a name a template can write (see
/// `template.rs`), so it never meets a grammar's own slot.
pub const WAKE_SLOT: &str = "<wake phrase>";

/// Compiles the grammar. With a `wake` phrase, every sentence may begin with it (an optional
/// prefix, read by one shared arc from the start), and the phrase alone is a sentence of its
/// own, accepted as intent number `spec.intents.len()` (after every real intent, so a tie
/// goes to a command). The phrase is captured as [`WAKE_SLOT`], which tells a match that
/// heard it from one that did not.
pub fn compile(spec: &GrammarSpec, wake: Option<&ValueSpec>) -> Result<Graph, GrammarError> {
    let mut compiler = Compiler {
        spec,
        builder: Builder::new(),
        vocabs: Vec::new(),
        lists: HashMap::new(),
        slots: Vec::new(),
        rules: HashMap::new(),
        rule_stack: Vec::new(),
        wildcards_on_path: 0,
        after_wake: None,
    };
    for (name, list) in &spec.lists {
        let list_ref =
            match &list.kind {
                ListKind::Values(values) => {
                    ListRef::Vocab(compiler.add_vocab(values_vocab(spec, name, values)?))
                }
                ListKind::Range { from, to, step } => ListRef::Vocab(
                    compiler.add_vocab(range_vocab(spec, name, &list.origin, *from, *to, *step)?),
                ),
                ListKind::Wildcard => ListRef::Wildcard,
            };
        compiler.lists.insert(name.as_str(), list_ref);
    }
    for (name, rule) in &spec.rules {
        compiler.parse_rule(name, rule)?;
    }
    if let Some(wake) = wake {
        let vocab = compiler.add_vocab(values_vocab(spec, WAKE_SLOT, std::slice::from_ref(wake))?);
        let slot = compiler.slot(WAKE_SLOT);
        let heard = compiler
            .builder
            .arc(Builder::START, Label::Vocab { vocab, slot });
        compiler
            .builder
            .set_accept(heard, spec.intents.len() as u32);
        compiler.after_wake = Some(compiler.builder.arc(heard, Label::Space));
    }
    let mut sentences = Vec::new();
    for (intent, spec_intent) in spec.intents.iter().enumerate() {
        for template in &spec_intent.sentences {
            let entry = compiler.sentence(intent as u32, template)?;
            sentences.push((intent as u32, entry));
        }
    }
    let Compiler {
        builder,
        vocabs,
        slots,
        ..
    } = compiler;
    Ok(builder.finish(vocabs, slots, sentences))
}

struct Compiler<'a> {
    spec: &'a GrammarSpec,
    builder: Builder,
    vocabs: Vec<Vocab>,
    lists: HashMap<&'a str, ListRef>,
    slots: Vec<String>,
    rules: HashMap<&'a str, Expr>,
    rule_stack: Vec<&'a str>,
    wildcards_on_path: u16,
    /// The node after the wake phrase and its boundary, from which every sentence may
    /// start too (None without a wake phrase).
    after_wake: Option<NodeId>,
}

impl<'a> Compiler<'a> {
    fn add_vocab(&mut self, vocab: Vocab) -> u32 {
        self.vocabs.push(vocab);
        (self.vocabs.len() - 1) as u32
    }

    fn slot(&mut self, name: &str) -> u32 {
        match self.slots.iter().position(|s| s == name) {
            Some(i) => i as u32,
            None => {
                self.slots.push(name.to_string());
                (self.slots.len() - 1) as u32
            }
        }
    }

    /// Compiles one sentence under the start node; returns its first node.
    fn sentence(
        &mut self,
        intent: u32,
        template: &'a TemplateSpec,
    ) -> Result<NodeId, GrammarError> {
        let expr =
            template::parse(&template.text).map_err(|e| self.error(template, e.at, e.message))?;
        let entry = self.builder.node();
        self.builder.epsilon(Builder::START, entry);
        if let Some(after_wake) = self.after_wake {
            self.builder.epsilon(after_wake, entry);
        }
        self.wildcards_on_path = 0;
        let end = self.expr(&expr, entry, template)?;
        if self.builder.reads_nothing(entry, end) {
            return Err(self.error(template, 0, "this sentence can match empty text".into()));
        }
        self.builder.set_accept(end, intent);
        Ok(entry)
    }

    /// Arcs for `expr` from `from`; returns the node where it ends.
    fn expr(
        &mut self,
        expr: &Expr,
        from: NodeId,
        site: &'a TemplateSpec,
    ) -> Result<NodeId, GrammarError> {
        if self.builder.len() > MAX_GRAPH_NODES {
            return Err(self.error(
                site,
                0,
                format!("the grammar grows past {MAX_GRAPH_NODES} graph nodes here"),
            ));
        }
        match expr {
            Expr::Text { text, .. } => Ok(self.text(text, from)),
            Expr::Seq(items) => items
                .iter()
                .try_fold(from, |node, item| self.expr(item, node, site)),
            Expr::Alt(alternatives) => {
                let mut ends = Vec::with_capacity(alternatives.len());
                let wildcards_before = self.wildcards_on_path;
                let mut wildcards_after = wildcards_before;
                for alternative in alternatives {
                    self.wildcards_on_path = wildcards_before;
                    ends.push(self.expr(alternative, from, site)?);
                    wildcards_after = wildcards_after.max(self.wildcards_on_path);
                }
                self.wildcards_on_path = wildcards_after;
                Ok(self.join(&ends))
            }
            Expr::Perm { items, at } => {
                if items.len() > MAX_PERMUTATION_ITEMS {
                    return Err(self.error(
                        site,
                        *at,
                        format!(
                            "a permutation of {} items has too many orders: at most {} items",
                            items.len(),
                            MAX_PERMUTATION_ITEMS
                        ),
                    ));
                }
                let wildcards_before = self.wildcards_on_path;
                let mut ends = Vec::new();
                for order in permutations(items.len()) {
                    self.wildcards_on_path = wildcards_before;
                    let mut node = from;
                    for (i, &item) in order.iter().enumerate() {
                        if i > 0 {
                            node = self.builder.arc(node, Label::Space);
                        }
                        node = self.expr(&items[item], node, site)?;
                    }
                    ends.push(node);
                }
                Ok(self.join(&ends))
            }
            Expr::List { name, slot, at } => {
                let Some(&list) = self.lists.get(name.as_str()) else {
                    return Err(self.error(
                        site,
                        *at,
                        unknown("list", name, self.spec.lists.keys()),
                    ));
                };
                let slot = self.slot(slot);
                let label = match list {
                    ListRef::Vocab(vocab) => Label::Vocab { vocab, slot },
                    ListRef::Wildcard => {
                        self.wildcards_on_path = self.wildcards_on_path.saturating_add(1);
                        Label::Wildcard {
                            slot,
                            ordinal: self.wildcards_on_path - 1,
                        }
                    }
                };
                Ok(self.builder.arc(from, label))
            }
            Expr::Rule { name, at } => self.rule(name, *at, from, site),
        }
    }

    /// A node after all of `ends`.
    fn join(&mut self, ends: &[NodeId]) -> NodeId {
        let end = self.builder.node();
        for &e in ends {
            self.builder.epsilon(e, end);
        }
        end
    }

    /// Inlines expansion rule `name`, refusing a rule that refers to itself.
    fn rule(
        &mut self,
        name: &str,
        at: usize,
        from: NodeId,
        site: &'a TemplateSpec,
    ) -> Result<NodeId, GrammarError> {
        let Some((name, rule)) = self.spec.rules.get_key_value(name) else {
            return Err(self.error(
                site,
                at,
                unknown("expansion rule", name, self.spec.rules.keys()),
            ));
        };
        let name = name.as_str();
        if self.rule_stack.contains(&name) {
            let cycle: Vec<String> = self.rule_stack
                [self.rule_stack.iter().position(|r| *r == name).unwrap_or(0)..]
                .iter()
                .chain([&name])
                .map(|r| format!("<{r}>"))
                .collect();
            return Err(self.error(
                site,
                at,
                format!(
                    "expansion rule <{name}> refers to itself: {}",
                    cycle.join(" → ")
                ),
            ));
        }
        if self.rule_stack.len() >= MAX_RULE_DEPTH {
            return Err(self.error(
                site,
                at,
                format!("expansion rules nest more than {MAX_RULE_DEPTH} deep here"),
            ));
        }
        let expr = self.parse_rule(name, rule)?;
        self.rule_stack.push(name);
        let end = self.expr(&expr, from, rule);
        self.rule_stack.pop();
        end
    }

    /// A rule's template, parsed once (every rule is parsed up front, so a syntax error in
    /// an unused rule is still reported).
    fn parse_rule(&mut self, name: &'a str, rule: &'a TemplateSpec) -> Result<Expr, GrammarError> {
        if let Some(expr) = self.rules.get(name) {
            return Ok(expr.clone());
        }
        let expr = template::parse(&rule.text).map_err(|e| self.error(rule, e.at, e.message))?;
        self.rules.insert(name, expr.clone());
        Ok(expr)
    }

    /// Text: words, boundaries, and numbers in any of their spoken forms.
    fn text(&mut self, text: &str, from: NodeId) -> NodeId {
        let mut normalizer = Normalizer::after_word();
        let mut normalized = String::new();
        for c in text.chars() {
            normalizer.push(c, &mut |n| normalized.push(n));
        }
        let mut node = from;
        if normalized.starts_with(BOUNDARY) {
            node = self.builder.arc(node, Label::Space);
        }
        let words: Vec<&str> = normalized
            .split(BOUNDARY)
            .filter(|w| !w.is_empty())
            .collect();
        for (i, segment) in segments(&words).iter().enumerate() {
            if i > 0 {
                node = self.builder.arc(node, Label::Space);
            }
            node = match segment {
                Segment::Word(word) => self.builder.arc(node, Label::Text(word.chars().collect())),
                Segment::Number { forms } => {
                    let ends: Vec<NodeId> =
                        forms.iter().map(|form| self.phrase(form, node)).collect();
                    self.join(&ends)
                }
            };
        }
        if normalizer.owes_boundary() {
            node = self.builder.arc(node, Label::Space);
        }
        node
    }

    /// Arcs spelling a normalised phrase.
    fn phrase(&mut self, phrase: &str, from: NodeId) -> NodeId {
        let mut node = from;
        for (i, word) in phrase.split(BOUNDARY).enumerate() {
            if i > 0 {
                node = self.builder.arc(node, Label::Space);
            }
            node = self.builder.arc(node, Label::Text(word.chars().collect()));
        }
        node
    }

    fn error(&self, site: &TemplateSpec, at: usize, message: String) -> GrammarError {
        let template = site;
        GrammarError::Invalid {
            location: self.spec.sources.locate_in_string(
                template.origin.file,
                &template.origin.span,
                &template.text,
                at,
            ),
            message,
        }
    }
}

fn unknown<'k>(what: &str, name: &str, known: impl Iterator<Item = &'k String>) -> String {
    let known: Vec<&str> = known.map(String::as_str).collect();
    if known.is_empty() {
        format!("unknown {what} `{name}`: none is defined")
    } else {
        format!(
            "unknown {what} `{name}`: expected one of {}",
            known.join(", ")
        )
    }
}

/// Words as they compile: plain words, and runs of words that spell a number.
#[derive(Debug, PartialEq)]
enum Segment<'w> {
    Word(&'w str),
    /// Every spoken form of the number, the words as written first.
    Number {
        forms: Vec<String>,
    },
}

/// Splits words into plain words and the longest runs that spell one number each.
fn segments<'w>(words: &[&'w str]) -> Vec<Segment<'w>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let number = (i + 1..=words.len())
            .rev()
            .find_map(|end| numbers::parse(&words[i..end]).map(|n| (end, n)));
        match number {
            Some((end, value)) => {
                let mut forms = vec![words[i..end].join(" ")];
                for form in numbers::spoken_forms(value) {
                    if !forms.contains(&form) {
                        forms.push(form);
                    }
                }
                out.push(Segment::Number { forms });
                i = end;
            }
            None => {
                out.push(Segment::Word(words[i]));
                i += 1;
            }
        }
    }
    out
}

/// The phrases a list value can be spoken as: its words, with numbers in any form.
fn phrase_forms(words: &[&str]) -> Vec<String> {
    let mut forms = vec![String::new()];
    for segment in segments(words) {
        let options: Vec<String> = match segment {
            Segment::Word(w) => vec![w.to_string()],
            Segment::Number { forms } => forms,
        };
        forms = forms
            .iter()
            .flat_map(|prefix| {
                options.iter().map(move |o| {
                    if prefix.is_empty() {
                        o.clone()
                    } else {
                        format!("{prefix}{BOUNDARY}{o}")
                    }
                })
            })
            .collect();
    }
    forms
}

fn values_vocab(
    spec: &GrammarSpec,
    name: &str,
    values: &[ValueSpec],
) -> Result<Vocab, GrammarError> {
    let mut vocab = Vocab::default();
    for value in values {
        let normalized = normalize(&value.spoken);
        let words: Vec<&str> = normalized
            .split(BOUNDARY)
            .filter(|w| !w.is_empty())
            .collect();
        if words.is_empty() {
            return Err(spec.error(
                &value.origin,
                format!("list `{name}`: the value `{}` has no words", value.spoken),
            ));
        }
        vocab.entries.push(Entry {
            forms: phrase_forms(&words),
            value: value.out.clone(),
        });
    }
    vocab.trie = CharTrie::from_entries(forms_of(&vocab.entries)).map_err(|clash| {
        let (value, other) = (&values[clash.later as usize], &values[clash.first as usize]);
        let first = spec
            .sources
            .locate(other.origin.file, other.origin.span.start);
        spec.error(
            &value.origin,
            format!(
                "list `{name}`: `{}` sounds the same as `{}` at {first}",
                value.spoken, other.spoken
            ),
        )
    })?;
    Ok(vocab)
}

/// Every spoken form of `entries` with the index of its entry.
fn forms_of(entries: &[Entry]) -> impl Iterator<Item = (&str, u32)> {
    entries
        .iter()
        .enumerate()
        .flat_map(|(id, e)| e.forms.iter().map(move |f| (f.as_str(), id as u32)))
}

fn range_vocab(
    spec: &GrammarSpec,
    name: &str,
    origin: &Origin,
    from: i64,
    to: i64,
    step: i64,
) -> Result<Vocab, GrammarError> {
    let count = (i128::from(to) - i128::from(from)) / i128::from(step) + 1;
    if count > MAX_RANGE_VALUES as i128 {
        return Err(spec.error(
            origin,
            format!(
                "list `{name}`: the range has {count} values, more than the {MAX_RANGE_VALUES} \
                 a grammar spells out; use a larger step or a smaller range"
            ),
        ));
    }
    let mut vocab = Vocab::default();
    for value in (0..count as i64).map(|i| from + i * step) {
        vocab.entries.push(Entry {
            forms: numbers::spoken_forms(value),
            value: SlotValue::Integer(value),
        });
    }
    vocab.trie = CharTrie::from_entries(forms_of(&vocab.entries)).map_err(|clash| {
        spec.error(
            origin,
            format!(
                "list `{name}`: the range's values {} and {} are spoken the same",
                vocab.entries[clash.first as usize].forms[0],
                vocab.entries[clash.later as usize].forms[0]
            ),
        )
    })?;
    Ok(vocab)
}

/// Every order of `n` items.
fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for shorter in permutations(n - 1) {
        for at in 0..=shorter.len() {
            let mut order = shorter.clone();
            order.insert(at, n - 1);
            out.push(order);
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_runs_become_alternatives() {
        let segments = segments(&["set", "to", "twenty", "one", "degrees"]);
        assert_eq!(segments[0], Segment::Word("set"));
        assert_eq!(
            segments[2],
            Segment::Number {
                forms: vec!["twenty one".into(), "21".into()]
            }
        );
        assert_eq!(segments[3], Segment::Word("degrees"));
        assert_eq!(
            phrase_forms(&["channel", "5"]),
            ["channel 5", "channel five"]
        );
    }

    #[test]
    fn permutations_are_every_order() {
        assert_eq!(permutations(3).len(), 6);
        assert_eq!(permutations(3)[0], [0, 1, 2]);
        assert_eq!(permutations(1), [[0]]);
    }
}
