//! Benchmark plans as data: one TOML file per phase in `configs/plans/`, embedded in the
//! binary. A plan names its dataset and scales, its tasks (requests, load shape, assertions)
//! and its success criteria in the plan's own wording; the runner interprets it.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::dataset::LogFormat;
use crate::dataset::generate::ServiceTopic;
use crate::error::{Error, Result};

/// The shipped plans, in the order `demo` runs them.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("SV-1", include_str!("../../configs/plans/sv1.toml")),
    ("SV-2a", include_str!("../../configs/plans/sv2a.toml")),
    ("SV-2b", include_str!("../../configs/plans/sv2b.toml")),
    ("SV-2c", include_str!("../../configs/plans/sv2c.toml")),
    ("SV-3", include_str!("../../configs/plans/sv3.toml")),
    ("SV-4", include_str!("../../configs/plans/sv4.toml")),
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub id: String,
    pub title: String,
    pub description: String,
    pub dataset: DatasetSpec,
    /// `tiny` (tests), `demo` (the offline demo) and `full` (the plan's own size).
    pub scale: BTreeMap<String, Scale>,
    /// How the runner sets up nodes when no `--target` is given.
    pub environment: EnvironmentSpec,
    /// A fault scenario run after the tasks (`failover` for SV-3).
    #[serde(default)]
    pub scenario: Option<ScenarioSpec>,
    /// Some tasks run again on a second environment in the same phase, as the reference a
    /// criterion compares with (a standalone node beside the cluster).
    #[serde(default)]
    pub baseline: Option<BaselineSpec>,
    #[serde(default, rename = "task")]
    pub tasks: Vec<TaskSpec>,
    #[serde(default, rename = "criterion")]
    pub criteria: Vec<CriterionSpec>,
    /// Filled with the file text when loaded.
    #[serde(skip)]
    pub source: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetSpec {
    /// A Loghub format (`thunderbird`, `bgl`, `hdfs`), or `services`: the three JSON-lines
    /// topics of chronik's 37-query scale test (`app-logs`, `support-tickets`,
    /// `system-events`), each with the scale's `lines` records (SV-1).
    pub format: String,
    /// The topic the direct `search`, `vector` and `hybrid` tasks query; with `services`, one
    /// of its three topics (`/_query` and SQL tasks name the others themselves).
    pub topic: String,
    /// Whether records are embedded (SV-1, SV-2b/c).
    #[serde(default)]
    pub vectors: bool,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// A second topic loaded for the orchestrator's multi-topic queries (SV-2c).
    #[serde(default)]
    pub extra_topic: Option<ExtraTopic>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraTopic {
    pub topic: String,
    pub format: String,
    /// Lines of the extra topic as a fraction of the main dataset's.
    pub fraction: f64,
    /// Embed the extra topic's records (a small vector topic beside a big text-only one:
    /// SV-3's vector search via each node). Needs an environment with an embedding provider.
    #[serde(default)]
    pub vectors: bool,
}

fn default_seed() -> u64 {
    7
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scale {
    pub lines: u64,
    /// `generate` (seeded generator) or `fetch` (the fetched Loghub file is required).
    #[serde(default = "default_source")]
    pub source: String,
    pub warmup: usize,
    pub iterations: usize,
    /// Caps tasks that run for a duration (tests run the plans in seconds).
    #[serde(default)]
    pub max_task_secs: Option<f64>,
    /// Kill rounds of the failover scenario.
    #[serde(default = "one")]
    pub kills: usize,
}

fn default_source() -> String {
    "generate".into()
}

fn one() -> usize {
    1
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    /// 1 = a node inside the runner's process; more = a local cluster of node processes.
    pub nodes: usize,
    #[serde(default = "default_partitions")]
    pub partitions: u32,
    /// `local` (the built-in model), `openai-emulated` (the local model behind an
    /// OpenAI-compatible server with `provider_latency_ms`) or `none`.
    #[serde(default = "default_embedding")]
    pub embedding: String,
    #[serde(default)]
    pub provider_latency_ms: u64,
    #[serde(default)]
    pub dimensions: Option<usize>,
    /// Replicas per partition on a cluster (default: every node). Below the node count,
    /// queries fan out to the nodes holding the other partitions.
    #[serde(default)]
    pub replication_factor: Option<usize>,
    /// One node as its own process, like a cluster's nodes, instead of inside the runner's
    /// process: a baseline compared with a local cluster's nodes must not differ from them
    /// in sharing the runner's process and runtime with the load generator.
    #[serde(default)]
    pub process: bool,
}

fn default_partitions() -> u32 {
    6
}

fn default_embedding() -> String {
    "none".into()
}

/// A second environment of a phase. Its tasks are copies of the named plan tasks, recorded
/// under `<category> (baseline)` so a criterion can name them in `baseline`; nothing else in
/// the phase runs there. With `--target` nodes the runner cannot start it, and criteria that
/// need it say "not judged".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineSpec {
    /// What it is, for the report ("standalone node").
    pub label: String,
    pub environment: EnvironmentSpec,
    /// Names of the plan's tasks to run there.
    pub tasks: Vec<String>,
    /// Load only the dataset's extra topic there: the reference for "no degradation" of the
    /// queries of data that was there before the big dataset came (SV-2c).
    #[serde(default)]
    pub only_extra_topic: bool,
}

/// The category a baseline copy of a task is recorded under.
pub fn baseline_category(category: &str) -> String {
    format!("{category} (baseline)")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// `failover`: SIGKILL the leader of the dataset's partition 0 under a write load, time the
    /// election and the error spike, query the survivors, restart, time the catch-up.
    pub kind: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    pub name: String,
    pub category: String,
    /// `search`, `sql`, `vector`, `hybrid` or `query`; absent when the task is a `mix`.
    #[serde(default)]
    pub kind: Option<String>,
    /// One request body, or several sent in turn (`bodies`).
    #[serde(default)]
    pub body: Option<Value>,
    #[serde(default)]
    pub bodies: Vec<Value>,
    /// A mixed workload instead of `kind` and its bodies (k6's "60% text / 40% SQL"): the
    /// parts' requests are interleaved in proportion to their weights (`bench::mix`).
    #[serde(default)]
    pub mix: Vec<MixPart>,
    /// Overrides of the scale's warm-up and iterations (`iterations` counts requests).
    #[serde(default)]
    pub warmup: Option<usize>,
    #[serde(default)]
    pub iterations: Option<usize>,
    /// Run for this long instead of a number of iterations.
    #[serde(default)]
    pub duration_secs: Option<f64>,
    #[serde(default = "one")]
    pub clients: usize,
    /// Requests per second across all clients; latency then counts from the scheduled send.
    #[serde(default)]
    pub target_rate: Option<f64>,
    /// `first` (default): send to the first target; `all`: the same task through every node,
    /// one task record per node; `spread`: requests rotate over every node (a load balancer).
    #[serde(default)]
    pub via: Option<String>,
    /// Records per second written into the topic while the task runs (SV-3's "ingest during
    /// queries"); the task then also asserts every acknowledged write is on every node.
    #[serde(default)]
    pub ingest_during: Option<f64>,
    /// The topic a `search`, `vector` or `hybrid` task queries, when not the dataset's (the
    /// 37-query test queries each of its three topics directly); `sql` and `query` bodies
    /// name their tables and sources themselves.
    #[serde(default)]
    pub topic: Option<String>,
    #[serde(default, rename = "assert")]
    pub assertions: Vec<AssertionSpec>,
}

/// One part of a mixed task: its own kind, share of the requests and bodies. It gets its own
/// task record under its own category, so criteria can judge a part alone.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixPart {
    /// `search`, `sql`, `vector`, `hybrid` or `query`.
    pub kind: String,
    /// Relative share of the requests: 60 and 40 is the same mix as 3 and 2.
    pub weight: u64,
    pub category: String,
    /// Sent in turn, each part rotating through its own.
    pub bodies: Vec<Value>,
    /// Checks on this part's answers only, beside the task's own on every answer: a mix of
    /// vector queries, which always find neighbours, and text ones, which may not.
    #[serde(default, rename = "assert")]
    pub assertions: Vec<AssertionSpec>,
}

