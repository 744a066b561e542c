//! Utterances from frame verdicts: hysteresis, pre-roll, tail and a length limit.
//!
//! A run of speech opens as a *candidate* at its first voiced frame and is confirmed once it
//! holds [`SegmentConfig::min_speech_ms`] of voiced frames, so clicks and short bursts never
//! become utterances; the confirmed start is back-dated to that first frame minus the
//! pre-roll (first syllables are often too weak for any detector). It closes after
//! [`SegmentConfig::end_silence_ms`] without a voiced frame, ending a short tail after the
//! last voiced frame. Speech longer than [`SegmentConfig::max_utterance_ms`] is cut there and
//! goes on as a new utterance.
//!
//! Once the silence has lasted the tail, the utterance's audio is settled: if no more speech
//! comes, it will end exactly there. The segmenter says so with [`Segment::Pause`], carrying
//! that utterance, so a recogniser can start on it while the rest of the silence confirms
//! the end (the command's answer then costs `end_silence_ms`, not that plus decoding).
//!
//! With [`SegmentConfig::early_close_ms`] set (commands close early), two pauses come
//! before that one: [`PauseStage::Peek`] after [`PEEK_MS`] of silence, for a recogniser to
//! start on the speech so far, and [`PauseStage::Close`] after `early_close_ms`, when a
//! complete command may be acted on. Whether it is, is the recogniser's call; the segmenter
//! goes on as if nothing happened, and its `End` still comes.
//!
//! Positions are sample indices on the 16 kHz audio clock. The segmenter keeps only the
//! samples it may still hand out: the pre-roll while idle, the utterance while speaking, and
//! with [`SegmentConfig::lead_in_ms`] the audio before the utterance since the previous one
//! ended (a transcriber that decodes speech in its context, as live captions do, needs the
//! stream as it was, pauses included).

/// Segmentation settings, in milliseconds: `[segment]` of the config file.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SegmentConfig {
    /// Voiced time that confirms speech.
    pub min_speech_ms: u32,
    /// Unvoiced time that ends it.
    pub end_silence_ms: u32,
    /// Audio kept before the first voiced frame.
    pub preroll_ms: u32,
    /// Audio kept after the last voiced frame (at most `end_silence_ms`).
    pub tail_ms: u32,
    /// Longest utterance; longer speech is cut into pieces of this length.
    pub max_utterance_ms: u32,
    /// Audio before the utterance handed out with it (at most this much, never reaching
    /// back past the previous utterance): [`Utterance::lead_in`]. 0 hands out none. Set by
    /// whoever needs it (live captions), not by the config file.
    #[serde(skip)]
    pub lead_in_ms: u32,
    /// Silence after which a [`PauseStage::Close`] pause is reported, below
    /// `end_silence_ms`; 0 for none (and no [`PauseStage::Peek`] either). Set from
    /// `[commands] early_close_ms` by the daemon, not by this section.
    #[serde(skip)]
    pub early_close_ms: u32,
}

impl Default for SegmentConfig {
    fn default() -> Self {
        SegmentConfig {
            min_speech_ms: 120,
            end_silence_ms: 400,
            preroll_ms: 300,
            tail_ms: 300,
            max_utterance_ms: 20_000,
            lead_in_ms: 0,
            early_close_ms: 0,
        }
    }
}

/// Why a [`SegmentConfig`] is unusable.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SegmentConfigError {
    /// A field that must be positive is 0.
    #[error("segment {0} must be greater than 0")]
    Zero(&'static str),
    /// The tail is longer than the silence that ends speech.
    #[error("segment tail_ms = {tail} is longer than end_silence_ms = {silence}")]
    TailTooLong {
        /// tail_ms
        tail: u32,
        /// end_silence_ms
        silence: u32,
    },
    /// The length limit is shorter than what it takes to confirm and end speech.
    #[error("segment max_utterance_ms = {0} is shorter than 1000 ms")]
    MaxTooShort(u32),
    /// An early close that would come after the end.
    #[error(
        "commands early_close_ms = {close} is not shorter than segment end_silence_ms = \
         {silence}: it would never come first"
    )]
    CloseTooLate {
        /// early_close_ms
        close: u32,
        /// end_silence_ms
        silence: u32,
    },
}

