//! `voxd model convert` writes whisper.cpp ggml files that voxd reads back to the same
//! model, quantized files that whisper.cpp itself transcribes as voxd does, and broken ggml
//! files give clear errors.

use std::process::Command;

use voxd::audio::{self, SAMPLE_RATE};
use voxd::kernels::quant::QuantType;
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

fn greedy(t: &Transcriber) -> Vec<voxd::whisper::transcribe::Segment> {
    let samples = audio::read_wav(&common::jfk()).unwrap();
    let opts = TranscribeOptions {
        beam_size: 1,
        temperatures: vec![0.0],
        ..TranscribeOptions::default()
    };
    t.transcribe(&samples, &opts, |_| {}).unwrap().segments
}

fn greedy_text(t: &Transcriber) -> Vec<u32> {
    greedy(t).iter().flat_map(|s| s.tokens.clone()).collect()
}

/// whisper.cpp's greedy text of jfk.wav on the ggml file at `model`, through
/// `scripts/reference/whispercpp_transcribe.py` in the reference `.venv/`.
fn whisper_cpp_text(model: &std::path::Path) -> String {
    let python = common::repo().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.sh --reference (installs pywhispercpp into .venv/)",
        python.display()
    );
    let out = Command::new(python)
        .arg(common::repo().join("scripts/reference/whispercpp_transcribe.py"))
        .arg(model)
        .arg(common::jfk())
        .output()
        .expect("run scripts/reference/whispercpp_transcribe.py");
    assert!(
        out.status.success(),
        "whisper.cpp could not transcribe with {}: {}",
        model.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Word-level edit distance.
fn words_apart(a: &str, b: &str) -> usize {
    let (a, b): (Vec<&str>, Vec<&str>) = (
        a.split_whitespace().collect(),
        b.split_whitespace().collect(),
    );
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, wa) in a.iter().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, wb) in b.iter().enumerate() {
            let next = (diag + usize::from(wa != wb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The quantized files voxd writes load in whisper.cpp, and both transcribe them alike: the
/// same words on q8_0, at most one word apart on q5_1 (printed either way). Words, not
/// punctuation: on jfk.wav whisper.cpp leaves out voxd's (and faster-whisper's) comma after
/// "And so" even on the f16 file, a difference of decoding, not of the weights.
#[test]
fn quantized_files_transcribe_like_whisper_cpp() {
    let dir = tempfile::tempdir().unwrap();
    for (ty, most_words_apart) in [(QuantType::Q8_0, 0), (QuantType::Q5_1, 1)] {
        let path = convert(FloatType::Quant(ty), dir.path());
        let t = Transcriber::load(&path, 2).unwrap();
        let ours: String = greedy(&t).iter().map(|s| s.text.as_str()).collect();
        let theirs = whisper_cpp_text(&path);
        let apart = words_apart(&common::normalize(&ours), &common::normalize(&theirs));
        println!(
            "{ty:?}: voxd {ours:?}\n{ty:?}: whisper.cpp {theirs:?}\n{ty:?}: {apart} words apart"
        );
        assert!(
            apart <= most_words_apart,
            "{ty:?}: voxd {ours:?}, whisper.cpp {theirs:?}: {apart} words apart"
        );
    }
}

#[test]
fn words_apart_counts_edits() {
    assert_eq!(words_apart("a b c", "a b c"), 0);
    assert_eq!(words_apart("a b c", "a x c"), 1);
    assert_eq!(words_apart("a b c", "a c"), 1);
    assert_eq!(words_apart("a b", "b a x"), 2);
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
