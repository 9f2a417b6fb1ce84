//! Raft transport between nodes. A single-node deployment has no peers, so every group is a
//! one-voter group and openraft never opens a connection; cluster mode replaces this with the
//! HTTP transport on the raft port.

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftTypeConfig};

use crate::cluster::types::NodeId;

/// Reports every peer as unreachable: correct for a node configured without peers.
#[derive(Debug, Clone, Default)]
pub struct NoPeers;

#[derive(Debug, thiserror::Error)]
#[error("node {0} is not reachable: this node runs without peers")]
struct NoPeer(NodeId);

impl<C> RaftNetworkFactory<C> for NoPeers
where
    C: RaftTypeConfig<NodeId = NodeId, Node = BasicNode>,
{
    type Network = NoPeerConnection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Self::Network {
        NoPeerConnection(target)
    }
}

pub struct NoPeerConnection(NodeId);

impl NoPeerConnection {
    fn unreachable<E: std::error::Error>(&self) -> RPCError<NodeId, BasicNode, E> {
        RPCError::Unreachable(Unreachable::new(&NoPeer(self.0)))
    }
}

impl<C> RaftNetwork<C> for NoPeerConnection
where
    C: RaftTypeConfig<NodeId = NodeId, Node = BasicNode>,
{
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<C>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(self.unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<C>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        Err(self.unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        Err(self.unreachable())
    }
}
