//! The controller's request handlers: RocketMQ's controller codes (904, 1001-1006,
//! 1009-1013) and the consensus traffic between controllers (1120-1122).
//!
//! Every state change is decided on the leader against its applied state and committed
//! through the consensus log before the answer goes out; a follower answers
//! CONTROLLER_NOT_LEADER naming the leader. Heartbeats, GET_METADATA_INFO and the config
//! codes are answered by any controller.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rocketmq_common::config::Properties;
use rocketmq_common::controller::SyncStateSet;
use rocketmq_common::json::from_slice_lenient;
use rocketmq_common::protocol::headers::controller::*;
use rocketmq_common::protocol::headers::namesrv::BrokerHeartbeatRequestHeader;
use rocketmq_common::protocol::{RemotingCommand, RequestCode, ResponseCode};
use rocketmq_common::remoting::{
    Dispatcher, ProcessResult, Reply, RequestContext, RequestProcessor,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::heartbeat::Heartbeat;
use crate::raft::network::RaftRequestHeader;
use crate::server::Controller;
use crate::state::{ElectRequest, MasterView};

/// Java's default `controllerHeartBeatTimeoutMills`.
const DEFAULT_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the controller's dispatch table.
pub fn dispatcher(controller: Arc<Controller>) -> Dispatcher {
    let mut d = Dispatcher::new();
    d.register_all(
        &[
            RequestCode::BROKER_HEARTBEAT,
            RequestCode::CONTROLLER_ALTER_SYNC_STATE_SET,
            RequestCode::CONTROLLER_ELECT_MASTER,
            RequestCode::CONTROLLER_REGISTER_BROKER,
            RequestCode::CONTROLLER_GET_REPLICA_INFO,
            RequestCode::CONTROLLER_GET_METADATA_INFO,
            RequestCode::CONTROLLER_GET_SYNC_STATE_DATA,
            RequestCode::UPDATE_CONTROLLER_CONFIG,
            RequestCode::GET_CONTROLLER_CONFIG,
            RequestCode::CLEAN_BROKER_DATA,
            RequestCode::CONTROLLER_GET_NEXT_BROKER_ID,
            RequestCode::CONTROLLER_APPLY_BROKER_ID,
            RequestCode::CONTROLLER_RAFT_APPEND_ENTRIES,
            RequestCode::CONTROLLER_RAFT_VOTE,
            RequestCode::CONTROLLER_RAFT_INSTALL_SNAPSHOT,
        ],
        Arc::new(ControllerProcessor(controller)),
    );
    d
}

struct ControllerProcessor(Arc<Controller>);

/// A handler's answer: the response, or an early error response (already built).
type Answer = Result<RemotingCommand, RemotingCommand>;

fn error(code: ResponseCode, remark: impl Into<String>) -> RemotingCommand {
    RemotingCommand::error(code, remark)
}

fn json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("controller bodies serialise to JSON")
}

fn decode_body<T: DeserializeOwned>(
    request: &RemotingCommand,
    what: &str,
) -> Result<T, RemotingCommand> {
    from_slice_lenient(&request.body).map_err(|e| {
        error(
            ResponseCode::SystemError,
            format!("cannot decode the {what} body: {e}"),
        )
    })
}

fn master_header(view: &MasterView) -> ElectMasterResponseHeader {
    ElectMasterResponseHeader {
        master_broker_id: view.master_broker_id,
        master_address: view.master_address.clone(),
        master_epoch: Some(view.master_epoch),
        sync_state_set_epoch: Some(view.sync_state_set_epoch),
    }
}

impl RequestProcessor for ControllerProcessor {
    fn process(&self, ctx: &RequestContext, request: RemotingCommand) -> Reply {
        let c = self.0.clone();
        match request.request_code() {
            Some(RequestCode::BROKER_HEARTBEAT) => {
                Reply::Now(respond(heartbeat(&c, ctx, &request)))
            }
            Some(RequestCode::CONTROLLER_GET_METADATA_INFO) => {
                Reply::Now(respond(Ok(metadata(&c))))
            }
            Some(RequestCode::GET_CONTROLLER_CONFIG) => Reply::Now(respond(Ok(get_config(&c)))),
            Some(RequestCode::UPDATE_CONTROLLER_CONFIG) => {
                Reply::Now(respond(update_config(&c, &request)))
            }
            _ => Reply::Later(Box::pin(async move {
                respond(process_async(&c, request).await)
            })),
        }
    }
}

