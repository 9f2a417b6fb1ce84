//! `POST /_query`: Chronik's query orchestrator. Every (topic × mode) backend runs in
//! parallel under one deadline; their ranked candidates are fused by reciprocal rank, scored
//! by a ranking profile, and returned merged or grouped by topic.
//!
//! Nothing is dropped silently: a backend that timed out, failed, or was skipped because the
//! request gave it nothing to run is listed in `stats.backends` with the reason, and
//! `stats.complete` is false whenever any requested backend did not contribute.

mod backends;
pub mod rank;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::node::Topic;
use crate::router::AppState;
use crate::router::retrieve::{self, Candidate};
use crate::router::topics::JsonBody;
use backends::{BackendOutput, run_backend};
use rank::{DocKey, Evidence, Mode};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    pub sources: Vec<Source>,
    #[serde(default)]
    pub q: QueryText,
    #[serde(default)]
    pub filters: QueryFilters,
    pub k: Option<usize>,
    pub rank: Option<RankSpec>,
    pub timeout_ms: Option<u64>,
    pub result_format: Option<String>,
    pub rerank: Option<bool>,
    /// Adds a per-result `explanation` string.
    pub explain: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub topic: String,
    pub modes: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryText {
    pub text: Option<String>,
    pub semantic: Option<String>,
    pub sql: Option<String>,
    pub fetch: Option<FetchSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchSpec {
    pub offset: u64,
    #[serde(default)]
    pub partition: u32,
    pub max_bytes: Option<usize>,
}

/// Applied to every backend (Chronik parsed these and ignored them).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryFilters {
    pub timestamp_gte: Option<i64>,
    pub timestamp_lte: Option<i64>,
    pub partitions: Option<Vec<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RankSpec {
    pub profile: Option<String>,
}

const DEFAULT_K: usize = 50;
const MAX_K: usize = 1_000;
const DEFAULT_TIMEOUT_MS: u64 = 5_000;
const MIN_TIMEOUT_MS: u64 = 100;

/// One backend's outcome, reported whatever happened.
struct BackendReport {
    mode: Mode,
    topic: String,
    latency_ms: f64,
    timed_out: bool,
    error: Option<String>,
    skipped: Option<String>,
    candidates: Vec<Candidate>,
    from_cache: Option<bool>,
    /// Partitions answered from a replica not confirmed as fresh as its leader
    /// (`_shards.failures[]` entries).
    stale: Vec<Value>,
}

impl BackendReport {
    fn to_json(&self) -> Value {
        let mut v = json!({
            "backend": self.mode.name(),
            "topic": self.topic,
            "candidates": self.candidates.len(),
            "latency_ms": self.latency_ms,
            "timed_out": self.timed_out,
        });
        if let Some(e) = &self.error {
            v["error"] = json!(e);
        }
        if let Some(s) = &self.skipped {
            v["skipped"] = json!(s);
        }
        if let Some(c) = self.from_cache {
            v["embedding_from_cache"] = json!(c);
        }
        if !self.stale.is_empty() {
            v["stale_partitions"] = json!(self.stale);
        }
        v
    }
}

pub async fn query(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<QueryRequest>,
) -> Result<Json<Value>> {
    let started = Instant::now();
    let k = request.k.unwrap_or(DEFAULT_K);
    if !(1..=MAX_K).contains(&k) {
        return Err(Error::bad_request(format!(
            "k must be 1..={MAX_K}, got {k}"
        )));
    }
    let timeout_ms = request
        .timeout_ms
        .unwrap_or(DEFAULT_TIMEOUT_MS)
        .max(MIN_TIMEOUT_MS);
    let profile_name = request
        .rank
        .as_ref()
        .and_then(|r| r.profile.clone())
        .unwrap_or_else(|| "default".into());
    let profile = rank::profile(&profile_name).ok_or_else(|| {
        let names: Vec<&str> = rank::profiles().iter().map(|p| p.name).collect();
        Error::bad_request(format!(
            "unknown rank profile {profile_name:?} (available: {})",
            names.join(", ")
        ))
    })?;
    let grouped = match request.result_format.as_deref().unwrap_or("merged") {
        "merged" => false,
        "grouped" => true,
        other => {
            return Err(Error::bad_request(format!(
                "result_format must be merged or grouped, got {other:?}"
            )));
        }
    };
    if request.rerank == Some(true) {
        return Err(Error::bad_request(
            "rerank is not available: no cross-encoder is configured",
        ));
    }
    if request.sources.is_empty() {
        return Err(Error::bad_request("sources must name at least one topic"));
    }
    // Plan: resolve every source now, so a typo is a 400 rather than an empty result.
    let mut plan: Vec<(Arc<Topic>, Mode)> = Vec::new();
    for source in &request.sources {
        let topic = state.node.topic(&source.topic).map_err(|_| {
            Error::bad_request(format!("source topic {:?} does not exist", source.topic))
        })?;
        if source.modes.is_empty() {
            return Err(Error::bad_request(format!(
                "source {:?} lists no modes (text, vector, sql, fetch)",
                source.topic
            )));
        }
        for m in &source.modes {
            let mode = Mode::parse(m).ok_or_else(|| {
                Error::bad_request(format!(
                    "unknown mode {m:?} for {:?} (text, vector, sql, fetch)",
                    source.topic
                ))
            })?;
            if !plan
                .iter()
                .any(|(t, pm)| t.name == topic.name && *pm == mode)
            {
                plan.push((topic.clone(), mode));
            }
        }
    }
    let request = Arc::new(request);
    let deadline = Duration::from_millis(timeout_ms);
    let tasks: Vec<_> = plan
        .into_iter()
        .map(|(topic, mode)| {
            let state = state.clone();
            let request = request.clone();
            let name = topic.name.clone();
            let task = tokio::spawn(async move {
                let t0 = Instant::now();
                // Waiting for stale replicas may use three quarters of the deadline, so a
                // backend that cannot be brought up to date reports which partitions instead of
                // timing out with nothing.
                let backend = run_backend(&state, &topic, mode, &request, k, deadline);
                let result = tokio::time::timeout(deadline, backend).await;
                (result, t0.elapsed())
            });
            (mode, name, task)
        })
        .collect();
    let mut reports = Vec::with_capacity(tasks.len());
    for (mode, topic, task) in tasks {
        let mut report = BackendReport {
            mode,
            topic,
            latency_ms: 0.0,
            timed_out: false,
            error: None,
            skipped: None,
            candidates: Vec::new(),
            from_cache: None,
            stale: Vec::new(),
        };
        match task.await {
            Ok((result, elapsed)) => {
                report.latency_ms = elapsed.as_secs_f64() * 1000.0;
                match result {
                    Err(_) => {
                        report.timed_out = true;
                        metrics::counter!("chronik_query_backend_timeouts_total",
                            "backend" => mode.name())
                        .increment(1);
                    }
                    Ok(Err(e)) => report.error = Some(e.to_string()),
                    Ok(Ok(BackendOutput::Skipped(why))) => report.skipped = Some(why),
                    Ok(Ok(BackendOutput::Hits {
                        hits,
                        from_cache,
                        stale,
                    })) => {
                        report.candidates = hits;
                        report.from_cache = from_cache;
                        report.stale = stale;
                    }
                }
                metrics::histogram!("chronik_query_backend_latency_seconds",
                    "backend" => mode.name())
                .record(elapsed.as_secs_f64());
            }
            Err(e) => report.error = Some(format!("backend task failed: {e}")),
        }
        reports.push(report);
    }
    let all_timed_out = reports.iter().all(|r| r.timed_out);
    let candidates_total: usize = reports.iter().map(|r| r.candidates.len()).sum();
    if candidates_total == 0 && all_timed_out {
        return Err(Error::Timeout(format!(
            "every backend ran past the {timeout_ms} ms deadline"
        )));
    }
    let explain = request.explain.unwrap_or(false);
    let ranked = rank_results(&state, &reports, &profile, k, explain).await?;
    let complete = reports
        .iter()
        .all(|r| !r.timed_out && r.error.is_none() && r.skipped.is_none() && r.stale.is_empty());
    let backends: Vec<Value> = reports.iter().map(BackendReport::to_json).collect();
    let stats = json!({
        "candidates": ranked.candidates,
        "ranked": ranked.results.len(),
        "latency_ms": started.elapsed().as_secs_f64() * 1000.0,
        "complete": complete,
        "profile": profile_name,
        "backends": backends,
    });
    metrics::counter!("chronik_query_requests_total").increment(1);
    metrics::histogram!("chronik_query_latency_seconds").record(started.elapsed().as_secs_f64());
    let mut response = json!({ "query_id": query_id(), "stats": stats });
    if grouped {
        let mut groups: Map<String, Value> = Map::new();
        for r in ranked.results {
            let topic = r["topic"].as_str().unwrap_or_default().to_string();
            if let Some(list) = groups
                .entry(topic)
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
            {
                list.push(r);
            }
        }
        response["results"] = json!([]);
        response["grouped_results"] = Value::Object(groups);
    } else {
        response["results"] = Value::Array(ranked.results);
    }
    Ok(Json(response))
}

struct Ranked {
    candidates: usize,
    results: Vec<Value>,
}

async fn rank_results(
    state: &AppState,
    reports: &[BackendReport],
    profile: &rank::Profile,
    k: usize,
    explain: bool,
) -> Result<Ranked> {
    // Dedupe on (topic, partition, offset), keeping each backend's rank and score.
    let mut evidence: HashMap<DocKey, Evidence> = HashMap::new();
    for report in reports {
        for (i, c) in report.candidates.iter().enumerate() {
            let e = evidence
                .entry((report.topic.clone(), c.partition, c.offset))
                .or_default();
            e.ranks.entry(report.mode).or_insert((i + 1, c.score));
        }
    }
    let candidates = evidence.len();
    // RRF first, keeping 2k, then the profile decides the final order among those.
    let mut by_rrf: Vec<(DocKey, Evidence, f64)> = evidence
        .into_iter()
        .map(|(key, e)| {
            let s = rank::rrf_score(&e);
            (key, e, s)
        })
        .collect();
    by_rrf.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    by_rrf.truncate(2 * k);
    // Records for previews and freshness, one lookup batch per topic.
    let mut records = HashMap::new();
    let mut per_topic: HashMap<String, Vec<Candidate>> = HashMap::new();
    for ((topic, partition, offset), _, _) in &by_rrf {
        per_topic.entry(topic.clone()).or_default().push(Candidate {
            partition: *partition,
            offset: *offset,
            score: 0.0,
        });
    }
    // A partition whose records cannot be loaded leaves its hits without previews; the
    // backends have already reported it.
    let preview_deadline = Instant::now() + Duration::from_secs(2);
    for (name, hits) in per_topic {
        let topic = state.node.topic(&name)?;
        let found =
            crate::router::gather::records_of(&state.node, &topic, &hits, preview_deadline).await?;
        for ((p, o), r) in found.records {
            records.insert((name.clone(), p, o), r);
        }
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut scored: Vec<(DocKey, rank::Features, f64)> = by_rrf
        .into_iter()
        .map(|(key, e, _)| {
            let age = records
                .get(&key)
                .map(|r| (now - r.timestamp) as f64 / 3600.0);
            let f = rank::features(&e, age);
            let s = profile.score(&f);
            (key, f, s)
        })
        .collect();
    scored.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    scored.truncate(k);
    let results = scored
        .into_iter()
        .map(|(key, f, s)| {
            let mut v = json!({
                "topic": key.0,
                "partition": key.1,
                "offset": key.2,
                "final_score": s,
                "features": f,
            });
            if explain {
                v["explanation"] = json!(profile.explain(&f));
            }
            if let (Value::Object(fields), Some(o)) =
                (retrieve::hit_fields(records.get(&key)), v.as_object_mut())
            {
                o.extend(fields);
            }
            v
        })
        .collect();
    Ok(Ranked {
        candidates,
        results,
    })
}

/// A random version-4 UUID string (from the std hasher's per-process random keys).
fn query_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut words = [0u64; 2];
    for (i, w) in words.iter_mut().enumerate() {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        h.write_u128(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.write_usize(i);
        *w = h.finish();
    }
    let hi = (words[0] & 0xffff_ffff_ffff_0fff) | 0x4000;
    let lo = (words[1] & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

pub async fn profiles() -> Json<Value> {
    Json(json!(rank::profiles()))
}

pub async fn capabilities(State(state): State<AppState>) -> Json<Value> {
    let caps: Vec<Value> = state
        .node
        .topics()
        .iter()
        .map(|t| {
            json!({
                "topic": t.name,
                "text_search": true,
                "vector_search": t.vector_enabled(),
                "sql_query": true,
                "fetch": true,
            })
        })
        .collect();
    Json(json!(caps))
}
