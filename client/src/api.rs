//! [`MqClient`]: one method per RocketMQ name server and broker request, over a pooled
//! [`RemotingClient`].
//!
//! Name server queries go to the first name server that answers, in the order given (Java
//! picks one and fails over the same way); writes that every name server must see
//! (DELETE_TOPIC_IN_NAMESRV, PUT_KV_CONFIG) go to each of them.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rocketmq_common::admin::{
    ConsumeStats, ConsumerConnection, ProducerConnection, ResetOffsetBody, TopicStatsTable,
};
use rocketmq_common::json::from_slice_lenient;
use rocketmq_common::protocol::headers::broker::{
    CreateTopicRequestHeader, DeleteSubscriptionGroupRequestHeader, DeleteTopicRequestHeader,
    EndTransactionRequestHeader, GetConsumeStatsRequestHeader,
    GetConsumerConnectionListRequestHeader, GetMaxOffsetRequestHeader,
    GetProducerConnectionListRequestHeader, GetTopicStatsInfoRequestHeader, OffsetResponseHeader,
    PullMessageRequestHeader, PullMessageResponseHeader, QueryMessageRequestHeader,
    QueueRequestHeader, ResetOffsetRequestHeader, SearchOffsetRequestHeader,
    SendMessageRequestHeader, SendMessageRequestHeaderV2, SendMessageResponseHeader,
    UpdateConsumerOffsetRequestHeader, ViewMessageRequestHeader,
};
use rocketmq_common::protocol::headers::namesrv::{
    DeleteTopicFromNamesrvRequestHeader, GetKvConfigResponseHeader, GetRouteInfoRequestHeader,
    KvConfigKeyRequestHeader, PutKvConfigRequestHeader, RegisterBrokerRequestHeader,
    RegisterBrokerResponseHeader, UnregisterBrokerRequestHeader,
};
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{ClientConfig, RemotingClient};
use rocketmq_common::route::{
    BrokerData, ClusterInfo, KvTable, MASTER_ID, TopicConfig, TopicList, TopicRouteData,
};

use crate::error::{ClientError, check_success};
use crate::message::StoredMessage;

/// Template topic brokers copy settings from when creating a topic
/// (`TopicValidator.AUTO_CREATE_TOPIC_KEY_TOPIC`).
pub const AUTO_CREATE_TOPIC_KEY: &str = "TBW102";
/// Extension field that turns QUERY_MESSAGE into a lookup by unique key
/// (`MixAll.UNIQUE_MSG_QUERY_FLAG`).
pub const UNIQUE_KEY_QUERY_FLAG: &str = "_UNIQUE_KEY_QUERY";
/// KV namespace of ordered-topic queue layouts (`NamesrvUtil.NAMESPACE_ORDER_TOPIC_CONFIG`).
pub const ORDER_TOPIC_CONFIG_NAMESPACE: &str = "ORDER_TOPIC_CONFIG";
/// Default request timeout (`DefaultMQAdminExt.timeoutMillis`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client for the admin requests of name servers and brokers.
#[derive(Clone)]
pub struct MqClient {
    remoting: RemotingClient,
    namesrv_addrs: Vec<String>,
    timeout: Duration,
}

/// Splits a `-n` value (`host:port;host:port`) into addresses, dropping blanks.
pub fn parse_namesrv_addrs(list: &str) -> Vec<String> {
    list.split(';')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect()
}

impl MqClient {
    /// A client for the name servers in `namesrv_list` (`;`-separated) with a per-request
    /// `timeout`.
    pub fn new(namesrv_list: &str, timeout: Duration) -> Result<Self, ClientError> {
        let namesrv_addrs = parse_namesrv_addrs(namesrv_list);
        if namesrv_addrs.is_empty() {
            return Err(ClientError::NoNameServer);
        }
        let config = ClientConfig {
            // Connecting never takes longer than a request may, nor than Java's 3 s limit.
            connect_timeout: timeout.min(Duration::from_secs(3)),
            ..ClientConfig::default()
        };
        Ok(Self {
            remoting: RemotingClient::new(config),
            namesrv_addrs,
            timeout,
        })
    }

    /// A client over an existing Remoting client (its connections and the handler of
    /// requests servers send back), for `namesrv_addrs` (possibly none: then only calls to
    /// explicit addresses work).
    pub fn with_remoting(
        remoting: RemotingClient,
        namesrv_addrs: Vec<String>,
        timeout: Duration,
    ) -> Self {
        Self {
            remoting,
            namesrv_addrs,
            timeout,
        }
    }

    /// A client for explicit broker addresses only (no name server), with a per-request
    /// `timeout`.
    pub fn for_brokers(timeout: Duration) -> Self {
        Self::with_remoting(
            RemotingClient::new(ClientConfig::default()),
            Vec::new(),
            timeout,
        )
    }

