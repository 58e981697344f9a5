//! Replication: master/slave roles, the HA stream, acknowledgement rules and, in
//! controller mode, the broker's side of the controller protocol.
//!
//! [`Replication`] is the hub every write goes through ([`Replication::put`]): it refuses
//! writes unless this broker is a master that may write (a controller-mode master also
//! needs a fresh confirmation of its role, see [`HaConfig::controller_lease`]), appends,
//! wakes the HA senders and waits for the replicas the ack rule requires. It also keeps the
//! master's view of its slaves (acks, catch-up times), computes the confirm offset that
//! bounds what consumers see, and tracks the SyncStateSet.
//!
//! * [`master`]: the HA listener and one sender per slave;
//! * [`slave`]: the HA client of a slave;
//! * [`controller_mode`]: registration with the controller, heartbeats, role changes and
//!   SyncStateSet reports;
//! * [`epoch`], [`protocol`], [`config`]: the epoch file, the stream's frames, the keys.
//!
//! Safety rule (controller mode, `allAckInSyncStateSet=true`): a message is acknowledged
//! only once every member of the controller's SyncStateSet holds it. A slave joins the set
//! in two steps (first every new write waits for it, then the controller is asked once it
//! holds everything written before), and leaves it only after the controller agreed, so the
//! rule holds at every moment and any member the controller may elect has every
//! acknowledged message.

pub mod config;
pub mod controller_mode;
pub mod epoch;
pub mod master;
pub mod metadata_sync;
pub mod protocol;
pub mod slave;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};
use rocketmq_common::controller::{EpochEntry, EpochEntryCache};
use rocketmq_common::message::RecordInput;
use rocketmq_common::protocol::ResponseCode;
use rocketmq_common::remoting::ProcessError;
use rocketmq_store::{AppendResult, MessageStore, PutStatus, StoreError};
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::processor::store_error;

pub use config::{BrokerRole, HaConfig};
use epoch::EpochFile;

/// How often the log end is sampled while writing (catch-up bookkeeping).
const SAMPLE_EVERY: Duration = Duration::from_millis(10);
/// A slave this close behind the master starts joining the SyncStateSet (new writes wait
/// for it from then on, so it must be able to keep up).
const JOIN_LAG: Duration = Duration::from_millis(300);

/// What this broker is right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Takes writes and ships them to slaves.
    Master,
    /// Follows a master.
    Slave,
    /// Controller mode before the controller told the role: no writes, no replication.
    Pending,
}

/// The role and the facts that come with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleState {
    /// The role.
    pub role: Role,
    /// Master epoch this role belongs to (0 outside controller mode).
    pub master_epoch: i32,
    /// The master's Remoting address (a slave's master; self on the master).
    pub master_addr: Option<String>,
    /// The master's controller id (controller mode).
    pub master_id: Option<i64>,
    /// The SyncStateSet the controller agreed to.
    pub sync_state_set: BTreeSet<i64>,
    /// Its epoch.
    pub sync_state_set_epoch: i32,
    /// A change asked of the controller and not answered yet.
    pub proposed_sync_state_set: Option<BTreeSet<i64>>,
    /// A slave every new write already waits for, with the log end at the moment it
    /// started joining: once it holds that much, the controller is asked to add it.
    pub joining: Option<(i64, i64)>,
}

/// A connected slave, as its sender and ack reader see it.
#[derive(Debug, Clone)]
struct SlaveLink {
    slave_id: i64,
    ack: i64,
    connected_at: Instant,
    /// The latest moment it was known to hold everything the master held.
    caught_up_at: Option<Instant>,
}

/// Why a write was refused before anything was stored.
fn refused(code: ResponseCode, remark: impl Into<String>) -> ProcessError {
    ProcessError::new(code, remark)
}

