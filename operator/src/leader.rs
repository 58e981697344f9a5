//! Leader election on a `coordination.k8s.io/v1` Lease, so two operator replicas can run
//! and only one reconciles. kube-runtime 5 ships no elector; this one follows client-go's
//! protocol, which other tools (`kubectl get lease`) understand:
//!
//! - the holder renews `renewTime` every [`LeaseConfig::retry_period`];
//! - a candidate takes the Lease over only after `renewTime + leaseDurationSeconds` has
//!   passed, bumping `leaseTransitions`;
//! - every write is a `replace` guarded by the `resourceVersion` just read (or a `create`),
//!   so when two candidates race, the API server lets exactly one win (409 for the other);
//! - a leader that cannot renew within [`LeaseConfig::renew_deadline`] steps down before
//!   anyone else may take over, so two leaders never overlap.

use std::time::Duration;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::{SignedDuration, Timestamp},
};
use kube::{Api, Client, api::PostParams};
use tokio::sync::watch;

use crate::{
    error::{Error, Result},
    telemetry::Health,
};

/// Timing and identity of the elector.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Lease name, shared by every replica.
    pub name: String,
    /// Namespace of the Lease (the operator's own).
    pub namespace: String,
    /// This replica's identity, normally its pod name.
    pub identity: String,
    /// How long a Lease stays valid after its last renewal.
    pub lease_duration: Duration,
    /// How long the leader keeps leading without a successful renewal; shorter than
    /// `lease_duration` so it steps down before a candidate may take over.
    pub renew_deadline: Duration,
    /// Pause between election rounds.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// client-go's defaults: 15 s lease, 10 s renew deadline, 2 s retry.
    pub fn new(name: String, namespace: String, identity: String) -> Self {
        Self {
            name,
            namespace,
            identity,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// Result of one election round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Election {
    /// This replica holds the Lease.
    Leading,
    /// Someone else holds it (or won the race for it).
    Following {
        /// The current holder, when known.
        holder: Option<String>,
    },
}

/// Acquires, renews and releases the Lease.
pub struct LeaseElector {
    api: Api<Lease>,
    config: LeaseConfig,
}

impl LeaseElector {
    /// An elector for `config.name` in `config.namespace`.
    pub fn new(client: Client, config: LeaseConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
        }
    }

    /// The elector's configuration.
    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    fn lease_error(&self, source: kube::Error) -> Error {
        Error::Lease {
            lease: self.config.name.clone(),
            source,
        }
    }

    /// One round at time `now`: create the Lease if missing, renew it if ours, take it over
    /// if expired, otherwise follow.
    pub async fn try_acquire_or_renew(&self, now: Timestamp) -> Result<Election> {
        let existing = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|error| self.lease_error(error))?;
        let Some(mut lease) = existing else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.held_spec(now, now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(Election::Leading),
                Err(error) if is_conflict(&error) => Ok(Election::Following { holder: None }),
                Err(error) => Err(self.lease_error(error)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec
            .holder_identity
            .clone()
            .filter(|holder| !holder.is_empty());
        let ours = holder.as_deref() == Some(self.config.identity.as_str());
        let new_spec = if ours {
            let acquired = spec.acquire_time.map_or(now, |time| time.0);
            self.held_spec(acquired, now, spec.lease_transitions.unwrap_or(0))
        } else if holder.is_none() || is_expired(&spec, now) {
            self.held_spec(now, now, spec.lease_transitions.unwrap_or(0) + 1)
        } else {
            return Ok(Election::Following { holder });
        };
        lease.spec = Some(new_spec);
        // `lease` still carries the resourceVersion we read: the replace fails with 409 if
        // anyone wrote the Lease in between.
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(Election::Leading),
            Err(error) if is_conflict(&error) => Ok(Election::Following { holder }),
            Err(error) => Err(self.lease_error(error)),
        }
    }

    /// Gives the Lease up at shutdown so a standby takes over at once instead of waiting
    /// for it to expire. Does nothing if another replica holds it.
    pub async fn release(&self) -> Result<()> {
        let Some(mut lease) = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|error| self.lease_error(error))?
        else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        // A one-second lease lets candidates take over on their next round.
        spec.lease_duration_seconds = Some(1);
        lease.spec = Some(spec);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(()),
            // Someone else wrote the Lease meanwhile: it is no longer ours to release.
            Err(error) if is_conflict(&error) => Ok(()),
            Err(error) => Err(self.lease_error(error)),
        }
    }

    fn held_spec(&self, acquired: Timestamp, renewed: Timestamp, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: Some(MicroTime(acquired)),
            renew_time: Some(MicroTime(renewed)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// Runs election rounds until `shutdown` resolves, publishing leadership on `leading`
    /// and marking `health` ready after the first round the API server answered.
    /// Releases the Lease on the way out if this replica holds it.
    pub async fn run(
        &self,
        leading: watch::Sender<bool>,
        health: &Health,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut last_renewal: Option<tokio::time::Instant> = None;
        loop {
            let round = self.try_acquire_or_renew(Timestamp::now()).await;
            if round.is_ok() {
                health.set_ready(true);
            }
            let is_leader = match round {
                Ok(Election::Leading) => {
                    last_renewal = Some(tokio::time::Instant::now());
                    true
                }
                Ok(Election::Following { holder }) => {
                    tracing::debug!(?holder, "following");
                    last_renewal = None;
                    false
                }
                Err(error) => {
                    tracing::warn!(%error, "leader election round failed");
                    // Keep leading through a short API hiccup, but never past the deadline.
                    last_renewal
                        .is_some_and(|renewed| renewed.elapsed() < self.config.renew_deadline)
                }
            };
            leading.send_if_modified(|current| {
                let changed = *current != is_leader;
                if changed {
                    tracing::info!(identity = %self.config.identity, leading = is_leader, "leadership changed");
                }
                *current = is_leader;
                changed
            });
            tokio::select! {
                () = tokio::time::sleep(self.config.retry_period) => {}
                () = &mut shutdown => break,
            }
        }
        if *leading.borrow() {
            leading.send_replace(false);
            if let Err(error) = self.release().await {
                tracing::warn!(%error, "cannot release the leader Lease");
            }
        }
    }
}

fn is_expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let Some(renewed) = spec.renew_time.as_ref() else {
        return true;
    };
    let duration = SignedDuration::from_secs(i64::from(spec.lease_duration_seconds.unwrap_or(0)));
    renewed.0 + duration < now
}

