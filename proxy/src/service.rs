//! `apache.rocketmq.v2.MessagingService` over Remoting: every RPC turns into name server and
//! broker requests through the client crate. The proxy keeps no message state: routes come
//! from the name servers, receipts and transaction ids carry what a later ack or commit
//! needs, so any proxy of a cluster can serve any request.
//!
//! Business errors travel in-band as `Status` (gRPC status OK), as the official clients
//! expect; only the Telemetry stream uses gRPC errors.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};
use parking_lot::Mutex;
use rocketmq_client::error::ClientError;
use rocketmq_client::pop::plan_batch_acks;
use rocketmq_client::route::Route;
use rocketmq_client::{MqClient, RouteCache, StoredMessage};
use rocketmq_common::body::{HeartbeatData, ProducerData};
use rocketmq_common::pop::{ExtraInfo, MAX_POP_MESSAGES};
use rocketmq_common::protocol::ResponseCode;
use rocketmq_common::protocol::headers::broker::{
    CheckTransactionStateRequestHeader, ConsumerSendMsgBackRequestHeader,
    EndTransactionRequestHeader, PopMessageRequestHeader, PullMessageRequestHeader,
    UpdateConsumerOffsetRequestHeader,
};
use rocketmq_common::remoting::RemotingError;
use rocketmq_common::route::{PERM_READ, PERM_WRITE};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, info, warn};

use crate::convert::{self, duration, duration_ms, incoming, now_ms, ok, outgoing, status};
use crate::metrics::ProxyMetrics;
use crate::pb::{self, Code, messaging_service_server::MessagingService};

/// Longest a receive is held (Java proxy: 20 s).
const MAX_LONG_POLL_MS: i64 = 20_000;
/// Invisible time when the client names none.
const DEFAULT_INVISIBLE_MS: i64 = 30_000;
/// How often producer groups are re-registered with brokers (they expire after 120 s).
const PRODUCER_HEARTBEAT: Duration = Duration::from_secs(20);

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// What the proxy knows of one client.
#[derive(Default)]
struct Session {
    settings: Option<pb::Settings>,
    telemetry: Option<mpsc::Sender<Result<pb::TelemetryCommand, Status>>>,
}

/// The state every RPC shares.
pub struct ProxyCore {
    routes: RouteCache,
    sessions: Mutex<HashMap<String, Session>>,
    producer_groups: Mutex<HashSet<String>>,
    next_queue: AtomicUsize,
    max_body: usize,
    endpoints: pb::Endpoints,
    instance_id: String,
    metrics: ProxyMetrics,
    /// Cancelled at shutdown: telemetry streams end so clients move on.
    stopping: tokio_util::sync::CancellationToken,
}

/// The MessagingService implementation.
#[derive(Clone)]
pub struct Messaging {
    core: Arc<ProxyCore>,
}

/// A transaction id that carries where its half message is (so any proxy can end it):
/// `<brokerName>|<commitLogOffset>|<halfQueueOffset>|<brokerTransactionId>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionHandle {
    /// Broker group holding the half message.
    pub broker_name: String,
    /// CommitLog offset of the half message.
    pub commit_log_offset: i64,
    /// Its offset in the half queue.
    pub queue_offset: i64,
    /// The broker's transaction id.
    pub transaction_id: String,
}

impl TransactionHandle {
    /// Parses the wire form.
    pub fn parse(s: &str) -> Option<Self> {
        let mut parts = s.splitn(4, '|');
        Some(Self {
            broker_name: parts.next()?.to_string(),
            commit_log_offset: parts.next()?.parse().ok()?,
            queue_offset: parts.next()?.parse().ok()?,
            transaction_id: parts.next()?.to_string(),
        })
    }
}

impl std::fmt::Display for TransactionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}|{}|{}|{}",
            self.broker_name, self.commit_log_offset, self.queue_offset, self.transaction_id
        )
    }
}

fn client_id<T>(request: &Request<T>) -> Option<String> {
    request
        .metadata()
        .get("x-mq-client-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
        .map(str::to_string)
}

/// The gRPC code of a failed Remoting call.
fn client_error_status(e: &ClientError) -> pb::Status {
    match e {
        ClientError::TopicNotFound { topic } => {
            status(Code::TopicNotFound, format!("topic {topic} not found"))
        }
        ClientError::Remoting(RemotingError::Timeout { .. }) => {
            status(Code::ProxyTimeout, e.to_string())
        }
        ClientError::Remoting(RemotingError::Response { code, remark, .. }) => {
            let code = match ResponseCode::from_i32(*code) {
                Some(ResponseCode::TopicNotExist) => Code::TopicNotFound,
                Some(ResponseCode::SubscriptionGroupNotExist) => Code::ConsumerGroupNotFound,
                Some(ResponseCode::FlushDiskTimeout) => Code::MasterPersistenceTimeout,
                Some(ResponseCode::FlushSlaveTimeout) => Code::SlavePersistenceTimeout,
                Some(ResponseCode::SlaveNotAvailable) => Code::HaNotAvailable,
                Some(ResponseCode::SystemBusy) | Some(ResponseCode::PollingFull) => {
                    Code::TooManyRequests
                }
                Some(ResponseCode::NoPermission) => Code::Forbidden,
                Some(ResponseCode::MessageIllegal) => Code::BadRequest,
                Some(ResponseCode::SubscriptionParseFailed) => Code::IllegalFilterExpression,
                Some(ResponseCode::InvalidParameter) => Code::BadRequest,
                Some(ResponseCode::NoMessage) => Code::InvalidReceiptHandle,
                _ => Code::InternalServerError,
            };
            let message = if remark.is_empty() {
                e.to_string()
            } else {
                remark.clone()
            };
            status(code, message)
        }
        _ => status(Code::InternalServerError, e.to_string()),
    }
}

/// The top-level status of per-entry results (`MULTIPLE_RESULTS` when they differ).
fn summarize<'a>(entries: impl Iterator<Item = &'a pb::Status>) -> pb::Status {
    let mut first: Option<&pb::Status> = None;
    for s in entries {
        match first {
            None => first = Some(s),
            Some(f) if f.code != s.code => {
                return status(Code::MultipleResults, "entries have different results");
            }
            _ => {}
        }
    }
    first.cloned().unwrap_or_else(ok)
}

fn all_message_types() -> Vec<i32> {
    vec![
        pb::MessageType::Normal as i32,
        pb::MessageType::Fifo as i32,
        pb::MessageType::Delay as i32,
        pb::MessageType::Transaction as i32,
    ]
}

