//! Request processors of the name server, one per request family. The dispatch table in
//! [`dispatcher`] maps each code to its processor.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rocketmq_common::protocol::headers::namesrv::*;
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode, VERSION_V4_9_4};
use rocketmq_common::remoting::{
    Dispatcher, ProcessError, ProcessResult, Reply, RequestContext, RequestProcessor,
};
use rocketmq_common::route::{
    BrokerMemberGroupBody, DataVersion, KvTable, RegisterBrokerBody, TopicConfig,
    TopicConfigSerializeWrapper,
};
use tracing::warn;

use crate::kv_config::KvConfigManager;
use crate::route_info::{Registration, RouteInfoManager};

/// KV namespace holding `brokerName:queueNums;...` per ordered topic.
pub const ORDER_TOPIC_CONFIG_NAMESPACE: &str = "ORDER_TOPIC_CONFIG";

/// Upper bound on an inflated compressed registration body; a real one with 100k topics
/// stays far below it, while a decompression bomb is cut off.
const MAX_INFLATED_REGISTER_BODY: u64 = 256 * 1024 * 1024;

/// Settings the processors need.
#[derive(Debug, Clone)]
pub struct ProcessorSettings {
    /// Attach `ORDER_TOPIC_CONFIG` to routes.
    pub order_message_enable: bool,
    /// Serve GET_ALL_TOPIC_LIST_FROM_NAMESERVER.
    pub enable_all_topic_list: bool,
    /// Serve GET_TOPICS_BY_CLUSTER.
    pub enable_topic_list: bool,
}

/// Builds the name server's dispatch table.
pub fn dispatcher(
    routes: Arc<RouteInfoManager>,
    kv: Arc<KvConfigManager>,
    settings: ProcessorSettings,
) -> Dispatcher {
    let mut d = Dispatcher::new();
    let registration = Arc::new(BrokerRegistrationProcessor {
        routes: routes.clone(),
        kv: kv.clone(),
    });
    d.register_all(
        &[
            RequestCode::REGISTER_BROKER,
            RequestCode::UNREGISTER_BROKER,
            RequestCode::BROKER_HEARTBEAT,
            RequestCode::QUERY_DATA_VERSION,
        ],
        registration,
    );
    let route = Arc::new(RouteQueryProcessor {
        routes,
        kv: kv.clone(),
        settings,
    });
    d.register_all(
        &[
            RequestCode::GET_ROUTEINFO_BY_TOPIC,
            RequestCode::GET_BROKER_CLUSTER_INFO,
            RequestCode::GET_ALL_TOPIC_LIST_FROM_NAMESERVER,
            RequestCode::GET_TOPICS_BY_CLUSTER,
            RequestCode::DELETE_TOPIC_IN_NAMESRV,
            RequestCode::WIPE_WRITE_PERM_OF_BROKER,
            RequestCode::ADD_WRITE_PERM_OF_BROKER,
            RequestCode::GET_BROKER_MEMBER_GROUP,
        ],
        route,
    );
    let kv_processor = Arc::new(KvConfigProcessor { kv });
    d.register_all(
        &[
            RequestCode::PUT_KV_CONFIG,
            RequestCode::GET_KV_CONFIG,
            RequestCode::DELETE_KV_CONFIG,
            RequestCode::GET_KVLIST_BY_NAMESPACE,
        ],
        kv_processor,
    );
    d
}

fn json_body<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("route bodies serialise to JSON")
}

fn body_json<T: serde::de::DeserializeOwned>(
    request: &RemotingCommand,
    what: &str,
) -> Result<T, ProcessError> {
    rocketmq_common::json::from_slice_lenient(&request.body).map_err(|e| {
        ProcessError::new(
            ResponseCode::SystemError,
            format!("invalid {what} body: {e}"),
        )
    })
}

/// REGISTER_BROKER, UNREGISTER_BROKER, BROKER_HEARTBEAT, QUERY_DATA_VERSION.
struct BrokerRegistrationProcessor {
    routes: Arc<RouteInfoManager>,
    kv: Arc<KvConfigManager>,
}

