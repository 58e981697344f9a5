//! The consensus log on disk: one append-only file of CRC-framed JSON entries, plus small
//! files for the vote and the log pointers, each replaced atomically.
//!
//! Layout under `<controllerStorePath>/raft/`:
//! * `log`: frames `u32 length | u32 crc32(payload) | payload (JSON entry)`, big-endian.
//! * `vote`: the last vote (JSON).
//! * `pointers`: `{lastPurged, committed}` (JSON).
//!
//! Invariants: an entry is acknowledged to openraft only after its frame is fsynced; a
//! torn or corrupt tail frame (a crash mid-append) is cut on open, and only that tail can
//! be affected, since frames are only ever appended or cut from the end; entries at or
//! below `lastPurged` are dropped on open (a crash between recording a purge and
//! compacting the file leaves them behind harmlessly).

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};

use rocketmq_common::persist::write_file_atomically as write_atomically;
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    Entry, LogId, OptionalSend, RaftLogId, RaftLogReader, StorageError, StorageIOError, Vote,
};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::{NodeId, TypeConfig};

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> io::Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Pointers {
    last_purged: Option<LogId<NodeId>>,
    committed: Option<LogId<NodeId>>,
}

const FRAME_HEADER: usize = 8;

fn frame(entry: &Entry<TypeConfig>) -> Vec<u8> {
    let payload = serde_json::to_vec(entry).expect("log entries serialise to JSON");
    let mut out = Vec::with_capacity(FRAME_HEADER + payload.len());
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Reads every intact frame; returns the entries with their file offsets and where the
/// intact prefix ends.
fn scan(bytes: &[u8]) -> (Vec<(u64, Entry<TypeConfig>)>, u64) {
    let mut at = 0usize;
    let mut out = Vec::new();
    while bytes.len() - at >= FRAME_HEADER {
        let len = u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_be_bytes(bytes[at + 4..at + 8].try_into().expect("4 bytes"));
        let Some(payload) = bytes.get(at + FRAME_HEADER..at + FRAME_HEADER + len) else {
            break;
        };
        if crc32fast::hash(payload) != crc {
            break;
        }
        let Ok(entry) = serde_json::from_slice::<Entry<TypeConfig>>(payload) else {
            break;
        };
        out.push((at as u64, entry));
        at += FRAME_HEADER + len;
    }
    (out, at as u64)
}

#[derive(Debug)]
struct LogFiles {
    dir: PathBuf,
    log: File,
    log_len: u64,
    /// Index → (entry, file offset of its frame).
    entries: BTreeMap<u64, (Entry<TypeConfig>, u64)>,
    pointers: Pointers,
    vote: Option<Vote<NodeId>>,
}

impl LogFiles {
    fn open(dir: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("log");
        let mut log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let mut bytes = Vec::new();
        log.read_to_end(&mut bytes)?;
        let (frames, intact) = scan(&bytes);
        if intact < bytes.len() as u64 {
            tracing::warn!(
                cut = bytes.len() as u64 - intact,
                "cutting a torn tail off the controller log"
            );
            log.set_len(intact)?;
            log.sync_all()?;
        }
        let pointers: Pointers = read_json(&dir.join("pointers"))?.unwrap_or_default();
        let vote = read_json(&dir.join("vote"))?;
        let purged_up_to = pointers.last_purged.map(|l| l.index);
        let entries = frames
            .into_iter()
            .filter(|(_, e)| purged_up_to.is_none_or(|p| e.log_id.index > p))
            .map(|(off, e)| (e.log_id.index, (e, off)))
            .collect();
        log.seek(SeekFrom::Start(intact))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            log,
            log_len: intact,
            entries,
            pointers,
            vote,
        })
    }

    fn append(&mut self, entries: Vec<Entry<TypeConfig>>) -> io::Result<()> {
        let mut buf = Vec::new();
        let mut placed = Vec::with_capacity(entries.len());
        for e in entries {
            let off = self.log_len + buf.len() as u64;
            buf.extend_from_slice(&frame(&e));
            placed.push((e, off));
        }
        self.log.write_all(&buf)?;
        self.log.sync_data()?;
        self.log_len += buf.len() as u64;
        for (e, off) in placed {
            self.entries.insert(e.log_id.index, (e, off));
        }
        Ok(())
    }

    fn truncate_from(&mut self, index: u64) -> io::Result<()> {
        let Some(off) = self.entries.range(index..).next().map(|(_, (_, off))| *off) else {
            return Ok(());
        };
        self.log.set_len(off)?;
        self.log.sync_data()?;
        self.log.seek(SeekFrom::Start(off))?;
        self.log_len = off;
        self.entries.split_off(&index);
        Ok(())
    }

    fn purge_up_to(&mut self, log_id: LogId<NodeId>) -> io::Result<()> {
        self.pointers.last_purged = Some(log_id);
        self.save_pointers()?;
        self.entries = self.entries.split_off(&(log_id.index + 1));
        // Rewrite the file without the purged prefix: the log is small (elections and
        // membership changes), so a copy is cheap and keeps the file bounded.
        let tmp = self.dir.join("log.compact");
        let mut buf = Vec::new();
        let mut kept = BTreeMap::new();
        for (index, (e, _)) in std::mem::take(&mut self.entries) {
            let off = buf.len() as u64;
            buf.extend_from_slice(&frame(&e));
            kept.insert(index, (e, off));
        }
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&buf)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, self.dir.join("log"))?;
        File::open(&self.dir)?.sync_all()?;
        self.log = OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.dir.join("log"))?;
        self.log.seek(SeekFrom::End(0))?;
        self.log_len = buf.len() as u64;
        self.entries = kept;
        Ok(())
    }

    fn save_pointers(&self) -> io::Result<()> {
        write_atomically(
            &self.dir.join("pointers"),
            &serde_json::to_vec(&self.pointers).expect("pointers serialise"),
        )
    }
}

