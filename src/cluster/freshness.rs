//! Read freshness on a cluster: before a query answers from this node's replicas, each
//! partition led by another node is brought up to what its leader held when the query arrived,
//! and the partitions that could not be are named in the answer.
//!
//! Without this a follower a checkpoint behind answered 4,566 hits where its leader had 4,609,
//! reporting no failed shard. Offsets are assigned by applying the same log in the same order
//! on every replica, so "holds at least the leader's record count" is exact: the replica has
//! every record the leader could show. Only partitions led elsewhere need a call: the leader
//! of a partition is its own reference.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::cluster::rpc::{Forwarded, forward_get};
use crate::cluster::types::NodeId;
use crate::node::Node;

/// How long a query waits for its replicas to catch up (and, during an election, for a
/// leader to confirm them). Elections measured 1.4-2.4 s (SV-3) and the plan allows 5 s, so
/// a query during a failover waits instead of being partial; a follower's text index trails
/// its log by at most one checkpoint interval (1 s by default).
pub const FRESHNESS_WAIT: Duration = Duration::from_secs(5);
/// One call to a leader; a dead host must not use up the whole wait.
const MARKS_CALL_TIMEOUT: Duration = Duration::from_millis(750);
/// Between checks of the local replicas and retries of unreachable leaders.
const POLL: Duration = Duration::from_millis(10);

/// What a query reads, hence which count must reach the leader's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// Text search: records committed to the text index.
    Searchable,
    /// SQL: every applied record (the hot Arrow buffer holds them at once).
    Applied,
}

impl Reads {
    fn count(self, mark: &LeaderMark) -> u64 {
        match self {
            Reads::Searchable => mark.searchable,
            Reads::Applied => mark.applied,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Reads::Searchable => "searchable",
            Reads::Applied => "applied",
        }
    }
}

/// A partition this node leads, with its record counts; served at `GET /internal/marks`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LeaderMark {
    pub topic: String,
    pub partition: u32,
    pub applied: u64,
    pub searchable: u64,
}

/// A partition whose answer on this node may lack records its leader has.
#[derive(Debug, Clone, Serialize)]
pub struct StalePartition {
    pub topic: String,
    pub partition: u32,
    pub reason: String,
}

impl StalePartition {
    /// As an Elasticsearch shard failure (`_shards.failures[]`).
    pub fn to_failure(&self) -> Value {
        json!({
            "index": self.topic,
            "shard": self.partition,
            "reason": { "type": "stale_replica", "reason": self.reason },
        })
    }
}

/// The `_shards` object of an answer over `total` partitions.
pub fn shards_json(total: usize, stale: &[StalePartition]) -> Value {
    let mut shards = json!({
        "total": total,
        "successful": total - stale.len().min(total),
        "skipped": 0,
        "failed": stale.len(),
    });
    if !stale.is_empty() {
        shards["failures"] = stale.iter().map(StalePartition::to_failure).collect();
    }
    shards
}

impl Node {
    /// Counts of every partition this node leads now.
    pub fn leader_marks(&self) -> Vec<LeaderMark> {
        let me = self.config.node_id;
        let mut marks = Vec::new();
        for topic in self.topics() {
            for p in &topic.partitions {
                if p.leads_with_quorum(me) {
                    let stats = p.shard.stats();
                    marks.push(LeaderMark {
                        topic: topic.name.clone(),
                        partition: p.id,
                        applied: stats.records,
                        searchable: stats.searchable,
                    });
                }
            }
        }
        marks
    }

    /// Waits (up to [`FRESHNESS_WAIT`]) until every `(topic, partition)` in `wanted` holds here
    /// what its leader holds now, and returns those that do not. Always empty on a single node.
    pub async fn await_fresh(&self, wanted: &[(String, u32)], reads: Reads) -> Vec<StalePartition> {
        if !self.config.cluster.is_clustered() || wanted.is_empty() {
            return Vec::new();
        }
        let deadline = Instant::now() + FRESHNESS_WAIT;
        // Partition → the count this replica must reach; `None` until a leader has said.
        let mut targets: BTreeMap<(String, u32), Option<u64>> =
            wanted.iter().map(|w| (w.clone(), None)).collect();
        let mut unreachable: HashMap<NodeId, String> = HashMap::new();
        loop {
            self.learn_targets(&mut targets, reads, &mut unreachable)
                .await;
            targets.retain(|(topic, partition), target| match target {
                Some(t) => self.local_count(topic, *partition, reads) < *t,
                None => true,
            });
            if targets.is_empty() {
                return Vec::new();
            }
            if Instant::now() >= deadline {
                return targets
                    .into_iter()
                    .map(|((topic, partition), target)| {
                        let reason =
                            self.stale_reason(&topic, partition, target, reads, &unreachable);
                        StalePartition {
                            topic,
                            partition,
                            reason,
                        }
                    })
                    .collect();
            }
            tokio::time::sleep(POLL).await;
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
        for ((topic, partition), target) in targets.iter_mut() {
            if target.is_some() {
                continue;
            }
            match self.partition_leader(topic, *partition) {
                // A leader is its own reference only while a majority still follows it.
                Some(leader) if leader == me => {
                    *target = self
                        .leads_with_quorum(topic, *partition)
                        .then(|| self.local_count(topic, *partition, reads));
                }
                Some(leader) => by_leader
                    .entry(leader)
                    .or_default()
                    .push((topic.clone(), *partition)),
                None => {}
            }
        }
        let calls = by_leader.keys().map(|&leader| async move {
            let Some(addr) = self.peers.address(leader) else {
                return (
                    leader,
                    Err(format!("leader {leader} is not a configured member")),
                );
            };
            let answer = forward_get::<Vec<LeaderMark>>(
                &self.peers,
                addr,
                "/internal/marks",
                MARKS_CALL_TIMEOUT,
            )
            .await;
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
                            target.get_or_insert(reads.count(&mark));
                        }
                    }
                }
                Err(e) => {
                    unreachable.insert(leader, e);
                }
            }
        }
    }

    fn leads_with_quorum(&self, topic: &str, partition: u32) -> bool {
        self.topic(topic).ok().is_some_and(|t| {
            t.partitions
                .get(partition as usize)
                .is_some_and(|p| p.leads_with_quorum(self.config.node_id))
        })
    }

    fn partition_leader(&self, topic: &str, partition: u32) -> Option<NodeId> {
        let topic = self.topic(topic).ok()?;
        topic.partitions.get(partition as usize)?.leader()
    }

    fn local_count(&self, topic: &str, partition: u32, reads: Reads) -> u64 {
        let Some(stats) = self.topic(topic).ok().and_then(|t| {
            t.partitions
                .get(partition as usize)
                .map(|p| p.shard.stats())
        }) else {
            return 0;
        };
        match reads {
            Reads::Searchable => stats.searchable,
            Reads::Applied => stats.records,
        }
    }

    fn stale_reason(
        &self,
        topic: &str,
        partition: u32,
        target: Option<u64>,
        reads: Reads,
        unreachable: &HashMap<NodeId, String>,
    ) -> String {
        let waited = FRESHNESS_WAIT.as_secs_f64();
        let node = self.config.node_id;
        let have = self.local_count(topic, partition, reads);
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
                "node {node} leads {topic}/{partition} but has not heard from a majority for {waited} s (cut off?), so its replica ({have} records) may miss writes a newer leader accepted"
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
