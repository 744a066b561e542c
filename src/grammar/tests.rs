//! Matching behaviour of whole grammars.

use super::*;

fn grammar(text: &str) -> Grammar {
    try_grammar(text).unwrap()
}

fn try_grammar(text: &str) -> Result<Grammar, GrammarError> {
    Grammar::from_texts([(PathBuf::from("test.toml"), text.to_string())])
}

fn text(s: &str) -> SlotValue {
    SlotValue::Text(s.into())
}

const LIGHTS: &str = r#"
[intents.LightOn]
sentences = ["turn on [the] {room} light[s]", "switch [the] {room} light[s] on"]
slots = { domain = "light" }

[intents.LightOff]
sentences = ["turn off [the] {room} light[s]"]

[intents.Brightness]
sentences = ["set [the] {room} [light[s]] to {brightness}[ percent]"]

[lists.room]
values = ["kitchen", "living room", { in = "bed room", out = "bedroom" }]

[lists.brightness]
range = { from = 0, to = 100 }
"#;

#[test]
fn lists_optionals_and_word_internal_parts() {
    let g = grammar(LIGHTS);
    let m = g.match_text("Turn on the Living Room lights.").unwrap();
    assert_eq!(m.intent, "LightOn");
    assert_eq!(m.slots["room"], text("living room"));
    assert_eq!(m.fixed_slots["domain"], text("light"));
    assert_eq!(m.text, "turn on the living room lights");
    let m = g.match_text("switch bed room light on").unwrap();
    assert_eq!(m.slots["room"], text("bedroom"));
    assert_eq!(m.text, "switch bed room light on");
    assert_eq!(
        g.match_text("turn off kitchen light").unwrap().intent,
        "LightOff"
    );
    for refused in [
        "turn on the garage light",
        "turn on the kitchen",
        "turn on the kitchen lightss",
        "",
        "turn on the kitchen light please",
    ] {
        assert_eq!(g.match_text(refused), None, "{refused}");
    }
}

#[test]
fn numbers_as_digits_or_words() {
    let g = grammar(LIGHTS);
    for (said, value) in [
        ("set kitchen to 21", 21),
        ("set kitchen to twenty one", 21),
        ("set kitchen to twenty-one percent", 21),
        ("set the kitchen lights to 100%", 100),
        ("set kitchen to a hundred", 100),
        ("set kitchen to one hundred percent", 100),
        ("set kitchen to zero", 0),
    ] {
        let m = g.match_text(said).unwrap_or_else(|| panic!("{said}"));
        assert_eq!(m.slots["brightness"], SlotValue::Integer(value), "{said}");
    }
    let m = g.match_text("set kitchen to twenty one").unwrap();
    assert_eq!(m.text, "set kitchen to 21");
    assert_eq!(g.match_text("set kitchen to 101"), None);
    assert_eq!(g.match_text("set kitchen to minus 1"), None);
}

#[test]
fn negative_ranges_and_steps() {
    let g = grammar(
        "[intents.T]\nsentences = [\"set {t} degrees\"]\n[lists.t]\nrange = { from = -10, to = 30, step = 5 }\n",
    );
    for (said, value) in [
        ("set -5 degrees", -5),
        ("set minus five degrees", -5),
        ("set 30 degrees", 30),
    ] {
        assert_eq!(
            g.match_text(said).unwrap().slots["t"],
            SlotValue::Integer(value),
            "{said}"
        );
    }
    assert_eq!(g.match_text("set 7 degrees"), None, "not on the step");
    assert_eq!(g.sentence_count(0), 9);
}

#[test]
fn numbers_written_in_templates_and_lists_accept_both_forms() {
    let g = grammar(
        r#"
[intents.Channel]
sentences = ["channel {channel}", "go to channel 5"]
[lists.channel]
values = [{ in = "bbc 2", out = "bbc2" }, { in = "eleven", out = 11 }]
"#,
    );
    assert_eq!(
        g.match_text("channel BBC two").unwrap().slots["channel"],
        text("bbc2")
    );
    assert_eq!(
        g.match_text("channel 11").unwrap().slots["channel"],
        SlotValue::Integer(11)
    );
    assert!(g.match_text("go to channel five").is_some());
    assert!(g.match_text("go to channel 5").is_some());
}

