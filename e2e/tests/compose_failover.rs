//! The product as containers: `e2e/compose/docker-compose.yml` (2 name servers, 3
//! controllers, one broker group of 3 in controller mode, 2 gRPC proxies) from the image
//! `images/build.sh` makes, on a private network.
//!
//! While a Remoting producer (to the master the controllers name) and the official gRPC SDK
//! (one producer per proxy) send, the master container is killed (`docker kill`); then the
//! new master is cut off the network (`docker network disconnect`) and later reconnected.
//! Checks: writes resume on a new master within 5 s of each fault; the partitioned master
//! acknowledges nothing once it has been replaced; both proxies keep serving (each
//! acknowledges gRPC sends again within 12 s of each fault); every container turns healthy
//! by the image's HEALTHCHECK; the
//! partitioned master rejoins as a replica; every acknowledged message — Remoting and gRPC —
//! is on the final master, Remoting ones at the offset the broker returned; `docker stop`'s
//! SIGTERM ends every server cleanly.
//!
//! Needs a Docker engine and docker-compose. Without them the test says so and passes,
//! unless `RMQ_REQUIRE_DOCKER=1` (CI sets it), where their absence is a failure.
//! Everything is removed afterwards (containers, network, volumes), also on failure, when
//! the containers' logs are printed first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use rocketmq::Producer;
use rocketmq::conf::{ClientOption, ProducerOption};
use rocketmq::model::message::MessageBuilder;
use rocketmq_client::MqClient;
use rocketmq_common::protocol::headers::broker::SendMessageResponseHeader;
use rocketmq_common::remoting::{ClientConfig, RemotingClient};
use rocketmq_common::route::TopicConfig;
use rocketmq_testkit::cluster::MasterProbe;
use rocketmq_testkit::requests::{read_topic, send};
use rocketmq_testkit::{binary, wait_until};

const TOPIC: &str = "ComposeFailover";
const QUEUES: i32 = 4;
const T: Duration = Duration::from_secs(3);
const LONG: Duration = Duration::from_secs(120);
const FAILOVER_LIMIT: Duration = Duration::from_secs(5);
const IMAGE: &str = "rocketmq-rs:e2e-compose";

/// The binaries the image carries: (package, binary).
const IMAGE_BINARIES: [(&str, &str); 6] = [
    ("rocketmq-namesrv", "mqnamesrv"),
    ("rocketmq-controller", "mqcontroller"),
    ("rocketmq-broker", "mqbroker"),
    ("rocketmq-proxy", "mqproxy"),
    ("rocketmq-tools", "mqadmin"),
    ("rocketmq-operator", "rocketmq-operator"),
];

/// Every compose service.
const SERVICES: [&str; 10] = [
    "namesrv-0",
    "namesrv-1",
    "controller-0",
    "controller-1",
    "controller-2",
    "broker-a-0",
    "broker-a-1",
    "broker-a-2",
    "proxy-0",
    "proxy-1",
];

/// The compose services' fixed host numbers inside the subnet.
const BROKERS: [(&str, u8); 3] = [("broker-a-0", 30), ("broker-a-1", 31), ("broker-a-2", 32)];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e sits in the workspace")
        .to_path_buf()
}

