//! QUERY_MESSAGE (12, by key or unique key) and VIEW_MESSAGE_BY_ID (33, by offset id).

use std::sync::Arc;

use rocketmq_common::protocol::headers::broker::{
    QueryMessageRequestHeader, QueryMessageResponseHeader, ViewMessageRequestHeader,
};
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{
    ProcessError, ProcessResult, Reply, RequestContext, RequestProcessor,
};

use super::{BrokerContext, blocking, store_error, unsupported};

/// Handles message queries.
pub struct QueryProcessor {
    ctx: Arc<BrokerContext>,
}

impl QueryProcessor {
    /// A processor over the shared context.
    pub fn new(ctx: Arc<BrokerContext>) -> Self {
        Self { ctx }
    }

    fn query(&self, request: &RemotingCommand) -> ProcessResult {
        let h: QueryMessageRequestHeader = request.decode_header()?;
        let max = h.max_num.clamp(1, 64 * 1024) as usize;
        let found = self
            .ctx
            .store
            .query_message(&h.topic, &h.key, max, h.begin_timestamp, h.end_timestamp)
            .map_err(store_error)?;
        if found.is_empty() {
            return Err(ProcessError::new(
                ResponseCode::QueryNotFound,
                "can not find message, maybe time range not correct",
            ));
        }
        let mut body = Vec::new();
        let mut last_timestamp = 0;
        let mut last_offset = 0;
        for buf in &found {
            let record = buf.decode().map_err(store_error)?;
            last_timestamp = last_timestamp.max(record.store_timestamp);
            last_offset = last_offset.max(record.physical_offset);
            body.extend_from_slice(buf);
        }
        Ok(Some(
            RemotingCommand::success()
                .with_header(&QueryMessageResponseHeader {
                    index_last_update_timestamp: last_timestamp,
                    index_last_update_phyoffset: last_offset,
                })
                .with_body(body),
        ))
    }

    fn view(&self, request: &RemotingCommand) -> ProcessResult {
        let h: ViewMessageRequestHeader = request.decode_header()?;
        match self
            .ctx
            .store
            .get_message_by_offset(h.offset)
            .map_err(store_error)?
        {
            Some(buf) => Ok(Some(RemotingCommand::success().with_body(buf.to_vec()))),
            None => Err(ProcessError::new(
                ResponseCode::SystemError,
                format!("can not find message by the offset, {}", h.offset),
            )),
        }
    }
}

impl RequestProcessor for QueryProcessor {
    fn process(&self, _ctx: &RequestContext, request: RemotingCommand) -> Reply {
        // Index lookups walk mapped index files that may not be in memory: blocking pool.
        let this = Self {
            ctx: self.ctx.clone(),
        };
        Reply::Later(Box::pin(blocking(move || match request.request_code() {
            Some(RequestCode::QUERY_MESSAGE) => this.query(&request),
            Some(RequestCode::VIEW_MESSAGE_BY_ID) => this.view(&request),
            _ => Err(unsupported(request.code)),
        })))
    }
}
