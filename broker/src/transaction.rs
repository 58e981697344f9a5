//! Transactional messages (`TransactionalMessageService`): half messages, END_TRANSACTION and
//! the check service.
//!
//! A producer sends a half message (`TRAN_MSG=true`); the broker parks it in
//! `RMQ_SYS_TRANS_HALF_TOPIC` queue 0 with its destination in `REAL_TOPIC`/`REAL_QID`, where no
//! consumer of the real topic can see it. END_TRANSACTION then either commits it (a copy goes
//! to the real queue) or rolls it back; either way an "op" record naming the half offset goes
//! to `RMQ_SYS_TRANS_OP_HALF_TOPIC`. The check service walks the half queue: a half message
//! with no op record after `transactionTimeOut` is appended again (with its check count
//! raised) and its producer is asked (CHECK_TRANSACTION_STATE) to commit or roll back; after
//! `transactionCheckMax` checks it is moved to `TRANS_CHECK_MAX_TIME_TOPIC`.
//!
//! Invariants:
//! - All state lives in the CommitLog (half and op topics) and in the consumer offsets of
//!   group `CID_RMQ_SYS_TRANS` on those topics, so it survives restarts and crashes exactly
//!   as messages and offsets do. After a crash the check service may ask about a message
//!   again (at-least-once), never forget one.
//! - The half offset only moves past a message that is resolved (has an op record),
//!   discarded, or re-appended further on; so every half message is eventually committed,
//!   rolled back, or discarded, never silently dropped.
//! - A commit is acknowledged only after the committed copy is stored; the op record is
//!   written after it, so a crash in between leads to a check, not a lost commit.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rocketmq_common::message::keys::{
    CHECK_IMMUNITY_TIME_IN_SECONDS, PRODUCER_GROUP, REAL_QUEUE_ID, REAL_TOPIC, TAGS,
    TRANSACTION_CHECK_TIMES, TRANSACTION_ID, TRANSACTION_PREPARED,
    TRANSACTION_PREPARED_QUEUE_OFFSET, UNIQ_KEY,
};
use rocketmq_common::message::record::{RecordHeaderFields, body_crc, encode_record};
use rocketmq_common::message::sysflag::{
    TRANSACTION_COMMIT_TYPE, TRANSACTION_MASK, TRANSACTION_NOT_TYPE, TRANSACTION_PREPARED_TYPE,
    TRANSACTION_ROLLBACK_TYPE, transaction_value,
};
use rocketmq_common::message::{
    DecodedRecord, RecordInput, encode_offset_message_id, encode_properties, get_property,
    rewrite_properties,
};
use rocketmq_common::protocol::headers::broker::{
    CheckTransactionStateRequestHeader, EndTransactionRequestHeader,
};
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::ProcessError;
use rocketmq_common::route::{PERM_READ, PERM_WRITE, TopicConfig};
use rocketmq_common::topic::{TRANS_CHECK_MAX_TIME_TOPIC, TRANS_HALF_TOPIC, TRANS_OP_HALF_TOPIC};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::processor::BrokerContext;
use rocketmq_store::{AppendResult, GetStatus};

