//! `mqcontroller`: starts a controller (one member of the controller group).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rocketmq_controller::{ControllerConfig, ControllerServer};

/// RocketMQ controller. Flags use RocketMQ's key names and override the config file.
#[derive(Parser, Debug)]
#[command(name = "mqcontroller", version)]
struct Args {
    /// Controller config file (Java properties, e.g. controller.conf).
    #[arg(short = 'c', long = "configFile")]
    config_file: Option<PathBuf>,
    /// Print the effective configuration and exit.
    #[arg(short = 'p', long = "printConfigItem")]
    print_config: bool,
    /// Peers: `n0-host:port;n1-host:port;...`.
    #[arg(long = "controllerDLegerPeers")]
    peers: Option<String>,
    /// This controller's peer id. `CONTROLLER_SELF_ID` sets it too: one config file then
    /// serves every member (the operator's pods set it from their ordinal).
    #[arg(long = "controllerDLegerSelfId", env = "CONTROLLER_SELF_ID")]
    self_id: Option<String>,
    /// Where the consensus log and snapshots live.
    #[arg(long = "controllerStorePath")]
    store_path: Option<PathBuf>,
    /// Prometheus port (default 9879; 0 disables).
    #[arg(long = "metricsPort")]
    metrics_port: Option<u16>,
}

fn main() -> ExitCode {
    rocketmq_common::observability::init_logging();
    let args = Args::parse();
    let overrides = [
        ("controllerDLegerPeers", args.peers.clone()),
        ("controllerDLegerSelfId", args.self_id.clone()),
        (
            "controllerStorePath",
            args.store_path.as_ref().map(|p| p.display().to_string()),
        ),
        ("metricsPort", args.metrics_port.map(|p| p.to_string())),
    ];
    let props = match rocketmq_common::cli::properties_with_overrides(
        "mqcontroller",
        args.config_file.as_deref(),
        &overrides,
    ) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let config = match ControllerConfig::from_properties(&props) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mqcontroller: {e}");
            return ExitCode::from(2);
        }
    };
    if args.print_config {
        for (k, v) in config.to_properties() {
            println!("{k}={v}");
        }
        return ExitCode::SUCCESS;
    }
    let runtime = match rocketmq_common::cli::server_runtime("mqcontroller") {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let server = match ControllerServer::start(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("mqcontroller: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!(
            "The controller boot success, address {}",
            server.local_addr()
        );
        rocketmq_common::signal::wait_for_termination().await;
        server.shutdown().await;
        ExitCode::SUCCESS
    })
}
