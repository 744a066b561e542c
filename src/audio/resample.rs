//! Sample-rate conversion, streaming and whole-buffer.
//!
//! [`StreamResampler`] is the one resampler: rubato's synchronous FFT resampler run over fixed
//! blocks, with its filter delay removed so that output sample `n` sits at input time
//! `n * from / to`. The live front end feeds it whatever the capture delivers; [`resample`]
//! feeds it a whole buffer at once. Both end with `round(len * to / from)` samples.

use rubato::{FftFixedInOut, Resampler};

use super::{rate_in_range, AudioError};

/// Shortest FFT block, in samples of the faster side, the resampler is planned with: long
/// enough for a sharp anti-aliasing filter, short enough to keep the latency (about one
/// block) near 20 ms at 48 kHz.
const MIN_BLOCK: usize = 1024;

/// A streaming resampler from one fixed rate to another.
pub struct StreamResampler {
    from: u32,
    to: u32,
    /// `None` when the rates are equal: samples pass through untouched.
    fft: Option<FftFixedInOut<f32>>,
    /// Input collected towards the next block; its capacity is the block length.
    pending: Vec<f32>,
    block_in: usize,
    /// One block of output.
    out_block: Vec<f32>,
    /// Output samples still to discard: the filter's delay.
    to_skip: usize,
    /// Input samples accepted so far.
    consumed: u64,
    /// Output samples handed out so far.
    emitted: u64,
}

impl StreamResampler {
    /// Plans a resampler from `from` Hz to `to` Hz (each [`super::MIN_SAMPLE_RATE`] to
    /// [`super::MAX_SAMPLE_RATE`]).
    pub fn new(from: u32, to: u32) -> Result<Self, AudioError> {
        let rate_error = |detail: String| AudioError::Resample { from, to, detail };
        for rate in [from, to] {
            if !rate_in_range(rate) {
                return Err(rate_error(format!("rate {rate} Hz is out of range")));
            }
        }
        let mut this = StreamResampler {
            from,
            to,
            fft: None,
            pending: Vec::new(),
            block_in: 0,
            out_block: Vec::new(),
            to_skip: 0,
            consumed: 0,
            emitted: 0,
        };
        if from == to {
            return Ok(this);
        }
        let (from_n, to_n) = (from as usize, to as usize);
        let gcd = gcd(from_n, to_n);
        let (unit_in, unit_out) = (from_n / gcd, to_n / gcd);
        // An even number of rate units per block makes both block lengths even, so the
        // filter's delay of half an input block is exactly half an output block.
        let units = MIN_BLOCK
            .div_ceil(unit_in.max(unit_out))
            .max(2)
            .next_multiple_of(2);
        let (block_in, block_out) = (units * unit_in, units * unit_out);
        let fft = FftFixedInOut::<f32>::new(from_n, to_n, block_in, 1)
            .map_err(|e| rate_error(e.to_string()))?;
        if fft.input_frames_next() != block_in || fft.output_frames_next() != block_out {
            return Err(rate_error(format!(
                "rubato planned blocks of {} -> {} samples instead of {block_in} -> {block_out}",
                fft.input_frames_next(),
                fft.output_frames_next()
            )));
        }
        this.to_skip = fft.output_delay();
        this.fft = Some(fft);
        this.pending = Vec::with_capacity(block_in);
        this.block_in = block_in;
        this.out_block = vec![0.0; block_out];
        Ok(this)
    }

    /// The input rate in Hz.
    pub fn from_rate(&self) -> u32 {
        self.from
    }

