//! Compatibility proof at the application level: the mxsm/rocketmq-rust project's high-level
//! client (its `DefaultMQProducer` and `DefaultMQPushConsumer`, a client we did not write)
//! produces to and consumes from our name server and broker, started in this process.
//!
//! What is checked: every synchronous send is `SEND_OK` with a message id and queue offset,
//! for a topic created through `UPDATE_AND_CREATE_TOPIC` and for one auto-created from
//! `TBW102`; a push consumer group receives every message exactly once (by key) with its body
//! and tag intact (including bodies large enough for the producer to compress); a group
//! subscribed to one tag receives exactly that tag's messages; and the push consumer's
//! offset commits are visible through our broker's `QUERY_CONSUMER_OFFSET`. Also: retries,
//! the lite pull consumer, SQL92, transactions with check-back, timer messages, orderly
//! consumers (two members, per-queue order), broadcasting consumers, delay levels, 4 MiB
//! bodies, and every acknowledged message surviving a SIGKILL of a broker process under
//! SYNC_FLUSH.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rocketmq_broker::{BrokerConfig, BrokerServer};
use rocketmq_client_rust::{
    ClientConfig as TpClientConfig, ClientRuntime, ClientRuntimeConfig, ConsumeConcurrentlyContext,
    ConsumeConcurrentlyStatus, DefaultMQProducer, DefaultMQPushConsumer, MQPushConsumer,
    MessageListenerConcurrently, TelemetryHandle,
};
use rocketmq_common::config::Properties;
use rocketmq_common::protocol::headers::broker::{
    CreateTopicRequestHeader, GetMaxOffsetRequestHeader, OffsetResponseHeader,
    QueryConsumerOffsetRequestHeader,
};
use rocketmq_common::protocol::headers::namesrv::GetRouteInfoRequestHeader;
use rocketmq_common::protocol::{RemotingCommand, RequestCode};
use rocketmq_common::remoting::{ClientConfig, RemotingClient};
use rocketmq_model::common::consumer::consume_from_where::ConsumeFromWhere;
use rocketmq_model::common::message::message_ext::MessageExt;
use rocketmq_model::common::message::message_single::Message;
use rocketmq_model::result::SendStatus;
use rocketmq_namesrv::{NamesrvConfig, NamesrvServer};
use rocketmq_runtime::{BlockingPoolPolicy, RuntimeContext};
use rocketmq_testkit::free_port;

const T: Duration = Duration::from_secs(5);
/// Messages per scenario.
const N: usize = 1000;
/// Every this many messages, one body is large enough (> 4 KiB) for the producer to compress.
const BIG_EVERY: usize = 97;

/// Our name server and broker, in this process, on loopback.
struct Cluster {
    namesrv: NamesrvServer,
    broker: BrokerServer,
    ns: String,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Cluster {
    async fn start() -> Self {
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
        let props = Properties::parse(&format!(
            "listenPort={}\nbrokerIP1=127.0.0.1\nbindAddress=127.0.0.1\nnamesrvAddr={ns}\n\
             storePathRootDir={}\nmetricsPort=0\ntransactionCheckInterval=500\ntransactionTimeOut=1000\n",
            free_port(),
            dir.path().join("store").display()
        ));
        let broker = BrokerServer::start(BrokerConfig::from_properties(&props).unwrap())
            .await
            .unwrap();
        let addr = broker.broker_addr().to_string();
        Self {
            namesrv,
            broker,
            ns,
            addr,
            _dir: dir,
        }
    }

    async fn shutdown(self) {
        self.broker.shutdown().await;
        self.namesrv.shutdown().await;
    }
}

/// Polls `probe` until it returns `Some`, failing with `what` after `limit`.
async fn poll<F, Fut, R>(what: &str, limit: Duration, mut probe: F) -> R
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<R>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(r) = probe().await {
            return r;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Creates `topic` with 4 queues through our broker's UPDATE_AND_CREATE_TOPIC and waits until
/// the name server serves its route.
async fn create_topic(ours: &RemotingClient, cluster: &Cluster, topic: &str) {
    create_topic_at(ours, &cluster.addr, &cluster.ns, topic).await;
}

/// [`create_topic`] on the broker at `addr`, waiting for the route at name server `ns`.
async fn create_topic_at(ours: &RemotingClient, addr: &str, ns: &str, topic: &str) {
    let create = RemotingCommand::request(
        RequestCode::UPDATE_AND_CREATE_TOPIC,
        &CreateTopicRequestHeader {
            topic: topic.into(),
            default_topic: "TBW102".into(),
            read_queue_nums: 4,
            write_queue_nums: 4,
            perm: 6,
            topic_filter_type: "SINGLE_TAG".into(),
            order: false,
            ..Default::default()
        },
    );
    ours.invoke_ok(addr, create, T).await.unwrap();
    poll("the route of the created topic", T, move || async move {
        let request = RemotingCommand::request(
            RequestCode::GET_ROUTEINFO_BY_TOPIC,
            &GetRouteInfoRequestHeader {
                topic: topic.into(),
                accept_standard_json_only: None,
            },
        );
        let response = ours.invoke(ns, request, T).await.unwrap();
        (response.code == 0).then_some(())
    })
    .await;
}

/// One message as the test produced it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Sent {
    tag: String,
    body: Vec<u8>,
}

fn tag_of(i: usize) -> &'static str {
    ["TagA", "TagB", "TagC"][i % 3]
}

fn body_of(i: usize) -> Vec<u8> {
    let mut body = format!("message {i}: ").into_bytes();
    // Every byte value appears, so a body that went through a lossy text conversion fails.
    body.extend((0..=255u8).cycle().skip(i % 256).take(i % 300));
    if i.is_multiple_of(BIG_EVERY) {
        // Larger than the producer's default compression threshold (4 KiB).
        body.extend(std::iter::repeat_n(b'z', 10_000 + i));
    }
    body
}

