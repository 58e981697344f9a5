//! Role-aware rolling restarts of broker groups.
//!
//! Broker StatefulSets use the `OnDelete` strategy, so a new pod template (image, config
//! hash, resources) changes nothing until a pod is deleted. The failover watcher, which knows
//! each group's master and SyncStateSet, deletes pods itself with [`plan_rollout`]'s step:
//! one pod at a time and only while every pod of the group is ready, alive for the
//! controllers and in the SyncStateSet; slaves first (highest ordinal first); then it hands
//! mastership to an updated in-sync replica (CONTROLLER_ELECT_MASTER with that replica
//! designated) and restarts the old master only once it is a slave. A pod annotated
//! `rocketmq.rs/manual-rolling-update: "true"` is restarted the same way.

use rocketmq_common::controller::GroupReplicasInfo;

use crate::failover::{BrokerPod, Election};

/// What to do next in one broker group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RolloutStep {
    /// Every pod runs the current template and no restart was asked for.
    Done,
    /// Restarts are due, but the group is not in a state to lose a pod (the reason says why).
    Wait(String),
    /// Delete this pod; its StatefulSet recreates it from the current template.
    Restart {
        /// The pod.
        pod: String,
        /// Why, for the Event.
        why: String,
    },
    /// Hand mastership over before the master is restarted.
    HandOver {
        /// The master pod that is due for a restart.
        from: String,
        /// The replica to elect.
        to: Election,
    },
}

/// The StatefulSet ordinal of a pod name (`demo-broker-0-2` → 2).
fn ordinal(pod: &str) -> i64 {
    pod.rsplit('-')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(-1)
}