#[test]
fn permutations_and_rules() {
    let g = grammar(
        r#"
[intents.Set]
sentences = ["<set> (the {room} light; to {level})"]
[lists.room]
values = ["kitchen"]
[lists.level]
range = { from = 1, to = 3 }
[expansion_rules]
set = "(set|make)"
"#,
    );
    let a = g.match_text("set the kitchen light to 2").unwrap();
    let b = g.match_text("make to two the kitchen light").unwrap();
    assert_eq!(a.slots, b.slots);
    assert_eq!(g.sentence_count(0), 2 * 2 * 3);
}

#[test]
fn wildcards_take_the_fewest_words() {
    let g = grammar(
        r#"
[intents.Play]
sentences = ["play {song} [on spotify]"]
[intents.Two]
sentences = ["from {a} to {b}"]
[lists.song]
wildcard = true
[lists.a]
wildcard = true
[lists.b]
wildcard = true
"#,
    );
    let m = g.match_text("Play Yellow Submarine on Spotify!").unwrap();
    assert_eq!(m.slots["song"], text("yellow submarine"));
    let m = g.match_text("play on and on").unwrap();
    assert_eq!(m.slots["song"], text("on and on"));
    let m = g.match_text("from here to there to everywhere").unwrap();
    assert_eq!(m.slots["a"], text("here"));
    assert_eq!(m.slots["b"], text("there to everywhere"));
    assert_eq!(g.match_text("play"), None);
}

#[test]
fn the_first_intent_wins_a_tie() {
    let g = grammar("[intents.B]\nsentences = [\"hello\"]\n[intents.A]\nsentences = [\"hello\"]\n");
    assert_eq!(g.match_text("hello").unwrap().intent, "B");
}

