//! mqadmin's commands end to end in-process: a real name server, fake brokers registered
//! with it, and assertions on the requests the brokers receive and on the printed output.

mod support;

use rocketmq_client::ClientError;
use rocketmq_common::admin::{ConsumeStats, OffsetWrapper, TopicOffset, TopicStatsTable};
use rocketmq_common::body::MessageQueue;
use rocketmq_common::message::encode_offset_message_id;
use rocketmq_common::protocol::headers::namesrv::{
    KvConfigKeyRequestHeader, PutKvConfigRequestHeader,
};
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{ClientConfig, RemotingClient};
use rocketmq_common::route::TopicRouteData;
use rocketmq_tools::admin::{AdminError, Cli, run_cli};

use clap::Parser;
use support::*;

/// Two broker groups in `DefaultCluster`: broker-a (fake master + a slave registered at an
/// address nobody listens on) and broker-b (fake master).
struct Cluster {
    namesrv: TestNamesrv,
    a: FakeBroker,
    b: FakeBroker,
    _registrations: Vec<RemotingClient>,
}

const DEAD_SLAVE: &str = "127.0.0.1:1";

async fn cluster() -> Cluster {
    let namesrv = start_namesrv().await;
    let a = FakeBroker::start().await;
    let b = FakeBroker::start().await;
    let registrations = vec![
        register(
            &namesrv.addr,
            "DefaultCluster",
            "broker-a",
            0,
            &a.addr,
            &[("TopicTest", 4), ("%RETRY%G1", 1)],
        )
        .await,
        register(
            &namesrv.addr,
            "DefaultCluster",
            "broker-a",
            1,
            DEAD_SLAVE,
            &[("TopicTest", 4), ("%RETRY%G1", 1)],
        )
        .await,
        register(
            &namesrv.addr,
            "DefaultCluster",
            "broker-b",
            0,
            &b.addr,
            &[("TopicTest", 2)],
        )
        .await,
    ];
    Cluster {
        namesrv,
        a,
        b,
        _registrations: registrations,
    }
}

impl Cluster {
    /// Runs `mqadmin <args> -n <this name server>` and returns its output.
    async fn mqadmin(&self, args: &[&str]) -> Result<String, AdminError> {
        let argv = std::iter::once("mqadmin")
            .chain(args.iter().copied())
            .chain(["-n", self.namesrv.addr.as_str(), "--timeoutMillis", "3000"]);
        let cli = Cli::try_parse_from(argv).expect("arguments parse");
        let mut out = Vec::new();
        run_cli(&cli, &mut out).await?;
        Ok(String::from_utf8(out).expect("UTF-8 output"))
    }
}

fn field<'a>(request: &'a RemotingCommand, name: &str) -> &'a str {
    request.ext_field(name).unwrap_or_else(|| {
        panic!(
            "request {} lacks {name}: {:?}",
            request.code, request.ext_fields
        )
    })
}

#[tokio::test]
async fn update_topic_on_a_cluster_creates_it_on_every_master() {
    let c = cluster().await;
    let out = c
        .mqadmin(&[
            "updateTopic",
            "-c",
            "DefaultCluster",
            "-t",
            "NewTopic",
            "-w",
            "4",
            "-a",
            "+message.type=FIFO",
        ])
        .await
        .expect("updateTopic succeeds");
    for broker in [&c.a, &c.b] {
        let sent = broker.received(RequestCode::UPDATE_AND_CREATE_TOPIC);
        assert_eq!(sent.len(), 1, "{} got {sent:?}", broker.addr);
        let expected = [
            ("topic", "NewTopic"),
            ("defaultTopic", "TBW102"),
            ("readQueueNums", "8"),
            ("writeQueueNums", "4"),
            ("perm", "6"),
            ("topicFilterType", "SINGLE_TAG"),
            ("topicSysFlag", "0"),
            ("order", "false"),
            ("attributes", "+message.type=FIFO"),
        ];
        for (name, value) in expected {
            assert_eq!(field(&sent[0], name), value, "{name}");
        }
        assert!(
            out.contains(&format!("create topic to {} success.\n", broker.addr)),
            "{out}"
        );
    }
    assert!(
        out.ends_with("TopicConfig [topicName=NewTopic, readQueueNums=8, writeQueueNums=4, perm=RW-, topicFilterType=SINGLE_TAG, topicSysFlag=0, order=false, attributes={+message.type=FIFO}]\n"),
        "{out}"
    );
}

