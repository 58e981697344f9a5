//! The command-line tools' library: [`admin`] (everything behind `mqadmin`) and the
//! benchmark helpers `mqbench` shares (latency statistics, process sampling).

pub mod admin;

use std::time::Duration;

/// Latency samples of one benchmark run, in nanoseconds.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    samples: Vec<u64>,
}

impl Latencies {
    /// Records one sample.
    pub fn record(&mut self, d: Duration) {
        self.samples.push(d.as_nanos().min(u64::MAX as u128) as u64);
    }

    /// Merges another set of samples.
    pub fn merge(&mut self, other: Latencies) {
        self.samples.extend(other.samples);
    }

    /// Number of samples.
    pub fn count(&self) -> usize {
        self.samples.len()
    }

    /// The `q`-quantile (0.0–1.0), nearest-rank; zero when empty.
    pub fn quantile(&mut self, q: f64) -> Duration {
        if self.samples.is_empty() {
            return Duration::ZERO;
        }
        self.samples.sort_unstable();
        let rank = ((q * self.samples.len() as f64).ceil() as usize).clamp(1, self.samples.len());
        Duration::from_nanos(self.samples[rank - 1])
    }
}

/// Resident set size of process `pid` in KiB, from `/proc/<pid>/status` (`VmRSS`), and
/// its anonymous part (`RssAnon`) — page cache excluded.
pub fn rss_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("RssAnon:").unwrap_or(0)))
}

/// CPU time (user + system) a process has used so far, from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) are space-separated; utime and
    // stime are the 14th and 15th fields of the line, in clock ticks.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| Duration::from_secs_f64(ticks as f64 / per_second as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank() {
        let mut l = Latencies::default();
        for i in 1..=100 {
            l.record(Duration::from_micros(i));
        }
        assert_eq!(l.quantile(0.5), Duration::from_micros(50));
        assert_eq!(l.quantile(0.99), Duration::from_micros(99));
        assert_eq!(l.quantile(1.0), Duration::from_micros(100));
        assert_eq!(Latencies::default().quantile(0.5), Duration::ZERO);
    }

    #[test]
    fn reads_own_rss() {
        let (rss, anon) = rss_kib(std::process::id()).expect("linux /proc");
        assert!(rss > 0 && anon <= rss);
    }
}
