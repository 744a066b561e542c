//! Live captions: a sliding window over the audio, decoded every step, with a commit policy
//! that shows text as `partial` while it may change and as `final` once it will not.
//!
//! ```text
//! CaptionWindow (every step, the last seconds of audio + voiced runs)
//!   ─► Captioner: the audio since the trim point (its own buffer, so a window that starts
//!        inside a sentence loses nothing); leading silence cut off
//!   ─► too little voiced time? no decoding
//!   ─► Transcriber::transcribe (greedy, audio context fitted, committed text as prompt)
//!   ─► segments judged (no-speech, log-prob, compression, voiced time under them)
//!   ─► words::segment_words (times: the segment's voiced time shared by characters)
//!   ─► commit::Committer (LocalAgreement-2) ─► finals + partial
//!   ─► speech stopped? the rest becomes final at once; buffer cut at the sentence end
//! ```

mod commit;
pub mod subtitles;
mod words;

use std::ops::Range;

pub use commit::{Committer, Update, Word};
pub use subtitles::{SubtitleError, SubtitleFormat, SubtitleWriter};

use commit::{ends_sentence, normalise};
use words::{overlap, sample, segment_words};

use crate::frontend::CaptionWindow;
use crate::whisper::transcribe::{
    compression_ratio, AudioCtx, Segment, TranscribeError, TranscribeOptions, Transcriber,
    Transcript,
};

/// Silence kept before the first voiced frame of the buffer, as the segmenter's pre-roll:
/// the VAD confirms speech a little after it starts.
const PREROLL_SAMPLES: u64 = 300 * 16;
/// Committed text given to the decoder as its prompt, at most (whisper_streaming's 200).
const PROMPT_CHARS: usize = 200;
/// Speech that ended with less voiced time than this is not decoded.
const MIN_UTTERANCE_VOICED_MS: u64 = 250;
/// Tokens a window may decode: this many, plus so many per second of audio.
const MIN_TOKENS: usize = 16;
const TOKENS_PER_SECOND: u64 = 6;
/// A segment with less voiced time than this under it was not heard: Whisper wrote it to
/// fill silence or noise.
const MIN_SEGMENT_VOICED_MS: u64 = 100;
/// The phrases Whisper writes over silence and noise (learnt from video subtitles) are
/// believed only over this much voiced time; said for real, they are.
const STOCK_PHRASE_VOICED_MS: u64 = 700;
const STOCK_PHRASES: &[&str] = &[
    "you",
    "thankyou",
    "thanks",
    "thanksforwatching",
    "thankyouforwatching",
    "thankyousomuchforwatching",
    "pleasesubscribe",
    "bye",
    "byebye",
];

/// How captions are decoded and judged.
#[derive(Clone, Debug, PartialEq)]
pub struct CaptionOptions {
    /// A language code; `None` detects it once (multilingual models) and keeps it.
    pub language: Option<String>,
    /// Beam width; 1 is greedy.
    pub beam_size: usize,
    /// The encoder's context: `Fit` sizes it to the buffer (faster), `Full` is the 30 s
    /// Whisper was trained on.
    pub audio_ctx: AudioCtx,
    /// A segment whose no-speech probability is above this ...
    pub max_no_speech: f32,
    /// ... and whose mean token log-probability is below this is dropped (the reference's
    /// silence rule).
    pub min_avg_logprob: f32,
    /// Text that compresses better than this is a decoding loop and is dropped.
    pub max_compression_ratio: f32,
    /// Audio after the trim point with less voiced time than this is not decoded while
    /// speech goes on.
    pub min_voiced_ms: u32,
    /// Unvoiced time after speech that ends it: the rest of the hypothesis becomes final.
    pub end_silence_ms: u32,
    /// The buffer is cut when it grows past this and no sentence ends within it: at the last
    /// committed word (whisper_streaming's segment-end cut, at a word).
    pub max_buffer_ms: u32,
}