    /// Waits until the broker at `addr` answers a request, probing every 50 ms for at most
    /// `within`; the last failure when it never does.
    pub async fn wait_until_serving(
        &self,
        addr: &str,
        within: Duration,
    ) -> Result<(), ClientError> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let probe = RemotingCommand::bare_request(RequestCode::GET_ALL_TOPIC_CONFIG);
            let failure = match self
                .remoting
                .invoke_ok(addr, probe, Duration::from_secs(1))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if std::time::Instant::now() >= deadline {
                return Err(failure.into());
            }
            // A refused connection is cached; drop it so the next probe dials again.
            self.remoting.close(addr);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (polling every 100 ms, at most `within`) until the name servers have a route
    /// for `topic` — a topic created on a broker reaches them with its next registration.
    pub async fn wait_for_route(&self, topic: &str, within: Duration) -> Result<(), ClientError> {
        let deadline = std::time::Instant::now() + within;
        loop {
            match self.topic_route(topic).await {
                Ok(_) => return Ok(()),
                Err(e) if std::time::Instant::now() >= deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// The master of the first broker group (by name) the name servers know, in any
    /// cluster.
    pub async fn first_master(&self) -> Result<String, ClientError> {
        let info = self.cluster_info().await?;
        info.broker_addr_table
            .values()
            .find_map(|b| b.broker_addrs.get(&MASTER_ID).cloned())
            .ok_or_else(|| ClientError::NoMasterInCluster {
                cluster: "(any)".to_string(),
            })
    }

    /// The name server addresses, in the order they are tried.
    pub fn namesrv_addrs(&self) -> &[String] {
        &self.namesrv_addrs
    }

    /// The Remoting client underneath.
    pub fn remoting(&self) -> &RemotingClient {
        &self.remoting
    }

    /// REGISTER_BROKER (103) to the name server at `addr`; the answer names the group's
    /// master for a registering slave.
    pub async fn register_broker(
        &self,
        addr: &str,
        header: &RegisterBrokerRequestHeader,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<RegisterBrokerResponseHeader, ClientError> {
        let request =
            RemotingCommand::request(RequestCode::REGISTER_BROKER, header).with_body(body);
        let response = check_success(addr, self.remoting.invoke(addr, request, timeout).await?)?;
        response
            .decode_header()
            .map_err(|e| ClientError::bad_body(addr, "register response header", e))
    }

    /// UNREGISTER_BROKER (104) to the name server at `addr`.
    pub async fn unregister_broker(
        &self,
        addr: &str,
        header: &UnregisterBrokerRequestHeader,
    ) -> Result<(), ClientError> {
        let request = RemotingCommand::request(RequestCode::UNREGISTER_BROKER, header);
        check_success(
            addr,
            self.remoting.invoke(addr, request, self.timeout).await?,
        )
        .map(drop)
    }

    /// Sends `request` to the first name server that answers; returns the answer whatever
    /// its code, with the address that gave it.
    async fn namesrv_invoke(
        &self,
        request: RemotingCommand,
    ) -> Result<(String, RemotingCommand), ClientError> {
        let mut last_error = None;
        for addr in &self.namesrv_addrs {
            match self
                .remoting
                .invoke(addr, request.clone(), self.timeout)
                .await
            {
                Ok(response) => return Ok((addr.clone(), response)),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.map_or(ClientError::NoNameServer, ClientError::from))
    }

    /// Like [`namesrv_invoke`](Self::namesrv_invoke), but an error code is an error.
    async fn namesrv_invoke_ok(
        &self,
        request: RemotingCommand,
    ) -> Result<(String, RemotingCommand), ClientError> {
        let (addr, response) = self.namesrv_invoke(request).await?;
        check_success(&addr, response).map(|r| (addr, r))
    }

    async fn broker_invoke_ok(
        &self,
        addr: &str,
        request: RemotingCommand,
    ) -> Result<RemotingCommand, ClientError> {
        Ok(self.remoting.invoke_ok(addr, request, self.timeout).await?)
    }

    /// GET_BROKER_EPOCH_CACHE (1007): the broker's epoch entries (JSON body).
    pub async fn broker_epoch_cache(&self, addr: &str) -> Result<Vec<u8>, ClientError> {
        let request = RemotingCommand::bare_request(RequestCode::GET_BROKER_EPOCH_CACHE);
        Ok(self.broker_invoke_ok(addr, request).await?.body.to_vec())
    }

    /// The per-request timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// GET_BROKER_CLUSTER_INFO (106).
    pub async fn cluster_info(&self) -> Result<ClusterInfo, ClientError> {
        let request = RemotingCommand::bare_request(RequestCode::GET_BROKER_CLUSTER_INFO);
        let (addr, response) = self.namesrv_invoke_ok(request).await?;
        from_slice_lenient(&response.body)
            .map_err(|e| ClientError::bad_body(&addr, "cluster info (ClusterInfo)", e))
    }

    /// GET_ALL_TOPIC_LIST_FROM_NAMESERVER (206).
    pub async fn topic_list(&self) -> Result<TopicList, ClientError> {
        let request =
            RemotingCommand::bare_request(RequestCode::GET_ALL_TOPIC_LIST_FROM_NAMESERVER);
        let (addr, response) = self.namesrv_invoke_ok(request).await?;
        from_slice_lenient(&response.body)
            .map_err(|e| ClientError::bad_body(&addr, "topic list (TopicList)", e))
    }

    /// GET_ROUTEINFO_BY_TOPIC (105); TOPIC_NOT_EXIST becomes [`ClientError::TopicNotFound`].
    pub async fn topic_route(&self, topic: &str) -> Result<TopicRouteData, ClientError> {
        let header = GetRouteInfoRequestHeader {
            topic: topic.to_string(),
            accept_standard_json_only: Some(true),
        };
        let request = RemotingCommand::request(RequestCode::GET_ROUTEINFO_BY_TOPIC, &header);
        let (addr, response) = self.namesrv_invoke(request).await?;
        if response.code == ResponseCode::TopicNotExist.as_i32() {
            return Err(ClientError::TopicNotFound {
                topic: topic.to_string(),
            });
        }
        let response = check_success(&addr, response)?;
        from_slice_lenient(&response.body)
            .map_err(|e| ClientError::bad_body(&addr, "topic route (TopicRouteData)", e))
    }

    /// Master addresses of every broker group of `cluster`, sorted
    /// (`CommandUtil.fetchMasterAddrByClusterName`).
    pub async fn cluster_master_addrs(&self, cluster: &str) -> Result<Vec<String>, ClientError> {
        let info = self.cluster_info().await?;
        master_addrs_of_cluster(&info, cluster)
    }

    /// UPDATE_AND_CREATE_TOPIC (17) to the broker at `addr`.
    pub async fn create_topic(&self, addr: &str, config: &TopicConfig) -> Result<(), ClientError> {
        let request = RemotingCommand::request(
            RequestCode::UPDATE_AND_CREATE_TOPIC,
            &create_topic_header(config),
        );
        self.broker_invoke_ok(addr, request).await.map(drop)
    }

    /// DELETE_TOPIC_IN_BROKER (215) to the broker at `addr`.
    pub async fn delete_topic_in_broker(&self, addr: &str, topic: &str) -> Result<(), ClientError> {
        let header = DeleteTopicRequestHeader {
            topic: topic.to_string(),
        };
        let request = RemotingCommand::request(RequestCode::DELETE_TOPIC_IN_BROKER, &header);
        self.broker_invoke_ok(addr, request).await.map(drop)
    }

    /// DELETE_TOPIC_IN_NAMESRV (216) to the name server at `namesrv_addr`, limited to the
    /// brokers of `cluster` when given.
    pub async fn delete_topic_in_namesrv(
        &self,
        namesrv_addr: &str,
        topic: &str,
        cluster: Option<&str>,
    ) -> Result<(), ClientError> {
        let header = DeleteTopicFromNamesrvRequestHeader {
            topic: topic.to_string(),
            cluster_name: cluster.map(str::to_string),
        };
        let request = RemotingCommand::request(RequestCode::DELETE_TOPIC_IN_NAMESRV, &header);
        let response = self
            .remoting
            .invoke(namesrv_addr, request, self.timeout)
            .await?;
        check_success(namesrv_addr, response).map(drop)
    }

    /// PUT_KV_CONFIG (100) to every name server; fails if any of them refuses.
    pub async fn put_kv_config_everywhere(
        &self,
        namespace: &str,
        key: &str,
        value: &str,
    ) -> Result<(), ClientError> {
        let header = PutKvConfigRequestHeader {
            namespace: namespace.to_string(),
            key: key.to_string(),
            value: value.to_string(),
        };
        for addr in &self.namesrv_addrs {
            let request = RemotingCommand::request(RequestCode::PUT_KV_CONFIG, &header);
            let response = self.remoting.invoke(addr, request, self.timeout).await?;
            check_success(addr, response)?;
        }
        Ok(())
    }

    /// GET_KV_CONFIG (101) from the first name server that answers; `None` when the key is
    /// not set (or the name server refuses to say).
    pub async fn kv_config(
        &self,
        namespace: &str,
        key: &str,
    ) -> Result<Option<String>, ClientError> {
        let header = KvConfigKeyRequestHeader {
            namespace: namespace.to_string(),
            key: key.to_string(),
        };
        let request = RemotingCommand::request(RequestCode::GET_KV_CONFIG, &header);
        let (addr, response) = self.namesrv_invoke(request).await?;
        if response.code != ResponseCode::Success.as_i32() {
            return Ok(None);
        }
        let header: GetKvConfigResponseHeader = response
            .decode_header()
            .map_err(|e| ClientError::bad_body(&addr, "GET_KV_CONFIG response header", e))?;
        Ok(header.value)
    }

    /// UPDATE_AND_CREATE_SUBSCRIPTIONGROUP (200) with a SubscriptionGroupConfig JSON body.
    pub async fn create_subscription_group(
        &self,
        addr: &str,
        body: Vec<u8>,
    ) -> Result<(), ClientError> {
        let request =
            RemotingCommand::bare_request(RequestCode::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP)
                .with_body(body);
        self.broker_invoke_ok(addr, request).await.map(drop)
    }

    /// DELETE_SUBSCRIPTIONGROUP (207) to the broker at `addr`; `clean_offset` also drops the
    /// group's committed offsets.
    pub async fn delete_subscription_group(
        &self,
        addr: &str,
        group: &str,
        clean_offset: bool,
    ) -> Result<(), ClientError> {
        let header = DeleteSubscriptionGroupRequestHeader {
            group_name: group.to_string(),
            clean_offset: Some(clean_offset),
        };
        let request = RemotingCommand::request(RequestCode::DELETE_SUBSCRIPTIONGROUP, &header);
        self.broker_invoke_ok(addr, request).await.map(drop)
    }

    /// GET_TOPIC_STATS_INFO (202) from the broker at `addr`.
    pub async fn topic_stats(
        &self,
        addr: &str,
        topic: &str,
    ) -> Result<TopicStatsTable, ClientError> {
        let header = GetTopicStatsInfoRequestHeader {
            topic: topic.to_string(),
        };
        let request = RemotingCommand::request(RequestCode::GET_TOPIC_STATS_INFO, &header);
        let response = self.broker_invoke_ok(addr, request).await?;
        TopicStatsTable::from_fastjson(&response.body).map_err(|e| (addr, e).into())
    }

    /// GET_CONSUME_STATS (208) from the broker at `addr`, optionally for one topic.
    pub async fn consume_stats(
        &self,
        addr: &str,
        group: &str,
        topic: Option<&str>,
    ) -> Result<ConsumeStats, ClientError> {
        let header = GetConsumeStatsRequestHeader {
            consumer_group: group.to_string(),
            topic: topic.map(str::to_string),
            topic_list: None,
        };
        let request = RemotingCommand::request(RequestCode::GET_CONSUME_STATS, &header);
        let response = self.broker_invoke_ok(addr, request).await?;
        ConsumeStats::from_fastjson(&response.body).map_err(|e| (addr, e).into())
    }

    /// QUERY_MESSAGE (12) to the broker at `addr`; `unique_key` asks for a lookup by the
    /// producer's unique id instead of a business key. QUERY_NOT_FOUND is an empty answer.
    pub async fn query_message(
        &self,
        addr: &str,
        header: &QueryMessageRequestHeader,
        unique_key: bool,
    ) -> Result<Vec<StoredMessage>, ClientError> {
        let mut request = RemotingCommand::request(RequestCode::QUERY_MESSAGE, header);
        request
            .ext_fields
            .get_or_insert_with(Default::default)
            .insert(UNIQUE_KEY_QUERY_FLAG.to_string(), unique_key.to_string());
        let response = self.remoting.invoke(addr, request, self.timeout).await?;
        if response.code == ResponseCode::QueryNotFound.as_i32() {
            return Ok(Vec::new());
        }
        let response = check_success(addr, response)?;
        StoredMessage::decode_all(&response.body).map_err(|e| (addr, e).into())
    }

    /// VIEW_MESSAGE_BY_ID (33): the record at CommitLog `offset` on the broker at `addr`.
    pub async fn view_message(
        &self,
        addr: &str,
        topic: &str,
        offset: i64,
    ) -> Result<StoredMessage, ClientError> {
        let header = ViewMessageRequestHeader {
            topic: Some(topic.to_string()),
            offset,
        };
        let request = RemotingCommand::request(RequestCode::VIEW_MESSAGE_BY_ID, &header);
        let response = self.broker_invoke_ok(addr, request).await?;
        StoredMessage::decode(&response.body).map_err(|e| (addr, e).into())
    }

    /// GET_BROKER_CONFIG (26): the broker's settings in effect, as `key=value` pairs.
    pub async fn broker_config(&self, addr: &str) -> Result<Vec<(String, String)>, ClientError> {
        let request = RemotingCommand::bare_request(RequestCode::GET_BROKER_CONFIG);
        let response = self.broker_invoke_ok(addr, request).await?;
        let text = std::str::from_utf8(&response.body)
            .map_err(|e| ClientError::bad_body(addr, "broker config (properties)", e))?;
        Ok(rocketmq_common::config::Properties::parse(text)
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect())
    }

    /// UPDATE_BROKER_CONFIG (25) of one key.
    pub async fn update_broker_config(
        &self,
        addr: &str,
        key: &str,
        value: &str,
    ) -> Result<(), ClientError> {
        self.update_broker_config_entries(addr, &[(key, value)])
            .await
    }

    /// UPDATE_BROKER_CONFIG (25) of several keys at once (the broker applies all or none).
    pub async fn update_broker_config_entries(
        &self,
        addr: &str,
        entries: &[(&str, &str)],
    ) -> Result<(), ClientError> {
        let body: String = entries.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        let request = RemotingCommand::bare_request(RequestCode::UPDATE_BROKER_CONFIG)
            .with_body(body.into_bytes());
        self.broker_invoke_ok(addr, request).await?;
        Ok(())
    }

    /// GET_CONSUMER_CONNECTION_LIST (203).
    pub async fn consumer_connection(
        &self,
        addr: &str,
        group: &str,
    ) -> Result<ConsumerConnection, ClientError> {
        let request = RemotingCommand::request(
            RequestCode::GET_CONSUMER_CONNECTION_LIST,
            &GetConsumerConnectionListRequestHeader {
                consumer_group: group.to_string(),
            },
        );
        let response = self.broker_invoke_ok(addr, request).await?;
        from_slice_lenient(&response.body)
            .map_err(|e| ClientError::bad_body(addr, "consumer connections", e))
    }

    /// GET_PRODUCER_CONNECTION_LIST (204).
    pub async fn producer_connection(
        &self,
        addr: &str,
        group: &str,
    ) -> Result<ProducerConnection, ClientError> {
        let request = RemotingCommand::request(
            RequestCode::GET_PRODUCER_CONNECTION_LIST,
            &GetProducerConnectionListRequestHeader {
                producer_group: group.to_string(),
            },
        );
        let response = self.broker_invoke_ok(addr, request).await?;
        from_slice_lenient(&response.body)
            .map_err(|e| ClientError::bad_body(addr, "producer connections", e))
    }

    /// INVOKE_BROKER_TO_RESET_OFFSET (222).
    pub async fn reset_offset(
        &self,
        addr: &str,
        header: &ResetOffsetRequestHeader,
    ) -> Result<ResetOffsetBody, ClientError> {
        let request = RemotingCommand::request(RequestCode::INVOKE_BROKER_TO_RESET_OFFSET, header);
        let response = self.broker_invoke_ok(addr, request).await?;
        ResetOffsetBody::from_fastjson(&response.body).map_err(|e| (addr, e).into())
    }

    /// UPDATE_CONSUMER_OFFSET (15), answered (not oneway) so failures show.
    pub async fn update_consumer_offset(
        &self,
        addr: &str,
        header: &UpdateConsumerOffsetRequestHeader,
    ) -> Result<(), ClientError> {
        let request = RemotingCommand::request(RequestCode::UPDATE_CONSUMER_OFFSET, header);
        self.broker_invoke_ok(addr, request).await?;
        Ok(())
    }

    /// GET_MIN_OFFSET (31) or GET_MAX_OFFSET (30) of a queue.
    pub async fn queue_offset(
        &self,
        addr: &str,
        topic: &str,
        queue_id: i32,
        max: bool,
    ) -> Result<i64, ClientError> {
        let request = if max {
            RemotingCommand::request(
                RequestCode::GET_MAX_OFFSET,
                &GetMaxOffsetRequestHeader {
                    topic: topic.to_string(),
                    queue_id,
                    committed: None,
                    broker_name: None,
                },
            )
        } else {
            RemotingCommand::request(
                RequestCode::GET_MIN_OFFSET,
                &QueueRequestHeader {
                    topic: topic.to_string(),
                    queue_id,
                    broker_name: None,
                },
            )
        };
        let response = self.broker_invoke_ok(addr, request).await?;
        let h: OffsetResponseHeader = response
            .decode_header()
            .map_err(|e| ClientError::bad_body(addr, "offset header", e))?;
        Ok(h.offset)
    }

    /// SEARCH_OFFSET_BY_TIMESTAMP (29): the first offset stored at or after `timestamp`.
    pub async fn search_offset(
        &self,
        addr: &str,
        topic: &str,
        queue_id: i32,
        timestamp: i64,
    ) -> Result<i64, ClientError> {
        let request = RemotingCommand::request(
            RequestCode::SEARCH_OFFSET_BY_TIMESTAMP,
            &SearchOffsetRequestHeader {
                topic: topic.to_string(),
                queue_id,
                timestamp,
                boundary_type: None,
                broker_name: None,
            },
        );
        let response = self.broker_invoke_ok(addr, request).await?;
        let h: OffsetResponseHeader = response
            .decode_header()
            .map_err(|e| ClientError::bad_body(addr, "offset header", e))?;
        Ok(h.offset)
    }

    /// PULL_MESSAGE (11) as Java's tools pull: no commit, no suspension, a TAG
    /// subscription. Returns the response code, the next offset and the messages.
    pub async fn pull(
        &self,
        addr: &str,
        queue: &PullQueue<'_>,
        offset: i64,
        max: i32,
        expression: &str,
    ) -> Result<PullBatch, ClientError> {
        let header = PullMessageRequestHeader {
            consumer_group: queue.group.to_string(),
            topic: queue.topic.to_string(),
            queue_id: queue.queue_id,
            queue_offset: offset,
            max_msg_nums: max,
            sys_flag: PULL_FLAG_SUBSCRIPTION,
            commit_offset: 0,
            suspend_timeout_millis: 0,
            subscription: Some(expression.to_string()),
            sub_version: 0,
            expression_type: Some("TAG".into()),
            ..Default::default()
        };
        let pulled = self.pull_message(addr, &header, self.timeout).await?;
        let messages = if pulled.code == ResponseCode::Success.as_i32() {
            StoredMessage::decode_all(&pulled.body).map_err(|e| ClientError::from((addr, e)))?
        } else {
            Vec::new()
        };
        Ok(PullBatch {
            status: PullStatus::from_code(pulled.code),
            next_begin_offset: pulled.header.next_begin_offset,
            min_offset: pulled.header.min_offset,
            max_offset: pulled.header.max_offset,
            messages,
        })
    }

    /// PULL_MESSAGE (11) as given (long polling when the header asks for it, with a
    /// `timeout` longer than the suspension). The pull outcomes (SUCCESS, PULL_NOT_FOUND,
    /// PULL_RETRY_IMMEDIATELY, PULL_OFFSET_MOVED) come back as they are, records undecoded;
    /// any other code is an error.
    pub async fn pull_message(
        &self,
        addr: &str,
        header: &PullMessageRequestHeader,
        timeout: Duration,
    ) -> Result<Pulled, ClientError> {
        let request = RemotingCommand::request(RequestCode::PULL_MESSAGE, header);
        let response = self.remoting.invoke(addr, request, timeout).await?;
        let code = response.code;
        let known = [
            ResponseCode::Success.as_i32(),
            ResponseCode::PullNotFound.as_i32(),
            ResponseCode::PullRetryImmediately.as_i32(),
            ResponseCode::PullOffsetMoved.as_i32(),
        ];
        if !known.contains(&code) {
            return Err(check_success(addr, response).unwrap_err());
        }
        let header: PullMessageResponseHeader = response
            .decode_header()
            .map_err(|e| ClientError::bad_body(addr, "pull header", e))?;
        Ok(Pulled {
            code,
            header,
            body: response.body,
        })
    }

    /// SEND_BATCH_MESSAGE (320) of an encoded batch; returns the response header.
    pub async fn send_batch(
        &self,
        addr: &str,
        mut header: SendMessageRequestHeader,
        body: Vec<u8>,
    ) -> Result<SendMessageResponseHeader, ClientError> {
        header.batch = Some(true);
        let header: SendMessageRequestHeaderV2 = header.into();
        let request =
            RemotingCommand::request(RequestCode::SEND_BATCH_MESSAGE, &header).with_body(body);
        let response = self.broker_invoke_ok(addr, request).await?;
        response
            .decode_header()
            .map_err(|e| ClientError::bad_body(addr, "send response header", e))
    }

    /// END_TRANSACTION (37): commits or rolls back a half message. Oneway, as producers
    /// send it, unless `answered` (then failures show).
    pub async fn end_transaction(
        &self,
        addr: &str,
        header: &EndTransactionRequestHeader,
        answered: bool,
    ) -> Result<(), ClientError> {
        let request = RemotingCommand::request(RequestCode::END_TRANSACTION, header);
        if answered {
            self.broker_invoke_ok(addr, request).await.map(drop)
        } else {
            Ok(self
                .remoting
                .invoke_oneway(addr, request, self.timeout)
                .await?)
        }
    }

    /// GET_ALL_CONSUMER_OFFSET (43): every committed offset on the broker at `addr`, keyed
    /// `topic@group`, then queue id.
    pub async fn all_consumer_offsets(
        &self,
        addr: &str,
    ) -> Result<BTreeMap<String, BTreeMap<String, i64>>, ClientError> {
        let request = RemotingCommand::bare_request(RequestCode::GET_ALL_CONSUMER_OFFSET);
        let response = self.broker_invoke_ok(addr, request).await?;
        let body: serde_json::Value = from_slice_lenient(&response.body)
            .map_err(|e| ClientError::bad_body(addr, "consumer offsets", e))?;
        let table = body
            .get("offsetTable")
            .and_then(|t| t.as_object())
            .into_iter()
            .flatten()
            .map(|(key, queues)| {
                let queues = queues
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(queue, offset)| Some((queue.clone(), offset.as_i64()?)))
                    .collect();
                (key.clone(), queues)
            })
            .collect();
        Ok(table)
    }

    /// GET_ALL_TOPIC_CONFIG (21): every topic the broker has (also a cheap liveness probe).
    pub async fn topic_configs(
        &self,
        addr: &str,
    ) -> Result<rocketmq_common::route::TopicConfigSerializeWrapper, ClientError> {
        let request = RemotingCommand::bare_request(RequestCode::GET_ALL_TOPIC_CONFIG);
        let response = self.broker_invoke_ok(addr, request).await?;
        from_slice_lenient(&response.body)
            .map_err(|e| ClientError::bad_body(addr, "topic configs", e))
    }

    /// SEND_MESSAGE_V2 (310) of one message; returns the response header.
    pub async fn send_message(
        &self,
        addr: &str,
        header: SendMessageRequestHeader,
        body: Vec<u8>,
    ) -> Result<SendMessageResponseHeader, ClientError> {
        let header: SendMessageRequestHeaderV2 = header.into();
        let request =
            RemotingCommand::request(RequestCode::SEND_MESSAGE_V2, &header).with_body(body);
        let response = self.broker_invoke_ok(addr, request).await?;
        response
            .decode_header()
            .map_err(|e| ClientError::bad_body(addr, "send response header", e))
    }

    /// HEART_BEAT (34): registers producers and consumers of this client with the broker
    /// (a producer group's connection is where the broker sends transaction checks).
    pub async fn heartbeat(
        &self,
        addr: &str,
        data: &rocketmq_common::body::HeartbeatData,
    ) -> Result<(), ClientError> {
        let request = RemotingCommand::bare_request(RequestCode::HEART_BEAT)
            .with_body(serde_json::to_vec(data).expect("heartbeats serialise"));
        self.broker_invoke_ok(addr, request).await.map(drop)
    }

    /// QUERY_CONSUMER_OFFSET (14): the group's committed offset of a queue, `None` when it
    /// has none.
    pub async fn query_consumer_offset(
        &self,
        addr: &str,
        group: &str,
        topic: &str,
        queue_id: i32,
    ) -> Result<Option<i64>, ClientError> {
        let header = rocketmq_common::protocol::headers::broker::QueryConsumerOffsetRequestHeader {
            consumer_group: group.to_string(),
            topic: topic.to_string(),
            queue_id,
            set_zero_if_not_found: Some(false),
            broker_name: None,
        };
        let request = RemotingCommand::request(RequestCode::QUERY_CONSUMER_OFFSET, &header);
        let response = self.remoting.invoke(addr, request, self.timeout).await?;
        if response.code == ResponseCode::QueryNotFound.as_i32() {
            return Ok(None);
        }
        let response = check_success(addr, response)?;
        let h: OffsetResponseHeader = response
            .decode_header()
            .map_err(|e| ClientError::bad_body(addr, "offset header", e))?;
        Ok(Some(h.offset))
    }

    /// CONSUMER_SEND_MSG_BACK (36): gives a consumed message back for redelivery, or with a
    /// negative delay level straight to the group's DLQ.
    pub async fn send_back(
        &self,
        addr: &str,
        header: &rocketmq_common::protocol::headers::broker::ConsumerSendMsgBackRequestHeader,
    ) -> Result<(), ClientError> {
        let request = RemotingCommand::request(RequestCode::CONSUMER_SEND_MSG_BACK, header);
        self.broker_invoke_ok(addr, request).await.map(drop)
    }

    /// GET_BROKER_RUNTIME_INFO (28): the broker's runtime figures (TPS, version, ...).
    pub async fn broker_runtime_info(&self, addr: &str) -> Result<KvTable, ClientError> {
        let request = RemotingCommand::bare_request(RequestCode::GET_BROKER_RUNTIME_INFO);
        let response = self.broker_invoke_ok(addr, request).await?;
        from_slice_lenient(&response.body)
            .map_err(|e| ClientError::bad_body(addr, "runtime info (KVTable)", e))
    }
}

/// PullSysFlag: the request carries its subscription.
const PULL_FLAG_SUBSCRIPTION: i32 = 0x4;

/// A pull's raw outcome.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// SUCCESS, PULL_NOT_FOUND, PULL_RETRY_IMMEDIATELY or PULL_OFFSET_MOVED.
    pub code: i32,
    /// Next offset, queue bounds, suggested broker.
    pub header: PullMessageResponseHeader,
    /// The records (CommitLog layout), back to back.
    pub body: bytes::Bytes,
}

/// Which queue a pull reads, for which group.
#[derive(Debug, Clone, Copy)]
pub struct PullQueue<'a> {
    /// Consumer group.
    pub group: &'a str,
    /// Topic.
    pub topic: &'a str,
    /// Queue.
    pub queue_id: i32,
}

/// Java's `PullStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullStatus {
    /// Messages returned.
    Found,
    /// Nothing new at this offset.
    NoNewMsg,
    /// Messages there, none matched the subscription.
    NoMatchedMsg,
    /// The offset is outside the queue.
    OffsetIllegal,
}

impl PullStatus {
    fn from_code(code: i32) -> Self {
        match ResponseCode::from_i32(code) {
            Some(ResponseCode::Success) => Self::Found,
            Some(ResponseCode::PullRetryImmediately) => Self::NoMatchedMsg,
            Some(ResponseCode::PullOffsetMoved) => Self::OffsetIllegal,
            _ => Self::NoNewMsg,
        }
    }

