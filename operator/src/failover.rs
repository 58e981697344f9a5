//! The failover watcher: follows each broker group's master as the controllers see it and
//! makes Kubernetes agree.
//!
//! Every [`WatcherSettings::poll_interval`] the watcher asks each cluster's controllers
//! (CONTROLLER_GET_SYNC_STATE_DATA through the shared [`ControllerClient`], which finds the
//! leader and follows CONTROLLER_NOT_LEADER answers) for every group's master, epoch and
//! SyncStateSet, maps the brokers' addresses to pods (pod IP + the pod's `remoting` port),
//! and then:
//! - writes `status.brokerGroups[].{master,epoch,syncStateSet}` and the `ControllerQuorum`
//!   condition under its own field manager ([`FAILOVER_FIELD_MANAGER`]), so the reconciler
//!   (which builds the master Service from that status) never undoes a failover;
//! - points the group's master Service at the master pod by pod name, so the Service never
//!   selects two pods;
//! - labels each broker pod with its role ([`ROLE_LABEL`]);
//! - publishes an Event when a group's master changes;
//! - asks the controllers to elect (CONTROLLER_ELECT_MASTER, designating a ready in-sync
//!   replica) when the master pod has been gone, terminating or NotReady for longer than
//!   [`WatcherSettings::elect_grace`] and the controllers have not acted — e.g. a master
//!   whose process still heartbeats but whose pod fails readiness.
//!
//! Decisions are pure functions ([`plan_group`]); [`watch_once`] does the I/O for one
//! cluster and [`run`] repeats it for every cluster, holding per-cluster state in its own
//! task only.

use futures_util::StreamExt;
use kube::runtime::WatchStreamExt;
use std::{
    collections::{BTreeMap, HashMap},
    future::Future,
    sync::Arc,
    time::Duration,
};

use k8s_openapi::{
    api::{
        apps::v1::StatefulSet,
        core::v1::{ConfigMap, Pod, Service},
    },
    jiff::{SignedDuration, Timestamp},
};
use kube::{
    Api, Resource, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams, Preconditions},
    runtime::events::{Event, EventType, Recorder},
};
use rocketmq_client::ControllerClient;
use rocketmq_common::controller::{GroupReplicasInfo, ReplicaIdentity};
use rocketmq_common::protocol::ResponseCode;
use rocketmq_common::remoting::{ClientConfig, RemotingClient};

use crate::{
    crd::{BrokerGroupStatus, ClusterCondition, ExternalAccessMode, RocketMQCluster},
    drain,
    error::{Error, Result},
    objects::{BROKER_GROUP_LABEL, ClusterNames, POD_NAME_LABEL},
    reconciler::Context,
    rollout::{RolloutStep, plan_rollout},
};

/// Field manager of everything the watcher writes to the cluster's status.
pub const FAILOVER_FIELD_MANAGER: &str = "rocketmq-operator-failover";
/// Pod label naming a broker pod's role: [`MASTER`] or [`SLAVE`].
pub const ROLE_LABEL: &str = "rocketmq.rs/role";
/// [`ROLE_LABEL`] value of a group's master.
pub const MASTER: &str = "master";
/// [`ROLE_LABEL`] value of the other replicas.
pub const SLAVE: &str = "slave";
/// Condition type the watcher owns: whether the controllers answer with a leader.
pub const CONTROLLER_QUORUM: &str = "ControllerQuorum";
/// How long the watcher lets a burst of broker pod events settle before it looks.
const POD_EVENT_SETTLE: Duration = Duration::from_millis(500);
/// Name of the broker container port the brokers advertise (`listenPort`).
const REMOTING_PORT_NAME: &str = "remoting";

/// How the watcher runs.
#[derive(Clone)]
pub struct WatcherSettings {
    /// Pause between two looks at every cluster.
    pub poll_interval: Duration,
    /// How long a master pod may be gone, terminating or NotReady before the watcher asks
    /// the controllers to elect; also the least time between two such requests per group.
    pub elect_grace: Duration,
    /// Timeout of each controller request.
    pub controller_timeout: Duration,
    /// The controllers of a cluster (`host:port`). The default is the stable DNS name of
    /// each controller pod; tests point it at processes of their own.
    pub controller_addresses: ControllerAddresses,
}

/// Where a cluster's controllers are (`host:port` each).
pub type ControllerAddresses = Arc<dyn Fn(&RocketMQCluster) -> Vec<String> + Send + Sync>;

impl Default for WatcherSettings {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(3),
            elect_grace: Duration::from_secs(30),
            controller_timeout: Duration::from_secs(3),
            controller_addresses: Arc::new(controller_addresses),
        }
    }
}

impl std::fmt::Debug for WatcherSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatcherSettings")
            .field("poll_interval", &self.poll_interval)
            .field("elect_grace", &self.elect_grace)
            .field("controller_timeout", &self.controller_timeout)
            .finish_non_exhaustive()
    }
}

/// Every controller pod of `cluster`, by its stable DNS name.
pub fn controller_addresses(cluster: &RocketMQCluster) -> Vec<String> {
    let names = ClusterNames::new(
        cluster.metadata.name.as_deref().unwrap_or_default(),
        cluster.metadata.namespace.as_deref().unwrap_or_default(),
    );
    names
        .controller_addr(cluster.spec.controller.replicas)
        .split(';')
        .map(str::to_string)
        .collect()
}

/// A broker pod as the watcher needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerPod {
    /// Pod name.
    pub name: String,
    /// Broker group (= `brokerName`), from the group label.
    pub group: String,
    /// `podIP:remotingPort`, the address the broker registers with the controllers; `None`
    /// until the pod has an IP.
    pub address: Option<String>,
    /// Whether the pod is Ready and not being deleted.
    pub serving: bool,
    /// Current [`ROLE_LABEL`] value.
    pub role: Option<String>,
    /// The StatefulSet revision the pod runs (`controller-revision-hash`).
    pub revision: Option<String>,
    /// Whether someone asked for a restart with [`MANUAL_ROLLING_UPDATE_ANNOTATION`].
    pub restart_requested: bool,
    /// The pod's uid (deletes are guarded by it).
    pub uid: Option<String>,
}

/// Pod annotation (`"true"`) asking the operator to restart that broker pod the safe way:
/// one pod at a time, handing mastership over first if it is the master.
pub const MANUAL_ROLLING_UPDATE_ANNOTATION: &str = "rocketmq.rs/manual-rolling-update";
/// Label the StatefulSet controller puts on each pod with the revision it was created from.
const REVISION_LABEL: &str = "controller-revision-hash";

