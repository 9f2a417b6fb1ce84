//! Runs one task of a plan against the environment's nodes: builds its request cycle, drives
//! it with the task's load shape, checks the answers and turns it all into a task record.

use std::time::Duration;

use serde_json::Value;

use super::assertions::{self, AnswerChecks};
use super::load::{LoadShape, Measure, Request, drive};
use super::plan::{AssertionSpec, Scale, TaskSpec};
use super::record::{AssertionResult, TaskRecord};

pub struct TaskContext<'a> {
    pub client: &'a reqwest::Client,
    pub topic: &'a str,
    pub scale: &'a Scale,
    /// Records the dataset loaded (for `count_equals_loaded`).
    pub loaded: u64,
    /// Values for `{PLACEHOLDER}`s in request strings.
    pub placeholders: &'a [(String, String)],
}

/// Runs `spec` through `targets` (all of them for `via = "spread"`) and returns its record
/// and one answer per request of the cycle.
pub async fn run_task(
    ctx: &TaskContext<'_>,
    spec: &TaskSpec,
    name: String,
    targets: &[String],
) -> (TaskRecord, Vec<Option<Value>>) {
    let bodies: Vec<Value> = spec
        .bodies()
        .iter()
        .map(|b| fill(b, ctx.placeholders))
        .collect();
    let cycle: Vec<Request> = targets
        .iter()
        .flat_map(|target| {
            bodies.iter().map(move |body| Request {
                url: endpoint(target, &spec.kind, ctx.topic),
                body: body.clone(),
            })
        })
        .collect();
    let per_round = cycle.len() as u64;
    let iterations = spec.iterations.unwrap_or(ctx.scale.iterations) as u64;
    let warmup = spec.warmup.unwrap_or(ctx.scale.warmup) as u64;
    let measure = match spec.duration_secs {
        Some(secs) => Measure::Duration(Duration::from_secs_f64(
            ctx.scale.max_task_secs.map_or(secs, |cap| secs.min(cap)),
        )),
        None => Measure::Count(iterations * per_round),
    };
    let shape = LoadShape {
        warmup: warmup * per_round,
        measure,
        clients: spec.clients,
        target_rate: spec.target_rate,
    };
    let metrics_before = metric_snapshots(ctx.client, &spec.assertions, &targets[0]).await;
    let checks = AnswerChecks::new(&spec.assertions, ctx.loaded);
    let outcome = drive(ctx.client, &cycle, &shape, checks.as_check()).await;
    let mut results = checks.results();
    for assertion in &spec.assertions {
        match assertion {
            AssertionSpec::RecallAtLeast(threshold) => {
                results.push(recall(ctx.client, &cycle, &outcome.answers, *threshold).await);
            }
            AssertionSpec::MetricDeltaEqualsRequests(metric) => {
                let before = metrics_before
                    .iter()
                    .find(|(m, _)| m == metric)
                    .map_or(0.0, |(_, v)| *v);
                let after = metric_value(ctx.client, &targets[0], metric).await;
                results.push(assertions::metric_delta_result(
                    metric,
                    before,
                    after.unwrap_or(f64::NAN),
                    outcome.sent,
                ));
            }
            _ => {}
        }
    }
    if outcome.errors > 0 {
        results.push(AssertionResult {
            name: "no request errors".into(),
            passed: false,
            detail: format!(
                "{} errors; first: {}",
                outcome.errors,
                outcome.failures.first().cloned().unwrap_or_default()
            ),
        });
    }
    let samples = outcome.latency.count();
    let secs = outcome.duration.as_secs_f64().max(1e-9);
    let record = TaskRecord {
        name,
        category: spec.category.clone(),
        kind: spec.kind.clone(),
        request: if bodies.len() == 1 {
            bodies[0].clone()
        } else {
            Value::Array(bodies.clone())
        },
        clients: spec.clients,
        target_rate: spec.target_rate,
        warmup: warmup as usize,
        samples,
        errors: outcome.errors,
        // Over the measured requests: warm-up successes are not counted, so neither are its
        // errors (they still fail the task above).
        error_rate: (outcome.errors - outcome.warmup_errors) as f64
            / (samples + outcome.errors - outcome.warmup_errors).max(1) as f64,
        throughput: samples as f64 / secs,
        duration_secs: secs,
        latency_ms: outcome.latency.summary(),
        service_ms: outcome.service.summary(),
        throughput_timeline: outcome.timeline,
        passed: results.iter().all(|a| a.passed),
        assertions: results,
        sample_answer: outcome
            .answers
            .iter()
            .flatten()
            .next()
            .map(|a| a.to_string().chars().take(2000).collect()),
    };
    (record, outcome.answers)
}

