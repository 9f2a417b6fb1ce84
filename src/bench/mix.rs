//! Mixed workloads: a task whose requests are several kinds at fixed shares (k6's "60% text /
//! 40% SQL"). The parts are interleaved evenly in proportion to their weights, each rotating
//! through its own bodies, and each part gets a task record of its own beside the whole.

use std::sync::Arc;

use serde_json::{Value, json};

use super::assertions::AnswerChecks;
use super::load::{AnswerCheck, PartOutcome, Request};
use super::plan::{AssertionSpec, TaskSpec};
use super::record::{AssertionResult, TaskRecord};

/// The `kind` of a mixed task's whole record.
pub const MIX_KIND: &str = "mix";

/// Cycles longer than this stop rotating every part through all its bodies in lockstep:
/// a cycle is held in memory with one answer per request.
const MAX_CYCLE: usize = 10_000;

/// One part of a task: a plain task is a single part of weight 1.
#[derive(Debug, Clone)]
pub struct Part {
    pub kind: String,
    pub category: String,
    pub weight: u64,
    pub bodies: Vec<Value>,
    /// The part's own answer checks, beside the task's.
    pub assertions: Vec<AssertionSpec>,
}

/// The parts of `spec` (checked when the plan was parsed).
pub fn parts(spec: &TaskSpec) -> Vec<Part> {
    if spec.mix.is_empty() {
        return vec![Part {
            kind: spec.kind.clone().unwrap_or_default(),
            category: spec.category.clone(),
            weight: 1,
            bodies: spec.bodies(),
            assertions: Vec::new(),
        }];
    }
    spec.mix
        .iter()
        .map(|p| Part {
            kind: p.kind.clone(),
            category: p.category.clone(),
            weight: p.weight,
            bodies: p.bodies.clone(),
            assertions: p.assertions.clone(),
        })
        .collect()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// One round of part indices: the weights reduced by their gcd, then spread by smooth
/// weighted round-robin (each step every part gains its weight, the richest part goes and
/// pays the total), so 3:2 runs 0 1 0 1 0 rather than 0 0 0 1 1. A block order would load
/// the node with one kind at a time, which is not what a mix of users does.
pub fn interleave(weights: &[u64]) -> Vec<usize> {
    let divisor = weights.iter().copied().fold(0, gcd).max(1);
    let weights: Vec<i128> = weights.iter().map(|w| i128::from(w / divisor)).collect();
    let total: i128 = weights.iter().sum();
    let mut current = vec![0i128; weights.len()];
    let mut round = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, w) in current.iter_mut().zip(&weights) {
            *c += w;
        }
        // The first of equals goes first, so the order is deterministic.
        let pick = (0..current.len())
            .max_by(|&a, &b| current[a].cmp(&current[b]).then(b.cmp(&a)))
            .unwrap_or(0);
        current[pick] -= total;
        round.push(pick);
    }
    round
}

/// The request cycle as (part, body) pairs: as many rounds as it takes for every part to
/// come back to its first body at the same time, so each body keeps its part's share.
pub fn schedule(parts: &[Part]) -> Vec<(usize, usize)> {
    let weights: Vec<u64> = parts.iter().map(|p| p.weight).collect();
    let round = interleave(&weights);
    let mut per_round = vec![0u64; parts.len()];
    for &p in &round {
        per_round[p] += 1;
    }
    let lcm = |a: u64, b: u64| a / gcd(a, b) * b;
    let rounds = parts
        .iter()
        .zip(&per_round)
        .map(|(p, &n)| {
            let bodies = p.bodies.len().max(1) as u64;
            bodies / gcd(bodies, n.max(1))
        })
        .fold(1, lcm)
        .min((MAX_CYCLE / round.len().max(1)).max(1) as u64);
    let mut next_body = vec![0usize; parts.len()];
    let mut cycle = Vec::with_capacity(round.len() * rounds as usize);
    for _ in 0..rounds {
        for &p in &round {
            cycle.push((p, next_body[p] % parts[p].bodies.len().max(1)));
            next_body[p] += 1;
        }
    }
    cycle
}

