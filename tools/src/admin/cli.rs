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
    /// Print a broker's runtime figures (-b) or those of every broker of a cluster (-c).
    #[command(name = "brokerStatus")]
    BrokerStatus(BrokerTargetArgs),
    /// Print the settings a broker (-b) or every broker of a cluster (-c) runs with.
    #[command(name = "getBrokerConfig")]
    GetBrokerConfig(GetBrokerConfigArgs),
    /// Change a broker setting at runtime on one broker (-b) or a cluster's masters (-c).
    #[command(name = "updateBrokerConfig")]
    UpdateBrokerConfig(UpdateBrokerConfigArgs),
    /// Show a consumer group's connections, client versions and subscriptions.
    #[command(name = "consumerConnection")]
    ConsumerConnection(ConsumerConnectionArgs),
    /// Show a producer group's connections and client versions.
    #[command(name = "producerConnection")]
    ProducerConnection(ProducerConnectionArgs),
    /// Reset a consumer group's offsets to a point in time, without restarting clients.
    #[command(name = "resetOffsetByTime")]
    ResetOffsetByTime(ResetOffsetByTimeArgs),
    /// Show the message at a queue offset.
    #[command(name = "queryMsgByOffset")]
    QueryMsgByOffset(QueryMsgByOffsetArgs),
    /// Print every message of a topic (optionally within a time range).
    #[command(name = "printMsg")]
    PrintMsg(PrintMsgArgs),
    /// Send one message.
    #[command(name = "sendMessage")]
    SendMessage(SendMessageArgs),
    /// Pull messages of a topic and print them (without committing offsets).
    #[command(name = "consumeMessage")]
    ConsumeMessage(ConsumeMessageArgs),
    /// Get controller cluster's metadata.
    #[command(name = "getControllerMetaData")]
    GetControllerMetaData(ControllerAddrArgs),
    /// Fetch syncStateSet for target brokers.
    #[command(name = "getSyncStateSet")]
    GetSyncStateSet(GetSyncStateSetArgs),
    /// Fetch broker epoch entries.
    #[command(name = "getBrokerEpoch")]
    GetBrokerEpoch(GetBrokerEpochArgs),
    /// Re-elect the specified broker as master.
    #[command(name = "electMaster")]
    ElectMaster(ElectMasterArgs),
    /// Get controller config.
    #[command(name = "getControllerConfig")]
    GetControllerConfig(ControllerAddrArgs),
    /// Update controller config.
    #[command(name = "updateControllerConfig")]
    UpdateControllerConfig(UpdateControllerConfigArgs),
    /// Clean metadata of broker on controller.
    #[command(name = "cleanBrokerMetadata")]
    CleanBrokerMetadata(CleanBrokerMetadataArgs),
    /// Probe a server's `/healthz` over HTTP (the container image's HEALTHCHECK); needs no
    /// name server. Not one of Java's commands.
    #[command(name = "healthCheck")]
    HealthCheck(HealthCheckArgs),
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
            Command::BrokerStatus(_) => "brokerStatus",
            Command::GetBrokerConfig(_) => "getBrokerConfig",
            Command::UpdateBrokerConfig(_) => "updateBrokerConfig",
            Command::ConsumerConnection(_) => "consumerConnection",
            Command::ProducerConnection(_) => "producerConnection",
            Command::ResetOffsetByTime(_) => "resetOffsetByTime",
            Command::QueryMsgByOffset(_) => "queryMsgByOffset",
            Command::PrintMsg(_) => "printMsg",
            Command::SendMessage(_) => "sendMessage",
            Command::ConsumeMessage(_) => "consumeMessage",
            Command::GetControllerMetaData(_) => "getControllerMetaData",
            Command::GetSyncStateSet(_) => "getSyncStateSet",
            Command::GetBrokerEpoch(_) => "getBrokerEpoch",
            Command::ElectMaster(_) => "electMaster",
            Command::GetControllerConfig(_) => "getControllerConfig",
            Command::UpdateControllerConfig(_) => "updateControllerConfig",
            Command::CleanBrokerMetadata(_) => "cleanBrokerMetadata",
            Command::HealthCheck(_) => "healthCheck",
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

