//! `mqproxy`: the gRPC entry point of RocketMQ 5 clients (`apache.rocketmq.v2`).
//!
//! - [`pb`] — the protocol's messages and service, generated at build time from our own
//!   `.proto` files in `proto/` by a pure-Rust protobuf compiler;
//! - [`service`] — `MessagingService`: each RPC as name server and broker requests through
//!   the client crate (cluster mode: stateless, any number of proxies per cluster);
//! - [`convert`] — client messages to Remoting sends, stored messages to gRPC messages;
//! - [`server`] — listener, transaction-check forwarding, heartbeats, metrics, shutdown;
//! - [`local`] — local mode: a name server and a broker in the same process.

pub mod convert;
pub mod local;
pub mod metrics;
pub mod server;
pub mod service;

/// The generated `apache.rocketmq.v2` messages and service.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("apache.rocketmq.v2");
}

pub use server::{ProxyConfig, ProxyServer, StartError};
