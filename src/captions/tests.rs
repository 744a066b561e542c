//! The captioner driven by a scripted transcriber: the audio's samples hold their own clock
//! positions, so the script knows which part of the stream it is asked to transcribe and
//! answers with the words spoken there, as Whisper would (times relative to the buffer, a
//! word cut by the buffer's end left out).

use std::cell::Cell;

use super::*;
use crate::frontend::{WindowConfig, Windower};

const S: u64 = 16_000;

/// A spoken word on the stream's clock, in samples.
#[derive(Clone)]
struct Spoken {
    text: &'static str,
    start: u64,
    end: u64,
}

/// Sentences spoken one after another: each word 0.4 s with 0.1 s between words, `pause`
/// seconds between sentences, starting at 1 s.
fn speech(sentences: &[&'static str], pause: f32) -> Vec<Spoken> {
    let mut at = S;
    let mut out = Vec::new();
    for sentence in sentences {
        for text in sentence.split(' ') {
            out.push(Spoken {
                text,
                start: at,
                end: at + 4 * S / 10,
            });
            at += S / 2;
        }
        at += (pause * S as f32) as u64;
    }
    out
}

/// The windows the front end makes of `seconds` of audio in which `spoken` is voiced.
fn windows(spoken: &[Spoken], seconds: u64) -> Vec<CaptionWindow> {
    let mut windower = Windower::new(&WindowConfig::default()).unwrap();
    let mut out = Vec::new();
    let frame_len = 480;
    for frame in 0..seconds * S / frame_len {
        let at = frame * frame_len;
        let samples: Vec<f32> = (at..at + frame_len).map(|i| i as f32).collect();
        let voiced = spoken
            .iter()
            .any(|w| w.start < at + frame_len && at < w.end);
        windower.push(&samples, voiced, &mut |w| out.push(w));
    }
    windower.finish(&mut |w| out.push(w));
    out
}

fn segment(text: String, start: f32, end: f32) -> Segment {
    Segment {
        start,
        end,
        text,
        tokens: Vec::new(),
        avg_logprob: -0.2,
        no_speech_prob: 0.01,
        temperature: 0.0,
        compression_ratio: 1.2,
    }
}

/// The transcript of `audio` (clock-valued samples): one segment per sentence, words wholly
/// inside the audio only.
fn scripted(spoken: &[Spoken], audio: &[f32]) -> Transcript {
    let (start, end) = (audio[0] as u64, audio[0] as u64 + audio.len() as u64);
    let mut segments = Vec::new();
    let mut current: Vec<&Spoken> = Vec::new();
    let close = |words: &mut Vec<&Spoken>, segments: &mut Vec<Segment>| {
        if let (Some(first), Some(last)) = (words.first(), words.last()) {
            let text: String = words.iter().map(|w| format!(" {}", w.text)).collect();
            segments.push(segment(
                text,
                (first.start - start) as f32 / S as f32,
                (last.end - start) as f32 / S as f32,
            ));
        }
        words.clear();
    };
    for word in spoken.iter().filter(|w| w.start >= start && w.end <= end) {
        current.push(word);
        if ends_sentence(word.text) {
            close(&mut current, &mut segments);
        }
    }
    close(&mut current, &mut segments);
    Transcript {
        language: "en".into(),
        segments,
    }
}

/// Runs the stream through a captioner; returns the final words and the longest buffer.
fn caption(spoken: &[Spoken], seconds: u64) -> (Vec<String>, usize) {
    let mut captioner = Captioner::new(CaptionOptions::default());
    let mut finals = Vec::new();
    let mut longest = 0;
    for window in windows(spoken, seconds) {
        let update = captioner
            .window_with(&window, |audio, _| Ok(scripted(spoken, audio)))
            .unwrap();
        longest = longest.max(captioner.audio.len());
        finals.extend(update.finals);
    }
    finals.extend(captioner.finish().finals);
    let words = finals
        .iter()
        .flat_map(|t| t.text.split(' ').map(str::to_string))
        .collect();
    (words, longest)
}

fn texts(spoken: &[Spoken]) -> Vec<String> {
    spoken.iter().map(|w| w.text.to_string()).collect()
}

#[test]
fn finals_are_the_speech_once_across_window_joins() {
    // Sentences longer than a window, and short pauses: words straddle every window edge.
    let spoken = speech(
        &[
            "one two three four five six seven eight nine ten eleven twelve thirteen fourteen \
             fifteen sixteen seventeen eighteen nineteen twenty twenty-one twenty-two.",
            "the cat sat on the mat.",
            "and the dog sat on the log.",
            "then both of them went to sleep.",
        ],
        0.3,
    );
    let (finals, _) = caption(&spoken, 30);
    assert_eq!(finals, texts(&spoken));
}

#[test]
fn speech_after_a_pause_is_final_without_a_second_hypothesis() {
    let spoken = speech(&["hello there.", "how are you."], 3.0);
    let mut captioner = Captioner::new(CaptionOptions::default());
    let mut final_at = Vec::new();
    for window in windows(&spoken, 10) {
        let update = captioner
            .window_with(&window, |audio, _| Ok(scripted(&spoken, audio)))
            .unwrap();
        for t in update.finals {
            final_at.push((t.text, window.end() / 16));
        }
    }
    // "there." ends at 1.9 s; the window at 3 s hears it followed by silence.
    assert_eq!(final_at[0], ("hello there.".to_string(), 3000));
    assert_eq!(final_at[1].0, "how are you.");
}

#[test]
fn trimming_bounds_the_buffer() {
    let sentence = "we talk for a long time and then stop.";
    let spoken = speech(&[sentence; 60], 0.2);
    let seconds = spoken.last().unwrap().end / S + 3;
    let (finals, longest) = caption(&spoken, seconds);
    assert_eq!(finals, texts(&spoken));
    // A sentence lasts 4.5 s; the buffer holds at most about two of them and a step.
    assert!(
        longest < 12 * S as usize,
        "buffer grew to {longest} samples"
    );
}

#[test]
fn a_run_on_sentence_is_cut_at_the_buffer_limit() {
    let words: Vec<String> = (0..80).map(|i| format!("w{i}")).collect();
    let run_on: &'static str = Box::leak(words.join(" ").into_boxed_str());
    let spoken = speech(&[run_on], 0.0);
    let (finals, longest) = caption(&spoken, 45);
    assert_eq!(finals, words);
    assert!(longest <= 20 * S as usize + S as usize);
}

#[test]
fn silence_produces_nothing_and_is_not_decoded() {
    let decoded = Cell::new(0);
    let mut captioner = Captioner::new(CaptionOptions::default());
    for window in windows(&[], 30) {
        let update = captioner
            .window_with(&window, |_, _| {
                decoded.set(decoded.get() + 1);
                Ok(Transcript {
                    language: "en".into(),
                    segments: vec![segment(" Thank you.".into(), 0.0, 2.0)],
                })
            })
            .unwrap();
        assert_eq!(update, CaptionUpdate::default());
        assert!(captioner.audio.len() as u64 <= PREROLL_SAMPLES + S);
    }
    assert_eq!(decoded.get(), 0);
    assert_eq!(captioner.finish(), CaptionUpdate::default());
}

#[test]
fn text_invented_over_the_silence_around_speech_is_dropped() {
    // Speech at 1-2.4 s; Whisper also "hears" a stock phrase in the silence after it, and a
    // whole made-up sentence with a high no-speech probability.
    let spoken = speech(&["yes we can."], 0.0);
    let mut captioner = Captioner::new(CaptionOptions::default());
    let mut finals = Vec::new();
    for window in windows(&spoken, 8) {
        let update = captioner
            .window_with(&window, |audio, _| {
                let mut transcript = scripted(&spoken, audio);
                let start = audio[0] as u64;
                let after = (3 * S).saturating_sub(start) as f32 / S as f32;
                transcript
                    .segments
                    .push(segment(" Thank you.".into(), after, after + 1.0));
                let mut invented = segment(" I will see you soon.".into(), 0.0, after + 2.0);
                invented.no_speech_prob = 0.9;
                invented.avg_logprob = -1.4;
                transcript.segments.push(invented);
                Ok(transcript)
            })
            .unwrap();
        finals.extend(update.finals);
    }
    finals.extend(captioner.finish().finals);
    let text: Vec<&str> = finals.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(text, ["yes we can."]);
}

#[test]
fn a_stock_phrase_said_for_real_is_kept() {
    let spoken = speech(&["thank you."], 0.0);
    let (finals, _) = caption(&spoken, 6);
    // Two words of 0.4 s: 0.9 s voiced with the gap, more than a stock phrase needs.
    assert_eq!(finals, ["thank", "you."]);
}

#[test]
fn updates_are_json_lines() {
    let update = CaptionUpdate {
        finals: vec![CaptionText {
            text: "Hi.".into(),
            start_ms: 100,
            end_ms: 400,
        }],
        partial: None,
    };
    let lines: Vec<String> = update.to_json().iter().map(|v| v.to_string()).collect();
    assert_eq!(
        lines,
        [
            r#"{"end_ms":400,"event":"final","start_ms":100,"text":"Hi."}"#,
            r#"{"event":"partial","text":""}"#
        ]
    );
}