impl SegmentConfig {
    /// Checks the fields and their relations.
    pub fn validate(&self) -> Result<(), SegmentConfigError> {
        for (name, value) in [
            ("min_speech_ms", self.min_speech_ms),
            ("end_silence_ms", self.end_silence_ms),
        ] {
            if value == 0 {
                return Err(SegmentConfigError::Zero(name));
            }
        }
        if self.tail_ms > self.end_silence_ms {
            return Err(SegmentConfigError::TailTooLong {
                tail: self.tail_ms,
                silence: self.end_silence_ms,
            });
        }
        if self.max_utterance_ms < 1000 {
            return Err(SegmentConfigError::MaxTooShort(self.max_utterance_ms));
        }
        if self.early_close_ms >= self.end_silence_ms {
            return Err(SegmentConfigError::CloseTooLate {
                close: self.early_close_ms,
                silence: self.end_silence_ms,
            });
        }
        Ok(())
    }
}

/// A span of speech, cut out of the stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Utterance {
    /// First sample (pre-roll included).
    pub start: u64,
    /// One past the last sample (tail included).
    pub end: u64,
    /// The first voiced frame's start: where the detector heard speech begin.
    pub onset: u64,
    /// One past the last voiced frame: where the detector heard speech stop (`end` less
    /// the tail, or less the silence heard so far in a pause).
    pub voice_end: u64,
    /// The audio, `end - start` samples at 16 kHz.
    pub samples: Vec<f32>,
    /// Cut at the length limit (speech went on past `end`).
    pub cut: bool,
    /// The audio clock when the segmenter closed the utterance: one past the frame that
    /// ended (or cut) it; at least `end`. What the front end sends out before this point
    /// (caption windows) it sent before the utterance.
    pub heard_to: u64,
    /// The audio just before `start`, since the previous utterance's end, at most
    /// [`SegmentConfig::lead_in_ms`] of it (empty when that is 0).
    pub lead_in: Vec<f32>,
}

/// What the segmenter reports.
#[derive(Clone, Debug, PartialEq)]
pub enum Segment {
    /// Speech confirmed; the utterance will start at `start` (its onset is `onset`).
    Start {
        /// First sample of the utterance, pre-roll included.
        start: u64,
        /// First voiced frame.
        onset: u64,
    },
    /// The speech has paused: the utterance so far, its end at most a tail after the voice.
    /// An `End` with the same `start` and `voice_end` follows unless speech resumes.
    Pause {
        utterance: Utterance,
        stage: PauseStage,
    },
    /// Speech ended (or was cut): the whole utterance.
    End(Utterance),
}

/// How long a [`Segment::Pause`] has lasted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PauseStage {
    /// [`PEEK_MS`] of silence: too early to act on, early enough to start recognising.
    Peek,
    /// [`SegmentConfig::early_close_ms`] of silence: a command that is complete, and that
    /// nothing may follow, can be acted on now.
    Close,
    /// The silence has lasted the tail: the utterance is settled, and its `End` (if no
    /// more speech comes) will have exactly this span.
    Settled,
}

impl PauseStage {
    /// The stage's name in events: `peek`, `close`, `settled`.
    pub fn name(self) -> &'static str {
        match self {
            PauseStage::Peek => "peek",
            PauseStage::Close => "close",
            PauseStage::Settled => "settled",
        }
    }
}

/// The silence after which a [`PauseStage::Peek`] pause comes when commands close early
/// (or at `early_close_ms`, if that is shorter). Recognising a command takes about 150 ms
/// (tiny.en, 2 threads): started here, its answer is ready soon after a close at 150 ms.
/// Pauses this long inside a sentence are common, but a recognition they start is only
/// acted on at the close, and only when the speech has not gone on.
pub const PEEK_MS: u32 = 90;

#[derive(Clone, Copy, Debug)]
enum State {
    Idle,
    Candidate {
        onset: u64,
        voiced: u64,
        last_voiced_end: u64,
    },
    Speech {
        start: u64,
        onset: u64,
        last_voiced_end: u64,
        /// How many of `Segmenter::pauses` were sent for the silence after
        /// `last_voiced_end`.
        paused: usize,
    },
}

/// The segmentation state machine.
pub struct Segmenter {
    min_speech: u64,
    end_silence: u64,
    preroll: u64,
    tail: u64,
    max_len: u64,
    lead_in: u64,
    /// The pauses to report, by the silence (samples) after which each comes; ascending.
    pauses: Vec<(u64, PauseStage)>,
    state: State,
    /// Recent audio; `buf[0]` is sample `buf_start`.
    buf: Vec<f32>,
    buf_start: u64,
    /// End of the last utterance: the next one's pre-roll never reaches back past it.
    last_end: u64,
}

const SAMPLES_PER_MS: u64 = 16;

