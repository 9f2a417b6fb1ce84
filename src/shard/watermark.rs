//! How far a durable part of a shard (text index, columnar files) has applied the raft log.

use openraft::{BasicNode, LogId, StoredMembership};
use serde::{Deserialize, Serialize};

use crate::cluster::types::NodeId;

/// Stored with every text-index commit and every columnar manifest. On restart the shard resumes
/// from the lower of the two, and each part skips records below its own `next_offset`, so replay
/// adds every record exactly once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    /// Last raft log entry whose records this part holds.
    pub applied: Option<LogId<NodeId>>,
    /// Membership as of `applied` (openraft needs it back from the state machine).
    pub membership: StoredMembership<NodeId, BasicNode>,
    /// Offset the next record will get; equals the number of records held.
    pub next_offset: u64,
}

impl Watermark {
    /// The earlier of two watermarks, by log position.
    pub fn min(a: Watermark, b: Watermark) -> Watermark {
        if a.applied <= b.applied { a } else { b }
    }
}
