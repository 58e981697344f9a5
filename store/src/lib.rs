//! The message store: CommitLog + ConsumeQueues + IndexFile in RocketMQ's on-disk layout.
//!
//! Entry points: [`MessageStore::open`] (recovery included), [`MessageStore::put_message`]
//! (async; resolves when the flush policy says the message is stored),
//! [`MessageStore::get_messages`] (by queue offset), [`MessageStore::query_message`] (by key)
//! and [`MessageStore::shutdown`].
//!
//! Invariants the whole store relies on:
//! * One append path assigns physical offset, queue offset and store timestamp in one order.
//! * Bytes below the flushed offset are never rewritten; recovery only discards bytes past
//!   the last valid record and zeroes them on disk.
//! * With SYNC_FLUSH a put succeeds only after its bytes are msynced (group commit).
//! * ConsumeQueue/Index are derived data: they can always be rebuilt from the CommitLog, and
//!   a checkpoint timestamp advances only after the data it covers is durable.
//! * `<root>/abort` exists while the store is open; finding it at open means a crash.

pub mod checkpoint;
pub mod cleanup;
pub mod commitlog;
pub mod config;
pub mod consume_queue;
pub mod disk;
pub mod dispatch;
pub mod flush;
pub mod index;
pub mod mapped_file;
pub mod recovery;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::io::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use rocketmq_common::message::keys::{KEY_SEPARATOR, KEYS, UNIQ_KEY};
use rocketmq_common::message::{RecordInput, get_property};

pub use checkpoint::StoreCheckpoint;
pub use cleanup::{CleanupReport, CleanupService};
pub use commitlog::{AppendResult, CommitLog, QueueOffsetTable, SelectedBuffer};
pub use config::{FlushDiskType, MessageStoreConfig};
pub use consume_queue::{BoundaryType, ConsumeQueue, ConsumeQueueStore, CqEntry};
pub use dispatch::{ConfirmOffset, Dispatcher, MessageArrivalListener};
pub use flush::{FlushMode, FlushWatermark, Signal};
pub use index::IndexService;
pub use mapped_file::{MappedFile, MappedFileQueue};
pub use recovery::RecoveryReport;

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// File system error.
    #[error("store I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Body (or record) larger than allowed.
    #[error("message of {size} bytes exceeds the limit of {max}")]
    MessageTooLarge {
        /// Size.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// The message cannot be encoded (topic/properties too long).
    #[error("invalid message: {0}")]
    InvalidMessage(String),
    /// Stored bytes fail validation.
    #[error("corrupt record at offset {offset}: {reason}")]
    Corrupt {
        /// CommitLog offset.
        offset: i64,
        /// What failed.
        reason: String,
    },
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] config::InvalidConfig),
    /// Another process holds the store directory.
    #[error("store directory {0} is locked by another process")]
    Locked(String),
    /// The store is shutting down.
    #[error("store is shut down")]
    ShutDown,
    /// Replicated bytes that do not continue this replica's log.
    #[error("replicated bytes for offset {got}, but this replica's log ends at {expected}")]
    ReplicaOffset {
        /// This log's end.
        expected: i64,
        /// Where the bytes were meant to go.
        got: i64,
    },
}

/// Outcome of a put that did get written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutStatus {
    /// Stored per the flush policy.
    PutOk,
    /// Written, but SYNC_FLUSH did not complete within `syncFlushTimeout`
    /// (the broker answers FLUSH_DISK_TIMEOUT).
    FlushDiskTimeout,
}

/// Result of a put.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutResult {
    /// Status.
    pub status: PutStatus,
    /// Where the message went.
    pub append: AppendResult,
}

/// Result of a batch put: one [`AppendResult`] per message, one status for the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PutBatchResult {
    /// Status.
    pub status: PutStatus,
    /// Per-message placement, in input order.
    pub appends: Vec<AppendResult>,
}

