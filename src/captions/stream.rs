//! The low-latency commit policy: the stream is decoded every caption step, and text
//! becomes final while the speaker goes on.
//!
//! ```text
//! CaptionWindow ─► its new samples and voiced runs added to the stream window
//!   ─► the window decoded (beam search as offline, context fitted): earlier finals as
//!      the prompt, the finals inside the window forced as the decoder's start
//!   ─► hypothesis H (what follows the forced tokens)
//!   ─► H cut where it starts to loop ("Basil Paris Basil Paris"), where it says recent
//!      final text again up to its end or its own (the decoder went back over audio it has
//!      transcribed; a phrase said again that goes on otherwise is speech), and less
//!      the words at its start that the final text ends with; its timestamps no later
//!      than the audio's end
//!   ─► final (`Commit::Agreement`): the longest prefix of H that the previous step's
//!      hypothesis agrees with, to a word's end (LocalAgreement-2), but not a word either
//!      hypothesis ended with while the voice went on (it may go on past the audio heard:
//!      "f" + "fine"), nor a word cut short ("f-", "f-f") or the word before one; at a
//!      speech end also every segment H closes; after 2 s of silence, or when the stream
//!      ends, all of H but a last word cut short
//!   ─► final (`Commit::AlignAtt`): H up to the last word the decoder heard (argmax of its
//!      cross-attention on the alignment heads, smoothed over neighbouring tokens) at least
//!      0.5 s before the end of the audio, or before the voice stopped once the speech is
//!      over; not a last word cut short ("f-"); text heard well before the final text's end
//!      (said again) is dropped
//!   ─► partial: the rest of H
//! ```
//!
//! With AlignAtt the window can also be cut at a final word, not only at a final segment's
//! end: the words after the cut stay forced, after a timestamp that opens the segment again.
//!
//! The forced tokens keep what the settle policy got right: the decoder goes on after the
//! text already final, in the audio around it, so nothing is repeated or dropped at a join
//! and its timestamps cannot go back. The window keeps its audio over pauses shorter than
//! 2 s (the decoder hears the next sentence after the last one, as offline); it is
//! trimmed at a final segment's end once it is longer than [`KEEP_SAMPLES`] (the offline
//! loop seeks the same way), preferably one that final text follows, which bounds what
//! each step encodes. A window that holds final text is never judged silent, and a segment
//! the speech end closes stays open in it: a timestamp forced at the audio's end left the
//! decoder nothing to say after it.

use std::ops::Range;

use super::{
    CaptionOptions, CaptionText, CaptionWord, Commit, PARTIAL_TOKENS, PARTIAL_TOKENS_PER_SECOND,
};
use crate::whisper::transcribe::{
    compression_ratio, AudioCtx, TranscribeError, TranscribeOptions, Transcriber,
};

/// Samples per timestamp step (20 ms).
const TS_SAMPLES: u64 = 320;
/// Unvoiced audio this long (150 ms, five VAD frames) at the end of the audio heard: the
/// last word was heard to its end.
const STOPPED_SAMPLES: u64 = 2_400;
/// AlignAtt: a token the decoder heard this close to the end of the audio (0.5 s) is not
/// final yet: its word may go on past the end, or not have been said at all.
const ALIGN_MARGIN_SAMPLES: u64 = 8_000;
/// New text heard this far (1 s) before the end of the final text is said again: the
/// decoder went back over audio whose text is final.
const REPEAT_SLACK_SAMPLES: u64 = 16_000;
/// Text tokens in a row that, found again in the window's final text, mean the decoder
/// says it again (four: "the invention of" may well be said twice in a window).
const REPEAT_TOKENS: usize = 4;
/// Tokens of the final text before the window that a decode may say again (the audio of
/// a sentence or so before the window's start may still be heard at its start).
const RECENT_TOKENS: usize = 40;
/// The most words a decode may say again at its start, after the final text.
const JOIN_WORDS: usize = 5;
/// The most words a decode may hear otherwise before it says the final text's end again
/// ([`words_said_again`]).
const MISHEARD_WORDS: usize = 2;
/// Voice this long (1 s) after the final text that a decode going on from it hears
/// nothing in: the decoder is stuck on the end it was given, and the window starts again
/// after the final text.
const STUCK_VOICE_SAMPLES: u64 = 16_000;
/// Whole words that must agree after a word two steps spell differently before that word
/// is let pass ([`past_disputed_word`]).
const AGREED_PAST_WORDS: usize = 2;
/// Final audio the window keeps before the speech in progress when it is cut at a word
/// (3 s): the sentence around the words the decoder goes on from.
const CONTEXT_SAMPLES: u64 = 48_000;
/// A window cut at a word starts this much (80 ms) before the decoder heard it.
const CUT_MARGIN_SAMPLES: u64 = 1_280;
/// The window is trimmed at a final segment's end once it holds more than this (8 s): the
/// decoder still hears the sentence before the speech in progress, and each step encodes
/// at most about this much audio more than the speech not yet final.
pub const KEEP_SAMPLES: u64 = 8 * 16_000;
/// The least audio a window cut at its last final segment's end keeps after the cut (3 s).
const AFTER_CUT_SAMPLES: u64 = 3 * 16_000;
/// Past this the window is made final and started afresh (Whisper hears 30 s at most).
const MAX_WINDOW_SAMPLES: u64 = 28 * 16_000;
/// A silence this long (2 s) ends the window: what follows is decoded afresh, after the
/// final text as its prompt (a shorter pause stays in the window, as the offline loop
/// hears it).
const SILENCE_SAMPLES: u64 = 32_000;
/// Audio kept before speech that follows a silence (the decoder hears its onset).
const PREROLL_SAMPLES: u64 = 8_000;
/// Prompt tokens kept (the decoder reads at most half its 448-token context of them).
const PROMPT_TOKENS: usize = 448;
/// A segment end this close before a pause (or inside it) is the end that pause closes:
/// Whisper's timestamps and the VAD's frames differ by a few hundred ms.
const PAUSE_SLACK_SAMPLES: u64 = 5_600;
/// A voiced run that a shown sentence ended in, this little (1 s) before the run's end, is
/// that sentence's voice: Whisper may close a sentence early, not while its speaker goes on
/// for long.
const OWN_VOICE_MS: u64 = 1_000;
/// Voiced runs this close (300 ms) are one stretch of voice: the VAD's frames part words,
/// and the words of a phrase.
const VOICE_GAP_MS: u64 = 300;
/// A stretch of voice shorter than this (100 ms) is a click or a breath, not a word.
const MIN_VOICE_MS: u64 = 100;

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
    /// Where each of `committed` was heard (audio clock), when the decoder said so
    /// (`Commit::AlignAtt`); empty otherwise.
    heard_at: Vec<u64>,
    /// Where the final text ends, on the audio clock.
    committed_end: u64,
    /// Tokens final before the window: the prompt.
    previous: Vec<u32>,
    /// The previous step's hypothesis after `committed` (LocalAgreement's other half).
    last: Vec<u32>,
    /// The end of the audio `last` was decoded from (audio clock).
    last_end: u64,
    /// Voiced audio up to here has been decoded without anything new to show: the next
    /// decode waits for speech after it.
    idle_until: u64,
    /// Where the finals shown so far end (ms), and whether the last closed its sentence.
    shown: ShownEnd,
}

