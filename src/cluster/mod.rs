//! Raft: the on-disk log every group shares, the metadata group, and one group per partition.
//!
//! A single node is the only voter of every group. In a cluster every member votes in the
//! metadata group and in every partition group (replication factor = members), and raft
//! messages travel over HTTP on the raft port (`network.rs`, `rpc.rs`).

// openraft's `StorageError` is large and its size is not ours to choose.
#![allow(clippy::result_large_err)]

pub mod command;
pub mod coordinator;
pub mod freshness;
pub mod local;
pub mod log_store;
pub mod meta;
pub mod network;
pub mod partition;
pub mod rejoin;
pub mod rpc;
pub mod types;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, Config, Raft, RaftTypeConfig, SnapshotPolicy};

use crate::error::{Error, Result};
use types::{NodeId, WriteOutcome};

/// Timing shared by all groups. Log compaction is off because partition state lives in the
/// shard, not in raft snapshots (see ARCHITECTURE.md).
///
/// Failover time is bounded by the election timeout: a follower refuses votes for a leader
/// lease of `election_timeout_max` after the last heartbeat, so a new leader is in place
/// roughly 1-1.5 lease lengths after a crash (measured by the SV-3 plan, `bench run SV-3`). openraft also gives
/// every append request one heartbeat interval to complete, so the heartbeat cannot shrink
/// much below the time to ship and fsync a couple of full entries.
pub fn raft_config() -> Result<Arc<Config>> {
    let config = Config {
        cluster_name: "sv-appliance".to_string(),
        heartbeat_interval: 150,
        election_timeout_min: 450,
        election_timeout_max: 700,
        snapshot_policy: SnapshotPolicy::Never,
        // A partition entry holds up to 8,192 records (~2 MB of JSON): two per append request
        // keep it well inside one heartbeat interval.
        max_payload_entries: 2,
        ..Default::default()
    };
    Ok(Arc::new(
        config
            .validate()
            .map_err(|e| Error::Config(e.to_string()))?,
    ))
}

/// A proposal must be committed by a majority within this on the leader.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Proposes `data` on this node's copy of a group (`what` names it in errors). `NotLeader`
/// when another node leads: openraft says so only for entries it did not keep, so the caller
/// may send it elsewhere. A leader cut off from its majority would wait forever, so after
/// [`COMMIT_TIMEOUT`] the caller is told the entry may or may not be applied later.
pub async fn commit<C>(raft: &Raft<C>, data: C::D, what: &str) -> Result<WriteOutcome<C::R>>
where
    C: RaftTypeConfig<
            NodeId = NodeId,
            Node = BasicNode,
            Responder = openraft::impls::OneshotResponder<C>,
        >,
{
    let proposed = tokio::time::timeout(COMMIT_TIMEOUT, raft.client_write(data));
    match proposed.await {
        Ok(Ok(response)) => Ok(WriteOutcome::Applied(response.data)),
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
            Ok(WriteOutcome::NotLeader(f.leader_id))
        }
        Ok(Err(e)) => Err(Error::Unavailable(format!("{what} could not commit: {e}"))),
        Err(_) => Err(Error::Unavailable(format!(
            "{what}: not committed by a majority within {COMMIT_TIMEOUT:?}; it may or may not be applied later"
        ))),
    }
}

/// Voters of a group: node id → the address peers dial (the raft port in a cluster; the API
/// address for a single node, which never dials anyone).
pub type Members = BTreeMap<NodeId, BasicNode>;

/// Initializes a pristine group with `members` as voters; returns whether this call did it
/// (false when the group already existed). Every member may call this with the same
/// members: openraft treats that as one initialization.
pub async fn initialize_members<C>(raft: &Raft<C>, members: &Members) -> Result<bool>
where
    C: RaftTypeConfig<NodeId = NodeId, Node = BasicNode>,
{
    if raft.is_initialized().await.map_err(Error::internal)? {
        return Ok(false);
    }
    match raft.initialize(members.clone()).await {
        Ok(()) => Ok(true),
        Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(false),
        Err(e) => Err(Error::internal(e)),
    }
}

#[cfg(test)]
mod store_suite {
    //! openraft's own storage conformance suite, run against our log store and a state machine.

    use openraft::StorageError;
    use openraft::testing::{StoreBuilder, Suite};

    use super::log_store::LogStore;
    use super::meta::MetaStateMachine;
    use super::types::{MetaRaftTypes, NodeId};

    struct OnDisk;

    impl StoreBuilder<MetaRaftTypes, LogStore<MetaRaftTypes>, MetaStateMachine, tempfile::TempDir>
        for OnDisk
    {
        async fn build(
            &self,
        ) -> Result<
            (tempfile::TempDir, LogStore<MetaRaftTypes>, MetaStateMachine),
            StorageError<NodeId>,
        > {
            let dir = tempfile::tempdir().expect("temp dir");
            let log = LogStore::open(&dir.path().join("raft")).expect("log store");
            let sm = MetaStateMachine::open(dir.path()).expect("state machine");
            Ok((dir, log, sm))
        }
    }

    #[test]
    fn log_store_passes_openraft_suite() {
        Suite::test_all(OnDisk).expect("openraft storage suite");
    }
}
