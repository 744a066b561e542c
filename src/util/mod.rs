//! Small pieces every layer may use; this module depends on nothing else in voxd.

pub mod background;
pub mod bpe;
pub mod paths;
pub mod pretokenize;
pub use voxd_rng as rng;
pub mod trie;
