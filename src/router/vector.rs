//! `/_vector/{topic}/…`: semantic search by text or by vector, hybrid (vector + BM25 fused by
//! weighted RRF), and index statistics. Shapes follow Chronik's Unified API, except that
//! `score` is a cosine *similarity* (higher is better) and every response says whether the
//! query embedding came from the cache.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::cluster::freshness::{PartitionFailure, shards_json};
use crate::error::{Error, Result};
use crate::node::Topic;
use crate::router::AppState;
use crate::router::gather;
use crate::router::remote::{Read, TextQuery};
use crate::router::retrieve::{self, Candidate};
use crate::router::rrf::{fuse_rrf, hybrid_text_dsl};
use crate::router::topics::JsonBody;
use crate::shard::vector::filter::VectorFilter;

/// Largest `k` a request may ask for.
pub const MAX_K: usize = 1_000;

/// Filters every vector request accepts, as top-level fields (Chronik's shape).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorRequest {
    /// Text to embed (`search`, `hybrid`).
    pub query: Option<String>,
    /// A ready vector (`search_by_vector`).
    pub vector: Option<Vec<f32>>,
    pub k: Option<usize>,
    pub partitions: Option<Vec<u32>>,
    pub min_offset: Option<u64>,
    pub max_offset: Option<u64>,
    pub timestamp_gte: Option<i64>,
    pub timestamp_lte: Option<i64>,
    pub host: Option<String>,
    pub label: Option<String>,
    pub alert: Option<bool>,
    /// Hybrid only.
    pub vector_weight: Option<f64>,
    pub text_weight: Option<f64>,
    pub rrf_k: Option<f64>,
    /// `search`/`search_by_vector` only: scan every vector instead of the HNSW graph (slow;
    /// the ground truth for recall@k).
    pub exact: Option<bool>,
    /// Accepted for compatibility; `true` is refused (no reranker is built in).
    pub rerank: Option<bool>,
    /// Must name the configured model when given.
    pub model: Option<String>,
}

impl VectorRequest {
    pub fn filter(&self) -> VectorFilter {
        VectorFilter {
            min_offset: self.min_offset,
            max_offset: self.max_offset,
            timestamp_gte: self.timestamp_gte,
            timestamp_lte: self.timestamp_lte,
            host: self.host.clone(),
            label: self.label.clone(),
            alert: self.alert,
        }
    }

    fn k(&self) -> Result<usize> {
        match self.k.unwrap_or(10) {
            k @ 1..=MAX_K => Ok(k),
            k => Err(Error::bad_request(format!(
                "k must be 1..={MAX_K}, got {k}"
            ))),
        }
    }

    fn check_common(&self, state: &AppState) -> Result<()> {
        if self.rerank == Some(true) {
            return Err(Error::bad_request(
                "rerank is not available: no cross-encoder is configured",
            ));
        }
        if let (Some(model), Some(embedder)) = (&self.model, &state.node.embedder) {
            let id = embedder.id();
            if *model != id.model {
                return Err(Error::bad_request(format!(
                    "model {model:?} is not indexed here; this node embeds with {:?}",
                    id.model
                )));
            }
        }
        Ok(())
    }

    fn query_text(&self) -> Result<&str> {
        match self.query.as_deref() {
            Some(q) if !q.trim().is_empty() => Ok(q),
            _ => Err(Error::bad_request("\"query\" (non-empty text) is required")),
        }
    }
}

fn model_name(state: &AppState) -> Value {
    state
        .node
        .embedder
        .as_ref()
        .map_or(Value::Null, |e| json!(e.id().model))
}

/// Renders hits with their previews (records loaded wherever their partitions are);
/// partitions whose records could not be loaded are added to `failures`.
async fn render_hits(
    state: &AppState,
    topic: &Arc<Topic>,
    hits: &[Candidate],
    deadline: Instant,
    failures: &mut Vec<PartitionFailure>,
    extra: impl Fn(usize) -> Map<String, Value>,
) -> Result<Vec<Value>> {
    let mut loaded = gather::records_of(&state.node, topic, hits, deadline).await?;
    failures.append(&mut loaded.failures);
    let records = loaded.records;
    Ok(hits
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let mut obj = Map::new();
            obj.insert("topic".into(), json!(topic.name));
            obj.insert("partition".into(), json!(h.partition));
            obj.insert("offset".into(), json!(h.offset));
            obj.insert("score".into(), json!(h.score));
            obj.extend(extra(i));
            if let Value::Object(fields) =
                retrieve::hit_fields(records.get(&(h.partition, h.offset)))
            {
                obj.extend(fields);
            }
            Value::Object(obj)
        })
        .collect())
}

