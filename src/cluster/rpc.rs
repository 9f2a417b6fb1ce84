//! The raft port: raft RPCs from peers, and the internal calls a node makes on another (a write
//! forwarded to the partition leader, a metadata command forwarded to the metadata leader,
//! the raft state shown by `cluster status`, the counts a follower checks its freshness
//! against), and the run records the harness publishes for the node's report. Every request
//! must carry the cluster token.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::cluster::network::{META_GROUP, PeerClient, TOKEN_HEADER};
use crate::cluster::types::{
    Appended, MetaCommand, MetaRaftTypes, MetaResponse, NodeId, PartitionRaftTypes, WriteOutcome,
};
use crate::error::{Error, Result};
use crate::node::Node;
use crate::record::LogRecord;

/// Raft append requests carry up to 16 entries of 8,192 records.
const MAX_RAFT_BODY: usize = 512 * 1024 * 1024;

/// A partition write forwarded to the node that leads the partition.
#[derive(Debug, Serialize, Deserialize)]
pub struct ForwardedWrite {
    pub topic: String,
    pub partition: u32,
    pub records: Arc<Vec<LogRecord>>,
}

/// The raft port's routes, plus `reads`: the query parts a coordinator sends to the owners of
/// partitions it does not hold (served by the router, which owns query execution). Every
/// route is behind the token check.
pub fn app(node: Arc<Node>, reads: Router) -> Router {
    Router::new()
        .route("/raft/append/{*group}", post(append))
        .route("/raft/vote/{*group}", post(vote))
        .route("/raft/snapshot/{*group}", post(snapshot))
        .route("/internal/write", post(write))
        .route("/internal/meta", post(meta))
        .route("/internal/status", get(status))
        .route("/internal/marks", get(marks))
        .route("/internal/membership", post(membership))
        .route("/internal/runs/{id}", put(crate::report::receive::put_run))
        .with_state(node.clone())
        .merge(reads)
        .layer(DefaultBodyLimit::max(MAX_RAFT_BODY))
        .layer(middleware::from_fn_with_state(node, require_token))
}

/// Rejects requests without the cluster token, so a stray client on the network cannot send
/// raft messages or writes.
async fn require_token(State(node): State<Arc<Node>>, request: Request, next: Next) -> Response {
    let expected = node.config.cluster.token.as_bytes();
    let given = request
        .headers()
        .get(TOKEN_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if !constant_time_eq(given, expected) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({
                "error": format!("missing or wrong {TOKEN_HEADER}: cluster-internal endpoints need the cluster token"),
                "error_type": "unauthorized",
            })),
        )
            .into_response();
    }
    next.run(request).await
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Replies with openraft's `Result` as JSON; the transport maps `Err` to a remote error.
fn reply<T: Serialize, E: Serialize>(result: std::result::Result<T, E>) -> Response {
    Json(result).into_response()
}

