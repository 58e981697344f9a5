//! Headers of the name server's request codes (`remoting/protocol/header/namesrv/*`).

use crate::command_header;

command_header! {
    /// REGISTER_BROKER (103) request.
    pub struct RegisterBrokerRequestHeader {
        /// Broker group name, e.g. `broker-a`.
        broker_name: String = "brokerName",
        /// `ip:port` clients use to reach this broker.
        broker_addr: String = "brokerAddr",
        /// Cluster the group belongs to.
        cluster_name: String = "clusterName",
        /// `ip:port` of the broker's HA (replication) listener.
        ha_server_addr: String = "haServerAddr",
        /// 0 for the master, ≥ 1 for slaves.
        broker_id: i64 = "brokerId",
        /// How long the name server waits for the next registration before dropping it.
        heartbeat_timeout_millis: Option<i64> = "heartbeatTimeoutMillis",
        /// Whether a slave may act as master for reads when the master is gone.
        enable_acting_master: Option<bool> = "enableActingMaster",
        /// Body is the Deflate-compressed binary form instead of JSON.
        compressed: Option<bool> = "compressed",
        /// CRC32 of the body; 0 or absent skips the check.
        body_crc32: Option<i32> = "bodyCrc32",
    }
}

command_header! {
    /// REGISTER_BROKER (103) response.
    pub struct RegisterBrokerResponseHeader {
        /// HA address of the group's master, for a registering slave.
        ha_server_addr: Option<String> = "haServerAddr",
        /// Address of the group's master, for a registering slave.
        master_addr: Option<String> = "masterAddr",
    }
}

command_header! {
    /// UNREGISTER_BROKER (104) request.
    pub struct UnregisterBrokerRequestHeader {
        /// Broker group name.
        broker_name: String = "brokerName",
        /// Address the broker registered with.
        broker_addr: String = "brokerAddr",
        /// Cluster name.
        cluster_name: String = "clusterName",
        /// Broker id within the group.
        broker_id: i64 = "brokerId",
    }
}

command_header! {
    /// BROKER_HEARTBEAT (904) request, as sent to the name server (and the controller).
    pub struct BrokerHeartbeatRequestHeader {
        /// Cluster name.
        cluster_name: String = "clusterName",
        /// Address the broker registered with.
        broker_addr: String = "brokerAddr",
        /// Broker group name.
        broker_name: String = "brokerName",
        /// Broker id (controller mode).
        broker_id: Option<i64> = "brokerId",
        /// Master epoch the broker knows (controller mode).
        epoch: Option<i32> = "epoch",
        /// Broker's max CommitLog offset (controller mode).
        max_offset: Option<i64> = "maxOffset",
        /// Broker's confirmed offset (controller mode).
        confirm_offset: Option<i64> = "confirmOffset",
        /// Heartbeat timeout the broker asks for.
        heartbeat_timeout_mills: Option<i64> = "heartbeatTimeoutMills",
        /// Election priority; lower wins ties.
        election_priority: Option<i32> = "electionPriority",
    }
}

command_header! {
    /// GET_ROUTEINFO_BY_TOPIC (105) request.
    pub struct GetRouteInfoRequestHeader {
        /// The topic.
        topic: String = "topic",
        /// Ask for standard JSON (quoted map keys) even from an old-version request.
        accept_standard_json_only: Option<bool> = "acceptStandardJsonOnly",
    }
}

command_header! {
    /// GET_TOPICS_BY_CLUSTER (224) request.
    pub struct GetTopicsByClusterRequestHeader {
        /// Cluster name.
        cluster: String = "cluster",
    }
}

command_header! {
    /// DELETE_TOPIC_IN_NAMESRV (216) request.
    pub struct DeleteTopicFromNamesrvRequestHeader {
        /// The topic.
        topic: String = "topic",
        /// Restrict the deletion to the brokers of one cluster.
        cluster_name: Option<String> = "clusterName",
    }
}

command_header! {
    /// WIPE_WRITE_PERM_OF_BROKER (205) and ADD_WRITE_PERM_OF_BROKER (327) request.
    pub struct BrokerPermRequestHeader {
        /// Broker group name.
        broker_name: String = "brokerName",
    }
}

command_header! {
    /// WIPE_WRITE_PERM_OF_BROKER (205) response.
    pub struct WipeWritePermOfBrokerResponseHeader {
        /// Number of topic queue entries whose write permission was removed.
        wipe_topic_count: i32 = "wipeTopicCount",
    }
}

command_header! {
    /// ADD_WRITE_PERM_OF_BROKER (327) response.
    pub struct AddWritePermOfBrokerResponseHeader {
        /// Number of topic queue entries whose write permission was restored.
        add_topic_count: i32 = "addTopicCount",
    }
}

command_header! {
    /// PUT_KV_CONFIG (100) request.
    pub struct PutKvConfigRequestHeader {
        /// Namespace, e.g. `ORDER_TOPIC_CONFIG`.
        namespace: String = "namespace",
        /// Key within the namespace.
        key: String = "key",
        /// Value.
        value: String = "value",
    }
}

command_header! {
    /// GET_KV_CONFIG (101) and DELETE_KV_CONFIG (102) request.
    pub struct KvConfigKeyRequestHeader {
        /// Namespace.
        namespace: String = "namespace",
        /// Key within the namespace.
        key: String = "key",
    }
}

command_header! {
    /// GET_KV_CONFIG (101) response.
    pub struct GetKvConfigResponseHeader {
        /// The value.
        value: Option<String> = "value",
    }
}

command_header! {
    /// GET_KVLIST_BY_NAMESPACE (219) request.
    pub struct GetKvListByNamespaceRequestHeader {
        /// Namespace.
        namespace: String = "namespace",
    }
}

command_header! {
    /// QUERY_DATA_VERSION (322) request; the body is the broker's DataVersion JSON.
    pub struct QueryDataVersionRequestHeader {
        /// Broker group name.
        broker_name: String = "brokerName",
        /// Broker address.
        broker_addr: String = "brokerAddr",
        /// Cluster name.
        cluster_name: String = "clusterName",
        /// Broker id.
        broker_id: i64 = "brokerId",
    }
}

command_header! {
    /// QUERY_DATA_VERSION (322) response.
    pub struct QueryDataVersionResponseHeader {
        /// Whether the broker's data version differs from what the name server holds.
        changed: Option<bool> = "changed",
    }
}

command_header! {
    /// GET_BROKER_MEMBER_GROUP (901) request.
    pub struct GetBrokerMemberGroupRequestHeader {
        /// Cluster name.
        cluster_name: String = "clusterName",
        /// Broker group name.
        broker_name: String = "brokerName",
    }
}
