//! `mqbench`: measures our servers and prints figures beside a baseline from the same run.
//!
//! `mqbench route` — name server route lookups (GET_ROUTEINFO_BY_TOPIC) per second and
//! latency percentiles with N concurrent connections, next to the protocol floor: the same
//! server answering a request code it does not support (framing, dispatch and the round
//! trip, no route work). Without `-n` it starts a local `mqnamesrv` from the same build.
//!
//! `mqbench proxy` — the gRPC proxy beside direct Remoting (see `bench/grpc.rs`).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use rocketmq_client::MqClient;
use rocketmq_common::protocol::headers::namesrv::{
    GetRouteInfoRequestHeader, RegisterBrokerRequestHeader,
};
use rocketmq_common::protocol::{RemotingCommand, RequestCode};
use rocketmq_common::remoting::{ClientConfig, RemotingClient};
use rocketmq_common::route::{RegisterBrokerBody, TopicConfig};
use rocketmq_tools::{Latencies, rss_kib};

#[derive(Parser)]
#[command(name = "mqbench", version, about = "RocketMQ benchmarks")]
struct Args {
    #[command(subcommand)]
    command: Bench,
}

#[path = "../bench/grpc.rs"]
mod grpc;
#[path = "../bench/local.rs"]
mod local;
#[path = "../bench/produce.rs"]
mod produce;
#[path = "../bench/replication.rs"]
mod replication;
#[path = "../bench/timer.rs"]
mod timer;
#[path = "../bench/transaction.rs"]
mod transaction;

