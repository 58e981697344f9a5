//! Topic and subscription-group administration: UPDATE_AND_CREATE_TOPIC (17),
//! DELETE_TOPIC_IN_BROKER (215), GET_ALL_TOPIC_CONFIG (21),
//! UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200), DELETE_SUBSCRIPTIONGROUP (207),
//! GET_ALL_SUBSCRIPTIONGROUP_CONFIG (201).

use std::collections::BTreeMap;
use std::sync::Arc;

use rocketmq_common::admin::{ConsumeStats, OffsetWrapper, TopicOffset, TopicStatsTable};
use rocketmq_common::body::{MessageQueue, SubscriptionGroupConfig};
use rocketmq_common::protocol::headers::broker::{
    CreateTopicRequestHeader, DeleteSubscriptionGroupRequestHeader, DeleteTopicRequestHeader,
    GetConsumeStatsRequestHeader, GetTopicStatsInfoRequestHeader,
};
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{
    ProcessError, ProcessResult, Reply, RequestContext, RequestProcessor,
};
use rocketmq_common::route::TopicConfig;
use rocketmq_common::topic::{is_system_topic, validate_topic};

use super::{BrokerContext, blocking, json_body, metadata_error, unsupported};
use rocketmq_store::GetStatus;

/// Handles the admin codes.
pub struct AdminProcessor {
    ctx: Arc<BrokerContext>,
}

/// Parses `+key=value,+key2=value2` (the `attributes` header) into a map.
fn parse_attributes(raw: &str) -> Result<BTreeMap<String, String>, ProcessError> {
    let mut out = BTreeMap::new();
    for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some(kv) = part.strip_prefix('+') else {
            return Err(ProcessError::new(
                ResponseCode::InvalidParameter,
                format!(
                    "attribute {part:?} must start with '+' (deleting attributes with '-' is not supported)"
                ),
            ));
        };
        let Some((k, v)) = kv.split_once('=') else {
            return Err(ProcessError::new(
                ResponseCode::InvalidParameter,
                format!("attribute {part:?} must be +key=value"),
            ));
        };
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
}

impl AdminProcessor {
    /// A processor over the shared context.
    pub fn new(ctx: Arc<BrokerContext>) -> Self {
        Self { ctx }
    }

    fn create_topic(&self, request: &RemotingCommand) -> ProcessResult {
        let h: CreateTopicRequestHeader = request.decode_header()?;
        validate_topic(&h.topic)
            .map_err(|e| ProcessError::new(ResponseCode::InvalidParameter, e))?;
        if h.topic == self.ctx.config.broker_cluster_name
            || h.topic == self.ctx.config.broker_name
            || is_system_topic(&h.topic)
        {
            return Err(ProcessError::new(
                ResponseCode::InvalidParameter,
                format!("The topic[{}] is conflict with system topic.", h.topic),
            ));
        }
        if !(1..=1024).contains(&h.read_queue_nums) || !(1..=1024).contains(&h.write_queue_nums) {
            return Err(ProcessError::new(
                ResponseCode::InvalidParameter,
                "readQueueNums and writeQueueNums must be between 1 and 1024",
            ));
        }
        let config = TopicConfig {
            attributes: parse_attributes(h.attributes.as_deref().unwrap_or(""))?,
            order: h.order,
            perm: h.perm,
            read_queue_nums: h.read_queue_nums,
            topic_filter_type: h.topic_filter_type,
            topic_name: h.topic,
            topic_sys_flag: h.topic_sys_flag.unwrap_or(0),
            write_queue_nums: h.write_queue_nums,
        };
        if self.ctx.topics.upsert(config).map_err(metadata_error)? {
            self.ctx.registration.trigger();
        }
        Ok(Some(RemotingCommand::success()))
    }

    fn delete_topic(&self, request: &RemotingCommand) -> ProcessResult {
        let h: DeleteTopicRequestHeader = request.decode_header()?;
        if self.ctx.topics.delete(&h.topic).map_err(metadata_error)? {
            self.ctx.offsets.remove_topic(&h.topic);
            self.ctx.registration.trigger();
        }
        Ok(Some(RemotingCommand::success()))
    }

    fn create_group(&self, request: &RemotingCommand) -> ProcessResult {
        let config: SubscriptionGroupConfig =
            rocketmq_common::json::from_slice_lenient(&request.body).map_err(|e| {
                ProcessError::new(
                    ResponseCode::SystemError,
                    format!("invalid subscription group body: {e}"),
                )
            })?;
        if config.group_name.trim().is_empty() {
            return Err(ProcessError::new(
                ResponseCode::InvalidParameter,
                "groupName is blank",
            ));
        }
        self.ctx.groups.upsert(config).map_err(metadata_error)?;
        Ok(Some(RemotingCommand::success()))
    }

    fn delete_group(&self, request: &RemotingCommand) -> ProcessResult {
        let h: DeleteSubscriptionGroupRequestHeader = request.decode_header()?;
        self.ctx
            .groups
            .delete(&h.group_name)
            .map_err(metadata_error)?;
        if h.clean_offset.unwrap_or(false) {
            self.ctx.offsets.remove_group(&h.group_name);
        }
        Ok(Some(RemotingCommand::success()))
    }
}

