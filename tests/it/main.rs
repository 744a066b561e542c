//! The integration tests, one module per subject, built as one test binary (one link of the
//! crate instead of one per file). The helpers they share are `tests/common/`. The tests
//! that run in real time against the virtual microphone, the notification bus or process
//! deadlines are the other binary, `tests/live/`.
//!
//! The tests here run side by side on the harness's threads; what they share within the
//! process (a loaded model, a generated data set) is made once, behind a lock.

#[path = "../common/mod.rs"]
mod common;

mod audio_input;
mod bad_input;
mod captions;
mod ct2_int8;
mod decoding;
mod demo;
mod early_close;
mod ggml;
mod grammar;
mod layers;
mod layout;
mod llm_agreement;
mod llm_chat;
mod llm_cli;
mod llm_gguf;
mod llm_tokenizer;
mod model_file_replaced;
mod numerics;
mod ops;
mod quant_reference;
mod real_commands;
mod recognize;
mod reload;
mod remote;
mod reply;
mod segmentation;
mod transcripts;
mod wake;
mod wyoming;
