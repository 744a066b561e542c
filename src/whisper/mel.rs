//! Log-mel spectrogram exactly as Whisper computes it.
//!
//! The steps are those of the reference front ends (openai-whisper's `log_mel_spectrogram`,
//! faster-whisper's `FeatureExtractor`): zero padding appended to the audio, a centred STFT
//! (reflect padding of `N_FFT / 2` on both sides, periodic Hann window of `N_FFT`, hop
//! `HOP_LENGTH`) whose last frame is dropped, the power spectrum, the mel filterbank,
//! `log10(max(x, 1e-10))`, then `max(x, global_max - 8)` and `(x + 4) / 4`, where the global
//! maximum is taken over the whole spectrogram (not per 30 s window).

use std::sync::{Arc, OnceLock};

use rayon::prelude::*;
use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

/// STFT window and FFT length.
pub const N_FFT: usize = 400;
/// STFT hop: 10 ms at 16 kHz.
pub const HOP_LENGTH: usize = 160;
/// Frequency bins of the one-sided spectrum, `N_FFT / 2 + 1`.
pub const N_FREQS: usize = N_FFT / 2 + 1;
/// Samples in one 30 s encoder window at 16 kHz.
pub const CHUNK_SAMPLES: usize = 480_000;
/// Mel frames in one 30 s encoder window.
pub const CHUNK_FRAMES: usize = CHUNK_SAMPLES / HOP_LENGTH;

/// Frames computed by one parallel task.
const FRAMES_PER_TASK: usize = 64;

/// Errors building a mel filterbank from stored data.
#[derive(Debug, thiserror::Error)]
pub enum MelError {
    /// The data does not hold `n_mels * n_freqs` values.
    #[error(
        "mel filterbank data has {len} values, expected n_mels {n_mels} x n_freqs {n_freqs} = \
         {expected}"
    )]
    Shape {
        /// Rows announced.
        n_mels: usize,
        /// Columns announced.
        n_freqs: usize,
        /// `n_mels * n_freqs`, or `usize::MAX` when that overflows.
        expected: usize,
        /// Values given.
        len: usize,
    },
    /// The filterbank is not for `N_FFT`-point spectra, or has no rows.
    #[error(
        "mel filterbank is {n_mels} x {n_freqs}, expected at least 1 mel band and {N_FREQS} \
         frequency bins (n_fft {N_FFT})"
    )]
    Size {
        /// Rows given.
        n_mels: usize,
        /// Columns given.
        n_freqs: usize,
    },
    /// A weight is NaN or infinite.
    #[error("mel filterbank value {value} at band {band}, bin {bin} is not finite")]
    NotFinite {
        /// Row of the value.
        band: usize,
        /// Column of the value.
        bin: usize,
        /// The value.
        value: f32,
    },
}

/// A mel filterbank, row-major `[n_mels, n_freqs]`.
///
/// [`log_mel_spectrogram`] takes filters for `N_FFT`-point spectra (`n_freqs == N_FREQS`), as
/// [`MelFilters::slaney`] makes for `n_fft = N_FFT` and [`MelFilters::from_data`] requires.
#[derive(Debug, Clone, PartialEq)]
pub struct MelFilters {
    /// Number of mel bands (rows): 80, or 128 for large-v3.
    pub n_mels: usize,
    /// Number of frequency bins (columns), `n_fft / 2 + 1`.
    pub n_freqs: usize,
    /// The weights, `n_mels * n_freqs` values.
    pub data: Vec<f32>,
}

