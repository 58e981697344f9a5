//! The broker's side of the controller protocol (RocketMQ's `ReplicasManager`):
//!
//! 1. **Identity.** A controller id, allocated once and kept in `<store>/brokerIdentity`
//!    (`cluster#broker#id`): GET_NEXT_BROKER_ID, then a temporary file
//!    (`brokerIdentity-temp`, `cluster#broker#id#checkCode`), then APPLY_BROKER_ID. A crash
//!    between the two steps retries the apply with the same check code, which the
//!    controller accepts again.
//! 2. **Registration.** CONTROLLER_REGISTER_BROKER; with a live master the broker follows
//!    it, otherwise it asks to be elected (the controller decides).
//! 3. **Every `brokerHeartbeatInterval`:** BROKER_HEARTBEAT to every controller (each keeps
//!    its own liveness table), then GET_REPLICA_INFO from the leader: a newer epoch changes
//!    the role, and a master that sees itself confirmed renews its lease (no confirmation
//!    for half the heartbeat timeout and it stops taking writes, since by then the
//!    controller may have elected another master).
//! 4. **SyncStateSet changes** a master proposes go to the controller
//!    (CONTROLLER_ALTER_SYNC_STATE_SET) and take effect only once it agreed.
//! 5. **NOTIFY_BROKER_ROLE_CHANGED** from the controller applies a new role at once.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rocketmq_client::ControllerClient;
use rocketmq_common::controller::{ElectMasterResponseBody, SyncStateSet};
use rocketmq_common::json::from_slice_lenient;
use rocketmq_common::protocol::headers::controller::*;
use rocketmq_common::protocol::headers::namesrv::BrokerHeartbeatRequestHeader;
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{ClientConfig, RemotingClient, RemotingError};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{Replication, Role};

/// Timeout of each controller request: short, since an answer that comes late is no
/// use to the lease anyway.
const CONTROLLER_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a step of the protocol failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The controller could not be reached.
    #[error("controller unreachable: {0}")]
    Remoting(#[from] RemotingError),
    /// The controller refused.
    #[error("controller answered {code}: {remark}")]
    Refused {
        /// Response code.
        code: i32,
        /// Remark.
        remark: String,
    },
    /// The identity files could not be used.
    #[error("broker identity: {0}")]
    Identity(String),
    /// The store could not change role.
    #[error("role change: {0}")]
    Store(#[from] rocketmq_store::StoreError),
}

fn check(resp: RemotingCommand, accept: &[ResponseCode]) -> Result<RemotingCommand, LinkError> {
    if resp.code == ResponseCode::Success.as_i32() || accept.iter().any(|c| c.as_i32() == resp.code)
    {
        Ok(resp)
    } else {
        Err(LinkError::Refused {
            code: resp.code,
            remark: resp.remark.unwrap_or_default(),
        })
    }
}

/// What the controller says about the group's master.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MasterInfo {
    master_id: Option<i64>,
    master_addr: Option<String>,
    master_epoch: i32,
    sync_state_set: SyncStateSet,
}

/// The broker's link to the controller group.
pub struct ControllerLink {
    ha: Arc<Replication>,
    ctl: ControllerClient,
    cluster_name: String,
    broker_name: String,
    broker_addr: String,
    store_root: PathBuf,
    /// Role changes happen one at a time.
    role_lock: tokio::sync::Mutex<()>,
}

