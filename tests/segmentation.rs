//! Segmentation through the WAV source: spoken commands, clean and in noise, at 16 kHz mono
//! and 48 kHz stereo, each come out as exactly one utterance covering the words.

mod common;

use common::segments::{check, collect, segmentation_set};
use voxd::capture::Pace;
use voxd::frontend::{listen, FrontEndConfig, Source};

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
    let (problems, min_lead, min_tail) = check(&set.commands, &utterances, 0);
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
