//! The epoch file (`<store>/epochFileCheckpoint`, with `.bak`): which master epoch wrote
//! which stretch of the CommitLog. RocketMQ's text layout: the entry count, the CRC32 of
//! the entry lines (masked non-negative, decimal; 0 = unchecked), then one `epoch-start`
//! line per entry, oldest first. An entry ends where the next starts; the last is open.
//!
//! Replicas compare epoch lists to find where their logs stop agreeing
//! ([`consistent_point`]): the newest epoch both hold with the same start, up to the
//! shorter end. Everything after it on the replica is a diverged tail.

use std::io;
use std::path::{Path, PathBuf};

use rocketmq_common::controller::EpochEntry;

/// One stored entry: the epoch and the CommitLog offset its first record was written at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch {
    /// Master epoch.
    pub epoch: i32,
    /// First CommitLog offset of the epoch.
    pub start: i64,
}

/// The epoch file and its entries.
#[derive(Debug)]
pub struct EpochFile {
    path: PathBuf,
    entries: Vec<Epoch>,
}

fn entry_text(entries: &[Epoch]) -> String {
    entries
        .iter()
        .map(|e| format!("{}-{}\n", e.epoch, e.start))
        .collect()
}

fn parse(text: &str) -> Result<Vec<Epoch>, String> {
    let mut lines = text.lines();
    let count: usize = lines
        .next()
        .ok_or("empty")?
        .trim()
        .parse()
        .map_err(|_| "bad count")?;
    let crc: u32 = lines
        .next()
        .ok_or("no checksum")?
        .trim()
        .parse()
        .map_err(|_| "bad checksum")?;
    let mut entries = Vec::with_capacity(count);
    for line in lines.take(count) {
        let (e, s) = line.trim().split_once('-').ok_or("bad entry")?;
        entries.push(Epoch {
            epoch: e.parse().map_err(|_| "bad epoch")?,
            start: s.parse().map_err(|_| "bad start offset")?,
        });
    }
    if entries.len() != count {
        return Err("fewer entries than counted".into());
    }
    if crc != 0 && crc32fast::hash(entry_text(&entries).as_bytes()) & 0x7FFF_FFFF != crc {
        return Err("checksum mismatch".into());
    }
    Ok(entries)
}