#[tokio::test]
async fn ordered_topic_on_one_broker_records_its_layout_on_the_name_server() {
    let c = cluster().await;
    // broker-a already serves the ordered topic with 4 queues; that entry must survive.
    let client = RemotingClient::new(ClientConfig::default());
    let put = PutKvConfigRequestHeader {
        namespace: "ORDER_TOPIC_CONFIG".into(),
        key: "Orders".into(),
        value: "broker-a:4".into(),
    };
    client
        .invoke_ok(
            &c.namesrv.addr,
            RemotingCommand::request(RequestCode::PUT_KV_CONFIG, &put),
            TIMEOUT,
        )
        .await
        .expect("kv config put");
    let out = c
        .mqadmin(&[
            "updateTopic",
            "-b",
            &c.b.addr,
            "-t",
            "Orders",
            "-w",
            "2",
            "-o",
            "true",
        ])
        .await
        .expect("updateTopic succeeds");
    assert!(
        c.a.received(RequestCode::UPDATE_AND_CREATE_TOPIC)
            .is_empty()
    );
    let sent = c.b.received(RequestCode::UPDATE_AND_CREATE_TOPIC);
    assert_eq!(field(&sent[0], "order"), "true");
    assert!(
        out.contains("set broker orderConf. isOrder=true, orderConf=[broker-a:4;broker-b:2]"),
        "{out}"
    );

    // The name server now holds both brokers' layouts.
    let header = KvConfigKeyRequestHeader {
        namespace: "ORDER_TOPIC_CONFIG".into(),
        key: "Orders".into(),
    };
    let response = client
        .invoke_ok(
            &c.namesrv.addr,
            RemotingCommand::request(RequestCode::GET_KV_CONFIG, &header),
            TIMEOUT,
        )
        .await
        .expect("kv config stored");
    assert_eq!(response.ext_field("value"), Some("broker-a:4;broker-b:2"));
}

#[tokio::test]
async fn broker_errors_and_unknown_clusters_are_reported() {
    let c = cluster().await;
    c.b.answer(RequestCode::UPDATE_AND_CREATE_TOPIC, |_| {
        RemotingCommand::error(ResponseCode::NoPermission, "the broker is read-only")
    });
    let e = c
        .mqadmin(&["updateTopic", "-b", &c.b.addr, "-t", "T"])
        .await
        .unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&c.b.addr)
            && text.contains("code 16")
            && text.contains("the broker is read-only"),
        "{text}"
    );

    let e = c
        .mqadmin(&["updateTopic", "-c", "NoSuchCluster", "-t", "T"])
        .await
        .unwrap_err();
    assert!(
        matches!(e, AdminError::Client(ClientError::ClusterNotFound { .. })),
        "{e}"
    );
    let e = c
        .mqadmin(&["updateTopic", "-c", "DefaultCluster", "-t", "bad topic"])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("invalid topic"), "{e}");
    assert!(
        c.a.received(RequestCode::UPDATE_AND_CREATE_TOPIC)
            .is_empty()
    );
}

#[tokio::test]
async fn delete_topic_removes_it_from_brokers_and_name_server() {
    let c = cluster().await;
    let out = c
        .mqadmin(&["deleteTopic", "-t", "TopicTest", "-c", "DefaultCluster"])
        .await
        .expect("deleteTopic succeeds");
    for broker in [&c.a, &c.b] {
        let sent = broker.received(RequestCode::DELETE_TOPIC_IN_BROKER);
        assert_eq!(sent.len(), 1);
        assert_eq!(field(&sent[0], "topic"), "TopicTest");
    }
    assert_eq!(
        out,
        "delete topic [TopicTest] from cluster [DefaultCluster] success.\ndelete topic [TopicTest] from NameServer success.\n"
    );
    let e = c
        .mqadmin(&["topicRoute", "-t", "TopicTest"])
        .await
        .unwrap_err();
    assert!(
        matches!(e, AdminError::Client(ClientError::TopicNotFound { .. })),
        "{e}"
    );
}

