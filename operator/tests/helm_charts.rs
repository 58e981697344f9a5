//! The Helm charts (`charts/`), rendered and linted by Helm's own library (PyPI
//! `helm-python-sdk`, driven by `charts/ci/render.py` in a venv this test creates):
//!
//! - both charts lint cleanly (strict) and render for several value sets;
//! - every rendered object decodes as its Kubernetes type and re-encodes to the same
//!   document (a misspelt or misplaced field would be dropped and show up as a difference);
//!   the RocketMQCluster decodes as ours and the operator builds a full object set from it;
//! - the schemas reject bad values; the cluster chart's schema is the CRD's own, closed to
//!   unknown keys (regenerate with `UPDATE_GOLDEN=1`);
//! - the chart's CRD is `crds/`, its RBAC rules are `operator/manifests/rbac.yaml`'s;
//! - every metric the dashboard and alerts query is one the servers export, and the alerts
//!   pass promtool's unit tests (`charts/ci/alerts-test.yaml`);
//! - the kind scripts' manifests decode as their types and the scripts parse (`bash -n`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use k8s_openapi::api::{
    apps::v1::Deployment,
    batch::v1::Job,
    core::v1::{ConfigMap, Namespace, Service, ServiceAccount},
    policy::v1::PodDisruptionBudget,
    rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding},
};
use rocketmq_operator::{crd::RocketMQCluster, objects::desired_objects};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

fn workspace_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(workspace_file(relative))
        .unwrap_or_else(|e| panic!("cannot read {relative}: {e}"))
}

/// The YAML documents of a multi-document text, as JSON values (empty ones skipped).
fn documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("valid YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// The first path where `original` holds something `decoded` lost or changed; decoding may
/// add defaults, never drop or alter what was written. Nulls and empty maps mean "unset".
fn lost(original: &Value, decoded: &Value, path: &str) -> Option<String> {
    match (original, decoded) {
        (Value::Null, _) => None,
        (Value::Object(o), _) if o.is_empty() => None,
        (Value::Object(o), Value::Object(d)) => o.iter().find_map(|(k, v)| {
            let here = format!("{path}.{k}");
            match d.get(k) {
                Some(dv) => lost(v, dv, &here),
                None if v.is_null() || v.as_object().is_some_and(|m| m.is_empty()) => None,
                None => Some(here),
            }
        }),
        (Value::Array(o), Value::Array(d)) if o.len() == d.len() => o
            .iter()
            .zip(d)
            .enumerate()
            .find_map(|(i, (ov, dv))| lost(ov, dv, &format!("{path}[{i}]"))),
        (o, d) if o == d => None,
        _ => Some(path.to_string()),
    }
}

/// Decodes `doc` as `T` and checks nothing was lost on the way.
fn decode_exactly<T: DeserializeOwned + Serialize>(doc: &Value, what: &str) -> T {
    let typed: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{what} does not decode: {e}\n{doc:#}"));
    let back = serde_json::to_value(&typed).expect("encodes");
    if let Some(path) = lost(doc, &back, "") {
        panic!(
            "{what}: {path} is dropped or changed by decoding (misspelt or misplaced?)\n{doc:#}"
        );
    }
    typed
}

/// Every object `object` with properties and no other way to hold unknown keys refuses
/// them: Helm then rejects values the API server would prune.
fn closed(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out: serde_json::Map<String, Value> = map
                .iter()
                .map(|(k, v)| {
                    let v = match k.as_str() {
                        "properties" => Value::Object(
                            v.as_object()
                                .expect("properties is a map")
                                .iter()
                                .map(|(name, s)| (name.clone(), closed(s)))
                                .collect(),
                        ),
                        "items" | "additionalProperties" => closed(v),
                        _ => v.clone(),
                    };
                    (k.clone(), v)
                })
                .collect();
            if out.contains_key("properties")
                && !out.contains_key("additionalProperties")
                && !out.contains_key("x-kubernetes-preserve-unknown-fields")
            {
                out.insert("additionalProperties".into(), Value::Bool(false));
            }
            Value::Object(out)
        }
        other => other.clone(),
    }
}

