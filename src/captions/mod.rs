//! Live captions: text shown as `partial` while it may still change and as `final` once it
//! will not. Two commit policies ([`Latency`]): `Low` (`stream.rs`, the default), which
//! decodes the stream every step and makes text final while the speaker goes on, and
//! `Balanced` (this file), below, which waits for an utterance's end.
//!
//! ```text
//! SpeechStart ─► the partial decodes from here
//! CaptionWindow (every step) ─► the speech in progress since its start (at most a window)
//!     ─► greedy, context fitted, tokens capped ─► partial (replaces the previous one)
//! Utterance (speech ended, or cut at the length limit), with the audio before it
//!     ─► added to the finals' window (up to 30 s of the stream, pauses included)
//!     ─► the window decoded again as the offline transcription decodes a window: the text
//!        before the window as prompt, the segments already final in it forced
//!     ─► the new segments, judged ─► finals; the partial is cleared
//! ```
//!
//! The finals' window mirrors the offline transcription's long-form loop: the decoder hears
//! each sentence inside the same stretch of audio, and after the same text, as when the whole
//! recording is transcribed at once, so the finals come out as the offline transcript does.
//! (Decoding each utterance alone disagreed with it by 7-13 % WER: short utterances
//! without the audio and words around them are guessed differently.) Once the stream since
//! the window's start passes 30 s, the window moves on to the end of its last final, and the
//! finals before that become the prompt, as the loop's seek and prompt do. A segment is final
//! once an end timestamp closes it or its utterance has ended; text the decoder left open
//! in an utterance that was cut at the length limit is decoded again with what follows. The
//! forced segments keep finals from repeating or dropping words at a join: the decoder goes
//! on after them, and its timestamps may not go back.
//!
//! The windows give a partial every step, so the text appears while it is spoken. A
//! sliding-window commit policy (LocalAgreement over overlapping windows) was built and
//! measured first: 16-19 % WER against the offline transcript.
//!
//! Whisper's inventions on silence and noise are kept out three ways: the segmenter only
//! hands over audio the VAD called speech, the decoder's own no-speech rule skips windows
//! the model thinks silent, and each segment is checked (no-speech with low log-probability,
//! repetition by compression ratio, the subtitle phrases Whisper writes over noise when the
//! utterance is short).

mod stream;
pub mod subtitles;

pub use subtitles::{SubtitleError, SubtitleFormat, SubtitleWriter};

use std::collections::VecDeque;
use std::path::PathBuf;

use crate::frontend::{CaptionWindow, Utterance, WindowConfig};
use crate::whisper::transcribe::{
    AudioCtx, Interrupt, Segment, TranscribeError, TranscribeOptions, Transcriber,
};

/// An utterance that ends this far (2 s) past the audio the windows brought waits for them
/// (`Latency::Low`, live): the window with its end comes within a step.
const AHEAD_SAMPLES: u64 = 32_000;
/// Committed text given to the partials' decoder as its prompt, at most.
const PROMPT_CHARS: usize = 200;
/// Audio the finals' window holds at most: what Whisper hears at once. The segmenter hands
/// out this much of the stream before each utterance (`SegmentConfig::lead_in_ms`).
pub const FINALS_WINDOW_MS: u32 = 30_000;
const WINDOW_SAMPLES: u64 = FINALS_WINDOW_MS as u64 * 16;
/// Tokens of earlier finals kept for the finals' prompt (the decoder reads at most half its
/// 448-token context of them).
const PROMPT_TOKENS: usize = 448;
/// Tokens a partial may decode: this many, plus so many per second of audio (Whisper speaks
/// about 3 tokens a second; the cap stops a repetition loop early).
const PARTIAL_TOKENS: usize = 16;
const PARTIAL_TOKENS_PER_SECOND: usize = 6;
/// The phrases Whisper writes over silence and noise (learnt from video subtitles), as
/// normalised text; believed only in an utterance of at least this much audio.
const STOCK_PHRASE_MIN_MS: u64 = 1500;
const STOCK_PHRASES: &[&str] = &[
    "thank you",
    "thanks for watching",
    "thank you for watching",
    "thank you so much for watching",
    "please subscribe",
    "bye",
    "you",
];