#[tokio::test]
async fn topic_list_and_route_come_from_the_name_server() {
    let c = cluster().await;
    let out = c.mqadmin(&["topicList"]).await.expect("topicList");
    let topics: Vec<&str> = out.lines().collect();
    assert!(
        topics.contains(&"TopicTest") && topics.contains(&"%RETRY%G1"),
        "{out}"
    );

    let out = c
        .mqadmin(&["topicRoute", "-t", "TopicTest"])
        .await
        .expect("topicRoute");
    let route: TopicRouteData = serde_json::from_str(&out).expect("pretty JSON route");
    let mut names: Vec<&str> = route
        .broker_datas
        .iter()
        .map(|b| b.broker_name.as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["broker-a", "broker-b"]);
    assert!(
        out.contains("\n  \"brokerDatas\": ["),
        "pretty-printed: {out}"
    );

    let out = c
        .mqadmin(&["topicRoute", "-t", "TopicTest", "-l"])
        .await
        .expect("topicRoute -l");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[1].starts_with("DefaultCluster") && lines[1].contains("broker-a"),
        "{out}"
    );
    assert!(
        lines[1].contains(&format!("0={}", c.a.addr))
            && lines[1].contains(&format!("1={DEAD_SLAVE}")),
        "{out}"
    );
    let total: Vec<&str> = lines[4].split_whitespace().collect();
    assert_eq!(total, ["Total:", "2", "6", "6"], "{out}");

    let e = c.mqadmin(&["topicRoute", "-t", "Nope"]).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        "topic Nope has no route on the name server (does it exist?)"
    );
}

fn mq(broker: &str, queue_id: i32, topic: &str) -> MessageQueue {
    MessageQueue {
        broker_name: broker.into(),
        queue_id,
        topic: topic.into(),
    }
}

#[tokio::test]
async fn topic_status_merges_every_master() {
    let c = cluster().await;
    for (broker, name, queues) in [(&c.a, "broker-a", 2), (&c.b, "broker-b", 1)] {
        let name = name.to_string();
        broker.answer(RequestCode::GET_TOPIC_STATS_INFO, move |request| {
            let topic = request.ext_field("topic").unwrap_or_default().to_string();
            let mut table = TopicStatsTable {
                topic_put_tps: 1.5,
                ..TopicStatsTable::default()
            };
            for q in 0..queues {
                table.offset_table.insert(
                    mq(&name, q, &topic),
                    TopicOffset {
                        last_update_timestamp: if q == 0 { 1_700_000_000_123 } else { 0 },
                        max_offset: 100 + i64::from(q),
                        min_offset: i64::from(q),
                    },
                );
            }
            // The Java wire form, object keys and all.
            RemotingCommand::success().with_body(table.to_fastjson())
        });
    }
    let out = c
        .mqadmin(&["topicStatus", "-t", "TopicTest"])
        .await
        .expect("topicStatus");
    for broker in [&c.a, &c.b] {
        let sent = broker.received(RequestCode::GET_TOPIC_STATS_INFO);
        assert_eq!(sent.len(), 1);
        assert_eq!(field(&sent[0], "topic"), "TopicTest");
    }
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[1],
        ["broker-a", "0", "0", "100", "2023-11-14", "22:13:20,123"],
        "{out}"
    );
    assert_eq!(rows[2], ["broker-a", "1", "1", "101"], "{out}");
    assert_eq!(
        rows[3],
        ["broker-b", "0", "0", "100", "2023-11-14", "22:13:20,123"],
        "{out}"
    );
    assert!(out.ends_with("\nTopic Put TPS: 3.0\n"), "{out}");
}

