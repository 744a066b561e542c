//! Greedy transcripts of jfk.wav and the spoken clips match faster-whisper's (the committed
//! reference made by `scripts/reference/reference.py transcripts`), for tiny.en and base.

use serde_json::Value;
use voxd::audio;
use voxd::whisper::transcribe::TranscribeOptions;

use crate::common;

fn reference() -> Value {
    let path = common::repo().join("tests/fixtures/reference/transcripts.json");
    let text = std::fs::read_to_string(&path).expect("reference transcripts exist");
    serde_json::from_str(&text).expect("reference transcripts are JSON")
}

/// The options the reference was made with: greedy, temperature 0 only, English,
/// conditioned on previous text, with timestamps.
fn greedy() -> TranscribeOptions {
    TranscribeOptions {
        language: Some("en".into()),
        beam_size: 1,
        best_of: 1,
        temperatures: vec![0.0],
        ..TranscribeOptions::default()
    }
}

fn check_model(name: &str) {
    let reference = reference();
    let clips = reference["models"][name]["clips"]
        .as_object()
        .expect("reference has the model");
    assert!(clips.len() >= 21, "reference has jfk and at least 20 clips");
    let t = common::transcriber(name);
    let mut mismatches = Vec::new();
    let mut token_exact = 0;
    for (file, expected) in clips {
        let samples = audio::read_wav(&common::repo().join(file)).expect("clip reads");
        let got = t
            .transcribe(&samples, &greedy(), |_| {})
            .expect("transcribes");
        let want = expected["normalized"].as_str().unwrap();
        if common::normalize(&got.text()) != want {
            mismatches.push(format!("{file}: got {:?}, want {:?}", got.text(), want));
        }
        let want_tokens: Vec<u64> = expected["segments"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| {
                s["tokens"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_u64().unwrap())
            })
            .collect();
        let got_tokens: Vec<u64> = got
            .segments
            .iter()
            .flat_map(|s| s.tokens.iter().map(|&t| t as u64))
            .collect();
        token_exact += usize::from(got_tokens == want_tokens);
    }
    eprintln!(
        "{name}: {token_exact}/{} clips token-identical to the reference",
        clips.len()
    );
    assert!(
        mismatches.is_empty(),
        "{name} differs from faster-whisper:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn tiny_en_matches_faster_whisper() {
    check_model("tiny.en");
}

#[test]
fn base_matches_faster_whisper() {
    check_model("base");
}