fn endpoint(target: &str, kind: &str, topic: &str) -> String {
    match kind {
        "search" => format!("{target}/{topic}/_search"),
        "sql" => format!("{target}/_sql"),
        "vector" => format!("{target}/_vector/{topic}/search"),
        "hybrid" => format!("{target}/_vector/{topic}/hybrid"),
        _ => format!("{target}/_query"),
    }
}

/// Replaces `{NAME}` in every string of `body` (SQL and query text are strings).
fn fill(body: &Value, placeholders: &[(String, String)]) -> Value {
    match body {
        Value::String(s) => {
            let mut s = s.clone();
            for (name, value) in placeholders {
                s = s.replace(&format!("{{{name}}}"), value);
            }
            Value::String(s)
        }
        Value::Array(a) => Value::Array(a.iter().map(|v| fill(v, placeholders)).collect()),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), fill(v, placeholders)))
                .collect(),
        ),
        other => other.clone(),
    }
}

async fn metric_snapshots(
    client: &reqwest::Client,
    specs: &[AssertionSpec],
    target: &str,
) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    for spec in specs {
        if let AssertionSpec::MetricDeltaEqualsRequests(metric) = spec {
            let value = metric_value(client, target, metric)
                .await
                .unwrap_or(f64::NAN);
            out.push((metric.clone(), value));
        }
    }
    out
}

async fn metric_value(client: &reqwest::Client, target: &str, metric: &str) -> Option<f64> {
    let text = super::get(client, &format!("{target}/metrics"))
        .await
        .ok()?;
    Some(super::metric_sum(&text, metric))
}

/// Sends each request of the cycle again with `"exact": true` and compares the top-k.
async fn recall(
    client: &reqwest::Client,
    cycle: &[Request],
    answers: &[Option<Value>],
    threshold: f64,
) -> AssertionResult {
    let mut recalls = Vec::new();
    let mut problems = Vec::new();
    for (request, answer) in cycle.iter().zip(answers) {
        let Some(answer) = answer else {
            problems.push(format!("no answer to {}", request.body));
            continue;
        };
        let mut exact = request.clone();
        exact.body["exact"] = Value::Bool(true);
        match super::load::send(client, &exact).await {
            Ok(truth) => match assertions::recall(answer, &truth) {
                Some(r) => recalls.push(r),
                None => problems.push(format!("exact search found nothing for {}", request.body)),
            },
            Err(e) => problems.push(e),
        }
    }
    assertions::recall_result(threshold, &recalls, &problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn placeholders_are_filled_inside_nested_strings_only() {
        let body = json!({ "query": "SELECT * FROM t WHERE timestamp > {MID_TIMESTAMP} LIMIT 20",
                           "k": 10, "list": ["{MID_TIMESTAMP}", 1] });
        let filled = fill(&body, &[("MID_TIMESTAMP".into(), "1131566461".into())]);
        assert_eq!(
            filled,
            json!({ "query": "SELECT * FROM t WHERE timestamp > 1131566461 LIMIT 20",
                    "k": 10, "list": ["1131566461", 1] })
        );
    }
}
