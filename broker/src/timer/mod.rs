//! Timer messages (`TimerMessageStore`): delivery at an arbitrary time, set by the
//! `TIMER_DELIVER_MS`, `TIMER_DELAY_SEC` or `TIMER_DELAY_MS` property.
//!
//! The send path parks such a message in `rmq_sys_wheel_timer` queue 0 with its delivery
//! time rounded to the precision in `TIMER_OUT_MS` (see [`crate::delivery`]). Three tasks
//! then move it along:
//! - **enqueue** follows that queue and links each message into the wheel slot of its time,
//!   through a 52-byte unit appended to the timer log ([`log`]); a time further away than
//!   the roll window is parked at the window's edge and rolled over again from there;
//! - **dequeue** walks the wheel one slot per precision step, as soon as the slot's time has
//!   passed, and re-puts each message of the slot to its real topic and queue (or back into
//!   the timer queue when it was only rolled);
//! - **flush** makes the timer log and the wheel durable and then records in the checkpoint
//!   (`config/timercheck`) how far enqueue and dequeue got.
//!
//! Memory does not grow with pending messages: units live in the mapped log, slots in the
//! mapped wheel, and the messages themselves in the CommitLog.
//!
//! Invariants:
//! - enqueue and dequeue agree under one lock on which slots are still open: a message whose
//!   slot is already taken by dequeue is delivered at once, never linked into a passed slot;
//! - the checkpoint only moves after the data it covers is flushed, and recovery replays the
//!   timer log after it and re-enqueues the queue after the last unit, so after a crash a
//!   timer message is delivered at least once (possibly twice), never lost;
//! - a message is never delivered before its time: a slot is taken only after it ends.

pub mod log;
pub mod wheel;

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use memmap2::MmapMut;
use parking_lot::Mutex;
use rocketmq_common::config::{ApplyProperties, ConfigError, FieldVisitor, Properties};
use rocketmq_common::message::keys::{
    REAL_QUEUE_ID, REAL_TOPIC, TIMER_DEL_UNIQKEY, TIMER_DEQUEUE_MS, TIMER_ENQUEUE_MS, TIMER_OUT_MS,
    TIMER_ROLL_TIMES, UNIQ_KEY,
};
use rocketmq_common::message::{
    DecodedRecord, RecordInput, get_property, java_string_hash, rewrite_properties,
};
use rocketmq_common::topic::TIMER_TOPIC;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::ha::Replication;
use crate::long_polling::LongPolling;
use rocketmq_store::{GetStatus, MessageStore, SelectedBuffer, StoreError};

use self::log::{MAGIC_DEFAULT, MAGIC_DELETE, MAGIC_ROLL, TimerLog, UNIT_SIZE, Unit};
use self::wheel::{SLOTS_TOTAL, TimerWheel};

/// Timer settings (`MessageStoreConfig`'s timer keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimerConfig {
    /// `timerWheelEnable` (true).
    pub enable: bool,
    /// `timerPrecisionMs` (1000): slot width; one of 100, 200, 500, 1000.
    pub precision_ms: i64,
    /// `timerMaxDelaySec` (3 days): furthest delivery time accepted.
    pub max_delay_sec: i64,
    /// `timerRollWindowSlot` (172800): times further than this many slots are rolled.
    pub roll_window_slots: i64,
    /// `mappedFileSizeTimerLog` (100 MiB).
    pub log_file_size: usize,
    /// `timerFlushIntervalMs` (1000).
    pub flush_interval: Duration,
}

impl Default for TimerConfig {
    fn default() -> Self {
        Self {
            enable: true,
            precision_ms: 1000,
            max_delay_sec: 3 * 86_400,
            roll_window_slots: 2 * 86_400,
            log_file_size: 100 * 1024 * 1024,
            flush_interval: Duration::from_secs(1),
        }
    }
}