/// The cluster chart's `values.schema.json`: its `spec` is the CRD's spec schema.
fn cluster_values_schema() -> Value {
    let crd =
        serde_json::to_value(rocketmq_operator::crdgen::definition()).expect("CRD serializes");
    let spec =
        closed(&crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]);
    let labels = json!({"type": "object", "additionalProperties": {"type": "string"}});
    let toggle = |extra: Value| {
        let mut properties = json!({"enabled": {"type": "boolean"}, "labels": labels});
        properties
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        json!({"type": "object", "additionalProperties": false, "properties": properties})
    };
    json!({
        "$schema": "https://json-schema.org/draft-07/schema#",
        "title": "rocketmq-cluster chart values (generated by operator/tests/helm_charts.rs from the CRD)",
        "type": "object",
        "additionalProperties": false,
        "required": ["spec"],
        "properties": {
            "nameOverride": {"type": "string", "pattern": "^([a-z0-9]([-a-z0-9]*[a-z0-9])?)?$", "maxLength": 40},
            "spec": spec,
            "monitoring": {
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "podMonitor": toggle(json!({"interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"}})),
                    "prometheusRule": toggle(json!({
                        "consumerLagThreshold": {"type": "integer", "minimum": 1},
                        "diskUsedRatioThreshold": {"type": "number", "exclusiveMinimum": 0, "maximum": 1}
                    })),
                    "grafanaDashboard": toggle(json!({})),
                }
            }
        }
    })
}

#[test]
fn cluster_chart_schema_is_the_crds() {
    let path = workspace_file("charts/rocketmq-cluster/values.schema.json");
    let expected = cluster_values_schema();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let text = serde_json::to_string_pretty(&expected).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
    }
    let actual: Value = serde_json::from_str(&read("charts/rocketmq-cluster/values.schema.json"))
        .expect("values.schema.json is JSON");
    assert!(
        actual == expected,
        "charts/rocketmq-cluster/values.schema.json is not the CRD's schema: rerun with \
         UPDATE_GOLDEN=1 after changing operator/src/crd.rs"
    );
}

#[test]
fn chart_crd_is_the_generated_one() {
    assert_eq!(
        read("charts/rocketmq-operator/crds/rocketmq.rs_rocketmqclusters.yaml"),
        read("crds/rocketmq.rs_rocketmqclusters.yaml"),
        "copy crds/rocketmq.rs_rocketmqclusters.yaml into charts/rocketmq-operator/crds/"
    );
}

/// The metric names a PromQL text mentions.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("rocketmq_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.insert(tail[..end].to_string());
        rest = &tail[end..];
    }
    names
}

/// Whether the servers register `metric` (`rocketmq_<server>_<name>` plus the suffixes the
/// Prometheus encoding adds).
fn exported(metric: &str) -> bool {
    let sources: [(&str, &[&str]); 4] = [
        (
            "rocketmq_broker_",
            &["broker/src/server.rs", "common/src/remoting/metrics.rs"],
        ),
        ("rocketmq_controller_", &["controller/src/server.rs"]),
        ("rocketmq_proxy_", &["proxy/src/metrics.rs"]),
        ("rocketmq_namesrv_", &["namesrv/src/lib.rs"]),
    ];
    let Some((prefix, files)) = sources.iter().find(|(p, _)| metric.starts_with(p)) else {
        return false;
    };
    let name = &metric[prefix.len()..];
    let base = ["_total", "_bucket", "_count", "_sum"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name);
    files
        .iter()
        .any(|file| read(file).contains(&format!("\"{base}\"")))
}

