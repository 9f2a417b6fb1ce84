//! `/_search` and `/{index}/_search`: the Elasticsearch subset, over every partition of the
//! named topics, merged into one top-k by score.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::cluster::freshness::{FRESHNESS_WAIT, Reads, all_partitions, shards_json};
use crate::dataset::derive_severity;
use crate::error::{Error, Result};
use crate::node::Topic;
use crate::router::AppState;
use crate::router::es_query::QueryTranslator;
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
    let stale = state
        .node
        .await_fresh(&all_partitions(&topics), Reads::Searchable, FRESHNESS_WAIT)
        .await;
    let result = tokio::task::spawn_blocking(move || search_topics(&topics, &request, from, size))
        .await
        .map_err(Error::internal)??;
    let (total, shards, hits) = result;
    let max_score = hits
        .first()
        .map(|h| h["_score"].clone())
        .unwrap_or(Value::Null);
    metrics::counter!("chronik_search_queries_total").increment(1);
    Ok(Json(json!({
        "took": started.elapsed().as_millis() as u64,
        "timed_out": false,
        "_shards": shards_json(shards, &stale),
        "hits": { "total": { "value": total, "relation": "eq" }, "max_score": max_score, "hits": hits },
    })))
}

/// Runs the query on every partition; each returns its best `from + size`, and the merged list
/// is cut to the requested page, so paging is exact across partitions.
/// One partition's best candidates, with the searcher snapshot they came from.
struct PartitionTop<'a> {
    topic: &'a str,
    partition: &'a crate::cluster::partition::Partition,
    top: crate::shard::text::TopHits,
}

fn search_topics(
    topics: &[Arc<Topic>],
    request: &SearchRequest,
    from: usize,
    size: usize,
) -> Result<(u64, usize, Vec<Value>)> {
    let Some(template) = topics.iter().flat_map(|t| t.partitions.first()).next() else {
        return Ok((0, 0, Vec::new()));
    };
    let translator = QueryTranslator::new(template.shard.text());
    let query = match (&request.query, &request.q) {
        (Some(dsl), _) => translator.dsl(dsl)?,
        (None, Some(q)) => translator.query_string(q)?,
        (None, None) => translator.query_string("")?,
    };
    let partitions: Vec<(&str, &crate::cluster::partition::Partition)> = topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.name.as_str(), p)))
        .collect();
    let shards = partitions.len();
    let query = query.as_ref();
    let k = from + size;
    // Partitions are independent indexes: search them on all cores, then merge.
    let tops = crate::router::retrieve::in_parallel(&partitions, |&(topic, p)| {
        let top = p.shard.text().top(query, k)?;
        Ok(vec![PartitionTop {
            topic,
            partition: p,
            top,
        }])
    })?;
    let total: u64 = tops.iter().map(|t| t.top.total).sum();
    // Merge (score, partition, address) candidates; ties broken by position so equal scores
    // come back in a stable order. Only the final page's documents are loaded.
    let mut candidates: Vec<(f32, usize, tantivy::DocAddress)> = tops
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            t.top
                .hits
                .iter()
                .map(move |(score, address)| (*score, i, *address))
        })
        .collect();
    candidates.sort_by(|a, b| {
        b.0.total_cmp(&a.0)
            .then(tops[a.1].partition.id.cmp(&tops[b.1].partition.id))
            .then(a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
    });
    let mut page = Vec::with_capacity(size);
    for (score, i, address) in candidates.into_iter().skip(from).take(size) {
        let t = &tops[i];
        let hit = t
            .partition
            .shard
            .text()
            .load_hit(&t.top.searcher, score, address)?;
        page.push((t.topic, t.partition.id, hit));
    }
    let hits = page
        .into_iter()
        .map(|(topic, partition, hit)| {
            let r = &hit.record;
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
                    "severity": derive_severity(r),
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
    Ok((total, shards, hits))
}