impl AdminProcessor {
    /// Store time of the message at `offset` of a queue, 0 if there is none.
    fn store_time_at(&self, topic: &str, queue_id: i32, offset: i64) -> i64 {
        if offset < 0 {
            return 0;
        }
        match self
            .ctx
            .store
            .get_messages(topic, queue_id, offset, 1, usize::MAX)
        {
            Ok(r) if r.status == GetStatus::Found => r
                .messages
                .first()
                .and_then(|(_, buf)| buf.decode().ok().map(|m| m.store_timestamp))
                .unwrap_or(0),
            _ => 0,
        }
    }

    fn queue(&self, topic: &str, queue_id: i32) -> MessageQueue {
        MessageQueue {
            broker_name: self.ctx.config.broker_name.clone(),
            queue_id,
            topic: topic.to_string(),
        }
    }

    fn topic_stats(&self, request: &RemotingCommand) -> ProcessResult {
        let h: GetTopicStatsInfoRequestHeader = request.decode_header()?;
        let config = self.ctx.topics.get(&h.topic).ok_or_else(|| {
            ProcessError::new(
                ResponseCode::TopicNotExist,
                format!("topic[{}] not exist", h.topic),
            )
        })?;
        let mut stats = TopicStatsTable::default();
        for queue_id in 0..config.write_queue_nums {
            let store = &self.ctx.store;
            let max_offset = store.max_offset_in_queue(&h.topic, queue_id);
            stats.offset_table.insert(
                self.queue(&h.topic, queue_id),
                TopicOffset {
                    last_update_timestamp: self.store_time_at(&h.topic, queue_id, max_offset - 1),
                    max_offset,
                    min_offset: store.min_offset_in_queue(&h.topic, queue_id),
                },
            );
        }
        Ok(Some(
            RemotingCommand::success().with_body(stats.to_fastjson()),
        ))
    }

    fn consume_stats(&self, request: &RemotingCommand) -> ProcessResult {
        let h: GetConsumeStatsRequestHeader = request.decode_header()?;
        let topics: Vec<String> = match (&h.topic, &h.topic_list) {
            (Some(t), _) if !t.is_empty() => vec![t.clone()],
            (_, Some(list)) if !list.is_empty() => list
                .split(';')
                .filter(|t| !t.is_empty())
                .map(str::to_string)
                .collect(),
            _ => self.ctx.offsets.topics_of_group(&h.consumer_group),
        };
        let mut stats = ConsumeStats::default();
        for topic in topics {
            let Some(config) = self.ctx.topics.get(&topic) else {
                continue;
            };
            for queue_id in 0..config.write_queue_nums {
                let broker_offset = self.ctx.store.max_offset_in_queue(&topic, queue_id);
                let consumer_offset = self
                    .ctx
                    .offsets
                    .query(&h.consumer_group, &topic, queue_id)
                    .unwrap_or(0)
                    .max(0);
                stats.offset_table.insert(
                    self.queue(&topic, queue_id),
                    OffsetWrapper {
                        broker_offset,
                        consumer_offset,
                        last_timestamp: self.store_time_at(&topic, queue_id, consumer_offset - 1),
                        pull_offset: consumer_offset,
                    },
                );
            }
        }
        Ok(Some(
            RemotingCommand::success().with_body(stats.to_fastjson()),
        ))
    }
}

impl RequestProcessor for AdminProcessor {
    fn process(&self, _ctx: &RequestContext, request: RemotingCommand) -> Reply {
        // Admin requests write metadata files (fsync + rename) and read store files: run
        // them on the blocking pool, away from the tasks serving sends and pulls.
        let this = Self {
            ctx: self.ctx.clone(),
        };
        Reply::Later(Box::pin(blocking(move || this.handle(request))))
    }
}

impl AdminProcessor {
    fn handle(&self, request: RemotingCommand) -> ProcessResult {
        match request.request_code() {
            Some(RequestCode::UPDATE_AND_CREATE_TOPIC) => self.create_topic(&request),
            Some(RequestCode::DELETE_TOPIC_IN_BROKER) => self.delete_topic(&request),
            Some(RequestCode::GET_ALL_TOPIC_CONFIG) => Ok(Some(
                RemotingCommand::success().with_body(json_body(&self.ctx.topics.snapshot())),
            )),
            Some(RequestCode::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP) => self.create_group(&request),
            Some(RequestCode::DELETE_SUBSCRIPTIONGROUP) => self.delete_group(&request),
            Some(RequestCode::GET_TOPIC_STATS_INFO) => self.topic_stats(&request),
            Some(RequestCode::GET_CONSUME_STATS) => self.consume_stats(&request),
            Some(RequestCode::GET_ALL_SUBSCRIPTIONGROUP_CONFIG) => Ok(Some(
                RemotingCommand::success().with_body(self.ctx.groups.snapshot_json()),
            )),
            _ => Err(unsupported(request.code)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_parse() {
        let a = parse_attributes("+message.type=FIFO, +x=1").unwrap();
        assert_eq!(a["message.type"], "FIFO");
        assert_eq!(a["x"], "1");
        assert!(parse_attributes("-message.type").is_err());
        assert!(parse_attributes("+novalue").is_err());
        assert!(parse_attributes("").unwrap().is_empty());
    }
}
