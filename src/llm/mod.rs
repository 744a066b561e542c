//! The reply LLM's file format, tokenizer and chat prompts (LLaMA-family models in GGUF
//! files); the forward pass builds on these.
//!
//! - `gguf.rs`: the GGUF reader (metadata, tensor directory, tensor data read into memory).
//! - `tokenizer.rs`: byte-level BPE and SentencePiece tokenizers built from the metadata.
//! - `chat.rs`: chat prompts (ChatML, Llama 2, Llama 3, plain) chosen from the model's template.

pub mod assistant;
pub mod chat;
pub mod config;
pub mod generate;
pub mod gguf;
pub mod model;
pub mod sampling;
pub mod tokenizer;

#[cfg(test)]
mod test_gguf;