#[tokio::test]
async fn cluster_list_shows_every_member_and_runtime_figures() {
    let c = cluster().await;
    c.a.answer(RequestCode::GET_BROKER_RUNTIME_INFO, |_| {
        RemotingCommand::success().with_body(
            r#"{"table":{"brokerVersionDesc":"V5_3_3","putTps":"42.0 40.0 39.0","getTransferredTps":"7.25 7.0 7.0"}}"#,
        )
    });
    let out = c.mqadmin(&["clusterList"]).await.expect("clusterList");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0][..4], ["#Cluster", "Name", "#Broker", "Name"]);
    assert_eq!(rows.len(), 4, "{out}");
    assert_eq!(
        rows[1][..7],
        [
            "DefaultCluster",
            "broker-a",
            "0",
            c.a.addr.as_str(),
            "V5_3_3",
            "42.00(,ms)",
            "7.25(,ms|N,Nms)"
        ],
        "{out}"
    );
    // The slave is down: its row is still there, without figures.
    assert_eq!(rows[2], ["DefaultCluster", "broker-a", "1", DEAD_SLAVE]);
    // broker-b answers GET_BROKER_RUNTIME_INFO with an empty body: no figures either.
    assert_eq!(
        rows[3][..4],
        ["DefaultCluster", "broker-b", "0", c.b.addr.as_str()]
    );
    assert_eq!(c.a.received(RequestCode::GET_BROKER_RUNTIME_INFO).len(), 1);

    let e = c
        .mqadmin(&["clusterList", "-c", "Other"])
        .await
        .unwrap_err();
    assert!(
        matches!(e, AdminError::Client(ClientError::ClusterNotFound { .. })),
        "{e}"
    );
}

#[tokio::test]
async fn update_sub_group_sends_the_group_config_body() {
    let c = cluster().await;
    let out = c
        .mqadmin(&[
            "updateSubGroup",
            "-c",
            "DefaultCluster",
            "-g",
            "G1",
            "-r",
            "3",
            "-o",
            "true",
            "-p",
            r#"{"type":"CUSTOMIZED","customizedRetryPolicy":{"next":[1000,5000]}}"#,
        ])
        .await
        .expect("updateSubGroup succeeds");
    for broker in [&c.a, &c.b] {
        let sent = broker.received(RequestCode::UPDATE_AND_CREATE_SUBSCRIPTIONGROUP);
        assert_eq!(sent.len(), 1);
        let body: serde_json::Value = serde_json::from_slice(&sent[0].body).expect("JSON body");
        assert_eq!(body["groupName"], "G1");
        assert_eq!(body["retryMaxTimes"], 3);
        assert_eq!(body["consumeMessageOrderly"], true);
        // Java's command turns these two off unless asked.
        assert_eq!(body["consumeBroadcastEnable"], false);
        assert_eq!(body["consumeFromMinEnable"], false);
        assert_eq!(body["consumeEnable"], true);
        assert_eq!(
            body["groupRetryPolicy"]["customizedRetryPolicy"]["next"][1],
            5000
        );
        assert!(out.contains(&format!(
            "create subscription group to {} success.",
            broker.addr
        )));
    }
    let e = c
        .mqadmin(&["updateSubGroup", "-b", &c.a.addr, "-g", "G1", "-p", "[1]"])
        .await
        .unwrap_err();
    assert!(e.to_string().contains("groupRetryPolicy"), "{e}");
}

