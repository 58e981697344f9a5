//! POP consumption state and the revive service.
//!
//! A pop reads messages from a queue at the group's offset, writes a **checkpoint** record
//! (which offsets it handed out, when, for how long) to the revive topic
//! `rmq_sys_REVIVE_LOG_<cluster>`, then moves the group's offset past them. An ACK writes an
//! **ack** record to the same revive queue. Both records go through the CommitLog like any
//! message, so they replicate and survive crashes.
//!
//! The revive service reads each revive queue in order, keeps the checkpoints not yet fully
//! acked in memory, and once a checkpoint's invisible time has passed (plus a grace for
//! acks still being dispatched) writes each un-acked message to the group's POP retry topic
//! (`%RETRY%<group>_<topic>`) with its reconsume count raised, or to the DLQ once that count
//! passes the group's `retryMaxTimes`. A `done` record then marks the checkpoint revived, so a
//! restart that re-reads the queue does not revive it twice. The group `CID_RMQ_SYS_REVIVE_GROUP`
//! commits, per revive queue, the offset of the oldest checkpoint still open: a restart
//! re-reads from there and loses no un-acked message.
//!
//! FIFO pops write no checkpoint: the queue stays blocked (in memory) until every popped
//! message is acked or its invisible time passes, and the group's offset stays at the first
//! un-acked message, so they are popped again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use rocketmq_common::message::keys::{
    DLQ_ORIGIN_MESSAGE_ID, DLQ_ORIGIN_TOPIC, ORIGIN_MESSAGE_ID, RETRY_TOPIC, TAGS, UNIQ_KEY,
};
use rocketmq_common::message::{RecordInput, encode_properties, get_property, rewrite_properties};
use rocketmq_common::pop::{
    ACK_TAG, BATCH_ACK_TAG, CK_TAG, FIRST_POP_TIME, REVIVE_GROUP, TopicFlag, pop_retry_topic,
    revive_topic,
};
use rocketmq_common::remoting::ProcessError;
use rocketmq_common::route::{PERM_READ, PERM_WRITE, TopicConfig};
use rocketmq_common::topic::{RETRY_GROUP_TOPIC_PREFIX, dlq_topic};

use crate::processor::{BrokerContext, store_error};

/// Queues of the revive topic (`reviveQueueNum`).
pub const REVIVE_QUEUE_NUM: i32 = 8;
/// Tag of the record that closes a revived checkpoint (ours).
const DONE_TAG: &str = "done";
/// How long after a checkpoint's deadline the revive waits for acks written just before it
/// to be dispatched.
const ACK_GRACE_MS: i64 = 1_000;
/// How often the revive service looks at its queues.
const REVIVE_INTERVAL: Duration = Duration::from_millis(200);

/// What a pop handed out from one queue (`PopCheckPoint`, short keys as Java writes them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// First queue offset read.
    #[serde(rename = "so")]
    pub start_offset: i64,
    /// Pop time (ms).
    #[serde(rename = "pt")]
    pub pop_time: i64,
    /// Invisible time (ms).
    #[serde(rename = "it")]
    pub invisible_time: i64,
    /// Acked bits, by position in `offset_diffs`.
    #[serde(rename = "bm", default)]
    pub bit_map: u64,
    /// Messages covered.
    #[serde(rename = "n")]
    pub num: u32,
    /// Queue of the real topic.
    #[serde(rename = "q")]
    pub queue_id: i32,
    /// The real topic (a retry topic for retried messages).
    #[serde(rename = "t")]
    pub topic: String,
    /// Consumer group.
    #[serde(rename = "c")]
    pub group: String,
    /// Offset of each message minus `start_offset`.
    #[serde(rename = "d")]
    pub offset_diffs: Vec<i64>,
    /// Broker that served the pop.
    #[serde(rename = "bn")]
    pub broker_name: String,
}

impl Checkpoint {
    fn key(&self) -> CkKey {
        CkKey {
            topic: self.topic.clone(),
            group: self.group.clone(),
            queue_id: self.queue_id,
            start_offset: self.start_offset,
            pop_time: self.pop_time,
        }
    }

