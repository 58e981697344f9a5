//! `MessageStoreConfig`: the store's settings under RocketMQ's `broker.conf` key names.
//!
//! Defaults follow RocketMQ 5 (`MessageStoreConfig.java`), so a user's existing
//! `broker.conf` means the same thing here. Values are validated when the store opens
//! ([`MessageStoreConfig::validate`]), not silently clamped.

use std::path::PathBuf;
use std::str::FromStr;

use rocketmq_common::config::{
    ApplyProperties, ConfigError, ConfigValue, FieldVisitor, Properties,
};

/// When an append counts as durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushDiskType {
    /// Acknowledge after the write reaches the page cache; a background thread msyncs.
    AsyncFlush,
    /// Acknowledge only after msync (group commit).
    SyncFlush,
}

impl ConfigValue for FlushDiskType {
    fn parse_into(&mut self, raw: &str) -> Result<(), String> {
        *self = raw.trim().parse()?;
        Ok(())
    }
    fn text(&self) -> String {
        match self {
            Self::AsyncFlush => "ASYNC_FLUSH",
            Self::SyncFlush => "SYNC_FLUSH",
        }
        .to_string()
    }
}

impl FromStr for FlushDiskType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ASYNC_FLUSH" => Ok(Self::AsyncFlush),
            "SYNC_FLUSH" => Ok(Self::SyncFlush),
            other => Err(format!("expected ASYNC_FLUSH or SYNC_FLUSH, got {other}")),
        }
    }
}

/// Store configuration (broker.conf keys in the field docs).
#[derive(Debug, Clone, PartialEq)]
pub struct MessageStoreConfig {
    /// `storePathRootDir` (default `$HOME/store`).
    pub store_path_root_dir: PathBuf,
    /// `storePathCommitLog` (default `<root>/commitlog`).
    pub store_path_commit_log: PathBuf,
    /// `mappedFileSizeCommitLog`: CommitLog segment size (default 1 GiB).
    pub mapped_file_size_commit_log: usize,
    /// `mappedFileSizeConsumeQueue`: ConsumeQueue file size, a multiple of 20 (300000 × 20).
    pub mapped_file_size_consume_queue: usize,
    /// `flushDiskType`.
    pub flush_disk_type: FlushDiskType,
    /// `flushIntervalCommitLog` ms (ASYNC_FLUSH period, default 500).
    pub flush_interval_commit_log: u64,
    /// `flushCommitLogLeastPages`: pages that must be dirty before a periodic flush (4).
    pub flush_commit_log_least_pages: usize,
    /// `flushCommitLogThoroughInterval` ms: flush regardless of pages this often (10 s).
    pub flush_commit_log_thorough_interval: u64,
    /// `flushIntervalConsumeQueue` ms (1000): ConsumeQueue/Index flush + checkpoint period.
    pub flush_interval_consume_queue: u64,
    /// `syncFlushTimeout` ms (5000): SYNC_FLUSH waits this long before FLUSH_DISK_TIMEOUT.
    pub sync_flush_timeout: u64,
    /// `fileReservedTime` hours (72).
    pub file_reserved_time: u64,
    /// `deleteWhen`: hours of day (`;`-separated, "04") when expired files are deleted.
    pub delete_when: String,
    /// `diskMaxUsedSpaceRatio` percent (75): above it expired files go at any hour.
    pub disk_max_used_space_ratio: u32,
    /// `diskSpaceCleanForciblyRatio` (0.85): above it the oldest files go even if not expired.
    pub disk_space_clean_forcibly_ratio: f64,
    /// `cleanFileForciblyEnable` (true).
    pub clean_file_forcibly_enable: bool,
    /// `cleanResourceInterval` ms (10000): retention check period.
    pub clean_resource_interval: u64,
    /// `deleteCommitLogFilesInterval` ms (100): pause between two deletions.
    pub delete_commit_log_files_interval: u64,
    /// `maxMessageSize` bytes (4 MiB), body limit.
    pub max_message_size: usize,
    /// `checkCRCOnRecover` (true).
    pub check_crc_on_recover: bool,
    /// `messageIndexEnable` (true): build the IndexFile.
    pub message_index_enable: bool,
    /// `maxHashSlotNum` (5,000,000).
    pub max_hash_slot_num: u32,
    /// `maxIndexNum` (20,000,000).
    pub max_index_num: u32,
    /// `commitLogPrefaultAheadBytes` (our extension, 32 MiB; 0 disables): a background
    /// thread faults in CommitLog pages this far ahead of the write position so appends
    /// do not pay for page faults. RocketMQ's `warmMapedFileEnable` pre-touches whole
    /// files instead.
    pub commit_log_prefault_ahead_bytes: usize,
    /// Not a `broker.conf` key: set by the broker in controller mode. Consumers (and
    /// everything derived from the ConsumeQueues) then see only records below the confirm
    /// offset, the highest offset every required replica holds, so nothing is readable that
    /// a failover could lose. Off, every appended record is readable at once.
    pub read_confirmed_only: bool,
}

