//! A partition's raft group: the state machine that applies committed record batches to the
//! partition's [`Shard`], and the handle the router writes through.

use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};

use crate::cluster::log_store::LogStore;
use crate::cluster::network::{HttpNetwork, PeerClient};
use crate::cluster::types::{
    Appended, NodeId, PartitionRaft, PartitionRaftTypes, RecordBatch, WriteOutcome,
};
use crate::cluster::{Members, initialize_members, raft_config};
use crate::error::{Error, Result};
use crate::record::LogRecord;
use crate::shard::Shard;

type C = PartitionRaftTypes;

/// Applies committed entries to the shard. Cloning shares the shard.
#[derive(Clone)]
pub struct PartitionStateMachine {
    shard: Arc<Shard>,
}

#[derive(Debug, thiserror::Error)]
#[error("partition snapshots are not built: followers catch up by log replay")]
struct NoSnapshots;

impl RaftSnapshotBuilder<C> for PartitionStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<C>, StorageError<NodeId>> {
        // The snapshot policy is `Never`, so openraft does not ask for one; say so if it does.
        Err(StorageIOError::write_snapshot(None, AnyError::new(&NoSnapshots)).into())
    }
}

impl RaftStateMachine<C> for PartitionStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        Ok(self.shard.applied_state())
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Appended>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<C>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let shard = self.shard.clone();
        // Indexing is CPU work that may wait on Tantivy's queue; keep it off the async workers.
        tokio::task::block_in_place(move || {
            let mut responses = Vec::new();
            for entry in entries {
                let log_id = entry.log_id;
                match entry.payload {
                    EntryPayload::Normal(batch) => {
                        let appended =
                            shard.apply_records(log_id, &batch.records).map_err(|e| {
                                StorageIOError::apply(log_id, AnyError::error(e.to_string()))
                            })?;
                        responses.push(appended);
                    }
                    EntryPayload::Blank => {
                        shard.apply_marker(log_id, None);
                        responses.push(Appended::default());
                    }
                    EntryPayload::Membership(m) => {
                        shard.apply_marker(log_id, Some(StoredMembership::new(Some(log_id), m)));
                        responses.push(Appended::default());
                    }
                }
            }
            Ok(responses)
        })
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Err(StorageIOError::write_snapshot(None, AnyError::new(&NoSnapshots)).into())
    }

    async fn install_snapshot(
        &mut self,
        _meta: &SnapshotMeta<NodeId, BasicNode>,
        _snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        Err(StorageIOError::write_snapshot(None, AnyError::new(&NoSnapshots)).into())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<C>>, StorageError<NodeId>> {
        Ok(None)
    }
}

/// One partition on this node: its raft group and its shard.
pub struct Partition {
    pub id: u32,
    /// Raft group name, `<topic>/<partition>`, also used in error messages.
    pub group: String,
    pub raft: PartitionRaft,
    pub shard: Arc<Shard>,
    /// Last log index present when the partition opened: until it is applied again the shard
    /// is still replaying and the node is not ready.
    replay_target: Option<u64>,
    /// The leadership lease: until this instant, in this term, the leadership is known
    /// without a heartbeat round (see [`Partition::confirm_leadership`]).
    lease: parking_lot::Mutex<Option<(std::time::Instant, u64)>>,
}

/// How long a confirmed leadership is trusted without asking the majority again, counted from
/// when the confirming heartbeat round started. A follower that acknowledged that round
/// refuses to vote for another candidate until `election_timeout_max` (700 ms) after it, and
/// every majority holds one such follower, so no other leader can exist before then; 300 ms
/// leaves more than half of it for clock drift and scheduling.
const LEADER_LEASE: std::time::Duration = std::time::Duration::from_millis(300);

