//! Byte-level vectors for both header encodings and the frame codec's error paths.
//!
//! The expected bytes follow `RemotingCommand.encodeHeader` (JSON via fastjson: keys in
//! alphabetical order, nulls omitted) and `RocketMQSerializable.rocketMQProtocolEncode`.

use std::collections::BTreeMap;

use bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder};

use super::codec::{CodecError, RemotingCodec};
use super::*;

fn route_request() -> RemotingCommand {
    let mut ext = BTreeMap::new();
    ext.insert("topic".to_string(), "TopicTest".to_string());
    RemotingCommand {
        code: 105,
        language: LanguageCode::Java,
        version: 479,
        opaque: 1,
        flag: 0,
        remark: None,
        ext_fields: Some(ext),
        body: Default::default(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn json_header_vector() {
    let expected_header = br#"{"code":105,"extFields":{"topic":"TopicTest"},"flag":0,"language":"JAVA","opaque":1,"serializeTypeCurrentRPC":"JSON","version":479}"#;
    let frame = RemotingCodec::new(1 << 20, SerializeType::Json).encode_to_bytes(&route_request());
    let header_len = expected_header.len() as u32;
    let mut expected = Vec::new();
    expected.extend_from_slice(&(4 + header_len).to_be_bytes());
    expected.extend_from_slice(&header_len.to_be_bytes()); // type byte 0 = JSON
    expected.extend_from_slice(expected_header);
    assert_eq!(
        frame.as_ref(),
        expected.as_slice(),
        "\n got: {}\nwant: {}",
        String::from_utf8_lossy(&frame[8..]),
        String::from_utf8_lossy(expected_header)
    );
    // 131-byte header: total 135 = 0x87, header field 0x83 with type byte 0.
    assert_eq!(&frame[..8], &[0, 0, 0, 0x87, 0, 0, 0, 0x83]);
}

#[test]
fn rocketmq_binary_header_vector() {
    let frame =
        RemotingCodec::new(1 << 20, SerializeType::RocketMq).encode_to_bytes(&route_request());
    let expected = concat!(
        "0000002d", // total length: 4 + 41
        "01000029", // type 1 (ROCKETMQ) << 24 | header length 41
        "0069",     // code 105
        "00",       // language JAVA
        "01df",     // version 479
        "00000001", // opaque
        "00000000", // flag
        "00000000", // remark length 0 = null
        "00000014", // extFields length 20
        "0005",
        "746f706963", // "topic"
        "00000009",
        "546f70696354657374", // "TopicTest"
    );
    assert_eq!(hex(&frame), expected);
}

#[test]
fn decodes_a_java_style_json_frame_with_body_and_unknown_fields() {
    let header = br#"{"code":0,"extFields":{"queueId":1,"queueOffset":"42","flagged":true,"nullv":null},"flag":1,"language":"GO","opaque":77,"remark":"ok","serializeTypeCurrentRPC":"JSON","version":401,"futureField":[1,2]}"#;
    let body = b"hello";
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&((4 + header.len() + body.len()) as i32).to_be_bytes());
    buf.extend_from_slice(&(header.len() as i32).to_be_bytes());
    buf.extend_from_slice(header);
    buf.extend_from_slice(body);
    let cmd = RemotingCodec::default().decode(&mut buf).unwrap().unwrap();
    assert!(buf.is_empty());
    assert_eq!(cmd.code, 0);
    assert!(cmd.is_response());
    assert_eq!(cmd.language, LanguageCode::Go);
    assert_eq!(cmd.opaque, 77);
    assert_eq!(cmd.version, 401);
    assert_eq!(cmd.remark.as_deref(), Some("ok"));
    assert_eq!(cmd.ext_field("queueId"), Some("1"));
    assert_eq!(cmd.ext_field("queueOffset"), Some("42"));
    assert_eq!(cmd.ext_field("flagged"), Some("true"));
    assert_eq!(cmd.ext_field("nullv"), None);
    assert_eq!(cmd.body.as_ref(), b"hello");
}

#[test]
fn both_encodings_round_trip() {
    let mut cmd = route_request();
    cmd.remark = Some("ünïcode remark".into());
    cmd.flag = FLAG_RESPONSE | FLAG_ONEWAY;
    cmd.body = bytes::Bytes::from_static(b"\x00\x01body");
    for st in [SerializeType::Json, SerializeType::RocketMq] {
        let mut codec = RemotingCodec::new(1 << 20, st);
        let mut buf = BytesMut::new();
        codec.encode(cmd.clone(), &mut buf).unwrap();
        codec.encode(cmd.clone(), &mut buf).unwrap();
        for _ in 0..2 {
            let back = codec.decode(&mut buf).unwrap().unwrap();
            assert_eq!(back, cmd, "{st:?}");
        }
        assert!(codec.decode(&mut buf).unwrap().is_none());
    }
}

#[test]
fn partial_frames_wait_for_more_bytes() {
    let frame = RemotingCodec::default().encode_to_bytes(&route_request());
    let mut codec = RemotingCodec::default();
    let mut buf = BytesMut::new();
    for (i, b) in frame.iter().enumerate() {
        buf.extend_from_slice(&[*b]);
        let got = codec.decode(&mut buf).unwrap();
        assert_eq!(got.is_some(), i == frame.len() - 1, "byte {i}");
    }
}

fn decode_raw(bytes: &[u8], max: usize) -> Result<Option<RemotingCommand>, CodecError> {
    let mut buf = BytesMut::from(bytes);
    RemotingCodec::new(max, SerializeType::Json).decode(&mut buf)
}

#[test]
fn rejects_negative_and_tiny_lengths() {
    assert!(matches!(
        decode_raw(&(-1i32).to_be_bytes(), 1024),
        Err(CodecError::InvalidLength(-1))
    ));
    assert!(matches!(
        decode_raw(&[0, 0, 0, 3, 0, 0, 0], 1024),
        Err(CodecError::InvalidLength(3))
    ));
}

#[test]
fn rejects_oversized_frames_before_buffering_them() {
    let err = decode_raw(&(2048i32).to_be_bytes(), 1024).unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::FrameTooLarge {
                size: 2048,
                max: 1024
            }
        ),
        "{err}"
    );
}

