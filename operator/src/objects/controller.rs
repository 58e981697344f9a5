//! Controllers: the consensus group that elects broker masters. A StatefulSet so each peer
//! keeps its id (`n<ordinal>`), DNS name and volume across restarts, and a headless Service
//! that provides those DNS names.

use k8s_openapi::api::apps::v1::{
    StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec,
};

use super::{
    BuildContext, CONTROLLER_PORT, Component, DesiredObjects,
    config::{config_hash, controller_config},
    pod::{
        NamedPort, PodRecipe, config_map, env, headless_service, pod_index_env, pod_template,
        store_claim_template,
    },
};

const CONFIG_FILE: &str = "controller.conf";

pub(super) fn build(context: &BuildContext, objects: &mut DesiredObjects) {
    let component = Component::Controller;
    let names = &context.names;
    let spec = &context.cluster.spec;
    let selector = context.selector_labels(component);
    let config = controller_config(context.cluster, names);
    let hash = config_hash([(CONFIG_FILE, config.as_str())]);
    let ports = || {
        vec![NamedPort {
            name: "remoting",
            port: CONTROLLER_PORT,
        }]
    };

    objects.config_maps.push(config_map(
        context,
        names.config_map(component),
        &selector,
        CONFIG_FILE,
        config,
    ));
    objects.services.push(headless_service(
        context,
        names.headless(component),
        &selector,
        &ports(),
    ));
    let template = pod_template(
        context,
        PodRecipe {
            component,
            selector: &selector,
            config_file: CONFIG_FILE,
            config_map: names.config_map(component),
            config_hash: hash,
            ports: ports(),
            probe_port: CONTROLLER_PORT,
            // Kubernetes expands $(POD_INDEX) from the variable defined just before.
            extra_env: vec![
                pod_index_env(),
                env("CONTROLLER_SELF_ID", "n$(POD_INDEX)".into()),
            ],
            resources: &spec.controller.resources,
            default_requests: ("250m", "512Mi"),
            mounts_store: true,
            startup_budget_seconds: None,
            termination_grace_period_seconds: None,
            extra_args: Vec::new(),
            host_ports: Vec::new(),
            extra_config_map: None,
        },
    );
    let retention = spec.pvc_retention_policy.as_str();
    objects.stateful_sets.push(StatefulSet {
        metadata: context.metadata(names.component(component), &selector),
        spec: StatefulSetSpec {
            replicas: Some(spec.controller.replicas),
            service_name: Some(names.headless(component)),
            // A peer waiting for its predecessor to be ready could wait forever when
            // readiness needs a quorum; start all peers together.
            pod_management_policy: Some("Parallel".into()),
            selector: BuildContext::label_selector(&selector),
            template,
            volume_claim_templates: Some(vec![store_claim_template(&spec.controller.storage)]),
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
}
