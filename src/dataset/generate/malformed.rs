//! Malformed lines: a small share of generated lines are damaged after they are written, the
//! way full logs contain truncated, garbled or NUL-filled lines (datasets.md §6, §10.8), so the
//! loader's reject path gets exercised.
//!
//! The damage decisions use their own random stream. The ordinary stream is untouched, so for one
//! seed a run with `malformed_rate > 0` writes the same lines as a run without, except that the
//! damaged ones differ — which is exactly how the tests find them. Every kind of damage breaks
//! the strict grammar, so the parser always rejects a damaged line.

use super::rng::{Prob, Rng};
use crate::dataset::LogFormat;

pub struct Malformer {
    rng: Rng,
    rate: Prob,
    active: bool,
}

impl Malformer {
    pub fn new(seed: u64, rate: f64) -> Self {
        Malformer {
            // A fixed offset keeps this stream apart from the line stream of the same seed.
            rng: Rng::new(seed ^ 0x6d61_6c66_6f72_6d65),
            rate: Prob::new(rate),
            active: rate > 0.0,
        }
    }

    /// Maybe damages the line in `buf[start..]` (no line ending yet).
    #[inline]
    pub fn maybe_damage(&mut self, buf: &mut Vec<u8>, start: usize, format: LogFormat) {
        if self.active && self.rng.chance(self.rate) {
            self.damage(buf, start, format);
        }
    }

    fn damage(&mut self, buf: &mut Vec<u8>, start: usize, format: LogFormat) {
        // Tokens before the free-text part: Thunderbird's 8 header tokens, BGL's 9, HDFS's 4.
        let (header_tokens, epoch_token, date_token) = match format {
            LogFormat::Thunderbird => (8, 1, 2),
            LogFormat::Bgl => (9, 1, 2),
            LogFormat::Hdfs => (4, 0, 1),
        };
        let line = &mut buf[start..];
        match self.rng.below(4) {
            0 => {
                // Cut off after 1..=header_tokens tokens: the line ends before its message.
                let keep = self.rng.range(1, header_tokens) as usize;
                let cut = line
                    .iter()
                    .enumerate()
                    .filter(|&(_, &byte)| byte == b' ')
                    .nth(keep - 1)
                    .map_or(line.len(), |(index, _)| index);
                buf.truncate(start + cut);
            }
            1 => corrupt_token(line, epoch_token, |token| token[0] = b'x'),
            2 => corrupt_token(line, date_token, |token| {
                // `2005.11.09` → `2005-11-09`; HDFS `203615` → `2036x5`.
                for byte in token.iter_mut().filter(|byte| **byte == b'.') {
                    *byte = b'-';
                }
                if let Some(digit) = token.get_mut(4) {
                    *digit = b'x';
                }
            }),
            _ => line.fill(0),
        }
    }
}

/// Applies `change` to the `index`-th space-separated token of `line`.
fn corrupt_token(line: &mut [u8], index: usize, change: impl FnOnce(&mut [u8])) {
    if let Some(token) = line.split_mut(|&byte| byte == b' ').nth(index)
        && !token.is_empty()
    {
        change(token);
    }
}
