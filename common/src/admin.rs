//! Admin bodies brokers answer to tools: topic stats (GET_TOPIC_STATS_INFO, 202) and consume
//! stats (GET_CONSUME_STATS, 208) (`remoting/protocol/admin/*.java`).
//!
//! Both are maps keyed by [`MessageQueue`]. Java serialises them with fastjson, which writes an
//! object-typed map key as the object itself:
//!
//! ```text
//! {"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"T"}:{"lastUpdateTimestamp":0,"maxOffset":5,"minOffset":0}},"topicPutTps":0.0}
//! ```
//!
//! That is not JSON, so neither direction can go through `serde_json` alone: [`TopicStatsTable`]
//! and [`ConsumeStats`] write the fastjson form byte for byte ([`TopicStatsTable::to_fastjson`])
//! and read it back ([`TopicStatsTable::from_fastjson`]) by first turning each object key into
//! a JSON string key ([`quote_object_keys`]).

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::body::MessageQueue;

/// Why an admin body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum AdminBodyError {
    /// The body is not (fastjson-flavoured) JSON of the expected shape.
    #[error("malformed {body} body: {source}")]
    Json {
        /// Which body was being read.
        body: &'static str,
        /// Cause.
        source: serde_json::Error,
    },
    /// A map key is not a `MessageQueue` object.
    #[error("malformed {body} body: offsetTable key {key} is not a message queue: {source}")]
    QueueKey {
        /// Which body was being read.
        body: &'static str,
        /// The key text.
        key: String,
        /// Cause.
        source: serde_json::Error,
    },
}

/// Offsets of one queue as the broker's store sees them (`TopicOffset.java`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicOffset {
    /// Store time (ms) of the last message in the queue, 0 if empty.
    pub last_update_timestamp: i64,
    /// Logical offset one past the last message.
    pub max_offset: i64,
    /// Logical offset of the oldest message still stored.
    pub min_offset: i64,
}

/// GET_TOPIC_STATS_INFO (202) response body (`TopicStatsTable.java`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopicStatsTable {
    /// Per-queue offsets.
    pub offset_table: BTreeMap<MessageQueue, TopicOffset>,
    /// Messages per second put to the topic (recent average).
    pub topic_put_tps: f64,
}

/// One queue's progress for a consumer group (`OffsetWrapper.java`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OffsetWrapper {
    /// Queue's max offset on the broker.
    pub broker_offset: i64,
    /// Offset the group has committed.
    pub consumer_offset: i64,
    /// Store time (ms) of the last consumed message, 0 if unknown.
    pub last_timestamp: i64,
    /// Offset the group has pulled up to (in flight = pull − consumer).
    pub pull_offset: i64,
}

impl OffsetWrapper {
    /// Messages stored but not yet consumed (`brokerOffset − consumerOffset`).
    pub fn diff(&self) -> i64 {
        self.broker_offset - self.consumer_offset
    }

    /// Messages pulled but not yet committed (`pullOffset − consumerOffset`).
    pub fn inflight(&self) -> i64 {
        self.pull_offset - self.consumer_offset
    }
}

/// GET_CONSUME_STATS (208) response body (`ConsumeStats.java`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConsumeStats {
    /// Messages per second the group consumes (recent average).
    pub consume_tps: f64,
    /// Per-queue progress.
    pub offset_table: BTreeMap<MessageQueue, OffsetWrapper>,
}

impl ConsumeStats {
    /// Sum of [`OffsetWrapper::diff`] over all queues (`computeTotalDiff`).
    pub fn total_diff(&self) -> i64 {
        self.offset_table.values().map(OffsetWrapper::diff).sum()
    }

    /// Sum of [`OffsetWrapper::inflight`] over all queues (`computeInflightTotalDiff`).
    pub fn total_inflight(&self) -> i64 {
        self.offset_table
            .values()
            .map(OffsetWrapper::inflight)
            .sum()
    }
}