impl BrokerPod {
    /// The broker view of `pod`; `None` for a pod without the group label.
    pub fn from_pod(pod: &Pod) -> Option<Self> {
        let labels = pod.metadata.labels.as_ref();
        let group = labels?.get(BROKER_GROUP_LABEL)?.clone();
        let status = pod.status.as_ref();
        let remoting = pod.spec.as_ref().and_then(|spec| {
            spec.containers
                .iter()
                .flat_map(|c| c.ports.iter().flatten())
                .find(|p| p.name.as_deref() == Some(REMOTING_PORT_NAME))
        });
        let port = remoting.map_or(crate::objects::BROKER_PORT, |p| p.container_port);
        // A broker published on its node's address announces that address (HostPort
        // external access), otherwise its pod IP.
        let ip = if remoting.is_some_and(|p| p.host_port.is_some()) {
            status.and_then(|s| s.host_ip.as_deref())
        } else {
            status.and_then(|s| s.pod_ip.as_deref())
        };
        let address = ip
            .filter(|ip| !ip.is_empty())
            .map(|ip| format!("{ip}:{port}"));
        let ready = status
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
            });
        let restart_requested = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(MANUAL_ROLLING_UPDATE_ANNOTATION))
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        Some(Self {
            name: pod.name_any(),
            group,
            address,
            serving: ready && pod.metadata.deletion_timestamp.is_none(),
            role: labels.and_then(|l| l.get(ROLE_LABEL)).cloned(),
            revision: labels.and_then(|l| l.get(REVISION_LABEL)).cloned(),
            restart_requested,
            uid: pod.metadata.uid.clone(),
        })
    }
}

/// An election the watcher asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Election {
    /// The replica to elect (its controller id), or `None` to let the election policy pick
    /// among the live in-sync replicas.
    pub designated: Option<i64>,
    /// Pod of the designated replica.
    pub candidate_pod: Option<String>,
}

/// What the watcher concludes for one broker group.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupPlan {
    /// The status the watcher owns (`None` when the controllers do not know the group yet).
    pub status: Option<BrokerGroupStatus>,
    /// The pod the master Service must select (`None`: leave it as it is).
    pub master_pod: Option<String>,
    /// Pods whose role label must change, with the new role.
    pub role_labels: Vec<(String, &'static str)>,
    /// Why the group's master is not serving, if it is not.
    pub master_problem: Option<String>,
    /// The replica that could take over now (a live in-sync replica with a serving pod).
    pub takeover: Option<Election>,
}

/// Plans one group from the controllers' view (`None`: the controllers do not know it) and
/// the group's pods.
pub fn plan_group(name: &str, view: Option<&GroupReplicasInfo>, pods: &[BrokerPod]) -> GroupPlan {
    let Some(view) = view else {
        return GroupPlan::default();
    };
    let pod_at = |address: &str| pods.iter().find(|p| p.address.as_deref() == Some(address));
    let master = view
        .master_address
        .as_deref()
        .filter(|address| !address.is_empty());
    let master_pod = master.and_then(pod_at);
    let in_sync: Vec<String> = view
        .in_sync_replicas
        .iter()
        .map(|r| {
            pod_at(&r.broker_address).map_or_else(|| r.broker_address.clone(), |p| p.name.clone())
        })
        .collect();
    let status = BrokerGroupStatus {
        name: name.to_string(),
        master: master_pod.map(|p| p.name.clone()),
        epoch: master.map(|_| i64::from(view.master_epoch)),
        sync_state_set: Some(in_sync),
        ..BrokerGroupStatus::default()
    };
    let role_labels = match master_pod {
        Some(master_pod) => pods
            .iter()
            .filter_map(|p| {
                let role = if p.name == master_pod.name {
                    MASTER
                } else {
                    SLAVE
                };
                (p.role.as_deref() != Some(role)).then(|| (p.name.clone(), role))
            })
            .collect(),
        // No master at all: nobody may carry the master label.
        None if master.is_none() => pods
            .iter()
            .filter(|p| p.role.as_deref() == Some(MASTER))
            .map(|p| (p.name.clone(), SLAVE))
            .collect(),
        // A master whose pod is unknown (restarting with a new IP): wait for it.
        None => Vec::new(),
    };
    let master_problem = match (master, master_pod) {
        (None, _) => Some("the controllers know no master".to_string()),
        (Some(address), None) => Some(format!("no pod serves the master address {address}")),
        (Some(_), Some(pod)) if !pod.serving => {
            Some(format!("master pod {} is not ready", pod.name))
        }
        _ => None,
    };
    let master_id = view.master_broker_id;
    let takeover = if master.is_none() {
        // The policy picks the best live in-sync replica (epoch, then offset).
        Some(Election {
            designated: None,
            candidate_pod: None,
        })
    } else {
        candidate(&view.in_sync_replicas, master_id, pods)
    };
    GroupPlan {
        status: Some(status),
        master_pod: master_pod.map(|p| p.name.clone()),
        role_labels,
        master_problem,
        takeover,
    }
}

/// The live in-sync replica other than the master whose pod serves (lowest pod name first,
/// so the choice is stable).
fn candidate(
    in_sync: &[ReplicaIdentity],
    master_id: Option<i64>,
    pods: &[BrokerPod],
) -> Option<Election> {
    in_sync
        .iter()
        .filter(|r| r.alive && Some(r.broker_id) != master_id)
        .filter_map(|r| {
            let pod = pods
                .iter()
                .find(|p| p.serving && p.address.as_deref() == Some(r.broker_address.as_str()))?;
            Some(Election {
                designated: Some(r.broker_id),
                candidate_pod: Some(pod.name.clone()),
            })
        })
        .min_by(|a, b| a.candidate_pod.cmp(&b.candidate_pod))
}

/// Per-cluster memory of the watcher, kept by the task that watches the cluster.
pub struct ClusterWatch {
    controllers: ControllerClient,
    /// One Remoting client for the cluster's brokers, so its connections are reused from
    /// look to look.
    brokers: rocketmq_client::MqClient,
    /// Since when each group's master has not been serving.
    problem_since: HashMap<String, Timestamp>,
    /// When the watcher last asked for an election, per group.
    last_election: HashMap<String, Timestamp>,
    /// Groups that got their first master and still need the cluster's topics.
    topics_pending: std::collections::BTreeSet<String>,
    /// Groups given the cluster's topics by this process.
    topics_done: std::collections::BTreeSet<String>,
    /// Per broker address, the live settings last found applied there.
    live_applied: HashMap<String, Vec<(String, String)>>,
}

