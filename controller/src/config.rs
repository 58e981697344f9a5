//! Controller configuration: RocketMQ's `ControllerConfig` keys (`controller.conf`), plus
//! the consensus timings of our openraft group.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use rocketmq_common::config::{
    ApplyProperties, CollectValues, ConfigError, FieldVisitor, Properties,
};

/// Why a controller config is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ControllerConfigError {
    /// A key does not parse.
    #[error(transparent)]
    Key(#[from] ConfigError),
    /// A value is out of range or inconsistent.
    #[error("config key {key}: {reason}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// Why.
        reason: String,
    },
}

/// One controller of the group, from `controllerDLegerPeers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Peer id, e.g. `n0`.
    pub id: String,
    /// `host:port` the controller serves on (brokers, tools and peers all use it).
    pub addr: String,
    /// Consensus node id: the peer's position in the list sorted by id, so every
    /// controller derives the same ids from the same list in any order.
    pub node_id: u64,
}

/// Everything a controller needs to run.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// `controllerDLegerGroup`: the consensus group's name.
    pub controller_dleger_group: String,
    /// `controllerDLegerPeers`: `n0-host:port;n1-host:port;...`.
    pub controller_dleger_peers: String,
    /// `controllerDLegerSelfId`: this controller's peer id.
    pub controller_dleger_self_id: String,
    /// `controllerStorePath`: consensus log, vote and snapshot (default
    /// `~/DledgerController`).
    pub controller_store_path: PathBuf,
    /// `scanNotActiveBrokerInterval` (5 s): how often silent brokers are looked for.
    pub scan_not_active_broker_interval: Duration,
    /// `scanInactiveMasterInterval` (5 s): how often the leader re-elects groups whose
    /// master is gone (also right after it takes the lead).
    pub scan_inactive_master_interval: Duration,
    /// `electMasterMaxRetryCount` (3): tries of a controller-triggered election.
    pub elect_master_max_retry_count: u32,
    /// `enableElectUncleanMaster` (false): elect outside the SyncStateSet when nobody in
    /// it is alive (may lose acknowledged messages).
    pub enable_elect_unclean_master: bool,
    /// `notifyBrokerRoleChanged` (true): tell a group's live brokers about a new master.
    pub notify_broker_role_changed: bool,
    /// `controllerRaftHeartbeatIntervalMs` (200): leader heartbeat period; also each
    /// consensus request's timeout.
    pub raft_heartbeat_interval: Duration,
    /// `controllerRaftElectionTimeoutMs` (1000): a follower that hears no leader for this
    /// long (randomised up to twice it) starts an election.
    pub raft_election_timeout: Duration,
    /// `bindAddress` (0.0.0.0): the listener binds here, on the own peer's port.
    pub bind_address: IpAddr,
    /// `metricsPort` (9879; 0 disables): Prometheus endpoint.
    pub metrics_port: u16,
    /// `configBlackList`: keys UPDATE_CONTROLLER_CONFIG must not change.
    pub config_black_list: String,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        Self {
            controller_dleger_group: "DefaultControllerGroup".into(),
            controller_dleger_peers: "n0-127.0.0.1:9878".into(),
            controller_dleger_self_id: "n0".into(),
            controller_store_path: home.join("DledgerController"),
            scan_not_active_broker_interval: Duration::from_secs(5),
            scan_inactive_master_interval: Duration::from_secs(5),
            elect_master_max_retry_count: 3,
            enable_elect_unclean_master: false,
            notify_broker_role_changed: true,
            raft_heartbeat_interval: Duration::from_millis(200),
            raft_election_timeout: Duration::from_millis(1000),
            bind_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            metrics_port: 9879,
            config_black_list: "configBlackList;configStorePath;controllerStorePath".into(),
        }
    }
}

impl ControllerConfig {
    /// Builds the config from properties (a `controller.conf` plus flag overrides).
    pub fn from_properties(props: &Properties) -> Result<Self, ControllerConfigError> {
        let mut c = Self::default();
        c.visit(&mut ApplyProperties(props))?;
        if let Some(port) = props.java_metrics_port()? {
            c.metrics_port = port;
        }
        c.validate()?;
        Ok(c)
    }

    /// Visits every key (see [`FieldVisitor`]).
    pub fn visit(&mut self, v: &mut dyn FieldVisitor) -> Result<(), ConfigError> {
        v.field("controllerDLegerGroup", &mut self.controller_dleger_group)?;
        v.field("controllerDLegerPeers", &mut self.controller_dleger_peers)?;
        v.field(
            "controllerDLegerSelfId",
            &mut self.controller_dleger_self_id,
        )?;
        v.field("controllerStorePath", &mut self.controller_store_path)?;
        v.field(
            "scanNotActiveBrokerInterval",
            &mut self.scan_not_active_broker_interval,
        )?;
        v.field(
            "scanInactiveMasterInterval",
            &mut self.scan_inactive_master_interval,
        )?;
        v.field(
            "electMasterMaxRetryCount",
            &mut self.elect_master_max_retry_count,
        )?;
        v.field(
            "enableElectUncleanMaster",
            &mut self.enable_elect_unclean_master,
        )?;
        v.field(
            "notifyBrokerRoleChanged",
            &mut self.notify_broker_role_changed,
        )?;
        v.field(
            "controllerRaftHeartbeatIntervalMs",
            &mut self.raft_heartbeat_interval,
        )?;
        v.field(
            "controllerRaftElectionTimeoutMs",
            &mut self.raft_election_timeout,
        )?;
        v.field("bindAddress", &mut self.bind_address)?;
        v.field("metricsPort", &mut self.metrics_port)?;
        v.field("configBlackList", &mut self.config_black_list)
    }

