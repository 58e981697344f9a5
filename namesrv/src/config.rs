//! Name server configuration: RocketMQ's `NamesrvConfig` and `NettyServerConfig` keys.
//!
//! Precedence, lowest to highest: built-in defaults, the `-c` properties file, command-line
//! flags. Unknown keys in the file are ignored (with a debug log) so that a Java
//! `namesrv.conf` carries over unchanged.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use rocketmq_common::config::{ConfigError, Properties};
use rocketmq_common::protocol::SerializeType;
use rocketmq_common::protocol::codec::DEFAULT_MAX_FRAME_SIZE;
use rocketmq_controller::ControllerConfig;

/// Everything the name server needs to run.
#[derive(Debug, Clone)]
pub struct NamesrvConfig {
    /// Remoting address (`listenPort`, default 9876, on all interfaces).
    pub listen_addr: SocketAddr,
    /// Prometheus endpoint (`metricsPort`, default 9877; 0 disables).
    pub metrics_port: u16,
    /// Where KV configs persist (`kvConfigPath`, default `~/namesrv/kvConfig.json`).
    pub kv_config_path: PathBuf,
    /// A broker silent for this long is dropped, unless it registered its own timeout
    /// (`brokerChannelExpiredTime`, default 120 s).
    pub broker_channel_expired_time: Duration,
    /// How often brokers are checked for silence (`scanNotActiveBrokerInterval`, 5 s).
    pub scan_not_active_broker_interval: Duration,
    /// Attach `ORDER_TOPIC_CONFIG` KV entries to routes (`orderMessageEnable`).
    pub order_message_enable: bool,
    /// Answer GET_ALL_TOPIC_LIST_FROM_NAMESERVER (`enableAllTopicList`, default true).
    pub enable_all_topic_list: bool,
    /// Answer GET_TOPICS_BY_CLUSTER (`enableTopicList`, default true).
    pub enable_topic_list: bool,
    /// Drop a broker's topics missing from its registration (`deleteTopicWithBrokerRegistration`).
    pub delete_topic_with_broker_registration: bool,
    /// Largest accepted frame (`frameMaxLength`, 16 MiB).
    pub max_frame_size: usize,
    /// Idle connection timeout (`serverChannelMaxIdleTimeSeconds`, 120).
    pub idle_timeout: Duration,
    /// Header encoding of our frames (`serializeType`: JSON or ROCKETMQ; default JSON, or the
    /// `ROCKETMQ_SERIALIZE_TYPE` environment variable like Java).
    pub serialize_type: SerializeType,
    /// The embedded controller (`enableControllerInNamesrv=true`; its keys come from the
    /// same file, e.g. `controllerDLegerPeers`), or `None`.
    pub controller: Option<ControllerConfig>,
}

impl Default for NamesrvConfig {
    fn default() -> Self {
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        Self {
            listen_addr: SocketAddr::from(([0, 0, 0, 0], 9876)),
            metrics_port: 9877,
            kv_config_path: home.join("namesrv").join("kvConfig.json"),
            broker_channel_expired_time: Duration::from_secs(120),
            scan_not_active_broker_interval: Duration::from_secs(5),
            order_message_enable: false,
            enable_all_topic_list: true,
            enable_topic_list: true,
            delete_topic_with_broker_registration: false,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            idle_timeout: Duration::from_secs(120),
            serialize_type: SerializeType::Json,
            controller: None,
        }
    }
}

