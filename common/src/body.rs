//! Request/response bodies exchanged between clients and brokers (heartbeats, groups,
//! queue locks). Field names are Java's; fields are declared alphabetically like fastjson
//! writes them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Deserializer, Serialize};

use crate::lenient;

fn optional_i32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i32>, D::Error> {
    lenient::i32_from_any(d).map(Some)
}

fn optional_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    lenient::bool_from_any(d).map(Some)
}

/// `TAG` or `SQL92`; absent or null means `TAG` (what old clients mean).
fn expression_type<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = lenient::string_from_any(d)?;
    Ok(if s.trim().is_empty() {
        "TAG".into()
    } else {
        s.trim().to_ascii_uppercase()
    })
}

/// A topic queue on a broker group (`MessageQueue.java`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageQueue {
    /// Broker group name.
    #[serde(deserialize_with = "lenient::string_from_any")]
    pub broker_name: String,
    /// Queue id.
    #[serde(deserialize_with = "lenient::i32_from_any")]
    pub queue_id: i32,
    /// Topic.
    #[serde(deserialize_with = "lenient::string_from_any")]
    pub topic: String,
}

/// HEART_BEAT (34) body (`HeartbeatData.java`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HeartbeatData {
    /// Client id, `ip@instance`.
    #[serde(rename = "clientID", deserialize_with = "lenient::string_from_any")]
    pub client_id: String,
    /// Consumer groups this client belongs to.
    pub consumer_data_set: Vec<ConsumerData>,
    /// Fingerprint of the heartbeat content (v2 heartbeats).
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_i32"
    )]
    pub heartbeat_fingerprint: Option<i32>,
    /// Whether subscriptions were left out because the fingerprint is unchanged.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_bool"
    )]
    pub is_without_sub: Option<bool>,
    /// Producer groups this client belongs to.
    pub producer_data_set: Vec<ProducerData>,
}

/// A producer group membership.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProducerData {
    /// Producer group.
    #[serde(deserialize_with = "lenient::string_from_any")]
    pub group_name: String,
}

/// A consumer group membership with its subscriptions (`ConsumerData.java`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerData {
    /// `CONSUME_FROM_LAST_OFFSET`, `CONSUME_FROM_FIRST_OFFSET` or `CONSUME_FROM_TIMESTAMP`.
    #[serde(deserialize_with = "lenient::consume_from_where")]
    pub consume_from_where: String,
    /// `CONSUME_ACTIVELY` (pull), `CONSUME_PASSIVELY` (push) or `CONSUME_POP`.
    #[serde(deserialize_with = "lenient::consume_type")]
    pub consume_type: String,
    /// Consumer group.
    #[serde(deserialize_with = "lenient::string_from_any")]
    pub group_name: String,
    /// `CLUSTERING` or `BROADCASTING`.
    #[serde(deserialize_with = "lenient::message_model")]
    pub message_model: String,
    /// Subscriptions.
    pub subscription_data_set: Vec<SubscriptionData>,
    /// Unit mode.
    #[serde(deserialize_with = "lenient::bool_from_any")]
    pub unit_mode: bool,
}

impl Default for ConsumerData {
    fn default() -> Self {
        Self {
            consume_from_where: "CONSUME_FROM_LAST_OFFSET".into(),
            consume_type: "CONSUME_PASSIVELY".into(),
            group_name: String::new(),
            message_model: "CLUSTERING".into(),
            subscription_data_set: Vec::new(),
            unit_mode: false,
        }
    }
}

/// One subscription (`SubscriptionData.java`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionData {
    /// Class filter mode (obsolete).
    #[serde(deserialize_with = "lenient::bool_from_any")]
    pub class_filter_mode: bool,
    /// Hash codes of the tags, for ConsumeQueue filtering.
    #[serde(deserialize_with = "lenient::i32_set_from_any")]
    pub code_set: BTreeSet<i32>,
    /// `TAG` or `SQL92`.
    #[serde(deserialize_with = "expression_type")]
    pub expression_type: String,
    /// The expression, `*` for all.
    #[serde(deserialize_with = "lenient::string_from_any")]
    pub sub_string: String,
    /// Version (a timestamp); newer replaces older.
    #[serde(deserialize_with = "lenient::i64_from_any")]
    pub sub_version: i64,
    /// Tags of a TAG expression.
    pub tags_set: BTreeSet<String>,
    /// Topic.
    pub topic: String,
}

