//! A client of the controller group: finds the leader with CONTROLLER_GET_METADATA_INFO,
//! sends requests to it, and follows it when a controller answers CONTROLLER_NOT_LEADER.

use std::time::Duration;

use std::sync::RwLock;

use rocketmq_common::controller::{BrokerReplicasInfo, ElectMasterResponseBody};
use rocketmq_common::json::from_slice_lenient;
use rocketmq_common::protocol::headers::controller::{
    ElectMasterRequestHeader, ElectMasterResponseHeader, GetMetaDataResponseHeader,
    NotLeaderResponseHeader,
};
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{RemotingClient, RemotingError};

use crate::error::{ClientError, check_success};

/// How many times a request follows a leader change before giving up.
const MAX_REDIRECTS: usize = 3;
/// How long a request waits for a controller leader to be elected (several election
/// timeouts of the defaults).
const LEADERLESS_PATIENCE: Duration = Duration::from_secs(5);

/// Talks to whichever controller leads.
pub struct ControllerClient {
    client: RemotingClient,
    addresses: RwLock<Vec<String>>,
    leader: RwLock<Option<String>>,
    timeout: Duration,
}

impl ControllerClient {
    /// A client of the controllers at `addresses`; each request waits up to `timeout`.
    pub fn new(client: RemotingClient, addresses: Vec<String>, timeout: Duration) -> Self {
        Self {
            client,
            addresses: RwLock::new(addresses),
            leader: RwLock::new(None),
            timeout,
        }
    }

    /// The controllers' addresses.
    pub fn addresses(&self) -> Vec<String> {
        self.addresses.read().expect("lock").clone()
    }

    /// Replaces the controllers' addresses (a DNS lookup found others).
    pub fn set_addresses(&self, addresses: Vec<String>) {
        *self.addresses.write().expect("lock") = addresses;
    }

    /// The underlying Remoting client.
    pub fn remoting(&self) -> &RemotingClient {
        &self.client
    }

    /// The leader's address, asking every controller until one names it.
    pub async fn leader(&self) -> Result<String, RemotingError> {
        if let Some(l) = self.leader.read().expect("lock").clone() {
            return Ok(l);
        }
        self.find_leader().await
    }

