//! The low-latency commit policy: the stream is decoded every caption step, and text
//! becomes final while the speaker goes on.
//!
//! ```text
//! CaptionWindow ─► its new samples and voiced runs added to the stream window
//!   ─► the window decoded (greedy, context fitted): earlier finals as the prompt, the
//!      finals inside the window forced as the decoder's start
//!   ─► hypothesis H (what follows the forced tokens)
//!   ─► final: the longest prefix of H that the previous step's hypothesis agrees with, to a
//!      word's end (LocalAgreement-2), or every segment of H that a pause of `pause_ms`
//!      closes, or all of H once the speech is over
//!   ─► partial: the rest of H
//! ```
//!
//! The forced tokens keep what the settle policy got right: the decoder goes on after the
//! text already final, in the audio around it, so nothing is repeated or dropped at a join
//! and its timestamps cannot go back. The window is trimmed at a final segment's end once
//! it is longer than [`KEEP_SAMPLES`] (the offline loop seeks the same way), which bounds
//! what each step encodes.

use std::ops::Range;

use super::{CaptionOptions, CaptionText, CaptionWord, PARTIAL_TOKENS, PARTIAL_TOKENS_PER_SECOND};
use crate::whisper::transcribe::{
    compression_ratio, AudioCtx, TranscribeError, TranscribeOptions, Transcriber,
};

/// Samples per timestamp step (20 ms).
const TS_SAMPLES: u64 = 320;
/// The window is trimmed at a final segment's end once it holds more than this (8 s): the
/// decoder still hears the sentence before the speech in progress, and each step encodes
/// at most about this much audio more than the speech not yet final.
pub const KEEP_SAMPLES: u64 = 8 * 16_000;
/// Past this the window is made final and started afresh (Whisper hears 30 s at most).
const MAX_WINDOW_SAMPLES: u64 = 28 * 16_000;
/// Audio kept before speech that follows a silence (the decoder hears its onset).
const PREROLL_SAMPLES: u64 = 8_000;
/// Prompt tokens kept (the decoder reads at most half its 448-token context of them).
const PROMPT_TOKENS: usize = 448;
/// A segment end this close before a pause (or inside it) is the end that pause closes:
/// Whisper's timestamps and the VAD's frames differ by a few hundred ms.
const PAUSE_SLACK_SAMPLES: u64 = 5_600;

/// What a step made final and what stays in the partial line.
pub(super) struct Step {
    pub finals: Vec<CaptionText>,
    pub partial: CaptionText,
}

/// The stretch of the stream being decoded, and the text final in it.
pub(super) struct Stream {
    /// First sample of the window, on the audio clock.
    start: u64,
    /// The stream from `start` to the last sample heard.
    audio: Vec<f32>,
    /// Voiced runs heard (audio clock), in order, disjoint.
    voiced: Vec<Range<u64>>,
    /// Tokens final inside the window: timestamps from `start`; may end inside a segment.
    committed: Vec<u32>,
    /// Where the final text ends, on the audio clock.
    committed_end: u64,
    /// Tokens final before the window: the prompt.
    previous: Vec<u32>,
    /// The previous step's hypothesis after `committed` (LocalAgreement's other half).
    last: Vec<u32>,
    /// Voiced audio up to here has been decoded without anything new to show: the next
    /// decode waits for speech after it.
    idle_until: u64,
}

impl Stream {
    pub fn new() -> Self {
        Self {
            start: 0,
            audio: Vec::new(),
            voiced: Vec::new(),
            committed: Vec::new(),
            committed_end: 0,
            previous: Vec::new(),
            last: Vec::new(),
            idle_until: 0,
        }
    }

    /// One past the last sample heard.
    pub fn end(&self) -> u64 {
        self.start + self.audio.len() as u64
    }

    /// Adds the audio `samples` (starting at `from` on the audio clock) beyond what the window
    /// holds, and the voiced runs heard in it. A gap (windows lost while the decoder was
    /// behind) starts the window afresh after the text final so far.
    pub fn hear(&mut self, from: u64, samples: &[f32], voiced: &[Range<u64>]) {
        let to = from + samples.len() as u64;
        if self.audio.is_empty() && self.committed.is_empty() {
            self.start = from.max(self.start);
        }
        if from > self.end() {
            tracing::warn!(
                gap_ms = (from - self.end()) / 16,
                "caption audio lost; the captions start again after it"
            );
            self.retire_all();
            self.audio.clear();
            self.start = from;
            self.last.clear();
        }
        if to > self.end() {
            let skip = (self.end() - from) as usize;
            self.audio.extend_from_slice(&samples[skip..]);
        }
        for run in voiced {
            match self.voiced.last_mut() {
                Some(last) if run.end <= last.end => {}
                Some(last) if run.start <= last.end => last.end = run.end,
                _ => self.voiced.push(run.clone()),
            }
        }
    }