#[test]
fn dashboard_and_alerts_query_exported_metrics() {
    let dashboard: Value =
        serde_json::from_str(&read("charts/rocketmq-cluster/dashboards/rocketmq.json"))
            .expect("the dashboard is JSON");
    let mut queried = BTreeSet::new();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8);
    for panel in panels {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(
            !targets.is_empty(),
            "panel {} queries nothing",
            panel["title"]
        );
        for target in targets {
            queried.extend(metric_names(target["expr"].as_str().expect("expr")));
        }
    }
    queried.extend(metric_names(&read(
        "charts/rocketmq-cluster/templates/prometheusrule.yaml",
    )));
    let unknown: Vec<&String> = queried.iter().filter(|m| !exported(m)).collect();
    assert!(unknown.is_empty(), "no server exports {unknown:?}");
}

fn bash_parses(relative: &str) {
    let out = Command::new("bash")
        .arg("-n")
        .arg(workspace_file(relative))
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "{relative}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kind_scripts_and_their_manifests() {
    let dir = workspace_file("e2e/kind");
    let mut scripts = 0;
    for entry in std::fs::read_dir(&dir).expect("e2e/kind") {
        let path = entry.unwrap().path();
        let relative = format!("e2e/kind/{}", path.file_name().unwrap().to_string_lossy());
        match path.extension().and_then(|e| e.to_str()) {
            Some("sh") => {
                bash_parses(&relative);
                scripts += 1;
            }
            Some("yaml") => {
                for doc in documents(&read(&relative)) {
                    let what = format!("{relative}: {} {}", doc["kind"], doc["metadata"]["name"]);
                    match doc["kind"].as_str() {
                        Some("Job") => drop(decode_exactly::<Job>(&doc, &what)),
                        Some("Namespace") => drop(decode_exactly::<Namespace>(&doc, &what)),
                        other => panic!("{what}: unexpected kind {other:?}"),
                    }
                }
            }
            _ => {}
        }
    }
    assert!(scripts >= 1, "no scripts in e2e/kind");
    bash_parses("images/build.sh");
    // The cluster the scripts apply.
    for doc in documents(&read("examples/rocketmq-cluster-dev.yaml")) {
        let cluster: RocketMQCluster = decode_exactly(&doc, "examples/rocketmq-cluster-dev.yaml");
        // run.sh deletes the master pod and expects a slave to take over.
        assert!(
            cluster.spec.broker.replicas_per_group >= 2,
            "the kind cluster needs a slave to fail over to"
        );
        builds_object_set(cluster).expect("the example builds an object set");
    }
    // Every manifest is used by the script.
    let script = read("e2e/kind/run.sh");
    for entry in std::fs::read_dir(&dir).expect("e2e/kind") {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") {
            assert!(script.contains(&name), "run.sh does not apply {name}");
        }
    }
}

