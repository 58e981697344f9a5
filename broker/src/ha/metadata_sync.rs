//! What a slave copies from its master besides the CommitLog (RocketMQ's
//! `SlaveSynchronize`): topics, subscription groups, consumer offsets, delay-level offsets
//! and the timer's progress. Every 10 s, and right after becoming a slave, so that a
//! promoted slave routes the same topics and resumes consumers, delayed and timer messages
//! close to where the old master was (at least once: a little may be delivered again).

use std::sync::Arc;
use std::time::Duration;

use rocketmq_common::protocol::{RemotingCommand, RequestCode};
use rocketmq_common::remoting::{ClientConfig, RemotingClient, RemotingError};
use rocketmq_common::route::TopicConfigSerializeWrapper;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::Role;
use crate::processor::{BrokerContext, blocking};
use crate::schedule::ScheduleMessageService;

/// How often a slave syncs.
const SYNC_PERIOD: Duration = Duration::from_secs(5);
/// Timeout of each request to the master.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Runs until `stop`.
pub async fn run(ctx: Arc<BrokerContext>, stop: CancellationToken) {
    let client = RemotingClient::new(ClientConfig::default());
    loop {
        let role_changed = ctx.replication.role_changed().notified();
        tokio::pin!(role_changed);
        role_changed.as_mut().enable();
        if ctx.replication.role() == Role::Slave
            && let Some(master) = ctx.replication.master_remoting_addr()
        {
            match sync_once(&ctx, &client, &master).await {
                Ok(()) => debug!(%master, "metadata synced from the master"),
                Err(e) => warn!(%master, error = %e, "syncing metadata from the master failed"),
            }
        }
        adopt_stored_topics(&ctx).await;
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(SYNC_PERIOD) => {}
            _ = &mut role_changed => {}
        }
    }
}

/// Topics with messages but no config (newer than the last sync) get one, so consumers
/// and producers of a promoted slave find them; a master announces them at once.
async fn adopt_stored_topics(ctx: &Arc<BrokerContext>) {
    let queues: Vec<(String, i32)> = ctx
        .store
        .queues()
        .all()
        .iter()
        .map(|q| (q.topic().to_string(), q.queue_id()))
        .collect();
    let c = ctx.clone();
    match blocking(move || c.topics.adopt_stored_topics(queues)).await {
        Ok(created) if !created.is_empty() => {
            tracing::info!(topics = ?created, "created configs for stored topics without one");
            if ctx.replication.role() == Role::Master {
                ctx.registration.trigger();
            }
        }
        Ok(_) => {}
        Err(e) => warn!(error = %e, "creating configs for stored topics failed"),
    }
}

async fn fetch(
    client: &RemotingClient,
    master: &str,
    code: RequestCode,
) -> Result<bytes::Bytes, RemotingError> {
    Ok(client
        .invoke_ok(master, RemotingCommand::bare_request(code), TIMEOUT)
        .await?
        .body)
}

/// One round of copying from the master at `master`.
pub async fn sync_once(
    ctx: &Arc<BrokerContext>,
    client: &RemotingClient,
    master: &str,
) -> Result<(), String> {
    let topics = fetch(client, master, RequestCode::GET_ALL_TOPIC_CONFIG)
        .await
        .map_err(|e| e.to_string())?;
    let topics: TopicConfigSerializeWrapper =
        rocketmq_common::json::from_slice_lenient(&topics).map_err(|e| format!("topics: {e}"))?;
    let groups = fetch(
        client,
        master,
        RequestCode::GET_ALL_SUBSCRIPTIONGROUP_CONFIG,
    )
    .await
    .map_err(|e| e.to_string())?;
    let offsets = fetch(client, master, RequestCode::GET_ALL_CONSUMER_OFFSET)
        .await
        .map_err(|e| e.to_string())?;
    let delays = fetch(client, master, RequestCode::GET_ALL_DELAY_OFFSET)
        .await
        .map_err(|e| e.to_string())?;
    let delays = ScheduleMessageService::parse_offsets(&delays)
        .map_err(|e| format!("delay offsets: {e}"))?;
    if let Some(timer) = &ctx.timer
        && let Ok(cp) = fetch(client, master, RequestCode::GET_TIMER_CHECK_POINT).await
        && cp.len() >= 8
    {
        timer.follow_master(i64::from_be_bytes(cp[..8].try_into().expect("8 bytes")));
    }
    // Still a slave? A promotion meanwhile must not be overwritten with old data.
    if ctx.replication.role() != Role::Slave {
        return Ok(());
    }
    ctx.schedule.set_delivered_offsets(delays);
    let c = ctx.clone();
    blocking(move || -> Result<(), String> {
        c.topics
            .sync_from_master(&topics)
            .map_err(|e| e.to_string())?;
        c.groups
            .sync_from_master(&groups)
            .map_err(|e| e.to_string())?;
        c.offsets
            .sync_from_master(&offsets)
            .map_err(|e| e.to_string())?;
        c.offsets.flush().map_err(|e| e.to_string())?;
        c.schedule.flush().map_err(|e| e.to_string())
    })
    .await
}
