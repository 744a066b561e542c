//! Helpers shared by the integration tests: where the models and fixtures are, and the
//! text normalisation the reference transcripts were compared with.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use voxd::whisper::transcribe::Transcriber;

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A model installed by `scripts/setup.sh`; a missing model fails the test loudly.
pub fn model_dir(name: &str) -> PathBuf {
    let dir = repo().join("models").join(name);
    assert!(
        dir.join("model.bin").exists(),
        "model {name} is not installed in {}: run scripts/setup.sh",
        dir.display()
    );
    dir
}

/// One shared transcriber per model per test binary (loading takes a moment).
pub fn transcriber(name: &str) -> &'static Transcriber {
    static TINY: OnceLock<Transcriber> = OnceLock::new();
    static BASE: OnceLock<Transcriber> = OnceLock::new();
    let cell = match name {
        "tiny.en" => &TINY,
        "base" => &BASE,
        other => panic!("no such test model {other}"),
    };
    cell.get_or_init(|| Transcriber::load(&model_dir(name), 2).expect("model loads"))
}

/// The reference transcripts' normalisation: lower case, letters/digits/whitespace only,
/// whitespace runs collapsed.
pub fn normalize(text: &str) -> String {
    let kept: String = text
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn jfk() -> PathBuf {
    let p = repo().join("../shared/data/jfk.wav");
    assert!(p.exists(), "{} is missing", p.display());
    p
}
