//! Shared protocol crate: everything two RocketMQ processes need to agree on.
//!
//! - [`admin`]: admin bodies with fastjson's object map keys (topic and consume stats);
//! - [`protocol`]: Remoting frames, commands, codes and typed headers;
//! - [`route`]: route and registration bodies exchanged with the name server;
//! - [`remoting`]: the tokio Remoting server and client;
//! - [`config`]: `.properties` config files;
//! - [`filter`]: the SQL92 property filter of subscriptions;
//! - [`lenient`]: fastjson-tolerant readers for fields of client bodies;
//! - [`observability`]: logging setup and the Prometheus endpoint every server exposes.

pub mod admin;
pub mod body;
pub mod cli;
pub mod config;
pub mod controller;
pub mod filter;
pub mod json;
pub mod lenient;
pub mod message;
pub mod observability;
pub mod persist;
pub mod pop;
pub mod protocol;
pub mod remoting;
pub mod route;
pub mod signal;
pub mod topic;