impl NamesrvConfig {
    /// Applies properties (a `namesrv.conf` or flags turned into properties) over `self`.
    pub fn apply(&mut self, props: &Properties) -> Result<(), ConfigError> {
        let mut port = self.listen_addr.port();
        props.apply("listenPort", &mut port)?;
        let mut ip = self.listen_addr.ip();
        props.apply("bindAddress", &mut ip)?;
        self.listen_addr = SocketAddr::new(ip, port);
        props.apply("metricsPort", &mut self.metrics_port)?;
        if let Some(port) = props.java_metrics_port()? {
            self.metrics_port = port;
        }
        if let Some(path) = props.get("kvConfigPath") {
            self.kv_config_path = PathBuf::from(path);
        }
        let mut millis = self.broker_channel_expired_time.as_millis() as u64;
        props.apply("brokerChannelExpiredTime", &mut millis)?;
        self.broker_channel_expired_time = Duration::from_millis(millis);
        let mut millis = self.scan_not_active_broker_interval.as_millis() as u64;
        props.apply("scanNotActiveBrokerInterval", &mut millis)?;
        if millis == 0 {
            return Err(ConfigError::InvalidValue {
                key: "scanNotActiveBrokerInterval".into(),
                value: "0".into(),
                reason: "must be at least 1 ms".into(),
            });
        }
        self.scan_not_active_broker_interval = Duration::from_millis(millis);
        props.apply("orderMessageEnable", &mut self.order_message_enable)?;
        props.apply("enableAllTopicList", &mut self.enable_all_topic_list)?;
        props.apply("enableTopicList", &mut self.enable_topic_list)?;
        props.apply(
            "deleteTopicWithBrokerRegistration",
            &mut self.delete_topic_with_broker_registration,
        )?;
        props.apply("frameMaxLength", &mut self.max_frame_size)?;
        let mut idle = self.idle_timeout.as_secs();
        props.apply("serverChannelMaxIdleTimeSeconds", &mut idle)?;
        self.idle_timeout = Duration::from_secs(idle.max(1));
        props.apply("serializeType", &mut self.serialize_type)?;
        let mut embed = self.controller.is_some();
        props.apply("enableControllerInNamesrv", &mut embed)?;
        self.controller = if embed {
            Some(ControllerConfig::from_properties(props).map_err(|e| {
                ConfigError::InvalidValue {
                    key: "enableControllerInNamesrv".into(),
                    value: "true".into(),
                    reason: format!("the embedded controller's config is invalid: {e}"),
                }
            })?)
        } else {
            None
        };
        for (key, _) in props.iter() {
            if !KNOWN_KEYS.contains(&key) {
                tracing::debug!(key, "ignoring config key the name server does not use");
            }
        }
        Ok(())
    }

    /// The effective configuration as `key=value` lines (`-p`).
    pub fn to_properties_text(&self) -> String {
        format!(
            "listenPort={}\nbindAddress={}\nmetricsPort={}\nkvConfigPath={}\nbrokerChannelExpiredTime={}\n\
             scanNotActiveBrokerInterval={}\norderMessageEnable={}\nenableAllTopicList={}\nenableTopicList={}\n\
             deleteTopicWithBrokerRegistration={}\nframeMaxLength={}\nserverChannelMaxIdleTimeSeconds={}\nserializeType={}\n\
             enableControllerInNamesrv={}\n{}",
            self.listen_addr.port(),
            self.listen_addr.ip(),
            self.metrics_port,
            self.kv_config_path.display(),
            self.broker_channel_expired_time.as_millis(),
            self.scan_not_active_broker_interval.as_millis(),
            self.order_message_enable,
            self.enable_all_topic_list,
            self.enable_topic_list,
            self.delete_topic_with_broker_registration,
            self.max_frame_size,
            self.idle_timeout.as_secs(),
            self.serialize_type.java_name(),
            self.controller.is_some(),
            self.controller.as_ref().map_or_else(String::new, |c| c
                .to_properties()
                .iter()
                .map(|(k, v)| format!("{k}={v}\n"))
                .collect()),
        )
    }
}

const KNOWN_KEYS: &[&str] = &[
    "listenPort",
    "bindAddress",
    "metricsPort",
    "metricsExporterType",
    "metricsPromExporterHost",
    "metricsPromExporterPort",
    "kvConfigPath",
    "brokerChannelExpiredTime",
    "scanNotActiveBrokerInterval",
    "orderMessageEnable",
    "enableAllTopicList",
    "enableTopicList",
    "deleteTopicWithBrokerRegistration",
    "frameMaxLength",
    "serverChannelMaxIdleTimeSeconds",
    "serializeType",
    "enableControllerInNamesrv",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_keys_override_defaults() {
        let mut c = NamesrvConfig::default();
        c.apply(&Properties::parse(
            "listenPort=19876\nbrokerChannelExpiredTime=3000\norderMessageEnable=true\nrocketmqHome=/x\n",
        ))
        .unwrap();
        assert_eq!(c.listen_addr.port(), 19876);
        assert_eq!(c.broker_channel_expired_time, Duration::from_secs(3));
        assert!(c.order_message_enable);
        assert!(c.to_properties_text().contains("listenPort=19876\n"));
    }

    #[test]
    fn bad_values_are_rejected_with_the_key() {
        let mut c = NamesrvConfig::default();
        let err = c
            .apply(&Properties::parse("listenPort=99999\n"))
            .unwrap_err();
        assert!(err.to_string().contains("listenPort"), "{err}");
        let err = c
            .apply(&Properties::parse("scanNotActiveBrokerInterval=0\n"))
            .unwrap_err();
        assert!(
            err.to_string().contains("scanNotActiveBrokerInterval"),
            "{err}"
        );
    }
}