    /// Java's enum name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Found => "FOUND",
            Self::NoNewMsg => "NO_NEW_MSG",
            Self::NoMatchedMsg => "NO_MATCHED_MSG",
            Self::OffsetIllegal => "OFFSET_ILLEGAL",
        }
    }
}

/// What one pull returned.
#[derive(Debug, Clone)]
pub struct PullBatch {
    /// Outcome.
    pub status: PullStatus,
    /// Where the next pull starts.
    pub next_begin_offset: i64,
    /// Queue min offset.
    pub min_offset: i64,
    /// Queue max offset.
    pub max_offset: i64,
    /// Messages (empty unless found).
    pub messages: Vec<StoredMessage>,
}

/// The UPDATE_AND_CREATE_TOPIC header Java's `MQClientAPIImpl.createTopic` builds.
pub fn create_topic_header(config: &TopicConfig) -> CreateTopicRequestHeader {
    CreateTopicRequestHeader {
        topic: config.topic_name.clone(),
        default_topic: AUTO_CREATE_TOPIC_KEY.to_string(),
        read_queue_nums: config.read_queue_nums,
        write_queue_nums: config.write_queue_nums,
        perm: config.perm,
        topic_filter_type: config.topic_filter_type.clone(),
        topic_sys_flag: Some(config.topic_sys_flag),
        order: config.order,
        // Java always sends the field, empty when there are no attributes.
        attributes: Some(attributes_to_string(&config.attributes)),
        force: Some(false),
    }
}

