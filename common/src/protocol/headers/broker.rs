//! Headers of the broker's request codes (`remoting/protocol/header/*`).
//!
//! SEND_MESSAGE_V2 and SEND_BATCH_MESSAGE use single-letter field names to save bytes on
//! the hottest path; [`SendMessageRequestHeaderV2`] converts to the long form.

use crate::command_header;

command_header! {
    /// SEND_MESSAGE (10) request, long field names.
    pub struct SendMessageRequestHeader {
        /// Producer group.
        producer_group: String = "producerGroup",
        /// Target topic.
        topic: String = "topic",
        /// Template topic for auto-creation (`TBW102`).
        default_topic: String = "defaultTopic",
        /// Queues of an auto-created topic.
        default_topic_queue_nums: i32 = "defaultTopicQueueNums",
        /// Target queue.
        queue_id: i32 = "queueId",
        /// Message sys flag (compression, transaction type, ...).
        sys_flag: i32 = "sysFlag",
        /// Producer's timestamp in ms.
        born_timestamp: i64 = "bornTimestamp",
        /// User flag.
        flag: i32 = "flag",
        /// Properties, `k\x01v\x02` encoded.
        properties: Option<String> = "properties",
        /// Times this message was consumed and sent back.
        reconsume_times: Option<i32> = "reconsumeTimes",
        /// Unit mode.
        unit_mode: Option<bool> = "unitMode",
        /// Whether the body is a batch.
        batch: Option<bool> = "batch",
        /// Max reconsume times before the DLQ.
        max_reconsume_times: Option<i32> = "maxReconsumeTimes",
        /// Target broker group (RpcRequestHeader `bname`).
        broker_name: Option<String> = "bname",
    }
}

command_header! {
    /// SEND_MESSAGE_V2 (310) / SEND_BATCH_MESSAGE (320) request, single-letter names.
    pub struct SendMessageRequestHeaderV2 {
        /// producerGroup.
        a: String = "a",
        /// topic.
        b: String = "b",
        /// defaultTopic.
        c: String = "c",
        /// defaultTopicQueueNums.
        d: i32 = "d",
        /// queueId.
        e: i32 = "e",
        /// sysFlag.
        f: i32 = "f",
        /// bornTimestamp.
        g: i64 = "g",
        /// flag.
        h: i32 = "h",
        /// properties.
        i: Option<String> = "i",
        /// reconsumeTimes.
        j: Option<i32> = "j",
        /// unitMode.
        k: Option<bool> = "k",
        /// maxReconsumeTimes.
        l: Option<i32> = "l",
        /// batch.
        m: Option<bool> = "m",
        /// brokerName.
        n: Option<String> = "n",
    }
}

impl From<SendMessageRequestHeaderV2> for SendMessageRequestHeader {
    fn from(v2: SendMessageRequestHeaderV2) -> Self {
        Self {
            producer_group: v2.a,
            topic: v2.b,
            default_topic: v2.c,
            default_topic_queue_nums: v2.d,
            queue_id: v2.e,
            sys_flag: v2.f,
            born_timestamp: v2.g,
            flag: v2.h,
            properties: v2.i,
            reconsume_times: v2.j,
            unit_mode: v2.k,
            max_reconsume_times: v2.l,
            batch: v2.m,
            broker_name: v2.n,
        }
    }
}

impl From<SendMessageRequestHeader> for SendMessageRequestHeaderV2 {
    fn from(v1: SendMessageRequestHeader) -> Self {
        Self {
            a: v1.producer_group,
            b: v1.topic,
            c: v1.default_topic,
            d: v1.default_topic_queue_nums,
            e: v1.queue_id,
            f: v1.sys_flag,
            g: v1.born_timestamp,
            h: v1.flag,
            i: v1.properties,
            j: v1.reconsume_times,
            k: v1.unit_mode,
            l: v1.max_reconsume_times,
            m: v1.batch,
            n: v1.broker_name,
        }
    }
}

command_header! {
    /// SEND_MESSAGE* response.
    pub struct SendMessageResponseHeader {
        /// Offset message id (store host + commit log offset, 32 hex chars).
        msg_id: String = "msgId",
        /// Queue the message went to.
        queue_id: i32 = "queueId",
        /// Logical offset in that queue.
        queue_offset: i64 = "queueOffset",
        /// Transaction id (half messages).
        transaction_id: Option<String> = "transactionId",
        /// Unique ids of a batch, comma-joined.
        batch_uniq_id: Option<String> = "batchUniqId",
        /// Handle to recall a delayed message.
        recall_handle: Option<String> = "recallHandle",
    }
}

