//! POP consumption facts shared by broker, proxy and clients: the receipt string a popped
//! message carries (`POP_CK`, Java's `ExtraInfoUtil`), the offset-info response headers
//! clients build it from, and the names of POP's system topics and groups.
//!
//! The receipt is eight space-separated fields:
//! `ckQueueOffset popTime invisibleTime reviveQid topicFlag brokerName queueId queueOffset`;
//! the gRPC receipt handle adds a ninth, the CommitLog offset.

use std::fmt;

use crate::topic::RETRY_GROUP_TOPIC_PREFIX;

/// Property a popped message carries its receipt in (`MessageConst.PROPERTY_POP_CK`).
pub const POP_CK: &str = "POP_CK";
/// Property holding the time a message was first popped (`PROPERTY_FIRST_POP_TIME`).
pub const FIRST_POP_TIME: &str = "1ST_POP_TIME";
/// Prefix of the revive topic, followed by the cluster name (`PopAckConstants.REVIVE_TOPIC`).
pub const REVIVE_TOPIC_PREFIX: &str = "rmq_sys_REVIVE_LOG_";
/// Group whose consumer offsets record how far each revive queue was processed.
pub const REVIVE_GROUP: &str = "CID_RMQ_SYS_REVIVE_GROUP";
/// Revive queue id that marks a FIFO (orderly) pop: no checkpoint is written for it.
pub const ORDER_REVIVE_QUEUE: i32 = 999;
/// Tag of a checkpoint record in the revive topic.
pub const CK_TAG: &str = "ck";
/// Tag of an ack record.
pub const ACK_TAG: &str = "ack";
/// Tag of a batch ack record.
pub const BATCH_ACK_TAG: &str = "bAck";
/// Most messages one POP may ask for.
pub const MAX_POP_MESSAGES: i32 = 32;
/// Widest span of queue offsets one batch-ack group may cover (a checkpoint's messages, the
/// filtered ones between them included, lie within it).
pub const MAX_BATCH_ACK_SPAN: usize = 4096;

/// The revive topic of a cluster.
pub fn revive_topic(cluster: &str) -> String {
    format!("{REVIVE_TOPIC_PREFIX}{cluster}")
}

/// The retry topic POP revives a group's messages of `topic` into
/// (`KeyBuilder.buildPopRetryTopicV1`: `%RETRY%<group>_<topic>`).
pub fn pop_retry_topic(topic: &str, group: &str) -> String {
    format!("{RETRY_GROUP_TOPIC_PREFIX}{group}_{topic}")
}

/// Whether a topic is a retry topic, as the receipt's topic flag records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicFlag {
    /// The topic itself (`"0"`).
    Normal,
    /// The group's POP retry topic in the `%RETRY%<group>_<topic>` form (`"1"`).
    RetryV1,
    /// The `%RETRY%<group>+<topic>` form (`"2"`).
    RetryV2,
}

impl TopicFlag {
    /// The flag of a topic name.
    pub fn of(topic: &str) -> Self {
        if !topic.starts_with(RETRY_GROUP_TOPIC_PREFIX) {
            TopicFlag::Normal
        } else if topic.contains('+') {
            TopicFlag::RetryV2
        } else {
            TopicFlag::RetryV1
        }
    }

    /// The wire form.
    pub fn as_str(self) -> &'static str {
        match self {
            TopicFlag::Normal => "0",
            TopicFlag::RetryV1 => "1",
            TopicFlag::RetryV2 => "2",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "0" => Some(TopicFlag::Normal),
            "1" => Some(TopicFlag::RetryV1),
            "2" => Some(TopicFlag::RetryV2),
            _ => None,
        }
    }

    /// The topic a message with this flag really sits in, given the topic the client
    /// knows it by (`ExtraInfoUtil.getRealTopic`).
    pub fn real_topic(self, topic: &str, group: &str) -> String {
        match self {
            TopicFlag::Normal => topic.to_string(),
            TopicFlag::RetryV1 => pop_retry_topic(topic, group),
            TopicFlag::RetryV2 => format!("{RETRY_GROUP_TOPIC_PREFIX}{group}+{topic}"),
        }
    }
}

