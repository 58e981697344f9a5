//! Topic and group naming rules shared by broker and proxy (`TopicValidator.java`).

/// Template topic for auto-creation.
pub const AUTO_CREATE_TOPIC_KEY_TOPIC: &str = "TBW102";
/// Topic holding delayed messages until due.
pub const SCHEDULE_TOPIC: &str = "SCHEDULE_TOPIC_XXXX";
/// Self-test topic every broker carries.
pub const SELF_TEST_TOPIC: &str = "SELF_TEST_TOPIC";
/// Prefix of a consumer group's retry topic.
pub const RETRY_GROUP_TOPIC_PREFIX: &str = "%RETRY%";
/// Prefix of a consumer group's dead-letter topic.
pub const DLQ_GROUP_TOPIC_PREFIX: &str = "%DLQ%";
/// Transactional half messages wait here until committed or rolled back.
pub const TRANS_HALF_TOPIC: &str = "RMQ_SYS_TRANS_HALF_TOPIC";
/// Commit/rollback records ("op" messages) of half messages.
pub const TRANS_OP_HALF_TOPIC: &str = "RMQ_SYS_TRANS_OP_HALF_TOPIC";
/// Half messages given up after too many checks.
pub const TRANS_CHECK_MAX_TIME_TOPIC: &str = "TRANS_CHECK_MAX_TIME_TOPIC";
/// Timer messages wait here until their delivery time.
pub const TIMER_TOPIC: &str = "rmq_sys_wheel_timer";
/// Longest topic name Java accepts.
pub const TOPIC_MAX_LENGTH: usize = 127;

/// Topics producers may never send to directly.
const NOT_ALLOWED_SEND_TOPICS: &[&str] = &[
    SCHEDULE_TOPIC,
    TRANS_HALF_TOPIC,
    TRANS_OP_HALF_TOPIC,
    TRANS_CHECK_MAX_TIME_TOPIC,
    TIMER_TOPIC,
];

/// Topics the broker owns (`TopicValidator.SYSTEM_TOPIC_SET`); admin requests may not create
/// or change them.
const SYSTEM_TOPICS: &[&str] = &[
    AUTO_CREATE_TOPIC_KEY_TOPIC,
    SCHEDULE_TOPIC,
    "BenchmarkTest",
    TRANS_HALF_TOPIC,
    TRANS_OP_HALF_TOPIC,
    TRANS_CHECK_MAX_TIME_TOPIC,
    "RMQ_SYS_TRACE_TOPIC",
    SELF_TEST_TOPIC,
    "OFFSET_MOVED_EVENT",
];

/// Checks a topic name: non-empty, at most 127 chars of `[%|a-zA-Z0-9_-]`.
pub fn validate_topic(topic: &str) -> Result<(), String> {
    if topic.trim().is_empty() {
        return Err("The specified topic is blank.".into());
    }
    if topic.len() > TOPIC_MAX_LENGTH {
        return Err(format!(
            "The specified topic is longer than topic max length {TOPIC_MAX_LENGTH}."
        ));
    }
    if let Some(bad) = topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '%' | '|' | '_' | '-')))
    {
        return Err(format!(
            "The specified topic[{topic}] contains illegal characters ({bad:?}), allowing only ^[%|a-zA-Z0-9_-]+$"
        ));
    }
    Ok(())
}

/// Whether producers may not send to `topic`.
pub fn is_not_allowed_send_topic(topic: &str) -> bool {
    NOT_ALLOWED_SEND_TOPICS.contains(&topic)
}

/// Whether `topic` belongs to the broker itself: the well-known system topics and anything
/// under the `rmq_sys_` / `RMQ_SYS_` prefixes.
pub fn is_system_topic(topic: &str) -> bool {
    SYSTEM_TOPICS.contains(&topic) || topic.starts_with("rmq_sys_") || topic.starts_with("RMQ_SYS_")
}

/// The retry topic of a consumer group.
pub fn retry_topic(group: &str) -> String {
    format!("{RETRY_GROUP_TOPIC_PREFIX}{group}")
}

/// The dead-letter topic of a consumer group.
pub fn dlq_topic(group: &str) -> String {
    format!("{DLQ_GROUP_TOPIC_PREFIX}{group}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_rules() {
        assert!(validate_topic("TopicTest").is_ok());
        assert!(validate_topic("%RETRY%group-1").is_ok());
        assert!(validate_topic("").is_err());
        assert!(validate_topic("a b").unwrap_err().contains("illegal"));
        assert!(validate_topic(&"x".repeat(128)).is_err());
        assert!(validate_topic(&"x".repeat(127)).is_ok());
        assert!(is_not_allowed_send_topic(SCHEDULE_TOPIC));
        assert!(!is_not_allowed_send_topic("TopicTest"));
        assert!(is_not_allowed_send_topic(TRANS_HALF_TOPIC));
        assert!(is_not_allowed_send_topic(TIMER_TOPIC));
        for system in [
            "TBW102",
            SCHEDULE_TOPIC,
            TRANS_HALF_TOPIC,
            TRANS_CHECK_MAX_TIME_TOPIC,
            "RMQ_SYS_ANYTHING",
            "rmq_sys_REVIVE_LOG_DefaultCluster",
        ] {
            assert!(is_system_topic(system), "{system}");
        }
        assert!(!is_system_topic("TopicTest"));
        assert!(!is_system_topic("%RETRY%G"));
        assert_eq!(retry_topic("G"), "%RETRY%G");
        assert_eq!(dlq_topic("G"), "%DLQ%G");
    }
}
