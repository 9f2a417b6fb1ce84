//! `bench run` and the demo's runs: phases in order, each in an environment that suits it
//! (shared with the previous phase when the nodes and data would be the same), data loaded,
//! tasks and the fault scenario run, criteria judged, the run record rewritten after every
//! task so the report page can follow along, telemetry sampled throughout.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;

mod environments;

use super::background_ingest::BackgroundIngest;
use super::environment::Environment;
use super::faults::DeployedHosts;
use super::panics::{PanicCount, panic_counts};
use super::plan::{Plan, TaskSpec};
use super::record::{PhaseRecord, RunRecord, SCHEMA};
use super::task::{TaskContext, run_task};
use super::telemetry::{Collector, SharedTelemetry};
use super::{assertions, criteria, fingerprint};
use crate::error::{Error, Result};

pub struct RunOptions {
    pub plans: Vec<Plan>,
    pub scale: String,
    /// External nodes; empty = the runner starts what each plan describes.
    pub targets: Vec<String>,
    pub runs_dir: PathBuf,
    pub datasets_dir: PathBuf,
    /// Scratch space for generated data and local nodes (deleted afterwards).
    pub work_dir: PathBuf,
    /// `SV-2a`, `demo`, … (part of the run id).
    pub label: String,
    /// Run on the data external targets already hold (`--reuse-data`).
    pub reuse_data: bool,
    /// The hosts `up` deployed, when given by `--nodes` (then `targets` are their APIs):
    /// fault scenarios drive them over ssh, and the run is published with their token.
    pub hosts: Option<DeployedHosts>,
    /// A run id chosen by the caller (the demo marks its record if interrupted).
    pub id: Option<String>,
    pub progress: bool,
}

/// [`run`], stopped by Ctrl-C: dropping the run stops every node it started (see
/// `Environment`'s drop), then the record is marked interrupted and the scratch space removed.
pub async fn run_until_interrupted(mut options: RunOptions) -> Result<RunRecord> {
    let id = options
        .id
        .get_or_insert_with(|| fingerprint::run_id(&options.label))
        .clone();
    let (runs_dir, work_dir) = (options.runs_dir.clone(), options.work_dir.clone());
    tokio::select! {
        record = run(options) => record,
        _ = tokio::signal::ctrl_c() => {
            if let Ok(mut record) = super::record::find_run(&runs_dir, &id) {
                record.status = "error".into();
                record.error = Some("interrupted by Ctrl-C".into());
                record.finished_at = Some(fingerprint::now_rfc3339());
                record.updated_at = record.finished_at.clone();
                let _ = record.save(&runs_dir);
            }
            let _ = std::fs::remove_dir_all(&work_dir);
            Err(Error::Unavailable(format!(
                "run {id} interrupted by Ctrl-C; the nodes it started are stopped"
            )))
        }
    }
}

pub async fn run(options: RunOptions) -> Result<RunRecord> {
    for plan in &options.plans {
        plan.scale(&options.scale)?;
    }
    std::fs::create_dir_all(&options.work_dir)?;
    let run_started = Instant::now();
    let record = RunRecord {
        schema: SCHEMA,
        id: options
            .id
            .clone()
            .unwrap_or_else(|| fingerprint::run_id(&options.label)),
        label: options.label.clone(),
        scale: options.scale.clone(),
        status: "running".into(),
        error: None,
        started_at: fingerprint::now_rfc3339(),
        finished_at: None,
        updated_at: Some(fingerprint::now_rfc3339()),
        version: crate::host::version(),
        hardware: crate::host::hardware(),
        environment: super::record::Environment {
            kind: String::new(),
            targets: options.targets.clone(),
            notes: Vec::new(),
        },
        phases: options
            .plans
            .iter()
            .map(|p| PhaseRecord {
                plan: p.id.clone(),
                title: p.title.clone(),
                plan_source: p.source.clone(),
                status: "pending".into(),
                error: None,
                dataset: None,
                tasks: Vec::new(),
                criteria: Vec::new(),
                events: Vec::new(),
                measurements: Vec::new(),
                started_secs: 0.0,
                finished_secs: None,
            })
            .collect(),
        telemetry: Vec::new(),
        nodes: Vec::new(),
    };
    if record.path_in(&options.runs_dir).exists() {
        return Err(Error::Conflict(format!(
            "a run {} already exists in {}",
            record.id,
            options.runs_dir.display()
        )));
    }
    let path = record.save(&options.runs_dir)?;
    println!("run {} → {}", record.id, path.display());
    let telemetry: SharedTelemetry = Arc::new(Mutex::new(Vec::new()));
    let mut runner = Runner {
        options: &options,
        record,
        telemetry,
        run_started,
        env: None,
        collector: None,
    };
    let outcome = runner.all_phases().await;
    runner.shutdown().await;
    let mut record = runner.record;
    record.telemetry = runner.telemetry.lock().clone();
    record.finished_at = Some(fingerprint::now_rfc3339());
    record.updated_at = record.finished_at.clone();
    record.status = match &outcome {
        Err(e) => {
            record.error = Some(e.to_string());
            "error".into()
        }
        Ok(()) if record.phases.iter().any(|p| p.status == "error") => {
            record.error = Some("a phase could not finish (see its error)".into());
            "error".into()
        }
        Ok(()) if record.phases.iter().all(|p| p.status == "passed") => "passed".into(),
        Ok(()) => "failed".into(),
    };
    record.save(&options.runs_dir)?;
    let _ = std::fs::remove_dir_all(&options.work_dir);
    if !options.targets.is_empty() {
        let token = options.hosts.as_ref().and_then(|h| h.token.clone());
        super::publish::publish_to_targets(&options.targets, token, &record).await;
    }
    Ok(record)
}

