//! A name server and a broker in one process, driven over TCP by our Remoting client:
//! produce, pull (tags, long polling), offsets, admin, queries, and a clean restart.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rocketmq_broker::{BrokerConfig, BrokerServer};
use rocketmq_common::body::{ConsumerData, HeartbeatData, SubscriptionData};
use rocketmq_common::config::Properties;
use rocketmq_common::message::{RecordEntry, decode_record, encode_properties, get_property};
use rocketmq_common::protocol::headers::broker::*;
use rocketmq_common::protocol::headers::namesrv::GetRouteInfoRequestHeader;
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{ClientConfig, RemotingClient};
use rocketmq_common::route::TopicRouteData;
use rocketmq_namesrv::{NamesrvConfig, NamesrvServer};
use rocketmq_testkit::free_port;

const T: Duration = Duration::from_secs(5);

async fn start_namesrv(dir: &std::path::Path) -> NamesrvServer {
    NamesrvServer::start(NamesrvConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        metrics_port: 0,
        kv_config_path: dir.join("kv.json"),
        ..NamesrvConfig::default()
    })
    .await
    .unwrap()
}

fn broker_config(store: &std::path::Path, port: u16, namesrv: &str) -> BrokerConfig {
    let props = Properties::parse(&format!(
        "brokerName=broker-a\nlistenPort={port}\nbrokerIP1=127.0.0.1\nbindAddress=127.0.0.1\nnamesrvAddr={namesrv}\n\
         storePathRootDir={}\nmappedFileSizeCommitLog=1048576\nmetricsPort=0\nflushConsumerOffsetInterval=200\n",
        store.display()
    ));
    BrokerConfig::from_properties(&props).unwrap()
}

fn send(topic: &str, queue_id: i32, body: &[u8], props: &[(&str, &str)]) -> RemotingCommand {
    let header: SendMessageRequestHeaderV2 = SendMessageRequestHeader {
        producer_group: "PG".into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        flag: 0,
        properties: Some(encode_properties(props.iter().copied())),
        ..Default::default()
    }
    .into();
    RemotingCommand::request(RequestCode::SEND_MESSAGE_V2, &header).with_body(body.to_vec())
}

fn pull(
    topic: &str,
    queue_id: i32,
    offset: i64,
    expression: Option<&str>,
    suspend_ms: i64,
) -> RemotingCommand {
    let mut sys_flag = 0;
    if expression.is_some() {
        sys_flag |= 0x4;
    }
    if suspend_ms > 0 {
        sys_flag |= 0x2;
    }
    RemotingCommand::request(
        RequestCode::PULL_MESSAGE,
        &PullMessageRequestHeader {
            consumer_group: "CG".into(),
            topic: topic.into(),
            queue_id,
            queue_offset: offset,
            max_msg_nums: 32,
            sys_flag,
            commit_offset: 0,
            suspend_timeout_millis: suspend_ms,
            subscription: expression.map(str::to_string),
            sub_version: 0,
            expression_type: Some("TAG".into()),
            ..Default::default()
        },
    )
}

/// Waits until the broker reports at least `expected` messages readable in a queue:
/// messages become readable once dispatched to the ConsumeQueue, shortly after the send is
/// acknowledged (longer for the first message of a new queue, whose file is created then).
async fn wait_for_max_offset(
    client: &RemotingClient,
    addr: &str,
    topic: &str,
    queue_id: i32,
    expected: i64,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let request = RemotingCommand::request(
            RequestCode::GET_MAX_OFFSET,
            &GetMaxOffsetRequestHeader {
                topic: topic.into(),
                queue_id,
                committed: None,
                broker_name: None,
            },
        );
        let h: OffsetResponseHeader = client
            .invoke_ok(addr, request, T)
            .await
            .unwrap()
            .decode_header()
            .unwrap();
        if h.offset >= expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic}/{queue_id} stuck at max offset {} < {expected}",
            h.offset
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Decodes a pull body into (queue offset, body, properties).
fn records(body: &[u8]) -> Vec<(i64, Vec<u8>, String)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        match decode_record(&body[pos..], true).expect("pull body holds valid records") {
            RecordEntry::Message(m) => {
                out.push((m.queue_offset, m.body.to_vec(), m.properties.to_string()));
                pos += m.total_size as usize;
            }
            RecordEntry::Blank { .. } => panic!("blank record in a pull body"),
        }
    }
    out
}

