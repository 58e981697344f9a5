//! Builders for the requests tests send most, with the fields clients usually set.

use std::time::Duration;

use rocketmq_common::message::encode_properties;
use rocketmq_common::protocol::headers::broker::{
    GetMaxOffsetRequestHeader, OffsetResponseHeader, PullMessageRequestHeader,
    SendMessageRequestHeader, SendMessageRequestHeaderV2,
};
use rocketmq_common::protocol::{RemotingCommand, RequestCode};
use rocketmq_common::remoting::RemotingClient;

/// Timeout tests use for single requests.
pub const T: Duration = Duration::from_secs(5);

/// SEND_MESSAGE_V2 of one message with `props`, from producer group `PG`.
pub fn send(topic: &str, queue_id: i32, body: &[u8], props: &[(&str, &str)]) -> RemotingCommand {
    send_with_flag(topic, queue_id, body, props, 0)
}

/// [`send`] with a sys flag (e.g. the transaction bits).
pub fn send_with_flag(
    topic: &str,
    queue_id: i32,
    body: &[u8],
    props: &[(&str, &str)],
    sys_flag: i32,
) -> RemotingCommand {
    let header: SendMessageRequestHeaderV2 = SendMessageRequestHeader {
        producer_group: "PG".into(),
        topic: topic.into(),
        default_topic: "TBW102".into(),
        default_topic_queue_nums: 4,
        queue_id,
        sys_flag,
        born_timestamp: now_millis(),
        flag: 0,
        properties: Some(encode_properties(props.iter().copied())),
        ..Default::default()
    }
    .into();
    RemotingCommand::request(RequestCode::SEND_MESSAGE_V2, &header).with_body(body.to_vec())
}

/// PULL_MESSAGE of group `group` from `offset`, with a TAG (or `*`) expression.
pub fn pull(
    group: &str,
    topic: &str,
    queue_id: i32,
    offset: i64,
    expression: &str,
) -> RemotingCommand {
    RemotingCommand::request(
        RequestCode::PULL_MESSAGE,
        &PullMessageRequestHeader {
            consumer_group: group.into(),
            topic: topic.into(),
            queue_id,
            queue_offset: offset,
            max_msg_nums: 32,
            sys_flag: 0x4,
            commit_offset: 0,
            suspend_timeout_millis: 0,
            subscription: Some(expression.into()),
            sub_version: 0,
            expression_type: Some("TAG".into()),
            ..Default::default()
        },
    )
}

/// The queue's max offset.
pub async fn max_offset(client: &RemotingClient, addr: &str, topic: &str, queue_id: i32) -> i64 {
    let request = RemotingCommand::request(
        RequestCode::GET_MAX_OFFSET,
        &GetMaxOffsetRequestHeader {
            topic: topic.into(),
            queue_id,
            committed: None,
            broker_name: None,
        },
    );
    let h: OffsetResponseHeader = client
        .invoke_ok(addr, request, T)
        .await
        .expect("GET_MAX_OFFSET")
        .decode_header()
        .expect("offset header");
    h.offset
}

/// Waits until the queue holds at least `expected` readable messages.
pub async fn wait_for_max_offset(
    client: &RemotingClient,
    addr: &str,
    topic: &str,
    queue_id: i32,
    expected: i64,
) {
    crate::wait_until(
        &format!("{topic}/{queue_id} to reach offset {expected}"),
        Duration::from_secs(10),
        || async { (max_offset(client, addr, topic, queue_id).await >= expected).then_some(()) },
    )
    .await;
}

/// Milliseconds since the epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Every message of `topic`'s queues `0..queues` that `addr` serves, by (queue, offset):
/// (KEYS property, body). `None` when the broker cannot be read (down, unreachable).
pub async fn read_topic(
    client: &RemotingClient,
    addr: &str,
    topic: &str,
    queues: i32,
) -> Option<std::collections::BTreeMap<(i32, i64), (String, Vec<u8>)>> {
    let mut out = std::collections::BTreeMap::new();
    for q in 0..queues {
        let mut offset = 0;
        loop {
            let resp = client
                .invoke(addr, pull("topic-reader", topic, q, offset, "*"), T)
                .await
                .ok()?;
            if resp.code != rocketmq_common::protocol::ResponseCode::Success.as_i32() {
                break;
            }
            for r in crate::records(&resp.body) {
                let key = rocketmq_common::message::get_property(r.properties, "KEYS")
                    .unwrap_or_default()
                    .to_string();
                out.insert((q, r.queue_offset), (key, r.body.to_vec()));
                offset = r.queue_offset + 1;
            }
        }
    }
    Some(out)
}
