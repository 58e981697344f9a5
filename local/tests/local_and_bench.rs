//! `rocketmq-local` as a user starts it, then `mqbench produce` against it: the README's
//! first minute, end to end.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rocketmq_common::protocol::{RemotingCommand, RequestCode};
use rocketmq_common::remoting::{ClientConfig, RemotingClient};
use rocketmq_testkit::free_port;

#[test]
fn local_cluster_serves_mqbench_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (ns_port, broker_port) = (free_port(), free_port());
    let mut local = Command::new(env!("CARGO_BIN_EXE_rocketmq-local"))
        .arg("--dir")
        .arg(dir.path())
        .args([
            "--namesrv-port",
            &ns_port.to_string(),
            "--broker-port",
            &broker_port.to_string(),
        ])
        .args([
            "--namesrv-metrics-port",
            "0",
            "--broker-metrics-port",
            "0",
            "--proxy-metrics-port",
            "0",
            "--grpc-port",
            "0",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let broker = format!("127.0.0.1:{broker_port}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = RemotingClient::new(ClientConfig::default());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let probe = RemotingCommand::bare_request(RequestCode::GET_ALL_TOPIC_CONFIG);
            if client
                .invoke_ok(&broker, probe, Duration::from_secs(1))
                .await
                .is_ok()
            {
                break;
            }
            assert!(Instant::now() < deadline, "rocketmq-local did not come up");
            client.close(&broker);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });

    let out = Command::new(rocketmq_testkit::binary("rocketmq-tools", "mqbench"))
        .args([
            "produce",
            "-n",
            &format!("127.0.0.1:{ns_port}"),
            "-d",
            "1",
            "-c",
            "4",
            "-s",
            "256",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "mqbench failed: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sent: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("sent"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no 'sent' line in:\n{text}"));
    assert!(sent > 0, "{text}");
    assert!(text.contains(" 0 errors"), "{text}");
    let consumed: u64 = text
        .lines()
        .find(|l| l.contains("end-to-end"))
        .and_then(|l| l.split('(').nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no end-to-end line in:\n{text}"));
    assert_eq!(
        consumed, sent,
        "the benchmark consumer must see every message sent:\n{text}"
    );

    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(local.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = local.try_wait().unwrap() {
            assert!(status.success(), "rocketmq-local exited with {status}");
            break;
        }
        assert!(Instant::now() < deadline, "rocketmq-local ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}
