//! Real recordings (the shared real data: `commands/` of people speaking Home Assistant
//! style commands, `continuous/` of a reader): the example grammars plus the recordings'
//! names (`tests/fixtures/real_commands/names.toml`) read every command's transcript with
//! the intent and slots of `expected.tsv`; and with tiny.en and base the recordings are
//! accepted as those commands while the utterances the segmenter cuts from continuous
//! speech are refused.

use std::path::PathBuf;

use serde_json::{json, Value};
use voxd::audio::read_wav;
use voxd::capture::Pace;
use voxd::command::{Recognizer, RecognizerOptions};
use voxd::frontend::{listen, FrontEndConfig, Source};
use voxd::grammar::Grammar;
use voxd::whisper::transcribe::Transcriber;

use crate::common;
use crate::common::segments::collect;

/// Commands of the real set the recognisers must accept with the right intent and slots,
/// per model (of 35): what they reach now (README, *Command accuracy*), below the issue's
/// aim of 98 % (35 of 35).
const ACCEPTED_FLOOR_TINY_EN: usize = 31;
const ACCEPTED_FLOOR_BASE: usize = 32;
/// Utterances cut from the continuous recording that may be taken as a command: at most
/// 1 % of them (none of the ~30).
const FALSE_ACCEPT_PERCENT: f64 = 1.0;

fn real_data() -> PathBuf {
    let dir = common::repo().join("../shared/data/real");
    assert!(
        dir.join("commands.tsv").exists(),
        "{} is missing",
        dir.display()
    );
    dir
}

fn fixture(name: &str) -> PathBuf {
    common::repo()
        .join("tests/fixtures/real_commands")
        .join(name)
}

/// The example grammars, then the recordings' names extending their lists.
fn grammar_files() -> Vec<PathBuf> {
    let mut files = common::example_grammars();
    files.push(fixture("names.toml"));
    files
}

struct Expected {
    file: String,
    transcript: String,
    /// None: not a Home Assistant command.
    outcome: Option<Value>,
}

/// expected.tsv joined with the transcripts of commands.tsv; every recording has its row.
fn expected() -> Vec<Expected> {
    let transcripts: std::collections::BTreeMap<String, String> =
        std::fs::read_to_string(real_data().join("commands.tsv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|line| {
                let fields: Vec<&str> = line.split('\t').collect();
                let file = fields[0].trim_start_matches("commands/").to_string();
                (file, fields[3].to_string())
            })
            .collect();
    let table = std::fs::read_to_string(fixture("expected.tsv")).unwrap();
    let rows: Vec<Expected> = table
        .lines()
        .filter(|l| !l.starts_with('#'))
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            assert_eq!(fields.len(), 3, "expected.tsv: {line:?}");
            let outcome = (fields[1] != "-").then(|| {
                let slots: Value = serde_json::from_str(fields[2])
                    .unwrap_or_else(|e| panic!("expected.tsv: {line:?}: {e}"));
                json!({"intent": fields[1], "slots": slots})
            });
            let transcript = transcripts
                .get(fields[0])
                .unwrap_or_else(|| panic!("{} is not in commands.tsv", fields[0]))
                .clone();
            Expected {
                file: fields[0].to_string(),
                transcript,
                outcome,
            }
        })
        .collect();
    assert_eq!(rows.len(), transcripts.len(), "a row for every recording");
    rows
}

#[test]
fn the_grammars_read_every_real_command_with_its_slots() {
    let grammar = Grammar::load(&grammar_files()).unwrap();
    let mut wrong = Vec::new();
    for row in expected() {
        let found = grammar
            .match_text(&row.transcript)
            .map(|m| json!({"intent": m.intent, "slots": m.all_slots()}));
        if found != row.outcome {
            wrong.push(format!(
                "{} {:?}: got {found:?}, expected {:?}",
                row.file, row.transcript, row.outcome
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// The utterances the front end cuts from the continuous recordings, as the daemon sees them.
fn continuous_utterances() -> Vec<Vec<f32>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(real_data().join("continuous"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no continuous recordings");
    let mut utterances = Vec::new();
    for path in files {
        let source = Source::Wav {
            path,
            pace: Pace::Fast,
        };
        let listening = listen(source, FrontEndConfig::default()).expect("listen");
        utterances.extend(collect(&listening).0.into_iter().map(|u| u.samples));
    }
    utterances
}

/// Recognises every real command and continuous utterance with `model` and holds the floors.
fn real_commands_hold_their_floor(model: &str, floor: usize) {
    let transcriber = Transcriber::load(&common::model_dir(model), 2).unwrap();
    let grammar = Grammar::load(&grammar_files()).unwrap();
    let mut recognizer =
        Recognizer::new(transcriber, grammar, RecognizerOptions::default()).unwrap();
    let (mut right, mut commands, mut report) = (0, 0, Vec::new());
    let mut taken_negatives = Vec::new();
    for row in expected() {
        let samples = read_wav(&real_data().join("commands").join(&row.file)).unwrap();
        let r = recognizer.recognize(&samples).unwrap();
        let got = json!({"intent": r.intent, "slots": r.slots});
        let line = format!(
            "{}: {} {:?} (free {:?}, mismatch {:.2}, ratio {:?}, {:?})",
            row.file, got, r.text, r.free_text, r.mismatch, r.ratio, r.reason
        );
        match &row.outcome {
            Some(expected) => {
                commands += 1;
                if &got == expected {
                    right += 1;
                } else {
                    report.push(format!("miss {line}"));
                }
            }
            None if r.intent.is_some() => taken_negatives.push(line),
            None => {}
        }
    }
    let utterances = continuous_utterances();
    for (i, samples) in utterances.iter().enumerate() {
        let r = recognizer.recognize(samples).unwrap();
        if r.intent.is_some() {
            taken_negatives.push(format!(
                "continuous utterance {i}: {:?} {:?} (free {:?}, mismatch {:.2})",
                r.intent, r.text, r.free_text, r.mismatch
            ));
        }
    }
    let continuous_taken = taken_negatives
        .iter()
        .filter(|l| l.starts_with("continuous"))
        .count();
    println!(
        "{model}: {right} of {commands} real commands right; {} of {} continuous utterances \
         and {} of the real non-commands taken\n{}\n{}",
        continuous_taken,
        utterances.len(),
        taken_negatives.len() - continuous_taken,
        report.join("\n"),
        taken_negatives.join("\n")
    );
    assert!(
        right >= floor,
        "{model}: {right} of {commands} right, floor {floor}"
    );
    let percent = 100.0 * continuous_taken as f64 / utterances.len() as f64;
    assert!(
        percent <= FALSE_ACCEPT_PERCENT,
        "{model}: {percent:.1} % of the continuous utterances taken:\n{}",
        taken_negatives.join("\n")
    );
}

#[test]
fn real_commands_hold_their_floor_tiny_en() {
    real_commands_hold_their_floor("tiny.en", ACCEPTED_FLOOR_TINY_EN);
}

#[test]
fn real_commands_hold_their_floor_base() {
    real_commands_hold_their_floor("base", ACCEPTED_FLOOR_BASE);
}
