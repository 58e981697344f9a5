//! Commands about brokers and the clients connected to them: `brokerStatus`,
//! `getBrokerConfig`, `updateBrokerConfig`, `consumerConnection`, `producerConnection` and
//! `resetOffsetByTime`. Output follows Java's formats line for line.

use std::collections::BTreeMap;
use std::io::Write;

use rocketmq_common::admin::ConsumerConnection;
use rocketmq_common::protocol::headers::broker::{
    ResetOffsetRequestHeader, UpdateConsumerOffsetRequestHeader,
};
use rocketmq_common::route::{ClusterInfo, MASTER_ID};

use super::cli::{
    BrokerTargetArgs, ConsumerConnectionArgs, GetBrokerConfigArgs, ProducerConnectionArgs,
    ResetOffsetByTimeArgs, UpdateBrokerConfigArgs,
};
use super::commands::retry_topic;
use super::error::AdminError;
use super::format::parse_time_arg;
use rocketmq_client::api::{MqClient, select_broker_addr};

/// Java's `MQVersion.getVersionDesc` for the ordinals clients send.
pub fn version_desc(ordinal: i32) -> String {
    const KNOWN: [(i32, &str); 6] = [
        (401, "V4_9_4"),
        (402, "V4_9_5"),
        (413, "V5_0_0"),
        (414, "V5_0_1"),
        (479, "V5_3_3"),
        (480, "V5_3_4"),
    ];
    KNOWN
        .iter()
        .find(|(o, _)| *o == ordinal)
        .map_or_else(|| format!("V{ordinal}"), |(_, n)| (*n).to_string())
}

