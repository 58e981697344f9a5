//! Store behaviour end to end: property test of append/read-back across segment
//! boundaries (also after clean and crash restarts), SYNC_FLUSH group commit, queries by
//! key and time, and retention.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;
use rocketmq_common::message::{RecordInput, get_property, java_string_hash};
use rocketmq_store::{
    BoundaryType, FlushDiskType, GetStatus, MessageStore, MessageStoreConfig, PutStatus,
};

const HOST: &str = "127.0.0.1:10911";

fn config(dir: &Path) -> MessageStoreConfig {
    let mut c = MessageStoreConfig::with_root(dir);
    c.mapped_file_size_commit_log = 8 * 1024;
    c.mapped_file_size_consume_queue = 10 * 20;
    c.max_hash_slot_num = 32;
    c.max_index_num = 64;
    c.delete_commit_log_files_interval = 0;
    c
}

fn input<'a>(topic: &'a str, queue_id: i32, body: &'a [u8], props: &'a str) -> RecordInput<'a> {
    RecordInput {
        topic,
        queue_id,
        flag: 3,
        sys_flag: 0,
        born_timestamp: 42,
        born_host: "10.1.1.1:4000".parse().unwrap(),
        store_host: HOST.parse().unwrap(),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body,
        properties: props,
    }
}

