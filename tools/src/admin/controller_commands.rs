//! Controller-mode commands: `getControllerMetaData`, `getSyncStateSet`, `getBrokerEpoch`,
//! `electMaster`, `getControllerConfig`, `updateControllerConfig` and
//! `cleanBrokerMetadata`. Output follows Java's formats line for line; requests that change
//! state go to the controller leader (found through the `-a` addresses, following
//! redirects), the config commands to every `-a` address, `getBrokerEpoch` to the brokers.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use rocketmq_client::ControllerClient;
use rocketmq_common::config::Properties;
use rocketmq_common::controller::{EpochEntryCache, ReplicaIdentity};
use rocketmq_common::protocol::headers::controller::{
    CleanControllerBrokerDataRequestHeader, GetMetaDataResponseHeader,
};
use rocketmq_common::protocol::{RemotingCommand, RequestCode};
use rocketmq_common::remoting::{ClientConfig, RemotingClient};

use super::cli::{
    CleanBrokerMetadataArgs, Command, ControllerAddrArgs, ElectMasterArgs, GetBrokerEpochArgs,
    GetSyncStateSetArgs, UpdateControllerConfigArgs,
};
use super::error::AdminError;
use rocketmq_client::api::{MqClient, parse_namesrv_addrs};

fn controller_addrs(list: &str) -> Result<Vec<String>, AdminError> {
    let addrs = parse_namesrv_addrs(list);
    if addrs.is_empty() {
        return Err(AdminError::invalid(
            "controllerAddress",
            "give at least one controller as host:port",
        ));
    }
    Ok(addrs)
}

fn remoting(timeout: Duration) -> RemotingClient {
    RemotingClient::new(ClientConfig {
        connect_timeout: timeout.min(Duration::from_secs(3)),
        ..ClientConfig::default()
    })
}

/// Turns a non-success answer from `addr` into an error.
fn check(addr: &str, resp: RemotingCommand) -> Result<RemotingCommand, AdminError> {
    Ok(rocketmq_client::error::check_success(addr, resp)?)
}

fn or_null<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "null".to_string(), |v| v.to_string())
}

/// Runs `command` if it is a controller command; `None` otherwise. `namesrv` is needed
/// only by the commands that look brokers up.
pub async fn run(
    command: &Command,
    namesrv: Option<&MqClient>,
    timeout: Duration,
    out: &mut dyn Write,
) -> Option<Result<(), AdminError>> {
    let admin = || namesrv.ok_or_else(AdminError::no_name_server);
    Some(match command {
        Command::GetControllerMetaData(a) => metadata(a, timeout, out).await,
        Command::GetSyncStateSet(a) => sync_state_set(a, namesrv, timeout, out).await,
        Command::GetBrokerEpoch(a) => match admin() {
            Ok(client) => broker_epoch(client, a, out).await,
            Err(e) => Err(e),
        },
        Command::ElectMaster(a) => elect_master(a, timeout, out).await,
        Command::GetControllerConfig(a) => get_config(a, timeout, out).await,
        Command::UpdateControllerConfig(a) => update_config(a, timeout, out).await,
        Command::CleanBrokerMetadata(a) => clean_broker_metadata(a, timeout, out).await,
        _ => return None,
    })
}

async fn metadata(
    a: &ControllerAddrArgs,
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let addr = a.controller_address.trim();
    let resp = remoting(timeout)
        .invoke(
            addr,
            RemotingCommand::bare_request(RequestCode::CONTROLLER_GET_METADATA_INFO),
            timeout,
        )
        .await?;
    let h: GetMetaDataResponseHeader = check(addr, resp)?
        .decode_header()
        .map_err(|e| AdminError::bad_body(addr, "metadata header", e))?;
    write!(out, "\n#ControllerGroup\t{}", or_null(h.group))?;
    write!(
        out,
        "\n#ControllerLeaderId\t{}",
        or_null(h.controller_leader_id)
    )?;
    write!(
        out,
        "\n#ControllerLeaderAddress\t{}",
        or_null(h.controller_leader_address)
    )?;
    for peer in h
        .peers
        .unwrap_or_default()
        .split(';')
        .filter(|p| !p.is_empty())
    {
        write!(out, "\n#Peer:\t{peer}")?;
    }
    writeln!(out)?;
    Ok(())
}

fn replica(r: &ReplicaIdentity) -> String {
    format!(
        "ReplicaIdentity{{brokerName='{}', brokerId={}, brokerAddress='{}', alive={}}}",
        r.broker_name, r.broker_id, r.broker_address, r.alive
    )
}