/// The outcome of a replicated write.
#[derive(Debug)]
pub struct Written {
    /// Where each message landed.
    pub appends: Vec<AppendResult>,
    /// SUCCESS, FLUSH_DISK_TIMEOUT or FLUSH_SLAVE_TIMEOUT (stored, but not yet as durable
    /// or replicated as asked).
    pub code: ResponseCode,
}

/// The replication hub (see the module docs).
pub struct Replication {
    config: HaConfig,
    store: Arc<MessageStore>,
    cluster_name: String,
    broker_name: String,
    /// Classic mode: `brokerId`; controller mode: the controller id (0 until known).
    local_id: AtomicI64,
    state: RwLock<RoleState>,
    epochs: Mutex<EpochFile>,
    slaves: Mutex<HashMap<u64, SlaveLink>>,
    /// `slaves.len()`, read on every write without the lock.
    slave_count: std::sync::atomic::AtomicUsize,
    next_link: AtomicU64,
    acks_changed: Notify,
    /// Writes below this offset meet the ack rule (see `refresh_acks`).
    replicated_to: AtomicI64,
    appended: Notify,
    role_changed: Notify,
    sync_state_set_check: Notify,
    /// The group's master as the name server reported it: (Remoting address, HA address).
    namesrv_master: Mutex<Option<(String, String)>>,
    started: Instant,
    /// (when, log end) every few ms of writing: an ack at or past a sample's end means the
    /// slave had everything the master held at that time.
    end_samples: Mutex<VecDeque<(Instant, i64)>>,
    /// Writes are allowed until this many ms after `started` (controller lease).
    lease_until_ms: AtomicI64,
    /// Bumped whenever the HA client must drop its connection (new master, promotion).
    follow_generation: tokio::sync::watch::Sender<u64>,
    /// Held by the HA client while it follows; taking it proves nothing is appended
    /// from the stream any more.
    client_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Replication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replication")
            .field("state", &*self.state.read())
            .finish_non_exhaustive()
    }
}

impl Replication {
    /// The hub for a broker whose store is open; loads the epoch file. Classic mode starts
    /// in the configured role, controller mode in [`Role::Pending`].
    pub fn new(
        config: HaConfig,
        store: Arc<MessageStore>,
        cluster_name: &str,
        broker_name: &str,
        broker_id: i64,
    ) -> std::io::Result<Self> {
        let root = store.config().store_path_root_dir.clone();
        let epochs = EpochFile::load(&root.join("epochFileCheckpoint"))?;
        let role = if config.enable_controller_mode {
            Role::Pending
        } else if config.broker_role == BrokerRole::Slave {
            Role::Slave
        } else {
            Role::Master
        };
        Ok(Self {
            local_id: AtomicI64::new(if config.enable_controller_mode {
                0
            } else {
                broker_id
            }),
            config,
            store,
            cluster_name: cluster_name.to_string(),
            broker_name: broker_name.to_string(),
            state: RwLock::new(RoleState {
                role,
                master_epoch: 0,
                master_addr: None,
                master_id: None,
                sync_state_set: BTreeSet::new(),
                sync_state_set_epoch: 0,
                proposed_sync_state_set: None,
                joining: None,
            }),
            epochs: Mutex::new(epochs),
            slaves: Mutex::new(HashMap::new()),
            slave_count: std::sync::atomic::AtomicUsize::new(0),
            next_link: AtomicU64::new(1),
            acks_changed: Notify::new(),
            replicated_to: AtomicI64::new(-1),
            appended: Notify::new(),
            role_changed: Notify::new(),
            sync_state_set_check: Notify::new(),
            namesrv_master: Mutex::new(None),
            started: Instant::now(),
            end_samples: Mutex::new(VecDeque::new()),
            lease_until_ms: AtomicI64::new(0),
            follow_generation: tokio::sync::watch::channel(0).0,
            client_lock: tokio::sync::Mutex::new(()),
        })
    }

    /// Settings.
    pub fn config(&self) -> &HaConfig {
        &self.config
    }

