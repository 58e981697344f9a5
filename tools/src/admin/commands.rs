//! What each sub-command does and prints. Every command writes to a caller-supplied
//! `Write`, so tests read exactly what a user would see.
//!
//! Output follows Java's mqadmin (column headers, `create topic to ... success.` lines)
//! where a script might parse it; where we print more (keys and tags in `queryMsgByKey`, a
//! body preview in `queryMsgById`) the extra columns come last. Two deliberate differences:
//! `topicRoute` prints standard JSON (quoted broker-id keys, two-space indent) that `jq`
//! reads, where Java prints fastjson's pretty form; and times are UTC, not local time.

use std::collections::BTreeMap;
use std::io::Write;

use rocketmq_common::admin::{ConsumeStats, TopicStatsTable};
use rocketmq_common::body::{MessageQueue, SubscriptionGroupConfig};
use rocketmq_common::message::decode_offset_message_id;
use rocketmq_common::protocol::headers::broker::QueryMessageRequestHeader;
use rocketmq_common::route::{ClusterInfo, TopicConfig, TopicRouteData};

use super::cli::{
    ClusterListArgs, Command, ConsumerProgressArgs, DeleteSubGroupArgs, DeleteTopicArgs,
    QueryMsgByIdArgs, QueryMsgByKeyArgs, TopicRouteArgs, TopicStatusArgs, UpdateSubGroupArgs,
    UpdateTopicArgs,
};
use super::error::AdminError;
use super::format::{human_time_millis, human_time_seconds, perm_to_string, truncate};
use super::{broker_commands, message_commands};
use rocketmq_client::api::{
    MqClient, ORDER_TOPIC_CONFIG_NAMESPACE, master_addrs_of_cluster, select_broker_addr,
};
use rocketmq_client::message::{ReadableBody, StoredMessage};

/// Retry topic of a consumer group (`MixAll.getRetryTopic`).
pub fn retry_topic(group: &str) -> String {
    format!("%RETRY%{group}")
}

/// Longest topic name a broker accepts (`TopicValidator.TOPIC_MAX_LENGTH`).
const TOPIC_MAX_LENGTH: usize = 127;
/// Longest group name a broker accepts (`TopicValidator.GROUP_MAX_LENGTH`).
const GROUP_MAX_LENGTH: usize = 120;
/// Body bytes `queryMsgById` prints.
const BODY_PREVIEW_BYTES: usize = 512;
/// Unique-key lookups search this far back (`MQAdminImpl.queryMessageByUniqKey`: 3 days).
const UNIQUE_KEY_LOOKBACK_MILLIS: i64 = 3 * 24 * 3600 * 1000;
/// Most candidates a unique-key lookup asks each broker for (index hash collisions).
const UNIQUE_KEY_MAX_NUM: i32 = 32;

/// Runs `command` and writes its output to `out`.
pub async fn run(
    client: &MqClient,
    command: &Command,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    match command {
        Command::UpdateTopic(a) => update_topic(client, a, out).await,
        Command::DeleteTopic(a) => delete_topic(client, a, out).await,
        Command::TopicList => topic_list(client, out).await,
        Command::TopicRoute(a) => topic_route(client, a, out).await,
        Command::TopicStatus(a) => topic_status(client, a, out).await,
        Command::ClusterList(a) => cluster_list(client, a, out).await,
        Command::UpdateSubGroup(a) => update_sub_group(client, a, out).await,
        Command::DeleteSubGroup(a) => delete_sub_group(client, a, out).await,
        Command::ConsumerProgress(a) => consumer_progress(client, a, out).await,
        Command::QueryMsgByKey(a) => query_msg_by_key(client, a, out).await,
        Command::QueryMsgById(a) => query_msg_by_id(client, a, out).await,
        Command::BrokerStatus(a) => broker_commands::broker_status(client, a, out).await,
        Command::GetBrokerConfig(a) => broker_commands::get_broker_config(client, a, out).await,
        Command::UpdateBrokerConfig(a) => {
            broker_commands::update_broker_config(client, a, out).await
        }
        Command::ConsumerConnection(a) => {
            broker_commands::consumer_connection(client, a, out).await
        }
        Command::ProducerConnection(a) => {
            broker_commands::producer_connection(client, a, out).await
        }
        Command::ResetOffsetByTime(a) => {
            broker_commands::reset_offset_by_time(client, a, out).await
        }
        Command::QueryMsgByOffset(a) => message_commands::query_msg_by_offset(client, a, out).await,
        Command::PrintMsg(a) => message_commands::print_msg(client, a, out).await,
        Command::SendMessage(a) => message_commands::send_message(client, a, out).await,
        Command::ConsumeMessage(a) => message_commands::consume_message(client, a, out).await,
        Command::GetControllerMetaData(_)
        | Command::GetSyncStateSet(_)
        | Command::GetBrokerEpoch(_)
        | Command::ElectMaster(_)
        | Command::GetControllerConfig(_)
        | Command::UpdateControllerConfig(_)
        | Command::CleanBrokerMetadata(_) => {
            super::controller_commands::run(command, Some(client), client.timeout(), out)
                .await
                .expect("a controller command")
        }
        Command::HealthCheck(a) => super::health::health_check(&a.url, client.timeout(), out).await,
    }
}

/// `TopicValidator.validateTopic`: non-empty, at most 127 characters from `[%|a-zA-Z0-9_-]`.
pub fn validate_topic(topic: &str) -> Result<(), AdminError> {
    if topic.is_empty() {
        return Err(AdminError::invalid("topic", "the topic name is empty"));
    }
    if topic.len() > TOPIC_MAX_LENGTH {
        return Err(AdminError::invalid(
            "topic",
            format!("{topic:?} is longer than {TOPIC_MAX_LENGTH} characters"),
        ));
    }
    if let Some(c) = topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '%' | '|' | '_' | '-')))
    {
        return Err(AdminError::invalid(
            "topic",
            format!("{topic:?} contains {c:?}; allowed are letters, digits and %|_-"),
        ));
    }
    Ok(())
}

