//! Desired child objects of a `RocketMQCluster`, as pure functions of the resource.
//!
//! Nothing here talks to the API server: [`desired_objects`] returns every object the cluster
//! should own, and the reconciler applies them with server-side apply. That keeps the whole
//! shape of a cluster testable with golden files (`operator/tests/golden/`).
//!
//! Invariants the builders keep:
//! - every object carries a controller owner reference to the cluster, so deleting the
//!   cluster garbage-collects it; PersistentVolumeClaims are never built here (they come from
//!   StatefulSet claim templates, whose retention policy decides their fate);
//! - peers find each other by stable DNS names through headless Services, never by pod IP;
//! - selectors use only `app.kubernetes.io/{name,instance,component}` (plus the broker group),
//!   labels that never change over a cluster's life, because selectors are immutable.

mod broker;
mod config;
mod controller;
mod namesrv;
mod pod;
mod proxy;

use std::collections::BTreeMap;

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, StatefulSet},
        autoscaling::v2::HorizontalPodAutoscaler,
        core::v1::{ConfigMap, Service},
        policy::v1::PodDisruptionBudget,
    },
    apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference},
};
use kube::{Resource, ResourceExt};

pub use self::config::{broker_config, broker_live_entries, config_hash};
use crate::{
    crd::RocketMQCluster,
    error::{Error, Result},
};

/// Name server Remoting port.
pub const NAMESRV_PORT: i32 = 9876;
/// Controller Remoting port.
pub const CONTROLLER_PORT: i32 = 9878;
/// Broker Remoting port (`listenPort`).
pub const BROKER_PORT: i32 = 10911;
/// Broker HA replication port (`haListenPort`).
pub const BROKER_HA_PORT: i32 = 10912;
/// Proxy gRPC port (`apache.rocketmq.v2`).
pub const PROXY_GRPC_PORT: i32 = 8081;
/// Proxy Remoting port.
/// Prometheus metrics port of every RocketMQ server, the port RocketMQ's own exporter uses
/// (`metricsPromExporterPort`).
pub const METRICS_PORT: i32 = 5557;

/// Field manager of every server-side apply the operator makes.
pub const FIELD_MANAGER: &str = "rocketmq-operator";
/// Pod-template annotation holding a hash of the component's configuration, so a
/// configuration change rolls the pods.
pub const CONFIG_HASH_ANNOTATION: &str = "rocketmq.rs/config-hash";
/// Label Kubernetes puts on every StatefulSet pod with its name; a broker group's master
/// Service selects on it to reach exactly one pod.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// Label selecting the pods of one broker group.
pub const BROKER_GROUP_LABEL: &str = "rocketmq.rs/broker-group";

/// The four server components.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    /// `mqnamesrv`.
    NameServer,
    /// `mqcontroller`.
    Controller,
    /// `mqbroker`.
    Broker,
    /// `mqproxy`.
    Proxy,
}

impl Component {
    /// Value of the `app.kubernetes.io/component` label and the container name.
    pub fn label(self) -> &'static str {
        match self {
            Component::NameServer => "namesrv",
            Component::Controller => "controller",
            Component::Broker => "broker",
            Component::Proxy => "proxy",
        }
    }

    /// Binary in the image that runs this component.
    pub fn binary(self) -> &'static str {
        match self {
            Component::NameServer => "mqnamesrv",
            Component::Controller => "mqcontroller",
            Component::Broker => "mqbroker",
            Component::Proxy => "mqproxy",
        }
    }
}

/// Names of the objects of one cluster; one place so Services, peers and status agree.
pub struct ClusterNames<'a> {
    cluster: &'a str,
    namespace: &'a str,
}

impl<'a> ClusterNames<'a> {
    /// Names for `cluster` in `namespace`.
    pub fn new(cluster: &'a str, namespace: &'a str) -> Self {
        Self { cluster, namespace }
    }

    /// Name of the StatefulSet, Deployment or client Service of a component.
    pub fn component(&self, component: Component) -> String {
        format!("{}-{}", self.cluster, component.label())
    }

    /// Name of the headless Service that gives a component's pods stable DNS names.
    pub fn headless(&self, component: Component) -> String {
        format!("{}-headless", self.component(component))
    }

    /// Name of a component's ConfigMap.
    pub fn config_map(&self, component: Component) -> String {
        format!("{}-config", self.component(component))
    }

