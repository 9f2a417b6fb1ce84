//! Drives one task's requests: unmeasured warm-up, then a number of requests or a duration,
//! from N concurrent clients, flat-out or at a target rate. At a target rate every request
//! has a scheduled send time (start + i / rate); a request sent late because the clients
//! were still busy counts its latency from that time, so a stalled server is charged for the
//! requests it kept waiting (coordinated omission), and service time (from the actual send)
//! is reported beside it. Every request of the cycle is tagged with its part of a mixed task,
//! and each part is tallied on its own beside the whole (a plain task has one part).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;

use super::record::TimePoint;
use super::stats::Latencies;

/// One request of a task's cycle: where to send which body.
#[derive(Debug, Clone)]
pub struct Request {
    pub url: String,
    pub body: Value,
}

/// A request of the cycle tagged with the part of a mix it belongs to (0 for a plain task).
#[derive(Debug, Clone)]
pub struct Slot {
    pub part: usize,
    pub request: Request,
}

impl Slot {
    /// A request of a plain task.
    pub fn plain(request: Request) -> Slot {
        Slot { part: 0, request }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Measure {
    /// Exactly this many measured requests.
    Count(u64),
    /// Requests scheduled (or started, flat-out) within this long.
    Duration(Duration),
}

pub struct LoadShape {
    /// Unmeasured requests sent first, one at a time.
    pub warmup: u64,
    pub measure: Measure,
    pub clients: usize,
    /// Requests per second across all clients; `None` is flat-out.
    pub target_rate: Option<f64>,
}

/// Checks one answer; returns what was wrong with it, if anything.
pub type AnswerCheck = Arc<dyn Fn(&Request, &Value) -> Option<String> + Send + Sync>;

pub struct Outcome {
    /// The whole task's counts: every part together.
    pub whole: PartOutcome,
    pub duration: Duration,
    /// The last good answer per request of the cycle (for aggregate assertions).
    pub answers: Vec<Option<Value>>,
    /// Requests sent, warm-up included.
    pub sent: u64,
    /// Latency (from the scheduled send) of each request of the cycle, in cycle order: a
    /// task sending several queries reports each one's percentiles too.
    pub per_request: Vec<Latencies>,
    /// The same counts per part of the cycle (`Slot::part`), in part order.
    pub parts: Vec<PartOutcome>,
}

/// The counts of the whole task or of one part: its own histograms, errors and timeline.
pub struct PartOutcome {
    pub latency: Latencies,
    pub service: Latencies,
    /// Failed requests, warm-up included (`warmup_errors` of them).
    pub errors: u64,
    pub warmup_errors: u64,
    /// The first few failures (request errors and failed answer checks), for the report.
    pub failures: Vec<String>,
    pub failed_checks: u64,
    /// Completed requests per whole second since the measured part started.
    pub timeline: Vec<TimePoint>,
}

/// Counts of the whole task or of one part, updated under the shared lock.
#[derive(Default)]
struct Tally {
    latency: Latencies,
    service: Latencies,
    errors: u64,
    warmup_errors: u64,
    failed_checks: u64,
    failures: Vec<String>,
    per_second: Vec<u64>,
}

impl Tally {
    fn failure(&mut self, what: String) {
        if self.failures.len() < KEPT_FAILURES {
            self.failures.push(what);
        }
    }

    fn completed(&mut self, second: usize) {
        if self.per_second.len() <= second {
            self.per_second.resize(second + 1, 0);
        }
        self.per_second[second] += 1;
    }

    fn into_part(self) -> PartOutcome {
        PartOutcome {
            timeline: timeline(&self.per_second),
            latency: self.latency,
            service: self.service,
            errors: self.errors,
            warmup_errors: self.warmup_errors,
            failures: self.failures,
            failed_checks: self.failed_checks,
        }
    }
}

struct Shared {
    whole: Tally,
    parts: Vec<Tally>,
    answers: Vec<Option<Value>>,
    per_request: Vec<Latencies>,
}

impl Shared {
    /// The whole task's tally and the request's part's, to count the same event in both.
    fn tallies(&mut self, part: usize) -> [&mut Tally; 2] {
        [&mut self.whole, &mut self.parts[part]]
    }
}

const KEPT_FAILURES: usize = 5;

fn timeline(per_second: &[u64]) -> Vec<TimePoint> {
    per_second
        .iter()
        .enumerate()
        .map(|(t, n)| TimePoint {
            t: t as f64,
            value: *n as f64,
        })
        .collect()
}

/// Sends `cycle` round after round as `shape` says. `checks` has one check per part: a
/// request's answer goes to the check of its slot's part.
pub async fn drive(
    client: &reqwest::Client,
    cycle: &[Slot],
    shape: &LoadShape,
    checks: &[AnswerCheck],
) -> Outcome {
    let parts = checks.len();
    assert!(
        cycle.iter().all(|s| s.part < parts),
        "every part of the cycle has a check"
    );
    let shared = Arc::new(Mutex::new(Shared {
        whole: Tally::default(),
        parts: (0..parts).map(|_| Tally::default()).collect(),
        answers: vec![None; cycle.len()],
        per_request: (0..cycle.len()).map(|_| Latencies::default()).collect(),
    }));
    let cycle: Arc<Vec<Slot>> = Arc::new(cycle.to_vec());
    let checks: Arc<Vec<AnswerCheck>> = Arc::new(checks.to_vec());
    for i in 0..shape.warmup {
        let slot = &cycle[i as usize % cycle.len()];
        // Warm-up answers are not measured, but a broken warm-up is a broken task.
        if let Err(e) = send(client, &slot.request).await {
            for t in shared.lock().tallies(slot.part) {
                t.errors += 1;
                t.warmup_errors += 1;
                t.failure(format!("warm-up: {e}"));
            }
        }
    }

    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..shape.clients.max(1) {
        let (client, cycle, shared, next, checks) = (
            client.clone(),
            cycle.clone(),
            shared.clone(),
            next.clone(),
            checks.clone(),
        );
        let (measure, rate) = (shape.measure, shape.target_rate);
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let scheduled = match rate {
                    Some(rate) => started + Duration::from_secs_f64(i as f64 / rate),
                    None => Instant::now(),
                };
                let within = match measure {
                    Measure::Count(n) => i < n,
                    Measure::Duration(d) => scheduled.saturating_duration_since(started) < d,
                };
                if !within {
                    break;
                }
                // Waiting for a slot in the schedule means the client was idle: the timer's
                // own lateness (tokio ticks in whole milliseconds) is then the harness's, not
                // the node's. A slot already past means a backlog, which the node caused.
                let idle = scheduled > Instant::now();
                if idle {
                    tokio::time::sleep_until(scheduled.into()).await;
                }
                let Slot { part, request } = &cycle[i as usize % cycle.len()];
                let sent_at = Instant::now();
                let counted_from = if idle {
                    sent_at
                } else {
                    scheduled.min(sent_at)
                };
                let answer = send(&client, request).await;
                let done = Instant::now();
                let second = done.duration_since(started).as_secs() as usize;
                // Checked outside the lock: the checks take their own.
                let problem = answer.as_ref().ok().and_then(|v| checks[*part](request, v));
                let mut s = shared.lock();
                for t in s.tallies(*part) {
                    t.completed(second);
                    match &answer {
                        Ok(_) => {
                            t.latency.record(done.duration_since(counted_from));
                            t.service.record(done.duration_since(sent_at));
                            if let Some(problem) = &problem {
                                t.failed_checks += 1;
                                t.failure(problem.clone());
                            }
                        }
                        Err(e) => {
                            t.errors += 1;
                            t.failure(e.clone());
                        }
                    }
                }
                if let Ok(value) = answer {
                    let at = i as usize % cycle.len();
                    s.per_request[at].record(done.duration_since(counted_from));
                    s.answers[at] = Some(value);
                }
            }
        }));
    }
    for worker in workers {
        let _ = worker.await;
    }
    let duration = started.elapsed();
    let s = Arc::try_unwrap(shared)
        .ok()
        .map(Mutex::into_inner)
        .expect("every worker has finished");
    let whole = s.whole.into_part();
    let measured_errors = whole.errors - whole.warmup_errors;
    let sent = shape.warmup + whole.latency.count() + measured_errors;
    Outcome {
        whole,
        duration,
        answers: s.answers,
        per_request: s.per_request,
        sent,
        parts: s.parts.into_iter().map(Tally::into_part).collect(),
    }
}

