//! Segmentation through the WAV source: spoken commands, clean and in noise, at 16 kHz mono
//! and 48 kHz stereo, each come out as exactly one utterance covering the words.

use voxd::capture::Pace;
use voxd::frontend::{listen, FrontEndConfig, Source};

use crate::common::segments::{check, collect, commands_of, segmentation_set};

fn segment_file(name: &str, layout: &str) {
    let set = segmentation_set();
    let path = set.file(name, layout);
    let listening = listen(
        Source::Wav {
            path: path.clone(),
            pace: Pace::Fast,
        },
        FrontEndConfig::default(),
    )
    .expect("listen");
    let (utterances, stats) = collect(&listening);
    let (problems, min_lead, min_tail) =
        check(&set.commands, &utterances, &vec![0; set.commands.len()]);
    println!(
        "{name} {layout}: {} utterances for {} commands, smallest lead {min_lead} ms, \
         smallest tail {min_tail} ms, {:.1}% of frames voiced",
        utterances.len(),
        set.commands.len(),
        100.0 * stats.voiced_frames as f64 / stats.frames as f64
    );
    assert!(
        problems.is_empty(),
        "{}:\n{}",
        path.display(),
        problems.join("\n")
    );
    assert_eq!(stats.ring.dropped, 0);
    assert_eq!(stats.ring.offered, stats.ring.processed);
}

#[test]
fn clean_16k() {
    segment_file("clean", "16k");
}

#[test]
fn clean_48k_stereo() {
    segment_file("clean", "48k_stereo");
}

#[test]
fn pink_noise_20db() {
    segment_file("pink20", "16k");
    segment_file("pink20", "48k_stereo");
}

#[test]
fn pink_noise_10db() {
    segment_file("pink10", "16k");
    segment_file("pink10", "48k_stereo");
}

#[test]
fn pink_noise_6db() {
    segment_file("pink6", "16k");
    segment_file("pink6", "48k_stereo");
}

#[test]
fn mixed_noise_10db() {
    segment_file("mixed10", "16k");
    segment_file("mixed10", "48k_stereo");
}

/// The resident set size of this process, kB.
fn rss_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// Ten minutes of 48 kHz stereo fed as fast as the front end takes it: every source frame is
/// accounted for (offered = processed + dropped, nothing dropped), the 16 kHz clock matches
/// the file's length, and all 184 commands come out as one utterance each.
#[test]
fn ten_minutes_as_fast_as_possible_lose_nothing() {
    let set = segmentation_set();
    let long = &set.manifest["files"]["long"];
    let path = set.file("long", "48k_stereo");
    let frames = hound::WavReader::open(&path).unwrap().duration() as u64;
    let rss_before = rss_kb();
    let listening = listen(
        Source::Wav {
            path: path.clone(),
            pace: Pace::Fast,
        },
        FrontEndConfig::default(),
    )
    .expect("listen");
    let (utterances, stats) = collect(&listening);
    drop(listening);
    let rss_after = rss_kb();
    println!(
        "long run: {frames} frames offered {} processed {} dropped {}; {} samples at 16 kHz; \
         {} utterances; RSS {rss_before} -> {rss_after} kB",
        stats.ring.offered,
        stats.ring.processed,
        stats.ring.dropped,
        stats.samples,
        utterances.len()
    );
    assert!(frames >= 48_000 * 600, "the file is at least 10 minutes");
    assert_eq!(stats.ring.offered, frames);
    assert_eq!(stats.ring.dropped, 0);
    assert_eq!(
        stats.ring.offered,
        stats.ring.processed + stats.ring.dropped
    );
    // Every 16 kHz sample but the last partial frame went through the VAD.
    let expected = (frames + 1) / 3;
    assert!(
        expected - stats.samples < 480,
        "{} of {expected}",
        stats.samples
    );
    let commands = commands_of(&long["commands"]);
    let (problems, _, _) = check(&commands, &utterances, &vec![0; commands.len()]);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