/// A popped message's receipt (`POP_CK`, the gRPC receipt handle).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraInfo {
    /// First queue offset of the checkpoint covering the message.
    pub ck_queue_offset: i64,
    /// Broker time of the pop (ms).
    pub pop_time: i64,
    /// How long the message stays invisible after `pop_time` (ms).
    pub invisible_time: i64,
    /// Revive queue of the checkpoint ([`ORDER_REVIVE_QUEUE`] for a FIFO pop).
    pub revive_qid: i32,
    /// Whether the message sits in the topic or in its retry topic.
    pub topic_flag: TopicFlag,
    /// Broker that served the pop.
    pub broker_name: String,
    /// Queue of the message (in its real topic).
    pub queue_id: i32,
    /// Queue offset of the message (in its real topic).
    pub queue_offset: i64,
    /// CommitLog offset (gRPC receipt handles only).
    pub commit_log_offset: Option<i64>,
}

/// Why a receipt string is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal receipt {0:?}: {1}")]
pub struct ExtraInfoError(pub String, pub &'static str);

impl ExtraInfo {
    /// Parses the 8-field (`POP_CK`) or 9-field (receipt handle) form.
    pub fn parse(s: &str) -> Result<Self, ExtraInfoError> {
        let err = |why| ExtraInfoError(s.to_string(), why);
        let f: Vec<&str> = s.split(' ').collect();
        if f.len() != 8 && f.len() != 9 {
            return Err(err("expected 8 or 9 space-separated fields"));
        }
        let num = |i: usize| {
            f[i].parse::<i64>()
                .map_err(|_| err("a number field is not a number"))
        };
        let int = |i: usize| {
            f[i].parse::<i32>()
                .map_err(|_| err("a number field is not a number"))
        };
        Ok(Self {
            ck_queue_offset: num(0)?,
            pop_time: num(1)?,
            invisible_time: num(2)?,
            revive_qid: int(3)?,
            topic_flag: TopicFlag::parse(f[4]).ok_or_else(|| err("unknown topic flag"))?,
            broker_name: f[5].to_string(),
            queue_id: int(6)?,
            queue_offset: num(7)?,
            commit_log_offset: if f.len() == 9 { Some(num(8)?) } else { None },
        })
    }

    /// Whether the message came from a FIFO pop.
    pub fn is_order(&self) -> bool {
        self.revive_qid == ORDER_REVIVE_QUEUE
    }

    /// When the message becomes visible again unless acked (ms).
    pub fn visible_at(&self) -> i64 {
        self.pop_time + self.invisible_time
    }
}

impl fmt::Display for ExtraInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {} {} {} {}",
            self.ck_queue_offset,
            self.pop_time,
            self.invisible_time,
            self.revive_qid,
            self.topic_flag.as_str(),
            self.broker_name,
            self.queue_id,
            self.queue_offset
        )?;
        if let Some(o) = self.commit_log_offset {
            write!(f, " {o}")?;
        }
        Ok(())
    }
}

/// Builds the `startOffsetInfo` / `msgOffsetInfo` / `orderCountInfo` response headers:
/// entries `"<flag> <key> <value>"` joined by `;`.
#[derive(Debug, Default, Clone)]
pub struct OffsetInfo(String);

impl OffsetInfo {
    /// Appends one entry.
    pub fn push(&mut self, flag: TopicFlag, key: impl fmt::Display, value: impl fmt::Display) {
        if !self.0.is_empty() {
            self.0.push(';');
        }
        use fmt::Write;
        let _ = write!(self.0, "{} {key} {value}", flag.as_str());
    }

    /// The header value, `None` when empty (the field is then omitted).
    pub fn finish(self) -> Option<String> {
        (!self.0.is_empty()).then_some(self.0)
    }
}

/// Parses an offset-info header into `("<flag>@<key>", value)` pairs.
pub fn parse_offset_info(s: &str) -> Result<Vec<(String, String)>, ExtraInfoError> {
    s.split(';')
        .filter(|e| !e.is_empty())
        .map(|entry| {
            let parts: Vec<&str> = entry.split(' ').collect();
            if parts.len() != 3 {
                return Err(ExtraInfoError(
                    s.to_string(),
                    "an offset info entry needs 3 fields",
                ));
            }
            Ok((format!("{}@{}", parts[0], parts[1]), parts[2].to_string()))
        })
        .collect()
}

