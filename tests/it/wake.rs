//! The wake phrase end to end through `voxd run`: a file of speech read as fast as it goes,
//! with `[commands] wake` and `follow_up_ms` set. A command without the phrase is refused;
//! with it, it runs (the action writes a line); a follow-up inside the window runs, one
//! after it is refused; the phrase alone lets the next utterance in. A real person's
//! recorded command is refused alone and runs behind a spoken wake phrase. What ran is read
//! from the file the actions write, and matched with the events.

use std::path::Path;

use crate::common::{self, speech};

const GRAMMAR: &str = r#"[intents.LightOn]
sentences = ["turn on [the] {room} light[s]"]
run = ["sh", "-c", "echo \"on $VOXD_SLOT_ROOM\" >> effects.txt"]

[intents.LightOff]
sentences = ["turn off [the] {room} light[s]"]
run = ["sh", "-c", "echo \"off $VOXD_SLOT_ROOM\" >> effects.txt"]

[intents.TimerStart]
sentences = ["(set|start) a timer for {minutes} minute[s]"]
run = ["sh", "-c", "echo \"timer $VOXD_SLOT_MINUTES\" >> effects.txt"]

[lists.room]
values = ["kitchen", "hall", "bedroom"]

[lists.minutes]
range = { from = 1, to = 59 }
"#;

/// The conversation window. The gaps below keep well clear of it either way: speech
/// starts are cut with 300 ms of pre-roll and ends with 300 ms of tail.
const FOLLOW_UP_MS: u64 = 4000;

/// Peak level of every piece, so espeak-ng and the recording are equally loud.
const PEAK: f32 = 0.5;

/// A real person's command from `../shared/data/real/commands`.
const REAL_COMMAND: &str = "stp_set_a_timer_for_5_minutes.wav";

fn say(text: &str, scratch: &Path) -> Vec<f32> {
    speech::say(text, PEAK, scratch)
}

fn real_command() -> Vec<f32> {
    let path = common::repo()
        .join("../shared/data/real/commands")
        .join(REAL_COMMAND);
    assert!(path.exists(), "{} is missing", path.display());
    speech::levelled(voxd::audio::read_wav(&path).unwrap(), PEAK)
}

