//! ConsumeQueues: per topic/queue index of the CommitLog, 20 bytes per message
//! (`i64 physical offset | i32 size | i64 tag hash code`), at byte position
//! `queue_offset * 20`, in files `consumequeue/<topic>/<queueId>/<20-digit byte offset>`.
//!
//! Invariants:
//! * Only the dispatch thread writes, in CommitLog order, so entry `n` is always the
//!   message with queue offset `n`. Gaps (a queue whose first files were removed) are
//!   filled with RocketMQ's blank entry `(0, i32::MAX, 0)`, which readers skip.
//! * After recovery every entry points below the CommitLog's recovered end.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use parking_lot::RwLock;

use super::mapped_file::MappedFileQueue;

/// Size of one ConsumeQueue entry.
pub const CQ_ENTRY_SIZE: usize = 20;

/// One ConsumeQueue entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CqEntry {
    /// CommitLog offset.
    pub physical_offset: i64,
    /// Record size.
    pub size: i32,
    /// Java hash of the TAGS property (0 if none).
    pub tags_code: i64,
}

impl CqEntry {
    const BLANK: CqEntry = CqEntry {
        physical_offset: 0,
        size: i32::MAX,
        tags_code: 0,
    };

    /// Encodes the 20-byte entry.
    pub fn encode(&self) -> [u8; CQ_ENTRY_SIZE] {
        let mut b = [0u8; CQ_ENTRY_SIZE];
        b[..8].copy_from_slice(&self.physical_offset.to_be_bytes());
        b[8..12].copy_from_slice(&self.size.to_be_bytes());
        b[12..].copy_from_slice(&self.tags_code.to_be_bytes());
        b
    }

    /// Decodes a 20-byte entry.
    pub fn decode(b: &[u8]) -> Self {
        Self {
            physical_offset: i64::from_be_bytes(b[..8].try_into().expect("8 bytes")),
            size: i32::from_be_bytes(b[8..12].try_into().expect("4 bytes")),
            tags_code: i64::from_be_bytes(b[12..20].try_into().expect("8 bytes")),
        }
    }

    /// A filler entry (gap), not a message.
    pub fn is_blank(&self) -> bool {
        *self == Self::BLANK
    }

    /// What recovery accepts as written (zeros are unwritten space).
    fn is_written(&self) -> bool {
        self.physical_offset >= 0 && self.size > 0
    }
}

/// Which side of a timestamp [`ConsumeQueue::offset_by_time`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoundaryType {
    /// First offset stored at or after the time.
    Lower,
    /// Last offset stored at or before the time.
    Upper,
}

/// The ConsumeQueue of one topic queue.
#[derive(Debug)]
pub struct ConsumeQueue {
    topic: Box<str>,
    queue_id: i32,
    files: MappedFileQueue,
    /// Byte position of the first live entry.
    min_logic_pos: AtomicI64,
}

impl ConsumeQueue {
    /// Loads (or creates the directory of) the queue's files.
    pub fn open(root: &Path, topic: &str, queue_id: i32, file_size: usize) -> io::Result<Self> {
        let dir = root.join(topic).join(queue_id.to_string());
        let files = MappedFileQueue::load(&dir, file_size)?;
        let min = files.min_offset();
        Ok(Self {
            topic: topic.into(),
            queue_id,
            files,
            min_logic_pos: AtomicI64::new(min),
        })
    }

    /// Topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }
    /// Queue id.
    pub fn queue_id(&self) -> i32 {
        self.queue_id
    }
    /// Files.
    pub fn files(&self) -> &MappedFileQueue {
        &self.files
    }

