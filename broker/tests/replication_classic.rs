//! Classic master/slave replication with real processes: a SYNC_MASTER and a SLAVE that
//! finds its master through the name server. Every acknowledged send is on the slave, whose
//! CommitLog is byte-identical to the master's and which serves the messages to pulls at
//! the same queue offsets; a slave refuses sends; with the slave stalled the master answers
//! FLUSH_SLAVE_TIMEOUT, with it gone SLAVE_NOT_AVAILABLE; a restarted slave catches up from
//! where it stopped. An ASYNC_MASTER acknowledges without waiting and its slave catches up.

use std::path::Path;
use std::time::Duration;

use rocketmq_common::protocol::headers::broker::{
    PullMessageResponseHeader, SendMessageResponseHeader,
};
use rocketmq_common::protocol::{RemotingCommand, ResponseCode};
use rocketmq_common::remoting::{ClientConfig, RemotingClient};
use rocketmq_testkit::requests::{pull, read_topic, send};
use rocketmq_testkit::{ServerProcess, binary, free_port, free_port_pair, wait_until};

const T: Duration = Duration::from_secs(5);
const TOPIC: &str = "ReplTopic";

fn namesrv(dir: &Path, port: u16) -> ServerProcess {
    ServerProcess::spawn(
        &binary("rocketmq-namesrv", "mqnamesrv"),
        &[
            "--bindAddress",
            "127.0.0.1",
            "--listenPort",
            &port.to_string(),
            "--metricsPort",
            "0",
            "--kvConfigPath",
            dir.join("kv.json").to_str().unwrap(),
        ],
        None,
    )
}

fn broker(dir: &Path, name: &str, port: u16, namesrv: u16, extra: &str) -> ServerProcess {
    let store = dir.join(name);
    let conf = dir.join(format!("{name}.conf"));
    std::fs::write(
        &conf,
        format!(
            "brokerName=broker-a\nbindAddress=127.0.0.1\nbrokerIP1=127.0.0.1\nlistenPort={port}\n\
             haListenPort={}\nnamesrvAddr=127.0.0.1:{namesrv}\nstorePathRootDir={}\n\
             mappedFileSizeCommitLog=1048576\nmetricsPort=0\nslaveTimeout=700\n{extra}",
            port + 1,
            store.display()
        ),
    )
    .unwrap();
    ServerProcess::spawn(
        &binary("rocketmq-broker", "mqbroker"),
        &["-c", conf.to_str().unwrap()],
        Some(&dir.join(format!("{name}.log"))),
    )
}

async fn serving(client: &RemotingClient, addr: &str) {
    wait_until(
        &format!("{addr} serving"),
        Duration::from_secs(30),
        || async {
            client
                .invoke_ok(
                    addr,
                    RemotingCommand::bare_request(
                        rocketmq_common::protocol::RequestCode::GET_ALL_TOPIC_CONFIG,
                    ),
                    Duration::from_secs(1),
                )
                .await
                .ok()
        },
    )
    .await;
}

async fn send_one(client: &RemotingClient, addr: &str, i: usize) -> RemotingCommand {
    let body = vec![(i % 251) as u8; 100 + (i * 37) % 3000];
    client
        .invoke(
            addr,
            send(TOPIC, (i % 4) as i32, &body, &[("KEYS", &format!("k{i}"))]),
            T,
        )
        .await
        .unwrap()
}

