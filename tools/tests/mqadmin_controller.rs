//! The controller commands of the `mqadmin` binary against a real controller-mode cluster
//! (three controllers, a name server, three brokers): metadata, SyncStateSets, epochs,
//! clusterList's role and epoch columns, a designated election, controller config, and a
//! refused cleanup of a living broker.

use std::process::Command;
use std::time::Duration;

use rocketmq_testkit::cluster::{ClusterOptions, ControllerCluster};
use rocketmq_testkit::wait_until;

fn mqadmin(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mqadmin"))
        .args(args)
        .output()
        .expect("run mqadmin");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_commands_show_and_change_the_replication_state() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = ControllerCluster::start_with(
        dir.path(),
        ClusterOptions {
            broker_extra: "brokerHeartbeatInterval=300\ncheckSyncStateSetPeriod=500\n\
                           registerNameServerPeriod=1000\n"
                .into(),
            ..ClusterOptions::default()
        },
    )
    .await;
    let (master, _) = cluster.wait_for_master(3, Duration::from_secs(60)).await;
    let controllers = (0..3)
        .map(|i| cluster.controller_addr(i))
        .collect::<Vec<_>>()
        .join(";");
    let ns = cluster.namesrv_addr();

    let (ok, out, err) = mqadmin(&["getControllerMetaData", "-a", &cluster.controller_addr(0)]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("\n#ControllerGroup\tDefaultControllerGroup\n#ControllerLeaderId\tn"),
        "{out}"
    );
    assert_eq!(out.matches("#Peer:\tn").count(), 3, "{out}");

    let (ok, out, err) = mqadmin(&["getSyncStateSet", "-a", &controllers, "-b", "broker-a"]);
    assert!(ok, "{err}");
    assert!(out.contains("#brokerName\tbroker-a\n"), "{out}");
    assert!(out.contains(&format!("#MasterAddr\t{master}\n")), "{out}");
    assert!(out.contains("#SyncStateSetNums\t3\n"), "{out}");
    assert_eq!(
        out.matches("InSyncReplica:\tReplicaIdentity{brokerName='broker-a'")
            .count(),
        3
    );
    let (ok, by_cluster, _) = mqadmin(&[
        "getSyncStateSet",
        "-a",
        &controllers,
        "-c",
        "DefaultCluster",
        "-n",
        &ns,
    ]);
    assert!(ok);
    assert_eq!(by_cluster, out);

    // Every replica reports the epoch its master started.
    let epochs = wait_until(
        "brokers registered with the name server",
        Duration::from_secs(30),
        || async {
            let (ok, out, _) = mqadmin(&["getBrokerEpoch", "-b", "broker-a", "-n", &ns]);
            (ok && out.matches("#brokerAddr").count() == 3).then_some(out)
        },
    )
    .await;
    assert_eq!(
        epochs
            .matches("#Epoch: EpochEntry{epoch=1, startOffset=0, endOffset=")
            .count(),
        3,
        "{epochs}"
    );

    let (ok, out, err) = mqadmin(&["clusterList", "-n", &ns]);
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .next()
            .unwrap()
            .ends_with("#ROLE         #EPOCH"),
        "{out}"
    );
    assert_eq!(out.matches("SYNC_MASTER").count(), 1, "{out}");
    assert_eq!(out.matches("SLAVE").count(), 2, "{out}");

    // A designated election moves the master to a slave.
    let slave_id = wait_until("a slave in the set", Duration::from_secs(10), || async {
        let (_, out, _) = mqadmin(&["getSyncStateSet", "-a", &controllers, "-b", "broker-a"]);
        out.lines()
            .filter(|l| l.starts_with("InSyncReplica:"))
            .find(|l| !l.contains(&format!("brokerAddress='{master}'")))
            .and_then(|l| l.split("brokerId=").nth(1))
            .and_then(|rest| rest.split(',').next())
            .map(str::to_string)
    })
    .await;
    let (ok, out, err) = mqadmin(&[
        "electMaster",
        "-a",
        &controllers,
        "-b",
        &slave_id,
        "-bn",
        "broker-a",
        "-c",
        "DefaultCluster",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("#MasterEpoch\t2\n"), "{out}");
    assert_eq!(out.matches("\t#Broker\t").count(), 3, "{out}");
    wait_until("the designated master", Duration::from_secs(20), || async {
        let (addr, epoch, _) = cluster.master().await?;
        (addr != master && epoch == 2).then_some(())
    })
    .await;

    let (ok, out, err) = mqadmin(&["getControllerConfig", "-a", &controllers]);
    assert!(ok, "{err}");
    assert_eq!(out.matches("============127.0.0.1:").count(), 3, "{out}");
    assert!(
        out.contains("enableElectUncleanMaster                          =  false\n"),
        "{out}"
    );
    let (ok, out, err) = mqadmin(&[
        "updateControllerConfig",
        "-a",
        &controllers,
        "-k",
        "enableElectUncleanMaster",
        "-v",
        "true",
    ]);
    assert!(ok, "{err}");
    assert!(
        out.starts_with("update controller config success![127.0.0.1:"),
        "{out}"
    );
    let (_, out, _) = mqadmin(&["getControllerConfig", "-a", &cluster.controller_addr(1)]);
    assert!(
        out.contains("enableElectUncleanMaster                          =  true\n"),
        "{out}"
    );
    let (ok, _, err) = mqadmin(&[
        "updateControllerConfig",
        "-a",
        &controllers,
        "-k",
        "controllerStorePath",
        "-v",
        "/x",
    ]);
    assert!(!ok && err.contains("black list"), "{err}");

    // Living brokers are not cleaned without -l; bad ids are refused before any request.
    let (ok, _, err) = mqadmin(&[
        "cleanBrokerMetadata",
        "-a",
        &controllers,
        "-bn",
        "broker-a",
        "-c",
        "DefaultCluster",
        "-b",
        "1",
    ]);
    assert!(!ok && err.contains("2009"), "{err}");
    let (ok, _, err) = mqadmin(&[
        "cleanBrokerMetadata",
        "-a",
        &controllers,
        "-bn",
        "broker-a",
        "-b",
        "x",
    ]);
    assert!(!ok && err.contains("clusterName"), "{err}");
}
