//! The live transcript of a `transcribe` request while its audio arrives: the live
//! captions' path (the front end's voice detector and caption windows, the low-latency
//! commit policy of `captions::stream`) run on the client's audio, its final text sent as
//! `transcript-start`, `transcript-chunk`… and, after `audio-stop`, `transcript-stop`
//! before the `transcript` itself.
//!
//! The chunks are for showing the words as they are spoken; the `transcript` is the
//! request's text, decoded from the whole audio as `voxd transcribe` decodes it. Joined,
//! the chunks make that text: the last chunk holds the transcript's words after as many as
//! the earlier chunks held (all of it when the audio was too short for any).

use std::ops::Range;

use serde_json::json;

use super::event::Event;
use super::model::{CaptionDone, CaptionJob, Model};
use crate::captions::{CaptionOptions, Captioner, Latency};
use crate::frontend::{CaptionWindow, StreamWindows, VadConfig, WindowConfig};
use crate::whisper::transcribe::Interrupt;

/// How live transcripts are cut and decoded (`[vad]` and `[captions]`).
#[derive(Clone, Debug)]
pub struct LiveSettings {
    pub vad: VadConfig,
    pub windows: WindowConfig,
    /// The commit policy is always `Latency::Low`: the balanced one makes text final only
    /// at the ends of utterances, and a request is one utterance.
    pub captions: CaptionOptions,
}

impl LiveSettings {
    pub fn new(vad: VadConfig, windows: WindowConfig, captions: CaptionOptions) -> LiveSettings {
        LiveSettings {
            vad,
            windows,
            captions: CaptionOptions {
                latency: Latency::Low,
                ..captions
            },
        }
    }
}

/// One request's live transcript.
pub struct Live {
    windows: StreamWindows,
    /// Samples of the request's audio already cut into windows.
    fed: usize,
    /// Home when no window is with the model; None while one is (or after the model
    /// failed, which ends the live transcript, not the request).
    captioner: Option<Box<Captioner>>,
    in_flight: Option<crossbeam_channel::Receiver<CaptionDone>>,
    /// The end of the newest window cut (a caption step's end), on the request's clock.
    cut_until: u64,
    /// The end of the audio the captioner has been given.
    given_until: u64,
    /// The voiced runs of the windows cut, merged, from the first one still needed.
    voiced: Vec<Range<u64>>,
    language: Option<String>,
    /// `transcript-start` was sent.
    started: bool,
    /// The words sent in chunks so far.
    sent: Vec<String>,
    /// Stops the window with the model once the request's own transcript is wanted.
    interrupt: Interrupt,
}

impl Live {
    pub fn new(settings: &LiveSettings, language: Option<String>) -> Result<Live, String> {
        let windows = StreamWindows::new(settings.vad.clone(), &settings.windows)
            .map_err(|e| e.to_string())?;
        let interrupt = Interrupt::new();
        let captions = CaptionOptions {
            language: language.clone().or(settings.captions.language.clone()),
            interrupt: interrupt.clone(),
            ..settings.captions.clone()
        };
        Ok(Live {
            windows,
            fed: 0,
            captioner: Some(Box::new(Captioner::new(captions))),
            in_flight: None,
            cut_until: 0,
            given_until: 0,
            voiced: Vec::new(),
            language,
            started: false,
            sent: Vec::new(),
            interrupt,
        })
    }

    /// The audio has ended: a window still with the model is stopped at its next step
    /// (before the encoder, before each decoder step), so that the request's own
    /// transcript, which the client waits for, does not wait behind it. What the window
    /// would have made final comes in the last chunk instead (see [`Live::finish`]).
    pub fn stop_decoding(&self) {
        self.interrupt.raise();
    }

    /// Takes the audio that arrived (`samples`: the request's whole audio so far), gives
    /// the model the audio of the steps cut since the captioner's last window once that one
    /// is back, and returns the events for the text that became final meanwhile.
    ///
    /// The window starts where the captioner's audio ended, not at the newest window's
    /// start: when decoding is slower than the audio arrives (a busy machine, many
    /// clients), the captioner gets longer windows, never a gap.
    pub fn hear(&mut self, samples: &[f32], model: &Model) -> Vec<Event> {
        let (cut_until, voiced) = (&mut self.cut_until, &mut self.voiced);
        self.windows
            .push(&samples[self.fed.min(samples.len())..], &mut |w| {
                *cut_until = w.end();
                merge_runs(voiced, &w.voiced);
            });
        self.fed = samples.len();
        let mut events = Vec::new();
        if let Some(done) = self.in_flight.as_ref().map(|r| r.try_recv()) {
            match done {
                Ok(done) => {
                    self.in_flight = None;
                    match done.update {
                        Ok(update) => {
                            self.captioner = Some(done.captioner);
                            for text in update.finals {
                                events.extend(self.chunk(&text.text));
                            }
                        }
                        Err(problem) => {
                            tracing::warn!("wyoming: live transcript stopped: {problem}");
                        }
                    }
                }
                Err(crossbeam_channel::TryRecvError::Empty) => {}
                Err(crossbeam_channel::TryRecvError::Disconnected) => self.in_flight = None,
            }
        }
        if self.cut_until > self.given_until {
            if let Some(captioner) = self.captioner.take() {
                let window = self.window(samples);
                match model.submit_caption(CaptionJob { captioner, window }) {
                    Ok(done) => {
                        self.given_until = self.cut_until;
                        self.voiced.retain(|r| r.end > self.given_until);
                        self.in_flight = Some(done);
                    }
                    Err(job) => self.captioner = Some(job.captioner),
                }
            }
        }
        events
    }

