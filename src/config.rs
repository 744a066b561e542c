//! `config.toml`: the settings a user keeps instead of typing flags.
//!
//! Command-line flags win over the file, and the file over built-in defaults. Unknown keys
//! and wrong types are errors that name the file, the line and the key, so a typo is never
//! silently ignored. `config.toml` at the repository root is the commented example.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::actions::ActionsConfig;
use crate::frontend::{FrontEndConfig, SegmentConfigError, VadConfigError, WindowConfig};
pub use crate::llm::config::{LlmConfig, LlmLoad};

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
    #[serde(default)]
    pub audio: AudioConfig,
    #[serde(default)]
    pub vad: VadSection,
    #[serde(default)]
    pub segment: SegmentSection,
    #[serde(default)]
    pub captions: CaptionsSection,
    #[serde(default)]
    pub commands: CommandsSection,
    #[serde(default)]
    pub actions: ActionsConfig,
    #[serde(default)]
    pub run: RunSection,
    #[serde(default)]
    pub events: EventsSection,
    #[serde(default)]
    pub llm: LlmConfig,
    /// The file this config was read from, and its text (None for the defaults): a setting
    /// found wrong only when it is used (a grammar file or a model that is missing) is
    /// reported with the file and the line that set it.
    #[serde(skip)]
    file: Option<(PathBuf, String)>,
}

/// `[run]`: what `voxd run` does.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSection {
    pub mode: Option<RunMode>,
    /// Log level (error, warn, info, debug, trace); `--log` and `VOXD_LOG` win.
    pub log: Option<String>,
}

/// What the daemon listens for.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    /// Voice commands from the grammars.
    #[default]
    Commands,
    /// Live captions of everything said.
    Captions,
    /// Both at once, on one model.
    Both,
}

impl RunMode {
    pub fn commands(self) -> bool {
        self != RunMode::Captions
    }

    pub fn captions(self) -> bool {
        self != RunMode::Commands
    }
}

/// `[events]`: where the daemon's JSON lines go.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsSection {
    pub stdout: Option<StdoutFormat>,
    /// Appended to, one JSON object per line; relative paths are taken from the config
    /// file's folder.
    pub file: Option<PathBuf>,
    /// A Unix socket (mode 0600) that any number of clients may connect to and read.
    pub socket: Option<PathBuf>,
}

/// How events appear on standard output.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum StdoutFormat {
    /// `text` on a terminal, `json` otherwise.
    #[default]
    Auto,
    /// One JSON object per line.
    Json,
    /// For people: the caption line redrawn as it changes, commands as they happen.
    Text,
    /// Nothing.
    Off,
}

/// `[audio]`: the capture device.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudioConfig {
    /// `default`, a device index from `voxd devices`, or part of a device's name.
    pub device: Option<String>,
    /// Capture rate in Hz; absent = the device's default.
    pub rate: Option<u32>,
    /// Capture channels; absent = the device's default.
    pub channels: Option<u16>,
    /// Audio per driver period, ms; 0 = the driver's choice.
    pub buffer_ms: Option<u32>,
}

/// `[vad]`: frame-level voice activity (see `frontend::vad`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VadSection {
    pub frame_ms: Option<u32>,
    pub aggressiveness: Option<u8>,
    pub earshot_threshold: Option<f32>,
    pub energy_floor_db: Option<f32>,
    pub noise_margin_db: Option<f32>,
    pub noise_window_ms: Option<u32>,
}

/// `[segment]`: how speech is cut into utterances (see `frontend::segment`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentSection {
    pub min_speech_ms: Option<u32>,
    pub end_silence_ms: Option<u32>,
    pub preroll_ms: Option<u32>,
    pub tail_ms: Option<u32>,
    pub max_utterance_ms: Option<u32>,
}

/// `[captions]`: the sliding window the caption decoder reads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptionsSection {
    pub window_ms: Option<u32>,
    pub step_ms: Option<u32>,
    /// Stream that must follow a caption segment before it is final (`CaptionOptions`).
    pub settle_ms: Option<u32>,
    /// WebVTT file the final captions are appended to as they arrive.
    pub vtt: Option<PathBuf>,
    /// SRT file, likewise.
    pub srt: Option<PathBuf>,
}