async fn wait_for_route(client: &RemotingClient, namesrv: &str, topic: &str) -> TopicRouteData {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = client
            .invoke(
                namesrv,
                RemotingCommand::request(
                    RequestCode::GET_ROUTEINFO_BY_TOPIC,
                    &GetRouteInfoRequestHeader {
                        topic: topic.into(),
                        accept_standard_json_only: None,
                    },
                ),
                T,
            )
            .await
            .unwrap();
        if r.code == 0 {
            return serde_json::from_slice(&r.body).unwrap();
        }
        assert!(Instant::now() < deadline, "route of {topic} never appeared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_consume_offsets_queries_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = start_namesrv(dir.path()).await;
    let ns = namesrv.local_addr().to_string();
    let port = free_port();
    let store_dir = dir.path().join("store");
    let broker = BrokerServer::start(broker_config(&store_dir, port, &ns))
        .await
        .unwrap();
    let addr = broker.broker_addr().to_string();
    let client = RemotingClient::new(ClientConfig::default());

    // Admin: create the topic; the broker re-registers and the route appears.
    let create = RemotingCommand::request(
        RequestCode::UPDATE_AND_CREATE_TOPIC,
        &CreateTopicRequestHeader {
            topic: "TopicTest".into(),
            default_topic: "TBW102".into(),
            read_queue_nums: 4,
            write_queue_nums: 4,
            perm: 6,
            topic_filter_type: "SINGLE_TAG".into(),
            order: false,
            ..Default::default()
        },
    );
    client.invoke_ok(&addr, create, T).await.unwrap();
    let route = wait_for_route(&client, &ns, "TopicTest").await;
    assert_eq!(route.broker_datas[0].broker_addrs[&0], addr);
    assert_eq!(route.queue_datas[0].write_queue_nums, 4);

    // Produce 400 messages, 100 per queue, alternating tags, each with a key.
    let mut expected: BTreeMap<i32, Vec<String>> = BTreeMap::new();
    for i in 0..400 {
        let queue = i % 4;
        let tag = if i % 2 == 0 { "TagA" } else { "TagB" };
        let key = format!("key-{i}");
        let body = format!("message-{i}");
        let resp = client
            .invoke_ok(
                &addr,
                send(
                    "TopicTest",
                    queue,
                    body.as_bytes(),
                    &[("TAGS", tag), ("KEYS", &key)],
                ),
                T,
            )
            .await
            .unwrap();
        let h: SendMessageResponseHeader = resp.decode_header().unwrap();
        let queue_msgs = expected.entry(queue).or_default();
        assert_eq!(h.queue_id, queue);
        assert_eq!(
            h.queue_offset,
            queue_msgs.len() as i64,
            "offsets are dense per queue"
        );
        assert_eq!(h.msg_id.len(), 32);
        queue_msgs.push(body);
    }

    // Pull everything back, in order per queue.
    for (queue, bodies) in &expected {
        wait_for_max_offset(&client, &addr, "TopicTest", *queue, bodies.len() as i64).await;
        let mut offset = 0;
        let mut got = Vec::new();
        loop {
            let resp = client
                .invoke(&addr, pull("TopicTest", *queue, offset, Some("*"), 0), T)
                .await
                .unwrap();
            let h: PullMessageResponseHeader = resp.decode_header().unwrap();
            if resp.code == ResponseCode::PullNotFound.as_i32() {
                break;
            }
            assert_eq!(resp.code, 0, "{:?}", resp.remark);
            for (qo, body, _) in records(&resp.body) {
                assert_eq!(qo, got.len() as i64);
                got.push(String::from_utf8(body).unwrap());
            }
            offset = h.next_begin_offset;
        }
        assert_eq!(&got, bodies, "queue {queue}");
    }

    // Tag filtering: only TagA comes back (queues 0 and 2 hold TagA, 1 and 3 TagB).
    let resp = client
        .invoke(&addr, pull("TopicTest", 1, 0, Some("TagA"), 0), T)
        .await
        .unwrap();
    assert_eq!(resp.code, ResponseCode::PullRetryImmediately.as_i32());
    let resp = client
        .invoke(&addr, pull("TopicTest", 2, 0, Some("TagA || TagC"), 0), T)
        .await
        .unwrap();
    assert_eq!(resp.code, 0);
    assert!(
        records(&resp.body)
            .iter()
            .all(|(_, _, p)| get_property(p, "TAGS") == Some("TagA"))
    );

    // Long polling: a pull at the end waits until a message arrives.
    let waiting = {
        let client = client.clone();
        let addr = addr.clone();
        tokio::spawn(async move {
            let start = Instant::now();
            let resp = client
                .invoke(
                    &addr,
                    pull("TopicTest", 0, 100, Some("*"), 10_000),
                    Duration::from_secs(15),
                )
                .await
                .unwrap();
            (resp, start.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    client
        .invoke_ok(&addr, send("TopicTest", 0, b"late", &[("TAGS", "TagA")]), T)
        .await
        .unwrap();
    let (resp, waited) = waiting.await.unwrap();
    assert_eq!(resp.code, 0, "{:?}", resp.remark);
    assert_eq!(records(&resp.body)[0].1, b"late");
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    // And a held pull that sees nothing times out with PULL_NOT_FOUND.
    let resp = client
        .invoke(&addr, pull("TopicTest", 3, 100, Some("*"), 300), T)
        .await
        .unwrap();
    assert_eq!(resp.code, ResponseCode::PullNotFound.as_i32());

    // Offsets: commit, query, min/max.
    let commit = RemotingCommand::request(
        RequestCode::UPDATE_CONSUMER_OFFSET,
        &UpdateConsumerOffsetRequestHeader {
            consumer_group: "CG".into(),
            topic: "TopicTest".into(),
            queue_id: 1,
            commit_offset: 77,
            broker_name: None,
        },
    );
    client.invoke_ok(&addr, commit, T).await.unwrap();
    let query = |queue: i32| {
        RemotingCommand::request(
            RequestCode::QUERY_CONSUMER_OFFSET,
            &QueryConsumerOffsetRequestHeader {
                consumer_group: "CG".into(),
                topic: "TopicTest".into(),
                queue_id: queue,
                set_zero_if_not_found: None,
                broker_name: None,
            },
        )
    };
    let offset: OffsetResponseHeader = client
        .invoke_ok(&addr, query(1), T)
        .await
        .unwrap()
        .decode_header()
        .unwrap();
    assert_eq!(offset.offset, 77);
    let max = RemotingCommand::request(
        RequestCode::GET_MAX_OFFSET,
        &GetMaxOffsetRequestHeader {
            topic: "TopicTest".into(),
            queue_id: 0,
            committed: None,
            broker_name: None,
        },
    );
    let max: OffsetResponseHeader = client
        .invoke_ok(&addr, max, T)
        .await
        .unwrap()
        .decode_header()
        .unwrap();
    assert_eq!(max.offset, 101);

    // Query by key and view by offset id.
    let q = RemotingCommand::request(
        RequestCode::QUERY_MESSAGE,
        &QueryMessageRequestHeader {
            topic: "TopicTest".into(),
            key: "key-42".into(),
            max_num: 32,
            begin_timestamp: 0,
            end_timestamp: i64::MAX,
        },
    );
    let found = client.invoke_ok(&addr, q, T).await.unwrap();
    let found = records(&found.body);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].1, b"message-42");
    let resp = client
        .invoke_ok(&addr, send("TopicTest", 2, b"by-id", &[]), T)
        .await
        .unwrap();
    let h: SendMessageResponseHeader = resp.decode_header().unwrap();
    let (_, phys) = rocketmq_common::message::decode_offset_message_id(&h.msg_id).unwrap();
    let view = RemotingCommand::request(
        RequestCode::VIEW_MESSAGE_BY_ID,
        &ViewMessageRequestHeader {
            topic: None,
            offset: phys,
        },
    );
    let viewed = client.invoke_ok(&addr, view, T).await.unwrap();
    assert_eq!(records(&viewed.body)[0].1, b"by-id");

    // Errors: unknown topic without auto-create template, oversized body, bad queue.
    let resp = client
        .invoke(&addr, send("TopicTest", 9, b"x", &[]), T)
        .await
        .unwrap();
    assert_eq!(resp.code, ResponseCode::SystemError.as_i32());
    let big = vec![0u8; 4 * 1024 * 1024 + 1];
    let resp = client
        .invoke(&addr, send("TopicTest", 0, &big, &[]), T)
        .await
        .unwrap();
    assert_eq!(resp.code, ResponseCode::MessageIllegal.as_i32());

    // Restart: data, topics and offsets survive a clean shutdown.
    broker.shutdown().await;
    let broker = BrokerServer::start(broker_config(&store_dir, port, &ns))
        .await
        .unwrap();
    assert!(
        !broker.context().store.recovery_report().abnormal,
        "clean shutdown must not need crash recovery"
    );
    let offset: OffsetResponseHeader = client
        .invoke_ok(&addr, query(1), T)
        .await
        .unwrap()
        .decode_header()
        .unwrap();
    assert_eq!(offset.offset, 77);
    let resp = client
        .invoke(&addr, pull("TopicTest", 0, 0, Some("*"), 0), T)
        .await
        .unwrap();
    assert_eq!(records(&resp.body)[0].1, b"message-0");
    broker.shutdown().await;
    namesrv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeat_groups_and_auto_created_topics() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = start_namesrv(dir.path()).await;
    let ns = namesrv.local_addr().to_string();
    let broker = BrokerServer::start(broker_config(&dir.path().join("store"), free_port(), &ns))
        .await
        .unwrap();
    let addr = broker.broker_addr().to_string();
    let client = RemotingClient::new(ClientConfig::default());

    // Auto-creation from TBW102 on first send.
    let resp = client
        .invoke_ok(&addr, send("AutoTopic", -1, b"x", &[]), T)
        .await
        .unwrap();
    let h: SendMessageResponseHeader = resp.decode_header().unwrap();
    assert!((0..4).contains(&h.queue_id));
    wait_for_route(&client, &ns, "AutoTopic").await;

    // A consumer heartbeat registers the group, its subscription and its retry topic.
    let hb = HeartbeatData {
        client_id: "127.0.0.1@test".into(),
        consumer_data_set: vec![ConsumerData {
            group_name: "CG".into(),
            subscription_data_set: vec![SubscriptionData {
                topic: "AutoTopic".into(),
                sub_string: "*".into(),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let request = RemotingCommand::bare_request(RequestCode::HEART_BEAT)
        .with_body(serde_json::to_vec(&hb).unwrap());
    client.invoke_ok(&addr, request, T).await.unwrap();
    let list = RemotingCommand::request(
        RequestCode::GET_CONSUMER_LIST_BY_GROUP,
        &GetConsumerListByGroupRequestHeader {
            consumer_group: "CG".into(),
        },
    );
    let body = client.invoke_ok(&addr, list.clone(), T).await.unwrap().body;
    assert!(String::from_utf8_lossy(&body).contains("127.0.0.1@test"));
    wait_for_route(&client, &ns, "%RETRY%CG").await;

    // Pull without an expression uses the heartbeat's subscription.
    wait_for_max_offset(&client, &addr, "AutoTopic", h.queue_id, 1).await;
    let resp = client
        .invoke(&addr, pull("AutoTopic", h.queue_id, 0, None, 0), T)
        .await
        .unwrap();
    assert_eq!(resp.code, 0, "{:?} {:?}", resp.remark, resp.ext_fields);

    // Closing the consumer's connection removes it from the group.
    client.close(&addr);
    let other = RemotingClient::new(ClientConfig::default());
    let deadline = Instant::now() + T;
    loop {
        let r = other.invoke(&addr, list.clone(), T).await.unwrap();
        if r.code != 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "consumer still listed after its connection closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    broker.shutdown().await;
    namesrv.shutdown().await;
}

/// Pulls `topic`/`queue` from `offset` until a message shows up or `within` passes.
async fn pull_one(
    client: &RemotingClient,
    addr: &str,
    topic: &str,
    queue: i32,
    offset: i64,
    within: Duration,
) -> Option<rocketmq_common::message::DecodedRecord<'static>> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let resp = client
            .invoke(addr, pull(topic, queue, offset, Some("*"), 200), T)
            .await
            .unwrap();
        if resp.code == 0 {
            // Leak the body so the decoded record can borrow it for the rest of the test.
            let body: &'static [u8] = Box::leak(resp.body.to_vec().into_boxed_slice());
            if let RecordEntry::Message(m) = decode_record(body, true).unwrap() {
                return Some(m);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

fn send_back(offset: i64, max_reconsume_times: i32) -> RemotingCommand {
    RemotingCommand::request(
        RequestCode::CONSUMER_SEND_MSG_BACK,
        &ConsumerSendMsgBackRequestHeader {
            offset,
            group: "CG".into(),
            delay_level: 0,
            origin_msg_id: None,
            origin_topic: Some("RetryTopic".into()),
            unit_mode: None,
            max_reconsume_times: Some(max_reconsume_times),
            broker_name: None,
        },
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_levels_survive_restart_and_retries_end_in_the_dlq() {
    let dir = tempfile::tempdir().unwrap();
    let namesrv = start_namesrv(dir.path()).await;
    let ns = namesrv.local_addr().to_string();
    let port = free_port();
    let store_dir = dir.path().join("store");
    let config = || {
        let mut c = broker_config(&store_dir, port, &ns);
        // Short levels keep the test fast; the mechanism is the same for 1s..2h.
        c.message_delay_level = "1s 1s 1s 1s 1s".into();
        c
    };
    let broker = BrokerServer::start(config()).await.unwrap();
    let addr = broker.broker_addr().to_string();
    let client = RemotingClient::new(ClientConfig::default());

    // A delayed message is invisible until due, then arrives without its DELAY property.
    let sent_at = Instant::now();
    client
        .invoke_ok(
            &addr,
            send("DelayTopic", 0, b"delayed", &[("DELAY", "1")]),
            T,
        )
        .await
        .unwrap();
    let early = client
        .invoke(&addr, pull("DelayTopic", 0, 0, Some("*"), 0), T)
        .await
        .unwrap();
    assert_ne!(early.code, 0, "delayed message visible before its time");
    let m = pull_one(&client, &addr, "DelayTopic", 0, 0, Duration::from_secs(5))
        .await
        .expect("delivered");
    assert!(
        sent_at.elapsed() >= Duration::from_millis(900),
        "delivered after {:?}",
        sent_at.elapsed()
    );
    assert_eq!(m.body, b"delayed");
    assert_eq!(get_property(m.properties, "DELAY"), None);
    assert_eq!(get_property(m.properties, "REAL_TOPIC"), Some("DelayTopic"));

    // A delayed message pending at shutdown is delivered after the restart.
    client
        .invoke_ok(
            &addr,
            send("DelayTopic", 0, b"across-restart", &[("DELAY", "2")]),
            T,
        )
        .await
        .unwrap();
    broker.shutdown().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let broker = BrokerServer::start(config()).await.unwrap();
    let m = pull_one(&client, &addr, "DelayTopic", 0, 1, Duration::from_secs(5))
        .await
        .expect("delivered after restart");
    assert_eq!(m.body, b"across-restart");

    // Retry: each send-back goes to %RETRY%CG after a delay; past maxReconsumeTimes, %DLQ%CG.
    let resp = client
        .invoke_ok(
            &addr,
            send("RetryTopic", 0, b"poison", &[("KEYS", "k1")]),
            T,
        )
        .await
        .unwrap();
    let h: SendMessageResponseHeader = resp.decode_header().unwrap();
    let (_, mut physical) = rocketmq_common::message::decode_offset_message_id(&h.msg_id).unwrap();
    for attempt in 0..2 {
        client
            .invoke_ok(&addr, send_back(physical, 2), T)
            .await
            .unwrap();
        let m = pull_one(
            &client,
            &addr,
            "%RETRY%CG",
            0,
            attempt,
            Duration::from_secs(5),
        )
        .await
        .unwrap_or_else(|| panic!("retry {attempt} not delivered"));
        assert_eq!(m.body, b"poison");
        assert_eq!(m.reconsume_times, attempt as i32 + 1);
        assert_eq!(
            get_property(m.properties, "RETRY_TOPIC"),
            Some("RetryTopic")
        );
        physical = m.physical_offset;
    }
    client
        .invoke_ok(&addr, send_back(physical, 2), T)
        .await
        .unwrap();
    let dead = pull_one(&client, &addr, "%DLQ%CG", 0, 0, Duration::from_secs(5))
        .await
        .expect("dead-lettered");
    assert_eq!(dead.body, b"poison");
    assert_eq!(
        get_property(dead.properties, "DLQ_ORIGIN_TOPIC"),
        Some("RetryTopic")
    );
    wait_for_route(&client, &ns, "%DLQ%CG").await;
    broker.shutdown().await;
    namesrv.shutdown().await;
}
