//! The slave side of the replication stream: connect to the master's HA address,
//! handshake, cut a diverged tail (controller mode: at the last epoch both logs share),
//! then append every batch the master sends, acknowledge it (after it is durable under
//! SYNC_FLUSH) and make readable what the master confirms.

use std::sync::Arc;
use std::time::Duration;

use rocketmq_store::FlushDiskType;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::epoch::consistent_point;
use super::protocol::{MasterHandshake, SlaveHandshake, TransferHeader, encode_ack};
use super::{Replication, Role};

/// Why following the master stopped.
#[derive(Debug, thiserror::Error)]
enum FollowError {
    #[error("replication stream: {0}")]
    Io(#[from] std::io::Error),
    #[error("store: {0}")]
    Store(#[from] rocketmq_store::StoreError),
    #[error("{0}")]
    Refused(String),
}

/// Runs the HA client until `stop`: while this broker is a slave it follows the master,
/// reconnecting after failures and whenever the master changes.
pub async fn run(ha: Arc<Replication>, stop: CancellationToken) {
    let mut generation = ha.follow_generation.subscribe();
    loop {
        if stop.is_cancelled() {
            return;
        }
        generation.borrow_and_update();
        let target = (ha.role() == Role::Slave)
            .then(|| ha.ha_master_target())
            .flatten();
        let Some(target) = target else {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = generation.changed() => {}
                _ = ha.role_changed.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            continue;
        };
        let result = {
            let _following = ha.client_lock.lock().await;
            if ha.role() != Role::Slave || generation.has_changed().unwrap_or(true) {
                continue;
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = generation.changed() => Ok(()),
                r = follow(&ha, &target) => r,
            }
        };
        if let Err(e) = result {
            warn!(master = %target, error = %e, "following the master failed; retrying");
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = generation.changed() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

async fn follow(ha: &Arc<Replication>, target: &str) -> Result<(), FollowError> {
    let cfg = &ha.config;
    let stream = tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(target))
        .await
        .map_err(|_| FollowError::Refused(format!("connecting to {target} timed out")))??;
    stream.set_nodelay(true)?;
    let (reader, mut writer) = stream.into_split();
    // Headers and bodies arrive back to back: read them through one buffer.
    let mut reader = tokio::io::BufReader::with_capacity(256 * 1024, reader);
    writer
        .write_all(
            &SlaveHandshake {
                sync_from_last_file: cfg.sync_from_last_file,
                async_learner: false,
                slave_id: ha.local_id(),
            }
            .encode(),
        )
        .await?;
    let master = tokio::time::timeout(
        cfg.ha_housekeeping_interval,
        MasterHandshake::read(&mut reader),
    )
    .await
    .map_err(|_| FollowError::Refused("no handshake from the master".into()))??;
    let store = ha.store.clone();
    let local_max = store.commitlog().max_offset();
    let start = if cfg.enable_controller_mode {
        let expected = ha.role_state().master_epoch;
        let theirs = master.epochs.last().map_or(-1, |e| e.epoch);
        if theirs < expected {
            return Err(FollowError::Refused(format!(
                "{target} is at epoch {theirs}, but the controller named a master of epoch {expected}"
            )));
        }
        let local = ha.epochs();
        let point = if local.is_empty() {
            // Nothing recorded: only an empty log is known to agree with the master.
            if local_max > store.commitlog().min_offset() {
                warn!(
                    local_max,
                    "no epochs recorded for a non-empty log; cutting it"
                );
            }
            store.commitlog().min_offset()
        } else {
            consistent_point(&local, local_max, &master.epochs, master.max_offset).ok_or_else(
                || FollowError::Refused(format!("no epoch in common with the master at {target}")),
            )?
        };
        if point < local_max {
            warn!(
                point,
                local_max, "cutting the tail that diverged from the new master"
            );
            ha.truncate_to(point).await?;
        }
        point
    } else {
        if local_max > master.max_offset {
            return Err(FollowError::Refused(format!(
                "this slave holds {local_max} bytes, more than its master's {}",
                master.max_offset
            )));
        }
        local_max
    };
    writer.write_all(&encode_ack(start)).await?;
    info!(master = %target, from = start, "following the master");

    let max_body = cfg
        .ha_transfer_batch_size
        .max(store.config().max_message_size + 64 * 1024)
        * 2;
    let sync_flush = store.config().flush_disk_type == FlushDiskType::SyncFlush;
    let mut last_ack = tokio::time::Instant::now();
    let mut body = Vec::new();
    loop {
        let header = tokio::time::timeout(
            cfg.ha_housekeeping_interval,
            TransferHeader::read(&mut reader, max_body),
        )
        .await
        .map_err(|_| FollowError::Refused("the master went silent".into()))??;
        let mut end = store.commitlog().max_offset();
        // The epoch of what the master sends (heartbeats too, so an empty replica records
        // the epoch it follows), once this log has reached the epoch's start.
        if cfg.enable_controller_mode && header.epoch_start <= end && header.offset == end {
            ha.note_epoch(header.epoch, header.epoch_start)?;
        }
        if header.body_size > 0 {
            body.resize(header.body_size as usize, 0);
            reader.read_exact(&mut body).await?;
            if header.offset != end {
                return Err(FollowError::Refused(format!(
                    "the master sent offset {}, this log ends at {end}",
                    header.offset
                )));
            }
            end = store.append_replicated(header.offset, &body)?;
            if sync_flush
                && !store
                    .commitlog()
                    .watermark()
                    .wait(
                        end,
                        Duration::from_millis(store.config().sync_flush_timeout),
                    )
                    .await
            {
                warn!(end, "flushing replicated bytes timed out");
                end = store.flushed_offset();
            }
        }
        store.set_confirm_offset(header.confirm_offset.min(end));
        if header.body_size > 0 || last_ack.elapsed() >= cfg.ha_send_heartbeat_interval {
            writer.write_all(&encode_ack(end)).await?;
            last_ack = tokio::time::Instant::now();
        }
    }
}
