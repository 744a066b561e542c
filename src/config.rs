//! `config.toml`: the settings a user keeps instead of typing flags.
//!
//! Command-line flags win over the file, and the file over built-in defaults. Unknown keys
//! and wrong types are errors that name the file, the line and the key, so a typo is never
//! silently ignored. `config.toml` at the repository root is the commented example.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::actions::ActionsConfig;
use crate::captions::CaptionsConfig;
pub use crate::command::CommandsConfig;
use crate::frontend::{
    FrontEndConfig, SegmentConfig, SegmentConfigError, VadConfig, VadConfigError, WindowConfig,
};
pub use crate::llm::config::{LlmConfig, LlmLoad};
use crate::util::paths;
pub use crate::whisper::config::TranscribeConfig;

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
    pub vad: VadConfig,
    #[serde(default)]
    pub segment: SegmentConfig,
    #[serde(default)]
    pub captions: CaptionsConfig,
    #[serde(default)]
    pub commands: CommandsConfig,
    #[serde(default)]
    pub actions: ActionsConfig,
    #[serde(default)]
    pub run: RunSection,
    #[serde(default)]
    pub events: EventsSection,
    #[serde(default)]
    pub llm: LlmConfig,
    #[serde(default)]
    pub wyoming: WyomingSection,
    /// The file this config was read from, and its text (None for the defaults): a setting
    /// found wrong only when it is used (a grammar file or a model that is missing) is
    /// reported with the file and the line that set it.
    #[serde(skip)]
    file: Option<(PathBuf, String)>,
}

/// `[run]`: what `voxd run` does. (The daemon's own sections are here, not beside the
/// daemon: the daemon reads the config.)
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RunSection {
    pub mode: RunMode,
    /// Log level (error, warn, info, debug, trace); `--log` and `VOXD_LOG` win.
    pub log: String,
}

impl Default for RunSection {
    fn default() -> Self {
        RunSection {
            mode: RunMode::default(),
            log: "info".into(),
        }
    }
}

/// `[wyoming] serve` with `[model] remote`: why they do not go together.
pub const SERVE_REMOTE: &str = "serve = true shares this machine's Whisper model with \
    Wyoming clients, and [model] remote leaves no model here: turn one of them off";

/// `[wyoming]`: `voxd wyoming`, the Wyoming protocol server (Home Assistant's speech
/// services). Every limit bounds what one client can make the server hold or do.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WyomingSection {
    /// `voxd run` serves Wyoming too, on its own model (no second copy).
    pub serve: bool,
    /// Where to listen: `tcp://HOST:PORT` or `unix://PATH`.
    pub uri: String,
    /// Clients served at once; one more gets an `error` event and is closed.
    pub max_clients: usize,
    /// Requests waiting for the model behind the one it is working on; one more gets an
    /// `error` event (`busy`) at once instead of waiting.
    pub queue: usize,
    /// The longest audio one request may send, in seconds.
    pub max_audio_s: u32,
    /// How long one write to a client may block before the client counts as gone.
    pub write_timeout_ms: u64,
    /// How long a client may stay silent (no event, or an event cut short) before it is
    /// closed.
    pub idle_timeout_ms: u64,
    /// Advertise the server over mDNS as `_wyoming._tcp.local.`, for Home Assistant's
    /// discovery.
    pub zeroconf: bool,
    /// The instance name it is advertised under.
    pub zeroconf_name: String,
}

impl Default for WyomingSection {
    fn default() -> Self {
        WyomingSection {
            serve: false,
            uri: "tcp://127.0.0.1:10300".into(),
            max_clients: 8,
            queue: 4,
            max_audio_s: 60,
            write_timeout_ms: 5_000,
            idle_timeout_ms: 60_000,
            zeroconf: false,
            zeroconf_name: "voxd".into(),
        }
    }
}

