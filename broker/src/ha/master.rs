//! The master side of the replication stream: a listener on `haListenPort` and, per
//! connected slave, a sender (CommitLog batches from where the slave stands, a heartbeat
//! when idle) and an ack reader.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::protocol::{MasterHandshake, SlaveMessage, TransferHeader, read_slave_message};
use super::{Replication, Role};

/// Binds the HA listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Accepts slaves until `stop`; a connection is served only while this broker is master.
pub async fn serve(listener: TcpListener, ha: Arc<Replication>, stop: CancellationToken) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    warn!(error = %e, "HA accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (ha, stop) = (ha.clone(), stop.clone());
        tokio::spawn(async move {
            if let Err(e) = serve_slave(stream, peer, &ha, stop).await {
                debug!(%peer, error = %e, "replication connection ended");
            }
        });
    }
}

async fn serve_slave(
    stream: TcpStream,
    peer: SocketAddr,
    ha: &Arc<Replication>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    if ha.role() != Role::Master {
        return Ok(());
    }
    stream.set_nodelay(true)?;
    let (reader, mut writer) = stream.into_split();
    let mut reader = tokio::io::BufReader::new(reader);
    let housekeeping = ha.config.ha_housekeeping_interval;
    let hello = tokio::time::timeout(housekeeping, read_slave_message(&mut reader))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no handshake"))??;
    let SlaveMessage::Handshake(hello) = hello else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "replication stream must start with a handshake",
        ));
    };
    let handshake = MasterHandshake {
        max_offset: ha.store.commitlog().max_offset(),
        epochs: ha.epochs(),
    };
    writer.write_all(&handshake.encode()).await?;
    let link = ha.add_link(hello.slave_id);
    info!(%peer, slave_id = hello.slave_id, "slave handshake done");
    let _unlink = Unlink(ha.clone(), link);
    // The connection lives while the role does: a demoted master cuts its slaves off.
    let conn_stop = stop.child_token();
    let first_ack = Arc::new(tokio::sync::Notify::new());
    let start = Arc::new(std::sync::atomic::AtomicI64::new(-1));
    let reader_task = {
        let (ha, conn_stop, first_ack, start) = (
            ha.clone(),
            conn_stop.clone(),
            first_ack.clone(),
            start.clone(),
        );
        tokio::spawn(async move {
            let _cancel = conn_stop.clone().drop_guard();
            loop {
                let msg = tokio::select! {
                    _ = conn_stop.cancelled() => return,
                    m = tokio::time::timeout(housekeeping, read_slave_message(&mut reader)) => m,
                };
                match msg {
                    Ok(Ok(SlaveMessage::Ack(offset))) => {
                        if start.load(std::sync::atomic::Ordering::Acquire) < 0 {
                            start.store(offset.max(0), std::sync::atomic::Ordering::Release);
                            first_ack.notify_one();
                        }
                        ha.on_ack(link, offset);
                    }
                    Ok(Ok(SlaveMessage::Handshake(_))) => {}
                    Ok(Err(e)) => {
                        debug!(error = %e, "reading from the slave failed");
                        return;
                    }
                    Err(_) => {
                        warn!("the slave sent nothing for haHousekeepingInterval; closing");
                        return;
                    }
                }
            }
        })
    };
    let result = send_loop(
        &mut writer,
        ha,
        &conn_stop,
        &first_ack,
        &start,
        hello.sync_from_last_file,
    )
    .await;
    conn_stop.cancel();
    let _ = reader_task.await;
    result
}

struct Unlink(Arc<Replication>, u64);

impl Drop for Unlink {
    fn drop(&mut self) {
        self.0.remove_link(self.1);
    }
}

async fn send_loop(
    writer: &mut tokio::net::tcp::OwnedWriteHalf,
    ha: &Arc<Replication>,
    stop: &CancellationToken,
    first_ack: &tokio::sync::Notify,
    start: &std::sync::atomic::AtomicI64,
    sync_from_last_file: bool,
) -> std::io::Result<()> {
    // Where to start: the slave's first ack.
    loop {
        let notified = first_ack.notified();
        if start.load(std::sync::atomic::Ordering::Acquire) >= 0 {
            break;
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = notified => {}
            _ = tokio::time::sleep(ha.config.ha_housekeeping_interval) => {
                return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "slave never acked"));
            }
        }
    }
    let commitlog = ha.store.commitlog().clone();
    let requested = start.load(std::sync::atomic::Ordering::Acquire);
    let mut next = if requested > 0 {
        requested
    } else if sync_from_last_file {
        let max = commitlog.max_offset();
        max - max % commitlog.segment_size() as i64
    } else {
        commitlog.min_offset()
    };
    if next > commitlog.max_offset() || next < commitlog.min_offset() {
        warn!(
            requested = next,
            min = commitlog.min_offset(),
            max = commitlog.max_offset(),
            "slave asks for an offset this master does not hold; closing"
        );
        return Ok(());
    }
    let batch = ha.config.ha_transfer_batch_size;
    let heartbeat = ha.config.ha_send_heartbeat_interval;
    let mut sent_confirm = -1;
    let mut frame = Vec::with_capacity(batch + 64);
    loop {
        if stop.is_cancelled() || ha.role() != Role::Master {
            return Ok(());
        }
        let appended = ha.appended.notified();
        tokio::pin!(appended);
        appended.as_mut().enable();
        let acked = ha.acks_changed.notified();
        tokio::pin!(acked);
        acked.as_mut().enable();
        let epoch = ha.epoch_at(next);
        let limit = epoch.map_or(i64::MAX, |e| e.end_offset);
        let header = |body_size: i32, offset: i64| TransferHeader {
            body_size,
            offset,
            epoch: epoch.map_or(0, |e| e.epoch),
            epoch_start: epoch.map_or(0, |e| e.start_offset),
            confirm_offset: ha.store.confirm_offset(),
        };
        if let Some((chunk, after)) = commitlog.read_for_replication(next, batch, limit) {
            let h = header(chunk.len() as i32, next);
            sent_confirm = h.confirm_offset;
            // One write per batch: header and records together.
            frame.clear();
            frame.extend_from_slice(&h.encode());
            frame.extend_from_slice(&chunk);
            writer.write_all(&frame).await?;
            next = after;
            continue;
        }
        // Nothing to send: tell the slave about a newer confirm offset at once (it makes
        // what the slaves hold readable there), else keep the stream alive.
        let h = header(0, next);
        if h.confirm_offset > sent_confirm {
            sent_confirm = h.confirm_offset;
            writer.write_all(&h.encode()).await?;
            continue;
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = &mut appended => {}
            _ = &mut acked => {}
            _ = ha.role_changed.notified() => {}
            _ = tokio::time::sleep(heartbeat) => {
                writer.write_all(&header(0, next).encode()).await?;
            }
        }
    }
}
