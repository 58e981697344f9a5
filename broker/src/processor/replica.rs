//! Replication requests: GET_BROKER_EPOCH_CACHE (1007), NOTIFY_BROKER_ROLE_CHANGED (1008,
//! from the controller), and what a slave syncs from its master: GET_ALL_CONSUMER_OFFSET
//! (43), GET_ALL_DELAY_OFFSET (45), GET_TIMER_CHECK_POINT (60).

use std::sync::Arc;

use rocketmq_common::controller::SyncStateSet;
use rocketmq_common::json::from_slice_lenient;
use rocketmq_common::protocol::headers::controller::NotifyBrokerRoleChangedRequestHeader;
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{
    ProcessError, ProcessResult, Reply, RequestContext, RequestProcessor,
};

use super::{BrokerContext, json_body, unsupported};

/// Handles the replication codes.
pub struct ReplicaProcessor {
    ctx: Arc<BrokerContext>,
}

impl ReplicaProcessor {
    /// A processor over the shared context.
    pub fn new(ctx: Arc<BrokerContext>) -> Self {
        Self { ctx }
    }

    fn notify_role_changed(&self, request: &RemotingCommand) -> ProcessResult {
        let Some(link) = self.ctx.controller.clone() else {
            return Err(ProcessError::new(
                ResponseCode::SystemError,
                "this broker is not in controller mode",
            ));
        };
        let header: NotifyBrokerRoleChangedRequestHeader = request.decode_header()?;
        let set: SyncStateSet = from_slice_lenient(&request.body).unwrap_or_default();
        tokio::spawn(async move { link.on_role_notification(header, set).await });
        Ok(Some(RemotingCommand::success()))
    }
}

impl RequestProcessor for ReplicaProcessor {
    fn process(&self, _: &RequestContext, request: RemotingCommand) -> Reply {
        Reply::Now(match request.request_code() {
            Some(RequestCode::GET_BROKER_EPOCH_CACHE) => {
                if self.ctx.controller.is_none() {
                    Err(ProcessError::new(
                        ResponseCode::SystemError,
                        "this request only for controllerMode ",
                    ))
                } else {
                    Ok(Some(
                        RemotingCommand::success()
                            .with_body(json_body(&self.ctx.replication.epoch_cache())),
                    ))
                }
            }
            Some(RequestCode::NOTIFY_BROKER_ROLE_CHANGED) => self.notify_role_changed(&request),
            Some(RequestCode::GET_ALL_CONSUMER_OFFSET) => Ok(Some(
                RemotingCommand::success().with_body(self.ctx.offsets.snapshot_json()),
            )),
            Some(RequestCode::GET_ALL_DELAY_OFFSET) => Ok(Some(
                RemotingCommand::success().with_body(self.ctx.schedule.offsets_json()),
            )),
            Some(RequestCode::GET_TIMER_CHECK_POINT) => match &self.ctx.timer {
                Some(timer) => Ok(Some(
                    RemotingCommand::success().with_body(timer.checkpoint_bytes()),
                )),
                None => Err(ProcessError::new(
                    ResponseCode::SystemError,
                    "timer messages are disabled on this broker",
                )),
            },
            _ => Err(unsupported(request.code)),
        })
    }
}
