//! The two header encodings: fastjson-compatible JSON and RocketMQ's binary layout.
//!
//! JSON keys are written in the alphabetical order fastjson uses, null fields omitted,
//! so our frames match a Java peer's byte for byte. The decoders are lenient where Java
//! peers are (unknown JSON fields, numbers or booleans as extField values) and strict
//! where a mistake would misframe (every length is bounds-checked).

use std::collections::BTreeMap;
use std::fmt;

use bytes::{Buf, BufMut, BytesMut};
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::{LanguageCode, RemotingCommand, SerializeType};

/// Why a header could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum HeaderDecodeError {
    /// The JSON header is not valid JSON of the expected shape.
    #[error("invalid JSON header: {0}")]
    Json(#[from] serde_json::Error),
    /// A length inside the binary header points past its end.
    #[error("binary header truncated: {0}")]
    Truncated(&'static str),
    /// A string inside the binary header is not UTF-8.
    #[error("binary header holds invalid UTF-8 in {0}")]
    Utf8(&'static str),
}

/// Appends the header of `cmd` in `serialize_type` to `dst`.
pub(crate) fn encode_header(
    cmd: &RemotingCommand,
    serialize_type: SerializeType,
    dst: &mut BytesMut,
) {
    match serialize_type {
        SerializeType::Json => encode_json(cmd, dst),
        SerializeType::RocketMq => encode_binary(cmd, dst),
    }
}

/// Decodes a header of `serialize_type` into a command without body.
pub(crate) fn decode_header(
    serialize_type: SerializeType,
    header: &[u8],
) -> Result<RemotingCommand, HeaderDecodeError> {
    match serialize_type {
        SerializeType::Json => decode_json(header),
        SerializeType::RocketMq => decode_binary(header),
    }
}

fn write_json_str(dst: &mut BytesMut, s: &str) {
    // serde_json's escaping matches what fastjson accepts; writing into a Vec cannot fail.
    let mut w = dst.writer();
    serde_json::to_writer(&mut w, s).expect("writing JSON into memory cannot fail");
}

fn write_json_int(dst: &mut BytesMut, v: i32) {
    use std::fmt::Write;
    // BytesMut grows on demand, so formatting into it cannot fail.
    write!(dst, "{v}").expect("formatting into BytesMut cannot fail");
}

fn encode_json(cmd: &RemotingCommand, dst: &mut BytesMut) {
    dst.put_slice(b"{\"code\":");
    write_json_int(dst, cmd.code);
    if let Some(ext) = &cmd.ext_fields {
        dst.put_slice(b",\"extFields\":{");
        for (i, (k, v)) in ext.iter().enumerate() {
            if i > 0 {
                dst.put_u8(b',');
            }
            write_json_str(dst, k);
            dst.put_u8(b':');
            write_json_str(dst, v);
        }
        dst.put_u8(b'}');
    }
    dst.put_slice(b",\"flag\":");
    write_json_int(dst, cmd.flag);
    dst.put_slice(b",\"language\":\"");
    dst.put_slice(cmd.language.name().as_bytes());
    dst.put_slice(b"\",\"opaque\":");
    write_json_int(dst, cmd.opaque);
    if let Some(remark) = &cmd.remark {
        dst.put_slice(b",\"remark\":");
        write_json_str(dst, remark);
    }
    dst.put_slice(b",\"serializeTypeCurrentRPC\":\"JSON\",\"version\":");
    write_json_int(dst, cmd.version);
    dst.put_u8(b'}');
}

/// An extFields value: Java peers send strings, but other clients have been seen sending
/// numbers and booleans, which Java's fastjson coerces; so do we.
struct LenientString(Option<String>);

impl<'de> Deserialize<'de> for LenientString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = LenientString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number, boolean or null")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(LenientString(Some(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(LenientString(Some(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(LenientString(Some(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(LenientString(Some(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(LenientString(Some(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(LenientString(Some(v.to_string())))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientString(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(LenientString(None))
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonHeader {
    #[serde(default)]
    code: i32,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    version: i32,
    #[serde(default)]
    opaque: i32,
    #[serde(default)]
    flag: i32,
    #[serde(default)]
    remark: Option<String>,
    #[serde(default)]
    ext_fields: Option<BTreeMap<String, LenientString>>,
}

fn decode_json(header: &[u8]) -> Result<RemotingCommand, HeaderDecodeError> {
    let h: JsonHeader = serde_json::from_slice(header)?;
    Ok(RemotingCommand {
        code: h.code,
        language: h
            .language
            .as_deref()
            .map_or(LanguageCode::Java, LanguageCode::from_name),
        version: h.version,
        opaque: h.opaque,
        flag: h.flag,
        remark: h.remark,
        ext_fields: h.ext_fields.map(|m| {
            m.into_iter()
                .filter_map(|(k, v)| v.0.map(|v| (k, v)))
                .collect()
        }),
        body: Default::default(),
    })
}

fn encode_binary(cmd: &RemotingCommand, dst: &mut BytesMut) {
    // Java writes the code as a short; codes above i16 (the POP family) wrap exactly as
    // `(short) code` does, so we do the same rather than inventing a different framing.
    dst.put_i16(cmd.code as i16);
    dst.put_u8(cmd.language.code());
    dst.put_i16(cmd.version as i16);
    dst.put_i32(cmd.opaque);
    dst.put_i32(cmd.flag);
    match cmd.remark.as_deref() {
        Some(r) if !r.is_empty() => {
            dst.put_i32(r.len() as i32);
            dst.put_slice(r.as_bytes());
        }
        _ => dst.put_i32(0),
    }
    match &cmd.ext_fields {
        Some(ext) if !ext.is_empty() => {
            let len_at = dst.len();
            dst.put_i32(0);
            for (k, v) in ext {
                dst.put_i16(k.len() as i16);
                dst.put_slice(k.as_bytes());
                dst.put_i32(v.len() as i32);
                dst.put_slice(v.as_bytes());
            }
            let ext_len = (dst.len() - len_at - 4) as i32;
            dst[len_at..len_at + 4].copy_from_slice(&ext_len.to_be_bytes());
        }
        _ => dst.put_i32(0),
    }
}

fn take<'a>(
    buf: &mut &'a [u8],
    n: usize,
    what: &'static str,
) -> Result<&'a [u8], HeaderDecodeError> {
    if buf.len() < n {
        return Err(HeaderDecodeError::Truncated(what));
    }
    let (head, tail) = buf.split_at(n);
    *buf = tail;
    Ok(head)
}

