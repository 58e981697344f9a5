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

pub use message_id::{MessageIdError, decode_offset_message_id, encode_offset_message_id};
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

/// Well-known property keys (`MessageConst`) the store needs.
pub mod keys {
    /// Space-separated business keys, indexed by the IndexFile.
    pub const KEYS: &str = "KEYS";
    /// The message tag; its Java hash is the ConsumeQueue tag code.
    pub const TAGS: &str = "TAGS";
    /// Client-generated unique id (what users see as the message id), indexed.
    pub const UNIQ_KEY: &str = "UNIQ_KEY";
    /// Separator between keys inside the `KEYS` property.
    pub const KEY_SEPARATOR: char = ' ';
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
