//! Frame-level voice activity: is this 10/20/30 ms of 16 kHz audio speech?
//!
//! Three opinions are combined, because no single one holds up in noise:
//! - **webrtc-vad** (the design card's choice): near perfect on clean speech and very cheap,
//!   but in pink noise at 10 dB SNR and below it calls most of the noise speech;
//! - **earshot**, a small pure-Rust neural detector on 16 ms frames: far fewer false alarms in
//!   coloured noise, a few more in white noise;
//! - **energy**: the frame must be above an absolute floor (hum and hiss of a quiet room never
//!   open a segment) and above the adaptive noise floor by a margin. The noise floor is the
//!   quietest frame of the last few seconds (minimum statistics): pauses between words reach
//!   the background level often enough, while speech never pulls the floor up.
//!
//! A frame is voiced when it passes the energy tests and both detectors agree. Each detector
//! is strong where the other is weak, and the segmenter's hysteresis bridges the frames the
//! conjunction misses inside words.

use std::collections::VecDeque;

use earshot::Detector;

/// Voice-activity settings: `[vad]` of the config file.
#[derive(Clone, Debug, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VadConfig {
    /// Frame length: 10, 20 or 30 ms.
    pub frame_ms: u32,
    /// webrtc-vad aggressiveness, 0 (least) to 3 (most).
    pub aggressiveness: u8,
    /// earshot score at or above which a frame counts as speech.
    pub earshot_threshold: f32,
    /// Frames quieter than this (dBFS, RMS) are never speech.
    pub energy_floor_db: f32,
    /// How far above the adaptive noise floor a frame must be, in dB.
    pub noise_margin_db: f32,
    /// How much history the noise floor is the minimum of, in ms.
    pub noise_window_ms: u32,
}

impl Default for VadConfig {
    fn default() -> Self {
        VadConfig {
            frame_ms: 30,
            aggressiveness: 2,
            earshot_threshold: 0.5,
            energy_floor_db: -60.0,
            noise_margin_db: 6.0,
            noise_window_ms: 3000,
        }
    }
}

/// Why a [`VadConfig`] is unusable.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum VadConfigError {
    /// `frame_ms` is not 10, 20 or 30.
    #[error("vad frame_ms = {0}: expected 10, 20 or 30")]
    FrameMs(u32),
    /// `aggressiveness` is above 3.
    #[error("vad aggressiveness = {0}: expected 0, 1, 2 or 3")]
    Aggressiveness(u8),
    /// `earshot_threshold` outside [0, 1].
    #[error("vad earshot_threshold = {0}: expected a number from 0 to 1")]
    Threshold(f32),
    /// `noise_window_ms` too short to hold a frame.
    #[error("vad noise_window_ms = {0}: expected at least 100")]
    NoiseWindow(u32),
}

impl VadConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), VadConfigError> {
        if ![10, 20, 30].contains(&self.frame_ms) {
            return Err(VadConfigError::FrameMs(self.frame_ms));
        }
        if self.aggressiveness > 3 {
            return Err(VadConfigError::Aggressiveness(self.aggressiveness));
        }
        if !(0.0..=1.0).contains(&self.earshot_threshold) {
            return Err(VadConfigError::Threshold(self.earshot_threshold));
        }
        if self.noise_window_ms < 100 {
            return Err(VadConfigError::NoiseWindow(self.noise_window_ms));
        }
        Ok(())
    }

    /// Samples per frame at 16 kHz.
    pub fn frame_len(&self) -> usize {
        self.frame_ms as usize * 16
    }
}

/// The verdict on one frame, with the evidence (for tuning and debugging).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FrameVerdict {
    /// The combined decision.
    pub voiced: bool,
    /// The energy tests' verdict: above the absolute floor and the warmed-up noise floor.
    pub loud: bool,
    /// webrtc-vad's vote.
    pub webrtc: bool,
    /// earshot's score (the latest complete 16 ms frame's).
    pub earshot: f32,
    /// The frame's RMS level, dBFS.
    pub energy_db: f32,
    /// The noise floor it was compared with, dBFS.
    pub noise_db: f32,
}

/// earshot works on 16 ms frames of 256 samples.
const EARSHOT_FRAME: usize = 256;

/// Lowest level reported, dBFS: digital silence.
const SILENCE_DB: f32 = -120.0;

/// Below one least significant bit of 16-bit audio: no microphone's background is this quiet,
/// so such frames are zeros from a stream that has not started yet, not the room's noise.
const DIGITAL_SILENCE_DB: f32 = -90.0;

/// How long a stream must have run before any frame can count as loud, in ms. The minimum of
/// a handful of frames is no estimate of the noise floor (pink noise's 30 ms frames spread
/// over 7 dB), and both detectors call the onset of a stream speech-like. The segmenter's
/// pre-roll still reaches back to the stream's start.
const WARM_UP_MS: u32 = 300;

