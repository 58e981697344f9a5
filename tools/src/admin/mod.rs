//! `mqadmin`: RocketMQ's administration commands over the Remoting protocol.
//!
//! - [`cli`] — the command line (RocketMQ's command names and flags);
//! - the requests themselves are [`rocketmq_client::MqClient`]'s (the shared client crate);
//! - [`commands`] — what each command does and prints ([`commands::run`]), with
//!   [`broker_commands`] (broker status and config, client connections, offset resets),
//!   [`message_commands`] (reading and sending messages through the client paths) and
//!   [`controller_commands`] (controller metadata, SyncStateSets, epochs, elections);
//! - [`health`] — `healthCheck`, the container HEALTHCHECK probe;
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
pub mod health;
pub mod message_commands;

use std::io::Write;
use std::time::Duration;

pub use cli::{Cli, Command};
pub use error::AdminError;
pub use rocketmq_client::MqClient;

/// Runs a parsed command line, writing the command's output to `out`.
pub async fn run_cli(cli: &Cli, out: &mut dyn Write) -> Result<(), AdminError> {
    let timeout = Duration::from_millis(cli.timeout_millis);
    if let Command::HealthCheck(a) = &cli.command {
        health::health_check(&a.url, timeout, out).await?;
        out.flush()?;
        return Ok(());
    }
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
    let client = match (cli.namesrv_addr.as_deref(), &cli.command) {
        (Some(namesrv), _) => MqClient::new(namesrv, timeout)?,
        // A send to an explicit broker address asks no name server.
        (None, Command::SendMessage(a)) if a.broker_addr.is_some() => MqClient::with_remoting(
            rocketmq_common::remoting::RemotingClient::new(Default::default()),
            Vec::new(),
            timeout,
        ),
        (None, _) => return Err(AdminError::no_name_server()),
    };
    commands::run(&client, &cli.command, out).await?;
    out.flush()?;
    Ok(())
}
