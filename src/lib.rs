//! voxd: an offline, real-time voice-command daemon with its own Whisper inference core.
//!
//! See ARCHITECTURE.md at the repository root for the map of modules.

pub mod actions;
pub mod audio;
pub mod bench;
pub mod captions;
pub mod capture;
pub mod command;
pub mod config;
pub mod daemon;
pub mod frontend;
pub mod grammar;
pub use voxd_kernels as kernels;
pub mod llm;
pub mod ops;
pub mod util;
pub mod whisper;
pub mod wyoming;
