//! `voxd run` end to end, through the virtual microphone (cpal, ALSA, a private PulseAudio
//! server: scripts/env/vmic.sh): spoken commands run exactly their actions, chatter is refused,
//! every event is well formed, SIGHUP and an edit on disk reload (a broken grammar keeps
//! the old commands, a good edit adds new ones), the microphone may vanish and come back,
//! SIGTERM stops cleanly, and a broken config stops the start with a message naming the
//! file, the line and the key.
//!
//! The recordings come from scripts/data/make_daemon_audio.py (data/daemon/, made on first use);
//! the grammar and the config template are in tests/fixtures/daemon/. Nothing here asserts
//! wall-clock times: the tests wait for events, not for durations.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common;
use crate::common::vmic::VirtualMic;
use crate::turns;

/// data/daemon/ made by the project's script (once per test binary; a rerun that changes
/// nothing writes nothing), and its manifest.
fn recordings() -> (PathBuf, Value) {
    static MADE: Mutex<bool> = Mutex::new(false);
    let dir = common::repo().join("data/daemon");
    let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    if !*made {
        let status = Command::new("python3")
            .arg(common::repo().join("scripts/data/make_daemon_audio.py"))
            .status()
            .expect("run scripts/data/make_daemon_audio.py");
        assert!(status.success(), "scripts/data/make_daemon_audio.py failed");
        *made = true;
    }
    let manifest = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap())
        .expect("data/daemon/manifest.json");
    (dir, manifest)
}

fn fixture(name: &str) -> PathBuf {
    common::repo().join("tests/fixtures/daemon").join(name)
}

/// A one-command clip of data/daemon/clips/ (48 kHz stereo, for the microphone) and its
/// manifest item: the intent and slots it must be heard as.
fn clip(name: &str) -> (PathBuf, Value) {
    let (dir, manifest) = recordings();
    let clip = &manifest["clips"][name];
    let wav = clip["48k_stereo"]
        .as_str()
        .unwrap_or_else(|| panic!("no clip {name}"));
    (dir.join(wav), clip["items"][0].clone())
}

fn is_outcome(e: &Value) -> bool {
    e["event"] == "intent" || e["event"] == "not_recognized"
}

fn is_capture(e: &Value, kind: &str) -> bool {
    e["event"] == "capture" && e["kind"] == kind
}

/// A folder with config.toml (from the template, with the model's path), grammar.toml and
/// actions/, where the actions write actions.log.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let model = common::model_dir("tiny.en");
        let config = std::fs::read_to_string(fixture("config.toml"))
            .unwrap()
            .replace("@MODEL@", &model.display().to_string());
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        std::fs::copy(fixture("grammar.toml"), dir.path().join("grammar.toml")).unwrap();
        std::fs::create_dir(dir.path().join("actions")).unwrap();
        Setup { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config.toml")
    }

    fn grammar(&self) -> PathBuf {
        self.dir.path().join("grammar.toml")
    }

    /// The lines the actions appended, in order.
    fn actions_log(&self) -> Vec<String> {
        match std::fs::read_to_string(self.dir.path().join("actions/actions.log")) {
            Ok(text) => text.lines().map(str::to_string).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("actions.log: {e}"),
        }
    }
}

/// A running `voxd run` and the JSON lines it has printed so far; killed when dropped
/// before [`Daemon::stop`] (a failed test), so that it cannot outlive the test.
struct Daemon {
    child: Child,
    lines: mpsc::Receiver<String>,
    events: Vec<Value>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Daemon {
    fn start(config: &Path, args: &[&str], env: &[(String, String)]) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_voxd"))
            .arg("run")
            .arg("--config")
            .arg(config)
            .args(["--stdout", "json", "-t", "2"])
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env_remove("VOXD_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start voxd run");
        let lines = common::line_reader(child.stdout.take().unwrap());
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Daemon {
            child,
            lines,
            events: Vec::new(),
            stderr: Some(stderr),
        }
    }

