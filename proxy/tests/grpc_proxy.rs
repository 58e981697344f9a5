//! The proxy over a real name server and broker (in this process), driven by a gRPC client
//! generated from the same protocol: routes, sends (normal, delay, FIFO, transactional with
//! commit, rollback and check-back), receive and ack, invisible time changes, redelivery,
//! the DLQ, offsets, bad input, two proxies over one cluster, and a proxy restart while a
//! receive is held.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rocketmq_client::MqClient;
use rocketmq_common::body::SubscriptionGroupConfig;
use rocketmq_common::route::TopicConfig;
use rocketmq_proxy::convert::{duration, timestamp};
use rocketmq_proxy::local::{LocalCluster, LocalOptions};
use rocketmq_proxy::pb::messaging_service_client::MessagingServiceClient;
use rocketmq_proxy::pb::{self, Code};
use rocketmq_proxy::{ProxyConfig, ProxyServer};
use rocketmq_testkit::free_port;
use tonic::transport::Channel;

const GROUP: &str = "GrpcGroup";

struct Cluster {
    _dir: tempfile::TempDir,
    local: LocalCluster,
    admin: MqClient,
}

async fn cluster() -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("broker.conf");
    std::fs::write(&conf, "mappedFileSizeCommitLog=8388608\nflushConsumerOffsetInterval=200\ntransactionCheckInterval=500\ntransactionTimeOut=1000\n").unwrap();
    let local = LocalCluster::start(&LocalOptions {
        dir: dir.path().to_path_buf(),
        namesrv_port: free_port(),
        broker_port: free_port(),
        namesrv_metrics_port: 0,
        broker_metrics_port: 0,
        broker_config_file: Some(conf),
    })
    .await
    .unwrap();
    let admin = MqClient::new(
        &local.namesrv.local_addr().to_string(),
        Duration::from_secs(5),
    )
    .unwrap();
    Cluster {
        _dir: dir,
        local,
        admin,
    }
}

impl Cluster {
    fn broker(&self) -> String {
        self.local.broker.broker_addr().to_string()
    }

    async fn topic(&self, name: &str, queues: i32) {
        self.admin
            .create_topic(&self.broker(), &TopicConfig::new(name, queues))
            .await
            .unwrap();
        self.admin
            .wait_for_route(name, Duration::from_secs(20))
            .await
            .unwrap();
    }

    async fn group(&self, retry_max: i32) {
        let g = SubscriptionGroupConfig {
            retry_max_times: retry_max,
            ..SubscriptionGroupConfig::new(GROUP)
        };
        self.admin
            .create_subscription_group(&self.broker(), serde_json::to_vec(&g).unwrap())
            .await
            .unwrap();
    }

    fn proxy_config(&self) -> ProxyConfig {
        ProxyConfig {
            namesrv_addrs: vec![self.local.namesrv.local_addr().to_string()],
            listen_addr: ([127, 0, 0, 1], 0).into(),
            ..ProxyConfig::default()
        }
    }

    /// A proxy in local mode: it reaches the broker in this process without a socket.
    async fn proxy(&self) -> ProxyServer {
        ProxyServer::start_beside(self.proxy_config(), &self.local.broker)
            .await
            .unwrap()
    }

    /// A proxy in cluster mode: it reaches the broker over Remoting.
    async fn proxy_over_remoting(&self) -> ProxyServer {
        ProxyServer::start(self.proxy_config()).await.unwrap()
    }
}

struct Client {
    stub: MessagingServiceClient<Channel>,
    id: String,
}

impl Client {
    async fn connect(proxy: &ProxyServer, id: &str) -> Self {
        let stub = MessagingServiceClient::connect(format!("http://{}", proxy.local_addr()))
            .await
            .unwrap();
        Self {
            stub,
            id: id.to_string(),
        }
    }

    fn req<T>(&self, body: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(body);
        r.metadata_mut()
            .insert("x-mq-client-id", self.id.parse().unwrap());
        r
    }

    async fn route(&mut self, topic: &str) -> pb::QueryRouteResponse {
        let r = self.req(pb::QueryRouteRequest {
            topic: Some(res(topic)),
            endpoints: None,
        });
        self.stub.query_route(r).await.unwrap().into_inner()
    }

