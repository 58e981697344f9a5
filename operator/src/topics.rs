//! Scale-out: a broker group that gets its first master is given the topics the cluster's
//! other groups have, so producers and consumers use the new group at once instead of only
//! for topics created after it joined.

use rocketmq_client::{ClientError, MqClient};
use rocketmq_common::route::{TopicConfig, TopicConfigSerializeWrapper};
use rocketmq_common::topic::is_system_topic;

/// The topics of `source` that `target` lacks, leaving out system topics, per-group retry and
/// dead-letter topics (brokers create those on demand) and the topics a broker creates under
/// its cluster's and its own name.
pub fn topics_to_copy(
    source: &TopicConfigSerializeWrapper,
    target: &TopicConfigSerializeWrapper,
    skip_names: &[&str],
) -> Vec<TopicConfig> {
    source
        .topic_config_table
        .iter()
        .filter(|(name, _)| {
            !is_system_topic(name)
                && !name.starts_with("%RETRY%")
                && !name.starts_with("%DLQ%")
                && !skip_names.contains(&name.as_str())
                && !target.topic_config_table.contains_key(*name)
        })
        .map(|(name, config)| TopicConfig {
            topic_name: name.clone(),
            ..config.clone()
        })
        .collect()
}

/// Creates on the master at `target` the topics the master at `source` has and it lacks;
/// returns their names.
pub async fn copy_topics(
    client: &MqClient,
    source: &str,
    target: &str,
    skip_names: &[&str],
) -> Result<Vec<String>, ClientError> {
    let from = client.topic_configs(source).await?;
    let to = client.topic_configs(target).await?;
    let mut created = Vec::new();
    for config in topics_to_copy(&from, &to, skip_names) {
        client.create_topic(target, &config).await?;
        created.push(config.topic_name);
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(names: &[&str]) -> TopicConfigSerializeWrapper {
        let mut wrapper = TopicConfigSerializeWrapper::default();
        for name in names {
            wrapper
                .topic_config_table
                .insert(name.to_string(), TopicConfig::new(*name, 8));
        }
        wrapper
    }

    #[test]
    fn only_user_topics_the_target_lacks_are_copied_with_their_settings() {
        let mut source = table(&[
            "Orders",
            "Payments",
            "TBW102",
            "%RETRY%g",
            "%DLQ%g",
            "rmq_sys_wheel",
            "demo",
            "demo-broker-0",
        ]);
        source.topic_config_table.get_mut("Orders").unwrap().order = true;
        let target = table(&["Payments"]);
        let copied = topics_to_copy(&source, &target, &["demo", "demo-broker-0"]);
        let names: Vec<&str> = copied.iter().map(|c| c.topic_name.as_str()).collect();
        assert_eq!(names, ["Orders"]);
        assert!(copied[0].order);
        assert_eq!(copied[0].write_queue_nums, 8);
    }
}
