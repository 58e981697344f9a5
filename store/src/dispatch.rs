//! The dispatch ("reput") service: follows the CommitLog and builds ConsumeQueue entries
//! and IndexFile keys for every new record.
//!
//! Invariant: records are dispatched strictly in CommitLog order, each exactly once per
//! run; re-dispatch after a restart is harmless (ConsumeQueue ignores entries it already
//! has, index queries deduplicate and verify).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

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

/// Builds ConsumeQueue and index entries behind the CommitLog.
pub struct Dispatcher {
    commitlog: Arc<CommitLog>,
    queues: Arc<ConsumeQueueStore>,
    index: Option<Arc<IndexService>>,
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
    /// A dispatcher starting at CommitLog offset `reput_from`.
    pub fn new(
        commitlog: Arc<CommitLog>,
        queues: Arc<ConsumeQueueStore>,
        index: Option<Arc<IndexService>>,
        reput_from: i64,
    ) -> Self {
        Self {
            commitlog,
            queues,
            index,
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

    /// Dispatches every published record; returns how many messages were dispatched.
    pub fn dispatch_available(&self) -> Result<usize, StoreError> {
        let seg = self.commitlog.segment_size();
        let mut n = 0;
        loop {
            let from = self.dispatched_offset();
            if from >= self.commitlog.max_offset() {
                return Ok(n);
            }
            let Some(buf) = self.commitlog.read_from(from) else {
                return Ok(n);
            };
            if buf.is_empty() {
                // The head segment's next record is not published yet.
                return Ok(n);
            }
            let mut pos = 0usize;
            while pos < buf.len() {
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
