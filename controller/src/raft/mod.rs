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

#[cfg(test)]
mod tests {
    use openraft::StorageError;
    use openraft::testing::{StoreBuilder, Suite};

    use super::log_store::LogStore;
    use super::state_machine::StateMachineStore;
    use super::{NodeId, TypeConfig};

    /// Fresh stores in a temporary directory (kept alive by the returned guard).
    struct TempStores;

    impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for TempStores {
        async fn build(
            &self,
        ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError<NodeId>>
        {
            let dir = tempfile::tempdir().expect("temp dir");
            let log = LogStore::open(dir.path()).expect("log store");
            let sm = StateMachineStore::open(dir.path()).expect("state machine");
            Ok((dir, log, sm))
        }
    }

    /// openraft's own conformance suite for storage implementations.
    #[test]
    fn storage_passes_openraft_suite() {
        Suite::test_all(TempStores).unwrap();
    }
}
