//! Where a message is stored: its own queue, or a system queue it waits in until due (delay
//! levels in `SCHEDULE_TOPIC_XXXX`). Sends and transaction commits route through
//! [`route`], so a delayed message is delayed whichever way it arrives.

use rocketmq_common::remoting::ProcessError;
use rocketmq_common::topic::SCHEDULE_TOPIC;

use crate::processor::BrokerContext;
use crate::schedule::{delay_rewrite, requested_delay_level};

/// The queue a message goes to and the properties it is stored with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Topic to append to.
    pub topic: String,
    /// Queue to append to.
    pub queue_id: i32,
    /// Properties to store (carrying the real destination when parked).
    pub properties: String,
    /// Whether the message waits in a system queue before it becomes visible.
    pub delayed: bool,
}

/// Routes a message for `topic`/`queue_id` with `properties`: a delay level parks it in the
/// schedule topic; anything else goes straight to its queue.
pub fn route(
    ctx: &BrokerContext,
    topic: &str,
    queue_id: i32,
    properties: &str,
) -> Result<Route, ProcessError> {
    let level = requested_delay_level(properties);
    if level > 0 {
        let (queue, props) =
            delay_rewrite(ctx.schedule.levels(), level, topic, queue_id, properties);
        return Ok(Route {
            topic: SCHEDULE_TOPIC.to_string(),
            queue_id: queue,
            properties: props,
            delayed: true,
        });
    }
    Ok(Route {
        topic: topic.to_string(),
        queue_id,
        properties: properties.to_string(),
        delayed: false,
    })
}
