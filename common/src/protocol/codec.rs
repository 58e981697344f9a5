//! The frame codec: length-prefixed Remoting frames for `tokio_util::codec::Framed`.
//!
//! Invariants: a frame longer than `max_frame_size`, a negative or too-small length, a
//! header length past the frame, an unknown serialize type or an undecodable header is a
//! [`CodecError`]; the connection that sent it is closed, since the byte stream can no
//! longer be trusted to be in step. Nothing is buffered beyond one frame's declared size.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::serialize::{self, HeaderDecodeError};
use super::{RemotingCommand, SerializeType};

/// RocketMQ's default `com.rocketmq.remoting.frameMaxLength`: 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 * 1024 * 1024;

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The total length is negative or cannot hold the header-length field.
    #[error("invalid frame length {0}")]
    InvalidLength(i32),
    /// The total length exceeds the configured limit.
    #[error("frame of {size} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// Declared size.
        size: usize,
        /// Configured limit.
        max: usize,
    },
    /// The header length points past the end of the frame.
    #[error("header length {header_len} exceeds frame length {frame_len}")]
    InvalidHeaderLength {
        /// Declared header length.
        header_len: usize,
        /// Declared frame length.
        frame_len: usize,
    },
    /// The serialize type byte is neither JSON (0) nor ROCKETMQ (1).
    #[error("unknown serialize type {0}")]
    UnknownSerializeType(u8),
    /// The header bytes do not decode.
    #[error(transparent)]
    Header(#[from] HeaderDecodeError),
    /// Socket error.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Encodes and decodes Remoting frames.
#[derive(Debug, Clone)]
pub struct RemotingCodec {
    max_frame_size: usize,
    serialize_type: SerializeType,
}

impl Default for RemotingCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_SIZE, SerializeType::Json)
    }
}

impl RemotingCodec {
    /// A codec that rejects frames above `max_frame_size` and writes headers as
    /// `serialize_type`. Decoding accepts both header types regardless.
    pub fn new(max_frame_size: usize, serialize_type: SerializeType) -> Self {
        Self {
            max_frame_size,
            serialize_type,
        }
    }

    /// The header encoding used for frames this codec writes.
    pub fn serialize_type(&self) -> SerializeType {
        self.serialize_type
    }

    /// Encodes one command into a standalone buffer (tests, vectors, benchmarks).
    pub fn encode_to_bytes(&self, cmd: &RemotingCommand) -> Bytes {
        let mut dst = BytesMut::new();
        encode_frame(cmd, self.serialize_type, &mut dst);
        dst.freeze()
    }
}

fn encode_frame(cmd: &RemotingCommand, serialize_type: SerializeType, dst: &mut BytesMut) {
    let start = dst.len();
    dst.reserve(8 + 128 + cmd.body.len());
    dst.put_i32(0); // total length, patched below
    dst.put_i32(0); // header length + type, patched below
    let header_start = dst.len();
    serialize::encode_header(cmd, serialize_type, dst);
    let header_len = dst.len() - header_start;
    dst.put_slice(&cmd.body);
    let total = (dst.len() - start - 4) as i32;
    let header_field = ((serialize_type.code() as i32) << 24) | (header_len as i32 & 0x00FF_FFFF);
    dst[start..start + 4].copy_from_slice(&total.to_be_bytes());
    dst[start + 4..start + 8].copy_from_slice(&header_field.to_be_bytes());
}

impl Decoder for RemotingCodec {
    type Item = RemotingCommand;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<RemotingCommand>, CodecError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let total = i32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        if total < 4 {
            return Err(CodecError::InvalidLength(total));
        }
        let total = total as usize;
        if total > self.max_frame_size {
            return Err(CodecError::FrameTooLarge {
                size: total,
                max: self.max_frame_size,
            });
        }
        if src.len() < 4 + total {
            // Reserve only what this frame declared, which the check above bounds.
            src.reserve(4 + total - src.len());
            return Ok(None);
        }
        src.advance(4);
        let mut frame = src.split_to(total);
        let header_field = frame.get_i32();
        let type_byte = ((header_field >> 24) & 0xFF) as u8;
        let header_len = (header_field & 0x00FF_FFFF) as usize;
        if header_len > total - 4 {
            return Err(CodecError::InvalidHeaderLength {
                header_len,
                frame_len: total,
            });
        }
        let serialize_type = SerializeType::from_code(type_byte)
            .ok_or(CodecError::UnknownSerializeType(type_byte))?;
        let header = frame.split_to(header_len);
        let mut cmd = serialize::decode_header(serialize_type, &header)?;
        cmd.body = frame.freeze();
        Ok(Some(cmd))
    }
}

impl Encoder<RemotingCommand> for RemotingCodec {
    type Error = CodecError;

    fn encode(&mut self, cmd: RemotingCommand, dst: &mut BytesMut) -> Result<(), CodecError> {
        encode_frame(&cmd, self.serialize_type, dst);
        Ok(())
    }
}
