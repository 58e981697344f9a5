//! Logging setup and the Prometheus `/metrics` endpoint every server exposes.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Installs the global `tracing` subscriber: human-readable lines on stderr, filtered by
/// `RUST_LOG` (default `info`). Safe to call more than once; later calls do nothing.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never into container or file logs.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true)
        .try_init();
}

/// [`serve_metrics`] on `ip:port`, or nothing when `port` is 0 (metrics disabled). A bind
/// failure comes back with the address it was for.
pub async fn serve_metrics_on(
    ip: std::net::IpAddr,
    port: u16,
    registry: Registry,
    shutdown: CancellationToken,
) -> Result<Option<SocketAddr>, (SocketAddr, std::io::Error)> {
    if port == 0 {
        return Ok(None);
    }
    let addr = SocketAddr::new(ip, port);
    serve_metrics(addr, Arc::new(Mutex::new(registry)), shutdown)
        .await
        .map(Some)
        .map_err(|e| (addr, e))
}

/// Serves `GET /metrics` (Prometheus text format) and `GET /healthz` on `addr` until
/// `shutdown` is cancelled. Returns the bound address.
pub async fn serve_metrics(
    addr: SocketAddr,
    registry: Arc<Mutex<Registry>>,
    shutdown: CancellationToken,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    info!(addr = %local, "metrics endpoint listening");
    tokio::spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        warn!(error = %e, "metrics accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let registry = registry.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let registry = registry.clone();
                    async move { Ok::<_, std::convert::Infallible>(respond(&req, &registry)) }
                });
                if let Err(e) = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    debug!(error = %e, "metrics connection ended with an error");
                }
            });
        }
    });
    Ok(local)
}

fn respond(
    req: &Request<hyper::body::Incoming>,
    registry: &Mutex<Registry>,
) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, body: String, content_type: &'static str| {
        Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("static response parts are valid")
    };
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => {
            let mut out = String::new();
            let registry = registry.lock().unwrap_or_else(|e| e.into_inner());
            match prometheus_client::encoding::text::encode(&mut out, &registry) {
                Ok(()) => text(
                    StatusCode::OK,
                    out,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
                Err(e) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    e.to_string(),
                    "text/plain",
                ),
            }
        }
        (&Method::GET, "/healthz") | (&Method::GET, "/readyz") => {
            text(StatusCode::OK, "ok\n".to_string(), "text/plain")
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "not found\n".to_string(),
            "text/plain",
        ),
    }
}
