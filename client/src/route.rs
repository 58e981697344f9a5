//! Topic routes from the name servers, cached: what a producer or consumer needs to pick a
//! queue and the broker that serves it. A route is fetched on first use and again once it
//! is older than the refresh interval, or at once after [`RouteCache::invalidate`] (a send
//! failed, so the route may have changed: a failover moved the master).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use rocketmq_common::route::{BrokerData, MASTER_ID, PERM_READ, PERM_WRITE, TopicRouteData};

use crate::api::MqClient;
use crate::error::ClientError;

/// One queue of a topic on one broker group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueRef {
    /// Broker group name.
    pub broker_name: String,
    /// Queue id.
    pub queue_id: i32,
}

/// A route with what is derived from it.
#[derive(Debug, Clone)]
pub struct Route {
    /// The name server's answer.
    pub data: TopicRouteData,
    fetched: Instant,
}

impl Route {
    /// Wraps a fetched route.
    pub fn new(data: TopicRouteData) -> Self {
        Self {
            data,
            fetched: Instant::now(),
        }
    }

    /// Whether a group with writable queues has no master in this route: a failover is
    /// under way (the old master left the name servers, the new one has not registered
    /// yet), so the route is worth asking for again soon.
    pub fn lacks_a_master(&self) -> bool {
        self.data
            .queue_datas
            .iter()
            .any(|q| q.perm & PERM_WRITE != 0 && self.master_addr(&q.broker_name).is_none())
    }

    /// Queues a producer may write: every writable queue of groups with a live master.
    pub fn write_queues(&self) -> Vec<QueueRef> {
        self.queues(PERM_WRITE, |q| q.write_queue_nums, true)
    }

    /// Queues a consumer reads: every readable queue of every group.
    pub fn read_queues(&self) -> Vec<QueueRef> {
        self.queues(PERM_READ, |q| q.read_queue_nums, false)
    }

    fn queues(
        &self,
        perm: i32,
        count: impl Fn(&rocketmq_common::route::QueueData) -> i32,
        need_master: bool,
    ) -> Vec<QueueRef> {
        let mut out = Vec::new();
        let mut groups: Vec<_> = self.data.queue_datas.iter().collect();
        groups.sort_by(|a, b| a.broker_name.cmp(&b.broker_name));
        for q in groups {
            if q.perm & perm == 0 {
                continue;
            }
            if need_master && self.master_addr(&q.broker_name).is_none() {
                continue;
            }
            for queue_id in 0..count(q) {
                out.push(QueueRef {
                    broker_name: q.broker_name.clone(),
                    queue_id,
                });
            }
        }
        out
    }

    /// The group's data.
    pub fn broker(&self, broker_name: &str) -> Option<&BrokerData> {
        self.data
            .broker_datas
            .iter()
            .find(|b| b.broker_name == broker_name)
    }

    /// The group's master address.
    pub fn master_addr(&self, broker_name: &str) -> Option<&str> {
        self.broker(broker_name)
            .and_then(|b| b.broker_addrs.get(&MASTER_ID))
            .map(String::as_str)
    }

    /// The address for reads: `prefer` (a broker id a master suggested) when it is there,
    /// else the master, else the lowest-id replica.
    pub fn read_addr(&self, broker_name: &str, prefer: i64) -> Option<&str> {
        let b = self.broker(broker_name)?;
        b.broker_addrs
            .get(&prefer)
            .or_else(|| b.broker_addrs.get(&MASTER_ID))
            .or_else(|| b.broker_addrs.values().next())
            .map(String::as_str)
    }