/// Every broker of `cluster` as (broker name, id, address), masters first per group.
fn cluster_members(
    info: &ClusterInfo,
    cluster: &str,
) -> Result<Vec<(String, i64, String)>, AdminError> {
    let names = info
        .cluster_addr_table
        .get(cluster)
        .ok_or_else(|| AdminError::cluster_not_found(cluster.to_string()))?;
    let mut out = Vec::new();
    for name in names {
        if let Some(data) = info.broker_addr_table.get(name) {
            for (id, addr) in &data.broker_addrs {
                out.push((name.clone(), *id, addr.clone()));
            }
        }
    }
    Ok(out)
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `brokerStatus`: the runtime table, sorted by key.
pub async fn broker_status(
    client: &MqClient,
    a: &BrokerTargetArgs,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    if let Some(addr) = &a.broker_addr {
        let kv = client.broker_runtime_info(addr.trim()).await?;
        for (k, v) in &kv.table {
            writeln!(out, "{k:<32}: {v}")?;
        }
        return Ok(());
    }
    let cluster = a.cluster_name.as_deref().unwrap_or_default().trim();
    let info = client.cluster_info().await?;
    for (_, _, addr) in cluster_members(&info, cluster)? {
        match client.broker_runtime_info(&addr).await {
            Ok(kv) => {
                for (k, v) in &kv.table {
                    writeln!(out, "{addr:<24} {k:<32}: {v}")?;
                }
            }
            // One broker down does not hide the others; its failure is reported inline.
            Err(e) => writeln!(out, "{addr:<24} ERROR: {e}")?,
        }
    }
    Ok(())
}

fn write_config(out: &mut dyn Write, config: &[(String, String)]) -> Result<(), AdminError> {
    for (k, v) in config {
        writeln!(out, "{k:<50}=  {v}")?;
    }
    writeln!(out)?;
    Ok(())
}

/// `getBrokerConfig`: one broker, or each master of a cluster followed by its slaves.
pub async fn get_broker_config(
    client: &MqClient,
    a: &GetBrokerConfigArgs,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    if let Some(addr) = &a.broker_addr {
        let addr = addr.trim();
        let config = client.broker_config(addr).await?;
        writeln!(out, "============{addr}============")?;
        return write_config(out, &config);
    }
    let cluster = a.cluster_name.as_deref().unwrap_or_default().trim();
    let info = client.cluster_info().await?;
    let mut groups: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for (name, id, addr) in cluster_members(&info, cluster)? {
        groups.entry(name).or_default().push((id, addr));
    }
    for members in groups.values() {
        let master = members
            .iter()
            .find(|(id, _)| *id == MASTER_ID)
            .map_or("NO_MASTER".to_string(), |(_, addr)| addr.clone());
        writeln!(out, "============Master: {master}============")?;
        if master != "NO_MASTER" {
            write_config(out, &client.broker_config(&master).await?)?;
        }
        for (_, slave) in members.iter().filter(|(id, _)| *id != MASTER_ID) {
            writeln!(
                out,
                "============My Master: {master}=====Slave: {slave}============"
            )?;
            write_config(out, &client.broker_config(slave).await?)?;
        }
    }
    Ok(())
}

/// `updateBrokerConfig`: one key on one broker, or on a cluster's masters (and slaves with
/// `-a`). Stops at the first broker that refuses.
pub async fn update_broker_config(
    client: &MqClient,
    a: &UpdateBrokerConfigArgs,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let (key, value) = (a.key.trim(), a.value.trim());
    if key == "brokerPermission" && !value.parse::<i32>().is_ok_and(|p| (0..=7).contains(&p)) {
        return Err(AdminError::InvalidArgument {
            what: "brokerPermission",
            detail: format!("brokerPermission value: {value} is invalid."),
        });
    }
    let targets: Vec<String> = match (&a.broker_addr, &a.cluster_name) {
        (Some(addr), _) => vec![addr.trim().to_string()],
        (None, Some(cluster)) => {
            let info = client.cluster_info().await?;
            cluster_members(&info, cluster.trim())?
                .into_iter()
                .filter(|(_, id, _)| a.update_all_broker.is_some() || *id == MASTER_ID)
                .map(|(_, _, addr)| addr)
                .collect()
        }
        (None, None) => Vec::new(),
    };
    for addr in targets {
        client.update_broker_config(&addr, key, value).await?;
        writeln!(out, "update broker config success, {addr}")?;
    }
    Ok(())
}

/// The address to ask about a consumer group: `-b`, or a broker of its retry topic.
async fn group_broker(
    client: &MqClient,
    group: &str,
    addr: Option<&str>,
) -> Result<String, AdminError> {
    if let Some(addr) = addr {
        return Ok(addr.trim().to_string());
    }
    let route = client.topic_route(&retry_topic(group)).await?;
    route
        .broker_datas
        .iter()
        .find_map(select_broker_addr)
        .map(str::to_string)
        .ok_or_else(|| AdminError::topic_not_found(retry_topic(group)))
}

/// `consumerConnection` output.
pub fn consumer_connection_text(c: &ConsumerConnection) -> String {
    let mut text = format!(
        "{:<36} {:<22} {:<10} {}\n",
        "#ClientId", "#ClientAddr", "#Language", "#Version"
    );
    for conn in &c.connection_set {
        text += &format!(
            "{:<36} {:<22} {:<10} {}\n",
            conn.client_id,
            conn.client_addr,
            conn.language,
            version_desc(conn.version)
        );
    }
    text += &format!(
        "\nBelow is subscription:\n{:<20} {}\n",
        "#Topic", "#SubExpression"
    );
    for (topic, sub) in &c.subscription_table {
        text += &format!("{topic:<20} {}\n", sub.sub_string);
    }
    text += &format!(
        "\nConsumeType: {}\nMessageModel: {}\nConsumeFromWhere: {}\n",
        c.consume_type, c.message_model, c.consume_from_where
    );
    text
}

/// `consumerConnection`.
pub async fn consumer_connection(
    client: &MqClient,
    a: &ConsumerConnectionArgs,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let group = a.consumer_group.trim();
    let addr = group_broker(client, group, a.broker_addr.as_deref()).await?;
    let c = client.consumer_connection(&addr, group).await?;
    write!(out, "{}", consumer_connection_text(&c))?;
    Ok(())
}

/// `producerConnection`.
pub async fn producer_connection(
    client: &MqClient,
    a: &ProducerConnectionArgs,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let route = client.topic_route(a.topic.trim()).await?;
    let addr = route
        .broker_datas
        .iter()
        .find_map(select_broker_addr)
        .ok_or_else(|| AdminError::topic_not_found(a.topic.trim().to_string()))?;
    let p = client
        .producer_connection(addr, a.producer_group.trim())
        .await?;
    for (i, conn) in p.connection_set.iter().enumerate() {
        writeln!(
            out,
            "{:04}  {:<32} {:<22} {:<8} {}",
            i + 1,
            conn.client_id,
            conn.client_addr,
            conn.language,
            version_desc(conn.version)
        )?;
    }
    Ok(())
}

/// `resetOffsetByTime`: every broker of the topic resets the group's offsets server-side
/// (consumers move on their next pull); `-b` with `-q` resets one queue.
pub async fn reset_offset_by_time(
    client: &MqClient,
    a: &ResetOffsetByTimeArgs,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let (group, topic) = (a.group.trim(), a.topic.trim());
    let timestamp = parse_time_arg(&a.timestamp, now_millis()).map_err(|detail| {
        AdminError::InvalidArgument {
            what: "timestamp (-s)",
            detail,
        }
    })?;
    if let (Some(broker), Some(queue)) = (&a.broker, a.queue.filter(|q| *q >= 0)) {
        let addr = broker.trim();
        writeln!(
            out,
            "start reset consumer offset by specified, group[{group}], topic[{topic}], queueId[{queue}], broker[{addr}], timestamp(string)[{}], timestamp(long)[{timestamp}]",
            a.timestamp
        )?;
        let offset = match a.offset {
            Some(o) => o,
            None => client.search_offset(addr, topic, queue, timestamp).await?,
        };
        writeln!(out, "reset consumer offset to {offset}")?;
        client
            .update_consumer_offset(
                addr,
                &UpdateConsumerOffsetRequestHeader {
                    consumer_group: group.to_string(),
                    topic: topic.to_string(),
                    queue_id: queue,
                    commit_offset: offset,
                    ..Default::default()
                },
            )
            .await?;
        client
            .reset_offset(
                addr,
                &ResetOffsetRequestHeader {
                    topic: topic.to_string(),
                    group: group.to_string(),
                    timestamp: 0,
                    is_force: Some(false),
                    queue_id: Some(queue),
                    offset: Some(offset),
                },
            )
            .await?;
        return Ok(());
    }
    let route = client.topic_route(topic).await?;
    writeln!(
        out,
        "start reset consumer offset by specified, group[{group}], topic[{topic}], force[{}], timestamp(string)[{}], timestamp(long)[{timestamp}]",
        a.force.unwrap_or(true),
        a.timestamp
    )?;
    writeln!(
        out,
        "{:<40}  {:<40}  {:<40}",
        "#brokerName", "#queueId", "#offset"
    )?;
    let header = ResetOffsetRequestHeader {
        topic: topic.to_string(),
        group: group.to_string(),
        timestamp,
        is_force: Some(a.force.unwrap_or(true)),
        queue_id: Some(-1),
        offset: Some(-1),
    };
    for data in &route.broker_datas {
        let Some(addr) = select_broker_addr(data) else {
            continue;
        };
        let body = client.reset_offset(addr, &header).await?;
        for (mq, offset) in &body.offset_table {
            writeln!(
                out,
                "{:<40}  {:<40}  {:<40}",
                mq.broker_name, mq.queue_id, offset
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocketmq_common::admin::Connection;
    use rocketmq_common::body::SubscriptionData;

    #[test]
    fn consumer_connection_output() {
        let c = ConsumerConnection {
            connection_set: vec![Connection {
                client_addr: "10.0.0.9:50000".into(),
                client_id: "10.0.0.9@1".into(),
                language: "CPP".into(),
                version: 479,
            }],
            consume_from_where: "CONSUME_FROM_LAST_OFFSET".into(),
            consume_type: "CONSUME_PASSIVELY".into(),
            message_model: "CLUSTERING".into(),
            subscription_table: [(
                "T".to_string(),
                SubscriptionData {
                    topic: "T".into(),
                    sub_string: "A || B".into(),
                    ..SubscriptionData::default()
                },
            )]
            .into(),
        };
        let text = consumer_connection_text(&c);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("#ClientId"));
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["10.0.0.9@1", "10.0.0.9:50000", "CPP", "V5_3_3"]
        );
        assert!(text.contains("Below is subscription:"));
        assert!(text.contains("T                    A || B\n"));
        assert!(text.ends_with("ConsumeFromWhere: CONSUME_FROM_LAST_OFFSET\n"));
    }

    #[test]
    fn versions_by_ordinal() {
        assert_eq!(version_desc(401), "V4_9_4");
        assert_eq!(version_desc(479), "V5_3_3");
        assert_eq!(version_desc(7), "V7");
    }
}
