//! Writes the harness makes while it measures something else (a failover, queries under
//! ingest): 100-record batches marked with a `location`, so they are counted apart from the
//! dataset, each batch acknowledged or not, and afterwards checked batch by batch on a node.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// Records per batch; a record's batch is `pid / BATCH`.
pub const BATCH: u64 = 100;

/// After a refused write (an election under way), the writer waits this long before the next:
/// hammering a node that answers 503 only adds load to the survivors being measured.
const BACKOFF: Duration = Duration::from_millis(50);

/// What a writer did; `acked` lists the batches (`pid / BATCH`) whose write was acknowledged.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub batches: u64,
    pub failed: u64,
    pub acked: Vec<u64>,
    pub worst_write_ms: f64,
}

impl Tally {
    pub fn acknowledged_records(&self) -> u64 {
        self.acked.len() as u64 * BATCH
    }
}

/// Where and how fast a [`MarkedWriter`] writes.
pub struct WriterPlan {
    pub targets: Vec<String>,
    pub topic: String,
    pub location: String,
    /// Records per second on a schedule (a slow write delays the next ones, then the rate
    /// catches up, as a steady producer would); `None` writes back to back.
    pub rate: Option<f64>,
    /// Sequence number of the first record, so a later writer with the same mark does not
    /// write the same pids again.
    pub first: u64,
}

pub struct MarkedWriter {
    stop: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
    tally: Arc<Mutex<Tally>>,
    started: Instant,
}

impl MarkedWriter {
    /// Starts writing; batches rotate over the targets.
    pub fn start(client: &reqwest::Client, plan: WriterPlan) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Mutex::new(Tally::default()));
        let urls: Vec<String> = plan
            .targets
            .iter()
            .map(|t| format!("{t}/topics/{}/records", plan.topic))
            .collect();
        let task = {
            let (stop, tally, client) = (stop.clone(), tally.clone(), client.clone());
            let interval = plan.rate.map(|r| Duration::from_secs_f64(BATCH as f64 / r));
            tokio::spawn(async move {
                let start = tokio::time::Instant::now();
                let mut n: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    if let Some(interval) = interval {
                        tokio::time::sleep_until(start + interval.mul_f64(n as f64)).await;
                    }
                    let first = plan.first + n * BATCH;
                    let records: Vec<Value> = (first..first + BATCH)
                        .map(|seq| record(&plan.location, seq))
                        .collect();
                    let sent = Instant::now();
                    let ok = client
                        .post(&urls[n as usize % urls.len()])
                        .json(&json!({ "records": records }))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    {
                        let mut t = tally.lock();
                        t.batches += 1;
                        t.worst_write_ms = t.worst_write_ms.max(sent.elapsed().as_secs_f64() * 1e3);
                        if ok {
                            t.acked.push(first / BATCH);
                        } else {
                            t.failed += 1;
                        }
                    }
                    n += 1;
                    if !ok && interval.is_none() {
                        tokio::time::sleep(BACKOFF).await;
                    }
                }
            })
        };
        MarkedWriter {
            stop,
            task: Some(task),
            tally,
            started: Instant::now(),
        }
    }

    /// Stops after the batch in flight; what was written, and for how long.
    pub async fn stop(mut self) -> (Tally, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        let tally = self.tally.lock().clone();
        (tally, self.started.elapsed())
    }
}

/// A measurement that ends early (an error) must not leave its writer running.
impl Drop for MarkedWriter {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// Records of the `acked` batches (mark `location`) that `target` does not hold. Checked
/// batch by batch, so a failed write that was applied anyway cannot hide a lost one.
pub async fn missing_records(
    client: &reqwest::Client,
    target: &str,
    topic: &str,
    location: &str,
    acked: &[u64],
) -> Result<u64> {
    let table = crate::router::sql::sql_table_name(topic);
    let query = format!(
        "SELECT pid / {BATCH} AS batch, COUNT(*) AS n FROM {table} WHERE location = '{location}' GROUP BY pid / {BATCH}"
    );
    let answer = super::post(
        client,
        &format!("{target}/_sql"),
        &json!({ "query": query, "limit": 1_000_000 }),
    )
    .await?;
    if answer["rows"].as_array().is_none() {
        return Err(Error::internal(format!("no rows in {answer}")));
    }
    let mut held = std::collections::HashMap::new();
    for row in answer["rows"].as_array().into_iter().flatten() {
        if let (Some(batch), Some(n)) = (row["batch"].as_u64(), row["n"].as_u64()) {
            held.insert(batch, n);
        }
    }
    Ok(acked
        .iter()
        .map(|b| BATCH.saturating_sub(held.get(b).copied().unwrap_or(0)))
        .sum())
}

/// Polls `targets` (up to `wait`) until none misses a record of the `acked` batches; the
/// most any node still missed, and per node what it missed (`None`: it did not answer).
pub async fn await_held(
    client: &reqwest::Client,
    targets: &[String],
    topic: &str,
    location: &str,
    acked: &[u64],
    wait: Duration,
) -> (u64, Vec<Option<u64>>) {
    let deadline = Instant::now() + wait;
    loop {
        let mut missing = Vec::with_capacity(targets.len());
        for target in targets {
            missing.push(
                missing_records(client, target, topic, location, acked)
                    .await
                    .ok(),
            );
        }
        let all_held = missing.iter().all(|m| *m == Some(0));
        if all_held || Instant::now() > deadline {
            let worst = missing
                .iter()
                .map(|m| m.unwrap_or(acked.len() as u64 * BATCH))
                .max()
                .unwrap_or(0);
            return (worst, missing);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A Thunderbird-shaped record: `pid` is the sequence number, which gives its batch.
fn record(location: &str, seq: u64) -> Value {
    json!({
        "timestamp": 1131566461 + seq as i64,
        "label": "-",
        "host": format!("{location}-host-{}", seq % 61),
        "location": location,
        "component": "kernel",
        "pid": seq,
        "message": format!("{location} write {seq}"),
    })
}

/// The first sequence number no record with mark `location` uses on `target` (0 when there
/// are none), rounded up to a batch: a writer started there cannot reuse an earlier run's
/// pids, whose records would hide a lost batch of its own.
pub async fn next_free_seq(
    client: &reqwest::Client,
    target: &str,
    topic: &str,
    location: &str,
) -> Result<u64> {
    let table = crate::router::sql::sql_table_name(topic);
    let answer = super::post(
        client,
        &format!("{target}/_sql"),
        &json!({ "query": format!("SELECT MAX(pid) FROM {table} WHERE location = '{location}'") }),
    )
    .await?;
    Ok(match super::assertions::scalar(&answer) {
        Some(max) => (max / BATCH + 1) * BATCH,
        None => 0,
    })
}
