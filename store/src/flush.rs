//! Flushing the CommitLog: the durable-offset watermark, the SYNC_FLUSH group-commit
//! flusher and the ASYNC_FLUSH periodic flusher.
//!
//! Invariant: [`FlushWatermark`] only ever holds an offset below which every CommitLog
//! byte has been msynced. SYNC_FLUSH appenders wait for it to pass the end of their record;
//! the flusher msyncs everything written so far in one call, so all producers waiting at
//! that moment share a single flush (group commit).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;

use super::checkpoint::StoreCheckpoint;
use super::commitlog::CommitLog;

/// The CommitLog offset below which all bytes are durable, with blocking and async waits.
#[derive(Debug, Default)]
pub struct FlushWatermark {
    flushed: AtomicI64,
    lock: Mutex<()>,
    cond: Condvar,
    notify: Notify,
}

impl FlushWatermark {
    /// Starts at `offset` (recovery: everything recovered is on disk).
    pub fn new(offset: i64) -> Self {
        Self {
            flushed: AtomicI64::new(offset),
            ..Self::default()
        }
    }

    /// The current durable offset.
    pub fn get(&self) -> i64 {
        self.flushed.load(Ordering::Acquire)
    }

    /// Raises the watermark and wakes every waiter.
    pub fn advance(&self, offset: i64) {
        self.flushed.fetch_max(offset, Ordering::AcqRel);
        {
            let _g = self.lock.lock();
            self.cond.notify_all();
        }
        self.notify.notify_waiters();
    }

    /// Lowers the watermark to `offset` (runtime truncation of the log below it).
    pub(crate) fn lower_to(&self, offset: i64) {
        self.flushed.fetch_min(offset, Ordering::AcqRel);
    }

    /// Blocks until the watermark reaches `target`; false on timeout.
    pub fn wait_blocking(&self, target: i64, timeout: Duration) -> bool {
        if self.get() >= target {
            return true;
        }
        let deadline = Instant::now() + timeout;
        let mut g = self.lock.lock();
        while self.get() < target {
            if self.cond.wait_until(&mut g, deadline).timed_out() {
                return self.get() >= target;
            }
        }
        true
    }

    /// Waits asynchronously until the watermark reaches `target`; false on timeout.
    pub async fn wait(&self, target: i64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Register before checking, so an advance between check and await is not lost.
            notified.as_mut().enable();
            if self.get() >= target {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.get() >= target;
            }
        }
    }
}

/// A wake-up flag for a background thread (flush requests, dispatch, shutdown). Waking
/// costs one atomic swap when the flag is already raised, so hot paths can call it per
/// append.
#[derive(Debug, Default)]
pub struct Signal {
    pending: AtomicBool,
    lock: Mutex<()>,
    cond: Condvar,
}

impl Signal {
    /// Raises the flag and wakes the waiter.
    pub fn wake(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            let _g = self.lock.lock();
            self.cond.notify_one();
        }
    }

    /// Waits up to `timeout` for the flag; returns (and clears) it.
    pub fn wait(&self, timeout: Duration) -> bool {
        if self.pending.swap(false, Ordering::AcqRel) {
            return true;
        }
        let mut g = self.lock.lock();
        // Re-check under the lock: a waker that raised the flag after our first check
        // blocks on this lock until we are parked, so its notify is not lost.
        if self.pending.swap(false, Ordering::AcqRel) {
            return true;
        }
        self.cond.wait_for(&mut g, timeout);
        self.pending.swap(false, Ordering::AcqRel)
    }
}

/// How the flusher behaves.
#[derive(Debug, Clone, Copy)]
pub enum FlushMode {
    /// Flush as soon as requested (group commit).
    Sync,
    /// Flush every `interval` when at least `least_pages` are dirty, and everything every
    /// `thorough_interval`.
    Async {
        /// Period.
        interval: Duration,
        /// Minimum dirty pages per periodic flush.
        least_pages: usize,
        /// Flush regardless of dirty pages this often.
        thorough_interval: Duration,
    },
}

/// Runs the CommitLog flusher until `stop` is set; then flushes once more.
pub fn run_flusher(
    commitlog: Arc<CommitLog>,
    checkpoint: Arc<StoreCheckpoint>,
    signal: Arc<Signal>,
    stop: Arc<AtomicBool>,
    mode: FlushMode,
) {
    let mut last_thorough = Instant::now();
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let do_flush = match mode {
            FlushMode::Sync => {
                signal.wait(Duration::from_millis(10));
                commitlog.max_offset() > commitlog.watermark().get()
            }
            FlushMode::Async {
                interval,
                least_pages,
                thorough_interval,
            } => {
                signal.wait(interval);
                let thorough = last_thorough.elapsed() >= thorough_interval;
                if thorough {
                    last_thorough = Instant::now();
                }
                let dirty = commitlog.dirty_pages();
                dirty > 0 && (thorough || dirty >= least_pages || stopping)
            }
        };
        if do_flush || stopping {
            // Read the timestamp before flushing: every record with this timestamp or older
            // was published before the flush started, so it is durable afterwards.
            let ts = commitlog.last_appended_timestamp();
            match commitlog.flush() {
                Ok(flushed) => {
                    checkpoint.set_physic_msg_timestamp(ts);
                    checkpoint.set_physic_flushed_offset(flushed);
                }
                Err(e) => {
                    // Waiters time out (FLUSH_DISK_TIMEOUT); retry on the next round.
                    tracing::error!(error = %e, "commitlog flush failed");
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_wait_wakes_and_times_out() {
        let w = Arc::new(FlushWatermark::new(10));
        assert!(w.wait_blocking(10, Duration::ZERO));
        assert!(!w.wait_blocking(11, Duration::from_millis(10)));
        let w2 = w.clone();
        let t = std::thread::spawn(move || w2.wait_blocking(100, Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        w.advance(50);
        std::thread::sleep(Duration::from_millis(5));
        w.advance(100);
        assert!(t.join().unwrap());
        w.advance(20); // never moves back
        assert_eq!(w.get(), 100);
    }

    #[tokio::test]
    async fn async_wait_wakes_and_times_out() {
        let w = Arc::new(FlushWatermark::new(0));
        assert!(!w.wait(1, Duration::from_millis(10)).await);
        let w2 = w.clone();
        let h = tokio::spawn(async move { w2.wait(5, Duration::from_secs(10)).await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        w.advance(5);
        assert!(h.await.unwrap());
    }
}