    fn deadline(&self) -> i64 {
        self.pop_time + self.invisible_time
    }

    fn ack(&mut self, offset: i64) {
        if let Some(i) = self
            .offset_diffs
            .iter()
            .position(|d| self.start_offset + d == offset)
        {
            self.bit_map |= 1 << i;
        }
    }

    fn fully_acked(&self) -> bool {
        (0..self.offset_diffs.len()).all(|i| self.bit_map & (1 << i) != 0)
    }

    fn unacked_offsets(&self) -> impl Iterator<Item = i64> + '_ {
        self.offset_diffs
            .iter()
            .enumerate()
            .filter(|(i, _)| self.bit_map & (1 << i) == 0)
            .map(|(_, d)| self.start_offset + d)
    }
}

/// What identifies a checkpoint for its acks.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
struct CkKey {
    #[serde(rename = "t")]
    topic: String,
    #[serde(rename = "c")]
    group: String,
    #[serde(rename = "q")]
    queue_id: i32,
    #[serde(rename = "so")]
    start_offset: i64,
    #[serde(rename = "pt")]
    pop_time: i64,
}

/// An ack record (`AckMsg`/`BatchAckMsg`): `ao` for one offset, `aol` for several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckRecord {
    /// Acked offset (-1 in a batch ack).
    #[serde(rename = "ao", default = "minus_one")]
    pub ack_offset: i64,
    /// Acked offsets of a batch ack.
    #[serde(rename = "aol", default, skip_serializing_if = "Vec::is_empty")]
    pub ack_offsets: Vec<i64>,
    /// Checkpoint start offset.
    #[serde(rename = "so")]
    pub start_offset: i64,
    /// Consumer group.
    #[serde(rename = "c")]
    pub group: String,
    /// The real topic.
    #[serde(rename = "t")]
    pub topic: String,
    /// Queue.
    #[serde(rename = "q")]
    pub queue_id: i32,
    /// Pop time of the checkpoint.
    #[serde(rename = "pt")]
    pub pop_time: i64,
    /// Broker name.
    #[serde(rename = "bn", default)]
    pub broker_name: String,
}

fn minus_one() -> i64 {
    -1
}

impl AckRecord {
    fn key(&self) -> CkKey {
        CkKey {
            topic: self.topic.clone(),
            group: self.group.clone(),
            queue_id: self.queue_id,
            start_offset: self.start_offset,
            pop_time: self.pop_time,
        }
    }
}

/// A FIFO queue's last pop, per group (`ConsumerOrderInfoManager.OrderInfo`).
#[derive(Debug, Clone)]
pub struct OrderInfo {
    /// Pop time of the last pop.
    pub pop_time: i64,
    /// Offsets popped, in order.
    pub offsets: Vec<i64>,
    /// Whether each is acked.
    pub acked: Vec<bool>,
    /// When each becomes visible again (ms).
    pub visible_at: Vec<i64>,
    /// Times each offset was handed out before (its reconsume count).
    pub counts: HashMap<i64, i32>,
    /// The attempt that popped them.
    pub attempt_id: Option<String>,
}

impl OrderInfo {
    /// Whether the queue waits for acks: an un-acked message still invisible, unless the
    /// same attempt asks again (a retried request gets the same messages).
    pub fn blocks(&self, attempt_id: Option<&str>, now: i64) -> bool {
        if attempt_id.is_some() && attempt_id == self.attempt_id.as_deref() {
            return false;
        }
        (0..self.offsets.len()).any(|i| !self.acked[i] && now < self.visible_at[i])
    }

    /// Whether `offset` was acked in this pop.
    pub fn is_acked(&self, offset: i64) -> bool {
        self.offsets
            .iter()
            .position(|o| *o == offset)
            .is_some_and(|i| self.acked[i])
    }

    /// The first offset not acked, or the one after the last (where the group's offset
    /// may move).
    pub fn next_offset(&self) -> i64 {
        (0..self.offsets.len())
            .find(|i| !self.acked[*i])
            .map_or_else(
                || self.offsets.last().map_or(0, |o| o + 1),
                |i| self.offsets[i],
            )
    }
}

