//! Grammars: the example files in grammars/, errors with file:line:column, a huge grammar,
//! digits against words, the incremental reader against whole-text matching, and the CLI.

use std::path::{Path, PathBuf};
use std::process::Command;

use voxd::grammar::{Grammar, GrammarError, SlotValue};
use voxd::util::rng::Rng;

fn example_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("grammars");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "grammars/*.toml: {files:?}");
    files
}

fn examples() -> Grammar {
    Grammar::load(&example_files()).unwrap()
}

/// `text` cut at random places, with random capitals, the way a tokenizer might split it.
fn pieces(text: &str, rng: &mut Rng) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    for c in format!(" {text}").chars() {
        if !current.is_empty() && rng.below(3) == 0 {
            pieces.push(std::mem::take(&mut current));
        }
        current.push(if rng.below(4) == 0 {
            c.to_ascii_uppercase()
        } else {
            c
        });
    }
    pieces.push(current);
    pieces
}

/// Reads `pieces` incrementally; Some(complete) when every piece was accepted.
fn read(grammar: &Grammar, pieces: &[String]) -> Option<bool> {
    let mut state = grammar.start();
    for piece in pieces {
        state = grammar.advance(&state, piece)?;
    }
    Some(grammar.is_complete(&state))
}

#[test]
fn grammar_examples_samples_match_their_own_intent_and_slots() {
    let grammar = examples();
    let mut rng = Rng::new(42);
    let mut checked = 0;
    for (index, intent) in grammar.intents().iter().enumerate() {
        assert!(grammar.sentence_count(index) > 0, "{}", intent.name);
        for _ in 0..60 {
            let sample = grammar.sample(index, &mut rng).unwrap();
            let m = grammar
                .match_text(&sample.text)
                .unwrap_or_else(|| panic!("{}: {:?} does not match", intent.name, sample.text));
            assert_eq!(m.intent, intent.name, "{:?}", sample.text);
            assert_eq!(m.slots, sample.slots, "{:?}", sample.text);
            checked += 1;
        }
    }
    assert!(checked >= 15 * 60);
}

#[test]
fn grammar_examples_use_fixed_slots_as_defaults() {
    let grammar = examples();
    let m = grammar
        .match_text("Set a timer for twenty-five minutes.")
        .unwrap();
    let all = m.all_slots();
    assert_eq!(all["minutes"], SlotValue::Integer(25));
    assert_eq!(all["hours"], SlotValue::Integer(0));
    assert_eq!(m.text, "set a timer for 25 minutes");
}

#[test]
fn grammar_digits_and_words_give_the_same_slots() {
    let grammar = examples();
    for (digits, words) in [
        (
            "set a timer for 1 hour and 45 minutes",
            "set a timer for one hour and forty-five minutes",
        ),
        (
            "set the kitchen lights to 100 percent",
            "set the kitchen lights to a hundred percent",
        ),
        (
            "set the kitchen lights to 100%",
            "set the kitchen lights to one hundred percent",
        ),
        ("set the volume to 35", "set the volume to thirty five"),
        (
            "set the thermostat to 21",
            "set the thermostat to twenty one",
        ),
    ] {
        let a = grammar.match_text(digits).unwrap();
        let b = grammar.match_text(words).unwrap();
        assert_eq!(a.slots, b.slots, "{digits} / {words}");
        assert_eq!(a.text, b.text);
    }
    assert!(
        grammar.match_text("set the volume to 33").is_none(),
        "step 5"
    );
}

#[test]
fn grammar_prefix_reader_agrees_with_match_text() {
    let grammar = examples();
    let mut rng = Rng::new(7);
    let mut cuts = Rng::new(3);
    let words = [
        "the", "on", "please", "timer", "kitchen", "five", "21", "up", "and",
    ];
    for index in 0..grammar.intents().len() {
        for _ in 0..40 {
            let sample = grammar.sample(index, &mut rng).unwrap();
            let split = pieces(&sample.text, &mut cuts);
            assert_eq!(read(&grammar, &split), Some(true), "{split:?}");
            // The same sentence with a word added, dropped or cut short: the reader and
            // whole-text matching must still agree.
            let mut said: Vec<&str> = sample.text.split(' ').collect();
            let at = cuts.below(said.len() + 1);
            match cuts.below(3) {
                0 => said.insert(at, words[cuts.below(words.len())]),
                1 if at < said.len() => {
                    said.remove(at);
                }
                _ => said.truncate(at),
            }
            let changed = said.join(" ");
            let complete = read(&grammar, &pieces(&changed, &mut cuts)) == Some(true);
            assert_eq!(
                complete,
                grammar.match_text(&changed).is_some(),
                "{changed:?}"
            );
        }
    }
}

#[test]
fn grammar_prefix_reader_takes_whisper_like_tokens() {
    let grammar = examples();
    let tokens = [" Set", " a", " timer", " for", " 1", "5", " minutes", "."];
    let split: Vec<String> = tokens.iter().map(|t| t.to_string()).collect();
    assert_eq!(read(&grammar, &split), Some(true));
    let tokens = [" Turn", " off", " the", " bed", "room", " lights", "!"];
    let split: Vec<String> = tokens.iter().map(|t| t.to_string()).collect();
    assert_eq!(read(&grammar, &split), Some(true));
    let state = grammar.advance(&grammar.start(), " Turn off the").unwrap();
    assert!(!grammar.is_complete(&state));
    assert!(grammar.advance(&state, " sofa").is_none());
    assert!(grammar.advance(&state, " kitch").is_some());
}

