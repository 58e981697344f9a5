//! Consumer offsets and queue offsets: QUERY/UPDATE_CONSUMER_OFFSET (14/15), GET_MAX_OFFSET
//! (30), GET_MIN_OFFSET (31), SEARCH_OFFSET_BY_TIMESTAMP (29), GET_EARLIEST_MSG_STORETIME (32).

use std::sync::Arc;

use rocketmq_common::protocol::headers::broker::{
    GetEarliestMsgStoretimeResponseHeader, GetMaxOffsetRequestHeader, OffsetResponseHeader,
    QueryConsumerOffsetRequestHeader, QueueRequestHeader, SearchOffsetRequestHeader,
    UpdateConsumerOffsetRequestHeader,
};
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{
    ProcessError, ProcessResult, Reply, RequestContext, RequestProcessor,
};

use super::{BrokerContext, store_error, unsupported};
use rocketmq_store::BoundaryType;

/// Handles the offset codes; all answer synchronously from memory.
pub struct OffsetProcessor {
    ctx: Arc<BrokerContext>,
}

impl OffsetProcessor {
    /// A processor over the shared context.
    pub fn new(ctx: Arc<BrokerContext>) -> Self {
        Self { ctx }
    }

    fn query_consumer_offset(&self, request: &RemotingCommand) -> ProcessResult {
        let h: QueryConsumerOffsetRequestHeader = request.decode_header()?;
        if let Some(offset) = self
            .ctx
            .offsets
            .query(&h.consumer_group, &h.topic, h.queue_id)
        {
            return Ok(Some(offset_response(offset)));
        }
        if h.set_zero_if_not_found == Some(false) {
            return Err(ProcessError::new(
                ResponseCode::QueryNotFound,
                "Not found, do not set to zero, maybe this group boot first",
            ));
        }
        // A group new to a queue whose first message is still stored starts at 0, as Java does
        // when offset 0 is still in memory.
        if self.ctx.store.min_offset_in_queue(&h.topic, h.queue_id) <= 0 {
            return Ok(Some(offset_response(0)));
        }
        Err(ProcessError::new(
            ResponseCode::QueryNotFound,
            "Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first",
        ))
    }

    fn update_consumer_offset(&self, request: &RemotingCommand) -> ProcessResult {
        let h: UpdateConsumerOffsetRequestHeader = request.decode_header()?;
        if self.ctx.topics.get(&h.topic).is_none() {
            return Err(ProcessError::new(
                ResponseCode::TopicNotExist,
                format!("Topic {} not exist!", h.topic),
            ));
        }
        if self
            .ctx
            .offsets
            .has_reset(&h.consumer_group, &h.topic, h.queue_id)
        {
            // The consumer has not seen the admin's reset yet; its commit would undo it.
            return Ok(Some(RemotingCommand::response(
                ResponseCode::Success,
                Some("Offset has been previously reset".into()),
            )));
        }
        self.ctx
            .offsets
            .commit(&h.consumer_group, &h.topic, h.queue_id, h.commit_offset);
        Ok(Some(RemotingCommand::success()))
    }

    fn earliest_store_time(&self, request: &RemotingCommand) -> ProcessResult {
        let h: QueueRequestHeader = request.decode_header()?;
        let min = self.ctx.store.min_offset_in_queue(&h.topic, h.queue_id);
        let result = self
            .ctx
            .store
            .get_messages(&h.topic, h.queue_id, min, 1, usize::MAX)
            .map_err(store_error)?;
        let Some((_, buf)) = result.messages.first() else {
            return Err(ProcessError::new(
                ResponseCode::SystemError,
                format!("no message in queue {}:{}", h.topic, h.queue_id),
            ));
        };
        let timestamp = buf.decode().map_err(store_error)?.store_timestamp;
        Ok(Some(RemotingCommand::success().with_header(
            &GetEarliestMsgStoretimeResponseHeader { timestamp },
        )))
    }
}

fn offset_response(offset: i64) -> RemotingCommand {
    RemotingCommand::success().with_header(&OffsetResponseHeader { offset })
}

impl RequestProcessor for OffsetProcessor {
    fn process(&self, _ctx: &RequestContext, request: RemotingCommand) -> Reply {
        let store = &self.ctx.store;
        Reply::Now(match request.request_code() {
            Some(RequestCode::QUERY_CONSUMER_OFFSET) => self.query_consumer_offset(&request),
            Some(RequestCode::UPDATE_CONSUMER_OFFSET) => self.update_consumer_offset(&request),
            Some(RequestCode::GET_MAX_OFFSET) => request
                .decode_header::<GetMaxOffsetRequestHeader>()
                .map_err(Into::into)
                .map(|h| {
                    Some(offset_response(
                        store.max_offset_in_queue(&h.topic, h.queue_id),
                    ))
                }),
            Some(RequestCode::GET_MIN_OFFSET) => request
                .decode_header::<QueueRequestHeader>()
                .map_err(Into::into)
                .map(|h| {
                    Some(offset_response(
                        store.min_offset_in_queue(&h.topic, h.queue_id),
                    ))
                }),
            Some(RequestCode::SEARCH_OFFSET_BY_TIMESTAMP) => request
                .decode_header::<SearchOffsetRequestHeader>()
                .map_err(Into::into)
                .map(|h| {
                    let boundary = match h.boundary_type.as_deref() {
                        Some(b) if b.eq_ignore_ascii_case("UPPER") => BoundaryType::Upper,
                        _ => BoundaryType::Lower,
                    };
                    Some(offset_response(store.offset_by_time(
                        &h.topic,
                        h.queue_id,
                        h.timestamp,
                        boundary,
                    )))
                }),
            Some(RequestCode::GET_EARLIEST_MSG_STORETIME) => self.earliest_store_time(&request),
            _ => Err(unsupported(request.code)),
        })
    }
}
