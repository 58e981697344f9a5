//! Restart benchmark (a command, not a test): how long a broker with a large store takes
//! from process start to its first served request, after a clean shutdown and after
//! SIGKILL.
//!
//! It fills a store directory with `--gib` GiB of messages (once; an existing store of that
//! size is reused), then for each of `--runs` rounds starts `mqbroker` on it, times process
//! start → first GET_ALL_TOPIC_CONFIG answered, and stops it with SIGTERM (clean) or, after
//! sending a few messages, SIGKILL (crash). Prints min/median/max of both, and — as the
//! baseline in the same run — the same two restarts with the checkpoint's durable offsets
//! erased, which makes recovery fall back to scanning from segment starts (what a store
//! written before those offsets existed, or Java's timestamp-based recovery, does).
//!
//! The store is `--gib` GiB plus 900 MiB, so the last 1 GiB segment is 90% full: the worst
//! case for a recovery that scans whole segments. `--cold` drops the page cache before
//! every start (needs root), so recovery reads from disk as after a machine restart.
//!
//! `cargo run --release -p rocketmq-broker --bin restartbench -- [--dir D] [--gib 10]
//!  [--size 1024] [--runs 5] [--cold]`

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rocketmq_common::message::{RecordInput, encode_properties};
use rocketmq_common::protocol::headers::broker::{
    SendMessageRequestHeader, SendMessageRequestHeaderV2,
};
use rocketmq_common::protocol::{RemotingCommand, RequestCode};
use rocketmq_common::remoting::{ClientConfig, RemotingClient};
use rocketmq_store::{FlushDiskType, MessageStore, MessageStoreConfig};

struct Args {
    dir: PathBuf,
    gib: u64,
    size: usize,
    runs: usize,
    cold: bool,
}

