//! The controller protocol's bodies (`SyncStateSet`, `ElectMasterResponseBody`,
//! `BrokerReplicasInfo`, `EpochEntryCache`), shared by the controller, the broker and
//! mqadmin. JSON with Java's getter names; read them with
//! [`from_slice_lenient`](crate::json::from_slice_lenient), since fastjson may write integer
//! map keys bare.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::route::BrokerMemberGroup;

/// A group's SyncStateSet: the replicas that hold everything the master acknowledged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncStateSet {
    /// Controller ids of the members.
    #[serde(default)]
    pub sync_state_set: BTreeSet<i64>,
    /// Bumped on every change.
    #[serde(default)]
    pub sync_state_set_epoch: i32,
}

/// CONTROLLER_ELECT_MASTER (1002) response body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElectMasterResponseBody {
    /// Every registered member of the group (only when a new master was elected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker_member_group: Option<BrokerMemberGroup>,
    /// The SyncStateSet after the election.
    #[serde(default)]
    pub sync_state_set: BTreeSet<i64>,
}

/// One replica in [`BrokerReplicasInfo`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaIdentity {
    /// Broker group name.
    pub broker_name: String,
    /// Controller id.
    pub broker_id: i64,
    /// Remoting address.
    pub broker_address: String,
    /// Whether it heartbeats to the answering controller.
    #[serde(default)]
    pub alive: bool,
}

/// One group in [`BrokerReplicasInfo`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupReplicasInfo {
    /// The master's controller id.
    #[serde(default)]
    pub master_broker_id: Option<i64>,
    /// The master's address.
    #[serde(default)]
    pub master_address: Option<String>,
    /// Master epoch.
    #[serde(default)]
    pub master_epoch: i32,
    /// SyncStateSet epoch.
    #[serde(default)]
    pub sync_state_set_epoch: i32,
    /// Members of the SyncStateSet.
    #[serde(default)]
    pub in_sync_replicas: Vec<ReplicaIdentity>,
    /// Registered members outside it.
    #[serde(default)]
    pub not_in_sync_replicas: Vec<ReplicaIdentity>,
}

/// CONTROLLER_GET_SYNC_STATE_DATA (1006) response body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BrokerReplicasInfo {
    /// Group name → its replicas.
    #[serde(default)]
    pub replicas_info_table: BTreeMap<String, GroupReplicasInfo>,
}

/// A master term in a broker's CommitLog: from `start_offset` (inclusive) to `end_offset`
/// (exclusive; `i64::MAX` while open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EpochEntry {
    /// Master epoch.
    pub epoch: i32,
    /// First CommitLog offset written in it.
    pub start_offset: i64,
    /// Offset where the next epoch starts.
    pub end_offset: i64,
}

/// GET_BROKER_EPOCH_CACHE (1007) response body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EpochEntryCache {
    /// Cluster name.
    pub cluster_name: String,
    /// Broker group name.
    pub broker_name: String,
    /// The broker's current id towards name servers (0 on the master).
    pub broker_id: i64,
    /// Every epoch it holds, oldest first.
    #[serde(default)]
    pub epoch_list: Vec<EpochEntry>,
    /// Its CommitLog max offset.
    pub max_offset: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::from_slice_lenient;

    #[test]
    fn bodies_use_java_names_and_accept_bare_keys() {
        let s = SyncStateSet {
            sync_state_set: [1, 3].into(),
            sync_state_set_epoch: 4,
        };
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"syncStateSet":[1,3],"syncStateSetEpoch":4}"#
        );
        let java = br#"{"brokerMemberGroup":{"brokerAddrs":{1:"10.0.0.1:10911",2:"10.0.0.2:10911"},"brokerName":"b","cluster":"c"},"syncStateSet":[2]}"#;
        let body: ElectMasterResponseBody = from_slice_lenient(java).unwrap();
        let group = body.broker_member_group.unwrap();
        assert_eq!(group.broker_addrs[&2], "10.0.0.2:10911");
        assert_eq!(body.sync_state_set, [2].into());
        let cache: EpochEntryCache = serde_json::from_str(
            r#"{"clusterName":"c","brokerName":"b","brokerId":0,"epochList":[{"epoch":1,"startOffset":0,"endOffset":9223372036854775807}],"maxOffset":10}"#,
        )
        .unwrap();
        assert_eq!(cache.epoch_list[0].end_offset, i64::MAX);
    }
}