    /// Feeds `input`; `emit` receives each run of output as soon as a block is complete.
    pub fn push(&mut self, input: &[f32], emit: &mut impl FnMut(&[f32])) -> Result<(), AudioError> {
        self.consumed += input.len() as u64;
        if self.fft.is_none() {
            self.emitted += input.len() as u64;
            emit(input);
            return Ok(());
        }
        let mut rest = input;
        while !rest.is_empty() {
            let take = (self.block_in - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.pending.len() == self.block_in {
                self.process_block(usize::MAX, emit)?;
            }
        }
        Ok(())
    }

    /// Ends the stream: flushes the filter with zeros and emits what is left, so that the
    /// whole output has `round(consumed * to / from)` samples.
    pub fn finish(&mut self, emit: &mut impl FnMut(&[f32])) -> Result<(), AudioError> {
        let total = rounded_output_len(self.consumed, self.from, self.to);
        while self.fft.is_some() && self.emitted < total {
            self.pending.resize(self.block_in, 0.0);
            let limit = (total - self.emitted) as usize;
            self.process_block(limit, emit)?;
        }
        Ok(())
    }

    /// Runs one full `pending` block and emits at most `limit` samples of its output.
    fn process_block(
        &mut self,
        limit: usize,
        emit: &mut impl FnMut(&[f32]),
    ) -> Result<(), AudioError> {
        let (from, to) = (self.from, self.to);
        let Some(fft) = self.fft.as_mut() else {
            return Ok(());
        };
        fft.process_into_buffer(&[&self.pending[..]], &mut [&mut self.out_block[..]], None)
            .map_err(|e| AudioError::Resample {
                from,
                to,
                detail: e.to_string(),
            })?;
        self.pending.clear();
        let skip = self.to_skip.min(self.out_block.len());
        self.to_skip -= skip;
        let ready = &self.out_block[skip..];
        let ready = &ready[..ready.len().min(limit)];
        self.emitted += ready.len() as u64;
        if !ready.is_empty() {
            emit(ready);
        }
        Ok(())
    }
}

/// Resamples a whole mono buffer from `from_rate` to `to_rate` Hz.
///
/// The output has `round(len * to_rate / from_rate)` samples, and output sample `n`
/// corresponds to input time `n / to_rate` seconds: rubato's filter delay is removed and the
/// tail is flushed with zeros. Equal rates return the input unchanged. Inputs of any length,
/// including 0 or 1 sample, are fine. Rates must be [`super::MIN_SAMPLE_RATE`] to
/// [`super::MAX_SAMPLE_RATE`] Hz.
pub fn resample(samples: &[f32], from_rate: u32, to_rate: u32) -> Result<Vec<f32>, AudioError> {
    let mut resampler = StreamResampler::new(from_rate, to_rate)?;
    let mut out =
        Vec::with_capacity(rounded_output_len(samples.len() as u64, from_rate, to_rate) as usize);
    let mut collect = |run: &[f32]| out.extend_from_slice(run);
    resampler.push(samples, &mut collect)?;
    resampler.finish(&mut collect)?;
    Ok(out)
}

/// `round(len * to / from)`, halves rounded up, without overflow.
pub(super) fn rounded_output_len(len: u64, from: u32, to: u32) -> u64 {
    let num = u128::from(len) * u128::from(to);
    let from = u128::from(from);
    ((2 * num + from) / (2 * from)) as u64
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chirp-like test signal with content across the band.
    fn signal(len: usize, rate: u32) -> Vec<f32> {
        (0..len)
            .map(|n| {
                let t = n as f32 / rate as f32;
                0.3 * (2.0 * std::f32::consts::PI * (200.0 + 900.0 * t) * t).sin()
            })
            .collect()
    }

    #[test]
    fn streaming_in_odd_pieces_equals_the_whole_buffer() {
        for from in [8_000u32, 11_025, 22_050, 44_100, 48_000, 96_000, 16_000] {
            let input = signal(from as usize * 2 + 123, from);
            let whole = resample(&input, from, 16_000).unwrap();
            let mut streamed = Vec::new();
            let mut r = StreamResampler::new(from, 16_000).unwrap();
            let mut collect = |run: &[f32]| streamed.extend_from_slice(run);
            for piece in input.chunks(from as usize / 97 + 1) {
                r.push(piece, &mut collect).unwrap();
            }
            r.finish(&mut collect).unwrap();
            assert_eq!(streamed.len(), whole.len(), "from {from}");
            let max = streamed
                .iter()
                .zip(&whole)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(max < 1e-6, "from {from}: max difference {max}");
        }
    }

    #[test]
    fn finish_without_input_emits_nothing() {
        let mut r = StreamResampler::new(48_000, 16_000).unwrap();
        let mut n = 0;
        r.finish(&mut |run: &[f32]| n += run.len()).unwrap();
        assert_eq!(n, 0);
    }
}