fn succeeded(mut command: Command) -> bool {
    command
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn docker_available() -> bool {
    succeeded({
        let mut c = Command::new("docker");
        c.arg("info");
        c
    }) && succeeded({
        let mut c = Command::new("docker-compose");
        c.arg("version");
        c
    })
}

fn check(what: &str, output: std::io::Result<Output>) -> String {
    let output = output.unwrap_or_else(|e| panic!("{what}: cannot run: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// One compose project; `down -v` when dropped, with the logs printed first on a failure.
struct Compose {
    project: String,
    subnet: String,
}

impl Compose {
    fn command(&self) -> Command {
        let mut c = Command::new("docker-compose");
        c.current_dir(workspace_root().join("e2e/compose"))
            .env("RMQ_IMAGE", IMAGE)
            .env("RMQ_SUBNET", &self.subnet)
            .args(["-p", &self.project]);
        c
    }

    fn compose(&self, args: &[&str]) -> std::io::Result<Output> {
        self.command().args(args).output()
    }

    /// Brings the project up on a /24 of its own; another subnet when one is taken.
    fn up() -> Self {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
            ^ std::process::id();
        let mut last_error = String::new();
        for attempt in 0..5u32 {
            let n = seed.wrapping_add(attempt.wrapping_mul(7919));
            let compose = Compose {
                project: format!("rmqe2e{}", std::process::id()),
                subnet: format!("10.{}.{}", 200 + n % 50, (n / 50) % 250),
            };
            let out = compose
                .compose(&["up", "-d", "--no-color"])
                .expect("run docker-compose");
            if out.status.success() {
                return compose;
            }
            last_error = String::from_utf8_lossy(&out.stderr).to_string();
            let _ = compose.compose(&["down", "-v", "--remove-orphans", "-t", "1"]);
            if !last_error.contains("overlap") {
                break;
            }
        }
        panic!("docker-compose up failed: {last_error}");
    }

    fn ip(&self, host: u8) -> String {
        format!("{}.{host}", self.subnet)
    }

    fn container(&self, service: &str) -> String {
        check(
            &format!("docker-compose ps -q {service}"),
            self.compose(&["ps", "-q", service]),
        )
    }

    fn network(&self) -> String {
        format!("{}_cluster", self.project)
    }

    fn docker(&self, what: &str, args: &[&str]) -> String {
        check(what, Command::new("docker").args(args).output())
    }

    fn broker_service_at(&self, addr: &str) -> (&'static str, u8) {
        *BROKERS
            .iter()
            .find(|(_, host)| addr.starts_with(&format!("{}:", self.ip(*host))))
            .unwrap_or_else(|| panic!("{addr} is none of the brokers"))
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        if std::thread::panicking()
            && let Ok(out) = self.compose(&["logs", "--no-color", "--tail", "150"])
        {
            eprintln!(
                "---- container logs ----\n{}",
                String::from_utf8_lossy(&out.stdout)
            );
        }
        match self.compose(&["down", "-v", "--remove-orphans", "-t", "5"]) {
            Ok(out) if out.status.success() => {}
            other => eprintln!("docker-compose down failed: {other:?}"),
        }
    }
}

/// Builds the image from the binaries this test run built (the dev profile: no second
/// build of the workspace).
fn build_image() {
    for (package, name) in IMAGE_BINARIES {
        binary(package, name);
    }
    let target_dir = binary("rocketmq-tools", "mqadmin")
        .parent()
        .and_then(Path::parent)
        .expect("binaries live in <target>/debug")
        .to_path_buf();
    check(
        "images/build.sh",
        Command::new(workspace_root().join("images/build.sh"))
            .args([
                "--profile",
                "dev",
                "--no-cargo",
                "--tag",
                IMAGE,
                "--target-dir",
            ])
            .arg(&target_dir)
            .output(),
    );
}

/// What a Remoting send was acknowledged with: key → (queue, offset, body).
type Acked = BTreeMap<String, (i32, i64, Vec<u8>)>;

fn body_of(i: usize) -> Vec<u8> {
    let mut b = format!("compose-{i}:").into_bytes();
    b.resize(64 + (i * 37) % 700, b'a' + (i % 26) as u8);
    b
}

/// Sends to the master the controllers name, one message at a time, recording each SEND_OK.
fn spawn_remoting_sender(
    probe: Arc<MasterProbe>,
    acked: Arc<Mutex<Acked>>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = RemotingClient::new(ClientConfig::default());
        let mut master: Option<String> = None;
        let mut i = 0usize;
        while !stop.load(Ordering::Acquire) {
            let Some(addr) = master.clone() else {
                master = probe.master().await.map(|(addr, _, _)| addr);
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let key = format!("r{i}");
            let queue = (i % QUEUES as usize) as i32;
            let request = send(TOPIC, queue, &body_of(i), &[("KEYS", key.as_str())]);
            match client.invoke(&addr, request, T).await {
                Ok(resp) if resp.code == 0 => {
                    let h: SendMessageResponseHeader =
                        resp.decode_header().expect("send response header");
                    acked
                        .lock()
                        .insert(key, (h.queue_id, h.queue_offset, body_of(i)));
                }
                // Not acknowledged: ask the controllers again.
                _ => master = None,
            }
            i += 1;
        }
    })
}

/// One official-SDK producer per proxy, sending continuously: key → time of the SEND_OK.
fn spawn_grpc_sender(
    endpoint: String,
    prefix: &'static str,
    acked: Arc<Mutex<BTreeMap<String, Instant>>>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut client = ClientOption::default();
        client.set_access_url(endpoint);
        client.set_enable_tls(false);
        client.set_timeout(Duration::from_secs(3));
        let mut options = ProducerOption::default();
        options.set_topics(vec![TOPIC]);
        let mut producer = Producer::new(options, client).expect("SDK producer");
        producer.start().await.expect("SDK producer starts");
        let mut i = 0usize;
        let mut last_error = String::new();
        while !stop.load(Ordering::Acquire) {
            let key = format!("{prefix}{i}");
            let message = MessageBuilder::builder()
                .set_topic(TOPIC)
                .set_body(body_of(i))
                .set_keys(vec![key.clone()])
                .build()
                .expect("message");
            match producer.send(message).await {
                Ok(_) => {
                    acked.lock().insert(key, Instant::now());
                }
                Err(e) => {
                    // Said once per kind of error: what a proxy answers during a fault.
                    let error = e.to_string();
                    if error != last_error {
                        eprintln!("{prefix} send failed: {error}");
                        last_error = error;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
            }
            i += 1;
        }
        let _ = producer.shutdown().await;
    })
}

/// Waits until the controllers name a master other than `old` that takes a write.
async fn new_master_taking_writes(probe: &MasterProbe, old: &str) -> (String, i32) {
    let client = RemotingClient::new(ClientConfig::default());
    wait_until("a new master taking writes", LONG, || async {
        let (addr, epoch, _) = probe.master().await?;
        if addr == old {
            return None;
        }
        let r = client
            .invoke(&addr, send(TOPIC, 0, b"probe", &[("KEYS", "probe")]), T)
            .await
            .ok()?;
        (r.code == 0).then_some((addr, epoch))
    })
    .await
}

/// How soon after a fault each proxy must acknowledge sends again: the failover itself
/// (under 5 s), plus one client timeout (3 s) for a send stuck on a silent master, plus
/// the proxy's route refresh through the name servers.
const PROXY_RECOVERY_LIMIT: Duration = Duration::from_secs(12);

/// Waits until each proxy's producer was acknowledged a message after `since`, and
/// asserts it happened within [`PROXY_RECOVERY_LIMIT`] of `since`.
async fn proxies_serving(acked: &[Arc<Mutex<BTreeMap<String, Instant>>>], since: Instant) {
    for (i, acked) in acked.iter().enumerate() {
        let first = wait_until(&format!("proxy-{i} acknowledging sends"), LONG, || async {
            acked
                .lock()
                .values()
                .filter(|at| **at > since)
                .min()
                .copied()
        })
        .await;
        let after = first - since;
        eprintln!("proxy-{i} acknowledged a send {after:?} after the fault");
        assert!(
            after < PROXY_RECOVERY_LIMIT,
            "proxy-{i} acknowledged nothing for {after:?}"
        );
    }
}

/// Waits until Docker reports every container healthy (the image's HEALTHCHECK:
/// `mqadmin healthCheck` against each server's /healthz).
async fn all_healthy(compose: &Compose) {
    for service in SERVICES {
        let container = compose.container(service);
        wait_until(&format!("{service} healthy"), LONG, || async {
            let status = compose.docker(
                "docker inspect",
                &["inspect", "-f", "{{.State.Health.Status}}", &container],
            );
            assert_ne!(status, "unhealthy", "{service} is unhealthy");
            (status == "healthy").then_some(())
        })
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_fail_over_without_losing_acknowledged_messages() {
    if !docker_available() {
        assert!(
            std::env::var("RMQ_REQUIRE_DOCKER").as_deref() != Ok("1"),
            "RMQ_REQUIRE_DOCKER=1 but no Docker engine or docker-compose is usable"
        );
        eprintln!("skipped: no Docker engine or docker-compose here");
        return;
    }
    build_image();
    let compose = Compose::up();
    let probe = Arc::new(MasterProbe::new(
        (20..23)
            .map(|h| format!("{}:9878", compose.ip(h)))
            .collect(),
    ));
    let admin = MqClient::new(
        &format!("{}:9876;{}:9876", compose.ip(10), compose.ip(11)),
        T,
    )
    .unwrap();

    let first_master = wait_until("a master with all three replicas in sync", LONG, || async {
        let (addr, _, set) = probe.master().await?;
        (set.sync_state_set.len() == 3).then_some(addr)
    })
    .await;
    admin
        .create_topic(&first_master, &TopicConfig::new(TOPIC, QUEUES))
        .await
        .unwrap();
    admin.wait_for_route(TOPIC, LONG).await.unwrap();
    all_healthy(&compose).await;

    let stop = Arc::new(AtomicBool::new(false));
    let remoting_acked: Arc<Mutex<Acked>> = Arc::default();
    let grpc_acked: Vec<Arc<Mutex<BTreeMap<String, Instant>>>> =
        vec![Arc::default(), Arc::default()];
    let mut senders = vec![spawn_remoting_sender(
        probe.clone(),
        remoting_acked.clone(),
        stop.clone(),
    )];
    for (i, prefix) in ["g0-", "g1-"].into_iter().enumerate() {
        senders.push(spawn_grpc_sender(
            format!("{}:8081", compose.ip(40 + i as u8)),
            prefix,
            grpc_acked[i].clone(),
            stop.clone(),
        ));
    }
    wait_until(
        "traffic through Remoting and both proxies",
        LONG,
        || async {
            (remoting_acked.lock().len() >= 300 && grpc_acked.iter().all(|a| a.lock().len() >= 50))
                .then_some(())
        },
    )
    .await;

    // 1. The master's container dies.
    let (victim, _) = compose.broker_service_at(&first_master);
    let victim_container = compose.container(victim);
    let killed = Instant::now();
    compose.docker("docker kill", &["kill", &victim_container]);
    let (second_master, second_epoch) = new_master_taking_writes(&probe, &first_master).await;
    let failover = killed.elapsed();
    eprintln!(
        "after docker kill: {second_master} (epoch {second_epoch}) took writes in {failover:?}"
    );
    assert!(
        failover < FAILOVER_LIMIT,
        "failover after kill took {failover:?}"
    );
    proxies_serving(&grpc_acked, killed + failover).await;

    // The surviving replica catches up with the new master before the next fault, so a
    // clean election is possible.
    wait_until("the survivor back in the SyncStateSet", LONG, || async {
        let (addr, _, set) = probe.master().await?;
        (addr == second_master && set.sync_state_set.len() == 2).then_some(())
    })
    .await;

    // 2. The new master is cut off the network.
    let (partitioned, partitioned_host) = compose.broker_service_at(&second_master);
    let partitioned_container = compose.container(partitioned);
    let network = compose.network();
    let cut = Instant::now();
    compose.docker(
        "docker network disconnect",
        &["network", "disconnect", &network, &partitioned_container],
    );
    let (third_master, third_epoch) = new_master_taking_writes(&probe, &second_master).await;
    let failover = cut.elapsed();
    eprintln!(
        "after the partition: {third_master} (epoch {third_epoch}) took writes in {failover:?}"
    );
    assert!(
        failover < FAILOVER_LIMIT,
        "failover after partition took {failover:?}"
    );
    assert!(third_epoch > second_epoch);

    // The cut-off master, replaced, acknowledges nothing: a send from inside its own
    // container (the only place that still reaches it) fails.
    for attempt in 0..3 {
        let out = Command::new("docker")
            .args(["exec", &partitioned_container, "mqadmin", "sendMessage"])
            .args(["-t", TOPIC, "-p", "written-while-partitioned"])
            .args([
                "-a",
                "127.0.0.1:10911",
                "-i",
                "0",
                "--timeoutMillis",
                "4000",
            ])
            .output()
            .expect("docker exec");
        assert!(
            !out.status.success(),
            "attempt {attempt}: the partitioned master acknowledged a write: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        eprintln!(
            "partitioned master refused: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    proxies_serving(&grpc_acked, cut + failover).await;

    // 3. It comes back at its old address and rejoins as a replica of the new master.
    let ip = compose.ip(partitioned_host);
    compose.docker(
        "docker network connect",
        &[
            "network",
            "connect",
            "--ip",
            &ip,
            &network,
            &partitioned_container,
        ],
    );
    wait_until(
        "the reconnected broker back in the SyncStateSet",
        LONG,
        || async {
            let (addr, _, set) = probe.master().await?;
            (addr == third_master && set.sync_state_set.len() == 2).then_some(())
        },
    )
    .await;

    // Some more traffic on the final master, then stop and check everything.
    let settled = Instant::now();
    proxies_serving(&grpc_acked, settled).await;
    stop.store(true, Ordering::Release);
    for s in senders {
        s.await.unwrap();
    }

    let reader = RemotingClient::new(ClientConfig::default());
    let stored = read_topic(&reader, &third_master, TOPIC, QUEUES)
        .await
        .expect("the final master serves reads");
    let acked = remoting_acked.lock().clone();
    for (key, (queue, offset, body)) in &acked {
        let found = stored.get(&(*queue, *offset));
        assert_eq!(
            found.map(|(k, b)| (k.as_str(), b.as_slice())),
            Some((key.as_str(), body.as_slice())),
            "acknowledged {key} at {queue}/{offset} is not on the final master"
        );
    }
    let stored_keys: std::collections::HashSet<&str> =
        stored.values().map(|(k, _)| k.as_str()).collect();
    let mut grpc_total = 0;
    for (i, acked) in grpc_acked.iter().enumerate() {
        let acked = acked.lock();
        grpc_total += acked.len();
        let missing: Vec<&String> = acked
            .keys()
            .filter(|k| !stored_keys.contains(k.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "{} messages acknowledged through proxy-{i} are lost, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
    }
    assert!(
        !stored_keys.contains("written-while-partitioned"),
        "a write to the partitioned master reached the final master"
    );
    eprintln!(
        "verified {} Remoting and {grpc_total} gRPC acknowledged messages on {third_master}",
        acked.len()
    );

    // SIGTERM reaches every server as PID 1 and each shuts down cleanly (exit status 0)
    // well within the grace period; the killed master is the only one that did not.
    let stopping = Instant::now();
    check(
        "docker-compose stop",
        compose.compose(&["stop", "-t", "20"]),
    );
    eprintln!("graceful stop of the cluster took {:?}", stopping.elapsed());
    for service in SERVICES {
        let container = compose.container(service);
        let code = compose.docker(
            "docker inspect",
            &["inspect", "-f", "{{.State.ExitCode}}", &container],
        );
        let expected = if service == victim { "137" } else { "0" };
        assert_eq!(code, expected, "{service} exited with {code}");
    }
}