/// POSTs one request; a transport error or a non-2xx answer is an error naming the status
/// and the server's message.
pub async fn send(client: &reqwest::Client, request: &Request) -> Result<Value, String> {
    let response = client
        .post(&request.url)
        .json(&request.body)
        .send()
        .await
        .map_err(|e| format!("{}: {e}", request.url))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| format!("{}: {e}", request.url))?;
    if !status.is_success() {
        let message: String = text.chars().take(300).collect();
        return Err(format!("{} answered {status}: {message}", request.url));
    }
    serde_json::from_str(&text).map_err(|e| format!("{}: answer is not JSON: {e}", request.url))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;

    /// A server whose every answer takes `delay`, one request at a time (a mutex), like a
    /// node that has stalled.
    async fn slow_server(delay: Duration) -> String {
        let gate = Arc::new(tokio::sync::Mutex::new(()));
        let app = axum::Router::new().route(
            "/q",
            post(move || {
                let gate = gate.clone();
                async move {
                    let _one_at_a_time = gate.lock().await;
                    tokio::time::sleep(delay).await;
                    axum::Json(serde_json::json!({ "ok": true }))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}/q")
    }

    fn no_check() -> AnswerCheck {
        Arc::new(|_, _| None)
    }

    /// 20 ms per request, one at a time, asked for 100 requests/s: the server can do 50/s, so
    /// the queue grows and the latency users see (from the scheduled time) grows far past the
    /// 20 ms service time. A harness that measured from the actual send would report ~20 ms.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_target_rate_charges_the_wait_to_latency_not_service_time() {
        let url = slow_server(Duration::from_millis(20)).await;
        let client = reqwest::Client::new();
        let cycle = vec![Slot::plain(Request {
            url,
            body: serde_json::json!({}),
        })];
        let outcome = drive(
            &client,
            &cycle,
            &LoadShape {
                warmup: 0,
                measure: Measure::Count(60),
                clients: 4,
                target_rate: Some(100.0),
            },
            &[no_check()],
        )
        .await;
        let latency = outcome.whole.latency.summary();
        let service = outcome.whole.service.summary();
        assert_eq!(latency.count, 60);
        assert_eq!(outcome.whole.errors, 0);
        // Service time: the 20 ms plus up to 3 requests queued at the server's mutex.
        assert!(service.p50.unwrap() >= 19.0, "{service:?}");
        // 60 requests at 50/s take ~1.2 s but were scheduled over 0.6 s: the last one waited
        // ~0.6 s beyond its slot.
        assert!(latency.max.unwrap() > 400.0, "{latency:?}");
        assert!(
            latency.p90.unwrap() > 3.0 * service.p90.unwrap(),
            "latency {latency:?} vs service {service:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn flat_out_counts_requests_errors_and_failed_checks() {
        let url = slow_server(Duration::from_millis(1)).await;
        let client = reqwest::Client::new();
        let cycle = vec![
            Slot::plain(Request {
                url: url.clone(),
                body: serde_json::json!({ "n": 1 }),
            }),
            Slot {
                part: 1,
                request: Request {
                    url: format!("{url}/missing"),
                    body: serde_json::json!({ "n": 2 }),
                },
            },
        ];
        let check: AnswerCheck = Arc::new(|r, _| (r.body["n"] == 1).then(|| "wrong".into()));
        let outcome = drive(
            &client,
            &cycle,
            &LoadShape {
                warmup: 2,
                measure: Measure::Count(10),
                clients: 2,
                target_rate: None,
            },
            &[check.clone(), check],
        )
        .await;
        // Half the cycle is a 404: 1 in warm-up, 5 measured.
        assert_eq!(outcome.whole.errors, 6);
        assert_eq!(outcome.whole.latency.count(), 5);
        assert_eq!(outcome.whole.failed_checks, 5);
        assert_eq!(outcome.sent, 12);
        assert!(outcome.whole.failures.iter().any(|f| f.contains("404")));
        let completed: f64 = outcome.whole.timeline.iter().map(|p| p.value).sum();
        assert_eq!(completed, 10.0);
        // Each part keeps its own: the answers and failed checks in part 0, the 404s in 1.
        let [good, missing] = &outcome.parts[..] else {
            panic!("two parts expected");
        };
        assert_eq!(
            (good.latency.count(), good.errors, good.failed_checks),
            (5, 0, 5)
        );
        assert_eq!(
            (
                missing.latency.count(),
                missing.errors,
                missing.warmup_errors
            ),
            (0, 6, 1)
        );
        assert!(missing.failures.iter().all(|f| f.contains("404")));
        let part_completed: f64 = missing.timeline.iter().map(|p| p.value).sum();
        assert_eq!(part_completed, 5.0);
    }
}