/// Why a queue read returned no messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetStatus {
    /// Messages returned.
    Found,
    /// The queue does not exist or is empty.
    NoMessageInQueue,
    /// Offset below the queue's min.
    OffsetTooSmall,
    /// Offset equals the max: nothing new yet.
    OffsetOverflowOne,
    /// Offset beyond the max.
    OffsetOverflowBadly,
}

/// Messages read from one queue.
#[derive(Debug)]
pub struct GetMessageResult {
    /// Status.
    pub status: GetStatus,
    /// Where the next read should start.
    pub next_begin_offset: i64,
    /// Queue min offset.
    pub min_offset: i64,
    /// Queue max offset.
    pub max_offset: i64,
    /// Records (each CRC-verified), with their queue offsets.
    pub messages: Vec<(i64, SelectedBuffer)>,
}

/// Most ConsumeQueue entries one filtered read scans (Java's `maxFilterMessageCount`).
pub const MAX_FILTER_SCAN: i64 = 16_000;

/// The message store.
#[derive(Debug)]
pub struct MessageStore {
    config: MessageStoreConfig,
    commitlog: Arc<CommitLog>,
    queues: Arc<ConsumeQueueStore>,
    index: Option<Arc<IndexService>>,
    checkpoint: Arc<StoreCheckpoint>,
    dispatcher: Arc<Dispatcher>,
    confirm: Arc<ConfirmOffset>,
    cleanup: Arc<CleanupService>,
    flush_signal: Arc<Signal>,
    dispatch_signal: Arc<Signal>,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    recovery: RecoveryReport,
    _lock: File,
}

fn lock_dir(config: &MessageStoreConfig) -> Result<File, StoreError> {
    let path = config.lock_path();
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    // SAFETY: flock on an owned fd; released when the process dies, so a SIGKILLed
    // predecessor never blocks the restart.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        return Err(StoreError::Locked(
            config.store_path_root_dir.display().to_string(),
        ));
    }
    Ok(f)
}