/// (queue, offset, body) of every message the broker serves on the four queues.
async fn pull_all(client: &RemotingClient, addr: &str, want: usize) -> Vec<(i32, i64, Vec<u8>)> {
    wait_until(
        "every message readable",
        Duration::from_secs(20),
        || async {
            let all = read_topic(client, addr, TOPIC, 4).await?;
            let out: Vec<_> = all.into_iter().map(|((q, o), (_, b))| (q, o, b)).collect();
            (out.len() >= want).then_some(out)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_master_replicates_every_acknowledged_message_to_its_slave() {
    let dir = tempfile::tempdir().unwrap();
    let ns = free_port();
    let (m, s) = (free_port_pair(), free_port_pair());
    let _ns = namesrv(dir.path(), ns);
    let _master = broker(
        dir.path(),
        "master",
        m,
        ns,
        "brokerRole=SYNC_MASTER\nslaveReadEnable=true\naccessMessageInMemoryMaxRatio=0\n",
    );
    let mut slave = broker(dir.path(), "slave", s, ns, "brokerRole=SLAVE\nbrokerId=1\n");
    let client = RemotingClient::new(ClientConfig::default());
    let (ma, sa) = (format!("127.0.0.1:{m}"), format!("127.0.0.1:{s}"));
    serving(&client, &ma).await;
    serving(&client, &sa).await;

    // The slave finds its master through the name server, then every send waits for it.
    wait_until("the slave to follow", Duration::from_secs(20), || async {
        let r = send_one(&client, &ma, 0).await;
        (r.code == 0).then_some(())
    })
    .await;
    let mut acked = 1;
    for i in 1..1500 {
        let r = send_one(&client, &ma, i).await;
        assert_eq!(r.code, 0, "send {i}: {:?}", r.remark);
        let _: SendMessageResponseHeader = r.decode_header().unwrap();
        acked += 1;
    }
    let on_master = pull_all(&client, &ma, acked).await;
    let on_slave = pull_all(&client, &sa, acked).await;
    assert_eq!(
        on_slave, on_master,
        "the slave serves the same messages at the same offsets"
    );
    // Sends that waited for the slave to appear were stored too (SLAVE_NOT_AVAILABLE).
    assert!(on_slave.len() >= acked);

    // With slaveReadEnable the master sends a consumer reading old messages to the slave
    // (here every read counts as old: accessMessageInMemoryMaxRatio=0); the slave never
    // redirects.
    let suggested = |resp: RemotingCommand| {
        resp.decode_header::<PullMessageResponseHeader>()
            .unwrap()
            .suggest_which_broker_id
    };
    let r = client
        .invoke(&ma, pull("g", TOPIC, 0, 0, "*"), T)
        .await
        .unwrap();
    assert_eq!(suggested(r), 1);
    let r = client
        .invoke(&sa, pull("g", TOPIC, 0, 0, "*"), T)
        .await
        .unwrap();
    assert_eq!(suggested(r), 0);

    // A slave takes no writes.
    let r = send_one(&client, &sa, 0).await;
    assert_eq!(
        r.code,
        ResponseCode::ServiceNotAvailable.as_i32(),
        "{:?}",
        r.remark
    );

    // A stalled slave: the master stores, waits slaveTimeout, answers FLUSH_SLAVE_TIMEOUT.
    // SAFETY: signals to our own child.
    unsafe { libc::kill(slave.pid() as i32, libc::SIGSTOP) };
    let r = send_one(&client, &ma, 4999).await;
    unsafe { libc::kill(slave.pid() as i32, libc::SIGCONT) };
    assert_eq!(
        r.code,
        ResponseCode::FlushSlaveTimeout.as_i32(),
        "{:?}",
        r.remark
    );
    // Without its slave a SYNC_MASTER stores and says so at once.
    slave.kill9();
    wait_until(
        "the master to notice its slave is gone",
        Duration::from_secs(10),
        || async {
            let r = send_one(&client, &ma, 5000).await;
            (r.code == ResponseCode::SlaveNotAvailable.as_i32()).then_some(())
        },
    )
    .await;

    // Back again, the slave catches up from its own end.
    let _slave = broker(dir.path(), "slave", s, ns, "brokerRole=SLAVE\nbrokerId=1\n");
    serving(&client, &sa).await;
    wait_until(
        "the restarted slave to follow",
        Duration::from_secs(20),
        || async {
            let r = send_one(&client, &ma, 5001).await;
            (r.code == 0).then_some(())
        },
    )
    .await;
    let on_master = pull_all(&client, &ma, acked + 2).await;
    let on_slave = pull_all(&client, &sa, on_master.len()).await;
    assert_eq!(on_slave, on_master);
    let files = |name: &str| -> Vec<u8> {
        let mut out = Vec::new();
        let mut paths: Vec<_> = std::fs::read_dir(dir.path().join(name).join("commitlog"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        for p in paths {
            out.extend(std::fs::read(p).unwrap());
        }
        out
    };
    assert!(files("slave") == files("master"), "CommitLogs differ");
}

/// An ASYNC_MASTER acknowledges without waiting for its slave (stalled or gone), and the
/// slave still ends up with every message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_master_acknowledges_at_once_and_its_slave_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let ns = free_port();
    let (m, s) = (free_port_pair(), free_port_pair());
    let _ns = namesrv(dir.path(), ns);
    let _master = broker(dir.path(), "master", m, ns, "brokerRole=ASYNC_MASTER\n");
    let mut slave = broker(dir.path(), "slave", s, ns, "brokerRole=SLAVE\nbrokerId=1\n");
    let client = RemotingClient::new(ClientConfig::default());
    let (ma, sa) = (format!("127.0.0.1:{m}"), format!("127.0.0.1:{s}"));
    serving(&client, &ma).await;
    serving(&client, &sa).await;
    for i in 0..500 {
        let r = send_one(&client, &ma, i).await;
        assert_eq!(r.code, 0, "send {i}: {:?}", r.remark);
    }
    let on_master = pull_all(&client, &ma, 500).await;
    assert_eq!(pull_all(&client, &sa, 500).await, on_master);

    // A stalled slave: SEND_OK, where a SYNC_MASTER would wait and say FLUSH_SLAVE_TIMEOUT.
    // SAFETY: signals to our own child.
    unsafe { libc::kill(slave.pid() as i32, libc::SIGSTOP) };
    for i in 500..600 {
        let r = send_one(&client, &ma, i).await;
        assert_eq!(r.code, 0, "send {i}: {:?}", r.remark);
    }
    unsafe { libc::kill(slave.pid() as i32, libc::SIGCONT) };
    let on_master = pull_all(&client, &ma, 600).await;
    assert_eq!(pull_all(&client, &sa, 600).await, on_master);

    // Without the slave, still SEND_OK.
    slave.kill9();
    let r = send_one(&client, &ma, 600).await;
    assert_eq!(r.code, 0, "{:?}", r.remark);
}