/// When caption text becomes final: the trade between latency and agreement with the
/// offline transcript (`[captions] latency`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Latency {
    /// The stream is decoded every caption step; text is final once two steps agree on it
    /// (LocalAgreement-2), when the speech ends (the segments the decoder closed) or after
    /// a silence. Final within about 1.6-1.9 s (p50), a little less accurate than
    /// `Balanced` (README).
    #[default]
    Low,
    /// Text is final at an utterance's end once `settle_ms` of stream follows it: as
    /// accurate as the offline transcript, but a sentence waits for the next utterance.
    Balanced,
}

/// How `Latency::Low` decides that text is final (`[captions] commit`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Commit {
    /// AlignAtt (experimental): a word is final once the decoder heard it (its
    /// cross-attention on the alignment heads) at least 0.5 s before the end of the audio.
    AlignAtt,
    /// LocalAgreement-2: once two steps agree on it (or, with `pause_ms`, a pause closes its
    /// segment).
    #[default]
    Agreement,
}

/// How captions are decoded and judged.
#[derive(Clone, Debug, PartialEq)]
pub struct CaptionOptions {
    /// The commit policy.
    pub latency: Latency,
    /// `Latency::Low`: how text becomes final.
    pub commit: Commit,
    /// `Latency::Low`: a pause in the voice this long ends a sentence; the segments it closes
    /// are final at once. 0: off (it made text final that no second decode confirmed).
    pub pause_ms: u32,
    /// A language code; `None` detects it per utterance (multilingual models).
    pub language: Option<String>,
    /// Beam width of the finals and of the low-latency stream (`Balanced`'s partials are
    /// greedy).
    pub beam_size: usize,
    /// A segment whose no-speech probability is above this ...
    pub max_no_speech: f32,
    /// ... and whose mean token log-probability is below this is dropped (the reference's
    /// silence rule).
    pub min_avg_logprob: f32,
    /// Text that compresses better than this is a decoding loop and is dropped.
    pub max_compression_ratio: f32,
    /// Speech in progress shorter than this gets no partial yet.
    pub min_partial_ms: u32,
    /// A segment becomes final once the stream holds this much audio after it (or the
    /// stream ends): the decoder hears a sentence's last words better with what follows
    /// them, as the offline transcription does. Until then it shows in the partial.
    pub settle_ms: u32,
    /// Stops a window's decode once its captions are no longer wanted.
    pub interrupt: Interrupt,
}

impl CaptionOptions {
    /// Whether a segment is speech that was heard, not text Whisper wrote over silence or
    /// noise, or a decoding loop.
    fn plausible(&self, segment: &Segment, samples: usize) -> bool {
        let looping = segment.compression_ratio > self.max_compression_ratio;
        !(looping || self.invented(segment, samples))
    }

    /// Whether a segment is text Whisper wrote over silence or noise: unlikely text where
    /// it thought nobody spoke, or a phrase it writes over noise in a short stretch.
    fn invented(&self, segment: &Segment, samples: usize) -> bool {
        let silent = segment.no_speech_prob > self.max_no_speech
            && segment.avg_logprob < self.min_avg_logprob;
        let stock = (samples as u64) < STOCK_PHRASE_MIN_MS * 16
            && STOCK_PHRASES.contains(&normalised(&segment.text).as_str());
        silent || stock
    }
}

impl Default for CaptionOptions {
    fn default() -> Self {
        Self {
            latency: Latency::default(),
            commit: Commit::default(),
            pause_ms: 0,
            language: None,
            beam_size: 5,
            max_no_speech: 0.6,
            min_avg_logprob: -1.0,
            max_compression_ratio: 2.4,
            min_partial_ms: 500,
            settle_ms: 1500,
            interrupt: Interrupt::default(),
        }
    }
}

