//! Test harness shared by every crate's integration tests, so each test file states its
//! scenario instead of re-implementing ports, processes and polling:
//! - [`free_port`] and [`wait_until`];
//! - [`binary`] finds a workspace binary (building it when only another package was built)
//!   and [`ServerProcess`] runs one, killed when dropped;
//! - [`requests`] builds the Remoting requests tests send most, and [`records`] reads pull
//!   bodies back;
//! - [`cluster`] runs a controller-mode cluster of real processes, [`standalone`] a name
//!   server and one broker.
//!
//! It depends only on the protocol crate, so the server crates can use it in their own tests.

pub mod cluster;
pub mod relay;
pub mod requests;
pub mod standalone;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rocketmq_common::message::{DecodedRecord, RecordEntry, decode_record};

/// Ports handed to test servers come from below the kernel's ephemeral range (Linux:
/// 32768-60999). A port from `bind(":0")` lies inside that range, so between the probe and the
/// server's own bind any outgoing connection of a concurrent test could take it as its local
/// port (CI saw exactly that: `AddrInUse`). Below the range only explicit binds compete.
const TEST_PORTS: std::ops::Range<u32> = 20_000..32_000;

/// The next candidate port, always even so that it and its successor form a block of two no
/// other call hands out (a broker also binds its listen port + 1 for HA). Each process starts at
/// its own offset so concurrent test binaries rarely probe the same ports, and every call moves
/// on so one process never hands a block out twice.
fn next_candidate() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let blocks = (TEST_PORTS.end - TEST_PORTS.start) / 2;
    if NEXT.load(Ordering::Relaxed) == u32::MAX {
        let start = std::process::id().wrapping_mul(2_654_435_761) % blocks;
        let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::Relaxed, Ordering::Relaxed);
    }
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    (TEST_PORTS.start + (n % blocks) * 2) as u16
}

/// Whether nothing listens on `port`, on loopback nor on the wildcard address.
fn port_is_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
        && std::net::TcpListener::bind(("0.0.0.0", port)).is_ok()
}

/// A TCP port nobody listens on right now, whose successor is free as well (a broker's HA
/// port is its listen port + 1), and that no outgoing connection will take (both lie below
/// the ephemeral range).
pub fn free_port() -> u16 {
    loop {
        let p = next_candidate();
        if port_is_free(p) && port_is_free(p + 1) {
            return p;
        }
    }
}

/// A free port whose successor is free too; every [`free_port`] is such a port, this name says
/// so where the successor matters.
pub fn free_port_pair() -> u16 {
    free_port()
}

/// Polls `probe` every 20 ms until it returns `Some`; panics naming `what` after `limit`.
pub async fn wait_until<F, Fut, R>(what: &str, limit: Duration, mut probe: F) -> R
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<R>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(r) = probe().await {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The directory holding the workspace's binaries: a test binary lives in
/// `target/<profile>/deps`, a tool (mqbench) right in `target/<profile>`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("the binary has a directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("deps has a parent").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// Path of the workspace binary `name` of package `package`, built on demand when the test
/// run did not build it (e.g. `cargo test -p` of another package).
pub fn binary(package: &str, name: &str) -> PathBuf {
    let path = target_dir().join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", package, "--bin", name])
            .status()
            .unwrap_or_else(|e| panic!("run cargo build for {name}: {e}"));
        assert!(status.success(), "building {name} failed");
    }
    path
}

/// A Python virtual environment at `dir` with `requirement` installed (created once; reused
/// while it holds the same requirement); returns its `python`. Needs `python3` with `venv`.
pub fn python_venv(dir: &Path, requirement: &str) -> PathBuf {
    let python = dir.join("bin").join("python");
    let ready = dir.join(".installed");
    if std::fs::read_to_string(&ready).ok().as_deref() == Some(requirement) {
        return python;
    }
    let status = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(dir)
        .status()
        .expect("python3 with venv is required for the client compatibility tests");
    assert!(
        status.success(),
        "creating the venv {} failed",
        dir.display()
    );
    let out = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            requirement,
        ])
        .output()
        .expect("run pip");
    assert!(
        out.status.success(),
        "pip install {requirement} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&ready, requirement).expect("mark the venv ready");
    python
}

/// A child process killed (SIGKILL) when dropped.
pub struct ServerProcess {
    child: Child,
    name: String,
}

impl ServerProcess {
    /// Starts `program` with `args`; its output goes to `log` (or nowhere).
    pub fn spawn(program: &Path, args: &[&str], log: Option<&Path>) -> Self {
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null());
        match log {
            Some(path) => {
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("open log file");
                cmd.stdout(f.try_clone().expect("clone log handle"))
                    .stderr(f);
            }
            None => {
                cmd.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
        Self {
            child,
            name: program
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        }
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills with SIGKILL and reaps.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().expect("wait for child");
        assert!(
            status.success(),
            "{} exited with {status} on SIGTERM",
            self.name
        );
    }

    /// Whether the process has exited.
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A CommitLog record as a broker stores it (born at 10.0.0.9, stored at 127.0.0.1:10911),
/// for tests of code that decodes query and pull bodies.
pub fn stored_record(
    topic: &str,
    queue_id: i32,
    queue_offset: i64,
    physical_offset: i64,
    properties: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    use rocketmq_common::message::{
        RecordHeaderFields, RecordInput, body_crc, encode_properties, encode_record,
        encoded_record_len,
    };
    let props = encode_properties(properties.iter().copied());
    let input = RecordInput {
        topic,
        queue_id,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 1_700_000_000_000,
        born_host: "10.0.0.9:50000".parse().expect("address"),
        store_host: "127.0.0.1:10911".parse().expect("address"),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body,
        properties: &props,
    };
    let mut buf = vec![0u8; encoded_record_len(&input).expect("valid record")];
    encode_record(
        &input,
        &RecordHeaderFields {
            queue_offset,
            physical_offset,
            store_timestamp: 1_700_000_000_500,
            body_crc: body_crc(body),
        },
        &mut buf,
    )
    .expect("record fits");
    buf
}

/// The messages in a pull response body, in order.
pub fn records(body: &[u8]) -> Vec<DecodedRecord<'_>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        match decode_record(&body[pos..], true) {
            Ok(RecordEntry::Message(m)) => {
                pos += m.total_size as usize;
                out.push(m);
            }
            other => panic!("pull body at {pos}: {other:?}"),
        }
    }
    out
}
