//! PULL_MESSAGE (11) and LITE_PULL_MESSAGE (361), with long polling.

use std::sync::Arc;
use std::time::Duration;

use rocketmq_common::protocol::headers::broker::{
    PullMessageRequestHeader, PullMessageResponseHeader,
};
use rocketmq_common::protocol::{RemotingCommand, ResponseCode};
use rocketmq_common::remoting::{
    ProcessError, ProcessResult, Reply, RequestContext, RequestProcessor,
};
use rocketmq_common::route::PERM_READ;

use super::{BrokerContext, metadata_error, store_error};
use crate::filter::MessageFilter;
use rocketmq_store::GetStatus;

/// PullSysFlag: commit the offset carried in the request.
const FLAG_COMMIT_OFFSET: i32 = 0x1;
/// PullSysFlag: the broker may hold the request (long polling).
const FLAG_SUSPEND: i32 = 0x2;
/// PullSysFlag: the request carries its subscription expression.
const FLAG_SUBSCRIPTION: i32 = 0x4;

/// Longest a pull may be held, whatever the client asks.
const MAX_SUSPEND_MILLIS: i64 = 60_000;

/// Largest body a pull returns when the client does not say (Java's
/// `maxTransferBytesOnMessageInMemory`, 256 KiB).
const DEFAULT_MAX_PULL_BYTES: usize = 256 * 1024;

/// Handles pulls.
pub struct PullMessageProcessor {
    ctx: Arc<BrokerContext>,
}

/// What one read of the queue produced.
struct PullOutcome {
    code: ResponseCode,
    header: PullMessageResponseHeader,
    body: Vec<u8>,
    messages: usize,
}

impl PullMessageProcessor {
    /// A processor over the shared context.
    pub fn new(ctx: Arc<BrokerContext>) -> Self {
        Self { ctx }
    }
}

impl RequestProcessor for PullMessageProcessor {
    fn process(&self, _ctx: &RequestContext, request: RemotingCommand) -> Reply {
        let ctx = self.ctx.clone();
        Reply::Later(Box::pin(pull(ctx, request)))
    }
}

fn filter_for(
    ctx: &BrokerContext,
    h: &PullMessageRequestHeader,
) -> Result<MessageFilter, ProcessError> {
    if h.sys_flag & FLAG_SUBSCRIPTION != 0 {
        return ctx.filters.compile(
            h.expression_type.as_deref(),
            h.subscription.as_deref().unwrap_or("*"),
        );
    }
    match ctx.clients.subscription(&h.consumer_group, &h.topic) {
        Some(sub) => ctx
            .filters
            .compile(Some(&sub.expression_type), &sub.sub_string),
        None => Err(ProcessError::new(
            ResponseCode::SubscriptionNotExist,
            format!(
                "the consumer's subscription not exist, group: {} topic: {}",
                h.consumer_group, h.topic
            ),
        )),
    }
}

async fn pull(ctx: Arc<BrokerContext>, request: RemotingCommand) -> ProcessResult {
    let h: PullMessageRequestHeader = request.decode_header()?;
    if ctx.live.broker_permission() & PERM_READ == 0 {
        return Err(ProcessError::new(
            ResponseCode::NoPermission,
            format!(
                "the broker[{}] pulling message is forbidden",
                ctx.config.broker_name
            ),
        ));
    }
    let group = ctx
        .group_or_create(&h.consumer_group)
        .await
        .map_err(metadata_error)?
        .ok_or_else(|| {
            ProcessError::new(
                ResponseCode::SubscriptionGroupNotExist,
                format!("subscription group [{}] does not exist", h.consumer_group),
            )
        })?;
    if !group.consume_enable {
        return Err(ProcessError::new(
            ResponseCode::NoPermission,
            format!("subscription group no permission, {}", h.consumer_group),
        ));
    }
    let topic = ctx.topics.get(&h.topic).ok_or_else(|| {
        ProcessError::new(
            ResponseCode::TopicNotExist,
            format!("topic[{}] not exist, apply first please!", h.topic),
        )
    })?;
    if topic.perm & PERM_READ == 0 {
        return Err(ProcessError::new(
            ResponseCode::NoPermission,
            format!("the topic[{}] pulling message is forbidden", h.topic),
        ));
    }
    if h.queue_id < 0 || h.queue_id >= topic.read_queue_nums {
        return Err(ProcessError::new(
            ResponseCode::SystemError,
            format!(
                "queueId[{}] is illegal, topic:[{}] topicConfig.readQueueNums:[{}]",
                h.queue_id, h.topic, topic.read_queue_nums
            ),
        ));
    }
    let filter = filter_for(&ctx, &h)?;
    if let Some(offset) = ctx
        .offsets
        .take_reset(&h.consumer_group, &h.topic, h.queue_id)
    {
        // An admin reset this queue's offset: the consumer moves there.
        tracing::info!(group = %h.consumer_group, topic = %h.topic, queue_id = h.queue_id, offset, "consumer told about its reset offset");
        let header = PullMessageResponseHeader {
            suggest_which_broker_id: 0,
            next_begin_offset: offset,
            min_offset: ctx.store.min_offset_in_queue(&h.topic, h.queue_id),
            max_offset: ctx.store.max_offset_in_queue(&h.topic, h.queue_id),
            offset_delta: None,
            topic_sys_flag: None,
            group_sys_flag: None,
            forbidden_type: None,
        };
        return Ok(Some(
            RemotingCommand::response(ResponseCode::PullOffsetMoved, None).with_header(&header),
        ));
    }
    // A slave serves reads but keeps the master's offsets (synced from it).
    if h.sys_flag & FLAG_COMMIT_OFFSET != 0 && h.commit_offset >= 0 && ctx.replication.is_master() {
        ctx.offsets
            .commit(&h.consumer_group, &h.topic, h.queue_id, h.commit_offset);
    }

    let mut outcome = read(&ctx, &h, &filter)?;
    if outcome.code == ResponseCode::PullNotFound && h.sys_flag & FLAG_SUSPEND != 0 {
        let hold = if ctx.live.long_polling_enable() {
            // The client picks the hold time (15 s in Java clients); cap it so a request
            // cannot pin a task for hours.
            Duration::from_millis(h.suspend_timeout_millis.clamp(0, MAX_SUSPEND_MILLIS) as u64)
        } else {
            ctx.config.short_polling_time
        };
        let store = ctx.store.clone();
        let (topic_name, queue_id, offset) = (h.topic.clone(), h.queue_id, h.queue_offset);
        let arrived = ctx
            .long_polling
            .wait_until(&h.topic, h.queue_id, hold, move || {
                store.max_offset_in_queue(&topic_name, queue_id) > offset
            })
            .await;
        if arrived {
            outcome = read(&ctx, &h, &filter)?;
        }
    }
    ctx.metrics.record_pull(
        &h.topic,
        &h.consumer_group,
        outcome.messages,
        outcome.body.len(),
    );
    Ok(Some(
        RemotingCommand::response(outcome.code, None)
            .with_header(&outcome.header)
            .with_body(outcome.body),
    ))
}

