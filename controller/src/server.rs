//! Wiring of a controller: consensus, the Remoting listener (brokers, tools and peers all
//! use the own peer address), liveness scans, controller-triggered elections, role-change
//! notifications and metrics. Entry point: [`ControllerServer::start`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use openraft::BasicNode;
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rocketmq_common::controller::SyncStateSet;
use rocketmq_common::protocol::headers::controller::{
    NotLeaderResponseHeader, NotifyBrokerRoleChangedRequestHeader,
};
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{
    ClientConfig, ConnectionHandle, ConnectionListener, RemotingClient, RemotingMetrics,
    RemotingServer, ServerConfig, ServerHandle,
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{ControllerConfig, ControllerConfigError, Peer};
use crate::heartbeat::{BrokerLiveTable, Inactive};
use crate::raft::Raft;
use crate::raft::log_store::LogStore;
use crate::raft::network::RemotingNetwork;
use crate::raft::state_machine::{SharedState, StateMachineStore};
use crate::state::{ElectOutcome, ElectRequest, Event, MasterView, ReplicasState};

/// How long a write waits for the consensus group before the request fails.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a linearizable read waits to confirm the leadership.
const READ_TIMEOUT: Duration = Duration::from_secs(3);
/// NOTIFY_BROKER_ROLE_CHANGED send timeout (oneway).
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(3);
/// A new leader waits this long before judging masters dead by its own heartbeat table,
/// so brokers have had time to heartbeat to it.
const LEADER_GRACE: Duration = Duration::from_secs(3);

/// Why the controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] ControllerConfigError),
    /// The consensus store could not be opened.
    #[error("controller store {path}: {source}")]
    Store {
        /// Directory.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// openraft refused to start.
    #[error("consensus: {0}")]
    Raft(String),
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

/// The controller's Prometheus metrics.
#[derive(Clone, Default)]
pub(crate) struct ControllerMetrics {
    is_leader: Gauge,
    term: Gauge,
    live_brokers: Gauge,
    broker_groups: Gauge,
    elections: Family<ResultLabels, Counter<u64, AtomicU64>>,
    notifications: Counter<u64, AtomicU64>,
}

impl ControllerMetrics {
    fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "is_leader",
            "1 while this controller leads the consensus group",
            m.is_leader.clone(),
        );
        registry.register("raft_term", "Current consensus term", m.term.clone());
        registry.register(
            "live_brokers",
            "Brokers heartbeating to this controller",
            m.live_brokers.clone(),
        );
        registry.register(
            "broker_groups",
            "Broker groups in the replicated state",
            m.broker_groups.clone(),
        );
        registry.register(
            "elections",
            "Master elections decided by this controller, by result",
            m.elections.clone(),
        );
        registry.register(
            "role_change_notifications",
            "NOTIFY_BROKER_ROLE_CHANGED sent to brokers",
            m.notifications.clone(),
        );
        m
    }

    pub(crate) fn election(&self, code: ResponseCode) {
        let result = match code {
            ResponseCode::Success => "elected",
            ResponseCode::ControllerMasterStillExist => "master_still_alive",
            ResponseCode::ControllerMasterNotAvailable => "no_candidate",
            _ => "failed",
        };
        self.elections
            .get_or_create(&ResultLabels {
                result: result.into(),
            })
            .inc();
    }
}

/// Settings UPDATE_CONTROLLER_CONFIG may change at runtime.
#[derive(Debug)]
pub(crate) struct LiveSettings {
    pub(crate) enable_elect_unclean_master: AtomicBool,
    pub(crate) notify_broker_role_changed: AtomicBool,
}

/// Everything request handlers and background tasks share.
pub struct Controller {
    pub(crate) config: ControllerConfig,
    pub(crate) live_settings: LiveSettings,
    pub(crate) me: Peer,
    pub(crate) peers: Vec<Peer>,
    pub(crate) raft: Raft,
    pub(crate) state: SharedState,
    pub(crate) live: BrokerLiveTable,
    /// Serialises decide-then-commit, so every decision sees the effect of the one before.
    pub(crate) writes: tokio::sync::Mutex<()>,
    client: RemotingClient,
    pub(crate) metrics: ControllerMetrics,
    /// Set at shutdown: the listener closing every broker connection is not a sign that
    /// the brokers died.
    stopping: AtomicBool,
}

impl Controller {
    /// The current consensus leader's peer entry, if one is known.
    pub fn leader(&self) -> Option<Peer> {
        let leader = self.raft.metrics().borrow().current_leader?;
        self.peers.iter().find(|p| p.node_id == leader).cloned()
    }

    /// A copy of the applied state.
    pub fn state_snapshot(&self) -> ReplicasState {
        self.state.read().state.clone()
    }

