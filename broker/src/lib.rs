//! The RocketMQ broker over the message store (crate `rocketmq-store`): persisted metadata
//! ([`metadata`]), client tables ([`clients`]), long polling ([`long_polling`]), request
//! processors ([`processor`]), POP consumption and revive ([`pop`]), transactions ([`transaction`]), timers ([`timer`]),
//! replication and controller mode ([`ha`]) and the process wiring ([`BrokerServer`]).

pub mod clients;
pub mod config;
pub mod delivery;
pub mod filter;
pub mod ha;
pub mod locks;
pub mod long_polling;
pub mod metadata;
pub mod pop;
pub mod processor;
pub mod registration;
pub mod schedule;
mod server;
pub mod stats;
pub mod timer;
pub mod transaction;

pub use config::BrokerConfig;
pub use server::{BrokerServer, StartError};