#[test]
fn template_errors_point_into_the_file() {
    let cases = [
        ("[intents.X]\nsentences = [\"turn (on\"]\n", "test.toml:2:20:", "never closed"),
        ("[intents.X]\nsentences = [\"a\", \"x {nope}\"]\n", "test.toml:2:22:", "unknown list `nope`"),
        ("[intents.X]\nsentences = [\"x <nope>\"]\n", "test.toml:2:17:", "unknown expansion rule"),
        (
            "[intents.X]\nsentences = [\"x <a>\"]\n[expansion_rules]\na = \"y <b>\"\nb = \"[<a>]\"\n",
            "test.toml:5:7:",
            "<a> → <b> → <a>",
        ),
        ("[intents.X]\nsentences = [\"[please]\"]\n", "test.toml:2:15:", "empty text"),
        (
            "[intents.X]\nsentences = [\"x {n}\"]\n[lists.n]\nrange = { from = 0, to = 100000 }\n",
            "test.toml:3:1:",
            "100001 values",
        ),
        (
            "[intents.X]\nsentences = [\"x {n}\"]\n[lists.n]\nvalues = [\"tv\", \"TV\"]\n",
            "test.toml:4:17:",
            "sounds the same",
        ),
        (
            "[intents.X]\nsentences = [\"x\"]\n[expansion_rules]\nunused = \"(a\"\n",
            "test.toml:4:11:",
            "never closed",
        ),
        (
            "[intents.X]\nsentences = [\"<r0>\"]\n[expansion_rules]\nr0 = \"<r1> <r1>\"\nr1 = \"<r2> <r2>\"\nr2 = \"<r3> <r3>\"\nr3 = \"<r4> <r4>\"\nr4 = \"<r5> <r5>\"\nr5 = \"<r6> <r6>\"\nr6 = \"<r7> <r7>\"\nr7 = \"<r8> <r8>\"\nr8 = \"<r9> <r9>\"\nr9 = \"<r10> <r10>\"\nr10 = \"<r11> <r11>\"\nr11 = \"<r12> <r12>\"\nr12 = \"<r13> <r13>\"\nr13 = \"<r14> <r14>\"\nr14 = \"<r15> <r15>\"\nr15 = \"<r16> <r16>\"\nr16 = \"<r17> <r17>\"\nr17 = \"x\"\n",
            "test.toml:",
            "expansion rules nest more than 16 deep",
        ),
        (
            "[intents.X]\nsentences = [\"<a>\"]\n[expansion_rules]\na = \"<b> <b> <b> <b>\"\nb = \"<c> <c> <c> <c>\"\nc = \"<d> <d> <d> <d>\"\nd = \"<e> <e> <e> <e>\"\ne = \"<f> <f> <f> <f>\"\nf = \"<g> <g> <g> <g>\"\ng = \"<h> <h> <h> <h>\"\nh = \"<i> <i> <i> <i>\"\ni = \"<j> <j> <j> <j>\"\nj = \"<k> <k> <k> <k>\"\nk = \"x\"\n",
            "test.toml:",
            "grows past 1000000 graph nodes",
        ),
        ("", "", "no intents"),
    ];
    for (toml, location, message) in cases {
        let err = match try_grammar(toml) {
            Ok(_) => panic!("no error for {toml}"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.starts_with(location) && err.contains(message),
            "expected {location} {message}: {err}"
        );
    }
}

#[test]
fn huge_products_compile_without_enumerating() {
    let values: Vec<String> = (0..100).map(|i| format!("\"w{i}\"")).collect();
    let mut toml = String::from("[intents.Huge]\nsentences = [\"");
    for i in 0..10 {
        toml.push_str(&format!("{{l{i}}} "));
    }
    toml.push_str("\"]\n");
    for i in 0..10 {
        toml.push_str(&format!("[lists.l{i}]\nvalues = [{}]\n", values.join(", ")));
    }
    let g = grammar(&toml);
    assert_eq!(g.total_sentence_count(), 100u128.pow(10));
    let said: Vec<String> = (0..10).map(|i| format!("w{}", i * 7)).collect();
    let m = g.match_text(&said.join(" ")).unwrap();
    assert_eq!(m.slots["l9"], text("w63"));
}

#[test]
fn prefixes_advance_by_any_piece() {
    let g = grammar(LIGHTS);
    let pieces = [
        " Turn", " on", " the", " liv", "ing", " Room", " light", "s", ".",
    ];
    let mut state = g.start();
    for (i, piece) in pieces.iter().enumerate() {
        assert_eq!(g.is_complete(&state), i >= 7, "after {i} pieces");
        state = g
            .advance(&state, piece)
            .unwrap_or_else(|| panic!("{piece}"));
    }
    assert!(g.is_complete(&state));
    assert_eq!(g.complete_intent(&state).unwrap().name, "LightOn");
    let state = g.advance(&g.start(), " set kitchen to 2").unwrap();
    assert!(g.is_complete(&state), "2 is in the range");
    let state = g.advance(&state, "1").unwrap();
    assert!(g.is_complete(&state));
    assert!(g.advance(&state, "0").is_none(), "210 is past the range");
    assert!(g.advance(&g.start(), " set kitchen to 2,").is_some());
    assert!(g.advance(&g.start(), " turn on the garage").is_none());
    assert!(g
        .advance(&g.start(), "turn on the kitchen light please")
        .is_none());
}

#[test]
fn a_sentence_goes_on_when_more_words_may_follow() {
    let g = grammar(LIGHTS);
    // Complete, and nothing may follow (a word that could grow does not count).
    assert!(!g.goes_on("turn on the kitchen lights."));
    assert!(!g.goes_on("Turn on the kitchen light"));
    // Complete, but an optional word, a longer number or a longer value may follow.
    assert!(
        g.goes_on("set the kitchen to 20"),
        "percent, or twenty five"
    );
    assert!(g.goes_on("set the kitchen to twenty"));
    assert!(!g.goes_on("set the kitchen to 20 percent"));
    // Not complete: more words are owed.
    assert!(g.goes_on("turn on the"));
    assert!(g.goes_on("switch the kitchen light"));
    // Text that begins no sentence goes nowhere.
    assert!(!g.goes_on("open the door"));
    let g = grammar(
        "[intents.Ask]\nsentences = [\"tell me {question}\"]\n\
         [lists.question]\nwildcard = true\n",
    );
    assert!(g.goes_on("tell me the time"), "a wildcard takes more words");
}

/// What the action stage checks `run` and `notify` placeholders against.
#[test]
fn captured_slot_names_for_actions() {
    let g = grammar(
        r#"
[intents.Set]
sentences = ["<set> the {room} light to {level:brightness}", "dim it"]
slots = { domain = "light" }
[intents.Ask]
sentences = ["ask {question}"]
[lists.room]
values = ["kitchen"]
[lists.level]
range = { from = 1, to = 3 }
[lists.question]
wildcard = true
[expansion_rules]
set = "(set|make) [the {room} light]"
"#,
    );
    let set: Vec<_> = g.captured_slot_names(0).into_iter().collect();
    assert_eq!(set, ["brightness", "room"]);
    let ask: Vec<_> = g.captured_slot_names(1).into_iter().collect();
    assert_eq!(ask, ["question"]);
}

/// Errors about an intent's action point at its definition.
#[test]
fn intents_know_their_file_and_line() {
    let g = grammar(LIGHTS);
    let lines: Vec<_> = g.intents().iter().map(|i| (i.line, &i.file)).collect();
    let file = PathBuf::from("test.toml");
    assert_eq!(lines, [(2, &file), (6, &file), (9, &file)]);
}

fn with_wake(text: &str, wake: &str) -> Result<Grammar, GrammarError> {
    Grammar::from_texts_with_wake([(PathBuf::from("test.toml"), text.to_string())], Some(wake))
}

#[test]
fn a_wake_phrase_is_an_optional_prefix_and_a_sentence_alone() {
    let g = with_wake(LIGHTS, "Hey, Computer").unwrap();
    let m = g
        .match_text("Hey computer, turn on the kitchen lights.")
        .unwrap();
    assert_eq!(m.intent, "LightOn");
    assert!(m.wake);
    assert_eq!(m.slots, BTreeMap::from([("room".into(), text("kitchen"))]));
    let m = g.match_text("turn on the kitchen lights").unwrap();
    assert!(!m.wake);
    assert_eq!(
        g.match_text("hey computer"),
        None,
        "the phrase alone is no command"
    );
    assert!(g.is_wake_phrase("Hey computer!"));
    assert!(!g.is_wake_phrase("turn off the kitchen light"));
    assert!(!g.is_wake_phrase("hey computer turn off the kitchen light"));
    assert_eq!(g.match_text("hey turn on the kitchen lights"), None);
    let own = format!("{LIGHTS}\n[intents.Ask]\nsentences = [\"hey computer {{question}}\"]\n[lists.question]\nwildcard = true\n");
    let g2 = with_wake(&own, "hey computer").unwrap();
    let m = g2.match_text("hey computer what is the time").unwrap();
    assert_eq!(m.intent, "Ask");
    assert!(m.wake, "the sentence's own words are the phrase");
    assert_eq!(g2.match_text("hey computers are great"), None);
    assert_eq!(g.wake_phrase(), Some("Hey, Computer"));
    // The intents and their counts are the grammar's own.
    assert_eq!(g.intents().len(), 3);
    assert_eq!(g.sentence_count(0), grammar(LIGHTS).sentence_count(0));

    // Without the phrase alone, the prefix still reads and the phrase is no sentence.
    let behind = g.without_wake_alone();
    assert!(!behind.is_wake_phrase("hey computer"));
    assert!(behind
        .match_text("hey computer turn off the kitchen light")
        .is_some());
    let mut state = behind.start();
    for piece in [" Hey", " computer"] {
        state = behind.advance(&state, piece).unwrap();
    }
    assert!(!behind.is_complete(&state));
    let mut state = g.start();
    for piece in [" Hey", " computer"] {
        state = g.advance(&state, piece).unwrap();
    }
    assert!(g.is_complete(&state));

    // No wake phrase: none of this.
    assert!(!grammar(LIGHTS).is_wake_phrase("hey computer"));
    let error = with_wake(LIGHTS, "!").unwrap_err().to_string();
    assert!(error.contains("[commands] wake"), "{error}");
}

#[test]
fn a_later_file_extends_a_list_of_values() {
    let names = "[lists.room]\nextend = true\nvalues = [\"first floor\", { in = \"den\", out = \"study\" }]\n";
    let g = Grammar::from_texts([
        (PathBuf::from("lights.toml"), LIGHTS.to_string()),
        (PathBuf::from("names.toml"), names.to_string()),
    ])
    .unwrap();
    let m = g.match_text("turn on the first floor lights").unwrap();
    assert_eq!(m.slots["room"], text("first floor"));
    assert_eq!(
        g.match_text("turn off den light").unwrap().slots["room"],
        text("study")
    );
    assert_eq!(
        g.match_text("turn on the kitchen light").unwrap().intent,
        "LightOn"
    );

    for (text, expected) in [
        (
            "[lists.hall]\nextend = true\nvalues = [\"a\"]\n",
            "earlier file",
        ),
        (
            "[lists.brightness]\nextend = true\nvalues = [\"a\"]\n",
            "only a list of `values`",
        ),
        (
            "[lists.room]\nextend = true\nrange = { from = 1, to = 2 }\n",
            "takes `values",
        ),
    ] {
        let err = Grammar::from_texts([
            (PathBuf::from("lights.toml"), LIGHTS.to_string()),
            (PathBuf::from("names.toml"), text.to_string()),
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("names.toml:") && err.contains(expected),
            "{err}"
        );
    }
}