/// `[captions]` of the config file: the window partials are decoded from, when a segment
/// is final, and the subtitle files finals are written to.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptionsConfig {
    /// Audio per caption window.
    pub window_ms: u32,
    /// Time between windows.
    pub step_ms: u32,
    /// The commit policy ([`Latency`]).
    pub latency: Latency,
    /// How `latency = "low"` makes text final ([`Commit`]).
    pub commit: Commit,
    /// A pause that makes text final at once ([`CaptionOptions::pause_ms`]).
    pub pause_ms: u32,
    /// Stream that must follow a segment before it is final ([`CaptionOptions::settle_ms`]).
    pub settle_ms: u32,
    /// WebVTT file the final captions are appended to as they arrive.
    pub vtt: Option<PathBuf>,
    /// SRT file, likewise.
    pub srt: Option<PathBuf>,
}

impl Default for CaptionsConfig {
    fn default() -> Self {
        let window = WindowConfig::default();
        CaptionsConfig {
            window_ms: window.length_ms,
            step_ms: window.step_ms,
            latency: Latency::default(),
            commit: Commit::default(),
            pause_ms: CaptionOptions::default().pause_ms,
            settle_ms: CaptionOptions::default().settle_ms,
            vtt: None,
            srt: None,
        }
    }
}

impl CaptionsConfig {
    /// The front end's caption windows.
    pub fn windows(&self) -> WindowConfig {
        WindowConfig {
            length_ms: self.window_ms,
            step_ms: self.step_ms,
        }
    }

    /// The captioner's options, in `language` (None: detected).
    pub fn options(&self, language: Option<String>) -> CaptionOptions {
        CaptionOptions {
            language,
            latency: self.latency,
            commit: self.commit,
            pause_ms: self.pause_ms,
            settle_ms: self.settle_ms,
            ..CaptionOptions::default()
        }
    }

    /// The subtitle files the finals go to.
    pub fn subtitle_files(&self) -> Vec<PathBuf> {
        [&self.vtt, &self.srt]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }
}

/// Caption text and its time on the audio clock (ms since the stream's first sample).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CaptionText {
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
    /// Each word's time, when the policy knows it (finals of `Latency::Low`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<CaptionWord>,
}

/// A word of a caption and when it was said (audio clock, ms): estimated from the decoder's
/// timestamps, a segment's span shared among its words by characters.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CaptionWord {
    pub word: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// What one call of the captioner changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CaptionUpdate {
    /// Text that became final, in order.
    pub finals: Vec<CaptionText>,
    /// What the partial line shows now: None leaves it as it is, empty text clears it.
    pub partial: Option<CaptionText>,
    /// The audio heard when this was decided (audio clock, ms): the end of the window or
    /// utterance decoded.
    pub heard_ms: u64,
}

/// Turns speech into partial and final captions.
pub struct Captioner {
    options: CaptionOptions,
    /// Where the speech in progress started (None between utterances).
    speech_start: Option<u64>,
    /// The finals so far, the end of them: the partials' prompt.
    history: String,
    /// The stretch of stream the finals are decoded in (None before the first utterance).
    window: Option<FinalsWindow>,
    /// Tokens of the finals before the window: the finals' prompt.
    previous: Vec<u32>,
    /// Decoded text that waits for more audio before it is final.
    waiting: Option<CaptionText>,
    /// The stream as `Latency::Low` decodes it.
    stream: stream::Stream,
    /// Utterances that ended well past the audio the windows brought so far (a file read
    /// faster than the decoder takes its windows): each is taken once the windows reach
    /// its end, so the stream is decoded in the order it was spoken.
    ahead: VecDeque<Utterance>,
    /// Every window comes (a file read as fast as it goes): an utterance is taken before
    /// the first window the front end sent after it, whenever it comes, so the captions
    /// are the same on every run.
    every_window: bool,
}

