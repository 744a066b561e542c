//! Random sentences of a grammar, drawn by walking the graph (never by enumerating it).
//!
//! At each node the walk ends or takes an arc with probability proportional to the number
//! of sentences that way, so sentences come out close to uniformly; a list value is drawn
//! uniformly and spoken in one of its forms (digits or words for a number).

use std::collections::BTreeMap;

use super::graph::{Graph, Label, NodeId};
use super::SlotValue;

/// What a wildcard says in a sample sentence.
pub const WILDCARD_SAMPLE: &str = "something";

/// A small seeded generator (SplitMix64), so `voxd grammar check` prints the same samples
/// on every run.
#[derive(Clone, Debug)]
pub struct SampleRng(u64);

impl SampleRng {
    pub fn new(seed: u64) -> Self {
        SampleRng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, n), n > 0.
    fn below(&mut self, n: usize) -> usize {
        ((self.unit() * n as f64) as usize).min(n - 1)
    }

    /// An index drawn with probability proportional to its weight; None when all are 0.
    fn weighted(&mut self, weights: &[f64]) -> Option<usize> {
        let total: f64 = weights.iter().sum();
        if total <= 0.0 {
            return None;
        }
        let mut r = self.unit() * total;
        for (i, &w) in weights.iter().enumerate() {
            if r < w {
                return Some(i);
            }
            r -= w;
        }
        weights.iter().rposition(|&w| w > 0.0)
    }
}

/// A sentence drawn from the grammar, with the slots it should match with.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub intent: usize,
    pub text: String,
    pub slots: BTreeMap<String, SlotValue>,
}

/// A random sentence of one of `sentences` (their first nodes).
pub fn sample(
    graph: &Graph,
    intent: usize,
    sentences: &[NodeId],
    rng: &mut SampleRng,
) -> Option<Sample> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generator_is_seeded_and_in_range() {
        let mut a = SampleRng::new(7);
        let mut b = SampleRng::new(7);
        for _ in 0..1000 {
            let x = a.unit();
            assert!((0.0..1.0).contains(&x));
            assert_eq!(x, b.unit());
            assert!(a.below(3) < 3);
            b.below(3);
        }
        assert_eq!(a.weighted(&[0.0, 0.0]), None);
        assert_eq!(a.weighted(&[0.0, 2.0]), Some(1));
    }
}
