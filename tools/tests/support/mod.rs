//! Test fixtures: an in-process name server and fake brokers that record what mqadmin sends
//! and answer the way a broker would.

#![allow(dead_code)] // each test file uses a different subset

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rocketmq_common::message::{
    RecordHeaderFields, RecordInput, body_crc, encode_properties, encode_record, encoded_record_len,
};
use rocketmq_common::protocol::headers::namesrv::RegisterBrokerRequestHeader;
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{
    ClientConfig, Dispatcher, RemotingClient, RemotingServer, Reply, RequestContext,
    RequestProcessor, ServerConfig, ServerHandle,
};
use rocketmq_common::route::{RegisterBrokerBody, TopicConfig};
use rocketmq_namesrv::{NamesrvConfig, NamesrvServer};

pub const TIMEOUT: Duration = Duration::from_secs(5);

/// A name server on an ephemeral port with its KV file in a temp dir.
pub struct TestNamesrv {
    pub server: NamesrvServer,
    pub addr: String,
    _dir: tempfile::TempDir,
}

pub async fn start_namesrv() -> TestNamesrv {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = NamesrvConfig {
        listen_addr: "127.0.0.1:0".parse().expect("addr"),
        metrics_port: 0,
        kv_config_path: dir.path().join("kvConfig.json"),
        ..NamesrvConfig::default()
    };
    let server = NamesrvServer::start(config)
        .await
        .expect("name server starts");
    let addr = server.local_addr().to_string();
    TestNamesrv {
        server,
        addr,
        _dir: dir,
    }
}

/// How a fake broker answers one request.
pub type Answer = Arc<dyn Fn(&RemotingCommand) -> RemotingCommand + Send + Sync>;

/// A broker stand-in: records every request and answers from a table by request code.
pub struct FakeBroker {
    pub addr: String,
    pub requests: Arc<Mutex<Vec<RemotingCommand>>>,
    answers: Arc<Mutex<BTreeMap<i32, Answer>>>,
    _handle: ServerHandle,
}

struct Recorder {
    requests: Arc<Mutex<Vec<RemotingCommand>>>,
    answers: Arc<Mutex<BTreeMap<i32, Answer>>>,
}

impl RequestProcessor for Recorder {
    fn process(&self, _ctx: &RequestContext, request: RemotingCommand) -> Reply {
        let answer = self
            .answers
            .lock()
            .expect("answers lock")
            .get(&request.code)
            .cloned();
        self.requests
            .lock()
            .expect("requests lock")
            .push(request.clone());
        let response = match answer {
            Some(f) => f(&request),
            None => RemotingCommand::error(
                ResponseCode::RequestCodeNotSupported,
                format!(" request type {} not supported", request.code),
            ),
        };
        Reply::Now(Ok(Some(response)))
    }
}

/// Every code mqadmin sends to brokers.
const BROKER_CODES: [RequestCode; 10] = [
    RequestCode::UPDATE_AND_CREATE_TOPIC,
    RequestCode::DELETE_TOPIC_IN_BROKER,
    RequestCode::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP,
    RequestCode::DELETE_SUBSCRIPTIONGROUP,
    RequestCode::GET_TOPIC_STATS_INFO,
    RequestCode::GET_CONSUME_STATS,
    RequestCode::QUERY_MESSAGE,
    RequestCode::VIEW_MESSAGE_BY_ID,
    RequestCode::GET_BROKER_RUNTIME_INFO,
    RequestCode::GET_BROKER_CLUSTER_INFO,
];

impl FakeBroker {
    /// Starts a fake broker on an ephemeral port; every admin request succeeds with an
    /// empty body until [`answer`](Self::answer) says otherwise.
    pub async fn start() -> Self {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let answers: Arc<Mutex<BTreeMap<i32, Answer>>> = Arc::default();
        let recorder = Arc::new(Recorder {
            requests: requests.clone(),
            answers: answers.clone(),
        });
        let mut dispatcher = Dispatcher::new();
        dispatcher.register_all(&BROKER_CODES, recorder);
        let config = ServerConfig {
            listen_addr: "127.0.0.1:0".parse().expect("addr"),
            ..ServerConfig::default()
        };
        let handle = RemotingServer::new(config, dispatcher)
            .start()
            .await
            .expect("fake broker listens");
        let broker = Self {
            addr: handle.local_addr().to_string(),
            requests,
            answers,
            _handle: handle,
        };
        for code in BROKER_CODES {
            broker.answer(code, |_| RemotingCommand::success());
        }
        broker
    }

