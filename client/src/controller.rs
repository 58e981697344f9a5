//! A client of the controller group: finds the leader with CONTROLLER_GET_METADATA_INFO,
//! sends requests to it, and follows it when a controller answers CONTROLLER_NOT_LEADER.

use std::time::Duration;

use std::sync::RwLock;

use rocketmq_common::protocol::headers::controller::{
    GetMetaDataResponseHeader, NotLeaderResponseHeader,
};
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{RemotingClient, RemotingError};

/// How many times a request follows a leader change before giving up.
const MAX_REDIRECTS: usize = 3;

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
            attempt += 1;
            *self.leader.write().expect("lock") = named;
            if attempt > MAX_REDIRECTS {
                return result;
            }
            if self.leader.read().expect("lock").is_none() {
                // No leader named: give an election a moment before asking around again.
                tokio::time::sleep(Duration::from_millis(200)).await;
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
}
