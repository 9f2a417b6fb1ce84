//! The generator's randomness: a small, fast, seedable PRNG (xoshiro256++ seeded through
//! SplitMix64), a stable integer hash for "same value every time for this host", and Vose's alias
//! table for O(1) weighted picks.
//!
//! Our own code rather than the `rand` crate: the output must be byte-identical for a seed across
//! versions and platforms, and the hot loop wants a handful of inlined integer operations.

/// SplitMix64 step: expands one `u64` seed into a well-mixed stream.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    mix64(*state)
}

/// A stable 64-bit hash of an integer (the SplitMix64 finaliser). Used for values that must not
/// change between lines, such as a host's daemon PIDs or its NTP server.
#[inline]
pub fn mix64(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    value ^ (value >> 31)
}

/// A probability stored as a 53-bit threshold, so a draw is one integer comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prob(u64);

impl Prob {
    const ONE: u64 = 1 << 53;

    /// Clamps `p` into 0..=1; `Prob::new(1.0)` always fires and `Prob::new(0.0)` never does.
    pub fn new(p: f64) -> Self {
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        Prob((p * Self::ONE as f64) as u64)
    }
}

/// xoshiro256++ (Blackman and Vigna, public domain).
#[derive(Debug, Clone)]
pub struct Rng {
    state: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        let mut sm = seed;
        let state = [
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
            splitmix64(&mut sm),
        ];
        Rng { state }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let [s0, s1, s2, s3] = self.state;
        let result = s0.wrapping_add(s3).rotate_left(23).wrapping_add(s0);
        let t = s1 << 17;
        let mut s = [s0, s1, s2 ^ s0, s3 ^ s1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        self.state = s;
        result
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias for our small `n` is below 2⁻⁴⁰).
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    #[inline]
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        debug_assert!(lo <= hi);
        lo + self.below(hi - lo + 1)
    }

    #[inline]
    pub fn chance(&mut self, p: Prob) -> bool {
        (self.next_u64() >> 11) < p.0
    }
}

/// Vose's alias table: after an O(n) build, each weighted pick costs two random numbers.
#[derive(Debug, Clone)]
pub struct AliasTable {
    /// Chance (53-bit scale) of keeping column `i` rather than taking `alias[i]`.
    keep: Vec<u64>,
    alias: Vec<u32>,
}

impl AliasTable {
    /// `weights` must be non-negative with a positive sum.
    pub fn new(weights: &[f64]) -> Self {
        let count = weights.len();
        let total: f64 = weights.iter().sum();
        assert!(
            count > 0 && total > 0.0,
            "alias table needs a positive weight"
        );
        let mut scaled: Vec<f64> = weights.iter().map(|w| w * count as f64 / total).collect();
        let mut keep = vec![Prob::ONE; count];
        let mut alias: Vec<u32> = (0..count as u32).collect();
        let (mut small, mut large): (Vec<usize>, Vec<usize>) =
            (0..count).partition(|&index| scaled[index] < 1.0);
        while let (Some(&under), Some(&over)) = (small.last(), large.last()) {
            small.pop();
            keep[under] = (scaled[under] * Prob::ONE as f64) as u64;
            alias[under] = over as u32;
            scaled[over] -= 1.0 - scaled[under];
            if scaled[over] < 1.0 {
                large.pop();
                small.push(over);
            }
        }
        // Whatever is left is 1.0 up to rounding: always keep it.
        AliasTable { keep, alias }
    }

    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> usize {
        let column = rng.below(self.keep.len() as u64) as usize;
        if (rng.next_u64() >> 11) < self.keep[column] {
            column
        } else {
            self.alias[column] as usize
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        let mut c = Rng::new(8);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn probabilities_and_ranges() {
        let mut rng = Rng::new(1);
        let hits = (0..100_000).filter(|_| rng.chance(Prob::new(0.25))).count();
        assert!((23_500..26_500).contains(&hits), "{hits}");
        assert!((0..1000).all(|_| rng.chance(Prob::new(1.0))));
        assert!((0..1000).all(|_| !rng.chance(Prob::new(0.0))));
        assert!((0..1000).all(|_| (3..=5).contains(&rng.range(3, 5))));
    }

    #[test]
    fn alias_table_follows_weights() {
        let table = AliasTable::new(&[0.5, 0.0, 0.3, 0.2]);
        let mut rng = Rng::new(3);
        let mut counts = [0usize; 4];
        for _ in 0..200_000 {
            counts[table.sample(&mut rng)] += 1;
        }
        assert_eq!(counts[1], 0);
        for (count, want) in [(counts[0], 0.5), (counts[2], 0.3), (counts[3], 0.2)] {
            let share = count as f64 / 200_000.0;
            assert!((share - want).abs() < 0.01, "{share} vs {want}");
        }
    }
}