/// `AttributeParser.parseToMap`: `+k=v` adds or changes, `-k` deletes; keys keep their sign.
pub fn parse_attributes(spec: &str) -> Result<BTreeMap<String, String>, AdminError> {
    let mut attributes = BTreeMap::new();
    if spec.trim().is_empty() {
        return Ok(attributes);
    }
    for item in spec.split(',') {
        let (key, value) = match item.split_once('=') {
            Some((k, v)) if k.starts_with('+') && k.len() > 1 => (k, v),
            Some(_) => {
                return Err(AdminError::invalid(
                    "attributes",
                    format!("{item:?}: to add or change, write +key=value"),
                ));
            }
            None if item.starts_with('-') && item.len() > 1 => (item, ""),
            None => {
                return Err(AdminError::invalid(
                    "attributes",
                    format!("{item:?}: to delete, write -key"),
                ));
            }
        };
        if attributes
            .insert(key.to_string(), value.to_string())
            .is_some()
        {
            return Err(AdminError::invalid(
                "attributes",
                format!("{key:?} appears twice"),
            ));
        }
    }
    Ok(attributes)
}

/// The topic config `updateTopic` sends, from its options.
pub fn topic_config_from_args(a: &UpdateTopicArgs) -> Result<TopicConfig, AdminError> {
    validate_topic(a.topic.trim())?;
    // PermName.isValid: only the read/write/inherit bits.
    if !(0..8).contains(&a.perm) {
        return Err(AdminError::invalid(
            "perm",
            format!("{} is not a permission; use 2 (W), 4 (R) or 6 (RW)", a.perm),
        ));
    }
    for (what, n) in [
        ("readQueueNums", a.read_queue_nums),
        ("writeQueueNums", a.write_queue_nums),
    ] {
        if n < 0 {
            return Err(AdminError::invalid(what, format!("{n} is negative")));
        }
    }
    // TopicSysFlag.buildSysFlag: bit 0 unit, bit 1 unit subscription.
    let topic_sys_flag = i32::from(a.unit) | (i32::from(a.has_unit_sub) << 1);
    Ok(TopicConfig {
        attributes: parse_attributes(a.attributes.as_deref().unwrap_or(""))?,
        order: a.order,
        perm: a.perm,
        read_queue_nums: a.read_queue_nums,
        topic_filter_type: "SINGLE_TAG".to_string(),
        topic_name: a.topic.trim().to_string(),
        topic_sys_flag,
        write_queue_nums: a.write_queue_nums,
    })
}

/// `TopicConfig.toString()`, which Java's updateTopic prints after creating.
pub fn display_topic_config(c: &TopicConfig) -> String {
    let attributes: Vec<String> = c
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "TopicConfig [topicName={}, readQueueNums={}, writeQueueNums={}, perm={}, topicFilterType={}, topicSysFlag={}, order={}, attributes={{{}}}]",
        c.topic_name,
        c.read_queue_nums,
        c.write_queue_nums,
        perm_to_string(c.perm),
        c.topic_filter_type,
        c.topic_sys_flag,
        c.order,
        attributes.join(", ")
    )
}

async fn update_topic(
    client: &MqClient,
    a: &UpdateTopicArgs,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let config = topic_config_from_args(a)?;
    if let Some(addr) = &a.broker_addr {
        let addr = addr.trim();
        client.create_topic(addr, &config).await?;
        if config.order {
            // The name servers hand this layout to producers of ordered topics.
            let info = client.cluster_info().await?;
            let broker_name = broker_name_of_addr(&info, addr).ok_or_else(|| {
                AdminError::invalid(
                    "brokerAddr",
                    format!("{addr} is not registered with the name server"),
                )
            })?;
            // One broker changes: keep the other brokers' entries (Java's
            // createOrUpdateOrderConf with isCluster=false).
            let old = client
                .kv_config(ORDER_TOPIC_CONFIG_NAMESPACE, &config.topic_name)
                .await?;
            let order_conf = merge_order_conf(
                old.as_deref(),
                &format!("{broker_name}:{}", config.write_queue_nums),
            );
            client
                .put_kv_config_everywhere(
                    ORDER_TOPIC_CONFIG_NAMESPACE,
                    &config.topic_name,
                    &order_conf,
                )
                .await?;
            writeln!(
                out,
                "set broker orderConf. isOrder=true, orderConf=[{order_conf}]"
            )?;
        }
        writeln!(out, "create topic to {addr} success.")?;
    } else if let Some(cluster) = &a.cluster_name {
        let info = client.cluster_info().await?;
        let cluster = cluster.trim();
        for addr in master_addrs_of_cluster(&info, cluster)? {
            client.create_topic(&addr, &config).await?;
            writeln!(out, "create topic to {addr} success.")?;
        }
        if config.order {
            let order_conf = info
                .cluster_addr_table
                .get(cluster)
                .into_iter()
                .flatten()
                .map(|name| format!("{name}:{}", config.write_queue_nums))
                .collect::<Vec<_>>()
                .join(";");
            client
                .put_kv_config_everywhere(
                    ORDER_TOPIC_CONFIG_NAMESPACE,
                    &config.topic_name,
                    &order_conf,
                )
                .await?;
            writeln!(
                out,
                "set cluster orderConf. isOrder=true, orderConf=[{order_conf}]"
            )?;
        }
    }
    writeln!(out, "{}", display_topic_config(&config))?;
    Ok(())
}

/// An ordered topic's layout (`broker-a:8;broker-b:8`) with `entry` (`broker:queues`)
/// replacing that broker's old entry, brokers in name order.
pub fn merge_order_conf(old: Option<&str>, entry: &str) -> String {
    let broker_of = |e: &str| e.split(':').next().unwrap_or_default().to_string();
    let mut entries: BTreeMap<String, String> = old
        .unwrap_or_default()
        .split(';')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|e| (broker_of(e), e.to_string()))
        .collect();
    entries.insert(broker_of(entry), entry.to_string());
    entries.into_values().collect::<Vec<_>>().join(";")
}

