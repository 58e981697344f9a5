//! A name server and one broker as real processes (`mqnamesrv`, `mqbroker`) in a
//! temporary directory: what client compatibility tests need when the broker must be killed
//! with SIGKILL and restarted on the same store.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rocketmq_common::protocol::{RemotingCommand, RequestCode};
use rocketmq_common::remoting::{ClientConfig, RemotingClient};

use crate::{ServerProcess, binary, free_port, free_port_pair, wait_until};

/// The processes and their files.
pub struct Standalone {
    dir: tempfile::TempDir,
    ns: String,
    broker_addr: String,
    conf: PathBuf,
    _namesrv: ServerProcess,
    broker: Option<ServerProcess>,
}

impl Standalone {
    /// Starts both and waits until the broker serves; `broker_extra` is appended to the
    /// broker's config (`brokerName=broker-a`, loopback addresses, a store in the
    /// directory, no metrics port).
    pub async fn start(broker_extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let ns_port = free_port();
        let broker_port = free_port_pair();
        let namesrv = ServerProcess::spawn(
            &binary("rocketmq-namesrv", "mqnamesrv"),
            &[
                "--bindAddress",
                "127.0.0.1",
                "--listenPort",
                &ns_port.to_string(),
                "--metricsPort",
                "0",
                "--kvConfigPath",
                dir.path().join("kv.json").to_str().expect("utf-8 path"),
            ],
            Some(&dir.path().join("namesrv.log")),
        );
        let ns = format!("127.0.0.1:{ns_port}");
        let conf = dir.path().join("broker.conf");
        std::fs::write(
            &conf,
            format!(
                "brokerName=broker-a\nbindAddress=127.0.0.1\nbrokerIP1=127.0.0.1\n\
                 listenPort={broker_port}\nhaListenPort={}\nnamesrvAddr={ns}\n\
                 storePathRootDir={}\nmetricsPort=0\n{broker_extra}",
                broker_port + 1,
                dir.path().join("store").display()
            ),
        )
        .expect("write the broker config");
        let mut this = Self {
            ns,
            broker_addr: format!("127.0.0.1:{broker_port}"),
            conf,
            _namesrv: namesrv,
            broker: None,
            dir,
        };
        this.start_broker().await;
        this
    }

    /// The directory holding configs, logs and the store.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The name server's address.
    pub fn namesrv_addr(&self) -> &str {
        &self.ns
    }

    /// The broker's address.
    pub fn broker_addr(&self) -> &str {
        &self.broker_addr
    }

    /// The broker's log file.
    pub fn broker_log(&self) -> PathBuf {
        self.dir.path().join("broker.log")
    }

    /// Starts the broker (again, on the same store) and waits until it serves.
    pub async fn start_broker(&mut self) {
        self.broker = Some(ServerProcess::spawn(
            &binary("rocketmq-broker", "mqbroker"),
            &["-c", self.conf.to_str().expect("utf-8 path")],
            Some(&self.broker_log()),
        ));
        let client = RemotingClient::new(ClientConfig::default());
        let addr = self.broker_addr.clone();
        wait_until("the broker to serve", Duration::from_secs(30), || {
            let client = client.clone();
            let addr = addr.clone();
            async move {
                let probe = RemotingCommand::bare_request(RequestCode::GET_ALL_TOPIC_CONFIG);
                let ok = client
                    .invoke_ok(&addr, probe, Duration::from_secs(1))
                    .await
                    .is_ok();
                if !ok {
                    client.close(&addr);
                }
                ok.then_some(())
            }
        })
        .await;
    }

    /// Kills the broker with SIGKILL.
    pub fn kill_broker(&mut self) {
        if let Some(mut b) = self.broker.take() {
            b.kill9();
        }
    }
}
