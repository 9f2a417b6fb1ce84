//! The run record: one JSON file per `bench run` or `demo`, rewritten while the run goes (so
//! the report page shows live progress) and final when `status` leaves `running`. The report
//! page, `bench list` and `bench compare` read nothing else.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use crate::host::{Hardware, Version};

/// Bumped when a field changes meaning; readers refuse newer schemas with a clear message.
pub const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub schema: u32,
    /// `YYYYMMDDTHHMMSSZ-<label>`: sortable, and the file name without `.json`.
    pub id: String,
    /// What ran, e.g. `SV-2a` or `demo`.
    pub label: String,
    pub scale: String,
    /// `running`, `passed`, `failed` (a criterion or assertion failed) or `error` (the run
    /// could not finish; see `error`).
    pub status: String,
    pub error: Option<String>,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub finished_at: Option<String>,
    /// When the record was last written; a `running` record that stops changing belongs to
    /// a runner that died.
    #[serde(default)]
    pub updated_at: Option<String>,
    pub version: Version,
    pub hardware: Hardware,
    /// Where the queries went and how the nodes were set up.
    pub environment: Environment,
    pub phases: Vec<PhaseRecord>,
    /// Per node, one sample a second for the whole run.
    pub telemetry: Vec<NodeTelemetry>,
    /// Every node the run used, as it described itself when first used: `hardware` above is
    /// the machine the runner (the load generator) ran on, these are the targets'.
    #[serde(default)]
    pub nodes: Vec<NodeRecord>,
}

