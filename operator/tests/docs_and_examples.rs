//! Keeps `docs/operator.md` and `examples/` honest: the reference must mention every field of
//! the schema, and every example must be a valid cluster that builds a full object set.

use std::path::PathBuf;

use rocketmq_operator::{crd::RocketMQCluster, objects::desired_objects};
use serde_json::Value;

fn workspace_file(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// Every property path of the schema below `root`, e.g. `spec.broker.storage.size`.
fn field_paths(schema: &Value, prefix: &str, paths: &mut Vec<String>) {
    if let Some(properties) = schema["properties"].as_object() {
        for (name, property) in properties {
            let path = format!("{prefix}.{name}");
            paths.push(path.clone());
            field_paths(property, &path, paths);
        }
    }
    if schema["type"] == "array" {
        field_paths(&schema["items"], &format!("{prefix}[]"), paths);
    }
}

#[test]
fn reference_documents_every_field() {
    let docs =
        std::fs::read_to_string(workspace_file("docs/operator.md")).expect("docs/operator.md");
    let crd =
        serde_json::to_value(rocketmq_operator::crdgen::definition()).expect("CRD serializes");
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut paths = Vec::new();
    field_paths(&schema["properties"]["spec"], "spec", &mut paths);
    field_paths(&schema["properties"]["status"], "status", &mut paths);
    let undocumented: Vec<&String> = paths
        .iter()
        .filter(|path| {
            // The resources shape is shared by four components and documented once.
            let documented_as = match path.split_once(".resources.") {
                Some((_, rest)) => format!("`resources.{rest}`"),
                None => format!("`{path}`"),
            };
            let is_parent_only = paths
                .iter()
                .any(|other| other.starts_with(&format!("{path}.")))
                || paths
                    .iter()
                    .any(|other| other.starts_with(&format!("{path}[].")));
            // Parents (objects with documented children) need no row of their own.
            !is_parent_only && !docs.contains(&documented_as)
        })
        .collect();
    assert!(
        undocumented.is_empty(),
        "docs/operator.md does not document {undocumented:#?}"
    );
}

#[test]
fn examples_are_valid_clusters_that_build_every_object() {
    for example in [
        "examples/rocketmq-cluster.yaml",
        "examples/rocketmq-cluster-dev.yaml",
    ] {
        let text = std::fs::read_to_string(workspace_file(example)).expect("example readable");
        let raw: Value = serde_norway::from_str(&text).expect("example is YAML");
        let mut cluster: RocketMQCluster = serde_json::from_value(raw.clone())
            .unwrap_or_else(|error| panic!("{example} is not a RocketMQCluster: {error}"));
        // serde ignores unknown fields; a typo would silently fall back to a default, so
        // every key written in the example must survive a round trip.
        let round_trip = serde_json::to_value(&cluster.spec).expect("spec serializes");
        assert_keys_known(&raw["spec"], &round_trip, &format!("{example}: spec"));
        cluster
            .spec
            .validate()
            .unwrap_or_else(|problems| panic!("{example} is invalid: {problems:?}"));
        // What the API server adds on creation.
        cluster.metadata.uid = Some("00000000-0000-4000-8000-000000000000".into());
        let objects = desired_objects(&cluster).expect("objects build");
        let groups = usize::try_from(cluster.spec.broker.groups).expect("positive");
        assert_eq!(objects.stateful_sets.len(), 2 + groups, "{example}");
        assert_eq!(objects.config_maps.len(), 3 + groups, "{example}");
        assert_eq!(objects.services.len(), 4 + 2 * groups, "{example}");
        assert_eq!(objects.deployments.len(), 1, "{example}");
        assert_eq!(
            objects.pod_disruption_budgets.len(),
            1 + groups,
            "{example}"
        );
        assert_eq!(
            objects.horizontal_pod_autoscaler.is_some(),
            cluster.spec.proxy.autoscaling.enabled,
            "{example}"
        );
    }
}

fn assert_keys_known(written: &Value, parsed: &Value, path: &str) {
    if let (Some(written), Some(parsed)) = (written.as_object(), parsed.as_object()) {
        for (key, value) in written {
            let Some(parsed_value) = parsed.get(key) else {
                panic!("{path}.{key} is not a field of RocketMQCluster (typo?)");
            };
            // Free-form maps (broker.config) keep whatever keys they are given.
            assert_keys_known(value, parsed_value, &format!("{path}.{key}"));
        }
    }
}

/// Every place that names the project's image or chart version carries the workspace
/// version (what `images/build.sh` tags), so a release bump cannot leave a manifest
/// pointing at an image that was never built.
#[test]
fn image_tags_and_chart_versions_follow_the_workspace_version() {
    let version = env!("CARGO_PKG_VERSION");
    let mut files = vec![
        "charts/rocketmq-operator/Chart.yaml".to_string(),
        "charts/rocketmq-cluster/Chart.yaml".to_string(),
        "charts/rocketmq-cluster/values.yaml".to_string(),
        "e2e/compose/docker-compose.yml".to_string(),
        "examples/rocketmq-cluster.yaml".to_string(),
        "examples/rocketmq-cluster-dev.yaml".to_string(),
    ];
    for entry in std::fs::read_dir(workspace_file("e2e/kind")).expect("e2e/kind") {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") {
            files.push(format!("e2e/kind/{name}"));
        }
    }
    let mut found = 0;
    for file in &files {
        let text = std::fs::read_to_string(workspace_file(file)).expect(file);
        for (n, line) in text.lines().enumerate() {
            let mut named = Vec::new();
            let mut rest = line;
            while let Some(at) = rest.find("rocketmq-rs:") {
                rest = &rest[at + "rocketmq-rs:".len()..];
                named.push(
                    rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
                        .next()
                        .unwrap_or(""),
                );
            }
            let trimmed = line.trim_start();
            let keys: &[&str] = if file.ends_with("Chart.yaml") {
                &["version:", "appVersion:"]
            } else {
                &["tag:"]
            };
            for key in keys {
                if let Some(value) = trimmed.strip_prefix(key) {
                    named.push(value.trim().trim_matches('"'));
                }
            }
            // `rocketmq-rs:<version>` in prose names no version.
            for value in named.into_iter().filter(|v| !v.is_empty()) {
                found += 1;
                assert_eq!(value, version, "{file}:{}: `{}`", n + 1, line.trim());
            }
        }
    }
    assert!(found >= files.len(), "too few versions found ({found})");
}
