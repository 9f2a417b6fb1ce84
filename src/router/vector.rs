//! `/_vector/{topic}/…`: semantic search by text or by vector, hybrid (vector + BM25 fused by
//! weighted RRF), and index statistics. Shapes follow Chronik's Unified API, except that
//! `score` is a cosine *similarity* (higher is better) and every response says whether the
//! query embedding came from the cache.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::node::Topic;
use crate::router::AppState;
use crate::router::retrieve::{self, Candidate};
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

/// Renders hits with their previews.
fn render_hits(
    topic: &Topic,
    hits: &[Candidate],
    extra: impl Fn(usize) -> Map<String, Value>,
) -> Result<Vec<Value>> {
    let records = retrieve::load_records(topic, hits)?;
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
    let dims = topic.vectors[0].dims();
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
    topic: std::sync::Arc<Topic>,
    body: VectorRequest,
    vector: Vec<f32>,
    k: usize,
    from_cache: Option<bool>,
    started: Instant,
) -> Result<Json<Value>> {
    let model = model_name(&state);
    let response = tokio::task::spawn_blocking(move || -> Result<Value> {
        let partitions = retrieve::select_partitions(&topic, body.partitions.as_deref())?;
        let top = retrieve::vector_top(
            &topic,
            &vector,
            k,
            &body.filter(),
            &partitions,
            body.exact.unwrap_or(false),
        )?;
        let results = render_hits(&topic, &top.hits, |_| Map::new())?;
        Ok(json!({
            "results": results,
            "count": top.hits.len(),
            "total_vectors": top.total_vectors,
            "loading": !top.loading_partitions.is_empty(),
            "loading_partitions": top.loading_partitions,
            "embedding_from_cache": from_cache,
            "model": model,
            "execution_time_ms": started.elapsed().as_secs_f64() * 1000.0,
        }))
    })
    .await
    .map_err(Error::internal)??;
    metrics::counter!("chronik_vector_searches_total").increment(1);
    Ok(Json(response))
}

/// Text-side query for hybrid search: the words OR'ed over `message` (Elasticsearch `match`),
/// with the same filters as the vector side so both lists rank the same population.
pub fn hybrid_text_dsl(query: &str, filter: &VectorFilter) -> Value {
    let mut filters = Vec::new();
    let mut range = |field: &str, gte: Option<Value>, lte: Option<Value>| {
        if gte.is_some() || lte.is_some() {
            let mut bounds = Map::new();
            if let Some(v) = gte {
                bounds.insert("gte".into(), v);
            }
            if let Some(v) = lte {
                bounds.insert("lte".into(), v);
            }
            filters.push(json!({ "range": { field: bounds } }));
        }
    };
    range(
        "_offset",
        filter.min_offset.map(|v| json!(v)),
        filter.max_offset.map(|v| json!(v)),
    );
    range(
        "timestamp",
        filter.timestamp_gte.map(|v| json!(v)),
        filter.timestamp_lte.map(|v| json!(v)),
    );
    if let Some(h) = &filter.host {
        filters.push(json!({ "term": { "host": h } }));
    }
    if let Some(l) = &filter.label {
        filters.push(json!({ "term": { "label": l } }));
    }
    let mut must_not = Vec::new();
    match filter.alert {
        Some(true) => must_not.push(json!({ "term": { "label": "-" } })),
        Some(false) => filters.push(json!({ "term": { "label": "-" } })),
        None => {}
    }
    json!({ "bool": {
        "must": [ { "match": { "message": query } } ],
        "filter": filters,
        "must_not": must_not,
    }})
}

/// One fused hit of hybrid search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fused {
    pub candidate: Candidate,
    pub score: f64,
    /// 1-based rank in each list, when the hit was in it.
    pub vector_rank: Option<usize>,
    pub text_rank: Option<usize>,
}

