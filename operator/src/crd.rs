//! The `RocketMQCluster` custom resource: the single source of the CRD schema.
//!
//! Everything a user can write lives in [`RocketMQClusterSpec`]; everything the operator
//! reports lives in [`RocketMQClusterStatus`]. The schema handed to the API server is derived
//! from these types (see [`crate::crdgen`]), so a field added here shows up in
//! `crds/rocketmq.rs_rocketmqclusters.yaml` after `cargo run -p rocketmq-operator --bin crdgen`.
//!
//! Validation happens twice, on purpose: CEL rules and OpenAPI bounds in the schema reject a
//! bad spec at `kubectl apply` time with a readable message, and [`RocketMQClusterSpec::validate`]
//! repeats the same rules inside the operator so a resource that slipped past an older CRD
//! version is reported as `Degraded/InvalidSpec` instead of being half-applied.

use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use serde::{Deserialize, Serialize};

use crate::quantity::Quantity;

/// API group of the custom resource.
pub const GROUP: &str = "rocketmq.rs";
/// Annotation that pauses reconciliation like `spec.paused: true`, for emergencies where
/// editing the spec is not wanted (e.g. GitOps would revert it).
pub const PAUSED_ANNOTATION: &str = "rocketmq.rs/paused";

/// `broker.conf` keys the operator derives from the cluster's shape. Letting users override
/// them would silently break Services, probes or the controller wiring.
pub const RESERVED_BROKER_CONFIG_KEYS: [&str; 9] = [
    "brokerClusterName",
    "brokerName",
    "namesrvAddr",
    "listenPort",
    "haListenPort",
    "storePathRootDir",
    "enableControllerMode",
    "controllerAddr",
    "fetchControllerAddrByDnsLookup",
];

/// Desired state of a RocketMQ 5 cluster: name servers, a controller consensus group, broker
/// groups running in controller mode, and gRPC proxies.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
// Each printcolumn(...) repeats `type_ = ...`; clippy mistakes that for a duplicated attribute.
#[allow(clippy::duplicated_attributes)]
#[kube(
    group = "rocketmq.rs",
    version = "v1alpha1",
    kind = "RocketMQCluster",
    plural = "rocketmqclusters",
    doc = "A RocketMQ 5 cluster (name servers, controllers, broker groups, proxies) managed by rocketmq-operator.",
    shortname = "rmq",
    namespaced,
    status = "RocketMQClusterStatus",
    // Children are named `<cluster>-controller-headless`, `<cluster>-broker-<g>-headless`, and
    // StatefulSet pods carry `<statefulset>-<revision hash>` labels: all must stay within 63
    // characters, and Services need names that start with a letter.
    validation = Rule::new("self.metadata.name.size() <= 40 && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message("metadata.name must be at most 40 characters of a-z, 0-9 and '-', starting with a letter (the operator derives up to 63-character child names from it)"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        description = "ready components / all components",
        json_path = ".status.readyComponents"
    ),
    printcolumn(
        name = "Masters",
        type_ = "integer",
        description = "broker groups with a known master",
        json_path = ".status.masters"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct RocketMQClusterSpec {
    /// Container image carrying every RocketMQ binary (mqnamesrv, mqcontroller, mqbroker,
    /// mqproxy); the operator picks the command per component.
    #[serde(default)]
    pub image: ImageSpec,
    /// Name servers: stateless route registries, every broker registers with each of them.
    #[serde(default)]
    pub name_server: NameServerSpec,
    /// Controllers: the consensus group that elects broker masters.
    #[serde(default)]
    pub controller: ControllerSpec,
    /// Broker groups: one StatefulSet per group, each pod with its own volume.
    #[serde(default)]
    pub broker: BrokerSpec,
    /// gRPC proxies: the entry point for RocketMQ 5 clients.
    #[serde(default)]
    pub proxy: ProxySpec,
    /// Stops reconciliation while true: the operator neither creates, updates nor deletes
    /// anything for this cluster (status still reports `Paused`).
    #[serde(default)]
    pub paused: bool,
    /// What happens to broker and controller volumes when the cluster is deleted or scaled
    /// down. `Retain` (the default) keeps the data: the operator never deletes a volume.
    #[serde(default)]
    pub pvc_retention_policy: PvcRetentionPolicy,
}

/// Where the image comes from.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// Image repository, without tag.
    #[serde(default = "default_image_repository")]
    #[schemars(length(max = 255))]
    #[x_kube(validation = Rule::new("self != ''").message("image.repository must not be empty"))]
    #[x_kube(validation = Rule::new("self.matches('^([A-Za-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*$')").message("image.repository must be an image name without tag, such as rocketmq-rs or registry.example.com:5000/team/rocketmq-rs"))]
    pub repository: String,
    /// Image tag; also written to the `app.kubernetes.io/version` label.
    #[serde(default = "default_image_tag")]
    #[schemars(length(max = 128))]
    #[x_kube(validation = Rule::new("self != ''").message("image.tag must not be empty"))]
    #[x_kube(validation = Rule::new("self.matches('^[A-Za-z0-9_][A-Za-z0-9_.-]*$')").message("image.tag must be a tag such as 0.1.0: letters, digits, '_', '.' and '-', at most 128"))]
    pub tag: String,
    /// Kubernetes image pull policy.
    #[serde(default)]
    pub pull_policy: PullPolicy,
}

