//! Broker groups: per group a StatefulSet `<cluster>-broker-<g>` with a volume per pod, a
//! headless Service for replication peers, a Service that follows the group's master, a
//! PodDisruptionBudget and the group's `broker.conf`.

use crate::crd::ExternalAccessMode;
use k8s_openapi::{
    api::{
        apps::v1::{
            StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
            StatefulSetUpdateStrategy,
        },
        core::v1::ConfigMap,
        policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec},
    },
    apimachinery::pkg::util::intstr::IntOrString,
};

use super::{
    BROKER_HA_PORT, BROKER_PORT, BuildContext, Component, DesiredObjects, POD_NAME_LABEL,
    config::{broker_config, broker_restart_config, config_hash},
    pod::{
        NamedPort, PodRecipe, client_service, config_map, env, field_env, headless_service,
        load_balancer_service, pod_template, store_claim_template,
    },
};

const CONFIG_FILE: &str = "broker.conf";

pub(super) fn build(context: &BuildContext, group: i32, objects: &mut DesiredObjects) {
    let names = &context.names;
    let spec = &context.cluster.spec;
    let group_name = names.broker_group(group);
    let selector = context.broker_group_selector_labels(group);
    let config = broker_config(context.cluster, names, group);
    // Keys the brokers take live are applied by the failover watcher, not by a restart.
    let restart_config = broker_restart_config(context.cluster, names, group);
    let hash = config_hash([(CONFIG_FILE, restart_config.as_str())]);
    let ports = || {
        vec![
            NamedPort {
                name: "remoting",
                port: BROKER_PORT,
            },
            NamedPort {
                name: "ha",
                port: BROKER_HA_PORT,
            },
        ]
    };

    objects.config_maps.push(config_map(
        context,
        names.broker_group_config_map(group),
        &selector,
        CONFIG_FILE,
        config,
    ));
    objects.services.push(headless_service(
        context,
        names.broker_group_headless(group),
        &selector,
        &ports(),
    ));
    let mut master_selector = selector.clone();
    master_selector.insert(POD_NAME_LABEL.into(), master_pod(context, group));
    objects.services.push(client_service(
        context,
        names.broker_group_master(group),
        &selector,
        master_selector,
        &ports(),
    ));
    let mut external = ExternalWiring {
        env: vec![env(
            "NAMESRV_ADDR",
            names.namesrv_addr(spec.name_server.replicas),
        )],
        args: Vec::new(),
        host_ports: Vec::new(),
        config_map: None,
    };
    match spec.broker.external_access.mode {
        ExternalAccessMode::None => {}
        ExternalAccessMode::HostPort => {
            external.env.push(field_env("HOST_IP", "status.hostIP"));
            // Clients get the node's address; replicas keep replicating over pod addresses.
            external.args = ["--brokerIP1", "$(HOST_IP)", "--brokerIP2", "$(POD_IP)"]
                .map(String::from)
                .to_vec();
            external.host_ports = vec!["remoting"];
        }
        ExternalAccessMode::LoadBalancer => {
            for ordinal in 0..spec.broker.replicas_per_group {
                let mut one_pod = selector.clone();
                one_pod.insert(POD_NAME_LABEL.into(), format!("{group_name}-{ordinal}"));
                objects.services.push(load_balancer_service(
                    context,
                    names.broker_external(group, ordinal),
                    &selector,
                    one_pod,
                    &[NamedPort {
                        name: "remoting",
                        port: BROKER_PORT,
                    }],
                    &spec.broker.external_access.annotations,
                ));
            }
            // Filled by the failover watcher once the load balancers have addresses; each
            // broker waits for its own key before it starts.
            let addresses = names.broker_group_external_addresses(group);
            objects.config_maps.push(ConfigMap {
                metadata: context.metadata(addresses.clone(), &selector),
                ..ConfigMap::default()
            });
            external.args = [
                "--brokerIP1File".to_string(),
                format!("{EXTERNAL_ADDRESS_DIR}/$(POD_NAME)"),
                "--brokerIP2".to_string(),
                "$(POD_IP)".to_string(),
            ]
            .to_vec();
            external.config_map = Some((addresses, EXTERNAL_ADDRESS_DIR));
        }
    }
    let template = pod_template(
        context,
        PodRecipe {
            component: Component::Broker,
            selector: &selector,
            config_file: CONFIG_FILE,
            config_map: names.broker_group_config_map(group),
            config_hash: hash,
            ports: ports(),
            probe_port: BROKER_PORT,
            extra_env: external.env,
            resources: &spec.broker.resources,
            default_requests: ("1", "2Gi"),
            mounts_store: true,
            // Recovering a large CommitLog after a crash can take minutes; liveness must not
            // kill a broker that is still replaying its store.
            startup_budget_seconds: Some(600),
            termination_grace_period_seconds: Some(spec.broker.termination_grace_period_seconds),
            extra_args: external.args,
            host_ports: external.host_ports,
            extra_config_map: external.config_map,
        },
    );
    let retention = spec.pvc_retention_policy.as_str();
    objects.stateful_sets.push(StatefulSet {
        metadata: context.metadata(group_name.clone(), &selector),
        spec: StatefulSetSpec {
            replicas: Some(spec.broker.replicas_per_group),
            service_name: Some(names.broker_group_headless(group)),
            // Replicas of a group do not depend on each other to start; the controllers
            // decide who is master.
            pod_management_policy: Some("Parallel".into()),
            // The operator restarts broker pods itself, one at a time, slaves first, handing
            // mastership over before the master goes (see failover.rs); the StatefulSet
            // controller only recreates the pods it deletes.
            update_strategy: Some(StatefulSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                rolling_update: None,
            }),
            selector: BuildContext::label_selector(&selector),
            template,
            volume_claim_templates: Some(vec![store_claim_template(&spec.broker.storage)]),
            persistent_volume_claim_retention_policy: Some(
                StatefulSetPersistentVolumeClaimRetentionPolicy {
                    when_deleted: Some(retention.into()),
                    when_scaled: Some(retention.into()),
                },
            ),
            ..StatefulSetSpec::default()
        },
        ..StatefulSet::default()
    });
    objects.pod_disruption_budgets.push(PodDisruptionBudget {
        metadata: context.metadata(group_name, &selector),
        spec: Some(PodDisruptionBudgetSpec {
            // One voluntary disruption at a time keeps a SyncStateSet member alive while the
            // other is drained.
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(BuildContext::label_selector(&selector)),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    });
}

/// How a broker pod is reached from outside the cluster.
struct ExternalWiring {
    env: Vec<k8s_openapi::api::core::v1::EnvVar>,
    args: Vec<String>,
    host_ports: Vec<&'static str>,
    config_map: Option<(String, &'static str)>,
}

/// Where a broker pod finds its external address (LoadBalancer access), one file per pod.
pub const EXTERNAL_ADDRESS_DIR: &str = "/etc/rocketmq/external";

/// The pod the master Service points at: the master the failover watcher recorded in
/// status, or pod 0 until one is known. Building from status keeps the reconciler from
/// undoing a failover.
fn master_pod(context: &BuildContext, group: i32) -> String {
    let group_name = context.names.broker_group(group);
    let recorded = context
        .cluster
        .status
        .as_ref()
        .and_then(|status| {
            status
                .broker_groups
                .iter()
                .find(|broker_group| broker_group.name == group_name)
        })
        .and_then(|broker_group| broker_group.master.clone())
        .filter(|pod| {
            is_pod_of(
                pod,
                &group_name,
                context.cluster.spec.broker.replicas_per_group,
            )
        });
    recorded.unwrap_or_else(|| format!("{group_name}-0"))
}

/// True when `pod` is `<stateful_set>-<ordinal>` with an ordinal below `replicas`: a
/// recorded master of a scaled-down or foreign group must not capture the Service.
fn is_pod_of(pod: &str, stateful_set: &str, replicas: i32) -> bool {
    pod.strip_prefix(stateful_set)
        .and_then(|rest| rest.strip_prefix('-'))
        .and_then(|ordinal| ordinal.parse::<i32>().ok())
        .is_some_and(|ordinal| (0..replicas).contains(&ordinal))
}

#[cfg(test)]
mod tests {
    use super::is_pod_of;

    #[test]
    fn master_must_be_a_live_ordinal_of_the_group() {
        assert!(is_pod_of("demo-broker-0-2", "demo-broker-0", 3));
        assert!(!is_pod_of("demo-broker-0-3", "demo-broker-0", 3));
        assert!(!is_pod_of("demo-broker-1-0", "demo-broker-0", 3));
        assert!(!is_pod_of("demo-broker-0-x", "demo-broker-0", 3));
        assert!(!is_pod_of("demo-broker-0", "demo-broker-0", 3));
    }

    #[test]
    fn host_port_access_announces_the_node_address_and_replicates_over_pod_addresses() {
        use crate::crd::{ExternalAccessMode, RocketMQCluster, RocketMQClusterSpec};
        let mut cluster = RocketMQCluster::new("demo", RocketMQClusterSpec::default());
        cluster.metadata.namespace = Some("mq".into());
        cluster.metadata.uid = Some("u".into());
        let container = |cluster: &RocketMQCluster| {
            let objects = crate::objects::desired_objects(cluster).unwrap();
            let broker = objects
                .stateful_sets
                .iter()
                .find(|s| s.metadata.name.as_deref() == Some("demo-broker-0"))
                .unwrap()
                .clone();
            broker.spec.template.spec.unwrap().containers[0].clone()
        };
        let inside = container(&cluster);
        assert_eq!(inside.args.as_ref().unwrap().len(), 2, "only -c <config>");
        assert!(inside.ports.unwrap().iter().all(|p| p.host_port.is_none()));

        cluster.spec.broker.external_access.mode = ExternalAccessMode::HostPort;
        let outside = container(&cluster);
        assert_eq!(
            outside.args.unwrap()[2..],
            ["--brokerIP1", "$(HOST_IP)", "--brokerIP2", "$(POD_IP)"]
        );
        let ports = outside.ports.unwrap();
        let published: Vec<(&str, i32)> = ports
            .iter()
            .filter_map(|p| Some((p.name.as_deref()?, p.host_port?)))
            .collect();
        assert_eq!(
            published,
            [("remoting", 10911)],
            "HA stays on the pod network"
        );
        let host_ip = outside
            .env
            .unwrap()
            .into_iter()
            .find(|e| e.name == "HOST_IP")
            .unwrap();
        assert_eq!(
            host_ip.value_from.unwrap().field_ref.unwrap().field_path,
            "status.hostIP"
        );
    }

    #[test]
    fn only_settings_a_broker_cannot_take_live_roll_the_pods() {
        use crate::crd::{RocketMQCluster, RocketMQClusterSpec};
        let hash = |config: &[(&str, &str)]| {
            let mut cluster = RocketMQCluster::new("demo", RocketMQClusterSpec::default());
            cluster.metadata.namespace = Some("mq".into());
            cluster.metadata.uid = Some("u".into());
            for (k, v) in config {
                cluster
                    .spec
                    .broker
                    .config
                    .insert(k.to_string(), v.to_string());
            }
            let objects = crate::objects::desired_objects(&cluster).unwrap();
            let template = objects.stateful_sets[2].spec.template.clone();
            assert_eq!(
                objects.stateful_sets[2].metadata.name.as_deref(),
                Some("demo-broker-0")
            );
            template.metadata.unwrap().annotations.unwrap()[crate::objects::CONFIG_HASH_ANNOTATION]
                .clone()
        };
        let base = hash(&[]);
        assert_eq!(
            hash(&[("transactionCheckMax", "7")]),
            base,
            "live: no restart"
        );
        assert_eq!(hash(&[("brokerPermission", "4")]), base, "live: no restart");
        assert_ne!(
            hash(&[("flushDiskType", "SYNC_FLUSH")]),
            base,
            "needs a restart"
        );
    }

    #[test]
    fn load_balancer_access_gives_each_broker_pod_a_service_and_waits_for_its_address() {
        use crate::crd::{ExternalAccessMode, RocketMQCluster, RocketMQClusterSpec};
        let mut cluster = RocketMQCluster::new("demo", RocketMQClusterSpec::default());
        cluster.metadata.namespace = Some("mq".into());
        cluster.metadata.uid = Some("u".into());
        cluster.spec.broker.external_access.mode = ExternalAccessMode::LoadBalancer;
        cluster.spec.broker.external_access.annotations.insert(
            "service.beta.kubernetes.io/aws-load-balancer-internal".into(),
            "true".into(),
        );
        let objects = crate::objects::desired_objects(&cluster).unwrap();
        let external: Vec<_> = objects
            .services
            .iter()
            .filter(|s| s.metadata.name.as_deref().unwrap().ends_with("-external"))
            .collect();
        assert_eq!(external.len(), 3, "one per broker pod");
        let first = external[0];
        assert_eq!(
            first.metadata.name.as_deref(),
            Some("demo-broker-0-0-external")
        );
        let spec = first.spec.as_ref().unwrap();
        assert_eq!(spec.type_.as_deref(), Some("LoadBalancer"));
        assert_eq!(
            spec.selector.as_ref().unwrap()[super::POD_NAME_LABEL],
            "demo-broker-0-0"
        );
        assert_eq!(spec.ports.as_ref().unwrap()[0].port, 10911);
        assert!(
            first
                .metadata
                .annotations
                .as_ref()
                .unwrap()
                .contains_key("service.beta.kubernetes.io/aws-load-balancer-internal")
        );
        let addresses = objects
            .config_maps
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some("demo-broker-0-external"))
            .expect("the addresses ConfigMap");
        assert!(
            addresses.data.is_none(),
            "its data belongs to the failover watcher"
        );
        let broker = objects
            .stateful_sets
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some("demo-broker-0"))
            .unwrap();
        let pod = broker.spec.template.spec.as_ref().unwrap();
        assert_eq!(
            pod.containers[0].args.as_ref().unwrap()[2..],
            [
                "--brokerIP1File",
                "/etc/rocketmq/external/$(POD_NAME)",
                "--brokerIP2",
                "$(POD_IP)"
            ]
        );
        let volume = pod
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "extra-config")
            .unwrap();
        let source = volume.config_map.as_ref().unwrap();
        assert_eq!(source.name, "demo-broker-0-external");
        assert_eq!(source.optional, Some(true));
    }
}
