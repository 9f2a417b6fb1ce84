//! One orchestrator backend: a (topic × mode) pair's candidates, from text, vector, SQL or
//! a fetch, each waiting for its replicas' freshness within the time it was given.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::QueryRequest;
use super::rank::Mode;
use crate::cluster::freshness::{Reads, StalePartition};
use crate::error::{Error, Result};
use crate::node::Topic;
use crate::router::AppState;
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
    fresh_wait: Duration,
) -> Result<BackendOutput> {
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
            let wanted: Vec<(String, u32)> = partitions
                .iter()
                .map(|&p| (topic.name.clone(), p as u32))
                .collect();
            let stale = state
                .node
                .await_fresh(&wanted, Reads::Searchable, fresh_wait)
                .await;
            let topic = topic.clone();
            let filters = filters.clone();
            let hits = tokio::task::spawn_blocking(move || {
                let base = retrieve::text_query_string(&topic, &text)?;
                let query: Box<dyn tantivy::query::Query> =
                    if filters.timestamp_gte.is_some() || filters.timestamp_lte.is_some() {
                        let range = retrieve::text_query(
                            &topic,
                            &json!({"range": {"timestamp": {
                                "gte": filters.timestamp_gte, "lte": filters.timestamp_lte }}}),
                        )?;
                        Box::new(tantivy::query::BooleanQuery::intersection(vec![
                            base, range,
                        ]))
                    } else {
                        base
                    };
                retrieve::text_top(&topic, query.as_ref(), depth, &partitions)
            })
            .await
            .map_err(Error::internal)??;
            Ok(BackendOutput::Hits {
                hits,
                from_cache: None,
                stale: stale.iter().map(StalePartition::to_failure).collect(),
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
            let topic = topic.clone();
            let partitions_filter = filters.partitions.clone();
            let hits = tokio::task::spawn_blocking(move || {
                let partitions = retrieve::select_partitions(&topic, partitions_filter.as_deref())?;
                retrieve::vector_top(&topic, &vector, depth, &vector_filter, &partitions, false)
                    .map(|top| top.hits)
            })
            .await
            .map_err(Error::internal)??;
            Ok(BackendOutput::Hits {
                hits,
                from_cache: Some(from_cache),
                stale: Vec::new(),
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
            if fetch.partition as usize >= topic.partitions.len() {
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
            let stale = state
                .node
                .await_fresh(
                    &[(topic.name.clone(), fetch.partition)],
                    Reads::Searchable,
                    fresh_wait,
                )
                .await;
            let topic = topic.clone();
            let found = tokio::task::spawn_blocking(move || retrieve::load_records(&topic, &[hit]))
                .await
                .map_err(Error::internal)??;
            Ok(BackendOutput::Hits {
                hits: if found.is_empty() { vec![] } else { vec![hit] },
                from_cache: None,
                stale: stale.iter().map(StalePartition::to_failure).collect(),
            })
        }
    }
}