impl TimerConfig {
    /// Reads the timer keys of a `broker.conf`.
    pub fn from_properties(p: &Properties) -> Result<Self, String> {
        let mut c = Self::default();
        c.visit(&mut ApplyProperties(p))
            .map_err(|e| e.to_string())?;
        // Java snaps the precision to the largest of 100/200/500/1000 not above it.
        c.precision_ms = [1000, 500, 200, 100]
            .into_iter()
            .find(|v| *v <= c.precision_ms)
            .unwrap_or(100);
        if !(2..=SLOTS_TOTAL - 60).contains(&c.roll_window_slots) {
            c.roll_window_slots = SLOTS_TOTAL - 60;
        }
        if c.max_delay_sec <= 0 {
            return Err("timerMaxDelaySec must be positive".into());
        }
        if c.flush_interval.is_zero() {
            return Err("timerFlushIntervalMs must be positive".into());
        }
        if c.log_file_size < 4 * UNIT_SIZE {
            return Err(format!(
                "mappedFileSizeTimerLog must be at least {} bytes",
                4 * UNIT_SIZE
            ));
        }
        Ok(c)
    }

    /// Visits every key (see [`FieldVisitor`]).
    pub fn visit(&mut self, v: &mut dyn FieldVisitor) -> Result<(), ConfigError> {
        v.field("timerWheelEnable", &mut self.enable)?;
        v.field("timerPrecisionMs", &mut self.precision_ms)?;
        v.field("timerMaxDelaySec", &mut self.max_delay_sec)?;
        v.field("timerRollWindowSlot", &mut self.roll_window_slots)?;
        v.field("mappedFileSizeTimerLog", &mut self.log_file_size)?;
        v.field("timerFlushIntervalMs", &mut self.flush_interval)
    }

    /// The slot a delivery time goes to: rounded down to the precision, one step earlier
    /// when exact. The slot is taken once it has ended, so delivery happens at the first
    /// precision boundary after the asked time, never before it.
    pub fn slot_of(&self, deliver_ms: i64) -> i64 {
        let p = self.precision_ms;
        if deliver_ms % p == 0 {
            deliver_ms - p
        } else {
            deliver_ms - deliver_ms.rem_euclid(p)
        }
    }
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `config/timercheck`: a mapped 4 KiB page, big-endian i64s in RocketMQ's order:
/// @0 lastReadTimeMs, @8 lastTimerLogFlushPos, @16 lastTimerQueueOffset,
/// @24 masterTimerQueueOffset, @32..56 data version.
#[derive(Debug)]
struct TimerCheckpoint {
    map: Mutex<MmapMut>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct CheckpointValues {
    read_time_ms: i64,
    log_flush_pos: i64,
    queue_offset: i64,
}

impl TimerCheckpoint {
    fn open(path: &Path) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        if file.metadata()?.len() < 4096 {
            file.set_len(4096)?;
        }
        // SAFETY: the broker holds the store directory lock; nobody else maps this file.
        let map = unsafe { MmapMut::map_mut(&file)? };
        Ok(Self {
            map: Mutex::new(map),
        })
    }

    fn values(&self) -> CheckpointValues {
        let m = self.map.lock();
        let at = |i: usize| i64::from_be_bytes(m[i..i + 8].try_into().expect("8 bytes"));
        CheckpointValues {
            read_time_ms: at(0),
            log_flush_pos: at(8),
            queue_offset: at(16),
        }
    }

    fn write(&self, v: CheckpointValues) -> std::io::Result<()> {
        let mut m = self.map.lock();
        m[0..8].copy_from_slice(&v.read_time_ms.to_be_bytes());
        m[8..16].copy_from_slice(&v.log_flush_pos.to_be_bytes());
        m[16..24].copy_from_slice(&v.queue_offset.to_be_bytes());
        m[24..32].copy_from_slice(&v.queue_offset.to_be_bytes());
        m[40..48].copy_from_slice(&now_millis().to_be_bytes());
        m.flush()
    }
}

/// Wheel and the dequeue cursor, under one lock: slots before `read_time_ms` are taken.
#[derive(Debug)]
struct WheelState {
    wheel: TimerWheel,
    read_time_ms: i64,
}

/// Counters for metrics and tests.
#[derive(Debug, Default)]
pub struct TimerStats {
    /// Messages linked into the wheel.
    pub enqueued: AtomicU64,
    /// Messages re-put to their real queue.
    pub delivered: AtomicU64,
    /// Messages rolled over to a later slot.
    pub rolled: AtomicU64,
}

/// The timer.
pub struct TimerMessageStore {
    config: TimerConfig,
    store: Arc<MessageStore>,
    replication: Arc<Replication>,
    /// On a slave: how far the master's delivery got (from metadata sync; -1 unknown).
    /// The slave's own wheel is built from the replicated timer queue, and its dequeue
    /// cursor follows this without delivering, so a promoted slave resumes right after
    /// the old master.
    master_delivered_until: AtomicI64,
    arrivals: Arc<LongPolling>,
    log: TimerLog,
    state: Mutex<WheelState>,
    checkpoint: TimerCheckpoint,
    /// Next queue offset of the timer topic to enqueue.
    enqueue_offset: AtomicI64,
    /// Slots before this time are delivered.
    delivered_until: AtomicI64,
    stats: TimerStats,
}

impl std::fmt::Debug for TimerMessageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimerMessageStore")
            .field("config", &self.config)
            .field("enqueue_offset", &self.enqueue_offset)
            .field("delivered_until", &self.delivered_until)
            .finish_non_exhaustive()
    }
}

