//! Typed headers, one module per server family. Field wire names are Java's field names.

pub mod broker;
pub mod controller;
pub mod namesrv;
