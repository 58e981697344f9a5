//! Between the gRPC messages of 5.x clients and the broker's Remoting messages: statuses,
//! times, a client message to a SEND_MESSAGE_V2 header and body, a stored message to a gRPC
//! message (`GrpcConverter` in Java's proxy).

use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

use rocketmq_client::StoredMessage;
use rocketmq_common::message::encode_properties;
use rocketmq_common::message::keys::{
    CHECK_IMMUNITY_TIME_IN_SECONDS, DELAY, DLQ_ORIGIN_MESSAGE_ID, DLQ_ORIGIN_TOPIC, KEYS,
    PRODUCER_GROUP, SHARDING_KEY, TAGS, TIMER_DELAY_SEC, TIMER_DELIVER_MS, TRANSACTION_PREPARED,
    UNIQ_KEY,
};
use rocketmq_common::message::sysflag::TRANSACTION_PREPARED_TYPE;
use rocketmq_common::pop::POP_CK;
use rocketmq_common::protocol::headers::broker::SendMessageRequestHeader;

use crate::pb;

/// Property carrying a message's trace context (`MessageConst.PROPERTY_TRACE_CONTEXT`).
pub const TRACE_CONTEXT: &str = "TRACE_CONTEXT";
/// `sysFlag` bit of a compressed body.
const COMPRESSED_FLAG: i32 = 0x1;

/// Properties the broker and clients own; a client may not set them as user properties,
/// and they are not shown as user properties.
const SYSTEM_PROPERTIES: &[&str] = &[
    TAGS,
    KEYS,
    UNIQ_KEY,
    TRANSACTION_PREPARED,
    PRODUCER_GROUP,
    TIMER_DELIVER_MS,
    TIMER_DELAY_SEC,
    "TIMER_DELAY_MS",
    DELAY,
    SHARDING_KEY,
    TRACE_CONTEXT,
    CHECK_IMMUNITY_TIME_IN_SECONDS,
    DLQ_ORIGIN_TOPIC,
    DLQ_ORIGIN_MESSAGE_ID,
    POP_CK,
    "1ST_POP_TIME",
    "RETRY_TOPIC",
    "REAL_TOPIC",
    "REAL_QID",
    "ORIGIN_MESSAGE_ID",
    "MIN_OFFSET",
    "MAX_OFFSET",
    "RECONSUME_TIME",
    "MAX_RECONSUME_TIMES",
    "TRAN_PREPARED_QUEUE_OFFSET",
    "TRANSACTION_CHECK_TIMES",
    "__transactionId__",
    "__STARTDELIVERTIME",
    "TIMER_OUT_MS",
    "TIMER_ENQUEUE_MS",
    "TIMER_DEQUEUE_MS",
    "TIMER_ROLL_TIMES",
    "TIMER_DEL_UNIQKEY",
    "CLUSTER",
    "WAIT",
    "BORN_HOST",
    "BORN_TIMESTAMP",
    "BENCH_SENT_US",
];

/// A status.
pub fn status(code: pb::Code, message: impl Into<String>) -> pb::Status {
    pb::Status {
        code: code as i32,
        message: message.into(),
    }
}

/// The OK status.
pub fn ok() -> pb::Status {
    status(pb::Code::Ok, "OK")
}

/// Now, in ms since the epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A timestamp from ms since the epoch.
pub fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// Ms since the epoch of a timestamp.
pub fn timestamp_ms(t: &prost_types::Timestamp) -> i64 {
    t.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(t.nanos) / 1_000_000)
}

/// A duration from ms.
pub fn duration(ms: i64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: ms / 1000,
        nanos: ((ms % 1000) * 1_000_000) as i32,
    }
}

/// Ms of a duration.
pub fn duration_ms(d: &prost_types::Duration) -> i64 {
    d.seconds
        .saturating_mul(1000)
        .saturating_add(i64::from(d.nanos) / 1_000_000)
}

/// A client message ready for SEND_MESSAGE_V2.
#[derive(Debug)]
pub struct Outgoing {
    /// The request header (queue chosen later).
    pub header: SendMessageRequestHeader,
    /// The body, plain.
    pub body: Vec<u8>,
    /// The client's message id, echoed in the result.
    pub message_id: String,
    /// Whether it is a transactional half message.
    pub transactional: bool,
    /// Its FIFO message group.
    pub message_group: Option<String>,
}