impl ClusterWatch {
    /// Fresh state for `cluster`.
    pub fn new(cluster: &RocketMQCluster, settings: &WatcherSettings) -> Self {
        let remoting = RemotingClient::new(ClientConfig {
            connect_timeout: settings.controller_timeout,
            ..ClientConfig::default()
        });
        Self {
            controllers: ControllerClient::new(
                remoting,
                (settings.controller_addresses)(cluster),
                settings.controller_timeout,
            ),
            brokers: rocketmq_client::MqClient::for_brokers(settings.controller_timeout),
            problem_since: HashMap::new(),
            last_election: HashMap::new(),
            topics_pending: std::collections::BTreeSet::new(),
            topics_done: std::collections::BTreeSet::new(),
            live_applied: HashMap::new(),
        }
    }
}

/// Whether the watcher should ask for an election now: the master has not been serving for
/// `grace`, and no request was made within `grace`.
pub fn election_due(
    problem_since: Option<Timestamp>,
    last_election: Option<Timestamp>,
    now: Timestamp,
    grace: Duration,
) -> bool {
    let grace = SignedDuration::try_from(grace).unwrap_or(SignedDuration::MAX);
    let elapsed = |since: Timestamp| now.duration_since(since) >= grace;
    problem_since.is_some_and(elapsed) && last_election.is_none_or(elapsed)
}

/// One look at `cluster`: ask its controllers, then bring the master Services, pod labels,
/// status and Events in line, and ask for elections that are due.
pub async fn watch_once(
    cluster: &RocketMQCluster,
    context: &Context,
    state: &mut ClusterWatch,
    settings: &WatcherSettings,
) -> Result<()> {
    let namespace = cluster
        .namespace()
        .ok_or(Error::MissingObjectKey("metadata.namespace"))?;
    let name = cluster.name_any();
    let names = ClusterNames::new(&name, &namespace);
    let groups: Vec<String> = (0..cluster.spec.broker.groups)
        .map(|g| names.broker_group(g))
        .collect();
    let now = Timestamp::now();
    // Groups taken out of the spec whose StatefulSets still exist are drained, then deleted.
    let stateful_sets: Vec<StatefulSet> = list_broker_objects(context, &namespace, &name).await?;
    let existing: Vec<String> = stateful_sets.iter().map(|s| s.name_any()).collect();
    let removed = drain::removed_groups(cluster, &existing);
    let asked: Vec<String> = groups.iter().chain(&removed).cloned().collect();
    let view = state.controllers.sync_state_data(&asked).await;
    let quorum = quorum_condition(cluster, &view, &now.to_string());
    let Ok(view) = view else {
        // Without the controllers nothing else can be known: only say so.
        tracing::warn!(cluster = %name, message = %quorum.message, "controllers unreachable");
        patch_watcher_status(cluster, context, &namespace, None, quorum).await?;
        return Ok(());
    };
    let mut pods = broker_pods(context, &namespace, &name).await?;
    let services: Vec<Service> = list_broker_objects(context, &namespace, &name).await?;
    if cluster.spec.broker.external_access.mode == ExternalAccessMode::LoadBalancer {
        // Brokers announce their load balancer's address: that is how the controllers
        // know them.
        let announced = publish_external_addresses(cluster, context, &namespace, &services).await?;
        for pod in &mut pods {
            if let Some(address) = announced.get(&pod.name) {
                pod.address = Some(address.clone());
            }
        }
    }
    let plans: Vec<(i32, GroupPlan)> = (0..cluster.spec.broker.groups)
        .map(|g| {
            let group = names.broker_group(g);
            let group_pods: Vec<BrokerPod> =
                pods.iter().filter(|p| p.group == group).cloned().collect();
            (
                g,
                plan_group(&group, view.replicas_info_table.get(&group), &group_pods),
            )
        })
        .collect();
    // Status first: the reconciler builds the master Services from it, so a pass that runs
    // in between already agrees with the Service patches below.
    let mut statuses: Vec<BrokerGroupStatus> = Vec::new();
    for (g, plan) in &plans {
        let Some(mut status) = plan.status.clone() else {
            continue;
        };
        // A group brought back while it drained takes writes again; until that worked, it
        // stays marked as draining so the next look retries.
        let group = names.broker_group(*g);
        let was_draining = cluster
            .status
            .as_ref()
            .and_then(|s| s.broker_groups.iter().find(|b| b.name == group))
            .and_then(|b| b.draining.clone());
        if let (Some(draining), Some(group_view)) =
            (was_draining, view.replicas_info_table.get(&group))
            && !drain::make_writable(cluster, &state.brokers, &group, group_view).await
        {
            status.draining = Some(draining);
        }
        statuses.push(status);
    }
    for group in &removed {
        let group_view = view.replicas_info_table.get(group);
        if let Some(draining) = drain::drain_group(
            cluster,
            context,
            &state.brokers,
            &namespace,
            group,
            group_view,
            now,
        )
        .await?
        {
            let group_pods: Vec<BrokerPod> =
                pods.iter().filter(|p| &p.group == group).cloned().collect();
            let mut status = plan_group(group, group_view, &group_pods)
                .status
                .unwrap_or_else(|| BrokerGroupStatus {
                    name: group.clone(),
                    ..BrokerGroupStatus::default()
                });
            status.draining = Some(draining);
            statuses.push(status);
        }
    }
    patch_watcher_status(cluster, context, &namespace, Some(statuses), quorum).await?;
    for (g, plan) in &plans {
        let master_service = names.broker_group_master(*g);
        let target = GroupTarget {
            group: names.broker_group(*g),
            current_master_service: services.iter().find(|s| s.name_any() == master_service),
            master_service,
        };
        act_on_group(
            cluster, context, state, settings, &namespace, &target, plan, now,
        )
        .await?;
        if let Some(group_view) = view.replicas_info_table.get(&target.group) {
            apply_live_config(cluster, context, state, &target.group, group_view).await;
        }
        // Restarts only in a group whose master serves: a failover comes first.
        if plan.master_problem.is_none()
            && let Some(group_view) = view.replicas_info_table.get(&target.group)
        {
            let group_pods: Vec<BrokerPod> = pods
                .iter()
                .filter(|p| p.group == target.group)
                .cloned()
                .collect();
            let update_revision = stateful_sets
                .iter()
                .find(|s| s.name_any() == target.group)
                .and_then(|s| s.status.as_ref()?.update_revision.clone());
            let rollout = Rollout {
                group: &target.group,
                view: group_view,
                pods: &group_pods,
                update_revision: update_revision.as_deref(),
            };
            roll_group(cluster, context, state, &namespace, rollout).await?;
        }
    }
    copy_topics_to_new_groups(cluster, context, state, &view, &plans, &names).await;
    Ok(())
}

/// The address clients reach a LoadBalancer Service at: its ingress IP, or its ingress
/// hostname (resolved by the caller).
pub fn ingress_host(service: &Service) -> Option<String> {
    let ingress = service
        .status
        .as_ref()?
        .load_balancer
        .as_ref()?
        .ingress
        .as_ref()?
        .first()?;
    ingress
        .ip
        .clone()
        .filter(|ip| !ip.is_empty())
        .or_else(|| ingress.hostname.clone().filter(|h| !h.is_empty()))
}

