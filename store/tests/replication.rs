//! The replication seam: a replica built only from the master's shipped chunks holds the
//! master's log byte for byte; gated reads never show unconfirmed records; a diverged tail
//! is cut (also across segments and durably, so a crash after the cut does not bring it
//! back); a promoted replica continues every queue's offsets.

use std::path::Path;
use std::time::{Duration, Instant};

use rocketmq_common::message::RecordInput;
use rocketmq_store::{GetStatus, MessageStore, MessageStoreConfig, StoreError};

const SEGMENT: usize = 8 * 1024;

fn config(dir: &Path, gated: bool) -> MessageStoreConfig {
    let mut c = MessageStoreConfig::with_root(dir);
    c.mapped_file_size_commit_log = SEGMENT;
    c.mapped_file_size_consume_queue = 10 * 20;
    c.max_hash_slot_num = 32;
    c.max_index_num = 64;
    c.read_confirmed_only = gated;
    c
}

fn open(dir: &Path, gated: bool, port: u16) -> MessageStore {
    MessageStore::open(
        config(dir, gated),
        format!("127.0.0.1:{port}").parse().unwrap(),
    )
    .unwrap()
}

fn input<'a>(topic: &'a str, queue_id: i32, body: &'a [u8]) -> RecordInput<'a> {
    RecordInput {
        topic,
        queue_id,
        flag: 0,
        sys_flag: 0,
        born_timestamp: 42,
        born_host: "10.1.1.1:4000".parse().unwrap(),
        store_host: "0.0.0.0:0".parse().unwrap(),
        reconsume_times: 0,
        prepared_transaction_offset: 0,
        body,
        properties: "",
    }
}

fn put(store: &MessageStore, topic: &str, queue_id: i32, body: &[u8]) -> (i64, i64) {
    let r = store
        .put_message_blocking(&input(topic, queue_id, body))
        .unwrap();
    (r.append.physical_offset, r.append.queue_offset)
}

