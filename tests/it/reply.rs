//! Replies end to end through `voxd run` with the real models (tiny.en and SmolLM2): spoken
//! questions become `reply` events whose text the `[llm] speak` program receives on its
//! stdin, while commands keep running their actions.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::common;

/// `texts` spoken by espeak-ng one after the other, each followed by `gap` seconds of
/// silence, as one 16 kHz WAV.
fn spoken(texts: &[&str], gap: f32, dir: &Path) -> PathBuf {
    let path = dir.join("speech.wav");
    common::speech::write_wav(&path, &common::speech::espeak(texts, gap, dir));
    path
}

/// A test folder: a grammar with one command whose action appends to `actions.log`, the
/// ask grammar, a speech script that records what it reads on stdin (and its arguments), and
/// a config with replies on; `llm` is appended to its `[llm]` section.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(llm: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        std::fs::write(
            dir.path().join("lights.toml"),
            "[intents.LightOn]\nsentences = [\"turn on [the] {room} light[s]\"]\n\
             run = [\"sh\", \"-c\", \"echo \\\"$VOXD_INTENT $VOXD_SLOT_ROOM\\\" >> actions.log\"]\n\
             [lists.room]\nvalues = [\"kitchen\", \"bedroom\"]\n",
        )
        .unwrap();
        let speaker = dir.path().join("speak.sh");
        std::fs::write(
            &speaker,
            "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\" >> spoken_args.txt; done\ncat >> spoken.txt\n",
        )
        .unwrap();
        std::fs::set_permissions(&speaker, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            format!(
                "[model]\npath = {:?}\nthreads = 2\n\
                 [commands]\ngrammars = [{:?}, {:?}]\n\
                 [actions]\nnotifications = false\nworking_dir = {:?}\n\
                 [llm]\nenabled = true\nmodel = {:?}\nspeak = [{:?}]\n\
                 temperature = 0\nmax_tokens = 48\n{llm}",
                common::model_dir("tiny.en").display().to_string(),
                path("lights.toml"),
                common::repo()
                    .join("grammars/ask.toml")
                    .display()
                    .to_string(),
                dir.path().display().to_string(),
                common::repo()
                    .join("models/smollm2/model.gguf")
                    .display()
                    .to_string(),
                speaker.display().to_string(),
            ),
        )
        .unwrap();
        Setup { dir }
    }

    /// `voxd run` on `wav` (at real time with `realtime`): its JSON events.
    fn run(&self, wav: &Path, realtime: bool) -> Vec<Value> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_voxd"));
        command
            .arg("run")
            .arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .args(["--stdout", "json", "--no-watch", "--log", "warn", "--wav"])
            .arg(wav)
            .current_dir(self.dir.path());
        if realtime {
            command.arg("--realtime");
        }
        let out = command.output().expect("voxd runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "voxd run failed: {stderr}");
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }
}

/// The events one per line, for failure messages.
fn lines(events: &[Value]) -> String {
    events
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn named<'e>(events: &'e [Value], name: &str) -> Vec<&'e Value> {
    events.iter().filter(|e| e["event"] == name).collect()
}

/// A question that is no command is answered by the model and the answer spoken, and the
/// command spoken right after it runs its action: the recogniser does not wait for the reply.
#[test]
fn a_question_that_is_no_command_is_answered_and_a_command_after_it_runs() {
    let setup = Setup::new("answer_unmatched = true\n");
    let wav = spoken(
        &[
            "What is the capital of France?",
            "Turn on the kitchen lights.",
        ],
        1.2,
        setup.dir.path(),
    );
    let events = setup.run(&wav, true);
    let shown = lines(&events);

    let refused = named(&events, "not_recognized");
    assert_eq!(refused.len(), 1, "{shown}");
    let heard = refused[0]["heard"]
        .as_str()
        .expect("the question transcribed");
    assert!(
        common::normalize(heard).contains("capital of france"),
        "{heard}"
    );
    let replies = named(&events, "reply");
    assert_eq!(replies.len(), 1, "{shown}");
    let reply = replies[0];
    assert_eq!(reply["question"], heard);
    let text = reply["text"].as_str().unwrap();
    assert!(!text.trim().is_empty(), "{reply}");
    assert!(reply["tokens"].as_u64().unwrap() <= 48, "{reply}");

    // The command after the question ran.
    let intents = named(&events, "intent");
    assert_eq!(intents.len(), 1, "{shown}");
    assert_eq!(intents[0]["intent"], "LightOn");
    assert_eq!(setup.read("actions.log"), "LightOn kitchen\n");
    // The reply reached the speech program on stdin, and nothing of it in its arguments.
    assert_eq!(setup.read("spoken.txt"), text);
    assert_eq!(setup.read("spoken_args.txt"), "");
    assert!(named(&events, "error").is_empty(), "{shown}");
    assert_eq!(events.last().unwrap()["event"], "stopped");
    println!(
        "question {heard:?} -> reply {text:?} ({} tokens, {} ms); command at {} ms, reply at {} ms",
        reply["tokens"], reply["reply_ms"], intents[0]["clock_ms"], reply["clock_ms"]
    );
}

/// The ask intent's question slot is answered; with answer_unmatched off, a question that is
/// no command gets no reply.
#[test]
fn the_ask_intent_is_answered_and_other_speech_is_not() {
    let setup = Setup::new("");
    let wav = spoken(
        &[
            "Hey computer, how many legs does a spider have?",
            "What is the capital of France?",
        ],
        1.2,
        setup.dir.path(),
    );
    let events = setup.run(&wav, false);
    let shown = lines(&events);
    let asked = named(&events, "intent");
    assert_eq!(asked.len(), 1, "{shown}");
    assert_eq!(asked[0]["intent"], "Ask");
    let question = asked[0]["slots"]["question"].as_str().unwrap();
    assert!(common::normalize(question).contains("legs"), "{question}");
    let replies = named(&events, "reply");
    assert_eq!(replies.len(), 1, "{shown}");
    assert_eq!(replies[0]["question"], question);
    assert_eq!(replies[0]["start_ms"], asked[0]["start_ms"]);
    let refused = named(&events, "not_recognized");
    assert_eq!(refused.len(), 1, "{shown}");
    assert!(refused[0].get("heard").is_none(), "{shown}");
    assert_eq!(
        setup.read("spoken.txt"),
        replies[0]["text"].as_str().unwrap()
    );
}
