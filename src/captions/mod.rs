//! Live captions: text shown as `partial` while it may still change and as `final` once it
//! will not.
//!
//! ```text
//! SpeechStart ─► the partial decodes from here
//! CaptionWindow (every step) ─► the speech in progress since its start (at most a window)
//!     ─► greedy, context fitted, tokens capped ─► partial (replaces the previous one)
//! Utterance (speech ended, or cut at the length limit)
//!     ─► decoded whole, as the offline transcription decodes (beam, fallback, the finals
//!        before it as prompt) ─► segments judged ─► finals; the partial is cleared
//! ```
//!
//! Finals come from whole utterances, which the voice-activity segmenter cuts at pauses and
//! never overlaps: so they cannot repeat or lose words at a join, silence between sentences
//! is never decoded, and each final is the text the offline transcription would write for
//! that speech. A sliding-window commit policy (LocalAgreement) was built and measured first:
//! words committed from hypotheses of overlapping windows disagreed with the offline text by
//! 16-19 % WER (first words of a sentence guessed alike twice, words lost when their
//! estimated times shifted between windows); decoding the settled utterance gave the same
//! words as the offline transcription. The windows still give a partial every step, so the
//! text appears while it is spoken.
//!
//! Whisper's inventions on silence and noise are kept out three ways: the segmenter only
//! hands over audio the VAD called speech, the decoder's own no-speech rule skips windows
//! the model thinks silent, and each segment is checked (no-speech with low log-probability,
//! repetition by compression ratio, the subtitle phrases Whisper writes over noise when the
//! utterance is short).

pub mod subtitles;

pub use subtitles::{SubtitleError, SubtitleFormat, SubtitleWriter};

use crate::frontend::{CaptionWindow, Utterance};
use crate::whisper::transcribe::{
    AudioCtx, Segment, TranscribeError, TranscribeOptions, Transcriber,
};

/// Committed text given to the decoder as its prompt, at most.
const PROMPT_CHARS: usize = 200;
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

/// How captions are decoded and judged.
#[derive(Clone, Debug, PartialEq)]
pub struct CaptionOptions {
    /// A language code; `None` detects it per utterance (multilingual models).
    pub language: Option<String>,
    /// Beam width of the finals (partials are greedy).
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
}

impl Default for CaptionOptions {
    fn default() -> Self {
        Self {
            language: None,
            beam_size: 5,
            max_no_speech: 0.6,
            min_avg_logprob: -1.0,
            max_compression_ratio: 2.4,
            min_partial_ms: 500,
        }
    }
}

/// Caption text and its time on the audio clock (ms since the stream's first sample).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CaptionText {
    pub text: String,
    pub start_ms: u64,
    pub end_ms: u64,
}

/// Turns speech into partial and final captions.
pub struct Captioner {
    options: CaptionOptions,
    /// Where the speech in progress started (None between utterances).
    speech_start: Option<u64>,
    /// The finals so far, the end of them: the decoder's prompt.
    history: String,
}

impl Captioner {
    pub fn new(options: CaptionOptions) -> Self {
        Self {
            options,
            speech_start: None,
            history: String::new(),
        }
    }

    /// Speech began at `start` (16 kHz samples on the audio clock, pre-roll included).
    pub fn speech_start(&mut self, start: u64) {
        self.speech_start = Some(start);
    }

    /// The partial for the speech in progress, from the window's audio since the speech
    /// began; None when there is no speech in progress, too little of it, or no text.
    pub fn window(
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
        Ok((!text.is_empty()).then(|| CaptionText {
            text,
            start_ms: from / 16,
            end_ms: window.end() / 16,
        }))
    }

    /// The finals of a finished utterance: it is decoded whole, as the offline
    /// transcription would decode it.
    pub fn utterance(
        &mut self,
        transcriber: &Transcriber,
        utterance: &Utterance,
    ) -> Result<Vec<CaptionText>, TranscribeError> {
        self.speech_start = None;
        let options = self.decode_options();
        let segments = transcriber
            .transcribe(&utterance.samples, &options, |_| {})?
            .segments;
        let finals: Vec<CaptionText> = segments
            .iter()
            .filter(|s| self.plausible(s, utterance.samples.len()))
            .map(|s| CaptionText {
                text: s.text.trim().to_string(),
                start_ms: utterance.start / 16 + (s.start * 1000.0) as u64,
                end_ms: (utterance.start / 16 + (s.end * 1000.0) as u64).min(utterance.end / 16),
            })
            .filter(|t| !t.text.is_empty())
            .collect();
        for f in &finals {
            self.remember(&f.text);
        }
        Ok(finals)
    }

    fn decode_options(&self) -> TranscribeOptions {
        TranscribeOptions {
            language: self.options.language.clone(),
            beam_size: self.options.beam_size,
            initial_prompt: (!self.history.is_empty()).then(|| self.history.clone()),
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
            .filter(|s| self.plausible(s, samples))
            .map(|s| s.text.trim())
            .collect();
        kept.join(" ")
    }

    /// Whether a segment is speech that was heard, not text Whisper wrote over silence or
    /// noise, or a decoding loop.
    fn plausible(&self, segment: &Segment, samples: usize) -> bool {
        let o = &self.options;
        let silent =
            segment.no_speech_prob > o.max_no_speech && segment.avg_logprob < o.min_avg_logprob;
        let looping = segment.compression_ratio > o.max_compression_ratio;
        let stock = (samples as u64) < STOCK_PHRASE_MIN_MS * 16
            && STOCK_PHRASES.contains(&normalised(&segment.text).as_str());
        !(silent || looping || stock)
    }
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

    #[test]
    fn stock_phrases_are_normalised() {
        assert_eq!(normalised(" Thank you."), "thank you");
        assert_eq!(normalised("Thanks for watching!"), "thanks for watching");
        assert_eq!(normalised("It's 5 o'clock"), "it's 5 o'clock");
    }
}
