//! `voxd doctor`: checks a setup the way `voxd run` will use it and says, one line per
//! check, what is fine (`ok`), what will limit it (`warn`) and what stops it (`FAIL`), with
//! what to do about it.
//!
//! Each check uses the code the daemon itself runs (the config loader, the model loader,
//! `CommandSet::load`, the capture supervisor, notify-rust), so a check that passes here
//! cannot fail for a different reason there.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::commands::{CommandSet, LoadError};
use super::reply;
use crate::capture::{self, CaptureEvent, DeviceCapture, ReadStatus};
use crate::config::{Config, ListenUri, LlmLoad};
use crate::kernels::quant::QuantType;
use crate::llm::gguf::GgufFile;
use crate::ops::models;
use crate::util::paths;
use crate::whisper::transcribe::Transcriber;

/// `voxd doctor` options.
#[derive(Debug, Clone)]
pub struct DoctorOptions {
    /// Seconds of microphone audio to take for the level reading.
    pub listen: f64,
    /// Skip the microphone checks (a machine that only transcribes files).
    pub no_audio: bool,
}

impl Default for DoctorOptions {
    fn default() -> Self {
        DoctorOptions {
            listen: 1.0,
            no_audio: false,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }
}

/// One line of the report.
#[derive(Clone, Debug)]
pub struct Check {
    pub status: Status,
    pub name: &'static str,
    pub message: String,
    /// What to do about a warning or failure.
    pub fix: Option<String>,
}

impl Check {
    fn ok(name: &'static str, message: impl Into<String>) -> Self {
        Check {
            status: Status::Ok,
            name,
            message: message.into(),
            fix: None,
        }
    }

    fn warn(name: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            status: Status::Warn,
            name,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }

