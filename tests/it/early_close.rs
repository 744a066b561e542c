//! Closing commands early (`[commands] early_close_ms`) end to end through `voxd run`: a file
//! of espeak-ng commands read as fast as it goes. A complete command that nothing in the
//! grammar may follow is acted on at the short pause after it (its intent event is `early`,
//! ending before the utterance does); a command whose grammar goes on after a pause in the
//! middle ("... five minutes [pause] and thirty seconds") is not cut there, nor is one
//! paused before it is complete; and speech that goes on after an early close is an
//! utterance of its own: the first command runs once, the second runs too.

use serde_json::Value;

use crate::common::{self, speech};

const GRAMMAR: &str = r#"[intents.LightOn]
sentences = ["turn on [the] {room} light[s]"]
run = ["sh", "-c", "echo \"on $VOXD_SLOT_ROOM\" >> effects.txt"]

[intents.MediaPause]
sentences = ["pause the music"]
run = ["sh", "-c", "echo pause >> effects.txt"]

[intents.TimerStart]
sentences = ["set a timer for {minutes} minute[s] [and {seconds} second[s]]"]
run = ["sh", "-c", "echo \"timer $VOXD_SLOT_MINUTES $VOXD_SLOT_SECONDS\" >> effects.txt"]
slots = { seconds = 0 }

[lists.room]
values = ["kitchen", "hall"]

[lists.minutes]
range = { from = 1, to = 59 }

[lists.seconds]
range = { from = 5, to = 59 }
"#;

const PEAK: f32 = 0.5;
/// A pause inside one utterance: past `early_close_ms` (150), short of `end_silence_ms`
/// (400), so the segmenter keeps one utterance and the close is the recogniser's call.
const PAUSE_S: f32 = 0.25;

/// An outcome a piece must hold: its intent, slots as `name=value` pairs, and whether it
/// was closed early (None: either way).
type Expected = (&'static str, Vec<(&'static str, i64)>, Option<bool>);

/// One spoken piece: its audio, the silence after it, and the outcomes its span must hold.
struct Piece {
    audio: Vec<f32>,
    gap_s: f32,
    outcomes: Vec<Expected>,
}

#[test]
fn complete_commands_close_early_and_commands_that_go_on_are_not_cut() {
    let common::RunDir {
        dir,
        scratch,
        config,
    } = common::run_dir(GRAMMAR, "early_close_ms = 150", "max_concurrent = 1");
    let say = |text: &str| speech::say(text, PEAK, &scratch);
    let paused =
        |first: &str, second: &str| [say(first), speech::silence(PAUSE_S), say(second)].concat();
    let pieces = vec![
        // Complete, and nothing may follow: acted on at the close.
        Piece {
            audio: say("turn on the kitchen lights"),
            gap_s: 2.0,
            outcomes: vec![("LightOn", vec![], Some(true))],
        },
        // Complete at the pause, but the grammar goes on ("and ... seconds"): not cut.
        Piece {
            audio: paused("set a timer for five minutes", "and thirty seconds"),
            gap_s: 2.0,
            outcomes: vec![("TimerStart", vec![("minutes", 5), ("seconds", 30)], None)],
        },
        // Not complete at the pause: not cut.
        Piece {
            audio: paused("pause", "the music"),
            gap_s: 2.0,
            outcomes: vec![("MediaPause", vec![], None)],
        },
        // Complete, and the speaker goes on: the rest is a command of its own.
        Piece {
            audio: paused("turn on the hall lights", "pause the music"),
            gap_s: 2.0,
            outcomes: vec![
                ("LightOn", vec![], Some(true)),
                ("MediaPause", vec![], None),
            ],
        },
    ];
    let mut audio = speech::silence(1.0);
    let mut spans = Vec::new();
    for piece in &pieces {
        let start = audio.len() as u64 / 16;
        audio.extend(&piece.audio);
        spans.push((start, audio.len() as u64 / 16));
        audio.extend(speech::silence(piece.gap_s));
    }
    let wav = dir.path().join("session.wav");
    speech::write_wav(&wav, &audio);

    let (events, _) = common::run_fast(&config, &wav, dir.path());
    let outcomes = |(from, to): (u64, u64)| -> Vec<&Value> {
        events
            .iter()
            .filter(|e| e["event"] == "intent" || e["event"] == "not_recognized")
            .filter(|e| e["end_ms"].as_u64().unwrap() > from)
            .filter(|e| e["start_ms"].as_u64().unwrap() < to + 500)
            .collect()
    };
    let all: String = events.iter().map(|e| format!("{e}\n")).collect();
    for (piece, span) in pieces.iter().zip(&spans) {
        let found = outcomes(*span);
        assert_eq!(
            found.len(),
            piece.outcomes.len(),
            "{span:?}: {found:?}\n{all}"
        );
        for (event, (intent, slots, early)) in found.iter().zip(&piece.outcomes) {
            assert_eq!(event["intent"], *intent, "{event}\n{all}");
            for (name, value) in slots {
                assert_eq!(event["slots"][name], *value, "{event}\n{all}");
            }
            if let Some(early) = early {
                assert_eq!(event["early"].as_bool().unwrap_or(false), *early, "{event}");
            }
        }
    }

    // An early close ends the command 150 ms after its voice, before the utterance's own
    // end (300 ms after it); its action carries the command's end.
    let utterance_ends: Vec<u64> = events
        .iter()
        .filter(|e| e["event"] == "speech_end")
        .map(|e| e["end_ms"].as_u64().unwrap())
        .collect();
    assert_eq!(
        utterance_ends.len(),
        pieces.len(),
        "one utterance a piece:\n{all}"
    );
    let first = outcomes(spans[0])[0];
    let closed_at = first["end_ms"].as_u64().unwrap();
    assert!(
        closed_at < utterance_ends[0],
        "closed at {closed_at}, the utterance ends at {}",
        utterance_ends[0]
    );
    assert!(events
        .iter()
        .any(|e| e["event"] == "action" && e["status"] == "started" && e["end_ms"] == closed_at));
    // The second command after the hall lights starts after the first one's close.
    let split = outcomes(spans[3]);
    assert!(split[1]["start_ms"].as_u64() >= split[0]["end_ms"].as_u64());

    // Every action ran once: none lost, none twice.
    let mut effects: Vec<String> = std::fs::read_to_string(dir.path().join("effects.txt"))
        .expect("the actions wrote their effects")
        .lines()
        .map(str::to_string)
        .collect();
    effects.sort();
    let mut want = ["on kitchen", "timer 5 30", "pause", "on hall", "pause"];
    want.sort();
    assert_eq!(effects, want, "events:\n{all}");
}
