//! Replication settings: RocketMQ's HA keys (`MessageStoreConfig`) and controller-mode
//! keys (`BrokerConfig`), read from the same `broker.conf`.

use std::str::FromStr;
use std::time::Duration;

use rocketmq_common::config::{
    ApplyProperties, ConfigError, ConfigValue, FieldVisitor, Properties,
};

/// `brokerRole`: what a broker does without a controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerRole {
    /// Master; acknowledges without waiting for slaves.
    AsyncMaster,
    /// Master; acknowledges after at least one slave holds the message (RocketMQ 4's
    /// meaning; see [`HaConfig::need_acks`]).
    SyncMaster,
    /// Replica of the group's master; refuses writes.
    Slave,
}

impl FromStr for BrokerRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "ASYNC_MASTER" => Ok(Self::AsyncMaster),
            "SYNC_MASTER" => Ok(Self::SyncMaster),
            "SLAVE" => Ok(Self::Slave),
            other => Err(format!(
                "expected ASYNC_MASTER, SYNC_MASTER or SLAVE, got {other}"
            )),
        }
    }
}

impl ConfigValue for BrokerRole {
    fn parse_into(&mut self, raw: &str) -> Result<(), String> {
        *self = raw.parse()?;
        Ok(())
    }
    fn text(&self) -> String {
        match self {
            Self::AsyncMaster => "ASYNC_MASTER",
            Self::SyncMaster => "SYNC_MASTER",
            Self::Slave => "SLAVE",
        }
        .into()
    }
}

/// Replication settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaConfig {
    /// `brokerRole` (ASYNC_MASTER); ignored in controller mode, where the controller
    /// decides.
    pub broker_role: BrokerRole,
    /// `haListenPort` (0 = listenPort + 1, i.e. 10912 with the default listenPort): the
    /// replication listener.
    pub ha_listen_port: u16,
    /// `haMasterAddress`: a classic slave's master (`host:haPort`); empty = learn it from
    /// the name server.
    pub ha_master_address: String,
    /// `haSendHeartbeatInterval` (5 s): idle keepalive on the replication stream.
    pub ha_send_heartbeat_interval: Duration,
    /// `haHousekeepingInterval` (20 s): a replication connection silent this long is closed.
    pub ha_housekeeping_interval: Duration,
    /// `haTransferBatchSize` (32 KiB): bytes per replication batch (whole records; one
    /// record even if larger).
    pub ha_transfer_batch_size: usize,
    /// `slaveTimeout` (3 s): how long a send waits for replicas before FLUSH_SLAVE_TIMEOUT.
    pub slave_timeout: Duration,
    /// `inSyncReplicas` (1): replicas (the master included) that must hold a message before
    /// it is acknowledged, unless `allAckInSyncStateSet`.
    pub in_sync_replicas: i32,
    /// `minInSyncReplicas` (1): fewer SyncStateSet members than this and sends are refused.
    pub min_in_sync_replicas: i32,
    /// `allAckInSyncStateSet` (false): every SyncStateSet member must hold a message before
    /// it is acknowledged (no acknowledged message is lost by a failover).
    pub all_ack_in_sync_state_set: bool,
    /// `haMaxGapNotInSync` (256 MiB): a classic SYNC_MASTER does not wait for a slave this
    /// many bytes behind (the send gets SLAVE_NOT_AVAILABLE at once).
    pub ha_max_gap_not_in_sync: i64,
    /// `haMaxTimeSlaveNotCatchup` (15 s): a slave this far behind leaves the SyncStateSet.
    pub ha_max_time_slave_not_catchup: Duration,
    /// `syncFromLastFile` (false): an empty slave starts from the master's last CommitLog
    /// file instead of its first.
    pub sync_from_last_file: bool,
    /// `enableControllerMode` (false): roles come from the controller.
    pub enable_controller_mode: bool,
    /// `controllerAddr`: `;`-separated controller addresses (or one DNS name with
    /// `fetchControllerAddrByDnsLookup`).
    pub controller_addr: Vec<String>,
    /// `fetchControllerAddrByDnsLookup` (false): resolve `controllerAddr` to every address
    /// behind it (a headless Service), re-resolved periodically.
    pub fetch_controller_addr_by_dns_lookup: bool,
    /// `controllerHeartBeatTimeoutMills` (10 s): how long the controller waits for a
    /// heartbeat before it treats this broker as dead.
    pub controller_heartbeat_timeout: Duration,
    /// `brokerHeartbeatInterval` (1 s): heartbeats to every controller; also how often the
    /// broker confirms its role with the leader.
    pub broker_heartbeat_interval: Duration,
    /// `checkSyncStateSetPeriod` (5 s): how often a master shrinks its SyncStateSet.
    pub check_sync_state_set_period: Duration,
    /// `syncControllerMetadataPeriod` (10 s): how often the controller list is re-resolved.
    pub sync_controller_metadata_period: Duration,
    /// `brokerElectionPriority` (i32::MAX): smaller wins ties when the controller elects.
    pub broker_election_priority: i32,
    /// `accessMessageInMemoryMaxRatio` (40): a consumer more than this percentage of memory
    /// behind the log end is pointed at a slave (with `slaveReadEnable`).
    pub access_message_in_memory_max_ratio: i32,
    /// `slaveReadEnable` (false): masters point slow consumers at slaves.
    pub slave_read_enable: bool,
    /// `controllerLeaseEnable` (true, our addition): a controller-mode master refuses
    /// writes when it could not confirm its role with the controller leader for half of
    /// `controllerHeartBeatTimeoutMills` (by then the controller may have elected another).
    pub controller_lease_enable: bool,
}

