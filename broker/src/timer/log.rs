//! The timer log (`store/timerlog/`): an append-only run of 52-byte units, one per message
//! placed on the wheel, in RocketMQ's layout:
//!
//! | off | type | field |
//! |---|---|---|
//! | 0 | i32 | unit size (52) |
//! | 4 | i64 | prevPos: the slot's previous unit (-1 = none) |
//! | 12 | i32 | magic: 1 normal, 2 roll, 4 delete |
//! | 16 | i64 | write time (ms) when placed |
//! | 24 | i32 | delta: slot time = write time + delta |
//! | 28 | i64 | CommitLog offset of the waiting message |
//! | 36 | i32 | its record size |
//! | 40 | i32 | Java hash of its real topic |
//! | 44 | i64 | reserved |
//!
//! A unit never straddles two files: when one does not fit (with room for the 16-byte end
//! marker), the rest of the file gets a BLANK marker and the next file starts.

use std::io;
use std::path::Path;

use parking_lot::Mutex;

use rocketmq_store::MappedFileQueue;

/// Bytes per unit.
pub const UNIT_SIZE: usize = 52;
/// Room kept at a file's end for the BLANK marker.
const BLANK_SIZE: usize = 16;
/// BLANK marker magic (the CommitLog's).
const BLANK_MAGIC: i32 = 0xCBD4_3194_u32 as i32;

/// Unit magic: an ordinary timer message.
pub const MAGIC_DEFAULT: i32 = 1;
/// Unit magic: the message is only parked here and goes back to the timer queue when due.
pub const MAGIC_ROLL: i32 = 2;
/// Unit magic: a delete marker.
pub const MAGIC_DELETE: i32 = 4;

/// One unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    /// Previous unit of the same slot, -1 if none.
    pub prev_pos: i64,
    /// Magic bits.
    pub magic: i32,
    /// When the unit was written.
    pub write_time_ms: i64,
    /// Slot time minus write time.
    pub delta: i32,
    /// CommitLog offset of the message.
    pub commit_log_offset: i64,
    /// Its record size.
    pub size: i32,
    /// Java hash of its real topic.
    pub topic_hash: i32,
}

impl Unit {
    /// The slot the unit is linked into.
    pub fn slot_time_ms(&self) -> i64 {
        self.write_time_ms + i64::from(self.delta)
    }

    /// Encodes the unit.
    pub fn encode(&self) -> [u8; UNIT_SIZE] {
        let mut b = [0u8; UNIT_SIZE];
        b[0..4].copy_from_slice(&(UNIT_SIZE as i32).to_be_bytes());
        b[4..12].copy_from_slice(&self.prev_pos.to_be_bytes());
        b[12..16].copy_from_slice(&self.magic.to_be_bytes());
        b[16..24].copy_from_slice(&self.write_time_ms.to_be_bytes());
        b[24..28].copy_from_slice(&self.delta.to_be_bytes());
        b[28..36].copy_from_slice(&self.commit_log_offset.to_be_bytes());
        b[36..40].copy_from_slice(&self.size.to_be_bytes());
        b[40..44].copy_from_slice(&self.topic_hash.to_be_bytes());
        b
    }

    /// Decodes a unit; `None` for anything that is not a valid unit (zeros, a BLANK, a torn
    /// write).
    pub fn decode(b: &[u8]) -> Option<Self> {
        if b.len() < UNIT_SIZE {
            return None;
        }
        let i32_at = |at: usize| i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"));
        let i64_at = |at: usize| i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let magic = i32_at(12);
        if i32_at(0) != UNIT_SIZE as i32 || magic == 0 || magic | 0xF != 0xF {
            return None;
        }
        Some(Self {
            prev_pos: i64_at(4),
            magic,
            write_time_ms: i64_at(16),
            delta: i32_at(24),
            commit_log_offset: i64_at(28),
            size: i32_at(36),
            topic_hash: i32_at(40),
        })
    }
}

/// The log.
#[derive(Debug)]
pub struct TimerLog {
    files: MappedFileQueue,
    append: Mutex<()>,
}

impl TimerLog {
    /// Loads the log's files (positions are set by [`TimerLog::recover`]).
    pub fn load(dir: &Path, file_size: usize) -> io::Result<Self> {
        Ok(Self {
            files: MappedFileQueue::load(dir, file_size)?,
            append: Mutex::new(()),
        })
    }

    /// Scans from `from` (a unit boundary known durable) to the last valid unit, truncates
    /// everything after it, and returns the units found after `from` with their positions.
    pub fn recover(&self, from: i64) -> io::Result<Vec<(i64, Unit)>> {
        let mut found = Vec::new();
        let size = self.files.file_size() as i64;
        let mut pos = from.max(self.files.min_offset());
        let mut end = pos;
        while let Some(file) = self.files.find(pos) {
            let in_file = (pos - file.file_from_offset()) as usize;
            let Some(bytes) = file.read(in_file, UNIT_SIZE.min(file.size() - in_file)) else {
                break;
            };
            if bytes.len() >= BLANK_SIZE
                && i32::from_be_bytes(bytes[12..16].try_into().expect("4 bytes")) == BLANK_MAGIC
            {
                // End-of-file marker: continue in the next file.
                pos = file.file_from_offset() + size;
                end = pos;
                continue;
            }
            match Unit::decode(bytes) {
                Some(u) => {
                    found.push((pos, u));
                    pos += UNIT_SIZE as i64;
                    end = pos;
                }
                None => break,
            }
        }
        self.files.truncate(end)?;
        Ok(found)
    }

