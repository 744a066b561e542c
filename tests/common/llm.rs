//! Helpers shared by the LLM tests: the SmolLM2 model and `scripts/reference/llm_reference.py` (llama.cpp's
//! own tools as the reference). A missing model or tool fails the test with the command that
//! installs it.

use std::path::PathBuf;
use std::process::Command;

use super::repo;

/// SmolLM2-135M-Instruct (Q4_1), installed by `scripts/setup.sh`.
pub fn smollm2() -> PathBuf {
    let path = repo().join("models/smollm2/model.gguf");
    assert!(
        path.exists(),
        "the SmolLM2 model is not installed at {}: run scripts/setup.sh",
        path.display()
    );
    path
}

/// Runs `scripts/reference/llm_reference.py ARGS` with the reference virtualenv and parses its JSON.
pub fn reference(args: &[&str]) -> serde_json::Value {
    let python = repo().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/setup.sh --reference",
        python.display()
    );
    let output = Command::new(&python)
        .arg(repo().join("scripts/reference/llm_reference.py"))
        .args(args)
        .current_dir(repo())
        .output()
        .expect("scripts/reference/llm_reference.py runs");
    assert!(
        output.status.success(),
        "scripts/reference/llm_reference.py {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "scripts/reference/llm_reference.py {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// A JSON list of token ids, as the reference script prints them.
pub fn ids(json: &serde_json::Value) -> Vec<u32> {
    json.as_array()
        .expect("a list of ids")
        .iter()
        .map(|id| id.as_u64().expect("an id") as u32)
        .collect()
}