impl ControllerLink {
    /// A link for the broker at `broker_addr`.
    pub fn new(
        ha: Arc<Replication>,
        cluster_name: &str,
        broker_name: &str,
        broker_addr: String,
    ) -> Self {
        let store_root = ha.store.config().store_path_root_dir.clone();
        let ctl = ControllerClient::new(
            RemotingClient::new(ClientConfig {
                connect_timeout: Duration::from_secs(1),
                ..ClientConfig::default()
            }),
            ha.config.controller_addr.clone(),
            CONTROLLER_TIMEOUT,
        );
        Self {
            ha,
            ctl,
            cluster_name: cluster_name.to_string(),
            broker_name: broker_name.to_string(),
            broker_addr,
            store_root,
            role_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Registers (retrying until it works), then runs heartbeats, role polling and
    /// SyncStateSet reports until `stop`.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        self.refresh_controller_addresses().await;
        loop {
            match self.register().await {
                Ok(()) => break,
                Err(e) => {
                    warn!(error = %e, "registering with the controller failed; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                    self.refresh_controller_addresses().await;
                }
            }
        }
        let this = self.clone();
        let s = stop.clone();
        tokio::spawn(async move { this.sync_state_set_loop(s).await });
        let this = self.clone();
        let s = stop.clone();
        tokio::spawn(async move { this.controller_addresses_loop(s).await });
        let this = self.clone();
        let s = stop.clone();
        tokio::spawn(async move { this.heartbeat_loop(s).await });
        self.poll_loop(stop).await;
    }

    // ---- identity ----

    fn identity_path(&self) -> PathBuf {
        self.store_root.join("brokerIdentity")
    }

    fn temp_identity_path(&self) -> PathBuf {
        self.store_root.join("brokerIdentity-temp")
    }

    /// The controller id: from the identity file, else allocated and recorded. Brokers
    /// starting together race for the same next id; the losers retry at once.
    async fn broker_id(&self) -> Result<i64, LinkError> {
        let mut attempt = 0;
        loop {
            match self.try_broker_id().await {
                Err(LinkError::Refused { code, .. })
                    if code == ResponseCode::ControllerBrokerIdInvalid.as_i32() && attempt < 5 =>
                {
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn try_broker_id(&self) -> Result<i64, LinkError> {
        if let Some(id) =
            read_identity(&self.identity_path(), &self.cluster_name, &self.broker_name)?
        {
            return Ok(id);
        }
        let (id, code) = match read_temp_identity(
            &self.temp_identity_path(),
            &self.cluster_name,
            &self.broker_name,
        )? {
            Some(found) => found,
            None => {
                let resp = check(
                    self.ctl
                        .invoke(RemotingCommand::request(
                            RequestCode::CONTROLLER_GET_NEXT_BROKER_ID,
                            &GetNextBrokerIdRequestHeader {
                                cluster_name: self.cluster_name.clone(),
                                broker_name: self.broker_name.clone(),
                            },
                        ))
                        .await?,
                    &[],
                )?;
                let id = resp
                    .decode_header::<GetNextBrokerIdResponseHeader>()
                    .ok()
                    .and_then(|h| h.next_broker_id)
                    .ok_or_else(|| LinkError::Identity("no nextBrokerId in the answer".into()))?;
                let code = format!("{};{}", self.broker_addr, now_millis());
                write_file(
                    &self.temp_identity_path(),
                    &format!("{}#{}#{id}#{code}", self.cluster_name, self.broker_name),
                )?;
                (id, code)
            }
        };
        let applied = self
            .ctl
            .invoke(RemotingCommand::request(
                RequestCode::CONTROLLER_APPLY_BROKER_ID,
                &ApplyBrokerIdRequestHeader {
                    cluster_name: self.cluster_name.clone(),
                    broker_name: self.broker_name.clone(),
                    applied_broker_id: id,
                    register_check_code: code,
                },
            ))
            .await?;
        if let Err(e) = check(applied, &[]) {
            // Someone else took the id: start over with a fresh one.
            let _ = std::fs::remove_file(self.temp_identity_path());
            return Err(e);
        }
        write_file(
            &self.identity_path(),
            &format!("{}#{}#{id}", self.cluster_name, self.broker_name),
        )?;
        let _ = std::fs::remove_file(self.temp_identity_path());
        info!(id, "broker id applied");
        Ok(id)
    }

    // ---- registration and roles ----

    async fn register(&self) -> Result<(), LinkError> {
        let id = self.broker_id().await?;
        self.ha.set_local_id(id);
        let resp = check(
            self.ctl
                .invoke(RemotingCommand::request(
                    RequestCode::CONTROLLER_REGISTER_BROKER,
                    &RegisterBrokerToControllerRequestHeader {
                        cluster_name: self.cluster_name.clone(),
                        broker_name: self.broker_name.clone(),
                        broker_id: Some(id),
                        broker_address: self.broker_addr.clone(),
                        invoke_time: Some(now_millis()),
                    },
                ))
                .await?,
            &[],
        )?;
        let h: RegisterBrokerToControllerResponseHeader = resp
            .decode_header()
            .map_err(|e| LinkError::Identity(e.to_string()))?;
        let set: SyncStateSet = from_slice_lenient(&resp.body).unwrap_or_default();
        self.send_heartbeats().await;
        let info = MasterInfo {
            master_id: h.master_broker_id,
            master_addr: h.master_address,
            master_epoch: h.master_epoch.unwrap_or(0),
            sync_state_set: SyncStateSet {
                sync_state_set: set.sync_state_set,
                sync_state_set_epoch: h.sync_state_set_epoch.unwrap_or(set.sync_state_set_epoch),
            },
        };
        info!(id, master = ?info.master_id, epoch = info.master_epoch, "registered with the controller");
        if info.master_id.is_some() {
            self.apply(info, Instant::now()).await
        } else {
            self.elect_self().await
        }
    }

    /// Asks the controller to elect this broker (it keeps a live master, or picks the best
    /// replica; the answer says who masters now).
    async fn elect_self(&self) -> Result<(), LinkError> {
        let asked = Instant::now();
        let resp = check(
            self.ctl
                .invoke(RemotingCommand::request(
                    RequestCode::CONTROLLER_ELECT_MASTER,
                    &ElectMasterRequestHeader {
                        cluster_name: Some(self.cluster_name.clone()),
                        broker_name: Some(self.broker_name.clone()),
                        broker_id: Some(self.ha.local_id()),
                        designate_elect: Some(false),
                        invoke_time: Some(now_millis()),
                    },
                ))
                .await?,
            &[ResponseCode::ControllerMasterStillExist],
        )?;
        let h: ElectMasterResponseHeader = resp
            .decode_header()
            .map_err(|e| LinkError::Identity(e.to_string()))?;
        let body: ElectMasterResponseBody = from_slice_lenient(&resp.body).unwrap_or_default();
        self.apply(
            MasterInfo {
                master_id: h.master_broker_id,
                master_addr: h.master_address,
                master_epoch: h.master_epoch.unwrap_or(0),
                sync_state_set: SyncStateSet {
                    sync_state_set: body.sync_state_set,
                    sync_state_set_epoch: h.sync_state_set_epoch.unwrap_or(0),
                },
            },
            asked,
        )
        .await
    }

    /// Applies the controller's view: a newer epoch changes the role; the current epoch
    /// confirms it (renewing a master's lease, adopting a newer SyncStateSet).
    async fn apply(&self, info: MasterInfo, asked_at: Instant) -> Result<(), LinkError> {
        let _serial = self.role_lock.lock().await;
        let me = self.ha.local_id();
        let local = self.ha.role_state();
        let newer = info.master_epoch > local.master_epoch || local.role == Role::Pending;
        match info.master_id {
            Some(m) if m == me => {
                if newer || local.role != Role::Master {
                    if local.role == Role::Master {
                        self.ha
                            .renew_master_epoch(info.master_epoch)
                            .map_err(rocketmq_store::StoreError::Io)?;
                    } else {
                        self.ha
                            .become_master(
                                info.master_epoch,
                                info.sync_state_set.sync_state_set.clone(),
                                info.sync_state_set.sync_state_set_epoch,
                                self.broker_addr.clone(),
                            )
                            .await?;
                    }
                }
                if info.master_epoch >= local.master_epoch {
                    self.ha.adopt_sync_state_set(
                        info.sync_state_set.sync_state_set,
                        info.sync_state_set.sync_state_set_epoch,
                    );
                    self.ha.renew_lease(asked_at);
                }
            }
            Some(m) => {
                self.ha.revoke_lease();
                if newer || local.role != Role::Slave || local.master_id != Some(m) {
                    self.ha
                        .become_slave(info.master_addr, Some(m), info.master_epoch);
                }
            }
            None => {
                self.ha.revoke_lease();
                if local.role == Role::Master {
                    // The controller cleared the master (nobody could take over while this
                    // one was unreachable): stop writing until it elects again.
                    self.ha.become_slave(None, None, info.master_epoch);
                }
            }
        }
        Ok(())
    }

    /// NOTIFY_BROKER_ROLE_CHANGED: the controller elected a master.
    pub async fn on_role_notification(
        &self,
        h: NotifyBrokerRoleChangedRequestHeader,
        set: SyncStateSet,
    ) {
        let epoch = h.master_epoch.unwrap_or(0);
        if epoch <= self.ha.role_state().master_epoch && self.ha.role() != Role::Pending {
            return;
        }
        info!(master = ?h.master_broker_id, epoch, "controller announced a new master");
        let info = MasterInfo {
            master_id: h.master_broker_id,
            master_addr: h.master_address,
            master_epoch: epoch,
            sync_state_set: SyncStateSet {
                sync_state_set: set.sync_state_set,
                sync_state_set_epoch: h.sync_state_set_epoch.unwrap_or(set.sync_state_set_epoch),
            },
        };
        if let Err(e) = self.apply(info, Instant::now()).await {
            warn!(error = %e, "applying the controller's role change failed");
        }
    }

    // ---- periodic work ----

    async fn send_heartbeats(&self) {
        let store = self.ha.store();
        let header = BrokerHeartbeatRequestHeader {
            cluster_name: self.cluster_name.clone(),
            broker_addr: self.broker_addr.clone(),
            broker_name: self.broker_name.clone(),
            broker_id: Some(self.ha.local_id()),
            epoch: Some(self.ha.last_epoch()),
            max_offset: Some(store.commitlog().max_offset()),
            confirm_offset: Some(store.confirm_offset()),
            heartbeat_timeout_mills: Some(
                self.ha.config.controller_heartbeat_timeout.as_millis() as i64
            ),
            election_priority: Some(self.ha.config.broker_election_priority),
        };
        self.ctl
            .oneway_to_all(RemotingCommand::request(
                RequestCode::BROKER_HEARTBEAT,
                &header,
            ))
            .await;
    }

    async fn poll_role(&self) -> Result<(), LinkError> {
        let asked = Instant::now();
        let resp = self
            .ctl
            .invoke(RemotingCommand::request(
                RequestCode::CONTROLLER_GET_REPLICA_INFO,
                &GetReplicaInfoRequestHeader {
                    broker_name: self.broker_name.clone(),
                },
            ))
            .await?;
        if resp.code == ResponseCode::ControllerBrokerMetadataNotExist.as_i32() {
            // The controller forgot this group (cleaned): register again.
            return self.register().await;
        }
        let resp = check(resp, &[])?;
        let h: GetReplicaInfoResponseHeader = resp
            .decode_header()
            .map_err(|e| LinkError::Identity(e.to_string()))?;
        let set: SyncStateSet = from_slice_lenient(&resp.body).unwrap_or_default();
        let info = MasterInfo {
            master_id: h.master_broker_id,
            master_addr: h.master_address,
            master_epoch: h.master_epoch.unwrap_or(0),
            sync_state_set: set,
        };
        if info.master_id.is_none() {
            // No master: offer this broker (the controller only takes it if eligible).
            return match self.elect_self().await {
                Ok(()) => Ok(()),
                Err(LinkError::Refused { code, .. })
                    if code == ResponseCode::ControllerElectMasterFailed.as_i32() =>
                {
                    Ok(())
                }
                Err(e) => Err(e),
            };
        }
        self.apply(info, asked).await
    }

    /// Heartbeats on their own ticker, so a slow role poll never delays them.
    async fn heartbeat_loop(self: Arc<Self>, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(self.ha.config.broker_heartbeat_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            self.send_heartbeats().await;
        }
    }

    /// Confirms the role with the leader every `brokerHeartbeatInterval`.
    async fn poll_loop(self: Arc<Self>, stop: CancellationToken) {
        let mut ticker = tokio::time::interval(self.ha.config.broker_heartbeat_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut failures = 0u32;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = ticker.tick() => {}
            }
            match self.poll_role().await {
                Ok(()) => failures = 0,
                Err(e) => {
                    failures += 1;
                    if failures == 1 || failures.is_multiple_of(30) {
                        warn!(error = %e, failures, "confirming the role with the controller failed");
                    }
                }
            }
        }
    }

    async fn sync_state_set_loop(self: Arc<Self>, stop: CancellationToken) {
        let period = self.ha.config.check_sync_state_set_period;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(period) => {}
                _ = self.ha.sync_state_set_check().notified() => {}
            }
            let Some((proposed, epoch)) = self.ha.propose_sync_state_set() else {
                continue;
            };
            let state = self.ha.role_state();
            let request = RemotingCommand::request(
                RequestCode::CONTROLLER_ALTER_SYNC_STATE_SET,
                &AlterSyncStateSetRequestHeader {
                    broker_name: self.broker_name.clone(),
                    master_broker_id: self.ha.local_id(),
                    master_epoch: state.master_epoch,
                    invoke_time: Some(now_millis()),
                },
            )
            .with_body(
                serde_json::to_vec(&SyncStateSet {
                    sync_state_set: proposed.clone(),
                    sync_state_set_epoch: epoch,
                })
                .expect("bodies serialise"),
            );
            match self
                .ctl
                .invoke(request)
                .await
                .map_err(LinkError::from)
                .and_then(|r| check(r, &[]))
            {
                Ok(resp) => {
                    let agreed: SyncStateSet =
                        from_slice_lenient(&resp.body).unwrap_or(SyncStateSet {
                            sync_state_set: proposed,
                            sync_state_set_epoch: epoch + 1,
                        });
                    self.ha.finish_sync_state_set_proposal(Some((
                        agreed.sync_state_set,
                        agreed.sync_state_set_epoch,
                    )));
                }
                Err(e) => {
                    warn!(proposed = ?proposed, error = %e, "the controller refused the SyncStateSet change");
                    self.ha.finish_sync_state_set_proposal(None);
                }
            }
        }
    }

    /// Re-resolves the controller addresses (`fetchControllerAddrByDnsLookup`).
    async fn refresh_controller_addresses(&self) {
        if !self.ha.config.fetch_controller_addr_by_dns_lookup {
            return;
        }
        let found = resolve_all(&self.ha.config.controller_addr).await;
        if !found.is_empty() {
            self.ctl.set_addresses(found);
        }
    }

    async fn controller_addresses_loop(self: Arc<Self>, stop: CancellationToken) {
        if !self.ha.config.fetch_controller_addr_by_dns_lookup {
            return;
        }
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.ha.config.sync_controller_metadata_period) => {}
            }
            self.refresh_controller_addresses().await;
        }
    }
}