/// Kubernetes `imagePullPolicy`.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum PullPolicy {
    /// Pull on every pod start.
    Always,
    /// Pull only when the node lacks the image.
    #[default]
    IfNotPresent,
    /// Never pull; the image must be preloaded (e.g. `kind load docker-image`).
    Never,
}

impl PullPolicy {
    /// The value Kubernetes expects in `imagePullPolicy`.
    pub fn as_str(self) -> &'static str {
        match self {
            PullPolicy::Always => "Always",
            PullPolicy::IfNotPresent => "IfNotPresent",
            PullPolicy::Never => "Never",
        }
    }
}

/// Whether volumes outlive the cluster.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum PvcRetentionPolicy {
    /// Keep PersistentVolumeClaims when the cluster is deleted or a StatefulSet scales down.
    #[default]
    Retain,
    /// Let the StatefulSet controller delete the claims together with their pods' StatefulSet.
    Delete,
}

impl PvcRetentionPolicy {
    /// The value of a StatefulSet's `persistentVolumeClaimRetentionPolicy` fields.
    pub fn as_str(self) -> &'static str {
        match self {
            PvcRetentionPolicy::Retain => "Retain",
            PvcRetentionPolicy::Delete => "Delete",
        }
    }
}

/// Name server settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NameServerSpec {
    /// Number of name servers. They do not replicate among themselves: brokers register with
    /// each one, so any replica can answer route queries.
    #[serde(default = "default_name_server_replicas")]
    #[schemars(range(min = 1))]
    #[x_kube(validation = Rule::new("self <= 16").message("nameServer.replicas must be at most 16"))]
    pub replicas: i32,
    /// CPU/memory requests and limits; defaults to requests of 250m CPU and 512Mi memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// Controller settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.replicas % 2 == 1").message("controller.replicas must be odd (1, 3, 5, ...) so the consensus group can always form a majority"))]
