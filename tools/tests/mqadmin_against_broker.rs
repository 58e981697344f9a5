//! The `mqadmin` binary against a real name server and broker (in-process): the commands a
//! user types after producing and consuming a few messages.

use std::process::Command;
use std::time::{Duration, Instant};

use rocketmq_broker::{BrokerConfig, BrokerServer};
use rocketmq_common::body::{ConsumerData, HeartbeatData, SubscriptionData};
use rocketmq_common::config::Properties;
use rocketmq_common::message::encode_properties;
use rocketmq_common::protocol::headers::broker::{
    SendMessageRequestHeader, SendMessageRequestHeaderV2, SendMessageResponseHeader,
    UpdateConsumerOffsetRequestHeader,
};
use rocketmq_common::protocol::{RemotingCommand, RequestCode};
use rocketmq_common::remoting::{ClientConfig, RemotingClient};
use rocketmq_namesrv::{NamesrvConfig, NamesrvServer};

const T: Duration = Duration::from_secs(5);

fn mqadmin(namesrv: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mqadmin"))
        .args(args)
        .args(["-n", namesrv])
        .output()
        .expect("run mqadmin");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "mqadmin {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Runs mqadmin expecting failure; returns its stderr.
fn mqadmin_fails(namesrv: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_mqadmin"))
        .args(args)
        .args(["-n", namesrv])
        .output()
        .expect("run mqadmin");
    assert_eq!(out.status.code(), Some(1), "mqadmin {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_against_a_real_broker() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = NamesrvServer::start(NamesrvConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        metrics_port: 0,
        kv_config_path: dir.path().join("kv.json"),
        ..NamesrvConfig::default()
    })
    .await
    .unwrap();
    let ns = namesrv.local_addr().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let props = Properties::parse(&format!(
        "listenPort={port}\nbrokerIP1=127.0.0.1\nbindAddress=127.0.0.1\nnamesrvAddr={ns}\nstorePathRootDir={}\n\
         mappedFileSizeCommitLog=1048576\nmetricsPort=0\n",
        dir.path().join("store").display()
    ));
    let broker = BrokerServer::start(BrokerConfig::from_properties(&props).unwrap())
        .await
        .unwrap();
    let addr = broker.broker_addr().to_string();
    let client = RemotingClient::new(ClientConfig::default());

    // The broker's registration reaches the name server.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !mqadmin(&ns, &["clusterList"]).contains(&addr) {
        assert!(
            Instant::now() < deadline,
            "broker never listed by clusterList"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    mqadmin(
        &ns,
        &[
            "updateTopic",
            "-c",
            "DefaultCluster",
            "-t",
            "AdminTopic",
            "-r",
            "2",
            "-w",
            "2",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !mqadmin(&ns, &["topicList"]).contains("AdminTopic") {
        assert!(
            Instant::now() < deadline,
            "topic never reached the name server"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(mqadmin(&ns, &["topicRoute", "-t", "AdminTopic"]).contains(&addr));

    let mut last_id = String::new();
    for i in 0..10 {
        let key = format!("order-{i}");
        let header: SendMessageRequestHeaderV2 = SendMessageRequestHeader {
            producer_group: "P".into(),
            topic: "AdminTopic".into(),
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 2,
            queue_id: i % 2,
            born_timestamp: 1_700_000_000_000,
            properties: Some(encode_properties([
                ("KEYS", key.as_str()),
                ("TAGS", "TagA"),
            ])),
            ..Default::default()
        }
        .into();
        let resp = client
            .invoke_ok(
                &addr,
                RemotingCommand::request(RequestCode::SEND_MESSAGE_V2, &header)
                    .with_body(format!("payload-{i}")),
                T,
            )
            .await
            .unwrap();
        last_id = resp
            .decode_header::<SendMessageResponseHeader>()
            .unwrap()
            .msg_id;
    }
    let commit = RemotingCommand::request(
        RequestCode::UPDATE_CONSUMER_OFFSET,
        &UpdateConsumerOffsetRequestHeader {
            consumer_group: "AdminGroup".into(),
            topic: "AdminTopic".into(),
            queue_id: 0,
            commit_offset: 3,
            broker_name: None,
        },
    );
    client.invoke_ok(&addr, commit, T).await.unwrap();
    // A consumer's heartbeat creates the group's retry topic, through which admin tools find
    // the group's brokers.
    let heartbeat = HeartbeatData {
        client_id: "127.0.0.1@admin-test".into(),
        consumer_data_set: vec![ConsumerData {
            group_name: "AdminGroup".into(),
            subscription_data_set: vec![SubscriptionData {
                topic: "AdminTopic".into(),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let request = RemotingCommand::bare_request(RequestCode::HEART_BEAT)
        .with_body(serde_json::to_vec(&heartbeat).unwrap());
    client.invoke_ok(&addr, request, T).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !mqadmin(&ns, &["topicList"]).contains("%RETRY%AdminGroup") {
        assert!(
            Instant::now() < deadline,
            "retry topic never reached the name server"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Sent messages become readable (and counted) once dispatched: poll, with a deadline.
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status = mqadmin(&ns, &["topicStatus", "-t", "AdminTopic"]);
        if status
            .lines()
            .filter(|l| l.contains("broker-a") && l.contains('5'))
            .count()
            >= 2
        {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "topicStatus never showed 5 messages per queue:\n{status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        status
            .lines()
            .filter(|l| l.contains("broker-a") && l.contains('5'))
            .count()
            >= 2,
        "{status}"
    );
    let progress = mqadmin(&ns, &["consumerProgress", "-g", "AdminGroup"]);
    // Queue 0: broker offset 5, consumer offset 3, diff 2; queue 1: nothing consumed, diff 5.
    assert!(progress.contains("Diff Total: 7"), "{progress}");
    let by_key = mqadmin(&ns, &["queryMsgByKey", "-t", "AdminTopic", "-k", "order-7"]);
    assert!(by_key.contains("order-7"), "{by_key}");
    assert!(!by_key.contains("order-6"), "{by_key}");
    let by_id = mqadmin(&ns, &["queryMsgById", "-t", "AdminTopic", "-i", &last_id]);
    assert!(by_id.contains("payload-9"), "{by_id}");

    // Broker runtime figures and settings.
    let cluster = mqadmin(&ns, &["clusterList"]);
    assert!(
        cluster.contains("V5_3_3") && cluster.contains("true"),
        "{cluster}"
    );
    let status = mqadmin(&ns, &["brokerStatus", "-b", &addr]);
    assert!(
        status.contains(&format!("{:<32}: 10\n", "msgPutTotalTodayNow")),
        "{status}"
    );
    assert!(status.contains("getTransferredTps"), "{status}");
    let by_cluster = mqadmin(&ns, &["brokerStatus", "-c", "DefaultCluster"]);
    assert!(
        by_cluster.contains(&format!("{addr:<24} brokerVersionDesc")),
        "{by_cluster}"
    );
    let config = mqadmin(&ns, &["getBrokerConfig", "-b", &addr]);
    assert!(
        config.starts_with(&format!("============{addr}============\n")),
        "{config}"
    );
    assert!(
        config.contains(&format!("{:<50}=  broker-a\n", "brokerName")),
        "{config}"
    );
    let config = mqadmin(&ns, &["getBrokerConfig", "-c", "DefaultCluster"]);
    assert!(
        config.contains(&format!("============Master: {addr}============")),
        "{config}"
    );

    // A live setting: with write permission withdrawn, sends are refused.
    let updated = mqadmin(
        &ns,
        &[
            "updateBrokerConfig",
            "-b",
            &addr,
            "-k",
            "brokerPermission",
            "-v",
            "4",
        ],
    );
    assert!(updated.contains(&format!("update broker config success, {addr}")));
    let probe: SendMessageRequestHeaderV2 = SendMessageRequestHeader {
        producer_group: "P".into(),
        topic: "AdminTopic".into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 2,
        queue_id: 0,
        ..Default::default()
    }
    .into();
    let refused = client
        .invoke(
            &addr,
            RemotingCommand::request(RequestCode::SEND_MESSAGE_V2, &probe).with_body("x"),
            T,
        )
        .await
        .unwrap();
    assert_eq!(refused.code, 16, "NO_PERMISSION: {:?}", refused.remark);
    mqadmin(
        &ns,
        &[
            "updateBrokerConfig",
            "-c",
            "DefaultCluster",
            "-k",
            "brokerPermission",
            "-v",
            "6",
        ],
    );
    let err = mqadmin_fails(
        &ns,
        &[
            "updateBrokerConfig",
            "-b",
            &addr,
            "-k",
            "listenPort",
            "-v",
            "1",
        ],
    );
    assert!(
        err.contains("cannot be changed while the broker runs"),
        "{err}"
    );
    let err = mqadmin_fails(
        &ns,
        &[
            "updateBrokerConfig",
            "-b",
            &addr,
            "-k",
            "brokerPermission",
            "-v",
            "9",
        ],
    );
    assert!(err.contains("is invalid"), "{err}");

    // Connections.
    let producer_hb = HeartbeatData {
        client_id: "127.0.0.1@admin-producer".into(),
        producer_data_set: vec![rocketmq_common::body::ProducerData {
            group_name: "P".into(),
        }],
        ..Default::default()
    };
    let request = RemotingCommand::bare_request(RequestCode::HEART_BEAT)
        .with_body(serde_json::to_vec(&producer_hb).unwrap());
    client.invoke_ok(&addr, request, T).await.unwrap();
    let consumers = mqadmin(&ns, &["consumerConnection", "-g", "AdminGroup"]);
    assert!(consumers.contains("127.0.0.1@admin-test"), "{consumers}");
    assert!(consumers.contains("AdminTopic"), "{consumers}");
    assert!(
        consumers.contains("ConsumeType: CONSUME_PASSIVELY"),
        "{consumers}"
    );
    let producers = mqadmin(&ns, &["producerConnection", "-g", "P", "-t", "AdminTopic"]);
    assert!(
        producers.starts_with("0001  127.0.0.1@admin-producer"),
        "{producers}"
    );

    // Messages through the client paths.
    let one = mqadmin(
        &ns,
        &[
            "queryMsgByOffset",
            "-t",
            "AdminTopic",
            "-b",
            "broker-a",
            "-i",
            "0",
            "-o",
            "2",
        ],
    );
    assert!(one.contains("payload-4"), "{one}");
    let all = mqadmin(&ns, &["printMsg", "-t", "AdminTopic"]);
    assert_eq!(all.matches("MSGID:").count(), 10, "{all}");
    let some = mqadmin(&ns, &["consumeMessage", "-t", "AdminTopic", "-c", "3"]);
    assert_eq!(some.matches("MSGID:").count(), 3, "{some}");
    let sent = mqadmin(
        &ns,
        &[
            "sendMessage",
            "-t",
            "AdminTopic",
            "-p",
            "from-mqadmin",
            "-k",
            "admin-key",
        ],
    );
    assert!(sent.contains("SEND_OK"), "{sent}");
    // Straight to the broker's address, no name server at all (what a container health
    // check or a partitioned broker's shell can do).
    let send_direct = |addr: &str, body: &str, queue: &str| {
        Command::new(env!("CARGO_BIN_EXE_mqadmin"))
            .env_remove("NAMESRV_ADDR")
            .args([
                "sendMessage",
                "-t",
                "AdminTopic",
                "-p",
                body,
                "-a",
                addr,
                "-i",
                queue,
            ])
            .output()
            .expect("run mqadmin")
    };
    let direct = send_direct(&addr, "direct", "1");
    let direct_out = String::from_utf8_lossy(&direct.stdout);
    assert!(direct.status.success(), "{direct:?}");
    assert!(direct_out.contains("SEND_OK"), "{direct_out}");
    let unreachable = send_direct("127.0.0.1:1", "x", "0");
    assert_eq!(unreachable.status.code(), Some(1), "{unreachable:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found = mqadmin(
            &ns,
            &["queryMsgByKey", "-t", "AdminTopic", "-k", "admin-key"],
        );
        if found.contains("admin-key") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sent message never indexed: {found}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Reset the group to the start: both queues go back to 0, and the consumer's next pull
    // is told to move there.
    let reset = mqadmin(
        &ns,
        &[
            "resetOffsetByTime",
            "-g",
            "AdminGroup",
            "-t",
            "AdminTopic",
            "-s",
            "0",
        ],
    );
    let rows: Vec<Vec<&str>> = reset
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        vec![vec!["broker-a", "0", "0"], vec!["broker-a", "1", "0"]],
        "{reset}"
    );
    let pull = RemotingCommand::request(
        RequestCode::PULL_MESSAGE,
        &rocketmq_common::protocol::headers::broker::PullMessageRequestHeader {
            consumer_group: "AdminGroup".into(),
            topic: "AdminTopic".into(),
            queue_id: 0,
            queue_offset: 3,
            max_msg_nums: 32,
            sys_flag: 0x4,
            subscription: Some("*".into()),
            expression_type: Some("TAG".into()),
            ..Default::default()
        },
    );
    let moved = client.invoke(&addr, pull, T).await.unwrap();
    assert_eq!(moved.code, 21, "PULL_OFFSET_MOVED");
    let progress = mqadmin(&ns, &["consumerProgress", "-g", "AdminGroup"]);
    // 10 produced, one sendMessage through the route and one straight to the address.
    assert!(progress.contains("Diff Total: 12"), "{progress}");

    mqadmin(
        &ns,
        &["deleteTopic", "-c", "DefaultCluster", "-t", "AdminTopic"],
    );
    assert!(!mqadmin(&ns, &["topicList"]).contains("AdminTopic"));
    broker.shutdown().await;
    namesrv.shutdown().await;
}
