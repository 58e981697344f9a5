//! Retention: deletes expired CommitLog segments, then ConsumeQueue and index files that
//! only point below the CommitLog's new minimum offset.
//!
//! A segment goes when it is older than `fileReservedTime` hours (by modification time)
//! and either the hour is one of `deleteWhen` or the disk is fuller than
//! `diskMaxUsedSpaceRatio`; above `diskSpaceCleanForciblyRatio` the oldest segments go even
//! if not expired. Never deleted: the head segment, a segment not yet fully flushed or
//! dispatched, and a segment a reader holds (retried next round).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::StoreError;
use super::commitlog::CommitLog;
use super::config::MessageStoreConfig;
use super::consume_queue::ConsumeQueueStore;
use super::dispatch::Dispatcher;
use super::index::IndexService;

/// At most this many segments per round (RocketMQ's `deleteFilesBatchMax`).
const DELETE_FILES_BATCH_MAX: usize = 10;

/// What one retention round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// CommitLog segments deleted.
    pub commitlog_files: usize,
    /// ConsumeQueue files deleted.
    pub consume_queue_files: usize,
    /// Index files deleted.
    pub index_files: usize,
}

/// Fraction of the filesystem holding `path` that is used (0.0..=1.0).
pub fn disk_usage_ratio(path: &Path) -> std::io::Result<f64> {
    let space = disk_space(path)?;
    if space.total == 0 {
        return Ok(0.0);
    }
    Ok((space.total - space.free) as f64 / space.total as f64)
}

/// Size of a file system, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskSpace {
    /// Capacity.
    pub total: u64,
    /// Free space.
    pub free: u64,
}

/// Capacity and free space of the file system holding `path`.
pub fn disk_space(path: &Path) -> std::io::Result<DiskSpace> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: valid NUL-terminated path and an out-parameter we own.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let block = st.f_frsize as u64;
    Ok(DiskSpace {
        total: st.f_blocks as u64 * block,
        free: st.f_bfree as u64 * block,
    })
}

/// The retention policy over the store's files.
#[derive(Debug)]
pub struct CleanupService {
    config: MessageStoreConfig,
    commitlog: Arc<CommitLog>,
    queues: Arc<ConsumeQueueStore>,
    index: Option<Arc<IndexService>>,
    dispatcher: Arc<Dispatcher>,
}

impl CleanupService {
    /// Builds the service.
    pub fn new(
        config: MessageStoreConfig,
        commitlog: Arc<CommitLog>,
        queues: Arc<ConsumeQueueStore>,
        index: Option<Arc<IndexService>>,
        dispatcher: Arc<Dispatcher>,
    ) -> Self {
        Self {
            config,
            commitlog,
            queues,
            index,
            dispatcher,
        }
    }

    /// One round at time `now` with the given disk usage ratio.
    pub fn run_once(&self, now: SystemTime, disk_usage: f64) -> Result<CleanupReport, StoreError> {
        let mut report = CleanupReport::default();
        let hour =
            (now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 3600 % 24) as u32;
        let is_time = self.config.delete_hours().contains(&hour);
        let space_full = disk_usage * 100.0 > f64::from(self.config.disk_max_used_space_ratio);
        let forcibly = self.config.clean_file_forcibly_enable
            && disk_usage > self.config.disk_space_clean_forcibly_ratio;
        if is_time || space_full || forcibly {
            let reserved = Duration::from_secs(self.config.file_reserved_time * 3600);
            let safe_end = self
                .dispatcher
                .dispatched_offset()
                .min(self.commitlog.watermark().get());
            while report.commitlog_files < DELETE_FILES_BATCH_MAX {
                let deleted = self.commitlog.files().delete_first_if(|f| {
                    let end = f.file_from_offset() + f.size() as i64;
                    if end > safe_end {
                        return false;
                    }
                    let expired = f
                        .modified()
                        .ok()
                        .and_then(|m| now.duration_since(m).ok())
                        .is_some_and(|age| age >= reserved);
                    expired || forcibly
                })?;
                if !deleted {
                    break;
                }
                report.commitlog_files += 1;
                if self.config.delete_commit_log_files_interval > 0 {
                    std::thread::sleep(Duration::from_millis(
                        self.config.delete_commit_log_files_interval,
                    ));
                }
            }
        }
        let min = self.commitlog.min_offset();
        for cq in self.queues.all() {
            report.consume_queue_files += cq.delete_below(min)?;
        }
        if let Some(index) = &self.index {
            report.index_files += index.delete_below(min)?;
        }
        Ok(report)
    }
}
