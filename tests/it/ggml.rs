//! `voxd model convert` writes whisper.cpp ggml files that voxd reads back to the same
//! model, and broken ggml files give clear errors.

use voxd::audio::{self, SAMPLE_RATE};
use voxd::whisper::ggml::{self, FloatType};
use voxd::whisper::load_model;
use voxd::whisper::mel::{MelFilters, N_FFT};
use voxd::whisper::transcribe::{TranscribeOptions, Transcriber};

use crate::common;

fn convert(ftype: FloatType, dir: &std::path::Path) -> std::path::PathBuf {
    let model = load_model(&common::model_dir("tiny.en")).unwrap();
    let n_mels = model.weights.hparams.n_mels;
    let filters = MelFilters::slaney(n_mels, N_FFT, SAMPLE_RATE);
    let out = dir.join(format!("ggml-tiny.en-{ftype:?}.bin"));
    ggml::write(&out, &model.weights, &model.tokenizer, &filters, ftype).unwrap();
    out
}

fn greedy_text(t: &Transcriber) -> Vec<u32> {
    let samples = audio::read_wav(&common::jfk()).unwrap();
    let opts = TranscribeOptions {
        beam_size: 1,
        temperatures: vec![0.0],
        ..TranscribeOptions::default()
    };
    let tr = t.transcribe(&samples, &opts, |_| {}).unwrap();
    tr.segments.iter().flat_map(|s| s.tokens.clone()).collect()
}

#[test]
fn converted_model_transcribes_like_the_original() {
    let dir = tempfile::tempdir().unwrap();
    let original = greedy_text(common::transcriber("tiny.en"));
    for ftype in [FloatType::F16, FloatType::F32] {
        let path = convert(ftype, dir.path());
        let t = Transcriber::load(&path, 2).unwrap();
        assert_eq!(
            t.model.hparams(),
            common::transcriber("tiny.en").model.hparams()
        );
        assert_eq!(
            greedy_text(&t),
            original,
            "{ftype:?} ggml decodes the same tokens"
        );
    }
}

#[test]
fn truncated_ggml_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = convert(FloatType::F16, dir.path());
    let bytes = std::fs::read(&path).unwrap();
    for cut in [4, 30, 100_000, bytes.len() - 7] {
        let cut_path = dir.path().join(format!("cut-{cut}.bin"));
        std::fs::write(&cut_path, &bytes[..cut]).unwrap();
        let err = match Transcriber::load(&cut_path, 1) {
            Ok(_) => panic!("a truncated ggml file loaded"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains(&format!("cut-{cut}.bin")),
            "names the file: {err}"
        );
        assert!(
            err.contains("truncated") || err.contains("missing"),
            "says why: {err}"
        );
    }
}
