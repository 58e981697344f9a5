//! Consensus for the controller on openraft: the type configuration, the durable log
//! ([`log_store`]), the state machine ([`state_machine`]) and the Remoting transport
//! ([`network`]).

pub mod log_store;
pub mod network;
pub mod state_machine;

use serde::{Deserialize, Serialize};

use crate::state::Event;

/// Controller node ids: the position of the peer in the sorted peer list.
pub type NodeId = u64;

/// What applying one entry yields (the request handler builds its answer itself).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied;

openraft::declare_raft_types!(
    /// openraft's type configuration for the controller.
    pub TypeConfig:
        D = Event,
        R = Applied,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        SnapshotData = std::io::Cursor<Vec<u8>>,
);

/// The controller's raft handle.
pub type Raft = openraft::Raft<TypeConfig>;