/// Consumer group under which the check service keeps its half and op offsets (Java's
/// `MixAll.CID_SYS_RMQ_TRANS`, whose value differs from its name).
pub const TRANSACTION_CHECK_GROUP: &str = "CID_RMQ_SYS_TRANS";
/// Tag of op records.
pub const REMOVE_TAG: &str = "d";
/// Op record bodies list half offsets, each followed by this separator.
const OFFSET_SEPARATOR: char = ',';
/// Messages read per store call while scanning.
const SCAN_BATCH: usize = 32;
/// Longest one queue is scanned per round, so a huge backlog cannot starve shutdown.
const MAX_ROUND_TIME: Duration = Duration::from_secs(60);

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Whether a send is the half message of a transaction: the `TRAN_MSG` property (what Java
/// decides by), or the PREPARED bits of the sys flag (which every client sets too). A
/// PREPARED message stored as a plain one would never become visible, so either marks it.
pub fn is_half_message(properties: &str, sys_flag: i32) -> bool {
    get_property(properties, TRANSACTION_PREPARED).is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || transaction_value(sys_flag) == TRANSACTION_PREPARED_TYPE
}

/// The half message's properties and sys flag: destination kept in `REAL_TOPIC`/`REAL_QID`,
/// the transaction id set from the unique key, the producer group recorded (checks go to
/// it), and the transaction bits cleared so the half queue indexes it.
pub fn half_message(
    properties: &str,
    sys_flag: i32,
    topic: &str,
    queue_id: i32,
    producer_group: &str,
) -> (String, i32) {
    let queue = queue_id.to_string();
    let mut set: Vec<(&str, &str)> = vec![
        (REAL_TOPIC, topic),
        (REAL_QUEUE_ID, &queue),
        (TRANSACTION_PREPARED, "true"),
    ];
    if let Some(uniq) = get_property(properties, UNIQ_KEY).filter(|u| !u.is_empty()) {
        set.push((TRANSACTION_ID, uniq));
    }
    if get_property(properties, PRODUCER_GROUP).is_none_or(str::is_empty) {
        set.push((PRODUCER_GROUP, producer_group));
    }
    let props = rewrite_properties(properties, &set, &[]);
    (props, (sys_flag & !TRANSACTION_MASK) | TRANSACTION_NOT_TYPE)
}

/// The transaction id reported to the producer: the unique key.
pub fn transaction_id(properties: &str) -> Option<String> {
    get_property(properties, UNIQ_KEY)
        .filter(|u| !u.is_empty())
        .map(str::to_string)
}

fn system_error(remark: impl Into<String>) -> ProcessError {
    ProcessError::new(ResponseCode::SystemError, remark)
}

/// Handles END_TRANSACTION: commit writes the message to its real queue (through the delay
/// or timer queue if it asks for one) and then the op record; rollback writes only the op
/// record. Answers `None` for "unknown" (the check service will ask later).
pub async fn end_transaction(
    ctx: &BrokerContext,
    h: &EndTransactionRequestHeader,
) -> Result<Option<RemotingCommand>, ProcessError> {
    let resolution = h.commit_or_rollback;
    match resolution {
        TRANSACTION_NOT_TYPE => {
            debug!(group = %h.producer_group, msg_id = %h.msg_id, from_check = ?h.from_transaction_check, "transaction state unknown; waiting for a check");
            return Ok(None);
        }
        TRANSACTION_COMMIT_TYPE | TRANSACTION_ROLLBACK_TYPE => {}
        other => {
            return Err(system_error(format!(
                "commitOrRollback {other} is neither 0 (unknown), 8 (commit) nor 12 (rollback)"
            )));
        }
    }
    let buf = ctx
        .store
        .get_message_by_offset(h.commit_log_offset)
        .map_err(crate::processor::store_error)?
        .ok_or_else(|| system_error("Find prepared transaction message failed"))?;
    let half = buf.decode().map_err(crate::processor::store_error)?;
    if half.topic != TRANS_HALF_TOPIC {
        return Err(system_error(format!(
            "the message at commitLogOffset {} is not a half message (topic {})",
            h.commit_log_offset, half.topic
        )));
    }
    if !h.from_transaction_check.unwrap_or(false)
        && let Some(immunity) = get_property(half.properties, CHECK_IMMUNITY_TIME_IN_SECONDS)
    {
        // Past its immunity window the producer's own verdict is refused: the check
        // service owns the message from then on.
        let window = immunity
            .trim()
            .parse::<i64>()
            .map_or(0, |s| s.saturating_mul(1000))
            .max(ctx.live.transaction_timeout().as_millis() as i64);
        if now_millis() - half.born_timestamp > window {
            return Err(ProcessError::new(
                ResponseCode::IllegalOperation,
                "the transaction's immunity time has passed; wait for the broker's check",
            ));
        }
    }
    if get_property(half.properties, PRODUCER_GROUP) != Some(h.producer_group.as_str()) {
        return Err(system_error("The producer group wrong"));
    }
    if half.queue_offset != h.tran_state_table_offset {
        return Err(system_error("The transaction state table offset wrong"));
    }
    if half.physical_offset != h.commit_log_offset {
        return Err(system_error("The commit log offset wrong"));
    }
    if resolution == TRANSACTION_COMMIT_TYPE {
        commit(ctx, &half).await?;
        debug!(group = %h.producer_group, msg_id = %h.msg_id, half_offset = half.queue_offset, "transaction committed");
    } else {
        debug!(group = %h.producer_group, msg_id = %h.msg_id, half_offset = half.queue_offset, "transaction rolled back");
    }
    write_op(ctx, half.queue_id, &[half.queue_offset]).await?;
    Ok(Some(RemotingCommand::success()))
}

/// Stores the committed copy of `half` in its real queue.
async fn commit(ctx: &BrokerContext, half: &DecodedRecord<'_>) -> Result<(), ProcessError> {
    let topic = get_property(half.properties, REAL_TOPIC)
        .ok_or_else(|| system_error("half message without REAL_TOPIC"))?;
    let queue_id: i32 = get_property(half.properties, REAL_QUEUE_ID)
        .and_then(|q| q.parse().ok())
        .ok_or_else(|| system_error("half message without a valid REAL_QID"))?;
    let properties = rewrite_properties(
        half.properties,
        &[],
        &[REAL_TOPIC, REAL_QUEUE_ID, TRANSACTION_PREPARED],
    );
    // The committed message may itself be delayed; it waits in the delay or timer queue.
    let route = crate::delivery::route(ctx, topic, queue_id, &properties)?;
    let input = RecordInput {
        topic: &route.topic,
        queue_id: route.queue_id,
        flag: half.flag,
        sys_flag: (half.sys_flag & !TRANSACTION_MASK) | TRANSACTION_COMMIT_TYPE,
        born_timestamp: half.born_timestamp,
        born_host: half.born_host,
        store_host: ctx.store_host,
        reconsume_times: half.reconsume_times,
        prepared_transaction_offset: half.physical_offset,
        body: half.body,
        properties: &route.properties,
    };
    ctx.put_one(&input).await?;
    Ok(())
}

/// Appends one op record marking `half_offsets` of half queue `queue_id` as resolved.
async fn write_op(
    ctx: &BrokerContext,
    queue_id: i32,
    half_offsets: &[i64],
) -> Result<AppendResult, ProcessError> {
    let mut body = String::new();
    for o in half_offsets {
        body.push_str(&o.to_string());
        body.push(OFFSET_SEPARATOR);
    }
    let properties = encode_properties([(TAGS, REMOVE_TAG)]);
    let input = RecordInput {
        topic: TRANS_OP_HALF_TOPIC,
        queue_id,
        flag: 0,
        sys_flag: 0,
        born_timestamp: now_millis(),
        born_host: ctx.store_host,
        store_host: ctx.store_host,
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body: body.as_bytes(),
        properties: &properties,
    };
    ctx.put_one(&input).await
}

/// Half offsets named by an op record body (`"17,18,"`, or a bare `"17"` as written before
/// batching existed).
pub fn parse_op_body(body: &[u8]) -> Vec<i64> {
    std::str::from_utf8(body)
        .unwrap_or_default()
        .split(OFFSET_SEPARATOR)
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

/// What the check service learnt from the op queue.
#[derive(Debug, Default)]
struct OpIndex {
    /// Half offsets that are resolved.
    resolved: HashSet<i64>,
    /// Op queue offset → highest half offset it resolves (what must stay readable).
    ops: BTreeMap<i64, i64>,
    /// Next op offset to read.
    next: i64,
}

impl OpIndex {
    fn load(ctx: &BrokerContext, queue_id: i32, from: i64) -> Self {
        let mut index = Self {
            next: from,
            ..Self::default()
        };
        index.refresh(ctx, queue_id);
        index
    }

    /// Reads op records appended since the last read.
    fn refresh(&mut self, ctx: &BrokerContext, queue_id: i32) {
        loop {
            let Ok(r) = ctx.store.get_messages(
                TRANS_OP_HALF_TOPIC,
                queue_id,
                self.next,
                SCAN_BATCH,
                1 << 20,
            ) else {
                return;
            };
            match r.status {
                GetStatus::Found if !r.messages.is_empty() => {}
                GetStatus::OffsetTooSmall | GetStatus::OffsetOverflowBadly => {
                    self.next = r.next_begin_offset;
                    continue;
                }
                _ => return,
            }
            for (offset, buf) in &r.messages {
                let Ok(m) = buf.decode() else { continue };
                let halves = if get_property(m.properties, TAGS) == Some(REMOVE_TAG) {
                    parse_op_body(m.body)
                } else {
                    Vec::new()
                };
                self.ops
                    .insert(*offset, halves.iter().copied().max().unwrap_or(i64::MIN));
                self.resolved.extend(halves);
            }
            self.next = r.next_begin_offset;
        }
    }

    /// The first op offset still needed once every half offset below `half_offset` is
    /// settled.
    fn commit_point(&self, half_offset: i64) -> i64 {
        self.ops
            .iter()
            .find(|(_, max_half)| **max_half >= half_offset)
            .map_or(self.next, |(op, _)| *op)
    }
}

/// Runs check rounds every `transactionCheckInterval` until `stop`.
pub async fn run_check_service(ctx: Arc<BrokerContext>, stop: CancellationToken) {
    let interval = ctx.config.transaction_check_interval;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        if ctx.is_shutting_down() {
            return;
        }
        // Only the master asks producers (a slave's half queue follows the master's).
        if !ctx.replication.is_master() {
            continue;
        }
        let queues = ctx
            .topics
            .get(TRANS_HALF_TOPIC)
            .map_or(1, |c| c.read_queue_nums.max(1));
        for queue_id in 0..queues {
            if let Err(e) = check_queue(&ctx, queue_id, &stop).await {
                warn!(queue_id, error = %e, "transaction check round failed; retrying next round");
            }
        }
    }
}

/// What to do with one unresolved half message.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// Too young: stop the scan here (everything after it is younger still).
    Wait,
    /// Within its immunity window: append a copy further on and move past it.
    Defer,
    /// Ask its producer.
    Check,
    /// Checked too often or older than the retention: give it up.
    Discard,
}

