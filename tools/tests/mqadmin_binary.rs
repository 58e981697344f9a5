//! The `mqadmin` binary as a user runs it: real process, real arguments, stdout, stderr and
//! exit status, against an in-process name server.

mod support;

use std::process::{Command, Output};

use support::*;

/// Runs the binary with `args` and no `NAMESRV_ADDR` from the caller's environment.
async fn mqadmin(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    // A blocking wait must not stall the runtime that serves the name server.
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_mqadmin"))
            .args(&args)
            .env_remove("NAMESRV_ADDR")
            .output()
            .expect("mqadmin runs")
    })
    .await
    .expect("join")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_list_and_cluster_list_print_what_the_name_server_knows() {
    let namesrv = start_namesrv().await;
    let broker = FakeBroker::start().await;
    let _registration = register(
        &namesrv.addr,
        "DefaultCluster",
        "broker-a",
        0,
        &broker.addr,
        &[("TopicTest", 4), ("OrderTopic", 2)],
    )
    .await;

    let out = mqadmin(&["topicList", "-n", &namesrv.addr]).await;
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let mut topics: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    topics.sort();
    assert_eq!(topics, ["OrderTopic", "TopicTest"]);

    // -n before the command, and NAMESRV_ADDR instead of -n, work too.
    let out = mqadmin(&["-n", &namesrv.addr, "clusterList"]).await;
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    let rows: Vec<Vec<&str>> = text
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(text.starts_with("#Cluster Name"), "{text}");
    assert_eq!(rows.len(), 2, "{text}");
    assert_eq!(
        rows[1][..4],
        ["DefaultCluster", "broker-a", "0", broker.addr.as_str()]
    );

    let addr = namesrv.addr.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_mqadmin"))
            .arg("topicList")
            .env("NAMESRV_ADDR", format!("127.0.0.1:1;{addr}"))
            .output()
            .expect("mqadmin runs")
    })
    .await
    .expect("join");
    // The first name server is down; the second answers.
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert!(stdout(&out).contains("TopicTest"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_fails_with_a_clear_message() {
    // Missing required flag: usage error, exit 2, names the flag.
    let out = mqadmin(&[
        "updateTopic",
        "-n",
        "127.0.0.1:9876",
        "-c",
        "DefaultCluster",
    ])
    .await;
    assert_eq!(out.status.code(), Some(2), "stdout: {}", stdout(&out));
    assert!(stderr(&out).contains("--topic"), "{}", stderr(&out));

    // Unknown command.
    let out = mqadmin(&["makeCoffee", "-n", "127.0.0.1:9876"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("makeCoffee"), "{}", stderr(&out));

    // Unreachable name server: exit 1 and the address in the message.
    let out = mqadmin(&["topicList", "-n", "127.0.0.1:1"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.starts_with("mqadmin topicList: connect to 127.0.0.1:1 failed"),
        "{err}"
    );
    assert!(stdout(&out).is_empty());

    // No name server at all.
    let out = mqadmin(&["clusterList"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("NAMESRV_ADDR"), "{}", stderr(&out));

    // Help lists the RocketMQ command names.
    let out = mqadmin(&["--help"]).await;
    assert!(out.status.success());
    for command in [
        "updateTopic",
        "deleteTopic",
        "topicList",
        "topicRoute",
        "topicStatus",
        "clusterList",
        "updateSubGroup",
        "deleteSubGroup",
        "consumerProgress",
        "queryMsgByKey",
        "queryMsgById",
    ] {
        assert!(
            stdout(&out).contains(command),
            "{command} missing from help"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_topic_is_an_error_not_an_empty_route() {
    let namesrv = start_namesrv().await;
    let out = mqadmin(&["topicRoute", "-n", &namesrv.addr, "-t", "Missing"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "mqadmin topicRoute: topic Missing has no route on the name server (does it exist?)\n"
    );
}