fn is_conflict(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Method, Request, Response};
    use kube::client::Body;
    use serde_json::{Value, json};

    /// A scripted exchange: the expected method and path, and the reply.
    struct Step {
        method: Method,
        path: &'static str,
        status: u16,
        reply: Value,
    }

    /// Runs `rounds` against a fake API server that expects exactly `steps`, in order, and
    /// returns the bodies the elector sent.
    async fn scripted<F, Fut, T>(steps: Vec<Step>, rounds: F) -> (T, Vec<Value>)
    where
        F: FnOnce(LeaseElector) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = tokio::spawn(async move {
            let mut bodies = Vec::new();
            for step in steps {
                let (request, send) = handle
                    .next_request()
                    .await
                    .expect("the elector sends a request");
                assert_eq!(request.method(), step.method, "for {}", step.path);
                assert_eq!(request.uri().path(), step.path);
                let body = request.into_body().collect_bytes().await.unwrap();
                bodies.push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                send.send_response(
                    Response::builder()
                        .status(step.status)
                        .body(Body::from(serde_json::to_vec(&step.reply).unwrap()))
                        .unwrap(),
                );
            }
            bodies
        });
        let elector = LeaseElector::new(
            Client::new(service, "ops"),
            LeaseConfig::new("rocketmq-operator".into(), "ops".into(), "pod-a".into()),
        );
        let output = rounds(elector).await;
        let bodies = tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("every scripted step was used")
            .unwrap();
        (output, bodies)
    }

    const PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/ops/leases/rocketmq-operator";
    const COLLECTION: &str = "/apis/coordination.k8s.io/v1/namespaces/ops/leases";

    fn not_found() -> Value {
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404, "reason": "NotFound", "message": "not found", "metadata": {}})
    }

    fn conflict() -> Value {
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 409, "reason": "Conflict", "message": "the object has been modified", "metadata": {}})
    }

    fn lease(holder: &str, renewed: &str, transitions: i32) -> Value {
        json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": { "name": "rocketmq-operator", "namespace": "ops", "resourceVersion": "41" },
            "spec": {
                "holderIdentity": holder, "leaseDurationSeconds": 15,
                "acquireTime": "2026-01-01T00:00:00.000000Z", "renewTime": renewed,
                "leaseTransitions": transitions
            }
        })
    }

    fn at(time: &str) -> Timestamp {
        time.parse().unwrap()
    }

    #[tokio::test]
    async fn creates_the_lease_when_missing() {
        let steps = vec![
            Step {
                method: Method::GET,
                path: PATH,
                status: 404,
                reply: not_found(),
            },
            Step {
                method: Method::POST,
                path: COLLECTION,
                status: 201,
                reply: lease("pod-a", "2026-01-01T00:00:00Z", 0),
            },
        ];
        let (election, bodies) = scripted(steps, |elector| async move {
            elector
                .try_acquire_or_renew(at("2026-01-01T00:00:00Z"))
                .await
                .unwrap()
        })
        .await;
        assert_eq!(election, Election::Leading);
        assert_eq!(bodies[1]["spec"]["holderIdentity"], "pod-a");
        assert_eq!(bodies[1]["spec"]["leaseDurationSeconds"], 15);
    }

    #[tokio::test]
    async fn follows_a_fresh_lease_of_another_replica_without_writing() {
        let steps = vec![Step {
            method: Method::GET,
            path: PATH,
            status: 200,
            reply: lease("pod-b", "2026-01-01T00:00:10Z", 2),
        }];
        let (election, _) = scripted(steps, |elector| async move {
            elector
                .try_acquire_or_renew(at("2026-01-01T00:00:20Z"))
                .await
                .unwrap()
        })
        .await;
        assert_eq!(
            election,
            Election::Following {
                holder: Some("pod-b".into())
            }
        );
    }

    #[tokio::test]
    async fn takes_over_an_expired_lease_guarded_by_resource_version() {
        let steps = vec![
            Step {
                method: Method::GET,
                path: PATH,
                status: 200,
                reply: lease("pod-b", "2026-01-01T00:00:00Z", 2),
            },
            Step {
                method: Method::PUT,
                path: PATH,
                status: 200,
                reply: lease("pod-a", "2026-01-01T00:00:16Z", 3),
            },
        ];
        let (election, bodies) = scripted(steps, |elector| async move {
            elector
                .try_acquire_or_renew(at("2026-01-01T00:00:16Z"))
                .await
                .unwrap()
        })
        .await;
        assert_eq!(election, Election::Leading);
        let put = &bodies[1];
        assert_eq!(
            put["metadata"]["resourceVersion"], "41",
            "the replace must be guarded"
        );
        assert_eq!(put["spec"]["holderIdentity"], "pod-a");
        assert_eq!(put["spec"]["leaseTransitions"], 3);
        assert_eq!(put["spec"]["acquireTime"], put["spec"]["renewTime"]);
    }

    #[tokio::test]
    async fn renews_its_own_lease_keeping_acquire_time() {
        let steps = vec![
            Step {
                method: Method::GET,
                path: PATH,
                status: 200,
                reply: lease("pod-a", "2026-01-01T00:00:02Z", 1),
            },
            Step {
                method: Method::PUT,
                path: PATH,
                status: 200,
                reply: lease("pod-a", "2026-01-01T00:00:04Z", 1),
            },
        ];
        let (election, bodies) = scripted(steps, |elector| async move {
            elector
                .try_acquire_or_renew(at("2026-01-01T00:00:04Z"))
                .await
                .unwrap()
        })
        .await;
        assert_eq!(election, Election::Leading);
        let spec = &bodies[1]["spec"];
        assert_eq!(spec["leaseTransitions"], 1, "a renewal is not a transition");
        assert!(
            spec["acquireTime"]
                .as_str()
                .unwrap()
                .starts_with("2026-01-01T00:00:00")
        );
        assert!(
            spec["renewTime"]
                .as_str()
                .unwrap()
                .starts_with("2026-01-01T00:00:04")
        );
    }

    #[tokio::test]
    async fn losing_the_race_means_following() {
        let steps = vec![
            Step {
                method: Method::GET,
                path: PATH,
                status: 200,
                reply: lease("pod-b", "2026-01-01T00:00:00Z", 2),
            },
            Step {
                method: Method::PUT,
                path: PATH,
                status: 409,
                reply: conflict(),
            },
        ];
        let (election, _) = scripted(steps, |elector| async move {
            elector
                .try_acquire_or_renew(at("2026-01-01T00:01:00Z"))
                .await
                .unwrap()
        })
        .await;
        assert!(
            matches!(election, Election::Following { .. }),
            "{election:?}"
        );
    }

    #[tokio::test]
    async fn api_failure_is_an_error_not_leadership() {
        let steps = vec![Step {
            method: Method::GET,
            path: PATH,
            status: 500,
            reply: json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500, "reason": "InternalError", "message": "boom", "metadata": {}}),
        }];
        let (result, _) = scripted(steps, |elector| async move {
            elector
                .try_acquire_or_renew(at("2026-01-01T00:00:00Z"))
                .await
        })
        .await;
        assert!(matches!(result, Err(Error::Lease { .. })), "{result:?}");
    }

    #[tokio::test]
    async fn release_clears_the_holder_only_when_ours() {
        let steps = vec![
            Step {
                method: Method::GET,
                path: PATH,
                status: 200,
                reply: lease("pod-a", "2026-01-01T00:00:00Z", 1),
            },
            Step {
                method: Method::PUT,
                path: PATH,
                status: 200,
                reply: lease("", "2026-01-01T00:00:00Z", 1),
            },
        ];
        let (result, bodies) =
            scripted(steps, |elector| async move { elector.release().await }).await;
        result.unwrap();
        assert!(
            bodies[1]["spec"]
                .get("holderIdentity")
                .is_none_or(Value::is_null)
        );
        assert_eq!(bodies[1]["spec"]["leaseDurationSeconds"], 1);

        let steps = vec![Step {
            method: Method::GET,
            path: PATH,
            status: 200,
            reply: lease("pod-b", "2026-01-01T00:00:00Z", 1),
        }];
        let (result, bodies) =
            scripted(steps, |elector| async move { elector.release().await }).await;
        result.unwrap();
        assert_eq!(bodies.len(), 1, "another replica's Lease is not touched");
    }

    /// A fake API server for whole election loops: `GET` answers with `lease` (404 when
    /// `None`) or fails while `failing` is set, writes succeed and become the new lease.
    fn lease_server(
        mut handle: tower_test::mock::Handle<Request<Body>, Response<Body>>,
        failing: std::sync::Arc<std::sync::atomic::AtomicBool>,
    ) -> tokio::task::JoinHandle<Vec<(Method, Value)>> {
        tokio::spawn(async move {
            let mut lease: Option<Value> = None;
            let mut seen = Vec::new();
            while let Some((request, send)) = handle.next_request().await {
                let method = request.method().clone();
                let body: Value =
                    serde_json::from_slice(&request.into_body().collect_bytes().await.unwrap())
                        .unwrap_or(Value::Null);
                let (status, reply) = if failing.load(std::sync::atomic::Ordering::SeqCst) {
                    (
                        500,
                        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 500, "reason": "InternalError", "message": "down", "metadata": {}}),
                    )
                } else if method == Method::GET {
                    match &lease {
                        Some(lease) => (200, lease.clone()),
                        None => (404, not_found()),
                    }
                } else {
                    let mut stored = body.clone();
                    stored["metadata"]["resourceVersion"] = json!("1");
                    lease = Some(stored.clone());
                    (200, stored)
                };
                seen.push((method, body));
                send.send_response(
                    Response::builder()
                        .status(status)
                        .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                        .unwrap(),
                );
            }
            seen
        })
    }

    fn quick_config() -> LeaseConfig {
        LeaseConfig {
            retry_period: Duration::from_millis(20),
            renew_deadline: Duration::from_millis(400),
            ..LeaseConfig::new("rocketmq-operator".into(), "ops".into(), "pod-a".into())
        }
    }

    #[tokio::test]
    async fn run_leads_then_releases_on_shutdown() {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let failing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let server = lease_server(handle, failing);
        let elector = LeaseElector::new(Client::new(service, "ops"), quick_config());
        let (leading_sender, mut leading) = watch::channel(false);
        let health = Health::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let run = elector.run(leading_sender, &health, async {
            let _ = stopped.await;
        });
        let observe = async {
            leading.wait_for(|leading| *leading).await.unwrap();
            assert!(health.is_ready());
            stop.send(()).unwrap();
        };
        tokio::time::timeout(Duration::from_secs(5), async { tokio::join!(run, observe) })
            .await
            .expect("the loop stops on shutdown");
        assert!(
            !*leading.borrow(),
            "leadership is withdrawn before the Lease is released"
        );
        drop(elector);
        let seen = server.await.unwrap();
        let (method, last) = seen.last().expect("requests were made");
        assert_eq!(*method, Method::PUT, "the last write releases the Lease");
        assert!(
            last["spec"]
                .get("holderIdentity")
                .is_none_or(Value::is_null),
            "{last}"
        );
    }

    #[tokio::test]
    async fn run_steps_down_when_renewals_fail_past_the_deadline() {
        let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let failing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let _server = lease_server(handle, failing.clone());
        let elector = LeaseElector::new(Client::new(service, "ops"), quick_config());
        let (leading_sender, mut leading) = watch::channel(false);
        let health = Health::default();
        let run = elector.run(leading_sender, &health, std::future::pending());
        let observe = async {
            leading.wait_for(|leading| *leading).await.unwrap();
            let outage = tokio::time::Instant::now();
            failing.store(true, std::sync::atomic::Ordering::SeqCst);
            leading.wait_for(|leading| !*leading).await.unwrap();
            outage.elapsed()
        };
        let stepped_down_after = tokio::time::timeout(Duration::from_secs(5), async {
            tokio::select! {
                () = run => panic!("the loop only ends on shutdown"),
                elapsed = observe => elapsed,
            }
        })
        .await
        .expect("the leader steps down");
        // Rides out blips well within the renew deadline (400 ms; the last renewal may
        // precede the outage by a retry period plus a slow round), never outlives it by much.
        assert!(
            stepped_down_after >= Duration::from_millis(200),
            "stepped down after only {stepped_down_after:?}"
        );
        assert!(
            stepped_down_after < Duration::from_secs(2),
            "{stepped_down_after:?}"
        );
    }

    #[test]
    fn expiry_uses_renew_time_plus_duration() {
        let spec: LeaseSpec = serde_json::from_value(
            json!({"renewTime": "2026-01-01T00:00:00.000000Z", "leaseDurationSeconds": 15}),
        )
        .unwrap();
        assert!(!is_expired(&spec, at("2026-01-01T00:00:15Z")));
        assert!(is_expired(&spec, at("2026-01-01T00:00:15.001Z")));
        assert!(is_expired(
            &LeaseSpec::default(),
            at("2026-01-01T00:00:00Z")
        ));
    }
}