/// Key of a per-message entry in `orderCountInfo` (`qo<queueId>%<queueOffset>`).
pub fn order_count_key(queue_id: i32, queue_offset: i64) -> String {
    format!("qo{queue_id}%{queue_offset}")
}

/// One group of acks in a BATCH_ACK_MESSAGE body (`BatchAck`, fastjson short keys).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct BatchAck {
    /// Consumer group.
    #[serde(rename = "c", alias = "consumerGroup")]
    pub consumer_group: String,
    /// The topic the client knows (not the retry topic).
    #[serde(rename = "t", alias = "topic")]
    pub topic: String,
    /// Topic flag: `"0"`, `"1"` or `"2"`.
    #[serde(rename = "r", alias = "retry")]
    pub retry: String,
    /// Checkpoint start offset.
    #[serde(rename = "so", alias = "startOffset")]
    pub start_offset: i64,
    /// Queue.
    #[serde(rename = "q", alias = "queueId")]
    pub queue_id: i32,
    /// Revive queue.
    #[serde(rename = "rq", alias = "reviveQueueId")]
    pub revive_queue_id: i32,
    /// Pop time.
    #[serde(rename = "pt", alias = "popTime")]
    pub pop_time: i64,
    /// Invisible time.
    #[serde(rename = "it", alias = "invisibleTime")]
    pub invisible_time: i64,
    /// `java.util.BitSet.toByteArray()` in base64: bit i acks offset `start_offset + i`.
    #[serde(rename = "b", alias = "bitSet")]
    pub bit_set: String,
}

impl BatchAck {
    /// The queue offsets this group acks.
    pub fn acked_offsets(&self) -> Result<Vec<i64>, ExtraInfoError> {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(self.bit_set.as_bytes())
            .map_err(|_| ExtraInfoError(self.bit_set.clone(), "bit set is not base64"))?;
        let mut out = Vec::new();
        for (i, byte) in bytes.iter().enumerate() {
            for bit in 0..8 {
                if byte & (1 << bit) != 0 {
                    out.push(self.start_offset + (i * 8 + bit) as i64);
                }
            }
        }
        Ok(out)
    }

    /// The base64 bit set acking `offsets`; offsets before `start_offset` or
    /// [`MAX_BATCH_ACK_SPAN`] or more after it cannot be in one checkpoint and are left out.
    pub fn encode_bits(start_offset: i64, offsets: &[i64]) -> String {
        use base64::Engine;
        let mut bytes = Vec::new();
        for o in offsets {
            let Ok(i) = usize::try_from(o - start_offset) else {
                continue;
            };
            if i >= MAX_BATCH_ACK_SPAN {
                continue;
            }
            if bytes.len() <= i / 8 {
                bytes.resize(i / 8 + 1, 0u8);
            }
            bytes[i / 8] |= 1 << (i % 8);
        }
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }
}

/// BATCH_ACK_MESSAGE (200151) body (`BatchAckMessageRequestBody`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BatchAckMessageRequestBody {
    /// Broker the messages were popped from.
    pub broker_name: String,
    /// The ack groups.
    pub acks: Vec<BatchAck>,
}

/// How a consumer group reads a topic (`MessageRequestMode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum MessageRequestMode {
    /// Queue-owning pulls.
    #[default]
    #[serde(rename = "PULL")]
    Pull,
    /// Broker-side POP.
    #[serde(rename = "POP")]
    Pop,
}

/// SET_MESSAGE_REQUEST_MODE (401) body.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SetMessageRequestModeRequestBody {
    /// Topic.
    pub topic: String,
    /// Consumer group.
    pub consumer_group: String,
    /// The mode.
    pub mode: MessageRequestMode,
    /// POP: how many other clients' queues each client also pops (≤ 0: every queue).
    pub pop_share_queue_num: i32,
}