fn bad(code: pb::Code, message: impl Into<String>) -> pb::Status {
    status(code, message)
}

/// Validates a client message and builds its Remoting form; the producer group is the
/// topic (so the broker's transaction checks find this topic's producers).
pub fn outgoing(msg: &pb::Message, max_body: usize) -> Result<Outgoing, pb::Status> {
    let topic = msg
        .topic
        .as_ref()
        .map(|t| t.name.clone())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| bad(pb::Code::IllegalTopic, "the message names no topic"))?;
    rocketmq_common::topic::validate_topic(&topic).map_err(|e| bad(pb::Code::IllegalTopic, e))?;
    let sys = msg.system_properties.as_ref().ok_or_else(|| {
        bad(
            pb::Code::MessageCorrupted,
            "the message has no system properties",
        )
    })?;
    if sys.message_id.trim().is_empty() {
        return Err(bad(pb::Code::IllegalMessageId, "the message id is empty"));
    }
    let body = if sys.body_encoding == pb::Encoding::Gzip as i32 {
        let mut plain = Vec::new();
        // Never inflate past the limit: a small body may expand to gigabytes.
        flate2::read::GzDecoder::new(msg.body.as_slice())
            .take(max_body as u64 + 1)
            .read_to_end(&mut plain)
            .map_err(|e| {
                bad(
                    pb::Code::MessageCorrupted,
                    format!("GZIP body does not decode: {e}"),
                )
            })?;
        plain
    } else {
        msg.body.clone()
    };
    if body.len() > max_body {
        return Err(bad(
            pb::Code::MessageBodyTooLarge,
            format!(
                "message body of {} bytes exceeds the limit of {max_body}",
                body.len()
            ),
        ));
    }
    let mut props: Vec<(&str, String)> = Vec::new();
    for (k, v) in &msg.user_properties {
        if SYSTEM_PROPERTIES.contains(&k.as_str()) || k.is_empty() {
            return Err(bad(
                pb::Code::IllegalMessagePropertyKey,
                format!("property key {k:?} is reserved"),
            ));
        }
        props.push((k.as_str(), v.clone()));
    }
    if let Some(tag) = &sys.tag {
        if tag.trim().is_empty() || tag.contains('|') || tag.chars().any(char::is_control) {
            return Err(bad(
                pb::Code::IllegalMessageTag,
                format!("illegal tag {tag:?}"),
            ));
        }
        props.push((TAGS, tag.clone()));
    }
    if !sys.keys.is_empty() {
        if sys.keys.iter().any(|k| k.trim().is_empty()) {
            return Err(bad(pb::Code::IllegalMessageKey, "a message key is blank"));
        }
        props.push((KEYS, sys.keys.join(" ")));
    }
    props.push((UNIQ_KEY, sys.message_id.clone()));
    let transactional = sys.message_type == pb::MessageType::Transaction as i32;
    if transactional {
        props.push((TRANSACTION_PREPARED, "true".into()));
        props.push((PRODUCER_GROUP, topic.clone()));
        if let Some(d) = &sys.orphaned_transaction_recovery_duration {
            props.push((
                CHECK_IMMUNITY_TIME_IN_SECONDS,
                (duration_ms(d) / 1000).to_string(),
            ));
        }
    }
    if let Some(t) = &sys.delivery_timestamp {
        let at = timestamp_ms(t);
        if at > now_ms() + 40 * 24 * 3600 * 1000 {
            return Err(bad(
                pb::Code::IllegalDeliveryTime,
                "delivery time is more than 40 days ahead",
            ));
        }
        if at > now_ms() {
            props.push((TIMER_DELIVER_MS, at.to_string()));
        }
    }
    let message_group = sys.message_group.clone().filter(|g| !g.is_empty());
    if let Some(g) = &message_group {
        props.push((SHARDING_KEY, g.clone()));
    }
    if let Some(tc) = sys.trace_context.as_ref().filter(|t| !t.is_empty()) {
        props.push((TRACE_CONTEXT, tc.clone()));
    }
    let properties = encode_properties(props.iter().map(|(k, v)| (*k, v.as_str())));
    let born = sys
        .born_timestamp
        .as_ref()
        .map(timestamp_ms)
        .filter(|t| *t > 0)
        .unwrap_or_else(now_ms);
    Ok(Outgoing {
        header: SendMessageRequestHeader {
            producer_group: topic.clone(),
            topic,
            default_topic: "TBW102".into(),
            default_topic_queue_nums: 4,
            queue_id: 0,
            sys_flag: if transactional {
                TRANSACTION_PREPARED_TYPE
            } else {
                0
            },
            born_timestamp: born,
            flag: 0,
            properties: Some(properties),
            reconsume_times: Some(0),
            ..Default::default()
        },
        body,
        message_id: sys.message_id.clone(),
        transactional,
        message_group,
    })
}

