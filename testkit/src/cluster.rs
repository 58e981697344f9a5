//! A controller-mode cluster of real processes on loopback: controllers, one name server
//! and the brokers of one group, each with its own directory and log file, restartable
//! and killable one by one.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rocketmq_client::ControllerClient;
use rocketmq_common::controller::SyncStateSet;
use rocketmq_common::protocol::headers::controller::{
    GetReplicaInfoRequestHeader, GetReplicaInfoResponseHeader,
};
use rocketmq_common::protocol::{RemotingCommand, RequestCode};
use rocketmq_common::remoting::{ClientConfig, RemotingClient};

use crate::relay::Relay;
use crate::{ServerProcess, binary, free_port, free_port_pair, wait_until};

/// How to build a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Controllers.
    pub controllers: usize,
    /// Brokers of the group.
    pub brokers: usize,
    /// The group's `brokerName`.
    pub broker_name: String,
    /// More groups of `brokers` brokers each, registered with the same controllers and name
    /// server; their brokers follow the first group's in the slot numbering.
    pub extra_groups: Vec<String>,
    /// Appended to every broker's config.
    pub broker_extra: String,
    /// Appended to every controller's config.
    pub controller_extra: String,
    /// Each broker reaches each controller through its own [`Relay`], so a broker can be
    /// partitioned from the controllers.
    pub relay_controllers: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            controllers: 3,
            brokers: 3,
            broker_name: BROKER_NAME.to_string(),
            extra_groups: Vec::new(),
            broker_extra: String::new(),
            controller_extra: String::new(),
            relay_controllers: false,
        }
    }
}

/// The group's name unless [`ClusterOptions::broker_name`] says otherwise.
pub const BROKER_NAME: &str = "broker-a";

/// One process slot: how to start it again, and the running process if any.
struct Slot {
    program: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    process: Option<ServerProcess>,
}

impl Slot {
    fn start(&mut self) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.process = Some(ServerProcess::spawn(&self.program, &args, Some(&self.log)));
    }
}

/// The cluster.
pub struct ControllerCluster {
    dir: PathBuf,
    controllers: Vec<Slot>,
    controller_ports: Vec<u16>,
    _namesrv: Slot,
    namesrv_port: u16,
    brokers: Vec<Slot>,
    broker_ports: Vec<u16>,
    relays: Vec<Vec<Relay>>,
    client: ControllerClient,
    broker_name: String,
}

impl ControllerCluster {
    /// Starts `controllers` controllers, a name server and `brokers` brokers under `dir`.
    /// `broker_extra` is appended to every broker's config.
    pub async fn start(dir: &Path, controllers: usize, brokers: usize, broker_extra: &str) -> Self {
        Self::start_with(
            dir,
            ClusterOptions {
                controllers,
                brokers,
                broker_extra: broker_extra.to_string(),
                ..ClusterOptions::default()
            },
        )
        .await
    }

