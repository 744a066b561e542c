//! A CTranslate2 int8 model (tiny.en quantized by CTranslate2's own converter code:
//! `models/tiny.en-ct2-int8`, made by `scripts/setup.sh --reference`) loads as it is and
//! transcribes jfk.wav and the spoken clips as faster-whisper does with compute_type int8 on
//! the same directory (the committed reference of `scripts/reference/reference.py
//! transcripts`), greedy as the float comparison in `transcripts.rs`.
//!
//! The two compute differently from the same int8 weights: CTranslate2 quantizes the
//! activations of every product to int8 per row, voxd keeps the encoder's in f32 and
//! quantizes the decoder's in blocks of 32 (Q8_0), with each row's step rounded to f16 (the
//! words are the same as with the weights dequantized exactly to f32). So this is a lossy
//! path, held to the project's bar for one, at most one word apart per clip, on every clip
//! that int8 itself leaves stable: where CTranslate2's int8 transcript is within one word of
//! its float32 one. Where quantization alone moves CTranslate2 further (clips on which tiny.en
//! is unsure, its float transcript already wrong), voxd and CTranslate2 may land on different
//! wrong words; there the bar is the whole set's: voxd departs from CTranslate2 int8 by no
//! more words in all than CTranslate2 int8 departs from its own float32 model.

use serde_json::Value;
use voxd::audio;
use voxd::kernels::quant::QuantType;
use voxd::whisper::transcribe::{TranscribeOptions, Transcriber};

use crate::common;
use crate::common::captions::word_errors;

const MODEL: &str = "tiny.en-ct2-int8";

fn greedy() -> TranscribeOptions {
    TranscribeOptions {
        language: Some("en".into()),
        beam_size: 1,
        best_of: 1,
        temperatures: vec![0.0],
        ..TranscribeOptions::default()
    }
}

#[test]
fn int8_ct2_model_transcribes_like_ctranslate2_int8() {
    let dir = common::repo().join("models").join(MODEL);
    assert!(
        dir.join("model.bin").exists(),
        "{} is missing: run scripts/setup.sh --reference (it quantizes models/tiny.en with \
         CTranslate2)",
        dir.display()
    );
    let t = Transcriber::load(&dir, 2).expect("the int8 model loads");
    assert_eq!(
        t.model.weights.decoder.layers[0].mlp.fc1.weight.format(),
        QuantType::Q8_0,
        "int8 matrices are multiplied as Q8_0"
    );

    let path = common::repo().join("tests/fixtures/reference/transcripts.json");
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let entry = &reference["models"][MODEL];
    assert_eq!(entry["compute_type"], "int8");
    let clips = entry["clips"]
        .as_object()
        .expect("reference has the int8 model");
    assert!(clips.len() >= 21, "reference has jfk and at least 20 clips");

    let float = reference["models"]["tiny.en"]["clips"]
        .as_object()
        .expect("reference has tiny.en");
    let (mut same, mut too_far) = (0, Vec::new());
    let (mut ours_apart, mut theirs_apart) = (0, 0);
    for (file, expected) in clips {
        let samples = audio::read_wav(&common::repo().join(file)).expect("clip reads");
        let got = t
            .transcribe(&samples, &greedy(), |_| {})
            .expect("transcribes");
        let want = expected["normalized"].as_str().unwrap();
        let (apart, _) = word_errors(want, &got.text());
        let (quantization_moved, _) =
            word_errors(float[file]["normalized"].as_str().unwrap(), want);
        ours_apart += apart;
        theirs_apart += quantization_moved;
        if apart == 0 {
            same += 1;
        } else {
            println!(
                "{file}: {apart} word(s) apart: voxd {:?}, CTranslate2 {want:?} ({quantization_moved} \
                 from its float32 transcript)",
                got.text()
            );
        }
        if apart > 1 && quantization_moved <= 1 {
            too_far.push(format!(
                "{file}: voxd {:?}, CTranslate2 {want:?}",
                got.text()
            ));
        }
    }
    println!(
        "{MODEL}: {same}/{} transcripts equal to CTranslate2 int8's; {ours_apart} words apart in \
         all (CTranslate2 int8 from its float32 model: {theirs_apart})",
        clips.len()
    );
    assert!(
        too_far.is_empty(),
        "more than one word apart from CTranslate2 int8 where int8 leaves it stable:\n{}",
        too_far.join("\n")
    );
    assert!(
        ours_apart <= theirs_apart,
        "{ours_apart} words apart from CTranslate2 int8, more than its {theirs_apart} from float32"
    );
}
