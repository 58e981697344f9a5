//! The route registry (`RouteInfoManager` in Java): which broker groups exist, their
//! members, liveness, and which queues each topic has on each group.
//!
//! Invariants:
//! - `broker_addr_table` holds a group only while it has at least one member;
//!   `cluster_addr_table` names only groups present there;
//! - topic queue data is written only from a master's (id 0) registration, and only when
//!   its topic-config data version changed or it registers for the first time, so a
//!   stale re-registration cannot roll a topic back;
//! - one broker address belongs to one broker id in a group: a slave promoted to master
//!   replaces its old `<id, addr>` entry.
//!
//! All methods are synchronous and take `now` explicitly where time matters, so the
//! liveness rules are tested without sleeping.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use rocketmq_common::route::{
    BrokerData, BrokerMemberGroup, ClusterInfo, DataVersion, MASTER_ID, PERM_READ, PERM_WRITE,
    QueueData, TopicConfigSerializeWrapper, TopicList, TopicRouteData,
};
use tracing::{info, warn};

/// Identifies a registered broker process: the cluster plus its address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BrokerAddrInfo {
    /// Cluster name.
    pub cluster: String,
    /// `ip:port`.
    pub addr: String,
}

#[derive(Debug, Clone)]
struct BrokerLiveInfo {
    last_update: Instant,
    timeout: Duration,
    data_version: DataVersion,
    connection_id: Option<u64>,
    ha_server_addr: String,
    broker_name: String,
    broker_id: i64,
}

/// One REGISTER_BROKER request, decoded.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Cluster name.
    pub cluster: String,
    /// Broker address.
    pub broker_addr: String,
    /// Broker group name.
    pub broker_name: String,
    /// Broker id (0 = master).
    pub broker_id: i64,
    /// HA listener address.
    pub ha_server_addr: String,
    /// Zone, if any.
    pub zone_name: Option<String>,
    /// Silence after which the broker is dropped; `None` uses the name server's default.
    pub timeout: Option<Duration>,
    /// Whether a slave may act as master.
    pub enable_acting_master: bool,
    /// Topic configs and their version.
    pub topics: TopicConfigSerializeWrapper,
    /// Filter servers (kept for route bodies).
    pub filter_servers: Vec<String>,
    /// The connection it came on, so a closed connection drops it at once.
    pub connection_id: Option<u64>,
}

/// What REGISTER_BROKER answers: the master's addresses, for a registering slave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegisterResult {
    /// The group master's HA address.
    pub ha_server_addr: Option<String>,
    /// The group master's address.
    pub master_addr: Option<String>,
}

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegisterError {
    /// Another address already holds this broker id with a newer state version.
    #[error(
        "broker id {broker_id} of {broker_name} is held by {current_addr} with a newer state version; \
         registration from {addr} ignored"
    )]
    StaleStateVersion {
        /// Group.
        broker_name: String,
        /// Id.
        broker_id: i64,
        /// Address holding the id.
        current_addr: String,
        /// Address that tried to register.
        addr: String,
    },
}

#[derive(Default)]
struct Tables {
    topic_queue_table: HashMap<String, BTreeMap<String, QueueData>>,
    broker_addr_table: BTreeMap<String, BrokerData>,
    cluster_addr_table: BTreeMap<String, BTreeSet<String>>,
    broker_live_table: HashMap<BrokerAddrInfo, BrokerLiveInfo>,
    filter_server_table: HashMap<BrokerAddrInfo, Vec<String>>,
}

/// The registry. Cheap to share behind an `Arc`; readers never block each other.
pub struct RouteInfoManager {
    tables: RwLock<Tables>,
    default_timeout: Duration,
    delete_topic_with_broker_registration: bool,
}

