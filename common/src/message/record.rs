//! The CommitLog record: how one message is laid out on disk and in pull responses.
//!
//! ```text
//! TOTALSIZE i32 | MAGICCODE i32 | BODYCRC i32 | QUEUEID i32 | FLAG i32 | QUEUEOFFSET i64 (@20)
//! | PHYSICALOFFSET i64 (@28) | SYSFLAG i32 (@36) | BORNTIMESTAMP i64 (@40)
//! | BORNHOST ip(4|16)+port i32 | STORETIMESTAMP i64 | STOREHOST ip(4|16)+port i32
//! | RECONSUMETIMES i32 | PREPAREDTRANSACTIONOFFSET i64 | BODYLEN i32 + body
//! | TOPICLEN (i8 for V1, i16 for V2) + topic | PROPERTIESLEN i16 + properties
//! ```
//! A segment ends with a BLANK record: `i32 remaining | i32 BLANK_MAGIC_CODE`.
//! BODYCRC is CRC32 of the body masked with `0x7FFFFFFF` (Java's `UtilAll.crc32`).
//!
//! [`decode_record`] trusts nothing: every length is checked against TOTALSIZE and the
//! buffer, so a torn or overwritten record is reported as an error, never served.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::sysflag::{BORNHOST_V6, STOREHOST_V6};

/// Magic of a V1 record (1-byte topic length).
pub const MESSAGE_MAGIC_CODE_V1: u32 = 0xDAA3_20A7;
/// Magic of a V2 record (2-byte topic length), used when the topic exceeds 127 bytes.
pub const MESSAGE_MAGIC_CODE_V2: u32 = 0xDAA3_20AB;
/// Magic of the filler record at the end of a segment.
pub const BLANK_MAGIC_CODE: u32 = 0xCBD4_3194;
/// Size of the BLANK marker a writer must always be able to fit at a segment's end.
pub const END_FILE_MIN_BLANK_LENGTH: usize = 8;

/// Byte position of QUEUEOFFSET in a record.
pub const QUEUE_OFFSET_POS: usize = 20;
/// Byte position of PHYSICALOFFSET in a record.
pub const PHYSICAL_OFFSET_POS: usize = 28;
/// Byte position of SYSFLAG in a record.
pub const SYSFLAG_POS: usize = 36;
/// Byte position of BORNTIMESTAMP in a record.
pub const BORN_TIMESTAMP_POS: usize = 40;
/// Byte position of BORNHOST in a record.
pub const BORN_HOST_POS: usize = 48;

/// Largest topic length a V1 record can carry.
const V1_MAX_TOPIC_LEN: usize = 127;

/// The parts of a record supplied by the producer (and broker processors).
#[derive(Debug, Clone, Copy)]
pub struct RecordInput<'a> {
    /// Topic name (UTF-8, at most 32767 bytes).
    pub topic: &'a str,
    /// Queue id within the topic.
    pub queue_id: i32,
    /// User flag.
    pub flag: i32,
    /// `MessageSysFlag` bits; the host IPv6 bits are derived from the addresses.
    pub sys_flag: i32,
    /// Producer timestamp (ms).
    pub born_timestamp: i64,
    /// Producer address.
    pub born_host: SocketAddr,
    /// Broker address written into the record.
    pub store_host: SocketAddr,
    /// Number of redeliveries so far.
    pub reconsume_times: i32,
    /// Transaction: offset of the prepared message.
    pub prepared_transaction_offset: i64,
    /// Payload.
    pub body: &'a [u8],
    /// Properties string (`k\x01v\x02...`, at most 32767 bytes).
    pub properties: &'a str,
}

/// The parts of a record assigned by the store at append time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeaderFields {
    /// Logical offset in the topic queue.
    pub queue_offset: i64,
    /// Byte offset of the record in the CommitLog.
    pub physical_offset: i64,
    /// Store timestamp (ms).
    pub store_timestamp: i64,
    /// [`body_crc`] of the body, computed by the caller (outside any lock).
    pub body_crc: u32,
}

