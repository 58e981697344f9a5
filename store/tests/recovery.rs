//! Recovery of a damaged CommitLog tail: torn records are cut, zeroed on disk and never
//! served; everything before them survives; appends continue cleanly after the cut.

use std::fs::OpenOptions;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

use rocketmq_common::message::RecordInput;
use rocketmq_store::{AppendResult, GetStatus, MessageStore, MessageStoreConfig};

fn config(dir: &Path) -> MessageStoreConfig {
    let mut c = MessageStoreConfig::with_root(dir);
    c.mapped_file_size_commit_log = 16 * 1024;
    c.mapped_file_size_consume_queue = 50 * 20;
    c.max_hash_slot_num = 16;
    c.max_index_num = 100;
    c
}

fn msg<'a>(body: &'a [u8], props: &'a str) -> RecordInput<'a> {
    RecordInput {
        topic: "TopicA",
        queue_id: 0,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 1,
        born_host: "127.0.0.1:1".parse().unwrap(),
        store_host: "127.0.0.1:10911".parse().unwrap(),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body,
        properties: props,
    }
}

fn open(dir: &Path) -> MessageStore {
    MessageStore::open(config(dir), "127.0.0.1:10911".parse().unwrap()).unwrap()
}

/// Body length of the `i`-th message written by [`fill`].
fn body_len(i: usize) -> usize {
    700 + (i * 13) % 300
}

fn fill(store: &MessageStore, n: usize) -> Vec<AppendResult> {
    (0..n)
        .map(|i| {
            let body = vec![i as u8; body_len(i)];
            let props = format!("KEYS\u{1}key{i}\u{2}");
            store
                .put_message_blocking(&msg(&body, &props))
                .unwrap()
                .append
        })
        .collect()
}

fn segment_path(dir: &Path, offset: i64, seg: i64) -> std::path::PathBuf {
    dir.join("commitlog")
        .join(format!("{:020}", offset - offset % seg))
}

/// Makes the next open a crash recovery whose checkpoint knows no durable offsets (a store
/// written before they existed): the scan falls back to segment starts.
fn mark_crashed(dir: &Path) {
    set_durable_offsets(dir, 0, 0);
    std::fs::write(dir.join("abort"), b"1").unwrap();
}

/// Sets the checkpoint's physicFlushedOffset (@40) and logicsDispatchedOffset (@48), as a
/// crash would leave them after flushes up to there.
fn set_durable_offsets(dir: &Path, flushed: i64, dispatched: i64) {
    let mut f = OpenOptions::new()
        .write(true)
        .open(dir.join("checkpoint"))
        .unwrap();
    f.seek(SeekFrom::Start(40)).unwrap();
    f.write_all(&flushed.to_be_bytes()).unwrap();
    f.write_all(&dispatched.to_be_bytes()).unwrap();
    f.sync_all().unwrap();
}