    /// Asks the controllers who leads, ignoring the cached answer. The leader is reached
    /// through the configured address that claims the lead when there is one (the address
    /// a controller advertises may not be reachable from here, e.g. behind a proxy);
    /// otherwise through the address the controllers name.
    pub async fn find_leader(&self) -> Result<String, RemotingError> {
        let mut last = None;
        let mut named = None;
        for addr in self.addresses() {
            let request = RemotingCommand::bare_request(RequestCode::CONTROLLER_GET_METADATA_INFO);
            match self.client.invoke(&addr, request, self.timeout).await {
                Ok(resp) => {
                    let Ok(h) = resp.decode_header::<GetMetaDataResponseHeader>() else {
                        continue;
                    };
                    if h.is_leader == Some(true) {
                        *self.leader.write().expect("lock") = Some(addr.clone());
                        return Ok(addr);
                    }
                    if named.is_none() {
                        named = h.controller_leader_address.filter(|a| !a.is_empty());
                    }
                    last = Some(RemotingError::Response {
                        addr,
                        code: ResponseCode::ControllerNotLeader.as_i32(),
                        remark: "the controller knows no leader yet".into(),
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        if let Some(leader) = named {
            *self.leader.write().expect("lock") = Some(leader.clone());
            return Ok(leader);
        }
        Err(last.unwrap_or_else(|| RemotingError::Response {
            addr: String::new(),
            code: ResponseCode::SystemError.as_i32(),
            remark: "no controller address configured".into(),
        }))
    }

    /// Sends `request` to the leader and returns its answer, whatever its code, following
    /// CONTROLLER_NOT_LEADER answers to the new leader.
    pub async fn invoke(&self, request: RemotingCommand) -> Result<RemotingCommand, RemotingError> {
        let mut attempt = 0;
        // Without a leader (an election under way), keep asking for a few election rounds
        // rather than a fixed number of tries: on a loaded host one round can take longer.
        let patience = tokio::time::Instant::now() + self.timeout.max(LEADERLESS_PATIENCE);
        loop {
            let leader = self.leader().await?;
            let result = self
                .client
                .invoke(&leader, request.clone(), self.timeout)
                .await;
            let named = match &result {
                Ok(resp) if resp.code == ResponseCode::ControllerNotLeader.as_i32() => resp
                    .decode_header::<NotLeaderResponseHeader>()
                    .ok()
                    .and_then(|h| h.controller_leader_address)
                    .filter(|a| *a != leader && self.addresses().contains(a)),
                Ok(_) => return result,
                Err(_) => None,
            };
            let leaderless = named.is_none();
            *self.leader.write().expect("lock") = named;
            if leaderless {
                if tokio::time::Instant::now() >= patience {
                    return result;
                }
                // No leader named: give an election a moment before asking around again.
                tokio::time::sleep(Duration::from_millis(200)).await;
            } else {
                attempt += 1;
                if attempt > MAX_REDIRECTS {
                    return result;
                }
            }
        }
    }

    /// Sends a oneway `request` to every controller (heartbeats go to all of them, since
    /// each keeps its own liveness table).
    pub async fn oneway_to_all(&self, request: RemotingCommand) {
        let calls = self.addresses().into_iter().map(|addr| {
            let request = request.clone();
            async move {
                if let Err(e) = self
                    .client
                    .invoke_oneway(&addr, request, self.timeout)
                    .await
                {
                    tracing::debug!(controller = %addr, error = %e, "oneway to controller failed");
                }
            }
        });
        futures_util::future::join_all(calls).await;
    }

    /// CONTROLLER_GET_SYNC_STATE_DATA for `broker_names`: per group the master, the epochs
    /// and the replicas in and out of the SyncStateSet (groups the controllers do not know
    /// are absent from the answer).
    pub async fn sync_state_data(
        &self,
        broker_names: &[String],
    ) -> Result<BrokerReplicasInfo, ClientError> {
        let request = RemotingCommand::bare_request(RequestCode::CONTROLLER_GET_SYNC_STATE_DATA)
            .with_body(serde_json::to_vec(broker_names).expect("names serialise"));
        let leader = self.leader().await?;
        let resp = check_success(&leader, self.invoke(request).await?)?;
        from_slice_lenient(&resp.body)
            .map_err(|e| ClientError::bad_body(&leader, "SyncStateSet data", e))
    }

    /// CONTROLLER_ELECT_MASTER for group `broker_name`: with `designated`, elect exactly that
    /// replica if it is eligible (alive and in the SyncStateSet); without, let the election
    /// policy choose. Answers other than SUCCESS come back as [`ElectMasterAnswer::code`]
    /// (e.g. CONTROLLER_MASTER_STILL_EXIST), since they are outcomes, not failures.
    pub async fn elect_master(
        &self,
        cluster_name: &str,
        broker_name: &str,
        designated: Option<i64>,
    ) -> Result<ElectMasterAnswer, ClientError> {
        let invoke_time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let request = RemotingCommand::request(
            RequestCode::CONTROLLER_ELECT_MASTER,
            &ElectMasterRequestHeader {
                cluster_name: Some(cluster_name.to_string()),
                broker_name: Some(broker_name.to_string()),
                broker_id: designated,
                designate_elect: Some(designated.is_some()),
                invoke_time: Some(invoke_time),
            },
        );
        let resp = self.invoke(request).await?;
        let from = self.leader().await.unwrap_or_default();
        let header: ElectMasterResponseHeader = resp
            .decode_header()
            .map_err(|e| ClientError::bad_body(&from, "election header", e))?;
        Ok(ElectMasterAnswer {
            code: resp.code,
            remark: resp.remark.clone().unwrap_or_default(),
            header,
            body: from_slice_lenient(&resp.body).unwrap_or_default(),
        })
    }
}

/// The controllers' answer to an election request.
#[derive(Debug, Clone)]
pub struct ElectMasterAnswer {
    /// SUCCESS (a new master), CONTROLLER_MASTER_STILL_EXIST, CONTROLLER_MASTER_NOT_AVAILABLE,
    /// CONTROLLER_ELECT_MASTER_FAILED, ...
    pub code: i32,
    /// The controllers' explanation.
    pub remark: String,
    /// The master after the request.
    pub header: ElectMasterResponseHeader,
    /// The group's members and the new SyncStateSet (empty when nothing changed).
    pub body: ElectMasterResponseBody,
}
