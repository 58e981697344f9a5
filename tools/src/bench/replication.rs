//! `mqbench replication`: what synchronous replication costs and how fast failover is.
//!
//! 1. Produce throughput and latency against a standalone broker and against the master
//!    of a controller-mode group of three replicas with `allAckInSyncStateSet=true` (every
//!    send waits for both slaves), same client, same run.
//! 2. Failover: a producer sends all the time to the master the controller names; the
//!    master is killed with SIGKILL, the time from the kill to the first write acknowledged
//!    by the new master is recorded, the old master is restarted and rejoins; repeated.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rocketmq_client::MqClient;
use rocketmq_testkit::cluster::{ClusterOptions, ControllerCluster};
use rocketmq_tools::{Latencies, cpu_time};

use crate::local::{T, create_topic, start_local, wait_until_serving};
use crate::produce::{Figures, drive, send_stamped};

/// Settings of a replication run.
pub struct ReplicationArgs {
    pub connections: usize,
    pub size: usize,
    pub duration: Duration,
    pub kills: usize,
}

const TOPIC: &str = "ReplicationBench";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Prints a mode's figures; `cpu` is the broker processes' CPU time during the run.
fn report(name: &str, f: &mut Figures, cpu: Duration) {
    println!(
        "  {name:<26} {:>8.0} msgs/s  p50 {:>7.3} ms  p99 {:>7.3} ms  broker CPU {:.2} core-s per 100k msgs  ({} errors)",
        f.rate(),
        ms(f.latencies.quantile(0.5)),
        ms(f.latencies.quantile(0.99)),
        cpu.as_secs_f64() * 100_000.0 / f.sent.max(1) as f64,
        f.errors
    );
}

/// Total CPU time of `pids`.
fn cpu_of(pids: &[u32]) -> Duration {
    pids.iter().filter_map(|p| cpu_time(*p)).sum()
}

/// Runs both parts and prints the figures.
pub async fn run(args: ReplicationArgs) {
    let client = MqClient::for_brokers(T);
    let dir = std::env::temp_dir().join(format!("mqbench-replication-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create the benchmark directory");
    println!(
        "mqbench replication: {} connections, {} B messages, {:?} per mode, {} kills",
        args.connections, args.size, args.duration, args.kills
    );

    // Standalone broker.
    let standalone = {
        let local = start_local(Some(&dir.join("standalone")), "");
        wait_until_serving(&client, &local.broker).await;
        create_topic(&client, &local.broker, TOPIC, 8).await;
        let before = cpu_of(&[local.broker_pid]);
        let mut f = drive(
            &local.broker,
            TOPIC,
            args.connections,
            args.size,
            1,
            args.duration,
        )
        .await;
        report("standalone", &mut f, cpu_of(&[local.broker_pid]) - before);
        f
    };

    // Three replicas, every send acknowledged by all of them.
    let mut cluster = ControllerCluster::start_with(
        &dir.join("group"),
        ClusterOptions {
            broker_extra: "allAckInSyncStateSet=true\nbrokerHeartbeatInterval=300\n\
                 controllerHeartBeatTimeoutMills=3000\ncheckSyncStateSetPeriod=500\n\
                 slaveTimeout=3000\nregisterNameServerPeriod=1000\n"
                .into(),
            ..ClusterOptions::default()
        },
    )
    .await;
    let (master, _) = cluster.wait_for_master(3, Duration::from_secs(120)).await;
    create_topic(&client, &master, TOPIC, 8).await;
    let pids: Vec<u32> = (0..cluster.broker_count())
        .filter_map(|i| cluster.broker_pid(i))
        .collect();
    let before = cpu_of(&pids);
    let mut replicated = drive(
        &master,
        TOPIC,
        args.connections,
        args.size,
        1,
        args.duration,
    )
    .await;
    report(
        "3 replicas, all acked",
        &mut replicated,
        cpu_of(&pids) - before,
    );
    println!(
        "  replicated / standalone    {:.1} % of the throughput",
        replicated.rate() / standalone.rate() * 100.0
    );

    // Failover.
    let mut times = Latencies::default();
    for round in 0..args.kills {
        let (master, _) = cluster.wait_for_master(3, Duration::from_secs(120)).await;
        let took = failover_once(&mut cluster, &master).await;
        println!(
            "  kill {:>2}: new master took a write {:.0} ms after the kill",
            round + 1,
            ms(took)
        );
        times.record(took);
    }
    if args.kills > 0 {
        println!(
            "  failover ({} kills)       p50 {:.0} ms  p99 {:.0} ms  max {:.0} ms (kill -9 of the master → first write acknowledged by the new one)",
            args.kills,
            ms(times.quantile(0.5)),
            ms(times.quantile(0.99)),
            ms(times.quantile(1.0))
        );
    }
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Kills `master` while a producer runs; returns the time to the first acknowledged write
/// on another broker, then restarts the old master.
async fn failover_once(cluster: &mut ControllerCluster, master: &str) -> Duration {
    let probe = Arc::new(cluster.master_probe());
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(Instant, String)>();
    let producer = {
        let (stop, probe) = (stop.clone(), probe.clone());
        tokio::spawn(async move {
            // Short timeouts: a send to the dead master must give up quickly.
            let client = MqClient::for_brokers(T.min(Duration::from_secs(2)));
            let payload = vec![b'f'; 256];
            let mut target = None;
            let mut last_lookup = Instant::now() - Duration::from_secs(1);
            while !stop.load(Ordering::Acquire) {
                if target.is_none() || last_lookup.elapsed() >= Duration::from_millis(20) {
                    if let Some((addr, _, _)) = probe.master().await {
                        target = Some(addr);
                    }
                    last_lookup = Instant::now();
                }
                let Some(addr) = target.clone() else { continue };
                if send_stamped(&client, &addr, TOPIC, &payload, 1).await {
                    let _ = tx.send((Instant::now(), addr));
                } else {
                    target = None;
                }
            }
        })
    };
    // Steady state first.
    let _ = rx.recv().await;
    let victim = cluster
        .broker_index(master)
        .expect("the master is one of ours");
    let killed = Instant::now();
    cluster.kill_broker(victim);
    let took = loop {
        let (at, addr) = rx.recv().await.expect("the producer runs");
        if addr != master && at > killed {
            break at - killed;
        }
    };
    stop.store(true, Ordering::Release);
    let _ = producer.await;
    cluster.start_broker(victim);
    took
}