#[test]
fn torn_tail_is_truncated_and_zeroed() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let appended = fill(&store, 60);
    store.shutdown().unwrap();
    drop(store);
    let seg = 16 * 1024i64;
    // The last record is torn: its body half overwritten with garbage.
    let last = *appended.last().unwrap();
    let path = segment_path(dir.path(), last.physical_offset, seg);
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    let pos = (last.physical_offset % seg) as u64 + u64::from(last.size) / 2;
    f.seek(SeekFrom::Start(pos)).unwrap();
    f.write_all(&[0xAB; 64]).unwrap();
    // And garbage after it, as a half-written next record would leave.
    let after = (last.end_offset() % seg) as u64;
    f.seek(SeekFrom::Start(after)).unwrap();
    f.write_all(&[0x5A; 100]).unwrap();
    drop(f);
    mark_crashed(dir.path());

    let store = open(dir.path());
    let r = *store.recovery_report();
    assert!(r.abnormal);
    assert_eq!(r.commitlog_end, last.physical_offset, "{r:?}");
    assert!(r.truncated_bytes > 0);
    assert!(
        store
            .get_message_by_offset(last.physical_offset)
            .unwrap()
            .is_none()
    );
    for a in &appended[..appended.len() - 1] {
        let m = store
            .get_message_by_offset(a.physical_offset)
            .unwrap()
            .unwrap();
        assert_eq!(m.decode().unwrap().queue_offset, a.queue_offset);
    }
    // The ConsumeQueue no longer lists the torn message.
    assert_eq!(store.max_offset_in_queue("TopicA", 0), last.queue_offset);
    let q = store
        .get_messages("TopicA", 0, last.queue_offset, 1, usize::MAX)
        .unwrap();
    assert_eq!(q.status, GetStatus::OffsetOverflowOne);
    // The index does not serve it either.
    let key = format!("key{}", appended.len() - 1);
    assert!(
        store
            .query_message("TopicA", &key, 10, 0, i64::MAX)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .query_message("TopicA", "key3", 10, 0, i64::MAX)
            .unwrap()
            .len(),
        1
    );
    store.shutdown().unwrap();
    drop(store);
    // Bytes after the cut are zero on disk.
    let bytes = std::fs::read(&path).unwrap();
    let cut = (last.physical_offset % seg) as usize;
    assert!(bytes[cut..].iter().all(|b| *b == 0), "tail not zeroed");

    // Appends continue at the cut with the freed queue offset.
    let store = open(dir.path());
    let again = store
        .put_message_blocking(&msg(b"after", ""))
        .unwrap()
        .append;
    assert_eq!(again.physical_offset, last.physical_offset);
    assert_eq!(again.queue_offset, last.queue_offset);
}

#[test]
fn stale_intact_records_behind_a_torn_one_are_not_revived() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let appended = fill(&store, 10); // all in the first 16 KiB segment
    assert_eq!(appended[9].physical_offset / (16 * 1024), 0);
    store.shutdown().unwrap();
    drop(store);
    // Tear record 5; records 6..9 remain intact behind it (as after out-of-order writeback).
    let a5 = appended[5];
    let path = segment_path(dir.path(), a5.physical_offset, 16 * 1024);
    let mut f = OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(a5.physical_offset as u64 + 100))
        .unwrap();
    f.write_all(&[0xFF; 8]).unwrap();
    drop(f);
    mark_crashed(dir.path());
    let store = open(dir.path());
    assert_eq!(store.recovery_report().commitlog_end, a5.physical_offset);
    assert_eq!(store.max_offset_in_queue("TopicA", 0), 5);
    // Re-append one record of exactly record 5's size but different content: it ends
    // where the stale, intact record 6 starts, at the position and with the queue offset a
    // revived record 6 would need. Only zeroing at recovery keeps 6..9 from coming back.
    let body = vec![0xEEu8; body_len(5)];
    let replaced = store
        .put_message_blocking(&msg(&body, "KEYS\u{1}keyX\u{2}"))
        .unwrap()
        .append;
    assert_eq!(replaced.end_offset(), appended[6].physical_offset);
    store.shutdown().unwrap();
    drop(store);
    mark_crashed(dir.path());
    let store = open(dir.path());
    assert_eq!(store.recovery_report().commitlog_end, replaced.end_offset());
    assert_eq!(store.max_offset_in_queue("TopicA", 0), 6);
    assert!(
        store
            .get_message_by_offset(appended[6].physical_offset)
            .unwrap()
            .is_none()
    );
    let r = store.get_messages("TopicA", 0, 0, 100, usize::MAX).unwrap();
    assert_eq!(r.messages.len(), 6);
    assert_eq!(r.messages[5].1.decode().unwrap().body, body.as_slice());
}