fn verdict(ctx: &BrokerContext, m: &DecodedRecord<'_>, now: i64) -> Verdict {
    let age = now - m.born_timestamp;
    let checks: i32 = get_property(m.properties, TRANSACTION_CHECK_TIMES)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let retention = ctx.store.config().file_reserved_time_millis();
    if checks >= ctx.live.transaction_check_max() || age > retention {
        return Verdict::Discard;
    }
    let timeout = ctx.live.transaction_timeout().as_millis() as i64;
    match get_property(m.properties, CHECK_IMMUNITY_TIME_IN_SECONDS).map(|s| {
        s.trim()
            .parse::<i64>()
            .map_or(timeout, |s| s.saturating_mul(1000))
    }) {
        Some(immunity) if age <= immunity => Verdict::Defer,
        Some(_) => Verdict::Check,
        None if (0..=timeout).contains(&age) => Verdict::Wait,
        None => Verdict::Check,
    }
}

async fn check_queue(
    ctx: &Arc<BrokerContext>,
    queue_id: i32,
    stop: &CancellationToken,
) -> Result<(), ProcessError> {
    let round_start = now_millis();
    let started = std::time::Instant::now();
    let half_min = ctx.store.min_offset_in_queue(TRANS_HALF_TOPIC, queue_id);
    let half_offset = ctx
        .offsets
        .query(TRANSACTION_CHECK_GROUP, TRANS_HALF_TOPIC, queue_id)
        .unwrap_or(half_min)
        .max(half_min);
    let op_min = ctx.store.min_offset_in_queue(TRANS_OP_HALF_TOPIC, queue_id);
    let op_offset = ctx
        .offsets
        .query(TRANSACTION_CHECK_GROUP, TRANS_OP_HALF_TOPIC, queue_id)
        .unwrap_or(op_min)
        .max(op_min);
    let mut ops = OpIndex::load(ctx, queue_id, op_offset);
    let mut next = half_offset;
    let (mut checked, mut discarded) = (0usize, 0usize);
    'scan: loop {
        if stop.is_cancelled() || started.elapsed() > MAX_ROUND_TIME {
            break;
        }
        let r = ctx
            .store
            .get_messages(TRANS_HALF_TOPIC, queue_id, next, SCAN_BATCH, 4 << 20)
            .map_err(crate::processor::store_error)?;
        match r.status {
            GetStatus::Found if !r.messages.is_empty() => {}
            GetStatus::OffsetTooSmall => {
                next = r.next_begin_offset;
                continue;
            }
            _ => break,
        }
        for (offset, buf) in &r.messages {
            let offset = *offset;
            if ops.resolved.contains(&offset) {
                next = offset + 1;
                continue;
            }
            let m = buf.decode().map_err(crate::processor::store_error)?;
            if m.store_timestamp >= round_start {
                // Appended during this round (our own copies among them): next round.
                break 'scan;
            }
            let original = get_property(m.properties, TRANSACTION_PREPARED_QUEUE_OFFSET)
                .and_then(|o| o.parse::<i64>().ok());
            if original.is_some_and(|o| ops.resolved.contains(&o)) {
                next = offset + 1;
                continue;
            }
            match verdict(ctx, &m, now_millis()) {
                Verdict::Wait => break 'scan,
                Verdict::Discard => {
                    discard(ctx, &m).await?;
                    discarded += 1;
                }
                Verdict::Defer => {
                    let keep = (original.unwrap_or(offset)).to_string();
                    let props = rewrite_properties(
                        m.properties,
                        &[(TRANSACTION_PREPARED_QUEUE_OFFSET, &keep)],
                        &[],
                    );
                    append_half_copy(ctx, &m, &props).await?;
                }
                Verdict::Check => {
                    // An END_TRANSACTION may have landed since the ops were read: look again
                    // right before asking, so a resolved message is not asked about.
                    ops.refresh(ctx, queue_id);
                    if ops.resolved.contains(&offset)
                        || original.is_some_and(|o| ops.resolved.contains(&o))
                    {
                        next = offset + 1;
                        continue;
                    }
                    let times: i32 = get_property(m.properties, TRANSACTION_CHECK_TIMES)
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(0);
                    let times = (times + 1).to_string();
                    let props =
                        rewrite_properties(m.properties, &[(TRANSACTION_CHECK_TIMES, &times)], &[]);
                    let copy = append_half_copy(ctx, &m, &props).await?;
                    ask_producer(ctx, &m, &props, &copy);
                    checked += 1;
                }
            }
            next = offset + 1;
        }
    }
    if next != half_offset || ops.commit_point(next) != op_offset {
        ctx.offsets
            .commit(TRANSACTION_CHECK_GROUP, TRANS_HALF_TOPIC, queue_id, next);
        ctx.offsets.commit(
            TRANSACTION_CHECK_GROUP,
            TRANS_OP_HALF_TOPIC,
            queue_id,
            ops.commit_point(next),
        );
    }
    if checked + discarded > 0 {
        info!(
            queue_id,
            checked,
            discarded,
            half_offset = next,
            "transaction check round"
        );
    }
    Ok(())
}