#[derive(Subcommand)]
enum Bench {
    /// Producer throughput and latency against a broker (with end-to-end latency from a
    /// consumer). Without -b or -n it starts a local mqnamesrv and mqbroker.
    Produce {
        /// Name server address (finds the first master broker).
        #[arg(short = 'n', long = "namesrvAddr", env = "NAMESRV_ADDR")]
        namesrv_addr: Option<String>,
        /// Broker address (skips the name server).
        #[arg(short = 'b', long = "brokerAddr")]
        broker_addr: Option<String>,
        /// Topic (created on the broker if needed).
        #[arg(short = 't', long, default_value = "BenchmarkTopic")]
        topic: String,
        /// Concurrent connections, each with one request in flight.
        #[arg(short = 'c', long, default_value_t = 16)]
        connections: usize,
        /// Message body size in bytes.
        #[arg(short = 's', long, default_value_t = 1024)]
        size: usize,
        /// Messages per request (SEND_BATCH_MESSAGE when above 1).
        #[arg(long, default_value_t = 1)]
        batch: usize,
        /// Seconds to produce.
        #[arg(short = 'd', long, default_value_t = 10)]
        duration: u64,
        /// Queues of the topic.
        #[arg(long, default_value_t = 8)]
        queues: i32,
        /// Do not run the end-to-end consumer.
        #[arg(long)]
        no_consumer: bool,
        /// Store directory of the local broker (default: a temporary directory).
        #[arg(long)]
        store_dir: Option<std::path::PathBuf>,
    },
    /// Timer messages on a local broker: schedule many, measure how late each is visible
    /// and the broker's memory with all of them pending.
    Timer {
        /// Messages to schedule.
        #[arg(short = 'm', long, default_value_t = 1_000_000)]
        messages: u64,
        /// Seconds from the start of scheduling to the first delivery time.
        #[arg(long, default_value_t = 40)]
        lead: u64,
        /// Delivery times spread evenly over this many seconds.
        #[arg(long, default_value_t = 30)]
        spread: u64,
        /// Concurrent sending connections.
        #[arg(short = 'c', long, default_value_t = 16)]
        connections: usize,
        /// The broker's timerPrecisionMs.
        #[arg(long, default_value_t = 1000)]
        precision_ms: u64,
    },
    /// Transactional sends (half + commit) beside plain sends on a local broker.
    Transaction {
        /// Concurrent connections.
        #[arg(short = 'c', long, default_value_t = 16)]
        connections: usize,
        /// Message body size in bytes.
        #[arg(short = 's', long, default_value_t = 1024)]
        size: usize,
        /// Seconds per mode.
        #[arg(short = 'd', long, default_value_t = 10)]
        duration: u64,
    },
    /// Synchronous replication and failover: produce throughput of a standalone broker
    /// beside a three-replica controller-mode group (every send acked by all), then the
    /// time from killing the master to the first write on the new one, repeated.
    Replication {
        /// Concurrent connections.
        #[arg(short = 'c', long, default_value_t = 16)]
        connections: usize,
        /// Message body size in bytes.
        #[arg(short = 's', long, default_value_t = 1024)]
        size: usize,
        /// Seconds per produce mode.
        #[arg(short = 'd', long, default_value_t = 10)]
        duration: u64,
        /// Master kills to time.
        #[arg(short = 'k', long, default_value_t = 20)]
        kills: usize,
    },
    /// The gRPC proxy beside direct Remoting: produce and consume throughput and latency in
    /// cluster mode (mqproxy in front of mqnamesrv and mqbroker) and local mode.
    Proxy {
        /// Concurrent connections (producers and gRPC consumers).
        #[arg(short = 'c', long, default_value_t = 16)]
        connections: usize,
        /// Producers sharing each connection, one request in flight each.
        #[arg(short = 'i', long = "in-flight", default_value_t = 1)]
        in_flight: usize,
        /// Message body size in bytes.
        #[arg(short = 's', long, default_value_t = 1024)]
        size: usize,
        /// Seconds per produce mode.
        #[arg(short = 'd', long, default_value_t = 10)]
        duration: u64,
    },
    /// Route lookups against a name server.
    Route {
        /// Name server address; default: start a local mqnamesrv (NAMESRV_ADDR is honoured).
        #[arg(short = 'n', long = "namesrvAddr", env = "NAMESRV_ADDR")]
        namesrv_addr: Option<String>,
        /// Concurrent connections, each with one request in flight.
        #[arg(short = 'c', long, default_value_t = 16)]
        connections: usize,
        /// Seconds to measure each scenario.
        #[arg(short = 'd', long, default_value_t = 10)]
        duration: u64,
        /// Topics the fake broker registers (routes are looked up round-robin).
        #[arg(long, default_value_t = 100)]
        topics: usize,
    },
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match args.command {
        Bench::Produce {
            namesrv_addr,
            broker_addr,
            topic,
            connections,
            size,
            batch,
            duration,
            queues,
            no_consumer,
            store_dir,
        } => runtime.block_on(produce::run(produce::ProduceArgs {
            namesrv_addr,
            broker_addr,
            topic,
            connections,
            size,
            batch,
            duration: Duration::from_secs(duration),
            queues,
            consumer: !no_consumer,
            store_dir,
        })),
        Bench::Timer {
            messages,
            lead,
            spread,
            connections,
            precision_ms,
        } => runtime.block_on(timer::run(timer::TimerArgs {
            messages,
            lead,
            spread,
            connections,
            precision_ms,
        })),
        Bench::Transaction {
            connections,
            size,
            duration,
        } => runtime.block_on(transaction::run(transaction::TransactionArgs {
            duration: Duration::from_secs(duration),
            connections,
            size,
        })),
        Bench::Replication {
            connections,
            size,
            duration,
            kills,
        } => runtime.block_on(replication::run(replication::ReplicationArgs {
            connections,
            size,
            duration: Duration::from_secs(duration),
            kills,
        })),
        Bench::Proxy {
            connections,
            in_flight,
            size,
            duration,
        } => runtime.block_on(grpc::run(grpc::ProxyArgs {
            connections,
            in_flight,
            size,
            duration: Duration::from_secs(duration),
        })),
        Bench::Route {
            namesrv_addr,
            connections,
            duration,
            topics,
        } => runtime.block_on(route_bench(
            namesrv_addr,
            connections,
            Duration::from_secs(duration),
            topics,
        )),
    }
}

struct LocalNamesrv {
    child: Child,
    addr: String,
    _dir: std::path::PathBuf,
}

