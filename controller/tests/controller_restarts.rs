//! Crash safety of the controller group with real `mqcontroller` processes: 20 rounds of
//! SIGKILL (a random controller, the leader, or all three at once) and restart, with a
//! state change committed every round. After every round the leader's answers match a
//! model of every change ever acknowledged: broker ids, the master, the epochs and the
//! SyncStateSet survive any crash through the log and snapshots on disk.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rocketmq_client::ControllerClient;
use rocketmq_common::controller::SyncStateSet;
use rocketmq_common::protocol::headers::controller::*;
use rocketmq_common::protocol::headers::namesrv::BrokerHeartbeatRequestHeader;
use rocketmq_common::protocol::{RemotingCommand, RequestCode};
use rocketmq_common::remoting::{ClientConfig, RemotingClient};
use rocketmq_testkit::{ServerProcess, binary, free_port, wait_until};

const GROUP: &str = "broker-r";
const WAIT: Duration = Duration::from_secs(30);

struct Controllers {
    dir: std::path::PathBuf,
    ports: Vec<u16>,
    procs: Vec<Option<ServerProcess>>,
}

impl Controllers {
    fn start(dir: &std::path::Path) -> Self {
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut c = Self {
            dir: dir.to_path_buf(),
            ports,
            procs: vec![None, None, None],
        };
        for i in 0..3 {
            c.spawn(i);
        }
        c
    }

    fn spawn(&mut self, i: usize) {
        let peers = self
            .ports
            .iter()
            .enumerate()
            .map(|(j, p)| format!("n{j}-127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(";");
        let conf = self.dir.join(format!("c{i}.conf"));
        std::fs::write(
            &conf,
            format!(
                "controllerDLegerPeers={peers}\ncontrollerDLegerSelfId=n{i}\ncontrollerStorePath={}\n\
                 metricsPort=0\nbindAddress=127.0.0.1\ncontrollerRaftHeartbeatIntervalMs=100\n\
                 controllerRaftElectionTimeoutMs=600\n",
                self.dir.join(format!("c{i}")).display()
            ),
        )
        .unwrap();
        self.procs[i] = Some(ServerProcess::spawn(
            &binary("rocketmq-controller", "mqcontroller"),
            &["-c", conf.to_str().unwrap()],
            Some(&self.dir.join(format!("c{i}.log"))),
        ));
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut p) = self.procs[i].take() {
            p.kill9();
        }
    }

    fn addrs(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }
}

/// What every acknowledged change adds up to.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Model {
    brokers: BTreeSet<i64>,
    master: i64,
    master_epoch: i32,
    sync_state_set: BTreeSet<i64>,
    sync_state_set_epoch: i32,
}

fn addr_of(id: i64) -> String {
    format!("10.9.0.{id}:10911")
}

async fn ok(ctl: &ControllerClient, request: RemotingCommand) -> RemotingCommand {
    let resp = ctl.invoke(request).await.expect("controller reachable");
    assert_eq!(resp.code, 0, "{:?}", resp.remark);
    resp
}

async fn add_broker(ctl: &ControllerClient, id: i64) {
    ok(
        ctl,
        RemotingCommand::request(
            RequestCode::CONTROLLER_APPLY_BROKER_ID,
            &ApplyBrokerIdRequestHeader {
                cluster_name: "c".into(),
                broker_name: GROUP.into(),
                applied_broker_id: id,
                register_check_code: format!("{};{id}", addr_of(id)),
            },
        ),
    )
    .await;
}

