//! The whole controller (`reconciler::run`) against a mocked API server: it lists and
//! watches the clusters and the owned kinds, reconciles the cluster it finds, and stops
//! cleanly when asked to.

use std::{convert::Infallible, sync::Arc, time::Duration};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use kube::{Client, client::Body, runtime::events::Reporter};
use rocketmq_operator::{
    failover::{self, WatcherSettings},
    reconciler::{self, Context},
    telemetry::Metrics,
};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

type ResponseBody = BoxBody<Bytes, Infallible>;

fn json_body(status: StatusCode, value: &Value) -> Response<ResponseBody> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(serde_json::to_vec(value).expect("JSON"))).boxed())
        .expect("valid response")
}

/// A watch that stays open without events, like a quiet cluster.
fn open_watch() -> Response<ResponseBody> {
    let quiet = futures_util::stream::pending::<Result<http_body::Frame<Bytes>, Infallible>>();
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(BodyExt::boxed(StreamBody::new(quiet)))
        .expect("valid response")
}

/// A context whose client talks to the fake API server behind `service`.
fn test_context(
    service: tower_test::mock::Mock<Request<Body>, Response<ResponseBody>>,
    metrics: Arc<Metrics>,
) -> Arc<Context> {
    Arc::new(Context::new(
        Client::new(service, "mq"),
        Reporter {
            controller: "rocketmq-operator".into(),
            instance: Some("test".into()),
        },
        metrics,
    ))
}

fn cluster() -> Value {
    json!({
        "apiVersion": "rocketmq.rs/v1alpha1", "kind": "RocketMQCluster",
        "metadata": { "name": "demo", "namespace": "mq", "generation": 1, "resourceVersion": "9",
                      "uid": "6f1c2a8e-0000-4000-8000-0000000000bb" },
        "spec": {}
    })
}

fn list_kind(path: &str) -> &'static str {
    let resource = path.rsplit('/').next().unwrap_or_default();
    match resource {
        "rocketmqclusters" => "RocketMQClusterList",
        "configmaps" => "ConfigMapList",
        "services" => "ServiceList",
        "statefulsets" => "StatefulSetList",
        "deployments" => "DeploymentList",
        "poddisruptionbudgets" => "PodDisruptionBudgetList",
        "horizontalpodautoscalers" => "HorizontalPodAutoscalerList",
        "pods" => "PodList",
        other => panic!("unexpected list of {other}"),
    }
}

/// Answers like kube-apiserver for a namespace holding one cluster and nothing else, and
/// reports `method path?query` of every request on `seen`.
async fn serve(
    mut handle: tower_test::mock::Handle<Request<Body>, Response<ResponseBody>>,
    seen: mpsc::UnboundedSender<String>,
) {
    while let Some((request, send)) = handle.next_request().await {
        let (parts, body) = request.into_parts();
        let path = parts.uri.path().to_string();
        let query = parts.uri.query().unwrap_or_default().to_string();
        let body: Value = serde_json::from_slice(&body.collect_bytes().await.expect("body"))
            .unwrap_or(Value::Null);
        let _ = seen.send(format!("{} {path}?{query}", parts.method));
        let response = match parts.method {
            Method::GET if query.contains("watch=true") => open_watch(),
            Method::GET if path.contains("/horizontalpodautoscalers/") => json_body(
                StatusCode::NOT_FOUND,
                &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                        "reason": "NotFound", "message": "not found", "metadata": {}}),
            ),
            Method::GET if path.ends_with("/rocketmqclusters/demo") => {
                json_body(StatusCode::OK, &cluster())
            }
            Method::GET => {
                let items = if path.ends_with("/rocketmqclusters") {
                    vec![cluster()]
                } else {
                    vec![]
                };
                json_body(
                    StatusCode::OK,
                    &json!({ "apiVersion": "v1", "kind": list_kind(&path),
                             "metadata": { "resourceVersion": "10" }, "items": items }),
                )
            }
            Method::PATCH => {
                let mut object = body;
                object["metadata"]["resourceVersion"] = json!("11");
                if path.ends_with("/status") {
                    object["metadata"]["name"] = json!("demo");
                    object["spec"] = json!({});
                }
                json_body(StatusCode::OK, &object)
            }
            Method::POST => json_body(StatusCode::CREATED, &body),
            _ => json_body(StatusCode::NOT_IMPLEMENTED, &json!({})),
        };
        send.send_response(response);
    }
}

