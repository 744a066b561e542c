//! Decoding paths beyond greedy: beam search, language detection, temperature fallback,
//! shortened audio context and an initial prompt, on real speech.

use voxd::audio;
use voxd::whisper::mel::CHUNK_FRAMES;
use voxd::whisper::transcribe::{AudioCtx, TranscribeOptions};

use crate::common;

const JFK_TEXT: &str =
    "and so my fellow americans ask not what your country can do for you ask what you can do for your country";

fn jfk() -> Vec<f32> {
    audio::read_wav(&common::jfk()).unwrap()
}

#[test]
fn beam_search_transcribes_jfk() {
    for model in ["tiny.en", "base"] {
        let t = common::transcriber(model);
        let opts = TranscribeOptions {
            language: Some("en".into()),
            ..TranscribeOptions::default()
        };
        let got = t.transcribe(&jfk(), &opts, |_| {}).unwrap();
        assert_eq!(common::normalize(&got.text()), JFK_TEXT, "{model} beam 5");
        assert!(got
            .segments
            .iter()
            .all(|s| s.avg_logprob > -1.0 && s.no_speech_prob < 0.6));
    }
}

#[test]
fn multilingual_model_detects_english() {
    let t = common::transcriber("base");
    let mel = t.features(&jfk());
    let content = (mel.n_frames - 1).min(CHUNK_FRAMES);
    let window = mel.window(0, content).window(0, CHUNK_FRAMES);
    let audio = t.encode_window(&window, content, AudioCtx::Full).unwrap();
    let (lang, p) = t.detect_language(&audio).unwrap();
    assert_eq!(lang, "en");
    assert!(p > 0.5, "probability {p}");
    // And transcription without a language detects it too.
    let got = t
        .transcribe(&jfk(), &TranscribeOptions::default(), |_| {})
        .unwrap();
    assert_eq!(got.language, "en");
}

#[test]
fn fitted_audio_context_keeps_the_transcript() {
    let t = common::transcriber("tiny.en");
    let opts = TranscribeOptions {
        beam_size: 1,
        audio_ctx: AudioCtx::Fit,
        ..TranscribeOptions::default()
    };
    let got = t.transcribe(&jfk(), &opts, |_| {}).unwrap();
    assert_eq!(common::normalize(&got.text()), JFK_TEXT);
}

/// faster-whisper 1.2.1 (tiny.en, float32, greedy, temperature 0) on this clip gives
/// " Dr. Johnson will see you in room 400 and 12." without a prompt and the texts below
/// with them: the prompt is encoded and placed as the reference does.
#[test]
fn initial_prompt_conditions_like_the_reference() {
    let t = common::transcriber("tiny.en");
    let clip = common::repo().join("tests/fixtures/clips/24_doctor_johnson_will_see_you.wav");
    let samples = audio::read_wav(&clip).unwrap();
    for (prompt, want) in [
        (
            "Dr. Johnson, room 412.",
            " Dr. Johnson, we'll see you in room 400 and 12.",
        ),
        (
            "Doctor Johnson will see you in room 412.",
            " Doctor Johnson will see you in room 400 and 12.",
        ),
    ] {
        let opts = TranscribeOptions {
            beam_size: 1,
            temperatures: vec![0.0],
            initial_prompt: Some(prompt.into()),
            ..TranscribeOptions::default()
        };
        let got = t.transcribe(&samples, &opts, |_| {}).unwrap();
        assert_eq!(got.text(), want, "prompt {prompt:?}");
    }
}

#[test]
fn sampling_fallback_is_deterministic() {
    // Temperatures above zero only: the result comes from the seeded sampler.
    let t = common::transcriber("tiny.en");
    let opts = TranscribeOptions {
        beam_size: 1,
        temperatures: vec![0.6],
        ..TranscribeOptions::default()
    };
    let a = t.transcribe(&jfk(), &opts, |_| {}).unwrap();
    let b = t.transcribe(&jfk(), &opts, |_| {}).unwrap();
    assert_eq!(a.text(), b.text());
    assert!(
        common::normalize(&a.text()).contains("ask not what your country"),
        "{}",
        a.text()
    );
}

#[test]
fn a_raised_interrupt_stops_the_decode_and_an_unraised_one_changes_nothing() {
    let t = common::transcriber("tiny.en");
    let interrupt = voxd::whisper::transcribe::Interrupt::new();
    let opts = TranscribeOptions {
        interrupt: interrupt.clone(),
        ..TranscribeOptions::default()
    };
    let heard = t.transcribe(&jfk(), &opts, |_| {}).unwrap();
    let plain = t.transcribe(&jfk(), &TranscribeOptions::default(), |_| {});
    assert_eq!(heard.text(), plain.unwrap().text());
    interrupt.raise();
    let stopped = t.transcribe(&jfk(), &opts, |_| {});
    assert!(
        matches!(
            stopped,
            Err(voxd::whisper::transcribe::TranscribeError::Interrupted)
        ),
        "{stopped:?}"
    );
}