/// What a task checks on its answers; a fast wrong answer fails the task.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AssertionSpec {
    /// Every answer has more than this many hits (or rows, for SQL).
    HitsAbove(u64),
    /// The first value of the first row equals the number of records loaded.
    CountEqualsLoaded(bool),
    /// The number of rows equals this.
    RowsEqual(u64),
    /// Every answer covered every partition (`_shards.failed == 0`, `loading == false`).
    Complete(bool),
    /// The query embedding came from the cache (true) or not (false) on every answer.
    EmbeddingFromCache(bool),
    /// recall@k of the answer against exact search (`"exact": true`) is at least this.
    RecallAtLeast(f64),
    /// A Prometheus counter on the target grew by exactly the number of requests the task
    /// sent (warm-up included).
    MetricDeltaEqualsRequests(String),
    /// As above, `per_request` times: a query that counts once per topic it reads (a
    /// multi-topic hybrid `/_query` takes one cache lookup per vector backend).
    MetricDeltaPerRequest { metric: String, per_request: u64 },
    /// Every node answers the same total as the first one (`via = "all"`).
    SameTotalOnEveryNode(bool),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CriterionSpec {
    /// The plan's wording.
    pub name: String,
    /// Judge over tasks of these categories (the worst one counts) …
    #[serde(default)]
    pub categories: Vec<String>,
    /// … on this statistic: `p50`, `p90`, `p95`, `p99`, `min`, `max`, `errors`, `failed_assertions`,
    /// `throughput_ratio` (with `baseline`);
    #[serde(default)]
    pub stat: Option<String>,
    /// Compared with these categories: `p50` becomes (value − baseline) / `divide_by` (an
    /// overhead), `throughput_ratio` becomes throughput / baseline throughput.
    #[serde(default)]
    pub baseline: Vec<String>,
    #[serde(default)]
    pub divide_by: Option<f64>,
    /// … or on a phase measurement by name (`election_secs`, `catch_up_secs`, …).
    #[serde(default)]
    pub measurement: Option<String>,
    /// Pass when the value is at most `max` / at least `min`.
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    pub min: Option<f64>,
    pub unit: String,
    /// Machines this criterion needs (a throughput that scales with hosts): on a local
    /// cluster sharing one machine it is reported as not judged.
    #[serde(default)]
    pub needs_hosts: Option<usize>,
    /// Set when the capability this criterion needs is not built: reported as not judged.
    #[serde(default)]
    pub not_built: Option<String>,
}