/// Why bytes are not a valid record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// Fewer bytes than the record claims or than a minimal header.
    #[error("record truncated: need {need} bytes, have {have}")]
    Truncated {
        /// Bytes required.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// MAGICCODE is neither message nor blank.
    #[error("bad magic code {0:#010x}")]
    BadMagic(u32),
    /// Lengths inside the record disagree with TOTALSIZE.
    #[error("inconsistent record lengths: {0}")]
    BadLength(&'static str),
    /// BODYCRC does not match the body.
    #[error("body CRC mismatch: stored {stored:#x}, computed {computed:#x}")]
    BadCrc {
        /// CRC in the record.
        stored: u32,
        /// CRC of the body bytes.
        computed: u32,
    },
    /// Topic or properties are not UTF-8.
    #[error("{0} is not valid UTF-8")]
    NotUtf8(&'static str),
    /// Topic or properties longer than the format allows.
    #[error("{0} too long for the record format")]
    TooLong(&'static str),
}

/// A decoded record borrowing from the buffer it was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodedRecord<'a> {
    /// Whole record length.
    pub total_size: u32,
    /// [`MESSAGE_MAGIC_CODE_V1`] or [`MESSAGE_MAGIC_CODE_V2`].
    pub magic: u32,
    /// Stored body CRC.
    pub body_crc: u32,
    /// Queue id.
    pub queue_id: i32,
    /// User flag.
    pub flag: i32,
    /// Logical queue offset.
    pub queue_offset: i64,
    /// CommitLog offset.
    pub physical_offset: i64,
    /// System flag.
    pub sys_flag: i32,
    /// Producer timestamp.
    pub born_timestamp: i64,
    /// Producer address.
    pub born_host: SocketAddr,
    /// Store timestamp.
    pub store_timestamp: i64,
    /// Broker address.
    pub store_host: SocketAddr,
    /// Redelivery count.
    pub reconsume_times: i32,
    /// Transaction prepared offset.
    pub prepared_transaction_offset: i64,
    /// Payload.
    pub body: &'a [u8],
    /// Topic.
    pub topic: &'a str,
    /// Properties string.
    pub properties: &'a str,
}

/// What sits at a position in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordEntry<'a> {
    /// A message record.
    Message(DecodedRecord<'a>),
    /// The end-of-segment filler; `size` is the rest of the segment.
    Blank {
        /// Bytes from here to the segment end.
        size: u32,
    },
}

/// Java's `UtilAll.crc32`: CRC32 (IEEE) masked to a non-negative `int`.
pub fn body_crc(body: &[u8]) -> u32 {
    crc32fast::hash(body) & 0x7FFF_FFFF
}

fn host_len(addr: &SocketAddr) -> usize {
    if addr.is_ipv4() { 8 } else { 20 }
}

/// Length of the record `input` encodes to, or an error when topic/properties are too long.
pub fn encoded_record_len(input: &RecordInput<'_>) -> Result<usize, RecordError> {
    let topic_len = input.topic.len();
    if topic_len > i16::MAX as usize {
        return Err(RecordError::TooLong("topic"));
    }
    if input.properties.len() > i16::MAX as usize {
        return Err(RecordError::TooLong("properties"));
    }
    let topic_len_field = if topic_len > V1_MAX_TOPIC_LEN { 2 } else { 1 };
    Ok(4 + 4
        + 4
        + 4
        + 4
        + 8
        + 8
        + 4
        + 8
        + host_len(&input.born_host)
        + 8
        + host_len(&input.store_host)
        + 4
        + 8
        + 4
        + input.body.len()
        + topic_len_field
        + topic_len
        + 2
        + input.properties.len())
}

struct Writer<'b> {
    buf: &'b mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
    }
    fn host(&mut self, addr: &SocketAddr) {
        match addr.ip() {
            IpAddr::V4(ip) => self.put(&ip.octets()),
            IpAddr::V6(ip) => self.put(&ip.octets()),
        }
        self.put(&i32::from(addr.port()).to_be_bytes());
    }
}

