//! The control loop: for each `RocketMQCluster`, apply the desired objects with server-side
//! apply, then write the status computed from what the API server returned.
//!
//! [`reconcile`] is one pass; [`error_policy`] turns a failed pass into a requeue with
//! per-cluster exponential backoff; [`run`] wires both into a kube-runtime `Controller`
//! that watches the clusters and every kind of object they own.
//!
//! Invariants:
//! - one field manager ([`FIELD_MANAGER`]) for every write, forced, so the operator always
//!   wins conflicts on the fields it sets and never touches fields it does not set;
//! - a paused cluster gets no write except its status;
//! - the only deletion the reconciler ever issues is of the proxy autoscaler it created itself
//!   (broker pods are restarted by the failover watcher, see `rollout.rs`)
//!   (checked by owner uid) once autoscaling is switched off; PVCs are never deleted here.

use std::{
    collections::HashMap,
    fmt::Debug,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use k8s_openapi::{
    NamespaceResourceScope,
    api::{
        apps::v1::{Deployment, StatefulSet},
        autoscaling::v2::HorizontalPodAutoscaler,
        core::v1::{ConfigMap, Pod, Service},
        policy::v1::PodDisruptionBudget,
    },
    jiff::Timestamp,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, ListParams, Patch, PatchParams},
    runtime::{
        Controller,
        controller::Action,
        events::{Event, EventType, Recorder, Reporter},
        watcher,
    },
};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    crd::{ClusterPhase, RocketMQCluster, RocketMQClusterStatus},
    error::{Error, Result},
    objects::{ClusterNames, Component, DesiredObjects, FIELD_MANAGER, desired_objects},
    status::{
        Failure, WorkloadReadiness, failed_status, observed_status, paused_status, pod_problems,
        with_pod_problems,
    },
    telemetry::Metrics,
};