fn wait_dispatched(store: &MessageStore) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.dispatched_offset() < store.commitlog().max_offset() {
        assert!(
            Instant::now() < deadline,
            "dispatch stuck at {}",
            store.dispatched_offset()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[derive(Debug, Clone)]
struct Msg {
    topic: usize,
    queue: i32,
    body: Vec<u8>,
    tag: Option<u8>,
}

const TOPICS: [&str; 3] = ["TopicA", "TopicB", "%RETRY%group"];

fn msg_strategy() -> impl Strategy<Value = Msg> {
    (
        0..TOPICS.len(),
        0..3i32,
        proptest::collection::vec(any::<u8>(), 0..2500),
        proptest::option::of(0u8..5),
    )
        .prop_map(|(topic, queue, body, tag)| Msg {
            topic,
            queue,
            body,
            tag,
        })
}

fn props_of(i: usize, m: &Msg) -> String {
    match m.tag {
        Some(t) => format!("TAGS\u{1}tag{t}\u{2}KEYS\u{1}key{i} common\u{2}UNIQ_KEY\u{1}U{i}\u{2}"),
        None => format!("KEYS\u{1}key{i}\u{2}"),
    }
}

/// Every message readable by offset and through its queue, byte-identical, in order.
fn check_all(store: &MessageStore, msgs: &[Msg], placed: &[(i64, i64)], stage: &str) {
    wait_dispatched(store);
    for (i, (m, (phys, qo))) in msgs.iter().zip(placed).enumerate() {
        let buf = store
            .get_message_by_offset(*phys)
            .unwrap()
            .unwrap_or_else(|| panic!("{stage}: message {i} at {phys} missing"));
        let d = buf.decode().unwrap();
        assert_eq!(d.topic, TOPICS[m.topic], "{stage}: message {i}");
        assert_eq!(d.queue_id, m.queue);
        assert_eq!(d.body, m.body.as_slice(), "{stage}: body of message {i}");
        assert_eq!(d.properties, props_of(i, m));
        assert_eq!(d.queue_offset, *qo);
        assert_eq!(d.flag, 3);
        let r = store
            .get_messages(TOPICS[m.topic], m.queue, *qo, 1, usize::MAX)
            .unwrap();
        assert_eq!(r.status, GetStatus::Found, "{stage}: message {i}");
        assert_eq!(
            r.messages[0].1.physical_offset(),
            *phys,
            "{stage}: CQ of message {i}"
        );
        let cq = store.queues().get(TOPICS[m.topic], m.queue).unwrap();
        let expect_tag = m
            .tag
            .map_or(0, |t| i64::from(java_string_hash(&format!("tag{t}"))));
        assert_eq!(cq.get(*qo).unwrap().tags_code, expect_tag);
        let found = store
            .query_message(TOPICS[m.topic], &format!("key{i}"), 4, 0, i64::MAX)
            .unwrap();
        assert_eq!(found.len(), 1, "{stage}: index lookup of key{i}");
        assert_eq!(found[0].physical_offset(), *phys);
    }
    // Queue sizes match what was appended to each queue.
    for (t, topic) in TOPICS.iter().enumerate() {
        for q in 0..3 {
            let n = msgs.iter().filter(|m| m.topic == t && m.queue == q).count() as i64;
            assert_eq!(
                store.max_offset_in_queue(topic, q),
                n,
                "{stage}: {topic}/{q}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn appended_messages_read_back_identically(msgs in proptest::collection::vec(msg_strategy(), 1..120)) {
        let dir = tempfile::tempdir().unwrap();
        let store = MessageStore::open(config(dir.path()), HOST.parse().unwrap()).unwrap();
        let mut placed = Vec::new();
        for (i, m) in msgs.iter().enumerate() {
            let props = props_of(i, m);
            let r = store.put_message_blocking(&input(TOPICS[m.topic], m.queue, &m.body, &props)).unwrap();
            prop_assert_eq!(r.status, PutStatus::PutOk);
            placed.push((r.append.physical_offset, r.append.queue_offset));
        }
        check_all(&store, &msgs, &placed, "live");
        store.shutdown().unwrap();
        drop(store);
        let store = MessageStore::open(config(dir.path()), HOST.parse().unwrap()).unwrap();
        prop_assert!(!store.recovery_report().abnormal);
        check_all(&store, &msgs, &placed, "clean restart");
        store.shutdown().unwrap();
        drop(store);
        std::fs::write(dir.path().join("abort"), b"x").unwrap();
        let store = MessageStore::open(config(dir.path()), HOST.parse().unwrap()).unwrap();
        prop_assert!(store.recovery_report().abnormal);
        check_all(&store, &msgs, &placed, "crash restart");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_flush_group_commit_shares_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.flush_disk_type = FlushDiskType::SyncFlush;
    c.mapped_file_size_commit_log = 1 << 20;
    let store = std::sync::Arc::new(MessageStore::open(c, HOST.parse().unwrap()).unwrap());
    let writers = 16;
    let per_writer = 50;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let body = vec![w as u8; 512];
            let mut ends = Vec::new();
            for _ in 0..per_writer {
                let r = store
                    .put_message(&input("T", w % 4, &body, ""))
                    .await
                    .unwrap();
                assert_eq!(r.status, PutStatus::PutOk);
                // Resolved only once durable.
                assert!(store.flushed_offset() >= r.append.end_offset());
                ends.push(r.append.end_offset());
            }
            ends
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let total = (writers * per_writer) as u64;
    let flushes = store.commitlog().flush_count();
    eprintln!("{total} SYNC_FLUSH puts took {flushes} flushes");
    assert!(
        flushes < total,
        "no group commit: {flushes} flushes for {total} puts"
    );
    let batch: Vec<_> = (0..10).map(|_| input("T", 0, b"b", "")).collect();
    let r = store.put_messages(&batch).await.unwrap();
    assert_eq!(r.status, PutStatus::PutOk);
    assert!(store.flushed_offset() >= r.appends[9].end_offset());
}

#[test]
fn async_flush_makes_data_durable_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.flush_interval_commit_log = 20;
    c.flush_commit_log_least_pages = 1;
    c.mapped_file_size_commit_log = 1 << 20;
    let store = MessageStore::open(c, HOST.parse().unwrap()).unwrap();
    let body = vec![1u8; 5000];
    let r = store
        .put_message_blocking(&input("T", 0, &body, ""))
        .unwrap();
    assert_eq!(r.status, PutStatus::PutOk);
    let deadline = Instant::now() + Duration::from_secs(5);
    while store.flushed_offset() < r.append.end_offset() {
        assert!(Instant::now() < deadline, "async flusher never flushed");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn offset_by_time_and_get_messages_limits() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path()), HOST.parse().unwrap()).unwrap();
    let mut stamps = Vec::new();
    for i in 0..30 {
        let r = store
            .put_message_blocking(&input("T", 0, &[i as u8; 100], ""))
            .unwrap();
        stamps.push(r.append.store_timestamp);
        if i % 10 == 9 {
            std::thread::sleep(Duration::from_millis(15));
        }
    }
    wait_dispatched(&store);
    // First message of the second burst.
    let t = stamps[10];
    let lower = store.offset_by_time("T", 0, t, BoundaryType::Lower);
    assert_eq!(stamps[lower as usize], t);
    assert!(lower == 0 || stamps[lower as usize - 1] < t);
    let upper = store.offset_by_time("T", 0, t, BoundaryType::Upper);
    assert_eq!(stamps[upper as usize], t);
    assert!(upper as usize == stamps.len() - 1 || stamps[upper as usize + 1] > t);
    assert_eq!(store.offset_by_time("T", 0, 0, BoundaryType::Lower), 0);
    assert_eq!(
        store.offset_by_time("T", 0, i64::MAX, BoundaryType::Lower),
        30
    );

    let r = store.get_messages("T", 0, 5, 10, usize::MAX).unwrap();
    assert_eq!((r.messages.len(), r.next_begin_offset), (10, 15));
    let size = r.messages[0].1.len();
    let r = store.get_messages("T", 0, 5, 10, size * 3).unwrap();
    assert_eq!(r.messages.len(), 3);
    assert_eq!(
        store
            .get_messages("T", 0, 30, 10, usize::MAX)
            .unwrap()
            .status,
        GetStatus::OffsetOverflowOne
    );
    assert_eq!(
        store
            .get_messages("T", 0, 31, 10, usize::MAX)
            .unwrap()
            .status,
        GetStatus::OffsetOverflowBadly
    );
    assert_eq!(
        store
            .get_messages("T", 9, 0, 10, usize::MAX)
            .unwrap()
            .status,
        GetStatus::NoMessageInQueue
    );
}

/// Unix time at `hour`:30 UTC on some day.
fn at_hour(hour: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(20_000 * 86_400 + hour * 3600 + 1800)
}

fn age_files(dir: &Path, when: SystemTime) {
    for e in std::fs::read_dir(dir).unwrap() {
        let f = std::fs::File::options()
            .write(true)
            .open(e.unwrap().path())
            .unwrap();
        f.set_modified(when).unwrap();
    }
}

#[test]
fn retention_deletes_expired_segments_and_derived_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.mapped_file_size_commit_log = 4096;
    c.mapped_file_size_consume_queue = 5 * 20;
    let store = MessageStore::open(c, HOST.parse().unwrap()).unwrap();
    let mut placed = Vec::new();
    for i in 0..60 {
        let props = format!("KEYS\u{1}k{i}\u{2}");
        placed.push(
            store
                .put_message_blocking(&input("T", 0, &[7u8; 900], &props))
                .unwrap()
                .append,
        );
    }
    store.commitlog().flush().unwrap();
    wait_dispatched(&store);
    let segments = store.commitlog().files().len();
    assert!(segments >= 15, "{segments}");
    let cleanup = store.cleanup_service();
    let now = at_hour(4);
    // Fresh files: nothing expires, even at the delete hour.
    age_files(
        &dir.path().join("commitlog"),
        now - Duration::from_secs(3600),
    );
    assert_eq!(cleanup.run_once(now, 0.1).unwrap().commitlog_files, 0);
    // Old files, but not the delete hour and the disk is not full: kept.
    age_files(
        &dir.path().join("commitlog"),
        now - Duration::from_secs(100 * 3600),
    );
    assert_eq!(
        cleanup.run_once(at_hour(13), 0.1).unwrap().commitlog_files,
        0
    );
    // A reader holds the first segment: it survives the delete hour.
    let held = store
        .get_message_by_offset(placed[0].physical_offset)
        .unwrap()
        .unwrap();
    assert_eq!(cleanup.run_once(now, 0.1).unwrap().commitlog_files, 0);
    drop(held);
    // Delete hour: at most 10 per round.
    let r = cleanup.run_once(now, 0.1).unwrap();
    assert_eq!(r.commitlog_files, 10);
    assert!(r.consume_queue_files > 0, "{r:?}");
    let min = store.commitlog().min_offset();
    assert_eq!(min, 10 * 4096);
    let cq_min = store.min_offset_in_queue("T", 0);
    let first_kept = placed
        .iter()
        .position(|a| a.physical_offset >= min)
        .unwrap() as i64;
    assert_eq!(cq_min, first_kept);
    let r = store.get_messages("T", 0, 0, 1, usize::MAX).unwrap();
    assert_eq!(r.status, GetStatus::OffsetTooSmall);
    assert_eq!(r.next_begin_offset, first_kept);
    let r = store
        .get_messages("T", 0, first_kept, 1, usize::MAX)
        .unwrap();
    assert_eq!(
        r.messages[0].1.physical_offset(),
        placed[first_kept as usize].physical_offset
    );
    drop(r); // it holds the (new) first segment, which would block the next deletions
    // Disk above diskMaxUsedSpaceRatio: expired files go at any hour; the head stays.
    let r = cleanup.run_once(at_hour(13), 0.80).unwrap();
    assert!(r.commitlog_files > 0);
    assert!(!store.commitlog().files().is_empty());
    // Above the forcible ratio even fresh files go (but never the head).
    age_files(&dir.path().join("commitlog"), at_hour(13));
    cleanup.run_once(at_hour(13), 0.95).unwrap();
    assert_eq!(store.commitlog().files().len(), 1);
    let last = placed.last().unwrap();
    assert!(
        store
            .get_message_by_offset(last.physical_offset)
            .unwrap()
            .is_some()
    );
    // Messages remain appendable and readable after everything old is gone.
    let a = store
        .put_message_blocking(&input("T", 0, b"new", ""))
        .unwrap()
        .append;
    assert_eq!(a.queue_offset, 60);
    drop(store);
    let store = MessageStore::open(config_retained(dir.path()), HOST.parse().unwrap()).unwrap();
    assert_eq!(store.max_offset_in_queue("T", 0), 61);
    assert!(store.min_offset_in_queue("T", 0) > 50);
}

fn config_retained(dir: &Path) -> MessageStoreConfig {
    let mut c = config(dir);
    c.mapped_file_size_commit_log = 4096;
    c.mapped_file_size_consume_queue = 5 * 20;
    c
}

#[test]
fn store_rejects_a_second_opener_and_oversized_messages() {
    let dir = tempfile::tempdir().unwrap();
    let store = MessageStore::open(config(dir.path()), HOST.parse().unwrap()).unwrap();
    assert!(MessageStore::open(config(dir.path()), HOST.parse().unwrap()).is_err());
    let big = vec![0u8; 9000];
    assert!(
        store
            .put_message_blocking(&input("T", 0, &big, ""))
            .is_err()
    );
    let r = store
        .put_message_blocking(&input("T", 0, b"ok", "UNIQ_KEY\u{1}abc\u{2}"))
        .unwrap();
    wait_dispatched(&store);
    let found = store.query_message("T", "abc", 10, 0, i64::MAX).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        get_property(found[0].decode().unwrap().properties, "UNIQ_KEY"),
        Some("abc")
    );
    assert!(
        store
            .query_message("Other", "abc", 10, 0, i64::MAX)
            .unwrap()
            .is_empty()
    );
    assert_eq!(r.append.msg_id(HOST.parse().unwrap()).len(), 32);
    store.shutdown().unwrap();
    assert!(
        store
            .put_message_blocking(&input("T", 0, b"late", ""))
            .is_err()
    );
}