impl MelFilters {
    /// Slaney-style mel filters as librosa's `filters.mel` makes them by default (`htk=False`,
    /// `norm="slaney"`, `fmin = 0`, `fmax = sample_rate / 2`), which is what openai-whisper
    /// ships and faster-whisper computes. Computed in `f64`, stored as `f32`.
    ///
    /// Degenerate arguments (no bands, a zero rate) give all-zero filters, never NaN.
    pub fn slaney(n_mels: usize, n_fft: usize, sample_rate: u32) -> Self {
        let n_freqs = n_fft / 2 + 1;
        let sr = f64::from(sample_rate);
        // Band edges: n_mels + 2 points evenly spaced on the mel scale from 0 to Nyquist.
        let mel_max = hz_to_mel(sr / 2.0);
        let step = mel_max / (n_mels + 1) as f64;
        let edges: Vec<f64> = (0..n_mels + 2)
            .map(|i| {
                let mel = if i == n_mels + 1 {
                    mel_max
                } else {
                    i as f64 * step
                };
                mel_to_hz(mel)
            })
            .collect();
        let mut data = vec![0.0f32; n_mels * n_freqs];
        for (m, row) in data.chunks_exact_mut(n_freqs.max(1)).enumerate() {
            let (lo, center, hi) = (edges[m], edges[m + 1], edges[m + 2]);
            if hi <= lo {
                continue;
            }
            let norm = 2.0 / (hi - lo);
            for (k, w) in row.iter_mut().enumerate() {
                let f = k as f64 * sr / n_fft as f64;
                let rising = if center > lo {
                    (f - lo) / (center - lo)
                } else {
                    0.0
                };
                let falling = if hi > center {
                    (hi - f) / (hi - center)
                } else {
                    0.0
                };
                *w = (rising.min(falling).max(0.0) * norm) as f32;
            }
        }
        MelFilters {
            n_mels,
            n_freqs,
            data,
        }
    }

    /// Filters stored elsewhere, e.g. the `[n_mels, 201]` filterbank inside a whisper.cpp
    /// ggml file. Checks the shape (`n_freqs` must be `N_FREQS`) and that every value is
    /// finite.
    pub fn from_data(n_mels: usize, n_freqs: usize, data: Vec<f32>) -> Result<Self, MelError> {
        if n_mels == 0 || n_freqs != N_FREQS {
            return Err(MelError::Size { n_mels, n_freqs });
        }
        let expected = n_mels.saturating_mul(n_freqs);
        if data.len() != expected {
            return Err(MelError::Shape {
                n_mels,
                n_freqs,
                expected,
                len: data.len(),
            });
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(MelError::NotFinite {
                band: i / n_freqs,
                bin: i % n_freqs,
                value: data[i],
            });
        }
        Ok(MelFilters {
            n_mels,
            n_freqs,
            data,
        })
    }

    /// Each band's nonzero weights and the first bin they apply to. Only the bins an
    /// `N_FFT`-point spectrum has are kept; a short row is used as it is.
    fn sparse_rows(&self) -> Vec<(usize, &[f32])> {
        let n_freqs = self.n_freqs.max(1);
        self.data
            .chunks(n_freqs)
            .take(self.n_mels)
            .map(|row| {
                let row = &row[..row.len().min(N_FREQS)];
                match row.iter().position(|&w| w != 0.0) {
                    Some(first) => {
                        let last = row.iter().rposition(|&w| w != 0.0).unwrap_or(first);
                        (first, &row[first..=last])
                    }
                    None => (0, &row[..0]),
                }
            })
            .collect()
    }
}

/// Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above.
fn hz_to_mel(hz: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if hz >= MIN_LOG_HZ {
        min_log_mel + (hz / MIN_LOG_HZ).ln() / logstep
    } else {
        hz / F_SP
    }
}

/// Inverse of [`hz_to_mel`].
fn mel_to_hz(mel: f64) -> f64 {
    const F_SP: f64 = 200.0 / 3.0;
    const MIN_LOG_HZ: f64 = 1000.0;
    let min_log_mel = MIN_LOG_HZ / F_SP;
    let logstep = 6.4f64.ln() / 27.0;
    if mel >= min_log_mel {
        MIN_LOG_HZ * (logstep * (mel - min_log_mel)).exp()
    } else {
        mel * F_SP
    }
}