/// Ships everything the master has past the replica's end, in chunks of about `batch`.
fn replicate(master: &MessageStore, replica: &MessageStore, batch: usize) -> usize {
    let mut chunks = 0;
    loop {
        let from = replica.commitlog().max_offset();
        let Some((chunk, next)) = master
            .commitlog()
            .read_for_replication(from, batch, i64::MAX)
        else {
            return chunks;
        };
        let end = replica.append_replicated(from, &chunk).unwrap();
        assert_eq!(
            end, next,
            "the replica ends where the master's next chunk starts"
        );
        chunks += 1;
    }
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn bodies(store: &MessageStore, topic: &str, queue_id: i32) -> Vec<(i64, Vec<u8>)> {
    let r = store
        .get_messages(topic, queue_id, 0, 1000, usize::MAX)
        .unwrap();
    r.messages
        .iter()
        .map(|(q, b)| (*q, b.decode().unwrap().body.to_vec()))
        .collect()
}

fn log_bytes(store: &MessageStore) -> Vec<u8> {
    let mut out = Vec::new();
    for f in store.commitlog().files().files() {
        out.extend_from_slice(f.read_from(0).unwrap());
    }
    out
}

#[test]
fn replica_holds_the_masters_log_and_reads_stop_at_the_confirm_offset() {
    let (md, rd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let master = open(md.path(), false, 10911);
    let replica = open(rd.path(), true, 10921);
    let mut expect = Vec::new();
    let mut ends = Vec::new();
    for i in 0..60u32 {
        let body = vec![i as u8; 300 + (i as usize * 37) % 900];
        let (off, q) = put(&master, "T", (i % 2) as i32, &body);
        ends.push(off + master.commitlog().read_record(off).unwrap().len() as i64);
        expect.push(((i % 2) as i32, q, body));
    }
    assert!(master.commitlog().files().len() > 3, "spans segments");
    // Small batches: every chunk ends at a record boundary, a BLANK or the batch limit.
    let chunks = replicate(&master, &replica, 1000);
    assert!(chunks > 10);
    assert_eq!(
        replica.commitlog().max_offset(),
        master.commitlog().max_offset()
    );
    assert_eq!(log_bytes(&replica), log_bytes(&master));

    // Nothing confirmed yet: nothing readable, neither by queue nor by offset.
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(
        replica
            .get_messages("T", 0, 0, 10, usize::MAX)
            .unwrap()
            .status,
        GetStatus::NoMessageInQueue
    );
    assert!(replica.get_message_by_offset(0).unwrap().is_none());

    // Confirm up to the 10th record: exactly the first 10 messages become readable.
    let tenth_end = ends[9];
    replica.set_confirm_offset(tenth_end);
    wait_until("dispatch to the confirm offset", || {
        replica.dispatched_offset() >= tenth_end
    });
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(replica.dispatched_offset(), tenth_end);
    let visible = bodies(&replica, "T", 0).len() + bodies(&replica, "T", 1).len();
    assert_eq!(visible, 10);

    replica.set_confirm_offset(replica.commitlog().max_offset());
    wait_until("full dispatch", || {
        replica.dispatched_offset() == replica.commitlog().max_offset()
    });
    for qid in 0..2 {
        let want: Vec<_> = expect
            .iter()
            .filter(|(q, _, _)| *q == qid)
            .map(|(_, off, b)| (*off, b.clone()))
            .collect();
        assert_eq!(bodies(&replica, "T", qid), want);
    }
}

#[test]
fn replicated_bytes_are_checked_before_they_land() {
    let (md, rd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let master = open(md.path(), false, 10911);
    let replica = open(rd.path(), true, 10921);
    put(&master, "T", 0, b"one");
    put(&master, "T", 0, b"two");
    let (chunk, _) = master
        .commitlog()
        .read_for_replication(0, 1 << 20, i64::MAX)
        .unwrap();
    // Not where the log ends.
    assert!(matches!(
        replica.append_replicated(chunk.len() as i64, &chunk),
        Err(StoreError::ReplicaOffset { .. })
    ));
    // Bytes written for another position.
    let second = master
        .commitlog()
        .read_record(chunk.len() as i64 / 2)
        .unwrap();
    assert!(matches!(
        replica.append_replicated(0, &second),
        Err(StoreError::Corrupt { .. })
    ));
    // A torn record.
    assert!(
        replica
            .append_replicated(0, &chunk[..chunk.len() - 3])
            .is_err()
    );
    assert_eq!(replica.commitlog().max_offset(), 0);
    assert_eq!(
        replica.append_replicated(0, &chunk).unwrap(),
        chunk.len() as i64
    );
}

#[test]
fn diverged_tail_is_cut_durably_and_a_promoted_replica_continues_queue_offsets() {
    let (md, rd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let master = open(md.path(), false, 10911);
    let crashed = tempfile::tempdir().unwrap();
    let _original;
    let common_end = {
        let replica = open(rd.path(), false, 10921);
        for i in 0..20u8 {
            put(&master, "T", 0, &[i; 500]);
        }
        replicate(&master, &replica, 4096);
        let common_end = replica.commitlog().max_offset();
        // The replica was briefly master on its own and wrote a tail spanning segments.
        replica.prepare_for_writes().unwrap();
        for i in 0..30u8 {
            put(&replica, "T", 0, &[200 + i % 50; 700]);
        }
        put(&replica, "Other", 3, b"diverged");
        wait_until("dispatch", || {
            replica.dispatched_offset() == replica.commitlog().max_offset()
        });
        assert_eq!(replica.max_offset_in_queue("T", 0), 50);
        replica.truncate_tail(common_end).unwrap();
        assert_eq!(replica.commitlog().max_offset(), common_end);
        assert_eq!(replica.max_offset_in_queue("T", 0), 20);
        assert_eq!(replica.max_offset_in_queue("Other", 3), 0);
        assert!(replica.dispatched_offset() <= common_end);
        // Crash right after the cut: nothing of the tail may come back.
        copy_as_crashed(rd.path(), crashed.path());
        _original = replica;
        common_end
    };
    let replica = open(crashed.path(), false, 10921);
    assert!(replica.recovery_report().abnormal);
    assert_eq!(replica.commitlog().max_offset(), common_end);
    assert_eq!(replica.max_offset_in_queue("T", 0), 20);

    // Catch up with the master, then take writes.
    for i in 20..25u8 {
        put(&master, "T", 0, &[i; 500]);
    }
    replicate(&master, &replica, 4096);
    assert_eq!(log_bytes(&replica), log_bytes(&master));
    replica.prepare_for_writes().unwrap();
    let (_, q) = put(&replica, "T", 0, b"first write as master");
    assert_eq!(q, 25);
    let (_, q) = put(&replica, "Other", 3, b"new queue");
    assert_eq!(q, 0);
    wait_until("dispatch", || {
        replica.dispatched_offset() == replica.commitlog().max_offset()
    });
    let all = bodies(&replica, "T", 0);
    assert_eq!(all.len(), 26);
    assert_eq!(all[24].1, vec![24u8; 500]);
}

/// What a process crash leaves behind: the files as the page cache holds them, abort file
/// included (the original store stays open, as a killed process's would never close).
fn copy_as_crashed(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_as_crashed(&entry.path(), &target);
        } else if entry.file_name() != "lock" {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