    /// Every broker address of the route (heartbeats go to all of them).
    pub fn all_addrs(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .data
            .broker_datas
            .iter()
            .flat_map(|b| b.broker_addrs.values().cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// How long a route in which a group has no master is used before it is fetched again.
pub const MASTERLESS_REFRESH: Duration = Duration::from_secs(1);

/// The cache.
pub struct RouteCache {
    client: MqClient,
    refresh: Duration,
    routes: RwLock<HashMap<String, Arc<Route>>>,
}

impl RouteCache {
    /// A cache asking the name servers `client` knows; routes older than `refresh` are
    /// fetched again when used.
    pub fn new(client: MqClient, refresh: Duration) -> Self {
        Self {
            client,
            refresh,
            routes: RwLock::new(HashMap::new()),
        }
    }

    /// The client behind the cache.
    pub fn client(&self) -> &MqClient {
        &self.client
    }

    /// The topic's route, fetched when missing or stale. A stale route is still served if
    /// the name servers cannot be reached. A route in which a group lacks its master is
    /// stale after [`MASTERLESS_REFRESH`], so writers find the new master within a second
    /// of its registration instead of a whole refresh interval later.
    pub async fn route(&self, topic: &str) -> Result<Arc<Route>, ClientError> {
        let cached = self.routes.read().get(topic).cloned();
        if let Some(r) = &cached {
            let fresh_for = if r.lacks_a_master() {
                self.refresh.min(MASTERLESS_REFRESH)
            } else {
                self.refresh
            };
            if r.fetched.elapsed() < fresh_for {
                return Ok(r.clone());
            }
        }
        match self.client.topic_route(topic).await {
            Ok(data) => {
                let route = Arc::new(Route::new(data));
                self.routes.write().insert(topic.to_string(), route.clone());
                Ok(route)
            }
            Err(e @ ClientError::TopicNotFound { .. }) => {
                self.routes.write().remove(topic);
                Err(e)
            }
            Err(e) => cached.ok_or(e),
        }
    }

    /// Forgets the topic's route, so the next use asks the name servers.
    pub fn invalidate(&self, topic: &str) {
        self.routes.write().remove(topic);
    }

    /// Topics with a cached route.
    pub fn topics(&self) -> Vec<String> {
        self.routes.read().keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocketmq_common::route::QueueData;
    use std::collections::BTreeMap;

    fn route() -> Route {
        Route::new(TopicRouteData {
            broker_datas: vec![
                BrokerData {
                    broker_addrs: BTreeMap::from([(0, "m:1".into()), (1, "s:1".into())]),
                    broker_name: "b".into(),
                    cluster: "c".into(),
                    enable_acting_master: false,
                    zone_name: None,
                },
                BrokerData {
                    broker_addrs: BTreeMap::from([(2, "s:2".into())]),
                    broker_name: "a".into(),
                    cluster: "c".into(),
                    enable_acting_master: false,
                    zone_name: None,
                },
            ],
            queue_datas: vec![
                QueueData {
                    broker_name: "b".into(),
                    perm: 6,
                    read_queue_nums: 2,
                    topic_sys_flag: 0,
                    write_queue_nums: 2,
                },
                QueueData {
                    broker_name: "a".into(),
                    perm: 6,
                    read_queue_nums: 1,
                    topic_sys_flag: 0,
                    write_queue_nums: 1,
                },
            ],
            ..TopicRouteData::default()
        })
    }

    #[test]
    fn writes_need_a_master_reads_do_not() {
        let r = route();
        assert_eq!(
            r.write_queues(),
            vec![
                QueueRef {
                    broker_name: "b".into(),
                    queue_id: 0
                },
                QueueRef {
                    broker_name: "b".into(),
                    queue_id: 1
                }
            ]
        );
        assert_eq!(r.read_queues().len(), 3);
        assert_eq!(r.read_addr("b", 1), Some("s:1"));
        assert_eq!(r.read_addr("b", 7), Some("m:1"));
        assert_eq!(r.read_addr("a", 0), Some("s:2"));
        assert_eq!(r.all_addrs(), vec!["m:1", "s:1", "s:2"]);
    }

    #[test]
    fn a_group_between_masters_is_noticed() {
        let mut r = route();
        assert!(r.lacks_a_master(), "group a has only a slave");
        // Read-only queues need no master.
        r.data.queue_datas[1].perm = PERM_READ;
        assert!(!r.lacks_a_master());
        let mut r = route();
        r.data.broker_datas[1]
            .broker_addrs
            .insert(MASTER_ID, "m:2".into());
        assert!(!r.lacks_a_master());
    }
}