/// `-i`: the pause between repetitions (3 s when given empty), `None` to run once.
fn repeat_every(interval: &Option<String>) -> Result<Option<Duration>, AdminError> {
    let Some(raw) = interval else {
        return Ok(None);
    };
    let secs = if raw.trim().is_empty() {
        3
    } else {
        raw.trim()
            .parse::<u64>()
            .map_err(|_| AdminError::invalid("interval", format!("{raw:?} is not seconds")))?
    };
    Ok(Some(Duration::from_secs(secs.max(1))))
}

async fn sync_state_set(
    a: &GetSyncStateSetArgs,
    admin: Option<&MqClient>,
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let ctl = ControllerClient::new(
        remoting(timeout),
        controller_addrs(&a.controller_address)?,
        timeout,
    );
    let names: Vec<String> = match (&a.broker_name, &a.cluster_name) {
        (Some(b), _) => vec![b.trim().to_string()],
        (None, Some(c)) => {
            let info = admin
                .ok_or_else(AdminError::no_name_server)?
                .cluster_info()
                .await?;
            let names = info
                .cluster_addr_table
                .get(c.trim())
                .filter(|n| !n.is_empty())
                .ok_or_else(|| AdminError::cluster_not_found(c.trim().to_string()))?;
            names.iter().cloned().collect()
        }
        (None, None) => unreachable!("clap requires -b or -c"),
    };
    let pause = repeat_every(&a.interval)?;
    loop {
        let info = ctl.sync_state_data(&names).await?;
        for (name, g) in &info.replicas_info_table {
            write!(
                out,
                "\n#brokerName\t{name}\n#MasterBrokerId\t{}\n#MasterAddr\t{}\n#MasterEpoch\t{}\n#SyncStateSetEpoch\t{}\n#SyncStateSetNums\t{}\n",
                or_null(g.master_broker_id),
                or_null(g.master_address.clone()),
                g.master_epoch,
                g.sync_state_set_epoch,
                g.in_sync_replicas.len()
            )?;
            for r in &g.in_sync_replicas {
                write!(out, "\nInSyncReplica:\t{}\n", replica(r))?;
            }
            for r in &g.not_in_sync_replicas {
                write!(out, "\nNotInSyncReplica:\t{}\n", replica(r))?;
            }
        }
        out.flush()?;
        match pause {
            Some(p) => tokio::time::sleep(p).await,
            None => return Ok(()),
        }
    }
}

async fn broker_epoch(
    client: &MqClient,
    a: &GetBrokerEpochArgs,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let info = client.cluster_info().await?;
    let names: Vec<String> = match (&a.broker_name, &a.cluster_name) {
        (Some(b), _) => vec![b.trim().to_string()],
        (None, Some(c)) => info
            .cluster_addr_table
            .get(c.trim())
            .ok_or_else(|| AdminError::cluster_not_found(c.trim().to_string()))?
            .iter()
            .cloned()
            .collect(),
        (None, None) => unreachable!("clap requires -b or -c"),
    };
    let addrs: Vec<String> = names
        .iter()
        .filter_map(|n| info.broker_addr_table.get(n))
        .flat_map(|d| d.broker_addrs.values().cloned())
        .collect();
    let pause = repeat_every(&a.interval)?;
    loop {
        for addr in &addrs {
            let resp = client.broker_epoch_cache(addr).await?;
            let resp = resp.as_slice();
            let cache: EpochEntryCache = serde_json::from_slice(resp)
                .map_err(|e| AdminError::bad_body(addr, "epoch cache", e))?;
            write!(
                out,
                "\n#clusterName\t{}\n#brokerName\t{}\n#brokerAddr\t{addr}\n#brokerId\t{}",
                cache.cluster_name, cache.broker_name, cache.broker_id
            )?;
            let n = cache.epoch_list.len();
            for (i, e) in cache.epoch_list.iter().enumerate() {
                // The open last entry ends where the log ends.
                let end = if i + 1 == n {
                    cache.max_offset
                } else {
                    e.end_offset
                };
                write!(
                    out,
                    "\n#Epoch: EpochEntry{{epoch={}, startOffset={}, endOffset={end}}}",
                    e.epoch, e.start_offset
                )?;
            }
            writeln!(out)?;
        }
        out.flush()?;
        match pause {
            Some(p) => tokio::time::sleep(p).await,
            None => return Ok(()),
        }
    }
}

