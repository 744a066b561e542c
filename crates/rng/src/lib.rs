//! The one pseudo-random generator of voxd: SplitMix64, seeded, so sampled decoding, grammar
//! samples and test data repeat exactly for a seed.
//!
//! Not for secrets: it is fast and statistically good, nothing more.

/// SplitMix64. Every seed (0 included) gives a full-period stream.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// A generator whose seed differs from run to run (the clock's nanoseconds).
    pub fn from_clock() -> Self {
        Rng::new(clock_seed())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), 53 bits.
    pub fn unit_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [0, 1), 24 bits (every value exact in f32).
    pub fn unit_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [-1, 1).
    pub fn signed_f32(&mut self) -> f32 {
        2.0 * self.unit_f32() - 1.0
    }

    /// Uniform in [0, n); `n` must be above 0.
    pub fn below(&mut self, n: usize) -> usize {
        ((self.unit_f64() * n as f64) as usize).min(n - 1)
    }

    /// An index drawn with probability proportional to its weight; None when none is above 0.
    pub fn weighted(&mut self, weights: &[f64]) -> Option<usize> {
        let total: f64 = weights.iter().filter(|w| **w > 0.0).sum();
        if total <= 0.0 || !total.is_finite() {
            return None;
        }
        let mut r = self.unit_f64() * total;
        for (i, &w) in weights.iter().enumerate() {
            if w <= 0.0 {
                continue;
            }
            if r < w {
                return Some(i);
            }
            r -= w;
        }
        // Rounding can leave `r` a hair above the last weight.
        weights.iter().rposition(|&w| w > 0.0)
    }
}

/// A seed that differs from run to run.
pub fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0x5eed, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_repeats_and_seeds_differ() {
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            (0..4).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        assert_ne!(draw(0), vec![0; 4], "seed 0 is a valid seed");
    }

    #[test]
    fn units_stay_in_range_and_fill_it() {
        let mut rng = Rng::new(1);
        let (mut low, mut high) = (1.0f32, -1.0f32);
        for _ in 0..10_000 {
            let u = rng.unit_f32();
            assert!((0.0..1.0).contains(&u));
            let s = rng.signed_f32();
            assert!((-1.0..1.0).contains(&s));
            low = low.min(s);
            high = high.max(s);
            assert!(rng.below(3) < 3);
        }
        assert!(low < -0.99 && high > 0.99, "{low} {high}");
    }

    #[test]
    fn weighted_follows_the_weights_and_skips_zeros() {
        let mut rng = Rng::new(3);
        let mut counts = [0usize; 3];
        for _ in 0..30_000 {
            counts[rng.weighted(&[1.0, 0.0, 3.0]).unwrap()] += 1;
        }
        assert_eq!(counts[1], 0);
        let share = counts[2] as f64 / 30_000.0;
        assert!((share - 0.75).abs() < 0.02, "{counts:?}");
        assert_eq!(rng.weighted(&[0.0, 0.0]), None);
        assert_eq!(rng.weighted(&[]), None);
    }
}