/// Where the timer keeps its files under the store root.
pub fn timer_paths(root: &Path) -> (PathBuf, PathBuf, PathBuf) {
    (
        root.join("timerlog"),
        root.join("timerwheel"),
        root.join("config").join("timercheck"),
    )
}

impl TimerMessageStore {
    /// Opens the timer files under `root` and recovers: units written after the last
    /// checkpoint are linked again, a torn tail is cut, and the timer queue is re-read from
    /// just after the last unit.
    pub fn open(
        root: &Path,
        config: TimerConfig,
        replication: Arc<Replication>,
        arrivals: Arc<LongPolling>,
    ) -> Result<Self, StoreError> {
        let store = replication.store().clone();
        let (log_dir, wheel_path, checkpoint_path) = timer_paths(root);
        let checkpoint = TimerCheckpoint::open(&checkpoint_path)?;
        let cp = checkpoint.values();
        let p = config.precision_ms;
        let now = now_millis();
        let floor_now = now - now.rem_euclid(p);
        let mut wheel = TimerWheel::open(&wheel_path, p)?;
        let log = TimerLog::load(&log_dir, config.log_file_size)?;
        // Slots older than one turn of the wheel cannot be told apart from newer ones.
        let oldest = floor_now - (SLOTS_TOTAL - 60) * p;
        let read_time = if cp.read_time_ms <= 0 {
            floor_now
        } else {
            cp.read_time_ms.max(oldest)
        };
        let replay = log.recover(cp.log_flush_pos.max(0))?;
        for (pos, unit) in &replay {
            let t = unit.slot_time_ms();
            if t < read_time {
                continue;
            }
            let slot = wheel.get(t);
            if slot.is_empty() || slot.last_pos < *pos {
                wheel.link(
                    t,
                    *pos,
                    if unit.magic & MAGIC_DELETE != 0 {
                        -1
                    } else {
                        1
                    },
                );
            }
        }
        // A slot pointing past the recovered log lost its newest units (a crash of the
        // machine, not just the process): rebuild it from the log.
        let end = log.max_offset();
        let horizon = config.roll_window_slots + 2;
        let dangling: Vec<i64> = (0..horizon)
            .map(|i| read_time + i * p)
            .filter(|t| wheel.get(*t).last_pos >= end)
            .collect();
        if !dangling.is_empty() {
            warn!(
                slots = dangling.len(),
                "timer wheel slots point past the timer log; rebuilding them"
            );
            let all = log.scan_all();
            for t in &dangling {
                wheel.clear(*t);
                for (pos, _) in all.iter().filter(|(_, u)| u.slot_time_ms() == *t) {
                    wheel.link(*t, *pos, 1);
                }
            }
        }
        // Enqueue resumes after the last message that has a unit (none is lost: any message
        // after it is read again; one delivered at once before the crash may repeat).
        let queue_min = store.min_offset_in_queue(TIMER_TOPIC, 0);
        let queue_max = store.max_offset_in_queue(TIMER_TOPIC, 0);
        let mut enqueue_from = cp.queue_offset.max(queue_min);
        let last_unit = replay.last().map(|(_, u)| *u).or_else(|| {
            (end >= UNIT_SIZE as i64)
                .then(|| log.read(end - UNIT_SIZE as i64))
                .flatten()
        });
        if let Some(u) = last_unit
            && let Ok(Some(buf)) = store.get_message_by_offset(u.commit_log_offset)
            && let Ok(m) = buf.decode()
            && m.topic == TIMER_TOPIC
        {
            enqueue_from = enqueue_from.max(m.queue_offset + 1);
        }
        let enqueue_from = enqueue_from.min(queue_max.max(queue_min));
        info!(
            read_time,
            enqueue_from,
            replayed_units = replay.len(),
            "timer store open"
        );
        Ok(Self {
            config,
            store,
            replication,
            master_delivered_until: AtomicI64::new(-1),
            arrivals,
            log,
            state: Mutex::new(WheelState {
                wheel,
                read_time_ms: read_time,
            }),
            checkpoint,
            enqueue_offset: AtomicI64::new(enqueue_from),
            delivered_until: AtomicI64::new(read_time),
            stats: TimerStats::default(),
        })
    }

