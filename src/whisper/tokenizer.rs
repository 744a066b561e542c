//! Whisper byte-level BPE tokenizer and its special tokens.
