//! SEND_MESSAGE (10), SEND_MESSAGE_V2 (310) and SEND_BATCH_MESSAGE (320).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use rocketmq_common::message::RecordInput;
use rocketmq_common::message::batch::{BatchMessage, decode_batch};
use rocketmq_common::message::keys::CLUSTER;
use rocketmq_common::message::{encode_offset_message_id, get_property, rewrite_properties};
use rocketmq_common::protocol::headers::broker::{
    SendMessageRequestHeader, SendMessageRequestHeaderV2, SendMessageResponseHeader,
};
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{
    ProcessError, ProcessResult, Reply, RequestContext, RequestProcessor,
};
use rocketmq_common::route::{PERM_INHERIT, PERM_WRITE, TopicConfig};
use rocketmq_common::topic::{TRANS_HALF_TOPIC, is_not_allowed_send_topic, validate_topic};

use super::{BrokerContext, metadata_error};
use crate::delivery;
use crate::transaction::{self, half_message, is_half_message};

/// Handles the produce codes.
pub struct SendMessageProcessor {
    core: Arc<SendCore>,
}

/// The processor's state; shared with the tasks that wait for the store.
struct SendCore {
    ctx: Arc<BrokerContext>,
    next_queue: AtomicU32,
}

impl SendMessageProcessor {
    /// A processor over the shared context.
    pub fn new(ctx: Arc<BrokerContext>) -> Self {
        Self {
            core: Arc::new(SendCore {
                ctx,
                next_queue: AtomicU32::new(0),
            }),
        }
    }
}

impl SendCore {
    fn header(request: &RemotingCommand) -> Result<SendMessageRequestHeader, ProcessError> {
        Ok(match request.request_code() {
            Some(RequestCode::SEND_MESSAGE) => request.decode_header()?,
            _ => request
                .decode_header::<SendMessageRequestHeaderV2>()?
                .into(),
        })
    }

    /// The topic's config, auto-creating it from the template when allowed.
    async fn topic_config(
        &self,
        header: &SendMessageRequestHeader,
    ) -> Result<TopicConfig, ProcessError> {
        if let Some(c) = self.ctx.topics.get(&header.topic) {
            return Ok(c);
        }
        let not_exist = || {
            ProcessError::new(
                ResponseCode::TopicNotExist,
                format!("topic[{}] not exist, apply first please!", header.topic),
            )
        };
        if !self.ctx.live.auto_create_topic_enable() {
            return Err(not_exist());
        }
        let template = self
            .ctx
            .topics
            .get(&header.default_topic)
            .ok_or_else(not_exist)?;
        if template.perm & PERM_INHERIT == 0 {
            return Err(ProcessError::new(
                ResponseCode::NoPermission,
                format!(
                    "the default topic[{}] has no inherit permission",
                    header.default_topic
                ),
            ));
        }
        let queues = header
            .default_topic_queue_nums
            .clamp(1, template.write_queue_nums.max(1));
        let config = TopicConfig {
            perm: template.perm & !PERM_INHERIT,
            ..TopicConfig::new(&header.topic, queues)
        };
        let (config, created) = self
            .ctx
            .topic_or_create(config)
            .await
            .map_err(metadata_error)?;
        if created {
            tracing::info!(topic = %config.topic_name, queues, "auto-created topic");
        }
        Ok(config)
    }

    async fn check(&self, header: &SendMessageRequestHeader) -> Result<TopicConfig, ProcessError> {
        if self.ctx.is_shutting_down() {
            return Err(ProcessError::new(
                ResponseCode::ServiceNotAvailable,
                "broker is shutting down",
            ));
        }
        if self.ctx.live.broker_permission() & PERM_WRITE == 0 {
            return Err(ProcessError::new(
                ResponseCode::NoPermission,
                format!(
                    "the broker[{}] sending message is forbidden",
                    self.ctx.config.broker_name
                ),
            ));
        }
        validate_topic(&header.topic)
            .map_err(|e| ProcessError::new(ResponseCode::MessageIllegal, e))?;
        if is_not_allowed_send_topic(&header.topic) {
            return Err(ProcessError::new(
                ResponseCode::NoPermission,
                format!("Sending message to topic[{}] is forbidden.", header.topic),
            ));
        }
        let config = self.topic_config(header).await?;
        if config.perm & PERM_WRITE == 0 {
            return Err(ProcessError::new(
                ResponseCode::NoPermission,
                format!("the topic[{}] sending message is forbidden", header.topic),
            ));
        }
        if header.queue_id >= config.write_queue_nums {
            return Err(ProcessError::new(
                ResponseCode::SystemError,
                format!(
                    "request queueId[{}] is illegal, {:?} Producer: {}",
                    header.queue_id, config, header.producer_group
                ),
            ));
        }
        Ok(config)
    }

    fn pick_queue(&self, header: &SendMessageRequestHeader, config: &TopicConfig) -> i32 {
        if header.queue_id >= 0 {
            header.queue_id
        } else {
            (self.next_queue.fetch_add(1, Ordering::Relaxed)
                % config.write_queue_nums.max(1) as u32) as i32
        }
    }

