//! Sources that read a byte stream: WAV files and raw PCM (from stdin or any reader).
//!
//! A reader thread decodes, converts to `f32`, and pushes through the same ring writer a
//! microphone uses, either paced at real time (as a microphone would deliver) or as fast as
//! the front end takes it, blocking instead of dropping.

use std::io::{self, Read};
use std::path::Path;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::bounded;

use super::ring::ring;
use super::{CaptureError, CaptureEvent, SourceOutput, StreamFormat};
use crate::audio::{rate_in_range, WavFile, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};

/// How a file or pipe source delivers its samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pace {
    /// At the stream's own rate, as a microphone would.
    RealTime,
    /// As fast as the front end consumes them (tests, batch work).
    Fast,
}

/// Ring capacity in seconds of audio: a file source blocks when it is full, so this only
/// bounds memory.
const RING_SECONDS: usize = 2;

/// Frames pushed per step: 10 ms at 48 kHz, so real-time pacing is smooth.
const CHUNK_FRAMES: usize = 480;

/// Sample encodings accepted on a raw PCM stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PcmFormat {
    /// Unsigned 8-bit.
    U8,
    /// Signed 16-bit little-endian.
    S16Le,
    /// Signed 24-bit little-endian, packed in 3 bytes.
    S24Le,
    /// Signed 32-bit little-endian.
    S32Le,
    /// 32-bit float little-endian.
    F32Le,
    /// 64-bit float little-endian.
    F64Le,
}

impl PcmFormat {
    /// Names accepted by `--pcm-format`.
    pub const NAMES: &'static str = "u8, s16le, s24le, s32le, f32le, f64le";

    /// Parses a format name such as `s16le`.
    pub fn parse(name: &str) -> Result<Self, CaptureError> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "u8" => PcmFormat::U8,
            "s16le" | "s16" => PcmFormat::S16Le,
            "s24le" | "s24" => PcmFormat::S24Le,
            "s32le" | "s32" => PcmFormat::S32Le,
            "f32le" | "f32" => PcmFormat::F32Le,
            "f64le" | "f64" => PcmFormat::F64Le,
            other => {
                return Err(CaptureError::Pcm(format!(
                    "unknown sample format {other:?} (expected one of {})",
                    Self::NAMES
                )))
            }
        })
    }

    /// Bytes per sample.
    pub fn bytes(self) -> usize {
        match self {
            PcmFormat::U8 => 1,
            PcmFormat::S16Le => 2,
            PcmFormat::S24Le => 3,
            PcmFormat::S32Le | PcmFormat::F32Le => 4,
            PcmFormat::F64Le => 8,
        }
    }

    /// Decodes one sample from exactly [`PcmFormat::bytes`] bytes, to [-1, 1].
    pub fn decode(self, b: &[u8]) -> f32 {
        match self {
            PcmFormat::U8 => (f32::from(b[0]) - 128.0) / 128.0,
            PcmFormat::S16Le => f32::from(i16::from_le_bytes([b[0], b[1]])) / 32_768.0,
            PcmFormat::S24Le => {
                (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 / 8_388_608.0
            }
            PcmFormat::S32Le => {
                i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0
            }
            PcmFormat::F32Le => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            PcmFormat::F64Le => {
                f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
            }
        }
    }
}

/// A running file or pipe source; its thread ends at the end of the stream.
pub struct StreamSource {
    format: StreamFormat,
    handle: Option<JoinHandle<()>>,
}

impl StreamSource {
    /// Opens a WAV file (its header is checked here) and starts delivering it.
    pub fn wav(path: &Path, pace: Pace) -> Result<(Self, SourceOutput), CaptureError> {
        let wav = WavFile::open(path)?;
        let format = StreamFormat {
            rate: wav.rate(),
            channels: wav.channels() as u16,
        };
        let mut samples = wav.samples();
        let next = move |buf: &mut Vec<f32>, want: usize| -> Result<(), String> {
            while buf.len() < want {
                match samples.next_sample() {
                    Ok(Some(x)) => buf.push(x),
                    Ok(None) => break,
                    Err(e) => return Err(e.to_string()),
                }
            }
            Ok(())
        };
        Self::spawn(format, pace, next)
    }