    /// Recovery: finds the last written entry (scanning the last three files), truncates
    /// the rest and drops entries pointing at or past `commitlog_end`. Returns the
    /// CommitLog offset just past the last entry's message (0 if none).
    pub fn recover(&self, commitlog_end: i64) -> io::Result<i64> {
        let files = self.files.files();
        let start = files.len().saturating_sub(3);
        let mut end = files.get(start).map_or(0, |f| f.file_from_offset());
        'scan: for f in &files[start..] {
            // Freshly loaded files publish their whole length; a second pass sees only
            // the entries the first pass kept.
            let data = f.read_from(0).expect("position 0 is always readable");
            for (i, chunk) in data.chunks_exact(CQ_ENTRY_SIZE).enumerate() {
                let e = CqEntry::decode(chunk);
                if !e.is_written() {
                    break 'scan;
                }
                if !e.is_blank()
                    && e.physical_offset.saturating_add(i64::from(e.size)) > commitlog_end
                {
                    break 'scan;
                }
                end = f.file_from_offset() + ((i + 1) * CQ_ENTRY_SIZE) as i64;
            }
        }
        // Everything scanned pointed past the CommitLog's end (it lost a lot in a crash):
        // older files may too. Walk back until an entry fits.
        if start > 0 && end == files[start].file_from_offset() {
            let first = files[0].file_from_offset();
            while end > first {
                let e = self
                    .get_raw((end / CQ_ENTRY_SIZE as i64) - 1)
                    .expect("loaded files are readable");
                if e.is_blank()
                    || e.physical_offset.saturating_add(i64::from(e.size)) <= commitlog_end
                {
                    break;
                }
                end -= CQ_ENTRY_SIZE as i64;
            }
        }
        drop(files);
        self.files.truncate(end)?;
        self.min_logic_pos
            .store(self.files.min_offset(), Ordering::Release);
        Ok(self
            .last_entry()
            .map_or(0, |e| e.physical_offset.saturating_add(i64::from(e.size))))
    }

    /// Runtime truncation: drops the entries of records at or after CommitLog `offset` (a
    /// replica cutting a diverged tail). Returns the queue's new max offset.
    pub fn truncate_physical(&self, offset: i64) -> io::Result<i64> {
        let mut end = self.max_offset();
        let min = self.min_offset();
        while end > min {
            match self.get_raw(end - 1) {
                Some(e) if !e.is_blank() && e.physical_offset >= offset => end -= 1,
                _ => break,
            }
        }
        if end < self.max_offset() {
            self.files.truncate_shared(end * CQ_ENTRY_SIZE as i64)?;
        }
        Ok(end)
    }

    fn last_entry(&self) -> Option<CqEntry> {
        let max = self.max_offset();
        if max == 0 || max <= self.min_offset() {
            return None;
        }
        self.get_raw(max - 1).filter(|e| !e.is_blank())
    }

    /// Smallest readable logical offset.
    pub fn min_offset(&self) -> i64 {
        self.min_logic_pos.load(Ordering::Acquire) / CQ_ENTRY_SIZE as i64
    }

    /// One past the largest logical offset.
    pub fn max_offset(&self) -> i64 {
        self.files.max_offset() / CQ_ENTRY_SIZE as i64
    }

    fn get_raw(&self, offset: i64) -> Option<CqEntry> {
        let pos = offset.checked_mul(CQ_ENTRY_SIZE as i64)?;
        let file = self.files.find(pos)?;
        let b = file.read((pos - file.file_from_offset()) as usize, CQ_ENTRY_SIZE)?;
        Some(CqEntry::decode(b))
    }

    /// The entry at logical `offset`, if stored and not a filler.
    pub fn get(&self, offset: i64) -> Option<CqEntry> {
        if offset < self.min_offset() {
            return None;
        }
        self.get_raw(offset).filter(|e| !e.is_blank())
    }

    /// Writes the entry for queue offset `offset`. Re-dispatch of an entry that already
    /// exists is ignored; a gap is filled with blank entries first.
    pub fn put(&self, offset: i64, entry: CqEntry) -> io::Result<()> {
        let expect = offset * CQ_ENTRY_SIZE as i64;
        let file_size = self.files.file_size() as i64;
        if self.files.is_empty() {
            let start = expect - expect % file_size;
            self.files.create_file(start)?;
            self.min_logic_pos.store(expect, Ordering::Release);
        }
        let mut cur = self.files.max_offset();
        if expect < cur {
            return Ok(());
        }
        while cur < expect {
            self.append_raw(&CqEntry::BLANK.encode())?;
            cur += CQ_ENTRY_SIZE as i64;
        }
        self.append_raw(&entry.encode())
    }

    fn append_raw(&self, bytes: &[u8; CQ_ENTRY_SIZE]) -> io::Result<()> {
        let mut head = self.files.last().expect("queue has a file");
        if head.is_full() {
            head = self
                .files
                .create_file(head.file_from_offset() + head.size() as i64)?;
        }
        head.append_with(CQ_ENTRY_SIZE, |b| b.copy_from_slice(bytes))
            .expect("file size is a multiple of the entry size");
        Ok(())
    }

    /// Msyncs written entries.
    pub fn flush(&self) -> io::Result<()> {
        self.files.flush().map(|_| ())
    }

    /// Binary search for a timestamp; `store_time` reads a message's store timestamp.
    pub fn offset_by_time(
        &self,
        timestamp: i64,
        boundary: BoundaryType,
        store_time: impl Fn(&CqEntry) -> Option<i64>,
    ) -> i64 {
        let (min, max) = (self.min_offset(), self.max_offset());
        if min >= max {
            return max;
        }
        // Store timestamps are non-decreasing in queue order (single append path).
        let time_at = |o: i64| self.get(o).and_then(|e| store_time(&e));
        let (mut lo, mut hi) = (min, max); // first offset with time >= timestamp (Lower)
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let go_right = match (time_at(mid), boundary) {
                // Unreadable (deleted segment / filler): treat as older than anything.
                (None, _) => true,
                (Some(t), BoundaryType::Lower) => t < timestamp,
                (Some(t), BoundaryType::Upper) => t <= timestamp,
            };
            if go_right {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        match boundary {
            BoundaryType::Lower => lo,
            BoundaryType::Upper => (lo - 1).max(min),
        }
    }

    /// Retention: deletes leading files whose entries all point below `commitlog_min`, then
    /// moves the min offset to the first entry at or above it. Returns files deleted.
    pub fn delete_below(&self, commitlog_min: i64) -> io::Result<usize> {
        let mut deleted = 0;
        loop {
            let gone = self.files.delete_first_if(|f| {
                let last = f.read(f.size() - CQ_ENTRY_SIZE, CQ_ENTRY_SIZE);
                last.map(CqEntry::decode)
                    .is_some_and(|e| e.is_written() && e.physical_offset < commitlog_min)
            })?;
            if !gone {
                break;
            }
            deleted += 1;
        }
        self.correct_min_offset(commitlog_min);
        Ok(deleted)
    }

    /// Moves the min offset past entries whose messages are gone.
    pub fn correct_min_offset(&self, commitlog_min: i64) {
        let mut pos = self
            .min_logic_pos
            .load(Ordering::Acquire)
            .max(self.files.min_offset());
        let end = self.files.max_offset();
        while pos < end {
            let Some(e) = self.get_raw(pos / CQ_ENTRY_SIZE as i64) else {
                break;
            };
            if !e.is_blank() && e.physical_offset >= commitlog_min {
                break;
            }
            pos += CQ_ENTRY_SIZE as i64;
        }
        self.min_logic_pos.store(pos, Ordering::Release);
    }
}

