//! Reading partitions this node does not hold: which replica reads each one (here when this
//! node has a replica, else the peer with the fewest reads in flight from here), one call per
//! chosen peer in parallel under a deadline, one retry of a failed partition on another
//! replica, and the partitions no replica answered for, so an answer is never silently partial.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cluster::freshness::PartitionFailure;
use crate::cluster::network::TOKEN_HEADER;
use crate::cluster::types::NodeId;
use crate::error::{Error, Result};
use crate::node::{Node, Topic};

/// How long a coordinator waits for peers when the request names no deadline.
pub const FANOUT_DEADLINE: Duration = Duration::from_secs(10);

/// A partition read on a peer: its replicas in the order they are tried.
#[derive(Debug, Clone)]
pub struct RemotePartition {
    pub partition: u32,
    pub replicas: Vec<NodeId>,
}

/// Which partitions of a read this node answers itself and which go to peers.
#[derive(Debug, Clone, Default)]
pub struct ReadPlan {
    pub local: Vec<u32>,
    pub remote: Vec<RemotePartition>,
}

impl ReadPlan {
    pub fn total(&self) -> usize {
        self.local.len() + self.remote.len()
    }
}

/// Reads in flight from this node to each peer: the "least loaded" of replica choice.
#[derive(Default)]
pub struct PeerLoad(Mutex<HashMap<NodeId, usize>>);

impl PeerLoad {
    fn of(&self, peer: NodeId) -> usize {
        self.0.lock().get(&peer).copied().unwrap_or(0)
    }

    fn start(&self, peer: NodeId) -> InFlight<'_> {
        *self.0.lock().entry(peer).or_default() += 1;
        InFlight { load: self, peer }
    }
}

/// Counts one call as in flight until dropped (also when its future is cancelled).
struct InFlight<'a> {
    load: &'a PeerLoad,
    peer: NodeId,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(n) = self.load.0.lock().get_mut(&self.peer) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Why a peer gave no answer for its partitions.
#[derive(Debug)]
pub enum PeerError {
    /// The peer refused the request itself (a bad query): every replica would say the same,
    /// so the caller gets the error instead of a partial answer.
    Refused(Error),
    /// Unreachable, timed out, or failed: another replica may answer.
    Failed(String),
}

impl Node {
    /// Splits `wanted` partitions of `topic` into those read here and those read on peers,
    /// each with its replicas ordered: fewest reads in flight from here first, ties spread
    /// by partition so the peers share the work.
    pub fn plan_reads(&self, topic: &Topic, wanted: &[u32]) -> ReadPlan {
        let me = self.config.node_id;
        let mut plan = ReadPlan::default();
        for &partition in wanted {
            if topic.local(partition).is_some() {
                plan.local.push(partition);
                continue;
            }
            let mut replicas = topic.replicas_of(partition, me);
            replicas.retain(|&r| r != me);
            // Start the list at a different replica for each partition, then prefer the peers
            // with the fewest reads in flight (a stable sort keeps that spread among equals).
            let n = replicas.len().max(1);
            replicas.rotate_left(partition as usize % n);
            replicas.sort_by_key(|r| self.peer_load.of(*r));
            plan.remote.push(RemotePartition {
                partition,
                replicas,
            });
        }
        plan
    }

