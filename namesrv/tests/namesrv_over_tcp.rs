//! The name server over real TCP: every request family through our client, hand-built
//! frames in both header encodings, and malformed input that must not disturb others.

use std::io::Write;
use std::time::Duration;

use bytes::BytesMut;
use rocketmq_common::protocol::codec::RemotingCodec;
use rocketmq_common::protocol::headers::namesrv::*;
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode, SerializeType};
use rocketmq_common::remoting::{ClientConfig, RemotingClient};
use rocketmq_common::route::{
    ClusterInfo, KvTable, RegisterBrokerBody, TopicConfig, TopicList, TopicRouteData,
};
use rocketmq_namesrv::{NamesrvConfig, NamesrvServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

const TIMEOUT: Duration = Duration::from_secs(5);

async fn start() -> (NamesrvServer, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = NamesrvConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        metrics_port: 0,
        kv_config_path: dir.path().join("kvConfig.json"),
        ..NamesrvConfig::default()
    };
    let server = NamesrvServer::start(config).await.unwrap();
    let addr = server.local_addr().to_string();
    (server, addr, dir)
}

fn register_request(
    broker_name: &str,
    broker_id: i64,
    broker_addr: &str,
    topics: &[(&str, i32)],
) -> RemotingCommand {
    let mut body = RegisterBrokerBody::default();
    body.topic_config_serialize_wrapper.data_version.counter = 1;
    for (t, q) in topics {
        body.topic_config_serialize_wrapper
            .topic_config_table
            .insert(t.to_string(), TopicConfig::new(*t, *q));
    }
    let body = serde_json::to_vec(&body).unwrap();
    let header = RegisterBrokerRequestHeader {
        broker_name: broker_name.into(),
        broker_addr: broker_addr.into(),
        cluster_name: "DefaultCluster".into(),
        ha_server_addr: "127.0.0.1:10912".into(),
        broker_id,
        heartbeat_timeout_millis: None,
        enable_acting_master: Some(false),
        compressed: Some(false),
        body_crc32: Some((crc32fast::hash(&body) & 0x7FFF_FFFF) as i32),
    };
    RemotingCommand::request(RequestCode::REGISTER_BROKER, &header).with_body(body)
}

fn route_request(topic: &str) -> RemotingCommand {
    RemotingCommand::request(
        RequestCode::GET_ROUTEINFO_BY_TOPIC,
        &GetRouteInfoRequestHeader {
            topic: topic.into(),
            accept_standard_json_only: None,
        },
    )
}