    /// Whether this controller leads.
    pub fn is_leader(&self) -> bool {
        self.raft.metrics().borrow().current_leader == Some(self.me.node_id)
    }

    /// The CONTROLLER_NOT_LEADER answer, naming the leader when known.
    pub(crate) fn not_leader(&self) -> RemotingCommand {
        let leader = self.leader().filter(|l| l.node_id != self.me.node_id);
        let remark = match &leader {
            Some(l) => format!(
                "The controller is not in leader state; the leader is {} ({})",
                l.id, l.addr
            ),
            None => "The controller is not in leader state; no leader is elected yet".into(),
        };
        RemotingCommand::error(ResponseCode::ControllerNotLeader, remark).with_header(
            &NotLeaderResponseHeader {
                controller_leader_address: leader.map(|l| l.addr),
            },
        )
    }

    /// Runs `f` on the state after confirming the leadership and that every committed
    /// change is applied (a linearizable read).
    pub(crate) async fn read<R>(
        &self,
        f: impl FnOnce(&ReplicasState) -> R,
    ) -> Result<R, RemotingCommand> {
        if !self.is_leader() {
            return Err(self.not_leader());
        }
        match tokio::time::timeout(READ_TIMEOUT, self.raft.ensure_linearizable()).await {
            Ok(Ok(_)) => Ok(f(&self.state.read().state)),
            Ok(Err(RaftError::APIError(_))) => Err(self.not_leader()),
            Ok(Err(e)) => Err(RemotingCommand::error(
                ResponseCode::SystemError,
                format!("controller consensus failed: {e}"),
            )),
            Err(_) => Err(RemotingCommand::error(
                ResponseCode::SystemError,
                "controller read timed out: no quorum of controllers answers",
            )),
        }
    }