/// The next step for a group with `desired` replicas whose StatefulSet's current template is
/// `update_revision` (`None`: unknown, only manual restarts are due).
pub fn plan_rollout(
    view: &GroupReplicasInfo,
    pods: &[BrokerPod],
    desired: i32,
    update_revision: Option<&str>,
) -> RolloutStep {
    let outdated =
        |p: &BrokerPod| update_revision.is_some_and(|r| p.revision.as_deref() != Some(r));
    let due: Vec<&BrokerPod> = pods
        .iter()
        .filter(|p| p.restart_requested || outdated(p))
        .collect();
    if due.is_empty() {
        return RolloutStep::Done;
    }
    if pods.len() < usize::try_from(desired).unwrap_or(0) {
        return RolloutStep::Wait(format!("{}/{desired} pods exist", pods.len()));
    }
    if let Some(p) = pods.iter().find(|p| !p.serving) {
        return RolloutStep::Wait(format!("pod {} is not ready", p.name));
    }
    let in_sync = |p: &BrokerPod| {
        view.in_sync_replicas
            .iter()
            .any(|r| r.alive && p.address.as_deref() == Some(r.broker_address.as_str()))
    };
    if desired > 1
        && let Some(p) = pods.iter().find(|p| !in_sync(p))
    {
        return RolloutStep::Wait(format!("pod {} is not in the SyncStateSet yet", p.name));
    }
    let master = view
        .master_address
        .as_deref()
        .and_then(|address| pods.iter().find(|p| p.address.as_deref() == Some(address)));
    let Some(master) = master else {
        return RolloutStep::Wait("the group has no master".into());
    };
    let why = |p: &BrokerPod| {
        if p.restart_requested {
            format!(
                "{MANUAL} requested",
                MANUAL = crate::failover::MANUAL_ROLLING_UPDATE_ANNOTATION
            )
        } else {
            format!(
                "revision {} -> {}",
                p.revision.as_deref().unwrap_or("unknown"),
                update_revision.unwrap_or_default()
            )
        }
    };
    if let Some(slave) = due
        .iter()
        .filter(|p| p.name != master.name)
        .max_by_key(|p| ordinal(&p.name))
    {
        return RolloutStep::Restart {
            pod: slave.name.clone(),
            why: format!("slave, {}", why(slave)),
        };
    }
    // Only the master is due.
    if desired <= 1 {
        return RolloutStep::Restart {
            pod: master.name.clone(),
            why: format!("the only replica, {}", why(master)),
        };
    }
    let successor = view
        .in_sync_replicas
        .iter()
        .filter(|r| r.alive && Some(r.broker_id) != view.master_broker_id)
        .filter_map(|r| {
            let pod = pods
                .iter()
                .find(|p| p.address.as_deref() == Some(r.broker_address.as_str()))?;
            (!pod.restart_requested && !outdated(pod)).then_some((r.broker_id, pod))
        })
        .min_by_key(|(_, pod)| ordinal(&pod.name));
    match successor {
        Some((id, pod)) => RolloutStep::HandOver {
            from: master.name.clone(),
            to: Election {
                designated: Some(id),
                candidate_pod: Some(pod.name.clone()),
            },
        },
        None => RolloutStep::Wait(format!(
            "no updated in-sync replica can take mastership from {}",
            master.name
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocketmq_common::controller::ReplicaIdentity;

    fn pod(i: usize, revision: &str) -> BrokerPod {
        BrokerPod {
            name: format!("demo-broker-0-{i}"),
            group: "demo-broker-0".into(),
            address: Some(format!("10.0.0.{i}:10911")),
            serving: true,
            role: None,
            revision: Some(revision.into()),
            restart_requested: false,
            uid: None,
        }
    }

    fn view(master: usize, in_sync: &[usize]) -> GroupReplicasInfo {
        GroupReplicasInfo {
            master_broker_id: Some(master as i64 + 1),
            master_address: Some(format!("10.0.0.{master}:10911")),
            master_epoch: 3,
            sync_state_set_epoch: 5,
            in_sync_replicas: in_sync
                .iter()
                .map(|i| ReplicaIdentity {
                    broker_name: "demo-broker-0".into(),
                    broker_id: *i as i64 + 1,
                    broker_address: format!("10.0.0.{i}:10911"),
                    alive: true,
                })
                .collect(),
            not_in_sync_replicas: Vec::new(),
        }
    }

    #[test]
    fn slaves_go_first_highest_ordinal_first_then_mastership_moves_then_the_old_master() {
        let all = [0, 1, 2];
        // Master is pod 1. Everything on r1, template now r2.
        let pods = [pod(0, "r1"), pod(1, "r1"), pod(2, "r1")];
        let step = plan_rollout(&view(1, &all), &pods, 3, Some("r2"));
        assert!(
            matches!(&step, RolloutStep::Restart { pod, why } if pod == "demo-broker-0-2" && why == "slave, revision r1 -> r2"),
            "{step:?}"
        );
        let pods = [pod(0, "r1"), pod(1, "r1"), pod(2, "r2")];
        let step = plan_rollout(&view(1, &all), &pods, 3, Some("r2"));
        assert!(
            matches!(&step, RolloutStep::Restart { pod, .. } if pod == "demo-broker-0-0"),
            "{step:?}"
        );
        let pods = [pod(0, "r2"), pod(1, "r1"), pod(2, "r2")];
        assert_eq!(
            plan_rollout(&view(1, &all), &pods, 3, Some("r2")),
            RolloutStep::HandOver {
                from: "demo-broker-0-1".into(),
                to: Election {
                    designated: Some(1),
                    candidate_pod: Some("demo-broker-0-0".into())
                }
            }
        );
        // After the hand-over pod 0 leads and the old master is an ordinary slave.
        let step = plan_rollout(&view(0, &all), &pods, 3, Some("r2"));
        assert!(
            matches!(&step, RolloutStep::Restart { pod, .. } if pod == "demo-broker-0-1"),
            "{step:?}"
        );
        let done = [pod(0, "r2"), pod(1, "r2"), pod(2, "r2")];
        assert_eq!(
            plan_rollout(&view(0, &all), &done, 3, Some("r2")),
            RolloutStep::Done
        );
    }

    #[test]
    fn nothing_moves_while_a_pod_is_down_missing_or_catching_up() {
        let all = [0, 1, 2];
        let mut pods = vec![pod(0, "r1"), pod(1, "r2"), pod(2, "r2")];
        pods[1].serving = false;
        assert_eq!(
            plan_rollout(&view(0, &all), &pods, 3, Some("r2")),
            RolloutStep::Wait("pod demo-broker-0-1 is not ready".into())
        );
        pods.remove(1);
        assert_eq!(
            plan_rollout(&view(0, &all), &pods, 3, Some("r2")),
            RolloutStep::Wait("2/3 pods exist".into())
        );
        let pods = [pod(0, "r1"), pod(1, "r2"), pod(2, "r2")];
        assert_eq!(
            plan_rollout(&view(0, &[0, 1]), &pods, 3, Some("r2")),
            RolloutStep::Wait("pod demo-broker-0-2 is not in the SyncStateSet yet".into())
        );
    }

    #[test]
    fn mastership_goes_only_to_an_updated_in_sync_replica() {
        // Both slaves updated, but only pod 2 is in sync... and the set must be complete
        // before anything moves, so this waits.
        let pods = [pod(0, "r1"), pod(1, "r2"), pod(2, "r2")];
        assert!(matches!(
            plan_rollout(&view(0, &[0, 2]), &pods, 3, Some("r2")),
            RolloutStep::Wait(_)
        ));
        // A manual restart of the master when no other replica is updated yet: wait.
        let mut pods = [pod(0, "r1"), pod(1, "r1")];
        pods[0].restart_requested = true;
        pods[1].restart_requested = true;
        let step = plan_rollout(&view(0, &[0, 1]), &pods, 2, None);
        assert!(
            matches!(&step, RolloutStep::Restart { pod, why } if pod == "demo-broker-0-1" && why.contains("manual-rolling-update")),
            "{step:?}"
        );
        pods[1].restart_requested = false;
        assert_eq!(
            plan_rollout(&view(0, &[0, 1]), &pods, 2, None),
            RolloutStep::HandOver {
                from: "demo-broker-0-0".into(),
                to: Election {
                    designated: Some(2),
                    candidate_pod: Some("demo-broker-0-1".into())
                }
            }
        );
    }

    #[test]
    fn a_single_replica_group_restarts_in_place() {
        let pods = [pod(0, "r1")];
        let step = plan_rollout(&view(0, &[0]), &pods, 1, Some("r2"));
        assert!(
            matches!(&step, RolloutStep::Restart { pod, why } if pod == "demo-broker-0-0" && why.starts_with("the only replica")),
            "{step:?}"
        );
    }

    #[test]
    fn no_master_no_restart() {
        let pods = [pod(0, "r1"), pod(1, "r1")];
        let mut v = view(0, &[0, 1]);
        v.master_address = None;
        assert_eq!(
            plan_rollout(&v, &pods, 2, Some("r2")),
            RolloutStep::Wait("the group has no master".into())
        );
    }
}