command_header! {
    /// PULL_MESSAGE (11) / LITE_PULL_MESSAGE (361) request.
    pub struct PullMessageRequestHeader {
        /// Consumer group.
        consumer_group: String = "consumerGroup",
        /// Topic.
        topic: String = "topic",
        /// Queue.
        queue_id: i32 = "queueId",
        /// First logical offset wanted.
        queue_offset: i64 = "queueOffset",
        /// Most messages to return.
        max_msg_nums: i32 = "maxMsgNums",
        /// PullSysFlag bits (commit offset, suspend, subscription, class filter, lite).
        sys_flag: i32 = "sysFlag",
        /// Offset to commit along with the pull.
        commit_offset: i64 = "commitOffset",
        /// How long to hold a pull that finds nothing (long polling).
        suspend_timeout_millis: i64 = "suspendTimeoutMillis",
        /// Subscription expression, e.g. `TagA || TagB`.
        subscription: Option<String> = "subscription",
        /// Subscription version.
        sub_version: i64 = "subVersion",
        /// `TAG` or `SQL92`.
        expression_type: Option<String> = "expressionType",
        /// Most bytes to return.
        max_msg_bytes: Option<i32> = "maxMsgBytes",
        /// Who is pulling (client, proxy, ...).
        request_source: Option<i32> = "requestSource",
        /// Client id when pulled through a proxy (field name misspelt in Java).
        proxy_forward_client_id: Option<String> = "proxyFrowardClientId",
        /// Target broker group.
        broker_name: Option<String> = "bname",
    }
}

command_header! {
    /// PULL_MESSAGE response.
    pub struct PullMessageResponseHeader {
        /// Broker the client should pull from next (0 = master).
        suggest_which_broker_id: i64 = "suggestWhichBrokerId",
        /// Where the next pull starts.
        next_begin_offset: i64 = "nextBeginOffset",
        /// Queue's min offset.
        min_offset: i64 = "minOffset",
        /// Queue's max offset.
        max_offset: i64 = "maxOffset",
        /// Offset delta (static topics).
        offset_delta: Option<i64> = "offsetDelta",
        /// Topic sys flag.
        topic_sys_flag: Option<i32> = "topicSysFlag",
        /// Group sys flag.
        group_sys_flag: Option<i32> = "groupSysFlag",
        /// Why the pull was forbidden, if it was.
        forbidden_type: Option<i32> = "forbiddenType",
    }
}

command_header! {
    /// QUERY_CONSUMER_OFFSET (14) request.
    pub struct QueryConsumerOffsetRequestHeader {
        /// Consumer group.
        consumer_group: String = "consumerGroup",
        /// Topic.
        topic: String = "topic",
        /// Queue.
        queue_id: i32 = "queueId",
        /// Answer 0 instead of QUERY_NOT_FOUND when nothing is committed.
        set_zero_if_not_found: Option<bool> = "setZeroIfNotFound",
        /// Target broker group.
        broker_name: Option<String> = "bname",
    }
}

command_header! {
    /// Response carrying one offset (QUERY_CONSUMER_OFFSET, GET_MAX/MIN_OFFSET,
    /// SEARCH_OFFSET_BY_TIMESTAMP).
    pub struct OffsetResponseHeader {
        /// The offset.
        offset: i64 = "offset",
    }
}

command_header! {
    /// UPDATE_CONSUMER_OFFSET (15) request.
    pub struct UpdateConsumerOffsetRequestHeader {
        /// Consumer group.
        consumer_group: String = "consumerGroup",
        /// Topic.
        topic: String = "topic",
        /// Queue.
        queue_id: i32 = "queueId",
        /// Offset to commit.
        commit_offset: i64 = "commitOffset",
        /// Target broker group.
        broker_name: Option<String> = "bname",
    }
}

command_header! {
    /// GET_MAX_OFFSET (30) request.
    pub struct GetMaxOffsetRequestHeader {
        /// Topic.
        topic: String = "topic",
        /// Queue.
        queue_id: i32 = "queueId",
        /// Only count committed (dispatched and confirmed) messages.
        committed: Option<bool> = "committed",
        /// Target broker group.
        broker_name: Option<String> = "bname",
    }
}

command_header! {
    /// GET_MIN_OFFSET (31) and GET_EARLIEST_MSG_STORETIME (32) request.
    pub struct QueueRequestHeader {
        /// Topic.
        topic: String = "topic",
        /// Queue.
        queue_id: i32 = "queueId",
        /// Target broker group.
        broker_name: Option<String> = "bname",
    }
}

