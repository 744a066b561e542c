//! Live captions in simulated real time: `cargo bench --bench captions [-- MODEL...]`
//! (default tiny.en and base, 2 threads) on `data/captions/long.wav` (made by
//! `scripts/make_captions.py --minutes 3`).
//!
//! Windows arrive when their audio has been heard (a window ending at t is available at t).
//! Decoding takes its measured time; windows that arrive meanwhile wait in a queue of 4, the
//! oldest dropped beyond it, as the front end does. Reported: WER of the finals against the
//! offline transcript of the file, the latency of each final word (from its end in the audio
//! to the moment its final was emitted; a word's end is estimated inside its final piece by
//! characters), windows dropped, and CPU time per second of audio.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::VecDeque;
use std::time::Instant;

use common::captions::{make_recordings, offline_options, repeats_at_joins, word_errors};
use voxd::audio::read_wav;
use voxd::captions::{CaptionOptions, CaptionText, Captioner};
use voxd::frontend::{caption_windows, CaptionWindow, VadConfig, WindowConfig};

const QUEUE: usize = 4;

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Each word's estimated end (s) in a final piece: the piece's span shared by characters.
fn word_ends(piece: &CaptionText) -> Vec<f64> {
    let words: Vec<&str> = piece.text.split_whitespace().collect();
    let total: usize = words.iter().map(|w| w.len()).sum::<usize>().max(1);
    let span = (piece.end_ms - piece.start_ms) as f64 / 1000.0;
    let mut done = 0;
    words
        .iter()
        .map(|w| {
            done += w.len();
            piece.start_ms as f64 / 1000.0 + span * done as f64 / total as f64
        })
        .collect()
}

fn run(model: &str, samples: &[f32], windows: &[CaptionWindow]) {
    let transcriber = common::transcriber(model);
    let audio_seconds = samples.len() as f64 / 16_000.0;
    let offline = transcriber
        .transcribe(samples, &offline_options(), |_| {})
        .expect("offline transcription")
        .text();

    let mut captioner = Captioner::new(CaptionOptions {
        language: Some("en".into()),
        ..CaptionOptions::default()
    });
    let available = |w: &CaptionWindow| w.end() as f64 / 16_000.0;
    let (mut queue, mut next, mut now, mut dropped) = (VecDeque::new(), 0, 0.0f64, 0);
    let mut finals: Vec<(CaptionText, f64)> = Vec::new();
    let cpu_before = cpu_seconds();
    let mut busy = 0.0;
    loop {
        if queue.is_empty() && next < windows.len() {
            now = now.max(available(&windows[next]));
        }
        while next < windows.len() && available(&windows[next]) <= now {
            if queue.len() == QUEUE {
                queue.pop_front();
                dropped += 1;
            }
            queue.push_back(&windows[next]);
            next += 1;
        }
        let Some(window) = queue.pop_front() else {
            break;
        };
        let started = Instant::now();
        let update = captioner.window(transcriber, window).expect("decode");
        let took = started.elapsed().as_secs_f64();
        busy += took;
        now += took;
        finals.extend(update.finals.into_iter().map(|t| (t, now)));
    }
    finals.extend(captioner.finish().finals.into_iter().map(|t| (t, now)));
    let cpu = cpu_seconds() - cpu_before;

    let pieces: Vec<CaptionText> = finals.iter().map(|(t, _)| t.clone()).collect();
    let text: Vec<&str> = pieces.iter().map(|t| t.text.as_str()).collect();
    let (errors, words) = word_errors(&offline, &text.join(" "));
    let mut latency: Vec<f64> = finals
        .iter()
        .flat_map(|(t, at)| word_ends(t).into_iter().map(move |end| at - end))
        .collect();
    latency.sort_by(f64::total_cmp);
    println!(
        "| {model} | {:.0} s | {:.1} % ({errors}/{words}) | {} | {:.2} s | {:.2} s | {:.2} s | {}/{} | {:.0} % |",
        audio_seconds,
        100.0 * errors as f64 / words as f64,
        repeats_at_joins(&pieces).len(),
        percentile(&latency, 0.5),
        percentile(&latency, 0.95),
        busy / windows.len() as f64,
        dropped,
        windows.len(),
        100.0 * cpu / audio_seconds,
    );
}

fn main() {
    let models: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let models = if models.is_empty() {
        vec!["tiny.en".to_string(), "base".to_string()]
    } else {
        models
    };
    let path = make_recordings(Some(3)).join("long.wav");
    let samples = read_wav(&path).expect("read the recording");
    let windows = caption_windows(&samples, VadConfig::default(), &WindowConfig::default())
        .expect("front end");
    println!("{} ({} windows), 2 threads", path.display(), windows.len());
    println!("| model | audio | WER vs offline | repeats at joins | latency p50 | latency p95 | decode per window | windows dropped | CPU (% of a core) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for model in &models {
        run(model, &samples, &windows);
    }
}
