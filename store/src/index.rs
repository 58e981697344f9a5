//! IndexFile: find messages by key (`KEYS` tokens and `UNIQ_KEY`) within a time range.
//!
//! Layout (RocketMQ's): a 40-byte header `i64 beginTimestamp | i64 endTimestamp |
//! i64 beginPhyOffset | i64 endPhyOffset | i32 hashSlotCount | i32 indexCount` (indexCount
//! starts at 1), then `maxHashSlotNum` i32 slots holding the newest entry number of the
//! slot (0 = empty), then `maxIndexNum` 20-byte entries `i32 keyHash | i64 phyOffset |
//! i32 timeDiff (s since beginTimestamp) | i32 prevIndex`. The key is `topic#key`, its hash
//! `abs(String.hashCode())`, its slot `hash % maxHashSlotNum`. Files are named by their
//! creation time `yyyyMMddHHmmssSSS`; a full file is flushed and a new one started.
//!
//! Invariant: index hits are candidates only; the store re-reads the message and checks
//! topic and key before returning it, so a torn or stale index can cause a miss but never
//! a wrong answer.

use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::MmapMut;
use parking_lot::RwLock;

const HEADER_SIZE: usize = 40;
const SLOT_SIZE: usize = 4;
const ENTRY_SIZE: usize = 20;

/// Java `String.hashCode()` of the concatenation of `parts`, without building it.
pub fn java_hash_concat(parts: &[&str]) -> i32 {
    let mut h: i32 = 0;
    for p in parts {
        for u in p.encode_utf16() {
            h = h.wrapping_mul(31).wrapping_add(i32::from(u));
        }
    }
    h
}

/// RocketMQ's `indexKeyHashMethod`: `abs(hashCode)`, with `Integer.MIN_VALUE` mapped to 0.
pub fn index_key_hash(topic: &str, key: &str) -> i32 {
    java_hash_concat(&[topic, "#", key])
        .checked_abs()
        .unwrap_or(0)
}

/// The 40-byte header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexHeader {
    /// Store time of the first entry.
    pub begin_timestamp: i64,
    /// Store time of the last entry.
    pub end_timestamp: i64,
    /// CommitLog offset of the first entry.
    pub begin_phy_offset: i64,
    /// CommitLog offset of the last entry.
    pub end_phy_offset: i64,
    /// Incremented per put (RocketMQ counts puts, not distinct slots).
    pub hash_slot_count: i32,
    /// Next entry number (starts at 1).
    pub index_count: i32,
}

impl IndexHeader {
    fn read(b: &[u8]) -> Self {
        let l = |at: usize| i64::from_be_bytes(b[at..at + 8].try_into().expect("8"));
        let i = |at: usize| i32::from_be_bytes(b[at..at + 4].try_into().expect("4"));
        Self {
            begin_timestamp: l(0),
            end_timestamp: l(8),
            begin_phy_offset: l(16),
            end_phy_offset: l(24),
            hash_slot_count: i(32),
            index_count: i(36),
        }
    }

    fn write(&self, b: &mut [u8]) {
        b[0..8].copy_from_slice(&self.begin_timestamp.to_be_bytes());
        b[8..16].copy_from_slice(&self.end_timestamp.to_be_bytes());
        b[16..24].copy_from_slice(&self.begin_phy_offset.to_be_bytes());
        b[24..32].copy_from_slice(&self.end_phy_offset.to_be_bytes());
        b[32..36].copy_from_slice(&self.hash_slot_count.to_be_bytes());
        b[36..40].copy_from_slice(&self.index_count.to_be_bytes());
    }
}

struct IndexFileInner {
    map: MmapMut,
    header: IndexHeader,
}

/// One index file.
pub struct IndexFile {
    path: PathBuf,
    slot_num: u32,
    index_num: u32,
    inner: RwLock<IndexFileInner>,
}

impl std::fmt::Debug for IndexFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexFile")
            .field("path", &self.path)
            .finish()
    }
}

impl IndexFile {
    /// Size of a file with these dimensions.
    pub fn file_size(slot_num: u32, index_num: u32) -> usize {
        HEADER_SIZE + slot_num as usize * SLOT_SIZE + index_num as usize * ENTRY_SIZE
    }