    /// Starts a cluster as `options` say.
    pub async fn start_with(dir: &Path, options: ClusterOptions) -> Self {
        let ClusterOptions {
            controllers,
            brokers,
            broker_name,
            extra_groups,
            broker_extra,
            controller_extra,
            relay_controllers,
        } = options;
        std::fs::create_dir_all(dir).expect("create the cluster directory");
        let controller_ports: Vec<u16> = (0..controllers).map(|_| free_port()).collect();
        let peers = controller_ports
            .iter()
            .enumerate()
            .map(|(i, p)| format!("n{i}-127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(";");
        let controller_bin = binary("rocketmq-controller", "mqcontroller");
        let mut controller_slots = Vec::new();
        for i in 0..controllers {
            let conf = dir.join(format!("controller{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "controllerDLegerPeers={peers}\ncontrollerDLegerSelfId=n{i}\n\
                     controllerStorePath={}\nmetricsPort=0\nbindAddress=127.0.0.1\n\
                     scanNotActiveBrokerInterval=300\nscanInactiveMasterInterval=1000\n\
                     controllerRaftHeartbeatIntervalMs=100\ncontrollerRaftElectionTimeoutMs=600\n\
                     {controller_extra}",
                    dir.join(format!("controller{i}")).display()
                ),
            )
            .expect("write controller config");
            let mut slot = Slot {
                program: controller_bin.clone(),
                args: vec!["-c".into(), conf.display().to_string()],
                log: dir.join(format!("controller{i}.log")),
                process: None,
            };
            slot.start();
            controller_slots.push(slot);
        }
        let namesrv_port = free_port();
        let mut namesrv = Slot {
            program: binary("rocketmq-namesrv", "mqnamesrv"),
            args: [
                "--bindAddress",
                "127.0.0.1",
                "--listenPort",
                &namesrv_port.to_string(),
                "--metricsPort",
                "0",
                "--kvConfigPath",
                dir.join("kv.json").to_str().expect("utf-8 path"),
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            log: dir.join("namesrv.log"),
            process: None,
        };
        namesrv.start();
        let direct: Vec<String> = controller_ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let mut relays = Vec::new();
        let broker_bin = binary("rocketmq-broker", "mqbroker");
        let mut broker_slots = Vec::new();
        let mut broker_ports = Vec::new();
        let groups: Vec<&str> = std::iter::once(broker_name.as_str())
            .chain(extra_groups.iter().map(String::as_str))
            .collect();
        let slots = groups
            .iter()
            .flat_map(|group| std::iter::repeat_n(*group, brokers));
        for (i, group) in slots.enumerate() {
            let controller_addr = if relay_controllers {
                let mut mine = Vec::new();
                for target in &direct {
                    mine.push(Relay::start(target).await);
                }
                let addrs = mine
                    .iter()
                    .map(|r| r.addr().to_string())
                    .collect::<Vec<_>>()
                    .join(";");
                relays.push(mine);
                addrs
            } else {
                direct.join(";")
            };
            let port = free_port_pair();
            broker_ports.push(port);
            let conf = dir.join(format!("broker{i}.conf"));
            std::fs::write(
                &conf,
                format!(
                    "brokerName={group}\nbindAddress=127.0.0.1\nbrokerIP1=127.0.0.1\n\
                     listenPort={port}\nhaListenPort={}\nnamesrvAddr=127.0.0.1:{namesrv_port}\n\
                     storePathRootDir={}\nmetricsPort=0\nenableControllerMode=true\n\
                     controllerAddr={controller_addr}\n{broker_extra}",
                    port + 1,
                    dir.join(format!("broker{i}")).display()
                ),
            )
            .expect("write broker config");
            let mut slot = Slot {
                program: broker_bin.clone(),
                args: vec!["-c".into(), conf.display().to_string()],
                log: dir.join(format!("broker{i}.log")),
                process: None,
            };
            slot.start();
            broker_slots.push(slot);
        }
        let client = ControllerClient::new(
            RemotingClient::new(ClientConfig::default()),
            controller_ports
                .iter()
                .map(|p| format!("127.0.0.1:{p}"))
                .collect(),
            Duration::from_secs(2),
        );
        Self {
            dir: dir.to_path_buf(),
            controllers: controller_slots,
            controller_ports,
            _namesrv: namesrv,
            namesrv_port,
            brokers: broker_slots,
            broker_ports,
            relays,
            client,
            broker_name,
        }
    }

    /// The directory holding every process's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The controller client.
    pub fn controller(&self) -> &ControllerClient {
        &self.client
    }

    /// The name server's address.
    pub fn namesrv_addr(&self) -> String {
        format!("127.0.0.1:{}", self.namesrv_port)
    }

    /// Broker `i`'s Remoting address.
    pub fn broker_addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.broker_ports[i])
    }

    /// Which broker slot serves `addr`.
    pub fn broker_index(&self, addr: &str) -> Option<usize> {
        (0..self.brokers.len()).find(|i| self.broker_addr(*i) == addr)
    }

    /// Controller `i`'s address.
    pub fn controller_addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.controller_ports[i])
    }

    /// Number of broker slots.
    pub fn broker_count(&self) -> usize {
        self.brokers.len()
    }

    /// Broker `i`'s process id, if it runs.
    pub fn broker_pid(&self, i: usize) -> Option<u32> {
        self.brokers[i].process.as_ref().map(ServerProcess::pid)
    }

    /// SIGKILLs broker `i`.
    pub fn kill_broker(&mut self, i: usize) {
        if let Some(mut p) = self.brokers[i].process.take() {
            p.kill9();
        }
    }

    /// Stops broker `i` with SIGTERM and waits for its clean exit (what the kubelet does
    /// to a deleted pod).
    pub fn stop_broker(&mut self, i: usize) {
        if let Some(mut p) = self.brokers[i].process.take() {
            p.terminate();
        }
    }

    /// Starts broker `i` again (same config and store).
    pub fn start_broker(&mut self, i: usize) {
        self.brokers[i].start();
    }

    /// Partitions broker `i` from every controller (needs `relay_controllers`).
    pub fn partition_from_controllers(&self, i: usize) {
        for r in &self.relays[i] {
            r.cut();
        }
    }

    /// Ends the partition of broker `i`.
    pub fn heal(&self, i: usize) {
        for r in &self.relays[i] {
            r.heal();
        }
    }

    /// SIGKILLs controller `i`.
    pub fn kill_controller(&mut self, i: usize) {
        if let Some(mut p) = self.controllers[i].process.take() {
            p.kill9();
        }
    }

    /// Starts controller `i` again.
    pub fn start_controller(&mut self, i: usize) {
        self.controllers[i].start();
    }

    /// The index of the controller that leads, by asking all of them.
    pub async fn controller_leader(&self) -> Option<usize> {
        let leader = self.client.find_leader().await.ok()?;
        (0..self.controllers.len()).find(|i| self.controller_addr(*i) == leader)
    }

    /// The group's master as the controller sees it: (address, epoch, SyncStateSet).
    pub async fn master(&self) -> Option<(String, i32, SyncStateSet)> {
        master_of(&self.client, &self.broker_name).await
    }

    /// The group's `brokerName`.
    pub fn broker_name(&self) -> &str {
        &self.broker_name
    }

    /// Broker `i`'s Remoting port.
    pub fn broker_port(&self, i: usize) -> u16 {
        self.broker_ports[i]
    }

    /// A handle that asks the controllers for the master from another task.
    pub fn master_probe(&self) -> MasterProbe {
        MasterProbe(
            ControllerClient::new(
                RemotingClient::new(ClientConfig::default()),
                self.client.addresses(),
                Duration::from_secs(1),
            ),
            self.broker_name.clone(),
        )
    }

    /// Waits until a master exists whose SyncStateSet has `members` replicas.
    pub async fn wait_for_master(&self, members: usize, limit: Duration) -> (String, i32) {
        wait_until(
            &format!("a master with {members} in-sync replicas"),
            limit,
            || async {
                let (addr, epoch, set) = self.master().await?;
                (set.sync_state_set.len() >= members).then_some((addr, epoch))
            },
        )
        .await
    }
}