/// The broker group whose member listens on `addr`.
fn broker_name_of_addr<'a>(info: &'a ClusterInfo, addr: &str) -> Option<&'a str> {
    info.broker_addr_table
        .values()
        .find(|data| data.broker_addrs.values().any(|a| a == addr))
        .map(|data| data.broker_name.as_str())
}

async fn delete_topic(
    client: &MqClient,
    a: &DeleteTopicArgs,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    delete_topic_from_cluster(client, a.topic.trim(), a.cluster_name.trim(), out).await
}

/// Java's `DeleteTopicSubCommand.deleteTopic`: every master of the cluster, then every name
/// server (limited to that cluster's brokers).
async fn delete_topic_from_cluster(
    client: &MqClient,
    topic: &str,
    cluster: &str,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    for addr in client.cluster_master_addrs(cluster).await? {
        client.delete_topic_in_broker(&addr, topic).await?;
    }
    writeln!(
        out,
        "delete topic [{topic}] from cluster [{cluster}] success."
    )?;
    for namesrv in client.namesrv_addrs() {
        client
            .delete_topic_in_namesrv(namesrv, topic, Some(cluster))
            .await?;
    }
    writeln!(out, "delete topic [{topic}] from NameServer success.")?;
    Ok(())
}

async fn topic_list(client: &MqClient, out: &mut dyn Write) -> Result<(), AdminError> {
    for topic in client.topic_list().await?.topic_list {
        writeln!(out, "{topic}")?;
    }
    Ok(())
}

async fn topic_route(
    client: &MqClient,
    a: &TopicRouteArgs,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let route = client.topic_route(a.topic.trim()).await?;
    if a.list {
        write!(out, "{}", route_table(&route))?;
    } else {
        let json = serde_json::to_string_pretty(&route)
            .map_err(|e| AdminError::bad_body("name server", "topic route", e))?;
        writeln!(out, "{json}")?;
    }
    Ok(())
}

/// `topicRoute -l`: one row per broker group, then totals.
pub fn route_table(route: &TopicRouteData) -> String {
    const SEP: usize = 158;
    let row = |c: &str, b: &str, addrs: &str, r: &str, w: &str, p: &str| {
        format!("{c:<45} {b:<32} {addrs:<50} {r:<10} {w:<11} {p:<5}\n")
    };
    let mut text = row(
        "#ClusterName",
        "#BrokerName",
        "#BrokerAddrs",
        "#ReadQueue",
        "#WriteQueue",
        "#Perm",
    );
    let mut brokers = route.broker_datas.clone();
    brokers.sort_by(|x, y| x.broker_name.cmp(&y.broker_name));
    let (mut total_read, mut total_write, mut groups) = (0i64, 0i64, 0usize);
    for broker in &brokers {
        let Some(queues) = route
            .queue_datas
            .iter()
            .find(|q| q.broker_name == broker.broker_name)
        else {
            continue;
        };
        groups += 1;
        total_read += i64::from(queues.read_queue_nums);
        total_write += i64::from(queues.write_queue_nums);
        let addrs: Vec<String> = broker
            .broker_addrs
            .iter()
            .map(|(id, addr)| format!("{id}={addr}"))
            .collect();
        text += &row(
            &broker.cluster,
            &broker.broker_name,
            &format!("{{{}}}", addrs.join(", ")),
            &queues.read_queue_nums.to_string(),
            &queues.write_queue_nums.to_string(),
            &queues.perm.to_string(),
        );
    }
    text += &"-".repeat(SEP);
    text += "\n";
    text += &row(
        "Total:",
        &groups.to_string(),
        "",
        &total_read.to_string(),
        &total_write.to_string(),
        "",
    );
    text
}

async fn topic_status(
    client: &MqClient,
    a: &TopicStatusArgs,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let topic = a.topic.trim();
    let route = client.topic_route(topic).await?;
    let mut merged = TopicStatsTable::default();
    for broker in &route.broker_datas {
        if a.cluster
            .as_deref()
            .is_some_and(|c| c.trim() != broker.cluster)
        {
            continue;
        }
        let Some(addr) = select_broker_addr(broker) else {
            continue;
        };
        let stats = client.topic_stats(addr, topic).await?;
        merged.offset_table.extend(stats.offset_table);
        merged.topic_put_tps += stats.topic_put_tps;
    }
    write!(out, "{}", topic_status_table(&merged))?;
    Ok(())
}

/// Java's MessageQueue order: topic, then broker name, then queue id.
fn queue_order(x: &MessageQueue, y: &MessageQueue) -> std::cmp::Ordering {
    (&x.topic, &x.broker_name, x.queue_id).cmp(&(&y.topic, &y.broker_name, y.queue_id))
}

/// `topicStatus` output: one row per queue, then the put TPS.
pub fn topic_status_table(stats: &TopicStatsTable) -> String {
    let mut text = format!(
        "{:<32}  {:<4}  {:<20}  {:<20}    {}\n",
        "#Broker Name", "#QID", "#Min Offset", "#Max Offset", "#Last Updated"
    );
    let mut queues: Vec<_> = stats.offset_table.iter().collect();
    queues.sort_by(|x, y| queue_order(x.0, y.0));
    for (queue, offsets) in queues {
        let updated = if offsets.last_update_timestamp > 0 {
            human_time_millis(offsets.last_update_timestamp)
        } else {
            String::new()
        };
        text += &format!(
            "{:<32}  {:<4}  {:<20}  {:<20}    {}\n",
            truncate(&queue.broker_name, 32),
            queue.queue_id,
            offsets.min_offset,
            offsets.max_offset,
            updated
        );
    }
    text += &format!(
        "\nTopic Put TPS: {}\n",
        rocketmq_common::admin::java_double(stats.topic_put_tps)
    );
    text
}

