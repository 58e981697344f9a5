//! The SEND_BATCH_MESSAGE body (`MessageDecoder.encodeMessages`): per message
//! `i32 totalSize | i32 magic(0) | i32 bodyCRC(0) | i32 flag | i32 bodyLen + body |
//! i16 propsLen + props`, concatenated. Producers write it; brokers split it into records.

use bytes::Bytes;

/// One message of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchMessage {
    /// User flag.
    pub flag: i32,
    /// Payload (a slice of the request body, not a copy).
    pub body: Bytes,
    /// Properties string (`k\x01v\x02...`).
    pub properties: String,
}

/// Why a batch body is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad batch body at byte {at}: {reason}")]
pub struct BatchError {
    /// Offset of the message where decoding failed.
    pub at: usize,
    /// What is wrong.
    pub reason: &'static str,
}

const FIXED: usize = 4 + 4 + 4 + 4 + 4;

/// Appends one message in batch form to `out`.
pub fn encode_batch_message(out: &mut Vec<u8>, flag: i32, body: &[u8], properties: &str) {
    let total = FIXED + body.len() + 2 + properties.len();
    out.reserve(total);
    out.extend_from_slice(&(total as i32).to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&0i32.to_be_bytes());
    out.extend_from_slice(&flag.to_be_bytes());
    out.extend_from_slice(&(body.len() as i32).to_be_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&(properties.len() as i16).to_be_bytes());
    out.extend_from_slice(properties.as_bytes());
}

/// Splits a batch body into its messages; every length is checked against the body.
pub fn decode_batch(body: &Bytes) -> Result<Vec<BatchMessage>, BatchError> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    let read_i32 = |at: usize| {
        body.get(at..at + 4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    while pos < body.len() {
        let err = |reason| BatchError { at: pos, reason };
        let total = read_i32(pos).ok_or(err("truncated size"))?;
        let total = usize::try_from(total).map_err(|_| err("negative size"))?;
        if total < FIXED + 2 || pos + total > body.len() {
            return Err(err("message size out of range"));
        }
        let flag = read_i32(pos + 12).ok_or(err("truncated flag"))?;
        let body_len = read_i32(pos + 16).ok_or(err("truncated body length"))?;
        let body_len = usize::try_from(body_len).map_err(|_| err("negative body length"))?;
        let body_start = pos + FIXED;
        let props_len_at = body_start + body_len;
        if props_len_at + 2 > pos + total {
            return Err(err("body length past message end"));
        }
        let props_len = u16::from_be_bytes([body[props_len_at], body[props_len_at + 1]]) as usize;
        let props_start = props_len_at + 2;
        if props_start + props_len != pos + total {
            return Err(err("properties length disagrees with message size"));
        }
        let properties = std::str::from_utf8(&body[props_start..props_start + props_len])
            .map_err(|_| err("properties are not UTF-8"))?
            .to_string();
        out.push(BatchMessage {
            flag,
            body: body.slice(body_start..props_len_at),
            properties,
        });
        pos += total;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_every_truncation_inside_a_message_fails() {
        let messages: [(&[u8], &str); 3] = [
            (b"one", "KEYS\u{1}k1\u{2}"),
            (b"", ""),
            (b"three", "TAGS\u{1}A\u{2}"),
        ];
        let mut raw = Vec::new();
        let mut boundaries = Vec::new();
        for (body, props) in messages {
            encode_batch_message(&mut raw, 7, body, props);
            boundaries.push(raw.len());
        }
        let body = Bytes::from(raw);
        let decoded = decode_batch(&body).unwrap();
        assert_eq!(decoded.len(), 3);
        assert_eq!(decoded[0].body.as_ref(), b"one");
        assert_eq!(decoded[0].flag, 7);
        assert_eq!(decoded[2].properties, "TAGS\u{1}A\u{2}");
        // A cut at a message boundary is a valid, shorter batch; anywhere else it must fail.
        for cut in 1..body.len() {
            match boundaries.iter().position(|b| *b == cut) {
                Some(i) => assert_eq!(
                    decode_batch(&body.slice(..cut)).unwrap().len(),
                    i + 1,
                    "cut at {cut}"
                ),
                None => assert!(
                    decode_batch(&body.slice(..cut)).is_err(),
                    "truncated at {cut} must fail"
                ),
            }
        }
        let mut bad = body.to_vec();
        bad[16..20].copy_from_slice(&1000i32.to_be_bytes());
        assert!(decode_batch(&bad.into()).is_err());
    }
}
