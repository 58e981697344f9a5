//! Runs the CRD's validation the way kube-apiserver would: CEL rules (through kube's
//! client-side CEL evaluator, with schema defaults applied first) and the OpenAPI bounds,
//! on good and bad specs, checking the message a user would see.

use kube::core::cel::Validator;
use serde_json::{Value, json};

fn schema() -> Value {
    let crd =
        serde_json::to_value(rocketmq_operator::crdgen::definition()).expect("CRD serializes");
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"].clone()
}

fn object(spec: Value) -> Value {
    json!({
        "apiVersion": "rocketmq.rs/v1alpha1",
        "kind": "RocketMQCluster",
        "metadata": { "name": "demo", "namespace": "mq" },
        "spec": spec,
    })
}

/// Error text of validating `spec` (as an update of `old` when given), or `None` if valid.
fn cel_errors(spec: Value, old: Option<Value>) -> Option<String> {
    let old = old.map(object);
    Validator::new()
        .validate(&schema(), &object(spec), old.as_ref())
        .err()
        .map(|errors| errors.to_string())
}

#[test]
fn a_resource_without_spec_is_the_default_cluster() {
    let schema = schema();
    let required: Vec<&str> = schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(!required.contains(&"spec"), "{required:?}");
    assert_eq!(schema["properties"]["spec"]["default"], json!({}));
    let mut object = object(json!({}));
    object.as_object_mut().unwrap().remove("spec");
    assert!(Validator::new().validate(&schema, &object, None).is_ok());
}

#[test]
fn defaults_and_the_examples_pass_every_rule() {
    assert_eq!(cel_errors(json!({}), None), None);
    for example in ["rocketmq-cluster.yaml", "rocketmq-cluster-dev.yaml"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples")
            .join(example);
        let text = std::fs::read_to_string(&path).expect("example readable");
        let value: Value = serde_norway::from_str(&text).expect("example parses");
        assert_eq!(cel_errors(value["spec"].clone(), None), None, "{example}");
        // An unchanged update passes the transition rules too.
        assert_eq!(
            cel_errors(value["spec"].clone(), Some(value["spec"].clone())),
            None,
            "{example}"
        );
    }
}

#[test]
fn bad_specs_are_rejected_with_a_clear_message() {
    let cases = [
        (
            json!({ "controller": { "replicas": 4 } }),
            "controller.replicas must be odd",
        ),
        (
            json!({ "broker": { "groups": 1000, "replicasPerGroup": 100000 } }),
            "broker.groups must be at most 64",
        ),
        (
            json!({ "broker": { "replicasPerGroup": 100000 } }),
            "broker.replicasPerGroup must be at most 9",
        ),
        (
            json!({ "nameServer": { "replicas": 100 } }),
            "nameServer.replicas must be at most 16",
        ),
        (
            json!({ "controller": { "replicas": 11 } }),
            "controller.replicas must be at most 9",
        ),
        (
            json!({ "proxy": { "replicas": 5000 } }),
            "proxy.replicas must be at most 256",
        ),
        (
            json!({ "proxy": { "autoscaling": { "maxReplicas": 5000 } } }),
            "proxy.autoscaling.maxReplicas must be at most 256",
        ),
        (
            json!({ "broker": { "storage": { "size": "999999999Ei" } } }),
            "storage.size must be a positive Kubernetes quantity below 1Pi",
        ),
        (
            json!({ "image": { "repository": "Not A/Valid Image!!" } }),
            "image.repository must be an image name without tag",
        ),
        (
            json!({ "image": { "tag": "bad tag" } }),
            "image.tag must be a tag such as 0.1.0",
        ),
        (
            json!({ "broker": { "terminationGracePeriodSeconds": 86400 } }),
            "broker.terminationGracePeriodSeconds must be at most 3600",
        ),
        (
            json!({ "proxy": { "autoscaling": { "enabled": true, "minReplicas": 8, "maxReplicas": 4 } } }),
            "proxy.autoscaling.minReplicas must not exceed maxReplicas",
        ),
        (
            json!({ "broker": { "storage": { "size": "20 GB" } } }),
            "storage.size must be a positive Kubernetes quantity",
        ),
        (
            json!({ "broker": { "storage": { "size": "0" } } }),
            "storage.size must be a positive Kubernetes quantity",
        ),
        (
            json!({ "nameServer": { "resources": { "requests": { "cpu": "fast" } } } }),
            "cpu must be a Kubernetes quantity",
        ),
        (
            json!({ "proxy": { "resources": { "limits": { "memory": "1 GiB" } } } }),
            "memory must be a Kubernetes quantity",
        ),
        (
            json!({ "broker": { "config": { "namesrvAddr": "elsewhere:9876" } } }),
            "broker.config must not set keys managed by the operator",
        ),
        (
            json!({ "image": { "tag": "" } }),
            "image.tag must not be empty",
        ),
    ];
    for (spec, expected) in cases {
        let errors = cel_errors(spec.clone(), None)
            .unwrap_or_else(|| panic!("{spec} was accepted, expected {expected:?}"));
        assert!(
            errors.contains(expected),
            "{spec}: expected {expected:?} in\n{errors}"
        );
    }
}