/// A log-mel spectrogram, row-major `[n_mels, n_frames]`.
#[derive(Debug, Clone, PartialEq)]
pub struct LogMel {
    /// Mel bands (rows).
    pub n_mels: usize,
    /// Frames (columns), one per `HOP_LENGTH` samples.
    pub n_frames: usize,
    /// `n_mels * n_frames` values.
    pub data: Vec<f32>,
}

impl LogMel {
    /// Frames `[start, start + len)` as a new `LogMel` of exactly `len` frames. Frames past the
    /// end of `self` are zeros, the value the reference `pad_or_trim` pads the (already
    /// normalised) log-mel with.
    ///
    /// To build an encoder input the way the references do, first cut the window to the
    /// content, then pad it to [`CHUNK_FRAMES`]: `mel.window(seek, size).window(0,
    /// CHUNK_FRAMES)` with `size = min(CHUNK_FRAMES, content_frames - seek)` (see
    /// [`log_mel_spectrogram`] for `content_frames`).
    pub fn window(&self, start: usize, len: usize) -> LogMel {
        let mut data = vec![0.0f32; self.n_mels * len];
        let available = self.n_frames.saturating_sub(start).min(len);
        if available > 0 {
            for (dst, src) in data
                .chunks_exact_mut(len)
                .zip(self.data.chunks_exact(self.n_frames))
            {
                dst[..available].copy_from_slice(&src[start..start + available]);
            }
        }
        LogMel {
            n_mels: self.n_mels,
            n_frames: len,
            data,
        }
    }

    /// The value of band `mel` at frame `frame`, if both are in range.
    pub fn get(&self, mel: usize, frame: usize) -> Option<f32> {
        if mel < self.n_mels && frame < self.n_frames {
            self.data.get(mel * self.n_frames + frame).copied()
        } else {
            None
        }
    }
}

/// The FFT plan and window, made once and shared by every call.
struct Stft {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
}

fn stft() -> &'static Stft {
    static STFT: OnceLock<Stft> = OnceLock::new();
    STFT.get_or_init(|| {
        // Periodic Hann window (numpy's `hanning(N_FFT + 1)[:-1]`), computed in f64.
        let window = (0..N_FFT)
            .map(|n| {
                let phase = 2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64;
                (0.5 - 0.5 * phase.cos()) as f32
            })
            .collect();
        Stft {
            fft: RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT),
            window,
        }
    })
}

/// Per-task buffers for the STFT.
struct Scratch {
    frame: Vec<f32>,
    spectrum: Vec<Complex<f32>>,
    fft: Vec<Complex<f32>>,
    power: Vec<f32>,
}

impl Scratch {
    fn new(plan: &Stft) -> Self {
        Scratch {
            frame: plan.fft.make_input_vec(),
            spectrum: plan.fft.make_output_vec(),
            fft: plan.fft.make_scratch_vec(),
            power: vec![0.0; N_FREQS],
        }
    }
}

/// Index into a signal of length `len` after numpy's `reflect` padding (the edge sample is not
/// repeated; pads longer than the signal keep reflecting), for a position `i` that may lie
/// before the start or past the end.
fn reflect(i: isize, len: usize) -> usize {
    if len == 1 {
        return 0;
    }
    let period = 2 * (len as isize - 1);
    let m = i.rem_euclid(period) as usize;
    if m < len {
        m
    } else {
        period as usize - m
    }
}

