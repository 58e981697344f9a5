//! Reconcile passes against a mocked Kubernetes API (tower-test), checking the requests the
//! operator sends and how it reacts to the answers.
//!
//! The fake API server answers like kube-apiserver would for the calls the reconciler makes:
//! server-side apply echoes the applied object (with a workload status the test chooses),
//! the status subresource echoes the patch, Events are accepted, and a configured path can
//! fail with a 500 to exercise error handling.

use std::{sync::Arc, time::Duration};

use http::{Method, Request, Response, StatusCode};
use kube::{
    Client,
    client::Body,
    runtime::{controller::Action, events::Reporter},
};
use rocketmq_operator::{
    crd::RocketMQCluster,
    error::Error,
    reconciler::{
        Context, INITIAL_BACKOFF, PROGRESS_INTERVAL, RESYNC_INTERVAL, error_policy, reconcile,
    },
    telemetry::Metrics,
};
use serde_json::{Value, json};

mod common;
use common::{Recorded, authorization_attributes, json_response, rbac_rules};

/// How the fake API server behaves.
#[derive(Clone, Default)]
struct Behaviour {
    /// Report every workload as fully ready.
    workloads_ready: bool,
    /// Answer 500 to requests whose path contains this.
    fail_path: Option<&'static str>,
    /// Body of `GET .../horizontalpodautoscalers/<name>`; 404 when absent.
    existing_autoscaler: Option<Value>,
    /// Body of `GET .../deployments/<name>`; 404 when absent.
    existing_deployment: Option<Value>,
    /// The cluster was deleted: `GET .../rocketmqclusters/demo` answers 404.
    cluster_deleted: bool,
    /// Items of `GET .../pods?labelSelector=...`.
    pods: Vec<Value>,
}

fn status_error(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Status", "status": "Failure",
        "code": code, "reason": reason, "message": message, "metadata": {}
    })
}

/// Answers one request as kube-apiserver would for this test's purposes.
fn answer(request: &Recorded, behaviour: &Behaviour) -> Response<Body> {
    if let Some(fail) = behaviour.fail_path
        && request.path.contains(fail)
    {
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &status_error(500, "InternalError", "etcdserver: request timed out"),
        );
    }
    match request.method {
        Method::PATCH => {
            let mut object = request.body.clone();
            object["metadata"]["resourceVersion"] = json!("1");
            object["metadata"]["generation"] = json!(1);
            let kind = object["kind"].as_str().unwrap_or_default().to_string();
            if matches!(kind.as_str(), "StatefulSet" | "Deployment") {
                let desired = object["spec"]["replicas"].as_i64().unwrap_or(1);
                let ready = if behaviour.workloads_ready {
                    desired
                } else {
                    0
                };
                object["status"] = json!({
                    "observedGeneration": 1, "replicas": desired,
                    "readyReplicas": ready, "updatedReplicas": desired
                });
            }
            if request.path.ends_with("/status") {
                object["metadata"]["name"] = json!(request.path.rsplit('/').nth(1));
                object["spec"] = json!({});
            }
            json_response(StatusCode::OK, &object)
        }
        Method::POST if request.path.contains("/events") => {
            json_response(StatusCode::CREATED, &request.body)
        }
        Method::GET if request.path.contains("/horizontalpodautoscalers/") => {
            match &behaviour.existing_autoscaler {
                Some(autoscaler) => json_response(StatusCode::OK, autoscaler),
                None => json_response(
                    StatusCode::NOT_FOUND,
                    &status_error(404, "NotFound", "horizontalpodautoscalers not found"),
                ),
            }
        }
        Method::GET if request.path.ends_with("/rocketmqclusters/demo") => {
            if behaviour.cluster_deleted {
                json_response(
                    StatusCode::NOT_FOUND,
                    &status_error(404, "NotFound", "rocketmqclusters \"demo\" not found"),
                )
            } else {
                json_response(
                    StatusCode::OK,
                    &serde_json::to_value(&*cluster(json!({}))).expect("cluster serializes"),
                )
            }
        }
        Method::GET if request.path.ends_with("/pods") => json_response(
            StatusCode::OK,
            &json!({ "apiVersion": "v1", "kind": "PodList", "metadata": {},
                     "items": behaviour.pods }),
        ),
        Method::GET if request.path.contains("/deployments/") => {
            match &behaviour.existing_deployment {
                Some(deployment) => json_response(StatusCode::OK, deployment),
                None => json_response(
                    StatusCode::NOT_FOUND,
                    &status_error(404, "NotFound", "deployments not found"),
                ),
            }
        }
        Method::DELETE => json_response(StatusCode::OK, &status_error(200, "", "")),
        _ => json_response(
            StatusCode::NOT_IMPLEMENTED,
            &status_error(
                501,
                "NotImplemented",
                "the fake API server does not know this call",
            ),
        ),
    }
}

