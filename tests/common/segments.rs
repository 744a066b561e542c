//! The segmentation test set (`scripts/data/make_segmentation.py`) and the check every way of
//! feeding it must pass: each spoken command is exactly one utterance that covers it.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use voxd::frontend::{FrontEndEvent, FrontEndStats, Listening, Utterance};

/// 50 ms at 16 kHz: an utterance must start at least this long before the command's onset.
pub const LEAD_SAMPLES: u64 = 800;

pub struct Command_ {
    pub text: String,
    pub onset: u64,
    pub offset: u64,
}

pub struct SegmentationSet {
    pub dir: PathBuf,
    pub manifest: serde_json::Value,
    pub commands: Vec<Command_>,
}

impl SegmentationSet {
    /// The file for version `name` (`clean`, `pink10`, ...) in `layout` (`16k`, `48k_stereo`).
    pub fn file(&self, name: &str, layout: &str) -> PathBuf {
        let rel = self.manifest["files"][name][layout]
            .as_str()
            .unwrap_or_else(|| panic!("manifest has no {name}/{layout}"));
        self.dir.join(rel)
    }
}

/// Makes the set with the project's script if it is not there yet (once per test binary).
pub fn segmentation_set() -> SegmentationSet {
    static MADE: Mutex<bool> = Mutex::new(false);
    let dir = super::repo().join("data/segmentation");
    let manifest_path = dir.join("manifest.json");
    {
        let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
        if !*made {
            // Always with the 10-minute file: a run without --long removes it.
            let status = Command::new("python3")
                .arg(super::repo().join("scripts/data/make_segmentation.py"))
                .args(["--long", "10"])
                .status()
                .expect("run scripts/data/make_segmentation.py");
            assert!(status.success(), "scripts/data/make_segmentation.py failed");
            *made = true;
        }
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&manifest_path).expect("manifest")).unwrap();
    let commands = commands_of(&manifest["commands"]);
    SegmentationSet {
        dir,
        manifest,
        commands,
    }
}

/// The commands listed in a manifest's `commands` array.
pub fn commands_of(list: &serde_json::Value) -> Vec<Command_> {
    list.as_array()
        .expect("a commands array")
        .iter()
        .map(|c| Command_ {
            text: c["text"].as_str().unwrap().to_string(),
            onset: c["onset_sample"].as_u64().unwrap(),
            offset: c["offset_sample"].as_u64().unwrap(),
        })
        .collect()
}

/// Collects every utterance until the source finishes.
pub fn collect(listening: &Listening) -> (Vec<Utterance>, FrontEndStats) {
    let mut utterances = Vec::new();
    for event in listening.front_end.events().iter() {
        match event {
            FrontEndEvent::SpeechEnd(u) => utterances.push(u),
            FrontEndEvent::Finished(stats) => return (utterances, stats),
            _ => {}
        }
    }
    panic!("front end ended without Finished");
}

/// Checks that every command is one utterance covering it, with nothing split, merged or
/// invented. `shifts[i]` is added to command `i`'s position: where it sits on the
/// utterances' clock (0 for a file read as it is; for a capture, where its playback was
/// found in what was heard). Returns a description of every problem, and the smallest
/// margins seen (pre-roll before an onset, tail after an offset) in ms.
pub fn check(
    commands: &[Command_],
    utterances: &[Utterance],
    shifts: &[i64],
) -> (Vec<String>, i64, i64) {
    assert_eq!(shifts.len(), commands.len(), "one shift per command");
    let mut problems = Vec::new();
    let (mut min_lead, mut min_tail) = (i64::MAX, i64::MAX);
    let at = |i: usize, x: u64| (x as i64 + shifts[i]).max(0) as u64;
    for (i, c) in commands.iter().enumerate() {
        let (onset, offset) = (at(i, c.onset), at(i, c.offset));
        let hits: Vec<&Utterance> = utterances
            .iter()
            .filter(|u| u.start <= offset && u.end > onset)
            .collect();
        match hits.as_slice() {
            [u] => {
                min_lead = min_lead.min((onset as i64 - u.start as i64) / 16);
                min_tail = min_tail.min((u.end as i64 - offset as i64) / 16);
                if u.start + LEAD_SAMPLES > onset {
                    problems.push(format!(
                        "command {i} \"{}\": utterance starts {} ms before its onset (need 50)",
                        c.text,
                        (onset as i64 - u.start as i64) / 16
                    ));
                }
                if u.end <= offset {
                    problems.push(format!(
                        "command {i} \"{}\": utterance ends {} ms before the speech does",
                        c.text,
                        (offset - u.end) / 16
                    ));
                }
            }
            [] => problems.push(format!("command {i} \"{}\": no utterance", c.text)),
            many => problems.push(format!(
                "command {i} \"{}\": split into {} utterances",
                c.text,
                many.len()
            )),
        }
    }
    for u in utterances {
        let covered = commands
            .iter()
            .enumerate()
            .filter(|&(i, c)| u.start <= at(i, c.offset) && u.end > at(i, c.onset))
            .count();
        if covered != 1 {
            problems.push(format!(
                "utterance {:.2}-{:.2} s covers {covered} commands",
                u.start as f64 / 16000.0,
                u.end as f64 / 16000.0
            ));
        }
    }
    (problems, min_lead, min_tail)
}