#[test]
fn updates_can_change_groups_but_not_storage() {
    let old = json!({ "broker": { "groups": 3, "storage": { "size": "20Gi" } } });
    // Shrinking is a drained scale-in (see drain.rs), no longer refused.
    let shrink = json!({ "broker": { "groups": 2, "storage": { "size": "20Gi" } } });
    assert_eq!(
        cel_errors(shrink, Some(old.clone())),
        None,
        "scale-in is allowed"
    );

    let resize = json!({ "broker": { "groups": 3, "storage": { "size": "40Gi" } } });
    let errors = cel_errors(resize, Some(old.clone())).expect("resizing is rejected");
    assert!(errors.contains("storage is immutable"), "{errors}");

    let grow =
        json!({ "broker": { "groups": 4, "replicasPerGroup": 2, "storage": { "size": "20Gi" } } });
    assert_eq!(
        cel_errors(grow, Some(old)),
        None,
        "adding groups and scaling replicas is allowed"
    );
}

#[test]
fn counts_have_openapi_lower_bounds() {
    let schema = schema();
    let spec = &schema["properties"]["spec"]["properties"];
    for (path, minimum) in [
        (&spec["nameServer"]["properties"]["replicas"], 1.0),
        (&spec["controller"]["properties"]["replicas"], 1.0),
        (&spec["broker"]["properties"]["groups"], 1.0),
        (&spec["broker"]["properties"]["replicasPerGroup"], 1.0),
        (
            &spec["broker"]["properties"]["terminationGracePeriodSeconds"],
            0.0,
        ),
        (&spec["proxy"]["properties"]["replicas"], 1.0),
        (
            &spec["proxy"]["properties"]["autoscaling"]["properties"]["minReplicas"],
            1.0,
        ),
        (
            &spec["proxy"]["properties"]["autoscaling"]["properties"]["maxReplicas"],
            1.0,
        ),
    ] {
        assert_eq!(path["minimum"].as_f64(), Some(minimum), "{path}");
    }
    let target =
        &spec["proxy"]["properties"]["autoscaling"]["properties"]["targetCPUUtilizationPercentage"];
    assert_eq!(target["maximum"].as_f64(), Some(100.0));
}

#[test]
fn cluster_names_leave_room_for_child_names() {
    let with_name = |name: &str| {
        let mut object = object(json!({}));
        object["metadata"]["name"] = json!(name);
        Validator::new()
            .validate(&schema(), &object, None)
            .err()
            .map(|errors| errors.to_string())
    };
    assert_eq!(with_name("prod-eu-1"), None);
    assert_eq!(with_name(&"a".repeat(40)), None);
    for bad in [&"a".repeat(41) as &str, "1st-cluster", "Prod", "prod-"] {
        let errors = with_name(bad).unwrap_or_else(|| panic!("{bad:?} is accepted"));
        assert!(
            errors.contains("metadata.name must be at most 40 characters"),
            "{errors}"
        );
    }
    // The longest name accepted still gives child names within 63 characters.
    let longest = "a".repeat(40);
    let names = rocketmq_operator::objects::ClusterNames::new(&longest, "mq");
    for child in [
        names.headless(rocketmq_operator::objects::Component::Controller),
        names.headless(rocketmq_operator::objects::Component::NameServer),
        format!("{}-headless", names.broker_group(63)),
        format!("{}-0123456789", names.broker_group(63)),
    ] {
        assert!(child.len() <= 63, "{child} is {} characters", child.len());
    }
}