struct Harness {
    context: Arc<Context>,
    server: tokio::task::JoinHandle<Vec<Recorded>>,
}

impl Harness {
    fn start(behaviour: Behaviour) -> Self {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = tokio::spawn(async move {
            let mut recorded = Vec::new();
            while let Some((request, send)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.expect("request body");
                let entry = Recorded::new(&parts, &bytes);
                send.send_response(answer(&entry, &behaviour));
                recorded.push(entry);
            }
            recorded
        });
        let client = Client::new(service, "default");
        let reporter = Reporter {
            controller: "rocketmq-operator".into(),
            instance: Some("test".into()),
        };
        let context = Arc::new(Context::new(client, reporter, Arc::new(Metrics::new())));
        Self { context, server }
    }

    /// Drops the client so the fake server's loop ends, and returns what it saw.
    async fn finish(self) -> Vec<Recorded> {
        drop(self.context);
        tokio::time::timeout(Duration::from_secs(10), self.server)
            .await
            .expect("fake API server ends once the client is gone")
            .expect("fake API server did not panic")
    }
}

fn cluster(spec: Value) -> Arc<RocketMQCluster> {
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "rocketmq.rs/v1alpha1",
            "kind": "RocketMQCluster",
            "metadata": {
                "name": "demo", "namespace": "mq", "generation": 2,
                "uid": "6f1c2a8e-0000-4000-8000-0000000000aa", "resourceVersion": "7"
            },
            "spec": spec,
        }))
        .expect("test cluster deserializes"),
    )
}

/// Runs one reconcile pass against a fresh fake API server; returns the result, every
/// request the server saw, and the metrics the pass recorded.
async fn reconcile_once(
    cluster: Arc<RocketMQCluster>,
    behaviour: Behaviour,
) -> (Result<Action, Error>, Vec<Recorded>, Arc<Metrics>) {
    let harness = Harness::start(behaviour);
    let metrics = harness.context.metrics.clone();
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        reconcile(cluster, harness.context.clone()),
    )
    .await
    .expect("reconcile finishes");
    let recorded = harness.finish().await;
    (result, recorded, metrics)
}

/// A context for calling `error_policy`, which never talks to the API.
fn offline_context(metrics: Arc<Metrics>) -> Arc<Context> {
    let (service, _handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let reporter = Reporter {
        controller: "rocketmq-operator".into(),
        instance: None,
    };
    Arc::new(Context::new(
        Client::new(service, "default"),
        reporter,
        metrics,
    ))
}

fn applied_paths(recorded: &[Recorded]) -> Vec<&str> {
    recorded
        .iter()
        .filter(|r| r.is_apply())
        .map(|r| r.path.as_str())
        .collect()
}

fn applied_body<'a>(recorded: &'a [Recorded], path_suffix: &str) -> &'a Value {
    &recorded
        .iter()
        .rev()
        .find(|r| r.is_apply() && r.path.ends_with(path_suffix))
        .unwrap_or_else(|| {
            panic!(
                "no apply of {path_suffix}; saw {:#?}",
                applied_paths(recorded)
            )
        })
        .body
}

fn status_patch(recorded: &[Recorded]) -> &Value {
    &recorded
        .iter()
        .rev()
        .find(|r| r.method == Method::PATCH && r.path.ends_with("/rocketmqclusters/demo/status"))
        .unwrap_or_else(|| panic!("no status patch in {recorded:#?}"))
        .body["status"]
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["conditions"]
        .as_array()
        .and_then(|conditions| conditions.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("no {type_} condition in {status:#}"))
}

fn events(recorded: &[Recorded]) -> Vec<&Value> {
    recorded
        .iter()
        .filter(|r| r.method == Method::POST && r.path.contains("/events"))
        .map(|r| &r.body)
        .collect()
}

