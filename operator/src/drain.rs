//! Safe scale-in of broker groups.
//!
//! Lowering `spec.broker.groups` stops the reconciler from applying the highest groups; their
//! StatefulSets stay until they are drained. On every look the failover watcher, for each such
//! group: makes every broker of the group read-only (UPDATE_BROKER_CONFIG
//! `brokerPermission=4`, which the broker announces to the name servers at once; repeated
//! each look, so a restarted broker becomes read-only again), measures what the consumer
//! groups have not consumed yet on the group's master (GET_ALL_CONSUMER_OFFSET for the groups
//! with offsets there, GET_CONSUME_STATS for their backlog, system topics left out), records
//! it in `status.brokerGroups[].draining`, and deletes the group's StatefulSet, Services,
//! ConfigMap and PodDisruptionBudget once nothing is left, or once `drainTimeoutSeconds` has
//! passed. Volumes then follow `pvcRetentionPolicy`.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::{
    api::{
        apps::v1::StatefulSet,
        core::v1::{ConfigMap, Service},
        policy::v1::PodDisruptionBudget,
    },
    jiff::{SignedDuration, Timestamp},
};
use kube::{Api, Resource, ResourceExt, api::DeleteParams};
use rocketmq_client::MqClient;
use rocketmq_common::controller::GroupReplicasInfo;
use rocketmq_common::topic::is_system_topic;
use serde::de::DeserializeOwned;

use crate::{
    crd::{DrainStatus, RocketMQCluster},
    error::{Error, Result},
    objects::ClusterNames,
    reconciler::Context,
};

/// `brokerPermission` of a read-only broker (PermName.PERM_READ).
pub const READ_ONLY: &str = "4";

/// The broker groups of `cluster` that exist as StatefulSets (`existing`) but are no longer
/// in the spec: `<cluster>-broker-<g>` with `g >= groups`.
pub fn removed_groups(cluster: &RocketMQCluster, existing: &[String]) -> Vec<String> {
    let name = cluster.metadata.name.as_deref().unwrap_or_default();
    let prefix = format!("{name}-broker-");
    let mut removed: Vec<(i32, String)> = existing
        .iter()
        .filter_map(|s| {
            let g: i32 = s.strip_prefix(&prefix)?.parse().ok()?;
            (g >= cluster.spec.broker.groups).then(|| (g, s.clone()))
        })
        .collect();
    removed.sort();
    removed.into_iter().map(|(_, s)| s).collect()
}

/// What is left to consume on a draining group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Messages not consumed yet.
    pub remaining: i64,
    /// Consumer groups that have some of them.
    pub pending_groups: Vec<String>,
}

/// What to do with a draining group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DrainDecision {
    /// Keep draining.
    Wait,
    /// Delete the group; `timed_out` when messages are left behind.
    Delete {
        /// Whether the drain timeout forced it.
        timed_out: bool,
    },
}

/// Delete once every broker is read-only and nothing is left, or once the timeout passed.
pub fn drain_decision(
    started_at: Timestamp,
    now: Timestamp,
    timeout: Option<Duration>,
    read_only: bool,
    backlog: Option<&Backlog>,
) -> DrainDecision {
    if read_only && backlog.is_some_and(|b| b.remaining == 0) {
        return DrainDecision::Delete { timed_out: false };
    }
    let expired = timeout.is_some_and(|t| {
        let t = SignedDuration::try_from(t).unwrap_or(SignedDuration::MAX);
        now.duration_since(started_at) >= t
    });
    if expired {
        DrainDecision::Delete { timed_out: true }
    } else {
        DrainDecision::Wait
    }
}

/// Every broker address of a group as the controllers know it.
pub(crate) fn broker_addresses(view: &GroupReplicasInfo) -> Vec<String> {
    let mut addresses: BTreeSet<String> = view
        .in_sync_replicas
        .iter()
        .chain(&view.not_in_sync_replicas)
        .map(|r| r.broker_address.clone())
        .collect();
    addresses.extend(view.master_address.clone().filter(|a| !a.is_empty()));
    addresses.into_iter().collect()
}

/// Makes every broker of the group read-only; true when all of them are.
async fn make_read_only(client: &MqClient, group: &str, view: &GroupReplicasInfo) -> bool {
    set_permission(client, group, view, READ_ONLY).await
}

