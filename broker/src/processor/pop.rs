//! POP consumption: POP_MESSAGE (200050) with long polling, ACK_MESSAGE (200051),
//! BATCH_ACK_MESSAGE (200151), CHANGE_MESSAGE_INVISIBLETIME (200053), NOTIFICATION (200054),
//! QUERY_ASSIGNMENT (400) and SET_MESSAGE_REQUEST_MODE (401). The state behind them and the
//! revive service are in [`crate::pop`].

use std::sync::Arc;
use std::time::Duration;

use rocketmq_common::body::MessageQueue;
use rocketmq_common::message::{
    RecordHeaderFields, RecordInput, encode_record, rewrite_properties,
};
use rocketmq_common::pop::{
    BatchAckMessageRequestBody, ExtraInfo, MAX_POP_MESSAGES, MessageQueueAssignment,
    MessageRequestMode, OffsetInfo, POP_CK, QueryAssignmentRequestBody,
    QueryAssignmentResponseBody, SetMessageRequestModeRequestBody, TopicFlag, order_count_key,
    pop_retry_topic,
};
use rocketmq_common::protocol::headers::broker::{
    AckMessageRequestHeader, ChangeInvisibleTimeRequestHeader, ChangeInvisibleTimeResponseHeader,
    NotificationRequestHeader, NotificationResponseHeader, PopMessageRequestHeader,
    PopMessageResponseHeader,
};
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{
    ProcessError, ProcessResult, Reply, RequestContext, RequestProcessor,
};
use rocketmq_common::route::{PERM_READ, TopicConfig};

use super::{BrokerContext, json_body, metadata_error, store_error, unsupported};
use crate::filter::MessageFilter;
use crate::pop::{
    AckRecord, Checkpoint, OrderAck, REVIVE_QUEUE_NUM, now_ms, put_ack, put_checkpoint, queue_key,
    revive_message,
};

/// Chance (in %) that a pop reads the retry topic before the topic (`popFromRetryProbability`).
const RETRY_FIRST_PERCENT: u32 = 20;
/// Longest a pop or notification may be held.
const MAX_POLL_MS: i64 = 60_000;
/// Most bytes one pop returns.
const MAX_POP_BYTES: usize = 8 << 20;

/// Handles the POP family.
pub struct PopProcessor {
    ctx: Arc<BrokerContext>,
}

impl PopProcessor {
    /// A processor over the shared context.
    pub fn new(ctx: Arc<BrokerContext>) -> Self {
        Self { ctx }
    }
}

impl RequestProcessor for PopProcessor {
    fn process(&self, _rctx: &RequestContext, request: RemotingCommand) -> Reply {
        let ctx = self.ctx.clone();
        match request.request_code() {
            Some(RequestCode::POP_MESSAGE) => Reply::Later(Box::pin(pop(ctx, request))),
            Some(RequestCode::ACK_MESSAGE) => Reply::Later(Box::pin(ack(ctx, request))),
            Some(RequestCode::BATCH_ACK_MESSAGE) => Reply::Later(Box::pin(batch_ack(ctx, request))),
            Some(RequestCode::CHANGE_MESSAGE_INVISIBLETIME) => {
                Reply::Later(Box::pin(change_invisible_time(ctx, request)))
            }
            Some(RequestCode::NOTIFICATION) => Reply::Later(Box::pin(notification(ctx, request))),
            Some(RequestCode::QUERY_ASSIGNMENT) => {
                Reply::Later(Box::pin(query_assignment(ctx, request)))
            }
            Some(RequestCode::SET_MESSAGE_REQUEST_MODE) => {
                Reply::Later(Box::pin(set_request_mode(ctx, request)))
            }
            _ => Reply::Now(Err(unsupported(request.code))),
        }
    }
}

fn illegal(code: ResponseCode, message: impl Into<String>) -> ProcessError {
    ProcessError::new(code, message)
}

