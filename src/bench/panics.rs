//! `panics` of a phase: each node's `sv_panics_total` (a panic hook counts every panic, caught
//! or not, since tokio and axum keep a node serving after one) at the end minus at the start.

use super::record::Measurement;
use crate::telemetry::PANICS_METRIC;

/// Each node's `sv_panics_total`, in target order; `None` when a node does not expose it
/// (an older build) or cannot be reached.
pub async fn panic_counts(client: &reqwest::Client, targets: &[String]) -> Option<Vec<f64>> {
    let mut counts = Vec::new();
    for target in targets {
        let text = super::get(client, &format!("{target}/metrics"))
            .await
            .ok()?;
        counts.push(super::metric_samples_sum(&text, PANICS_METRIC)?);
    }
    Some(counts)
}

/// The panics of one environment during a phase: each node's counter at the end minus at the
/// start. The counter runs from a node's start, so a node whose count went down was restarted
/// (a fault scenario): its whole count since the restart is taken, and the detail says so.
pub struct PanicCount {
    value: f64,
    detail: String,
}

impl PanicCount {
    pub fn between(what: &str, before: Option<Vec<f64>>, after: Option<Vec<f64>>) -> Option<Self> {
        let (before, after) = (before?, after?);
        let mut value = 0.0;
        let mut restarted = Vec::new();
        for (n, (b, a)) in before.iter().zip(&after).enumerate() {
            if a < b {
                restarted.push(format!("node {}", n + 1));
                value += a;
            } else {
                value += a - b;
            }
        }
        let mut detail = format!(
            "{PANICS_METRIC} on {} node(s){what}, end of the phase minus its start",
            after.len()
        );
        if !restarted.is_empty() {
            detail.push_str(&format!(
                "; {} restarted during it: counted since the restart",
                restarted.join(", ")
            ));
        }
        Some(PanicCount { value, detail })
    }

    /// `panics`: the sum over the phase's environments; `None` if none could be read.
    pub fn measurement(counts: &[Option<PanicCount>]) -> Option<Measurement> {
        let read: Vec<&PanicCount> = counts.iter().flatten().collect();
        if read.is_empty() {
            return None;
        }
        Some(Measurement {
            name: "panics".into(),
            value: read.iter().map(|c| c.value).sum(),
            unit: "count".into(),
            detail: read
                .iter()
                .map(|c| c.detail.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        })
    }
}
