//! The tokio Remoting server and client.
//!
//! The server runs one task per connection and dispatches each request by code through a
//! single table ([`Dispatcher`]); a newcomer finds the handler of any code in one hop.
//! The client keeps one connection per address and matches responses to requests by
//! opaque.

pub mod client;
pub mod metrics;
pub mod server;

pub use client::{ClientConfig, ClientRequestHandler, RemotingClient, RemotingError};
pub use metrics::RemotingMetrics;
pub use server::{
    ConnectionHandle, ConnectionListener, Dispatcher, InProcessConnection, InProcessEndpoint,
    ProcessError, ProcessResult, RemotingServer, Reply, RequestContext, RequestProcessor,
    ServerConfig, ServerHandle, ServerShutDown,
};