/// The deadline of a vector request: the node's query timeout.
fn deadline_of(state: &AppState) -> Instant {
    Instant::now() + std::time::Duration::from_millis(state.node.config.query.timeout_ms)
}

/// Failures of one answer, once each (a partition can fail both its search and its records).
fn dedup_failures(mut failures: Vec<PartitionFailure>) -> Vec<PartitionFailure> {
    failures.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    failures.dedup_by(|a, b| a.topic == b.topic && a.partition == b.partition);
    failures
}

pub async fn search(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    JsonBody(body): JsonBody<VectorRequest>,
) -> Result<Json<Value>> {
    let started = Instant::now();
    body.check_common(&state)?;
    if body.vector.is_some() {
        return Err(Error::bad_request(
            "search takes \"query\" text; send vectors to /_vector/{topic}/search_by_vector",
        ));
    }
    let topic = state.node.topic(&topic)?;
    retrieve::require_vectors(&topic)?;
    let k = body.k()?;
    let (vector, from_cache) = retrieve::embed_query(&state.node, body.query_text()?).await?;
    run_vector_search(
        state,
        topic,
        body,
        vector.to_vec(),
        k,
        Some(from_cache),
        started,
    )
    .await
}

pub async fn search_by_vector(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    JsonBody(body): JsonBody<VectorRequest>,
) -> Result<Json<Value>> {
    let started = Instant::now();
    body.check_common(&state)?;
    let topic = state.node.topic(&topic)?;
    retrieve::require_vectors(&topic)?;
    let k = body.k()?;
    let vector = body
        .vector
        .clone()
        .ok_or_else(|| Error::bad_request("\"vector\" (an array of numbers) is required"))?;
    let dims = state.node.embedder.as_ref().map_or(0, |e| e.dimensions());
    if vector.len() != dims {
        return Err(Error::bad_request(format!(
            "vector has {} dimensions, topic {:?} is indexed with {dims}",
            vector.len(),
            topic.name
        )));
    }
    if vector.iter().any(|x| !x.is_finite()) {
        return Err(Error::bad_request("vector contains a non-finite number"));
    }
    // The index holds unit vectors; normalising the query makes the score a true cosine.
    let mut vector = vector;
    crate::embed::l2_normalise(&mut vector);
    run_vector_search(state, topic, body, vector, k, None, started).await
}

async fn run_vector_search(
    state: AppState,
    topic: Arc<Topic>,
    body: VectorRequest,
    vector: Vec<f32>,
    k: usize,
    from_cache: Option<bool>,
    started: Instant,
) -> Result<Json<Value>> {
    let model = model_name(&state);
    let deadline = deadline_of(&state);
    let partitions = retrieve::select_partitions(&topic, body.partitions.as_deref())?;
    let read = Read::Vector {
        vector,
        k,
        filter: body.filter(),
        exact: body.exact.unwrap_or(false),
    };
    let top = gather::gather(&state.node, &topic, &partitions, read, deadline).await?;
    let mut failures = top.failures;
    let results = render_hits(&state, &topic, &top.hits, deadline, &mut failures, |_| {
        Map::new()
    })
    .await?;
    metrics::counter!("chronik_vector_searches_total").increment(1);
    Ok(Json(json!({
        "results": results,
        "count": top.hits.len(),
        "total_vectors": top.total,
        "loading": !top.loading_partitions.is_empty(),
        "loading_partitions": top.loading_partitions,
        "embedding_from_cache": from_cache,
        "model": model,
        "_shards": shards_json(top.partitions, &dedup_failures(failures)),
        "execution_time_ms": started.elapsed().as_secs_f64() * 1000.0,
    })))
}