impl Default for CaptionOptions {
    fn default() -> Self {
        Self {
            language: None,
            beam_size: 1,
            audio_ctx: AudioCtx::Full,
            max_no_speech: 0.6,
            min_avg_logprob: -1.0,
            max_compression_ratio: 2.4,
            min_voiced_ms: 1000,
            end_silence_ms: 500,
            max_buffer_ms: 20_000,
        }
    }
}

/// Caption text and its time on the audio clock (ms since the stream's first sample).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CaptionText {
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// What one window changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CaptionUpdate {
    /// Newly final text, in order, one piece per sentence (or part of one); never revised
    /// and never repeated.
    pub finals: Vec<CaptionText>,
    /// The text after the finals that may still change: it replaces the previous partial.
    /// `None` when nothing is pending.
    pub partial: Option<CaptionText>,
}

impl CaptionUpdate {
    /// The update as JSON lines: a `final` event per final piece, then a `partial` event
    /// (with empty text when nothing is pending, so a display clears it).
    pub fn to_json(&self) -> Vec<serde_json::Value> {
        let event = |kind: &str, t: &CaptionText| {
            serde_json::json!({
                "event": kind, "text": t.text, "start_ms": t.start_ms, "end_ms": t.end_ms,
            })
        };
        let mut events: Vec<_> = self.finals.iter().map(|t| event("final", t)).collect();
        match &self.partial {
            Some(p) => events.push(event("partial", p)),
            None => events.push(serde_json::json!({"event": "partial", "text": ""})),
        }
        events
    }
}

/// Turns caption windows into partial and final captions.
pub struct Captioner {
    options: CaptionOptions,
    committer: Committer,
    /// The language decoded in, once known.
    language: Option<String>,
    /// Audio since the trim point.
    audio: Vec<f32>,
    /// The clock position of `audio[0]`.
    start: u64,
    /// Voiced runs inside the buffer, in order.
    voiced: Vec<Range<u64>>,
    /// Committed words still inside the buffer: they move to the prompt when cut off.
    committed: Vec<Word>,
    /// Committed text before the buffer, the decoder's prompt.
    history: String,
    partial: Option<CaptionText>,
}

impl Captioner {
    pub fn new(options: CaptionOptions) -> Self {
        Self {
            language: options.language.clone(),
            options,
            committer: Committer::new(),
            audio: Vec::new(),
            start: 0,
            voiced: Vec::new(),
            committed: Vec::new(),
            history: String::new(),
            partial: None,
        }
    }

    /// Takes the next window, decodes the audio after the trim point when it holds speech,
    /// and returns what changed.
    pub fn window(
        &mut self,
        transcriber: &Transcriber,
        window: &CaptionWindow,
    ) -> Result<CaptionUpdate, TranscribeError> {
        self.window_with(window, |audio, options| {
            transcriber.transcribe(audio, options, |_| {})
        })
    }

    /// [`Captioner::window`] with any transcription of the buffer (the tests script one).
    fn window_with(
        &mut self,
        window: &CaptionWindow,
        transcribe: impl FnOnce(&[f32], &TranscribeOptions) -> Result<Transcript, TranscribeError>,
    ) -> Result<CaptionUpdate, TranscribeError> {
        let mut finals = Vec::new();
        if !self.audio.is_empty() && window.start > self.end() {
            // Windows were dropped for longer than a window: what was pending cannot be
            // confirmed any more, and the missing audio must not be stitched over.
            tracing::debug!(
                missing_ms = (window.start - self.end()) / 16,
                "caption audio gap"
            );
            finals = self.committer.flush();
            self.trim_to(self.end());
        }
        self.append(window);
        self.skip_leading_silence();

        let speech_end = self.voiced.last().map_or(self.start, |r| r.end);
        let speech_ended = self.end() - speech_end >= u64::from(self.options.end_silence_ms) * 16;
        // Whisper guesses wildly on the first fraction of a second of a sentence, and two
        // such guesses can agree; it waits for a second of speech, unless the speech
        // already ended (a short answer).
        let voiced = self.voiced_samples();
        let enough = if speech_ended {
            MIN_UTTERANCE_VOICED_MS
        } else {
            u64::from(self.options.min_voiced_ms)
        };
        if voiced >= enough * 16 {
            let hypothesis = self.decode(transcribe)?;
            let update = self.committer.push(hypothesis);
            finals.extend(update.finals);
        }
        if speech_ended {
            // Nothing more will be said in this sentence, so no later hypothesis can confirm
            // or revise the newest one: it is the best there will be.
            finals.extend(self.committer.flush());
        }
        self.committed.extend(finals.iter().cloned());

        if speech_ended && !self.committer.has_pending() {
            // Everything heard is final.
            self.trim_to(speech_end);
        } else if let Some(at) = self.committer.trim_point() {
            self.trim_to(sample(at));
        }
        if self.audio.len() as u64 > u64::from(self.options.max_buffer_ms) * 16 {
            let cut = self.committer.last_committed_start().map_or(0, sample);
            if cut <= self.start {
                tracing::debug!("no commit within the caption buffer: pending text made final");
                let flushed = self.committer.flush();
                self.committed.extend(flushed.iter().cloned());
                finals.extend(flushed);
            }
            let cut = self
                .committer
                .last_committed_start()
                .map_or(self.end(), sample);
            self.trim_to(cut);
        }
        self.partial = caption(self.committer.pending());
        Ok(CaptionUpdate {
            finals: pieces(&finals),
            partial: self.partial.clone(),
        })
    }