/// A client runtime of the third-party library on the test's own Tokio runtime.
struct TpRuntime {
    context: RuntimeContext,
    client: Arc<ClientRuntime>,
}

impl TpRuntime {
    fn new(scope: &'static str) -> Self {
        // The library runs listeners on a bounded blocking lane and, unlike Java's
        // ConsumeMessageConcurrentlyService (which re-submits a rejected consume request
        // later), treats a full lane as a failed consumption and sends the message back to
        // the retry topic. Its default lanes scale with the host's cores (queue depth 8 on
        // two cores), so a 32-message pull already overflows them; give the lanes room.
        let lanes = BlockingPoolPolicy {
            max_queue_depth: 4096,
            ..BlockingPoolPolicy::default()
        };
        let context = RuntimeContext::try_from_current_with_blocking_policy(
            "compat-producer-consumer",
            lanes,
        )
        .unwrap_or_else(|e| panic!("runtime context: {e:?}"));
        let client = ClientRuntime::try_new(
            context.service_context(scope),
            ClientRuntimeConfig::default(),
            TelemetryHandle::noop(),
        )
        .unwrap_or_else(|e| panic!("client runtime: {e:?}"));
        Self { context, client }
    }

    /// Stops the library's pooled connections and every task it spawned.
    async fn shutdown(self) {
        let report = self.client.shutdown().await;
        assert!(report.is_healthy(), "{}", report.to_json());
        let report = self.context.shutdown_tasks(Duration::from_secs(5)).await;
        assert!(report.is_healthy(), "{}", report.to_json());
    }
}

/// The library's client configuration, always with our name server set explicitly (without
/// it the library would look a name server address up over HTTP).
fn tp_config(ns: &str, instance: &str) -> TpClientConfig {
    TpClientConfig::builder()
        .namesrv_addr(ns.to_string())
        .instance_name(instance.to_string())
        .persist_consumer_offset_interval(1_000)
        .build()
        .unwrap_or_else(|e| panic!("client config: {e:?}"))
}

/// Sends N messages synchronously with the library's producer; returns them by key.
async fn produce(rt: &TpRuntime, ns: &str, topic: &str) -> BTreeMap<String, Sent> {
    let mut producer = DefaultMQProducer::builder(rt.client.clone())
        .client_config(tp_config(ns, "compat-producer"))
        .producer_group(format!("PG_{topic}"))
        .build();
    producer
        .start()
        .await
        .unwrap_or_else(|e| panic!("producer start: {e:?}"));
    let mut sent = BTreeMap::new();
    let mut offsets: HashMap<i32, Vec<u64>> = HashMap::new();
    for i in 0..N {
        let key = format!("key-{i}");
        let message = Message::builder()
            .topic(topic)
            .tags(tag_of(i))
            .key(key.clone())
            .body(body_of(i))
            .build()
            .unwrap_or_else(|e| panic!("message {i}: {e:?}"));
        let result = producer
            .send(message)
            .await
            .unwrap_or_else(|e| panic!("send {i} to {topic}: {e:?}"))
            .unwrap_or_else(|| panic!("send {i}: a synchronous send returned no result"));
        assert_eq!(
            result.send_status,
            SendStatus::SendOk,
            "send {i}: {result:?}"
        );
        let msg_id = result.msg_id.as_ref().map(|s| s.as_str()).unwrap_or("");
        assert_eq!(msg_id.len(), 32, "send {i}: msg id {msg_id:?}");
        let offset_msg_id = result.offset_msg_id.as_deref().unwrap_or("");
        assert_eq!(offset_msg_id.len(), 32, "send {i}: offset msg id");
        let queue = result
            .message_queue
            .as_ref()
            .unwrap_or_else(|| panic!("send {i}: no message queue"));
        assert_eq!(queue.topic_str(), topic);
        offsets
            .entry(queue.queue_id())
            .or_default()
            .push(result.queue_offset);
        sent.insert(
            key,
            Sent {
                tag: tag_of(i).into(),
                body: body_of(i),
            },
        );
    }
    // The library spreads sends over the queues round-robin; within each queue the broker's
    // offsets are dense and start at 0.
    assert_eq!(offsets.len(), 4, "queues used: {:?}", offsets.keys());
    for (queue, got) in &offsets {
        let expected: Vec<u64> = (0..got.len() as u64).collect();
        assert_eq!(got, &expected, "queue {queue} offsets");
    }
    producer.shutdown().await;
    sent
}

/// One key's deliveries to a listener: the tag and body seen, and how often it arrived.
type Delivery = (String, Vec<u8>, usize);

/// Everything a push consumer's listener received.
#[derive(Default)]
struct Received {
    /// key → its deliveries
    by_key: Mutex<HashMap<String, Delivery>>,
    /// Keys whose first delivery the listener answers with RECONSUME_LATER.
    fail_once: HashSet<String>,
    /// Keys whose delivery was answered with RECONSUME_LATER.
    rejected: Mutex<HashSet<String>>,
    /// key → (topic, reconsume times) of its accepted delivery
    accepted: Mutex<HashMap<String, (String, i32)>>,
}

struct Recorder(Arc<Received>);

