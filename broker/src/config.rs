//! Broker configuration: RocketMQ's `BrokerConfig` keys from `broker.conf`, plus the store's
//! keys (see [`MessageStoreConfig`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::time::Duration;

use rocketmq_common::config::{
    ApplyProperties, CollectValues, ConfigError, ConfigValue, FieldVisitor, Properties,
};
use rocketmq_common::remoting::ServerConfig;

use crate::ha::HaConfig;
use crate::timer::TimerConfig;
use rocketmq_store::MessageStoreConfig;

/// Why a broker config is invalid.
#[derive(Debug, thiserror::Error)]
pub enum BrokerConfigError {
    /// A key does not parse.
    #[error(transparent)]
    Key(#[from] ConfigError),
    /// The store keys are invalid.
    #[error("store config: {0}")]
    Store(String),
    /// The replication keys are invalid.
    #[error("replication config: {0}")]
    Replication(String),
    /// A value is out of range.
    #[error("config key {key}: {reason}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// Why.
        reason: String,
    },
}

/// Everything the broker needs to run.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// `brokerClusterName` (DefaultCluster).
    pub broker_cluster_name: String,
    /// `brokerName` (the host name in Java; `broker-a` here).
    pub broker_name: String,
    /// `brokerId` (0 = master).
    pub broker_id: i64,
    /// `namesrvAddr`, `;`-separated (or the `NAMESRV_ADDR` environment variable).
    pub namesrv_addr: Vec<String>,
    /// `listenPort` (10911).
    pub listen_port: u16,
    /// `brokerIP1`: the address clients are told to connect to (default: see
    /// [`default_advertised_ip`]).
    pub broker_ip1: IpAddr,
    /// `brokerIP2`: the address replicas reach this broker's HA listener at (default:
    /// `brokerIP1`). Differs when clients come from outside a network the replicas share,
    /// e.g. a Kubernetes node address for clients and the pod address for replication.
    pub broker_ip2: IpAddr,
    /// `bindAddress` for the listener (0.0.0.0).
    pub bind_address: IpAddr,
    /// `autoCreateTopicEnable` (true).
    pub auto_create_topic_enable: bool,
    /// `autoCreateSubscriptionGroup` (true).
    pub auto_create_subscription_group: bool,
    /// `defaultTopicQueueNums` (8).
    pub default_topic_queue_nums: i32,
    /// `brokerPermission` (6 = read + write).
    pub broker_permission: i32,
    /// `registerNameServerPeriod` (30 s).
    pub register_name_server_period: Duration,
    /// `longPollingEnable` (true).
    pub long_polling_enable: bool,
    /// `shortPollingTimeMills` (1 s): how long a pull without suspend flag waits.
    pub short_polling_time: Duration,
    /// `flushConsumerOffsetInterval` (5 s).
    pub flush_consumer_offset_interval: Duration,
    /// `channelExpiredTimeout` (120 s): clients silent this long are dropped.
    pub channel_expired_timeout: Duration,
    /// `maxInFlightPuts`: puts in progress before SYSTEM_BUSY (back-pressure).
    pub max_in_flight_puts: usize,
    /// `messageDelayLevel`.
    pub message_delay_level: String,
    /// `metricsPort` (5557; 0 disables).
    pub metrics_port: u16,
    /// `transactionTimeOut` (6 s): how old a half message must be before the broker asks
    /// its producer about it.
    pub transaction_timeout: Duration,
    /// `transactionCheckMax` (15): checks of one half message before it is given up.
    pub transaction_check_max: i32,
    /// `transactionCheckInterval` (30 s): pause between check rounds.
    pub transaction_check_interval: Duration,
    /// `rejectTransactionMessage` (false): refuse half messages with NO_PERMISSION.
    pub reject_transaction_message: bool,
    /// `rebalanceLockMaxLiveTime` (60 s): a queue lock not renewed this long is free.
    pub rebalance_lock_max_live_time: Duration,
    /// `enablePropertyFilter`: accept SQL92 subscriptions. On by default here (Java's
    /// default is off): evaluation costs only the consumers that ask for it.
    pub enable_property_filter: bool,
    /// `serverMaxBufferedFrameBytes` (96 MiB): bytes all connections together may buffer
    /// for frames still arriving; a large frame past it closes its connection.
    pub server_max_buffered_frame_bytes: usize,
    /// `serverMaxConnections` (10000): connections open at once.
    pub server_max_connections: usize,
    /// Timer message settings (`timerWheelEnable`, `timerPrecisionMs`, ...).
    pub timer: TimerConfig,
    /// Replication settings (`brokerRole`, `haListenPort`, `enableControllerMode`, ...).
    pub ha: HaConfig,
    /// The store's settings.
    pub store: MessageStoreConfig,
}