impl RouteInfoManager {
    /// A registry that drops brokers after `default_timeout` of silence unless they ask
    /// for another timeout.
    pub fn new(default_timeout: Duration, delete_topic_with_broker_registration: bool) -> Self {
        Self {
            tables: RwLock::new(Tables::default()),
            default_timeout,
            delete_topic_with_broker_registration,
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers (or re-registers) a broker at time `now`.
    pub fn register_broker(
        &self,
        reg: Registration,
        now: Instant,
    ) -> Result<RegisterResult, RegisterError> {
        let mut t = self.write();
        let addr_info = BrokerAddrInfo {
            cluster: reg.cluster.clone(),
            addr: reg.broker_addr.clone(),
        };

        // Refuse a registration that would take an id from a live broker that has already
        // seen a newer controller state (the old master coming back after a failover).
        if let Some(data) = t.broker_addr_table.get(&reg.broker_name)
            && let Some(current) = data.broker_addrs.get(&reg.broker_id)
            && *current != reg.broker_addr
        {
            let current_info = BrokerAddrInfo {
                cluster: reg.cluster.clone(),
                addr: current.clone(),
            };
            if let Some(live) = t.broker_live_table.get(&current_info)
                && live.data_version.state_version > reg.topics.data_version.state_version
            {
                return Err(RegisterError::StaleStateVersion {
                    broker_name: reg.broker_name.clone(),
                    broker_id: reg.broker_id,
                    current_addr: current.clone(),
                    addr: reg.broker_addr.clone(),
                });
            }
        }

        t.cluster_addr_table
            .entry(reg.cluster.clone())
            .or_default()
            .insert(reg.broker_name.clone());
        let broker_data = t
            .broker_addr_table
            .entry(reg.broker_name.clone())
            .or_insert_with(|| BrokerData {
                broker_addrs: BTreeMap::new(),
                broker_name: reg.broker_name.clone(),
                cluster: reg.cluster.clone(),
                enable_acting_master: reg.enable_acting_master,
                zone_name: reg.zone_name.clone(),
            });
        broker_data.enable_acting_master = reg.enable_acting_master;
        if reg.zone_name.is_some() {
            broker_data.zone_name = reg.zone_name.clone();
        }
        let register_first = broker_data.broker_addrs.is_empty();
        // A slave switched to master (or back) re-registers under a new id: drop the old one.
        broker_data
            .broker_addrs
            .retain(|id, addr| *addr != reg.broker_addr || *id == reg.broker_id);
        let previous = broker_data
            .broker_addrs
            .insert(reg.broker_id, reg.broker_addr.clone());
        let register_first = register_first || previous.is_none();

        // A prime slave (lowest id, no master present, acting-master mode) keeps the
        // group's routes current while the master is away, without write permission.
        let prime_slave = reg.enable_acting_master
            && reg.broker_id != MASTER_ID
            && broker_data.broker_addrs.keys().next() == Some(&reg.broker_id);
        if reg.broker_id == MASTER_ID || prime_slave {
            let version_changed = t
                .broker_live_table
                .get(&addr_info)
                .is_none_or(|live| live.data_version != reg.topics.data_version);
            if self.delete_topic_with_broker_registration
                && reg.topics.topic_queue_mapping_info_map.is_none()
            {
                let stale: Vec<String> = t
                    .topic_queue_table
                    .iter()
                    .filter(|(topic, queues)| {
                        queues.contains_key(&reg.broker_name)
                            && !reg.topics.topic_config_table.contains_key(*topic)
                    })
                    .map(|(topic, _)| topic.clone())
                    .collect();
                for topic in stale {
                    remove_topic_of_broker(&mut t.topic_queue_table, &topic, &reg.broker_name);
                }
            }
            for config in reg.topics.topic_config_table.values() {
                let known = t
                    .topic_queue_table
                    .get(&config.topic_name)
                    .is_some_and(|q| q.contains_key(&reg.broker_name));
                if register_first || version_changed || !known {
                    let queue_data = QueueData {
                        broker_name: reg.broker_name.clone(),
                        perm: if prime_slave {
                            config.perm & !PERM_WRITE
                        } else {
                            config.perm
                        },
                        read_queue_nums: config.read_queue_nums,
                        topic_sys_flag: config.topic_sys_flag,
                        write_queue_nums: config.write_queue_nums,
                    };
                    let queues = t
                        .topic_queue_table
                        .entry(config.topic_name.clone())
                        .or_default();
                    if queues.get(&reg.broker_name) != Some(&queue_data) {
                        info!(topic = %config.topic_name, broker = %reg.broker_name, ?queue_data, "topic queue data updated");
                        queues.insert(reg.broker_name.clone(), queue_data);
                    }
                }
            }
        }

        let timeout = reg.timeout.unwrap_or(self.default_timeout);
        let fresh = t
            .broker_live_table
            .insert(
                addr_info.clone(),
                BrokerLiveInfo {
                    last_update: now,
                    timeout,
                    data_version: reg.topics.data_version,
                    connection_id: reg.connection_id,
                    ha_server_addr: reg.ha_server_addr.clone(),
                    broker_name: reg.broker_name.clone(),
                    broker_id: reg.broker_id,
                },
            )
            .is_none();
        if fresh {
            info!(cluster = %reg.cluster, broker = %reg.broker_name, id = reg.broker_id, addr = %reg.broker_addr, "new broker registered");
        }
        if reg.filter_servers.is_empty() {
            t.filter_server_table.remove(&addr_info);
        } else {
            t.filter_server_table.insert(addr_info, reg.filter_servers);
        }

        let mut result = RegisterResult::default();
        if reg.broker_id != MASTER_ID
            && let Some(master_addr) = t
                .broker_addr_table
                .get(&reg.broker_name)
                .and_then(|d| d.broker_addrs.get(&MASTER_ID))
                .cloned()
        {
            let master_info = BrokerAddrInfo {
                cluster: reg.cluster.clone(),
                addr: master_addr.clone(),
            };
            if let Some(live) = t.broker_live_table.get(&master_info) {
                result.ha_server_addr = Some(live.ha_server_addr.clone());
                result.master_addr = Some(master_addr);
            }
        }
        Ok(result)
    }

    /// Removes a broker (UNREGISTER_BROKER, expiry, closed connection).
    pub fn unregister_broker(
        &self,
        cluster: &str,
        broker_addr: &str,
        broker_name: &str,
        broker_id: i64,
    ) {
        let mut t = self.write();
        unregister_locked(&mut t, cluster, broker_addr, broker_name, broker_id);
    }

    /// Refreshes a broker's liveness (BROKER_HEARTBEAT). Returns false if it is unknown.
    pub fn heartbeat(&self, cluster: &str, broker_addr: &str, now: Instant) -> bool {
        let mut t = self.write();
        let info = BrokerAddrInfo {
            cluster: cluster.to_string(),
            addr: broker_addr.to_string(),
        };
        match t.broker_live_table.get_mut(&info) {
            Some(live) => {
                live.last_update = now;
                true
            }
            None => false,
        }
    }

    /// Whether the broker's registered data version differs from `version`
    /// (QUERY_DATA_VERSION); also counts as a heartbeat, as in Java.
    pub fn is_data_version_changed(
        &self,
        cluster: &str,
        broker_addr: &str,
        version: &DataVersion,
        now: Instant,
    ) -> bool {
        self.query_data_version(cluster, broker_addr, version, now)
            .0
    }

    /// Like [`is_data_version_changed`](Self::is_data_version_changed), also returning the
    /// version the name server holds (QUERY_DATA_VERSION answers with it).
    pub fn query_data_version(
        &self,
        cluster: &str,
        broker_addr: &str,
        version: &DataVersion,
        now: Instant,
    ) -> (bool, Option<DataVersion>) {
        let mut t = self.write();
        let info = BrokerAddrInfo {
            cluster: cluster.to_string(),
            addr: broker_addr.to_string(),
        };
        match t.broker_live_table.get_mut(&info) {
            Some(live) => {
                live.last_update = now;
                (live.data_version != *version, Some(live.data_version))
            }
            None => (true, None),
        }
    }

    /// Drops brokers silent past their timeout; returns the dropped ones.
    pub fn scan_not_active_brokers(&self, now: Instant) -> Vec<BrokerAddrInfo> {
        let mut t = self.write();
        let expired: Vec<(BrokerAddrInfo, String, i64)> = t
            .broker_live_table
            .iter()
            .filter(|(_, live)| now.saturating_duration_since(live.last_update) > live.timeout)
            .map(|(info, live)| (info.clone(), live.broker_name.clone(), live.broker_id))
            .collect();
        for (info, name, id) in &expired {
            warn!(cluster = %info.cluster, broker = %name, id, addr = %info.addr, "broker expired: no registration within its timeout");
            unregister_locked(&mut t, &info.cluster, &info.addr, name, *id);
        }
        expired.into_iter().map(|(info, _, _)| info).collect()
    }

    /// Drops every broker that registered over `connection_id` (its connection closed).
    pub fn on_connection_closed(&self, connection_id: u64) -> Vec<BrokerAddrInfo> {
        let mut t = self.write();
        let gone: Vec<(BrokerAddrInfo, String, i64)> = t
            .broker_live_table
            .iter()
            .filter(|(_, live)| live.connection_id == Some(connection_id))
            .map(|(info, live)| (info.clone(), live.broker_name.clone(), live.broker_id))
            .collect();
        for (info, name, id) in &gone {
            info!(cluster = %info.cluster, broker = %name, id, addr = %info.addr, "broker connection closed; unregistering");
            unregister_locked(&mut t, &info.cluster, &info.addr, name, *id);
        }
        gone.into_iter().map(|(info, _, _)| info).collect()
    }

    /// The route of `topic`, or `None` when no live group serves it.
    pub fn topic_route(&self, topic: &str) -> Option<TopicRouteData> {
        let t = self.read();
        let queues = t.topic_queue_table.get(topic)?;
        let mut route = TopicRouteData::default();
        for (broker_name, queue_data) in queues {
            let Some(data) = t.broker_addr_table.get(broker_name) else {
                continue;
            };
            let mut data = data.clone();
            let mut queue_data = queue_data.clone();
            // Acting master: with the master gone, the lowest-id slave serves reads under
            // id 0 and the queues lose write permission until a real master returns.
            if data.enable_acting_master
                && !data.broker_addrs.contains_key(&MASTER_ID)
                && let Some((&min_id, addr)) = data.broker_addrs.iter().next()
            {
                let addr = addr.clone();
                data.broker_addrs.remove(&min_id);
                data.broker_addrs.insert(MASTER_ID, addr);
                queue_data.perm &= !PERM_WRITE;
            }
            for addr in data.broker_addrs.values() {
                let info = BrokerAddrInfo {
                    cluster: data.cluster.clone(),
                    addr: addr.clone(),
                };
                if let Some(servers) = t.filter_server_table.get(&info) {
                    route
                        .filter_server_table
                        .insert(addr.clone(), servers.clone());
                }
            }
            route.broker_datas.push(data);
            route.queue_datas.push(queue_data);
        }
        if route.broker_datas.is_empty() || route.queue_datas.is_empty() {
            return None;
        }
        Some(route)
    }

    /// GET_BROKER_CLUSTER_INFO.
    pub fn cluster_info(&self) -> ClusterInfo {
        let t = self.read();
        ClusterInfo {
            broker_addr_table: t.broker_addr_table.clone(),
            cluster_addr_table: t.cluster_addr_table.clone(),
        }
    }

    /// Every topic with a route.
    pub fn all_topics(&self) -> TopicList {
        let t = self.read();
        TopicList {
            broker_addr: None,
            topic_list: t.topic_queue_table.keys().cloned().collect(),
        }
    }

    /// Topics served by at least one group of `cluster`.
    pub fn topics_by_cluster(&self, cluster: &str) -> TopicList {
        let t = self.read();
        let groups = t.cluster_addr_table.get(cluster);
        let topic_list = t
            .topic_queue_table
            .iter()
            .filter(|(_, queues)| groups.is_some_and(|g| queues.keys().any(|b| g.contains(b))))
            .map(|(topic, _)| topic.clone())
            .collect();
        TopicList {
            broker_addr: None,
            topic_list,
        }
    }

    /// Deletes a topic's route, from every group or only from those of `cluster`.
    pub fn delete_topic(&self, topic: &str, cluster: Option<&str>) {
        let mut t = self.write();
        match cluster {
            None => {
                t.topic_queue_table.remove(topic);
            }
            Some(cluster) => {
                let groups: Vec<String> = t
                    .cluster_addr_table
                    .get(cluster)
                    .map(|g| g.iter().cloned().collect())
                    .unwrap_or_default();
                for group in groups {
                    remove_topic_of_broker(&mut t.topic_queue_table, topic, &group);
                }
            }
        }
    }

    /// Removes write permission from every queue of group `broker_name`; returns how many
    /// topic entries changed.
    pub fn wipe_write_perm(&self, broker_name: &str) -> i32 {
        self.update_perm(broker_name, |perm| perm & !PERM_WRITE)
    }

    /// Restores read-write permission on every queue of group `broker_name`.
    pub fn add_write_perm(&self, broker_name: &str) -> i32 {
        // Java sets exactly read-write (6), dropping any other bits.
        self.update_perm(broker_name, |_| PERM_READ | PERM_WRITE)
    }

    fn update_perm(&self, broker_name: &str, f: impl Fn(i32) -> i32) -> i32 {
        let mut t = self.write();
        let mut count = 0;
        for queues in t.topic_queue_table.values_mut() {
            if let Some(q) = queues.get_mut(broker_name) {
                q.perm = f(q.perm);
                count += 1;
            }
        }
        count
    }

    /// GET_BROKER_MEMBER_GROUP.
    pub fn broker_member_group(&self, cluster: &str, broker_name: &str) -> BrokerMemberGroup {
        let t = self.read();
        BrokerMemberGroup {
            broker_addrs: t
                .broker_addr_table
                .get(broker_name)
                .map(|d| d.broker_addrs.clone())
                .unwrap_or_default(),
            broker_name: broker_name.to_string(),
            cluster: cluster.to_string(),
        }
    }

    /// Number of live broker processes (metrics).
    pub fn live_broker_count(&self) -> usize {
        self.read().broker_live_table.len()
    }

    /// Number of topics with routes (metrics).
    pub fn topic_count(&self) -> usize {
        self.read().topic_queue_table.len()
    }
}

fn remove_topic_of_broker(
    table: &mut HashMap<String, BTreeMap<String, QueueData>>,
    topic: &str,
    broker_name: &str,
) {
    if let Some(queues) = table.get_mut(topic) {
        queues.remove(broker_name);
        if queues.is_empty() {
            table.remove(topic);
        }
    }
}

fn unregister_locked(
    t: &mut Tables,
    cluster: &str,
    broker_addr: &str,
    broker_name: &str,
    broker_id: i64,
) {
    let info = BrokerAddrInfo {
        cluster: cluster.to_string(),
        addr: broker_addr.to_string(),
    };
    t.broker_live_table.remove(&info);
    t.filter_server_table.remove(&info);
    let mut group_gone = false;
    if let Some(data) = t.broker_addr_table.get_mut(broker_name) {
        data.broker_addrs
            .retain(|id, addr| !(addr == broker_addr && *id == broker_id));
        if data.broker_addrs.is_empty() {
            t.broker_addr_table.remove(broker_name);
            group_gone = true;
        }
    }
    if group_gone {
        if let Some(groups) = t.cluster_addr_table.get_mut(cluster) {
            groups.remove(broker_name);
            if groups.is_empty() {
                t.cluster_addr_table.remove(cluster);
            }
        }
        // A group with no members serves no topic.
        let topics: Vec<String> = t
            .topic_queue_table
            .iter()
            .filter(|(_, q)| q.contains_key(broker_name))
            .map(|(k, _)| k.clone())
            .collect();
        for topic in topics {
            remove_topic_of_broker(&mut t.topic_queue_table, &topic, broker_name);
        }
    }
}

#[cfg(test)]
mod tests {
    use rocketmq_common::route::TopicConfig;

    use super::*;

    fn registration(
        name: &str,
        id: i64,
        addr: &str,
        topics: &[(&str, i32)],
        counter: i64,
    ) -> Registration {
        let mut wrapper = TopicConfigSerializeWrapper::default();
        wrapper.data_version.counter = counter;
        for (topic, queues) in topics {
            wrapper
                .topic_config_table
                .insert(topic.to_string(), TopicConfig::new(*topic, *queues));
        }
        Registration {
            cluster: "DefaultCluster".into(),
            broker_addr: addr.into(),
            broker_name: name.into(),
            broker_id: id,
            ha_server_addr: format!("{addr}-ha"),
            zone_name: None,
            timeout: None,
            enable_acting_master: false,
            topics: wrapper,
            filter_servers: vec![],
            connection_id: Some(id as u64 + 100),
        }
    }

    fn manager() -> RouteInfoManager {
        RouteInfoManager::new(Duration::from_secs(120), false)
    }

    #[test]
    fn master_registration_creates_routes() {
        let m = manager();
        let now = Instant::now();
        m.register_broker(
            registration("broker-a", 0, "10.0.0.1:10911", &[("T", 4)], 1),
            now,
        )
        .unwrap();
        let route = m.topic_route("T").expect("route");
        assert_eq!(route.broker_datas.len(), 1);
        assert_eq!(route.broker_datas[0].broker_addrs[&0], "10.0.0.1:10911");
        assert_eq!(route.queue_datas[0].write_queue_nums, 4);
        assert_eq!(route.queue_datas[0].perm, 6);
        assert!(m.topic_route("missing").is_none());
        assert_eq!(
            m.cluster_info().cluster_addr_table["DefaultCluster"].len(),
            1
        );
        assert!(m.all_topics().topic_list.contains("T"));
        assert!(
            m.topics_by_cluster("DefaultCluster")
                .topic_list
                .contains("T")
        );
        assert!(m.topics_by_cluster("Other").topic_list.is_empty());
    }

    #[test]
    fn slave_gets_master_addresses_and_does_not_write_topics() {
        let m = manager();
        let now = Instant::now();
        m.register_broker(registration("broker-a", 0, "m:1", &[("T", 4)], 1), now)
            .unwrap();
        let r = m
            .register_broker(
                registration("broker-a", 1, "s:1", &[("T", 8), ("OnlySlave", 2)], 1),
                now,
            )
            .unwrap();
        assert_eq!(r.master_addr.as_deref(), Some("m:1"));
        assert_eq!(r.ha_server_addr.as_deref(), Some("m:1-ha"));
        let route = m.topic_route("T").unwrap();
        assert_eq!(
            route.queue_datas[0].write_queue_nums, 4,
            "slave must not change queue data"
        );
        assert_eq!(route.broker_datas[0].broker_addrs.len(), 2);
        assert!(m.topic_route("OnlySlave").is_none());
    }

    #[test]
    fn unchanged_data_version_keeps_topic_data_but_new_topics_appear() {
        let m = manager();
        let now = Instant::now();
        m.register_broker(registration("b", 0, "a:1", &[("T", 4)], 1), now)
            .unwrap();
        m.wipe_write_perm("b");
        // Same data version: the wiped permission must survive a routine re-registration.
        m.register_broker(registration("b", 0, "a:1", &[("T", 4)], 1), now)
            .unwrap();
        assert_eq!(m.topic_route("T").unwrap().queue_datas[0].perm, PERM_READ);
        // New version: the broker's own config wins again.
        m.register_broker(registration("b", 0, "a:1", &[("T", 4), ("U", 1)], 2), now)
            .unwrap();
        assert_eq!(m.topic_route("T").unwrap().queue_datas[0].perm, 6);
        assert!(m.topic_route("U").is_some());
    }

    #[test]
    fn expiry_and_closed_connections_drop_brokers_and_their_routes() {
        let m = RouteInfoManager::new(Duration::from_secs(10), false);
        let t0 = Instant::now();
        m.register_broker(registration("a", 0, "a:1", &[("T", 1)], 1), t0)
            .unwrap();
        m.register_broker(registration("b", 0, "b:1", &[("T", 1)], 1), t0)
            .unwrap();
        assert!(
            m.scan_not_active_brokers(t0 + Duration::from_secs(9))
                .is_empty()
        );
        assert!(m.heartbeat("DefaultCluster", "b:1", t0 + Duration::from_secs(9)));
        let dropped = m.scan_not_active_brokers(t0 + Duration::from_secs(11));
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].addr, "a:1");
        let route = m.topic_route("T").unwrap();
        assert_eq!(route.broker_datas.len(), 1);
        assert_eq!(route.broker_datas[0].broker_name, "b");
        // b registered over connection 100 (id 0 + 100).
        assert_eq!(m.on_connection_closed(100).len(), 1);
        assert!(m.topic_route("T").is_none());
        assert!(m.cluster_info().cluster_addr_table.is_empty());
        assert_eq!(m.live_broker_count(), 0);
    }

