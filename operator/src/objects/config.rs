//! Configuration files of the components, rendered from the spec.
//!
//! Files use the formats RocketMQ users know: Java properties for `broker.conf`,
//! `namesrv.conf` and `controller.conf`, JSON for the proxy's `rmq-proxy.json`. Keys are
//! sorted so the same spec always yields the same bytes (and the same config hash).

use std::collections::BTreeMap;

use super::{
    BROKER_HA_PORT, BROKER_PORT, CONTROLLER_PORT, ClusterNames, Component, METRICS_PORT,
    NAMESRV_PORT, PROXY_GRPC_PORT,
};
use crate::crd::RocketMQCluster;
use rocketmq_common::config::BROKER_LIVE_KEYS;

/// Directory the ConfigMap is mounted at in every container.
pub const CONFIG_DIR: &str = "/etc/rocketmq";
/// Mount point of the persistent volume of brokers and controllers.
pub const STORE_DIR: &str = "/store";

/// Settings that make every server export Prometheus metrics on [`METRICS_PORT`], with
/// RocketMQ's own key names.
fn metrics_settings() -> [(&'static str, String); 3] {
    [
        ("metricsExporterType", "PROM".to_string()),
        ("metricsPromExporterHost", "0.0.0.0".to_string()),
        ("metricsPromExporterPort", METRICS_PORT.to_string()),
    ]
}

/// `broker.conf` of broker group `group`: the operator's defaults, then `spec.broker.config`
/// on top. Keys derived from the cluster's shape are written last so nothing overrides them
/// (validation rejects such overrides; this keeps a bad spec from breaking the wiring anyway).
///
/// `brokerId` and `brokerRole` are left out on purpose: in controller mode the controllers
/// assign them, and a single file shared by all pods of a group could not hold per-pod values.
pub fn broker_config(cluster: &RocketMQCluster, names: &ClusterNames, group: i32) -> String {
    render_properties(
        "broker.conf of broker group",
        &names.broker_group(group),
        &broker_entries(cluster, names, group),
    )
}

/// What a change of `broker.conf` must restart brokers for: the file without the keys a
/// broker takes live (those the failover watcher applies with UPDATE_BROKER_CONFIG), so the
/// pods' config-hash annotation changes only when a restart is needed.
pub fn broker_restart_config(
    cluster: &RocketMQCluster,
    names: &ClusterNames,
    group: i32,
) -> String {
    let mut entries = broker_entries(cluster, names, group);
    entries.retain(|key, _| !BROKER_LIVE_KEYS.contains(&key.as_str()));
    render_properties(
        "broker.conf of broker group",
        &names.broker_group(group),
        &entries,
    )
}

/// The `spec.broker.config` entries a broker takes while it runs.
pub fn broker_live_entries(cluster: &RocketMQCluster) -> Vec<(String, String)> {
    cluster
        .spec
        .broker
        .config
        .iter()
        .filter(|(key, _)| BROKER_LIVE_KEYS.contains(&key.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn broker_entries(
    cluster: &RocketMQCluster,
    names: &ClusterNames,
    group: i32,
) -> BTreeMap<String, String> {
    let spec = &cluster.spec;
    let mut entries: BTreeMap<String, String> = BTreeMap::new();
    entries.insert("flushDiskType".into(), "ASYNC_FLUSH".into());
    // Acknowledge a send only once every SyncStateSet member has it, so a failover never
    // loses an acknowledged message (DESIGN.md §4.4).
    entries.insert("allAckInSyncStateSet".into(), "true".into());
    for (key, value) in metrics_settings() {
        entries.insert(key.into(), value);
    }
    entries.extend(spec.broker.config.clone());
    let managed = [
        ("brokerClusterName", cluster_name(cluster)),
        ("brokerName", names.broker_group(group)),
        ("namesrvAddr", names.namesrv_addr(spec.name_server.replicas)),
        ("listenPort", BROKER_PORT.to_string()),
        ("haListenPort", BROKER_HA_PORT.to_string()),
        ("storePathRootDir", STORE_DIR.to_string()),
        ("enableControllerMode", "true".to_string()),
        (
            "controllerAddr",
            names.controller_addr(spec.controller.replicas),
        ),
        // The peers are listed one by one above, so no DNS expansion is wanted.
        ("fetchControllerAddrByDnsLookup", "false".to_string()),
    ];
    for (key, value) in managed {
        entries.insert(key.into(), value);
    }
    entries
}

/// `namesrv.conf`.
pub fn namesrv_config(cluster: &RocketMQCluster) -> String {
    let mut entries: BTreeMap<String, String> = BTreeMap::new();
    entries.insert("listenPort".into(), NAMESRV_PORT.to_string());
    for (key, value) in metrics_settings() {
        entries.insert(key.into(), value);
    }
    render_properties("namesrv.conf of cluster", &cluster_name(cluster), &entries)
}

/// `controller.conf`. The peer list is shared; each pod learns its own id (`n<ordinal>`)
/// from the `CONTROLLER_SELF_ID` environment variable, which overrides
/// `controllerDLegerSelfId`.
pub fn controller_config(cluster: &RocketMQCluster, names: &ClusterNames) -> String {
    let peers = names
        .controller_peers(cluster.spec.controller.replicas)
        .into_iter()
        .map(|(id, address)| format!("{id}-{address}"))
        .collect::<Vec<_>>()
        .join(";");
    let mut entries: BTreeMap<String, String> = BTreeMap::new();
    entries.insert("listenPort".into(), CONTROLLER_PORT.to_string());
    entries.insert(
        "controllerDLegerGroup".into(),
        names.component(Component::Controller),
    );
    entries.insert("controllerDLegerPeers".into(), peers);
    entries.insert(
        "controllerStorePath".into(),
        format!("{STORE_DIR}/controller"),
    );
    // An unclean election could crown a replica that misses acknowledged messages.
    entries.insert("enableElectUncleanMaster".into(), "false".into());
    entries.insert("notifyBrokerRoleChanged".into(), "true".into());
    for (key, value) in metrics_settings() {
        entries.insert(key.into(), value);
    }
    render_properties(
        "controller.conf of cluster",
        &cluster_name(cluster),
        &entries,
    )
}

/// `rmq-proxy.json`, the proxy's configuration in RocketMQ's JSON format.
pub fn proxy_config(cluster: &RocketMQCluster, names: &ClusterNames) -> String {
    let config = serde_json::json!({
        "rocketMQClusterName": cluster_name(cluster),
        "proxyMode": "cluster",
        "namesrvAddr": names.namesrv_addr(cluster.spec.name_server.replicas),
        "grpcServerPort": PROXY_GRPC_PORT,
        "metricsExporterType": "PROM",
        "metricsPromExporterHost": "0.0.0.0",
        "metricsPromExporterPort": METRICS_PORT,
    });
    let mut text = serde_json::to_string_pretty(&config)
        .expect("a JSON object of strings and integers always serializes");
    text.push('\n');
    text
}

fn cluster_name(cluster: &RocketMQCluster) -> String {
    cluster.metadata.name.clone().unwrap_or_default()
}

fn render_properties(what: &str, owner: &str, entries: &BTreeMap<String, String>) -> String {
    let mut text = format!("# {what} {owner}, generated by rocketmq-operator.\n");
    for (key, value) in entries {
        text.push_str(key);
        text.push('=');
        text.push_str(&escape_property_value(value));
        text.push('\n');
    }
    text
}

/// Escapes what Java's `Properties.load` would otherwise misread: backslashes, line breaks
/// and a leading space.
fn escape_property_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for (index, character) in value.chars().enumerate() {
        match character {
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            ' ' if index == 0 => escaped.push_str("\\ "),
            other => escaped.push(other),
        }
    }
    escaped
}

/// FNV-1a 64 of a component's configuration files, hex-encoded, for the pod-template
/// annotation that rolls pods on a config change. Hand-rolled rather than `DefaultHasher`
/// because the value lands in golden files and must not change with the Rust release.
pub fn config_hash<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET_BASIS;
    for (name, content) in files {
        // A separator byte keeps ("ab", "c") and ("a", "bc") apart.
        for byte in name.bytes().chain([0]).chain(content.bytes()).chain([0]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{RocketMQCluster, RocketMQClusterSpec};

    fn cluster(spec_yaml: &str) -> RocketMQCluster {
        let spec: RocketMQClusterSpec = serde_norway::from_str(spec_yaml).expect("spec parses");
        let mut cluster = RocketMQCluster::new("demo", spec);
        cluster.metadata.namespace = Some("mq".into());
        cluster
    }

    fn property<'a>(config: &'a str, key: &str) -> Option<&'a str> {
        config
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
    }

    #[test]
    fn broker_config_wires_controller_mode_and_every_name_server() {
        let cluster = cluster("{ nameServer: { replicas: 2 }, controller: { replicas: 3 } }");
        let names = ClusterNames::new("demo", "mq");
        let config = broker_config(&cluster, &names, 1);
        assert_eq!(property(&config, "brokerName"), Some("demo-broker-1"));
        assert_eq!(property(&config, "brokerClusterName"), Some("demo"));
        assert_eq!(property(&config, "enableControllerMode"), Some("true"));
        assert_eq!(
            property(&config, "namesrvAddr"),
            Some(
                "demo-namesrv-0.demo-namesrv-headless.mq.svc:9876;\
                 demo-namesrv-1.demo-namesrv-headless.mq.svc:9876"
            )
        );
        let controllers = property(&config, "controllerAddr").expect("controllerAddr");
        assert_eq!(controllers.split(';').count(), 3, "{controllers}");
        assert!(controllers.starts_with("demo-controller-0.demo-controller-headless.mq.svc:9878"));
        assert_eq!(property(&config, "listenPort"), Some("10911"));
        assert_eq!(
            property(&config, "brokerId"),
            None,
            "controller mode assigns ids"
        );
    }

    #[test]
    fn user_config_overrides_defaults_but_not_managed_keys() {
        let cluster = cluster(
            "{ broker: { config: { flushDiskType: SYNC_FLUSH, listenPort: '1', deleteWhen: '04' } } }",
        );
        let names = ClusterNames::new("demo", "mq");
        let config = broker_config(&cluster, &names, 0);
        assert_eq!(property(&config, "flushDiskType"), Some("SYNC_FLUSH"));
        assert_eq!(property(&config, "deleteWhen"), Some("04"));
        assert_eq!(property(&config, "listenPort"), Some("10911"));
    }

    #[test]
    fn property_values_survive_java_properties_parsing() {
        assert_eq!(escape_property_value(" a\\b\nc"), "\\ a\\\\b\\nc");
        assert_eq!(escape_property_value("x y"), "x y");
    }

    #[test]
    fn config_hash_is_stable_and_sensitive() {
        let hash = config_hash([("broker.conf", "a=1\n")]);
        assert_eq!(hash, config_hash([("broker.conf", "a=1\n")]));
        assert_ne!(hash, config_hash([("broker.conf", "a=2\n")]));
        assert_ne!(
            config_hash([("ab", "c")]),
            config_hash([("a", "bc")]),
            "file boundaries must matter"
        );
        // FNV-1a 64 of the empty input is the offset basis.
        assert_eq!(config_hash([]), "cbf29ce484222325");
    }
}
