//! Fixed-size memory-mapped files and ordered queues of them (CommitLog segments,
//! ConsumeQueue files).
//!
//! Invariants:
//! * Each file has exactly one appender at a time (serialised by `append_lock`); bytes are
//!   written only at or beyond `wrote_position` and become visible to readers when the
//!   position is published with `Release`. Readers only touch bytes below the position
//!   they loaded with `Acquire`, so no byte is read while it is being written.
//! * Bytes below `wrote_position` are never rewritten while the file is shared; only
//!   recovery ([`MappedFile::truncate_to`], which needs `&mut`) and a replica cutting a
//!   diverged tail ([`MappedFile::truncate_shared`]: zeroes, never unmaps) move it back.
//! * A file is named after the global offset of its first byte, 20 digits zero-padded.
//! * A file is deleted only when no reader holds an `Arc` to it (checked under the queue's
//!   write lock, where no new reader can appear).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};

use memmap2::MmapRaw;
use parking_lot::{Mutex, RwLock};

/// OS page size assumed for flush accounting and hole punching.
pub const PAGE_SIZE: usize = 4096;

/// One memory-mapped file of fixed size.
#[derive(Debug)]
pub struct MappedFile {
    path: PathBuf,
    file: File,
    map: MmapRaw,
    file_from_offset: i64,
    size: usize,
    wrote_position: AtomicUsize,
    flushed_position: AtomicUsize,
    /// Store timestamp of the last record appended (0 if none); for checkpoints and
    /// retention.
    last_store_timestamp: AtomicI64,
    append_lock: Mutex<()>,
    /// Bytes from 0 already faulted in by [`MappedFile::prefault_ahead`].
    prefaulted: AtomicUsize,
}

/// The file name for a file starting at `offset`.
pub fn file_name(offset: i64) -> String {
    format!("{offset:020}")
}

