//! The metadata raft group: which topics exist and how many partitions each has.
//!
//! The state is small, so the state machine rewrites `state.json` atomically after every apply;
//! the file is also what a restarted node reads to reopen its partitions before raft catches up.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder,
    SnapshotMeta, StorageError, StorageIOError, StoredMembership,
};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::cluster::log_store::{LogStore, write_atomically};
use crate::cluster::network::{HttpNetwork, META_GROUP, PeerClient};
use crate::cluster::types::{
    MetaCommand, MetaRaft, MetaRaftTypes, MetaResponse, NodeId, WriteOutcome,
};
use crate::cluster::{Members, initialize_members, raft_config};
use crate::error::{Error, Result};

type C = MetaRaftTypes;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    pub partitions: u32,
    /// Whether records are embedded; `None` follows the node's `vector.enabled`.
    #[serde(default)]
    pub vector: Option<bool>,
    /// Replica node ids per partition, preferred leader first (empty: this node alone).
    #[serde(default)]
    pub replicas: Vec<Vec<NodeId>>,
}

/// Replicas of each of `partitions` over `members` (sorted ids): partition `p` starts at the
/// `p`-th member and takes the next `replication_factor`, so preferred leaders (the first
/// replica) rotate over the members and leadership is spread evenly.
pub fn place_replicas(
    partitions: u32,
    members: &[NodeId],
    replication_factor: usize,
) -> Vec<Vec<NodeId>> {
    if members.is_empty() {
        return Vec::new();
    }
    let rf = replication_factor.clamp(1, members.len());
    (0..partitions as usize)
        .map(|p| (0..rf).map(|i| members[(p + i) % members.len()]).collect())
        .collect()
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MetaState {
    pub applied: Option<LogId<NodeId>>,
    pub membership: StoredMembership<NodeId, BasicNode>,
    pub topics: BTreeMap<String, TopicMeta>,
    /// Members that have started with data (see `MetaCommand::MemberJoined`).
    #[serde(default)]
    pub joined: std::collections::BTreeSet<NodeId>,
}

impl MetaState {
    fn apply(&mut self, command: &MetaCommand) -> MetaResponse {
        match command {
            MetaCommand::CreateTopic {
                name,
                partitions,
                replicas,
                vector,
            } => match self.topics.get(name) {
                Some(t) => MetaResponse::TopicExists(t.clone()),
                None => {
                    let topic = TopicMeta {
                        name: name.clone(),
                        partitions: *partitions,
                        vector: *vector,
                        replicas: replicas.clone(),
                    };
                    self.topics.insert(name.clone(), topic.clone());
                    MetaResponse::TopicCreated(topic)
                }
            },
            MetaCommand::MemberJoined { id } => {
                self.joined.insert(*id);
                MetaResponse::None
            }
        }
    }
}

#[derive(Clone)]
pub struct MetaStateMachine {
    path: PathBuf,
    state: Arc<RwLock<MetaState>>,
}

impl MetaStateMachine {
    /// Opens the state machine persisted in `dir/state.json` (empty if absent).
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("state.json");
        let state: MetaState = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::Internal(format!("corrupt metadata state {}: {e}", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => MetaState::default(),
            Err(e) => return Err(e.into()),
        };
        Ok(Self {
            path,
            state: Arc::new(RwLock::new(state)),
        })
    }

    fn persist(&self) -> Result<(), StorageError<NodeId>> {
        let bytes = serde_json::to_vec_pretty(&*self.state.read())
            .map_err(|e| StorageIOError::write_state_machine(AnyError::new(&e)))?;
        write_atomically(&self.path, &bytes)
            .map_err(|e| StorageIOError::write_state_machine(AnyError::new(&e)).into())
    }

    fn snapshot_of_state(&self) -> Result<Snapshot<C>, StorageError<NodeId>> {
        let state = self.state.read();
        let bytes = serde_json::to_vec(&*state)
            .map_err(|e| StorageIOError::read_state_machine(AnyError::new(&e)))?;
        let meta = SnapshotMeta {
            last_log_id: state.applied,
            last_membership: state.membership.clone(),
            snapshot_id: format!("meta-{}", state.applied.map(|l| l.index).unwrap_or(0)),
        };
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(bytes)),
        })
    }
}

