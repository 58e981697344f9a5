//! The dispatch ("reput") service: follows the CommitLog and builds ConsumeQueue entries
//! and IndexFile keys for every new record.
//!
//! Invariant: records are dispatched strictly in CommitLog order, each exactly once per
//! run; re-dispatch after a restart is harmless (ConsumeQueue ignores entries it already
//! has, index queries deduplicate and verify).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::Mutex;

use rocketmq_common::message::keys::{KEY_SEPARATOR, KEYS, TAGS, UNIQ_KEY};
use rocketmq_common::message::record::END_FILE_MIN_BLANK_LENGTH;
use rocketmq_common::message::sysflag::{
    TRANSACTION_ROLLBACK_TYPE, is_invisible_transaction, transaction_value,
};
use rocketmq_common::message::{
    DecodedRecord, RecordEntry, decode_record, get_property, java_string_hash, parse_properties,
};

use super::StoreError;
use super::commitlog::CommitLog;
use super::consume_queue::{ConsumeQueueStore, CqEntry};
use super::index::IndexService;

/// Told about every message made visible in a ConsumeQueue: `(topic, queue_id,
/// queue_offset)`. The broker wakes long-polling pulls with it; it must not block.
pub trait MessageArrivalListener: Send + Sync {
    /// A message is now readable at `queue_offset` of `topic`/`queue_id`.
    fn on_message_arrived(&self, topic: &str, queue_id: i32, queue_offset: i64);
}

/// The confirm offset: the highest CommitLog offset every required replica holds. When
/// reads are gated (controller mode), dispatch (and so every consumer) stops there.
#[derive(Debug)]
pub struct ConfirmOffset {
    gated: bool,
    /// A master alone in its SyncStateSet (or not waiting for all of it) confirms
    /// everything it appends: the bound is the log end, with no per-append bookkeeping.
    follows_log_end: std::sync::atomic::AtomicBool,
    value: AtomicI64,
}

impl ConfirmOffset {
    /// A gate (when `gated`) starting at `value`.
    pub fn new(gated: bool, value: i64) -> Self {
        Self {
            gated,
            follows_log_end: std::sync::atomic::AtomicBool::new(false),
            value: AtomicI64::new(value),
        }
    }
    /// Makes the bound the log end (`true`) or the stored value (`false`).
    pub fn set_follows_log_end(&self, follow: bool) {
        self.follows_log_end.store(follow, Ordering::Release);
    }
    /// Whether reads stop at the confirm offset.
    pub fn is_gated(&self) -> bool {
        self.gated
    }
    /// The stored value (meaningful when gated).
    pub fn get(&self) -> i64 {
        self.value.load(Ordering::Acquire)
    }
    /// Sets the value.
    pub fn set(&self, offset: i64) {
        self.value.store(offset, Ordering::Release);
    }
    /// Lowers the value to at most `offset`.
    pub fn lower_to(&self, offset: i64) {
        self.value.fetch_min(offset, Ordering::AcqRel);
    }
    /// How far readers may see, given the CommitLog's `max_offset`.
    pub fn bound(&self, max_offset: i64) -> i64 {
        if self.gated && !self.follows_log_end.load(Ordering::Acquire) {
            self.get().min(max_offset)
        } else {
            max_offset
        }
    }
}

/// Builds ConsumeQueue and index entries behind the CommitLog.
pub struct Dispatcher {
    commitlog: Arc<CommitLog>,
    queues: Arc<ConsumeQueueStore>,
    index: Option<Arc<IndexService>>,
    confirm: Arc<ConfirmOffset>,
    /// Held for a whole dispatch pass, so a truncation can move `reput_from` back safely.
    running: Mutex<()>,
    reput_from: AtomicI64,
    last_dispatched_timestamp: AtomicI64,
    arrival: std::sync::OnceLock<Arc<dyn MessageArrivalListener>>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("reput_from", &self.reput_from)
            .field("last_dispatched_timestamp", &self.last_dispatched_timestamp)
            .finish_non_exhaustive()
    }
}

impl Dispatcher {
    /// A dispatcher starting at CommitLog offset `reput_from`, never passing the confirm
    /// offset when it is gated.
    pub fn new(
        commitlog: Arc<CommitLog>,
        queues: Arc<ConsumeQueueStore>,
        index: Option<Arc<IndexService>>,
        confirm: Arc<ConfirmOffset>,
        reput_from: i64,
    ) -> Self {
        Self {
            commitlog,
            queues,
            index,
            confirm,
            running: Mutex::new(()),
            reput_from: AtomicI64::new(reput_from),
            last_dispatched_timestamp: AtomicI64::new(0),
            arrival: std::sync::OnceLock::new(),
        }
    }

