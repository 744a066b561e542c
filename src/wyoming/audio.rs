//! One request's audio: the format `audio-start` announces, every `audio-chunk` decoded,
//! downmixed and resampled to 16 kHz mono as it arrives, and the total bounded.

use serde_json::{Map, Value};

use crate::audio::{self, StreamResampler, SAMPLE_RATE};
use crate::capture::PcmFormat;

/// The format of a stream: samples per second, bytes per sample, channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioFormat {
    pub rate: u32,
    pub width: usize,
    pub channels: usize,
}

/// The most channels a stream may have; more is no microphone.
const MAX_CHANNELS: usize = 32;

impl AudioFormat {
    /// The `rate`, `width` and `channels` of an `audio-start` or `audio-chunk`'s data.
    pub fn from_data(data: &Map<String, Value>) -> Result<AudioFormat, String> {
        let field = |key: &str| {
            data.get(key)
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("`{key}` is missing or not a whole number"))
        };
        let (rate, width, channels) = (field("rate")?, field("width")?, field("channels")?);
        let rate = u32::try_from(rate)
            .ok()
            .filter(|&r| audio::rate_in_range(r))
            .ok_or_else(|| {
                format!(
                    "rate {rate} Hz: expected {} to {} Hz",
                    audio::MIN_SAMPLE_RATE,
                    audio::MAX_SAMPLE_RATE
                )
            })?;
        if !(2..=4).contains(&width) {
            return Err(format!(
                "width {width}: expected 2, 3 or 4 bytes (signed little-endian samples)"
            ));
        }
        if !(1..=MAX_CHANNELS as u64).contains(&channels) {
            return Err(format!("channels {channels}: expected 1 to {MAX_CHANNELS}"));
        }
        Ok(AudioFormat {
            rate,
            width: width as usize,
            channels: channels as usize,
        })
    }

    fn pcm(self) -> PcmFormat {
        match self.width {
            2 => PcmFormat::S16Le,
            3 => PcmFormat::S24Le,
            _ => PcmFormat::S32Le,
        }
    }

    fn frame_bytes(self) -> usize {
        self.width * self.channels
    }
}

/// The audio of one request so far, at 16 kHz mono.
pub struct AudioStream {
    format: AudioFormat,
    resampler: StreamResampler,
    samples: Vec<f32>,
    max_samples: usize,
}

impl AudioStream {
    /// A stream in `format` of at most `max_seconds`.
    pub fn new(format: AudioFormat, max_seconds: u32) -> Result<AudioStream, String> {
        let resampler =
            StreamResampler::new(format.rate, SAMPLE_RATE).map_err(|e| e.to_string())?;
        Ok(AudioStream {
            format,
            resampler,
            samples: Vec::new(),
            max_samples: max_seconds as usize * SAMPLE_RATE as usize,
        })
    }

    /// Adds one chunk. Its format must be the stream's; its payload whole frames.
    pub fn push(&mut self, format: AudioFormat, payload: &[u8]) -> Result<(), String> {
        if format != self.format {
            return Err(format!(
                "a chunk of {format:?} in a stream that started as {:?}",
                self.format
            ));
        }
        let frame = format.frame_bytes();
        if !payload.len().is_multiple_of(frame) {
            return Err(format!(
                "a payload of {} bytes is not whole frames of {frame} bytes \
                 ({} channels of {} bytes)",
                payload.len(),
                format.channels,
                format.width
            ));
        }
        let incoming = payload.len() / frame;
        let expected = (self.samples.len() as u64
            + incoming as u64 * u64::from(SAMPLE_RATE) / u64::from(format.rate))
            as usize;
        if expected > self.max_samples {
            return Err(format!(
                "the audio is longer than {} s, the most one request may send",
                self.max_samples / SAMPLE_RATE as usize
            ));
        }
        let pcm = format.pcm();
        let interleaved: Vec<f32> = payload
            .chunks_exact(format.width)
            .map(|sample| pcm.decode(sample))
            .collect();
        let mono = audio::downmix(&interleaved, format.channels);
        let samples = &mut self.samples;
        self.resampler
            .push(&mono, &mut |out| samples.extend_from_slice(out))
            .map_err(|e| e.to_string())
    }

    /// The stream so far at 16 kHz mono (the resampler holds back its last few samples).
    pub fn samples(&self) -> &[f32] {
        &self.samples
    }

    /// The whole stream at 16 kHz mono, the resampler's tail included.
    pub fn finish(mut self) -> Result<Vec<f32>, String> {
        let samples = &mut self.samples;
        self.resampler
            .finish(&mut |out| samples.extend_from_slice(out))
            .map_err(|e| e.to_string())?;
        Ok(self.samples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn format(rate: u32, width: usize, channels: usize) -> AudioFormat {
        AudioFormat {
            rate,
            width,
            channels,
        }
    }

    #[test]
    fn formats_are_read_and_checked() {
        let data = |v: Value| v.as_object().unwrap().clone();
        let ok = AudioFormat::from_data(&data(json!({"rate": 48000, "width": 2, "channels": 2})));
        assert_eq!(ok, Ok(format(48000, 2, 2)));
        for (bad, expected) in [
            (json!({"rate": 16000, "width": 1, "channels": 1}), "width 1"),
            (
                json!({"rate": 100, "width": 2, "channels": 1}),
                "rate 100 Hz",
            ),
            (
                json!({"rate": 16000, "width": 2, "channels": 0}),
                "channels 0",
            ),
            (json!({"rate": 16000, "width": 2}), "`channels` is missing"),
            (
                json!({"rate": "16000", "width": 2, "channels": 1}),
                "`rate` is missing",
            ),
        ] {
            let error = AudioFormat::from_data(&data(bad)).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn stereo_48k_32bit_becomes_16k_mono() {
        // One second of a 440 Hz tone at half scale in the left channel, silence right.
        let mut stream = AudioStream::new(format(48_000, 4, 2), 10).unwrap();
        let mut payload = Vec::new();
        for n in 0..48_000 {
            let x = (2.0 * std::f64::consts::PI * 440.0 * n as f64 / 48_000.0).sin() * 0.5;
            payload.extend_from_slice(&((x * i32::MAX as f64) as i32).to_le_bytes());
            payload.extend_from_slice(&0i32.to_le_bytes());
        }
        for chunk in payload.chunks(8 * 1000) {
            stream.push(format(48_000, 4, 2), chunk).unwrap();
        }
        let samples = stream.finish().unwrap();
        assert_eq!(samples.len(), 16_000);
        let peak = samples[1000..15_000]
            .iter()
            .fold(0f32, |m, s| m.max(s.abs()));
        // Half scale, halved again by the downmix with the silent channel.
        assert!((peak - 0.25).abs() < 0.01, "{peak}");
    }

    #[test]
    fn partial_frames_other_formats_and_too_much_audio_are_refused() {
        let mut stream = AudioStream::new(format(16_000, 2, 2), 1).unwrap();
        assert!(stream
            .push(format(16_000, 2, 2), &[0; 6])
            .unwrap_err()
            .contains("whole frames"));
        assert!(stream
            .push(format(8_000, 2, 2), &[0; 4])
            .unwrap_err()
            .contains("started as"));
        stream.push(format(16_000, 2, 2), &[0; 4 * 16_000]).unwrap();
        let error = stream.push(format(16_000, 2, 2), &[0; 4]).unwrap_err();
        assert!(error.contains("longer than 1 s"), "{error}");
    }
}
