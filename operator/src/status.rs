//! The cluster's status, computed as a pure function of the spec, the previous status and
//! what the applied workloads report.
//!
//! The reconciler writes the result with server-side apply under its own field manager.
//! Fields the failover watcher owns (`brokerGroups[].master`, `epoch`, `syncStateSet`) are
//! never set here, so the two writers never overwrite each other.

use k8s_openapi::api::{
    apps::v1::{Deployment, StatefulSet},
    core::v1::Pod,
};

use crate::{
    crd::{
        BrokerGroupStatus, ClusterCondition, ClusterEndpoints, ClusterPhase, RocketMQCluster,
        RocketMQClusterStatus,
    },
    objects::ClusterNames,
};

/// Condition type: every component is ready.
pub const READY: &str = "Ready";
/// Condition type: a rollout or scale is under way.
pub const PROGRESSING: &str = "Progressing";
/// Condition type: the operator cannot bring the cluster to its spec.
pub const DEGRADED: &str = "Degraded";
/// Condition type: every broker group has all its pods ready and a master.
pub const BROKERS_READY: &str = "BrokersReady";
/// Condition type: every proxy pod is ready.
pub const PROXIES_READY: &str = "ProxiesReady";

/// Readiness of one workload as its controller reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadReadiness {
    /// StatefulSet or Deployment name.
    pub name: String,
    /// Pods the workload should run.
    pub desired: i32,
    /// Pods passing readiness.
    pub ready: i32,
    /// Pods running the current template.
    pub updated: i32,
    /// Whether the workload controller has seen the latest spec.
    pub generation_observed: bool,
}

impl WorkloadReadiness {
    /// Ready when every desired pod is ready and up to date.
    pub fn is_ready(&self) -> bool {
        self.generation_observed && self.ready >= self.desired && self.updated >= self.desired
    }

    /// Readiness of a StatefulSet as returned by the API server.
    pub fn of_stateful_set(stateful_set: &StatefulSet) -> Self {
        let status = stateful_set.status.as_ref();
        let generation = stateful_set.metadata.generation;
        Self {
            name: stateful_set.metadata.name.clone().unwrap_or_default(),
            desired: stateful_set.spec.replicas.unwrap_or(1),
            ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
            updated: status.and_then(|s| s.updated_replicas).unwrap_or(0),
            generation_observed: status.and_then(|s| s.observed_generation) >= generation,
        }
    }

    /// Readiness of a Deployment as returned by the API server.
    pub fn of_deployment(deployment: &Deployment) -> Self {
        let status = deployment.status.as_ref();
        let generation = deployment.metadata.generation;
        Self {
            name: deployment.metadata.name.clone().unwrap_or_default(),
            desired: deployment.spec.replicas.unwrap_or(1),
            ready: status.and_then(|s| s.ready_replicas).unwrap_or(0),
            updated: status.and_then(|s| s.updated_replicas).unwrap_or(0),
            generation_observed: status.and_then(|s| s.observed_generation) >= generation,
        }
    }
}

/// Why the last reconcile did not bring the cluster to its spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// PascalCase reason (`InvalidSpec`, `ApplyFailed`, ...).
    pub reason: String,
    /// What went wrong, for humans.
    pub message: String,
}

