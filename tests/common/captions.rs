//! The live-captions recording (`scripts/data/make_captions.py`) and how captions are scored
//! against the offline transcript.

use std::path::PathBuf;
use std::process::Command;

use voxd::captions::CaptionText;
use voxd::whisper::transcribe::TranscribeOptions;

/// Makes the recordings with the project's script: `test.wav`, and with `minutes`
/// `long.wav` of at least that many minutes. Returns the folder.
pub fn make_recordings(minutes: Option<u32>) -> PathBuf {
    let dir = super::repo().join("data/captions");
    let mut command = Command::new("python3");
    command.arg(super::repo().join("scripts/data/make_captions.py"));
    if let Some(minutes) = minutes {
        command.args(["--minutes", &minutes.to_string()]);
    }
    let status = command.status().expect("run scripts/data/make_captions.py");
    assert!(status.success(), "scripts/data/make_captions.py failed");
    dir
}

/// The offline transcription the captions are compared with: the whole file with the
/// reference's defaults (as `voxd transcribe`), in English.
pub fn offline_options() -> TranscribeOptions {
    TranscribeOptions {
        language: Some("en".into()),
        ..TranscribeOptions::default()
    }
}

/// Word errors (substitutions, insertions, deletions) of `hypothesis` against `reference`,
/// after the reference transcripts' normalisation, and the reference's word count.
pub fn word_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let reference = super::normalize(reference);
    let hypothesis = super::normalize(hypothesis);
    let r: Vec<&str> = reference.split_whitespace().collect();
    let h: Vec<&str> = hypothesis.split_whitespace().collect();
    let mut row: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, hw) in h.iter().enumerate() {
            let substitution = diagonal + usize::from(rw != hw);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    (row[h.len()], r.len())
}

/// Joins between consecutive finals where the words before the join are said again right
/// after it (two words or more: a single repeated word can be speech).
pub fn repeats_at_joins(finals: &[CaptionText]) -> Vec<String> {
    let words = |t: &CaptionText| -> Vec<String> {
        super::normalize(&t.text)
            .split_whitespace()
            .map(str::to_string)
            .collect()
    };
    finals
        .windows(2)
        .filter_map(|pair| {
            let (before, after) = (words(&pair[0]), words(&pair[1]));
            (2..=before.len().min(after.len()))
                .any(|k| before[before.len() - k..] == after[..k])
                .then(|| format!("{:?} | {:?}", pair[0].text, pair[1].text))
        })
        .collect()
}

/// For each word of `reference`, the word of `hypothesis` an edit-distance alignment pairs
/// it with (the same word or a substitute); `None` for a word the hypothesis leaves out.
pub fn align_words(reference: &[String], hypothesis: &[String]) -> Vec<Option<usize>> {
    let (n, m) = (reference.len(), hypothesis.len());
    let mut cost = vec![vec![0usize; m + 1]; n + 1];
    for (i, row) in cost.iter_mut().enumerate() {
        row[0] = i;
    }
    cost[0] = (0..=m).collect();
    for i in 1..=n {
        for j in 1..=m {
            let substitution =
                cost[i - 1][j - 1] + usize::from(reference[i - 1] != hypothesis[j - 1]);
            cost[i][j] = substitution.min(cost[i - 1][j] + 1).min(cost[i][j - 1] + 1);
        }
    }
    let mut aligned = vec![None; n];
    let (mut i, mut j) = (n, m);
    while i > 0 && j > 0 {
        let substitution = cost[i - 1][j - 1] + usize::from(reference[i - 1] != hypothesis[j - 1]);
        if cost[i][j] == substitution {
            aligned[i - 1] = Some(j - 1);
            (i, j) = (i - 1, j - 1);
        } else if cost[i][j] == cost[i - 1][j] + 1 {
            i -= 1;
        } else {
            j -= 1;
        }
    }
    aligned
}
