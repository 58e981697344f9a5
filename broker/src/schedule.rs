//! Delay levels (`ScheduleMessageService`): a message sent with property `DELAY=n` is stored
//! in `SCHEDULE_TOPIC_XXXX` queue `n-1` with its real topic and queue in `REAL_TOPIC` /
//! `REAL_QID`, and re-put to the real queue once `storeTimestamp + delay(n)` has passed.
//!
//! Invariants: each level's queue is delivered in order (its messages share one delay, so
//! store order is due order); the delivered offset per level is persisted in
//! `config/delayOffset.json` after delivery, so a crash can re-deliver (at least once) but
//! never skips a message, and after a restart overdue messages go out at once.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rocketmq_common::message::keys::{DELAY, REAL_QUEUE_ID, REAL_TOPIC};
use rocketmq_common::message::{RecordInput, get_property, rewrite_properties};
use rocketmq_common::topic::SCHEDULE_TOPIC;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{error, warn};

use crate::ha::Replication;
use crate::long_polling::LongPolling;
use crate::metadata::MetadataError;
use rocketmq_store::{GetStatus, MessageStore};

/// The configured delay of each level (`messageDelayLevel`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayLevels(Vec<Duration>);

impl DelayLevels {
    /// Parses `1s 5s 10s 30s 1m ... 2h` (units s, m, h, d).
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut levels = Vec::new();
        for token in spec.split_whitespace() {
            let (number, unit) = token.split_at(token.len().saturating_sub(1));
            let n: u64 = number
                .parse()
                .map_err(|_| format!("delay level {token:?} is not <number><s|m|h|d>"))?;
            let secs = match unit {
                "s" => n,
                "m" => n * 60,
                "h" => n * 3600,
                "d" => n * 86_400,
                _ => return Err(format!("delay level {token:?} has unknown unit {unit:?}")),
            };
            levels.push(Duration::from_secs(secs));
        }
        if levels.is_empty() {
            return Err("messageDelayLevel is empty".into());
        }
        Ok(Self(levels))
    }

    /// Highest level.
    pub fn max_level(&self) -> i32 {
        self.0.len() as i32
    }

    /// Delay of `level` (1-based, clamped to the configured range).
    pub fn delay(&self, level: i32) -> Duration {
        self.0[(level.clamp(1, self.max_level()) - 1) as usize]
    }
}

/// Where a delayed message goes: schedule queue and the properties carrying its real
/// destination. `level` is clamped to the configured maximum, as Java does.
pub fn delay_rewrite(
    levels: &DelayLevels,
    level: i32,
    topic: &str,
    queue_id: i32,
    props: &str,
) -> (i32, String) {
    let level = level.clamp(1, levels.max_level());
    let level_text = level.to_string();
    let queue_text = queue_id.to_string();
    let props = rewrite_properties(
        props,
        &[
            (DELAY, &level_text),
            (REAL_TOPIC, topic),
            (REAL_QUEUE_ID, &queue_text),
        ],
        &[],
    );
    (level - 1, props)
}

