//! Reading normalised text through the graph, one character at a time.
//!
//! A [`Position`] is a place in the graph between two characters: at a node, part way
//! through a text arc, inside a list's trie, or inside a wildcard. Stepping a position by one
//! normalised character gives the positions it can reach. Two readers share this step:
//!
//! - [`PrefixState`], the incremental reader for constrained decoding: a set of positions and
//!   the normaliser's state, advanced by arbitrary pieces of text (Whisper tokens);
//! - [`match_text`], which also keeps, per position, the best path that reached it (fewest
//!   wildcard words, then earlier wildcards shorter) and reads the slots from it.
//!
//! Both read the same characters through the same normaliser, so a text is a complete
//! sentence for one exactly when it is for the other.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

use super::graph::{Graph, Label, NodeId};
use super::normalize::{normalize, Normalizer, BOUNDARY};
use super::SlotValue;
use crate::util::trie::CharTrie;

/// A place in the graph between two characters of input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Position {
    Node(NodeId),
    /// `read` characters into a text arc (never 0 nor all of it).
    InText {
        arc: u32,
        read: u32,
    },
    /// At a node of a vocabulary arc's trie (not its root).
    InVocab {
        arc: u32,
        trie: u32,
    },
    /// Inside a wildcard's text, in a word or just after a boundary.
    InWildcard {
        arc: u32,
        in_word: bool,
    },
}

/// A capture that ends where a position leaves its vocabulary or wildcard arc.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Exit {
    Vocab { arc: u32, entry: u32 },
    Wildcard { arc: u32 },
}

/// What a step did besides moving: a capture ended, one began, a wildcard word began.
#[derive(Clone, Copy, Debug, Default)]
struct StepEvents {
    exit: Option<Exit>,
    enter: bool,
    wildcard_word: Option<u16>,
}

impl Graph {
    fn step(&self, position: Position, symbol: char, emit: &mut impl FnMut(Position, StepEvents)) {
        match position {
            Position::Node(node) => self.leave(node, symbol, None, emit),
            Position::InText { arc, read } => {
                let Label::Text(text) = &self.arcs[arc as usize].label else {
                    return;
                };
                if text.get(read as usize) == Some(&symbol) {
                    emit(
                        self.after_text(arc, read + 1, text.len()),
                        StepEvents::default(),
                    );
                }
            }
            Position::InVocab { arc, trie } => {
                let Label::Vocab { vocab, .. } = self.arcs[arc as usize].label else {
                    return;
                };
                let vocab = &self.vocabs[vocab as usize];
                if let Some(next) = vocab.trie.child(trie, symbol) {
                    emit(Position::InVocab { arc, trie: next }, StepEvents::default());
                }
                if let Some(entry) = vocab.trie.value(trie) {
                    let to = self.arcs[arc as usize].to;
                    self.leave(to, symbol, Some(Exit::Vocab { arc, entry }), emit);
                }
            }
            Position::InWildcard { arc, in_word } => {
                if symbol == BOUNDARY {
                    if in_word {
                        emit(
                            Position::InWildcard {
                                arc,
                                in_word: false,
                            },
                            StepEvents::default(),
                        );
                    }
                } else {
                    let Label::Wildcard { ordinal, .. } = self.arcs[arc as usize].label else {
                        return;
                    };
                    let events = StepEvents {
                        wildcard_word: (!in_word).then_some(ordinal),
                        ..StepEvents::default()
                    };
                    emit(Position::InWildcard { arc, in_word: true }, events);
                }
                if in_word {
                    let to = self.arcs[arc as usize].to;
                    self.leave(to, symbol, Some(Exit::Wildcard { arc }), emit);
                }
            }
        }
    }

    fn after_text(&self, arc: u32, read: u32, len: usize) -> Position {
        if read as usize == len {
            Position::Node(self.arcs[arc as usize].to)
        } else {
            Position::InText { arc, read }
        }
    }

