//! Whisper: features, tokenizer, model and decoding.

pub mod mel;
pub mod tokenizer;