/// The stretch of the stream the finals are decoded in, as the offline transcription holds
/// a window.
struct FinalsWindow {
    /// First sample, on the audio clock.
    start: u64,
    /// The stream from `start` to the end of the last utterance.
    audio: Vec<f32>,
    /// The segments final in it, in order: their tokens with their timestamps (from
    /// `start`), and whether a fallback decode hot enough to reset the prompt made them.
    finals: Vec<(Vec<u32>, bool)>,
    /// Where the last of them ends, on the audio clock.
    finals_end: u64,
    /// The last decode held segments back for more audio.
    pending: bool,
}

impl FinalsWindow {
    fn new(start: u64) -> Self {
        Self {
            start,
            audio: Vec::new(),
            finals: Vec::new(),
            finals_end: start,
            pending: false,
        }
    }

    fn end(&self) -> u64 {
        self.start + self.audio.len() as u64
    }
}

impl Captioner {
    pub fn new(options: CaptionOptions) -> Self {
        Self {
            options,
            speech_start: None,
            history: String::new(),
            window: None,
            previous: Vec::new(),
            waiting: None,
            stream: stream::Stream::new(),
            ahead: VecDeque::new(),
            every_window: false,
        }
    }

    /// The captioner of a source whose windows all come, none giving way to a newer one
    /// (a file read as fast as it goes), and whose utterances come before the windows the
    /// front end sent after them: the stream is decoded in the order the front end heard
    /// it, however the decoder keeps up.
    pub fn every_window(mut self) -> Self {
        self.every_window = true;
        self
    }

    pub fn options(&self) -> &CaptionOptions {
        &self.options
    }

    /// Speech began at `start` (16 kHz samples on the audio clock, pre-roll included).
    pub fn speech_start(&mut self, start: u64) {
        self.speech_start = Some(start);
    }

    /// A caption window (the front end's, every step): `Latency::Low` decodes the stream
    /// with it and may make text final; `Latency::Balanced` decodes the speech in progress
    /// into the partial.
    pub fn window(
        &mut self,
        transcriber: &Transcriber,
        window: &CaptionWindow,
    ) -> Result<CaptionUpdate, TranscribeError> {
        let heard_ms = window.end() / 16;
        match self.options.latency {
            Latency::Low => {
                // Every window comes: the utterances the front end ended before this window
                // are taken before it, as they came.
                let mut finals = Vec::new();
                while self.every_window
                    && self
                        .ahead
                        .front()
                        .is_some_and(|u| u.heard_to < window.end())
                {
                    let u = self.ahead.pop_front().expect("just looked");
                    finals.extend(self.stream_utterance(transcriber, &u)?.finals);
                }
                self.stream
                    .hear(window.start, &window.samples, &window.voiced);
                let mut update = self.stream_step(transcriber, false, false, heard_ms)?;
                update.finals.splice(0..0, finals);
                // Live: the utterances that waited for the windows to reach their ends.
                while let Some(u) = self.ahead.front() {
                    if self.every_window || u.end > self.stream.end() {
                        break;
                    }
                    let u = self.ahead.pop_front().expect("just looked");
                    let done = self.stream_utterance(transcriber, &u)?;
                    update.finals.extend(done.finals);
                    update.partial = done.partial;
                }
                Ok(update)
            }
            Latency::Balanced => Ok(CaptionUpdate {
                finals: Vec::new(),
                partial: self.partial(transcriber, window)?,
                heard_ms,
            }),
        }
    }