/// Gives the brokers of a group that is back in the spec their configured permission again
/// (`brokerPermission` of `spec.broker.config`, else read + write); true when all have it.
pub async fn make_writable(
    cluster: &RocketMQCluster,
    client: &MqClient,
    group: &str,
    view: &GroupReplicasInfo,
) -> bool {
    let permission = cluster
        .spec
        .broker
        .config
        .get("brokerPermission")
        .map_or(READ_WRITE, String::as_str);
    set_permission(client, group, view, permission).await
}

/// `brokerPermission` of a broker that takes reads and writes (PermName.PERM_READ | PERM_WRITE).
pub const READ_WRITE: &str = "6";

/// Sets `brokerPermission` on every broker of the group where it differs; true when all
/// have it.
async fn set_permission(
    client: &MqClient,
    group: &str,
    view: &GroupReplicasInfo,
    wanted: &str,
) -> bool {
    let mut all = true;
    for address in broker_addresses(view) {
        let current = client.broker_config(&address).await.map(|entries| {
            entries
                .into_iter()
                .find(|(k, _)| k == "brokerPermission")
                .map(|(_, v)| v)
        });
        match current {
            Ok(Some(permission)) if permission == wanted => {}
            Ok(_) => {
                tracing::info!(%group, broker = %address, permission = %wanted, "setting brokerPermission");
                let update = client
                    .update_broker_config(&address, "brokerPermission", wanted)
                    .await;
                if let Err(error) = update {
                    tracing::warn!(%group, broker = %address, %error, "cannot set brokerPermission");
                    all = false;
                }
            }
            Err(error) => {
                // A replica that is down holds nothing a client can reach; the master's view
                // is what counts, but say so.
                tracing::warn!(%group, broker = %address, %error, "cannot read the broker's config");
                all = false;
            }
        }
    }
    all
}

/// What the consumer groups with offsets on the master at `master` have not consumed.
async fn backlog(client: &MqClient, master: &str) -> std::result::Result<Backlog, String> {
    let offsets = client
        .all_consumer_offsets(master)
        .await
        .map_err(|e| e.to_string())?;
    let groups: BTreeSet<String> = offsets
        .keys()
        .filter_map(|key| {
            let (topic, group) = key.split_once('@')?;
            (!is_system_topic(topic)).then(|| group.to_string())
        })
        .collect();
    let mut result = Backlog::default();
    for group in groups {
        let stats = client
            .consume_stats(master, &group, None)
            .await
            .map_err(|e| e.to_string())?;
        let left: i64 = stats
            .offset_table
            .iter()
            .filter(|(queue, _)| !is_system_topic(&queue.topic))
            .map(|(_, offsets)| offsets.diff().max(0))
            .sum();
        if left > 0 {
            result.remaining += left;
            result.pending_groups.push(group);
        }
    }
    Ok(result)
}

/// One look at a draining group: returns its drain status, or `None` once it was deleted.
pub async fn drain_group(
    cluster: &RocketMQCluster,
    context: &Context,
    client: &MqClient,
    namespace: &str,
    group: &str,
    view: Option<&GroupReplicasInfo>,
    now: Timestamp,
) -> Result<Option<DrainStatus>> {
    let recorded = cluster
        .status
        .as_ref()
        .and_then(|s| s.broker_groups.iter().find(|g| g.name == group))
        .and_then(|g| g.draining.clone());
    let started_at = recorded
        .as_ref()
        .and_then(|d| d.started_at.parse::<Timestamp>().ok())
        .unwrap_or(now);
    let (read_only, measured) = match view {
        Some(view) => {
            let read_only = make_read_only(client, group, view).await;
            let measured = match view.master_address.as_deref().filter(|a| !a.is_empty()) {
                Some(master) => backlog(client, master).await,
                None => Err("the group has no master".into()),
            };
            (read_only, measured)
        }
        None => (false, Err("the controllers do not know the group".into())),
    };
    if let Err(why) = &measured {
        tracing::warn!(%group, %why, "cannot measure what is left to consume");
    }
    let timeout = cluster
        .spec
        .broker
        .drain_timeout_seconds
        .map(|s| Duration::from_secs(s.max(0) as u64));
    let decision = drain_decision(started_at, now, timeout, read_only, measured.as_ref().ok());
    let backlog = measured.unwrap_or_else(|_| Backlog {
        remaining: recorded.as_ref().map_or(-1, |d| d.remaining_messages),
        pending_groups: recorded
            .as_ref()
            .map(|d| d.pending_consumer_groups.clone())
            .unwrap_or_default(),
    });
    match decision {
        DrainDecision::Wait => Ok(Some(DrainStatus {
            started_at: started_at.to_string(),
            remaining_messages: backlog.remaining,
            pending_consumer_groups: backlog.pending_groups,
        })),
        DrainDecision::Delete { timed_out } => {
            delete_group(cluster, context, namespace, group).await?;
            let (type_, note) = if timed_out {
                (
                    kube::runtime::events::EventType::Warning,
                    format!(
                        "broker group {group} deleted after drainTimeoutSeconds with {} \
                         messages unconsumed by {}",
                        backlog.remaining,
                        backlog.pending_groups.join(", ")
                    ),
                )
            } else {
                (
                    kube::runtime::events::EventType::Normal,
                    format!(
                        "broker group {group} drained and deleted: every consumer group had consumed it"
                    ),
                )
            };
            crate::failover::publish(cluster, context, type_, "ScaledIn", note).await;
            Ok(None)
        }
    }
}

