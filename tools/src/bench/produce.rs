//! `mqbench produce`: producer throughput and latency against a broker, with an optional
//! consumer measuring end-to-end latency, beside the raw write bandwidth of the broker's
//! disk measured in the same run.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rocketmq_client::MqClient;
use rocketmq_common::message::batch::encode_batch_message;
use rocketmq_common::message::{RecordEntry, decode_record, encode_properties, get_property};
use rocketmq_common::protocol::headers::broker::{
    PullMessageRequestHeader, SendMessageRequestHeader,
};
use rocketmq_store::disk::raw_write_bandwidth;
use rocketmq_tools::{Latencies, rss_kib};

use crate::local::{
    T, broker_from_namesrv, create_topic, max_offsets, start_local, wait_until_serving,
};

/// Settings of one produce run.
pub struct ProduceArgs {
    pub namesrv_addr: Option<String>,
    pub broker_addr: Option<String>,
    pub topic: String,
    pub connections: usize,
    pub size: usize,
    pub batch: usize,
    pub duration: Duration,
    pub queues: i32,
    pub consumer: bool,
    pub store_dir: Option<PathBuf>,
}

const SENT_MICROS: &str = "BENCH_SENT_US";

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Sends one SEND_MESSAGE_V2 (or, with `batch` > 1, one SEND_BATCH_MESSAGE of `batch`
/// messages) stamped with its send time; whether the broker stored it.
pub async fn send_stamped(
    client: &MqClient,
    broker: &str,
    topic: &str,
    payload: &[u8],
    batch: usize,
) -> bool {
    let sent = now_micros().to_string();
    let props = encode_properties([(SENT_MICROS, sent.as_str())]);
    let header = SendMessageRequestHeader {
        producer_group: "BenchProducer".into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 8,
        queue_id: -1,
        born_timestamp: now_micros() / 1000,
        properties: Some(props.clone()),
        batch: Some(batch > 1),
        ..Default::default()
    };
    if batch <= 1 {
        return client
            .send_message(broker, header, payload.to_vec())
            .await
            .is_ok();
    }
    let mut body = Vec::with_capacity(batch * (payload.len() + 64));
    for _ in 0..batch {
        encode_batch_message(&mut body, 0, payload, &props);
    }
    client.send_batch(broker, header, body).await.is_ok()
}

/// Pulls one queue with long polling from `offset` until `stop`, recording end-to-end
/// latency per message.
async fn consume_queue(
    broker: String,
    topic: String,
    queue: i32,
    mut offset: i64,
    stop: Arc<AtomicBool>,
) -> (u64, Latencies) {
    let client = MqClient::for_brokers(T);
    let mut latencies = Latencies::default();
    let mut count = 0;
    while !stop.load(Ordering::Relaxed) {
        let header = PullMessageRequestHeader {
            consumer_group: "BenchConsumer".into(),
            topic: topic.clone(),
            queue_id: queue,
            queue_offset: offset,
            max_msg_nums: 256,
            sys_flag: 0x2 | 0x4,
            suspend_timeout_millis: 1000,
            subscription: Some("*".into()),
            expression_type: Some("TAG".into()),
            max_msg_bytes: Some(4 << 20),
            ..Default::default()
        };
        let Ok(pulled) = client.pull_message(&broker, &header, T).await else {
            continue;
        };
        offset = pulled.header.next_begin_offset.max(offset);
        if pulled.code != 0 {
            continue;
        }
        let now = now_micros();
        let mut pos = 0;
        while pos < pulled.body.len() {
            let Ok(RecordEntry::Message(m)) = decode_record(&pulled.body[pos..], false) else {
                break;
            };
            if let Some(sent) =
                get_property(m.properties, SENT_MICROS).and_then(|s| s.parse::<i64>().ok())
            {
                latencies.record(Duration::from_micros((now - sent).max(0) as u64));
            }
            count += 1;
            pos += m.total_size as usize;
        }
    }
    (count, latencies)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What a produce run measured.
pub struct Figures {
    /// Messages acknowledged with SUCCESS.
    pub sent: u64,
    /// Requests that failed or were not SUCCESS.
    pub errors: u64,
    /// How long the run took.
    pub elapsed: Duration,
    /// Per-request send latencies.
    pub latencies: Latencies,
}

impl Figures {
    /// Waits for the `tasks` of a run that began at `start` and sums their latencies with
    /// the run's counts of messages `done` and requests that failed.
    pub async fn gather(
        tasks: Vec<tokio::task::JoinHandle<Latencies>>,
        done: &AtomicU64,
        errors: &AtomicU64,
        start: Instant,
    ) -> Self {
        let mut latencies = Latencies::default();
        for t in tasks {
            latencies.merge(t.await.expect("benchmark task"));
        }
        Figures {
            sent: done.load(Ordering::Relaxed),
            errors: errors.load(Ordering::Relaxed),
            elapsed: start.elapsed(),
            latencies,
        }
    }

    /// Messages per second.
    pub fn rate(&self) -> f64 {
        self.sent as f64 / self.elapsed.as_secs_f64()
    }
}

/// Sends `size`-byte messages (`batch` per request) to `topic` on `broker` from
/// `connections` connections, one request in flight each, for `duration`.
pub async fn drive(
    broker: &str,
    topic: &str,
    connections: usize,
    size: usize,
    batch: usize,
    duration: Duration,
) -> Figures {
    drive_multiplexed(broker, topic, connections, 1, size, batch, duration).await
}

/// Like [`drive`], with `in_flight` producers sharing each connection, as the threads of
/// an application share its one client instance.
pub async fn drive_multiplexed(
    broker: &str,
    topic: &str,
    connections: usize,
    in_flight: usize,
    size: usize,
    batch: usize,
    duration: Duration,
) -> Figures {
    let payload = vec![b'x'; size];
    let sent = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let stop_at = start + duration;
    let mut producers = Vec::new();
    for _ in 0..connections {
        let client = MqClient::for_brokers(T);
        for _ in 0..in_flight.max(1) {
            let (broker, topic, payload) = (broker.to_string(), topic.to_string(), payload.clone());
            let (sent, errors, client) = (sent.clone(), errors.clone(), client.clone());
            producers.push(tokio::spawn(async move {
                let mut latencies = Latencies::default();
                while Instant::now() < stop_at {
                    let t = Instant::now();
                    if send_stamped(&client, &broker, &topic, &payload, batch).await {
                        latencies.record(t.elapsed());
                        sent.fetch_add(batch.max(1) as u64, Ordering::Relaxed);
                    } else {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                latencies
            }));
        }
    }
    Figures::gather(producers, &sent, &errors, start).await
}

/// Runs the benchmark and prints its figures.
pub async fn run(args: ProduceArgs) {
    let client = MqClient::for_brokers(T);
    let local = if args.broker_addr.is_none() && args.namesrv_addr.is_none() {
        Some(start_local(args.store_dir.as_deref(), ""))
    } else {
        None
    };
    let broker = match (&args.broker_addr, &args.namesrv_addr, &local) {
        (Some(b), _, _) => b.clone(),
        (None, _, Some(l)) => l.broker.clone(),
        (None, Some(ns), None) => broker_from_namesrv(ns).await,
        (None, None, None) => unreachable!("local mode starts a broker"),
    };
    wait_until_serving(&client, &broker).await;
    create_topic(&client, &broker, &args.topic, args.queues).await;
    let raw = local
        .as_ref()
        .and_then(|l| raw_write_bandwidth(&l.store, 3.0, 2 << 30).ok());
    let idle_rss = local.as_ref().and_then(|l| rss_kib(l.broker_pid));

    let stop_consumers = Arc::new(AtomicBool::new(false));
    let mut consumers = Vec::new();
    if args.consumer {
        for (queue, offset) in max_offsets(&client, &broker, &args.topic, args.queues).await {
            consumers.push(tokio::spawn(consume_queue(
                broker.clone(),
                args.topic.clone(),
                queue,
                offset,
                stop_consumers.clone(),
            )));
        }
    }

    let figures = drive(
        &broker,
        &args.topic,
        args.connections,
        args.size,
        args.batch,
        args.duration,
    )
    .await;
    let (sent, errors, elapsed, mut send_latency) = (
        figures.sent,
        figures.errors,
        figures.elapsed,
        figures.latencies,
    );
    let loaded_rss = local.as_ref().and_then(|l| rss_kib(l.broker_pid));
    // Give the consumers a moment to drain what was sent, then stop them.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop_consumers.store(true, Ordering::Relaxed);
    let mut e2e = Latencies::default();
    let mut consumed = 0;
    for c in consumers {
        let (n, l) = c.await.expect("consumer task");
        consumed += n;
        e2e.merge(l);
    }

    let msgs_per_sec = sent as f64 / elapsed.as_secs_f64();
    let mb_per_sec = msgs_per_sec * args.size as f64 / 1e6;
    println!(
        "mqbench produce: broker {broker}, topic {} ({} queues), {} connections, {} B messages, batch {}, {:?}",
        args.topic, args.queues, args.connections, args.size, args.batch, args.duration
    );
    println!("  sent           {sent} messages, {errors} errors");
    println!("  throughput     {msgs_per_sec:.0} msgs/s, {mb_per_sec:.1} MB/s");
    println!(
        "  send latency   p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms (per request)",
        ms(send_latency.quantile(0.5)),
        ms(send_latency.quantile(0.99)),
        ms(send_latency.quantile(0.999))
    );
    if args.consumer {
        println!(
            "  end-to-end     p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms ({consumed} consumed)",
            ms(e2e.quantile(0.5)),
            ms(e2e.quantile(0.99)),
            ms(e2e.quantile(0.999))
        );
    }
    if let Some(raw) = raw {
        println!(
            "  raw disk       {:.1} MB/s sequential buffered write + fsync in the store directory; produce reached {:.1} %",
            raw / 1e6,
            mb_per_sec * 1e6 / raw * 100.0
        );
    }
    if let (Some((rss0, anon0)), Some((rss1, anon1))) = (idle_rss, loaded_rss) {
        println!(
            "  broker memory  idle RSS {rss0} KiB (anon {anon0} KiB), under load RSS {rss1} KiB (anon {anon1} KiB)"
        );
    }
}
