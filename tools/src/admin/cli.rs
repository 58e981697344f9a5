//! mqadmin's command line: RocketMQ's sub-command names and short flags
//! (`tools/command/**/*SubCommand.java`), parsed with clap.
//!
//! `-n` (name servers, `;`-separated) is accepted before or after the sub-command and
//! defaults to `NAMESRV_ADDR`, as in Java. Boolean options take a value (`-o true`) like
//! Java's, but anything other than `true`/`false` is rejected instead of read as false.

use clap::{ArgAction, ArgGroup, Args, Parser, Subcommand};

/// `mqadmin <command> [options]`.
#[derive(Debug, Parser)]
#[command(
    name = "mqadmin",
    version,
    about = "RocketMQ administration: topics, subscription groups, consumer progress, messages",
    propagate_version = true
)]
pub struct Cli {
    /// Name server address(es), `host:port;host:port`.
    #[arg(
        short = 'n',
        long = "namesrvAddr",
        env = "NAMESRV_ADDR",
        global = true,
        value_name = "ADDRS"
    )]
    pub namesrv_addr: Option<String>,
    /// Per-request timeout in milliseconds.
    #[arg(
        long = "timeoutMillis",
        global = true,
        default_value_t = 5000,
        value_name = "MS",
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub timeout_millis: u64,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Update or create a topic on one broker (-b) or on every master of a cluster (-c).
    #[command(name = "updateTopic")]
    UpdateTopic(UpdateTopicArgs),
    /// Delete a topic from every master of a cluster and from the name servers.
    #[command(name = "deleteTopic")]
    DeleteTopic(DeleteTopicArgs),
    /// List all topics the name server knows.
    #[command(name = "topicList")]
    TopicList,
    /// Show a topic's route (brokers and queues).
    #[command(name = "topicRoute")]
    TopicRoute(TopicRouteArgs),
    /// Show every queue's min/max offset and last update time.
    #[command(name = "topicStatus")]
    TopicStatus(TopicStatusArgs),
    /// List clusters, broker groups and their members.
    #[command(name = "clusterList")]
    ClusterList(ClusterListArgs),
    /// Update or create a subscription (consumer) group.
    #[command(name = "updateSubGroup")]
    UpdateSubGroup(UpdateSubGroupArgs),
    /// Delete a subscription group (and, with -c, its retry and dead-letter topics).
    #[command(name = "deleteSubGroup")]
    DeleteSubGroup(DeleteSubGroupArgs),
    /// Show a consumer group's per-queue progress and lag.
    #[command(name = "consumerProgress")]
    ConsumerProgress(ConsumerProgressArgs),
    /// Find messages by business key.
    #[command(name = "queryMsgByKey")]
    QueryMsgByKey(QueryMsgByKeyArgs),
    /// Show a message by its id (offset message id or the producer's unique id).
    #[command(name = "queryMsgById")]
    QueryMsgById(QueryMsgByIdArgs),
}

impl Command {
    /// RocketMQ's name of the command, for error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Command::UpdateTopic(_) => "updateTopic",
            Command::DeleteTopic(_) => "deleteTopic",
            Command::TopicList => "topicList",
            Command::TopicRoute(_) => "topicRoute",
            Command::TopicStatus(_) => "topicStatus",
            Command::ClusterList(_) => "clusterList",
            Command::UpdateSubGroup(_) => "updateSubGroup",
            Command::DeleteSubGroup(_) => "deleteSubGroup",
            Command::ConsumerProgress(_) => "consumerProgress",
            Command::QueryMsgByKey(_) => "queryMsgByKey",
            Command::QueryMsgById(_) => "queryMsgById",
        }
    }
}

/// Java's `Boolean.parseBoolean` accepts anything; a typo there silently means `false`, so
/// only `true`/`false` (any case) are accepted.
fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        other => Err(format!("expected true or false, got {other:?}")),
    }
}

