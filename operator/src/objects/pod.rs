//! Pod-level building blocks shared by every component: the container, probes, environment,
//! volumes and scheduling rules.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::core::v1::{
        Affinity, Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar,
        EnvVarSource, ObjectFieldSelector, PersistentVolumeClaim, PersistentVolumeClaimSpec,
        PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
        ResourceRequirements, SeccompProfile, SecurityContext, Service, ServicePort, ServiceSpec,
        TCPSocketAction, Volume, VolumeMount, VolumeResourceRequirements, WeightedPodAffinityTerm,
    },
    apimachinery::pkg::{
        api::resource::Quantity, apis::meta::v1::ObjectMeta, util::intstr::IntOrString,
    },
};

use super::{
    BuildContext, CONFIG_HASH_ANNOTATION, Component, METRICS_PORT,
    config::{CONFIG_DIR, STORE_DIR},
};
use crate::crd::{self, StorageSpec};

/// Name of the configuration volume and of the persistent store volume.
const CONFIG_VOLUME: &str = "config";
/// Volume of [`PodRecipe::extra_config_map`].
const EXTRA_VOLUME: &str = "extra-config";
pub(super) const STORE_VOLUME: &str = "store";

/// A named container port.
pub(super) struct NamedPort {
    pub name: &'static str,
    pub port: i32,
}

/// What differs between the components' pods.
pub(super) struct PodRecipe<'a> {
    pub component: Component,
    pub selector: &'a BTreeMap<String, String>,
    /// Config file name inside the ConfigMap, passed to the binary with `-c`.
    pub config_file: &'static str,
    pub config_map: String,
    pub config_hash: String,
    pub ports: Vec<NamedPort>,
    /// Port the probes check; the component's main listener.
    pub probe_port: i32,
    pub extra_env: Vec<EnvVar>,
    pub resources: &'a Option<crd::ResourceRequirements>,
    pub default_requests: (&'static str, &'static str),
    /// Mount the `store` volume claim at [`STORE_DIR`].
    pub mounts_store: bool,
    /// Give a slow-starting server (store recovery) this many seconds before liveness counts.
    pub startup_budget_seconds: Option<i32>,
    pub termination_grace_period_seconds: Option<i64>,
    /// Arguments after `-c <config>` (Kubernetes expands `$(VAR)` from the environment).
    pub extra_args: Vec<String>,
    /// Ports (by name) also published on the node's address under the same number.
    pub host_ports: Vec<&'static str>,
    /// An optional ConfigMap mounted read-only: (ConfigMap name, mount path).
    pub extra_config_map: Option<(String, &'static str)>,
}

