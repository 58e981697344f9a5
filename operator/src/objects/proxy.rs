//! Proxies: a Deployment behind a Service, scaled either by `spec.proxy.replicas` or by a
//! HorizontalPodAutoscaler on CPU, and a PodDisruptionBudget.

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment},
        autoscaling::v2::{
            CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec,
            MetricSpec, MetricTarget, ResourceMetricSource,
        },
        policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec},
    },
    apimachinery::pkg::util::intstr::IntOrString,
};

use super::{
    BuildContext, Component, DesiredObjects, PROXY_GRPC_PORT, PROXY_REMOTING_PORT,
    config::{config_hash, proxy_config},
    pod::{NamedPort, PodRecipe, client_service, config_map, env, pod_template},
};

const CONFIG_FILE: &str = "rmq-proxy.json";

pub(super) fn build(context: &BuildContext, objects: &mut DesiredObjects) {
    let component = Component::Proxy;
    let names = &context.names;
    let spec = &context.cluster.spec;
    let autoscaling = &spec.proxy.autoscaling;
    let selector = context.selector_labels(component);
    let config = proxy_config(context.cluster, names);
    let hash = config_hash([(CONFIG_FILE, config.as_str())]);
    let ports = || {
        vec![
            NamedPort {
                name: "grpc",
                port: PROXY_GRPC_PORT,
            },
            NamedPort {
                name: "remoting",
                port: PROXY_REMOTING_PORT,
            },
        ]
    };

    objects.config_maps.push(config_map(
        context,
        names.config_map(component),
        &selector,
        CONFIG_FILE,
        config,
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
            probe_port: PROXY_GRPC_PORT,
            extra_env: vec![env(
                "NAMESRV_ADDR",
                names.namesrv_addr(spec.name_server.replicas),
            )],
            resources: &spec.proxy.resources,
            default_requests: ("500m", "512Mi"),
            mounts_store: false,
            startup_budget_seconds: None,
            termination_grace_period_seconds: None,
        },
    );
    objects.deployments.push(Deployment {
        metadata: context.metadata(names.component(component), &selector),
        spec: DeploymentSpec {
            // With an autoscaler the replica count is the HPA's; leaving the field out of
            // our apply keeps the two from fighting over it.
            replicas: (!autoscaling.enabled).then_some(spec.proxy.replicas),
            selector: BuildContext::label_selector(&selector),
            template,
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_unavailable: Some(IntOrString::Int(0)),
                    max_surge: Some(IntOrString::Int(1)),
                }),
            }),
            ..DeploymentSpec::default()
        },
        ..Deployment::default()
    });
    objects.pod_disruption_budgets.push(PodDisruptionBudget {
        metadata: context.metadata(names.component(component), &selector),
        spec: Some(PodDisruptionBudgetSpec {
            max_unavailable: Some(IntOrString::Int(1)),
            selector: Some(BuildContext::label_selector(&selector)),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    });
    if autoscaling.enabled {
        objects.horizontal_pod_autoscaler = Some(HorizontalPodAutoscaler {
            metadata: context.metadata(names.component(component), &selector),
            spec: HorizontalPodAutoscalerSpec {
                scale_target_ref: CrossVersionObjectReference {
                    api_version: Some("apps/v1".into()),
                    kind: "Deployment".into(),
                    name: names.component(component),
                },
                min_replicas: Some(autoscaling.min_replicas),
                max_replicas: autoscaling.max_replicas,
                metrics: Some(vec![MetricSpec {
                    type_: "Resource".into(),
                    resource: Some(ResourceMetricSource {
                        name: "cpu".into(),
                        target: MetricTarget {
                            type_: "Utilization".into(),
                            average_utilization: Some(
                                autoscaling.target_cpu_utilization_percentage,
                            ),
                            ..MetricTarget::default()
                        },
                    }),
                    ..MetricSpec::default()
                }]),
                ..HorizontalPodAutoscalerSpec::default()
            },
            ..HorizontalPodAutoscaler::default()
        });
    }
}