impl WyomingSection {
    /// On failure, the key to point at and what is wrong with it.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        match ListenUri::parse(&self.uri) {
            Err(problem) => return Err(("uri", problem)),
            Ok(ListenUri::Unix(_)) if self.zeroconf => {
                return Err(("zeroconf", ZEROCONF_UNIX.to_string()))
            }
            Ok(_) => {}
        }
        let counts = [
            ("max_clients", self.max_clients as u64),
            ("max_audio_s", u64::from(self.max_audio_s)),
            ("write_timeout_ms", self.write_timeout_ms),
            ("idle_timeout_ms", self.idle_timeout_ms),
        ];
        if let Some((key, _)) = counts.iter().find(|(_, value)| *value == 0) {
            return Err((key, format!("{key} must be at least 1")));
        }
        if let Err(problem) = check_zeroconf_name(&self.zeroconf_name) {
            return Err(("zeroconf_name", problem));
        }
        if self.max_audio_s > MAX_WYOMING_AUDIO_S {
            return Err((
                "max_audio_s",
                format!(
                    "max_audio_s = {}: at most {MAX_WYOMING_AUDIO_S}",
                    self.max_audio_s
                ),
            ));
        }
        Ok(())
    }
}

/// Why zeroconf and a Unix socket do not go together.
pub const ZEROCONF_UNIX: &str =
    "zeroconf advertises a TCP port, and a Unix socket has none: listen on tcp://HOST:PORT \
     or leave zeroconf off";

/// An mDNS instance name is one DNS label: 1 to 63 bytes of UTF-8.
pub fn check_zeroconf_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 {
        return Err(format!(
            "zeroconf name {name:?}: expected 1 to 63 bytes (one DNS label)"
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(format!("zeroconf name {name:?}: no control characters"));
    }
    Ok(())
}

/// The most audio a Wyoming request may be allowed: one hour, 230 MB of 16 kHz samples.
pub const MAX_WYOMING_AUDIO_S: u32 = 3_600;

/// Where a server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenUri {
    /// `tcp://HOST:PORT`: the host as written (a name or an address) and the port.
    Tcp { host: String, port: u16 },
    /// `unix://PATH`.
    Unix(PathBuf),
}

impl ListenUri {
    /// Parses `tcp://HOST:PORT` (IPv6 hosts in brackets) or `unix://PATH`; the error says
    /// what was expected.
    pub fn parse(text: &str) -> Result<ListenUri, String> {
        let expected = "expected tcp://HOST:PORT or unix://PATH";
        if let Some(path) = text.strip_prefix("unix://") {
            if path.is_empty() {
                return Err(format!("{text:?}: no path; {expected}"));
            }
            return Ok(ListenUri::Unix(PathBuf::from(path)));
        }
        let Some(address) = text.strip_prefix("tcp://") else {
            return Err(format!("{text:?}: {expected}"));
        };
        let address = address.strip_suffix('/').unwrap_or(address);
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| format!("{text:?}: no port; {expected}"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("{text:?}: port {port:?} is not a number from 0 to 65535"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{text:?}: no host; {expected}"));
        }
        Ok(ListenUri::Tcp {
            host: host.to_string(),
            port,
        })
    }

    /// Connects to the server listening here: each address the host resolves to in turn,
    /// each given `timeout` (a machine that is off does not answer at all).
    pub fn connect(&self, timeout: std::time::Duration) -> std::io::Result<Stream> {
        match self {
            ListenUri::Tcp { host, port } => {
                let mut last = None;
                for address in std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), *port))? {
                    match std::net::TcpStream::connect_timeout(&address, timeout) {
                        Ok(stream) => return Ok(Stream::Tcp(stream)),
                        Err(e) => last = Some(e),
                    }
                }
                Err(last.unwrap_or_else(|| std::io::Error::other("the host has no address")))
            }
            ListenUri::Unix(path) => {
                std::os::unix::net::UnixStream::connect(path).map(Stream::Unix)
            }
        }
    }
}

/// A connection made by [`ListenUri::connect`].
pub enum Stream {
    Tcp(std::net::TcpStream),
    Unix(std::os::unix::net::UnixStream),
}