/// The log-mel spectrogram of 16 kHz mono `samples` with `padding` zero samples appended
/// first, exactly as the reference front ends compute it.
///
/// The result has `(samples.len() + padding) / HOP_LENGTH` frames (the STFT's last frame is
/// dropped as the references do) and `filters.n_mels` bands; it is empty when there are no
/// frames. The normalisation `max(x, global_max - 8)` uses the maximum of the whole result,
/// padding frames included, so the padding changes the values, not only the length.
///
/// Matching the references:
/// - **faster-whisper** (`WhisperModel.transcribe`, `FeatureExtractor.__call__` default): pass
///   `padding = HOP_LENGTH` (160). Its content is `n_frames - 1` frames; the window at `seek`
///   is `size = min(CHUNK_FRAMES, content_frames - seek)` frames sliced from `seek`, then
///   zero-padded to `CHUNK_FRAMES` (`pad_or_trim`): `mel.window(seek, size).window(0,
///   CHUNK_FRAMES)`. After a window, `seek` advances by the frames the decoder consumed.
///   Its batched pipeline computes each VAD chunk on its own with the same padding and drops
///   the last frame the same way.
/// - **openai-whisper** (`transcribe`): pass `padding = CHUNK_SAMPLES` (30 s of zeros); its
///   content is `n_frames - CHUNK_FRAMES` frames, sliced and padded the same way.
///
/// `filters` should be `[n_mels, N_FREQS]` (see [`MelFilters`]); weights for bins past
/// `N_FREQS` are ignored. Frames are computed in parallel on the current rayon pool.
pub fn log_mel_spectrogram(samples: &[f32], filters: &MelFilters, padding: usize) -> LogMel {
    let plan = stft();
    let rows = filters.sparse_rows();
    let n_mels = rows.len();
    let total = samples.len().saturating_add(padding);
    let n_frames = total / HOP_LENGTH;
    if n_frames == 0 || n_mels == 0 {
        return LogMel {
            n_mels,
            n_frames: 0,
            data: Vec::new(),
        };
    }

    // Pass 1, parallel over frames: log10 of the mel energies, frame-major.
    let mut by_frame = vec![0.0f32; n_frames * n_mels];
    let maxima: Vec<f32> = by_frame
        .par_chunks_mut(FRAMES_PER_TASK * n_mels)
        .enumerate()
        .map_init(
            || Scratch::new(plan),
            |scratch, (task, out)| {
                let mut max = f32::NEG_INFINITY;
                for (i, mels) in out.chunks_exact_mut(n_mels).enumerate() {
                    let frame = task * FRAMES_PER_TASK + i;
                    frame_power(plan, samples, total, frame, scratch);
                    for (value, &(first, weights)) in mels.iter_mut().zip(&rows) {
                        let power = &scratch.power[first..first + weights.len()];
                        *value = weights.iter().zip(power).map(|(w, p)| w * p).sum();
                    }
                    for value in mels.iter_mut() {
                        *value = log10(value.max(1e-10));
                        max = max.max(*value);
                    }
                }
                max
            },
        )
        .collect();
    let floor = maxima.into_iter().fold(f32::NEG_INFINITY, f32::max) - 8.0;

    // Pass 2, parallel over bands: transpose to band-major, clamp and rescale.
    let mut data = vec![0.0f32; n_mels * n_frames];
    data.par_chunks_mut(n_frames)
        .enumerate()
        .for_each(|(m, row)| {
            for (t, value) in row.iter_mut().enumerate() {
                *value = (by_frame[t * n_mels + m].max(floor) + 4.0) / 4.0;
            }
        });
    LogMel {
        n_mels,
        n_frames,
        data,
    }
}