/// Whether the operator builds its object set for `cluster` once the API server has
/// created it (which gives it a uid).
fn builds_object_set(mut cluster: RocketMQCluster) -> Result<(), String> {
    cluster.metadata.uid = Some("00000000-0000-0000-0000-000000000001".into());
    desired_objects(&cluster)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn rules_of(doc: &Value) -> Vec<PolicyRule> {
    serde_json::from_value(doc["rules"].clone()).expect("rules")
}

/// Checks one rendered manifest file; returns the kinds it held.
fn check_rendered(
    chart: &str,
    case: &str,
    template: &str,
    text: &str,
    rbac: &[PolicyRule],
) -> Vec<String> {
    let mut kinds = Vec::new();
    for doc in documents(text) {
        let kind = doc["kind"]
            .as_str()
            .expect("every object has a kind")
            .to_string();
        let what = format!(
            "{chart} ({case}) {template}: {kind} {}",
            doc["metadata"]["name"]
        );
        match kind.as_str() {
            "ServiceAccount" => drop(decode_exactly::<ServiceAccount>(&doc, &what)),
            "ClusterRole" => {
                decode_exactly::<ClusterRole>(&doc, &what);
                assert_eq!(rules_of(&doc), rbac, "{what}: rules differ from rbac.yaml");
            }
            "Role" => {
                decode_exactly::<Role>(&doc, &what);
                let leader_election = doc["metadata"]["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("-leader-election"));
                if !leader_election {
                    assert_eq!(rules_of(&doc), rbac, "{what}: rules differ from rbac.yaml");
                }
            }
            "ClusterRoleBinding" => drop(decode_exactly::<ClusterRoleBinding>(&doc, &what)),
            "RoleBinding" => drop(decode_exactly::<RoleBinding>(&doc, &what)),
            "Deployment" => drop(decode_exactly::<Deployment>(&doc, &what)),
            "PodDisruptionBudget" => drop(decode_exactly::<PodDisruptionBudget>(&doc, &what)),
            "Service" => drop(decode_exactly::<Service>(&doc, &what)),
            "ConfigMap" => {
                let map: ConfigMap = decode_exactly(&doc, &what);
                for (name, data) in map.data.unwrap_or_default() {
                    if name.ends_with(".json") {
                        serde_json::from_str::<Value>(&data)
                            .unwrap_or_else(|e| panic!("{what}: {name} is not JSON: {e}"));
                    }
                }
            }
            "RocketMQCluster" => {
                let cluster: RocketMQCluster = decode_exactly(&doc, &what);
                builds_object_set(cluster)
                    .unwrap_or_else(|e| panic!("{what}: the operator refuses it: {e}"));
            }
            "ServiceMonitor" | "PodMonitor" => {
                assert_eq!(doc["apiVersion"], "monitoring.coreos.com/v1", "{what}");
                assert!(doc["spec"]["selector"]["matchLabels"].is_object(), "{what}");
            }
            "PrometheusRule" => {
                assert_eq!(doc["apiVersion"], "monitoring.coreos.com/v1", "{what}");
                let groups = doc["spec"]["groups"].as_array().expect("groups");
                for rule in groups.iter().flat_map(|g| g["rules"].as_array().unwrap()) {
                    let expr = rule["expr"].as_str().unwrap_or_default();
                    assert!(
                        !expr.is_empty() && rule["alert"].is_string(),
                        "{what}: {rule}"
                    );
                    assert!(
                        !expr.contains("{{"),
                        "{what}: unrendered template in {expr}"
                    );
                }
            }
            other => panic!("{what}: no check for kind {other}"),
        }
        kinds.push(kind);
    }
    kinds
}

#[test]
fn charts_lint_render_and_decode() {
    let python = rocketmq_testkit::python_venv(
        &PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("helm-venv"),
        "helm-python-sdk==0.2.2",
    );
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new(&python)
        .arg(workspace_file("charts/ci/render.py"))
        .arg(workspace_file("charts"))
        .arg(out_dir.path())
        .output()
        .expect("run render.py");
    assert!(
        out.status.success(),
        "render.py failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rbac_doc = documents(&read("operator/manifests/rbac.yaml"))
        .into_iter()
        .find(|d| d["kind"] == "ClusterRole")
        .expect("rbac.yaml has the ClusterRole");
    let rbac = rules_of(&rbac_doc);

    for chart in ["rocketmq-operator", "rocketmq-cluster"] {
        let dir = out_dir.path().join(chart);
        let mut cases = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let case = path.file_stem().unwrap().to_string_lossy().to_string();
            let report: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            match case.as_str() {
                "rejected" => {
                    for (bad, error) in report.as_object().unwrap() {
                        assert!(
                            error.is_string(),
                            "{chart}: the schema accepted the bad values {bad:?}"
                        );
                    }
                    continue;
                }
                "crds" => {
                    let crds = report.as_array().unwrap();
                    if chart == "rocketmq-operator" {
                        assert_eq!(crds.len(), 1, "{chart} carries the CRD");
                    }
                    continue;
                }
                _ => cases += 1,
            }
            let lint = &report["lint"];
            let problems: Vec<&Value> = lint["messages"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["severity"].as_i64().unwrap_or(0) >= 2)
                .collect();
            assert!(
                problems.is_empty() && lint["errors"].as_array().unwrap().is_empty(),
                "{chart} ({case}) does not lint cleanly: {lint:#}"
            );
            let mut kinds = Vec::new();
            for (template, text) in report["manifests"].as_object().unwrap() {
                if template.ends_with("NOTES.txt") {
                    assert!(!text.as_str().unwrap().trim().is_empty());
                    continue;
                }
                kinds.extend(check_rendered(
                    chart,
                    &case,
                    template,
                    text.as_str().unwrap(),
                    &rbac,
                ));
            }
            let must: &[&str] = if chart == "rocketmq-operator" {
                &["Deployment", "ServiceAccount", "RoleBinding", "Service"]
            } else {
                &["RocketMQCluster"]
            };
            for kind in must {
                assert!(
                    kinds.iter().any(|k| k == kind),
                    "{chart} ({case}) renders no {kind}"
                );
            }
            if case == "defaults" {
                // Monitoring objects need the Prometheus operator's CRDs: off by default.
                for kind in ["PodMonitor", "ServiceMonitor", "PrometheusRule"] {
                    assert!(
                        !kinds.iter().any(|k| k == kind),
                        "{chart} renders a {kind} by default"
                    );
                }
                if chart == "rocketmq-operator" {
                    assert!(
                        kinds.iter().any(|k| k == "PodDisruptionBudget"),
                        "{chart}: no PodDisruptionBudget for its replicas by default"
                    );
                }
            }
            if case == "monitoring" {
                let expected: &[&str] = if chart == "rocketmq-operator" {
                    &["ServiceMonitor"]
                } else {
                    &["PodMonitor", "PrometheusRule", "ConfigMap"]
                };
                for kind in expected {
                    assert!(
                        kinds.iter().any(|k| k == kind),
                        "{chart} ({case}) renders no {kind}"
                    );
                }
            }
        }
        assert!(cases >= 3, "{chart}: only {cases} value cases rendered");
    }
    let monitoring: Value = serde_json::from_str(
        &std::fs::read_to_string(out_dir.path().join("rocketmq-cluster/monitoring.json")).unwrap(),
    )
    .unwrap();
    let rule = monitoring["manifests"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(template, _)| template.ends_with(".yaml"))
        .flat_map(|(_, text)| documents(text.as_str().unwrap()))
        .find(|doc| doc["kind"] == "PrometheusRule")
        .expect("the monitoring case renders a PrometheusRule");
    alerts_pass_their_unit_tests(&rule);
}

/// `promtool`: from `$PROMTOOL`, the PATH, or Debian's `prometheus` package, downloaded
/// once and unpacked under the target directory (nothing is installed or started).
fn promtool() -> PathBuf {
    if let Some(path) = std::env::var_os("PROMTOOL") {
        return path.into();
    }
    if Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return "promtool".into();
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("promtool");
    let unpacked = dir.join("root");
    let binary = unpacked.join("usr/bin/promtool");
    if binary.exists() {
        return binary;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new("apt-get")
        .args(["download", "prometheus"])
        .current_dir(&dir)
        .output()
        .expect("apt-get (Debian's prometheus package carries promtool)");
    assert!(
        out.status.success(),
        "apt-get download prometheus failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deb = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .expect("the downloaded package");
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&unpacked)
        .status()
        .expect("dpkg-deb");
    assert!(status.success() && binary.exists(), "unpacking {deb:?}");
    binary
}

/// The rendered alerting rules pass `promtool check rules` and the unit tests in
/// `charts/ci/alerts-test.yaml` (each alert fires when it should, including when nothing
/// is scraped, and stays silent on a healthy cluster).
fn alerts_pass_their_unit_tests(rule: &Value) {
    let dir = tempfile::tempdir().unwrap();
    // JSON is YAML.
    std::fs::write(
        dir.path().join("rules.yaml"),
        serde_json::to_string_pretty(&json!({ "groups": rule["spec"]["groups"] })).unwrap(),
    )
    .unwrap();
    std::fs::copy(
        workspace_file("charts/ci/alerts-test.yaml"),
        dir.path().join("alerts-test.yaml"),
    )
    .unwrap();
    let promtool = promtool();
    for args in [
        ["check", "rules", "rules.yaml"],
        ["test", "rules", "alerts-test.yaml"],
    ] {
        let out = Command::new(&promtool)
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("run promtool");
        assert!(
            out.status.success(),
            "promtool {}:\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