/// `AttributeParser.parseToString`: `+k=v,-k2` (a key with an empty value stands alone).
pub fn attributes_to_string(attributes: &std::collections::BTreeMap<String, String>) -> String {
    attributes
        .iter()
        .map(|(k, v)| {
            if v.is_empty() {
                k.clone()
            } else {
                format!("{k}={v}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Master addresses of every broker group of `cluster`, sorted and de-duplicated.
pub fn master_addrs_of_cluster(
    info: &ClusterInfo,
    cluster: &str,
) -> Result<Vec<String>, ClientError> {
    let Some(names) = info.cluster_addr_table.get(cluster) else {
        return Err(ClientError::ClusterNotFound {
            cluster: cluster.to_string(),
        });
    };
    let masters: BTreeSet<String> = names
        .iter()
        .filter_map(|name| info.broker_addr_table.get(name))
        .filter_map(|data| data.broker_addrs.get(&MASTER_ID).cloned())
        .collect();
    if masters.is_empty() {
        return Err(ClientError::NoMasterInCluster {
            cluster: cluster.to_string(),
        });
    }
    Ok(masters.into_iter().collect())
}

/// The address to ask a broker group (`BrokerData.selectBrokerAddr`): its master, or else
/// its lowest-id slave (Java picks a random one; lowest keeps output reproducible).
pub fn select_broker_addr(data: &BrokerData) -> Option<&str> {
    data.broker_addrs
        .get(&MASTER_ID)
        .or_else(|| data.broker_addrs.values().next())
        .map(String::as_str)
}