/// How a FIFO ack went.
#[derive(Debug, PartialEq, Eq)]
pub enum OrderAck {
    /// Recorded; the group's offset may move to the value.
    Committed(i64),
    /// The receipt is from an older pop: nothing to do.
    Stale,
}

/// Shared POP state of a broker.
pub struct PopState {
    busy: Mutex<HashSet<String>>,
    order: Mutex<HashMap<String, OrderInfo>>,
    next_revive_qid: AtomicU32,
    modes: Mutex<BTreeMap<String, rocketmq_common::pop::SetMessageRequestModeRequestBody>>,
    modes_path: std::path::PathBuf,
}

/// Holds a queue for one pop at a time; released on drop.
pub struct QueueGuard<'a> {
    state: &'a PopState,
    key: String,
}

impl Drop for QueueGuard<'_> {
    fn drop(&mut self) {
        self.state.busy.lock().remove(&self.key);
    }
}

/// `topic@group@queueId`, the key of per-queue POP state.
pub fn queue_key(topic: &str, group: &str, queue_id: i32) -> String {
    format!("{topic}@{group}@{queue_id}")
}

impl PopState {
    /// Empty state; request modes persist to `modes_path`.
    pub fn load(modes_path: std::path::PathBuf) -> Self {
        let modes = std::fs::read(&modes_path)
            .ok()
            .and_then(|b| rocketmq_common::json::from_slice_lenient(&b).ok())
            .unwrap_or_default();
        Self {
            busy: Mutex::default(),
            order: Mutex::default(),
            next_revive_qid: AtomicU32::new(0),
            modes: Mutex::new(modes),
            modes_path,
        }
    }

    /// Takes the queue for one pop, or `None` while another pop reads it.
    pub fn try_lock(&self, key: String) -> Option<QueueGuard<'_>> {
        // The set's lock must be released before a guard may exist: a guard that is built
        // and dropped (queue busy) takes the lock to remove its key.
        let inserted = self.busy.lock().insert(key.clone());
        inserted.then(|| QueueGuard { state: self, key })
    }

    /// The revive queue of the next checkpoint (round robin).
    pub fn next_revive_qid(&self) -> i32 {
        (self.next_revive_qid.fetch_add(1, Ordering::Relaxed) % REVIVE_QUEUE_NUM as u32) as i32
    }

    /// Whether a FIFO queue waits for acks.
    pub fn order_blocked(&self, key: &str, attempt_id: Option<&str>, now: i64) -> bool {
        self.order
            .lock()
            .get(key)
            .is_some_and(|o| o.blocks(attempt_id, now))
    }

    /// Whether `offset` of a FIFO queue was already acked in its current pop.
    pub fn order_acked(&self, key: &str, offset: i64) -> bool {
        self.order
            .lock()
            .get(key)
            .is_some_and(|o| o.is_acked(offset))
    }

    /// Records a FIFO pop of `offsets`; returns each offset's delivery count before this one.
    pub fn order_popped(
        &self,
        key: &str,
        offsets: &[i64],
        pop_time: i64,
        invisible_time: i64,
        attempt_id: Option<&str>,
    ) -> Vec<i32> {
        let mut order = self.order.lock();
        let previous = order.remove(key);
        let same_attempt = attempt_id.is_some()
            && previous.as_ref().and_then(|p| p.attempt_id.as_deref()) == attempt_id;
        let mut counts = previous.map(|p| p.counts).unwrap_or_default();
        counts.retain(|o, _| offsets.contains(o));
        let mut out = Vec::with_capacity(offsets.len());
        for o in offsets {
            let c = counts.entry(*o).or_insert(-1);
            if !same_attempt || *c < 0 {
                *c += 1;
            }
            out.push(*c);
        }
        order.insert(
            key.to_string(),
            OrderInfo {
                pop_time,
                offsets: offsets.to_vec(),
                acked: vec![false; offsets.len()],
                visible_at: vec![pop_time + invisible_time; offsets.len()],
                counts,
                attempt_id: attempt_id.map(str::to_string),
            },
        );
        out
    }

    /// Acks one message of a FIFO pop.
    pub fn order_ack(&self, key: &str, offset: i64, pop_time: i64) -> OrderAck {
        let mut order = self.order.lock();
        let Some(info) = order.get_mut(key) else {
            return OrderAck::Stale;
        };
        if info.pop_time != pop_time {
            return OrderAck::Stale;
        }
        let Some(i) = info.offsets.iter().position(|o| *o == offset) else {
            return OrderAck::Stale;
        };
        info.acked[i] = true;
        let next = info.next_offset();
        if info.acked.iter().all(|a| *a) {
            order.remove(key);
        }
        OrderAck::Committed(next)
    }

    /// Moves when a FIFO message becomes visible again; returns the new invisible time
    /// counted from its pop time, or `None` for a stale receipt.
    pub fn order_change_invisible(
        &self,
        key: &str,
        offset: i64,
        pop_time: i64,
        visible_at: i64,
    ) -> Option<i64> {
        let mut order = self.order.lock();
        let info = order.get_mut(key)?;
        if info.pop_time != pop_time {
            return None;
        }
        let i = info.offsets.iter().position(|o| *o == offset)?;
        info.visible_at[i] = visible_at;
        Some(visible_at - pop_time)
    }

    /// The request mode set for a topic and group.
    pub fn request_mode(
        &self,
        topic: &str,
        group: &str,
    ) -> Option<rocketmq_common::pop::SetMessageRequestModeRequestBody> {
        self.modes.lock().get(&format!("{topic}@{group}")).cloned()
    }

    /// Sets and persists a request mode.
    pub fn set_request_mode(
        &self,
        body: rocketmq_common::pop::SetMessageRequestModeRequestBody,
    ) -> std::io::Result<()> {
        let bytes = {
            let mut modes = self.modes.lock();
            modes.insert(format!("{}@{}", body.topic, body.consumer_group), body);
            serde_json::to_vec_pretty(&*modes).expect("modes serialise")
        };
        rocketmq_common::persist::write_file_atomically(&self.modes_path, &bytes)
    }
}