impl Plan {
    pub fn parse(source: &str) -> Result<Plan> {
        let mut plan: Plan =
            toml::from_str(source).map_err(|e| Error::Config(format!("plan: {e}")))?;
        plan.source = source.to_string();
        plan.validate()?;
        Ok(plan)
    }

    /// A built-in plan by id, case-insensitively and with or without the dash (`sv2a`).
    pub fn built_in(id: &str) -> Result<Plan> {
        let wanted = id.to_ascii_lowercase().replace('-', "");
        BUILT_IN
            .iter()
            .find(|(name, _)| name.to_ascii_lowercase().replace('-', "") == wanted)
            .map(|(_, source)| Plan::parse(source))
            .unwrap_or_else(|| {
                let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
                Err(Error::BadRequest(format!(
                    "no plan {id:?}; the plans are {}",
                    names.join(", ")
                )))
            })
    }

    pub fn scale(&self, name: &str) -> Result<&Scale> {
        self.scale.get(name).ok_or_else(|| {
            let names: Vec<&str> = self.scale.keys().map(String::as_str).collect();
            Error::BadRequest(format!(
                "{} has no scale {name:?}; it has {}",
                self.id,
                names.join(", ")
            ))
        })
    }

    fn validate(&self) -> Result<()> {
        let bad = |msg: String| Err(Error::Config(format!("plan {}: {msg}", self.id)));
        if self.dataset.is_services() {
            if self.dataset.topic.parse::<ServiceTopic>().is_err() {
                return bad(format!(
                    "dataset.topic {:?} is not one of the services topics (app-logs, support-tickets, system-events)",
                    self.dataset.topic
                ));
            }
            if self.dataset.extra_topic.is_some() {
                return bad(
                    "dataset.extra_topic: the services format loads its own three topics".into(),
                );
            }
        } else if self.dataset.format.parse::<LogFormat>().is_err() {
            return bad(format!(
                "unknown dataset format {:?}: expected thunderbird, bgl, hdfs or services",
                self.dataset.format
            ));
        }
        for (name, scale) in &self.scale {
            if scale.iterations == 0 {
                return bad(format!("scale {name}: iterations must be at least 1"));
            }
            if !["generate", "fetch"].contains(&scale.source.as_str()) {
                return bad(format!("scale {name}: source must be generate or fetch"));
            }
        }
        if !["none", "local", "openai-emulated"].contains(&self.environment.embedding.as_str()) {
            return bad(format!(
                "environment.embedding {:?} is not none, local or openai-emulated",
                self.environment.embedding
            ));
        }
        const KINDS: [&str; 5] = ["search", "sql", "vector", "hybrid", "query"];
        for task in &self.tasks {
            let direct = matches!(task.kind.as_deref(), Some("search" | "vector" | "hybrid"));
            if task.topic.is_some() && !direct {
                return bad(format!(
                    "task {:?}: topic applies to search, vector and hybrid tasks (sql and query bodies name their own)",
                    task.name
                ));
            }
            match (&task.kind, task.mix.is_empty()) {
                (Some(_), false) => {
                    return bad(format!("task {:?}: give kind or mix, not both", task.name));
                }
                (None, true) => {
                    return bad(format!(
                        "task {:?}: give kind (with body or bodies) or mix",
                        task.name
                    ));
                }
                (Some(kind), true) => {
                    if !KINDS.contains(&kind.as_str()) {
                        return bad(format!("task {:?}: unknown kind {kind:?}", task.name));
                    }
                    if task.body.is_some() != task.bodies.is_empty() {
                        return bad(format!("task {:?}: give body or bodies", task.name));
                    }
                }
                (None, false) => {
                    if task.body.is_some() || !task.bodies.is_empty() {
                        return bad(format!(
                            "task {:?}: a mix carries its bodies in its parts",
                            task.name
                        ));
                    }
                    for part in &task.mix {
                        let what = format!("task {:?}, mix part {:?}", task.name, part.category);
                        if !KINDS.contains(&part.kind.as_str()) {
                            return bad(format!("{what}: unknown kind {:?}", part.kind));
                        }
                        if part.weight == 0 {
                            return bad(format!("{what}: weight must be a positive integer"));
                        }
                        if part.bodies.is_empty() {
                            return bad(format!("{what}: give bodies"));
                        }
                        if let Some(a) = part
                            .assertions
                            .iter()
                            .find(|a| !super::assertions::AnswerChecks::per_answer(a))
                        {
                            return bad(format!(
                                "{what}: {a:?} is checked over the whole task, not per part: put it in the task's assert"
                            ));
                        }
                        // Criteria find a part's record by its category alone.
                        let same = task.mix.iter().filter(|p| p.category == part.category);
                        if part.category == task.category || same.count() > 1 {
                            return bad(format!("{what}: each part needs a category of its own"));
                        }
                    }
                    // Both compare answers across a task's requests, which a mix of kinds
                    // cannot: exact search has no SQL twin, node totals are one per record.
                    if let Some(a) = task.assertions.iter().find(|a| {
                        matches!(
                            a,
                            AssertionSpec::RecallAtLeast(_)
                                | AssertionSpec::SameTotalOnEveryNode(_)
                        )
                    }) {
                        return bad(format!("task {:?}: {a:?} cannot apply to a mix", task.name));
                    }
                }
            }
            let positive = |x: f64| x.is_finite() && x > 0.0;
            if task.clients == 0
                || task.target_rate.is_some_and(|r| !positive(r))
                || task.duration_secs.is_some_and(|d| !positive(d))
            {
                return bad(format!(
                    "task {:?}: clients, target_rate and duration_secs must be positive",
                    task.name
                ));
            }
            if task
                .ingest_during
                .is_some_and(|r| !(r.is_finite() && r >= 1.0))
            {
                return bad(format!(
                    "task {:?}: ingest_during is records per second, at least 1",
                    task.name
                ));
            }
            if let Some(via) = &task.via
                && !["first", "all", "spread"].contains(&via.as_str())
            {
                return bad(format!(
                    "task {:?}: via must be first, all or spread",
                    task.name
                ));
            }
        }
        if let Some(baseline) = &self.baseline {
            if let Some(missing) = baseline
                .tasks
                .iter()
                .find(|name| !self.tasks.iter().any(|t| &t.name == *name))
            {
                return bad(format!("baseline names a task {missing:?} the plan lacks"));
            }
            if baseline.only_extra_topic && self.dataset.extra_topic.is_none() {
                return bad("baseline.only_extra_topic needs dataset.extra_topic".into());
            }
            if baseline.environment.nodes == 0 {
                return bad("baseline.environment.nodes must be at least 1".into());
            }
        }
        for c in &self.criteria {
            let categories_known = c
                .categories
                .iter()
                .chain(&c.baseline)
                .all(|cat| self.has_category(cat));
            if !categories_known {
                return bad(format!(
                    "criterion {:?} names a category no task has",
                    c.name
                ));
            }
            if c.stat.is_some() == c.measurement.is_some() && c.not_built.is_none() {
                return bad(format!(
                    "criterion {:?}: give stat (with categories) or measurement",
                    c.name
                ));
            }
            if let Some(stat) = &c.stat
                && ![
                    "p50",
                    "p90",
                    "p95",
                    "p99",
                    "min",
                    "max",
                    "errors",
                    "failed_assertions",
                    "throughput_ratio",
                ]
                .contains(&stat.as_str())
            {
                return bad(format!("criterion {:?}: unknown stat {stat:?}", c.name));
            }
            if c.stat.is_some() && c.categories.is_empty() {
                return bad(format!("criterion {:?}: a stat needs categories", c.name));
            }
            if c.max.is_none() && c.min.is_none() {
                return bad(format!("criterion {:?}: give max or min", c.name));
            }
        }
        Ok(())
    }
}

