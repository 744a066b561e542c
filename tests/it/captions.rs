//! Live captions from `voxd run --mode captions` on several minutes of real speech (jfk.wav,
//! twice) and paragraphs spoken by four flite voices, with pauses (one of them long) over a
//! faint noise floor, with `[captions] latency = "balanced"` (the settle policy): the
//! finals must agree with the offline transcription of the same file,
//! be as right as it against the text that was spoken, say each phrase once, in order, and
//! the subtitle file must hold them.
//!
//! The agreement bound is 3 % WER, a little above the 2 % the README reports for this
//! recording (tiny.en 1.8 %): the test stands for the streaming's guarantees (no phrase
//! repeated or lost at a join, the same context as the offline decoder), while a decoder's
//! guess at an unclear word may still go either way when any of the code changes.

use std::process::Command;

use serde_json::Value;
use voxd::audio::read_wav;
use voxd::captions::CaptionText;

use crate::common;
use crate::common::captions::{
    align_words, english_word_errors as word_errors, english_words, make_recordings,
    offline_options, repeats_at_joins,
};

#[test]
fn finals_match_the_offline_transcript() {
    let path = make_recordings(Some(3)).join("long.wav");
    let samples = read_wav(&path).expect("read the recording");
    let offline = common::transcriber("tiny.en")
        .transcribe(&samples, &offline_options(), |_| {})
        .expect("offline transcription")
        .text();

    let dir = tempfile::tempdir().unwrap();
    let vtt = dir.path().join("captions.vtt");
    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .arg("run")
        .arg("--config")
        .arg(balanced_config(dir.path()))
        .args(["--mode", "captions", "--stdout", "json"])
        .args(["--threads", "2", "--log", "warn", "--no-watch"])
        .arg("--model")
        .arg(common::model_dir("tiny.en"))
        .arg("--wav")
        .arg(&path)
        .arg("--subtitles")
        .arg(&vtt)
        .output()
        .expect("run voxd");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "voxd run failed: {stderr}");
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let of = |kind: &'static str| events.iter().filter(move |e| e["event"] == kind);
    let finals: Vec<CaptionText> = of("final")
        .map(|e| CaptionText {
            text: e["text"].as_str().unwrap().to_string(),
            start_ms: e["start_ms"].as_u64().unwrap(),
            end_ms: e["end_ms"].as_u64().unwrap(),
            words: Vec::new(),
        })
        .collect();
    let partials = of("partial").count();
    assert_eq!(events.last().unwrap()["event"], "stopped", "{stderr}");

    let text: Vec<&str> = finals.iter().map(|t| t.text.as_str()).collect();
    let text = text.join(" ");
    let spoken = spoken_text();
    let (offline_errors, words) = word_errors(&spoken, &offline);
    let (caption_errors, _) = word_errors(&spoken, &text);
    let (differences, _) = word_errors(&offline, &text);
    let percent = |n: usize| 100.0 * n as f64 / words as f64;
    println!("spoken:   {spoken}\noffline:  {offline}\ncaptions: {text}");
    println!(
        "{} finals, {partials} partial updates; WER against the spoken text: offline {:.1} %, \
         captions {:.1} %; captions against offline {:.1} %",
        finals.len(),
        percent(offline_errors),
        percent(caption_errors),
        percent(differences)
    );
    assert!(words > 450, "the spoken text is too short: {spoken}");
    assert!(
        differences * 100 <= words * 3,
        "captions against offline: {differences} word errors in {words}"
    );
    assert!(
        caption_errors <= offline_errors + words / 50,
        "captions WER {caption_errors}/{words} against the spoken text, offline {offline_errors}"
    );
    assert_eq!(repeats_at_joins(&finals), Vec::<String>::new());
    for pair in finals.windows(2) {
        assert!(
            pair[0].end_ms <= pair[1].start_ms && pair[0].start_ms <= pair[0].end_ms,
            "finals out of order or overlapping: {pair:?}"
        );
    }
    assert!(partials > 0, "no partial was ever shown");

    // The same finals as subtitles, cue by cue.
    let vtt = std::fs::read_to_string(&vtt).unwrap();
    assert!(vtt.starts_with("WEBVTT"), "{vtt}");
    let cues = vtt.matches(" --> ").count();
    assert!(cues > 5 && cues <= finals.len(), "{vtt}");
    assert_eq!(word_errors(&text, &vtt_text(&vtt)).0, 0, "{vtt}");
}

