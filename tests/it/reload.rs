//! Reloading the command set from real files: every broken edit is an error that names the
//! file (and the line), after which the set still understands the old sentences and runs
//! the old actions; a good edit replaces it. Through `voxd run`, a reload keeps the settings
//! the recogniser started with.

use std::path::{Path, PathBuf};
use std::time::Duration;

use voxd::actions::{ActionEventKind, ActionRequest, ActionRunner};

use crate::common;
use voxd::daemon::commands::{CommandFlags, CommandSet, LoadError, ReloadOutcome};

const CONFIG: &str = r#"[commands]
grammars = ["grammars/home.toml"]
beam = 3

[actions]
max_concurrent = 1
notifications = false
"#;

/// The action's exit code tells which version of it ran.
const GRAMMAR: &str = r#"[intents.LightOn]
sentences = ["turn on the {room} light"]
run = ["sh", "-c", "exit 7", "{room}"]

[lists.room]
values = ["kitchen", "hall"]
"#;

const OLD_SENTENCE: &str = "turn on the kitchen light";

struct Files {
    dir: tempfile::TempDir,
    config: PathBuf,
    grammar: PathBuf,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        let grammar = dir.path().join("grammars/home.toml");
        std::fs::create_dir(grammar.parent().unwrap()).unwrap();
        let files = Files {
            dir,
            config,
            grammar,
        };
        files.restore();
        files
    }

    fn restore(&self) {
        std::fs::write(&self.config, CONFIG).unwrap();
        std::fs::write(&self.grammar, GRAMMAR).unwrap();
    }

    fn load(&self) -> CommandSet {
        CommandSet::load(Some(&self.config), &CommandFlags::default()).unwrap()
    }
}

/// Flags that name grammar files and nothing else.
fn grammars(file: &Path) -> CommandFlags {
    CommandFlags {
        grammars: vec![file.to_path_buf()],
        ..CommandFlags::default()
    }
}

/// Runs the action of the intent `sentence` matches and returns its exit code.
fn exit_code(set: &CommandSet, sentence: &str) -> i32 {
    let found = set.grammar().match_text(sentence).unwrap();
    let (runner, events) =
        ActionRunner::start(set.actions().clone(), set.actions_config()).unwrap();
    let id = runner.submit(&ActionRequest::from_match(&found)).unwrap();
    loop {
        let event = events.recv_timeout(Duration::from_secs(10)).unwrap();
        match event.kind {
            ActionEventKind::Started { .. } => {}
            ActionEventKind::Finished {
                exit_code: Some(code),
                ..
            } if event.id == id => return code,
            other => panic!("unexpected event {other:?}"),
        }
    }
}

/// The set is the one loaded from the original files.
fn assert_old(set: &CommandSet) {
    let found = set.grammar().match_text(OLD_SENTENCE).unwrap();
    assert_eq!(found.intent, "LightOn");
    assert_eq!(set.grammar().intents().len(), 1);
    assert_eq!(set.settings().beam, 3);
    assert_eq!(set.actions_config().max_concurrent, 1);
    assert_eq!(exit_code(set, OLD_SENTENCE), 7);
}

/// Reloads after `edit`, expects an error containing every one of `expected`, checks the old
/// set is intact, then puts the files back: the reload that follows changes nothing.
fn assert_rejected(edit: impl FnOnce(&Files), expected: &[&str]) {
    let files = Files::new();
    let mut set = files.load();
    edit(&files);
    let error = set.reload().unwrap_err().to_string();
    for part in expected {
        let part = part.replace("{dir}", &files.dir.path().display().to_string());
        assert!(error.contains(&part), "`{part}` not in: {error}");
    }
    assert_old(&set);
    files.restore();
    assert_eq!(set.reload().unwrap(), ReloadOutcome::Unchanged);
    assert_old(&set);
}

fn rewrite(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from}");
    std::fs::write(path, text.replace(from, to)).unwrap();
}

#[test]
fn a_good_set_loads_and_lists_its_files() {
    let files = Files::new();
    let mut set = files.load();
    assert_old(&set);
    let listed: Vec<_> = set.files().collect();
    assert_eq!(listed, [files.config.as_path(), files.grammar.as_path()]);
    assert_eq!(set.reload().unwrap(), ReloadOutcome::Unchanged);
}

#[test]
fn the_repository_example_loads() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
    let set = CommandSet::load(Some(&example), &CommandFlags::default()).unwrap();
    assert_eq!(set.settings().grammars.len(), 4);
    let found = set
        .grammar()
        .match_text("turn on the kitchen light")
        .unwrap();
    assert_eq!(found.intent, "LightOn");
}

