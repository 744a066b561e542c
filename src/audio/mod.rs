//! Audio input: WAV files decoded and resampled to the 16 kHz mono the models take.
//!
//! [`read_wav`] accepts every PCM layout `hound` decodes (8/16/24/32-bit integer and 32-bit
//! float, any channel count, rates of [`MIN_SAMPLE_RATE`] to [`MAX_SAMPLE_RATE`]), averages
//! the channels and resamples to [`SAMPLE_RATE`] as it reads, with the [`StreamResampler`] the
//! live front end shares: only the 16 kHz result is held whole, never the file's samples.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use hound::{SampleFormat, WavReader};

mod resample;

pub use resample::{resample, StreamResampler};

/// The sample rate Whisper's front end expects.
pub const SAMPLE_RATE: u32 = 16_000;

/// Lowest sample rate accepted, in Hz, for WAV files, raw PCM and [`resample`]. Below it no
/// speech is left to hear, and the 16 kHz result would be many times the file's size (a
/// 200 KB file at 1 Hz claims 28 hours).
pub const MIN_SAMPLE_RATE: u32 = 4_000;

/// Highest sample rate accepted, in Hz, for WAV files, raw PCM and [`resample`]: the fastest
/// rate audio interfaces deliver. It bounds the FFT sizes the resampler plans (rates with no
/// common factor need blocks of `rate` samples).
pub const MAX_SAMPLE_RATE: u32 = 384_000;

/// The longest WAV file [`read_wav`] reads at once, in seconds: its 16 kHz samples take
/// 64 KB per second (0.92 GB for 4 hours). Longer recordings are refused, to be split.
pub const MAX_WAV_SECONDS: u64 = 4 * 60 * 60;

/// Frames resampled together while a file is read: bounds what is held besides the result.
const READ_CHUNK_FRAMES: usize = 16_384;

/// Whether `rate` (Hz) is one voxd reads: [`MIN_SAMPLE_RATE`] to [`MAX_SAMPLE_RATE`].
pub fn rate_in_range(rate: u32) -> bool {
    (MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate)
}

/// What went wrong reading or resampling audio. Every file error names the file.
#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The file could not be opened or read at all.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// The file does not start with a RIFF/WAVE header (a text file, an MP3, ...).
    #[error("{} is not a WAV file: {detail} (expected a RIFF/WAVE header)", path.display())]
    NotWav {
        /// The file.
        path: PathBuf,
        /// What the decoder found instead.
        detail: String,
    },
    /// The file ends before the header or the sample data it announces.
    #[error("{} is truncated: {detail}", path.display())]
    Truncated {
        /// The file.
        path: PathBuf,
        /// Where the data ran out.
        detail: String,
    },
    /// The header is inconsistent or malformed.
    #[error("{} is a corrupt WAV file: {detail}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The inconsistency.
        detail: String,
    },
    /// A well-formed WAV file in a layout this reader does not take.
    #[error(
        "{} has an unsupported WAV format: {detail} (expected PCM 8/16/24/32-bit integer or \
         32-bit float, at least one channel, a rate of {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} \
         Hz)",
        path.display()
    )]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The format found.
        detail: String,
    },
    /// The rates given to [`resample`] are out of range or the resampler failed.
    #[error(
        "cannot resample from {from} Hz to {to} Hz: {detail} (expected rates of \
         {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz)"
    )]
    Resample {
        /// The input rate.
        from: u32,
        /// The output rate.
        to: u32,
        /// What went wrong.
        detail: String,
    },
    /// A WAV file longer than [`read_wav`] reads at once.
    #[error(
        "{} is {seconds} s long; voxd reads at most {MAX_WAV_SECONDS} s ({} hours) of a WAV \
         file at once (split it)",
        path.display(),
        MAX_WAV_SECONDS / 3600
    )]
    TooLong {
        /// The file.
        path: PathBuf,
        /// Its length, from its header and size.
        seconds: u64,
    },
}

