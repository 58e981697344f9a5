//! Request and response code numbers, exactly as RocketMQ assigns them.
//!
//! A [`RemotingCommand`](super::RemotingCommand) carries its code as a raw `i32` because
//! peers may send codes we do not know; these enums give the known ones names. Servers
//! answer unknown codes with [`ResponseCode::RequestCodeNotSupported`].

macro_rules! code_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:expr,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum $name {
            $($(#[$vmeta])* $variant = $value,)*
        }

        impl $name {
            /// Every known code, for tables and tests.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The code for a wire number, `None` when the number is not a known code.
            pub fn from_i32(value: i32) -> Option<Self> {
                match value {
                    $($value => Some($name::$variant),)*
                    _ => None,
                }
            }

            /// The wire number.
            pub const fn as_i32(self) -> i32 {
                self as i32
            }

            /// The code's name in RocketMQ's Java sources (`SEND_MESSAGE_V2`, ...).
            pub fn java_name(self) -> &'static str {
                match self {
                    $($name::$variant => stringify!($variant),)*
                }
            }
        }

        impl From<$name> for i32 {
            fn from(code: $name) -> i32 {
                code as i32
            }
        }
    };
}

code_enum! {
    /// Request codes (`RequestCode.java`).
    #[allow(non_camel_case_types)]
    pub enum RequestCode {
        SEND_MESSAGE = 10,
        PULL_MESSAGE = 11,
        QUERY_MESSAGE = 12,
        QUERY_CONSUMER_OFFSET = 14,
        UPDATE_CONSUMER_OFFSET = 15,
        UPDATE_AND_CREATE_TOPIC = 17,
        GET_ALL_TOPIC_CONFIG = 21,
        UPDATE_BROKER_CONFIG = 25,
        GET_BROKER_CONFIG = 26,
        GET_BROKER_RUNTIME_INFO = 28,
        SEARCH_OFFSET_BY_TIMESTAMP = 29,
        GET_MAX_OFFSET = 30,
        GET_MIN_OFFSET = 31,
        GET_EARLIEST_MSG_STORETIME = 32,
        VIEW_MESSAGE_BY_ID = 33,
        HEART_BEAT = 34,
        UNREGISTER_CLIENT = 35,
        CONSUMER_SEND_MSG_BACK = 36,
        END_TRANSACTION = 37,
        GET_CONSUMER_LIST_BY_GROUP = 38,
        CHECK_TRANSACTION_STATE = 39,
        NOTIFY_CONSUMER_IDS_CHANGED = 40,
        LOCK_BATCH_MQ = 41,
        UNLOCK_BATCH_MQ = 42,
        GET_ALL_CONSUMER_OFFSET = 43,
        GET_ALL_DELAY_OFFSET = 45,
        CHECK_CLIENT_CONFIG = 46,
        GET_TIMER_CHECK_POINT = 60,
        PUT_KV_CONFIG = 100,
        GET_KV_CONFIG = 101,
        DELETE_KV_CONFIG = 102,
        REGISTER_BROKER = 103,
        UNREGISTER_BROKER = 104,
        GET_ROUTEINFO_BY_TOPIC = 105,
        GET_BROKER_CLUSTER_INFO = 106,
        UPDATE_AND_CREATE_SUBSCRIPTIONGROUP = 200,
        GET_ALL_SUBSCRIPTIONGROUP_CONFIG = 201,
        GET_TOPIC_STATS_INFO = 202,
        GET_CONSUMER_CONNECTION_LIST = 203,
        GET_PRODUCER_CONNECTION_LIST = 204,
        WIPE_WRITE_PERM_OF_BROKER = 205,
        GET_ALL_TOPIC_LIST_FROM_NAMESERVER = 206,
        DELETE_SUBSCRIPTIONGROUP = 207,
        GET_CONSUME_STATS = 208,
        DELETE_TOPIC_IN_BROKER = 215,
        DELETE_TOPIC_IN_NAMESRV = 216,
        GET_KVLIST_BY_NAMESPACE = 219,
        RESET_CONSUMER_CLIENT_OFFSET = 220,
        GET_CONSUMER_STATUS_FROM_CLIENT = 221,
        INVOKE_BROKER_TO_RESET_OFFSET = 222,
        INVOKE_BROKER_TO_GET_CONSUMER_STATUS = 223,
        GET_TOPICS_BY_CLUSTER = 224,
        QUERY_TOPIC_CONSUME_BY_WHO = 300,
        GET_SYSTEM_TOPIC_LIST_FROM_NS = 304,
        GET_CONSUMER_RUNNING_INFO = 307,
        CONSUME_MESSAGE_DIRECTLY = 309,
        SEND_MESSAGE_V2 = 310,
        GET_UNIT_TOPIC_LIST = 311,
        GET_HAS_UNIT_SUB_TOPIC_LIST = 312,
        GET_HAS_UNIT_SUB_UNUNIT_TOPIC_LIST = 313,
        UPDATE_NAMESRV_CONFIG = 318,
        GET_NAMESRV_CONFIG = 319,
        SEND_BATCH_MESSAGE = 320,
        QUERY_DATA_VERSION = 322,
        ADD_WRITE_PERM_OF_BROKER = 327,
        LITE_PULL_MESSAGE = 361,
        RECALL_MESSAGE = 370,
        QUERY_ASSIGNMENT = 400,
        SET_MESSAGE_REQUEST_MODE = 401,
        GET_BROKER_MEMBER_GROUP = 901,
        BROKER_HEARTBEAT = 904,
        CONTROLLER_ALTER_SYNC_STATE_SET = 1001,
        CONTROLLER_ELECT_MASTER = 1002,
        CONTROLLER_REGISTER_BROKER = 1003,
        CONTROLLER_GET_REPLICA_INFO = 1004,
        CONTROLLER_GET_METADATA_INFO = 1005,
        CONTROLLER_GET_SYNC_STATE_DATA = 1006,
        GET_BROKER_EPOCH_CACHE = 1007,
        NOTIFY_BROKER_ROLE_CHANGED = 1008,
        UPDATE_CONTROLLER_CONFIG = 1009,
        GET_CONTROLLER_CONFIG = 1010,
        CLEAN_BROKER_DATA = 1011,
        CONTROLLER_GET_NEXT_BROKER_ID = 1012,
        CONTROLLER_APPLY_BROKER_ID = 1013,
        // Our own codes (not RocketMQ's): consensus traffic between controllers.
        CONTROLLER_RAFT_APPEND_ENTRIES = 1120,
        CONTROLLER_RAFT_VOTE = 1121,
        CONTROLLER_RAFT_INSTALL_SNAPSHOT = 1122,
        POP_MESSAGE = 200050,
        ACK_MESSAGE = 200051,
        CHANGE_MESSAGE_INVISIBLETIME = 200053,
        NOTIFICATION = 200054,
        BATCH_ACK_MESSAGE = 200151,
    }
}

