//! How a node acts on groups it may not lead: a write goes to each partition's leader and a
//! metadata command to the metadata leader, here or on a peer, following leader hints and
//! waiting out elections.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cluster::network::PeerClient;
use crate::cluster::rpc::{Forwarded, ForwardedWrite, forward, forward_get};
use crate::cluster::types::{
    Appended, MetaCommand, MetaRaft, MetaResponse, NodeId, PartitionRaft, WriteOutcome,
};
use crate::config::NodeConfig;
use crate::error::{Error, Result};
use crate::node::{Node, PartitionWrite, RECORDS_PER_ENTRY, Topic, partition_for_key};
use crate::record::LogRecord;

/// How long a write or metadata command waits for a leader (an election takes about a second).
const LEADER_WAIT: Duration = Duration::from_secs(10);
/// Per forwarded call: the leader's commit timeout ([`crate::cluster::COMMIT_TIMEOUT`]) plus the trip.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(12);

/// Whether this cluster member must (re)join through the group leaders (`cluster::rejoin`):
/// it starts with an empty data directory although the cluster knows it held data (it is in
/// the metadata's `joined` set, or the metadata leader has replicated to it), so its log and
/// raft votes are gone and voting again could let a stale node win an election and drop
/// committed entries (and makes openraft's leader panic on the log reverting); or it was
/// added to the members of a running cluster whose metadata group does not have it yet. A
/// member of a cluster still forming (first start, or peers that formed with it in their
/// member list before it came up) simply starts.
pub async fn is_wiped_member(config: &NodeConfig, peers: &PeerClient) -> Result<bool> {
    // A rejoin cut short (a crash, a stop) resumes: each of its steps is idempotent.
    if config
        .data_dir
        .join(crate::cluster::rejoin::REJOIN_MARKER)
        .exists()
    {
        return Ok(true);
    }
    let meta_log = config.data_dir.join("meta").join("raft");
    let has_data = std::fs::read_dir(&meta_log).is_ok_and(|mut d| d.next().is_some());
    if !config.cluster.is_clustered() || has_data {
        return Ok(false);
    }
    let me = config.node_id.to_string();
    for member in config
        .cluster
        .members
        .iter()
        .filter(|m| m.id != config.node_id)
    {
        let Ok(Forwarded::Done(status)) = forward_get::<Value>(
            peers,
            &member.raft,
            "/internal/status",
            Duration::from_secs(2),
        )
        .await
        else {
            continue;
        };
        let meta = status["groups"]
            .as_array()
            .and_then(|gs| gs.iter().find(|g| g["group"] == "meta"));
        let joined = status["joined"]
            .as_array()
            .is_some_and(|ids| ids.iter().any(|i| i.as_u64() == Some(config.node_id)));
        // A member added to the config of a running cluster: the metadata group exists
        // without it, so it joins the same way (its removal is a no-op).
        let voters: Vec<u64> = meta
            .and_then(|g| g["voters"].as_array())
            .map(|v| v.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        let new_to_a_running_cluster = !voters.is_empty() && !voters.contains(&config.node_id);
        if joined
            || new_to_a_running_cluster
            || meta.and_then(|g| g["matched"][&me].as_u64()).is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Node {
    /// Records in the metadata that this member holds data, once; retried until committed.
    pub(crate) fn spawn_join_record(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let Some(node) = weak.upgrade() else { break };
                let id = node.config.node_id;
                if node.meta.joined().contains(&id) {
                    break;
                }
                if let Err(e) = node.meta_propose(MetaCommand::MemberJoined { id }).await {
                    tracing::debug!(error = %e, "recording membership failed; retrying");
                }
            }
        });
    }

    pub fn meta_raft(&self) -> &MetaRaft {
        &self.meta.raft
    }

    /// The raft group named `topic/partition` on this node.
    pub fn partition_raft(&self, group: &str) -> Result<PartitionRaft> {
        let (topic, partition) = group
            .rsplit_once('/')
            .and_then(|(t, p)| Some((t, p.parse::<u32>().ok()?)))
            .ok_or_else(|| Error::bad_request(format!("bad raft group {group:?}")))?;
        let topic = self.topic(topic).map_err(|_| {
            // Raft messages for a topic this node has not opened yet: the sender retries.
            Error::Unavailable(format!("group {group}: topic not open here yet"))
        })?;
        topic
            .local(partition)
            .map(|p| p.raft.clone())
            .ok_or_else(|| Error::NotFound(format!("group {group} does not exist here")))
    }

    fn raft_addr(&self, id: NodeId) -> Result<String> {
        self.peers
            .address(id)
            .map(str::to_string)
            .ok_or_else(|| Error::Internal(format!("leader {id} is not a configured member")))
    }

    /// Proposes on this node only.
    pub async fn meta_propose_local(
        &self,
        command: MetaCommand,
    ) -> Result<WriteOutcome<MetaResponse>> {
        self.meta.propose(command).await
    }

    /// Commits a metadata command wherever the metadata leader is.
    pub async fn meta_propose(&self, command: MetaCommand) -> Result<MetaResponse> {
        let deadline = Instant::now() + LEADER_WAIT;
        let mut hint = None;
        loop {
            let outcome = match hint.filter(|&l| l != self.config.node_id) {
                None => self.meta.propose(command.clone()).await?,
                Some(leader) => {
                    let addr = self.raft_addr(leader)?;
                    match forward(
                        &self.peers,
                        &addr,
                        "/internal/meta",
                        &command,
                        FORWARD_TIMEOUT,
                    )
                    .await?
                    {
                        Forwarded::Done(outcome) => outcome,
                        Forwarded::NotSent(_) => WriteOutcome::NotLeader(None),
                    }
                }
            };
            match outcome {
                WriteOutcome::Applied(response) => return Ok(response),
                WriteOutcome::NotLeader(leader) => hint = leader,
            }
            if Instant::now() > deadline {
                return Err(Error::Unavailable(format!(
                    "no metadata leader within {LEADER_WAIT:?}: is a majority of the cluster up?"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Writes records to their partitions; returns when every batch is committed on a
    /// majority of its replicas and applied.
    pub async fn write(&self, topic: &str, records: Vec<LogRecord>) -> Result<Vec<PartitionWrite>> {
        let topic = self.topic(topic)?;
        let n = topic.partition_count;
        let mut by_partition: Vec<Vec<LogRecord>> = vec![Vec::new(); n as usize];
        for record in records {
            by_partition[partition_for_key(&record.host, n) as usize].push(record);
        }
        let mut writes = Vec::new();
        for (partition, mut records) in (0..n).zip(by_partition) {
            while !records.is_empty() {
                let rest = records.split_off(records.len().min(RECORDS_PER_ENTRY));
                let chunk = Arc::new(std::mem::replace(&mut records, rest));
                let topic = &topic;
                writes.push(async move {
                    let result = self.write_partition(topic, partition, chunk).await;
                    (partition, result)
                });
            }
        }
        let mut results: Vec<PartitionWrite> = Vec::new();
        let mut first_error = None;
        for (partition, result) in futures::future::join_all(writes).await {
            match result {
                Ok(Appended { base_offset, count }) => results.push(PartitionWrite {
                    partition,
                    base_offset,
                    count,
                }),
                Err(e) => first_error = first_error.or(Some(e)),
            }
        }
        metrics::counter!("chronik_ingest_records_total")
            .increment(results.iter().map(|w| w.count).sum());
        match first_error {
            // Some partitions may have committed: the error says so, so a client can retry knowing
            // a retry of the whole batch can duplicate the committed part.
            Some(e) if results.is_empty() => Err(e),
            Some(e) => Err(Error::Unavailable(format!(
                "write partly failed: batches for partitions {:?} committed, others not: {e}",
                results.iter().map(|w| w.partition).collect::<Vec<_>>()
            ))),
            None => Ok(results),
        }
    }

    /// One batch to one partition's leader. Retries only where the batch cannot have been
    /// appended (no leader, a refused connection, a leader hint), never after a lost answer.
    /// A partition with a replica here learns its leader from the local raft; one without
    /// starts at its preferred leader and follows the hints of the replicas it asks.
    async fn write_partition(
        &self,
        topic: &Topic,
        partition: u32,
        records: Arc<Vec<LogRecord>>,
    ) -> Result<Appended> {
        let local = topic.local(partition);
        let replicas = topic.replicas_of(partition, self.config.node_id);
        let deadline = Instant::now() + LEADER_WAIT;
        let mut last_problem = String::from("no leader elected yet");
        let mut hint: Option<NodeId> = None;
        let mut attempt = 0usize;
        loop {
            let leader = match local {
                Some(p) => p.leader(),
                None => hint.or_else(|| replicas.get(attempt % replicas.len().max(1)).copied()),
            };
            let outcome = match (leader, local) {
                (Some(l), Some(p)) if l == self.config.node_id => p.write(records.clone()).await?,
                (Some(l), _) => {
                    let body = ForwardedWrite {
                        topic: topic.name.clone(),
                        partition,
                        records: records.clone(),
                    };
                    let addr = self.raft_addr(l)?;
                    match forward(
                        &self.peers,
                        &addr,
                        "/internal/write",
                        &body,
                        FORWARD_TIMEOUT,
                    )
                    .await?
                    {
                        Forwarded::Done(outcome) => outcome,
                        Forwarded::NotSent(why) => {
                            last_problem = why;
                            WriteOutcome::NotLeader(None)
                        }
                    }
                }
                (None, _) => WriteOutcome::NotLeader(None),
            };
            match outcome {
                WriteOutcome::Applied(appended) => return Ok(appended),
                // A replica that knows another leader: ask it next (not the one just asked).
                WriteOutcome::NotLeader(Some(l)) if Some(l) != leader => hint = Some(l),
                WriteOutcome::NotLeader(_) => {
                    hint = None;
                    attempt += 1;
                }
            }
            if Instant::now() > deadline {
                return Err(Error::Unavailable(format!(
                    "partition {partition} of {:?} has no reachable leader after {LEADER_WAIT:?} ({last_problem}); nothing was written to it",
                    topic.name
                )));
            }
            // The local raft learns of a new leader within a heartbeat or an election.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// This node's view of every raft group: role, leader, log and apply positions, and on a
    /// leader how far each follower has matched.
    pub fn raft_status(&self) -> Value {
        fn group<C: openraft::RaftTypeConfig<NodeId = NodeId>>(
            name: &str,
            raft: &openraft::Raft<C>,
        ) -> Value {
            let m = raft.metrics().borrow().clone();
            let replication: Option<Value> = m.replication.as_ref().map(|r| {
                r.iter()
                    .map(|(id, matched)| (id.to_string(), json!(matched.map(|l| l.index))))
                    .collect::<serde_json::Map<_, _>>()
                    .into()
            });
            let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
            json!({
                "group": name,
                "voters": voters,
                "state": format!("{:?}", m.state),
                "leader": m.current_leader,
                "term": m.current_term,
                "last_log_index": m.last_log_index,
                "last_applied": m.last_applied.map(|l| l.index),
                "matched": replication,
            })
        }
        let mut groups = vec![group("meta", &self.meta.raft)];
        for topic in self.topics() {
            for p in &topic.partitions {
                groups.push(group(&format!("{}/{}", topic.name, p.id), &p.raft));
            }
        }
        json!({
            "node_id": self.config.node_id,
            "ready": self.is_ready(),
            "joined": self.meta.joined(),
            "groups": groups,
        })
    }
}
