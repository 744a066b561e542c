//! Live captions of a long recording (real speech and espeak-ng paragraphs with pauses, one
//! of them long, over a faint noise floor) against the offline transcription of the same
//! file: the finals must say the same words, once each.

mod common;

use common::captions::{make_recordings, offline_options, repeats_at_joins, word_errors};
use voxd::audio::read_wav;
use voxd::captions::{CaptionOptions, Captioner, SubtitleFormat, SubtitleWriter};
use voxd::frontend::{caption_windows, VadConfig, WindowConfig};

#[test]
fn finals_match_the_offline_transcript() {
    let path = make_recordings(None).join("test.wav");
    let samples = read_wav(&path).expect("read the recording");
    let transcriber = common::transcriber("tiny.en");
    let offline = transcriber
        .transcribe(&samples, &offline_options(), |_| {})
        .expect("offline transcription")
        .text();

    let windows = caption_windows(&samples, VadConfig::default(), &WindowConfig::default())
        .expect("front end");
    let mut captioner = Captioner::new(CaptionOptions {
        language: Some("en".into()),
        ..CaptionOptions::default()
    });
    let mut finals = Vec::new();
    let mut partials = 0;
    for window in &windows {
        let update = captioner.window(transcriber, window).expect("decode");
        partials += usize::from(update.partial.is_some());
        finals.extend(update.finals);
    }
    finals.extend(captioner.finish().finals);

    let text: Vec<&str> = finals.iter().map(|t| t.text.as_str()).collect();
    let text = text.join(" ");
    let (errors, words) = word_errors(&offline, &text);
    println!("offline:  {offline}\ncaptions: {text}");
    println!(
        "{} windows, {} finals, {partials} partial updates, WER {errors}/{words} = {:.2} %",
        windows.len(),
        finals.len(),
        100.0 * errors as f64 / words as f64
    );
    assert!(
        words > 100,
        "the offline transcript is too short: {offline}"
    );
    assert!(
        errors as f64 <= 0.02 * words as f64,
        "WER {errors}/{words} against the offline transcript"
    );
    assert_eq!(repeats_at_joins(&finals), Vec::<String>::new());
    for pair in finals.windows(2) {
        assert!(
            pair[0].start_ms <= pair[1].start_ms && pair[0].start_ms <= pair[0].end_ms,
            "finals out of order: {pair:?}"
        );
    }
    assert!(partials > 0, "no partial was ever shown");

    // The same finals as a subtitle file: one cue per sentence, at most.
    let mut vtt = SubtitleWriter::new(Vec::new(), SubtitleFormat::WebVtt).unwrap();
    for t in &finals {
        vtt.push(t).unwrap();
    }
    vtt.finish().unwrap();
    let vtt = String::from_utf8(vtt.into_inner()).unwrap();
    let cues = vtt.matches(" --> ").count();
    assert!(cues > 10 && cues <= finals.len(), "{vtt}");
}