#[tokio::test]
async fn consumer_progress_asks_the_brokers_of_the_retry_topic() {
    let c = cluster().await;
    c.a.answer(RequestCode::GET_CONSUME_STATS, |_| {
        let mut stats = ConsumeStats {
            consume_tps: 2.5,
            ..ConsumeStats::default()
        };
        for (q, broker_offset, consumer_offset) in [(0, 100, 60), (1, 50, 50)] {
            stats.offset_table.insert(
                mq("broker-a", q, "TopicTest"),
                OffsetWrapper {
                    broker_offset,
                    consumer_offset,
                    last_timestamp: 0,
                    pull_offset: broker_offset,
                },
            );
        }
        RemotingCommand::success().with_body(stats.to_fastjson())
    });
    let out = c
        .mqadmin(&["consumerProgress", "-g", "G1", "-t", "TopicTest"])
        .await
        .expect("consumerProgress");
    // %RETRY%G1 lives on broker-a only, so broker-b is not asked.
    assert!(c.b.received(RequestCode::GET_CONSUME_STATS).is_empty());
    let sent = c.a.received(RequestCode::GET_CONSUME_STATS);
    assert_eq!(sent.len(), 1);
    assert_eq!(field(&sent[0], "consumerGroup"), "G1");
    assert_eq!(field(&sent[0], "topic"), "TopicTest");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[1],
        ["TopicTest", "broker-a", "0", "100", "60", "40", "40", "N/A"],
        "{out}"
    );
    assert!(
        out.ends_with("Consume TPS: 2.50\nConsume Diff Total: 40\nConsume Inflight Total: 40\n"),
        "{out}"
    );

    let e = c
        .mqadmin(&["consumerProgress", "-g", "Unknown"])
        .await
        .unwrap_err();
    assert!(
        matches!(e, AdminError::Client(ClientError::TopicNotFound { .. })),
        "{e}"
    );
}

#[tokio::test]
async fn query_by_key_keeps_only_real_matches() {
    let c = cluster().await;
    let store_host = c.a.socket_addr();
    c.a.answer(RequestCode::QUERY_MESSAGE, move |_| {
        let mut body = Record {
            topic: "TopicTest",
            queue_id: 2,
            queue_offset: 17,
            commit_log_offset: 4096,
            store_host,
            properties: &[
                ("KEYS", "order-1 order-2"),
                ("TAGS", "TagA"),
                ("UNIQ_KEY", "AC11000100002A9F0000000000000001"),
            ],
            body: b"payload",
        }
        .encode();
        // An index hash collision: another key with the same slot.
        body.extend(
            Record {
                topic: "TopicTest",
                queue_id: 0,
                queue_offset: 3,
                commit_log_offset: 8192,
                store_host,
                properties: &[("KEYS", "other")],
                body: b"x",
            }
            .encode(),
        );
        RemotingCommand::success().with_body(body)
    });
    c.b.answer(RequestCode::QUERY_MESSAGE, |_| {
        RemotingCommand::error(ResponseCode::QueryNotFound, "can not find message")
    });
    let out = c
        .mqadmin(&["queryMsgByKey", "-t", "TopicTest", "-k", "order-2"])
        .await
        .expect("queryMsgByKey");
    for broker in [&c.a, &c.b] {
        let sent = broker.received(RequestCode::QUERY_MESSAGE);
        assert_eq!(sent.len(), 1);
        for (name, value) in [
            ("topic", "TopicTest"),
            ("key", "order-2"),
            ("maxNum", "64"),
            ("beginTimestamp", "0"),
            ("endTimestamp", &i64::MAX.to_string()),
            ("_UNIQUE_KEY_QUERY", "false"),
        ] {
            assert_eq!(field(&sent[0], name), value, "{name}");
        }
    }
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{out}");
    assert_eq!(
        rows[1],
        [
            "AC11000100002A9F0000000000000001",
            "2",
            "17",
            "2023-11-14",
            "22:13:20,500",
            "TagA",
            "order-1",
            "order-2"
        ]
    );
}