/// One broker (`-b`) or every broker of a cluster (`-c`), exactly one of them.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["broker_addr", "cluster_name"])))]
pub struct BrokerTargetArgs {
    /// Broker address (`ip:port`).
    #[arg(short = 'b', long = "brokerAddr")]
    pub broker_addr: Option<String>,
    /// Cluster name (masters and slaves).
    #[arg(short = 'c', long = "clusterName")]
    pub cluster_name: Option<String>,
}

/// `getBrokerConfig` options (`GetBrokerConfigCommand`).
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["broker_addr", "cluster_name"])))]
pub struct GetBrokerConfigArgs {
    /// Broker address (`ip:port`).
    #[arg(short = 'b', long = "brokerAddr")]
    pub broker_addr: Option<String>,
    /// Cluster name (each master, then its slaves).
    #[arg(short = 'c', long = "clusterName")]
    pub cluster_name: Option<String>,
}

/// `updateBrokerConfig` options (`UpdateBrokerConfigSubCommand`).
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["broker_addr", "cluster_name"])))]
pub struct UpdateBrokerConfigArgs {
    /// Broker address (`ip:port`).
    #[arg(short = 'b', long = "brokerAddr")]
    pub broker_addr: Option<String>,
    /// Cluster name (its masters; with -a also its slaves).
    #[arg(short = 'c', long = "clusterName")]
    pub cluster_name: Option<String>,
    /// With -c: update slaves too (the value is ignored, as in Java).
    #[arg(short = 'a', long = "updateAllBroker")]
    pub update_all_broker: Option<String>,
    /// The key.
    #[arg(short = 'k', long = "key")]
    pub key: String,
    /// The value.
    #[arg(short = 'v', long = "value")]
    pub value: String,
}

/// `consumerConnection` options (`ConsumerConnectionSubCommand`).
#[derive(Debug, Args)]
pub struct ConsumerConnectionArgs {
    /// Consumer group.
    #[arg(short = 'g', long = "consumerGroup")]
    pub consumer_group: String,
    /// Ask this broker (default: a broker of the group's retry topic).
    #[arg(short = 'b', long = "brokerAddr")]
    pub broker_addr: Option<String>,
}

/// `producerConnection` options (`ProducerConnectionSubCommand`).
#[derive(Debug, Args)]
pub struct ProducerConnectionArgs {
    /// Producer group.
    #[arg(short = 'g', long = "producerGroup")]
    pub producer_group: String,
    /// A topic the group produces to (picks the broker to ask).
    #[arg(short = 't', long = "topic")]
    pub topic: String,
}

/// `resetOffsetByTime` options (`ResetOffsetByTimeCommand`).
#[derive(Debug, Args)]
pub struct ResetOffsetByTimeArgs {
    /// Consumer group.
    #[arg(short = 'g', long = "group")]
    pub group: String,
    /// Topic.
    #[arg(short = 't', long = "topic")]
    pub topic: String,
    /// `now`, milliseconds since the epoch, or `yyyy-MM-dd#HH:mm:ss:SSS` (UTC).
    #[arg(short = 's', long = "timestamp")]
    pub timestamp: String,
    /// Deprecated; offsets are always reset (accepted for compatibility).
    #[arg(short = 'f', long = "force", value_parser = parse_bool)]
    pub force: Option<bool>,
    /// Only this broker (`ip:port`), with -q.
    #[arg(short = 'b', long = "broker")]
    pub broker: Option<String>,
    /// Only this queue, with -b.
    #[arg(short = 'q', long = "queue")]
    pub queue: Option<i32>,
    /// With -b and -q: this offset instead of one found by time.
    #[arg(short = 'o', long = "offset")]
    pub offset: Option<i64>,
    /// Accepted for compatibility (Java uses it only for LMQ and timer topics).
    #[arg(short = 'c', long = "cluster")]
    pub cluster: Option<String>,
}

/// `queryMsgByOffset` options (`QueryMsgByOffsetSubCommand`).
#[derive(Debug, Args)]
pub struct QueryMsgByOffsetArgs {
    /// Topic.
    #[arg(short = 't', long = "topic")]
    pub topic: String,
    /// Broker group name.
    #[arg(short = 'b', long = "brokerName")]
    pub broker_name: String,
    /// Queue id.
    #[arg(short = 'i', long = "queueId")]
    pub queue_id: i32,
    /// Queue offset.
    #[arg(short = 'o', long = "offset")]
    pub offset: i64,
    /// Print the body decoded with this charset (only UTF-8 is supported).
    #[arg(short = 'f', long = "bodyFormat")]
    pub body_format: Option<String>,
}

