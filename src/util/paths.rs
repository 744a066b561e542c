//! Where voxd keeps its files, following the platform's conventions: the one place that
//! knows them, used by the config loader, the model look-up, `voxd models`, `voxd doctor`
//! and `voxd install-service`.
//!
//! | what            | Linux (XDG)                                  | macOS                                              |
//! |-----------------|----------------------------------------------|----------------------------------------------------|
//! | config file     | `$XDG_CONFIG_HOME/voxd/config.toml` (`~/.config/...`)   | `~/Library/Application Support/voxd/config.toml` |
//! | models          | `$XDG_DATA_HOME/voxd/models` (`~/.local/share/...`)     | `~/Library/Application Support/voxd/models`      |
//! | user service    | `$XDG_CONFIG_HOME/systemd/user/voxd.service`            | `~/Library/LaunchAgents/org.voxd.voxd.plist`     |
//!
//! The system service (Linux) uses fixed paths instead: [`SYSTEM_CONFIG_FILE`] and
//! [`SYSTEM_MODELS_DIR`]. The `directories` crate reads the environment at every call, so a
//! test (or a user) that sets `XDG_CONFIG_HOME` sees it honoured; it ignores relative XDG
//! values, as the XDG specification asks.

use std::path::{Path, PathBuf};

/// The model voxd uses when nothing names one.
pub const DEFAULT_MODEL: &str = "tiny.en";

/// The reply LLM voxd uses when `[llm] model` names none: a model folder of that name...
pub const DEFAULT_LLM_MODEL: &str = "smollm2";

/// ...and the GGUF file inside it (what `voxd models fetch smollm2` installs).
pub const LLM_MODEL_FILE: &str = "model.gguf";

/// The system service's config file.
pub const SYSTEM_CONFIG_FILE: &str = "/etc/voxd/config.toml";

/// The system service's models (its `StateDirectory=voxd` is `/var/lib/voxd`).
pub const SYSTEM_MODELS_DIR: &str = "/var/lib/voxd/models";

/// The launchd label, also the LaunchAgent file's name.
pub const LAUNCHD_LABEL: &str = "org.voxd.voxd";

fn base() -> Option<directories::BaseDirs> {
    directories::BaseDirs::new()
}

/// The user's home folder.
pub fn home_dir() -> Option<PathBuf> {
    base().map(|b| b.home_dir().to_path_buf())
}

/// voxd's config folder: `$XDG_CONFIG_HOME/voxd` (Linux), `~/Library/Application
/// Support/voxd` (macOS).
pub fn config_dir() -> Option<PathBuf> {
    base().map(|b| b.config_dir().join("voxd"))
}

/// Where the user's config file belongs, whether or not it exists.
pub fn config_file() -> Option<PathBuf> {
    config_dir().map(|d| d.join("config.toml"))
}

/// voxd's data folder: `$XDG_DATA_HOME/voxd` (Linux), `~/Library/Application Support/voxd`
/// (macOS).
pub fn data_dir() -> Option<PathBuf> {
    base().map(|b| b.data_dir().join("voxd"))
}

/// The folder `voxd models fetch` installs into by default.
pub fn models_dir() -> Option<PathBuf> {
    data_dir().map(|d| d.join("models"))
}

/// The models folder of a source checkout, relative to the working directory: what
/// `scripts/setup.sh` fills, so voxd run from the repository finds its models.
pub fn checkout_models_dir() -> PathBuf {
    PathBuf::from("models")
}

/// Where the user's service definition goes: the systemd user unit on Linux, the
/// LaunchAgent on macOS.
pub fn user_service_file() -> Option<PathBuf> {
    if cfg!(target_os = "macos") {
        home_dir().map(|h| {
            h.join("Library/LaunchAgents")
                .join(format!("{LAUNCHD_LABEL}.plist"))
        })
    } else {
        base().map(|b| b.config_dir().join("systemd/user/voxd.service"))
    }
}

/// Where the system unit goes (Linux).
pub fn system_service_file() -> PathBuf {
    PathBuf::from("/etc/systemd/system/voxd.service")
}

/// Where the model is looked for when neither `--model` nor the config names one, in
/// order: `$VOXD_MODEL`, the checkout's `models/tiny.en`, the user's models folder.
pub fn default_model_candidates() -> Vec<PathBuf> {
    if let Some(p) = std::env::var_os("VOXD_MODEL") {
        return vec![PathBuf::from(p)];
    }
    let mut candidates = vec![checkout_models_dir().join(DEFAULT_MODEL)];
    if let Some(dir) = models_dir() {
        candidates.push(dir.join(DEFAULT_MODEL));
    }
    candidates
}