impl RequestProcessor for BrokerRegistrationProcessor {
    fn process(&self, ctx: &RequestContext, request: RemotingCommand) -> Reply {
        Reply::Now(match request.request_code() {
            Some(RequestCode::REGISTER_BROKER) => self.register(ctx, &request),
            Some(RequestCode::UNREGISTER_BROKER) => self.unregister(&request),
            Some(RequestCode::BROKER_HEARTBEAT) => self.heartbeat(&request),
            Some(RequestCode::QUERY_DATA_VERSION) => self.query_data_version(&request),
            _ => unreachable_code(&request),
        })
    }
}

impl BrokerRegistrationProcessor {
    fn register(&self, ctx: &RequestContext, request: &RemotingCommand) -> ProcessResult {
        let header: RegisterBrokerRequestHeader = request.decode_header()?;
        if let Some(expected) = header.body_crc32.filter(|c| *c != 0) {
            // Java's UtilAll.crc32 masks the sign bit.
            let actual = (crc32fast::hash(&request.body) & 0x7FFF_FFFF) as i32;
            if actual != expected {
                warn!(broker = %header.broker_addr, expected, actual, "register body crc32 mismatch");
                return Err(ProcessError::new(
                    ResponseCode::SystemError,
                    "crc32 not match",
                ));
            }
        }
        let body = if request.body.is_empty() {
            RegisterBrokerBody::default()
        } else if header.compressed.unwrap_or(false) {
            decode_compressed_register_body(&request.body).map_err(|e| {
                ProcessError::new(
                    ResponseCode::SystemError,
                    format!("invalid compressed register body: {e}"),
                )
            })?
        } else {
            body_json(request, "register broker")?
        };
        let registration = Registration {
            cluster: header.cluster_name,
            broker_addr: header.broker_addr,
            broker_name: header.broker_name,
            broker_id: header.broker_id,
            ha_server_addr: header.ha_server_addr,
            zone_name: request.ext_field("zoneName").map(str::to_owned),
            timeout: header
                .heartbeat_timeout_millis
                .filter(|m| *m > 0)
                .map(|m| Duration::from_millis(m as u64)),
            enable_acting_master: header.enable_acting_master.unwrap_or(false),
            topics: body.topic_config_serialize_wrapper,
            filter_servers: body.filter_server_list,
            connection_id: Some(ctx.connection.id()),
        };
        // Java answers a refused (stale) registration with SUCCESS and no master info; the
        // broker learns its real role from the controller, not from us.
        let result = match self.routes.register_broker(registration, Instant::now()) {
            Ok(result) => result,
            Err(refused) => {
                warn!(%refused, "registration refused");
                Default::default()
            }
        };
        let mut response = RemotingCommand::success().with_header(&RegisterBrokerResponseHeader {
            ha_server_addr: result.ha_server_addr,
            master_addr: result.master_addr,
        });
        if let Some(table) = self.kv.namespace(ORDER_TOPIC_CONFIG_NAMESPACE) {
            response.body = json_body(&KvTable { table }).into();
        }
        Ok(Some(response))
    }

    fn unregister(&self, request: &RemotingCommand) -> ProcessResult {
        let h: UnregisterBrokerRequestHeader = request.decode_header()?;
        self.routes
            .unregister_broker(&h.cluster_name, &h.broker_addr, &h.broker_name, h.broker_id);
        Ok(Some(RemotingCommand::success()))
    }

    fn heartbeat(&self, request: &RemotingCommand) -> ProcessResult {
        let h: BrokerHeartbeatRequestHeader = request.decode_header()?;
        self.routes
            .heartbeat(&h.cluster_name, &h.broker_addr, Instant::now());
        Ok(Some(RemotingCommand::success()))
    }

    fn query_data_version(&self, request: &RemotingCommand) -> ProcessResult {
        let h: QueryDataVersionRequestHeader = request.decode_header()?;
        let version: DataVersion = body_json(request, "data version")?;
        let (changed, held) = self.routes.query_data_version(
            &h.cluster_name,
            &h.broker_addr,
            &version,
            Instant::now(),
        );
        let mut response =
            RemotingCommand::success().with_header(&QueryDataVersionResponseHeader {
                changed: Some(changed),
            });
        if let Some(held) = held {
            response.body = json_body(&held).into();
        }
        Ok(Some(response))
    }
}

