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
    /// Buffering the rest of this frame would exceed the server-wide budget for
    /// incomplete frames.
    #[error(
        "frame of {size} bytes refused: the server already buffers {buffered} of its {limit} bytes for incomplete frames"
    )]
    BufferBudgetExhausted {
        /// Declared size.
        size: usize,
        /// Bytes buffered server-wide when refused.
        buffered: usize,
        /// The budget.
        limit: usize,
    },
    /// Socket error.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Bytes a connection may buffer for an incomplete frame without drawing on the shared
/// budget: every ordinary request fits, so only large frames compete for it.
pub const FRAME_BUDGET_FREE_BYTES: usize = 64 * 1024;

/// A server-wide limit on bytes buffered for frames that have not fully arrived.
///
/// Each connection's decoder reserves a frame's full size from it before buffering a
/// frame larger than [`FRAME_BUDGET_FREE_BYTES`], and returns it when the frame is
/// complete or the connection ends; a frame that does not fit is refused and its
/// connection closed. However many clients announce large frames and trickle them in, the
/// memory held for them stays below the limit.
#[derive(Debug)]
pub struct FrameBudget {
    limit: usize,
    used: std::sync::atomic::AtomicUsize,
}

impl FrameBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Bytes currently reserved.
    pub fn used(&self) -> usize {
        self.used.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    fn try_acquire(&self, n: usize) -> Result<(), usize> {
        use std::sync::atomic::Ordering;
        let mut cur = self.used.load(Ordering::Acquire);
        loop {
            if cur + n > self.limit {
                return Err(cur);
            }
            match self
                .used
                .compare_exchange_weak(cur, cur + n, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(actual) => cur = actual,
            }
        }
    }

    fn release(&self, n: usize) {
        self.used.fetch_sub(n, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Encodes and decodes Remoting frames.
#[derive(Debug)]
pub struct RemotingCodec {
    max_frame_size: usize,
    serialize_type: SerializeType,
    budget: Option<std::sync::Arc<FrameBudget>>,
    /// Bytes this decoder holds from `budget` for the frame it is receiving.
    held: usize,
}

impl Clone for RemotingCodec {
    /// A fresh codec with the same settings; reservations are not cloned.
    fn clone(&self) -> Self {
        Self {
            max_frame_size: self.max_frame_size,
            serialize_type: self.serialize_type,
            budget: self.budget.clone(),
            held: 0,
        }
    }
}

impl Drop for RemotingCodec {
    fn drop(&mut self) {
        if let Some(b) = &self.budget
            && self.held > 0
        {
            b.release(self.held);
        }
    }
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
            budget: None,
            held: 0,
        }
    }

    /// Draws large incomplete frames from `budget` (see [`FrameBudget`]).
    pub fn with_budget(mut self, budget: std::sync::Arc<FrameBudget>) -> Self {
        self.budget = Some(budget);
        self
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
            let need = 4 + total;
            if need > FRAME_BUDGET_FREE_BYTES
                && self.held < need
                && let Some(budget) = &self.budget
            {
                budget.try_acquire(need - self.held).map_err(|buffered| {
                    CodecError::BufferBudgetExhausted {
                        size: total,
                        buffered,
                        limit: budget.limit(),
                    }
                })?;
                self.held = need;
            }
            // Reserve only what this frame declared, which the checks above bound.
            src.reserve(need - src.len());
            return Ok(None);
        }
        if self.held > 0 {
            if let Some(budget) = &self.budget {
                budget.release(self.held);
            }
            self.held = 0;
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
