//! POP consumption over Remoting, through the client crate: pop, ack, batch ack, change of
//! invisible time, revive into the retry topic, the DLQ past `retryMaxTimes`, FIFO pops, long
//! polling and notifications; and a SIGKILL of the broker process that must not lose any
//! popped message that was not acked.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use rocketmq_broker::{BrokerConfig, BrokerServer};
use rocketmq_client::MqClient;
use rocketmq_client::pop::{Popped, PoppedMessage};
use rocketmq_common::body::SubscriptionGroupConfig;
use rocketmq_common::config::Properties;
use rocketmq_common::message::encode_properties;
use rocketmq_common::pop::{BatchAck, BatchAckMessageRequestBody, TopicFlag};
use rocketmq_common::protocol::ResponseCode;
use rocketmq_common::protocol::headers::broker::{
    NotificationRequestHeader, PopMessageRequestHeader, SendMessageRequestHeader,
};
use rocketmq_common::route::TopicConfig;
use rocketmq_testkit::requests::now_millis;
use rocketmq_testkit::standalone::Standalone;
use rocketmq_testkit::{free_port, wait_until};

const T: Duration = Duration::from_secs(5);
const GROUP: &str = "PopGroup";

fn config(store: &Path, port: u16, extra: &str) -> BrokerConfig {
    let props = Properties::parse(&format!(
        "brokerName=broker-a\nlistenPort={port}\nbrokerIP1=127.0.0.1\nbindAddress=127.0.0.1\n\
         storePathRootDir={}\nmappedFileSizeCommitLog=4194304\nmetricsPort=0\n\
         flushConsumerOffsetInterval=100\nmappedFileSizeTimerLog=65536\n{extra}",
        store.display()
    ));
    BrokerConfig::from_properties(&props).unwrap()
}

async fn setup(client: &MqClient, addr: &str, topic: &str, queues: i32, retry_max: i32) {
    client
        .create_topic(addr, &TopicConfig::new(topic, queues))
        .await
        .unwrap();
    let group = SubscriptionGroupConfig {
        retry_max_times: retry_max,
        ..SubscriptionGroupConfig::new(GROUP)
    };
    client
        .create_subscription_group(addr, serde_json::to_vec(&group).unwrap())
        .await
        .unwrap();
}

async fn send(client: &MqClient, addr: &str, topic: &str, queue_id: i32, key: &str) {
    let header = SendMessageRequestHeader {
        producer_group: "PG".into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id,
        born_timestamp: now_millis(),
        properties: Some(encode_properties([("KEYS", key), ("UNIQ_KEY", key)])),
        ..Default::default()
    };
    client
        .send_message(addr, header, key.as_bytes().to_vec())
        .await
        .unwrap();
}

/// Waits until `topic` holds `total` messages in its first `queues` queues (sends are
/// acknowledged before the ConsumeQueue makes them readable).
async fn wait_readable(client: &MqClient, addr: &str, topic: &str, queues: i32, total: i64) {
    wait_until(
        "sent messages readable",
        Duration::from_secs(10),
        || async {
            let mut n = 0;
            for q in 0..queues {
                n += client.queue_offset(addr, topic, q, true).await.ok()?;
            }
            (n == total).then_some(())
        },
    )
    .await;
}

fn pop_header(topic: &str, max: i32, invisible_ms: i64, poll_ms: i64) -> PopMessageRequestHeader {
    PopMessageRequestHeader {
        consumer_group: GROUP.into(),
        topic: topic.into(),
        queue_id: -1,
        max_msg_nums: max,
        invisible_time: invisible_ms,
        poll_time: poll_ms,
        born_time: now_millis(),
        init_mode: 0,
        exp_type: Some("TAG".into()),
        exp: Some("*".into()),
        order: None,
        attempt_id: None,
    }
}

async fn pop(client: &MqClient, addr: &str, h: PopMessageRequestHeader) -> Popped {
    client.pop_message(addr, "broker-a", &h).await.unwrap()
}

fn key(m: &PoppedMessage) -> String {
    m.message.keys().unwrap_or_default().to_string()
}