/// Now, in ms since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Writes a record of `tag` with JSON `body` to revive queue `revive_qid`.
pub async fn put_revive_record(
    ctx: &BrokerContext,
    revive_qid: i32,
    tag: &str,
    body: &[u8],
    uniq_key: &str,
) -> Result<(), ProcessError> {
    let topic = revive_topic(&ctx.config.broker_cluster_name);
    let properties = encode_properties([(TAGS, tag), (UNIQ_KEY, uniq_key)]);
    let input = RecordInput {
        topic: &topic,
        queue_id: revive_qid,
        flag: 0,
        sys_flag: 0,
        born_timestamp: now_ms(),
        born_host: ctx.store_host,
        store_host: ctx.store_host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body,
        properties: &properties,
    };
    ctx.put_one(&input).await.map(drop)
}

/// Writes a checkpoint record.
pub async fn put_checkpoint(
    ctx: &BrokerContext,
    revive_qid: i32,
    ck: &Checkpoint,
) -> Result<(), ProcessError> {
    let uniq = format!(
        "{}@{}@{}@{}@{}@{}@ck",
        ck.topic, ck.queue_id, ck.start_offset, ck.group, ck.pop_time, ck.broker_name
    );
    let body = serde_json::to_vec(ck).expect("checkpoints serialise");
    put_revive_record(ctx, revive_qid, CK_TAG, &body, &uniq).await
}

/// Writes an ack record (one offset, or a batch).
pub async fn put_ack(
    ctx: &BrokerContext,
    revive_qid: i32,
    ack: &AckRecord,
) -> Result<(), ProcessError> {
    let tag = if ack.ack_offsets.is_empty() {
        ACK_TAG
    } else {
        BATCH_ACK_TAG
    };
    let uniq = format!(
        "{}@{}@{}@{}@{}@{}@{tag}",
        ack.topic, ack.queue_id, ack.ack_offset, ack.group, ack.pop_time, ack.broker_name
    );
    let body = serde_json::to_vec(ack).expect("acks serialise");
    put_revive_record(ctx, revive_qid, tag, &body, &uniq).await
}

