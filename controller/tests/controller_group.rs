//! A group of three controllers in one process, driven over Remoting like brokers drive
//! it: leader discovery and NOT_LEADER redirects, broker id allocation, registration,
//! the first election, SyncStateSet changes, an automatic failover when the master's
//! connection drops (with role-change notifications to the live brokers), a leader loss,
//! and a restarted controller that keeps its state.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rocketmq_client::ControllerClient;
use rocketmq_common::config::Properties;
use rocketmq_common::controller::SyncStateSet;
use rocketmq_common::protocol::headers::controller::*;
use rocketmq_common::protocol::headers::namesrv::BrokerHeartbeatRequestHeader;
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{
    ClientConfig, Dispatcher, RemotingClient, RemotingServer, Reply, RequestContext,
    RequestProcessor, ServerConfig, ServerHandle,
};
use rocketmq_controller::{ControllerConfig, ControllerServer};
use rocketmq_testkit::{free_port, wait_until};

const WAIT: Duration = Duration::from_secs(20);

struct Group {
    ports: Vec<u16>,
    dirs: Vec<tempfile::TempDir>,
    servers: Vec<Option<ControllerServer>>,
}

fn peers(ports: &[u16]) -> String {
    ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("n{i}-127.0.0.1:{p}"))
        .collect::<Vec<_>>()
        .join(";")
}

fn config(ports: &[u16], i: usize, dir: &std::path::Path) -> ControllerConfig {
    ControllerConfig::from_properties(&Properties::parse(&format!(
        "controllerDLegerPeers={}\ncontrollerDLegerSelfId=n{i}\ncontrollerStorePath={}\n\
         metricsPort=0\nscanNotActiveBrokerInterval=200\nscanInactiveMasterInterval=500\n\
         controllerRaftHeartbeatIntervalMs=100\ncontrollerRaftElectionTimeoutMs=500\n",
        peers(ports),
        dir.display()
    )))
    .unwrap()
}

impl Group {
    async fn start(n: usize) -> Self {
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let dirs: Vec<_> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
        let mut servers = Vec::new();
        for (i, dir) in dirs.iter().enumerate() {
            servers.push(Some(
                ControllerServer::start(config(&ports, i, dir.path()))
                    .await
                    .unwrap(),
            ));
        }
        Self {
            ports,
            dirs,
            servers,
        }
    }

    fn addrs(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }

    async fn stop(&mut self, i: usize) {
        self.servers[i].take().unwrap().shutdown().await;
    }

    async fn restart(&mut self, i: usize) {
        self.servers[i] = Some(
            ControllerServer::start(config(&self.ports, i, self.dirs[i].path()))
                .await
                .unwrap(),
        );
    }
}

/// A stand-in broker: records NOTIFY_BROKER_ROLE_CHANGED.
#[derive(Default)]
struct Notifications(Mutex<Vec<NotifyBrokerRoleChangedRequestHeader>>);

impl RequestProcessor for Notifications {
    fn process(&self, _: &RequestContext, request: RemotingCommand) -> Reply {
        self.0
            .lock()
            .unwrap()
            .push(request.decode_header().unwrap());
        Reply::Now(Ok(None))
    }
}

async fn fake_broker() -> (ServerHandle, Arc<Notifications>) {
    let notes = Arc::new(Notifications::default());
    let mut d = Dispatcher::new();
    d.register(RequestCode::NOTIFY_BROKER_ROLE_CHANGED, notes.clone());
    let server = RemotingServer::new(
        ServerConfig {
            listen_addr: "127.0.0.1:0".parse().unwrap(),
            ..ServerConfig::default()
        },
        d,
    )
    .start()
    .await
    .unwrap();
    (server, notes)
}

/// One broker's view: its address, id and the connection its heartbeats use.
struct Broker {
    addr: String,
    id: i64,
    heartbeats: RemotingClient,
    _server: ServerHandle,
    notes: Arc<Notifications>,
}

