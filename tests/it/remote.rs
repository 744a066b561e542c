//! `voxd run` with its utterances transcribed by a Wyoming server no one here wrote
//! (`[model] remote`): wyoming-faster-whisper, from the reference `.venv/`, serving the
//! checkout's tiny.en. The demo recording, read as fast as possible, must run every
//! command's action, also when the server comes up only after voxd has started (the
//! utterance waits and is retried); a server that never comes costs the utterances, each
//! reported, and voxd still ends cleanly.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common;
use crate::demo::{demo, heard_problems, path_with_stand_ins};

/// How long the test waits for voxd and the server; generous, since the tests share two
/// cores.
const PATIENCE: Duration = Duration::from_secs(300);

/// A TCP port nothing listens on (just freed by the system).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `voxd run` on the demo recording (commands only, as fast as it can be read) with the
/// demo's grammars and stand-in programs, its speech heard by the server at `uri`.
fn voxd_run(uri: &str, retry_s: u64) -> (Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    let demo_config = std::fs::read_to_string(demo().join("config.toml")).unwrap();
    // The demo's settings, its relative paths from its own folder, with the server.
    let text = demo_config
        .replace("\"../../", &format!("\"{}/", common::repo().display()))
        .replace(
            "[model]\n",
            &format!("[model]\nremote = \"{uri}\"\nremote_retry_s = {retry_s}\n"),
        );
    std::fs::write(&config, text).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .arg("--config")
        .arg(&config)
        .args([
            "run",
            "--mode",
            "commands",
            "--stdout",
            "json",
            "--no-watch",
        ])
        .arg("--wav")
        .arg(demo().join("session.wav"))
        .env("PATH", path_with_stand_ins())
        .env_remove("VOXD_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start voxd run");
    (child, dir)
}

/// wyoming-faster-whisper on `port`, with tiny.en from the checkout, never downloading.
fn faster_whisper_server(port: u16, data: &std::path::Path) -> Child {
    let python = common::repo().join(".venv/bin/python");
    let found = Command::new(&python)
        .args(["-c", "import wyoming_faster_whisper"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{} cannot import wyoming_faster_whisper: run scripts/setup.sh --reference",
        python.display()
    );
    Command::new(python)
        .args(["-m", "wyoming_faster_whisper", "--uri"])
        .arg(format!("tcp://127.0.0.1:{port}"))
        .arg("--model")
        .arg(common::model_dir("tiny.en"))
        .arg("--data-dir")
        .arg(data)
        .args([
            "--stt-library",
            "faster-whisper",
            "--language",
            "en",
            "--local-files-only",
            // One thread: OpenMP's threads spin against the tests running beside them.
            "--cpu-threads",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start wyoming-faster-whisper")
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn events_of(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn shown(events: &[Value]) -> String {
    events
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Waits for `child` to end within PATIENCE (killing it past that) and collects its output.
fn finish(mut child: Child) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > PATIENCE {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn wyoming_faster_whisper_hears_the_commands_of_voxd_run_even_when_it_starts_late() {
    common::model_dir("tiny.en");
    let port = free_port();
    let (voxd, _config) = voxd_run(&format!("tcp://127.0.0.1:{port}"), 240);
    // The server starts only once voxd has found it missing: the first utterance waits.
    let mut voxd = voxd;
    let lines = common::line_reader(voxd.stdout.take().unwrap());
    let mut events = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no `remote` event from voxd: {}", shown(&events)));
        let event: Value = serde_json::from_str(&line).unwrap();
        let lost = event["event"] == "remote" && event["kind"] == "lost";
        events.push(event);
        if lost {
            break;
        }
    }
    let data = tempfile::tempdir().unwrap();
    let _server = Killed(faster_whisper_server(port, data.path()));
    let out = finish(voxd);
    events.extend(
        lines
            .iter()
            .map(|l| serde_json::from_str::<Value>(&l).unwrap()),
    );
    let log = String::from_utf8_lossy(&out.stderr);
    let all = shown(&events);
    assert!(out.status.success(), "voxd run failed: {log}\n{all}");
    let named = |name: &'static str| events.iter().filter(move |e| e["event"] == name);

    let manifest: Value =
        serde_json::from_slice(&std::fs::read(demo().join("session.json")).unwrap()).unwrap();
    let mut problems = heard_problems(&manifest, &events, &log);
    // The server's transcripts of ordinary speech are matched as text: no sentence fits.
    problems.extend(
        named("not_recognized")
            .filter(|e| e["reason"] != "no_sentence")
            .map(|e| format!("refused for another reason than no_sentence: {e}")),
    );
    assert!(problems.is_empty(), "{}\n{all}\n{log}", problems.join("\n"));
    let finished = named("action")
        .filter(|e| e["status"] == "finished" && e["exit_code"] == 0)
        .count();
    assert_eq!(finished, named("intent").count(), "{all}");
    // The wait was reported, and its end; nothing was given up.
    let kinds: Vec<&str> = named("remote")
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"lost"), "{all}");
    assert_eq!(kinds.last(), Some(&"resumed"), "{all}");
    assert!(
        kinds.contains(&"retrying") && !kinds.contains(&"gave_up"),
        "{all}"
    );
    assert_eq!(named("error").count(), 0, "{all}");
    let stopped = events.last().unwrap();
    assert_eq!(stopped["event"], "stopped", "{all}");
}

#[test]
fn a_server_that_never_comes_costs_each_utterance_with_a_report_and_voxd_ends_cleanly() {
    let port = free_port();
    let (voxd, _config) = voxd_run(&format!("tcp://127.0.0.1:{port}"), 1);
    let out = finish(voxd);
    let events = events_of(&out);
    let all = shown(&events);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "voxd run failed: {log}\n{all}");
    let named = |name: &'static str| events.iter().filter(move |e| e["event"] == name);
    let utterances = named("speech_end").count();
    assert!(utterances >= 5, "{all}");
    // Every utterance is reported lost, naming the server and why.
    let errors: Vec<&str> = named("error")
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), utterances, "{all}");
    let server = format!("tcp://127.0.0.1:{port}");
    for message in &errors {
        assert!(
            message.starts_with("recognising the audio at ")
                && message.contains(&server)
                && message.contains("cannot connect"),
            "{message}"
        );
    }
    assert_eq!(
        named("intent").count() + named("action").count(),
        0,
        "{all}"
    );
    let kinds: Vec<&str> = named("remote")
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"lost"), "{all}");
    assert_eq!(
        kinds.iter().filter(|k| **k == "gave_up").count(),
        utterances,
        "{all}"
    );
    assert_eq!(events.last().unwrap()["event"], "stopped", "{all}");
}

#[test]
fn a_remote_server_is_refused_with_captions_and_a_bad_address_is_named() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_voxd"))
            .args(["run", "--wav"])
            .arg(demo().join("session.wav"))
            .args(args)
            .arg("--grammar")
            .arg(common::repo().join("grammars/timers.toml"))
            .output()
            .unwrap()
    };
    let out = run(&["--remote", "tcp://127.0.0.1:1", "--mode", "both"]);
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        error.contains("--remote") && error.contains("--mode commands"),
        "{error}"
    );
    let out = run(&["--remote", "localhost:10300"]);
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        error.contains("--remote") && error.contains("tcp://HOST:PORT"),
        "{error}"
    );
}
