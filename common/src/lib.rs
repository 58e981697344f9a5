//! Shared protocol crate: everything two RocketMQ processes need to agree on.

pub mod config;
pub mod message;