/// Where a message that was not acked in time goes next.
enum ReviveTarget {
    Retry(String),
    DeadLetter(String),
}

/// Moves one message given out by `ck` and not acked to its retry topic, or to the DLQ
/// past the group's `retryMaxTimes` or when `to_dlq` (a FIFO message whose delivery count,
/// kept by the broker, passed the limit). A message no longer in the store (retention) is
/// skipped.
pub async fn revive_message(
    ctx: &BrokerContext,
    ck: &Checkpoint,
    offset: i64,
    to_dlq: bool,
) -> Result<(), ProcessError> {
    let found = ctx
        .store
        .get_messages(&ck.topic, ck.queue_id, offset, 1, 64 << 20)
        .map_err(store_error)?;
    let Some((_, buf)) = found.messages.first() else {
        warn!(topic = %ck.topic, queue_id = ck.queue_id, offset, "un-acked popped message is no longer stored; nothing to revive");
        return Ok(());
    };
    let m = buf.decode().map_err(store_error)?;
    if m.queue_offset != offset {
        return Ok(());
    }
    let max = ctx.groups.get(&ck.group).map_or(16, |g| g.retry_max_times);
    let reconsume = m.reconsume_times + 1;
    let origin_topic = get_property(m.properties, RETRY_TOPIC)
        .map(str::to_string)
        .unwrap_or_else(|| original_topic(&ck.topic, &ck.group));
    let target = if to_dlq || reconsume > max {
        ReviveTarget::DeadLetter(dlq_topic(&ck.group))
    } else if TopicFlag::of(&ck.topic) == TopicFlag::Normal {
        ReviveTarget::Retry(pop_retry_topic(&ck.topic, &ck.group))
    } else {
        ReviveTarget::Retry(ck.topic.clone())
    };
    let topic = match &target {
        ReviveTarget::Retry(t) | ReviveTarget::DeadLetter(t) => t.clone(),
    };
    ctx.topic_or_create(TopicConfig {
        perm: PERM_READ | PERM_WRITE,
        ..TopicConfig::new(&topic, 1)
    })
    .await
    .map_err(|e| {
        ProcessError::new(
            rocketmq_common::protocol::ResponseCode::SystemError,
            e.to_string(),
        )
    })?;
    let first_pop = ck.pop_time.to_string();
    let origin_id = get_property(m.properties, ORIGIN_MESSAGE_ID)
        .or(get_property(m.properties, UNIQ_KEY))
        .unwrap_or_default()
        .to_string();
    let mut set: Vec<(&str, &str)> = vec![(RETRY_TOPIC, &origin_topic)];
    if get_property(m.properties, FIRST_POP_TIME).is_none() {
        set.push((FIRST_POP_TIME, &first_pop));
    }
    if matches!(target, ReviveTarget::DeadLetter(_)) {
        set.push((DLQ_ORIGIN_TOPIC, &origin_topic));
        set.push((DLQ_ORIGIN_MESSAGE_ID, &origin_id));
    }
    let properties = rewrite_properties(m.properties, &set, &[]);
    let input = RecordInput {
        topic: &topic,
        queue_id: 0,
        flag: m.flag,
        sys_flag: m.sys_flag,
        born_timestamp: m.born_timestamp,
        born_host: m.born_host,
        store_host: ctx.store_host,
        reconsume_times: reconsume,
        prepared_transaction_offset: 0,
        body: m.body,
        properties: &properties,
    };
    ctx.put_one(&input).await?;
    if matches!(target, ReviveTarget::DeadLetter(_)) {
        info!(group = %ck.group, topic = %origin_topic, id = %origin_id, "popped message not acked after {max} deliveries: moved to the dead-letter queue");
    }
    Ok(())
}