/// Writes each broker pod's load balancer address into its group's addresses ConfigMap
/// (the broker waits for its key, then announces it) and returns pod → `address:port` as
/// the brokers announce it.
async fn publish_external_addresses(
    cluster: &RocketMQCluster,
    context: &Context,
    namespace: &str,
    services: &[Service],
) -> Result<HashMap<String, String>> {
    let name = cluster.name_any();
    let names = ClusterNames::new(&name, namespace);
    let config_maps: Api<ConfigMap> = Api::namespaced(context.client.clone(), namespace);
    let mut announced = HashMap::new();
    for g in 0..cluster.spec.broker.groups {
        let group = names.broker_group(g);
        let mut wanted: BTreeMap<String, String> = BTreeMap::new();
        for ordinal in 0..cluster.spec.broker.replicas_per_group {
            let service_name = names.broker_external(g, ordinal);
            let Some(host) = services
                .iter()
                .find(|s| s.name_any() == service_name)
                .and_then(ingress_host)
            else {
                continue;
            };
            // brokerIP1 is an IP: a load balancer known by name is resolved now.
            let ip = match host.parse::<std::net::IpAddr>() {
                Ok(ip) => Some(ip),
                Err(_) => tokio::net::lookup_host((host.as_str(), 0))
                    .await
                    .ok()
                    .and_then(|mut found| found.find(|a| a.is_ipv4()))
                    .map(|a| a.ip()),
            };
            let Some(ip) = ip else {
                tracing::warn!(service = %service_name, %host, "cannot resolve the load balancer's name");
                continue;
            };
            let pod = format!("{group}-{ordinal}");
            announced.insert(pod.clone(), format!("{ip}:{}", crate::objects::BROKER_PORT));
            wanted.insert(pod, ip.to_string());
        }
        let config_map = names.broker_group_external_addresses(g);
        let current = config_maps
            .get_opt(&config_map)
            .await
            .map_err(|source| Error::Apply {
                kind: "ConfigMap".into(),
                name: config_map.clone(),
                source,
            })?
            .and_then(|c| c.data)
            .unwrap_or_default();
        if current == wanted || wanted.is_empty() {
            continue;
        }
        let patch = serde_json::json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": config_map},
            "data": wanted,
        });
        config_maps
            .patch(
                &config_map,
                &PatchParams::apply(FAILOVER_FIELD_MANAGER).force(),
                &Patch::Apply(&patch),
            )
            .await
            .map_err(|source| Error::Apply {
                kind: "ConfigMap".into(),
                name: config_map.clone(),
                source,
            })?;
        let listed: Vec<String> = wanted.iter().map(|(p, ip)| format!("{p}={ip}")).collect();
        publish(
            cluster,
            context,
            EventType::Normal,
            "ExternalAddresses",
            format!(
                "broker group {group}: brokers announce {}",
                listed.join(", ")
            ),
        )
        .await;
    }
    Ok(announced)
}

/// Brings the settings brokers take while they run (`spec.broker.config` entries among
/// [`BROKER_LIVE_KEYS`](rocketmq_common::config::BROKER_LIVE_KEYS)) to every broker of the
/// group with UPDATE_BROKER_CONFIG, so changing them restarts nothing. Each broker is checked
/// again only when the wanted settings change (or it was not reachable).
async fn apply_live_config(
    cluster: &RocketMQCluster,
    context: &Context,
    state: &mut ClusterWatch,
    group: &str,
    view: &GroupReplicasInfo,
) {
    let wanted = crate::objects::broker_live_entries(cluster);
    if wanted.is_empty() {
        return;
    }
    let client = &state.brokers;
    let mut changed: Vec<String> = Vec::new();
    let mut updated_brokers = 0;
    for address in drain::broker_addresses(view) {
        if state.live_applied.get(&address) == Some(&wanted) {
            continue;
        }
        let current = match client.broker_config(&address).await {
            Ok(current) => current,
            Err(error) => {
                tracing::debug!(%group, broker = %address, %error, "cannot read the broker's config");
                continue;
            }
        };
        let differing: Vec<(&str, &str)> = wanted
            .iter()
            .filter(|(key, value)| {
                !current
                    .iter()
                    .any(|(k, v)| k == key && v.eq_ignore_ascii_case(value))
            })
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if !differing.is_empty() {
            if let Err(error) = client
                .update_broker_config_entries(&address, &differing)
                .await
            {
                tracing::warn!(%group, broker = %address, %error, "cannot apply live settings");
                continue;
            }
            updated_brokers += 1;
            for (key, value) in &differing {
                let entry = format!("{key}={value}");
                if !changed.contains(&entry) {
                    changed.push(entry);
                }
            }
        }
        state.live_applied.insert(address, wanted.clone());
    }
    if updated_brokers > 0 {
        publish(
            cluster,
            context,
            EventType::Normal,
            "ConfigApplied",
            format!(
                "broker group {group}: applied {} on {updated_brokers} brokers without a restart",
                changed.join(", ")
            ),
        )
        .await;
    }
}

/// Gives each group that just got its first master the topics of the lowest other group
/// with a master; retried on the next look until it worked.
async fn copy_topics_to_new_groups(
    cluster: &RocketMQCluster,
    context: &Context,
    state: &mut ClusterWatch,
    view: &rocketmq_common::controller::BrokerReplicasInfo,
    plans: &[(i32, GroupPlan)],
    names: &ClusterNames<'_>,
) {
    let recorded_master = |group: &str| {
        cluster
            .status
            .as_ref()
            .and_then(|s| s.broker_groups.iter().find(|b| b.name == group))
            .and_then(|b| b.master.clone())
    };
    let master_of = |group: &str| {
        view.replicas_info_table
            .get(group)
            .and_then(|v| v.master_address.clone())
            .filter(|a| !a.is_empty())
    };
    for (g, _) in plans {
        let group = names.broker_group(*g);
        if master_of(&group).is_some()
            && recorded_master(&group).is_none()
            && !state.topics_done.contains(&group)
        {
            state.topics_pending.insert(group);
        }
    }
    let pending: Vec<String> = state.topics_pending.iter().cloned().collect();
    let cluster_name = cluster.name_any();
    for group in pending {
        let Some(target) = master_of(&group) else {
            continue;
        };
        let source = plans
            .iter()
            .map(|(g, _)| names.broker_group(*g))
            .filter(|other| *other != group)
            .find_map(|other| master_of(&other).map(|address| (other, address)));
        let Some((source_group, source)) = source else {
            // The only group: nothing to copy from.
            state.topics_pending.remove(&group);
            state.topics_done.insert(group);
            continue;
        };
        let skip = [cluster_name.as_str(), source_group.as_str()];
        match crate::topics::copy_topics(&state.brokers, &source, &target, &skip).await {
            Ok(created) => {
                state.topics_pending.remove(&group);
                state.topics_done.insert(group.clone());
                if !created.is_empty() {
                    publish(
                        cluster,
                        context,
                        EventType::Normal,
                        "TopicsCreated",
                        format!(
                            "broker group {group}: created {} topics as {source_group} has them: {}{}",
                            created.len(),
                            created.iter().take(10).cloned().collect::<Vec<_>>().join(", "),
                            // Events refuse notes over 1 KiB.
                            if created.len() > 10 { ", ..." } else { "" }
                        ),
                    )
                    .await;
                }
            }
            Err(error) => {
                tracing::warn!(%group, %error, "cannot give the new broker group the cluster's topics; retrying");
            }
        }
    }
}

