//! `mqadmin`: RocketMQ's administration commands over the Remoting protocol.
//!
//! - [`cli`] — the command line (RocketMQ's command names and flags);
//! - the requests themselves are [`rocketmq_client::MqClient`]'s (the shared client crate);
//! - [`commands`] — what each command does and prints ([`commands::run`]), with
//!   [`broker_commands`] (broker status and config, client connections, offset resets),
//!   [`message_commands`] (reading and sending messages through the client paths) and
//!   [`controller_commands`] (controller metadata, SyncStateSets, epochs, elections);
//! - [`format`] — Java-compatible time, permission and column formatting;
//! - [`error`] — [`AdminError`](error::AdminError).
//!
//! The binary (`src/bin/mqadmin.rs`) only parses arguments, builds a client and calls
//! [`run_cli`]; everything else lives here so tests can drive it in-process.

pub mod broker_commands;
pub mod cli;
pub mod commands;
pub mod controller_commands;
pub mod error;
pub mod format;
pub mod message_commands;

use std::io::Write;
use std::time::Duration;

pub use cli::{Cli, Command};
pub use error::AdminError;
pub use rocketmq_client::MqClient;

/// Runs a parsed command line, writing the command's output to `out`.
pub async fn run_cli(cli: &Cli, out: &mut dyn Write) -> Result<(), AdminError> {
    let timeout = Duration::from_millis(cli.timeout_millis);
    // Controller commands need a name server only to look brokers up.
    let namesrv_client = match cli.namesrv_addr.as_deref() {
        Some(list) => Some(MqClient::new(list, timeout)?),
        None => None,
    };
    if let Some(result) =
        controller_commands::run(&cli.command, namesrv_client.as_ref(), timeout, out).await
    {
        result?;
        out.flush()?;
        return Ok(());
    }
    let namesrv = cli
        .namesrv_addr
        .as_deref()
        .ok_or_else(AdminError::no_name_server)?;
    let client = MqClient::new(namesrv, Duration::from_millis(cli.timeout_millis))?;
    commands::run(&client, &cli.command, out).await?;
    out.flush()?;
    Ok(())
}