/// Deletes the group's objects, StatefulSet first so no pod outlives its Services for long.
async fn delete_group(
    cluster: &RocketMQCluster,
    context: &Context,
    namespace: &str,
    group: &str,
) -> Result<()> {
    let name = cluster.name_any();
    let names = ClusterNames::new(&name, namespace);
    let Some(g) = group
        .strip_prefix(&format!("{name}-broker-"))
        .and_then(|g| g.parse::<i32>().ok())
    else {
        return Ok(());
    };
    tracing::info!(%group, "deleting the drained broker group");
    delete::<StatefulSet>(context, namespace, &names.broker_group(g)).await?;
    delete::<PodDisruptionBudget>(context, namespace, &names.broker_group(g)).await?;
    delete::<Service>(context, namespace, &names.broker_group_master(g)).await?;
    delete::<Service>(context, namespace, &names.broker_group_headless(g)).await?;
    delete::<ConfigMap>(context, namespace, &names.broker_group_config_map(g)).await?;
    Ok(())
}

async fn delete<K>(context: &Context, namespace: &str, name: &str) -> Result<()>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(context.client.clone(), namespace);
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(Error::Delete {
            kind: K::kind(&()).into_owned(),
            name: name.to_string(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::RocketMQClusterSpec;

    #[test]
    fn removed_groups_are_the_stateful_sets_beyond_the_spec() {
        let mut cluster = RocketMQCluster::new("demo", RocketMQClusterSpec::default());
        cluster.spec.broker.groups = 2;
        let existing = [
            "demo-broker-0",
            "demo-broker-3",
            "demo-broker-1",
            "demo-broker-2",
            "demo-broker-x",
            "other-broker-5",
        ]
        .map(String::from);
        assert_eq!(
            removed_groups(&cluster, &existing),
            ["demo-broker-2", "demo-broker-3"]
        );
    }

    #[test]
    fn a_group_is_deleted_only_when_read_only_and_consumed_or_timed_out() {
        let t0: Timestamp = "2026-12-07T00:00:00Z".parse().unwrap();
        let later = t0 + SignedDuration::from_secs(120);
        let left = Backlog {
            remaining: 5,
            pending_groups: vec!["g".into()],
        };
        let done = Backlog::default();
        assert_eq!(
            drain_decision(t0, later, None, true, Some(&left)),
            DrainDecision::Wait
        );
        assert_eq!(
            drain_decision(t0, later, None, false, Some(&done)),
            DrainDecision::Wait,
            "a broker that still takes writes could get new messages"
        );
        assert_eq!(
            drain_decision(t0, later, None, true, None),
            DrainDecision::Wait,
            "an unmeasured backlog is not an empty one"
        );
        assert_eq!(
            drain_decision(t0, later, None, true, Some(&done)),
            DrainDecision::Delete { timed_out: false }
        );
        let timeout = Some(Duration::from_secs(60));
        assert_eq!(
            drain_decision(t0, later, timeout, true, Some(&left)),
            DrainDecision::Delete { timed_out: true }
        );
        assert_eq!(
            drain_decision(t0, t0, timeout, true, Some(&left)),
            DrainDecision::Wait
        );
    }
}
