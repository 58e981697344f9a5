//! The name server: broker registry and topic routes.
//!
//! Entry points: [`NamesrvServer::start`] wires the pieces; [`route_info::RouteInfoManager`]
//! holds the registry; [`processor::dispatcher`] is the table from request code to handler.
//! Several name servers run independently: brokers register with each of them, and they
//! never talk to one another.

pub mod config;
pub mod kv_config;
pub mod processor;
pub mod route_info;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rocketmq_common::remoting::{
    ConnectionHandle, ConnectionListener, RemotingMetrics, RemotingServer, ServerConfig,
    ServerHandle,
};
use rocketmq_controller::ControllerServer;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use config::NamesrvConfig;
use kv_config::KvConfigManager;
use processor::ProcessorSettings;
use route_info::RouteInfoManager;

/// Why the name server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The KV config file could not be loaded.
    #[error(transparent)]
    KvConfig(#[from] kv_config::KvConfigError),
    /// The embedded controller could not start.
    #[error("embedded controller: {0}")]
    Controller(#[from] rocketmq_controller::StartError),
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

/// A running name server.
pub struct NamesrvServer {
    remoting: ServerHandle,
    metrics_addr: Option<SocketAddr>,
    background: CancellationToken,
    routes: Arc<RouteInfoManager>,
    controller: Option<ControllerServer>,
}

struct DropBrokersOnClose(Arc<RouteInfoManager>);

impl ConnectionListener for DropBrokersOnClose {
    fn on_close(&self, connection: &ConnectionHandle) {
        self.0.on_connection_closed(connection.id());
    }
}

impl NamesrvServer {
    /// Loads state and starts serving.
    pub async fn start(config: NamesrvConfig) -> Result<Self, StartError> {
        let kv = Arc::new(KvConfigManager::load(&config.kv_config_path)?);
        let routes = Arc::new(RouteInfoManager::new(
            config.broker_channel_expired_time,
            config.delete_topic_with_broker_registration,
        ));
        let mut registry = Registry::with_prefix("rocketmq_namesrv");
        let remoting_metrics = RemotingMetrics::register(&mut registry);
        let live_brokers: Gauge = Gauge::default();
        let topics: Gauge = Gauge::default();
        registry.register(
            "live_brokers",
            "Broker processes currently registered",
            live_brokers.clone(),
        );
        registry.register("topics", "Topics with a route", topics.clone());

        let dispatcher = processor::dispatcher(
            routes.clone(),
            kv,
            ProcessorSettings {
                order_message_enable: config.order_message_enable,
                enable_all_topic_list: config.enable_all_topic_list,
                enable_topic_list: config.enable_topic_list,
            },
        );
        let server_config = ServerConfig {
            listen_addr: config.listen_addr,
            max_frame_size: config.max_frame_size,
            idle_timeout: config.idle_timeout,
            serialize_type: config.serialize_type,
            ..ServerConfig::default()
        };
        let remoting = RemotingServer::new(server_config, dispatcher)
            .with_connection_listener(Arc::new(DropBrokersOnClose(routes.clone())))
            .with_metrics(remoting_metrics)
            .start()
            .await
            .map_err(|source| StartError::Bind {
                addr: config.listen_addr,
                source,
            })?;

        let background = CancellationToken::new();
        let scan_routes = routes.clone();
        let scan_stop = background.clone();
        let interval = config.scan_not_active_broker_interval;
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = scan_stop.cancelled() => break,
                    _ = ticker.tick() => {}
                }
                scan_routes.scan_not_active_brokers(Instant::now());
                live_brokers.set(scan_routes.live_broker_count() as i64);
                topics.set(scan_routes.topic_count() as i64);
            }
        });

        let metrics_addr = rocketmq_common::observability::serve_metrics_on(
            config.listen_addr.ip(),
            config.metrics_port,
            registry,
            background.clone(),
        )
        .await
        .map_err(|(addr, source)| StartError::Bind { addr, source })?;
        let controller = match config.controller.clone() {
            Some(c) => Some(ControllerServer::start(c).await?),
            None => None,
        };
        info!(addr = %remoting.local_addr(), "name server started");
        Ok(Self {
            remoting,
            metrics_addr,
            background,
            routes,
            controller,
        })
    }

    /// The Remoting address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.remoting.local_addr()
    }

    /// The metrics address actually bound, if enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// The registry (tests, embedding).
    pub fn routes(&self) -> &Arc<RouteInfoManager> {
        &self.routes
    }

    /// The embedded controller, if enabled.
    pub fn controller(&self) -> Option<&ControllerServer> {
        self.controller.as_ref()
    }

    /// Stops accepting, drains in-flight requests, stops background tasks.
    pub async fn shutdown(self) {
        if let Some(c) = self.controller {
            c.shutdown().await;
        }
        self.remoting.shutdown();
        self.background.cancel();
        self.remoting.wait().await;
        info!("name server stopped");
    }
}