/// The caption line is the finals so far, then the partial: a partial never shows again
/// the end of the text already final (it goes on after it).
fn assert_partials_go_on_after_the_finals(events: &[Value]) {
    let mut last_final: Option<CaptionText> = None;
    for e in events {
        let text = CaptionText {
            text: e["text"].as_str().unwrap_or_default().to_string(),
            ..CaptionText::default()
        };
        if e["event"] == "final" {
            last_final = Some(text);
        } else if let (Some(before), "partial") = (&last_final, e["event"].as_str().unwrap()) {
            let pair = [before.clone(), text];
            assert_eq!(
                repeats_at_joins(&pair),
                Vec::<String>::new(),
                "a partial repeats a final"
            );
        }
    }
}

/// A config file in `dir` that asks for `[captions] latency = "balanced"`.
fn balanced_config(dir: &std::path::Path) -> std::path::PathBuf {
    let config = dir.join("config.toml");
    std::fs::write(&config, "[captions]\nlatency = \"balanced\"\n").unwrap();
    config
}

/// The cue text of a WebVTT file.
fn vtt_text(vtt: &str) -> String {
    vtt.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty() && !l.contains(" --> "))
        .collect::<Vec<_>>()
        .join(" ")
}

/// What was said in the recording, from its manifest.
fn spoken_text() -> String {
    let manifest = common::repo().join("data/captions/manifest.json");
    let manifest: Value = serde_json::from_slice(&std::fs::read(manifest).unwrap()).unwrap();
    let pieces = manifest["files"]["long"]["pieces"].as_array().unwrap();
    let texts: Vec<&str> = pieces.iter().map(|p| p["text"].as_str().unwrap()).collect();
    texts.join(" ")
}

/// The real recording (one reader, 32 sentences 0.3 s apart) read as fast as it goes with
/// `latency = "balanced"`: the finals must be as right as the offline transcription (within one
/// point of WER against the spoken text), never decided before their audio was heard,
/// in order, and consistent with what was shown final before (each final continues the
/// finals, none says a phrase of the previous one again, and no partial shows the end of
/// the finals again). The final-latency median (in
/// audio time: `heard_ms` minus each final's end) is printed; the 2 s aim is met only by
/// `latency = "low"`, the default (the test below).
#[test]
fn finals_on_the_real_recording_are_as_right_as_offline_and_consistent() {
    let path = common::repo().join("../shared/data/real/continuous/ljspeech_lj001.wav");
    let tsv = common::repo().join("../shared/data/real/continuous.tsv");
    let spoken: Vec<String> = std::fs::read_to_string(&tsv)
        .expect("read continuous.tsv")
        .lines()
        .skip(1)
        .filter_map(|l| l.split('\t').nth(2).map(str::to_string))
        .collect();
    let spoken = spoken.join(" ");
    let samples = read_wav(&path).expect("read the recording");
    let offline = common::transcriber("tiny.en")
        .transcribe(&samples, &offline_options(), |_| {})
        .expect("offline transcription")
        .text();
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .arg("run")
        .arg("--config")
        .arg(balanced_config(dir.path()))
        .args(["--mode", "captions"])
        .args([
            "--stdout",
            "json",
            "--threads",
            "2",
            "--log",
            "warn",
            "--no-watch",
        ])
        .arg("--model")
        .arg(common::model_dir("tiny.en"))
        .arg("--wav")
        .arg(&path)
        .output()
        .expect("run voxd");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "voxd run failed: {stderr}");
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let finals: Vec<(CaptionText, u64)> = events
        .iter()
        .filter(|e| e["event"] == "final")
        .map(|e| {
            let text = CaptionText {
                text: e["text"].as_str().unwrap().to_string(),
                start_ms: e["start_ms"].as_u64().unwrap(),
                end_ms: e["end_ms"].as_u64().unwrap(),
                words: Vec::new(),
            };
            (text, e["heard_ms"].as_u64().unwrap())
        })
        .collect();
    assert!(finals.len() > 5, "{stderr}");
    let mut delays: Vec<u64> = Vec::new();
    for (text, heard_ms) in &finals {
        assert!(
            *heard_ms >= text.end_ms,
            "final decided at {heard_ms} ms, before its audio ended: {text:?}"
        );
        delays.push(heard_ms - text.end_ms);
    }
    delays.sort_unstable();
    let texts: Vec<CaptionText> = finals.iter().map(|(t, _)| t.clone()).collect();
    assert_eq!(repeats_at_joins(&texts), Vec::<String>::new());
    for pair in texts.windows(2) {
        assert!(
            pair[0].end_ms <= pair[1].start_ms,
            "a final goes back over the one before: {pair:?}"
        );
    }
    assert_partials_go_on_after_the_finals(&events);
    let text: Vec<&str> = texts.iter().map(|t| t.text.as_str()).collect();
    let text = text.join(" ");
    let (offline_errors, words) = word_errors(&spoken, &offline);
    let (caption_errors, _) = word_errors(&spoken, &text);
    println!(
        "{} finals; WER against the spoken text: offline {:.1} %, captions {:.1} %; final \
         after its end (audio time): p50 {} ms",
        texts.len(),
        100.0 * offline_errors as f64 / words as f64,
        100.0 * caption_errors as f64 / words as f64,
        delays[delays.len() / 2]
    );
    assert!(words > 500, "the spoken text is too short");
    assert!(
        caption_errors * 100 <= offline_errors * 100 + words,
        "captions WER {caption_errors}/{words} against the spoken text, offline {offline_errors}"
    );
}