/// Reads a WAV file as 16 kHz mono `f32` samples in [-1, 1].
///
/// Integer samples are scaled by `2^(bits-1)`, channels are averaged, and any rate other
/// than [`SAMPLE_RATE`] is resampled as [`resample`] does. The file is read in chunks that
/// are resampled as they come, so only the result is held whole. A WAV file with no samples
/// gives an empty vector; one longer than [`MAX_WAV_SECONDS`] is an error.
pub fn read_wav(path: &Path) -> Result<Vec<f32>, AudioError> {
    let wav = WavFile::open(path)?;
    let (rate, channels) = (wav.rate(), wav.channels());
    let frames = (wav.capacity / channels) as u64;
    let seconds = frames / u64::from(rate);
    if seconds > MAX_WAV_SECONDS {
        return Err(AudioError::TooLong {
            path: path.to_path_buf(),
            seconds,
        });
    }
    let mut resampler = StreamResampler::new(rate, SAMPLE_RATE)?;
    let out_len = resample::rounded_output_len(frames, rate, SAMPLE_RATE);
    let mut out = Vec::with_capacity(out_len as usize);
    let mut collect = |run: &[f32]| out.extend_from_slice(run);
    let mut samples = wav.samples();
    let mut chunk = Vec::with_capacity(READ_CHUNK_FRAMES * channels);
    loop {
        chunk.clear();
        while chunk.len() < READ_CHUNK_FRAMES * channels {
            match samples.next_sample()? {
                Some(x) => chunk.push(x),
                None => break,
            }
        }
        if chunk.is_empty() {
            break;
        }
        resampler.push(&downmix(&chunk, channels), &mut collect)?;
    }
    resampler.finish(&mut collect)?;
    Ok(out)
}

/// An open WAV file whose header has been checked, ready to give its samples as `f32`.
pub struct WavFile {
    path: PathBuf,
    reader: WavReader<BufReader<File>>,
    /// How many samples the file holds at most: the header's count, capped by the file's size
    /// (the header is untrusted).
    capacity: usize,
}

impl WavFile {
    /// Opens `path` and checks that its header describes a layout this reader takes.
    pub fn open(path: &Path) -> Result<Self, AudioError> {
        let file = File::open(path).map_err(|source| AudioError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let reader = WavReader::new(BufReader::new(file)).map_err(|e| header_error(path, e))?;
        let spec = reader.spec();
        let unsupported = |detail: String| AudioError::Unsupported {
            path: path.to_path_buf(),
            detail,
        };
        if !rate_in_range(spec.sample_rate) {
            return Err(unsupported(format!("sample rate {} Hz", spec.sample_rate)));
        }
        if spec.channels == 0 {
            return Err(unsupported("0 channels".to_string()));
        }
        match (spec.sample_format, spec.bits_per_sample) {
            (SampleFormat::Float, 32) | (SampleFormat::Int, 8 | 16 | 24 | 32) => {}
            (format, bits) => return Err(unsupported(format!("{bits}-bit {format:?} samples"))),
        }
        let sample_bytes = u64::from(spec.bits_per_sample.div_ceil(8));
        let capacity = u64::from(reader.len()).min(file_len / sample_bytes) as usize;
        Ok(WavFile {
            path: path.to_path_buf(),
            reader,
            capacity,
        })
    }

    /// Samples per second.
    pub fn rate(&self) -> u32 {
        self.reader.spec().sample_rate
    }

    /// Interleaved channels per frame.
    pub fn channels(&self) -> usize {
        usize::from(self.reader.spec().channels)
    }

    /// The samples in file order (interleaved), as `f32` in [-1, 1].
    pub fn samples(self) -> WavSamples {
        let spec = self.reader.spec();
        let declared = self.reader.len() as usize;
        WavSamples {
            path: self.path,
            float: spec.sample_format == SampleFormat::Float,
            scale: 1.0 / (1u64 << (spec.bits_per_sample.clamp(1, 32) - 1)) as f64,
            declared,
            read: 0,
            reader: self.reader,
        }
    }
}

/// The sample stream of a [`WavFile`].
pub struct WavSamples {
    path: PathBuf,
    reader: WavReader<BufReader<File>>,
    float: bool,
    /// Integer samples are scaled by `2^-(bits-1)`.
    scale: f64,
    declared: usize,
    read: usize,
}

impl WavSamples {
    /// The next sample, `None` at the end of the data; an error names the file and says how
    /// far the data went.
    pub fn next_sample(&mut self) -> Result<Option<f32>, AudioError> {
        let sample = if self.float {
            self.reader.samples::<f32>().next()
        } else {
            let scale = self.scale;
            self.reader
                .samples::<i32>()
                .next()
                .map(|r| r.map(|x| (f64::from(x) * scale) as f32))
        };
        match sample {
            None => Ok(None),
            Some(Ok(x)) => {
                self.read += 1;
                Ok(Some(x))
            }
            Some(Err(e)) => Err(self.sample_error(e)),
        }
    }