/// Reads the Deflate form of RegisterBrokerBody (`RegisterBrokerBody.encode(true)`):
/// `i32 len + DataVersion JSON`, `i32 topicCount`, per topic `i32 len + TopicConfig.encode()`
/// (space-separated `name read write perm filterType [attributesJson]`), `i32 len + filter
/// server list JSON`, then optionally `i32 count` static-topic mappings (`i32 len + JSON`).
pub fn decode_compressed_register_body(body: &[u8]) -> Result<RegisterBrokerBody, String> {
    let mut inflated = Vec::new();
    flate2::read::ZlibDecoder::new(body)
        .take(MAX_INFLATED_REGISTER_BODY + 1)
        .read_to_end(&mut inflated)
        .map_err(|e| format!("inflate failed: {e}"))?;
    if inflated.len() as u64 > MAX_INFLATED_REGISTER_BODY {
        return Err(format!(
            "inflated body exceeds {MAX_INFLATED_REGISTER_BODY} bytes"
        ));
    }
    let mut cur = inflated.as_slice();
    fn chunk<'a>(cur: &mut &'a [u8], what: &str) -> Result<&'a [u8], String> {
        let len = read_i32(cur, what)?;
        let len = usize::try_from(len).map_err(|_| format!("negative length for {what}"))?;
        if cur.len() < len {
            return Err(format!("truncated {what}"));
        }
        let (head, tail) = cur.split_at(len);
        *cur = tail;
        Ok(head)
    }
    fn read_i32(cur: &mut &[u8], what: &str) -> Result<i32, String> {
        if cur.len() < 4 {
            return Err(format!("truncated length of {what}"));
        }
        let v = i32::from_be_bytes([cur[0], cur[1], cur[2], cur[3]]);
        *cur = &cur[4..];
        Ok(v)
    }
    let data_version: DataVersion =
        rocketmq_common::json::from_slice_lenient(chunk(&mut cur, "data version")?)
            .map_err(|e| format!("data version: {e}"))?;
    let topic_count = read_i32(&mut cur, "topic count")?;
    let mut wrapper = TopicConfigSerializeWrapper {
        data_version,
        ..Default::default()
    };
    for _ in 0..topic_count.max(0) {
        let text = std::str::from_utf8(chunk(&mut cur, "topic config")?)
            .map_err(|e| format!("topic config: {e}"))?;
        let config = decode_topic_config(text)?;
        wrapper
            .topic_config_table
            .insert(config.topic_name.clone(), config);
    }
    let filter_server_list: Vec<String> = if cur.is_empty() {
        Vec::new()
    } else {
        rocketmq_common::json::from_slice_lenient(chunk(&mut cur, "filter server list")?)
            .map_err(|e| format!("filter server list: {e}"))?
    };
    if !cur.is_empty() {
        let count = read_i32(&mut cur, "mapping count")?;
        let mut mappings = serde_json::Map::new();
        for _ in 0..count.max(0) {
            let value: serde_json::Value =
                rocketmq_common::json::from_slice_lenient(chunk(&mut cur, "mapping")?)
                    .map_err(|e| format!("topic queue mapping: {e}"))?;
            let topic = value
                .get("topic")
                .and_then(|t| t.as_str())
                .unwrap_or_default()
                .to_string();
            mappings.insert(topic, value);
        }
        if count > 0 {
            wrapper.topic_queue_mapping_info_map = Some(serde_json::Value::Object(mappings));
        }
    }
    Ok(RegisterBrokerBody {
        filter_server_list,
        topic_config_serialize_wrapper: wrapper,
    })
}

