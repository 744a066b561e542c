//! `voxd doctor` on real setups: a healthy one (the model, a grammar whose program exists, a
//! private PulseAudio virtual microphone playing speech, a private notification bus) and
//! broken ones (a missing model, a grammar with a syntax error, an invalid config, a stale
//! service file), asserting the lines a user reads and the exit status.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common;
use crate::common::vmic::VirtualMic;
use crate::turns;

/// A setup in a folder of its own: home, config folder and data folder inside it, so the
/// user's own files are never read.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(config: &str, grammar: &str) -> Self {
        let setup = Setup {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(setup.home().join(".config")).unwrap();
        std::fs::write(setup.config(), config).unwrap();
        std::fs::write(setup.dir.path().join("commands.toml"), grammar).unwrap();
        setup
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    /// `voxd doctor --config FILE ARGS`, through `wrapper` (e.g. the notification bus
    /// script) when given.
    fn doctor(&self, wrapper: &[&str], args: &[&str], env: &[(String, String)]) -> Output {
        let voxd = env!("CARGO_BIN_EXE_voxd");
        let mut argv: Vec<String> = wrapper.iter().map(|s| s.to_string()).collect();
        argv.push(voxd.to_string());
        argv.extend(["doctor", "--config"].map(String::from));
        argv.push(self.config().display().to_string());
        argv.extend(args.iter().map(|s| s.to_string()));
        let output = Command::new(&argv[0])
            .args(&argv[1..])
            .env("HOME", self.home())
            .env("XDG_CONFIG_HOME", self.home().join(".config"))
            .env("XDG_DATA_HOME", self.home().join(".local/share"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run voxd doctor");
        eprintln!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }
}

fn line<'a>(stdout: &'a str, check: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with(check)))
        .unwrap_or_else(|| panic!("no `{check}` line in:\n{stdout}"))
}

fn config_text(model: &Path) -> String {
    format!(
        "[model]\npath = {:?}\n\n[commands]\ngrammars = [\"commands.toml\"]\n\n[audio]\ndevice = \"default\"\n",
        model.display().to_string()
    )
}

const GOOD_GRAMMAR: &str = "[intents.LightOn]\nsentences = [\"turn on the light\"]\n\
                            run = [\"true\"]\nnotify = \"Light on\"\n";

/// An environment whose session bus leads nowhere.
fn no_bus(dir: &Path) -> Vec<(String, String)> {
    vec![(
        "DBUS_SESSION_BUS_ADDRESS".to_string(),
        format!("unix:path={}", dir.join("no-bus-here").display()),
    )]
}

#[test]
fn a_healthy_setup_passes_every_check() {
    let _turn = turns::shared();
    let setup = Setup::new(&config_text(&common::model_dir("tiny.en")), GOOD_GRAMMAR);
    let mic = VirtualMic::start();
    // Speech in the microphone while doctor listens (jfk.wav speaks from its first second;
    // doctor loads the model before it listens).
    let mut player = mic.play(&common::jfk());
    let log = setup.path().join("notify.log");
    let bus = common::repo().join("scripts/env/notify-bus.sh");
    let output = setup.doctor(
        &["bash", bus.to_str().unwrap(), log.to_str().unwrap()],
        &[],
        &mic.env,
    );
    let _ = player.kill();
    let _ = player.wait();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    let config = setup.config().display().to_string();
    assert_eq!(
        line(&stdout, "config"),
        format!("ok    config        {config}: valid")
    );
    let model = line(&stdout, "model");
    assert!(
        model.starts_with("ok ") && model.contains("models/tiny.en") && model.contains("loads"),
        "{model}"
    );
    let grammars = line(&stdout, "grammars");
    assert!(
        grammars.starts_with("ok ")
            && grammars.contains("1 intents from")
            && grammars.contains("commands.toml"),
        "{grammars}"
    );
    let actions = line(&stdout, "actions");
    assert!(
        actions.starts_with("ok ")
            && actions.contains("1 programs found")
            && actions.ends_with("/true"),
        "{actions}"
    );
    assert!(line(&stdout, "input devices").starts_with("ok "));
    let mic_line = line(&stdout, "microphone");
    assert!(
        mic_line.starts_with("ok ")
            && mic_line.contains("samples in 1.0 s")
            && mic_line.contains("dBFS RMS"),
        "{mic_line}"
    );
    let notifications = line(&stdout, "notifications");
    assert!(
        notifications.starts_with("ok ") && notifications.contains("org.freedesktop.Notifications"),
        "{notifications}"
    );
    assert_eq!(
        line(&stdout, "service"),
        "ok    service       not installed (to start voxd at login: voxd install-service)"
    );
    assert!(
        stdout.ends_with("\n8 ok, 0 warnings, 0 failures\n"),
        "{stdout}"
    );
}