/// What a rolling-restart step of one group looks at.
struct Rollout<'a> {
    group: &'a str,
    view: &'a GroupReplicasInfo,
    pods: &'a [BrokerPod],
    /// The group StatefulSet's current template revision.
    update_revision: Option<&'a str>,
}

/// Takes the group's next rolling-restart step, if one is due.
async fn roll_group(
    cluster: &RocketMQCluster,
    context: &Context,
    state: &ClusterWatch,
    namespace: &str,
    rollout: Rollout<'_>,
) -> Result<()> {
    let Rollout {
        group,
        view,
        pods,
        update_revision,
    } = rollout;
    let desired = cluster.spec.broker.replicas_per_group;
    match plan_rollout(view, pods, desired, update_revision) {
        RolloutStep::Done => {}
        RolloutStep::Wait(why) => {
            tracing::info!(%group, %why, "rolling restart waits");
        }
        RolloutStep::Restart { pod, why } => {
            let uid = pods
                .iter()
                .find(|p| p.name == pod)
                .and_then(|p| p.uid.clone());
            let api: Api<Pod> = Api::namespaced(context.client.clone(), namespace);
            // Guarded by uid: never delete a replacement that appeared meanwhile.
            let params = DeleteParams {
                preconditions: uid.map(|uid| Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            tracing::info!(%group, %pod, %why, "restarting broker pod");
            match api.delete(&pod, &params).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if matches!(status.code, 404 | 409) => return Ok(()),
                Err(source) => {
                    return Err(Error::Delete {
                        kind: "Pod".into(),
                        name: pod,
                        source,
                    });
                }
            }
            publish(
                cluster,
                context,
                EventType::Normal,
                "RollingRestart",
                format!("broker group {group}: restarting {pod} ({why}); one pod at a time"),
            )
            .await;
        }
        RolloutStep::HandOver { from, to } => {
            let target = to.candidate_pod.clone().unwrap_or_default();
            let answer = state
                .controllers
                .elect_master(&cluster.name_any(), group, to.designated)
                .await;
            let (type_, note) = match answer {
                Ok(a) if a.code == ResponseCode::Success.as_i32() => (
                    EventType::Normal,
                    format!(
                        "broker group {group}: handed mastership from {from} to {target} (epoch \
                         {}) before restarting {from}",
                        a.header.master_epoch.unwrap_or_default()
                    ),
                ),
                Ok(a) => (
                    EventType::Warning,
                    format!(
                        "broker group {group}: handing mastership from {from} to {target} was \
                         refused ({}: {}); {from} is not restarted",
                        a.code, a.remark
                    ),
                ),
                Err(error) => (
                    EventType::Warning,
                    format!(
                        "broker group {group}: handing mastership from {from} to {target} \
                         failed: {error}; {from} is not restarted"
                    ),
                ),
            };
            publish(cluster, context, type_, "HandOver", note).await;
        }
    }
    Ok(())
}

/// Names of one group's objects, and its master Service as listed at the start of the look.
struct GroupTarget<'a> {
    group: String,
    master_service: String,
    current_master_service: Option<&'a Service>,
}

