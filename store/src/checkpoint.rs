//! `store/checkpoint`: how far the CommitLog, ConsumeQueues and IndexFile were known durable.
//!
//! A 4 KiB memory-mapped page, big-endian i64s: @0 physicMsgTimestamp, @8
//! logicsMsgTimestamp, @16 indexMsgTimestamp, @24 masterFlushedOffset, @32 confirmPhyOffset
//! (RocketMQ's layout). A timestamp is only ever advanced *after* the data it describes was
//! msynced, so after a crash everything stored at or before
//! `min(physic, logics, index)` is durable and recovery may start scanning there.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;

use memmap2::MmapMut;
use parking_lot::Mutex;

const FILE_SIZE: u64 = 4096;

/// The checkpoint values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckpointValues {
    /// Store timestamp of the last message durable in the CommitLog.
    pub physic_msg_timestamp: i64,
    /// Store timestamp of the last message durable in the ConsumeQueues.
    pub logics_msg_timestamp: i64,
    /// Store timestamp of the last message durable in the IndexFile.
    pub index_msg_timestamp: i64,
    /// Master flushed offset (kept for layout compatibility).
    pub master_flushed_offset: i64,
    /// Confirm offset: below it every required replica held the bytes (controller mode).
    pub confirm_phy_offset: i64,
    /// CommitLog offset (a record boundary) below which everything is durable; 0 if never
    /// recorded.
    pub physic_flushed_offset: i64,
    /// CommitLog offset below which every record's ConsumeQueue and index entries are
    /// durable; 0 if never recorded.
    pub logics_dispatched_offset: i64,
}

/// The mapped checkpoint file.
#[derive(Debug)]
pub struct StoreCheckpoint {
    map: Mutex<MmapMut>,
}

impl StoreCheckpoint {
    /// Opens or creates the checkpoint file.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        if file.metadata()?.len() < FILE_SIZE {
            file.set_len(FILE_SIZE)?;
        }
        // SAFETY: the store holds the directory lock; no other process maps this file.
        let map = unsafe { MmapMut::map_mut(&file)? };
        Ok(Self {
            map: Mutex::new(map),
        })
    }

    fn get(map: &MmapMut, at: usize) -> i64 {
        i64::from_be_bytes(map[at..at + 8].try_into().expect("8 bytes"))
    }

    /// Current values.
    pub fn values(&self) -> CheckpointValues {
        let m = self.map.lock();
        CheckpointValues {
            physic_msg_timestamp: Self::get(&m, 0),
            logics_msg_timestamp: Self::get(&m, 8),
            index_msg_timestamp: Self::get(&m, 16),
            master_flushed_offset: Self::get(&m, 24),
            confirm_phy_offset: Self::get(&m, 32),
            physic_flushed_offset: Self::get(&m, 40),
            logics_dispatched_offset: Self::get(&m, 48),
        }
    }

    fn set(&self, at: usize, v: i64) {
        let mut m = self.map.lock();
        let cur = Self::get(&m, at);
        // Timestamps only move forward: a slow flusher must not roll back a newer value.
        if v > cur {
            m[at..at + 8].copy_from_slice(&v.to_be_bytes());
        }
    }

    /// Advances physicMsgTimestamp (call after the CommitLog was msynced).
    pub fn set_physic_msg_timestamp(&self, ts: i64) {
        self.set(0, ts);
    }
    /// Advances logicsMsgTimestamp (call after the ConsumeQueues were msynced).
    pub fn set_logics_msg_timestamp(&self, ts: i64) {
        self.set(8, ts);
    }
    /// Advances indexMsgTimestamp (call after the IndexFile was msynced).
    pub fn set_index_msg_timestamp(&self, ts: i64) {
        self.set(16, ts);
    }

    /// Advances physicFlushedOffset (call after the CommitLog was msynced up to it).
    pub fn set_physic_flushed_offset(&self, offset: i64) {
        self.set(40, offset);
    }
    /// Advances logicsDispatchedOffset (call after the ConsumeQueues and index were
    /// msynced with every entry of records below it).
    pub fn set_logics_dispatched_offset(&self, offset: i64) {
        self.set(48, offset);
    }

    /// Records the confirm offset (it moves back when a replica truncates its tail).
    pub fn store_confirm_phy_offset(&self, offset: i64) {
        self.map.lock()[32..40].copy_from_slice(&offset.to_be_bytes());
    }

    /// Runtime truncation of the CommitLog at `offset`: no recorded offset may stay above
    /// it, or a later recovery would start scanning past the cut. Flushes.
    pub fn lower_offsets_to(&self, offset: i64) -> io::Result<()> {
        {
            let mut m = self.map.lock();
            for at in [32, 40, 48] {
                if Self::get(&m, at) > offset {
                    m[at..at + 8].copy_from_slice(&offset.to_be_bytes());
                }
            }
        }
        self.flush()
    }

    /// Msyncs the page.
    pub fn flush(&self) -> io::Result<()> {
        self.map.lock().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_is_rocketmq_s() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint");
        let c = StoreCheckpoint::open(&path).unwrap();
        c.set_physic_msg_timestamp(0x0102_0304_0506_0708);
        c.set_logics_msg_timestamp(2);
        c.set_index_msg_timestamp(3);
        c.set_logics_msg_timestamp(1); // never goes back
        c.flush().unwrap();
        drop(c);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 4096);
        assert_eq!(&bytes[0..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&bytes[8..16], &2i64.to_be_bytes());
        assert_eq!(&bytes[16..24], &3i64.to_be_bytes());
        let c = StoreCheckpoint::open(&path).unwrap();
        assert_eq!(c.values().logics_msg_timestamp, 2);
    }
}