    /// `Latency::Low`: the utterance's audio joins the stream, which is decoded again; all of
    /// it is final unless the utterance was cut at the length limit.
    fn stream_utterance(
        &mut self,
        transcriber: &Transcriber,
        u: &Utterance,
    ) -> Result<CaptionUpdate, TranscribeError> {
        let lead_start = u.start - u.lead_in.len() as u64;
        self.stream.hear(lead_start, &u.lead_in, &[]);
        // The voice as the segmenter heard it: an utterance taken ahead of the windows
        // (a file read faster than they are decoded) brings speech no window has marked,
        // and a stream without it would never be decoded there.
        let voice = (u.onset < u.voice_end).then_some(u.onset..u.voice_end);
        self.stream.hear(u.start, &u.samples, voice.as_slice());
        self.stream_step(transcriber, !u.cut, false, u.end / 16)
    }

    fn stream_step(
        &mut self,
        transcriber: &Transcriber,
        speech_over: bool,
        stream_over: bool,
        heard_ms: u64,
    ) -> Result<CaptionUpdate, TranscribeError> {
        let step = self
            .stream
            .step(transcriber, &self.options, speech_over, stream_over)?;
        Ok(CaptionUpdate {
            finals: step.finals,
            partial: Some(step.partial),
            heard_ms,
        })
    }

    /// The partial for the speech in progress, from the window's audio since the speech
    /// began; None when there is no speech in progress, too little of it, or no text.
    fn partial(
        &mut self,
        transcriber: &Transcriber,
        window: &CaptionWindow,
    ) -> Result<Option<CaptionText>, TranscribeError> {
        let Some(start) = self.speech_start else {
            return Ok(None);
        };
        let from = start.max(window.start);
        if window.end() < from + u64::from(self.options.min_partial_ms) * 16 {
            return Ok(None);
        }
        let audio = &window.samples[(from - window.start) as usize..];
        let seconds = audio.len() / crate::audio::SAMPLE_RATE as usize;
        let options = TranscribeOptions {
            beam_size: 1,
            best_of: 1,
            temperatures: vec![0.0],
            audio_ctx: AudioCtx::Fit,
            max_new_tokens: Some(PARTIAL_TOKENS + PARTIAL_TOKENS_PER_SECOND * seconds),
            ..self.decode_options()
        };
        let segments = transcriber.transcribe(audio, &options, |_| {})?.segments;
        let text = self.kept_text(&segments, audio.len());
        let speech = (!text.is_empty()).then(|| CaptionText {
            text,
            start_ms: from / 16,
            end_ms: window.end() / 16,
            words: Vec::new(),
        });
        Ok(join_captions(self.waiting.iter().cloned().chain(speech)))
    }

    /// An utterance ended (or was cut at the length limit): what it makes final.
    /// `Latency::Low`: the stream with the utterance's audio is decoded once more and, unless
    /// the utterance was cut, all of it is final. `Latency::Balanced`: the finals' window,
    /// with the utterance added, is decoded after the finals it holds.
    pub fn utterance(
        &mut self,
        transcriber: &Transcriber,
        utterance: &Utterance,
    ) -> Result<CaptionUpdate, TranscribeError> {
        self.speech_start = None;
        let heard_ms = utterance.end / 16;
        if self.options.latency == Latency::Low {
            let waits = if self.every_window {
                // Windows the front end sent before it may still come.
                utterance.heard_to >= self.stream.end()
            } else {
                utterance.end > self.stream.end() + AHEAD_SAMPLES
            };
            if waits || !self.ahead.is_empty() {
                self.ahead.push_back(utterance.clone());
                return Ok(CaptionUpdate {
                    heard_ms: self.stream.end() / 16,
                    ..CaptionUpdate::default()
                });
            }
            return self.stream_utterance(transcriber, utterance);
        }
        let finals = self.utterance_finals(transcriber, utterance)?;
        Ok(CaptionUpdate {
            finals,
            partial: Some(self.waiting()),
            heard_ms,
        })
    }

    fn utterance_finals(
        &mut self,
        transcriber: &Transcriber,
        utterance: &Utterance,
    ) -> Result<Vec<CaptionText>, TranscribeError> {
        self.add_to_window(utterance);
        let settled = utterance
            .end
            .saturating_sub(u64::from(self.options.settle_ms) * 16);
        self.decode_finals(
            transcriber,
            settled,
            !utterance.cut,
            utterance.samples.len(),
        )
    }