/// `log10(x)` for positive normal `x`, to about 1e-6 absolute: the exponent from the bits,
/// `ln` of the mantissa (reduced to [sqrt(1/2), sqrt(2))) from the series
/// `ln m = 2 atanh(z) = 2 (z + z^3/3 + ... + z^9/9)`, `z = (m - 1) / (m + 1)`, `|z| < 0.172`.
/// Branch-free so that the loop over a frame's bands vectorises; libm's `log10f` was the
/// largest single cost of the spectrogram.
#[inline(always)]
fn log10(x: f32) -> f32 {
    const LN2: f32 = std::f32::consts::LN_2;
    const LOG10_E: f32 = std::f32::consts::LOG10_E;
    let bits = x.to_bits();
    let exponent = ((bits >> 23) & 0xff) as i32 - 127;
    let mantissa = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let high = mantissa > std::f32::consts::SQRT_2;
    let m = if high { mantissa * 0.5 } else { mantissa };
    let e = (exponent + i32::from(high)) as f32;
    let z = (m - 1.0) / (m + 1.0);
    let z2 = z * z;
    let series = 1.0 + z2 * (1.0 / 3.0 + z2 * (1.0 / 5.0 + z2 * (1.0 / 7.0 + z2 * (1.0 / 9.0))));
    (e * LN2 + 2.0 * z * series) * LOG10_E
}