    /// Decodes the window and commits what the policy allows; `speech_over`: the speaker
    /// stopped (an utterance ended, or the stream did), so everything decoded is final.
    pub fn step(
        &mut self,
        transcriber: &Transcriber,
        options: &CaptionOptions,
        speech_over: bool,
    ) -> Result<Step, TranscribeError> {
        let mut step = Step {
            finals: Vec::new(),
            partial: CaptionText::default(),
        };
        let speech_end = self.voiced.last().map_or(0, |r| r.end);
        let new_speech = speech_end > self.idle_until.max(self.committed_end);
        tracing::debug!(
            start_ms = self.start / 16,
            end_ms = self.end() / 16,
            speech_end_ms = speech_end / 16,
            committed_end_ms = self.committed_end / 16,
            idle_until_ms = self.idle_until / 16,
            forced = self.committed.len(),
            waiting = self.last.len(),
            speech_over,
            "caption step"
        );
        if !new_speech && (!speech_over || self.last.is_empty()) {
            self.rest();
            return Ok(step);
        }
        let too_long = self.audio.len() as u64 > MAX_WINDOW_SAMPLES;
        let uncommitted_s = (self.end() - self.committed_end.max(self.start)) / 16_000;
        let opts = TranscribeOptions {
            language: options.language.clone(),
            beam_size: 1,
            best_of: 1,
            audio_ctx: AudioCtx::Fit,
            max_new_tokens: Some(
                PARTIAL_TOKENS + PARTIAL_TOKENS_PER_SECOND * (uncommitted_s as usize + 1),
            ),
            ..TranscribeOptions::default()
        };
        let decoded =
            transcriber.continue_window(&self.audio, &self.previous, &self.committed, &opts)?;
        let plausible = decoded
            .segments
            .iter()
            .chain(&decoded.open)
            .all(|s| options.plausible(s, self.audio.len()));
        let mut hypothesis: Vec<u32> = Vec::new();
        if plausible {
            for segment in decoded.segments.iter().chain(&decoded.open) {
                hypothesis.extend_from_slice(&segment.tokens);
            }
        }
        let tokens = Tokens::new(transcriber);
        // A decoding loop in the new text ("The middle- The middle- ..."): nothing of it is
        // believed (the forced text would hide it from the window-wide check).
        if compression_ratio(&tokens.text(&hypothesis)) > options.max_compression_ratio {
            hypothesis.clear();
        }
        let everything = speech_over || too_long;
        let n = if everything {
            hypothesis.len()
        } else {
            self.agreed(&tokens, &hypothesis).max(self.closed_by_pause(
                &tokens,
                &hypothesis,
                options,
            ))
        };
        if !tokens.has_text(&hypothesis[n..]) && !tokens.has_text(&hypothesis[..n]) {
            self.idle_until = speech_end;
        }
        let mut all = [self.committed.as_slice(), &hypothesis].concat();
        let at = self.committed.len();
        if everything && all.last().is_some_and(|&t| !tokens.is_timestamp(t)) {
            // Closed where the audio ends, so the next decode goes on after it.
            let close = tokens.timestamp(self.audio.len() as u64, &all);
            all.push(close);
        }
        let commit_to = if everything { all.len() } else { at + n };
        let times = Timing {
            tokens: &tokens,
            all: &all,
            start: self.start,
            audio_end: self.end(),
        };
        step.finals = times.captions(at, commit_to);
        if commit_to > at {
            self.committed_end = times.at(commit_to);
        }
        let rest = &all[commit_to..];
        step.partial = CaptionText {
            text: tokens.text(rest),
            start_ms: self.committed_end / 16,
            end_ms: self.end() / 16,
            words: Vec::new(),
        };
        self.committed = all[..commit_to].to_vec();
        self.last = rest.to_vec();
        if everything {
            self.retire_all();
        } else {
            self.trim(&tokens);
        }
        Ok(step)
    }

    /// The prefix of `hypothesis` the previous step's hypothesis agrees with, cut back to
    /// the end of a word: LocalAgreement-2 (two timestamps agree whatever their values; the
    /// newer ones are kept).
    fn agreed(&self, tokens: &Tokens, hypothesis: &[u32]) -> usize {
        let same = hypothesis
            .iter()
            .zip(&self.last)
            .take_while(|(a, b)| a == b || (tokens.is_timestamp(**a) && tokens.is_timestamp(**b)))
            .count();
        tokens.word_end_before(hypothesis, same)
    }

