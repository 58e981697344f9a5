//! Wiring of a broker process: store, metadata, processors, name server registration,
//! background maintenance and metrics. Entry point: [`BrokerServer::start`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use rocketmq_common::remoting::{
    ClientConfig, ConnectionHandle, ConnectionListener, InProcessEndpoint, RemotingClient,
    RemotingMetrics, RemotingServer, ServerConfig, ServerHandle,
};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::clients::ClientManager;
use crate::config::{BrokerConfig, LiveConfig};
use crate::ha::Replication;
use crate::ha::controller_mode::ControllerLink;
use crate::long_polling::LongPolling;
use crate::metadata::{
    ConsumerOffsetManager, MetadataError, SubscriptionGroupManager, TopicConfigManager,
};
use crate::processor::{self, BrokerContext};
use crate::registration::NamesrvRegistration;
use crate::schedule::{DelayLevels, ScheduleMessageService};
use crate::stats::BrokerStats;
use crate::timer::TimerMessageStore;
use rocketmq_store::{MessageStore, StoreError};

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store could not be opened or recovered.
    #[error("message store: {0}")]
    Store(#[from] StoreError),
    /// Metadata files could not be loaded.
    #[error("metadata: {0}")]
    Metadata(#[from] MetadataError),
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
    /// Invalid setting.
    #[error("{0}")]
    Config(String),
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabels {
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GroupTopicLabels {
    group: String,
    topic: String,
}

/// The broker's Prometheus metrics.
#[derive(Clone)]
pub struct BrokerMetrics {
    messages_in: Family<TopicLabels, Counter<u64, AtomicU64>>,
    bytes_in: Family<TopicLabels, Counter<u64, AtomicU64>>,
    messages_out: Family<GroupTopicLabels, Counter<u64, AtomicU64>>,
    bytes_out: Family<GroupTopicLabels, Counter<u64, AtomicU64>>,
    put_latency: Histogram,
    consumer_lag: Family<GroupTopicLabels, Gauge<i64, AtomicI64>>,
    timer_lag: Gauge<i64, AtomicI64>,
    timer_backlog: Gauge<i64, AtomicI64>,
    is_master: Gauge<i64, AtomicI64>,
    master_epoch: Gauge<i64, AtomicI64>,
    slaves: Gauge<i64, AtomicI64>,
    unconfirmed_bytes: Gauge<i64, AtomicI64>,
    commitlog_bytes: Gauge<i64, AtomicI64>,
    disk_used_ratio: Gauge<f64, AtomicU64>,
    /// Totals and rates for GET_BROKER_RUNTIME_INFO.
    pub stats: Arc<BrokerStats>,
}

impl BrokerMetrics {
    fn register(registry: &mut Registry) -> Self {
        let m = Self {
            messages_in: Family::default(),
            bytes_in: Family::default(),
            messages_out: Family::default(),
            bytes_out: Family::default(),
            // 10 µs .. ~10 s: page-cache appends up to a stuck SYNC_FLUSH.
            put_latency: Histogram::new(exponential_buckets(1e-5, 4.0, 12)),
            consumer_lag: Family::default(),
            timer_lag: Gauge::default(),
            timer_backlog: Gauge::default(),
            is_master: Gauge::default(),
            master_epoch: Gauge::default(),
            slaves: Gauge::default(),
            unconfirmed_bytes: Gauge::default(),
            commitlog_bytes: Gauge::default(),
            disk_used_ratio: Gauge::default(),
            stats: Arc::new(BrokerStats::new()),
        };
        registry.register(
            "messages_in",
            "Messages stored, by topic",
            m.messages_in.clone(),
        );
        registry.register(
            "bytes_in",
            "Message body bytes stored, by topic",
            m.bytes_in.clone(),
        );
        registry.register(
            "messages_out",
            "Messages returned to pulls, by group and topic",
            m.messages_out.clone(),
        );
        registry.register(
            "bytes_out",
            "Record bytes returned to pulls, by group and topic",
            m.bytes_out.clone(),
        );
        registry.register(
            "store_put_latency_seconds",
            "Time from the start of a put to its durability per the flush policy",
            m.put_latency.clone(),
        );
        registry.register(
            "consumer_lag_messages",
            "Messages stored but not yet committed by the group, by group and topic",
            m.consumer_lag.clone(),
        );
        registry.register(
            "timer_dequeue_lag_milliseconds",
            "How far timer delivery is behind the clock",
            m.timer_lag.clone(),
        );
        registry.register(
            "timer_enqueue_backlog_messages",
            "Timer messages stored but not yet placed on the wheel",
            m.timer_backlog.clone(),
        );
        registry.register(
            "replication_is_master",
            "1 while this broker is its group's master",
            m.is_master.clone(),
        );
        registry.register(
            "replication_master_epoch",
            "Master epoch of the role this broker holds (controller mode)",
            m.master_epoch.clone(),
        );
        registry.register(
            "replication_slaves_connected",
            "Slaves following this broker over the HA stream",
            m.slaves.clone(),
        );
        registry.register(
            "replication_unconfirmed_bytes",
            "CommitLog bytes not yet confirmed by the replicas (not yet readable)",
            m.unconfirmed_bytes.clone(),
        );
        registry.register(
            "store_commitlog_bytes",
            "CommitLog bytes held on disk (max minus min offset)",
            m.commitlog_bytes.clone(),
        );
        registry.register(
            "store_disk_used_ratio",
            "Used fraction of the file system holding the store (the cleanup and write-refusal thresholds apply to it)",
            m.disk_used_ratio.clone(),
        );
        m
    }

    /// A metrics set not exported anywhere (tests, embedding).
    pub fn unregistered() -> Self {
        Self::register(&mut Registry::default())
    }

    /// Records a put of messages with `body_sizes` that took `latency`.
    pub fn record_put(&self, topic: &str, body_sizes: &[usize], latency: Duration) {
        let labels = TopicLabels {
            topic: topic.to_string(),
        };
        self.messages_in
            .get_or_create(&labels)
            .inc_by(body_sizes.len() as u64);
        self.bytes_in
            .get_or_create(&labels)
            .inc_by(body_sizes.iter().sum::<usize>() as u64);
        self.put_latency.observe(latency.as_secs_f64());
        self.stats.record_put(
            body_sizes.len() as u64,
            body_sizes.iter().sum::<usize>() as u64,
            latency,
        );
    }

    /// Records a pull's result.
    pub fn record_pull(&self, topic: &str, group: &str, messages: usize, bytes: usize) {
        self.stats.record_get(messages as u64);
        if messages == 0 {
            return;
        }
        let labels = GroupTopicLabels {
            group: group.to_string(),
            topic: topic.to_string(),
        };
        self.messages_out
            .get_or_create(&labels)
            .inc_by(messages as u64);
        self.bytes_out.get_or_create(&labels).inc_by(bytes as u64);
    }
}

/// Drops a closed connection's clients and tells their groups.
struct ClientCleanup(Arc<ClientManager>);

impl ConnectionListener for ClientCleanup {
    fn on_close(&self, connection: &ConnectionHandle) {
        for group in self.0.on_connection_closed(connection.id()) {
            self.0.notify_consumer_ids_changed(&group);
        }
    }
}

/// A running broker.
pub struct BrokerServer {
    ctx: Arc<BrokerContext>,
    remoting: ServerHandle,
    in_process: InProcessEndpoint,
    background: CancellationToken,
    metrics_addr: Option<SocketAddr>,
}

impl BrokerServer {
    /// Opens (and if needed recovers) the store, loads metadata and starts serving.
    pub async fn start(config: BrokerConfig) -> Result<Self, StartError> {
        if config.listen_port == 0 {
            return Err(StartError::Config(
                "listenPort must be set: the broker announces it to name servers and writes it into message ids".into(),
            ));
        }
        let store_host = config.broker_addr();
        let mut store_config = config.store.clone();
        // Controller mode: consumers read only what every required replica holds.
        store_config.read_confirmed_only = config.ha.enable_controller_mode;
        let store =
            tokio::task::spawn_blocking(move || MessageStore::open(store_config, store_host))
                .await
                .map_err(|e| StartError::Config(format!("store open task failed: {e}")))??;
        let store = Arc::new(store);
        let report = store.recovery_report();
        info!(?report, "message store open");

        let replication = Arc::new(
            Replication::new(
                config.ha.clone(),
                store.clone(),
                &config.broker_cluster_name,
                &config.broker_name,
                config.broker_id,
            )
            .map_err(|e| StartError::Store(StoreError::Io(e)))?,
        );
        let config_dir = config.store.store_path_root_dir.join("config");
        let topics = Arc::new(TopicConfigManager::load(
            config_dir.join("topics.json"),
            &config.broker_cluster_name,
            &config.broker_name,
            config.auto_create_topic_enable,
            config.default_topic_queue_nums,
            config.timer.enable,
        )?);
        let groups = Arc::new(SubscriptionGroupManager::load(
            config_dir.join("subscriptionGroup.json"),
        )?);
        let offsets = Arc::new(ConsumerOffsetManager::load(
            config_dir.join("consumerOffset.json"),
        )?);
        let clients = Arc::new(ClientManager::default());
        let long_polling = Arc::new(LongPolling::default());
        store.set_message_arrival_listener(long_polling.clone());
        let levels = DelayLevels::parse(&config.message_delay_level)
            .map_err(|e| StartError::Config(format!("messageDelayLevel: {e}")))?;
        let schedule = Arc::new(ScheduleMessageService::load(
            config_dir.join("delayOffset.json"),
            levels,
            replication.clone(),
            long_polling.clone(),
        )?);

        let timer = if config.timer.enable {
            let (root, timer_config, replication, arrivals) = (
                config.store.store_path_root_dir.clone(),
                config.timer.clone(),
                replication.clone(),
                long_polling.clone(),
            );
            let timer = tokio::task::spawn_blocking(move || {
                TimerMessageStore::open(&root, timer_config, replication, arrivals)
            })
            .await
            .map_err(|e| StartError::Config(format!("timer open task failed: {e}")))??;
            Some(Arc::new(timer))
        } else {
            None
        };

        let mut registry = Registry::with_prefix("rocketmq_broker");
        let remoting_metrics = RemotingMetrics::register(&mut registry);
        let metrics = BrokerMetrics::register(&mut registry);
        let live = Arc::new(LiveConfig::new(&config));
        let registration = Arc::new(NamesrvRegistration::new(
            RemotingClient::new(ClientConfig::default()),
            config.clone(),
            live.clone(),
            topics.clone(),
            replication.clone(),
        ));
        let controller = config.ha.enable_controller_mode.then(|| {
            Arc::new(ControllerLink::new(
                replication.clone(),
                &config.broker_cluster_name,
                &config.broker_name,
                store_host.to_string(),
            ))
        });
        let ctx = Arc::new(BrokerContext {
            config: config.clone(),
            live,
            store_host,
            store,
            topics,
            groups,
            offsets,
            clients: clients.clone(),
            long_polling,
            schedule: schedule.clone(),
            timer: timer.clone(),
            filters: Arc::new(crate::filter::FilterCompiler::new(
                config.enable_property_filter,
            )),
            locks: Arc::new(crate::locks::QueueLockManager::new(
                config.rebalance_lock_max_live_time,
            )),
            pop: Arc::new(crate::pop::PopState::load(
                config_dir.join("messageRequestMode.json"),
            )),
            registration: registration.clone(),
            replication: replication.clone(),
            controller: controller.clone(),
            metrics,
            shutting_down: Default::default(),
            in_flight_puts: Default::default(),
        });

        let listen_addr = SocketAddr::new(config.bind_address, config.listen_port);
        let remoting = RemotingServer::new(
            ServerConfig {
                listen_addr,
                max_buffered_frame_bytes: config.server_max_buffered_frame_bytes,
                max_connections: config.server_max_connections,
                ..ServerConfig::default()
            },
            processor::dispatcher(ctx.clone()),
        )
        .with_connection_listener(Arc::new(ClientCleanup(clients)))
        .with_metrics(remoting_metrics);
        let in_process = remoting.in_process();
        let remoting = remoting.start().await.map_err(|source| StartError::Bind {
            addr: listen_addr,
            source,
        })?;

        let background = CancellationToken::new();
        let ha_addr = SocketAddr::new(config.bind_address, config.ha_listen_port());
        let ha_listener =
            crate::ha::master::bind(ha_addr)
                .await
                .map_err(|source| StartError::Bind {
                    addr: ha_addr,
                    source,
                })?;
        tokio::spawn(crate::ha::master::serve(
            ha_listener,
            replication.clone(),
            background.clone(),
        ));
        tokio::spawn(crate::ha::slave::run(
            replication.clone(),
            background.clone(),
        ));
        if let Some(link) = &controller {
            tokio::spawn(link.clone().run(background.clone()));
        }
        tokio::spawn(crate::ha::metadata_sync::run(
            ctx.clone(),
            background.clone(),
        ));
        tokio::spawn(registration.run(background.clone()));
        tokio::spawn(maintain(ctx.clone(), background.clone()));
        tokio::spawn(sample_stats(ctx.metrics.stats.clone(), background.clone()));
        schedule.start(background.clone());
        if let Some(timer) = &timer {
            timer.start(background.clone());
        }
        tokio::spawn(crate::transaction::run_check_service(
            ctx.clone(),
            background.clone(),
        ));
        tokio::spawn(crate::pop::run_revive_service(
            ctx.clone(),
            background.clone(),
        ));
        let metrics_addr = rocketmq_common::observability::serve_metrics_on(
            config.bind_address,
            config.metrics_port,
            registry,
            background.clone(),
        )
        .await
        .map_err(|(addr, source)| StartError::Bind { addr, source })?;
        info!(addr = %store_host, cluster = %config.broker_cluster_name, broker = %config.broker_name, "broker started");
        Ok(Self {
            ctx,
            remoting,
            in_process,
            background,
            metrics_addr,
        })
    }

    /// The address clients use.
    pub fn broker_addr(&self) -> SocketAddr {
        self.ctx.store_host
    }

    /// This broker's request handling for clients in the same process (a proxy in local
    /// mode), reached as [`broker_addr`](Self::broker_addr) without a socket.
    pub fn in_process(&self) -> &InProcessEndpoint {
        &self.in_process
    }

    /// The bound metrics address, if enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Shared state (tests, embedding).
    pub fn context(&self) -> &Arc<BrokerContext> {
        &self.ctx
    }

    /// Graceful shutdown: refuse new sends, unregister from name servers, drain requests,
    /// flush offsets, and close the store cleanly (next start skips crash recovery).
    pub async fn shutdown(self) {
        self.ctx.shutting_down.store(true, Ordering::Release);
        self.ctx.registration.unregister_all().await;
        self.remoting.shutdown();
        self.remoting.wait().await;
        self.background.cancel();
        let ctx = self.ctx.clone();
        processor::blocking(move || {
            if let Err(e) = ctx.offsets.flush() {
                error!(error = %e, "flushing consumer offsets at shutdown failed");
            }
            if let Err(e) = ctx.schedule.flush() {
                error!(error = %e, "flushing delay offsets at shutdown failed");
            }
            if let Some(timer) = &ctx.timer
                && let Err(e) = timer.flush()
            {
                error!(error = %e, "flushing the timer at shutdown failed");
            }
        })
        .await;
        let store = self.ctx.store.clone();
        match tokio::task::spawn_blocking(move || store.shutdown()).await {
            Ok(Ok(())) => info!("broker stopped"),
            Ok(Err(e)) => {
                error!(error = %e, "store shutdown failed; next start runs crash recovery")
            }
            Err(e) => error!(error = %e, "store shutdown task failed"),
        }
    }
}

/// One statistics sample per second (rates over 10 s / 1 min / 10 min).
async fn sample_stats(stats: Arc<BrokerStats>, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => stats.sample(),
        }
    }
}

/// Periodic work: flush consumer offsets, expire silent clients, refresh lag gauges.
async fn maintain(ctx: Arc<BrokerContext>, stop: CancellationToken) {
    let mut ticker = tokio::time::interval(ctx.config.flush_consumer_offset_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        // File writes (fsync + rename) run on the blocking pool.
        let flushed = ctx.clone();
        let (offsets, delays) =
            processor::blocking(move || (flushed.offsets.flush(), flushed.schedule.flush())).await;
        if let Err(e) = offsets {
            warn!(error = %e, "flushing consumer offsets failed; will retry");
        }
        if let Err(e) = delays {
            warn!(error = %e, "flushing delay offsets failed; will retry");
        }
        for group in ctx
            .clients
            .scan_expired(Instant::now(), ctx.config.channel_expired_timeout)
        {
            ctx.clients.notify_consumer_ids_changed(&group);
        }
        update_lag(&ctx);
    }
}

fn update_lag(ctx: &BrokerContext) {
    let role = ctx.replication.role_state();
    let m = &ctx.metrics;
    m.is_master
        .set(i64::from(role.role == crate::ha::Role::Master));
    m.master_epoch.set(i64::from(role.master_epoch));
    m.slaves.set(ctx.replication.slave_acks().len() as i64);
    m.unconfirmed_bytes
        .set((ctx.store.commitlog().max_offset() - ctx.store.confirm_offset()).max(0));
    let commitlog = ctx.store.commitlog();
    m.commitlog_bytes
        .set((commitlog.max_offset() - commitlog.min_offset()).max(0));
    if let Ok(ratio) =
        rocketmq_store::cleanup::disk_usage_ratio(&ctx.store.config().store_path_root_dir)
    {
        m.disk_used_ratio.set(ratio);
    }
    if let Some(timer) = &ctx.timer {
        ctx.metrics.timer_lag.set(timer.dequeue_lag_ms());
        ctx.metrics.timer_backlog.set(timer.enqueue_backlog());
    }
    for (group, topic, committed) in ctx.offsets.all_offsets() {
        let lag: i64 = committed
            .iter()
            .map(|(queue, offset)| (ctx.store.max_offset_in_queue(&topic, *queue) - offset).max(0))
            .sum();
        ctx.metrics
            .consumer_lag
            .get_or_create(&GroupTopicLabels { group, topic })
            .set(lag);
    }
}
