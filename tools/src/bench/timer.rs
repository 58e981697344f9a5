//! `mqbench timer`: schedules many timer messages (`TIMER_DELIVER_MS`) on a local broker,
//! then measures how late each one became visible in its real queue (its store time there
//! minus the time it asked for), and the broker's memory with all of them pending.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rocketmq_client::MqClient;
use rocketmq_common::message::{RecordEntry, decode_record, encode_properties, get_property};
use rocketmq_common::protocol::headers::broker::{
    PullMessageRequestHeader, SendMessageRequestHeader,
};
use rocketmq_tools::{Latencies, rss_kib};

use crate::local::{T, create_topic, start_local, wait_until_serving};

/// Settings of one timer run.
pub struct TimerArgs {
    /// Messages to schedule.
    pub messages: u64,
    /// Seconds from the start of scheduling to the first delivery time.
    pub lead: u64,
    /// Delivery times are spread evenly over this many seconds.
    pub spread: u64,
    /// Concurrent sending connections.
    pub connections: usize,
    /// Timer precision of the broker (`timerPrecisionMs`).
    pub precision_ms: u64,
}

const TOPIC: &str = "BenchTimerTopic";
const QUEUES: i32 = 8;
const DUE: &str = "BENCH_DUE_MS";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// Runs the benchmark and prints its figures.
pub async fn run(a: TimerArgs) {
    let local = start_local(
        None,
        &format!(
            "timerPrecisionMs={}\nmappedFileSizeCommitLog=1073741824\n",
            a.precision_ms
        ),
    );
    let broker = local.broker.clone();
    let client = MqClient::for_brokers(T);
    wait_until_serving(&client, &broker).await;
    create_topic(&client, &broker, TOPIC, QUEUES).await;
    let idle = rss_kib(local.broker_pid);

    // Schedule: message i is due at first_due + i * spread / n.
    let started = Instant::now();
    let first_due = now_ms() + a.lead as i64 * 1000;
    let step = a.spread as f64 * 1000.0 / a.messages.max(1) as f64;
    let next = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    for _ in 0..a.connections {
        let (broker, next) = (broker.clone(), next.clone());
        let n = a.messages;
        senders.push(tokio::spawn(async move {
            let client = MqClient::for_brokers(T);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let due = (first_due + (i as f64 * step) as i64).to_string();
                let header = SendMessageRequestHeader {
                    producer_group: "BenchTimer".into(),
                    topic: TOPIC.into(),
                    default_topic: "TBW102".into(),
                    default_topic_queue_nums: QUEUES,
                    queue_id: (i % QUEUES as u64) as i32,
                    born_timestamp: now_ms(),
                    properties: Some(encode_properties([
                        ("TIMER_DELIVER_MS", due.as_str()),
                        (DUE, due.as_str()),
                    ])),
                    ..Default::default()
                };
                client
                    .send_message(&broker, header, vec![b't'; 128])
                    .await
                    .expect("schedule a timer message");
            }
        }));
    }
    for s in senders {
        s.await.expect("sender");
    }
    let scheduled_in = started.elapsed();
    // Let the enqueue side link everything before sampling memory with all pending.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pending = rss_kib(local.broker_pid);
    let first_due_in = first_due - now_ms();
    assert!(
        first_due_in > 0,
        "scheduling took longer than the lead: raise --lead"
    );

    // Read every queue until all messages have arrived.
    let mut lateness = Latencies::default();
    let mut early = 0u64;
    let mut got = 0u64;
    let mut offsets = [0i64; QUEUES as usize];
    let deadline = Instant::now()
        + Duration::from_millis(first_due_in as u64)
        + Duration::from_secs(a.spread + 120);
    while got < a.messages && Instant::now() < deadline {
        let mut progressed = false;
        for q in 0..QUEUES {
            let pull = PullMessageRequestHeader {
                consumer_group: "BenchTimerConsumer".into(),
                topic: TOPIC.into(),
                queue_id: q,
                queue_offset: offsets[q as usize],
                max_msg_nums: 1024,
                sys_flag: 0x4,
                subscription: Some("*".into()),
                expression_type: Some("TAG".into()),
                max_msg_bytes: Some(4 << 20),
                ..Default::default()
            };
            let Ok(pulled) = client.pull_message(&broker, &pull, T).await else {
                continue;
            };
            offsets[q as usize] = pulled.header.next_begin_offset.max(offsets[q as usize]);
            if pulled.code != 0 {
                continue;
            }
            let mut pos = 0;
            while pos < pulled.body.len() {
                let Ok(RecordEntry::Message(m)) = decode_record(&pulled.body[pos..], false) else {
                    break;
                };
                pos += m.total_size as usize;
                got += 1;
                progressed = true;
                if let Some(due) =
                    get_property(m.properties, DUE).and_then(|d| d.parse::<i64>().ok())
                {
                    let late = m.store_timestamp - due;
                    if late < 0 {
                        early += 1;
                    }
                    lateness.record(Duration::from_millis(late.max(0) as u64));
                }
            }
        }
        if !progressed {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let end = rss_kib(local.broker_pid);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "mqbench timer: {} messages, due from +{} s over {} s, precision {} ms, {} connections",
        a.messages, a.lead, a.spread, a.precision_ms, a.connections
    );
    println!(
        "  scheduled      {} messages in {:.1} s ({:.0} msgs/s)",
        a.messages,
        scheduled_in.as_secs_f64(),
        a.messages as f64 / scheduled_in.as_secs_f64()
    );
    println!(
        "  delivered      {got} of {} ({early} before their time)",
        a.messages
    );
    println!(
        "  lateness       p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms (visible in the real queue minus asked time)",
        ms(lateness.quantile(0.5)),
        ms(lateness.quantile(0.99)),
        ms(lateness.quantile(1.0))
    );
    if let (Some((r0, a0)), Some((r1, a1)), Some((r2, a2))) = (idle, pending, end) {
        println!(
            "  broker memory  idle RSS {:.1} MiB (anon {:.1}), all pending RSS {:.1} MiB (anon {:.1}), after delivery RSS {:.1} MiB (anon {:.1})",
            mib(r0),
            mib(a0),
            mib(r1),
            mib(a1),
            mib(r2),
            mib(a2)
        );
    }
    drop(local);
}