/// The address a broker advertises when `brokerIP1` is not set: the bound address when it
/// is a specific one, else (bound to every interface) this host's first non-loopback IPv4
/// address as Java's `NetworkUtil.getLocalAddress` picks it — in a container or a pod that
/// is the address other hosts reach it at. Loopback only when there is nothing else.
pub fn default_advertised_ip(bind_address: IpAddr) -> IpAddr {
    if !bind_address.is_unspecified() {
        return bind_address;
    }
    let candidates = local_ipv4_addresses();
    // Java skips 192.168.* (typically a host-only or home network) unless nothing else.
    candidates
        .iter()
        .find(|ip| ip.octets()[..2] != [192, 168])
        .or(candidates.first())
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |ip| IpAddr::V4(*ip))
}

/// Non-loopback IPv4 addresses of the interfaces that are up, in the kernel's order.
fn local_ipv4_addresses() -> Vec<Ipv4Addr> {
    let mut found = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we only read and then free exactly once.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return found;
    }
    let mut cursor = head;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned, not yet freed.
        let entry = unsafe { &*cursor };
        cursor = entry.ifa_next;
        let up = entry.ifa_flags & (libc::IFF_UP as u32) != 0;
        if !up || entry.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: non-null `ifa_addr` points to a sockaddr whose family says its layout.
        let family = i32::from(unsafe { (*entry.ifa_addr).sa_family });
        if family != libc::AF_INET {
            continue;
        }
        // SAFETY: an AF_INET address is a sockaddr_in.
        let sin = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in) };
        let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
        if !ip.is_loopback() && !ip.is_unspecified() && !ip.is_link_local() {
            found.push(ip);
        }
    }
    // SAFETY: `head` came from a successful getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(head) };
    found
}

impl Default for BrokerConfig {
    fn default() -> Self {
        let home = std::env::var_os("HOME")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| ".".into());
        Self {
            broker_cluster_name: "DefaultCluster".into(),
            broker_name: "broker-a".into(),
            broker_id: 0,
            namesrv_addr: Vec::new(),
            listen_port: 10911,
            broker_ip1: IpAddr::V4(Ipv4Addr::LOCALHOST),
            broker_ip2: IpAddr::V4(Ipv4Addr::LOCALHOST),
            bind_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            auto_create_topic_enable: true,
            auto_create_subscription_group: true,
            default_topic_queue_nums: 8,
            broker_permission: 6,
            register_name_server_period: Duration::from_secs(30),
            long_polling_enable: true,
            short_polling_time: Duration::from_secs(1),
            flush_consumer_offset_interval: Duration::from_secs(5),
            channel_expired_timeout: Duration::from_secs(120),
            max_in_flight_puts: 16 * 1024,
            message_delay_level: "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h"
                .into(),
            metrics_port: 5557,
            transaction_timeout: Duration::from_secs(6),
            transaction_check_max: 15,
            transaction_check_interval: Duration::from_secs(30),
            reject_transaction_message: false,
            rebalance_lock_max_live_time: Duration::from_secs(60),
            enable_property_filter: true,
            server_max_buffered_frame_bytes: ServerConfig::default().max_buffered_frame_bytes,
            server_max_connections: ServerConfig::default().max_connections,
            timer: TimerConfig::default(),
            ha: HaConfig::default(),
            store: MessageStoreConfig::with_root(home.join("store")),
        }
    }
}

