//! A fault-injecting TCP relay: forwards connections to a target until it is cut, then
//! black-holes them (nothing is forwarded, nothing is closed, new connections are accepted
//! and left silent), the way a network partition looks to both sides. Healing resumes
//! forwarding.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running relay (stops when dropped).
pub struct Relay {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
    stopped: Arc<AtomicBool>,
}

impl Relay {
    /// Listens on a free loopback port and forwards to `target`.
    pub async fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay address");
        let (cut, cut_rx) = watch::channel(false);
        let stopped = Arc::new(AtomicBool::new(false));
        let target = target.to_string();
        let stop = stopped.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                let Ok(Ok((inbound, _))) =
                    tokio::time::timeout(Duration::from_millis(200), listener.accept()).await
                else {
                    continue;
                };
                let (target, cut_rx, stop) = (target.clone(), cut_rx.clone(), stop.clone());
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    let (ri, wi) = inbound.into_split();
                    let (ro, wo) = outbound.into_split();
                    let a = tokio::spawn(pump(ri, wo, cut_rx.clone(), stop.clone()));
                    let b = tokio::spawn(pump(ro, wi, cut_rx, stop));
                    let _ = tokio::join!(a, b);
                });
            }
        });
        Self { addr, cut, stopped }
    }

    /// The address to connect to instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts black-holing.
    pub fn cut(&self) {
        let _ = self.cut.send(true);
    }

    /// Forwards again.
    pub fn heal(&self) {
        let _ = self.cut.send(false);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Release);
        let _ = self.cut.send(false);
    }
}

/// Copies `from` to `to` while not cut; while cut, reads nothing (data piles up in the
/// kernel and the sender sees silence, as behind a partition).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut cut: watch::Receiver<bool>,
    stop: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if stop.load(Ordering::Acquire) {
            return;
        }
        if *cut.borrow_and_update() {
            if cut.changed().await.is_err() {
                return;
            }
            continue;
        }
        tokio::select! {
            changed = cut.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            n = from.read(&mut buf) => {
                let n = match n {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                // Bytes read just before a cut are dropped: a partition loses packets in
                // flight too.
                if *cut.borrow() {
                    continue;
                }
                if to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}
