//! The proxy's Prometheus metrics (`rocketmq_proxy_*`): requests per RPC and status code,
//! their latency, and messages handed to consumers.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcCodeLabels {
    rpc: &'static str,
    code: i32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    rpc: &'static str,
}

/// Handles to the proxy's metrics (cheap to clone).
#[derive(Clone)]
pub struct ProxyMetrics {
    requests: Family<RpcCodeLabels, Counter<u64, AtomicU64>>,
    latency: Family<RpcLabels, Histogram>,
    received: Counter<u64, AtomicU64>,
}

impl ProxyMetrics {
    /// Registers the metrics in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            requests: Family::default(),
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(1e-4, 4.0, 10))
            }),
            received: Counter::default(),
        };
        registry.register(
            "rpc_requests",
            "gRPC requests by RPC and the status code answered",
            m.requests.clone(),
        );
        registry.register(
            "rpc_latency_seconds",
            "Time to answer a gRPC request (receives include their long polling)",
            m.latency.clone(),
        );
        registry.register(
            "messages_received",
            "Messages handed to consumers by ReceiveMessage",
            m.received.clone(),
        );
        m
    }

    /// Counts one answered request.
    pub fn record(&self, rpc: &'static str, code: i32, took: Duration) {
        self.requests
            .get_or_create(&RpcCodeLabels { rpc, code })
            .inc();
        self.latency
            .get_or_create(&RpcLabels { rpc })
            .observe(took.as_secs_f64());
    }

    /// Counts messages handed out.
    pub fn record_received(&self, n: u64) {
        self.received.inc_by(n);
    }
}
