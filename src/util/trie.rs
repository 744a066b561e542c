//! A character trie mapping strings to numbers, built once and then walked a character at a
//! time: the grammar's lists and ranges (each spoken form to its entry) and the command
//! decoder's vocabulary (each token's text to its id) are both this trie.

/// A node: its children by character, and the value of the string that ends here.
#[derive(Clone, Debug, Default)]
pub struct TrieNode {
    /// Sorted by character.
    pub children: Vec<(char, u32)>,
    pub value: Option<u32>,
}

/// Node 0 ([`CharTrie::ROOT`]) is the empty string.
#[derive(Clone, Debug)]
pub struct CharTrie {
    nodes: Vec<TrieNode>,
}

impl Default for CharTrie {
    fn default() -> Self {
        Self::new()
    }
}

impl CharTrie {
    /// The node of the empty string.
    pub const ROOT: u32 = 0;

    /// A trie holding nothing.
    pub fn new() -> Self {
        CharTrie {
            nodes: vec![TrieNode::default()],
        }
    }

    /// Maps `text` to `value`. A string keeps the first value it was given: inserting it
    /// again with another value changes nothing and returns that first value.
    pub fn insert(&mut self, text: &str, value: u32) -> Result<(), u32> {
        let mut node = Self::ROOT;
        for c in text.chars() {
            node = match self.child(node, c) {
                Some(next) => next,
                None => {
                    let next = self.nodes.len() as u32;
                    self.nodes.push(TrieNode::default());
                    let children = &mut self.nodes[node as usize].children;
                    let at = children.partition_point(|&(k, _)| k < c);
                    children.insert(at, (c, next));
                    next
                }
            };
        }
        match self.nodes[node as usize].value {
            Some(existing) if existing != value => Err(existing),
            _ => {
                self.nodes[node as usize].value = Some(value);
                Ok(())
            }
        }
    }

    /// The node reached from `node` by `c`.
    pub fn child(&self, node: u32, c: char) -> Option<u32> {
        let children = &self.nodes[node as usize].children;
        children
            .binary_search_by_key(&c, |&(k, _)| k)
            .ok()
            .map(|i| children[i].1)
    }

    pub fn node(&self, id: u32) -> &TrieNode {
        &self.nodes[id as usize]
    }

    pub fn root(&self) -> &TrieNode {
        self.node(Self::ROOT)
    }

    /// The number of nodes, the root included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the trie holds no string (not even the empty one).
    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1 && self.root().value.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_prefixes_share_nodes() {
        let mut trie = CharTrie::new();
        assert!(trie.is_empty());
        for (text, id) in [(" on", 1), (" o", 2), (" off", 3), ("on", 4)] {
            trie.insert(text, id).unwrap();
        }
        // root, " ", " o", " on", " of", " off", "o", "on"
        assert_eq!(trie.len(), 8);
        let space = trie.child(CharTrie::ROOT, ' ').unwrap();
        let o = trie.child(space, 'o').unwrap();
        assert_eq!(trie.node(o).value, Some(2));
        assert_eq!(trie.node(trie.child(o, 'n').unwrap()).value, Some(1));
        assert!(trie.node(space).value.is_none());
        assert!(trie.child(o, 'x').is_none());
        let children: Vec<char> = trie.node(o).children.iter().map(|&(c, _)| c).collect();
        assert_eq!(children, ['f', 'n'], "children are sorted");
    }

    #[test]
    fn a_string_keeps_its_first_value() {
        let mut trie = CharTrie::new();
        trie.insert("lamp", 1).unwrap();
        assert_eq!(trie.insert("lamp", 1), Ok(()));
        assert_eq!(trie.insert("lamp", 2), Err(1));
        let mut node = CharTrie::ROOT;
        for c in "lamp".chars() {
            node = trie.child(node, c).unwrap();
        }
        assert_eq!(trie.node(node).value, Some(1));
    }
}