/// `printMsg` options (`PrintMessageSubCommand`).
#[derive(Debug, Args)]
pub struct PrintMsgArgs {
    /// Topic.
    #[arg(short = 't', long = "topic")]
    pub topic: String,
    /// Body charset (only UTF-8 is supported).
    #[arg(short = 'c', long = "charsetName", default_value = "UTF-8")]
    pub charset: String,
    /// TAG subscription expression.
    #[arg(short = 's', long = "subExpression", default_value = "*")]
    pub sub_expression: String,
    /// Begin time (ms or `yyyy-MM-dd#HH:mm:ss:SSS`, UTC).
    #[arg(short = 'b', long = "beginTimestamp")]
    pub begin: Option<String>,
    /// End time (ms or `yyyy-MM-dd#HH:mm:ss:SSS`, UTC).
    #[arg(short = 'e', long = "endTimestamp")]
    pub end: Option<String>,
    /// Print bodies (true/false).
    #[arg(short = 'd', long = "printBody", value_parser = parse_bool, default_value = "true")]
    pub print_body: bool,
}

/// `sendMessage` options (`SendMessageCommand`).
#[derive(Debug, Args)]
pub struct SendMessageArgs {
    /// Topic.
    #[arg(short = 't', long = "topic")]
    pub topic: String,
    /// Body (UTF-8).
    #[arg(short = 'p', long = "body")]
    pub body: String,
    /// Keys.
    #[arg(short = 'k', long = "key")]
    pub key: Option<String>,
    /// Tag.
    #[arg(short = 'c', long = "tags")]
    pub tags: Option<String>,
    /// Broker group to send to.
    #[arg(short = 'b', long = "broker")]
    pub broker: Option<String>,
    /// Queue to send to (needs -b or -a).
    #[arg(short = 'i', long = "qid")]
    pub qid: Option<i32>,
    /// Send straight to this broker address (`host:port`), without asking the name servers
    /// for a route: reaches a broker the name servers cannot (not one of Java's options).
    /// Needs -i; the broker's queue count is not known without a route.
    #[arg(short = 'a', long = "brokerAddr", requires = "qid")]
    pub broker_addr: Option<String>,
    /// Accepted for compatibility; tracing is not recorded.
    #[arg(short = 'm', long = "msgTraceEnable", value_parser = parse_bool)]
    pub msg_trace_enable: Option<bool>,
}

/// `healthCheck` options.
#[derive(Debug, Args)]
pub struct HealthCheckArgs {
    /// URL to probe: `http://host:port/path`. Every server serves `/healthz` on its metrics
    /// port; the container images run them all with `metricsPort=5557`.
    #[arg(
        short = 'u',
        long = "url",
        env = "RMQ_HEALTHCHECK_URL",
        default_value = "http://127.0.0.1:5557/healthz"
    )]
    pub url: String,
}

/// `consumeMessage` options (`ConsumeMessageCommand`).
#[derive(Debug, Args)]
pub struct ConsumeMessageArgs {
    /// Topic.
    #[arg(short = 't', long = "topic")]
    pub topic: String,
    /// Only this broker group.
    #[arg(short = 'b', long = "brokerName")]
    pub broker_name: Option<String>,
    /// Only this queue (needs -b).
    #[arg(short = 'i', long = "queueId")]
    pub queue_id: Option<i32>,
    /// Start at this offset (needs -i).
    #[arg(short = 'o', long = "offset")]
    pub offset: Option<i64>,
    /// Consumer group used for the pulls.
    #[arg(short = 'g', long = "consumerGroup", default_value = "TOOLS_CONSUMER")]
    pub consumer_group: String,
    /// Begin time (ms or `yyyy-MM-dd#HH:mm:ss:SSS`, UTC).
    #[arg(short = 's', long = "beginTimestamp")]
    pub begin: Option<String>,
    /// End time (ms or `yyyy-MM-dd#HH:mm:ss:SSS`, UTC).
    #[arg(short = 'e', long = "endTimestamp")]
    pub end: Option<String>,
    /// How many messages at most.
    #[arg(short = 'c', long = "MessageNumber", default_value_t = 128, value_parser = clap::value_parser!(u64).range(1..))]
    pub message_number: u64,
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

/// Java's commons-cli takes multi-letter short options such as `-bn`; clap does not, so
/// they are rewritten to their long names before parsing.
pub fn java_style_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    args.into_iter()
        .map(|a| match a.as_str() {
            "-bn" => "--brokerName".to_string(),
            _ => a,
        })
        .collect()
}