#[test]
fn a_grammar_syntax_error_keeps_the_old_set() {
    assert_rejected(
        |f| rewrite(&f.grammar, "light\"]", "light\""),
        &["{dir}/grammars/home.toml:3:1"],
    );
    assert_rejected(
        |f| rewrite(&f.grammar, "the {room} light", "the ({room} light"),
        &["{dir}/grammars/home.toml:2:", "("],
    );
}

#[test]
fn an_unknown_placeholder_keeps_the_old_set() {
    assert_rejected(
        |f| rewrite(&f.grammar, "\"{room}\"]", "\"{rooom}\"]"),
        &[
            "{dir}/grammars/home.toml:1: ",
            "intent `LightOn`",
            "`{rooom}` names no slot",
        ],
    );
}

#[test]
fn a_config_error_keeps_the_old_set() {
    assert_rejected(
        |f| rewrite(&f.config, "beam = 3", "beam = 3\nbeem = 4"),
        &["{dir}/config.toml: line 4", "beem"],
    );
    assert_rejected(
        |f| rewrite(&f.config, "beam = 3", "beam = \"three\""),
        &["{dir}/config.toml: line 3", "beam"],
    );
    assert_rejected(
        |f| rewrite(&f.config, "beam = 3", "beam = 64"),
        &["{dir}/config.toml: line 3", "[commands] beam = 64"],
    );
    assert_rejected(
        |f| rewrite(&f.config, "max_concurrent = 1", "max_concurrent = 0"),
        &["{dir}/config.toml: line 6", "[actions] max_concurrent"],
    );
    assert_rejected(
        |f| {
            rewrite(
                &f.config,
                "[actions]",
                "[actions]\nworking_dir = \"nowhere\"",
            )
        },
        &["{dir}/config.toml: ", "working_dir {dir}/nowhere"],
    );
}

#[test]
fn a_missing_grammar_file_keeps_the_old_set() {
    assert_rejected(
        |f| std::fs::remove_file(&f.grammar).unwrap(),
        &["{dir}/config.toml: line 2: [commands] grammars: {dir}/grammars/home.toml: "],
    );
    assert_rejected(
        |f| rewrite(&f.config, "home.toml", "house.toml"),
        &["{dir}/config.toml: line 2: [commands] grammars: {dir}/grammars/house.toml: "],
    );
}

#[test]
fn a_good_edit_replaces_the_set() {
    let files = Files::new();
    let mut set = files.load();
    rewrite(
        &files.grammar,
        "[lists.room]",
        "[intents.LightOff]\nsentences = [\"turn off the {room} light\"]\n\
         run = [\"sh\", \"-c\", \"exit 8\"]\n\n[lists.room]",
    );
    rewrite(&files.config, "beam = 3", "beam = 4");
    assert_eq!(set.reload().unwrap(), ReloadOutcome::Replaced);
    let found = set.grammar().match_text("turn off the hall light").unwrap();
    assert_eq!(found.intent, "LightOff");
    assert_eq!(exit_code(&set, "turn off the hall light"), 8);
    assert_eq!(exit_code(&set, OLD_SENTENCE), 7);
    assert_eq!(set.settings().beam, 4);
    assert_eq!(set.reload().unwrap(), ReloadOutcome::Unchanged);
}

#[test]
fn grammar_files_named_on_the_command_line_replace_the_configs() {
    let files = Files::new();
    let other = files.grammar.with_file_name("media.toml");
    std::fs::write(
        &other,
        "[intents.Pause]\nsentences = [\"pause\"]\nrun = [\"sh\", \"-c\", \"exit 9\"]\n",
    )
    .unwrap();
    let set = CommandSet::load(Some(&files.config), &grammars(&other)).unwrap();
    assert!(set.grammar().match_text(OLD_SENTENCE).is_none());
    assert_eq!(exit_code(&set, "pause"), 9);
    assert_eq!(set.settings().beam, 3);
    let listed: Vec<_> = set.files().collect();
    assert_eq!(listed, [files.config.as_path(), other.as_path()]);
    let without_config = CommandSet::load(None, &grammars(&other)).unwrap();
    assert_eq!(
        without_config.files().collect::<Vec<_>>(),
        [other.as_path()]
    );
    // A missing file named on the command line is not the config's to answer for.
    let missing = files.grammar.with_file_name("missing.toml");
    let error = CommandSet::load(Some(&files.config), &grammars(&missing))
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(&format!("{}: ", missing.display())),
        "{error}"
    );
}

