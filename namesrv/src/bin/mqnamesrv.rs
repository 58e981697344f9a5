//! `mqnamesrv`: starts a name server.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rocketmq_namesrv::{NamesrvConfig, NamesrvServer};

/// RocketMQ name server. Flags use RocketMQ's names and override the config file.
#[derive(Parser, Debug)]
#[command(name = "mqnamesrv", version)]
struct Args {
    /// Name server config file (Java properties, e.g. namesrv.conf).
    #[arg(short = 'c', long = "configFile")]
    config_file: Option<PathBuf>,
    /// Print the effective configuration and exit.
    #[arg(short = 'p', long = "printConfigItem")]
    print_config: bool,
    /// Remoting port (default 9876).
    #[arg(long = "listenPort")]
    listen_port: Option<u16>,
    /// Address to bind (default 0.0.0.0).
    #[arg(long = "bindAddress")]
    bind_address: Option<String>,
    /// Prometheus port (default 9877; 0 disables).
    #[arg(long = "metricsPort")]
    metrics_port: Option<u16>,
    /// KV config file (default ~/namesrv/kvConfig.json).
    #[arg(long = "kvConfigPath")]
    kv_config_path: Option<PathBuf>,
}

fn main() -> ExitCode {
    rocketmq_common::observability::init_logging();
    let args = Args::parse();
    let overrides = [
        ("listenPort", args.listen_port.map(|p| p.to_string())),
        ("bindAddress", args.bind_address.clone()),
        ("metricsPort", args.metrics_port.map(|p| p.to_string())),
        (
            "kvConfigPath",
            args.kv_config_path
                .as_ref()
                .map(|p| p.display().to_string()),
        ),
    ];
    let props = match rocketmq_common::cli::properties_with_overrides(
        "mqnamesrv",
        args.config_file.as_deref(),
        &overrides,
    ) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut config = NamesrvConfig::default();
    if let Some(serialize) = std::env::var("ROCKETMQ_SERIALIZE_TYPE")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        config.serialize_type = serialize;
    }
    if let Err(e) = config.apply(&props) {
        eprintln!("mqnamesrv: {e}");
        return ExitCode::from(2);
    }
    if args.print_config {
        print!("{}", config.to_properties_text());
        return ExitCode::SUCCESS;
    }
    let runtime = match rocketmq_common::cli::server_runtime("mqnamesrv") {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let serialize_type = config.serialize_type.java_name();
    runtime.block_on(async move {
        let server = match NamesrvServer::start(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("mqnamesrv: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!(
            "The Name Server boot success. serializeType={serialize_type}, address {}",
            server.local_addr()
        );
        rocketmq_common::signal::wait_for_termination().await;
        server.shutdown().await;
        ExitCode::SUCCESS
    })
}