#[tokio::test]
async fn query_by_offset_id_views_the_message_on_its_store_host() {
    let c = cluster().await;
    let store_host = c.a.socket_addr();
    c.a.answer(RequestCode::VIEW_MESSAGE_BY_ID, move |request| {
        let offset: i64 = request
            .ext_field("offset")
            .unwrap_or("-1")
            .parse()
            .unwrap_or(-1);
        if offset != 123_456 {
            return RemotingCommand::error(ResponseCode::SystemError, "no message at that offset");
        }
        RemotingCommand::success().with_body(
            Record {
                topic: "TopicTest",
                queue_id: 1,
                queue_offset: 9,
                commit_log_offset: 123_456,
                store_host,
                properties: &[("TAGS", "TagB"), ("KEYS", "k")],
                body: b"hello admin",
            }
            .encode(),
        )
    });
    let id = encode_offset_message_id(store_host, 123_456);
    let out = c
        .mqadmin(&["queryMsgById", "-t", "TopicTest", "-i", &id])
        .await
        .expect("queryMsgById");
    let sent = c.a.received(RequestCode::VIEW_MESSAGE_BY_ID);
    assert_eq!(sent.len(), 1);
    assert_eq!(field(&sent[0], "offset"), "123456");
    assert!(
        c.a.received(RequestCode::QUERY_MESSAGE).is_empty(),
        "no fallback needed"
    );
    for expected in [
        format!("OffsetID:            {id}\n"),
        "Topic:               TopicTest\n".to_string(),
        "Tags:                [TagB]\n".to_string(),
        "Queue Offset:        9\n".to_string(),
        format!("Store Host:          {store_host}\n"),
        "Message Body:        hello admin\n".to_string(),
    ] {
        assert!(out.contains(&expected), "missing {expected:?} in\n{out}");
    }
}

#[tokio::test]
async fn query_by_unique_key_falls_back_to_the_index() {
    let c = cluster().await;
    // A producer's unique id: 127.0.0.1, then pid/classloader bytes that decode as port 1
    // (nobody listens there), so the offset-id attempt fails and the index is asked.
    let uniq = "7F00000100000001000000000000ABCD";
    let store_host = c.b.socket_addr();
    c.b.answer(RequestCode::QUERY_MESSAGE, move |request| {
        let key = request.ext_field("key").unwrap_or_default().to_string();
        RemotingCommand::success().with_body(
            Record {
                topic: "TopicTest",
                queue_id: 0,
                queue_offset: 5,
                commit_log_offset: 777,
                store_host,
                properties: &[("UNIQ_KEY", &key)],
                body: b"found by unique key",
            }
            .encode(),
        )
    });
    c.a.answer(RequestCode::QUERY_MESSAGE, |_| {
        RemotingCommand::error(ResponseCode::QueryNotFound, "can not find message")
    });
    let out = c
        .mqadmin(&["queryMsgById", "-t", "TopicTest", "-i", uniq])
        .await
        .expect("queryMsgById");
    let sent = c.b.received(RequestCode::QUERY_MESSAGE);
    assert_eq!(sent.len(), 1);
    assert_eq!(field(&sent[0], "_UNIQUE_KEY_QUERY"), "true");
    assert_eq!(field(&sent[0], "key"), uniq);
    assert_eq!(field(&sent[0], "maxNum"), "32");
    assert!(
        out.contains(&format!("MsgId:               {uniq}\n")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "OffsetID:            {}\n",
            encode_offset_message_id(store_host, 777)
        )),
        "{out}"
    );
    assert!(
        out.contains("Message Body:        found by unique key\n"),
        "{out}"
    );

    // Nobody has it: a clear error, after asking every broker.
    c.b.answer(RequestCode::QUERY_MESSAGE, |_| {
        RemotingCommand::error(ResponseCode::QueryNotFound, "can not find message")
    });
    let e = c
        .mqadmin(&["queryMsgById", "-t", "TopicTest", "-i", "NOT-AN-OFFSET-ID"])
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "message NOT-AN-OFFSET-ID not found in topic TopicTest"
    );
    assert_eq!(c.b.received(RequestCode::QUERY_MESSAGE).len(), 2);
    assert!(!c.a.received(RequestCode::QUERY_MESSAGE).is_empty());
    // An id that decodes as an offset id on a dead host says so.
    let e = c
        .mqadmin(&["queryMsgById", "-t", "TopicTest", "-i", uniq])
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains(" (as an offset id: connect to 127.0.0.1:1 failed"),
        "{e}"
    );
}

