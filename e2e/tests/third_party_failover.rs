//! Failover under a client we did not write: the mxsm/rocketmq-rust project's
//! `DefaultMQProducer` sends continuously through our name server to a controller-mode
//! group of three brokers (`allAckInSyncStateSet=true`, three controllers, all real
//! processes); the master is killed with SIGKILL.
//!
//! Checks: a new master accepts writes within 5 s of the kill (probed directly); the
//! producer, once its route refresh points it at the new master, sends on; every send the
//! library reported `SEND_OK` is readable from the new master at the queue offset the
//! library got back, with its key and body; whatever a reader saw before the kill is still
//! there unchanged.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rocketmq_client_rust::{
    ClientConfig as TpClientConfig, ClientRuntime, ClientRuntimeConfig, DefaultMQProducer,
    TelemetryHandle,
};
use rocketmq_common::remoting::{ClientConfig, RemotingClient};
use rocketmq_model::common::message::message_single::Message;
use rocketmq_model::result::SendStatus;
use rocketmq_runtime::RuntimeContext;
use rocketmq_testkit::cluster::{ClusterOptions, ControllerCluster};
use rocketmq_testkit::requests::{read_topic, send};
use rocketmq_testkit::wait_until;

const TOPIC: &str = "TpFailoverTopic";
const T: Duration = Duration::from_secs(5);
const LONG: Duration = Duration::from_secs(90);

fn body_of(i: usize) -> Vec<u8> {
    let mut b = format!("tp-{i}:").into_bytes();
    b.resize(32 + (i * 53) % 900, b'0' + (i % 10) as u8);
    b
}

/// What the library acknowledged: key → (queue, offset, body).
type Acked = BTreeMap<String, (i32, i64, Vec<u8>)>;

/// (queue, offset) → (key, body) of every message `addr` serves.
async fn read_all(
    client: &RemotingClient,
    addr: &str,
) -> Option<BTreeMap<(i32, i64), (String, Vec<u8>)>> {
    read_topic(client, addr, TOPIC, 4).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn third_party_producer_loses_nothing_acknowledged_across_a_failover() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = ControllerCluster::start_with(
        dir.path(),
        ClusterOptions {
            broker_extra: "allAckInSyncStateSet=true\nbrokerHeartbeatInterval=300\n\
                 controllerHeartBeatTimeoutMills=3000\ncheckSyncStateSetPeriod=500\n\
                 slaveTimeout=2000\nregisterNameServerPeriod=1000\n"
                .into(),
            ..ClusterOptions::default()
        },
    )
    .await;
    let (first_master, _) = cluster.wait_for_master(3, LONG).await;
    let client = RemotingClient::new(ClientConfig::default());
    // The topic exists before the library asks the name server for its route.
    let r = client
        .invoke(
            &first_master,
            send(TOPIC, 0, b"seed", &[("KEYS", "seed")]),
            T,
        )
        .await
        .unwrap();
    assert_eq!(r.code, 0, "{:?}", r.remark);
    wait_until("the topic's route", LONG, || async {
        let h = rocketmq_common::protocol::headers::namesrv::GetRouteInfoRequestHeader {
            topic: TOPIC.into(),
            accept_standard_json_only: None,
        };
        let resp = client
            .invoke(
                &cluster.namesrv_addr(),
                rocketmq_common::protocol::RemotingCommand::request(
                    rocketmq_common::protocol::RequestCode::GET_ROUTEINFO_BY_TOPIC,
                    &h,
                ),
                T,
            )
            .await
            .ok()?;
        (resp.code == 0).then_some(())
    })
    .await;

    let context = RuntimeContext::try_from_current("tp-failover").unwrap();
    let runtime = ClientRuntime::try_new(
        context.service_context("tp-failover"),
        ClientRuntimeConfig::default(),
        TelemetryHandle::noop(),
    )
    .unwrap();
    let mut producer = DefaultMQProducer::builder(runtime.clone())
        .client_config(
            TpClientConfig::builder()
                .namesrv_addr(cluster.namesrv_addr())
                .instance_name("tp-failover")
                .poll_name_server_interval(10_000)
                .build()
                .unwrap(),
        )
        .producer_group("PG_failover")
        .send_msg_timeout(3000)
        .retry_times_when_send_failed(1)
        .build();
    producer.start().await.unwrap();

    let acked: Arc<parking_lot::Mutex<Acked>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (acked, stop) = (acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0usize;
            while !stop.load(Ordering::Acquire) {
                let key = format!("k{i}");
                let message = Message::builder()
                    .topic(TOPIC)
                    .key(key.clone())
                    .body(body_of(i))
                    .build()
                    .unwrap();
                if let Ok(Some(result)) = producer.send(message).await
                    && result.send_status == SendStatus::SendOk
                {
                    let q = result.message_queue.as_ref().map_or(-1, |m| m.queue_id());
                    acked
                        .lock()
                        .insert(key, (q, result.queue_offset as i64, body_of(i)));
                } else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                i += 1;
            }
            producer.shutdown().await;
        })
    };

    wait_until("500 sends acknowledged to the library", LONG, || async {
        (acked.lock().len() >= 500).then_some(())
    })
    .await;
    let seen_before = read_all(&client, &first_master).await.unwrap();
    let victim = cluster.broker_index(&first_master).unwrap();
    let killed = Instant::now();
    cluster.kill_broker(victim);
    let acked_at_kill = acked.lock().len();

    // A new master takes writes within 5 s.
    let new_master = wait_until("a new master taking writes", LONG, || async {
        let (addr, _, _) = cluster.master().await?;
        if addr == first_master {
            return None;
        }
        let r = client
            .invoke(&addr, send(TOPIC, 0, b"probe", &[("KEYS", "probe")]), T)
            .await
            .ok()?;
        (r.code == 0).then_some(addr)
    })
    .await;
    let failover = killed.elapsed();
    assert!(
        failover < Duration::from_secs(5),
        "failover took {failover:?}"
    );

    // The library finds the new master through its route refresh and sends on.
    wait_until(
        "the library to send through the new master",
        LONG,
        || async { (acked.lock().len() >= acked_at_kill + 300).then_some(()) },
    )
    .await;
    stop.store(true, Ordering::Release);
    sender.await.unwrap();
    let acked = acked.lock().clone();

    let on_new = wait_until(
        "the new master to serve every acknowledged message",
        LONG,
        || async {
            let seen = read_all(&client, &new_master).await?;
            acked
                .iter()
                .all(|(key, (q, off, body))| {
                    seen.get(&(*q, *off))
                        .is_some_and(|(k, b)| k == key && b == body)
                })
                .then_some(seen)
        },
    )
    .await;
    for (at, message) in &seen_before {
        assert_eq!(
            on_new.get(at),
            Some(message),
            "message at {at:?} changed after the failover"
        );
    }
    runtime.shutdown().await;
    let _ = context.shutdown_tasks(Duration::from_secs(5)).await;
    eprintln!(
        "failover {failover:?}; {} sends acknowledged to the library",
        acked.len()
    );
}
