//! Helpers the benchmarks share: a local name server and broker as child processes, and
//! waiting for a broker to serve.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rocketmq_common::protocol::{RemotingCommand, RequestCode};
use rocketmq_common::remoting::RemotingClient;
use rocketmq_common::route::ClusterInfo;

/// Request timeout of the benchmarks.
pub const T: Duration = Duration::from_secs(10);

/// A local name server and broker, killed (and their store removed) on drop.
pub struct Local {
    children: Vec<Child>,
    /// The broker's pid (memory sampling).
    pub broker_pid: u32,
    /// The store directory.
    pub store: PathBuf,
    /// The broker's address.
    pub broker: String,
}

impl Drop for Local {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.store);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn sibling(name: &str) -> PathBuf {
    let bin = std::env::current_exe()
        .expect("current exe")
        .with_file_name(name);
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo build --release --bins) or pass -b/-n",
        bin.display()
    );
    bin
}

/// Starts `mqnamesrv` and `mqbroker` (siblings of this binary) with `extra` broker.conf
/// lines.
pub fn start_local(store_dir: Option<&Path>, extra: &str) -> Local {
    let (ns_port, broker_port) = (free_port(), free_port());
    let store = store_dir.map(Path::to_path_buf).unwrap_or_else(|| {
        std::env::temp_dir().join(format!("mqbench-store-{}", std::process::id()))
    });
    std::fs::create_dir_all(&store).expect("create store dir");
    let namesrv = Command::new(sibling("mqnamesrv"))
        .args([
            "--bindAddress",
            "127.0.0.1",
            "--listenPort",
            &ns_port.to_string(),
            "--metricsPort",
            "0",
        ])
        .arg("--kvConfigPath")
        .arg(store.join("kv.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mqnamesrv");
    let conf = store.join("broker.conf");
    std::fs::File::create(&conf)
        .and_then(|mut f| {
            writeln!(
                f,
                "brokerIP1=127.0.0.1\nbindAddress=127.0.0.1\nlistenPort={broker_port}\nnamesrvAddr=127.0.0.1:{ns_port}\n\
                 storePathRootDir={}\nmetricsPort=0\n{extra}",
                store.join("data").display()
            )
        })
        .expect("write broker.conf");
    let broker = Command::new(sibling("mqbroker"))
        .args(["-c", conf.to_str().expect("utf-8 path")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mqbroker");
    let broker_pid = broker.id();
    Local {
        children: vec![broker, namesrv],
        broker_pid,
        store,
        broker: format!("127.0.0.1:{broker_port}"),
    }
}

/// Waits until the broker at `addr` answers.
pub async fn wait_until_serving(client: &RemotingClient, addr: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let probe = RemotingCommand::bare_request(RequestCode::GET_ALL_TOPIC_CONFIG);
        if client
            .invoke_ok(addr, probe, Duration::from_secs(1))
            .await
            .is_ok()
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "broker at {addr} did not come up"
        );
        client.close(addr);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The first master of the first cluster a name server knows.
pub async fn broker_from_namesrv(client: &RemotingClient, namesrv: &str) -> String {
    let resp = client
        .invoke_ok(
            namesrv,
            RemotingCommand::bare_request(RequestCode::GET_BROKER_CLUSTER_INFO),
            T,
        )
        .await
        .expect("cluster info from the name server");
    let info: ClusterInfo = serde_json::from_slice(&resp.body).expect("cluster info body");
    info.broker_addr_table
        .values()
        .find_map(|b| b.broker_addrs.get(&0).cloned())
        .expect("the name server knows no master broker")
}