    /// Waits for the first event after those seen so far for which `hit` holds; returns it.
    fn wait_for(&mut self, what: &str, timeout: Duration, hit: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(e) => {
                    panic!(
                        "no {what} within {timeout:?} ({e}); events so far:\n{}",
                        lines(&self.events)
                    );
                }
            };
            let event: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            self.events.push(event.clone());
            if hit(&event) {
                return event;
            }
        }
    }

    fn wait_event(&mut self, name: &str, timeout: Duration) -> Value {
        self.wait_for(name, timeout, |e| e["event"] == name)
    }

    fn assert_running(&mut self) {
        let exited = self.child.try_wait().unwrap();
        assert!(
            exited.is_none(),
            "voxd run exited ({exited:?}); events so far:\n{}",
            lines(&self.events)
        );
    }

    /// Plays a one-command clip into `mic`: it must be heard as the clip's intent with its
    /// slots, and its action must run to its end.
    fn runs_command(&mut self, mic: &VirtualMic, name: &str) {
        let (wav, item) = clip(name);
        mic.say(&wav);
        let heard = self.wait_for(name, Duration::from_secs(30), is_outcome);
        assert_eq!(
            (&heard["intent"], &heard["slots"]),
            (&item["intent"], &item["slots"]),
            "{name}: {heard}"
        );
        self.wait_for(
            &format!("the action of {name}"),
            Duration::from_secs(30),
            |e| {
                e["event"] == "action" && e["intent"] == item["intent"] && e["status"] == "finished"
            },
        );
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid, which it keeps until we wait for it.
        let done = unsafe { libc::kill(self.child.id() as libc::pid_t, signal) };
        assert_eq!(done, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// SIGTERM, then every event up to `stopped`, the exit status and the log.
    fn stop(mut self) -> (Vec<Value>, ExitStatus, String) {
        self.signal(libc::SIGTERM);
        self.wait_event("stopped", Duration::from_secs(60));
        let status = self.child.wait().unwrap();
        // Anything after `stopped` would be a bug: collect it for the caller to see.
        for line in self.lines.iter() {
            self.events.push(
                serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")),
            );
        }
        let log = self.stderr.take().unwrap().join().unwrap_or_default();
        (std::mem::take(&mut self.events), status, log)
    }
}

impl Daemon {
    /// Stops the daemon and checks the end every spoken session must have: well-formed
    /// events with `stopped` last, exit status 0, no utterance dropped, and exactly
    /// `actions` in the actions' log. Returns the events and the log.
    fn stop_cleanly(self, setup: &Setup, actions: &[&str]) -> (Vec<Value>, String) {
        let (events, status, log) = self.stop();
        let shown = format!("events:\n{}\nlog:\n{log}", lines(&events));
        let problems = malformed(&events);
        assert!(problems.is_empty(), "{}\n{shown}", problems.join("\n"));
        assert!(status.success(), "exit status {status}\n{shown}");
        assert_eq!(events.last().unwrap()["utterances_dropped"], 0, "{shown}");
        assert_eq!(setup.actions_log(), actions, "{shown}");
        (events, log)
    }
}

fn lines(events: &[Value]) -> String {
    events
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

const REASONS: &[&str] = &[
    "silence",
    "too_long",
    "no_speech",
    "no_sentence",
    "not_in_grammar",
    "word_not_in_grammar",
    "more_speech",
    "unlikely",
];

const ACTION_STATUSES: &[&str] = &[
    "started",
    "finished",
    "timed_out",
    "skipped_cooldown",
    "refused_busy",
    "failed_to_start",
    "wait_failed",
    "notified",
    "notify_failed",
];

/// Every event has the fields the README's Events table documents, with their types; the
/// events come in clock order and `stopped` is the last. Returns the problems.
fn malformed(events: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut last_clock = 0;
    for (i, e) in events.iter().enumerate() {
        let mut bad = |what: &str| problems.push(format!("{what}: {e}"));
        let Some(name) = e["event"].as_str() else {
            bad("no event name");
            continue;
        };
        match e["clock_ms"].as_u64() {
            Some(clock) if clock >= last_clock => last_clock = clock,
            Some(_) => bad("clock_ms went backwards"),
            None => bad("no clock_ms"),
        }
        let uint = |k: &str| e[k].is_u64();
        let string = |k: &str| e[k].is_string();
        let ok = match name {
            "ready" => string("mode") && string("model") && uint("intents") && string("audio"),
            "speech_start" => uint("start_ms") && uint("onset_ms"),
            "speech_end" => {
                uint("start_ms")
                    && uint("end_ms")
                    && e["cut"].is_boolean()
                    && e["start_ms"].as_u64() < e["end_ms"].as_u64()
            }
            "intent" => {
                uint("start_ms")
                    && uint("end_ms")
                    && string("intent")
                    && e["slots"].is_object()
                    && string("text")
                    && e["score"].is_number()
                    && uint("recognize_ms")
            }
            "not_recognized" => {
                uint("start_ms")
                    && uint("end_ms")
                    && e["reason"].as_str().is_some_and(|r| REASONS.contains(&r))
                    && string("text")
                    && (e["score"].is_number() || e["score"].is_null())
                    && uint("recognize_ms")
            }
            "action" => {
                let status = e["status"].as_str().unwrap_or_default();
                uint("end_ms")
                    && uint("id")
                    && string("intent")
                    && ACTION_STATUSES.contains(&status)
                    && match status {
                        "started" => uint("pid"),
                        "finished" => {
                            uint("duration_ms")
                                && e.get("exit_code").is_some()
                                && e.get("signal").is_some()
                        }
                        "failed_to_start" | "notify_failed" => string("error"),
                        _ => true,
                    }
            }
            "reload" => match e["outcome"].as_str() {
                Some("failed") => string("error"),
                Some("replaced" | "unchanged") => e.get("error").is_none(),
                _ => false,
            },
            "capture" => match e["kind"].as_str() {
                Some("opened") => string("device") && e["format"].is_object(),
                Some("lost") => string("reason"),
                Some("retrying") => uint("attempt") && uint("delay_ms"),
                Some("resumed") => string("device"),
                Some("failed") => string("error"),
                _ => false,
            },
            "overrun" => uint("dropped"),
            "error" => string("message"),
            "stopped" => {
                uint("audio_ms")
                    && uint("utterances")
                    && uint("utterances_dropped")
                    && uint("windows_dropped")
                    && i + 1 == events.len()
            }
            _ => false,
        };
        if !ok {
            bad("fields missing, of the wrong type, or out of place");
        }
    }
    if events.last().map(|e| &e["event"]) != Some(&json!("stopped")) {
        problems.push("the last event is not `stopped`".into());
    }
    problems
}

/// Which manifest item an utterance (audio-clock ms) belongs to: the one whose speech span,
/// moved by the playback offset, overlaps it.
fn item_of(items: &[Value], offset_ms: i64, event: &Value) -> Option<usize> {
    let (start, end) = (
        event["start_ms"].as_i64().unwrap(),
        event["end_ms"].as_i64().unwrap(),
    );
    items.iter().position(|item| {
        let onset = (item["onset_s"].as_f64().unwrap() * 1000.0) as i64 + offset_ms;
        let offset = (item["offset_s"].as_f64().unwrap() * 1000.0) as i64 + offset_ms;
        start < offset && end > onset
    })
}

/// The whole session through the virtual microphone: 10 commands and 6 chatter utterances
/// in pink noise (24 dB). Exactly the 10 actions run, in order, with their slots; every
/// chatter utterance is refused and runs nothing; the events are well formed, `stopped` is
/// last and the daemon exits 0.
#[test]
fn spoken_commands_run_their_actions_and_chatter_is_refused() {
    let (dir, manifest) = recordings();
    let session = &manifest["session"];
    let items = session["items"].as_array().unwrap();
    let grammar = voxd::grammar::Grammar::load(&[fixture("grammar.toml")]).unwrap();
    // The manifest agrees with the grammar: commands match as listed, chatter does not match.
    for item in items {
        let found = grammar.match_text(item["text"].as_str().unwrap());
        match item["intent"].as_str() {
            Some(intent) => {
                let found = found.unwrap_or_else(|| panic!("{item}: no match"));
                assert_eq!(found.intent, intent, "{item}");
                assert_eq!(
                    serde_json::to_value(found.all_slots()).unwrap(),
                    item["slots"],
                    "{item}"
                );
            }
            None => assert!(found.is_none(), "chatter matches the grammar: {item}"),
        }
    }

    let _turn = turns::alone();
    let setup = Setup::new();
    let mic = VirtualMic::start();
    let mut daemon = Daemon::start(&setup.config(), &[], &mic.env);
    let ready = daemon.wait_event("ready", Duration::from_secs(120));
    assert_eq!(ready["mode"], "commands", "{ready}");
    assert_eq!(ready["model"], "tiny.en", "{ready}");
    assert_eq!(ready["intents"], 6, "{ready}");

    let wav = dir.join(session["48k_stereo"].as_str().unwrap());
    let mut player = mic.play(&wav);
    // The first utterance tells where the playback began on the daemon's audio clock.
    let first = daemon.wait_event("speech_start", Duration::from_secs(30));
    let offset_ms = first["onset_ms"].as_i64().unwrap()
        - (items[0]["onset_s"].as_f64().unwrap() * 1000.0) as i64;
    assert!(player.wait().unwrap().success(), "playback failed");
    // The last item's outcome, then SIGTERM.
    let last = items.len() - 1;
    daemon.wait_for("the last item's outcome", Duration::from_secs(60), |e| {
        matches!(e["event"].as_str(), Some("intent" | "not_recognized"))
            && item_of(items, offset_ms, e) == Some(last)
    });
    let (events, status, log) = daemon.stop();
    let shown = || format!("events:\n{}\nlog:\n{log}", lines(&events));

    let problems = malformed(&events);
    assert!(problems.is_empty(), "{}\n{}", problems.join("\n"), shown());
    assert!(status.success(), "exit status {status}\n{}", shown());

    // Each utterance belongs to one item; each command got exactly its intent, each chatter
    // utterance was refused.
    let mut outcomes: BTreeMap<usize, Vec<&Value>> = BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e["event"] == "intent" || e["event"] == "not_recognized")
    {
        let k = item_of(items, offset_ms, e)
            .unwrap_or_else(|| panic!("an utterance outside every item: {e}\n{}", shown()));
        outcomes.entry(k).or_default().push(e);
    }
    let mut failures = Vec::new();
    for (k, item) in items.iter().enumerate() {
        let got = outcomes.get(&k).cloned().unwrap_or_default();
        let ok = match item["intent"].as_str() {
            Some(intent) => {
                got.len() == 1
                    && got[0]["event"] == "intent"
                    && got[0]["intent"] == intent
                    && got[0]["slots"] == item["slots"]
            }
            None => !got.is_empty() && got.iter().all(|e| e["event"] == "not_recognized"),
        };
        if !ok {
            failures.push(format!(
                "{} {:?}: expected {}, got {}",
                item["kind"],
                item["text"],
                item["intent"],
                lines(&got.into_iter().cloned().collect::<Vec<_>>())
            ));
        }
    }
    assert!(failures.is_empty(), "{}\n{}", failures.join("\n"), shown());

    // Exactly the expected actions ran, in order, each started and finished with status 0,
    // and each action event carries its utterance's end.
    let expected: Vec<String> = items
        .iter()
        .filter_map(|i| i["log"].as_str().map(str::to_string))
        .collect();
    assert_eq!(setup.actions_log(), expected, "{}", shown());
    let intents: Vec<&Value> = events.iter().filter(|e| e["event"] == "intent").collect();
    let actions: Vec<&Value> = events.iter().filter(|e| e["event"] == "action").collect();
    let mut by_id: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for a in &actions {
        by_id
            .entry(a["id"].as_u64().unwrap())
            .or_default()
            .push(a["status"].as_str().unwrap());
        assert!(
            intents
                .iter()
                .any(|i| i["end_ms"] == a["end_ms"] && i["intent"] == a["intent"]),
            "an action without its intent: {a}\n{}",
            shown()
        );
        if a["status"] == "finished" {
            assert_eq!(a["exit_code"], 0, "{a}\n{}", shown());
        }
    }
    assert_eq!(by_id.len(), expected.len(), "{}", shown());
    assert!(
        by_id.values().all(|s| s == &["started", "finished"]),
        "{by_id:?}\n{}",
        shown()
    );
    let stopped = events.last().unwrap();
    assert_eq!(stopped["utterances_dropped"], 0, "{}", shown());
    println!(
        "{} items, playback at {offset_ms} ms on the audio clock; {} intents, {} refusals, {} \
         actions; {stopped}",
        items.len(),
        intents.len(),
        events
            .iter()
            .filter(|e| e["event"] == "not_recognized")
            .count(),
        expected.len()
    );
}

/// What asks the daemon to read its files again.
#[derive(Clone, Copy, Debug)]
enum Reload {
    /// SIGHUP after each edit, with the file watch off.
    Signal,
    /// Nothing: the daemon notices the edit on disk.
    FileWatch,
}

/// Saves `text` as editors do, into a new file renamed over the old one: the watch must
/// see a rename as a change, and never reads a file half written.
fn save(path: &Path, text: &str) {
    let new = path.with_extension("toml.new");
    std::fs::write(&new, text).unwrap();
    std::fs::rename(&new, path).unwrap();
}

/// A grammar with a syntax error is reported (file and line) and the commands loaded before
/// keep working; a good edit that adds an intent replaces them and the new intent is
/// recognised and runs its action.
fn reload_keeps_old_commands_on_error_and_takes_a_good_edit(how: Reload) {
    let _turn = turns::alone();
    let setup = Setup::new();
    let original = std::fs::read_to_string(setup.grammar()).unwrap();
    let mic = VirtualMic::start();
    let args: &[&str] = match how {
        // Without the file watch, only SIGHUP reloads.
        Reload::Signal => &["--no-watch"],
        Reload::FileWatch => &[],
    };
    let mut daemon = Daemon::start(&setup.config(), args, &mic.env);
    daemon.wait_event("ready", Duration::from_secs(120));
    let edit = |daemon: &mut Daemon, text: &str| {
        save(&setup.grammar(), text);
        if let Reload::Signal = how {
            daemon.signal(libc::SIGHUP);
        }
        daemon.wait_event("reload", Duration::from_secs(30))
    };

    // A broken template on a known line.
    let broken = original.replace(
        r#"sentences = ["pause the music"]"#,
        r#"sentences = ["pause the (music"]"#,
    );
    assert_ne!(broken, original);
    let line = broken
        .lines()
        .position(|l| l.contains("pause the (music"))
        .unwrap()
        + 1;
    let reload = edit(&mut daemon, &broken);
    assert_eq!(reload["outcome"], "failed", "{reload}");
    let error = reload["error"].as_str().unwrap();
    let place = format!("{}:{line}:", setup.grammar().display());
    assert!(error.contains(&place), "`{place}` not in {error}");

    // The old commands still work.
    daemon.runs_command(&mic, "kitchen_on");

    // A good edit: the old grammar plus an intent.
    let added = format!(
        "{original}\n[intents.OpenDoor]\nsentences = [\"open the {{door}} door\"]\n\
         run = [\"sh\", \"-c\", \"printf '%s %s\\\\n' \\\"$VOXD_INTENT\\\" \
         \\\"$VOXD_SLOT_DOOR\\\" >> actions.log\"]\n\n\
         [lists.door]\nvalues = [\"garage\", \"front\", \"back\"]\n"
    );
    let reload = edit(&mut daemon, &added);
    assert_eq!(
        reload,
        json!({"event": "reload", "outcome": "replaced",
        "clock_ms": reload["clock_ms"]})
    );
    daemon.runs_command(&mic, "open_door");

    let (events, log) = daemon.stop_cleanly(&setup, &["LightOn kitchen", "OpenDoor garage"]);
    let shown = format!("events:\n{}\nlog:\n{log}", lines(&events));
    let reloads = events.iter().filter(|e| e["event"] == "reload").count();
    assert_eq!(reloads, 2, "one reload per edit\n{shown}");
    let cause = match how {
        Reload::Signal => "SIGHUP: reloading",
        Reload::FileWatch => "a config or grammar file changed: reloading",
    };
    assert!(
        log.contains(cause) && log.contains("reload failed") && log.contains("commands reloaded"),
        "{log}"
    );
}

#[test]
fn sighup_reload_keeps_old_commands_on_error_and_takes_a_good_edit() {
    reload_keeps_old_commands_on_error_and_takes_a_good_edit(Reload::Signal);
}

/// The same edits, without a signal: the daemon sees them on disk.
#[test]
fn an_edit_on_disk_reloads_keeping_old_commands_on_error_and_taking_a_good_edit() {
    reload_keeps_old_commands_on_error_and_takes_a_good_edit(Reload::FileWatch);
}

/// The microphone's sound server goes away between two commands and comes back: `voxd run`
/// reports the loss and its retries and stays up, capture resumes on its own, and the
/// command spoken after it runs its action as the one before did; SIGTERM then stops it
/// cleanly.
#[test]
fn the_daemon_survives_the_microphone_vanishing_and_coming_back() {
    let _turn = turns::alone();
    let setup = Setup::new();
    let mic = VirtualMic::start();
    let mut daemon = Daemon::start(&setup.config(), &[], &mic.env);
    daemon.wait_event("ready", Duration::from_secs(120));
    daemon.runs_command(&mic, "kitchen_on");

    mic.vanish();
    daemon.wait_for("capture lost", Duration::from_secs(30), |e| {
        is_capture(e, "lost")
    });
    // A second attempt: a reopen that fails while the device is away is survived too.
    daemon.wait_for("a second retry", Duration::from_secs(30), |e| {
        is_capture(e, "retrying") && e["attempt"].as_u64() >= Some(2)
    });
    daemon.assert_running();
    mic.come_back();
    daemon.wait_for("capture resumed", Duration::from_secs(60), |e| {
        is_capture(e, "resumed")
    });
    daemon.runs_command(&mic, "pause_music");

    let (events, log) = daemon.stop_cleanly(&setup, &["LightOn kitchen", "PauseMusic"]);
    let shown = format!("events:\n{}\nlog:\n{log}", lines(&events));
    // Opened once; each loss (the first, then every failed reopen) is followed by a retry;
    // resumed once, at the end.
    let kinds: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "capture")
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    let retries = &kinds[1..kinds.len() - 1];
    assert!(
        kinds.first() == Some(&"opened")
            && kinds.last() == Some(&"resumed")
            && retries.len() >= 4
            && retries.chunks(2).all(|pair| pair == ["lost", "retrying"]),
        "{kinds:?}\n{shown}"
    );
    println!("capture events: {kinds:?}");
}

