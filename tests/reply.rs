//! The daemon's reply path end to end: `daemon::run`, the code `voxd run` runs, hears a
//! question spoken by espeak-ng ("hey computer, ..." of grammars/ask.toml) in a WAV file and
//! hands it to the answerer, whose reply becomes a `reply` event and is spoken by the
//! `[llm] speak` program. The answerer is a closure: the point where the model plugs in,
//! and this test is about everything around it.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use voxd::capture::Pace;
use voxd::command::{CommandSet, Recognizer};
use voxd::config::{Config, RunMode};
use voxd::daemon::{self, ReplyOptions, ReplyOutcome, StopReason};
use voxd::frontend::Source;
use voxd::whisper::transcribe::Transcriber;

/// `text` spoken by espeak-ng, with a second of silence on each side, as a 16 kHz WAV.
fn spoken(text: &str, dir: &Path) -> PathBuf {
    let raw = dir.join("espeak.wav");
    let status = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "150", "-w"])
        .arg(&raw)
        .arg(text)
        .status()
        .expect("espeak-ng runs (Debian: apt-get install espeak-ng)");
    assert!(status.success());
    let speech = voxd::audio::read_wav(&raw).unwrap();
    let silence = vec![0.0f32; 16_000];
    let path = dir.join("question.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut wav = hound::WavWriter::create(&path, spec).unwrap();
    for &x in silence.iter().chain(&speech).chain(&silence) {
        wav.write_sample(x).unwrap();
    }
    wav.finalize().unwrap();
    path
}

fn events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_spoken_question_is_answered_reported_and_spoken() {
    let dir = tempfile::tempdir().unwrap();
    let wav = spoken("Hey computer, what is the capital of France?", dir.path());
    // The speech program records what it reads on stdin.
    let speaker = dir.path().join("speak.sh");
    let spoken_log = dir.path().join("spoken.txt");
    std::fs::write(&speaker, "#!/bin/sh\ncat > \"$1\"\n").unwrap();
    std::fs::set_permissions(&speaker, std::fs::Permissions::from_mode(0o755)).unwrap();
    let config_path = dir.path().join("config.toml");
    std::fs::write(
        &config_path,
        format!(
            "[commands]\ngrammars = [{:?}]\n\
             [actions]\nnotifications = false\n\
             [llm]\nenabled = true\nspeak = [{:?}, {:?}]\n",
            common::repo()
                .join("grammars/ask.toml")
                .display()
                .to_string(),
            speaker.display().to_string(),
            spoken_log.display().to_string(),
        ),
    )
    .unwrap();
    let config = Config::load(&config_path).unwrap();
    let commands = CommandSet::load(Some(&config_path), &[]).unwrap();

    let asked = Arc::new(Mutex::new(Vec::new()));
    let questions = Arc::clone(&asked);
    let reply = "Paris; \"$(rm -rf ~)\" `id`\nthat's it.";
    let answer = move |question: &str| {
        questions.lock().unwrap().push(question.to_string());
        Ok(ReplyOutcome {
            text: reply.to_string(),
            tokens: 12,
            stopped: StopReason::Eos,
        })
    };

    let transcriber = Transcriber::load(&common::model_dir("tiny.en"), 2).unwrap();
    let recognizer = Recognizer::new(
        transcriber,
        commands.grammar().clone(),
        commands.settings().recognizer_options(),
    )
    .unwrap();
    let events_path = dir.path().join("events.jsonl");
    daemon::run(daemon::RunOptions {
        mode: RunMode::Commands,
        engine: daemon::Engine::Commands(Box::new(recognizer)),
        commands: Some(commands),
        model_name: "tiny.en".into(),
        source: Source::Wav {
            path: wav,
            pace: Pace::Fast,
        },
        front_end: config.front_end(false),
        output: daemon::OutputOptions {
            stdout: voxd::config::StdoutFormat::Off,
            file: Some(events_path.clone()),
            socket: None,
        },
        captions: None,
        subtitles: Vec::new(),
        watch_files: false,
        reply: Some(ReplyOptions::new(&config, Box::new(answer))),
    })
    .unwrap();

    let events = events(&events_path);
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    let position = |name| names.iter().position(|n| *n == name);
    let (Some(intent), Some(answered)) = (position("intent"), position("reply")) else {
        panic!("no intent and reply events: {events:#?}");
    };
    assert_eq!(events[intent]["intent"], "Ask", "{events:#?}");
    // What Whisper heard is not the point here (tiny.en hears espeak's "France" as
    // "friends"); that the wildcard's text is what the answerer was asked is.
    let question = events[intent]["slots"]["question"].as_str().unwrap();
    assert!(question.starts_with("what is the capital"), "{question}");
    assert_eq!(*asked.lock().unwrap(), [question]);
    // The reply follows its question and carries the clock of the utterance that asked.
    assert!(intent < answered, "{names:?}");
    let r = &events[answered];
    assert_eq!(r["question"], question);
    assert_eq!(r["text"], reply);
    assert_eq!(r["tokens"], 12);
    assert_eq!(r["stopped"], "eos");
    assert!(r["reply_ms"].is_u64());
    assert_eq!(r["start_ms"], events[intent]["start_ms"]);
    assert_eq!(r["end_ms"], events[intent]["end_ms"]);
    assert_eq!(names.last(), Some(&"stopped"), "{names:?}");
    assert!(!names.contains(&"error"), "{events:#?}");
    // Spoken before `stopped`: the text exactly, on stdin.
    assert_eq!(std::fs::read_to_string(&spoken_log).unwrap(), reply);
}
