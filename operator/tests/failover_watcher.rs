//! The failover watcher against real `mqcontroller` and `mqbroker` processes (a broker
//! group of three on loopback) and a fake Kubernetes API that keeps state: the cluster with
//! its status, the group's pods and its master Service.
//!
//! Each pod stands for one broker process: its IP is 127.0.0.1 and its `remoting` container
//! port is that broker's port, so the watcher maps the controllers' broker addresses to pods
//! exactly as in a cluster. The test plays the kubelet (pod readiness) and checks after every
//! look that the master Service selects one pod, that at most one pod is labelled master, and
//! that both agree with the status.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use http::{Method, Request, Response, StatusCode};
use kube::{Client, client::Body, runtime::events::Reporter};
use rocketmq_operator::{
    crd::RocketMQCluster,
    failover::{ClusterWatch, WatcherSettings, watch_once},
    reconciler::Context,
    telemetry::Metrics,
};
use rocketmq_testkit::cluster::{ClusterOptions, ControllerCluster};
use serde_json::{Value, json};

mod common;
use common::{Recorded, authorization_attributes, json_response, rbac_rules};

const GROUP: &str = "demo-broker-0";
const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
const ROLE_LABEL: &str = "rocketmq.rs/role";

/// What the fake API server holds.
struct World {
    cluster: Value,
    pods: Vec<Value>,
    service: Value,
    stateful_set: Value,
    /// Pods the watcher deleted, in order, not yet recreated by the test.
    deleted: Vec<String>,
    /// Other objects the watcher deleted (`resource/name`), in order.
    deleted_objects: Vec<String>,
    /// Services besides the master Service (e.g. per-broker LoadBalancers), for lists.
    other_services: Vec<Value>,
    /// ConfigMaps by name.
    config_maps: BTreeMap<String, Value>,
    recorded: Vec<Recorded>,
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut Value, patch: &Value) {
    match (target.as_object_mut(), patch.as_object()) {
        (Some(target), Some(patch)) => {
            for (key, value) in patch {
                if value.is_null() {
                    target.remove(key);
                } else {
                    merge(target.entry(key.clone()).or_insert(Value::Null), value);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

/// Server-side apply of the watcher's status fields: map-lists keyed by `name` (groups) and
/// `type` (conditions); the watcher's fields of groups it no longer lists are dropped, as the
/// API server drops fields a manager stops applying.
fn apply_watcher_status(cluster: &mut Value, applied: &Value) {
    let status = cluster["status"].as_object_mut().expect("status object");
    let groups = status
        .entry("brokerGroups")
        .or_insert(json!([]))
        .as_array_mut()
        .expect("groups");
    for group in groups.iter_mut() {
        for field in ["master", "epoch", "syncStateSet", "draining"] {
            group.as_object_mut().expect("group").remove(field);
        }
    }
    for new in applied["brokerGroups"].as_array().expect("groups applied") {
        match groups.iter_mut().find(|g| g["name"] == new["name"]) {
            Some(group) => merge(group, new),
            None => groups.push(new.clone()),
        }
    }
    let conditions = status
        .entry("conditions")
        .or_insert(json!([]))
        .as_array_mut()
        .expect("conditions");
    for new in applied["conditions"]
        .as_array()
        .expect("conditions applied")
    {
        conditions.retain(|c| c["type"] != new["type"]);
        conditions.push(new.clone());
    }
}

fn answer(world: &mut World, request: &Recorded) -> Response<Body> {
    let path = request.path.as_str();
    let name = path.rsplit('/').next().unwrap_or_default();
    match (&request.method, path) {
        (&Method::GET, "/apis/rocketmq.rs/v1alpha1/namespaces/mq/rocketmqclusters/demo") => {
            json_response(StatusCode::OK, &world.cluster)
        }
        (
            &Method::PATCH,
            "/apis/rocketmq.rs/v1alpha1/namespaces/mq/rocketmqclusters/demo/status",
        ) => {
            assert!(
                request.is_server_side_apply(),
                "status goes by server-side apply"
            );
            assert!(
                request
                    .query
                    .contains("fieldManager=rocketmq-operator-failover"),
                "the watcher's own field manager: {}",
                request.query
            );
            apply_watcher_status(&mut world.cluster, &request.body["status"]);
            json_response(StatusCode::OK, &world.cluster)
        }
        (&Method::GET, "/api/v1/namespaces/mq/pods") => json_response(
            StatusCode::OK,
            &json!({"apiVersion": "v1", "kind": "PodList", "metadata": {}, "items": world.pods}),
        ),
        (&Method::PATCH, _) if path.starts_with("/api/v1/namespaces/mq/pods/") => {
            assert_eq!(request.content_type, "application/merge-patch+json");
            match world
                .pods
                .iter_mut()
                .find(|p| p["metadata"]["name"] == name)
            {
                Some(pod) => {
                    merge(pod, &request.body);
                    json_response(StatusCode::OK, pod)
                }
                None => json_response(
                    StatusCode::NOT_FOUND,
                    &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "code": 404, "reason": "NotFound", "message": "pod not found"}),
                ),
            }
        }
        (&Method::GET, _)
            if path.starts_with("/api/v1/namespaces/mq/services/")
                && world.service["metadata"]["name"] == name =>
        {
            json_response(StatusCode::OK, &world.service)
        }
        (&Method::PATCH, _)
            if path.starts_with("/api/v1/namespaces/mq/services/")
                && world.service["metadata"]["name"] == name =>
        {
            assert_eq!(request.content_type, "application/merge-patch+json");
            merge(&mut world.service, &request.body);
            json_response(StatusCode::OK, &world.service)
        }
        (&Method::GET, "/api/v1/namespaces/mq/services") => {
            let mut items = world.other_services.clone();
            items.push(world.service.clone());
            json_response(
                StatusCode::OK,
                &json!({"apiVersion": "v1", "kind": "ServiceList", "metadata": {}, "items": items}),
            )
        }
        (&Method::GET, _) if path.starts_with("/api/v1/namespaces/mq/configmaps/") => {
            match world.config_maps.get(name) {
                Some(config_map) => json_response(StatusCode::OK, config_map),
                None => json_response(
                    StatusCode::NOT_FOUND,
                    &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "code": 404, "reason": "NotFound", "message": "not found"}),
                ),
            }
        }
        (&Method::PATCH, _) if path.starts_with("/api/v1/namespaces/mq/configmaps/") => {
            assert!(request.is_server_side_apply());
            assert!(
                request
                    .query
                    .contains("fieldManager=rocketmq-operator-failover")
            );
            let config_map = world
                .config_maps
                .entry(name.to_string())
                .or_insert_with(|| {
                    json!({"apiVersion": "v1", "kind": "ConfigMap",
                                          "metadata": {"name": name}})
                });
            config_map["data"] = request.body["data"].clone();
            json_response(StatusCode::OK, config_map)
        }
        (&Method::GET, "/apis/apps/v1/namespaces/mq/statefulsets") => {
            let deleted = world.deleted_objects.contains(&format!(
                "statefulsets/{}",
                world.stateful_set["metadata"]["name"].as_str().unwrap()
            ));
            let items: Vec<&Value> = if deleted {
                vec![]
            } else {
                vec![&world.stateful_set]
            };
            json_response(
                StatusCode::OK,
                &json!({"apiVersion": "apps/v1", "kind": "StatefulSetList", "metadata": {},
                        "items": items}),
            )
        }
        (&Method::GET, _)
            if path.starts_with("/apis/apps/v1/namespaces/mq/statefulsets/")
                && world.stateful_set["metadata"]["name"] == name =>
        {
            json_response(StatusCode::OK, &world.stateful_set)
        }
        (&Method::DELETE, _)
            if [
                "statefulsets",
                "poddisruptionbudgets",
                "services",
                "configmaps",
            ]
            .iter()
            .any(|r| path.contains(&format!("/namespaces/mq/{r}/"))) =>
        {
            let resource = path.rsplit('/').nth(1).unwrap();
            world.deleted_objects.push(format!("{resource}/{name}"));
            json_response(
                StatusCode::OK,
                &json!({"kind": "Status", "apiVersion": "v1", "status": "Success", "code": 200}),
            )
        }
        (&Method::DELETE, _) if path.starts_with("/api/v1/namespaces/mq/pods/") => {
            let uid = request.body["preconditions"]["uid"]
                .as_str()
                .map(str::to_string);
            let Some(index) = world
                .pods
                .iter()
                .position(|p| p["metadata"]["name"] == name)
            else {
                return json_response(
                    StatusCode::NOT_FOUND,
                    &json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                            "code": 404, "reason": "NotFound", "message": "pod not found"}),
                );
            };
            assert_eq!(
                uid.as_deref(),
                world.pods[index]["metadata"]["uid"].as_str(),
                "deletes are guarded by the pod's uid"
            );
            let pod = world.pods.remove(index);
            world.deleted.push(name.to_string());
            json_response(StatusCode::OK, &pod)
        }
        (&Method::POST | &Method::PATCH, _) if path.contains("/events") => {
            json_response(StatusCode::CREATED, &request.body)
        }
        _ => panic!("the watcher made an unexpected call: {request:?}"),
    }
}

