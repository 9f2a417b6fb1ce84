//! A realistic run record for the report tests, built from the `bench::record` types: two
//! phases, tasks with throughput timelines, one failing criterion, failover events and 30 s
//! of telemetry from three nodes: shapes a short real run may not produce (a failing criterion,
//! p99.9). The tests read their expectations from whatever this returns; a real run is rendered
//! by the tiny demo test (`harness.rs`).

use serde_json::json;
use sv_appliance::bench::record::{
    AssertionResult, CriterionResult, DatasetRecord, Environment, Event, Hardware, Measurement,
    NodeRecord, NodeTelemetry, Percentiles, PhaseRecord, RunRecord, SCHEMA, TaskRecord,
    TelemetrySample, TimePoint, Version,
};

/// Percentiles from a p50 the way a log-normal-ish latency spreads; p99.9 only with 1,000
/// samples, as `bench::stats` reports it.
fn percentiles(samples: u64, p50: f64) -> Percentiles {
    Percentiles {
        count: samples,
        min: Some(p50 * 0.6),
        mean: Some(p50 * 1.15),
        p50: Some(p50),
        p90: (samples >= 10).then_some(p50 * 1.8),
        p95: (samples >= 20).then_some(p50 * 2.2),
        p99: (samples >= 100).then_some(p50 * 3.2),
        p99_9: (samples >= 1000).then_some(p50 * 5.5),
        max: Some(p50 * 6.0),
    }
}

struct TaskSpec {
    name: &'static str,
    category: &'static str,
    kind: &'static str,
    samples: u64,
    errors: u64,
    p50: f64,
    rate_limited: bool,
    start: f64,
}