#[tokio::test]
async fn first_reconcile_creates_every_object_with_server_side_apply() {
    let (result, recorded, metrics) =
        reconcile_once(cluster(json!({})), Behaviour::default()).await;
    assert_eq!(
        result.expect("reconcile succeeds"),
        Action::requeue(PROGRESS_INTERVAL)
    );

    let expected = [
        "/api/v1/namespaces/mq/configmaps/demo-namesrv-config",
        "/api/v1/namespaces/mq/configmaps/demo-controller-config",
        "/api/v1/namespaces/mq/configmaps/demo-broker-0-config",
        "/api/v1/namespaces/mq/configmaps/demo-proxy-config",
        "/api/v1/namespaces/mq/services/demo-namesrv-headless",
        "/api/v1/namespaces/mq/services/demo-namesrv",
        "/api/v1/namespaces/mq/services/demo-controller-headless",
        "/api/v1/namespaces/mq/services/demo-broker-0-headless",
        "/api/v1/namespaces/mq/services/demo-broker-0-master",
        "/api/v1/namespaces/mq/services/demo-proxy",
        "/apis/apps/v1/namespaces/mq/statefulsets/demo-namesrv",
        "/apis/apps/v1/namespaces/mq/statefulsets/demo-controller",
        "/apis/apps/v1/namespaces/mq/statefulsets/demo-broker-0",
        "/apis/apps/v1/namespaces/mq/deployments/demo-proxy",
        "/apis/policy/v1/namespaces/mq/poddisruptionbudgets/demo-broker-0",
        "/apis/policy/v1/namespaces/mq/poddisruptionbudgets/demo-proxy",
    ];
    assert_eq!(applied_paths(&recorded), expected);
    for request in recorded.iter().filter(|r| r.method == Method::PATCH) {
        assert!(
            request.query.contains("fieldManager=rocketmq-operator")
                && request.query.contains("force=true"),
            "{} was not a forced apply by our field manager: {}",
            request.path,
            request.query
        );
    }
    // Autoscaling is off: the operator checks for an autoscaler of its own to remove.
    assert!(recorded.iter().any(|r| r.method == Method::GET
        && r.path == "/apis/autoscaling/v2/namespaces/mq/horizontalpodautoscalers/demo-proxy"));
    assert!(
        !recorded.iter().any(|r| r.method == Method::DELETE),
        "nothing to delete"
    );

    let status = status_patch(&recorded);
    assert_eq!(status["phase"], "Pending");
    assert_eq!(status["observedGeneration"], 2);
    assert_eq!(status["readyComponents"], "0/4");
    assert_eq!(condition(status, "Ready")["status"], "False");
    assert_eq!(condition(status, "Progressing")["reason"], "RollingOut");
    assert_eq!(
        status["endpoints"]["nameServer"],
        "demo-namesrv.mq.svc:9876"
    );
    assert_eq!(status["brokerGroups"][0]["name"], "demo-broker-0");
    assert!(
        status["brokerGroups"][0].get("master").is_none(),
        "master belongs to the failover watcher"
    );

    let events = events(&recorded);
    assert_eq!(events.len(), 1, "one phase-change event: {events:#?}");
    assert_eq!(events[0]["reason"], "Pending");
    assert_eq!(events[0]["type"], "Normal");
    assert_eq!(metrics.reconciliations("applied"), 1);
}

#[tokio::test]
async fn ready_workloads_make_the_cluster_running() {
    let behaviour = Behaviour {
        workloads_ready: true,
        ..Behaviour::default()
    };
    // Ready pods but no master recorded yet: not running.
    let (result, recorded, _) = reconcile_once(cluster(json!({})), behaviour.clone()).await;
    assert_eq!(
        result.expect("reconcile succeeds"),
        Action::requeue(PROGRESS_INTERVAL)
    );
    let status = status_patch(&recorded);
    assert_eq!(status["phase"], "Progressing");
    assert_eq!(condition(status, "BrokersReady")["status"], "False");
    assert!(
        condition(status, "Ready")["message"]
            .as_str()
            .unwrap()
            .contains("a master in demo-broker-0")
    );

    // With the failover watcher's master in the status.
    let mut serving = (*cluster(json!({}))).clone();
    serving.status = Some(
        serde_json::from_value(json!({
            "brokerGroups": [{"name": "demo-broker-0", "master": "demo-broker-0-1", "epoch": 2}],
            "conditions": [{"type": "ControllerQuorum", "status": "True",
                            "reason": "LeaderAnswers", "message": ""}]
        }))
        .expect("status"),
    );
    let (result, recorded, _) = reconcile_once(Arc::new(serving), behaviour).await;
    assert_eq!(
        result.expect("reconcile succeeds"),
        Action::requeue(RESYNC_INTERVAL)
    );
    let status = status_patch(&recorded);
    assert_eq!(status["phase"], "Running");
    assert_eq!(status["readyComponents"], "4/4");
    assert_eq!(status["masters"], 1);
    assert_eq!(condition(status, "Ready")["reason"], "AllComponentsReady");
    assert_eq!(condition(status, "Degraded")["status"], "False");
    assert_eq!(condition(status, "BrokersReady")["status"], "True");
    assert_eq!(condition(status, "ProxiesReady")["status"], "True");
    assert_eq!(status["brokerGroups"][0]["readyReplicas"], 3);
    assert!(
        status["brokerGroups"][0].get("master").is_none(),
        "master belongs to the failover watcher"
    );
    assert!(
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["type"] != "ControllerQuorum"),
        "ControllerQuorum belongs to the failover watcher"
    );
}

