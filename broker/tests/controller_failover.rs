//! Controller mode with real processes: three controllers, a name server and a group of
//! three brokers with `allAckInSyncStateSet=true`. A producer sends all the time and a
//! reader follows the master; the master is killed with SIGKILL. Checks: a new master takes
//! writes within 5 s; every acknowledged message is on it at the queue offset its send
//! returned; everything the reader saw before the kill is still there, unchanged (no
//! phantom reads); the old master comes back as a slave, cuts its diverged tail and holds
//! exactly the new master's log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rocketmq_common::protocol::headers::broker::SendMessageResponseHeader;
use rocketmq_common::protocol::{RemotingCommand, ResponseCode};
use rocketmq_common::remoting::{ClientConfig, RemotingClient};
use rocketmq_testkit::cluster::ControllerCluster;
use rocketmq_testkit::requests::{pull, send};
use rocketmq_testkit::{records, wait_until};

const T: Duration = Duration::from_secs(5);
const TOPIC: &str = "FailoverTopic";
const QUEUES: i32 = 4;

const BROKER_CONF: &str = "allAckInSyncStateSet=true\nbrokerHeartbeatInterval=300\n\
     controllerHeartBeatTimeoutMills=3000\ncheckSyncStateSetPeriod=500\n\
     haMaxTimeSlaveNotCatchup=5000\nslaveTimeout=2000\nmappedFileSizeCommitLog=4194304\n\
     registerNameServerPeriod=1000\n";

/// (queue, offset) → body of a message.
type Seen = BTreeMap<(i32, i64), Vec<u8>>;

fn body(i: u64) -> Vec<u8> {
    let mut b = format!("msg-{i}-").into_bytes();
    b.resize(64 + (i as usize * 131) % 2000, b'a' + (i % 26) as u8);
    b
}

/// Reads every queue of `addr` from offset 0; `None` if the broker does not answer.
async fn read_all(client: &RemotingClient, addr: &str) -> Option<Seen> {
    let mut out = Seen::new();
    for q in 0..QUEUES {
        let mut offset = 0;
        loop {
            let resp = client
                .invoke(addr, pull("reader", TOPIC, q, offset, "*"), T)
                .await
                .ok()?;
            if resp.code != ResponseCode::Success.as_i32() {
                break;
            }
            for r in records(&resp.body) {
                out.insert((q, r.queue_offset), r.body.to_vec());
                offset = r.queue_offset + 1;
            }
        }
    }
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_keeps_every_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = ControllerCluster::start(dir.path(), 3, 3, BROKER_CONF);
    let (first_master, epoch) = cluster.wait_for_master(3, Duration::from_secs(60)).await;
    let client = RemotingClient::new(ClientConfig::default());

    // Producer: sends to whoever the controller names, records what was acknowledged.
    let acked: Arc<Mutex<Vec<(u64, i32, i64, String)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let master_now: Arc<Mutex<String>> = Arc::new(Mutex::new(first_master.clone()));
    let producer = {
        let (acked, stop, master_now, client) = (
            acked.clone(),
            stop.clone(),
            master_now.clone(),
            client.clone(),
        );
        tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Acquire) {
                let addr = master_now.lock().clone();
                let q = (i % QUEUES as u64) as i32;
                match client.invoke(&addr, send(TOPIC, q, &body(i), &[]), T).await {
                    Ok(r) if r.code == 0 => {
                        let h: SendMessageResponseHeader = r.decode_header().unwrap();
                        acked.lock().push((i, q, h.queue_offset, addr));
                        i += 1;
                    }
                    _ => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
        })
    };
    // Routing: the producer follows the controller's answer.
    let router = {
        let (stop, master_now) = (stop.clone(), master_now.clone());
        let ctl = rocketmq_common::controller::ControllerClient::new(
            RemotingClient::new(ClientConfig::default()),
            (0..3).map(|i| cluster.controller_addr(i)).collect(),
            Duration::from_secs(1),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                if let Ok(resp) = ctl
                    .invoke(RemotingCommand::request(
                        rocketmq_common::protocol::RequestCode::CONTROLLER_GET_REPLICA_INFO,
                        &rocketmq_common::protocol::headers::controller::GetReplicaInfoRequestHeader {
                            broker_name: rocketmq_testkit::cluster::BROKER_NAME.into(),
                        },
                    ))
                    .await
                    && let Ok(h) = resp.decode_header::<
                        rocketmq_common::protocol::headers::controller::GetReplicaInfoResponseHeader,
                    >()
                    && let Some(m) = h.master_address
                {
                    *master_now.lock() = m;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    wait_until(
        "1000 acknowledged sends",
        Duration::from_secs(60),
        || async { (acked.lock().len() >= 1000).then_some(()) },
    )
    .await;
    // What a consumer has seen on the master: it must survive the failover unchanged.
    let seen_before = read_all(&client, &first_master).await.unwrap();
    assert!(!seen_before.is_empty());

    let victim = cluster.broker_index(&first_master).unwrap();
    let killed_at = Instant::now();
    let acked_at_kill = acked.lock().len();
    cluster.kill_broker(victim);
    let new_master = wait_until(
        "a write acknowledged by a new master",
        Duration::from_secs(30),
        || async {
            acked
                .lock()
                .iter()
                .skip(acked_at_kill)
                .find(|(_, _, _, addr)| *addr != first_master)
                .map(|(_, _, _, addr)| addr.clone())
        },
    )
    .await;
    let failover = killed_at.elapsed();
    assert!(
        failover < Duration::from_secs(5),
        "failover took {failover:?}"
    );
    let (_, new_epoch, _) = cluster.master().await.unwrap();
    assert!(new_epoch > epoch);

    wait_until("500 more sends", Duration::from_secs(60), || async {
        (acked.lock().len() >= acked_at_kill + 500).then_some(())
    })
    .await;
    stop.store(true, Ordering::Release);
    producer.await.unwrap();
    router.await.unwrap();

    // Every acknowledged message is on the new master at its offset.
    let acked = acked.lock().clone();
    let on_new = wait_until(
        "the new master to serve every acknowledged message",
        Duration::from_secs(20),
        || async {
            let seen = read_all(&client, &new_master).await?;
            acked
                .iter()
                .all(|(i, q, off, _)| seen.get(&(*q, *off)) == Some(&body(*i)))
                .then_some(seen)
        },
    )
    .await;
    for (key, b) in &seen_before {
        assert_eq!(
            on_new.get(key),
            Some(b),
            "message at {key:?} seen before the failover changed"
        );
    }

    // The old master rejoins as a slave and ends up with the new master's log.
    cluster.start_broker(victim);
    let old = cluster.broker_addr(victim);
    wait_until(
        "the old master to hold the new master's messages",
        Duration::from_secs(30),
        || async {
            let seen = read_all(&client, &old).await?;
            (seen == on_new).then_some(())
        },
    )
    .await;
    let resp = client
        .invoke(&old, send(TOPIC, 0, b"x", &[]), T)
        .await
        .unwrap();
    assert_eq!(
        resp.code,
        ResponseCode::ServiceNotAvailable.as_i32(),
        "the old master is a slave now"
    );
    eprintln!("failover: {failover:?}");
}