impl BrokerConfig {
    /// Builds the config from properties (a `broker.conf` plus flag overrides).
    pub fn from_properties(props: &Properties) -> Result<Self, BrokerConfigError> {
        let mut c = Self {
            store: MessageStoreConfig::from_properties(props)
                .map_err(|e| BrokerConfigError::Store(e.to_string()))?,
            timer: TimerConfig::from_properties(props).map_err(BrokerConfigError::Store)?,
            ha: HaConfig::from_properties(props).map_err(BrokerConfigError::Replication)?,
            ..Self::default()
        };
        c.visit_own(&mut ApplyProperties(props))?;
        if let Some(port) = props.java_metrics_port()? {
            c.metrics_port = port;
        }
        if props.get("brokerIP1").is_none() {
            c.broker_ip1 = default_advertised_ip(c.bind_address);
        }
        if props.get("brokerIP2").is_none() {
            c.broker_ip2 = c.broker_ip1;
        }
        if c.default_topic_queue_nums < 1 {
            return Err(BrokerConfigError::Invalid {
                key: "defaultTopicQueueNums",
                reason: "must be at least 1".into(),
            });
        }
        if c.transaction_check_interval.is_zero() {
            return Err(BrokerConfigError::Invalid {
                key: "transactionCheckInterval",
                reason: "must be positive".into(),
            });
        }
        if c.broker_name.is_empty() {
            return Err(BrokerConfigError::Invalid {
                key: "brokerName",
                reason: "must not be empty".into(),
            });
        }
        Ok(c)
    }

    /// Visits the broker's own keys (see [`FieldVisitor`]); the store and timer keys are
    /// visited by their configs.
    fn visit_own(&mut self, v: &mut dyn FieldVisitor) -> Result<(), ConfigError> {
        v.field("brokerClusterName", &mut self.broker_cluster_name)?;
        v.field("brokerName", &mut self.broker_name)?;
        v.field("brokerId", &mut self.broker_id)?;
        v.field("namesrvAddr", &mut self.namesrv_addr)?;
        v.field("listenPort", &mut self.listen_port)?;
        v.field("brokerIP1", &mut self.broker_ip1)?;
        v.field("brokerIP2", &mut self.broker_ip2)?;
        v.field("bindAddress", &mut self.bind_address)?;
        v.field("autoCreateTopicEnable", &mut self.auto_create_topic_enable)?;
        v.field(
            "autoCreateSubscriptionGroup",
            &mut self.auto_create_subscription_group,
        )?;
        v.field("defaultTopicQueueNums", &mut self.default_topic_queue_nums)?;
        v.field("brokerPermission", &mut self.broker_permission)?;
        v.field(
            "registerNameServerPeriod",
            &mut self.register_name_server_period,
        )?;
        v.field("longPollingEnable", &mut self.long_polling_enable)?;
        v.field("shortPollingTimeMills", &mut self.short_polling_time)?;
        v.field(
            "flushConsumerOffsetInterval",
            &mut self.flush_consumer_offset_interval,
        )?;
        v.field("channelExpiredTimeout", &mut self.channel_expired_timeout)?;
        v.field("maxInFlightPuts", &mut self.max_in_flight_puts)?;
        v.field("messageDelayLevel", &mut self.message_delay_level)?;
        v.field("metricsPort", &mut self.metrics_port)?;
        v.field("transactionTimeOut", &mut self.transaction_timeout)?;
        v.field("transactionCheckMax", &mut self.transaction_check_max)?;
        v.field(
            "transactionCheckInterval",
            &mut self.transaction_check_interval,
        )?;
        v.field(
            "rejectTransactionMessage",
            &mut self.reject_transaction_message,
        )?;
        v.field(
            "rebalanceLockMaxLiveTime",
            &mut self.rebalance_lock_max_live_time,
        )?;
        v.field("enablePropertyFilter", &mut self.enable_property_filter)?;
        v.field(
            "serverMaxBufferedFrameBytes",
            &mut self.server_max_buffered_frame_bytes,
        )?;
        v.field("serverMaxConnections", &mut self.server_max_connections)
    }

    /// Every key with the value in effect (GET_BROKER_CONFIG), the store's and the timer's
    /// included.
    pub fn to_properties(&self) -> BTreeMap<String, String> {
        let mut copy = self.clone();
        let mut out = CollectValues::default();
        // Collecting never fails.
        let _ = copy.visit_own(&mut out);
        let _ = copy.store.visit(&mut out);
        let _ = copy.timer.visit(&mut out);
        let _ = copy.ha.visit(&mut out);
        out.0
    }

    /// The address clients and the name server are given: `brokerIP1:listenPort`.
    pub fn broker_addr(&self) -> SocketAddr {
        SocketAddr::new(self.broker_ip1, self.listen_port)
    }

    /// The HA listener port: `haListenPort`, or `listenPort + 1` when it is 0.
    pub fn ha_listen_port(&self) -> u16 {
        if self.ha.ha_listen_port == 0 {
            self.listen_port.wrapping_add(1)
        } else {
            self.ha.ha_listen_port
        }
    }

