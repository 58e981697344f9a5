//! `rocketmq-local`: a name server, a broker and a gRPC proxy in one process, data in a
//! local folder — the quickest way to produce and consume on one machine, with Remoting
//! clients (name server 9876) and RocketMQ 5 gRPC clients (proxy 8081) alike.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rocketmq_proxy::local::{LocalCluster, LocalOptions};
use rocketmq_proxy::{ProxyConfig, ProxyServer};

/// Name server on 9876, broker on 10911, gRPC proxy on 8081 (metrics on 9877, 5557 and
/// 5558), data under `--dir`.
#[derive(Parser, Debug)]
#[command(name = "rocketmq-local", version)]
struct Args {
    /// Where the broker keeps its store and the name server its KV config.
    #[arg(long, default_value = ".local")]
    dir: PathBuf,
    /// Name server port.
    #[arg(long, default_value_t = 9876)]
    namesrv_port: u16,
    /// Broker port.
    #[arg(long, default_value_t = 10911)]
    broker_port: u16,
    /// gRPC proxy port (0 picks a free one).
    #[arg(long, default_value_t = 8081)]
    grpc_port: u16,
    /// Name server Prometheus port (0 disables).
    #[arg(long, default_value_t = 9877)]
    namesrv_metrics_port: u16,
    /// Broker Prometheus port (0 disables).
    #[arg(long, default_value_t = 5557)]
    broker_metrics_port: u16,
    /// Proxy Prometheus port (0 disables).
    #[arg(long, default_value_t = 5558)]
    proxy_metrics_port: u16,
    /// Extra broker.conf to apply on top of the defaults.
    #[arg(short = 'c', long = "configFile")]
    config_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    rocketmq_common::observability::init_logging();
    let args = Args::parse();
    let runtime = match rocketmq_common::cli::server_runtime("rocketmq-local") {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let options = LocalOptions {
            dir: args.dir.clone(),
            namesrv_port: args.namesrv_port,
            broker_port: args.broker_port,
            namesrv_metrics_port: args.namesrv_metrics_port,
            broker_metrics_port: args.broker_metrics_port,
            broker_config_file: args.config_file.clone(),
        };
        let local = match LocalCluster::start(&options).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("rocketmq-local: {e}");
                return ExitCode::FAILURE;
            }
        };
        let config = ProxyConfig {
            namesrv_addrs: vec![local.namesrv.local_addr().to_string()],
            listen_addr: ([127, 0, 0, 1], args.grpc_port).into(),
            metrics_port: args.proxy_metrics_port,
            ..ProxyConfig::default()
        };
        let proxy = match ProxyServer::start_beside(config, &local.broker).await {
            Ok(p) => p,
            Err(e) => {
                eprintln!("rocketmq-local: proxy: {e}");
                local.shutdown().await;
                return ExitCode::FAILURE;
            }
        };
        println!(
            "rocketmq-local: name server {}, broker {} and gRPC proxy {} are up (data in {}). \
             Remoting clients: NAMESRV_ADDR={}; RocketMQ 5 clients: endpoint {}. Ctrl-C stops.",
            local.namesrv.local_addr(),
            local.broker.broker_addr(),
            proxy.local_addr(),
            args.dir.display(),
            local.namesrv.local_addr(),
            proxy.local_addr()
        );
        rocketmq_common::signal::wait_for_termination().await;
        proxy.shutdown().await;
        local.shutdown().await;
        ExitCode::SUCCESS
    })
}