fn parse_args() -> Args {
    let mut a = Args {
        dir: PathBuf::from("restartbench-data"),
        gib: 10,
        size: 1024,
        runs: 5,
        cold: false,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--dir" => a.dir = PathBuf::from(v),
            "--gib" => a.gib = v.parse().expect("--gib"),
            "--size" => a.size = v.parse().expect("--size"),
            "--runs" => a.runs = v.parse().expect("--runs"),
            "--cold" => {
                a.cold = true;
                i += 1;
                continue;
            }
            "--help" | "-h" => {
                println!("restartbench [--dir D] [--gib 10] [--size 1024] [--runs 5] [--cold]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

const TOPICS: usize = 4;
const QUEUES: i32 = 8;

/// Fills `root` with `gib` GiB of `size`-byte messages across 4 topics × 8 queues.
fn fill(root: &Path, gib: u64, size: usize) {
    let marker = root.join(format!("restartbench-{gib}gib900m-{size}"));
    if marker.exists() {
        println!("reusing the {gib} GiB store in {}", root.display());
        return;
    }
    let _ = std::fs::remove_dir_all(root);
    let config = MessageStoreConfig {
        flush_disk_type: FlushDiskType::AsyncFlush,
        ..MessageStoreConfig::with_root(root)
    };
    let host = "127.0.0.1:10911".parse().unwrap();
    let store = MessageStore::open(config, host).expect("open store");
    let body = vec![b'x'; size];
    let topics: Vec<String> = (0..TOPICS).map(|t| format!("RestartTopic{t}")).collect();
    let props: Vec<String> = (0..64)
        .map(|k| encode_properties([("KEYS", format!("k{k}").as_str()), ("TAGS", "T")]))
        .collect();
    let started = Instant::now();
    let target = (gib << 30) + (900 << 20);
    let mut n = 0usize;
    while (store.commitlog().max_offset() as u64) < target {
        let batch: Vec<RecordInput<'_>> = (0..64)
            .map(|i| {
                let k = n + i;
                RecordInput {
                    topic: &topics[k % TOPICS],
                    queue_id: (k / TOPICS) as i32 % QUEUES,
                    flag: 0,
                    sys_flag: 0,
                    born_timestamp: 1_700_000_000_000,
                    born_host: host,
                    store_host: host,
                    reconsume_times: 0,
                    prepared_transaction_offset: 0,
                    body: &body,
                    properties: &props[i],
                }
            })
            .collect();
        let mut appends = Vec::new();
        store
            .commitlog()
            .append_batch(&batch, &mut appends)
            .expect("append");
        n += batch.len();
    }
    store.shutdown().expect("shutdown");
    println!(
        "filled {} GiB ({n} messages of {size} B) in {:.1} s",
        gib,
        started.elapsed().as_secs_f64()
    );
    std::fs::write(&marker, b"").unwrap();
}

fn mqbroker() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.with_file_name("mqbroker");
    assert!(
        path.exists(),
        "{} not found: build mqbroker in the same profile",
        path.display()
    );
    path
}

fn start(root: &Path, port: u16) -> Child {
    let conf = root.with_extension("conf");
    std::fs::write(
        &conf,
        format!(
            "brokerName=restartbench\nbindAddress=127.0.0.1\nbrokerIP1=127.0.0.1\nlistenPort={port}\n\
             storePathRootDir={}\nmetricsPort=0\n",
            root.display()
        ),
    )
    .unwrap();
    Command::new(mqbroker())
        .args(["-c", conf.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn mqbroker")
}

/// Time from `spawned` until the broker answers a request.
async fn until_serving(client: &RemotingClient, addr: &str, spawned: Instant) -> Duration {
    loop {
        let probe = RemotingCommand::bare_request(RequestCode::GET_ALL_TOPIC_CONFIG);
        if client
            .invoke_ok(addr, probe, Duration::from_secs(2))
            .await
            .is_ok()
        {
            return spawned.elapsed();
        }
        client.close(addr);
        assert!(
            spawned.elapsed() < Duration::from_secs(300),
            "broker never served"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn terminate(child: &mut Child) {
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = child.wait().unwrap();
    assert!(status.success(), "broker exited with {status}");
}

fn summary(name: &str, mut xs: Vec<Duration>) {
    xs.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:<24} min {:>7.1} ms   median {:>7.1} ms   max {:>7.1} ms   ({} runs)",
        ms(xs[0]),
        ms(xs[xs.len() / 2]),
        ms(xs[xs.len() - 1]),
        xs.len()
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = parse_args();
    let root = std::path::absolute(&a.dir).unwrap();
    fill(&root, a.gib, a.size);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let client = RemotingClient::new(ClientConfig {
        connect_timeout: Duration::from_millis(200),
        ..ClientConfig::default()
    });
    let (clean, crashed) = rounds(&a, &root, &client, &addr, port, false).await;
    let (legacy_clean, legacy_crashed) = rounds(&a, &root, &client, &addr, port, true).await;
    println!(
        "store: {} GiB of {} B messages in {}",
        a.gib,
        a.size,
        root.display()
    );
    summary("clean restart", clean);
    summary("restart after SIGKILL", crashed);
    summary("baseline: clean", legacy_clean);
    summary("baseline: after SIGKILL", legacy_crashed);
}

/// Drops the page cache, so the next start reads the store from disk.
fn drop_caches() {
    // SAFETY: sync(2) takes no arguments.
    unsafe { libc::sync() };
    std::fs::write("/proc/sys/vm/drop_caches", b"3").expect("--cold needs root (drop_caches)");
}

/// Zeroes the checkpoint's physicFlushedOffset and logicsDispatchedOffset (@40, @48).
fn erase_durable_offsets(root: &Path) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(root.join("checkpoint"))
        .expect("open checkpoint");
    f.seek(SeekFrom::Start(40)).unwrap();
    f.write_all(&[0u8; 16]).unwrap();
    f.sync_all().unwrap();
}

async fn rounds(
    a: &Args,
    root: &Path,
    client: &RemotingClient,
    addr: &str,
    port: u16,
    legacy: bool,
) -> (Vec<Duration>, Vec<Duration>) {
    let label = if legacy { "baseline" } else { "checkpointed" };
    let mut clean = Vec::new();
    let mut crashed = Vec::new();
    for round in 0..a.runs {
        if legacy {
            erase_durable_offsets(root);
        }
        // Clean: the previous stop was a SIGTERM (or the fill's clean shutdown).
        let spawned = Instant::now();
        let mut child = start(root, port);
        clean.push(until_serving(client, addr, spawned).await);
        // Leave an unflushed tail, then crash.
        for i in 0..100 {
            let header: SendMessageRequestHeaderV2 = SendMessageRequestHeader {
                producer_group: "P".into(),
                topic: "RestartTopic0".into(),
                default_topic: "TBW102".into(),
                default_topic_queue_nums: QUEUES,
                queue_id: i % QUEUES,
                properties: Some(encode_properties([("KEYS", "tail")])),
                ..Default::default()
            }
            .into();
            let send = RemotingCommand::request(RequestCode::SEND_MESSAGE_V2, &header)
                .with_body(vec![b'y'; a.size]);
            client
                .invoke_ok(addr, send, Duration::from_secs(5))
                .await
                .expect("send");
        }
        child.kill().unwrap();
        child.wait().unwrap();
        client.close(addr);
        if legacy {
            erase_durable_offsets(root);
        }
        if a.cold {
            drop_caches();
        }
        let spawned = Instant::now();
        let mut child = start(root, port);
        crashed.push(until_serving(client, addr, spawned).await);
        terminate(&mut child);
        client.close(addr);
        println!(
            "{label} round {}: clean {:.0} ms, after SIGKILL {:.0} ms",
            round + 1,
            clean[round].as_secs_f64() * 1000.0,
            crashed[round].as_secs_f64() * 1000.0
        );
    }
    (clean, crashed)
}