/// QUERY_ASSIGNMENT (400) body.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QueryAssignmentRequestBody {
    /// Topic.
    pub topic: String,
    /// Consumer group.
    pub consumer_group: String,
    /// The asking client.
    pub client_id: String,
    /// `AVG` or `AVG_BY_CIRCLE`.
    pub strategy_name: String,
    /// `CLUSTERING` or `BROADCASTING`.
    pub message_model: String,
}

/// One queue given to a client, and how to read it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageQueueAssignment {
    /// The queue (queue id -1: every queue of that broker, popped).
    pub message_queue: crate::body::MessageQueue,
    /// How to read it.
    pub mode: MessageRequestMode,
}

/// QUERY_ASSIGNMENT response body.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct QueryAssignmentResponseBody {
    /// The queues the client reads.
    pub message_queue_assignments: Vec<MessageQueueAssignment>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipt_round_trips_in_both_forms() {
        let s = "5 1700000000000 60000 3 1 broker-a 0 7";
        let e = ExtraInfo::parse(s).unwrap();
        assert_eq!(e.ck_queue_offset, 5);
        assert_eq!(e.topic_flag, TopicFlag::RetryV1);
        assert_eq!(e.queue_offset, 7);
        assert_eq!(e.visible_at(), 1_700_000_060_000);
        assert_eq!(e.to_string(), s);
        let handle = format!("{s} 123456");
        let e = ExtraInfo::parse(&handle).unwrap();
        assert_eq!(e.commit_log_offset, Some(123456));
        assert_eq!(e.to_string(), handle);
        assert!(ExtraInfo::parse("1 2 3").is_err());
        assert!(ExtraInfo::parse("x 2 3 4 0 b 0 1").is_err());
        assert!(ExtraInfo::parse("1 2 3 4 7 b 0 1").is_err());
    }

    #[test]
    fn topic_flags_and_retry_names() {
        assert_eq!(TopicFlag::of("T"), TopicFlag::Normal);
        assert_eq!(TopicFlag::of("%RETRY%G_T"), TopicFlag::RetryV1);
        assert_eq!(TopicFlag::of("%RETRY%G+T"), TopicFlag::RetryV2);
        assert_eq!(TopicFlag::RetryV1.real_topic("T", "G"), "%RETRY%G_T");
        assert_eq!(TopicFlag::Normal.real_topic("T", "G"), "T");
        assert_eq!(
            revive_topic("DefaultCluster"),
            "rmq_sys_REVIVE_LOG_DefaultCluster"
        );
    }

    #[test]
    fn offset_info_headers() {
        let mut info = OffsetInfo::default();
        info.push(TopicFlag::Normal, 0, 10);
        info.push(TopicFlag::RetryV1, 0, "3,4");
        let s = info.finish().unwrap();
        assert_eq!(s, "0 0 10;1 0 3,4");
        assert_eq!(
            parse_offset_info(&s).unwrap(),
            vec![("0@0".into(), "10".into()), ("1@0".into(), "3,4".into())]
        );
        assert!(OffsetInfo::default().finish().is_none());
        assert!(parse_offset_info("0 1").is_err());
        assert_eq!(order_count_key(2, 9), "qo2%9");
    }

    #[test]
    fn batch_ack_bit_sets_match_java() {
        // java.util.BitSet with bits 0, 2 and 9 set: toByteArray() = [0x05, 0x02].
        let ack = BatchAck {
            start_offset: 100,
            bit_set: "BQI=".into(),
            ..BatchAck::default()
        };
        assert_eq!(ack.acked_offsets().unwrap(), vec![100, 102, 109]);
        assert_eq!(BatchAck::encode_bits(100, &[100, 102, 109]), "BQI=");
        // Offsets that cannot belong to the checkpoint are left out, never allocated for.
        assert_eq!(
            BatchAck::encode_bits(100, &[100, 102, 109, 99, 1 << 40]),
            "BQI="
        );
        let json = r#"{"c":"G","t":"T","r":"0","so":100,"q":1,"rq":3,"pt":5,"it":6,"b":"BQI="}"#;
        let parsed: BatchAck = serde_json::from_str(json).unwrap();
        assert_eq!(parsed.queue_id, 1);
        assert_eq!(parsed.acked_offsets().unwrap().len(), 3);
    }
}