impl std::fmt::Display for ListenUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenUri::Tcp { host, port } if host.contains(':') => {
                write!(f, "tcp://[{host}]:{port}")
            }
            ListenUri::Tcp { host, port } => write!(f, "tcp://{host}:{port}"),
            ListenUri::Unix(path) => write!(f, "unix://{}", path.display()),
        }
    }
}

/// What the daemon listens for.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
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
    /// The names the config and `--mode` take.
    pub const NAMES: [&'static str; 3] = ["commands", "captions", "both"];

    pub fn commands(self) -> bool {
        self != RunMode::Captions
    }

    pub fn captions(self) -> bool {
        self != RunMode::Commands
    }
}

/// `[events]`: where the daemon's JSON lines go.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EventsSection {
    pub stdout: StdoutFormat,
    /// Appended to, one JSON object per line; relative paths are taken from the config
    /// file's folder.
    pub file: Option<PathBuf>,
    /// A Unix socket (mode 0600) that any number of clients may connect to and read.
    pub socket: Option<PathBuf>,
}

/// How events appear on standard output.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
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

impl StdoutFormat {
    /// The names the config and `--stdout` take.
    pub const NAMES: [&'static str; 4] = ["auto", "json", "text", "off"];
}

/// A name of `NAMES` read as the config file reads it.
fn from_name<T: serde::de::DeserializeOwned>(name: &str, names: &[&str]) -> Result<T, String> {
    let value = serde::de::value::StrDeserializer::<serde::de::value::Error>::new(name);
    T::deserialize(value).map_err(|_| format!("`{name}`: expected one of {}", names.join(", ")))
}

impl std::str::FromStr for RunMode {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        from_name(name, &RunMode::NAMES)
    }
}

impl std::str::FromStr for crate::capture::CaptureBackend {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        from_name(name, &crate::capture::CaptureBackend::NAMES)
    }
}

impl std::str::FromStr for StdoutFormat {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        from_name(name, &StdoutFormat::NAMES)
    }
}

/// `[audio]`: the capture device.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AudioConfig {
    /// `default`, a device index from `voxd devices`, or part of a device's name.
    pub device: String,
    /// `cpal` (the default), `pulse`, or `auto` (the sound server for the default device
    /// when one answers, else cpal).
    pub backend: crate::capture::CaptureBackend,
    /// Capture rate in Hz; absent = the device's default.
    pub rate: Option<u32>,
    /// Capture channels; absent = the device's default.
    pub channels: Option<u16>,
    /// Audio per driver period, ms; 0 = the driver's choice.
    pub buffer_ms: u32,
}

impl Default for AudioConfig {
    fn default() -> Self {
        AudioConfig {
            device: "default".into(),
            backend: crate::capture::CaptureBackend::Auto,
            rate: None,
            channels: None,
            buffer_ms: crate::capture::device::DEFAULT_BUFFER_MS,
        }
    }
}

impl AudioConfig {
    /// How the device is opened.
    pub fn capture_options(&self) -> crate::capture::CaptureOptions {
        crate::capture::CaptureOptions {
            device: crate::capture::DeviceSelector::parse(&self.device),
            backend: self.backend,
            rate: self.rate,
            channels: self.channels,
            buffer_ms: Some(self.buffer_ms).filter(|&ms| ms > 0),
            ..crate::capture::CaptureOptions::default()
        }
    }
}

/// `[model]`: the Whisper model, or the Wyoming server that recognises speech instead.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// A CTranslate2 directory or a ggml file; relative paths are taken from the config
    /// file's folder. Absent: the default model's place.
    pub path: Option<PathBuf>,
    /// Compute threads; 0 = one per core.
    pub threads: usize,
    /// A Wyoming speech-to-text server (`tcp://HOST:PORT` or `unix://PATH`) that
    /// transcribes `voxd run`'s utterances instead of the model here.
    pub remote: Option<String>,
    /// How long an utterance waits for an unreachable server (retrying with back-off)
    /// before it is given up and reported.
    pub remote_retry_s: u64,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            path: None,
            threads: 0,
            remote: None,
            remote_retry_s: 60,
        }
    }
}

