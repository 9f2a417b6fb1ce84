//! What a task asserts about its answers. Per-answer checks run on every measured answer
//! (hits, COUNT, completeness, cache use); aggregate ones run after the task (recall against
//! exact search, Prometheus counter deltas, agreement between nodes). A fast wrong answer
//! fails the task.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use serde_json::Value;

use super::load::{AnswerCheck, Request};
use super::plan::AssertionSpec;
use super::record::AssertionResult;

/// How many results an answer carries: search hits total, SQL rows, vector/hybrid/orchestrator
/// results.
pub fn hit_count(answer: &Value) -> Option<u64> {
    answer["hits"]["total"]["value"]
        .as_u64()
        .or_else(|| answer["row_count"].as_u64())
        .or_else(|| answer["count"].as_u64())
        .or_else(|| answer["results"].as_array().map(|r| r.len() as u64))
}

/// The first value of the first row of a SQL answer.
pub fn scalar(answer: &Value) -> Option<u64> {
    answer["rows"][0].as_object()?.values().next()?.as_u64()
}

/// The failed "no request errors" result of a task (or part) that had request errors: a
/// request that failed is a failed task, whatever its latency.
pub fn request_errors(errors: u64, failures: &[String]) -> Option<AssertionResult> {
    (errors > 0).then(|| AssertionResult {
        name: "no request errors".into(),
        passed: false,
        detail: format!(
            "{errors} errors; first: {}",
            failures.first().cloned().unwrap_or_default()
        ),
    })
}

/// Why an answer is incomplete, if it is: a failed shard, a partition still loading, an
/// orchestrator backend that did not contribute.
pub fn incompleteness(answer: &Value) -> Option<String> {
    if let Some(failed) = answer["_shards"]["failed"].as_u64()
        && failed > 0
    {
        return Some(format!("{failed} shard(s) failed: {}", answer["_shards"]));
    }
    if answer["loading"].as_bool() == Some(true) {
        return Some(format!(
            "partitions still loading: {}",
            answer["loading_partitions"]
        ));
    }
    if answer["stats"]["complete"].as_bool() == Some(false) {
        return Some(format!(
            "backends incomplete: {}",
            answer["stats"]["backends"]
        ));
    }
    None
}

pub fn describe(spec: &AssertionSpec) -> String {
    match spec {
        AssertionSpec::HitsAbove(n) => format!("hits > {n}"),
        AssertionSpec::CountEqualsLoaded(_) => "COUNT = records loaded".into(),
        AssertionSpec::RowsEqual(n) => format!("rows = {n}"),
        AssertionSpec::Complete(_) => "every partition answered".into(),
        AssertionSpec::EmbeddingFromCache(true) => "query embedding from the cache".into(),
        AssertionSpec::EmbeddingFromCache(false) => "query embedded (cache miss)".into(),
        AssertionSpec::RecallAtLeast(x) => format!("recall@k >= {x} against exact search"),
        AssertionSpec::MetricDeltaEqualsRequests(m) => format!("{m} delta = requests sent"),
        AssertionSpec::MetricDeltaPerRequest {
            metric,
            per_request,
        } => format!("{metric} delta = {per_request} × requests sent"),
        AssertionSpec::SameTotalOnEveryNode(_) => "same total on every node".into(),
    }
}

/// The per-answer assertions of a task, counting failures per assertion.
pub struct AnswerChecks {
    specs: Vec<AssertionSpec>,
    loaded: u64,
    failures: Vec<AtomicU64>,
    first_failure: Mutex<Vec<Option<String>>>,
    checked: AtomicU64,
}

impl AnswerChecks {
    /// `loaded`: the records the dataset loaded, for `count_equals_loaded`.
    pub fn new(specs: &[AssertionSpec], loaded: u64) -> Arc<Self> {
        let specs: Vec<AssertionSpec> = specs
            .iter()
            .filter(|s| Self::per_answer(s))
            .cloned()
            .collect();
        Arc::new(AnswerChecks {
            failures: specs.iter().map(|_| AtomicU64::new(0)).collect(),
            first_failure: Mutex::new(vec![None; specs.len()]),
            specs,
            loaded,
            checked: AtomicU64::new(0),
        })
    }

    /// Whether `spec` is checked on each answer (rather than once over the task).
    pub fn per_answer(spec: &AssertionSpec) -> bool {
        matches!(
            spec,
            AssertionSpec::HitsAbove(_)
                | AssertionSpec::CountEqualsLoaded(true)
                | AssertionSpec::RowsEqual(_)
                | AssertionSpec::Complete(true)
                | AssertionSpec::EmbeddingFromCache(_)
        )
    }