/// Encodes `input` with the store-assigned `fields` into the start of `buf` and returns the
/// number of bytes written (= [`encoded_record_len`]).
///
/// # Panics
/// When `buf` is shorter than the encoded length: callers size the buffer from
/// [`encoded_record_len`] first.
pub fn encode_record(
    input: &RecordInput<'_>,
    fields: &RecordHeaderFields,
    buf: &mut [u8],
) -> Result<usize, RecordError> {
    let len = encoded_record_len(input)?;
    assert!(
        buf.len() >= len,
        "encode_record: buffer of {} bytes for a {len}-byte record",
        buf.len()
    );
    let v2 = input.topic.len() > V1_MAX_TOPIC_LEN;
    let mut sys_flag = input.sys_flag & !(BORNHOST_V6 | STOREHOST_V6);
    if input.born_host.is_ipv6() {
        sys_flag |= BORNHOST_V6;
    }
    if input.store_host.is_ipv6() {
        sys_flag |= STOREHOST_V6;
    }
    let magic = if v2 {
        MESSAGE_MAGIC_CODE_V2
    } else {
        MESSAGE_MAGIC_CODE_V1
    };
    // TOTALSIZE goes in last (see below), so start after it.
    let mut w = Writer { buf, pos: 4 };
    w.put(&magic.to_be_bytes());
    w.put(&fields.body_crc.to_be_bytes());
    w.put(&input.queue_id.to_be_bytes());
    w.put(&input.flag.to_be_bytes());
    w.put(&fields.queue_offset.to_be_bytes());
    w.put(&fields.physical_offset.to_be_bytes());
    w.put(&sys_flag.to_be_bytes());
    w.put(&input.born_timestamp.to_be_bytes());
    w.host(&input.born_host);
    w.put(&fields.store_timestamp.to_be_bytes());
    w.host(&input.store_host);
    w.put(&input.reconsume_times.to_be_bytes());
    w.put(&input.prepared_transaction_offset.to_be_bytes());
    w.put(&(input.body.len() as i32).to_be_bytes());
    w.put(input.body);
    if v2 {
        w.put(&(input.topic.len() as i16).to_be_bytes());
    } else {
        w.put(&[input.topic.len() as u8]);
    }
    w.put(input.topic.as_bytes());
    w.put(&(input.properties.len() as i16).to_be_bytes());
    w.put(input.properties.as_bytes());
    debug_assert_eq!(w.pos, len);
    // Written into a CommitLog mapping, the record becomes visible to recovery only through
    // its TOTALSIZE, and the body CRC does not cover the properties: a process killed in the
    // middle of this copy must leave a zero size (the end of the log), never a size in front
    // of half-written properties. The fence keeps the compiler from sinking earlier stores
    // below this one; the CPU retires a thread's stores in order into the shared page cache.
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::Release);
    w.buf[..4].copy_from_slice(&(len as i32).to_be_bytes());
    Ok(len)
}

/// Writes the end-of-segment BLANK marker for a `remaining`-byte tail into `buf`.
pub fn encode_blank(remaining: u32, buf: &mut [u8]) {
    buf[..4].copy_from_slice(&remaining.to_be_bytes());
    buf[4..8].copy_from_slice(&BLANK_MAGIC_CODE.to_be_bytes());
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.pos + n > self.buf.len() {
            return Err(RecordError::BadLength("field runs past TOTALSIZE"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn i16(&mut self) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into().expect("2")))
    }
    fn i32(&mut self) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.take(8)?.try_into().expect("8")))
    }
    fn host(&mut self, v6: bool) -> Result<SocketAddr, RecordError> {
        let ip = if v6 {
            let o: [u8; 16] = self.take(16)?.try_into().expect("16");
            IpAddr::V6(Ipv6Addr::from(o))
        } else {
            let o = self.take(4)?;
            IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3]))
        };
        let port = self.i32()?;
        Ok(SocketAddr::new(ip, port as u16))
    }
}