/// What the whole record shows as its request: each part with its share and bodies.
pub fn describe(parts: &[Part]) -> Value {
    Value::Array(
        parts
            .iter()
            .map(|p| {
                json!({ "kind": p.kind, "weight": p.weight, "category": p.category,
                        "bodies": p.bodies })
            })
            .collect(),
    )
}

/// One check per part for `load::drive`: a plain task's answers go to the task's checks; a
/// mix's go to the whole's and to their part's, so a wrong answer counts in both records.
pub fn answer_checks(whole: &Arc<AnswerChecks>, parts: &[Arc<AnswerChecks>]) -> Vec<AnswerCheck> {
    if parts.is_empty() {
        return vec![whole.as_check()];
    }
    parts
        .iter()
        .map(|part| {
            let (whole, part) = (whole.as_check(), part.as_check());
            Arc::new(move |request: &Request, answer: &Value| {
                let problem = part(request, answer);
                whole(request, answer).or(problem)
            }) as AnswerCheck
        })
        .collect()
}

/// Over the measured requests: warm-up successes are not counted, so neither are its
/// errors (they still fail the task).
pub fn error_rate(errors: u64, warmup_errors: u64, samples: u64) -> f64 {
    let measured = errors - warmup_errors;
    measured as f64 / (samples + measured).max(1) as f64
}

/// The name of a part's record: `<task name> — <part category>`.
pub fn part_name(whole: &str, category: &str) -> String {
    format!("{whole} — {category}")
}

/// Whether `task` is the record of a part of the mixed task `whole`.
pub fn is_part_of(task: &TaskRecord, whole: &TaskRecord) -> bool {
    whole.kind == MIX_KIND && task.name == part_name(&whole.name, &task.category)
}