async fn elect_master(
    a: &ElectMasterArgs,
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let ctl = ControllerClient::new(
        remoting(timeout),
        controller_addrs(&a.controller_address)?,
        timeout,
    );
    let answer = ctl
        .elect_master(
            a.cluster_name.trim(),
            a.broker_name.trim(),
            Some(a.broker_id),
        )
        .await?;
    if answer.code != 0 {
        let leader = ctl.leader().await.unwrap_or_default();
        return Err(rocketmq_common::remoting::RemotingError::Response {
            addr: leader,
            code: answer.code,
            remark: answer.remark,
        }
        .into());
    }
    let (h, body) = (answer.header, answer.body);
    write!(out, "\n#ClusterName\t{}", a.cluster_name.trim())?;
    write!(out, "\n#BrokerName\t{}", a.broker_name.trim())?;
    write!(out, "\n#BrokerMasterAddr\t{}", or_null(h.master_address))?;
    write!(out, "\n#MasterEpoch\t{}", or_null(h.master_epoch))?;
    writeln!(
        out,
        "\n#SyncStateSetEpoch\t{}",
        or_null(h.sync_state_set_epoch)
    )?;
    if let Some(group) = body.broker_member_group {
        for (id, addr) in &group.broker_addrs {
            writeln!(out, "\t#Broker\t{id}\t{addr}")?;
        }
    }
    Ok(())
}

async fn get_config(
    a: &ControllerAddrArgs,
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let client = remoting(timeout);
    let mut all = BTreeMap::new();
    for addr in controller_addrs(&a.controller_address)? {
        let resp = client
            .invoke(
                &addr,
                RemotingCommand::bare_request(RequestCode::GET_CONTROLLER_CONFIG),
                timeout,
            )
            .await?;
        let resp = check(&addr, resp)?;
        let text = String::from_utf8_lossy(&resp.body).into_owned();
        all.insert(addr, Properties::parse(&text));
    }
    for (addr, props) in all {
        writeln!(out, "============{addr}============")?;
        let mut pairs: Vec<(&str, &str)> = props.iter().collect();
        pairs.sort_unstable();
        for (k, v) in pairs {
            writeln!(out, "{k:<50}=  {v}")?;
        }
    }
    Ok(())
}

async fn update_config(
    a: &UpdateControllerConfigArgs,
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let addrs = controller_addrs(&a.controller_address)?;
    let (key, value) = (a.key.trim(), a.value.trim());
    let client = remoting(timeout);
    let mut last_error = None;
    for addr in &addrs {
        let request = RemotingCommand::bare_request(RequestCode::UPDATE_CONTROLLER_CONFIG)
            .with_body(format!("{key}={value}\n").into_bytes());
        match client.invoke(addr, request, timeout).await {
            Ok(resp) => {
                if let Err(e) = check(addr, resp) {
                    last_error = Some(e);
                }
            }
            Err(e) => last_error = Some(e.into()),
        }
    }
    if let Some(e) = last_error {
        return Err(e);
    }
    writeln!(
        out,
        "update controller config success![{}]\n{key} : {value}",
        addrs.join(", ")
    )?;
    Ok(())
}

async fn clean_broker_metadata(
    a: &CleanBrokerMetadataArgs,
    timeout: Duration,
    out: &mut dyn Write,
) -> Result<(), AdminError> {
    let cluster = a
        .cluster_name
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    if !a.clean_living_broker && cluster.is_none() {
        return Err(AdminError::invalid(
            "clusterName",
            "cleanLivingBroker option is false, clusterName option can not be empty.",
        ));
    }
    if let Some(ids) = &a.broker_controller_ids_to_clean
        && let Some(bad) = ids
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .find(|s| s.parse::<i64>().is_err())
    {
        return Err(AdminError::invalid(
            "brokerControllerIdsToClean",
            format!("{bad:?} is not a broker id; use ids separated by ';', e.g. 1;2;3"),
        ));
    }
    let ctl = ControllerClient::new(
        remoting(timeout),
        controller_addrs(&a.controller_address)?,
        timeout,
    );
    let request = RemotingCommand::request(
        RequestCode::CLEAN_BROKER_DATA,
        &CleanControllerBrokerDataRequestHeader {
            cluster_name: cluster.map(str::to_string),
            broker_name: a.broker_name.trim().to_string(),
            broker_controller_ids_to_clean: a.broker_controller_ids_to_clean.clone(),
            is_clean_living_broker: Some(a.clean_living_broker),
            invoke_time: Some(now_millis()),
        },
    );
    let leader = ctl.leader().await?;
    check(&leader, ctl.invoke(request).await?)?;
    writeln!(
        out,
        "clear broker {} metadata from controller success! ",
        a.broker_name.trim()
    )?;
    Ok(())
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