/// Asks the controllers for the master (see [`ControllerCluster::master_probe`]).
pub struct MasterProbe(ControllerClient, String);

impl MasterProbe {
    /// A probe of the controllers at `addresses` (group `broker-a`), for clusters this
    /// harness did not start (containers).
    pub fn new(addresses: Vec<String>) -> Self {
        MasterProbe(
            ControllerClient::new(
                RemotingClient::new(ClientConfig::default()),
                addresses,
                Duration::from_secs(1),
            ),
            BROKER_NAME.to_string(),
        )
    }

    /// The group's master: (address, epoch, SyncStateSet).
    pub async fn master(&self) -> Option<(String, i32, SyncStateSet)> {
        master_of(&self.0, &self.1).await
    }
}

async fn master_of(
    client: &ControllerClient,
    broker_name: &str,
) -> Option<(String, i32, SyncStateSet)> {
    let resp = client
        .invoke(RemotingCommand::request(
            RequestCode::CONTROLLER_GET_REPLICA_INFO,
            &GetReplicaInfoRequestHeader {
                broker_name: broker_name.into(),
            },
        ))
        .await
        .ok()?;
    if resp.code != 0 {
        return None;
    }
    let h: GetReplicaInfoResponseHeader = resp.decode_header().ok()?;
    let set: SyncStateSet = rocketmq_common::json::from_slice_lenient(&resp.body).ok()?;
    Some((h.master_address?, h.master_epoch?, set))
}
