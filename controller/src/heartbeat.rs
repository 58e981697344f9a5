//! Broker liveness as this controller sees it: brokers send BROKER_HEARTBEAT to every
//! controller, so each keeps its own table (it is not replicated). A broker is alive while
//! its last heartbeat is younger than the timeout it asked for and its connection is open;
//! a closed connection (a dead process) makes it inactive at once, which is what makes a
//! failover fast.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::state::{LiveInfo, Liveness};

/// One heartbeat's content.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    /// Cluster name.
    pub cluster_name: String,
    /// Group name.
    pub broker_name: String,
    /// Controller id.
    pub broker_id: i64,
    /// Remoting address.
    pub broker_addr: String,
    /// Last epoch in the broker's epoch file.
    pub epoch: i32,
    /// CommitLog max offset.
    pub max_offset: i64,
    /// Confirm offset.
    pub confirm_offset: i64,
    /// How long the broker may stay silent.
    pub timeout: Duration,
    /// Election priority.
    pub election_priority: i32,
}

#[derive(Debug, Clone)]
struct Entry {
    beat: Heartbeat,
    last: Instant,
    connection: u64,
}

/// A broker that stopped being alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inactive {
    /// Group name.
    pub broker_name: String,
    /// Controller id.
    pub broker_id: i64,
}

/// The liveness table.
#[derive(Debug, Default)]
pub struct BrokerLiveTable {
    entries: Mutex<HashMap<(String, i64), Entry>>,
}

impl BrokerLiveTable {
    /// Records a heartbeat that arrived on `connection`.
    pub fn on_heartbeat(&self, beat: Heartbeat, connection: u64, now: Instant) {
        let key = (beat.broker_name.clone(), beat.broker_id);
        self.entries.lock().insert(
            key,
            Entry {
                beat,
                last: now,
                connection,
            },
        );
    }

    /// Drops the brokers that heartbeated on a closed connection.
    pub fn on_connection_closed(&self, connection: u64) -> Vec<Inactive> {
        self.remove_where(|e| e.connection == connection)
    }

    /// Drops the brokers silent past their timeout.
    pub fn scan(&self, now: Instant) -> Vec<Inactive> {
        self.remove_where(|e| now.saturating_duration_since(e.last) > e.beat.timeout)
    }

    fn remove_where(&self, dead: impl Fn(&Entry) -> bool) -> Vec<Inactive> {
        let mut out = Vec::new();
        self.entries.lock().retain(|(name, id), e| {
            if dead(e) {
                out.push(Inactive {
                    broker_name: name.clone(),
                    broker_id: *id,
                });
                false
            } else {
                true
            }
        });
        out
    }

    /// Number of live brokers.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// True when no broker is alive.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The latest heartbeat of a broker, if it is alive.
    pub fn get(&self, broker_name: &str, broker_id: i64) -> Option<Heartbeat> {
        let now = Instant::now();
        self.entries
            .lock()
            .get(&(broker_name.to_string(), broker_id))
            .filter(|e| now.saturating_duration_since(e.last) <= e.beat.timeout)
            .map(|e| e.beat.clone())
    }
}

impl Liveness for BrokerLiveTable {
    fn live(&self, broker_name: &str, broker_id: i64) -> Option<LiveInfo> {
        self.get(broker_name, broker_id).map(|b| LiveInfo {
            epoch: b.epoch,
            max_offset: b.max_offset,
            election_priority: b.election_priority,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(id: i64, timeout_ms: u64) -> Heartbeat {
        Heartbeat {
            cluster_name: "c".into(),
            broker_name: "b".into(),
            broker_id: id,
            broker_addr: format!("10.0.0.{id}:10911"),
            epoch: 1,
            max_offset: 100 * id,
            confirm_offset: 0,
            timeout: Duration::from_millis(timeout_ms),
            election_priority: 0,
        }
    }

    #[test]
    fn silence_and_closed_connections_make_brokers_inactive() {
        let t = BrokerLiveTable::default();
        let now = Instant::now();
        t.on_heartbeat(beat(1, 1000), 7, now);
        t.on_heartbeat(beat(2, 50_000), 8, now);
        t.on_heartbeat(beat(3, 50_000), 9, now);
        assert_eq!(t.live("b", 2).unwrap().max_offset, 200);
        assert!(t.scan(now + Duration::from_millis(500)).is_empty());
        assert_eq!(
            t.scan(now + Duration::from_millis(1500)),
            vec![Inactive {
                broker_name: "b".into(),
                broker_id: 1
            }]
        );
        assert_eq!(t.on_connection_closed(9).len(), 1);
        assert!(!t.is_alive("b", 3));
        assert!(t.is_alive("b", 2));
        assert_eq!(t.len(), 1);
    }
}
