//! The scale-test harness: plans as data (SV-1 … SV-4), the runner that sets up nodes, loads
//! the data, drives each task and judges the plan's criteria, and the run records the report
//! page reads; plus what they share (an in-process node, generated data, HTTP helpers).
//!
//! Timings are end-to-end HTTP round trips on loopback, measured by the client, as a user
//! would see them. Run them on a release build; debug timings are not benchmarks.

pub mod assertions;
mod background_ingest;
pub mod command;
pub mod compare;
pub mod criteria;
pub mod dataset;
pub mod environment;
pub mod failover;
pub mod faults;
pub mod fingerprint;
pub mod load;
mod marked_writes;
pub mod mix;
mod panics;
pub mod plan;
mod publish;
pub mod record;
mod remote_standalone;
pub mod runner;
pub mod stats;
pub mod summary;
pub mod task;
pub mod telemetry;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::config::{ConfigOverrides, NodeConfig};
use crate::dataset::LogFormat;
use crate::dataset::generate::{GenOptions, generate};
use crate::error::{Error, Result};
use crate::node::Node;
use crate::router::{AppState, app};

/// A node running inside this process, serving on an ephemeral loopback port.
pub struct LocalNode {
    pub node: Arc<Node>,
    pub base: String,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl LocalNode {
    /// Starts a node on `data_dir`; `env` plays the role of the environment (`SV_*`,
    /// `CHRONIK_*`) so a plan can pick the provider without touching the process env.
    pub async fn start(data_dir: &Path, env: HashMap<String, String>) -> Result<Self> {
        let overrides = ConfigOverrides {
            data_dir: Some(data_dir.to_path_buf()),
            listen: Some("127.0.0.1:0".into()),
            node_id: None,
        };
        let config = NodeConfig::load(None, &env, &overrides)?;
        let listener = tokio::net::TcpListener::bind(&config.api.listen).await?;
        let addr = listener.local_addr()?;
        let node = Node::start(config).await?;
        let state = AppState::new(node.clone())?;
        let server = tokio::spawn(async move { axum::serve(listener, app(state)).await });
        Ok(Self {
            node,
            base: format!("http://{addr}"),
            server,
        })
    }

    pub async fn stop(self) {
        self.server.abort();
        self.node.shutdown().await;
    }
}

/// The HTTP client of the harness: a request that hangs counts as an error after 30 s (the
/// published k6 workloads use 10 s for text and 30 s for SQL) instead of stalling the run.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

/// Writes `lines` generated lines of `format` to `path`.
pub async fn generate_file(path: &Path, format: LogFormat, lines: u64, seed: u64) -> Result<()> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path)?);
        generate(
            format,
            &GenOptions {
                lines,
                seed,
                ..GenOptions::default()
            },
            &mut out,
        )?;
        std::io::Write::flush(&mut out)?;
        Ok(())
    })
    .await
    .map_err(Error::internal)?
}

/// POSTs `body` to `url` once and returns the parsed answer (non-2xx is an error).
pub async fn post(client: &reqwest::Client, url: &str, body: &Value) -> Result<Value> {
    let response = client
        .post(url)
        .json(body)
        .send()
        .await
        .map_err(Error::internal)?;
    let status = response.status();
    let value: Value = response.json().await.map_err(Error::internal)?;
    if !status.is_success() {
        return Err(Error::internal(format!(
            "{url} {body} answered {status}: {value}"
        )));
    }
    Ok(value)
}

pub async fn get(client: &reqwest::Client, url: &str) -> Result<String> {
    client
        .get(url)
        .send()
        .await
        .map_err(Error::internal)?
        .text()
        .await
        .map_err(Error::internal)
}

/// Sum of every sample of a Prometheus counter or gauge named `name` (any labels), 0 when
/// there is none.
pub fn metric_sum(exposition: &str, name: &str) -> f64 {
    metric_samples_sum(exposition, name).unwrap_or(0.0)
}

/// Like [`metric_sum`], but `None` when the exposition has no sample of `name` at all.
pub fn metric_samples_sum(exposition: &str, name: &str) -> Option<f64> {
    let values: Vec<f64> = exposition
        .lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// Polls `/_vector/{topic}/stats` until every record is embedded, printing progress.
pub async fn wait_for_vectors(
    client: &reqwest::Client,
    base: &str,
    topic: &str,
    timeout: Duration,
) -> Result<u64> {
    let started = Instant::now();
    let mut last_print = Instant::now();
    loop {
        let stats: Value =
            serde_json::from_str(&get(client, &format!("{base}/_vector/{topic}/stats")).await?)
                .map_err(Error::internal)?;
        let total = stats["total_vectors"].as_u64().unwrap_or(0);
        let records = stats["records"].as_u64().unwrap_or(0);
        if records > 0 && total >= records && !stats["loading"].as_bool().unwrap_or(true) {
            return Ok(total);
        }
        if started.elapsed() > timeout {
            return Err(Error::Timeout(format!(
                "{topic}: {total} of {records} records embedded after {:.0} s",
                timeout.as_secs_f64()
            )));
        }
        if last_print.elapsed() > Duration::from_secs(10) {
            println!(
                "  embedding {topic}: {total}/{records} ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
