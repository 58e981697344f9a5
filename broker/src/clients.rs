//! Producer and consumer tables (`ProducerManager`/`ConsumerManager`): who is connected,
//! in which groups, subscribed to what.
//!
//! Invariants: an entry lives while its connection is open and it heartbeats within the
//! channel expiry; any change of a consumer group's members or subscriptions notifies
//! every member (NOTIFY_CONSUMER_IDS_CHANGED) so clients rebalance at once instead of
//! waiting for their next periodic rebalance.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use rocketmq_common::body::{ConsumerData, SubscriptionData};
use rocketmq_common::protocol::headers::broker::NotifyConsumerIdsChangedRequestHeader;
use rocketmq_common::protocol::{LanguageCode, RemotingCommand, RequestCode};
use rocketmq_common::remoting::ConnectionHandle;
use tracing::{debug, info};

/// One client connection in a group.
#[derive(Debug, Clone)]
pub struct ClientChannel {
    /// The client's id (`ip@instance`).
    pub client_id: String,
    /// Its connection.
    pub connection: ConnectionHandle,
    /// Last heartbeat.
    pub last_update: Instant,
    /// The client's language, from its heartbeat.
    pub language: LanguageCode,
    /// The client's version ordinal, from its heartbeat.
    pub version: i32,
}

/// A consumer group's members and subscriptions.
#[derive(Debug, Clone, Default)]
pub struct ConsumerGroupInfo {
    /// `CONSUME_ACTIVELY`/`CONSUME_PASSIVELY`/`CONSUME_POP`.
    pub consume_type: String,
    /// `CLUSTERING`/`BROADCASTING`.
    pub message_model: String,
    /// `CONSUME_FROM_*`.
    pub consume_from_where: String,
    /// Members by connection id.
    pub channels: HashMap<u64, ClientChannel>,
    /// Subscriptions by topic.
    pub subscriptions: HashMap<String, SubscriptionData>,
}

/// The client tables.
#[derive(Default)]
pub struct ClientManager {
    producers: RwLock<HashMap<String, HashMap<u64, ClientChannel>>>,
    consumers: RwLock<HashMap<String, ConsumerGroupInfo>>,
    next_producer: AtomicUsize,
}

impl ClientManager {
    /// Records a producer heartbeat.
    pub fn register_producer(&self, group: &str, channel: ClientChannel) {
        self.producers
            .write()
            .entry(group.to_string())
            .or_default()
            .insert(channel.connection.id(), channel);
    }

    /// Records a consumer heartbeat; returns true when the group's members or
    /// subscriptions changed.
    pub fn register_consumer(&self, data: &ConsumerData, channel: ClientChannel) -> bool {
        let mut consumers = self.consumers.write();
        let info = consumers.entry(data.group_name.clone()).or_default();
        info.consume_type.clone_from(&data.consume_type);
        info.message_model.clone_from(&data.message_model);
        info.consume_from_where.clone_from(&data.consume_from_where);
        let new_member = info
            .channels
            .insert(channel.connection.id(), channel.clone())
            .is_none();
        if new_member {
            info!(group = %data.group_name, client = %channel.client_id, "new consumer connected");
        }
        let mut subscriptions_changed = false;
        for sub in &data.subscription_data_set {
            match info.subscriptions.get(&sub.topic) {
                // An older version of the same subscription never replaces a newer one.
                Some(old)
                    if old.sub_version >= sub.sub_version && old.sub_string == sub.sub_string => {}
                _ => {
                    info.subscriptions.insert(sub.topic.clone(), sub.clone());
                    subscriptions_changed = true;
                }
            }
        }
        new_member || subscriptions_changed
    }

    /// A live connection of a producer of `group`, rotating over the members so checks of
    /// many half messages spread over them (`ProducerManager.getAvailableChannel`).
    pub fn producer_connection(&self, group: &str) -> Option<ClientChannel> {
        let producers = self.producers.read();
        let mut members: Vec<&ClientChannel> = producers
            .get(group)?
            .values()
            .filter(|c| c.connection.is_open())
            .collect();
        if members.is_empty() {
            return None;
        }
        // HashMap order is arbitrary: sort so the rotation is stable.
        members.sort_by_key(|c| c.connection.id());
        let start = self.next_producer.fetch_add(1, Ordering::Relaxed);
        Some(members[start % members.len()].clone())
    }

