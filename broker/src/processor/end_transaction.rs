//! END_TRANSACTION (37): a producer commits or rolls back a half message (see
//! [`crate::transaction`]). Clients send it oneway, so failures are logged here as well as
//! answered.

use std::sync::Arc;

use rocketmq_common::protocol::RemotingCommand;
use rocketmq_common::protocol::headers::broker::EndTransactionRequestHeader;
use rocketmq_common::remoting::{ProcessResult, Reply, RequestContext, RequestProcessor};

use super::BrokerContext;
use crate::transaction;

/// Handles END_TRANSACTION.
pub struct EndTransactionProcessor {
    ctx: Arc<BrokerContext>,
}

impl EndTransactionProcessor {
    /// A processor over the shared context.
    pub fn new(ctx: Arc<BrokerContext>) -> Self {
        Self { ctx }
    }
}

async fn end(
    ctx: Arc<BrokerContext>,
    peer: std::net::SocketAddr,
    request: RemotingCommand,
) -> ProcessResult {
    let h: EndTransactionRequestHeader = request.decode_header()?;
    let result = transaction::end_transaction(&ctx, &h).await;
    if let Err(e) = &result {
        // Oneway senders never see the answer: the log is the only trace of a refusal.
        tracing::warn!(
            %peer,
            group = %h.producer_group,
            msg_id = %h.msg_id,
            commit_log_offset = h.commit_log_offset,
            resolution = h.commit_or_rollback,
            error = %e,
            "END_TRANSACTION refused"
        );
    }
    result
}

impl RequestProcessor for EndTransactionProcessor {
    fn process(&self, rctx: &RequestContext, request: RemotingCommand) -> Reply {
        Reply::Later(Box::pin(end(
            self.ctx.clone(),
            rctx.connection.peer(),
            request,
        )))
    }
}