#[tokio::test]
async fn spec_change_is_applied_on_the_next_reconcile() {
    let (_, before, _) = reconcile_once(cluster(json!({})), Behaviour::default()).await;
    let scaled = cluster(json!({
        "nameServer": { "replicas": 3 },
        "broker": { "groups": 2, "replicasPerGroup": 2 },
        "proxy": { "autoscaling": { "enabled": true, "minReplicas": 2, "maxReplicas": 6 } }
    }));
    let (result, after, _) = reconcile_once(scaled, Behaviour::default()).await;
    result.expect("reconcile succeeds");

    let namesrv = applied_body(&after, "/statefulsets/demo-namesrv");
    assert_eq!(namesrv["spec"]["replicas"], 3);
    let broker = applied_body(&after, "/statefulsets/demo-broker-0");
    assert_eq!(broker["spec"]["replicas"], 2);
    assert!(applied_body(&after, "/statefulsets/demo-broker-1")["spec"]["replicas"] == 2);
    // The new name server must reach every broker: broker.conf lists all three, and the
    // changed file rolls the broker pods through the config-hash annotation.
    let conf = applied_body(&after, "/configmaps/demo-broker-0-config")["data"]["broker.conf"]
        .as_str()
        .expect("broker.conf");
    assert!(
        conf.contains("demo-namesrv-2.demo-namesrv-headless.mq.svc:9876"),
        "{conf}"
    );
    let hash = |recorded: &[Recorded]| {
        applied_body(recorded, "/statefulsets/demo-broker-0")["spec"]["template"]["metadata"]
            ["annotations"]["rocketmq.rs/config-hash"]
            .clone()
    };
    assert_ne!(hash(&before), hash(&after));
    // Autoscaling on: an HPA is applied; until it has written replicas itself the
    // Deployment is held at (at least) its minimum instead of falling back to 1.
    let autoscaler = applied_body(&after, "/horizontalpodautoscalers/demo-proxy");
    assert_eq!(autoscaler["spec"]["maxReplicas"], 6);
    assert_eq!(
        applied_body(&after, "/deployments/demo-proxy")["spec"]["replicas"],
        2
    );
    assert_eq!(status_patch(&after)["readyComponents"], "0/5");

    // A running Deployment keeps its count when autoscaling is switched on...
    let running = |managers: Value| {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "demo-proxy", "namespace": "mq", "managedFields": managers },
            "spec": { "replicas": 4, "selector": {}, "template": {} }
        })
    };
    let ours = json!([{ "manager": "rocketmq-operator", "operation": "Apply",
                        "fieldsType": "FieldsV1", "fieldsV1": { "f:spec": { "f:replicas": {} } } }]);
    let switched = cluster(json!({
        "proxy": { "autoscaling": { "enabled": true, "minReplicas": 2, "maxReplicas": 6 } }
    }));
    let (_, recorded, _) = reconcile_once(
        switched.clone(),
        Behaviour {
            existing_deployment: Some(running(ours)),
            ..Behaviour::default()
        },
    )
    .await;
    assert_eq!(
        applied_body(&recorded, "/deployments/demo-proxy")["spec"]["replicas"],
        4
    );
    // ...and is left to the autoscaler once it has scaled it.
    let scaled = json!([{ "manager": "kube-controller-manager", "operation": "Update",
                          "fieldsType": "FieldsV1", "fieldsV1": { "f:spec": { "f:replicas": {} } } }]);
    let (_, recorded, _) = reconcile_once(
        switched,
        Behaviour {
            existing_deployment: Some(running(scaled)),
            ..Behaviour::default()
        },
    )
    .await;
    assert!(
        applied_body(&recorded, "/deployments/demo-proxy")["spec"]
            .get("replicas")
            .is_none()
    );
}

