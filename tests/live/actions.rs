//! Actions with real processes: slot values as literal arguments and variables, timeouts
//! that kill the process group, cooldowns, the concurrency limit and its queue, start
//! failures, a caller that never waits, and desktop notifications on a private session bus
//! (scripts/env/notify-bus.sh) and with no bus at all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use voxd::actions::{
    ActionEvent, ActionEventKind, ActionRequest, ActionRunner, ActionSet, ActionsConfig,
};
use voxd::grammar::{Grammar, SlotValue};

use crate::turns;

/// The recorder and other helpers are Python scripts run by path as argv[0]; Debian's
/// python3 is installed by scripts/setup.sh (python3-dbusmock needs it).
const PYTHON: &str = "/usr/bin/python3";

/// Appends one JSON line per run to argv[1]: the other arguments, the `VOXD_*` variables
/// and the working directory. No braces: `{` would open a placeholder.
const RECORDER: &str = "import json, os, sys; open(sys.argv[1], 'a').write(json.dumps(dict(\
    argv=sys.argv[2:], cwd=os.getcwd(), env=dict((k, v) for k, v in os.environ.items() \
    if k.startswith('VOXD_')))) + chr(10))";

/// Long enough for any event here on a loaded machine; the tests wait less when it comes.
const EVENT_WAIT: Duration = Duration::from_secs(20);

fn need_python() {
    assert!(
        Path::new(PYTHON).exists(),
        "{PYTHON} not found: run scripts/setup.sh"
    );
}

/// A TOML array of strings (a JSON array of strings is one).
fn toml_array(items: &[&str]) -> String {
    serde_json::to_string(items).unwrap()
}

/// A grammar with the given intents and a `room` list.
fn grammar(intents: &str) -> Grammar {
    let text = format!(
        "{intents}\n[lists.room]\nvalues = [\"kitchen\", \"living room\", \
         {{ in = \"bed room\", out = \"bedroom\" }}]\n"
    );
    Grammar::from_texts([(PathBuf::from("test.toml"), text)]).unwrap()
}

fn start(grammar: &Grammar, config: &ActionsConfig) -> (ActionRunner, Receiver<ActionEvent>) {
    let actions = ActionSet::from_grammar(grammar, config).unwrap();
    ActionRunner::start(actions, config).unwrap()
}

fn quiet_config() -> ActionsConfig {
    ActionsConfig {
        notifications: false,
        ..ActionsConfig::default()
    }
}

fn request(intent: &str, slots: &[(&str, &str)]) -> ActionRequest {
    ActionRequest {
        intent: intent.into(),
        slots: slots
            .iter()
            .map(|(k, v)| (k.to_string(), SlotValue::Text(v.to_string())))
            .collect(),
        text: None,
    }
}

/// The next event of request `id`, skipping other requests' events.
fn next_event(events: &Receiver<ActionEvent>, id: u64) -> ActionEventKind {
    let deadline = Instant::now() + EVENT_WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = events
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no event for request {id} within {EVENT_WAIT:?}"));
        if event.id == id {
            return event.kind;
        }
    }
}

/// Waits for request `id` to end and returns its last event.
fn outcome(events: &Receiver<ActionEvent>, id: u64) -> ActionEventKind {
    loop {
        match next_event(events, id) {
            ActionEventKind::Started { .. } => continue,
            other => return other,
        }
    }
}

fn assert_success(kind: &ActionEventKind) {
    assert!(
        matches!(
            kind,
            ActionEventKind::Finished {
                exit_code: Some(0),
                ..
            }
        ),
        "{kind:?}"
    );
}

