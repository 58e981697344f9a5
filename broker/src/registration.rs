//! Registration with the name servers (`BrokerOuterAPI`): the broker registers its topics
//! with every name server at start, every `registerNameServerPeriod` (30 s), and at once
//! after its topics change; it unregisters on graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use rocketmq_client::MqClient;
use rocketmq_common::protocol::headers::namesrv::{
    RegisterBrokerRequestHeader, UnregisterBrokerRequestHeader,
};
use rocketmq_common::remoting::RemotingClient;
use rocketmq_common::route::{PERM_READ, PERM_WRITE, RegisterBrokerBody};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::config::{BrokerConfig, LiveConfig};
use crate::ha::{Replication, Role};
use crate::metadata::TopicConfigManager;

/// Java's `registerBrokerTimeoutMills`.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(24);

/// Talks to the name servers on the broker's behalf.
pub struct NamesrvRegistration {
    client: MqClient,
    config: BrokerConfig,
    live: Arc<LiveConfig>,
    topics: Arc<TopicConfigManager>,
    replication: Arc<Replication>,
    changed: Notify,
}

impl NamesrvRegistration {
    /// A registration for the broker described by `config`.
    pub fn new(
        client: RemotingClient,
        config: BrokerConfig,
        live: Arc<LiveConfig>,
        topics: Arc<TopicConfigManager>,
        replication: Arc<Replication>,
    ) -> Self {
        Self {
            client: MqClient::with_remoting(
                client,
                config.namesrv_addr.clone(),
                Duration::from_secs(3),
            ),
            config,
            live,
            topics,
            replication,
            changed: Notify::new(),
        }
    }

    /// Asks for a registration now (topics changed).
    pub fn trigger(&self) {
        self.changed.notify_one();
    }

    /// Registers with every name server concurrently; returns how many accepted. The id is
    /// the role's (0 on the master), the state version the master epoch, and a slave
    /// learns its master's HA address from the answers.
    pub async fn register_all(&self) -> usize {
        let mut snapshot = self.topics.snapshot();
        snapshot.data_version.state_version = self.replication.state_version();
        let broker_id = self.replication.namesrv_broker_id();
        // A broker that may not be written (or read) announces every topic with its own
        // permission, so clients stop routing sends (or pulls) to it.
        let permission = self.live.broker_permission();
        if permission & (PERM_READ | PERM_WRITE) != PERM_READ | PERM_WRITE {
            for topic in snapshot.topic_config_table.values_mut() {
                topic.perm = permission;
            }
        }
        let body = RegisterBrokerBody {
            filter_server_list: Vec::new(),
            topic_config_serialize_wrapper: snapshot,
        };
        let body = serde_json::to_vec(&body).expect("register body serialises to JSON");
        let header = RegisterBrokerRequestHeader {
            broker_name: self.config.broker_name.clone(),
            broker_addr: self.config.broker_addr().to_string(),
            cluster_name: self.config.broker_cluster_name.clone(),
            ha_server_addr: self.config.ha_server_addr().to_string(),
            broker_id,
            heartbeat_timeout_millis: None,
            enable_acting_master: Some(false),
            compressed: Some(false),
            body_crc32: Some((crc32fast::hash(&body) & 0x7FFF_FFFF) as i32),
        };
        let calls = self.config.namesrv_addr.iter().map(|addr| {
            let (header, body) = (&header, body.clone());
            async move {
                match self
                    .client
                    .register_broker(addr, header, body, REGISTER_TIMEOUT)
                    .await
                {
                    Ok(h) => {
                        debug!(namesrv = %addr, "registered");
                        if broker_id != 0 && h.master_addr.is_some() {
                            self.replication
                                .set_namesrv_master(h.master_addr, h.ha_server_addr);
                        }
                        true
                    }
                    Err(e) => {
                        warn!(namesrv = %addr, error = %e, "register broker failed");
                        false
                    }
                }
            }
        });
        futures_util::future::join_all(calls)
            .await
            .into_iter()
            .filter(|ok| *ok)
            .count()
    }

    /// Unregisters from every name server (graceful shutdown).
    pub async fn unregister_all(&self) {
        let header = UnregisterBrokerRequestHeader {
            broker_name: self.config.broker_name.clone(),
            broker_addr: self.config.broker_addr().to_string(),
            cluster_name: self.config.broker_cluster_name.clone(),
            broker_id: self.replication.namesrv_broker_id(),
        };
        let calls = self.config.namesrv_addr.iter().map(|addr| {
            let header = &header;
            async move {
                if let Err(e) = self.client.unregister_broker(addr, header).await {
                    warn!(namesrv = %addr, error = %e, "unregister broker failed");
                }
            }
        });
        futures_util::future::join_all(calls).await;
    }

    /// Registers now and then periodically or on [`trigger`](Self::trigger), until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        if self.config.namesrv_addr.is_empty() {
            warn!(
                "no namesrvAddr configured: clients cannot find this broker through a name server"
            );
            return;
        }
        loop {
            let role_changed = self.replication.role_changed().notified();
            tokio::pin!(role_changed);
            role_changed.as_mut().enable();
            // A broker waiting for the controller to assign its role stays unlisted.
            if self.replication.role() != Role::Pending {
                self.register_all().await;
            }
            // A slave that does not know its master's HA address yet asks again soon (the
            // new master may not have registered itself yet).
            let period = if self.replication.role() == Role::Slave
                && self.replication.ha_master_target().is_none()
            {
                Duration::from_millis(500)
            } else {
                self.config.register_name_server_period
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
                _ = self.changed.notified() => {}
                _ = &mut role_changed => {}
            }
        }
    }
}
