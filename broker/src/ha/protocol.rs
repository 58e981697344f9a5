//! The replication stream's frames, in RocketMQ 5's AutoSwitch HA layout (big-endian):
//!
//! * slave → master handshake, 16 bytes: `i32 state=1 | i16 syncFromLastFile |
//!   i16 asyncLearner | i64 slaveBrokerId`;
//! * slave → master ack, 12 bytes: `i32 state=2 | i64 slave max offset`;
//! * master → slave handshake: `i32 state=1 | i32 bodySize=12n | i64 master max offset |
//!   i32 last epoch`, then n × `i32 epoch | i64 start offset`;
//! * master → slave transfer: `i32 state=2 | i32 bodySize | i64 offset | i32 epoch |
//!   i64 epoch start | i64 confirm offset`, then `bodySize` CommitLog bytes (a heartbeat
//!   has none).
//!
//! One difference from RocketMQ: a transfer body holds whole records, and a segment's end
//! travels as its 8-byte BLANK marker (see `CommitLog::append_replicated`), so a replica
//! never holds half a record.

use tokio::io::{AsyncRead, AsyncReadExt};

use super::epoch::Epoch;

/// `HAConnectionState.HANDSHAKE`.
pub const STATE_HANDSHAKE: i32 = 1;
/// `HAConnectionState.TRANSFER`.
pub const STATE_TRANSFER: i32 = 2;
/// Size of a slave handshake.
pub const SLAVE_HANDSHAKE_LEN: usize = 16;
/// Size of a slave ack.
pub const SLAVE_ACK_LEN: usize = 12;
/// Size of a master handshake header.
pub const MASTER_HANDSHAKE_HEADER_LEN: usize = 20;
/// Size of a transfer header.
pub const TRANSFER_HEADER_LEN: usize = 36;
/// Most epochs a handshake may carry (RocketMQ leaves room for 1000).
pub const MAX_HANDSHAKE_EPOCHS: usize = 1000;

/// What the slave says first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaveHandshake {
    /// Start from the master's last file when empty.
    pub sync_from_last_file: bool,
    /// A learner outside the SyncStateSet.
    pub async_learner: bool,
    /// The slave's broker id (controller id in controller mode).
    pub slave_id: i64,
}

impl SlaveHandshake {
    /// Wire bytes.
    pub fn encode(&self) -> [u8; SLAVE_HANDSHAKE_LEN] {
        let mut b = [0u8; SLAVE_HANDSHAKE_LEN];
        b[..4].copy_from_slice(&STATE_HANDSHAKE.to_be_bytes());
        b[4..6].copy_from_slice(&i16::from(self.sync_from_last_file).to_be_bytes());
        b[6..8].copy_from_slice(&i16::from(self.async_learner).to_be_bytes());
        b[8..].copy_from_slice(&self.slave_id.to_be_bytes());
        b
    }
}

/// A message from the slave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlaveMessage {
    /// The handshake (the 12 bytes after the state field still to be read: 4 more).
    Handshake(SlaveHandshake),
    /// How far the slave's log reaches.
    Ack(i64),
}

/// Encodes an ack.
pub fn encode_ack(offset: i64) -> [u8; SLAVE_ACK_LEN] {
    let mut b = [0u8; SLAVE_ACK_LEN];
    b[..4].copy_from_slice(&STATE_TRANSFER.to_be_bytes());
    b[4..].copy_from_slice(&offset.to_be_bytes());
    b
}

/// Reads one slave message.
pub async fn read_slave_message<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<SlaveMessage> {
    let mut head = [0u8; SLAVE_ACK_LEN];
    r.read_exact(&mut head).await?;
    let state = i32::from_be_bytes(head[..4].try_into().expect("4 bytes"));
    match state {
        STATE_TRANSFER => Ok(SlaveMessage::Ack(i64::from_be_bytes(
            head[4..].try_into().expect("8 bytes"),
        ))),
        STATE_HANDSHAKE => {
            let mut rest = [0u8; SLAVE_HANDSHAKE_LEN - SLAVE_ACK_LEN];
            r.read_exact(&mut rest).await?;
            let mut id = [0u8; 8];
            id[..4].copy_from_slice(&head[8..12]);
            id[4..].copy_from_slice(&rest);
            Ok(SlaveMessage::Handshake(SlaveHandshake {
                sync_from_last_file: i16::from_be_bytes([head[4], head[5]]) != 0,
                async_learner: i16::from_be_bytes([head[6], head[7]]) != 0,
                slave_id: i64::from_be_bytes(id),
            }))
        }
        other => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("replication stream: unknown slave state {other}"),
        )),
    }
}

/// The master's answer to a handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterHandshake {
    /// The master's CommitLog max offset.
    pub max_offset: i64,
    /// Its epochs, oldest first.
    pub epochs: Vec<Epoch>,
}