    async fn send(&mut self, messages: Vec<pb::Message>) -> pb::SendMessageResponse {
        let r = self.req(pb::SendMessageRequest { messages });
        self.stub.send_message(r).await.unwrap().into_inner()
    }

    async fn receive(
        &mut self,
        topic: &str,
        batch: i32,
        invisible_ms: i64,
        poll_ms: i64,
    ) -> (pb::Status, Vec<pb::Message>) {
        let r = self.req(pb::ReceiveMessageRequest {
            group: Some(res(GROUP)),
            message_queue: Some(pb::MessageQueue {
                topic: Some(res(topic)),
                id: -1,
                permission: pb::Permission::ReadWrite as i32,
                broker: None,
                accept_message_types: Vec::new(),
            }),
            filter_expression: Some(pb::FilterExpression {
                r#type: pb::FilterType::Tag as i32,
                expression: "*".into(),
            }),
            batch_size: batch,
            invisible_duration: Some(duration(invisible_ms)),
            auto_renew: false,
            long_polling_timeout: Some(duration(poll_ms)),
            attempt_id: None,
        });
        let mut stream = self.stub.receive_message(r).await.unwrap().into_inner();
        let mut status = None;
        let mut messages = Vec::new();
        let mut delivery_ts = false;
        while let Some(item) = stream.message().await.unwrap() {
            match item.content.expect("every item has content") {
                pb::receive_message_response::Content::Status(s) => status = Some(s),
                pb::receive_message_response::Content::Message(m) => messages.push(m),
                pb::receive_message_response::Content::DeliveryTimestamp(_) => delivery_ts = true,
            }
        }
        assert!(delivery_ts, "the stream ends with a delivery timestamp");
        (status.expect("every receive carries a status"), messages)
    }

    async fn receive_keys(
        &mut self,
        topic: &str,
        want: &[&str],
        invisible_ms: i64,
        limit: Duration,
    ) -> Vec<pb::Message> {
        let deadline = Instant::now() + limit;
        let mut got: Vec<pb::Message> = Vec::new();
        while Instant::now() < deadline {
            let seen: BTreeSet<String> = got.iter().map(key).collect();
            if want.iter().all(|k| seen.contains(*k)) {
                break;
            }
            let (_, m) = self.receive(topic, 32, invisible_ms, 1000).await;
            got.extend(m);
        }
        got
    }

    async fn ack(&mut self, topic: &str, messages: &[&pb::Message]) -> pb::AckMessageResponse {
        let r = self.req(pb::AckMessageRequest {
            group: Some(res(GROUP)),
            topic: Some(res(topic)),
            entries: messages
                .iter()
                .map(|m| pb::AckMessageEntry {
                    message_id: sys(m).message_id.clone(),
                    receipt_handle: sys(m).receipt_handle.clone().unwrap(),
                })
                .collect(),
        });
        self.stub.ack_message(r).await.unwrap().into_inner()
    }
}

fn res(name: &str) -> pb::Resource {
    pb::Resource {
        resource_namespace: String::new(),
        name: name.into(),
    }
}

fn sys(m: &pb::Message) -> &pb::SystemProperties {
    m.system_properties.as_ref().unwrap()
}

fn key(m: &pb::Message) -> String {
    sys(m).keys.first().cloned().unwrap_or_default()
}

fn message(topic: &str, key: &str) -> pb::Message {
    pb::Message {
        topic: Some(res(topic)),
        user_properties: [("origin".to_string(), "grpc-test".to_string())].into(),
        system_properties: Some(pb::SystemProperties {
            tag: Some("TagA".into()),
            keys: vec![key.into()],
            message_id: format!("01{key}"),
            message_type: pb::MessageType::Normal as i32,
            body_encoding: pb::Encoding::Identity as i32,
            born_timestamp: Some(timestamp(rocketmq_proxy::convert::now_ms())),
            ..Default::default()
        }),
        body: format!("body-{key}").into_bytes(),
    }
}