/// Keeps brokers 1..=n heartbeating to every controller (each keeps its own table).
fn heartbeats(
    addrs: Vec<String>,
    ids: Arc<parking_lot::Mutex<BTreeSet<i64>>>,
    stop: Arc<AtomicBool>,
) {
    tokio::spawn(async move {
        let client = RemotingClient::new(ClientConfig::default());
        while !stop.load(Ordering::Acquire) {
            let ids = ids.lock().clone();
            for id in ids {
                let h = BrokerHeartbeatRequestHeader {
                    cluster_name: "c".into(),
                    broker_addr: addr_of(id),
                    broker_name: GROUP.into(),
                    broker_id: Some(id),
                    epoch: Some(0),
                    max_offset: Some(0),
                    confirm_offset: Some(0),
                    heartbeat_timeout_mills: Some(60_000),
                    election_priority: None,
                };
                for a in &addrs {
                    let _ = client
                        .invoke_oneway(
                            a,
                            RemotingCommand::request(RequestCode::BROKER_HEARTBEAT, &h),
                            Duration::from_millis(300),
                        )
                        .await;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
}

async fn observed(ctl: &ControllerClient) -> Option<Model> {
    let resp = ctl
        .invoke(
            RemotingCommand::request(RequestCode::CONTROLLER_GET_SYNC_STATE_DATA, &())
                .with_body(serde_json::to_vec(&[GROUP]).unwrap()),
        )
        .await
        .ok()?;
    if resp.code != 0 {
        return None;
    }
    let info: rocketmq_common::controller::BrokerReplicasInfo =
        serde_json::from_slice(&resp.body).ok()?;
    let g = info.replicas_info_table.get(GROUP)?;
    Some(Model {
        brokers: g
            .in_sync_replicas
            .iter()
            .chain(&g.not_in_sync_replicas)
            .map(|r| r.broker_id)
            .collect(),
        master: g.master_broker_id?,
        master_epoch: g.master_epoch,
        sync_state_set: g.in_sync_replicas.iter().map(|r| r.broker_id).collect(),
        sync_state_set_epoch: g.sync_state_set_epoch,
    })
}

/// A tiny deterministic generator (the seed is printed, so a failure can be replayed).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_state_survives_twenty_rounds_of_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut controllers = Controllers::start(dir.path());
    let ctl = ControllerClient::new(
        RemotingClient::new(ClientConfig::default()),
        controllers.addrs(),
        Duration::from_secs(1),
    );
    let seed = std::env::var("CONTROLLER_RESTART_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_u64);
    eprintln!("seed {seed:#x}");
    let mut rng = Rng(seed);

    let alive: Arc<parking_lot::Mutex<BTreeSet<i64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    heartbeats(controllers.addrs(), alive.clone(), stop.clone());
    wait_until("a controller leader", WAIT, || async {
        ctl.find_leader().await.ok()
    })
    .await;
    for id in 1..=3 {
        add_broker(&ctl, id).await;
        alive.lock().insert(id);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let elected = ok(
        &ctl,
        RemotingCommand::request(
            RequestCode::CONTROLLER_ELECT_MASTER,
            &ElectMasterRequestHeader {
                cluster_name: Some("c".into()),
                broker_name: Some(GROUP.into()),
                broker_id: Some(1),
                designate_elect: None,
                invoke_time: None,
            },
        ),
    )
    .await;
    let h: ElectMasterResponseHeader = elected.decode_header().unwrap();
    let mut model = Model {
        brokers: [1, 2, 3].into(),
        master: 1,
        master_epoch: h.master_epoch.unwrap(),
        sync_state_set: [1].into(),
        sync_state_set_epoch: h.sync_state_set_epoch.unwrap(),
    };

    for round in 0..20 {
        // Crash: every fifth round all three, else the leader or a random one.
        let leader = wait_until("a leader", WAIT, || async {
            let l = ctl.find_leader().await.ok()?;
            controllers.addrs().iter().position(|a| *a == l)
        })
        .await;
        let victims: Vec<usize> = if round % 5 == 4 {
            vec![0, 1, 2]
        } else if round % 2 == 0 {
            vec![leader]
        } else {
            vec![rng.below(3) as usize]
        };
        for v in &victims {
            controllers.kill(*v);
        }
        if victims.len() == 1 {
            // A change committed while one controller is down.
            let set: BTreeSet<i64> = if model.sync_state_set.len() == 3 {
                [model.master].into()
            } else {
                model.brokers.iter().copied().take(3).collect()
            };
            let resp = wait_until("the SyncStateSet change", WAIT, || async {
                let r = ctl
                    .invoke(
                        RemotingCommand::request(
                            RequestCode::CONTROLLER_ALTER_SYNC_STATE_SET,
                            &AlterSyncStateSetRequestHeader {
                                broker_name: GROUP.into(),
                                master_broker_id: model.master,
                                master_epoch: model.master_epoch,
                                invoke_time: None,
                            },
                        )
                        .with_body(
                            serde_json::to_vec(&SyncStateSet {
                                sync_state_set: set.clone(),
                                sync_state_set_epoch: model.sync_state_set_epoch,
                            })
                            .unwrap(),
                        ),
                    )
                    .await
                    .ok()?;
                (r.code == 0).then_some(r)
            })
            .await;
            let h: AlterSyncStateSetResponseHeader = resp.decode_header().unwrap();
            model.sync_state_set = set;
            model.sync_state_set_epoch = h.new_sync_state_set_epoch.unwrap();
        }
        for v in &victims {
            controllers.spawn(*v);
        }
        // A new broker joins after the restart.
        let id = 4 + round as i64;
        wait_until("a new broker id", WAIT, || async {
            let r = ctl
                .invoke(RemotingCommand::request(
                    RequestCode::CONTROLLER_APPLY_BROKER_ID,
                    &ApplyBrokerIdRequestHeader {
                        cluster_name: "c".into(),
                        broker_name: GROUP.into(),
                        applied_broker_id: id,
                        register_check_code: format!("{};{id}", addr_of(id)),
                    },
                ))
                .await
                .ok()?;
            (r.code == 0).then_some(())
        })
        .await;
        alive.lock().insert(id);
        model.brokers.insert(id);
        let seen = wait_until(
            &format!("round {round}: the leader's state"),
            WAIT,
            || async { observed(&ctl).await },
        )
        .await;
        assert_eq!(seen, model, "round {round} (killed {victims:?})");
    }
    stop.store(true, Ordering::Release);
}
