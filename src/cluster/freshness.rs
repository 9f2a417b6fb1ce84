//! Read freshness on a cluster: before a query answers from this node's replicas, each
//! partition led by another node is brought up to what its leader held when the query arrived,
//! and the partitions that could not be are named in the answer.
//!
//! Without this a follower a checkpoint behind answered 4,566 hits where its leader had 4,609,
//! reporting no failed shard. Offsets are assigned by applying the same log in the same order
//! on every replica, so "holds at least the leader's record count" is exact: the replica has
//! every record the leader could show. A partition led here needs no call: once a read index
//! confirms the leadership, the local replica is the reference.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cluster::partition::Partition;
use crate::cluster::rpc::{Forwarded, forward_get};
use crate::cluster::types::NodeId;
use crate::config::ReadFreshness;
use crate::node::{Node, Topic};
use crate::shard::Shard;

/// How long a query waits, at most, for its replicas to catch up (and, during an election,
/// for a leader to confirm them). Elections measured 1.4-2.4 s (SV-3) and the plan allows
/// 5 s, so a query during a failover waits instead of being partial; a follower's text index
/// trails its log by at most one checkpoint interval (1 s by default), and a read that needs
/// the records commits them at once. Callers with a shorter deadline pass less.
pub const FRESHNESS_WAIT: Duration = Duration::from_secs(5);
/// One call to a leader; a dead host must not use up the whole wait.
const MARKS_CALL_TIMEOUT: Duration = Duration::from_millis(750);
/// A leader confirming its leadership (one heartbeat round to a majority).
const CONFIRM_TIMEOUT: Duration = Duration::from_millis(500);
/// Between checks of the local replicas, at most: a replica's counts moving wakes the check
/// earlier (waiting out a fixed poll added up to 10 ms to reads on a follower under ingest).
const POLL: Duration = Duration::from_millis(10);
/// Between calls to leaders that did not answer, doubling up to the maximum.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_millis(400);

/// What a query reads, hence which count must reach the leader's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// Text search: records committed to the text index.
    Searchable,
    /// SQL: every applied record (the hot Arrow buffer holds them at once).
    Applied,
}

impl Reads {
    fn pick(self, counts: Counts) -> u64 {
        match self {
            Reads::Searchable => counts.searchable,
            Reads::Applied => counts.applied,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Reads::Searchable => "searchable",
            Reads::Applied => "applied",
        }
    }
}

/// A replica's record counts: applied, and committed to the text index.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Counts {
    pub applied: u64,
    pub searchable: u64,
}

impl Counts {
    fn of(partition: &Partition) -> Counts {
        let stats = partition.shard.stats();
        Counts {
            applied: stats.records,
            searchable: stats.searchable,
        }
    }
}

/// A partition this node leads, with its record counts; served at
/// `GET /internal/marks?partitions=topic/0,…`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaderMark {
    pub topic: String,
    pub partition: u32,
    #[serde(flatten)]
    pub counts: Counts,
}

/// Every partition of `topics`, as [`Node::await_fresh`] takes them.
pub fn all_partitions(topics: &[Arc<Topic>]) -> Vec<(String, u32)> {
    topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.clone(), p.id)))
        .collect()
}

/// Partitions `ids` of `topic`, as [`Node::await_fresh`] takes them.
pub fn partitions_of(topic: &str, ids: &[u32]) -> Vec<(String, u32)> {
    ids.iter().map(|&p| (topic.to_string(), p)).collect()
}

/// A partition missing from an answer, or whose part of it may lack records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartitionFailure {
    pub topic: String,
    pub partition: u32,
    #[serde(default)]
    pub kind: FailureKind,
    pub reason: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Answered by a replica behind its leader: its hits are real, maybe not all.
    #[default]
    StaleReplica,
    /// No replica answered: none of the partition's records are in the answer.
    Unavailable,
}

impl PartitionFailure {
    pub fn unavailable(topic: &str, partition: u32, reason: impl Into<String>) -> Self {
        Self {
            topic: topic.to_string(),
            partition,
            kind: FailureKind::Unavailable,
            reason: reason.into(),
        }
    }

    /// As an Elasticsearch shard failure (`_shards.failures[]`).
    pub fn to_failure(&self) -> Value {
        let kind = match self.kind {
            FailureKind::StaleReplica => "stale_replica",
            FailureKind::Unavailable => "unavailable_shards_exception",
        };
        json!({
            "index": self.topic,
            "shard": self.partition,
            "reason": { "type": kind, "reason": self.reason },
        })
    }
}

/// The `_shards` object of an answer over `total` partitions.
pub fn shards_json(total: usize, stale: &[PartitionFailure]) -> Value {
    let mut shards = json!({
        "total": total,
        "successful": total - stale.len().min(total),
        "skipped": 0,
        "failed": stale.len(),
    });
    if !stale.is_empty() {
        shards["failures"] = stale.iter().map(PartitionFailure::to_failure).collect();
    }
    shards
}

