//! `mqbench proxy`: what the gRPC proxy costs. Producers send the same messages straight to
//! the broker over Remoting and through `mqproxy` over gRPC (`SendMessage`), in cluster mode
//! (proxy process in front of name server and broker processes) and in local mode (one
//! `mqproxy --mode local` process), same run, same message size; then consumers drain what
//! was sent, over Remoting pulls, over Remoting POP + batch ack (the work a gRPC receive
//! asks of the broker) and over gRPC `ReceiveMessage` + `AckMessage`.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rocketmq_client::MqClient;
use rocketmq_client::api::PullQueue;
use rocketmq_client::pop::plan_batch_acks;
use rocketmq_common::protocol::headers::broker::PopMessageRequestHeader;
use rocketmq_proto::pb::{self, messaging_service_client::MessagingServiceClient};
use rocketmq_tools::{Latencies, cpu_time};
use tonic::transport::Channel;

use crate::local::{
    T, child_stderr, create_topic, free_port, sibling, start_local, wait_until_serving,
};
use crate::produce::{Figures, drive_multiplexed};

/// Settings of a proxy run.
pub struct ProxyArgs {
    pub connections: usize,
    pub in_flight: usize,
    pub size: usize,
    pub duration: Duration,
}

const TOPIC: &str = "ProxyBench";
const QUEUES: i32 = 8;
/// The gRPC consumers' group; the Remoting POP consumers use their own so both drain
/// everything.
const GRPC_GROUP: &str = "ProxyBenchGroup";
const POP_GROUP: &str = "ProxyBenchPop";
/// The broker's name (`brokerName` default) that POP receipts carry.
const BROKER_NAME: &str = "broker-a";
const OK: i32 = pb::Code::Ok as i32;

struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_proxy(args: &[&str]) -> Proxy {
    Proxy(
        Command::new(sibling("mqproxy"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(child_stderr("mqproxy"))
            .spawn()
            .expect("start mqproxy"),
    )
}

fn resource(name: &str) -> pb::Resource {
    pb::Resource {
        resource_namespace: String::new(),
        name: name.to_string(),
    }
}

fn request<T>(body: T, client: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(body);
    r.metadata_mut()
        .insert("x-mq-client-id", client.parse().expect("ascii client id"));
    r
}

async fn connect(addr: &str) -> MessagingServiceClient<Channel> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(mut c) = MessagingServiceClient::connect(format!("http://{addr}")).await {
            let route = c
                .query_route(request(
                    pb::QueryRouteRequest {
                        topic: Some(resource(TOPIC)),
                        endpoints: None,
                    },
                    "bench",
                ))
                .await;
            if route.is_ok_and(|r| r.get_ref().status.as_ref().is_some_and(|s| s.code == OK)) {
                return c;
            }
        }
        assert!(
            Instant::now() < deadline,
            "proxy at {addr} never served the topic"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// gRPC producers: `connections` channels, each shared by `in_flight` producers with one
/// SendMessage of one message in flight (HTTP/2 streams of one connection).
async fn drive_grpc(
    addr: &str,
    connections: usize,
    in_flight: usize,
    size: usize,
    duration: Duration,
) -> Figures {
    let sent = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let stop_at = start + duration;
    let mut tasks = Vec::new();
    for c in 0..connections {
        let channel = connect(addr).await;
        for p in 0..in_flight.max(1) {
            let mut client = channel.clone();
            let (sent, errors) = (sent.clone(), errors.clone());
            let body = vec![b'x'; size];
            tasks.push(tokio::spawn(async move {
                let mut latencies = Latencies::default();
                let mut n = 0u64;
                while Instant::now() < stop_at {
                    let message = pb::Message {
                        topic: Some(resource(TOPIC)),
                        user_properties: Default::default(),
                        system_properties: Some(pb::SystemProperties {
                            message_id: format!("BENCH{c:04}{p:04}{n:012}"),
                            message_type: pb::MessageType::Normal as i32,
                            ..Default::default()
                        }),
                        body: body.clone(),
                    };
                    n += 1;
                    let t = Instant::now();
                    let r = client
                        .send_message(request(
                            pb::SendMessageRequest {
                                messages: vec![message],
                            },
                            "bench",
                        ))
                        .await;
                    match r {
                        Ok(r) if r.get_ref().status.as_ref().is_some_and(|s| s.code == OK) => {
                            latencies.record(t.elapsed());
                            sent.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                latencies
            }));
        }
    }
    Figures::gather(tasks, &sent, &errors, start).await
}

/// Consumers draining `total` messages over gRPC: receive 32, ack them, repeat.
async fn drain_grpc(addr: &str, connections: usize, total: u64) -> Figures {
    let got = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let mut client = connect(addr).await;
        let (got, errors) = (got.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Latencies::default();
            let group = resource(GRPC_GROUP);
            while got.load(Ordering::Relaxed) < total {
                let t = Instant::now();
                let receive = pb::ReceiveMessageRequest {
                    group: Some(group.clone()),
                    message_queue: Some(pb::MessageQueue {
                        topic: Some(resource(TOPIC)),
                        id: -1,
                        ..Default::default()
                    }),
                    filter_expression: Some(pb::FilterExpression {
                        r#type: pb::FilterType::Tag as i32,
                        expression: "*".into(),
                    }),
                    batch_size: 32,
                    invisible_duration: Some(pb_duration(60)),
                    auto_renew: false,
                    long_polling_timeout: Some(pb_duration(1)),
                    attempt_id: None,
                };
                let Ok(stream) = client.receive_message(request(receive, "bench")).await else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                let mut stream = stream.into_inner();
                let mut entries = Vec::new();
                while let Ok(Some(item)) = stream.message().await {
                    if let Some(pb::receive_message_response::Content::Message(m)) = item.content
                        && let Some(sys) = m.system_properties
                    {
                        entries.push(pb::AckMessageEntry {
                            message_id: sys.message_id,
                            receipt_handle: sys.receipt_handle.unwrap_or_default(),
                        });
                    }
                }
                if entries.is_empty() {
                    continue;
                }
                let n = entries.len() as u64;
                let ack = pb::AckMessageRequest {
                    group: Some(group.clone()),
                    topic: Some(resource(TOPIC)),
                    entries,
                };
                match client.ack_message(request(ack, "bench")).await {
                    Ok(r) if r.get_ref().status.as_ref().is_some_and(|s| s.code == OK) => {
                        latencies.record(t.elapsed());
                        got.fetch_add(n, Ordering::Relaxed);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies
        }));
    }
    Figures::gather(tasks, &got, &errors, start).await
}

fn pb_duration(secs: i64) -> rocketmq_proto::prost_types::Duration {
    rocketmq_proto::prost_types::Duration {
        seconds: secs,
        nanos: 0,
    }
}

/// Consumers draining `total` messages straight from the broker with POP, the work a gRPC
/// receive asks of it: POP_MESSAGE of 32, then one BATCH_ACK_MESSAGE for the batch.
async fn drain_pop_remoting(broker: &str, connections: usize, total: u64) -> Figures {
    let got = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (broker, got, errors) = (broker.to_string(), got.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let client = MqClient::for_brokers(T);
            let mut latencies = Latencies::default();
            while got.load(Ordering::Relaxed) < total {
                let t = Instant::now();
                let header = PopMessageRequestHeader {
                    consumer_group: POP_GROUP.into(),
                    topic: TOPIC.into(),
                    queue_id: -1,
                    max_msg_nums: 32,
                    invisible_time: 60_000,
                    poll_time: 1_000,
                    born_time: now_ms(),
                    init_mode: 0,
                    exp_type: Some("TAG".into()),
                    exp: Some("*".into()),
                    order: Some(false),
                    attempt_id: None,
                };
                let Ok(popped) = client.pop_message(&broker, BROKER_NAME, &header).await else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                if popped.messages.is_empty() {
                    continue;
                }
                let receipts = popped.messages.iter().map(|m| &m.receipt).enumerate();
                let plan = plan_batch_acks(POP_GROUP, TOPIC, receipts);
                let mut acked = plan.singles.is_empty() && plan.invalid.is_empty();
                for (body, _) in &plan.batches {
                    acked &= client.batch_ack(&broker, body).await.is_ok();
                }
                if acked {
                    latencies.record(t.elapsed());
                    got.fetch_add(popped.messages.len() as u64, Ordering::Relaxed);
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    Figures::gather(tasks, &got, &errors, start).await
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Consumers draining `total` messages straight from the broker: Remoting pulls of 32,
/// one task per queue, offsets kept by the task.
async fn drain_remoting(broker: &str, total: u64) -> Figures {
    let got = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for q in 0..QUEUES {
        let (broker, got) = (broker.to_string(), got.clone());
        tasks.push(tokio::spawn(async move {
            let client = MqClient::for_brokers(T);
            let mut latencies = Latencies::default();
            let mut offset = 0;
            let queue = PullQueue {
                group: "ProxyBenchPull",
                topic: TOPIC,
                queue_id: q,
            };
            while got.load(Ordering::Relaxed) < total {
                let t = Instant::now();
                let Ok(batch) = client.pull(&broker, &queue, offset, 32, "*").await else {
                    continue;
                };
                if batch.messages.is_empty() {
                    if batch.next_begin_offset <= offset {
                        // This queue is drained; the others finish the count.
                        break;
                    }
                } else {
                    latencies.record(t.elapsed());
                    got.fetch_add(batch.messages.len() as u64, Ordering::Relaxed);
                }
                offset = batch.next_begin_offset.max(offset);
            }
            latencies
        }));
    }
    Figures::gather(tasks, &got, &AtomicU64::new(0), start).await
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// CPU time of each server process and of this one (the clients) over a phase.
struct Cpu {
    servers: Vec<u32>,
    before: (Vec<Duration>, Duration),
}

/// CPU µs per message of a phase: each server process (in the order given), the clients.
struct Used {
    servers: Vec<f64>,
    client: f64,
}

impl Cpu {
    fn start(servers: &[u32]) -> Self {
        let mut c = Self {
            servers: servers.to_vec(),
            before: (Vec::new(), Duration::ZERO),
        };
        c.before = c.now();
        c
    }

    fn now(&self) -> (Vec<Duration>, Duration) {
        (
            self.servers
                .iter()
                .map(|p| cpu_time(*p).unwrap_or_default())
                .collect(),
            cpu_time(std::process::id()).unwrap_or_default(),
        )
    }

    fn per_message(&self, messages: u64) -> Used {
        let (servers, client) = self.now();
        let per = |d: Duration| d.as_secs_f64() * 1e6 / messages.max(1) as f64;
        Used {
            servers: servers
                .iter()
                .zip(&self.before.0)
                .map(|(now, before)| per(now.saturating_sub(*before)))
                .collect(),
            client: per(client.saturating_sub(self.before.1)),
        }
    }
}

/// A row of figures; `baseline` is the rate it is compared with and that rate's name.
fn row(name: &str, f: &mut Figures, used: &Used, baseline: Option<(f64, &str)>) {
    let ratio = baseline.map_or(String::new(), |(rate, of)| {
        format!("  {:.2}× {of}", f.rate() / rate)
    });
    let servers: f64 = used.servers.iter().sum();
    println!(
        "  {name:<36} {:>7.0} msgs/s  p50 {:>6.3} ms  p99 {:>6.3} ms  CPU/msg servers {:>5.1} µs, client {:>5.1} µs  {} errors{ratio}",
        f.rate(),
        ms(f.latencies.quantile(0.5)),
        ms(f.latencies.quantile(0.99)),
        servers,
        used.client,
        f.errors
    );
}

/// The broker's share of a cluster-mode phase and the proxy's (servers are broker, proxy).
fn split(used: &Used) -> (f64, f64) {
    (used.servers[0], used.servers[1])
}

/// Runs cluster mode, then local mode, and prints the figures.
pub async fn run(a: ProxyArgs) {
    println!(
        "mqbench proxy: {} connections x {} in flight, {} B messages, {:?} per producer mode",
        a.connections, a.in_flight, a.size, a.duration
    );
    let admin = MqClient::for_brokers(T);

    // Cluster mode: name server and broker processes, a proxy process in front.
    {
        let local = start_local(None, "");
        wait_until_serving(&admin, &local.broker).await;
        create_topic(&admin, &local.broker, TOPIC, QUEUES).await;
        let port = free_port();
        let proxy = spawn_proxy(&[
            "-n",
            &local.namesrv,
            "--grpcServerPort",
            &port.to_string(),
            "--bindAddress",
            "127.0.0.1",
        ]);
        let addr = format!("127.0.0.1:{port}");
        connect(&addr).await;
        println!(" cluster mode (mqnamesrv + mqbroker + mqproxy processes):");
        let servers = [local.broker_pid, proxy.0.id()];
        let cpu = Cpu::start(&servers);
        let mut direct = drive_multiplexed(
            &local.broker,
            TOPIC,
            a.connections,
            a.in_flight,
            a.size,
            1,
            a.duration,
        )
        .await;
        let direct_used = cpu.per_message(direct.sent);
        row(
            "produce, Remoting to the broker",
            &mut direct,
            &direct_used,
            None,
        );
        let cpu = Cpu::start(&servers);
        let mut grpc = drive_grpc(&addr, a.connections, a.in_flight, a.size, a.duration).await;
        let grpc_used = cpu.per_message(grpc.sent);
        let base = Some((direct.rate(), "direct"));
        row(
            "produce, gRPC through the proxy",
            &mut grpc,
            &grpc_used,
            base,
        );
        let total = direct.sent.min(grpc.sent);
        let cpu = Cpu::start(&servers);
        let mut pulled = drain_remoting(&local.broker, total).await;
        let used = cpu.per_message(pulled.sent);
        row("consume, Remoting pulls of 32", &mut pulled, &used, None);
        let cpu = Cpu::start(&servers);
        let mut popped = drain_pop_remoting(&local.broker, a.connections, total).await;
        let popped_used = cpu.per_message(popped.sent);
        let name = "consume, Remoting POP 32 + batch ack";
        row(name, &mut popped, &popped_used, None);
        let cpu = Cpu::start(&servers);
        let mut received = drain_grpc(&addr, a.connections, total).await;
        let received_used = cpu.per_message(received.sent);
        let base = Some((popped.rate(), "POP"));
        row(
            "consume, gRPC receive 32 + ack",
            &mut received,
            &received_used,
            base,
        );
        // With proxies on CPUs of their own (their Deployment scales out), the broker is the
        // bound: what each message costs it directly and through a proxy.
        println!("  CPU per message of each process (cluster mode), broker-bound ceiling:");
        for (phase, direct, proxied) in [
            ("produce", &direct_used, &grpc_used),
            ("consume", &popped_used, &received_used),
        ] {
            let ((d, _), (b, p)) = (split(direct), split(proxied));
            println!(
                "    {phase}: broker {d:>5.1} µs direct, {b:>5.1} µs + proxy {p:>5.1} µs through gRPC; broker-bound {:.2}× direct",
                d / b
            );
        }
    }

    // Local mode: one mqproxy process with the name server and broker inside.
    {
        let dir = std::env::temp_dir().join(format!("mqbench-proxy-local-{}", std::process::id()));
        let (ns, broker, grpc) = (free_port(), free_port(), free_port());
        let proxy = spawn_proxy(&[
            "--mode",
            "local",
            "--dir",
            dir.to_str().expect("utf-8 temp dir"),
            "--namesrvPort",
            &ns.to_string(),
            "--brokerPort",
            &broker.to_string(),
            "--grpcServerPort",
            &grpc.to_string(),
            "--bindAddress",
            "127.0.0.1",
        ]);
        let broker = format!("127.0.0.1:{broker}");
        wait_until_serving(&admin, &broker).await;
        create_topic(&admin, &broker, TOPIC, QUEUES).await;
        let addr = format!("127.0.0.1:{grpc}");
        connect(&addr).await;
        println!(" local mode (one mqproxy --mode local process):");
        let servers = [proxy.0.id()];
        let cpu = Cpu::start(&servers);
        let mut direct = drive_multiplexed(
            &broker,
            TOPIC,
            a.connections,
            a.in_flight,
            a.size,
            1,
            a.duration,
        )
        .await;
        let used = cpu.per_message(direct.sent);
        row("produce, Remoting to the broker", &mut direct, &used, None);
        let cpu = Cpu::start(&servers);
        let mut grpc = drive_grpc(&addr, a.connections, a.in_flight, a.size, a.duration).await;
        let used = cpu.per_message(grpc.sent);
        let base = Some((direct.rate(), "direct"));
        row("produce, gRPC through the proxy", &mut grpc, &used, base);
        drop(proxy);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