    /// The audio from the end of the captioner's last window to the newest step's end.
    fn window(&self, samples: &[f32]) -> CaptionWindow {
        let (from, to) = (self.given_until, self.cut_until);
        let audio = samples[from as usize..(to as usize).min(samples.len())].to_vec();
        let voiced: Vec<Range<u64>> = self
            .voiced
            .iter()
            .filter(|r| r.end > from && r.start < to)
            .map(|r| r.start.max(from)..r.end.min(to))
            .collect();
        let voiced_ms = voiced.iter().map(|r| (r.end - r.start) / 16).sum::<u64>() as u32;
        CaptionWindow {
            start: from,
            samples: audio,
            voiced_ms,
            voiced,
        }
    }

    /// The request's `transcript` is `text`: the events that end the live transcript
    /// (`transcript-start` if none was sent yet, the last chunk, `transcript-stop`). The
    /// last chunk is the transcript after the words the chunks sent, aligned word by word:
    /// the live decoding may have heard a word differently, which is not said twice.
    pub fn finish(mut self, text: &str) -> Vec<Event> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let rest = words[unsent_from(&self.sent, &words)..].join(" ");
        let mut events = self.chunk(&rest);
        if !self.started {
            events.push(self.start());
        }
        events.push(Event::new("transcript-stop", json!({})));
        events
    }

    fn start(&mut self) -> Event {
        self.started = true;
        match &self.language {
            Some(language) => Event::new("transcript-start", json!({ "language": language })),
            None => Event::new("transcript-start", json!({})),
        }
    }

    /// `text` as the next chunk (after `transcript-start` when it is the first); nothing
    /// for empty text. Chunks join by simple concatenation, so each but the first starts
    /// with a space.
    fn chunk(&mut self, text: &str) -> Vec<Event> {
        let text = text.trim();
        if text.is_empty() {
            return Vec::new();
        }
        let mut events = Vec::new();
        if !self.started {
            events.push(self.start());
        }
        let joined = if self.sent.is_empty() {
            text.to_string()
        } else {
            format!(" {text}")
        };
        self.sent
            .extend(text.split_whitespace().map(str::to_string));
        events.push(Event::new("transcript-chunk", json!({ "text": joined })));
        events
    }
}

/// A client gone mid-stream no longer wants its window decoded either.
impl Drop for Live {
    fn drop(&mut self) {
        self.interrupt.raise();
    }
}

/// Adds `runs` (in order, as a window's voiced runs) to the merged runs `into`.
fn merge_runs(into: &mut Vec<Range<u64>>, runs: &[Range<u64>]) {
    for run in runs {
        match into.last_mut() {
            Some(last) if run.end <= last.end => {}
            Some(last) if run.start <= last.end => last.end = run.end,
            _ => into.push(run.clone()),
        }
    }
}