/// The topic a client knows a message by, from the topic it sits in.
pub fn original_topic(topic: &str, group: &str) -> String {
    let prefix = format!("{RETRY_GROUP_TOPIC_PREFIX}{group}");
    match topic.strip_prefix(&prefix) {
        Some(rest) if rest.starts_with('_') || rest.starts_with('+') => rest[1..].to_string(),
        _ => topic.to_string(),
    }
}

/// One revive queue's progress (master only).
#[derive(Default)]
struct ReviveQueue {
    /// Next revive-queue offset to read; `None` until loaded from the committed offset.
    next: Option<i64>,
    /// Open checkpoints by their revive-queue offset.
    open: BTreeMap<i64, Checkpoint>,
    /// Revive-queue offset of each open checkpoint.
    index: HashMap<CkKey, i64>,
}

impl ReviveQueue {
    fn apply(&mut self, offset: i64, tag: &str, body: &[u8]) {
        match tag {
            CK_TAG => match serde_json::from_slice::<Checkpoint>(body) {
                Ok(ck) if ck.offset_diffs.len() <= 64 => {
                    self.index.insert(ck.key(), offset);
                    self.open.insert(offset, ck);
                }
                Ok(_) => warn!(offset, "checkpoint covers more than 64 messages; ignored"),
                Err(e) => {
                    warn!(offset, error = %e, "unreadable checkpoint in the revive queue; ignored")
                }
            },
            ACK_TAG | BATCH_ACK_TAG => match serde_json::from_slice::<AckRecord>(body) {
                Ok(ack) => {
                    let Some(ro) = self.index.get(&ack.key()).copied() else {
                        return;
                    };
                    let ck = self
                        .open
                        .get_mut(&ro)
                        .expect("indexed checkpoints are open");
                    if ack.ack_offsets.is_empty() {
                        ck.ack(ack.ack_offset);
                    } else {
                        for o in &ack.ack_offsets {
                            ck.ack(*o);
                        }
                    }
                    if ck.fully_acked() {
                        self.close(ro);
                    }
                }
                Err(e) => warn!(offset, error = %e, "unreadable ack in the revive queue; ignored"),
            },
            DONE_TAG => {
                // Two checkpoints may share a key (same message, same millisecond): the
                // revive offset says which one was revived.
                if let Ok(done) = serde_json::from_slice::<Done>(body)
                    && self
                        .open
                        .get(&done.revive_offset)
                        .is_some_and(|ck| ck.key() == done.key)
                {
                    self.close(done.revive_offset);
                }
            }
            _ => {}
        }
    }

    fn close(&mut self, ro: i64) {
        if let Some(ck) = self.open.remove(&ro) {
            let key = ck.key();
            if self.index.get(&key) == Some(&ro) {
                self.index.remove(&key);
            }
        }
    }
}

/// Runs the revive service until `stop`: on the master only, every [`REVIVE_INTERVAL`].
pub async fn run_revive_service(ctx: Arc<BrokerContext>, stop: CancellationToken) {
    let mut queues: Vec<ReviveQueue> = (0..REVIVE_QUEUE_NUM)
        .map(|_| ReviveQueue::default())
        .collect();
    let topic = revive_topic(&ctx.config.broker_cluster_name);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(REVIVE_INTERVAL) => {}
        }
        if ctx.is_shutting_down() {
            return;
        }
        if !ctx.replication.is_master() {
            // A slave follows its master's revive offsets; start over from them once promoted.
            for q in &mut queues {
                *q = ReviveQueue::default();
            }
            continue;
        }
        for (qid, q) in queues.iter_mut().enumerate() {
            if let Err(e) = revive_round(&ctx, &topic, qid as i32, q).await {
                warn!(revive_queue = qid, error = %e, "revive round failed; retrying");
            }
        }
    }
}