#[test]
fn rejects_header_length_beyond_frame() {
    let mut raw = Vec::new();
    raw.extend_from_slice(&8i32.to_be_bytes());
    raw.extend_from_slice(&100i32.to_be_bytes());
    raw.extend_from_slice(&[0; 4]);
    assert!(matches!(
        decode_raw(&raw, 1024),
        Err(CodecError::InvalidHeaderLength {
            header_len: 100,
            ..
        })
    ));
}

#[test]
fn rejects_unknown_serialize_type() {
    let mut raw = Vec::new();
    raw.extend_from_slice(&6i32.to_be_bytes());
    raw.extend_from_slice(&((7i32 << 24) | 2).to_be_bytes());
    raw.extend_from_slice(b"{}");
    assert!(matches!(
        decode_raw(&raw, 1024),
        Err(CodecError::UnknownSerializeType(7))
    ));
}

#[test]
fn rejects_invalid_json_header() {
    let header = b"{\"code\":12,";
    let mut raw = Vec::new();
    raw.extend_from_slice(&((4 + header.len()) as i32).to_be_bytes());
    raw.extend_from_slice(&(header.len() as i32).to_be_bytes());
    raw.extend_from_slice(header);
    assert!(matches!(decode_raw(&raw, 1024), Err(CodecError::Header(_))));
}

#[test]
fn rejects_truncated_binary_header() {
    // Declares a 1000-byte remark inside a 19-byte header.
    let mut header = Vec::new();
    header.extend_from_slice(&105i16.to_be_bytes());
    header.push(0);
    header.extend_from_slice(&1i16.to_be_bytes());
    header.extend_from_slice(&1i32.to_be_bytes());
    header.extend_from_slice(&0i32.to_be_bytes());
    header.extend_from_slice(&1000i32.to_be_bytes());
    let mut raw = Vec::new();
    raw.extend_from_slice(&((4 + header.len()) as i32).to_be_bytes());
    raw.extend_from_slice(&((1 << 24) | header.len() as i32).to_be_bytes());
    raw.extend_from_slice(&header);
    assert!(matches!(decode_raw(&raw, 1024), Err(CodecError::Header(_))));
}

#[test]
fn binary_code_wraps_like_java_short() {
    let mut cmd = route_request();
    cmd.code = RequestCode::POP_MESSAGE.as_i32();
    let frame = RemotingCodec::new(1 << 20, SerializeType::RocketMq).encode_to_bytes(&cmd);
    let back = RemotingCodec::default()
        .decode(&mut BytesMut::from(frame.as_ref()))
        .unwrap()
        .unwrap();
    assert_eq!(back.code, (200050i32 as i16) as i32);
}

crate::command_header! {
    /// Header used to test the extFields mapping.
    pub struct ProbeHeader {
        /// Required string.
        topic: String = "topic",
        /// Required number.
        queue_id: i32 = "queueId",
        /// Optional number.
        offset: Option<i64> = "offset",
        /// Optional flag.
        order: Option<bool> = "order",
    }
}

#[test]
fn typed_header_maps_to_ext_fields() {
    let h = ProbeHeader {
        topic: "T".into(),
        queue_id: 3,
        offset: None,
        order: Some(true),
    };
    let ext = h.to_ext_fields();
    assert_eq!(ext.len(), 3);
    assert_eq!(ext["queueId"], "3");
    assert_eq!(ext["order"], "true");
    let cmd = RemotingCommand::request(RequestCode::PULL_MESSAGE, &h);
    assert_eq!(cmd.decode_header::<ProbeHeader>().unwrap(), h);
}

#[test]
fn typed_header_errors_name_the_field() {
    let mut cmd = RemotingCommand::bare_request(11);
    assert_eq!(
        cmd.decode_header::<ProbeHeader>().unwrap_err(),
        HeaderError::Missing("topic")
    );
    let mut ext = BTreeMap::new();
    ext.insert("topic".to_string(), "T".to_string());
    ext.insert("queueId".to_string(), "x".to_string());
    cmd.ext_fields = Some(ext);
    let err = cmd.decode_header::<ProbeHeader>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "the custom field queueId has an invalid value \"x\""
    );
}