/// Repoints the Service, relabels pods, tells about a new master and asks for an election
/// when one is due.
#[allow(clippy::too_many_arguments)]
async fn act_on_group(
    cluster: &RocketMQCluster,
    context: &Context,
    state: &mut ClusterWatch,
    settings: &WatcherSettings,
    namespace: &str,
    target: &GroupTarget<'_>,
    plan: &GroupPlan,
    now: Timestamp,
) -> Result<()> {
    let client = &context.client;
    let group = target.group.as_str();
    let params = PatchParams {
        field_manager: Some(FAILOVER_FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    if let Some(master_pod) = &plan.master_pod {
        let service_name = target.master_service.clone();
        let services: Api<Service> = Api::namespaced(client.clone(), namespace);
        let current = target.current_master_service;
        let selected = current.and_then(|s| {
            s.spec
                .as_ref()?
                .selector
                .as_ref()?
                .get(POD_NAME_LABEL)
                .cloned()
        });
        if current.is_some() && selected.as_deref() != Some(master_pod.as_str()) {
            tracing::info!(service = %service_name, pod = %master_pod, "pointing the master Service at the master");
            let patch = serde_json::json!({"spec": {"selector": {POD_NAME_LABEL: master_pod}}});
            services
                .patch(&service_name, &params, &Patch::Merge(&patch))
                .await
                .map_err(|source| Error::Apply {
                    kind: "Service".into(),
                    name: service_name.clone(),
                    source,
                })?;
        }
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    for (pod, role) in &plan.role_labels {
        let patch = serde_json::json!({"metadata": {"labels": {ROLE_LABEL: role}}});
        let result = pods.patch(pod, &params, &Patch::Merge(&patch)).await;
        match result {
            Ok(_) => {}
            // The pod went away meanwhile; its replacement is labelled next time.
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => {
                return Err(Error::Apply {
                    kind: "Pod".into(),
                    name: pod.clone(),
                    source,
                });
            }
        }
    }
    announce_master_change(cluster, context, group, plan).await;

    let Some(problem) = &plan.master_problem else {
        state.problem_since.remove(group);
        return Ok(());
    };
    let since = *state.problem_since.entry(group.to_string()).or_insert(now);
    if !election_due(
        Some(since),
        state.last_election.get(group).copied(),
        now,
        settings.elect_grace,
    ) {
        return Ok(());
    }
    let waited = now.duration_since(since).as_secs();
    let Some(election) = &plan.takeover else {
        state.last_election.insert(group.to_string(), now);
        publish(
            cluster,
            context,
            EventType::Warning,
            "NoFailoverCandidate",
            format!(
                "broker group {group}: {problem} for {waited}s and no in-sync replica with a \
                 ready pod can take over"
            ),
        )
        .await;
        return Ok(());
    };
    state.last_election.insert(group.to_string(), now);
    let target = election.candidate_pod.as_deref().map_or_else(
        || "the best in-sync replica".to_string(),
        |p| format!("pod {p}"),
    );
    tracing::warn!(%group, %problem, %target, "asking the controllers to elect a new master");
    let cluster_name = cluster.name_any();
    let answer = state
        .controllers
        .elect_master(&cluster_name, group, election.designated)
        .await;
    let (type_, note) = match answer {
        Ok(answer) if answer.code == ResponseCode::Success.as_i32() => (
            EventType::Normal,
            format!(
                "broker group {group}: {problem} for {waited}s; the controllers elected {target} \
                 (epoch {})",
                answer.header.master_epoch.unwrap_or_default()
            ),
        ),
        Ok(answer) => (
            EventType::Warning,
            format!(
                "broker group {group}: {problem} for {waited}s; asked to elect {target}, the \
                 controllers answered {}: {}",
                answer.code, answer.remark
            ),
        ),
        Err(error) => (
            EventType::Warning,
            format!("broker group {group}: {problem}; asking for an election failed: {error}"),
        ),
    };
    publish(cluster, context, type_, "ElectMaster", note).await;
    Ok(())
}

/// A Normal Event when a group's master pod or epoch differs from the recorded one.
async fn announce_master_change(
    cluster: &RocketMQCluster,
    context: &Context,
    group: &str,
    plan: &GroupPlan,
) {
    let Some(status) = &plan.status else { return };
    let Some(master) = &status.master else { return };
    let recorded = cluster
        .status
        .as_ref()
        .and_then(|s| s.broker_groups.iter().find(|g| g.name == group));
    let before = recorded.and_then(|g| g.master.as_deref().map(|m| (m, g.epoch)));
    if before == Some((master.as_str(), status.epoch)) {
        return;
    }
    let epoch = status.epoch.unwrap_or_default();
    let note = match before {
        Some((old, _)) if old != master => {
            format!("broker group {group}: master is now {master} (epoch {epoch}), was {old}")
        }
        Some(_) => format!("broker group {group}: {master} is master again, epoch {epoch}"),
        None => format!("broker group {group}: master is {master} (epoch {epoch})"),
    };
    publish(cluster, context, EventType::Normal, "MasterChanged", note).await;
}

/// Publishes an Event on `cluster`.
pub(crate) async fn publish(
    cluster: &RocketMQCluster,
    context: &Context,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(note),
        action: "Failover".into(),
        secondary: None,
    };
    // A fresh recorder: a shared one folds Events of the same reason within minutes into a
    // series that keeps the first note, and each failover has its own story to tell.
    let recorder = Recorder::new(context.client.clone(), context.reporter.clone());
    if let Err(error) = recorder.publish(&event, &cluster.object_ref(&())).await {
        tracing::warn!(cluster = %cluster.name_any(), %error, "cannot publish Event");
    }
}

/// The broker pods of cluster `name`.
async fn broker_pods(context: &Context, namespace: &str, name: &str) -> Result<Vec<BrokerPod>> {
    let pods: Vec<Pod> = list_broker_objects(context, namespace, name).await?;
    Ok(pods.iter().filter_map(BrokerPod::from_pod).collect())
}

/// Every object of kind `K` belonging to the broker groups of cluster `name` (by the labels
/// all of them carry).
pub(crate) async fn list_broker_objects<K>(
    context: &Context,
    namespace: &str,
    name: &str,
) -> Result<Vec<K>>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(context.client.clone(), namespace);
    let selector = format!(
        "app.kubernetes.io/name=rocketmq,app.kubernetes.io/instance={name},\
         app.kubernetes.io/component=broker"
    );
    let list = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| Error::Apply {
            kind: format!("{}List", K::kind(&())),
            name: name.to_string(),
            source,
        })?;
    Ok(list.items)
}

/// The `ControllerQuorum` condition from the outcome of asking the controllers; the
/// transition time moves only when the status flips.
pub fn quorum_condition<T, E: std::fmt::Display>(
    cluster: &RocketMQCluster,
    answer: &std::result::Result<T, E>,
    now: &str,
) -> ClusterCondition {
    let (status, reason, message) = match answer {
        Ok(_) => (
            "True",
            "LeaderAnswers",
            "the controller leader answers".to_string(),
        ),
        Err(error) => (
            "False",
            "NoControllerLeader",
            format!("no controller leader answers: {error}"),
        ),
    };
    let before = cluster
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == CONTROLLER_QUORUM));
    let last_transition_time = match before {
        Some(before) if before.status == status => before.last_transition_time.clone(),
        _ => None,
    }
    .or_else(|| Some(now.to_string()));
    ClusterCondition {
        type_: CONTROLLER_QUORUM.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        last_transition_time,
        observed_generation: cluster.metadata.generation,
    }
}