pub struct ControllerSpec {
    /// Number of controllers in the consensus group; must be odd.
    #[serde(default = "default_controller_replicas")]
    #[schemars(range(min = 1))]
    #[x_kube(validation = Rule::new("self <= 9").message("controller.replicas must be at most 9: every election waits for a majority"))]
    pub replicas: i32,
    /// Volume for the consensus log, one per controller pod.
    #[serde(default = "default_controller_storage")]
    pub storage: StorageSpec,
    /// CPU/memory requests and limits; defaults to requests of 250m CPU and 512Mi memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// Broker settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BrokerSpec {
    /// Number of broker groups (broker names); each is a StatefulSet `<cluster>-broker-<g>`.
    /// Lowering it drains the highest groups before deleting them: their brokers become
    /// read-only, and each is deleted once every consumer group has consumed it (or after
    /// `drainTimeoutSeconds`).
    #[serde(default = "default_broker_groups")]
    #[schemars(range(min = 1))]
    #[x_kube(validation = Rule::new("self <= 64").message("broker.groups must be at most 64"))]
    pub groups: i32,
    /// Pods per group: one master plus replicas, elected by the controllers.
    #[serde(default = "default_broker_replicas_per_group")]
    #[schemars(range(min = 1))]
    #[x_kube(validation = Rule::new("self <= 9").message("broker.replicasPerGroup must be at most 9: a send waits for every in-sync replica"))]
    pub replicas_per_group: i32,
    /// Volume for the CommitLog and ConsumeQueues, one per broker pod.
    #[serde(default = "default_broker_storage")]
    pub storage: StorageSpec,
    /// `broker.conf` entries merged over the operator's defaults (e.g. `flushDiskType`).
    /// Keys the operator derives from the cluster's shape cannot be overridden.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    // The rule looks up nine constant keys (constant CEL cost, whatever the map holds);
    // the bound keeps a runaway map out of etcd.
    #[schemars(extend("maxProperties" = 256))]
    #[x_kube(validation = Rule::new("['brokerClusterName', 'brokerName', 'namesrvAddr', 'listenPort', 'haListenPort', 'storePathRootDir', 'enableControllerMode', 'controllerAddr', 'fetchControllerAddrByDnsLookup'].all(k, !(k in self))").message("broker.config must not set keys managed by the operator: brokerClusterName, brokerName, namesrvAddr, listenPort, haListenPort, storePathRootDir, enableControllerMode, controllerAddr, fetchControllerAddrByDnsLookup"))]
    pub config: BTreeMap<String, String>,
    /// Seconds a broker gets between SIGTERM and SIGKILL: long enough to flush the page cache
    /// and hand mastership over.
    #[serde(default = "default_broker_termination_grace_period_seconds")]
    #[schemars(range(min = 0))]
    #[x_kube(validation = Rule::new("self <= 3600").message("broker.terminationGracePeriodSeconds must be at most 3600"))]
    pub termination_grace_period_seconds: i64,
    /// CPU/memory requests and limits; defaults to requests of 1 CPU and 2Gi memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// How long a group removed by lowering `groups` may drain before it is deleted with
    /// whatever its consumers have not consumed; unset: wait until they have consumed it all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub drain_timeout_seconds: Option<i64>,
    /// How Remoting clients outside Kubernetes reach the brokers.
    #[serde(default)]
    pub external_access: BrokerExternalAccess,
}

/// Access to the brokers from outside the Kubernetes cluster. Remoting clients connect to
/// the address each broker announces (`brokerIP1:listenPort`), so that address must be one
/// they can reach.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BrokerExternalAccess {
    /// `None` (default): brokers announce their pod IP, reachable inside the cluster only.
    /// `HostPort`: each broker also listens on its node's address at port 10911 and announces
    /// that address (`brokerIP1` = the node's IP), while replication stays on pod IPs
    /// (`brokerIP2`); at most one broker pod per node then. `LoadBalancer`: a LoadBalancer
    /// Service per broker pod (`<cluster>-broker-<g>-<i>-external`, port 10911); each broker
    /// waits for its Service's address and announces it.
    #[serde(default)]
    pub mode: ExternalAccessMode,
    /// Annotations of the per-broker LoadBalancer Services (e.g. to make them internal
    /// load balancers of a cloud).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    pub annotations: BTreeMap<String, String>,
}

/// How brokers are reached from outside the cluster.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum ExternalAccessMode {
    /// Inside the cluster only.
    #[default]
    None,
    /// On each node's address, port 10911.
    HostPort,
    /// A LoadBalancer Service per broker pod.
    LoadBalancer,
}

