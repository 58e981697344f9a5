//! The controller: consensus-backed master election per broker group (RocketMQ 5's
//! "controller mode").
//!
//! * [`state`]: the replicated state and the pure decisions over it (election policy,
//!   SyncStateSet checks, id allocation).
//! * [`raft`]: openraft with a durable log, snapshots and a Remoting transport.
//! * [`heartbeat`]: broker liveness as this controller sees it.
//! * [`processor`]: the request handlers; [`server`]: wiring, scans and notifications.

pub mod config;
pub mod heartbeat;
pub mod processor;
pub mod raft;
pub mod server;
pub mod state;

pub use config::{ControllerConfig, ControllerConfigError, Peer};
pub use server::{Controller, ControllerServer, StartError};
