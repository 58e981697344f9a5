//! Prometheus metrics of a Remoting server: connections, requests, errors, latency.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of per-request metrics: the request code and the response code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Request code number.
    pub request_code: i32,
    /// Response code number (`-1` for oneway requests, which get none).
    pub response_code: i32,
}

/// Labels of per-code latency.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    /// Request code number.
    pub request_code: i32,
}

/// Counters and histograms a [`RemotingServer`](super::RemotingServer) updates.
#[derive(Clone)]
pub struct RemotingMetrics {
    /// Connections currently open.
    pub connections_open: Gauge<i64, std::sync::atomic::AtomicI64>,
    /// Connections accepted since start.
    pub connections_total: Counter<u64, AtomicU64>,
    /// Connections closed because of a malformed frame.
    pub malformed_frames: Counter<u64, AtomicU64>,
    /// Connections closed because their frame did not fit the buffer budget.
    pub frame_budget_refusals: Counter<u64, AtomicU64>,
    /// Connections closed at once because too many were open.
    pub connections_refused: Counter<u64, AtomicU64>,
    /// Requests handled, by request and response code.
    pub requests: Family<RequestLabels, Counter<u64, AtomicU64>>,
    /// Time from a request's arrival to its response being queued, by request code.
    pub request_seconds: Family<CodeLabels, Histogram>,
}

impl Default for RemotingMetrics {
    fn default() -> Self {
        Self {
            connections_open: Gauge::default(),
            connections_total: Counter::default(),
            malformed_frames: Counter::default(),
            frame_budget_refusals: Counter::default(),
            connections_refused: Counter::default(),
            requests: Family::default(),
            // 10 µs .. ~5 s covers an in-memory route lookup up to a long-polled pull.
            request_seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(1e-5, 4.0, 10))
            }),
        }
    }
}

impl RemotingMetrics {
    /// Creates the metrics and registers them under `prefix` (e.g. `rocketmq_namesrv`).
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self::default();
        registry.register(
            "remoting_connections_open",
            "Open client connections",
            m.connections_open.clone(),
        );
        registry.register(
            "remoting_connections",
            "Accepted client connections",
            m.connections_total.clone(),
        );
        registry.register(
            "remoting_malformed_frames",
            "Connections closed because of a malformed frame",
            m.malformed_frames.clone(),
        );
        registry.register(
            "remoting_frame_budget_refusals",
            "Connections closed because a large frame did not fit the server's buffer budget",
            m.frame_budget_refusals.clone(),
        );
        registry.register(
            "remoting_connections_refused",
            "Connections closed on accept because too many were open",
            m.connections_refused.clone(),
        );
        registry.register(
            "remoting_requests",
            "Requests handled by request and response code",
            m.requests.clone(),
        );
        registry.register(
            "remoting_request_duration_seconds",
            "Time from request arrival to response queued",
            m.request_seconds.clone(),
        );
        m
    }
}