/// Pops (with long polling) until `keys` were all seen or `limit` passes; returns what came,
/// acking nothing.
async fn pop_until(
    client: &MqClient,
    addr: &str,
    topic: &str,
    keys: &[&str],
    invisible_ms: i64,
    limit: Duration,
) -> Vec<PoppedMessage> {
    let deadline = Instant::now() + limit;
    let mut got: Vec<PoppedMessage> = Vec::new();
    while Instant::now() < deadline {
        let seen: BTreeSet<String> = got.iter().map(key).collect();
        if keys.iter().all(|k| seen.contains(*k)) {
            break;
        }
        let popped = pop(client, addr, pop_header(topic, 32, invisible_ms, 1000)).await;
        got.extend(popped.messages);
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pop_ack_revive_retry_dead_letter_and_invisible_time_changes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let broker = BrokerServer::start(config(dir.path(), port, ""))
        .await
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let client = MqClient::for_brokers(T);
    let topic = "PopTopic";
    setup(&client, &addr, topic, 4, 1).await;
    let keys: Vec<String> = (0..8).map(|i| format!("k{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        send(&client, &addr, topic, i as i32 % 4, k).await;
    }
    wait_readable(&client, &addr, topic, 4, 8).await;

    // Everything pops once; receipts name this broker and the normal topic.
    let first = pop(&client, &addr, pop_header(topic, 32, 2000, 0)).await;
    assert_eq!(first.code, 0);
    let mut by_key: std::collections::HashMap<String, PoppedMessage> =
        first.messages.into_iter().map(|m| (key(&m), m)).collect();
    assert_eq!(by_key.len(), 8, "one pop of every queue returns all 8");
    for m in by_key.values() {
        assert_eq!(m.receipt.topic_flag, TopicFlag::Normal);
        assert_eq!(m.receipt.broker_name, "broker-a");
        assert_eq!(m.message.topic, topic);
    }
    // Nothing is visible until the invisible time passes.
    let again = pop(&client, &addr, pop_header(topic, 32, 2000, 0)).await;
    assert_eq!(again.code, ResponseCode::PollingTimeout.as_i32());
    assert!(again.messages.is_empty());

    // k0, k1 acked one by one, k2 and k3 in one batch ack, k4 kept invisible for longer.
    for k in ["k0", "k1"] {
        client.ack_message(&addr, GROUP, &by_key[k]).await.unwrap();
    }
    let batch = BatchAckMessageRequestBody {
        broker_name: "broker-a".into(),
        acks: ["k2", "k3"]
            .iter()
            .map(|k| {
                let r = &by_key[*k].receipt;
                BatchAck {
                    consumer_group: GROUP.into(),
                    topic: topic.into(),
                    retry: r.topic_flag.as_str().into(),
                    start_offset: r.ck_queue_offset,
                    queue_id: r.queue_id,
                    revive_queue_id: r.revive_qid,
                    pop_time: r.pop_time,
                    invisible_time: r.invisible_time,
                    bit_set: BatchAck::encode_bits(r.ck_queue_offset, &[r.queue_offset]),
                }
            })
            .collect(),
    };
    client.batch_ack(&addr, &batch).await.unwrap();
    let k4 = by_key.remove("k4").unwrap();
    let new_receipt = client
        .change_invisible_time(&addr, GROUP, &k4, 7000)
        .await
        .unwrap();
    assert!(new_receipt.pop_time >= k4.receipt.pop_time);
    assert_eq!(new_receipt.invisible_time, 7000);

    // After 2 s (plus the revive grace) k5..k7 come back from the retry topic, once more
    // consumed, under the topic the consumer asked for.
    let retried = pop_until(
        &client,
        &addr,
        topic,
        &["k5", "k6", "k7"],
        2000,
        Duration::from_secs(15),
    )
    .await;
    let retried_keys: BTreeSet<String> = retried.iter().map(key).collect();
    assert_eq!(
        retried_keys,
        ["k5", "k6", "k7"].iter().map(|s| s.to_string()).collect(),
        "exactly the un-acked messages come back (k4 is still invisible)"
    );
    for m in &retried {
        assert_eq!(m.message.topic, topic);
        assert_eq!(m.receipt.topic_flag, TopicFlag::RetryV1);
        assert_eq!(m.reconsume_times, 1);
        assert_eq!(m.real_topic(GROUP), "%RETRY%PopGroup_PopTopic");
        assert!(m.message.property("1ST_POP_TIME").is_some());
    }
    // k5 is acked through its retry topic; k6 and k7 pass retryMaxTimes=1 and go to the DLQ.
    let k5 = retried.iter().find(|m| key(m) == "k5").unwrap();
    client.ack_message(&addr, GROUP, k5).await.unwrap();
    wait_until("k6 and k7 in the DLQ", Duration::from_secs(15), || async {
        let n = client
            .queue_offset(&addr, "%DLQ%PopGroup", 0, true)
            .await
            .unwrap_or(0);
        (n == 2).then_some(())
    })
    .await;

    // k4 comes back once its new invisible time passes; the old receipt no longer acks it.
    let back = pop_until(
        &client,
        &addr,
        topic,
        &["k4"],
        30_000,
        Duration::from_secs(15),
    )
    .await;
    let k4_again = back
        .iter()
        .find(|m| key(m) == "k4")
        .expect("k4 redelivered");
    assert_eq!(k4_again.reconsume_times, 1);
    client.ack_message(&addr, GROUP, k4_again).await.unwrap();
    assert!(
        back.iter().all(|m| key(m) == "k4"),
        "nothing but k4 was still owed: {:?}",
        back.iter().map(key).collect::<Vec<_>>()
    );
    // Everything is settled: nothing more comes.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let rest = pop(&client, &addr, pop_header(topic, 32, 2000, 0)).await;
    assert!(
        rest.messages.is_empty(),
        "{:?}",
        rest.messages.iter().map(key).collect::<Vec<_>>()
    );

    // Malformed receipts are refused, not acked.
    let mut forged = k4_again.clone();
    forged.receipt.revive_qid = 77;
    let err = client.ack_message(&addr, GROUP, &forged).await.unwrap_err();
    assert_eq!(
        err.response_code(),
        Some(ResponseCode::MessageIllegal.as_i32())
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_pop_holds_the_queue_until_acked_and_counts_redeliveries() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let broker = BrokerServer::start(config(dir.path(), port, ""))
        .await
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let client = MqClient::for_brokers(T);
    let topic = "FifoTopic";
    setup(&client, &addr, topic, 1, 16).await;
    for k in ["m0", "m1", "m2"] {
        send(&client, &addr, topic, 0, k).await;
    }
    wait_readable(&client, &addr, topic, 1, 3).await;
    let fifo = |attempt: &str, invisible: i64| PopMessageRequestHeader {
        order: Some(true),
        attempt_id: Some(attempt.into()),
        ..pop_header(topic, 1, invisible, 0)
    };
    let first = pop(&client, &addr, fifo("a1", 30_000)).await;
    assert_eq!(first.messages.iter().map(key).collect::<Vec<_>>(), ["m0"]);
    assert!(first.messages[0].receipt.is_order());
    // The queue waits for m0's ack: another attempt gets nothing...
    let blocked = pop(&client, &addr, fifo("a2", 30_000)).await;
    assert!(blocked.messages.is_empty());
    // ...but the same attempt retried gets m0 again.
    let retried = pop(&client, &addr, fifo("a1", 30_000)).await;
    assert_eq!(retried.messages.iter().map(key).collect::<Vec<_>>(), ["m0"]);
    client
        .ack_message(&addr, GROUP, &retried.messages[0])
        .await
        .unwrap();
    let next = pop(&client, &addr, fifo("a3", 800)).await;
    assert_eq!(next.messages.iter().map(key).collect::<Vec<_>>(), ["m1"]);
    assert_eq!(next.messages[0].reconsume_times, 0);
    // Not acked in time: m1 again, counted as a redelivery; m2 still waits behind it.
    tokio::time::sleep(Duration::from_millis(900)).await;
    let again = pop(&client, &addr, fifo("a4", 30_000)).await;
    assert_eq!(again.messages.iter().map(key).collect::<Vec<_>>(), ["m1"]);
    assert_eq!(again.messages[0].reconsume_times, 1);
    client
        .ack_message(&addr, GROUP, &again.messages[0])
        .await
        .unwrap();
    let last = pop(&client, &addr, fifo("a5", 30_000)).await;
    assert_eq!(last.messages.iter().map(key).collect::<Vec<_>>(), ["m2"]);
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polling_pops_and_notifications_wake_on_arrival() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let broker = BrokerServer::start(config(dir.path(), port, ""))
        .await
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let client = MqClient::for_brokers(T);
    let topic = "PollTopic";
    setup(&client, &addr, topic, 2, 16).await;

    let notify = |poll: i64| NotificationRequestHeader {
        consumer_group: GROUP.into(),
        topic: topic.into(),
        queue_id: -1,
        poll_time: poll,
        born_time: now_millis(),
        order: None,
        attempt_id: None,
    };
    let started = Instant::now();
    assert!(!client.notification(&addr, &notify(300)).await.unwrap());
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "held for its poll time"
    );

    let waiting = {
        let (client, addr) = (client.clone(), addr.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let popped = pop(&client, &addr, pop_header(topic, 32, 60_000, 10_000)).await;
            (popped, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    send(&client, &addr, topic, 1, "late").await;
    let (popped, waited) = waiting.await.unwrap();
    assert_eq!(
        popped.messages.iter().map(key).collect::<Vec<_>>(),
        ["late"]
    );
    assert!(
        waited < Duration::from_secs(5),
        "woken by the arrival, took {waited:?}"
    );

    send(&client, &addr, topic, 0, "ready").await;
    assert!(client.notification(&addr, &notify(5000)).await.unwrap());
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_broker_loses_no_popped_message_that_was_not_acked() {
    let mut servers = Standalone::start(
        "mappedFileSizeCommitLog=4194304\nflushDiskType=SYNC_FLUSH\n\
         flushConsumerOffsetInterval=5000\n",
    )
    .await;
    let addr = servers.broker_addr().to_string();
    let client = MqClient::for_brokers(T);
    let topic = "CrashPopTopic";
    setup(&client, &addr, topic, 4, 16).await;
    let keys: Vec<String> = (0..40).map(|i| format!("c{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        send(&client, &addr, topic, i as i32 % 4, k).await;
    }
    wait_readable(&client, &addr, topic, 4, 40).await;
    let mut popped = Vec::new();
    while popped.len() < keys.len() {
        let p = pop(&client, &addr, pop_header(topic, 16, 3000, 1000)).await;
        assert!(
            !p.messages.is_empty() || popped.len() == keys.len(),
            "everything pops"
        );
        popped.extend(p.messages);
    }
    // Ack every third message, then SIGKILL before the offsets are flushed.
    let mut acked = BTreeSet::new();
    for m in popped
        .iter()
        .filter(|m| key(m)[1..].parse::<usize>().unwrap() % 3 == 0)
    {
        client.ack_message(&addr, GROUP, m).await.unwrap();
        acked.insert(key(m));
    }
    servers.kill_broker();
    servers.start_broker().await;
    client.remoting().close(&addr);

    // Every message not acked comes back (the acked ones may, too: at least once).
    let owed: Vec<&str> = keys
        .iter()
        .filter(|k| !acked.contains(*k))
        .map(String::as_str)
        .collect();
    let back = pop_until(
        &client,
        &addr,
        topic,
        &owed,
        60_000,
        Duration::from_secs(30),
    )
    .await;
    let seen: BTreeSet<String> = back.iter().map(key).collect();
    let missing: Vec<&&str> = owed.iter().filter(|k| !seen.contains(**k)).collect();
    assert!(
        missing.is_empty(),
        "un-acked messages lost by the crash: {missing:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pops_of_one_group_hand_out_each_message_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let broker = BrokerServer::start(config(dir.path(), port, ""))
        .await
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let client = MqClient::for_brokers(T);
    let topic = "BusyTopic";
    setup(&client, &addr, topic, 4, 16).await;
    let n = 400;
    for i in 0..n {
        send(&client, &addr, topic, i % 4, &format!("b{i}")).await;
    }
    wait_readable(&client, &addr, topic, 4, n as i64).await;
    // Eight consumers pop the same queues at once: a busy queue is skipped, never given
    // out twice, and the broker keeps answering.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (client, addr, done) = (client.clone(), addr.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut keys = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(30);
            while done.load(std::sync::atomic::Ordering::SeqCst) < n as usize
                && Instant::now() < deadline
            {
                let p = pop(&client, &addr, pop_header(topic, 8, 60_000, 200)).await;
                for m in &p.messages {
                    client.ack_message(&addr, GROUP, m).await.unwrap();
                }
                done.fetch_add(p.messages.len(), std::sync::atomic::Ordering::SeqCst);
                keys.extend(p.messages.iter().map(key));
            }
            keys
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: BTreeSet<&String> = all.iter().collect();
    assert_eq!(distinct.len(), n as usize, "every message was popped");
    assert_eq!(all.len(), n as usize, "and none twice");
    broker.shutdown().await;
}