pub(super) fn pod_template(context: &BuildContext, recipe: PodRecipe) -> PodTemplateSpec {
    let image = &context.cluster.spec.image;
    let mut env = downward_api_env();
    env.extend(recipe.extra_env);
    let mut ports: Vec<ContainerPort> = recipe
        .ports
        .iter()
        .map(|port| ContainerPort {
            name: Some(port.name.to_string()),
            container_port: port.port,
            host_port: recipe.host_ports.contains(&port.name).then_some(port.port),
            protocol: Some("TCP".into()),
            ..ContainerPort::default()
        })
        .collect();
    ports.push(ContainerPort {
        name: Some("metrics".into()),
        container_port: METRICS_PORT,
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    });
    let mut volume_mounts = vec![VolumeMount {
        name: CONFIG_VOLUME.into(),
        mount_path: CONFIG_DIR.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    }];
    if recipe.mounts_store {
        volume_mounts.push(VolumeMount {
            name: STORE_VOLUME.into(),
            mount_path: STORE_DIR.into(),
            ..VolumeMount::default()
        });
    }
    let mut volumes = vec![Volume {
        name: CONFIG_VOLUME.into(),
        config_map: Some(ConfigMapVolumeSource {
            name: recipe.config_map,
            ..ConfigMapVolumeSource::default()
        }),
        ..Volume::default()
    }];
    if let Some((config_map, mount_path)) = recipe.extra_config_map {
        volume_mounts.push(VolumeMount {
            name: EXTRA_VOLUME.into(),
            mount_path: mount_path.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
        volumes.push(Volume {
            name: EXTRA_VOLUME.into(),
            config_map: Some(ConfigMapVolumeSource {
                name: config_map,
                // Its keys may arrive after the pod starts; the server waits for them.
                optional: Some(true),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        });
    }
    let tcp_probe = |period: i32, failure_threshold: i32| Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::Int(recipe.probe_port),
            ..TCPSocketAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(3),
        failure_threshold: Some(failure_threshold),
        ..Probe::default()
    };
    let startup_probe = recipe.startup_budget_seconds.map(|budget| Probe {
        failure_threshold: Some(budget / 10),
        ..tcp_probe(10, 1)
    });
    let container = Container {
        name: recipe.component.label().into(),
        image: Some(format!("{}:{}", image.repository, image.tag)),
        image_pull_policy: Some(image.pull_policy.as_str().into()),
        command: Some(vec![recipe.component.binary().into()]),
        args: Some(
            [
                "-c".to_string(),
                format!("{CONFIG_DIR}/{}", recipe.config_file),
            ]
            .into_iter()
            .chain(recipe.extra_args)
            .collect(),
        ),
        ports: Some(ports),
        env: Some(env),
        resources: Some(resource_requirements(
            recipe.resources,
            recipe.default_requests,
        )),
        volume_mounts: Some(volume_mounts),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                ..Capabilities::default()
            }),
            ..SecurityContext::default()
        }),
        readiness_probe: Some(tcp_probe(10, 3)),
        liveness_probe: Some(tcp_probe(20, 3)),
        startup_probe,
        ..Container::default()
    };
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(context.labels(recipe.selector)),
            annotations: Some(BTreeMap::from([
                (CONFIG_HASH_ANNOTATION.to_string(), recipe.config_hash),
                ("prometheus.io/scrape".to_string(), "true".to_string()),
                ("prometheus.io/port".to_string(), METRICS_PORT.to_string()),
            ])),
            ..ObjectMeta::default()
        }),
        spec: Some(PodSpec {
            containers: vec![container],
            volumes: Some(volumes),
            affinity: Some(spread_over_nodes(recipe.selector)),
            termination_grace_period_seconds: recipe.termination_grace_period_seconds,
            security_context: Some(pod_security_context()),
            // Service links would inject one variable per Service in the namespace, and
            // names like `<cluster>_NAMESRV_PORT` could shadow RocketMQ settings.
            enable_service_links: Some(false),
            ..PodSpec::default()
        }),
    }
}

/// The image's server user (`images/Dockerfile`), non-root; `fsGroup` makes the store
/// volume writable by it.
pub const SERVER_UID: i64 = 10001;

fn pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(SERVER_UID),
        run_as_group: Some(SERVER_UID),
        fs_group: Some(SERVER_UID),
        seccomp_profile: Some(SeccompProfile {
            type_: "RuntimeDefault".into(),
            ..SeccompProfile::default()
        }),
        ..PodSecurityContext::default()
    }
}

/// An environment variable from the downward API field `path`.
pub(super) fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// Pod identity for the binaries: names for logs, the ordinal for per-pod ids.
fn downward_api_env() -> Vec<EnvVar> {
    vec![
        field_env("POD_NAME", "metadata.name"),
        field_env("POD_NAMESPACE", "metadata.namespace"),
        field_env("POD_IP", "status.podIP"),
    ]
}

/// The pod's StatefulSet ordinal, from the label Kubernetes (1.28+) puts on every
/// StatefulSet pod.
pub(super) fn pod_index_env() -> EnvVar {
    field_env(
        "POD_INDEX",
        "metadata.labels['apps.kubernetes.io/pod-index']",
    )
}

/// A plain environment variable.
pub(super) fn env(name: &str, value: String) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value),
        ..EnvVar::default()
    }
}

