//! The replicated state and the pure decisions over it.
//!
//! Per broker group (keyed by `brokerName`, as in RocketMQ): the registered replicas with
//! their controller ids, the master, the master epoch, the SyncStateSet and its epoch.
//! Requests are decided against the leader's state ([`ReplicasState`]'s `decide_*`
//! methods, which never mutate) and turn into [`Event`]s; the consensus log carries the
//! events and every controller applies them in order with [`ReplicasState::apply`]. Both
//! halves are deterministic functions of their inputs, so they are tested without any I/O.

use std::collections::{BTreeMap, BTreeSet};

use rocketmq_common::controller::{
    BrokerReplicasInfo, ElectMasterResponseBody, GroupReplicasInfo, ReplicaIdentity, SyncStateSet,
};
use rocketmq_common::protocol::ResponseCode;
use rocketmq_common::route::BrokerMemberGroup;
use serde::{Deserialize, Serialize};

/// Controller ids start here; 0 only means "master" towards name servers.
pub const FIRST_BROKER_CONTROLLER_ID: i64 = 1;

/// A registered replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerIdentity {
    /// Remoting address.
    pub address: String,
    /// `<addr>;<millis>` it applied with (makes a retried apply idempotent).
    pub register_check_code: String,
}

/// One broker group's replication state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerGroup {
    /// Cluster name.
    pub cluster_name: String,
    /// Group name.
    pub broker_name: String,
    /// The id GET_NEXT_BROKER_ID hands out.
    pub next_assign_broker_id: i64,
    /// Controller id → identity.
    pub brokers: BTreeMap<i64, BrokerIdentity>,
    /// Current master, if any.
    pub master_broker_id: Option<i64>,
    /// Bumped on every election (also a failed one).
    pub master_epoch: i32,
    /// Replicas known to hold everything the master acknowledged.
    pub sync_state_set: BTreeSet<i64>,
    /// Bumped on every SyncStateSet change.
    pub sync_state_set_epoch: i32,
}

impl BrokerGroup {
    fn master_address(&self) -> Option<&str> {
        self.master_broker_id
            .and_then(|id| self.brokers.get(&id))
            .map(|b| b.address.as_str())
    }

    fn sync_state_set_body(&self) -> SyncStateSet {
        SyncStateSet {
            sync_state_set: self.sync_state_set.clone(),
            sync_state_set_epoch: self.sync_state_set_epoch,
        }
    }

    fn member_group(&self) -> BrokerMemberGroup {
        BrokerMemberGroup {
            broker_addrs: self
                .brokers
                .iter()
                .map(|(id, b)| (*id, b.address.clone()))
                .collect(),
            broker_name: self.broker_name.clone(),
            cluster: self.cluster_name.clone(),
        }
    }
}

/// A change to the state, as carried by the consensus log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Event {
    /// A replica took a controller id.
    #[serde(rename_all = "camelCase")]
    ApplyBrokerId {
        /// Cluster name.
        cluster_name: String,
        /// Group name.
        broker_name: String,
        /// Its address.
        broker_address: String,
        /// The id.
        new_broker_id: i64,
        /// Its check code.
        register_check_code: String,
    },
    /// A replica moved to another address.
    #[serde(rename_all = "camelCase")]
    UpdateBrokerAddress {
        /// Group name.
        broker_name: String,
        /// The replica.
        broker_id: i64,
        /// New address.
        broker_address: String,
    },
    /// A new master (or none: the old one died and nobody could take over).
    #[serde(rename_all = "camelCase")]
    ElectMaster {
        /// Group name.
        broker_name: String,
        /// The new master.
        new_master_broker_id: Option<i64>,
    },
    /// The master's new SyncStateSet.
    #[serde(rename_all = "camelCase")]
    AlterSyncStateSet {
        /// Group name.
        broker_name: String,
        /// The new set.
        new_sync_state_set: BTreeSet<i64>,
    },
    /// Drop replicas (all of the group when `broker_ids` is `None`).
    #[serde(rename_all = "camelCase")]
    CleanBrokerData {
        /// Group name.
        broker_name: String,
        /// The replicas to drop.
        broker_ids: Option<BTreeSet<i64>>,
    },
}

impl Event {
    /// The group the event changes.
    pub fn broker_name(&self) -> &str {
        match self {
            Event::ApplyBrokerId { broker_name, .. }
            | Event::UpdateBrokerAddress { broker_name, .. }
            | Event::ElectMaster { broker_name, .. }
            | Event::AlterSyncStateSet { broker_name, .. }
            | Event::CleanBrokerData { broker_name, .. } => broker_name,
        }
    }
}

