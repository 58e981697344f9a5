//! The state machine openraft applies committed entries to: the [`ReplicasState`] in
//! memory, made durable by snapshots (`<store>/raft/snapshot`, replaced atomically) plus
//! the log. On restart the snapshot is loaded and openraft re-applies the committed log
//! after it, so the state survives any crash.

use std::io::{self, Cursor};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StorageIOError, StoredMembership,
};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use super::{Applied, NodeId, TypeConfig};
use crate::state::ReplicasState;
use rocketmq_common::persist::write_file_atomically as write_atomically;

/// What the application reads: the state and how far it is applied.
#[derive(Debug, Default)]
pub struct AppliedState {
    /// The replicated state.
    pub state: ReplicasState,
    /// Last applied log id.
    pub last_applied: Option<LogId<NodeId>>,
    /// Last applied membership.
    pub membership: StoredMembership<NodeId, BasicNode>,
}

/// The current snapshot: its meta and serialized state.
type CurrentSnapshot = Option<(SnapshotMeta<NodeId, BasicNode>, Vec<u8>)>;

/// Shared, read-mostly view of the applied state.
pub type SharedState = Arc<RwLock<AppliedState>>;

#[derive(Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta<NodeId, BasicNode>,
    state: ReplicasState,
}

/// The state machine handed to openraft; clones share the state.
#[derive(Debug, Clone)]
pub struct StateMachineStore {
    shared: SharedState,
    snapshot_path: PathBuf,
    current: Arc<RwLock<CurrentSnapshot>>,
    built: Arc<AtomicU64>,
}

impl StateMachineStore {
    /// Opens the state machine under `dir`, restoring the last snapshot.
    pub fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let snapshot_path = dir.join("snapshot");
        let mut applied = AppliedState::default();
        let mut current = None;
        if let Ok(bytes) = std::fs::read(&snapshot_path) {
            let file: SnapshotFile = serde_json::from_slice(&bytes).map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {e}", snapshot_path.display()),
                )
            })?;
            applied.state = file.state.clone();
            applied.last_applied = file.meta.last_log_id;
            applied.membership = file.meta.last_membership.clone();
            let data = serde_json::to_vec(&file.state).expect("state serialises");
            current = Some((file.meta, data));
        }
        Ok(Self {
            shared: Arc::new(RwLock::new(applied)),
            snapshot_path,
            current: Arc::new(RwLock::new(current)),
            built: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The shared applied state.
    pub fn shared(&self) -> SharedState {
        self.shared.clone()
    }

    fn persist(
        &self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        state: &ReplicasState,
    ) -> io::Result<()> {
        let file = SnapshotFile {
            meta: meta.clone(),
            state: state.clone(),
        };
        write_atomically(
            &self.snapshot_path,
            &serde_json::to_vec(&file).expect("snapshots serialise"),
        )
    }
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachineStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let (state, last_applied, membership) = {
            let a = self.shared.read();
            (a.state.clone(), a.last_applied, a.membership.clone())
        };
        let n = self.built.fetch_add(1, Ordering::Relaxed);
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id: format!("{}-{}", last_applied.map_or(0, |l| l.index), n),
        };
        let data = serde_json::to_vec(&state).expect("state serialises");
        let this = self.clone();
        let (m, s) = (meta.clone(), state);
        tokio::task::spawn_blocking(move || this.persist(&m, &s))
            .await
            .map_err(io::Error::other)
            .and_then(|r| r)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        *self.current.write() = Some((meta.clone(), data.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        let a = self.shared.read();
        Ok((a.last_applied, a.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Applied>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut a = self.shared.write();
        let mut out = Vec::new();
        for entry in entries {
            a.last_applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(event) => a.state.apply(&event),
                EntryPayload::Membership(m) => {
                    a.membership = StoredMembership::new(Some(entry.log_id), m);
                }
            }
            // openraft expects exactly one response per entry, blanks included.
            out.push(Applied);
        }
        Ok(out)
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
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        let state: ReplicasState = serde_json::from_slice(&data)
            .map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let this = self.clone();
        let (m, s) = (meta.clone(), state.clone());
        tokio::task::spawn_blocking(move || this.persist(&m, &s))
            .await
            .map_err(io::Error::other)
            .and_then(|r| r)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        {
            let mut a = self.shared.write();
            a.state = state;
            a.last_applied = meta.last_log_id;
            a.membership = meta.last_membership.clone();
        }
        *self.current.write() = Some((meta.clone(), data));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        Ok(self.current.read().as_ref().map(|(meta, data)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new(Cursor::new(data.clone())),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Event;
    use openraft::{CommittedLeaderId, EntryPayload};

    #[tokio::test]
    async fn a_snapshot_brings_the_state_back_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let mut sm = StateMachineStore::open(dir.path()).unwrap();
        let entry = Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(1, 0), 7),
            payload: EntryPayload::Normal(Event::ApplyBrokerId {
                cluster_name: "c".into(),
                broker_name: "b".into(),
                broker_address: "a:1".into(),
                new_broker_id: 1,
                register_check_code: "a:1;1".into(),
            }),
        };
        assert_eq!(sm.apply([entry]).await.unwrap().len(), 1);
        let snap = sm.build_snapshot().await.unwrap();
        assert_eq!(snap.meta.last_log_id.unwrap().index, 7);
        drop(sm);
        let mut reopened = StateMachineStore::open(dir.path()).unwrap();
        let (applied, _) = reopened.applied_state().await.unwrap();
        assert_eq!(applied.unwrap().index, 7);
        assert_eq!(reopened.shared().read().state.groups["b"].brokers.len(), 1);
        let current = reopened.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta.snapshot_id, snap.meta.snapshot_id);
        // Installing a snapshot replaces the state.
        let other_dir = tempfile::tempdir().unwrap();
        let mut other = StateMachineStore::open(other_dir.path()).unwrap();
        other
            .install_snapshot(&current.meta, current.snapshot)
            .await
            .unwrap();
        assert_eq!(other.shared().read().state.groups.len(), 1);
    }
}