impl Default for HaConfig {
    fn default() -> Self {
        Self {
            broker_role: BrokerRole::AsyncMaster,
            ha_listen_port: 0,
            ha_master_address: String::new(),
            ha_send_heartbeat_interval: Duration::from_secs(5),
            ha_housekeeping_interval: Duration::from_secs(20),
            ha_transfer_batch_size: 32 * 1024,
            slave_timeout: Duration::from_secs(3),
            in_sync_replicas: 1,
            min_in_sync_replicas: 1,
            all_ack_in_sync_state_set: false,
            ha_max_gap_not_in_sync: 256 * 1024 * 1024,
            ha_max_time_slave_not_catchup: Duration::from_secs(15),
            sync_from_last_file: false,
            enable_controller_mode: false,
            controller_addr: Vec::new(),
            fetch_controller_addr_by_dns_lookup: false,
            controller_heartbeat_timeout: Duration::from_secs(10),
            broker_heartbeat_interval: Duration::from_secs(1),
            check_sync_state_set_period: Duration::from_secs(5),
            sync_controller_metadata_period: Duration::from_secs(10),
            broker_election_priority: i32::MAX,
            access_message_in_memory_max_ratio: 40,
            slave_read_enable: false,
            controller_lease_enable: true,
        }
    }
}

impl HaConfig {
    /// Reads the replication keys of a `broker.conf`.
    pub fn from_properties(p: &Properties) -> Result<Self, String> {
        let mut c = Self::default();
        c.visit(&mut ApplyProperties(p))
            .map_err(|e| e.to_string())?;
        if c.enable_controller_mode && c.controller_addr.is_empty() {
            return Err("enableControllerMode=true needs controllerAddr".into());
        }
        if c.ha_transfer_batch_size == 0 {
            return Err("haTransferBatchSize must be positive".into());
        }
        for (key, d) in [
            ("haSendHeartbeatInterval", c.ha_send_heartbeat_interval),
            ("haHousekeepingInterval", c.ha_housekeeping_interval),
            ("brokerHeartbeatInterval", c.broker_heartbeat_interval),
            ("checkSyncStateSetPeriod", c.check_sync_state_set_period),
            (
                "controllerHeartBeatTimeoutMills",
                c.controller_heartbeat_timeout,
            ),
        ] {
            if d.is_zero() {
                return Err(format!("{key} must be positive"));
            }
        }
        if c.in_sync_replicas < 1 || c.min_in_sync_replicas < 1 {
            return Err("inSyncReplicas and minInSyncReplicas must be at least 1".into());
        }
        Ok(c)
    }