    /// The end of the last segment in `hypothesis` that a pause of `pause_ms` follows (a
    /// pause heard to its end, or the one the audio ends in); all of it when the audio ends
    /// in such a pause.
    fn closed_by_pause(&self, tokens: &Tokens, hypothesis: &[u32], o: &CaptionOptions) -> usize {
        let min = u64::from(o.pause_ms) * 16;
        let from = self.committed_end.max(self.start);
        let mut pauses: Vec<Range<u64>> = self
            .voiced
            .windows(2)
            .map(|w| w[0].end..w[1].start)
            .filter(|gap| gap.end > from && gap.end - gap.start >= min)
            .collect();
        let trailing = self.voiced.last().map_or(self.start, |r| r.end)..self.end();
        if trailing.end - trailing.start >= min && trailing.start > from {
            // A decode that closed its last segment in the pause said all there is; an open
            // one may still be cut mid-word ("f-"): only its closed segments go.
            if hypothesis.last().is_some_and(|&t| tokens.is_timestamp(t)) {
                return hypothesis.len();
            }
            pauses.push(trailing);
        }
        let mut n = 0;
        let mut before = self.committed.last().copied();
        for (i, &t) in hypothesis.iter().enumerate() {
            let closes = tokens.is_timestamp(t) && before.is_some_and(|b| !tokens.is_timestamp(b));
            before = Some(t);
            if !closes {
                continue;
            }
            let end = self.start + tokens.steps(t) * TS_SAMPLES;
            if pauses
                .iter()
                .any(|p| end + PAUSE_SLACK_SAMPLES >= p.start && end <= p.end)
            {
                n = i + 1;
            }
        }
        n
    }

    /// Nothing new was said: once no text waits to be made final, the final text leaves
    /// the window, and the silence before the next speech is dropped but for its last
    /// moment.
    fn rest(&mut self) {
        if !self.last.is_empty() {
            return;
        }
        let committed = std::mem::take(&mut self.committed);
        self.push_previous(&committed);
        let keep_from = self.end().saturating_sub(PREROLL_SAMPLES).max(self.start);
        self.audio.drain(..(keep_from - self.start) as usize);
        self.start = keep_from;
        self.committed_end = self.committed_end.max(keep_from);
        self.voiced.retain(|r| r.end > keep_from);
    }

    /// Moves the window on to the end of its last final segment once it holds more than
    /// [`KEEP_SAMPLES`]; the segments before become the prompt.
    fn trim(&mut self, tokens: &Tokens) {
        if (self.audio.len() as u64) <= KEEP_SAMPLES {
            return;
        }
        let Some(cut) = (1..self.committed.len()).rev().find(|&i| {
            tokens.is_timestamp(self.committed[i]) && !tokens.is_timestamp(self.committed[i - 1])
        }) else {
            return;
        };
        let steps = tokens.steps(self.committed[cut]);
        let rest = self.committed.split_off(cut + 1);
        let retired = std::mem::replace(&mut self.committed, rest);
        self.push_previous(&retired);
        let shift = |t: &mut u32| {
            if tokens.is_timestamp(*t) {
                *t = tokens.timestamp_begin + tokens.steps(*t).saturating_sub(steps) as u32;
            }
        };
        self.committed.iter_mut().for_each(shift);
        self.last.iter_mut().for_each(shift);
        let new_start = (self.start + steps * TS_SAMPLES).min(self.end());
        self.audio.drain(..(new_start - self.start) as usize);
        self.start = new_start;
        self.voiced.retain(|r| r.end > new_start);
    }

    /// All final text leaves the window and becomes the prompt.
    fn retire_all(&mut self) {
        let committed = std::mem::take(&mut self.committed);
        self.push_previous(&committed);
        self.last.clear();
        let end = self.end();
        self.audio.clear();
        self.start = end;
        self.committed_end = self.committed_end.max(end);
    }

    fn push_previous(&mut self, tokens: &[u32]) {
        self.previous.extend_from_slice(tokens);
        let excess = self.previous.len().saturating_sub(PROMPT_TOKENS);
        self.previous.drain(..excess);
    }
}

/// What the policy needs to know of tokens.
struct Tokens<'a> {
    transcriber: &'a Transcriber,
    timestamp_begin: u32,
}

impl<'a> Tokens<'a> {
    fn new(transcriber: &'a Transcriber) -> Self {
        Self {
            transcriber,
            timestamp_begin: transcriber.tokenizer.special().timestamp_begin,
        }
    }

    fn is_timestamp(&self, t: u32) -> bool {
        t >= self.timestamp_begin
    }

    /// A timestamp's 20 ms steps from the window's start.
    fn steps(&self, t: u32) -> u64 {
        u64::from(t - self.timestamp_begin)
    }

    /// The timestamp for `samples` from the window's start, never before the last one in
    /// `before` (timestamps may not go back) nor past 30 s.
    fn timestamp(&self, samples: u64, before: &[u32]) -> u32 {
        let last = before
            .iter()
            .rev()
            .find(|&&t| self.is_timestamp(t))
            .map_or(0, |&t| self.steps(t));
        let steps = (samples / TS_SAMPLES).clamp(last, 1500);
        self.timestamp_begin + steps as u32
    }