    /// Size check and broker-added properties.
    fn prepare(&self, incoming: &mut BatchMessage) -> Result<(), ProcessError> {
        let max = self.ctx.store.config().max_message_size;
        if incoming.body.len() > max {
            return Err(ProcessError::new(
                ResponseCode::MessageIllegal,
                format!(
                    "the message body size {} is over the limit {max}",
                    incoming.body.len()
                ),
            ));
        }
        if get_property(&incoming.properties, CLUSTER).is_none() {
            incoming.properties = rewrite_properties(
                &incoming.properties,
                &[(CLUSTER, &self.ctx.config.broker_cluster_name)],
                &[],
            );
        }
        Ok(())
    }

    async fn send(
        self: Arc<Self>,
        peer: std::net::SocketAddr,
        request: RemotingCommand,
    ) -> ProcessResult {
        let header = Self::header(&request)?;
        let config = self.check(&header).await?;
        let queue_id = self.pick_queue(&header, &config);
        let batch = request.request_code() == Some(RequestCode::SEND_BATCH_MESSAGE);
        let mut messages = if batch {
            decode_batch(&request.body)
                .map_err(|e| ProcessError::new(ResponseCode::MessageIllegal, e.to_string()))?
        } else {
            vec![BatchMessage {
                flag: header.flag,
                body: request.body.clone(),
                properties: header.properties.clone().unwrap_or_default(),
            }]
        };
        if messages.is_empty() {
            return Err(ProcessError::new(
                ResponseCode::MessageIllegal,
                "empty batch",
            ));
        }
        for m in &mut messages {
            self.prepare(m)?;
        }
        // A delayed message waits in the schedule topic and a half message in the half
        // topic; the response still names the queue the producer chose, as Java's does.
        let mut store_topic = header.topic.clone();
        let mut store_queue = queue_id;
        let mut sys_flag = header.sys_flag;
        let mut transaction_id = None;
        let half = messages
            .iter()
            .any(|m| is_half_message(&m.properties, header.sys_flag));
        if half {
            if batch {
                return Err(ProcessError::new(
                    ResponseCode::MessageIllegal,
                    "batch messages cannot be transactional",
                ));
            }
            if self.ctx.live.reject_transaction_message() {
                return Err(ProcessError::new(
                    ResponseCode::NoPermission,
                    format!(
                        "the broker[{}] sending transaction message is forbidden",
                        self.ctx.config.broker_name
                    ),
                ));
            }
            let (props, flag) = half_message(
                &messages[0].properties,
                header.sys_flag,
                &header.topic,
                queue_id,
                &header.producer_group,
            );
            transaction_id = transaction::transaction_id(&props);
            messages[0].properties = props;
            sys_flag = flag;
            store_topic = TRANS_HALF_TOPIC.to_string();
            store_queue = 0;
        } else if messages
            .iter()
            .any(|m| delivery::wants_delay(&m.properties))
        {
            if batch {
                return Err(ProcessError::new(
                    ResponseCode::MessageIllegal,
                    "delay levels and timers are not supported for batch messages",
                ));
            }
            let route =
                delivery::route(&self.ctx, &header.topic, queue_id, &messages[0].properties)?;
            messages[0].properties = route.properties;
            store_topic = route.topic;
            store_queue = route.queue_id;
        }

        let in_flight = self.ctx.in_flight_puts.fetch_add(1, Ordering::AcqRel);
        let _guard = InFlightGuard(&self.ctx.in_flight_puts);
        if in_flight >= self.ctx.config.max_in_flight_puts {
            return Err(ProcessError::new(
                ResponseCode::SystemBusy,
                "[PCBUSY_CLEAN_QUEUE]broker busy, start flow control for a while",
            ));
        }
        let store_host = self.ctx.store_host;
        let inputs: Vec<RecordInput<'_>> = messages
            .iter()
            .map(|m| RecordInput {
                topic: &store_topic,
                queue_id: store_queue,
                flag: m.flag,
                sys_flag,
                born_timestamp: header.born_timestamp,
                born_host: peer,
                store_host,
                reconsume_times: header.reconsume_times.unwrap_or(0),
                prepared_transaction_offset: 0,
                body: &m.body,
                properties: &m.properties,
            })
            .collect();
        let started = Instant::now();
        let written = self.ctx.replication.put(&inputs).await?;
        self.ctx.metrics.record_put(
            &header.topic,
            &messages.iter().map(|m| m.body.len()).collect::<Vec<_>>(),
            started.elapsed(),
        );
        let (code, appends) = (written.code, written.appends);
        let msg_ids: Vec<String> = appends
            .iter()
            .map(|a| encode_offset_message_id(store_host, a.physical_offset))
            .collect();
        let first = &appends[0];
        let mut response =
            RemotingCommand::response(code, None).with_header(&SendMessageResponseHeader {
                msg_id: msg_ids.join(","),
                queue_id,
                queue_offset: first.queue_offset,
                transaction_id,
                batch_uniq_id: None,
                recall_handle: None,
            });
        let ext = response.ext_fields.get_or_insert_with(Default::default);
        ext.insert("MSG_REGION".into(), "DefaultRegion".into());
        ext.insert("TRACE_ON".into(), "true".into());
        Ok(Some(response))
    }
}

struct InFlightGuard<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl RequestProcessor for SendMessageProcessor {
    fn process(&self, ctx: &RequestContext, request: RemotingCommand) -> Reply {
        let core = self.core.clone();
        let peer = ctx.connection.peer();
        Reply::Later(Box::pin(core.send(peer, request)))
    }
}
