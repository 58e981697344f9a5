//! CONSUMER_SEND_MSG_BACK (36): a consumer gives a message back for redelivery. It goes to
//! the group's retry topic `%RETRY%<group>` after delay level `3 + reconsumeTimes` (or the
//! level asked for), or to the dead-letter topic `%DLQ%<group>` once it has been consumed
//! `maxReconsumeTimes` times (default 16) or the consumer asks for it (level < 0).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use rocketmq_common::message::keys::{
    DELAY, DLQ_ORIGIN_MESSAGE_ID, DLQ_ORIGIN_TOPIC, ORIGIN_MESSAGE_ID, REAL_QUEUE_ID, REAL_TOPIC,
    RETRY_TOPIC, UNIQ_KEY,
};
use rocketmq_common::message::{RecordInput, get_property, rewrite_properties};
use rocketmq_common::protocol::headers::broker::ConsumerSendMsgBackRequestHeader;
use rocketmq_common::protocol::{RemotingCommand, ResponseCode};
use rocketmq_common::remoting::{
    ProcessError, ProcessResult, Reply, RequestContext, RequestProcessor,
};
use rocketmq_common::route::{PERM_READ, PERM_WRITE, TopicConfig};
use rocketmq_common::topic::{SCHEDULE_TOPIC, dlq_topic, retry_topic};

use super::{BrokerContext, metadata_error, store_error};
use crate::schedule::delay_rewrite;

/// Handles send-back.
pub struct SendBackProcessor {
    core: Arc<SendBackCore>,
}

struct SendBackCore {
    ctx: Arc<BrokerContext>,
    next_queue: AtomicU32,
}

impl SendBackProcessor {
    /// A processor over the shared context.
    pub fn new(ctx: Arc<BrokerContext>) -> Self {
        Self {
            core: Arc::new(SendBackCore {
                ctx,
                next_queue: AtomicU32::new(0),
            }),
        }
    }
}

impl RequestProcessor for SendBackProcessor {
    fn process(&self, _ctx: &RequestContext, request: RemotingCommand) -> Reply {
        let core = self.core.clone();
        Reply::Later(Box::pin(async move { core.send_back(request).await }))
    }
}

impl SendBackCore {
    async fn send_back(&self, request: RemotingCommand) -> ProcessResult {
        let ctx = &self.ctx;
        let h: ConsumerSendMsgBackRequestHeader = request.decode_header()?;
        if ctx.is_shutting_down() {
            return Err(ProcessError::new(
                ResponseCode::ServiceNotAvailable,
                "broker is shutting down",
            ));
        }
        let group = ctx
            .group_or_create(&h.group)
            .await
            .map_err(metadata_error)?
            .ok_or_else(|| {
                ProcessError::new(
                    ResponseCode::SubscriptionGroupNotExist,
                    format!("subscription group not exist, {}", h.group),
                )
            })?;
        if ctx.live.broker_permission() & PERM_WRITE == 0 {
            return Err(ProcessError::new(
                ResponseCode::NoPermission,
                format!(
                    "the broker[{}] sending message is forbidden",
                    ctx.config.broker_name
                ),
            ));
        }
        if group.retry_queue_nums <= 0 {
            // The group opted out of retries: the message is dropped, as in Java.
            return Ok(Some(RemotingCommand::success()));
        }
        let buf = ctx
            .store
            .get_message_by_offset(h.offset)
            .map_err(store_error)?
            .ok_or_else(|| {
                ProcessError::new(
                    ResponseCode::SystemError,
                    format!("look message by offset failed, {}", h.offset),
                )
            })?;
        let m = buf.decode().map_err(store_error)?;

        let max_reconsume_times = h.max_reconsume_times.unwrap_or(group.retry_max_times);
        let to_dlq = m.reconsume_times >= max_reconsume_times || h.delay_level < 0;
        let origin_topic = get_property(m.properties, RETRY_TOPIC)
            .unwrap_or(m.topic)
            .to_string();
        let origin_id = get_property(m.properties, ORIGIN_MESSAGE_ID)
            .or(h.origin_msg_id.as_deref())
            .or(get_property(m.properties, UNIQ_KEY))
            .unwrap_or_default()
            .to_string();
        let (topic, queue_count, perm) = if to_dlq {
            (dlq_topic(&h.group), 1, PERM_READ | PERM_WRITE)
        } else {
            (
                retry_topic(&h.group),
                group.retry_queue_nums,
                PERM_READ | PERM_WRITE,
            )
        };
        ctx.topic_or_create(TopicConfig {
            perm,
            ..TopicConfig::new(&topic, queue_count)
        })
        .await
        .map_err(metadata_error)?;
        let queue_id =
            (self.next_queue.fetch_add(1, Ordering::Relaxed) % queue_count as u32) as i32;
        let mut set: Vec<(&str, &str)> = vec![
            (RETRY_TOPIC, &origin_topic),
            (ORIGIN_MESSAGE_ID, &origin_id),
        ];
        if to_dlq {
            set.push((DLQ_ORIGIN_TOPIC, &origin_topic));
            set.push((DLQ_ORIGIN_MESSAGE_ID, &origin_id));
        }
        let mut properties =
            rewrite_properties(m.properties, &set, &[REAL_TOPIC, REAL_QUEUE_ID, DELAY]);
        let (store_topic, store_queue) = if to_dlq {
            (topic.as_str(), queue_id)
        } else {
            let level = if h.delay_level == 0 {
                3 + m.reconsume_times
            } else {
                h.delay_level
            };
            let (queue, props) =
                delay_rewrite(ctx.schedule.levels(), level, &topic, queue_id, &properties);
            properties = props;
            (SCHEDULE_TOPIC, queue)
        };
        let input = RecordInput {
            topic: store_topic,
            queue_id: store_queue,
            flag: m.flag,
            sys_flag: m.sys_flag,
            born_timestamp: m.born_timestamp,
            born_host: m.born_host,
            store_host: ctx.store_host,
            reconsume_times: m.reconsume_times + 1,
            prepared_transaction_offset: 0,
            body: m.body,
            properties: &properties,
        };
        ctx.put_one(&input).await?;
        if to_dlq {
            tracing::info!(group = %h.group, topic = %origin_topic, id = %origin_id, "message moved to the dead-letter queue");
        }
        Ok(Some(RemotingCommand::success()))
    }
}
