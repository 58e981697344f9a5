//! The CommitLog: every message of every topic, appended to one stream of segment files.
//!
//! Invariants:
//! * One append path ([`CommitLog::append_batch`]) under one lock assigns, in order, the
//!   physical offset, the per topic-queue offset and a non-decreasing store timestamp, so
//!   CommitLog order, queue-offset order and timestamp order agree.
//! * Every record fits in its segment with at least 8 bytes to spare, so a segment always
//!   ends with a BLANK marker (or exactly at the segment end).
//! * Bytes below [`CommitLog::max_offset`] are immutable; readers never see a partly written
//!   record, and bytes below the flushed offset are never rewritten.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use std::collections::HashMap;

use parking_lot::Mutex;
use rocketmq_common::message::record::{
    BLANK_MAGIC_CODE, END_FILE_MIN_BLANK_LENGTH, MESSAGE_MAGIC_CODE_V1, MESSAGE_MAGIC_CODE_V2,
    PHYSICAL_OFFSET_POS, encode_blank,
};
use rocketmq_common::message::sysflag::is_invisible_transaction;
use rocketmq_common::message::{
    DecodedRecord, RecordEntry, RecordHeaderFields, RecordInput, body_crc, decode_record,
    encode_offset_message_id, encode_record, encoded_record_len,
};

use super::StoreError;
use super::flush::FlushWatermark;
use super::mapped_file::{MappedFile, MappedFileQueue};

/// Where an appended message landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// CommitLog offset of the record.
    pub physical_offset: i64,
    /// Record size in bytes.
    pub size: u32,
    /// Offset in its topic queue (0 for prepared/rolled-back transactional messages).
    pub queue_offset: i64,
    /// Store timestamp (ms).
    pub store_timestamp: i64,
}

impl AppendResult {
    /// CommitLog offset just past the record; durable once the flush watermark reaches it.
    pub fn end_offset(&self) -> i64 {
        self.physical_offset + i64::from(self.size)
    }
    /// The offset message id for `store_host`.
    pub fn msg_id(&self, store_host: SocketAddr) -> String {
        encode_offset_message_id(store_host, self.physical_offset)
    }
}

/// Next queue offset per topic and queue id. Lookups by `&str` do not allocate.
#[derive(Debug, Default)]
pub struct QueueOffsetTable {
    topics: HashMap<Box<str>, Vec<i64>>,
}

impl QueueOffsetTable {
    /// The next offset of `topic`/`queue_id` (0 if unseen).
    pub fn get(&self, topic: &str, queue_id: i32) -> i64 {
        self.topics
            .get(topic)
            .and_then(|v| v.get(queue_id as usize).copied())
            .unwrap_or(0)
    }

    /// Sets the next offset (recovery).
    pub fn set(&mut self, topic: &str, queue_id: i32, next: i64) {
        let v = match self.topics.get_mut(topic) {
            Some(v) => v,
            None => self.topics.entry(topic.into()).or_default(),
        };
        let idx = queue_id as usize;
        if v.len() <= idx {
            v.resize(idx + 1, 0);
        }
        v[idx] = next;
    }

    /// Returns the next offset and advances it.
    fn take(&mut self, topic: &str, queue_id: i32) -> i64 {
        let idx = queue_id as usize;
        if let Some(v) = self.topics.get_mut(topic)
            && let Some(slot) = v.get_mut(idx)
        {
            let cur = *slot;
            *slot += 1;
            return cur;
        }
        self.set(topic, queue_id, 1);
        0
    }
}

struct AppendState {
    queue_offsets: QueueOffsetTable,
    last_store_timestamp: i64,
    /// The head segment, cached so appends skip the file list's lock. Only the append path
    /// changes the head; retention never removes it.
    head: Option<Arc<MappedFile>>,
}

/// A message prepared for the append lock: its CRC and length computed outside the lock.
struct Prepared<'a> {
    input: RecordInput<'a>,
    len: usize,
    crc: u32,
}

/// The CommitLog segment stream.
pub struct CommitLog {
    files: MappedFileQueue,
    segment_size: usize,
    store_host: SocketAddr,
    max_message_size: usize,
    state: Mutex<AppendState>,
    last_appended_timestamp: AtomicI64,
    watermark: FlushWatermark,
    flush_count: AtomicU64,
}

