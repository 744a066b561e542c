//! Actions: what a recognised intent does. A command from the intent's `run` argv (never
//! through a shell) and a desktop notification from its `notify` text, both with the match's
//! slot values filled in, run without making audio or recognition wait.
//!
//! One file per concern:
//! - `config.rs`: [`ActionsConfig`], the `[actions]` settings;
//! - `placeholder.rs`: `{slot}` placeholders, parsed and filled in;
//! - `action_set.rs`: [`ActionSet`], every intent's action checked against its slots;
//! - `env.rs`: the `VOXD_*` variables a command gets;
//! - `runner.rs`: [`ActionRunner`], cooldowns, the concurrency limit and its queue;
//! - `process.rs`: one child process, its timeout and its process group;
//! - `output.rs`: a command's output into the log, bounded;
//! - `notify.rs`: notifications on their own thread;
//! - `event.rs`: [`ActionEvent`], every outcome as a value for the daemon's JSON lines.
//!
//! Use: build an [`ActionSet`] from the grammar (errors name the intent and placeholder),
//! start an [`ActionRunner`] with it, and [`ActionRunner::submit`] an [`ActionRequest`] per
//! match; read [`ActionEvent`]s from the receiver `start` returns.

mod action_set;
mod config;
mod env;
mod error;
mod event;
pub mod notify;
pub(crate) mod output;
mod placeholder;
pub(crate) mod process;
mod runner;

use std::collections::BTreeMap;

use crate::grammar::{Match, SlotValue};

pub use action_set::{ActionSet, WAKE_ACTION};
pub use config::ActionsConfig;
pub use error::{ActionError, ActionField, ActionsConfigError};
pub use event::{ActionEvent, ActionEventKind};
pub use runner::ActionRunner;

/// A matched intent to act on.
#[derive(Clone, Debug, PartialEq)]
pub struct ActionRequest {
    pub intent: String,
    /// Every slot: fixed and captured (captured ones win).
    pub slots: BTreeMap<String, SlotValue>,
    /// The text heard, exported as `VOXD_TEXT` when given.
    pub text: Option<String>,
}

impl ActionRequest {
    /// The request for a grammar match: its slots with the fixed ones, and its canonical
    /// text.
    pub fn from_match(found: &Match) -> ActionRequest {
        ActionRequest {
            intent: found.intent.clone(),
            slots: found.all_slots(),
            text: Some(found.text.clone()),
        }
    }
}
