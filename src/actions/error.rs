//! Errors found while building the action set or starting the runner. What goes wrong
//! while an action runs is an event ([`super::ActionEvent`]), never an error.

use std::path::PathBuf;

/// Where in an intent a placeholder was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionField {
    /// `run`'s argument with this index (0 is the program).
    Run(usize),
    Notify,
}

impl std::fmt::Display for ActionField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ActionField::Run(0) => f.write_str("run's program"),
            ActionField::Run(i) => write!(f, "run argument {i}"),
            ActionField::Notify => f.write_str("notify"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("intent `{intent}`, {field} `{text}`: {message}")]
    Placeholder {
        intent: String,
        field: ActionField,
        text: String,
        message: String,
    },
    #[error(
        "intent `{intent}`, {field}: `{{{placeholder}}}` names no slot of the intent \
         (its slots: {known})"
    )]
    UnknownSlot {
        intent: String,
        field: ActionField,
        placeholder: String,
        /// The intent's slot names, comma-separated, or "none".
        known: String,
    },
    #[error(
        "intent `{intent}`: the program `{program}` may not contain a placeholder; what a \
         command runs is fixed by the grammar, slots only fill its arguments"
    )]
    PlaceholderInProgram { intent: String, program: String },
    #[error("intent `{intent}`: run's program is empty")]
    EmptyProgram { intent: String },
    #[error(
        "intent `{intent}`: slots `{first}` and `{second}` would both be exported as \
         {variable}; rename one"
    )]
    SlotVariableClash {
        intent: String,
        first: String,
        second: String,
        variable: String,
    },
    #[error("intent `{intent}`: timeout_ms must be at least 1")]
    ZeroTimeout { intent: String },
    #[error(
        "an intent is named `{intent}`, the name the wake phrase's action runs under; rename          the intent"
    )]
    WakeNameTaken { intent: String },
    #[error(transparent)]
    Config(#[from] ActionsConfigError),
    #[error("[actions] working_dir {}: {message}", path.display())]
    WorkingDir { path: PathBuf, message: String },
    #[error("cannot start the action threads: {0}")]
    Thread(#[source] std::io::Error),
}

impl ActionError {
    /// The intent whose action is wrong, for errors about one; the caller knows where the
    /// intent is written.
    pub fn intent(&self) -> Option<&str> {
        match self {
            ActionError::Placeholder { intent, .. }
            | ActionError::UnknownSlot { intent, .. }
            | ActionError::PlaceholderInProgram { intent, .. }
            | ActionError::EmptyProgram { intent }
            | ActionError::SlotVariableClash { intent, .. }
            | ActionError::ZeroTimeout { intent }
            | ActionError::WakeNameTaken { intent } => Some(intent),
            ActionError::Config(_) | ActionError::WorkingDir { .. } | ActionError::Thread(_) => {
                None
            }
        }
    }
}

/// A value of `[actions]` that serde accepts but the runner cannot use; `key` lets the
/// config file point at its line.
#[derive(Debug, thiserror::Error)]
#[error("[actions] {key} {problem}")]
pub struct ActionsConfigError {
    pub key: &'static str,
    pub problem: &'static str,
}
