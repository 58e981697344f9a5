//! The timer wheel (`store/timerwheel`): one 32-byte slot per precision step, in RocketMQ's
//! layout, memory-mapped so a million pending messages cost page cache, not heap.
//!
//! Slot: `i64 time/precision | i64 firstPos | i64 lastPos | i32 num | i32 magic`, big-endian.
//! A slot heads a linked list of timer-log units (lastPos back through each unit's prevPos).
//! Index = `(time / precision) % SLOTS`; a slot whose stored time differs from the asked one
//! is empty (it belongs to an earlier turn of the wheel).

use std::fs::OpenOptions;
use std::io;
use std::path::Path;

use memmap2::MmapMut;

/// Slots in one turn (seven days of one-second steps, whatever the precision).
pub const SLOTS_TOTAL: i64 = 7 * 86_400;
/// Slots in the file: two turns, as Java lays it out.
pub const FILE_SLOTS: i64 = 2 * SLOTS_TOTAL;
/// Bytes per slot.
pub const SLOT_SIZE: usize = 32;

/// One slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Slot time in ms (a multiple of the precision); -1 when empty.
    pub time_ms: i64,
    /// Timer-log position of the first unit.
    pub first_pos: i64,
    /// Timer-log position of the last unit.
    pub last_pos: i64,
    /// Units linked (deletes count negative).
    pub num: i32,
}

impl Slot {
    /// An empty slot.
    pub const EMPTY: Slot = Slot {
        time_ms: -1,
        first_pos: -1,
        last_pos: -1,
        num: 0,
    };

    /// Whether the slot has no units.
    pub fn is_empty(&self) -> bool {
        self.last_pos < 0
    }
}

/// The mapped wheel.
#[derive(Debug)]
pub struct TimerWheel {
    map: MmapMut,
    precision_ms: i64,
}

impl TimerWheel {
    /// Opens or creates the wheel file (sparse until written).
    pub fn open(path: &Path, precision_ms: i64) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let want = FILE_SLOTS as u64 * SLOT_SIZE as u64;
        let len = file.metadata()?.len();
        if len == 0 {
            file.set_len(want)?;
        } else if len != want {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is {len} bytes; a timer wheel is {want}", path.display()),
            ));
        }
        // SAFETY: the broker holds the store directory lock, so no other process maps the
        // file; this mapping is only touched through `&mut self`.
        let map = unsafe { MmapMut::map_mut(&file)? };
        Ok(Self { map, precision_ms })
    }

    fn index(&self, time_ms: i64) -> usize {
        ((time_ms / self.precision_ms).rem_euclid(FILE_SLOTS)) as usize * SLOT_SIZE
    }

    fn i64_at(&self, at: usize) -> i64 {
        i64::from_be_bytes(self.map[at..at + 8].try_into().expect("8 bytes"))
    }

    /// The slot for `time_ms` (empty if it holds another turn's time).
    pub fn get(&self, time_ms: i64) -> Slot {
        let at = self.index(time_ms);
        let stored = self.i64_at(at);
        if stored != time_ms / self.precision_ms {
            return Slot::EMPTY;
        }
        let last_pos = self.i64_at(at + 16);
        if last_pos < 0 && self.i64_at(at + 8) < 0 {
            return Slot::EMPTY;
        }
        Slot {
            time_ms,
            first_pos: self.i64_at(at + 8),
            last_pos,
            num: i32::from_be_bytes(self.map[at + 24..at + 28].try_into().expect("4 bytes")),
        }
    }

    /// Stores `slot` at its time's index.
    pub fn put(&mut self, slot: &Slot) {
        let at = self.index(slot.time_ms);
        let b = &mut self.map[at..at + SLOT_SIZE];
        b[0..8].copy_from_slice(&(slot.time_ms / self.precision_ms).to_be_bytes());
        b[8..16].copy_from_slice(&slot.first_pos.to_be_bytes());
        b[16..24].copy_from_slice(&slot.last_pos.to_be_bytes());
        b[24..28].copy_from_slice(&slot.num.to_be_bytes());
        b[28..32].copy_from_slice(&0i32.to_be_bytes());
    }

    /// Links the unit at `pos` as the newest of `time_ms`'s slot; returns the previous newest
    /// (the unit's prevPos, -1 if none).
    pub fn link(&mut self, time_ms: i64, pos: i64, delta_num: i32) -> i64 {
        let mut slot = self.get(time_ms);
        let prev = slot.last_pos;
        if slot.is_empty() {
            slot = Slot {
                time_ms,
                first_pos: pos,
                last_pos: pos,
                num: delta_num,
            };
        } else {
            slot.last_pos = pos;
            slot.num += delta_num;
        }
        self.put(&slot);
        prev
    }

    /// Empties `time_ms`'s slot.
    pub fn clear(&mut self, time_ms: i64) {
        self.put(&Slot {
            time_ms,
            ..Slot::EMPTY
        });
    }

    /// Every non-empty slot from `from_ms` (inclusive) across one turn, for recovery checks.
    pub fn slots_from(&self, from_ms: i64) -> impl Iterator<Item = Slot> + '_ {
        let p = self.precision_ms;
        let start = from_ms - from_ms.rem_euclid(p);
        (0..FILE_SLOTS)
            .map(move |i| start + i * p)
            .map(move |t| self.get(t))
            .filter(|s| !s.is_empty())
    }

    /// Msyncs the wheel.
    pub fn flush(&self) -> io::Result<()> {
        self.map.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_link_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timerwheel");
        let mut w = TimerWheel::open(&path, 1000).unwrap();
        assert!(w.get(5_000).is_empty());
        assert_eq!(w.link(5_000, 0, 1), -1);
        assert_eq!(w.link(5_000, 52, 1), 0);
        let s = w.get(5_000);
        assert_eq!((s.first_pos, s.last_pos, s.num), (0, 52, 2));
        // The same index one file-turn later is another time: empty for it.
        let later = 5_000 + FILE_SLOTS * 1000;
        assert!(w.get(later).is_empty());
        w.flush().unwrap();
        drop(w);
        let w = TimerWheel::open(&path, 1000).unwrap();
        assert_eq!(w.get(5_000).last_pos, 52);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            FILE_SLOTS as u64 * 32
        );
        // Byte layout: i64 time/precision, i64 first, i64 last, i32 num.
        let bytes = std::fs::read(&path).unwrap();
        let at = 5 * 32;
        assert_eq!(&bytes[at..at + 8], &5i64.to_be_bytes());
        assert_eq!(&bytes[at + 16..at + 24], &52i64.to_be_bytes());
        assert_eq!(&bytes[at + 24..at + 28], &2i32.to_be_bytes());
    }

    #[test]
    fn a_file_of_the_wrong_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timerwheel");
        std::fs::write(&path, [0u8; 100]).unwrap();
        let e = TimerWheel::open(&path, 1000).unwrap_err();
        assert!(e.to_string().contains("timer wheel"), "{e}");
    }
}