impl MasterHandshake {
    /// Wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let epochs = &self.epochs[self.epochs.len().saturating_sub(MAX_HANDSHAKE_EPOCHS)..];
        let mut b = Vec::with_capacity(MASTER_HANDSHAKE_HEADER_LEN + 12 * epochs.len());
        b.extend_from_slice(&STATE_HANDSHAKE.to_be_bytes());
        b.extend_from_slice(&((12 * epochs.len()) as i32).to_be_bytes());
        b.extend_from_slice(&self.max_offset.to_be_bytes());
        b.extend_from_slice(&epochs.last().map_or(-1, |e| e.epoch).to_be_bytes());
        for e in epochs {
            b.extend_from_slice(&e.epoch.to_be_bytes());
            b.extend_from_slice(&e.start.to_be_bytes());
        }
        b
    }

    /// Reads one from the stream.
    pub async fn read<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Self> {
        let mut head = [0u8; MASTER_HANDSHAKE_HEADER_LEN];
        r.read_exact(&mut head).await?;
        let state = i32::from_be_bytes(head[..4].try_into().expect("4 bytes"));
        let size = i32::from_be_bytes(head[4..8].try_into().expect("4 bytes"));
        if state != STATE_HANDSHAKE
            || size < 0
            || size % 12 != 0
            || size as usize > 12 * MAX_HANDSHAKE_EPOCHS
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("replication stream: bad master handshake (state {state}, size {size})"),
            ));
        }
        let max_offset = i64::from_be_bytes(head[8..16].try_into().expect("8 bytes"));
        let mut body = vec![0u8; size as usize];
        r.read_exact(&mut body).await?;
        let epochs = body
            .chunks_exact(12)
            .map(|c| Epoch {
                epoch: i32::from_be_bytes(c[..4].try_into().expect("4 bytes")),
                start: i64::from_be_bytes(c[4..].try_into().expect("8 bytes")),
            })
            .collect();
        Ok(Self { max_offset, epochs })
    }
}

/// A transfer header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransferHeader {
    /// Bytes following.
    pub body_size: i32,
    /// CommitLog offset of the first byte (the next one to send, for heartbeats).
    pub offset: i64,
    /// Epoch the bytes were written in.
    pub epoch: i32,
    /// Where that epoch starts.
    pub epoch_start: i64,
    /// The master's confirm offset.
    pub confirm_offset: i64,
}

impl TransferHeader {
    /// Wire bytes.
    pub fn encode(&self) -> [u8; TRANSFER_HEADER_LEN] {
        let mut b = [0u8; TRANSFER_HEADER_LEN];
        b[..4].copy_from_slice(&STATE_TRANSFER.to_be_bytes());
        b[4..8].copy_from_slice(&self.body_size.to_be_bytes());
        b[8..16].copy_from_slice(&self.offset.to_be_bytes());
        b[16..20].copy_from_slice(&self.epoch.to_be_bytes());
        b[20..28].copy_from_slice(&self.epoch_start.to_be_bytes());
        b[28..].copy_from_slice(&self.confirm_offset.to_be_bytes());
        b
    }

    /// Reads one from the stream; `max_body` bounds the size it may announce.
    pub async fn read<R: AsyncRead + Unpin>(r: &mut R, max_body: usize) -> std::io::Result<Self> {
        let mut b = [0u8; TRANSFER_HEADER_LEN];
        r.read_exact(&mut b).await?;
        let state = i32::from_be_bytes(b[..4].try_into().expect("4 bytes"));
        let body_size = i32::from_be_bytes(b[4..8].try_into().expect("4 bytes"));
        if state != STATE_TRANSFER || body_size < 0 || body_size as usize > max_body {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "replication stream: bad transfer header (state {state}, size {body_size})"
                ),
            ));
        }
        Ok(Self {
            body_size,
            offset: i64::from_be_bytes(b[8..16].try_into().expect("8 bytes")),
            epoch: i32::from_be_bytes(b[16..20].try_into().expect("4 bytes")),
            epoch_start: i64::from_be_bytes(b[20..28].try_into().expect("8 bytes")),
            confirm_offset: i64::from_be_bytes(b[28..].try_into().expect("8 bytes")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_have_rocketmq_s_bytes() {
        let hs = SlaveHandshake {
            sync_from_last_file: true,
            async_learner: false,
            slave_id: 3,
        };
        assert_eq!(
            hs.encode(),
            [0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3]
        );
        let mut r = &hs.encode()[..];
        assert_eq!(
            read_slave_message(&mut r).await.unwrap(),
            SlaveMessage::Handshake(hs)
        );
        let ack = encode_ack(0x0102);
        assert_eq!(ack, [0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 1, 2]);
        let mut r = &ack[..];
        assert_eq!(
            read_slave_message(&mut r).await.unwrap(),
            SlaveMessage::Ack(258)
        );

        let m = MasterHandshake {
            max_offset: 7,
            epochs: vec![Epoch { epoch: 1, start: 0 }, Epoch { epoch: 2, start: 5 }],
        };
        let bytes = m.encode();
        assert_eq!(bytes.len(), 20 + 24);
        assert_eq!(&bytes[..8], &[0, 0, 0, 1, 0, 0, 0, 24]);
        assert_eq!(&bytes[16..20], &[0, 0, 0, 2], "last epoch");
        let mut r = &bytes[..];
        assert_eq!(MasterHandshake::read(&mut r).await.unwrap(), m);

        let t = TransferHeader {
            body_size: 10,
            offset: 11,
            epoch: 2,
            epoch_start: 5,
            confirm_offset: 9,
        };
        let bytes = t.encode();
        assert_eq!(&bytes[..8], &[0, 0, 0, 2, 0, 0, 0, 10]);
        let mut r = &bytes[..];
        assert_eq!(TransferHeader::read(&mut r, 100).await.unwrap(), t);
        let mut r = &bytes[..];
        assert!(
            TransferHeader::read(&mut r, 5).await.is_err(),
            "oversized body refused"
        );
    }
}
