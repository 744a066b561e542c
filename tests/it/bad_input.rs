//! Awkward and broken input gives a sensible result or a clear error, never a panic.

use std::path::Path;

use voxd::audio::{self, SAMPLE_RATE};
use voxd::whisper::transcribe::{TranscribeOptions, Transcriber};

use crate::common;

const JFK_TEXT: &str =
    "and so my fellow americans ask not what your country can do for you ask what you can do for your country";

fn write_wav_i16(path: &Path, rate: u32, channels: u16, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        for _ in 0..channels {
            w.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16)
                .unwrap();
        }
    }
    w.finalize().unwrap();
}

fn write_wav_f32(path: &Path, rate: u32, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

fn tiny() -> &'static Transcriber {
    common::transcriber("tiny.en")
}

fn transcribe_file(path: &Path) -> String {
    let samples = audio::read_wav(path).expect("reads");
    let t = tiny().transcribe(&samples, &TranscribeOptions::default(), |_| {});
    common::normalize(&t.expect("transcribes").text())
}

#[test]
fn empty_wav_gives_no_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.wav");
    write_wav_i16(&path, SAMPLE_RATE, 1, &[]);
    assert_eq!(transcribe_file(&path), "");
}

#[test]
fn silence_gives_no_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("silent.wav");
    write_wav_i16(&path, SAMPLE_RATE, 1, &vec![0.0; 5 * SAMPLE_RATE as usize]);
    assert_eq!(transcribe_file(&path), "");
}

#[test]
fn fifty_milliseconds_is_handled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("short.wav");
    let jfk = audio::read_wav(&common::jfk()).unwrap();
    // 50 ms from the middle of a word.
    write_wav_i16(&path, SAMPLE_RATE, 1, &jfk[16_000..16_800]);
    let text = transcribe_file(&path);
    assert!(text.split_whitespace().count() <= 3, "50 ms gave {text:?}");
}

#[test]
fn eight_khz_stereo_is_resampled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jfk8k.wav");
    let jfk = audio::read_wav(&common::jfk()).unwrap();
    let low = audio::resample(&jfk, SAMPLE_RATE, 8_000).unwrap();
    write_wav_i16(&path, 8_000, 2, &low);
    assert_eq!(transcribe_file(&path), JFK_TEXT);
}

#[test]
fn ninety_six_khz_float_is_resampled() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jfk96k.wav");
    let jfk = audio::read_wav(&common::jfk()).unwrap();
    let high = audio::resample(&jfk, SAMPLE_RATE, 96_000).unwrap();
    write_wav_f32(&path, 96_000, &high);
    assert_eq!(transcribe_file(&path), JFK_TEXT);
}

/// Four minutes: eight 30 s windows and more, each one's seek taken from the one before.
#[test]
fn four_minutes_are_transcribed_window_after_window() {
    let jfk = audio::read_wav(&common::jfk()).unwrap();
    let pause = vec![0.0f32; SAMPLE_RATE as usize];
    let period = jfk.len() + pause.len();
    let repeats = (240 * SAMPLE_RATE as usize).div_ceil(period);
    let long: Vec<f32> = (0..repeats)
        .flat_map(|_| jfk.iter().chain(&pause).copied())
        .collect();
    let opts = TranscribeOptions {
        language: Some("en".into()),
        beam_size: 1,
        ..TranscribeOptions::default()
    };
    let t = tiny()
        .transcribe(&long, &opts, |_| {})
        .expect("transcribes");
    let duration = long.len() as f32 / SAMPLE_RATE as f32;
    for pair in t.segments.windows(2) {
        assert!(
            pair[0].start <= pair[1].start,
            "segments go forward in time"
        );
    }
    let last = t.segments.last().expect("has segments");
    assert!(
        last.end > duration - 15.0 && last.end <= duration + 1.0,
        "ends near {duration}: {}",
        last.end
    );
    let text = common::normalize(&t.text());
    let found = text
        .matches("ask not what your country can do for you")
        .count();
    assert!(
        found * 10 >= repeats * 9,
        "{found} of {repeats} repetitions recognised"
    );
}

#[test]
fn non_wav_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.wav");
    std::fs::write(&path, "this is not audio\n").unwrap();
    let err = audio::read_wav(&path).unwrap_err().to_string();
    assert!(err.contains("notes.wav"), "error names the file: {err}");
}

/// A copy of the tiny.en directory whose model.bin is replaced by `bytes`.
fn model_with(dir: &Path, bytes: &[u8]) {
    let src = common::model_dir("tiny.en");
    for f in ["config.json", "vocabulary.txt", "tokenizer.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    std::fs::write(dir.join("model.bin"), bytes).unwrap();
}

fn load_error(dir: &Path) -> String {
    match Transcriber::load(dir, 1) {
        Ok(_) => panic!("a broken model loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn truncated_ct2_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(common::model_dir("tiny.en").join("model.bin")).unwrap();
    for cut in [0, 3, 100, full.len() / 2, full.len() - 1] {
        model_with(dir.path(), &full[..cut]);
        let err = load_error(dir.path());
        assert!(err.contains("model.bin"), "names the file: {err}");
        assert!(
            err.contains("truncated") || err.contains("not a"),
            "says why: {err}"
        );
    }
}

#[test]
fn foreign_file_as_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    model_with(
        dir.path(),
        b"GGUF\x03\x00\x00\x00 this is some other kind of model file",
    );
    let err = load_error(dir.path());
    assert!(
        err.contains("model.bin") && err.contains("not a supported CTranslate2 model"),
        "{err}"
    );
}

#[test]
fn missing_model_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_error(&dir.path().join("nowhere"));
    assert!(err.contains("nowhere"), "{err}");
}