impl MessageListenerConcurrently for Recorder {
    fn consume_message(
        &self,
        msgs: &[&MessageExt],
        _context: &ConsumeConcurrentlyContext,
    ) -> rocketmq_client_rust::ClientResult<ConsumeConcurrentlyStatus> {
        let key_of = |msg: &MessageExt| {
            msg.message_inner()
                .keys()
                .and_then(|k| k.into_iter().next())
                .unwrap_or_default()
        };
        {
            let mut rejected = self.0.rejected.lock().unwrap();
            let fail: Vec<String> = msgs
                .iter()
                .map(|m| key_of(m))
                .filter(|k| self.0.fail_once.contains(k) && !rejected.contains(k))
                .collect();
            if !fail.is_empty() {
                rejected.extend(fail);
                return Ok(ConsumeConcurrentlyStatus::ReconsumeLater);
            }
        }
        let mut by_key = self.0.by_key.lock().unwrap();
        for msg in msgs {
            let key = key_of(msg);
            self.0.accepted.lock().unwrap().insert(
                key.clone(),
                (msg.topic().to_string(), msg.reconsume_times()),
            );
            let tag = msg.get_tags().map(|t| t.to_string()).unwrap_or_default();
            let body = msg.body().map(|b| b.to_vec()).unwrap_or_default();
            by_key.entry(key).or_insert((tag, body, 0)).2 += 1;
        }
        Ok(ConsumeConcurrentlyStatus::ConsumeSuccess)
    }
}

/// Starts a push consumer of `group` on `topic` with `expression`, consuming from `from`
/// (the library's default, CONSUME_FROM_LAST_OFFSET, when `None`).
async fn push_consumer(
    rt: &TpRuntime,
    ns: &str,
    group: &str,
    topic: &str,
    expression: &str,
    from: Option<ConsumeFromWhere>,
) -> (DefaultMQPushConsumer, Arc<Received>) {
    push_consumer_with(rt, ns, group, topic, expression, from, Received::default()).await
}

/// [`push_consumer`] with a listener state prepared by the caller.
async fn push_consumer_with(
    rt: &TpRuntime,
    ns: &str,
    group: &str,
    topic: &str,
    expression: &str,
    from: Option<ConsumeFromWhere>,
    received: Received,
) -> (DefaultMQPushConsumer, Arc<Received>) {
    let received = Arc::new(received);
    let mut builder = DefaultMQPushConsumer::builder(rt.client.clone())
        .client_config(tp_config(ns, &format!("compat-{group}")))
        .consumer_group(group.to_string());
    if let Some(from) = from {
        builder = builder.consume_from_where(from);
    }
    let mut consumer = builder.build();
    consumer
        .subscribe(topic.to_string(), expression.to_string())
        .await
        .unwrap_or_else(|e| panic!("subscribe {group}: {e:?}"));
    consumer.register_message_listener_concurrently(Recorder(received.clone()));
    consumer
        .start()
        .await
        .unwrap_or_else(|e| panic!("start {group}: {e:?}"));
    (consumer, received)
}

/// Waits until `received` holds exactly the keys of `expected`, then checks each message.
async fn assert_received(group: &str, received: &Received, expected: &BTreeMap<String, Sent>) {
    poll(
        &format!("{group} to receive {} messages", expected.len()),
        Duration::from_secs(60),
        move || async move {
            (received.by_key.lock().unwrap().len() >= expected.len()).then_some(())
        },
    )
    .await;
    let by_key = received.by_key.lock().unwrap();
    let unexpected: Vec<&String> = by_key
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    assert!(
        unexpected.is_empty(),
        "{group}: unexpected keys {unexpected:?}"
    );
    for (key, sent) in expected {
        let (tag, body, count) = by_key
            .get(key)
            .unwrap_or_else(|| panic!("{group}: {key} lost"));
        assert_eq!(*count, 1, "{group}: {key} delivered {count} times");
        assert_eq!(tag, &sent.tag, "{group}: {key} tag");
        assert!(body == &sent.body, "{group}: {key} body differs");
    }
}

/// Queue id → max offset, from our broker.
async fn max_offsets(ours: &RemotingClient, addr: &str, topic: &str) -> BTreeMap<i32, i64> {
    let mut out = BTreeMap::new();
    for queue_id in 0..4 {
        let request = RemotingCommand::request(
            RequestCode::GET_MAX_OFFSET,
            &GetMaxOffsetRequestHeader {
                topic: topic.into(),
                queue_id,
                committed: None,
                broker_name: None,
            },
        );
        let h: OffsetResponseHeader = ours
            .invoke_ok(addr, request, T)
            .await
            .unwrap()
            .decode_header()
            .unwrap();
        out.insert(queue_id, h.offset);
    }
    out
}

/// Queue id → committed offset of `group`, from our broker; `None` for a queue without one.
async fn committed_offsets(
    ours: &RemotingClient,
    addr: &str,
    group: &str,
    topic: &str,
) -> BTreeMap<i32, Option<i64>> {
    let mut out = BTreeMap::new();
    for queue_id in 0..4 {
        let request = RemotingCommand::request(
            RequestCode::QUERY_CONSUMER_OFFSET,
            &QueryConsumerOffsetRequestHeader {
                consumer_group: group.into(),
                topic: topic.into(),
                queue_id,
                set_zero_if_not_found: Some(false),
                broker_name: None,
            },
        );
        let response = ours.invoke(addr, request, T).await.unwrap();
        let offset = (response.code == 0).then(|| {
            response
                .decode_header::<OffsetResponseHeader>()
                .unwrap()
                .offset
        });
        out.insert(queue_id, offset);
    }
    out
}