    /// Runs `call(peer, raft address, partitions)` once per chosen peer, in parallel, until
    /// `deadline`; a partition whose peer failed is tried once more on its next replica.
    /// Returns the answers and the partitions no replica answered for, or the first refusal.
    pub async fn fan_out<A, F, Fut>(
        &self,
        topic: &str,
        remote: &[RemotePartition],
        deadline: Instant,
        call: F,
    ) -> Result<(Vec<A>, Vec<PartitionFailure>)>
    where
        F: Fn(String, Vec<u32>, Duration) -> Fut,
        Fut: Future<Output = std::result::Result<A, PeerError>>,
    {
        let mut answers = Vec::new();
        let mut failures = Vec::new();
        let mut pending: Vec<(&RemotePartition, usize, String)> = remote
            .iter()
            .map(|r| (r, 0, String::from("no replica")))
            .collect();
        for attempt in 0..2 {
            let mut by_peer: BTreeMap<NodeId, Vec<&RemotePartition>> = BTreeMap::new();
            for (r, _, why) in pending.drain(..) {
                match r.replicas.get(attempt) {
                    Some(&peer) => by_peer.entry(peer).or_default().push(r),
                    None => failures.push(PartitionFailure::unavailable(
                        topic,
                        r.partition,
                        format!("no replica answered: {why}"),
                    )),
                }
            }
            let calls = by_peer.into_iter().map(|(peer, group)| {
                let partitions: Vec<u32> = group.iter().map(|r| r.partition).collect();
                let addr = self.peers.address(peer).map(str::to_string);
                let left = deadline.saturating_duration_since(Instant::now());
                let in_flight = self.peer_load.start(peer);
                let call = &call;
                async move {
                    let _in_flight = in_flight;
                    let result = match addr {
                        None => Err(PeerError::Failed(format!(
                            "node {peer} is not a configured member"
                        ))),
                        Some(_) if left.is_zero() => {
                            Err(PeerError::Failed("the deadline passed".to_string()))
                        }
                        Some(addr) => {
                            match tokio::time::timeout(left, call(addr, partitions, left)).await {
                                Ok(result) => result,
                                Err(_) => Err(PeerError::Failed(format!(
                                    "no answer within {} ms",
                                    left.as_millis()
                                ))),
                            }
                        }
                    };
                    (peer, group, result)
                }
            });
            for (peer, group, result) in futures::future::join_all(calls).await {
                match result {
                    Ok(answer) => answers.push(answer),
                    Err(PeerError::Refused(e)) => return Err(e),
                    Err(PeerError::Failed(why)) => {
                        metrics::counter!("sv_fanout_failures_total").increment(1);
                        let why = format!("node {peer}: {why}");
                        pending.extend(group.into_iter().map(|r| (r, attempt + 1, why.clone())));
                    }
                }
            }
            if pending.is_empty() {
                break;
            }
        }
        for (r, _, why) in pending {
            failures.push(PartitionFailure::unavailable(
                topic,
                r.partition,
                format!("no replica answered: {why}"),
            ));
        }
        failures.sort_by_key(|f| f.partition);
        Ok((answers, failures))
    }
}

/// POSTs `body` as JSON to `path` on a peer's raft port with the cluster token. A 400 answer
/// is the request's fault ([`PeerError::Refused`]); anything else that is not a 2xx (a 404
/// for a partition the peer does not hold, a 503, a wrong token) is the peer's
/// ([`PeerError::Failed`]).
pub async fn post_peer<B: Serialize>(
    node: &Node,
    addr: &str,
    path: &str,
    body: &B,
    timeout: Duration,
) -> std::result::Result<reqwest::Response, PeerError> {
    let url = format!("http://{addr}{path}");
    let response = node
        .peers
        .http
        .post(&url)
        .header(TOKEN_HEADER, &*node.peers.token)
        .timeout(timeout)
        .json(body)
        .send()
        .await
        .map_err(|e| PeerError::Failed(format!("{url}: {e}")))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or(text);
    if status == reqwest::StatusCode::BAD_REQUEST {
        Err(PeerError::Refused(Error::bad_request(message)))
    } else {
        Err(PeerError::Failed(format!("HTTP {status}: {message}")))
    }
}

/// [`post_peer`] with a JSON answer.
pub async fn post_peer_json<B: Serialize, A: DeserializeOwned>(
    node: &Node,
    addr: &str,
    path: &str,
    body: &B,
    timeout: Duration,
) -> std::result::Result<A, PeerError> {
    let response = post_peer(node, addr, path, body, timeout).await?;
    response
        .json()
        .await
        .map_err(|e| PeerError::Failed(format!("unreadable answer from {addr}: {e}")))
}