fn code(s: &Option<pb::Status>) -> i32 {
    s.as_ref().map_or(-1, |s| s.code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn send_receive_ack_redeliver_dead_letter_and_bad_input() {
    let c = cluster().await;
    c.topic("GrpcTopic", 4).await;
    c.group(1).await;
    let proxy = c.proxy().await;
    let mut client = Client::connect(&proxy, "test-client-1").await;

    let route = client.route("GrpcTopic").await;
    assert_eq!(code(&route.status), Code::Ok as i32);
    assert_eq!(route.message_queues.len(), 4);
    let q = &route.message_queues[0];
    assert_eq!(q.permission, pb::Permission::ReadWrite as i32);
    let broker = q.broker.as_ref().unwrap();
    assert_eq!(broker.id, 0);
    assert_eq!(
        broker.endpoints.as_ref().unwrap().addresses[0].port,
        i32::from(proxy.local_addr().port()),
        "clients are sent back to the proxy"
    );
    assert_eq!(
        code(&client.route("NoSuchTopic").await.status),
        Code::TopicNotFound as i32
    );
    assert_eq!(
        code(&client.route("SCHEDULE_TOPIC_XXXX").await.status),
        Code::IllegalTopic as i32
    );

    let sent = client
        .send(
            (0..6)
                .map(|i| message("GrpcTopic", &format!("g{i}")))
                .collect(),
        )
        .await;
    assert_eq!(code(&sent.status), Code::Ok as i32, "{:?}", sent.status);
    assert_eq!(sent.entries.len(), 6);
    assert_eq!(
        sent.entries[2].message_id, "01g2",
        "the client's message id is echoed"
    );

    // Receive everything once; ack four, leave two.
    let got = client
        .receive_keys(
            "GrpcTopic",
            &["g0", "g1", "g2", "g3", "g4", "g5"],
            2000,
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(got.len(), 6);
    for m in &got {
        assert_eq!(m.topic.as_ref().unwrap().name, "GrpcTopic");
        assert_eq!(sys(m).tag.as_deref(), Some("TagA"));
        assert_eq!(sys(m).delivery_attempt, Some(1));
        assert_eq!(
            m.user_properties.get("origin").map(String::as_str),
            Some("grpc-test")
        );
        assert_eq!(m.body, format!("body-{}", key(m)).into_bytes());
        assert_eq!(
            sys(m).body_digest.as_ref().unwrap().checksum,
            format!("{:08X}", crc32fast::hash(&m.body))
        );
    }
    let acked: Vec<&pb::Message> = got
        .iter()
        .filter(|m| !["g4", "g5"].contains(&key(m).as_str()))
        .collect();
    let ack = client.ack("GrpcTopic", &acked).await;
    assert_eq!(code(&ack.status), Code::Ok as i32, "{:?}", ack);
    assert_eq!(ack.entries.len(), 4);

    // g4 and g5 come back once their invisible time passes, second attempt.
    let again = client
        .receive_keys("GrpcTopic", &["g4", "g5"], 2000, Duration::from_secs(15))
        .await;
    let keys: BTreeSet<String> = again.iter().map(key).collect();
    assert_eq!(keys, ["g4", "g5"].iter().map(|s| s.to_string()).collect());
    for m in &again {
        assert_eq!(sys(m).delivery_attempt, Some(2));
        assert_eq!(m.topic.as_ref().unwrap().name, "GrpcTopic");
    }
    // g4 acked; g5's invisible time is extended, then it is left: past retryMaxTimes=1
    // it lands in the DLQ.
    let g4 = again.iter().find(|m| key(m) == "g4").unwrap();
    assert_eq!(
        code(&client.ack("GrpcTopic", &[g4]).await.status),
        Code::Ok as i32
    );
    let g5 = again.iter().find(|m| key(m) == "g5").unwrap();
    let changed = {
        let r = client.req(pb::ChangeInvisibleDurationRequest {
            group: Some(res(GROUP)),
            topic: Some(res("GrpcTopic")),
            receipt_handle: sys(g5).receipt_handle.clone().unwrap(),
            invisible_duration: Some(duration(1500)),
            message_id: sys(g5).message_id.clone(),
        });
        client
            .stub
            .change_invisible_duration(r)
            .await
            .unwrap()
            .into_inner()
    };
    assert_eq!(
        code(&changed.status),
        Code::Ok as i32,
        "{:?}",
        changed.status
    );
    assert_ne!(
        changed.receipt_handle,
        *sys(g5).receipt_handle.as_ref().unwrap()
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let n = c
            .admin
            .queue_offset(&c.broker(), "%DLQ%GrpcGroup", 0, true)
            .await
            .unwrap_or(0);
        if n == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "g5 never reached the DLQ");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Nothing is left: an empty receive says MESSAGE_NOT_FOUND after its long poll.
    let started = Instant::now();
    let (s, m) = client.receive("GrpcTopic", 32, 2000, 1500).await;
    assert!(m.is_empty());
    assert_eq!(s.code, Code::MessageNotFound as i32);
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "the receive was held"
    );

    // Bad input gets the codes clients expect; the proxy keeps serving.
    let forged = client
        .ack(
            "GrpcTopic",
            &[&{
                let mut m = got[0].clone();
                m.system_properties.as_mut().unwrap().receipt_handle = Some("garbage".into());
                m
            }],
        )
        .await;
    assert_eq!(
        code(&forged.entries[0].status),
        Code::InvalidReceiptHandle as i32
    );
    let mut bad = message("GrpcTopic", "bad");
    bad.user_properties.insert("UNIQ_KEY".into(), "x".into());
    let r = client.send(vec![bad]).await;
    assert_eq!(
        code(&r.entries[0].status),
        Code::IllegalMessagePropertyKey as i32
    );
    let mut anonymous = tonic::Request::new(pb::HeartbeatRequest {
        group: None,
        client_type: pb::ClientType::Producer as i32,
    });
    anonymous.metadata_mut().remove("x-mq-client-id");
    let hb = client.stub.heartbeat(anonymous).await.unwrap().into_inner();
    assert_eq!(code(&hb.status), Code::ClientIdRequired as i32);
    let end = {
        let r = client.req(pb::EndTransactionRequest {
            topic: Some(res("GrpcTopic")),
            message_id: "x".into(),
            transaction_id: "not-ours".into(),
            resolution: pb::TransactionResolution::Commit as i32,
            source: pb::TransactionSource::SourceClient as i32,
            trace_context: String::new(),
        });
        client.stub.end_transaction(r).await.unwrap().into_inner()
    };
    assert_eq!(code(&end.status), Code::InvalidTransactionId as i32);
    assert_eq!(
        code(&client.route("GrpcTopic").await.status),
        Code::Ok as i32
    );

    proxy.shutdown().await;
    c.local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transactions_commit_rollback_and_check_back_over_telemetry() {
    let c = cluster().await;
    c.topic("TxTopic", 2).await;
    c.group(16).await;
    let proxy = c.proxy().await;
    let mut producer = Client::connect(&proxy, "tx-producer").await;

    // The producer announces itself over Telemetry and gets its settings back.
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tx.send(pb::TelemetryCommand {
        status: None,
        command: Some(pb::telemetry_command::Command::Settings(pb::Settings {
            client_type: Some(pb::ClientType::Producer as i32),
            pub_sub: Some(pb::settings::PubSub::Publishing(pb::Publishing {
                topics: vec![res("TxTopic")],
                max_body_size: 0,
                validate_message_type: true,
            })),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let outbound = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut inbound = producer
        .stub
        .telemetry(producer.req(outbound))
        .await
        .unwrap()
        .into_inner();
    let echo = inbound.message().await.unwrap().unwrap();
    assert_eq!(code(&echo.status), Code::Ok as i32);
    match echo.command {
        Some(pb::telemetry_command::Command::Settings(s)) => {
            assert!(
                matches!(s.pub_sub, Some(pb::settings::PubSub::Publishing(p)) if p.max_body_size == 4 << 20)
            );
        }
        other => panic!("expected the settings back, got {other:?}"),
    }

    let half = |k: &str| {
        let mut m = message("TxTopic", k);
        m.system_properties.as_mut().unwrap().message_type = pb::MessageType::Transaction as i32;
        m
    };
    let mut txs = Vec::new();
    for k in ["commit-me", "roll-me", "check-me"] {
        let r = producer.send(vec![half(k)]).await;
        assert_eq!(code(&r.status), Code::Ok as i32, "{:?}", r);
        assert!(!r.entries[0].transaction_id.is_empty());
        txs.push((
            k,
            r.entries[0].message_id.clone(),
            r.entries[0].transaction_id.clone(),
        ));
    }
    let end = |producer: &mut Client,
               message_id: &str,
               tx: &str,
               resolution: pb::TransactionResolution,
               source: pb::TransactionSource| {
        producer.req(pb::EndTransactionRequest {
            topic: Some(res("TxTopic")),
            message_id: message_id.into(),
            transaction_id: tx.into(),
            resolution: resolution as i32,
            source: source as i32,
            trace_context: String::new(),
        })
    };
    let r = end(
        &mut producer,
        &txs[0].1,
        &txs[0].2,
        pb::TransactionResolution::Commit,
        pb::TransactionSource::SourceClient,
    );
    assert_eq!(
        code(
            &producer
                .stub
                .end_transaction(r)
                .await
                .unwrap()
                .into_inner()
                .status
        ),
        Code::Ok as i32
    );
    let r = end(
        &mut producer,
        &txs[1].1,
        &txs[1].2,
        pb::TransactionResolution::Rollback,
        pb::TransactionSource::SourceClient,
    );
    assert_eq!(
        code(
            &producer
                .stub
                .end_transaction(r)
                .await
                .unwrap()
                .into_inner()
                .status
        ),
        Code::Ok as i32
    );

    // "check-me" is left open: the broker asks, the proxy relays the question over Telemetry,
    // the producer commits from the check.
    let check = tokio::time::timeout(Duration::from_secs(20), inbound.message())
        .await
        .expect("a transaction check arrives")
        .unwrap()
        .unwrap();
    let Some(pb::telemetry_command::Command::RecoverOrphanedTransactionCommand(cmd)) =
        check.command
    else {
        panic!("expected an orphaned transaction command, got {check:?}");
    };
    let checked = cmd.message.unwrap();
    assert_eq!(key(&checked), "check-me");
    assert_eq!(checked.topic.as_ref().unwrap().name, "TxTopic");
    let r = end(
        &mut producer,
        &sys(&checked).message_id,
        &cmd.transaction_id,
        pb::TransactionResolution::Commit,
        pb::TransactionSource::SourceServerCheck,
    );
    assert_eq!(
        code(
            &producer
                .stub
                .end_transaction(r)
                .await
                .unwrap()
                .into_inner()
                .status
        ),
        Code::Ok as i32
    );

    let mut consumer = Client::connect(&proxy, "tx-consumer").await;
    let got = consumer
        .receive_keys(
            "TxTopic",
            &["commit-me", "check-me"],
            30_000,
            Duration::from_secs(15),
        )
        .await;
    let keys: BTreeSet<String> = got.iter().map(key).collect();
    assert!(
        keys.contains("commit-me") && keys.contains("check-me"),
        "{keys:?}"
    );
    assert!(
        !keys.contains("roll-me"),
        "a rolled back message is never delivered"
    );
    drop(tx);
    proxy.shutdown().await;
    c.local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifo_delay_two_proxies_and_a_proxy_restart_mid_receive() {
    let c = cluster().await;
    c.topic("OrderTopic", 4).await;
    c.group(16).await;
    // One proxy in local mode, one in cluster mode: they serve the same broker alike.
    let proxy_a = c.proxy().await;
    let proxy_b = c.proxy_over_remoting().await;
    let mut a = Client::connect(&proxy_a, "client-a").await;
    let mut b = Client::connect(&proxy_b, "client-b").await;

    // FIFO: one message group goes to one queue, in order, whichever proxy sends it.
    for i in 0..6 {
        let mut m = message("OrderTopic", &format!("o{i}"));
        m.system_properties.as_mut().unwrap().message_group = Some("order-1".into());
        m.system_properties.as_mut().unwrap().message_type = pb::MessageType::Fifo as i32;
        let client = if i % 2 == 0 { &mut a } else { &mut b };
        let r = client.send(vec![m]).await;
        assert_eq!(code(&r.status), Code::Ok as i32);
    }
    // Delay: not visible before its time.
    let mut delayed = message("OrderTopic", "later");
    let due = rocketmq_proxy::convert::now_ms() + 3000;
    delayed
        .system_properties
        .as_mut()
        .unwrap()
        .delivery_timestamp = Some(timestamp(due));
    delayed.system_properties.as_mut().unwrap().message_type = pb::MessageType::Delay as i32;
    assert_eq!(code(&a.send(vec![delayed]).await.status), Code::Ok as i32);

    // Received through proxy B, acked through proxy A: the proxies share no state.
    let got = b
        .receive_keys(
            "OrderTopic",
            &["o0", "o1", "o2", "o3", "o4", "o5"],
            30_000,
            Duration::from_secs(10),
        )
        .await;
    let order: Vec<String> = got
        .iter()
        .filter(|m| key(m).starts_with('o'))
        .map(key)
        .collect();
    assert_eq!(order, ["o0", "o1", "o2", "o3", "o4", "o5"]);
    assert!(
        got.iter()
            .all(|m| sys(m).message_group.as_deref() == Some("order-1"))
    );
    assert!(
        got.iter().all(|m| key(m) != "later"),
        "the delayed message is not visible before its time"
    );
    let refs: Vec<&pb::Message> = got.iter().collect();
    assert_eq!(
        code(&a.ack("OrderTopic", &refs).await.status),
        Code::Ok as i32
    );
    let later = a
        .receive_keys("OrderTopic", &["later"], 30_000, Duration::from_secs(15))
        .await;
    let later = later
        .iter()
        .find(|m| key(m) == "later")
        .expect("the delayed message arrives");
    assert!(
        rocketmq_proxy::convert::now_ms() >= due,
        "delivered no earlier than asked"
    );
    assert_eq!(sys(later).message_type, pb::MessageType::Delay as i32);
    assert_eq!(
        code(&a.ack("OrderTopic", &[later]).await.status),
        Code::Ok as i32
    );

    // A receive held by proxy B when B shuts down ends cleanly; a new proxy serves on.
    let held = tokio::spawn(async move {
        let (s, m) = b.receive("OrderTopic", 32, 30_000, 15_000).await;
        (s, m)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    // Something to find, so the held receive ends with it, then the proxy drains.
    assert_eq!(
        code(
            &a.send(vec![message("OrderTopic", "during-restart")])
                .await
                .status
        ),
        Code::Ok as i32
    );
    proxy_b.shutdown().await;
    let (s, m) = tokio::time::timeout(Duration::from_secs(20), held)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.code, Code::Ok as i32);
    assert_eq!(m.iter().map(key).collect::<Vec<_>>(), ["during-restart"]);
    assert!(started.elapsed() < Duration::from_secs(15));
    let proxy_c = c.proxy_over_remoting().await;
    let mut c2 = Client::connect(&proxy_c, "client-c").await;
    assert_eq!(code(&c2.route("OrderTopic").await.status), Code::Ok as i32);
    assert_eq!(
        code(&c2.ack("OrderTopic", &[&m[0]]).await.status),
        Code::Ok as i32
    );

    proxy_a.shutdown().await;
    proxy_c.shutdown().await;
    c.local.shutdown().await;
}

/// A local-mode proxy holds its broker through the in-process link; once the proxy is shut
/// down the broker must be fully released, or a broker reopened on the same store in this
/// process (a restart in local mode) would find it still locked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_mode_proxy_releases_its_broker_at_shutdown() {
    let c = cluster().await;
    c.topic("ReleaseTopic", 1).await;
    let proxy = c.proxy().await;
    let mut client = Client::connect(&proxy, "release").await;
    let sent = client.send(vec![message("ReleaseTopic", "k")]).await;
    assert_eq!(code(&sent.status), Code::Ok as i32);
    proxy.shutdown().await;
    let Cluster { _dir, local, .. } = c;
    local.shutdown().await;

    let reopened = LocalCluster::start(&LocalOptions {
        dir: _dir.path().to_path_buf(),
        namesrv_port: free_port(),
        broker_port: free_port(),
        namesrv_metrics_port: 0,
        broker_metrics_port: 0,
        broker_config_file: None,
    })
    .await
    .expect("the store is free again once proxy and broker are shut down");
    reopened.shutdown().await;
}