    /// Steps out of `node` by reading `symbol` on one of its arcs.
    fn leave(
        &self,
        node: NodeId,
        symbol: char,
        exit: Option<Exit>,
        emit: &mut impl FnMut(Position, StepEvents),
    ) {
        let plain = StepEvents {
            exit,
            ..StepEvents::default()
        };
        if symbol == BOUNDARY {
            let mut after = Vec::new();
            self.after_boundary(node, &mut after);
            for next in after {
                emit(Position::Node(next), plain);
            }
            return;
        }
        let first = self.nodes[node as usize].arcs.start;
        for (i, arc) in self.arcs(node).iter().enumerate() {
            let id = first + i as u32;
            match &arc.label {
                Label::Text(text) if text.first() == Some(&symbol) => {
                    emit(self.after_text(id, 1, text.len()), plain);
                }
                Label::Vocab { vocab, .. } => {
                    if let Some(trie) = self.vocabs[*vocab as usize]
                        .trie
                        .child(CharTrie::ROOT, symbol)
                    {
                        let events = StepEvents {
                            enter: true,
                            ..plain
                        };
                        emit(Position::InVocab { arc: id, trie }, events);
                    }
                }
                Label::Wildcard { ordinal, .. } => {
                    let events = StepEvents {
                        enter: true,
                        wildcard_word: Some(*ordinal),
                        ..plain
                    };
                    emit(
                        Position::InWildcard {
                            arc: id,
                            in_word: true,
                        },
                        events,
                    );
                }
                Label::Text(_) | Label::Space => {}
            }
        }
    }

    /// The node a position stands at if the input ends here, and the capture that ends
    /// with it; None in the middle of a word or phrase.
    fn settle(&self, position: Position) -> Option<(NodeId, Option<Exit>)> {
        match position {
            Position::Node(node) => Some((node, None)),
            Position::InText { .. } => None,
            Position::InVocab { arc, trie } => {
                let Label::Vocab { vocab, .. } = self.arcs[arc as usize].label else {
                    return None;
                };
                let entry = self.vocabs[vocab as usize].trie.value(trie)?;
                Some((self.arcs[arc as usize].to, Some(Exit::Vocab { arc, entry })))
            }
            Position::InWildcard { arc, in_word } => {
                in_word.then(|| (self.arcs[arc as usize].to, Some(Exit::Wildcard { arc })))
            }
        }
    }

    /// Where reading starts: the start node, and past any boundaries a sentence may begin
    /// with (the input never begins with one).
    fn start_positions(&self) -> Vec<Position> {
        let mut nodes = vec![self.start];
        self.after_boundary(self.start, &mut nodes);
        nodes.into_iter().map(Position::Node).collect()
    }

    /// The intent of a sentence complete at `position`.
    fn complete_at(&self, position: Position) -> Option<(u32, Option<Exit>)> {
        let (node, exit) = self.settle(position)?;
        Some((self.accept_at_end(node)?, exit))
    }
}

/// Where an incremental reading of text stands: every place in the grammar the text read so
/// far can have led to. Small (a few positions of 12 bytes) and cheap to clone.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct PrefixState {
    positions: Vec<Position>,
    normalizer: Normalizer,
}

impl PrefixState {
    pub(super) fn start(graph: &Graph) -> Self {
        PrefixState {
            positions: graph.start_positions(),
            normalizer: Normalizer::default(),
        }
    }

    /// The state after `piece`, or None when no sentence continues this way.
    pub(super) fn advance(&self, graph: &Graph, piece: &str) -> Option<PrefixState> {
        let mut state = self.clone();
        let mut symbols = Vec::new();
        for c in piece.chars() {
            symbols.clear();
            state.normalizer.push(c, &mut |s| symbols.push(s));
            for &symbol in &symbols {
                let mut next = Vec::with_capacity(state.positions.len());
                for &position in &state.positions {
                    graph.step(position, symbol, &mut |p, _| next.push(p));
                }
                next.sort_unstable();
                next.dedup();
                if next.is_empty() {
                    return None;
                }
                state.positions = next;
            }
        }
        Some(state)
    }

    /// The intent of a sentence that is complete here, the first in file order when several
    /// are; None when the text read so far is only the beginning of sentences.
    pub(super) fn complete_intent(&self, graph: &Graph) -> Option<u32> {
        self.positions
            .iter()
            .filter_map(|&p| graph.complete_at(p).map(|(intent, _)| intent))
            .min()
    }

    /// True when another word may follow the text read so far: some sentence of the
    /// grammar begins with this text and goes on past a word boundary. A word that could
    /// still grow ("light" into "lights") does not count: only more words do.
    pub(super) fn goes_on(&self, graph: &Graph) -> bool {
        let mut after = Vec::new();
        for &position in &self.positions {
            graph.step(position, BOUNDARY, &mut |p, _| after.push(p));
        }
        after.into_iter().any(|position| match position {
            Position::Node(node) => graph
                .arcs(node)
                .iter()
                .any(|arc| !matches!(arc.label, Label::Space)),
            // Inside a list value of several words, or between the words of a wildcard.
            Position::InVocab { .. } | Position::InWildcard { .. } => true,
            Position::InText { .. } => false,
        })
    }

    /// The positions (distinct), for callers that bound the state's size.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }
}