/// The shape both bodies share once their keys are strings.
#[derive(Deserialize)]
struct RawTable<V> {
    #[serde(rename = "offsetTable", default = "BTreeMap::new")]
    offset_table: BTreeMap<String, V>,
    /// fastjson writes `null` for NaN and infinities; read those as 0.
    #[serde(rename = "topicPutTps", alias = "consumeTps", default)]
    tps: Option<f64>,
}

fn read_table<V: serde::de::DeserializeOwned>(
    body_name: &'static str,
    input: &[u8],
) -> Result<(BTreeMap<MessageQueue, V>, f64), AdminBodyError> {
    let quoted = quote_object_keys(input);
    let fixed = crate::json::quote_bare_keys(&quoted);
    let raw: RawTable<V> =
        serde_json::from_slice(&fixed).map_err(|source| AdminBodyError::Json {
            body: body_name,
            source,
        })?;
    let mut table = BTreeMap::new();
    for (key, value) in raw.offset_table {
        let queue: MessageQueue =
            serde_json::from_str(&key).map_err(|source| AdminBodyError::QueueKey {
                body: body_name,
                key: key.clone(),
                source,
            })?;
        table.insert(queue, value);
    }
    Ok((table, raw.tps.unwrap_or(0.0)))
}

fn write_table<V: Serialize>(out: &mut Vec<u8>, table: &BTreeMap<MessageQueue, V>) {
    out.push(b'{');
    for (i, (queue, value)) in table.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // MessageQueue's fields are declared alphabetically, as fastjson orders them.
        serde_json::to_writer(&mut *out, queue).expect("writing JSON into memory cannot fail");
        out.push(b':');
        serde_json::to_writer(&mut *out, value).expect("writing JSON into memory cannot fail");
    }
    out.push(b'}');
}

impl TopicStatsTable {
    /// The body as a Java broker writes it (fastjson: object keys, fields alphabetical).
    pub fn to_fastjson(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.offset_table.len() * 128);
        out.extend_from_slice(b"{\"offsetTable\":");
        write_table(&mut out, &self.offset_table);
        out.extend_from_slice(b",\"topicPutTps\":");
        out.extend_from_slice(java_double(self.topic_put_tps).as_bytes());
        out.push(b'}');
        out
    }

    /// Reads the body a broker sent (fastjson object keys, or string keys holding the
    /// queue's JSON).
    pub fn from_fastjson(input: &[u8]) -> Result<Self, AdminBodyError> {
        let (offset_table, topic_put_tps) = read_table("TopicStatsTable", input)?;
        Ok(Self {
            offset_table,
            topic_put_tps,
        })
    }
}

impl ConsumeStats {
    /// The body as a Java broker writes it (fastjson: object keys, fields alphabetical).
    pub fn to_fastjson(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.offset_table.len() * 160);
        out.extend_from_slice(b"{\"consumeTps\":");
        out.extend_from_slice(java_double(self.consume_tps).as_bytes());
        out.extend_from_slice(b",\"offsetTable\":");
        write_table(&mut out, &self.offset_table);
        out.push(b'}');
        out
    }

    /// Reads the body a broker sent (fastjson object keys, or string keys holding the
    /// queue's JSON).
    pub fn from_fastjson(input: &[u8]) -> Result<Self, AdminBodyError> {
        let (offset_table, consume_tps) = read_table("ConsumeStats", input)?;
        Ok(Self {
            consume_tps,
            offset_table,
        })
    }
}

/// INVOKE_BROKER_TO_RESET_OFFSET (222) response body: the offset each queue was reset to
/// (`ResetOffsetBody.java`, keyed by message queue like the stats tables).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResetOffsetBody {
    /// Queue → new committed offset.
    pub offset_table: BTreeMap<MessageQueue, i64>,
}