    /// The store.
    pub fn store(&self) -> &Arc<MessageStore> {
        &self.store
    }

    /// A copy of the role state.
    pub fn role_state(&self) -> RoleState {
        self.state.read().clone()
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.state.read().role
    }

    /// Whether this broker is the group's master.
    pub fn is_master(&self) -> bool {
        self.role() == Role::Master
    }

    /// Classic `brokerId` or controller id.
    pub fn local_id(&self) -> i64 {
        self.local_id.load(Ordering::Acquire)
    }

    /// The id to register with name servers: 0 on the master, the own id on a slave.
    pub fn namesrv_broker_id(&self) -> i64 {
        match self.role() {
            Role::Master => 0,
            _ => self.local_id().max(1),
        }
    }

    /// The name server's `stateVersion` of this broker: the master epoch.
    pub fn state_version(&self) -> i64 {
        i64::from(self.state.read().master_epoch)
    }

    /// Notified on every role change (registration and the HA client watch it).
    pub fn role_changed(&self) -> &Notify {
        &self.role_changed
    }

    /// Records what a name server said about the group's master.
    pub fn set_namesrv_master(&self, master_addr: Option<String>, ha_addr: Option<String>) {
        let new = master_addr.zip(ha_addr);
        let mut cur = self.namesrv_master.lock();
        if *cur != new {
            *cur = new;
            drop(cur);
            self.role_changed.notify_waiters();
        }
    }

    /// The master's Remoting address (the controller's word in controller mode, the name
    /// server's otherwise).
    pub fn master_remoting_addr(&self) -> Option<String> {
        self.state
            .read()
            .master_addr
            .clone()
            .or_else(|| self.namesrv_master.lock().as_ref().map(|m| m.0.clone()))
    }

    /// Where a slave's HA client should connect, if known.
    pub fn ha_master_target(&self) -> Option<String> {
        if !self.config.enable_controller_mode && !self.config.ha_master_address.is_empty() {
            return Some(self.config.ha_master_address.clone());
        }
        let expected = self.state.read().master_addr.clone();
        let reported = self.namesrv_master.lock().clone()?;
        // In controller mode only the master the controller named will do: a name server
        // may still list a deposed one.
        match expected {
            Some(m) if self.config.enable_controller_mode && m != reported.0 => None,
            _ => Some(reported.1),
        }
    }

    fn now_ms(&self) -> i64 {
        self.started.elapsed().as_millis() as i64
    }

    /// The controller leader confirmed this broker's role just now.
    pub fn renew_lease(&self, confirmed_at: Instant) {
        let until = confirmed_at
            .saturating_duration_since(self.started)
            .as_millis() as i64
            + self.config.controller_lease().as_millis() as i64;
        self.lease_until_ms.fetch_max(until, Ordering::AcqRel);
    }

    /// Drops the lease (the controller says another broker masters, or cannot be reached).
    pub fn revoke_lease(&self) {
        self.lease_until_ms.store(0, Ordering::Release);
    }

    /// Why this broker may not take writes now, if so.
    pub fn write_refusal(&self) -> Option<ProcessError> {
        let st = self.state.read();
        match st.role {
            Role::Master => {}
            Role::Slave => {
                return Some(refused(
                    ResponseCode::ServiceNotAvailable,
                    format!(
                        "broker {} is a slave and takes no writes; send to its master{}",
                        self.broker_name,
                        st.master_addr
                            .as_deref()
                            .map(|m| format!(" {m}"))
                            .unwrap_or_default()
                    ),
                ));
            }
            Role::Pending => {
                return Some(refused(
                    ResponseCode::ServiceNotAvailable,
                    "broker is waiting for the controller to assign its role",
                ));
            }
        }
        if self.config.enable_controller_mode {
            if self.config.controller_lease_enable
                && self.now_ms() >= self.lease_until_ms.load(Ordering::Acquire)
            {
                return Some(refused(
                    ResponseCode::ServiceNotAvailable,
                    "master is fenced: it could not confirm its role with the controller recently",
                ));
            }
            let in_sync = self.in_sync_replicas_locked(&st);
            if (in_sync as i32) < self.config.min_in_sync_replicas {
                return Some(refused(
                    ResponseCode::SystemError,
                    "in-sync replicas not enough",
                ));
            }
        }
        None
    }

