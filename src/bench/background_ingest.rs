//! Writes going on while a task's queries run (SV-3's "ingest during queries"): batches of
//! 100 records at a set rate, spread over the nodes, each batch acknowledged or not; at the
//! end every acknowledged record must be held by every node.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Value, json};

use super::record::AssertionResult;
use crate::error::Result;

const BATCH: u64 = 100;

/// What marks the records this writes, so they are counted apart from the dataset.
const LOCATION: &str = "ingest-during-queries";

#[derive(Default, Clone, Copy)]
struct Counts {
    batches: u64,
    failed: u64,
    acknowledged: u64,
}

pub struct BackgroundIngest {
    stop: Arc<AtomicBool>,
    writer: Option<tokio::task::JoinHandle<()>>,
    counts: Arc<Mutex<Counts>>,
    started: Instant,
    targets: Vec<String>,
    topic: String,
    /// Records of this task already acknowledged by earlier runs (a task run per node).
    before: u64,
}

impl BackgroundIngest {
    /// Starts writing `rate` records per second into `topic`, rotating over `targets`.
    /// `before`: records with this task's mark that the topic already holds.
    pub fn start(
        client: &reqwest::Client,
        targets: &[String],
        topic: &str,
        rate: f64,
        before: u64,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Mutex::new(Counts::default()));
        let urls: Vec<String> = targets
            .iter()
            .map(|t| format!("{t}/topics/{topic}/records"))
            .collect();
        let writer = {
            let (stop, counts, client) = (stop.clone(), counts.clone(), client.clone());
            // One batch every BATCH / rate seconds, on a schedule: a slow write delays the
            // next ones but the rate catches up, as a steady producer would.
            let interval = Duration::from_secs_f64(BATCH as f64 / rate);
            tokio::spawn(async move {
                let start = tokio::time::Instant::now();
                let mut n: u64 = 0;
                while !stop.load(Ordering::Relaxed) {
                    tokio::time::sleep_until(start + interval.mul_f64(n as f64)).await;
                    let first = before + n * BATCH;
                    let records: Vec<Value> = (first..first + BATCH).map(record).collect();
                    let ok = client
                        .post(&urls[n as usize % urls.len()])
                        .json(&json!({ "records": records }))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    let mut c = counts.lock();
                    c.batches += 1;
                    if ok {
                        c.acknowledged += BATCH;
                    } else {
                        c.failed += 1;
                    }
                    n += 1;
                }
            })
        };
        BackgroundIngest {
            stop,
            writer: Some(writer),
            counts,
            started: Instant::now(),
            targets: targets.to_vec(),
            topic: topic.to_string(),
            before,
        }
    }

    /// Stops writing, waits until every node holds every acknowledged record (up to 60 s),
    /// and says how it went: the rate reached, failed batches, records missing on a node.
    pub async fn finish(mut self, client: &reqwest::Client) -> (AssertionResult, u64) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(writer) = self.writer.take() {
            let _ = writer.await;
        }
        let secs = self.started.elapsed().as_secs_f64();
        let c = *self.counts.lock();
        let expected = self.before + c.acknowledged;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut held = Vec::new();
        loop {
            held.clear();
            for target in &self.targets {
                held.push(count_marked(client, target, &self.topic).await.ok());
            }
            if held.iter().all(|h| *h == Some(expected)) || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let all_held = held.iter().all(|h| *h == Some(expected));
        let result = AssertionResult {
            name: "writes during the task acknowledged and held on every node".into(),
            passed: c.failed == 0 && all_held,
            detail: format!(
                "{} records acknowledged in {secs:.1} s ({:.0}/s), {} of {} batches failed; every node holds {}: {held:?}",
                c.acknowledged,
                c.acknowledged as f64 / secs.max(1e-9),
                c.failed,
                c.batches,
                expected
            ),
        };
        (result, expected)
    }
}

impl Drop for BackgroundIngest {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(writer) = &self.writer {
            writer.abort();
        }
    }
}

/// Records with this module's mark that `target` holds.
pub async fn count_marked(client: &reqwest::Client, target: &str, topic: &str) -> Result<u64> {
    let table = crate::router::sql::sql_table_name(topic);
    let answer = super::post(
        client,
        &format!("{target}/_sql"),
        &json!({ "query": format!("SELECT COUNT(*) FROM {table} WHERE location = '{LOCATION}'") }),
    )
    .await?;
    super::assertions::scalar(&answer)
        .ok_or_else(|| crate::error::Error::internal(format!("no count in {answer}")))
}

fn record(seq: u64) -> Value {
    json!({
        "timestamp": 1131566461 + seq as i64,
        "label": "-",
        "host": format!("ingest-host-{}", seq % 61),
        "location": LOCATION,
        "component": "kernel",
        "pid": seq,
        "message": format!("ingest during queries write {seq}"),
    })
}
