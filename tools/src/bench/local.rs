//! Helpers the benchmarks share: a local name server and broker as child processes, and
//! waiting for a broker to serve.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rocketmq_client::MqClient;
use rocketmq_common::route::TopicConfig;

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
    /// The name server's address.
    pub namesrv: String,
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

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// Where a child server's stderr goes: `$MQBENCH_LOG_DIR/<name>.log` when that is set (to
/// see why a run misbehaved), else nowhere.
pub fn child_stderr(name: &str) -> Stdio {
    match std::env::var_os("MQBENCH_LOG_DIR") {
        Some(dir) => std::fs::File::create(std::path::Path::new(&dir).join(format!("{name}.log")))
            .map_or_else(|_| Stdio::null(), Stdio::from),
        None => Stdio::null(),
    }
}

/// A binary built beside this one.
pub fn sibling(name: &str) -> PathBuf {
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
        .stderr(child_stderr("mqbroker"))
        .spawn()
        .expect("start mqbroker");
    let broker_pid = broker.id();
    Local {
        children: vec![broker, namesrv],
        broker_pid,
        store,
        broker: format!("127.0.0.1:{broker_port}"),
        namesrv: format!("127.0.0.1:{ns_port}"),
    }
}

/// Waits until the broker at `addr` answers (at most 30 s).
pub async fn wait_until_serving(client: &MqClient, addr: &str) {
    if let Err(e) = client
        .wait_until_serving(addr, Duration::from_secs(30))
        .await
    {
        panic!("broker at {addr} did not come up: {e}");
    }
}

/// The first master of the first cluster a name server knows.
pub async fn broker_from_namesrv(namesrv: &str) -> String {
    MqClient::new(namesrv, T)
        .expect("name server address")
        .first_master()
        .await
        .expect("a master broker from the name server")
}

/// Creates `topic` with `queues` read and write queues on `broker`.
pub async fn create_topic(client: &MqClient, broker: &str, topic: &str, queues: i32) {
    client
        .create_topic(broker, &TopicConfig::new(topic, queues))
        .await
        .unwrap_or_else(|e| panic!("create topic {topic}: {e}"));
}

/// The max offsets of `topic`'s queues `0..queues` on `broker`.
pub async fn max_offsets(
    client: &MqClient,
    broker: &str,
    topic: &str,
    queues: i32,
) -> BTreeMap<i32, i64> {
    let mut out = BTreeMap::new();
    for q in 0..queues {
        let offset = client
            .queue_offset(broker, topic, q, true)
            .await
            .unwrap_or_else(|e| panic!("max offset of {topic}/{q}: {e}"));
        out.insert(q, offset);
    }
    out
}