fn task(spec: TaskSpec) -> TaskRecord {
    let duration = 8.0;
    let throughput = (spec.samples - spec.errors) as f64 / duration;
    let latency = percentiles(spec.samples, spec.p50);
    // Rate-limited tasks measure latency from the scheduled send time, so it is above the
    // service time; flat-out tasks have both equal.
    let service = if spec.rate_limited {
        percentiles(spec.samples, spec.p50 * 0.8)
    } else {
        latency.clone()
    };
    let passed = spec.errors == 0;
    TaskRecord {
        name: spec.name.to_string(),
        category: spec.category.to_string(),
        kind: spec.kind.to_string(),
        request: json!({ "query": { "match": { "message": spec.name } }, "size": 10 }),
        clients: 4,
        target_rate: spec.rate_limited.then_some(50.0),
        warmup: 5,
        samples: spec.samples,
        errors: spec.errors,
        error_rate: spec.errors as f64 / spec.samples as f64,
        throughput,
        duration_secs: duration,
        latency_ms: latency,
        queries: Vec::new(),
        service_ms: service,
        throughput_timeline: (0..8)
            .map(|i| TimePoint {
                t: spec.start + f64::from(i),
                value: throughput * (0.85 + 0.05 * f64::from(i % 4)),
            })
            .collect(),
        assertions: vec![AssertionResult {
            name: "hits > 0".to_string(),
            passed,
            detail: if passed {
                "every answer had hits".to_string()
            } else {
                format!("{} requests failed", spec.errors)
            },
        }],
        sample_answer: Some(r#"{"hits":{"total":{"value":1834},"hits":[…]}}"#.to_string()),
        passed,
    }
}

fn criterion(name: &str, value: f64, threshold: f64, unit: &str, passed: bool) -> CriterionResult {
    CriterionResult {
        name: name.to_string(),
        judged: true,
        passed,
        value: Some(value),
        threshold,
        bound: "<=".to_string(),
        unit: unit.to_string(),
        detail: "worst task of the category".to_string(),
    }
}

fn telemetry() -> Vec<NodeTelemetry> {
    (1..=3)
        .map(|n| NodeTelemetry {
            node: format!("node-{n}"),
            samples: (0..30)
                .map(|t| {
                    let t = f64::from(t);
                    // node-2 is killed at 18 s and back at 22 s.
                    let down = n == 2 && (18.0..22.0).contains(&t);
                    TelemetrySample {
                        t,
                        reachable: !down,
                        cpu_percent: (!down).then_some(35.0 + 10.0 * f64::from(n) + t % 7.0),
                        rss_bytes: (!down).then_some((400 + 20 * n as u64 + t as u64) << 20),
                        raft_leaders: (!down).then_some(if n == 2 && t < 18.0 { 3 } else { 1 }),
                        raft_max_lag: (!down).then_some(if (19.0..26.0).contains(&t) {
                            4000 - 500 * (t as u64 - 19)
                        } else {
                            3
                        }),
                        index_lag: (!down).then_some(if t < 10.0 {
                            5000 - 500 * t as u64
                        } else {
                            0
                        }),
                        embed_lag: Some(0).filter(|_| !down),
                        cache_hit_ratio: (!down).then_some((t / 30.0).min(0.93)),
                        // Cumulative counters: 3 MiB/s written per node, 8 MiB/s on the host.
                        disk_written_bytes: (!down).then_some(t as u64 * (3 << 20)),
                        net_rx_bytes: (!down).then_some(t as u64 * (5 << 20)),
                        net_tx_bytes: (!down).then_some(t as u64 * (3 << 20)),
                        ..TelemetrySample::default()
                    }
                })
                .collect(),
        })
        .collect()
}

/// The fixture run (final, status `failed`: one criterion of the failover phase failed).
pub fn fixture_run() -> RunRecord {
    let text = PhaseRecord {
        plan: "SV-2a".to_string(),
        title: "Text and SQL queries at scale".to_string(),
        plan_source: "id = \"SV-2a\"\n[[task]]\nname = \"simple text\"\n".to_string(),
        status: "passed".to_string(),
        error: None,
        dataset: Some(DatasetRecord {
            format: "thunderbird".to_string(),
            source: "generated (seed 7)".to_string(),
            topic: "thunderbird".to_string(),
            lines: 200_000,
            records_loaded: 199_998,
            rejected: 2,
            load_secs: 3.2,
            records_per_sec: 62_499.4,
            searchable_secs: 0.8,
            vectors: None,
            embed_secs: None,
        }),
        tasks: vec![
            task(TaskSpec {
                name: "simple text: kernel",
                category: "simple text",
                kind: "search",
                samples: 1200,
                errors: 0,
                p50: 2.4,
                rate_limited: false,
                start: 2.0,
            }),
            task(TaskSpec {
                name: r#"errors & "warnings", <kernel>"#,
                category: "boolean text",
                kind: "search",
                samples: 400,
                errors: 0,
                p50: 6.1,
                rate_limited: false,
                start: 2.0,
            }),
            task(TaskSpec {
                name: "SQL COUNT by host",
                category: "SQL COUNT",
                kind: "sql",
                samples: 60,
                errors: 0,
                p50: 41.0,
                rate_limited: false,
                start: 3.0,
            }),
        ],
        criteria: vec![
            criterion("Text search p50 < 10ms", 6.1, 10.0, "ms", true),
            criterion("SQL COUNT p50 < 100ms", 41.0, 100.0, "ms", true),
        ],
        events: Vec::new(),
        measurements: vec![Measurement {
            name: "load rate".to_string(),
            value: 62_499.4,
            unit: "records/s".to_string(),
            detail: "200,000 lines in 3.2 s".to_string(),
        }],
        started_secs: 0.0,
        finished_secs: Some(12.0),
    };
    let failover = PhaseRecord {
        plan: "SV-3".to_string(),
        title: "Leader failover under load".to_string(),
        plan_source: "id = \"SV-3\"\nkills = 1\n".to_string(),
        status: "failed".to_string(),
        error: None,
        dataset: None,
        tasks: vec![
            task(TaskSpec {
                name: "writes under kill",
                category: "writes",
                kind: "write",
                samples: 900,
                errors: 12,
                p50: 8.5,
                rate_limited: true,
                start: 13.0,
            }),
            task(TaskSpec {
                name: "search under kill",
                category: "simple text",
                kind: "search",
                samples: 850,
                errors: 0,
                p50: 3.3,
                rate_limited: true,
                start: 13.0,
            }),
        ],
        criteria: vec![
            criterion("Leader election < 5s", 1.2, 5.0, "s", true),
            criterion(
                "Failed writes during failover == 0",
                12.0,
                0.0,
                "count",
                false,
            ),
            CriterionResult {
                name: "Catch-up after restart < 30s".to_string(),
                judged: false,
                passed: false,
                value: None,
                threshold: 30.0,
                bound: "<=".to_string(),
                unit: "s".to_string(),
                detail: "no catch-up time was measured".to_string(),
            },
        ],
        events: vec![
            event(18.0, "kill", "SIGKILL node-2 (leader of 3 partitions)"),
            event(19.2, "leader elected", "node-1 leads partitions 0, 2, 4"),
            event(22.0, "restart", "node-2 started again"),
            event(25.5, "caught up", "node-2 lag 0 on every partition"),
        ],
        measurements: vec![Measurement {
            name: "election time".to_string(),
            value: 1.2,
            unit: "s".to_string(),
            detail: "kill to new leader of every partition".to_string(),
        }],
        started_secs: 12.0,
        finished_secs: Some(30.0),
    };
    RunRecord {
        schema: SCHEMA,
        id: "20260501T120000Z-SV-3".to_string(),
        label: "SV-3 <local>".to_string(),
        scale: "200k lines".to_string(),
        status: "failed".to_string(),
        error: None,
        started_at: "2026-05-01T12:00:00Z".to_string(),
        finished_at: Some("2026-05-01T12:00:30Z".to_string()),
        updated_at: Some("2026-05-01T12:00:30Z".to_string()),
        version: Version {
            package: "sv-appliance 0.1.0".to_string(),
            git: "0f106e3-dirty".to_string(),
            build: "debug".to_string(),
        },
        hardware: Hardware {
            hostname: "bench-1".to_string(),
            os: "Debian GNU/Linux 12".to_string(),
            cpu_model: "AMD EPYC 7B13".to_string(),
            cpus: 2,
            memory_bytes: 8 << 30,
        },
        environment: Environment {
            kind: "local cluster of 3".to_string(),
            targets: vec![
                "http://127.0.0.1:7101".to_string(),
                "http://127.0.0.1:7102".to_string(),
                "http://127.0.0.1:7103".to_string(),
            ],
            notes: vec!["embedding provider: none (replication measured without vectors)".into()],
        },
        phases: vec![text, failover],
        telemetry: telemetry(),
        nodes: (1..=3)
            .map(|id| NodeRecord {
                target: format!("http://127.0.0.1:710{id}"),
                node_id: id,
                version: Version {
                    package: "0.1.0".to_string(),
                    git: "0f106e3-dirty".to_string(),
                    build: "debug".to_string(),
                },
                hardware: Hardware {
                    hostname: format!("dell-{id}"),
                    os: "Debian GNU/Linux 12".to_string(),
                    cpu_model: "Intel Xeon E5-2630".to_string(),
                    cpus: 16,
                    memory_bytes: 64 << 30,
                },
                config: json!({
                    "node_id": id,
                    "data_dir": format!("/var/lib/sv <node {id}>"),
                    "cluster": { "token": "(set, withheld)", "replication_factor": 3 },
                    "vector": { "ef_search": 64 },
                }),
            })
            .collect(),
    }
}

fn event(t: f64, kind: &str, detail: &str) -> Event {
    Event {
        t,
        kind: kind.to_string(),
        detail: detail.to_string(),
    }
}
