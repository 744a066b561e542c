//! The texts of Whisper's tokens as a character trie, built once per model.
//!
//! The constrained decoder walks this trie together with a grammar state: a subtree is
//! visited only while its prefix still continues some sentence, so one walk finds every
//! allowed token without trying all ~50k of them.

use crate::util::trie::CharTrie;
use crate::whisper::tokenizer::Tokenizer;

/// The trie of every regular token's text (below end-of-text) to its id, except `excluded`
/// ones (sorted). Tokens whose bytes are not whole UTF-8 characters are left out: they are
/// pieces of characters no grammar word is spelt with in practice, and reading half a
/// character has no meaning for the grammar.
pub fn token_trie(tokenizer: &Tokenizer, excluded: &[u32]) -> CharTrie {
    let mut trie = CharTrie::new();
    for id in 0..tokenizer.special().eot {
        if excluded.binary_search(&id).is_ok() {
            continue;
        }
        if let Ok(text) = std::str::from_utf8(tokenizer.token_bytes(id)) {
            if !text.is_empty() {
                // Regular tokens are distinct (the tokenizer checks), so no text repeats.
                let _ = trie.insert(text, id);
            }
        }
    }
    trie
}