impl RaftSnapshotBuilder<C> for MetaStateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<C>, StorageError<NodeId>> {
        self.snapshot_of_state()
    }
}

impl RaftStateMachine<C> for MetaStateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        let state = self.state.read();
        Ok((state.applied, state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<MetaResponse>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<C>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut responses = Vec::new();
        {
            let mut state = self.state.write();
            for entry in entries {
                state.applied = Some(entry.log_id);
                responses.push(match entry.payload {
                    EntryPayload::Normal(command) => state.apply(&command),
                    EntryPayload::Membership(m) => {
                        state.membership = StoredMembership::new(Some(entry.log_id), m);
                        MetaResponse::None
                    }
                    EntryPayload::Blank => MetaResponse::None,
                });
            }
        }
        tokio::task::block_in_place(|| self.persist())?;
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        _meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let state: MetaState = serde_json::from_slice(snapshot.get_ref())
            .map_err(|e| StorageIOError::read_snapshot(None, AnyError::new(&e)))?;
        *self.state.write() = state;
        tokio::task::block_in_place(|| self.persist())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<C>>, StorageError<NodeId>> {
        // The state is small and always on disk, so the current state *is* the snapshot, once
        // anything has been applied.
        if self.state.read().applied.is_none() {
            return Ok(None);
        }
        Ok(Some(self.snapshot_of_state()?))
    }
}

/// The metadata group on this node.
pub struct MetaGroup {
    pub raft: MetaRaft,
    state: Arc<RwLock<MetaState>>,
}

impl MetaGroup {
    pub async fn open(
        dir: &Path,
        node_id: NodeId,
        members: &Members,
        peers: &PeerClient,
        initialize: bool,
    ) -> Result<Self> {
        let sm = MetaStateMachine::open(dir)?;
        let state = sm.state.clone();
        let log = LogStore::<C>::open(&dir.join("raft"))?;
        let network = HttpNetwork::new(peers.clone(), META_GROUP);
        let raft = MetaRaft::new(node_id, raft_config()?, network, log, sm)
            .await
            .map_err(Error::internal)?;
        // A rejoining member waits to be added back by the leader instead.
        if initialize {
            initialize_members(&raft, members).await?;
        }
        Ok(Self { raft, state })
    }

    pub fn topics(&self) -> Vec<TopicMeta> {
        self.state.read().topics.values().cloned().collect()
    }

    pub fn topic(&self, name: &str) -> Option<TopicMeta> {
        self.state.read().topics.get(name).cloned()
    }

    /// Proposes `command` on this node; `NotLeader` when another node leads the group.
    pub async fn propose(&self, command: MetaCommand) -> Result<WriteOutcome<MetaResponse>> {
        crate::cluster::commit(&self.raft, command, "metadata change").await
    }

    pub fn joined(&self) -> Vec<NodeId> {
        self.state.read().joined.iter().copied().collect()
    }

    pub fn has_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader.is_some()
    }

    pub fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_rotate_so_leaders_spread() {
        let placed = place_replicas(6, &[1, 2, 3], 3);
        assert_eq!(placed[0], vec![1, 2, 3]);
        assert_eq!(placed[1], vec![2, 3, 1]);
        assert_eq!(placed[5], vec![3, 1, 2]);
        let mut leaders = [0; 4];
        for r in &placed {
            leaders[r[0] as usize] += 1;
        }
        assert_eq!(&leaders[1..], &[2, 2, 2], "two preferred leaders per node");
        assert_eq!(place_replicas(2, &[1, 2, 3], 1), vec![vec![1], vec![2]]);
    }
}
