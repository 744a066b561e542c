//! voxd's numbers against the reference implementation's on the same input: the log-mel
//! window faster-whisper feeds its encoder, and CTranslate2's encoder output on those
//! features (files from `scripts/reference/reference.py numeric`).

use voxd::audio;
use voxd::whisper::mel::{LogMel, CHUNK_FRAMES};
use voxd::whisper::transcribe::AudioCtx;

use crate::common;

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn max_abs(a: &[f32]) -> f32 {
    a.iter().map(|x| x.abs()).fold(0.0, f32::max)
}

/// voxd's first 30 s window of jfk.wav, as transcription computes it.
fn jfk_window(model: &str) -> LogMel {
    let t = common::transcriber(model);
    let samples = audio::read_wav(&common::jfk()).unwrap();
    let mel = t.features(&samples);
    let content = (mel.n_frames - 1).min(CHUNK_FRAMES);
    mel.window(0, content).window(0, CHUNK_FRAMES)
}

fn check_mel(model: &str) {
    let (shape, want) = common::read_npy_f32(&common::reference_dir(model).join("jfk_mel.npy"));
    let got = jfk_window(model);
    assert_eq!(shape, vec![got.n_mels, got.n_frames]);
    let diff = max_abs_diff(&got.data, &want);
    eprintln!("{model}: log-mel max abs diff {diff:.2e}");
    assert!(diff < 1e-3, "{model}: log-mel differs by {diff}");
}

/// Encoder output within 1e-2 of CTranslate2's, relative to the output's scale.
fn check_encoder(model: &str, file: &str, ctx: AudioCtx) {
    let (shape, want) = common::read_npy_f32(&common::reference_dir(model).join(file));
    let t = common::transcriber(model);
    let window = jfk_window(model);
    let got = t.encode_window(&window, CHUNK_FRAMES, ctx).unwrap();
    assert_eq!(
        got.len(),
        shape.iter().product::<usize>(),
        "{file}: shape {shape:?}"
    );
    let diff = max_abs_diff(&got, &want);
    let scale = max_abs(&want);
    eprintln!(
        "{model} {file}: max abs diff {diff:.2e}, scale {scale:.2}, relative {:.2e}",
        diff / scale
    );
    assert!(
        diff / scale < 1e-2,
        "{model} {file}: relative difference {}",
        diff / scale
    );
}

#[test]
fn tiny_en_log_mel_matches_faster_whisper() {
    check_mel("tiny.en");
}

#[test]
fn base_log_mel_matches_faster_whisper() {
    check_mel("base");
}

#[test]
fn tiny_en_encoder_matches_ctranslate2() {
    check_encoder("tiny.en", "jfk_encoder.npy", AudioCtx::Full);
    check_encoder("tiny.en", "jfk_encoder_ctx550.npy", AudioCtx::Fixed(550));
}

#[test]
fn base_encoder_matches_ctranslate2() {
    check_encoder("base", "jfk_encoder.npy", AudioCtx::Full);
    check_encoder("base", "jfk_encoder_ctx550.npy", AudioCtx::Fixed(550));
}