fn respond(answer: Answer) -> ProcessResult {
    Ok(Some(answer.unwrap_or_else(|e| e)))
}

async fn process_async(c: &Controller, request: RemotingCommand) -> Answer {
    match request.request_code() {
        Some(RequestCode::CONTROLLER_GET_NEXT_BROKER_ID) => next_broker_id(c, &request).await,
        Some(RequestCode::CONTROLLER_APPLY_BROKER_ID) => apply_broker_id(c, &request).await,
        Some(RequestCode::CONTROLLER_REGISTER_BROKER) => register_broker(c, &request).await,
        Some(RequestCode::CONTROLLER_GET_REPLICA_INFO) => replica_info(c, &request).await,
        Some(RequestCode::CONTROLLER_GET_SYNC_STATE_DATA) => sync_state_data(c, &request).await,
        Some(RequestCode::CONTROLLER_ALTER_SYNC_STATE_SET) => {
            alter_sync_state_set(c, &request).await
        }
        Some(RequestCode::CONTROLLER_ELECT_MASTER) => elect_master(c, &request).await,
        Some(RequestCode::CLEAN_BROKER_DATA) => clean_broker_data(c, &request).await,
        Some(
            code @ (RequestCode::CONTROLLER_RAFT_APPEND_ENTRIES
            | RequestCode::CONTROLLER_RAFT_VOTE
            | RequestCode::CONTROLLER_RAFT_INSTALL_SNAPSHOT),
        ) => raft_rpc(c, code, &request).await,
        _ => Err(error(
            ResponseCode::RequestCodeNotSupported,
            format!(
                "request code {} is not supported by the controller",
                request.code
            ),
        )),
    }
}

fn header<H: rocketmq_common::protocol::CommandHeader>(
    request: &RemotingCommand,
) -> Result<H, RemotingCommand> {
    request
        .decode_header()
        .map_err(|e| error(ResponseCode::SystemError, e.to_string()))
}

fn heartbeat(c: &Controller, ctx: &RequestContext, request: &RemotingCommand) -> Answer {
    let h: BrokerHeartbeatRequestHeader = header(request)?;
    let Some(broker_id) = h.broker_id else {
        return Err(error(
            ResponseCode::ControllerInvalidRequest,
            "Heart beat with empty brokerId",
        ));
    };
    c.live.on_heartbeat(
        Heartbeat {
            cluster_name: h.cluster_name,
            broker_name: h.broker_name,
            broker_id,
            broker_addr: h.broker_addr,
            epoch: h.epoch.unwrap_or(-1),
            max_offset: h.max_offset.unwrap_or(-1),
            confirm_offset: h.confirm_offset.unwrap_or(-1),
            timeout: h
                .heartbeat_timeout_mills
                .filter(|t| *t > 0)
                .map_or(DEFAULT_HEARTBEAT_TIMEOUT, |t| {
                    Duration::from_millis(t as u64)
                }),
            election_priority: h.election_priority.unwrap_or(i32::MAX),
        },
        ctx.connection.id(),
        Instant::now(),
    );
    Ok(RemotingCommand::response(
        ResponseCode::Success,
        Some("Heart beat success".into()),
    ))
}

fn metadata(c: &Controller) -> RemotingCommand {
    let leader = c.leader();
    let peers: String = c
        .peers
        .iter()
        .map(|p| format!("{}:{};", p.id, p.addr))
        .collect();
    RemotingCommand::success().with_header(&GetMetaDataResponseHeader {
        group: Some(c.config.controller_dleger_group.clone()),
        controller_leader_id: leader.as_ref().map(|l| l.id.clone()),
        controller_leader_address: leader.as_ref().map(|l| l.addr.clone()),
        is_leader: Some(c.is_leader()),
        peers: Some(peers),
    })
}

fn effective_config(c: &Controller) -> std::collections::BTreeMap<String, String> {
    let mut props = c.config.to_properties();
    props.insert(
        "enableElectUncleanMaster".into(),
        c.live_settings
            .enable_elect_unclean_master
            .load(Ordering::Relaxed)
            .to_string(),
    );
    props.insert(
        "notifyBrokerRoleChanged".into(),
        c.live_settings
            .notify_broker_role_changed
            .load(Ordering::Relaxed)
            .to_string(),
    );
    props
}

fn get_config(c: &Controller) -> RemotingCommand {
    let text: String = effective_config(c)
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    RemotingCommand::success().with_body(text.into_bytes())
}

