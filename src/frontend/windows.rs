//! Overlapping caption windows for the streaming decoder: every `step`, the last `length` of
//! audio, with where the VAD heard speech in it (so silence can be skipped and words placed).

use std::collections::VecDeque;
use std::ops::Range;

/// Caption window settings, in milliseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct WindowConfig {
    /// Audio per window.
    pub length_ms: u32,
    /// Time between window ends.
    pub step_ms: u32,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            length_ms: 10_000,
            step_ms: 1_000,
        }
    }
}

/// Why a [`WindowConfig`] is unusable.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "caption window length_ms = {length} and step_ms = {step}: expected 0 < step <= length <= \
     30000 (Whisper hears at most 30 s)"
)]
pub struct WindowConfigError {
    length: u32,
    step: u32,
}

impl WindowConfig {
    /// Checks the fields.
    pub fn validate(&self) -> Result<(), WindowConfigError> {
        if self.step_ms == 0 || self.step_ms > self.length_ms || self.length_ms > 30_000 {
            return Err(WindowConfigError {
                length: self.length_ms,
                step: self.step_ms,
            });
        }
        Ok(())
    }
}

/// One caption window.
#[derive(Clone, Debug, PartialEq)]
pub struct CaptionWindow {
    /// First sample on the 16 kHz audio clock.
    pub start: u64,
    /// The audio: up to `length` samples ending at the window's end.
    pub samples: Vec<f32>,
    /// Voiced time inside the window, ms.
    pub voiced_ms: u32,
    /// The voiced runs of frames, as sample ranges on the audio clock, in order and
    /// disjoint: the captioner needs to know where speech is, not only how much there is
    /// (silence after its trim point, the end of speech, word times inside a segment).
    pub voiced: Vec<Range<u64>>,
}

impl CaptionWindow {
    /// One past the last sample.
    pub fn end(&self) -> u64 {
        self.start + self.samples.len() as u64
    }
}

/// Cuts windows out of the frame stream.
pub struct Windower {
    length: usize,
    step: u64,
    audio: VecDeque<f32>,
    /// (frame length, voiced) for the frames in `audio`, oldest first.
    frames: VecDeque<(usize, bool)>,
    /// Samples seen so far.
    seen: u64,
    next_end: u64,
}

impl Windower {
    /// A windower for `config` (validated first).
    pub fn new(config: &WindowConfig) -> Result<Self, WindowConfigError> {
        config.validate()?;
        let length = config.length_ms as usize * 16;
        Ok(Windower {
            length,
            step: u64::from(config.step_ms) * 16,
            audio: VecDeque::with_capacity(length),
            frames: VecDeque::new(),
            seen: 0,
            next_end: u64::from(config.step_ms) * 16,
        })
    }

    /// Takes the next frame and its verdict; emits a window whenever a step is complete.
    pub fn push(&mut self, frame: &[f32], voiced: bool, emit: &mut impl FnMut(CaptionWindow)) {
        self.frames.push_back((frame.len(), voiced));
        self.seen += frame.len() as u64;
        // Room is made before the frame goes in, and of a frame longer than the window only
        // its end is kept: the buffer never outgrows the window (a file read as fast as it
        // goes comes in long frames).
        let excess = (self.audio.len() + frame.len()).saturating_sub(self.length);
        let old = excess.min(self.audio.len());
        self.audio.drain(..old);
        self.audio.extend(&frame[excess - old..]);
        self.forget_frames(excess);
        if self.seen >= self.next_end {
            self.next_end += self.step * (self.seen - self.next_end).div_ceil(self.step).max(1);
            emit(self.window());
        }
    }

    /// The stream ended: the last, partial step becomes a window if it holds anything new.
    pub fn finish(&mut self, emit: &mut impl FnMut(CaptionWindow)) {
        if self.seen + self.step > self.next_end && !self.audio.is_empty() {
            emit(self.window());
        }
    }

    fn window(&self) -> CaptionWindow {
        let start = self.seen - self.audio.len() as u64;
        let mut runs: Vec<Range<u64>> = Vec::new();
        let mut at = start;
        for &(len, voiced) in &self.frames {
            let next = at + len as u64;
            if voiced {
                match runs.last_mut() {
                    Some(run) if run.end == at => run.end = next,
                    _ => runs.push(at..next),
                }
            }
            at = next;
        }
        let voiced: u64 = runs.iter().map(|r| r.end - r.start).sum();
        CaptionWindow {
            start,
            samples: self.audio.iter().copied().collect(),
            voiced_ms: (voiced / 16) as u32,
            voiced: runs,
        }
    }

    /// Drops frame records for `samples` samples removed from the front of `audio`.
    fn forget_frames(&mut self, mut samples: usize) {
        while samples > 0 {
            let Some(front) = self.frames.front_mut() else {
                return;
            };
            if front.0 <= samples {
                samples -= front.0;
                self.frames.pop_front();
            } else {
                front.0 -= samples;
                samples = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_overlap_by_length_minus_step() {
        let mut w = Windower::new(&WindowConfig {
            length_ms: 3000,
            step_ms: 1000,
        })
        .unwrap();
        let mut out = Vec::new();
        for i in 0..200u64 {
            // 30 ms frames, voiced from 1.5 s to 3 s.
            let frame: Vec<f32> = (0..480).map(|k| (i * 480 + k) as f32).collect();
            w.push(&frame, (50..100).contains(&i), &mut |win| out.push(win));
        }
        w.finish(&mut |win| out.push(win));
        // Six steps in 6 s; the last ends with the stream, so no partial window follows.
        assert_eq!(out.len(), 6);
        for win in &out {
            assert!(win.samples.len() <= 48_000);
            assert_eq!(win.samples[0], win.start as f32, "audio matches its clock");
        }
        assert_eq!(out[0].start, 0);
        assert_eq!((out[2].end(), out[2].voiced_ms), (48_000, 1500));
        assert_eq!(
            out[2].voiced,
            [Range {
                start: 24_000,
                end: 48_000
            }]
        );
        assert_eq!(
            out[3].voiced,
            [Range {
                start: 24_000,
                end: 48_000
            }]
        );
        assert_eq!(out[5].voiced_ms, 0);
        assert!(out[5].voiced.is_empty());
        assert_eq!(out.last().unwrap().end(), 96_000);
    }

    #[test]
    fn bad_configuration_is_an_error() {
        for (length_ms, step_ms) in [(1000, 0), (1000, 2000), (40_000, 1000)] {
            assert!(Windower::new(&WindowConfig { length_ms, step_ms }).is_err());
        }
    }
}
