//! `mqbench transaction`: transactional send throughput (half message, then a oneway
//! END_TRANSACTION commit) beside plain sends, on one local broker in one run, and a check
//! that every committed message became visible.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rocketmq_client::MqClient;
use rocketmq_common::message::sysflag::TRANSACTION_PREPARED_TYPE;
use rocketmq_common::message::{decode_offset_message_id, encode_properties};
use rocketmq_common::protocol::headers::broker::{
    EndTransactionRequestHeader, SendMessageRequestHeader,
};
use rocketmq_tools::Latencies;

use crate::local::{T, create_topic, max_offsets, start_local, wait_until_serving};

/// Settings of one transaction run.
pub struct TransactionArgs {
    /// Seconds per mode.
    pub duration: Duration,
    /// Concurrent connections.
    pub connections: usize,
    /// Body size.
    pub size: usize,
}

const QUEUES: i32 = 8;

/// Messages visible in `topic`'s queues.
async fn visible(client: &MqClient, broker: &str, topic: &str) -> i64 {
    max_offsets(client, broker, topic, QUEUES)
        .await
        .values()
        .sum()
}

/// Sends for `duration` on `connections` connections; `transactional` sends half messages
/// and commits each. Returns (messages completed, per-message latency).
async fn drive(
    broker: &str,
    topic: &str,
    a: &TransactionArgs,
    transactional: bool,
) -> (u64, Latencies) {
    let done = Arc::new(AtomicU64::new(0));
    let stop_at = Instant::now() + a.duration;
    let mut tasks = Vec::new();
    for c in 0..a.connections {
        let (broker, topic, done) = (broker.to_string(), topic.to_string(), done.clone());
        let body = vec![b'x'; a.size];
        tasks.push(tokio::spawn(async move {
            let client = MqClient::for_brokers(T);
            let mut latencies = Latencies::default();
            let mut n = 0u64;
            while Instant::now() < stop_at {
                let t = Instant::now();
                let key = format!("c{c}-{n}");
                let mut props = vec![("UNIQ_KEY", key.as_str())];
                if transactional {
                    props.push(("TRAN_MSG", "true"));
                    props.push(("PGROUP", "BenchTx"));
                }
                let header = SendMessageRequestHeader {
                    producer_group: "BenchTx".into(),
                    topic: topic.clone(),
                    default_topic: "TBW102".into(),
                    default_topic_queue_nums: QUEUES,
                    queue_id: (n % QUEUES as u64) as i32,
                    sys_flag: if transactional {
                        TRANSACTION_PREPARED_TYPE
                    } else {
                        0
                    },
                    properties: Some(encode_properties(props)),
                    ..Default::default()
                };
                let Ok(h) = client.send_message(&broker, header, body.clone()).await else {
                    continue;
                };
                if transactional {
                    let (_, offset) =
                        decode_offset_message_id(&h.msg_id).expect("offset message id");
                    let end = EndTransactionRequestHeader {
                        topic: Some(topic.clone()),
                        producer_group: "BenchTx".into(),
                        tran_state_table_offset: h.queue_offset,
                        commit_log_offset: offset,
                        commit_or_rollback: 8,
                        from_transaction_check: Some(false),
                        msg_id: key.clone(),
                        transaction_id: h.transaction_id.clone(),
                    };
                    if client.end_transaction(&broker, &end, false).await.is_err() {
                        continue;
                    }
                }
                latencies.record(t.elapsed());
                n += 1;
                done.fetch_add(1, Ordering::Relaxed);
            }
            // A oneway commit still queued would be lost with the connection: one answered
            // request behind it (frames on a connection stay in order) flushes it.
            let _ = visible(&client, &broker, &topic).await;
            latencies
        }));
    }
    let mut all = Latencies::default();
    for t in tasks {
        all.merge(t.await.expect("sender"));
    }
    (done.load(Ordering::Relaxed), all)
}

/// Runs the benchmark and prints its figures.
pub async fn run(a: TransactionArgs) {
    let local = start_local(None, "");
    let broker = local.broker.clone();
    let client = MqClient::for_brokers(T);
    wait_until_serving(&client, &broker).await;
    create_topic(&client, &broker, "BenchPlain", QUEUES).await;
    create_topic(&client, &broker, "BenchTx", QUEUES).await;
    let (plain, mut plain_lat) = drive(&broker, "BenchPlain", &a, false).await;
    let (tx, mut tx_lat) = drive(&broker, "BenchTx", &a, true).await;
    // Commits are oneway: wait for them to land before counting.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = visible(&client, &broker, "BenchTx").await;
    while (seen as u64) < tx && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = visible(&client, &broker, "BenchTx").await;
    }
    let secs = a.duration.as_secs_f64();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "mqbench transaction: {} connections, {} B messages, {:?} per mode",
        a.connections, a.size, a.duration
    );
    println!(
        "  plain send        {:>8.0} msgs/s   p50 {:.3} ms  p99 {:.3} ms",
        plain as f64 / secs,
        ms(plain_lat.quantile(0.5)),
        ms(plain_lat.quantile(0.99))
    );
    println!(
        "  transactional     {:>8.0} msgs/s   p50 {:.3} ms  p99 {:.3} ms  (half + commit; {:.0} % of plain)",
        tx as f64 / secs,
        ms(tx_lat.quantile(0.5)),
        ms(tx_lat.quantile(0.99)),
        tx as f64 / plain.max(1) as f64 * 100.0
    );
    println!("  committed visible {seen} of {tx}");
    drop(local);
}
