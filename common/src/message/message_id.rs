//! The offset message id: store host address + port + CommitLog physical offset.
//!
//! Returned in the send response (`msgId`) and accepted by VIEW_MESSAGE_BY_ID: 16 bytes for
//! IPv4 (`ip(4) | port(i32) | offset(i64)`) or 28 for IPv6, rendered as uppercase hex.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why an id string is not an offset message id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageIdError {
    /// Neither 32 (IPv4) nor 56 (IPv6) hex characters.
    #[error("offset message id must be 32 or 56 hex chars, got {0}")]
    BadLength(usize),
    /// A character is not a hex digit.
    #[error("offset message id contains a non-hex character")]
    NotHex,
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Encodes `store_host` and `offset` as the uppercase hex offset message id.
pub fn encode_offset_message_id(store_host: SocketAddr, offset: i64) -> String {
    let mut raw = [0u8; 28];
    let len = match store_host.ip() {
        IpAddr::V4(ip) => {
            raw[..4].copy_from_slice(&ip.octets());
            4
        }
        IpAddr::V6(ip) => {
            raw[..16].copy_from_slice(&ip.octets());
            16
        }
    };
    raw[len..len + 4].copy_from_slice(&i32::from(store_host.port()).to_be_bytes());
    raw[len + 4..len + 12].copy_from_slice(&offset.to_be_bytes());
    let mut out = String::with_capacity((len + 12) * 2);
    for b in &raw[..len + 12] {
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0xF)] as char);
    }
    out
}

/// Generates the client-side unique message id (`UNIQ_KEY`, what users see as the message
/// id) in `MessageClientIDSetter`'s layout: `ip(4) | pid(2) | instance hash(4) | ms since
/// the start of the month(4) | counter(2)`, 32 uppercase hex characters.
#[derive(Debug)]
pub struct UniqIdGenerator {
    prefix: [u8; 10],
    counter: std::sync::atomic::AtomicU32,
}

impl UniqIdGenerator {
    /// A generator for a process at `ip`; `instance` distinguishes generators of one
    /// process (Java uses the class loader's hash).
    pub fn new(ip: Ipv4Addr, instance: u32) -> Self {
        let mut prefix = [0u8; 10];
        prefix[..4].copy_from_slice(&ip.octets());
        prefix[4..6].copy_from_slice(&(std::process::id() as u16).to_be_bytes());
        prefix[6..10].copy_from_slice(&instance.to_be_bytes());
        Self {
            prefix,
            counter: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// The next id; `now_millis` is the current time in ms since the epoch.
    pub fn next(&self, now_millis: i64) -> String {
        let mut raw = [0u8; 16];
        raw[..10].copy_from_slice(&self.prefix);
        raw[10..14].copy_from_slice(&(millis_into_month(now_millis) as u32).to_be_bytes());
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed) as u16;
        raw[14..16].copy_from_slice(&n.to_be_bytes());
        let mut out = String::with_capacity(32);
        for b in raw {
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xF)] as char);
        }
        out
    }
}

/// Milliseconds since 00:00 UTC on the first day of `now_millis`'s month.
fn millis_into_month(now_millis: i64) -> i64 {
    // Day of month from the civil date (Howard Hinnant's algorithm).
    let days = now_millis.div_euclid(86_400_000);
    let z = days + 719_468;
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day_of_month = doy - (153 * mp + 2) / 5; // 0-based
    day_of_month * 86_400_000 + now_millis.rem_euclid(86_400_000)
}

/// Decodes an offset message id (either case) into store host and physical offset.
pub fn decode_offset_message_id(id: &str) -> Result<(SocketAddr, i64), MessageIdError> {
    let ip_len = match id.len() {
        32 => 4,
        56 => 16,
        n => return Err(MessageIdError::BadLength(n)),
    };
    let mut raw = [0u8; 28];
    for (i, pair) in id.as_bytes().chunks_exact(2).enumerate() {
        let hi = hex_val(pair[0])?;
        let lo = hex_val(pair[1])?;
        raw[i] = (hi << 4) | lo;
    }
    let ip = if ip_len == 4 {
        IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))
    } else {
        let mut o = [0u8; 16];
        o.copy_from_slice(&raw[..16]);
        IpAddr::V6(Ipv6Addr::from(o))
    };
    let port = i32::from_be_bytes(raw[ip_len..ip_len + 4].try_into().expect("4 bytes"));
    let offset = i64::from_be_bytes(raw[ip_len + 4..ip_len + 12].try_into().expect("8 bytes"));
    // Java writes the port as an int; only the low 16 bits are meaningful.
    Ok((SocketAddr::new(ip, port as u16), offset))
}

fn hex_val(c: u8) -> Result<u8, MessageIdError> {
    match c {
        b'0'..=b'9' => Ok(c - b'0'),
        b'A'..=b'F' => Ok(c - b'A' + 10),
        b'a'..=b'f' => Ok(c - b'a' + 10),
        _ => Err(MessageIdError::NotHex),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_ids_have_java_s_layout() {
        let g = UniqIdGenerator::new(Ipv4Addr::new(10, 0, 0, 1), 0xAABBCCDD);
        // 2026-11-03 00:00:01.500 UTC: two days and 1.5 s into the month.
        let now = 1_793_664_001_500i64;
        let a = g.next(now);
        let b = g.next(now);
        assert_eq!(a.len(), 32);
        assert!(a.starts_with("0A000001"));
        assert_eq!(&a[12..20], "AABBCCDD");
        assert_eq!(
            u32::from_str_radix(&a[20..28], 16).unwrap(),
            2 * 86_400_000 + 1_500
        );
        assert_ne!(a, b, "the counter moves");
        assert_eq!(&a[..28], &b[..28]);
    }

    #[test]
    fn ipv4_bytes_exact() {
        let addr: SocketAddr = "10.0.0.1:10911".parse().unwrap();
        let id = encode_offset_message_id(addr, 0x0102_0304_0506_0708);
        // 0A000001 | 00002A9F (10911) | 0102030405060708
        assert_eq!(id, "0A00000100002A9F0102030405060708");
        assert_eq!(
            decode_offset_message_id(&id).unwrap(),
            (addr, 0x0102_0304_0506_0708)
        );
        assert_eq!(
            decode_offset_message_id(&id.to_lowercase()).unwrap(),
            (addr, 0x0102_0304_0506_0708)
        );
    }

    #[test]
    fn ipv6_round_trip_and_errors() {
        let addr: SocketAddr = "[::1]:10911".parse().unwrap();
        let id = encode_offset_message_id(addr, 42);
        assert_eq!(id.len(), 56);
        assert!(id.starts_with("00000000000000000000000000000001"));
        assert_eq!(decode_offset_message_id(&id).unwrap(), (addr, 42));
        assert_eq!(
            decode_offset_message_id("ABC"),
            Err(MessageIdError::BadLength(3))
        );
        assert_eq!(
            decode_offset_message_id("0A00000100002A9F010203040506070G"),
            Err(MessageIdError::NotHex)
        );
    }
}