fn permission(read: bool, write: bool) -> pb::Permission {
    match (read, write) {
        (true, true) => pb::Permission::ReadWrite,
        (true, false) => pb::Permission::Read,
        (false, true) => pb::Permission::Write,
        (false, false) => pb::Permission::None,
    }
}

impl ProxyCore {
    /// A core over the name servers `client` asks, advertising `endpoints` to clients that
    /// do not say how they reached the proxy.
    pub fn new(
        client: MqClient,
        endpoints: pb::Endpoints,
        max_body: usize,
        metrics: ProxyMetrics,
        stopping: tokio_util::sync::CancellationToken,
    ) -> Arc<Self> {
        let instance_id = format!("mqproxy@{}@{}", std::process::id(), now_ms());
        Arc::new(Self {
            routes: RouteCache::new(client, Duration::from_secs(30)),
            sessions: Mutex::default(),
            producer_groups: Mutex::default(),
            next_queue: AtomicUsize::new(0),
            max_body,
            endpoints,
            instance_id,
            metrics,
            stopping,
        })
    }

    fn client(&self) -> &MqClient {
        self.routes.client()
    }

    async fn route(&self, topic: &str) -> Result<Arc<Route>, pb::Status> {
        if rocketmq_common::topic::is_system_topic(topic) {
            return Err(status(
                Code::IllegalTopic,
                format!("cannot access system topic {topic}"),
            ));
        }
        rocketmq_common::topic::validate_topic(topic).map_err(|e| status(Code::IllegalTopic, e))?;
        self.routes
            .route(topic)
            .await
            .map_err(|e| client_error_status(&e))
    }

    fn master_of(route: &Route, broker_name: &str) -> Result<String, pb::Status> {
        route
            .master_addr(broker_name)
            .map(str::to_string)
            .ok_or_else(|| {
                status(
                    Code::NotFound,
                    format!("broker {broker_name} has no master in the route"),
                )
            })
    }

    fn fifo(&self, client_id: &str) -> bool {
        self.sessions
            .lock()
            .get(client_id)
            .and_then(|s| s.settings.as_ref())
            .and_then(|s| match &s.pub_sub {
                Some(pb::settings::PubSub::Subscription(sub)) => sub.fifo,
                _ => None,
            })
            .unwrap_or(false)
    }

    /// Registers this proxy as a producer of `group` (= topic) with every master of the
    /// topic, so brokers send transaction checks here.
    async fn register_producer_group(&self, topic: &str) {
        self.producer_groups.lock().insert(topic.to_string());
        self.heartbeat_group(topic).await;
    }

    async fn heartbeat_group(&self, topic: &str) {
        let Ok(route) = self.routes.route(topic).await else {
            return;
        };
        let data = HeartbeatData {
            client_id: self.instance_id.clone(),
            producer_data_set: vec![ProducerData {
                group_name: topic.to_string(),
            }],
            ..HeartbeatData::default()
        };
        for b in &route.data.broker_datas {
            if let Some(addr) = route.master_addr(&b.broker_name)
                && let Err(e) = self.client().heartbeat(addr, &data).await
            {
                debug!(broker = addr, error = %e, "producer heartbeat failed");
            }
        }
    }

    /// Re-registers producer groups until `stop`.
    pub async fn run_producer_heartbeats(
        self: Arc<Self>,
        stop: tokio_util::sync::CancellationToken,
    ) {
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(PRODUCER_HEARTBEAT) => {}
            }
            let groups: Vec<String> = self.producer_groups.lock().iter().cloned().collect();
            for g in groups {
                self.heartbeat_group(&g).await;
            }
        }
    }

    /// Turns a broker's CHECK_TRANSACTION_STATE into a RecoverOrphanedTransactionCommand for
    /// a live producer of the message's topic.
    pub async fn on_transaction_check(
        &self,
        broker_addr: String,
        request: rocketmq_common::protocol::RemotingCommand,
    ) {
        let Ok(h) = request.decode_header::<CheckTransactionStateRequestHeader>() else {
            warn!(broker = %broker_addr, "transaction check without a readable header");
            return;
        };
        let Ok(message) = StoredMessage::decode(&request.body) else {
            warn!(broker = %broker_addr, "transaction check without a readable message");
            return;
        };
        let broker_name = match h.broker_name.clone() {
            Some(b) => b,
            None => match self.routes.route(&message.topic).await.ok().and_then(|r| {
                r.data
                    .broker_datas
                    .iter()
                    .find(|b| b.broker_addrs.values().any(|a| *a == broker_addr))
                    .map(|b| b.broker_name.clone())
            }) {
                Some(b) => b,
                None => return,
            },
        };
        let handle = TransactionHandle {
            broker_name,
            commit_log_offset: h.commit_log_offset,
            queue_offset: h.tran_state_table_offset,
            transaction_id: h
                .transaction_id
                .clone()
                .or(h.msg_id.clone())
                .unwrap_or_default(),
        };
        let command = pb::TelemetryCommand {
            status: None,
            command: Some(
                pb::telemetry_command::Command::RecoverOrphanedTransactionCommand(
                    pb::RecoverOrphanedTransactionCommand {
                        message: Some(incoming(&message, "", &message.topic, None, 1)),
                        transaction_id: handle.to_string(),
                    },
                ),
            ),
        };
        let target = {
            let sessions = self.sessions.lock();
            sessions
                .iter()
                .filter(|(_, s)| {
                    s.settings.as_ref().is_some_and(|st| match &st.pub_sub {
                        Some(pb::settings::PubSub::Publishing(p)) => {
                            p.topics.iter().any(|t| t.name == message.topic)
                        }
                        _ => false,
                    })
                })
                .find_map(|(_, s)| s.telemetry.clone())
        };
        match target {
            // A client that does not read its stream must not hold up the checks of every
            // other: drop the question, the broker asks again next round.
            Some(tx) => {
                if tx.try_send(Ok(command)).is_err() {
                    debug!(topic = %message.topic, "transaction check dropped: the producer's stream is full or gone");
                }
            }
            None => {
                debug!(topic = %message.topic, "transaction check: no producer of the topic is connected")
            }
        }
    }

    fn merged_settings(&self, mut s: pb::Settings) -> pb::Settings {
        match &mut s.pub_sub {
            Some(pb::settings::PubSub::Publishing(p)) => {
                p.max_body_size = self.max_body as i32;
                s.backoff_policy = Some(pb::RetryPolicy {
                    max_attempts: 3,
                    strategy: Some(pb::retry_policy::Strategy::ExponentialBackoff(
                        pb::ExponentialBackoff {
                            initial: Some(duration(10)),
                            max: Some(duration(1000)),
                            multiplier: 2.0,
                        },
                    )),
                });
            }
            Some(pb::settings::PubSub::Subscription(sub)) => {
                sub.receive_batch_size = Some(sub.receive_batch_size.unwrap_or(MAX_POP_MESSAGES));
                sub.long_polling_timeout = Some(duration(MAX_LONG_POLL_MS));
                s.backoff_policy = Some(pb::RetryPolicy {
                    max_attempts: 17,
                    strategy: Some(pb::retry_policy::Strategy::CustomizedBackoff(
                        pb::CustomizedBackoff {
                            next: [
                                1, 5, 10, 30, 60, 120, 180, 240, 300, 360, 420, 480, 540, 600,
                                1200, 1800, 3600, 7200,
                            ]
                            .iter()
                            .map(|s| duration(s * 1000))
                            .collect(),
                        },
                    )),
                });
            }
            None => {}
        }
        s.metric = Some(pb::Metric {
            on: false,
            endpoints: None,
        });
        s
    }
}