/// What one utterance should come to: the events that name it, in order.
#[derive(Debug, PartialEq)]
enum Outcome {
    Refused(&'static str),
    Intent(&'static str),
    Wake { alone: bool },
}

#[test]
fn a_wake_phrase_gates_commands_through_voxd_run() {
    let common::RunDir {
        dir,
        scratch,
        config,
    } = common::run_dir(
        GRAMMAR,
        &format!(
            "wake = \"hey computer\"\nfollow_up_ms = {FOLLOW_UP_MS}\n\
             wake_run = [\"sh\", \"-c\", \"echo wake >> effects.txt\"]"
        ),
        "",
    );

    let wake = say("hey computer", &scratch);
    let with_wake = |command: &[f32]| -> Vec<f32> {
        // A short breath between the phrase and the command: one utterance.
        [&wake[..], &speech::silence(0.15), command].concat()
    };
    let real = real_command();
    // (audio, seconds of silence after it, what it should come to)
    let timeline: Vec<(Vec<f32>, f32, Vec<Outcome>)> = vec![
        (
            say("turn on the kitchen lights", &scratch),
            2.0,
            vec![Outcome::Refused("no_wake")],
        ),
        (
            with_wake(&say("turn on the kitchen lights", &scratch)),
            1.5,
            vec![Outcome::Wake { alone: false }, Outcome::Intent("LightOn")],
        ),
        // Within the window of the command before: no phrase needed.
        (
            say("turn off the kitchen lights", &scratch),
            6.0,
            vec![Outcome::Intent("LightOff")],
        ),
        // 6 s after the last command: the window has closed.
        (
            say("turn on the hall lights", &scratch),
            6.0,
            vec![Outcome::Refused("no_wake")],
        ),
        (wake.clone(), 1.5, vec![Outcome::Wake { alone: true }]),
        // The utterance after the phrase alone.
        (
            say("turn off the hall lights", &scratch),
            6.0,
            vec![Outcome::Intent("LightOff")],
        ),
        (real.clone(), 6.0, vec![Outcome::Refused("no_wake")]),
        (
            with_wake(&real),
            2.0,
            vec![
                Outcome::Wake { alone: false },
                Outcome::Intent("TimerStart"),
            ],
        ),
    ];
    let mut audio = speech::silence(1.0);
    for (piece, gap, _) in &timeline {
        audio.extend(piece);
        audio.extend(speech::silence(*gap));
    }
    let wav = dir.path().join("session.wav");
    speech::write_wav(&wav, &audio);

    let (events, stdout) = common::run_fast(&config, &wav, dir.path());

    let outcomes: Vec<Outcome> = events
        .iter()
        .filter_map(|e| match e["event"].as_str()? {
            "not_recognized" => {
                let reason = e["reason"].as_str()?;
                Some(Outcome::Refused(match reason {
                    "no_wake" => "no_wake",
                    _ => "other",
                }))
            }
            "intent" => Some(Outcome::Intent(match e["intent"].as_str()? {
                "LightOn" => "LightOn",
                "LightOff" => "LightOff",
                "TimerStart" => "TimerStart",
                _ => "other",
            })),
            "wake" => Some(Outcome::Wake {
                alone: e["alone"].as_bool()?,
            }),
            _ => None,
        })
        .collect();
    let expected: Vec<Outcome> = timeline.into_iter().flat_map(|(_, _, o)| o).collect();
    assert_eq!(outcomes, expected, "events:\n{stdout}");

    // Every wake event carries its span; the refusals name the sentence they refused.
    for event in events.iter().filter(|e| e["event"] == "wake") {
        assert!(
            event["start_ms"].as_u64() < event["end_ms"].as_u64(),
            "{event}"
        );
        let text = common::normalize(event["text"].as_str().unwrap());
        assert!(text.starts_with("hey computer"), "{event}");
    }
    // The intent event itself: the action's events name the intent too, and an action is
    // started before its intent is reported, so they may come first.
    let timer = events
        .iter()
        .find(|e| e["event"] == "intent" && e["intent"] == "TimerStart")
        .unwrap();
    assert_eq!(timer["slots"]["minutes"], 5, "{timer}");

    // The actions ran, and only these: the order of lines from two actions started
    // together is the scheduler's, so compare them sorted.
    let finished = events
        .iter()
        .filter(|e| e["event"] == "action" && e["status"] == "finished")
        .count();
    let mut effects: Vec<String> = std::fs::read_to_string(dir.path().join("effects.txt"))
        .expect("the actions wrote their effects")
        .lines()
        .map(str::to_string)
        .collect();
    effects.sort();
    let mut want = [
        "on kitchen",
        "off kitchen",
        "off hall",
        "timer 5",
        "wake",
        "wake",
        "wake",
    ];
    want.sort();
    assert_eq!(effects, want, "events:\n{stdout}");
    assert_eq!(finished, want.len(), "events:\n{stdout}");
}

/// The wake settings are part of the command set: a reload takes a new phrase and window,
/// and a broken one keeps the old set.
#[test]
fn wake_settings_are_loaded_and_reloaded_with_the_set() {
    use voxd::daemon::commands::{CommandFlags, CommandSet, ReloadOutcome};

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("wake.toml"), GRAMMAR).unwrap();
    let config = dir.path().join("config.toml");
    let write = |wake: &str, extra: &str| {
        std::fs::write(
            &config,
            format!(
                "[commands]\ngrammars = [\"wake.toml\"]\nwake = {wake:?}\nfollow_up_ms = 3000\n\
                 {extra}\n[actions]\nnotifications = false\n"
            ),
        )
        .unwrap();
    };
    write("hey computer", "");
    let mut set = CommandSet::load(Some(&config), &CommandFlags::default()).unwrap();
    assert_eq!(set.grammar().wake_phrase(), Some("hey computer"));
    assert_eq!(set.settings().follow_up_ms, 3000);
    assert!(set.grammar().is_wake_phrase("hey computer"));

    write("ok house", "wake_run = [\"true\"]");
    assert_eq!(set.reload().unwrap(), ReloadOutcome::Replaced);
    assert_eq!(set.grammar().wake_phrase(), Some("ok house"));
    let found = set
        .grammar()
        .match_text("OK house, turn off the hall light")
        .unwrap();
    assert!(found.wake);

    for (wake, extra, expected) in [
        ("...", "", "[commands] wake"),
        ("ok house", "wake_run = [\"echo\", \"{room}\"]", "wake_run"),
    ] {
        write(wake, extra);
        let error = set.reload().unwrap_err().to_string();
        assert!(error.contains(expected), "{error}");
        assert_eq!(set.grammar().wake_phrase(), Some("ok house"));
    }
    std::fs::write(
        dir.path().join("wake.toml"),
        format!("{GRAMMAR}\n[intents.wake]\nsentences = [\"wake up\"]\n"),
    )
    .unwrap();
    write("ok house", "wake_run = [\"true\"]");
    let error = set.reload().unwrap_err().to_string();
    assert!(error.contains("named `wake`"), "{error}");
}
