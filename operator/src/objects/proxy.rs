//! Proxies: a Deployment behind a Service, scaled either by `spec.proxy.replicas` or by a
//! HorizontalPodAutoscaler on CPU, and a PodDisruptionBudget.

use k8s_openapi::{
    api::{
        apps::v1::{Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment},
        autoscaling::v2::{
            CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec,
            MetricSpec, MetricTarget, ResourceMetricSource,
        },
        core::v1::Service,
        policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec},
    },
    apimachinery::pkg::util::intstr::IntOrString,
};

use super::{
    BuildContext, Component, DesiredObjects, PROXY_GRPC_PORT,
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
    // gRPC only: mqproxy does not serve Remoting (Remoting clients use the name servers
    // and brokers directly), so no port promises it.
    let ports = || {
        vec![NamedPort {
            name: "grpc",
            port: PROXY_GRPC_PORT,
        }]
    };

    objects.config_maps.push(config_map(
        context,
        names.config_map(component),
        &selector,
        CONFIG_FILE,
        config,
    ));
    let mut service = client_service(
        context,
        names.component(component),
        &selector,
        selector.clone(),
        &ports(),
    );
    expose(&mut service, &spec.proxy.service);
    objects.services.push(service);
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
            extra_args: Vec::new(),
            host_ports: Vec::new(),
            extra_config_map: None,
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

/// Applies `spec.proxy.service`: the Service type, and annotations beside the operator's.
fn expose(service: &mut Service, exposure: &crate::crd::ProxyServiceSpec) {
    if let Some(spec) = service.spec.as_mut() {
        spec.type_ = Some(exposure.type_.as_str().into());
    }
    if !exposure.annotations.is_empty() {
        service
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .extend(exposure.annotations.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{ProxyServiceSpec, ServiceType};

    #[test]
    fn the_proxy_service_takes_the_requested_type_and_annotations() {
        let mut service = Service {
            spec: Some(k8s_openapi::api::core::v1::ServiceSpec {
                type_: Some("ClusterIP".into()),
                ..Default::default()
            }),
            ..Service::default()
        };
        expose(&mut service, &ProxyServiceSpec::default());
        assert_eq!(
            service.spec.as_ref().unwrap().type_.as_deref(),
            Some("ClusterIP")
        );
        assert!(service.metadata.annotations.is_none());
        let exposure = ProxyServiceSpec {
            type_: ServiceType::LoadBalancer,
            annotations: [(
                "service.beta.kubernetes.io/aws-load-balancer-type".to_string(),
                "nlb".to_string(),
            )]
            .into(),
        };
        expose(&mut service, &exposure);
        assert_eq!(
            service.spec.as_ref().unwrap().type_.as_deref(),
            Some("LoadBalancer")
        );
        assert_eq!(
            service.metadata.annotations.as_ref().unwrap()["service.beta.kubernetes.io/aws-load-balancer-type"],
            "nlb"
        );
    }
}