impl ResetOffsetBody {
    /// The body as a Java broker writes it.
    pub fn to_fastjson(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.offset_table.len() * 96);
        out.extend_from_slice(b"{\"offsetTable\":");
        write_table(&mut out, &self.offset_table);
        out.push(b'}');
        out
    }

    /// Reads the body a broker sent.
    pub fn from_fastjson(input: &[u8]) -> Result<Self, AdminBodyError> {
        let (offset_table, _) = read_table("ResetOffsetBody", input)?;
        Ok(Self { offset_table })
    }
}

/// One client connection (`Connection.java`), in connection listings.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Connection {
    /// Peer address `ip:port`.
    pub client_addr: String,
    /// Client id.
    pub client_id: String,
    /// The client's language (`JAVA`, `CPP`, ...).
    pub language: String,
    /// The client's version ordinal.
    pub version: i32,
}

/// GET_CONSUMER_CONNECTION_LIST (203) response body (`ConsumerConnection.java`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerConnection {
    /// The group's connections.
    pub connection_set: Vec<Connection>,
    /// Where new consumers start.
    pub consume_from_where: String,
    /// `CONSUME_PASSIVELY` (push), `CONSUME_ACTIVELY` (pull) or `CONSUME_POP`.
    pub consume_type: String,
    /// `CLUSTERING` or `BROADCASTING`.
    pub message_model: String,
    /// Topic → subscription.
    pub subscription_table: BTreeMap<String, crate::body::SubscriptionData>,
}

/// GET_PRODUCER_CONNECTION_LIST (204) response body (`ProducerConnection.java`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProducerConnection {
    /// The group's connections.
    pub connection_set: Vec<Connection>,
}

/// A `double` as fastjson writes it, which follows Java's `Double.toString`: always a
/// fraction digit (`0.0`, `12.5`), scientific notation with `E` outside [1e-3, 1e7), and
/// `null` for NaN and infinities.
pub fn java_double(value: f64) -> String {
    if !value.is_finite() {
        return "null".to_string();
    }
    let magnitude = value.abs();
    if value == 0.0 || (1e-3..1e7).contains(&magnitude) {
        // Rust's Display prints the shortest round-tripping digits, as Java does; only the
        // mandatory ".0" of integral values differs.
        let text = format!("{value}");
        if text.contains('.') {
            text
        } else {
            format!("{text}.0")
        }
    } else {
        // Rust: "1.5e-5" / "1e10"; Java: "1.5E-5" / "1.0E10".
        let text = format!("{value:e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        if mantissa.contains('.') {
            format!("{mantissa}E{exponent}")
        } else {
            format!("{mantissa}.0E{exponent}")
        }
    }
}

/// Rewrites object-valued map keys (`{{"a":1}:2}`) as JSON strings holding the key's text
/// (`{"{\"a\":1}":2}`), so that `serde_json` can read fastjson's maps keyed by objects.
/// Valid JSON comes back borrowed and unchanged.
pub fn quote_object_keys(input: &[u8]) -> Cow<'_, [u8]> {
    let mut out: Option<Vec<u8>> = None;
    // Container stack: b'{' or b'['. `expect_key` is true right after `{` or a `,` inside
    // an object, where a key must start.
    let mut stack: Vec<u8> = Vec::new();
    let mut expect_key = false;
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        match b {
            b'"' => {
                let end = string_end(input, i);
                if let Some(o) = out.as_mut() {
                    o.extend_from_slice(&input[i..end]);
                }
                expect_key = false;
                i = end;
                continue;
            }
            b'{' if expect_key => {
                // An object used as a key: copy its text (to the matching brace) into a
                // string literal.
                let end = container_end(input, i);
                let key = String::from_utf8_lossy(&input[i..end]);
                let o = out.get_or_insert_with(|| input[..i].to_vec());
                serde_json::to_writer(&mut *o, key.as_ref())
                    .expect("writing JSON into memory cannot fail");
                expect_key = false;
                i = end;
                continue;
            }
            b'{' => {
                stack.push(b'{');
                expect_key = true;
            }
            b'[' => {
                stack.push(b'[');
                expect_key = false;
            }
            b'}' | b']' => {
                stack.pop();
                expect_key = false;
            }
            b',' => expect_key = stack.last() == Some(&b'{'),
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ => expect_key = false,
        }
        if let Some(o) = out.as_mut() {
            o.push(b);
        }
        i += 1;
    }
    match out {
        Some(o) => Cow::Owned(o),
        None => Cow::Borrowed(input),
    }
}