/// The first of [`default_model_candidates`] that exists.
pub fn default_model() -> Result<PathBuf, NoModel> {
    let candidates = default_model_candidates();
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .ok_or(NoModel { candidates })
}

/// No model where voxd looks by default.
#[derive(Debug, thiserror::Error)]
#[error(
    "no model found (looked in {}); pass --model PATH, set [model] path in the config, or \
     install one with `voxd models fetch {DEFAULT_MODEL}`",
    join(candidates)
)]
pub struct NoModel {
    pub candidates: Vec<PathBuf>,
}

/// Where the reply LLM is looked for when `[llm] model` names none, in order: the
/// checkout's `models/smollm2/model.gguf`, then the user's models folder (the same places,
/// in the same order, as the Whisper model's).
pub fn default_llm_model_candidates() -> Vec<PathBuf> {
    let in_folder = |dir: PathBuf| dir.join(DEFAULT_LLM_MODEL).join(LLM_MODEL_FILE);
    let mut candidates = vec![in_folder(checkout_models_dir())];
    candidates.extend(models_dir().map(in_folder));
    candidates
}

/// The first of [`default_llm_model_candidates`] that exists.
pub fn default_llm_model() -> Result<PathBuf, NoLlmModel> {
    let candidates = default_llm_model_candidates();
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .ok_or(NoLlmModel { candidates })
}

/// No reply LLM where voxd looks by default.
#[derive(Debug, thiserror::Error)]
#[error(
    "no reply model found (looked for {}); pass --model PATH, set [llm] model in the \
     config, or install one with `voxd models fetch {DEFAULT_LLM_MODEL}`",
    join(candidates)
)]
pub struct NoLlmModel {
    pub candidates: Vec<PathBuf>,
}

fn join(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `path` made absolute against the working directory (without resolving links, so a
/// path that does not exist yet still comes out).
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test changes the environment; several would race each other in one process.
    #[test]
    fn paths_follow_the_platform_conventions() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("cfg");
        let data = dir.path().join("data");
        // SAFETY: this is the only test in the crate that touches these variables, and no
        // other thread of this test reads them while they change.
        unsafe {
            std::env::set_var("XDG_CONFIG_HOME", &config);
            std::env::set_var("XDG_DATA_HOME", &data);
            std::env::remove_var("VOXD_MODEL");
        }
        if cfg!(target_os = "macos") {
            let home = home_dir().unwrap();
            let support = home.join("Library/Application Support/voxd");
            assert_eq!(config_file().unwrap(), support.join("config.toml"));
            assert_eq!(models_dir().unwrap(), support.join("models"));
        } else {
            assert_eq!(
                config_file().unwrap(),
                config.join("voxd").join("config.toml")
            );
            assert_eq!(models_dir().unwrap(), data.join("voxd").join("models"));
            assert_eq!(
                user_service_file().unwrap(),
                config.join("systemd/user/voxd.service")
            );
        }
        let candidates = default_model_candidates();
        assert_eq!(candidates[0], Path::new("models/tiny.en"));
        assert_eq!(candidates[1], models_dir().unwrap().join("tiny.en"));
        let missing = NoModel { candidates }.to_string();
        assert!(
            missing.contains("models/tiny.en") && missing.contains("voxd models fetch tiny.en"),
            "{missing}"
        );
        let llm = default_llm_model_candidates();
        assert_eq!(llm[0], Path::new("models/smollm2/model.gguf"));
        assert_eq!(
            llm[1],
            models_dir().unwrap().join("smollm2").join("model.gguf")
        );
        let missing = NoLlmModel { candidates: llm }.to_string();
        assert!(
            missing.contains("[llm] model") && missing.contains("voxd models fetch smollm2"),
            "{missing}"
        );
        // A relative XDG value is not a valid one: the home folder's default is used.
        unsafe { std::env::set_var("XDG_CONFIG_HOME", "relative/cfg") };
        if !cfg!(target_os = "macos") {
            let home = home_dir().unwrap();
            assert_eq!(
                config_file().unwrap(),
                home.join(".config/voxd/config.toml")
            );
        }
        unsafe {
            std::env::remove_var("XDG_CONFIG_HOME");
            std::env::remove_var("XDG_DATA_HOME");
        }
    }
}
