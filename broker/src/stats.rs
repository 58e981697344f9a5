//! Running totals and rates the broker reports through GET_BROKER_RUNTIME_INFO
//! (`StoreStatsService` and `BrokerStats` in Java): put and get counts, TPS over the last
//! 10 s / 1 min / 10 min, put latency, and totals at this and yesterday's midnight (UTC).
//!
//! Counting is a few relaxed atomic adds on the hot path; a sampler task takes one
//! snapshot per second into a ring of 601 samples, from which the rates are computed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;

/// Latency buckets (upper bounds in ms) of `putMessageDistributeTime`, as Java labels them.
const LATENCY_BUCKETS: [(u64, &str); 13] = [
    (0, "[<=0ms]"),
    (10, "[0~10ms]"),
    (50, "[10~50ms]"),
    (100, "[50~100ms]"),
    (200, "[100~200ms]"),
    (500, "[200~500ms]"),
    (1_000, "[500ms~1s]"),
    (2_000, "[1~2s]"),
    (3_000, "[2~3s]"),
    (4_000, "[3~4s]"),
    (5_000, "[4~5s]"),
    (10_000, "[5~10s]"),
    (u64::MAX, "[10s~]"),
];

/// Samples kept: ten minutes plus one, so the 600 s window has two ends.
const SAMPLES: usize = 601;

#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    at_ms: i64,
    puts: u64,
    gets_found: u64,
    gets_miss: u64,
    transferred: u64,
}

#[derive(Debug, Default)]
struct DayMarks {
    day: i64,
    put_today_morning: u64,
    put_yesterday_morning: u64,
    get_today_morning: u64,
    get_yesterday_morning: u64,
}

/// The broker's counters.
#[derive(Debug)]
pub struct BrokerStats {
    boot_ms: i64,
    puts: AtomicU64,
    put_bytes: AtomicU64,
    put_failures: AtomicU64,
    put_latency_max_ms: AtomicU64,
    latency: [AtomicU64; 13],
    gets_found: AtomicU64,
    gets_miss: AtomicU64,
    transferred: AtomicU64,
    samples: Mutex<VecDeque<Sample>>,
    days: Mutex<DayMarks>,
}