#[tokio::test]
async fn disabling_autoscaling_deletes_only_our_own_autoscaler() {
    let owned = json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": { "name": "demo-proxy", "namespace": "mq", "ownerReferences": [{
            "apiVersion": "rocketmq.rs/v1alpha1", "kind": "RocketMQCluster", "name": "demo",
            "uid": "6f1c2a8e-0000-4000-8000-0000000000aa", "controller": true }] },
        "spec": { "maxReplicas": 4, "scaleTargetRef": { "kind": "Deployment", "name": "demo-proxy" } }
    });
    let behaviour = Behaviour {
        existing_autoscaler: Some(owned.clone()),
        ..Behaviour::default()
    };
    let (result, recorded, _) = reconcile_once(cluster(json!({})), behaviour).await;
    result.expect("reconcile succeeds");
    let deletes: Vec<&str> = recorded
        .iter()
        .filter(|r| r.method == Method::DELETE)
        .map(|r| r.path.as_str())
        .collect();
    assert_eq!(
        deletes,
        ["/apis/autoscaling/v2/namespaces/mq/horizontalpodautoscalers/demo-proxy"]
    );

    let mut foreign = owned;
    foreign["metadata"]["ownerReferences"][0]["uid"] = json!("someone-else");
    let behaviour = Behaviour {
        existing_autoscaler: Some(foreign),
        ..Behaviour::default()
    };
    let (result, recorded, _) = reconcile_once(cluster(json!({})), behaviour).await;
    result.expect("reconcile succeeds");
    assert!(
        !recorded.iter().any(|r| r.method == Method::DELETE),
        "a foreign HPA is left alone"
    );
}

#[tokio::test]
async fn paused_cluster_gets_only_a_status_patch() {
    let (result, recorded, metrics) =
        reconcile_once(cluster(json!({ "paused": true })), Behaviour::default()).await;
    assert_eq!(
        result.expect("paused is not an error"),
        Action::await_change()
    );
    // No child is touched: an Event marks entering the pause, then the status patch.
    assert_eq!(
        recorded.len(),
        2,
        "an Event and the status patch: {recorded:#?}"
    );
    let events = events(&recorded);
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["reason"], "Paused");
    let status = status_patch(&recorded);
    assert_eq!(status["phase"], "Paused");
    assert_eq!(condition(status, "Progressing")["reason"], "Paused");
    assert_eq!(metrics.reconciliations("paused"), 1);

    let mut annotated = (*cluster(json!({}))).clone();
    annotated.metadata.annotations =
        Some([("rocketmq.rs/paused".to_string(), "true".to_string())].into());
    let (_, recorded, _) = reconcile_once(Arc::new(annotated), Behaviour::default()).await;
    assert_eq!(
        applied_paths(&recorded),
        Vec::<&str>::new(),
        "the annotation pauses too"
    );
}

#[tokio::test]
async fn api_error_is_reported_and_requeued_with_backoff() {
    let behaviour = Behaviour {
        fail_path: Some("/statefulsets/demo-broker-0"),
        ..Behaviour::default()
    };
    let cluster = cluster(json!({}));
    let (result, recorded, metrics) = reconcile_once(cluster.clone(), behaviour).await;
    let error = result.expect_err("the failed apply must surface");
    match &error {
        Error::Apply { kind, name, .. } => {
            assert_eq!(
                (kind.as_str(), name.as_str()),
                ("StatefulSet", "demo-broker-0")
            );
        }
        other => panic!("expected an apply error, got {other:?}"),
    }
    // Nothing after the failing object was applied.
    assert!(
        !applied_paths(&recorded)
            .iter()
            .any(|p| p.contains("/deployments/"))
    );
    let warning = events(&recorded);
    assert_eq!(warning.len(), 1, "{warning:#?}");
    assert_eq!(warning[0]["type"], "Warning");
    assert_eq!(warning[0]["reason"], "ApplyFailed");
    assert!(
        warning[0]["note"]
            .as_str()
            .unwrap()
            .contains("demo-broker-0")
    );
    let status = status_patch(&recorded);
    assert_eq!(status["phase"], "Degraded");
    let degraded = condition(status, "Degraded");
    assert_eq!(
        (&degraded["status"], &degraded["reason"]),
        (&json!("True"), &json!("ApplyFailed"))
    );

    let context = offline_context(metrics.clone());
    assert_eq!(
        error_policy(cluster.clone(), &error, context.clone()),
        Action::requeue(INITIAL_BACKOFF)
    );
    assert_eq!(
        error_policy(cluster.clone(), &error, context.clone()),
        Action::requeue(INITIAL_BACKOFF * 2),
        "consecutive failures back off exponentially"
    );
    assert_eq!(metrics.reconciliations("failed"), 1);
}