    /// Settings.
    pub fn config(&self) -> &TimerConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &TimerStats {
        &self.stats
    }

    /// How far behind real time delivery is, in ms (0 when on time).
    pub fn dequeue_lag_ms(&self) -> i64 {
        let now = now_millis();
        let floor_now = now - now.rem_euclid(self.config.precision_ms);
        (floor_now - self.delivered_until.load(Ordering::Acquire)).max(0)
    }

    /// Timer-topic messages not yet linked into the wheel.
    pub fn enqueue_backlog(&self) -> i64 {
        (self.store.max_offset_in_queue(TIMER_TOPIC, 0)
            - self.enqueue_offset.load(Ordering::Acquire))
        .max(0)
    }

    /// A slave learns how far the master's delivery got.
    pub fn follow_master(&self, delivered_until: i64) {
        self.master_delivered_until
            .fetch_max(delivered_until, Ordering::AcqRel);
    }

    /// GET_TIMER_CHECK_POINT's body: RocketMQ's 56-byte checkpoint encoding (read time,
    /// timer log flush position, timer queue offset twice, then a zero data version).
    pub fn checkpoint_bytes(&self) -> Vec<u8> {
        let queue_offset = self.enqueue_offset.load(Ordering::Acquire);
        let mut b = Vec::with_capacity(56);
        b.extend_from_slice(&self.delivered_until.load(Ordering::Acquire).to_be_bytes());
        b.extend_from_slice(&self.log.max_offset().to_be_bytes());
        b.extend_from_slice(&queue_offset.to_be_bytes());
        b.extend_from_slice(&queue_offset.to_be_bytes());
        b.extend_from_slice(&[0u8; 24]);
        b
    }

    /// Starts the enqueue, dequeue and flush tasks.
    pub fn start(self: &Arc<Self>, stop: CancellationToken) {
        let this = self.clone();
        let s = stop.clone();
        tokio::spawn(async move { this.enqueue_loop(s).await });
        let this = self.clone();
        let s = stop.clone();
        tokio::spawn(async move { this.dequeue_loop(s).await });
        let this = self.clone();
        tokio::spawn(async move { Self::flush_loop(this, stop).await });
    }

    /// Makes the log and wheel durable, then advances the checkpoint over them.
    pub fn flush(&self) -> std::io::Result<()> {
        let queue_offset = self.enqueue_offset.load(Ordering::Acquire);
        let read_time_ms = self.delivered_until.load(Ordering::Acquire);
        let log_flush_pos = self.log.flush()?;
        self.state.lock().wheel.flush()?;
        self.checkpoint.write(CheckpointValues {
            read_time_ms,
            log_flush_pos,
            queue_offset,
        })
    }

    async fn flush_loop(this: Arc<Self>, stop: CancellationToken) {
        let mut since_cleanup = Duration::ZERO;
        loop {
            let stopping = tokio::select! {
                _ = stop.cancelled() => true,
                _ = tokio::time::sleep(this.config.flush_interval) => false,
            };
            since_cleanup += this.config.flush_interval;
            let cleanup = since_cleanup >= Duration::from_secs(30);
            if cleanup {
                since_cleanup = Duration::ZERO;
            }
            // msync and file deletion block: keep them off the async workers.
            let t = this.clone();
            let joined = tokio::task::spawn_blocking(move || {
                if let Err(e) = t.flush() {
                    error!(error = %e, "timer flush failed; retrying");
                }
                if cleanup {
                    match t.log.delete_expired(t.store.commitlog().min_offset()) {
                        Ok(0) => {}
                        Ok(n) => info!(files = n, "deleted expired timer log files"),
                        Err(e) => warn!(error = %e, "timer log cleanup failed"),
                    }
                }
            })
            .await;
            if let Err(e) = joined {
                error!(error = %e, "timer flush task failed");
            }
            if stopping {
                return;
            }
        }
    }