#[tokio::test]
async fn broker_registration_and_route_lookup() {
    let (server, addr, _dir) = start().await;
    let client = RemotingClient::new(ClientConfig::default());
    let resp = client
        .invoke_ok(
            &addr,
            register_request("broker-a", 0, "127.0.0.1:10911", &[("TopicTest", 4)]),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(resp.ext_field("masterAddr"), None);

    let resp = client
        .invoke_ok(&addr, route_request("TopicTest"), TIMEOUT)
        .await
        .unwrap();
    let text = String::from_utf8(resp.body.to_vec()).unwrap();
    assert!(
        text.contains(r#""brokerAddrs":{"0":"127.0.0.1:10911"}"#),
        "{text}"
    );
    let route: TopicRouteData = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(route.queue_datas[0].read_queue_nums, 4);
    assert_eq!(route.broker_datas[0].cluster, "DefaultCluster");

    // A slave learns its master.
    let resp = client
        .invoke_ok(
            &addr,
            register_request("broker-a", 1, "127.0.0.1:20911", &[("TopicTest", 4)]),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(resp.ext_field("masterAddr"), Some("127.0.0.1:10911"));
    assert_eq!(resp.ext_field("haServerAddr"), Some("127.0.0.1:10912"));

    let missing = client
        .invoke(&addr, route_request("Nope"), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(missing.code, ResponseCode::TopicNotExist.as_i32());
    assert!(missing.remark.unwrap().contains("Nope"));

    let cluster = client
        .invoke_ok(
            &addr,
            RemotingCommand::bare_request(RequestCode::GET_BROKER_CLUSTER_INFO),
            TIMEOUT,
        )
        .await
        .unwrap();
    let cluster: ClusterInfo = serde_json::from_slice(&cluster.body).unwrap();
    assert_eq!(cluster.broker_addr_table["broker-a"].broker_addrs.len(), 2);
    assert!(cluster.cluster_addr_table["DefaultCluster"].contains("broker-a"));

    let topics = client
        .invoke_ok(
            &addr,
            RemotingCommand::bare_request(RequestCode::GET_ALL_TOPIC_LIST_FROM_NAMESERVER),
            TIMEOUT,
        )
        .await
        .unwrap();
    let topics: TopicList = serde_json::from_slice(&topics.body).unwrap();
    assert!(topics.topic_list.contains("TopicTest"));
    let by_cluster = client
        .invoke_ok(
            &addr,
            RemotingCommand::request(
                RequestCode::GET_TOPICS_BY_CLUSTER,
                &GetTopicsByClusterRequestHeader {
                    cluster: "DefaultCluster".into(),
                },
            ),
            TIMEOUT,
        )
        .await
        .unwrap();
    let by_cluster: TopicList = serde_json::from_slice(&by_cluster.body).unwrap();
    assert!(by_cluster.topic_list.contains("TopicTest"));

    let wiped = client
        .invoke_ok(
            &addr,
            RemotingCommand::request(
                RequestCode::WIPE_WRITE_PERM_OF_BROKER,
                &BrokerPermRequestHeader {
                    broker_name: "broker-a".into(),
                },
            ),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(wiped.ext_field("wipeTopicCount"), Some("1"));
    let route: TopicRouteData = serde_json::from_slice(
        &client
            .invoke_ok(&addr, route_request("TopicTest"), TIMEOUT)
            .await
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(route.queue_datas[0].perm, 4);

    client
        .invoke_ok(
            &addr,
            RemotingCommand::request(
                RequestCode::DELETE_TOPIC_IN_NAMESRV,
                &DeleteTopicFromNamesrvRequestHeader {
                    topic: "TopicTest".into(),
                    cluster_name: None,
                },
            ),
            TIMEOUT,
        )
        .await
        .unwrap();
    let gone = client
        .invoke(&addr, route_request("TopicTest"), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(gone.code, ResponseCode::TopicNotExist.as_i32());
    server.shutdown().await;
}

#[tokio::test]
async fn old_clients_get_bare_integer_keys_unless_they_ask_for_standard_json() {
    let (server, addr, _dir) = start().await;
    let client = RemotingClient::new(ClientConfig::default());
    client
        .invoke_ok(
            &addr,
            register_request("b", 0, "127.0.0.1:10911", &[("T", 1)]),
            TIMEOUT,
        )
        .await
        .unwrap();
    let mut old = route_request("T");
    old.version = 400;
    let body = client
        .invoke_ok(&addr, old.clone(), TIMEOUT)
        .await
        .unwrap()
        .body;
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        text.contains(r#""brokerAddrs":{0:"127.0.0.1:10911"}"#),
        "{text}"
    );
    let parsed: TopicRouteData = rocketmq_common::json::from_slice_lenient(&body).unwrap();
    assert_eq!(parsed.broker_datas[0].broker_addrs[&0], "127.0.0.1:10911");

    old.ext_fields
        .as_mut()
        .unwrap()
        .insert("acceptStandardJsonOnly".into(), "true".into());
    let body = client.invoke_ok(&addr, old, TIMEOUT).await.unwrap().body;
    assert!(
        String::from_utf8(body.to_vec())
            .unwrap()
            .contains(r#"{"0":"#)
    );
    server.shutdown().await;
}

#[tokio::test]
async fn compressed_registration_and_crc_check() {
    let (server, addr, _dir) = start().await;
    let client = RemotingClient::new(ClientConfig::default());

    // RegisterBrokerBody.encode(true): zlib stream of length-prefixed parts.
    let mut raw = Vec::new();
    let version = br#"{"counter":3,"stateVersion":0,"timestamp":1700000000000}"#;
    raw.extend_from_slice(&(version.len() as i32).to_be_bytes());
    raw.extend_from_slice(version);
    raw.extend_from_slice(&2i32.to_be_bytes());
    for topic in [
        "Compressed 8 8 6 SINGLE_TAG {\"+message.type\":\"FIFO\"}",
        "Plain 2 2 6 SINGLE_TAG",
    ] {
        raw.extend_from_slice(&(topic.len() as i32).to_be_bytes());
        raw.extend_from_slice(topic.as_bytes());
    }
    raw.extend_from_slice(&2i32.to_be_bytes());
    raw.extend_from_slice(b"[]");
    raw.extend_from_slice(&0i32.to_be_bytes());
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(&raw).unwrap();
    let body = enc.finish().unwrap();

    let header = RegisterBrokerRequestHeader {
        broker_name: "broker-z".into(),
        broker_addr: "127.0.0.1:30911".into(),
        cluster_name: "C".into(),
        ha_server_addr: "127.0.0.1:30912".into(),
        broker_id: 0,
        heartbeat_timeout_millis: Some(30_000),
        enable_acting_master: None,
        compressed: Some(true),
        body_crc32: Some((crc32fast::hash(&body) & 0x7FFF_FFFF) as i32),
    };
    let request =
        RemotingCommand::request(RequestCode::REGISTER_BROKER, &header).with_body(body.clone());
    client.invoke_ok(&addr, request, TIMEOUT).await.unwrap();
    let route: TopicRouteData = serde_json::from_slice(
        &client
            .invoke_ok(&addr, route_request("Compressed"), TIMEOUT)
            .await
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(route.queue_datas[0].write_queue_nums, 8);
    assert!(
        client
            .invoke_ok(&addr, route_request("Plain"), TIMEOUT)
            .await
            .is_ok()
    );

    let mut bad = header.clone();
    bad.body_crc32 = Some(12345);
    let request = RemotingCommand::request(RequestCode::REGISTER_BROKER, &bad).with_body(body);
    let resp = client.invoke(&addr, request, TIMEOUT).await.unwrap();
    assert_eq!(resp.code, ResponseCode::SystemError.as_i32());
    assert_eq!(resp.remark.as_deref(), Some("crc32 not match"));
    server.shutdown().await;
}

#[tokio::test]
async fn kv_config_round_trip() {
    let (server, addr, _dir) = start().await;
    let client = RemotingClient::new(ClientConfig::default());
    let put = |k: &str, v: &str| {
        RemotingCommand::request(
            RequestCode::PUT_KV_CONFIG,
            &PutKvConfigRequestHeader {
                namespace: "ORDER_TOPIC_CONFIG".into(),
                key: k.into(),
                value: v.into(),
            },
        )
    };
    let key = |code: RequestCode, k: &str| {
        RemotingCommand::request(
            code,
            &KvConfigKeyRequestHeader {
                namespace: "ORDER_TOPIC_CONFIG".into(),
                key: k.into(),
            },
        )
    };
    client
        .invoke_ok(&addr, put("T1", "broker-a:4"), TIMEOUT)
        .await
        .unwrap();
    client
        .invoke_ok(&addr, put("T2", "broker-b:2"), TIMEOUT)
        .await
        .unwrap();
    let got = client
        .invoke_ok(&addr, key(RequestCode::GET_KV_CONFIG, "T1"), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(got.ext_field("value"), Some("broker-a:4"));
    let list = client
        .invoke_ok(
            &addr,
            RemotingCommand::request(
                RequestCode::GET_KVLIST_BY_NAMESPACE,
                &GetKvListByNamespaceRequestHeader {
                    namespace: "ORDER_TOPIC_CONFIG".into(),
                },
            ),
            TIMEOUT,
        )
        .await
        .unwrap();
    let table: KvTable = serde_json::from_slice(&list.body).unwrap();
    assert_eq!(table.table.len(), 2);
    client
        .invoke_ok(&addr, key(RequestCode::DELETE_KV_CONFIG, "T1"), TIMEOUT)
        .await
        .unwrap();
    let missing = client
        .invoke(&addr, key(RequestCode::GET_KV_CONFIG, "T1"), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(missing.code, ResponseCode::QueryNotFound.as_i32());
    server.shutdown().await;
}

#[tokio::test]
async fn closing_the_broker_connection_unregisters_it() {
    let (server, addr, _dir) = start().await;
    let broker = RemotingClient::new(ClientConfig::default());
    broker
        .invoke_ok(
            &addr,
            register_request("b", 0, "127.0.0.1:10911", &[("T", 1)]),
            TIMEOUT,
        )
        .await
        .unwrap();
    let client = RemotingClient::new(ClientConfig::default());
    assert!(
        client
            .invoke_ok(&addr, route_request("T"), TIMEOUT)
            .await
            .is_ok()
    );
    broker.close(&addr);
    drop(broker);
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let resp = client
            .invoke(&addr, route_request("T"), TIMEOUT)
            .await
            .unwrap();
        if resp.code == ResponseCode::TopicNotExist.as_i32() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "route still served after the broker's connection closed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await;
}

/// Writes raw bytes, then reads one response frame.
async fn raw_exchange(addr: &str, bytes: &[u8]) -> RemotingCommand {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    read_frame(&mut stream).await.expect("a response frame")
}

async fn read_frame(stream: &mut TcpStream) -> Option<RemotingCommand> {
    let mut codec = RemotingCodec::default();
    let mut buf = BytesMut::new();
    loop {
        if let Some(cmd) = codec.decode(&mut buf).unwrap() {
            return Some(cmd);
        }
        let n = tokio::time::timeout(TIMEOUT, stream.read_buf(&mut buf))
            .await
            .unwrap()
            .unwrap();
        if n == 0 {
            return None;
        }
    }
}

fn json_frame(header: &str, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&((4 + header.len() + body.len()) as i32).to_be_bytes());
    out.extend_from_slice(&(header.len() as i32).to_be_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(body);
    out
}

#[tokio::test]
async fn hand_built_frames_in_both_encodings() {
    let (server, addr, _dir) = start().await;
    let client = RemotingClient::new(ClientConfig::default());
    client
        .invoke_ok(
            &addr,
            register_request("b", 0, "127.0.0.1:10911", &[("TopicTest", 2)]),
            TIMEOUT,
        )
        .await
        .unwrap();

    // JSON, written the way a Java 5.3 client writes it.
    let frame = json_frame(
        r#"{"code":105,"extFields":{"topic":"TopicTest"},"flag":0,"language":"JAVA","opaque":41,"serializeTypeCurrentRPC":"JSON","version":479}"#,
        b"",
    );
    let resp = raw_exchange(&addr, &frame).await;
    assert_eq!((resp.code, resp.opaque, resp.flag & 1), (0, 41, 1));
    assert!(String::from_utf8_lossy(&resp.body).contains("127.0.0.1:10911"));

    // ROCKETMQ binary header, byte by byte.
    let mut header = Vec::new();
    header.extend_from_slice(&105i16.to_be_bytes());
    header.push(0); // JAVA
    header.extend_from_slice(&479i16.to_be_bytes());
    header.extend_from_slice(&42i32.to_be_bytes());
    header.extend_from_slice(&0i32.to_be_bytes());
    header.extend_from_slice(&0i32.to_be_bytes());
    let mut ext = Vec::new();
    ext.extend_from_slice(&5i16.to_be_bytes());
    ext.extend_from_slice(b"topic");
    ext.extend_from_slice(&9i32.to_be_bytes());
    ext.extend_from_slice(b"TopicTest");
    header.extend_from_slice(&(ext.len() as i32).to_be_bytes());
    header.extend_from_slice(&ext);
    let mut frame = Vec::new();
    frame.extend_from_slice(&((4 + header.len()) as i32).to_be_bytes());
    frame.extend_from_slice(&((1 << 24) | header.len() as i32).to_be_bytes());
    frame.extend_from_slice(&header);
    let resp = raw_exchange(&addr, &frame).await;
    assert_eq!((resp.code, resp.opaque), (0, 42));
    assert!(String::from_utf8_lossy(&resp.body).contains("127.0.0.1:10911"));

    // A server configured for ROCKETMQ headers answers in binary; our decoder reads both.
    let binary_client = RemotingClient::new(ClientConfig {
        serialize_type: SerializeType::RocketMq,
        ..ClientConfig::default()
    });
    assert!(
        binary_client
            .invoke_ok(&addr, route_request("TopicTest"), TIMEOUT)
            .await
            .is_ok()
    );
    server.shutdown().await;
}

#[tokio::test]
async fn unknown_codes_get_request_code_not_supported_and_oneway_gets_nothing() {
    let (server, addr, _dir) = start().await;
    let client = RemotingClient::new(ClientConfig::default());
    let resp = client
        .invoke(&addr, RemotingCommand::bare_request(12345), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(resp.code, ResponseCode::RequestCodeNotSupported.as_i32());
    assert_eq!(
        resp.remark.as_deref(),
        Some(" request type 12345 not supported")
    );

    // Oneway unknown code, then a normal request on the same connection: the only frame
    // back must be the normal request's answer.
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    let oneway = json_frame(
        r#"{"code":12345,"flag":2,"language":"JAVA","opaque":7,"version":479}"#,
        b"",
    );
    let normal = json_frame(
        r#"{"code":12345,"flag":0,"language":"JAVA","opaque":8,"version":479}"#,
        b"",
    );
    stream.write_all(&oneway).await.unwrap();
    stream.write_all(&normal).await.unwrap();
    let resp = read_frame(&mut stream).await.unwrap();
    assert_eq!(resp.opaque, 8);

    // A missing required header field is a SYSTEM_ERROR naming the field, not a crash.
    let resp = client
        .invoke(
            &addr,
            RemotingCommand::bare_request(RequestCode::GET_ROUTEINFO_BY_TOPIC),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(resp.code, ResponseCode::SystemError.as_i32());
    assert!(resp.remark.unwrap().contains("topic"));
    server.shutdown().await;
}

#[tokio::test]
async fn malformed_input_closes_only_the_offending_connection() {
    let (server, addr, _dir) = start().await;
    let healthy = RemotingClient::new(ClientConfig::default());
    healthy
        .invoke_ok(
            &addr,
            register_request("b", 0, "127.0.0.1:10911", &[("T", 1)]),
            TIMEOUT,
        )
        .await
        .unwrap();

    let mut unknown_type = Vec::new();
    unknown_type.extend_from_slice(&6i32.to_be_bytes());
    unknown_type.extend_from_slice(&((9i32 << 24) | 2).to_be_bytes());
    unknown_type.extend_from_slice(b"{}");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("negative length", (-5i32).to_be_bytes().to_vec()),
        (
            "oversized length",
            (64 * 1024 * 1024i32).to_be_bytes().to_vec(),
        ),
        ("header longer than frame", {
            let mut f = 8i32.to_be_bytes().to_vec();
            f.extend_from_slice(&1000i32.to_be_bytes());
            f.extend_from_slice(&[0; 4]);
            f
        }),
        ("invalid JSON header", json_frame("{\"code\":105,", b"")),
        ("unknown serialize type", unknown_type),
    ];
    for (name, bytes) in cases {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        stream.write_all(&bytes).await.unwrap();
        let closed = read_frame(&mut stream).await;
        assert!(
            closed.is_none(),
            "{name}: expected the server to close the connection"
        );
        // Everyone else is still served.
        let resp = healthy.invoke_ok(&addr, route_request("T"), TIMEOUT).await;
        assert!(resp.is_ok(), "{name}: healthy client failed: {resp:?}");
    }

    // Truncated frames and a client that disconnects mid-frame.
    for _ in 0..20 {
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        let frame = json_frame(
            r#"{"code":105,"extFields":{"topic":"T"},"flag":0,"opaque":1}"#,
            b"",
        );
        stream.write_all(&frame[..frame.len() / 2]).await.unwrap();
        drop(stream);
    }
    let resp = healthy.invoke_ok(&addr, route_request("T"), TIMEOUT).await;
    assert!(resp.is_ok(), "after mid-frame disconnects: {resp:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn name_servers_are_independent_and_brokers_register_with_each() {
    let (first, first_addr, _d1) = start().await;
    let (second, second_addr, _d2) = start().await;
    let broker = RemotingClient::new(ClientConfig::default());
    // The broker registers its topic with both; a second topic only with the first.
    for addr in [&first_addr, &second_addr] {
        broker
            .invoke_ok(
                addr,
                register_request("b", 0, "127.0.0.1:10911", &[("Shared", 2)]),
                TIMEOUT,
            )
            .await
            .unwrap();
    }
    broker
        .invoke_ok(
            &first_addr,
            register_request("c", 0, "127.0.0.1:20911", &[("OnlyFirst", 2)]),
            TIMEOUT,
        )
        .await
        .unwrap();
    let client = RemotingClient::new(ClientConfig::default());
    for addr in [&first_addr, &second_addr] {
        assert!(
            client
                .invoke_ok(addr, route_request("Shared"), TIMEOUT)
                .await
                .is_ok()
        );
    }
    assert!(
        client
            .invoke_ok(&first_addr, route_request("OnlyFirst"), TIMEOUT)
            .await
            .is_ok()
    );
    let missing = client
        .invoke(&second_addr, route_request("OnlyFirst"), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(missing.code, ResponseCode::TopicNotExist.as_i32());

    // Losing one name server does not affect the other.
    first.shutdown().await;
    assert!(
        client
            .invoke_ok(&second_addr, route_request("Shared"), TIMEOUT)
            .await
            .is_ok()
    );
    second.shutdown().await;
}

#[tokio::test]
async fn embedded_controller_serves_on_its_own_port() {
    let dir = tempfile::tempdir().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut config = NamesrvConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        metrics_port: 0,
        kv_config_path: dir.path().join("kvConfig.json"),
        ..NamesrvConfig::default()
    };
    config
        .apply(&rocketmq_common::config::Properties::parse(&format!(
            "enableControllerInNamesrv=true\ncontrollerDLegerPeers=n0-127.0.0.1:{port}\n\
             controllerStorePath={}\nmetricsPort=0\n",
            dir.path().join("controller").display()
        )))
        .unwrap();
    assert!(
        config
            .to_properties_text()
            .contains("enableControllerInNamesrv=true\n")
    );
    let server = NamesrvServer::start(config).await.unwrap();
    assert!(server.controller().is_some());
    let client = RemotingClient::new(ClientConfig::default());
    let addr = format!("127.0.0.1:{port}");
    let mut leader = None;
    for _ in 0..250 {
        let resp = client
            .invoke(
                &addr,
                RemotingCommand::bare_request(RequestCode::CONTROLLER_GET_METADATA_INFO),
                TIMEOUT,
            )
            .await
            .unwrap();
        let h: rocketmq_common::protocol::headers::controller::GetMetaDataResponseHeader =
            resp.decode_header().unwrap();
        if h.is_leader == Some(true) {
            leader = h.controller_leader_address;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(leader.as_deref(), Some(addr.as_str()));
    server.shutdown().await;
}
