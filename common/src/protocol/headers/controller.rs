//! Headers of the controller's request codes (`remoting/protocol/header/controller/**`) and
//! of NOTIFY_BROKER_ROLE_CHANGED. Controller broker ids start at 1; 0 only ever means
//! "master" towards name servers.

use crate::command_header;

command_header! {
    /// CONTROLLER_GET_NEXT_BROKER_ID (1012) request.
    pub struct GetNextBrokerIdRequestHeader {
        /// Cluster name.
        cluster_name: String = "clusterName",
        /// Broker group name.
        broker_name: String = "brokerName",
    }
}

command_header! {
    /// CONTROLLER_GET_NEXT_BROKER_ID (1012) response.
    pub struct GetNextBrokerIdResponseHeader {
        /// Cluster name.
        cluster_name: Option<String> = "clusterName",
        /// Broker group name.
        broker_name: Option<String> = "brokerName",
        /// The id a new broker of the group should apply for.
        next_broker_id: Option<i64> = "nextBrokerId",
    }
}

command_header! {
    /// CONTROLLER_APPLY_BROKER_ID (1013) request.
    pub struct ApplyBrokerIdRequestHeader {
        /// Cluster name.
        cluster_name: String = "clusterName",
        /// Broker group name.
        broker_name: String = "brokerName",
        /// The id applied for.
        applied_broker_id: i64 = "appliedBrokerId",
        /// `<brokerAddr>;<epoch millis>`: makes a retried apply idempotent.
        register_check_code: String = "registerCheckCode",
    }
}

command_header! {
    /// CONTROLLER_APPLY_BROKER_ID (1013) response.
    pub struct ApplyBrokerIdResponseHeader {
        /// Cluster name.
        cluster_name: Option<String> = "clusterName",
        /// Broker group name.
        broker_name: Option<String> = "brokerName",
    }
}

command_header! {
    /// CONTROLLER_REGISTER_BROKER (1003) request.
    pub struct RegisterBrokerToControllerRequestHeader {
        /// Cluster name.
        cluster_name: String = "clusterName",
        /// Broker group name.
        broker_name: String = "brokerName",
        /// The broker's controller id.
        broker_id: Option<i64> = "brokerId",
        /// The broker's Remoting address.
        broker_address: String = "brokerAddress",
        /// Client clock, ms.
        invoke_time: Option<i64> = "invokeTime",
    }
}

command_header! {
    /// CONTROLLER_REGISTER_BROKER (1003) response; the master fields only when a live
    /// master exists. Body: [`SyncStateSet`](crate::controller::SyncStateSet).
    pub struct RegisterBrokerToControllerResponseHeader {
        /// Cluster name.
        cluster_name: Option<String> = "clusterName",
        /// Broker group name.
        broker_name: Option<String> = "brokerName",
        /// The master's controller id.
        master_broker_id: Option<i64> = "masterBrokerId",
        /// The master's address.
        master_address: Option<String> = "masterAddress",
        /// The master epoch.
        master_epoch: Option<i32> = "masterEpoch",
        /// The SyncStateSet epoch.
        sync_state_set_epoch: Option<i32> = "syncStateSetEpoch",
    }
}

command_header! {
    /// CONTROLLER_GET_REPLICA_INFO (1004) request.
    pub struct GetReplicaInfoRequestHeader {
        /// Broker group name.
        broker_name: String = "brokerName",
    }
}

command_header! {
    /// CONTROLLER_GET_REPLICA_INFO (1004) response. Body: the SyncStateSet.
    pub struct GetReplicaInfoResponseHeader {
        /// The master's controller id (absent without a master).
        master_broker_id: Option<i64> = "masterBrokerId",
        /// The master's address.
        master_address: Option<String> = "masterAddress",
        /// The master epoch.
        master_epoch: Option<i32> = "masterEpoch",
    }
}

command_header! {
    /// CONTROLLER_ALTER_SYNC_STATE_SET (1001) request. Body: the proposed SyncStateSet with
    /// the SyncStateSet epoch the master knows.
    pub struct AlterSyncStateSetRequestHeader {
        /// Broker group name.
        broker_name: String = "brokerName",
        /// The proposing master's controller id.
        master_broker_id: i64 = "masterBrokerId",
        /// The master epoch it holds.
        master_epoch: i32 = "masterEpoch",
        /// Client clock, ms.
        invoke_time: Option<i64> = "invokeTime",
    }
}

