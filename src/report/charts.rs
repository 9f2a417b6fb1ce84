//! The run page's charts, built from a phase of a run record: latency bars per task,
//! throughput over time, the failover timeline and per-node telemetry (drawn by `svg`).

use std::fmt::Write;

use super::html::{bytes, esc, num, opt};
use super::svg::{self, BarGroup, LineChart, Marker, Series, TimelineEvent};
use crate::bench::record::{PhaseRecord, RunRecord, TelemetrySample};

/// p50 and p99 latency per task as grouped bars.
pub fn latency_bars(phase: &PhaseRecord) -> String {
    let groups: Vec<BarGroup> = phase
        .tasks
        .iter()
        .map(|t| BarGroup {
            label: t.name.clone(),
            values: vec![t.latency_ms.p50, t.latency_ms.p99],
        })
        .collect();
    svg::bar_chart("Latency per task", "ms", &["p50", "p99"], &groups)
}

/// Completed requests per second over time, one line per task.
pub fn throughput(phase: &PhaseRecord) -> String {
    let series: Vec<Series> = phase
        .tasks
        .iter()
        .filter(|t| !t.throughput_timeline.is_empty())
        .map(|t| Series {
            name: t.name.clone(),
            points: t
                .throughput_timeline
                .iter()
                .map(|p| (p.t, Some(p.value)))
                .collect(),
        })
        .collect();
    svg::line_chart(&LineChart {
        title: "Throughput over time",
        x_caption: "seconds",
        y_unit: "requests/s",
        series: &series,
        ..Default::default()
    })
}

fn markers(phase: &PhaseRecord) -> Vec<Marker> {
    phase
        .events
        .iter()
        .map(|e| Marker {
            x: e.t,
            label: format!("{} s: {} — {}", num(e.t), e.kind, e.detail),
        })
        .collect()
}