fn update_config(c: &Controller, request: &RemotingCommand) -> Answer {
    let text = std::str::from_utf8(&request.body)
        .map_err(|_| error(ResponseCode::SystemError, "config body is not UTF-8"))?;
    let props = Properties::parse(text);
    let black: Vec<&str> = c
        .config
        .config_black_list
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let known = effective_config(c);
    for (key, value) in props.iter() {
        if black.contains(&key) {
            return Err(error(
                ResponseCode::NoPermission,
                format!("Can not update config in black list: {key}"),
            ));
        }
        match key {
            "enableElectUncleanMaster" | "notifyBrokerRoleChanged" => {
                if !matches!(value.trim(), "true" | "false") {
                    return Err(error(
                        ResponseCode::InvalidParameter,
                        format!("{key} must be true or false, got {value:?}"),
                    ));
                }
            }
            other if known.contains_key(other) => {
                return Err(error(
                    ResponseCode::InvalidParameter,
                    format!(
                        "{other} takes effect only after a restart; change it in the config file"
                    ),
                ));
            }
            other => {
                return Err(error(
                    ResponseCode::InvalidParameter,
                    format!("unknown controller config key {other}"),
                ));
            }
        }
    }
    for (key, value) in props.iter() {
        let v = value.trim() == "true";
        match key {
            "enableElectUncleanMaster" => c
                .live_settings
                .enable_elect_unclean_master
                .store(v, Ordering::Relaxed),
            _ => c
                .live_settings
                .notify_broker_role_changed
                .store(v, Ordering::Relaxed),
        }
    }
    Ok(RemotingCommand::success())
}

async fn next_broker_id(c: &Controller, request: &RemotingCommand) -> Answer {
    let h: GetNextBrokerIdRequestHeader = header(request)?;
    let next = c.read(|s| s.next_broker_id(&h.broker_name)).await?;
    Ok(
        RemotingCommand::success().with_header(&GetNextBrokerIdResponseHeader {
            cluster_name: Some(h.cluster_name),
            broker_name: Some(h.broker_name),
            next_broker_id: Some(next),
        }),
    )
}

async fn apply_broker_id(c: &Controller, request: &RemotingCommand) -> Answer {
    let h: ApplyBrokerIdRequestHeader = header(request)?;
    let _serial = c.writes.lock().await;
    let event = c
        .read(|s| {
            s.decide_apply_broker_id(
                &h.cluster_name,
                &h.broker_name,
                h.applied_broker_id,
                &h.register_check_code,
            )
        })
        .await?
        .map_err(|r| error(r.code, r.remark))?;
    c.commit(event).await?;
    Ok(
        RemotingCommand::success().with_header(&ApplyBrokerIdResponseHeader {
            cluster_name: Some(h.cluster_name),
            broker_name: Some(h.broker_name),
        }),
    )
}

async fn register_broker(c: &Controller, request: &RemotingCommand) -> Answer {
    let h: RegisterBrokerToControllerRequestHeader = header(request)?;
    let Some(broker_id) = h.broker_id else {
        return Err(error(
            ResponseCode::ControllerInvalidRequest,
            "register without a brokerId: apply for one first",
        ));
    };
    let _serial = c.writes.lock().await;
    let (view, set, event) = c
        .read(|s| s.decide_register(&h.broker_name, broker_id, &h.broker_address, &c.live))
        .await?
        .map_err(|r| error(r.code, r.remark))?;
    if let Some(event) = event {
        c.commit(event).await?;
    }
    Ok(RemotingCommand::success()
        .with_header(&RegisterBrokerToControllerResponseHeader {
            cluster_name: Some(h.cluster_name),
            broker_name: Some(h.broker_name),
            master_broker_id: view.master_broker_id,
            master_address: view.master_address,
            master_epoch: Some(view.master_epoch),
            sync_state_set_epoch: Some(view.sync_state_set_epoch),
        })
        .with_body(json(&set)))
}

async fn replica_info(c: &Controller, request: &RemotingCommand) -> Answer {
    let h: GetReplicaInfoRequestHeader = header(request)?;
    let (view, set) = c
        .read(|s| s.replica_info(&h.broker_name))
        .await?
        .map_err(|r| error(r.code, r.remark))?;
    Ok(RemotingCommand::success()
        .with_header(&GetReplicaInfoResponseHeader {
            master_broker_id: view.master_broker_id,
            master_address: view.master_address,
            master_epoch: Some(view.master_epoch),
        })
        .with_body(json(&set)))
}

