//! RocketMQ 5 compatibility with the official Rust gRPC SDK (crate `rocketmq` 5.0.0, a
//! client we did not write) against our proxy over our name server and broker (in this
//! process): normal, delay, FIFO and transactional producers (commit, rollback, check-back),
//! a SimpleConsumer receiving and acking, redelivery after the invisible time, the DLQ
//! after the group's retry limit, two proxies over one cluster, and a proxy restart between
//! receives.
//!
//! The SDK has no `change_invisible_duration` in 5.0.0; the proxy's own tests cover it.

use std::collections::{BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rocketmq::conf::{ClientOption, ProducerOption, SimpleConsumerOption};
use rocketmq::model::common::{FilterExpression, FilterType};
use rocketmq::model::message::{MessageBuilder, MessageView};
use rocketmq::model::transaction::{Transaction, TransactionResolution};
use rocketmq::{Producer, SimpleConsumer};
use rocketmq_client::MqClient;
use rocketmq_common::body::SubscriptionGroupConfig;
use rocketmq_common::route::TopicConfig;
use rocketmq_proxy::local::{LocalCluster, LocalOptions};
use rocketmq_proxy::{ProxyConfig, ProxyServer};
use rocketmq_testkit::free_port;

struct Cluster {
    _dir: tempfile::TempDir,
    local: LocalCluster,
    admin: MqClient,
}

impl Cluster {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("broker.conf");
        std::fs::write(
            &conf,
            "mappedFileSizeCommitLog=8388608\nflushConsumerOffsetInterval=200\n\
             transactionCheckInterval=500\ntransactionTimeOut=1000\n",
        )
        .unwrap();
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
        Self {
            _dir: dir,
            local,
            admin,
        }
    }

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

    async fn group(&self, name: &str, retry_max: i32) {
        let g = SubscriptionGroupConfig {
            retry_max_times: retry_max,
            ..SubscriptionGroupConfig::new(name)
        };
        self.admin
            .create_subscription_group(&self.broker(), serde_json::to_vec(&g).unwrap())
            .await
            .unwrap();
    }

    async fn proxy_on(&self, port: u16) -> ProxyServer {
        ProxyServer::start(ProxyConfig {
            namesrv_addrs: vec![self.local.namesrv.local_addr().to_string()],
            listen_addr: ([127, 0, 0, 1], port).into(),
            ..ProxyConfig::default()
        })
        .await
        .unwrap()
    }
}

fn client_option(proxy: &ProxyServer) -> ClientOption {
    let mut o = ClientOption::default();
    o.set_access_url(proxy.local_addr().to_string());
    o.set_enable_tls(false);
    o.set_timeout(Duration::from_secs(5));
    // Short long polls keep empty receives of idle queues quick.
    o.set_long_polling_timeout(Duration::from_secs(3));
    o
}

async fn producer(proxy: &ProxyServer, topics: &[&str]) -> Producer {
    let mut po = ProducerOption::default();
    po.set_topics(topics.to_vec());
    let mut p = Producer::new(po, client_option(proxy)).unwrap();
    p.start().await.unwrap();
    p
}

async fn consumer(proxy: &ProxyServer, group: &str, topic: &str) -> SimpleConsumer {
    let mut co = SimpleConsumerOption::default();
    co.set_consumer_group(group);
    co.set_topics(vec![topic]);
    let mut c = SimpleConsumer::new(co, client_option(proxy)).unwrap();
    c.start().await.unwrap();
    c
}

fn key(m: &MessageView) -> String {
    m.keys().first().cloned().unwrap_or_default()
}

/// Receives until every key of `want` was seen or `limit` passes; acks nothing.
async fn receive_keys(
    c: &SimpleConsumer,
    topic: &str,
    want: &[String],
    invisible: Duration,
    limit: Duration,
) -> Vec<MessageView> {
    receive_keys_acking(c, topic, want, None, invisible, limit).await
}

/// Like [`receive_keys`], but with `ack_all_but` each message is acked as soon as it is
/// received (a receipt expires with its invisible time), except those with the given keys.
async fn receive_keys_acking(
    c: &SimpleConsumer,
    topic: &str,
    want: &[String],
    ack_all_but: Option<&[&str]>,
    invisible: Duration,
    limit: Duration,
) -> Vec<MessageView> {
    let deadline = Instant::now() + limit;
    let mut got: Vec<MessageView> = Vec::new();
    while Instant::now() < deadline {
        let seen: BTreeSet<String> = got.iter().map(key).collect();
        if want.iter().all(|k| seen.contains(k)) {
            break;
        }
        match c
            .receive_with(
                topic,
                &FilterExpression::new(FilterType::Tag, "*"),
                32,
                invisible,
            )
            .await
        {
            Ok(messages) => {
                for m in messages {
                    if let Some(keep) = ack_all_but
                        && !keep.contains(&key(&m).as_str())
                    {
                        c.ack(&m).await.unwrap();
                    }
                    got.push(m);
                }
            }
            Err(e) => panic!("receive failed: {e:?}"),
        }
    }
    got
}