/// Parses `TopicConfig.encode()`: `name read write perm filterType [attributesJson]`.
fn decode_topic_config(text: &str) -> Result<TopicConfig, String> {
    let mut parts = text.splitn(6, ' ');
    let mut next = |what: &str| {
        parts
            .next()
            .ok_or_else(|| format!("topic config {text:?} lacks {what}"))
    };
    let topic_name = next("name")?.to_string();
    let parse = |s: &str, what: &str| {
        s.parse::<i32>()
            .map_err(|_| format!("topic config {text:?}: bad {what}"))
    };
    let read_queue_nums = parse(next("readQueueNums")?, "readQueueNums")?;
    let write_queue_nums = parse(next("writeQueueNums")?, "writeQueueNums")?;
    let perm = parse(next("perm")?, "perm")?;
    let topic_filter_type = next("topicFilterType")?.to_string();
    let attributes = match parts.next() {
        Some(json) if !json.is_empty() => {
            rocketmq_common::json::from_slice_lenient(json.as_bytes())
                .map_err(|e| format!("topic config {topic_name}: attributes: {e}"))?
        }
        _ => Default::default(),
    };
    Ok(TopicConfig {
        attributes,
        perm,
        read_queue_nums,
        topic_filter_type,
        topic_name,
        write_queue_nums,
        ..TopicConfig::default()
    })
}

/// Route and cluster queries and topic/permission administration.
struct RouteQueryProcessor {
    routes: Arc<RouteInfoManager>,
    kv: Arc<KvConfigManager>,
    settings: ProcessorSettings,
}

impl RequestProcessor for RouteQueryProcessor {
    fn process(&self, _ctx: &RequestContext, request: RemotingCommand) -> Reply {
        Reply::Now(match request.request_code() {
            Some(RequestCode::GET_ROUTEINFO_BY_TOPIC) => self.route(&request),
            Some(RequestCode::GET_BROKER_CLUSTER_INFO) => Ok(Some(
                RemotingCommand::success().with_body(json_body(&self.routes.cluster_info())),
            )),
            Some(RequestCode::GET_ALL_TOPIC_LIST_FROM_NAMESERVER) => {
                if self.settings.enable_all_topic_list {
                    Ok(Some(
                        RemotingCommand::success().with_body(json_body(&self.routes.all_topics())),
                    ))
                } else {
                    Err(ProcessError::new(ResponseCode::SystemError, "disable"))
                }
            }
            Some(RequestCode::GET_TOPICS_BY_CLUSTER) => self.topics_by_cluster(&request),
            Some(RequestCode::DELETE_TOPIC_IN_NAMESRV) => self.delete_topic(&request),
            Some(RequestCode::WIPE_WRITE_PERM_OF_BROKER) => self.wipe_write_perm(&request),
            Some(RequestCode::ADD_WRITE_PERM_OF_BROKER) => self.add_write_perm(&request),
            Some(RequestCode::GET_BROKER_MEMBER_GROUP) => self.member_group(&request),
            _ => unreachable_code(&request),
        })
    }
}

impl RouteQueryProcessor {
    fn route(&self, request: &RemotingCommand) -> ProcessResult {
        let h: GetRouteInfoRequestHeader = request.decode_header()?;
        let Some(mut route) = self.routes.topic_route(&h.topic) else {
            return Err(ProcessError::new(
                ResponseCode::TopicNotExist,
                format!(
                    "No topic route info in name server for the topic: {}\nSee \
                     https://rocketmq.apache.org/docs/bestPractice/06FAQ for further details.",
                    h.topic
                ),
            ));
        };
        if self.settings.order_message_enable {
            route.order_topic_conf = self.kv.get(ORDER_TOPIC_CONFIG_NAMESPACE, &h.topic);
        }
        let standard =
            request.version >= VERSION_V4_9_4 || h.accept_standard_json_only.unwrap_or(false);
        Ok(Some(
            RemotingCommand::success().with_body(route.to_json_for(standard)),
        ))
    }

    fn topics_by_cluster(&self, request: &RemotingCommand) -> ProcessResult {
        if !self.settings.enable_topic_list {
            return Err(ProcessError::new(ResponseCode::SystemError, "disable"));
        }
        let h: GetTopicsByClusterRequestHeader = request.decode_header()?;
        Ok(Some(RemotingCommand::success().with_body(json_body(
            &self.routes.topics_by_cluster(&h.cluster),
        ))))
    }

    fn delete_topic(&self, request: &RemotingCommand) -> ProcessResult {
        let h: DeleteTopicFromNamesrvRequestHeader = request.decode_header()?;
        self.routes.delete_topic(
            &h.topic,
            h.cluster_name.as_deref().filter(|c| !c.is_empty()),
        );
        Ok(Some(RemotingCommand::success()))
    }