struct Runner<'a> {
    options: &'a RunOptions,
    record: RunRecord,
    telemetry: SharedTelemetry,
    run_started: Instant,
    env: Option<Environment>,
    collector: Option<Collector>,
}

impl<'a> Runner<'a> {
    fn save(&mut self) {
        self.record.telemetry = self.telemetry.lock().clone();
        self.record.updated_at = Some(fingerprint::now_rfc3339());
        if let Err(e) = self.record.save(&self.options.runs_dir) {
            eprintln!("warning: cannot update the run record: {e}");
        }
    }

    async fn all_phases(&mut self) -> Result<()> {
        for i in 0..self.options.plans.len() {
            let plan = &self.options.plans[i];
            println!(
                "\n== {} — {} ({} scale)",
                plan.id, plan.title, self.options.scale
            );
            self.record.phases[i].status = "running".into();
            self.record.phases[i].started_secs = self.run_started.elapsed().as_secs_f64();
            self.save();
            let result = self.phase(i).await;
            let phase = &mut self.record.phases[i];
            phase.finished_secs = Some(self.run_started.elapsed().as_secs_f64());
            match result {
                Ok(()) => {
                    // Neutral: a capability that is not built, and a comparison this setup
                    // cannot make (several machines on one host, a standalone node on hosts). A
                    // criterion that could not be judged for want of data fails the phase.
                    let neutral = |c: &super::record::CriterionResult| {
                        plan.criteria
                            .iter()
                            .any(|spec| spec.name == c.name && spec.not_built.is_some())
                            || criteria::not_comparable_here(c)
                    };
                    let ok = phase.tasks.iter().all(|t| t.passed)
                        && phase.criteria.iter().all(|c| c.passed || neutral(c));
                    phase.status = if ok { "passed" } else { "failed" }.into();
                }
                Err(e) => {
                    println!("  {} could not finish: {e}", plan.id);
                    phase.status = "error".into();
                    phase.error = Some(e.to_string());
                    // The environment may be half broken: start the next phase afresh.
                    self.shutdown().await;
                }
            }
            self.save();
        }
        Ok(())
    }

