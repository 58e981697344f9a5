//! Bodies exchanged with the name server: topic configs, registrations and routes.
//!
//! Field names and JSON shapes follow RocketMQ's Java classes (`TopicConfig`,
//! `TopicRouteData`, `BrokerData`, `QueueData`, `ClusterInfo`, ...). Fields are declared
//! in alphabetical order because fastjson writes them that way; matching it keeps our
//! bodies byte-comparable with a Java server's.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

/// Permission bit: the queue may be read.
pub const PERM_READ: i32 = 0x4;
/// Permission bit: the queue may be written.
pub const PERM_WRITE: i32 = 0x2;
/// Permission bit: the topic inherits the permission of the template topic.
pub const PERM_INHERIT: i32 = 0x1;
/// Permission bit: priority topic.
pub const PERM_PRIORITY: i32 = 0x8;

/// Broker id of a group's master; slaves have ids ≥ 1.
pub const MASTER_ID: i64 = 0;

/// Version stamp of a broker's topic-config table (`DataVersion.java`).
///
/// The name server compares it to decide whether a re-registration changed anything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DataVersion {
    /// Monotonic counter bumped on every change.
    pub counter: i64,
    /// Bumped on state (role) changes in controller mode.
    pub state_version: i64,
    /// Wall-clock millis of the last change.
    pub timestamp: i64,
}

/// One topic's configuration on one broker (`TopicConfig.java`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicConfig {
    /// Extra attributes such as `+message.type=FIFO` (stored as `message.type` → `FIFO`).
    pub attributes: BTreeMap<String, String>,
    /// Whether the topic is ordered (FIFO).
    pub order: bool,
    /// Permission bits ([`PERM_READ`] | [`PERM_WRITE`] = 6).
    pub perm: i32,
    /// Number of readable queues.
    pub read_queue_nums: i32,
    /// `SINGLE_TAG` or `MULTI_TAG`.
    pub topic_filter_type: String,
    /// Topic name.
    pub topic_name: String,
    /// System flags (unit topics).
    pub topic_sys_flag: i32,
    /// Number of writable queues.
    pub write_queue_nums: i32,
}

impl Default for TopicConfig {
    fn default() -> Self {
        Self {
            attributes: BTreeMap::new(),
            order: false,
            perm: PERM_READ | PERM_WRITE,
            read_queue_nums: 16,
            topic_filter_type: "SINGLE_TAG".to_string(),
            topic_name: String::new(),
            topic_sys_flag: 0,
            write_queue_nums: 16,
        }
    }
}

impl TopicConfig {
    /// A read-write topic with `queues` read and write queues.
    pub fn new(name: impl Into<String>, queues: i32) -> Self {
        Self {
            topic_name: name.into(),
            read_queue_nums: queues,
            write_queue_nums: queues,
            ..Self::default()
        }
    }
}

/// A broker's topic table plus its version (`TopicConfigSerializeWrapper.java`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TopicConfigSerializeWrapper {
    /// Version of the table.
    pub data_version: DataVersion,
    /// Static-topic mapping version, passed through untouched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapping_data_version: Option<DataVersion>,
    /// Topic name → config.
    pub topic_config_table: BTreeMap<String, TopicConfig>,
    /// Static-topic mappings, passed through untouched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic_queue_mapping_info_map: Option<serde_json::Value>,
}

/// REGISTER_BROKER body (`RegisterBrokerBody.java`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RegisterBrokerBody {
    /// Filter server addresses (obsolete feature; carried for compatibility).
    pub filter_server_list: Vec<String>,
    /// The broker's topics.
    pub topic_config_serialize_wrapper: TopicConfigSerializeWrapper,
}

/// One broker group's queues of a topic (`QueueData.java`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueData {
    /// Broker group name.
    pub broker_name: String,
    /// Permission bits.
    pub perm: i32,
    /// Number of readable queues.
    pub read_queue_nums: i32,
    /// Topic system flags.
    pub topic_sys_flag: i32,
    /// Number of writable queues.
    pub write_queue_nums: i32,
}

/// A broker group's members (`BrokerData.java`): broker id → address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerData {
    /// Broker id ([`MASTER_ID`] for the master) → `ip:port`.
    pub broker_addrs: BTreeMap<i64, String>,
    /// Broker group name.
    pub broker_name: String,
    /// Cluster name.
    pub cluster: String,
    /// Whether a slave may act as master when the master is gone.
    #[serde(default)]
    pub enable_acting_master: bool,
    /// Zone, when zone mode is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_name: Option<String>,
}

/// GET_ROUTEINFO_BY_TOPIC body (`TopicRouteData.java`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicRouteData {
    /// Broker groups serving the topic.
    pub broker_datas: Vec<BrokerData>,
    /// Broker address → filter servers (obsolete; always present, usually empty).
    #[serde(default)]
    pub filter_server_table: BTreeMap<String, Vec<String>>,
    /// `brokerName:queueNums;...` for ordered topics, from the `ORDER_TOPIC_CONFIG` KV.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_topic_conf: Option<String>,
    /// Per broker group queue counts and permissions.
    pub queue_datas: Vec<QueueData>,
    /// Static-topic mappings, when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic_queue_mapping_by_broker: Option<serde_json::Value>,
}

impl TopicRouteData {
    /// Serialises the route the way a Java name server answers a client of `version`.
    ///
    /// Java's fastjson writes integer map keys unquoted (`{0:"addr"}`) unless the request
    /// came from V4_9_4 or later or asked for standard JSON; old clients parse either,
    /// but we reproduce the quirk so byte-level behaviour matches the reference.
    pub fn to_json_for(&self, standard_json: bool) -> Vec<u8> {
        if standard_json {
            return serde_json::to_vec(self).expect("route data serialises to JSON");
        }
        let value = serde_json::to_value(self).expect("route data serialises to JSON");
        {
            let mut out = Vec::with_capacity(256);
            crate::json::write_with_bare_int_keys(&value, &mut out, &|key| key == "brokerAddrs");
            out
        }
    }
}

/// GET_BROKER_CLUSTER_INFO body (`ClusterInfo.java`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterInfo {
    /// Broker group name → members.
    pub broker_addr_table: BTreeMap<String, BrokerData>,
    /// Cluster name → broker group names.
    pub cluster_addr_table: BTreeMap<String, BTreeSet<String>>,
}

/// Topic list bodies (`TopicList.java`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TopicList {
    /// Set only by brokers answering for themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_addr: Option<String>,
    /// Topic names.
    pub topic_list: BTreeSet<String>,
}

/// KV list body (`KVTable.java`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KvTable {
    /// Key → value.
    pub table: BTreeMap<String, String>,
}

/// GET_BROKER_MEMBER_GROUP body (`GetBrokerMemberGroupResponseBody.java`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerMemberGroupBody {
    /// The group.
    pub broker_member_group: BrokerMemberGroup,
}

/// A broker group's members (`BrokerMemberGroup.java`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerMemberGroup {
    /// Broker id → address.
    pub broker_addrs: BTreeMap<i64, String>,
    /// Broker group name.
    pub broker_name: String,
    /// Cluster name.
    pub cluster: String,
}

/// Map type used where Java uses `HashMap<String, ...>` and order does not matter.
pub type StringMap<V> = HashMap<String, V>;