    fn wipe_write_perm(&self, request: &RemotingCommand) -> ProcessResult {
        let h: BrokerPermRequestHeader = request.decode_header()?;
        let count = self.routes.wipe_write_perm(&h.broker_name);
        Ok(Some(RemotingCommand::success().with_header(
            &WipeWritePermOfBrokerResponseHeader {
                wipe_topic_count: count,
            },
        )))
    }

    fn add_write_perm(&self, request: &RemotingCommand) -> ProcessResult {
        let h: BrokerPermRequestHeader = request.decode_header()?;
        let count = self.routes.add_write_perm(&h.broker_name);
        Ok(Some(RemotingCommand::success().with_header(
            &AddWritePermOfBrokerResponseHeader {
                add_topic_count: count,
            },
        )))
    }

    fn member_group(&self, request: &RemotingCommand) -> ProcessResult {
        let h: GetBrokerMemberGroupRequestHeader = request.decode_header()?;
        let group = self
            .routes
            .broker_member_group(&h.cluster_name, &h.broker_name);
        Ok(Some(RemotingCommand::success().with_body(json_body(
            &BrokerMemberGroupBody {
                broker_member_group: group,
            },
        ))))
    }
}

/// PUT/GET/DELETE_KV_CONFIG and GET_KVLIST_BY_NAMESPACE.
struct KvConfigProcessor {
    kv: Arc<KvConfigManager>,
}

impl RequestProcessor for KvConfigProcessor {
    fn process(&self, _ctx: &RequestContext, request: RemotingCommand) -> Reply {
        let code = request.request_code();
        if matches!(
            code,
            Some(RequestCode::PUT_KV_CONFIG | RequestCode::DELETE_KV_CONFIG)
        ) {
            // Writes fsync and rename a file: on the blocking pool, off the workers that
            // serve route lookups.
            let kv = self.kv.clone();
            return Reply::Later(Box::pin(async move {
                tokio::task::spawn_blocking(move || Self::write(&kv, &request))
                    .await
                    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
            }));
        }
        Reply::Now(match code {
            Some(RequestCode::GET_KV_CONFIG) => (|| {
                let h: KvConfigKeyRequestHeader = request.decode_header()?;
                match self.kv.get(&h.namespace, &h.key) {
                    Some(value) => Ok(Some(
                        RemotingCommand::success()
                            .with_header(&GetKvConfigResponseHeader { value: Some(value) }),
                    )),
                    None => Err(ProcessError::new(
                        ResponseCode::QueryNotFound,
                        format!("No config item, Namespace: {} Key: {}", h.namespace, h.key),
                    )),
                }
            })(),

            Some(RequestCode::GET_KVLIST_BY_NAMESPACE) => (|| {
                let h: GetKvListByNamespaceRequestHeader = request.decode_header()?;
                match self.kv.namespace(&h.namespace) {
                    Some(table) => Ok(Some(
                        RemotingCommand::success().with_body(json_body(&KvTable { table })),
                    )),
                    None => Err(ProcessError::new(
                        ResponseCode::QueryNotFound,
                        format!("No config item, Namespace: {}", h.namespace),
                    )),
                }
            })(),
            _ => unreachable_code(&request),
        })
    }
}

impl KvConfigProcessor {
    fn write(kv: &KvConfigManager, request: &RemotingCommand) -> ProcessResult {
        let failed = |e: crate::kv_config::KvConfigError| {
            ProcessError::new(ResponseCode::SystemError, e.to_string())
        };
        if request.request_code() == Some(RequestCode::PUT_KV_CONFIG) {
            let h: PutKvConfigRequestHeader = request.decode_header()?;
            kv.put(&h.namespace, &h.key, &h.value).map_err(failed)?;
        } else {
            let h: KvConfigKeyRequestHeader = request.decode_header()?;
            kv.delete(&h.namespace, &h.key).map_err(failed)?;
        }
        Ok(Some(RemotingCommand::success()))
    }
}

/// A processor got a code the dispatch table did not route to it: a wiring bug, answered
/// like an unknown code rather than crashing the connection.
fn unreachable_code(request: &RemotingCommand) -> ProcessResult {
    Err(ProcessError::new(
        ResponseCode::RequestCodeNotSupported,
        format!(" request type {} not supported", request.code),
    ))
}
