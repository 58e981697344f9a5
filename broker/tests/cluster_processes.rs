//! Real `mqnamesrv` and `mqbroker` processes on loopback: 100k keyed messages across
//! queues, the broker killed with SIGKILL while producers run and again while a consumer
//! is mid-stream. Checks: every acknowledged message is consumed exactly once, in queue
//! order, at the offset its send was acknowledged with; no message appears twice; the
//! consumer resumes from its committed offsets after the crash.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rocketmq_common::message::{RecordEntry, decode_record, encode_properties, get_property};
use rocketmq_common::protocol::headers::broker::*;
use rocketmq_common::protocol::headers::namesrv::GetRouteInfoRequestHeader;
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{ClientConfig, RemotingClient};
use rocketmq_testkit::free_port;

const T: Duration = Duration::from_secs(5);
const QUEUES: i32 = 8;
const TOPIC: &str = "E2ETopic";
const GROUP: &str = "E2EGroup";

/// `mqnamesrv` from the same build; built on demand when only this package was built.
fn namesrv_binary() -> PathBuf {
    let broker = PathBuf::from(env!("CARGO_BIN_EXE_mqbroker"));
    let path = broker.with_file_name("mqnamesrv");
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "rocketmq-namesrv", "--bin", "mqnamesrv"])
            .status()
            .expect("run cargo build for mqnamesrv");
        assert!(status.success(), "building mqnamesrv failed");
    }
    path
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_namesrv(dir: &Path, port: u16) -> Proc {
    Proc(
        Command::new(namesrv_binary())
            .args([
                "--bindAddress",
                "127.0.0.1",
                "--listenPort",
                &port.to_string(),
                "--metricsPort",
                "0",
            ])
            .arg("--kvConfigPath")
            .arg(dir.join("kv.json"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

fn start_broker(store: &Path, port: u16, namesrv_port: u16) -> Proc {
    let conf = store.with_extension("conf");
    std::fs::write(
        &conf,
        format!(
            "brokerName=broker-a\nbindAddress=127.0.0.1\nbrokerIP1=127.0.0.1\nlistenPort={port}\n\
             namesrvAddr=127.0.0.1:{namesrv_port}\nstorePathRootDir={}\nmappedFileSizeCommitLog=8388608\n\
             metricsPort=0\nflushConsumerOffsetInterval=200\n\
             messageDelayLevel=1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 2h\n",
            store.display()
        ),
    )
    .unwrap();
    Proc(
        Command::new(env!("CARGO_BIN_EXE_mqbroker"))
            .args(["-c", conf.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    )
}

/// Graceful stop: SIGTERM, then wait for the exit.
fn sigterm(p: &mut Proc) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(p.0.id() as i32, libc::SIGTERM) };
    let status = p.0.wait().unwrap();
    assert!(status.success(), "broker exited with {status} on SIGTERM");
}

fn sigkill(p: &mut Proc) {
    p.0.kill().unwrap(); // SIGKILL
    p.0.wait().unwrap();
}

async fn wait_until_serving(client: &RemotingClient, addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let probe = RemotingCommand::bare_request(RequestCode::GET_ALL_TOPIC_CONFIG);
        if client
            .invoke_ok(addr, probe, Duration::from_secs(1))
            .await
            .is_ok()
        {
            return;
        }
        assert!(Instant::now() < deadline, "{addr} did not come up");
        client.close(addr);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn send_request(i: usize, queue: i32) -> RemotingCommand {
    let key = format!("key-{i}");
    let header: SendMessageRequestHeaderV2 = SendMessageRequestHeader {
        producer_group: "E2EProducer".into(),
        topic: TOPIC.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: QUEUES,
        queue_id: queue,
        born_timestamp: 0,
        properties: Some(encode_properties([("KEYS", key.as_str()), ("TAGS", "T")])),
        ..Default::default()
    }
    .into();
    RemotingCommand::request(RequestCode::SEND_MESSAGE_V2, &header)
        .with_body(format!("body-{i}").into_bytes())
}

fn pull_request(queue: i32, offset: i64) -> RemotingCommand {
    RemotingCommand::request(
        RequestCode::PULL_MESSAGE,
        &PullMessageRequestHeader {
            consumer_group: GROUP.into(),
            topic: TOPIC.into(),
            queue_id: queue,
            queue_offset: offset,
            max_msg_nums: 64,
            sys_flag: 0x4,
            subscription: Some("*".into()),
            expression_type: Some("TAG".into()),
            ..Default::default()
        },
    )
}

fn commit_request(queue: i32, offset: i64) -> RemotingCommand {
    RemotingCommand::request(
        RequestCode::UPDATE_CONSUMER_OFFSET,
        &UpdateConsumerOffsetRequestHeader {
            consumer_group: GROUP.into(),
            topic: TOPIC.into(),
            queue_id: queue,
            commit_offset: offset,
            broker_name: None,
        },
    )
}

fn query_offset_request(queue: i32) -> RemotingCommand {
    RemotingCommand::request(
        RequestCode::QUERY_CONSUMER_OFFSET,
        &QueryConsumerOffsetRequestHeader {
            consumer_group: GROUP.into(),
            topic: TOPIC.into(),
            queue_id: queue,
            set_zero_if_not_found: Some(true),
            broker_name: None,
        },
    )
}

/// Waits until each queue's max offset reaches `needed[queue]`.
async fn wait_for_max_offsets(client: &RemotingClient, addr: &str, needed: &BTreeMap<i32, i64>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    for (queue, expected) in needed {
        loop {
            let request = RemotingCommand::request(
                RequestCode::GET_MAX_OFFSET,
                &GetMaxOffsetRequestHeader {
                    topic: TOPIC.into(),
                    queue_id: *queue,
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
            if h.offset >= *expected {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "queue {queue} stuck at {} < {expected}",
                h.offset
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Consumed message: its key index and queue offset.
type Consumed = BTreeMap<i32, Vec<(i64, usize)>>;

/// Pulls every queue from `from[q]` to its end, or until about `per_queue_limit` messages
/// per queue; checks every record and returns where each queue stopped.
async fn consume(
    client: &RemotingClient,
    addr: &str,
    from: &BTreeMap<i32, i64>,
    per_queue_limit: Option<usize>,
    consumed: &mut Consumed,
) -> BTreeMap<i32, i64> {
    let mut next = from.clone();
    for queue in 0..QUEUES {
        let mut taken = 0;
        while per_queue_limit.is_none_or(|limit| taken < limit) {
            let offset = next[&queue];
            let resp = client
                .invoke(addr, pull_request(queue, offset), T)
                .await
                .unwrap();
            if resp.code == ResponseCode::PullNotFound.as_i32() {
                break;
            }
            assert_eq!(
                resp.code, 0,
                "queue {queue} offset {offset}: {:?}",
                resp.remark
            );
            let mut pos = 0;
            while pos < resp.body.len() {
                let RecordEntry::Message(m) =
                    decode_record(&resp.body[pos..], true).expect("intact record")
                else {
                    panic!("blank record served");
                };
                assert_eq!(m.queue_id, queue);
                let key = get_property(m.properties, "KEYS").expect("key");
                let i: usize = key.trim_start_matches("key-").parse().unwrap();
                assert_eq!(
                    m.body,
                    format!("body-{i}").as_bytes(),
                    "body of {key} corrupted"
                );
                consumed.entry(queue).or_default().push((m.queue_offset, i));
                pos += m.total_size as usize;
                taken += 1;
            }
            let h: PullMessageResponseHeader = resp.decode_header().unwrap();
            next.insert(queue, h.next_begin_offset);
        }
    }
    next
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_thousand_messages_survive_sigkill_and_consumers_resume() {
    let total: usize = std::env::var("E2E_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().unwrap();
    let (ns_port, broker_port) = (free_port(), free_port());
    let _namesrv = start_namesrv(dir.path(), ns_port);
    let store = dir.path().join("store");
    let mut broker = start_broker(&store, broker_port, ns_port);
    let addr = format!("127.0.0.1:{broker_port}");
    let client = RemotingClient::new(ClientConfig::default());
    wait_until_serving(&client, &addr).await;
    let create = RemotingCommand::request(
        RequestCode::UPDATE_AND_CREATE_TOPIC,
        &CreateTopicRequestHeader {
            topic: TOPIC.into(),
            default_topic: "TBW102".into(),
            read_queue_nums: QUEUES,
            write_queue_nums: QUEUES,
            perm: 6,
            topic_filter_type: "SINGLE_TAG".into(),
            ..Default::default()
        },
    );
    client.invoke_ok(&addr, create, T).await.unwrap();

    // The route reaches the name server process.
    let ns = format!("127.0.0.1:{ns_port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = client
            .invoke(
                &ns,
                RemotingCommand::request(
                    RequestCode::GET_ROUTEINFO_BY_TOPIC,
                    &GetRouteInfoRequestHeader {
                        topic: TOPIC.into(),
                        accept_standard_json_only: None,
                    },
                ),
                T,
            )
            .await;
        if r.is_ok_and(|r| r.code == 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "route never reached the name server"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Produce with 32 concurrent senders; SIGKILL the broker halfway and restart it.
    let acked: Arc<Mutex<HashMap<usize, (i32, i64)>>> = Arc::default();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut producers = Vec::new();
    for _ in 0..32 {
        let (client, addr, acked, next) =
            (client.clone(), addr.clone(), acked.clone(), next.clone());
        producers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return;
                }
                let queue = (i % QUEUES as usize) as i32;
                // A send that fails (broker down) is not retried: its key must then appear at
                // most once, and an acknowledged one exactly once.
                if let Ok(resp) = client.invoke(&addr, send_request(i, queue), T).await
                    && resp.code == 0
                {
                    let h: SendMessageResponseHeader = resp.decode_header().unwrap();
                    acked.lock().insert(i, (h.queue_id, h.queue_offset));
                } else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }
    while next.load(Ordering::Relaxed) < total / 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    sigkill(&mut broker);
    broker = start_broker(&store, broker_port, ns_port);
    for p in producers {
        p.await.unwrap();
    }
    let produce_time = started.elapsed();
    let acked = Arc::try_unwrap(acked).unwrap().into_inner();
    assert!(
        acked.len() >= total * 9 / 10,
        "only {} of {total} sends acknowledged",
        acked.len()
    );
    eprintln!(
        "produced {total} ({} acknowledged) in {produce_time:?} with one SIGKILL",
        acked.len()
    );

    // Messages become readable once dispatched; wait until every acknowledged one is.
    let mut needed: BTreeMap<i32, i64> = BTreeMap::new();
    for (queue, offset) in acked.values() {
        let n = needed.entry(*queue).or_default();
        *n = (*n).max(offset + 1);
    }
    wait_for_max_offsets(&client, &addr, &needed).await;

    // Consume about half, commit, let the broker persist the offsets, then SIGKILL it.
    let zero: BTreeMap<i32, i64> = (0..QUEUES).map(|q| (q, 0)).collect();
    let mut consumed = Consumed::new();
    let half = consume(
        &client,
        &addr,
        &zero,
        Some(total / 2 / QUEUES as usize),
        &mut consumed,
    )
    .await;
    for (q, o) in &half {
        client
            .invoke_ok(&addr, commit_request(*q, *o), T)
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    sigkill(&mut broker);
    let _broker = start_broker(&store, broker_port, ns_port);
    wait_until_serving(&client, &addr).await;
    wait_for_max_offsets(&client, &addr, &needed).await;

    // The consumer resumes from exactly the committed offsets.
    let mut resumed = BTreeMap::new();
    for q in 0..QUEUES {
        let h: OffsetResponseHeader = client
            .invoke_ok(&addr, query_offset_request(q), T)
            .await
            .unwrap()
            .decode_header()
            .unwrap();
        assert_eq!(
            h.offset, half[&q],
            "queue {q}: committed offset lost in the crash"
        );
        resumed.insert(q, h.offset);
    }
    consume(&client, &addr, &resumed, None, &mut consumed).await;

    // Every queue: dense offsets from 0; every acknowledged key exactly once at its offset.
    let mut seen: HashMap<usize, (i32, i64)> = HashMap::new();
    for (queue, msgs) in &consumed {
        for (expected_offset, (offset, i)) in msgs.iter().enumerate() {
            assert_eq!(
                *offset, expected_offset as i64,
                "queue {queue}: offsets must be dense and ordered"
            );
            assert!(
                seen.insert(*i, (*queue, *offset)).is_none(),
                "key-{i} consumed twice"
            );
        }
    }
    for (i, at) in &acked {
        assert_eq!(seen.get(i), Some(at), "acknowledged key-{i} lost or moved");
    }
    eprintln!(
        "consumed {} messages; {} acknowledged all present",
        seen.len(),
        acked.len()
    );
}

fn send_with(topic: &str, queue: i32, body: &str, props: &[(&str, &str)]) -> RemotingCommand {
    let header: SendMessageRequestHeaderV2 = SendMessageRequestHeader {
        producer_group: "E2EProducer".into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 1,
        queue_id: queue,
        properties: Some(encode_properties(props.iter().copied())),
        ..Default::default()
    }
    .into();
    RemotingCommand::request(RequestCode::SEND_MESSAGE_V2, &header)
        .with_body(body.as_bytes().to_vec())
}

/// Pulls one message of `topic`/`queue` at `offset`, polling until `within` passes.
async fn pull_at(
    client: &RemotingClient,
    addr: &str,
    topic: &str,
    offset: i64,
    within: Duration,
) -> Option<(Vec<u8>, String, i32, i64)> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        let request = RemotingCommand::request(
            RequestCode::PULL_MESSAGE,
            &PullMessageRequestHeader {
                consumer_group: GROUP.into(),
                topic: topic.into(),
                queue_id: 0,
                queue_offset: offset,
                max_msg_nums: 1,
                sys_flag: 0x2 | 0x4,
                suspend_timeout_millis: 500,
                subscription: Some("*".into()),
                expression_type: Some("TAG".into()),
                ..Default::default()
            },
        );
        if let Ok(resp) = client.invoke(addr, request, T).await
            && resp.code == 0
            && let Ok(RecordEntry::Message(m)) = decode_record(&resp.body, true)
        {
            return Some((
                m.body.to_vec(),
                m.properties.to_string(),
                m.reconsume_times,
                m.physical_offset,
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_retry_dlq_and_queries_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let (ns_port, broker_port) = (free_port(), free_port());
    let _namesrv = start_namesrv(dir.path(), ns_port);
    let store = dir.path().join("store");
    let mut broker = start_broker(&store, broker_port, ns_port);
    let addr = format!("127.0.0.1:{broker_port}");
    let client = RemotingClient::new(ClientConfig::default());
    wait_until_serving(&client, &addr).await;

    // Delay: invisible until due, delivered after a graceful restart in between.
    let sent_at = Instant::now();
    client
        .invoke_ok(
            &addr,
            send_with("DelayTopic", 0, "delayed", &[("DELAY", "3")]),
            T,
        )
        .await
        .unwrap();
    sigterm(&mut broker);
    broker = start_broker(&store, broker_port, ns_port);
    wait_until_serving(&client, &addr).await;
    let (body, props, _, _) = pull_at(&client, &addr, "DelayTopic", 0, Duration::from_secs(10))
        .await
        .expect("delayed message delivered after the restart");
    assert!(sent_at.elapsed() >= Duration::from_millis(900));
    assert_eq!(body, b"delayed");
    assert_eq!(get_property(&props, "DELAY"), None);

    // Query by key through the IndexFile.
    let resp = client
        .invoke_ok(
            &addr,
            send_with("QueryTopic", 0, "findme", &[("KEYS", "order-1 order-2")]),
            T,
        )
        .await
        .unwrap();
    let msg_id = resp
        .decode_header::<SendMessageResponseHeader>()
        .unwrap()
        .msg_id;
    let query = |key: &str| {
        RemotingCommand::request(
            RequestCode::QUERY_MESSAGE,
            &QueryMessageRequestHeader {
                topic: "QueryTopic".into(),
                key: key.into(),
                max_num: 16,
                begin_timestamp: 0,
                end_timestamp: i64::MAX,
            },
        )
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let found = loop {
        let r = client.invoke(&addr, query("order-2"), T).await.unwrap();
        if r.code == 0 {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "query by key never found the message"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let RecordEntry::Message(m) = decode_record(&found.body, true).unwrap() else {
        panic!("blank")
    };
    assert_eq!(m.body, b"findme");
    let (_, physical) = rocketmq_common::message::decode_offset_message_id(&msg_id).unwrap();
    assert_eq!(m.physical_offset, physical);
    assert_eq!(
        client
            .invoke(&addr, query("order-3"), T)
            .await
            .unwrap()
            .code,
        ResponseCode::QueryNotFound.as_i32()
    );

    // Retry then DLQ: two send-backs go to %RETRY%, the third (past maxReconsumeTimes 2) to %DLQ%.
    client
        .invoke_ok(&addr, send_with("RetryTopic", 0, "poison", &[]), T)
        .await
        .unwrap();
    let (_, _, _, mut physical) = pull_at(&client, &addr, "RetryTopic", 0, Duration::from_secs(10))
        .await
        .unwrap();
    for attempt in 0..3 {
        let back = RemotingCommand::request(
            RequestCode::CONSUMER_SEND_MSG_BACK,
            &ConsumerSendMsgBackRequestHeader {
                offset: physical,
                group: GROUP.into(),
                delay_level: 0,
                origin_msg_id: None,
                origin_topic: Some("RetryTopic".into()),
                unit_mode: None,
                max_reconsume_times: Some(2),
                broker_name: None,
            },
        );
        client.invoke_ok(&addr, back, T).await.unwrap();
        if attempt < 2 {
            let (body, props, times, at) = pull_at(
                &client,
                &addr,
                &format!("%RETRY%{GROUP}"),
                attempt,
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|| panic!("retry {attempt} not delivered"));
            assert_eq!(
                (body.as_slice(), times),
                (b"poison".as_slice(), attempt as i32 + 1)
            );
            assert_eq!(get_property(&props, "RETRY_TOPIC"), Some("RetryTopic"));
            physical = at;
        }
    }
    let (body, props, _, _) = pull_at(
        &client,
        &addr,
        &format!("%DLQ%{GROUP}"),
        0,
        Duration::from_secs(10),
    )
    .await
    .expect("dead-lettered");
    assert_eq!(body, b"poison");
    assert_eq!(get_property(&props, "DLQ_ORIGIN_TOPIC"), Some("RetryTopic"));
    sigterm(&mut broker);
}

/// `--brokerIP1File`: the broker waits for the file an operator writes once the address
/// clients reach it at is known, then announces that address (`-p` prints the config it
/// would run with).
#[test]
fn the_announced_address_is_waited_for_in_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("demo-broker-0-1");
    let child = Command::new(env!("CARGO_BIN_EXE_mqbroker"))
        .args([
            "--brokerIP1File",
            file.to_str().unwrap(),
            "--brokerIP2",
            "10.1.2.3",
            "-p",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mqbroker");
    std::thread::sleep(Duration::from_millis(500));
    let mut child = Proc(child);
    assert!(
        child.0.try_wait().unwrap().is_none(),
        "it waits while the file is missing"
    );
    std::fs::write(&file, "203.0.113.9\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still waiting after the file was written"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    let mut printed = String::new();
    std::io::Read::read_to_string(&mut child.0.stdout.take().unwrap(), &mut printed).unwrap();
    assert!(printed.contains("broker_ip1: 203.0.113.9"), "{printed}");
    assert!(printed.contains("broker_ip2: 10.1.2.3"), "{printed}");
}