/// Index one past the closing quote of the string starting at `start` (or the input end).
fn string_end(input: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < input.len() {
        match input[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    input.len()
}

/// Index one past the bracket closing the container starting at `start` (or the input end).
fn container_end(input: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut i = start;
    while i < input.len() {
        match input[i] {
            b'"' => {
                i = string_end(input, i);
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    input.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mq(broker: &str, queue_id: i32, topic: &str) -> MessageQueue {
        MessageQueue {
            broker_name: broker.into(),
            queue_id,
            topic: topic.into(),
        }
    }

    /// What a Java 5.3 broker sends for a two-queue topic (fastjson, fields sorted).
    const JAVA_TOPIC_STATS: &str = concat!(
        r#"{"offsetTable":{{"brokerName":"broker-a","queueId":0,"topic":"TopicTest"}:"#,
        r#"{"lastUpdateTimestamp":1700000000123,"maxOffset":250,"minOffset":0},"#,
        r#"{"brokerName":"broker-a","queueId":1,"topic":"TopicTest"}:"#,
        r#"{"lastUpdateTimestamp":0,"maxOffset":0,"minOffset":0}},"topicPutTps":12.5}"#
    );

    #[test]
    fn topic_stats_bytes_exact_both_ways() {
        let mut table = TopicStatsTable {
            topic_put_tps: 12.5,
            ..TopicStatsTable::default()
        };
        table.offset_table.insert(
            mq("broker-a", 0, "TopicTest"),
            TopicOffset {
                last_update_timestamp: 1_700_000_000_123,
                max_offset: 250,
                min_offset: 0,
            },
        );
        table
            .offset_table
            .insert(mq("broker-a", 1, "TopicTest"), TopicOffset::default());
        assert_eq!(
            String::from_utf8(table.to_fastjson()).unwrap(),
            JAVA_TOPIC_STATS
        );
        assert_eq!(
            TopicStatsTable::from_fastjson(JAVA_TOPIC_STATS.as_bytes()).unwrap(),
            table
        );
    }

    #[test]
    fn consume_stats_bytes_exact_both_ways() {
        let java = concat!(
            r#"{"consumeTps":0.0,"offsetTable":{{"brokerName":"b","queueId":3,"topic":"%RETRY%G"}:"#,
            r#"{"brokerOffset":10,"consumerOffset":7,"lastTimestamp":1700000000000,"pullOffset":9}}}"#
        );
        let stats = ConsumeStats::from_fastjson(java.as_bytes()).unwrap();
        let wrapper = stats.offset_table[&mq("b", 3, "%RETRY%G")];
        assert_eq!(
            wrapper,
            OffsetWrapper {
                broker_offset: 10,
                consumer_offset: 7,
                last_timestamp: 1_700_000_000_000,
                pull_offset: 9,
            }
        );
        assert_eq!((stats.total_diff(), stats.total_inflight()), (3, 2));
        assert_eq!(String::from_utf8(stats.to_fastjson()).unwrap(), java);
    }

    #[test]
    fn reads_pretty_printed_and_sparse_bodies() {
        // fastjson pretty format (tabs, newlines), a missing field, NaN written as null,
        // braces and quotes inside strings of the key.
        let body = "{\n\t\"consumeTps\":null,\n\t\"offsetTable\":{\n\t\t{\"brokerName\":\"b{\\\"x\",\"queueId\":0,\"topic\":\"T}\"}:{\"brokerOffset\":5}\n\t}\n}";
        let stats = ConsumeStats::from_fastjson(body.as_bytes()).unwrap();
        assert_eq!(stats.consume_tps, 0.0);
        let (queue, wrapper) = stats.offset_table.iter().next().unwrap();
        assert_eq!(queue, &mq("b{\"x", 0, "T}"));
        assert_eq!(wrapper.broker_offset, 5);
        // Empty table, and a body without offsetTable at all.
        assert!(
            TopicStatsTable::from_fastjson(br#"{"offsetTable":{},"topicPutTps":0.0}"#)
                .unwrap()
                .offset_table
                .is_empty()
        );
        assert!(
            ConsumeStats::from_fastjson(br#"{"consumeTps":1.0}"#)
                .unwrap()
                .offset_table
                .is_empty()
        );
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"{",
            b"{\"offsetTable\":{{\"brokerName\":1}:{}}}",
            b"{\"offsetTable\":{{\"brokerName\":\"b\",\"queueId\":0,\"topic\":\"T\"}:",
            b"[1,2]",
        ] {
            assert!(
                ConsumeStats::from_fastjson(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn valid_json_is_left_alone() {
        let s = br#"{"a":[{"b":1},{"c":"{x}:"}],"d":{"e":2}}"#;
        assert!(matches!(quote_object_keys(s), Cow::Borrowed(_)));
        let fixed = quote_object_keys(br#"{ {"k":[1,{"z":2}]} :3}"#);
        assert_eq!(&*fixed, br#"{ "{\"k\":[1,{\"z\":2}]}" :3}"#);
    }

    /// Deterministic xorshift generator: reproducible cases without a dependency.
    struct Xorshift(u64);

    impl Xorshift {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        /// A name built from the characters the key rewriting must respect: quotes,
        /// backslashes, braces, brackets, colons, commas, whitespace, control and non-ASCII.
        fn name(&mut self) -> String {
            const PIECES: [&str; 15] = [
                "a",
                "\"",
                "\\",
                "{",
                "}",
                "[",
                "]",
                ":",
                ",",
                " ",
                "\n",
                "\u{1}",
                "é",
                "😀",
                "{\"x\":1}",
            ];
            let len = 1 + self.below(6);
            (0..len).map(|_| PIECES[self.below(PIECES.len())]).collect()
        }
    }

    #[test]
    fn tricky_names_round_trip() {
        let mut rng = Xorshift(0x9E37_79B9_7F4A_7C15);
        for round in 0..200 {
            let mut stats = ConsumeStats {
                consume_tps: f64::from(round) / 8.0,
                ..ConsumeStats::default()
            };
            for q in 0..1 + rng.below(3) {
                let queue = mq(&rng.name(), q as i32, &rng.name());
                let wrapper = OffsetWrapper {
                    broker_offset: rng.below(1000) as i64,
                    consumer_offset: rng.below(1000) as i64,
                    last_timestamp: 1_700_000_000_000,
                    pull_offset: -1,
                };
                stats.offset_table.insert(queue, wrapper);
            }
            let wire = stats.to_fastjson();
            let back = ConsumeStats::from_fastjson(&wire)
                .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&wire)));
            assert_eq!(back, stats, "{}", String::from_utf8_lossy(&wire));
        }
    }

    #[test]
    fn doubles_follow_java() {
        assert_eq!(java_double(0.0), "0.0");
        assert_eq!(java_double(12.0), "12.0");
        assert_eq!(java_double(12.5), "12.5");
        assert_eq!(java_double(0.001), "0.001");
        assert_eq!(java_double(1.0e7), "1.0E7");
        assert_eq!(java_double(1.5e-5), "1.5E-5");
        assert_eq!(java_double(-3.25), "-3.25");
        assert_eq!(java_double(f64::NAN), "null");
    }
}