/// Checks broker, topic and group the way Java does for POP and NOTIFICATION; returns the
/// topic's config.
async fn check_readable(
    ctx: &BrokerContext,
    group: &str,
    topic: &str,
    queue_id: i32,
) -> Result<TopicConfig, ProcessError> {
    if ctx.live.broker_permission() & PERM_READ == 0 {
        return Err(illegal(
            ResponseCode::NoPermission,
            format!(
                "the broker[{}] popping message is forbidden",
                ctx.config.broker_name
            ),
        ));
    }
    let config = ctx.topics.get(topic).ok_or_else(|| {
        illegal(
            ResponseCode::TopicNotExist,
            format!("topic[{topic}] not exist, apply first please!"),
        )
    })?;
    if config.perm & PERM_READ == 0 {
        return Err(illegal(
            ResponseCode::NoPermission,
            format!("the topic[{topic}] peeking message is forbidden"),
        ));
    }
    if queue_id >= config.read_queue_nums {
        return Err(illegal(
            ResponseCode::InvalidParameter,
            format!(
                "queueId[{queue_id}] is illegal, topic:[{topic}] topicConfig.readQueueNums:[{}]",
                config.read_queue_nums
            ),
        ));
    }
    let g = ctx
        .group_or_create(group)
        .await
        .map_err(metadata_error)?
        .ok_or_else(|| {
            illegal(
                ResponseCode::SubscriptionGroupNotExist,
                format!("subscription group [{group}] does not exist"),
            )
        })?;
    if !g.consume_enable {
        return Err(illegal(
            ResponseCode::NoPermission,
            format!("subscription group no permission, {group}"),
        ));
    }
    Ok(config)
}

/// What one pop collected so far.
struct Collected {
    pop_time: i64,
    revive_qid: i32,
    rest: i64,
    body: Vec<u8>,
    count: usize,
    start_info: OffsetInfo,
    msg_info: OffsetInfo,
    order_info: OffsetInfo,
}

async fn pop(ctx: Arc<BrokerContext>, request: RemotingCommand) -> ProcessResult {
    let mut h: PopMessageRequestHeader = request.decode_header()?;
    let now = now_ms();
    if h.born_time <= 0 {
        h.born_time = now;
    }
    if h.poll_time > 0 && now - h.born_time - h.poll_time > 500 {
        let header = PopMessageResponseHeader {
            pop_time: now,
            invisible_time: h.invisible_time,
            revive_qid: 0,
            rest_num: 0,
            start_offset_info: None,
            msg_offset_info: None,
            order_count_info: None,
        };
        return Ok(Some(
            RemotingCommand::response(
                ResponseCode::PollingTimeout,
                Some(
                    "the broker received the request after its poll time: timeout too much".into(),
                ),
            )
            .with_header(&header),
        ));
    }
    if h.max_msg_nums <= 0 || h.max_msg_nums > MAX_POP_MESSAGES {
        return Err(illegal(
            ResponseCode::InvalidParameter,
            format!(
                "the broker pops at most {MAX_POP_MESSAGES} messages at a time, asked for {}",
                h.max_msg_nums
            ),
        ));
    }
    if h.invisible_time <= 0 {
        return Err(illegal(
            ResponseCode::InvalidParameter,
            format!("invisibleTime must be positive, got {}", h.invisible_time),
        ));
    }
    let topic = check_readable(&ctx, &h.consumer_group, &h.topic, h.queue_id).await?;
    let filter = ctx
        .filters
        .compile(h.exp_type.as_deref(), h.exp.as_deref().unwrap_or("*"))?;
    let order = h.order.unwrap_or(false);
    let deadline = h.born_time + h.poll_time.clamp(0, MAX_POLL_MS);
    let retry = pop_retry_topic(&h.topic, &h.consumer_group);
    loop {
        // Subscribe before looking, so a message arriving in between wakes this request.
        let armed = ctx
            .long_polling
            .arm(&[(&h.topic, h.queue_id), (&retry, -1)]);
        let collected = pop_once(&ctx, &h, &topic, &filter, order).await?;
        let remaining = deadline - now_ms();
        if collected.count > 0 || remaining <= 0 {
            return Ok(Some(pop_response(&ctx, &h, collected)));
        }
        armed.wait(Duration::from_millis(remaining as u64)).await;
    }
}

