//! Recovery: find the end of valid CommitLog data after a clean or unclean shutdown.
//!
//! * Clean shutdown (no abort file): scan from the last durable record boundary the
//!   checkpoint records (or the ConsumeQueues' furthest entry), so only the tail is read.
//! * Crash (abort file present): scan from the checkpoint's flushed offset, a record
//!   boundary below which everything was msynced; stores written before that field existed
//!   fall back to the newest segment whose first message was stored at or before
//!   `min(checkpoint timestamps) - 3 s`. Either way only data that may be torn is read, not
//!   whole 1 GiB segments, so restart time does not grow with the store.
//!
//! The scan accepts a record only if it decodes completely, its body CRC matches and its
//! PHYSICALOFFSET field equals its position; the first record failing any check ends the
//! valid data. Everything after it is zeroed on disk (see
//! [`MappedFile::truncate_to`](super::mapped_file::MappedFile::truncate_to)), so bytes of a
//! torn or stale record are never served and can never be revived by a later recovery.

use rocketmq_common::message::record::END_FILE_MIN_BLANK_LENGTH;
use rocketmq_common::message::{RecordEntry, decode_record};

use super::mapped_file::MappedFileQueue;

/// Checkpoint slack RocketMQ subtracts before choosing where to start (clock granularity).
const CHECKPOINT_SLACK_MS: i64 = 3000;

/// What recovery found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecoveryReport {
    /// The abort file was present (crash recovery).
    pub abnormal: bool,
    /// CommitLog offset the scan started from.
    pub scan_from: i64,
    /// Recovered end of the CommitLog (next append offset).
    pub commitlog_end: i64,
    /// Messages validated by the scan.
    pub messages_scanned: u64,
    /// Bytes of the last segment discarded after the valid end (non-zero ones only).
    pub truncated_bytes: u64,
    /// Dispatch restarted from here.
    pub reput_from: i64,
}

/// Index of the segment to start a crash-recovery scan from.
pub fn abnormal_scan_start(files: &MappedFileQueue, min_checkpoint_ts: i64) -> usize {
    let all = files.files();
    if min_checkpoint_ts <= 0 {
        return 0;
    }
    let limit = min_checkpoint_ts - CHECKPOINT_SLACK_MS;
    for (i, f) in all.iter().enumerate().rev() {
        let Some(buf) = f.read_from(0) else { continue };
        if let Ok(RecordEntry::Message(m)) = decode_record(buf, true)
            && m.physical_offset == f.file_from_offset()
            && m.store_timestamp <= limit
        {
            return i;
        }
    }
    0
}

/// Index of the segment holding `offset` (clamped to the segment list).
pub fn segment_index_of(files: &MappedFileQueue, offset: i64) -> usize {
    let all = files.files();
    all.iter()
        .rposition(|f| f.file_from_offset() <= offset)
        .unwrap_or(0)
}

/// What [`scan_valid_end`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScanResult {
    /// Offset just past the last valid record.
    pub end: i64,
    /// Valid messages seen.
    pub messages: u64,
    /// Non-zero bytes after `end` in its segment (torn data).
    pub garbage: u64,
    /// Store timestamp of the last valid message (0 if none).
    pub last_store_timestamp: i64,
}

/// Bytes after the valid end examined to report torn data (a torn record is at most one
/// record long; everything after the end is zeroed regardless).
const GARBAGE_WINDOW: usize = 8 << 20;

/// Scans from `from` (a record boundary, or a segment start) for the end of valid data.
pub fn scan_valid_end(files: &MappedFileQueue, from: i64, verify_crc: bool) -> ScanResult {
    let all = files.files();
    let Some(start_index) = all.iter().rposition(|f| f.file_from_offset() <= from) else {
        return ScanResult {
            end: files.min_offset(),
            ..ScanResult::default()
        };
    };
    let first = &all[start_index];
    let mut end = first.file_from_offset();
    let mut skip = (from - first.file_from_offset()).clamp(0, first.size() as i64) as usize;
    let mut messages = 0u64;
    let mut last_store_timestamp = 0i64;
    for f in &all[start_index..] {
        if f.file_from_offset() != end {
            // Previous segment ended early (torn): nothing after it is valid.
            break;
        }
        let buf = f.read_from(0).expect("loaded segments are fully readable");
        let mut pos = std::mem::take(&mut skip);
        let mut segment_complete = false;
        loop {
            let remaining = buf.len() - pos;
            if remaining < END_FILE_MIN_BLANK_LENGTH {
                segment_complete = true;
                break;
            }
            match decode_record(&buf[pos..], verify_crc) {
                Ok(RecordEntry::Message(m))
                    if m.physical_offset == f.file_from_offset() + pos as i64
                        && m.total_size as usize + END_FILE_MIN_BLANK_LENGTH <= remaining =>
                {
                    pos += m.total_size as usize;
                    messages += 1;
                    last_store_timestamp = m.store_timestamp;
                }
                Ok(RecordEntry::Blank { size }) if size as usize == remaining => {
                    segment_complete = true;
                    break;
                }
                _ => break,
            }
        }
        if segment_complete {
            end = f.file_from_offset() + f.size() as i64;
        } else {
            end = f.file_from_offset() + pos as i64;
            let window = &buf[pos..buf.len().min(pos + GARBAGE_WINDOW)];
            let garbage = window.iter().filter(|b| **b != 0).count() as u64;
            return ScanResult {
                end,
                messages,
                garbage,
                last_store_timestamp,
            };
        }
    }
    ScanResult {
        end,
        messages,
        garbage: 0,
        last_store_timestamp,
    }
}