code_enum! {
    /// Response codes (`ResponseCode.java` and `RemotingSysResponseCode.java`).
    pub enum ResponseCode {
        Success = 0,
        SystemError = 1,
        SystemBusy = 2,
        RequestCodeNotSupported = 3,
        TransactionFailed = 4,
        FlushDiskTimeout = 10,
        SlaveNotAvailable = 11,
        FlushSlaveTimeout = 12,
        MessageIllegal = 13,
        ServiceNotAvailable = 14,
        VersionNotSupported = 15,
        NoPermission = 16,
        TopicNotExist = 17,
        TopicExistAlready = 18,
        PullNotFound = 19,
        PullRetryImmediately = 20,
        PullOffsetMoved = 21,
        QueryNotFound = 22,
        SubscriptionParseFailed = 23,
        SubscriptionNotExist = 24,
        SubscriptionNotLatest = 25,
        SubscriptionGroupNotExist = 26,
        InvalidParameter = 29,
        TransactionShouldCommit = 200,
        TransactionShouldRollback = 201,
        TransactionStateUnknow = 202,
        TransactionStateGroupWrong = 203,
        ConsumerNotOnline = 206,
        ConsumeMsgTimeout = 207,
        NoMessage = 208,
        PollingFull = 209,
        PollingTimeout = 210,
        BrokerNotExist = 211,
        FlowControl = 215,
        NotLeaderForQueue = 501,
        IllegalOperation = 604,
        GoAway = 1500,
        ControllerFencedMasterEpoch = 2000,
        ControllerFencedSyncStateSetEpoch = 2001,
        ControllerInvalidMaster = 2002,
        ControllerInvalidReplicas = 2003,
        ControllerMasterNotAvailable = 2004,
        ControllerInvalidRequest = 2005,
        ControllerBrokerNotAlive = 2006,
        ControllerNotLeader = 2007,
        ControllerBrokerMetadataNotExist = 2008,
        ControllerInvalidCleanBrokerMetadata = 2009,
        ControllerBrokerNeedToBeRegistered = 2010,
        ControllerMasterStillExist = 2011,
        ControllerElectMasterFailed = 2012,
        ControllerAlterSyncStateSetFailed = 2013,
        ControllerBrokerIdInvalid = 2014,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_rocketmq() {
        // Spot checks against RequestCode.java / ResponseCode.java; a typo here would make
        // stock clients talk past us.
        assert_eq!(RequestCode::SEND_MESSAGE_V2.as_i32(), 310);
        assert_eq!(RequestCode::GET_ROUTEINFO_BY_TOPIC.as_i32(), 105);
        assert_eq!(RequestCode::BROKER_HEARTBEAT.as_i32(), 904);
        assert_eq!(RequestCode::POP_MESSAGE.as_i32(), 200050);
        assert_eq!(ResponseCode::RequestCodeNotSupported.as_i32(), 3);
        assert_eq!(ResponseCode::TopicNotExist.as_i32(), 17);
        assert_eq!(ResponseCode::QueryNotFound.as_i32(), 22);
        assert_eq!(
            RequestCode::from_i32(103),
            Some(RequestCode::REGISTER_BROKER)
        );
        assert_eq!(RequestCode::from_i32(99_999), None);
        assert_eq!(RequestCode::REGISTER_BROKER.java_name(), "REGISTER_BROKER");
    }

    #[test]
    fn codes_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in RequestCode::ALL {
            assert!(
                seen.insert(code.as_i32()),
                "duplicate request code {code:?}"
            );
        }
        let mut seen = std::collections::HashSet::new();
        for code in ResponseCode::ALL {
            assert!(
                seen.insert(code.as_i32()),
                "duplicate response code {code:?}"
            );
        }
    }
}