/// Options of the commands that talk to controllers only (`-a`).
#[derive(Debug, Args)]
pub struct ControllerAddrArgs {
    /// Controller address(es), `host:port;host:port`.
    #[arg(short = 'a', long = "controllerAddress")]
    pub controller_address: String,
}

/// `getSyncStateSet` options (`GetSyncStateSetSubCommand`).
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["broker_name", "cluster_name"])))]
pub struct GetSyncStateSetArgs {
    /// Controller address(es).
    #[arg(short = 'a', long = "controllerAddress")]
    pub controller_address: String,
    /// Which cluster (its broker groups come from the name server).
    #[arg(short = 'c', long = "clusterName")]
    pub cluster_name: Option<String>,
    /// Which broker group.
    #[arg(short = 'b', long = "brokerName")]
    pub broker_name: Option<String>,
    /// Repeat every this many seconds.
    #[arg(short = 'i', long = "interval", num_args = 0..=1, default_missing_value = "")]
    pub interval: Option<String>,
}

/// `getBrokerEpoch` options (`GetBrokerEpochSubCommand`).
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["broker_name", "cluster_name"])))]
pub struct GetBrokerEpochArgs {
    /// Which cluster.
    #[arg(short = 'c', long = "clusterName")]
    pub cluster_name: Option<String>,
    /// Which broker group.
    #[arg(short = 'b', long = "brokerName")]
    pub broker_name: Option<String>,
    /// Repeat every this many seconds.
    #[arg(short = 'i', long = "interval", num_args = 0..=1, default_missing_value = "")]
    pub interval: Option<String>,
}

/// `electMaster` options (`ReElectMasterSubCommand`).
#[derive(Debug, Args)]
pub struct ElectMasterArgs {
    /// Controller address(es).
    #[arg(short = 'a', long = "controllerAddress")]
    pub controller_address: String,
    /// The id of the broker that should become master.
    #[arg(short = 'b', long = "brokerId")]
    pub broker_id: i64,
    /// The broker group (`-bn`).
    #[arg(long = "brokerName")]
    pub broker_name: String,
    /// The cluster.
    #[arg(short = 'c', long = "clusterName")]
    pub cluster_name: String,
}

/// `updateControllerConfig` options.
#[derive(Debug, Args)]
pub struct UpdateControllerConfigArgs {
    /// Controller address(es); every one is updated.
    #[arg(short = 'a', long = "controllerAddress")]
    pub controller_address: String,
    /// Config key.
    #[arg(short = 'k', long = "key")]
    pub key: String,
    /// Config value.
    #[arg(short = 'v', long = "value")]
    pub value: String,
}

/// `cleanBrokerMetadata` options (`CleanControllerBrokerMetaSubCommand`).
#[derive(Debug, Args)]
pub struct CleanBrokerMetadataArgs {
    /// Controller address(es).
    #[arg(short = 'a', long = "controllerAddress")]
    pub controller_address: String,
    /// Ids to drop, `1;2;3` (all of the group when absent).
    #[arg(short = 'b', long = "brokerControllerIdsToClean")]
    pub broker_controller_ids_to_clean: Option<String>,
    /// The broker group (`-bn`).
    #[arg(long = "brokerName")]
    pub broker_name: String,
    /// The cluster (required unless -l).
    #[arg(short = 'c', long = "clusterName")]
    pub cluster_name: Option<String>,
    /// Also drop brokers that are alive.
    #[arg(short = 'l', long = "cleanLivingBroker")]
    pub clean_living_broker: bool,
}