impl Drop for LocalNamesrv {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn start_local_namesrv() -> LocalNamesrv {
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe.with_file_name("mqnamesrv");
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo build --release -p rocketmq-namesrv) or pass -n",
        bin.display()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let dir = std::env::temp_dir().join(format!("mqbench-namesrv-{}", std::process::id()));
    let child = Command::new(bin)
        .args([
            "--listenPort",
            &port.to_string(),
            "--bindAddress",
            "127.0.0.1",
            "--metricsPort",
            "0",
        ])
        .arg("--kvConfigPath")
        .arg(dir.join("kvConfig.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mqnamesrv");
    LocalNamesrv {
        child,
        addr: format!("127.0.0.1:{port}"),
        _dir: dir,
    }
}

async fn wait_until_up(addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let client = MqClient::new(addr, Duration::from_secs(1)).expect("name server address");
    while Instant::now() < deadline {
        if client.cluster_info().await.is_ok() {
            return;
        }
        client.remoting().close(addr);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("name server at {addr} did not come up");
}

async fn register_fake_broker(addr: &str, topics: usize) {
    let mut body = RegisterBrokerBody::default();
    body.topic_config_serialize_wrapper.data_version.counter = 1;
    for i in 0..topics {
        let name = format!("BenchTopic{i}");
        body.topic_config_serialize_wrapper
            .topic_config_table
            .insert(name.clone(), TopicConfig::new(name, 8));
    }
    let body = serde_json::to_vec(&body).expect("register body");
    let header = RegisterBrokerRequestHeader {
        broker_name: "bench-broker".into(),
        broker_addr: "127.0.0.1:10911".into(),
        cluster_name: "BenchCluster".into(),
        ha_server_addr: "127.0.0.1:10912".into(),
        broker_id: 0,
        heartbeat_timeout_millis: Some(600_000),
        enable_acting_master: Some(false),
        compressed: Some(false),
        body_crc32: Some((crc32fast::hash(&body) & 0x7FFF_FFFF) as i32),
    };
    MqClient::for_brokers(Duration::from_secs(5))
        .register_broker(addr, &header, body, Duration::from_secs(5))
        .await
        .expect("register fake broker");
}

struct Outcome {
    ops: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Latencies,
}

async fn run_scenario(
    addr: &str,
    connections: usize,
    duration: Duration,
    make: impl Fn(usize) -> RemotingCommand + Send + Sync + Clone + 'static,
) -> Outcome {
    let start = Instant::now();
    let stop_at = start + duration;
    let mut tasks = Vec::new();
    for worker in 0..connections {
        let addr = addr.to_string();
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            // One client per worker: one connection each, like N independent clients. Raw
            // Remoting on purpose: the floor scenario sends a code no client method has.
            let client = RemotingClient::new(ClientConfig::default());
            let mut latencies = Latencies::default();
            let mut errors = 0;
            let mut i = worker;
            while Instant::now() < stop_at {
                let t = Instant::now();
                match client.invoke(&addr, make(i), Duration::from_secs(3)).await {
                    Ok(_) => latencies.record(t.elapsed()),
                    Err(_) => errors += 1,
                }
                i += connections;
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Latencies::default();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.expect("worker task");
        latencies.merge(l);
        errors += e;
    }
    Outcome {
        ops: latencies.count(),
        errors,
        elapsed: start.elapsed(),
        latencies,
    }
}

fn print_row(name: &str, o: &mut Outcome) {
    let per_sec = o.ops as f64 / o.elapsed.as_secs_f64();
    println!(
        "{name:<28} {per_sec:>12.0} {:>10.1} {:>10.1} {:>10.1} {:>8}",
        o.latencies.quantile(0.5).as_secs_f64() * 1e6,
        o.latencies.quantile(0.99).as_secs_f64() * 1e6,
        o.latencies.quantile(0.999).as_secs_f64() * 1e6,
        o.errors
    );
}

async fn route_bench(
    namesrv_addr: Option<String>,
    connections: usize,
    duration: Duration,
    topics: usize,
) {
    let local = if namesrv_addr.is_none() {
        Some(start_local_namesrv())
    } else {
        None
    };
    let addr = namesrv_addr.unwrap_or_else(|| local.as_ref().expect("local namesrv").addr.clone());
    wait_until_up(&addr).await;
    register_fake_broker(&addr, topics).await;
    let rss_before = local.as_ref().and_then(|l| rss_kib(l.child.id()));

    println!(
        "mqbench route: {addr}, {connections} connections, {}s per scenario, {topics} topics",
        duration.as_secs()
    );
    println!(
        "{:<28} {:>12} {:>10} {:>10} {:>10} {:>8}",
        "scenario", "req/s", "p50 µs", "p99 µs", "p99.9 µs", "errors"
    );
    let mut floor = run_scenario(&addr, connections, duration, |_| {
        RemotingCommand::bare_request(9_999)
    })
    .await;
    print_row("baseline: unsupported code", &mut floor);
    let mut route = run_scenario(&addr, connections, duration, move |i| {
        RemotingCommand::request(
            RequestCode::GET_ROUTEINFO_BY_TOPIC,
            &GetRouteInfoRequestHeader {
                topic: format!("BenchTopic{}", i % topics),
                accept_standard_json_only: None,
            },
        )
    })
    .await;
    print_row("GET_ROUTEINFO_BY_TOPIC", &mut route);
    let ratio = route.ops as f64
        / route.elapsed.as_secs_f64()
        / (floor.ops as f64 / floor.elapsed.as_secs_f64());
    println!(
        "route lookups reach {:.0} % of the protocol floor",
        ratio * 100.0
    );
    if let (Some(local), Some((rss0, anon0))) = (&local, rss_before)
        && let Some((rss1, anon1)) = rss_kib(local.child.id())
    {
        println!(
            "mqnamesrv memory: idle RSS {rss0} KiB (anon {anon0} KiB), after load RSS {rss1} KiB (anon {anon1} KiB)"
        );
    }
}
