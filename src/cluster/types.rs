//! Raft type configurations: one for the metadata group, one for partition groups.

use std::io::Cursor;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::record::LogRecord;

/// A node's identity inside every raft group it joins.
pub type NodeId = u64;

/// A command on the metadata group (topics; membership and partition maps join it in cluster mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaCommand {
    CreateTopic {
        name: String,
        partitions: u32,
        /// Replica node ids per partition, preferred leader first; empty on a single node and
        /// in entries written before clustering existed.
        #[serde(default)]
        replicas: Vec<Vec<NodeId>>,
        /// Whether records are embedded; `None` follows the node's `vector.enabled`. Absent
        /// from entries written before the field existed.
        #[serde(default)]
        vector: Option<bool>,
    },
    /// A member has started with data at least once: from then on, an empty data directory on
    /// that member means its data was lost, not that it is new.
    MemberJoined { id: NodeId },
}

/// What applying a [`MetaCommand`] produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaResponse {
    TopicCreated(crate::cluster::meta::TopicMeta),
    TopicExists(crate::cluster::meta::TopicMeta),
    None,
}

/// One raft entry of a partition: a batch of records, never a single line, so that one fsync and
/// one commit cover many records. `Arc` keeps the clone openraft makes for apply cheap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordBatch {
    pub records: Arc<Vec<LogRecord>>,
}

/// Where a committed batch landed in its partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Appended {
    /// Offset of the first record of the batch.
    pub base_offset: u64,
    pub count: u64,
}

openraft::declare_raft_types!(
    /// Types of the metadata raft group.
    pub MetaRaftTypes:
        D = MetaCommand,
        R = MetaResponse,
        NodeId = NodeId,
        SnapshotData = Cursor<Vec<u8>>,
);

openraft::declare_raft_types!(
    /// Types of a partition's raft group.
    pub PartitionRaftTypes:
        D = RecordBatch,
        R = Appended,
        NodeId = NodeId,
        SnapshotData = Cursor<Vec<u8>>,
);

pub type MetaRaft = openraft::Raft<MetaRaftTypes>;
pub type PartitionRaft = openraft::Raft<PartitionRaftTypes>;

/// What a client write on a group gave: applied, or this node is not the leader (and which
/// node is, when known). A `NotLeader` write was not appended, so sending it to the leader
/// cannot duplicate it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteOutcome<R> {
    Applied(R),
    NotLeader(Option<NodeId>),
}