    fn has_text(&self, tokens: &[u32]) -> bool {
        tokens.iter().any(|&t| !self.is_timestamp(t))
    }

    /// The text of the text tokens in `tokens`, trimmed.
    fn text(&self, tokens: &[u32]) -> String {
        let text: Vec<u32> = tokens
            .iter()
            .copied()
            .filter(|&t| !self.is_timestamp(t))
            .collect();
        self.transcriber.tokenizer.decode(&text).trim().to_string()
    }

    /// Whether `t` begins a word (a timestamp, or text that starts with a space).
    fn starts_word(&self, t: u32) -> bool {
        self.is_timestamp(t) || self.transcriber.tokenizer.decode(&[t]).starts_with(' ')
    }

    /// The largest `n <= at` such that `tokens[..n]` ends at the end of a word: the token
    /// after it starts a new word, or is a timestamp. All of `tokens` ends at a word's end
    /// only when it ends with a timestamp (the audio may go on with more of the last word).
    fn word_end_before(&self, tokens: &[u32], at: usize) -> usize {
        let mut n = at;
        if n == tokens.len() {
            if n == 0 || self.is_timestamp(tokens[n - 1]) {
                return n;
            }
            n -= 1;
        }
        while n > 0 && !self.starts_word(tokens[n]) {
            n -= 1;
        }
        n
    }
}

/// Times on the audio clock for the positions of a window's tokens: a timestamp's own, and
/// inside a segment shared out by characters between its timestamps (an open segment
/// ends where the audio does).
struct Timing<'a> {
    tokens: &'a Tokens<'a>,
    all: &'a [u32],
    start: u64,
    audio_end: u64,
}

impl Timing<'_> {
    /// The time of the boundary before `all[k]` (after `all[k - 1]`).
    fn at(&self, k: usize) -> u64 {
        let tk = self.tokens;
        let ts = |t: u32| (self.start + tk.steps(t) * TS_SAMPLES).min(self.audio_end);
        if k > 0 && tk.is_timestamp(self.all[k - 1]) {
            return ts(self.all[k - 1]);
        }
        let open = (0..k).rev().find(|&i| tk.is_timestamp(self.all[i]));
        let close = (k..self.all.len()).find(|&i| tk.is_timestamp(self.all[i]));
        let from = open.map_or(self.start, |i| ts(self.all[i]));
        let to = close.map_or(self.audio_end, |i| ts(self.all[i])).max(from);
        let first = open.map_or(0, |i| i + 1);
        let chars = |r: Range<usize>| tk.transcriber.tokenizer.decode(&self.all[r]).len();
        let total = chars(first..close.unwrap_or(self.all.len())).max(1);
        from + (to - from) * chars(first..k) as u64 / total as u64
    }

    /// The captions of `all[from..to]`: one per segment piece, with its words' times.
    fn captions(&self, from: usize, to: usize) -> Vec<CaptionText> {
        let tk = self.tokens;
        let mut out = Vec::new();
        let mut piece_start = from;
        for k in from..=to {
            let closes = k == to
                || (k > 0 && tk.is_timestamp(self.all[k - 1]) && !tk.is_timestamp(self.all[k]));
            if !closes || k == piece_start {
                continue;
            }
            let words = self.words(piece_start, k);
            if let (Some(first), Some(last)) = (words.first(), words.last()) {
                out.push(CaptionText {
                    text: tk.text(&self.all[piece_start..k]),
                    start_ms: first.start_ms,
                    end_ms: last.end_ms,
                    words,
                });
            }
            piece_start = k;
        }
        out
    }

    /// The words of `all[from..to]`, each from where its first token starts to where the
    /// next word (or timestamp) begins.
    fn words(&self, from: usize, to: usize) -> Vec<CaptionWord> {
        let tk = self.tokens;
        let starts: Vec<usize> = (from..to)
            .filter(|&i| {
                let after_timestamp = i == from || tk.is_timestamp(self.all[i - 1]);
                !tk.is_timestamp(self.all[i]) && (after_timestamp || tk.starts_word(self.all[i]))
            })
            .collect();
        starts
            .iter()
            .enumerate()
            .filter_map(|(n, &s)| {
                let end = starts.get(n + 1).copied().unwrap_or(to);
                let end = (s..end)
                    .find(|&i| tk.is_timestamp(self.all[i]))
                    .unwrap_or(end);
                let word = tk.text(&self.all[s..end]);
                (!word.is_empty()).then(|| CaptionWord {
                    word,
                    start_ms: self.at(s) / 16,
                    end_ms: self.at(end) / 16,
                })
            })
            .collect()
    }
}