impl Node {
    /// Counts of the `wanted` partitions this node leads, each confirmed by a read index: the
    /// leadership is checked with a majority (a leader cut off from it still believes it
    /// leads) and every entry committed before the call is applied (a new leader may not
    /// have applied its predecessor's last entries yet). Partitions not confirmed are left
    /// out, and the caller asks again.
    pub async fn leader_marks(&self, wanted: &[(String, u32)]) -> Vec<LeaderMark> {
        let me = self.config.node_id;
        let open: Vec<(Arc<Topic>, u32)> = wanted
            .iter()
            .filter_map(|(topic, partition)| {
                Some((self.topic_with(topic, *partition)?, *partition))
            })
            .collect();
        let led = open
            .iter()
            .filter_map(|(t, partition)| Some((t, t.local(*partition)?)))
            .filter(|(_, p)| p.leader() == Some(me));
        let confirmed = led.map(|(topic, p)| async move {
            p.confirm_leadership(CONFIRM_TIMEOUT)
                .await
                .then(|| LeaderMark {
                    topic: topic.name.clone(),
                    partition: p.id,
                    counts: Counts::of(p),
                })
        });
        futures::future::join_all(confirmed)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// Waits (up to `wait`) until every `(topic, partition)` in `wanted` holds here what its
    /// leader holds now, and returns those that do not. Always empty on a single node.
    pub async fn await_fresh(
        &self,
        wanted: &[(String, u32)],
        reads: Reads,
        wait: Duration,
    ) -> Vec<PartitionFailure> {
        if !self.config.cluster.is_clustered()
            || wanted.is_empty()
            || self.config.query.read_freshness == ReadFreshness::Local
        {
            return Vec::new();
        }
        let deadline = Instant::now() + wait;
        // Partition → the count this replica must reach; `None` until a leader has said.
        let mut targets: BTreeMap<(String, u32), Option<u64>> =
            wanted.iter().map(|w| (w.clone(), None)).collect();
        let mut unreachable: HashMap<NodeId, String> = HashMap::new();
        let mut next_ask = Instant::now();
        let mut retry = RETRY_FIRST;
        // The replicas waited on: a change of their counts ends a poll early.
        let shards: Vec<Arc<Shard>> = wanted
            .iter()
            .filter_map(|(topic, partition)| {
                Some(
                    self.topic_with(topic, *partition)?
                        .local(*partition)?
                        .shard
                        .clone(),
                )
            })
            .collect();
        loop {
            if targets.values().any(Option::is_none) && Instant::now() >= next_ask {
                self.learn_targets(&mut targets, reads, &mut unreachable)
                    .await;
                next_ask = Instant::now() + retry;
                retry = (retry * 2).min(RETRY_MAX);
            }
            // Taken before the counts are read, so a move in between still wakes the wait below.
            let moved: Vec<_> = shards.iter().map(|s| Box::pin(s.counts_moved())).collect();
            // Partitions whose records are all here, only not committed to the text index yet.
            let mut index_behind = Vec::new();
            targets.retain(|(topic, partition), target| match target {
                Some(t) => {
                    let counts = self.local_counts(topic, *partition);
                    let have = reads.pick(counts);
                    if have < *t && counts.applied >= *t {
                        index_behind.push((topic.clone(), *partition, *t));
                    }
                    have < *t
                }
                None => true,
            });
            if targets.is_empty() {
                return Vec::new();
            }
            if !index_behind.is_empty() {
                self.make_searchable(index_behind).await;
                if Instant::now() < deadline {
                    // Checked again at once; a commit that failed is retried until the deadline.
                    continue;
                }
            }
            if Instant::now() >= deadline {
                return targets
                    .into_iter()
                    .map(|((topic, partition), target)| {
                        let reason =
                            self.stale_reason(&topic, partition, target, reads, wait, &unreachable);
                        PartitionFailure {
                            topic,
                            partition,
                            kind: FailureKind::StaleReplica,
                            reason,
                        }
                    })
                    .collect();
            }
            if moved.is_empty() {
                tokio::time::sleep(POLL).await;
            } else {
                let _ = tokio::time::timeout(POLL, futures::future::select_all(moved)).await;
            }
        }
    }

    /// Fills in the targets still unknown: the local count for partitions led here, the
    /// leader's count for the others (one call per leader).
    async fn learn_targets(
        &self,
        targets: &mut BTreeMap<(String, u32), Option<u64>>,
        reads: Reads,
        unreachable: &mut HashMap<NodeId, String>,
    ) {
        let me = self.config.node_id;
        let mut by_leader: BTreeMap<NodeId, Vec<(String, u32)>> = BTreeMap::new();
        let mut led_here = Vec::new();
        for ((topic, partition), target) in targets.iter() {
            if target.is_some() {
                continue;
            }
            match self.partition_leader(topic, *partition) {
                Some(leader) if leader == me => led_here.push((topic.clone(), *partition)),
                Some(leader) => by_leader
                    .entry(leader)
                    .or_default()
                    .push((topic.clone(), *partition)),
                None => {}
            }
        }
        // A partition led here is its own reference once its leadership is confirmed.
        let confirmations = led_here.iter().map(|(topic, partition)| async move {
            match self.topic_with(topic, *partition) {
                Some(t) => match t.local(*partition) {
                    Some(p) => p.confirm_leadership(CONFIRM_TIMEOUT).await,
                    None => false,
                },
                None => false,
            }
        });
        let confirmed = futures::future::join_all(confirmations).await;
        for ((topic, partition), ok) in led_here.into_iter().zip(confirmed) {
            if ok {
                let count = reads.pick(self.local_counts(&topic, partition));
                targets.insert((topic, partition), Some(count));
            }
        }
        let calls = by_leader.iter().map(|(&leader, asked)| async move {
            let Some(addr) = self.peers.address(leader) else {
                return (
                    leader,
                    Err(format!("leader {leader} is not a configured member")),
                );
            };
            // Only these partitions, so the leader confirms only what this query reads.
            let list: Vec<String> = asked.iter().map(|(t, p)| format!("{t}/{p}")).collect();
            let path = format!("/internal/marks?partitions={}", list.join(","));
            let answer =
                forward_get::<Vec<LeaderMark>>(&self.peers, addr, &path, MARKS_CALL_TIMEOUT).await;
            let marks = match answer {
                Ok(Forwarded::Done(marks)) => Ok(marks),
                Ok(Forwarded::NotSent(e)) => Err(e),
                Err(e) => Err(e.to_string()),
            };
            (leader, marks)
        });
        for (leader, answer) in futures::future::join_all(calls).await {
            match answer {
                Ok(marks) => {
                    unreachable.remove(&leader);
                    // A partition missing from the answer has changed leader: asked again on
                    // the next round.
                    for mark in marks {
                        if let Some(target) = targets.get_mut(&(mark.topic.clone(), mark.partition))
                        {
                            target.get_or_insert(reads.pick(mark.counts));
                        }
                    }
                }
                Err(e) => {
                    unreachable.insert(leader, e);
                }
            }
        }
    }

    /// Commits the text index of each `(topic, partition, target)` that holds fewer than
    /// `target` records, together; failures are logged and the caller's wait goes on.
    async fn make_searchable(&self, behind: Vec<(String, u32, u64)>) {
        let commits = behind.into_iter().filter_map(|(topic, partition, target)| {
            let shard = self.topic_with(&topic, partition)?.local(partition)?.shard.clone();
            Some(async move {
                let done =
                    tokio::task::spawn_blocking(move || shard.make_searchable(target)).await;
                match done {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        tracing::error!(%topic, partition, error = %e, "text commit for a read failed")
                    }
                    Err(e) => tracing::error!(error = %e, "text commit task panicked"),
                }
            })
        });
        futures::future::join_all(commits).await;
    }