#[tokio::test]
async fn controller_reconciles_a_listed_cluster_and_shuts_down_gracefully() {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<ResponseBody>>();
    let (seen_sender, mut seen) = mpsc::unbounded_channel();
    let server = tokio::spawn(serve(handle, seen_sender));
    let metrics = Arc::new(Metrics::new());
    let context = test_context(service, metrics.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let controller = tokio::spawn(reconciler::run(context, Some("mq"), async {
        let _ = stopped.await;
    }));

    let mut requests = Vec::new();
    let status_patched = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(request) = seen.recv().await {
            let done = request.starts_with(
                "PATCH /apis/rocketmq.rs/v1alpha1/namespaces/mq/rocketmqclusters/demo/status",
            );
            requests.push(request);
            if done {
                return;
            }
        }
    })
    .await;
    assert!(
        status_patched.is_ok(),
        "no status patch; requests so far:\n{}",
        requests.join("\n")
    );

    // The controller watched the cluster and every owned kind, by our label only.
    for resource in [
        "rocketmqclusters",
        "configmaps",
        "services",
        "statefulsets",
        "deployments",
        "poddisruptionbudgets",
        "horizontalpodautoscalers",
    ] {
        assert!(
            requests.iter().any(
                |r| r.starts_with("GET ") && r.contains(&format!("/namespaces/mq/{resource}?"))
            ),
            "{resource} was never listed:\n{}",
            requests.join("\n")
        );
    }
    let owned_list = requests
        .iter()
        .find(|r| r.contains("/namespaces/mq/statefulsets?"))
        .expect("statefulsets listed");
    assert!(
        owned_list.contains("labelSelector=app.kubernetes.io%2Fmanaged-by%3Drocketmq-operator"),
        "{owned_list}"
    );
    assert!(requests.iter().any(|r| r.starts_with("PATCH /apis/apps/v1/namespaces/mq/statefulsets/demo-broker-0?")));

    stop.send(()).expect("controller still running");
    tokio::time::timeout(Duration::from_secs(10), controller)
        .await
        .expect("the controller stops after a shutdown request")
        .expect("the controller task did not panic");
    assert!(metrics.reconciliations("applied") >= 1);
    server.abort();
}

/// Answers 404 for the RocketMQCluster resource, as an API server without the CRD does.
async fn serve_without_crd(
    mut handle: tower_test::mock::Handle<Request<Body>, Response<ResponseBody>>,
    seen: mpsc::UnboundedSender<String>,
) {
    while let Some((request, send)) = handle.next_request().await {
        let _ = seen.send(format!("{} {}", request.method(), request.uri()));
        send.send_response(json_body(
            StatusCode::NOT_FOUND,
            &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
                    "reason": "NotFound", "message": "the server could not find the requested resource",
                    "metadata": {}}),
        ));
    }
}

#[tokio::test]
async fn without_the_crd_it_waits_and_still_stops_at_once() {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<ResponseBody>>();
    let (seen_sender, mut seen) = mpsc::unbounded_channel();
    let server = tokio::spawn(serve_without_crd(handle, seen_sender));
    let context = test_context(service, Arc::new(Metrics::new()));
    let (stop, stopped) = oneshot::channel::<()>();
    let controller = tokio::spawn(reconciler::run(context, Some("mq"), async {
        let _ = stopped.await;
    }));
    let first = tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .expect("the operator looks for its CRD")
        .expect("a request");
    assert!(first.contains("/rocketmqclusters"), "{first}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).expect("still waiting for the CRD");
    tokio::time::timeout(Duration::from_secs(2), controller)
        .await
        .expect("a shutdown request ends the wait for the CRD at once")
        .expect("no panic");
    // It never started watching owned objects without its own resource.
    while let Ok(request) = seen.try_recv() {
        assert!(request.contains("/rocketmqclusters"), "{request}");
    }
    server.abort();
}

#[tokio::test]
async fn the_failover_watcher_polls_watches_broker_pods_and_stops_at_once() {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<ResponseBody>>();
    let (seen_sender, mut seen) = mpsc::unbounded_channel();
    let server = tokio::spawn(serve(handle, seen_sender));
    let context = test_context(service, Arc::new(Metrics::new()));
    // Controllers nobody listens on: the watcher says so in the status.
    let settings = WatcherSettings {
        poll_interval: Duration::from_millis(100),
        controller_timeout: Duration::from_millis(500),
        controller_addresses: Arc::new(|_| vec!["127.0.0.1:1".to_string()]),
        ..WatcherSettings::default()
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let watcher = tokio::spawn(async move {
        failover::run(context, Some("mq"), settings, async {
            let _ = stopped.await;
        })
        .await
    });
    let mut requests = Vec::new();
    let reported = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(request) = seen.recv().await {
            let done = request.starts_with(
                "PATCH /apis/rocketmq.rs/v1alpha1/namespaces/mq/rocketmqclusters/demo/status",
            ) && request.contains("fieldManager=rocketmq-operator-failover");
            requests.push(request);
            if done {
                return;
            }
        }
    })
    .await;
    assert!(
        reported.is_ok(),
        "no status from the watcher; requests:\n{}",
        requests.join("\n")
    );
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("GET /api/v1/namespaces/mq/pods?")
                && r.contains("watch=true")
                && r.contains("app.kubernetes.io%2Fcomponent%3Dbroker")),
        "broker pods are watched:\n{}",
        requests.join("\n")
    );
    stop.send(()).expect("watcher still running");
    tokio::time::timeout(Duration::from_secs(2), watcher)
        .await
        .expect("the watcher stops at once")
        .expect("no panic");
    server.abort();
}