    /// Producer groups and their members (PRODUCER connection listing).
    pub fn producer_group(&self, group: &str) -> Vec<ClientChannel> {
        self.producers
            .read()
            .get(group)
            .map(|g| g.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Removes a producer.
    pub fn unregister_producer(&self, group: &str, connection_id: u64) {
        let mut producers = self.producers.write();
        if let Some(g) = producers.get_mut(group) {
            g.remove(&connection_id);
            if g.is_empty() {
                producers.remove(group);
            }
        }
    }

    /// Removes a consumer; returns true when it was a member.
    pub fn unregister_consumer(&self, group: &str, connection_id: u64) -> bool {
        let mut consumers = self.consumers.write();
        let Some(info) = consumers.get_mut(group) else {
            return false;
        };
        let removed = info.channels.remove(&connection_id).is_some();
        if info.channels.is_empty() {
            consumers.remove(group);
        }
        removed
    }

    /// Drops every registration of a closed connection; returns the consumer groups that
    /// lost a member.
    pub fn on_connection_closed(&self, connection_id: u64) -> Vec<String> {
        for g in self.producers.write().values_mut() {
            g.remove(&connection_id);
        }
        self.producers.write().retain(|_, g| !g.is_empty());
        let mut changed = Vec::new();
        let mut consumers = self.consumers.write();
        for (group, info) in consumers.iter_mut() {
            if info.channels.remove(&connection_id).is_some() {
                changed.push(group.clone());
            }
        }
        consumers.retain(|_, info| !info.channels.is_empty());
        changed
    }

    /// Drops clients silent for longer than `timeout`; returns the consumer groups that
    /// lost a member.
    pub fn scan_expired(&self, now: Instant, timeout: Duration) -> Vec<String> {
        let expired = |c: &ClientChannel| now.saturating_duration_since(c.last_update) > timeout;
        for g in self.producers.write().values_mut() {
            g.retain(|_, c| !expired(c));
        }
        self.producers.write().retain(|_, g| !g.is_empty());
        let mut changed = Vec::new();
        let mut consumers = self.consumers.write();
        for (group, info) in consumers.iter_mut() {
            let before = info.channels.len();
            info.channels.retain(|_, c| {
                let keep = !expired(c);
                if !keep {
                    info!(group, client = %c.client_id, "consumer expired: no heartbeat");
                }
                keep
            });
            if info.channels.len() != before {
                changed.push(group.clone());
            }
        }
        consumers.retain(|_, info| !info.channels.is_empty());
        changed
    }

    /// Client ids of a consumer group, sorted.
    pub fn consumer_ids(&self, group: &str) -> Vec<String> {
        let consumers = self.consumers.read();
        let mut ids: Vec<String> = consumers
            .get(group)
            .map(|i| i.channels.values().map(|c| c.client_id.clone()).collect())
            .unwrap_or_default();
        ids.sort();
        ids.dedup();
        ids
    }

    /// The group's subscription to `topic`, from its heartbeats.
    pub fn subscription(&self, group: &str, topic: &str) -> Option<SubscriptionData> {
        self.consumers
            .read()
            .get(group)?
            .subscriptions
            .get(topic)
            .cloned()
    }

    /// A copy of a consumer group's state.
    pub fn consumer_group(&self, group: &str) -> Option<ConsumerGroupInfo> {
        self.consumers.read().get(group).cloned()
    }

    /// Sends NOTIFY_CONSUMER_IDS_CHANGED to every member of `group` (oneway, never waits).
    pub fn notify_consumer_ids_changed(&self, group: &str) {
        let members: Vec<ClientChannel> = self
            .consumers
            .read()
            .get(group)
            .map(|i| i.channels.values().cloned().collect())
            .unwrap_or_default();
        let header = NotifyConsumerIdsChangedRequestHeader {
            consumer_group: group.to_string(),
        };
        for member in members {
            let request =
                RemotingCommand::request(RequestCode::NOTIFY_CONSUMER_IDS_CHANGED, &header);
            if member.connection.send_oneway(request).is_err() {
                debug!(group, client = %member.client_id, "could not notify consumer: connection busy or gone");
            }
        }
    }

    /// Number of producer and consumer connections (metrics).
    pub fn counts(&self) -> (usize, usize) {
        let p = self.producers.read().values().map(HashMap::len).sum();
        let c = self
            .consumers
            .read()
            .values()
            .map(|i| i.channels.len())
            .sum();
        (p, c)
    }
}