/// Produce N messages with the library's producer, consume them with three push-consumer
/// groups (all tags from the first offset, one tag, all tags with the library's default
/// starting point) and check the committed offsets on our broker.
async fn produce_and_consume(cluster: &Cluster, topic: &str) {
    // RUST_LOG=debug shows what the library and our servers do.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    let started = Instant::now();
    let ours = RemotingClient::new(ClientConfig::default());
    let rt = TpRuntime::new("client");

    let sent = produce(&rt, &cluster.ns, topic).await;
    assert_eq!(sent.len(), N);
    // Acknowledged messages become readable once dispatched to their ConsumeQueue, a moment
    // after the send returns: wait for all of them, never more.
    let ours_ref = &ours;
    let max = poll("every sent message to be readable", T, move || async move {
        let max = max_offsets(ours_ref, &cluster.addr, topic).await;
        (max.values().sum::<i64>() >= N as i64).then_some(max)
    })
    .await;
    assert_eq!(max.values().sum::<i64>(), N as i64, "max offsets {max:?}");
    eprintln!("{topic}: produced {N} in {:?}", started.elapsed());

    let ns = &cluster.ns;
    let first = Some(ConsumeFromWhere::ConsumeFromFirstOffset);
    let all_group = format!("CG_ALL_{topic}");
    let (mut all, all_received) = push_consumer(&rt, ns, &all_group, topic, "*", first).await;
    let tag_group = format!("CG_TAGB_{topic}");
    let (mut tag_b, tag_received) = push_consumer(&rt, ns, &tag_group, topic, "TagB", first).await;
    // A new group starting from the last offset still gets every message while the queues
    // start at offset 0 and their messages are in memory: the broker answers its
    // QUERY_CONSUMER_OFFSET with 0, as Java's ConsumerManageProcessor does.
    let last_group = format!("CG_LAST_{topic}");
    let (mut last, last_received) = push_consumer(&rt, ns, &last_group, topic, "*", None).await;

    assert_received(&all_group, &all_received, &sent).await;
    eprintln!("{topic}: {all_group} done at {:?}", started.elapsed());
    assert_received(&last_group, &last_received, &sent).await;
    let only_b: BTreeMap<String, Sent> = sent
        .iter()
        .filter(|(_, s)| s.tag == "TagB")
        .map(|(k, s)| (k.clone(), s.clone()))
        .collect();
    assert_eq!(only_b.len(), N / 3);
    assert_received(&tag_group, &tag_received, &only_b).await;

    // Offsets are committed while the consumers run (every second here, after the client's
    // first 10 s), up to the end of every queue: for the tag group too, since filtered-out
    // messages count as consumed. As with Java's client, a queue whose tail is filtered out
    // only reaches its end once the last long poll (15 s) returns, so allow for that.
    let expected: BTreeMap<i32, Option<i64>> = max.iter().map(|(q, o)| (*q, Some(*o))).collect();
    for group in [&all_group, &tag_group, &last_group] {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let committed = committed_offsets(&ours, &cluster.addr, group, topic).await;
            if committed == expected {
                eprintln!("{group}: committed at {:?}", started.elapsed());
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{group}: committed offsets {committed:?}, expected {expected:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    eprintln!("{topic}: offsets committed at {:?}", started.elapsed());

    // Nothing is delivered twice, even after a while.
    assert_received(&all_group, &all_received, &sent).await;
    all.shutdown().await;
    tag_b.shutdown().await;
    last.shutdown().await;
    rt.shutdown().await;
    // Shutting down persists offsets once more: they must not move.
    for group in [&all_group, &tag_group, &last_group] {
        let committed = committed_offsets(&ours, &cluster.addr, group, topic).await;
        assert_eq!(committed, expected, "{group} after shutdown");
    }
    eprintln!("{topic}: done at {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn third_party_producer_and_push_consumer_on_a_created_topic() {
    let cluster = Cluster::start().await;
    let ours = RemotingClient::new(ClientConfig::default());
    create_topic(&ours, &cluster, "CompatCreated").await;
    produce_and_consume(&cluster, "CompatCreated").await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn third_party_producer_and_push_consumer_on_a_topic_auto_created_from_tbw102() {
    let cluster = Cluster::start().await;
    produce_and_consume(&cluster, "CompatAutoCreated").await;
    cluster.shutdown().await;
}

/// Messages the listener answers with RECONSUME_LATER come back once through the group's
/// retry topic: the library sends them back with CONSUMER_SEND_MSG_BACK, our broker
/// schedules them (delay level 3) and redelivers them with the original topic, key, tag and
/// body and a reconsume count of 1; every other message arrives once, unretried.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn third_party_push_consumer_retries_through_consumer_send_msg_back() {
    let cluster = Cluster::start().await;
    let ours = RemotingClient::new(ClientConfig::default());
    let topic = "CompatRetry";
    create_topic(&ours, &cluster, topic).await;
    let rt = TpRuntime::new("client");
    let sent = produce(&rt, &cluster.ns, topic).await;

    let fail_once: HashSet<String> = (0..N).step_by(50).map(|i| format!("key-{i}")).collect();
    let group = "CG_RETRY";
    let (mut consumer, received) = push_consumer_with(
        &rt,
        &cluster.ns,
        group,
        topic,
        "*",
        Some(ConsumeFromWhere::ConsumeFromFirstOffset),
        Received {
            fail_once: fail_once.clone(),
            ..Received::default()
        },
    )
    .await;
    assert_received(group, &received, &sent).await;
    assert_eq!(*received.rejected.lock().unwrap(), fail_once);
    let accepted = received.accepted.lock().unwrap().clone();
    for key in sent.keys() {
        let (got_topic, times) = &accepted[key];
        assert_eq!(got_topic, topic, "{key}: topic as the listener saw it");
        let expected_times = i32::from(fail_once.contains(key));
        assert_eq!(*times, expected_times, "{key}: reconsume times");
    }
    consumer.shutdown().await;
    rt.shutdown().await;
    cluster.shutdown().await;
}

/// The library's DefaultLitePullConsumer, subscribed to one tag, polls exactly that tag's
/// messages once each with bodies intact, and its auto-commit reaches our broker. As in
/// Java's DefaultLitePullConsumerImpl, the consume offset it commits is one past the last
/// message it was handed (ProcessQueue.removeMessage), so a queue whose tail is filtered out
/// stays committed just after its last matching message.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn third_party_lite_pull_consumer_polls_one_tag_and_auto_commits() {
    let cluster = Cluster::start().await;
    let ours = RemotingClient::new(ClientConfig::default());
    let topic = "CompatLitePull";
    create_topic(&ours, &cluster, topic).await;
    let rt = TpRuntime::new("client");
    let sent = produce(&rt, &cluster.ns, topic).await;
    let only_a: BTreeMap<String, Sent> = sent
        .iter()
        .filter(|(_, s)| s.tag == "TagA")
        .map(|(k, s)| (k.clone(), s.clone()))
        .collect();

    let group = "CG_LITE";
    let consumer = rocketmq_client_rust::DefaultLitePullConsumer::builder(rt.client.clone())
        .name_server_addr(cluster.ns.clone())
        .instance_name("compat-lite")
        .consumer_group(group)
        .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
        .auto_commit(true)
        .auto_commit_interval_millis(1_000)
        .build()
        .unwrap_or_else(|e| panic!("lite pull consumer: {e:?}"));
    consumer
        .subscribe_with_expression(topic, "TagA")
        .await
        .unwrap_or_else(|e| panic!("subscribe: {e:?}"));
    consumer
        .start()
        .await
        .unwrap_or_else(|e| panic!("start lite pull consumer: {e:?}"));

    // Poll until every TagA message is in and the auto-commit (which runs inside poll)
    // has reached every queue's end; keep polling to catch duplicates meanwhile.
    let received = Received::default();
    // queue id → one past the largest queue offset polled from it
    let mut expected: BTreeMap<i32, Option<i64>> = (0..4).map(|q| (q, None)).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        for msg in consumer.poll_with_timeout(200).await {
            let end = expected.entry(msg.queue_id()).or_default();
            *end = Some(end.unwrap_or(0).max(msg.queue_offset() + 1));
            let key = msg
                .message_inner()
                .keys()
                .and_then(|k| k.into_iter().next())
                .unwrap_or_default();
            let tag = msg.get_tags().map(|t| t.to_string()).unwrap_or_default();
            let body = msg.body().map(|b| b.to_vec()).unwrap_or_default();
            received
                .by_key
                .lock()
                .unwrap()
                .entry(key)
                .or_insert((tag, body, 0))
                .2 += 1;
        }
        let have = received.by_key.lock().unwrap().len();
        let committed = committed_offsets(&ours, &cluster.addr, group, topic).await;
        if have >= only_a.len() && committed == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{group}: {have} of {} received; committed {committed:?}, expected {expected:?}",
            only_a.len()
        );
    }
    assert_received(group, &received, &only_a).await;
    consumer.shutdown().await;
    rt.shutdown().await;
    cluster.shutdown().await;
}

/// An SQL92 subscription (`MessageSelector::by_sql`) of the library's push consumer gets
/// exactly the messages whose user properties satisfy it; a bad expression is refused with
/// SUBSCRIPTION_PARSE_FAILED and the parser's message, both by CHECK_CLIENT_CONFIG and by a
/// pull that carries the expression.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn third_party_sql92_subscription_receives_only_matching_messages() {
    let cluster = Cluster::start().await;
    let ours = RemotingClient::new(ClientConfig::default());
    let topic = "CompatSql";
    create_topic(&ours, &cluster, topic).await;
    let rt = TpRuntime::new("client");

    let mut producer = DefaultMQProducer::builder(rt.client.clone())
        .client_config(tp_config(&cluster.ns, "compat-sql-producer"))
        .producer_group("PG_SQL")
        .build();
    producer.start().await.unwrap();
    let colors = ["red", "green", "blue"];
    let mut expected = BTreeMap::new();
    for i in 0..300usize {
        let key = format!("sql-{i}");
        let color = colors[i % 3];
        let mut builder = Message::builder()
            .topic(topic)
            .tags(tag_of(i))
            .key(key.clone())
            .body(body_of(i))
            .raw_property("color", color)
            .unwrap();
        // Every fifth message has no price: a comparison with a missing property is unknown.
        if i % 5 != 0 {
            builder = builder.raw_property("price", i.to_string()).unwrap();
        }
        let result = producer
            .send(builder.build().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(result.send_status, SendStatus::SendOk);
        if color == "red" && i % 5 != 0 && (100..200).contains(&i) {
            expected.insert(
                key,
                Sent {
                    tag: tag_of(i).into(),
                    body: body_of(i),
                },
            );
        }
    }
    producer.shutdown().await;
    assert!(expected.len() > 20, "{} expected", expected.len());

    let group = "CG_SQL";
    let received = Arc::new(Received::default());
    let mut consumer = DefaultMQPushConsumer::builder(rt.client.clone())
        .client_config(tp_config(&cluster.ns, "compat-sql"))
        .consumer_group(group.to_string())
        .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
        .build();
    consumer
        .subscribe_with_selector(
            topic,
            Some(rocketmq_client_rust::MessageSelector::by_sql(
                "color = 'red' AND price BETWEEN 100 AND 199",
            )),
        )
        .await
        .unwrap_or_else(|e| panic!("subscribe: {e:?}"));
    consumer.register_message_listener_concurrently(Recorder(received.clone()));
    consumer.start().await.unwrap();
    assert_received(group, &received, &expected).await;
    // Nothing else arrives later either.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(received.by_key.lock().unwrap().len(), expected.len());
    consumer.shutdown().await;

    // A bad expression: CHECK_CLIENT_CONFIG and a pull carrying it are refused.
    let body = serde_json::json!({
        "clientId": "probe", "group": "CG_BAD",
        "subscriptionData": {"topic": topic, "subString": "color != 'red'", "expressionType": "SQL92",
                             "subVersion": 1, "tagsSet": [], "codeSet": []}
    });
    let check = RemotingCommand::bare_request(RequestCode::CHECK_CLIENT_CONFIG)
        .with_body(serde_json::to_vec(&body).unwrap());
    let response = ours.invoke(&cluster.addr, check, T).await.unwrap();
    assert_eq!(response.code, 23, "{:?}", response.remark);
    assert!(
        response
            .remark
            .as_deref()
            .unwrap_or_default()
            .contains("use <>"),
        "{:?}",
        response.remark
    );
    let pull = RemotingCommand::request(
        RequestCode::PULL_MESSAGE,
        &rocketmq_common::protocol::headers::broker::PullMessageRequestHeader {
            consumer_group: "CG_BAD".into(),
            topic: topic.into(),
            queue_id: 0,
            queue_offset: 0,
            max_msg_nums: 32,
            sys_flag: 0x4,
            commit_offset: 0,
            suspend_timeout_millis: 0,
            subscription: Some("price >".into()),
            sub_version: 1,
            expression_type: Some("SQL92".into()),
            ..Default::default()
        },
    );
    let response = ours.invoke(&cluster.addr, pull, T).await.unwrap();
    assert_eq!(response.code, 23, "{:?}", response.remark);
    rt.shutdown().await;
    cluster.shutdown().await;
}

/// Decides each transaction by its key: `commit-*` and `rollback-*` at once, `ask-*` only
/// when the broker checks back (then commit).
struct KeyedTransactions;

impl rocketmq_client_rust::TransactionListener for KeyedTransactions {
    fn execute_local_transaction(
        &self,
        msg: &dyn rocketmq_model::common::message::MessageTrait,
        _arg: Option<&(dyn std::any::Any + Send + Sync)>,
    ) -> rocketmq_client_rust::LocalTransactionState {
        let key = msg
            .property(&"KEYS".into())
            .map(|k| k.to_string())
            .unwrap_or_default();
        if key.starts_with("commit-") {
            rocketmq_client_rust::LocalTransactionState::CommitMessage
        } else if key.starts_with("rollback-") {
            rocketmq_client_rust::LocalTransactionState::RollbackMessage
        } else {
            rocketmq_client_rust::LocalTransactionState::Unknown
        }
    }

    fn check_local_transaction(
        &self,
        _msg: &MessageExt,
    ) -> rocketmq_client_rust::LocalTransactionState {
        rocketmq_client_rust::LocalTransactionState::CommitMessage
    }
}

/// The library's TransactionMQProducer (commit, rollback, unknown answered by the broker's
/// check-back) and its timer messages (`delay_secs`, `deliver_time_ms`): consumers see exactly
/// the committed transactions, and timer messages no earlier than asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn third_party_transactions_and_timer_messages() {
    let cluster = Cluster::start().await;
    let ours = RemotingClient::new(ClientConfig::default());
    let topic = "CompatTx";
    create_topic(&ours, &cluster, topic).await;
    let rt = TpRuntime::new("client");
    let mut producer = rocketmq_client_rust::TransactionMQProducer::builder(rt.client.clone())
        .client_config(tp_config(&cluster.ns, "compat-tx-producer"))
        .producer_group("PG_TX")
        .transaction_listener(KeyedTransactions)
        .build();
    producer.start().await.unwrap();
    let mut expected = BTreeMap::new();
    for (i, prefix) in ["commit", "rollback", "ask"]
        .iter()
        .cycle()
        .take(30)
        .enumerate()
    {
        let key = format!("{prefix}-{i}");
        let message = Message::builder()
            .topic(topic)
            .tags("TagTx")
            .key(key.clone())
            .body(body_of(i))
            .build()
            .unwrap();
        producer
            .send_message_in_transaction::<(), _>(message, None)
            .await
            .unwrap_or_else(|e| panic!("transactional send {i}: {e:?}"));
        if *prefix != "rollback" {
            expected.insert(
                key,
                Sent {
                    tag: "TagTx".into(),
                    body: body_of(i),
                },
            );
        }
    }
    // Timer messages through the plain producer.
    let mut plain = DefaultMQProducer::builder(rt.client.clone())
        .client_config(tp_config(&cluster.ns, "compat-timer-producer"))
        .producer_group("PG_TIMER")
        .build();
    plain.start().await.unwrap();
    let sent_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    for (i, builder) in [
        Message::builder().delay_secs(2),
        Message::builder().delay_millis(2500),
        Message::builder().deliver_time_ms(sent_at as u64 + 3000),
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("timer-{i}");
        let message = builder
            .topic(topic)
            .tags("TagTx")
            .key(key.clone())
            .body(body_of(100 + i))
            .build()
            .unwrap();
        let result = plain.send(message).await.unwrap().unwrap();
        assert_eq!(result.send_status, SendStatus::SendOk);
        expected.insert(
            key,
            Sent {
                tag: "TagTx".into(),
                body: body_of(100 + i),
            },
        );
    }
    plain.shutdown().await;

    let (mut consumer, received) = push_consumer(
        &rt,
        &cluster.ns,
        "CG_TX",
        topic,
        "*",
        Some(ConsumeFromWhere::ConsumeFromFirstOffset),
    )
    .await;
    assert_received("CG_TX", &received, &expected).await;
    // Rolled-back transactions never show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(received.by_key.lock().unwrap().len(), expected.len());
    // Timer messages were stored in the topic no earlier than asked.
    for (i, min_wait) in [2000i64, 2500, 3000].into_iter().enumerate() {
        let found = rocketmq_common::protocol::RemotingCommand::request(
            RequestCode::QUERY_MESSAGE,
            &rocketmq_common::protocol::headers::broker::QueryMessageRequestHeader {
                topic: topic.into(),
                key: format!("timer-{i}"),
                max_num: 32,
                begin_timestamp: 0,
                end_timestamp: i64::MAX,
            },
        );
        let response = ours.invoke_ok(&cluster.addr, found, T).await.unwrap();
        let records = rocketmq_testkit::records(&response.body);
        let visible = records
            .iter()
            .filter(|m| m.topic == topic)
            .map(|m| m.store_timestamp)
            .max()
            .expect("the delivered copy");
        assert!(
            visible - sent_at >= min_wait,
            "timer-{i} visible after {} ms, asked {min_wait}",
            visible - sent_at
        );
    }
    consumer.shutdown().await;
    producer.shutdown().await;
    rt.shutdown().await;
    cluster.shutdown().await;
}