async fn join(ctl: &ControllerClient, name: &str) -> Broker {
    let (server, notes) = fake_broker().await;
    let addr = server.local_addr().to_string();
    let next = ctl
        .invoke(RemotingCommand::request(
            RequestCode::CONTROLLER_GET_NEXT_BROKER_ID,
            &GetNextBrokerIdRequestHeader {
                cluster_name: "c".into(),
                broker_name: name.into(),
            },
        ))
        .await
        .unwrap();
    let id = next
        .decode_header::<GetNextBrokerIdResponseHeader>()
        .unwrap()
        .next_broker_id
        .unwrap();
    let applied = ctl
        .invoke(RemotingCommand::request(
            RequestCode::CONTROLLER_APPLY_BROKER_ID,
            &ApplyBrokerIdRequestHeader {
                cluster_name: "c".into(),
                broker_name: name.into(),
                applied_broker_id: id,
                register_check_code: format!("{addr};1"),
            },
        ))
        .await
        .unwrap();
    assert_eq!(applied.code, 0, "{:?}", applied.remark);
    let registered = ctl
        .invoke(RemotingCommand::request(
            RequestCode::CONTROLLER_REGISTER_BROKER,
            &RegisterBrokerToControllerRequestHeader {
                cluster_name: "c".into(),
                broker_name: name.into(),
                broker_id: Some(id),
                broker_address: addr.clone(),
                invoke_time: None,
            },
        ))
        .await
        .unwrap();
    assert_eq!(registered.code, 0, "{:?}", registered.remark);
    Broker {
        addr,
        id,
        heartbeats: RemotingClient::new(ClientConfig::default()),
        _server: server,
        notes,
    }
}

impl Broker {
    async fn heartbeat(&self, ctl: &ControllerClient, name: &str, epoch: i32, max_offset: i64) {
        let h = BrokerHeartbeatRequestHeader {
            cluster_name: "c".into(),
            broker_addr: self.addr.clone(),
            broker_name: name.into(),
            broker_id: Some(self.id),
            epoch: Some(epoch),
            max_offset: Some(max_offset),
            confirm_offset: Some(max_offset),
            heartbeat_timeout_mills: Some(30_000),
            election_priority: None,
        };
        for addr in ctl.addresses() {
            let _ = self
                .heartbeats
                .invoke(
                    &addr,
                    RemotingCommand::request(RequestCode::BROKER_HEARTBEAT, &h),
                    Duration::from_secs(2),
                )
                .await;
        }
    }
}

