//! Broker configuration: RocketMQ's `BrokerConfig` keys from `broker.conf`, plus the store's
//! keys (see [`MessageStoreConfig`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rocketmq_common::config::{ConfigError, Properties};

use crate::store::MessageStoreConfig;
use crate::timer::TimerConfig;

/// Why a broker config is invalid.
#[derive(Debug, thiserror::Error)]
pub enum BrokerConfigError {
    /// A key does not parse.
    #[error(transparent)]
    Key(#[from] ConfigError),
    /// The store keys are invalid.
    #[error("store config: {0}")]
    Store(String),
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
    /// `brokerIP1`: the address clients are told to connect to.
    pub broker_ip1: IpAddr,
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
    /// Timer message settings (`timerWheelEnable`, `timerPrecisionMs`, ...).
    pub timer: TimerConfig,
    /// The store's settings.
    pub store: MessageStoreConfig,
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
            timer: TimerConfig::default(),
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
            ..Self::default()
        };
        props.apply("brokerClusterName", &mut c.broker_cluster_name)?;
        props.apply("brokerName", &mut c.broker_name)?;
        props.apply("brokerId", &mut c.broker_id)?;
        if let Some(addrs) = props.get("namesrvAddr") {
            c.namesrv_addr = split_addrs(addrs);
        }
        props.apply("listenPort", &mut c.listen_port)?;
        props.apply("brokerIP1", &mut c.broker_ip1)?;
        props.apply("bindAddress", &mut c.bind_address)?;
        props.apply("autoCreateTopicEnable", &mut c.auto_create_topic_enable)?;
        props.apply(
            "autoCreateSubscriptionGroup",
            &mut c.auto_create_subscription_group,
        )?;
        props.apply("defaultTopicQueueNums", &mut c.default_topic_queue_nums)?;
        props.apply("brokerPermission", &mut c.broker_permission)?;
        apply_millis(
            props,
            "registerNameServerPeriod",
            &mut c.register_name_server_period,
        )?;
        props.apply("longPollingEnable", &mut c.long_polling_enable)?;
        apply_millis(props, "shortPollingTimeMills", &mut c.short_polling_time)?;
        apply_millis(
            props,
            "flushConsumerOffsetInterval",
            &mut c.flush_consumer_offset_interval,
        )?;
        apply_millis(
            props,
            "channelExpiredTimeout",
            &mut c.channel_expired_timeout,
        )?;
        props.apply("maxInFlightPuts", &mut c.max_in_flight_puts)?;
        props.apply("messageDelayLevel", &mut c.message_delay_level)?;
        props.apply("metricsPort", &mut c.metrics_port)?;
        apply_millis(props, "transactionTimeOut", &mut c.transaction_timeout)?;
        props.apply("transactionCheckMax", &mut c.transaction_check_max)?;
        apply_millis(
            props,
            "transactionCheckInterval",
            &mut c.transaction_check_interval,
        )?;
        props.apply(
            "rejectTransactionMessage",
            &mut c.reject_transaction_message,
        )?;
        apply_millis(
            props,
            "rebalanceLockMaxLiveTime",
            &mut c.rebalance_lock_max_live_time,
        )?;
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

    /// The address clients and the name server are given: `brokerIP1:listenPort`.
    pub fn broker_addr(&self) -> SocketAddr {
        SocketAddr::new(self.broker_ip1, self.listen_port)
    }

    /// The HA listener address announced to the name server (`listenPort + 1`).
    pub fn ha_server_addr(&self) -> SocketAddr {
        SocketAddr::new(self.broker_ip1, self.listen_port.wrapping_add(1))
    }
}

/// Splits `a:1;b:2` (RocketMQ's name server list syntax), ignoring blanks.
pub fn split_addrs(list: &str) -> Vec<String> {
    list.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn apply_millis(props: &Properties, key: &str, target: &mut Duration) -> Result<(), ConfigError> {
    if let Some(ms) = props.parse_value::<u64>(key)? {
        *target = Duration::from_millis(ms);
    }
    Ok(())
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
    fn invalid_values_name_the_key() {
        let err = BrokerConfig::from_properties(&Properties::parse("listenPort=x\n")).unwrap_err();
        assert!(err.to_string().contains("listenPort"), "{err}");
        let err = BrokerConfig::from_properties(&Properties::parse("defaultTopicQueueNums=0\n"))
            .unwrap_err();
        assert!(err.to_string().contains("defaultTopicQueueNums"), "{err}");
    }
}