impl Messaging {
    /// The service over `core`.
    pub fn new(core: Arc<ProxyCore>) -> Self {
        Self { core }
    }

    fn timed<T>(&self, rpc: &'static str, started: Instant, code: i32, value: T) -> T {
        self.core.metrics.record(rpc, code, started.elapsed());
        value
    }
}

/// Parses the `grpc-timeout` header (`<n><unit>`) into a duration.
fn grpc_timeout<T>(request: &Request<T>) -> Option<Duration> {
    let v = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (n, unit) = v.split_at(v.len().checked_sub(1)?);
    let n: u64 = n.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.saturating_mul(3600)),
        "M" => Duration::from_secs(n.saturating_mul(60)),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

#[tonic::async_trait]
impl MessagingService for Messaging {
    async fn query_route(
        &self,
        request: Request<pb::QueryRouteRequest>,
    ) -> Result<Response<pb::QueryRouteResponse>, Status> {
        let started = Instant::now();
        let req = request.into_inner();
        let topic = req.topic.clone().unwrap_or_default();
        let endpoints = req
            .endpoints
            .filter(|e| !e.addresses.is_empty())
            .unwrap_or_else(|| self.core.endpoints.clone());
        let response = match self.core.route(&topic.name).await {
            Err(s) => pb::QueryRouteResponse {
                status: Some(s),
                message_queues: Vec::new(),
            },
            Ok(route) => {
                let mut queues = Vec::new();
                let mut datas = route.data.queue_datas.clone();
                datas.sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
                for qd in &datas {
                    if route.master_addr(&qd.broker_name).is_none() {
                        continue;
                    }
                    for id in 0..qd.read_queue_nums.max(qd.write_queue_nums) {
                        let p = permission(
                            id < qd.read_queue_nums && qd.perm & PERM_READ != 0,
                            id < qd.write_queue_nums && qd.perm & PERM_WRITE != 0,
                        );
                        queues.push(pb::MessageQueue {
                            topic: Some(topic.clone()),
                            id,
                            permission: p as i32,
                            broker: Some(pb::Broker {
                                name: qd.broker_name.clone(),
                                id: 0,
                                endpoints: Some(endpoints.clone()),
                            }),
                            accept_message_types: all_message_types(),
                        });
                    }
                }
                if queues.is_empty() {
                    pb::QueryRouteResponse {
                        status: Some(status(
                            Code::TopicNotFound,
                            format!("topic {} has no queue on a master broker", topic.name),
                        )),
                        message_queues: Vec::new(),
                    }
                } else {
                    pb::QueryRouteResponse {
                        status: Some(ok()),
                        message_queues: queues,
                    }
                }
            }
        };
        let code = response.status.as_ref().map_or(0, |s| s.code);
        Ok(self.timed("QueryRoute", started, code, Response::new(response)))
    }

    async fn heartbeat(
        &self,
        request: Request<pb::HeartbeatRequest>,
    ) -> Result<Response<pb::HeartbeatResponse>, Status> {
        let started = Instant::now();
        let s = match client_id(&request) {
            None => status(Code::ClientIdRequired, "x-mq-client-id is required"),
            Some(_) => ok(),
        };
        let code = s.code;
        Ok(self.timed(
            "Heartbeat",
            started,
            code,
            Response::new(pb::HeartbeatResponse { status: Some(s) }),
        ))
    }

    async fn send_message(
        &self,
        request: Request<pb::SendMessageRequest>,
    ) -> Result<Response<pb::SendMessageResponse>, Status> {
        let started = Instant::now();
        let req = request.into_inner();
        let response = self.send(req).await;
        let code = response.status.as_ref().map_or(0, |s| s.code);
        Ok(self.timed("SendMessage", started, code, Response::new(response)))
    }

    async fn query_assignment(
        &self,
        request: Request<pb::QueryAssignmentRequest>,
    ) -> Result<Response<pb::QueryAssignmentResponse>, Status> {
        let started = Instant::now();
        let fifo = client_id(&request).is_some_and(|c| self.core.fifo(&c));
        let req = request.into_inner();
        let topic = req.topic.unwrap_or_default();
        let endpoints = req
            .endpoints
            .filter(|e| !e.addresses.is_empty())
            .unwrap_or_else(|| self.core.endpoints.clone());
        let response = match self.core.route(&topic.name).await {
            Err(s) => pb::QueryAssignmentResponse {
                status: Some(s),
                assignments: Vec::new(),
            },
            Ok(route) => {
                let mut assignments = Vec::new();
                for qd in &route.data.queue_datas {
                    if qd.perm & PERM_READ == 0 || route.master_addr(&qd.broker_name).is_none() {
                        continue;
                    }
                    let ids: Vec<i32> = if fifo {
                        (0..qd.read_queue_nums).collect()
                    } else {
                        vec![-1]
                    };
                    for id in ids {
                        assignments.push(pb::Assignment {
                            message_queue: Some(pb::MessageQueue {
                                topic: Some(topic.clone()),
                                id,
                                permission: pb::Permission::ReadWrite as i32,
                                broker: Some(pb::Broker {
                                    name: qd.broker_name.clone(),
                                    id: 0,
                                    endpoints: Some(endpoints.clone()),
                                }),
                                accept_message_types: all_message_types(),
                            }),
                        });
                    }
                }
                if assignments.is_empty() {
                    pb::QueryAssignmentResponse {
                        status: Some(status(Code::Forbidden, "no readable queue")),
                        assignments,
                    }
                } else {
                    pb::QueryAssignmentResponse {
                        status: Some(ok()),
                        assignments,
                    }
                }
            }
        };
        let code = response.status.as_ref().map_or(0, |s| s.code);
        Ok(self.timed("QueryAssignment", started, code, Response::new(response)))
    }

