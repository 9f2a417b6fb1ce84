//! The generator's clock: a non-decreasing epoch per line that reproduces how syslog time looks
//! in the Loghub samples — many lines sharing a second, short gaps, and rare dense bursts.
//!
//! Model: each line stays on the current second with probability `same_second`; otherwise the
//! clock moves on by 1 + a geometric number of extra seconds. A new second starts a burst with
//! probability `burst_per_second`: the next 50–200 lines all share that second (a reboot printing
//! its kernel messages, datasets.md §9). The zero-delta share of lines is then about
//! `same_second` plus the burst lines, and the mean rate is
//! `1 / ((1 - same_second) × mean gap)` lines per second.

use super::rng::{Prob, Rng};

/// Tunables of [`Clock`]; see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct ClockModel {
    pub same_second: f64,
    /// Chance of each extra second in a gap (the gap is 1 + Geometric(extra_second)).
    pub extra_second: f64,
    pub max_gap: u32,
    pub burst_per_second: f64,
    pub burst_lines: (u32, u32),
}

/// Where a line sits inside a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BurstSlot {
    /// 0-based position of this line in the burst.
    pub index: u32,
    pub len: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct Tick {
    pub epoch: i64,
    pub burst: Option<BurstSlot>,
}

#[derive(Debug, Clone)]
pub struct Clock {
    epoch: i64,
    started: bool,
    same_second: Prob,
    extra_second: Prob,
    max_gap: u32,
    burst_start: Prob,
    burst_lines: (u32, u32),
    /// Lines of the current burst already handed out, and its length (0 = no burst).
    burst_done: u32,
    burst_len: u32,
}

impl Clock {
    pub fn new(start_epoch: i64, model: ClockModel) -> Self {
        Clock {
            epoch: start_epoch,
            started: false,
            same_second: Prob::new(model.same_second),
            extra_second: Prob::new(model.extra_second),
            max_gap: model.max_gap.max(1),
            burst_start: Prob::new(model.burst_per_second),
            burst_lines: model.burst_lines,
            burst_done: 0,
            burst_len: 0,
        }
    }

    /// The time of the next line.
    #[inline]
    pub fn tick(&mut self, rng: &mut Rng) -> Tick {
        if self.burst_done < self.burst_len {
            return self.burst_tick();
        }
        self.burst_len = 0;
        if !self.started {
            self.started = true;
            return self.plain_tick();
        }
        if rng.chance(self.same_second) {
            return self.plain_tick();
        }
        let mut gap = 1;
        while gap < self.max_gap && rng.chance(self.extra_second) {
            gap += 1;
        }
        self.epoch += i64::from(gap);
        if rng.chance(self.burst_start) {
            let (low, high) = self.burst_lines;
            self.burst_len = rng.range(u64::from(low), u64::from(high)) as u32;
            self.burst_done = 0;
            return self.burst_tick();
        }
        self.plain_tick()
    }

    fn plain_tick(&self) -> Tick {
        Tick {
            epoch: self.epoch,
            burst: None,
        }
    }

    fn burst_tick(&mut self) -> Tick {
        let slot = BurstSlot {
            index: self.burst_done,
            len: self.burst_len,
        };
        self.burst_done += 1;
        Tick {
            epoch: self.epoch,
            burst: Some(slot),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotone_with_the_modelled_zero_share_and_bursts() {
        let model = ClockModel {
            same_second: 0.6,
            extra_second: 0.2,
            max_gap: 5,
            burst_per_second: 0.001,
            burst_lines: (50, 200),
        };
        let mut clock = Clock::new(1_000, model);
        let mut rng = Rng::new(9);
        let ticks: Vec<Tick> = (0..100_000).map(|_| clock.tick(&mut rng)).collect();
        assert_eq!(ticks[0].epoch, 1_000);
        let zero = ticks
            .windows(2)
            .filter(|w| w[1].epoch == w[0].epoch)
            .count() as f64
            / 99_999.0;
        assert!((0.6..0.7).contains(&zero), "{zero}");
        assert!(
            ticks
                .windows(2)
                .all(|w| (0..=5).contains(&(w[1].epoch - w[0].epoch)))
        );
        let bursts: Vec<BurstSlot> = ticks
            .iter()
            .filter_map(|t| t.burst)
            .filter(|b| b.index == 0)
            .collect();
        assert!(!bursts.is_empty());
        assert!(bursts.iter().all(|b| (50..=200).contains(&b.len)));
        // Burst lines all share one second.
        for window in ticks.windows(2) {
            if let Some(slot) = window[1].burst
                && slot.index > 0
            {
                assert_eq!(window[1].epoch, window[0].epoch);
            }
        }
    }
}