/// `[commands]`: the grammars and how sure recognition must be before it acts (see
/// `command::reject`). [`Config::commands`] applies the defaults.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandsSection {
    /// Grammar files, merged in this order; relative paths are taken from the config file's
    /// folder.
    pub grammars: Option<Vec<PathBuf>>,
    pub beam: Option<usize>,
    pub max_gap: Option<f32>,
    pub min_score: Option<f32>,
    pub max_no_speech: Option<f32>,
}

/// The widest command beam: every beam is one more decoder sequence per step, and past a
/// few the grammar already keeps the candidates apart.
const MAX_COMMAND_BEAM: usize = 32;

/// The `[commands]` settings with the defaults applied, as plain values for the recogniser.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandsSettings {
    /// Grammar files, merged in this order.
    pub grammars: Vec<PathBuf>,
    /// Beam width of the constrained search.
    pub beam: usize,
    /// Largest gap (nats the grammar overruled the model by) that still accepts.
    pub max_gap: f32,
    /// Smallest mean log-probability per token that still accepts.
    pub min_score: f32,
    /// Largest no-speech probability that still accepts.
    pub max_no_speech: f32,
}

impl Default for CommandsSettings {
    /// The recogniser's own defaults.
    fn default() -> Self {
        let options = crate::command::RecognizerOptions::default();
        CommandsSettings {
            grammars: Vec::new(),
            beam: options.beam_size,
            max_gap: options.thresholds.max_gap,
            min_score: options.thresholds.min_avg_logprob,
            max_no_speech: options.thresholds.max_no_speech,
        }
    }
}

impl CommandsSettings {
    /// The recogniser's options for these settings.
    pub fn recognizer_options(&self) -> crate::command::RecognizerOptions {
        let mut options = crate::command::RecognizerOptions {
            beam_size: self.beam,
            ..Default::default()
        };
        let thresholds = &mut options.thresholds;
        thresholds.max_gap = self.max_gap;
        thresholds.min_avg_logprob = self.min_score;
        thresholds.max_no_speech = self.max_no_speech;
        options
    }