    /// The stream ended: everything decoded is final now, and the partial line is cleared.
    pub fn finish(&mut self, transcriber: &Transcriber) -> Result<CaptionUpdate, TranscribeError> {
        if self.options.latency == Latency::Low {
            let mut update = CaptionUpdate::default();
            while let Some(u) = self.ahead.pop_front() {
                let done = self.stream_utterance(transcriber, &u)?;
                update.finals.extend(done.finals);
            }
            let done = self.stream_step(transcriber, true, true, self.stream.end() / 16)?;
            update.finals.extend(done.finals);
            update.heard_ms = done.heard_ms;
            update.partial = Some(CaptionText::default());
            return Ok(update);
        }
        let finals = self.finish_balanced(transcriber)?;
        let heard_ms = self.window.as_ref().map_or(0, |w| w.end() / 16);
        Ok(CaptionUpdate {
            finals,
            partial: Some(CaptionText::default()),
            heard_ms,
        })
    }

    fn finish_balanced(
        &mut self,
        transcriber: &Transcriber,
    ) -> Result<Vec<CaptionText>, TranscribeError> {
        match &self.window {
            Some(w) if w.pending => {
                let len = (w.end() - w.finals_end) as usize;
                self.decode_finals(transcriber, w.end(), true, len)
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Decodes the finals' window after its finals; the segments that end by `settled`
    /// (audio clock) become finals, the rest wait for more audio. `close_open`: the speech
    /// is over, so text no timestamp closed is final too (nothing will close it later).
    fn decode_finals(
        &mut self,
        transcriber: &Transcriber,
        settled: u64,
        close_open: bool,
        utterance_samples: usize,
    ) -> Result<Vec<CaptionText>, TranscribeError> {
        let options = TranscribeOptions {
            language: self.options.language.clone(),
            beam_size: self.options.beam_size,
            interrupt: self.options.interrupt.clone(),
            ..TranscribeOptions::default()
        };
        let Some(window) = self.window.as_mut() else {
            return Ok(Vec::new());
        };
        let forced: Vec<u32> = window.finals.iter().flat_map(|(t, _)| t.clone()).collect();
        let decoded =
            transcriber.continue_window(&window.audio, &self.previous, &forced, &options)?;
        tracing::debug!(
            window_ms = window.start / 16,
            audio_ms = window.audio.len() / 16,
            forced = forced.len(),
            segments = decoded.segments.len(),
            open = decoded.open.is_some(),
            "finals' window decoded"
        );
        let reset_prompt = decoded.temperature > options.prompt_reset_on_temperature;
        let mut segments = decoded.segments;
        let open = decoded.open.map(|mut open| {
            // Closed where the audio ends, so the next decode goes on after it.
            let tb = transcriber.tokenizer.special().timestamp_begin;
            let steps = (open.end / 0.02).round().min(1500.0) as u32;
            open.tokens.push(tb + steps);
            open
        });
        // Open text is final when the speech is over: nothing will close it later.
        let settled_open = if close_open { open.clone() } else { None };
        segments.extend(settled_open);
        let window_ms = window.start / 16;
        let window_end = window.end();
        let caption = |segment: &Segment| CaptionText {
            text: segment.text.trim().to_string(),
            start_ms: window_ms + (segment.start * 1000.0) as u64,
            end_ms: (window_ms + (segment.end * 1000.0) as u64).min(window_end / 16),
            words: Vec::new(),
        };
        // Timestamps can overshoot the audio's end by a little.
        let ends_by = |segment: &Segment, settled: u64| {
            (window.start + (segment.end * 16_000.0) as u64).min(window_end) <= settled
        };
        let n_final = segments
            .iter()
            .take_while(|segment| ends_by(segment, settled))
            .count();
        let waiting: Vec<&Segment> = segments[n_final..]
            .iter()
            .chain(open.iter().filter(|_| !close_open))
            .filter(|segment| self.options.plausible(segment, utterance_samples))
            .collect();
        window.pending = n_final < segments.len() || (!close_open && open.is_some());
        self.waiting = join_captions(waiting.into_iter().map(caption));
        let mut finals = Vec::new();
        for segment in &segments[..n_final] {
            window.finals.push((segment.tokens.clone(), reset_prompt));
            window.finals_end = (window.start + (segment.end * 16_000.0) as u64).min(window_end);
            let text = caption(segment);
            if self.options.plausible(segment, utterance_samples) && !text.text.is_empty() {
                finals.push(text);
            }
        }
        for f in &finals {
            self.remember(&f.text);
        }
        Ok(finals)
    }

    /// The text decoded but not final yet (it waits for more audio after it), shown in the
    /// partial before the speech in progress.
    fn waiting(&self) -> CaptionText {
        self.waiting.clone().unwrap_or_default()
    }

    /// Adds the utterance and the audio before it to the finals' window; a window that
    /// would pass 30 s moves on first (a new one starts after a gap it cannot bridge).
    fn add_to_window(&mut self, u: &Utterance) {
        let lead_start = u.start - u.lead_in.len() as u64;
        let window = match self.window.take() {
            Some(w) if w.end() >= lead_start => w,
            Some(w) => {
                self.retire(w.finals);
                FinalsWindow::new(lead_start)
            }
            None => FinalsWindow::new(lead_start),
        };
        let mut window = window;
        let end = window.end();
        if end < u.start {
            window
                .audio
                .extend_from_slice(&u.lead_in[(end - lead_start) as usize..]);
        }
        let from = window.end().saturating_sub(u.start) as usize;
        window
            .audio
            .extend_from_slice(u.samples.get(from..).unwrap_or_default());
        let over = (window.audio.len() as u64).saturating_sub(WINDOW_SAMPLES);
        if over > 0 {
            let new_start = window.finals_end.max(window.start + over).min(window.end());
            window.audio.drain(..(new_start - window.start) as usize);
            window.start = new_start;
            window.finals_end = new_start;
            let finals = std::mem::take(&mut window.finals);
            self.retire(finals);
        }
        self.window = Some(window);
    }

    /// Finals leaving the window become the prompt, unless a hot fallback made them (the
    /// offline loop then starts its prompt afresh).
    fn retire(&mut self, finals: Vec<(Vec<u32>, bool)>) {
        for (tokens, reset_prompt) in finals {
            self.previous.extend(tokens);
            if reset_prompt {
                self.previous.clear();
            }
        }
        let excess = self.previous.len().saturating_sub(PROMPT_TOKENS);
        self.previous.drain(..excess);
    }

    fn decode_options(&self) -> TranscribeOptions {
        TranscribeOptions {
            language: self.options.language.clone(),
            beam_size: self.options.beam_size,
            initial_prompt: (!self.history.is_empty()).then(|| self.history.clone()),
            interrupt: self.options.interrupt.clone(),
            ..TranscribeOptions::default()
        }
    }

    /// Keeps the end of the finals for the prompt.
    fn remember(&mut self, text: &str) {
        if !self.history.is_empty() {
            self.history.push(' ');
        }
        self.history.push_str(text);
        if self.history.len() > PROMPT_CHARS {
            let cut = self.history.len() - PROMPT_CHARS;
            let cut = (cut..self.history.len())
                .find(|&i| self.history.is_char_boundary(i) && self.history[..i].ends_with(' '))
                .unwrap_or(self.history.len());
            self.history.drain(..cut);
        }
    }

    fn kept_text(&self, segments: &[Segment], samples: usize) -> String {
        let kept: Vec<&str> = segments
            .iter()
            .filter(|s| self.options.plausible(s, samples))
            .map(|s| s.text.trim())
            .collect();
        kept.join(" ")
    }
}

/// Captions in order as one: their texts joined, from the first one's start to the last
/// one's end; None for none (or only empty texts).
fn join_captions(captions: impl IntoIterator<Item = CaptionText>) -> Option<CaptionText> {
    captions
        .into_iter()
        .filter(|c| !c.text.is_empty())
        .reduce(|mut joined, next| {
            joined.text.push(' ');
            joined.text.push_str(&next.text);
            joined.end_ms = next.end_ms;
            joined
        })
}

/// Lower case words without punctuation, single spaces.
fn normalised(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c.to_ascii_lowercase()
            } else {
                ' '
            }
        })
        .collect();
    cleaned.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prompt_keeps_the_end_of_the_finals_at_a_word() {
        let mut c = Captioner::new(CaptionOptions::default());
        for i in 0..40 {
            c.remember(&format!("sentence number {i}."));
        }
        assert!(c.history.len() <= PROMPT_CHARS, "{}", c.history);
        assert!(c.history.starts_with("sentence") || c.history.starts_with("number"));
        assert!(c.history.ends_with("sentence number 39."));
    }

