//! Long polling (`PullRequestHoldService`): a pull that finds nothing new waits until a
//! message arrives on its queue or its suspend timeout passes.
//!
//! The store's dispatcher calls [`LongPolling::on_message_arrived`] for every message it
//! makes readable. A waiter registers interest *before* re-checking the queue, so an
//! arrival between its check and its wait is never missed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::sync::Notify;

use rocketmq_store::MessageArrivalListener;

/// Arrival subscriptions taken by [`LongPolling::arm`].
pub struct Armed {
    waits: Vec<std::pin::Pin<Box<tokio::sync::futures::OwnedNotified>>>,
}

impl Armed {
    /// Waits for an arrival since the subscription, or `timeout`; whether one came.
    pub async fn wait(self, timeout: Duration) -> bool {
        if self.waits.is_empty() {
            tokio::time::sleep(timeout).await;
            return false;
        }
        tokio::time::timeout(timeout, futures_util::future::select_all(self.waits))
            .await
            .is_ok()
    }
}

/// Per-queue arrival notifications.
#[derive(Default)]
pub struct LongPolling {
    queues: RwLock<HashMap<String, HashMap<i32, Arc<Notify>>>>,
}

impl LongPolling {
    fn notify_for(&self, topic: &str, queue_id: i32) -> Arc<Notify> {
        if let Some(n) = self.queues.read().get(topic).and_then(|q| q.get(&queue_id)) {
            return n.clone();
        }
        self.queues
            .write()
            .entry(topic.to_string())
            .or_default()
            .entry(queue_id)
            .or_default()
            .clone()
    }

    /// Waits until `ready()` is true, re-checking after each arrival on the queue, or
    /// until `timeout`; returns whether `ready()` became true.
    pub async fn wait_until(
        &self,
        topic: &str,
        queue_id: i32,
        timeout: Duration,
        ready: impl Fn() -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let notify = self.notify_for(topic, queue_id);
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if ready() {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return ready();
            }
        }
    }

    /// Subscribes to arrivals on `queues` (queue id -1: any queue of the topic). Take it
    /// *before* checking for messages, then [`Armed::wait`]: an arrival between the check
    /// and the wait is not missed.
    pub fn arm(&self, queues: &[(&str, i32)]) -> Armed {
        let mut waits: Vec<_> = queues
            .iter()
            .map(|(t, q)| Box::pin(self.notify_for(t, *q).notified_owned()))
            .collect();
        for w in &mut waits {
            w.as_mut().enable();
        }
        Armed { waits }
    }

    /// Wakes the waiters of a queue and of its topic (a FIFO queue unblocked by an ack).
    pub fn notify(&self, topic: &str, queue_id: i32) {
        self.on_message_arrived(topic, queue_id, 0);
    }

    /// Number of queues with a notifier (metrics).
    pub fn tracked_queues(&self) -> usize {
        self.queues.read().values().map(HashMap::len).sum()
    }
}

impl MessageArrivalListener for LongPolling {
    fn on_message_arrived(&self, topic: &str, queue_id: i32, _queue_offset: i64) {
        if let Some(queues) = self.queues.read().get(topic) {
            for q in [queue_id, -1] {
                if let Some(n) = queues.get(&q) {
                    n.notify_waiters();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    #[tokio::test]
    async fn wakes_on_arrival_and_times_out_otherwise() {
        let lp = Arc::new(LongPolling::default());
        let flag = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (lp, flag) = (lp.clone(), flag.clone());
            tokio::spawn(async move {
                let start = std::time::Instant::now();
                let ok = lp
                    .wait_until("T", 1, Duration::from_secs(10), || {
                        flag.load(Ordering::SeqCst)
                    })
                    .await;
                (ok, start.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        // An arrival on another queue does not satisfy the waiter.
        lp.on_message_arrived("T", 2, 0);
        flag.store(true, Ordering::SeqCst);
        lp.on_message_arrived("T", 1, 0);
        let (ok, waited) = waiter.await.unwrap();
        assert!(ok);
        assert!(
            waited < Duration::from_secs(5),
            "woken by the arrival, not the timeout"
        );

        let ok = lp
            .wait_until("T", 3, Duration::from_millis(50), || false)
            .await;
        assert!(!ok);
    }
}
