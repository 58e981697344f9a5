//! The broker's RocketMQ 5 features, driven over TCP by our Remoting client against a broker
//! in this process: transactions (commit, rollback, check-back, give-up, restart), timer
//! messages (on time, never early, across a restart), queue locks and the system-topic
//! guard; and, with the broker as a process, transactions and timers across a SIGKILL.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rocketmq_broker::{BrokerConfig, BrokerServer};
use rocketmq_common::body::{
    HeartbeatData, LockBatchRequestBody, LockBatchResponseBody, MessageQueue, ProducerData,
};
use rocketmq_common::config::Properties;
use rocketmq_common::message::get_property;
use rocketmq_common::message::sysflag::TRANSACTION_PREPARED_TYPE;
use rocketmq_common::protocol::headers::broker::{
    CheckTransactionStateRequestHeader, CreateTopicRequestHeader, EndTransactionRequestHeader,
    SendMessageResponseHeader,
};
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{ClientConfig, ClientRequestHandler, RemotingClient};
use rocketmq_testkit::requests::{self, T, max_offset, now_millis, pull, send, send_with_flag};
use rocketmq_testkit::standalone::Standalone;
use rocketmq_testkit::{free_port, records, wait_until};

const COMMIT: i32 = 8;
const ROLLBACK: i32 = 12;
const UNKNOWN: i32 = 0;

fn config(store: &std::path::Path, port: u16, extra: &str) -> BrokerConfig {
    let props = Properties::parse(&format!(
        "brokerName=broker-a\nlistenPort={port}\nbrokerIP1=127.0.0.1\nbindAddress=127.0.0.1\n\
         storePathRootDir={}\nmappedFileSizeCommitLog=4194304\nmetricsPort=0\n\
         flushConsumerOffsetInterval=100\nmappedFileSizeTimerLog=65536\n{extra}",
        store.display()
    ));
    BrokerConfig::from_properties(&props).unwrap()
}

/// Sends a half message; returns (commitLogOffset, half queue offset, transaction id).
async fn send_half(
    client: &RemotingClient,
    addr: &str,
    topic: &str,
    key: &str,
) -> (i64, i64, String) {
    let request = send_with_flag(
        topic,
        1,
        key.as_bytes(),
        &[
            ("TRAN_MSG", "true"),
            ("PGROUP", "PG"),
            ("KEYS", key),
            ("UNIQ_KEY", key),
        ],
        TRANSACTION_PREPARED_TYPE,
    );
    let response = client.invoke_ok(addr, request, T).await.unwrap();
    let h: SendMessageResponseHeader = response.decode_header().unwrap();
    assert_eq!(h.queue_id, 1, "the response names the real queue");
    assert_eq!(h.transaction_id.as_deref(), Some(key));
    let (_, offset) = rocketmq_common::message::decode_offset_message_id(&h.msg_id).unwrap();
    (offset, h.queue_offset, key.to_string())
}

fn end(
    commit_log_offset: i64,
    half_offset: i64,
    msg_id: &str,
    resolution: i32,
    from_check: bool,
) -> RemotingCommand {
    RemotingCommand::request(
        RequestCode::END_TRANSACTION,
        &EndTransactionRequestHeader {
            topic: None,
            producer_group: "PG".into(),
            tran_state_table_offset: half_offset,
            commit_log_offset,
            commit_or_rollback: resolution,
            from_transaction_check: Some(from_check),
            msg_id: msg_id.into(),
            transaction_id: Some(msg_id.into()),
        },
    )
}