/// Where and how a partition's group runs.
pub struct PartitionPlacement<'a> {
    pub node_id: NodeId,
    /// The group's voters (all replicas).
    pub replicas: &'a Members,
    /// This node is the preferred leader: it asks for leadership when the group is created,
    /// so leaders start spread over the nodes instead of going to whoever wins first.
    pub preferred_leader: bool,
    /// Raft group name on the wire.
    pub group: &'a str,
    pub peers: &'a PeerClient,
    /// False on a rejoining member: the group's leader adds it back, it never creates the
    /// group itself.
    pub may_initialize: bool,
}

impl Partition {
    /// Opens the partition stored under `dir`, replaying any committed entries the shard lacks.
    pub async fn open(dir: &Path, id: u32, placement: PartitionPlacement<'_>) -> Result<Self> {
        let shard = Shard::open(&dir.join("shard"), id)?;
        let log = LogStore::<C>::open(&dir.join("raft"))?;
        let replay_target = log.last_index();
        let sm = PartitionStateMachine {
            shard: shard.clone(),
        };
        let network = HttpNetwork::new(placement.peers.clone(), placement.group);
        let raft = PartitionRaft::new(placement.node_id, raft_config()?, network, log, sm)
            .await
            .map_err(Error::internal)?;
        // A freshly initialized replica campaigns at once, so only the preferred leader does it
        // right away: leaders start spread over the nodes. The others join through its first
        // append, or initialize themselves (same members, so the same group) if it has not
        // appeared within a few seconds, e.g. because that node is down.
        if !placement.may_initialize {
            // Added back by the leader (cluster::rejoin).
        } else if placement.preferred_leader || placement.replicas.len() == 1 {
            initialize_members(&raft, placement.replicas).await?;
        } else {
            let raft = raft.clone();
            let replicas = placement.replicas.clone();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_secs(3)).await;
                if let Err(e) = initialize_members(&raft, &replicas).await {
                    tracing::warn!(error = %e, "partition group initialization failed");
                }
            });
        }
        Ok(Self {
            id,
            group: placement.group.to_string(),
            raft,
            shard,
            replay_target,
            lease: parking_lot::Mutex::new(None),
        })
    }

    /// Commits `records` as one raft entry on this node if it leads the group.
    pub async fn write(&self, records: Arc<Vec<LogRecord>>) -> Result<WriteOutcome<Appended>> {
        let what = format!("partition {}", self.group);
        crate::cluster::commit(&self.raft, RecordBatch { records }, &what).await
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// Whether this node still leads the group, confirmed with a majority within `timeout`,
    /// with every entry committed before the call applied here (openraft's read index). A
    /// leader cut off from its majority keeps believing it leads, and a new leader may not
    /// have applied its predecessor's last acknowledged entries yet: both answer false or wait.
    ///
    /// A confirmation is reused for [`LEADER_LEASE`] in the same term (a lease read): without
    /// it every query paid a heartbeat round per partition led, which made a cluster node's
    /// reads slower than a standalone node's (SV-3). Acknowledged writes are applied before
    /// they are acknowledged, so within the lease the local replica holds every one of them.
    pub async fn confirm_leadership(&self, timeout: std::time::Duration) -> bool {
        let (term, leader) = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            (m.current_term, m.current_leader == Some(m.id))
        };
        if !leader {
            return false;
        }
        if let Some((until, leased_term)) = *self.lease.lock()
            && leased_term == term
            && std::time::Instant::now() < until
        {
            return true;
        }
        let started = std::time::Instant::now();
        let confirmed = matches!(
            tokio::time::timeout(timeout, self.raft.ensure_linearizable()).await,
            Ok(Ok(_))
        );
        if confirmed {
            *self.lease.lock() = Some((started + LEADER_LEASE, term));
        }
        confirmed
    }

    /// A leader exists and every entry the log held at start has been applied again.
    pub fn is_ready(&self) -> bool {
        let metrics = self.raft.metrics();
        let metrics = metrics.borrow();
        let applied = metrics.last_applied.map(|l| l.index);
        metrics.current_leader.is_some() && applied >= self.replay_target
    }
}