/// Where an utterance lies: its first sample, one past its last, its first voiced frame and
/// one past its last voiced frame.
#[derive(Clone, Copy, Debug)]
struct Span {
    start: u64,
    end: u64,
    onset: u64,
    voice_end: u64,
}

impl Span {
    fn new(start: u64, end: u64, onset: u64, voice_end: u64) -> Span {
        Span {
            start,
            end,
            onset,
            voice_end,
        }
    }
}

impl Segmenter {
    /// A segmenter for `config` (validated first).
    pub fn new(config: &SegmentConfig) -> Result<Self, SegmentConfigError> {
        config.validate()?;
        let ms = |v: u32| u64::from(v) * SAMPLES_PER_MS;
        let mut pauses = Vec::new();
        if config.early_close_ms > 0 {
            let peek = PEEK_MS.min(config.early_close_ms);
            if peek < config.early_close_ms {
                pauses.push((ms(peek), PauseStage::Peek));
            }
            pauses.push((ms(config.early_close_ms), PauseStage::Close));
        }
        // A close at or past the tail already hands out the settled span.
        if pauses.last().is_none_or(|&(at, _)| at < ms(config.tail_ms)) {
            pauses.push((ms(config.tail_ms), PauseStage::Settled));
        }
        Ok(Segmenter {
            min_speech: ms(config.min_speech_ms),
            end_silence: ms(config.end_silence_ms),
            preroll: ms(config.preroll_ms),
            tail: ms(config.tail_ms),
            max_len: ms(config.max_utterance_ms),
            lead_in: ms(config.lead_in_ms),
            pauses,
            state: State::Idle,
            buf: Vec::new(),
            buf_start: 0,
            last_end: 0,
        })
    }

    /// Whether speech is confirmed and running.
    pub fn in_speech(&self) -> bool {
        matches!(self.state, State::Speech { .. })
    }

    /// Takes the next frame, which starts where the previous one ended, with its verdict.
    pub fn push(&mut self, frame: &[f32], voiced: bool, emit: &mut impl FnMut(Segment)) {
        let frame_start = self.buf_start + self.buf.len() as u64;
        let frame_end = frame_start + frame.len() as u64;
        self.buf.extend_from_slice(frame);
        let len = frame.len() as u64;
        self.state = match self.state {
            State::Idle if voiced => State::Candidate {
                onset: frame_start,
                voiced: len,
                last_voiced_end: frame_end,
            },
            State::Idle => State::Idle,
            State::Candidate {
                onset,
                voiced: heard,
                last_voiced_end,
            } => {
                let (heard, last_voiced_end) = if voiced {
                    (heard + len, frame_end)
                } else {
                    (heard, last_voiced_end)
                };
                if heard >= self.min_speech {
                    let start = onset
                        .saturating_sub(self.preroll)
                        .max(self.last_end)
                        .max(self.buf_start);
                    emit(Segment::Start { start, onset });
                    State::Speech {
                        start,
                        onset,
                        last_voiced_end,
                        paused: 0,
                    }
                } else if frame_end - last_voiced_end >= self.end_silence {
                    State::Idle
                } else {
                    State::Candidate {
                        onset,
                        voiced: heard,
                        last_voiced_end,
                    }
                }
            }
            State::Speech {
                start,
                onset,
                last_voiced_end,
                paused,
            } => {
                let (last_voiced_end, paused) = if voiced {
                    (frame_end, 0)
                } else {
                    (last_voiced_end, paused)
                };
                let silence = frame_end - last_voiced_end;
                if silence >= self.end_silence {
                    let end = (last_voiced_end + self.tail).min(frame_end);
                    self.close(Span::new(start, end, onset, last_voiced_end), false, emit);
                    State::Idle
                } else if frame_end - start >= self.max_len {
                    let span = Span::new(start, frame_end, onset, last_voiced_end);
                    self.close(span, true, emit);
                    emit(Segment::Start {
                        start: frame_end,
                        onset: frame_end,
                    });
                    State::Speech {
                        start: frame_end,
                        onset: frame_end,
                        last_voiced_end,
                        paused: 0,
                    }
                } else {
                    let mut paused = paused;
                    // The frame may pass several marks (10 ms frames, marks close together):
                    // only the longest is worth reporting.
                    while let Some(&(_, stage)) =
                        self.pauses.get(paused).filter(|&&(at, _)| silence >= at)
                    {
                        paused += 1;
                        let passed_next = self
                            .pauses
                            .get(paused)
                            .is_some_and(|&(at, _)| silence >= at);
                        if !passed_next {
                            let end = last_voiced_end + silence.min(self.tail);
                            let span = Span::new(start, end, onset, last_voiced_end);
                            let utterance = self.utterance(span, false);
                            emit(Segment::Pause { utterance, stage });
                        }
                    }
                    State::Speech {
                        start,
                        onset,
                        last_voiced_end,
                        paused,
                    }
                }
            }
        };
        self.trim();
    }

