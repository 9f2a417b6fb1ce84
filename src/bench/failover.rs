//! SV-3's fault scenario, on a local cluster or on hosts `up` deployed: under a write load and
//! a query load sent to the survivors, SIGKILL the leader of the dataset's partition 0; time
//! until every group is led again, count failed writes and failed survivor queries, restart
//! the node, time its catch-up, and check that every acknowledged write is on every node.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Value, json};

use super::faults::Faults;
use super::marked_writes::{MarkedWriter, Tally, WriterPlan, await_held, next_free_seq};
use super::record::{Event, Measurement};
use crate::cluster::local::is_formed;
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
    mut faults: Faults<'_>,
    topic: &str,
    kills: usize,
    run_started: Instant,
) -> Result<FailoverOutcome> {
    let client = super::http_client();
    let at = || run_started.elapsed().as_secs_f64();
    let mut events = Vec::new();
    let status = faults.status(&client).await?;
    let members = faults.members();
    let ids: Vec<u64> = members.iter().map(|(id, _)| *id).collect();
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
    let mut acknowledged = 0;
    let (mut normal_query_ms, mut spike_query_ms) = (0.0f64, 0.0f64);
    for round in 0..kills {
        let status = faults.status(&client).await?;
        let group = format!("{topic}/0");
        let victim = status["groups"]
            .as_array()
            .and_then(|g| g.iter().find(|g| g["group"] == group.as_str()))
            .and_then(|g| g["leader"].as_u64())
            .ok_or_else(|| Error::Unavailable(format!("{group} has no leader")))?;
        let survivors: Vec<String> = members
            .iter()
            .filter(|(id, _)| *id != victim)
            .map(|(_, url)| url.clone())
            .collect();
        let location = format!("failover-{round}");
        let first = next_free_seq(&client, &survivors[0], topic, &location).await?;
        let load = Load::start(&client, &survivors, topic, &location, first);
        tokio::time::sleep(Duration::from_secs(1)).await;
        let killed_at = Instant::now();
        let where_ = faults.kill(victim)?;
        events.push(Event {
            t: at(),
            kind: "kill".into(),
            detail: format!(
                "SIGKILL node {victim} {where_}, leader of {group} (round {})",
                round + 1
            ),
        });
        let survivor_ids: Vec<u64> = ids.iter().copied().filter(|&i| i != victim).collect();
        let elected = loop {
            if let Ok(s) = faults.status(&client).await {
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
        let (writes, queries) = load.stop().await;
        let (normal, spike) = queries.around(killed_at);
        let ms = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.1} ms"));
        events.push(Event {
            t: at(),
            kind: "load stopped".into(),
            detail: format!(
                "{} of {} writes failed, {} of {} survivor queries failed, slowest write {:.0} ms; survivor queries p50 {} before the kill, slowest {} after it",
                writes.failed,
                writes.batches,
                queries.errors,
                queries.sent,
                writes.worst_write_ms,
                ms(normal),
                ms(spike)
            ),
        });
        normal_query_ms = normal_query_ms.max(normal.unwrap_or(0.0));
        spike_query_ms = spike_query_ms.max(spike.unwrap_or(0.0));
        let restarted_at = Instant::now();
        faults.restart(victim)?;
        events.push(Event {
            t: at(),
            kind: "restart".into(),
            detail: format!("node {victim} started again"),
        });
        faults
            .wait_formed(&client, Duration::from_secs(120))
            .await?;
        let caught_up = restarted_at.elapsed().as_secs_f64();
        events.push(Event {
            t: at(),
            kind: "caught up".into(),
            detail: format!(
                "node {victim} holds every group within the lag bound after {caught_up:.1} s"
            ),
        });
        // Every record of every acknowledged batch must be on every node, the restarted one
        // too; polled for a while, since "caught up" allows a few entries of lag.
        let every_node: Vec<String> = members.iter().map(|(_, url)| url.clone()).collect();
        let (missing, _) = await_held(
            &client,
            &every_node,
            topic,
            &location,
            &writes.acked,
            Duration::from_secs(30),
        )
        .await;
        lost = lost.max(missing);
        acknowledged += writes.acknowledged_records();
        election = election.max(elected.as_secs_f64());
        catch_up = catch_up.max(caught_up);
        failed_writes += writes.failed;
        query_errors += queries.errors;
        worst_write_ms = worst_write_ms.max(writes.worst_write_ms);
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
            "survivor_query_spike_ms",
            spike_query_ms,
            "ms",
            format!(
                "slowest answered text query to a surviving node after a kill (p50 before the kills: {normal_query_ms:.1} ms)"
            ),
        ),
        measurement(
            "acknowledged_writes_lost",
            lost as f64,
            "records",
            format!(
                "of {acknowledged} acknowledged records, the most missing on any node after the restart"
            ),
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

/// What the survivors' reader saw.
#[derive(Default, Clone)]
struct QueryTally {
    sent: u64,
    errors: u64,
    /// When each answered query was sent, and how long it took (ms).
    latencies: Vec<(Instant, f64)>,
}

impl QueryTally {
    /// Median latency of the queries sent before `at`, and the slowest sent from `at` on: the
    /// reader's normal and its spike around a kill.
    fn around(&self, at: Instant) -> (Option<f64>, Option<f64>) {
        let mut before: Vec<f64> = self
            .latencies
            .iter()
            .filter(|(sent, _)| *sent < at)
            .map(|(_, ms)| *ms)
            .collect();
        before.sort_by(f64::total_cmp);
        let median = (!before.is_empty()).then(|| before[before.len() / 2]);
        let slowest = self
            .latencies
            .iter()
            .filter(|(sent, _)| *sent >= at)
            .map(|(_, ms)| *ms)
            .max_by(f64::total_cmp);
        (median, slowest)
    }
}

/// The marked writer and a reader (text search, rotating over the survivors).
struct Load {
    /// Taken by `stop`.
    writer: Option<MarkedWriter>,
    stop: Arc<AtomicBool>,
    reader: Option<tokio::task::JoinHandle<()>>,
    queries: Arc<Mutex<QueryTally>>,
}

impl Load {
    fn start(
        client: &reqwest::Client,
        survivors: &[String],
        topic: &str,
        location: &str,
        first: u64,
    ) -> Load {
        // Writes go to one survivor: it forwards to each partition's leader, so writes keep
        // flowing through the election.
        let writer = MarkedWriter::start(
            client,
            WriterPlan {
                targets: vec![survivors[0].clone()],
                topic: topic.to_string(),
                location: location.to_string(),
                rate: None,
                first,
            },
        );
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(Mutex::new(QueryTally::default()));
        let reader = {
            let (stop, queries, client) = (stop.clone(), queries.clone(), client.clone());
            let urls: Vec<String> = survivors
                .iter()
                .map(|s| format!("{s}/{topic}/_search"))
                .collect();
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
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
                        let mut q = queries.lock();
                        q.sent += 1;
                        if ok {
                            q.latencies
                                .push((sent, sent.elapsed().as_secs_f64() * 1000.0));
                        } else {
                            q.errors += 1;
                        }
                    }
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        Load {
            writer: Some(writer),
            stop,
            reader: Some(reader),
            queries,
        }
    }

    async fn stop(mut self) -> (Tally, QueryTally) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.await;
        }
        let queries = std::mem::take(&mut *self.queries.lock());
        let writes = match self.writer.take() {
            Some(writer) => writer.stop().await.0,
            None => Tally::default(),
        };
        (writes, queries)
    }
}

/// A round that ends early (an error) must not leave its reader running (the writer stops
/// itself when dropped).
impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(reader) = &self.reader {
            reader.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spike_is_the_slowest_query_after_the_kill_against_the_median_before() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let tally = QueryTally {
            sent: 6,
            errors: 1,
            latencies: vec![
                (at(0), 2.0),
                (at(10), 9.0),
                (at(20), 3.0),
                (at(30), 400.0),
                (at(40), 5.0),
            ],
        };
        assert_eq!(tally.around(at(30)), (Some(3.0), Some(400.0)));
        assert_eq!(tally.around(at(0)), (None, Some(400.0)));
        assert_eq!(tally.around(at(50)), (Some(5.0), None));
    }
}