/// A refused request: the response code and remark the client gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Response code.
    pub code: ResponseCode,
    /// Remark.
    pub remark: String,
}

fn refuse<T>(code: ResponseCode, remark: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal {
        code,
        remark: remark.into(),
    })
}

/// What a controller knows about a live replica from its heartbeats (election inputs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveInfo {
    /// Last epoch in the replica's epoch file.
    pub epoch: i32,
    /// Its CommitLog max offset.
    pub max_offset: i64,
    /// Election priority: smaller wins ties.
    pub election_priority: i32,
}

/// Liveness as seen by the deciding controller: `live(brokerName, id)` is `Some` while the
/// replica heartbeats.
pub trait Liveness {
    /// Heartbeat facts of a live replica, `None` if it is not alive.
    fn live(&self, broker_name: &str, broker_id: i64) -> Option<LiveInfo>;
    /// Whether the replica is alive.
    fn is_alive(&self, broker_name: &str, broker_id: i64) -> bool {
        self.live(broker_name, broker_id).is_some()
    }
}

/// Picks a master among `candidates` (RocketMQ's `DefaultElectPolicy`): keep the old master
/// while it is alive (unless another replica is preferred); a preferred replica if alive;
/// otherwise the live candidate with the highest epoch, then the highest max offset, then
/// the lowest priority value, then the lowest id.
pub fn elect_policy(
    broker_name: &str,
    candidates: &BTreeSet<i64>,
    old_master: Option<i64>,
    preferred: Option<i64>,
    liveness: &dyn Liveness,
) -> Option<i64> {
    let alive: Vec<(i64, LiveInfo)> = candidates
        .iter()
        .filter_map(|id| liveness.live(broker_name, *id).map(|l| (*id, l)))
        .collect();
    if alive.is_empty() {
        return None;
    }
    if let Some(old) = old_master
        && alive.iter().any(|(id, _)| *id == old)
        && preferred.is_none_or(|p| p == old)
    {
        return Some(old);
    }
    if let Some(p) = preferred {
        return alive.iter().find(|(id, _)| *id == p).map(|(id, _)| *id);
    }
    alive
        .into_iter()
        .min_by(|(a_id, a), (b_id, b)| {
            b.epoch
                .cmp(&a.epoch)
                .then(b.max_offset.cmp(&a.max_offset))
                .then(a.election_priority.cmp(&b.election_priority))
                .then(a_id.cmp(b_id))
        })
        .map(|(id, _)| id)
}

/// An election request (CONTROLLER_ELECT_MASTER).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectRequest {
    /// Group name.
    pub broker_name: String,
    /// The candidate: the asking broker's own id, an admin's designated id, or `None` when
    /// a controller (or tool) lets the policy choose.
    pub broker_id: Option<i64>,
    /// An admin designates `broker_id`.
    pub designate: bool,
}

/// The master facts every election answer carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterView {
    /// Master id.
    pub master_broker_id: Option<i64>,
    /// Master address.
    pub master_address: Option<String>,
    /// Master epoch.
    pub master_epoch: i32,
    /// SyncStateSet epoch.
    pub sync_state_set_epoch: i32,
}

/// How an election request ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectOutcome {
    /// SUCCESS (new master), CONTROLLER_MASTER_STILL_EXIST, CONTROLLER_MASTER_NOT_AVAILABLE
    /// (nobody could take over; the master is cleared), or CONTROLLER_ELECT_MASTER_FAILED.
    pub code: ResponseCode,
    /// Remark.
    pub remark: String,
    /// Master facts after the event (if any) is applied.
    pub view: MasterView,
    /// Response body.
    pub body: ElectMasterResponseBody,
    /// The change to commit.
    pub event: Option<Event>,
}

/// The controller's whole replicated state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicasState {
    /// Group name → group.
    pub groups: BTreeMap<String, BrokerGroup>,
}

