//! Kubernetes operator for RocketMQ 5: turns one `RocketMQCluster` resource into name
//! servers, a controller consensus group, broker groups and proxies.
//!
//! Entry points: [`crd`] (the resource and its schema), [`objects`] (desired child objects as
//! pure functions of the spec), [`reconciler`] (the control loop that applies them and writes
//! status), [`failover`] (follows each broker group's master), [`leader`] (Lease-based leader election) and [`telemetry`] (health and metrics).

#![warn(missing_docs)]

pub mod crd;
pub mod crdgen;
pub mod drain;
pub mod error;
pub mod failover;
pub mod leader;
pub mod objects;
pub mod process;
pub mod quantity;
pub mod reconciler;
pub mod rollout;
pub mod status;
pub mod telemetry;
pub mod topics;