/// Requeue interval of a cluster whose components are all ready: a safety net, since
/// watches on owned objects trigger reconciles on every change anyway.
pub const RESYNC_INTERVAL: Duration = Duration::from_secs(300);
/// Requeue interval while a rollout is in progress, to refresh the status.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(15);
/// First retry delay after a failure; doubles per consecutive failure up to
/// [`MAX_BACKOFF`].
pub const INITIAL_BACKOFF: Duration = Duration::from_secs(5);
/// Longest retry delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What every reconcile needs.
pub struct Context {
    /// Kubernetes client.
    pub client: Client,
    /// Publishes Events on the clusters.
    pub recorder: Recorder,
    /// Who the Events name as their reporter.
    pub reporter: Reporter,
    /// Reconcile metrics.
    pub metrics: Arc<Metrics>,
    /// Consecutive failures per cluster (`namespace/name`), for the backoff.
    failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// A context whose Events report as `reporter` (the operator's pod name).
    pub fn new(client: Client, reporter: Reporter, metrics: Arc<Metrics>) -> Self {
        Self {
            recorder: Recorder::new(client.clone(), reporter.clone()),
            reporter,
            client,
            metrics,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn record_success(&self, key: &str) {
        self.failures
            .lock()
            .expect("failure map lock is never held across a panic")
            .remove(key);
    }

    /// Counts a failure and returns the delay before the next attempt.
    fn next_backoff(&self, key: &str) -> Duration {
        let mut failures = self
            .failures
            .lock()
            .expect("failure map lock is never held across a panic");
        let count = failures.entry(key.to_string()).or_insert(0);
        let delay = INITIAL_BACKOFF.saturating_mul(2u32.saturating_pow(*count));
        *count = count.saturating_add(1);
        delay.min(MAX_BACKOFF)
    }
}

fn cluster_key(cluster: &RocketMQCluster) -> String {
    format!(
        "{}/{}",
        cluster.namespace().unwrap_or_default(),
        cluster.name_any()
    )
}

fn now() -> String {
    Timestamp::now().to_string()
}

/// One reconcile pass over `cluster`.
pub async fn reconcile(cluster: Arc<RocketMQCluster>, context: Arc<Context>) -> Result<Action> {
    let started = Instant::now();
    let outcome = reconcile_inner(&cluster, &context).await;
    let label = match &outcome {
        Ok(Outcome::Applied { .. }) => "applied",
        Ok(Outcome::Paused) => "paused",
        Ok(Outcome::Invalid) => "invalid",
        Ok(Outcome::Deleted) => "deleted",
        Err(_) => "failed",
    };
    context.metrics.observe_reconcile(label, started.elapsed());
    match outcome {
        Ok(outcome) => {
            context.record_success(&cluster_key(&cluster));
            Ok(match outcome {
                Outcome::Applied { all_ready: true } => Action::requeue(RESYNC_INTERVAL),
                Outcome::Applied { all_ready: false } => Action::requeue(PROGRESS_INTERVAL),
                // Nothing will change until the user edits the resource, which the watch sees.
                Outcome::Paused | Outcome::Invalid | Outcome::Deleted => Action::await_change(),
            })
        }
        Err(error) => Err(error),
    }
}

enum Outcome {
    Applied {
        all_ready: bool,
    },
    Paused,
    Invalid,
    /// The cluster disappeared while the pass ran.
    Deleted,
}

async fn reconcile_inner(cluster: &RocketMQCluster, context: &Context) -> Result<Outcome> {
    let namespace = cluster
        .namespace()
        .ok_or(Error::MissingObjectKey("metadata.namespace"))?;
    if cluster.is_paused() {
        tracing::info!(cluster = %cluster_key(cluster), "reconciliation paused");
        let status = paused_status(cluster, &now());
        // Entering the pause is an Event; leaving it is the next phase change.
        announce_phase_change(cluster, context, &status).await;
        patch_status(cluster, context, &namespace, &status).await?;
        return Ok(Outcome::Paused);
    }
    if let Err(problems) = cluster.spec.validate() {
        let error = Error::InvalidSpec(problems);
        tracing::warn!(cluster = %cluster_key(cluster), %error, "invalid spec");
        report_failure(cluster, context, &namespace, &error).await;
        context.metrics.observe_failure(error.reason());
        return Ok(Outcome::Invalid);
    }
    match apply_all(cluster, context, &namespace).await {
        Ok(None) => {
            tracing::info!(cluster = %cluster_key(cluster), "deleted during reconcile; stopping");
            Ok(Outcome::Deleted)
        }
        Ok(Some(workloads)) => {
            let now = now();
            let mut status = observed_status(cluster, &workloads, &now);
            if status.phase != Some(ClusterPhase::Running) {
                let problems = pod_problems(&cluster_pods(cluster, context, &namespace).await);
                status = with_pod_problems(status, cluster, &problems, &now);
            }
            let all_ready = status.phase == Some(ClusterPhase::Running);
            announce_phase_change(cluster, context, &status).await;
            patch_status(cluster, context, &namespace, &status).await?;
            Ok(Outcome::Applied { all_ready })
        }
        Err(error) => {
            tracing::warn!(cluster = %cluster_key(cluster), %error, "reconcile failed");
            report_failure(cluster, context, &namespace, &error).await;
            Err(error)
        }
    }
}

/// The cluster's pods (empty when they cannot be listed: the status then just says less).
async fn cluster_pods(cluster: &RocketMQCluster, context: &Context, namespace: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(context.client.clone(), namespace);
    let selector = format!(
        "app.kubernetes.io/name=rocketmq,app.kubernetes.io/instance={}",
        cluster.name_any()
    );
    match api.list(&ListParams::default().labels(&selector)).await {
        Ok(list) => list.items,
        Err(error) => {
            tracing::debug!(cluster = %cluster_key(cluster), %error, "cannot list the cluster's pods");
            Vec::new()
        }
    }
}

/// Whether `cluster` (this very object: same uid) still exists and is not being deleted.
/// A failed lookup counts as yes: the check must never stop reconciliation on its own.
async fn still_exists(cluster: &RocketMQCluster, client: &Client, namespace: &str) -> bool {
    let api: Api<RocketMQCluster> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(&cluster.name_any()).await {
        Ok(Some(current)) => {
            current.metadata.uid == cluster.metadata.uid
                && current.metadata.deletion_timestamp.is_none()
        }
        Ok(None) => false,
        Err(error) => {
            tracing::debug!(cluster = %cluster_key(cluster), %error, "cannot check the cluster still exists");
            true
        }
    }
}

/// Applies every desired object in dependency order and returns the readiness of the
/// workloads as the API server reported them in the apply responses; `None` when the
/// cluster was deleted meanwhile (the pass then stops).
async fn apply_all(
    cluster: &RocketMQCluster,
    context: &Context,
    namespace: &str,
) -> Result<Option<Vec<WorkloadReadiness>>> {
    let DesiredObjects {
        config_maps,
        services,
        stateful_sets,
        deployments,
        pod_disruption_budgets,
        horizontal_pod_autoscaler,
    } = desired_objects(cluster)?;
    let client = &context.client;
    for config_map in &config_maps {
        apply::<ConfigMap>(client, namespace, config_map).await?;
    }
    for service in &services {
        apply::<Service>(client, namespace, service).await?;
    }
    // A cluster deleted while this pass runs gets no more children: they would only outlive
    // it until the garbage collector finds them. Checked before each kind of workload.
    if !still_exists(cluster, client, namespace).await {
        return Ok(None);
    }
    let mut workloads = Vec::new();
    for stateful_set in &stateful_sets {
        let applied = apply::<StatefulSet>(client, namespace, stateful_set).await?;
        workloads.push(WorkloadReadiness::of_stateful_set(&applied));
    }
    if !still_exists(cluster, client, namespace).await {
        return Ok(None);
    }
    for deployment in &deployments {
        let mut deployment = deployment.clone();
        if horizontal_pod_autoscaler.is_some() {
            let name = deployment.metadata.name.clone().unwrap_or_default();
            let existing = Api::<Deployment>::namespaced(client.clone(), namespace)
                .get_opt(&name)
                .await
                .map_err(|source| Error::Apply {
                    kind: "Deployment".into(),
                    name: name.clone(),
                    source,
                })?;
            deployment.spec.replicas = autoscaled_replicas(
                existing.as_ref(),
                cluster.spec.proxy.autoscaling.min_replicas,
            );
        }
        let applied = apply::<Deployment>(client, namespace, &deployment).await?;
        workloads.push(WorkloadReadiness::of_deployment(&applied));
    }
    for budget in &pod_disruption_budgets {
        apply::<PodDisruptionBudget>(client, namespace, budget).await?;
    }
    match &horizontal_pod_autoscaler {
        Some(autoscaler) => {
            apply::<HorizontalPodAutoscaler>(client, namespace, autoscaler).await?;
        }
        None => remove_own_autoscaler(cluster, client, namespace).await?,
    }
    Ok(Some(workloads))
}

/// `replicas` to apply to an autoscaled Deployment. Omitting a field this manager owns would
/// reset it to the default of 1, so until the autoscaler has written `replicas` itself the
/// operator keeps applying the current count, raised to the autoscaler's minimum (a new
/// Deployment starts at the minimum, not at 1); once another manager owns the field, the
/// operator leaves it alone.
pub fn autoscaled_replicas(existing: Option<&Deployment>, min_replicas: i32) -> Option<i32> {
    let Some(existing) = existing else {
        return Some(min_replicas);
    };
    let owned_by_another = existing
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|entry| entry.manager.as_deref() != Some(FIELD_MANAGER))
        .any(|entry| {
            entry
                .fields_v1
                .as_ref()
                .is_some_and(|fields| fields.0.pointer("/f:spec/f:replicas").is_some())
        });
    if owned_by_another {
        return None;
    }
    let current = existing.spec.replicas.unwrap_or(1);
    Some(current.max(min_replicas))
}

async fn apply<K>(client: &Client, namespace: &str, object: &K) -> Result<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let name = object.meta().name.clone().unwrap_or_default();
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(object))
        .await
        .map_err(|source| Error::Apply {
            kind: K::kind(&()).into_owned(),
            name,
            source,
        })
}