/// The phase's fault injection and recovery events: a timeline and a table.
pub fn failover(phase: &PhaseRecord) -> String {
    if phase.events.is_empty() {
        return r#"<p class="muted">No fault injection or recovery events in this phase.</p>"#
            .to_string();
    }
    let events: Vec<TimelineEvent> = phase
        .events
        .iter()
        .map(|e| TimelineEvent {
            t: e.t,
            kind: e.kind.clone(),
            detail: e.detail.clone(),
        })
        .collect();
    let end = phase.finished_secs.unwrap_or_else(|| {
        events
            .iter()
            .map(|e| e.t)
            .fold(phase.started_secs, f64::max)
    });
    let mut out = svg::timeline("Failover timeline", phase.started_secs, end, &events);
    out.push_str(
        r#"<table class="events"><thead><tr><th class="num">t (s)</th><th class="num">since phase start</th><th>event</th><th>detail</th></tr></thead><tbody>"#,
    );
    for e in &phase.events {
        let _ = write!(
            out,
            r#"<tr><td class="num">{}</td><td class="num">+{}</td><td>{}</td><td>{}</td></tr>"#,
            num(e.t),
            num(e.t - phase.started_secs),
            esc(&e.kind),
            esc(&e.detail)
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// The telemetry metrics charted per node: title, y caption, fixed top, value of a sample.
type Metric = (
    &'static str,
    &'static str,
    Option<f64>,
    fn(&TelemetrySample) -> Option<f64>,
);

const METRICS: [Metric; 5] = [
    ("CPU", "%", None, |s| s.cpu_percent),
    ("Resident memory", "MiB", None, |s| {
        s.rss_bytes.map(|b| b as f64 / (1024.0 * 1024.0))
    }),
    ("Query-embedding cache hit ratio", "ratio", Some(1.0), |s| {
        s.cache_hit_ratio
    }),
    ("Raft max replica lag", "entries", None, |s| {
        s.raft_max_lag.map(|v| v as f64)
    }),
    ("Index lag", "records", None, |s| {
        s.index_lag.map(|v| v as f64)
    }),
];

/// Cumulative byte counters charted as a rate per node: title, counter of a sample.
type Rate = (&'static str, fn(&TelemetrySample) -> Option<u64>);

const RATES: [Rate; 2] = [
    ("Disk writes (node process)", |s| s.disk_written_bytes),
    // Linux counts network bytes per interface, not per process: nodes sharing a host show
    // the same line.
    ("Network in + out (whole host)", |s| {
        Some(s.net_rx_bytes? + s.net_tx_bytes?)
    }),
];

/// Per-second rate (MiB/s) of a cumulative counter between consecutive reachable samples; a
/// counter that went down (a restarted node) starts over rather than charting a negative.
fn rate_points(
    samples: &[&TelemetrySample],
    counter: fn(&TelemetrySample) -> Option<u64>,
) -> Vec<(f64, Option<f64>)> {
    let mut points = Vec::new();
    let mut previous: Option<(f64, u64)> = None;
    for s in samples {
        let now = counter(s).filter(|_| s.reachable);
        let value = match (previous, now) {
            (Some((t0, v0)), Some(v1)) if s.t > t0 && v1 >= v0 => {
                Some((v1 - v0) as f64 / (s.t - t0) / (1024.0 * 1024.0))
            }
            _ => None,
        };
        points.push((s.t, value));
        previous = now.map(|v| (s.t, v));
    }
    points
}

/// Samples of each node inside the phase's time window.
fn window<'a>(run: &'a RunRecord, phase: &PhaseRecord) -> Vec<(&'a str, Vec<&'a TelemetrySample>)> {
    let end = phase.finished_secs.unwrap_or(f64::INFINITY);
    run.telemetry
        .iter()
        .map(|node| {
            let samples = node
                .samples
                .iter()
                .filter(|s| s.t >= phase.started_secs && s.t <= end)
                .collect();
            (node.node.as_str(), samples)
        })
        .collect()
}

/// Per-node telemetry during the phase: a chart per metric (one line per node, fault events
/// as markers) and a summary table with the cache hit ratio.
pub fn telemetry(run: &RunRecord, phase: &PhaseRecord) -> String {
    let nodes = window(run, phase);
    if nodes.iter().all(|(_, samples)| samples.is_empty()) {
        return r#"<p class="muted">No node telemetry recorded during this phase.</p>"#.to_string();
    }
    let markers = markers(phase);
    let mut out = String::from(r#"<div class="chart-grid">"#);
    for (title, unit, y_max, value) in METRICS {
        let series: Vec<Series> = nodes
            .iter()
            .map(|(node, samples)| Series {
                name: node.to_string(),
                // An unreachable node has no values: its line breaks rather than dropping to 0.
                points: samples
                    .iter()
                    .map(|s| (s.t, if s.reachable { value(s) } else { None }))
                    .collect(),
            })
            .collect();
        out.push_str(&svg::line_chart(&LineChart {
            title,
            x_caption: "seconds since the run started",
            y_unit: unit,
            series: &series,
            markers: &markers,
            x_range: None,
            y_max,
        }));
    }
    for (title, counter) in RATES {
        let series: Vec<Series> = nodes
            .iter()
            .map(|(node, samples)| Series {
                name: node.to_string(),
                points: rate_points(samples, counter),
            })
            .collect();
        out.push_str(&svg::line_chart(&LineChart {
            title,
            x_caption: "seconds since the run started",
            y_unit: "MiB/s",
            series: &series,
            markers: &markers,
            x_range: None,
            y_max: None,
        }));
    }
    out.push_str("</div>");
    out.push_str(
        r#"<table class="nodes"><thead><tr><th>node</th><th class="num">samples</th><th class="num">unreachable</th><th class="num">CPU mean %</th><th class="num">CPU max %</th><th class="num">RSS max</th><th class="num">raft leaders</th><th class="num">raft lag max</th><th class="num">index lag max</th><th class="num">embed lag max</th><th class="num">cache hit ratio</th></tr></thead><tbody>"#,
    );
    for (node, samples) in &nodes {
        let cpu: Vec<f64> = samples.iter().filter_map(|s| s.cpu_percent).collect();
        let cpu_mean = (!cpu.is_empty()).then(|| cpu.iter().sum::<f64>() / cpu.len() as f64);
        let max_u64 =
            |f: fn(&TelemetrySample) -> Option<u64>| samples.iter().filter_map(|s| f(s)).max();
        let last = |f: fn(&TelemetrySample) -> Option<f64>| samples.iter().rev().find_map(|s| f(s));
        let show = |v: Option<u64>| v.map_or_else(|| "—".to_string(), |v| v.to_string());
        let _ = write!(
            out,
            r#"<tr><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            esc(node),
            samples.len(),
            samples.iter().filter(|s| !s.reachable).count(),
            opt(cpu_mean),
            opt(cpu.iter().copied().reduce(f64::max)),
            max_u64(|s| s.rss_bytes).map_or_else(|| "—".to_string(), bytes),
            show(samples.iter().rev().find_map(|s| s.raft_leaders)),
            show(max_u64(|s| s.raft_max_lag)),
            show(max_u64(|s| s.index_lag)),
            show(max_u64(|s| s.embed_lag)),
            opt(last(|s| s.cache_hit_ratio)),
        );
    }
    out.push_str("</tbody></table><p class=\"muted\">Cache hit ratio: the last value each node reported in this phase. Lags: the largest seen.</p>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counters_chart_as_rates_and_a_restart_starts_over() {
        let sample = |t: f64, bytes: u64, reachable: bool| TelemetrySample {
            t,
            reachable,
            disk_written_bytes: Some(bytes),
            ..TelemetrySample::default()
        };
        const MIB: u64 = 1024 * 1024;
        let samples = [
            sample(0.0, 0, true),
            sample(1.0, 2 * MIB, true),
            sample(3.0, 6 * MIB, true),
            sample(4.0, 0, false),
            sample(5.0, MIB, true),
            sample(6.0, 4 * MIB, true),
        ];
        let refs: Vec<&TelemetrySample> = samples.iter().collect();
        let points = rate_points(&refs, |s| s.disk_written_bytes);
        let values: Vec<Option<f64>> = points.iter().map(|(_, v)| *v).collect();
        assert_eq!(values, [None, Some(2.0), Some(2.0), None, None, Some(3.0)]);
    }
}