/// `[captions] latency = "low"` (the default) on the real recording, read as fast as it
/// goes: its finals stay within a few points of the offline transcription's WER against
/// the spoken text (both through the captions' WER normaliser; with the beam, fast and
/// real-time runs measured 0.8 points above offline, greedy steps 1.3-3.9; a change
/// anywhere in the decoder moves single words either way, so the bound is offline + 3
/// points, which a stretch decoded wrong or lost exceeds; the README has the measured
/// figures), say no phrase twice at a join, and come soon after the words were
/// spoken: the median, over the spoken words, of the audio heard when the final holding a
/// word was decided (`heard_ms`) minus the word's end (its sentence's span in
/// `continuous.tsv`, shared among the words by characters) is at most 2 s. Audio time, not
/// the wall clock.
#[test]
fn low_latency_finals_on_the_real_recording_come_within_2_s_of_the_words() {
    let path = common::repo().join("../shared/data/real/continuous/ljspeech_lj001.wav");
    let tsv = common::repo().join("../shared/data/real/continuous.tsv");
    let rows: Vec<(f64, f64, String)> = std::fs::read_to_string(&tsv)
        .expect("read continuous.tsv")
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split('\t');
            let start = f.next()?.parse().ok()?;
            let end = f.next()?.parse().ok()?;
            Some((start, end, f.next()?.to_string()))
        })
        .collect();
    // Each spoken word with the time (ms) its sentence's span reaches its end.
    let mut spoken: Vec<(String, f64)> = Vec::new();
    for (start, end, text) in &rows {
        let words: Vec<String> = common::normalize(text)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let total = words.iter().map(String::len).sum::<usize>().max(1) as f64;
        let mut done = 0;
        for w in words {
            done += w.len();
            spoken.push((w, 1000.0 * (start + (end - start) * done as f64 / total)));
        }
    }
    let samples = read_wav(&path).expect("read the recording");
    let offline = common::transcriber("tiny.en")
        .transcribe(&samples, &offline_options(), |_| {})
        .expect("offline transcription")
        .text();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "[captions]\nlatency = \"low\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_voxd"))
        .arg("run")
        .arg("--config")
        .arg(&config)
        .args(["--mode", "captions", "--stdout", "json", "--threads", "2"])
        .args(["--log", "warn", "--no-watch"])
        .arg("--model")
        .arg(common::model_dir("tiny.en"))
        .arg("--wav")
        .arg(&path)
        .output()
        .expect("run voxd");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "voxd run failed: {stderr}");
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let finals: Vec<(CaptionText, u64)> = events
        .iter()
        .filter(|e| e["event"] == "final")
        .map(|e| {
            let text = CaptionText {
                text: e["text"].as_str().unwrap().to_string(),
                start_ms: e["start_ms"].as_u64().unwrap(),
                end_ms: e["end_ms"].as_u64().unwrap(),
                words: Vec::new(),
            };
            (text, e["heard_ms"].as_u64().unwrap())
        })
        .collect();
    assert!(finals.len() > 5, "{stderr}");
    let texts: Vec<CaptionText> = finals.iter().map(|(t, _)| t.clone()).collect();
    assert_eq!(repeats_at_joins(&texts), Vec::<String>::new());
    assert_partials_go_on_after_the_finals(&events);

    // Each final word with the audio heard when it was decided.
    let mut final_words: Vec<String> = Vec::new();
    let mut decided_at: Vec<u64> = Vec::new();
    for (text, heard_ms) in &finals {
        for w in common::normalize(&text.text).split_whitespace() {
            final_words.push(w.to_string());
            decided_at.push(*heard_ms);
        }
    }
    let spoken_words: Vec<String> = spoken.iter().map(|(w, _)| w.clone()).collect();
    let mut delays: Vec<f64> = align_words(&spoken_words, &final_words)
        .iter()
        .zip(&spoken)
        .filter_map(|(j, (_, end))| j.map(|j| decided_at[j] as f64 - end))
        .collect();
    delays.sort_by(f64::total_cmp);
    let median = delays[delays.len() / 2];

    let spoken_text: Vec<&str> = rows.iter().map(|(_, _, t)| t.as_str()).collect();
    let spoken_text = spoken_text.join(" ");
    let text: Vec<&str> = texts.iter().map(|t| t.text.as_str()).collect();
    let (offline_errors, words) = word_errors(&spoken_text, &offline);
    let (caption_errors, _) = word_errors(&spoken_text, &text.join(" "));
    println!(
        "{} finals; WER against the spoken text: offline {:.1} %, captions {:.1} %; a word \
         final after its end (audio time): median {median:.0} ms over {} words",
        texts.len(),
        100.0 * offline_errors as f64 / words as f64,
        100.0 * caption_errors as f64 / words as f64,
        delays.len()
    );
    assert!(
        words > 500 && delays.len() * 10 > words * 9,
        "too few words aligned"
    );
    assert!(
        caption_errors * 100 <= offline_errors * 100 + 3 * words,
        "captions WER {caption_errors}/{words} against the spoken text, offline {offline_errors}"
    );
    assert!(
        median <= 2000.0,
        "a word is final {median:.0} ms after its end (median)"
    );
}