impl Default for SubscriptionData {
    fn default() -> Self {
        Self {
            class_filter_mode: false,
            code_set: BTreeSet::new(),
            expression_type: "TAG".into(),
            sub_string: "*".into(),
            sub_version: 0,
            tags_set: BTreeSet::new(),
            topic: String::new(),
        }
    }
}

/// A subscription group's settings (`SubscriptionGroupConfig.java`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubscriptionGroupConfig {
    /// Extra attributes.
    pub attributes: BTreeMap<String, String>,
    /// Broker id to consume from.
    pub broker_id: i64,
    /// Whether broadcast consumption is allowed.
    pub consume_broadcast_enable: bool,
    /// Whether the group may consume at all.
    pub consume_enable: bool,
    /// Whether a new group may start from the queue minimum.
    pub consume_from_min_enable: bool,
    /// Orderly consumption.
    pub consume_message_orderly: bool,
    /// Minutes before a consumed-but-unacked message is redelivered.
    pub consume_timeout_minute: i32,
    /// Group name.
    pub group_name: String,
    /// Group sys flag.
    pub group_sys_flag: i32,
    /// Notify consumers when membership changes.
    pub notify_consumer_ids_changed_enable: bool,
    /// Sends before the DLQ.
    pub retry_max_times: i32,
    /// Queues of the group's retry topic.
    pub retry_queue_nums: i32,
    /// Broker id to consume from when the master is slow.
    pub which_broker_when_consume_slowly: i64,
}

impl Default for SubscriptionGroupConfig {
    fn default() -> Self {
        Self {
            attributes: BTreeMap::new(),
            broker_id: 0,
            consume_broadcast_enable: true,
            consume_enable: true,
            consume_from_min_enable: true,
            consume_message_orderly: false,
            consume_timeout_minute: 15,
            group_name: String::new(),
            group_sys_flag: 0,
            notify_consumer_ids_changed_enable: true,
            retry_max_times: 16,
            retry_queue_nums: 1,
            which_broker_when_consume_slowly: 1,
        }
    }
}

impl SubscriptionGroupConfig {
    /// A group with default settings.
    pub fn new(group_name: impl Into<String>) -> Self {
        Self {
            group_name: group_name.into(),
            ..Self::default()
        }
    }
}

/// GET_CONSUMER_LIST_BY_GROUP response body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ConsumerListBody {
    /// Client ids of the group's live consumers.
    pub consumer_id_list: Vec<String>,
}

/// LOCK_BATCH_MQ / UNLOCK_BATCH_MQ request body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LockBatchRequestBody {
    /// Client asking.
    #[serde(deserialize_with = "lenient::string_from_any")]
    pub client_id: String,
    /// Consumer group.
    #[serde(deserialize_with = "lenient::string_from_any")]
    pub consumer_group: String,
    /// Queues to lock.
    pub mq_set: BTreeSet<MessageQueue>,
    /// Lock only on this broker.
    #[serde(deserialize_with = "lenient::bool_from_any")]
    pub only_this_broker: bool,
}