impl Plan {
    /// Whether a task records under `category`: a plan task, or a baseline copy of one.
    fn has_category(&self, category: &str) -> bool {
        self.tasks.iter().any(|t| {
            // A mix records the whole under its category and each part under its own.
            let mut own = std::iter::once(&t.category).chain(t.mix.iter().map(|p| &p.category));
            own.any(|c| {
                c == category
                    || self.baseline.as_ref().is_some_and(|b| {
                        b.tasks.contains(&t.name) && baseline_category(c) == category
                    })
            })
        })
    }
}

impl DatasetSpec {
    /// The three-topic JSON-lines dataset of the 37-query scale test (`format = "services"`).
    pub fn is_services(&self) -> bool {
        self.format == "services"
    }

    /// The Loghub format of a single-topic dataset (meaningless for `services`).
    pub fn log_format(&self) -> LogFormat {
        // Checked when the plan was parsed.
        self.format.parse().unwrap_or(LogFormat::Thunderbird)
    }
}

impl TaskSpec {
    pub fn bodies(&self) -> Vec<Value> {
        match &self.body {
            Some(body) => vec![body.clone()],
            None => self.bodies.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_plan_parses_and_has_the_three_scales() {
        for (id, source) in BUILT_IN {
            let plan = Plan::parse(source).unwrap_or_else(|e| panic!("{id}: {e}"));
            assert_eq!(&plan.id, id);
            for scale in ["tiny", "demo", "full"] {
                plan.scale(scale).unwrap_or_else(|e| panic!("{e}"));
            }
            assert!(!plan.criteria.is_empty(), "{id} has no criteria");
            // A fast wrong answer must fail its task: every task checks its answers.
            for task in &plan.tasks {
                assert!(
                    !task.assertions.is_empty(),
                    "{id}: task {:?} checks nothing in its answers",
                    task.name
                );
            }
        }
    }

    /// Every p50 a built-in plan judges rests on enough samples at every scale, or the
    /// criterion could only fail for want of them.
    #[test]
    fn every_built_in_p50_criterion_gets_enough_samples() {
        use crate::bench::stats::MIN_SAMPLES_JUDGED_P50;
        for (id, source) in BUILT_IN {
            let plan = Plan::parse(source).unwrap();
            for (scale_name, scale) in &plan.scale {
                for c in &plan.criteria {
                    if c.stat.as_deref().unwrap_or("p50") != "p50" {
                        continue;
                    }
                    let judged: Vec<&str> = c
                        .categories
                        .iter()
                        .chain(&c.baseline)
                        .map(|cat| cat.trim_end_matches(" (baseline)"))
                        .collect();
                    for task in plan.tasks.iter().filter(|t| {
                        judged.contains(&t.category.as_str()) && t.duration_secs.is_none()
                    }) {
                        let samples = (task.iterations.unwrap_or(scale.iterations)
                            * task.bodies().len()) as u64;
                        assert!(
                            samples >= MIN_SAMPLES_JUDGED_P50,
                            "{id} at {scale_name} scale: {:?} judges a p50 on {samples} samples of {:?}",
                            c.name,
                            task.name
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn plans_are_found_by_loose_id_and_unknown_ones_are_named() {
        assert_eq!(Plan::built_in("sv2a").unwrap().id, "SV-2a");
        assert_eq!(Plan::built_in("SV-3").unwrap().id, "SV-3");
        let err = Plan::built_in("SV-9").unwrap_err().to_string();
        assert!(err.contains("SV-9") && err.contains("SV-2a"), "{err}");
    }

    #[test]
    fn a_criterion_on_a_category_no_task_has_is_refused() {
        let source = Plan::built_in("SV-2a").unwrap().source.replace(
            "categories = [\"SQL COUNT\"]",
            "categories = [\"SQL COUNTS\"]",
        );
        let err = Plan::parse(&source).unwrap_err().to_string();
        assert!(err.contains("category"), "{err}");
    }

    #[test]
    fn a_services_plan_names_one_of_its_topics_and_topic_is_for_direct_tasks_only() {
        let sv1 = Plan::built_in("SV-1").unwrap().source;
        let wrong_topic = sv1.replacen("topic = \"app-logs\"", "topic = \"app-log\"", 1);
        let err = Plan::parse(&wrong_topic).unwrap_err().to_string();
        assert!(
            err.contains("app-log") && err.contains("support-tickets"),
            "{err}"
        );
        let sql_with_topic = sv1.replacen(
            "kind = \"sql\"",
            "kind = \"sql\"\ntopic = \"system-events\"",
            1,
        );
        let err = Plan::parse(&sql_with_topic).unwrap_err().to_string();
        assert!(
            err.contains("topic applies to search, vector and hybrid"),
            "{err}"
        );
    }
}