/// (consumer instance, queue, key) in the order an orderly listener saw them.
type OrderlySeen = Arc<Mutex<Vec<(String, i32, String)>>>;

struct OrderlyRecorder {
    instance: String,
    seen: OrderlySeen,
}

impl rocketmq_client_rust::MessageListenerOrderly for OrderlyRecorder {
    fn consume_message(
        &self,
        msgs: &[&MessageExt],
        _context: &mut rocketmq_client_rust::ConsumeOrderlyContext,
    ) -> rocketmq_client_rust::ClientResult<rocketmq_client_rust::ConsumeOrderlyStatus> {
        let mut seen = self.seen.lock().unwrap();
        for m in msgs {
            let key = m
                .message_inner()
                .keys()
                .and_then(|k| k.into_iter().next())
                .unwrap_or_default();
            seen.push((self.instance.clone(), m.queue_id(), key));
        }
        Ok(rocketmq_client_rust::ConsumeOrderlyStatus::Success)
    }
}

/// The library's orderly push consumers (queue locks through LOCK_BATCH_MQ): two members
/// of one group share four queues; each shard's messages, sent to one queue, are consumed
/// in the order they were sent, by whichever member owns the queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn third_party_orderly_consumers_keep_each_queue_in_order() {
    let cluster = Cluster::start().await;
    let ours = RemotingClient::new(ClientConfig::default());
    let topic = "CompatOrderly";
    create_topic(&ours, &cluster, topic).await;
    let rt = TpRuntime::new("client");
    let seen: OrderlySeen = Arc::default();
    let mut consumers = Vec::new();
    for instance in ["orderly-a", "orderly-b"] {
        let mut consumer = DefaultMQPushConsumer::builder(rt.client.clone())
            .client_config(tp_config(&cluster.ns, instance))
            .consumer_group("CG_ORDERLY".to_string())
            .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
            .build();
        consumer
            .subscribe(topic.to_string(), "*".to_string())
            .await
            .unwrap();
        consumer.register_message_listener_orderly(OrderlyRecorder {
            instance: instance.to_string(),
            seen: seen.clone(),
        });
        consumer.start().await.unwrap();
        consumers.push(consumer);
    }
    let mut producer = DefaultMQProducer::builder(rt.client.clone())
        .client_config(tp_config(&cluster.ns, "compat-orderly-producer"))
        .producer_group("PG_ORDERLY")
        .build();
    producer.start().await.unwrap();
    const SHARDS: usize = 8;
    const PER_SHARD: usize = 40;
    for seq in 0..PER_SHARD {
        for shard in 0..SHARDS {
            let message = Message::builder()
                .topic(topic)
                .key(format!("s{shard}-{seq:03}"))
                .body(body_of(seq))
                .build()
                .unwrap();
            let queue = rocketmq_model::common::message::message_queue::MessageQueue::from_parts(
                topic,
                "broker-a",
                (shard % 4) as i32,
            );
            let result = producer
                .send_to_queue(message, queue)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(result.send_status, SendStatus::SendOk);
        }
    }
    producer.shutdown().await;
    let all = poll(
        "every orderly message consumed",
        Duration::from_secs(60),
        || async {
            let seen = seen.lock().unwrap().clone();
            let keys: HashSet<&String> = seen.iter().map(|(_, _, k)| k).collect();
            (keys.len() >= SHARDS * PER_SHARD).then_some(seen.clone())
        },
    )
    .await;
    for (instance, queue, key) in &all {
        let shard: usize = key[1..key.find('-').unwrap()].parse().unwrap();
        assert_eq!(
            *queue,
            (shard % 4) as i32,
            "{instance} got {key} from queue {queue}"
        );
    }
    // Per member and shard, sequence numbers only grow (a queue handed over after a
    // rebalance resumes from the committed offset, which may repeat but never reorder).
    for instance in ["orderly-a", "orderly-b"] {
        for shard in 0..SHARDS {
            let prefix = format!("s{shard}-");
            let seqs: Vec<&str> = all
                .iter()
                .filter(|(i, _, k)| i == instance && k.starts_with(&prefix))
                .map(|(_, _, k)| &k[prefix.len()..])
                .collect();
            assert!(
                seqs.windows(2).all(|w| w[0] <= w[1]),
                "{instance} consumed shard {shard} out of order: {seqs:?}"
            );
        }
    }
    let members: HashSet<&str> = all.iter().map(|(i, _, _)| i.as_str()).collect();
    assert_eq!(members.len(), 2, "both members consumed: {members:?}");
    for mut consumer in consumers {
        consumer.shutdown().await;
    }
    rt.shutdown().await;
    cluster.shutdown().await;
}

