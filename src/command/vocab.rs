//! The texts of Whisper's tokens as a character trie, built once per model.
//!
//! The constrained decoder walks this trie together with a grammar state: a subtree is
//! visited only while its prefix still continues some sentence, so one walk finds every
//! allowed token without trying all ~50k of them.

use crate::whisper::tokenizer::Tokenizer;

/// A node of the trie: its children by character and the token whose text ends here.
#[derive(Clone, Debug, Default)]
pub struct TrieNode {
    /// Sorted by character.
    pub children: Vec<(char, u32)>,
    pub token: Option<u32>,
}

/// The token texts that can appear in a command, as a character trie (node 0 is the root).
#[derive(Clone, Debug)]
pub struct TokenTrie {
    nodes: Vec<TrieNode>,
}

impl TokenTrie {
    /// The trie of every regular token (below end-of-text) except `excluded` ones. Tokens
    /// whose bytes are not whole UTF-8 characters are left out: they are pieces of
    /// characters no grammar word is spelt with in practice, and reading half a character
    /// has no meaning for the grammar.
    pub fn new(tokenizer: &Tokenizer, excluded: &[u32]) -> Self {
        let eot = tokenizer.special().eot;
        let mut trie = TokenTrie {
            nodes: vec![TrieNode::default()],
        };
        for id in 0..eot {
            if excluded.binary_search(&id).is_ok() {
                continue;
            }
            if let Ok(text) = std::str::from_utf8(tokenizer.token_bytes(id)) {
                if !text.is_empty() {
                    trie.insert(text, id);
                }
            }
        }
        trie
    }

    /// A trie of the given (text, id) pairs, for tests on small vocabularies.
    #[cfg(test)]
    pub fn from_texts<'a>(texts: impl IntoIterator<Item = (&'a str, u32)>) -> Self {
        let mut trie = TokenTrie {
            nodes: vec![TrieNode::default()],
        };
        for (text, id) in texts {
            trie.insert(text, id);
        }
        trie
    }

    fn insert(&mut self, text: &str, id: u32) {
        let mut node = 0u32;
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
        self.nodes[node as usize].token = Some(id);
    }

    fn child(&self, node: u32, c: char) -> Option<u32> {
        let children = &self.nodes[node as usize].children;
        children
            .binary_search_by_key(&c, |&(k, _)| k)
            .ok()
            .map(|i| children[i].1)
    }

    pub fn root(&self) -> &TrieNode {
        &self.nodes[0]
    }

    pub fn node(&self, id: u32) -> &TrieNode {
        &self.nodes[id as usize]
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.len() <= 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_prefixes_share_nodes() {
        let trie = TokenTrie::from_texts([(" on", 1), (" o", 2), (" off", 3), ("on", 4)]);
        // root, " ", " o", " on", " of", " off", "o", "on"
        assert_eq!(trie.len(), 8);
        let space = trie.child(0, ' ').unwrap();
        let o = trie.child(space, 'o').unwrap();
        assert_eq!(trie.node(o).token, Some(2));
        assert_eq!(trie.node(trie.child(o, 'n').unwrap()).token, Some(1));
        assert!(trie.node(space).token.is_none());
    }
}