    /// On failure, the key to point at and what is wrong with it.
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if !(1..=MAX_COMMAND_BEAM).contains(&self.beam) {
            let problem = format!("beam = {}: must be 1 to {MAX_COMMAND_BEAM}", self.beam);
            return Err(("beam", problem));
        }
        // TOML allows nan and inf: NaN fails every comparison, is_finite catches the rest.
        let check = |key, value: f32, valid: bool, expected| {
            if valid && value.is_finite() {
                Ok(())
            } else {
                Err((key, format!("{key} = {value}: must be {expected}")))
            }
        };
        check(
            "max_gap",
            self.max_gap,
            self.max_gap > 0.0,
            "a number of nats above 0",
        )?;
        check(
            "min_score",
            self.min_score,
            self.min_score < 0.0,
            "a mean log-probability below 0",
        )?;
        check(
            "max_no_speech",
            self.max_no_speech,
            self.max_no_speech > 0.0 && self.max_no_speech <= 1.0,
            "a probability above 0 and at most 1",
        )
    }
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
        if let Some(dir) = path.parent() {
            config.resolve_paths(dir);
        }
        if config.transcribe.beam == Some(0) {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                message: "[transcribe] beam must be at least 1".into(),
            });
        }
        if let Err((section, key, problem)) = config.check_values() {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                message: format!("{}[{section}] {problem}", line_prefix(&text, section, key)),
            });
        }
        config.file = Some((path.to_path_buf(), text));
        Ok(config)
    }

    /// Where `[section] key` was set, for an error about its value: `FILE: line N: [section]
    /// key` (without the line when the file does not set it). None when this config was not
    /// read from a file.
    pub fn origin(&self, section: &str, key: &str) -> Option<String> {
        let (path, text) = self.file.as_ref()?;
        let line = line_prefix(text, section, key);
        Some(format!("{}: {line}[{section}] {key}", path.display()))
    }

    /// Relative paths in the file are taken from its folder, `dir`, not from wherever voxd
    /// happens to be started.
    fn resolve_paths(&mut self, dir: &Path) {
        let paths = [
            self.model.path.as_mut(),
            self.actions.working_dir.as_mut(),
            self.events.file.as_mut(),
            self.events.socket.as_mut(),
            self.captions.vtt.as_mut(),
            self.captions.srt.as_mut(),
            self.llm.model.as_mut(),
        ]
        .into_iter()
        .flatten()
        .chain(self.commands.grammars.iter_mut().flatten());
        for path in paths {
            *path = dir.join(&*path);
        }
    }

    /// The `[commands]` settings: the file's values over the built-in defaults.
    pub fn commands(&self) -> CommandsSettings {
        let mut settings = CommandsSettings::default();
        let c = &self.commands;
        set(&mut settings.grammars, c.grammars.clone());
        set(&mut settings.beam, c.beam);
        set(&mut settings.max_gap, c.max_gap);
        set(&mut settings.min_score, c.min_score);
        set(&mut settings.max_no_speech, c.max_no_speech);
        settings
    }

    /// The front end's settings: the file's values over the built-in defaults.
    pub fn front_end(&self, captions: bool) -> FrontEndConfig {
        let mut fe = FrontEndConfig::default();
        let v = &self.vad;
        set(&mut fe.vad.frame_ms, v.frame_ms);
        set(&mut fe.vad.aggressiveness, v.aggressiveness);
        set(&mut fe.vad.earshot_threshold, v.earshot_threshold);
        set(&mut fe.vad.energy_floor_db, v.energy_floor_db);
        set(&mut fe.vad.noise_margin_db, v.noise_margin_db);
        set(&mut fe.vad.noise_window_ms, v.noise_window_ms);
        let s = &self.segment;
        set(&mut fe.segment.min_speech_ms, s.min_speech_ms);
        set(&mut fe.segment.end_silence_ms, s.end_silence_ms);
        set(&mut fe.segment.preroll_ms, s.preroll_ms);
        set(&mut fe.segment.tail_ms, s.tail_ms);
        set(&mut fe.segment.max_utterance_ms, s.max_utterance_ms);
        if captions {
            let mut w = WindowConfig::default();
            set(&mut w.length_ms, self.captions.window_ms);
            set(&mut w.step_ms, self.captions.step_ms);
            fe.windows = Some(w);
            fe.segment.lead_in_ms = crate::captions::FINALS_WINDOW_MS;
        }
        fe
    }

    /// Validates the values serde cannot; on failure, the section, the key to point at, and
    /// what is wrong.
    fn check_values(&self) -> Result<(), (&'static str, &'static str, String)> {
        let fe = self.front_end(true);
        if let Err(e) = fe.vad.validate() {
            let key = match e {
                VadConfigError::FrameMs(_) => "frame_ms",
                VadConfigError::Aggressiveness(_) => "aggressiveness",
                VadConfigError::Threshold(_) => "earshot_threshold",
                VadConfigError::NoiseWindow(_) => "noise_window_ms",
            };
            return Err(("vad", key, e.to_string()));
        }
        if let Err(e) = fe.segment.validate() {
            let key = match e {
                SegmentConfigError::Zero(key) => key,
                SegmentConfigError::TailTooLong { .. } => "tail_ms",
                SegmentConfigError::MaxTooShort(_) => "max_utterance_ms",
            };
            return Err(("segment", key, e.to_string()));
        }
        if let Some(Err(e)) = fe.windows.as_ref().map(WindowConfig::validate) {
            return Err(("captions", "window_ms", e.to_string()));
        }
        if self.audio.rate == Some(0) || self.audio.channels == Some(0) {
            let key = if self.audio.rate == Some(0) {
                "rate"
            } else {
                "channels"
            };
            return Err(("audio", key, format!("{key} must be greater than 0")));
        }
        if let Err((key, problem)) = self.commands().validate() {
            return Err(("commands", key, problem));
        }
        if let Some(level) = self.run.log.as_deref().filter(|l| !is_log_filter(l)) {
            let problem = format!(
                "log = {level:?}: expected error, warn, info, debug, trace or off, or \
                 module=level pairs separated by commas"
            );
            return Err(("run", "log", problem));
        }
        if let Err(e) = self.actions.validate() {
            return Err(("actions", e.key, format!("{} {}", e.key, e.problem)));
        }
        if let Err((key, problem)) = self.llm.validate() {
            return Err(("llm", key, problem));
        }
        Ok(())
    }

    /// The reply model's compute threads: `[llm] threads`, else `[model] threads`; 0 is one
    /// per core.
    pub fn llm_threads(&self) -> usize {
        self.llm.threads.or(self.model.threads).unwrap_or(0)
    }

    /// The user's config file, if there is one: `$XDG_CONFIG_HOME/voxd/config.toml` (or
    /// `~/.config/...`) on Linux, `~/Library/Application Support/voxd/config.toml` on macOS
    /// (see `ops::paths`).
    pub fn default_path() -> Option<PathBuf> {
        crate::util::paths::config_file().filter(|p| p.exists())
    }
}

