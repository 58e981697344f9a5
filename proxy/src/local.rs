//! Local mode: a name server and a broker in this process, for `mqproxy --mode local` and
//! `rocketmq-local`.

use std::path::{Path, PathBuf};

use rocketmq_broker::{BrokerConfig, BrokerServer};
use rocketmq_common::config::Properties;
use rocketmq_namesrv::{NamesrvConfig, NamesrvServer};

/// Where and how the embedded servers run.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Data directory (store and KV config).
    pub dir: PathBuf,
    /// Name server port.
    pub namesrv_port: u16,
    /// Broker port.
    pub broker_port: u16,
    /// Name server metrics port (0 disables).
    pub namesrv_metrics_port: u16,
    /// Broker metrics port (0 disables).
    pub broker_metrics_port: u16,
    /// Extra broker.conf applied over the defaults.
    pub broker_config_file: Option<PathBuf>,
}

/// The embedded servers.
pub struct LocalCluster {
    /// The name server.
    pub namesrv: NamesrvServer,
    /// The broker.
    pub broker: BrokerServer,
}

impl LocalCluster {
    /// Starts a name server, then a broker registered with it.
    pub async fn start(o: &LocalOptions) -> Result<Self, String> {
        let namesrv = NamesrvServer::start(NamesrvConfig {
            listen_addr: ([127, 0, 0, 1], o.namesrv_port).into(),
            kv_config_path: o.dir.join("namesrv").join("kvConfig.json"),
            metrics_port: o.namesrv_metrics_port,
            ..NamesrvConfig::default()
        })
        .await
        .map_err(|e| format!("name server: {e}"))?;
        let config = match broker_config(o, &namesrv.local_addr().to_string()) {
            Ok(c) => c,
            Err(e) => {
                namesrv.shutdown().await;
                return Err(e);
            }
        };
        let broker = match BrokerServer::start(config).await {
            Ok(b) => b,
            Err(e) => {
                namesrv.shutdown().await;
                return Err(format!("broker: {e}"));
            }
        };
        Ok(Self { namesrv, broker })
    }

    /// Stops the broker, then the name server.
    pub async fn shutdown(self) {
        self.broker.shutdown().await;
        self.namesrv.shutdown().await;
    }
}

fn broker_config(o: &LocalOptions, namesrv: &str) -> Result<BrokerConfig, String> {
    let mut props = match &o.broker_config_file {
        Some(path) => Properties::load(path).map_err(|e| e.to_string())?,
        None => Properties::default(),
    };
    props.set("namesrvAddr", namesrv.to_string());
    props.set("listenPort", o.broker_port.to_string());
    props.set("bindAddress", "127.0.0.1");
    props.set("metricsPort", o.broker_metrics_port.to_string());
    props.set("brokerIP1", "127.0.0.1");
    if props.get("storePathRootDir").is_none() {
        props.set("storePathRootDir", store_dir(&o.dir).display().to_string());
    }
    BrokerConfig::from_properties(&props).map_err(|e| e.to_string())
}

fn store_dir(dir: &Path) -> PathBuf {
    dir.join("store")
}