struct Harness {
    world: Arc<Mutex<World>>,
    context: Arc<Context>,
    state: Option<ClusterWatch>,
    settings: WatcherSettings,
    brokers: ControllerCluster,
}

fn pod(name: &str, port: u16, revision: &str) -> Value {
    let group = name.rsplit_once('-').expect("a StatefulSet pod name").0;
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "mq",
            "uid": format!("{name}-{revision}"),
            "labels": {
            "app.kubernetes.io/name": "rocketmq", "app.kubernetes.io/instance": "demo",
            "app.kubernetes.io/component": "broker", "rocketmq.rs/broker-group": group,
            "controller-revision-hash": revision, POD_NAME_LABEL: name}},
        "spec": {"containers": [{"name": "broker", "ports": [
            {"name": "remoting", "containerPort": port},
            {"name": "ha", "containerPort": port + 1}]}]},
        "status": {"podIP": "127.0.0.1", "conditions": [{"type": "Ready", "status": "True"}]}
    })
}

impl Harness {
    async fn start(dir: &std::path::Path) -> Self {
        Self::start_group(dir, GROUP, 1).await
    }

    /// Brokers of group `group` in a cluster whose spec has `groups` groups.
    async fn start_group(dir: &std::path::Path, group: &str, groups: i32) -> Self {
        let options = ClusterOptions {
            broker_name: group.into(),
            ..ClusterOptions::default()
        };
        Self::start_with(dir, options, groups).await
    }