#[tokio::test]
async fn invalid_spec_is_reported_without_touching_children() {
    let (result, recorded, _) = reconcile_once(
        cluster(json!({ "controller": { "replicas": 2 } })),
        Behaviour::default(),
    )
    .await;
    assert_eq!(
        result.expect("an invalid spec waits for an edit"),
        Action::await_change()
    );
    assert_eq!(applied_paths(&recorded), Vec::<&str>::new());
    let status = status_patch(&recorded);
    let degraded = condition(status, "Degraded");
    assert_eq!(degraded["reason"], "InvalidSpec");
    assert!(
        degraded["message"]
            .as_str()
            .unwrap()
            .contains("controller.replicas must be odd")
    );
    assert_eq!(events(&recorded)[0]["reason"], "InvalidSpec");
}

#[tokio::test]
async fn rbac_manifest_allows_every_call_the_operator_makes() {
    let rules = rbac_rules();
    let mut needed = Vec::new();
    // Every reconcile path: create, ready, scaled with HPA, HPA removal, paused, failure.
    let owned_autoscaler = json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": { "name": "demo-proxy", "namespace": "mq", "ownerReferences": [{
            "apiVersion": "rocketmq.rs/v1alpha1", "kind": "RocketMQCluster", "name": "demo",
            "uid": "6f1c2a8e-0000-4000-8000-0000000000aa", "controller": true }] },
        "spec": { "maxReplicas": 4, "scaleTargetRef": { "kind": "Deployment", "name": "demo-proxy" } }
    });
    let scenarios = [
        (json!({}), Behaviour::default()),
        (
            json!({"proxy": {"autoscaling": {"enabled": true}}}),
            Behaviour {
                workloads_ready: true,
                ..Behaviour::default()
            },
        ),
        (
            json!({}),
            Behaviour {
                existing_autoscaler: Some(owned_autoscaler),
                ..Behaviour::default()
            },
        ),
        (json!({"paused": true}), Behaviour::default()),
        (
            json!({}),
            Behaviour {
                fail_path: Some("/deployments/"),
                ..Behaviour::default()
            },
        ),
    ];
    for (spec, behaviour) in scenarios {
        let (_, recorded, _) = reconcile_once(cluster(spec), behaviour).await;
        for request in &recorded {
            needed.extend(authorization_attributes(request));
        }
    }
    // Calls outside reconcile: the Controller lists and watches the cluster and each owned
    // kind; the elector reads, creates and replaces its Lease (see src/leader.rs tests).
    for (group, resource) in [
        ("rocketmq.rs", "rocketmqclusters"),
        ("", "configmaps"),
        ("", "services"),
        ("apps", "statefulsets"),
        ("apps", "deployments"),
        ("policy", "poddisruptionbudgets"),
        ("autoscaling", "horizontalpodautoscalers"),
    ] {
        for verb in ["list", "watch"] {
            needed.push((group.into(), resource.into(), verb.into()));
        }
    }
    for verb in ["get", "create", "update"] {
        needed.push(("coordination.k8s.io".into(), "leases".into(), verb.into()));
    }
    // The failover watcher (tests/failover_watcher.rs checks its calls against rbac.yaml
    // too): it lists clusters and the broker Services, pods and StatefulSets, repoints a
    // master Service, labels broker pods with their role, deletes broker pods for the
    // rolling restart, and writes status like the reconciler.
    for (resource, verb) in [
        ("services", "patch"),
        ("pods", "watch"),
        ("pods", "patch"),
        ("pods", "delete"),
    ] {
        needed.push(("".into(), resource.into(), verb.into()));
    }
    // LoadBalancer external access: the watcher reads and writes the addresses ConfigMaps.
    needed.push(("".into(), "configmaps".into(), "get".into()));
    // Scale-in deletes a drained group's objects.
    for (group, resource) in [
        ("", "configmaps"),
        ("", "services"),
        ("apps", "statefulsets"),
        ("policy", "poddisruptionbudgets"),
    ] {
        needed.push((group.into(), resource.into(), "delete".into()));
    }
    // kube-runtime's Recorder patches an Event it already published when it repeats
    // (within one process, so a single-pass harness never shows it).
    needed.push(("events.k8s.io".into(), "events".into(), "patch".into()));
    needed.sort();
    needed.dedup();
    let missing: Vec<_> = needed.iter().filter(|need| !rules.contains(need)).collect();
    assert!(missing.is_empty(), "rbac.yaml lacks {missing:#?}");
    // Least privilege: every rule is used, except the finalizers grant that owner
    // references with blockOwnerDeletion require (checked by the API server's admission, not
    // by a call the operator makes).
    let unused: Vec<_> = rules.iter().filter(|rule| !needed.contains(rule)).collect();
    assert_eq!(
        unused,
        [&(
            "rocketmq.rs".to_string(),
            "rocketmqclusters/finalizers".to_string(),
            "update".to_string()
        )],
        "rbac.yaml grants more than the operator uses"
    );
    // Nothing may touch volumes; pods are listed, patched (role labels) and deleted (the
    // rolling restart), never created; delete is otherwise limited to the HPA and a drained
    // broker group's objects.
    for (group, resource, verb) in &rules {
        assert!(
            !resource.contains("persistentvolume"),
            "no PVC rights: {resource}"
        );
        if resource.starts_with("pods") {
            assert!(
                resource == "pods"
                    && matches!(verb.as_str(), "list" | "watch" | "patch" | "delete"),
                "pods are only listed, labelled and restarted: {resource} {verb}"
            );
        }
        if verb == "delete" {
            assert!(
                matches!(
                    (group.as_str(), resource.as_str()),
                    ("autoscaling", "horizontalpodautoscalers")
                        | ("", "pods" | "configmaps" | "services")
                        | ("apps", "statefulsets")
                        | ("policy", "poddisruptionbudgets")
                ),
                "delete on {group}/{resource}"
            );
        }
    }
}

