//! Audio sources: where the samples come from, up to the ring buffer.
//!
//! Every source feeds the same [`ring::RingWriter`], so the front end behind it runs the
//! same code whether the audio comes from a microphone ([`device`]), a WAV file or raw PCM on
//! a pipe ([`stream`]). The writer downmixes to mono `f32` at the source's own rate; the
//! front end resamples.

pub mod device;
#[cfg(all(target_os = "linux", feature = "pulse"))]
mod pulse;
pub mod ring;
pub mod stream;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crossbeam_channel::Receiver;

pub use device::{
    list_devices, CaptureBackend, CaptureOptions, DeviceCapture, DeviceInfo, DeviceSelector,
};
pub use ring::{ring, ReadStatus, RingCounts, RingReader, RingStats, RingWriter};
pub use stream::{Pace, PcmFormat, StreamSource};

/// Rate and channel count of what a source delivers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StreamFormat {
    /// Frames per second.
    pub rate: u32,
    /// Interleaved channels per frame (downmixed to mono before the ring).
    pub channels: u16,
}

impl fmt::Display for StreamFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} Hz, {} ch", self.rate, self.channels)
    }
}

/// How soon the front end wants the source's audio: promptly while someone may be speaking
/// (an utterance's end is judged as soon as its audio arrives), in larger pieces while the
/// room is quiet, so that a source that can (the sound server) wakes less often. Sources
/// that cannot change their pace ignore it. Clones share it; it starts relaxed.
#[derive(Clone, Debug, Default)]
pub struct Attention(Arc<AtomicBool>);

impl Attention {
    /// Says whether audio is wanted promptly.
    pub fn set_close(&self, close: bool) {
        if self.0.load(Ordering::Relaxed) != close {
            self.0.store(close, Ordering::Release);
        }
    }

    /// Whether audio is wanted promptly.
    pub fn is_close(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// What a running source hands the front end: the ring to read, the source's reports, and
/// the rings that replace it. A device gets a fresh ring each time it is reopened, so a
/// stream that died inside the driver (and may never return from it) cannot hold the
/// front end's ring hostage; the front end drains the old ring, then moves to the new one.
pub struct SourceOutput {
    /// The ring being filled now.
    pub reader: RingReader,
    /// Reports (device opened, lost, retrying, resumed, failed).
    pub events: Receiver<CaptureEvent>,
    /// Rings that take over from `reader`, in order.
    pub replacements: Receiver<RingReader>,
    /// How soon the front end wants audio (the source reads it).
    pub attention: Attention,
}

/// What a source reports while it runs.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CaptureEvent {
    /// The device is open and delivering.
    Opened {
        /// Its name.
        device: String,
        /// What it delivers.
        format: StreamFormat,
    },
    /// The device failed or went silent; the source will retry.
    Lost {
        /// What happened.
        reason: String,
    },
    /// A retry is scheduled.
    Retrying {
        /// 1 for the first retry after a loss.
        attempt: u32,
        /// Wait before it.
        delay_ms: u64,
    },
    /// Capture runs again after a loss.
    Resumed {
        /// The device now used (the same, or the default when the first is gone).
        device: String,
    },
    /// A file or pipe source stopped early on bad data; what came before was delivered.
    Failed {
        /// The error.
        error: String,
    },
}

/// Why a source could not start.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The audio host (ALSA, CoreAudio, ...) is not usable.
    #[error("audio host unavailable: {0}")]
    Host(String),
    /// No device matches the selection.
    #[error("no {0} found (run `voxd devices` to list input devices)")]
    NoDevice(String),
    /// The device refused or failed.
    #[error("audio device error: {0}")]
    Device(String),
    /// The requested configuration is not one the device supports.
    #[error(
        "{device} does not support {requested}; it supports: {supported} \
         (leave rate and channels unset to use the device's default)"
    )]
    UnsupportedConfig {
        /// The device.
        device: String,
        /// What was asked for.
        requested: String,
        /// What it offers.
        supported: String,
    },
    /// A file or pipe source is unusable.
    #[error(transparent)]
    Audio(#[from] crate::audio::AudioError),
    /// Raw PCM parameters are wrong.
    #[error("raw PCM input: {0}")]
    Pcm(String),
}
