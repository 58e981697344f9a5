//! The RocketMQ broker. For now only its message store ([`store`]); request processors,
//! replication and the `mqbroker` binary come later.

pub mod store;
