//! Name servers: a StatefulSet (stable per-pod DNS names, so brokers can list every name
//! server in `namesrvAddr`), a headless Service for those names and a client Service.

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};

use super::{
    BuildContext, Component, DesiredObjects, NAMESRV_PORT,
    config::{config_hash, namesrv_config},
    pod::{NamedPort, PodRecipe, client_service, config_map, headless_service, pod_template},
};

const CONFIG_FILE: &str = "namesrv.conf";

pub(super) fn build(context: &BuildContext, objects: &mut DesiredObjects) {
    let component = Component::NameServer;
    let names = &context.names;
    let selector = context.selector_labels(component);
    let config = namesrv_config(context.cluster);
    let hash = config_hash([(CONFIG_FILE, config.as_str())]);
    let ports = || {
        vec![NamedPort {
            name: "remoting",
            port: NAMESRV_PORT,
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
    objects.services.push(client_service(
        context,
        names.component(component),
        &selector,
        selector.clone(),
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
            probe_port: NAMESRV_PORT,
            extra_env: Vec::new(),
            resources: &context.cluster.spec.name_server.resources,
            default_requests: ("250m", "512Mi"),
            mounts_store: false,
            startup_budget_seconds: None,
            termination_grace_period_seconds: None,
            extra_args: Vec::new(),
            host_ports: Vec::new(),
            extra_config_map: None,
        },
    );
    objects.stateful_sets.push(StatefulSet {
        metadata: context.metadata(names.component(component), &selector),
        spec: StatefulSetSpec {
            replicas: Some(context.cluster.spec.name_server.replicas),
            service_name: Some(names.headless(component)),
            // Name servers are independent; starting them one by one only delays the cluster.
            pod_management_policy: Some("Parallel".into()),
            selector: BuildContext::label_selector(&selector),
            template,
            ..StatefulSetSpec::default()
        },
        ..StatefulSet::default()
    });
}
