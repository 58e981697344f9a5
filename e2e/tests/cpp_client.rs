//! The official RocketMQ C++ client core — the engine behind the Python, Node, PHP and Go-cgo
//! clients — against our `mqnamesrv` and `mqbroker` processes.
//!
//! The client comes from the PyPI wheel `rocketmq-client-python==0.5.0rc2`, which bundles
//! `librocketmq.so`; the harness creates a Python virtual environment for it (once per
//! target directory) and runs `e2e/cpp/driver.py`, which prints one JSON result per run.
//!
//! Scenarios: concurrent push with a tag filter, retries and 4 MiB incompressible bodies;
//! orderly push by two members of a group; broadcast; the pull consumer; delay levels and
//! timer messages; transactions (commit, rollback, unknown answered by check-back); and a
//! SIGKILL of the broker under SYNC_FLUSH while the producer runs, after which every
//! acknowledged message is consumed.
//!
//! SQL92 filters are not among them: this client core subscribes with a tag expression
//! only (`Subscribe(consumer, topic, expression)`; the library has no expression type), so
//! SQL92 subscriptions are tested with the third-party Rust client
//! (`third_party_sql92_subscription_receives_only_matching_messages`) and in the broker's
//! own tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use rocketmq_testkit::python_venv;
use rocketmq_testkit::standalone::Standalone;
use serde_json::Value;

/// The pinned client wheel.
const WHEEL: &str = "rocketmq-client-python==0.5.0rc2";

/// The venv's python, created on first use (shared by every test of this binary).
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        python_venv(
            &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cpp-client-venv"),
            WHEEL,
        )
    })
}

fn driver_script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("cpp")
        .join("driver.py")
}

/// A name server and a broker as processes, with the client's scratch HOME.
struct Cluster {
    servers: Standalone,
    ns: String,
}

impl Cluster {
    async fn start(extra: &str) -> Self {
        let servers = Standalone::start(&format!(
            "mappedFileSizeCommitLog=67108864\nmappedFileSizeTimerLog=1048576\n\
             flushConsumerOffsetInterval=500\n\
             messageDelayLevel=1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 2h\n\
             transactionCheckInterval=1000\ntransactionTimeOut=2000\n{extra}"
        ))
        .await;
        std::fs::create_dir_all(servers.dir().join("home")).unwrap();
        Self {
            ns: servers.namesrv_addr().to_string(),
            servers,
        }
    }

    async fn start_broker(&mut self) {
        self.servers.start_broker().await;
    }

    fn kill_broker(&mut self) {
        self.servers.kill_broker();
    }

    /// Runs one driver scenario to completion and returns its JSON result.
    async fn run(&self, args: &[&str]) -> Value {
        let child = self.spawn(args);
        let log = self.servers.broker_log();
        tokio::task::spawn_blocking(move || finish(child, &log))
            .await
            .unwrap()
    }

