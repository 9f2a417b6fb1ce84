//! Latency statistics: an HDR histogram in microseconds (3 significant digits, up to an
//! hour) and the percentiles a sample count can support.

use std::time::Duration;

use hdrhistogram::Histogram;

use super::record::Percentiles;

/// Fewest samples for which a percentile is reported: below this, "p99" would just be the
/// maximum of a handful of numbers and suggest a precision the run does not have.
const MIN_SAMPLES_P90: u64 = 10;
const MIN_SAMPLES_P95: u64 = 20;
const MIN_SAMPLES_P99: u64 = 100;
const MIN_SAMPLES_P99_9: u64 = 1_000;
/// Fewest samples a criterion judges a p50 on. The p50 itself is shown from one sample (the
/// run page says how many); a verdict on two or three of them would flip from run to run.
pub const MIN_SAMPLES_JUDGED_P50: u64 = 5;

pub struct Latencies {
    histogram: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    pub fn new() -> Self {
        Self {
            histogram: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                .expect("static histogram bounds are valid"),
        }
    }

    pub fn record(&mut self, elapsed: Duration) {
        let micros = (elapsed.as_micros() as u64).clamp(1, 3_600_000_000);
        // Clamped into the histogram's range above, so recording cannot fail.
        let _ = self.histogram.record(micros);
    }

    pub fn add(&mut self, other: &Latencies) {
        let _ = self.histogram.add(&other.histogram);
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    pub fn summary(&self) -> Percentiles {
        let h = &self.histogram;
        let n = h.len();
        if n == 0 {
            return Percentiles::default();
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        let at = |q: f64, min: u64| (n >= min).then(|| ms(h.value_at_quantile(q)));
        Percentiles {
            count: n,
            min: Some(ms(h.min())),
            mean: Some(h.mean() / 1000.0),
            p50: Some(ms(h.value_at_quantile(0.5))),
            p90: at(0.9, MIN_SAMPLES_P90),
            p95: at(0.95, MIN_SAMPLES_P95),
            p99: at(0.99, MIN_SAMPLES_P99),
            p99_9: at(0.999, MIN_SAMPLES_P99_9),
            max: Some(ms(h.max())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(ms: impl IntoIterator<Item = u64>) -> Percentiles {
        let mut l = Latencies::new();
        for v in ms {
            l.record(Duration::from_millis(v));
        }
        l.summary()
    }

    /// Within HDR's 3 significant digits.
    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() <= b * 0.001 + 0.001)
    }

    #[test]
    fn percentiles_of_one_to_a_thousand_milliseconds() {
        let p = of(1..=1000);
        assert_eq!(p.count, 1000);
        assert!(close(p.min, 1.0) && close(p.max, 1000.0), "{p:?}");
        assert!(close(p.p50, 500.0), "{p:?}");
        assert!(close(p.p90, 900.0), "{p:?}");
        assert!(close(p.p95, 950.0), "{p:?}");
        assert!(close(p.p99, 990.0), "{p:?}");
        assert!(close(p.p99_9, 999.0), "{p:?}");
        assert!(close(p.mean, 500.5), "{p:?}");
    }

    #[test]
    fn a_small_sample_reports_only_what_it_supports() {
        let p = of([5, 7, 9, 11, 13, 15, 17, 19, 21]);
        assert!(close(p.p50, 13.0), "{p:?}");
        assert_eq!((p.p90, p.p95, p.p99, p.p99_9), (None, None, None, None));
        let p = of(1..=15);
        assert!(p.p90.is_some() && p.p95.is_none(), "{p:?}");
        let p = of(1..=150);
        assert!(
            p.p90.is_some() && p.p95.is_some() && p.p99.is_some() && p.p99_9.is_none(),
            "{p:?}"
        );
    }

    #[test]
    fn one_slow_outlier_moves_the_tail_not_the_median() {
        let p = of((0..999).map(|_| 2).chain([5_000]));
        assert!(close(p.p50, 2.0) && close(p.p99, 2.0), "{p:?}");
        assert!(close(p.max, 5000.0), "{p:?}");
        assert!(close(p.mean, (999.0 * 2.0 + 5000.0) / 1000.0), "{p:?}");
    }

    #[test]
    fn no_samples_no_numbers() {
        assert_eq!(Latencies::new().summary(), Percentiles::default());
    }
}
