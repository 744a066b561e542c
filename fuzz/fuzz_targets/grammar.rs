//! Grammar files: `Grammar::from_texts` (TOML, templates, lists, rules, slots, compilation),
//! then matching, prefix walking and sampling on what compiled.
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use voxd::grammar::Grammar;
use voxd::util::rng::Rng;

const SPOKEN: [&str; 3] = [
    "turn on the kitchen lights",
    "set a timer for ten minutes",
    "what's the time",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(grammar) = Grammar::from_texts([(PathBuf::from("fuzz.toml"), text.to_string())]) else {
        return;
    };
    let _ = grammar.total_sentence_count();
    let mut rng = Rng::new(7);
    for intent in 0..grammar.intents().len() {
        let _ = grammar.captured_slot_names(intent);
        if let Some(sample) = grammar.sample(intent, &mut rng) {
            // A sampled sentence is one the grammar accepts.
            assert!(
                grammar.match_text(&sample.text).is_some(),
                "sampled {:?} does not match",
                sample.text
            );
        }
    }
    for spoken in SPOKEN {
        let _ = grammar.match_text(spoken);
        let mut state = grammar.start();
        for word in spoken.split(' ') {
            match grammar.advance(&state, &format!(" {word}")) {
                Some(next) => state = next,
                None => break,
            }
        }
        let _ = grammar.complete_intent(&state);
    }
});
