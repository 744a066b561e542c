pub mod bpe;
pub mod trie;