    async fn phase(&mut self, i: usize) -> Result<()> {
        let plan = &self.options.plans[i];
        // A baseline needs a node the runner starts: here, or over ssh on a host given with
        // --nodes. Against --target URLs it is skipped and the criteria comparing with it say so.
        let baseline = plan.baseline.as_ref().filter(|_| self.runs_baselines());
        // Run it first when the running nodes already are it (SV-4 after SV-3's standalone
        // node), so the same data is not loaded twice; otherwise after the phase's own tasks.
        let baseline_first = match baseline {
            Some(b) => self.reusable(i, &b.environment, Some(b))?,
            None => false,
        };
        let mut panics_seen = Vec::new();
        if let Some(b) = baseline.filter(|_| baseline_first) {
            panics_seen.push(self.baseline(i, b).await?);
        }
        let client = super::http_client();
        let before = self
            .ensure_counting_panics(i, &plan.environment, None)
            .await?;
        let scale = plan.scale(&self.options.scale)?;
        let targets = self.targets();
        if !self.options.targets.is_empty() && times_cache_misses(plan) {
            let token = self.options.hosts.as_ref().and_then(|h| h.token.clone());
            super::publish::clear_embedding_caches(&client, &targets, token).await;
        }
        let tasks: Vec<TaskSpec> = plan.tasks.clone();
        self.run_tasks(i, &tasks).await?;
        if let Some(scenario) = &plan.scenario {
            let kills = scale.kills;
            let run_started = self.run_started;
            let topic = plan.dataset.topic.clone();
            let Some(faults) = self.env.as_mut().and_then(|e| e.faults()) else {
                return Err(Error::BadRequest(format!(
                    "the {} scenario kills nodes: it needs local nodes, or the hosts `up` deployed given with --nodes (and ssh access to them), not --target URLs",
                    scenario.kind
                )));
            };
            println!("  failover: SIGKILL the leader of {topic}/0 under load ({kills} round(s))");
            let outcome = super::failover::run(faults, &topic, kills, run_started).await?;
            for e in &outcome.events {
                println!("  {:>7.1} s  {:<16} {}", e.t, e.kind, e.detail);
            }
            let phase = &mut self.record.phases[i];
            phase.events.extend(outcome.events);
            phase.measurements.extend(outcome.measurements);
        }
        panics_seen.push(PanicCount::between(
            "",
            before,
            panic_counts(&client, &targets).await,
        ));
        let one_host = self
            .env
            .as_ref()
            .is_some_and(|e| e.kind.starts_with("local cluster"));
        // On a cluster placing replicas unlike the plan, the comparisons are not judged: the
        // baseline (a second copy of the data on a host) would be loaded for nothing.
        let other_placement = self.other_placement(plan, &client).await;
        if let Some(b) = baseline.filter(|_| !baseline_first && other_placement.is_none()) {
            panics_seen.push(self.baseline(i, b).await?);
        }
        if let Some(m) = PanicCount::measurement(&panics_seen) {
            self.record.phases[i].measurements.push(m);
        }
        let skipped_baseline = plan
            .baseline
            .as_ref()
            .filter(|_| !self.runs_baselines())
            .map(|b| b.label.as_str());
        let setup = criteria::Setup {
            one_host,
            skipped_baseline,
            other_placement,
        };
        if let Some(why) = &setup.other_placement {
            let note = format!("{}: {why}", plan.id);
            if !self.record.environment.notes.contains(&note) {
                self.record.environment.notes.push(note);
            }
        }
        let phase = &mut self.record.phases[i];
        phase.criteria = plan
            .criteria
            .iter()
            .map(|c| criteria::judge(c, &phase.tasks, &phase.measurements, &setup))
            .collect();
        for c in &phase.criteria {
            let verdict = match (c.judged, c.passed) {
                (false, _) => "NOT JUDGED",
                (true, true) => "PASS",
                (true, false) => "FAIL",
            };
            let value = c.value.map_or("—".into(), |v| format!("{v:.2} {}", c.unit));
            println!("  [{verdict:^10}] {} — {value}; {}", c.name, c.detail);
        }
        Ok(())
    }