async fn replica_info(
    ctl: &ControllerClient,
    name: &str,
) -> (GetReplicaInfoResponseHeader, SyncStateSet) {
    let resp = ctl
        .invoke(RemotingCommand::request(
            RequestCode::CONTROLLER_GET_REPLICA_INFO,
            &GetReplicaInfoRequestHeader {
                broker_name: name.into(),
            },
        ))
        .await
        .unwrap();
    assert_eq!(resp.code, 0, "{:?}", resp.remark);
    (
        resp.decode_header().unwrap(),
        serde_json::from_slice(&resp.body).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_group_elects_masters_and_survives_its_leader() {
    let mut group = Group::start(3).await;
    let remoting = RemotingClient::new(ClientConfig::default());
    let ctl = ControllerClient::new(remoting.clone(), group.addrs(), Duration::from_secs(3));

    // Right after the start two controllers may both believe they lead for a moment:
    // wait until all agree (and so every follower names the leader).
    let leader = wait_until("every controller to agree on the leader", WAIT, || async {
        let mut named = Vec::new();
        for addr in group.addrs() {
            let resp = remoting
                .invoke(
                    &addr,
                    RemotingCommand::bare_request(RequestCode::CONTROLLER_GET_METADATA_INFO),
                    Duration::from_secs(3),
                )
                .await
                .ok()?;
            let h: GetMetaDataResponseHeader = resp.decode_header().ok()?;
            named.push(h.controller_leader_address?);
        }
        named
            .iter()
            .all(|l| *l == named[0])
            .then(|| named[0].clone())
    })
    .await;
    let follower = group.addrs().into_iter().find(|a| *a != leader).unwrap();
    let resp = remoting
        .invoke(
            &follower,
            RemotingCommand::request(
                RequestCode::CONTROLLER_GET_NEXT_BROKER_ID,
                &GetNextBrokerIdRequestHeader {
                    cluster_name: "c".into(),
                    broker_name: "b".into(),
                },
            ),
            Duration::from_secs(3),
        )
        .await
        .unwrap();
    assert_eq!(resp.code, ResponseCode::ControllerNotLeader.as_i32());
    assert_eq!(
        resp.decode_header::<NotLeaderResponseHeader>()
            .unwrap()
            .controller_leader_address
            .as_deref(),
        Some(leader.as_str())
    );

    // Three brokers join: ids 1, 2, 3.
    let mut brokers = Vec::new();
    for _ in 0..3 {
        brokers.push(join(&ctl, "b").await);
    }
    assert_eq!(
        brokers.iter().map(|b| b.id).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    for b in &brokers {
        b.heartbeat(&ctl, "b", 0, 0).await;
    }

    // Broker 1 asks to become master: the first election takes it.
    let resp = ctl
        .invoke(RemotingCommand::request(
            RequestCode::CONTROLLER_ELECT_MASTER,
            &ElectMasterRequestHeader {
                cluster_name: Some("c".into()),
                broker_name: Some("b".into()),
                broker_id: Some(1),
                designate_elect: None,
                invoke_time: None,
            },
        ))
        .await
        .unwrap();
    assert_eq!(resp.code, 0, "{:?}", resp.remark);
    let h: ElectMasterResponseHeader = resp.decode_header().unwrap();
    assert_eq!((h.master_broker_id, h.master_epoch), (Some(1), Some(1)));

    // The master grows its SyncStateSet to everyone.
    let resp = ctl
        .invoke(
            RemotingCommand::request(
                RequestCode::CONTROLLER_ALTER_SYNC_STATE_SET,
                &AlterSyncStateSetRequestHeader {
                    broker_name: "b".into(),
                    master_broker_id: 1,
                    master_epoch: 1,
                    invoke_time: None,
                },
            )
            .with_body(
                serde_json::to_vec(&SyncStateSet {
                    sync_state_set: [1, 2, 3].into(),
                    sync_state_set_epoch: 1,
                })
                .unwrap(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(resp.code, 0, "{:?}", resp.remark);

    // Broker 3 holds more data than broker 2: when the master's connection drops, the
    // controller elects 3 and tells the live brokers.
    brokers[1].heartbeat(&ctl, "b", 1, 100).await;
    brokers[2].heartbeat(&ctl, "b", 1, 200).await;
    let master = brokers.remove(0);
    drop(master);
    let (h, set) = wait_until("the failover", WAIT, || async {
        let (h, set) = replica_info(&ctl, "b").await;
        (h.master_broker_id == Some(3)).then_some((h, set))
    })
    .await;
    assert_eq!(h.master_epoch, Some(2));
    assert_eq!(set.sync_state_set, [3].into());
    for b in &brokers {
        wait_until("a role change notification", WAIT, || async {
            let notes = b.notes.0.lock().unwrap();
            notes
                .iter()
                .any(|n| n.master_broker_id == Some(3) && n.master_epoch == Some(2))
                .then_some(())
        })
        .await;
    }

    // The leader controller goes away: another takes over with the same state, and a
    // second failover works.
    let leader_idx = group.addrs().iter().position(|a| *a == leader).unwrap();
    group.stop(leader_idx).await;
    let new_leader = wait_until("a new controller leader", WAIT, || async {
        ctl.find_leader().await.ok().filter(|l| *l != leader)
    })
    .await;
    assert_ne!(new_leader, leader);
    let (h, _) = replica_info(&ctl, "b").await;
    assert_eq!(h.master_broker_id, Some(3));
    // Heartbeats reach the new leader's own table (each controller keeps one).
    for b in &brokers {
        b.heartbeat(&ctl, "b", 2, 300).await;
    }
    let resp = ctl
        .invoke(
            RemotingCommand::request(
                RequestCode::CONTROLLER_ALTER_SYNC_STATE_SET,
                &AlterSyncStateSetRequestHeader {
                    broker_name: "b".into(),
                    master_broker_id: 3,
                    master_epoch: 2,
                    invoke_time: None,
                },
            )
            .with_body(
                serde_json::to_vec(&SyncStateSet {
                    sync_state_set: [2, 3].into(),
                    sync_state_set_epoch: 3,
                })
                .unwrap(),
            ),
        )
        .await
        .unwrap();
    assert_eq!(resp.code, 0, "{:?}", resp.remark);
    let broker3 = brokers.remove(1);
    drop(broker3);
    wait_until("the second failover", WAIT, || async {
        let (h, _) = replica_info(&ctl, "b").await;
        (h.master_broker_id == Some(2) && h.master_epoch == Some(3)).then_some(())
    })
    .await;

    // The stopped controller comes back from its own disk and catches up.
    group.restart(leader_idx).await;
    let restarted = group.servers[leader_idx]
        .as_ref()
        .unwrap()
        .controller()
        .clone();
    wait_until("the restarted controller to catch up", WAIT, || async {
        let s = restarted.state_snapshot();
        s.groups
            .get("b")
            .is_some_and(|g| g.master_broker_id == Some(2) && g.master_epoch == 3)
            .then_some(())
    })
    .await;
    for server in group.servers.iter_mut() {
        if let Some(s) = server.take() {
            s.shutdown().await;
        }
    }
}