    type ReceiveMessageStream = BoxStream<pb::ReceiveMessageResponse>;

    async fn receive_message(
        &self,
        request: Request<pb::ReceiveMessageRequest>,
    ) -> Result<Response<Self::ReceiveMessageStream>, Status> {
        let started = Instant::now();
        let deadline = grpc_timeout(&request);
        let fifo = client_id(&request).is_some_and(|c| self.core.fifo(&c));
        let req = request.into_inner();
        let items = match self.receive(req, deadline, fifo).await {
            Ok(items) => items,
            Err(s) => vec![s],
        };
        let code = items
            .iter()
            .find_map(|i| match &i.content {
                Some(pb::receive_message_response::Content::Status(s)) => Some(s.code),
                _ => None,
            })
            .unwrap_or(0);
        let mut all: Vec<pb::ReceiveMessageResponse> = items;
        all.push(pb::ReceiveMessageResponse {
            content: Some(pb::receive_message_response::Content::DeliveryTimestamp(
                convert::timestamp(now_ms()),
            )),
        });
        let stream: Self::ReceiveMessageStream =
            Box::pin(tokio_stream::iter(all.into_iter().map(Ok)));
        Ok(self.timed("ReceiveMessage", started, code, Response::new(stream)))
    }

    async fn ack_message(
        &self,
        request: Request<pb::AckMessageRequest>,
    ) -> Result<Response<pb::AckMessageResponse>, Status> {
        let started = Instant::now();
        let req = request.into_inner();
        let group = req.group.map(|g| g.name).unwrap_or_default();
        let topic = req.topic.map(|t| t.name).unwrap_or_default();
        let statuses = match self.core.route(&topic).await {
            Err(s) => vec![s; req.entries.len()],
            Ok(route) if req.entries.len() == 1 => {
                vec![
                    self.ack_one(&route, &group, &topic, &req.entries[0].receipt_handle)
                        .await,
                ]
            }
            Ok(route) => self.ack_batch(&route, &group, &topic, &req.entries).await,
        };
        let entries: Vec<pb::AckMessageResultEntry> = req
            .entries
            .into_iter()
            .zip(statuses)
            .map(|(e, s)| pb::AckMessageResultEntry {
                message_id: e.message_id,
                receipt_handle: e.receipt_handle,
                status: Some(s),
            })
            .collect();
        let top = summarize(entries.iter().filter_map(|e| e.status.as_ref()));
        let code = top.code;
        Ok(self.timed(
            "AckMessage",
            started,
            code,
            Response::new(pb::AckMessageResponse {
                status: Some(top),
                entries,
            }),
        ))
    }

    async fn forward_message_to_dead_letter_queue(
        &self,
        request: Request<pb::ForwardMessageToDeadLetterQueueRequest>,
    ) -> Result<Response<pb::ForwardMessageToDeadLetterQueueResponse>, Status> {
        let started = Instant::now();
        let req = request.into_inner();
        let group = req.group.map(|g| g.name).unwrap_or_default();
        let topic = req.topic.map(|t| t.name).unwrap_or_default();
        let s = match self
            .forward_to_dlq(&group, &topic, &req.receipt_handle, &req.message_id)
            .await
        {
            Ok(()) => ok(),
            Err(s) => s,
        };
        let code = s.code;
        Ok(self.timed(
            "ForwardMessageToDeadLetterQueue",
            started,
            code,
            Response::new(pb::ForwardMessageToDeadLetterQueueResponse { status: Some(s) }),
        ))
    }

    type PullMessageStream = BoxStream<pb::PullMessageResponse>;

    async fn pull_message(
        &self,
        request: Request<pb::PullMessageRequest>,
    ) -> Result<Response<Self::PullMessageStream>, Status> {
        let started = Instant::now();
        let req = request.into_inner();
        let items = match self.pull(req).await {
            Ok(items) => items,
            Err(s) => vec![pb::PullMessageResponse {
                content: Some(pb::pull_message_response::Content::Status(s)),
            }],
        };
        let code = items
            .iter()
            .find_map(|i| match &i.content {
                Some(pb::pull_message_response::Content::Status(s)) => Some(s.code),
                _ => None,
            })
            .unwrap_or(0);
        let stream: Self::PullMessageStream =
            Box::pin(tokio_stream::iter(items.into_iter().map(Ok)));
        Ok(self.timed("PullMessage", started, code, Response::new(stream)))
    }

    async fn update_offset(
        &self,
        request: Request<pb::UpdateOffsetRequest>,
    ) -> Result<Response<pb::UpdateOffsetResponse>, Status> {
        let started = Instant::now();
        let req = request.into_inner();
        let s = match self.queue_target(&req.message_queue).await {
            Err(s) => s,
            Ok((addr, topic, queue_id)) => {
                let header = UpdateConsumerOffsetRequestHeader {
                    consumer_group: req.group.map(|g| g.name).unwrap_or_default(),
                    topic,
                    queue_id,
                    commit_offset: req.offset,
                    ..Default::default()
                };
                match self
                    .core
                    .client()
                    .update_consumer_offset(&addr, &header)
                    .await
                {
                    Ok(()) => ok(),
                    Err(e) => client_error_status(&e),
                }
            }
        };
        let code = s.code;
        Ok(self.timed(
            "UpdateOffset",
            started,
            code,
            Response::new(pb::UpdateOffsetResponse { status: Some(s) }),
        ))
    }

    async fn get_offset(
        &self,
        request: Request<pb::GetOffsetRequest>,
    ) -> Result<Response<pb::GetOffsetResponse>, Status> {
        let started = Instant::now();
        let req = request.into_inner();
        let (s, offset) = match self.queue_target(&req.message_queue).await {
            Err(s) => (s, 0),
            Ok((addr, topic, queue_id)) => {
                let group = req.group.map(|g| g.name).unwrap_or_default();
                match self
                    .core
                    .client()
                    .query_consumer_offset(&addr, &group, &topic, queue_id)
                    .await
                {
                    Ok(Some(o)) => (ok(), o),
                    Ok(None) => (
                        status(Code::NotFound, "the group has no offset for this queue"),
                        0,
                    ),
                    Err(e) => (client_error_status(&e), 0),
                }
            }
        };
        let code = s.code;
        Ok(self.timed(
            "GetOffset",
            started,
            code,
            Response::new(pb::GetOffsetResponse {
                status: Some(s),
                offset,
            }),
        ))
    }