    /// Appends a unit; returns its position.
    pub fn append(&self, unit: &Unit) -> io::Result<i64> {
        let _guard = self.append.lock();
        let bytes = unit.encode();
        let head = match self.files.last() {
            Some(f) => f,
            None => self.files.create_file(0)?,
        };
        let head = if head.size() - head.wrote_position() >= UNIT_SIZE + BLANK_SIZE {
            head
        } else {
            let remaining = head.size() - head.wrote_position();
            if remaining >= BLANK_SIZE {
                head.append_with(remaining, |b| {
                    b[0..4].copy_from_slice(&(remaining as i32).to_be_bytes());
                    b[12..16].copy_from_slice(&BLANK_MAGIC.to_be_bytes());
                });
            }
            head.mark_full();
            self.files
                .create_file(head.file_from_offset() + head.size() as i64)?
        };
        let (at, ()) = head
            .append_with(UNIT_SIZE, |b| b.copy_from_slice(&bytes))
            .ok_or_else(|| io::Error::other("timer log unit does not fit a fresh file"))?;
        Ok(head.file_from_offset() + at as i64)
    }

    /// The unit at `pos`.
    pub fn read(&self, pos: i64) -> Option<Unit> {
        let file = self.files.find(pos)?;
        let bytes = file.read((pos - file.file_from_offset()) as usize, UNIT_SIZE)?;
        Unit::decode(bytes)
    }

    /// Position after the last unit.
    pub fn max_offset(&self) -> i64 {
        self.files.max_offset()
    }

    /// Msyncs written units; returns the durable position.
    pub fn flush(&self) -> io::Result<i64> {
        self.files.flush()
    }

    /// Deletes old files whose every message lies below `commit_log_min` (gone from the
    /// CommitLog, so the units can never be delivered). Never deletes the head.
    pub fn delete_expired(&self, commit_log_min: i64) -> io::Result<usize> {
        let mut deleted = 0;
        loop {
            let removed = self.files.delete_first_if(|f| {
                let last_unit_at = f.size() - BLANK_SIZE - (f.size() - BLANK_SIZE) % UNIT_SIZE;
                let last = (0..=last_unit_at / UNIT_SIZE)
                    .rev()
                    .filter_map(|i| f.read(i * UNIT_SIZE, UNIT_SIZE).and_then(Unit::decode))
                    .next();
                last.is_some_and(|u| u.commit_log_offset < commit_log_min)
            })?;
            if !removed {
                return Ok(deleted);
            }
            deleted += 1;
        }
    }

    /// Every unit from the start (recovery of a damaged slot).
    pub fn scan_all(&self) -> Vec<(i64, Unit)> {
        let mut out = Vec::new();
        for file in self.files.files() {
            let mut at = 0;
            while at + UNIT_SIZE <= file.wrote_position() {
                match file.read(at, UNIT_SIZE).and_then(Unit::decode) {
                    Some(u) => out.push((file.file_from_offset() + at as i64, u)),
                    None => break,
                }
                at += UNIT_SIZE;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(i: i64) -> Unit {
        Unit {
            prev_pos: i - 1,
            magic: MAGIC_DEFAULT,
            write_time_ms: 1_000 * i,
            delta: 500,
            commit_log_offset: 100 * i,
            size: 99,
            topic_hash: 7,
        }
    }

    #[test]
    fn unit_layout_is_rocketmq_s() {
        let b = unit(3).encode();
        assert_eq!(&b[0..4], &52i32.to_be_bytes());
        assert_eq!(&b[4..12], &2i64.to_be_bytes());
        assert_eq!(&b[12..16], &1i32.to_be_bytes());
        assert_eq!(&b[28..36], &300i64.to_be_bytes());
        assert_eq!(Unit::decode(&b), Some(unit(3)));
        assert_eq!(Unit::decode(&[0u8; 52]), None);
        let mut bad = b;
        bad[15] = 0x10;
        assert_eq!(Unit::decode(&bad), None, "unknown magic bits");
        assert_eq!(unit(3).slot_time_ms(), 3_500);
    }

    #[test]
    fn units_roll_over_files_and_recover_after_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        // Room for 3 units + the end marker per file.
        let size = 3 * UNIT_SIZE + BLANK_SIZE + 10;
        let log = TimerLog::load(dir.path(), size).unwrap();
        log.recover(0).unwrap();
        let positions: Vec<i64> = (0..7).map(|i| log.append(&unit(i)).unwrap()).collect();
        assert_eq!(&positions[..4], &[0, 52, 104, size as i64]);
        assert_eq!(log.read(positions[5]), Some(unit(5)));
        log.flush().unwrap();
        drop(log);
        // A torn unit at the end: garbage where the 8th unit would go.
        let last = dir.path().join(format!("{:020}", 2 * size));
        let mut bytes = std::fs::read(&last).unwrap();
        bytes[52..56].copy_from_slice(&52i32.to_be_bytes());
        std::fs::write(&last, &bytes).unwrap();
        let log = TimerLog::load(dir.path(), size).unwrap();
        let found = log.recover(0).unwrap();
        assert_eq!(found.len(), 7);
        assert_eq!(found.last().unwrap().0, positions[6]);
        assert_eq!(log.max_offset(), positions[6] + 52);
        // Appends continue after the last valid unit.
        assert_eq!(log.append(&unit(7)).unwrap(), positions[6] + 52);
        assert_eq!(log.scan_all().len(), 8);
    }
}