    /// Starts delivering raw interleaved PCM from `input` (e.g. stdin).
    pub fn pcm(
        input: impl Read + Send + 'static,
        sample_format: PcmFormat,
        rate: u32,
        channels: u16,
        pace: Pace,
    ) -> Result<(Self, SourceOutput), CaptureError> {
        if !rate_in_range(rate) {
            return Err(CaptureError::Pcm(format!(
                "sample rate {rate} Hz is out of range (expected {MIN_SAMPLE_RATE} to \
                 {MAX_SAMPLE_RATE})"
            )));
        }
        if channels == 0 {
            return Err(CaptureError::Pcm(
                "0 channels (expected at least 1)".to_string(),
            ));
        }
        let format = StreamFormat { rate, channels };
        let mut input = io::BufReader::new(input);
        let width = sample_format.bytes();
        let mut bytes = Vec::new();
        let next = move |buf: &mut Vec<f32>, want: usize| -> Result<(), String> {
            bytes.resize(want * width, 0);
            let got = read_full(&mut input, &mut bytes).map_err(|e| e.to_string())?;
            buf.extend(
                bytes[..got - got % width]
                    .chunks_exact(width)
                    .map(|b| sample_format.decode(b)),
            );
            Ok(())
        };
        Self::spawn(format, pace, next)
    }

    /// Runs `next` (fill the buffer with up to `want` samples; fewer means the end) on a
    /// thread, pushing whole frames into the ring at the chosen pace.
    fn spawn(
        format: StreamFormat,
        pace: Pace,
        mut next: impl FnMut(&mut Vec<f32>, usize) -> Result<(), String> + Send + 'static,
    ) -> Result<(Self, SourceOutput), CaptureError> {
        let channels = usize::from(format.channels);
        let (mut writer, reader) = ring(format.rate as usize * RING_SECONDS);
        let (events, events_rx) = bounded(16);
        let (_, replacements) = bounded(0);
        let handle = thread::Builder::new()
            .name("voxd-source".into())
            .spawn(move || {
                let start = Instant::now();
                let mut frames_sent = 0u64;
                let mut buf = Vec::with_capacity(CHUNK_FRAMES * channels);
                loop {
                    buf.clear();
                    let result = next(&mut buf, CHUNK_FRAMES * channels);
                    let whole = buf.len() - buf.len() % channels;
                    if whole > 0 && !writer.push_frames_blocking(&buf[..whole], channels, |s| s) {
                        break; // the front end is gone
                    }
                    frames_sent += (whole / channels) as u64;
                    if let Err(error) = result {
                        let _ = events.send(CaptureEvent::Failed { error });
                        break;
                    }
                    if buf.len() < CHUNK_FRAMES * channels {
                        break;
                    }
                    if pace == Pace::RealTime {
                        pace_to(start, frames_sent, format.rate);
                    }
                }
                writer.close();
            })
            .map_err(|e| CaptureError::Pcm(format!("cannot start reader thread: {e}")))?;
        Ok((
            StreamSource {
                format,
                handle: Some(handle),
            },
            SourceOutput {
                reader,
                events: events_rx,
                replacements,
                attention: super::Attention::default(),
            },
        ))
    }

    /// The format the source delivers.
    pub fn format(&self) -> StreamFormat {
        self.format
    }

    /// Waits for the reader thread to finish.
    pub fn join(mut self) {
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Sleeps until `frames` at `rate` have been due since `start`.
fn pace_to(start: Instant, frames: u64, rate: u32) {
    let due = start + Duration::from_secs_f64(frames as f64 / f64::from(rate));
    let now = Instant::now();
    if due > now {
        thread::sleep(due - now);
    }
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm_formats_decode_to_unit_range() {
        assert_eq!(PcmFormat::U8.decode(&[0]), -1.0);
        assert_eq!(PcmFormat::U8.decode(&[128]), 0.0);
        assert_eq!(PcmFormat::S16Le.decode(&(-32768i16).to_le_bytes()), -1.0);
        assert_eq!(PcmFormat::S16Le.decode(&16384i16.to_le_bytes()), 0.5);
        assert_eq!(PcmFormat::S24Le.decode(&[0x00, 0x00, 0xc0]), -0.5);
        assert_eq!(
            PcmFormat::S24Le.decode(&[0xff, 0xff, 0x3f]),
            4_194_303.0 / 8_388_608.0
        );
        assert_eq!(PcmFormat::S32Le.decode(&i32::MIN.to_le_bytes()), -1.0);
        assert_eq!(PcmFormat::F32Le.decode(&0.25f32.to_le_bytes()), 0.25);
        assert_eq!(PcmFormat::F64Le.decode(&(-0.75f64).to_le_bytes()), -0.75);
        let err = PcmFormat::parse("mp3").unwrap_err().to_string();
        assert!(err.contains("mp3") && err.contains("s16le"), "{err}");
    }
}
