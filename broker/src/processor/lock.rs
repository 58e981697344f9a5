//! LOCK_BATCH_MQ (41) and UNLOCK_BATCH_MQ (42): queue locks of orderly consumers (see
//! [`crate::locks`]).

use std::sync::Arc;
use std::time::Instant;

use rocketmq_common::body::{LockBatchRequestBody, LockBatchResponseBody};
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{
    ProcessError, ProcessResult, Reply, RequestContext, RequestProcessor,
};

use super::{BrokerContext, json_body, unsupported};

/// Handles queue locks.
pub struct LockProcessor {
    ctx: Arc<BrokerContext>,
}

impl LockProcessor {
    /// A processor over the shared context.
    pub fn new(ctx: Arc<BrokerContext>) -> Self {
        Self { ctx }
    }

    fn body(
        rctx: &RequestContext,
        request: &RemotingCommand,
    ) -> Result<LockBatchRequestBody, ProcessError> {
        rocketmq_common::json::from_slice_lenient(&request.body).map_err(|e| {
            tracing::warn!(peer = %rctx.connection.peer(), code = request.code, error = %e, "queue lock request refused: body does not parse");
            ProcessError::new(ResponseCode::SystemError, format!("invalid lock body: {e}"))
        })
    }

    fn lock(&self, rctx: &RequestContext, request: &RemotingCommand) -> ProcessResult {
        let body = Self::body(rctx, request)?;
        let held = self.ctx.locks.try_lock(
            &body.consumer_group,
            &body.client_id,
            &body.mq_set,
            Instant::now(),
        );
        Ok(Some(RemotingCommand::success().with_body(json_body(
            &LockBatchResponseBody {
                lock_ok_mq_set: held,
            },
        ))))
    }

    fn unlock(&self, rctx: &RequestContext, request: &RemotingCommand) -> ProcessResult {
        let body = Self::body(rctx, request)?;
        self.ctx
            .locks
            .unlock(&body.consumer_group, &body.client_id, &body.mq_set);
        Ok(Some(RemotingCommand::success()))
    }
}

impl RequestProcessor for LockProcessor {
    fn process(&self, rctx: &RequestContext, request: RemotingCommand) -> Reply {
        Reply::Now(match request.request_code() {
            Some(RequestCode::LOCK_BATCH_MQ) => self.lock(rctx, &request),
            Some(RequestCode::UNLOCK_BATCH_MQ) => self.unlock(rctx, &request),
            _ => Err(unsupported(request.code)),
        })
    }
}