/// Appends `m` again to the half queue with `properties`, so the scan can move past its
/// old offset without losing it.
async fn append_half_copy(
    ctx: &BrokerContext,
    m: &DecodedRecord<'_>,
    properties: &str,
) -> Result<AppendResult, ProcessError> {
    let input = RecordInput {
        topic: TRANS_HALF_TOPIC,
        queue_id: m.queue_id,
        flag: m.flag,
        sys_flag: m.sys_flag,
        born_timestamp: m.born_timestamp,
        born_host: m.born_host,
        store_host: ctx.store_host,
        reconsume_times: m.reconsume_times,
        prepared_transaction_offset: 0,
        body: m.body,
        properties,
    };
    ctx.put_one(&input).await
}

/// Moves a half message that will never be resolved to `TRANS_CHECK_MAX_TIME_TOPIC`, where
/// an operator can still find it.
async fn discard(ctx: &BrokerContext, m: &DecodedRecord<'_>) -> Result<(), ProcessError> {
    ctx.topic_or_create(TopicConfig {
        perm: PERM_READ | PERM_WRITE,
        ..TopicConfig::new(TRANS_CHECK_MAX_TIME_TOPIC, 1)
    })
    .await
    .map_err(|e| system_error(e.to_string()))?;
    let input = RecordInput {
        topic: TRANS_CHECK_MAX_TIME_TOPIC,
        queue_id: 0,
        flag: m.flag,
        sys_flag: m.sys_flag,
        born_timestamp: m.born_timestamp,
        born_host: m.born_host,
        store_host: ctx.store_host,
        reconsume_times: m.reconsume_times,
        prepared_transaction_offset: 0,
        body: m.body,
        properties: m.properties,
    };
    ctx.put_one(&input).await?;
    warn!(
        producer_group = get_property(m.properties, PRODUCER_GROUP).unwrap_or_default(),
        transaction_id = get_property(m.properties, UNIQ_KEY).unwrap_or_default(),
        topic = get_property(m.properties, REAL_TOPIC).unwrap_or_default(),
        "half message given up after {} checks; moved to {TRANS_CHECK_MAX_TIME_TOPIC}",
        ctx.live.transaction_check_max()
    );
    Ok(())
}