    /// Commits `event` through the consensus log; returns once it is applied here.
    pub(crate) async fn commit(&self, event: Event) -> Result<(), RemotingCommand> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.raft.client_write(event)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_)))) => {
                Err(self.not_leader())
            }
            Ok(Err(e)) => Err(RemotingCommand::error(
                ResponseCode::SystemError,
                format!("controller consensus failed: {e}"),
            )),
            Err(_) => Err(RemotingCommand::error(
                ResponseCode::SystemError,
                "controller write timed out: no quorum of controllers answers",
            )),
        }
    }

    /// Decides and commits an election, then tells the group's live brokers about a new
    /// master. Used by requests and by controller-triggered elections.
    pub(crate) async fn elect(
        &self,
        request: &ElectRequest,
    ) -> Result<ElectOutcome, RemotingCommand> {
        let _serial = self.writes.lock().await;
        let unclean = self
            .live_settings
            .enable_elect_unclean_master
            .load(Ordering::Relaxed);
        let outcome = self
            .read(|s| s.decide_elect_master(request, unclean, &self.live))
            .await?;
        let outcome = match outcome {
            Ok(o) => o,
            Err(refusal) => {
                self.metrics.election(refusal.code);
                return Err(RemotingCommand::error(refusal.code, refusal.remark));
            }
        };
        if let Some(event) = &outcome.event {
            self.commit(event.clone()).await?;
        }
        self.metrics.election(outcome.code);
        if outcome.code == ResponseCode::Success {
            info!(
                broker = %request.broker_name,
                master = ?outcome.view.master_broker_id,
                epoch = outcome.view.master_epoch,
                "new master elected"
            );
            self.notify_role_change(
                &request.broker_name,
                &outcome.view,
                &outcome.body.sync_state_set,
            )
            .await;
        } else if outcome.code == ResponseCode::ControllerMasterNotAvailable {
            warn!(broker = %request.broker_name, "master gone and no replica can take over");
        }
        Ok(outcome)
    }

    async fn notify_role_change(
        &self,
        broker_name: &str,
        view: &MasterView,
        sync_state_set: &std::collections::BTreeSet<i64>,
    ) {
        if !self
            .live_settings
            .notify_broker_role_changed
            .load(Ordering::Relaxed)
        {
            return;
        }
        let addresses = self
            .state
            .read()
            .state
            .live_member_addresses(broker_name, &self.live);
        let header = NotifyBrokerRoleChangedRequestHeader {
            master_address: view.master_address.clone(),
            master_epoch: Some(view.master_epoch),
            sync_state_set_epoch: Some(view.sync_state_set_epoch),
            master_broker_id: view.master_broker_id,
        };
        let body = serde_json::to_vec(&SyncStateSet {
            sync_state_set: sync_state_set.clone(),
            sync_state_set_epoch: view.sync_state_set_epoch,
        })
        .expect("bodies serialise");
        for addr in addresses {
            let request =
                RemotingCommand::request(RequestCode::NOTIFY_BROKER_ROLE_CHANGED, &header)
                    .with_body(body.clone());
            let client = self.client.clone();
            self.metrics.notifications.inc();
            tokio::spawn(async move {
                if let Err(e) = client.invoke_oneway(&addr, request, NOTIFY_TIMEOUT).await {
                    warn!(broker = %addr, error = %e, "role change notification failed");
                }
            });
        }
    }

    /// A broker stopped heartbeating (or its connection closed): if it was a master and
    /// this controller leads, elect a new one.
    async fn on_inactive(self: &Arc<Self>, gone: Vec<Inactive>) {
        if self.stopping.load(Ordering::Acquire) {
            return;
        }
        for g in gone {
            info!(broker = %g.broker_name, id = g.broker_id, "broker inactive");
            if !self.is_leader() {
                continue;
            }
            let was_master = self
                .state
                .read()
                .state
                .groups
                .get(&g.broker_name)
                .and_then(|grp| grp.master_broker_id)
                == Some(g.broker_id);
            if was_master {
                let this = self.clone();
                tokio::spawn(async move { this.elect_with_retry(g.broker_name).await });
            }
        }
    }

    async fn elect_with_retry(&self, broker_name: String) {
        let request = ElectRequest {
            broker_name: broker_name.clone(),
            broker_id: None,
            designate: false,
        };
        for attempt in 1..=self.config.elect_master_max_retry_count {
            match self.elect(&request).await {
                Ok(_) => return,
                Err(resp) if resp.code == ResponseCode::ControllerNotLeader.as_i32() => return,
                Err(resp) => {
                    warn!(
                        broker = %broker_name,
                        attempt,
                        code = resp.code,
                        remark = resp.remark.as_deref().unwrap_or(""),
                        "controller-triggered election failed"
                    );
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }
}

struct MarkInactiveOnClose(Arc<Controller>);

impl ConnectionListener for MarkInactiveOnClose {
    fn on_close(&self, connection: &ConnectionHandle) {
        let gone = self.0.live.on_connection_closed(connection.id());
        if !gone.is_empty() {
            let c = self.0.clone();
            tokio::spawn(async move { c.on_inactive(gone).await });
        }
    }
}

/// A running controller.
pub struct ControllerServer {
    controller: Arc<Controller>,
    remoting: ServerHandle,
    background: CancellationToken,
    metrics_addr: Option<SocketAddr>,
}

impl ControllerServer {
    /// Opens the consensus store, joins (or forms) the group and starts serving.
    pub async fn start(config: ControllerConfig) -> Result<Self, StartError> {
        config.validate()?;
        let peers = config.peers()?;
        let me = config.self_peer()?;
        let listen_addr = config.listen_addr()?;
        let dir = config.controller_store_path.join("raft");
        let store_err = |source| StartError::Store {
            path: dir.display().to_string(),
            source,
        };
        let (log, sm) = {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || {
                Ok::<_, std::io::Error>((LogStore::open(&dir)?, StateMachineStore::open(&dir)?))
            })
            .await
            .map_err(|e| store_err(std::io::Error::other(e)))?
            .map_err(store_err)?
        };
        let pristine = log.is_pristine();
        let state = sm.shared();
        let raft_config = openraft::Config {
            cluster_name: config.controller_dleger_group.clone(),
            heartbeat_interval: config.raft_heartbeat_interval.as_millis() as u64,
            election_timeout_min: config.raft_election_timeout.as_millis() as u64,
            election_timeout_max: config.raft_election_timeout.as_millis() as u64 * 2,
            install_snapshot_timeout: 5000,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(500),
            max_in_snapshot_log_to_keep: 100,
            ..Default::default()
        }
        .validate()
        .map_err(|e| StartError::Raft(e.to_string()))?;
        let client = RemotingClient::new(ClientConfig {
            connect_timeout: Duration::from_secs(1),
            ..ClientConfig::default()
        });
        let network = RemotingNetwork::new(client.clone(), config.controller_dleger_group.clone());
        let raft = Raft::new(me.node_id, Arc::new(raft_config), network, log, sm)
            .await
            .map_err(|e| StartError::Raft(e.to_string()))?;

        let mut registry = Registry::with_prefix("rocketmq_controller");
        let remoting_metrics = RemotingMetrics::register(&mut registry);
        let metrics = ControllerMetrics::register(&mut registry);
        let controller = Arc::new(Controller {
            live_settings: LiveSettings {
                enable_elect_unclean_master: AtomicBool::new(config.enable_elect_unclean_master),
                notify_broker_role_changed: AtomicBool::new(config.notify_broker_role_changed),
            },
            config: config.clone(),
            me: me.clone(),
            peers: peers.clone(),
            raft: raft.clone(),
            state,
            live: BrokerLiveTable::default(),
            writes: tokio::sync::Mutex::new(()),
            client,
            metrics,
            stopping: AtomicBool::new(false),
        });
        let remoting = RemotingServer::new(
            ServerConfig {
                listen_addr,
                ..ServerConfig::default()
            },
            crate::processor::dispatcher(controller.clone()),
        )
        .with_connection_listener(Arc::new(MarkInactiveOnClose(controller.clone())))
        .with_metrics(remoting_metrics)
        .start()
        .await
        .map_err(|source| StartError::Bind {
            addr: listen_addr,
            source,
        })?;

        if pristine {
            // Every controller initializes with the same membership; openraft accepts the
            // identical proposal on each, and refuses it once a node holds any log.
            let members: BTreeMap<u64, BasicNode> = peers
                .iter()
                .map(|p| (p.node_id, BasicNode::new(&p.addr)))
                .collect();
            match raft.initialize(members).await {
                Ok(()) => info!(peers = peers.len(), "controller group initialized"),
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => warn!(error = %e, "initializing the controller group failed"),
            }
        }

        let background = CancellationToken::new();
        tokio::spawn(scan_inactive_brokers(
            controller.clone(),
            background.clone(),
        ));
        tokio::spawn(reelect_inactive_masters(
            controller.clone(),
            background.clone(),
        ));
        let metrics_addr = rocketmq_common::observability::serve_metrics_on(
            config.bind_address,
            config.metrics_port,
            registry,
            background.clone(),
        )
        .await
        .map_err(|(addr, source)| StartError::Bind { addr, source })?;
        info!(id = %me.id, addr = %remoting.local_addr(), peers = peers.len(), "controller started");
        Ok(Self {
            controller,
            remoting,
            background,
            metrics_addr,
        })
    }

    /// The Remoting address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.remoting.local_addr()
    }

    /// The metrics address, if enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Shared state (tests, embedding).
    pub fn controller(&self) -> &Arc<Controller> {
        &self.controller
    }

    /// Stops serving and leaves the consensus group's traffic.
    pub async fn shutdown(self) {
        self.controller.stopping.store(true, Ordering::Release);
        self.remoting.shutdown();
        self.background.cancel();
        self.remoting.wait().await;
        if let Err(e) = self.controller.raft.shutdown().await {
            warn!(error = %e, "consensus shutdown failed");
        }
        info!("controller stopped");
    }
}