command_header! {
    /// GET_EARLIEST_MSG_STORETIME (32) response.
    pub struct GetEarliestMsgStoretimeResponseHeader {
        /// Store timestamp (ms) of the queue's first message.
        timestamp: i64 = "timestamp",
    }
}

command_header! {
    /// SEARCH_OFFSET_BY_TIMESTAMP (29) request.
    pub struct SearchOffsetRequestHeader {
        /// Topic.
        topic: String = "topic",
        /// Queue.
        queue_id: i32 = "queueId",
        /// Store timestamp (ms) to search for.
        timestamp: i64 = "timestamp",
        /// `LOWER` (default) or `UPPER`.
        boundary_type: Option<String> = "boundaryType",
        /// Target broker group.
        broker_name: Option<String> = "bname",
    }
}

command_header! {
    /// UNREGISTER_CLIENT (35) request.
    pub struct UnregisterClientRequestHeader {
        /// Client id.
        client_id: String = "clientID",
        /// Producer group, if a producer unregisters.
        producer_group: Option<String> = "producerGroup",
        /// Consumer group, if a consumer unregisters.
        consumer_group: Option<String> = "consumerGroup",
    }
}

command_header! {
    /// GET_CONSUMER_LIST_BY_GROUP (38) request.
    pub struct GetConsumerListByGroupRequestHeader {
        /// Consumer group.
        consumer_group: String = "consumerGroup",
    }
}

command_header! {
    /// NOTIFY_CONSUMER_IDS_CHANGED (40) request (broker → client, oneway).
    pub struct NotifyConsumerIdsChangedRequestHeader {
        /// Consumer group whose membership changed.
        consumer_group: String = "consumerGroup",
    }
}

command_header! {
    /// CONSUMER_SEND_MSG_BACK (36) request.
    pub struct ConsumerSendMsgBackRequestHeader {
        /// Commit log offset of the message being sent back.
        offset: i64 = "offset",
        /// Consumer group.
        group: String = "group",
        /// Delay level requested (0 = broker decides, < 0 = straight to DLQ).
        delay_level: i32 = "delayLevel",
        /// Id the producer gave the message.
        origin_msg_id: Option<String> = "originMsgId",
        /// Topic the message was originally sent to.
        origin_topic: Option<String> = "originTopic",
        /// Unit mode.
        unit_mode: Option<bool> = "unitMode",
        /// Max reconsume times before the DLQ.
        max_reconsume_times: Option<i32> = "maxReconsumeTimes",
        /// Target broker group.
        broker_name: Option<String> = "bname",
    }
}

command_header! {
    /// UPDATE_AND_CREATE_TOPIC (17) request.
    pub struct CreateTopicRequestHeader {
        /// Topic.
        topic: String = "topic",
        /// Template topic (usually `TBW102`).
        default_topic: String = "defaultTopic",
        /// Readable queues.
        read_queue_nums: i32 = "readQueueNums",
        /// Writable queues.
        write_queue_nums: i32 = "writeQueueNums",
        /// Permission bits.
        perm: i32 = "perm",
        /// `SINGLE_TAG` or `MULTI_TAG`.
        topic_filter_type: String = "topicFilterType",
        /// Topic sys flag.
        topic_sys_flag: Option<i32> = "topicSysFlag",
        /// Ordered topic.
        order: bool = "order",
        /// Attributes, e.g. `+message.type=FIFO`.
        attributes: Option<String> = "attributes",
        /// Forces creation of a topic with a reserved name.
        force: Option<bool> = "force",
    }
}

command_header! {
    /// DELETE_TOPIC_IN_BROKER (215) request.
    pub struct DeleteTopicRequestHeader {
        /// Topic.
        topic: String = "topic",
    }
}

command_header! {
    /// DELETE_SUBSCRIPTIONGROUP (207) request.
    pub struct DeleteSubscriptionGroupRequestHeader {
        /// Group name.
        group_name: String = "groupName",
        /// Also drop the group's committed offsets.
        clean_offset: Option<bool> = "cleanOffset",
    }
}

command_header! {
    /// QUERY_MESSAGE (12) request.
    pub struct QueryMessageRequestHeader {
        /// Topic.
        topic: String = "topic",
        /// Message key (or unique key when `_UNIQUE_KEY_QUERY` is set).
        key: String = "key",
        /// Most messages to return.
        max_num: i32 = "maxNum",
        /// Earliest store time (ms).
        begin_timestamp: i64 = "beginTimestamp",
        /// Latest store time (ms).
        end_timestamp: i64 = "endTimestamp",
    }
}