    /// Broker name and StatefulSet name of group `group`.
    pub fn broker_group(&self, group: i32) -> String {
        format!("{}-broker-{group}", self.cluster)
    }

    /// Headless Service of a broker group.
    pub fn broker_group_headless(&self, group: i32) -> String {
        format!("{}-headless", self.broker_group(group))
    }

    /// Service that always points at a broker group's master pod.
    pub fn broker_group_master(&self, group: i32) -> String {
        format!("{}-master", self.broker_group(group))
    }

    /// LoadBalancer Service of broker pod `ordinal` of group `group` (external access).
    pub fn broker_external(&self, group: i32, ordinal: i32) -> String {
        format!("{}-{ordinal}-external", self.broker_group(group))
    }

    /// ConfigMap with the external address of each broker pod of a group, one key per pod;
    /// written by the failover watcher from the LoadBalancer Services' addresses.
    pub fn broker_group_external_addresses(&self, group: i32) -> String {
        format!("{}-external", self.broker_group(group))
    }

    /// ConfigMap carrying a broker group's `broker.conf`.
    pub fn broker_group_config_map(&self, group: i32) -> String {
        format!("{}-config", self.broker_group(group))
    }

    /// Stable DNS name of pod `ordinal` of a StatefulSet governed by `headless_service`.
    fn pod_dns(&self, stateful_set: &str, ordinal: i32, headless_service: &str) -> String {
        format!(
            "{stateful_set}-{ordinal}.{headless_service}.{}.svc",
            self.namespace
        )
    }

    /// Every name server, `;`-separated `host:port`: brokers must register with each one,
    /// since name servers do not share routes.
    pub fn namesrv_addr(&self, replicas: i32) -> String {
        let stateful_set = self.component(Component::NameServer);
        let headless = self.headless(Component::NameServer);
        (0..replicas)
            .map(|ordinal| {
                format!(
                    "{}:{NAMESRV_PORT}",
                    self.pod_dns(&stateful_set, ordinal, &headless)
                )
            })
            .collect::<Vec<_>>()
            .join(";")
    }

    /// Every controller, `;`-separated `host:port`, in the form `controllerAddr` expects.
    pub fn controller_addr(&self, replicas: i32) -> String {
        self.controller_peers(replicas)
            .into_iter()
            .map(|(_, address)| address)
            .collect::<Vec<_>>()
            .join(";")
    }

    /// Controller peers as `(id, host:port)`, ids `n0`, `n1`, ... matching pod ordinals.
    pub fn controller_peers(&self, replicas: i32) -> Vec<(String, String)> {
        let stateful_set = self.component(Component::Controller);
        let headless = self.headless(Component::Controller);
        (0..replicas)
            .map(|ordinal| {
                (
                    format!("n{ordinal}"),
                    format!(
                        "{}:{CONTROLLER_PORT}",
                        self.pod_dns(&stateful_set, ordinal, &headless)
                    ),
                )
            })
            .collect()
    }

    /// Client address of the name server Service.
    pub fn namesrv_service_addr(&self) -> String {
        format!(
            "{}.{}.svc:{NAMESRV_PORT}",
            self.component(Component::NameServer),
            self.namespace
        )
    }

    /// gRPC address of the proxy Service.
    pub fn proxy_grpc_addr(&self) -> String {
        format!(
            "{}.{}.svc:{PROXY_GRPC_PORT}",
            self.component(Component::Proxy),
            self.namespace
        )
    }
}

/// Everything a cluster owns, in the order the reconciler applies it: configuration first so
/// pods never start without it, then Services so DNS names exist, then workloads, then the
/// policies that refer to them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DesiredObjects {
    /// Component configuration files.
    pub config_maps: Vec<ConfigMap>,
    /// Headless, client and per-group master Services.
    pub services: Vec<Service>,
    /// Name servers, controllers and broker groups.
    pub stateful_sets: Vec<StatefulSet>,
    /// Proxies.
    pub deployments: Vec<Deployment>,
    /// Per broker group and proxies.
    pub pod_disruption_budgets: Vec<PodDisruptionBudget>,
    /// The proxy autoscaler, when `spec.proxy.autoscaling.enabled`.
    pub horizontal_pod_autoscaler: Option<HorizontalPodAutoscaler>,
}