/// Status after a reconcile that applied every object; `workloads` are the StatefulSets
/// and the Deployment as the API server returned them.
pub fn observed_status(
    cluster: &RocketMQCluster,
    workloads: &[WorkloadReadiness],
    now: &str,
) -> RocketMQClusterStatus {
    let not_ready: Vec<String> = workloads
        .iter()
        .filter(|workload| !workload.is_ready())
        .map(|workload| {
            format!(
                "{} ({}/{})",
                workload.name, workload.ready, workload.desired
            )
        })
        .collect();
    let ready_count = workloads.len() - not_ready.len();
    let anything_ready = workloads.iter().any(|workload| workload.ready > 0);
    let brokers = brokers_condition(cluster, workloads);
    let proxies = proxies_condition(cluster, workloads);
    // Pods alone do not make a cluster: every group needs a master and the controllers a
    // leader, or sends fail and failover cannot happen.
    let mut waiting_for = not_ready.clone();
    waiting_for.extend(
        masterless_groups(cluster)
            .into_iter()
            .map(|g| format!("a master in {g}")),
    );
    if let Some(quorum) = lost_quorum(cluster) {
        waiting_for.push(format!("a controller leader ({})", quorum.message));
    }
    let phase = match (waiting_for.is_empty(), anything_ready) {
        (true, _) => ClusterPhase::Running,
        (false, true) => ClusterPhase::Progressing,
        (false, false) => ClusterPhase::Pending,
    };
    let mut conditions = if waiting_for.is_empty() {
        vec![
            condition(
                READY,
                true,
                "AllComponentsReady",
                "every component is ready and every broker group has a master",
            ),
            condition(
                PROGRESSING,
                false,
                "ReconcileComplete",
                "every component runs its spec",
            ),
            condition(DEGRADED, false, "AsExpected", ""),
        ]
    } else {
        let message = format!("waiting for {}", waiting_for.join(", "));
        let reason = if not_ready.is_empty() {
            "ClusterNotServing"
        } else {
            "ComponentsNotReady"
        };
        vec![
            condition(READY, false, reason, &message),
            condition(PROGRESSING, true, "RollingOut", &message),
            condition(DEGRADED, false, "AsExpected", ""),
        ]
    };
    conditions.push(brokers);
    conditions.push(proxies);
    let mut status = base_status(cluster, phase, conditions, now);
    status.ready_components = Some(format!("{ready_count}/{}", workloads.len()));
    status.broker_groups = broker_groups(cluster, workloads);
    status
}

/// The cluster's broker group names, in order.
fn group_names(cluster: &RocketMQCluster) -> Vec<String> {
    let name = cluster.metadata.name.as_deref().unwrap_or_default();
    let namespace = cluster.metadata.namespace.as_deref().unwrap_or_default();
    let names = ClusterNames::new(name, namespace);
    (0..cluster.spec.broker.groups)
        .map(|g| names.broker_group(g))
        .collect()
}

/// Groups of the spec without a master recorded by the failover watcher.
fn masterless_groups(cluster: &RocketMQCluster) -> Vec<String> {
    let recorded = previous(cluster)
        .map(|s| s.broker_groups.as_slice())
        .unwrap_or_default();
    group_names(cluster)
        .into_iter()
        .filter(|g| !recorded.iter().any(|r| &r.name == g && r.master.is_some()))
        .collect()
}

/// The failover watcher's `ControllerQuorum` condition when it says no leader answers.
fn lost_quorum(cluster: &RocketMQCluster) -> Option<&ClusterCondition> {
    previous(cluster)?
        .conditions
        .iter()
        .find(|c| c.type_ == crate::failover::CONTROLLER_QUORUM && c.status == "False")
}

/// `BrokersReady`: every group's pods ready and a master recorded, or which are not.
fn brokers_condition(
    cluster: &RocketMQCluster,
    workloads: &[WorkloadReadiness],
) -> ClusterCondition {
    let groups = group_names(cluster);
    let masterless = masterless_groups(cluster);
    let problems: Vec<String> = groups
        .iter()
        .filter_map(|g| {
            let mut problem = Vec::new();
            match workloads.iter().find(|w| &w.name == g) {
                Some(w) if w.is_ready() => {}
                Some(w) => problem.push(format!("{}/{} pods ready", w.ready, w.desired)),
                None => problem.push("not created".to_string()),
            }
            if masterless.contains(g) {
                problem.push("no master yet".to_string());
            }
            (!problem.is_empty()).then(|| format!("{g}: {}", problem.join(", ")))
        })
        .collect();
    if problems.is_empty() {
        condition(
            BROKERS_READY,
            true,
            "AllGroupsServing",
            &format!(
                "{n}/{n} broker groups have every pod ready and a master",
                n = groups.len()
            ),
        )
    } else {
        condition(
            BROKERS_READY,
            false,
            "GroupsNotServing",
            &format!(
                "{}/{} broker groups serving; {}",
                groups.len() - problems.len(),
                groups.len(),
                problems.join("; ")
            ),
        )
    }
}