/// The CHECK_TRANSACTION_STATE body: the half message as a CommitLog record with its real
/// topic and queue, and the offsets of the copy the producer must answer about.
fn check_body(
    ctx: &BrokerContext,
    m: &DecodedRecord<'_>,
    properties: &str,
    copy: &AppendResult,
) -> Option<Vec<u8>> {
    let topic = get_property(properties, REAL_TOPIC)?;
    let queue_id: i32 = get_property(properties, REAL_QUEUE_ID)?.parse().ok()?;
    let input = RecordInput {
        topic,
        queue_id,
        flag: m.flag,
        sys_flag: m.sys_flag,
        born_timestamp: m.born_timestamp,
        born_host: m.born_host,
        store_host: ctx.store_host,
        reconsume_times: m.reconsume_times,
        prepared_transaction_offset: 0,
        body: m.body,
        properties,
    };
    let len = rocketmq_common::message::encoded_record_len(&input).ok()?;
    let mut buf = vec![0u8; len];
    encode_record(
        &input,
        &RecordHeaderFields {
            queue_offset: copy.queue_offset,
            physical_offset: copy.physical_offset,
            store_timestamp: m.store_timestamp,
            body_crc: body_crc(m.body),
        },
        &mut buf,
    )
    .ok()?;
    Some(buf)
}