/// `updateTopic` options (`UpdateTopicSubCommand`).
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["broker_addr", "cluster_name"])))]
pub struct UpdateTopicArgs {
    /// Create the topic on this broker (`ip:port`).
    #[arg(short = 'b', long = "brokerAddr")]
    pub broker_addr: Option<String>,
    /// Create the topic on every master of this cluster.
    #[arg(short = 'c', long = "clusterName")]
    pub cluster_name: Option<String>,
    /// Topic name.
    #[arg(short = 't', long = "topic")]
    pub topic: String,
    /// Read queues.
    #[arg(short = 'r', long = "readQueueNums", default_value_t = 8)]
    pub read_queue_nums: i32,
    /// Write queues.
    #[arg(short = 'w', long = "writeQueueNums", default_value_t = 8)]
    pub write_queue_nums: i32,
    /// Permission: 2 write, 4 read, 6 read-write.
    #[arg(short = 'p', long = "perm", default_value_t = 6)]
    pub perm: i32,
    /// Ordered (FIFO) topic: also records the queue layout on the name servers.
    #[arg(short = 'o', long = "order", value_parser = parse_bool, default_value = "false", action = ArgAction::Set)]
    pub order: bool,
    /// Unit topic.
    #[arg(short = 'u', long = "unit", value_parser = parse_bool, default_value = "false", action = ArgAction::Set)]
    pub unit: bool,
    /// Has unit subscriptions.
    #[arg(short = 's', long = "hasUnitSub", value_parser = parse_bool, default_value = "false", action = ArgAction::Set)]
    pub has_unit_sub: bool,
    /// Attribute changes, `+key=value,+key2=value2,-key3` (e.g. `+message.type=FIFO`).
    #[arg(short = 'a', long = "attributes")]
    pub attributes: Option<String>,
}

/// `deleteTopic` options (`DeleteTopicSubCommand`).
#[derive(Debug, Args)]
pub struct DeleteTopicArgs {
    /// Topic name.
    #[arg(short = 't', long = "topic")]
    pub topic: String,
    /// Cluster to delete it from.
    #[arg(short = 'c', long = "clusterName")]
    pub cluster_name: String,
}

/// `topicRoute` options (`TopicRouteSubCommand`).
#[derive(Debug, Args)]
pub struct TopicRouteArgs {
    /// Topic name.
    #[arg(short = 't', long = "topic")]
    pub topic: String,
    /// Print a table instead of JSON.
    #[arg(short = 'l', long = "list")]
    pub list: bool,
}

/// `topicStatus` options (`TopicStatusSubCommand`).
#[derive(Debug, Args)]
pub struct TopicStatusArgs {
    /// Topic name.
    #[arg(short = 't', long = "topic")]
    pub topic: String,
    /// Only ask the brokers of this cluster.
    #[arg(short = 'c', long = "cluster")]
    pub cluster: Option<String>,
}

/// `clusterList` options (`ClusterListSubCommand`).
#[derive(Debug, Args)]
pub struct ClusterListArgs {
    /// Only this cluster.
    #[arg(short = 'c', long = "clusterName")]
    pub cluster_name: Option<String>,
}