impl Default for MessageStoreConfig {
    fn default() -> Self {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        let root = home.join("store");
        Self {
            store_path_commit_log: root.join("commitlog"),
            store_path_root_dir: root,
            mapped_file_size_commit_log: 1024 * 1024 * 1024,
            mapped_file_size_consume_queue: 300_000 * 20,
            flush_disk_type: FlushDiskType::AsyncFlush,
            flush_interval_commit_log: 500,
            flush_commit_log_least_pages: 4,
            flush_commit_log_thorough_interval: 10_000,
            flush_interval_consume_queue: 1000,
            sync_flush_timeout: 5000,
            file_reserved_time: 72,
            delete_when: "04".to_string(),
            disk_max_used_space_ratio: 75,
            disk_space_clean_forcibly_ratio: 0.85,
            clean_file_forcibly_enable: true,
            clean_resource_interval: 10_000,
            delete_commit_log_files_interval: 100,
            max_message_size: 4 * 1024 * 1024,
            check_crc_on_recover: true,
            message_index_enable: true,
            max_hash_slot_num: 5_000_000,
            max_index_num: 20_000_000,
            commit_log_prefault_ahead_bytes: 32 * 1024 * 1024,
            read_confirmed_only: false,
        }
    }
}

/// A config value that parses but cannot work.
#[derive(Debug, thiserror::Error)]
pub enum InvalidConfig {
    /// Parse error from the properties file.
    #[error(transparent)]
    Parse(#[from] ConfigError),
    /// Semantically invalid value.
    #[error("config key {key}: {reason}")]
    Value {
        /// Offending key.
        key: &'static str,
        /// Why.
        reason: String,
    },
}

impl MessageStoreConfig {
    /// A config rooted at `root` with every other value at its default.
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self {
            store_path_commit_log: root.join("commitlog"),
            store_path_root_dir: root,
            ..Self::default()
        }
    }

    /// Builds the config from broker.conf properties; absent keys keep their defaults.
    pub fn from_properties(p: &Properties) -> Result<Self, InvalidConfig> {
        let mut c = Self::default();
        c.visit(&mut ApplyProperties(p))?;
        // The CommitLog follows the root unless it is placed explicitly.
        if p.get("storePathRootDir").is_some() && p.get("storePathCommitLog").is_none() {
            c.store_path_commit_log = c.store_path_root_dir.join("commitlog");
        }
        c.validate()?;
        Ok(c)
    }

    /// Visits every key (see [`FieldVisitor`]).
    pub fn visit(&mut self, v: &mut dyn FieldVisitor) -> Result<(), ConfigError> {
        v.field("storePathRootDir", &mut self.store_path_root_dir)?;
        v.field("storePathCommitLog", &mut self.store_path_commit_log)?;
        v.field(
            "mappedFileSizeCommitLog",
            &mut self.mapped_file_size_commit_log,
        )?;
        v.field(
            "mappedFileSizeConsumeQueue",
            &mut self.mapped_file_size_consume_queue,
        )?;
        v.field("flushDiskType", &mut self.flush_disk_type)?;
        v.field(
            "flushIntervalCommitLog",
            &mut self.flush_interval_commit_log,
        )?;
        v.field(
            "flushCommitLogLeastPages",
            &mut self.flush_commit_log_least_pages,
        )?;
        v.field(
            "flushCommitLogThoroughInterval",
            &mut self.flush_commit_log_thorough_interval,
        )?;
        v.field(
            "flushIntervalConsumeQueue",
            &mut self.flush_interval_consume_queue,
        )?;
        v.field("syncFlushTimeout", &mut self.sync_flush_timeout)?;
        v.field("fileReservedTime", &mut self.file_reserved_time)?;
        v.field("deleteWhen", &mut self.delete_when)?;
        v.field("diskMaxUsedSpaceRatio", &mut self.disk_max_used_space_ratio)?;
        v.field(
            "diskSpaceCleanForciblyRatio",
            &mut self.disk_space_clean_forcibly_ratio,
        )?;
        v.field(
            "cleanFileForciblyEnable",
            &mut self.clean_file_forcibly_enable,
        )?;
        v.field("cleanResourceInterval", &mut self.clean_resource_interval)?;
        v.field(
            "deleteCommitLogFilesInterval",
            &mut self.delete_commit_log_files_interval,
        )?;
        v.field("maxMessageSize", &mut self.max_message_size)?;
        v.field("checkCRCOnRecover", &mut self.check_crc_on_recover)?;
        v.field("messageIndexEnable", &mut self.message_index_enable)?;
        v.field("maxHashSlotNum", &mut self.max_hash_slot_num)?;
        v.field("maxIndexNum", &mut self.max_index_num)?;
        v.field(
            "commitLogPrefaultAheadBytes",
            &mut self.commit_log_prefault_ahead_bytes,
        )
    }

