//! Golden files of every object the operator builds for representative clusters.
//!
//! Each fixture in `tests/fixtures/` yields one multi-document YAML in `tests/golden/`, in
//! apply order. A change to a builder shows up as a diff of these files, which is the point:
//! review it like code. `UPDATE_GOLDEN=1 cargo test -p rocketmq-operator --test golden_objects`
//! rewrites them.

use std::path::{Path, PathBuf};

use rocketmq_operator::{crd::RocketMQCluster, objects::desired_objects};

fn render(cluster: &RocketMQCluster) -> String {
    let objects = desired_objects(cluster).expect("fixture has namespace and uid");
    let mut documents: Vec<String> = Vec::new();
    let mut push = |object: &dyn erased::Yaml| documents.push(object.to_yaml());
    objects.config_maps.iter().for_each(|o| push(o));
    objects.services.iter().for_each(|o| push(o));
    objects.stateful_sets.iter().for_each(|o| push(o));
    objects.deployments.iter().for_each(|o| push(o));
    objects.pod_disruption_budgets.iter().for_each(|o| push(o));
    objects
        .horizontal_pod_autoscaler
        .iter()
        .for_each(|o| push(o));
    documents.join("---\n")
}

mod erased {
    /// Lets objects of different types share one list for rendering.
    pub trait Yaml {
        fn to_yaml(&self) -> String;
    }
    impl<T: serde::Serialize> Yaml for T {
        fn to_yaml(&self) -> String {
            serde_norway::to_string(self).expect("Kubernetes objects serialize as YAML")
        }
    }
}

fn check_golden(fixture: &str) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests");
    let cluster: RocketMQCluster =
        read_yaml(&root.join("fixtures").join(format!("{fixture}.yaml")));
    let rendered = render(&cluster);
    let golden_path = root.join("golden").join(format!("{fixture}.yaml"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden_path, &rendered).expect("golden file writable");
        return;
    }
    let expected = std::fs::read_to_string(&golden_path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error}; run with UPDATE_GOLDEN=1",
            golden_path.display()
        )
    });
    if expected != rendered {
        let line = expected
            .lines()
            .zip(rendered.lines())
            .position(|(old, new)| old != new)
            .map_or(
                expected.lines().count().min(rendered.lines().count()) + 1,
                |index| index + 1,
            );
        panic!(
            "{} differs from the built objects at line {line}:\n  golden: {:?}\n  built:  {:?}\n\
             If the change is intended, rerun with UPDATE_GOLDEN=1 and review the diff.",
            golden_path.display(),
            expected.lines().nth(line - 1).unwrap_or("<end of file>"),
            rendered.lines().nth(line - 1).unwrap_or("<end of file>"),
        );
    }
}

fn read_yaml<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

#[test]
fn minimal_cluster_objects_match_golden() {
    check_golden("minimal");
}

#[test]
fn demo_cluster_objects_match_golden() {
    check_golden("demo");
}

#[test]
fn single_node_cluster_objects_match_golden() {
    check_golden("single-node");
}

#[test]
fn external_access_cluster_objects_match_golden() {
    check_golden("external-access");
}

fn fixture(name: &str) -> RocketMQCluster {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests");
    read_yaml(&root.join("fixtures").join(format!("{name}.yaml")))
}

/// Properties every fixture must have, independent of the golden files, so a golden
/// accepted by mistake still cannot hide a missing owner reference.
#[test]
fn every_object_is_owned_labelled_and_namespaced() {
    for name in ["minimal", "demo", "single-node", "external-access"] {
        let cluster = fixture(name);
        let objects = desired_objects(&cluster).expect("objects build");
        let mut metas = Vec::new();
        metas.extend(objects.config_maps.iter().map(|o| &o.metadata));
        metas.extend(objects.services.iter().map(|o| &o.metadata));
        metas.extend(objects.stateful_sets.iter().map(|o| &o.metadata));
        metas.extend(objects.deployments.iter().map(|o| &o.metadata));
        metas.extend(objects.pod_disruption_budgets.iter().map(|o| &o.metadata));
        metas.extend(
            objects
                .horizontal_pod_autoscaler
                .iter()
                .map(|o| &o.metadata),
        );
        for meta in metas {
            let object = meta.name.as_deref().unwrap_or("<unnamed>");
            assert_eq!(
                meta.namespace, cluster.metadata.namespace,
                "{name}/{object}"
            );
            let owners = meta.owner_references.as_ref().expect("owner references");
            assert_eq!(owners.len(), 1, "{name}/{object}");
            assert_eq!(
                owners[0].uid,
                cluster.metadata.uid.clone().unwrap(),
                "{name}/{object}"
            );
            assert_eq!(owners[0].controller, Some(true), "{name}/{object}");
            let labels = meta.labels.as_ref().expect("labels");
            assert_eq!(
                labels["app.kubernetes.io/managed-by"], "rocketmq-operator",
                "{name}/{object}"
            );
            assert_eq!(
                labels["app.kubernetes.io/instance"],
                cluster.metadata.name.clone().unwrap()
            );
        }
    }
}

#[test]
fn object_counts_follow_the_spec() {
    let demo = desired_objects(&fixture("demo")).expect("objects build");
    // namesrv, controller, 2 broker groups, proxy
    assert_eq!(demo.config_maps.len(), 5);
    // namesrv headless+client, controller headless, 2 x (broker headless+master), proxy
    assert_eq!(demo.services.len(), 8);
    assert_eq!(demo.stateful_sets.len(), 4);
    assert_eq!(demo.pod_disruption_budgets.len(), 3);
    assert!(demo.horizontal_pod_autoscaler.is_some());
    assert_eq!(
        demo.deployments[0].spec.replicas, None,
        "the HPA owns the replica count"
    );

    let minimal = desired_objects(&fixture("minimal")).expect("objects build");
    assert!(minimal.horizontal_pod_autoscaler.is_none());
    assert_eq!(minimal.deployments[0].spec.replicas, Some(2));
}

#[test]
fn master_service_follows_the_recorded_master() {
    let demo = desired_objects(&fixture("demo")).expect("objects build");
    let selector_pod = |service: &str| {
        demo.services
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(service))
            .and_then(|s| s.spec.as_ref()?.selector.as_ref())
            .and_then(|selector| selector.get("statefulset.kubernetes.io/pod-name").cloned())
            .unwrap_or_else(|| panic!("{service} has no pod-name selector"))
    };
    assert_eq!(selector_pod("demo-broker-0-master"), "demo-broker-0-1");
    assert_eq!(selector_pod("demo-broker-1-master"), "demo-broker-1-0");
}