/// Decodes the record or BLANK marker at the start of `buf`.
///
/// `buf` may extend past the record (e.g. the rest of a segment). With `verify_crc` the body
/// CRC is recomputed; recovery and reads of untrusted bytes should set it.
pub fn decode_record(buf: &[u8], verify_crc: bool) -> Result<RecordEntry<'_>, RecordError> {
    if buf.len() < 8 {
        return Err(RecordError::Truncated {
            need: 8,
            have: buf.len(),
        });
    }
    let total = u32::from_be_bytes(buf[..4].try_into().expect("4"));
    let magic = u32::from_be_bytes(buf[4..8].try_into().expect("4"));
    match magic {
        BLANK_MAGIC_CODE => {
            if (total as usize) < END_FILE_MIN_BLANK_LENGTH {
                return Err(RecordError::BadLength("blank shorter than its marker"));
            }
            return Ok(RecordEntry::Blank { size: total });
        }
        MESSAGE_MAGIC_CODE_V1 | MESSAGE_MAGIC_CODE_V2 => {}
        other => return Err(RecordError::BadMagic(other)),
    }
    let total_usize = total as usize;
    if total > i32::MAX as u32 {
        return Err(RecordError::BadLength("negative TOTALSIZE"));
    }
    if total_usize > buf.len() {
        return Err(RecordError::Truncated {
            need: total_usize,
            have: buf.len(),
        });
    }
    let mut r = Reader {
        buf: &buf[..total_usize],
        pos: 8,
    };
    let body_crc_stored = r.i32()? as u32;
    let queue_id = r.i32()?;
    let flag = r.i32()?;
    let queue_offset = r.i64()?;
    let physical_offset = r.i64()?;
    let sys_flag = r.i32()?;
    let born_timestamp = r.i64()?;
    let born_host = r.host(sys_flag & BORNHOST_V6 != 0)?;
    let store_timestamp = r.i64()?;
    let store_host = r.host(sys_flag & STOREHOST_V6 != 0)?;
    let reconsume_times = r.i32()?;
    let prepared_transaction_offset = r.i64()?;
    let body_len = r.i32()?;
    if body_len < 0 {
        return Err(RecordError::BadLength("negative body length"));
    }
    let body = r.take(body_len as usize)?;
    let topic_len = if magic == MESSAGE_MAGIC_CODE_V2 {
        let l = r.i16()?;
        if l < 0 {
            return Err(RecordError::BadLength("negative topic length"));
        }
        l as usize
    } else {
        usize::from(r.take(1)?[0])
    };
    let topic =
        std::str::from_utf8(r.take(topic_len)?).map_err(|_| RecordError::NotUtf8("topic"))?;
    let props_len = r.i16()?;
    if props_len < 0 {
        return Err(RecordError::BadLength("negative properties length"));
    }
    let properties = std::str::from_utf8(r.take(props_len as usize)?)
        .map_err(|_| RecordError::NotUtf8("properties"))?;
    if r.pos != total_usize {
        return Err(RecordError::BadLength("fields do not add up to TOTALSIZE"));
    }
    if verify_crc {
        let computed = body_crc(body);
        if computed != body_crc_stored {
            return Err(RecordError::BadCrc {
                stored: body_crc_stored,
                computed,
            });
        }
    }
    Ok(RecordEntry::Message(DecodedRecord {
        total_size: total,
        magic,
        body_crc: body_crc_stored,
        queue_id,
        flag,
        queue_offset,
        physical_offset,
        sys_flag,
        born_timestamp,
        born_host,
        store_timestamp,
        store_host,
        reconsume_times,
        prepared_transaction_offset,
        body,
        topic,
        properties,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(topic: &'a str, body: &'a [u8], props: &'a str) -> RecordInput<'a> {
        RecordInput {
            topic,
            queue_id: 3,
            flag: 7,
            sys_flag: 0,
            born_timestamp: 0x0102_0304_0506_0708,
            born_host: "192.168.0.1:1234".parse().unwrap(),
            store_host: "10.0.0.1:10911".parse().unwrap(),
            reconsume_times: 2,
            prepared_transaction_offset: 0,
            body,
            properties: props,
        }
    }

    fn fields(body: &[u8]) -> RecordHeaderFields {
        RecordHeaderFields {
            queue_offset: 5,
            physical_offset: 4096,
            store_timestamp: 0x1111_2222_3333_4444,
            body_crc: body_crc(body),
        }
    }

    #[test]
    fn crc_matches_java_util_all() {
        // CRC32("123456789") = 0xCBF43926; masked with 0x7FFFFFFF as UtilAll.crc32 does.
        assert_eq!(body_crc(b"123456789"), 0xCBF4_3926 & 0x7FFF_FFFF);
        assert_eq!(body_crc(b""), 0);
    }

    #[test]
    fn v1_ipv4_bytes_exact() {
        let inp = input("T", b"hi", "a\x01b\x02");
        let f = fields(b"hi");
        let len = encoded_record_len(&inp).unwrap();
        // 4+4+4+4+4+8+8+4+8+8+8+8+4+8 = 84, body 4+2, topic 1+1, props 2+4.
        assert_eq!(len, 84 + 6 + 2 + 6);
        let mut buf = vec![0u8; len];
        assert_eq!(encode_record(&inp, &f, &mut buf).unwrap(), len);
        let mut expect = Vec::new();
        expect.extend_from_slice(&(len as i32).to_be_bytes());
        expect.extend_from_slice(&[0xDA, 0xA3, 0x20, 0xA7]);
        expect.extend_from_slice(&body_crc(b"hi").to_be_bytes());
        expect.extend_from_slice(&[0, 0, 0, 3]); // queue id
        expect.extend_from_slice(&[0, 0, 0, 7]); // flag
        expect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 5]); // queue offset @20
        expect.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x10, 0]); // physical offset @28
        expect.extend_from_slice(&[0, 0, 0, 0]); // sysflag @36
        expect.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]); // born ts @40
        expect.extend_from_slice(&[192, 168, 0, 1, 0, 0, 0x04, 0xD2]); // born host @48
        expect.extend_from_slice(&[0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44, 0x44]);
        expect.extend_from_slice(&[10, 0, 0, 1, 0, 0, 0x2A, 0x9F]); // store host
        expect.extend_from_slice(&[0, 0, 0, 2]); // reconsume
        expect.extend_from_slice(&[0; 8]); // prepared offset
        expect.extend_from_slice(&[0, 0, 0, 2, b'h', b'i']);
        expect.extend_from_slice(&[1, b'T']);
        expect.extend_from_slice(&[0, 4, b'a', 1, b'b', 2]);
        assert_eq!(buf, expect);
        assert_eq!(
            &buf[QUEUE_OFFSET_POS..QUEUE_OFFSET_POS + 8],
            &5i64.to_be_bytes()
        );
        assert_eq!(
            &buf[PHYSICAL_OFFSET_POS..PHYSICAL_OFFSET_POS + 8],
            &4096i64.to_be_bytes()
        );

        let RecordEntry::Message(d) = decode_record(&buf, true).unwrap() else {
            panic!("not a message")
        };
        assert_eq!(d.total_size as usize, len);
        assert_eq!(d.magic, MESSAGE_MAGIC_CODE_V1);
        assert_eq!(d.queue_id, 3);
        assert_eq!(d.flag, 7);
        assert_eq!(d.queue_offset, 5);
        assert_eq!(d.physical_offset, 4096);
        assert_eq!(d.born_host, inp.born_host);
        assert_eq!(d.store_host, inp.store_host);
        assert_eq!(d.store_timestamp, f.store_timestamp);
        assert_eq!(d.reconsume_times, 2);
        assert_eq!(d.body, b"hi");
        assert_eq!(d.topic, "T");
        assert_eq!(d.properties, "a\x01b\x02");
    }

    #[test]
    fn v2_topic_and_ipv6_hosts() {
        let topic = "t".repeat(200);
        let mut inp = input(&topic, b"body", "");
        inp.born_host = "[::1]:1".parse().unwrap();
        inp.store_host = "[fe80::2]:10911".parse().unwrap();
        let len = encoded_record_len(&inp).unwrap();
        assert_eq!(len, 84 + 24 + 8 + 2 + 200 + 2);
        let mut buf = vec![0u8; len + 10];
        encode_record(&inp, &fields(b"body"), &mut buf).unwrap();
        assert_eq!(&buf[4..8], &MESSAGE_MAGIC_CODE_V2.to_be_bytes());
        let sys = i32::from_be_bytes(buf[SYSFLAG_POS..SYSFLAG_POS + 4].try_into().unwrap());
        assert_eq!(sys, BORNHOST_V6 | STOREHOST_V6);
        let RecordEntry::Message(d) = decode_record(&buf, true).unwrap() else {
            panic!("not a message")
        };
        assert_eq!(d.topic, topic);
        assert_eq!(d.born_host, inp.born_host);
        assert_eq!(d.store_host, inp.store_host);
        assert_eq!(d.body, b"body");
    }

    #[test]
    fn blank_marker() {
        let mut buf = [0u8; 8];
        encode_blank(1000, &mut buf);
        assert_eq!(buf, [0, 0, 0x03, 0xE8, 0xCB, 0xD4, 0x31, 0x94]);
        assert_eq!(
            decode_record(&buf, true).unwrap(),
            RecordEntry::Blank { size: 1000 }
        );
    }

    #[test]
    fn corruption_is_detected() {
        let inp = input("Topic", b"payload", "k\x01v\x02");
        let len = encoded_record_len(&inp).unwrap();
        let mut buf = vec![0u8; len];
        encode_record(&inp, &fields(b"payload"), &mut buf).unwrap();
        // Body byte flipped -> CRC.
        let mut b = buf.clone();
        b[88] ^= 0x01; // first body byte (body length field sits at 84)
        assert!(matches!(
            decode_record(&b, true),
            Err(RecordError::BadCrc { .. })
        ));
        // Without CRC verification the same bytes decode (recovery always verifies).
        assert!(decode_record(&b, false).is_ok());
        // Truncated buffer.
        assert!(matches!(
            decode_record(&buf[..len - 1], true),
            Err(RecordError::Truncated { .. })
        ));
        // Zeroes (unwritten space).
        assert!(matches!(
            decode_record(&[0u8; 64], true),
            Err(RecordError::BadMagic(0))
        ));
        // Body length that disagrees with TOTALSIZE.
        let mut b = buf.clone();
        let body_len_pos = 84;
        b[body_len_pos + 3] += 1;
        assert!(matches!(
            decode_record(&b, true),
            Err(RecordError::BadLength(_))
        ));
        // TOTALSIZE larger than the real record.
        let mut b = buf.clone();
        b.extend_from_slice(&[0; 4]);
        b[3] += 4;
        assert!(matches!(
            decode_record(&b, true),
            Err(RecordError::BadLength(_))
        ));
        // Too-long properties rejected at encode time.
        let long = "x".repeat(40_000);
        let inp = input("T", b"", &long);
        assert_eq!(
            encoded_record_len(&inp),
            Err(RecordError::TooLong("properties"))
        );
    }
}
