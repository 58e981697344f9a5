//! RocketMQ 5 compatibility with the official Python SDK (PyPI `rocketmq-python-client`, a
//! client we did not write) against `mqproxy --mode local` (name server, broker and proxy
//! in one process): a producer, a SimpleConsumer that receives, acks and changes an
//! invisible duration, and a PushConsumer whose failed first delivery comes again.
//!
//! The harness creates a Python virtual environment for the SDK (once per target
//! directory) and runs `e2e/python/driver.py`, which prints one JSON result per scenario.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use rocketmq_client::MqClient;
use rocketmq_common::route::TopicConfig;
use rocketmq_testkit::{ServerProcess, binary, free_port, python_venv, wait_until};
use serde_json::Value;

/// The pinned SDK.
const SDK: &str = "rocketmq-python-client==5.1.2";

fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        python_venv(
            &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python-sdk-venv"),
            SDK,
        )
    })
}

fn drive(
    scenario: &str,
    endpoint: &str,
    topic: &str,
    group: &str,
    count: usize,
    home: &Path,
) -> Value {
    let out = Command::new(python())
        .arg(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("python")
                .join("driver.py"),
        )
        .args([scenario, endpoint, topic, group, &count.to_string()])
        // The SDK writes its logs under $HOME/logs.
        .env("HOME", home)
        .output()
        .expect("run the Python driver");
    assert!(
        out.status.success(),
        "{scenario} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{scenario} printed no JSON ({e}): {line}"))
}

fn keys(n: usize) -> Vec<Value> {
    (0..n).map(|i| Value::from(format!("k{i}"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_python_sdk_produces_and_consumes_through_local_mode() {
    let python = python().to_path_buf();
    assert!(python.exists());
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let (ns_port, broker_port, grpc_port) = (free_port(), free_port(), free_port());
    let _proxy = ServerProcess::spawn(
        &binary("rocketmq-proxy", "mqproxy"),
        &[
            "--mode",
            "local",
            "--dir",
            dir.path().join("data").to_str().unwrap(),
            "--namesrvPort",
            &ns_port.to_string(),
            "--brokerPort",
            &broker_port.to_string(),
            "--grpcServerPort",
            &grpc_port.to_string(),
            "--bindAddress",
            "127.0.0.1",
        ],
        Some(&dir.path().join("mqproxy.log")),
    );
    let admin = MqClient::new(&format!("127.0.0.1:{ns_port}"), Duration::from_secs(3)).unwrap();
    let broker = format!("127.0.0.1:{broker_port}");
    wait_until("local mode to serve", Duration::from_secs(30), || async {
        admin
            .cluster_info()
            .await
            .ok()
            .filter(|c| !c.broker_addr_table.is_empty())
    })
    .await;
    for topic in ["PyTopic", "PyPush"] {
        admin
            .create_topic(&broker, &TopicConfig::new(topic, 4))
            .await
            .unwrap();
    }
    for topic in ["PyTopic", "PyPush"] {
        admin
            .wait_for_route(topic, Duration::from_secs(30))
            .await
            .unwrap();
    }
    let endpoint = format!("127.0.0.1:{grpc_port}");
    let run = |scenario: &'static str, topic: &'static str, group: &'static str| {
        let (endpoint, home) = (endpoint.clone(), home.clone());
        tokio::task::spawn_blocking(move || drive(scenario, &endpoint, topic, group, 10, &home))
    };

    let sent = run("produce", "PyTopic", "-").await.unwrap();
    assert_eq!(sent["sent"], 10, "{sent}");
    let ids = sent["ids"].as_array().unwrap();
    assert!(ids.iter().all(|id| !id.as_str().unwrap().is_empty()));

    let simple = run("simple", "PyTopic", "PySimpleGroup").await.unwrap();
    assert_eq!(simple["keys"], Value::from(keys(10)), "{simple}");
    assert_eq!(simple["bodies_ok"], true, "{simple}");
    assert_eq!(simple["tags"], serde_json::json!(["TagA"]));
    assert_eq!(simple["origin"], serde_json::json!(["python"]));
    assert_eq!(
        simple["k0_attempt"], 2,
        "k0 came back as a second attempt: {simple}"
    );

    let sent = run("produce", "PyPush", "-").await.unwrap();
    assert_eq!(sent["sent"], 10, "{sent}");
    let push = run("push", "PyPush", "PyPushGroup").await.unwrap();
    assert_eq!(push["keys"], Value::from(keys(10)), "{push}");
    assert!(
        push["k0_deliveries"].as_i64().unwrap() >= 2,
        "a failed delivery comes again: {push}"
    );
}