impl MessageStore {
    /// Opens the store: locks the directory, recovers (crash recovery if the abort file
    /// exists), rebuilds ConsumeQueue/Index entries past the last consistent point, then
    /// starts the flush, dispatch and retention threads. `store_host` is written into
    /// every record's STOREHOST.
    pub fn open(config: MessageStoreConfig, store_host: SocketAddr) -> Result<Self, StoreError> {
        config.validate()?;
        std::fs::create_dir_all(&config.store_path_root_dir)?;
        let lock = lock_dir(&config)?;
        let abnormal = config.abort_path().exists();
        // Abort file: present from now until a clean shutdown. Created before recovery, so
        // a crash *during* recovery or rebuild is again recovered as a crash (normal
        // recovery trusts the ConsumeQueues, which are only complete after a clean stop).
        {
            let mut f = File::create(config.abort_path())?;
            write!(f, "{}", std::process::id())?;
            f.sync_all()?;
            File::open(&config.store_path_root_dir)?.sync_all()?;
        }
        let checkpoint = Arc::new(StoreCheckpoint::open(&config.checkpoint_path())?);
        let cp = checkpoint.values();

        let files = MappedFileQueue::load(
            &config.store_path_commit_log,
            config.mapped_file_size_commit_log,
        )?;
        let queues = Arc::new(ConsumeQueueStore::load(
            &config.consume_queue_dir(),
            config.mapped_file_size_consume_queue,
        )?);
        // ConsumeQueue tails first: their furthest entry is where dispatch stopped.
        let mut dispatched = 0i64;
        for cq in queues.all() {
            dispatched = dispatched.max(cq.recover(i64::MAX)?);
        }

        // Where to start reading: a record boundary below which everything is known good.
        // The checkpoint's flushed offset (msynced data) when it has one; before that field
        // existed, the segment chosen by timestamps. A clean shutdown flushed everything,
        // so the furthest dispatched record is also safe.
        let legacy_start = || {
            let index = if abnormal {
                let mut min_ts = cp.physic_msg_timestamp.min(cp.logics_msg_timestamp);
                if config.message_index_enable {
                    min_ts = min_ts.min(cp.index_msg_timestamp);
                }
                recovery::abnormal_scan_start(&files, min_ts)
                    .min(recovery::segment_index_of(&files, dispatched))
            } else {
                recovery::segment_index_of(&files, dispatched)
            };
            files
                .files()
                .get(index)
                .map_or(files.min_offset(), |f| f.file_from_offset())
        };
        let scan_from = if cp.physic_flushed_offset > 0 {
            let durable = if abnormal {
                cp.physic_flushed_offset
            } else {
                cp.physic_flushed_offset.max(dispatched)
            };
            durable.max(files.min_offset())
        } else {
            legacy_start()
        };
        let verify = abnormal || config.check_crc_on_recover;
        let scan = recovery::scan_valid_end(&files, scan_from, verify);
        let (end, scanned, garbage) = (scan.end, scan.messages, scan.garbage);
        if abnormal {
            tracing::warn!(
                scan_from,
                end,
                scanned,
                garbage,
                "crash recovery of the commitlog"
            );
        }
        files.truncate(end)?;
        // After a process crash the page cache may still hold unwritten pages of the
        // recovered range: make them durable before anything is acknowledged on top.
        let first_unsynced = recovery::segment_index_of(&files, scan_from);
        for f in files.files().iter().skip(first_unsynced) {
            f.sync_file()?;
        }

        let mut dispatched_after = 0i64;
        for cq in queues.all() {
            dispatched_after = dispatched_after.max(cq.recover(end)?);
            cq.correct_min_offset(files.min_offset());
        }
        let mut reput_from = dispatched_after.min(end).max(files.min_offset());
        if abnormal {
            // ConsumeQueue/index pages written after their last flush may be lost with the
            // machine: re-dispatch from where they are known durable (re-dispatch skips
            // entries that exist).
            let durable = if cp.logics_dispatched_offset > 0 {
                cp.logics_dispatched_offset
            } else {
                scan_from
            };
            reput_from = reput_from.min(durable).max(files.min_offset());
        }

        let index = if config.message_index_enable {
            Some(Arc::new(IndexService::load(
                &config.index_dir(),
                config.max_hash_slot_num,
                config.max_index_num,
            )?))
        } else {
            None
        };
        let commitlog = Arc::new(CommitLog::new(
            files,
            store_host,
            config.max_message_size,
            QueueOffsetTable::default(),
        ));
        // Store timestamps never go backwards within the log, even if the clock did.
        // The scan may have read no record (nothing after the durable point): the
        // checkpoint's timestamp of the last flushed message is the floor then.
        commitlog.set_min_store_timestamp(scan.last_store_timestamp.max(cp.physic_msg_timestamp));
        // Controller mode: only what every required replica held before the restart is
        // readable until the broker learns its role (and the new confirm offset).
        let confirm = Arc::new(ConfirmOffset::new(
            config.read_confirmed_only,
            cp.confirm_phy_offset.min(end),
        ));
        let dispatcher = Arc::new(Dispatcher::new(
            commitlog.clone(),
            queues.clone(),
            index.clone(),
            confirm.clone(),
            reput_from,
        ));
        // Rebuild derived data synchronously, then continue queue offsets from it.
        dispatcher.dispatch_available()?;
        commitlog.set_queue_offsets(queue_offsets_of(&queues));

        let cleanup = Arc::new(CleanupService::new(
            config.clone(),
            commitlog.clone(),
            queues.clone(),
            index.clone(),
            dispatcher.clone(),
        ));
        let store = Self {
            recovery: RecoveryReport {
                abnormal,
                scan_from,
                commitlog_end: end,
                messages_scanned: scanned,
                truncated_bytes: garbage,
                reput_from,
            },
            config,
            commitlog,
            queues,
            index,
            checkpoint,
            dispatcher,
            confirm,
            cleanup,
            flush_signal: Arc::new(Signal::default()),
            dispatch_signal: Arc::new(Signal::default()),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Mutex::new(Vec::new()),
            _lock: lock,
        };
        store.start_threads()?;
        Ok(store)
    }