impl MappedFile {
    /// Opens (creating and sizing if needed) the file at `dir/<20-digit offset>`.
    pub fn open(dir: &Path, file_from_offset: i64, size: usize) -> io::Result<Self> {
        let path = dir.join(file_name(file_from_offset));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let len = file.metadata()?.len();
        if len != size as u64 {
            if len > size as u64 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{} is {len} bytes, larger than the configured {size}",
                        path.display()
                    ),
                ));
            }
            // Sparse: the file takes no disk space until written.
            file.set_len(size as u64)?;
        }
        let map = MmapRaw::map_raw(&file)?;
        Ok(Self {
            path,
            file,
            map,
            file_from_offset,
            size,
            wrote_position: AtomicUsize::new(0),
            flushed_position: AtomicUsize::new(0),
            last_store_timestamp: AtomicI64::new(0),
            append_lock: Mutex::new(()),
            prefaulted: AtomicUsize::new(0),
        })
    }

    /// Global offset of the first byte.
    pub fn file_from_offset(&self) -> i64 {
        self.file_from_offset
    }
    /// File size.
    pub fn size(&self) -> usize {
        self.size
    }
    /// Path on disk.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Bytes written (visible to readers).
    pub fn wrote_position(&self) -> usize {
        self.wrote_position.load(Ordering::Acquire)
    }
    /// Bytes known durable.
    pub fn flushed_position(&self) -> usize {
        self.flushed_position.load(Ordering::Acquire)
    }
    /// True when no more bytes fit.
    pub fn is_full(&self) -> bool {
        self.wrote_position() >= self.size
    }
    /// Store timestamp of the last appended record.
    pub fn last_store_timestamp(&self) -> i64 {
        self.last_store_timestamp.load(Ordering::Acquire)
    }
    /// Records the store timestamp of the last appended record.
    pub fn set_last_store_timestamp(&self, ts: i64) {
        self.last_store_timestamp.store(ts, Ordering::Release);
    }

    /// Appends `len` bytes produced by `fill` at the write position, publishes them and
    /// returns the position they were written at. `None` if they do not fit.
    pub fn append_with<R>(
        &self,
        len: usize,
        fill: impl FnOnce(&mut [u8]) -> R,
    ) -> Option<(usize, R)> {
        let _guard = self.append_lock.lock();
        let pos = self.wrote_position.load(Ordering::Acquire);
        if pos + len > self.size {
            return None;
        }
        // SAFETY: `pos..pos+len` is inside the mapping, at or beyond the published write
        // position, so no reader looks at it, and `append_lock` makes us its only writer.
        let buf = unsafe { std::slice::from_raw_parts_mut(self.map.as_mut_ptr().add(pos), len) };
        let r = fill(buf);
        self.wrote_position.store(pos + len, Ordering::Release);
        Some((pos, r))
    }

    /// Faults in pages up to `ahead` bytes past the write position (MADV_POPULATE_WRITE), so
    /// the appender's copies hit mapped pages instead of taking a page fault (allocation +
    /// zeroing) every 4 KiB. Called from a background thread; contents are not changed.
    /// Returns false when the kernel does not support it.
    pub fn prefault_ahead(&self, ahead: usize, chunk: usize) -> bool {
        let target = (self.wrote_position() + ahead).min(self.size);
        let mut at = self
            .prefaulted
            .load(Ordering::Acquire)
            .max(self.wrote_position() / PAGE_SIZE * PAGE_SIZE);
        while at < target {
            let len = chunk.min(self.size - at);
            if self
                .map
                .advise_range(memmap2::Advice::PopulateWrite, at, len)
                .is_err()
            {
                return false;
            }
            at += len;
            self.prefaulted.store(at, Ordering::Release);
        }
        true
    }

    /// Marks the rest of the file as used (after a BLANK marker was appended).
    pub fn mark_full(&self) {
        let _guard = self.append_lock.lock();
        self.wrote_position.store(self.size, Ordering::Release);
    }

    /// The published bytes `pos..pos+len`, or `None` if any of them is not yet written.
    pub fn read(&self, pos: usize, len: usize) -> Option<&[u8]> {
        let wrote = self.wrote_position();
        if pos.checked_add(len)? > wrote {
            return None;
        }
        // SAFETY: the range is inside the mapping and below the published write position;
        // such bytes are never written again while the file is shared (see module docs).
        Some(unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(pos), len) })
    }

    /// Bytes `pos..pos+len` that were published when the caller checked them (through
    /// [`read`](Self::read)). A runtime truncation may since have zeroed them, but the
    /// mapping lives as long as the file, so the view stays valid memory.
    pub fn view(&self, pos: usize, len: usize) -> &[u8] {
        assert!(pos + len <= self.size, "view past the end of the file");
        // SAFETY: inside the mapping, which lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(pos), len) }
    }

    /// All published bytes from `pos` to the write position.
    pub fn read_from(&self, pos: usize) -> Option<&[u8]> {
        let wrote = self.wrote_position();
        if pos > wrote {
            return None;
        }
        self.read(pos, wrote - pos)
    }

    /// Raw view of the whole file, including unpublished bytes. Only for recovery, which
    /// needs `&mut self` and therefore runs before anything else can append.
    pub fn raw_contents(&mut self) -> &[u8] {
        // SAFETY: exclusive access (`&mut self`): nobody writes concurrently.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr(), self.size) }
    }

    /// Msyncs everything written but not yet flushed; returns the new flushed position.
    pub fn flush(&self) -> io::Result<usize> {
        let wrote = self.wrote_position();
        let flushed = self.flushed_position();
        if wrote > flushed {
            // Page-align the start: msync needs it and the first page may be partly flushed.
            let start = flushed - flushed % PAGE_SIZE;
            self.map.flush_range(start, wrote - start)?;
            self.flushed_position.fetch_max(wrote, Ordering::AcqRel);
        }
        Ok(wrote)
    }

    /// Writes back every dirty page of the file, whoever dirtied it (after a process crash
    /// the page cache can still hold the dead process's unwritten pages).
    pub fn sync_file(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Number of written-but-unflushed pages.
    pub fn dirty_pages(&self) -> usize {
        let w = self.wrote_position();
        let f = self.flushed_position();
        w.div_ceil(PAGE_SIZE).saturating_sub(f / PAGE_SIZE)
    }

    /// Sets the write/flush positions after loading (recovery decides them).
    pub fn set_positions(&mut self, wrote: usize) {
        self.wrote_position.store(wrote, Ordering::Release);
        self.flushed_position.store(wrote, Ordering::Release);
    }

    /// Discards everything from `pos` on: zeroes the bytes durably (so a stale but intact
    /// record beyond a torn one can never be mistaken for valid data by a later recovery)
    /// and moves the positions back. Needs `&mut self`: recovery only.
    pub fn truncate_to(&mut self, pos: usize) -> io::Result<()> {
        let pos = pos.min(self.size);
        self.zero_durably(pos, self.size)?;
        self.set_positions(pos);
        Ok(())
    }

    /// Runtime truncation while readers may hold the file: lowers the positions to `pos`,
    /// then zeroes the bytes after it durably. A reader still copying those bytes sees
    /// zeros (and fails its CRC check), never freed memory: the mapping lives on.
    pub fn truncate_shared(&self, pos: usize) -> io::Result<()> {
        let _guard = self.append_lock.lock();
        let old = self.wrote_position.load(Ordering::Acquire);
        let pos = pos.min(old);
        self.wrote_position.store(pos, Ordering::Release);
        self.flushed_position.fetch_min(pos, Ordering::AcqRel);
        if old > pos {
            self.zero_durably(pos, old)?;
        }
        Ok(())
    }

    /// Zeroes `[pos, end)` on disk: the partial first page through the mapping, whole pages
    /// by punching a hole (which also frees their blocks).
    fn zero_durably(&self, pos: usize, end: usize) -> io::Result<()> {
        let page_end = (pos.div_ceil(PAGE_SIZE) * PAGE_SIZE).min(end);
        if page_end > pos {
            // SAFETY: inside the mapping and past the published write position (callers
            // lowered it or hold `&mut self`), so no appender writes here meanwhile.
            unsafe {
                std::ptr::write_bytes(self.map.as_mut_ptr().add(pos), 0, page_end - pos);
            }
            let start = pos - pos % PAGE_SIZE;
            self.map.flush_range(start, page_end - start)?;
        }
        if end > page_end {
            zero_range(&self.file, &self.map, page_end, end - page_end)?;
        }
        Ok(())
    }

    /// Deletes the file from disk (the mapping lives until the last `Arc` drops).
    pub fn remove_file(&self) -> io::Result<()> {
        std::fs::remove_file(&self.path)
    }

    /// Last modification time of the file.
    pub fn modified(&self) -> io::Result<std::time::SystemTime> {
        self.file.metadata()?.modified()
    }
}