/// Classifies a stream of 16 kHz frames. Not `Send` (webrtc-vad's state is not): create it on
/// the thread that uses it.
pub struct FrameClassifier {
    config: VadConfig,
    webrtc: webrtc_vad::Vad,
    earshot: Box<Detector>,
    /// Samples waiting for a full earshot frame.
    earshot_pending: Vec<f32>,
    earshot_score: f32,
    pcm: Vec<i16>,
    /// Energies of the last `noise_window_ms` of frames, for the minimum.
    history: VecDeque<f32>,
    history_len: usize,
    /// Frames of the stream the floor needs before it means anything ([`WARM_UP_MS`]).
    warm_up_len: usize,
    frames_seen: usize,
}

impl FrameClassifier {
    /// A classifier for `config` (validated first).
    pub fn new(config: VadConfig) -> Result<Self, VadConfigError> {
        config.validate()?;
        let mode = match config.aggressiveness {
            0 => webrtc_vad::VadMode::Quality,
            1 => webrtc_vad::VadMode::LowBitrate,
            2 => webrtc_vad::VadMode::Aggressive,
            _ => webrtc_vad::VadMode::VeryAggressive,
        };
        let webrtc =
            webrtc_vad::Vad::new_with_rate_and_mode(webrtc_vad::SampleRate::Rate16kHz, mode);
        let history_len = (config.noise_window_ms / config.frame_ms) as usize;
        let warm_up_len = ((WARM_UP_MS / config.frame_ms) as usize).min(history_len);
        Ok(FrameClassifier {
            pcm: Vec::with_capacity(config.frame_len()),
            config,
            webrtc,
            earshot: Detector::default_boxed(),
            earshot_pending: Vec::with_capacity(EARSHOT_FRAME),
            earshot_score: 0.0,
            history: VecDeque::with_capacity(history_len),
            history_len,
            warm_up_len,
            frames_seen: 0,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &VadConfig {
        &self.config
    }

    /// Judges one frame of exactly [`VadConfig::frame_len`] samples.
    pub fn classify(&mut self, frame: &[f32]) -> FrameVerdict {
        debug_assert_eq!(frame.len(), self.config.frame_len());
        let energy_db = level_db(frame);
        let noise_db = self.noise_floor(energy_db, holds_digital_silence(frame));
        let webrtc = self.webrtc_vote(frame);
        let earshot = self.earshot_score(frame);
        self.frames_seen = self.frames_seen.saturating_add(1);
        let loud = self.frames_seen > self.warm_up_len
            && energy_db >= self.config.energy_floor_db
            && energy_db >= noise_db + self.config.noise_margin_db;
        FrameVerdict {
            voiced: loud && webrtc && earshot >= self.config.earshot_threshold,
            loud,
            webrtc,
            earshot,
            energy_db,
            noise_db,
        }
    }

    /// Records `energy_db` and returns the floor it is judged against: the minimum of the
    /// window before it (the frame itself would make every rise look like noise).
    ///
    /// Frames holding digital silence are not recorded: a stream that starts (or resumes)
    /// with zeros before the room's noise arrives would otherwise hold the floor at nothing
    /// for a whole window, and every noise frame in it would look loud. That includes the
    /// frame where the noise begins: a few ms of noise after zeros measure far below the
    /// room's level.
    fn noise_floor(&mut self, energy_db: f32, digital_silence: bool) -> f32 {
        let floor = self
            .history
            .iter()
            .copied()
            .fold(f32::INFINITY, f32::min)
            .min(energy_db);
        if digital_silence {
            return floor;
        }
        if self.history.len() == self.history_len {
            self.history.pop_front();
        }
        self.history.push_back(energy_db);
        floor
    }

    fn webrtc_vote(&mut self, frame: &[f32]) -> bool {
        self.pcm.clear();
        self.pcm.extend(
            frame
                .iter()
                .map(|&x| (x.clamp(-1.0, 1.0) * 32_767.0).round() as i16),
        );
        // The frame length is one webrtc-vad accepts (validated), so this cannot fail; a
        // failure would count as "not speech" rather than stop the audio path.
        self.webrtc.is_voice_segment(&self.pcm).unwrap_or(false)
    }

    /// Feeds earshot and returns its latest score (frames of 10 ms may not complete one).
    fn earshot_score(&mut self, frame: &[f32]) -> f32 {
        let mut rest = frame;
        while !rest.is_empty() {
            let take = (EARSHOT_FRAME - self.earshot_pending.len()).min(rest.len());
            self.earshot_pending
                .extend(rest[..take].iter().map(|x| x.clamp(-1.0, 1.0)));
            rest = &rest[take..];
            if self.earshot_pending.len() == EARSHOT_FRAME {
                self.earshot_score = self.earshot.predict_f32(&self.earshot_pending);
                self.earshot_pending.clear();
            }
        }
        self.earshot_score
    }
}

/// Length of the stretches [`holds_digital_silence`] looks at: 2 ms at 16 kHz.
const SILENCE_PROBE: usize = 32;

/// Does `frame` hold a stretch of [`SILENCE_PROBE`] samples at digital silence? No
/// microphone's background is that quiet for 2 ms; a stream that has not started, or a gap
/// in one, is.
fn holds_digital_silence(frame: &[f32]) -> bool {
    frame
        .chunks(SILENCE_PROBE)
        .any(|stretch| level_db(stretch) < DIGITAL_SILENCE_DB)
}

/// RMS level of `frame` in dBFS (full scale = 1.0), at least [`SILENCE_DB`].
pub fn level_db(frame: &[f32]) -> f32 {
    if frame.is_empty() {
        return SILENCE_DB;
    }
    let mean_square = frame.iter().map(|x| x * x).sum::<f32>() / frame.len() as f32;
    (10.0 * mean_square.max(1e-12).log10()).max(SILENCE_DB)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise(n: usize, amp: f32, seed: &mut u64) -> Vec<f32> {
        (0..n)
            .map(|_| {
                *seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((*seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 2.0 * amp
            })
            .collect()
    }

    #[test]
    fn configuration_is_checked() {
        for (config, want) in [
            (
                VadConfig {
                    frame_ms: 25,
                    ..VadConfig::default()
                },
                VadConfigError::FrameMs(25),
            ),
            (
                VadConfig {
                    aggressiveness: 4,
                    ..VadConfig::default()
                },
                VadConfigError::Aggressiveness(4),
            ),
            (
                VadConfig {
                    earshot_threshold: 1.5,
                    ..VadConfig::default()
                },
                VadConfigError::Threshold(1.5),
            ),
        ] {
            assert_eq!(FrameClassifier::new(config).err(), Some(want));
        }
    }

    #[test]
    fn silence_and_steady_noise_are_not_speech() {
        for frame_ms in [10, 20, 30] {
            let mut c = FrameClassifier::new(VadConfig {
                frame_ms,
                ..VadConfig::default()
            })
            .unwrap();
            let len = c.config().frame_len();
            let zeros = vec![0.0; len];
            assert!(!c.classify(&zeros).voiced);
            assert_eq!(c.classify(&zeros).energy_db, SILENCE_DB);
            let mut seed = 7;
            let voiced = (0..200)
                .filter(|_| c.classify(&noise(len, 0.05, &mut seed)).voiced)
                .count();
            assert!(
                voiced <= 2,
                "{frame_ms} ms: {voiced} of 200 noise frames voiced"
            );
        }
    }

    #[test]
    fn leading_zeros_do_not_hold_the_noise_floor_down() {
        let mut c = FrameClassifier::new(VadConfig::default()).unwrap();
        let len = c.config().frame_len();
        for _ in 0..10 {
            c.classify(&vec![0.0; len]);
        }
        let mut seed = 3;
        let first = c.classify(&noise(len, 0.1, &mut seed));
        assert_eq!(first.noise_db, first.energy_db);
        let next = c.classify(&noise(len, 0.1, &mut seed));
        assert!(next.noise_db > -40.0, "{next:?}");
    }

    #[test]
    fn the_frame_where_noise_begins_is_not_the_noise_floor() {
        let mut c = FrameClassifier::new(VadConfig::default()).unwrap();
        let len = c.config().frame_len();
        let mut seed = 5;
        // Zeros, then noise starting 5 ms before the end of a frame: that frame is 15 dB
        // quieter than the noise and must not become the floor the noise is judged by.
        c.classify(&vec![0.0; len]);
        let mut straddling = vec![0.0; len];
        straddling[len - 80..].copy_from_slice(&noise(80, 0.1, &mut seed));
        c.classify(&straddling);
        c.classify(&noise(len, 0.1, &mut seed));
        let next = c.classify(&noise(len, 0.1, &mut seed));
        assert!(next.energy_db - next.noise_db < 2.0, "{next:?}");
    }

    #[test]
    fn nothing_is_loud_before_the_floor_has_warmed_up() {
        let mut c = FrameClassifier::new(VadConfig::default()).unwrap();
        let len = c.config().frame_len();
        let mut seed = 9;
        let quiet = c.classify(&noise(len, 0.001, &mut seed));
        assert_eq!(quiet.noise_db, quiet.energy_db);
        // 40 dB above the only frame heard: a floor of one frame says nothing yet.
        let early = c.classify(&noise(len, 0.1, &mut seed));
        assert!(
            early.energy_db > early.noise_db + 30.0 && !early.loud,
            "{early:?}"
        );
        for _ in 0..10 {
            c.classify(&noise(len, 0.001, &mut seed));
        }
        let later = c.classify(&noise(len, 0.1, &mut seed));
        assert!(later.loud, "{later:?}");
    }

    #[test]
    fn level_is_rms_in_dbfs() {
        assert!((level_db(&[0.5, -0.5, 0.5, -0.5]) - (-6.0206)).abs() < 1e-3);
        assert_eq!(level_db(&[]), SILENCE_DB);
    }
}
