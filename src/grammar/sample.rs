//! Random sentences of a grammar, drawn by walking the graph (never by enumerating it).
//!
//! At each node the walk ends or takes an arc with probability proportional to the number
//! of sentences that way, so sentences come out close to uniformly; a list value is drawn
//! uniformly and spoken in one of its forms (digits or words for a number).

use std::collections::BTreeMap;

use super::graph::{Graph, Label, NodeId};
use super::SlotValue;
use crate::util::rng::Rng;

/// What a wildcard says in a sample sentence.
pub const WILDCARD_SAMPLE: &str = "something";

/// A sentence drawn from the grammar, with the slots it should match with.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub intent: usize,
    pub text: String,
    pub slots: BTreeMap<String, SlotValue>,
}

/// A random sentence of one of `sentences` (their first nodes).
pub fn sample(graph: &Graph, intent: usize, sentences: &[NodeId], rng: &mut Rng) -> Option<Sample> {
    let weights: Vec<f64> = sentences.iter().map(|&n| graph.paths(n) as f64).collect();
    let mut node = sentences[rng.weighted(&weights)?];
    let mut text = String::new();
    let mut slots = BTreeMap::new();
    loop {
        let arcs = graph.arcs(node);
        let mut weights = vec![f64::from(u8::from(graph.accept(node).is_some()))];
        weights.extend(
            arcs.iter()
                .map(|a| graph.weight(&a.label) as f64 * graph.paths(a.to) as f64),
        );
        let choice = rng.weighted(&weights)?;
        if choice == 0 {
            break;
        }
        let arc = &arcs[choice - 1];
        match &arc.label {
            Label::Text(chars) => text.extend(chars.iter()),
            Label::Space => text.push(' '),
            Label::Vocab { vocab, slot } => {
                let entries = &graph.vocabs[*vocab as usize].entries;
                let entry = &entries[rng.below(entries.len())];
                text.push_str(&entry.forms[rng.below(entry.forms.len())]);
                slots.insert(graph.slots[*slot as usize].clone(), entry.value.clone());
            }
            Label::Wildcard { slot, .. } => {
                text.push_str(WILDCARD_SAMPLE);
                slots.insert(
                    graph.slots[*slot as usize].clone(),
                    SlotValue::Text(WILDCARD_SAMPLE.into()),
                );
            }
        }
        node = arc.to;
    }
    Some(Sample {
        intent,
        text: text.split_whitespace().collect::<Vec<_>>().join(" "),
        slots,
    })
}