/// Keys of the messages readable in `topic`/`queue` from offset 0.
async fn keys_in(client: &RemotingClient, addr: &str, topic: &str, queue: i32) -> Vec<String> {
    let response = client
        .invoke(addr, pull("CG", topic, queue, 0, "*"), T)
        .await
        .unwrap();
    if response.code != 0 {
        return Vec::new();
    }
    records(&response.body)
        .iter()
        .map(|m| {
            get_property(m.properties, "KEYS")
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// A producer connection that records CHECK_TRANSACTION_STATE requests.
#[derive(Default)]
struct Checks(Mutex<Vec<(CheckTransactionStateRequestHeader, Vec<u8>)>>);

impl ClientRequestHandler for Checks {
    fn handle(&self, _addr: &str, request: RemotingCommand) -> Option<RemotingCommand> {
        if request.code == i32::from(RequestCode::CHECK_TRANSACTION_STATE) {
            let h: CheckTransactionStateRequestHeader = request.decode_header().unwrap();
            self.0.lock().unwrap().push((h, request.body.to_vec()));
        }
        None
    }
}

async fn register_producer(client: &RemotingClient, addr: &str) {
    let hb = HeartbeatData {
        client_id: "127.0.0.1@test-producer".into(),
        producer_data_set: vec![ProducerData {
            group_name: "PG".into(),
        }],
        ..HeartbeatData::default()
    };
    let request = RemotingCommand::bare_request(RequestCode::HEART_BEAT)
        .with_body(serde_json::to_vec(&hb).unwrap());
    client.invoke_ok(addr, request, T).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_commit_rollback_check_back_give_up_and_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = "transactionCheckInterval=300\ntransactionTimeOut=800\ntransactionCheckMax=2\n";
    let broker = BrokerServer::start(config(dir.path(), port, extra))
        .await
        .unwrap();
    let addr = broker.broker_addr().to_string();
    let client = RemotingClient::new(ClientConfig::default());
    let topic = "TxTopic";

    // Commit and rollback by the producer itself.
    let (c_off, c_half, c_id) = send_half(&client, &addr, topic, "commit-me").await;
    let (r_off, r_half, r_id) = send_half(&client, &addr, topic, "roll-me-back").await;
    assert_eq!(r_half, c_half + 1);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        keys_in(&client, &addr, topic, 1).await.is_empty(),
        "half messages are invisible"
    );
    client
        .invoke_oneway(&addr, end(c_off, c_half, &c_id, COMMIT, false), T)
        .await
        .unwrap();
    client
        .invoke_oneway(&addr, end(r_off, r_half, &r_id, ROLLBACK, false), T)
        .await
        .unwrap();
    // A mismatched group or offset is refused (answered when sent two-way).
    let mut wrong = end(c_off, c_half + 5, &c_id, COMMIT, false);
    wrong.flag = 0;
    let response = client.invoke(&addr, wrong, T).await.unwrap();
    assert_eq!(response.code, 1, "{:?}", response.remark);
    requests::wait_for_max_offset(&client, &addr, topic, 1, 1).await;
    assert_eq!(keys_in(&client, &addr, topic, 1).await, vec!["commit-me"]);
    let committed = client
        .invoke(&addr, pull("CG", topic, 1, 0, "*"), T)
        .await
        .unwrap();
    let m = &records(&committed.body)[0];
    assert_eq!(
        m.sys_flag & 0xC,
        COMMIT,
        "committed copy carries the COMMIT type"
    );
    assert_eq!(m.prepared_transaction_offset, c_off);
    assert_eq!(get_property(m.properties, "REAL_TOPIC"), None);
    assert_eq!(get_property(m.properties, "TRAN_MSG"), None);

    // An open transaction, then a broker restart: the check service asks a live producer.
    let (_, _, open_id) = send_half(&client, &addr, topic, "ask-me").await;
    broker.shutdown().await;
    let broker = BrokerServer::start(config(dir.path(), port, extra))
        .await
        .unwrap();
    let checks = Arc::new(Checks::default());
    let producer = RemotingClient::with_handler(ClientConfig::default(), checks.clone());
    register_producer(&producer, &addr).await;
    let (h, body) = wait_until("a transaction check", Duration::from_secs(10), || async {
        checks.0.lock().unwrap().first().cloned()
    })
    .await;
    assert_eq!(h.transaction_id.as_deref(), Some(open_id.as_str()));
    let checked = rocketmq_common::message::decode_record(&body, true).unwrap();
    let rocketmq_common::message::RecordEntry::Message(checked) = checked else {
        panic!("check body is not a message");
    };
    assert_eq!(checked.topic, topic, "the check body names the real topic");
    assert_eq!(checked.queue_id, 1);
    assert_eq!(checked.physical_offset, h.commit_log_offset);
    assert_eq!(
        get_property(checked.properties, "TRANSACTION_CHECK_TIMES"),
        Some("1")
    );
    // The producer answers the check: commit.
    producer
        .invoke_oneway(
            &addr,
            end(
                h.commit_log_offset,
                h.tran_state_table_offset,
                &open_id,
                COMMIT,
                true,
            ),
            T,
        )
        .await
        .unwrap();
    requests::wait_for_max_offset(&client, &addr, topic, 1, 2).await;
    assert_eq!(
        keys_in(&client, &addr, topic, 1).await,
        vec!["commit-me", "ask-me"]
    );

    // A transaction whose producer keeps answering "unknown" is given up after
    // transactionCheckMax checks and parked in TRANS_CHECK_MAX_TIME_TOPIC.
    let (_, _, lost_id) = send_half(&client, &addr, topic, "never-decided").await;
    let started = Instant::now();
    loop {
        let pending: Vec<_> = checks
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(h, _)| h.transaction_id.as_deref() == Some(lost_id.as_str()))
            .map(|(h, _)| h.clone())
            .collect();
        if let Some(h) = pending.last() {
            let _ = producer
                .invoke_oneway(
                    &addr,
                    end(
                        h.commit_log_offset,
                        h.tran_state_table_offset,
                        &lost_id,
                        UNKNOWN,
                        true,
                    ),
                    T,
                )
                .await;
        }
        if max_offset(&client, &addr, "TRANS_CHECK_MAX_TIME_TOPIC", 0).await == 1 {
            assert_eq!(
                pending.len(),
                2,
                "checked exactly transactionCheckMax times"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never given up; {} checks",
            pending.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        keys_in(&client, &addr, "TRANS_CHECK_MAX_TIME_TOPIC", 0).await,
        vec!["never-decided"]
    );
    assert_eq!(
        keys_in(&client, &addr, topic, 1).await.len(),
        2,
        "nothing else became visible"
    );
    broker.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timer_messages_are_delivered_on_time_never_early_and_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = "timerPrecisionMs=100\n";
    let broker = BrokerServer::start(config(dir.path(), port, extra))
        .await
        .unwrap();
    let addr = broker.broker_addr().to_string();
    let client = RemotingClient::new(ClientConfig::default());
    let topic = "TimerTopic";
    let sent_at = now_millis();
    let deliver_at = sent_at + 1_500;
    let deliver_text = deliver_at.to_string();
    for (key, prop, value) in [
        ("sec", "TIMER_DELAY_SEC", "1"),
        ("ms", "TIMER_DELAY_MS", "1200"),
        ("abs", "TIMER_DELIVER_MS", deliver_text.as_str()),
    ] {
        let r = client
            .invoke_ok(
                &addr,
                send(topic, 0, key.as_bytes(), &[("KEYS", key), (prop, value)]),
                T,
            )
            .await
            .unwrap();
        let h: SendMessageResponseHeader = r.decode_header().unwrap();
        assert_eq!(h.queue_id, 0);
    }
    // Far in the future: delivered only after the restart below.
    client
        .invoke_ok(
            &addr,
            send(
                topic,
                0,
                b"late",
                &[("KEYS", "late"), ("TIMER_DELAY_MS", "3500")],
            ),
            T,
        )
        .await
        .unwrap();
    // Invalid: beyond the max delay.
    let r = client
        .invoke(
            &addr,
            send(topic, 0, b"x", &[("TIMER_DELAY_SEC", "99999999")]),
            T,
        )
        .await
        .unwrap();
    assert_eq!(
        r.code,
        i32::from(ResponseCode::MessageIllegal),
        "{:?}",
        r.remark
    );

    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        keys_in(&client, &addr, topic, 0).await.is_empty(),
        "nothing before its time"
    );
    requests::wait_for_max_offset(&client, &addr, topic, 0, 3).await;
    let got_at = now_millis();
    let response = client
        .invoke(&addr, pull("CG", topic, 0, 0, "*"), T)
        .await
        .unwrap();
    for m in records(&response.body) {
        let key = get_property(m.properties, "KEYS").unwrap();
        let due = match key {
            "sec" => sent_at + 1_000,
            "ms" => sent_at + 1_200,
            _ => deliver_at,
        };
        assert!(
            m.store_timestamp >= due,
            "{key} stored at {} before {due}",
            m.store_timestamp
        );
        assert!(
            m.store_timestamp <= due + 1_000,
            "{key} late: {} for {due}",
            m.store_timestamp
        );
        assert!(get_property(m.properties, "TIMER_ENQUEUE_MS").is_some());
        assert_eq!(get_property(m.properties, "REAL_TOPIC"), None);
    }
    assert!(got_at >= sent_at + 1_500);

    // Restart with one message pending: it is delivered once, at its time.
    broker.shutdown().await;
    let broker = BrokerServer::start(config(dir.path(), port, extra))
        .await
        .unwrap();
    requests::wait_for_max_offset(&client, &addr, topic, 0, 4).await;
    let keys = keys_in(&client, &addr, topic, 0).await;
    assert_eq!(keys.iter().filter(|k| *k == "late").count(), 1, "{keys:?}");
    assert!(now_millis() >= sent_at + 3_500);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        max_offset(&client, &addr, topic, 0).await,
        4,
        "no duplicate after a clean restart"
    );
    broker.shutdown().await;
}

fn lock_body(client_id: &str, queues: &[i32]) -> Vec<u8> {
    let body = LockBatchRequestBody {
        client_id: client_id.into(),
        consumer_group: "OrderGroup".into(),
        mq_set: queues
            .iter()
            .map(|q| MessageQueue {
                broker_name: "broker-a".into(),
                queue_id: *q,
                topic: "OrderTopic".into(),
            })
            .collect(),
        only_this_broker: true,
    };
    serde_json::to_vec(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_locks_give_each_queue_one_owner_and_system_topics_are_guarded() {
    let dir = tempfile::tempdir().unwrap();
    let broker = BrokerServer::start(config(dir.path(), free_port(), ""))
        .await
        .unwrap();
    let addr = broker.broker_addr().to_string();
    let client = RemotingClient::new(ClientConfig::default());
    let lock = |who: &str, queues: &[i32]| {
        RemotingCommand::bare_request(RequestCode::LOCK_BATCH_MQ).with_body(lock_body(who, queues))
    };
    let locked = |r: RemotingCommand| -> Vec<i32> {
        let body: LockBatchResponseBody = serde_json::from_slice(&r.body).unwrap();
        body.lock_ok_mq_set.iter().map(|mq| mq.queue_id).collect()
    };
    let a = locked(
        client
            .invoke_ok(&addr, lock("A", &[0, 1]), T)
            .await
            .unwrap(),
    );
    assert_eq!(a, vec![0, 1]);
    let b = locked(
        client
            .invoke_ok(&addr, lock("B", &[0, 1, 2, 3]), T)
            .await
            .unwrap(),
    );
    assert_eq!(b, vec![2, 3], "B gets only what A does not hold");
    let unlock =
        RemotingCommand::bare_request(RequestCode::UNLOCK_BATCH_MQ).with_body(lock_body("A", &[1]));
    client.invoke_ok(&addr, unlock, T).await.unwrap();
    let b = locked(
        client
            .invoke_ok(&addr, lock("B", &[0, 1]), T)
            .await
            .unwrap(),
    );
    assert_eq!(b, vec![1]);

    for system in [
        "TBW102",
        "SCHEDULE_TOPIC_XXXX",
        "RMQ_SYS_TRANS_HALF_TOPIC",
        "rmq_sys_wheel_timer",
        "broker-a",
    ] {
        let request = RemotingCommand::request(
            RequestCode::UPDATE_AND_CREATE_TOPIC,
            &CreateTopicRequestHeader {
                topic: system.into(),
                default_topic: "TBW102".into(),
                read_queue_nums: 1,
                write_queue_nums: 1,
                perm: 6,
                topic_filter_type: "SINGLE_TAG".into(),
                ..Default::default()
            },
        );
        let r = client.invoke(&addr, request, T).await.unwrap();
        assert_ne!(r.code, 0, "{system} must not be changed");
        assert!(
            r.remark.unwrap_or_default().contains("system topic"),
            "{system}"
        );
    }
    broker.shutdown().await;
}

/// (key, store timestamp) of every message readable in `topic`/`queue` from offset 0.
async fn stored_in(
    client: &RemotingClient,
    addr: &str,
    topic: &str,
    queue: i32,
) -> Vec<(String, i64)> {
    let Ok(response) = client
        .invoke(addr, pull("CG", topic, queue, 0, "*"), T)
        .await
    else {
        return Vec::new();
    };
    if response.code != 0 {
        return Vec::new();
    }
    records(&response.body)
        .iter()
        .map(|m| {
            let key = get_property(m.properties, "KEYS").unwrap_or_default();
            (key.to_string(), m.store_timestamp)
        })
        .collect()
}

/// A broker killed with SIGKILL while transactions are open, committed and rolled back and
/// timer messages are pending (some already delivered): after the restart every committed
/// message is there exactly once and no rolled-back one; only the open transactions are
/// checked, and each is committed once; every timer message is delivered (at least once,
/// at most twice), never early.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_and_timers_survive_sigkill() {
    let mut servers = Standalone::start(
        "mappedFileSizeCommitLog=4194304\nflushConsumerOffsetInterval=100\n\
         mappedFileSizeTimerLog=65536\ntransactionCheckInterval=300\n\
         transactionTimeOut=800\ntransactionCheckMax=5\n",
    )
    .await;
    let addr = servers.broker_addr().to_string();
    let client = RemotingClient::new(ClientConfig::default());
    let (tx, timers) = ("TxCrash", "TimerCrash");

    for i in 0..10 {
        let (off, half, id) = send_half(&client, &addr, tx, &format!("commit-{i}")).await;
        client
            .invoke_oneway(&addr, end(off, half, &id, COMMIT, false), T)
            .await
            .unwrap();
        let (off, half, id) = send_half(&client, &addr, tx, &format!("rollback-{i}")).await;
        client
            .invoke_oneway(&addr, end(off, half, &id, ROLLBACK, false), T)
            .await
            .unwrap();
        send_half(&client, &addr, tx, &format!("open-{i}")).await;
    }
    // Timers: "early-*" are due before the kill, "late-*" after the restart.
    let sent_at = now_millis();
    for i in 0..10 {
        for (prefix, delay) in [("early", "1"), ("late", "5")] {
            let key = format!("{prefix}-{i}");
            let props = [("TIMER_DELAY_SEC", delay), ("KEYS", key.as_str())];
            let r = client
                .invoke_ok(&addr, send(timers, 0, key.as_bytes(), &props), T)
                .await
                .unwrap();
            assert_eq!(r.code, 0);
        }
    }
    requests::wait_for_max_offset(&client, &addr, tx, 1, 10).await;
    requests::wait_for_max_offset(&client, &addr, timers, 0, 10).await;
    servers.kill_broker();
    servers.start_broker().await;
    let checks = Arc::new(Checks::default());
    let producer = RemotingClient::with_handler(ClientConfig::default(), checks.clone());
    register_producer(&producer, &addr).await;
    let answered = Mutex::new(std::collections::BTreeSet::new());
    let keys = wait_until(
        "every open transaction checked and committed",
        Duration::from_secs(30),
        || async {
            let pending: Vec<_> = checks.0.lock().unwrap().drain(..).collect();
            for (h, _) in pending {
                let id = h.transaction_id.clone().unwrap_or_default();
                assert!(
                    id.starts_with("open-"),
                    "a decided transaction was checked: {id}"
                );
                let first = answered.lock().unwrap().insert(id.clone());
                if first {
                    let request = end(
                        h.commit_log_offset,
                        h.tran_state_table_offset,
                        &id,
                        COMMIT,
                        true,
                    );
                    producer.invoke_oneway(&addr, request, T).await.unwrap();
                }
            }
            let keys = keys_in(&client, &addr, tx, 1).await;
            (keys.len() >= 20).then_some(keys)
        },
    )
    .await;
    let mut keys = keys;
    keys.sort();
    let mut expected: Vec<String> = (0..10)
        .flat_map(|i| [format!("commit-{i}"), format!("open-{i}")])
        .collect();
    expected.sort();
    assert_eq!(keys, expected, "each committed transaction exactly once");

    let distinct = |seen: &[(String, i64)]| {
        seen.iter()
            .map(|(k, _)| k.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    let delivered = wait_until(
        "every timer message delivered",
        Duration::from_secs(30),
        || async {
            let seen = stored_in(&client, &addr, timers, 0).await;
            (distinct(&seen) >= 20).then_some(seen)
        },
    )
    .await;
    assert_eq!(distinct(&delivered), 20, "{delivered:?}");
    // As in Java, a crash may deliver a timer message twice (delivery is recorded in the
    // checkpoint once the re-put copies are flushed), never three times.
    for i in 0..10 {
        for prefix in ["early", "late"] {
            let key = format!("{prefix}-{i}");
            let copies = delivered.iter().filter(|(k, _)| *k == key).count();
            assert!(copies <= 2, "{key} delivered {copies} times");
        }
    }
    for (key, stored) in &delivered {
        let delay = if key.starts_with("early") { 1000 } else { 5000 };
        assert!(
            *stored >= sent_at + delay,
            "{key} delivered {} ms early",
            sent_at + delay - stored
        );
    }
}