    /// Rejects values the store cannot work with.
    pub fn validate(&self) -> Result<(), InvalidConfig> {
        let bad = |key, reason: &str| {
            Err(InvalidConfig::Value {
                key,
                reason: reason.to_string(),
            })
        };
        if self.mapped_file_size_commit_log < 4096 {
            return bad("mappedFileSizeCommitLog", "must be at least 4096");
        }
        if self.mapped_file_size_consume_queue < 20
            || !self.mapped_file_size_consume_queue.is_multiple_of(20)
        {
            return bad(
                "mappedFileSizeConsumeQueue",
                "must be a positive multiple of 20",
            );
        }
        if self.max_message_size == 0 {
            return bad("maxMessageSize", "must be positive");
        }
        if self.max_hash_slot_num == 0 || self.max_index_num < 2 {
            return bad(
                "maxHashSlotNum/maxIndexNum",
                "must be positive (maxIndexNum >= 2)",
            );
        }
        if self.disk_max_used_space_ratio > 95 {
            return bad("diskMaxUsedSpaceRatio", "must be at most 95");
        }
        for h in self.delete_when.split(';') {
            match h.trim().parse::<u32>() {
                Ok(v) if v < 24 => {}
                _ => return bad("deleteWhen", "must be hours 0-23 separated by ';'"),
            }
        }
        Ok(())
    }

    /// `fileReservedTime` in milliseconds: how long files (and half messages) are kept.
    pub fn file_reserved_time_millis(&self) -> i64 {
        (self.file_reserved_time as i64).saturating_mul(3_600_000)
    }

    /// Hours of day at which expired files may be deleted.
    pub fn delete_hours(&self) -> Vec<u32> {
        self.delete_when
            .split(';')
            .filter_map(|h| h.trim().parse().ok())
            .collect()
    }

    /// `<root>/consumequeue`.
    pub fn consume_queue_dir(&self) -> PathBuf {
        self.store_path_root_dir.join("consumequeue")
    }
    /// `<root>/index`.
    pub fn index_dir(&self) -> PathBuf {
        self.store_path_root_dir.join("index")
    }
    /// `<root>/checkpoint`.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.store_path_root_dir.join("checkpoint")
    }
    /// `<root>/abort`.
    pub fn abort_path(&self) -> PathBuf {
        self.store_path_root_dir.join("abort")
    }
    /// `<root>/lock`.
    pub fn lock_path(&self) -> PathBuf {
        self.store_path_root_dir.join("lock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_rocketmq() {
        let c = MessageStoreConfig::with_root("/data/store");
        assert_eq!(
            c.store_path_commit_log,
            PathBuf::from("/data/store/commitlog")
        );
        assert_eq!(c.mapped_file_size_commit_log, 1 << 30);
        assert_eq!(c.mapped_file_size_consume_queue, 6_000_000);
        assert_eq!(c.flush_disk_type, FlushDiskType::AsyncFlush);
        assert_eq!(c.file_reserved_time, 72);
        assert_eq!(c.delete_when, "04");
        assert_eq!(c.disk_max_used_space_ratio, 75);
        assert_eq!(c.max_message_size, 4 << 20);
        assert_eq!(c.sync_flush_timeout, 5000);
        c.validate().unwrap();
    }

    #[test]
    fn from_broker_conf_keys() {
        let p = Properties::parse(
            "storePathRootDir=/r\nmappedFileSizeCommitLog=65536\nflushDiskType=SYNC_FLUSH\n\
             fileReservedTime=48\ndeleteWhen=03;15\ndiskMaxUsedSpaceRatio=80\n\
             mappedFileSizeConsumeQueue=2000\n",
        );
        let c = MessageStoreConfig::from_properties(&p).unwrap();
        assert_eq!(c.store_path_root_dir, PathBuf::from("/r"));
        assert_eq!(c.store_path_commit_log, PathBuf::from("/r/commitlog"));
        assert_eq!(c.mapped_file_size_commit_log, 65536);
        assert_eq!(c.flush_disk_type, FlushDiskType::SyncFlush);
        assert_eq!(c.file_reserved_time, 48);
        assert_eq!(c.delete_hours(), vec![3, 15]);
        assert_eq!(c.disk_max_used_space_ratio, 80);

        let p = Properties::parse("storePathRootDir=/r\nstorePathCommitLog=/cl\n");
        let c = MessageStoreConfig::from_properties(&p).unwrap();
        assert_eq!(c.store_path_commit_log, PathBuf::from("/cl"));

        let bad = Properties::parse("flushDiskType=SOMETIMES\n");
        let e = MessageStoreConfig::from_properties(&bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("flushDiskType"), "{e}");
        let bad = Properties::parse("mappedFileSizeConsumeQueue=30\n");
        let e = MessageStoreConfig::from_properties(&bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("mappedFileSizeConsumeQueue"), "{e}");
    }
}