/// `updateSubGroup` options (`UpdateSubGroupSubCommand`).
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["broker_addr", "cluster_name"])))]
pub struct UpdateSubGroupArgs {
    /// Create the group on this broker (`ip:port`).
    #[arg(short = 'b', long = "brokerAddr")]
    pub broker_addr: Option<String>,
    /// Create the group on every master of this cluster.
    #[arg(short = 'c', long = "clusterName")]
    pub cluster_name: Option<String>,
    /// Group name.
    #[arg(short = 'g', long = "groupName")]
    pub group_name: String,
    /// Whether the group may consume.
    #[arg(short = 's', long = "consumeEnable", value_parser = parse_bool)]
    pub consume_enable: Option<bool>,
    /// Whether a new group starts from the queue minimum.
    #[arg(short = 'm', long = "consumeFromMinEnable", value_parser = parse_bool)]
    pub consume_from_min_enable: Option<bool>,
    /// Whether broadcast consumption is allowed.
    #[arg(short = 'd', long = "consumeBroadcastEnable", value_parser = parse_bool)]
    pub consume_broadcast_enable: Option<bool>,
    /// Orderly consumption.
    #[arg(short = 'o', long = "consumeMessageOrderly", value_parser = parse_bool)]
    pub consume_message_orderly: Option<bool>,
    /// Queues of the group's retry topic.
    #[arg(short = 'q', long = "retryQueueNums")]
    pub retry_queue_nums: Option<i32>,
    /// Redeliveries before the dead-letter queue.
    #[arg(short = 'r', long = "retryMaxTimes")]
    pub retry_max_times: Option<i32>,
    /// Retry policy JSON, e.g. `{"type":"CUSTOMIZED","customizedRetryPolicy":{"next":[1000,5000]}}`.
    #[arg(short = 'p', long = "groupRetryPolicy")]
    pub group_retry_policy: Option<String>,
    /// Broker id to consume from.
    #[arg(short = 'i', long = "brokerId")]
    pub broker_id: Option<i64>,
    /// Broker id to consume from when consumption is slow.
    #[arg(short = 'w', long = "whichBrokerWhenConsumeSlowly")]
    pub which_broker_when_consume_slowly: Option<i64>,
    /// Notify consumers when the group's membership changes.
    #[arg(short = 'a', long = "notifyConsumerIdsChanged", value_parser = parse_bool)]
    pub notify_consumer_ids_changed: Option<bool>,
    /// Attribute changes, `+key=value,-key2`.
    #[arg(long = "attributes")]
    pub attributes: Option<String>,
}

/// `deleteSubGroup` options (`DeleteSubscriptionGroupCommand`).
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["broker_addr", "cluster_name"])))]
pub struct DeleteSubGroupArgs {
    /// Delete the group from this broker (`ip:port`).
    #[arg(short = 'b', long = "brokerAddr")]
    pub broker_addr: Option<String>,
    /// Delete the group from every master of this cluster, then its retry and DLQ topics.
    #[arg(short = 'c', long = "clusterName")]
    pub cluster_name: Option<String>,
    /// Group name.
    #[arg(short = 'g', long = "groupName")]
    pub group_name: String,
    /// Also remove the group's committed offsets.
    #[arg(short = 'r', long = "removeOffset", value_parser = parse_bool, default_value = "false", action = ArgAction::Set)]
    pub remove_offset: bool,
}

/// `consumerProgress` options (`ConsumerProgressSubCommand`).
#[derive(Debug, Args)]
pub struct ConsumerProgressArgs {
    /// Consumer group; without it, one summary line per group found on the name server.
    #[arg(short = 'g', long = "groupName")]
    pub group_name: Option<String>,
    /// Only this topic (with -g).
    #[arg(short = 't', long = "topicName")]
    pub topic_name: Option<String>,
}

/// `queryMsgByKey` options (`QueryMsgByKeySubCommand`).
#[derive(Debug, Args)]
pub struct QueryMsgByKeyArgs {
    /// Topic name.
    #[arg(short = 't', long = "topic")]
    pub topic: String,
    /// Message key.
    #[arg(short = 'k', long = "msgKey")]
    pub msg_key: String,
    /// Earliest store time (ms).
    #[arg(short = 'b', long = "beginTimestamp", default_value_t = 0)]
    pub begin_timestamp: i64,
    /// Latest store time (ms).
    #[arg(short = 'e', long = "endTimestamp", default_value_t = i64::MAX)]
    pub end_timestamp: i64,
    /// Most messages each broker returns.
    #[arg(short = 'm', long = "maxNum", default_value_t = 64)]
    pub max_num: i32,
    /// Only ask the brokers of this cluster.
    #[arg(short = 'c', long = "cluster")]
    pub cluster: Option<String>,
}