    fn start_threads(&self) -> std::io::Result<()> {
        let mut threads = self.threads.lock();
        let mode = match self.config.flush_disk_type {
            FlushDiskType::SyncFlush => FlushMode::Sync,
            FlushDiskType::AsyncFlush => FlushMode::Async {
                interval: Duration::from_millis(self.config.flush_interval_commit_log),
                least_pages: self.config.flush_commit_log_least_pages,
                thorough_interval: Duration::from_millis(
                    self.config.flush_commit_log_thorough_interval,
                ),
            },
        };
        {
            let (cl, cp, sig, stop) = (
                self.commitlog.clone(),
                self.checkpoint.clone(),
                self.flush_signal.clone(),
                self.stop.clone(),
            );
            threads.push(
                std::thread::Builder::new()
                    .name("store-flush-commitlog".into())
                    .spawn(move || flush::run_flusher(cl, cp, sig, stop, mode))?,
            );
        }
        {
            let (d, sig, stop) = (
                self.dispatcher.clone(),
                self.dispatch_signal.clone(),
                self.stop.clone(),
            );
            threads.push(
                std::thread::Builder::new()
                    .name("store-reput".into())
                    .spawn(move || {
                        loop {
                            let stopping = stop.load(Ordering::Acquire);
                            if let Err(e) = d.dispatch_available() {
                                // Retry: an I/O error (e.g. disk full) may clear; consumers
                                // simply see no new messages meanwhile.
                                tracing::error!(error = %e, "dispatch failed; retrying in 1 s");
                                if stopping {
                                    return;
                                }
                                std::thread::sleep(Duration::from_secs(1));
                                continue;
                            }
                            if stopping {
                                return;
                            }
                            sig.wait(Duration::from_millis(1));
                        }
                    })?,
            );
        }
        {
            let (d, queues, index, cp, confirm, stop) = (
                self.dispatcher.clone(),
                self.queues.clone(),
                self.index.clone(),
                self.checkpoint.clone(),
                self.confirm.clone(),
                self.stop.clone(),
            );
            let interval = Duration::from_millis(self.config.flush_interval_consume_queue);
            threads.push(
                std::thread::Builder::new()
                    .name("store-flush-logics".into())
                    .spawn(move || {
                        let mut waited = Duration::ZERO;
                        loop {
                            let stopping = stop.load(Ordering::Acquire);
                            if stopping || waited >= interval {
                                waited = Duration::ZERO;
                                if let Err(e) =
                                    flush_logics(&d, &queues, index.as_deref(), &cp, &confirm)
                                {
                                    tracing::error!(error = %e, "consume queue flush failed");
                                }
                            }
                            if stopping {
                                return;
                            }
                            std::thread::sleep(Duration::from_millis(10));
                            waited += Duration::from_millis(10);
                        }
                    })?,
            );
        }
        if self.config.commit_log_prefault_ahead_bytes > 0 {
            let (cl, stop) = (self.commitlog.clone(), self.stop.clone());
            let ahead = self.config.commit_log_prefault_ahead_bytes;
            threads.push(
                std::thread::Builder::new()
                    .name("store-prefault".into())
                    .spawn(move || {
                        while !stop.load(Ordering::Acquire) {
                            if let Some(head) = cl.files().last()
                                && !head.prefault_ahead(ahead, 1 << 20)
                            {
                                tracing::info!("MADV_POPULATE_WRITE unsupported; no prefaulting");
                                return;
                            }
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    })?,
            );
        }
        {
            let (c, stop, root) = (
                self.cleanup.clone(),
                self.stop.clone(),
                self.config.store_path_commit_log.clone(),
            );
            let interval = Duration::from_millis(self.config.clean_resource_interval);
            threads.push(
                std::thread::Builder::new()
                    .name("store-cleanup".into())
                    .spawn(move || {
                        let mut waited = Duration::ZERO;
                        while !stop.load(Ordering::Acquire) {
                            std::thread::sleep(Duration::from_millis(50));
                            waited += Duration::from_millis(50);
                            if waited < interval {
                                continue;
                            }
                            waited = Duration::ZERO;
                            let usage = cleanup::disk_usage_ratio(&root).unwrap_or(0.0);
                            if let Err(e) = c.run_once(SystemTime::now(), usage) {
                                tracing::error!(error = %e, "retention round failed");
                            }
                        }
                    })?,
            );
        }
        Ok(())
    }

    /// Configuration.
    pub fn config(&self) -> &MessageStoreConfig {
        &self.config
    }
    /// The CommitLog.
    pub fn commitlog(&self) -> &Arc<CommitLog> {
        &self.commitlog
    }
    /// The ConsumeQueues.
    pub fn queues(&self) -> &Arc<ConsumeQueueStore> {
        &self.queues
    }
    /// The retention service (the store also runs it periodically).
    pub fn cleanup_service(&self) -> &CleanupService {
        &self.cleanup
    }
    /// What recovery did at open.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.recovery
    }
    /// Installs the listener told about each message made readable (long polling).
    pub fn set_message_arrival_listener(&self, listener: Arc<dyn MessageArrivalListener>) {
        self.dispatcher.set_arrival_listener(listener);
    }
    /// CommitLog offset up to which ConsumeQueue/Index are built.
    pub fn dispatched_offset(&self) -> i64 {
        self.dispatcher.dispatched_offset()
    }
    /// Durable CommitLog offset.
    pub fn flushed_offset(&self) -> i64 {
        self.commitlog.watermark().get()
    }

