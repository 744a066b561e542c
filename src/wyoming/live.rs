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

use serde_json::json;

use super::event::Event;
use super::model::{CaptionDone, CaptionJob, Model};
use crate::captions::{CaptionOptions, Captioner, Latency};
use crate::frontend::{CaptionWindow, StreamWindows, VadConfig, WindowConfig};

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
    /// The newest window not yet decoded (older ones are covered by it).
    newest: Option<CaptionWindow>,
    language: Option<String>,
    /// `transcript-start` was sent.
    started: bool,
    /// Words sent in chunks so far.
    words: usize,
}

impl Live {
    pub fn new(settings: &LiveSettings, language: Option<String>) -> Result<Live, String> {
        let windows = StreamWindows::new(settings.vad.clone(), &settings.windows)
            .map_err(|e| e.to_string())?;
        let captions = CaptionOptions {
            language: language.clone().or(settings.captions.language.clone()),
            ..settings.captions.clone()
        };
        Ok(Live {
            windows,
            fed: 0,
            captioner: Some(Box::new(Captioner::new(captions))),
            in_flight: None,
            newest: None,
            language,
            started: false,
            words: 0,
        })
    }

    /// Takes the audio that arrived (`samples`: the request's whole audio so far), offers
    /// the newest window to the model when the last one is back, and returns the events
    /// for the text that became final meanwhile.
    pub fn hear(&mut self, samples: &[f32], model: &Model) -> Vec<Event> {
        let newest = &mut self.newest;
        self.windows
            .push(&samples[self.fed.min(samples.len())..], &mut |w| {
                *newest = Some(w)
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
        // Both are taken together only when both are there: a call without a new window
        // keeps the captioner home (dropping it would end the live transcript at once).
        match (self.captioner.take(), self.newest.take()) {
            (Some(captioner), Some(window)) => {
                match model.submit_caption(CaptionJob { captioner, window }) {
                    Ok(done) => self.in_flight = Some(done),
                    Err(job) => {
                        self.captioner = Some(job.captioner);
                        self.newest = Some(job.window);
                    }
                }
            }
            (captioner, newest) => {
                self.captioner = captioner;
                self.newest = newest;
            }
        }
        events
    }

    /// The request's `transcript` is `text`: the events that end the live transcript
    /// (`transcript-start` if none was sent yet, the last chunk, `transcript-stop`).
    pub fn finish(mut self, text: &str) -> Vec<Event> {
        let rest: Vec<&str> = text.split_whitespace().skip(self.words).collect();
        let mut events = self.chunk(&rest.join(" "));
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
        let joined = if self.words == 0 {
            text.to_string()
        } else {
            format!(" {text}")
        };
        self.words += text.split_whitespace().count();
        events.push(Event::new("transcript-chunk", json!({ "text": joined })));
        events
    }
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

    /// Audio too short for a window leaves the captioner home; the first window then goes
    /// to the model (here still loading, so the window waits in the captions' lane).
    #[test]
    fn the_first_window_goes_to_the_model_after_calls_without_one() {
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
        let mut live = live();
        let audio = vec![0.0f32; 24_000];
        for end in [1_600, 8_000, 14_400] {
            assert!(live.hear(&audio[..end], &model).is_empty());
            assert!(live.captioner.is_some() && live.in_flight.is_none());
        }
        // Past the first 1 s step: a window.
        assert!(live.hear(&audio, &model).is_empty());
        assert!(live.in_flight.is_some() && live.captioner.is_none());
        drop(release);
        drop(model);
        thread.join().unwrap();
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