command_header! {
    /// QUERY_MESSAGE (12) response.
    pub struct QueryMessageResponseHeader {
        /// Store time of the newest index entry consulted.
        index_last_update_timestamp: i64 = "indexLastUpdateTimestamp",
        /// Commit log offset of the newest index entry consulted.
        index_last_update_phyoffset: i64 = "indexLastUpdatePhyoffset",
    }
}

command_header! {
    /// VIEW_MESSAGE_BY_ID (33) request.
    pub struct ViewMessageRequestHeader {
        /// Topic (optional in older clients).
        topic: Option<String> = "topic",
        /// Commit log offset decoded from the offset message id.
        offset: i64 = "offset",
    }
}

command_header! {
    /// GET_CONSUME_STATS (208) request.
    pub struct GetConsumeStatsRequestHeader {
        /// Consumer group.
        consumer_group: String = "consumerGroup",
        /// Restrict to one topic.
        topic: Option<String> = "topic",
        /// Restrict to several topics, each followed by `;` (`GetConsumeStatsRequestHeader.topicList`).
        topic_list: Option<String> = "topicList",
    }
}

command_header! {
    /// GET_TOPIC_STATS_INFO (202) request.
    pub struct GetTopicStatsInfoRequestHeader {
        /// Topic.
        topic: String = "topic",
    }
}

command_header! {
    /// GET_CONSUMER_CONNECTION_LIST (203) request.
    pub struct GetConsumerConnectionListRequestHeader {
        /// Consumer group.
        consumer_group: String = "consumerGroup",
    }
}

command_header! {
    /// END_TRANSACTION (37) request.
    pub struct EndTransactionRequestHeader {
        /// Topic of the half message (sent by 5.x clients).
        topic: Option<String> = "topic",
        /// Producer group.
        producer_group: String = "producerGroup",
        /// Logical offset of the half message.
        tran_state_table_offset: i64 = "tranStateTableOffset",
        /// Commit log offset of the half message.
        commit_log_offset: i64 = "commitLogOffset",
        /// 0 not type / 8 commit / 12 rollback.
        commit_or_rollback: i32 = "commitOrRollback",
        /// Whether the producer answers a broker check.
        from_transaction_check: Option<bool> = "fromTransactionCheck",
        /// Message id.
        msg_id: String = "msgId",
        /// Transaction id.
        transaction_id: Option<String> = "transactionId",
    }
}

command_header! {
    /// CHECK_TRANSACTION_STATE (39) request, broker → producer (oneway). The body is the
    /// half message in the CommitLog record layout, with its real topic and queue.
    pub struct CheckTransactionStateRequestHeader {
        /// Half-topic queue offset of the message asked about.
        tran_state_table_offset: i64 = "tranStateTableOffset",
        /// CommitLog offset of the message asked about.
        commit_log_offset: i64 = "commitLogOffset",
        /// The client's unique key.
        msg_id: Option<String> = "msgId",
        /// Transaction id (the unique key).
        transaction_id: Option<String> = "transactionId",
        /// Offset message id of the message asked about.
        offset_msg_id: Option<String> = "offsetMsgId",
        /// Half topic (clients ignore it).
        topic: Option<String> = "topic",
        /// Broker name (RpcRequestHeader `bname`).
        broker_name: Option<String> = "bname",
    }
}

command_header! {
    /// GET_PRODUCER_CONNECTION_LIST (204) request.
    pub struct GetProducerConnectionListRequestHeader {
        /// Producer group.
        producer_group: String = "producerGroup",
    }
}

command_header! {
    /// INVOKE_BROKER_TO_RESET_OFFSET (222) request (`ResetOffsetRequestHeader`).
    pub struct ResetOffsetRequestHeader {
        /// Topic.
        topic: String = "topic",
        /// Consumer group.
        group: String = "group",
        /// Reset to the first message stored at or after this time (ms); -1 = the end.
        timestamp: i64 = "timestamp",
        /// Reset even when the group is behind the target (legacy; always honoured).
        is_force: Option<bool> = "isForce",
        /// One queue (-1 = all).
        queue_id: Option<i32> = "queueId",
        /// Explicit offset for `queue_id` (-1 or absent = by timestamp).
        offset: Option<i64> = "offset",
    }
}

command_header! {
    /// GET_BROKER_CONFIG (26) response.
    pub struct GetBrokerConfigResponseHeader {
        /// The config's DataVersion as JSON.
        version: String = "version",
    }
}