async fn cluster_list(
    client: &MqClient,
    a: &ClusterListArgs,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let info = client.cluster_info().await?;
    let clusters: Vec<&str> = match &a.cluster_name {
        Some(c) => {
            let c = c.trim();
            if !info.cluster_addr_table.contains_key(c) {
                return Err(AdminError::cluster_not_found(c.to_string()));
            }
            vec![c]
        }
        None => info.cluster_addr_table.keys().map(String::as_str).collect(),
    };
    let mut rows = Vec::new();
    for cluster in clusters {
        for broker_name in info.cluster_addr_table.get(cluster).into_iter().flatten() {
            let Some(data) = info.broker_addr_table.get(broker_name) else {
                continue;
            };
            for (id, addr) in &data.broker_addrs {
                // Runtime figures are best effort: a broker that is down or does not
                // implement GET_BROKER_RUNTIME_INFO still gets its row, with blanks.
                let runtime = client.broker_runtime_info(addr).await.ok();
                rows.push(ClusterRow {
                    cluster: cluster.to_string(),
                    broker_name: broker_name.clone(),
                    broker_id: *id,
                    addr: addr.clone(),
                    runtime: runtime.map(|kv| kv.table).unwrap_or_default(),
                });
            }
        }
    }
    write!(out, "{}", cluster_table(&rows))?;
    Ok(())
}

/// One broker process in `clusterList`.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterRow {
    /// Cluster name.
    pub cluster: String,
    /// Broker group name.
    pub broker_name: String,
    /// Broker id (0 = master).
    pub broker_id: i64,
    /// Address.
    pub addr: String,
    /// GET_BROKER_RUNTIME_INFO table, empty if the broker did not answer.
    pub runtime: BTreeMap<String, String>,
}