/// The record of one part of a mixed task, beside the `whole` one: its own latencies,
/// errors and answer checks; throughput over the whole task's duration.
pub fn part_record(
    whole: &TaskRecord,
    part: &Part,
    share: f64,
    outcome: &PartOutcome,
    mut assertions: Vec<AssertionResult>,
    sample: Option<&Value>,
) -> TaskRecord {
    assertions.extend(super::assertions::request_errors(
        outcome.errors,
        &outcome.failures,
    ));
    let samples = outcome.latency.count();
    TaskRecord {
        name: part_name(&whole.name, &part.category),
        category: part.category.clone(),
        kind: part.kind.clone(),
        request: match &part.bodies[..] {
            [one] => one.clone(),
            many => Value::Array(many.to_vec()),
        },
        clients: whole.clients,
        // The part's share of the offered rate.
        target_rate: whole.target_rate.map(|r| r * share),
        warmup: whole.warmup,
        samples,
        errors: outcome.errors,
        error_rate: error_rate(outcome.errors, outcome.warmup_errors, samples),
        throughput: samples as f64 / whole.duration_secs.max(1e-9),
        duration_secs: whole.duration_secs,
        latency_ms: outcome.latency.summary(),
        queries: Vec::new(),
        service_ms: outcome.service.summary(),
        throughput_timeline: outcome.timeline.clone(),
        passed: assertions.iter().all(|a| a.passed),
        assertions,
        sample_answer: sample.map(|a| a.to_string().chars().take(2000).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::plan::{Plan, Scale};
    use crate::bench::task::{TaskContext, run_task};
    use axum::http::StatusCode;

    fn part(kind: &str, weight: u64, bodies: usize) -> Part {
        Part {
            kind: kind.into(),
            category: kind.into(),
            weight,
            bodies: (0..bodies).map(|b| json!({ "b": b })).collect(),
            assertions: Vec::new(),
        }
    }

    /// Requests per part among the first `n` of the cycle sent round after round.
    fn counts(parts: &[Part], n: usize) -> Vec<usize> {
        let mut per_part = vec![0; parts.len()];
        for &(p, _) in schedule(parts).iter().cycle().take(n) {
            per_part[p] += 1;
        }
        per_part
    }

    /// The longest run of one part in a row, the cycle read round and round.
    fn longest_run(cycle: &[(usize, usize)]) -> usize {
        let doubled: Vec<usize> = cycle.iter().chain(cycle).map(|(p, _)| *p).collect();
        let mut longest = 1;
        let mut run = 1;
        for pair in doubled.windows(2) {
            run = if pair[0] == pair[1] { run + 1 } else { 1 };
            longest = longest.max(run);
        }
        longest
    }

    #[test]
    fn the_published_mixes_come_out_exact_and_spread() {
        assert_eq!(interleave(&[60, 40]), [0, 1, 0, 1, 0]);
        let sv2a = [part("search", 60, 11), part("sql", 40, 5)];
        assert_eq!(counts(&sv2a, 100), [60, 40]);
        let sv2b = [
            part("vector", 35, 5),
            part("search", 25, 5),
            part("hybrid", 25, 5),
            part("query", 15, 2),
        ];
        assert_eq!(counts(&sv2b, 100), [35, 25, 25, 15]);
        assert_eq!(counts(&sv2b, 1000), [350, 250, 250, 150]);
        for parts in [&sv2a[..], &sv2b[..]] {
            let cycle = schedule(parts);
            // Blocks would run 7 vector requests in a row; a spread mix runs at most 2.
            assert!(longest_run(&cycle) <= 2, "{cycle:?}");
            // Every part rotates through all its bodies, each as often as the others.
            for (p, part) in parts.iter().enumerate() {
                let mut per_body = vec![0; part.bodies.len()];
                for &(q, b) in &cycle {
                    if q == p {
                        per_body[b] += 1;
                    }
                }
                assert!(
                    per_body.iter().all(|n| *n == per_body[0] && *n > 0),
                    "{per_body:?}"
                );
            }
        }
        // A plain task is one part: its bodies in order.
        assert_eq!(schedule(&[part("sql", 1, 3)]), [(0, 0), (0, 1), (0, 2)]);
    }

    /// `/t/_search` answers 5 hits (none for `q = "nothing"`); `/_sql` one row, or a 500 for
    /// a query containing `bad`.
    async fn server() -> String {
        let app = axum::Router::new()
            .route(
                "/t/_search",
                axum::routing::post(|axum::Json(body): axum::Json<Value>| async move {
                    let hits = if body["q"] == "nothing" { 0 } else { 5 };
                    axum::Json(json!({ "hits": { "total": { "value": hits } } }))
                }),
            )
            .route(
                "/_sql",
                axum::routing::post(|axum::Json(body): axum::Json<Value>| async move {
                    if body["query"].as_str().is_some_and(|q| q.contains("bad")) {
                        return (StatusCode::INTERNAL_SERVER_ERROR, axum::Json(json!({})));
                    }
                    let answer = json!({ "rows": [{ "c": 1 }], "row_count": 1 });
                    (StatusCode::OK, axum::Json(answer))
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    /// A 60/40 text/SQL mix of 20 rounds (100 requests) after one warm-up round, every answer
    /// checked for hits.
    async fn run_mix(text_bodies: &str, sql_bodies: &str) -> Vec<TaskRecord> {
        run_mix_checking("[{ hits_above = 0 }]", "[]", text_bodies, sql_bodies).await
    }

    /// The same mix with the task's checks and the text part's own.
    async fn run_mix_checking(
        task_assert: &str,
        text_assert: &str,
        text_bodies: &str,
        sql_bodies: &str,
    ) -> Vec<TaskRecord> {
        let spec: TaskSpec = toml::from_str(&format!(
            "name = 'mixed'\ncategory = 'mix'\nclients = 2\nwarmup = 1\niterations = 20\n\
             assert = {task_assert}\nmix = [\n\
             {{ kind = 'search', weight = 60, category = 'mix: text', bodies = {text_bodies}, \
                assert = {text_assert} }},\n\
             {{ kind = 'sql', weight = 40, category = 'mix: SQL', bodies = {sql_bodies} }},\n]"
        ))
        .unwrap();
        let scale: Scale = toml::from_str("lines = 1\nwarmup = 0\niterations = 1").unwrap();
        let client = reqwest::Client::new();
        let ctx = TaskContext {
            client: &client,
            topic: "t",
            scale: &scale,
            loaded: 0,
            placeholders: &[],
        };
        let (records, answers) = run_task(&ctx, &spec, "mixed".into(), &[server().await]).await;
        assert_eq!(answers.len(), 5, "one answer per request of the cycle");
        assert_eq!(records.len(), 3, "the whole and one record per part");
        records
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn each_part_gets_a_record_with_its_own_samples() {
        let records = run_mix(
            "[{ q = 'a' }, { q = 'b' }, { q = 'c' }]",
            "[{ query = 'SELECT 1' }, { query = 'SELECT 2' }]",
        )
        .await;
        let [whole, text, sql] = &records[..] else {
            unreachable!()
        };
        assert_eq!(
            (whole.kind.as_str(), whole.category.as_str()),
            ("mix", "mix")
        );
        assert_eq!(whole.samples, 100);
        assert_eq!(whole.request[1]["weight"], 40);
        for (record, name, kind, n) in [
            (text, "mixed — mix: text", "search", 60),
            (sql, "mixed — mix: SQL", "sql", 40),
        ] {
            assert_eq!((record.name.as_str(), record.kind.as_str()), (name, kind));
            assert_eq!(record.category.as_str(), &name["mixed — ".len()..]);
            assert_eq!((record.samples, record.latency_ms.count), (n, n));
            assert_eq!(record.duration_secs, whole.duration_secs);
            let throughput = n as f64 / whole.duration_secs;
            assert!((record.throughput - throughput).abs() < 1e-6, "{record:?}");
            assert!(
                record.passed && record.errors == 0,
                "{:?}",
                record.assertions
            );
            assert!(record.assertions[0].detail.contains(&format!("all {n}")));
        }
        assert!(whole.passed, "{:?}", whole.assertions);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_error_in_one_part_counts_there_and_fails_the_task() {
        let records = run_mix(
            "[{ q = 'a' }, { q = 'b' }, { q = 'c' }]",
            "[{ query = 'SELECT 1' }, { query = 'bad' }]",
        )
        .await;
        let [whole, text, sql] = &records[..] else {
            unreachable!()
        };
        assert!(text.passed && text.errors == 0, "{text:?}");
        assert_eq!(text.samples, 60);
        // Half the SQL requests fail: 20 measured and 1 in the warm-up round.
        assert_eq!((sql.samples, sql.errors), (20, 21));
        assert_eq!(sql.error_rate, 0.5);
        assert!(!sql.passed);
        let failed = sql.assertions.iter().find(|a| !a.passed).unwrap();
        assert!(failed.detail.contains("500"), "{failed:?}");
        assert_eq!((whole.samples, whole.errors), (80, 21));
        assert!(!whole.passed);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wrong_answer_fails_its_part_and_the_whole() {
        let records = run_mix(
            "[{ q = 'a' }, { q = 'b' }, { q = 'nothing' }]",
            "[{ query = 'SELECT 1' }, { query = 'SELECT 2' }]",
        )
        .await;
        let [whole, text, sql] = &records[..] else {
            unreachable!()
        };
        assert!(sql.passed, "{:?}", sql.assertions);
        let hits = |r: &TaskRecord| r.assertions[0].clone();
        assert!(
            !text.passed && hits(text).detail.contains("20 of 60"),
            "{text:?}"
        );
        assert!(
            !whole.passed && hits(whole).detail.contains("20 of 100"),
            "{whole:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_part_checks_its_own_answers_beside_the_tasks_checks() {
        // Only the text part asks for hits: its empty answers fail it, while the SQL part and
        // the whole, which ask for none, pass.
        let records = run_mix_checking(
            "[]",
            "[{ hits_above = 0 }]",
            "[{ q = 'a' }, { q = 'b' }, { q = 'nothing' }]",
            "[{ query = 'SELECT 1' }, { query = 'SELECT 2' }]",
        )
        .await;
        let [whole, text, sql] = &records[..] else {
            unreachable!()
        };
        assert!(
            !text.passed && text.assertions[0].detail.contains("20 of 60"),
            "{text:?}"
        );
        assert!(sql.passed, "{:?}", sql.assertions);
        assert!(whole.passed, "{:?}", whole.assertions);
        assert!(
            !whole.assertions.iter().any(|a| a.name.starts_with("hits")),
            "{:?}",
            whole.assertions
        );
    }

    fn plan(task: &str) -> crate::error::Result<Plan> {
        Plan::parse(&format!(
            "id = 'T'\ntitle = 't'\ndescription = 't'\n\
             [dataset]\nformat = 'thunderbird'\ntopic = 't'\n\
             [environment]\nnodes = 1\n\
             [scale.tiny]\nlines = 1\nwarmup = 0\niterations = 1\n\
             [[task]]\nname = 'mixed'\ncategory = 'mix'\n{task}\n\
             [[criterion]]\nname = 'zero'\ncategories = ['mix: SQL']\nstat = 'errors'\n\
             max = 0\nunit = 'count'\n"
        ))
    }

    fn refused(task: &str) -> String {
        plan(task).unwrap_err().to_string()
    }

    #[test]
    fn plans_check_their_mixes() {
        let text =
            "{ kind = 'search', weight = 3, category = 'mix: text', bodies = [{ q = 'a' }] }";
        let sql = "{ kind = 'sql', weight = 2, category = 'mix: SQL', bodies = [{ query = 'x' }] }";
        // A criterion may name a part's category.
        plan(&format!("mix = [{text}, {sql}]")).unwrap();
        let err = refused(&format!("kind = 'sql'\nmix = [{text}, {sql}]"));
        assert!(
            err.contains("\"mixed\"") && err.contains("kind or mix, not both"),
            "{err}"
        );
        let err = refused(&format!("mix = [{text}, {}]", sql.replace("2", "0")));
        assert!(
            err.contains("\"mix: SQL\"") && err.contains("positive integer"),
            "{err}"
        );
        let err = refused(&format!(
            "mix = [{text}, {}]",
            sql.replace("'sql'", "'fts'")
        ));
        assert!(
            err.contains("\"mixed\"") && err.contains("unknown kind \"fts\""),
            "{err}"
        );
        let err = refused(&format!("mix = [{text}, {}]", sql.replace("2", "-2")));
        assert!(err.contains("weight"), "{err}");
        let err = refused(&format!("mix = [{text}, {}]", sql.replace("SQL", "text")));
        assert!(err.contains("category of its own"), "{err}");
        let err = refused(&format!("mix = [{text}, {sql}]\nbodies = [{{ q = 'a' }}]"));
        assert!(err.contains("bodies in its parts"), "{err}");
        let err = refused(&format!(
            "mix = [{text}, {sql}]\nassert = [{{ recall_at_least = 0.9 }}]"
        ));
        assert!(err.contains("cannot apply to a mix"), "{err}");
        let checked_part = "{ kind = 'search', weight = 3, category = 'mix: text', \
             bodies = [{ q = 'a' }], assert = [{ recall_at_least = 0.9 }] }";
        let err = refused(&format!("mix = [{checked_part}, {sql}]"));
        assert!(
            err.contains("\"mix: text\"") && err.contains("not per part"),
            "{err}"
        );
        let err = refused("body = { q = 'a' }");
        assert!(err.contains("give kind"), "{err}");
    }
}