    fn sample_error(&self, err: hound::Error) -> AudioError {
        let path = self.path.clone();
        match err {
            hound::Error::IoError(e) if is_short_read(&e) => AudioError::Truncated {
                path,
                detail: format!(
                    "the header announces {} samples but the data ends after {}",
                    self.declared, self.read
                ),
            },
            hound::Error::IoError(source) => AudioError::Io { path, source },
            e => AudioError::Corrupt {
                path,
                detail: format!("sample {}: {e}", self.read),
            },
        }
    }
}

/// Maps an error from opening a WAV file to what it means for the caller.
fn header_error(path: &Path, err: hound::Error) -> AudioError {
    let path = path.to_path_buf();
    match err {
        hound::Error::IoError(e) if is_short_read(&e) => AudioError::Truncated {
            path,
            detail: "the file ends inside the WAV header".to_string(),
        },
        hound::Error::IoError(source) => AudioError::Io { path, source },
        hound::Error::FormatError(msg @ ("no RIFF tag found" | "no WAVE tag found")) => {
            AudioError::NotWav {
                path,
                detail: msg.to_string(),
            }
        }
        hound::Error::FormatError("bits per sample is not 32") => AudioError::Unsupported {
            path,
            detail: "floating-point samples that are not 32-bit".to_string(),
        },
        hound::Error::FormatError("file contains zero channels") => AudioError::Unsupported {
            path,
            detail: "0 channels".to_string(),
        },
        hound::Error::FormatError(msg) => AudioError::Corrupt {
            path,
            detail: msg.to_string(),
        },
        hound::Error::Unsupported | hound::Error::TooWide | hound::Error::InvalidSampleFormat => {
            AudioError::Unsupported {
                path,
                detail: err_text(&err),
            }
        }
        hound::Error::UnfinishedSample => AudioError::Corrupt {
            path,
            detail: err_text(&err),
        },
    }
}

/// Whether an I/O error from hound means the file ended early. hound reports a short read
/// as `UnexpectedEof` or as its own error, neither carrying an OS error code; a real read
/// failure of the file does carry one.
fn is_short_read(err: &io::Error) -> bool {
    err.raw_os_error().is_none()
}

fn err_text(err: &hound::Error) -> String {
    match err {
        hound::Error::Unsupported => "an encoding other than PCM or IEEE float".to_string(),
        other => other.to_string(),
    }
}

/// Averages interleaved frames of `channels` samples into one channel.
pub fn downmix(interleaved: &[f32], channels: usize) -> Vec<f32> {
    if channels == 1 {
        return interleaved.to_vec();
    }
    let scale = 1.0 / channels as f32;
    interleaved
        .chunks_exact(channels)
        .map(|frame| frame.iter().sum::<f32>() * scale)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::resample::rounded_output_len;
    use super::*;
    use hound::{WavSpec, WavWriter};
    use std::f64::consts::PI;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A scratch directory removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir =
                std::env::temp_dir().join(format!("voxd-audio-{}-{tag}-{n}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }

        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn sine(freq: f64, rate: u32, len: usize, amp: f64) -> Vec<f64> {
        (0..len)
            .map(|n| amp * (2.0 * PI * freq * n as f64 / f64::from(rate)).sin())
            .collect()
    }

    /// Amplitude and phase of `freq` in `x` (least squares on sin/cos over the whole span).
    fn tone(x: &[f32], freq: f64, rate: u32) -> (f64, f64) {
        let (mut s, mut c) = (0.0, 0.0);
        for (n, &v) in x.iter().enumerate() {
            let w = 2.0 * PI * freq * n as f64 / f64::from(rate);
            s += f64::from(v) * w.sin();
            c += f64::from(v) * w.cos();
        }
        let k = 2.0 / x.len() as f64;
        ((s * k).hypot(c * k), (c * k).atan2(s * k))
    }

    /// Largest deviation from `amp * sin(2 pi freq n / rate)` away from both edges.
    fn max_error_vs_sine(x: &[f32], freq: f64, rate: u32, amp: f64, edge: usize) -> f64 {
        let reference = sine(freq, rate, x.len(), amp);
        x.iter()
            .zip(&reference)
            .skip(edge)
            .take(x.len().saturating_sub(2 * edge))
            .map(|(&a, &b)| (f64::from(a) - b).abs())
            .fold(0.0, f64::max)
    }

    #[test]
    fn output_length_is_rounded_ratio() {
        assert_eq!(rounded_output_len(44_100, 44_100, 16_000), 16_000);
        assert_eq!(rounded_output_len(3, 48_000, 16_000), 1);
        assert_eq!(rounded_output_len(1, 48_000, 16_000), 0);
        assert_eq!(rounded_output_len(1, 32_000, 16_000), 1); // 0.5 rounds up
        assert_eq!(rounded_output_len(100, 44_100, 16_000), 36);
        for (len, from) in [(12_345, 44_100), (999, 22_050), (7, 8_000), (1, 11_025)] {
            let out = resample(&vec![0.1; len], from, SAMPLE_RATE).unwrap();
            assert_eq!(
                out.len() as u64,
                rounded_output_len(len as u64, from, SAMPLE_RATE)
            );
        }
    }

    #[test]
    fn resampled_sine_keeps_frequency_amplitude_and_phase() {
        for from in [8_000u32, 11_025, 22_050, 44_100, 48_000, 96_000, 44_101] {
            let len = from as usize; // one second
            let input: Vec<f32> = sine(440.0, from, len, 0.5)
                .into_iter()
                .map(|v| v as f32)
                .collect();
            let out = resample(&input, from, SAMPLE_RATE).unwrap();
            assert_eq!(out.len(), SAMPLE_RATE as usize, "from {from}");
            let (amp, phase) = tone(&out, 440.0, SAMPLE_RATE);
            assert!((amp - 0.5).abs() < 0.01, "from {from}: amplitude {amp}");
            assert!(phase.abs() < 0.01, "from {from}: phase {phase}");
            // Sample by sample (away from the edges, where the signal starts and stops).
            let err = max_error_vs_sine(&out, 440.0, SAMPLE_RATE, 0.5, 800);
            assert!(err < 2e-3, "from {from}: max error {err}");
        }
    }

    #[test]
    fn downsampling_removes_tones_above_the_new_nyquist() {
        // 12 kHz at 48 kHz would alias to 4 kHz at 16 kHz.
        let input: Vec<f32> = sine(12_000.0, 48_000, 48_000, 0.5)
            .into_iter()
            .map(|v| v as f32)
            .collect();
        let out = resample(&input, 48_000, SAMPLE_RATE).unwrap();
        let (alias, _) = tone(&out[400..out.len() - 400], 4_000.0, SAMPLE_RATE);
        assert!(alias < 1e-3, "aliased amplitude {alias}");
    }

    #[test]
    fn upsampling_keeps_a_sine() {
        let input: Vec<f32> = sine(1_000.0, SAMPLE_RATE, 16_000, 0.8)
            .into_iter()
            .map(|v| v as f32)
            .collect();
        let out = resample(&input, SAMPLE_RATE, 44_100).unwrap();
        assert_eq!(out.len(), 44_100);
        let err = max_error_vs_sine(&out, 1_000.0, 44_100, 0.8, 2_000);
        assert!(err < 2e-3, "max error {err}");
    }

    #[test]
    fn tiny_and_degenerate_inputs() {
        assert!(resample(&[], 44_100, 16_000).unwrap().is_empty());
        assert!(resample(&[0.5], 48_000, 16_000).unwrap().is_empty());
        assert_eq!(resample(&[0.5], 8_000, 16_000).unwrap().len(), 2);
        assert_eq!(resample(&[0.5, -0.5], 4_000, 16_000).unwrap().len(), 8);
        assert_eq!(resample(&[0.25], 16_000, 16_000).unwrap(), vec![0.25]);
        for (from, to) in [
            (0, 16_000),
            (16_000, 0),
            (1, 16_000),
            (MIN_SAMPLE_RATE - 1, 16_000),
            (MAX_SAMPLE_RATE + 1, 16_000),
        ] {
            let err = resample(&[0.0; 10], from, to).unwrap_err();
            assert!(matches!(err, AudioError::Resample { .. }), "{err}");
            assert!(err.to_string().contains("Hz"), "{err}");
        }
    }

    fn write_wav(path: &Path, spec: WavSpec, samples: impl IntoIterator<Item = f64>) {
        let mut writer = WavWriter::create(path, spec).unwrap();
        for v in samples {
            match (spec.sample_format, spec.bits_per_sample) {
                (SampleFormat::Float, _) => writer.write_sample(v as f32).unwrap(),
                (SampleFormat::Int, 8) => writer.write_sample((v * 127.0).round() as i8).unwrap(),
                (SampleFormat::Int, 16) => {
                    writer.write_sample((v * 32767.0).round() as i16).unwrap()
                }
                (SampleFormat::Int, bits) => writer
                    .write_sample((v * ((1i64 << (bits - 1)) - 1) as f64).round() as i32)
                    .unwrap(),
            }
        }
        writer.finalize().unwrap();
    }

    fn spec(channels: u16, rate: u32, bits: u16, format: SampleFormat) -> WavSpec {
        WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: format,
        }
    }

    #[test]
    fn reads_16k_mono_i16_exactly() {
        let dir = TempDir::new("identity");
        let path = dir.path("a.wav");
        let values: Vec<i16> = vec![0, 1, -1, 16_384, -32_768, 32_767, 123];
        let mut writer = WavWriter::create(&path, spec(1, 16_000, 16, SampleFormat::Int)).unwrap();
        for &v in &values {
            writer.write_sample(v).unwrap();
        }
        writer.finalize().unwrap();
        let got = read_wav(&path).unwrap();
        let want: Vec<f32> = values.iter().map(|&v| f32::from(v) / 32_768.0).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn reads_8k_stereo_i16_downmixed_and_upsampled() {
        let dir = TempDir::new("stereo");
        let path = dir.path("a.wav");
        // Left and right carry the same tone with opposite DC offsets: the mean is the tone.
        let tone = sine(300.0, 8_000, 8_000, 0.4);
        let frames = tone.iter().flat_map(|&v| [v + 0.2, v - 0.2]);
        write_wav(&path, spec(2, 8_000, 16, SampleFormat::Int), frames);
        let got = read_wav(&path).unwrap();
        assert_eq!(got.len(), 16_000);
        let err = max_error_vs_sine(&got, 300.0, SAMPLE_RATE, 0.4, 1_000);
        assert!(err < 3e-3, "max error {err}");
    }

    #[test]
    fn reads_96k_f32_mono() {
        let dir = TempDir::new("f32");
        let path = dir.path("a.wav");
        write_wav(
            &path,
            spec(1, 96_000, 32, SampleFormat::Float),
            sine(1_000.0, 96_000, 48_000, 0.9),
        );
        let got = read_wav(&path).unwrap();
        assert_eq!(got.len(), 8_000);
        let err = max_error_vs_sine(&got, 1_000.0, SAMPLE_RATE, 0.9, 800);
        assert!(err < 2e-3, "max error {err}");
    }

    #[test]
    fn reads_44k1_i24_and_other_integer_widths() {
        let dir = TempDir::new("int");
        for (bits, tolerance) in [(24u16, 2e-3), (32, 2e-3), (8, 2e-2)] {
            let path = dir.path(&format!("a{bits}.wav"));
            write_wav(
                &path,
                spec(1, 44_100, bits, SampleFormat::Int),
                sine(500.0, 44_100, 22_050, 0.7),
            );
            let got = read_wav(&path).unwrap();
            assert_eq!(got.len(), 8_000, "{bits}-bit");
            let err = max_error_vs_sine(&got, 500.0, SAMPLE_RATE, 0.7, 800);
            assert!(err < tolerance, "{bits}-bit: max error {err}");
        }
    }

    #[test]
    fn files_longer_than_the_limit_are_refused_before_reading() {
        let dir = TempDir::new("long");
        // 8 kHz 8-bit mono, 8000 bytes a second: the header and the file's (sparse, so free)
        // size agree on the limit and one minute more.
        let path = dir.path("long.wav");
        let seconds = MAX_WAV_SECONDS + 60;
        let data_len = (seconds * 8_000) as u32;
        let mut bytes = raw_wav(1, 1, 8_000, 8, &[]);
        bytes[40..44].copy_from_slice(&data_len.to_le_bytes());
        bytes[4..8].copy_from_slice(&(36 + data_len).to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(bytes.len() as u64 + u64::from(data_len))
            .unwrap();
        let err = read_wav(&path).unwrap_err();
        assert!(matches!(err, AudioError::TooLong { .. }), "{err}");
        assert!(
            err.to_string().contains(&format!("is {seconds} s long")),
            "{err}"
        );
    }

    #[test]
    fn empty_wav_is_empty() {
        let dir = TempDir::new("empty");
        let path = dir.path("a.wav");
        write_wav(&path, spec(2, 44_100, 16, SampleFormat::Int), []);
        assert!(read_wav(&path).unwrap().is_empty());
    }

    #[test]
    fn bad_files_are_errors_naming_the_file() {
        let dir = TempDir::new("bad");

        let text = dir.path("notes.wav");
        std::fs::write(&text, "just some text, not audio\n").unwrap();
        let err = read_wav(&text).unwrap_err();
        assert!(matches!(err, AudioError::NotWav { .. }), "{err}");
        assert!(err.to_string().contains("notes.wav"), "{err}");

        let mp3 = dir.path("song.mp3");
        std::fs::write(&mp3, b"ID3\x04\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x00").unwrap();
        assert!(matches!(read_wav(&mp3), Err(AudioError::NotWav { .. })));

        let good = dir.path("good.wav");
        write_wav(
            &good,
            spec(1, 16_000, 16, SampleFormat::Int),
            sine(100.0, 16_000, 1_000, 0.5),
        );
        let bytes = std::fs::read(&good).unwrap();
        let cut = dir.path("cut.wav");
        std::fs::write(&cut, &bytes[..bytes.len() - 501]).unwrap();
        let err = read_wav(&cut).unwrap_err();
        assert!(matches!(err, AudioError::Truncated { .. }), "{err}");
        assert!(err.to_string().contains("cut.wav"), "{err}");
        let header_only = dir.path("header.wav");
        std::fs::write(&header_only, &bytes[..20]).unwrap();
        assert!(matches!(
            read_wav(&header_only),
            Err(AudioError::Truncated { .. })
        ));

        let missing = dir.path("missing.wav");
        let err = read_wav(&missing).unwrap_err();
        assert!(matches!(err, AudioError::Io { .. }), "{err}");
        assert!(err.to_string().contains("missing.wav"), "{err}");
    }

    /// A canonical 44-byte header followed by `data`.
    fn raw_wav(format: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let block = channels * bits.div_ceil(8);
        let mut v = Vec::new();
        v.extend_from_slice(b"RIFF");
        v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
        v.extend_from_slice(b"WAVEfmt ");
        v.extend_from_slice(&16u32.to_le_bytes());
        v.extend_from_slice(&format.to_le_bytes());
        v.extend_from_slice(&channels.to_le_bytes());
        v.extend_from_slice(&rate.to_le_bytes());
        v.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
        v.extend_from_slice(&block.to_le_bytes());
        v.extend_from_slice(&bits.to_le_bytes());
        v.extend_from_slice(b"data");
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn unsupported_formats_are_errors() {
        let dir = TempDir::new("unsupported");
        let cases = [
            ("f64.wav", raw_wav(3, 1, 16_000, 64, &[0; 16])),
            ("zero_channels.wav", raw_wav(1, 0, 16_000, 16, &[])),
            ("zero_rate.wav", raw_wav(1, 1, 0, 16, &[0; 4])),
            ("alaw.wav", raw_wav(6, 1, 8_000, 8, &[0; 4])),
        ];
        for (name, bytes) in cases {
            let path = dir.path(name);
            std::fs::write(&path, bytes).unwrap();
            let err = read_wav(&path).unwrap_err();
            assert!(
                matches!(err, AudioError::Unsupported { .. }),
                "{name}: {err}"
            );
            assert!(err.to_string().contains(name), "{err}");
        }
        // Rates outside 4 kHz to 384 kHz are refused before any sample is read: a 200 KB file
        // at 1 Hz would otherwise be 28 hours, 6.4 GB, at 16 kHz.
        for rate in [1, MIN_SAMPLE_RATE - 1, MAX_SAMPLE_RATE + 1] {
            let name = format!("rate_{rate}.wav");
            let path = dir.path(&name);
            std::fs::write(&path, raw_wav(1, 1, rate, 16, &vec![0; 200_000])).unwrap();
            let err = read_wav(&path).unwrap_err();
            assert!(matches!(err, AudioError::Unsupported { .. }), "{err}");
            let text = err.to_string();
            assert!(text.contains(&name), "{text}");
            assert!(text.contains(&format!("sample rate {rate} Hz")), "{text}");
        }
        for (rate, expected) in [(MIN_SAMPLE_RATE, 16_000), (MAX_SAMPLE_RATE, 167)] {
            let path = dir.path(&format!("edge_{rate}.wav"));
            std::fs::write(&path, raw_wav(1, 1, rate, 16, &vec![0; 8_000])).unwrap();
            assert_eq!(read_wav(&path).unwrap().len(), expected, "{rate} Hz");
        }
        // A header that promises far more data than the file holds.
        let path = dir.path("liar.wav");
        let mut bytes = raw_wav(1, 1, 16_000, 16, &[0; 8]);
        bytes[40..44].copy_from_slice(&0x7fff_fff0u32.to_le_bytes());
        std::fs::write(&path, bytes).unwrap();
        assert!(matches!(read_wav(&path), Err(AudioError::Truncated { .. })));
    }
}
