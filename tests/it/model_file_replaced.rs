//! A Whisper model file replaced or cut short while voxd holds it open (`cp new.bin
//! model.bin` truncates the file in place, then writes): what was opened stays readable. A
//! memory map of the file would raise SIGBUS on the first page past the new end. The LLM's
//! GGUF side is checked in `src/llm/model.rs`'s tests, with a model that runs.

use std::path::Path;

use voxd::whisper::ct2::Ct2File;
use voxd::whisper::ggml::{GgmlFile, MAGIC};
use voxd::whisper::mel::N_FREQS;
use voxd::whisper::weights::TensorSource;

const VALUES: [f32; 4] = [1.0, -2.0, 0.5, 4.0];

fn le_f32s(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// A CTranslate2 `model.bin` (version 6) holding the f32 vector `x`.
fn ct2_bytes() -> Vec<u8> {
    let string = |out: &mut Vec<u8>, s: &str| {
        out.extend((s.len() as u16 + 1).to_le_bytes());
        out.extend(s.as_bytes());
        out.push(0);
    };
    let mut out = 6u32.to_le_bytes().to_vec();
    string(&mut out, "WhisperSpec");
    out.extend(1u32.to_le_bytes()); // spec revision
    out.extend(1u32.to_le_bytes()); // one variable
    string(&mut out, "x");
    out.push(1); // rank
    out.extend((VALUES.len() as u32).to_le_bytes());
    out.push(0); // f32
    out.extend((VALUES.len() as u32 * 4).to_le_bytes());
    out.extend(le_f32s(&VALUES));
    out.extend(0u32.to_le_bytes()); // no aliases
    out
}

/// A whisper.cpp ggml file with one mel band, no vocabulary and the f32 tensor `x`.
fn ggml_bytes() -> Vec<u8> {
    let mut out = MAGIC.to_le_bytes().to_vec();
    // n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer, n_text_ctx,
    // n_text_state, n_text_head, n_text_layer, n_mels, ftype
    for v in [4i32, 4, 4, 1, 1, 4, 4, 1, 1, 1, 0] {
        out.extend(v.to_le_bytes());
    }
    out.extend(1i32.to_le_bytes());
    out.extend((N_FREQS as i32).to_le_bytes());
    out.extend(le_f32s(&vec![0.0; N_FREQS]));
    out.extend(0i32.to_le_bytes()); // vocabulary
    for v in [1i32, 1, 0, VALUES.len() as i32] {
        out.extend(v.to_le_bytes()); // rank, name length, f32, dims
    }
    out.push(b'x');
    out.extend(le_f32s(&VALUES));
    out
}

/// Truncates `path` in place, as `cp` over it does first.
fn truncate(path: &Path) {
    std::fs::File::create(path).unwrap();
}

#[test]
fn a_ct2_model_cut_short_after_opening_is_still_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.bin");
    std::fs::write(&path, ct2_bytes()).unwrap();
    let file = Ct2File::open(&path).unwrap();
    truncate(&path);
    assert_eq!(file.tensor("x").unwrap().to_f32(), VALUES);
    std::fs::write(&path, vec![0xff; 4096]).unwrap();
    assert_eq!(file.tensor("x").unwrap().to_f32(), VALUES);
}

#[test]
fn a_ggml_model_cut_short_after_opening_is_still_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ggml-test.bin");
    std::fs::write(&path, ggml_bytes()).unwrap();
    let file = GgmlFile::open(&path).unwrap();
    truncate(&path);
    assert_eq!(file.tensor("x").unwrap().to_f32(), VALUES);
    std::fs::write(&path, vec![0xff; 4096]).unwrap();
    assert_eq!(file.tensor("x").unwrap().to_f32(), VALUES);
}