async fn sync_state_data(c: &Controller, request: &RemotingCommand) -> Answer {
    let names: Vec<String> = decode_body(request, "broker name list")
        .ok()
        .filter(|n: &Vec<String>| !n.is_empty())
        .ok_or_else(|| {
            error(
                ResponseCode::SystemError,
                "the body must be a JSON array of broker names",
            )
        })?;
    let info = c.read(|s| s.sync_state_data(&names, &c.live)).await?;
    Ok(RemotingCommand::success().with_body(json(&info)))
}

async fn alter_sync_state_set(c: &Controller, request: &RemotingCommand) -> Answer {
    let h: AlterSyncStateSetRequestHeader = header(request)?;
    let proposed: SyncStateSet = decode_body(request, "SyncStateSet")?;
    let _serial = c.writes.lock().await;
    let (new_set, event) = c
        .read(|s| {
            s.decide_alter_sync_state_set(
                &h.broker_name,
                h.master_broker_id,
                h.master_epoch,
                &proposed,
                &c.live,
            )
        })
        .await?
        .map_err(|r| error(r.code, r.remark))?;
    c.commit(event).await?;
    tracing::info!(
        broker = %h.broker_name,
        set = ?new_set.sync_state_set,
        epoch = new_set.sync_state_set_epoch,
        "SyncStateSet changed"
    );
    Ok(RemotingCommand::success()
        .with_header(&AlterSyncStateSetResponseHeader {
            new_sync_state_set_epoch: Some(new_set.sync_state_set_epoch),
        })
        .with_body(json(&new_set)))
}

async fn elect_master(c: &Controller, request: &RemotingCommand) -> Answer {
    let h: ElectMasterRequestHeader = header(request)?;
    let broker_name = h.broker_name.unwrap_or_default();
    if broker_name.is_empty() {
        return Err(error(
            ResponseCode::ControllerInvalidRequest,
            "elect master without a brokerName",
        ));
    }
    let outcome = c
        .elect(&ElectRequest {
            broker_name,
            broker_id: h.broker_id.filter(|id| *id > 0),
            designate: h.designate_elect.unwrap_or(false),
        })
        .await?;
    Ok(
        RemotingCommand::response(outcome.code, Some(outcome.remark.clone()))
            .with_header(&master_header(&outcome.view))
            .with_body(json(&outcome.body)),
    )
}

async fn clean_broker_data(c: &Controller, request: &RemotingCommand) -> Answer {
    let h: CleanControllerBrokerDataRequestHeader = header(request)?;
    let _serial = c.writes.lock().await;
    let event = c
        .read(|s| {
            s.decide_clean_broker_data(
                &h.broker_name,
                h.broker_controller_ids_to_clean.as_deref(),
                h.is_clean_living_broker.unwrap_or(false),
                &c.live,
            )
        })
        .await?
        .map_err(|r| error(r.code, r.remark))?;
    c.commit(event).await?;
    Ok(RemotingCommand::success())
}

async fn raft_rpc(c: &Controller, code: RequestCode, request: &RemotingCommand) -> Answer {
    let h: RaftRequestHeader = header(request)?;
    if h.target_node_id != c.me.node_id || h.group != c.config.controller_dleger_group {
        return Err(error(
            ResponseCode::ControllerInvalidRequest,
            format!(
                "consensus request for node {} of group {:?} reached node {} of group {:?}: check controllerDLegerPeers",
                h.target_node_id, h.group, c.me.node_id, c.config.controller_dleger_group
            ),
        ));
    }
    let bad = |e: serde_json::Error| {
        error(
            ResponseCode::SystemError,
            format!("bad consensus request: {e}"),
        )
    };
    let body = match code {
        RequestCode::CONTROLLER_RAFT_APPEND_ENTRIES => json(
            &c.raft
                .append_entries(serde_json::from_slice(&request.body).map_err(bad)?)
                .await,
        ),
        RequestCode::CONTROLLER_RAFT_VOTE => json(
            &c.raft
                .vote(serde_json::from_slice(&request.body).map_err(bad)?)
                .await,
        ),
        _ => json(
            &c.raft
                .install_snapshot(serde_json::from_slice(&request.body).map_err(bad)?)
                .await,
        ),
    };
    Ok(RemotingCommand::success().with_body(body))
}