fn load_error(files: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|(name, text)| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect();
    let err = Grammar::load(&paths).unwrap_err();
    assert!(matches!(err, GrammarError::Invalid { .. }), "{err}");
    err.to_string()
        .replace(&format!("{}/", dir.path().display()), "")
}

#[test]
fn grammar_errors_name_file_line_and_column() {
    let intent = "[intents.Light]\nsentences = [\n  \"turn on {room}\",\n";
    let room = "]\n[lists.room]\nvalues = [\"kitchen\"]\n";
    let cases = [
        (
            format!("{intent}  \"turn (off {{room}}\",\n{room}"),
            "bad.toml:4:9: `(` is never closed",
        ),
        (
            format!("{intent}  \"dim {{rooms}}\",\n{room}"),
            "bad.toml:4:8: unknown list `rooms`: expected one of room",
        ),
        (
            format!("{intent}  \"<please> off\",\n{room}"),
            "bad.toml:4:4: unknown expansion rule `please`",
        ),
        (
            format!(
                "{intent}  \"<a> off\",\n{room}[expansion_rules]\na = \"x [<b>]\"\nb = \"(y|<a>)\"\n"
            ),
            "bad.toml:10:9: expansion rule <a> refers to itself: <a> → <b> → <a>",
        ),
        (
            format!("{intent}]\nnotfy = \"x\"\n{}", &room[2..]),
            "bad.toml:5:1: unknown field `notfy`",
        ),
        (
            format!("{intent}]\ncooldown_ms = \"soon\"\n{}", &room[2..]),
            "bad.toml:5:15: invalid type: string \"soon\", expected u64",
        ),
        (
            format!(
                "{intent}]\n{}[lists.n]\nrange = {{ from = 1, to = \"ten\" }}\n",
                &room[2..]
            ),
            "bad.toml:8:26: invalid type: string \"ten\", expected i64",
        ),
    ];
    for (text, expected) in cases {
        let err = load_error(&[("bad.toml", &text)]);
        assert!(
            err.starts_with(expected),
            "expected {expected:?}, got {err:?}\n{text}"
        );
    }
}

#[test]
fn grammar_duplicates_across_files_name_both() {
    let err = load_error(&[
        ("a.toml", "[intents.Hello]\nsentences = [\"hello\"]\n"),
        ("b.toml", "# again\n[intents.Hello]\nsentences = [\"hi\"]\n"),
    ]);
    assert_eq!(
        err,
        "b.toml:2:1: intent `Hello` is defined twice: first at a.toml:1:1"
    );
}

#[test]
fn grammar_with_an_astronomical_product_compiles_and_counts() {
    let mut toml = String::from("[intents.Huge]\nsentences = [\"say {l0}");
    for i in 1..10 {
        toml.push_str(&format!(" and {{l{i}}}"));
    }
    toml.push_str("\"]\n");
    for i in 0..10 {
        let values: Vec<String> = (0..100).map(|v| format!("\"w{i}x{v}\"")).collect();
        toml.push_str(&format!("[lists.l{i}]\nvalues = [{}]\n", values.join(", ")));
    }
    let grammar = Grammar::from_texts([(PathBuf::from("huge.toml"), toml)]).unwrap();
    assert_eq!(grammar.total_sentence_count(), 10u128.pow(20));
    let said: Vec<String> = (0..10).map(|i| format!("w{i}x{}", 99 - i)).collect();
    let m = grammar
        .match_text(&format!("say {}", said.join(" and ")))
        .unwrap();
    assert_eq!(m.slots.len(), 10);
    assert_eq!(m.slots["l3"], SlotValue::Text("w3x96".into()));
    let mut rng = Rng::new(1);
    let sample = grammar.sample(0, &mut rng).unwrap();
    assert_eq!(
        grammar.match_text(&sample.text).unwrap().slots,
        sample.slots
    );
}

fn voxd(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("XDG_CONFIG_HOME", env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn grammar_cli_check_and_match() {
    let (ok, out, err) = voxd(&[
        "grammar",
        "check",
        "grammars/home.toml",
        "grammars/ask.toml",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("LightOn") && out.contains("total"), "{out}");
    let (ok, out, _) = voxd(&[
        "grammar",
        "match",
        "grammars/home.toml",
        "Turn on the bed room lights",
    ]);
    assert!(ok);
    let json: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(json["intent"], "LightOn");
    assert_eq!(json["slots"]["room"], "bedroom");
    assert_eq!(json["slots"]["domain"], "light");
    let (ok, out, _) = voxd(&["grammar", "match", "grammars/home.toml", "sing a song"]);
    assert!(ok);
    assert_eq!(out.trim(), r#"{"intent":null}"#);
    let (ok, _, err) = voxd(&["grammar", "check", "Cargo.toml"]);
    assert!(!ok);
    assert!(
        err.contains("Cargo.toml:1:2: unknown field `package`"),
        "{err}"
    );
}