pub async fn hybrid(
    State(state): State<AppState>,
    Path(topic): Path<String>,
    JsonBody(body): JsonBody<VectorRequest>,
) -> Result<Json<Value>> {
    let started = Instant::now();
    body.check_common(&state)?;
    if body.exact.is_some() {
        return Err(Error::bad_request(
            "exact applies to /search and /search_by_vector, not to hybrid",
        ));
    }
    let topic = state.node.topic(&topic)?;
    retrieve::require_vectors(&topic)?;
    let k = body.k()?;
    let vector_weight = body.vector_weight.unwrap_or(0.5);
    let text_weight = body.text_weight.unwrap_or(0.5);
    let rrf_k = body.rrf_k.unwrap_or(60.0);
    let weights_ok = [vector_weight, text_weight]
        .iter()
        .all(|w| w.is_finite() && *w >= 0.0)
        && vector_weight + text_weight > 0.0;
    if !weights_ok {
        return Err(Error::bad_request(
            "vector_weight and text_weight must be non-negative and not both 0",
        ));
    }
    if !(rrf_k.is_finite() && rrf_k >= 0.0) {
        return Err(Error::bad_request("rrf_k must be a non-negative number"));
    }
    let query = body.query_text()?.to_string();
    let (vector, from_cache) = retrieve::embed_query(&state.node, &query).await?;
    let model = model_name(&state);
    let deadline = deadline_of(&state);
    let partitions = retrieve::select_partitions(&topic, body.partitions.as_deref())?;
    let filter = body.filter();
    // Each side retrieves 3k candidates, as Chronik does, so agreement below the top k still
    // counts. The query is embedded once, here; owners get the vector.
    let depth = 3 * k;
    let vector_read = Read::Vector {
        vector: vector.to_vec(),
        k: depth,
        filter: filter.clone(),
        exact: false,
    };
    let text_read = Read::Text {
        query: TextQuery::Dsl(hybrid_text_dsl(&query, &filter)),
        k: depth,
        records: false,
    };
    let (vector_top, text_top) = tokio::join!(
        gather::gather(&state.node, &topic, &partitions, vector_read, deadline),
        gather::gather(&state.node, &topic, &partitions, text_read, deadline),
    );
    let (vector_top, text_top) = (vector_top?, text_top?);
    let fused = fuse_rrf(
        &vector_top.hits,
        &text_top.hits,
        vector_weight,
        text_weight,
        rrf_k,
        k,
    );
    let hits: Vec<Candidate> = fused
        .iter()
        .map(|f| Candidate {
            score: f.score as f32,
            ..f.candidate
        })
        .collect();
    let mut failures = vector_top.failures;
    failures.extend(text_top.failures);
    let results = render_hits(&state, &topic, &hits, deadline, &mut failures, |i| {
        let f = &fused[i];
        let mut m = Map::new();
        m.insert("score".into(), json!(f.score));
        m.insert("vector_rank".into(), json!(f.vector_rank));
        m.insert("text_rank".into(), json!(f.text_rank));
        m
    })
    .await?;
    metrics::counter!("chronik_vector_searches_total").increment(1);
    Ok(Json(json!({
        "results": results,
        "count": hits.len(),
        "vector_results_count": vector_top.hits.len(),
        "text_results_count": text_top.hits.len(),
        "loading": !vector_top.loading_partitions.is_empty(),
        "loading_partitions": vector_top.loading_partitions,
        "embedding_from_cache": from_cache,
        "model": model,
        "_shards": shards_json(vector_top.partitions, &dedup_failures(failures)),
        "execution_time_ms": started.elapsed().as_secs_f64() * 1000.0,
    })))
}

fn topic_vector_stats(state: &AppState, topic: &Topic) -> Value {
    let shard_stats = state.node.topic_stats(topic);
    let partitions: Vec<Value> = topic
        .vectors
        .iter()
        .zip(&shard_stats.partitions)
        .map(|(v, s)| {
            json!({
                "partition": v.partition,
                "vector_count": v.len(),
                "distinct_vectors": v.points(),
                "pending": s.records.saturating_sub(v.len()),
                "loading": v.is_loading(),
            })
        })
        .collect();
    let total: u64 = topic.vectors.iter().map(|v| v.len()).sum();
    let embedder = state.node.embedder.as_ref().map(|e| e.id());
    json!({
        "topic": topic.name,
        "enabled": topic.vector_enabled(),
        "total_vectors": total,
        // Graph points: records whose text or vector repeats an earlier one share its point.
        "distinct_vectors": topic.vectors.iter().map(|v| v.points()).sum::<u64>(),
        "records": shard_stats.records,
        "pending": shard_stats.records.saturating_sub(total),
        "partition_count": topic.partition_count,
        "dimensions": topic.vectors.first().map(|v| v.dims()),
        "loading": topic.vectors.iter().any(|v| v.is_loading()),
        "partitions": partitions,
        "provider": embedder.as_ref().filter(|_| topic.vector_enabled()).map(|e| e.provider.clone()),
        "model": embedder.as_ref().filter(|_| topic.vector_enabled()).map(|e| e.model.clone()),
        "field": topic.vector_enabled().then(|| state.node.config.vector.field.clone()),
        "hnsw": topic.vectors.first().map(|v| v.params()),
    })
}

pub async fn stats(
    State(state): State<AppState>,
    Path(topic): Path<String>,
) -> Result<Json<Value>> {
    let topic = state.node.topic(&topic)?;
    Ok(Json(topic_vector_stats(&state, &topic)))
}

pub async fn topics(State(state): State<AppState>) -> Json<Value> {
    let topics: Vec<Value> = state
        .node
        .topics()
        .iter()
        .map(|t| topic_vector_stats(&state, t))
        .collect();
    Json(json!({ "topics": topics }))
}