/// Proxy settings.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProxySpec {
    /// Number of proxies when autoscaling is disabled.
    #[serde(default = "default_proxy_replicas")]
    #[schemars(range(min = 1))]
    #[x_kube(validation = Rule::new("self <= 256").message("proxy.replicas must be at most 256"))]
    pub replicas: i32,
    /// HorizontalPodAutoscaler settings.
    #[serde(default)]
    pub autoscaling: AutoscalingSpec,
    /// How the proxies' client Service is exposed (RocketMQ 5 clients outside Kubernetes
    /// reach the cluster through it).
    #[serde(default)]
    pub service: ProxyServiceSpec,
    /// CPU/memory requests and limits; defaults to requests of 500m CPU and 512Mi memory.
    /// The autoscaler's CPU target is a percentage of the CPU request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// The proxy Service's exposure.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ProxyServiceSpec {
    /// Kubernetes Service type: `ClusterIP` (inside the cluster only), `NodePort` or
    /// `LoadBalancer`.
    #[serde(default, rename = "type")]
    pub type_: ServiceType,
    /// Annotations of the Service, e.g. a cloud load balancer's settings.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    pub annotations: BTreeMap<String, String>,
}

/// Kubernetes Service types the proxy Service may take.
#[derive(
    schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq,
)]
pub enum ServiceType {
    /// A cluster-internal virtual IP.
    #[default]
    ClusterIP,
    /// ClusterIP plus a port on every node.
    NodePort,
    /// NodePort plus an external load balancer.
    LoadBalancer,
}

impl ServiceType {
    /// The value of a Service's `spec.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// Proxy autoscaling on CPU utilisation.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.minReplicas <= self.maxReplicas").message("proxy.autoscaling.minReplicas must not exceed maxReplicas"))]
pub struct AutoscalingSpec {
    /// Creates a HorizontalPodAutoscaler for the proxies; `proxy.replicas` is then ignored.
    #[serde(default)]
    pub enabled: bool,
    /// Lower bound of the autoscaler.
    #[serde(default = "default_autoscaling_min_replicas")]
    #[schemars(range(min = 1))]
    pub min_replicas: i32,
    /// Upper bound of the autoscaler.
    #[serde(default = "default_autoscaling_max_replicas")]
    #[schemars(range(min = 1))]
    #[x_kube(validation = Rule::new("self <= 256").message("proxy.autoscaling.maxReplicas must be at most 256"))]
    pub max_replicas: i32,
    /// Average CPU utilisation, in percent of the CPU request, the autoscaler aims for.
    #[serde(
        default = "default_target_cpu_utilization_percentage",
        rename = "targetCPUUtilizationPercentage"
    )]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization_percentage: i32,
}

/// A PersistentVolumeClaim template.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self == oldSelf").message("storage is immutable: a StatefulSet's volumeClaimTemplates cannot change after creation"))]
pub struct StorageSpec {
    /// Requested size, as a Kubernetes quantity (e.g. `20Gi`).
    // Bounded so the API server's CEL cost estimate for isQuantity stays within budget.
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("isQuantity(self) && quantity(self).isGreaterThan(quantity('0')) && quantity(self).isLessThan(quantity('1Pi'))").message("storage.size must be a positive Kubernetes quantity below 1Pi, such as 20Gi"))]
    pub size: String,
    /// StorageClass of the claims; the cluster default when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
}

/// CPU and memory for one component's containers.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRequirements {
    /// What the scheduler reserves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<ResourceList>,
    /// What the kubelet enforces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceList>,
}

/// A CPU and memory amount.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceList {
    /// CPU as a Kubernetes quantity (e.g. `500m`, `2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("isQuantity(self)").message("cpu must be a Kubernetes quantity such as 500m or 2"))]
    pub cpu: Option<String>,
    /// Memory as a Kubernetes quantity (e.g. `512Mi`, `4Gi`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    #[x_kube(validation = Rule::new("isQuantity(self)").message("memory must be a Kubernetes quantity such as 512Mi or 4Gi"))]
    pub memory: Option<String>,
}