fn pop_response(ctx: &BrokerContext, h: &PopMessageRequestHeader, c: Collected) -> RemotingCommand {
    ctx.metrics
        .record_pull(&h.topic, &h.consumer_group, c.count, c.body.len());
    let header = PopMessageResponseHeader {
        pop_time: c.pop_time,
        invisible_time: h.invisible_time,
        revive_qid: c.revive_qid,
        rest_num: c.rest,
        start_offset_info: c.start_info.finish(),
        msg_offset_info: c.msg_info.finish(),
        order_count_info: c.order_info.finish(),
    };
    let (code, remark) = if c.count > 0 {
        (ResponseCode::Success, "FOUND")
    } else {
        (ResponseCode::PollingTimeout, "NO_MESSAGE_IN_QUEUE")
    };
    RemotingCommand::response(code, Some(remark.to_string()))
        .with_header(&header)
        .with_body(c.body)
}

/// One pass over the queues (and the retry topic, unless FIFO).
async fn pop_once(
    ctx: &BrokerContext,
    h: &PopMessageRequestHeader,
    topic: &TopicConfig,
    filter: &MessageFilter,
    order: bool,
) -> Result<Collected, ProcessError> {
    let pop_time = now_ms();
    let mut c = Collected {
        pop_time,
        revive_qid: if order {
            rocketmq_common::pop::ORDER_REVIVE_QUEUE
        } else {
            ctx.pop.next_revive_qid()
        },
        rest: 0,
        body: Vec::new(),
        count: 0,
        start_info: OffsetInfo::default(),
        msg_info: OffsetInfo::default(),
        order_info: OffsetInfo::default(),
    };
    // Spreads pops over queues and mixes the retry topic in; needs no quality randomness.
    let random = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_micros())
        % 100;
    let retry = pop_retry_topic(&h.topic, &h.consumer_group);
    let retry_exists = !order && ctx.topics.get(&retry).is_some();
    if retry_exists && random < RETRY_FIRST_PERCENT {
        pop_queue(ctx, h, &retry, 0, filter, false, &mut c).await?;
    }
    let queues: Vec<i32> = if h.queue_id < 0 {
        let n = topic.read_queue_nums.max(1);
        (0..n).map(|i| (i + random as i32) % n).collect()
    } else {
        vec![h.queue_id]
    };
    for q in queues {
        if c.count >= h.max_msg_nums as usize {
            c.rest += (ctx.store.max_offset_in_queue(&h.topic, q)
                - committed_or_init(ctx, h, &h.topic, q))
            .max(0);
            continue;
        }
        pop_queue(ctx, h, &h.topic, q, filter, order, &mut c).await?;
    }
    if retry_exists && random >= RETRY_FIRST_PERCENT && c.count < h.max_msg_nums as usize {
        pop_queue(ctx, h, &retry, 0, filter, false, &mut c).await?;
    }
    Ok(c)
}

/// Where the group reads a queue: its committed offset, or per `initMode` for a new group
/// (retry topics always from their start).
fn committed_or_init(ctx: &BrokerContext, h: &PopMessageRequestHeader, topic: &str, q: i32) -> i64 {
    if let Some(o) = ctx.offsets.query(&h.consumer_group, topic, q) {
        return o.max(ctx.store.min_offset_in_queue(topic, q));
    }
    if h.init_mode == 1 && TopicFlag::of(topic) == TopicFlag::Normal {
        ctx.store.max_offset_in_queue(topic, q)
    } else {
        ctx.store.min_offset_in_queue(topic, q)
    }
}