command_header! {
    /// POP_MESSAGE (200050) request (`PopMessageRequestHeader`).
    pub struct PopMessageRequestHeader {
        /// Consumer group.
        consumer_group: String = "consumerGroup",
        /// Topic (never its retry topic: the broker mixes that in).
        topic: String = "topic",
        /// One queue, or -1 for every readable queue.
        queue_id: i32 = "queueId",
        /// Most messages to return (at most 32).
        max_msg_nums: i32 = "maxMsgNums",
        /// How long popped messages stay invisible (ms).
        invisible_time: i64 = "invisibleTime",
        /// How long the broker may hold the request when nothing is there (ms; ≤ 0: no hold).
        poll_time: i64 = "pollTime",
        /// Client time of the request (ms; 0: the broker's now).
        born_time: i64 = "bornTime",
        /// Where a group without an offset starts: 0 = the first message, 1 = the end.
        init_mode: i32 = "initMode",
        /// `TAG` or `SQL92`.
        exp_type: Option<String> = "expType",
        /// Filter expression (`*` when absent).
        exp: Option<String> = "exp",
        /// FIFO pop: a queue's next messages wait until the popped ones are acked.
        order: Option<bool> = "order",
        /// FIFO retry token: the same attempt gets the same messages again.
        attempt_id: Option<String> = "attemptId",
    }
}

command_header! {
    /// POP_MESSAGE response (`PopMessageResponseHeader`).
    pub struct PopMessageResponseHeader {
        /// Broker time of the pop (ms).
        pop_time: i64 = "popTime",
        /// Invisible time granted (ms).
        invisible_time: i64 = "invisibleTime",
        /// Revive queue of the checkpoints (999 for a FIFO pop).
        revive_qid: i32 = "reviveQid",
        /// Messages left behind in the queues scanned.
        rest_num: i64 = "restNum",
        /// `"<flag> <queueId> <ckOffset>"` per queue, `;`-joined.
        start_offset_info: Option<String> = "startOffsetInfo",
        /// `"<flag> <queueId> <off>,<off>..."` per queue, `;`-joined.
        msg_offset_info: Option<String> = "msgOffsetInfo",
        /// FIFO delivery counts per message and per queue.
        order_count_info: Option<String> = "orderCountInfo",
    }
}

command_header! {
    /// ACK_MESSAGE (200051) request (`AckMessageRequestHeader`).
    pub struct AckMessageRequestHeader {
        /// Consumer group.
        consumer_group: String = "consumerGroup",
        /// The message's real topic (its retry topic for a retried message).
        topic: String = "topic",
        /// Queue of the message in that topic.
        queue_id: i32 = "queueId",
        /// The message's receipt (`POP_CK`).
        extra_info: String = "extraInfo",
        /// Queue offset of the message.
        offset: i64 = "offset",
    }
}

command_header! {
    /// CHANGE_MESSAGE_INVISIBLETIME (200053) request (`ChangeInvisibleTimeRequestHeader`).
    pub struct ChangeInvisibleTimeRequestHeader {
        /// Consumer group.
        consumer_group: String = "consumerGroup",
        /// The message's real topic.
        topic: String = "topic",
        /// Queue of the message.
        queue_id: i32 = "queueId",
        /// The message's current receipt.
        extra_info: String = "extraInfo",
        /// Queue offset of the message.
        offset: i64 = "offset",
        /// New invisible time, counted from now (ms).
        invisible_time: i64 = "invisibleTime",
    }
}

command_header! {
    /// CHANGE_MESSAGE_INVISIBLETIME response: the client builds the new receipt from it.
    pub struct ChangeInvisibleTimeResponseHeader {
        /// The new pop time (ms).
        pop_time: i64 = "popTime",
        /// The invisible time from `pop_time` (ms).
        invisible_time: i64 = "invisibleTime",
        /// Revive queue of the new checkpoint.
        revive_qid: i32 = "reviveQid",
    }
}

command_header! {
    /// NOTIFICATION (200054) request: is there anything to pop? (long polling)
    pub struct NotificationRequestHeader {
        /// Consumer group.
        consumer_group: String = "consumerGroup",
        /// Topic.
        topic: String = "topic",
        /// One queue, or -1 for all.
        queue_id: i32 = "queueId",
        /// How long the broker may hold the request (ms).
        poll_time: i64 = "pollTime",
        /// Client time of the request (ms).
        born_time: i64 = "bornTime",
        /// FIFO: a queue waiting for acks counts as empty.
        order: Option<bool> = "order",
        /// FIFO retry token.
        attempt_id: Option<String> = "attemptId",
    }
}

command_header! {
    /// NOTIFICATION response.
    pub struct NotificationResponseHeader {
        /// Whether a pop would find messages.
        has_msg: bool = "hasMsg",
        /// Whether the broker could not hold the request.
        polling_full: Option<bool> = "pollingFull",
    }
}