    fn check_running(&self) -> Result<(), StoreError> {
        if self.stop.load(Ordering::Acquire) {
            return Err(StoreError::ShutDown);
        }
        Ok(())
    }

    fn after_append(&self, end: i64) -> Option<(i64, Duration)> {
        self.dispatch_signal.wake();
        match self.config.flush_disk_type {
            FlushDiskType::SyncFlush => {
                self.flush_signal.wake();
                Some((end, Duration::from_millis(self.config.sync_flush_timeout)))
            }
            FlushDiskType::AsyncFlush => None,
        }
    }

    /// Stores one message; with SYNC_FLUSH resolves after it is durable. The append itself
    /// is short and lock-bound; no lock is held while waiting for the flush.
    pub async fn put_message(&self, msg: &RecordInput<'_>) -> Result<PutResult, StoreError> {
        self.check_running()?;
        let append = self.commitlog.append(msg)?;
        let status = match self.after_append(append.end_offset()) {
            Some((end, timeout)) if !self.commitlog.watermark().wait(end, timeout).await => {
                PutStatus::FlushDiskTimeout
            }
            _ => PutStatus::PutOk,
        };
        Ok(PutResult { status, append })
    }

    /// Blocking [`put_message`](Self::put_message) for non-async callers.
    pub fn put_message_blocking(&self, msg: &RecordInput<'_>) -> Result<PutResult, StoreError> {
        self.check_running()?;
        let append = self.commitlog.append(msg)?;
        let status = match self.after_append(append.end_offset()) {
            Some((end, timeout)) if !self.commitlog.watermark().wait_blocking(end, timeout) => {
                PutStatus::FlushDiskTimeout
            }
            _ => PutStatus::PutOk,
        };
        Ok(PutResult { status, append })
    }