impl ModelConfig {
    /// On failure, the key to point at and what is wrong with it.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if let Some(Err(problem)) = self.remote.as_deref().map(ListenUri::parse) {
            return Err(("remote", problem));
        }
        if self.remote_retry_s > MAX_REMOTE_RETRY_S {
            let problem = format!(
                "remote_retry_s = {}: at most {MAX_REMOTE_RETRY_S} (one hour)",
                self.remote_retry_s
            );
            return Err(("remote_retry_s", problem));
        }
        Ok(())
    }
}

/// The longest an utterance may wait for an unreachable server: utterances queue behind
/// it meanwhile, so an hour is already more than a person waits for a light.
pub const MAX_REMOTE_RETRY_S: u64 = 3_600;

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_text(path, text)
    }

    /// Parses and validates the text of the config file at `path` (relative paths in it are
    /// taken from `path`'s folder; the file is not read).
    pub fn from_text(path: &Path, text: String) -> Result<Self, ConfigError> {
        let mut config: Config = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.to_path_buf(),
            message: describe(&text, &e),
        })?;
        if let Some(dir) = path.parent() {
            config.resolve_paths(dir);
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
        .chain(self.commands.grammars.iter_mut());
        for path in paths {
            *path = dir.join(&*path);
        }
        let uris = [Some(&mut self.wyoming.uri), self.model.remote.as_mut()];
        for uri in uris.into_iter().flatten() {
            if let Ok(ListenUri::Unix(path)) = ListenUri::parse(uri) {
                *uri = ListenUri::Unix(dir.join(path)).to_string();
            }
        }
    }

    /// The front end's settings: the file's values over the built-in defaults.
    pub fn front_end(&self, captions: bool) -> FrontEndConfig {
        let mut fe = FrontEndConfig {
            vad: self.vad.clone(),
            segment: self.segment.clone(),
            ..FrontEndConfig::default()
        };
        if captions {
            fe.windows = Some(self.captions.windows());
            fe.segment.lead_in_ms = crate::captions::FINALS_WINDOW_MS;
        }
        fe
    }

    /// Validates the values serde cannot; on failure, the section, the key to point at, and
    /// what is wrong.
    fn check_values(&self) -> Result<(), (&'static str, &'static str, String)> {
        if let Err((key, problem)) = self.model.validate() {
            return Err(("model", key, problem));
        }
        let mut fe = self.front_end(true);
        fe.segment.early_close_ms = self.commands.early_close_ms;
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
                SegmentConfigError::CloseTooLate { .. } => {
                    return Err(("commands", "early_close_ms", e.to_string()));
                }
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
        if let Err((key, problem)) = self.transcribe.validate() {
            return Err(("transcribe", key, problem));
        }
        if let Err((key, problem)) = self.commands.validate() {
            return Err(("commands", key, problem));
        }
        if let Some(level) = Some(&self.run.log).filter(|l| !is_log_filter(l)) {
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
        if let Err((key, problem)) = self.wyoming.validate() {
            return Err(("wyoming", key, problem));
        }
        if self.wyoming.serve && self.model.remote.is_some() {
            return Err(("wyoming", "serve", SERVE_REMOTE.to_string()));
        }
        Ok(())
    }

    /// The Whisper model: `flag` (`--model`), else `[model] path`, else the default model's
    /// place ([`paths::default_model`]).
    pub fn model_path(&self, flag: Option<&Path>) -> Result<PathBuf, paths::NoModel> {
        match flag.or(self.model.path.as_deref()) {
            Some(path) => Ok(path.to_path_buf()),
            None => paths::default_model(),
        }
    }

    /// The reply model's compute threads: `[llm] threads`, else `[model] threads`; 0 is one
    /// per core.
    pub fn llm_threads(&self) -> usize {
        match self.llm.threads.unwrap_or(self.model.threads) {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
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

/// `line N: ` for the line of `key = ...` inside `[section]`; empty if the file does not
/// set it.
fn line_prefix(text: &str, section: &str, key: &str) -> String {
    line_of(text, section, key)
        .map(|l| format!("line {l}: "))
        .unwrap_or_default()
}

/// The line (from 1) of the byte at `offset`.
fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line of `key` inside `[section]`, from the parser's spans, if the file sets it.
fn line_of(text: &str, section: &str, key: &str) -> Option<usize> {
    let document = toml_edit::ImDocument::parse(text).ok()?;
    let table = document.get(section)?.as_table_like()?;
    let start = table.get_key_value(key)?.0.span()?.start;
    Some(line_at(text, start))
}

/// The parser's message with the line it points at, in words a user can act on. A type
/// error's message names only the value, so the key whose value it is is added.
fn describe(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim();
    let Some(span) = e.span() else {
        return message.to_string();
    };
    let line = line_at(text, span.start);
    match key_at(text, span.start) {
        Some(key) if !message.contains(&format!("`{}`", key.1)) => {
            format!("line {line}: [{}] {}: {message}", key.0, key.1)
        }
        _ => format!("line {line}: {message}"),
    }
}

/// The section and key whose value holds the byte at `offset`, from the parser's spans.
fn key_at(text: &str, offset: usize) -> Option<(String, String)> {
    let document = toml_edit::ImDocument::parse(text).ok()?;
    let within = |span: Option<std::ops::Range<usize>>| span.is_some_and(|s| s.contains(&offset));
    let found = document.iter().find_map(|(section, item)| {
        let table = item.as_table_like()?;
        table
            .iter()
            .find(|(_, value)| within(value.span()))
            .map(|(key, _)| (section.to_string(), key.to_string()))
    });
    found
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
    fn the_repository_example_is_valid_and_documents_the_defaults() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
        let config = Config::load(&example).unwrap();
        // What the example sets on purpose, not as a default: the checkout's model, English,
        // and the example grammars.
        let dir = example.parent().unwrap();
        assert_eq!(config.model.path, Some(dir.join("models/tiny.en")));
        assert_eq!(config.transcribe.language.as_deref(), Some("en"));
        assert_eq!(config.commands.grammars.len(), 4);
        // Every other value is the default it documents.
        let defaults = Config {
            model: ModelConfig {
                path: config.model.path.clone(),
                ..ModelConfig::default()
            },
            transcribe: TranscribeConfig {
                language: config.transcribe.language.clone(),
                ..TranscribeConfig::default()
            },
            commands: CommandsConfig {
                grammars: config.commands.grammars.clone(),
                ..CommandsConfig::default()
            },
            ..Config::default()
        };
        assert_eq!(config.model, defaults.model);
        assert_eq!(config.transcribe, defaults.transcribe);
        assert_eq!(config.audio, defaults.audio);
        assert_eq!(config.vad, defaults.vad);
        assert_eq!(config.segment, defaults.segment);
        assert_eq!(config.captions, defaults.captions);
        assert_eq!(config.commands, defaults.commands);
        assert_eq!(config.actions, defaults.actions);
        assert_eq!(config.run, defaults.run);
        assert_eq!(config.events, defaults.events);
        assert_eq!(config.llm, defaults.llm);
        assert_eq!(config.wyoming, defaults.wyoming);
    }

    #[test]
    fn wyoming_values_are_checked_with_their_line() {
        let err = load_text("[wyoming]\nuri = \"http://x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2") && err.contains("[wyoming]"), "{err}");
        assert!(err.contains("tcp://HOST:PORT"), "{err}");
        let err = load_text("[wyoming]\nqueue = 1\nmax_clients = 0\n").unwrap_err();
        assert!(err.to_string().contains("line 3"), "{err}");
        let err = load_text("[wyoming]\nmax_audio_s = 100000\n").unwrap_err();
        assert!(err.to_string().contains("at most 3600"), "{err}");
        let err = load_text("[wyoming]\nuri = \"unix:///tmp/w.sock\"\nzeroconf = true\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("a Unix socket has none"), "{err}");
        let err = load_text(&format!(
            "[wyoming]\nzeroconf_name = \"{}\"\n",
            "x".repeat(64)
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("1 to 63 bytes"), "{err}");
        let err =
            load_text("[model]\nremote = \"tcp://10.0.0.2:10300\"\n[wyoming]\nserve = true\n")
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("line 4") && err.contains("[wyoming]") && err.contains("[model] remote"),
            "{err}"
        );
    }

    #[test]
    fn the_remote_server_is_checked_with_its_line_and_a_socket_is_taken_from_the_folder() {
        let err = load_text("[model]\nthreads = 1\nremote = \"example:10300\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 3") && err.contains("tcp://HOST:PORT"),
            "{err}"
        );
        let err = load_text("[model]\nremote_retry_s = 7200\n").unwrap_err();
        assert!(err.to_string().contains("at most 3600"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[model]\nremote = \"unix://stt.sock\"\n").unwrap();
        let config = Config::load(&path).unwrap();
        let expected = format!("unix://{}", dir.path().join("stt.sock").display());
        assert_eq!(config.model.remote, Some(expected));
        assert_eq!(config.model.remote_retry_s, 60);
    }

    #[test]
    fn listen_uris_are_parsed() {
        let tcp = |host: &str, port| ListenUri::Tcp {
            host: host.into(),
            port,
        };
        assert_eq!(
            ListenUri::parse("tcp://127.0.0.1:10300"),
            Ok(tcp("127.0.0.1", 10300))
        );
        assert_eq!(ListenUri::parse("tcp://[::1]:99"), Ok(tcp("::1", 99)));
        assert_eq!(
            ListenUri::parse("tcp://[::1]:99").unwrap().to_string(),
            "tcp://[::1]:99"
        );
        assert_eq!(
            ListenUri::parse("unix:///run/voxd.sock"),
            Ok(ListenUri::Unix("/run/voxd.sock".into()))
        );
        for bad in [
            "tcp://host",
            "tcp://:1",
            "tcp://h:70000",
            "unix://",
            "stdio://",
            "h:1",
        ] {
            assert!(ListenUri::parse(bad).is_err(), "{bad}");
        }
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
        assert!(config.run.mode.captions());
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
        assert_eq!(load_text("").unwrap().commands, CommandsConfig::default());
        let config = load_text(
            "[commands]\nbeam = 3\nmax_mismatch = 0.5\nmin_score = -1.5\nmax_no_speech = 1.0\n",
        )
        .unwrap();
        let settings = config.commands.clone();
        assert_eq!(
            (settings.beam, settings.max_mismatch, settings.min_score),
            (3, 0.5, -1.5)
        );
        assert_eq!(settings.max_no_speech, 1.0);
        let config = load_text(
            "[commands]\nwake = \"hey computer\"\nfollow_up_ms = 3000\nwake_run = [\"paplay\", \"ding.oga\"]\n",
        )
        .unwrap();
        assert_eq!(config.commands.wake.as_deref(), Some("hey computer"));
        assert_eq!(config.commands.follow_up_ms, 3000);
        assert_eq!(config.commands.wake_run, ["paplay", "ding.oga"]);
        let err = load_text("[commands]\nwake_notify = \"Listening\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2") && err.contains("wake_notify") && err.contains("set `wake`"),
            "{err}"
        );
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
            ("max_mismatch = 0", "max_mismatch"),
            ("max_mismatch = 1.5", "max_mismatch"),
            ("max_mismatch = inf", "max_mismatch"),
            ("max_ratio = -1", "max_ratio"),
            ("max_ratio = nan", "max_ratio"),
            ("min_score = 0.5", "min_score"),
            ("max_no_speech = 0", "max_no_speech"),
            ("max_no_speech = 1.5", "max_no_speech"),
            ("max_no_speech = nan", "max_no_speech"),
            ("follow_up_ms = 90000", "follow_up_ms"),
            ("wake = \"?!\"", "wake"),
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
        let grammars = config.commands.clone().grammars;
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
        // 0 (the default) is one per core.
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(load_text("").unwrap().llm_threads(), cores);
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