    /// The stream ended: speech in progress ends here (tail permitting).
    pub fn finish(&mut self, emit: &mut impl FnMut(Segment)) {
        let stream_end = self.buf_start + self.buf.len() as u64;
        if let State::Speech {
            start,
            onset,
            last_voiced_end,
            ..
        } = self.state
        {
            let end = (last_voiced_end + self.tail).min(stream_end);
            self.close(Span::new(start, end, onset, last_voiced_end), false, emit);
        }
        self.state = State::Idle;
    }

    fn close(&mut self, span: Span, cut: bool, emit: &mut impl FnMut(Segment)) {
        let utterance = self.utterance(span, cut);
        self.last_end = utterance.end;
        emit(Segment::End(utterance));
    }

    /// The utterance `start..end`. After a cut at the length limit in a pause, the voice may
    /// have ended before the new piece starts (its end, last voice plus tail, is then before
    /// its start): that piece is empty, `start..start`.
    fn utterance(&self, span: Span, cut: bool) -> Utterance {
        let Span {
            start,
            end,
            onset,
            voice_end,
        } = span;
        let end = end.max(start);
        let from = (start - self.buf_start) as usize;
        let to = (end - self.buf_start) as usize;
        let lead_from = (self.lead_in_start(start) - self.buf_start) as usize;
        Utterance {
            start,
            end,
            onset,
            voice_end: voice_end.clamp(start, end),
            samples: self.buf[from..to].to_vec(),
            cut,
            heard_to: self.buf_start + self.buf.len() as u64,
            lead_in: self.buf[lead_from..from].to_vec(),
        }
    }

    /// Where the lead-in of an utterance starting at `start` begins.
    fn lead_in_start(&self, start: u64) -> u64 {
        start
            .saturating_sub(self.lead_in)
            .max(self.last_end)
            .max(self.buf_start)
    }