/// The message type a stored message was sent as.
fn message_type(m: &StoredMessage) -> pb::MessageType {
    if m.property(TRANSACTION_PREPARED) == Some("true") {
        pb::MessageType::Transaction
    } else if m.property(DELAY).is_some()
        || m.property(TIMER_DELIVER_MS).is_some()
        || m.property(TIMER_DELAY_SEC).is_some()
    {
        pb::MessageType::Delay
    } else if m.property(SHARDING_KEY).is_some() {
        pb::MessageType::Fifo
    } else {
        pb::MessageType::Normal
    }
}

/// A stored message as a 5.x client sees it. `topic` is the name the client knows it by;
/// `receipt_handle` is set for popped messages.
pub fn incoming(
    m: &StoredMessage,
    namespace: &str,
    topic: &str,
    receipt_handle: Option<String>,
    delivery_attempt: i32,
) -> pb::Message {
    let mut body = m.body.clone();
    let mut encoding = pb::Encoding::Identity;
    if m.sys_flag & COMPRESSED_FLAG != 0 {
        let mut plain = Vec::new();
        if flate2::read::ZlibDecoder::new(m.body.as_slice())
            .read_to_end(&mut plain)
            .is_ok()
        {
            body = plain;
        } else {
            encoding = pb::Encoding::Gzip;
        }
    }
    let user_properties = m
        .properties
        .iter()
        .filter(|(k, _)| !SYSTEM_PROPERTIES.contains(&k.as_str()))
        .cloned()
        .collect();
    let dead_letter_queue = match (
        m.property(DLQ_ORIGIN_TOPIC),
        m.property(DLQ_ORIGIN_MESSAGE_ID),
    ) {
        (Some(t), Some(id)) => Some(pb::DeadLetterQueue {
            topic: t.to_string(),
            message_id: id.to_string(),
        }),
        _ => None,
    };
    let delivery_timestamp = m
        .property(TIMER_DELIVER_MS)
        .and_then(|v| v.parse::<i64>().ok())
        .map(timestamp);
    pb::Message {
        topic: Some(pb::Resource {
            resource_namespace: namespace.to_string(),
            name: topic.to_string(),
        }),
        user_properties,
        system_properties: Some(pb::SystemProperties {
            tag: m.tags().map(str::to_string),
            keys: m
                .keys()
                .map(|k| {
                    k.split(' ')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            message_id: m.msg_id(),
            body_digest: Some(pb::Digest {
                r#type: pb::DigestType::Crc32 as i32,
                checksum: format!("{:08X}", crc32fast::hash(&body)),
            }),
            body_encoding: encoding as i32,
            message_type: message_type(m) as i32,
            born_timestamp: Some(timestamp(m.born_timestamp)),
            born_host: m.born_host.ip().to_string(),
            store_timestamp: Some(timestamp(m.store_timestamp)),
            store_host: m.store_host.to_string(),
            delivery_timestamp,
            receipt_handle,
            queue_id: m.queue_id,
            queue_offset: Some(m.queue_offset),
            invisible_duration: None,
            delivery_attempt: Some(delivery_attempt),
            message_group: m.property(SHARDING_KEY).map(str::to_string),
            trace_context: m.property(TRACE_CONTEXT).map(str::to_string),
            orphaned_transaction_recovery_duration: None,
            dead_letter_queue,
        }),
        body,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_message() -> pb::Message {
        pb::Message {
            topic: Some(pb::Resource {
                resource_namespace: String::new(),
                name: "T".into(),
            }),
            user_properties: [("color".to_string(), "red".to_string())].into(),
            system_properties: Some(pb::SystemProperties {
                tag: Some("TagA".into()),
                keys: vec!["k1".into(), "k2".into()],
                message_id: "01ABC".into(),
                message_type: pb::MessageType::Transaction as i32,
                message_group: Some("g".into()),
                ..Default::default()
            }),
            body: b"hello".to_vec(),
        }
    }

    #[test]
    fn client_messages_become_remoting_sends_and_come_back() {
        let out = outgoing(&client_message(), 4 << 20).unwrap();
        assert!(out.transactional);
        assert_eq!(out.header.sys_flag, TRANSACTION_PREPARED_TYPE);
        assert_eq!(out.header.producer_group, "T");
        let props = out.header.properties.clone().unwrap();
        for (k, v) in [
            (TAGS, "TagA"),
            (KEYS, "k1 k2"),
            (UNIQ_KEY, "01ABC"),
            (TRANSACTION_PREPARED, "true"),
            (PRODUCER_GROUP, "T"),
            (SHARDING_KEY, "g"),
            ("color", "red"),
        ] {
            assert_eq!(
                rocketmq_common::message::get_property(&props, k),
                Some(v),
                "{k}"
            );
        }
        let stored = StoredMessage {
            topic: "T".into(),
            queue_id: 1,
            queue_offset: 7,
            commit_log_offset: 100,
            sys_flag: 0,
            flag: 0,
            born_timestamp: 1_700_000_000_123,
            born_host: "10.0.0.1:5000".parse().unwrap(),
            store_timestamp: 1_700_000_000_456,
            store_host: "10.0.0.2:10911".parse().unwrap(),
            reconsume_times: 0,
            properties: rocketmq_common::message::parse_properties(&props)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: out.body.clone(),
        };
        let back = incoming(&stored, "", "T", Some("handle".into()), 1);
        let sys = back.system_properties.unwrap();
        assert_eq!(sys.message_id, "01ABC");
        assert_eq!(sys.tag.as_deref(), Some("TagA"));
        assert_eq!(sys.keys, vec!["k1", "k2"]);
        assert_eq!(sys.message_type, pb::MessageType::Transaction as i32);
        assert_eq!(sys.message_group.as_deref(), Some("g"));
        assert_eq!(sys.receipt_handle.as_deref(), Some("handle"));
        assert_eq!(
            sys.body_digest.unwrap().checksum,
            format!("{:08X}", crc32fast::hash(b"hello"))
        );
        assert_eq!(
            back.user_properties.len(),
            1,
            "only user properties are shown as such"
        );
        assert_eq!(
            timestamp_ms(&sys.born_timestamp.unwrap()),
            1_700_000_000_123
        );
    }

    #[test]
    fn bad_messages_get_the_codes_clients_expect() {
        let mut m = client_message();
        m.user_properties.insert("UNIQ_KEY".into(), "x".into());
        assert_eq!(
            outgoing(&m, 100).unwrap_err().code,
            pb::Code::IllegalMessagePropertyKey as i32
        );
        let mut m = client_message();
        m.system_properties.as_mut().unwrap().tag = Some("a|b".into());
        assert_eq!(
            outgoing(&m, 100).unwrap_err().code,
            pb::Code::IllegalMessageTag as i32
        );
        let m = client_message();
        assert_eq!(
            outgoing(&m, 2).unwrap_err().code,
            pb::Code::MessageBodyTooLarge as i32
        );
        let mut m = client_message();
        m.system_properties.as_mut().unwrap().message_id.clear();
        assert_eq!(
            outgoing(&m, 100).unwrap_err().code,
            pb::Code::IllegalMessageId as i32
        );
        let mut m = client_message();
        m.topic = None;
        assert_eq!(
            outgoing(&m, 100).unwrap_err().code,
            pb::Code::IllegalTopic as i32
        );
    }
}
