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

    mqadmin(
        &ns,
        &["deleteTopic", "-c", "DefaultCluster", "-t", "AdminTopic"],
    );
    assert!(!mqadmin(&ns, &["topicList"]).contains("AdminTopic"));
    broker.shutdown().await;
    namesrv.shutdown().await;
}