    fn fail(name: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Self {
        Check {
            status: Status::Fail,
            name,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }

    /// The report's line: status, check, what was found, and what to do.
    pub fn line(&self) -> String {
        // Some errors (a grammar's) span lines; the report keeps one line per check.
        let one_line = |s: &str| {
            s.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>()
                .join(" / ")
        };
        let mut line = format!(
            "{:<4}  {:<13} {}",
            self.status.label(),
            self.name,
            one_line(&self.message)
        );
        if let Some(fix) = &self.fix {
            line.push_str(" -> ");
            line.push_str(&one_line(fix));
        }
        line
    }
}

/// Runs every check; `config` is `--config`, if given.
pub fn run_checks(config: Option<&Path>, args: &DoctorOptions) -> Vec<Check> {
    let mut checks = Vec::new();
    let (config_path, loaded) = check_config(config, &mut checks);
    match &loaded {
        Loaded::Invalid => {
            for name in ["model", "grammars", "actions"] {
                checks.push(Check::warn(
                    name,
                    "not checked: the config file is invalid",
                    "fix the config first",
                ));
            }
        }
        Loaded::Defaults | Loaded::File(_) => {
            let default = Config::default();
            let cfg = match &loaded {
                Loaded::File(c) => c,
                _ => &default,
            };
            checks.push(check_model(cfg));
            let set = check_grammars(config_path.as_deref(), &mut checks);
            if let Some(set) = &set {
                checks.push(check_programs(set));
            }
            if cfg.llm.enabled {
                check_llm(cfg, set.as_ref(), &mut checks);
            }
        }
    }
    let default = Config::default();
    let cfg = match &loaded {
        Loaded::File(c) => c,
        _ => &default,
    };
    if !args.no_audio {
        check_audio(cfg, args.listen, &mut checks);
    }
    checks.push(check_notifications(cfg));
    checks.push(check_service());
    checks
}

/// The whole report, one line per check and a summary.
pub fn report(checks: &[Check]) -> String {
    let mut out = String::new();
    for check in checks {
        out.push_str(&check.line());
        out.push('\n');
    }
    let count = |s| checks.iter().filter(|c| c.status == s).count();
    out.push_str(&format!(
        "{} ok, {} warnings, {} failures\n",
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail)
    ));
    out
}

enum Loaded {
    /// No config file: the built-in defaults.
    Defaults,
    File(Box<Config>),
    Invalid,
}

fn check_config(arg: Option<&Path>, checks: &mut Vec<Check>) -> (Option<PathBuf>, Loaded) {
    const NAME: &str = "config";
    let (path, named) = match arg {
        Some(p) => (p.to_path_buf(), true),
        None => match paths::config_file() {
            Some(p) => (p, false),
            None => {
                checks.push(Check::warn(
                    NAME,
                    "no home folder, so no user config file: using the built-in defaults",
                    "pass --config FILE",
                ));
                return (None, Loaded::Defaults);
            }
        },
    };
    if !named && !path.exists() {
        checks.push(Check::warn(
            NAME,
            format!("{}: not found, using the built-in defaults", path.display()),
            format!(
                "copy the repository's config.toml (the commented example) to {} and edit it",
                path.display()
            ),
        ));
        return (None, Loaded::Defaults);
    }
    match Config::load(&path) {
        Ok(config) => {
            checks.push(Check::ok(NAME, format!("{}: valid", path.display())));
            (Some(path), Loaded::File(Box::new(config)))
        }
        Err(e) => {
            let fix = if path.exists() {
                "fix what the message names (the repository's config.toml is the commented example)"
            } else {
                "check the path given with --config"
            };
            checks.push(Check::fail(NAME, e.to_string(), fix));
            (Some(path), Loaded::Invalid)
        }
    }
}

/// With `[model] remote` no model is loaded here; the speech server must take connections
/// (else every utterance waits out `remote_retry_s` and is given up).
fn check_remote(remote: &str) -> Check {
    const NAME: &str = "model";
    const TIMEOUT: Duration = Duration::from_secs(3);
    let fix = "start the speech server there (`voxd wyoming`, or wyoming-faster-whisper), or \
               correct [model] remote";
    let reached = ListenUri::parse(remote).and_then(|uri| {
        uri.connect(TIMEOUT)
            .map_err(|e| format!("cannot connect: {e}"))
    });
    match reached {
        Ok(_) => Check::ok(
            NAME,
            format!("remote {remote}: takes connections (no model loaded here)"),
        ),
        Err(e) => Check::fail(NAME, format!("remote {remote}: {e}"), fix.to_string()),
    }
}

/// `voxd models fetch` with `--dest` when the model is not in the default folder.
fn fetch_command(model: &Path) -> String {
    let name = model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .filter(|n| models::wanted(n, |q| QuantType::writable(q).is_some()).is_ok())
        .unwrap_or_else(|| paths::DEFAULT_MODEL.to_string());
    match model.parent() {
        Some(parent) if Some(parent.to_path_buf()) != paths::models_dir() => format!(
            "voxd models fetch --dest {} {name}",
            paths::absolute(parent).display()
        ),
        _ => format!("voxd models fetch {name}"),
    }
}

fn check_model(config: &Config) -> Check {
    const NAME: &str = "model";
    if let Some(remote) = &config.model.remote {
        return check_remote(remote);
    }
    let from = match config.model.path {
        Some(_) => " (the config's [model] path)",
        None => "",
    };
    let path = match config.model_path(None) {
        Ok(p) => p,
        Err(e) => {
            return Check::fail(
                NAME,
                e.to_string(),
                format!("voxd models fetch {}", paths::DEFAULT_MODEL),
            )
        }
    };
    if !path.exists() {
        return Check::fail(
            NAME,
            format!("{}{from}: not found", path.display()),
            fetch_command(&path),
        );
    }
    let started = Instant::now();
    match Transcriber::load(&path, 1) {
        Ok(_) => Check::ok(
            NAME,
            format!(
                "{}{from}: loads ({:.1} s)",
                path.display(),
                started.elapsed().as_secs_f64()
            ),
        ),
        Err(e) => Check::fail(
            NAME,
            format!("{}{from}: {e}", path.display()),
            format!("install it again: {}", fetch_command(&path)),
        ),
    }
}

/// `voxd models fetch` for the reply model at `model`: with `--dest` when it is a
/// `smollm2/model.gguf` outside the default folder; a file of another name or folder is the
/// user's own, and the hint says how to get the default one instead.
fn llm_fetch_command(model: &Path) -> String {
    let name = paths::DEFAULT_LLM_MODEL;
    let folder = model
        .parent()
        .filter(|_| model.file_name() == Some(paths::LLM_MODEL_FILE.as_ref()));
    let dest = folder
        .filter(|f| f.file_name() == Some(name.as_ref()))
        .and_then(Path::parent);
    match dest {
        Some(dest) if Some(dest.to_path_buf()) != paths::models_dir() => format!(
            "voxd models fetch --dest {} {name}",
            paths::absolute(dest).display()
        ),
        Some(_) => format!("voxd models fetch {name}"),
        None => {
            format!("voxd models fetch {name} and leave [llm] model out, or set it to a GGUF file")
        }
    }
}

/// The reply model (it opens as a GGUF file of a supported type), the speech program and the
/// intent that asks. A missing model stops `voxd run` only when it is loaded at start;
/// loaded lazily, commands work and every question fails.
fn check_llm(config: &Config, set: Option<&CommandSet>, checks: &mut Vec<Check>) {
    const NAME: &str = "reply model";
    let llm = &config.llm;
    let missing = |message: String, fix: String| match llm.load {
        LlmLoad::Start => Check::fail(NAME, message, fix),
        LlmLoad::Lazy => Check::warn(
            NAME,
            message,
            format!("{fix} (until then every question fails)"),
        ),
    };
    let from = match llm.model {
        Some(_) => " (the config's [llm] model)",
        None => "",
    };
    let path = match llm.model_path() {
        Ok(p) => p,
        Err(e) => {
            let fix = format!("voxd models fetch {}", paths::DEFAULT_LLM_MODEL);
            checks.push(missing(e.to_string(), fix));
            check_reply_extras(config, set, checks);
            return;
        }
    };
    let check = if !path.exists() {
        missing(
            format!("{}{from}: not found", path.display()),
            llm_fetch_command(&path),
        )
    } else {
        match GgufFile::open(&path) {
            Ok(file) => describe_gguf(&file, &path, from),
            Err(e) => missing(
                format!("{e}{from}"),
                format!("install it again: {}", llm_fetch_command(&path)),
            ),
        }
    };
    checks.push(check);
    check_reply_extras(config, set, checks);
}

/// What a GGUF file holds, or why voxd's reply model cannot run it.
fn describe_gguf(file: &GgufFile, path: &Path, from: &str) -> Check {
    const NAME: &str = "reply model";
    let fix = "use a llama-architecture GGUF model (voxd models fetch smollm2)";
    let architecture = match file.architecture() {
        Ok(a) => a,
        Err(e) => return Check::fail(NAME, format!("{e}{from}"), fix),
    };
    if architecture != "llama" {
        return Check::fail(
            NAME,
            format!(
                "{}{from}: architecture `{architecture}`, voxd runs `llama` models",
                path.display()
            ),
            fix,
        );
    }
    let unsupported: BTreeSet<&str> = file
        .tensors()
        .iter()
        .map(|t| t.ggml_type())
        .filter(|t| !t.is_supported())
        .map(|t| t.name())
        .collect();
    if !unsupported.is_empty() {
        return Check::fail(
            NAME,
            format!(
                "{}{from}: tensors of types voxd cannot compute with: {}",
                path.display(),
                Vec::from_iter(unsupported).join(", ")
            ),
            format!(
                "use a file quantized as one of {}",
                QuantType::supported_names()
            ),
        );
    }
    Check::ok(
        NAME,
        format!(
            "{}{from}: GGUF v{}, {architecture}, {} tensors",
            path.display(),
            file.version(),
            file.tensors().len()
        ),
    )
}

/// The speech program and the asking intent.
fn check_reply_extras(config: &Config, set: Option<&CommandSet>, checks: &mut Vec<Check>) {
    if let Some(program) = config.llm.speak.as_ref().and_then(|argv| argv.first()) {
        const NAME: &str = "reply speech";
        let check = match find_program(program, config.actions.working_dir.as_deref()) {
            Ok(path) => Check::ok(NAME, format!("{}", path.display())),
            Err(why) => Check::warn(
                NAME,
                format!("`{program}` ([llm] speak): {why}"),
                "install it (Debian: apt-get install espeak-ng) or name it by absolute path; \
                 replies are not spoken until then",
            ),
        };
        checks.push(check);
    }
    if let Some(set) = set {
        const NAME: &str = "reply intent";
        let intent = &config.llm.intent;
        checks.push(match reply::check_intent(set.grammar(), intent) {
            Ok(()) => Check::ok(NAME, format!("`{intent}` asks its {{question}}")),
            Err(e) => Check::warn(NAME, e, "no question is answered until then"),
        });
    }
}

fn check_grammars(config: Option<&Path>, checks: &mut Vec<Check>) -> Option<CommandSet> {
    const NAME: &str = "grammars";
    match CommandSet::load(config, &Default::default()) {
        Ok(set) => {
            let files: Vec<String> = set
                .settings()
                .grammars
                .iter()
                .map(|p| p.display().to_string())
                .collect();
            checks.push(Check::ok(
                NAME,
                format!(
                    "{} intents from {}",
                    set.grammar().intents().len(),
                    files.join(", ")
                ),
            ));
            Some(set)
        }
        Err(e @ (LoadError::NothingToLoad | LoadError::NoGrammars { .. })) => {
            checks.push(Check::warn(
                NAME,
                e.to_string(),
                "voice commands need grammar files in [commands] grammars (captions work \
                 without); grammars/ in the repository has examples",
            ));
            None
        }
        Err(e) => {
            checks.push(Check::fail(
                NAME,
                e.to_string(),
                "fix what the message names; `voxd grammar check FILE...` checks grammar files",
            ));
            None
        }
    }
}

/// Where `program` would be found: a path with a slash is taken from `working_dir` (the
/// actions' working directory, where the child starts), a bare name from PATH.
fn find_program(program: &str, working_dir: Option<&Path>) -> Result<PathBuf, String> {
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p)
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.contains('/') {
        let path = match working_dir {
            Some(dir) => dir.join(program),
            None => PathBuf::from(program),
        };
        return if executable(&path) {
            Ok(path)
        } else if path.exists() {
            Err(format!("{} is not executable", path.display()))
        } else {
            Err(format!("{} not found", path.display()))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
        .ok_or_else(|| "not found on PATH".to_string())
}

fn check_programs(set: &CommandSet) -> Check {
    const NAME: &str = "actions";
    // program -> the intents that run it
    let mut programs: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for intent in set.grammar().intents() {
        if let Some(program) = intent.run.first() {
            programs.entry(program).or_default().push(&intent.name);
        }
    }
    if programs.is_empty() {
        return Check::ok(NAME, "no intent runs a program");
    }
    let working_dir = set.actions_config().working_dir.as_deref();
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for (program, intents) in &programs {
        match find_program(program, working_dir) {
            Ok(path) => found.push(path.display().to_string()),
            Err(why) => missing.push(format!("`{program}` ({}): {why}", intents.join(", "))),
        }
    }
    if missing.is_empty() {
        Check::ok(
            NAME,
            format!("{} programs found: {}", found.len(), found.join(", ")),
        )
    } else {
        Check::warn(
            NAME,
            format!(
                "{} of {} programs missing: {}",
                missing.len(),
                programs.len(),
                missing.join("; ")
            ),
            "install them or name them by absolute path in `run` (a service's PATH is the \
             service manager's, not your shell's); those intents fail when heard",
        )
    }
}

fn check_audio(config: &Config, seconds: f64, checks: &mut Vec<Check>) {
    let devices = match capture::list_devices() {
        Ok(d) => d,
        Err(e) => {
            checks.push(Check::fail(
                "input devices",
                e.to_string(),
                "on Linux, install ALSA (and PulseAudio/PipeWire for a desktop)",
            ));
            return;
        }
    };
    if devices.is_empty() {
        checks.push(Check::fail(
            "input devices",
            "none found",
            "connect a microphone; a service needs the sound server of a login session (user \
             unit) or the `audio` group (system unit)",
        ));
        return;
    }
    let names: Vec<String> = devices
        .iter()
        .map(|d| {
            let star = if d.is_default { " (default)" } else { "" };
            format!("#{} {}{star}", d.index, d.name)
        })
        .collect();
    checks.push(Check::ok(
        "input devices",
        format!("{}: {}", devices.len(), names.join(", ")),
    ));
    checks.push(check_microphone(config, seconds));
}

fn check_microphone(config: &Config, seconds: f64) -> Check {
    const NAME: &str = "microphone";
    let options = config.audio.capture_options();
    let selector = options.device.clone();
    let (capture, output) = match DeviceCapture::start(options, 2.0 + seconds as f32) {
        Ok(started) => started,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("{selector}: {e}"),
                "`voxd devices` lists the devices; set [audio] device in the config",
            )
        }
    };
    let device = output
        .events
        .try_iter()
        .find_map(|e| match e {
            CaptureEvent::Opened { device, .. } => Some(device),
            _ => None,
        })
        .unwrap_or_else(|| selector.to_string());
    let format = capture.format();
    let mut reader = output.reader;
    let mut buf = vec![0f32; 4096];
    let (mut count, mut sum_sq, mut peak) = (0u64, 0f64, 0f32);
    let until = Instant::now() + Duration::from_secs_f64(seconds.max(0.1));
    while Instant::now() < until {
        match reader.read(&mut buf, Duration::from_millis(50)) {
            ReadStatus::Samples(n) => {
                for &x in &buf[..n] {
                    sum_sq += f64::from(x) * f64::from(x);
                    peak = peak.max(x.abs());
                }
                count += n as u64;
            }
            ReadStatus::Idle => {}
            ReadStatus::Closed => break,
        }
    }
    capture.stop();
    let what = format!("{device} ({format})");
    if count == 0 {
        return Check::fail(
            NAME,
            format!("{what}: opened, but no audio arrived in {seconds:.1} s"),
            "another program may hold the device, or its driver is stuck; try another with \
             [audio] device",
        );
    }
    let db = |x: f64| {
        if x > 0.0 {
            20.0 * x.log10()
        } else {
            f64::NEG_INFINITY
        }
    };
    let rms = db((sum_sq / count as f64).sqrt());
    let peak_db = db(f64::from(peak));
    let level = format!(
        "{count} samples in {seconds:.1} s, level {} dBFS RMS, peak {} dBFS",
        show_db(rms),
        show_db(peak_db)
    );
    // A real microphone's own noise sits far above -100 dBFS: below it the device hands
    // over zeros (muted, or nothing plugged in).
    if peak_db < -100.0 {
        Check::warn(
            NAME,
            format!("{what}: {level}: digital silence"),
            "muted, or nothing connected? check the input volume, or pick another device \
             with [audio] device",
        )
    } else {
        Check::ok(NAME, format!("{what}: {level}"))
    }
}

fn show_db(db: f64) -> String {
    if db.is_finite() {
        format!("{db:.1}")
    } else {
        "-inf".to_string()
    }
}

#[cfg(all(unix, not(target_os = "macos"), feature = "notifications"))]
fn check_notifications(config: &Config) -> Check {
    const NAME: &str = "notifications";
    // A bus without the server can keep a D-Bus call waiting for its timeout: ask from a
    // thread of its own and stop waiting after a few seconds.
    let (tx, rx) = crossbeam_channel::bounded(1);
    let spawned = std::thread::Builder::new()
        .name("voxd-doctor-dbus".into())
        .spawn(move || {
            let _ = tx.send(notify_rust::get_server_information().map_err(|e| e.to_string()));
        });
    let answer = match spawned {
        Ok(_) => rx
            .recv_timeout(Duration::from_secs(5))
            .unwrap_or_else(|_| Err("no answer within 5 s".to_string())),
        Err(e) => Err(e.to_string()),
    };
    match answer {
        Ok(info) => Check::ok(
            NAME,
            format!(
                "org.freedesktop.Notifications on the session bus: {} {} ({})",
                info.name, info.version, info.vendor
            ),
        ),
        Err(_) if !config.actions.notifications => {
            Check::ok(NAME, "off ([actions] notifications = false)")
        }
        Err(e) => Check::warn(
            NAME,
            format!("org.freedesktop.Notifications not reachable on the session bus: {e}"),
            "notifications need a desktop session's bus (DBUS_SESSION_BUS_ADDRESS) and a \
             notification daemon; set [actions] notifications = false to turn them off",
        ),
    }
}

#[cfg(all(not(all(unix, not(target_os = "macos"))), feature = "notifications"))]
fn check_notifications(_config: &Config) -> Check {
    Check::ok(
        "notifications",
        "sent through the system's notification center (not checked here)",
    )
}

#[cfg(not(feature = "notifications"))]
fn check_notifications(config: &Config) -> Check {
    const NAME: &str = "notifications";
    if config.actions.notifications {
        Check::warn(
            NAME,
            "this voxd was built without desktop notifications (cargo feature `notifications`)",
            "set [actions] notifications = false, or build voxd with the feature",
        )
    } else {
        Check::ok(NAME, "off, and not built in")
    }
}

fn check_service() -> Check {
    const NAME: &str = "service";
    let mut files: Vec<PathBuf> = paths::user_service_file().into_iter().collect();
    if !cfg!(target_os = "macos") {
        files.push(paths::system_service_file());
    }
    let Some(file) = files.into_iter().find(|f| f.exists()) else {
        return Check::ok(
            NAME,
            "not installed (to start voxd at login: voxd install-service)",
        );
    };
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let binary = if cfg!(target_os = "macos") {
        // The first <string> of ProgramArguments.
        text.split("<key>ProgramArguments</key>")
            .nth(1)
            .and_then(|rest| rest.split("<string>").nth(1))
            .and_then(|rest| rest.split("</string>").next())
            .map(|s| s.replace("&amp;", "&"))
    } else {
        text.lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .map(|exec| {
                let exec = exec.trim();
                match exec.strip_prefix('"') {
                    Some(quoted) => quoted.split('"').next().unwrap_or("").to_string(),
                    None => exec.split_whitespace().next().unwrap_or("").to_string(),
                }
            })
    };
    match binary {
        Some(binary) if !Path::new(&binary).exists() => Check::warn(
            NAME,
            format!("{} runs {binary}, which does not exist", file.display()),
            "run `voxd install-service` again from the voxd you want it to run",
        ),
        _ => Check::ok(NAME, format!("installed: {}", file.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_per_check_with_the_fix() {
        let check = Check::fail("grammars", "a.toml:3:1: bad\n  here\n", "fix it");
        assert_eq!(
            check.line(),
            "FAIL  grammars      a.toml:3:1: bad / here -> fix it"
        );
        let text = report(&[check, Check::ok("config", "fine")]);
        assert!(text.ends_with("1 ok, 0 warnings, 1 failures\n"), "{text}");
    }

    #[test]
    fn a_remote_server_is_checked_instead_of_a_model() {
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        let uri = format!("tcp://127.0.0.1:{port}");
        let mut config = Config::default();
        config.model.remote = Some(uri.clone());
        // A model path that does not exist: never looked at.
        config.model.path = Some(PathBuf::from("/no/such/model"));
        assert_eq!(
            check_model(&config).line(),
            format!("ok    model         remote {uri}: takes connections (no model loaded here)")
        );
        drop(server);
        let dir = tempfile::tempdir().unwrap();
        let gone = format!("unix://{}", dir.path().join("no-server.sock").display());
        config.model.remote = Some(gone.clone());
        let line = check_model(&config).line();
        assert!(
            line.starts_with(&format!(
                "FAIL  model         remote {gone}: cannot connect: "
            )) && line.ends_with(
                "-> start the speech server there (`voxd wyoming`, or \
                                   wyoming-faster-whisper), or correct [model] remote"
            ),
            "{line}"
        );
    }

    #[test]
    fn programs_are_found_on_path_or_by_path() {
        assert!(find_program("sh", None).is_ok());
        assert_eq!(
            find_program("surely-no-such-program-voxd", None).unwrap_err(),
            "not found on PATH"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("plain"), "x").unwrap();
        let err = find_program("./plain", Some(dir.path())).unwrap_err();
        assert!(err.ends_with("plain is not executable"), "{err}");
        assert!(find_program("/bin/sh", Some(dir.path())).is_ok());
    }

    #[test]
    fn llm_fetch_hints_name_the_folder_when_it_is_not_the_default() {
        assert_eq!(
            llm_fetch_command(Path::new("/srv/m/smollm2/model.gguf")),
            "voxd models fetch --dest /srv/m smollm2"
        );
        assert!(llm_fetch_command(Path::new("/srv/m/qwen.gguf")).contains("set it to a GGUF file"));
    }

    fn llm_checks(text: &str) -> Vec<Check> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        let config = Config::load(&path).unwrap();
        let mut checks = Vec::new();
        check_llm(&config, None, &mut checks);
        checks
    }

    #[test]
    fn the_reply_model_is_opened_and_a_missing_one_named_with_its_fetch() {
        let smollm2 = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/smollm2/model.gguf");
        assert!(
            smollm2.exists(),
            "run: voxd models fetch --dest models smollm2"
        );
        let checks = llm_checks(&format!(
            "[llm]\nenabled = true\nmodel = {:?}\nspeak = [\"sh\"]\n",
            smollm2.display().to_string()
        ));
        let lines: Vec<String> = checks.iter().map(Check::line).collect();
        assert!(
            lines[0].starts_with("ok    reply model   ")
                && lines[0].contains("GGUF v3, llama, 272 tensors"),
            "{lines:?}"
        );
        assert!(lines[1].starts_with("ok    reply speech  "), "{lines:?}");
        let missing = |load: &str| {
            let checks = llm_checks(&format!(
                "[llm]\nenabled = true\nload = \"{load}\"\nmodel = \"/srv/m/smollm2/model.gguf\"\n\
                 speak = [\"surely-no-such-speaker-voxd\"]\n"
            ));
            checks.iter().map(Check::line).collect::<Vec<_>>()
        };
        let lazy = missing("lazy");
        assert!(
            lazy[0].starts_with("warn  reply model   /srv/m/smollm2/model.gguf (the config's [llm] model): not found -> voxd models fetch --dest /srv/m smollm2"),
            "{lazy:?}"
        );
        assert!(
            lazy[1].starts_with("warn  reply speech  `surely-no-such-speaker-voxd`"),
            "{lazy:?}"
        );
        assert!(missing("start")[0].starts_with("FAIL  reply model"));
    }

    #[test]
    fn fetch_hints_name_the_folder_when_it_is_not_the_default() {
        assert_eq!(
            fetch_command(Path::new("/srv/m/base")),
            "voxd models fetch --dest /srv/m base"
        );
        assert_eq!(
            fetch_command(Path::new("/srv/m/custom")),
            "voxd models fetch --dest /srv/m tiny.en"
        );
    }
}