    /// The HA listener address announced to the name server and the controllers:
    /// `brokerIP2:haListenPort`.
    pub fn ha_server_addr(&self) -> SocketAddr {
        SocketAddr::new(self.broker_ip2, self.ha_listen_port())
    }
}

/// The address written in `path`, once the file exists and is not empty, checking every
/// `poll` (an operator writes it when the address clients reach the broker at is known, e.g.
/// a LoadBalancer's). Says every 30 s what it waits for; SIGTERM ends the wait.
pub fn wait_for_address_file(path: &std::path::Path, poll: std::time::Duration) -> String {
    let mut last_said: Option<std::time::Instant> = None;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            let address = text.trim();
            if !address.is_empty() {
                return address.to_string();
            }
        }
        if last_said.is_none_or(|at| at.elapsed() >= std::time::Duration::from_secs(30)) {
            tracing::info!(
                file = %path.display(),
                "waiting for the address to announce (brokerIP1File)"
            );
            last_said = Some(std::time::Instant::now());
        }
        std::thread::sleep(poll);
    }
}

/// The settings UPDATE_BROKER_CONFIG changes while the broker runs; everything else in
/// [`BrokerConfig`] needs a restart. Read on every request, so plain atomics.
#[derive(Debug)]
pub struct LiveConfig {
    broker_permission: AtomicI32,
    auto_create_topic_enable: AtomicBool,
    auto_create_subscription_group: AtomicBool,
    long_polling_enable: AtomicBool,
    reject_transaction_message: AtomicBool,
    transaction_timeout_ms: AtomicU64,
    transaction_check_max: AtomicI32,
    /// Updates applied so far and when the last one was (the config's DataVersion).
    updates: AtomicU64,
    updated_at_ms: AtomicU64,
}

fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What a live update changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LiveUpdate {
    /// Keys applied.
    pub applied: Vec<String>,
    /// Whether the permission changed (the name servers must be told).
    pub permission_changed: bool,
}