impl ReplicasState {
    /// Applies a committed event. Total: an event that no longer fits (its group is gone)
    /// changes nothing, so replaying the log always reaches the same state.
    pub fn apply(&mut self, event: &Event) {
        match event {
            Event::ApplyBrokerId {
                cluster_name,
                broker_name,
                broker_address,
                new_broker_id,
                register_check_code,
            } => {
                let group = self
                    .groups
                    .entry(broker_name.clone())
                    .or_insert_with(|| BrokerGroup {
                        cluster_name: cluster_name.clone(),
                        broker_name: broker_name.clone(),
                        next_assign_broker_id: FIRST_BROKER_CONTROLLER_ID,
                        brokers: BTreeMap::new(),
                        master_broker_id: None,
                        master_epoch: 0,
                        sync_state_set: BTreeSet::new(),
                        sync_state_set_epoch: 0,
                    });
                if !group.brokers.contains_key(new_broker_id) {
                    group.brokers.insert(
                        *new_broker_id,
                        BrokerIdentity {
                            address: broker_address.clone(),
                            register_check_code: register_check_code.clone(),
                        },
                    );
                    group.next_assign_broker_id =
                        group.next_assign_broker_id.max(*new_broker_id) + 1;
                }
            }
            Event::UpdateBrokerAddress {
                broker_name,
                broker_id,
                broker_address,
            } => {
                if let Some(b) = self
                    .groups
                    .get_mut(broker_name)
                    .and_then(|g| g.brokers.get_mut(broker_id))
                {
                    b.address = broker_address.clone();
                }
            }
            Event::ElectMaster {
                broker_name,
                new_master_broker_id,
            } => {
                if let Some(g) = self.groups.get_mut(broker_name) {
                    g.master_epoch += 1;
                    g.master_broker_id = *new_master_broker_id;
                    if let Some(id) = new_master_broker_id {
                        g.sync_state_set = [*id].into();
                        g.sync_state_set_epoch += 1;
                    }
                }
            }
            Event::AlterSyncStateSet {
                broker_name,
                new_sync_state_set,
            } => {
                if let Some(g) = self.groups.get_mut(broker_name) {
                    g.sync_state_set = new_sync_state_set.clone();
                    g.sync_state_set_epoch += 1;
                }
            }
            Event::CleanBrokerData {
                broker_name,
                broker_ids,
            } => match broker_ids {
                None => {
                    self.groups.remove(broker_name);
                }
                Some(ids) => {
                    if let Some(g) = self.groups.get_mut(broker_name) {
                        for id in ids {
                            g.brokers.remove(id);
                            g.sync_state_set.remove(id);
                            if g.master_broker_id == Some(*id) {
                                g.master_broker_id = None;
                            }
                        }
                        if g.brokers.is_empty() {
                            self.groups.remove(broker_name);
                        }
                    }
                }
            },
        }
    }

    fn group(&self, broker_name: &str) -> Option<&BrokerGroup> {
        self.groups.get(broker_name)
    }

    /// CONTROLLER_GET_NEXT_BROKER_ID.
    pub fn next_broker_id(&self, broker_name: &str) -> i64 {
        self.group(broker_name)
            .map_or(FIRST_BROKER_CONTROLLER_ID, |g| g.next_assign_broker_id)
    }

    /// CONTROLLER_APPLY_BROKER_ID: the event that records the id. A retry with the same
    /// check code is accepted again (and changes nothing).
    pub fn decide_apply_broker_id(
        &self,
        cluster_name: &str,
        broker_name: &str,
        broker_id: i64,
        register_check_code: &str,
    ) -> Result<Event, Refusal> {
        let address = register_check_code
            .split(';')
            .next()
            .unwrap_or_default()
            .to_string();
        let event = Event::ApplyBrokerId {
            cluster_name: cluster_name.to_string(),
            broker_name: broker_name.to_string(),
            broker_address: address,
            new_broker_id: broker_id,
            register_check_code: register_check_code.to_string(),
        };
        match self.group(broker_name) {
            None if broker_id == FIRST_BROKER_CONTROLLER_ID => Ok(event),
            None => refuse(
                ResponseCode::ControllerBrokerIdInvalid,
                format!(
                    "Fail to apply brokerId {broker_id} in broker-set {broker_name}: a new broker-set starts at {FIRST_BROKER_CONTROLLER_ID}"
                ),
            ),
            Some(g) => match g.brokers.get(&broker_id) {
                None if broker_id >= FIRST_BROKER_CONTROLLER_ID => Ok(event),
                Some(b) if b.register_check_code == register_check_code => Ok(event),
                _ => refuse(
                    ResponseCode::ControllerBrokerIdInvalid,
                    format!(
                        "Fail to apply brokerId {broker_id} in broker-set {broker_name}: it is taken; the next free id is {}",
                        g.next_assign_broker_id
                    ),
                ),
            },
        }
    }