/// The end of the finals shown so far (audio clock, ms).
#[derive(Clone, Copy, Debug, PartialEq)]
struct ShownEnd {
    at_ms: u64,
    /// The last final ended its segment (the decoder closed the sentence), or there is
    /// none: the next starts a sentence.
    closed: bool,
}

impl Default for ShownEnd {
    fn default() -> Self {
        Self {
            at_ms: 0,
            closed: true,
        }
    }
}

impl Stream {
    pub fn new() -> Self {
        Self {
            start: 0,
            audio: Vec::new(),
            voiced: Vec::new(),
            committed: Vec::new(),
            heard_at: Vec::new(),
            committed_end: 0,
            previous: Vec::new(),
            last: Vec::new(),
            last_end: 0,
            idle_until: 0,
            shown: ShownEnd::default(),
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
    /// stopped (an utterance ended, or the stream did), so every segment the decoder closed
    /// is final (with AlignAtt, everything heard); `stream_over`: the stream ended, so
    /// everything decoded is final.
    pub fn step(
        &mut self,
        transcriber: &Transcriber,
        options: &CaptionOptions,
        speech_over: bool,
        stream_over: bool,
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
        // A silence of [`SILENCE_SAMPLES`] after text that waits: the speaker finished it.
        let silence_over = !new_speech && self.end() >= speech_end + SILENCE_SAMPLES;
        if !new_speech && (!(speech_over || silence_over) || self.last.is_empty()) {
            self.rest();
            return Ok(step);
        }
        let stream_over = stream_over || silence_over;
        let align = options.commit == Commit::AlignAtt;
        let tokens = Tokens::new(transcriber);
        let too_long = self.audio.len() as u64 > MAX_WINDOW_SAMPLES;
        let forced_text = tokens.has_text(&self.committed);
        // The window goes on with final text: it holds some, or starts inside the voice
        // whose text it goes on with.
        let goes_on = forced_text || self.starts_in_voice();
        let uncommitted_s = (self.end() - self.committed_end.max(self.start)) / 16_000;
        let opts = TranscribeOptions {
            language: options.language.clone(),
            // The offline transcription's beam: decoded greedily, the caption recordings
            // lose 0.1-2.1 points of WER offline, and so did the greedy stream.
            beam_size: options.beam_size,
            best_of: 1,
            audio_ctx: AudioCtx::Fit,
            max_new_tokens: Some(
                PARTIAL_TOKENS + PARTIAL_TOKENS_PER_SECOND * (uncommitted_s as usize + 1),
            ),
            alignment: align,
            interrupt: options.interrupt.clone(),
            // The window may start with audio whose text is final, or silence: the first
            // timestamp may fall where the voice not yet final starts (Whisper's rule of at
            // most 1 s pulled the whole decode's timestamps that much early).
            max_initial_timestamp: (self.voice_from() - self.start) as f32 / 16_000.0
                + TranscribeOptions::default().max_initial_timestamp,
            // No fallback to sampling: a sampled decode seldom agrees with the next step's,
            // and each fallback is one more decode of the window in the same step.
            temperatures: vec![0.0],
            // A window that goes on with final text is not silence, whatever its start
            // sounds like (tiny.en gave "Subiaco near Rome and used ..." a no-speech
            // probability of 0.82 in a window cut inside that voice).
            no_speech_threshold: if goes_on {
                None
            } else {
                TranscribeOptions::default().no_speech_threshold
            },
            ..TranscribeOptions::default()
        };
        let decoded =
            transcriber.continue_window(&self.audio, &self.previous, &self.committed, &opts)?;
        // A decode that loops is not thrown away here: the loop is cut below, and what is
        // left before it is believed as much as any other decode.
        let plausible = decoded
            .segments
            .iter()
            .chain(&decoded.open)
            .all(|s| goes_on || !options.invented(s, self.audio.len()));
        let mut hypothesis: Vec<u32> = Vec::new();
        if plausible {
            for segment in decoded.segments.iter().chain(&decoded.open) {
                hypothesis.extend_from_slice(&segment.tokens);
            }
        }
        let heard_text = tokens.text(&hypothesis);
        // A decoding loop in the new text ("The middle- The middle- ..."): it is cut where it
        // starts to repeat; what still compresses too well is not believed at all (the
        // forced text would hide it from the window-wide check). A loop may start in the
        // final text: a sentence said again after it ("... the big ones outside. The big
        // ones outside.", the decoder hearing the silence after).
        let said =
            tokens.units(&self.committed[self.committed.len().saturating_sub(RECENT_TOKENS)..]);
        let new = tokens.units(&hypothesis);
        let words: Vec<&str> = said.iter().chain(&new).map(|(w, _)| w.as_str()).collect();
        if let Some(k) = loop_start(&words, said.len()) {
            hypothesis.truncate(new[k - said.len()].1.start);
        }
        // Recent final text said again: the decoder went back over audio it has
        // transcribed ("It is printed in letters ... The first book is printed in letters
        // ..."), in the window or, a longer run, just before its start (a phrase may well
        // come twice in a paragraph). It is cut from the start of its segment.
        let recent = &self.previous[self.previous.len().saturating_sub(RECENT_TOKENS)..];
        let again = tokens
            .repeat_start(&self.committed, &hypothesis, REPEAT_TOKENS)
            .min(tokens.repeat_start(recent, &hypothesis, 2 * REPEAT_TOKENS));
        hypothesis.truncate(again);
        // The words the final text ends with, said again at the start ("for you for you"):
        // the audio before the window's start held the end of a final word.
        let said: Vec<u32> = [self.previous.as_slice(), &self.committed].concat();
        let again = tokens.said_again(&said, &hypothesis);
        hypothesis.drain(again);
        // Whisper may put a timestamp past the end of the audio it heard; the text's end
        // is where the audio ends, so the window is never cut past speech not yet final.
        let audio_end = tokens.timestamp(self.audio.len() as u64, &[]);
        for t in hypothesis.iter_mut().filter(|t| tokens.is_timestamp(**t)) {
            *t = (*t).min(audio_end);
        }
        let decoded_text = tokens.has_text(&hypothesis);
        if compression_ratio(&tokens.text(&hypothesis)) > options.max_compression_ratio {
            hypothesis.clear();
        }
        // Where each new token was heard, on the audio clock (AlignAtt only).
        let heard: Vec<u64> = match decoded.frames.get(self.committed.len()..) {
            Some(frames) if align && frames.len() >= hypothesis.len() => {
                let heard: Vec<u64> = frames[..hypothesis.len()]
                    .iter()
                    .map(|&f| (self.start + u64::from(f) * TS_SAMPLES).min(self.end()))
                    .collect();
                tokens.smooth(&hypothesis, &heard)
            }
            _ => Vec::new(),
        };
        if align {
            // Text heard well before the end of the final text says it again: it and all
            // after it are dropped.
            let back = self.committed_end.saturating_sub(REPEAT_SLACK_SAMPLES);
            if let Some(i) =
                (0..heard.len()).find(|&i| !tokens.is_timestamp(hypothesis[i]) && heard[i] < back)
            {
                hypothesis.truncate(i);
            }
        }
        let everything = stream_over || too_long || (align && speech_over);
        let n = match (align, everything) {
            (true, _) => self.heard_in_time(&tokens, &hypothesis, &heard, speech_over || too_long),
            (false, true) => hypothesis.len(),
            (false, false) => {
                let agreed = self.agreed(&tokens, &hypothesis);
                let paused = self.closed_by_pause(&tokens, &hypothesis, options);
                // At a speech end the segments the decoder closed are final; text after
                // the last one (a sentence's first word, "The") waits for the speech
                // that goes on with it.
                let closed = if speech_over {
                    tokens.closed_prefix(&hypothesis)
                } else {
                    0
                };
                agreed.max(paused).max(closed)
            }
        };
        if everything {
            // What comes after is not believed: no more speech will confirm it; nor is a
            // last word cut short ("f-", "And..."): the speaker stopped before it.
            hypothesis.truncate(n);
            while tokens.ends_cut(&hypothesis) {
                let word = tokens.word_start_at(&hypothesis, hypothesis.len() - 1);
                hypothesis.truncate(word);
            }
        }
        let n = n.min(hypothesis.len());
        // Bound to go on after final text that closed a sentence, the decoder may hear
        // nothing more for seconds while the speaker goes on ("... helps you sleep." and
        // then nothing while "try it for a week" was said): that voice is heard again in
        // a window of its own, after the final text as its prompt.
        let stuck = !decoded_text
            && plausible
            && forced_text
            && self.voice_after(self.committed_end) >= STUCK_VOICE_SAMPLES;
        if !decoded_text && plausible && !stuck {
            // The decoder heard nothing here (a loop it was cut from is not nothing: that
            // audio is decoded again with what follows).
            self.idle_until = speech_end;
        }
        tracing::debug!(
            forced = %tokens.text(&self.committed),
            committed = %tokens.text(&hypothesis[..n]),
            rest = %tokens.text(&hypothesis[n..]),
            decoded = %heard_text,
            plausible,
            everything,
            "caption hypothesis"
        );
        let mut all = [self.committed.as_slice(), &hypothesis].concat();
        let mut all_heard = [self.heard_at.as_slice(), &heard].concat();
        let at = self.committed.len();
        if too_long && all.last().is_some_and(|&t| !tokens.is_timestamp(t)) {
            // Closed where the audio ends, so the next window starts after it. (A window
            // that goes on keeps its last segment open: a timestamp at the end of the audio
            // may fall inside a word the speaker goes on with, and the decoder, bound to go
            // on after it, would hear nothing more.)
            let close = tokens.timestamp(self.audio.len() as u64, &all);
            all.push(close);
            all_heard.push(self.end());
        }
        let commit_to = if everything { all.len() } else { at + n };
        let times = Timing {
            tokens: &tokens,
            all: &all,
            heard: (all_heard.len() == all.len()).then_some(all_heard.as_slice()),
            start: self.start,
            audio_end: self.end(),
        };
        let voiced_ms: Vec<Range<u64>> = self
            .voiced
            .iter()
            .map(|r| r.start / 16..r.end / 16)
            .collect();
        let heard_ms = self.end() / 16;
        step.finals = fit_to_voice(
            times.captions(at, commit_to),
            &voiced_ms,
            &mut self.shown,
            heard_ms,
        );
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
        self.heard_at = if times.heard.is_some() {
            all_heard[..commit_to].to_vec()
        } else {
            Vec::new()
        };
        self.last = rest.to_vec();
        self.last_end = self.end();
        if too_long || stuck {
            self.start_after_final();
        } else {
            // The window keeps the speech that was just made final, pauses included: the
            // decoder hears the next sentence after it, as the offline loop does.
            self.trim(&tokens);
        }
        Ok(step)
    }

    /// How much voice the window holds after `from` (audio clock).
    fn voice_after(&self, from: u64) -> u64 {
        self.voiced
            .iter()
            .map(|r| r.end.saturating_sub(r.start.max(from)))
            .sum()
    }

    /// Whether the window starts inside a voiced run: it was cut while the speaker went on.
    fn starts_in_voice(&self) -> bool {
        self.voiced
            .iter()
            .any(|r| r.start < self.start && r.end > self.start)
    }

    /// Where the voice whose text is not final yet starts in the window: the first voiced
    /// run that goes on past the final text; the window's end when there is none.
    fn voice_from(&self) -> u64 {
        let from = self.committed_end.max(self.start);
        self.voiced
            .iter()
            .find(|r| r.end > from)
            .map_or(self.end(), |r| r.start.clamp(self.start, self.end()))
    }

    /// AlignAtt: the prefix of `hypothesis` the decoder heard far enough before the end of
    /// the audio, to a word's end. A token heard within [`ALIGN_MARGIN_SAMPLES`] of the end
    /// may be a word the audio cuts, or one it has not said yet; the word holding it waits.
    /// When the speech is over, the end is where the voice stopped: words heard in the
    /// silence after it are inventions. A last word cut short ("f-", "middle-", "…") waits
    /// too, unless the speech is over.
    fn heard_in_time(
        &self,
        tokens: &Tokens,
        hypothesis: &[u32],
        heard: &[u64],
        speech_over: bool,
    ) -> usize {
        if heard.len() != hypothesis.len() {
            return 0;
        }
        // Heard at the very end: the decoder listened past the audio (nothing there).
        let end = self.end().saturating_sub(2 * TS_SAMPLES);
        let horizon = match self.voiced.last() {
            Some(r) if speech_over && r.end > self.start => (r.end + ALIGN_MARGIN_SAMPLES).min(end),
            _ if speech_over => end,
            _ => self.end().saturating_sub(ALIGN_MARGIN_SAMPLES),
        };
        // After the last text token heard in time (a short word listening elsewhere
        // before it does not hold the words around it back).
        let Some(last) = (0..hypothesis.len())
            .rev()
            .find(|&i| !tokens.is_timestamp(hypothesis[i]) && heard[i] < horizon)
        else {
            return 0;
        };
        let mut n = match hypothesis.get(last + 1) {
            Some(&t) if !tokens.starts_word(t) => tokens.word_start_at(hypothesis, last + 1),
            Some(_) => last + 1,
            None if speech_over => hypothesis.len(),
            None => tokens.word_end_before(hypothesis, hypothesis.len()),
        };
        while !speech_over && n > 0 && tokens.ends_cut(&hypothesis[..n]) {
            n = tokens.word_start_at(hypothesis, n - 1);
        }
        n
    }

    /// The prefix of `hypothesis` the previous step's hypothesis agrees with, cut back to
    /// the end of a word: LocalAgreement-2 (two timestamps agree whatever their values; the
    /// newer ones are kept), letting pass a word the two spell differently when the words
    /// after it agree.
    fn agreed(&self, tokens: &Tokens, hypothesis: &[u32]) -> usize {
        // `hypothesis[..same]` agrees with `self.last[..last_same]`; from the last word let
        // pass on, token by token.
        let mut same = tokens.same_prefix(hypothesis, &self.last);
        let mut last_same = same;
        while let Some(past) = tokens.past_disputed_word(hypothesis, &self.last, same, last_same) {
            (same, last_same) = past;
        }
        // A hypothesis's last word may go on past the end of the audio it heard ("f", then
        // "fine"): two steps agreeing on it say nothing until both heard more audio after
        // it, or the voice stop.
        let last_whole = self.heard_whole(tokens, &self.last, self.last_end);
        let mut n = tokens
            .word_end_before(hypothesis, same)
            .min((last_whole + same).saturating_sub(last_same))
            .min(self.heard_whole(tokens, hypothesis, self.end()));
        // A word cut short ("f-") both times is still cut: it waits for the audio after it;
        // so does the word before one ("per f-f-f" for "perfection": the decoder may have
        // split a word it did not hear whole).
        let next_cut = |n: usize| {
            let end = (n + 1..hypothesis.len())
                .find(|&i| tokens.starts_word(hypothesis[i]))
                .unwrap_or(hypothesis.len());
            n < end && tokens.ends_cut(&hypothesis[n..end])
        };
        if n > 0 && next_cut(n) {
            n = tokens.word_start_at(hypothesis, n - 1);
        }
        while n > 0 && tokens.ends_cut(&hypothesis[..n]) {
            n = tokens.word_start_at(hypothesis, n - 1);
        }
        n
    }

    /// The prefix of `hypothesis` (decoded from the audio up to `heard_to`) whose words
    /// were heard to their end: all of it when the voice had stopped [`STOPPED_SAMPLES`]
    /// before `heard_to`, or when a timestamp closes it that long before; else all but its
    /// last word (a timestamp at the audio's end says only that the audio ends there).
    fn heard_whole(&self, tokens: &Tokens, hypothesis: &[u32], heard_to: u64) -> usize {
        let before = heard_to.saturating_sub(STOPPED_SAMPLES);
        let voice_stopped = !self
            .voiced
            .iter()
            .any(|r| r.end > before && r.start < heard_to);
        let text_end = hypothesis
            .iter()
            .rposition(|&t| !tokens.is_timestamp(t))
            .map_or(0, |i| i + 1);
        let closed_in_time = hypothesis[text_end..]
            .first()
            .is_some_and(|&t| self.start + tokens.steps(t) * TS_SAMPLES <= before);
        if text_end == 0 || voice_stopped || closed_in_time {
            hypothesis.len()
        } else {
            tokens.word_start_at(hypothesis, text_end - 1)
        }
    }

    /// The end of the last segment in `hypothesis` that a pause of `pause_ms` follows (a
    /// pause heard to its end, or the one the audio ends in); all of it when the audio ends
    /// in such a pause.
    fn closed_by_pause(&self, tokens: &Tokens, hypothesis: &[u32], o: &CaptionOptions) -> usize {
        if o.pause_ms == 0 {
            return 0;
        }
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

    /// Nothing new was said: once no text waits to be made final and the silence has
    /// lasted [`SILENCE_SAMPLES`], the final text leaves the window, and the silence
    /// before the next speech is dropped but for its last moment.
    fn rest(&mut self) {
        let voice_end = self.voiced.last().map_or(self.start, |r| r.end);
        if !self.last.is_empty() || self.end() < voice_end + SILENCE_SAMPLES {
            return;
        }
        let committed = std::mem::take(&mut self.committed);
        self.push_previous(&committed);
        self.heard_at.clear();
        let keep_from = self.end().saturating_sub(PREROLL_SAMPLES).max(self.start);
        self.audio.drain(..(keep_from - self.start) as usize);
        self.start = keep_from;
        self.committed_end = self.committed_end.max(keep_from);
        self.voiced.retain(|r| r.end > keep_from);
    }

    /// Moves the window on once it holds more than [`KEEP_SAMPLES`]: to the end of its last
    /// final segment (the offline loop seeks so), or else, when the decoder said where it
    /// heard each final word, to the start of the first final word of the last
    /// [`CONTEXT_SAMPLES`] (the text before becomes the prompt, the words after stay forced:
    /// the decoder goes on after them without hearing the sentence from its start).
    fn trim(&mut self, tokens: &Tokens) {
        if (self.audio.len() as u64) <= KEEP_SAMPLES {
            return;
        }
        let c = &self.committed;
        // Preferably not at the end of the last final segment: Whisper's timestamps may
        // end a segment before its last word does, and that word would be heard again
        // after the cut. Final text that stays forced after the cut makes the decoder go
        // on after it whatever the audio before holds.
        let closes = |i: usize| tokens.is_timestamp(c[i]) && !tokens.is_timestamp(c[i - 1]);
        // Without final text after it, a cut leaves the decoder only the audio after the
        // cut to start a sentence from: at least [`AFTER_CUT_SAMPLES`] of it (with less, it
        // heard nothing, or the prompt's words again, and the words there were lost).
        let room = |i: usize| {
            let at = self.start + tokens.steps(c[i]) * TS_SAMPLES;
            self.end() >= at + AFTER_CUT_SAMPLES
        };
        let cut = (1..c.len())
            .rev()
            .find(|&i| closes(i) && tokens.has_text(&c[i..]))
            .or_else(|| (1..c.len()).rev().find(|&i| closes(i) && room(i)));
        if let Some(cut) = cut {
            self.move_on(tokens, cut + 1, tokens.steps(c[cut]), false);
            return;
        }
        if self.heard_at.len() != c.len() {
            return;
        }
        let keep_from = self.committed_end.saturating_sub(CONTEXT_SAMPLES);
        let Some(j) = (1..c.len()).find(|&j| {
            !tokens.is_timestamp(c[j]) && tokens.starts_word(c[j]) && self.heard_at[j] >= keep_from
        }) else {
            return;
        };
        let cut = self.heard_at[j]
            .saturating_sub(CUT_MARGIN_SAMPLES)
            .max(self.start);
        let steps = (cut - self.start) / TS_SAMPLES;
        if steps > 0 {
            self.move_on(tokens, j, steps, true);
        }
    }

    /// Starts the window `steps` timestamp steps later; `committed[..retire]` becomes the
    /// prompt and the timestamps after are shifted. `reopen`: the window now starts inside a
    /// segment, which is opened at its start.
    fn move_on(&mut self, tokens: &Tokens, retire: usize, steps: u64, reopen: bool) {
        let mut rest = self.committed.split_off(retire);
        let retired = std::mem::take(&mut self.committed);
        self.push_previous(&retired);
        let heard_rest = self.heard_at.split_off(retire.min(self.heard_at.len()));
        let shift = |t: &mut u32| {
            if tokens.is_timestamp(*t) {
                *t = tokens.timestamp_begin + tokens.steps(*t).saturating_sub(steps) as u32;
            }
        };
        rest.iter_mut().for_each(shift);
        self.last.iter_mut().for_each(shift);
        let new_start = (self.start + steps * TS_SAMPLES).min(self.end());
        self.heard_at = heard_rest;
        if reopen {
            rest.insert(0, tokens.timestamp_begin);
            if !self.heard_at.is_empty() {
                self.heard_at.insert(0, new_start);
            }
        }
        self.committed = rest;
        self.audio.drain(..(new_start - self.start) as usize);
        self.start = new_start;
        self.voiced.retain(|r| r.end > new_start);
    }

    /// The window, too long to go on, starts again where its final text ends: the final
    /// text becomes the prompt, and the audio after it stays (at most [`KEEP_SAMPLES`] of
    /// it). A decode may end before the speech does ("... with ugly ones." and nothing for
    /// the next 2 s of voice): that speech is heard again, not lost.
    fn start_after_final(&mut self) {
        let keep_from = self
            .committed_end
            .max(self.end().saturating_sub(KEEP_SAMPLES));
        self.retire_before(keep_from);
    }

    /// All final text leaves the window and becomes the prompt; so does the audio.
    fn retire_all(&mut self) {
        self.retire_before(self.end());
    }

    /// All final text leaves the window and becomes the prompt, and the window starts
    /// afresh at `at` (audio clock, clamped to the window), keeping the audio after it.
    fn retire_before(&mut self, at: u64) {
        let committed = std::mem::take(&mut self.committed);
        self.push_previous(&committed);
        self.heard_at.clear();
        self.last.clear();
        let at = at.clamp(self.start, self.end());
        self.audio.drain(..(at - self.start) as usize);
        self.start = at;
        self.committed_end = self.committed_end.max(at);
        self.voiced.retain(|r| r.end > at);
    }

    fn push_previous(&mut self, tokens: &[u32]) {
        self.previous.extend_from_slice(tokens);
        let excess = self.previous.len().saturating_sub(PROMPT_TOKENS);
        self.previous.drain(..excess);
    }
}

/// Where each token was heard, `heard`, made robust: the median of each text token's
/// and its two text neighbours' on each side (short words such as "of" and "the" often listen to the
/// end of the audio rather than to where they were said). Timestamps keep theirs.
fn smooth_heard(tokens: &[u32], heard: &[u64], timestamp_begin: u32) -> Vec<u64> {
    let text: Vec<usize> = (0..tokens.len())
        .filter(|&i| tokens[i] < timestamp_begin)
        .collect();
    let mut out = heard.to_vec();
    for (k, &i) in text.iter().enumerate() {
        let mut near: Vec<u64> = text[k.saturating_sub(2)..(k + 3).min(text.len())]
            .iter()
            .map(|&j| heard[j])
            .collect();
        near.sort_unstable();
        out[i] = near[near.len() / 2];
    }
    out
}

/// The length of the prefix of token sequences `a` and `b` that agree (two timestamps,
/// ids from `timestamp_begin` on, agree whatever their values).
fn same_prefix(a: &[u32], b: &[u32], timestamp_begin: u32) -> usize {
    a.iter()
        .zip(b)
        .take_while(|(x, y)| x == y || (**x >= timestamp_begin && **y >= timestamp_begin))
        .count()
}

/// Where `newer` and `older`, which agree up to `newer[..at.0]` and `older[..at.1]` and
/// differ in the word after, agree again once that one word is let pass: at least
/// [`AGREED_PAST_WORDS`] whole words after it agree. The decoder may spell a word it is
/// unsure of (a name: "Subiacco", "Söbialko") differently at every step while it agrees
/// on all around it; the newer spelling, which heard more audio, stands. `None` when the
/// words after do not agree, or a timestamp is in dispute.
fn past_disputed_word(
    newer: &[u32],
    older: &[u32],
    at: (usize, usize),
    timestamp_begin: u32,
    starts_word: impl Fn(u32) -> bool,
) -> Option<(usize, usize)> {
    let is_timestamp = |t: u32| t >= timestamp_begin;
    let next_word = |tokens: &[u32], from: usize| {
        (from + 1..tokens.len())
            .find(|&i| starts_word(tokens[i]))
            .filter(|&i| !tokens[from..i].iter().any(|&t| is_timestamp(t)))
    };
    if at.0 >= newer.len() || at.1 >= older.len() {
        return None;
    }
    let (newer_next, older_next) = (next_word(newer, at.0)?, next_word(older, at.1)?);
    let same = same_prefix(&newer[newer_next..], &older[older_next..], timestamp_begin);
    let end = newer_next + same;
    let word_starts = newer[newer_next..end]
        .iter()
        .filter(|&&t| !is_timestamp(t) && starts_word(t))
        .count();
    // The last word agreed on is whole when a word or a timestamp follows it.
    let ends_word = newer.get(end).is_some_and(|&t| starts_word(t))
        || newer[..end].last().is_some_and(|&t| is_timestamp(t));
    let whole = word_starts - usize::from(!ends_word && word_starts > 0);
    (whole >= AGREED_PAST_WORDS).then_some((end, older_next + same))
}

/// How many of the words at the start of `head` say again the last words of `tail` (up to
/// [`JOIN_WORDS`] of them, the most that match), or, three or more of them, after up to
/// [`MISHEARD_WORDS`] words heard otherwise ("The apples are gone before noon" after
/// "... because the best apples are gone before noon", "The teacher to write its name"
/// after "... teach it to write its name": the window was cut where Whisper closed the
/// sentence, a second before its voice ended). 0 when none do.
fn words_said_again(tail: &[&str], head: &[&str]) -> usize {
    let ends_tail = |from: usize, k: usize| {
        head.len() >= from + k && tail.len() >= k && tail[tail.len() - k..] == head[from..from + k]
    };
    let most = JOIN_WORDS.min(tail.len()).min(head.len());
    if let Some(k) = (1..=most).rev().find(|&k| ends_tail(0, k)) {
        return k;
    }
    (1..=MISHEARD_WORDS)
        .find_map(|from| {
            (3..=most)
                .rev()
                .find(|&k| ends_tail(from, k))
                .map(|k| from + k)
        })
        .unwrap_or(0)
}

/// Where a decoding loop says its phrase again in `words` (normalised words, punctuation
/// alone counting as one), at index `from` or later: the second time a phrase of two or
/// more words comes twice in a row, whatever its length ("Fresh snow fell ... Fresh snow
/// fell ..."), or a single word three times in a row ("that that" is speech); `None` when
/// there is none.
fn loop_start(words: &[&str], from: usize) -> Option<usize> {
    let same = |a: usize, b: usize, len: usize| (0..len).all(|k| words[a + k] == words[b + k]);
    (0..words.len()).find_map(|i| {
        (1..=(words.len() - i) / 2).find_map(|len| {
            let times = if len == 1 { 3 } else { 2 };
            let repeats =
                i + times * len <= words.len() && (1..times).all(|r| same(i, i + r * len, len));
            let again = (1..times).map(|r| i + r * len).find(|&at| at >= from);
            again.filter(|_| repeats)
        })
    })
}

/// Where `tokens` start to say again what `said` holds: the start of the segment (or,
/// without a timestamp before it in `tokens`, the word) where at least `run` text tokens
/// from a word's start match a run of `said`'s text tokens (timestamps aside) that goes on
/// to the end of `tokens` or of `said` (the decoder went back and says the final text
/// again; a phrase that comes again and then goes on otherwise, "the forms of printed
/// letters should be ..." and later "... should follow", is speech); `tokens.len()` when
/// there is none.
fn repeat_start(
    said: &[u32],
    tokens: &[u32],
    run: usize,
    timestamp_begin: u32,
    starts_word: impl Fn(u32) -> bool,
) -> usize {
    let said: Vec<u32> = said
        .iter()
        .copied()
        .filter(|&t| t < timestamp_begin)
        .collect();
    let text: Vec<usize> = (0..tokens.len())
        .filter(|&i| tokens[i] < timestamp_begin)
        .collect();
    let matching = |k: usize, j: usize| {
        (0..)
            .take_while(|&m| {
                k + m < text.len() && j + m < said.len() && tokens[text[k + m]] == said[j + m]
            })
            .count()
    };
    let again = |k: usize| {
        (0..said.len()).any(|j| {
            let m = matching(k, j);
            m >= run && (k + m == text.len() || j + m == said.len())
        })
    };
    let Some(k) = (0..(text.len() + 1).saturating_sub(run))
        .find(|&k| starts_word(tokens[text[k]]) && again(k))
    else {
        return tokens.len();
    };
    let at = text[k];
    (0..at)
        .rev()
        .find(|&i| tokens[i] >= timestamp_begin)
        .unwrap_or(at)
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

    /// Where the word holding `tokens[i]` starts (`i` itself for a timestamp or a token that
    /// starts a word).
    fn word_start_at(&self, tokens: &[u32], i: usize) -> usize {
        let mut n = i;
        while n > 0 && !self.starts_word(tokens[n]) {
            n -= 1;
        }
        n
    }

    /// See [`smooth_heard`].
    fn smooth(&self, tokens: &[u32], heard: &[u64]) -> Vec<u64> {
        smooth_heard(tokens, heard, self.timestamp_begin)
    }

    /// The words of `tokens` in order, each with the range of its tokens, normalised
    /// (lower case, no punctuation); timestamps and words of punctuation alone left out.
    fn words(&self, tokens: &[u32]) -> Vec<(String, Range<usize>)> {
        self.units(tokens)
            .into_iter()
            .filter(|(w, _)| w.chars().any(char::is_alphanumeric))
            .collect()
    }

    /// The words of `tokens` as [`Tokens::words`] gives them, and the runs of punctuation
    /// alone (". . .", a decoding loop too) as they are written.
    fn units(&self, tokens: &[u32]) -> Vec<(String, Range<usize>)> {
        let mut words: Vec<(String, Range<usize>)> = Vec::new();
        for (i, &t) in tokens.iter().enumerate() {
            if self.is_timestamp(t) {
                continue;
            }
            match words.last_mut() {
                Some((_, r)) if r.end == i && !self.starts_word(t) => r.end = i + 1,
                _ => words.push((String::new(), i..i + 1)),
            }
        }
        words
            .into_iter()
            .map(|(_, r)| {
                let text = self.text(&tokens[r.clone()]);
                match super::normalised(&text) {
                    word if word.is_empty() => (text, r),
                    word => (word, r),
                }
            })
            .filter(|(w, _)| !w.is_empty())
            .collect()
    }

    /// See [`same_prefix`].
    fn same_prefix(&self, a: &[u32], b: &[u32]) -> usize {
        same_prefix(a, b, self.timestamp_begin)
    }

    /// See [`past_disputed_word`].
    fn past_disputed_word(
        &self,
        newer: &[u32],
        older: &[u32],
        at: usize,
        older_at: usize,
    ) -> Option<(usize, usize)> {
        past_disputed_word(newer, older, (at, older_at), self.timestamp_begin, |t| {
            self.starts_word(t)
        })
    }

    /// The tokens at the start of `hypothesis` that say again the last words of `said`
    /// ([`words_said_again`]); an empty range when none do.
    fn said_again(&self, said: &[u32], hypothesis: &[u32]) -> Range<usize> {
        let tail = self.words(&said[said.len().saturating_sub(4 * JOIN_WORDS)..]);
        let head = self.words(hypothesis);
        let tail: Vec<&str> = tail.iter().map(|(w, _)| w.as_str()).collect();
        match words_said_again(
            &tail,
            &head.iter().map(|(w, _)| w.as_str()).collect::<Vec<_>>(),
        ) {
            0 => 0..0,
            k => head[0].1.start..head[k - 1].1.end,
        }
    }

    /// The length of the prefix of `tokens` that ends with the last segment a timestamp
    /// closes (0 when none), short of a last word cut short.
    fn closed_prefix(&self, tokens: &[u32]) -> usize {
        let mut n = (1..tokens.len())
            .rev()
            .find(|&i| self.is_timestamp(tokens[i]) && !self.is_timestamp(tokens[i - 1]))
            .map_or(0, |i| i + 1);
        while n > 0 && self.ends_cut(&tokens[..n]) {
            n = self.word_start_at(tokens, n - 1);
        }
        n
    }

    /// See [`repeat_start`].
    fn repeat_start(&self, said: &[u32], tokens: &[u32], run: usize) -> usize {
        repeat_start(said, tokens, run, self.timestamp_begin, |t| {
            self.starts_word(t)
        })
    }

    /// Whether the text ends in a word cut short: a hyphen or an ellipsis, as Whisper
    /// writes a word the audio stops in, or a stutter of letters ("f-f", "f-f-d.").
    fn ends_cut(&self, tokens: &[u32]) -> bool {
        let text = self.text(tokens);
        let last = text.rsplit(' ').next().unwrap_or_default();
        let stutter = last.contains('-')
            && last
                .split('-')
                .any(|piece| piece.chars().filter(|c| c.is_alphanumeric()).count() <= 1);
        stutter || text.ends_with('…') || text.ends_with("...")
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
    /// Where the decoder heard each of `all` (audio clock), when it said so.
    heard: Option<&'a [u64]>,
    start: u64,
    audio_end: u64,
}

impl Timing<'_> {
    /// The time of the boundary before `all[k]` (after `all[k - 1]`): where the decoder
    /// heard `all[k]`, when it said so.
    fn at(&self, k: usize) -> u64 {
        let tk = self.tokens;
        let ts = |t: u32| (self.start + tk.steps(t) * TS_SAMPLES).min(self.audio_end);
        if k > 0 && tk.is_timestamp(self.all[k - 1]) {
            return ts(self.all[k - 1]);
        }
        if let Some(heard) = self.heard {
            // Text tokens only (a timestamp's own value says when it is), never going back.
            let before = (0..k)
                .filter(|&i| !tk.is_timestamp(self.all[i]))
                .map(|i| heard[i])
                .max()
                .unwrap_or(self.start);
            let here = match self.all.get(k) {
                Some(&t) if tk.is_timestamp(t) => ts(t),
                Some(_) => heard[k],
                None => self.audio_end,
            };
            return here.max(before).min(self.audio_end);
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

    /// The captions of `all[from..to]`: one per segment piece, with its words' times, and
    /// whether the piece ends its segment (a timestamp closes it).
    fn captions(&self, from: usize, to: usize) -> Vec<(CaptionText, bool)> {
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
                let caption = CaptionText {
                    text: tk.text(&self.all[piece_start..k]),
                    start_ms: first.start_ms,
                    end_ms: last.end_ms,
                    words,
                };
                out.push((caption, tk.is_timestamp(self.all[k - 1])));
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

/// The new finals' times fitted to the voice the VAD heard (`voiced`, ms): a caption
/// starts no earlier than the end of the one shown before it (`shown`), and a sentence
/// starts with voice: not in a pause, nor in the voice of the sentence shown before it. Its
/// words keep their shares of its span. Whisper's timestamps fall short where pauses part
/// the sentences of a window: one sentence's start sits at the last one's end, a second or
/// two before its voice (a command after the captions in a window, say).
fn fit_to_voice(
    pieces: Vec<(CaptionText, bool)>,
    voiced: &[Range<u64>],
    shown: &mut ShownEnd,
    audio_end_ms: u64,
) -> Vec<CaptionText> {
    let voiced = stretches_of_voice(voiced);
    let mut out = Vec::with_capacity(pieces.len());
    for (mut caption, closed) in pieces {
        let floor = shown.at_ms;
        let onset = if shown.closed {
            let own_voice_end = voiced
                .iter()
                .find(|r| r.start <= floor && floor < r.end && r.end - floor <= OWN_VOICE_MS)
                .map_or(floor, |r| r.end);
            let from = caption.start_ms.max(own_voice_end);
            voiced
                .iter()
                .find(|r| r.end > from)
                .map_or(from, |r| r.start.max(from))
        } else {
            // The sentence goes on: its words follow the last shown, pause or not.
            caption.start_ms.max(floor)
        };
        let (start, end) = (caption.start_ms, caption.end_ms);
        if onset > start {
            let new_end = if end > onset {
                end
            } else {
                (end + (onset - start)).min(audio_end_ms).max(onset)
            };
            let map = |t: u64| onset + (t - start) * (new_end - onset) / (end - start).max(1);
            for word in &mut caption.words {
                word.start_ms = map(word.start_ms.max(start));
                word.end_ms = map(word.end_ms.max(start));
            }
            caption.start_ms = onset;
            caption.end_ms = new_end;
        }
        *shown = ShownEnd {
            at_ms: caption.end_ms,
            closed,
        };
        out.push(caption);
    }
    out
}

/// The voiced runs (ms) joined across gaps under [`VOICE_GAP_MS`], less the stretches
/// shorter than [`MIN_VOICE_MS`].
fn stretches_of_voice(voiced: &[Range<u64>]) -> Vec<Range<u64>> {
    let mut joined: Vec<Range<u64>> = Vec::new();
    for run in voiced {
        match joined.last_mut() {
            Some(last) if run.start < last.end + VOICE_GAP_MS => last.end = last.end.max(run.end),
            _ => joined.push(run.clone()),
        }
    }
    joined.retain(|r| r.end - r.start >= MIN_VOICE_MS);
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Token ids from 100 on are timestamps.
    const TB: u32 = 100;

    #[test]
    fn a_window_too_long_starts_again_where_its_final_text_ends() {
        const S: u64 = 16_000;
        let mut stream = Stream::new();
        let audio = vec![0.0; (29 * S) as usize];
        stream.hear(0, &audio, &[0..10 * S, 20 * S..29 * S]);
        stream.committed = vec![TB, 1, 2, TB + 1300];
        stream.committed_end = 26 * S;
        stream.start_after_final();
        // The 3 s of voice after the final text stay; the final text is the prompt.
        assert_eq!((stream.start, stream.end()), (26 * S, 29 * S));
        assert_eq!(stream.voiced.len(), 1);
        assert_eq!(stream.voiced[0], 20 * S..29 * S);
        assert_eq!(stream.previous, [TB, 1, 2, TB + 1300]);
        assert!(stream.committed.is_empty());
        // With no final text for long, at most KEEP_SAMPLES stay.
        let mut stream = Stream::new();
        let voice = 0..29 * S;
        stream.hear(0, &audio, std::slice::from_ref(&voice));
        stream.start_after_final();
        assert_eq!(stream.start, 29 * S - KEEP_SAMPLES);
    }

    #[test]
    fn a_word_spelled_differently_passes_when_the_words_after_it_agree() {
        // Tokens 10.. start a word; 1..9 go on one.
        let starts_word = |t: u32| t >= 10;
        // "near Su-bi-acco and used it" against "near Sö-bial-ko and used it": 12 13 agree.
        let newer = [TB, 10, 11, 1, 2, 12, 13, 14];
        let older = [TB, 10, 11, 3, 4, 5, 12, 13, 14];
        let at = same_prefix(&newer, &older, TB);
        assert_eq!(at, 3);
        // 12 and 13 are whole (a word follows them); 14 may go on.
        assert_eq!(
            past_disputed_word(&newer, &older, (at, at), TB, starts_word),
            Some((8, 9))
        );
        // One word agreeing after the dispute is not enough.
        let newer = [TB, 10, 11, 1, 12, 13];
        let older = [TB, 10, 15, 12, 13];
        assert_eq!(
            past_disputed_word(&newer, &older, (2, 2), TB, starts_word),
            None
        );
        // A word said in one and not the other shifts the rest: no agreement.
        let newer = [10, 16, 12, 13, 14, 15];
        let older = [10, 12, 13, 14, 15];
        assert_eq!(
            past_disputed_word(&newer, &older, (1, 1), TB, starts_word),
            None
        );
        // A segment closed in one and not the other is no word in dispute.
        let newer = [10, TB + 5, 12, 13, 14, 15];
        let older = [10, 11, 12, 13, 14, 15];
        assert_eq!(
            past_disputed_word(&newer, &older, (1, 1), TB, starts_word),
            None
        );
    }

    #[test]
    fn the_end_of_the_final_text_said_again_is_found() {
        let words = |text: &'static str| text.split(' ').collect::<Vec<_>>();
        let tail = words("because the best apples are gone before noon");
        assert_eq!(
            words_said_again(&tail, &words("before noon good morning")),
            2
        );
        assert_eq!(words_said_again(&tail, &words("noon noon good")), 1);
        // After one word heard otherwise, three or more words again.
        let head = words("the apples are gone before noon good morning");
        assert_eq!(words_said_again(&tail, &head), 6);
        // After two.
        let head = words("a good apples are gone before noon now");
        assert_eq!(words_said_again(&tail, &head), 7);
        let head = words("so we all are gone before noon");
        assert_eq!(words_said_again(&tail, &head), 0);
        assert_eq!(words_said_again(&tail, &words("so before noon we")), 0);
        assert_eq!(words_said_again(&tail, &words("good morning everyone")), 0);
    }

    #[test]
    fn a_short_word_listening_elsewhere_takes_its_neighbours_time() {
        // "of" (3) listened to the end of the audio; the timestamp keeps its own time.
        let tokens = [TB, 1, 2, 3, 4, 5, TB + 9];
        let heard = [0, 100, 200, 900, 400, 500, 900];
        assert_eq!(
            smooth_heard(&tokens, &heard, TB),
            [0, 200, 400, 400, 500, 500, 900]
        );
    }

    #[test]
    fn final_text_said_again_is_cut_from_its_segment() {
        // Tokens 10.. start a word; 1..9 go on one.
        let starts_word = |t: u32| t >= 10;
        let said = [TB, 10, 11, 12, 13, 14, TB + 50];
        // New text, then a segment that says 11 12 13 14 again: cut at its timestamp.
        let tokens = [TB + 50, 20, 21, TB + 60, TB + 60, 22, 11, 12, 13, 14, 23];
        assert_eq!(repeat_start(&said, &tokens, 4, TB, starts_word), 4);
        // Without a timestamp before it, at the word it starts with.
        let tokens = [20, 21, 11, 12, 13, 14];
        assert_eq!(repeat_start(&said, &tokens, 4, TB, starts_word), 2);
        // Three tokens again are not enough; nor a run that starts inside a word.
        assert_eq!(
            repeat_start(&said, &[20, 11, 12, 13, 21], 4, TB, starts_word),
            5
        );
        let said = [1, 2, 3, 4];
        assert_eq!(
            repeat_start(&said, &[20, 1, 2, 3, 4], 4, TB, starts_word),
            5
        );
        // A phrase of the final text that comes again and then goes on otherwise is speech.
        let said = [10, 11, 12, 13, 14, 15, 16];
        assert_eq!(
            repeat_start(&said, &[20, 11, 12, 13, 14, 21], 4, TB, starts_word),
            6
        );
    }

    #[test]
    fn a_decoding_loop_is_cut_where_it_repeats() {
        let words = |text: &'static str| text.split(' ').collect::<Vec<_>>();
        assert_eq!(
            loop_start(&words("basil paris basil paris basil paris"), 0),
            Some(2)
        );
        // One word three times; twice is speech.
        assert_eq!(loop_start(&words("we go go go home"), 0), Some(2));
        assert_eq!(loop_start(&words("that that is it"), 0), None);
        assert_eq!(loop_start(&words("a b c a d"), 0), None);
        assert_eq!(loop_start(&words("leaves . . . ."), 0), Some(2));
        // A whole sentence said again, however long.
        let sentence = "fresh snow fell in the mountains last night the ski lifts open at eight";
        let twice = format!("so {sentence} {sentence}");
        assert_eq!(
            loop_start(&twice.split(' ').collect::<Vec<_>>(), 0),
            Some(15)
        );
        // Only loops that say again at `from` or later: final text may have the first time.
        let joined = words("the big ones outside the big ones outside");
        assert_eq!(loop_start(&joined, 3), Some(4));
        assert_eq!(loop_start(&joined, 5), None);
        assert_eq!(loop_start(&words("go go go"), 2), Some(2));
    }

    fn caption(words: &[(&str, u64, u64)]) -> CaptionText {
        CaptionText {
            text: words.iter().map(|w| w.0).collect::<Vec<_>>().join(" "),
            start_ms: words[0].1,
            end_ms: words[words.len() - 1].2,
            words: words
                .iter()
                .map(|&(word, start_ms, end_ms)| CaptionWord {
                    word: word.into(),
                    start_ms,
                    end_ms,
                })
                .collect(),
        }
    }

    fn times(caption: &CaptionText) -> Vec<(u64, u64)> {
        let mut out = vec![(caption.start_ms, caption.end_ms)];
        out.extend(caption.words.iter().map(|w| (w.start_ms, w.end_ms)));
        out
    }

    #[test]
    fn a_sentence_after_a_closed_one_starts_with_its_own_voice() {
        // "Turn on the kitchen lights." was shown closed at 5000, though its voice ran to
        // 5610; the next sentence was decoded at 5000-6727, its voice starts at 7140.
        // The VAD's runs as it heard them: words parted by a frame or two, and a click.
        let voiced = [
            3300..3330,
            4440..4890,
            4920..4950,
            4980..5100,
            5130..5610,
            7140..7230,
            7260..7500,
            7530..7590,
            7710..8130,
            8160..8670,
            8880..12240,
        ];
        let mut shown = ShownEnd {
            at_ms: 5000,
            closed: true,
        };
        let piece = caption(&[
            ("Produced", 5000, 5818),
            ("the", 5818, 6181),
            ("block", 6181, 6727),
        ]);
        let fitted = fit_to_voice(vec![(piece, false)], &voiced, &mut shown, 9000);
        // Moved whole to the onset: its words keep their lengths.
        assert_eq!(
            times(&fitted[0]),
            [(7140, 8867), (7140, 7958), (7958, 8321), (8321, 8867)]
        );
        assert_eq!(
            shown,
            ShownEnd {
                at_ms: 8867,
                closed: false
            }
        );
        // The words that go on it start where it ended, in the same voice; they end where
        // the decoder said, and share the span as they did.
        let piece = caption(&[("books,", 6628, 7142), ("which", 7142, 9500)]);
        let fitted = fit_to_voice(vec![(piece, true)], &voiced, &mut shown, 10_000);
        assert_eq!(
            times(&fitted[0]),
            [(8867, 9500), (8867, 8980), (8980, 9500)]
        );
        assert!(shown.closed);
    }

    #[test]
    fn a_caption_that_starts_in_a_pause_starts_at_the_voice_after_it() {
        let voiced = [0..900, 2000..3000];
        let mut shown = ShownEnd::default();
        let piece = caption(&[("lights", 1500, 2500), ("off", 2500, 3000)]);
        let fitted = fit_to_voice(vec![(piece, true)], &voiced, &mut shown, 3000);
        assert_eq!(
            times(&fitted[0]),
            [(2000, 3000), (2000, 2666), (2666, 3000)]
        );
    }

    #[test]
    fn captions_in_their_voice_keep_their_times() {
        // After an open final, and after a closed one whose voice goes on for long (a
        // speaker who does not pause between sentences), the decoder's times stand.
        let voiced = [Range {
            start: 1000,
            end: 9000,
        }];
        for closed in [false, true] {
            let mut shown = ShownEnd {
                at_ms: 2000,
                closed,
            };
            let piece = caption(&[("and", 2000, 2300), ("then", 2300, 2800)]);
            let fitted = fit_to_voice(vec![(piece.clone(), true)], &voiced, &mut shown, 9000);
            assert_eq!(fitted, [piece]);
        }
    }
}