/// The delay level asked for by a properties string (0 when none).
pub fn requested_delay_level(props: &str) -> i32 {
    get_property(props, DELAY)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct DelayOffsetFile {
    offset_table: BTreeMap<i32, i64>,
}

/// Delivers due delayed messages.
pub struct ScheduleMessageService {
    store: Arc<MessageStore>,
    replication: Arc<Replication>,
    levels: DelayLevels,
    path: PathBuf,
    offsets: Mutex<BTreeMap<i32, i64>>,
    arrivals: Arc<LongPolling>,
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl ScheduleMessageService {
    /// Loads `delayOffset.json` (Java's integer keys load too).
    pub fn load(
        path: PathBuf,
        levels: DelayLevels,
        replication: Arc<Replication>,
        arrivals: Arc<LongPolling>,
    ) -> Result<Self, MetadataError> {
        let file: DelayOffsetFile = match std::fs::read(&path) {
            Ok(bytes) => rocketmq_common::json::from_slice_lenient(&bytes).map_err(|source| {
                MetadataError::Parse {
                    path: path.clone(),
                    source,
                }
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DelayOffsetFile::default(),
            Err(source) => return Err(MetadataError::Io { path, source }),
        };
        Ok(Self {
            store: replication.store().clone(),
            replication,
            levels,
            path,
            offsets: Mutex::new(file.offset_table),
            arrivals,
        })
    }

    /// Delivered offset per delay level (runtime info).
    pub fn delivered_offsets(&self) -> BTreeMap<i32, i64> {
        self.offsets.lock().clone()
    }

    /// The configured levels.
    pub fn levels(&self) -> &DelayLevels {
        &self.levels
    }

    /// GET_ALL_DELAY_OFFSET's body (the `delayOffset.json` layout).
    pub fn offsets_json(&self) -> Vec<u8> {
        serde_json::to_vec(&DelayOffsetFile {
            offset_table: self.offsets.lock().clone(),
        })
        .expect("delay offsets serialise")
    }

    /// Parses a GET_ALL_DELAY_OFFSET body.
    pub fn parse_offsets(body: &[u8]) -> Result<BTreeMap<i32, i64>, serde_json::Error> {
        rocketmq_common::json::from_slice_lenient::<DelayOffsetFile>(body).map(|f| f.offset_table)
    }

    /// Replaces the delivered offsets with the master's (a slave keeps them current, so
    /// that after a failover delivery resumes where the old master was).
    pub fn set_delivered_offsets(&self, offsets: BTreeMap<i32, i64>) {
        *self.offsets.lock() = offsets;
    }

    /// Persists the delivered offsets.
    pub fn flush(&self) -> Result<(), MetadataError> {
        let file = DelayOffsetFile {
            offset_table: self.offsets.lock().clone(),
        };
        let bytes = serde_json::to_vec_pretty(&file).expect("delay offsets serialise");
        rocketmq_common::persist::write_file_atomically(&self.path, &bytes).map_err(|source| {
            MetadataError::Io {
                path: self.path.clone(),
                source,
            }
        })
    }

    /// Runs one delivery task per level until `stop`.
    pub fn start(self: &Arc<Self>, stop: CancellationToken) {
        for level in 1..=self.levels.max_level() {
            let this = self.clone();
            let stop = stop.clone();
            tokio::spawn(async move { this.deliver_level(level, stop).await });
        }
    }

    async fn deliver_level(&self, level: i32, stop: CancellationToken) {
        let queue_id = level - 1;
        let delay_ms = self.levels.delay(level).as_millis() as i64;
        loop {
            if stop.is_cancelled() {
                return;
            }
            // Only the master delivers; a slave's offsets follow the master's.
            if !self.replication.is_master() {
                if sleep_or_stop(Duration::from_millis(200), &stop).await {
                    return;
                }
                continue;
            }
            let offset = self.offsets.lock().get(&level).copied().unwrap_or(0);
            let result =
                match self
                    .store
                    .get_messages(SCHEDULE_TOPIC, queue_id, offset, 32, 4 * 1024 * 1024)
                {
                    Ok(r) => r,
                    Err(e) => {
                        error!(level, offset, error = %e, "reading the schedule queue failed");
                        if sleep_or_stop(Duration::from_secs(1), &stop).await {
                            return;
                        }
                        continue;
                    }
                };
            match result.status {
                GetStatus::Found => {}
                GetStatus::OffsetTooSmall | GetStatus::OffsetOverflowBadly => {
                    warn!(
                        level,
                        offset,
                        next = result.next_begin_offset,
                        "schedule offset out of range; corrected"
                    );
                    self.offsets.lock().insert(level, result.next_begin_offset);
                    continue;
                }
                _ => {
                    let store = self.store.clone();
                    let arrived = self.arrivals.wait_until(
                        SCHEDULE_TOPIC,
                        queue_id,
                        Duration::from_secs(1),
                        move || store.max_offset_in_queue(SCHEDULE_TOPIC, queue_id) > offset,
                    );
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = arrived => {}
                    }
                    continue;
                }
            }
            for (queue_offset, buf) in &result.messages {
                let due = match buf.decode() {
                    Ok(m) => m.store_timestamp + delay_ms,
                    Err(e) => {
                        error!(level, queue_offset, error = %e, "corrupt delayed message skipped");
                        self.offsets.lock().insert(level, queue_offset + 1);
                        continue;
                    }
                };
                let wait = due - now_millis();
                if wait > 0 && sleep_or_stop(Duration::from_millis(wait as u64), &stop).await {
                    return;
                }
                if let Err(e) = self.deliver(buf).await {
                    error!(level, queue_offset, error = %e, "delivering a delayed message failed; retrying");
                    if sleep_or_stop(Duration::from_secs(1), &stop).await {
                        return;
                    }
                    break;
                }
                self.offsets.lock().insert(level, queue_offset + 1);
            }
        }
    }

    async fn deliver(&self, buf: &rocketmq_store::SelectedBuffer) -> Result<(), String> {
        let m = buf.decode().map_err(|e| e.to_string())?;
        let Some(topic) = get_property(m.properties, REAL_TOPIC) else {
            return Err("delayed message without REAL_TOPIC".into());
        };
        let queue_id: i32 = get_property(m.properties, REAL_QUEUE_ID)
            .and_then(|q| q.parse().ok())
            .unwrap_or(0);
        let properties = rewrite_properties(m.properties, &[], &[DELAY]);
        let input = RecordInput {
            topic,
            queue_id,
            flag: m.flag,
            sys_flag: m.sys_flag,
            born_timestamp: m.born_timestamp,
            born_host: m.born_host,
            store_host: m.store_host,
            reconsume_times: m.reconsume_times,
            prepared_transaction_offset: m.prepared_transaction_offset,
            body: m.body,
            properties: &properties,
        };
        self.replication
            .put(std::slice::from_ref(&input))
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// Sleeps; returns true if `stop` fired first.
async fn sleep_or_stop(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_levels_parse() {
        let l = DelayLevels::parse("1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h")
            .unwrap();
        assert_eq!(l.max_level(), 18);
        assert_eq!(l.delay(1), Duration::from_secs(1));
        assert_eq!(l.delay(5), Duration::from_secs(60));
        assert_eq!(l.delay(18), Duration::from_secs(7200));
        assert_eq!(l.delay(99), Duration::from_secs(7200), "clamped");
        assert!(DelayLevels::parse("1x").is_err());
        assert!(DelayLevels::parse("").is_err());
    }

    #[test]
    fn rewrite_keeps_destination() {
        let l = DelayLevels::parse("1s 5s").unwrap();
        let (queue, props) = delay_rewrite(&l, 9, "T", 3, "TAGS\u{1}A\u{2}DELAY\u{1}9\u{2}");
        assert_eq!(queue, 1, "level clamped to 2 → queue 1");
        assert_eq!(get_property(&props, REAL_TOPIC), Some("T"));
        assert_eq!(get_property(&props, REAL_QUEUE_ID), Some("3"));
        assert_eq!(get_property(&props, DELAY), Some("2"));
        assert_eq!(get_property(&props, "TAGS"), Some("A"));
        assert_eq!(requested_delay_level(&props), 2);
        assert_eq!(requested_delay_level("TAGS\u{1}A\u{2}"), 0);
    }
}