/// Every address the `host:port` names resolve to (a headless Service name gives one per
/// controller pod), sorted and deduplicated; names that do not resolve are logged and
/// skipped.
async fn resolve_all(names: &[String]) -> Vec<String> {
    let mut found = BTreeSet::new();
    for name in names {
        match tokio::net::lookup_host(name.as_str()).await {
            Ok(addrs) => found.extend(addrs.map(|a| a.to_string())),
            Err(e) => {
                warn!(controller = %name, error = %e, "resolving the controller address failed")
            }
        }
    }
    found.into_iter().collect()
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn write_file(path: &Path, text: &str) -> Result<(), LinkError> {
    rocketmq_common::persist::write_file_atomically(path, text.as_bytes())
        .map_err(|e| LinkError::Identity(format!("{}: {e}", path.display())))
}

fn read_text(path: &Path) -> Result<Option<String>, LinkError> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t.trim().to_string())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(LinkError::Identity(format!("{}: {e}", path.display()))),
    }
}

/// `cluster#broker#id`; a file of another cluster or group is an error (a wrong volume).
fn read_identity(path: &Path, cluster: &str, broker: &str) -> Result<Option<i64>, LinkError> {
    let Some(text) = read_text(path)? else {
        return Ok(None);
    };
    let parts: Vec<&str> = text.split('#').collect();
    match parts.as_slice() {
        [c, b, id] if *c == cluster && *b == broker => id
            .parse()
            .map(Some)
            .map_err(|_| LinkError::Identity(format!("{}: bad id {id:?}", path.display()))),
        _ => Err(LinkError::Identity(format!(
            "{} belongs to {text:?}, not {cluster}#{broker}",
            path.display()
        ))),
    }
}