    /// Opens or creates an index file; a new file continues from `prev` (end offset/time of
    /// the previous file), as RocketMQ does.
    pub fn open(
        path: &Path,
        slot_num: u32,
        index_num: u32,
        prev: Option<(i64, i64)>,
    ) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let size = Self::file_size(slot_num, index_num) as u64;
        let fresh = file.metadata()?.len() == 0;
        if file.metadata()?.len() != size {
            if !fresh {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: size differs from maxHashSlotNum/maxIndexNum",
                        path.display()
                    ),
                ));
            }
            file.set_len(size)?;
        }
        // SAFETY: the store's directory lock keeps other processes away from this file.
        let mut map = unsafe { MmapMut::map_mut(&file)? };
        let mut header = IndexHeader::read(&map[..HEADER_SIZE]);
        if fresh {
            header = IndexHeader {
                index_count: 1,
                ..IndexHeader::default()
            };
            if let Some((end_phy, end_ts)) = prev {
                header.begin_phy_offset = end_phy;
                header.end_phy_offset = end_phy;
                header.begin_timestamp = end_ts;
                header.end_timestamp = end_ts;
            }
            header.write(&mut map[..HEADER_SIZE]);
        }
        if header.index_count < 1 || header.index_count as u32 > index_num {
            // Torn header: entries past it would be unreliable; restart the count.
            header.index_count = header.index_count.clamp(1, index_num as i32);
        }
        Ok(Self {
            path: path.to_path_buf(),
            slot_num,
            index_num,
            inner: RwLock::new(IndexFileInner { map, header }),
        })
    }

    /// Path.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Header snapshot.
    pub fn header(&self) -> IndexHeader {
        self.inner.read().header
    }
    /// True when no entry fits.
    pub fn is_full(&self) -> bool {
        self.inner.read().header.index_count as u32 >= self.index_num
    }

    /// Adds `topic#key` → `phy_offset`. False if the file is full.
    pub fn put_key(&self, topic: &str, key: &str, phy_offset: i64, store_timestamp: i64) -> bool {
        let mut g = self.inner.write();
        let IndexFileInner { map, header } = &mut *g;
        if header.index_count as u32 >= self.index_num {
            return false;
        }
        let hash = index_key_hash(topic, key);
        let slot_pos = HEADER_SIZE + (hash as u32 % self.slot_num) as usize * SLOT_SIZE;
        let mut slot_value = i32::from_be_bytes(map[slot_pos..slot_pos + 4].try_into().expect("4"));
        if slot_value <= 0 || slot_value > header.index_count {
            slot_value = 0;
        }
        let time_diff = if header.begin_timestamp <= 0 {
            0
        } else {
            ((store_timestamp - header.begin_timestamp) / 1000).clamp(0, i64::from(i32::MAX)) as i32
        };
        let entry_pos = HEADER_SIZE
            + self.slot_num as usize * SLOT_SIZE
            + header.index_count as usize * ENTRY_SIZE;
        let e = &mut map[entry_pos..entry_pos + ENTRY_SIZE];
        e[0..4].copy_from_slice(&hash.to_be_bytes());
        e[4..12].copy_from_slice(&phy_offset.to_be_bytes());
        e[12..16].copy_from_slice(&time_diff.to_be_bytes());
        e[16..20].copy_from_slice(&slot_value.to_be_bytes());
        map[slot_pos..slot_pos + 4].copy_from_slice(&header.index_count.to_be_bytes());
        if header.index_count <= 1 {
            header.begin_phy_offset = phy_offset;
            header.begin_timestamp = store_timestamp;
        }
        header.hash_slot_count += 1;
        header.index_count += 1;
        header.end_phy_offset = phy_offset;
        header.end_timestamp = store_timestamp;
        header.write(&mut map[..HEADER_SIZE]);
        true
    }

    /// Appends to `out` the offsets of entries for `topic#key` stored within
    /// `[begin, end]` (ms), newest first, until `out` holds `max`.
    pub fn select(
        &self,
        topic: &str,
        key: &str,
        max: usize,
        begin: i64,
        end: i64,
        out: &mut Vec<i64>,
    ) {
        let g = self.inner.read();
        let (map, header) = (&g.map, &g.header);
        let hash = index_key_hash(topic, key);
        let slot_pos = HEADER_SIZE + (hash as u32 % self.slot_num) as usize * SLOT_SIZE;
        let mut next = i32::from_be_bytes(map[slot_pos..slot_pos + 4].try_into().expect("4"));
        if next <= 0 || next >= header.index_count {
            return;
        }
        let mut steps = 0u32;
        while out.len() < max && steps < self.index_num {
            steps += 1;
            let p = HEADER_SIZE + self.slot_num as usize * SLOT_SIZE + next as usize * ENTRY_SIZE;
            let e = &map[p..p + ENTRY_SIZE];
            let h = i32::from_be_bytes(e[0..4].try_into().expect("4"));
            let phy = i64::from_be_bytes(e[4..12].try_into().expect("8"));
            let diff = i32::from_be_bytes(e[12..16].try_into().expect("4"));
            let prev = i32::from_be_bytes(e[16..20].try_into().expect("4"));
            if diff < 0 {
                break;
            }
            let t = header.begin_timestamp + i64::from(diff) * 1000;
            if h == hash && t >= begin && t <= end {
                out.push(phy);
            }
            // prev must point strictly backwards: guards against cycles in a torn file.
            if prev <= 0 || prev >= next || t < begin {
                break;
            }
            next = prev;
        }
    }

    /// Msyncs the file.
    pub fn flush(&self) -> io::Result<()> {
        self.inner.read().map.flush()
    }
}

