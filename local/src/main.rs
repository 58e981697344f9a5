//! `rocketmq-local`: a name server and a broker in one process, data in a local folder —
//! the quickest way to produce and consume on one machine.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rocketmq_broker::{BrokerConfig, BrokerServer};
use rocketmq_common::config::Properties;
use rocketmq_namesrv::{NamesrvConfig, NamesrvServer};

/// Name server on 9876 and broker on 10911 (metrics on 9877 and 5557), data under `--dir`.
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
    /// Name server Prometheus port (0 disables).
    #[arg(long, default_value_t = 9877)]
    namesrv_metrics_port: u16,
    /// Broker Prometheus port (0 disables).
    #[arg(long, default_value_t = 5557)]
    broker_metrics_port: u16,
    /// Extra broker.conf to apply on top of the defaults.
    #[arg(short = 'c', long = "configFile")]
    config_file: Option<PathBuf>,
}

fn main() -> ExitCode {
    rocketmq_common::observability::init_logging();
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rocketmq-local: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let namesrv = match NamesrvServer::start(NamesrvConfig {
            listen_addr: ([127, 0, 0, 1], args.namesrv_port).into(),
            kv_config_path: args.dir.join("namesrv").join("kvConfig.json"),
            metrics_port: args.namesrv_metrics_port,
            ..NamesrvConfig::default()
        })
        .await
        {
            Ok(n) => n,
            Err(e) => {
                eprintln!("rocketmq-local: name server: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut props = match &args.config_file {
            Some(path) => match Properties::load(path) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("rocketmq-local: {e}");
                    return ExitCode::from(2);
                }
            },
            None => Properties::default(),
        };
        props.set("namesrvAddr", namesrv.local_addr().to_string());
        props.set("listenPort", args.broker_port.to_string());
        props.set("bindAddress", "127.0.0.1");
        props.set("metricsPort", args.broker_metrics_port.to_string());
        props.set("brokerIP1", "127.0.0.1");
        if props.get("storePathRootDir").is_none() {
            props.set(
                "storePathRootDir",
                args.dir.join("store").display().to_string(),
            );
        }
        let config = match BrokerConfig::from_properties(&props) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("rocketmq-local: {e}");
                return ExitCode::from(2);
            }
        };
        let broker = match BrokerServer::start(config).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("rocketmq-local: broker: {e}");
                namesrv.shutdown().await;
                return ExitCode::FAILURE;
            }
        };
        println!(
            "rocketmq-local: name server {} and broker {} are up (data in {}). \
             Try: NAMESRV_ADDR={} mqbench produce -n $NAMESRV_ADDR; Ctrl-C stops.",
            namesrv.local_addr(),
            broker.broker_addr(),
            args.dir.display(),
            namesrv.local_addr()
        );
        rocketmq_common::signal::wait_for_termination().await;
        broker.shutdown().await;
        namesrv.shutdown().await;
        ExitCode::SUCCESS
    })
}
