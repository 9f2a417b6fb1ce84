//! SV-3's fault scenario on a local cluster: under a write load and a query load sent to the
//! survivors, SIGKILL the leader of the dataset's partition 0; time until every group is led
//! again, count failed writes and failed survivor queries, restart the node, time its
//! catch-up, and check that every acknowledged write is on every node.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Value, json};

use super::record::{Event, Measurement};
use crate::cluster::local::{LocalCluster, is_formed};
use crate::error::{Error, Result};

pub struct FailoverOutcome {
    pub events: Vec<Event>,
    pub measurements: Vec<Measurement>,
}

fn measurement(name: &str, value: f64, unit: &str, detail: String) -> Measurement {
    Measurement {
        name: name.into(),
        value,
        unit: unit.into(),
        detail,
    }
}

/// Runs `kills` rounds; measurements keep the worst round.
pub async fn run(
    cluster: &mut LocalCluster,
    topic: &str,
    kills: usize,
    run_started: Instant,
) -> Result<FailoverOutcome> {
    let client = super::http_client();
    let at = || run_started.elapsed().as_secs_f64();
    let mut events = Vec::new();
    let status = cluster.status_from(&client).await?;
    let ids: Vec<u64> = cluster.nodes.iter().map(|n| n.id).collect();
    let healthy = status["members"]
        .as_array()
        .map_or(0, |m| m.iter().filter(|m| m["ready"] == true).count());
    let mut measurements = vec![measurement(
        "healthy_nodes",
        healthy as f64,
        "nodes",
        format!(
            "ready members before the first kill; formed: {}",
            is_formed(&status, &ids)
        ),
    )];
    let (mut election, mut catch_up) = (0.0f64, 0.0f64);
    let (mut failed_writes, mut query_errors, mut lost, mut worst_write_ms) = (0, 0, 0, 0.0f64);
    for round in 0..kills {
        let status = cluster.status_from(&client).await?;
        let group = format!("{topic}/0");
        let victim = status["groups"]
            .as_array()
            .and_then(|g| g.iter().find(|g| g["group"] == group.as_str()))
            .and_then(|g| g["leader"].as_u64())
            .ok_or_else(|| Error::Unavailable(format!("{group} has no leader")))?;
        let survivors: Vec<String> = cluster
            .nodes
            .iter()
            .filter(|n| n.id != victim)
            .map(|n| n.base_url())
            .collect();
        let load = Load::start(&client, &survivors, topic, round);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let index = cluster.index(victim)?;
        let killed_at = Instant::now();
        tokio::task::block_in_place(|| cluster.kill(index))?;
        events.push(Event {
            t: at(),
            kind: "kill".into(),
            detail: format!(
                "SIGKILL node {victim}, leader of {group} (round {})",
                round + 1
            ),
        });
        let survivor_ids: Vec<u64> = ids.iter().copied().filter(|&i| i != victim).collect();
        let elected = loop {
            if let Ok(s) = cluster.status_from(&client).await {
                let groups = s["groups"].as_array().cloned().unwrap_or_default();
                if !groups.is_empty()
                    && groups.iter().all(|g| {
                        g["leader"]
                            .as_u64()
                            .is_some_and(|l| survivor_ids.contains(&l))
                    })
                {
                    break killed_at.elapsed();
                }
            }
            if killed_at.elapsed() > Duration::from_secs(30) {
                load.stop().await;
                return Err(Error::Unavailable(
                    "no new leader for every group within 30 s of the kill".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        events.push(Event {
            t: at(),
            kind: "leaders elected".into(),
            detail: format!(
                "every group led by a survivor {:.0} ms after the kill",
                elected.as_secs_f64() * 1000.0
            ),
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
        let acked_batches = load.acked.clone();
        let result = load.stop().await;
        let acked_batches = acked_batches.lock().clone();
        events.push(Event {
            t: at(),
            kind: "load stopped".into(),
            detail: format!(
                "{} of {} writes failed, {} of {} survivor queries failed, slowest write {:.0} ms",
                result.failed_writes,
                result.writes,
                result.query_errors,
                result.queries,
                result.worst_write_ms
            ),
        });
        let restarted_at = Instant::now();
        tokio::task::block_in_place(|| cluster.restart(index))?;
        events.push(Event {
            t: at(),
            kind: "restart".into(),
            detail: format!("node {victim} started again"),
        });
        cluster.wait_formed(Duration::from_secs(120)).await?;
        let caught_up = restarted_at.elapsed().as_secs_f64();
        events.push(Event {
            t: at(),
            kind: "caught up".into(),
            detail: format!(
                "node {victim} holds every group within the lag bound after {caught_up:.1} s"
            ),
        });
        // Every record of every acknowledged batch must be on every node, the restarted one
        // too. Checked batch by batch, so a failed write that was applied anyway cannot hide
        // a lost one; polled for a while, since "caught up" allows a few entries of lag.
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in &cluster.nodes {
            loop {
                let missing =
                    missing_records(&client, &node.base_url(), topic, round, &acked_batches)
                        .await?;
                if missing == 0 || Instant::now() > deadline {
                    lost = lost.max(missing);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        election = election.max(elected.as_secs_f64());
        catch_up = catch_up.max(caught_up);
        failed_writes += result.failed_writes;
        query_errors += result.query_errors;
        worst_write_ms = worst_write_ms.max(result.worst_write_ms);
    }
    measurements.extend([
        measurement(
            "election_secs",
            election,
            "s",
            format!("worst of {kills} kill(s)"),
        ),
        measurement(
            "catch_up_secs",
            catch_up,
            "s",
            "restart until the node is back within the lag bound".into(),
        ),
        measurement(
            "failed_writes",
            failed_writes as f64,
            "writes",
            "writes answered with an error around the kills (retryable 503s)".into(),
        ),
        measurement(
            "survivor_query_errors",
            query_errors as f64,
            "count",
            "text queries to the surviving nodes that failed during the failover".into(),
        ),
        measurement(
            "acknowledged_writes_lost",
            lost as f64,
            "records",
            "acknowledged records missing on any node after the restart".into(),
        ),
        measurement(
            "worst_write_ms",
            worst_write_ms,
            "ms",
            "slowest write around the kill".into(),
        ),
    ]);
    Ok(FailoverOutcome {
        events,
        measurements,
    })
}

/// Records of the acknowledged batches of `round` that `base` does not hold.
async fn missing_records(
    client: &reqwest::Client,
    base: &str,
    topic: &str,
    round: usize,
    acked: &[u64],
) -> Result<u64> {
    let table = crate::router::sql::sql_table_name(topic);
    let query = format!(
        "SELECT pid / 100 AS batch, COUNT(*) AS n FROM {table} WHERE location = 'failover-{round}' GROUP BY pid / 100"
    );
    let answer = super::post(
        client,
        &format!("{base}/_sql"),
        &json!({ "query": query, "limit": 1_000_000 }),
    )
    .await?;
    let mut held = std::collections::HashMap::new();
    for row in answer["rows"].as_array().into_iter().flatten() {
        if let (Some(batch), Some(n)) = (row["batch"].as_u64(), row["n"].as_u64()) {
            held.insert(batch, n);
        }
    }
    Ok(acked
        .iter()
        .map(|b| 100u64.saturating_sub(held.get(b).copied().unwrap_or(0)))
        .sum())
}

#[derive(Clone, Copy)]
struct LoadResult {
    writes: u64,
    failed_writes: u64,
    acknowledged: u64,
    queries: u64,
    query_errors: u64,
    worst_write_ms: f64,
}

/// A writer (100-record batches) and a reader (text search) on the survivors.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    counters: Arc<Mutex<LoadResult>>,
    /// Batches (100 records each, `pid / 100`) whose write was acknowledged.
    acked: Arc<Mutex<Vec<u64>>>,
}

impl Load {
    fn start(client: &reqwest::Client, survivors: &[String], topic: &str, round: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Mutex::new(LoadResult {
            writes: 0,
            failed_writes: 0,
            acknowledged: 0,
            queries: 0,
            query_errors: 0,
            worst_write_ms: 0.0,
        }));
        let seq = Arc::new(AtomicU64::new(0));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let write_url = format!("{}/topics/{topic}/records", survivors[0]);
        let writer = {
            let (stop, counters, client, seq) =
                (stop.clone(), counters.clone(), client.clone(), seq);
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let first = seq.fetch_add(100, Ordering::Relaxed);
                    let records: Vec<Value> =
                        (first..first + 100).map(|i| record(round, i)).collect();
                    let started = Instant::now();
                    let ok = client
                        .post(&write_url)
                        .json(&json!({ "records": records }))
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    let mut c = counters.lock();
                    c.writes += 1;
                    c.worst_write_ms = c
                        .worst_write_ms
                        .max(started.elapsed().as_secs_f64() * 1000.0);
                    if ok {
                        c.acknowledged += 100;
                    } else {
                        c.failed_writes += 1;
                    }
                }
            })
        };
        let reader = {
            let (stop, counters, client) = (stop.clone(), counters.clone(), client.clone());
            let urls: Vec<String> = survivors
                .iter()
                .map(|s| format!("{s}/{topic}/_search"))
                .collect();
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let answer = client
                        .post(&urls[i % urls.len()])
                        .json(&json!({ "q": "error", "size": 10 }))
                        .send()
                        .await;
                    let ok = match answer {
                        Ok(r) if r.status().is_success() => r
                            .json::<Value>()
                            .await
                            .is_ok_and(|v| super::assertions::incompleteness(&v).is_none()),
                        _ => false,
                    };
                    {
                        let mut c = counters.lock();
                        c.queries += 1;
                        if !ok {
                            c.query_errors += 1;
                        }
                    }
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        Load {
            stop,
            tasks: vec![writer, reader],
            counters,
            acked,
        }
    }

    async fn stop(mut self) -> LoadResult {
        self.stop.store(true, Ordering::Relaxed);
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
        let c = self.counters.lock();
        *c
    }
}

/// A round that ends early (an error) must not leave its writer and reader running.
impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn record(round: usize, seq: u64) -> Value {
    json!({
        "timestamp": 1131566461 + seq as i64,
        "label": "-",
        "host": format!("failover-host-{}", seq % 61),
        "location": format!("failover-{round}"),
        "component": "kernel",
        "pid": seq,
        "message": format!("failover round {round} write {seq}"),
    })
}