    /// The open topic `topic` if this node holds a replica of `partition`.
    fn topic_with(&self, topic: &str, partition: u32) -> Option<Arc<Topic>> {
        let topic = self.topic(topic).ok()?;
        topic.local(partition).is_some().then_some(topic)
    }

    fn partition_leader(&self, topic: &str, partition: u32) -> Option<NodeId> {
        self.topic_with(topic, partition)?
            .local(partition)?
            .leader()
    }

    /// This node's counts of a partition (zero when it is not open here).
    fn local_counts(&self, topic: &str, partition: u32) -> Counts {
        self.topic_with(topic, partition)
            .and_then(|t| t.local(partition).map(Counts::of))
            .unwrap_or_default()
    }

    fn stale_reason(
        &self,
        topic: &str,
        partition: u32,
        target: Option<u64>,
        reads: Reads,
        wait: Duration,
        unreachable: &HashMap<NodeId, String>,
    ) -> String {
        let waited = wait.as_secs_f64();
        let node = self.config.node_id;
        let have = reads.pick(self.local_counts(topic, partition));
        match (target, self.partition_leader(topic, partition)) {
            (Some(target), _) => format!(
                "node {node}'s replica of {topic}/{partition} has {have} {} records, its leader {target}; still behind after {waited} s, so this answer may miss {} records",
                reads.noun(),
                target.saturating_sub(have)
            ),
            (None, None) => format!(
                "{topic}/{partition} has no leader (election under way or no majority), so node {node} could not confirm its replica ({have} records) is complete within {waited} s"
            ),
            (None, Some(leader)) if leader == node => format!(
                "node {node} leads {topic}/{partition} but could not confirm it with a majority within {waited} s (cut off?), so its replica ({have} records) may miss writes a newer leader accepted"
            ),
            (None, Some(leader)) => format!(
                "the leader of {topic}/{partition} (node {leader}) did not answer within {waited} s ({}), so node {node} could not confirm its replica ({have} records) is complete",
                unreachable
                    .get(&leader)
                    .map_or("no answer for this partition", String::as_str)
            ),
        }
    }
}
