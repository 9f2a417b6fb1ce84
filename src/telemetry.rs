//! Logging and the process-wide Prometheus recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Latency buckets in seconds: fine at the low end, where search and cache hits live.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The recorder is global to the process, so it is installed once and shared by every node a
/// test starts in the same process.
pub fn prometheus() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), LATENCY_BUCKETS)
                .expect("static buckets are valid");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (a test harness); then ours still renders
            // what it sees through the handle.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

/// Logs to stderr; `RUST_LOG` overrides the default level.
pub fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{default_level},openraft=warn,tantivy=warn"))
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Prometheus counter of panics in this process, on any thread, caught or not.
pub const PANICS_METRIC: &str = "sv_panics_total";

/// Counts every panic in `sv_panics_total` (shown at `/metrics` from 0), then lets the
/// previous hook print it as before. A panic in a request handler or a background task
/// does not stop the process (tokio and axum catch it), so without this a run could pass
/// over a node that panicked; the scale plans judge "zero panics" on this counter.
pub fn count_panics() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        metrics::counter!(PANICS_METRIC).increment(0);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            metrics::counter!(PANICS_METRIC).increment(1);
            previous(info);
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caught_panic_is_counted_at_metrics() {
        let handle = prometheus();
        count_panics();
        let before = crate::bench::metric_sum(&handle.render(), PANICS_METRIC);
        assert!(
            handle.render().contains(PANICS_METRIC),
            "the counter shows before any panic"
        );
        let caught = std::panic::catch_unwind(|| panic!("deliberate test panic"));
        assert!(caught.is_err());
        let after = crate::bench::metric_sum(&handle.render(), PANICS_METRIC);
        assert_eq!(after - before, 1.0);
    }
}
