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
    let texts = (0..tokenizer.special().eot)
        .filter(|id| excluded.binary_search(id).is_err())
        .filter_map(|id| {
            let text = std::str::from_utf8(tokenizer.token_bytes(id)).ok()?;
            (!text.is_empty()).then_some((text, id))
        });
    CharTrie::from_entries(texts).expect("regular tokens are distinct (the tokenizer checks)")
}

/// For every regular token (below end-of-text), whether it writes part of a word: a letter,
/// a digit, or a sign read as a word (`%`, `&`). A token that is part of a character's
/// bytes counts as one too (it can only be the start or rest of more text). The other
/// tokens (punctuation, spaces) end a sentence as well as end-of-text does.
pub fn word_tokens(tokenizer: &Tokenizer) -> Vec<bool> {
    (0..tokenizer.special().eot)
        .map(|id| match std::str::from_utf8(tokenizer.token_bytes(id)) {
            Ok(text) => text
                .chars()
                .any(|c| c.is_alphanumeric() || c == '%' || c == '&'),
            Err(_) => true,
        })
        .collect()
}