/// Weighted reciprocal-rank fusion with 1-based ranks:
/// `score = vector_weight/(rrf_k + rank_v) + text_weight/(rrf_k + rank_t)`.
/// Best first (ties by partition, offset), cut to `k`; a hit listed twice by one side counts
/// once, at its better rank.
pub fn fuse_rrf(
    vector: &[Candidate],
    text: &[Candidate],
    vector_weight: f64,
    text_weight: f64,
    rrf_k: f64,
    k: usize,
) -> Vec<Fused> {
    use std::collections::HashMap;
    let mut fused: HashMap<(u32, u64), Fused> = HashMap::new();
    let mut add = |list: &[Candidate], weight: f64, is_vector: bool| {
        for (i, c) in list.iter().enumerate() {
            let rank = i + 1;
            let e = fused.entry((c.partition, c.offset)).or_insert(Fused {
                candidate: *c,
                score: 0.0,
                vector_rank: None,
                text_rank: None,
            });
            let slot = if is_vector {
                &mut e.vector_rank
            } else {
                &mut e.text_rank
            };
            if slot.is_none() {
                *slot = Some(rank);
                e.score += weight / (rrf_k + rank as f64);
            }
        }
    };
    add(vector, vector_weight, true);
    add(text, text_weight, false);
    let mut out: Vec<Fused> = fused.into_values().collect();
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.candidate.partition.cmp(&b.candidate.partition))
            .then(a.candidate.offset.cmp(&b.candidate.offset))
    });
    out.truncate(k);
    out
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
    let response = tokio::task::spawn_blocking(move || -> Result<Value> {
        let partitions = retrieve::select_partitions(&topic, body.partitions.as_deref())?;
        let filter = body.filter();
        // Each side retrieves 3k candidates, as Chronik does, so agreement below the top k
        // still counts.
        let depth = 3 * k;
        let vector_top = retrieve::vector_top(&topic, &vector, depth, &filter, &partitions, false)?;
        let text_query = retrieve::text_query(&topic, &hybrid_text_dsl(&query, &filter))?;
        let text_hits = retrieve::text_top(&topic, text_query.as_ref(), depth, &partitions)?;
        let fused = fuse_rrf(
            &vector_top.hits,
            &text_hits,
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
        let results = render_hits(&topic, &hits, |i| {
            let f = &fused[i];
            let mut m = Map::new();
            m.insert("score".into(), json!(f.score));
            m.insert("vector_rank".into(), json!(f.vector_rank));
            m.insert("text_rank".into(), json!(f.text_rank));
            m
        })?;
        Ok(json!({
            "results": results,
            "count": hits.len(),
            "vector_results_count": vector_top.hits.len(),
            "text_results_count": text_hits.len(),
            "loading": !vector_top.loading_partitions.is_empty(),
            "loading_partitions": vector_top.loading_partitions,
            "embedding_from_cache": from_cache,
            "model": model,
            "execution_time_ms": started.elapsed().as_secs_f64() * 1000.0,
        }))
    })
    .await
    .map_err(Error::internal)??;
    metrics::counter!("chronik_vector_searches_total").increment(1);
    Ok(Json(response))
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
        "partition_count": topic.partitions.len(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn c(partition: u32, offset: u64) -> Candidate {
        Candidate {
            partition,
            offset,
            score: 0.0,
        }
    }

    #[test]
    fn weighted_rrf_fuses_in_the_hand_computed_order() {
        // vector: A B C ; text: C D A (1-based ranks), weights 0.7 / 0.3, rrf_k 60.
        let (a, b, cc, d) = (c(0, 1), c(0, 2), c(1, 3), c(2, 4));
        let fused = fuse_rrf(&[a, b, cc], &[cc, d, a], 0.7, 0.3, 60.0, 10);
        let score_a = 0.7 / 61.0 + 0.3 / 63.0; // 0.016237
        let score_b = 0.7 / 62.0; // 0.011290
        let score_c = 0.7 / 63.0 + 0.3 / 61.0; // 0.016029
        let score_d = 0.3 / 62.0; // 0.004839
        let order: Vec<(u64, Option<usize>, Option<usize>)> = fused
            .iter()
            .map(|f| (f.candidate.offset, f.vector_rank, f.text_rank))
            .collect();
        assert_eq!(
            order,
            vec![
                (1, Some(1), Some(3)),
                (3, Some(3), Some(1)),
                (2, Some(2), None),
                (4, None, Some(2)),
            ]
        );
        let scores: Vec<f64> = fused.iter().map(|f| f.score).collect();
        for (got, want) in scores.iter().zip([score_a, score_c, score_b, score_d]) {
            assert!((got - want).abs() < 1e-12, "{got} vs {want}");
        }
        // k cuts the fused list, and a duplicate in one list counts once at its best rank.
        let fused = fuse_rrf(&[a, a, b], &[], 1.0, 1.0, 60.0, 1);
        assert_eq!(fused.len(), 1);
        assert!((fused[0].score - 1.0 / 61.0).abs() < 1e-12);
    }

    #[test]
    fn hybrid_text_side_carries_the_same_filters() {
        let filter = VectorFilter {
            min_offset: Some(5),
            host: Some("dn1".into()),
            alert: Some(true),
            ..Default::default()
        };
        let dsl = hybrid_text_dsl("disk error", &filter);
        assert_eq!(dsl["bool"]["must"][0]["match"]["message"], "disk error");
        assert_eq!(dsl["bool"]["filter"][0]["range"]["_offset"]["gte"], 5);
        assert_eq!(dsl["bool"]["filter"][1]["term"]["host"], "dn1");
        assert_eq!(dsl["bool"]["must_not"][0]["term"]["label"], "-");
    }
}
