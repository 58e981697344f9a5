//! Queue locks for orderly consumption (`RebalanceLockManager`): a consumer that consumes a
//! queue in order first locks it on the broker (LOCK_BATCH_MQ) and renews the lock while it
//! consumes; another client of the group gets the queue only after the holder unlocks it
//! (UNLOCK_BATCH_MQ) or lets the lock expire (`rebalanceLockMaxLiveTime`, 60 s).
//!
//! Invariant: at any instant a (group, queue) is locked by at most one client id, so two
//! members of a group never both own a queue for orderly consumption.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rocketmq_common::body::MessageQueue;

#[derive(Debug, Clone)]
struct LockEntry {
    client_id: String,
    renewed: Instant,
}

/// Per-group queue locks.
#[derive(Debug)]
pub struct QueueLockManager {
    max_live: Duration,
    groups: Mutex<HashMap<String, HashMap<MessageQueue, LockEntry>>>,
}

impl QueueLockManager {
    /// Locks expire `max_live` after their last renewal.
    pub fn new(max_live: Duration) -> Self {
        Self {
            max_live,
            groups: Mutex::new(HashMap::new()),
        }
    }

    /// Locks (or renews) every queue of `queues` that is free, expired or already held by
    /// `client_id`; returns the queues the client now holds.
    pub fn try_lock(
        &self,
        group: &str,
        client_id: &str,
        queues: &BTreeSet<MessageQueue>,
        now: Instant,
    ) -> BTreeSet<MessageQueue> {
        let mut groups = self.groups.lock();
        let locks = groups.entry(group.to_string()).or_default();
        let mut held = BTreeSet::new();
        for mq in queues {
            match locks.get_mut(mq) {
                Some(e) if e.client_id == client_id => {
                    e.renewed = now;
                    held.insert(mq.clone());
                }
                Some(e) if now.saturating_duration_since(e.renewed) <= self.max_live => {
                    tracing::debug!(group, queue = ?mq, holder = %e.client_id, asker = client_id, "queue locked by another client");
                }
                other => {
                    if let Some(e) = other {
                        tracing::info!(group, queue = ?mq, old = %e.client_id, new = client_id, "expired queue lock taken over");
                    }
                    locks.insert(
                        mq.clone(),
                        LockEntry {
                            client_id: client_id.to_string(),
                            renewed: now,
                        },
                    );
                    held.insert(mq.clone());
                }
            }
        }
        held
    }

    /// Releases the queues of `queues` that `client_id` holds.
    pub fn unlock(&self, group: &str, client_id: &str, queues: &BTreeSet<MessageQueue>) {
        let mut groups = self.groups.lock();
        if let Some(locks) = groups.get_mut(group) {
            for mq in queues {
                if locks.get(mq).is_some_and(|e| e.client_id == client_id) {
                    locks.remove(mq);
                }
            }
            if locks.is_empty() {
                groups.remove(group);
            }
        }
    }

    /// The client holding a live lock on `mq` for `group`.
    pub fn holder(&self, group: &str, mq: &MessageQueue, now: Instant) -> Option<String> {
        let groups = self.groups.lock();
        let e = groups.get(group)?.get(mq)?;
        (now.saturating_duration_since(e.renewed) <= self.max_live).then(|| e.client_id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mq(q: i32) -> MessageQueue {
        MessageQueue {
            broker_name: "b".into(),
            queue_id: q,
            topic: "T".into(),
        }
    }

    #[test]
    fn one_owner_per_queue_until_unlock_or_expiry() {
        let locks = QueueLockManager::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let all: BTreeSet<_> = (0..4).map(mq).collect();
        let a = locks.try_lock("G", "A", &[mq(0), mq(1)].into(), t0);
        assert_eq!(a.len(), 2);
        let b = locks.try_lock("G", "B", &all, t0);
        assert_eq!(b, [mq(2), mq(3)].into(), "B gets only the free queues");
        assert_eq!(locks.holder("G", &mq(0), t0).as_deref(), Some("A"));
        // Another group is independent.
        assert_eq!(locks.try_lock("H", "B", &all, t0).len(), 4);
        // Renewal keeps A's queues; B cannot take them while A renews.
        let t1 = t0 + Duration::from_secs(50);
        assert_eq!(locks.try_lock("G", "A", &[mq(0)].into(), t1).len(), 1);
        let t2 = t0 + Duration::from_secs(100);
        let b = locks.try_lock("G", "B", &[mq(0), mq(1)].into(), t2);
        assert_eq!(
            b,
            [mq(1)].into(),
            "mq 1 expired (not renewed since t0), mq 0 renewed at t1"
        );
        // Unlock by a non-holder is ignored; by the holder frees the queue.
        locks.unlock("G", "B", &[mq(0)].into());
        assert_eq!(locks.holder("G", &mq(0), t2).as_deref(), Some("A"));
        locks.unlock("G", "A", &[mq(0)].into());
        assert_eq!(locks.holder("G", &mq(0), t2), None);
        assert_eq!(locks.try_lock("G", "B", &[mq(0)].into(), t2).len(), 1);
    }
}