/// A config that cannot work stops `voxd run` before it listens, with an exit code and a
/// message naming the file, the line and the key (and the missing file a key names), each
/// part once.
#[test]
fn config_errors_stop_the_start_with_a_clear_message() {
    let _turn = turns::shared();
    struct Case {
        what: &'static str,
        from: &'static str,
        to: &'static str,
        code: i32,
        /// Parts of the message; `{config}` is the config file's path, `{dir}` its folder,
        /// `{line}` the line of the edit's last line.
        expect: &'static [&'static str],
    }
    let cases = [
        Case {
            what: "unknown key",
            from: "notifications = false",
            to: "notifications = false\nnotification = true",
            code: 2,
            expect: &["{config}", "line {line}", "unknown field `notification`"],
        },
        Case {
            what: "wrong type",
            from: "threads = 2",
            to: "threads = \"two\"",
            code: 2,
            expect: &["{config}", "line {line}", "[model] threads", "invalid type"],
        },
        Case {
            what: "bad mode",
            from: "mode = \"commands\"",
            to: "mode = \"dictation\"",
            code: 2,
            expect: &["{config}", "line {line}", "[run] mode", "dictation"],
        },
        Case {
            what: "missing grammar file",
            from: "grammars = [\"grammar.toml\"]",
            to: "grammars = [\"missing.toml\"]",
            code: 1,
            expect: &[
                "{config}: line {line}: [commands] grammars: {dir}/missing.toml: ",
                "No such file",
            ],
        },
        Case {
            what: "broken grammar",
            from: "grammars = [\"grammar.toml\"]",
            to: "grammars = [\"broken.toml\"]",
            code: 1,
            expect: &["{dir}/broken.toml:2:"],
        },
        Case {
            what: "missing model",
            from: "path = \"",
            to: "path = \"/nonexistent",
            code: 1,
            expect: &[
                "{config}: line {line}: [model] path: cannot load the model: /nonexistent",
                "no such model file",
            ],
        },
    ];
    let mut failures = Vec::new();
    for case in &cases {
        let setup = Setup::new();
        let dir = setup.dir.path().display().to_string();
        std::fs::write(
            setup.dir.path().join("broken.toml"),
            "[intents.A]\nsentences = [\"pause the (music\"]\n",
        )
        .unwrap();
        let text = std::fs::read_to_string(setup.config()).unwrap();
        assert!(text.contains(case.from), "{}: {}", case.what, case.from);
        let edited = text.replacen(case.from, case.to, 1);
        let last_line_of_edit = case.to.lines().last().unwrap();
        let line = 1 + edited
            .lines()
            .position(|l| l.contains(last_line_of_edit))
            .unwrap();
        std::fs::write(setup.config(), edited).unwrap();
        // A WAV source: should the config be accepted after all, the run ends by itself.
        let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
            .arg("run")
            .arg("--config")
            .arg(setup.config())
            .args(["--stdout", "json", "--wav"])
            .arg(common::jfk())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The error itself, not the log lines before it.
        let message = stderr
            .lines()
            .find(|l| l.starts_with("voxd: "))
            .unwrap_or_default();
        let config = setup.config().display().to_string();
        let missing: Vec<String> = case
            .expect
            .iter()
            .map(|p| {
                p.replace("{config}", &config)
                    .replace("{dir}", &dir)
                    .replace("{line}", &line.to_string())
            })
            .filter(|p| message.matches(p.as_str()).count() != 1)
            .collect();
        if out.status.code() != Some(case.code) || !missing.is_empty() || !out.stdout.is_empty() {
            failures.push(format!(
                "{}: exit {:?} (expected {}), not once in the message {missing:?}, stdout {:?}, \
                 stderr:\n{stderr}",
                case.what,
                out.status.code(),
                case.code,
                String::from_utf8_lossy(&out.stdout)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