    fn in_sync_replicas_locked(&self, st: &RoleState) -> usize {
        let me = self.local_id();
        let extra = st
            .proposed_sync_state_set
            .iter()
            .flatten()
            .filter(|id| !st.sync_state_set.contains(id))
            .count();
        let self_missing = !st.sync_state_set.contains(&me)
            && !st
                .proposed_sync_state_set
                .as_ref()
                .is_some_and(|p| p.contains(&me));
        st.sync_state_set.len() + extra + usize::from(self_missing)
    }

    /// The members every acknowledged write must reach: the agreed SyncStateSet, plus a
    /// proposed one and a joining slave (both only ever make writes wait longer).
    fn ack_set_locked(&self, st: &RoleState) -> BTreeSet<i64> {
        let mut set = st.sync_state_set.clone();
        if let Some(p) = &st.proposed_sync_state_set {
            set.extend(p);
        }
        if let Some((id, _)) = st.joining {
            set.insert(id);
        }
        set.remove(&self.local_id());
        set
    }

    /// Stores `inputs` as the master and waits for the replicas the ack rule requires.
    /// Refused (nothing stored) when this broker may not take writes.
    pub async fn put(&self, inputs: &[RecordInput<'_>]) -> Result<Written, ProcessError> {
        if let Some(e) = self.write_refusal() {
            return Err(e);
        }
        let (status, appends) = if inputs.len() == 1 {
            let r = self
                .store
                .put_message(&inputs[0])
                .await
                .map_err(store_error)?;
            (r.status, vec![r.append])
        } else {
            let r = self.store.put_messages(inputs).await.map_err(store_error)?;
            (r.status, r.appends)
        };
        let end = appends.last().map_or(0, |a| a.end_offset());
        // Without slaves nobody waits for new bytes: keep the hot path free of locks.
        if self.slave_count.load(Ordering::Acquire) > 0 {
            self.appended.notify_waiters();
            self.sample_log_end(end);
        }
        let mut code = match status {
            PutStatus::PutOk => ResponseCode::Success,
            PutStatus::FlushDiskTimeout => ResponseCode::FlushDiskTimeout,
        };
        if !self.enough_slaves_connected(end) {
            // RocketMQ 4's answer when the slaves are gone or far behind: stored, not
            // replicated, and no point waiting.
            if code == ResponseCode::Success {
                code = ResponseCode::SlaveNotAvailable;
            }
        } else if !self.wait_for_replicas(end).await && code == ResponseCode::Success {
            code = ResponseCode::FlushSlaveTimeout;
        }
        Ok(Written { appends, code })
    }

    /// Classic SYNC_MASTER: whether enough slaves are connected and within
    /// `haMaxGapNotInSync` of `end` for waiting to make sense (controller mode refuses
    /// before storing instead, see `write_refusal`).
    fn enough_slaves_connected(&self, end: i64) -> bool {
        if self.config.enable_controller_mode {
            return true;
        }
        match self.config.need_acks(self.config.broker_role) {
            Some(n) if n > 1 => {
                let slaves = self.slaves.lock();
                let near = slaves
                    .values()
                    .filter(|s| s.ack >= 0 && end - s.ack < self.config.ha_max_gap_not_in_sync)
                    .count();
                near + 1 >= n as usize
            }
            _ => true,
        }
    }

    /// Waits (up to `slaveTimeout`) until the replicas the ack rule asks for hold
    /// everything below `end`.
    async fn wait_for_replicas(&self, end: i64) -> bool {
        if self.config.need_acks(self.config.broker_role) == Some(1) {
            return true;
        }
        let deadline = tokio::time::Instant::now() + self.config.slave_timeout;
        loop {
            let notified = self.acks_changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.replicated_to.load(Ordering::Acquire) >= end {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.replicated_to.load(Ordering::Acquire) >= end;
            }
        }
    }

    /// Recomputes how far the ack rule is met (`replicated_to`, read by every waiting send
    /// without locks) and the confirm offset, then wakes the waiting sends.
    fn refresh_acks(&self) {
        let replicated = {
            let st = self.state.read();
            if st.role != Role::Master {
                -1
            } else {
                let slaves = self.slaves.lock();
                match self.config.need_acks(self.config.broker_role) {
                    None => self
                        .ack_set_locked(&st)
                        .iter()
                        .map(|id| {
                            slaves
                                .values()
                                .filter(|s| s.slave_id == *id)
                                .map(|s| s.ack)
                                .max()
                                .unwrap_or(-1)
                        })
                        .min()
                        .unwrap_or(i64::MAX),
                    Some(n) if n <= 1 => i64::MAX,
                    Some(n) => {
                        let mut acks: Vec<i64> = slaves.values().map(|s| s.ack).collect();
                        acks.sort_unstable_by(|a, b| b.cmp(a));
                        acks.get(n as usize - 2).copied().unwrap_or(-1)
                    }
                }
            }
        };
        self.replicated_to.store(replicated, Ordering::Release);
        self.update_confirm_offset();
        self.acks_changed.notify_waiters();
    }

    /// Recomputes the confirm offset a controller-mode master publishes and reads up to.
    fn update_confirm_offset(&self) {
        if !self.config.enable_controller_mode {
            return;
        }
        let st = self.state.read();
        if st.role != Role::Master {
            return;
        }
        let members = self.ack_set_locked(&st);
        if !self.config.all_ack_in_sync_state_set || members.is_empty() {
            self.store.set_confirm_follows_log_end(true);
            return;
        }
        let slaves = self.slaves.lock();
        let mut confirm = self.store.commitlog().max_offset();
        for id in &members {
            match slaves
                .values()
                .filter(|s| s.slave_id == *id)
                .map(|s| s.ack)
                .max()
            {
                Some(ack) => confirm = confirm.min(ack),
                // A member without a connection holds nothing new: keep the old value.
                None => return,
            }
        }
        self.store.set_confirm_follows_log_end(false);
        self.store.set_confirm_offset(confirm);
    }

    // ---- master side: slave links ----

    /// Registers a slave connection; returns its link id.
    fn add_link(&self, slave_id: i64) -> u64 {
        let id = self.next_link.fetch_add(1, Ordering::Relaxed);
        let mut slaves = self.slaves.lock();
        slaves.insert(
            id,
            SlaveLink {
                slave_id,
                ack: -1,
                connected_at: Instant::now(),
                caught_up_at: None,
            },
        );
        self.slave_count.store(slaves.len(), Ordering::Release);
        drop(slaves);
        info!(slave_id, "slave connected");
        id
    }

    /// A slave connection ended: writes stop waiting for it once the controller agrees to
    /// drop it from the SyncStateSet (asked for at once).
    fn remove_link(&self, link: u64) {
        let removed = {
            let mut slaves = self.slaves.lock();
            let removed = slaves.remove(&link);
            self.slave_count.store(slaves.len(), Ordering::Release);
            removed
        };
        if let Some(l) = removed {
            info!(slave_id = l.slave_id, "slave disconnected");
            let mut st = self.state.write();
            if st.joining.is_some_and(|(id, _)| id == l.slave_id) {
                st.joining = None;
            }
        }
        self.sync_state_set_check.notify_one();
        self.refresh_acks();
    }

    /// Records the log end now and then (see `end_samples`).
    fn sample_log_end(&self, end: i64) {
        let mut samples = self.end_samples.lock();
        let now = Instant::now();
        if samples
            .back()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) < SAMPLE_EVERY)
        {
            return;
        }
        samples.push_back((now, end));
        let keep = self.config.ha_max_time_slave_not_catchup * 2;
        while samples
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > keep)
        {
            samples.pop_front();
        }
    }

    /// The latest moment at which a slave acknowledging `ack` had everything the master
    /// held then.
    fn caught_up_time(&self, ack: i64, max: i64) -> Option<Instant> {
        if ack >= max {
            return Some(Instant::now());
        }
        let samples = self.end_samples.lock();
        let i = samples.partition_point(|(_, end)| *end <= ack);
        (i > 0).then(|| samples[i - 1].0)
    }

    /// A slave acknowledged everything below `ack`.
    fn on_ack(&self, link: u64, ack: i64) {
        let max = self.store.commitlog().max_offset();
        let caught_up = self.caught_up_time(ack, max);
        let (slave_id, caught_up_at) = {
            let mut slaves = self.slaves.lock();
            let Some(l) = slaves.get_mut(&link) else {
                return;
            };
            l.ack = ack;
            if let Some(t) = caught_up {
                l.caught_up_at = l.caught_up_at.max(Some(t));
            }
            (l.slave_id, l.caught_up_at)
        };
        if self.config.enable_controller_mode {
            self.maybe_expand(slave_id, ack, max, caught_up_at);
        }
        self.refresh_acks();
    }

    /// Step one of a slave joining the SyncStateSet: once it trails the master by less than
    /// [`JOIN_LAG`], every new write waits for it; step two (asking the controller) follows
    /// when it holds everything written before that moment.
    fn maybe_expand(&self, slave_id: i64, ack: i64, max: i64, caught_up_at: Option<Instant>) {
        let mut st = self.state.write();
        if st.role != Role::Master
            || st.sync_state_set.contains(&slave_id)
            || st.proposed_sync_state_set.is_some()
        {
            return;
        }
        match st.joining {
            None => {
                let epoch_start = self.epochs.lock().last().map_or(0, |e| e.start);
                if ack >= epoch_start && caught_up_at.is_some_and(|t| t.elapsed() <= JOIN_LAG) {
                    st.joining = Some((slave_id, max));
                }
            }
            Some((id, target)) if id == slave_id && ack >= target => {
                drop(st);
                self.sync_state_set_check.notify_one();
            }
            _ => {}
        }
    }

    /// The SyncStateSet change this master should ask the controller for, if any: drop
    /// slaves that are gone or fell behind for `haMaxTimeSlaveNotCatchup`, add a joining
    /// slave that caught up. Marks it proposed.
    pub fn propose_sync_state_set(&self) -> Option<(BTreeSet<i64>, i32)> {
        let mut st = self.state.write();
        if st.role != Role::Master || st.proposed_sync_state_set.is_some() {
            return None;
        }
        let me = self.local_id();
        let slaves = self.slaves.lock();
        let now = Instant::now();
        let mut next: BTreeSet<i64> = st
            .sync_state_set
            .iter()
            .copied()
            .filter(|id| {
                *id == me
                    || slaves.values().any(|s| {
                        // A fresh connection gets the full allowance to catch up.
                        let since = s.caught_up_at.unwrap_or(s.connected_at);
                        s.slave_id == *id
                            && now.saturating_duration_since(since)
                                <= self.config.ha_max_time_slave_not_catchup
                    })
            })
            .collect();
        next.insert(me);
        if let Some((id, target)) = st.joining
            && slaves.values().any(|s| s.slave_id == id && s.ack >= target)
        {
            next.insert(id);
        }
        if next == st.sync_state_set {
            return None;
        }
        st.proposed_sync_state_set = Some(next.clone());
        Some((next, st.sync_state_set_epoch))
    }

    /// The controller answered a proposal: adopt `agreed` (or, on refusal, forget it).
    pub fn finish_sync_state_set_proposal(&self, agreed: Option<(BTreeSet<i64>, i32)>) {
        {
            let mut st = self.state.write();
            st.proposed_sync_state_set = None;
            if let Some((set, epoch)) = agreed {
                if epoch >= st.sync_state_set_epoch {
                    info!(set = ?set, epoch, "SyncStateSet changed");
                    if st.joining.is_some_and(|(id, _)| set.contains(&id)) {
                        st.joining = None;
                    }
                    st.sync_state_set = set;
                    st.sync_state_set_epoch = epoch;
                }
            } else {
                st.joining = None;
            }
        }
        self.refresh_acks();
    }

    /// Adopts a SyncStateSet the controller reports (polling) when it is newer.
    pub fn adopt_sync_state_set(&self, set: BTreeSet<i64>, epoch: i32) {
        {
            let mut st = self.state.write();
            if epoch <= st.sync_state_set_epoch {
                return;
            }
            st.sync_state_set = set;
            st.sync_state_set_epoch = epoch;
        }
        self.refresh_acks();
    }

    /// Notified when the SyncStateSet should be re-checked now.
    pub fn sync_state_set_check(&self) -> &Notify {
        &self.sync_state_set_check
    }

    // ---- role changes ----

    /// Makes the HA client drop its connection and waits until it appends nothing more;
    /// while the returned guard lives it cannot start following again.
    pub async fn stop_following(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.follow_generation.send_modify(|g| *g += 1);
        self.client_lock.lock().await
    }

    /// Becomes the master of `epoch` (controller mode) or the configured master (classic):
    /// stops following, records the epoch at the current log end, makes the whole log
    /// readable and the queue offsets continue from it.
    pub async fn become_master(
        &self,
        epoch: i32,
        sync_state_set: BTreeSet<i64>,
        sync_state_set_epoch: i32,
        self_addr: String,
    ) -> Result<(), StoreError> {
        // Held until the role is Master: the HA client checks the role under this lock, so
        // nothing replicated can land while (or after) the store switches to taking writes.
        let _no_follower = self.stop_following().await;
        if self.config.enable_controller_mode {
            let max = self.store.commitlog().max_offset();
            let mut epochs = self.epochs.lock();
            epochs.truncate_from_epoch(epoch)?;
            if !epochs.append(epoch, max)? {
                warn!(epoch, max, "epoch file refused the new master epoch");
            }
        }
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.prepare_for_writes())
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))??;
        {
            let mut st = self.state.write();
            st.role = Role::Master;
            st.master_epoch = epoch;
            st.master_addr = Some(self_addr);
            st.master_id = Some(self.local_id());
            st.sync_state_set = sync_state_set;
            st.sync_state_set_epoch = sync_state_set_epoch;
            st.proposed_sync_state_set = None;
            st.joining = None;
        }
        self.refresh_acks();
        info!(epoch, "became master");
        self.role_changed.notify_waiters();
        Ok(())
    }

    /// The master keeps its role into a newer epoch (the controller re-elected it).
    pub fn renew_master_epoch(&self, epoch: i32) -> std::io::Result<()> {
        let max = self.store.commitlog().max_offset();
        let mut epochs = self.epochs.lock();
        if epochs.last().is_some_and(|e| e.epoch >= epoch) {
            return Ok(());
        }
        epochs.append(epoch, max)?;
        drop(epochs);
        self.state.write().master_epoch = epoch;
        Ok(())
    }

    /// Becomes a slave of `master_addr` in `epoch`: no more writes, slaves of this broker
    /// are cut off, reads stop at the confirm offset the new master will send.
    pub fn become_slave(&self, master_addr: Option<String>, master_id: Option<i64>, epoch: i32) {
        {
            let mut st = self.state.write();
            st.role = Role::Slave;
            st.master_epoch = epoch;
            st.master_addr = master_addr;
            st.master_id = master_id;
            st.sync_state_set.clear();
            st.proposed_sync_state_set = None;
            st.joining = None;
        }
        self.revoke_lease();
        // From here on only what the new master confirms becomes readable.
        self.store.set_confirm_follows_log_end(false);
        info!(epoch, "became slave");
        self.follow_generation.send_modify(|g| *g += 1);
        self.role_changed.notify_waiters();
        self.refresh_acks();
    }

    /// Sets the controller id (after registration).
    pub fn set_local_id(&self, id: i64) {
        self.local_id.store(id, Ordering::Release);
    }

    // ---- replica side ----

    /// The epoch entries, oldest first.
    pub fn epochs(&self) -> Vec<epoch::Epoch> {
        self.epochs.lock().entries().to_vec()
    }

    /// GET_BROKER_EPOCH_CACHE's body.
    pub fn epoch_cache(&self) -> EpochEntryCache {
        EpochEntryCache {
            cluster_name: self.cluster_name.clone(),
            broker_name: self.broker_name.clone(),
            broker_id: self.namesrv_broker_id(),
            epoch_list: self.epochs.lock().ranges(),
            max_offset: self.store.commitlog().max_offset(),
        }
    }

    /// The epoch entry holding `offset` (for transfer headers).
    fn epoch_at(&self, offset: i64) -> Option<EpochEntry> {
        let epochs = self.epochs.lock();
        epochs
            .find(offset)
            .or_else(|| epochs.ranges().into_iter().next())
    }

    /// Cuts this replica's log and epochs at `offset`.
    async fn truncate_to(&self, offset: i64) -> Result<(), StoreError> {
        self.epochs.lock().truncate_from_offset(offset)?;
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || store.truncate_tail(offset))
            .await
            .map_err(|e| StoreError::Io(std::io::Error::other(e)))?
    }

    /// Records an epoch seen in the stream from the master.
    fn note_epoch(&self, epoch: i32, start: i64) -> std::io::Result<()> {
        let mut epochs = self.epochs.lock();
        if epochs.last().is_none_or(|e| e.epoch < epoch) {
            epochs.append(epoch, start)?;
        }
        Ok(())
    }

    /// How far a slave's log is replicated (what it heartbeats to the controller).
    pub fn last_epoch(&self) -> i32 {
        self.epochs.lock().last().map_or(-1, |e| e.epoch)
    }

    /// Connected slaves (id, ack offset), for runtime info and tests.
    pub fn slave_acks(&self) -> Vec<(i64, i64)> {
        let mut v: Vec<_> = self
            .slaves
            .lock()
            .values()
            .map(|s| (s.slave_id, s.ack))
            .collect();
        v.sort_unstable();
        v
    }

    /// Whether a consumer reading at CommitLog `offset` is so far behind that its reads come
    /// from disk rather than memory (more than `accessMessageInMemoryMaxRatio` percent of the
    /// machine's memory behind the end) while a slave could serve it instead.
    pub fn reads_from_disk(&self, offset: i64) -> bool {
        let behind = self.store.commitlog().max_offset() - offset;
        let ratio = i64::from(self.config.access_message_in_memory_max_ratio);
        behind > physical_memory() / 100 * ratio && self.slave_count.load(Ordering::Acquire) > 0
    }

    /// How long ago the lease was last renewed, for logs.
    pub fn lease_remaining(&self) -> Duration {
        let left = self.lease_until_ms.load(Ordering::Acquire) - self.now_ms();
        Duration::from_millis(left.max(0) as u64)
    }
}

/// Bytes of physical memory (cached; `i64::MAX` when unknown).
fn physical_memory() -> i64 {
    static MEMORY: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *MEMORY.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let (pages, size) = unsafe {
            (
                libc::sysconf(libc::_SC_PHYS_PAGES),
                libc::sysconf(libc::_SC_PAGESIZE),
            )
        };
        if pages > 0 && size > 0 {
            pages.saturating_mul(size)
        } else {
            i64::MAX
        }
    })
}