    #[test]
    fn per_broker_timeout_overrides_default() {
        let m = RouteInfoManager::new(Duration::from_secs(120), false);
        let t0 = Instant::now();
        let mut reg = registration("a", 0, "a:1", &[("T", 1)], 1);
        reg.timeout = Some(Duration::from_secs(3));
        m.register_broker(reg, t0).unwrap();
        assert_eq!(
            m.scan_not_active_brokers(t0 + Duration::from_secs(4)).len(),
            1
        );
    }

    #[test]
    fn unregister_slave_keeps_group_and_routes() {
        let m = manager();
        let now = Instant::now();
        m.register_broker(registration("a", 0, "m:1", &[("T", 1)], 1), now)
            .unwrap();
        m.register_broker(registration("a", 1, "s:1", &[("T", 1)], 1), now)
            .unwrap();
        m.unregister_broker("DefaultCluster", "s:1", "a", 1);
        let route = m.topic_route("T").unwrap();
        assert_eq!(route.broker_datas[0].broker_addrs.len(), 1);
        m.unregister_broker("DefaultCluster", "m:1", "a", 0);
        assert!(m.topic_route("T").is_none());
    }

    #[test]
    fn promoted_slave_replaces_its_old_id() {
        let m = manager();
        let now = Instant::now();
        m.register_broker(registration("a", 1, "s:1", &[("T", 1)], 1), now)
            .unwrap();
        m.register_broker(registration("a", 0, "s:1", &[("T", 1)], 1), now)
            .unwrap();
        let addrs = m.cluster_info().broker_addr_table["a"].broker_addrs.clone();
        assert_eq!(addrs.len(), 1);
        assert_eq!(addrs[&0], "s:1");
    }