/// Builds every object `cluster` should own. Fails only on a resource without namespace or
/// uid, which the API server always sets.
pub fn desired_objects(cluster: &RocketMQCluster) -> Result<DesiredObjects> {
    let context = BuildContext::new(cluster)?;
    let mut objects = DesiredObjects::default();
    namesrv::build(&context, &mut objects);
    controller::build(&context, &mut objects);
    for group in 0..cluster.spec.broker.groups {
        broker::build(&context, group, &mut objects);
    }
    proxy::build(&context, &mut objects);
    Ok(objects)
}

/// What every builder needs: the resource, its names and the owner reference.
struct BuildContext<'a> {
    cluster: &'a RocketMQCluster,
    names: ClusterNames<'a>,
    namespace: &'a str,
    owner: OwnerReference,
}

impl<'a> BuildContext<'a> {
    fn new(cluster: &'a RocketMQCluster) -> Result<Self> {
        let namespace = cluster
            .metadata
            .namespace
            .as_deref()
            .ok_or(Error::MissingObjectKey("metadata.namespace"))?;
        let name = cluster
            .metadata
            .name
            .as_deref()
            .ok_or(Error::MissingObjectKey("metadata.name"))?;
        let mut owner = cluster
            .controller_owner_ref(&())
            .ok_or(Error::MissingObjectKey("metadata.uid"))?;
        // Foreground deletion of the cluster waits for its children.
        owner.block_owner_deletion = Some(true);
        Ok(Self {
            cluster,
            names: ClusterNames::new(name, namespace),
            namespace,
            owner,
        })
    }

    /// Labels that select a component's pods; never change over the cluster's life.
    fn selector_labels(&self, component: Component) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("app.kubernetes.io/name".to_string(), "rocketmq".to_string()),
            (
                "app.kubernetes.io/instance".to_string(),
                self.cluster.name_any(),
            ),
            (
                "app.kubernetes.io/component".to_string(),
                component.label().to_string(),
            ),
        ])
    }

    /// Selector labels of one broker group.
    fn broker_group_selector_labels(&self, group: i32) -> BTreeMap<String, String> {
        let mut labels = self.selector_labels(Component::Broker);
        labels.insert(
            BROKER_GROUP_LABEL.to_string(),
            self.names.broker_group(group),
        );
        labels
    }

    /// Selector labels plus the descriptive ones.
    fn labels(&self, selector: &BTreeMap<String, String>) -> BTreeMap<String, String> {
        let mut labels = selector.clone();
        labels.insert("app.kubernetes.io/part-of".into(), "rocketmq".into());
        labels.insert(
            "app.kubernetes.io/managed-by".into(),
            "rocketmq-operator".into(),
        );
        let tag = &self.cluster.spec.image.tag;
        // A digest-like or overlong tag is not a valid label value; the label is only
        // descriptive, so leave it out rather than fail the apply.
        if is_label_value(tag) {
            labels.insert("app.kubernetes.io/version".into(), tag.clone());
        }
        labels
    }

    fn metadata(&self, name: String, selector: &BTreeMap<String, String>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name),
            namespace: Some(self.namespace.to_string()),
            labels: Some(self.labels(selector)),
            owner_references: Some(vec![self.owner.clone()]),
            ..ObjectMeta::default()
        }
    }

    fn label_selector(selector: &BTreeMap<String, String>) -> LabelSelector {
        LabelSelector {
            match_labels: Some(selector.clone()),
            ..LabelSelector::default()
        }
    }
}

/// Kubernetes label value syntax: at most 63 characters, alphanumerics with `-`, `_`, `.`
/// inside.
fn is_label_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    let inner_ok = |byte: &u8| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.');
    match (bytes.first(), bytes.last()) {
        (None, _) => true,
        (Some(first), Some(last)) => {
            bytes.len() <= 63
                && first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes.iter().all(inner_ok)
        }
        (Some(_), None) => unreachable!("a non-empty slice has a last byte"),
    }
}

#[cfg(test)]
mod tests {
    use super::is_label_value;

    #[test]
    fn label_values_follow_kubernetes_syntax() {
        assert!(is_label_value("0.1.0"));
        assert!(is_label_value("v1_2-rc.3"));
        assert!(is_label_value(""));
        assert!(!is_label_value("sha256:abc"));
        assert!(!is_label_value("-dev"));
        assert!(!is_label_value(&"a".repeat(64)));
    }
}