#[test]
fn a_missing_model_fails_and_names_the_fetch_command() {
    let _turn = turns::shared();
    let models = tempfile::tempdir().unwrap();
    let missing = models.path().join("tiny.en");
    let setup = Setup::new(&config_text(&missing), GOOD_GRAMMAR);
    // A service file whose binary is gone.
    let units = setup.home().join(".config/systemd/user");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::write(
        units.join("voxd.service"),
        "[Service]\nExecStart=/nonexistent/bin/voxd run --config /x.toml\n",
    )
    .unwrap();
    let mic = VirtualMic::start();
    let output = setup.doctor(&[], &[], &[mic.env.clone(), no_bus(setup.path())].concat());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert_eq!(
        line(&stdout, "model"),
        format!(
            "FAIL  model         {} (the config's [model] path): not found -> voxd models fetch --dest {} tiny.en",
            missing.display(),
            models.path().display()
        )
    );
    // The rest is still checked.
    assert!(line(&stdout, "grammars").starts_with("ok "));
    // Nothing plays into the virtual microphone: it delivers zeros.
    let mic_line = line(&stdout, "microphone");
    assert!(
        mic_line.starts_with("warn ")
            && mic_line.contains("digital silence")
            && mic_line.contains("-> muted"),
        "{mic_line}"
    );
    let notifications = line(&stdout, "notifications");
    assert!(
        notifications.starts_with("warn ")
            && notifications.contains("not reachable on the session bus")
            && notifications.contains("[actions] notifications = false"),
        "{notifications}"
    );
    let service = line(&stdout, "service");
    assert!(
        service.starts_with("warn ")
            && service.contains("runs /nonexistent/bin/voxd, which does not exist"),
        "{service}"
    );
    assert!(stdout.ends_with(" 1 failures\n"), "{stdout}");
}

#[test]
fn a_bad_grammar_fails_with_its_file_and_line() {
    let _turn = turns::shared();
    let grammar = "[intents.LightOn]\nsentences = [\"turn on the (light\"]\nrun = [\"true\"]\n";
    let setup = Setup::new(&config_text(&common::model_dir("tiny.en")), grammar);
    let output = setup.doctor(&[], &["--no-audio"], &no_bus(setup.path()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let grammars = line(&stdout, "grammars");
    let file = setup.path().join("commands.toml");
    assert!(
        grammars.starts_with("FAIL  grammars      ")
            && grammars.contains(&format!("{}:2:", file.display()))
            && grammars.contains("-> fix what the message names; `voxd grammar check FILE...`"),
        "{grammars}"
    );
    assert!(line(&stdout, "model").starts_with("ok "));
    assert!(!stdout.contains("microphone"), "{stdout}");
}

#[test]
fn missing_programs_warn_and_an_invalid_config_fails() {
    let _turn = turns::shared();
    let grammar = "[intents.LightOn]\nsentences = [\"turn on the light\"]\n\
                   run = [\"no-such-voxd-program\", \"on\"]\n";
    let setup = Setup::new(&config_text(&common::model_dir("tiny.en")), grammar);
    let output = setup.doctor(&[], &["--no-audio"], &no_bus(setup.path()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "a warning alone passes: {stdout}");
    let actions = line(&stdout, "actions");
    assert!(
        actions.starts_with("warn ")
            && actions.contains("`no-such-voxd-program` (LightOn): not found on PATH"),
        "{actions}"
    );

    std::fs::write(setup.config(), "[model]\nthreads = 2\nthreds = 3\n").unwrap();
    let output = setup.doctor(&[], &["--no-audio"], &no_bus(setup.path()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    let config = line(&stdout, "config");
    assert!(
        config.starts_with("FAIL  config        ")
            && config.contains("config.toml: line 3")
            && config.contains("threds"),
        "{config}"
    );
    assert_eq!(
        line(&stdout, "model"),
        "warn  model         not checked: the config file is invalid -> fix the config first"
    );
}