    fn problem(&self, spec: &AssertionSpec, answer: &Value) -> Option<String> {
        match spec {
            AssertionSpec::HitsAbove(n) => match hit_count(answer) {
                Some(h) if h > *n => None,
                h => Some(format!("{h:?} hits")),
            },
            AssertionSpec::CountEqualsLoaded(_) => match scalar(answer) {
                Some(c) if c == self.loaded => None,
                c => Some(format!("COUNT {c:?}, loaded {}", self.loaded)),
            },
            AssertionSpec::RowsEqual(n) => match answer["row_count"].as_u64() {
                Some(r) if r == *n => None,
                r => Some(format!("{r:?} rows")),
            },
            AssertionSpec::Complete(_) => incompleteness(answer),
            AssertionSpec::EmbeddingFromCache(wanted) => {
                match answer["embedding_from_cache"].as_bool() {
                    Some(got) if got == *wanted => None,
                    // The cache outlives a run: nodes that embedded this query in an earlier
                    // run against them still hold it for the cache's TTL.
                    Some(true) => Some(
                        "embedding_from_cache = true: the node had this query cached already (an earlier run against the same nodes within CHRONIK_EMBEDDING_CACHE_TTL?); restart the nodes to time cache misses"
                            .into(),
                    ),
                    got => Some(format!("embedding_from_cache = {got:?}")),
                }
            }
            _ => None,
        }
    }

    pub fn as_check(self: &Arc<Self>) -> AnswerCheck {
        let me = self.clone();
        Arc::new(move |_request: &Request, answer: &Value| {
            me.checked.fetch_add(1, Ordering::Relaxed);
            let mut first = None;
            for (i, spec) in me.specs.iter().enumerate() {
                if let Some(problem) = me.problem(spec, answer) {
                    me.failures[i].fetch_add(1, Ordering::Relaxed);
                    let mut firsts = me.first_failure.lock();
                    if firsts[i].is_none() {
                        firsts[i] = Some(problem.clone());
                    }
                    first.get_or_insert(format!("{}: {problem}", describe(spec)));
                }
            }
            first
        })
    }

    pub fn results(&self) -> Vec<AssertionResult> {
        let checked = self.checked.load(Ordering::Relaxed);
        let firsts = self.first_failure.lock();
        self.specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                let failed = self.failures[i].load(Ordering::Relaxed);
                AssertionResult {
                    name: describe(spec),
                    passed: failed == 0 && checked > 0,
                    detail: if checked == 0 {
                        "no answer to check".into()
                    } else if failed == 0 {
                        format!("held on all {checked} answers")
                    } else {
                        format!(
                            "failed on {failed} of {checked} answers; first: {}",
                            firsts[i].clone().unwrap_or_default()
                        )
                    },
                }
            })
            .collect()
    }
}

