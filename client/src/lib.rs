//! The Remoting client side every tool and server shares:
//!
//! - [`api`] — [`MqClient`](api::MqClient): one method per name server and broker request
//!   (routes, cluster info, KV, topics and groups, offsets, send, pull, queries, runtime
//!   figures), with one response check ([`error::check_success`]);
//! - [`route`] — [`RouteCache`](route::RouteCache): topic routes from the name servers,
//!   refreshed on demand and periodically, master and replica selection;
//! - [`controller`] — [`ControllerClient`](controller::ControllerClient): finds the controller
//!   leader and follows it;
//! - [`message`] — stored messages decoded from query, pull and pop bodies;
//! - [`pop`] — POP, ACK, CHANGE_MESSAGE_INVISIBLETIME and NOTIFICATION calls, and the
//!   receipts of popped messages.

pub mod api;
pub mod controller;
pub mod error;
pub mod message;
pub mod pop;
pub mod route;

pub use api::MqClient;
pub use controller::ControllerClient;
pub use error::ClientError;
pub use message::StoredMessage;
pub use route::RouteCache;
