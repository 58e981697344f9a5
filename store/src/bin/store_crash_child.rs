//! Test helper for the process-level crash test (`tests/crash.rs`): opens a store with
//! SYNC_FLUSH and tiny segments, appends deterministic messages from several concurrent
//! tasks and prints `ACK <seq> <physical offset> <queue id> <queue offset> <size>` for each
//! message only after the store acknowledged it. The test SIGKILLs this process at a random
//! moment and checks that every acknowledged message survived.
//!
//! Usage: `store-crash-child <store dir> <first seq> <writers> [sync|async]` (default sync)

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rocketmq_common::message::RecordInput;
use rocketmq_store::{FlushDiskType, MessageStore, MessageStoreConfig, PutStatus};

/// The parameters the crash test and this child agree on.
pub mod shared {
    /// Topic of every message.
    pub const TOPIC: &str = "CrashTopic";
    /// Queues used.
    pub const QUEUES: u64 = 4;

    /// Body of message `seq`: length 1..=3000, content derived from `seq`.
    pub fn body(seq: u64) -> Vec<u8> {
        let h = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let len = 1 + (h >> 33) as usize % 3000;
        (0..len)
            .map(|i| (seq as usize).wrapping_mul(31).wrapping_add(i) as u8)
            .collect()
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 && args.len() != 5 {
        eprintln!("usage: store-crash-child <store dir> <first seq> <writers> [sync|async]");
        std::process::exit(2);
    }
    let dir = &args[1];
    let first: u64 = args[2].parse().expect("first seq is a number");
    let writers: usize = args[3].parse().expect("writers is a number");
    let mut config = MessageStoreConfig::with_root(dir);
    config.flush_disk_type = match args.get(4).map(String::as_str) {
        None | Some("sync") => FlushDiskType::SyncFlush,
        Some("async") => FlushDiskType::AsyncFlush,
        Some(other) => {
            eprintln!("unknown flush mode {other}");
            std::process::exit(2);
        }
    };
    config.mapped_file_size_commit_log = 64 * 1024;
    config.mapped_file_size_consume_queue = 100 * 20;
    config.max_hash_slot_num = 64;
    config.max_index_num = 200;
    config.flush_interval_consume_queue = 50;
    let store = Arc::new(
        MessageStore::open(config, "127.0.0.1:10911".parse().expect("addr")).expect("store opens"),
    );
    eprintln!("child recovered: {:?}", store.recovery_report());
    println!("READY");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .expect("runtime");
    let next = Arc::new(AtomicU64::new(first));
    rt.block_on(async move {
        for _ in 0..writers {
            let (store, next) = (store.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    let body = shared::body(seq);
                    let props = format!("SEQ\u{1}{seq}\u{2}KEYS\u{1}k{seq}\u{2}");
                    let msg = RecordInput {
                        topic: shared::TOPIC,
                        queue_id: (seq % shared::QUEUES) as i32,
                        flag: 0,
                        sys_flag: 0,
                        born_timestamp: seq as i64,
                        born_host: "127.0.0.1:5555".parse().expect("addr"),
                        store_host: "127.0.0.1:10911".parse().expect("addr"),
                        reconsume_times: 0,
                        prepared_transaction_offset: 0,
                        body: &body,
                        properties: &props,
                    };
                    let r = match store.put_message(&msg).await {
                        Ok(r) => r,
                        Err(e) => {
                            // Exit (not just end this task) so the test sees the failure.
                            eprintln!("put of seq {seq} failed: {e}");
                            std::process::exit(3);
                        }
                    };
                    if r.status != PutStatus::PutOk {
                        continue;
                    }
                    let a = r.append;
                    let mut out = std::io::stdout().lock();
                    writeln!(
                        out,
                        "ACK {seq} {} {} {} {}",
                        a.physical_offset,
                        seq % shared::QUEUES,
                        a.queue_offset,
                        a.size
                    )
                    .expect("stdout");
                }
            });
        }
        // Writers run until the test kills the process.
        std::future::pending::<()>().await;
    });
}