/// `ProxiesReady`: the proxy Deployment's ready pods.
fn proxies_condition(
    cluster: &RocketMQCluster,
    workloads: &[WorkloadReadiness],
) -> ClusterCondition {
    let name = cluster.metadata.name.as_deref().unwrap_or_default();
    let namespace = cluster.metadata.namespace.as_deref().unwrap_or_default();
    let proxy = ClusterNames::new(name, namespace).component(crate::objects::Component::Proxy);
    match workloads.iter().find(|w| w.name == proxy) {
        Some(w) if w.is_ready() => condition(
            PROXIES_READY,
            true,
            "AllProxiesReady",
            &format!("{}/{} proxies ready", w.ready, w.desired),
        ),
        Some(w) => condition(
            PROXIES_READY,
            false,
            "ProxiesNotReady",
            &format!("{}/{} proxies ready", w.ready, w.desired),
        ),
        None => condition(
            PROXIES_READY,
            false,
            "ProxiesNotReady",
            "no proxy Deployment yet",
        ),
    }
}

/// How long a cluster may keep pods that cannot start before it is `Degraded`.
pub const PROGRESS_DEADLINE_SECONDS: i64 = 600;

/// Container waiting reasons that need a person (a bad image, a crashing server, a missing
/// Secret or ConfigMap), as opposed to a container that is merely starting.
const STUCK_REASONS: [&str; 7] = [
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// A pod that cannot start, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodProblem {
    /// Pod name.
    pub pod: String,
    /// Kubernetes' reason (`ImagePullBackOff`, `Unschedulable`, ...).
    pub reason: String,
    /// Kubernetes' message, if any.
    pub message: String,
}

/// The pods among `pods` that cannot start: unschedulable, or a container stuck waiting for
/// one of [`STUCK_REASONS`].
pub fn pod_problems(pods: &[Pod]) -> Vec<PodProblem> {
    let mut problems = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(status) = pod.status.as_ref() else {
            continue;
        };
        let stuck = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(status.container_statuses.iter().flatten())
            .filter_map(|c| c.state.as_ref()?.waiting.as_ref())
            .find(|waiting| {
                waiting
                    .reason
                    .as_deref()
                    .is_some_and(|reason| STUCK_REASONS.contains(&reason))
            });
        if let Some(waiting) = stuck {
            problems.push(PodProblem {
                pod: name,
                reason: waiting.reason.clone().unwrap_or_default(),
                message: waiting.message.clone().unwrap_or_default(),
            });
            continue;
        }
        let unschedulable = status.conditions.iter().flatten().find(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
        });
        if let Some(condition) = unschedulable {
            problems.push(PodProblem {
                pod: name,
                reason: "Unschedulable".into(),
                message: condition.message.clone().unwrap_or_default(),
            });
        }
    }
    problems
}