#[test]
fn nothing_to_load_is_an_error_naming_the_config() {
    let files = Files::new();
    rewrite(&files.config, "grammars = [\"grammars/home.toml\"]", "");
    let error = CommandSet::load(Some(&files.config), &CommandFlags::default()).unwrap_err();
    assert!(matches!(error, LoadError::NoGrammars { .. }), "{error}");
    assert!(error.to_string().contains("config.toml"), "{error}");
    let error = CommandSet::load(None, &CommandFlags::default()).unwrap_err();
    assert!(matches!(error, LoadError::NothingToLoad), "{error}");
    std::fs::write(&files.grammar, "[lists.room]\nvalues = [\"hall\"]\n").unwrap();
    let error = CommandSet::load(Some(&files.config), &grammars(&files.grammar))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("home.toml") && error.contains("no intents"),
        "{error}"
    );
}

/// What makes the daemon read its files again.
#[derive(Clone, Copy, Debug)]
enum Trigger {
    /// An edit the file watch sees.
    FileEdit,
    /// SIGHUP, with the watch off.
    Sighup,
}

/// Settings that reach the recogniser at start reach it after a reload too: `[transcribe]
/// language` and `[llm] answer_unmatched`, observed through `voxd run` with the
/// multilingual model as the `heard` text (and its language) of speech that is no command,
/// before and after a grammar edit reloaded by the file watch and by SIGHUP.
#[test]
fn language_and_answer_unmatched_survive_a_reload() {
    for trigger in [Trigger::FileEdit, Trigger::Sighup] {
        reload_keeps_recogniser_settings(trigger);
    }
}

fn reload_keeps_recogniser_settings(trigger: Trigger) {
    use std::io::Write;
    use std::process::{Command, Stdio};

    let files = Files::new();
    std::fs::write(
        &files.config,
        format!(
            "[model]\npath = {:?}\nthreads = 2\n[transcribe]\nlanguage = \"de\"\n\
             [commands]\ngrammars = [\"grammars/home.toml\"]\n\
             [actions]\nnotifications = false\n\
             [llm]\nenabled = true\nanswer_unmatched = true\nmodel = {:?}\n\
             temperature = 0\nmax_tokens = 4\n",
            common::model_dir("base").display().to_string(),
            common::repo()
                .join("models/smollm2/model.gguf")
                .display()
                .to_string(),
        ),
    )
    .unwrap();
    let chatter = |text: &str| {
        let samples = common::speech::espeak(&[text], 2.0, files.dir.path());
        samples
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<u8>>()
    };
    let before = chatter("The weather was lovely at the seaside yesterday afternoon.");
    let after = chatter("My neighbour bought a new bicycle for his daughter last week.");

    let mut command = Command::new(env!("CARGO_BIN_EXE_voxd"));
    command
        .arg("run")
        .arg("--config")
        .arg(&files.config)
        .args([
            "--stdout", "json", "--log", "warn", "--stdin", "--rate", "16000",
        ])
        .args(["--channels", "1", "--pcm-format", "f32le"])
        .current_dir(files.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    if matches!(trigger, Trigger::Sighup) {
        command.arg("--no-watch");
    }
    let mut daemon = command.spawn().expect("voxd runs");
    let events = common::line_reader(daemon.stdout.take().unwrap());
    let mut stdin = daemon.stdin.take().unwrap();
    let mut seen = Vec::new();
    let mut next = |name: &str| -> serde_json::Value {
        loop {
            let line = events
                .recv_timeout(Duration::from_secs(180))
                .unwrap_or_else(|_| {
                    panic!("{trigger:?}: no `{name}` event; saw:\n{}", seen.join("\n"))
                });
            let event: serde_json::Value = serde_json::from_str(&line).unwrap();
            seen.push(line);
            if event["event"] == name {
                return event;
            }
        }
    };
    next("ready");

    stdin.write_all(&before).unwrap();
    let refused = next("not_recognized");
    assert!(refused["heard"].is_string(), "{trigger:?}: {refused}");
    assert_eq!(refused["heard_language"], "de", "{trigger:?}: {refused}");

    std::fs::write(
        &files.grammar,
        GRAMMAR.replace(
            r#"sentences = ["turn on the {room} light"]"#,
            r#"sentences = ["turn on the {room} light", "switch on the {room} light"]"#,
        ),
    )
    .unwrap();
    if matches!(trigger, Trigger::Sighup) {
        let status = Command::new("kill")
            .args(["-HUP", &daemon.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let reload = next("reload");
    assert_eq!(reload["outcome"], "replaced", "{trigger:?}: {reload}");

    stdin.write_all(&after).unwrap();
    let refused = next("not_recognized");
    assert!(
        refused["heard"].is_string(),
        "{trigger:?}: answer_unmatched lost in the reload: {refused}"
    );
    assert_eq!(
        refused["heard_language"], "de",
        "{trigger:?}: the language lost in the reload: {refused}"
    );

    drop(stdin);
    next("stopped");
    assert!(daemon.wait().unwrap().success(), "{trigger:?}");
}