#[test]
fn clean_restart_scans_only_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let appended = fill(&store, 100); // ~7 segments
    let head_segment_start = appended.last().unwrap().physical_offset / (16 * 1024) * (16 * 1024);
    store.shutdown().unwrap();
    drop(store);
    let store = open(dir.path());
    let r = *store.recovery_report();
    assert!(!r.abnormal);
    assert_eq!(
        r.scan_from,
        appended.last().unwrap().end_offset(),
        "a clean shutdown checkpointed the end: nothing to rescan"
    );
    assert_eq!(r.messages_scanned, 0);
    assert_eq!(r.commitlog_end, appended.last().unwrap().end_offset());
    // Without the checkpointed offset (an older store) only the head segment is scanned.
    store.shutdown().unwrap();
    drop(store);
    set_durable_offsets(dir.path(), 0, 0);
    let store = open(dir.path());
    assert_eq!(
        store.recovery_report().scan_from,
        head_segment_start,
        "normal recovery must not rescan old segments"
    );
    assert_eq!(store.max_offset_in_queue("TopicA", 0), 100);
    // Corrupt ConsumeQueue data is rebuilt from the CommitLog after a crash.
    store.shutdown().unwrap();
    drop(store);
    std::fs::remove_dir_all(dir.path().join("consumequeue")).unwrap();
    mark_crashed(dir.path());
    let store = open(dir.path());
    assert_eq!(store.max_offset_in_queue("TopicA", 0), 100);
    let r = store.get_messages("TopicA", 0, 42, 1, usize::MAX).unwrap();
    assert_eq!(
        r.messages[0].1.physical_offset(),
        appended[42].physical_offset
    );
}

#[test]
fn crash_recovery_starts_at_the_checkpoint_not_at_the_first_segment() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let old = fill(&store, 40); // ~3 segments
    // RocketMQ starts the scan at the newest segment whose first message is at least 3 s
    // older than the checkpoint; wait that long before writing the newer segments.
    std::thread::sleep(std::time::Duration::from_millis(3200));
    let new = fill(&store, 40);
    store.shutdown().unwrap();
    drop(store);
    mark_crashed(dir.path());
    let store = open(dir.path());
    let r = *store.recovery_report();
    assert!(r.abnormal);
    let seg = 16 * 1024i64;
    assert!(
        r.scan_from > 0 && r.scan_from <= old.last().unwrap().physical_offset / seg * seg,
        "scan should start in the old segments but not at 0: {r:?}"
    );
    assert_eq!(r.commitlog_end, new.last().unwrap().end_offset());
    assert_eq!(store.max_offset_in_queue("TopicA", 0), 80);
}

#[test]
fn crash_recovery_scans_from_the_checkpointed_flush_offset_and_cuts_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let appended = fill(&store, 60); // ~4 segments
    store.shutdown().unwrap();
    drop(store);
    // The crash came after a flush up to message 50: everything after it may be torn, and
    // the last record is (half of it zeroed, the rest garbage).
    let durable = appended[50].physical_offset;
    let last = appended.last().unwrap();
    let seg = 16 * 1024i64;
    let mut f = OpenOptions::new()
        .write(true)
        .open(segment_path(dir.path(), last.physical_offset, seg))
        .unwrap();
    f.seek(SeekFrom::Start((last.physical_offset % seg + 40) as u64))
        .unwrap();
    f.write_all(&[0xAB; 64]).unwrap();
    f.sync_all().unwrap();
    drop(f);
    set_durable_offsets(dir.path(), durable, appended[45].physical_offset);
    std::fs::write(dir.path().join("abort"), b"1").unwrap();
    let store = open(dir.path());
    let r = *store.recovery_report();
    assert!(r.abnormal);
    assert_eq!(
        r.scan_from, durable,
        "the scan starts at the checkpointed offset"
    );
    assert_eq!(r.messages_scanned, 9, "messages 50..59 minus the torn one");
    assert_eq!(
        r.commitlog_end, last.physical_offset,
        "the torn record is cut"
    );
    assert_eq!(
        r.reput_from, appended[45].physical_offset,
        "re-dispatch from where the ConsumeQueue was durable"
    );
    assert_eq!(store.max_offset_in_queue("TopicA", 0), 59);
    // Appends continue right after the cut, at the torn record's queue offset.
    let body = vec![7u8; 100];
    let put = store.put_message_blocking(&msg(&body, "")).unwrap();
    assert_eq!(put.append.physical_offset, last.physical_offset);
    assert_eq!(put.append.queue_offset, 59);
}