    fn utterance(start_s: f64, end_s: f64, lead_in_s: f64) -> Utterance {
        let at = |s: f64| (s * 16_000.0) as u64;
        Utterance {
            start: at(start_s),
            end: at(end_s),
            onset: at(start_s),
            voice_end: at(end_s),
            samples: vec![0.5; (at(end_s) - at(start_s)) as usize],
            cut: false,
            heard_to: at(end_s),
            lead_in: vec![0.0; at(lead_in_s) as usize],
        }
    }

    #[test]
    fn the_finals_window_holds_the_stream_and_moves_on_at_30_s() {
        let mut c = Captioner::new(CaptionOptions::default());
        c.add_to_window(&utterance(1.0, 4.0, 1.0));
        c.add_to_window(&utterance(6.0, 9.0, 2.0));
        let w = c.window.as_ref().unwrap();
        // From the stream's start, pauses included.
        assert_eq!((w.start, w.audio.len()), (0, 9 * 16_000));
        assert_eq!(w.audio[4 * 16_000..6 * 16_000], [0.0; 32_000]);
        // Finals so far, then speech that takes the stream past 30 s: the window starts
        // again at the end of the last final, and the finals become the prompt.
        c.window.as_mut().unwrap().finals = vec![(vec![1, 2, 3], false)];
        c.window.as_mut().unwrap().finals_end = 8 * 16_000;
        c.add_to_window(&utterance(27.0, 33.0, 18.0));
        let w = c.window.as_ref().unwrap();
        assert_eq!((w.start, w.end()), (8 * 16_000, 33 * 16_000));
        assert!(w.finals.is_empty());
        assert_eq!(c.previous, [1, 2, 3]);
        // A gap longer than the lead-in starts a new window (30 s long at most).
        c.add_to_window(&utterance(100.0, 102.0, 30.0));
        let w = c.window.as_ref().unwrap();
        assert_eq!((w.start, w.end()), (72 * 16_000, 102 * 16_000));
    }

    #[test]
    fn captions_join_in_order_skipping_empty_ones() {
        let c = |text: &str, start_ms, end_ms| CaptionText {
            text: text.into(),
            start_ms,
            end_ms,
            words: Vec::new(),
        };
        assert_eq!(join_captions(Vec::new()), None);
        assert_eq!(
            join_captions([c("Hello", 0, 500), c("", 500, 600), c("world.", 700, 900)]),
            Some(c("Hello world.", 0, 900))
        );
    }

    #[test]
    fn stock_phrases_are_normalised() {
        assert_eq!(normalised(" Thank you."), "thank you");
        assert_eq!(normalised("Thanks for watching!"), "thanks for watching");
        assert_eq!(normalised("It's 5 o'clock"), "it's 5 o'clock");
    }
}