fn take_len(buf: &mut &[u8], width: usize, what: &'static str) -> Result<usize, HeaderDecodeError> {
    let raw = take(buf, width, what)?;
    let len = if width == 2 {
        i16::from_be_bytes([raw[0], raw[1]]) as i64
    } else {
        i32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]) as i64
    };
    usize::try_from(len).map_err(|_| HeaderDecodeError::Truncated(what))
}

fn take_str(buf: &mut &[u8], len: usize, what: &'static str) -> Result<String, HeaderDecodeError> {
    let raw = take(buf, len, what)?;
    String::from_utf8(raw.to_vec()).map_err(|_| HeaderDecodeError::Utf8(what))
}

fn decode_binary(header: &[u8]) -> Result<RemotingCommand, HeaderDecodeError> {
    let mut buf = header;
    if buf.remaining() < 2 + 1 + 2 + 4 + 4 {
        return Err(HeaderDecodeError::Truncated("fixed fields"));
    }
    let code = buf.get_i16() as i32;
    let language = LanguageCode::from_code(buf.get_u8());
    let version = buf.get_i16() as i32;
    let opaque = buf.get_i32();
    let flag = buf.get_i32();
    let remark_len = take_len(&mut buf, 4, "remark length")?;
    let remark = if remark_len > 0 {
        Some(take_str(&mut buf, remark_len, "remark")?)
    } else {
        None
    };
    let ext_len = take_len(&mut buf, 4, "extFields length")?;
    let ext_fields = if ext_len > 0 {
        let mut ext = take(&mut buf, ext_len, "extFields")?;
        let mut map = BTreeMap::new();
        while !ext.is_empty() {
            let klen = take_len(&mut ext, 2, "extFields key length")?;
            let key = take_str(&mut ext, klen, "extFields key")?;
            let vlen = take_len(&mut ext, 4, "extFields value length")?;
            let value = take_str(&mut ext, vlen, "extFields value")?;
            map.insert(key, value);
        }
        Some(map)
    } else {
        None
    };
    Ok(RemotingCommand {
        code,
        language,
        version,
        opaque,
        flag,
        remark,
        ext_fields,
        body: Default::default(),
    })
}
