//! The reply LLM's file format, tokenizer and chat prompts (LLaMA-family models in GGUF
//! files); the forward pass builds on these.
//!
//! - `gguf.rs`: the GGUF reader (metadata, tensor directory, memory-mapped tensor data).

pub mod gguf;

#[cfg(test)]
mod test_gguf;