    /// Stores a batch contiguously under one lock acquisition and one flush wait.
    pub async fn put_messages(
        &self,
        msgs: &[RecordInput<'_>],
    ) -> Result<PutBatchResult, StoreError> {
        self.check_running()?;
        let mut appends = Vec::with_capacity(msgs.len());
        self.commitlog.append_batch(msgs, &mut appends)?;
        let end = appends.last().map_or(0, |a| a.end_offset());
        let status = match self.after_append(end) {
            Some((end, timeout)) if !self.commitlog.watermark().wait(end, timeout).await => {
                PutStatus::FlushDiskTimeout
            }
            _ => PutStatus::PutOk,
        };
        Ok(PutBatchResult { status, appends })
    }

    /// The record at CommitLog `offset`, CRC-verified.
    pub fn get_message_by_offset(&self, offset: i64) -> Result<Option<SelectedBuffer>, StoreError> {
        let Some(buf) = self.commitlog.read_record(offset) else {
            return Ok(None);
        };
        if offset + buf.len() as i64 > self.readable_end() {
            return Ok(None);
        }
        buf.decode()?;
        Ok(Some(buf))
    }

    /// Up to `max_msgs` messages (and about `max_bytes`) of a queue from `offset`.
    pub fn get_messages(
        &self,
        topic: &str,
        queue_id: i32,
        offset: i64,
        max_msgs: usize,
        max_bytes: usize,
    ) -> Result<GetMessageResult, StoreError> {
        self.get_messages_filtered(topic, queue_id, offset, max_msgs, max_bytes, &|_| true)
    }

    /// Like [`get_messages`](Self::get_messages), but skips ConsumeQueue entries whose tag
    /// code `accept_tags_code` rejects without reading their CommitLog record (the tag-hash
    /// prefilter of a subscription). At most [`MAX_FILTER_SCAN`] entries are scanned per
    /// call, so a queue full of other tags still answers quickly (with `Found` and no
    /// messages, and a `next_begin_offset` past what was scanned).
    pub fn get_messages_filtered(
        &self,
        topic: &str,
        queue_id: i32,
        offset: i64,
        max_msgs: usize,
        max_bytes: usize,
        accept_tags_code: &dyn Fn(i64) -> bool,
    ) -> Result<GetMessageResult, StoreError> {
        let Some(cq) = self.queues.get(topic, queue_id) else {
            return Ok(GetMessageResult {
                status: GetStatus::NoMessageInQueue,
                next_begin_offset: 0,
                min_offset: 0,
                max_offset: 0,
                messages: Vec::new(),
            });
        };
        let (min, max) = (cq.min_offset(), cq.max_offset());
        let status_only = |status, next| GetMessageResult {
            status,
            next_begin_offset: next,
            min_offset: min,
            max_offset: max,
            messages: Vec::new(),
        };
        if max == 0 || min == max {
            return Ok(status_only(GetStatus::NoMessageInQueue, min));
        }
        if offset < min {
            return Ok(status_only(GetStatus::OffsetTooSmall, min));
        }
        if offset == max {
            return Ok(status_only(GetStatus::OffsetOverflowOne, offset));
        }
        if offset > max {
            return Ok(status_only(GetStatus::OffsetOverflowBadly, max));
        }
        let mut messages = Vec::new();
        let mut bytes = 0usize;
        let mut next = offset;
        let scan_limit = next + MAX_FILTER_SCAN.max(max_msgs as i64);
        while next < max && messages.len() < max_msgs && next < scan_limit {
            let Some(e) = cq.get(next) else {
                next += 1;
                continue;
            };
            if !accept_tags_code(e.tags_code) {
                next += 1;
                continue;
            }
            if !messages.is_empty() && bytes + e.size as usize > max_bytes {
                break;
            }
            let Some(buf) = self.commitlog.read(e.physical_offset, e.size as usize) else {
                // Segment already deleted by retention: skip forward.
                next += 1;
                continue;
            };
            // The record must be the one the entry claims: never serve another queue's
            // message, whatever state the ConsumeQueue is in.
            let m = buf.decode()?;
            if m.topic != topic || m.queue_id != queue_id || m.queue_offset != next {
                return Err(StoreError::Corrupt {
                    offset: e.physical_offset,
                    reason: format!(
                        "ConsumeQueue {topic}/{queue_id}@{next} points at {}/{}@{}",
                        m.topic, m.queue_id, m.queue_offset
                    ),
                });
            }
            bytes += e.size as usize;
            messages.push((next, buf));
            next += 1;
        }
        Ok(GetMessageResult {
            status: GetStatus::Found,
            next_begin_offset: next,
            min_offset: min,
            max_offset: max,
            messages,
        })
    }

    /// Min logical offset of a queue.
    pub fn min_offset_in_queue(&self, topic: &str, queue_id: i32) -> i64 {
        self.queues
            .get(topic, queue_id)
            .map_or(0, |q| q.min_offset())
    }
    /// Max logical offset (next to be written) of a queue.
    pub fn max_offset_in_queue(&self, topic: &str, queue_id: i32) -> i64 {
        self.queues
            .get(topic, queue_id)
            .map_or(0, |q| q.max_offset())
    }

    /// Queue offset for a timestamp (SEARCH_OFFSET_BY_TIMESTAMP).
    pub fn offset_by_time(
        &self,
        topic: &str,
        queue_id: i32,
        timestamp: i64,
        boundary: BoundaryType,
    ) -> i64 {
        let Some(cq) = self.queues.get(topic, queue_id) else {
            return 0;
        };
        cq.offset_by_time(timestamp, boundary, |e| {
            self.commitlog.store_timestamp_at(e.physical_offset)
        })
    }

    /// Messages of `topic` with business key or unique key `key` stored in `[begin, end]`
    /// ms, newest first. Every candidate from the index is re-read and checked.
    pub fn query_message(
        &self,
        topic: &str,
        key: &str,
        max: usize,
        begin: i64,
        end: i64,
    ) -> Result<Vec<SelectedBuffer>, StoreError> {
        let Some(index) = &self.index else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for off in index.query(topic, key, max, begin, end) {
            let Some(buf) = self.commitlog.read_record(off) else {
                continue;
            };
            let Ok(m) = buf.decode() else { continue };
            let matches = m.topic == topic
                && (get_property(m.properties, UNIQ_KEY) == Some(key)
                    || get_property(m.properties, KEYS)
                        .is_some_and(|ks| ks.split(KEY_SEPARATOR).any(|k| k == key)));
            if matches && m.store_timestamp >= begin && m.store_timestamp <= end {
                out.push(buf.clone());
            }
        }
        Ok(out)
    }

    /// CommitLog offset below which records are readable: the confirm offset in controller
    /// mode, else the end of the log.
    pub fn readable_end(&self) -> i64 {
        self.confirm.bound(self.commitlog.max_offset())
    }

    /// The confirm offset: with gated reads the stored value, else the end of the log.
    pub fn confirm_offset(&self) -> i64 {
        self.readable_end()
    }

    /// Sets the confirm offset (the replication layer computes it) and lets dispatch
    /// catch up to it. Without gated reads it has no effect.
    pub fn set_confirm_offset(&self, offset: i64) {
        if self.confirm.is_gated() && self.confirm.get() != offset {
            self.confirm.set(offset);
            self.dispatch_signal.wake();
        }
    }

    /// Makes the confirm offset follow the end of the log (a master that confirms every
    /// append at once) or, with `false`, stay at the value last set. The value is set to
    /// the current bound first, so switching never moves what readers see.
    pub fn set_confirm_follows_log_end(&self, follow: bool) {
        if !self.confirm.is_gated() {
            return;
        }
        self.confirm.set(self.readable_end());
        self.confirm.set_follows_log_end(follow);
        self.dispatch_signal.wake();
    }

    /// Replica side: appends bytes shipped by the master at `offset` (see
    /// [`CommitLog::append_replicated`]) and wakes flush and dispatch. Returns the new end.
    pub fn append_replicated(&self, offset: i64, data: &[u8]) -> Result<i64, StoreError> {
        self.check_running()?;
        let end = self.commitlog.append_replicated(offset, data)?;
        self.after_append(end);
        Ok(end)
    }

    /// Drops every record at or after `offset` (a replica cutting a tail that diverged from
    /// the new master): CommitLog, ConsumeQueue entries, queue offsets, the dispatch
    /// position, the flushed and confirm offsets, and the checkpoint. Index entries above
    /// the cut stay, but every index hit is re-read and checked.
    pub fn truncate_tail(&self, offset: i64) -> Result<(), StoreError> {
        self.check_running()?;
        let offset = offset.max(self.commitlog.min_offset());
        if offset >= self.commitlog.max_offset() {
            return Ok(());
        }
        tracing::warn!(
            offset,
            max_offset = self.commitlog.max_offset(),
            "truncating the commitlog tail"
        );
        self.dispatcher
            .rewind_to(offset, || -> Result<(), StoreError> {
                // The checkpoint first: a crash in between must never leave a recorded
                // durable offset above the cut.
                self.checkpoint.lower_offsets_to(offset)?;
                self.confirm.lower_to(offset);
                self.commitlog.truncate_tail(offset)?;
                for cq in self.queues.all() {
                    cq.truncate_physical(offset)?;
                }
                self.commitlog
                    .set_queue_offsets(queue_offsets_of(&self.queues));
                Ok(())
            })
    }

    /// Prepares a replica to take writes: confirms and dispatches everything it holds (a
    /// new master is alone in its SyncStateSet, so its whole log is confirmed), then
    /// continues every queue's offsets from its ConsumeQueue. Nothing may append meanwhile.
    pub fn prepare_for_writes(&self) -> Result<(), StoreError> {
        self.check_running()?;
        self.confirm.set(self.commitlog.max_offset());
        self.confirm.set_follows_log_end(false);
        self.dispatcher.dispatch_available()?;
        self.commitlog
            .set_queue_offsets(queue_offsets_of(&self.queues));
        Ok(())
    }

    /// Clean shutdown: stops accepting puts, dispatches and flushes everything, writes the
    /// checkpoint and removes the abort file. Idempotent.
    pub fn shutdown(&self) -> Result<(), StoreError> {
        if self.stop.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.flush_signal.wake();
        self.dispatch_signal.wake();
        for t in self.threads.lock().drain(..) {
            if t.join().is_err() {
                tracing::error!("a store thread panicked");
            }
        }
        let ts = self.commitlog.last_appended_timestamp();
        let flushed = self.commitlog.flush()?;
        self.checkpoint.set_physic_msg_timestamp(ts);
        self.checkpoint.set_physic_flushed_offset(flushed);
        self.dispatcher.dispatch_available()?;
        flush_logics(
            &self.dispatcher,
            &self.queues,
            self.index.as_deref(),
            &self.checkpoint,
            &self.confirm,
        )?;
        std::fs::remove_file(self.config.abort_path())?;
        File::open(&self.config.store_path_root_dir)?.sync_all()?;
        Ok(())
    }
}

impl Drop for MessageStore {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(error = %e, "store shutdown failed; next start runs crash recovery");
        }
    }
}

/// Next queue offset of every queue, from the ConsumeQueues.
fn queue_offsets_of(queues: &ConsumeQueueStore) -> QueueOffsetTable {
    let mut table = QueueOffsetTable::default();
    for cq in queues.all() {
        table.set(cq.topic(), cq.queue_id(), cq.max_offset());
    }
    table
}

/// Flushes ConsumeQueues and index, then advances their checkpoint timestamps.
fn flush_logics(
    d: &Dispatcher,
    queues: &ConsumeQueueStore,
    index: Option<&IndexService>,
    cp: &StoreCheckpoint,
    confirm: &ConfirmOffset,
) -> std::io::Result<()> {
    if confirm.is_gated() {
        cp.store_confirm_phy_offset(confirm.get());
    }
    // Timestamp and offset first: everything dispatched up to them is covered by the flush
    // below.
    let ts = d.last_dispatched_timestamp();
    let dispatched = d.dispatched_offset();
    for q in queues.all() {
        q.flush()?;
    }
    if let Some(index) = index {
        index.flush()?;
        cp.set_index_msg_timestamp(ts);
    }
    cp.set_logics_msg_timestamp(ts);
    cp.set_logics_dispatched_offset(dispatched);
    cp.flush()
}