    async fn enqueue_loop(&self, stop: CancellationToken) {
        loop {
            if stop.is_cancelled() {
                return;
            }
            let offset = self.enqueue_offset.load(Ordering::Acquire);
            let r = match self.store.get_messages(TIMER_TOPIC, 0, offset, 64, 8 << 20) {
                Ok(r) => r,
                Err(e) => {
                    error!(offset, error = %e, "reading the timer queue failed; retrying");
                    if sleep_or_stop(Duration::from_secs(1), &stop).await {
                        return;
                    }
                    continue;
                }
            };
            match r.status {
                GetStatus::Found if !r.messages.is_empty() => {}
                GetStatus::OffsetTooSmall | GetStatus::OffsetOverflowBadly => {
                    warn!(
                        offset,
                        next = r.next_begin_offset,
                        "timer queue offset out of range; corrected"
                    );
                    self.enqueue_offset
                        .store(r.next_begin_offset, Ordering::Release);
                    continue;
                }
                _ => {
                    let store = self.store.clone();
                    let arrived = self.arrivals.wait_until(
                        TIMER_TOPIC,
                        0,
                        Duration::from_millis(200),
                        move || store.max_offset_in_queue(TIMER_TOPIC, 0) > offset,
                    );
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = arrived => {}
                    }
                    continue;
                }
            }
            for (queue_offset, buf) in &r.messages {
                loop {
                    match self.enqueue_one(buf).await {
                        Ok(()) => break,
                        Err(e) => {
                            error!(queue_offset, error = %e, "enqueueing a timer message failed; retrying");
                            if sleep_or_stop(Duration::from_millis(500), &stop).await {
                                return;
                            }
                        }
                    }
                }
                self.enqueue_offset
                    .store(queue_offset + 1, Ordering::Release);
            }
        }
    }

    /// Links one timer-topic message into its slot, or delivers it at once when its slot
    /// has already been taken (on the master; a slave leaves that to the master).
    async fn enqueue_one(&self, buf: &SelectedBuffer) -> Result<(), String> {
        let m = buf.decode().map_err(|e| e.to_string())?;
        let Some(deliver_at) =
            get_property(m.properties, TIMER_OUT_MS).and_then(|v| v.trim().parse::<i64>().ok())
        else {
            warn!(
                offset = m.physical_offset,
                "timer message without a valid TIMER_OUT_MS; delivered at once"
            );
            return self.deliver_now(&m).await;
        };
        let p = self.config.precision_ms;
        let now = now_millis();
        let write_time = now - now.rem_euclid(p);
        let window = self.config.roll_window_slots * p;
        let deleting = get_property(m.properties, TIMER_DEL_UNIQKEY).is_some();
        {
            let mut state = self.state.lock();
            if deliver_at >= state.read_time_ms {
                let (slot_time, mut magic) = if deliver_at - write_time >= window {
                    // Too far for the wheel's reach: park it at the window's edge (half way if
                    // it only just overshoots, so it is not rolled again right away).
                    let target = if deliver_at - write_time - window < window / 3 {
                        write_time + window / 2
                    } else {
                        write_time + window
                    };
                    (target - target.rem_euclid(p), MAGIC_ROLL)
                } else {
                    (deliver_at, MAGIC_DEFAULT)
                };
                if deleting {
                    magic |= MAGIC_DELETE;
                }
                let prev = state.wheel.get(slot_time).last_pos;
                let unit = Unit {
                    prev_pos: prev,
                    magic,
                    write_time_ms: write_time,
                    delta: (slot_time - write_time) as i32,
                    commit_log_offset: m.physical_offset,
                    size: m.total_size as i32,
                    topic_hash: get_property(m.properties, REAL_TOPIC).map_or(0, java_string_hash),
                };
                let pos = self.log.append(&unit).map_err(|e| e.to_string())?;
                state
                    .wheel
                    .link(slot_time, pos, if deleting { -1 } else { 1 });
                self.stats.enqueued.fetch_add(1, Ordering::Relaxed);
                if magic & MAGIC_ROLL != 0 {
                    self.stats.rolled.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(());
            }
        }
        if deleting {
            // Its target's slot has passed: nothing left to cancel.
            return Ok(());
        }
        self.deliver_now(&m).await
    }

    /// Delivers a message whose slot has passed, on the master only.
    async fn deliver_now(&self, m: &DecodedRecord<'_>) -> Result<(), String> {
        if self.replication.is_master() {
            self.deliver(&[(m, Some(i64::MAX))]).await
        } else {
            Ok(())
        }
    }

    async fn dequeue_loop(&self, stop: CancellationToken) {
        let p = self.config.precision_ms;
        loop {
            if stop.is_cancelled() {
                return;
            }
            let now = now_millis();
            let floor_now = now - now.rem_euclid(p);
            if !self.replication.is_master() {
                // A slave delivers nothing: its cursor follows the master's.
                let target = floor_now.min(self.master_delivered_until.load(Ordering::Acquire));
                {
                    let mut state = self.state.lock();
                    if target > state.read_time_ms {
                        state.read_time_ms = target - target.rem_euclid(p);
                        self.delivered_until
                            .store(state.read_time_ms, Ordering::Release);
                    }
                }
                if sleep_or_stop(Duration::from_millis(100), &stop).await {
                    return;
                }
                continue;
            }
            let slot = {
                let mut state = self.state.lock();
                let t = state.read_time_ms;
                if t >= floor_now {
                    None
                } else {
                    state.read_time_ms = t + p;
                    Some((t, state.wheel.get(t)))
                }
            };
            let Some((t, slot)) = slot else {
                // The current slot ends at floor_now + p.
                let wait = (floor_now + p - now).clamp(1, p) as u64;
                if sleep_or_stop(Duration::from_millis(wait), &stop).await {
                    return;
                }
                continue;
            };
            if !slot.is_empty() && !self.deliver_slot(t, slot.last_pos, &stop).await {
                return;
            }
            self.delivered_until.store(t + p, Ordering::Release);
        }
    }

    /// Delivers every unit of the slot at `time`; false if stopped before finishing (the
    /// slot is then delivered again after a restart).
    async fn deliver_slot(&self, time: i64, last_pos: i64, stop: &CancellationToken) -> bool {
        let mut units = Vec::new();
        let mut pos = last_pos;
        while pos >= 0 {
            let Some(u) = self.log.read(pos) else {
                warn!(
                    time,
                    pos, "timer slot points at a missing unit; rest of the slot skipped"
                );
                break;
            };
            if u.slot_time_ms() != time {
                break;
            }
            units.push(u);
            pos = u.prev_pos;
        }
        units.reverse();
        // Delete markers first: the messages they cancel are skipped.
        let mut cancelled = HashSet::new();
        for u in units.iter().filter(|u| u.magic & MAGIC_DELETE != 0) {
            if let Ok(Some(buf)) = self.store.get_message_by_offset(u.commit_log_offset)
                && let Ok(m) = buf.decode()
                && let Some(key) = get_property(m.properties, TIMER_DEL_UNIQKEY)
            {
                cancelled.insert(key.to_string());
            }
        }
        for chunk in units
            .iter()
            .filter(|u| u.magic & MAGIC_DELETE == 0)
            .collect::<Vec<_>>()
            .chunks(64)
        {
            let mut buffers = Vec::with_capacity(chunk.len());
            for u in chunk {
                match self.store.get_message_by_offset(u.commit_log_offset) {
                    Ok(Some(buf)) => buffers.push((buf, *u)),
                    Ok(None) => error!(
                        offset = u.commit_log_offset,
                        "timer message gone from the CommitLog (retention?); cannot deliver"
                    ),
                    Err(e) => {
                        error!(offset = u.commit_log_offset, error = %e, "timer message unreadable; cannot deliver")
                    }
                }
            }
            let mut decoded = Vec::with_capacity(buffers.len());
            for (buf, u) in &buffers {
                let Ok(m) = buf.decode() else { continue };
                let key = format!(
                    "{}+{}",
                    get_property(m.properties, REAL_TOPIC).unwrap_or_default(),
                    get_property(m.properties, UNIQ_KEY).unwrap_or_default()
                );
                if cancelled.contains(&key) {
                    debug!(key, "timer message cancelled");
                    continue;
                }
                let enqueued = if u.magic & MAGIC_ROLL != 0 {
                    None
                } else {
                    Some(u.write_time_ms)
                };
                decoded.push((m, enqueued));
            }
            let batch: Vec<(&DecodedRecord<'_>, Option<i64>)> =
                decoded.iter().map(|(m, e)| (m, *e)).collect();
            loop {
                match self.deliver(&batch).await {
                    Ok(()) => break,
                    Err(e) => {
                        error!(time, error = %e, "delivering timer messages failed; retrying");
                        if sleep_or_stop(Duration::from_millis(500), stop).await {
                            return false;
                        }
                    }
                }
            }
        }
        true
    }

    /// Re-puts messages: to their real queue (with the enqueue time, `None` meaning the
    /// message was only rolled and goes back to the timer queue).
    async fn deliver(&self, messages: &[(&DecodedRecord<'_>, Option<i64>)]) -> Result<(), String> {
        if messages.is_empty() {
            return Ok(());
        }
        let now = now_millis().to_string();
        let mut props = Vec::with_capacity(messages.len());
        let mut targets = Vec::with_capacity(messages.len());
        for (m, enqueued) in messages {
            match enqueued {
                Some(at) => {
                    let topic = get_property(m.properties, REAL_TOPIC).unwrap_or(m.topic);
                    let queue = get_property(m.properties, REAL_QUEUE_ID)
                        .and_then(|q| q.parse().ok())
                        .unwrap_or(0);
                    let enqueue_text = at.to_string();
                    props.push(rewrite_properties(
                        m.properties,
                        &[(TIMER_ENQUEUE_MS, &enqueue_text), (TIMER_DEQUEUE_MS, &now)],
                        &[REAL_TOPIC, REAL_QUEUE_ID],
                    ));
                    targets.push((topic, queue));
                }
                None => {
                    let rolls: i64 = get_property(m.properties, TIMER_ROLL_TIMES)
                        .and_then(|r| r.parse().ok())
                        .unwrap_or(0);
                    let rolls = (rolls + 1).to_string();
                    props.push(rewrite_properties(
                        m.properties,
                        &[(TIMER_ROLL_TIMES, &rolls)],
                        &[],
                    ));
                    targets.push((TIMER_TOPIC, 0));
                }
            }
        }
        let inputs: Vec<RecordInput<'_>> = messages
            .iter()
            .zip(&props)
            .zip(&targets)
            .map(|(((m, _), p), (topic, queue))| RecordInput {
                topic,
                queue_id: *queue,
                flag: m.flag,
                sys_flag: m.sys_flag,
                born_timestamp: m.born_timestamp,
                born_host: m.born_host,
                store_host: m.store_host,
                reconsume_times: m.reconsume_times,
                prepared_transaction_offset: m.prepared_transaction_offset,
                body: m.body,
                properties: p,
            })
            .collect();
        self.replication
            .put(&inputs)
            .await
            .map_err(|e| e.to_string())?;
        let delivered = messages.iter().filter(|(_, e)| e.is_some()).count();
        self.stats
            .delivered
            .fetch_add(delivered as u64, Ordering::Relaxed);
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
    fn slots_round_so_delivery_is_never_early() {
        let c = TimerConfig::default();
        assert_eq!(c.slot_of(5_000), 4_000, "exact: one step earlier");
        assert_eq!(c.slot_of(5_001), 5_000);
        assert_eq!(c.slot_of(5_999), 5_000);
        // Taken once the slot has ended: at slot + precision >= the asked time.
        for t in [5_000, 5_001, 5_999, 6_000] {
            assert!(c.slot_of(t) + c.precision_ms >= t);
            assert!(c.slot_of(t) + c.precision_ms < t + c.precision_ms + 1);
        }
    }

    #[test]
    fn config_snaps_precision_and_window() {
        let c = TimerConfig::from_properties(&Properties::parse(
            "timerPrecisionMs=300\ntimerRollWindowSlot=1\ntimerMaxDelaySec=60\n",
        ))
        .unwrap();
        assert_eq!(c.precision_ms, 200);
        assert_eq!(c.roll_window_slots, SLOTS_TOTAL - 60);
        assert_eq!(c.max_delay_sec, 60);
        let c =
            TimerConfig::from_properties(&Properties::parse("timerPrecisionMs=5000\n")).unwrap();
        assert_eq!(c.precision_ms, 1000);
        let c = TimerConfig::from_properties(&Properties::parse("timerPrecisionMs=10\n")).unwrap();
        assert_eq!(c.precision_ms, 100);
        assert!(TimerConfig::from_properties(&Properties::parse("timerMaxDelaySec=0\n")).is_err());
    }
}
