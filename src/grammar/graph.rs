//! The compiled grammar: a character-level graph, never an enumeration of sentences.
//!
//! Arcs read a piece of a word (`Text`, no spaces inside, so "light[s]" is "light" then an
//! optional "s"), a word boundary (`Space`), a value from a list or range (`Vocab`: a
//! character trie of the value's spoken forms, shared by every arc that refers to it) or
//! free text (`Wildcard`). Templates compile to one sub-graph per sentence, hanging from a
//! common start node; permutations become one branch per order, and expansion rules are
//! inlined. Epsilon arcs are removed at the end, so every arc reads something.
//!
//! Every arc goes from a lower node id to a higher one (the builder only ever links to nodes
//! it creates later), so node ids are a topological order: counting and sampling walk them
//! backwards without recursion.

use std::collections::BTreeSet;
use std::ops::Range;

use super::SlotValue;
use crate::util::trie::CharTrie;

pub type NodeId = u32;

#[derive(Clone, Debug)]
pub enum Label {
    /// Normalised word characters, without boundaries.
    Text(Box<[char]>),
    /// One word boundary in the input.
    Space,
    /// A value of `vocabs[vocab]`, captured as `slots[slot]`.
    Vocab { vocab: u32, slot: u32 },
    /// One or more words of free text, captured as `slots[slot]`. `ordinal` counts the
    /// wildcards before this one on its path, for the tie-break between wildcards.
    Wildcard { slot: u32, ordinal: u16 },
}

#[derive(Clone, Debug)]
pub struct Arc {
    pub label: Label,
    pub to: NodeId,
}

#[derive(Clone, Debug)]
pub struct Node {
    /// This node's arcs in `Graph::arcs`.
    pub arcs: Range<u32>,
    /// The intent whose sentence may end here.
    pub accept: Option<u32>,
}

/// A list or range: the character trie of its spoken forms, each ending at its entry's
/// index (`' '` is the boundary between words of a phrase).
#[derive(Clone, Debug, Default)]
pub struct Vocab {
    pub trie: CharTrie,
    pub entries: Vec<Entry>,
}

#[derive(Clone, Debug)]
pub struct Entry {
    /// Normalised spoken forms; the first is the canonical one (the list's `in`, or a
    /// number in digits).
    pub forms: Vec<String>,
    pub value: SlotValue,
}

#[derive(Clone, Debug)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub arcs: Vec<Arc>,
    pub vocabs: Vec<Vocab>,
    pub slots: Vec<String>,
    pub start: NodeId,
    /// Each sentence's intent and first node.
    pub sentences: Vec<(u32, NodeId)>,
    /// Sentences from each node to an end (saturating).
    paths: Vec<u128>,
}

impl Graph {
    pub fn arcs(&self, node: NodeId) -> &[Arc] {
        let range = &self.nodes[node as usize].arcs;
        &self.arcs[range.start as usize..range.end as usize]
    }

    /// The slots captured on any path from `entries` (`slots` indices): what the sentences
    /// starting there can fill in.
    pub fn slots_reachable(&self, entries: impl IntoIterator<Item = NodeId>) -> BTreeSet<u32> {
        let mut seen = vec![false; self.nodes.len()];
        let mut stack: Vec<NodeId> = entries.into_iter().collect();
        let mut slots = BTreeSet::new();
        while let Some(node) = stack.pop() {
            if std::mem::replace(&mut seen[node as usize], true) {
                continue;
            }
            for arc in self.arcs(node) {
                if let Label::Vocab { slot, .. } | Label::Wildcard { slot, .. } = arc.label {
                    slots.insert(slot);
                }
                stack.push(arc.to);
            }
        }
        slots
    }

    pub fn accept(&self, node: NodeId) -> Option<u32> {
        self.nodes[node as usize].accept
    }

    /// The nodes reached from `node` by one input boundary: one or more `Space` arcs (a
    /// skipped optional part leaves two in a row, and the input has one boundary there).
    pub fn after_boundary(&self, node: NodeId, out: &mut Vec<NodeId>) {
        let first = out.len();
        let mut frontier = vec![node];
        while let Some(n) = frontier.pop() {
            for arc in self.arcs(n) {
                if matches!(arc.label, Label::Space) && !out[first..].contains(&arc.to) {
                    out.push(arc.to);
                    frontier.push(arc.to);
                }
            }
        }
    }

    /// The intent a sentence ending at `node` belongs to, counting trailing optional parts
    /// that begin with a space.
    pub fn accept_at_end(&self, node: NodeId) -> Option<u32> {
        if let Some(intent) = self.accept(node) {
            return Some(intent);
        }
        let mut after = Vec::new();
        self.after_boundary(node, &mut after);
        after.iter().filter_map(|&n| self.accept(n)).min()
    }

    /// How many sentences an arc stands for: a list's values, one for everything else.
    pub fn weight(&self, label: &Label) -> u128 {
        match label {
            Label::Vocab { vocab, .. } => self.vocabs[*vocab as usize].entries.len() as u128,
            _ => 1,
        }
    }

    pub fn paths(&self, node: NodeId) -> u128 {
        self.paths[node as usize]
    }

    /// The same graph where no sentence of `intent` ends.
    pub fn without_accepting(&self, intent: u32) -> Graph {
        let mut graph = self.clone();
        for node in &mut graph.nodes {
            if node.accept == Some(intent) {
                node.accept = None;
            }
        }
        graph.paths = count_paths(&graph);
        graph
    }
}