    /// CONTROLLER_REGISTER_BROKER: the master facts (only with a live master), the
    /// SyncStateSet, and an address update when the replica moved.
    pub fn decide_register(
        &self,
        broker_name: &str,
        broker_id: i64,
        broker_address: &str,
        liveness: &dyn Liveness,
    ) -> Result<(MasterView, SyncStateSet, Option<Event>), Refusal> {
        let Some(g) = self.group(broker_name) else {
            return refuse(
                ResponseCode::ControllerBrokerNeedToBeRegistered,
                format!("Broker-set {broker_name} hasn't been registered in the controller"),
            );
        };
        let Some(b) = g.brokers.get(&broker_id) else {
            return refuse(
                ResponseCode::ControllerBrokerNeedToBeRegistered,
                format!("BrokerId {broker_id} hasn't been registered in broker-set {broker_name}"),
            );
        };
        let event = (b.address != broker_address).then(|| Event::UpdateBrokerAddress {
            broker_name: broker_name.to_string(),
            broker_id,
            broker_address: broker_address.to_string(),
        });
        let live_master = g
            .master_broker_id
            .filter(|m| liveness.is_alive(broker_name, *m));
        let view = MasterView {
            master_broker_id: live_master,
            master_address: live_master.and_then(|m| {
                if m == broker_id {
                    Some(broker_address.to_string())
                } else {
                    g.brokers.get(&m).map(|b| b.address.clone())
                }
            }),
            master_epoch: g.master_epoch,
            sync_state_set_epoch: g.sync_state_set_epoch,
        };
        Ok((view, g.sync_state_set_body(), event))
    }

    /// CONTROLLER_GET_REPLICA_INFO (no liveness filter, as in RocketMQ).
    pub fn replica_info(&self, broker_name: &str) -> Result<(MasterView, SyncStateSet), Refusal> {
        let Some(g) = self.group(broker_name) else {
            return refuse(
                ResponseCode::ControllerBrokerMetadataNotExist,
                "Broker metadata is not existed",
            );
        };
        Ok((
            MasterView {
                master_broker_id: g.master_broker_id,
                master_address: g.master_address().map(str::to_string),
                master_epoch: g.master_epoch,
                sync_state_set_epoch: g.sync_state_set_epoch,
            },
            g.sync_state_set_body(),
        ))
    }

    /// CONTROLLER_ALTER_SYNC_STATE_SET from the master: checked against the master id and
    /// both epochs, so a deposed master cannot change anything.
    pub fn decide_alter_sync_state_set(
        &self,
        broker_name: &str,
        master_broker_id: i64,
        master_epoch: i32,
        proposed: &SyncStateSet,
        liveness: &dyn Liveness,
    ) -> Result<(SyncStateSet, Event), Refusal> {
        let failed = ResponseCode::ControllerAlterSyncStateSetFailed;
        let Some(g) = self.group(broker_name) else {
            return refuse(failed, "Broker metadata is not existed");
        };
        if proposed.sync_state_set == g.sync_state_set {
            return refuse(
                failed,
                "The newSyncStateSet is equal with oldSyncStateSet, no needed to update syncStateSet",
            );
        }
        if g.master_broker_id != Some(master_broker_id) {
            return refuse(
                ResponseCode::ControllerInvalidMaster,
                format!(
                    "Rejecting alter syncStateSet request because the current leader is:{:?}, not {master_broker_id}",
                    g.master_broker_id
                ),
            );
        }
        if master_epoch != g.master_epoch {
            return refuse(
                ResponseCode::ControllerFencedMasterEpoch,
                format!(
                    "Rejecting alter syncStateSet request because the current master epoch is:{}, not {master_epoch}",
                    g.master_epoch
                ),
            );
        }
        if proposed.sync_state_set_epoch != g.sync_state_set_epoch {
            return refuse(
                ResponseCode::ControllerFencedSyncStateSetEpoch,
                format!(
                    "Rejecting alter syncStateSet request because the current syncStateSet epoch is:{}, not {}",
                    g.sync_state_set_epoch, proposed.sync_state_set_epoch
                ),
            );
        }
        for id in &proposed.sync_state_set {
            if !g.brokers.contains_key(id) {
                return refuse(
                    ResponseCode::ControllerInvalidReplicas,
                    format!(
                        "Rejecting alter syncStateSet request because the replicas {id} don't exist"
                    ),
                );
            }
            if !liveness.is_alive(broker_name, *id) {
                return refuse(
                    ResponseCode::ControllerBrokerNotAlive,
                    format!(
                        "Rejecting alter syncStateSet request because the replicas {id} don't alive"
                    ),
                );
            }
        }
        if !proposed.sync_state_set.contains(&master_broker_id) {
            return refuse(
                failed,
                format!(
                    "Rejecting alter syncStateSet request because the newSyncStateSet don't contains origin leader {master_broker_id}"
                ),
            );
        }
        Ok((
            SyncStateSet {
                sync_state_set: proposed.sync_state_set.clone(),
                sync_state_set_epoch: g.sync_state_set_epoch + 1,
            },
            Event::AlterSyncStateSet {
                broker_name: broker_name.to_string(),
                new_sync_state_set: proposed.sync_state_set.clone(),
            },
        ))
    }