command_header! {
    /// CONTROLLER_ALTER_SYNC_STATE_SET (1001) response.
    pub struct AlterSyncStateSetResponseHeader {
        /// The new SyncStateSet epoch.
        new_sync_state_set_epoch: Option<i32> = "newSyncStateSetEpoch",
    }
}

command_header! {
    /// CONTROLLER_ELECT_MASTER (1002) request: broker-triggered (own id), controller- or
    /// tool-triggered (no id), or an admin's designated election (`designateElect`).
    pub struct ElectMasterRequestHeader {
        /// Cluster name.
        cluster_name: Option<String> = "clusterName",
        /// Broker group name.
        broker_name: Option<String> = "brokerName",
        /// The candidate (-1 or absent: let the policy choose).
        broker_id: Option<i64> = "brokerId",
        /// Elect exactly `brokerId` if it is eligible.
        designate_elect: Option<bool> = "designateElect",
        /// Client clock, ms.
        invoke_time: Option<i64> = "invokeTime",
    }
}

command_header! {
    /// CONTROLLER_ELECT_MASTER (1002) response. Body:
    /// [`ElectMasterResponseBody`](crate::controller::ElectMasterResponseBody).
    pub struct ElectMasterResponseHeader {
        /// The master's controller id.
        master_broker_id: Option<i64> = "masterBrokerId",
        /// The master's address.
        master_address: Option<String> = "masterAddress",
        /// The master epoch.
        master_epoch: Option<i32> = "masterEpoch",
        /// The SyncStateSet epoch.
        sync_state_set_epoch: Option<i32> = "syncStateSetEpoch",
    }
}

command_header! {
    /// CONTROLLER_GET_METADATA_INFO (1005) response; every controller answers.
    pub struct GetMetaDataResponseHeader {
        /// Consensus group name.
        group: Option<String> = "group",
        /// Peer id of the leader (e.g. `n0`).
        controller_leader_id: Option<String> = "controllerLeaderId",
        /// Address of the leader.
        controller_leader_address: Option<String> = "controllerLeaderAddress",
        /// Whether the answering controller leads.
        is_leader: Option<bool> = "isLeader",
        /// `id:addr;id:addr;` of every peer.
        peers: Option<String> = "peers",
    }
}

command_header! {
    /// CONTROLLER_NOT_LEADER (2007) answers carry the leader (our addition: Java sends no
    /// header, so its clients look the leader up with GET_METADATA_INFO instead).
    pub struct NotLeaderResponseHeader {
        /// Address of the leader, when one is known.
        controller_leader_address: Option<String> = "controllerLeaderAddress",
    }
}

command_header! {
    /// CLEAN_BROKER_DATA (1011) request.
    pub struct CleanControllerBrokerDataRequestHeader {
        /// Cluster name.
        cluster_name: Option<String> = "clusterName",
        /// Broker group name.
        broker_name: String = "brokerName",
        /// `1;2;3`: the ids to drop (absent: the whole group).
        broker_controller_ids_to_clean: Option<String> = "brokerControllerIdsToClean",
        /// Also drop brokers that are alive.
        is_clean_living_broker: Option<bool> = "isCleanLivingBroker",
        /// Client clock, ms.
        invoke_time: Option<i64> = "invokeTime",
    }
}

command_header! {
    /// NOTIFY_BROKER_ROLE_CHANGED (1008), controller → broker, oneway. Body: the new
    /// SyncStateSet.
    pub struct NotifyBrokerRoleChangedRequestHeader {
        /// The master's address.
        master_address: Option<String> = "masterAddress",
        /// The master epoch.
        master_epoch: Option<i32> = "masterEpoch",
        /// The SyncStateSet epoch.
        sync_state_set_epoch: Option<i32> = "syncStateSetEpoch",
        /// The master's controller id.
        master_broker_id: Option<i64> = "masterBrokerId",
    }
}