fn read(
    ctx: &BrokerContext,
    h: &PullMessageRequestHeader,
    filter: &MessageFilter,
) -> Result<PullOutcome, ProcessError> {
    let max_msgs = h.max_msg_nums.clamp(1, 1024) as usize;
    let max_bytes = h
        .max_msg_bytes
        .filter(|b| *b > 0)
        .map_or(DEFAULT_MAX_PULL_BYTES, |b| b as usize);
    let result = ctx
        .store
        .get_messages_filtered(
            &h.topic,
            h.queue_id,
            h.queue_offset,
            max_msgs,
            max_bytes,
            &|code| filter.accepts_code(code),
        )
        .map_err(store_error)?;
    let mut body = Vec::new();
    let mut messages = 0;
    for (_, buf) in &result.messages {
        let record = buf.decode().map_err(store_error)?;
        if filter.accepts(record.properties) {
            body.extend_from_slice(buf);
            messages += 1;
        }
    }
    let slave = ctx.replication.role() != crate::ha::Role::Master;
    let (code, next) = match result.status {
        GetStatus::Found if messages > 0 => (ResponseCode::Success, result.next_begin_offset),
        // A slave may simply lag: never make a consumer move its offset because of it.
        GetStatus::NoMessageInQueue
        | GetStatus::OffsetTooSmall
        | GetStatus::OffsetOverflowBadly
            if slave && h.queue_offset != 0 =>
        {
            (ResponseCode::PullRetryImmediately, h.queue_offset)
        }
        // Everything read was filtered out: the client retries at once from further on.
        GetStatus::Found => (ResponseCode::PullRetryImmediately, result.next_begin_offset),
        GetStatus::NoMessageInQueue if h.queue_offset != 0 => {
            (ResponseCode::PullOffsetMoved, result.next_begin_offset)
        }
        GetStatus::NoMessageInQueue | GetStatus::OffsetOverflowOne => {
            (ResponseCode::PullNotFound, result.next_begin_offset)
        }
        GetStatus::OffsetTooSmall | GetStatus::OffsetOverflowBadly => {
            (ResponseCode::PullOffsetMoved, result.next_begin_offset)
        }
    };
    // With slaveReadEnable the master points consumers far behind (reading from disk) at
    // the group's slow-consumer broker; everyone else reads from the master.
    let suggest = if !slave
        && ctx.config.ha.slave_read_enable
        && result
            .messages
            .first()
            .is_some_and(|(_, buf)| ctx.replication.reads_from_disk(buf.physical_offset()))
    {
        ctx.groups
            .get(&h.consumer_group)
            .map_or(1, |g| g.which_broker_when_consume_slowly)
    } else {
        0
    };
    Ok(PullOutcome {
        code,
        header: PullMessageResponseHeader {
            suggest_which_broker_id: suggest,
            next_begin_offset: next,
            min_offset: result.min_offset,
            max_offset: result.max_offset,
            offset_delta: None,
            topic_sys_flag: None,
            group_sys_flag: None,
            forbidden_type: None,
        },
        body,
        messages,
    })
}