    #[test]
    fn stale_state_version_cannot_take_a_live_id() {
        let m = manager();
        let now = Instant::now();
        let mut new_master = registration("a", 0, "new:1", &[("T", 1)], 1);
        new_master.topics.data_version.state_version = 5;
        m.register_broker(new_master, now).unwrap();
        let mut old_master = registration("a", 0, "old:1", &[("T", 1)], 1);
        old_master.topics.data_version.state_version = 4;
        let err = m.register_broker(old_master, now).unwrap_err();
        assert!(
            matches!(err, RegisterError::StaleStateVersion { .. }),
            "{err}"
        );
        assert_eq!(
            m.topic_route("T").unwrap().broker_datas[0].broker_addrs[&0],
            "new:1"
        );
    }

    #[test]
    fn acting_master_serves_reads_only() {
        let m = manager();
        let now = Instant::now();
        let mut master = registration("a", 0, "m:1", &[("T", 2)], 1);
        master.enable_acting_master = true;
        m.register_broker(master, now).unwrap();
        let mut slave = registration("a", 2, "s:2", &[("T", 2)], 1);
        slave.enable_acting_master = true;
        m.register_broker(slave, now).unwrap();
        m.unregister_broker("DefaultCluster", "m:1", "a", 0);
        let route = m.topic_route("T").expect("slave keeps the group alive");
        assert_eq!(route.broker_datas[0].broker_addrs[&0], "s:2");
        assert_eq!(route.queue_datas[0].perm & PERM_WRITE, 0);
    }

