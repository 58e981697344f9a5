//! Request processors, one per request family; [`dispatcher`] is the table from request
//! code to processor. Each processor holds an `Arc` of the shared [`BrokerContext`].

mod admin;
mod broker_admin;
mod client;
mod end_transaction;
mod lock;
mod offset;
mod pop;
mod pull;
mod query;
mod replica;
mod send;
mod send_back;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rocketmq_common::body::SubscriptionGroupConfig;
use rocketmq_common::protocol::{RequestCode, ResponseCode};
use rocketmq_common::remoting::{Dispatcher, ProcessError};
use rocketmq_common::route::TopicConfig;

use crate::clients::ClientManager;
use crate::config::{BrokerConfig, LiveConfig};
use crate::filter::FilterCompiler;
use crate::ha::Replication;
use crate::ha::controller_mode::ControllerLink;
use crate::locks::QueueLockManager;
use crate::long_polling::LongPolling;
use crate::metadata::{
    ConsumerOffsetManager, MetadataError, SubscriptionGroupManager, TopicConfigManager,
};
use crate::registration::NamesrvRegistration;
use crate::schedule::ScheduleMessageService;
use crate::server::BrokerMetrics;
use crate::timer::TimerMessageStore;
use rocketmq_store::{MessageStore, StoreError};

pub use pull::PullMessageProcessor;
pub use send::SendMessageProcessor;

/// Everything processors share.
pub struct BrokerContext {
    /// Configuration as started.
    pub config: BrokerConfig,
    /// The settings that change at runtime (UPDATE_BROKER_CONFIG); read these, not `config`.
    pub live: Arc<LiveConfig>,
    /// The address written into records and offset message ids.
    pub store_host: SocketAddr,
    /// The message store.
    pub store: Arc<MessageStore>,
    /// Topic configs.
    pub topics: Arc<TopicConfigManager>,
    /// Subscription groups.
    pub groups: Arc<SubscriptionGroupManager>,
    /// Committed offsets.
    pub offsets: Arc<ConsumerOffsetManager>,
    /// Producer and consumer tables.
    pub clients: Arc<ClientManager>,
    /// Held pulls.
    pub long_polling: Arc<LongPolling>,
    /// Delay-level delivery.
    pub schedule: Arc<ScheduleMessageService>,
    /// Timer message delivery (`None` when `timerWheelEnable=false`).
    pub timer: Option<Arc<TimerMessageStore>>,
    /// Compiled subscription filters (SQL92 parsed once).
    pub filters: Arc<FilterCompiler>,
    /// Queue locks of orderly consumers.
    pub locks: Arc<QueueLockManager>,
    /// POP state (queues being popped, FIFO pops, request modes).
    pub pop: Arc<crate::pop::PopState>,
    /// Name server registration (re-registers on topic changes).
    pub registration: Arc<NamesrvRegistration>,
    /// Roles, the HA stream and every write's replication (see [`crate::ha`]).
    pub replication: Arc<Replication>,
    /// The link to the controller group (controller mode only).
    pub controller: Option<Arc<ControllerLink>>,
    /// Metrics.
    pub metrics: BrokerMetrics,
    /// Set when shutdown begins: sends are refused with SERVICE_NOT_AVAILABLE.
    pub shutting_down: AtomicBool,
    /// Puts in progress, for back-pressure.
    pub in_flight_puts: std::sync::atomic::AtomicUsize,
}

impl BrokerContext {
    /// The group's config; when absent it is created (if `autoCreateSubscriptionGroup`
    /// allows) and persisted on a blocking thread.
    pub async fn group_or_create(
        &self,
        group: &str,
    ) -> Result<Option<SubscriptionGroupConfig>, MetadataError> {
        if let Some(g) = self.groups.get(group) {
            return Ok(Some(g));
        }
        let (groups, name, allowed) = (
            self.groups.clone(),
            group.to_string(),
            self.live.auto_create_subscription_group(),
        );
        blocking(move || groups.get_or_create(&name, allowed)).await
    }

    /// The topic's config; when absent `config` is created and persisted on a blocking
    /// thread, and the name servers are told. Returns whether it was created.
    pub async fn topic_or_create(
        &self,
        config: TopicConfig,
    ) -> Result<(TopicConfig, bool), MetadataError> {
        if let Some(c) = self.topics.get(&config.topic_name) {
            return Ok((c, false));
        }
        let topics = self.topics.clone();
        let (config, created) = blocking(move || topics.get_or_create(config)).await?;
        if created {
            self.registration.trigger();
        }
        Ok((config, created))
    }

    /// Stores one message the way client sends are stored (role check, replication wait;
    /// see [`Replication::put`]).
    pub async fn put_one(
        &self,
        input: &rocketmq_common::message::RecordInput<'_>,
    ) -> Result<rocketmq_store::AppendResult, ProcessError> {
        let written = self.replication.put(std::slice::from_ref(input)).await?;
        Ok(written.appends[0])
    }

    /// Whether the broker accepts writes right now.
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Acquire)
    }
}

