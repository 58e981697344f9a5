//! Controller mode with real processes: three controllers, a name server and a group of
//! three brokers with `allAckInSyncStateSet=true`, a producer sending all the time to
//! whichever broker the controller names master.
//!
//! * Kill -9 of the master: a new master takes writes within 5 s; every acknowledged
//!   message is on it at the queue offset its send returned; whatever a reader saw before
//!   is still there unchanged; the old master rejoins as a slave holding the same log.
//! * Kill -9 of the master and of the controller leader at once: the election completes.
//! * An unclean election (opt-in) makes the old master's tail diverge: when it rejoins it
//!   cuts that tail and then holds exactly the new master's log.
//! * A master partitioned from the controllers never acknowledges a write once a new
//!   epoch exists, with or without `allAckInSyncStateSet` (the lease fences it).
//! * No phantom reads: a write no slave acknowledged is never served; what was served
//!   survives the master's death.
//! * A stalled slave leaves the SyncStateSet after `haMaxTimeSlaveNotCatchup` and is taken
//!   back once it catches up; replicas keep their ids across restarts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rocketmq_common::protocol::ResponseCode;
use rocketmq_common::protocol::headers::broker::SendMessageResponseHeader;
use rocketmq_common::remoting::{ClientConfig, RemotingClient};
use rocketmq_testkit::cluster::{ClusterOptions, ControllerCluster};
use rocketmq_testkit::requests::{read_topic, send};
use rocketmq_testkit::wait_until;

const T: Duration = Duration::from_secs(5);
const TOPIC: &str = "FailoverTopic";
const QUEUES: i32 = 4;
const LONG: Duration = Duration::from_secs(60);

const BROKER_CONF: &str = "brokerHeartbeatInterval=300\ncontrollerHeartBeatTimeoutMills=3000\n\
     checkSyncStateSetPeriod=500\nhaMaxTimeSlaveNotCatchup=5000\nslaveTimeout=2000\n\
     mappedFileSizeCommitLog=4194304\nregisterNameServerPeriod=1000\n";

/// (queue, offset) → body.
type Seen = BTreeMap<(i32, i64), Vec<u8>>;

fn body(i: u64) -> Vec<u8> {
    let mut b = format!("msg-{i}-").into_bytes();
    b.resize(64 + (i as usize * 131) % 2000, b'a' + (i % 26) as u8);
    b
}

/// An acknowledged send.
#[derive(Debug, Clone)]
struct Ack {
    seq: u64,
    queue: i32,
    offset: i64,
    master: String,
}

