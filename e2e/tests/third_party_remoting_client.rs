//! Compatibility proof: a Remoting client we did not write registers a broker with our
//! name server and reads the topic route back, with both header encodings.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rocketmq_model::topic::TopicConfig;
use rocketmq_model::utils::crc32_utils::crc32;
use rocketmq_namesrv::{NamesrvConfig, NamesrvServer};
use rocketmq_protocol::protocol::body::broker_body::register_broker_body::RegisterBrokerBody;
use rocketmq_protocol::protocol::body::topic_info_wrapper::topic_config_wrapper::{
    TopicConfigAndMappingSerializeWrapper, TopicConfigSerializeWrapper,
};
use rocketmq_protocol::protocol::header::client_request_header::GetRouteInfoRequestHeader;
use rocketmq_protocol::protocol::headers::namesrv::RegisterBrokerRequestHeader;
use rocketmq_protocol::protocol::route::topic_route_data::TopicRouteData;
use rocketmq_protocol::protocol::{DataVersion, SerializeType};
use rocketmq_protocol::{RemotingCommand, RequestCode};
use rocketmq_runtime::{RuntimeContext, ShutdownDeadline};
use rocketmq_transport::api::{
    DefaultRequestProcessor, OutboundRequestOutcome, RemotingClient, TransportClientConfig,
};

async fn start_namesrv() -> (NamesrvServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = NamesrvConfig {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        metrics_port: 0,
        kv_config_path: dir.path().join("kvConfig.json"),
        ..NamesrvConfig::default()
    };
    (NamesrvServer::start(config).await.unwrap(), dir)
}

fn broker_addr(broker_name: &str) -> &'static str {
    if broker_name.ends_with("json") {
        "127.0.0.1:10911"
    } else {
        "127.0.0.1:20911"
    }
}

fn register_request(
    broker_name: &str,
    topic: &str,
    queues: u32,
    serialize: SerializeType,
) -> RemotingCommand {
    let mut table = HashMap::new();
    let mut config = TopicConfig::with_queues(topic, queues, queues);
    config.perm = 6;
    table.insert(topic.into(), config);
    let wrapper = TopicConfigAndMappingSerializeWrapper {
        topic_config_serialize_wrapper: TopicConfigSerializeWrapper {
            topic_config_table: table,
            data_version: DataVersion::default(),
        },
        ..Default::default()
    };
    let body: Vec<u8> = RegisterBrokerBody::new(wrapper, vec![]).encode(false);
    let header = RegisterBrokerRequestHeader::new(
        broker_name.into(),
        broker_addr(broker_name).into(),
        "DefaultCluster".into(),
        "127.0.0.1:10912".into(),
        0,
        Some(30_000),
        Some(false),
        false,
        crc32(&body),
    );
    RemotingCommand::create_request_command(RequestCode::RegisterBroker, header)
        .set_body(body)
        .set_serialize_type(serialize)
}

#[tokio::test]
async fn third_party_client_registers_a_broker_and_reads_its_route() {
    let (server, _dir) = start_namesrv().await;
    let addr = server.local_addr();
    let runtime = RuntimeContext::from_current("compat-test");

    let client = Arc::new(
        RemotingClient::builder(
            Arc::new(TransportClientConfig::default()),
            DefaultRequestProcessor,
            runtime.service_context("client"),
        )
        .build()
        .unwrap(),
    );
    client.start().await.unwrap();
    client
        .update_name_server_address_list(vec![addr.to_string().into()])
        .await;

    // Registration goes over the client's long-lived connection, as a broker's does: the
    // name server drops a broker whose registering connection closes.
    for (broker, topic, serialize) in [
        ("broker-json", "TopicJson", SerializeType::JSON),
        ("broker-binary", "TopicBinary", SerializeType::ROCKETMQ),
    ] {
        let request = register_request(broker, topic, 4, serialize);
        let OutboundRequestOutcome::Response(response) =
            client.invoke_request(None, request, 3000).await.unwrap()
        else {
            panic!("{broker}: registration was not sent");
        };
        assert_eq!(response.code(), 0, "{broker}: {:?}", response.remark());
    }
    for (broker, topic) in [
        ("broker-json", "TopicJson"),
        ("broker-binary", "TopicBinary"),
    ] {
        let request = RemotingCommand::create_request_command(
            RequestCode::GetRouteinfoByTopic,
            GetRouteInfoRequestHeader::new(topic, None),
        );
        let OutboundRequestOutcome::Response(response) =
            client.invoke_request(None, request, 3000).await.unwrap()
        else {
            panic!("{topic}: request was not sent");
        };
        assert_eq!(response.code(), 0, "{topic}: {:?}", response.remark());
        let body = response.body().expect("route body");
        let route = TopicRouteData::decode(body).unwrap_or_else(|e| {
            panic!(
                "{topic}: route body did not parse: {e}: {}",
                String::from_utf8_lossy(body)
            )
        });
        assert_eq!(route.broker_datas.len(), 1);
        assert_eq!(route.broker_datas[0].broker_name().as_str(), broker);
        assert_eq!(
            route.broker_datas[0]
                .broker_addrs()
                .get(&0)
                .map(|s| s.as_str()),
            Some(broker_addr(broker))
        );
        assert_eq!(route.queue_datas[0].read_queue_nums, 4);
        assert_eq!(route.queue_datas[0].write_queue_nums, 4);
    }

    // A topic nobody registered: TOPIC_NOT_EXIST, which the client must see as such.
    let request = RemotingCommand::create_request_command(
        RequestCode::GetRouteinfoByTopic,
        GetRouteInfoRequestHeader::new("NoSuchTopic", None),
    );
    let OutboundRequestOutcome::Response(response) =
        client.invoke_request(None, request, 3000).await.unwrap()
    else {
        panic!("request was not sent");
    };
    assert_eq!(response.code(), 17);

    let _ = client
        .shutdown_until(ShutdownDeadline::after(Duration::from_secs(2)))
        .await;
    let _ = runtime.shutdown_tasks(Duration::from_secs(2)).await;
    server.shutdown().await;
}
