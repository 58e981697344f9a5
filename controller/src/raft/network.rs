//! Consensus traffic between controllers, carried over Remoting on the controllers' own
//! port (as RocketMQ's DLedger controller does): private request codes
//! CONTROLLER_RAFT_APPEND_ENTRIES / _VOTE / _INSTALL_SNAPSHOT with JSON bodies. Every request
//! names its target node and group; a controller answers only requests meant for it, so a
//! misconfigured peer list cannot make two groups talk past each other.

use std::time::Duration;

use openraft::BasicNode;
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use rocketmq_common::command_header;
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{RemotingClient, RemotingError};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{NodeId, TypeConfig};

command_header! {
    /// Header of every consensus request.
    pub struct RaftRequestHeader {
        /// The node the request is meant for.
        target_node_id: u64 = "targetNodeId",
        /// The consensus group (`controllerDLegerGroup`).
        group: String = "group",
    }
}

/// Creates one [`PeerConnection`] per target; all share the pooled Remoting client.
#[derive(Clone)]
pub struct RemotingNetwork {
    client: RemotingClient,
    group: String,
}

impl RemotingNetwork {
    /// A network for consensus group `group`.
    pub fn new(client: RemotingClient, group: String) -> Self {
        Self { client, group }
    }
}

impl RaftNetworkFactory<TypeConfig> for RemotingNetwork {
    type Network = PeerConnection;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerConnection {
        PeerConnection {
            client: self.client.clone(),
            group: self.group.clone(),
            target,
            addr: node.addr.clone(),
        }
    }
}

/// Requests to one peer.
pub struct PeerConnection {
    client: RemotingClient,
    group: String,
    target: NodeId,
    addr: String,
}

/// Why a consensus request failed before the peer's raft answered.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct TransportError(String);

impl PeerConnection {
    async fn call<Req: Serialize, Resp: DeserializeOwned, E>(
        &self,
        code: RequestCode,
        rpc: &Req,
        timeout: Duration,
    ) -> Result<Resp, RPCError<NodeId, BasicNode, RaftError<NodeId, E>>>
    where
        E: std::error::Error + DeserializeOwned,
    {
        let header = RaftRequestHeader {
            target_node_id: self.target,
            group: self.group.clone(),
        };
        let body = serde_json::to_vec(rpc).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let request = RemotingCommand::request(code, &header).with_body(body);
        let response = match self.client.invoke(&self.addr, request, timeout).await {
            Ok(r) => r,
            Err(e @ (RemotingError::Connect { .. } | RemotingError::ConnectTimeout { .. })) => {
                return Err(RPCError::Unreachable(Unreachable::new(&e)));
            }
            Err(e) => {
                // Drop the connection: the next call reconnects instead of queueing behind
                // a stuck one.
                self.client.close(&self.addr);
                return Err(RPCError::Network(NetworkError::new(&e)));
            }
        };
        if response.code != ResponseCode::Success.as_i32() {
            let e = TransportError(format!(
                "{} refused the consensus request: code {} {}",
                self.addr,
                response.code,
                response.remark.unwrap_or_default()
            ));
            return Err(RPCError::Network(NetworkError::new(&e)));
        }
        let result: Result<Resp, RaftError<NodeId, E>> = serde_json::from_slice(&response.body)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for PeerConnection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(
            RequestCode::CONTROLLER_RAFT_APPEND_ENTRIES,
            &rpc,
            option.hard_ttl(),
        )
        .await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(
            RequestCode::CONTROLLER_RAFT_INSTALL_SNAPSHOT,
            &rpc,
            option.hard_ttl(),
        )
        .await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(RequestCode::CONTROLLER_RAFT_VOTE, &rpc, option.hard_ttl())
            .await
    }
}