/// The log storage handed to openraft; clones share the files.
#[derive(Debug, Clone)]
pub struct LogStore {
    files: Arc<Mutex<LogFiles>>,
}

impl LogStore {
    /// Opens (creating) the log under `dir`, cutting a torn tail.
    pub fn open(dir: &Path) -> io::Result<Self> {
        Ok(Self {
            files: Arc::new(Mutex::new(LogFiles::open(dir)?)),
        })
    }

    /// Whether nothing was ever stored (a fresh node that must initialize the group).
    pub fn is_pristine(&self) -> bool {
        let f = self.files.lock();
        f.vote.is_none() && f.entries.is_empty() && f.pointers.last_purged.is_none()
    }

    /// Runs blocking file work off the async runtime.
    async fn blocking<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut LogFiles) -> io::Result<R> + Send + 'static,
    ) -> io::Result<R> {
        let files = self.files.clone();
        tokio::task::spawn_blocking(move || f(&mut files.lock()))
            .await
            .map_err(io::Error::other)?
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        Ok(self
            .files
            .lock()
            .entries
            .range(range)
            .map(|(_, (e, _))| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let f = self.files.lock();
        let last_purged_log_id = f.pointers.last_purged;
        let last_log_id = f
            .entries
            .last_key_value()
            .map(|(_, (e, _))| *e.get_log_id())
            .or(last_purged_log_id);
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let vote = *vote;
        self.blocking(move |f| {
            write_atomically(
                &f.dir.join("vote"),
                &serde_json::to_vec(&vote).expect("votes serialise"),
            )?;
            f.vote = Some(vote);
            Ok(())
        })
        .await
        .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        Ok(self.files.lock().vote)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.blocking(move |f| {
            f.pointers.committed = committed;
            f.save_pointers()
        })
        .await
        .map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.files.lock().pointers.committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        match self.blocking(move |f| f.append(entries)).await {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let err = StorageIOError::write_logs(&e).into();
                callback.log_io_completed(Err(e));
                Err(err)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.blocking(move |f| f.truncate_from(log_id.index))
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.blocking(move |f| f.purge_up_to(log_id))
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{CommittedLeaderId, EntryPayload};

    fn entry(index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 0), index),
            payload: EntryPayload::Blank,
        }
    }

    #[test]
    fn torn_tail_is_cut_and_purged_entries_stay_gone() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut f = LogFiles::open(dir.path()).unwrap();
            f.append((1..=5).map(entry).collect()).unwrap();
        }
        // A crash mid-append: half a frame at the end.
        let path = dir.path().join("log");
        let mut bytes = std::fs::read(&path).unwrap();
        let whole = bytes.len();
        bytes.extend_from_slice(&frame(&entry(6))[..10]);
        std::fs::write(&path, &bytes).unwrap();
        let mut f = LogFiles::open(dir.path()).unwrap();
        assert_eq!(f.entries.len(), 5);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole as u64);
        // Appends continue after the cut; truncation drops a suffix.
        f.append(vec![entry(6), entry(7)]).unwrap();
        f.truncate_from(7).unwrap();
        f.purge_up_to(entry(3).log_id).unwrap();
        drop(f);
        let f = LogFiles::open(dir.path()).unwrap();
        assert_eq!(f.entries.keys().copied().collect::<Vec<_>>(), vec![4, 5, 6]);
        assert_eq!(f.pointers.last_purged.unwrap().index, 3);
    }
}