impl EpochFile {
    /// Loads the file (the `.bak` copy if the file is missing or damaged).
    pub fn load(path: &Path) -> io::Result<Self> {
        let bak = backup_path(path);
        let mut entries = Vec::new();
        for p in [path, bak.as_path()] {
            match std::fs::read_to_string(p) {
                Ok(text) => match parse(&text) {
                    Ok(e) => {
                        entries = e;
                        break;
                    }
                    Err(reason) => {
                        tracing::warn!(file = %p.display(), reason, "epoch file unreadable")
                    }
                },
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// Entries, oldest first.
    pub fn entries(&self) -> &[Epoch] {
        &self.entries
    }

    /// Entries with their ends (the next start; `i64::MAX` for the last).
    pub fn ranges(&self) -> Vec<EpochEntry> {
        ranges(&self.entries, i64::MAX)
    }

    /// The newest entry.
    pub fn last(&self) -> Option<Epoch> {
        self.entries.last().copied()
    }

    /// The entry whose range holds `offset`, with the range's end.
    pub fn find(&self, offset: i64) -> Option<EpochEntry> {
        self.ranges()
            .into_iter()
            .find(|e| e.start_offset <= offset && offset < e.end_offset)
    }

    /// Appends an entry; refused (false) unless the epoch is newer and the start not
    /// earlier than the last entry's.
    pub fn append(&mut self, epoch: i32, start: i64) -> io::Result<bool> {
        if let Some(last) = self.last()
            && (epoch <= last.epoch || start < last.start)
        {
            return Ok(false);
        }
        self.entries.push(Epoch { epoch, start });
        self.persist()?;
        Ok(true)
    }

    /// Drops entries starting at or after `offset` (the log was cut there).
    pub fn truncate_from_offset(&mut self, offset: i64) -> io::Result<()> {
        let before = self.entries.len();
        self.entries.retain(|e| e.start < offset);
        if self.entries.len() != before {
            self.persist()?;
        }
        Ok(())
    }

    /// Drops entries of `epoch` and newer.
    pub fn truncate_from_epoch(&mut self, epoch: i32) -> io::Result<()> {
        let before = self.entries.len();
        self.entries.retain(|e| e.epoch < epoch);
        if self.entries.len() != before {
            self.persist()?;
        }
        Ok(())
    }

    /// Drops entries that end at or below `offset` (their CommitLog files are gone),
    /// always keeping the newest.
    pub fn truncate_before_offset(&mut self, offset: i64) -> io::Result<()> {
        let ranges = self.ranges();
        let keep_from = ranges
            .iter()
            .position(|r| r.end_offset > offset)
            .unwrap_or(ranges.len().saturating_sub(1));
        if keep_from > 0 {
            self.entries.drain(..keep_from);
            self.persist()?;
        }
        Ok(())
    }

    /// Writes the file: the old content is copied to `.bak`, the new one replaces the
    /// file atomically.
    fn persist(&self) -> io::Result<()> {
        let body = entry_text(&self.entries);
        let crc = crc32fast::hash(body.as_bytes()) & 0x7FFF_FFFF;
        let text = format!("{}\n{crc}\n{body}", self.entries.len());
        if self.path.exists() {
            std::fs::copy(&self.path, backup_path(&self.path))?;
        }
        rocketmq_common::persist::write_file_atomically(&self.path, text.as_bytes())
    }
}

fn backup_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".bak");
    PathBuf::from(s)
}

/// Entries with ends; the last ends at `last_end`.
pub fn ranges(entries: &[Epoch], last_end: i64) -> Vec<EpochEntry> {
    entries
        .iter()
        .enumerate()
        .map(|(i, e)| EpochEntry {
            epoch: e.epoch,
            start_offset: e.start,
            end_offset: entries.get(i + 1).map_or(last_end, |n| n.start),
        })
        .collect()
}

/// Where a replica's log stops agreeing with its master's: walking the replica's epochs
/// from the newest, the first one the master holds with the same start gives
/// `min(replica's end of it, master's end of it)`. `None` when they share no epoch.
pub fn consistent_point(
    local: &[Epoch],
    local_max: i64,
    master: &[Epoch],
    master_max: i64,
) -> Option<i64> {
    let local = ranges(local, local_max);
    let master = ranges(master, master_max);
    local.iter().rev().find_map(|l| {
        master
            .iter()
            .find(|m| m.epoch == l.epoch && m.start_offset == l.start_offset)
            .map(|m| l.end_offset.min(m.end_offset))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(epoch: i32, start: i64) -> Epoch {
        Epoch { epoch, start }
    }

    #[test]
    fn file_layout_is_rocketmq_s_and_survives_a_damaged_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("epochFileCheckpoint");
        let mut f = EpochFile::load(&path).unwrap();
        assert!(f.append(1, 0).unwrap());
        assert!(f.append(3, 4096).unwrap());
        assert!(!f.append(2, 9000).unwrap(), "older epoch refused");
        assert!(!f.append(4, 100).unwrap(), "earlier start refused");
        let text = std::fs::read_to_string(&path).unwrap();
        let crc = crc32fast::hash(b"1-0\n3-4096\n") & 0x7FFF_FFFF;
        assert_eq!(text, format!("2\n{crc}\n1-0\n3-4096\n"));
        // The backup holds the previous content; a damaged file falls back to it.
        std::fs::write(&path, "2\n12345\n1-0\n3-4096\n").unwrap();
        let f = EpochFile::load(&path).unwrap();
        assert_eq!(f.entries(), &[e(1, 0)]);
        assert_eq!(
            f.ranges(),
            vec![EpochEntry {
                epoch: 1,
                start_offset: 0,
                end_offset: i64::MAX
            }]
        );
    }

    #[test]
    fn truncation_keeps_what_the_log_still_holds() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = EpochFile::load(&dir.path().join("epochs")).unwrap();
        for (ep, start) in [(1, 0), (2, 100), (4, 250)] {
            f.append(ep, start).unwrap();
        }
        assert_eq!(f.find(120).unwrap().epoch, 2);
        assert_eq!(f.find(120).unwrap().end_offset, 250);
        f.truncate_from_offset(250).unwrap();
        assert_eq!(f.last(), Some(e(2, 100)));
        f.truncate_before_offset(100).unwrap();
        assert_eq!(f.entries(), &[e(2, 100)]);
        f.truncate_from_epoch(2).unwrap();
        assert!(f.entries().is_empty());
        let reloaded = EpochFile::load(&dir.path().join("epochs")).unwrap();
        assert!(reloaded.entries().is_empty());
    }

    #[test]
    fn consistent_point_cuts_the_diverged_tail() {
        // Old master: epochs 1, 2 and a tail of 2 nobody else got.
        let old = [e(1, 0), e(2, 100)];
        // New master took over in epoch 3 at 180.
        let new = [e(1, 0), e(2, 100), e(3, 180)];
        assert_eq!(consistent_point(&old, 260, &new, 400), Some(180));
        // A slave that is merely behind keeps everything.
        assert_eq!(consistent_point(&[e(1, 0)], 50, &new, 400), Some(50));
        // A replica with a newer epoch the master lacks goes back to the shared one.
        assert_eq!(
            consistent_point(&[e(1, 0), e(5, 70)], 90, &[e(1, 0), e(6, 60)], 80),
            Some(60)
        );
        // Nothing shared.
        assert_eq!(consistent_point(&[e(7, 0)], 10, &new, 400), None);
    }
}