    /// The brokers `options` say; pods stand for the first group's brokers only.
    async fn start_with(dir: &std::path::Path, options: ClusterOptions, groups: i32) -> Self {
        let group = options.broker_name.clone();
        let group = group.as_str();
        let replicas = options.brokers;
        let brokers = ControllerCluster::start_with(dir, options).await;
        brokers
            .wait_for_master(replicas, Duration::from_secs(60))
            .await;
        let pods = (0..replicas)
            .map(|i| pod(&format!("{group}-{i}"), brokers.broker_port(i), "rev-1"))
            .collect();
        let world = Arc::new(Mutex::new(World {
            cluster: json!({
                "apiVersion": "rocketmq.rs/v1alpha1", "kind": "RocketMQCluster",
                "metadata": {"name": "demo", "namespace": "mq", "generation": 1,
                             "uid": "6f1c2a8e-0000-4000-8000-0000000000cc"},
                "spec": {"broker": {"groups": groups, "replicasPerGroup": replicas}},
                "status": {"brokerGroups": [{"name": group, "replicas": replicas,
                                             "readyReplicas": replicas}]}
            }),
            pods,
            service: json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": format!("{group}-master"), "namespace": "mq"},
                "spec": {"selector": {"app.kubernetes.io/instance": "demo",
                                      "rocketmq.rs/broker-group": group,
                                      POD_NAME_LABEL: format!("{group}-0")}}
            }),
            stateful_set: json!({
                "apiVersion": "apps/v1", "kind": "StatefulSet",
                "metadata": {"name": group, "namespace": "mq", "labels": {
                    "app.kubernetes.io/name": "rocketmq", "app.kubernetes.io/instance": "demo",
                    "app.kubernetes.io/component": "broker"}},
                "spec": {"selector": {}, "template": {}, "serviceName": "x", "replicas": replicas},
                "status": {"replicas": replicas, "updateRevision": "rev-1",
                           "currentRevision": "rev-1"}
            }),
            deleted: Vec::new(),
            deleted_objects: Vec::new(),
            other_services: Vec::new(),
            config_maps: BTreeMap::new(),
            recorded: Vec::new(),
        }));
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server_world = world.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let bytes = body.collect_bytes().await.expect("request body");
                let entry = Recorded::new(&parts, &bytes);
                let mut world = server_world.lock().expect("world lock");
                let response = answer(&mut world, &entry);
                world.recorded.push(entry);
                send.send_response(response);
            }
        });
        let reporter = Reporter {
            controller: "rocketmq-operator".into(),
            instance: Some("test".into()),
        };
        let context = Arc::new(Context::new(
            Client::new(service, "mq"),
            reporter,
            Arc::new(Metrics::new()),
        ));
        let addresses: Vec<String> = (0..3).map(|i| brokers.controller_addr(i)).collect();
        let settings = WatcherSettings {
            poll_interval: Duration::from_millis(200),
            elect_grace: Duration::from_secs(600),
            controller_timeout: Duration::from_secs(2),
            controller_addresses: Arc::new(move |_| addresses.clone()),
        };
        Self {
            world,
            context,
            state: None,
            settings,
            brokers,
        }
    }

    fn cluster(&self) -> RocketMQCluster {
        serde_json::from_value(self.world.lock().unwrap().cluster.clone()).expect("cluster")
    }

    /// One look of the watcher, then the invariants.
    async fn look(&mut self) {
        let cluster = self.cluster();
        let state = self
            .state
            .get_or_insert_with(|| ClusterWatch::new(&cluster, &self.settings));
        watch_once(&cluster, &self.context, state, &self.settings)
            .await
            .expect("a look succeeds");
        self.check_invariants();
    }

    /// Looks until `done` holds (every 200 ms, up to `limit`).
    async fn look_until(&mut self, what: &str, limit: Duration, done: impl Fn(&World) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            self.look().await;
            if done(&self.world.lock().unwrap()) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(self.settings.poll_interval).await;
        }
    }

    fn check_invariants(&self) {
        let world = self.world.lock().unwrap();
        let selected = world.service["spec"]["selector"][POD_NAME_LABEL]
            .as_str()
            .expect("the master Service selects one pod by name")
            .to_string();
        let masters: Vec<&str> = world
            .pods
            .iter()
            .filter(|p| p["metadata"]["labels"][ROLE_LABEL] == "master")
            .map(|p| p["metadata"]["name"].as_str().unwrap())
            .collect();
        assert!(masters.len() <= 1, "two pods labelled master: {masters:?}");
        if let Some(master) = recorded_master(&world) {
            assert_eq!(selected, master, "the Service follows the recorded master");
            assert_eq!(
                masters,
                [master.as_str()],
                "the master pod carries the label"
            );
        }
    }

    fn set_ready(&self, pod: &str, ready: bool) {
        let mut world = self.world.lock().unwrap();
        let pod = world
            .pods
            .iter_mut()
            .find(|p| p["metadata"]["name"] == pod)
            .expect("pod");
        pod["status"]["conditions"] =
            json!([{"type": "Ready", "status": if ready { "True" } else { "False" }}]);
    }

    /// The pod of the broker the controllers call master.
    async fn controllers_master_pod(&self) -> String {
        let (address, _, _) = self.brokers.master().await.expect("a master");
        let index = self
            .brokers
            .broker_index(&address)
            .expect("a broker of ours");
        format!("{GROUP}-{index}")
    }

    fn events(&self, reason: &str) -> Vec<String> {
        self.world
            .lock()
            .unwrap()
            .recorded
            .iter()
            .filter(|r| r.method == Method::POST && r.body["reason"] == reason)
            .map(|r| r.body["note"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

fn controller_quorum(world: &World) -> Value {
    world.cluster["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "ControllerQuorum").cloned())
        .expect("the ControllerQuorum condition")
}

fn recorded_master(world: &World) -> Option<String> {
    world.cluster["status"]["brokerGroups"]
        .as_array()?
        .iter()
        .find(|g| g["name"] == GROUP)?["master"]
        .as_str()
        .map(str::to_string)
}

fn group_status(world: &World) -> Value {
    world.cluster["status"]["brokerGroups"]
        .as_array()
        .and_then(|groups| groups.iter().find(|g| g["name"] == GROUP).cloned())
        .expect("group status")
}

fn pod_index(pod: &str) -> usize {
    pod.rsplit('-').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watcher_follows_failovers_and_asks_for_one_when_the_master_pod_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::start(dir.path()).await;

    // First look: the status, the Service and the labels take the controllers' master.
    let first = h.controllers_master_pod().await;
    h.look().await;
    {
        let world = h.world.lock().unwrap();
        let group = group_status(&world);
        assert_eq!(group["master"], first.as_str());
        assert_eq!(group["replicas"], 3, "the reconciler's fields stay");
        assert!(group["epoch"].as_i64().unwrap() >= 1);
        let mut in_sync: Vec<&str> = group["syncStateSet"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        in_sync.sort_unstable();
        assert_eq!(
            in_sync,
            ["demo-broker-0-0", "demo-broker-0-1", "demo-broker-0-2"]
        );
        let quorum = controller_quorum(&world);
        assert_eq!(quorum["status"], "True");
        for pod in &world.pods {
            let name = pod["metadata"]["name"].as_str().unwrap();
            let role = if name == first { "master" } else { "slave" };
            assert_eq!(pod["metadata"]["labels"][ROLE_LABEL], role, "{name}");
        }
    }
    assert_eq!(h.events("MasterChanged").len(), 1);
    // A second look with nothing changed writes nothing.
    let writes = |h: &Harness| {
        h.world
            .lock()
            .unwrap()
            .recorded
            .iter()
            .filter(|r| r.method != Method::GET)
            .count()
    };
    let before = writes(&h);
    h.look().await;
    assert_eq!(writes(&h), before, "an unchanged cluster gets no writes");

    // The master process dies (its pod turns NotReady): the controllers elect by themselves,
    // and the watcher follows without asking for an election (the grace is long here).
    h.brokers.kill_broker(pod_index(&first));
    h.set_ready(&first, false);
    h.look_until("a new master in the status", Duration::from_secs(30), |w| {
        recorded_master(w).is_some_and(|m| m != first)
    })
    .await;
    let second = recorded_master(&h.world.lock().unwrap()).unwrap();
    assert_eq!(second, h.controllers_master_pod().await);
    assert!(
        h.events("ElectMaster").is_empty(),
        "the controllers acted alone"
    );
    let changes = h.events("MasterChanged");
    assert!(
        changes
            .last()
            .unwrap()
            .contains(&format!("master is now {second}")),
        "{changes:?}"
    );

    // The old master comes back as a replica and catches up.
    h.brokers.start_broker(pod_index(&first));
    h.set_ready(&first, true);
    h.brokers.wait_for_master(3, Duration::from_secs(60)).await;

    // Now the master's process lives on but its pod fails readiness: the controllers see a
    // live master and do nothing, so after the grace the watcher designates a ready in-sync
    // replica, and then follows the election it asked for.
    h.settings.elect_grace = Duration::from_secs(1);
    h.set_ready(&second, false);
    h.look_until(
        "an election asked by the watcher",
        Duration::from_secs(30),
        |w| recorded_master(w).is_some_and(|m| m != second),
    )
    .await;
    let third = recorded_master(&h.world.lock().unwrap()).unwrap();
    assert_eq!(third, h.controllers_master_pod().await);
    let elections = h.events("ElectMaster");
    assert_eq!(elections.len(), 1, "{elections:?}");
    assert!(
        elections[0].contains(&format!("master pod {second} is not ready"))
            && elections[0].contains(&format!("elected pod {third}")),
        "{elections:?}"
    );

    // The controllers all stop: the status says so and nothing else is touched.
    for i in 0..3 {
        h.brokers.kill_controller(i);
    }
    let before = h.world.lock().unwrap().recorded.len();
    h.look().await;
    {
        let world = h.world.lock().unwrap();
        let new_writes: Vec<&Recorded> = world.recorded[before..]
            .iter()
            .filter(|r| r.method != Method::GET)
            .collect();
        assert_eq!(new_writes.len(), 1, "{new_writes:#?}");
        assert!(new_writes[0].path.ends_with("/status"));
        let quorum = controller_quorum(&world);
        assert_eq!(quorum["status"], "False");
        assert_eq!(quorum["reason"], "NoControllerLeader");
        assert_eq!(
            recorded_master(&world).as_deref(),
            Some(third.as_str()),
            "groups stay"
        );
    }

    assert_rbac_allows(&h.world.lock().unwrap());
}

/// Every call the watcher made is allowed by rbac.yaml.
fn assert_rbac_allows(world: &World) {
    let rules = rbac_rules();
    let mut needed: BTreeMap<(String, String, String), ()> = BTreeMap::new();
    for request in &world.recorded {
        for attribute in authorization_attributes(request) {
            needed.insert(attribute, ());
        }
    }
    let missing: Vec<_> = needed.keys().filter(|n| !rules.contains(n)).collect();
    assert!(missing.is_empty(), "rbac.yaml lacks {missing:#?}");
}

impl Harness {
    /// Plays the StatefulSet controller and the kubelet for pods the watcher deleted: stops
    /// the broker with SIGTERM, starts it again from the same store, and recreates the pod
    /// from the current revision, ready once the broker accepts connections.
    async fn recreate_deleted_pods(&mut self) {
        let deleted: Vec<String> = std::mem::take(&mut self.world.lock().unwrap().deleted);
        for name in deleted {
            let i = pod_index(&name);
            self.brokers.stop_broker(i);
            self.brokers.start_broker(i);
            let address = self.brokers.broker_addr(i);
            rocketmq_testkit::wait_until("the restarted broker", Duration::from_secs(30), || {
                let address = address.clone();
                async move { tokio::net::TcpStream::connect(&address).await.ok() }
            })
            .await;
            let mut world = self.world.lock().unwrap();
            let revision = world.stateful_set["status"]["updateRevision"]
                .as_str()
                .unwrap()
                .to_string();
            world
                .pods
                .push(pod(&name, self.brokers.broker_port(i), &revision));
        }
    }

    fn revisions(&self) -> Vec<String> {
        let world = self.world.lock().unwrap();
        let mut pods: Vec<(String, String)> = world
            .pods
            .iter()
            .map(|p| {
                (
                    p["metadata"]["name"].as_str().unwrap().to_string(),
                    p["metadata"]["labels"]["controller-revision-hash"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect();
        pods.sort();
        pods.into_iter().map(|(_, r)| r).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_template_restarts_slaves_first_then_hands_mastership_over() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = Harness::start(dir.path()).await;
    h.look().await;
    let master = recorded_master(&h.world.lock().unwrap()).expect("a master");
    assert!(h.world.lock().unwrap().deleted.is_empty(), "nothing is due");

    // A new pod template (image or config): the StatefulSet reports a new revision.
    h.world.lock().unwrap().stateful_set["status"]["updateRevision"] = json!("rev-2");
    let deadline = Instant::now() + Duration::from_secs(180);
    while h.revisions() != ["rev-2", "rev-2", "rev-2"] {
        assert!(Instant::now() < deadline, "the rollout did not finish");
        h.look().await;
        {
            let world = h.world.lock().unwrap();
            assert!(
                world.deleted.len() <= 1,
                "one pod at a time: {:?}",
                world.deleted
            );
            assert!(world.pods.len() >= 2, "never two pods down");
        }
        h.recreate_deleted_pods().await;
        tokio::time::sleep(h.settings.poll_interval).await;
    }

    // The order: both slaves (highest ordinal first), the hand-over, then the old master.
    let (steps, note) = {
        let world = h.world.lock().unwrap();
        let steps: Vec<String> = world
            .recorded
            .iter()
            .filter_map(|r| match r.method {
                Method::DELETE => Some(format!("delete {}", r.path.rsplit('/').next().unwrap())),
                Method::POST if r.body["reason"] == "HandOver" => Some("hand-over".to_string()),
                _ => None,
            })
            .collect();
        let note = world
            .recorded
            .iter()
            .find(|r| r.body["reason"] == "HandOver")
            .and_then(|r| r.body["note"].as_str())
            .unwrap_or_default()
            .to_string();
        (steps, note)
    };
    let mut slaves: Vec<String> = (0..3)
        .map(|i| format!("{GROUP}-{i}"))
        .filter(|p| *p != master)
        .collect();
    slaves.sort_by_key(|p| std::cmp::Reverse(pod_index(p)));
    let expected = vec![
        format!("delete {}", slaves[0]),
        format!("delete {}", slaves[1]),
        "hand-over".to_string(),
        format!("delete {master}"),
    ];
    assert_eq!(steps, expected);
    assert!(
        note.contains(&format!("handed mastership from {master} to")),
        "{note}"
    );
    let new_master = recorded_master(&h.world.lock().unwrap()).expect("a master");
    assert_ne!(
        new_master, master,
        "mastership moved before the old master restarted"
    );

    // Done: further looks restart nothing.
    for _ in 0..3 {
        h.look().await;
        tokio::time::sleep(h.settings.poll_interval).await;
    }
    assert!(h.world.lock().unwrap().deleted.is_empty());

    // A restart on request, of a slave: only that pod goes.
    let slave = format!("{GROUP}-{}", (pod_index(&new_master) + 1) % 3);
    {
        let mut world = h.world.lock().unwrap();
        let pod = world
            .pods
            .iter_mut()
            .find(|p| p["metadata"]["name"] == slave.as_str())
            .unwrap();
        pod["metadata"]["annotations"] = json!({"rocketmq.rs/manual-rolling-update": "true"});
    }
    h.look_until("the requested restart", Duration::from_secs(60), |w| {
        !w.deleted.is_empty()
    })
    .await;
    assert_eq!(h.world.lock().unwrap().deleted, [slave]);
    assert!(
        h.events("RollingRestart")
            .last()
            .unwrap()
            .contains("rocketmq.rs/manual-rolling-update requested")
    );
    assert_rbac_allows(&h.world.lock().unwrap());
}

fn draining(world: &World, group: &str) -> Option<Value> {
    world.cluster["status"]["brokerGroups"]
        .as_array()?
        .iter()
        .find(|g| g["name"] == group)?
        .get("draining")
        .cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_group_is_deleted_only_once_its_consumers_have_caught_up() {
    use rocketmq_client::MqClient;
    use rocketmq_common::protocol::headers::broker::UpdateConsumerOffsetRequestHeader;
    use rocketmq_common::remoting::{ClientConfig, RemotingClient};
    use rocketmq_common::route::TopicConfig;

    const REMOVED: &str = "demo-broker-1";
    const TOPIC: &str = "DrainTopic";
    const CONSUMERS: &str = "drain-consumers";
    let dir = tempfile::tempdir().unwrap();
    // The spec says one group (demo-broker-0); demo-broker-1 still runs: it was removed.
    let mut h = Harness::start_group(dir.path(), REMOVED, 1).await;
    let (master, _, _) = h.brokers.master().await.expect("a master");
    let client = MqClient::for_brokers(Duration::from_secs(3));
    client
        .create_topic(&master, &TopicConfig::new(TOPIC, 1))
        .await
        .expect("topic");
    let remoting = RemotingClient::new(ClientConfig::default());
    for i in 0..20 {
        let request = rocketmq_testkit::requests::send(TOPIC, 0, format!("m{i}").as_bytes(), &[]);
        let response = remoting
            .invoke(&master, request, Duration::from_secs(3))
            .await
            .expect("send");
        assert_eq!(response.code, 0, "{:?}", response.remark);
    }
    let commit = |offset: i64| UpdateConsumerOffsetRequestHeader {
        consumer_group: CONSUMERS.into(),
        topic: TOPIC.into(),
        queue_id: 0,
        commit_offset: offset,
        broker_name: None,
    };
    client
        .update_consumer_offset(&master, &commit(5))
        .await
        .expect("commit");

    // The consumer group is 15 messages behind: the group is read-only but stays.
    h.look_until("the drain to be measured", Duration::from_secs(30), |w| {
        draining(w, REMOVED).is_some_and(|d| d["remainingMessages"] == 15)
    })
    .await;
    for _ in 0..3 {
        h.look().await;
    }
    {
        let world = h.world.lock().unwrap();
        let drain = draining(&world, REMOVED).unwrap();
        assert_eq!(drain["pendingConsumerGroups"], json!([CONSUMERS]));
        assert!(drain["startedAt"].as_str().is_some());
        assert!(
            world.deleted_objects.is_empty(),
            "{:?}",
            world.deleted_objects
        );
    }
    for i in 0..3 {
        let config = client
            .broker_config(&h.brokers.broker_addr(i))
            .await
            .unwrap();
        let permission = config
            .iter()
            .find(|(k, _)| k == "brokerPermission")
            .unwrap();
        assert_eq!(permission.1, "4", "broker {i} is read-only");
    }

    // The consumers catch up: the group goes, StatefulSet first.
    client
        .update_consumer_offset(&master, &commit(20))
        .await
        .expect("commit");
    h.look_until(
        "the drained group's deletion",
        Duration::from_secs(30),
        |w| !w.deleted_objects.is_empty(),
    )
    .await;
    {
        let world = h.world.lock().unwrap();
        assert_eq!(
            world.deleted_objects,
            [
                "statefulsets/demo-broker-1",
                "poddisruptionbudgets/demo-broker-1",
                "services/demo-broker-1-master",
                "services/demo-broker-1-headless",
                "configmaps/demo-broker-1-config"
            ]
        );
        assert!(
            draining(&world, REMOVED).is_none(),
            "the drain entry is gone"
        );
    }
    let scaled = h.events("ScaledIn");
    assert_eq!(scaled.len(), 1);
    assert!(scaled[0].contains("drained and deleted"), "{scaled:?}");
    assert_rbac_allows(&h.world.lock().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_group_gets_the_topics_the_other_groups_have() {
    use rocketmq_client::MqClient;
    use rocketmq_common::route::TopicConfig;

    let dir = tempfile::tempdir().unwrap();
    // Group 0 has served for a while; group 1 was just added (groups: 2).
    let options = ClusterOptions {
        brokers: 1,
        broker_name: GROUP.into(),
        extra_groups: vec!["demo-broker-1".into()],
        ..ClusterOptions::default()
    };
    let mut h = Harness::start_with(dir.path(), options, 2).await;
    let client = MqClient::for_brokers(Duration::from_secs(3));
    let old_master = h.brokers.broker_addr(0);
    let new_master = h.brokers.broker_addr(1);
    let mut orders = TopicConfig::new("Orders", 4);
    orders.order = true;
    client.create_topic(&old_master, &orders).await.unwrap();
    client
        .create_topic(&old_master, &TopicConfig::new("Payments", 2))
        .await
        .unwrap();
    // The new group's master must be elected before it can take topics.
    rocketmq_testkit::wait_until("group 1's master", Duration::from_secs(60), || {
        let controllers = h.brokers.controller();
        async move {
            let info = controllers
                .sync_state_data(&["demo-broker-1".to_string()])
                .await
                .ok()?;
            info.replicas_info_table
                .get("demo-broker-1")?
                .master_address
                .clone()
        }
    })
    .await;

    h.look().await;
    let topics = client.topic_configs(&new_master).await.unwrap();
    let copied = &topics.topic_config_table["Orders"];
    assert!(copied.order);
    assert_eq!(copied.write_queue_nums, 4);
    assert_eq!(topics.topic_config_table["Payments"].write_queue_nums, 2);
    let events = h.events("TopicsCreated");
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("broker group demo-broker-1: created")
                && e.contains("Orders")
                && e.contains("Payments")),
        "{events:?}"
    );
    // Settings the brokers take live reach every broker of every group without a restart.
    h.world.lock().unwrap().cluster["spec"]["broker"]["config"] =
        json!({"transactionCheckMax": "7", "flushDiskType": "SYNC_FLUSH"});
    h.look().await;
    for address in [&old_master, &new_master] {
        let config = client.broker_config(address).await.unwrap();
        let value = config
            .iter()
            .find(|(k, _)| k == "transactionCheckMax")
            .map(|(_, v)| v.as_str());
        assert_eq!(value, Some("7"), "{address}");
    }
    let applied = h.events("ConfigApplied");
    assert_eq!(applied.len(), 2, "one Event per group: {applied:?}");
    for note in &applied {
        assert!(
            note.contains("transactionCheckMax=7 on 1 brokers"),
            "{applied:?}"
        );
        assert!(
            !note.contains("flushDiskType"),
            "a restart-only key is not pushed"
        );
    }
    h.look().await;
    assert_eq!(h.events("ConfigApplied").len(), 2, "applied once");

    // Once done, later looks leave the topics alone (a topic deleted from one group on
    // purpose is not recreated).
    client
        .delete_topic_in_broker(&new_master, "Payments")
        .await
        .unwrap();
    h.look().await;
    h.look().await;
    let topics = client.topic_configs(&new_master).await.unwrap();
    assert!(!topics.topic_config_table.contains_key("Payments"));

    // External access through a LoadBalancer per broker: once a load balancer has an
    // address (an IP, or a name resolved now), the broker's key in its group's addresses
    // ConfigMap carries it; the broker waits for that key before it announces it.
    {
        let mut world = h.world.lock().unwrap();
        world.cluster["spec"]["broker"]["externalAccess"] = json!({"mode": "LoadBalancer"});
        let service = |name: &str, ingress: Value| {
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": name, "namespace": "mq"},
                   "spec": {"type": "LoadBalancer"},
                   "status": {"loadBalancer": {"ingress": [ingress]}}})
        };
        world.other_services = vec![
            service("demo-broker-0-0-external", json!({"ip": "203.0.113.10"})),
            service("demo-broker-1-0-external", json!({"hostname": "localhost"})),
        ];
    }
    h.look().await;
    {
        let world = h.world.lock().unwrap();
        assert_eq!(
            world.config_maps["demo-broker-0-external"]["data"],
            json!({"demo-broker-0-0": "203.0.113.10"})
        );
        assert_eq!(
            world.config_maps["demo-broker-1-external"]["data"],
            json!({"demo-broker-1-0": "127.0.0.1"})
        );
    }
    assert_eq!(h.events("ExternalAddresses").len(), 2);
    h.look().await;
    assert_eq!(h.events("ExternalAddresses").len(), 2, "written once");
    assert_rbac_allows(&h.world.lock().unwrap());
}