    #[test]
    fn delete_topic_everywhere_or_per_cluster_and_write_perm_round_trip() {
        let m = manager();
        let now = Instant::now();
        m.register_broker(registration("a", 0, "a:1", &[("T", 1), ("U", 1)], 1), now)
            .unwrap();
        assert_eq!(m.wipe_write_perm("a"), 2);
        assert_eq!(m.topic_route("T").unwrap().queue_datas[0].perm, PERM_READ);
        assert_eq!(m.add_write_perm("a"), 2);
        assert_eq!(
            m.topic_route("T").unwrap().queue_datas[0].perm,
            PERM_READ | PERM_WRITE
        );
        m.delete_topic("T", Some("OtherCluster"));
        assert!(m.topic_route("T").is_some());
        m.delete_topic("T", Some("DefaultCluster"));
        assert!(m.topic_route("T").is_none());
        m.delete_topic("U", None);
        assert!(m.topic_route("U").is_none());
    }

    #[test]
    fn delete_topic_with_broker_registration_drops_missing_topics() {
        let m = RouteInfoManager::new(Duration::from_secs(120), true);
        let now = Instant::now();
        m.register_broker(registration("a", 0, "a:1", &[("T", 1), ("U", 1)], 1), now)
            .unwrap();
        m.register_broker(registration("a", 0, "a:1", &[("T", 1)], 2), now)
            .unwrap();
        assert!(m.topic_route("U").is_none());
        assert!(m.topic_route("T").is_some());
    }

    #[test]
    fn data_version_query() {
        let m = manager();
        let now = Instant::now();
        m.register_broker(registration("a", 0, "a:1", &[("T", 1)], 7), now)
            .unwrap();
        let same = DataVersion {
            counter: 7,
            ..Default::default()
        };
        assert!(!m.is_data_version_changed("DefaultCluster", "a:1", &same, now));
        let newer = DataVersion {
            counter: 8,
            ..Default::default()
        };
        assert!(m.is_data_version_changed("DefaultCluster", "a:1", &newer, now));
        assert!(m.is_data_version_changed("DefaultCluster", "unknown:1", &same, now));
    }
}