/// Formats a Unix-ms timestamp as `yyyyMMddHHmmssSSS` (UTC).
pub fn index_file_name(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}{milli:03}",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// All index files, oldest first; the last one takes new keys.
#[derive(Debug)]
pub struct IndexService {
    dir: PathBuf,
    slot_num: u32,
    index_num: u32,
    files: RwLock<Vec<Arc<IndexFile>>>,
}

impl IndexService {
    /// Loads the index files in `dir`.
    pub fn load(dir: &Path, slot_num: u32, index_num: u32) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut names: Vec<_> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|n| n.len() == 17 && n.bytes().all(|b| b.is_ascii_digit()))
            .collect();
        names.sort();
        let files = names
            .iter()
            .map(|n| IndexFile::open(&dir.join(n), slot_num, index_num, None).map(Arc::new))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Self {
            dir: dir.to_path_buf(),
            slot_num,
            index_num,
            files: RwLock::new(files),
        })
    }

    /// Snapshot of the files.
    pub fn files(&self) -> Vec<Arc<IndexFile>> {
        self.files.read().clone()
    }

    fn writable(&self, now_ms: i64) -> io::Result<Arc<IndexFile>> {
        if let Some(last) = self.files.read().last()
            && !last.is_full()
        {
            return Ok(last.clone());
        }
        let mut files = self.files.write();
        let prev = files.last().map(|f| {
            let h = f.header();
            (h.end_phy_offset, h.end_timestamp)
        });
        if let Some(last) = files.last() {
            // The full file will never change again: make it durable now.
            last.flush()?;
        }
        let mut name = index_file_name(now_ms);
        // Names must grow: two rotations within one millisecond (or a clock step back)
        // must not collide with or sort before an existing file.
        if let Some(last) = files
            .last()
            .and_then(|f| f.path().file_name()?.to_str().map(str::to_owned))
            && name <= last
        {
            name = format!(
                "{:017}",
                last.parse::<i64>().expect("index names are digits") + 1
            );
        }
        let f = Arc::new(IndexFile::open(
            &self.dir.join(name),
            self.slot_num,
            self.index_num,
            prev,
        )?);
        files.push(f.clone());
        Ok(f)
    }

    /// Indexes one key of a message, rotating to a new file when the current one is full.
    pub fn put_key(
        &self,
        topic: &str,
        key: &str,
        phy_offset: i64,
        store_timestamp: i64,
    ) -> io::Result<()> {
        if key.is_empty() {
            return Ok(());
        }
        loop {
            let f = self.writable(store_timestamp)?;
            if f.put_key(topic, key, phy_offset, store_timestamp) {
                return Ok(());
            }
        }
    }

    /// Candidate CommitLog offsets of messages with `topic#key` stored in `[begin, end]`,
    /// newest first, deduplicated, at most `max`.
    pub fn query(&self, topic: &str, key: &str, max: usize, begin: i64, end: i64) -> Vec<i64> {
        let mut out = Vec::new();
        for f in self.files().iter().rev() {
            let h = f.header();
            let overlaps =
                h.index_count > 1 && begin <= h.end_timestamp && end >= h.begin_timestamp;
            if overlaps {
                f.select(topic, key, max, begin, end, &mut out);
            }
            if out.len() >= max {
                break;
            }
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|o| seen.insert(*o));
        out
    }

    /// Msyncs the current file.
    pub fn flush(&self) -> io::Result<()> {
        if let Some(f) = self.files.read().last() {
            f.flush()?;
        }
        Ok(())
    }

    /// Deletes leading files whose entries all point below `commitlog_min` (never the
    /// current file, never one a query holds).
    pub fn delete_below(&self, commitlog_min: i64) -> io::Result<usize> {
        let mut files = self.files.write();
        let mut n = 0;
        while files.len() > 1
            && Arc::strong_count(&files[0]) == 1
            && files[0].header().end_phy_offset < commitlog_min
        {
            let f = files.remove(0);
            std::fs::remove_file(f.path())?;
            n += 1;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_name() {
        // "topic#key1".hashCode() == -889947002 in Java.
        assert_eq!(java_hash_concat(&["topic", "#", "key1"]), -889_947_002);
        assert_eq!(index_key_hash("topic", "key1"), 889_947_002);
        assert_eq!(index_file_name(0), "19700101000000000");
        assert_eq!(index_file_name(1_700_000_000_123), "20231114221320123");
        assert_eq!(index_file_name(951_782_400_000), "20000229000000000");
    }

    #[test]
    fn layout_bytes_exact() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("20240101000000000");
        let f = IndexFile::open(&p, 10, 4, None).unwrap();
        assert!(f.put_key("topic", "key1", 4096, 1_000_000));
        assert!(f.put_key("topic", "key1", 8192, 1_003_500));
        f.flush().unwrap();
        let b = std::fs::read(&p).unwrap();
        assert_eq!(b.len(), 40 + 40 + 80);
        let h = IndexHeader::read(&b);
        assert_eq!(
            h,
            IndexHeader {
                begin_timestamp: 1_000_000,
                end_timestamp: 1_003_500,
                begin_phy_offset: 4096,
                end_phy_offset: 8192,
                hash_slot_count: 2,
                index_count: 3
            }
        );
        let slot = 889_947_002 % 10; // = 2
        let sp = 40 + slot * 4;
        assert_eq!(&b[sp..sp + 4], &2i32.to_be_bytes(), "slot -> newest entry");
        let e2 = 40 + 40 + 2 * 20;
        assert_eq!(&b[e2..e2 + 4], &889_947_002i32.to_be_bytes());
        assert_eq!(&b[e2 + 4..e2 + 12], &8192i64.to_be_bytes());
        assert_eq!(&b[e2 + 12..e2 + 16], &3i32.to_be_bytes(), "3.5 s -> 3");
        assert_eq!(&b[e2 + 16..e2 + 20], &1i32.to_be_bytes(), "prev entry");
        let mut out = Vec::new();
        f.select("topic", "key1", 10, 0, i64::MAX, &mut out);
        assert_eq!(out, vec![8192, 4096]);
        out.clear();
        f.select("topic", "key1", 10, 1_002_000, i64::MAX, &mut out);
        assert_eq!(out, vec![8192]);
        out.clear();
        f.select("topic", "other", 10, 0, i64::MAX, &mut out);
        assert!(out.is_empty());
        // Full at maxIndexNum - 1 entries (count starts at 1).
        assert!(f.put_key("t", "x", 1, 1_004_000));
        assert!(f.is_full());
        assert!(!f.put_key("t", "y", 1, 1_004_000));
    }

    #[test]
    fn service_rotates_queries_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let s = IndexService::load(dir.path(), 7, 5).unwrap();
        for i in 0..10i64 {
            s.put_key("T", &format!("k{}", i % 3), i * 100, 1_000_000 + i * 1000)
                .unwrap();
        }
        // 4 entries per file -> 3 files.
        assert_eq!(s.files().len(), 3);
        assert_eq!(s.query("T", "k0", 10, 0, i64::MAX), vec![900, 600, 300, 0]);
        assert_eq!(s.query("T", "k1", 2, 0, i64::MAX), vec![700, 400]);
        assert_eq!(s.query("T", "k1", 10, 1_004_000, 1_007_000), vec![700, 400]);
        drop(s);
        let s = IndexService::load(dir.path(), 7, 5).unwrap();
        assert_eq!(s.query("T", "k0", 10, 0, i64::MAX), vec![900, 600, 300, 0]);
        assert_eq!(s.delete_below(500).unwrap(), 1);
        assert_eq!(s.query("T", "k0", 10, 0, i64::MAX), vec![900, 600]);
    }
}
