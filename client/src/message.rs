//! Messages as QUERY_MESSAGE and VIEW_MESSAGE_BY_ID return them: CommitLog-layout records,
//! decoded into owned values the commands can print.

use std::io::Read;
use std::net::SocketAddr;

use rocketmq_common::message::{
    RecordEntry, RecordError, decode_record, encode_offset_message_id, keys, parse_properties,
};

/// `sysFlag` bit: the body is compressed (`MessageSysFlag.COMPRESSED_FLAG`).
const COMPRESSED_FLAG: i32 = 0x1;
/// `sysFlag` bits 8–10: compression type (`MessageSysFlag.COMPRESSION_TYPE_COMPARATOR`).
const COMPRESSION_TYPE_MASK: i32 = 0x700;

/// One stored message, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    /// Topic.
    pub topic: String,
    /// Queue id.
    pub queue_id: i32,
    /// Logical offset in the queue.
    pub queue_offset: i64,
    /// Physical offset in the CommitLog.
    pub commit_log_offset: i64,
    /// Message sys flag.
    pub sys_flag: i32,
    /// User flag.
    pub flag: i32,
    /// Producer timestamp (ms).
    pub born_timestamp: i64,
    /// Producer address.
    pub born_host: SocketAddr,
    /// Broker store timestamp (ms).
    pub store_timestamp: i64,
    /// Broker address that stored it.
    pub store_host: SocketAddr,
    /// Times it was consumed and sent back.
    pub reconsume_times: i32,
    /// Properties in wire order.
    pub properties: Vec<(String, String)>,
    /// Body as stored (possibly compressed; see [`StoredMessage::readable_body`]).
    pub body: Vec<u8>,
}

/// A body ready to show, or why it cannot be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadableBody {
    /// Plain or successfully decompressed bytes.
    Bytes(Vec<u8>),
    /// Compressed with an algorithm this tool does not decode.
    Undecoded {
        /// Algorithm name.
        compression: &'static str,
    },
}

impl StoredMessage {
    /// Decodes one record (the layout a broker returns from its CommitLog).
    pub fn decode(record: &[u8]) -> Result<Self, RecordError> {
        match decode_record(record, false)? {
            RecordEntry::Message(r) => Ok(Self {
                topic: r.topic.to_string(),
                queue_id: r.queue_id,
                queue_offset: r.queue_offset,
                commit_log_offset: r.physical_offset,
                sys_flag: r.sys_flag,
                flag: r.flag,
                born_timestamp: r.born_timestamp,
                born_host: r.born_host,
                store_timestamp: r.store_timestamp,
                store_host: r.store_host,
                reconsume_times: r.reconsume_times,
                properties: parse_properties(r.properties)
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                body: r.body.to_vec(),
            }),
            RecordEntry::Blank { .. } => Err(RecordError::BadLength(
                "end-of-file marker where a message was expected",
            )),
        }
    }

    /// Decodes a body of concatenated records (QUERY_MESSAGE's answer).
    pub fn decode_all(mut body: &[u8]) -> Result<Vec<Self>, RecordError> {
        let mut messages = Vec::new();
        while !body.is_empty() {
            let message = Self::decode(body)?;
            // decode() succeeded, so the record's TOTALSIZE prefix is within the slice.
            let size = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) as usize;
            body = &body[size..];
            messages.push(message);
        }
        Ok(messages)
    }

    /// The value of property `name` (the last one wins, as in Java).
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The id the broker derives from where it stored the message (store host + offset).
    pub fn offset_msg_id(&self) -> String {
        encode_offset_message_id(self.store_host, self.commit_log_offset)
    }

    /// The id users see: the producer's `UNIQ_KEY` if set, else the offset id (what Java's
    /// client shows as `msgId`).
    pub fn msg_id(&self) -> String {
        self.property(keys::UNIQ_KEY)
            .map(str::to_string)
            .unwrap_or_else(|| self.offset_msg_id())
    }

    /// The message tag, if any.
    pub fn tags(&self) -> Option<&str> {
        self.property(keys::TAGS)
    }

    /// The business keys, space-separated, if any.
    pub fn keys(&self) -> Option<&str> {
        self.property(keys::KEYS)
    }

    /// Whether `key` is one of the message's keys.
    pub fn has_key(&self, key: &str) -> bool {
        self.keys()
            .is_some_and(|ks| ks.split(keys::KEY_SEPARATOR).any(|k| k == key))
    }

    /// The body decompressed where the tool can (zlib, the Java client's default).
    pub fn readable_body(&self) -> ReadableBody {
        if self.sys_flag & COMPRESSED_FLAG == 0 {
            return ReadableBody::Bytes(self.body.clone());
        }
        // CompressionType: 1 LZ4, 2 ZSTD, 3 ZLIB; 0 means ZLIB (written before the type bits
        // existed).
        match (self.sys_flag & COMPRESSION_TYPE_MASK) >> 8 {
            0 | 3 => {
                let mut out = Vec::new();
                match flate2::read::ZlibDecoder::new(&self.body[..]).read_to_end(&mut out) {
                    Ok(_) => ReadableBody::Bytes(out),
                    Err(_) => ReadableBody::Undecoded {
                        compression: "zlib (corrupt)",
                    },
                }
            }
            1 => ReadableBody::Undecoded { compression: "LZ4" },
            2 => ReadableBody::Undecoded {
                compression: "ZSTD",
            },
            _ => ReadableBody::Undecoded {
                compression: "unknown",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocketmq_testkit::stored_record as record;

    #[test]
    fn decodes_concatenated_records_and_ids() {
        let mut body = record(
            "T",
            1,
            7,
            4096,
            &[("KEYS", "k1 k2"), ("TAGS", "TagA")],
            b"hi",
        );
        body.extend(record("T", 2, 8, 8192, &[("UNIQ_KEY", "ABC")], b"yo"));
        let messages = StoredMessage::decode_all(&body).unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[0].tags(), Some("TagA"));
        assert!(messages[0].has_key("k2") && !messages[0].has_key("k"));
        // Without UNIQ_KEY the id is the offset id: 127.0.0.1, port 10911, offset 4096.
        assert_eq!(messages[0].msg_id(), "7F00000100002A9F0000000000001000");
        assert_eq!(messages[1].msg_id(), "ABC");
        assert_eq!(messages[1].queue_offset, 8);
        assert!(StoredMessage::decode_all(&body[..body.len() - 1]).is_err());
        assert_eq!(StoredMessage::decode_all(&[]).unwrap(), vec![]);
    }

    #[test]
    fn zlib_bodies_are_decompressed() {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(b"hello compressed").unwrap();
        let mut m =
            StoredMessage::decode(&record("T", 0, 0, 0, &[], &z.finish().unwrap())).unwrap();
        m.sys_flag = COMPRESSED_FLAG | (3 << 8);
        assert_eq!(
            m.readable_body(),
            ReadableBody::Bytes(b"hello compressed".to_vec())
        );
        m.sys_flag = COMPRESSED_FLAG | (1 << 8);
        assert_eq!(
            m.readable_body(),
            ReadableBody::Undecoded { compression: "LZ4" }
        );
    }
}
