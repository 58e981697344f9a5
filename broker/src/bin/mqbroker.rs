//! `mqbroker`: starts a broker.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rocketmq_broker::{BrokerConfig, BrokerServer};

/// RocketMQ broker. Flags use RocketMQ's names and override the config file.
#[derive(Parser, Debug)]
#[command(name = "mqbroker", version)]
struct Args {
    /// Broker config file (Java properties, e.g. broker.conf).
    #[arg(short = 'c', long = "configFile")]
    config_file: Option<PathBuf>,
    /// Print the effective store and broker keys and exit.
    #[arg(short = 'p', long = "printConfigItem")]
    print_config: bool,
    /// Name server list, `host:port;host:port` (default: the NAMESRV_ADDR environment variable).
    #[arg(short = 'n', long = "namesrvAddr", env = "NAMESRV_ADDR")]
    namesrv_addr: Option<String>,
    /// Remoting port (default 10911).
    #[arg(long = "listenPort")]
    listen_port: Option<u16>,
    /// Address announced to clients (default: the bind address, else this host's first non-loopback IPv4 address).
    #[arg(long = "brokerIP1")]
    broker_ip1: Option<String>,
    /// File holding brokerIP1, waited for until it exists and is not empty (an operator
    /// writes it once the address clients reach this broker at is known).
    #[arg(long = "brokerIP1File", conflicts_with = "broker_ip1")]
    broker_ip1_file: Option<PathBuf>,
    /// Address replicas reach the HA listener at (default: brokerIP1).
    #[arg(long = "brokerIP2")]
    broker_ip2: Option<String>,
    /// Store root directory (default ~/store).
    #[arg(long = "storePathRootDir")]
    store_path_root_dir: Option<PathBuf>,
    /// Prometheus port (default 5557; 0 disables).
    #[arg(long = "metricsPort")]
    metrics_port: Option<u16>,
    /// Broker group name (default broker-a).
    #[arg(long = "brokerName")]
    broker_name: Option<String>,
    /// Cluster name (default DefaultCluster).
    #[arg(long = "brokerClusterName")]
    broker_cluster_name: Option<String>,
}

fn main() -> ExitCode {
    rocketmq_common::observability::init_logging();
    let mut args = Args::parse();
    if let Some(path) = &args.broker_ip1_file {
        args.broker_ip1 = Some(rocketmq_broker::config::wait_for_address_file(
            path,
            std::time::Duration::from_secs(2),
        ));
    }
    let overrides = [
        ("namesrvAddr", args.namesrv_addr.clone()),
        ("listenPort", args.listen_port.map(|p| p.to_string())),
        ("brokerIP1", args.broker_ip1.clone()),
        ("brokerIP2", args.broker_ip2.clone()),
        (
            "storePathRootDir",
            args.store_path_root_dir
                .as_ref()
                .map(|p| p.display().to_string()),
        ),
        ("metricsPort", args.metrics_port.map(|p| p.to_string())),
        ("brokerName", args.broker_name.clone()),
        ("brokerClusterName", args.broker_cluster_name.clone()),
    ];
    let props = match rocketmq_common::cli::properties_with_overrides(
        "mqbroker",
        args.config_file.as_deref(),
        &overrides,
    ) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let config = match BrokerConfig::from_properties(&props) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mqbroker: {e}");
            return ExitCode::from(2);
        }
    };
    if args.print_config {
        println!("{config:#?}");
        return ExitCode::SUCCESS;
    }
    let runtime = match rocketmq_common::cli::server_runtime("mqbroker") {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let server = match BrokerServer::start(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("mqbroker: {e}");
                return ExitCode::FAILURE;
            }
        };
        println!("The broker[{}] boot success.", server.broker_addr());
        rocketmq_common::signal::wait_for_termination().await;
        server.shutdown().await;
        ExitCode::SUCCESS
    })
}