async fn pop_queue(
    ctx: &BrokerContext,
    h: &PopMessageRequestHeader,
    real_topic: &str,
    queue_id: i32,
    filter: &MessageFilter,
    order: bool,
    c: &mut Collected,
) -> Result<(), ProcessError> {
    let group = h.consumer_group.as_str();
    let key = queue_key(real_topic, group, queue_id);
    let Some(_guard) = ctx.pop.try_lock(key.clone()) else {
        // Another pop of this group reads the queue right now.
        return Ok(());
    };
    let start = committed_or_init(ctx, h, real_topic, queue_id);
    if ctx.offsets.query(group, real_topic, queue_id).is_none() && ctx.replication.is_master() {
        ctx.offsets.commit(group, real_topic, queue_id, start);
    }
    let max_offset = ctx.store.max_offset_in_queue(real_topic, queue_id);
    if order
        && ctx
            .pop
            .order_blocked(&key, h.attempt_id.as_deref(), c.pop_time)
    {
        c.rest += (max_offset - start).max(0);
        return Ok(());
    }
    let want = h.max_msg_nums as usize - c.count;
    let got = ctx
        .store
        .get_messages_filtered(real_topic, queue_id, start, want, MAX_POP_BYTES, &|code| {
            filter.accepts_code(code)
        })
        .map_err(store_error)?;
    let flag = TopicFlag::of(real_topic);
    let mut offsets = Vec::new();
    let mut records = Vec::new();
    for (offset, buf) in &got.messages {
        let m = buf.decode().map_err(store_error)?;
        if order && ctx.pop.order_acked(&key, *offset) {
            continue;
        }
        if filter.accepts(m.properties) {
            offsets.push(*offset);
            records.push(buf);
        }
    }
    let next = got.next_begin_offset.max(start);
    c.rest += (max_offset - next).max(0);
    if offsets.is_empty() {
        // Everything read was filtered out (or, FIFO, already acked): move past it.
        if next > start && ctx.replication.is_master() {
            ctx.offsets.commit(group, real_topic, queue_id, next);
        }
        return Ok(());
    }
    let counts = if order {
        ctx.pop.order_popped(
            &key,
            &offsets,
            c.pop_time,
            h.invisible_time,
            h.attempt_id.as_deref(),
        )
    } else {
        let ck = Checkpoint {
            start_offset: start,
            pop_time: c.pop_time,
            invisible_time: h.invisible_time,
            bit_map: 0,
            num: offsets.len() as u32,
            queue_id,
            topic: real_topic.to_string(),
            group: group.to_string(),
            offset_diffs: offsets.iter().map(|o| o - start).collect(),
            broker_name: ctx.config.broker_name.clone(),
        };
        // The checkpoint is stored before the offset moves: a crash in between redelivers.
        put_checkpoint(ctx, c.revive_qid, &ck).await?;
        ctx.offsets.commit(group, real_topic, queue_id, next);
        Vec::new()
    };
    // FIFO messages past the group's retry limit go to the DLQ instead of blocking the
    // queue, and are not handed out again.
    let (offsets, records, counts) = if order {
        let max = ctx.groups.get(group).map_or(16, |g| g.retry_max_times);
        let mut kept = (Vec::new(), Vec::new(), Vec::new());
        for ((o, buf), n) in offsets.iter().zip(records).zip(&counts) {
            if *n <= max {
                kept.0.push(*o);
                kept.1.push(buf);
                kept.2.push(*n);
                continue;
            }
            let ck = Checkpoint {
                start_offset: *o,
                pop_time: c.pop_time,
                invisible_time: h.invisible_time,
                bit_map: 0,
                num: 1,
                queue_id,
                topic: real_topic.to_string(),
                group: group.to_string(),
                offset_diffs: vec![0],
                broker_name: ctx.config.broker_name.clone(),
            };
            revive_message(ctx, &ck, *o, true).await?;
            if let OrderAck::Committed(next) = ctx.pop.order_ack(&key, *o, c.pop_time) {
                ctx.offsets.commit(group, real_topic, queue_id, next);
            }
        }
        if kept.0.is_empty() {
            return Ok(());
        }
        kept
    } else {
        (offsets, records, counts)
    };
    c.start_info.push(flag, queue_id, start);
    c.msg_info.push(
        flag,
        queue_id,
        offsets
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(","),
    );
    if order {
        for (o, n) in offsets.iter().zip(&counts) {
            c.order_info.push(flag, order_count_key(queue_id, *o), n);
        }
        c.order_info
            .push(flag, queue_id, counts.iter().min().copied().unwrap_or(0));
    }
    for (buf, offset) in records.into_iter().zip(&offsets) {
        if flag == TopicFlag::Normal {
            c.body.extend_from_slice(buf);
        } else {
            // A retried message is shown under the topic the client asked for, carrying
            // its receipt (the client could not tell its retry topic otherwise).
            let receipt = ExtraInfo {
                ck_queue_offset: start,
                pop_time: c.pop_time,
                invisible_time: h.invisible_time,
                revive_qid: c.revive_qid,
                topic_flag: flag,
                broker_name: ctx.config.broker_name.clone(),
                queue_id,
                queue_offset: *offset,
                commit_log_offset: None,
            };
            append_as_topic(&mut c.body, buf, &h.topic, &receipt.to_string())?;
        }
        c.count += 1;
    }
    Ok(())
}