/// `cluster#broker#id#checkCode`.
fn read_temp_identity(
    path: &Path,
    cluster: &str,
    broker: &str,
) -> Result<Option<(i64, String)>, LinkError> {
    let Some(text) = read_text(path)? else {
        return Ok(None);
    };
    let mut parts = text.splitn(4, '#');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(c), Some(b), Some(id), Some(code)) if c == cluster && b == broker => {
            match id.parse() {
                Ok(id) => Ok(Some((id, code.to_string()))),
                Err(_) => {
                    let _ = std::fs::remove_file(path);
                    Ok(None)
                }
            }
        }
        _ => {
            // Unusable leftovers of an interrupted allocation: start over.
            let _ = std::fs::remove_file(path);
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn controller_names_resolve_to_every_address() {
        let found = resolve_all(&[
            "localhost:9878".to_string(),
            "127.0.0.2:9878".to_string(),
            "no-such-host.invalid:9878".to_string(),
        ])
        .await;
        assert!(found.contains(&"127.0.0.1:9878".to_string()), "{found:?}");
        assert!(found.contains(&"127.0.0.2:9878".to_string()), "{found:?}");
        assert!(found.iter().all(|a| a.ends_with(":9878")), "{found:?}");
        assert!(
            resolve_all(&["no-such-host.invalid:1".into()])
                .await
                .is_empty()
        );
    }

    #[test]
    fn identity_files_are_checked_against_the_group() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("brokerIdentity");
        assert_eq!(read_identity(&path, "c", "b").unwrap(), None);
        std::fs::write(&path, "c#b#3\n").unwrap();
        assert_eq!(read_identity(&path, "c", "b").unwrap(), Some(3));
        assert!(read_identity(&path, "c", "other").is_err());
        let temp = dir.path().join("brokerIdentity-temp");
        std::fs::write(&temp, "c#b#4#10.0.0.1:10911;1700000000000").unwrap();
        assert_eq!(
            read_temp_identity(&temp, "c", "b").unwrap(),
            Some((4, "10.0.0.1:10911;1700000000000".into()))
        );
        std::fs::write(&temp, "garbage").unwrap();
        assert_eq!(read_temp_identity(&temp, "c", "b").unwrap(), None);
        assert!(!temp.exists());
    }
}