/// What the operator observed; written only through the status subresource.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RocketMQClusterStatus {
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// One-word summary, shown by `kubectl get rmq`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<ClusterPhase>,
    /// `ready/total` components (name servers, controllers, each broker group, proxies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_components: Option<String>,
    /// Number of broker groups whose master is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masters: Option<i32>,
    /// Ready, Progressing and Degraded conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<ClusterCondition>,
    /// In-cluster addresses clients use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoints: Option<ClusterEndpoints>,
    /// Per broker group: replicas and, once the failover watcher fills it, the master.
    /// A map-list keyed by name so the failover watcher can own `master`, `epoch` and
    /// `syncStateSet` under its own server-side-apply field manager.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = ListMerge::Map(vec!["name".into()]))]
    pub broker_groups: Vec<BrokerGroupStatus>,
}

/// One-word state of the cluster.
#[derive(schemars::JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterPhase {
    /// Objects were created, no component is ready yet.
    Pending,
    /// Some components are rolling out or not ready yet.
    Progressing,
    /// Every component is ready.
    Running,
    /// The spec is invalid or applying it failed; see the Degraded condition.
    Degraded,
    /// Reconciliation is paused by `spec.paused` or the `rocketmq.rs/paused` annotation.
    Paused,
}

/// A condition in the usual Kubernetes shape.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterCondition {
    /// `Ready`, `Progressing` or `Degraded`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// PascalCase reason, stable for automation.
    pub reason: String,
    /// Human-readable detail.
    #[serde(default)]
    pub message: String,
    /// RFC 3339 time the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    /// The generation this condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Service addresses of the cluster.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterEndpoints {
    /// Name server client Service, `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_server: Option<String>,
    /// Proxy gRPC Service, `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    /// Controller peers, `;`-separated `host:port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<String>,
}

/// Status of one broker group.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BrokerGroupStatus {
    /// Broker name (= StatefulSet name), `<cluster>-broker-<g>`.
    pub name: String,
    /// Desired pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Ready pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Pod currently serving as master; written by the failover watcher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
    /// Master epoch reported by the controllers; written by the failover watcher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epoch: Option<i64>,
    /// Pods in the SyncStateSet; written by the failover watcher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_state_set: Option<Vec<String>>,
    /// Progress of a group being removed (`groups` was lowered); written by the failover
    /// watcher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draining: Option<DrainStatus>,
}

/// How far a removed broker group has drained.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DrainStatus {
    /// RFC 3339 time the drain started (the group's brokers became read-only).
    pub started_at: String,
    /// Messages the group's consumer groups have not consumed yet.
    pub remaining_messages: i64,
    /// Consumer groups with messages left on the group.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_consumer_groups: Vec<String>,
}

fn default_image_repository() -> String {
    "rocketmq-rs".into()
}
fn default_image_tag() -> String {
    env!("CARGO_PKG_VERSION").into()
}
fn default_name_server_replicas() -> i32 {
    2
}
fn default_controller_replicas() -> i32 {
    3
}
fn default_controller_storage() -> StorageSpec {
    StorageSpec {
        size: "1Gi".into(),
        storage_class_name: None,
    }
}
fn default_broker_groups() -> i32 {
    1
}
fn default_broker_replicas_per_group() -> i32 {
    3
}
fn default_broker_storage() -> StorageSpec {
    StorageSpec {
        size: "20Gi".into(),
        storage_class_name: None,
    }
}
fn default_broker_termination_grace_period_seconds() -> i64 {
    60
}
fn default_proxy_replicas() -> i32 {
    2
}
fn default_autoscaling_min_replicas() -> i32 {
    2
}
fn default_autoscaling_max_replicas() -> i32 {
    10
}
fn default_target_cpu_utilization_percentage() -> i32 {
    70
}

impl Default for ImageSpec {
    fn default() -> Self {
        Self {
            repository: default_image_repository(),
            tag: default_image_tag(),
            pull_policy: PullPolicy::default(),
        }
    }
}

impl Default for NameServerSpec {
    fn default() -> Self {
        Self {
            replicas: default_name_server_replicas(),
            resources: None,
        }
    }
}

impl Default for ControllerSpec {
    fn default() -> Self {
        Self {
            replicas: default_controller_replicas(),
            storage: default_controller_storage(),
            resources: None,
        }
    }
}