impl std::fmt::Debug for CommitLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitLog")
            .field("dir", &self.files.dir())
            .field("max_offset", &self.max_offset())
            .finish()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A record (or run of records) read from the CommitLog; keeps its segment alive.
#[derive(Debug, Clone)]
pub struct SelectedBuffer {
    file: Arc<MappedFile>,
    pos: usize,
    len: usize,
    physical_offset: i64,
}

impl SelectedBuffer {
    /// CommitLog offset of the first byte.
    pub fn physical_offset(&self) -> i64 {
        self.physical_offset
    }
    /// Decodes the record at the start (CRC-verified).
    pub fn decode(&self) -> Result<DecodedRecord<'_>, StoreError> {
        match decode_record(self, true) {
            Ok(RecordEntry::Message(m)) => Ok(m),
            Ok(RecordEntry::Blank { .. }) => Err(StoreError::Corrupt {
                offset: self.physical_offset,
                reason: "blank record where a message was expected".into(),
            }),
            Err(e) => Err(StoreError::Corrupt {
                offset: self.physical_offset,
                reason: e.to_string(),
            }),
        }
    }
}

impl Deref for SelectedBuffer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // Checked when the buffer was made; a replica's runtime truncation may zero the bytes
        // since (the CRC check then fails), but never unmaps them.
        self.file.view(self.pos, self.len)
    }
}

impl CommitLog {
    /// Wraps loaded segment files; recovery must set positions before appends.
    pub(crate) fn new(
        files: MappedFileQueue,
        store_host: SocketAddr,
        max_message_size: usize,
        queue_offsets: QueueOffsetTable,
    ) -> Self {
        let segment_size = files.file_size();
        let flushed = files.max_offset();
        Self {
            files,
            segment_size,
            store_host,
            max_message_size,
            state: Mutex::new(AppendState {
                queue_offsets,
                last_store_timestamp: 0,
                head: None,
            }),
            last_appended_timestamp: AtomicI64::new(0),
            watermark: FlushWatermark::new(flushed),
            flush_count: AtomicU64::new(0),
        }
    }

    /// Segment files.
    pub fn files(&self) -> &MappedFileQueue {
        &self.files
    }
    /// Segment size.
    pub fn segment_size(&self) -> usize {
        self.segment_size
    }
    /// Address written as STOREHOST.
    pub fn store_host(&self) -> SocketAddr {
        self.store_host
    }
    /// Offset just past the last published record.
    pub fn max_offset(&self) -> i64 {
        self.files.max_offset()
    }
    /// Offset of the first byte still stored.
    pub fn min_offset(&self) -> i64 {
        self.files.min_offset()
    }
    /// The durable-offset watermark.
    pub fn watermark(&self) -> &FlushWatermark {
        &self.watermark
    }
    /// Store timestamp of the newest published record.
    pub fn last_appended_timestamp(&self) -> i64 {
        self.last_appended_timestamp.load(Ordering::Acquire)
    }
    /// Written but unflushed pages.
    pub fn dirty_pages(&self) -> usize {
        self.files.dirty_pages()
    }

    /// Sets the next queue offsets (recovery, or a replica about to take writes).
    pub(crate) fn set_queue_offsets(&self, table: QueueOffsetTable) {
        self.state.lock().queue_offsets = table;
    }

    /// Recovery: later appends get store timestamps of at least `ts`.
    pub(crate) fn set_min_store_timestamp(&self, ts: i64) {
        let mut st = self.state.lock();
        st.last_store_timestamp = st.last_store_timestamp.max(ts);
        self.last_appended_timestamp.fetch_max(ts, Ordering::AcqRel);
    }

    /// Next queue offset of a queue (what its ConsumeQueue max will become).
    pub fn next_queue_offset(&self, topic: &str, queue_id: i32) -> i64 {
        self.state.lock().queue_offsets.get(topic, queue_id)
    }