async fn revive_round(
    ctx: &BrokerContext,
    topic: &str,
    qid: i32,
    q: &mut ReviveQueue,
) -> Result<(), ProcessError> {
    let mut next = match q.next {
        Some(n) => n,
        None => ctx
            .offsets
            .query(REVIVE_GROUP, topic, qid)
            .unwrap_or_else(|| ctx.store.min_offset_in_queue(topic, qid)),
    };
    loop {
        let got = ctx
            .store
            .get_messages(topic, qid, next, 256, 4 << 20)
            .map_err(store_error)?;
        if got.messages.is_empty() {
            if got.next_begin_offset > next {
                next = got.next_begin_offset;
                continue;
            }
            break;
        }
        for (offset, buf) in &got.messages {
            match buf.decode() {
                Ok(m) => {
                    let tag = get_property(m.properties, TAGS).unwrap_or_default();
                    q.apply(m.queue_offset, tag, m.body);
                }
                Err(e) => {
                    warn!(revive_queue = qid, offset, error = %e, "unreadable revive record; skipped")
                }
            }
        }
        next = got.next_begin_offset;
    }
    q.next = Some(next);
    let now = now_ms();
    let due: Vec<i64> = q
        .open
        .iter()
        .filter(|(_, ck)| now >= ck.deadline() + ACK_GRACE_MS)
        .map(|(ro, _)| *ro)
        .collect();
    for ro in due {
        let ck = q.open[&ro].clone();
        // A checkpoint that cannot be revived now stays open (and holds the committed
        // offset, so a restart retries it) without stopping the others.
        if let Err(e) = revive_checkpoint(ctx, qid, ro, &ck).await {
            warn!(revive_queue = qid, offset = ro, topic = %ck.topic, group = %ck.group, error = %e, "reviving a checkpoint failed; retrying next round");
            continue;
        }
        q.close(ro);
    }
    let committed = q.open.keys().next().copied().unwrap_or(next);
    ctx.offsets.commit(REVIVE_GROUP, topic, qid, committed);
    Ok(())
}

/// Revives the un-acked messages of one checkpoint, then closes it with a `done` record
/// naming its revive offset.
async fn revive_checkpoint(
    ctx: &BrokerContext,
    qid: i32,
    ro: i64,
    ck: &Checkpoint,
) -> Result<(), ProcessError> {
    for offset in ck.unacked_offsets() {
        revive_message(ctx, ck, offset, false).await?;
    }
    let done = Done {
        revive_offset: ro,
        key: ck.key(),
    };
    let body = serde_json::to_vec(&done).expect("done records serialise");
    put_revive_record(ctx, qid, DONE_TAG, &body, &format!("{ro}@{qid}@done")).await
}

/// Closes a revived checkpoint: its revive offset, and its key as a check.
#[derive(Debug, Serialize, Deserialize)]
struct Done {
    #[serde(rename = "ro")]
    revive_offset: i64,
    #[serde(flatten)]
    key: CkKey,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ck(so: i64, diffs: &[i64]) -> Checkpoint {
        Checkpoint {
            start_offset: so,
            pop_time: 1000,
            invisible_time: 5000,
            bit_map: 0,
            num: diffs.len() as u32,
            queue_id: 0,
            topic: "T".into(),
            group: "G".into(),
            offset_diffs: diffs.to_vec(),
            broker_name: "b".into(),
        }
    }

    fn ack(so: i64, offsets: &[i64]) -> AckRecord {
        AckRecord {
            ack_offset: if offsets.len() == 1 { offsets[0] } else { -1 },
            ack_offsets: if offsets.len() == 1 {
                Vec::new()
            } else {
                offsets.to_vec()
            },
            start_offset: so,
            group: "G".into(),
            topic: "T".into(),
            queue_id: 0,
            pop_time: 1000,
            broker_name: "b".into(),
        }
    }