/// recall@k of `found` against `exact`: the share of the exact top-k that `found` matches.
/// Log lines repeat, so many records share the k-th best score; a found record scoring at
/// least the exact k-th score is as good as the one exact search happened to list, so it
/// counts (matching by id alone would punish a correct answer for a tie).
pub fn recall(found: &Value, exact: &Value) -> Option<f64> {
    let scores = |v: &Value| -> Vec<f64> {
        v["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["score"].as_f64())
            .collect()
    };
    let truth = scores(exact);
    let kth = truth.iter().copied().fold(f64::INFINITY, f64::min);
    if truth.is_empty() {
        return None;
    }
    let good = scores(found)
        .into_iter()
        .take(truth.len())
        .filter(|s| *s >= kth - 1e-5)
        .count();
    Some(good as f64 / truth.len() as f64)
}

pub fn recall_result(threshold: f64, recalls: &[f64], problems: &[String]) -> AssertionResult {
    let name = describe(&AssertionSpec::RecallAtLeast(threshold));
    if recalls.is_empty() {
        return AssertionResult {
            name,
            passed: false,
            detail: format!("nothing to compare: {}", problems.join("; ")),
        };
    }
    let mean = recalls.iter().sum::<f64>() / recalls.len() as f64;
    let min = recalls.iter().copied().fold(f64::INFINITY, f64::min);
    AssertionResult {
        name,
        passed: mean >= threshold && problems.is_empty(),
        detail: format!(
            "mean {mean:.3} over {} queries (lowest {min:.2}){}",
            recalls.len(),
            if problems.is_empty() {
                String::new()
            } else {
                format!("; {}", problems.join("; "))
            }
        ),
    }
}

/// The metric a counter assertion watches and how much it must grow per request sent.
pub fn counted_metric(spec: &AssertionSpec) -> Option<(&str, u64)> {
    match spec {
        AssertionSpec::MetricDeltaEqualsRequests(metric) => Some((metric, 1)),
        AssertionSpec::MetricDeltaPerRequest {
            metric,
            per_request,
        } => Some((metric, *per_request)),
        _ => None,
    }
}

pub fn metric_delta_result(
    spec: &AssertionSpec,
    before: f64,
    after: f64,
    sent: u64,
) -> AssertionResult {
    let (metric, per_request) = counted_metric(spec).unwrap_or(("?", 1));
    let delta = after - before;
    let expected = sent * per_request;
    AssertionResult {
        name: describe(spec),
        passed: (delta - expected as f64).abs() < 0.5,
        detail: format!("{metric} grew by {delta} for {sent} requests (expected {expected})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_wrong_count_fails_however_fast_it_came() {
        let checks = AnswerChecks::new(
            &[
                AssertionSpec::CountEqualsLoaded(true),
                AssertionSpec::HitsAbove(0),
            ],
            1000,
        );
        let check = checks.as_check();
        let request = Request {
            url: "http://x/_sql".into(),
            body: json!({}),
        };
        let right = json!({ "rows": [{ "count": 1000 }], "row_count": 1 });
        let wrong = json!({ "rows": [{ "count": 999 }], "row_count": 1 });
        assert_eq!(check(&request, &right), None);
        let problem = check(&request, &wrong).unwrap();
        assert!(problem.contains("999"), "{problem}");
        let results = checks.results();
        assert!(!results[0].passed, "{results:?}");
        assert!(results[0].detail.contains("1 of 2"), "{results:?}");
        assert!(results[1].passed, "{results:?}");
    }

    #[test]
    fn a_miss_served_from_the_cache_says_why_it_may_have_been() {
        let checks = AnswerChecks::new(&[AssertionSpec::EmbeddingFromCache(false)], 0);
        let check = checks.as_check();
        let request = Request {
            url: "http://x/_vector/t/search".into(),
            body: json!({}),
        };
        assert_eq!(
            check(&request, &json!({ "embedding_from_cache": false })),
            None
        );
        let problem = check(&request, &json!({ "embedding_from_cache": true })).unwrap();
        assert!(problem.contains("restart the nodes"), "{problem}");
        let absent = check(&request, &json!({})).unwrap();
        assert!(absent.contains("None"), "{absent}");
    }

    #[test]
    fn incomplete_answers_are_named() {
        assert!(incompleteness(&json!({ "_shards": { "failed": 1 } })).is_some());
        assert!(incompleteness(&json!({ "loading": true, "loading_partitions": [2] })).is_some());
        assert!(incompleteness(&json!({ "stats": { "complete": false } })).is_some());
        assert!(incompleteness(&json!({ "_shards": { "failed": 0 }, "loading": false })).is_none());
    }

    #[test]
    fn recall_counts_ties_with_the_kth_exact_score() {
        let exact = json!({ "results": [
            { "score": 0.9 }, { "score": 0.8 }, { "score": 0.7 }, { "score": 0.7 } ] });
        // A different record with the k-th score is as good; one below it is a miss.
        let found = json!({ "results": [
            { "score": 0.9 }, { "score": 0.7 }, { "score": 0.7 }, { "score": 0.5 } ] });
        assert_eq!(recall(&found, &exact), Some(0.75));
        assert_eq!(recall(&found, &json!({ "results": [] })), None);
        assert!(!recall_result(0.9, &[0.75, 1.0], &[]).passed);
        assert!(recall_result(0.8, &[0.75, 1.0], &[]).passed);
        let once = AssertionSpec::MetricDeltaEqualsRequests("hits".into());
        assert!(!metric_delta_result(&once, 10.0, 29.0, 20).passed);
        assert!(metric_delta_result(&once, 10.0, 30.0, 20).passed);
        let thrice = AssertionSpec::MetricDeltaPerRequest {
            metric: "hits".into(),
            per_request: 3,
        };
        assert!(!metric_delta_result(&thrice, 10.0, 30.0, 20).passed);
        assert!(metric_delta_result(&thrice, 10.0, 70.0, 20).passed);
        assert!(
            metric_delta_result(&once, 10.0, f64::NAN, 20)
                .detail
                .contains("expected 20")
        );
    }
}