/// CHECK_CLIENT_CONFIG (46) request body: a consumer asks whether the broker accepts its
/// subscription (sent for SQL92 subscriptions before consuming).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CheckClientRequestBody {
    /// Client id.
    #[serde(deserialize_with = "lenient::string_from_any")]
    pub client_id: String,
    /// Consumer group.
    #[serde(deserialize_with = "lenient::string_from_any")]
    pub group: String,
    /// The subscription to check.
    pub subscription_data: Option<SubscriptionData>,
    /// Namespace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// LOCK_BATCH_MQ response body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LockBatchResponseBody {
    /// Queues now locked by the client.
    #[serde(rename = "lockOKMQSet")]
    pub lock_ok_mq_set: BTreeSet<MessageQueue>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_parses_java_json() {
        let json = r#"{"clientID":"10.0.0.1@1234","consumerDataSet":[{"consumeFromWhere":"CONSUME_FROM_FIRST_OFFSET",
            "consumeType":"CONSUME_PASSIVELY","groupName":"G","messageModel":"CLUSTERING",
            "subscriptionDataSet":[{"classFilterMode":false,"codeSet":[2598919],"expressionType":"TAG",
            "subString":"TagA","subVersion":1700000000000,"tagsSet":["TagA"],"topic":"T"}],"unitMode":false}],
            "heartbeatFingerprint":0,"producerDataSet":[{"groupName":"CLIENT_INNER_PRODUCER"}]}"#;
        let hb: HeartbeatData = serde_json::from_str(json).unwrap();
        assert_eq!(hb.client_id, "10.0.0.1@1234");
        assert_eq!(
            hb.consumer_data_set[0].subscription_data_set[0]
                .code_set
                .len(),
            1
        );
        assert_eq!(hb.producer_data_set[0].group_name, "CLIENT_INNER_PRODUCER");
        let back = serde_json::to_string(&hb).unwrap();
        assert!(
            back.starts_with(r#"{"clientID":"10.0.0.1@1234","consumerDataSet":"#),
            "{back}"
        );
    }

    /// The body the C++ client core (rocketmq-client-cpp, as bundled by the Python wheel)
    /// sends: enums as ordinals, the version as a string.
    #[test]
    fn heartbeat_parses_cpp_client_json() {
        let json = r#"{"clientID":"172.17.0.2@4242#1714636#-1#1","consumerDataSet":[{"consumeFromWhere":0,
            "consumeType":1,"groupName":"CppGroup","messageModel":1,"subscriptionDataSet":[{"classFilterMode":false,
            "codeSet":[0,0],"expressionType":"TAG","subString":"*","subVersion":"1795848458226","tagsSet":[],
            "topic":"T"}],"unitMode":false}],"producerDataSet":[]}"#;
        let hb: HeartbeatData = crate::json::from_slice_lenient(json.as_bytes()).unwrap();
        let c = &hb.consumer_data_set[0];
        assert_eq!(c.consume_from_where, "CONSUME_FROM_LAST_OFFSET");
        assert_eq!(c.consume_type, "CONSUME_PASSIVELY");
        assert_eq!(c.message_model, "CLUSTERING");
        let sub = &c.subscription_data_set[0];
        assert_eq!(sub.sub_version, 1_795_848_458_226);
        assert_eq!(sub.code_set, BTreeSet::from([0]));
        // Broadcasting and first-offset by ordinal; a missing expression type means TAG.
        let json = r#"{"clientID":"c","consumerDataSet":[{"consumeFromWhere":4,"consumeType":0,
            "groupName":"G","messageModel":0,"subscriptionDataSet":[{"subString":"a||b","subVersion":1,
            "topic":"T"}]}]}"#;
        let hb: HeartbeatData = serde_json::from_str(json).unwrap();
        let c = &hb.consumer_data_set[0];
        assert_eq!(c.consume_from_where, "CONSUME_FROM_FIRST_OFFSET");
        assert_eq!(c.consume_type, "CONSUME_ACTIVELY");
        assert_eq!(c.message_model, "BROADCASTING");
        assert_eq!(c.subscription_data_set[0].expression_type, "TAG");
    }

    #[test]
    fn lock_body_from_cpp_client() {
        let json = r#"{"consumerGroup":"G","clientId":"c1","mqSet":[{"topic":"T","brokerName":"b","queueId":"3"}]}"#;
        let body: LockBatchRequestBody = serde_json::from_str(json).unwrap();
        assert_eq!(body.mq_set.iter().next().unwrap().queue_id, 3);
    }

    #[test]
    fn lock_body_field_names() {
        let body = LockBatchResponseBody::default();
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"lockOKMQSet":[]}"#
        );
        let group = SubscriptionGroupConfig::new("G");
        let text = serde_json::to_string(&group).unwrap();
        assert!(text.contains(r#""retryMaxTimes":16"#) && text.contains(r#""groupName":"G""#));
    }
}