/// The power spectrum of STFT frame `frame` into `scratch.power`. The signal is `samples`
/// followed by zeros up to `total` samples, reflect-padded by `N_FFT / 2` on both sides.
fn frame_power(plan: &Stft, samples: &[f32], total: usize, frame: usize, scratch: &mut Scratch) {
    let start = (frame * HOP_LENGTH) as isize - (N_FFT / 2) as isize;
    let inside = start >= 0 && start as usize + N_FFT <= samples.len();
    if inside {
        let src = &samples[start as usize..start as usize + N_FFT];
        for ((dst, &x), &w) in scratch.frame.iter_mut().zip(src).zip(&plan.window) {
            *dst = x * w;
        }
    } else {
        for (n, (dst, &w)) in scratch.frame.iter_mut().zip(&plan.window).enumerate() {
            let j = reflect(start + n as isize, total);
            *dst = samples.get(j).copied().unwrap_or(0.0) * w;
        }
    }
    plan.fft
        .process_with_scratch(&mut scratch.frame, &mut scratch.spectrum, &mut scratch.fft)
        .expect("STFT buffers are sized by the FFT plan");
    for (p, c) in scratch.power.iter_mut().zip(&scratch.spectrum) {
        *p = c.norm_sqr();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::path::{Path, PathBuf};

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/features")
            .join(name)
    }

    fn jfk_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/jfk.wav")
    }

    #[derive(Deserialize)]
    struct FilterFixture {
        n_freqs: usize,
        row_sums: Vec<f64>,
        entries: Vec<(usize, usize, f32)>,
        nonzero: usize,
    }

    #[test]
    fn slaney_filters_match_librosa() {
        let text = std::fs::read_to_string(fixture("mel_filters.json")).unwrap();
        let fixtures: std::collections::HashMap<String, FilterFixture> =
            serde_json::from_str(&text).unwrap();
        for n_mels in [80usize, 128] {
            let want = &fixtures[&n_mels.to_string()];
            let f = MelFilters::slaney(n_mels, N_FFT, 16_000);
            assert_eq!((f.n_mels, f.n_freqs), (n_mels, want.n_freqs));
            assert_eq!(f.data.len(), n_mels * N_FREQS);
            for (m, row) in f.data.chunks_exact(N_FREQS).enumerate() {
                let sum: f64 = row.iter().map(|&v| f64::from(v)).sum();
                let rel = (sum - want.row_sums[m]).abs() / want.row_sums[m];
                assert!(
                    rel < 1e-6,
                    "n_mels {n_mels} row {m}: {sum} vs {}",
                    want.row_sums[m]
                );
            }
            for &(m, k, v) in &want.entries {
                let got = f.data[m * N_FREQS + k];
                assert!(
                    (got - v).abs() <= 1e-7 + 1e-6 * v.abs(),
                    "[{m},{k}] {got} vs {v}"
                );
            }
            let nonzero = f.data.iter().filter(|&&v| v > 0.0).count();
            assert_eq!(nonzero, want.nonzero, "n_mels {n_mels}");
        }
    }

    #[test]
    fn degenerate_filters_are_finite() {
        for f in [
            MelFilters::slaney(0, N_FFT, 16_000),
            MelFilters::slaney(80, N_FFT, 0),
            MelFilters::slaney(4, 0, 16_000),
        ] {
            assert_eq!(f.data.len(), f.n_mels * f.n_freqs);
            assert!(f.data.iter().all(|v| v.is_finite()));
        }
    }

    #[test]
    fn from_data_checks_shape_and_values() {
        let good = MelFilters::slaney(80, N_FFT, 16_000);
        let copy = MelFilters::from_data(80, N_FREQS, good.data.clone()).unwrap();
        assert_eq!(copy, good);
        let err = MelFilters::from_data(80, N_FREQS, vec![0.0; 10]).unwrap_err();
        assert!(err.to_string().contains("16080"), "{err}");
        let err = MelFilters::from_data(80, 257, vec![0.0; 80 * 257]).unwrap_err();
        assert!(err.to_string().contains("257"), "{err}");
        assert!(MelFilters::from_data(0, N_FREQS, vec![]).is_err());
        assert!(MelFilters::from_data(usize::MAX, N_FREQS, vec![]).is_err());
        let mut bad = good.data;
        bad[5 * N_FREQS + 7] = f32::NAN;
        let err = MelFilters::from_data(80, N_FREQS, bad).unwrap_err();
        assert!(err.to_string().contains("band 5, bin 7"), "{err}");
    }

    #[test]
    fn fast_log10_is_accurate() {
        let mut x = 1e-10f32;
        while x < 1e8 {
            let want = f64::from(x).log10();
            let got = f64::from(log10(x));
            assert!((got - want).abs() < 2e-6, "log10({x}) = {got}, want {want}");
            x *= 1.0137;
        }
        assert_eq!(log10(1.0), 0.0);
    }

    #[test]
    fn reflect_matches_numpy() {
        // numpy.pad(np.arange(1, 6), (7, 7), mode="reflect") - 1
        let want = [1, 2, 3, 4, 3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1, 0, 1, 2, 3];
        let got: Vec<usize> = (-7..12).map(|i| reflect(i, 5)).collect();
        assert_eq!(got, want);
        assert_eq!(reflect(-3, 1), 0);
    }

    #[test]
    fn window_slices_and_zero_pads() {
        let mel = LogMel {
            n_mels: 2,
            n_frames: 3,
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
        };
        assert_eq!(
            mel.window(1, 4).data,
            vec![2.0, 3.0, 0.0, 0.0, 5.0, 6.0, 0.0, 0.0]
        );
        assert_eq!(mel.window(0, 2).data, vec![1.0, 2.0, 4.0, 5.0]);
        assert_eq!(mel.window(7, 2).data, vec![0.0; 4]);
        assert_eq!(mel.window(usize::MAX, 1).data, vec![0.0; 2]);
        assert_eq!(mel.window(0, 0).n_frames, 0);
        assert_eq!(mel.get(1, 2), Some(6.0));
        assert_eq!(mel.get(2, 0), None);
    }

    #[test]
    fn empty_and_short_inputs() {
        let filters = MelFilters::slaney(80, N_FFT, 16_000);
        let mel = log_mel_spectrogram(&[], &filters, 0);
        assert_eq!((mel.n_mels, mel.n_frames, mel.data.len()), (80, 0, 0));
        let mel = log_mel_spectrogram(&[0.1; 159], &filters, 0);
        assert_eq!(mel.n_frames, 0);
        let mel = log_mel_spectrogram(&[], &filters, HOP_LENGTH);
        assert_eq!(mel.n_frames, 1);
        // Silence: every value is log10(1e-10) = -10, clamped to itself, then (x + 4) / 4.
        assert!(mel.data.iter().all(|&v| (v + 1.5).abs() < 1e-6));
        let mel = log_mel_spectrogram(&[0.0; 1000], &filters, CHUNK_SAMPLES);
        assert_eq!(mel.n_frames, 1000 / HOP_LENGTH + CHUNK_FRAMES);
    }

    #[derive(Deserialize)]
    struct MelCase {
        n_mels: usize,
        padding: usize,
        n_frames: usize,
        max: f32,
        window_start: usize,
        window_frames: usize,
        values: Vec<(usize, usize, f32)>,
    }

    #[derive(Deserialize)]
    struct ShortCase {
        len: usize,
        padding: usize,
        n_frames: usize,
        data: Vec<f32>,
    }

    #[derive(Deserialize)]
    struct MelFixture {
        samples: usize,
        cases: Vec<MelCase>,
        short: Vec<ShortCase>,
    }

    fn read_fixture() -> MelFixture {
        let text = std::fs::read_to_string(fixture("jfk_mel.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// Reads a 16-bit mono WAV the way the reference scripts do (value / 32768).
    fn read_pcm16(path: &Path) -> Vec<f32> {
        let mut reader = hound::WavReader::open(path)
            .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()));
        reader
            .samples::<i16>()
            .map(|s| f32::from(s.unwrap()) / 32768.0)
            .collect()
    }

    #[test]
    fn jfk_windows_match_faster_whisper() {
        let fixture = read_fixture();
        let audio = read_pcm16(&jfk_path());
        assert_eq!(audio.len(), fixture.samples);
        for case in &fixture.cases {
            let filters = MelFilters::slaney(case.n_mels, N_FFT, 16_000);
            let mel = log_mel_spectrogram(&audio, &filters, case.padding);
            assert_eq!(mel.n_frames, case.n_frames, "padding {}", case.padding);
            let max = mel.data.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert!((max - case.max).abs() < 1e-4, "max {max} vs {}", case.max);
            let window = mel
                .window(case.window_start, case.window_frames)
                .window(0, CHUNK_FRAMES);
            assert_eq!(window.data.len(), case.n_mels * CHUNK_FRAMES);
            let mut worst = 0.0f32;
            for &(m, t, want) in &case.values {
                let got = window.get(m, t).unwrap();
                worst = worst.max((got - want).abs());
            }
            assert!(
                worst < 1e-3,
                "n_mels {} padding {}: max abs diff {worst}",
                case.n_mels,
                case.padding
            );
        }
    }

    #[test]
    fn short_signals_match_faster_whisper() {
        let filters = MelFilters::slaney(80, N_FFT, 16_000);
        for case in read_fixture().short {
            let x: Vec<f32> = (0..case.len)
                .map(|n| ((n as f64 * 0.3).sin() * 0.5) as f32)
                .collect();
            let mel = log_mel_spectrogram(&x, &filters, case.padding);
            assert_eq!(mel.n_frames, case.n_frames, "len {}", case.len);
            let worst = mel
                .data
                .iter()
                .zip(&case.data)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(worst < 1e-3, "len {}: max abs diff {worst}", case.len);
        }
    }

    #[test]
    fn thirty_seconds_is_fast() {
        let filters = MelFilters::slaney(80, N_FFT, 16_000);
        let audio: Vec<f32> = (0..CHUNK_SAMPLES)
            .map(|n| ((n as f64 * 0.01).sin() * 0.3 + (n as f64 * 0.37).cos() * 0.1) as f32)
            .collect();
        let mel = log_mel_spectrogram(&audio, &filters, 0);
        assert_eq!(mel.n_frames, CHUNK_FRAMES);
        let best = (0..5)
            .map(|_| {
                let t = std::time::Instant::now();
                std::hint::black_box(log_mel_spectrogram(&audio, &filters, 0));
                t.elapsed()
            })
            .min()
            .unwrap();
        eprintln!("log-mel of 30 s: {best:?}");
        // Generous bound for a loaded shared machine; typically a few ms.
        assert!(best.as_millis() < 100, "{best:?}");
    }
}