/// Applies the watcher's part of the status, when it differs from what is recorded.
/// `groups: None` leaves the groups as recorded (the controllers did not answer).
async fn patch_watcher_status(
    cluster: &RocketMQCluster,
    context: &Context,
    namespace: &str,
    groups: Option<Vec<BrokerGroupStatus>>,
    quorum: ClusterCondition,
) -> Result<()> {
    let recorded = cluster.status.clone().unwrap_or_default();
    let groups = groups.unwrap_or_else(|| {
        recorded
            .broker_groups
            .iter()
            .filter(|g| g.master.is_some() || g.sync_state_set.is_some() || g.draining.is_some())
            .map(watcher_fields)
            .collect()
    });
    // Compared as the sets of entries carrying watcher fields: an entry the watcher no
    // longer reports (a deleted group) is a change too.
    let owned = |g: &BrokerGroupStatus| {
        g.master.is_some()
            || g.epoch.is_some()
            || g.sync_state_set.is_some()
            || g.draining.is_some()
    };
    let recorded_groups: BTreeMap<&str, BrokerGroupStatus> = recorded
        .broker_groups
        .iter()
        .filter(|g| owned(g))
        .map(|g| (g.name.as_str(), watcher_fields(g)))
        .collect();
    let computed_groups: BTreeMap<&str, BrokerGroupStatus> = groups
        .iter()
        .filter(|g| owned(g))
        .map(|g| (g.name.as_str(), g.clone()))
        .collect();
    let groups_unchanged = recorded_groups == computed_groups;
    let quorum_unchanged = recorded.conditions.iter().any(|c| {
        c.type_ == quorum.type_ && c.status == quorum.status && c.message == quorum.message
    });
    if groups_unchanged && quorum_unchanged {
        return Ok(());
    }
    let name = cluster.name_any();
    let patch = serde_json::json!({
        "apiVersion": RocketMQCluster::api_version(&()),
        "kind": RocketMQCluster::kind(&()),
        "status": { "brokerGroups": groups, "conditions": [quorum] },
    });
    let api: Api<RocketMQCluster> = Api::namespaced(context.client.clone(), namespace);
    api.patch_status(
        &name,
        &PatchParams::apply(FAILOVER_FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|source| Error::PatchStatus { name, source })?;
    Ok(())
}

/// Only the fields the watcher owns.
fn watcher_fields(group: &BrokerGroupStatus) -> BrokerGroupStatus {
    BrokerGroupStatus {
        name: group.name.clone(),
        master: group.master.clone(),
        epoch: group.epoch,
        sync_state_set: group.sync_state_set.clone(),
        draining: group.draining.clone(),
        ..BrokerGroupStatus::default()
    }
}

/// Watches every cluster in `namespace` (or everywhere) until `shutdown` resolves: one look
/// per cluster per poll interval, clusters looked at concurrently so a cluster whose
/// controllers time out never delays the others.
pub async fn run(
    context: Arc<Context>,
    namespace: Option<&str>,
    settings: WatcherSettings,
    shutdown: impl Future<Output = ()>,
) {
    let api: Api<RocketMQCluster> = match namespace {
        Some(namespace) => Api::namespaced(context.client.clone(), namespace),
        None => Api::all(context.client.clone()),
    };
    let mut watches: HashMap<String, ClusterWatch> = HashMap::new();
    // Broker pods changing (deleted, turning NotReady, restarted) wake the watcher before
    // the poll interval is over; the poll still covers what only the controllers see.
    let pods: Api<Pod> = match namespace {
        Some(namespace) => Api::namespaced(context.client.clone(), namespace),
        None => Api::all(context.client.clone()),
    };
    let pod_changed = Arc::new(tokio::sync::Notify::new());
    let pod_watch = {
        let pod_changed = pod_changed.clone();
        let config = kube::runtime::watcher::Config::default().labels(
            "app.kubernetes.io/component=broker,app.kubernetes.io/managed-by=rocketmq-operator",
        );
        let events = kube::runtime::watcher(pods, config)
            .default_backoff()
            .for_each(move |event| {
                let pod_changed = pod_changed.clone();
                async move {
                    match event {
                        Ok(_) => pod_changed.notify_one(),
                        Err(error) => tracing::debug!(%error, "broker pod watch interrupted"),
                    }
                }
            });
        async move {
            events.await;
            // The stream never ends while the API answers; should it, polling carries on.
            std::future::pending::<()>().await;
        }
    };
    let looking = async {
        loop {
            tokio::select! {
                () = tokio::time::sleep(settings.poll_interval) => {}
                () = pod_changed.notified() => {
                    // Let a burst of pod events settle into one look.
                    tokio::time::sleep(POD_EVENT_SETTLE.min(settings.poll_interval)).await;
                }
            }
            let clusters = match api.list(&ListParams::default()).await {
                Ok(list) => list.items,
                Err(error) => {
                    tracing::warn!(%error, "failover watcher cannot list clusters");
                    continue;
                }
            };
            let live: Vec<String> = clusters.iter().filter_map(|c| c.uid()).collect();
            watches.retain(|uid, _| live.contains(uid));
            let mut looks = Vec::new();
            for cluster in &clusters {
                if cluster.is_paused() || cluster.metadata.deletion_timestamp.is_some() {
                    continue;
                }
                let Some(uid) = cluster.uid() else { continue };
                // Taken out of the map while its look runs; put back afterwards.
                let state = watches
                    .remove(&uid)
                    .unwrap_or_else(|| ClusterWatch::new(cluster, &settings));
                let (context, settings) = (&context, &settings);
                looks.push(async move {
                    let mut state = state;
                    if let Err(error) = watch_once(cluster, context, &mut state, settings).await {
                        tracing::warn!(cluster = %cluster.name_any(), %error, "failover watcher pass failed");
                    }
                    (uid, state)
                });
            }
            for (uid, state) in futures_util::future::join_all(looks).await {
                watches.insert(uid, state);
            }
        }
    };
    tokio::select! {
        () = looking => {}
        () = pod_watch => {}
        () = shutdown => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(id: i64, address: &str, alive: bool) -> ReplicaIdentity {
        ReplicaIdentity {
            broker_name: "demo-broker-0".into(),
            broker_id: id,
            broker_address: address.into(),
            alive,
        }
    }

    fn pod(name: &str, ip: &str, serving: bool, role: Option<&str>) -> BrokerPod {
        BrokerPod {
            name: name.into(),
            group: "demo-broker-0".into(),
            address: Some(format!("{ip}:10911")),
            serving,
            role: role.map(str::to_string),
            revision: None,
            restart_requested: false,
            uid: None,
        }
    }

    fn view(master: Option<(i64, &str)>, in_sync: Vec<ReplicaIdentity>) -> GroupReplicasInfo {
        GroupReplicasInfo {
            master_broker_id: master.map(|m| m.0),
            master_address: master.map(|m| m.1.to_string()),
            master_epoch: 4,
            sync_state_set_epoch: 7,
            in_sync_replicas: in_sync,
            not_in_sync_replicas: Vec::new(),
        }
    }

    #[test]
    fn the_master_is_found_by_address_and_every_other_pod_is_a_slave() {
        let pods = [
            pod("demo-broker-0-0", "10.0.0.1", true, Some(MASTER)),
            pod("demo-broker-0-1", "10.0.0.2", true, None),
            pod("demo-broker-0-2", "10.0.0.3", true, Some(SLAVE)),
        ];
        let in_sync = vec![
            replica(2, "10.0.0.2:10911", true),
            replica(3, "10.0.0.3:10911", true),
            replica(9, "10.9.9.9:10911", true),
        ];
        let plan = plan_group(
            "demo-broker-0",
            Some(&view(Some((2, "10.0.0.2:10911")), in_sync)),
            &pods,
        );
        assert_eq!(plan.master_pod.as_deref(), Some("demo-broker-0-1"));
        let status = plan.status.expect("status");
        assert_eq!(status.master.as_deref(), Some("demo-broker-0-1"));
        assert_eq!(status.epoch, Some(4));
        assert_eq!(
            status.sync_state_set,
            Some(vec![
                "demo-broker-0-1".to_string(),
                "demo-broker-0-2".to_string(),
                "10.9.9.9:10911".to_string()
            ]),
            "an address without a pod is still shown"
        );
        assert_eq!(
            plan.role_labels,
            vec![
                ("demo-broker-0-0".to_string(), SLAVE),
                ("demo-broker-0-1".to_string(), MASTER)
            ],
            "only labels that change are written"
        );
        assert_eq!(plan.master_problem, None);
    }

    #[test]
    fn a_not_ready_master_has_a_problem_and_a_ready_in_sync_replica_can_take_over() {
        let pods = [
            pod("demo-broker-0-0", "10.0.0.1", false, Some(MASTER)),
            pod("demo-broker-0-1", "10.0.0.2", false, Some(SLAVE)),
            pod("demo-broker-0-2", "10.0.0.3", true, Some(SLAVE)),
        ];
        let in_sync = vec![
            replica(1, "10.0.0.1:10911", true),
            replica(2, "10.0.0.2:10911", true),
            replica(3, "10.0.0.3:10911", true),
        ];
        let plan = plan_group(
            "demo-broker-0",
            Some(&view(Some((1, "10.0.0.1:10911")), in_sync)),
            &pods,
        );
        assert_eq!(
            plan.master_problem.as_deref(),
            Some("master pod demo-broker-0-0 is not ready")
        );
        assert_eq!(
            plan.takeover,
            Some(Election {
                designated: Some(3),
                candidate_pod: Some("demo-broker-0-2".into())
            }),
            "the not-ready replica is passed over"
        );
        // The Service keeps pointing at the recorded master until the controllers move it.
        assert_eq!(plan.master_pod.as_deref(), Some("demo-broker-0-0"));
    }

    #[test]
    fn no_takeover_without_a_live_in_sync_replica_with_a_ready_pod() {
        let pods = [
            pod("demo-broker-0-0", "10.0.0.1", false, Some(MASTER)),
            pod("demo-broker-0-1", "10.0.0.2", true, Some(SLAVE)),
        ];
        // Replica 2 is ready but out of the SyncStateSet: electing it could lose messages.
        let in_sync = vec![replica(1, "10.0.0.1:10911", true)];
        let plan = plan_group(
            "demo-broker-0",
            Some(&view(Some((1, "10.0.0.1:10911")), in_sync)),
            &pods,
        );
        assert!(plan.master_problem.is_some());
        assert_eq!(plan.takeover, None);
    }

    #[test]
    fn a_master_pod_restarting_with_a_new_ip_keeps_the_labels_and_the_service() {
        let pods = [
            pod("demo-broker-0-0", "10.0.0.7", false, Some(MASTER)),
            pod("demo-broker-0-1", "10.0.0.2", true, Some(SLAVE)),
        ];
        let in_sync = vec![replica(1, "10.0.0.1:10911", false)];
        let plan = plan_group(
            "demo-broker-0",
            Some(&view(Some((1, "10.0.0.1:10911")), in_sync)),
            &pods,
        );
        assert_eq!(plan.master_pod, None, "the Service is left alone");
        assert!(plan.role_labels.is_empty());
        assert_eq!(
            plan.master_problem.as_deref(),
            Some("no pod serves the master address 10.0.0.1:10911")
        );
        assert_eq!(plan.status.expect("status").master, None);
    }

    #[test]
    fn without_a_master_nobody_is_labelled_master_and_the_policy_picks() {
        let pods = [
            pod("demo-broker-0-0", "10.0.0.1", true, Some(MASTER)),
            pod("demo-broker-0-1", "10.0.0.2", true, Some(SLAVE)),
        ];
        let plan = plan_group("demo-broker-0", Some(&view(None, Vec::new())), &pods);
        assert_eq!(
            plan.role_labels,
            vec![("demo-broker-0-0".to_string(), SLAVE)]
        );
        assert_eq!(
            plan.takeover,
            Some(Election {
                designated: None,
                candidate_pod: None
            })
        );
        let status = plan.status.expect("status");
        assert_eq!((status.master, status.epoch), (None, None));
    }

    #[test]
    fn a_group_the_controllers_do_not_know_is_left_alone() {
        let pods = [pod("demo-broker-0-0", "10.0.0.1", true, None)];
        assert_eq!(
            plan_group("demo-broker-0", None, &pods),
            GroupPlan::default()
        );
    }

    #[test]
    fn elections_wait_for_the_grace_period_and_are_not_repeated_within_it() {
        let t0: Timestamp = "2026-12-07T00:00:00Z".parse().unwrap();
        let at = |s: i64| t0 + SignedDuration::from_secs(s);
        let grace = Duration::from_secs(30);
        assert!(!election_due(None, None, at(100), grace), "no problem");
        assert!(!election_due(Some(t0), None, at(29), grace));
        assert!(election_due(Some(t0), None, at(30), grace));
        assert!(!election_due(Some(t0), Some(at(30)), at(45), grace));
        assert!(election_due(Some(t0), Some(at(30)), at(60), grace));
    }

    #[test]
    fn a_load_balancer_is_reached_by_its_ingress_ip_or_name() {
        let service = |ingress: serde_json::Value| -> Service {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "demo-broker-0-0-external"},
                "status": {"loadBalancer": {"ingress": ingress}}
            }))
            .unwrap()
        };
        assert_eq!(
            ingress_host(&service(serde_json::json!([{"ip": "203.0.113.7"}]))).as_deref(),
            Some("203.0.113.7")
        );
        assert_eq!(
            ingress_host(&service(serde_json::json!([{"hostname": "lb.example"}]))).as_deref(),
            Some("lb.example")
        );
        assert_eq!(
            ingress_host(&service(serde_json::json!([]))),
            None,
            "not provisioned yet"
        );
    }

    #[test]
    fn broker_pods_read_address_readiness_group_and_role() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "demo-broker-0-1", "labels": {
                BROKER_GROUP_LABEL: "demo-broker-0", ROLE_LABEL: "slave"}},
            "spec": {"containers": [{"name": "broker", "ports": [
                {"name": "ha", "containerPort": 10912},
                {"name": "remoting", "containerPort": 10911}]}]},
            "status": {"podIP": "10.1.2.3", "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        assert_eq!(
            BrokerPod::from_pod(&pod),
            Some(BrokerPod {
                name: "demo-broker-0-1".into(),
                group: "demo-broker-0".into(),
                address: Some("10.1.2.3:10911".into()),
                serving: true,
                role: Some("slave".into()),
                revision: None,
                restart_requested: false,
                uid: None,
            })
        );
        let mut published = pod.clone();
        published.spec.as_mut().unwrap().containers[0]
            .ports
            .as_mut()
            .unwrap()[1]
            .host_port = Some(10911);
        published.status.as_mut().unwrap().host_ip = Some("192.0.2.10".into());
        assert_eq!(
            BrokerPod::from_pod(&published).unwrap().address.as_deref(),
            Some("192.0.2.10:10911"),
            "a broker on its node's address is known by that address"
        );
        let mut terminating = pod.clone();
        terminating.metadata.deletion_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(Timestamp::now()),
        );
        assert!(!BrokerPod::from_pod(&terminating).unwrap().serving);
        let mut other = pod;
        other.metadata.labels = None;
        assert_eq!(BrokerPod::from_pod(&other), None);
    }
}