    async fn query_offset(
        &self,
        request: Request<pb::QueryOffsetRequest>,
    ) -> Result<Response<pb::QueryOffsetResponse>, Status> {
        let started = Instant::now();
        let req = request.into_inner();
        let (s, offset) = match self.queue_target(&req.message_queue).await {
            Err(s) => (s, 0),
            Ok((addr, topic, queue_id)) => {
                let client = self.core.client();
                let result = match pb::QueryOffsetPolicy::try_from(req.query_offset_policy) {
                    Ok(pb::QueryOffsetPolicy::Beginning) => {
                        client.queue_offset(&addr, &topic, queue_id, false).await
                    }
                    Ok(pb::QueryOffsetPolicy::End) => {
                        client.queue_offset(&addr, &topic, queue_id, true).await
                    }
                    Ok(pb::QueryOffsetPolicy::Timestamp) => {
                        let at = req.timestamp.as_ref().map_or(0, convert::timestamp_ms);
                        client.search_offset(&addr, &topic, queue_id, at).await
                    }
                    Err(_) => Err(ClientError::bad_body(&addr, "offset policy", "unknown")),
                };
                match result {
                    Ok(o) => (ok(), o),
                    Err(e) => (client_error_status(&e), 0),
                }
            }
        };
        let code = s.code;
        Ok(self.timed(
            "QueryOffset",
            started,
            code,
            Response::new(pb::QueryOffsetResponse {
                status: Some(s),
                offset,
            }),
        ))
    }

    async fn end_transaction(
        &self,
        request: Request<pb::EndTransactionRequest>,
    ) -> Result<Response<pb::EndTransactionResponse>, Status> {
        let started = Instant::now();
        let req = request.into_inner();
        let s = match self.end(req).await {
            Ok(()) => ok(),
            Err(s) => s,
        };
        let code = s.code;
        Ok(self.timed(
            "EndTransaction",
            started,
            code,
            Response::new(pb::EndTransactionResponse { status: Some(s) }),
        ))
    }

    type TelemetryStream = BoxStream<pb::TelemetryCommand>;

    async fn telemetry(
        &self,
        request: Request<Streaming<pb::TelemetryCommand>>,
    ) -> Result<Response<Self::TelemetryStream>, Status> {
        let Some(id) = client_id(&request) else {
            return Err(Status::invalid_argument("x-mq-client-id is required"));
        };
        let mut inbound = request.into_inner();
        let (tx, rx) = mpsc::channel(16);
        self.core
            .sessions
            .lock()
            .entry(id.clone())
            .or_default()
            .telemetry = Some(tx.clone());
        let core = self.core.clone();
        let stopping = self.core.stopping.clone();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    _ = stopping.cancelled() => break,
                    next = inbound.message() => next,
                };
                let command = match next {
                    Ok(Some(c)) => c,
                    Ok(None) => break,
                    Err(e) => {
                        debug!(client = %id, error = %e, "telemetry stream ended");
                        break;
                    }
                };
                match command.command {
                    Some(pb::telemetry_command::Command::Settings(settings)) => {
                        if settings.pub_sub.is_none() {
                            let _ = tx
                                .send(Err(Status::invalid_argument(
                                    "settings carry neither publishing nor subscription",
                                )))
                                .await;
                            break;
                        }
                        if let Some(pb::settings::PubSub::Publishing(p)) = &settings.pub_sub {
                            for t in &p.topics {
                                core.register_producer_group(&t.name).await;
                            }
                        }
                        let merged = core.merged_settings(settings);
                        core.sessions.lock().entry(id.clone()).or_default().settings =
                            Some(merged.clone());
                        let reply = pb::TelemetryCommand {
                            status: Some(ok()),
                            command: Some(pb::telemetry_command::Command::Settings(merged)),
                        };
                        if tx.send(Ok(reply)).await.is_err() {
                            break;
                        }
                    }
                    Some(pb::telemetry_command::Command::ThreadStackTrace(_))
                    | Some(pb::telemetry_command::Command::VerifyMessageResult(_)) => {
                        // Answers to commands this proxy never sends: nothing to do.
                    }
                    other => {
                        debug!(client = %id, command = ?other.map(|_| ()), "unexpected telemetry command from a client");
                    }
                }
            }
            // The client is gone (or reconnected with a new stream): forget what this stream
            // registered, so sessions do not pile up with client churn.
            let mut sessions = core.sessions.lock();
            if sessions
                .get(&id)
                .is_some_and(|s| s.telemetry.as_ref().is_some_and(|t| t.same_channel(&tx)))
            {
                sessions.remove(&id);
            }
        });
        // The stream ends at shutdown, so a graceful stop is not held up by clients that
        // keep their telemetry open for as long as they live.
        let stream: Self::TelemetryStream = Box::pin(
            ReceiverStream::new(rx).take_until(self.core.stopping.clone().cancelled_owned()),
        );
        Ok(Response::new(stream))
    }

    async fn notify_client_termination(
        &self,
        request: Request<pb::NotifyClientTerminationRequest>,
    ) -> Result<Response<pb::NotifyClientTerminationResponse>, Status> {
        let started = Instant::now();
        if let Some(id) = client_id(&request) {
            self.core.sessions.lock().remove(&id);
            info!(client = %id, "client terminated");
        }
        Ok(self.timed(
            "NotifyClientTermination",
            started,
            Code::Ok as i32,
            Response::new(pb::NotifyClientTerminationResponse { status: Some(ok()) }),
        ))
    }

    async fn change_invisible_duration(
        &self,
        request: Request<pb::ChangeInvisibleDurationRequest>,
    ) -> Result<Response<pb::ChangeInvisibleDurationResponse>, Status> {
        let started = Instant::now();
        let req = request.into_inner();
        let group = req.group.map(|g| g.name).unwrap_or_default();
        let topic = req.topic.map(|t| t.name).unwrap_or_default();
        let invisible = req.invisible_duration.as_ref().map_or(0, duration_ms);
        let (s, handle) = match self
            .change_invisible(&group, &topic, &req.receipt_handle, invisible)
            .await
        {
            Ok(h) => (ok(), h),
            Err(s) => (s, String::new()),
        };
        let code = s.code;
        Ok(self.timed(
            "ChangeInvisibleDuration",
            started,
            code,
            Response::new(pb::ChangeInvisibleDurationResponse {
                status: Some(s),
                receipt_handle: handle,
            }),
        ))
    }

    async fn recall_message(
        &self,
        _request: Request<pb::RecallMessageRequest>,
    ) -> Result<Response<pb::RecallMessageResponse>, Status> {
        Ok(Response::new(pb::RecallMessageResponse {
            status: Some(status(
                Code::NotImplemented,
                "recalling messages is not supported by this cluster",
            )),
            message_id: String::new(),
        }))
    }
}