/// Zeroes `[off, off+len)` of a mapped file: punches a hole (instant, frees the blocks)
/// and falls back to writing zeros through the mapping where that is unsupported.
fn zero_range(file: &File, map: &MmapRaw, off: usize, len: usize) -> io::Result<()> {
    // SAFETY: plain syscall on an owned fd.
    let rc = unsafe {
        libc::fallocate(
            file.as_raw_fd(),
            libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
            off as libc::off_t,
            len as libc::off_t,
        )
    };
    if rc == 0 {
        return file.sync_data();
    }
    const CHUNK: usize = 1 << 20;
    let mut at = off;
    while at < off + len {
        let n = CHUNK.min(off + len - at);
        // SAFETY: range inside the map and past the published write position.
        unsafe { std::ptr::write_bytes(map.as_mut_ptr().add(at), 0, n) };
        at += n;
    }
    map.flush_range(off, len)
}

/// Drops and deletes the files wholly at or after `offset`, but keeps the first file even
/// when it starts exactly at `offset`, so the queue remembers where the stream continues.
fn drop_files_from(files: &mut Vec<Arc<MappedFile>>, offset: i64) -> io::Result<()> {
    while let Some(last) = files.last() {
        let from = last.file_from_offset();
        if from > offset || (from == offset && files.len() > 1) {
            let f = files.pop().expect("non-empty");
            f.remove_file()?;
        } else {
            break;
        }
    }
    Ok(())
}

/// An ordered run of equally sized mapped files forming one logical byte stream.
#[derive(Debug)]
pub struct MappedFileQueue {
    dir: PathBuf,
    file_size: usize,
    files: RwLock<Vec<Arc<MappedFile>>>,
}