#[derive(Debug, Default)]
struct BuildNode {
    arcs: Vec<Arc>,
    epsilons: Vec<NodeId>,
    accept: Option<u32>,
}

/// Builds a graph with epsilon arcs, then removes them.
#[derive(Debug)]
pub struct Builder {
    nodes: Vec<BuildNode>,
}

impl Builder {
    /// A builder holding the start node (id 0).
    pub fn new() -> Self {
        Builder {
            nodes: vec![BuildNode::default()],
        }
    }

    pub const START: NodeId = 0;

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn node(&mut self) -> NodeId {
        self.nodes.push(BuildNode::default());
        (self.nodes.len() - 1) as NodeId
    }

    /// An arc from `from` to a new node, which it returns.
    pub fn arc(&mut self, from: NodeId, label: Label) -> NodeId {
        let to = self.node();
        self.nodes[from as usize].arcs.push(Arc { label, to });
        to
    }

    pub fn epsilon(&mut self, from: NodeId, to: NodeId) {
        debug_assert!(from < to, "arcs go forward");
        self.nodes[from as usize].epsilons.push(to);
    }

    pub fn set_accept(&mut self, node: NodeId, intent: u32) {
        self.nodes[node as usize].accept = Some(intent);
    }

    /// True when `to` is reachable from `from` reading nothing but boundaries: such a
    /// sentence would match empty text.
    pub fn reads_nothing(&self, from: NodeId, to: NodeId) -> bool {
        let mut seen = vec![false; self.nodes.len()];
        let mut frontier = vec![from];
        while let Some(n) = frontier.pop() {
            if n == to {
                return true;
            }
            if std::mem::replace(&mut seen[n as usize], true) {
                continue;
            }
            let node = &self.nodes[n as usize];
            frontier.extend(&node.epsilons);
            frontier.extend(
                node.arcs
                    .iter()
                    .filter(|a| matches!(a.label, Label::Space))
                    .map(|a| a.to),
            );
        }
        false
    }

    /// The final graph: each node gets the arcs and the acceptance of every node its
    /// epsilon arcs reach.
    pub fn finish(
        self,
        vocabs: Vec<Vocab>,
        slots: Vec<String>,
        sentences: Vec<(u32, NodeId)>,
    ) -> Graph {
        let mut nodes = Vec::with_capacity(self.nodes.len());
        let mut arcs = Vec::new();
        let mut closure = Vec::new();
        let mut seen = vec![u32::MAX; self.nodes.len()];
        for id in 0..self.nodes.len() {
            self.epsilon_closure(id as NodeId, &mut closure, &mut seen);
            let first = arcs.len() as u32;
            let mut accept: Option<u32> = None;
            for &n in &closure {
                let node = &self.nodes[n as usize];
                arcs.extend(node.arcs.iter().cloned());
                accept = match (accept, node.accept) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            nodes.push(Node {
                arcs: first..arcs.len() as u32,
                accept,
            });
        }
        let mut graph = Graph {
            nodes,
            arcs,
            vocabs,
            slots,
            start: Self::START,
            sentences,
            paths: Vec::new(),
        };
        graph.paths = count_paths(&graph);
        graph
    }

    /// The nodes reachable from `id` by epsilon arcs, `id` included, in `closure`.
    /// `seen[n] == id` marks the nodes already in it.
    fn epsilon_closure(&self, id: NodeId, closure: &mut Vec<NodeId>, seen: &mut [u32]) {
        closure.clear();
        closure.push(id);
        seen[id as usize] = id;
        let mut i = 0;
        while i < closure.len() {
            for &next in &self.nodes[closure[i] as usize].epsilons {
                if seen[next as usize] != id {
                    seen[next as usize] = id;
                    closure.push(next);
                }
            }
            i += 1;
        }
    }
}

/// Sentences from every node to an end, last node first (ids are topological).
fn count_paths(graph: &Graph) -> Vec<u128> {
    let mut paths = vec![0u128; graph.nodes.len()];
    for id in (0..graph.nodes.len()).rev() {
        let mut count = u128::from(graph.nodes[id].accept.is_some());
        for arc in graph.arcs(id as NodeId) {
            count = count.saturating_add(
                graph
                    .weight(&arc.label)
                    .saturating_mul(paths[arc.to as usize]),
            );
        }
        paths[id] = count;
    }
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Label {
        Label::Text(s.chars().collect())
    }

    #[test]
    fn epsilons_are_removed_and_paths_counted() {
        // "a [b] c" for intent 0, "d" for intent 1.
        let mut b = Builder::new();
        let entry = b.node();
        b.epsilon(Builder::START, entry);
        let after_a = b.arc(entry, text("a"));
        let after_b = b.arc(after_a, text("b"));
        let join = b.node();
        b.epsilon(after_a, join);
        b.epsilon(after_b, join);
        let end = b.arc(join, text("c"));
        b.set_accept(end, 0);
        let entry2 = b.node();
        b.epsilon(Builder::START, entry2);
        let end2 = b.arc(entry2, text("d"));
        b.set_accept(end2, 1);
        assert!(!b.reads_nothing(entry, end));
        let graph = b.finish(Vec::new(), Vec::new(), vec![(0, entry), (1, entry2)]);
        assert_eq!(graph.arcs(graph.start).len(), 2);
        assert_eq!(graph.arcs(after_a).len(), 2, "b, or c through the epsilon");
        assert_eq!(graph.paths(graph.start), 3);
        assert_eq!(graph.paths(entry), 2);
        assert_eq!(graph.accept(end2), Some(1));
    }
}