fn records(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[test]
fn tricky_slot_values_arrive_as_single_literal_arguments_and_variables() {
    let _turn = turns::shared();
    need_python();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs.jsonl");
    let pwned = dir.path().join("pwned");
    let run = toml_array(&[
        PYTHON,
        "-c",
        RECORDER,
        log.to_str().unwrap(),
        "{room}",
        "--room={room}",
        "{domain}",
    ]);
    let g = grammar(&format!(
        "[intents.Record]\nsentences = [\"record [the] {{room}}\"]\nrun = {run}\n\
         slots = {{ domain = \"light\" }}\n"
    ));
    let config = ActionsConfig {
        working_dir: Some(dir.path().to_path_buf()),
        ..quiet_config()
    };
    let (runner, events) = start(&g, &config);

    let touch = format!("$(touch {})", pwned.display());
    let tricky = [
        "living room",
        "it's \"quoted\"",
        "a; touch pwned",
        touch.as_str(),
        "`touch pwned`",
        "line one\nline two",
        "  spaced  ",
        "* ~ > pwned | cat",
        "",
    ];
    for value in tricky {
        let mut req = request("Record", &[("room", value), ("domain", "light")]);
        req.text = Some(format!("record {value}"));
        let id = runner.submit(&req).unwrap();
        assert_success(&outcome(&events, id));
    }
    let runs = records(&log);
    assert_eq!(runs.len(), tricky.len());
    for (run, value) in runs.iter().zip(tricky) {
        let argv: Vec<&str> = run["argv"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert_eq!(argv, [value, &format!("--room={value}"), "light"]);
        let env = &run["env"];
        assert_eq!(env["VOXD_INTENT"], "Record");
        assert_eq!(env["VOXD_SLOT_ROOM"], value);
        assert_eq!(env["VOXD_SLOT_DOMAIN"], "light");
        assert_eq!(env["VOXD_TEXT"], format!("record {value}").as_str());
        assert_eq!(
            run["cwd"],
            dir.path().canonicalize().unwrap().to_str().unwrap()
        );
    }
    assert!(!pwned.exists(), "a slot value was run as a command");

    // The same through the grammar: a list's `out` value and the intent's fixed slot.
    let found = g.match_text("record the bed room").unwrap();
    let id = runner.submit(&ActionRequest::from_match(&found)).unwrap();
    assert_success(&outcome(&events, id));
    let last = records(&log).pop().unwrap();
    assert_eq!(last["argv"][0], "bedroom");
    assert_eq!(last["env"]["VOXD_SLOT_DOMAIN"], "light");
    assert_eq!(last["env"]["VOXD_TEXT"], "record the bed room");
}

#[test]
fn a_slot_value_that_would_be_an_option_is_refused_unless_after_dashes_or_raw() {
    need_python();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("runs.jsonl");
    let log = log.to_str().unwrap();
    let intent = |name: &str, args: &[&str]| {
        let mut run = vec![PYTHON, "-c", RECORDER, log];
        run.extend_from_slice(args);
        format!(
            "[intents.{name}]\nsentences = [\"{name} {{level}}\"]\nrun = {}\n",
            toml_array(&run)
        )
    };
    let g = grammar(&format!(
        "{}{}{}[lists.level]\nrange = {{ from = -10, to = 10 }}\n",
        intent("Plain", &["{level}"]),
        intent("AfterDashes", &["--", "{level}"]),
        intent("Raw", &["{level:raw}", "--level={level}"]),
    ));
    let (runner, events) = start(&g, &quiet_config());
    let submit = |intent: &str| {
        let request = ActionRequest {
            intent: intent.into(),
            slots: [("level".to_string(), SlotValue::Integer(-5))].into(),
            text: None,
        };
        runner.submit(&request).unwrap()
    };
    // A range's negative value would be an argument of its own starting with `-`: a
    // getopt-style program reads `-5` as options `-5`.
    match next_event(&events, submit("Plain")) {
        ActionEventKind::FailedToStart { error } => {
            assert!(error.contains("slot `level` is \"-5\""), "{error}");
            assert!(error.contains("run argument 4"), "{error}");
        }
        other => panic!("expected failed_to_start, got {other:?}"),
    }
    assert_success(&outcome(&events, submit("AfterDashes")));
    assert_success(&outcome(&events, submit("Raw")));
    let argvs: Vec<serde_json::Value> = records(Path::new(log))
        .into_iter()
        .map(|run| run["argv"].clone())
        .collect();
    assert_eq!(
        argvs,
        [
            serde_json::json!(["--", "-5"]),
            serde_json::json!(["-5", "--level=-5"])
        ]
    );
}

/// A process that is neither running nor left unreaped.
fn is_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name in parentheses; Z is a zombie, X dead.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| matches!(rest.trim_start().chars().next(), Some('Z' | 'X'))),
    }
}

