//! Wiring of a proxy: the gRPC listener, the Remoting client (with the handler brokers'
//! transaction checks arrive at), producer heartbeats and the metrics endpoint.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rocketmq_client::MqClient;
use rocketmq_common::protocol::{RemotingCommand, RequestCode};
use rocketmq_common::remoting::{
    ClientConfig, ClientRequestHandler, InProcessEndpoint, RemotingClient,
};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::metrics::ProxyMetrics;
use crate::pb;
use crate::pb::messaging_service_server::MessagingServiceServer;
use crate::service::{Messaging, ProxyCore};

/// Longest a shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How a proxy runs.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Name servers (`namesrvAddr`).
    pub namesrv_addrs: Vec<String>,
    /// gRPC listen address (`grpcServerPort`, 8081 by default).
    pub listen_addr: SocketAddr,
    /// Host clients are told to reach this proxy at when their request does not say how
    /// they reached it (default: the listen address, or 127.0.0.1 for a wildcard one).
    pub advertised_host: Option<String>,
    /// Prometheus and health port (0 disables).
    pub metrics_port: u16,
    /// Largest message body accepted (`maxMessageSize`, 4 MiB).
    pub max_message_size: usize,
    /// Timeout of each request to a name server or broker.
    pub request_timeout: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            namesrv_addrs: vec!["127.0.0.1:9876".into()],
            listen_addr: ([0, 0, 0, 0], 8081).into(),
            advertised_host: None,
            metrics_port: 0,
            max_message_size: 4 << 20,
            request_timeout: Duration::from_secs(3),
        }
    }
}

impl ProxyConfig {
    /// Reads RocketMQ's proxy keys: `namesrvAddr` (`;`-separated), `grpcServerPort`,
    /// `bindAddress`, `advertisedHost`, `metricsPort`, `maxMessageSize`,
    /// `requestTimeoutMillis`.
    pub fn from_properties(props: &rocketmq_common::config::Properties) -> Result<Self, String> {
        let mut c = Self::default();
        if let Some(list) = props.get("namesrvAddr") {
            c.namesrv_addrs = rocketmq_client::api::parse_namesrv_addrs(list);
        }
        let mut port = c.listen_addr.port();
        props
            .apply("grpcServerPort", &mut port)
            .map_err(|e| e.to_string())?;
        let mut ip = c.listen_addr.ip();
        props
            .apply("bindAddress", &mut ip)
            .map_err(|e| e.to_string())?;
        c.listen_addr = SocketAddr::new(ip, port);
        c.advertised_host = props.get("advertisedHost").map(str::to_string);
        props
            .apply("metricsPort", &mut c.metrics_port)
            .map_err(|e| e.to_string())?;
        if let Some(port) = props.java_metrics_port().map_err(|e| e.to_string())? {
            c.metrics_port = port;
        }
        props
            .apply("maxMessageSize", &mut c.max_message_size)
            .map_err(|e| e.to_string())?;
        let mut timeout = c.request_timeout.as_millis() as u64;
        props
            .apply("requestTimeoutMillis", &mut timeout)
            .map_err(|e| e.to_string())?;
        c.request_timeout = Duration::from_millis(timeout.max(1));
        Ok(c)
    }
}

/// Why a proxy did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A port could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The configuration is unusable.
    #[error("{0}")]
    Config(String),
}

/// A running proxy.
pub struct ProxyServer {
    addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    stop: CancellationToken,
    serving: tokio::task::JoinHandle<()>,
    /// The proxy's Remoting client, for releasing its in-process link at shutdown.
    links: RemotingClient,
    /// The broker reached in process (local mode).
    in_process_addr: Option<String>,
}

/// Passes brokers' CHECK_TRANSACTION_STATE requests (oneway) to the proxy's task.
struct TransactionChecks(mpsc::UnboundedSender<(String, RemotingCommand)>);

impl ClientRequestHandler for TransactionChecks {
    fn handle(&self, addr: &str, request: RemotingCommand) -> Option<RemotingCommand> {
        if request.request_code() == Some(RequestCode::CHECK_TRANSACTION_STATE) {
            let _ = self.0.send((addr.to_string(), request));
        }
        None
    }
}

fn endpoints(host: &str, port: u16) -> pb::Endpoints {
    let scheme = match host.parse::<IpAddr>() {
        Ok(IpAddr::V4(_)) => pb::AddressScheme::IPv4,
        Ok(IpAddr::V6(_)) => pb::AddressScheme::IPv6,
        Err(_) => pb::AddressScheme::DomainName,
    };
    pb::Endpoints {
        scheme: scheme as i32,
        addresses: vec![pb::Address {
            host: host.to_string(),
            port: i32::from(port),
        }],
    }
}