/// Says in the status why pods are not running: appended to the Ready and Progressing
/// messages, and — once the cluster has been progressing for longer than
/// [`PROGRESS_DEADLINE_SECONDS`] with such pods — `Degraded` (reason `PodsNotStarting`).
pub fn with_pod_problems(
    mut status: RocketMQClusterStatus,
    cluster: &RocketMQCluster,
    problems: &[PodProblem],
    now: &str,
) -> RocketMQClusterStatus {
    if problems.is_empty() || status.phase == Some(ClusterPhase::Running) {
        return status;
    }
    let mut described: Vec<String> = problems
        .iter()
        .take(3)
        .map(|p| {
            let mut text = format!("{} on {}", p.reason, p.pod);
            if !p.message.is_empty() {
                let message: String = p.message.chars().take(160).collect();
                text.push_str(&format!(" ({message})"));
            }
            text
        })
        .collect();
    if problems.len() > 3 {
        described.push(format!("{} more", problems.len() - 3));
    }
    let why = described.join("; ");
    for condition in &mut status.conditions {
        if condition.type_ == READY || condition.type_ == PROGRESSING {
            condition.message = format!("{}: {why}", condition.message);
        }
    }
    let progressing_since = previous(cluster)
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == PROGRESSING))
        .filter(|c| c.status == "True")
        .and_then(|c| c.last_transition_time.as_deref())
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok());
    let now_ts = now.parse::<k8s_openapi::jiff::Timestamp>().ok();
    let past_deadline = match (progressing_since, now_ts) {
        (Some(since), Some(now_ts)) => {
            now_ts.as_second() - since.as_second() > PROGRESS_DEADLINE_SECONDS
        }
        _ => false,
    };
    if past_deadline {
        status.phase = Some(ClusterPhase::Degraded);
        if let Some(degraded) = status.conditions.iter_mut().find(|c| c.type_ == DEGRADED) {
            let was_degraded = degraded.status == "True";
            degraded.status = "True".into();
            degraded.reason = "PodsNotStarting".into();
            degraded.message = format!(
                "pods have not started for over {} minutes: {why}",
                PROGRESS_DEADLINE_SECONDS / 60
            );
            if !was_degraded {
                degraded.last_transition_time = Some(now.to_string());
            }
        }
    }
    status
}

/// Status after a reconcile that failed: Degraded with the failure, readiness as last seen.
pub fn failed_status(
    cluster: &RocketMQCluster,
    failure: &Failure,
    now: &str,
) -> RocketMQClusterStatus {
    let mut conditions = carried_over(cluster, &[READY, PROGRESSING, BROKERS_READY, PROXIES_READY]);
    conditions.push(condition(DEGRADED, true, &failure.reason, &failure.message));
    let mut status = base_status(cluster, ClusterPhase::Degraded, conditions, now);
    status.ready_components = previous(cluster).and_then(|s| s.ready_components.clone());
    status
}

/// Status while reconciliation is paused: nothing is touched, so only the phase and the
/// Progressing condition change.
pub fn paused_status(cluster: &RocketMQCluster, now: &str) -> RocketMQClusterStatus {
    let mut conditions = carried_over(cluster, &[READY, DEGRADED, BROKERS_READY, PROXIES_READY]);
    conditions.push(condition(
        PROGRESSING,
        false,
        "Paused",
        "reconciliation is paused by spec.paused or the rocketmq.rs/paused annotation",
    ));
    let mut status = base_status(cluster, ClusterPhase::Paused, conditions, now);
    status.ready_components = previous(cluster).and_then(|s| s.ready_components.clone());
    // Nothing of the current generation was applied: observedGeneration keeps naming the
    // last one that was.
    status.observed_generation = previous(cluster).and_then(|s| s.observed_generation);
    status
}

fn previous(cluster: &RocketMQCluster) -> Option<&RocketMQClusterStatus> {
    cluster.status.as_ref()
}

fn carried_over(cluster: &RocketMQCluster, types: &[&str]) -> Vec<ClusterCondition> {
    types
        .iter()
        .map(|type_| {
            previous(cluster)
                .and_then(|status| status.conditions.iter().find(|c| c.type_ == *type_))
                .cloned()
                .unwrap_or_else(|| ClusterCondition {
                    type_: type_.to_string(),
                    status: "Unknown".into(),
                    reason: "NotObserved".into(),
                    message: String::new(),
                    last_transition_time: None,
                    observed_generation: None,
                })
        })
        .collect()
}