    /// CONTROLLER_ELECT_MASTER: RocketMQ's `electMaster` decision.
    pub fn decide_elect_master(
        &self,
        req: &ElectRequest,
        enable_elect_unclean_master: bool,
        liveness: &dyn Liveness,
    ) -> Result<ElectOutcome, Refusal> {
        let Some(g) = self.group(&req.broker_name) else {
            return refuse(
                ResponseCode::ControllerBrokerNeedToBeRegistered,
                format!("Broker-set {} hasn't been registered", req.broker_name),
            );
        };
        let candidate = req.broker_id.filter(|id| *id >= FIRST_BROKER_CONTROLLER_ID);
        let elected = if g.master_epoch == 0 && candidate.is_some() {
            // The very first election: the asking replica takes it (it is the one that is
            // up); no data can be lost yet.
            candidate.filter(|id| g.brokers.contains_key(id))
        } else {
            let preferred = candidate.filter(|_| req.designate);
            elect_policy(
                &req.broker_name,
                &g.sync_state_set,
                g.master_broker_id,
                preferred,
                liveness,
            )
            .or_else(|| {
                enable_elect_unclean_master
                    .then(|| {
                        let all: BTreeSet<i64> = g.brokers.keys().copied().collect();
                        elect_policy(
                            &req.broker_name,
                            &all,
                            g.master_broker_id,
                            preferred,
                            liveness,
                        )
                    })
                    .flatten()
            })
        };
        let current = MasterView {
            master_broker_id: g.master_broker_id,
            master_address: g.master_address().map(str::to_string),
            master_epoch: g.master_epoch,
            sync_state_set_epoch: g.sync_state_set_epoch,
        };
        match elected {
            Some(id) if Some(id) == g.master_broker_id => Ok(ElectOutcome {
                code: ResponseCode::ControllerMasterStillExist,
                remark: "The old master is still alive, no need to elect new master".into(),
                view: current,
                body: ElectMasterResponseBody {
                    broker_member_group: None,
                    sync_state_set: g.sync_state_set.clone(),
                },
                event: None,
            }),
            Some(id) => Ok(ElectOutcome {
                code: ResponseCode::Success,
                remark: format!("Elected broker {id} of {} as master", req.broker_name),
                view: MasterView {
                    master_broker_id: Some(id),
                    master_address: g.brokers.get(&id).map(|b| b.address.clone()),
                    master_epoch: g.master_epoch + 1,
                    sync_state_set_epoch: g.sync_state_set_epoch + 1,
                },
                body: ElectMasterResponseBody {
                    broker_member_group: Some(g.member_group()),
                    sync_state_set: [id].into(),
                },
                event: Some(Event::ElectMaster {
                    broker_name: req.broker_name.clone(),
                    new_master_broker_id: Some(id),
                }),
            }),
            None if candidate.is_none() && g.master_broker_id.is_some() => Ok(ElectOutcome {
                code: ResponseCode::ControllerMasterNotAvailable,
                remark: "Old master has down and failed to elect a new broker master".into(),
                view: MasterView {
                    master_broker_id: None,
                    master_address: None,
                    master_epoch: g.master_epoch + 1,
                    sync_state_set_epoch: g.sync_state_set_epoch,
                },
                body: ElectMasterResponseBody {
                    broker_member_group: None,
                    sync_state_set: g.sync_state_set.clone(),
                },
                event: Some(Event::ElectMaster {
                    broker_name: req.broker_name.clone(),
                    new_master_broker_id: None,
                }),
            }),
            None => refuse(
                ResponseCode::ControllerElectMasterFailed,
                "Failed to elect a new master",
            ),
        }
    }