    /// End of stream (or a pause the caller treats as one): everything pending becomes final
    /// and the buffer is emptied.
    pub fn finish(&mut self) -> CaptionUpdate {
        let finals = self.committer.flush();
        self.committed.extend(finals.iter().cloned());
        self.trim_to(self.end());
        self.partial = None;
        CaptionUpdate {
            finals: pieces(&finals),
            partial: None,
        }
    }

    /// One past the buffer's last sample on the audio clock.
    fn end(&self) -> u64 {
        self.start + self.audio.len() as u64
    }

    /// Adds the window's audio that the buffer does not hold yet, and its voiced runs.
    fn append(&mut self, window: &CaptionWindow) {
        if self.audio.is_empty() {
            self.start = self.start.max(window.start);
        }
        let from = self.end().max(window.start);
        if window.end() <= from {
            return;
        }
        self.audio
            .extend_from_slice(&window.samples[(from - window.start) as usize..]);
        // The window's verdicts for audio already held are the same frames' verdicts, so
        // its runs replace ours from where it starts.
        let cut = window.start.max(self.start);
        self.voiced.retain(|r| r.start < cut);
        if let Some(last) = self.voiced.last_mut() {
            last.end = last.end.min(cut);
        }
        for run in overlap(&window.voiced, &(cut..self.end())) {
            match self.voiced.last_mut() {
                Some(last) if last.end == run.start => last.end = run.end,
                _ => self.voiced.push(run),
            }
        }
    }

    /// Cuts silence at the start of the buffer down to the pre-roll: it holds no words, and
    /// Whisper decodes faster and invents less without it.
    fn skip_leading_silence(&mut self) {
        let first_voice = self.voiced.first().map_or(self.end(), |r| r.start);
        if first_voice > self.start + PREROLL_SAMPLES {
            self.trim_to(first_voice - PREROLL_SAMPLES);
        }
    }

    fn voiced_samples(&self) -> u64 {
        self.voiced.iter().map(|r| r.end - r.start).sum()
    }

    /// Drops the buffer's audio before `at`; committed words before it become prompt.
    fn trim_to(&mut self, at: u64) {
        let at = at.clamp(self.start, self.end());
        self.audio.drain(..(at - self.start) as usize);
        self.start = at;
        self.voiced = overlap(&self.voiced, &(at..self.end()));
        let kept = self
            .committed
            .iter()
            .position(|w| sample(w.end) > at)
            .unwrap_or(self.committed.len());
        for word in self.committed.drain(..kept) {
            if !self.history.is_empty() {
                self.history.push(' ');
            }
            self.history.push_str(&word.text);
        }
        if self.history.len() > PROMPT_CHARS {
            let mut cut = self.history.len() - PROMPT_CHARS;
            while !self.history.is_char_boundary(cut) {
                cut += 1;
            }
            // Whole words only.
            let cut = self.history[cut..].find(' ').map_or(cut, |i| cut + i + 1);
            self.history.drain(..cut);
        }
    }