    #[test]
    fn acks_close_checkpoints_and_leave_the_rest() {
        let mut q = ReviveQueue::default();
        q.apply(0, CK_TAG, &serde_json::to_vec(&ck(10, &[0, 1, 3])).unwrap());
        q.apply(1, ACK_TAG, &serde_json::to_vec(&ack(10, &[11])).unwrap());
        assert_eq!(
            q.open[&0].unacked_offsets().collect::<Vec<_>>(),
            vec![10, 13]
        );
        // An ack for another pop of the same queue changes nothing.
        let mut other = ack(10, &[10]);
        other.pop_time = 999;
        q.apply(2, ACK_TAG, &serde_json::to_vec(&other).unwrap());
        assert_eq!(q.open[&0].unacked_offsets().count(), 2);
        q.apply(
            3,
            BATCH_ACK_TAG,
            &serde_json::to_vec(&ack(10, &[10, 13])).unwrap(),
        );
        assert!(q.open.is_empty() && q.index.is_empty());
        // A revived checkpoint's done record closes it when the queue is read again.
        q.apply(4, CK_TAG, &serde_json::to_vec(&ck(20, &[0])).unwrap());
        let done = Done {
            revive_offset: 4,
            key: ck(20, &[0]).key(),
        };
        q.apply(5, DONE_TAG, &serde_json::to_vec(&done).unwrap());
        assert!(q.open.is_empty());
        // Garbage is ignored.
        q.apply(6, CK_TAG, b"{not json");
        assert!(q.open.is_empty());
        // Two checkpoints with one key: the done of the older leaves the newer open.
        q.apply(7, CK_TAG, &serde_json::to_vec(&ck(30, &[0])).unwrap());
        q.apply(8, CK_TAG, &serde_json::to_vec(&ck(30, &[0])).unwrap());
        let done = Done {
            revive_offset: 7,
            key: ck(30, &[0]).key(),
        };
        q.apply(9, DONE_TAG, &serde_json::to_vec(&done).unwrap());
        assert_eq!(q.open.keys().copied().collect::<Vec<_>>(), vec![8]);
        assert_eq!(q.index.get(&ck(30, &[0]).key()), Some(&8));
    }

    #[test]
    fn fifo_queue_blocks_until_acked_or_invisible_time_passes() {
        let state = PopState::load(std::env::temp_dir().join("unused-modes.json"));
        let key = queue_key("T", "G", 0);
        let counts = state.order_popped(&key, &[5, 6], 1000, 100, Some("a1"));
        assert_eq!(counts, vec![0, 0]);
        assert!(state.order_blocked(&key, Some("a2"), 1050));
        // The same attempt retrying is not blocked.
        assert!(!state.order_blocked(&key, Some("a1"), 1050));
        assert!(!state.order_blocked(&key, Some("a2"), 1100));
        // Popped again after the invisible time: the counts rise.
        let counts = state.order_popped(&key, &[5, 6], 1200, 100, Some("a2"));
        assert_eq!(counts, vec![1, 1]);
        assert_eq!(state.order_ack(&key, 5, 1000), OrderAck::Stale);
        assert_eq!(state.order_ack(&key, 6, 1200), OrderAck::Committed(5));
        assert!(state.order_acked(&key, 6));
        assert!(state.order_blocked(&key, None, 1250));
        assert_eq!(state.order_ack(&key, 5, 1200), OrderAck::Committed(7));
        assert!(!state.order_blocked(&key, None, 1250));
    }

    #[test]
    fn a_busy_queue_is_refused_without_releasing_its_holder() {
        let state = PopState::load(std::env::temp_dir().join("unused-modes.json"));
        let held = state.try_lock(queue_key("T", "G", 0)).expect("free");
        assert!(state.try_lock(queue_key("T", "G", 0)).is_none(), "busy");
        assert!(
            state.try_lock(queue_key("T", "G", 0)).is_none(),
            "still held by the first"
        );
        assert!(
            state.try_lock(queue_key("T", "G", 1)).is_some(),
            "other queues are free"
        );
        drop(held);
        assert!(
            state.try_lock(queue_key("T", "G", 0)).is_some(),
            "free once released"
        );
    }

    #[test]
    fn original_topic_of_retry_topics() {
        assert_eq!(original_topic("%RETRY%G_T", "G"), "T");
        assert_eq!(original_topic("%RETRY%G+T", "G"), "T");
        assert_eq!(original_topic("T", "G"), "T");
        assert_eq!(original_topic("%RETRY%G", "G"), "%RETRY%G");
    }
}
