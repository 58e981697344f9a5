//! Broker-level administration: GET_BROKER_RUNTIME_INFO (28), GET_BROKER_CONFIG (26),
//! UPDATE_BROKER_CONFIG (25), GET_CONSUMER_CONNECTION_LIST (203),
//! GET_PRODUCER_CONNECTION_LIST (204) and INVOKE_BROKER_TO_RESET_OFFSET (222).

use std::collections::BTreeMap;
use std::sync::Arc;

use rocketmq_common::admin::{Connection, ConsumerConnection, ProducerConnection, ResetOffsetBody};
use rocketmq_common::body::MessageQueue;
use rocketmq_common::config::Properties;
use rocketmq_common::protocol::headers::broker::{
    GetBrokerConfigResponseHeader, GetConsumerConnectionListRequestHeader,
    GetProducerConnectionListRequestHeader, ResetOffsetRequestHeader,
};
use rocketmq_common::protocol::{CURRENT_VERSION_DESC, RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{
    ProcessError, ProcessResult, Reply, RequestContext, RequestProcessor,
};
use rocketmq_common::route::KvTable;
use rocketmq_common::topic::SCHEDULE_TOPIC;

use super::{BrokerContext, json_body, unsupported};
use crate::clients::ClientChannel;
use rocketmq_store::BoundaryType;
use rocketmq_store::cleanup::{disk_space, disk_usage_ratio};

/// Handles broker-level admin codes.
pub struct BrokerAdminProcessor {
    ctx: Arc<BrokerContext>,
}

/// `N B`, `x.y KiB`, ... as Java's `UtilAll.humanReadableByteCount(bytes, false)`.
fn human_bytes(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let exp = ((bytes as f64).ln() / 1024f64.ln()) as usize;
    let exp = exp.clamp(1, units.len());
    format!(
        "{:.1} {}",
        bytes as f64 / 1024f64.powi(exp as i32),
        units[exp - 1]
    )
}

fn connection(c: &ClientChannel) -> Connection {
    Connection {
        client_addr: c.connection.peer().to_string(),
        client_id: c.client_id.clone(),
        language: c.language.name().to_string(),
        version: c.version,
    }
}

impl BrokerAdminProcessor {
    /// A processor over the shared context.
    pub fn new(ctx: Arc<BrokerContext>) -> Self {
        Self { ctx }
    }

    /// The runtime table (`BrokerController`/`StoreStatsService` keys).
    pub fn runtime_info(&self) -> BTreeMap<String, String> {
        let ctx = &self.ctx;
        let mut t = BTreeMap::new();
        ctx.metrics.stats.runtime_info(&mut t);
        let store = &ctx.store;
        let commitlog = store.commitlog();
        let mut put = |k: &str, v: String| {
            t.insert(k.to_string(), v);
        };
        put("brokerVersionDesc", CURRENT_VERSION_DESC.into());
        put(
            "brokerVersion",
            rocketmq_common::protocol::CURRENT_VERSION.to_string(),
        );
        put("rocketmqRsVersion", env!("CARGO_PKG_VERSION").into());
        // Java: whether the master-only services run, i.e. this broker is the master.
        put(
            "brokerActive",
            (!ctx.is_shutting_down() && ctx.replication.is_master()).to_string(),
        );
        let role = ctx.replication.role_state();
        put(
            "brokerRole",
            match role.role {
                crate::ha::Role::Master if ctx.config.ha.enable_controller_mode => "SYNC_MASTER",
                crate::ha::Role::Master => match ctx.config.ha.broker_role {
                    crate::ha::BrokerRole::SyncMaster => "SYNC_MASTER",
                    _ => "ASYNC_MASTER",
                },
                crate::ha::Role::Slave => "SLAVE",
                crate::ha::Role::Pending => "PENDING",
            }
            .into(),
        );
        put("masterEpoch", role.master_epoch.to_string());
        put("commitLogMinOffset", commitlog.min_offset().to_string());
        put("commitLogMaxOffset", commitlog.max_offset().to_string());
        put(
            "dispatchBehindBytes",
            (commitlog.max_offset() - store.dispatched_offset())
                .max(0)
                .to_string(),
        );
        put(
            "remainHowManyDataToFlush",
            human_bytes((commitlog.max_offset() - store.flushed_offset()).max(0) as u64),
        );
        put(
            "earliestMessageTimeStamp",
            commitlog
                .store_timestamp_at(commitlog.min_offset())
                .unwrap_or(-1)
                .to_string(),
        );
        put("pageCacheLockTimeMills", "0".into());
        put("startAcceptSendRequestTimeStamp", "0".into());
        put("remainTransientStoreBufferNumbs", i32::MAX.to_string());
        let config = store.config();
        let ratio = |p: &std::path::Path| {
            disk_usage_ratio(p).map_or("-1".to_string(), |r| {
                format!("{}", (r * 100.0).ceil() / 100.0)
            })
        };
        put(
            &format!(
                "commitLogDiskRatio_{}",
                config.store_path_commit_log.display()
            ),
            ratio(&config.store_path_commit_log),
        );
        put("commitLogDiskRatio", ratio(&config.store_path_commit_log));
        put("consumeQueueDiskRatio", ratio(&config.consume_queue_dir()));
        if let Ok(space) = disk_space(&config.store_path_root_dir) {
            put(
                "commitLogDirCapacity",
                format!(
                    "Total : {}, Free : {}.",
                    human_bytes(space.total),
                    human_bytes(space.free)
                ),
            );
        }
        for (level, delivered) in ctx.schedule.delivered_offsets() {
            let max = store.max_offset_in_queue(SCHEDULE_TOPIC, level - 1);
            put(
                &format!("scheduleMessageOffset_{level}"),
                format!("{delivered},{max}"),
            );
        }
        match &ctx.timer {
            Some(timer) => {
                put(
                    "timerReadBehind",
                    (timer.dequeue_lag_ms() / 1000).to_string(),
                );
                put("timerOffsetBehind", timer.enqueue_backlog().to_string());
                put("timerCongestNum", "0".into());
                put("timerEnqueueTps", "0.0".into());
                put("timerDequeueTps", "0.0".into());
            }
            None => {
                for k in ["timerReadBehind", "timerOffsetBehind", "timerCongestNum"] {
                    put(k, "0".into());
                }
                put("timerEnqueueTps", "0.0".into());
                put("timerDequeueTps", "0.0".into());
            }
        }
        // Requests run on one runtime without per-kind pools: no queues to report.
        for pool in ["send", "pull", "litePull", "query", "ack"] {
            put(&format!("{pool}ThreadPoolQueueSize"), "0".into());
            put(&format!("{pool}ThreadPoolQueueCapacity"), "0".into());
            put(
                &format!("{pool}ThreadPoolQueueHeadWaitTimeMills"),
                "0".into(),
            );
        }
        put("EndTransactionQueueSize", "0".into());
        put("EndTransactionThreadPoolQueueCapacity", "0".into());
        t
    }

    fn broker_config(&self) -> ProcessResult {
        let mut all = self.ctx.config.to_properties();
        all.extend(self.ctx.live.values());
        let mut body = String::new();
        for (k, v) in &all {
            body.push_str(k);
            body.push('=');
            body.push_str(v);
            body.push('\n');
        }
        let version = self.ctx.live.data_version_json();
        Ok(Some(
            RemotingCommand::success()
                .with_header(&GetBrokerConfigResponseHeader { version })
                .with_body(body.into_bytes()),
        ))
    }

    fn update_broker_config(&self, request: &RemotingCommand) -> ProcessResult {
        let text = std::str::from_utf8(&request.body).map_err(|_| {
            ProcessError::new(
                ResponseCode::SystemError,
                "string2Properties error: not UTF-8",
            )
        })?;
        let updates = Properties::parse(text);
        if updates.is_empty() {
            return Ok(Some(RemotingCommand::success()));
        }
        const BLACK_LIST: [&str; 3] = ["brokerConfigPath", "rocketmqHome", "configBlackList"];
        if updates.iter().any(|(k, _)| BLACK_LIST.contains(&k)) {
            return Err(ProcessError::new(
                ResponseCode::NoPermission,
                "Can not update config in black list.",
            ));
        }
        let update = self
            .ctx
            .live
            .update(&updates)
            .map_err(|e| ProcessError::new(ResponseCode::InvalidParameter, e))?;
        tracing::info!(keys = ?update.applied, "broker config updated at runtime");
        if update.permission_changed {
            // Name servers must see the new permission on the broker's topics at once.
            self.ctx.topics.bump_version();
            self.ctx.registration.trigger();
        }
        Ok(Some(RemotingCommand::success()))
    }

    fn consumer_connections(&self, request: &RemotingCommand) -> ProcessResult {
        let h: GetConsumerConnectionListRequestHeader = request.decode_header()?;
        let Some(group) = self.ctx.clients.consumer_group(&h.consumer_group) else {
            return Err(ProcessError::new(
                ResponseCode::ConsumerNotOnline,
                format!("the consumer group[{}] not online", h.consumer_group),
            ));
        };
        let mut connection_set: Vec<Connection> = group.channels.values().map(connection).collect();
        connection_set.sort();
        let body = ConsumerConnection {
            connection_set,
            consume_from_where: group.consume_from_where.clone(),
            consume_type: group.consume_type.clone(),
            message_model: group.message_model.clone(),
            subscription_table: group.subscriptions.into_iter().collect(),
        };
        Ok(Some(RemotingCommand::success().with_body(json_body(&body))))
    }

    fn producer_connections(&self, request: &RemotingCommand) -> ProcessResult {
        let h: GetProducerConnectionListRequestHeader = request.decode_header()?;
        let mut connection_set: Vec<Connection> = self
            .ctx
            .clients
            .producer_group(&h.producer_group)
            .iter()
            .map(connection)
            .collect();
        if connection_set.is_empty() {
            return Err(ProcessError::new(
                ResponseCode::SystemError,
                format!("the producer group[{}] not exist", h.producer_group),
            ));
        }
        connection_set.sort();
        Ok(Some(RemotingCommand::success().with_body(json_body(
            &ProducerConnection { connection_set },
        ))))
    }

    /// Server-side reset: the new offsets are committed at once and each consumer learns
    /// its queue's offset on its next pull (PULL_OFFSET_MOVED).
    fn reset_offset(&self, request: &RemotingCommand) -> ProcessResult {
        let h: ResetOffsetRequestHeader = request.decode_header()?;
        let ctx = &self.ctx;
        let topic = ctx.topics.get(&h.topic).ok_or_else(|| {
            ProcessError::new(
                ResponseCode::TopicNotExist,
                format!("Topic {} does not exist", h.topic),
            )
        })?;
        if ctx.groups.get(&h.group).is_none() {
            return Err(ProcessError::new(
                ResponseCode::SubscriptionGroupNotExist,
                format!("Group {} does not exist", h.group),
            ));
        }
        let queue_id = h.queue_id.unwrap_or(-1);
        let queues: Vec<i32> = if queue_id >= 0 {
            if queue_id >= topic.read_queue_nums {
                return Err(ProcessError::new(
                    ResponseCode::InvalidParameter,
                    format!("queueId {queue_id} out of range for topic {}", h.topic),
                ));
            }
            vec![queue_id]
        } else {
            (0..topic.read_queue_nums).collect()
        };
        let mut body = ResetOffsetBody::default();
        for q in queues {
            let (min, max) = (
                ctx.store.min_offset_in_queue(&h.topic, q),
                ctx.store.max_offset_in_queue(&h.topic, q),
            );
            let target = match h.offset.filter(|o| *o != -1 && queue_id >= 0) {
                Some(o) if (min..=max).contains(&o) => o,
                Some(o) => {
                    return Err(ProcessError::new(
                        ResponseCode::SystemError,
                        format!("Target offset {o} not in consume queue range [{min}-{max}]"),
                    ));
                }
                None if h.timestamp < 0 => max,
                None => ctx
                    .store
                    .offset_by_time(&h.topic, q, h.timestamp, BoundaryType::Lower),
            };
            ctx.offsets.assign_reset(&h.group, &h.topic, q, target);
            body.offset_table.insert(
                MessageQueue {
                    broker_name: ctx.config.broker_name.clone(),
                    queue_id: q,
                    topic: h.topic.clone(),
                },
                target,
            );
        }
        tracing::info!(group = %h.group, topic = %h.topic, timestamp = h.timestamp, queues = body.offset_table.len(), "consumer offsets reset");
        Ok(Some(
            RemotingCommand::success().with_body(body.to_fastjson()),
        ))
    }
}

impl RequestProcessor for BrokerAdminProcessor {
    fn process(&self, _ctx: &RequestContext, request: RemotingCommand) -> Reply {
        Reply::Now(match request.request_code() {
            Some(RequestCode::GET_BROKER_RUNTIME_INFO) => Ok(Some(
                RemotingCommand::success().with_body(json_body(&KvTable {
                    table: self.runtime_info(),
                })),
            )),
            Some(RequestCode::GET_BROKER_CONFIG) => self.broker_config(),
            Some(RequestCode::UPDATE_BROKER_CONFIG) => self.update_broker_config(&request),
            Some(RequestCode::GET_CONSUMER_CONNECTION_LIST) => self.consumer_connections(&request),
            Some(RequestCode::GET_PRODUCER_CONNECTION_LIST) => self.producer_connections(&request),
            Some(RequestCode::INVOKE_BROKER_TO_RESET_OFFSET) => self.reset_offset(&request),
            _ => Err(unsupported(request.code)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_like_java() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(5 * 1024 * 1024 + 512 * 1024), "5.5 MiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