    /// Drops audio no future utterance can include.
    fn trim(&mut self) {
        let buf_end = self.buf_start + self.buf.len() as u64;
        let earliest_start = match self.state {
            State::Idle => buf_end.saturating_sub(self.preroll),
            State::Candidate { onset, .. } => onset.saturating_sub(self.preroll),
            State::Speech { start, .. } => start,
        };
        let keep_from = self.lead_in_start(earliest_start);
        let drop = (keep_from - self.buf_start) as usize;
        // Draining costs a copy of what stays; do it in batches, not every frame.
        if drop > 0 && (drop >= self.buf.len() / 2 || drop >= 16_000) {
            self.buf.drain(..drop);
            self.buf_start = keep_from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: usize = 480; // 30 ms

    /// Runs frames described by `pattern` (`#` voiced, `.` not) through a segmenter; every
    /// sample's value is its index, so spans can be checked against the audio handed out.
    fn run(config: &SegmentConfig, pattern: &str) -> Vec<Segment> {
        let mut s = Segmenter::new(config).unwrap();
        let mut out = Vec::new();
        for (i, c) in pattern.chars().enumerate() {
            let frame: Vec<f32> = (0..FRAME).map(|k| (i * FRAME + k) as f32).collect();
            s.push(&frame, c == '#', &mut |e| out.push(e));
        }
        s.finish(&mut |e| out.push(e));
        out
    }

    fn utterances(events: &[Segment]) -> Vec<&Utterance> {
        events
            .iter()
            .filter_map(|e| match e {
                Segment::End(u) => Some(u),
                _ => None,
            })
            .collect()
    }

    fn check_audio(u: &Utterance) {
        assert_eq!(u.samples.len() as u64, u.end - u.start);
        assert_eq!(u.samples.first().copied(), Some(u.start as f32));
    }

    #[test]
    fn one_utterance_with_preroll_and_tail() {
        let config = SegmentConfig::default();
        // 1.2 s silence, 0.6 s speech with a 90 ms gap, 1.2 s silence.
        let events = run(
            &config,
            &format!(
                "{}##########...##########{}",
                ".".repeat(40),
                ".".repeat(40)
            ),
        );
        let us = utterances(&events);
        assert_eq!(us.len(), 1);
        let u = us[0];
        let onset = 40 * FRAME as u64;
        assert_eq!(u.onset, onset);
        assert_eq!(u.start, onset - 300 * 16);
        let last_voiced_end = (40 + 23) * FRAME as u64;
        assert_eq!(u.end, last_voiced_end + 300 * 16);
        assert!(!u.cut);
        check_audio(u);
        assert!(
            matches!(events[0], Segment::Start { start, onset: o } if start == u.start && o == onset)
        );
    }

    #[test]
    fn a_pause_carries_the_utterance_its_end_will_have() {
        let config = SegmentConfig::default();
        // Speech, a 330 ms pause (a Pause, no End), more speech, then silence.
        let pattern = format!(
            "{}##########{}##########{}",
            ".".repeat(20),
            ".".repeat(11),
            ".".repeat(40)
        );
        let events = run(&config, &pattern);
        let pauses = pauses(&events);
        let ends = utterances(&events);
        assert_eq!((pauses.len(), ends.len()), (2, 1), "{events:?}");
        assert!(pauses
            .iter()
            .all(|(_, stage)| *stage == PauseStage::Settled));
        // The first pause was overtaken by more speech; the second one is the end.
        assert!(pauses[0].0.end < ends[0].end);
        assert_eq!(undecided(pauses[1].0), undecided(ends[0]));
        assert!(pauses[1].0.heard_to < ends[0].heard_to);
        check_audio(pauses[0].0);
        assert_eq!(ends[0].voice_end, ends[0].end - 300 * 16);
    }

    /// The utterance without when it was decided: a pause comes before the end that has
    /// its span.
    fn undecided(u: &Utterance) -> Utterance {
        Utterance {
            heard_to: 0,
            ..u.clone()
        }
    }

    fn pauses(events: &[Segment]) -> Vec<(&Utterance, PauseStage)> {
        events
            .iter()
            .filter_map(|e| match e {
                Segment::Pause { utterance, stage } => Some((utterance, *stage)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_early_close_adds_a_peek_and_a_close_before_the_settled_pause() {
        let config = SegmentConfig {
            early_close_ms: 150,
            ..SegmentConfig::default()
        };
        // Speech, a 120 ms gap (a peek only), more speech, then silence.
        let pattern = format!(
            "{}##########....##########{}",
            ".".repeat(20),
            ".".repeat(40)
        );
        let events = run(&config, &pattern);
        let pauses = pauses(&events);
        let stages: Vec<PauseStage> = pauses.iter().map(|(_, stage)| *stage).collect();
        use PauseStage::*;
        assert_eq!(stages, [Peek, Peek, Close, Settled], "{events:?}");
        let end = utterances(&events)[0];
        let voice_end = (20 + 24) * FRAME as u64;
        assert_eq!(end.voice_end, voice_end);
        // Each pause ends its utterance the silence heard so far after the voice (30 ms
        // frames: the peek comes at 90 ms, the close at 150 ms).
        for ((u, _), silence_ms) in pauses[1..].iter().zip([90, 150, 300]) {
            assert_eq!((u.start, u.voice_end), (end.start, voice_end));
            assert_eq!(u.end, voice_end + silence_ms * 16);
            check_audio(u);
        }
        assert_eq!(
            undecided(pauses[3].0),
            undecided(end),
            "the settled pause is the end's span"
        );
        // The first peek was overtaken by more speech.
        assert!(pauses[0].0.voice_end < voice_end);
    }

    #[test]
    fn a_close_at_the_tail_is_the_settled_pause() {
        let config = SegmentConfig {
            early_close_ms: 300,
            ..SegmentConfig::default()
        };
        let events = run(&config, &format!("{}{}", "#".repeat(10), ".".repeat(20)));
        let stages: Vec<PauseStage> = pauses(&events).iter().map(|(_, s)| *s).collect();
        assert_eq!(stages, [PauseStage::Peek, PauseStage::Close]);
        let late = SegmentConfig {
            early_close_ms: 400,
            ..SegmentConfig::default()
        };
        assert!(matches!(
            Segmenter::new(&late),
            Err(SegmentConfigError::CloseTooLate { .. })
        ));
    }

    #[test]
    fn short_bursts_are_ignored_and_pauses_split() {
        let config = SegmentConfig::default();
        // A 60 ms click, then two words 420 ms apart (14 frames > 400 ms end silence).
        let pattern = format!(
            "{}##{}#####{}#####{}",
            ".".repeat(20),
            ".".repeat(20),
            ".".repeat(14),
            ".".repeat(20)
        );
        let us: Vec<Utterance> = utterances(&run(&config, &pattern))
            .into_iter()
            .cloned()
            .collect();
        assert_eq!(us.len(), 2, "{us:?}");
        // The second one's pre-roll stops at the first one's end.
        assert!(us[1].start >= us[0].end);
        for u in &us {
            check_audio(u);
        }
    }

    #[test]
    fn long_speech_is_cut_at_the_limit() {
        let config = SegmentConfig {
            max_utterance_ms: 1200,
            ..SegmentConfig::default()
        };
        let us: Vec<Utterance> = utterances(&run(
            &config,
            &format!("{}{}", "#".repeat(100), ".".repeat(20)),
        ))
        .into_iter()
        .cloned()
        .collect();
        assert!(us.len() >= 3, "{}", us.len());
        assert!(us[..us.len() - 1].iter().all(|u| u.cut));
        for pair in us.windows(2) {
            assert_eq!(pair[0].end, pair[1].start, "pieces are contiguous");
        }
        for u in &us {
            assert!(u.end - u.start <= 1200 * 16);
            check_audio(u);
        }
    }

    #[test]
    fn a_cut_in_a_pause_that_becomes_the_end_leaves_an_empty_piece() {
        let config = SegmentConfig {
            max_utterance_ms: 1200,
            ..SegmentConfig::default()
        };
        // The voice ends at frame 28; the cut comes at frame 40, in the pause (a Pause was
        // sent at 38), and the end after it: last voice plus tail is before the cut.
        let events = run(&config, &format!("{}{}", "#".repeat(28), ".".repeat(20)));
        let us: Vec<&Utterance> = utterances(&events);
        assert_eq!(us.len(), 2, "{events:?}");
        assert!(us[0].cut);
        assert_eq!(us[1].start, us[0].end);
        assert_eq!(us[1].end, us[1].start, "nothing was said after the cut");
        assert!(us[1].samples.is_empty());
    }

    #[test]
    fn the_lead_in_is_the_audio_since_the_previous_utterance_at_most_its_length() {
        let config = SegmentConfig {
            lead_in_ms: 900,
            ..SegmentConfig::default()
        };
        // Speech, 60 frames (1.8 s) of silence, speech, 40 frames (1.2 s), speech.
        let pattern = format!(
            "{}{}{}{}{}{}",
            ".".repeat(30),
            "#".repeat(10),
            ".".repeat(60),
            "#".repeat(10),
            ".".repeat(40),
            "#".repeat(10) + &".".repeat(20)
        );
        let us: Vec<Utterance> = utterances(&run(&config, &pattern))
            .into_iter()
            .cloned()
            .collect();
        assert_eq!(us.len(), 3, "{us:?}");
        for (i, u) in us.iter().enumerate() {
            let expected_len = match i {
                // 0.6 s of stream before the first one's pre-roll.
                0 => 30 * FRAME - 300 * 16,
                // capped at 900 ms.
                1 => 900 * 16,
                // The gap since the previous one's end, shorter than the cap.
                _ => (u.start - us[1].end) as usize,
            };
            assert_eq!(u.lead_in.len(), expected_len, "utterance {i}");
            // The lead-in is the stream just before the utterance.
            for (k, &v) in u.lead_in.iter().rev().enumerate() {
                assert_eq!(v, (u.start - 1 - k as u64) as f32);
            }
        }
        assert!(!us[2].lead_in.is_empty() && us[2].lead_in.len() < 900 * 16);
    }

    #[test]
    fn speech_at_the_end_of_the_stream_is_closed() {
        let us: Vec<Utterance> = utterances(&run(&SegmentConfig::default(), "....########"))
            .into_iter()
            .cloned()
            .collect();
        assert_eq!(us.len(), 1);
        assert_eq!(us[0].end, 12 * FRAME as u64);
        assert_eq!(us[0].start, 0);
    }

    #[test]
    fn configuration_is_checked() {
        let bad = SegmentConfig {
            tail_ms: 600,
            ..SegmentConfig::default()
        };
        assert!(matches!(
            Segmenter::new(&bad),
            Err(SegmentConfigError::TailTooLong { .. })
        ));
        let bad = SegmentConfig {
            end_silence_ms: 0,
            ..SegmentConfig::default()
        };
        assert_eq!(
            Segmenter::new(&bad).err(),
            Some(SegmentConfigError::Zero("end_silence_ms"))
        );
    }
}