fn keys(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn official_rust_sdk_produces_and_consumes_through_the_proxy() {
    let c = Cluster::start().await;
    c.topic("SdkTopic", 4).await;
    c.topic("SdkDelay", 2).await;
    c.topic("SdkFifo", 4).await;
    c.group("SdkGroup", 16).await;
    c.group("SdkDlqGroup", 1).await;
    let proxy_a = c.proxy_on(0).await;
    let proxy_b = c.proxy_on(0).await;

    // Normal messages through proxy A, consumed through proxy B.
    let p = producer(&proxy_a, &["SdkTopic", "SdkDelay", "SdkFifo"]).await;
    let normal = keys("n", 20);
    let mut ids = HashSet::new();
    for k in &normal {
        let m = MessageBuilder::builder()
            .set_topic("SdkTopic")
            .set_body(format!("body-{k}").into_bytes())
            .set_tag("TagA")
            .set_keys(vec![k.clone()])
            .build()
            .unwrap();
        let receipt = p.send(m).await.unwrap();
        assert!(!receipt.message_id().is_empty());
        ids.insert(receipt.message_id().to_string());
    }
    assert_eq!(ids.len(), normal.len(), "message ids are unique");
    let sc = consumer(&proxy_b, "SdkGroup", "SdkTopic").await;
    // Acked as they arrive, but for two that come back after their invisible time.
    let got = receive_keys_acking(
        &sc,
        "SdkTopic",
        &normal,
        Some(&["n3", "n7"]),
        Duration::from_secs(5),
        Duration::from_secs(60),
    )
    .await;
    let got_keys: BTreeSet<String> = got.iter().map(key).collect();
    assert_eq!(got_keys, normal.iter().cloned().collect());
    let mut first = HashSet::new();
    for m in got.iter().filter(|m| first.insert(key(m))) {
        assert_eq!(m.topic(), "SdkTopic");
        assert_eq!(m.tag(), Some("TagA"));
        assert_eq!(m.body(), format!("body-{}", key(m)).as_bytes());
        assert_eq!(m.delivery_attempt(), 1, "first delivery of {}", key(m));
        assert!(
            ids.contains(m.message_id()),
            "the id the producer got is the id consumers see"
        );
    }
    let kept: Vec<&MessageView> = got
        .iter()
        .filter(|m| key(m) == "n3" || key(m) == "n7")
        .collect();
    let back = receive_keys(
        &sc,
        "SdkTopic",
        &["n3".to_string(), "n7".to_string()],
        Duration::from_secs(30),
        Duration::from_secs(60),
    )
    .await;
    let back_keys: BTreeSet<String> = back.iter().map(key).collect();
    assert_eq!(back_keys, kept.iter().map(|m| key(m)).collect());
    for m in &back {
        assert_eq!(m.delivery_attempt(), 2);
        sc.ack(m).await.unwrap();
    }

    // Delay: invisible until its time.
    let due = now_secs() + 4;
    let m = MessageBuilder::delay_message_builder("SdkDelay", b"later".to_vec(), due)
        .set_keys(vec!["d0"])
        .build()
        .unwrap();
    p.send(m).await.unwrap();
    let dc = consumer(&proxy_b, "SdkGroup", "SdkDelay").await;
    let early = receive_keys(
        &dc,
        "SdkDelay",
        &["d0".to_string()],
        Duration::from_secs(30),
        Duration::from_secs(2),
    )
    .await;
    assert!(early.is_empty(), "a delayed message is not delivered early");
    let late = receive_keys(
        &dc,
        "SdkDelay",
        &["d0".to_string()],
        Duration::from_secs(30),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(late.iter().map(key).collect::<Vec<_>>(), ["d0"]);
    assert!(now_secs() >= due);
    assert_eq!(late[0].delivery_timestamp(), Some(due));
    dc.ack(&late[0]).await.unwrap();

    // FIFO: one message group lands in one queue, consumed in send order.
    let fifo = keys("f", 8);
    for k in &fifo {
        let m = MessageBuilder::fifo_message_builder("SdkFifo", k.clone().into_bytes(), "group-1")
            .set_keys(vec![k.clone()])
            .build()
            .unwrap();
        p.send(m).await.unwrap();
    }
    let fc = consumer(&proxy_a, "SdkGroup", "SdkFifo").await;
    let got = receive_keys(
        &fc,
        "SdkFifo",
        &fifo,
        Duration::from_secs(30),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(got.iter().map(key).collect::<Vec<_>>(), fifo);
    assert!(got.iter().all(|m| m.message_group() == Some("group-1")));
    for m in &got {
        fc.ack(m).await.unwrap();
    }

    // DLQ: never acked, retryMaxTimes=1: after two deliveries the message is in the DLQ.
    let m = MessageBuilder::builder()
        .set_topic("SdkTopic")
        .set_body(b"poison".to_vec())
        .set_keys(vec!["poison"])
        .build()
        .unwrap();
    p.send(m).await.unwrap();
    let poison = consumer(&proxy_b, "SdkDlqGroup", "SdkTopic").await;
    let first = receive_keys(
        &poison,
        "SdkTopic",
        &["poison".to_string()],
        Duration::from_secs(2),
        Duration::from_secs(60),
    )
    .await;
    assert!(first.iter().any(|m| key(m) == "poison"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // Keep receiving (and never acking) so the redelivery is handed out too.
        let _ = poison
            .receive_with(
                "SdkTopic",
                &FilterExpression::new(FilterType::Tag, "*"),
                32,
                Duration::from_secs(2),
            )
            .await;
        let in_dlq = c
            .admin
            .queue_offset(&c.broker(), "%DLQ%SdkDlqGroup", 0, true)
            .await
            .unwrap_or(0);
        if in_dlq >= 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the poison message never reached the DLQ"
        );
    }

    p.shutdown().await.unwrap();
    sc.shutdown().await.unwrap();
    proxy_a.shutdown().await;
    proxy_b.shutdown().await;
    c.local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn official_rust_sdk_transactions_commit_rollback_and_check_back() {
    let c = Cluster::start().await;
    c.topic("SdkTx", 2).await;
    c.group("SdkTxGroup", 16).await;
    let proxy = c.proxy_on(0).await;

    let checked: Arc<Mutex<Vec<String>>> = Arc::default();
    let mut po = ProducerOption::default();
    po.set_topics(vec!["SdkTx"]);
    let seen = checked.clone();
    let mut p = Producer::new_transaction_producer(
        po,
        client_option(&proxy),
        Box::new(move |_tx, message: MessageView| {
            seen.lock().unwrap().push(key(&message));
            TransactionResolution::COMMIT
        }),
    )
    .unwrap();
    p.start().await.unwrap();
    let half = |k: &str| {
        MessageBuilder::transaction_message_builder("SdkTx", k.as_bytes().to_vec())
            .set_keys(vec![k])
            .build()
            .unwrap()
    };
    let commit = p.send_transaction_message(half("commit-me")).await.unwrap();
    assert!(!commit.transaction_id().is_empty());
    commit.commit().await.unwrap();
    let rollback = p.send_transaction_message(half("roll-me")).await.unwrap();
    rollback.rollback().await.unwrap();
    // Left open: the broker asks, the SDK's checker commits.
    let _open = p.send_transaction_message(half("check-me")).await.unwrap();

    let sc = consumer(&proxy, "SdkTxGroup", "SdkTx").await;
    let got = receive_keys(
        &sc,
        "SdkTx",
        &["commit-me".to_string(), "check-me".to_string()],
        Duration::from_secs(30),
        Duration::from_secs(60),
    )
    .await;
    let got_keys: BTreeSet<String> = got.iter().map(key).collect();
    assert!(got_keys.contains("commit-me"), "{got_keys:?}");
    assert!(got_keys.contains("check-me"), "{got_keys:?}");
    assert!(
        !got_keys.contains("roll-me"),
        "a rolled back message is never delivered"
    );
    assert_eq!(
        *checked.lock().unwrap(),
        ["check-me"],
        "only the open transaction was checked"
    );
    for m in &got {
        sc.ack(m).await.unwrap();
    }
    p.shutdown().await.unwrap();
    sc.shutdown().await.unwrap();
    proxy.shutdown().await;
    c.local.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn official_rust_sdk_survives_a_proxy_restart() {
    let c = Cluster::start().await;
    c.topic("SdkRestart", 1).await;
    c.group("SdkRestartGroup", 16).await;
    let port = free_port();
    let proxy = c.proxy_on(port).await;
    let p = producer(&proxy, &["SdkRestart"]).await;
    let sc = consumer(&proxy, "SdkRestartGroup", "SdkRestart").await;
    let send = |k: &'static str| {
        MessageBuilder::builder()
            .set_topic("SdkRestart")
            .set_body(k.as_bytes().to_vec())
            .set_keys(vec![k])
            .build()
            .unwrap()
    };
    p.send(send("before")).await.unwrap();
    let got = receive_keys(
        &sc,
        "SdkRestart",
        &["before".to_string()],
        Duration::from_secs(30),
        Duration::from_secs(20),
    )
    .await;
    sc.ack(&got[0]).await.unwrap();

    // Restart the proxy on the same port; the clients' channels reconnect.
    proxy.shutdown().await;
    let proxy = c.proxy_on(port).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match p.send(send("after")).await {
            Ok(_) => break,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "sends never resumed after the restart: {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    // Like the producer's, the consumer's channel may learn that its connection closed
    // only on its next call, which then fails once; a client retries.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = loop {
        let tags = FilterExpression::new(FilterType::Tag, "*");
        match sc
            .receive_with("SdkRestart", &tags, 32, Duration::from_secs(30))
            .await
        {
            Ok(messages) => break messages,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "receives never resumed after the restart: {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    if !got.iter().any(|m| key(m) == "after") {
        got.extend(
            receive_keys(
                &sc,
                "SdkRestart",
                &["after".to_string()],
                Duration::from_secs(30),
                Duration::from_secs(30),
            )
            .await,
        );
    }
    assert!(got.iter().any(|m| key(m) == "after"));
    for m in &got {
        sc.ack(m).await.unwrap();
    }
    proxy.shutdown().await;
    c.local.shutdown().await;
}
