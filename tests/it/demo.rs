//! The demo `scripts/run.sh` shows with no arguments (`examples/demo/`): `voxd run` with the
//! demo config on the bundled recording hears each command of its manifest as that intent
//! with its slots, runs the stand-in of its action (which prints what the real program would
//! do), refuses the sentence of ordinary speech as a command and shows it as captions.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

use crate::common;
use crate::common::captions::word_errors;

pub(crate) fn demo() -> PathBuf {
    common::repo().join("examples/demo")
}

/// PATH with the demo's stand-ins first, as `scripts/run.sh` sets it.
pub(crate) fn path_with_stand_ins() -> std::ffi::OsString {
    let mut dirs = vec![demo().join("bin")];
    dirs.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(dirs).unwrap()
}

fn voxd_with_demo_config(args: &[&str]) -> Output {
    // The demo config names the checkout's model: fail loudly when it is not installed.
    common::model_dir("tiny.en");
    Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(args)
        .arg("--config")
        .arg(demo().join("config.toml"))
        .env("PATH", path_with_stand_ins())
        .env_remove("VOXD_LOG")
        .output()
        .expect("run voxd")
}

/// Whether the event's utterance (`start_ms`..`end_ms`) overlaps the piece's span.
pub(crate) fn overlaps(event: &Value, piece: &Value) -> bool {
    let ms = |v: &Value| (v.as_f64().unwrap() * 1000.0) as u64;
    let (start, end) = (ms(&piece["start_s"]), ms(&piece["end_s"]));
    event["start_ms"].as_u64().unwrap() < end && event["end_ms"].as_u64().unwrap() > start
}

/// What went wrong in hearing the demo recording (`manifest`: `examples/demo/session.json`):
/// each piece must be heard as one event, a command as its intent with its slots, ordinary
/// speech as `not_recognized`; and each command's stand-in must have said, in `log`, what
/// the real program would do.
pub(crate) fn heard_problems(manifest: &Value, events: &[Value], log: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for piece in manifest["pieces"].as_array().unwrap() {
        let heard: Vec<&Value> = events
            .iter()
            .filter(|e| e["event"] == "intent" || e["event"] == "not_recognized")
            .filter(|e| overlaps(e, piece))
            .collect();
        let right = match (piece["intent"].as_str(), heard.as_slice()) {
            (Some(intent), [e]) => {
                e["event"] == "intent" && e["intent"] == intent && e["slots"] == piece["slots"]
            }
            (None, [e]) => e["event"] == "not_recognized",
            _ => false,
        };
        if !right {
            problems.push(format!("{}: heard as {heard:?}", piece["text"]));
        }
        if let Some(intent) = piece["intent"].as_str() {
            let said = log
                .lines()
                .any(|l| l.contains(&format!("({intent}): would run: ")));
            if !said {
                problems.push(format!("{intent}: no stand-in output in the log"));
            }
        }
    }
    problems
}

#[test]
fn the_demo_recording_runs_its_commands_and_captions_its_speech() {
    let manifest_path = demo().join("session.json");
    let manifest: Value = serde_json::from_slice(&std::fs::read(&manifest_path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", manifest_path.display()));
    let wav = demo().join("session.wav");
    // As fast as possible rather than at real time: the same utterances, sooner.
    let out = voxd_with_demo_config(&[
        "run",
        "--stdout",
        "json",
        "--no-watch",
        "--wav",
        wav.to_str().unwrap(),
    ]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "voxd run failed: {log}");
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let shown = events
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    let named = |name: &'static str| events.iter().filter(move |e| e["event"] == name);

    let mut problems = heard_problems(&manifest, &events, &log);
    for piece in manifest["pieces"].as_array().unwrap() {
        // The ordinary speech comes out as captions.
        if piece["intent"].is_null() {
            let text: Vec<&str> = named("final")
                .filter(|e| overlaps(e, piece))
                .map(|e| e["text"].as_str().unwrap())
                .collect();
            let (errors, words) = word_errors(piece["text"].as_str().unwrap(), &text.join(" "));
            if errors * 5 > words {
                problems.push(format!(
                    "captions {text:?}: {errors} word errors in {words} against {}",
                    piece["text"]
                ));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{}\nevents:\n{shown}\nlog:\n{log}",
        problems.join("\n")
    );
    let finished = named("action")
        .filter(|e| e["status"] == "finished" && e["exit_code"] == 0)
        .count();
    assert_eq!(finished, named("intent").count(), "{shown}");
    assert!(
        named("action").all(|e| e["status"] == "started" || e["status"] == "finished"),
        "{shown}"
    );
    let stopped = events.last().unwrap();
    assert_eq!(stopped["event"], "stopped", "{shown}");
    assert_eq!(stopped["utterances_dropped"], 0, "{shown}");
}

/// A file read as fast as it goes is captioned in the stream's order, however the decoder
/// keeps up with the front end (here two runs at once, beside the other tests): the same
/// finals, times included, every run.
#[test]
fn the_demo_recording_is_captioned_the_same_on_every_run() {
    let wav = demo().join("session.wav");
    let finals = || {
        let args = [
            "run",
            "--stdout",
            "json",
            "--no-watch",
            "--log",
            "warn",
            "--wav",
        ];
        let out = voxd_with_demo_config(&[&args[..], &[wav.to_str().unwrap()]].concat());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .filter(|e| e["event"] == "final")
            .map(|e| {
                format!(
                    "{} {}-{} {}",
                    e["text"], e["start_ms"], e["end_ms"], e["words"]
                )
            })
            .collect::<Vec<_>>()
    };
    let runs: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2).map(|_| s.spawn(finals)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(!runs[0].is_empty(), "no finals");
    assert_eq!(runs[0], runs[1]);
}

/// Every program the repository's grammars run has a stand-in in `examples/demo/bin/`, so
/// no command of the demo can fail to start whatever it is heard as.
#[test]
fn every_program_the_grammars_run_has_a_stand_in() {
    let out = voxd_with_demo_config(&["doctor", "--no-audio"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let actions = stdout
        .lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with("actions ")))
        .unwrap_or_else(|| panic!("no actions line:\n{stdout}"));
    assert!(actions.starts_with("ok "), "{actions}");
    let bin = demo().join("bin");
    assert!(
        actions.contains(&bin.display().to_string()),
        "the programs were not found in {}: {actions}",
        bin.display()
    );
}