/// One node as its `GET /_node` described it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeRecord {
    /// The API address the runner sent queries to.
    pub target: String,
    pub node_id: u64,
    pub version: Version,
    pub hardware: Hardware,
    /// The node's effective configuration (default < file < environment < flags), with its
    /// cluster token withheld.
    pub config: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Environment {
    /// `in-process node`, `local cluster of N` or `external`.
    pub kind: String,
    pub targets: Vec<String>,
    /// Human-readable notes shown on the run page (e.g. "embedding provider emulated: local
    /// model behind an OpenAI-compatible server with 372 ms latency").
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseRecord {
    /// Plan id, e.g. `SV-2a`.
    pub plan: String,
    pub title: String,
    /// The plan file as it was run (TOML), so a run is reproducible from its record.
    pub plan_source: String,
    /// `pending`, `running`, `passed`, `failed` or `error`.
    pub status: String,
    pub error: Option<String>,
    pub dataset: Option<DatasetRecord>,
    pub tasks: Vec<TaskRecord>,
    pub criteria: Vec<CriterionResult>,
    /// Fault injection and recovery steps with their times (the failover timeline).
    pub events: Vec<Event>,
    /// Numbers a phase measures beyond query latency (election time, catch-up time, load
    /// rate, throughput ratio …); criteria may refer to them by name.
    pub measurements: Vec<Measurement>,
    /// Seconds since the run started.
    pub started_secs: f64,
    pub finished_secs: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetRecord {
    /// `thunderbird`, `bgl` or `hdfs`.
    pub format: String,
    /// `generated (seed 7)` or the path of a fetched file.
    pub source: String,
    pub topic: String,
    pub lines: u64,
    pub records_loaded: u64,
    pub rejected: u64,
    pub load_secs: f64,
    pub records_per_sec: f64,
    /// Seconds from the end of the load until every record was searchable.
    pub searchable_secs: f64,
    /// Vectors embedded and indexed, when the plan asks for them.
    pub vectors: Option<u64>,
    pub embed_secs: Option<f64>,
}

/// One query of a task that sends several: its request body and its own latency.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueryLatency {
    pub request: serde_json::Value,
    pub latency_ms: Percentiles,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRecord {
    pub name: String,
    /// The plan's category (`simple text`, `SQL COUNT`, `semantic (cache hit)`, …): criteria
    /// and the report group tasks by it.
    pub category: String,
    /// `search`, `sql`, `vector`, `hybrid`, `query`.
    pub kind: String,
    /// The request body as sent (after placeholders were filled).
    pub request: serde_json::Value,
    pub clients: usize,
    /// Requests per second across all clients, when the task is rate-limited.
    pub target_rate: Option<f64>,
    pub warmup: usize,
    pub samples: u64,
    pub errors: u64,
    pub error_rate: f64,
    /// Completed requests per second over the measured part.
    pub throughput: f64,
    pub duration_secs: f64,
    /// From the scheduled send time (coordinated-omission safe) when rate-limited; equal to
    /// `service_ms` when flat-out.
    pub latency_ms: Percentiles,
    /// Per query, when the task sends more than one (latency from the scheduled send).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queries: Vec<QueryLatency>,
    /// From the actual send time.
    pub service_ms: Percentiles,
    /// Completed requests per whole second; `t` counts from the start of the task's
    /// measured part.
    pub throughput_timeline: Vec<TimePoint>,
    pub assertions: Vec<AssertionResult>,
    /// A sample answer (truncated) for the reader.
    pub sample_answer: Option<String>,
    pub passed: bool,
}

/// Percentiles in milliseconds; a percentile is `None` when the sample count cannot support
/// it (p90 needs 10 samples, p95 20, p99 100, p99.9 1,000).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub min: Option<f64>,
    pub mean: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    /// k6's thresholds use p95. Absent from records written before it was added.
    #[serde(default)]
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub p99_9: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TimePoint {
    pub t: f64,
    pub value: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AssertionResult {
    /// What was asserted, e.g. `hits > 0` or `cache hits delta == 140`.
    pub name: String,
    pub passed: bool,
    /// What was observed.
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measurement {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CriterionResult {
    /// The plan's wording, e.g. `Text search p50 < 10ms`.
    pub name: String,
    /// False when the criterion could not be judged (nothing measured it, or the capability
    /// is not built); `passed` is then false and `detail` says why.
    pub judged: bool,
    pub passed: bool,
    /// The measured value compared with the threshold (None when nothing was measured).
    pub value: Option<f64>,
    pub threshold: f64,
    /// `<=` (the value must not exceed the threshold) or `>=` (must reach it).
    #[serde(default)]
    pub bound: String,
    /// `ms`, `s`, `ratio`, `count`, `x` …
    pub unit: String,
    /// Which task gave the value, or why the criterion could not be judged.
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// Seconds since the run started.
    pub t: f64,
    /// `kill`, `restart`, `leader elected`, `caught up`, `error spike`, …
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeTelemetry {
    pub node: String,
    pub samples: Vec<TelemetrySample>,
}

/// One second of one node, as its `/_telemetry` endpoint reported it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TelemetrySample {
    /// Seconds since the run started.
    pub t: f64,
    pub reachable: bool,
    pub cpu_percent: Option<f64>,
    pub rss_bytes: Option<u64>,
    pub disk_read_bytes: Option<u64>,
    pub disk_written_bytes: Option<u64>,
    /// The host's network bytes (all interfaces, cumulative): Linux has no per-process count.
    pub net_rx_bytes: Option<u64>,
    pub net_tx_bytes: Option<u64>,
    /// Raft groups this node leads, and the largest replica lag it sees.
    pub raft_leaders: Option<u64>,
    pub raft_max_lag: Option<u64>,
    /// Records accepted but not yet searchable / not yet embedded.
    pub index_lag: Option<u64>,
    pub embed_lag: Option<u64>,
    pub cache_hit_ratio: Option<f64>,
}

impl RunRecord {
    /// The environment notes of phase `plan` (stored as `"<plan>: <note>"`), such as SV-1's
    /// emulated embedding provider, shown with the phase as well as on the run.
    pub fn phase_notes<'a>(&'a self, plan: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.environment
            .notes
            .iter()
            .filter_map(move |n| n.strip_prefix(plan)?.strip_prefix(": "))
    }

    pub fn passed(&self) -> bool {
        self.status == "passed"
    }

    pub fn path_in(&self, dir: &Path) -> PathBuf {
        dir.join(format!("{}.json", self.id))
    }

    /// Writes the record atomically (temp file + rename) so a reader never sees half a file.
    pub fn save(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Config(format!("cannot create runs dir {}: {e}", dir.display())))?;
        let path = self.path_in(dir);
        let tmp = dir.join(format!(".{}.json.tmp", self.id));
        let text = serde_json::to_vec_pretty(self).map_err(Error::internal)?;
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }

    pub fn load(path: &Path) -> Result<RunRecord> {
        let text = std::fs::read(path)
            .map_err(|e| Error::NotFound(format!("run {}: {e}", path.display())))?;
        let value: serde_json::Value = serde_json::from_slice(&text)
            .map_err(|e| Error::Config(format!("{} is not a run record: {e}", path.display())))?;
        let schema = value["schema"].as_u64().unwrap_or(0);
        if schema != u64::from(SCHEMA) {
            return Err(Error::Config(format!(
                "{} has run schema {schema}; this binary reads schema {SCHEMA}",
                path.display()
            )));
        }
        serde_json::from_value(value)
            .map_err(|e| Error::Config(format!("{} is not a run record: {e}", path.display())))
    }
}

/// Every run record in `dir`, oldest first (ids sort by start time). Unreadable files are
/// returned as errors beside the good ones so a list can mention them.
pub fn list_runs(dir: &Path) -> (Vec<RunRecord>, Vec<String>) {
    let mut runs = Vec::new();
    let mut problems = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return (runs, problems);
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    for path in paths {
        match RunRecord::load(&path) {
            Ok(run) => runs.push(run),
            Err(e) => problems.push(e.to_string()),
        }
    }
    (runs, problems)
}

/// Refuses ids that are not a plain file name: separators, `..`, a leading dot (the writer's
/// temp files), control characters. Run ids are joined onto the runs dir, so this check is
/// what keeps `find_run` (and the report's requests) inside it.
pub fn check_run_id(id: &str) -> Result<()> {
    let bad = id.is_empty()
        || id.len() > 200
        || id.starts_with('.')
        || id.contains("..")
        || id.chars().any(|c| c == '/' || c == '\\' || c.is_control());
    if bad {
        return Err(Error::bad_request(format!(
            "run id {id:?} refused: a run id is a file name in the runs dir (no '/', '\\', \
             '..' or leading '.')"
        )));
    }
    Ok(())
}

/// Finds a run by id, by a unique id prefix, or by `latest`. An id is a file name in `dir`,
/// never a path.
pub fn find_run(dir: &Path, wanted: &str) -> Result<RunRecord> {
    check_run_id(wanted)?;
    let direct = dir.join(format!("{wanted}.json"));
    if direct.is_file() {
        return RunRecord::load(&direct);
    }
    let (runs, _) = list_runs(dir);
    if wanted == "latest" {
        return runs
            .into_iter()
            .last()
            .ok_or_else(|| Error::NotFound(format!("no runs in {}", dir.display())));
    }
    let mut matching: Vec<RunRecord> = runs
        .into_iter()
        .filter(|r| r.id.starts_with(wanted))
        .collect();
    match matching.len() {
        1 => Ok(matching.remove(0)),
        0 => Err(Error::NotFound(format!(
            "no run {wanted:?} in {} (`bench list` shows them)",
            dir.display()
        ))),
        n => Err(Error::Config(format!(
            "{wanted:?} matches {n} runs in {}; give more of the id",
            dir.display()
        ))),
    }
}

/// Where runs are kept: `--runs-dir`, else `SV_RUNS_DIR`, else `./sv-runs`.
pub fn runs_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| std::env::var_os("SV_RUNS_DIR").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("sv-runs"))
}