impl Messaging {
    async fn send(&self, req: pb::SendMessageRequest) -> pb::SendMessageResponse {
        let fail = |s: pb::Status| pb::SendMessageResponse {
            status: Some(s),
            entries: Vec::new(),
        };
        let Some(first) = req.messages.first() else {
            return fail(status(Code::MessageCorrupted, "no message to send"));
        };
        let topic = first.topic.clone().map(|t| t.name).unwrap_or_default();
        if req
            .messages
            .iter()
            .any(|m| m.topic.as_ref().map(|t| t.name.as_str()) != Some(topic.as_str()))
        {
            return fail(status(
                Code::MessageCorrupted,
                "all messages of one send must have the same topic",
            ));
        }
        let mut entries = Vec::with_capacity(req.messages.len());
        for m in &req.messages {
            let entry = match outgoing(m, self.core.max_body) {
                Err(s) => pb::SendResultEntry {
                    status: Some(s),
                    message_id: m
                        .system_properties
                        .as_ref()
                        .map(|s| s.message_id.clone())
                        .unwrap_or_default(),
                    transaction_id: String::new(),
                    offset: 0,
                },
                Ok(out) => self.send_one(&topic, out).await,
            };
            entries.push(entry);
        }
        let top = summarize(entries.iter().filter_map(|e| e.status.as_ref()));
        pb::SendMessageResponse {
            status: Some(top),
            entries,
        }
    }