/// A log level, or `target=level` directives separated by commas (tracing's filter syntax,
/// held to what a user would mean: its own parser takes almost any word as a target).
fn is_log_filter(text: &str) -> bool {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let is_level = |l: &str| LEVELS.contains(&l.trim().to_ascii_lowercase().as_str());
    text.split(',')
        .all(|directive| match directive.split_once('=') {
            Some((target, level)) => !target.trim().is_empty() && is_level(level),
            None => is_level(directive),
        })
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(v) = value {
        *field = v;
    }
}

/// `line N: ` for the line of `key = ...` inside `[section]`; empty if the file does not
/// set it.
fn line_prefix(text: &str, section: &str, key: &str) -> String {
    line_of(text, section, key)
        .map(|l| format!("line {l}: "))
        .unwrap_or_default()
}

/// The line of `key = ...` inside `[section]`, if the file sets it.
fn line_of(text: &str, section: &str, key: &str) -> Option<usize> {
    let header = format!("[{section}]");
    let mut in_section = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            in_section = line == header;
        } else if in_section
            && line
                .split('=')
                .next()
                .is_some_and(|k| k.trim() == key && line.contains('='))
        {
            return Some(i + 1);
        }
    }
    None
}

/// The parser's message with the line it points at, in words a user can act on. A type
/// error's message names only the value, so the key set on that line is added.
fn describe(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim();
    let Some(span) = e.span() else {
        return message.to_string();
    };
    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
    match key_on_line(text, line) {
        Some(key) if !message.contains(&format!("`{}`", key.name)) => {
            format!("line {line}: {key}: {message}")
        }
        _ => format!("line {line}: {message}"),
    }
}

/// A `key = value` line of the file and the `[section]` it is in.
struct KeyLine<'a> {
    section: Option<&'a str>,
    name: &'a str,
}

impl std::fmt::Display for KeyLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.section {
            Some(section) => write!(f, "{section} {}", self.name),
            None => f.write_str(self.name),
        }
    }
}

