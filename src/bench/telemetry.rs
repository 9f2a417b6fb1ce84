//! Samples every node's `GET /_telemetry` once a second while a run goes, into the run
//! record (an unreachable node is a sample too: the failover timeline shows the gap).

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;

use super::record::{NodeRecord, NodeTelemetry, TelemetrySample};
use crate::error::{Error, Result};

pub type SharedTelemetry = Arc<Mutex<Vec<NodeTelemetry>>>;

pub struct Collector {
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    /// Starts sampling `targets` into `shared`, with times relative to `run_started`.
    pub fn start(targets: Vec<String>, run_started: Instant, shared: SharedTelemetry) -> Self {
        let task = tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_millis(900))
                .build()
                .unwrap_or_default();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let t = run_started.elapsed().as_secs_f64();
                let samples = futures::future::join_all(
                    targets.iter().map(|target| sample(&client, target, t)),
                )
                .await;
                let mut nodes = shared.lock();
                for (target, s) in targets.iter().zip(samples) {
                    match nodes.iter_mut().find(|n| &n.node == target) {
                        Some(node) => node.samples.push(s),
                        None => nodes.push(NodeTelemetry {
                            node: target.clone(),
                            samples: vec![s],
                        }),
                    }
                }
            }
        });
        Collector { task }
    }

    pub fn stop(self) {
        self.task.abort();
    }
}

async fn sample(client: &reqwest::Client, target: &str, t: f64) -> TelemetrySample {
    let answer: Option<Value> = match client.get(format!("{target}/_telemetry")).send().await {
        Ok(r) if r.status().is_success() => r.json().await.ok(),
        _ => None,
    };
    let Some(v) = answer else {
        return TelemetrySample {
            t,
            reachable: false,
            ..TelemetrySample::default()
        };
    };
    let p = &v["process"];
    TelemetrySample {
        t,
        reachable: true,
        cpu_percent: p["cpu_percent"].as_f64(),
        rss_bytes: p["rss_bytes"].as_u64(),
        disk_read_bytes: p["disk_read_bytes"].as_u64(),
        disk_written_bytes: p["disk_written_bytes"].as_u64(),
        net_rx_bytes: v["host"]["net_rx_bytes"].as_u64(),
        net_tx_bytes: v["host"]["net_tx_bytes"].as_u64(),
        raft_leaders: v["raft_leaders"].as_u64(),
        raft_max_lag: v["raft_max_lag"].as_u64(),
        index_lag: v["index_lag"].as_u64(),
        embed_lag: v["embed_lag"].as_u64(),
        cache_hit_ratio: v["cache_hit_ratio"].as_f64(),
    }
}

/// What `target` says about itself at `GET /_node` (version, machine, effective config).
pub async fn describe(client: &reqwest::Client, target: &str) -> Result<NodeRecord> {
    let url = format!("{target}/_node");
    let answer = client
        .get(&url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .map_err(|e| Error::Unavailable(format!("{url}: {e}")))?;
    let v: Value = answer
        .json()
        .await
        .map_err(|e| Error::Unavailable(format!("{url}: {e}")))?;
    Ok(NodeRecord {
        target: target.to_string(),
        node_id: field(&v, &url, "node_id")?,
        version: field(&v, &url, "version")?,
        hardware: field(&v, &url, "hardware")?,
        config: v["config"].clone(),
    })
}

fn field<T: serde::de::DeserializeOwned>(answer: &Value, url: &str, name: &str) -> Result<T> {
    serde_json::from_value(answer[name].clone())
        .map_err(|e| Error::Unavailable(format!("{url}: `{name}`: {e}")))
}
