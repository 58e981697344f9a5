//! HEART_BEAT (34), UNREGISTER_CLIENT (35), GET_CONSUMER_LIST_BY_GROUP (38).

use std::sync::Arc;
use std::time::Instant;

use rocketmq_common::body::{CheckClientRequestBody, ConsumerListBody, HeartbeatData};
use rocketmq_common::protocol::headers::broker::{
    GetConsumerListByGroupRequestHeader, UnregisterClientRequestHeader,
};
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{
    ProcessError, ProcessResult, Reply, RequestContext, RequestProcessor,
};
use rocketmq_common::route::{PERM_READ, PERM_WRITE, TopicConfig};
use rocketmq_common::topic::retry_topic;

use super::{BrokerContext, json_body, metadata_error, unsupported};
use crate::clients::ClientChannel;

/// Handles client registration.
pub struct ClientProcessor {
    ctx: Arc<BrokerContext>,
}

impl ClientProcessor {
    /// A processor over the shared context.
    pub fn new(ctx: Arc<BrokerContext>) -> Self {
        Self { ctx }
    }

    async fn heartbeat(
        ctx: Arc<BrokerContext>,
        connection: rocketmq_common::remoting::ConnectionHandle,
        request: RemotingCommand,
    ) -> ProcessResult {
        let data: HeartbeatData = rocketmq_common::json::from_slice_lenient(&request.body)
            .map_err(|e| {
                // A refused heartbeat leaves the client without consumers or checks: say
                // so where an operator looks, with enough of the body to see the dialect.
                let shown = String::from_utf8_lossy(&request.body[..request.body.len().min(512)])
                    .into_owned();
                tracing::warn!(peer = %connection.peer(), error = %e, body = %shown, "heartbeat refused: body does not parse");
                ProcessError::new(
                    ResponseCode::SystemError,
                    format!("invalid heartbeat body: {e}"),
                )
            })?;
        let channel = ClientChannel {
            client_id: data.client_id.clone(),
            connection: connection.clone(),
            last_update: Instant::now(),
            language: request.language,
            version: request.version,
        };
        for consumer in &data.consumer_data_set {
            let group = ctx
                .group_or_create(&consumer.group_name)
                .await
                .map_err(metadata_error)?;
            if let Some(group) = &group {
                // Every consumer group has a retry topic it also consumes.
                ctx.topic_or_create(TopicConfig {
                    perm: PERM_READ | PERM_WRITE,
                    ..TopicConfig::new(
                        retry_topic(&group.group_name),
                        group.retry_queue_nums.max(1),
                    )
                })
                .await
                .map_err(metadata_error)?;
            }
            for sub in &consumer.subscription_data_set {
                if !crate::filter::is_tag_type(Some(&sub.expression_type))
                    && let Err(e) = ctx
                        .filters
                        .compile(Some(&sub.expression_type), &sub.sub_string)
                {
                    // Java accepts the heartbeat and fails the pulls; say why once here.
                    tracing::warn!(group = %consumer.group_name, topic = %sub.topic, expression = %sub.sub_string, error = %e.remark, "subscription filter refused");
                }
            }
            let changed = ctx.clients.register_consumer(consumer, channel.clone());
            if changed && group.is_none_or(|g| g.notify_consumer_ids_changed_enable) {
                ctx.clients
                    .notify_consumer_ids_changed(&consumer.group_name);
            }
        }
        for producer in &data.producer_data_set {
            ctx.clients
                .register_producer(&producer.group_name, channel.clone());
        }
        Ok(Some(RemotingCommand::success()))
    }

    fn unregister(&self, rctx: &RequestContext, request: &RemotingCommand) -> ProcessResult {
        let h: UnregisterClientRequestHeader = request.decode_header()?;
        let id = rctx.connection.id();
        if let Some(group) = h.producer_group.as_deref().filter(|g| !g.is_empty()) {
            self.ctx.clients.unregister_producer(group, id);
        }
        if let Some(group) = h.consumer_group.as_deref().filter(|g| !g.is_empty())
            && self.ctx.clients.unregister_consumer(group, id)
        {
            self.ctx.clients.notify_consumer_ids_changed(group);
        }
        Ok(Some(RemotingCommand::success()))
    }

    /// CHECK_CLIENT_CONFIG: whether this broker accepts the subscription's filter.
    fn check_client_config(&self, request: &RemotingCommand) -> ProcessResult {
        let body: CheckClientRequestBody = rocketmq_common::json::from_slice_lenient(&request.body)
            .map_err(|e| {
                ProcessError::new(
                    ResponseCode::SystemError,
                    format!("invalid check-client body: {e}"),
                )
            })?;
        if let Some(sub) = &body.subscription_data {
            self.ctx
                .filters
                .compile(Some(&sub.expression_type), &sub.sub_string)?;
        }
        Ok(Some(RemotingCommand::success()))
    }

    fn consumer_list(&self, request: &RemotingCommand) -> ProcessResult {
        let h: GetConsumerListByGroupRequestHeader = request.decode_header()?;
        let ids = self.ctx.clients.consumer_ids(&h.consumer_group);
        if ids.is_empty() {
            return Err(ProcessError::new(
                ResponseCode::SystemError,
                format!("no consumer for this group, {}", h.consumer_group),
            ));
        }
        Ok(Some(RemotingCommand::success().with_body(json_body(
            &ConsumerListBody {
                consumer_id_list: ids,
            },
        ))))
    }
}

impl RequestProcessor for ClientProcessor {
    fn process(&self, rctx: &RequestContext, request: RemotingCommand) -> Reply {
        if request.request_code() == Some(RequestCode::HEART_BEAT) {
            // A first heartbeat may create the group and its retry topic (file writes).
            return Reply::Later(Box::pin(Self::heartbeat(
                self.ctx.clone(),
                rctx.connection.clone(),
                request,
            )));
        }
        Reply::Now(match request.request_code() {
            Some(RequestCode::UNREGISTER_CLIENT) => self.unregister(rctx, &request),
            Some(RequestCode::GET_CONSUMER_LIST_BY_GROUP) => self.consumer_list(&request),
            Some(RequestCode::CHECK_CLIENT_CONFIG) => self.check_client_config(&request),
            _ => Err(unsupported(request.code)),
        })
    }
}