/// Broadcasting push consumers each receive every message; a delay-level message becomes
/// visible no earlier than its level (level 2 = 5 s); 4 MiB incompressible bodies arrive
/// intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn third_party_broadcast_delay_levels_and_4mib_bodies() {
    let cluster = Cluster::start().await;
    let ours = RemotingClient::new(ClientConfig::default());
    let topic = "CompatBroadcast";
    create_topic(&ours, &cluster, topic).await;
    let rt = TpRuntime::new("client");
    let mut receivers = Vec::new();
    for instance in ["broadcast-a", "broadcast-b"] {
        let received = Arc::new(Received::default());
        let mut consumer = DefaultMQPushConsumer::builder(rt.client.clone())
            .client_config(tp_config(&cluster.ns, instance))
            .consumer_group("CG_BROADCAST".to_string())
            .message_model(
                rocketmq_protocol::protocol::heartbeat::message_model::MessageModel::Broadcasting,
            )
            .consume_from_where(ConsumeFromWhere::ConsumeFromFirstOffset)
            .build();
        consumer
            .subscribe(topic.to_string(), "*".to_string())
            .await
            .unwrap();
        consumer.register_message_listener_concurrently(Recorder(received.clone()));
        consumer.start().await.unwrap();
        receivers.push((consumer, received));
    }
    let mut producer = DefaultMQProducer::builder(rt.client.clone())
        .client_config(tp_config(&cluster.ns, "compat-broadcast-producer"))
        .producer_group("PG_BROADCAST")
        // zlib makes random bytes slightly larger: compressed, a 4 MiB body would exceed
        // the broker's maxMessageSize (4 MiB) and be refused, as Java's broker does.
        .compress_msg_body_over_howmuch(8 << 20)
        .build();
    producer.start().await.unwrap();
    // Incompressible 4 MiB: a linear congruential sequence of bytes.
    let big: Vec<u8> = (0..4u64 << 20)
        .scan(0x2545_f491_4f6c_dd1du64, |x, _| {
            *x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            Some((*x >> 56) as u8)
        })
        .collect();
    let mut expected = BTreeMap::new();
    for i in 0..40 {
        let (key, body, builder) = match i {
            0 | 1 => (format!("big-{i}"), big.clone(), Message::builder()),
            2 | 3 => (
                format!("delayed-{i}"),
                body_of(i),
                Message::builder().delay_level(2),
            ),
            _ => (format!("plain-{i}"), body_of(i), Message::builder()),
        };
        let message = builder
            .topic(topic)
            .tags("TagB")
            .key(key.clone())
            .body(body.clone())
            .build()
            .unwrap();
        let result = producer
            .send(message)
            .await
            .unwrap_or_else(|e| panic!("send {key}: {e:?}"))
            .unwrap();
        assert_eq!(result.send_status, SendStatus::SendOk, "{key}");
        expected.insert(
            key,
            Sent {
                tag: "TagB".into(),
                body,
            },
        );
    }
    producer.shutdown().await;
    for (i, (_, received)) in receivers.iter().enumerate() {
        assert_received(&format!("broadcast member {i}"), received, &expected).await;
    }
    // The delayed messages became visible in the topic at least 5 s after they were born.
    for key in ["delayed-2", "delayed-3"] {
        let request = RemotingCommand::request(
            RequestCode::QUERY_MESSAGE,
            &rocketmq_common::protocol::headers::broker::QueryMessageRequestHeader {
                topic: topic.into(),
                key: key.into(),
                max_num: 32,
                begin_timestamp: 0,
                end_timestamp: i64::MAX,
            },
        );
        let response = ours.invoke_ok(&cluster.addr, request, T).await.unwrap();
        let copy = rocketmq_testkit::records(&response.body)
            .into_iter()
            .find(|m| m.topic == topic)
            .expect("the delivered copy");
        let waited = copy.store_timestamp - copy.born_timestamp;
        assert!(waited >= 5000, "{key} visible after {waited} ms");
    }
    for (mut consumer, _) in receivers {
        consumer.shutdown().await;
    }
    rt.shutdown().await;
    cluster.shutdown().await;
}

