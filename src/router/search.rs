//! `/_search` and `/{index}/_search`: the Elasticsearch subset, over every partition of the
//! named topics, merged into one top-k by score.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::cluster::freshness::{PartitionFailure, shards_json};
use crate::dataset::derive_severity;
use crate::error::{Error, Result};
use crate::node::{Node, Topic};
use crate::router::AppState;
use crate::router::gather::gather;
use crate::router::remote::{Read, TextQuery};
use crate::router::topics::JsonBody;

/// Elasticsearch's default `index.max_result_window`: deeper pages need a cursor.
const MAX_RESULT_WINDOW: usize = 10_000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    pub index: Option<String>,
    pub query: Option<Value>,
    /// Tantivy query syntax (`error AND kernel`), an alternative to `query`.
    pub q: Option<String>,
    pub size: Option<usize>,
    pub from: Option<usize>,
    /// Accepted for client compatibility; the full source is always returned.
    #[serde(rename = "_source")]
    pub source: Option<Value>,
    /// Accepted for client compatibility; totals are always exact.
    pub track_total_hits: Option<Value>,
}

pub async fn search_all(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<SearchRequest>,
) -> Result<Json<Value>> {
    let index = body.index.clone();
    run(state, index, body).await
}

pub async fn search_index(
    State(state): State<AppState>,
    Path(index): Path<String>,
    JsonBody(body): JsonBody<SearchRequest>,
) -> Result<Json<Value>> {
    run(state, Some(index), body).await
}

pub async fn search_all_get(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    let body = request_from_params(&params)?;
    let index = body.index.clone();
    run(state, index, body).await
}

pub async fn search_index_get(
    State(state): State<AppState>,
    Path(index): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>> {
    run(state, Some(index), request_from_params(&params)?).await
}

fn request_from_params(params: &HashMap<String, String>) -> Result<SearchRequest> {
    let number = |key: &str| -> Result<Option<usize>> {
        params
            .get(key)
            .map(|v| {
                v.parse().map_err(|_| {
                    Error::bad_request(format!("{key} must be a non-negative integer, got {v:?}"))
                })
            })
            .transpose()
    };
    Ok(SearchRequest {
        index: params.get("index").cloned(),
        q: params.get("q").cloned(),
        size: number("size")?,
        from: number("from")?,
        ..Default::default()
    })
}

fn resolve_topics(state: &AppState, index: Option<&str>) -> Result<Vec<Arc<Topic>>> {
    match index {
        None | Some("*") | Some("_all") => Ok(state.node.topics()),
        Some(list) => {
            // A topic named twice is searched once, so `_shards` counts each partition once.
            let mut names: Vec<&str> = list.split(',').map(str::trim).collect();
            names.sort_unstable();
            names.dedup();
            names
                .into_iter()
                .map(|name| state.node.topic(name))
                .collect()
        }
    }
}

async fn run(
    state: AppState,
    index: Option<String>,
    request: SearchRequest,
) -> Result<Json<Value>> {
    let started = Instant::now();
    let size = request.size.unwrap_or(10);
    let from = request.from.unwrap_or(0);
    if from + size > MAX_RESULT_WINDOW {
        return Err(Error::bad_request(format!(
            "from + size must be at most {MAX_RESULT_WINDOW}, got {}",
            from + size
        )));
    }
    if request.query.is_some() && request.q.is_some() {
        return Err(Error::bad_request(
            "give either query (DSL) or q (query string), not both",
        ));
    }
    let topics = resolve_topics(&state, index.as_deref())?;
    let text = match (request.query, request.q) {
        (Some(dsl), _) => TextQuery::Dsl(dsl),
        (None, Some(q)) => TextQuery::QueryString(q),
        (None, None) => TextQuery::QueryString(String::new()),
    };
    let deadline = Instant::now() + Duration::from_millis(state.node.config.query.timeout_ms);
    let (total, shards, failures, hits) =
        search_topics(&state.node, &topics, text, from, size, deadline).await?;
    let max_score = hits
        .first()
        .map(|h| h["_score"].clone())
        .unwrap_or(Value::Null);
    metrics::counter!("chronik_search_queries_total").increment(1);
    Ok(Json(json!({
        "took": started.elapsed().as_millis() as u64,
        "timed_out": false,
        "_shards": shards_json(shards, &failures),
        "hits": { "total": { "value": total, "relation": "eq" }, "max_score": max_score, "hits": hits },
    })))
}

/// Runs the query on every partition of every topic (here or on the owners, all at once);
/// each partition returns its best `from + size` with their records, and the merged list is
/// cut to the requested page, so paging is exact across partitions.
async fn search_topics(
    node: &Arc<Node>,
    topics: &[Arc<Topic>],
    text: TextQuery,
    from: usize,
    size: usize,
    deadline: Instant,
) -> Result<(u64, usize, Vec<PartitionFailure>, Vec<Value>)> {
    let k = from + size;
    let reads = topics.iter().map(|topic| {
        let read = Read::Text {
            query: text.clone(),
            k,
            records: true,
        };
        let all: Vec<u32> = (0..topic.partition_count).collect();
        async move { gather(node, topic, &all, read, deadline).await }
    });
    let mut total = 0;
    let mut shards = 0;
    let mut failures = Vec::new();
    // (score, topic, partition, offset, record): ties broken by position so equal scores come
    // back in a stable order.
    let mut candidates = Vec::new();
    for (topic, answer) in topics.iter().zip(futures::future::join_all(reads).await) {
        let mut answer = answer?;
        total += answer.total;
        shards += answer.partitions;
        failures.append(&mut answer.failures);
        for hit in answer.hits {
            if let Some(record) = answer.records.remove(&(hit.partition, hit.offset)) {
                candidates.push((hit, topic.name.as_str(), record));
            }
        }
    }
    candidates.sort_by(|a, b| {
        b.0.score
            .total_cmp(&a.0.score)
            .then(a.0.partition.cmp(&b.0.partition))
            .then(a.1.cmp(b.1))
            .then(a.0.offset.cmp(&b.0.offset))
    });
    let hits = candidates
        .into_iter()
        .skip(from)
        .take(size)
        .map(|(hit, topic, r)| {
            let partition = hit.partition;
            json!({
                "_index": topic,
                "_id": format!("{partition}-{}", hit.offset),
                "_score": hit.score,
                "_source": {
                    "_partition": partition,
                    "_offset": hit.offset,
                    "timestamp": r.timestamp,
                    "label": r.label,
                    "alert": r.label != "-",
                    "severity": derive_severity(&r),
                    "host": r.host,
                    "location": r.location,
                    "component": r.component,
                    "pid": r.pid,
                    "level": r.level,
                    "message": r.message,
                },
            })
        })
        .collect();
    Ok((total, shards, failures, hits))
}
