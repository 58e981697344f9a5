//! The `apache.rocketmq.v2` protocol RocketMQ 5 clients speak to a proxy: messages, the
//! `MessagingService` server trait and client stub, generated at build time from our own
//! `.proto` files (`proto/`) by a pure-Rust protobuf compiler. Shared by the proxy and the
//! benchmark tool.

/// The generated `apache.rocketmq.v2` messages, server and client.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("apache.rocketmq.v2");
}

pub use prost_types;