#[tokio::test]
async fn malformed_broker_bodies_are_errors() {
    let c = cluster().await;
    c.a.answer(RequestCode::GET_TOPIC_STATS_INFO, |_| {
        RemotingCommand::success().with_body(&b"{\"offsetTable\":{{\"brokerName\":"[..])
    });
    let e = c
        .mqadmin(&["topicStatus", "-t", "TopicTest"])
        .await
        .unwrap_err();
    assert!(
        matches!(e, AdminError::Client(ClientError::BadBody { .. })),
        "{e}"
    );
    assert!(e.to_string().contains(&c.a.addr), "{e}");
}

#[tokio::test]
async fn consumer_progress_without_a_group_summarises_every_group() {
    let c = cluster().await;
    c.a.answer(RequestCode::GET_CONSUME_STATS, |request| {
        let group = request.ext_field("consumerGroup").unwrap_or_default();
        let mut stats = ConsumeStats {
            consume_tps: 4.0,
            ..ConsumeStats::default()
        };
        stats.offset_table.insert(
            mq("broker-a", 0, "TopicTest"),
            OffsetWrapper {
                broker_offset: 30,
                consumer_offset: if group == "G1" { 10 } else { 0 },
                last_timestamp: 0,
                pull_offset: 30,
            },
        );
        RemotingCommand::success().with_body(stats.to_fastjson())
    });
    let out = c
        .mqadmin(&["consumerProgress"])
        .await
        .expect("consumerProgress");
    let sent = c.a.received(RequestCode::GET_CONSUME_STATS);
    assert_eq!(sent.len(), 1, "one group (G1) has a retry topic");
    assert_eq!(field(&sent[0], "consumerGroup"), "G1");
    assert!(sent[0].ext_field("topic").is_none());
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["#Group", "#TPS", "#Diff", "Total"],
            vec!["G1", "4", "20"]
        ]
    );
}

#[tokio::test]
async fn delete_sub_group_from_a_cluster_also_removes_its_retry_and_dlq_topics() {
    let c = cluster().await;
    let out = c
        .mqadmin(&[
            "deleteSubGroup",
            "-c",
            "DefaultCluster",
            "-g",
            "G1",
            "-r",
            "true",
        ])
        .await
        .expect("deleteSubGroup succeeds");
    for broker in [&c.a, &c.b] {
        let sent = broker.received(RequestCode::DELETE_SUBSCRIPTIONGROUP);
        assert_eq!(sent.len(), 1);
        assert_eq!(field(&sent[0], "groupName"), "G1");
        assert_eq!(field(&sent[0], "cleanOffset"), "true");
        let topics: Vec<String> = broker
            .received(RequestCode::DELETE_TOPIC_IN_BROKER)
            .iter()
            .map(|r| field(r, "topic").to_string())
            .collect();
        assert_eq!(topics, ["%RETRY%G1", "%DLQ%G1"]);
        assert!(out.contains(&format!(
            "delete subscription group [G1] from broker [{}] in cluster [DefaultCluster] success.",
            broker.addr
        )));
    }
    assert!(
        out.contains("delete topic [%RETRY%G1] from NameServer success."),
        "{out}"
    );
    // The retry topic's route is gone from the name server.
    let e = c
        .mqadmin(&["consumerProgress", "-g", "G1"])
        .await
        .unwrap_err();
    assert!(
        matches!(e, AdminError::Client(ClientError::TopicNotFound { .. })),
        "{e}"
    );

    // From one broker: only that broker, offsets kept by default, topics untouched.
    let out = c
        .mqadmin(&["deleteSubGroup", "-b", &c.a.addr, "-g", "G2"])
        .await
        .expect("deleteSubGroup -b succeeds");
    assert_eq!(
        out,
        format!(
            "delete subscription group [G2] from broker [{}] success.\n",
            c.a.addr
        )
    );
    let sent = c.a.received(RequestCode::DELETE_SUBSCRIPTIONGROUP);
    assert_eq!(field(&sent[1], "cleanOffset"), "false");
    assert_eq!(c.b.received(RequestCode::DELETE_SUBSCRIPTIONGROUP).len(), 1);
}