fn wait_until_gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if is_gone(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn a_timeout_kills_the_command_and_its_process_group() {
    let _turn = turns::shared();
    need_python();
    let dir = tempfile::tempdir().unwrap();
    let child_pid_file = dir.path().join("grandchild.pid");
    // Starts `sleep 30` as its own child (same process group) and then sleeps too.
    let spawner = "import subprocess, sys, time; p = subprocess.Popen(['sleep', '30']); \
                   open(sys.argv[1], 'w').write(str(p.pid)); time.sleep(30)";
    let g = grammar(&format!(
        "[intents.Sleep]\nsentences = [\"sleep\"]\nrun = {}\ntimeout_ms = 300\n\
         [intents.Spawn]\nsentences = [\"spawn\"]\nrun = {}\ntimeout_ms = 1500\n",
        toml_array(&["sleep", "30"]),
        toml_array(&[PYTHON, "-c", spawner, child_pid_file.to_str().unwrap()]),
    ));
    let (runner, events) = start(&g, &quiet_config());

    let t0 = Instant::now();
    let id = runner.submit(&request("Sleep", &[])).unwrap();
    let ActionEventKind::Started { pid } = next_event(&events, id) else {
        panic!("sleep did not start");
    };
    match next_event(&events, id) {
        ActionEventKind::TimedOut {
            timeout_ms,
            duration_ms,
        } => {
            assert_eq!(timeout_ms, 300);
            assert!((300..3000).contains(&duration_ms), "{duration_ms} ms");
        }
        other => panic!("expected timed_out, got {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert!(wait_until_gone(pid), "sleep {pid} still runs");

    let id = runner.submit(&request("Spawn", &[])).unwrap();
    assert!(matches!(
        outcome(&events, id),
        ActionEventKind::TimedOut { .. }
    ));
    let grandchild: u32 = std::fs::read_to_string(&child_pid_file)
        .expect("the spawner wrote its child's pid before its timeout")
        .parse()
        .unwrap();
    assert!(
        wait_until_gone(grandchild),
        "the command's own child {grandchild} survived the timeout"
    );
}

#[test]
fn a_repeat_within_the_cooldown_is_skipped() {
    let _turn = turns::shared();
    let g = grammar(
        "[intents.Slow]\nsentences = [\"slow\"]\nrun = [\"true\"]\ncooldown_ms = 60000\n\
         [intents.Free]\nsentences = [\"free\"]\nrun = [\"true\"]\n",
    );
    let (runner, events) = start(&g, &quiet_config());
    let first = runner.submit(&request("Slow", &[])).unwrap();
    assert_success(&outcome(&events, first));
    let repeat = runner.submit(&request("Slow", &[])).unwrap();
    match next_event(&events, repeat) {
        ActionEventKind::SkippedCooldown {
            cooldown_ms,
            since_last_ms,
        } => {
            assert_eq!(cooldown_ms, 60_000);
            assert!(since_last_ms < 60_000);
        }
        other => panic!("expected skipped_cooldown, got {other:?}"),
    }
    // Another intent has its own cooldown (none here): it runs every time.
    for _ in 0..2 {
        let id = runner.submit(&request("Free", &[])).unwrap();
        assert_success(&outcome(&events, id));
    }
}

#[test]
fn beyond_the_concurrency_limit_commands_queue_then_are_refused() {
    let _turn = turns::shared();
    let g = grammar(&format!(
        "[intents.Wait]\nsentences = [\"wait\"]\nrun = {}\n",
        toml_array(&["sleep", "0.4"])
    ));
    let config = ActionsConfig {
        max_concurrent: 1,
        queue: 1,
        ..quiet_config()
    };
    let (runner, events) = start(&g, &config);
    let running = runner.submit(&request("Wait", &[])).unwrap();
    assert!(matches!(
        next_event(&events, running),
        ActionEventKind::Started { .. }
    ));
    let queued = runner.submit(&request("Wait", &[])).unwrap();
    let refused = runner.submit(&request("Wait", &[])).unwrap();
    assert_eq!(
        next_event(&events, refused),
        ActionEventKind::RefusedBusy {
            max_concurrent: 1,
            queue: 1
        }
    );
    // The queued command starts only after the running one has finished: one channel,
    // events in the order they happened.
    let mut order = Vec::new();
    while order.len() < 3 {
        let event = events.recv_timeout(EVENT_WAIT).expect("an event");
        let name = match event.kind {
            ActionEventKind::Started { .. } => "started",
            ActionEventKind::Finished { .. } => "finished",
            other => panic!("unexpected {other:?}"),
        };
        order.push((event.id, name));
    }
    assert_eq!(
        order,
        [
            (running, "finished"),
            (queued, "started"),
            (queued, "finished")
        ]
    );
}

#[test]
fn with_no_queue_a_busy_runner_refuses_at_once() {
    let _turn = turns::shared();
    let g = grammar(&format!(
        "[intents.Wait]\nsentences = [\"wait\"]\nrun = {}\n",
        toml_array(&["sleep", "0.3"])
    ));
    let config = ActionsConfig {
        max_concurrent: 1,
        queue: 0,
        ..quiet_config()
    };
    let (runner, events) = start(&g, &config);
    let running = runner.submit(&request("Wait", &[])).unwrap();
    assert!(matches!(
        next_event(&events, running),
        ActionEventKind::Started { .. }
    ));
    let refused = runner.submit(&request("Wait", &[])).unwrap();
    assert!(matches!(
        next_event(&events, refused),
        ActionEventKind::RefusedBusy { queue: 0, .. }
    ));
    assert_success(&outcome(&events, running));
}

#[test]
fn start_failures_are_reported_with_a_clear_error() {
    let _turn = turns::shared();
    let g = grammar(
        "[intents.Absent]\nsentences = [\"absent\"]\n\
         run = [\"/nonexistent/voxd-test-no-such-program\", \"x\"]\n\
         [intents.NotOnPath]\nsentences = [\"not on path\"]\n\
         run = [\"voxd-test-no-such-program\"]\n\
         [intents.Room]\nsentences = [\"room {room}\", \"room\"]\nrun = [\"echo\", \"{room}\"]\n",
    );
    let (runner, events) = start(&g, &quiet_config());
    let expect_failure = |intent: &str, needles: &[&str]| {
        let id = runner.submit(&request(intent, &[])).unwrap();
        match next_event(&events, id) {
            ActionEventKind::FailedToStart { error } => {
                for needle in needles {
                    assert!(error.contains(needle), "{intent}: {error}");
                }
            }
            other => panic!("{intent}: expected failed_to_start, got {other:?}"),
        }
    };
    expect_failure(
        "Absent",
        &[
            "cannot run `/nonexistent/voxd-test-no-such-program`",
            "No such file",
        ],
    );
    expect_failure("NotOnPath", &["give an absolute path, or a program on"]);
    // "room" alone captures no room, and the intent has no fixed one.
    expect_failure("Room", &["slot `room` was not captured"]);
    // The runner goes on.
    let id = runner
        .submit(&request("Room", &[("room", "kitchen")]))
        .unwrap();
    assert_success(&outcome(&events, id));
}

#[test]
fn submitting_never_waits_for_a_running_command() {
    let _turn = turns::shared();
    let g = grammar(&format!(
        "[intents.Long]\nsentences = [\"long\"]\nrun = {}\ntimeout_ms = 1500\n",
        toml_array(&["sleep", "30"])
    ));
    let config = ActionsConfig {
        max_concurrent: 1,
        queue: 1,
        ..quiet_config()
    };
    let (runner, events) = start(&g, &config);
    let mut slowest = Duration::ZERO;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        ids.push(runner.submit(&request("Long", &[])).unwrap());
        slowest = slowest.max(t0.elapsed());
    }
    assert!(
        slowest < Duration::from_millis(50),
        "submit took {slowest:?}"
    );
    // One runs and one waits, each until its timeout; the others found no place.
    let ends: Vec<_> = final_events(&events, &ids).into_values().collect();
    assert!(
        matches!(
            ends.as_slice(),
            [
                ActionEventKind::TimedOut { .. },
                ActionEventKind::TimedOut { .. },
                ActionEventKind::RefusedBusy { .. },
                ActionEventKind::RefusedBusy { .. },
                ActionEventKind::RefusedBusy { .. },
            ]
        ),
        "{ends:?}"
    );
}

/// The last event of each of `ids`, read in the order they come.
fn final_events(events: &Receiver<ActionEvent>, ids: &[u64]) -> BTreeMap<u64, ActionEventKind> {
    let mut ends = BTreeMap::new();
    while ends.len() < ids.len() {
        let event = events.recv_timeout(EVENT_WAIT).expect("an event");
        if !matches!(event.kind, ActionEventKind::Started { .. }) && ids.contains(&event.id) {
            ends.insert(event.id, event.kind);
        }
    }
    ends
}

/// Set in the environment of this test binary when it runs itself as a notification
/// client (see `run_self`).
const CHILD_ROLE: &str = "ACTIONS_TEST_CHILD";

/// Runs this test binary again for one test only (`test`: the function's name), as the child
/// side of that test, through `wrapper` (a command prefix) and with `env` changes; fails the
/// test with the child's output when the child fails or ran no test at all (a wrong name).
fn run_self(test: &str, wrapper: &[&str], configure: impl FnOnce(&mut Command)) {
    let exe = std::env::current_exe().unwrap();
    let mut command = match wrapper.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(&exe);
            command
        }
        None => Command::new(&exe),
    };
    // The harness names a test by its path below the crate root: this module's, then the
    // function's.
    let module = module_path!()
        .split_once("::")
        .map_or("", |(_, module)| module);
    command
        .arg(format!("{module}::{test}"))
        .args(["--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ROLE, "1");
    configure(&mut command);
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "the child run of {test} failed or found no such test ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

fn notify_grammar() -> Grammar {
    grammar(
        "[intents.LightOn]\nsentences = [\"lights on in [the] {room}\"]\nrun = [\"true\"]\n\
         notify = \"Lights on in the {room}\"\n",
    )
}

const NOTIFIED_ROOM: &str = "kitchen; $(touch x) `id`";

#[test]
fn notifications_reach_the_session_bus_with_the_slots_filled_in() {
    let _turn = turns::shared();
    if std::env::var_os(CHILD_ROLE).is_some() {
        return notify_on_the_private_bus();
    }
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("notify.log");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/env/notify-bus.sh");
    run_self(
        "notifications_reach_the_session_bus_with_the_slots_filled_in",
        &["bash", script.to_str().unwrap(), log.to_str().unwrap()],
        |_| {},
    );
    let calls = std::fs::read_to_string(&log).unwrap();
    let notify = calls
        .lines()
        .find(|line| line.contains(" Notify "))
        .unwrap_or_else(|| panic!("no Notify call reached the mock server:\n{calls}"));
    assert!(notify.contains("\"voxd\""), "{notify}");
    assert!(
        notify.contains(&format!("Lights on in the {NOTIFIED_ROOM}")),
        "{notify}"
    );
}

/// The child side: the bus and the mock server are up (scripts/env/notify-bus.sh waited).
fn notify_on_the_private_bus() {
    let (runner, events) = start(&notify_grammar(), &ActionsConfig::default());
    let id = runner
        .submit(&request("LightOn", &[("room", NOTIFIED_ROOM)]))
        .unwrap();
    let mut notified = None;
    let mut finished = false;
    while notified.is_none() || !finished {
        match next_event(&events, id) {
            ActionEventKind::Notified { text } => notified = Some(text),
            ActionEventKind::Finished { .. } => finished = true,
            ActionEventKind::Started { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        notified.unwrap(),
        format!("Lights on in the {NOTIFIED_ROOM}")
    );
}

#[test]
fn without_a_session_bus_a_notification_fails_and_the_command_still_runs() {
    let _turn = turns::shared();
    if std::env::var_os(CHILD_ROLE).is_some() {
        return notify_without_a_bus();
    }
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("no-bus-here");
    run_self(
        "without_a_session_bus_a_notification_fails_and_the_command_still_runs",
        &[],
        |command| {
            command
                .env(
                    "DBUS_SESSION_BUS_ADDRESS",
                    format!("unix:path={}", nowhere.display()),
                )
                .env("XDG_RUNTIME_DIR", dir.path())
                .env_remove("DISPLAY")
                .env_remove("WAYLAND_DISPLAY");
        },
    );
}

fn notify_without_a_bus() {
    let (runner, events) = start(&notify_grammar(), &ActionsConfig::default());
    for _ in 0..2 {
        let t0 = Instant::now();
        let id = runner
            .submit(&request("LightOn", &[("room", "kitchen")]))
            .unwrap();
        assert!(t0.elapsed() < Duration::from_millis(50));
        let mut failure = None;
        let mut finished = false;
        while failure.is_none() || !finished {
            match next_event(&events, id) {
                ActionEventKind::NotifyFailed { error } => failure = Some(error),
                kind @ ActionEventKind::Finished { .. } => {
                    assert_success(&kind);
                    finished = true;
                }
                ActionEventKind::Started { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        let failure = failure.unwrap();
        assert!(failure.starts_with("desktop notification: "), "{failure}");
    }
}

#[test]
fn the_example_grammars_have_valid_actions() {
    let _turn = turns::shared();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("grammars");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let g = Grammar::load(&files).unwrap();
    if let Err(error) = ActionSet::from_grammar(&g, &ActionsConfig::default()) {
        panic!("{error}");
    }
}