impl ProxyServer {
    /// Binds and starts serving.
    pub async fn start(config: ProxyConfig) -> Result<Self, StartError> {
        Self::start_with(config, None).await
    }

    /// Like [`start`](Self::start), for local mode: requests to `broker`, in this process,
    /// go straight to its request handling instead of through a socket (other brokers of
    /// the cluster, if any, are reached over Remoting as usual).
    pub async fn start_beside(
        config: ProxyConfig,
        broker: &rocketmq_broker::BrokerServer,
    ) -> Result<Self, StartError> {
        let addr = broker.broker_addr().to_string();
        Self::start_with(config, Some((addr, broker.in_process()))).await
    }

    async fn start_with(
        config: ProxyConfig,
        in_process: Option<(String, &InProcessEndpoint)>,
    ) -> Result<Self, StartError> {
        if config.namesrv_addrs.is_empty() {
            return Err(StartError::Config(
                "no name server address: set namesrvAddr (-n host:port)".into(),
            ));
        }
        let listener = tokio::net::TcpListener::bind(config.listen_addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.listen_addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen_addr,
            source,
        })?;
        let host = config.advertised_host.clone().unwrap_or_else(|| {
            if addr.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                addr.ip().to_string()
            }
        });
        let (checks_tx, mut checks) = mpsc::unbounded_channel();
        let remoting = RemotingClient::with_handler(
            ClientConfig {
                connect_timeout: config.request_timeout,
                ..ClientConfig::default()
            },
            Arc::new(TransactionChecks(checks_tx)),
        );
        // The broker sees the proxy at its gRPC address (the born host of what it sends).
        let in_process_addr = in_process.map(|(broker, endpoint)| {
            remoting.attach_in_process(&broker, endpoint, addr);
            broker
        });
        let links = remoting.clone();
        let client = MqClient::with_remoting(
            remoting,
            config.namesrv_addrs.clone(),
            config.request_timeout,
        );
        let mut registry = prometheus_client::registry::Registry::with_prefix("rocketmq_proxy");
        let metrics = ProxyMetrics::register(&mut registry);
        let stop = CancellationToken::new();
        let core = ProxyCore::new(
            client,
            endpoints(&host, addr.port()),
            config.max_message_size,
            metrics,
            stop.clone(),
        );
        tokio::spawn(core.clone().run_producer_heartbeats(stop.clone()));
        {
            let core = core.clone();
            let stop = stop.clone();
            // Ends with the proxy: it holds the core, whose client holds this channel's
            // sender, so waiting for the channel to close would never end.
            tokio::spawn(async move {
                loop {
                    let (broker, request) = tokio::select! {
                        _ = stop.cancelled() => break,
                        next = checks.recv() => match next {
                            Some(check) => check,
                            None => break,
                        },
                    };
                    core.on_transaction_check(broker, request).await;
                }
            });
        }
        let metrics_addr = rocketmq_common::observability::serve_metrics_on(
            addr.ip(),
            config.metrics_port,
            registry,
            stop.clone(),
        )
        .await
        .map_err(|(addr, source)| StartError::Bind { addr, source })?;
        let service = MessagingServiceServer::new(Messaging::new(core))
            .max_decoding_message_size(config.max_message_size + (1 << 20))
            .max_encoding_message_size(usize::MAX);
        let shutdown = stop.clone();
        let serving = tokio::spawn(async move {
            // Responses go out in several small writes (headers, messages, trailers): without
            // TCP_NODELAY each one waits for the peer's delayed ACK (40 ms).
            let incoming = tonic::transport::server::TcpIncoming::from(listener)
                .with_nodelay(Some(true))
                .with_keepalive(Some(Duration::from_secs(60)));
            if let Err(e) = tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                .await
            {
                tracing::error!(error = %e, "gRPC server failed");
            }
        });
        info!(addr = %addr, namesrv = ?config.namesrv_addrs, "proxy serving gRPC (apache.rocketmq.v2)");
        Ok(Self {
            addr,
            metrics_addr,
            stop,
            serving,
            links,
            in_process_addr,
        })
    }

    /// The gRPC address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics address, when enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Stops accepting, ends telemetry streams, lets requests in flight (held receives
    /// included, at most 20 s) finish, then returns; connections still open after 30 s are
    /// dropped.
    pub async fn shutdown(mut self) {
        info!("proxy shutting down: draining requests in flight");
        self.stop.cancel();
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut self.serving)
            .await
            .is_err()
        {
            tracing::warn!(
                "requests still in flight after {SHUTDOWN_GRACE:?}; closing their connections"
            );
            self.serving.abort();
        }
        // Releases the broker beside a local-mode proxy: it sees the connection close.
        if let Some(broker) = &self.in_process_addr {
            self.links.detach_in_process(broker);
        }
    }
}