fn condition(type_: &str, status: bool, reason: &str, message: &str) -> ClusterCondition {
    ClusterCondition {
        type_: type_.into(),
        status: if status { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: None,
        observed_generation: None,
    }
}

/// Fills what every status has: generation, endpoints, masters, and transition times that
/// move only when a condition's status actually changes.
fn base_status(
    cluster: &RocketMQCluster,
    phase: ClusterPhase,
    mut conditions: Vec<ClusterCondition>,
    now: &str,
) -> RocketMQClusterStatus {
    let generation = cluster.metadata.generation;
    for condition in &mut conditions {
        let before = previous(cluster).and_then(|status| {
            status
                .conditions
                .iter()
                .find(|c| c.type_ == condition.type_)
        });
        condition.last_transition_time = match before {
            Some(before) if before.status == condition.status => before
                .last_transition_time
                .clone()
                .or_else(|| Some(now.to_string())),
            _ => Some(now.to_string()),
        };
        if condition.observed_generation.is_none() {
            condition.observed_generation = generation;
        }
    }
    let name = cluster.metadata.name.as_deref().unwrap_or_default();
    let namespace = cluster.metadata.namespace.as_deref().unwrap_or_default();
    let names = ClusterNames::new(name, namespace);
    let spec = &cluster.spec;
    let masters = previous(cluster).map_or(0, |status| {
        let current_group = |group: &BrokerGroupStatus| {
            (0..spec.broker.groups).any(|g| names.broker_group(g) == group.name)
        };
        status
            .broker_groups
            .iter()
            .filter(|group| current_group(group) && group.master.is_some())
            .count()
    });
    RocketMQClusterStatus {
        observed_generation: generation,
        phase: Some(phase),
        ready_components: None,
        masters: Some(i32::try_from(masters).unwrap_or(i32::MAX)),
        conditions,
        endpoints: Some(ClusterEndpoints {
            name_server: Some(names.namesrv_service_addr()),
            proxy: Some(names.proxy_grpc_addr()),
            controller: Some(names.controller_addr(spec.controller.replicas)),
        }),
        broker_groups: Vec::new(),
    }
}

/// Replica counts per broker group; master, epoch and SyncStateSet stay with the failover
/// watcher.
fn broker_groups(
    cluster: &RocketMQCluster,
    workloads: &[WorkloadReadiness],
) -> Vec<BrokerGroupStatus> {
    let name = cluster.metadata.name.as_deref().unwrap_or_default();
    let namespace = cluster.metadata.namespace.as_deref().unwrap_or_default();
    let names = ClusterNames::new(name, namespace);
    (0..cluster.spec.broker.groups)
        .map(|group| {
            let group_name = names.broker_group(group);
            let workload = workloads.iter().find(|w| w.name == group_name);
            BrokerGroupStatus {
                replicas: Some(cluster.spec.broker.replicas_per_group),
                ready_replicas: Some(workload.map_or(0, |w| w.ready)),
                name: group_name,
                ..BrokerGroupStatus::default()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::RocketMQClusterSpec;

    /// A cluster of two broker groups whose masters the failover watcher has recorded.
    fn cluster() -> RocketMQCluster {
        let mut cluster = RocketMQCluster::new("demo", RocketMQClusterSpec::default());
        cluster.metadata.namespace = Some("mq".into());
        cluster.metadata.generation = Some(4);
        cluster.spec.broker.groups = 2;
        cluster.status = Some(with_masters(RocketMQClusterStatus::default()));
        cluster
    }

    /// `status` as the API server holds it after the reconciler's apply: the failover
    /// watcher's fields (here: both groups' masters) stay beside it.
    fn with_masters(mut status: RocketMQClusterStatus) -> RocketMQClusterStatus {
        for g in 0..2 {
            let name = format!("demo-broker-{g}");
            match status.broker_groups.iter_mut().find(|b| b.name == name) {
                Some(group) => group.master = Some(format!("{name}-0")),
                None => status.broker_groups.push(BrokerGroupStatus {
                    master: Some(format!("{name}-0")),
                    name,
                    ..BrokerGroupStatus::default()
                }),
            }
        }
        status
    }

    fn workload(name: &str, desired: i32, ready: i32) -> WorkloadReadiness {
        WorkloadReadiness {
            name: name.into(),
            desired,
            ready,
            updated: desired,
            generation_observed: true,
        }
    }

    fn find<'a>(status: &'a RocketMQClusterStatus, type_: &str) -> &'a ClusterCondition {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap_or_else(|| panic!("no {type_} condition in {status:?}"))
    }

    #[test]
    fn all_ready_is_running() {
        let workloads = [
            workload("demo-namesrv", 2, 2),
            workload("demo-controller", 3, 3),
            workload("demo-broker-0", 3, 3),
            workload("demo-broker-1", 3, 3),
            workload("demo-proxy", 2, 2),
        ];
        let status = observed_status(&cluster(), &workloads, "t1");
        assert_eq!(status.phase, Some(ClusterPhase::Running));
        assert_eq!(status.ready_components.as_deref(), Some("5/5"));
        assert_eq!(status.observed_generation, Some(4));
        assert_eq!(find(&status, READY).status, "True");
        assert_eq!(find(&status, PROGRESSING).status, "False");
        assert_eq!(find(&status, DEGRADED).status, "False");
        assert_eq!(status.broker_groups.len(), 2);
        assert_eq!(status.broker_groups[1].ready_replicas, Some(3));
        assert_eq!(
            status.endpoints.unwrap().name_server.as_deref(),
            Some("demo-namesrv.mq.svc:9876")
        );
    }

    #[test]
    fn partial_readiness_is_progressing_and_names_the_laggards() {
        let workloads = [
            workload("demo-namesrv", 2, 2),
            workload("demo-broker-1", 3, 1),
        ];
        let status = observed_status(&cluster(), &workloads, "t1");
        assert_eq!(status.phase, Some(ClusterPhase::Progressing));
        assert_eq!(status.ready_components.as_deref(), Some("1/2"));
        let ready = find(&status, READY);
        assert_eq!(ready.status, "False");
        assert!(
            ready.message.contains("demo-broker-1 (1/3)"),
            "{}",
            ready.message
        );
        let nothing = observed_status(&cluster(), &[workload("demo-namesrv", 2, 0)], "t1");
        assert_eq!(nothing.phase, Some(ClusterPhase::Pending));
    }

    #[test]
    fn stale_generation_is_not_ready() {
        let mut stale = workload("demo-namesrv", 2, 2);
        stale.generation_observed = false;
        assert!(!stale.is_ready());
    }

    #[test]
    fn transition_time_moves_only_when_status_flips() {
        let mut cluster = cluster();
        let first = observed_status(&cluster, &[workload("demo-namesrv", 1, 0)], "t1");
        cluster.status = Some(with_masters(first));
        let same = observed_status(&cluster, &[workload("demo-namesrv", 1, 0)], "t2");
        assert_eq!(
            find(&same, READY).last_transition_time.as_deref(),
            Some("t1")
        );
        cluster.status = Some(with_masters(same));
        let flipped = observed_status(&cluster, &[workload("demo-namesrv", 1, 1)], "t3");
        assert_eq!(
            find(&flipped, READY).last_transition_time.as_deref(),
            Some("t3")
        );
    }

    #[test]
    fn failure_keeps_readiness_and_sets_degraded() {
        let mut cluster = cluster();
        cluster.status = Some(with_masters(observed_status(
            &cluster,
            &[workload("demo-namesrv", 1, 1)],
            "t1",
        )));
        let failure = Failure {
            reason: "ApplyFailed".into(),
            message: "applying StatefulSet demo-broker-0 failed".into(),
        };
        let status = failed_status(&cluster, &failure, "t2");
        assert_eq!(status.phase, Some(ClusterPhase::Degraded));
        assert_eq!(find(&status, READY).status, "True");
        let degraded = find(&status, DEGRADED);
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", "ApplyFailed")
        );
        assert_eq!(degraded.last_transition_time.as_deref(), Some("t2"));
        assert_eq!(status.ready_components.as_deref(), Some("1/1"));
    }

    #[test]
    fn masters_count_groups_with_a_recorded_master() {
        let mut cluster = cluster();
        cluster.status = Some(RocketMQClusterStatus {
            broker_groups: vec![
                BrokerGroupStatus {
                    name: "demo-broker-0".into(),
                    master: Some("demo-broker-0-1".into()),
                    ..BrokerGroupStatus::default()
                },
                BrokerGroupStatus {
                    name: "demo-broker-1".into(),
                    ..BrokerGroupStatus::default()
                },
                BrokerGroupStatus {
                    name: "demo-broker-7".into(),
                    master: Some("demo-broker-7-0".into()),
                    ..BrokerGroupStatus::default()
                },
            ],
            ..RocketMQClusterStatus::default()
        });
        let status = paused_status(&cluster, "t1");
        assert_eq!(
            status.observed_generation, None,
            "a cluster paused before its first apply has observed no generation"
        );
        assert_eq!(status.masters, Some(1), "group 7 is not part of the spec");
        assert_eq!(status.phase, Some(ClusterPhase::Paused));
        assert_eq!(find(&status, PROGRESSING).reason, "Paused");
        assert_eq!(find(&status, READY).status, "Unknown");
    }

    #[test]
    fn a_paused_cluster_keeps_the_last_applied_generation() {
        let mut cluster = cluster();
        cluster.metadata.generation = Some(5);
        cluster.status = Some(RocketMQClusterStatus {
            observed_generation: Some(3),
            ..RocketMQClusterStatus::default()
        });
        let status = paused_status(&cluster, "t1");
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(find(&status, PROGRESSING).observed_generation, Some(5));
    }

    fn pod(name: &str, status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}, "status": status}))
            .expect("a Pod")
    }

    #[test]
    fn pods_that_cannot_start_are_named_with_their_reason() {
        let pods = [
            pod(
                "demo-broker-0-0",
                serde_json::json!({"phase": "Pending", "containerStatuses": [
                {"name": "broker", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                 "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"rocketmq-rs:9\""}}}]}),
            ),
            pod(
                "demo-namesrv-0",
                serde_json::json!({"phase": "Pending", "conditions": [
                {"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                 "message": "0/1 nodes are available: insufficient memory"}]}),
            ),
            pod(
                "demo-proxy-abc",
                serde_json::json!({"phase": "Pending", "containerStatuses": [
                {"name": "proxy", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                 "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
            ),
            pod("demo-controller-0", serde_json::json!({"phase": "Running"})),
        ];
        let problems = pod_problems(&pods);
        assert_eq!(
            problems
                .iter()
                .map(|p| (p.pod.as_str(), p.reason.as_str()))
                .collect::<Vec<_>>(),
            vec![
                ("demo-broker-0-0", "ImagePullBackOff"),
                ("demo-namesrv-0", "Unschedulable")
            ]
        );

        // The status says so; past the progress deadline the cluster is Degraded.
        let mut cluster = cluster();
        let waiting = observed_status(
            &cluster,
            &[workload("demo-broker-0", 3, 0)],
            "2026-01-01T00:00:00Z",
        );
        let early = with_pod_problems(waiting.clone(), &cluster, &problems, "2026-01-01T00:00:00Z");
        let ready = find(&early, READY);
        assert!(
            ready
                .message
                .contains("ImagePullBackOff on demo-broker-0-0"),
            "{}",
            ready.message
        );
        assert_eq!(find(&early, DEGRADED).status, "False");
        cluster.status = Some(with_masters(early));
        let later = observed_status(
            &cluster,
            &[workload("demo-broker-0", 3, 0)],
            "2026-01-01T00:11:00Z",
        );
        let late = with_pod_problems(later, &cluster, &problems, "2026-01-01T00:11:00Z");
        assert_eq!(late.phase, Some(ClusterPhase::Degraded));
        let degraded = find(&late, DEGRADED);
        assert_eq!(
            (degraded.status.as_str(), degraded.reason.as_str()),
            ("True", "PodsNotStarting")
        );
        assert!(
            degraded.message.contains("Unschedulable on demo-namesrv-0"),
            "{}",
            degraded.message
        );
        // Nothing to add for a running cluster.
        let running = observed_status(&cluster, &[workload("demo-broker-0", 3, 3)], "t");
        assert_eq!(
            with_pod_problems(running.clone(), &cluster, &problems, "t"),
            running
        );
    }

    #[test]
    fn ready_pods_without_masters_or_a_controller_leader_are_not_running() {
        let workloads = [
            workload("demo-namesrv", 2, 2),
            workload("demo-controller", 3, 3),
            workload("demo-broker-0", 3, 3),
            workload("demo-broker-1", 3, 2),
            workload("demo-proxy", 2, 1),
        ];
        let mut cluster = cluster();
        cluster.status = Some(RocketMQClusterStatus {
            broker_groups: vec![BrokerGroupStatus {
                name: "demo-broker-1".into(),
                master: Some("demo-broker-1-2".into()),
                ..BrokerGroupStatus::default()
            }],
            ..RocketMQClusterStatus::default()
        });
        let status = observed_status(&cluster, &workloads, "t1");
        assert_eq!(status.phase, Some(ClusterPhase::Progressing));
        let ready = find(&status, READY);
        assert_eq!(ready.status, "False");
        assert!(
            ready.message.contains("a master in demo-broker-0"),
            "{}",
            ready.message
        );
        let brokers = find(&status, BROKERS_READY);
        assert_eq!(
            (brokers.status.as_str(), brokers.message.as_str()),
            (
                "False",
                "0/2 broker groups serving; demo-broker-0: no master yet; \
                 demo-broker-1: 2/3 pods ready"
            )
        );
        let proxies = find(&status, PROXIES_READY);
        assert_eq!(
            (proxies.status.as_str(), proxies.message.as_str()),
            ("False", "1/2 proxies ready")
        );

        // Every pod ready and every master known, but the controllers lost their leader.
        let all_ready = [
            workload("demo-broker-0", 3, 3),
            workload("demo-broker-1", 3, 3),
            workload("demo-proxy", 2, 2),
        ];
        let mut cluster = super::tests::cluster();
        let mut recorded = with_masters(RocketMQClusterStatus::default());
        recorded.conditions.push(ClusterCondition {
            type_: crate::failover::CONTROLLER_QUORUM.into(),
            status: "False".into(),
            reason: "NoControllerLeader".into(),
            message: "no controller leader answers: connection refused".into(),
            last_transition_time: None,
            observed_generation: None,
        });
        cluster.status = Some(recorded);
        let status = observed_status(&cluster, &all_ready, "t1");
        assert_eq!(status.phase, Some(ClusterPhase::Progressing));
        let ready = find(&status, READY);
        assert_eq!(ready.reason, "ClusterNotServing");
        assert!(
            ready
                .message
                .contains("a controller leader (no controller leader answers: connection refused)"),
            "{}",
            ready.message
        );
        assert_eq!(find(&status, BROKERS_READY).status, "True");
        assert_eq!(find(&status, PROXIES_READY).message, "2/2 proxies ready");
        assert!(
            status
                .conditions
                .iter()
                .all(|c| c.type_ != crate::failover::CONTROLLER_QUORUM),
            "the reconciler never writes the watcher's condition"
        );
    }
}