    /// Msyncs all written bytes and raises the watermark; returns the durable offset.
    pub fn flush(&self) -> std::io::Result<i64> {
        let before = self.watermark.get();
        let flushed = self.files.flush()?;
        if flushed > before {
            self.flush_count.fetch_add(1, Ordering::Relaxed);
        }
        self.watermark.advance(flushed);
        Ok(flushed)
    }

    /// Number of flushes that made new bytes durable (group commit makes this much smaller
    /// than the number of SYNC_FLUSH puts).
    pub fn flush_count(&self) -> u64 {
        self.flush_count.load(Ordering::Relaxed)
    }

    fn prepare<'a>(&self, m: &RecordInput<'a>) -> Result<Prepared<'a>, StoreError> {
        if m.body.len() > self.max_message_size {
            return Err(StoreError::MessageTooLarge {
                size: m.body.len(),
                max: self.max_message_size,
            });
        }
        let mut input = *m;
        input.store_host = self.store_host;
        let len =
            encoded_record_len(&input).map_err(|e| StoreError::InvalidMessage(e.to_string()))?;
        if len + END_FILE_MIN_BLANK_LENGTH > self.segment_size {
            return Err(StoreError::MessageTooLarge {
                size: len,
                max: self.segment_size - END_FILE_MIN_BLANK_LENGTH,
            });
        }
        Ok(Prepared {
            input,
            len,
            crc: body_crc(m.body),
        })
    }

    /// Appends one message. Durability depends on the flush policy (see the store).
    pub fn append(&self, msg: &RecordInput<'_>) -> Result<AppendResult, StoreError> {
        let p = self.prepare(msg)?;
        let mut state = self.state.lock();
        self.append_locked(&mut state, &p)
    }

    /// Appends messages back to back under one lock acquisition (a producer batch).
    pub fn append_batch(
        &self,
        msgs: &[RecordInput<'_>],
        out: &mut Vec<AppendResult>,
    ) -> Result<(), StoreError> {
        let prepared = msgs
            .iter()
            .map(|m| self.prepare(m))
            .collect::<Result<Vec<_>, _>>()?;
        let mut state = self.state.lock();
        out.reserve(prepared.len());
        for p in &prepared {
            out.push(self.append_locked(&mut state, p)?);
        }
        Ok(())
    }

    /// The head segment with room for `len` bytes plus a BLANK marker, rolling over (and
    /// writing the BLANK) when the current one is too full.
    fn head_for(&self, state: &mut AppendState, len: usize) -> Result<Arc<MappedFile>, StoreError> {
        let head = match &state.head {
            Some(h) => h.clone(),
            None => match self.files.last() {
                Some(f) => f,
                None => self.files.create_file(0)?,
            },
        };
        let remaining = head.size() - head.wrote_position();
        if len + END_FILE_MIN_BLANK_LENGTH <= remaining {
            state.head = Some(head.clone());
            return Ok(head);
        }
        if remaining >= END_FILE_MIN_BLANK_LENGTH {
            head.append_with(END_FILE_MIN_BLANK_LENGTH, |b| {
                encode_blank(remaining as u32, b)
            })
            .expect("BLANK marker fits: checked remaining");
        }
        head.mark_full();
        let next = head.file_from_offset() + head.size() as i64;
        let next = self.files.create_file(next)?;
        state.head = Some(next.clone());
        Ok(next)
    }

    fn append_locked(
        &self,
        state: &mut AppendState,
        p: &Prepared<'_>,
    ) -> Result<AppendResult, StoreError> {
        let head = self.head_for(state, p.len)?;
        let pos = head.wrote_position();
        let physical_offset = head.file_from_offset() + pos as i64;
        let store_timestamp = now_ms().max(state.last_store_timestamp);
        let queue_offset = if is_invisible_transaction(p.input.sys_flag) {
            0
        } else {
            state.queue_offsets.take(p.input.topic, p.input.queue_id)
        };
        let fields = RecordHeaderFields {
            queue_offset,
            physical_offset,
            store_timestamp,
            body_crc: p.crc,
        };
        let (wrote_at, encoded) = head
            .append_with(p.len, |buf| encode_record(&p.input, &fields, buf))
            .expect("record fits: head_for reserved room");
        debug_assert_eq!(wrote_at, pos);
        encoded.expect("lengths validated in prepare");
        state.last_store_timestamp = store_timestamp;
        head.set_last_store_timestamp(store_timestamp);
        self.last_appended_timestamp
            .store(store_timestamp, Ordering::Release);
        Ok(AppendResult {
            physical_offset,
            size: p.len as u32,
            queue_offset,
            store_timestamp,
        })
    }

    /// Replica side: appends bytes shipped by the master at `offset`, which must be this
    /// log's end. The bytes must be whole records inside one segment, each written for
    /// exactly its position; a segment's BLANK marker travels as its 8 marker bytes and
    /// ends the chunk. Returns the new end.
    pub fn append_replicated(&self, offset: i64, data: &[u8]) -> Result<i64, StoreError> {
        let mut state = self.state.lock();
        let seg = self.segment_size as i64;
        let head = match state.head.clone().or_else(|| self.files.last()) {
            Some(h) if !h.is_full() => h,
            Some(h) => self.files.create_file(h.file_from_offset() + seg)?,
            // An empty replica starts where the master's log starts: a segment boundary.
            None if offset % seg == 0 => self.files.create_file(offset)?,
            None => {
                return Err(StoreError::ReplicaOffset {
                    expected: 0,
                    got: offset,
                });
            }
        };
        let end = head.file_from_offset() + head.wrote_position() as i64;
        if offset != end {
            return Err(StoreError::ReplicaOffset {
                expected: end,
                got: offset,
            });
        }
        let pos = head.wrote_position();
        let corrupt = |at: usize, reason: String| StoreError::Corrupt {
            offset: offset + at as i64,
            reason: format!("replicated data: {reason}"),
        };
        if pos + data.len() > head.size() {
            return Err(corrupt(0, "chunk crosses the segment end".into()));
        }
        let mut at = 0usize;
        let mut segment_done = false;
        let mut last_ts = None;
        let mut last_message = None;
        while at < data.len() {
            let left_in_segment = head.size() - pos - at;
            if left_in_segment < END_FILE_MIN_BLANK_LENGTH {
                // Too small for a BLANK marker: the segment simply ends with filler.
                if data.len() - at != left_in_segment {
                    return Err(corrupt(at, "filler does not end the segment".into()));
                }
                segment_done = true;
                break;
            }
            let rec = &data[at..];
            if rec.len() < END_FILE_MIN_BLANK_LENGTH {
                return Err(corrupt(at, "torn record".into()));
            }
            let size = u32::from_be_bytes(rec[..4].try_into().expect("4 bytes")) as usize;
            let magic = u32::from_be_bytes(rec[4..8].try_into().expect("4 bytes"));
            if magic == BLANK_MAGIC_CODE {
                if size != left_in_segment || rec.len() != END_FILE_MIN_BLANK_LENGTH {
                    return Err(corrupt(at, "BLANK marker not at the segment end".into()));
                }
                segment_done = true;
                break;
            }
            // Cheap checks here (the dispatcher decodes every record fully anyway): the
            // record's framing and the position it was written for.
            if magic != MESSAGE_MAGIC_CODE_V1 && magic != MESSAGE_MAGIC_CODE_V2 {
                return Err(corrupt(at, format!("bad magic {magic:#x}")));
            }
            if size <= PHYSICAL_OFFSET_POS + 8 || size > rec.len() {
                return Err(corrupt(
                    at,
                    format!("torn or oversized record of {size} bytes"),
                ));
            }
            let written_for = i64::from_be_bytes(
                rec[PHYSICAL_OFFSET_POS..PHYSICAL_OFFSET_POS + 8]
                    .try_into()
                    .expect("8 bytes"),
            );
            if written_for != offset + at as i64 {
                return Err(corrupt(
                    at,
                    format!("record written for offset {written_for}"),
                ));
            }
            last_message = Some(at);
            at += size;
        }
        if let Some(at) = last_message {
            match decode_record(&data[at..], false) {
                Ok(RecordEntry::Message(m)) => last_ts = Some(m.store_timestamp),
                Ok(RecordEntry::Blank { .. }) => {}
                Err(e) => return Err(corrupt(at, e.to_string())),
            }
        }
        head.append_with(data.len(), |b| {
            // The first record's TOTALSIZE last: until it is there, recovery after a crash
            // in this copy sees the end of the log, never a record missing its tail (see
            // `encode_record`). Every later record of the chunk is reached through it.
            let lead = 4.min(data.len());
            b[lead..].copy_from_slice(&data[lead..]);
            std::sync::atomic::compiler_fence(Ordering::Release);
            b[..lead].copy_from_slice(&data[..lead]);
        })
        .expect("checked: the chunk fits the segment");
        if segment_done {
            head.mark_full();
        }
        if let Some(ts) = last_ts {
            state.last_store_timestamp = state.last_store_timestamp.max(ts);
            head.set_last_store_timestamp(ts);
            self.last_appended_timestamp.fetch_max(ts, Ordering::AcqRel);
        }
        state.head = Some(head.clone());
        Ok(head.file_from_offset() + head.wrote_position() as i64)
    }

    /// Master side: the bytes to ship to a replica from `from`: whole records up to about
    /// `max_bytes` (at least one record), never past the end of `from`'s segment or
    /// `limit`, with the offset the next chunk starts at. A BLANK marker ships as its 8
    /// marker bytes and ends the chunk; the next chunk then starts at the next segment.
    /// `None` when nothing is published at `from`.
    pub fn read_for_replication(
        &self,
        from: i64,
        max_bytes: usize,
        limit: i64,
    ) -> Option<(SelectedBuffer, i64)> {
        let file = self.files.find(from)?;
        let pos = (from - file.file_from_offset()) as usize;
        let data = file.read_from(pos)?;
        let segment_end = file.file_from_offset() + file.size() as i64;
        let mut len = 0usize;
        let mut next = None;
        while len < data.len() && from + (len as i64) < limit {
            let left_in_segment = file.size() - pos - len;
            if left_in_segment < END_FILE_MIN_BLANK_LENGTH {
                len += left_in_segment.min(data.len() - len);
                next = Some(segment_end);
                break;
            }
            let rec = &data[len..];
            if rec.len() < END_FILE_MIN_BLANK_LENGTH {
                break;
            }
            let size = u32::from_be_bytes(rec[..4].try_into().expect("4 bytes")) as usize;
            let magic = u32::from_be_bytes(rec[4..8].try_into().expect("4 bytes"));
            if magic == BLANK_MAGIC_CODE {
                len += END_FILE_MIN_BLANK_LENGTH;
                next = Some(segment_end);
                break;
            }
            if size == 0 || size > rec.len() || (len > 0 && len + size > max_bytes) {
                break;
            }
            len += size;
        }
        if len == 0 {
            return None;
        }
        Some((
            SelectedBuffer {
                file,
                pos,
                len,
                physical_offset: from,
            },
            next.unwrap_or(from + len as i64),
        ))
    }

    /// Cuts the log at `offset` while readers may hold segments (a replica dropping a
    /// diverged tail). Appends are held off meanwhile.
    pub(crate) fn truncate_tail(&self, offset: i64) -> std::io::Result<()> {
        let mut state = self.state.lock();
        state.head = None;
        self.files.truncate_shared(offset)?;
        self.watermark.lower_to(offset);
        Ok(())
    }

    /// `size` published bytes at `offset`.
    pub fn read(&self, offset: i64, size: usize) -> Option<SelectedBuffer> {
        let file = self.files.find(offset)?;
        let pos = (offset - file.file_from_offset()) as usize;
        file.read(pos, size)?;
        Some(SelectedBuffer {
            file,
            pos,
            len: size,
            physical_offset: offset,
        })
    }

    /// The whole record at `offset` (size taken from its header).
    pub fn read_record(&self, offset: i64) -> Option<SelectedBuffer> {
        let file = self.files.find(offset)?;
        let pos = (offset - file.file_from_offset()) as usize;
        let head = file.read(pos, 4)?;
        let size = i32::from_be_bytes(head.try_into().expect("4 bytes"));
        if size <= 0 {
            return None;
        }
        self.read(offset, size as usize)
    }

    /// Store timestamp of the record at `offset` (without decoding the whole record).
    pub fn store_timestamp_at(&self, offset: i64) -> Option<i64> {
        let rec = self.read_record(offset)?;
        let m = rec.decode().ok()?;
        Some(m.store_timestamp)
    }

    /// All published bytes from `offset` to the end of its segment (for dispatch scans).
    pub fn read_from(&self, offset: i64) -> Option<SelectedBuffer> {
        let file = self.files.find(offset)?;
        let pos = (offset - file.file_from_offset()) as usize;
        let len = file.read_from(pos)?.len();
        Some(SelectedBuffer {
            file,
            pos,
            len,
            physical_offset: offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocketmq_common::message::sysflag::TRANSACTION_PREPARED_TYPE;

    fn msg<'a>(topic: &'a str, qid: i32, body: &'a [u8]) -> RecordInput<'a> {
        RecordInput {
            topic,
            queue_id: qid,
            flag: 0,
            sys_flag: 0,
            born_timestamp: 1,
            born_host: "127.0.0.1:1".parse().unwrap(),
            store_host: "0.0.0.0:0".parse().unwrap(),
            reconsume_times: 0,
            prepared_transaction_offset: 0,
            body,
            properties: "",
        }
    }

    fn open(dir: &std::path::Path, seg: usize) -> CommitLog {
        let q = MappedFileQueue::load(dir, seg).unwrap();
        CommitLog::new(
            q,
            "10.0.0.1:10911".parse().unwrap(),
            1 << 20,
            QueueOffsetTable::default(),
        )
    }

    #[test]
    fn appends_assign_offsets_and_roll_with_blank() {
        let dir = tempfile::tempdir().unwrap();
        let cl = open(dir.path(), 4096);
        let body = vec![7u8; 1000];
        let mut results = Vec::new();
        for i in 0..10 {
            let r = cl.append(&msg("T", i % 2, &body)).unwrap();
            results.push(r);
        }
        // Queue offsets per queue, physical offsets contiguous within a segment.
        assert_eq!(
            results.iter().map(|r| r.queue_offset).collect::<Vec<_>>(),
            vec![0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
        );
        let size = results[0].size as i64;
        assert_eq!(results[1].physical_offset, size);
        // 4096 / 1086 -> 3 records per segment, then BLANK and the next segment.
        assert_eq!(results[3].physical_offset, 4096);
        let blank = cl.read(3 * size, 8).unwrap();
        assert_eq!(
            decode_record(&blank, true).unwrap(),
            RecordEntry::Blank {
                size: (4096 - 3 * size) as u32
            }
        );
        for r in &results {
            let rec = cl.read_record(r.physical_offset).unwrap();
            let m = rec.decode().unwrap();
            assert_eq!(m.physical_offset, r.physical_offset);
            assert_eq!(m.queue_offset, r.queue_offset);
            assert_eq!(m.store_timestamp, r.store_timestamp);
            assert_eq!(m.store_host, "10.0.0.1:10911".parse().unwrap());
            assert_eq!(m.body, &body[..]);
        }
        let ts: Vec<_> = results.iter().map(|r| r.store_timestamp).collect();
        assert!(ts.windows(2).all(|w| w[0] <= w[1]));
        assert!(cl.read_record(cl.max_offset()).is_none());
    }

    #[test]
    fn prepared_transactions_take_no_queue_offset_and_limits_hold() {
        let dir = tempfile::tempdir().unwrap();
        let cl = open(dir.path(), 4096);
        let mut m = msg("T", 0, b"x");
        m.sys_flag = TRANSACTION_PREPARED_TYPE;
        assert_eq!(cl.append(&m).unwrap().queue_offset, 0);
        assert_eq!(cl.append(&msg("T", 0, b"x")).unwrap().queue_offset, 0);
        assert_eq!(cl.append(&msg("T", 0, b"x")).unwrap().queue_offset, 1);
        let big = vec![0u8; 4096];
        assert!(matches!(
            cl.append(&msg("T", 0, &big)),
            Err(StoreError::MessageTooLarge { .. })
        ));
        let mut out = Vec::new();
        cl.append_batch(&[msg("A", 0, b"1"), msg("A", 0, b"2")], &mut out)
            .unwrap();
        assert_eq!(out[1].queue_offset, 1);
        assert_eq!(out[1].physical_offset, out[0].end_offset());
    }
}
