//! The `[actions]` settings: limits and defaults for every intent's action.

use std::path::PathBuf;

use serde::Deserialize;

use super::error::{ActionError, ActionsConfigError};

/// Settings for running actions, ready to embed in `config.toml` as an `[actions]` section.
/// Every key is optional; unknown keys are errors.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ActionsConfig {
    /// Commands running at once. More wait in the queue.
    pub max_concurrent: usize,
    /// Commands waiting for a free slot; past this a command is refused (`refused_busy`), so
    /// a burst of commands cannot pile up behind a slow one.
    pub queue: usize,
    /// The time a command may run when its intent sets no `timeout_ms`; then its process
    /// group is killed.
    pub default_timeout_ms: u64,
    /// The cooldown of an intent that sets no `cooldown_ms`: a repeat of the intent sooner
    /// than this after its last accepted run is skipped. 0 is no cooldown.
    pub default_cooldown_ms: u64,
    /// The directory commands run in; none is the daemon's own working directory.
    pub working_dir: Option<PathBuf>,
    /// Desktop notifications for intents with `notify`.
    pub notifications: bool,
}

impl Default for ActionsConfig {
    fn default() -> Self {
        ActionsConfig {
            max_concurrent: 2,
            queue: 8,
            default_timeout_ms: 30_000,
            default_cooldown_ms: 0,
            working_dir: None,
            notifications: true,
        }
    }
}

impl ActionsConfig {
    /// Checks the values serde cannot: at least one command at a time and a timeout above
    /// zero (a zero timeout would kill every command at once).
    pub fn validate(&self) -> Result<(), ActionsConfigError> {
        let at_least_one = |key| ActionsConfigError {
            key,
            problem: "must be at least 1",
        };
        if self.max_concurrent == 0 {
            return Err(at_least_one("max_concurrent"));
        }
        if self.default_timeout_ms == 0 {
            return Err(at_least_one("default_timeout_ms"));
        }
        Ok(())
    }

    /// Checks that `working_dir`, when set, is a directory now. Separate from `validate`
    /// because it depends on the file system, not on the settings alone.
    pub fn check_working_dir(&self) -> Result<(), ActionError> {
        match &self.working_dir {
            Some(dir) if !dir.is_dir() => Err(ActionError::WorkingDir {
                path: dir.clone(),
                message: "not a directory".into(),
            }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_section_gives_the_defaults() {
        let config: ActionsConfig = toml::from_str("").unwrap();
        assert_eq!(config, ActionsConfig::default());
        config.validate().unwrap();
    }

    #[test]
    fn keys_are_read_and_unknown_keys_refused() {
        let config: ActionsConfig = toml::from_str(
            "max_concurrent = 4\nqueue = 0\ndefault_timeout_ms = 500\n\
             default_cooldown_ms = 1000\nworking_dir = \"/tmp\"\nnotifications = false\n",
        )
        .unwrap();
        assert_eq!(config.max_concurrent, 4);
        assert_eq!(config.queue, 0);
        assert_eq!(config.working_dir, Some(PathBuf::from("/tmp")));
        assert!(!config.notifications);
        let error = toml::from_str::<ActionsConfig>("max_concurent = 4").unwrap_err();
        assert!(error.to_string().contains("max_concurent"), "{error}");
    }

    #[test]
    fn zero_limits_are_refused() {
        for text in ["max_concurrent = 0", "default_timeout_ms = 0"] {
            let config: ActionsConfig = toml::from_str(text).unwrap();
            let error = config.validate().unwrap_err();
            assert_eq!(error.key, text.split(' ').next().unwrap());
            assert!(error.to_string().contains("[actions]"), "{error}");
        }
    }

    #[test]
    fn working_dir_must_be_a_directory() {
        ActionsConfig::default().check_working_dir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut config = ActionsConfig {
            working_dir: Some(dir.path().to_path_buf()),
            ..ActionsConfig::default()
        };
        config.check_working_dir().unwrap();
        config.working_dir = Some(dir.path().join("missing"));
        let error = config.check_working_dir().unwrap_err().to_string();
        assert!(
            error.contains("working_dir") && error.contains("missing"),
            "{error}"
        );
    }
}