/// Deletes the proxy autoscaler after autoscaling was switched off, but only if this
/// cluster owns it: an autoscaler someone created by hand under the same name stays.
async fn remove_own_autoscaler(
    cluster: &RocketMQCluster,
    client: &Client,
    namespace: &str,
) -> Result<()> {
    let names = ClusterNames::new(
        cluster.metadata.name.as_deref().unwrap_or_default(),
        namespace,
    );
    let name = names.component(Component::Proxy);
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), namespace);
    let delete_error = |source| Error::Delete {
        kind: "HorizontalPodAutoscaler".to_string(),
        name: name.clone(),
        source,
    };
    let Some(existing) = api.get_opt(&name).await.map_err(delete_error)? else {
        return Ok(());
    };
    let owned = cluster.metadata.uid.as_ref().is_some_and(|uid| {
        existing
            .owner_references()
            .iter()
            .any(|owner| &owner.uid == uid && owner.controller == Some(true))
    });
    if owned {
        tracing::info!(cluster = %cluster_key(cluster), autoscaler = %name, "autoscaling disabled, deleting");
        api.delete(&name, &DeleteParams::default())
            .await
            .map_err(delete_error)?;
    }
    Ok(())
}

async fn patch_status(
    cluster: &RocketMQCluster,
    context: &Context,
    namespace: &str,
    status: &RocketMQClusterStatus,
) -> Result<()> {
    let name = cluster.name_any();
    let api: Api<RocketMQCluster> = Api::namespaced(context.client.clone(), namespace);
    let patch = serde_json::json!({
        "apiVersion": RocketMQCluster::api_version(&()),
        "kind": RocketMQCluster::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch_status(&name, &params, &Patch::Apply(&patch))
        .await
        .map_err(|source| Error::PatchStatus { name, source })?;
    Ok(())
}

/// Makes a failure visible where users look: a Warning Event and the Degraded condition.
/// Both are best effort; the original error is what the caller reports.
async fn report_failure(
    cluster: &RocketMQCluster,
    context: &Context,
    namespace: &str,
    error: &Error,
) {
    let event = Event {
        type_: EventType::Warning,
        reason: error.reason().into(),
        note: Some(truncate(&error.summary(), 1024)),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(publish_error) = context
        .recorder
        .publish(&event, &cluster.object_ref(&()))
        .await
    {
        tracing::warn!(cluster = %cluster_key(cluster), error = %publish_error, "cannot publish Event");
    }
    let failure = Failure {
        reason: error.reason().into(),
        message: truncate(&error.summary(), 1024),
    };
    let status = failed_status(cluster, &failure, &now());
    if let Err(status_error) = patch_status(cluster, context, namespace, &status).await {
        tracing::warn!(cluster = %cluster_key(cluster), error = %status_error, "cannot record failure in status");
    }
}

/// A Normal Event when the phase changes, so `kubectl describe` tells the cluster's story.
async fn announce_phase_change(
    cluster: &RocketMQCluster,
    context: &Context,
    status: &RocketMQClusterStatus,
) {
    let before = cluster.status.as_ref().and_then(|s| s.phase);
    if before == status.phase {
        return;
    }
    let Some(phase) = status.phase else { return };
    let event = Event {
        type_: EventType::Normal,
        reason: format!("{phase:?}"),
        note: Some(match before {
            Some(before) => format!("phase {before:?} -> {phase:?}"),
            None => format!("phase {phase:?}"),
        }),
        action: "Reconcile".into(),
        secondary: None,
    };
    if let Err(error) = context
        .recorder
        .publish(&event, &cluster.object_ref(&()))
        .await
    {
        tracing::warn!(cluster = %cluster_key(cluster), %error, "cannot publish Event");
    }
}

/// At most `limit` bytes of `text`, cut at a character boundary; a cut text ends with `…`
/// within the limit (the Events API refuses a note over 1 KiB).
fn truncate(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    const ELLIPSIS: &str = "…";
    let mut end = limit.saturating_sub(ELLIPSIS.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ELLIPSIS}", &text[..end])
}

/// Requeue policy after a failed pass: exponential backoff per cluster.
pub fn error_policy(cluster: Arc<RocketMQCluster>, error: &Error, context: Arc<Context>) -> Action {
    context.metrics.observe_failure(error.reason());
    let delay = context.next_backoff(&cluster_key(&cluster));
    tracing::warn!(cluster = %cluster_key(&cluster), %error, retry_in = ?delay, "reconcile failed");
    Action::requeue(delay)
}

/// How long in-flight reconciles get after a shutdown request before the controller is
/// abandoned: a stuck watch (a missing CRD, an unreachable API server) must never keep the
/// process alive past the pod's grace period.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// How often the operator looks again for a missing CRD.
const CRD_RETRY: Duration = Duration::from_secs(10);

/// Runs the controller until `shutdown` resolves, watching clusters in `namespace` (or in
/// every namespace) and the objects they own. Waits, saying why, while the CRD is not
/// installed or cannot be listed; returns within [`SHUTDOWN_GRACE`] of `shutdown`.
pub async fn run(
    context: Arc<Context>,
    namespace: Option<&str>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let client = context.client.clone();
    fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
    {
        match namespace {
            Some(namespace) => Api::namespaced(client.clone(), namespace),
            None => Api::all(client.clone()),
        }
    }
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_sender.send(true);
    });
    let stopped = |mut stop: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };

    let clusters = api::<RocketMQCluster>(&client, namespace);
    loop {
        let problem = match clusters.list(&ListParams::default().limit(1)).await {
            Ok(_) => break,
            Err(kube::Error::Api(status)) if status.code == 404 => format!(
                "the RocketMQCluster CRD (rocketmqclusters.{}) is not installed: apply \
                 crds/rocketmq.rs_rocketmqclusters.yaml or install the rocketmq-operator chart",
                crate::crd::GROUP
            ),
            Err(kube::Error::Api(status)) if status.code == 403 => format!(
                "not allowed to list RocketMQClusters ({}): check the operator's RBAC",
                status.message
            ),
            Err(error) => format!("cannot list RocketMQClusters: {error}"),
        };
        tracing::error!(retry_in = ?CRD_RETRY, "{problem}");
        tokio::select! {
            () = tokio::time::sleep(CRD_RETRY) => {}
            () = stopped(stop.clone()) => return,
        }
    }

    // Owned objects are watched by our managed-by label only, to keep the caches small.
    let owned =
        || watcher::Config::default().labels("app.kubernetes.io/managed-by=rocketmq-operator");
    let controller = Controller::new(clusters, watcher::Config::default())
        .owns(api::<ConfigMap>(&client, namespace), owned())
        .owns(api::<Service>(&client, namespace), owned())
        .owns(api::<StatefulSet>(&client, namespace), owned())
        .owns(api::<Deployment>(&client, namespace), owned())
        .owns(api::<PodDisruptionBudget>(&client, namespace), owned())
        .owns(api::<HorizontalPodAutoscaler>(&client, namespace), owned())
        .graceful_shutdown_on(stopped(stop.clone()))
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            match result {
                Ok((object, action)) => tracing::debug!(%object, ?action, "reconciled"),
                Err(error) => tracing::debug!(%error, "reconcile attempt ended with an error"),
            }
        });
    let deadline = async {
        stopped(stop.clone()).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        () = controller => {}
        () = deadline => tracing::warn!(
            grace = ?SHUTDOWN_GRACE,
            "the controller did not stop within the grace period; leaving it"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::{autoscaled_replicas, truncate};
    use k8s_openapi::api::apps::v1::Deployment;

    fn deployment(replicas: i32, managers: &[(&str, bool)]) -> Deployment {
        serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "demo-proxy",
                "managedFields": managers.iter().map(|(manager, owns_replicas)| {
                    let fields = if *owns_replicas {
                        serde_json::json!({"f:spec": {"f:replicas": {}}})
                    } else {
                        serde_json::json!({"f:spec": {"f:template": {}}})
                    };
                    serde_json::json!({"manager": manager, "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": fields})
                }).collect::<Vec<_>>()
            },
            "spec": {"replicas": replicas, "selector": {}, "template": {}}
        }))
        .expect("a Deployment")
    }

    #[test]
    fn autoscaled_deployments_never_drop_to_one() {
        // A new autoscaled Deployment starts at the autoscaler's minimum.
        assert_eq!(autoscaled_replicas(None, 2), Some(2));
        // Switching autoscaling on: the running count stays (raised to the minimum).
        let ours = deployment(5, &[("rocketmq-operator", true)]);
        assert_eq!(autoscaled_replicas(Some(&ours), 2), Some(5));
        let small = deployment(1, &[("rocketmq-operator", true)]);
        assert_eq!(autoscaled_replicas(Some(&small), 3), Some(3));
        // Once the autoscaler has written replicas, the operator lets go.
        let scaled = deployment(
            7,
            &[
                ("rocketmq-operator", false),
                ("kube-controller-manager", true),
            ],
        );
        assert_eq!(autoscaled_replicas(Some(&scaled), 2), None);
    }

    #[test]
    fn truncate_respects_char_boundaries_and_the_limit() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdefgh", 6), "abc…");
        assert_eq!(truncate("ééééé", 7), "éé…");
        let long = "x".repeat(5000);
        assert_eq!(truncate(&long, 1024).len(), 1024);
    }
}
