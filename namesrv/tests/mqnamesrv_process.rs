//! The `mqnamesrv` binary as a user runs it: config file and flags, bad config, metrics,
//! and a clean exit on SIGTERM.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rocketmq_common::protocol::headers::namesrv::GetRouteInfoRequestHeader;
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{ClientConfig, RemotingClient};
use rocketmq_testkit::free_port;

const BIN: &str = env!("CARGO_BIN_EXE_mqnamesrv");

#[test]
fn print_config_merges_file_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("namesrv.conf");
    std::fs::write(
        &conf,
        "listenPort=19999\norderMessageEnable=true\nscanNotActiveBrokerInterval=2000\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["-c", conf.to_str().unwrap(), "-p", "--listenPort", "18888"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("listenPort=18888\n"),
        "flag must override the file:\n{text}"
    );
    assert!(text.contains("orderMessageEnable=true\n"), "{text}");
    assert!(
        text.contains("scanNotActiveBrokerInterval=2000\n"),
        "{text}"
    );
}

#[test]
fn bad_config_is_a_clear_error() {
    let out = Command::new(BIN)
        .args(["-c", "/nonexistent/namesrv.conf"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/namesrv.conf"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("namesrv.conf");
    std::fs::write(&conf, "listenPort=not-a-port\n").unwrap();
    let out = Command::new(BIN)
        .args(["-c", conf.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("listenPort") && err.contains("not-a-port"),
        "{err}"
    );
}

fn http_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    stream.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serves_routes_and_metrics_and_exits_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (port, metrics) = (free_port(), free_port());
    let mut child = Command::new(BIN)
        .args([
            "--bindAddress",
            "127.0.0.1",
            "--listenPort",
            &port.to_string(),
        ])
        .args(["--metricsPort", &metrics.to_string()])
        .arg("--kvConfigPath")
        .arg(dir.path().join("kv.json"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("127.0.0.1:{port}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = RemotingClient::new(ClientConfig::default());
        let request = RemotingCommand::request(
            RequestCode::GET_ROUTEINFO_BY_TOPIC,
            &GetRouteInfoRequestHeader {
                topic: "Nope".into(),
                accept_standard_json_only: None,
            },
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match client
                .invoke(&addr, request.clone(), Duration::from_secs(1))
                .await
            {
                Ok(resp) => {
                    assert_eq!(resp.code, ResponseCode::TopicNotExist.as_i32());
                    break;
                }
                Err(e) => {
                    assert!(Instant::now() < deadline, "mqnamesrv did not come up: {e}");
                    client.close(&addr);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    let body = http_get(metrics, "/metrics");
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(
        body.contains(
            "rocketmq_namesrv_remoting_requests_total{request_code=\"105\",response_code=\"17\"} 1"
        ),
        "{body}"
    );
    assert!(http_get(metrics, "/healthz").contains("ok"));

    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "mqnamesrv did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(stdout.contains("boot success"), "{stdout}");
}