    /// Every key with the value in effect (GET_CONTROLLER_CONFIG, `-p`).
    pub fn to_properties(&self) -> BTreeMap<String, String> {
        let mut copy = self.clone();
        let mut out = CollectValues::default();
        let _ = copy.visit(&mut out);
        out.0
    }

    /// Rejects settings the controller cannot run with.
    pub fn validate(&self) -> Result<(), ControllerConfigError> {
        let peers = self.peers()?;
        if !peers.iter().any(|p| p.id == self.controller_dleger_self_id) {
            return Err(ControllerConfigError::Invalid {
                key: "controllerDLegerSelfId",
                reason: format!(
                    "{:?} is not among controllerDLegerPeers ({})",
                    self.controller_dleger_self_id, self.controller_dleger_peers
                ),
            });
        }
        if self.raft_heartbeat_interval.is_zero()
            || self.raft_election_timeout <= self.raft_heartbeat_interval * 2
        {
            return Err(ControllerConfigError::Invalid {
                key: "controllerRaftElectionTimeoutMs",
                reason: "must be more than twice controllerRaftHeartbeatIntervalMs (> 0)".into(),
            });
        }
        for (key, d) in [
            (
                "scanNotActiveBrokerInterval",
                self.scan_not_active_broker_interval,
            ),
            (
                "scanInactiveMasterInterval",
                self.scan_inactive_master_interval,
            ),
        ] {
            if d.is_zero() {
                return Err(ControllerConfigError::Invalid {
                    key,
                    reason: "must be positive".into(),
                });
            }
        }
        if self.elect_master_max_retry_count == 0 {
            return Err(ControllerConfigError::Invalid {
                key: "electMasterMaxRetryCount",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    /// The peers, with their node ids.
    pub fn peers(&self) -> Result<Vec<Peer>, ControllerConfigError> {
        let bad = |reason: String| ControllerConfigError::Invalid {
            key: "controllerDLegerPeers",
            reason,
        };
        let mut peers = Vec::new();
        for item in self
            .controller_dleger_peers
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (id, addr) = item
                .split_once('-')
                .ok_or_else(|| bad(format!("{item:?} is not <id>-<host>:<port>")))?;
            if id.is_empty()
                || addr
                    .rsplit_once(':')
                    .is_none_or(|(_, p)| p.parse::<u16>().is_err())
            {
                return Err(bad(format!("{item:?} is not <id>-<host>:<port>")));
            }
            if peers.iter().any(|p: &Peer| p.id == id) {
                return Err(bad(format!("peer id {id:?} appears twice")));
            }
            peers.push(Peer {
                id: id.to_string(),
                addr: addr.to_string(),
                node_id: 0,
            });
        }
        if peers.is_empty() {
            return Err(bad("no peers".into()));
        }
        peers.sort_by(|a, b| a.id.cmp(&b.id));
        for (i, p) in peers.iter_mut().enumerate() {
            p.node_id = i as u64;
        }
        Ok(peers)
    }

    /// This controller's peer entry.
    pub fn self_peer(&self) -> Result<Peer, ControllerConfigError> {
        self.peers()?
            .into_iter()
            .find(|p| p.id == self.controller_dleger_self_id)
            .ok_or(ControllerConfigError::Invalid {
                key: "controllerDLegerSelfId",
                reason: "not among controllerDLegerPeers".into(),
            })
    }

    /// The address to listen on: `bindAddress` with the own peer's port.
    pub fn listen_addr(&self) -> Result<SocketAddr, ControllerConfigError> {
        let me = self.self_peer()?;
        let port = me
            .addr
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .map(|a| a.port())
            .or_else(|| me.addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
            .ok_or(ControllerConfigError::Invalid {
                key: "controllerDLegerPeers",
                reason: format!("no port in {}", me.addr),
            })?;
        Ok(SocketAddr::new(self.bind_address, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_get_the_same_ids_in_any_order() {
        let a = ControllerConfig::from_properties(&Properties::parse(
            "controllerDLegerPeers=n2-h3:9878;n0-h1:9878;n1-h2:9878\ncontrollerDLegerSelfId=n1\n",
        ))
        .unwrap();
        let b = ControllerConfig::from_properties(&Properties::parse(
            "controllerDLegerPeers=n0-h1:9878;n1-h2:9878;n2-h3:9878\ncontrollerDLegerSelfId=n2\n",
        ))
        .unwrap();
        assert_eq!(a.peers().unwrap(), b.peers().unwrap());
        assert_eq!(a.self_peer().unwrap().node_id, 1);
        assert_eq!(b.self_peer().unwrap().addr, "h3:9878");
    }

    #[test]
    fn bad_settings_are_refused_with_the_key() {
        for (text, key) in [
            (
                "controllerDLegerPeers=n0-h1:9878\ncontrollerDLegerSelfId=n1\n",
                "controllerDLegerSelfId",
            ),
            ("controllerDLegerPeers=n0-h1\n", "controllerDLegerPeers"),
            (
                "controllerDLegerPeers=n0-h1:1;n0-h2:2\n",
                "controllerDLegerPeers",
            ),
            (
                "controllerRaftElectionTimeoutMs=300\n",
                "controllerRaftElectionTimeoutMs",
            ),
            (
                "enableElectUncleanMaster=maybe\n",
                "enableElectUncleanMaster",
            ),
        ] {
            let e = ControllerConfig::from_properties(&Properties::parse(text))
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }
}