impl LiveConfig {
    /// Keys that can change at runtime.
    pub const KEYS: [&'static str; 7] = rocketmq_common::config::BROKER_LIVE_KEYS;

    /// Starts from the configured values.
    pub fn new(c: &BrokerConfig) -> Self {
        Self {
            broker_permission: AtomicI32::new(c.broker_permission),
            auto_create_topic_enable: AtomicBool::new(c.auto_create_topic_enable),
            auto_create_subscription_group: AtomicBool::new(c.auto_create_subscription_group),
            long_polling_enable: AtomicBool::new(c.long_polling_enable),
            reject_transaction_message: AtomicBool::new(c.reject_transaction_message),
            transaction_timeout_ms: AtomicU64::new(c.transaction_timeout.as_millis() as u64),
            transaction_check_max: AtomicI32::new(c.transaction_check_max),
            updates: AtomicU64::new(0),
            updated_at_ms: AtomicU64::new(now_millis()),
        }
    }

    /// The config's DataVersion as JSON (GET_BROKER_CONFIG's `version` header).
    pub fn data_version_json(&self) -> String {
        format!(
            "{{\"counter\":{},\"stateVersion\":0,\"timestamp\":{}}}",
            self.updates.load(Ordering::Relaxed),
            self.updated_at_ms.load(Ordering::Relaxed)
        )
    }

    /// `brokerPermission`.
    pub fn broker_permission(&self) -> i32 {
        self.broker_permission.load(Ordering::Relaxed)
    }
    /// `autoCreateTopicEnable`.
    pub fn auto_create_topic_enable(&self) -> bool {
        self.auto_create_topic_enable.load(Ordering::Relaxed)
    }
    /// `autoCreateSubscriptionGroup`.
    pub fn auto_create_subscription_group(&self) -> bool {
        self.auto_create_subscription_group.load(Ordering::Relaxed)
    }
    /// `longPollingEnable`.
    pub fn long_polling_enable(&self) -> bool {
        self.long_polling_enable.load(Ordering::Relaxed)
    }
    /// `rejectTransactionMessage`.
    pub fn reject_transaction_message(&self) -> bool {
        self.reject_transaction_message.load(Ordering::Relaxed)
    }
    /// `transactionTimeOut`.
    pub fn transaction_timeout(&self) -> Duration {
        Duration::from_millis(self.transaction_timeout_ms.load(Ordering::Relaxed))
    }
    /// `transactionCheckMax`.
    pub fn transaction_check_max(&self) -> i32 {
        self.transaction_check_max.load(Ordering::Relaxed)
    }

    /// The live values, by key.
    pub fn values(&self) -> BTreeMap<String, String> {
        [
            ("brokerPermission", self.broker_permission().to_string()),
            (
                "autoCreateTopicEnable",
                self.auto_create_topic_enable().to_string(),
            ),
            (
                "autoCreateSubscriptionGroup",
                self.auto_create_subscription_group().to_string(),
            ),
            ("longPollingEnable", self.long_polling_enable().to_string()),
            (
                "rejectTransactionMessage",
                self.reject_transaction_message().to_string(),
            ),
            (
                "transactionTimeOut",
                self.transaction_timeout().as_millis().to_string(),
            ),
            (
                "transactionCheckMax",
                self.transaction_check_max().to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Applies `updates` all or nothing: every key must be live and every value valid,
    /// else nothing changes and the error names the first bad key.
    pub fn update(&self, updates: &Properties) -> Result<LiveUpdate, String> {
        let mut permission = self.broker_permission();
        let mut auto_topic = self.auto_create_topic_enable();
        let mut auto_group = self.auto_create_subscription_group();
        let mut long_polling = self.long_polling_enable();
        let mut reject = self.reject_transaction_message();
        let mut timeout = self.transaction_timeout();
        let mut check_max = self.transaction_check_max();
        let mut applied = Vec::new();
        for (key, raw) in updates.iter() {
            let target: &mut dyn ConfigValue = match key {
                "brokerPermission" => &mut permission,
                "autoCreateTopicEnable" => &mut auto_topic,
                "autoCreateSubscriptionGroup" => &mut auto_group,
                "longPollingEnable" => &mut long_polling,
                "rejectTransactionMessage" => &mut reject,
                "transactionTimeOut" => &mut timeout,
                "transactionCheckMax" => &mut check_max,
                other => {
                    return Err(format!(
                        "{other} cannot be changed while the broker runs (live keys: {}); set it in broker.conf and restart",
                        Self::KEYS.join(", ")
                    ));
                }
            };
            target
                .parse_into(raw)
                .map_err(|e| format!("{key}: invalid value {raw:?}: {e}"))?;
            applied.push(key.to_string());
        }
        if !(0..=7).contains(&permission) {
            return Err(format!("brokerPermission value: {permission} is invalid."));
        }
        if check_max < 1 {
            return Err("transactionCheckMax must be at least 1".into());
        }
        let permission_changed = permission != self.broker_permission();
        self.broker_permission.store(permission, Ordering::Relaxed);
        self.auto_create_topic_enable
            .store(auto_topic, Ordering::Relaxed);
        self.auto_create_subscription_group
            .store(auto_group, Ordering::Relaxed);
        self.long_polling_enable
            .store(long_polling, Ordering::Relaxed);
        self.reject_transaction_message
            .store(reject, Ordering::Relaxed);
        self.transaction_timeout_ms
            .store(timeout.as_millis() as u64, Ordering::Relaxed);
        self.transaction_check_max
            .store(check_max, Ordering::Relaxed);
        self.updates.fetch_add(1, Ordering::Relaxed);
        self.updated_at_ms.store(now_millis(), Ordering::Relaxed);
        Ok(LiveUpdate {
            applied,
            permission_changed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_conf_keys() {
        let p = Properties::parse(
            "brokerClusterName=C\nbrokerName=broker-b\nbrokerId=0\nnamesrvAddr=127.0.0.1:9876; 127.0.0.2:9876\n\
             listenPort=20911\nbrokerIP1=10.1.2.3\nautoCreateTopicEnable=false\nstorePathRootDir=/tmp/x\n",
        );
        let c = BrokerConfig::from_properties(&p).unwrap();
        assert_eq!(c.broker_cluster_name, "C");
        assert_eq!(c.namesrv_addr, vec!["127.0.0.1:9876", "127.0.0.2:9876"]);
        assert_eq!(c.broker_addr().to_string(), "10.1.2.3:20911");
        assert_eq!(c.ha_server_addr().port(), 20912);
        assert!(!c.auto_create_topic_enable);
        assert_eq!(
            c.store.store_path_root_dir,
            std::path::PathBuf::from("/tmp/x")
        );
    }

    #[test]
    fn advertised_address_defaults_to_what_other_hosts_reach() {
        let bound =
            BrokerConfig::from_properties(&Properties::parse("bindAddress=127.0.0.5\n")).unwrap();
        assert_eq!(bound.broker_ip1.to_string(), "127.0.0.5");
        let everywhere = BrokerConfig::from_properties(&Properties::parse("")).unwrap();
        // Whatever this host has: never the unspecified address, loopback only as a fallback.
        let expected = local_ipv4_addresses()
            .first()
            .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |_| everywhere.broker_ip1);
        assert_eq!(everywhere.broker_ip1, expected);
        assert!(!everywhere.broker_ip1.is_unspecified());
        if let IpAddr::V4(ip) = everywhere.broker_ip1
            && !ip.is_loopback()
        {
            assert!(local_ipv4_addresses().contains(&ip));
        }
        let explicit =
            BrokerConfig::from_properties(&Properties::parse("brokerIP1=10.9.8.7\n")).unwrap();
        assert_eq!(explicit.broker_ip1.to_string(), "10.9.8.7");
        assert_eq!(explicit.ha_server_addr().to_string(), "10.9.8.7:10912");
        let split = BrokerConfig::from_properties(&Properties::parse(
            "brokerIP1=203.0.113.7\nbrokerIP2=10.1.2.3\n",
        ))
        .unwrap();
        assert_eq!(split.broker_addr().to_string(), "203.0.113.7:10911");
        assert_eq!(split.ha_server_addr().to_string(), "10.1.2.3:10912");
    }

    #[test]
    fn the_announced_address_can_come_from_a_file_written_later() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("demo-broker-0-1");
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                std::fs::write(&path, "").unwrap();
                std::thread::sleep(std::time::Duration::from_millis(100));
                std::fs::write(&path, "203.0.113.9\n").unwrap();
            })
        };
        let address = wait_for_address_file(&path, std::time::Duration::from_millis(10));
        writer.join().unwrap();
        assert_eq!(address, "203.0.113.9");
    }

    #[test]
    fn every_key_read_is_reported_back() {
        let p = Properties::parse(
            "brokerName=b\nenablePropertyFilter=false\ntransactionTimeOut=1234\nflushDiskType=SYNC_FLUSH\n\
             timerPrecisionMs=500\nnamesrvAddr=a:1;b:2\n",
        );
        let c = BrokerConfig::from_properties(&p).unwrap();
        assert!(!c.enable_property_filter);
        let back = c.to_properties();
        for (k, v) in p.iter() {
            assert_eq!(back.get(k).map(String::as_str), Some(v), "{k}");
        }
        assert!(back.len() > 50, "{} keys", back.len());
        // Reading the report back gives the same config.
        let again = BrokerConfig::from_properties(&Properties::from_pairs(
            back.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        ))
        .unwrap();
        assert_eq!(again.to_properties(), back);
    }

    #[test]
    fn live_updates_are_all_or_nothing() {
        let live = LiveConfig::new(&BrokerConfig::default());
        let u = live
            .update(&Properties::parse(
                "brokerPermission=4\ntransactionTimeOut=9000\n",
            ))
            .unwrap();
        assert!(u.permission_changed);
        assert_eq!(live.broker_permission(), 4);
        assert_eq!(live.transaction_timeout(), Duration::from_secs(9));
        let e = live
            .update(&Properties::parse(
                "autoCreateTopicEnable=false\nlistenPort=1\n",
            ))
            .unwrap_err();
        assert!(e.contains("listenPort cannot be changed"), "{e}");
        assert!(live.auto_create_topic_enable(), "nothing applied");
        assert!(
            live.update(&Properties::parse("brokerPermission=9\n"))
                .is_err()
        );
        assert!(
            live.update(&Properties::parse("longPollingEnable=maybe\n"))
                .is_err()
        );
        assert_eq!(live.values()["brokerPermission"], "4");
    }

    #[test]
    fn invalid_values_name_the_key() {
        let err = BrokerConfig::from_properties(&Properties::parse("listenPort=x\n")).unwrap_err();
        assert!(err.to_string().contains("listenPort"), "{err}");
        let err = BrokerConfig::from_properties(&Properties::parse("defaultTopicQueueNums=0\n"))
            .unwrap_err();
        assert!(err.to_string().contains("defaultTopicQueueNums"), "{err}");
    }
}