/// Sends all the time to the master the controller names; records acknowledgements.
struct Producer {
    acked: Arc<Mutex<Vec<Ack>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Producer {
    fn start(cluster: &ControllerCluster) -> Self {
        let acked: Arc<Mutex<Vec<Ack>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let master: Arc<Mutex<Option<String>>> = Arc::default();
        let client = RemotingClient::new(ClientConfig::default());
        let sender = {
            let (acked, stop, master) = (acked.clone(), stop.clone(), master.clone());
            tokio::spawn(async move {
                let mut seq = 0u64;
                while !stop.load(Ordering::Acquire) {
                    let Some(addr) = master.lock().clone() else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    let queue = (seq % QUEUES as u64) as i32;
                    match client
                        .invoke(&addr, send(TOPIC, queue, &body(seq), &[]), T)
                        .await
                    {
                        Ok(r) if r.code == 0 => {
                            let h: SendMessageResponseHeader = r.decode_header().unwrap();
                            acked.lock().push(Ack {
                                seq,
                                queue,
                                offset: h.queue_offset,
                                master: addr,
                            });
                            seq += 1;
                        }
                        _ => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
            })
        };
        let router = {
            let (stop, master) = (stop.clone(), master.clone());
            let probe = cluster.master_probe();
            tokio::spawn(async move {
                while !stop.load(Ordering::Acquire) {
                    if let Some((addr, _, _)) = probe.master().await {
                        *master.lock() = Some(addr);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        Self {
            acked,
            stop,
            tasks: vec![sender, router],
        }
    }

    fn count(&self) -> usize {
        self.acked.lock().len()
    }

    async fn wait_for(&self, n: usize) {
        wait_until(&format!("{n} acknowledged sends"), LONG, || async {
            (self.count() >= n).then_some(())
        })
        .await;
    }

    /// The first acknowledgement after `after` from a broker other than `old`.
    async fn first_ack_from_other(&self, after: usize, old: &str) -> String {
        wait_until("a write acknowledged by a new master", LONG, || async {
            self.acked
                .lock()
                .iter()
                .skip(after)
                .find(|a| a.master != old)
                .map(|a| a.master.clone())
        })
        .await
    }

    async fn stop(self) -> Vec<Ack> {
        self.stop.store(true, Ordering::Release);
        for t in self.tasks {
            t.await.unwrap();
        }
        self.acked.lock().clone()
    }
}

/// Reads every queue of `addr` from offset 0; `None` if the broker does not answer.
async fn read_all(client: &RemotingClient, addr: &str) -> Option<Seen> {
    let all = read_topic(client, addr, TOPIC, QUEUES).await?;
    Some(all.into_iter().map(|(at, (_, body))| (at, body)).collect())
}

/// Waits until `addr` serves every acknowledged message at its offset; returns all it
/// serves.
async fn holds_all(client: &RemotingClient, addr: &str, acked: &[Ack]) -> Seen {
    wait_until(
        &format!("{addr} to serve every acknowledged message"),
        Duration::from_secs(30),
        || async {
            let seen = read_all(client, addr).await?;
            acked
                .iter()
                .all(|a| seen.get(&(a.queue, a.offset)) == Some(&body(a.seq)))
                .then_some(seen)
        },
    )
    .await
}

/// Waits until `addr` serves exactly `expected`.
async fn serves_exactly(client: &RemotingClient, addr: &str, expected: &Seen) {
    wait_until(
        &format!("{addr} to hold the master's log"),
        Duration::from_secs(30),
        || async { (read_all(client, addr).await.as_ref() == Some(expected)).then_some(()) },
    )
    .await;
}

fn options(broker_extra: &str) -> ClusterOptions {
    ClusterOptions {
        broker_extra: format!("{BROKER_CONF}{broker_extra}"),
        ..ClusterOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_keeps_every_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster =
        ControllerCluster::start_with(dir.path(), options("allAckInSyncStateSet=true\n")).await;
    let (first_master, epoch) = cluster.wait_for_master(3, LONG).await;
    let ids = replica_ids(&cluster).await;
    let client = RemotingClient::new(ClientConfig::default());
    let producer = Producer::start(&cluster);
    producer.wait_for(1000).await;
    let seen_before = read_all(&client, &first_master).await.unwrap();
    assert!(!seen_before.is_empty());

    let victim = cluster.broker_index(&first_master).unwrap();
    let killed_at = Instant::now();
    let acked_at_kill = producer.count();
    cluster.kill_broker(victim);
    let new_master = producer
        .first_ack_from_other(acked_at_kill, &first_master)
        .await;
    let failover = killed_at.elapsed();
    assert!(
        failover < Duration::from_secs(5),
        "failover took {failover:?}"
    );
    let (_, new_epoch, _) = cluster.master().await.unwrap();
    assert!(new_epoch > epoch);
    producer.wait_for(acked_at_kill + 500).await;
    let acked = producer.stop().await;

    let on_new = holds_all(&client, &new_master, &acked).await;
    for (key, b) in &seen_before {
        assert_eq!(
            on_new.get(key),
            Some(b),
            "message at {key:?} seen before the failover changed"
        );
    }
    cluster.start_broker(victim);
    let old = cluster.broker_addr(victim);
    serves_exactly(&client, &old, &on_new).await;
    let resp = client
        .invoke(&old, send(TOPIC, 0, b"x", &[]), T)
        .await
        .unwrap();
    assert_eq!(resp.code, ResponseCode::ServiceNotAvailable.as_i32());
    // The restarted broker kept its id (persisted in its store), no new one was allocated.
    assert_eq!(replica_ids(&cluster).await, ids);
    eprintln!("failover: {failover:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_completes_when_the_controller_leader_dies_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster =
        ControllerCluster::start_with(dir.path(), options("allAckInSyncStateSet=true\n")).await;
    let (first_master, _) = cluster.wait_for_master(3, LONG).await;
    let producer = Producer::start(&cluster);
    producer.wait_for(300).await;
    let leader = cluster.controller_leader().await.unwrap();
    let victim = cluster.broker_index(&first_master).unwrap();
    let acked_at_kill = producer.count();
    cluster.kill_controller(leader);
    cluster.kill_broker(victim);
    let new_master = producer
        .first_ack_from_other(acked_at_kill, &first_master)
        .await;
    producer.wait_for(acked_at_kill + 200).await;
    let acked = producer.stop().await;
    let client = RemotingClient::new(ClientConfig::default());
    holds_all(&client, &new_master, &acked).await;
    cluster.start_controller(leader);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejoining_master_cuts_its_diverged_tail() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = ControllerCluster::start_with(
        dir.path(),
        ClusterOptions {
            controller_extra: "enableElectUncleanMaster=true\n".into(),
            ..options("allAckInSyncStateSet=true\n")
        },
    )
    .await;
    let (master, _) = cluster.wait_for_master(3, LONG).await;
    let client = RemotingClient::new(ClientConfig::default());
    for i in 0..200 {
        let r = client
            .invoke(&master, send(TOPIC, (i % 4) as i32, &body(i), &[]), T)
            .await
            .unwrap();
        assert_eq!(r.code, 0);
    }
    // The slaves die; the master shrinks its SyncStateSet to itself and writes on alone.
    let m = cluster.broker_index(&master).unwrap();
    let slaves: Vec<usize> = (0..3).filter(|i| *i != m).collect();
    for s in &slaves {
        cluster.kill_broker(*s);
    }
    wait_until("the SyncStateSet to shrink", LONG, || async {
        let (_, _, set) = cluster.master().await?;
        (set.sync_state_set.len() == 1).then_some(())
    })
    .await;
    let mut alone = 0;
    for i in 200..400 {
        let r = client
            .invoke(&master, send(TOPIC, (i % 4) as i32, &body(i), &[]), T)
            .await
            .unwrap();
        if r.code == 0 {
            alone += 1;
        }
    }
    assert!(alone > 0);
    let diverged_end = read_all(&client, &master).await.unwrap();
    // The master dies too; a slave comes back and is elected uncleanly (without the tail).
    cluster.kill_broker(m);
    cluster.start_broker(slaves[0]);
    let new_master = cluster.broker_addr(slaves[0]);
    wait_until("the unclean election", LONG, || async {
        let (addr, _, _) = cluster.master().await?;
        (addr == new_master).then_some(())
    })
    .await;
    let on_new = wait_until("the new master to serve", LONG, || async {
        let seen = read_all(&client, &new_master).await?;
        (seen.len() >= 200).then_some(seen)
    })
    .await;
    assert!(
        on_new.len() < diverged_end.len(),
        "the new master lacks the tail"
    );
    let r = client
        .invoke(&new_master, send(TOPIC, 0, b"after", &[]), T)
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{:?}", r.remark);
    let on_new = read_all(&client, &new_master).await.unwrap();
    // The old master rejoins: its tail goes, it holds exactly the new master's log.
    cluster.start_broker(m);
    serves_exactly(&client, &cluster.broker_addr(m), &on_new).await;
    let log = std::fs::read_to_string(dir.path().join(format!("broker{m}.log"))).unwrap();
    assert!(log.contains("cutting the tail"), "no truncation logged");
}

/// A send to the partitioned master that it acknowledged: (sent at, seq, queue, offset).
type DirectAck = (Instant, u64, i32, i64);

async fn partitioned_master_is_fenced(all_ack: bool) {
    let dir = tempfile::tempdir().unwrap();
    let cluster = ControllerCluster::start_with(
        dir.path(),
        ClusterOptions {
            relay_controllers: true,
            ..options(&format!("allAckInSyncStateSet={all_ack}\n"))
        },
    )
    .await;
    let (old, epoch) = cluster.wait_for_master(3, LONG).await;
    let producer = Producer::start(&cluster);
    producer.wait_for(200).await;
    // Partition the master from the controllers and keep writing to it directly.
    let m = cluster.broker_index(&old).unwrap();
    cluster.partition_from_controllers(m);
    let client = RemotingClient::new(ClientConfig::default());
    let direct: Arc<Mutex<Vec<DirectAck>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (direct, stop, client, old) =
            (direct.clone(), stop.clone(), client.clone(), old.clone());
        tokio::spawn(async move {
            let mut seq = 1_000_000u64;
            while !stop.load(Ordering::Acquire) {
                let sent = Instant::now();
                let q = (seq % QUEUES as u64) as i32;
                if let Ok(r) = client
                    .invoke(&old, send(TOPIC, q, &body(seq), &[]), T)
                    .await
                    && r.code == 0
                {
                    let h: SendMessageResponseHeader = r.decode_header().unwrap();
                    direct.lock().push((sent, seq, q, h.queue_offset));
                }
                seq += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let new_epoch_seen = wait_until("a new epoch", LONG, || async {
        let (addr, e, _) = cluster.master().await?;
        (e > epoch && addr != old).then(Instant::now)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Release);
    writer.await.unwrap();
    let direct = direct.lock().clone();
    let late: Vec<_> = direct
        .iter()
        .filter(|(sent, ..)| *sent > new_epoch_seen)
        .collect();
    assert!(
        late.is_empty(),
        "the partitioned master acknowledged writes after the new epoch: {late:?}"
    );
    let (new_master, _, _) = cluster.master().await.unwrap();
    let mut acked = producer.stop().await;
    if all_ack {
        // With every SyncStateSet member acknowledging, nothing acknowledged is lost.
        acked.extend(direct.iter().map(|(_, seq, q, off)| Ack {
            seq: *seq,
            queue: *q,
            offset: *off,
            master: old.clone(),
        }));
        holds_all(&client, &new_master, &acked).await;
    }
    // Healed, the old master learns the new epoch and follows.
    cluster.heal(m);
    let on_new = read_all(&client, &new_master).await.unwrap();
    serves_exactly(&client, &old, &on_new).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_master_acknowledges_nothing_after_a_new_epoch() {
    partitioned_master_is_fenced(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_fences_a_partitioned_master_without_all_acks() {
    partitioned_master_is_fenced(false).await;
}

async fn committed(client: &RemotingClient, addr: &str) -> Option<i64> {
    use rocketmq_common::protocol::headers::broker::{
        OffsetResponseHeader, QueryConsumerOffsetRequestHeader,
    };
    let resp = client
        .invoke(
            addr,
            rocketmq_common::protocol::RemotingCommand::request(
                rocketmq_common::protocol::RequestCode::QUERY_CONSUMER_OFFSET,
                &QueryConsumerOffsetRequestHeader {
                    consumer_group: "g1".into(),
                    topic: TOPIC.into(),
                    queue_id: 0,
                    set_zero_if_not_found: None,
                    broker_name: None,
                },
            ),
            T,
        )
        .await
        .ok()?;
    if resp.code != 0 {
        return None;
    }
    resp.decode_header::<OffsetResponseHeader>()
        .ok()
        .map(|h| h.offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delayed_timer_and_offsets_carry_over_a_failover() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster =
        ControllerCluster::start_with(dir.path(), options("allAckInSyncStateSet=true\n")).await;
    let (master, _) = cluster.wait_for_master(3, LONG).await;
    let client = RemotingClient::new(ClientConfig::default());
    let r = client
        .invoke(&master, send(TOPIC, 0, b"plain", &[]), T)
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{:?}", r.remark);
    let commit = rocketmq_common::protocol::RemotingCommand::request(
        rocketmq_common::protocol::RequestCode::UPDATE_CONSUMER_OFFSET,
        &rocketmq_common::protocol::headers::broker::UpdateConsumerOffsetRequestHeader {
            consumer_group: "g1".into(),
            topic: TOPIC.into(),
            queue_id: 0,
            commit_offset: 1,
            broker_name: None,
        },
    );
    assert_eq!(client.invoke(&master, commit, T).await.unwrap().code, 0);
    // Due well after the failover: the new master must deliver them.
    let r = client
        .invoke(&master, send(TOPIC, 0, b"delayed", &[("DELAY", "3")]), T)
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{:?}", r.remark);
    let r = client
        .invoke(
            &master,
            send(TOPIC, 0, b"timer", &[("TIMER_DELAY_SEC", "12")]),
            T,
        )
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{:?}", r.remark);
    let sent = std::time::Instant::now();
    // The slaves copy the committed offset from the master.
    let m = cluster.broker_index(&master).unwrap();
    for i in (0..3).filter(|i| *i != m) {
        let addr = cluster.broker_addr(i);
        wait_until("a slave to copy the consumer offset", LONG, || async {
            (committed(&client, &addr).await == Some(1)).then_some(())
        })
        .await;
    }
    assert!(
        sent.elapsed() < Duration::from_secs(10),
        "too slow to test delivery after failover"
    );
    cluster.kill_broker(m);
    let (new_master, _) = wait_until("a new master", LONG, || async {
        let (addr, e, _) = cluster.master().await?;
        (addr != master).then_some((addr, e))
    })
    .await;
    assert_eq!(committed(&client, &new_master).await, Some(1));
    let bodies = wait_until(
        "the delayed and the timer message on the new master",
        LONG,
        || async {
            let seen = read_all(&client, &new_master).await?;
            let bodies: Vec<Vec<u8>> = seen.into_values().collect();
            (bodies.iter().any(|b| b == b"delayed") && bodies.iter().any(|b| b == b"timer"))
                .then_some(bodies)
        },
    )
    .await;
    assert!(sent.elapsed() >= Duration::from_secs(10), "delivered early");
    assert_eq!(
        bodies.iter().filter(|b| b.as_slice() == b"delayed").count(),
        1
    );
    assert_eq!(
        bodies.iter().filter(|b| b.as_slice() == b"timer").count(),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_sync_replica_counts_gate_sends() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = ControllerCluster::start_with(
        dir.path(),
        options("allAckInSyncStateSet=false\ninSyncReplicas=2\nminInSyncReplicas=2\n"),
    )
    .await;
    let (master, _) = cluster.wait_for_master(3, LONG).await;
    let client = RemotingClient::new(ClientConfig::default());
    // Two of three must hold a send: the master and one slave.
    let r = client
        .invoke(&master, send(TOPIC, 0, b"two", &[]), T)
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{:?}", r.remark);
    // Both slaves gone: the set shrinks to the master alone, below minInSyncReplicas, and
    // sends are refused before anything is stored.
    let m = cluster.broker_index(&master).unwrap();
    for i in (0..3).filter(|i| *i != m) {
        cluster.kill_broker(i);
    }
    let r = wait_until("sends to be refused", LONG, || async {
        let r = client
            .invoke(&master, send(TOPIC, 0, b"alone", &[]), T)
            .await
            .ok()?;
        (r.code == ResponseCode::SystemError.as_i32()).then_some(r)
    })
    .await;
    assert_eq!(r.remark.as_deref(), Some("in-sync replicas not enough"));
    // (Sends before the controller agreed to the shrink were stored and timed out waiting
    // for a slave.) A refused send stores nothing.
    let before = read_all(&client, &master).await.unwrap().len();
    let r = client
        .invoke(&master, send(TOPIC, 0, b"refused", &[]), T)
        .await
        .unwrap();
    assert_eq!(r.code, ResponseCode::SystemError.as_i32());
    assert_eq!(read_all(&client, &master).await.unwrap().len(), before);
}

/// Each replica's controller id by address, as the controllers record them.
async fn replica_ids(cluster: &ControllerCluster) -> BTreeMap<String, i64> {
    let info = cluster
        .controller()
        .sync_state_data(&[cluster.broker_name().to_string()])
        .await
        .unwrap();
    let group = &info.replicas_info_table[cluster.broker_name()];
    group
        .in_sync_replicas
        .iter()
        .chain(&group.not_in_sync_replicas)
        .map(|r| (r.broker_address.clone(), r.broker_id))
        .collect()
}

fn signal(pid: u32, signal: i32) {
    // SAFETY: sends a signal to a child process this test started.
    unsafe { libc::kill(pid as i32, signal) };
}

/// The end of `addr`'s CommitLog (GET_BROKER_RUNTIME_INFO `commitLogMaxOffset`).
async fn commitlog_end(client: &RemotingClient, addr: &str) -> i64 {
    let resp = client
        .invoke(
            addr,
            rocketmq_common::protocol::RemotingCommand::bare_request(
                rocketmq_common::protocol::RequestCode::GET_BROKER_RUNTIME_INFO,
            ),
            T,
        )
        .await
        .unwrap();
    assert_eq!(resp.code, 0, "{:?}", resp.remark);
    let table: rocketmq_common::route::KvTable =
        rocketmq_common::json::from_slice_lenient(&resp.body).unwrap();
    table.table["commitLogMaxOffset"].parse().unwrap()
}

/// No phantom reads: with `allAckInSyncStateSet`, a message the master stored but no slave
/// acknowledged is never served, so no reader sees a message the cluster may then lose;
/// after the master dies, everything that was served is on the new master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreplicated_writes_are_never_read() {
    let dir = tempfile::tempdir().unwrap();
    // A long catch-up allowance: the stalled slaves stay in the SyncStateSet, so the write
    // below can never be confirmed by the master alone.
    let mut cluster = ControllerCluster::start_with(
        dir.path(),
        options("allAckInSyncStateSet=true\nhaMaxTimeSlaveNotCatchup=60000\n"),
    )
    .await;
    let (master, _) = cluster.wait_for_master(3, LONG).await;
    let m = cluster.broker_index(&master).unwrap();
    let slaves: Vec<usize> = (0..3).filter(|i| *i != m).collect();
    let client = RemotingClient::new(ClientConfig::default());
    let mut acked = Vec::new();
    for seq in 0..100u64 {
        let queue = (seq % QUEUES as u64) as i32;
        let r = client
            .invoke(&master, send(TOPIC, queue, &body(seq), &[]), T)
            .await
            .unwrap();
        assert_eq!(r.code, 0, "{:?}", r.remark);
        let h: SendMessageResponseHeader = r.decode_header().unwrap();
        acked.push(Ack {
            seq,
            queue,
            offset: h.queue_offset,
            master: master.clone(),
        });
    }
    let before = holds_all(&client, &master, &acked).await;
    let end_before = commitlog_end(&client, &master).await;

    for s in &slaves {
        signal(cluster.broker_pid(*s).unwrap(), libc::SIGSTOP);
    }
    let pending = {
        let (client, master) = (client.clone(), master.clone());
        tokio::spawn(async move {
            client
                .invoke(
                    &master,
                    send(TOPIC, 0, b"unreplicated", &[]),
                    Duration::from_secs(30),
                )
                .await
        })
    };
    // The master stores the message ...
    wait_until("the master to store the message", T, || async {
        (commitlog_end(&client, &master).await > end_before).then_some(())
    })
    .await;
    // ... and serves none of it while no slave holds it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        read_all(&client, &master).await.as_ref() == Some(&before),
        "the master served a message no slave acknowledged"
    );
    assert!(
        !pending.is_finished(),
        "the send was answered without the slaves"
    );

    cluster.kill_broker(m);
    for s in &slaves {
        signal(cluster.broker_pid(*s).unwrap(), libc::SIGCONT);
    }
    let answer = pending.await.unwrap();
    assert!(
        answer.as_ref().map_or(true, |r| r.code != 0),
        "the unreplicated send was acknowledged: {answer:?}"
    );
    let (new_master, _) = wait_until("a new master", LONG, || async {
        let (addr, e, _) = cluster.master().await?;
        (addr != master).then_some((addr, e))
    })
    .await;
    let on_new = holds_all(&client, &new_master, &acked).await;
    // Whatever was served is still there. The unacknowledged message may survive too (its
    // bytes can sit in a stopped slave's socket buffer); that is a duplicate the producer
    // retries, never a read of something later lost.
    for (at, b) in &on_new {
        match before.get(at) {
            Some(old) => assert_eq!(old, b, "message at {at:?} changed"),
            None => assert_eq!(
                b.as_slice(),
                b"unreplicated",
                "unexpected message at {at:?} on the new master"
            ),
        }
    }
    assert!(on_new.len() <= before.len() + 1);
}

/// A slave that stops acknowledging (SIGSTOP, connection kept open) leaves the
/// SyncStateSet after `haMaxTimeSlaveNotCatchup`, so sends go on without it; resumed, it
/// catches up and is taken back; it keeps its controller id throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_slave_leaves_the_sync_state_set_and_rejoins() {
    let dir = tempfile::tempdir().unwrap();
    let cluster =
        ControllerCluster::start_with(dir.path(), options("allAckInSyncStateSet=true\n")).await;
    let (master, _) = cluster.wait_for_master(3, LONG).await;
    let client = RemotingClient::new(ClientConfig::default());
    for seq in 0..20u64 {
        let r = client
            .invoke(&master, send(TOPIC, 0, &body(seq), &[]), T)
            .await
            .unwrap();
        assert_eq!(r.code, 0, "{:?}", r.remark);
    }
    let ids = replica_ids(&cluster).await;
    let m = cluster.broker_index(&master).unwrap();
    let stalled = (0..3).find(|i| *i != m).unwrap();
    let stalled_addr = cluster.broker_addr(stalled);
    let stalled_id = ids[&stalled_addr];

    signal(cluster.broker_pid(stalled).unwrap(), libc::SIGSTOP);
    let stopped = Instant::now();
    wait_until(
        "a send acknowledged without the stalled slave",
        LONG,
        || async {
            let r = client
                .invoke(&master, send(TOPIC, 0, b"while stalled", &[]), T)
                .await
                .ok()?;
            (r.code == 0).then_some(())
        },
    )
    .await;
    let dropped_after = stopped.elapsed();
    // BROKER_CONF sets haMaxTimeSlaveNotCatchup=5000; the set must not shrink much earlier.
    assert!(
        dropped_after >= Duration::from_secs(4),
        "the slave was dropped after {dropped_after:?}"
    );
    let (_, _, set) = cluster.master().await.unwrap();
    assert!(!set.sync_state_set.contains(&stalled_id), "{set:?}");
    assert_eq!(set.sync_state_set.len(), 2, "{set:?}");
    for seq in 20..60u64 {
        let r = client
            .invoke(&master, send(TOPIC, 1, &body(seq), &[]), T)
            .await
            .unwrap();
        assert_eq!(r.code, 0, "{:?}", r.remark);
    }

    signal(cluster.broker_pid(stalled).unwrap(), libc::SIGCONT);
    cluster.wait_for_master(3, LONG).await;
    let (_, _, set) = cluster.master().await.unwrap();
    assert!(set.sync_state_set.contains(&stalled_id), "{set:?}");
    let on_master = read_all(&client, &master).await.unwrap();
    serves_exactly(&client, &stalled_addr, &on_master).await;
    assert_eq!(replica_ids(&cluster).await, ids, "a replica's id changed");
}
