//! `mqproxy`: the gRPC proxy of RocketMQ 5 clients. Cluster mode (default) serves the
//! cluster the name servers know; `--mode local` also runs a name server and a broker in
//! this process.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use rocketmq_proxy::local::{LocalCluster, LocalOptions};
use rocketmq_proxy::{ProxyConfig, ProxyServer};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Stateless, over the name servers and brokers of a cluster.
    Cluster,
    /// With a name server and a broker in this process.
    Local,
}

/// RocketMQ proxy (gRPC, apache.rocketmq.v2). Flags override the config file.
#[derive(Parser, Debug)]
#[command(name = "mqproxy", version)]
struct Args {
    /// `cluster` or `local`.
    #[arg(long, value_enum, default_value = "cluster")]
    mode: Mode,
    /// Proxy config file (Java properties).
    #[arg(short = 'c', long = "configFile")]
    config_file: Option<PathBuf>,
    /// Name servers, `host:port;host:port` (cluster mode).
    #[arg(short = 'n', long = "namesrvAddr", env = "NAMESRV_ADDR")]
    namesrv_addr: Option<String>,
    /// gRPC port (default 8081).
    #[arg(long = "grpcServerPort")]
    grpc_port: Option<u16>,
    /// Address to bind (default 0.0.0.0).
    #[arg(long = "bindAddress")]
    bind_address: Option<String>,
    /// Prometheus and health port (default 0: off).
    #[arg(long = "metricsPort")]
    metrics_port: Option<u16>,
    /// Local mode: data directory.
    #[arg(long, default_value = ".local")]
    dir: PathBuf,
    /// Local mode: name server port.
    #[arg(long = "namesrvPort", default_value_t = 9876)]
    namesrv_port: u16,
    /// Local mode: broker port.
    #[arg(long = "brokerPort", default_value_t = 10911)]
    broker_port: u16,
}

fn main() -> ExitCode {
    rocketmq_common::observability::init_logging();
    let args = Args::parse();
    let overrides = [
        ("namesrvAddr", args.namesrv_addr.clone()),
        ("grpcServerPort", args.grpc_port.map(|p| p.to_string())),
        ("bindAddress", args.bind_address.clone()),
        ("metricsPort", args.metrics_port.map(|p| p.to_string())),
    ];
    let props = match rocketmq_common::cli::properties_with_overrides(
        "mqproxy",
        args.config_file.as_deref(),
        &overrides,
    ) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut config = match ProxyConfig::from_properties(&props) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("mqproxy: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match rocketmq_common::cli::server_runtime("mqproxy") {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let local = if args.mode == Mode::Local {
            let options = LocalOptions {
                dir: args.dir.clone(),
                namesrv_port: args.namesrv_port,
                broker_port: args.broker_port,
                namesrv_metrics_port: 0,
                broker_metrics_port: 0,
                broker_config_file: None,
            };
            match LocalCluster::start(&options).await {
                Ok(l) => {
                    config.namesrv_addrs = vec![l.namesrv.local_addr().to_string()];
                    Some(l)
                }
                Err(e) => {
                    eprintln!("mqproxy: {e}");
                    return ExitCode::FAILURE;
                }
            }
        } else {
            None
        };
        let started = match &local {
            Some(l) => ProxyServer::start_beside(config, &l.broker).await,
            None => ProxyServer::start(config).await,
        };
        let proxy = match started {
            Ok(p) => p,
            Err(e) => {
                eprintln!("mqproxy: {e}");
                if let Some(l) = local {
                    l.shutdown().await;
                }
                return ExitCode::FAILURE;
            }
        };
        println!("mqproxy: serving gRPC on {}", proxy.local_addr());
        rocketmq_common::signal::wait_for_termination().await;
        proxy.shutdown().await;
        if let Some(l) = local {
            l.shutdown().await;
        }
        ExitCode::SUCCESS
    })
}
