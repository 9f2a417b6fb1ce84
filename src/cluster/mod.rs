//! Raft: the on-disk log every group shares, the metadata group, and one group per partition.
//!
//! Every group runs with this node as its only voter until cluster mode adds peers; the write
//! path (client write → fsynced log → commit → apply to the shard) is already the clustered one.

// openraft's `StorageError` is large and its size is not ours to choose.
#![allow(clippy::result_large_err)]

pub mod log_store;
pub mod meta;
pub mod network;
pub mod partition;
pub mod types;

use std::collections::BTreeMap;
use std::sync::Arc;

use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, Config, Raft, RaftTypeConfig, SnapshotPolicy};

use crate::error::{Error, Result};
use types::NodeId;

/// Timing shared by all groups. Elections matter only once peers exist; log compaction is off
/// because partition state lives in the shard, not in raft snapshots (see ARCHITECTURE.md).
pub fn raft_config() -> Result<Arc<Config>> {
    let config = Config {
        cluster_name: "sv-appliance".to_string(),
        heartbeat_interval: 250,
        election_timeout_min: 500,
        election_timeout_max: 1000,
        snapshot_policy: SnapshotPolicy::Never,
        max_payload_entries: 64,
        ..Default::default()
    };
    Ok(Arc::new(
        config
            .validate()
            .map_err(|e| Error::Config(e.to_string()))?,
    ))
}

/// Makes this node the single voter of a new group; a no-op for a group that already exists.
pub async fn initialize_single_voter<C>(
    raft: &Raft<C>,
    node_id: NodeId,
    api_addr: &str,
) -> Result<()>
where
    C: RaftTypeConfig<NodeId = NodeId, Node = BasicNode>,
{
    if raft.is_initialized().await.map_err(Error::internal)? {
        return Ok(());
    }
    let members = BTreeMap::from([(
        node_id,
        BasicNode {
            addr: api_addr.to_string(),
        },
    )]);
    match raft.initialize(members).await {
        Ok(()) => Ok(()),
        Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
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