/// Prefer one pod of a component per node. Preferred, not required, so a single-node test
/// cluster (kind) still schedules everything.
fn spread_over_nodes(selector: &BTreeMap<String, String>) -> Affinity {
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        label_selector: Some(BuildContext::label_selector(selector)),
                        topology_key: "kubernetes.io/hostname".into(),
                        ..PodAffinityTerm::default()
                    },
                },
            ]),
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    }
}

fn resource_requirements(
    spec: &Option<crd::ResourceRequirements>,
    (default_cpu, default_memory): (&str, &str),
) -> ResourceRequirements {
    let to_map = |list: &crd::ResourceList| {
        let mut map = BTreeMap::new();
        if let Some(cpu) = &list.cpu {
            map.insert("cpu".to_string(), Quantity(cpu.clone()));
        }
        if let Some(memory) = &list.memory {
            map.insert("memory".to_string(), Quantity(memory.clone()));
        }
        map
    };
    match spec {
        Some(spec) => ResourceRequirements {
            requests: spec.requests.as_ref().map(to_map),
            limits: spec.limits.as_ref().map(to_map),
            ..ResourceRequirements::default()
        },
        None => ResourceRequirements {
            requests: Some(BTreeMap::from([
                ("cpu".to_string(), Quantity(default_cpu.into())),
                ("memory".to_string(), Quantity(default_memory.into())),
            ])),
            ..ResourceRequirements::default()
        },
    }
}

/// The `store` claim template of a StatefulSet.
pub(super) fn store_claim_template(storage: &StorageSpec) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(STORE_VOLUME.into()),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            storage_class_name: storage.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([(
                    "storage".to_string(),
                    Quantity(storage.size.clone()),
                )])),
                ..VolumeResourceRequirements::default()
            }),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// A ConfigMap holding one file.
pub(super) fn config_map(
    context: &BuildContext,
    name: String,
    selector: &BTreeMap<String, String>,
    file: &str,
    content: String,
) -> ConfigMap {
    ConfigMap {
        metadata: context.metadata(name, selector),
        data: Some(BTreeMap::from([(file.to_string(), content)])),
        ..ConfigMap::default()
    }
}

/// A headless Service giving each pod of a StatefulSet a stable DNS name. Not-ready pods
/// are published too: consensus peers and replicas must find each other before they are
/// ready, or they would never become ready.
pub(super) fn headless_service(
    context: &BuildContext,
    name: String,
    selector: &BTreeMap<String, String>,
    ports: &[NamedPort],
) -> Service {
    Service {
        metadata: context.metadata(name, selector),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            publish_not_ready_addresses: Some(true),
            selector: Some(selector.clone()),
            ports: Some(service_ports(ports)),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

/// A ClusterIP Service.
/// A LoadBalancer Service reaching exactly one pod (`selector` names it), with `annotations`.
pub(super) fn load_balancer_service(
    context: &BuildContext,
    name: String,
    labels: &BTreeMap<String, String>,
    selector: BTreeMap<String, String>,
    ports: &[NamedPort],
    annotations: &BTreeMap<String, String>,
) -> Service {
    let mut service = client_service(context, name, labels, selector, ports);
    if !annotations.is_empty() {
        service.metadata.annotations = Some(annotations.clone());
    }
    if let Some(spec) = service.spec.as_mut() {
        spec.type_ = Some("LoadBalancer".into());
    }
    service
}

pub(super) fn client_service(
    context: &BuildContext,
    name: String,
    labels: &BTreeMap<String, String>,
    selector: BTreeMap<String, String>,
    ports: &[NamedPort],
) -> Service {
    Service {
        metadata: context.metadata(name, labels),
        spec: Some(ServiceSpec {
            type_: Some("ClusterIP".into()),
            selector: Some(selector),
            ports: Some(service_ports(ports)),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

fn service_ports(ports: &[NamedPort]) -> Vec<ServicePort> {
    ports
        .iter()
        .map(|port| ServicePort {
            name: Some(port.name.into()),
            port: port.port,
            target_port: Some(IntOrString::String(port.name.into())),
            protocol: Some("TCP".into()),
            ..ServicePort::default()
        })
        .collect()
}