    async fn send_one(&self, topic: &str, out: convert::Outgoing) -> pb::SendResultEntry {
        /// Invalidates the topic's route when dropped armed.
        struct RouteSuspect<'a> {
            routes: &'a RouteCache,
            topic: &'a str,
            armed: bool,
        }
        impl RouteSuspect<'_> {
            fn disarm(mut self) {
                self.armed = false;
            }
        }
        impl Drop for RouteSuspect<'_> {
            fn drop(&mut self) {
                if self.armed {
                    self.routes.invalidate(self.topic);
                }
            }
        }

        let entry = |s: pb::Status, tx: String, offset: i64| pb::SendResultEntry {
            status: Some(s),
            message_id: out.message_id.clone(),
            transaction_id: tx,
            offset,
        };
        if out.transactional && !self.core.producer_groups.lock().contains(topic) {
            self.core.register_producer_group(topic).await;
        }
        let mut last = status(Code::InternalServerError, "no attempt");
        for attempt in 0..2 {
            let route = match self.core.route(topic).await {
                Ok(r) => r,
                Err(s) => return entry(s, String::new(), 0),
            };
            let queues: Vec<_> = route
                .write_queues()
                .into_iter()
                .filter(|q| route.master_addr(&q.broker_name).is_some())
                .collect();
            if queues.is_empty() {
                last = status(
                    Code::Forbidden,
                    format!("topic {topic} has no writable queue"),
                );
                // A group between masters: ask the name servers again, once.
                if route.lacks_a_master() {
                    self.core.routes.invalidate(topic);
                    continue;
                }
                break;
            }
            let index = match &out.message_group {
                // One message group, one queue, from every proxy: a stable hash.
                Some(g) => crc32fast::hash(g.as_bytes()) as usize,
                None => self.core.next_queue.fetch_add(1, Ordering::Relaxed),
            } + attempt;
            let q = &queues[index % queues.len()];
            let addr = route
                .master_addr(&q.broker_name)
                .expect("filtered")
                .to_string();
            let mut header = out.header.clone();
            header.queue_id = q.queue_id;
            // Until the broker answers, the route is suspect: if this future is dropped
            // (the client's deadline passed while the broker stayed silent, e.g. a
            // partitioned master), the route is forgotten all the same.
            let suspect = RouteSuspect {
                routes: &self.core.routes,
                topic,
                armed: true,
            };
            let sent = self
                .core
                .client()
                .send_message(&addr, header, out.body.clone())
                .await;
            suspect.disarm();
            match sent {
                Ok(r) => {
                    let tx = if out.transactional {
                        let offset = rocketmq_common::message::decode_offset_message_id(&r.msg_id)
                            .map(|(_, o)| o)
                            .unwrap_or(-1);
                        TransactionHandle {
                            broker_name: q.broker_name.clone(),
                            commit_log_offset: offset,
                            queue_offset: r.queue_offset,
                            transaction_id: r
                                .transaction_id
                                .clone()
                                .unwrap_or_else(|| out.message_id.clone()),
                        }
                        .to_string()
                    } else {
                        String::new()
                    };
                    return entry(ok(), tx, r.queue_offset);
                }
                Err(e) => {
                    last = client_error_status(&e);
                    // A broker that cannot be reached or refuses writes may have lost its
                    // mastership: look the route up again and try another queue once.
                    self.core.routes.invalidate(topic);
                    if e.response_code().is_some()
                        && last.code != Code::Forbidden as i32
                        && last.code != Code::TooManyRequests as i32
                    {
                        break;
                    }
                }
            }
        }
        entry(last, String::new(), 0)
    }

    async fn receive(
        &self,
        req: pb::ReceiveMessageRequest,
        deadline: Option<Duration>,
        fifo: bool,
    ) -> Result<Vec<pb::ReceiveMessageResponse>, pb::ReceiveMessageResponse> {
        let fail = |s: pb::Status| pb::ReceiveMessageResponse {
            content: Some(pb::receive_message_response::Content::Status(s)),
        };
        let group = req.group.clone().unwrap_or_default();
        if group.name.is_empty() {
            return Err(fail(status(
                Code::IllegalConsumerGroup,
                "no consumer group",
            )));
        }
        let mq = req.message_queue.clone().unwrap_or_default();
        let topic = mq.topic.clone().unwrap_or_default();
        let route = self.core.route(&topic.name).await.map_err(fail)?;
        let broker_name = mq
            .broker
            .as_ref()
            .map(|b| b.name.clone())
            .filter(|n| route.master_addr(n).is_some())
            .or_else(|| {
                route
                    .data
                    .queue_datas
                    .iter()
                    .find(|q| {
                        q.perm & PERM_READ != 0 && route.master_addr(&q.broker_name).is_some()
                    })
                    .map(|q| q.broker_name.clone())
            })
            .ok_or_else(|| fail(status(Code::Forbidden, "no readable queue")))?;
        let addr = ProxyCore::master_of(&route, &broker_name).map_err(fail)?;
        let read_queues = route
            .data
            .queue_datas
            .iter()
            .find(|q| q.broker_name == broker_name)
            .map_or(0, |q| q.read_queue_nums);
        let queue_id = if mq.id >= 0 && mq.id < read_queues {
            mq.id
        } else {
            -1
        };
        let invisible = req
            .invisible_duration
            .as_ref()
            .map_or(DEFAULT_INVISIBLE_MS, duration_ms);
        if !(1_000..=12 * 3600 * 1000).contains(&invisible) {
            return Err(fail(status(
                Code::IllegalInvisibleTime,
                format!("invisible duration {invisible} ms is outside [1 s, 12 h]"),
            )));
        }
        let mut poll = req
            .long_polling_timeout
            .as_ref()
            .map_or(MAX_LONG_POLL_MS, duration_ms)
            .clamp(0, MAX_LONG_POLL_MS);
        if let Some(d) = deadline {
            // Answer before the client gives up on the call.
            poll = poll.min(d.as_millis() as i64 - 2_000).max(0);
        }
        let filter = req.filter_expression.unwrap_or_default();
        let exp_type = if filter.r#type == pb::FilterType::Sql as i32 {
            "SQL92"
        } else {
            "TAG"
        };
        let expression = if filter.expression.trim().is_empty() {
            "*".to_string()
        } else {
            filter.expression
        };
        let header = PopMessageRequestHeader {
            consumer_group: group.name.clone(),
            topic: topic.name.clone(),
            queue_id,
            max_msg_nums: req.batch_size.clamp(1, MAX_POP_MESSAGES),
            invisible_time: invisible,
            poll_time: poll,
            born_time: now_ms(),
            // A new group starts at the first message still stored.
            init_mode: 0,
            exp_type: Some(exp_type.into()),
            exp: Some(expression),
            order: Some(fifo),
            attempt_id: req.attempt_id.clone(),
        };
        let popped = self
            .core
            .client()
            .pop_message(&addr, &broker_name, &header)
            .await
            .map_err(|e| fail(client_error_status(&e)))?;
        if popped.messages.is_empty() {
            let s = if popped.code == ResponseCode::PollingFull.as_i32() {
                status(Code::TooManyRequests, "polling full")
            } else {
                status(Code::MessageNotFound, "no new message")
            };
            return Ok(vec![fail(s)]);
        }
        let mut out = vec![fail(ok())];
        for p in popped.messages {
            let mut receipt = p.receipt.clone();
            receipt.commit_log_offset = Some(p.message.commit_log_offset);
            out.push(pb::ReceiveMessageResponse {
                content: Some(pb::receive_message_response::Content::Message(incoming(
                    &p.message,
                    &topic.resource_namespace,
                    &topic.name,
                    Some(receipt.to_string()),
                    p.reconsume_times + 1,
                ))),
            });
        }
        self.core.metrics.record_received(out.len() as u64 - 1);
        Ok(out)
    }

    fn parse_handle(handle: &str) -> Result<ExtraInfo, pb::Status> {
        let receipt = ExtraInfo::parse(handle)
            .map_err(|e| status(Code::InvalidReceiptHandle, e.to_string()))?;
        if receipt.visible_at() <= now_ms() {
            return Err(status(
                Code::InvalidReceiptHandle,
                "receipt handle is expired",
            ));
        }
        Ok(receipt)
    }

    async fn ack_one(&self, route: &Route, group: &str, topic: &str, handle: &str) -> pb::Status {
        let receipt = match Self::parse_handle(handle) {
            Ok(r) => r,
            Err(s) => return s,
        };
        let addr = match ProxyCore::master_of(route, &receipt.broker_name) {
            Ok(a) => a,
            Err(s) => return s,
        };
        match self
            .core
            .client()
            .ack_receipt(&addr, group, topic, &receipt)
            .await
        {
            Ok(()) => ok(),
            Err(e) => client_error_status(&e),
        }
    }

    /// Acks several messages with one BATCH_ACK_MESSAGE per broker; returns each entry's
    /// status.
    async fn ack_batch(
        &self,
        route: &Route,
        group: &str,
        topic: &str,
        entries: &[pb::AckMessageEntry],
    ) -> Vec<pb::Status> {
        let mut statuses = vec![ok(); entries.len()];
        let mut receipts = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            match Self::parse_handle(&e.receipt_handle) {
                Ok(r) => receipts.push((i, r)),
                Err(s) => statuses[i] = s,
            }
        }
        let plan = plan_batch_acks(group, topic, receipts.iter().map(|(i, r)| (*i, r)));
        for i in plan.invalid {
            statuses[i] = status(
                Code::InvalidReceiptHandle,
                "receipt handle offsets do not belong together",
            );
        }
        for i in plan.singles {
            statuses[i] = self
                .ack_one(route, group, topic, &entries[i].receipt_handle)
                .await;
        }
        for (body, indexes) in plan.batches {
            let result = match ProxyCore::master_of(route, &body.broker_name) {
                Err(s) => s,
                Ok(addr) => match self.core.client().batch_ack(&addr, &body).await {
                    Ok(()) => ok(),
                    Err(e) => client_error_status(&e),
                },
            };
            for i in indexes {
                statuses[i] = result.clone();
            }
        }
        statuses
    }

    async fn change_invisible(
        &self,
        group: &str,
        topic: &str,
        handle: &str,
        invisible: i64,
    ) -> Result<String, pb::Status> {
        if !(1_000..=12 * 3600 * 1000).contains(&invisible) {
            return Err(status(
                Code::IllegalInvisibleTime,
                format!("invisible duration {invisible} ms is outside [1 s, 12 h]"),
            ));
        }
        let receipt = Self::parse_handle(handle)?;
        let route = self.core.route(topic).await?;
        let addr = ProxyCore::master_of(&route, &receipt.broker_name)?;
        let new = self
            .core
            .client()
            .change_invisible_receipt(&addr, group, topic, &receipt, invisible)
            .await
            .map_err(|e| client_error_status(&e))?;
        Ok(new.to_string())
    }

    async fn forward_to_dlq(
        &self,
        group: &str,
        topic: &str,
        handle: &str,
        message_id: &str,
    ) -> Result<(), pb::Status> {
        let receipt = Self::parse_handle(handle)?;
        let Some(offset) = receipt.commit_log_offset.filter(|o| *o >= 0) else {
            return Err(status(
                Code::InvalidReceiptHandle,
                "the receipt handle carries no CommitLog offset",
            ));
        };
        let route = self.core.route(topic).await?;
        let addr = ProxyCore::master_of(&route, &receipt.broker_name)?;
        let client = self.core.client();
        client
            .send_back(
                &addr,
                &ConsumerSendMsgBackRequestHeader {
                    offset,
                    group: group.to_string(),
                    delay_level: -1,
                    origin_msg_id: Some(message_id.to_string()),
                    origin_topic: Some(topic.to_string()),
                    unit_mode: Some(false),
                    max_reconsume_times: Some(0),
                    broker_name: None,
                },
            )
            .await
            .map_err(|e| client_error_status(&e))?;
        // The copy is in the DLQ: the popped original must not come back.
        client
            .ack_receipt(&addr, group, topic, &receipt)
            .await
            .map_err(|e| client_error_status(&e))
    }

    async fn end(&self, req: pb::EndTransactionRequest) -> Result<(), pb::Status> {
        let handle = TransactionHandle::parse(&req.transaction_id).ok_or_else(|| {
            status(
                Code::InvalidTransactionId,
                format!(
                    "transaction id {:?} was not issued by a proxy",
                    req.transaction_id
                ),
            )
        })?;
        let topic = req.topic.map(|t| t.name).unwrap_or_default();
        let route = self.core.route(&topic).await?;
        let addr = ProxyCore::master_of(&route, &handle.broker_name)?;
        let commit_or_rollback = match pb::TransactionResolution::try_from(req.resolution) {
            Ok(pb::TransactionResolution::Commit) => 8,
            Ok(pb::TransactionResolution::Rollback) => 12,
            _ => 0,
        };
        if commit_or_rollback == 0 {
            // Unknown: the broker checks again later; nothing to send.
            return Ok(());
        }
        let header = EndTransactionRequestHeader {
            topic: Some(topic.clone()),
            producer_group: topic,
            tran_state_table_offset: handle.queue_offset,
            commit_log_offset: handle.commit_log_offset,
            commit_or_rollback,
            from_transaction_check: Some(
                req.source == pb::TransactionSource::SourceServerCheck as i32,
            ),
            msg_id: req.message_id,
            transaction_id: Some(handle.transaction_id),
        };
        self.core
            .client()
            .end_transaction(&addr, &header, true)
            .await
            .map_err(|e| client_error_status(&e))
    }

    async fn queue_target(
        &self,
        mq: &Option<pb::MessageQueue>,
    ) -> Result<(String, String, i32), pb::Status> {
        let mq = mq.clone().unwrap_or_default();
        let topic = mq.topic.map(|t| t.name).unwrap_or_default();
        let route = self.core.route(&topic).await?;
        let broker = mq.broker.map(|b| b.name).unwrap_or_default();
        let addr = ProxyCore::master_of(&route, &broker)?;
        Ok((addr, topic, mq.id))
    }

    async fn pull(
        &self,
        req: pb::PullMessageRequest,
    ) -> Result<Vec<pb::PullMessageResponse>, pb::Status> {
        let (addr, topic, queue_id) = self.queue_target(&req.message_queue).await?;
        let group = req.group.map(|g| g.name).unwrap_or_default();
        let filter = req.filter_expression.unwrap_or_default();
        let poll = req
            .long_polling_timeout
            .as_ref()
            .map_or(0, duration_ms)
            .clamp(0, MAX_LONG_POLL_MS);
        let header = PullMessageRequestHeader {
            consumer_group: group,
            topic: topic.clone(),
            queue_id,
            queue_offset: req.offset,
            max_msg_nums: req.batch_size.clamp(1, 1024),
            sys_flag: if poll > 0 { 0x2 | 0x4 } else { 0x4 },
            suspend_timeout_millis: poll,
            subscription: Some(if filter.expression.is_empty() {
                "*".into()
            } else {
                filter.expression
            }),
            expression_type: Some(if filter.r#type == pb::FilterType::Sql as i32 {
                "SQL92".into()
            } else {
                "TAG".into()
            }),
            ..Default::default()
        };
        let timeout = self.core.client().timeout() + Duration::from_millis(poll as u64);
        let pulled = self
            .core
            .client()
            .pull_message(&addr, &header, timeout)
            .await
            .map_err(|e| client_error_status(&e))?;
        let status_item = |s| pb::PullMessageResponse {
            content: Some(pb::pull_message_response::Content::Status(s)),
        };
        let next = pb::PullMessageResponse {
            content: Some(pb::pull_message_response::Content::NextOffset(
                pulled.header.next_begin_offset,
            )),
        };
        if pulled.code != ResponseCode::Success.as_i32() {
            return Ok(vec![
                status_item(status(Code::MessageNotFound, "no new message")),
                next,
            ]);
        }
        let messages = StoredMessage::decode_all(&pulled.body)
            .map_err(|e| status(Code::InternalServerError, e.to_string()))?;
        let mut out = vec![status_item(ok())];
        for m in &messages {
            out.push(pb::PullMessageResponse {
                content: Some(pb::pull_message_response::Content::Message(incoming(
                    m,
                    "",
                    &topic,
                    None,
                    m.reconsume_times + 1,
                ))),
            });
        }
        out.push(next);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_handles_round_trip() {
        let h = TransactionHandle {
            broker_name: "broker-a".into(),
            commit_log_offset: 1234,
            queue_offset: 5,
            transaction_id: "01AB|weird".into(),
        };
        assert_eq!(TransactionHandle::parse(&h.to_string()), Some(h));
        assert_eq!(TransactionHandle::parse("nonsense"), None);
        assert_eq!(TransactionHandle::parse("b|x|1|t"), None);
    }

    #[test]
    fn summaries_say_when_entries_differ() {
        assert_eq!(summarize([ok(), ok()].iter()).code, Code::Ok as i32);
        let mixed = [ok(), status(Code::InvalidReceiptHandle, "x")];
        assert_eq!(summarize(mixed.iter()).code, Code::MultipleResults as i32);
        let one = [status(Code::TopicNotFound, "x")];
        assert_eq!(summarize(one.iter()).code, Code::TopicNotFound as i32);
    }
}