/// Queues of one topic by queue id.
type TopicQueues = HashMap<i32, Arc<ConsumeQueue>>;

/// All ConsumeQueues, keyed by topic and queue id.
#[derive(Debug)]
pub struct ConsumeQueueStore {
    root: PathBuf,
    file_size: usize,
    queues: RwLock<HashMap<Box<str>, TopicQueues>>,
}

impl ConsumeQueueStore {
    /// Loads every queue under `root`.
    pub fn load(root: &Path, file_size: usize) -> io::Result<Self> {
        std::fs::create_dir_all(root)?;
        let mut queues: HashMap<Box<str>, TopicQueues> = HashMap::new();
        for topic_dir in std::fs::read_dir(root)? {
            let topic_dir = topic_dir?;
            if !topic_dir.file_type()?.is_dir() {
                continue;
            }
            let Some(topic) = topic_dir.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            for q in std::fs::read_dir(topic_dir.path())? {
                let q = q?;
                let Some(qid) = q.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                    continue;
                };
                let cq = ConsumeQueue::open(root, &topic, qid, file_size)?;
                queues
                    .entry(topic.as_str().into())
                    .or_default()
                    .insert(qid, Arc::new(cq));
            }
        }
        Ok(Self {
            root: root.to_path_buf(),
            file_size,
            queues: RwLock::new(queues),
        })
    }

    /// The queue, if it exists.
    pub fn get(&self, topic: &str, queue_id: i32) -> Option<Arc<ConsumeQueue>> {
        self.queues.read().get(topic)?.get(&queue_id).cloned()
    }

    /// The queue, created on first use.
    pub fn get_or_create(&self, topic: &str, queue_id: i32) -> io::Result<Arc<ConsumeQueue>> {
        if let Some(q) = self.get(topic, queue_id) {
            return Ok(q);
        }
        let mut all = self.queues.write();
        let per_topic = match all.get_mut(topic) {
            Some(t) => t,
            None => all.entry(topic.into()).or_default(),
        };
        if let Some(q) = per_topic.get(&queue_id) {
            return Ok(q.clone());
        }
        let q = Arc::new(ConsumeQueue::open(
            &self.root,
            topic,
            queue_id,
            self.file_size,
        )?);
        per_topic.insert(queue_id, q.clone());
        Ok(q)
    }

    /// Snapshot of every queue.
    pub fn all(&self) -> Vec<Arc<ConsumeQueue>> {
        self.queues
            .read()
            .values()
            .flat_map(|m| m.values().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_bytes_exact() {
        let e = CqEntry {
            physical_offset: 0x0102_0304_0506_0708,
            size: 0x11_2233,
            tags_code: -1,
        };
        let b = e.encode();
        assert_eq!(
            b,
            [
                1, 2, 3, 4, 5, 6, 7, 8, 0, 0x11, 0x22, 0x33, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
                0xFF, 0xFF
            ]
        );
        assert_eq!(CqEntry::decode(&b), e);
        assert_eq!(
            CqEntry::BLANK.encode()[8..12],
            [0x7F, 0xFF, 0xFF, 0xFF],
            "Java's blank: size Integer.MAX_VALUE"
        );
    }

    #[test]
    fn put_get_roll_gap_recover_and_time_search() {
        let dir = tempfile::tempdir().unwrap();
        // 5 entries per file.
        let cq = ConsumeQueue::open(dir.path(), "T", 1, 100).unwrap();
        for i in 0..12 {
            let e = CqEntry {
                physical_offset: i * 100,
                size: 100,
                tags_code: i,
            };
            cq.put(i, e).unwrap();
            cq.put(i, e).unwrap(); // duplicate dispatch is ignored
        }
        assert_eq!(cq.files().len(), 3);
        assert_eq!((cq.min_offset(), cq.max_offset()), (0, 12));
        assert_eq!(cq.get(7).unwrap().physical_offset, 700);
        assert!(cq.get(12).is_none());
        assert!(dir.path().join("T/1/00000000000000000100").exists());

        // Store time = physical offset here; lower/upper boundaries.
        let t = |e: &CqEntry| Some(e.physical_offset);
        assert_eq!(cq.offset_by_time(350, BoundaryType::Lower, t), 4);
        assert_eq!(cq.offset_by_time(350, BoundaryType::Upper, t), 3);
        assert_eq!(cq.offset_by_time(400, BoundaryType::Lower, t), 4);
        assert_eq!(cq.offset_by_time(400, BoundaryType::Upper, t), 4);
        assert_eq!(cq.offset_by_time(-5, BoundaryType::Lower, t), 0);
        assert_eq!(cq.offset_by_time(99_999, BoundaryType::Lower, t), 12);

        // Gap: offset 14 written after 11 -> 12, 13 blank.
        cq.put(
            14,
            CqEntry {
                physical_offset: 1400,
                size: 100,
                tags_code: 0,
            },
        )
        .unwrap();
        assert!(cq.get(12).is_none() && cq.get(13).is_none());
        assert_eq!(cq.get(14).unwrap().physical_offset, 1400);
        drop(cq);

        // Recovery: CommitLog ends at 1000 -> entries at >= 1000 go (blanks before them stay
        // only if before the cut).
        let cq = ConsumeQueue::open(dir.path(), "T", 1, 100).unwrap();
        assert_eq!(cq.recover(1000).unwrap(), 1000);
        assert_eq!(cq.max_offset(), 10);
        assert!(!dir.path().join("T/1/00000000000000000200").exists());
        // Retention: CommitLog min 600 -> first file (offsets 0..5, phys < 500) goes.
        assert_eq!(cq.delete_below(600).unwrap(), 1);
        assert_eq!(cq.min_offset(), 6);
        assert!(cq.get(5).is_none());
        assert_eq!(cq.get(6).unwrap().physical_offset, 600);
    }

    #[test]
    fn recovery_cuts_back_past_the_last_three_files() {
        let dir = tempfile::tempdir().unwrap();
        let cq = ConsumeQueue::open(dir.path(), "T", 0, 100).unwrap(); // 5 entries per file
        for i in 0..30 {
            cq.put(
                i,
                CqEntry {
                    physical_offset: i * 10,
                    size: 10,
                    tags_code: 0,
                },
            )
            .unwrap();
        }
        drop(cq);
        // The CommitLog now ends at 70: entries 0..7 survive, files 2.. go.
        let cq = ConsumeQueue::open(dir.path(), "T", 0, 100).unwrap();
        assert_eq!(cq.recover(70).unwrap(), 70);
        assert_eq!(cq.max_offset(), 7);
        assert_eq!(cq.files().len(), 2);
    }

    #[test]
    fn store_loads_queues() {
        let dir = tempfile::tempdir().unwrap();
        let s = ConsumeQueueStore::load(dir.path(), 100).unwrap();
        s.get_or_create("A", 0)
            .unwrap()
            .put(
                0,
                CqEntry {
                    physical_offset: 0,
                    size: 1,
                    tags_code: 0,
                },
            )
            .unwrap();
        s.get_or_create("B", 3).unwrap();
        drop(s);
        let s = ConsumeQueueStore::load(dir.path(), 100).unwrap();
        assert_eq!(s.all().len(), 2);
        s.get("A", 0).unwrap().recover(i64::MAX).unwrap();
        assert_eq!(s.get("A", 0).unwrap().max_offset(), 1);
    }
}