/// A path's cost: wildcard words, then how early they sit (words in earlier wildcards cost
/// more, so the first wildcard takes as few words as the rest of the sentence allows).
type Cost = (u32, u64);

#[derive(Clone, Copy, Debug)]
enum Event {
    Enter { at: u32 },
    Exit { exit: Exit, at: u32 },
}

/// The events of a path, newest first, shared between the paths that branch from it.
#[derive(Debug)]
struct Trace {
    event: Event,
    earlier: Option<Rc<Trace>>,
}

#[derive(Clone, Debug, Default)]
struct Path {
    cost: Cost,
    trace: Option<Rc<Trace>>,
}

impl Path {
    fn with(&self, events: StepEvents, at: u32) -> Path {
        let mut path = self.clone();
        if let Some(exit) = events.exit {
            path.push(Event::Exit { exit, at });
        }
        if events.enter {
            path.push(Event::Enter { at });
        }
        if let Some(ordinal) = events.wildcard_word {
            path.cost.0 += 1;
            path.cost.1 += u64::from(u16::MAX - ordinal);
        }
        path
    }

    fn push(&mut self, event: Event) {
        self.trace = Some(Rc::new(Trace {
            event,
            earlier: self.trace.take(),
        }));
    }

    fn events(&self) -> Vec<Event> {
        let mut events = Vec::new();
        let mut trace = self.trace.as_deref();
        while let Some(t) = trace {
            events.push(t.event);
            trace = t.earlier.as_deref();
        }
        events.reverse();
        events
    }
}

/// A sentence read from text: its intent (index), captured slots and canonical text.
#[derive(Clone, Debug, PartialEq)]
pub struct TextMatch {
    pub intent: u32,
    pub slots: BTreeMap<String, SlotValue>,
    pub text: String,
}

/// Reads a whole text; the best complete path, or None.
pub fn match_text(graph: &Graph, text: &str) -> Option<TextMatch> {
    let symbols: Vec<char> = normalize(text).chars().collect();
    let mut paths: Vec<(Position, Path)> = graph
        .start_positions()
        .into_iter()
        .map(|p| (p, Path::default()))
        .collect();
    for (at, &symbol) in symbols.iter().enumerate() {
        let mut next: Vec<(Position, Path)> = Vec::new();
        let mut index: HashMap<Position, usize> = HashMap::new();
        for (position, path) in &paths {
            graph.step(*position, symbol, &mut |p, events| {
                let candidate = path.with(events, at as u32);
                match index.get(&p) {
                    Some(&i) if next[i].1.cost <= candidate.cost => {}
                    Some(&i) => next[i].1 = candidate,
                    None => {
                        index.insert(p, next.len());
                        next.push((p, candidate));
                    }
                }
            });
        }
        if next.is_empty() {
            return None;
        }
        paths = next;
    }
    let end = symbols.len() as u32;
    let (intent, path) = paths
        .iter()
        .filter_map(|(position, path)| {
            let (intent, exit) = graph.complete_at(*position)?;
            let events = StepEvents {
                exit,
                ..StepEvents::default()
            };
            Some((intent, path.with(events, end)))
        })
        .min_by_key(|(intent, path)| (path.cost, *intent))?;
    Some(read_path(graph, intent, &path, &symbols))
}

/// The slots and canonical text of a complete path.
fn read_path(graph: &Graph, intent: u32, path: &Path, symbols: &[char]) -> TextMatch {
    let mut slots = BTreeMap::new();
    let mut text = String::new();
    let (mut copied, mut start) = (0usize, 0usize);
    for event in path.events() {
        match event {
            Event::Enter { at } => start = at as usize,
            Event::Exit { exit, at } => {
                let end = at as usize;
                let (slot, value, canonical) = match exit {
                    Exit::Vocab { arc, entry } => {
                        let Label::Vocab { vocab, slot } = graph.arcs[arc as usize].label else {
                            continue;
                        };
                        let entry = &graph.vocabs[vocab as usize].entries[entry as usize];
                        (slot, entry.value.clone(), entry.forms[0].clone())
                    }
                    Exit::Wildcard { arc } => {
                        let Label::Wildcard { slot, .. } = graph.arcs[arc as usize].label else {
                            continue;
                        };
                        let spoken: String = symbols[start..end].iter().collect();
                        (slot, SlotValue::Text(spoken.clone()), spoken)
                    }
                };
                slots.insert(graph.slots[slot as usize].clone(), value);
                text.extend(&symbols[copied..start]);
                text.push_str(&canonical);
                copied = end;
            }
        }
    }
    text.extend(&symbols[copied..]);
    TextMatch {
        intent,
        slots,
        text,
    }
}
