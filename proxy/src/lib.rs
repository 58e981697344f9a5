//! `mqproxy`: the gRPC entry point of RocketMQ 5 clients (`apache.rocketmq.v2`).
//!
//! - [`pb`] — the protocol's messages and service (crate `rocketmq-proto`, generated at
//!   build time from our own `.proto` files by a pure-Rust protobuf compiler);
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

pub use rocketmq_proto::pb;

pub use server::{ProxyConfig, ProxyServer, StartError};