impl MappedFileQueue {
    /// Loads every file in `dir` (creating `dir`); all positions start at "full" and
    /// recovery sets the real ones.
    pub fn load(dir: &Path, file_size: usize) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut offsets = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.len() == 20 && name.bytes().all(|b| b.is_ascii_digit()) {
                offsets.push(
                    name.parse::<i64>()
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
                );
            }
        }
        offsets.sort_unstable();
        let mut files = Vec::with_capacity(offsets.len());
        for (i, off) in offsets.iter().enumerate() {
            if off % file_size as i64 != 0 || (i > 0 && *off != offsets[i - 1] + file_size as i64) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "{}: file {} does not follow its predecessor (file size {file_size})",
                        dir.display(),
                        file_name(*off)
                    ),
                ));
            }
            let mut f = MappedFile::open(dir, *off, file_size)?;
            f.set_positions(file_size);
            files.push(Arc::new(f));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            file_size,
            files: RwLock::new(files),
        })
    }

    /// Directory of the files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// Size of each file.
    pub fn file_size(&self) -> usize {
        self.file_size
    }
    /// Snapshot of the files.
    pub fn files(&self) -> Vec<Arc<MappedFile>> {
        self.files.read().clone()
    }
    /// Number of files.
    pub fn len(&self) -> usize {
        self.files.read().len()
    }
    /// True when there are no files.
    pub fn is_empty(&self) -> bool {
        self.files.read().is_empty()
    }
    /// The last file.
    pub fn last(&self) -> Option<Arc<MappedFile>> {
        self.files.read().last().cloned()
    }
    /// The first file.
    pub fn first(&self) -> Option<Arc<MappedFile>> {
        self.files.read().first().cloned()
    }

    /// Creates the file starting at `offset` and appends it to the queue. `offset` must be
    /// the end of the last file (or any multiple of the file size when the queue is empty).
    pub fn create_file(&self, offset: i64) -> io::Result<Arc<MappedFile>> {
        let mut files = self.files.write();
        if let Some(last) = files.last() {
            let expect = last.file_from_offset() + self.file_size as i64;
            if offset != expect {
                return Err(io::Error::other(format!(
                    "{}: new file at {offset}, expected {expect}",
                    self.dir.display()
                )));
            }
        }
        let f = Arc::new(MappedFile::open(&self.dir, offset, self.file_size)?);
        // Make the new directory entry durable: flushing the file's data later does not
        // persist its name, and a SYNC_FLUSH ack must not depend on a file that could
        // vanish from the directory after a power loss.
        File::open(&self.dir)?.sync_all()?;
        files.push(f.clone());
        Ok(f)
    }

    /// The file holding global `offset`.
    pub fn find(&self, offset: i64) -> Option<Arc<MappedFile>> {
        let files = self.files.read();
        let first = files.first()?;
        if offset < first.file_from_offset() {
            return None;
        }
        let idx = ((offset - first.file_from_offset()) / self.file_size as i64) as usize;
        files.get(idx).cloned()
    }

    /// Offset of the first byte still on disk.
    pub fn min_offset(&self) -> i64 {
        self.files
            .read()
            .first()
            .map_or(0, |f| f.file_from_offset())
    }

    /// Offset just past the last written byte.
    pub fn max_offset(&self) -> i64 {
        self.files
            .read()
            .last()
            .map_or(0, |f| f.file_from_offset() + f.wrote_position() as i64)
    }

    /// Offset just past the last flushed byte.
    pub fn flushed_offset(&self) -> i64 {
        self.files
            .read()
            .last()
            .map_or(0, |f| f.file_from_offset() + f.flushed_position() as i64)
    }

    /// Flushes every file with unflushed bytes, oldest first (so the durable prefix only
    /// ever grows contiguously). Returns the new flushed offset.
    pub fn flush(&self) -> io::Result<i64> {
        let files = self.files();
        let mut flushed = self.min_offset();
        for f in files.iter() {
            if f.flushed_position() < f.wrote_position() {
                f.flush()?;
            }
            flushed = f.file_from_offset() + f.flushed_position() as i64;
        }
        Ok(flushed)
    }

    /// Total dirty pages across files.
    pub fn dirty_pages(&self) -> usize {
        self.files.read().iter().map(|f| f.dirty_pages()).sum()
    }

    /// Recovery only: truncates the stream at `offset`, deleting later files and zeroing
    /// the tail of the file containing it. Fails if a file is still shared.
    pub fn truncate(&self, offset: i64) -> io::Result<()> {
        let mut files = self.files.write();
        drop_files_from(&mut files, offset)?;
        if let Some(last) = files.last_mut() {
            let pos = (offset - last.file_from_offset()) as usize;
            let f = Arc::get_mut(last)
                .ok_or_else(|| io::Error::other("cannot truncate a mapped file that is in use"))?;
            f.truncate_to(pos)?;
        }
        Ok(())
    }

    /// Runtime truncation at global `offset` while readers may hold files: later files are
    /// dropped from the queue and deleted (readers keep their mappings), the file holding
    /// `offset` is cut with [`MappedFile::truncate_shared`].
    pub fn truncate_shared(&self, offset: i64) -> io::Result<()> {
        let mut files = self.files.write();
        drop_files_from(&mut files, offset)?;
        if let Some(last) = files.last() {
            last.truncate_shared((offset - last.file_from_offset()).max(0) as usize)?;
        }
        Ok(())
    }

    /// Deletes the first file if `pred` holds for it and no reader holds it; returns whether
    /// it was deleted. Never deletes the last file (the write head).
    pub fn delete_first_if(&self, pred: impl FnOnce(&MappedFile) -> bool) -> io::Result<bool> {
        let mut files = self.files.write();
        if files.len() < 2 {
            return Ok(false);
        }
        // strong_count == 1: only the queue holds it; under the write lock nobody can clone
        // it, so no reader is using (or can start using) this segment.
        if Arc::strong_count(&files[0]) != 1 || !pred(&files[0]) {
            return Ok(false);
        }
        let f = files.remove(0);
        f.remove_file()?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_read_flush_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = MappedFile::open(dir.path(), 8192, 8192).unwrap();
        assert_eq!(f.path().file_name().unwrap(), "00000000000000008192");
        let (pos, ()) = f.append_with(5, |b| b.copy_from_slice(b"hello")).unwrap();
        assert_eq!(pos, 0);
        assert_eq!(f.read(0, 5).unwrap(), b"hello");
        assert!(
            f.read(0, 6).is_none(),
            "unpublished bytes must not be readable"
        );
        assert!(f.append_with(8188, |_| ()).is_none());
        assert_eq!(f.dirty_pages(), 1);
        f.flush().unwrap();
        assert_eq!(f.flushed_position(), 5);
        f.append_with(5000, |b| b.fill(7)).unwrap();
        f.truncate_to(3).unwrap();
        assert_eq!(f.wrote_position(), 3);
        let raw = f.raw_contents();
        assert_eq!(&raw[..3], b"hel");
        assert!(raw[3..].iter().all(|b| *b == 0), "tail must be zeroed");
        // The zeros are on disk, not only in this mapping.
        let on_disk = std::fs::read(f.path()).unwrap();
        assert!(on_disk[3..].iter().all(|b| *b == 0));
    }

    #[test]
    fn queue_find_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let q = MappedFileQueue::load(dir.path(), 4096).unwrap();
        assert!(q.is_empty());
        q.create_file(0).unwrap();
        assert!(q.create_file(8192).is_err(), "gap between files");
        let f1 = q.create_file(4096).unwrap();
        assert_eq!(q.find(5000).unwrap().file_from_offset(), 4096);
        assert!(q.find(9000).is_none());
        // A reader holds the first file: it must survive.
        let held = q.first().unwrap();
        assert!(!q.delete_first_if(|_| true).unwrap());
        drop(held);
        assert!(q.delete_first_if(|_| true).unwrap());
        assert_eq!(q.min_offset(), 4096);
        // The last file is never deleted.
        drop(f1);
        assert!(!q.delete_first_if(|_| true).unwrap());
        drop(q);
        let q = MappedFileQueue::load(dir.path(), 4096).unwrap();
        assert_eq!(q.len(), 1);
        assert_eq!(q.min_offset(), 4096);
    }
}