async fn append(
    State(node): State<Arc<Node>>,
    Path(group): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response> {
    admit(&node, &group)?;
    if group == META_GROUP {
        let rpc: AppendEntriesRequest<MetaRaftTypes> = parse(&body)?;
        return Ok(reply(node.meta_raft().append_entries(rpc).await));
    }
    let raft = node.partition_raft(&group)?;
    let rpc: AppendEntriesRequest<PartitionRaftTypes> = parse(&body)?;
    Ok(reply(raft.append_entries(rpc).await))
}

async fn vote(
    State(node): State<Arc<Node>>,
    Path(group): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response> {
    admit(&node, &group)?;
    let rpc: VoteRequest<NodeId> = parse(&body)?;
    if group == META_GROUP {
        return Ok(reply(node.meta_raft().vote(rpc).await));
    }
    Ok(reply(node.partition_raft(&group)?.vote(rpc).await))
}

async fn snapshot(
    State(node): State<Arc<Node>>,
    Path(group): Path<String>,
    body: axum::body::Bytes,
) -> Result<Response> {
    admit(&node, &group)?;
    if group == META_GROUP {
        let rpc: InstallSnapshotRequest<MetaRaftTypes> = parse(&body)?;
        return Ok(reply(node.meta_raft().install_snapshot(rpc).await));
    }
    let raft = node.partition_raft(&group)?;
    let rpc: InstallSnapshotRequest<PartitionRaftTypes> = parse(&body)?;
    Ok(reply(raft.install_snapshot(rpc).await))
}

async fn write(
    State(node): State<Arc<Node>>,
    Json(w): Json<ForwardedWrite>,
) -> Result<Json<WriteOutcome<Appended>>> {
    let topic = match node.topic(&w.topic) {
        Ok(t) => t,
        // Created in the metadata log but still opening here (its groups can already have
        // leaders): nothing was appended, so the sender may retry.
        Err(_) if node.meta.topic(&w.topic).is_some() => {
            return Ok(Json(WriteOutcome::NotLeader(None)));
        }
        Err(e) => return Err(e),
    };
    if w.partition >= topic.partition_count {
        return Err(Error::NotFound(format!(
            "topic {:?} has no partition {}",
            w.topic, w.partition
        )));
    }
    // No replica here (the sender's leader guess was wrong): nothing was appended, so the
    // sender tries another replica.
    let Some(partition) = topic.local(w.partition) else {
        return Ok(Json(WriteOutcome::NotLeader(None)));
    };
    // Only a local attempt: the sender follows the leader hint, so requests never bounce.
    let outcome = partition.write(w.records).await?;
    Ok(Json(outcome))
}

/// A membership step for a rejoining member, run if this node leads the group.
async fn membership(
    State(node): State<Arc<Node>>,
    Json(step): Json<crate::cluster::rejoin::MembershipStep>,
) -> Result<Json<WriteOutcome<()>>> {
    Ok(Json(node.membership_step(&step).await?))
}

/// A rejoining member serves a group's raft messages only once the leader has removed it from
/// the group: before that, a leader would find the wiped log behind what it had matched.
fn admit(node: &Node, group: &str) -> Result<()> {
    if node.rejoin.admits(group) {
        Ok(())
    } else {
        Err(Error::Unavailable(format!(
            "node {} is rejoining; group {group} is not open to raft messages yet",
            node.config.node_id
        )))
    }
}

async fn meta(
    State(node): State<Arc<Node>>,
    Json(command): Json<MetaCommand>,
) -> Result<Json<WriteOutcome<MetaResponse>>> {
    Ok(Json(node.meta_propose_local(command).await?))
}

async fn status(State(node): State<Arc<Node>>) -> Json<serde_json::Value> {
    Json(node.raft_status())
}

/// What the asked partitions hold, of those this node leads, for a peer's read freshness
/// check: `?partitions=topic/0,topic/3` (topic names never hold `,` or `/`).
async fn marks(
    State(node): State<Arc<Node>>,
    Query(params): Query<std::collections::HashMap<String, String>>,
) -> Result<Json<Vec<crate::cluster::freshness::LeaderMark>>> {
    let list = params.get("partitions").map_or("", String::as_str);
    let mut wanted = Vec::new();
    for item in list.split(',').filter(|i| !i.is_empty()) {
        let parsed = item
            .rsplit_once('/')
            .and_then(|(topic, p)| Some((topic.to_string(), p.parse::<u32>().ok()?)));
        wanted.push(parsed.ok_or_else(|| {
            Error::bad_request(format!("partitions: {item:?} is not topic/partition"))
        })?);
    }
    Ok(Json(node.leader_marks(&wanted).await))
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T> {
    serde_json::from_slice(body).map_err(|e| Error::bad_request(format!("bad raft request: {e}")))
}

/// How a forwarded call ended, as far as the sender can know.
pub enum Forwarded<T> {
    Done(T),
    /// The peer could not be reached at all: nothing was sent, so retrying cannot duplicate.
    NotSent(String),
}

/// POSTs `body` to `path` on the peer at `raft_addr` with the token.
pub async fn forward<B: Serialize, T: DeserializeOwned>(
    peers: &PeerClient,
    raft_addr: &str,
    path: &str,
    body: &B,
    timeout: Duration,
) -> Result<Forwarded<T>> {
    let url = format!("http://{raft_addr}{path}");
    let sent = peers
        .http
        .post(&url)
        .header(TOKEN_HEADER, &*peers.token)
        .timeout(timeout)
        .json(body)
        .send()
        .await;
    let response = match sent {
        Ok(r) => r,
        Err(e) if e.is_connect() => return Ok(Forwarded::NotSent(format!("{url}: {e}"))),
        // Sent but no answer: the peer may have committed it, so the caller must not retry.
        Err(e) => {
            return Err(Error::Unavailable(format!(
                "{url}: {e}; the write may or may not have been committed"
            )));
        }
    };
    read_answer(&url, response).await
}

/// GETs `path` on the peer at `raft_addr` with the token.
pub async fn forward_get<T: DeserializeOwned>(
    peers: &PeerClient,
    raft_addr: &str,
    path: &str,
    timeout: Duration,
) -> Result<Forwarded<T>> {
    let url = format!("http://{raft_addr}{path}");
    let response = match peers
        .http
        .get(&url)
        .header(TOKEN_HEADER, &*peers.token)
        .timeout(timeout)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return Ok(Forwarded::NotSent(format!("{url}: {e}"))),
    };
    read_answer(&url, response).await
}

/// A peer's answer as `T`; a non-2xx status is an error carrying the peer's message.
async fn read_answer<T: DeserializeOwned>(
    url: &str,
    response: reqwest::Response,
) -> Result<Forwarded<T>> {
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        return Err(Error::Unavailable(format!("{url}: HTTP {status}: {text}")));
    }
    let value = response
        .json()
        .await
        .map_err(|e| Error::Unavailable(format!("{url}: unreadable answer: {e}")))?;
    Ok(Forwarded::Done(value))
}
