//! Health probes and Prometheus metrics of the operator process, served over plain HTTP/1.
//!
//! - `/healthz`: the process is alive and its HTTP server answers.
//! - `/readyz`: the operator has reached the API server (its first Lease round trip
//!   succeeded); a standby replica is ready too, since it is ready to take over.
//! - `/metrics`: reconcile counts, failures by reason, reconcile duration and leadership.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::{body::Incoming, server::conn::http1, service::service_fn};
use hyper_util::rt::TokioIo;
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use tokio::net::TcpListener;

use crate::error::{Error, Result};

/// Default address of the telemetry server.
pub const DEFAULT_TELEMETRY_ADDR: &str = "0.0.0.0:8080";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

/// The operator's Prometheus metrics.
pub struct Metrics {
    registry: Registry,
    reconciliations: Family<OutcomeLabels, Counter>,
    failures: Family<ReasonLabels, Counter>,
    duration: Histogram,
    leader: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `rocketmq_operator` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rocketmq_operator");
        let reconciliations = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "reconciliations",
            "Reconcile runs by outcome (applied, paused, invalid, failed)",
            reconciliations.clone(),
        );
        let failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "reconcile_failures",
            "Failed reconcile runs by reason",
            failures.clone(),
        );
        // 10 ms .. ~20 s: applying ~20 objects takes a few hundred ms on a healthy API server.
        let duration = Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0]);
        registry.register(
            "reconcile_duration_seconds",
            "Duration of reconcile runs",
            duration.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader Lease",
            leader.clone(),
        );
        Self {
            registry,
            reconciliations,
            failures,
            duration,
            leader,
        }
    }

    /// Counts one reconcile run and its duration.
    pub fn observe_reconcile(&self, outcome: &str, elapsed: Duration) {
        self.reconciliations
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
        self.duration.observe(elapsed.as_secs_f64());
    }

    /// Counts one failed reconcile run.
    pub fn observe_failure(&self, reason: &str) {
        self.failures
            .get_or_create(&ReasonLabels {
                reason: reason.into(),
            })
            .inc();
    }

    /// Records whether this replica leads.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Count of reconcile runs with `outcome`, for tests and diagnostics.
    pub fn reconciliations(&self, outcome: &str) -> u64 {
        self.reconciliations
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .get()
    }

    /// Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut text = String::new();
        encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }
}

/// Readiness shared between the elector and the HTTP server.
#[derive(Default)]
pub struct Health {
    ready: AtomicBool,
}

impl Health {
    /// Marks the process ready (or not).
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    /// Whether `/readyz` answers 200.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }
}

/// Answers one telemetry request; separated from the server loop so it is testable without
/// sockets.
pub fn respond(
    method: &Method,
    path: &str,
    health: &Health,
    metrics: &Metrics,
) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (method, path) {
        (&Method::GET, "/healthz") => (StatusCode::OK, "text/plain", "ok\n".to_string()),
        (&Method::GET, "/readyz") if health.is_ready() => {
            (StatusCode::OK, "text/plain", "ready\n".to_string())
        }
        (&Method::GET, "/readyz") => (
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "not ready: the Kubernetes API has not answered yet\n".to_string(),
        ),
        (&Method::GET, "/metrics") => (
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            metrics.render(),
        ),
        (&Method::GET, _) => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".to_string(),
        ),
        _ => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "only GET\n".to_string(),
        ),
    };
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("static status and header values are valid")
}

/// Serves telemetry on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted.map_err(Error::Telemetry)?,
            () = &mut shutdown => return Ok(()),
        };
        let health = health.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let response = respond(request.method(), request.uri().path(), &health, &metrics);
                async move { Ok::<_, std::convert::Infallible>(response) }
            });
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%peer, %error, "telemetry connection ended with an error");
            }
        });
    }
}

/// Binds the telemetry address.
pub async fn bind(address: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(address).await.map_err(Error::Telemetry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_text(response: Response<Full<Bytes>>) -> String {
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("full body")
            .to_bytes();
        String::from_utf8(bytes.to_vec()).expect("utf-8 body")
    }

    #[tokio::test]
    async fn readyz_follows_health_and_healthz_always_answers() {
        let health = Health::default();
        let metrics = Metrics::new();
        assert_eq!(
            respond(&Method::GET, "/readyz", &health, &metrics).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        health.set_ready(true);
        assert_eq!(
            respond(&Method::GET, "/readyz", &health, &metrics).status(),
            StatusCode::OK
        );
        assert_eq!(
            respond(&Method::GET, "/healthz", &health, &metrics).status(),
            StatusCode::OK
        );
        assert_eq!(
            respond(&Method::GET, "/nope", &health, &metrics).status(),
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            respond(&Method::POST, "/metrics", &health, &metrics).status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[tokio::test]
    async fn metrics_expose_reconcile_counts_failures_and_leadership() {
        let metrics = Metrics::new();
        metrics.observe_reconcile("applied", Duration::from_millis(30));
        metrics.observe_reconcile("applied", Duration::from_millis(40));
        metrics.observe_failure("ApplyFailed");
        metrics.set_leader(true);
        let text = body_text(respond(
            &Method::GET,
            "/metrics",
            &Health::default(),
            &metrics,
        ))
        .await;
        assert!(
            text.contains("rocketmq_operator_reconciliations_total{outcome=\"applied\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("rocketmq_operator_reconcile_failures_total{reason=\"ApplyFailed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("rocketmq_operator_reconcile_duration_seconds_count 2"),
            "{text}"
        );
        assert!(text.contains("rocketmq_operator_leader 1"), "{text}");
    }

    #[tokio::test]
    async fn server_answers_over_tcp_and_stops_on_shutdown() {
        let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let address = listener.local_addr().unwrap();
        let health = Arc::new(Health::default());
        health.set_ready(true);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, health, Arc::new(Metrics::new()), async {
            let _ = stopped.await;
        }));
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        stream
            .write_all(b"GET /readyz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut reply = String::new();
        stream.read_to_string(&mut reply).await.unwrap();
        assert!(reply.starts_with("HTTP/1.1 200 OK"), "{reply}");
        assert!(reply.ends_with("ready\n"), "{reply}");
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("server stops on shutdown")
            .unwrap()
            .unwrap();
    }
}