impl Default for BrokerSpec {
    fn default() -> Self {
        Self {
            groups: default_broker_groups(),
            replicas_per_group: default_broker_replicas_per_group(),
            storage: default_broker_storage(),
            config: BTreeMap::new(),
            termination_grace_period_seconds: default_broker_termination_grace_period_seconds(),
            resources: None,
            drain_timeout_seconds: None,
            external_access: BrokerExternalAccess::default(),
        }
    }
}

impl Default for ProxySpec {
    fn default() -> Self {
        Self {
            replicas: default_proxy_replicas(),
            autoscaling: AutoscalingSpec::default(),
            service: ProxyServiceSpec::default(),
            resources: None,
        }
    }
}

impl Default for AutoscalingSpec {
    fn default() -> Self {
        Self {
            enabled: false,
            min_replicas: default_autoscaling_min_replicas(),
            max_replicas: default_autoscaling_max_replicas(),
            target_cpu_utilization_percentage: default_target_cpu_utilization_percentage(),
        }
    }
}

impl RocketMQClusterSpec {
    /// Checks the rules the CRD schema enforces, so a spec admitted by an older CRD (or
    /// created while validation was off) is reported instead of applied. Returns every
    /// violation, each a sentence naming the field.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let mut at_least_one = |value: i64, field: &str| {
            if value < 1 {
                problems.push(format!("{field} must be at least 1, got {value}"));
            }
        };
        at_least_one(self.name_server.replicas.into(), "nameServer.replicas");
        at_least_one(self.controller.replicas.into(), "controller.replicas");
        at_least_one(self.broker.groups.into(), "broker.groups");
        at_least_one(
            self.broker.replicas_per_group.into(),
            "broker.replicasPerGroup",
        );
        at_least_one(self.proxy.replicas.into(), "proxy.replicas");
        at_least_one(
            self.proxy.autoscaling.min_replicas.into(),
            "proxy.autoscaling.minReplicas",
        );
        if self.controller.replicas % 2 == 0 {
            problems.push(format!(
                "controller.replicas must be odd so the consensus group can form a majority, got {}",
                self.controller.replicas
            ));
        }
        let autoscaling = &self.proxy.autoscaling;
        if autoscaling.min_replicas > autoscaling.max_replicas {
            problems.push(format!(
                "proxy.autoscaling.minReplicas ({}) must not exceed maxReplicas ({})",
                autoscaling.min_replicas, autoscaling.max_replicas
            ));
        }
        if !(1..=100).contains(&autoscaling.target_cpu_utilization_percentage) {
            problems.push(format!(
                "proxy.autoscaling.targetCPUUtilizationPercentage must be within 1..=100, got {}",
                autoscaling.target_cpu_utilization_percentage
            ));
        }
        if self.broker.termination_grace_period_seconds < 0 {
            problems.push(format!(
                "broker.terminationGracePeriodSeconds must not be negative, got {}",
                self.broker.termination_grace_period_seconds
            ));
        }
        for (field, storage) in [
            ("controller.storage.size", &self.controller.storage),
            ("broker.storage.size", &self.broker.storage),
        ] {
            match storage.size.parse::<Quantity>() {
                Ok(quantity) if quantity.is_positive() => {}
                Ok(_) => problems.push(format!("{field} must be positive, got {:?}", storage.size)),
                Err(error) => problems.push(format!("{field}: {error}")),
            }
        }
        let overridden: Vec<&str> = RESERVED_BROKER_CONFIG_KEYS
            .iter()
            .copied()
            .filter(|key| self.broker.config.contains_key(*key))
            .collect();
        if !overridden.is_empty() {
            problems.push(format!(
                "broker.config must not set keys managed by the operator: {}",
                overridden.join(", ")
            ));
        }
        for (component, resources) in [
            ("nameServer", &self.name_server.resources),
            ("controller", &self.controller.resources),
            ("broker", &self.broker.resources),
            ("proxy", &self.proxy.resources),
        ] {
            let Some(resources) = resources else { continue };
            for (kind, list) in [
                ("requests", &resources.requests),
                ("limits", &resources.limits),
            ] {
                let Some(list) = list else { continue };
                for (name, value) in [("cpu", &list.cpu), ("memory", &list.memory)] {
                    if let Some(value) = value
                        && let Err(error) = value.parse::<Quantity>()
                    {
                        problems.push(format!("{component}.resources.{kind}.{name}: {error}"));
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

impl RocketMQCluster {
    /// True when the spec or the `rocketmq.rs/paused` annotation asks the operator to keep
    /// its hands off this cluster.
    pub fn is_paused(&self) -> bool {
        self.spec.paused
            || self
                .metadata
                .annotations
                .as_ref()
                .and_then(|annotations| annotations.get(PAUSED_ANNOTATION))
                .is_some_and(|value| value.eq_ignore_ascii_case("true"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_from_yaml(yaml: &str) -> RocketMQClusterSpec {
        serde_norway::from_str(yaml).expect("test spec parses")
    }

    #[test]
    fn empty_spec_takes_documented_defaults() {
        let spec = spec_from_yaml("{}");
        assert_eq!(spec.name_server.replicas, 2);
        assert_eq!(spec.controller.replicas, 3);
        assert_eq!(spec.controller.storage.size, "1Gi");
        assert_eq!(spec.broker.groups, 1);
        assert_eq!(spec.broker.replicas_per_group, 3);
        assert_eq!(spec.broker.storage.size, "20Gi");
        assert_eq!(spec.broker.termination_grace_period_seconds, 60);
        assert_eq!(spec.proxy.replicas, 2);
        assert!(!spec.proxy.autoscaling.enabled);
        assert_eq!(spec.proxy.autoscaling.target_cpu_utilization_percentage, 70);
        assert_eq!(spec.pvc_retention_policy, PvcRetentionPolicy::Retain);
        assert_eq!(spec.image.pull_policy, PullPolicy::IfNotPresent);
        assert!(spec.validate().is_ok());
    }

    #[test]
    fn validate_reports_every_broken_rule() {
        let spec = spec_from_yaml(
            r#"
controller: { replicas: 2, storage: { size: "lots" } }
broker:
  replicasPerGroup: 0
  config: { listenPort: "1234", flushDiskType: SYNC_FLUSH }
proxy: { autoscaling: { enabled: true, minReplicas: 5, maxReplicas: 3 } }
"#,
        );
        let problems = spec.validate().expect_err("spec breaks several rules");
        let joined = problems.join("\n");
        for expected in [
            "broker.replicasPerGroup must be at least 1, got 0",
            "controller.replicas must be odd",
            "proxy.autoscaling.minReplicas (5) must not exceed maxReplicas (3)",
            "controller.storage.size",
            "broker.config must not set keys managed by the operator: listenPort",
        ] {
            assert!(
                joined.contains(expected),
                "missing {expected:?} in:\n{joined}"
            );
        }
        assert_eq!(problems.len(), 5, "unexpected problems:\n{joined}");
    }

    #[test]
    fn zero_storage_and_bad_cpu_are_rejected() {
        let spec = spec_from_yaml(
            r#"
broker: { storage: { size: "0" }, resources: { requests: { cpu: "fast" } } }
"#,
        );
        let joined = spec.validate().expect_err("invalid").join("\n");
        assert!(
            joined.contains("broker.storage.size must be positive"),
            "{joined}"
        );
        assert!(joined.contains("broker.resources.requests.cpu"), "{joined}");
    }

    #[test]
    fn paused_by_annotation_or_spec() {
        let mut cluster = RocketMQCluster::new("demo", spec_from_yaml("{}"));
        assert!(!cluster.is_paused());
        cluster.metadata.annotations =
            Some([(PAUSED_ANNOTATION.to_string(), "True".to_string())].into());
        assert!(cluster.is_paused());
        cluster.metadata.annotations =
            Some([(PAUSED_ANNOTATION.to_string(), "false".to_string())].into());
        assert!(!cluster.is_paused());
        cluster.spec.paused = true;
        assert!(cluster.is_paused());
    }
}