/// `clusterList` output in Java's columns (`ClusterListSubCommand`): version, in/out TPS
/// with queue load, timer progress, page-cache lock wait, hours of messages kept, disk use
/// and whether the broker is active; then, our addition, each broker's role and master
/// epoch (Java shows neither). A broker that did not answer keeps its first columns.
pub fn cluster_table(rows: &[ClusterRow]) -> String {
    let mut text = format!(
        "{:<22}  {:<22}  {:<4}  {:<22} {:<16}  {:>16}  {:>30}  {:<22}  {:<11}  {:<12}  {:<8}  {:<10}  {:<12}  {:<6}\n",
        "#Cluster Name",
        "#Broker Name",
        "#BID",
        "#Addr",
        "#Version",
        "#InTPS(LOAD)",
        "#OutTPS(LOAD)",
        "#Timer(Progress)",
        "#PCWait(ms)",
        "#Hour",
        "#SPACE",
        "#ACTIVATED",
        "#ROLE",
        "#EPOCH"
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    for row in rows {
        let rt = &row.runtime;
        let get = |k: &str| rt.get(k).map_or("", String::as_str);
        let num = |k: &str| get(k).trim().parse::<f64>().unwrap_or(0.0);
        // "putTps"/"getTransferredTps" hold "10s 1m 10m" averages; Java shows the first.
        let first = |k: &str| {
            get(k)
                .split(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let (version, in_tps, out_tps, timer, pc_wait, hours, space, active) = if rt.is_empty() {
            Default::default()
        } else {
            let or_n = |k: &str| if get(k).is_empty() { "N" } else { get(k) };
            let earliest = get("earliestMessageTimeStamp").parse::<i64>().unwrap_or(0);
            (
                get("brokerVersionDesc").to_string(),
                format!(
                    "{:9.2}({},{}ms)",
                    first("putTps"),
                    get("sendThreadPoolQueueSize"),
                    get("sendThreadPoolQueueHeadWaitTimeMills")
                ),
                format!(
                    "{:9.2}({},{}ms|{},{}ms)",
                    first("getTransferredTps"),
                    get("pullThreadPoolQueueSize"),
                    get("pullThreadPoolQueueHeadWaitTimeMills"),
                    or_n("ackThreadPoolQueueSize"),
                    or_n("ackThreadPoolQueueHeadWaitTimeMills")
                ),
                format!(
                    "{}-{}({:.1}w, {:.1}, {:.1})",
                    num("timerReadBehind") as i64,
                    num("timerOffsetBehind") as i64,
                    num("timerCongestNum") / 10000.0,
                    num("timerEnqueueTps"),
                    num("timerDequeueTps")
                ),
                get("pageCacheLockTimeMills").to_string(),
                format!("{:2.2}", (now - earliest) as f64 / 3_600_000.0),
                format!("{:.4}", num("commitLogDiskRatio")),
                get("brokerActive").eq_ignore_ascii_case("true").to_string(),
            )
        };
        text += &format!(
            "{:<22}  {:<22}  {:<4}  {:<22} {:<16}  {:>16}  {:>30}  {:<22}  {:>11}  {:<12}  {:<8}  {:>10}  {:<12}  {:<6}\n",
            row.cluster,
            row.broker_name,
            row.broker_id,
            row.addr,
            version,
            in_tps,
            out_tps,
            timer,
            pc_wait,
            hours,
            space,
            active,
            rt.get("brokerRole").map_or("", String::as_str),
            rt.get("masterEpoch").map_or("", String::as_str)
        );
    }
    text
}

/// The SubscriptionGroupConfig JSON body `updateSubGroup` sends, from its options.
pub fn sub_group_body(a: &UpdateSubGroupArgs) -> Result<serde_json::Value, AdminError> {
    let group = a.group_name.trim();
    // TopicValidator: group names obey the topic rules, but at most 120 characters so the
    // retry and DLQ topics built from them stay valid.
    if group.chars().count() > GROUP_MAX_LENGTH || validate_topic(group).is_err() {
        return Err(AdminError::invalid(
            "groupName",
            format!("{group:?}: use 1 to {GROUP_MAX_LENGTH} letters, digits and %|_-"),
        ));
    }
    // Java's command starts from these two set to false, unlike the class defaults.
    let mut config = SubscriptionGroupConfig {
        consume_broadcast_enable: false,
        consume_from_min_enable: false,
        ..SubscriptionGroupConfig::new(group)
    };
    if let Some(v) = a.consume_enable {
        config.consume_enable = v;
    }
    if let Some(v) = a.consume_from_min_enable {
        config.consume_from_min_enable = v;
    }
    if let Some(v) = a.consume_broadcast_enable {
        config.consume_broadcast_enable = v;
    }
    if let Some(v) = a.consume_message_orderly {
        config.consume_message_orderly = v;
    }
    if let Some(v) = a.retry_queue_nums {
        config.retry_queue_nums = v;
    }
    if let Some(v) = a.retry_max_times {
        config.retry_max_times = v;
    }
    if let Some(v) = a.broker_id {
        config.broker_id = v;
    }
    if let Some(v) = a.which_broker_when_consume_slowly {
        config.which_broker_when_consume_slowly = v;
    }
    if let Some(v) = a.notify_consumer_ids_changed {
        config.notify_consumer_ids_changed_enable = v;
    }
    if let Some(spec) = &a.attributes {
        config.attributes = parse_attributes(spec)?;
    }
    let mut body = serde_json::to_value(&config)
        .map_err(|e| AdminError::invalid("subscription group", e.to_string()))?;
    if let Some(policy) = &a.group_retry_policy {
        let policy: serde_json::Value = serde_json::from_str(policy)
            .map_err(|e| AdminError::invalid("groupRetryPolicy", e.to_string()))?;
        if !policy.is_object() {
            return Err(AdminError::invalid(
                "groupRetryPolicy",
                "expected a JSON object such as {\"type\":\"CUSTOMIZED\",\"customizedRetryPolicy\":{\"next\":[1000,5000]}}",
            ));
        }
        if let Some(fields) = body.as_object_mut() {
            fields.insert("groupRetryPolicy".to_string(), policy);
        }
    }
    Ok(body)
}

async fn update_sub_group(
    client: &MqClient,
    a: &UpdateSubGroupArgs,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let body = sub_group_body(a)?;
    // serde_json's map is ordered, so fields come out sorted like fastjson's.
    let bytes = serde_json::to_vec(&body)
        .map_err(|e| AdminError::invalid("subscription group", e.to_string()))?;
    let targets = match (&a.broker_addr, &a.cluster_name) {
        (Some(addr), _) => vec![addr.trim().to_string()],
        (None, Some(cluster)) => client.cluster_master_addrs(cluster.trim()).await?,
        (None, None) => Vec::new(),
    };
    for addr in targets {
        client
            .create_subscription_group(&addr, bytes.clone())
            .await?;
        writeln!(out, "create subscription group to {addr} success.")?;
    }
    writeln!(out, "{}", String::from_utf8_lossy(&bytes))?;
    Ok(())
}

async fn delete_sub_group(
    client: &MqClient,
    a: &DeleteSubGroupArgs,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let group = a.group_name.trim();
    if let Some(addr) = &a.broker_addr {
        let addr = addr.trim();
        client
            .delete_subscription_group(addr, group, a.remove_offset)
            .await?;
        writeln!(
            out,
            "delete subscription group [{group}] from broker [{addr}] success."
        )?;
    } else if let Some(cluster) = &a.cluster_name {
        let cluster = cluster.trim();
        for addr in client.cluster_master_addrs(cluster).await? {
            client
                .delete_subscription_group(&addr, group, a.remove_offset)
                .await?;
            writeln!(
                out,
                "delete subscription group [{group}] from broker [{addr}] in cluster [{cluster}] success."
            )?;
        }
        // The group is gone either way; its retry and DLQ topics are cleaned up best effort
        // (a group that never failed a message has no DLQ topic), as Java does.
        for topic in [retry_topic(group), format!("%DLQ%{group}")] {
            if let Err(e) = delete_topic_from_cluster(client, &topic, cluster, out).await {
                writeln!(out, "delete topic [{topic}] skipped: {e}")?;
            }
        }
    }
    Ok(())
}

async fn consumer_progress(
    client: &MqClient,
    a: &ConsumerProgressArgs,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let topic = a.topic_name.as_deref().map(str::trim);
    match a.group_name.as_deref().map(str::trim) {
        Some(group) => {
            let stats = group_consume_stats(client, group, topic).await?;
            write!(out, "{}", consumer_progress_table(&stats))?;
        }
        None => {
            // Every group that has consumed leaves a retry topic behind; that is how Java
            // finds them too.
            let mut summaries = Vec::new();
            for group in groups_from_topics(&client.topic_list().await?.topic_list) {
                // One group whose brokers are down must not hide the others.
                let stats = group_consume_stats(client, &group, None).await.ok();
                summaries.push((group, stats));
            }
            write!(out, "{}", group_summary_table(&summaries))?;
        }
    }
    Ok(())
}

/// A group's consume stats merged over the brokers of its retry topic (Java's
/// `examineConsumeStats`); with `topic`, that topic's route is the fallback.
async fn group_consume_stats(
    client: &MqClient,
    group: &str,
    topic: Option<&str>,
) -> Result<ConsumeStats, AdminError> {
    let route = match client
        .topic_route(&retry_topic(group))
        .await
        .map_err(AdminError::from)
    {
        Ok(route) => route,
        Err(AdminError::Client(rocketmq_client::ClientError::TopicNotFound { .. }))
            if topic.is_some() =>
        {
            client.topic_route(topic.unwrap_or_default()).await?
        }
        Err(e) => return Err(e),
    };
    let mut merged = ConsumeStats::default();
    for broker in &route.broker_datas {
        let Some(addr) = select_broker_addr(broker) else {
            continue;
        };
        let stats = client.consume_stats(addr, group, topic).await?;
        merged.offset_table.extend(stats.offset_table);
        merged.consume_tps += stats.consume_tps;
    }
    Ok(merged)
}

/// Consumer groups named by retry topics (`KeyBuilder.parseGroup`): `%RETRY%<group>`, or
/// `%RETRY%<group>+<topic>` for POP retry topics (v2).
pub fn groups_from_topics<'a>(topics: impl IntoIterator<Item = &'a String>) -> Vec<String> {
    let groups: std::collections::BTreeSet<String> = topics
        .into_iter()
        .filter_map(|t| t.strip_prefix("%RETRY%"))
        .map(
            |rest| match rest.split('+').collect::<Vec<_>>().as_slice() {
                [group, _topic] => group.to_string(),
                _ => rest.to_string(),
            },
        )
        .filter(|g| !g.is_empty())
        .collect();
    groups.into_iter().collect()
}

/// `consumerProgress` without -g: one line per group, `N/A` where its stats were not
/// available.
pub fn group_summary_table(groups: &[(String, Option<ConsumeStats>)]) -> String {
    let mut text = format!("{:<64}  {:<7}  {}\n", "#Group", "#TPS", "#Diff Total");
    for (group, stats) in groups {
        let (tps, diff) = match stats {
            // Java prints the TPS truncated to an int here.
            Some(s) => (
                (s.consume_tps as i64).to_string(),
                s.total_diff().to_string(),
            ),
            None => ("N/A".to_string(), "N/A".to_string()),
        };
        text += &format!("{:<64}  {:<7}  {}\n", truncate(group, 64), tps, diff);
    }
    text
}

/// `consumerProgress -g` output: per-queue offsets, lag and in-flight, then totals.
pub fn consumer_progress_table(stats: &ConsumeStats) -> String {
    let mut text = format!(
        "{:<64}  {:<32}  {:<4}  {:<20}  {:<20}  {:<20} {:<20}{}\n",
        "#Topic",
        "#Broker Name",
        "#QID",
        "#Broker Offset",
        "#Consumer Offset",
        "#Diff",
        "#Inflight",
        "#LastTime"
    );
    let mut queues: Vec<_> = stats.offset_table.iter().collect();
    queues.sort_by(|x, y| queue_order(x.0, y.0));
    for (queue, offsets) in queues {
        let last = if offsets.last_timestamp == 0 {
            "N/A".to_string()
        } else {
            human_time_seconds(offsets.last_timestamp)
        };
        text += &format!(
            "{:<64}  {:<32}  {:<4}  {:<20}  {:<20}  {:<20} {:<20} {}\n",
            truncate(&queue.topic, 64),
            truncate(&queue.broker_name, 32),
            queue.queue_id,
            offsets.broker_offset,
            offsets.consumer_offset,
            offsets.diff(),
            offsets.inflight(),
            last
        );
    }
    text += &format!(
        "\nConsume TPS: {:.2}\nConsume Diff Total: {}\nConsume Inflight Total: {}\n",
        stats.consume_tps,
        stats.total_diff(),
        stats.total_inflight()
    );
    text
}

/// Addresses to ask for a topic's messages: one per broker group of the route (master
/// first), optionally only those of `cluster`.
fn query_targets(route: &TopicRouteData, cluster: Option<&str>) -> Vec<String> {
    route
        .broker_datas
        .iter()
        .filter(|b| cluster.is_none_or(|c| c == b.cluster))
        .filter_map(select_broker_addr)
        .map(str::to_string)
        .collect()
}

async fn query_msg_by_key(
    client: &MqClient,
    a: &QueryMsgByKeyArgs,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let topic = a.topic.trim();
    let key = a.msg_key.trim();
    let route = client.topic_route(topic).await?;
    let header = QueryMessageRequestHeader {
        topic: topic.to_string(),
        key: key.to_string(),
        max_num: a.max_num,
        begin_timestamp: a.begin_timestamp,
        end_timestamp: a.end_timestamp,
    };
    let mut found = Vec::new();
    for addr in query_targets(&route, a.cluster.as_deref().map(str::trim)) {
        let messages = client.query_message(&addr, &header, false).await?;
        // The index is a hash table: drop collisions, as Java's client does.
        found.extend(
            messages
                .into_iter()
                .filter(|m| m.topic == topic && m.has_key(key)),
        );
    }
    write!(out, "{}", messages_by_key_table(&found))?;
    Ok(())
}

/// `queryMsgByKey` output: Java's id/queue/offset columns, then store time, tags and keys.
pub fn messages_by_key_table(messages: &[StoredMessage]) -> String {
    let mut text = format!(
        "{:<50} {:>4} {:>40}  {:<23}  {:<20}  {}\n",
        "#Message ID", "#QID", "#Offset", "#Store Time", "#Tags", "#Keys"
    );
    for m in messages {
        text += &format!(
            "{:<50} {:>4} {:>40}  {:<23}  {:<20}  {}\n",
            m.msg_id(),
            m.queue_id,
            m.queue_offset,
            human_time_millis(m.store_timestamp),
            m.tags().unwrap_or(""),
            m.keys().unwrap_or("")
        );
    }
    text
}

async fn query_msg_by_id(
    client: &MqClient,
    a: &QueryMsgByIdArgs,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let topic = a.topic.trim();
    let ids: Vec<&str> = a
        .msg_id
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .collect();
    if ids.is_empty() {
        return Err(AdminError::invalid("msgId", "no message id given"));
    }
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        let message = find_message_by_id(client, topic, id, a.cluster.as_deref()).await?;
        write!(out, "{}", message_details(&message))?;
    }
    Ok(())
}

/// Looks `id` up the way Java's admin does: as an offset message id first (VIEW_MESSAGE_BY_ID
/// to the store host it encodes), then as the producer's unique key (QUERY_MESSAGE with
/// `_UNIQUE_KEY_QUERY` across the topic's brokers).
///
/// A unique key is 32 hex characters too, so it also decodes as an offset id — into an
/// address and offset that mean nothing. Java relies on that request failing; we also check
/// that a message found this way really sits at the decoded host and offset.
pub async fn find_message_by_id(
    client: &MqClient,
    topic: &str,
    id: &str,
    cluster: Option<&str>,
) -> Result<StoredMessage, AdminError> {
    // Why the offset-id lookup failed, reported if the unique-key lookup finds nothing
    // either (a down broker should not look like a missing message).
    let mut note = String::new();
    if let Ok((store_host, offset)) = decode_offset_message_id(id) {
        match client
            .view_message(&store_host.to_string(), topic, offset)
            .await
        {
            Ok(message)
                if message.commit_log_offset == offset
                    && message.offset_msg_id().eq_ignore_ascii_case(id) =>
            {
                return Ok(message);
            }
            Ok(message) => {
                note = format!(
                    " (as an offset id: {store_host} returned the message at offset {} instead)",
                    message.commit_log_offset
                );
            }
            Err(e) => note = format!(" (as an offset id: {e})"),
        }
    }
    let route = client.topic_route(topic).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let header = QueryMessageRequestHeader {
        topic: topic.to_string(),
        key: id.to_string(),
        max_num: UNIQUE_KEY_MAX_NUM,
        begin_timestamp: now - UNIQUE_KEY_LOOKBACK_MILLIS,
        end_timestamp: i64::MAX,
    };
    for addr in query_targets(&route, cluster.map(str::trim)) {
        let candidates = client.query_message(&addr, &header, true).await?;
        if let Some(m) = candidates.into_iter().find(|m| m.msg_id() == id) {
            return Ok(m);
        }
    }
    Err(AdminError::MessageNotFound {
        id: id.to_string(),
        topic: topic.to_string(),
        note,
    })
}

/// `queryMsgById` output: Java's field list, then a body preview.
pub fn message_details(m: &StoredMessage) -> String {
    let field = |name: &str, value: &dyn std::fmt::Display| format!("{name:<20} {value}\n");
    let properties: Vec<String> = m
        .properties
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let mut text = String::new();
    text += &field("OffsetID:", &m.offset_msg_id());
    text += &field("MsgId:", &m.msg_id());
    text += &field("Topic:", &m.topic);
    text += &field("Tags:", &format!("[{}]", m.tags().unwrap_or("")));
    text += &field("Keys:", &format!("[{}]", m.keys().unwrap_or("")));
    text += &field("Queue ID:", &m.queue_id);
    text += &field("Queue Offset:", &m.queue_offset);
    text += &field("CommitLog Offset:", &m.commit_log_offset);
    text += &field("Reconsume Times:", &m.reconsume_times);
    text += &field("Born Timestamp:", &human_time_millis(m.born_timestamp));
    text += &field("Store Timestamp:", &human_time_millis(m.store_timestamp));
    text += &field("Born Host:", &m.born_host);
    text += &field("Store Host:", &m.store_host);
    text += &field("System Flag:", &m.sys_flag);
    text += &field("Properties:", &format!("{{{}}}", properties.join(", ")));
    text += &match m.readable_body() {
        ReadableBody::Bytes(body) => {
            let shown = &body[..body.len().min(BODY_PREVIEW_BYTES)];
            let mut preview = String::from_utf8_lossy(shown).into_owned();
            if body.len() > shown.len() {
                preview += &format!("... ({} bytes in all)", body.len());
            }
            field("Message Body:", &preview)
        }
        ReadableBody::Undecoded { compression } => field(
            "Message Body:",
            &format!(
                "({} bytes compressed with {compression}, not shown)",
                m.body.len()
            ),
        ),
    };
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocketmq_client::api::attributes_to_string;
    use rocketmq_common::admin::{OffsetWrapper, TopicOffset};
    use rocketmq_testkit::stored_record as record;

    fn mq(broker: &str, queue_id: i32, topic: &str) -> MessageQueue {
        MessageQueue {
            broker_name: broker.into(),
            queue_id,
            topic: topic.into(),
        }
    }

    #[test]
    fn topic_names_follow_java_rules() {
        assert!(validate_topic("Topic_1-a|%RETRY%x").is_ok());
        assert!(validate_topic("").is_err());
        assert!(validate_topic("has space").is_err());
        assert!(validate_topic("dot.ted").is_err());
        assert!(validate_topic(&"a".repeat(127)).is_ok());
        assert!(validate_topic(&"a".repeat(128)).is_err());
    }

    #[test]
    fn attributes_parse_like_java() {
        let a = parse_attributes("+message.type=FIFO,-old").unwrap();
        assert_eq!(a.get("+message.type").map(String::as_str), Some("FIFO"));
        assert_eq!(a.get("-old").map(String::as_str), Some(""));
        assert_eq!(attributes_to_string(&a), "+message.type=FIFO,-old");
        assert!(parse_attributes("").unwrap().is_empty());
        for bad in ["message.type=FIFO", "old", "+a=1,+a=2", "+=x", "-"] {
            assert!(parse_attributes(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn topic_config_display_matches_java_to_string() {
        let mut c = TopicConfig::new("T", 4);
        c.attributes.insert("+message.type".into(), "FIFO".into());
        assert_eq!(
            display_topic_config(&c),
            "TopicConfig [topicName=T, readQueueNums=4, writeQueueNums=4, perm=RW-, topicFilterType=SINGLE_TAG, topicSysFlag=0, order=false, attributes={+message.type=FIFO}]"
        );
    }

    #[test]
    fn topic_status_rows_sorted_like_java() {
        let mut stats = TopicStatsTable {
            topic_put_tps: 2.5,
            ..TopicStatsTable::default()
        };
        stats.offset_table.insert(
            mq("broker-b", 0, "T"),
            TopicOffset {
                last_update_timestamp: 1_700_000_000_123,
                max_offset: 9,
                min_offset: 1,
            },
        );
        stats
            .offset_table
            .insert(mq("broker-a", 1, "T"), TopicOffset::default());
        let text = topic_status_table(&stats);
        let lines: Vec<&str> = text.lines().collect();
        let header = lines[0];
        assert_eq!(
            header
                .split("  ")
                .filter(|c| !c.trim().is_empty())
                .map(str::trim)
                .collect::<Vec<_>>(),
            [
                "#Broker Name",
                "#QID",
                "#Min Offset",
                "#Max Offset",
                "#Last Updated"
            ]
        );
        // Values start under their headers (Java's fixed widths).
        let col = |name: &str| header.find(name).unwrap();
        for (line, qid, min, max) in [(lines[1], "1", "0", "0"), (lines[2], "0", "1", "9")] {
            assert_eq!(&line[col("#QID")..col("#QID") + 1], qid, "{text}");
            assert_eq!(
                &line[col("#Min Offset")..col("#Min Offset") + 1],
                min,
                "{text}"
            );
            assert_eq!(
                &line[col("#Max Offset")..col("#Max Offset") + 1],
                max,
                "{text}"
            );
        }
        assert!(lines[1].starts_with("broker-a "), "{text}");
        assert_eq!(
            lines[1].len(),
            col("#Last Updated"),
            "no time for an empty queue: {text}"
        );
        assert!(lines[2].starts_with("broker-b "), "{text}");
        assert_eq!(&lines[2][col("#Last Updated")..], "2023-11-14 22:13:20,123");
        assert_eq!(lines[4], "Topic Put TPS: 2.5");
    }

    #[test]
    fn consumer_progress_totals() {
        let mut stats = ConsumeStats {
            consume_tps: 1.0,
            ..ConsumeStats::default()
        };
        stats.offset_table.insert(
            mq("b", 0, "T"),
            OffsetWrapper {
                broker_offset: 100,
                consumer_offset: 40,
                last_timestamp: 0,
                pull_offset: 50,
            },
        );
        stats.offset_table.insert(
            mq("b", 1, "T"),
            OffsetWrapper {
                broker_offset: 10,
                consumer_offset: 10,
                last_timestamp: 1_700_000_000_123,
                pull_offset: 10,
            },
        );
        let text = consumer_progress_table(&stats);
        assert!(
            text.contains(
                "Consume TPS: 1.00\nConsume Diff Total: 60\nConsume Inflight Total: 10\n"
            ),
            "{text}"
        );
        let row0 = text.lines().nth(1).unwrap();
        let cols: Vec<&str> = row0.split_whitespace().collect();
        assert_eq!(cols, ["T", "b", "0", "100", "40", "60", "10", "N/A"]);
        let row1 = text.lines().nth(2).unwrap();
        assert!(row1.ends_with(" 2023-11-14 22:13:20"), "{row1}");
    }

    #[test]
    fn order_conf_merges_per_broker() {
        assert_eq!(merge_order_conf(None, "broker-b:2"), "broker-b:2");
        assert_eq!(merge_order_conf(Some(""), "broker-b:2"), "broker-b:2");
        assert_eq!(
            merge_order_conf(Some("broker-c:4;broker-b:8"), "broker-b:2"),
            "broker-b:2;broker-c:4"
        );
    }

    #[test]
    fn groups_come_from_retry_topics() {
        let topics: Vec<String> = [
            "%RETRY%G1",
            "%RETRY%G2+TopicA",
            "%RETRY%G2",
            "TopicA",
            "%DLQ%G3",
            "%RETRY%",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        assert_eq!(groups_from_topics(&topics), ["G1", "G2"]);
        let mut stats = ConsumeStats {
            consume_tps: 3.9,
            ..ConsumeStats::default()
        };
        stats.offset_table.insert(
            mq("b", 0, "T"),
            OffsetWrapper {
                broker_offset: 9,
                consumer_offset: 4,
                ..OffsetWrapper::default()
            },
        );
        let text = group_summary_table(&[("G1".into(), Some(stats)), ("G2".into(), None)]);
        let rows: Vec<Vec<&str>> = text
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        assert_eq!(rows[0], ["#Group", "#TPS", "#Diff", "Total"]);
        assert_eq!(rows[1], ["G1", "3", "5"]);
        assert_eq!(rows[2], ["G2", "N/A", "N/A"]);
    }

    #[test]
    fn message_details_show_fields_and_body() {
        let m = StoredMessage::decode(&record(
            "T",
            3,
            42,
            4096,
            &[("TAGS", "TagA"), ("KEYS", "k1"), ("UNIQ_KEY", "U1")],
            "héllo".as_bytes(),
        ))
        .unwrap();
        let text = message_details(&m);
        for expected in [
            "OffsetID:            7F00000100002A9F0000000000001000\n",
            "MsgId:               U1\n",
            "Tags:                [TagA]\n",
            "Keys:                [k1]\n",
            "Queue ID:            3\n",
            "Queue Offset:        42\n",
            "CommitLog Offset:    4096\n",
            "Store Timestamp:     2023-11-14 22:13:20,500\n",
            "Born Host:           10.0.0.9:50000\n",
            "Properties:          {TAGS=TagA, KEYS=k1, UNIQ_KEY=U1}\n",
            "Message Body:        héllo\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        let big = StoredMessage::decode(&record("T", 0, 0, 0, &[], &[b'x'; 600])).unwrap();
        assert!(message_details(&big).contains("... (600 bytes in all)"));
    }

    #[test]
    fn cluster_table_shows_runtime_figures_when_known() {
        let rows = vec![
            ClusterRow {
                cluster: "C".into(),
                broker_name: "broker-a".into(),
                broker_id: 0,
                addr: "10.0.0.1:10911".into(),
                runtime: BTreeMap::from([
                    ("brokerVersionDesc".to_string(), "V5_3_3".to_string()),
                    ("putTps".to_string(), "12.5 10.0 9.0".to_string()),
                    ("brokerRole".to_string(), "SYNC_MASTER".to_string()),
                    ("masterEpoch".to_string(), "3".to_string()),
                ]),
            },
            ClusterRow {
                cluster: "C".into(),
                broker_name: "broker-a".into(),
                broker_id: 1,
                addr: "10.0.0.2:10911".into(),
                runtime: BTreeMap::new(),
            },
        ];
        let text = cluster_table(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("#Cluster Name           #Broker Name            #BID  #Addr")
        );
        assert!(lines[0].contains("#InTPS(LOAD)  ") && lines[0].contains("#ACTIVATED  "));
        assert!(lines[0].ends_with("#ROLE         #EPOCH"));
        let cols: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            &cols[..6],
            [
                "C",
                "broker-a",
                "0",
                "10.0.0.1:10911",
                "V5_3_3",
                "12.50(,ms)"
            ]
        );
        assert_eq!(&cols[cols.len() - 3..], ["false", "SYNC_MASTER", "3"]);
        let cols: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(cols, ["C", "broker-a", "1", "10.0.0.2:10911"]);
    }
}