    /// Why the external cluster does not place `plan`'s topic as the plan asks (SV-4 measures
    /// fan-out at one replica per partition; at three, every node answers from its own
    /// copies), as its `/_cluster/status` shows the topic's raft groups; `None` when it does,
    /// when that cannot be told, or when the runner started the nodes itself.
    async fn other_placement(&self, plan: &Plan, client: &reqwest::Client) -> Option<String> {
        let want = plan.environment.replication_factor?;
        let target = self.options.targets.first()?;
        let status: serde_json::Value = client
            .get(format!("{target}/_cluster/status"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let topic = &plan.dataset.topic;
        let prefix = format!("{topic}/");
        let copies = status["groups"]
            .as_array()?
            .iter()
            .filter(|g| g["group"].as_str().is_some_and(|n| n.starts_with(&prefix)))
            .filter_map(|g| g["voters"].as_array().map(Vec::len))
            .max()?;
        (copies != want).then(|| {
            format!(
                "the plan measures {want} replica(s) per partition and this cluster keeps {copies} of each {topic} partition, so its comparisons with the baseline would not measure what they say; deploy with `sv-appliance up --replication-factor {want}` (it places topics created after it) to judge them"
            )
        })
    }

    /// Whether a plan's baseline can run: the runner starts its node here, or over ssh on
    /// the hosts given with --nodes; not against --target URLs alone.
    fn runs_baselines(&self) -> bool {
        self.options.targets.is_empty() || self.options.hosts.is_some()
    }

    fn targets(&self) -> Vec<String> {
        self.env
            .as_ref()
            .map(|e| e.targets.clone())
            .unwrap_or_default()
    }

    /// Runs `tasks` on the current environment and records them in phase `i`.
    async fn run_tasks(&mut self, i: usize, tasks: &[TaskSpec]) -> Result<()> {
        let plan = &self.options.plans[i];
        let scale = plan.scale(&self.options.scale)?;
        let targets = self.targets();
        let loaded = self.record.phases[i]
            .dataset
            .as_ref()
            .map_or(0, |d| d.records_loaded);
        let client = super::http_client();
        let placeholders = placeholders(&client, &targets[0], plan).await?;
        let ctx = TaskContext {
            client: &client,
            topic: &plan.dataset.topic,
            scale,
            loaded,
            placeholders: &placeholders,
        };
        for spec in tasks {
            let via = spec.via.as_deref().unwrap_or("first");
            let runs: Vec<(String, Vec<String>)> = match via {
                "all" => targets
                    .iter()
                    .enumerate()
                    .map(|(n, t)| (format!("{} @ node {}", spec.name, n + 1), vec![t.clone()]))
                    .collect(),
                "spread" => vec![(spec.name.clone(), targets.clone())],
                _ => vec![(spec.name.clone(), vec![targets[0].clone()])],
            };
            let mut per_node = Vec::new();
            for (name, task_targets) in runs {
                let ingest = match spec.ingest_during {
                    Some(rate) => Some(
                        BackgroundIngest::start(&client, &targets, &plan.dataset.topic, rate).await,
                    ),
                    None => None,
                };
                let (mut records, answers) = run_task(&ctx, spec, name, &task_targets).await;
                if let Some(ingest) = ingest {
                    let held = ingest.finish(&client).await;
                    let whole = &mut records[0];
                    whole.passed &= held.passed;
                    whole.assertions.push(held);
                }
                records.iter().for_each(print_task);
                per_node.push(answers.into_iter().flatten().next());
                self.record.phases[i].tasks.extend(records);
                self.save();
            }
            if spec
                .assertions
                .contains(&super::plan::AssertionSpec::SameTotalOnEveryNode(true))
            {
                self.same_total(i, spec, &per_node);
            }
        }
        Ok(())
    }

    /// `same_total_on_every_node`: the per-node copies of a task must agree.
    fn same_total(
        &mut self,
        i: usize,
        spec: &super::plan::TaskSpec,
        answers: &[Option<serde_json::Value>],
    ) {
        let totals: Vec<Option<u64>> = answers
            .iter()
            .map(|a| a.as_ref().and_then(assertions::hit_count))
            .collect();
        let agree = totals.iter().all(|t| t.is_some() && *t == totals[0]);
        let result = super::record::AssertionResult {
            name: "same total on every node".into(),
            passed: agree,
            detail: format!("totals per node: {totals:?}"),
        };
        let n = answers.len();
        let tasks = &mut self.record.phases[i].tasks;
        let start = tasks.len() - n;
        for task in &mut tasks[start..] {
            debug_assert!(task.name.starts_with(&spec.name));
            task.passed &= agree;
            task.assertions.push(result.clone());
        }
    }

    async fn shutdown(&mut self) {
        if let Some(c) = self.collector.take() {
            c.stop();
        }
        if let Some(env) = self.env.take() {
            env.stop().await;
        }
    }
}

/// Whether a task of `plan` requires its query embeddings to miss the cache: on nodes an
/// earlier run queried, the cache must be emptied first (nodes the runner starts are fresh).
fn times_cache_misses(plan: &Plan) -> bool {
    let miss = super::plan::AssertionSpec::EmbeddingFromCache(false);
    plan.tasks
        .iter()
        .any(|t| t.assertions.contains(&miss) || t.mix.iter().any(|p| p.assertions.contains(&miss)))
}

/// `{MID_TIMESTAMP}`: the mean timestamp of the topic, so a time-range query selects about
/// half the data whatever the dataset.
async fn placeholders(
    client: &reqwest::Client,
    target: &str,
    plan: &Plan,
) -> Result<Vec<(String, String)>> {
    if !plan.source.contains("{MID_TIMESTAMP}") {
        return Ok(Vec::new());
    }
    let table = crate::router::sql::sql_table_name(&plan.dataset.topic);
    let answer = super::post(
        client,
        &format!("{target}/_sql"),
        &serde_json::json!({ "query": format!("SELECT CAST(AVG(timestamp) AS BIGINT) FROM {table}") }),
    )
    .await?;
    let mid = assertions::scalar(&answer)
        .ok_or_else(|| Error::internal(format!("no mean timestamp in {answer}")))?;
    Ok(vec![("MID_TIMESTAMP".into(), mid.to_string())])
}

fn print_task(t: &super::record::TaskRecord) {
    let ms = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.2}"));
    let name: String = t.name.chars().take(48).collect();
    println!(
        "  {name:<48} n={:<5} p50 {:>8} p99 {:>8} ms  {:>8.1}/s  err {:<3} {}",
        t.samples,
        ms(t.latency_ms.p50),
        ms(t.latency_ms.p99),
        t.throughput,
        t.errors,
        if t.passed { "ok" } else { "FAILED" }
    );
    for a in t.assertions.iter().filter(|a| !a.passed) {
        println!("      ✗ {}: {}", a.name, a.detail);
    }
}