    /// Sets how requests with `code` are answered.
    pub fn answer(
        &self,
        code: RequestCode,
        f: impl Fn(&RemotingCommand) -> RemotingCommand + Send + Sync + 'static,
    ) {
        self.answers
            .lock()
            .expect("answers lock")
            .insert(code.as_i32(), Arc::new(f));
    }

    /// The requests received with `code`, in order.
    pub fn received(&self, code: RequestCode) -> Vec<RemotingCommand> {
        self.requests
            .lock()
            .expect("requests lock")
            .iter()
            .filter(|r| r.code == code.as_i32())
            .cloned()
            .collect()
    }

    pub fn socket_addr(&self) -> SocketAddr {
        self.addr.parse().expect("broker addr")
    }
}

/// Registers a broker with the name server. The returned client holds the registering
/// connection: the name server drops the broker when it closes, so keep it alive.
pub async fn register(
    namesrv: &str,
    cluster: &str,
    broker_name: &str,
    broker_id: i64,
    broker_addr: &str,
    topics: &[(&str, i32)],
) -> RemotingClient {
    let client = RemotingClient::new(ClientConfig::default());
    let mut body = RegisterBrokerBody::default();
    body.topic_config_serialize_wrapper.data_version.counter = 1;
    for (topic, queues) in topics {
        body.topic_config_serialize_wrapper
            .topic_config_table
            .insert(topic.to_string(), TopicConfig::new(*topic, *queues));
    }
    let body = serde_json::to_vec(&body).expect("register body");
    let header = RegisterBrokerRequestHeader {
        broker_name: broker_name.into(),
        broker_addr: broker_addr.into(),
        cluster_name: cluster.into(),
        ha_server_addr: "127.0.0.1:1".into(),
        broker_id,
        heartbeat_timeout_millis: None,
        enable_acting_master: Some(false),
        compressed: Some(false),
        body_crc32: Some((crc32fast::hash(&body) & 0x7FFF_FFFF) as i32),
    };
    client
        .invoke_ok(
            namesrv,
            RemotingCommand::request(RequestCode::REGISTER_BROKER, &header).with_body(body),
            TIMEOUT,
        )
        .await
        .expect("broker registers");
    client
}

/// A stored message record as a broker returns it from its CommitLog.
pub struct Record<'a> {
    pub topic: &'a str,
    pub queue_id: i32,
    pub queue_offset: i64,
    pub commit_log_offset: i64,
    pub store_host: SocketAddr,
    pub properties: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

impl Record<'_> {
    pub fn encode(&self) -> Vec<u8> {
        let props = encode_properties(self.properties.iter().copied());
        let input = RecordInput {
            topic: self.topic,
            queue_id: self.queue_id,
            flag: 0,
            sys_flag: 0,
            born_timestamp: 1_700_000_000_000,
            born_host: "10.1.2.3:40000".parse().expect("addr"),
            store_host: self.store_host,
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body: self.body,
            properties: &props,
        };
        let mut buf = vec![0u8; encoded_record_len(&input).expect("record fits")];
        encode_record(
            &input,
            &RecordHeaderFields {
                queue_offset: self.queue_offset,
                physical_offset: self.commit_log_offset,
                store_timestamp: 1_700_000_000_500,
                body_crc: body_crc(self.body),
            },
            &mut buf,
        )
        .expect("record encodes");
        buf
    }
}

/// The header fields of a request, for assertions.
pub fn fields(request: &RemotingCommand) -> BTreeMap<String, String> {
    request.ext_fields.clone().unwrap_or_default()
}