/// Builds the broker's dispatch table.
pub fn dispatcher(ctx: Arc<BrokerContext>) -> Dispatcher {
    let mut d = Dispatcher::new();
    d.register_all(
        &[
            RequestCode::SEND_MESSAGE,
            RequestCode::SEND_MESSAGE_V2,
            RequestCode::SEND_BATCH_MESSAGE,
        ],
        Arc::new(SendMessageProcessor::new(ctx.clone())),
    );
    d.register(
        RequestCode::CONSUMER_SEND_MSG_BACK,
        Arc::new(send_back::SendBackProcessor::new(ctx.clone())),
    );
    d.register_all(
        &[RequestCode::PULL_MESSAGE, RequestCode::LITE_PULL_MESSAGE],
        Arc::new(PullMessageProcessor::new(ctx.clone())),
    );
    d.register_all(
        &[
            RequestCode::QUERY_CONSUMER_OFFSET,
            RequestCode::UPDATE_CONSUMER_OFFSET,
            RequestCode::GET_MAX_OFFSET,
            RequestCode::GET_MIN_OFFSET,
            RequestCode::SEARCH_OFFSET_BY_TIMESTAMP,
            RequestCode::GET_EARLIEST_MSG_STORETIME,
        ],
        Arc::new(offset::OffsetProcessor::new(ctx.clone())),
    );
    d.register_all(
        &[
            RequestCode::HEART_BEAT,
            RequestCode::UNREGISTER_CLIENT,
            RequestCode::GET_CONSUMER_LIST_BY_GROUP,
            RequestCode::CHECK_CLIENT_CONFIG,
        ],
        Arc::new(client::ClientProcessor::new(ctx.clone())),
    );
    d.register_all(
        &[
            RequestCode::UPDATE_AND_CREATE_TOPIC,
            RequestCode::DELETE_TOPIC_IN_BROKER,
            RequestCode::GET_ALL_TOPIC_CONFIG,
            RequestCode::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
            RequestCode::DELETE_SUBSCRIPTIONGROUP,
            RequestCode::GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
            RequestCode::GET_TOPIC_STATS_INFO,
            RequestCode::GET_CONSUME_STATS,
        ],
        Arc::new(admin::AdminProcessor::new(ctx.clone())),
    );
    d.register_all(
        &[
            RequestCode::GET_BROKER_RUNTIME_INFO,
            RequestCode::GET_BROKER_CONFIG,
            RequestCode::UPDATE_BROKER_CONFIG,
            RequestCode::GET_CONSUMER_CONNECTION_LIST,
            RequestCode::GET_PRODUCER_CONNECTION_LIST,
            RequestCode::INVOKE_BROKER_TO_RESET_OFFSET,
        ],
        Arc::new(broker_admin::BrokerAdminProcessor::new(ctx.clone())),
    );
    d.register_all(
        &[RequestCode::LOCK_BATCH_MQ, RequestCode::UNLOCK_BATCH_MQ],
        Arc::new(lock::LockProcessor::new(ctx.clone())),
    );
    d.register_all(
        &[
            RequestCode::POP_MESSAGE,
            RequestCode::ACK_MESSAGE,
            RequestCode::BATCH_ACK_MESSAGE,
            RequestCode::CHANGE_MESSAGE_INVISIBLETIME,
            RequestCode::NOTIFICATION,
            RequestCode::QUERY_ASSIGNMENT,
            RequestCode::SET_MESSAGE_REQUEST_MODE,
        ],
        Arc::new(pop::PopProcessor::new(ctx.clone())),
    );
    d.register(
        RequestCode::END_TRANSACTION,
        Arc::new(end_transaction::EndTransactionProcessor::new(ctx.clone())),
    );
    d.register_all(
        &[
            RequestCode::GET_BROKER_EPOCH_CACHE,
            RequestCode::NOTIFY_BROKER_ROLE_CHANGED,
            RequestCode::GET_ALL_CONSUMER_OFFSET,
            RequestCode::GET_ALL_DELAY_OFFSET,
            RequestCode::GET_TIMER_CHECK_POINT,
        ],
        Arc::new(replica::ReplicaProcessor::new(ctx.clone())),
    );
    d.register_all(
        &[RequestCode::QUERY_MESSAGE, RequestCode::VIEW_MESSAGE_BY_ID],
        Arc::new(query::QueryProcessor::new(ctx)),
    );
    d
}

/// Runs blocking work (fsync, file replacement, index scans) on the blocking pool, so one
/// slow disk operation never stalls the tasks serving other requests.
pub async fn blocking<T, F>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

pub(crate) fn store_error(e: StoreError) -> ProcessError {
    match e {
        StoreError::ShutDown => {
            ProcessError::new(ResponseCode::ServiceNotAvailable, "store is shutting down")
        }
        StoreError::MessageTooLarge { .. } | StoreError::InvalidMessage(_) => {
            ProcessError::new(ResponseCode::MessageIllegal, e.to_string())
        }
        other => ProcessError::new(ResponseCode::SystemError, other.to_string()),
    }
}

fn metadata_error(e: MetadataError) -> ProcessError {
    ProcessError::new(ResponseCode::SystemError, e.to_string())
}

fn json_body<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("bodies serialise to JSON")
}

fn unsupported(code: i32) -> ProcessError {
    ProcessError::new(
        ResponseCode::RequestCodeNotSupported,
        format!(" request type {code} not supported"),
    )
}