/// `queryMsgById` options (`QueryMsgByIdSubCommand`).
#[derive(Debug, Args)]
pub struct QueryMsgByIdArgs {
    /// Topic name.
    #[arg(short = 't', long = "topic")]
    pub topic: String,
    /// Message id(s), comma-separated: offset ids or producer unique ids.
    #[arg(short = 'i', long = "msgId")]
    pub msg_id: String,
    /// Only ask the brokers of this cluster (unique-id lookups).
    #[arg(short = 'c', long = "cluster")]
    pub cluster: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("mqadmin").chain(args.iter().copied()))
    }

    #[test]
    fn update_topic_flags_and_defaults() {
        let cli = parse(&[
            "updateTopic",
            "-n",
            "127.0.0.1:9876;127.0.0.2:9876",
            "-c",
            "DefaultCluster",
            "-t",
            "T",
            "-w",
            "4",
            "-o",
            "TRUE",
            "-a",
            "+message.type=FIFO",
        ])
        .unwrap();
        assert_eq!(
            cli.namesrv_addr.as_deref(),
            Some("127.0.0.1:9876;127.0.0.2:9876")
        );
        let Command::UpdateTopic(a) = cli.command else {
            panic!("wrong command: {:?}", cli.command)
        };
        assert_eq!(a.cluster_name.as_deref(), Some("DefaultCluster"));
        assert_eq!((a.read_queue_nums, a.write_queue_nums, a.perm), (8, 4, 6));
        assert!(a.order && !a.unit);
        assert_eq!(a.attributes.as_deref(), Some("+message.type=FIFO"));
    }

    #[test]
    fn namesrv_before_the_command_works_too() {
        let cli = parse(&["-n", "h:1", "topicList"]).unwrap();
        assert_eq!(cli.namesrv_addr.as_deref(), Some("h:1"));
        assert!(matches!(cli.command, Command::TopicList));
        assert_eq!(cli.timeout_millis, 5000);
    }

    #[test]
    fn missing_and_conflicting_flags_are_rejected() {
        // updateTopic needs -t and exactly one of -b / -c.
        let e = parse(&["updateTopic", "-c", "C"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        assert!(e.to_string().contains("--topic"), "{e}");
        let e = parse(&["updateTopic", "-t", "T"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        let e = parse(&["updateTopic", "-t", "T", "-b", "a:1", "-c", "C"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ArgumentConflict);
        // deleteTopic needs -c, as in Java.
        let e = parse(&["deleteTopic", "-t", "T"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::MissingRequiredArgument);
        // Booleans must be true/false; numbers must be numbers.
        let e = parse(&["updateTopic", "-t", "T", "-c", "C", "-o", "yes"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        let e = parse(&["updateTopic", "-t", "T", "-c", "C", "-r", "many"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        let e = parse(&["topicList", "--timeoutMillis", "0"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ValueValidation);
        let e = parse(&["noSuchCommand"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidSubcommand);
    }

    #[test]
    fn query_and_group_commands() {
        let cli = parse(&["queryMsgByKey", "-t", "T", "-k", "order-1", "-m", "10"]).unwrap();
        let Command::QueryMsgByKey(a) = cli.command else {
            panic!()
        };
        assert_eq!(
            (a.max_num, a.begin_timestamp, a.end_timestamp),
            (10, 0, i64::MAX)
        );
        let cli = parse(&["queryMsgById", "-t", "T", "-i", "A,B"]).unwrap();
        assert_eq!(cli.command.name(), "queryMsgById");
        let cli = parse(&[
            "updateSubGroup",
            "-b",
            "1.2.3.4:10911",
            "-g",
            "G",
            "-r",
            "3",
            "-s",
            "false",
            "--attributes",
            "+x=1",
        ])
        .unwrap();
        let Command::UpdateSubGroup(a) = cli.command else {
            panic!()
        };
        assert_eq!(
            (
                a.retry_max_times,
                a.consume_enable,
                a.consume_message_orderly
            ),
            (Some(3), Some(false), None)
        );
        let cli = parse(&["consumerProgress", "-g", "G", "-t", "T"]).unwrap();
        assert_eq!(cli.command.name(), "consumerProgress");
        let cli = parse(&["consumerProgress"]).unwrap();
        let Command::ConsumerProgress(a) = cli.command else {
            panic!()
        };
        assert!(a.group_name.is_none() && a.topic_name.is_none());
    }
}
