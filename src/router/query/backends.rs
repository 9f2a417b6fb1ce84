//! One orchestrator backend: a (topic × mode) pair's candidates, from text, vector, SQL or
//! a fetch, over the topic's partitions wherever they are, each waiting for its replicas'
//! freshness within three quarters of the time it was given.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::QueryRequest;
use super::rank::Mode;
use crate::cluster::freshness::{FRESHNESS_WAIT, PartitionFailure};
use crate::error::{Error, Result};
use crate::node::Topic;
use crate::router::AppState;
use crate::router::gather::{gather, records_of};
use crate::router::remote::{Read, TextQuery};
use crate::router::retrieve::{self, Candidate};
use crate::router::sql::SqlRequest;
use crate::shard::vector::filter::VectorFilter;

pub(super) enum BackendOutput {
    Hits {
        hits: Vec<Candidate>,
        from_cache: Option<bool>,
        stale: Vec<Value>,
    },
    Skipped(String),
}

pub(super) async fn run_backend(
    state: &AppState,
    topic: &Arc<Topic>,
    mode: Mode,
    request: &QueryRequest,
    k: usize,
    deadline: Duration,
) -> Result<BackendOutput> {
    // Freshness waits take at most three quarters of this (see `gather`).
    let fresh_wait = (deadline * 3 / 4).min(FRESHNESS_WAIT);
    let deadline = Instant::now() + deadline;
    // Each backend offers 3k candidates, so fusion can promote a document that is only
    // moderately ranked by several backends.
    let depth = 3 * k;
    let filters = &request.filters;
    let vector_filter = VectorFilter {
        timestamp_gte: filters.timestamp_gte,
        timestamp_lte: filters.timestamp_lte,
        ..Default::default()
    };
    match mode {
        Mode::Text => {
            let Some(text) = request.q.text.clone().filter(|t| !t.trim().is_empty()) else {
                return Ok(BackendOutput::Skipped("no q.text".into()));
            };
            let partitions = retrieve::select_partitions(topic, filters.partitions.as_deref())?;
            let query = if filters.timestamp_gte.is_some() || filters.timestamp_lte.is_some() {
                TextQuery::Dsl(json!({"bool": {
                    "must": [{"query_string": {"query": text}}],
                    "filter": [{"range": {"timestamp": {
                        "gte": filters.timestamp_gte, "lte": filters.timestamp_lte }}}],
                }}))
            } else {
                TextQuery::QueryString(text)
            };
            let read = Read::Text {
                query,
                k: depth,
                records: false,
            };
            let found = gather(&state.node, topic, &partitions, read, deadline).await?;
            Ok(BackendOutput::Hits {
                hits: found.hits,
                from_cache: None,
                stale: failures_json(&found.failures),
            })
        }
        Mode::Vector => {
            let Some(text) = request
                .q
                .semantic
                .clone()
                .or_else(|| request.q.text.clone())
                .filter(|t| !t.trim().is_empty())
            else {
                return Ok(BackendOutput::Skipped("no q.semantic or q.text".into()));
            };
            retrieve::require_vectors(topic)?;
            let (vector, from_cache) = retrieve::embed_query(&state.node, &text).await?;
            let partitions = retrieve::select_partitions(topic, filters.partitions.as_deref())?;
            let read = Read::Vector {
                vector: vector.to_vec(),
                k: depth,
                filter: vector_filter,
                exact: false,
            };
            let found = gather(&state.node, topic, &partitions, read, deadline).await?;
            Ok(BackendOutput::Hits {
                hits: found.hits,
                from_cache: Some(from_cache),
                stale: failures_json(&found.failures),
            })
        }
        Mode::Sql => {
            let Some(sql) = request.q.sql.clone().filter(|s| !s.trim().is_empty()) else {
                return Ok(BackendOutput::Skipped("no q.sql".into()));
            };
            let response = state
                .sql
                .execute(
                    &state.node,
                    &SqlRequest {
                        query: sql,
                        limit: Some(depth),
                        timeout_secs: None,
                        fresh_wait: Some(fresh_wait),
                    },
                )
                .await?;
            let mut hits = Vec::with_capacity(response.rows.len());
            for row in &response.rows {
                let (Some(p), Some(o)) = (
                    row.get("_partition").and_then(Value::as_u64),
                    row.get("_offset").and_then(Value::as_u64),
                ) else {
                    // Chronik mapped such rows to partition 0 and offset = row number, which
                    // pointed at unrelated records; refusing is the only honest answer.
                    return Err(Error::bad_request(
                        "sql mode needs _partition and _offset in the SELECT list, to know which records the rows are",
                    ));
                };
                if filters
                    .partitions
                    .as_ref()
                    .is_some_and(|ps| !ps.contains(&(p as u32)))
                {
                    continue;
                }
                hits.push(Candidate {
                    partition: p as u32,
                    offset: o,
                    score: 0.0,
                });
            }
            Ok(BackendOutput::Hits {
                hits,
                from_cache: None,
                stale: response.shards["failures"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            })
        }
        Mode::Fetch => {
            let Some(fetch) = request.q.fetch.clone() else {
                return Ok(BackendOutput::Skipped("no q.fetch".into()));
            };
            if fetch.partition >= topic.partition_count {
                return Err(Error::bad_request(format!(
                    "fetch partition {} does not exist in {:?}",
                    fetch.partition, topic.name
                )));
            }
            let hit = Candidate {
                partition: fetch.partition,
                offset: fetch.offset,
                score: 1.0,
            };
            let found = records_of(&state.node, topic, &[hit], deadline).await?;
            Ok(BackendOutput::Hits {
                hits: if found.records.is_empty() {
                    vec![]
                } else {
                    vec![hit]
                },
                from_cache: None,
                stale: failures_json(&found.failures),
            })
        }
    }
}

/// A backend's missing or stale partitions, as `_shards.failures[]` entries.
fn failures_json(failures: &[PartitionFailure]) -> Vec<Value> {
    failures.iter().map(PartitionFailure::to_failure).collect()
}
