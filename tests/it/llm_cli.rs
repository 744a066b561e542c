//! `voxd ask` on the real SmolLM2 file, and its errors for bad input: a truncated GGUF, a
//! missing file, a prompt longer than the context.

use std::process::{Command, Output};

use crate::common::llm as llm_common;

fn ask(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_voxd"))
        .arg("ask")
        .args(args)
        .output()
        .expect("voxd runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn ask_answers_within_its_token_limit() {
    let model = llm_common::smollm2();
    let out = ask(&[
        "--model",
        model.to_str().unwrap(),
        "--temperature",
        "0",
        "--max-tokens",
        "12",
        "--json",
        "Name three colours.",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tokens = reply["tokens"].as_array().unwrap().len();
    assert!((1..=12).contains(&tokens), "{reply}");
    assert!(
        !reply["text"].as_str().unwrap().trim().is_empty(),
        "{reply}"
    );
    let stop = reply["stop"].as_str().unwrap();
    assert!(["eos", "max_tokens"].contains(&stop), "{reply}");
    assert!(reply["prompt_tok_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn a_truncated_model_is_a_clear_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(llm_common::smollm2()).unwrap();
    for keep in [10, 4096, bytes.len() / 2] {
        let path = dir.path().join(format!("cut{keep}.gguf"));
        std::fs::write(&path, &bytes[..keep]).unwrap();
        let out = ask(&["--model", path.to_str().unwrap(), "Hello?"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(path.to_str().unwrap()), "{err}");
        assert!(!err.contains("panicked"), "{err}");
        println!("{keep} bytes: {}", err.trim());
    }
}

#[test]
fn a_missing_model_names_the_file() {
    let out = ask(&["--model", "/nonexistent/model.gguf", "Hello?"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("/nonexistent/model.gguf"), "{err}");
}

#[test]
fn a_prompt_longer_than_the_context_is_refused_with_both_lengths() {
    let model = llm_common::smollm2();
    let question = "Tell me everything about the history of the world. ".repeat(10);
    let out = ask(&[
        "--model",
        model.to_str().unwrap(),
        "--context",
        "64",
        "--max-tokens",
        "8",
        &question,
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("tokens; the context holds 64"), "{err}");
}

#[test]
fn a_bad_time_limit_is_refused_before_the_model_is_read() {
    // Each panicked in `Duration::from_secs_f64` once a model was loaded; the flag is now
    // checked as the config's `[llm] max_seconds` is, by the same function.
    for value in ["-1", "0", "nan", "inf", "-inf", "1e30", "soon"] {
        let flag = format!("--max-seconds={value}");
        let out = ask(&["--model", "/nonexistent/model.gguf", &flag, "Hello?"]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{value}: {err}");
        assert!(err.contains("--max-seconds"), "{value}: {err}");
        assert!(!err.contains("panicked"), "{value}: {err}");
    }
}