    /// The buffer's hypothesis: words of the segments that pass the checks.
    fn decode(
        &mut self,
        transcribe: impl FnOnce(&[f32], &TranscribeOptions) -> Result<Transcript, TranscribeError>,
    ) -> Result<Vec<Word>, TranscribeError> {
        let options = TranscribeOptions {
            language: self.language.clone(),
            beam_size: self.options.beam_size,
            best_of: 1,
            // A fallback decode costs a step; a window that fails the checks is judged
            // below and the next step tries again with more audio.
            temperatures: vec![0.0],
            compression_ratio_threshold: None,
            log_prob_threshold: None,
            no_speech_threshold: None,
            initial_prompt: (!self.history.is_empty()).then(|| self.history.clone()),
            audio_ctx: self.options.audio_ctx,
            // Speech runs at up to ~4 tokens a second with timestamps; a decoder that goes
            // past this is looping, and each extra token costs a decoder step.
            max_new_tokens: Some(
                MIN_TOKENS + (self.audio.len() as u64 * TOKENS_PER_SECOND / 16_000) as usize,
            ),
            ..TranscribeOptions::default()
        };
        let transcript = transcribe(&self.audio, &options)?;
        self.language.get_or_insert(transcript.language);
        let mut words = Vec::new();
        let mut previous: Option<&str> = None;
        for segment in &transcript.segments {
            // A loop that repeats whole segments: the first one is the speech.
            if previous.is_some_and(|p| normalise(p) == normalise(&segment.text)) {
                tracing::debug!(text = %segment.text, "caption segment repeated");
                continue;
            }
            previous = Some(&segment.text);
            let span = (self.start + sample(segment.start)).min(self.end())
                ..(self.start + sample(segment.end)).min(self.end());
            let voiced_ms: u64 = overlap(&self.voiced, &span)
                .iter()
                .map(|r| (r.end - r.start) / 16)
                .sum();
            if let Some(reason) = self.implausible(segment, voiced_ms) {
                tracing::debug!(text = %segment.text, reason, "caption segment dropped");
                continue;
            }
            words.extend(segment_words(&segment.text, span, &self.voiced));
        }
        Ok(words)
    }

    /// Why a decoded segment is not believed, if it is not.
    fn implausible(&self, segment: &Segment, voiced_ms: u64) -> Option<&'static str> {
        let o = &self.options;
        // The window's ratio is shared by its segments; a loop inside one segment shows in
        // its own text.
        if compression_ratio(segment.text.trim()) > o.max_compression_ratio {
            return Some("repetitive");
        }
        if segment.no_speech_prob > o.max_no_speech && segment.avg_logprob < o.min_avg_logprob {
            return Some("no speech");
        }
        if voiced_ms < MIN_SEGMENT_VOICED_MS {
            return Some("not voiced");
        }
        if voiced_ms < STOCK_PHRASE_VOICED_MS
            && STOCK_PHRASES.contains(&normalise(&segment.text).as_str())
        {
            return Some("stock phrase on little speech");
        }
        None
    }
}

/// Final words as caption pieces, split after each sentence end.
fn pieces(words: &[Word]) -> Vec<CaptionText> {
    let mut out = Vec::new();
    let mut rest = words;
    while !rest.is_empty() {
        let n = rest
            .iter()
            .position(|w| ends_sentence(&w.text))
            .map_or(rest.len(), |i| i + 1);
        out.extend(caption(&rest[..n]));
        rest = &rest[n..];
    }
    out
}

/// Words as one caption, if there are any.
fn caption(words: &[Word]) -> Option<CaptionText> {
    let ms = |s: f32| (f64::from(s) * 1000.0).round() as u64;
    Some(CaptionText {
        text: words
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        start_ms: ms(words.first()?.start),
        end_ms: ms(words.last()?.end),
    })
}

#[cfg(test)]
mod tests;
