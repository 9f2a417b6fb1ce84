//! The query parts a coordinator sends to the owners of partitions it does not hold
//! (`POST /internal/read` on the raft port, behind the cluster token), and their execution on
//! the owner's replicas. The owner first brings its replicas up to their leaders (the same
//! freshness check as a local read) and names the ones it could not.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cluster::freshness::{FRESHNESS_WAIT, PartitionFailure, Reads, partitions_of};
use crate::error::{Error, Result};
use crate::node::{Node, Topic};
use crate::record::LogRecord;
use crate::router::AppState;
use crate::router::retrieve::{self, Candidate};
use crate::shard::ShardStats;
use crate::shard::vector::filter::VectorFilter;

/// Routes served on the raft port for peers' queries.
pub fn internal_routes(state: AppState) -> Router {
    Router::new()
        .route("/internal/read", post(read))
        .route("/internal/scan", post(crate::router::sql_remote::scan))
        .with_state(state)
}

/// A text query as the user gave it: compiled on each owner against its own index.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextQuery {
    Dsl(Value),
    QueryString(String),
}

impl TextQuery {
    pub fn compile(&self, topic: &Topic) -> Result<Box<dyn tantivy::query::Query>> {
        match self {
            TextQuery::Dsl(dsl) => retrieve::text_query(topic, dsl),
            TextQuery::QueryString(q) => retrieve::text_query_string(topic, q),
        }
    }
}

/// One read over some partitions of one topic.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartitionRead {
    pub topic: String,
    pub partitions: Vec<u32>,
    pub read: Read,
    /// How long the owner may wait for its replicas to catch up with their leaders: part of
    /// the coordinator's deadline, so a stale replica is reported rather than timed out.
    pub fresh_wait_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Read {
    /// The best `k` by BM25 and the total number of matches; with the hits' stored records
    /// when `records` (saves a second round trip for a page of results).
    Text {
        query: TextQuery,
        k: usize,
        records: bool,
    },
    /// The best `k` by cosine similarity to `vector` (embedded once, by the coordinator).
    Vector {
        vector: Vec<f32>,
        k: usize,
        filter: VectorFilter,
        exact: bool,
    },
    /// Stored records by (partition, offset).
    Records { offsets: Vec<(u32, u64)> },
    /// Each partition's counters.
    Stats,
}

/// What the owner found, with the replicas it could not bring up to their leaders.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ReadAnswer {
    pub hits: Vec<Candidate>,
    /// Text: matches over the partitions. Vector: vectors indexed in them.
    pub total: u64,
    pub records: Vec<(u32, u64, LogRecord)>,
    pub loading_partitions: Vec<u32>,
    pub stats: Vec<ShardStats>,
    pub stale: Vec<PartitionFailure>,
}

async fn read(
    State(state): State<AppState>,
    Json(request): Json<PartitionRead>,
) -> Result<Json<ReadAnswer>> {
    Ok(Json(execute(&state.node, request).await?))
}

/// Runs `request` on this node's replicas (every partition it names must be held here).
pub async fn execute(node: &Node, request: PartitionRead) -> Result<ReadAnswer> {
    let topic = node.topic_holding(&request.topic, &request.partitions)?;
    let wait = Duration::from_millis(request.fresh_wait_ms).min(FRESHNESS_WAIT);
    read_local(node, topic, request.partitions, request.read, wait).await
}

/// `read` over `partitions`, all held here: text and record reads first bring the replicas
/// up to their leaders (within `fresh_wait`) and name the ones still behind.
pub async fn read_local(
    node: &Node,
    topic: Arc<Topic>,
    partitions: Vec<u32>,
    read: Read,
    fresh_wait: Duration,
) -> Result<ReadAnswer> {
    let stale = match read {
        Read::Stats | Read::Vector { .. } => Vec::new(),
        Read::Text { .. } | Read::Records { .. } => {
            let wanted = partitions_of(&topic.name, &partitions);
            node.await_fresh(&wanted, Reads::Searchable, fresh_wait)
                .await
        }
    };
    let mut answer = tokio::task::spawn_blocking(move || run_local(&topic, &partitions, read))
        .await
        .map_err(Error::internal)??;
    answer.stale = stale;
    Ok(answer)
}

/// The read over local partitions, on the calling (blocking) thread.
fn run_local(topic: &Topic, partitions: &[u32], read: Read) -> Result<ReadAnswer> {
    let mut answer = ReadAnswer::default();
    match read {
        Read::Text { query, k, records } => {
            let query = query.compile(topic)?;
            let top = retrieve::text_top(topic, query.as_ref(), k, partitions, records)?;
            answer.hits = top.hits;
            answer.total = top.total;
            answer.records = top.records;
        }
        Read::Vector {
            vector,
            k,
            filter,
            exact,
        } => {
            let top = retrieve::vector_top(topic, &vector, k, &filter, partitions, exact)?;
            answer.hits = top.hits;
            answer.total = top.total_vectors;
            answer.loading_partitions = top.loading_partitions;
        }
        Read::Records { offsets } => {
            // The coordinator sends every owner the whole list; each loads its own.
            let wanted: Vec<Candidate> = offsets
                .into_iter()
                .filter(|(partition, _)| partitions.contains(partition))
                .map(|(partition, offset)| Candidate {
                    partition,
                    offset,
                    score: 0.0,
                })
                .collect();
            answer.records = retrieve::load_records(topic, &wanted)?
                .into_iter()
                .map(|((p, o), r)| (p, o, r))
                .collect();
        }
        Read::Stats => {
            answer.stats = partitions
                .iter()
                .filter_map(|&p| topic.local(p))
                .map(|p| p.shard.stats())
                .collect();
        }
    }
    Ok(answer)
}
