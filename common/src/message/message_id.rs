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