/// Appends `record` re-encoded under `topic` with `POP_CK` set.
fn append_as_topic(
    out: &mut Vec<u8>,
    record: &[u8],
    topic: &str,
    receipt: &str,
) -> Result<(), ProcessError> {
    let m = match rocketmq_common::message::decode_record(record, false) {
        Ok(rocketmq_common::message::RecordEntry::Message(m)) => m,
        _ => {
            return Err(illegal(
                ResponseCode::SystemError,
                "a stored retry message does not decode",
            ));
        }
    };
    let properties = rewrite_properties(m.properties, &[(POP_CK, receipt)], &[]);
    let input = RecordInput {
        topic,
        queue_id: m.queue_id,
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
    let fields = RecordHeaderFields {
        queue_offset: m.queue_offset,
        physical_offset: m.physical_offset,
        store_timestamp: m.store_timestamp,
        body_crc: m.body_crc,
    };
    let len = rocketmq_common::message::encoded_record_len(&input)
        .map_err(|e| illegal(ResponseCode::SystemError, e.to_string()))?;
    let at = out.len();
    out.resize(at + len, 0);
    encode_record(&input, &fields, &mut out[at..])
        .map_err(|e| illegal(ResponseCode::SystemError, e.to_string()))?;
    Ok(())
}

fn parse_receipt(extra_info: &str) -> Result<ExtraInfo, ProcessError> {
    ExtraInfo::parse(extra_info).map_err(|e| illegal(ResponseCode::InvalidParameter, e.to_string()))
}

/// Checks that `offset` lies in the queue; NO_MESSAGE otherwise.
fn check_offset(
    ctx: &BrokerContext,
    topic: &str,
    queue_id: i32,
    offset: i64,
) -> Result<(), ProcessError> {
    let config = ctx.topics.get(topic).ok_or_else(|| {
        illegal(
            ResponseCode::TopicNotExist,
            format!("topic[{topic}] not exist, apply first please!"),
        )
    })?;
    if queue_id < 0 || queue_id >= config.read_queue_nums {
        return Err(illegal(
            ResponseCode::MessageIllegal,
            format!("queueId[{queue_id}] is illegal, topic:[{topic}]"),
        ));
    }
    let (min, max) = (
        ctx.store.min_offset_in_queue(topic, queue_id),
        ctx.store.max_offset_in_queue(topic, queue_id),
    );
    if offset < min || offset >= max {
        return Err(illegal(
            ResponseCode::NoMessage,
            format!("offset {offset} is outside [{min}, {max}) of {topic}/{queue_id}"),
        ));
    }
    Ok(())
}

fn check_revive_qid(receipt: &ExtraInfo) -> Result<(), ProcessError> {
    if !receipt.is_order() && !(0..REVIVE_QUEUE_NUM).contains(&receipt.revive_qid) {
        return Err(illegal(
            ResponseCode::MessageIllegal,
            format!("revive queue {} does not exist", receipt.revive_qid),
        ));
    }
    Ok(())
}

async fn ack(ctx: Arc<BrokerContext>, request: RemotingCommand) -> ProcessResult {
    let h: AckMessageRequestHeader = request.decode_header()?;
    let receipt = parse_receipt(&h.extra_info)?;
    check_revive_qid(&receipt)?;
    check_offset(&ctx, &h.topic, h.queue_id, h.offset)?;
    if receipt.is_order() {
        ack_order(
            &ctx,
            &h.consumer_group,
            &h.topic,
            h.queue_id,
            h.offset,
            receipt.pop_time,
        );
        return Ok(Some(RemotingCommand::success()));
    }
    let record = AckRecord {
        ack_offset: h.offset,
        ack_offsets: Vec::new(),
        start_offset: receipt.ck_queue_offset,
        group: h.consumer_group,
        topic: h.topic,
        queue_id: h.queue_id,
        pop_time: receipt.pop_time,
        broker_name: receipt.broker_name,
    };
    put_ack(&ctx, receipt.revive_qid, &record).await?;
    Ok(Some(RemotingCommand::success()))
}

fn ack_order(
    ctx: &BrokerContext,
    group: &str,
    topic: &str,
    queue_id: i32,
    offset: i64,
    pop_time: i64,
) {
    let key = queue_key(topic, group, queue_id);
    if let OrderAck::Committed(next) = ctx.pop.order_ack(&key, offset, pop_time) {
        let committed = ctx.offsets.query(group, topic, queue_id).unwrap_or(0);
        if next > committed {
            ctx.offsets.commit(group, topic, queue_id, next);
        }
        // Pops held on a blocked FIFO queue may go on now.
        ctx.long_polling.notify(topic, queue_id);
    }
}

async fn batch_ack(ctx: Arc<BrokerContext>, request: RemotingCommand) -> ProcessResult {
    let body: BatchAckMessageRequestBody = rocketmq_common::json::from_slice_lenient(&request.body)
        .map_err(|e| {
            illegal(
                ResponseCode::InvalidParameter,
                format!("invalid batch ack body: {e}"),
            )
        })?;
    if body.acks.is_empty() {
        return Err(illegal(
            ResponseCode::NoMessage,
            "the batch ack carries no acks",
        ));
    }
    for a in &body.acks {
        let flag = match a.retry.as_str() {
            "1" => TopicFlag::RetryV1,
            "2" => TopicFlag::RetryV2,
            _ => TopicFlag::Normal,
        };
        let topic = flag.real_topic(&a.topic, &a.consumer_group);
        let offsets = a
            .acked_offsets()
            .map_err(|e| illegal(ResponseCode::InvalidParameter, e.to_string()))?;
        let (min, max) = (
            ctx.store.min_offset_in_queue(&topic, a.queue_id),
            ctx.store.max_offset_in_queue(&topic, a.queue_id),
        );
        let offsets: Vec<i64> = offsets
            .into_iter()
            .filter(|o| *o >= min && *o < max)
            .collect();
        if offsets.is_empty() {
            continue;
        }
        if a.revive_queue_id == rocketmq_common::pop::ORDER_REVIVE_QUEUE {
            for o in offsets {
                ack_order(&ctx, &a.consumer_group, &topic, a.queue_id, o, a.pop_time);
            }
            continue;
        }
        if !(0..REVIVE_QUEUE_NUM).contains(&a.revive_queue_id) {
            return Err(illegal(
                ResponseCode::MessageIllegal,
                format!("revive queue {} does not exist", a.revive_queue_id),
            ));
        }
        let record = AckRecord {
            ack_offset: -1,
            ack_offsets: offsets,
            start_offset: a.start_offset,
            group: a.consumer_group.clone(),
            topic,
            queue_id: a.queue_id,
            pop_time: a.pop_time,
            broker_name: body.broker_name.clone(),
        };
        put_ack(&ctx, a.revive_queue_id, &record).await?;
    }
    Ok(Some(RemotingCommand::success()))
}

async fn change_invisible_time(ctx: Arc<BrokerContext>, request: RemotingCommand) -> ProcessResult {
    let h: ChangeInvisibleTimeRequestHeader = request.decode_header()?;
    let receipt = parse_receipt(&h.extra_info)?;
    check_revive_qid(&receipt)?;
    check_offset(&ctx, &h.topic, h.queue_id, h.offset)?;
    let now = now_ms();
    if receipt.is_order() {
        let key = queue_key(&h.topic, &h.consumer_group, h.queue_id);
        let invisible = ctx
            .pop
            .order_change_invisible(&key, h.offset, receipt.pop_time, now + h.invisible_time)
            .ok_or_else(|| {
                illegal(
                    ResponseCode::NoMessage,
                    "the receipt is from an older pop of this FIFO queue",
                )
            })?;
        return Ok(Some(RemotingCommand::success().with_header(
            &ChangeInvisibleTimeResponseHeader {
                pop_time: receipt.pop_time,
                invisible_time: invisible,
                revive_qid: receipt.revive_qid,
            },
        )));
    }
    // A new checkpoint for this message first, then the ack of the old one: a crash between
    // them delivers it twice, never loses it.
    let ck = Checkpoint {
        start_offset: h.offset,
        pop_time: now,
        invisible_time: h.invisible_time,
        bit_map: 0,
        num: 1,
        queue_id: h.queue_id,
        topic: h.topic.clone(),
        group: h.consumer_group.clone(),
        offset_diffs: vec![0],
        broker_name: receipt.broker_name.clone(),
    };
    put_checkpoint(&ctx, receipt.revive_qid, &ck).await?;
    let old = AckRecord {
        ack_offset: h.offset,
        ack_offsets: Vec::new(),
        start_offset: receipt.ck_queue_offset,
        group: h.consumer_group,
        topic: h.topic,
        queue_id: h.queue_id,
        pop_time: receipt.pop_time,
        broker_name: receipt.broker_name,
    };
    put_ack(&ctx, receipt.revive_qid, &old).await?;
    Ok(Some(RemotingCommand::success().with_header(
        &ChangeInvisibleTimeResponseHeader {
            pop_time: now,
            invisible_time: h.invisible_time,
            revive_qid: receipt.revive_qid,
        },
    )))
}

async fn notification(ctx: Arc<BrokerContext>, request: RemotingCommand) -> ProcessResult {
    let mut h: NotificationRequestHeader = request.decode_header()?;
    if h.born_time <= 0 {
        h.born_time = now_ms();
    }
    let topic = check_readable(&ctx, &h.consumer_group, &h.topic, h.queue_id).await?;
    let order = h.order.unwrap_or(false);
    let retry = pop_retry_topic(&h.topic, &h.consumer_group);
    let has_message = || -> bool {
        let now = now_ms();
        let queues: Vec<i32> = if h.queue_id < 0 {
            (0..topic.read_queue_nums).collect()
        } else {
            vec![h.queue_id]
        };
        let pending = |t: &str, q: i32| {
            let committed = ctx
                .offsets
                .query(&h.consumer_group, t, q)
                .unwrap_or_else(|| ctx.store.min_offset_in_queue(t, q));
            ctx.store.max_offset_in_queue(t, q) > committed
        };
        queues.iter().any(|q| {
            pending(&h.topic, *q)
                && !(order
                    && ctx.pop.order_blocked(
                        &queue_key(&h.topic, &h.consumer_group, *q),
                        h.attempt_id.as_deref(),
                        now,
                    ))
        }) || (!order && ctx.topics.get(&retry).is_some() && pending(&retry, 0))
    };
    let deadline = h.born_time + h.poll_time.clamp(0, MAX_POLL_MS);
    let has = loop {
        let armed = ctx
            .long_polling
            .arm(&[(&h.topic, h.queue_id), (&retry, -1)]);
        let has = has_message();
        let remaining = deadline - now_ms();
        if has || remaining <= 0 {
            break has;
        }
        armed.wait(Duration::from_millis(remaining as u64)).await;
    };
    Ok(Some(RemotingCommand::success().with_header(
        &NotificationResponseHeader {
            has_msg: has,
            polling_full: None,
        },
    )))
}

async fn query_assignment(ctx: Arc<BrokerContext>, request: RemotingCommand) -> ProcessResult {
    let body: QueryAssignmentRequestBody = rocketmq_common::json::from_slice_lenient(&request.body)
        .map_err(|e| {
            illegal(
                ResponseCode::InvalidParameter,
                format!("invalid assignment query: {e}"),
            )
        })?;
    let setting = ctx.pop.request_mode(&body.topic, &body.consumer_group);
    let retry = body
        .topic
        .starts_with(rocketmq_common::topic::RETRY_GROUP_TOPIC_PREFIX);
    let mode = match &setting {
        Some(s) if !retry => s.mode,
        _ => MessageRequestMode::Pull,
    };
    // Every readable queue of the topic, across the brokers the name servers know (this
    // broker's own when no route is at hand).
    let mut queues: Vec<MessageQueue> = Vec::new();
    let client = rocketmq_client::MqClient::with_remoting(
        rocketmq_common::remoting::RemotingClient::new(Default::default()),
        ctx.config.namesrv_addr.clone(),
        Duration::from_secs(3),
    );
    if !ctx.config.namesrv_addr.is_empty()
        && let Ok(route) = client.topic_route(&body.topic).await
    {
        for qd in &route.queue_datas {
            if qd.perm & PERM_READ == 0 {
                continue;
            }
            for q in 0..qd.read_queue_nums {
                queues.push(MessageQueue {
                    broker_name: qd.broker_name.clone(),
                    queue_id: q,
                    topic: body.topic.clone(),
                });
            }
        }
    }
    if queues.is_empty() {
        let config = ctx.topics.get(&body.topic).ok_or_else(|| {
            illegal(
                ResponseCode::TopicNotExist,
                format!("topic[{}] not exist", body.topic),
            )
        })?;
        for q in 0..config.read_queue_nums {
            queues.push(MessageQueue {
                broker_name: ctx.config.broker_name.clone(),
                queue_id: q,
                topic: body.topic.clone(),
            });
        }
    }
    queues.sort();
    let assigned: Vec<MessageQueue> = if body.message_model == "BROADCASTING" {
        queues
    } else if mode == MessageRequestMode::Pop
        && setting.as_ref().is_none_or(|s| s.pop_share_queue_num <= 0)
    {
        // Every client pops every queue: one entry per broker, queue -1.
        let mut brokers: Vec<String> = queues.iter().map(|q| q.broker_name.clone()).collect();
        brokers.dedup();
        brokers
            .into_iter()
            .map(|broker_name| MessageQueue {
                broker_name,
                queue_id: -1,
                topic: body.topic.clone(),
            })
            .collect()
    } else {
        let mut clients = ctx.clients.consumer_ids(&body.consumer_group);
        if !clients.contains(&body.client_id) {
            clients.push(body.client_id.clone());
        }
        clients.sort();
        let index = clients
            .iter()
            .position(|c| *c == body.client_id)
            .expect("the asking client was added");
        allocate_average(&queues, clients.len(), index)
    };
    Ok(Some(
        RemotingCommand::success().with_body(json_body(&QueryAssignmentResponseBody {
            message_queue_assignments: assigned
                .into_iter()
                .map(|message_queue| MessageQueueAssignment {
                    message_queue,
                    mode,
                })
                .collect(),
        })),
    ))
}

/// Java's `AllocateMessageQueueAveragely`: contiguous shares, the first clients get one more.
fn allocate_average(queues: &[MessageQueue], clients: usize, index: usize) -> Vec<MessageQueue> {
    let n = queues.len();
    if clients == 0 || index >= clients {
        return Vec::new();
    }
    let modulo = n % clients;
    let size = if n <= clients {
        1
    } else if modulo > 0 && index < modulo {
        n / clients + 1
    } else {
        n / clients
    };
    let start = if modulo > 0 && index < modulo {
        index * size
    } else {
        index * size + modulo
    };
    (0..size.min(n.saturating_sub(start)))
        .map(|i| queues[(start + i) % n].clone())
        .collect()
}

async fn set_request_mode(ctx: Arc<BrokerContext>, request: RemotingCommand) -> ProcessResult {
    let body: SetMessageRequestModeRequestBody =
        rocketmq_common::json::from_slice_lenient(&request.body).map_err(|e| {
            illegal(
                ResponseCode::InvalidParameter,
                format!("invalid request mode body: {e}"),
            )
        })?;
    if body
        .topic
        .starts_with(rocketmq_common::topic::RETRY_GROUP_TOPIC_PREFIX)
    {
        return Err(illegal(
            ResponseCode::NoPermission,
            "retry topics are always pulled",
        ));
    }
    if ctx.topics.get(&body.topic).is_none() {
        return Err(illegal(
            ResponseCode::TopicNotExist,
            format!("topic[{}] not exist", body.topic),
        ));
    }
    if ctx.groups.get(&body.consumer_group).is_none() {
        return Err(illegal(
            ResponseCode::SubscriptionGroupNotExist,
            format!(
                "subscription group [{}] does not exist",
                body.consumer_group
            ),
        ));
    }
    let pop = ctx.pop.clone();
    super::blocking(move || pop.set_request_mode(body))
        .await
        .map_err(|e| illegal(ResponseCode::SystemError, e.to_string()))?;
    Ok(Some(RemotingCommand::success()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queues(n: i32) -> Vec<MessageQueue> {
        (0..n)
            .map(|q| MessageQueue {
                broker_name: "b".into(),
                queue_id: q,
                topic: "T".into(),
            })
            .collect()
    }

    #[test]
    fn average_allocation_covers_every_queue_once() {
        for (n, clients) in [(8, 3), (4, 4), (2, 5), (16, 1), (7, 2)] {
            let qs = queues(n);
            let mut seen = Vec::new();
            for i in 0..clients {
                seen.extend(
                    allocate_average(&qs, clients, i)
                        .into_iter()
                        .map(|q| q.queue_id),
                );
            }
            seen.sort();
            // More clients than queues: the extra clients get nothing, as in Java.
            assert_eq!(
                seen,
                (0..n).collect::<Vec<_>>(),
                "{n} queues, {clients} clients"
            );
        }
    }
}
