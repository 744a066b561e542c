//! `config.toml`: the settings a user keeps instead of typing flags.
//!
//! Command-line flags win over the file, and the file over built-in defaults. Unknown keys
//! and wrong types are errors that name the file, the line and the key, so a typo is never
//! silently ignored. The daemon's sections (audio, grammars, actions, LLM) join this file as
//! they are built; `config.toml` at the repository root is the commented example.

use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub model: ModelConfig,
    #[serde(default)]
    pub transcribe: TranscribeConfig,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// A CTranslate2 directory or a ggml file; relative paths are taken from the config
    /// file's folder.
    pub path: Option<PathBuf>,
    /// Compute threads; 0 or absent = one per core.
    pub threads: Option<usize>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranscribeConfig {
    pub language: Option<String>,
    pub beam: Option<usize>,
    /// `full`, `fit` or a number of positions.
    pub audio_ctx: Option<String>,
    /// Fall back to sampling at higher temperatures when a result looks wrong.
    pub fallback: Option<bool>,
    pub timestamps: Option<bool>,
    pub prompt: Option<String>,
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: describe(&text, &e),
        })?;
        if let (Some(model), Some(dir)) = (&config.model.path, path.parent()) {
            config.model.path = Some(dir.join(model));
        }
        if config.transcribe.beam == Some(0) {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                message: "[transcribe] beam must be at least 1".into(),
            });
        }
        Ok(config)
    }

    /// The user's config file, if there is one: `$XDG_CONFIG_HOME/voxd/config.toml` (or
    /// `~/.config/...`) on Linux, `~/Library/Application Support/voxd/config.toml` on macOS.
    pub fn default_path() -> Option<PathBuf> {
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let dir = if cfg!(target_os = "macos") {
            home?.join("Library/Application Support")
        } else {
            std::env::var_os("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .or_else(|| home.map(|h| h.join(".config")))?
        };
        Some(dir.join("voxd/config.toml")).filter(|p| p.exists())
    }
}

/// The parser's message with the line it points at, in words a user can act on.
fn describe(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {message}")
        }
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(&path)
    }

    #[test]
    fn the_repository_example_is_valid() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
        let config = Config::load(&example).unwrap();
        assert_eq!(config.transcribe.beam, Some(5));
    }

    #[test]
    fn unknown_keys_name_the_line_and_key() {
        let err = load_text("[model]\nthreads = 2\n\n[transcribe]\nbeem = 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.toml") && err.contains("line 5") && err.contains("beem"),
            "{err}"
        );
    }

    #[test]
    fn wrong_types_name_the_line() {
        let err = load_text("[model]\nthreads = \"two\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("\"two\""), "{err}");
    }

    #[test]
    fn zero_beam_is_refused() {
        let err = load_text("[transcribe]\nbeam = 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("beam"), "{err}");
    }

    #[test]
    fn model_paths_are_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[model]\npath = \"models/base\"\n").unwrap();
        let config = Config::load(&path).unwrap();
        assert_eq!(config.model.path.unwrap(), dir.path().join("models/base"));
    }

    #[test]
    fn missing_file_names_it() {
        let err = Config::load(Path::new("no/such/config.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no/such/config.toml"), "{err}");
    }
}