    /// Starts a driver scenario in the background.
    fn spawn(&self, args: &[&str]) -> std::process::Child {
        Command::new(python())
            .arg(driver_script())
            .args(args)
            .args(["--namesrv", &self.ns])
            .env("HOME", self.servers.dir().join("home"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the driver")
    }
}

/// Waits for a driver and parses its result; on failure shows its stderr and the broker log.
fn finish(child: std::process::Child, broker_log: &Path) -> Value {
    let out = child.wait_with_output().expect("driver output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let log = std::fs::read_to_string(broker_log).unwrap_or_default();
        let tail: String = log
            .lines()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        panic!(
            "driver failed ({}):\n{}\n--- broker log tail ---\n{tail}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("driver output {stdout:?}: {e}"))
}

fn list<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
}

fn keys_of(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|m| m["key"].as_str().unwrap().to_string())
        .collect()
}

/// Accepted deliveries by key (a push consumer may also record RECONSUME_LATER ones).
fn accepted(result: &Value) -> BTreeMap<String, Vec<&Value>> {
    let mut out: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for m in list(result, "received") {
        if m["outcome"].as_str() != Some("later") {
            out.entry(m["key"].as_str().unwrap().to_string())
                .or_default()
                .push(m);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpp_push_consumer_with_tag_filter_retries_and_4mib_bodies() {
    let c = Cluster::start("").await;
    let a = c
        .run(&[
            "produce",
            "--topic",
            "CppPush",
            "--count",
            "120",
            "--tag",
            "A",
            "--key-prefix",
            "a",
            "--random-body",
            "--body-size",
            "300",
            "--big-every",
            "40",
            "--big-size",
            "4194304",
            "--no-compress",
        ])
        .await;
    let b = c
        .run(&[
            "produce",
            "--topic",
            "CppPush",
            "--count",
            "60",
            "--tag",
            "B",
            "--key-prefix",
            "b",
        ])
        .await;
    assert!(list(&a, "errors").is_empty(), "{a}");
    assert!(list(&b, "errors").is_empty(), "{b}");
    let sent: BTreeMap<String, &Value> = list(&a, "sent")
        .iter()
        .map(|s| (s["key"].as_str().unwrap().to_string(), s))
        .collect();
    assert_eq!(sent.len(), 120);

    let got = c
        .run(&[
            "push",
            "--topic",
            "CppPush",
            "--group",
            "CppPushA",
            "--expr",
            "A",
            "--expect",
            "120",
            "--timeout",
            "90",
            "--reconsume-once-every",
            "15",
            "--linger",
            "2",
        ])
        .await;
    let by_key = accepted(&got);
    let missing: Vec<_> = sent.keys().filter(|k| !by_key.contains_key(*k)).collect();
    assert!(missing.is_empty(), "not consumed: {missing:?}");
    // The C++ core hands the listener a whole pulled batch and sends the whole batch back
    // when it answers RECONSUME_LATER, so messages pulled together with a refused one come
    // back too: a second delivery is allowed only through the retry topic.
    let refused: BTreeSet<String> = list(&got, "received")
        .iter()
        .filter(|m| m["outcome"] == "later")
        .map(|m| m["key"].as_str().unwrap().to_string())
        .collect();
    assert!(!refused.is_empty(), "the scenario asked for some retries");
    // Messages after a refused one in its batch may never have reached the listener before
    // going back: their only delivery is then the retry.
    for (key, deliveries) in &by_key {
        assert!(
            key.starts_with('a'),
            "tag B message {key} passed the A filter"
        );
        let attempts: Vec<u64> = {
            let mut a: Vec<u64> = deliveries
                .iter()
                .map(|m| m["reconsume"].as_u64().unwrap())
                .collect();
            a.sort_unstable();
            a
        };
        assert!(
            attempts == [0] || attempts == [1] || attempts == [0, 1],
            "{key}: accepted at attempts {attempts:?}"
        );
        if refused.contains(key) {
            assert_eq!(
                attempts,
                [1],
                "{key} was refused once, so accepted from the retry topic"
            );
        }
        for m in deliveries {
            let s = sent[key];
            assert_eq!(m["body_len"], s["body_len"], "{key} body length");
            assert_eq!(m["body_crc"], s["body_crc"], "{key} body content");
            assert_eq!(m["tags"], "A");
            if m["reconsume"] == 1 {
                assert_eq!(m["props"]["REAL_TOPIC"], "%RETRY%CppPushA", "{key}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpp_orderly_push_consumers_keep_per_key_order() {
    let c = Cluster::start("").await;
    let mut expected = BTreeMap::new();
    for shard in ["order-1", "order-2", "order-3", "order-4"] {
        let prefix = format!("{shard}-");
        let r = c
            .run(&[
                "produce",
                "--topic",
                "CppOrder",
                "--count",
                "40",
                "--sharding-key",
                shard,
                "--key-prefix",
                &prefix,
            ])
            .await;
        assert!(list(&r, "errors").is_empty(), "{r}");
        let offsets: Vec<u64> = list(&r, "sent")
            .iter()
            .map(|s| s["offset"].as_u64().unwrap())
            .collect();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "one queue per sharding key: {offsets:?}"
        );
        expected.insert(shard.to_string(), keys_of(list(&r, "sent")));
    }
    // Two members of one group consume orderly at the same time.
    let args = |instance: &'static str| {
        vec![
            "push",
            "--topic",
            "CppOrder",
            "--group",
            "CppOrderG",
            "--orderly",
            "--expect",
            "160",
            "--timeout",
            "25",
            "--instance",
            instance,
            "--hold-ms",
            "5",
            "--linger",
            "1",
        ]
    };
    let one = c.spawn(&args("one"));
    let two = c.spawn(&args("two"));
    let log = c.servers.broker_log();
    let log2 = log.clone();
    let one = tokio::task::spawn_blocking(move || finish(one, &log));
    let two = tokio::task::spawn_blocking(move || finish(two, &log2));
    let (one, two) = (one.await.unwrap(), two.await.unwrap());
    let mut all = BTreeSet::new();
    for result in [&one, &two] {
        let keys = keys_of(list(result, "received"));
        for (shard, want) in &expected {
            // Within one consumer, a shard's messages arrive in send order.
            let seen: Vec<&String> = keys
                .iter()
                .filter(|k| k.starts_with(&format!("{shard}-")))
                .collect();
            let positions: Vec<usize> = seen
                .iter()
                .map(|k| want.iter().position(|w| w == *k).unwrap())
                .collect();
            assert!(
                positions.windows(2).all(|w| w[0] < w[1]),
                "{shard} out of order: {seen:?}"
            );
        }
        all.extend(keys);
    }
    let want: BTreeSet<String> = expected.values().flatten().cloned().collect();
    assert_eq!(all, want, "every orderly message consumed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpp_broadcast_and_pull_consumers() {
    let c = Cluster::start("").await;
    // The topic exists before the broadcast members start; they begin at its end (a new
    // broadcast member has no offset and starts from the last one, as in Java).
    c.run(&[
        "produce",
        "--topic",
        "CppFan",
        "--count",
        "1",
        "--key-prefix",
        "before-",
    ])
    .await;
    let args = |instance: &'static str| {
        vec![
            "push",
            "--topic",
            "CppFan",
            "--group",
            "CppFanG",
            "--broadcast",
            "--expect",
            "60",
            "--timeout",
            "40",
            "--instance",
            instance,
        ]
    };
    let log = c.servers.broker_log();
    let (one, two) = (c.spawn(&args("one")), c.spawn(&args("two")));
    tokio::time::sleep(Duration::from_secs(4)).await;
    let r = c
        .run(&[
            "produce",
            "--topic",
            "CppFan",
            "--count",
            "50",
            "--tag",
            "T1",
            "--key-prefix",
            "f",
        ])
        .await;
    let r2 = c
        .run(&[
            "produce",
            "--topic",
            "CppFan",
            "--count",
            "10",
            "--tag",
            "T2",
            "--key-prefix",
            "g",
        ])
        .await;
    let want: BTreeSet<String> = keys_of(list(&r, "sent")).into_iter().collect();
    let everything: BTreeSet<String> = want
        .iter()
        .cloned()
        .chain(keys_of(list(&r2, "sent")))
        .collect();
    let (l1, l2) = (log.clone(), log.clone());
    let one = tokio::task::spawn_blocking(move || finish(one, &l1))
        .await
        .unwrap();
    let two = tokio::task::spawn_blocking(move || finish(two, &l2))
        .await
        .unwrap();
    for result in [one, two] {
        let got: BTreeSet<String> = keys_of(list(&result, "received")).into_iter().collect();
        assert_eq!(got, everything, "each broadcast member gets every message");
    }
    let pulled = c
        .run(&[
            "pull",
            "--topic",
            "CppFan",
            "--group",
            "CppPullG",
            "--expr",
            "T1",
            "--expect",
            "50",
            "--timeout",
            "30",
        ])
        .await;
    let got: BTreeSet<String> = keys_of(list(&pulled, "received"))
        .into_iter()
        .filter(|k| !k.starts_with("before-"))
        .collect();
    assert_eq!(got, want, "pull with a tag filter: {pulled}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpp_delay_levels_and_timer_messages_arrive_on_time() {
    let c = Cluster::start("").await;
    let level = c
        .run(&[
            "produce",
            "--topic",
            "CppLater",
            "--count",
            "5",
            "--delay-level",
            "3",
            "--key-prefix",
            "level-",
        ])
        .await;
    let sec = c
        .run(&[
            "produce",
            "--topic",
            "CppLater",
            "--count",
            "5",
            "--prop",
            "TIMER_DELAY_SEC=3",
            "--key-prefix",
            "sec-",
        ])
        .await;
    let at = c
        .run(&[
            "produce",
            "--topic",
            "CppLater",
            "--count",
            "5",
            "--prop",
            "TIMER_DELIVER_MS={now_ms+2000}",
            "--key-prefix",
            "abs-",
        ])
        .await;
    let ms = c
        .run(&[
            "produce",
            "--topic",
            "CppLater",
            "--count",
            "5",
            "--prop",
            "TIMER_DELAY_MS=4500",
            "--key-prefix",
            "ms-",
        ])
        .await;
    let legacy = c
        .run(&[
            "produce",
            "--topic",
            "CppLater",
            "--count",
            "5",
            "--prop",
            "__STARTDELIVERTIME={now_ms+3000}",
            "--key-prefix",
            "legacy-",
        ])
        .await;
    for r in [&level, &sec, &at, &ms, &legacy] {
        assert!(list(r, "errors").is_empty(), "{r}");
    }
    let got = c
        .run(&[
            "push",
            "--topic",
            "CppLater",
            "--group",
            "CppLaterG",
            "--expect",
            "25",
            "--timeout",
            "40",
        ])
        .await;
    let by_key = accepted(&got);
    assert_eq!(by_key.len(), 25, "{got}");
    for (key, deliveries) in by_key {
        let m = deliveries[0];
        let born = m["born_ts"].as_i64().unwrap();
        let stored = m["store_ts"].as_i64().unwrap();
        let (min, max) = match key.split('-').next().unwrap() {
            "level" => (1_000, 2_500),
            "sec" => (3_000, 4_500),
            "abs" => (2_000, 3_500),
            "legacy" => (3_000, 4_500),
            _ => (4_500, 6_000),
        };
        let waited = stored - born;
        assert!(
            (min..=max).contains(&waited),
            "{key}: became visible {waited} ms after sending, expected {min}..{max}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpp_transactions_commit_rollback_and_check_back() {
    let c = Cluster::start("").await;
    let committed = c
        .run(&[
            "tx",
            "--topic",
            "CppTx",
            "--group",
            "CppTxP1",
            "--count",
            "5",
            "--local",
            "commit",
            "--key-prefix",
            "commit-",
        ])
        .await;
    let rolled = c
        .run(&[
            "tx",
            "--topic",
            "CppTx",
            "--group",
            "CppTxP2",
            "--count",
            "5",
            "--local",
            "rollback",
            "--key-prefix",
            "rollback-",
        ])
        .await;
    let checked_commit = c
        .run(&[
            "tx",
            "--topic",
            "CppTx",
            "--group",
            "CppTxP3",
            "--count",
            "5",
            "--local",
            "unknown",
            "--check",
            "commit",
            "--key-prefix",
            "checked-",
            "--wait",
            "20",
            "--expect-checks",
            "5",
        ])
        .await;
    let checked_rollback = c
        .run(&[
            "tx",
            "--topic",
            "CppTx",
            "--group",
            "CppTxP4",
            "--count",
            "5",
            "--local",
            "unknown",
            "--check",
            "rollback",
            "--key-prefix",
            "unchecked-",
            "--wait",
            "20",
            "--expect-checks",
            "5",
        ])
        .await;
    for r in [&committed, &rolled, &checked_commit, &checked_rollback] {
        assert!(list(r, "errors").is_empty(), "{r}");
        assert_eq!(list(r, "sent").len(), 5, "{r}");
    }
    for r in [&checked_commit, &checked_rollback] {
        let checked: BTreeSet<String> = keys_of(list(r, "checks")).into_iter().collect();
        assert_eq!(checked.len(), 5, "each open transaction is checked: {r}");
    }
    let got = c
        .run(&[
            "push",
            "--topic",
            "CppTx",
            "--group",
            "CppTxG",
            "--expect",
            "10",
            "--timeout",
            "30",
            "--linger",
            "4",
        ])
        .await;
    let keys: BTreeSet<String> = accepted(&got).into_keys().collect();
    let want: BTreeSet<String> = keys_of(list(&committed, "sent"))
        .into_iter()
        .chain(keys_of(list(&checked_commit, "sent")))
        .collect();
    assert_eq!(keys, want, "only committed transactions are consumed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpp_acknowledged_messages_survive_broker_sigkill_under_sync_flush() {
    let mut c = Cluster::start("flushDiskType=SYNC_FLUSH\n").await;
    let producer = c.spawn(&[
        "produce",
        "--topic",
        "CppCrash",
        "--count",
        "1500",
        "--interval-ms",
        "2",
        "--key-prefix",
        "crash-",
    ]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    c.kill_broker();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    c.start_broker().await;
    let log = c.servers.broker_log();
    let produced = tokio::task::spawn_blocking(move || finish(producer, &log))
        .await
        .unwrap();
    let acked: BTreeSet<String> = keys_of(list(&produced, "sent")).into_iter().collect();
    assert!(
        acked.len() > 500,
        "the producer kept going after the restart: {}",
        acked.len()
    );
    let got = c
        .run(&[
            "push",
            "--topic",
            "CppCrash",
            "--group",
            "CppCrashG",
            "--expect",
            &acked.len().to_string(),
            "--timeout",
            "60",
        ])
        .await;
    let consumed: BTreeSet<String> = accepted(&got).into_keys().collect();
    let lost: Vec<&String> = acked.difference(&consumed).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged messages lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}