/// The library's producer against a broker process under SYNC_FLUSH that is killed with
/// SIGKILL mid-stream: after a restart on the same store, the library's push consumer
/// receives every message whose send returned SEND_OK.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn third_party_acknowledged_messages_survive_a_broker_sigkill() {
    let mut servers =
        rocketmq_testkit::standalone::Standalone::start("flushDiskType=SYNC_FLUSH\n").await;
    let ns = servers.namesrv_addr().to_string();
    let topic = "CompatCrash";
    let ours = RemotingClient::new(ClientConfig::default());
    create_topic_at(&ours, servers.broker_addr(), &ns, topic).await;
    let rt = TpRuntime::new("client");
    let mut producer = DefaultMQProducer::builder(rt.client.clone())
        .client_config(tp_config(&ns, "compat-crash-producer"))
        .producer_group("PG_CRASH")
        .build();
    producer.start().await.unwrap();
    let mut acked = BTreeMap::new();
    let mut failures = 0;
    for i in 0..3000 {
        if i == 400 {
            servers.kill_broker();
        }
        let key = format!("crash-{i}");
        let message = Message::builder()
            .topic(topic)
            .tags("TagC")
            .key(key.clone())
            .body(body_of(i))
            .build()
            .unwrap();
        match producer.send_with_timeout(message, 1000).await {
            Ok(Some(r)) if r.send_status == SendStatus::SendOk => {
                acked.insert(
                    key,
                    Sent {
                        tag: "TagC".into(),
                        body: body_of(i),
                    },
                );
            }
            _ => {
                failures += 1;
                if failures >= 3 {
                    break;
                }
            }
        }
    }
    producer.shutdown().await;
    assert!(acked.len() >= 400, "only {} acknowledged", acked.len());
    assert!(failures > 0, "the kill went unnoticed");
    servers.start_broker().await;
    let (mut consumer, received) = push_consumer(
        &rt,
        &ns,
        "CG_CRASH",
        topic,
        "*",
        Some(ConsumeFromWhere::ConsumeFromFirstOffset),
    )
    .await;
    assert_received("CG_CRASH", &received, &acked).await;
    consumer.shutdown().await;
    rt.shutdown().await;
}
