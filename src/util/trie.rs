//! A character trie mapping strings to numbers, built once and then walked a character at a
//! time: the grammar's lists and ranges (each spoken form to its entry) and the command
//! decoder's vocabulary (each token's text to its id) are both this trie.

/// A node: where its children's edges are, and the value of the string that ends here.
#[derive(Clone, Copy, Debug, Default)]
struct Node {
    /// Its children are `edges[first..first + count]`.
    first: u32,
    count: u32,
    value: Option<u32>,
}

/// Two values given for one string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clash {
    /// The value given first, which the string keeps.
    pub first: u32,
    /// The one given later.
    pub later: u32,
}

/// Node 0 ([`CharTrie::ROOT`]) is the empty string. Built at once from all its strings,
/// every node's children side by side in one array: the decoder's vocabulary is some
/// 100,000 nodes, and a list of children per node cost four times the memory.
#[derive(Clone, Debug)]
pub struct CharTrie {
    nodes: Vec<Node>,
    /// (character, child node) of each node's children, sorted by character.
    edges: Vec<(char, u32)>,
}

impl Default for CharTrie {
    fn default() -> Self {
        CharTrie {
            nodes: vec![Node::default()],
            edges: Vec::new(),
        }
    }
}

impl CharTrie {
    /// The node of the empty string.
    pub const ROOT: u32 = 0;

    /// The trie mapping each string of `entries` to its value. A string given twice keeps
    /// its first value; given with another value, it is a [`Clash`] (the first one met in
    /// the strings' sorted order).
    pub fn from_entries<S: AsRef<str>>(
        entries: impl IntoIterator<Item = (S, u32)>,
    ) -> Result<Self, Clash> {
        let mut entries: Vec<(S, u32)> = entries.into_iter().collect();
        // Stable: a repeated string's first value stays first.
        entries.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        let mut distinct: Vec<(&str, u32)> = Vec::with_capacity(entries.len());
        for (text, value) in &entries {
            match distinct.last() {
                Some(&(last, first)) if last == text.as_ref() => {
                    if first != *value {
                        return Err(Clash {
                            first,
                            later: *value,
                        });
                    }
                }
                _ => distinct.push((text.as_ref(), *value)),
            }
        }
        let mut trie = CharTrie::default();
        trie.fill(Self::ROOT, &distinct, 0);
        trie.nodes.shrink_to_fit();
        trie.edges.shrink_to_fit();
        Ok(trie)
    }

    /// Adds below `node` the strings of `entries` (sorted, distinct, all starting with the
    /// `depth` bytes that spell `node`).
    fn fill(&mut self, node: u32, entries: &[(&str, u32)], depth: usize) {
        let mut rest = entries;
        if let Some((&(text, value), tail)) = rest.split_first() {
            if text.len() == depth {
                self.nodes[node as usize].value = Some(value);
                rest = tail;
            }
        }
        // Each child's character with the entries below it.
        let mut groups: Vec<(char, &[(&str, u32)])> = Vec::new();
        while let Some(&(text, _)) = rest.first() {
            let c = text[depth..]
                .chars()
                .next()
                .expect("longer than the prefix");
            let n = rest.partition_point(|&(t, _)| t[depth..].starts_with(c));
            groups.push((c, &rest[..n]));
            rest = &rest[n..];
        }
        let first = self.edges.len();
        self.nodes[node as usize].first = first as u32;
        self.nodes[node as usize].count = groups.len() as u32;
        for &(c, _) in &groups {
            self.edges.push((c, self.nodes.len() as u32));
            self.nodes.push(Node::default());
        }
        for (i, (c, group)) in groups.into_iter().enumerate() {
            let child = self.edges[first + i].1;
            self.fill(child, group, depth + c.len_utf8());
        }
    }

    /// The node reached from `node` by `c`.
    pub fn child(&self, node: u32, c: char) -> Option<u32> {
        let children = self.children(node);
        children
            .binary_search_by_key(&c, |&(k, _)| k)
            .ok()
            .map(|i| children[i].1)
    }

    /// The children of `node`: (character, node), sorted by character.
    pub fn children(&self, node: u32) -> &[(char, u32)] {
        let n = self.nodes[node as usize];
        &self.edges[n.first as usize..(n.first + n.count) as usize]
    }

    /// The value of the string that ends at `node`.
    pub fn value(&self, node: u32) -> Option<u32> {
        self.nodes[node as usize].value
    }

    /// The number of nodes, the root included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the trie holds no string (not even the empty one).
    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1 && self.value(Self::ROOT).is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_prefixes_share_nodes() {
        assert!(CharTrie::default().is_empty());
        let trie = CharTrie::from_entries([(" on", 1), (" o", 2), (" off", 3), ("on", 4)]).unwrap();
        // root, " ", " o", " on", " of", " off", "o", "on"
        assert_eq!(trie.len(), 8);
        let space = trie.child(CharTrie::ROOT, ' ').unwrap();
        let o = trie.child(space, 'o').unwrap();
        assert_eq!(trie.value(o), Some(2));
        assert_eq!(trie.value(trie.child(o, 'n').unwrap()), Some(1));
        assert_eq!(
            trie.value(trie.child(trie.child(o, 'f').unwrap(), 'f').unwrap()),
            Some(3)
        );
        assert!(trie.value(space).is_none());
        assert!(trie.child(o, 'x').is_none());
        let children: Vec<char> = trie.children(o).iter().map(|&(c, _)| c).collect();
        assert_eq!(children, ['f', 'n'], "children are sorted");
        assert!(!trie.is_empty());
    }

    #[test]
    fn a_string_keeps_its_first_value() {
        let trie = CharTrie::from_entries([("lamp", 1), ("lamp", 1), ("lam", 3)]).unwrap();
        let mut node = CharTrie::ROOT;
        for c in "lamp".chars() {
            node = trie.child(node, c).unwrap();
        }
        assert_eq!(trie.value(node), Some(1));
        assert_eq!(
            CharTrie::from_entries([("lamp", 1), ("lam", 3), ("lamp", 2)]).unwrap_err(),
            Clash { first: 1, later: 2 }
        );
    }

    #[test]
    fn characters_of_several_bytes_and_the_empty_string() {
        let trie = CharTrie::from_entries([("", 0), ("é", 1), ("éa", 2), ("e", 3)]).unwrap();
        assert_eq!(trie.value(CharTrie::ROOT), Some(0));
        let e_acute = trie.child(CharTrie::ROOT, 'é').unwrap();
        assert_eq!(trie.value(e_acute), Some(1));
        assert_eq!(trie.value(trie.child(e_acute, 'a').unwrap()), Some(2));
        assert_eq!(
            trie.value(trie.child(CharTrie::ROOT, 'e').unwrap()),
            Some(3)
        );
        assert_eq!(trie.len(), 4);
    }
}
