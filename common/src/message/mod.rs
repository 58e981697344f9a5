//! RocketMQ message encoding shared by broker, proxy and clients.
//!
//! Everything here is protocol knowledge that two processes must agree on byte for byte:
//! the CommitLog record layout ([`record`]), the `k\x01v\x02` properties string
//! ([`properties`]), Java's `String.hashCode` used for tag codes and index keys
//! ([`java_string_hash`]) and the 16-byte offset message id ([`message_id`]).
//! All integers are big-endian, as in Java's `ByteBuffer`.

pub mod batch;
pub mod message_id;
pub mod properties;
pub mod record;
pub mod sysflag;

pub use message_id::{
    MessageIdError, UniqIdGenerator, decode_offset_message_id, encode_offset_message_id,
};
pub use properties::{
    PropertiesIter, encode_properties, get_property, parse_properties, rewrite_properties,
};
pub use record::{
    BLANK_MAGIC_CODE, DecodedRecord, MESSAGE_MAGIC_CODE_V1, MESSAGE_MAGIC_CODE_V2, RecordEntry,
    RecordError, RecordHeaderFields, RecordInput, body_crc, decode_record, encode_blank,
    encode_record, encoded_record_len,
};

/// Java `String.hashCode()`: `h = 31*h + c` over the UTF-16 code units, wrapping in `i32`.
///
/// RocketMQ stores it as the ConsumeQueue tag code and uses it to place index keys, so the
/// value must match Java exactly, including for non-ASCII text (surrogate pairs count as two
/// code units).
pub fn java_string_hash(s: &str) -> i32 {
    let mut h: i32 = 0;
    if s.is_ascii() {
        // Fast path: one code unit per byte.
        for b in s.bytes() {
            h = h.wrapping_mul(31).wrapping_add(i32::from(b));
        }
    } else {
        for unit in s.encode_utf16() {
            h = h.wrapping_mul(31).wrapping_add(i32::from(unit));
        }
    }
    h
}

/// Well-known property keys (`MessageConst`): one place for every name the broker, the
/// proxy and the tools read or write.
pub mod keys {
    /// Space-separated business keys, indexed by the IndexFile.
    pub const KEYS: &str = "KEYS";
    /// The message tag; its Java hash is the ConsumeQueue tag code.
    pub const TAGS: &str = "TAGS";
    /// Client-generated unique id (what users see as the message id), indexed.
    pub const UNIQ_KEY: &str = "UNIQ_KEY";
    /// Separator between keys inside the `KEYS` property.
    pub const KEY_SEPARATOR: char = ' ';
    /// The cluster that stored the message (added by the broker).
    pub const CLUSTER: &str = "CLUSTER";
    /// Delay level (1-based) of a delayed message.
    pub const DELAY: &str = "DELAY";
    /// Real topic of a message parked in a system topic (delay, timer, half message).
    pub const REAL_TOPIC: &str = "REAL_TOPIC";
    /// Real queue of a message parked in a system topic.
    pub const REAL_QUEUE_ID: &str = "REAL_QID";
    /// `"true"` on a transactional half message.
    pub const TRANSACTION_PREPARED: &str = "TRAN_MSG";
    /// Producer group of a message (transaction checks go to a producer of this group).
    pub const PRODUCER_GROUP: &str = "PGROUP";
    /// Transaction id of a transactional message (the client's unique key).
    pub const TRANSACTION_ID: &str = "__transactionId__";
    /// Times the broker asked the producer about this half message.
    pub const TRANSACTION_CHECK_TIMES: &str = "TRANSACTION_CHECK_TIMES";
    /// Seconds after sending before the broker may check a half message.
    pub const CHECK_IMMUNITY_TIME_IN_SECONDS: &str = "CHECK_IMMUNITY_TIME_IN_SECONDS";
    /// Half-queue offset of the original half message behind an immunity copy.
    pub const TRANSACTION_PREPARED_QUEUE_OFFSET: &str = "TRAN_PREPARED_QUEUE_OFFSET";
    /// Original topic of a retried message.
    pub const RETRY_TOPIC: &str = "RETRY_TOPIC";
    /// Unique id of the message a retry was made from.
    pub const ORIGIN_MESSAGE_ID: &str = "ORIGIN_MESSAGE_ID";
    /// Original topic of a dead-lettered message.
    pub const DLQ_ORIGIN_TOPIC: &str = "DLQ_ORIGIN_TOPIC";
    /// Unique id of a dead-lettered message.
    pub const DLQ_ORIGIN_MESSAGE_ID: &str = "DLQ_ORIGIN_MESSAGE_ID";
    /// Absolute delivery time (ms since the epoch) of a timer message.
    pub const TIMER_DELIVER_MS: &str = "TIMER_DELIVER_MS";
    /// Delay in seconds of a timer message.
    pub const TIMER_DELAY_SEC: &str = "TIMER_DELAY_SEC";
    /// Delay in milliseconds of a timer message.
    pub const TIMER_DELAY_MS: &str = "TIMER_DELAY_MS";
    /// Delivery time the broker computed for a timer message.
    pub const TIMER_OUT_MS: &str = "TIMER_OUT_MS";
    /// When the timer took the message in (set on delivery).
    pub const TIMER_ENQUEUE_MS: &str = "TIMER_ENQUEUE_MS";
    /// When the timer delivered the message (set on delivery).
    pub const TIMER_DEQUEUE_MS: &str = "TIMER_DEQUEUE_MS";
    /// Times a long timer was rolled over the wheel.
    pub const TIMER_ROLL_TIMES: &str = "TIMER_ROLL_TIMES";
    /// Unique key of the timer message a delete marker cancels.
    pub const TIMER_DEL_UNIQKEY: &str = "TIMER_DEL_UNIQKEY";
    /// Older absolute delivery time (ms) of ONS-style clients; the broker treats it like
    /// `TIMER_DELIVER_MS` (Java's broker only counts it in metrics).
    pub const START_DELIVER_TIME: &str = "__STARTDELIVERTIME";
    /// Lowest queue offset, set on pulled messages.
    pub const MIN_OFFSET: &str = "MIN_OFFSET";
    /// Highest queue offset, set on pulled messages.
    pub const MAX_OFFSET: &str = "MAX_OFFSET";
    /// Times a message was consumed and sent back (POP/retry).
    pub const RECONSUME_TIME: &str = "RECONSUME_TIME";
    /// Max reconsume times carried by a retried message.
    pub const MAX_RECONSUME_TIMES: &str = "MAX_RECONSUME_TIMES";
    /// Sharding key (message group) of a FIFO message.
    pub const SHARDING_KEY: &str = "__SHARDINGKEY";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_known_values() {
        // Values computed with Java's "...".hashCode().
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("TagA"), 2_598_919);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        // Overflowing: "polygenelubricants".hashCode() == Integer.MIN_VALUE.
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        // Non-ASCII: 'é' is one UTF-16 unit 0xE9; '😀' is the surrogate pair D83D DE00.
        assert_eq!(java_string_hash("é"), 0xE9);
        assert_eq!(java_string_hash("😀"), 0xD83D * 31 + 0xDE00);
    }
}