/// The WER normaliser of these tests is the benchmark's (`scripts/bench/bench_captions.py`):
/// both give the same words for the spoken texts of both recordings, and for numbers,
/// spellings and compounds written either way.
#[test]
fn the_wer_normaliser_is_the_benchmarks() {
    let tsv = common::repo().join("../shared/data/real/continuous.tsv");
    let lj = std::fs::read_to_string(&tsv).expect("read continuous.tsv");
    let samples = [
        lj.as_str(),
        &spoken_text(),
        "In fourteen sixty-two, the 1,462nd; the fifteenth century; one hundred and five; \
         two thousand twenty-first; ninety nine; lower-case, lowercase; cancelled \
         neighbours' harbour, realised; uh, the i.e. etc. It's 5 o'clock.",
    ];
    let script = common::repo().join("scripts/bench");
    for text in samples {
        let out = Command::new("python3")
            .current_dir(&script)
            .args(["-c", "import sys, bench_captions; print(' '.join(bench_captions.words(sys.stdin.read())))"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().unwrap().write_all(text.as_bytes())?;
                child.wait_with_output()
            })
            .expect("run python3");
        assert!(out.status.success());
        let python = String::from_utf8_lossy(&out.stdout);
        assert_eq!(english_words(text).join(" "), python.trim());
    }
    assert_eq!(
        english_words("in fourteen sixty-two, the 15th century").join(" "),
        "in 1462 the 15th century"
    );
    assert_eq!(
        word_errors("The lower-case letters", "the lowercase letters."),
        (0, 3)
    );
    assert_eq!(word_errors("cancelled at nine", "canceled at 9"), (0, 3));
}
