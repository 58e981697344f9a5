//! The disk's sequential write ceiling: the baseline store and broker benchmarks report
//! their throughput against, measured on the same directory in the same run.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// Bytes per second of buffered 1 MiB `write(2)` calls followed by one `fsync`, for at most
/// `seconds` or `max_bytes`, in a temporary file under `dir` (removed afterwards). Ends with
/// `sync(2)` and a one-second pause so the next measurement does not inherit write-back.
pub fn raw_write_bandwidth(dir: &Path, seconds: f64, max_bytes: u64) -> std::io::Result<f64> {
    let path = dir.join("raw-bandwidth.tmp");
    let mut f = std::fs::File::create(&path)?;
    let chunk = vec![0x5Au8; 1 << 20];
    let start = Instant::now();
    let mut written = 0u64;
    while written < max_bytes && start.elapsed().as_secs_f64() < seconds {
        f.write_all(&chunk)?;
        written += chunk.len() as u64;
    }
    f.sync_all()?;
    let elapsed = start.elapsed().as_secs_f64();
    drop(f);
    std::fs::remove_file(&path)?;
    settle();
    Ok(written as f64 / elapsed)
}

/// Pushes dirty pages out and lets the disk quiet down between measurements.
pub fn settle() {
    // SAFETY: sync(2) has no preconditions.
    unsafe { libc::sync() };
    std::thread::sleep(Duration::from_secs(1));
}