/// A word compared without case and punctuation ("Americans," is "americans").
fn plain(word: &str) -> String {
    word.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Where the transcript's `words` go on after the words already `sent`: one past the last
/// word of the transcript in the longest common subsequence of the two (0 when none is
/// shared).
fn unsent_from(sent: &[String], words: &[&str]) -> usize {
    let sent: Vec<String> = sent.iter().map(|w| plain(w)).collect();
    let words: Vec<String> = words.iter().map(|w| plain(w)).collect();
    // lcs[i][j]: the longest common subsequence of sent[i..] and words[j..].
    let mut lcs = vec![vec![0u32; words.len() + 1]; sent.len() + 1];
    for i in (0..sent.len()).rev() {
        for j in (0..words.len()).rev() {
            lcs[i][j] = if sent[i] == words[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // Walk one longest alignment; the last transcript word it pairs is the last one sent.
    let (mut i, mut j, mut after) = (0, 0, 0);
    while i < sent.len() && j < words.len() {
        if sent[i] == words[j] {
            i += 1;
            j += 1;
            after = j;
        } else if lcs[i + 1][j] >= lcs[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    after
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .map(|e| format!("{} {}", e.kind, e.text("text").unwrap_or("")))
            .collect()
    }

    fn live() -> Live {
        let settings = LiveSettings::new(
            VadConfig::default(),
            WindowConfig::default(),
            CaptionOptions::default(),
        );
        Live::new(&settings, Some("en".into())).unwrap()
    }

    /// A model still loading, which fails once `release` is dropped; with its thread.
    fn loading_model() -> (
        Model,
        std::thread::JoinHandle<()>,
        crossbeam_channel::Sender<()>,
    ) {
        let (release, gate) = crossbeam_channel::bounded::<()>(0);
        let (loaded_tx, _loaded) = crossbeam_channel::bounded(1);
        let load = move || {
            let _ = gate.recv();
            Err("no model here".to_string())
        };
        let (model, thread) = Model::start(
            load,
            crate::whisper::transcribe::TranscribeOptions::default(),
            1,
            loaded_tx,
        )
        .unwrap();
        (model, thread, release)
    }

    /// Audio too short for a window leaves the captioner home; the first window then goes
    /// to the model (here still loading, so the window waits in the captions' lane).
    #[test]
    fn the_first_window_goes_to_the_model_after_calls_without_one() {
        let (model, thread, release) = loading_model();
        let mut live = live();
        let audio = vec![0.0f32; 24_000];
        for end in [1_600, 8_000, 14_400] {
            assert!(live.hear(&audio[..end], &model).is_empty());
            assert!(live.captioner.is_some() && live.in_flight.is_none());
        }
        // Past the first 1 s step: a window.
        assert!(live.hear(&audio, &model).is_empty());
        assert!(live.in_flight.is_some() && live.captioner.is_none());
        // Steps end at the first 30 ms frame's end past each second.
        assert_eq!(live.given_until, 16_320);
        drop(release);
        drop(model);
        thread.join().unwrap();
    }

    /// While the model is busy with one window, steps go on being cut; the next window
    /// holds all of them (and the voiced runs inside them), from where the last one ended.
    #[test]
    fn the_window_after_a_busy_model_starts_where_the_last_one_ended() {
        let (model, thread, release) = loading_model();
        let mut live = live();
        let audio = vec![0.0f32; 100_000];
        // Steps end at the first 30 ms frame's end past each second.
        live.hear(&audio[..20_000], &model);
        assert_eq!(live.given_until, 16_320);
        live.hear(&audio[..90_000], &model);
        assert!(
            live.captioner.is_none(),
            "the first window is still with the model"
        );
        assert_eq!((live.given_until, live.cut_until), (16_320, 80_160));
        live.voiced = vec![2_000..20_000, 30_000..90_000];
        let window = live.window(&audio);
        assert_eq!(window.start, 16_320);
        assert_eq!(window.end(), 80_160);
        assert_eq!(window.voiced, [16_320..20_000, 30_000..80_160]);
        assert_eq!(window.voiced_ms, (3_680 + 50_160) / 16);
        drop(release);
        drop(model);
        thread.join().unwrap();
    }

    fn owned(words: &str) -> Vec<String> {
        words.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn the_last_chunk_goes_on_after_the_words_sent_as_aligned() {
        let transcript: Vec<&str> = "And so, my fellow Americans, ask not what your country"
            .split_whitespace()
            .collect();
        let cases = [
            // As the transcript: the rest follows.
            ("And so, my fellow", 4),
            // Heard differently, with other punctuation and case.
            ("and so my fellow americans ask knot", 6),
            // A word more than the transcript has at its end.
            (
                "And so, my fellow Americans, ask not what your country then",
                10,
            ),
            // Nothing in common: the whole transcript.
            ("Hello there", 0),
            ("", 0),
        ];
        for (sent, from) in cases {
            assert_eq!(unsent_from(&owned(sent), &transcript), from, "{sent:?}");
        }
    }

    #[test]
    fn chunks_join_into_the_transcript() {
        let mut live = live();
        let mut events = live.chunk("And so, my fellow Americans,");
        events.extend(live.chunk(" ask not "));
        events.extend(
            live.finish("And so, my fellow Americans, ask not what your country can do for you."),
        );
        assert_eq!(
            texts(&events),
            [
                "transcript-start ",
                "transcript-chunk And so, my fellow Americans,",
                "transcript-chunk  ask not",
                "transcript-chunk  what your country can do for you.",
                "transcript-stop ",
            ]
        );
        assert_eq!(events[0].text("language"), Some("en"));
    }

    #[test]
    fn without_chunks_the_whole_transcript_is_the_one_chunk() {
        let events = live().finish("Turn on the light.");
        assert_eq!(
            texts(&events),
            [
                "transcript-start ",
                "transcript-chunk Turn on the light.",
                "transcript-stop ",
            ]
        );
        let events = live().finish("");
        assert_eq!(texts(&events), ["transcript-start ", "transcript-stop "]);
    }
}
