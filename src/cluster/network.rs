//! Raft transport between nodes: every raft RPC is an HTTP POST to the peer's raft port,
//! carrying the group it belongs to and the cluster token. A single node has no peers, so
//! openraft never dials anyone and the same transport costs nothing there.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftTypeConfig};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cluster::types::NodeId;

/// Header carrying the shared cluster token on every internal request.
pub const TOKEN_HEADER: &str = "x-sv-cluster-token";

/// Group name of the metadata raft group.
pub const META_GROUP: &str = "meta";

/// Group name of a partition's raft group.
pub fn partition_group(topic: &str, partition: u32) -> String {
    format!("{topic}/{partition}")
}

/// One HTTP client shared by every group of the node (connection pooling per peer), with the
/// address of each peer as this node's config names it.
#[derive(Clone)]
pub struct PeerClient {
    pub http: reqwest::Client,
    pub token: Arc<str>,
    /// Raft address per member id from the local config. Raft membership also records an
    /// address, written by whichever node initialized the group; the local config wins, so
    /// an operator can re-address a peer (or route it through a proxy) by editing one file.
    addresses: Arc<HashMap<NodeId, String>>,
}

impl PeerClient {
    /// The client for `cluster`: its token and each member's raft address.
    pub fn new(cluster: &crate::config::ClusterConfig) -> Self {
        let addresses = cluster
            .members
            .iter()
            .map(|m| (m.id, m.raft.clone()))
            .collect();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("reqwest client without TLS settings always builds");
        Self {
            http,
            token: cluster.token.as_str().into(),
            addresses: Arc::new(addresses),
        }
    }

    /// The configured raft address of member `id`.
    pub fn address(&self, id: NodeId) -> Option<&str> {
        self.addresses.get(&id).map(String::as_str)
    }

    /// Where to dial `id`: the local config's address, else the one raft recorded.
    pub fn address_of(&self, id: NodeId, recorded: &str) -> String {
        self.address(id).unwrap_or(recorded).to_string()
    }
}

/// Creates connections for one raft group.
#[derive(Clone)]
pub struct HttpNetwork {
    client: PeerClient,
    group: Arc<str>,
}

impl HttpNetwork {
    pub fn new(client: PeerClient, group: &str) -> Self {
        Self {
            client,
            group: group.into(),
        }
    }
}

impl<C> RaftNetworkFactory<C> for HttpNetwork
where
    C: RaftTypeConfig<NodeId = NodeId, Node = BasicNode>,
{
    type Network = HttpConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Self::Network {
        HttpConnection {
            client: self.client.clone(),
            group: self.group.clone(),
            target,
            addr: self.client.address_of(target, &node.addr),
        }
    }
}

pub struct HttpConnection {
    client: PeerClient,
    group: Arc<str>,
    target: NodeId,
    addr: String,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TransportError(String);

impl HttpConnection {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        rpc: Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        // The group rides in the path, so the peer parses the (large) body once, as its type.
        let url = format!("http://{}/raft/{path}/{}", self.addr, self.group);
        let sent = self
            .client
            .http
            .post(&url)
            .header(TOKEN_HEADER, &*self.client.token)
            .timeout(option.hard_ttl())
            .json(&rpc)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            // A refused or failed connection: openraft backs off before dialling again.
            Err(e) if e.is_connect() => {
                return Err(RPCError::Unreachable(Unreachable::new(&TransportError(
                    format!("node {} at {}: {e}", self.target, self.addr),
                ))));
            }
            Err(e) => return Err(network_error(format!("{url}: {e}"))),
        };
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(network_error(format!("{url}: HTTP {status}: {text}")));
        }
        let result: Result<Resp, RaftError<NodeId, E>> = response
            .json()
            .await
            .map_err(|e| network_error(format!("{url}: bad response: {e}")))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

fn network_error<E: std::error::Error>(message: String) -> RPCError<NodeId, BasicNode, E> {
    RPCError::Network(NetworkError::new(&TransportError(message)))
}

impl<C> RaftNetwork<C> for HttpConnection
where
    C: RaftTypeConfig<NodeId = NodeId, Node = BasicNode>,
{
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<C>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call("append", rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<C>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call("snapshot", rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call("vote", rpc, &option).await
    }
}