impl Default for BrokerStats {
    fn default() -> Self {
        Self::new()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Java's `double` text: always a fraction part.
fn java_double(v: f64) -> String {
    let s = format!("{v}");
    if s.contains('.') || s.contains('e') || s.contains("inf") || s.contains("NaN") {
        s
    } else {
        format!("{s}.0")
    }
}

impl BrokerStats {
    /// Counters starting now.
    pub fn new() -> Self {
        let now = now_ms();
        Self {
            boot_ms: now,
            puts: AtomicU64::new(0),
            put_bytes: AtomicU64::new(0),
            put_failures: AtomicU64::new(0),
            put_latency_max_ms: AtomicU64::new(0),
            latency: Default::default(),
            gets_found: AtomicU64::new(0),
            gets_miss: AtomicU64::new(0),
            transferred: AtomicU64::new(0),
            samples: Mutex::new(VecDeque::with_capacity(SAMPLES)),
            days: Mutex::new(DayMarks {
                day: now.div_euclid(86_400_000),
                ..DayMarks::default()
            }),
        }
    }

    /// A put of `messages` messages and `bytes` body bytes that took `latency`.
    pub fn record_put(&self, messages: u64, bytes: u64, latency: Duration) {
        self.puts.fetch_add(messages, Ordering::Relaxed);
        self.put_bytes.fetch_add(bytes, Ordering::Relaxed);
        let ms = latency.as_millis() as u64;
        self.put_latency_max_ms.fetch_max(ms, Ordering::Relaxed);
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|(max, _)| ms <= *max)
            .unwrap_or(LATENCY_BUCKETS.len() - 1);
        self.latency[bucket].fetch_add(1, Ordering::Relaxed);
    }

    /// A put that failed.
    pub fn record_put_failure(&self) {
        self.put_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// A read that returned `messages` messages (0 = a miss).
    pub fn record_get(&self, messages: u64) {
        if messages == 0 {
            self.gets_miss.fetch_add(1, Ordering::Relaxed);
        } else {
            self.gets_found.fetch_add(1, Ordering::Relaxed);
            self.transferred.fetch_add(messages, Ordering::Relaxed);
        }
    }

    /// Messages stored since start.
    pub fn puts_total(&self) -> u64 {
        self.puts.load(Ordering::Relaxed)
    }

    /// Messages handed to consumers since start.
    pub fn transferred_total(&self) -> u64 {
        self.transferred.load(Ordering::Relaxed)
    }

    /// Takes one sample (called every second) and rolls the day marks at midnight.
    pub fn sample(&self) {
        let now = now_ms();
        let s = Sample {
            at_ms: now,
            puts: self.puts.load(Ordering::Relaxed),
            gets_found: self.gets_found.load(Ordering::Relaxed),
            gets_miss: self.gets_miss.load(Ordering::Relaxed),
            transferred: self.transferred.load(Ordering::Relaxed),
        };
        {
            let mut samples = self.samples.lock();
            if samples.len() == SAMPLES {
                samples.pop_front();
            }
            samples.push_back(s);
        }
        let today = now.div_euclid(86_400_000);
        let mut days = self.days.lock();
        if today != days.day {
            days.put_yesterday_morning = if today == days.day + 1 {
                days.put_today_morning
            } else {
                s.puts
            };
            days.get_yesterday_morning = if today == days.day + 1 {
                days.get_today_morning
            } else {
                s.transferred
            };
            days.put_today_morning = s.puts;
            days.get_today_morning = s.transferred;
            days.day = today;
        }
    }

    /// Rates over the last 10 s, 60 s and 600 s of `field`, as Java prints them (a window
    /// without enough samples yet is empty).
    fn tps(&self, field: impl Fn(&Sample) -> u64) -> String {
        let samples = self.samples.lock();
        let window = |secs: usize| -> String {
            if samples.len() <= secs {
                return String::new();
            }
            let last = samples[samples.len() - 1];
            let first = samples[samples.len() - 1 - secs];
            let ms = (last.at_ms - first.at_ms).max(1);
            let delta = field(&last).saturating_sub(field(&first));
            java_double(delta as f64 * 1000.0 / ms as f64)
        };
        format!("{} {} {}", window(10), window(60), window(600))
    }

    /// The statistics keys of GET_BROKER_RUNTIME_INFO.
    pub fn runtime_info(&self, out: &mut std::collections::BTreeMap<String, String>) {
        let now = now_ms();
        let up = (now - self.boot_ms).max(0) / 1000;
        let puts = self.puts.load(Ordering::Relaxed);
        let bytes = self.put_bytes.load(Ordering::Relaxed);
        let mut put = |k: &str, v: String| {
            out.insert(k.to_string(), v);
        };
        put("bootTimestamp", self.boot_ms.to_string());
        put(
            "runtime",
            format!(
                "[ {} days, {} hours, {} minutes, {} seconds ]",
                up / 86_400,
                up / 3_600 % 24,
                up / 60 % 60,
                up % 60
            ),
        );
        put(
            "putMessageEntireTimeMax",
            self.put_latency_max_ms.load(Ordering::Relaxed).to_string(),
        );
        put("putMessageTimesTotal", puts.max(1).to_string());
        put(
            "putMessageFailedTimes",
            self.put_failures.load(Ordering::Relaxed).to_string(),
        );
        put("putMessageSizeTotal", bytes.to_string());
        put(
            "putMessageAverageSize",
            java_double(if puts == 0 {
                0.0
            } else {
                bytes as f64 / puts as f64
            }),
        );
        let mut distribution = String::new();
        for ((_, label), count) in LATENCY_BUCKETS.iter().zip(&self.latency) {
            distribution.push_str(&format!("{label}:{} ", count.load(Ordering::Relaxed)));
        }
        put("putMessageDistributeTime", distribution);
        put("putTps", self.tps(|s| s.puts));
        put("getFoundTps", self.tps(|s| s.gets_found));
        put("getMissTps", self.tps(|s| s.gets_miss));
        put("getTotalTps", self.tps(|s| s.gets_found + s.gets_miss));
        put("getTransferredTps", self.tps(|s| s.transferred));
        let days = self.days.lock();
        put(
            "msgPutTotalYesterdayMorning",
            days.put_yesterday_morning.to_string(),
        );
        put(
            "msgPutTotalTodayMorning",
            days.put_today_morning.to_string(),
        );
        put("msgPutTotalTodayNow", puts.to_string());
        put(
            "msgGetTotalYesterdayMorning",
            days.get_yesterday_morning.to_string(),
        );
        put(
            "msgGetTotalTodayMorning",
            days.get_today_morning.to_string(),
        );
        put(
            "msgGetTotalTodayNow",
            self.transferred.load(Ordering::Relaxed).to_string(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn rates_appear_once_the_window_has_samples() {
        let s = BrokerStats::new();
        let mut info = BTreeMap::new();
        s.runtime_info(&mut info);
        assert_eq!(info["putTps"], "  ", "no samples yet");
        assert_eq!(info["putMessageTimesTotal"], "1", "Java reports 1 for none");
        for i in 0..12 {
            s.record_put(10, 1000, Duration::from_millis(i));
            s.record_get(5);
            // Fake one-second spacing.
            s.sample();
            s.samples.lock().back_mut().unwrap().at_ms = i as i64 * 1000;
        }
        s.record_get(0);
        let mut info = BTreeMap::new();
        s.runtime_info(&mut info);
        let put_tps: Vec<&str> = info["putTps"].split(' ').collect();
        assert_eq!(put_tps[0], "10.0", "{info:?}");
        assert_eq!(put_tps[1], "");
        assert_eq!(info["getTransferredTps"].split(' ').next(), Some("5.0"));
        assert_eq!(info["msgPutTotalTodayNow"], "120");
        assert_eq!(info["putMessageAverageSize"], "100.0");
        assert!(info["putMessageDistributeTime"].starts_with("[<=0ms]:1 [0~10ms]:10 [10~50ms]:1 "));
        assert!(info["runtime"].starts_with("[ 0 days, 0 hours, 0 minutes,"));
    }
}
