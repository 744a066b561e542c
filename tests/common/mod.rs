//! Helpers shared by the integration tests: where the models and fixtures are, and the
//! text normalisation the reference transcripts were compared with.
#![allow(dead_code)] // each test binary uses a different subset

pub mod captions;
pub mod llm;
pub mod segments;
pub mod speech;
pub mod vmic;
pub mod wyoming;

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

/// The lines `out` (a child's output) delivers, read on a thread of their own so that a
/// test can wait for the next one with a deadline.
pub fn line_reader(out: impl std::io::Read + Send + 'static) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The repository's example grammars, `grammars/*.toml` in name order.
pub fn example_grammars() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("grammars"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

pub fn jfk() -> PathBuf {
    let p = repo().join("../shared/data/jfk.wav");
    assert!(p.exists(), "{} is missing", p.display());
    p
}

/// A float32 `.npy` array written by the reference scripts: (shape, values).
pub fn read_npy_f32(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run scripts/reference/reference.py numeric",
            path.display()
        )
    });
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{} is not .npy", path.display());
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    assert!(
        header.contains("'descr': '<f4'"),
        "float32 expected: {header}"
    );
    assert!(
        header.contains("'fortran_order': False"),
        "C order expected: {header}"
    );
    let shape_text = header
        .split("'shape': (")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap();
    let shape: Vec<usize> = shape_text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.trim().parse().unwrap())
        .collect();
    let data: Vec<f32> = bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    assert_eq!(
        data.len(),
        shape.iter().product::<usize>(),
        "{}",
        path.display()
    );
    (shape, data)
}

pub fn reference_dir(model: &str) -> PathBuf {
    repo().join("data/reference").join(model)
}

/// `voxd run` with `config` on `wav` read as fast as it goes, started in `dir`: its events,
/// and its standard output as it was (for messages). A failed run fails the test.
pub fn run_fast(config: &Path, wav: &Path, dir: &Path) -> (Vec<serde_json::Value>, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_voxd"))
        .arg("run")
        .arg("--config")
        .arg(config)
        .arg("--wav")
        .arg(wav)
        .args(["--stdout", "json", "--log", "warn", "--no-watch"])
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("voxd runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "voxd run failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    let events = stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (events, stdout)
}

/// A folder for a `voxd run` test: `scratch/` for espeak-ng's files, the grammar as
/// `grammar.toml`, and `config.toml`: tiny.en on 2 threads, that grammar plus the
/// `[commands]` lines in `commands`, notifications off plus the `[actions]` lines in
/// `actions`.
pub struct RunDir {
    pub dir: tempfile::TempDir,
    pub scratch: PathBuf,
    pub config: PathBuf,
}

pub fn run_dir(grammar: &str, commands: &str, actions: &str) -> RunDir {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("scratch");
    std::fs::create_dir(&scratch).unwrap();
    std::fs::write(dir.path().join("grammar.toml"), grammar).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[model]\npath = {:?}\nthreads = 2\n\n[commands]\ngrammars = [\"grammar.toml\"]\n\
             {commands}\n\n[actions]\nnotifications = false\n{actions}\n",
            model_dir("tiny.en").display().to_string()
        ),
    )
    .unwrap();
    RunDir {
        dir,
        scratch,
        config,
    }
}