    /// Visits every key (see [`FieldVisitor`]).
    pub fn visit(&mut self, v: &mut dyn FieldVisitor) -> Result<(), ConfigError> {
        v.field("brokerRole", &mut self.broker_role)?;
        v.field("haListenPort", &mut self.ha_listen_port)?;
        v.field("haMasterAddress", &mut self.ha_master_address)?;
        v.field(
            "haSendHeartbeatInterval",
            &mut self.ha_send_heartbeat_interval,
        )?;
        v.field("haHousekeepingInterval", &mut self.ha_housekeeping_interval)?;
        v.field("haTransferBatchSize", &mut self.ha_transfer_batch_size)?;
        v.field("slaveTimeout", &mut self.slave_timeout)?;
        v.field("inSyncReplicas", &mut self.in_sync_replicas)?;
        v.field("minInSyncReplicas", &mut self.min_in_sync_replicas)?;
        v.field("allAckInSyncStateSet", &mut self.all_ack_in_sync_state_set)?;
        v.field("haMaxGapNotInSync", &mut self.ha_max_gap_not_in_sync)?;
        v.field(
            "haMaxTimeSlaveNotCatchup",
            &mut self.ha_max_time_slave_not_catchup,
        )?;
        v.field("syncFromLastFile", &mut self.sync_from_last_file)?;
        v.field("enableControllerMode", &mut self.enable_controller_mode)?;
        v.field("controllerAddr", &mut self.controller_addr)?;
        v.field(
            "fetchControllerAddrByDnsLookup",
            &mut self.fetch_controller_addr_by_dns_lookup,
        )?;
        v.field(
            "controllerHeartBeatTimeoutMills",
            &mut self.controller_heartbeat_timeout,
        )?;
        v.field(
            "brokerHeartbeatInterval",
            &mut self.broker_heartbeat_interval,
        )?;
        v.field(
            "checkSyncStateSetPeriod",
            &mut self.check_sync_state_set_period,
        )?;
        v.field(
            "syncControllerMetadataPeriod",
            &mut self.sync_controller_metadata_period,
        )?;
        v.field("brokerElectionPriority", &mut self.broker_election_priority)?;
        v.field(
            "accessMessageInMemoryMaxRatio",
            &mut self.access_message_in_memory_max_ratio,
        )?;
        v.field("slaveReadEnable", &mut self.slave_read_enable)?;
        v.field("controllerLeaseEnable", &mut self.controller_lease_enable)
    }

    /// Replicas (the master included) that must hold a message before a send is
    /// acknowledged, `None` for "every SyncStateSet member". A classic SYNC_MASTER waits for
    /// at least one slave: that is what the role name promises (RocketMQ 5 made it depend on
    /// `inSyncReplicas`, silently turning SYNC_MASTER asynchronous by default).
    pub fn need_acks(&self, role: BrokerRole) -> Option<i32> {
        if self.enable_controller_mode {
            if self.all_ack_in_sync_state_set {
                None
            } else {
                Some(self.in_sync_replicas)
            }
        } else if role == BrokerRole::SyncMaster {
            Some(self.in_sync_replicas.max(2))
        } else {
            Some(1)
        }
    }

    /// How long a master may keep taking writes after its last confirmation by the
    /// controller leader.
    pub fn controller_lease(&self) -> Duration {
        self.controller_heartbeat_timeout / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_and_ack_rules_follow_the_mode() {
        let c = HaConfig::from_properties(&Properties::parse(
            "brokerRole=SYNC_MASTER\nhaListenPort=20912\nslaveTimeout=1500\n",
        ))
        .unwrap();
        assert_eq!(c.broker_role, BrokerRole::SyncMaster);
        assert_eq!(c.ha_listen_port, 20912);
        assert_eq!(c.slave_timeout, Duration::from_millis(1500));
        assert_eq!(c.need_acks(BrokerRole::SyncMaster), Some(2));
        assert_eq!(c.need_acks(BrokerRole::AsyncMaster), Some(1));
        let c = HaConfig::from_properties(&Properties::parse(
            "enableControllerMode=true\ncontrollerAddr=a:1;b:2\nallAckInSyncStateSet=true\n",
        ))
        .unwrap();
        assert_eq!(c.controller_addr, vec!["a:1", "b:2"]);
        assert_eq!(c.need_acks(BrokerRole::Slave), None);
        for bad in [
            "brokerRole=LEADER\n",
            "enableControllerMode=true\n",
            "inSyncReplicas=0\n",
        ] {
            assert!(
                HaConfig::from_properties(&Properties::parse(bad)).is_err(),
                "{bad}"
            );
        }
    }
}