/// The key line `line` (from 1) sets, if it is a `key = value` line with a bare key.
fn key_on_line(text: &str, line: usize) -> Option<KeyLine<'_>> {
    let lines: Vec<&str> = text.lines().take(line).map(str::trim).collect();
    let (name, _) = lines.last()?.split_once('=')?;
    let name = name.trim();
    let bare = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if name.is_empty() || !name.chars().all(bare) {
        return None;
    }
    let section = lines
        .iter()
        .rev()
        .find(|l| l.starts_with('['))
        .and_then(|header| header.split_inclusive(']').next());
    Some(KeyLine { section, name })
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
        // The example documents the defaults.
        let commands = config.commands();
        assert_eq!(commands.grammars.len(), 4);
        let defaults = CommandsSettings {
            grammars: commands.grammars.clone(),
            ..CommandsSettings::default()
        };
        assert_eq!(commands, defaults);
        assert_eq!(config.actions, ActionsConfig::default());
        assert_eq!(config.run.mode, Some(RunMode::default()));
        assert_eq!(config.events.stdout, Some(StdoutFormat::default()));
        assert_eq!(config.llm, LlmConfig::default());
    }

    #[test]
    fn origin_names_the_file_the_line_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[model]\nthreads = 2\n\n[commands]\ngrammars = [\"a.toml\"]\n",
        )
        .unwrap();
        let config = Config::load(&path).unwrap();
        let file = path.display();
        assert_eq!(
            config.origin("commands", "grammars").unwrap(),
            format!("{file}: line 5: [commands] grammars")
        );
        // Not set in the file: the file and the key still say where to look.
        assert_eq!(
            config.origin("model", "path").unwrap(),
            format!("{file}: [model] path")
        );
        assert_eq!(Config::default().origin("model", "path"), None);
    }

    #[test]
    fn run_mode_and_log_level_are_checked() {
        let err = load_text("[run]\nmode = \"dictation\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("dictation"), "{err}");
        let err = load_text("[run]\nlog = \"verbose\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("[run] log"), "{err}");
        let config = load_text("[run]\nmode = \"both\"\nlog = \"voxd=debug\"\n").unwrap();
        assert!(config.run.mode.unwrap().captions());
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
    fn front_end_values_are_checked_with_their_line() {
        let err = load_text("[vad]\naggressiveness = 2\nframe_ms = 25\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3") && err.contains("frame_ms") && err.contains("10, 20 or 30"),
            "{err}"
        );
        let err = load_text("[segment]\nend_silence_ms = 200\ntail_ms = 300\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3") && err.contains("tail_ms"), "{err}");
        let config =
            load_text("[segment]\nend_silence_ms = 500\n[captions]\nstep_ms = 500\n").unwrap();
        let fe = config.front_end(true);
        assert_eq!(fe.segment.end_silence_ms, 500);
        assert_eq!(fe.windows.unwrap().step_ms, 500);
    }

    #[test]
    fn commands_defaults_and_values() {
        assert_eq!(
            load_text("").unwrap().commands(),
            CommandsSettings::default()
        );
        let config = load_text(
            "[commands]\nbeam = 3\nmax_gap = 4.5\nmin_score = -1.5\nmax_no_speech = 1.0\n",
        )
        .unwrap();
        let settings = config.commands();
        assert_eq!(
            (settings.beam, settings.max_gap, settings.min_score),
            (3, 4.5, -1.5)
        );
        assert_eq!(settings.max_no_speech, 1.0);
    }

    #[test]
    fn commands_unknown_keys_and_wrong_types_name_the_line_and_key() {
        let err = load_text("[commands]\nbeam = 3\nmax_gaps = 4.0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.toml") && err.contains("line 3") && err.contains("max_gaps"),
            "{err}"
        );
        let err = load_text("[commands]\nbeam = \"five\"  # a comment\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.toml")
                && err.contains("line 2: [commands] beam: invalid type")
                && err.contains("\"five\""),
            "{err}"
        );
        let err = load_text("[commands]\ngrammars = \"home.toml\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("grammars"), "{err}");
    }

    #[test]
    fn commands_values_out_of_range_name_the_line_and_key() {
        for (text, key) in [
            ("beam = 0", "beam"),
            ("beam = 33", "beam"),
            ("max_gap = 0", "max_gap"),
            ("max_gap = -1.5", "max_gap"),
            ("max_gap = inf", "max_gap"),
            ("min_score = 0.5", "min_score"),
            ("max_no_speech = 0", "max_no_speech"),
            ("max_no_speech = 1.5", "max_no_speech"),
            ("max_no_speech = nan", "max_no_speech"),
        ] {
            let err = load_text(&format!("[commands]\ngrammars = []\n\n{text}\n"))
                .unwrap_err()
                .to_string();
            let value = text.split(" = ").nth(1).unwrap();
            assert!(
                err.contains("config.toml")
                    && err.contains("line 4")
                    && err.contains(&format!("[commands] {key} = "))
                    && err.to_lowercase().contains(value)
                    && err.contains("must be"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn grammar_and_working_dir_paths_are_relative_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let absolute = dir.path().join("elsewhere/media.toml");
        let text = format!(
            "[commands]\ngrammars = [\"grammars/home.toml\", {:?}]\n[actions]\nworking_dir = \"scripts\"\n",
            absolute.display().to_string()
        );
        std::fs::write(&path, text).unwrap();
        let config = Config::load(&path).unwrap();
        let grammars = config.commands().grammars;
        assert_eq!(grammars, [dir.path().join("grammars/home.toml"), absolute]);
        assert_eq!(config.actions.working_dir, Some(dir.path().join("scripts")));
    }

    #[test]
    fn actions_are_read_and_checked_with_their_line() {
        let config = load_text("[actions]\nmax_concurrent = 3\nnotifications = false\n").unwrap();
        assert_eq!(config.actions.max_concurrent, 3);
        assert!(!config.actions.notifications);
        let err = load_text("[actions]\nqueue = 2\nmax_concurent = 3\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.toml") && err.contains("line 3") && err.contains("max_concurent"),
            "{err}"
        );
        let err = load_text("[actions] # limits\nnotifications = \"no\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2: [actions] notifications: invalid type"),
            "{err}"
        );
        let err = load_text("[actions]\nqueue = 2\ndefault_timeout_ms = 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.toml")
                && err.contains("line 3")
                && err.contains("[actions] default_timeout_ms must be at least 1"),
            "{err}"
        );
    }

    #[test]
    fn llm_is_off_by_default_and_its_keys_are_read() {
        let config = load_text("").unwrap();
        assert_eq!(config.llm, LlmConfig::default());
        assert!(!config.llm.enabled);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "[model]\nthreads = 3\n[llm]\nenabled = true\nmodel = \"models/tiny.gguf\"\n\
             system_prompt = \"Be brief.\"\nmax_tokens = 64\nmax_seconds = 5.5\n\
             temperature = 0\ntop_k = 0\ntop_p = 1.0\nmin_p = 0\nrepeat_penalty = 1\n\
             seed = 42\ncontext = 512\nmemory_turns = 0\nload = \"start\"\n\
             speak = [\"espeak-ng\", \"-v\", \"en\"]\nspeak_timeout_ms = 5000\n\
             intent = \"Question\"\nanswer_unmatched = true\n",
        )
        .unwrap();
        let config = Config::load(&path).unwrap();
        let expected = LlmConfig {
            enabled: true,
            model: Some(dir.path().join("models/tiny.gguf")),
            system_prompt: "Be brief.".into(),
            max_tokens: 64,
            max_seconds: 5.5,
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repeat_penalty: 1.0,
            seed: Some(42),
            context: 512,
            memory_turns: 0,
            load: LlmLoad::Start,
            speak: Some(vec!["espeak-ng".into(), "-v".into(), "en".into()]),
            speak_timeout_ms: 5000,
            threads: None,
            intent: "Question".into(),
            answer_unmatched: true,
        };
        assert_eq!(config.llm, expected);
        // Without its own threads, the reply model computes with Whisper's.
        assert_eq!(config.llm_threads(), 3);
        let config = load_text("[model]\nthreads = 3\n[llm]\nthreads = 1\n").unwrap();
        assert_eq!(config.llm_threads(), 1);
        assert_eq!(load_text("").unwrap().llm_threads(), 0);
    }

    #[test]
    fn llm_unknown_keys_and_wrong_types_name_the_line_and_key() {
        let err = load_text("[llm]\nenabled = true\nmax_token = 64\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.toml") && err.contains("line 3") && err.contains("max_token"),
            "{err}"
        );
        for (text, key) in [
            ("enabled = \"yes\"", "enabled"),
            ("load = \"eager\"", "load"),
            ("speak = \"espeak-ng\"", "speak"),
            ("seed = -1", "seed"),
        ] {
            let err = load_text(&format!("[llm]\nenabled = false\n{text}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("config.toml") && err.contains("line 3") && err.contains(key),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn llm_values_out_of_range_name_the_line_and_key() {
        for (text, key) in [
            ("max_tokens = 0", "max_tokens"),
            ("max_tokens = 4097", "max_tokens"),
            ("max_seconds = 0", "max_seconds"),
            ("max_seconds = nan", "max_seconds"),
            ("max_seconds = -1", "max_seconds"),
            ("max_seconds = inf", "max_seconds"),
            ("max_seconds = 1e30", "max_seconds"),
            ("temperature = -0.1", "temperature"),
            ("temperature = 2.5", "temperature"),
            ("top_p = 0", "top_p"),
            ("top_p = 1.5", "top_p"),
            ("min_p = 1", "min_p"),
            ("repeat_penalty = 0.5", "repeat_penalty"),
            ("repeat_penalty = inf", "repeat_penalty"),
            ("context = 128", "context"),
            ("context = 200000", "context"),
            ("memory_turns = 65", "memory_turns"),
            ("speak = []", "speak"),
            ("speak = [\"\", \"x\"]", "speak"),
            ("speak_timeout_ms = 0", "speak_timeout_ms"),
            ("intent = \" \"", "intent"),
        ] {
            let err = load_text(&format!("[llm]\nenabled = true\n\n{text}\n"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("config.toml")
                    && err.contains("line 4")
                    && err.contains(&format!("[llm] {key}"))
                    && err.contains("must"),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn missing_file_names_it() {
        let err = Config::load(Path::new("no/such/config.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no/such/config.toml"), "{err}");
    }
}