    /// Installs the arrival listener; only the first call takes effect.
    pub fn set_arrival_listener(&self, listener: Arc<dyn MessageArrivalListener>) {
        let _ = self.arrival.set(listener);
    }

    /// CommitLog offset up to which everything is dispatched.
    pub fn dispatched_offset(&self) -> i64 {
        self.reput_from.load(Ordering::Acquire)
    }

    /// Store timestamp of the last dispatched message.
    pub fn last_dispatched_timestamp(&self) -> i64 {
        self.last_dispatched_timestamp.load(Ordering::Acquire)
    }

    /// Runs `f` with dispatch paused and moves the dispatch position back to at most
    /// `offset` (runtime truncation of the CommitLog).
    pub(crate) fn rewind_to<R>(&self, offset: i64, f: impl FnOnce() -> R) -> R {
        let _paused = self.running.lock();
        let r = f();
        self.reput_from.fetch_min(offset, Ordering::AcqRel);
        r
    }

    /// Dispatches every published (and, when gated, confirmed) record; returns how many
    /// messages were dispatched.
    pub fn dispatch_available(&self) -> Result<usize, StoreError> {
        let _running = self.running.lock();
        let seg = self.commitlog.segment_size();
        let mut n = 0;
        loop {
            let from = self.dispatched_offset();
            let end = self.confirm.bound(self.commitlog.max_offset());
            if from >= end {
                return Ok(n);
            }
            let Some(buf) = self.commitlog.read_from(from) else {
                return Ok(n);
            };
            // Records never straddle the bound: the confirm offset is a record boundary.
            let len = buf.len().min((end - from) as usize);
            if len == 0 {
                // The head segment's next record is not published yet.
                return Ok(n);
            }
            let mut pos = 0usize;
            while pos < len {
                let remaining_in_segment = seg - ((from as usize + pos) % seg);
                if remaining_in_segment < END_FILE_MIN_BLANK_LENGTH {
                    // Too small even for a BLANK marker: the segment simply ends here.
                    pos += remaining_in_segment;
                    continue;
                }
                match decode_record(&buf[pos..], false) {
                    Ok(RecordEntry::Message(m)) => {
                        self.dispatch_one(&m)?;
                        self.last_dispatched_timestamp
                            .store(m.store_timestamp, Ordering::Release);
                        n += 1;
                        pos += m.total_size as usize;
                    }
                    // The BLANK's size runs to the segment end; the next record is at the
                    // start of the next segment.
                    Ok(RecordEntry::Blank { size }) => pos += size as usize,
                    Err(e) => {
                        return Err(StoreError::Corrupt {
                            offset: from + pos as i64,
                            reason: format!("dispatch: {e}"),
                        });
                    }
                }
                self.reput_from.store(from + pos as i64, Ordering::Release);
            }
        }
    }

    fn dispatch_one(&self, m: &DecodedRecord<'_>) -> Result<(), StoreError> {
        if !is_invisible_transaction(m.sys_flag) {
            let tags_code =
                get_property(m.properties, TAGS).map_or(0, |t| i64::from(java_string_hash(t)));
            let cq = self.queues.get_or_create(m.topic, m.queue_id)?;
            cq.put(
                m.queue_offset,
                CqEntry {
                    physical_offset: m.physical_offset,
                    size: m.total_size as i32,
                    tags_code,
                },
            )?;
            if let Some(listener) = self.arrival.get() {
                listener.on_message_arrived(m.topic, m.queue_id, m.queue_offset);
            }
        }
        if let Some(index) = &self.index
            && transaction_value(m.sys_flag) != TRANSACTION_ROLLBACK_TYPE
        {
            for (k, v) in parse_properties(m.properties) {
                if k == UNIQ_KEY {
                    index.put_key(m.topic, v, m.physical_offset, m.store_timestamp)?;
                } else if k == KEYS {
                    for key in v.split(KEY_SEPARATOR).filter(|s| !s.is_empty()) {
                        index.put_key(m.topic, key, m.physical_offset, m.store_timestamp)?;
                    }
                }
            }
        }
        Ok(())
    }
}