/// Sends CHECK_TRANSACTION_STATE for the copy just appended to a live producer of the
/// message's group. Oneway, as in Java: the answer comes back as END_TRANSACTION, and a
/// lost request is simply asked again next round.
fn ask_producer(ctx: &BrokerContext, m: &DecodedRecord<'_>, properties: &str, copy: &AppendResult) {
    let Some(group) = get_property(properties, PRODUCER_GROUP) else {
        warn!(
            half_offset = copy.queue_offset,
            "half message without PGROUP: nobody to ask"
        );
        return;
    };
    let Some(producer) = ctx.clients.producer_connection(group) else {
        debug!(
            group,
            "no live producer of the group to check a transaction with"
        );
        return;
    };
    let Some(body) = check_body(ctx, m, properties, copy) else {
        warn!(
            half_offset = copy.queue_offset,
            "half message without a valid destination; not checked"
        );
        return;
    };
    let uniq = transaction_id(properties);
    let header = CheckTransactionStateRequestHeader {
        tran_state_table_offset: copy.queue_offset,
        commit_log_offset: copy.physical_offset,
        msg_id: uniq.clone(),
        transaction_id: uniq,
        offset_msg_id: Some(encode_offset_message_id(
            ctx.store_host,
            copy.physical_offset,
        )),
        topic: Some(TRANS_HALF_TOPIC.to_string()),
        broker_name: Some(ctx.config.broker_name.clone()),
    };
    let request =
        RemotingCommand::request(RequestCode::CHECK_TRANSACTION_STATE, &header).with_body(body);
    if producer.connection.send_oneway(request).is_err() {
        debug!(group, client = %producer.client_id, "could not send a transaction check: connection busy or gone");
    } else {
        debug!(group, client = %producer.client_id, half_offset = copy.queue_offset, "asked the producer about a transaction");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_bodies_in_both_formats() {
        assert_eq!(parse_op_body(b"17,18,25,"), vec![17, 18, 25]);
        assert_eq!(parse_op_body(b"42"), vec![42]);
        assert_eq!(parse_op_body(b""), Vec::<i64>::new());
        assert_eq!(parse_op_body(b"1,x,3,"), vec![1, 3]);
    }

    #[test]
    fn half_messages_are_recognised_by_property_or_flag() {
        assert!(is_half_message("TRAN_MSG\u{1}true\u{2}", 0));
        assert!(is_half_message("TRAN_MSG\u{1}TRUE\u{2}", 0));
        assert!(is_half_message("", TRANSACTION_PREPARED_TYPE));
        assert!(!is_half_message("TRAN_MSG\u{1}false\u{2}", 0));
        assert!(!is_half_message("", TRANSACTION_COMMIT_TYPE));
    }

    #[test]
    fn half_message_keeps_destination_and_clears_transaction_bits() {
        let (props, sys) = half_message(
            "UNIQ_KEY\u{1}ABC\u{2}TRAN_MSG\u{1}true\u{2}",
            TRANSACTION_PREPARED_TYPE | 1,
            "T",
            3,
            "PG",
        );
        assert_eq!(sys, 1, "compression bit kept, transaction bits cleared");
        assert_eq!(get_property(&props, REAL_TOPIC), Some("T"));
        assert_eq!(get_property(&props, REAL_QUEUE_ID), Some("3"));
        assert_eq!(get_property(&props, TRANSACTION_ID), Some("ABC"));
        assert_eq!(get_property(&props, PRODUCER_GROUP), Some("PG"));
        assert_eq!(get_property(&props, TRANSACTION_PREPARED), Some("true"));
        let (props, _) = half_message(
            "PGROUP\u{1}Own\u{2}",
            TRANSACTION_PREPARED_TYPE,
            "T",
            0,
            "PG",
        );
        assert_eq!(
            get_property(&props, PRODUCER_GROUP),
            Some("Own"),
            "the client's group wins"
        );
    }

    #[test]
    fn op_index_commit_point_keeps_ops_still_needed() {
        let mut index = OpIndex {
            next: 10,
            ..OpIndex::default()
        };
        index.ops.insert(5, 3);
        index.ops.insert(6, 9);
        index.ops.insert(7, 4);
        assert_eq!(
            index.commit_point(4),
            6,
            "op 5 only covers half offsets < 4"
        );
        assert_eq!(index.commit_point(10), 10, "all settled");
        assert_eq!(index.commit_point(0), 5);
    }
}