#[tokio::test]
async fn a_cluster_deleted_mid_pass_gets_no_more_children() {
    let (result, recorded, metrics) = reconcile_once(
        cluster(json!({})),
        Behaviour {
            cluster_deleted: true,
            ..Behaviour::default()
        },
    )
    .await;
    assert_eq!(result.expect("not an error"), Action::await_change());
    let applied = applied_paths(&recorded);
    assert!(
        applied
            .iter()
            .all(|p| p.contains("/configmaps/") || p.contains("/services/")),
        "workloads applied after the deletion: {applied:#?}"
    );
    assert!(
        !recorded.iter().any(|r| r.path.ends_with("/status")),
        "no status for a deleted cluster"
    );
    assert_eq!(metrics.reconciliations("deleted"), 1);
}

#[tokio::test]
async fn the_status_names_pods_that_cannot_start() {
    let stuck = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "demo-broker-0-0", "namespace": "mq" },
        "spec": { "containers": [] },
        "status": { "phase": "Pending", "containerStatuses": [{
            "name": "broker", "image": "rocketmq-rs:nope", "imageID": "", "ready": false,
            "restartCount": 0,
            "state": { "waiting": { "reason": "ImagePullBackOff",
                                    "message": "Back-off pulling image \"rocketmq-rs:nope\"" } }
        }]}
    });
    let (result, recorded, _) = reconcile_once(
        cluster(json!({})),
        Behaviour {
            pods: vec![stuck],
            ..Behaviour::default()
        },
    )
    .await;
    result.expect("reconcile succeeds");
    assert!(
        recorded
            .iter()
            .any(|r| r.method == Method::GET && r.path.ends_with("/namespaces/mq/pods")),
        "pods were not listed"
    );
    let status = status_patch(&recorded);
    let ready = condition(status, "Ready")["message"].as_str().unwrap();
    assert!(
        ready.contains("ImagePullBackOff on demo-broker-0-0"),
        "{ready}"
    );
}