async fn scan_inactive_brokers(c: Arc<Controller>, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(c.config.scan_not_active_broker_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let gone = c.live.scan(Instant::now());
        if !gone.is_empty() {
            c.on_inactive(gone).await;
        }
        c.metrics.live_brokers.set(c.live.len() as i64);
        c.metrics
            .broker_groups
            .set(c.state.read().state.groups.len() as i64);
    }
}

/// On the leader: groups whose master is not alive (it died while another controller led,
/// or the election after its death failed) get a new election. Runs every
/// `scanInactiveMasterInterval`, and soon after this controller takes the lead.
async fn reelect_inactive_masters(c: Arc<Controller>, stop: CancellationToken) {
    let mut metrics = c.raft.metrics();
    let mut leader_since: Option<Instant> = None;
    let mut next_scan = Instant::now() + c.config.scan_inactive_master_interval;
    loop {
        let (leading, term) = {
            let m = metrics.borrow_and_update();
            (m.current_leader == Some(c.me.node_id), m.current_term)
        };
        c.metrics.is_leader.set(i64::from(leading));
        c.metrics.term.set(term as i64);
        match (leading, leader_since) {
            (true, None) => {
                let now = Instant::now();
                leader_since = Some(now);
                next_scan = now + LEADER_GRACE;
                info!(term, "this controller leads");
            }
            (false, Some(_)) => leader_since = None,
            _ => {}
        }
        let wait = next_scan.saturating_duration_since(Instant::now());
        tokio::select! {
            _ = stop.cancelled() => return,
            changed = metrics.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
            _ = tokio::time::sleep(wait) => {}
        }
        next_scan = Instant::now() + c.config.scan_inactive_master_interval;
        if leader_since.is_none() {
            continue;
        }
        let groups = c.state.read().state.groups_needing_election(&c.live);
        for broker_name in groups {
            let request = ElectRequest {
                broker_name,
                broker_id: None,
                designate: false,
            };
            if let Err(resp) = c.elect(&request).await
                && resp.code != ResponseCode::ControllerElectMasterFailed.as_i32()
            {
                warn!(
                    broker = %request.broker_name,
                    code = resp.code,
                    "re-electing a group without a live master failed"
                );
            }
        }
    }
}