    /// CLEAN_BROKER_DATA.
    pub fn decide_clean_broker_data(
        &self,
        broker_name: &str,
        ids: Option<&str>,
        clean_living: bool,
        liveness: &dyn Liveness,
    ) -> Result<Event, Refusal> {
        let invalid = ResponseCode::ControllerInvalidCleanBrokerMetadata;
        let Some(g) = self.group(broker_name) else {
            return refuse(
                invalid,
                format!("Broker-set {broker_name} is not registered"),
            );
        };
        let ids: Option<BTreeSet<i64>> = match ids.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(list) => Some(
                list.split(';')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| s.trim().parse::<i64>())
                    .collect::<Result<_, _>>()
                    .map_err(|_| Refusal {
                        code: invalid,
                        remark: format!("Please set the option <brokerControllerIdsToClean> according to the format: {list:?} is not a list of ids separated by ';'"),
                    })?,
            ),
        };
        if !clean_living {
            let targets: Vec<i64> = match &ids {
                Some(ids) => ids.iter().copied().collect(),
                None => g.brokers.keys().copied().collect(),
            };
            if let Some(alive) = targets
                .iter()
                .find(|id| liveness.is_alive(broker_name, **id))
            {
                return refuse(
                    invalid,
                    format!(
                        "Broker {alive} of {broker_name} is still alive; set isCleanLivingBroker to clean it"
                    ),
                );
            }
        }
        Ok(Event::CleanBrokerData {
            broker_name: broker_name.to_string(),
            broker_ids: ids,
        })
    }

    /// CONTROLLER_GET_SYNC_STATE_DATA for `broker_names` (unknown names are skipped).
    pub fn sync_state_data(
        &self,
        broker_names: &[String],
        liveness: &dyn Liveness,
    ) -> BrokerReplicasInfo {
        let mut out = BrokerReplicasInfo::default();
        for name in broker_names {
            let Some(g) = self.group(name) else { continue };
            let mut info = GroupReplicasInfo {
                master_broker_id: g.master_broker_id,
                master_address: g.master_address().map(str::to_string),
                master_epoch: g.master_epoch,
                sync_state_set_epoch: g.sync_state_set_epoch,
                ..GroupReplicasInfo::default()
            };
            for (id, b) in &g.brokers {
                let r = ReplicaIdentity {
                    broker_name: name.clone(),
                    broker_id: *id,
                    broker_address: b.address.clone(),
                    alive: liveness.is_alive(name, *id),
                };
                if g.sync_state_set.contains(id) {
                    info.in_sync_replicas.push(r);
                } else {
                    info.not_in_sync_replicas.push(r);
                }
            }
            out.replicas_info_table.insert(name.clone(), info);
        }
        out
    }

    /// Groups whose master is not alive while some replica is (the leader re-elects them:
    /// covers a master that died while another controller led).
    pub fn groups_needing_election(&self, liveness: &dyn Liveness) -> Vec<String> {
        self.groups
            .values()
            .filter(|g| {
                let master_alive = g
                    .master_broker_id
                    .is_some_and(|m| liveness.is_alive(&g.broker_name, m));
                !master_alive
                    && g.brokers
                        .keys()
                        .any(|id| liveness.is_alive(&g.broker_name, *id))
            })
            .map(|g| g.broker_name.clone())
            .collect()
    }

    /// The addresses of a group's live replicas (role-change notifications).
    pub fn live_member_addresses(&self, broker_name: &str, liveness: &dyn Liveness) -> Vec<String> {
        self.group(broker_name).map_or_else(Vec::new, |g| {
            g.brokers
                .iter()
                .filter(|(id, _)| liveness.is_alive(broker_name, **id))
                .map(|(_, b)| b.address.clone())
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Live(HashMap<i64, LiveInfo>);

    impl Live {
        fn with(mut self, id: i64, epoch: i32, max_offset: i64, priority: i32) -> Self {
            self.0.insert(
                id,
                LiveInfo {
                    epoch,
                    max_offset,
                    election_priority: priority,
                },
            );
            self
        }
    }

    impl Liveness for Live {
        fn live(&self, _: &str, id: i64) -> Option<LiveInfo> {
            self.0.get(&id).copied()
        }
    }

    fn registered(n: i64) -> ReplicasState {
        let mut s = ReplicasState::default();
        for id in 1..=n {
            let e = s
                .decide_apply_broker_id("c", "b", id, &format!("10.0.0.{id}:10911;1"))
                .unwrap();
            s.apply(&e);
        }
        s
    }

    fn elect(s: &mut ReplicasState, id: Option<i64>, live: &Live) -> ElectOutcome {
        let out = s
            .decide_elect_master(
                &ElectRequest {
                    broker_name: "b".into(),
                    broker_id: id,
                    designate: false,
                },
                false,
                live,
            )
            .unwrap();
        if let Some(e) = &out.event {
            s.apply(e);
        }
        out
    }

    #[test]
    fn broker_ids_are_handed_out_and_applied_idempotently() {
        let mut s = ReplicasState::default();
        assert_eq!(s.next_broker_id("b"), 1);
        assert_eq!(
            s.decide_apply_broker_id("c", "b", 2, "a;1")
                .unwrap_err()
                .code,
            ResponseCode::ControllerBrokerIdInvalid
        );
        let e = s
            .decide_apply_broker_id("c", "b", 1, "10.0.0.1:1;5")
            .unwrap();
        s.apply(&e);
        assert_eq!(s.next_broker_id("b"), 2);
        // The same broker retrying (same check code) is fine and changes nothing.
        let again = s
            .decide_apply_broker_id("c", "b", 1, "10.0.0.1:1;5")
            .unwrap();
        s.apply(&again);
        assert_eq!(s.next_broker_id("b"), 2);
        assert_eq!(s.groups["b"].brokers[&1].address, "10.0.0.1:1");
        // Another broker may not take the id.
        assert_eq!(
            s.decide_apply_broker_id("c", "b", 1, "10.0.0.9:1;6")
                .unwrap_err()
                .code,
            ResponseCode::ControllerBrokerIdInvalid
        );
    }

    #[test]
    fn first_election_takes_the_asking_broker_and_resets_the_sync_state_set() {
        let mut s = registered(3);
        let live = Live::default().with(1, 0, 0, 0).with(2, 0, 0, 0);
        let out = elect(&mut s, Some(2), &live);
        assert_eq!(out.code, ResponseCode::Success);
        assert_eq!(out.view.master_broker_id, Some(2));
        assert_eq!(out.view.master_epoch, 1);
        assert_eq!(out.body.sync_state_set, [2].into());
        assert_eq!(out.body.broker_member_group.unwrap().broker_addrs.len(), 3);
        let g = &s.groups["b"];
        assert_eq!(
            (g.master_broker_id, g.master_epoch, g.sync_state_set_epoch),
            (Some(2), 1, 1)
        );
        // Asking again while the master lives: it stays.
        let out = elect(&mut s, Some(1), &live);
        assert_eq!(out.code, ResponseCode::ControllerMasterStillExist);
        assert_eq!(out.view.master_epoch, 1);
        assert!(out.event.is_none());
    }

    #[test]
    fn failover_picks_the_most_complete_live_member_of_the_sync_state_set() {
        let mut s = registered(4);
        let live = Live::default().with(1, 0, 0, 0);
        elect(&mut s, Some(1), &live);
        let (set, e) = s
            .decide_alter_sync_state_set(
                "b",
                1,
                1,
                &SyncStateSet {
                    sync_state_set: [1, 2, 3].into(),
                    sync_state_set_epoch: 1,
                },
                &Live::default()
                    .with(1, 1, 0, 0)
                    .with(2, 1, 0, 0)
                    .with(3, 1, 0, 0),
            )
            .unwrap();
        assert_eq!(set.sync_state_set_epoch, 2);
        s.apply(&e);
        // Master 1 died. 4 has the most data but is outside the set: never elected cleanly.
        let live = Live::default()
            .with(2, 1, 500, 5)
            .with(3, 1, 500, 1)
            .with(4, 1, 900, 0);
        let out = elect(&mut s, None, &live);
        assert_eq!(out.code, ResponseCode::Success);
        assert_eq!(
            out.view.master_broker_id,
            Some(3),
            "equal offsets: lower priority wins"
        );
        assert_eq!(out.view.master_epoch, 2);
        assert_eq!(s.groups["b"].sync_state_set, [3].into());
        // A higher epoch beats a larger offset.
        let mut s2 = s.clone();
        let live = Live::default().with(1, 2, 10, 0).with(2, 1, 999, 0);
        s2.apply(&Event::AlterSyncStateSet {
            broker_name: "b".into(),
            new_sync_state_set: [1, 2, 3].into(),
        });
        let out = elect(&mut s2, None, &live);
        assert_eq!(out.view.master_broker_id, Some(1));
    }

    #[test]
    fn nobody_to_take_over_clears_the_master_and_unclean_election_is_opt_in() {
        let mut s = registered(2);
        elect(&mut s, Some(1), &Live::default().with(1, 0, 0, 0));
        let only_2 = Live::default().with(2, 1, 10, 0);
        let out = s
            .decide_elect_master(
                &ElectRequest {
                    broker_name: "b".into(),
                    broker_id: None,
                    designate: false,
                },
                false,
                &only_2,
            )
            .unwrap();
        assert_eq!(out.code, ResponseCode::ControllerMasterNotAvailable);
        s.apply(out.event.as_ref().unwrap());
        assert_eq!(s.groups["b"].master_broker_id, None);
        assert_eq!(s.groups["b"].master_epoch, 2);
        // A broker asking for itself outside the set: refused without an event.
        let err = s
            .decide_elect_master(
                &ElectRequest {
                    broker_name: "b".into(),
                    broker_id: Some(2),
                    designate: false,
                },
                false,
                &only_2,
            )
            .unwrap_err();
        assert_eq!(err.code, ResponseCode::ControllerElectMasterFailed);
        let out = s
            .decide_elect_master(
                &ElectRequest {
                    broker_name: "b".into(),
                    broker_id: None,
                    designate: false,
                },
                true,
                &only_2,
            )
            .unwrap();
        assert_eq!(out.view.master_broker_id, Some(2));
    }

    #[test]
    fn alter_sync_state_set_fences_stale_masters() {
        let mut s = registered(3);
        elect(&mut s, Some(1), &Live::default().with(1, 0, 0, 0));
        let all = Live::default()
            .with(1, 1, 0, 0)
            .with(2, 1, 0, 0)
            .with(3, 1, 0, 0);
        let set = |ids: &[i64], epoch| SyncStateSet {
            sync_state_set: ids.iter().copied().collect(),
            sync_state_set_epoch: epoch,
        };
        let code = |r: Result<(SyncStateSet, Event), Refusal>| r.unwrap_err().code;
        assert_eq!(
            code(s.decide_alter_sync_state_set("b", 2, 1, &set(&[1, 2], 1), &all)),
            ResponseCode::ControllerInvalidMaster
        );
        assert_eq!(
            code(s.decide_alter_sync_state_set("b", 1, 0, &set(&[1, 2], 1), &all)),
            ResponseCode::ControllerFencedMasterEpoch
        );
        assert_eq!(
            code(s.decide_alter_sync_state_set("b", 1, 1, &set(&[1, 2], 0), &all)),
            ResponseCode::ControllerFencedSyncStateSetEpoch
        );
        assert_eq!(
            code(s.decide_alter_sync_state_set("b", 1, 1, &set(&[1, 7], 1), &all)),
            ResponseCode::ControllerInvalidReplicas
        );
        assert_eq!(
            code(s.decide_alter_sync_state_set(
                "b",
                1,
                1,
                &set(&[1, 2], 1),
                &Live::default().with(1, 1, 0, 0)
            )),
            ResponseCode::ControllerBrokerNotAlive
        );
        assert_eq!(
            code(s.decide_alter_sync_state_set("b", 1, 1, &set(&[2, 3], 1), &all)),
            ResponseCode::ControllerAlterSyncStateSetFailed
        );
        assert_eq!(
            code(s.decide_alter_sync_state_set("b", 1, 1, &set(&[1], 1), &all)),
            ResponseCode::ControllerAlterSyncStateSetFailed
        );
        let (new, e) = s
            .decide_alter_sync_state_set("b", 1, 1, &set(&[1, 2, 3], 1), &all)
            .unwrap();
        s.apply(&e);
        assert_eq!(new, set(&[1, 2, 3], 2));
        assert_eq!(s.replica_info("b").unwrap().1, new);
    }

    #[test]
    fn register_reports_only_a_live_master_and_tracks_moves() {
        let mut s = registered(2);
        elect(&mut s, Some(1), &Live::default().with(1, 0, 0, 0));
        let (view, set, event) = s
            .decide_register("b", 2, "10.0.0.2:10911", &Live::default().with(1, 1, 0, 0))
            .unwrap();
        assert_eq!(view.master_address.as_deref(), Some("10.0.0.1:10911"));
        assert_eq!(set.sync_state_set, [1].into());
        assert!(event.is_none());
        let (view, _, event) = s
            .decide_register("b", 2, "10.9.9.9:10911", &Live::default())
            .unwrap();
        assert_eq!(view.master_broker_id, None);
        s.apply(&event.unwrap());
        assert_eq!(s.groups["b"].brokers[&2].address, "10.9.9.9:10911");
        assert_eq!(
            s.decide_register("b", 5, "x", &Live::default())
                .unwrap_err()
                .code,
            ResponseCode::ControllerBrokerNeedToBeRegistered
        );
    }

    #[test]
    fn clean_broker_data_refuses_living_brokers_unless_told() {
        let mut s = registered(3);
        let live = Live::default().with(1, 0, 0, 0);
        assert_eq!(
            s.decide_clean_broker_data("b", Some("1;2"), false, &live)
                .unwrap_err()
                .code,
            ResponseCode::ControllerInvalidCleanBrokerMetadata
        );
        assert!(
            s.decide_clean_broker_data("b", Some("x"), true, &live)
                .is_err()
        );
        let e = s
            .decide_clean_broker_data("b", Some("2;3"), false, &live)
            .unwrap();
        s.apply(&e);
        assert_eq!(s.groups["b"].brokers.len(), 1);
        let e = s.decide_clean_broker_data("b", None, true, &live).unwrap();
        s.apply(&e);
        assert!(s.groups.is_empty());
    }

    #[test]
    fn events_round_trip_through_json() {
        let e = Event::ElectMaster {
            broker_name: "b".into(),
            new_master_broker_id: Some(3),
        };
        let text = serde_json::to_string(&e).unwrap();
        assert_eq!(
            text,
            r#"{"type":"electMaster","brokerName":"b","newMasterBrokerId":3}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), e);
    }
}
