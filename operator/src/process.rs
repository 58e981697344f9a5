//! The operator process: telemetry server, leader election, and the controller run only
//! while this replica leads. `main.rs` parses flags into [`Options`] and calls [`run`].

use std::{net::SocketAddr, sync::Arc};

use kube::{Client, runtime::events::Reporter};
use tokio::sync::watch;

use crate::{
    error::{Error, Result},
    failover::{self, WatcherSettings},
    leader::{LeaseConfig, LeaseElector},
    reconciler::{self, Context},
    telemetry::{self, Health, Metrics},
};

/// Process settings.
#[derive(Clone, Debug)]
pub struct Options {
    /// Namespace to watch; every namespace when `None`.
    pub watch_namespace: Option<String>,
    /// Address of `/healthz`, `/readyz` and `/metrics`.
    pub telemetry_addr: SocketAddr,
    /// Lease settings; `None` runs without election (a single replica, or local testing).
    pub lease: Option<LeaseConfig>,
    /// Name Events are reported under (the pod name).
    pub identity: String,
    /// How the failover watcher polls and when it asks for elections.
    pub failover: WatcherSettings,
}

/// How the process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// SIGTERM or Ctrl-C: everything stopped in order.
    Shutdown,
    /// Leadership was lost while reconciling; the process exits so it restarts with empty
    /// caches and competes again, as client-go based operators do.
    LostLeadership,
}

/// Runs until a shutdown signal or the loss of leadership.
pub async fn run(options: Options) -> Result<Exit> {
    let client = Client::try_default().await.map_err(Error::Client)?;
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    let (stop_sender, stop) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        let _ = stop_sender.send(true);
    });

    let listener = telemetry::bind(options.telemetry_addr).await?;
    tracing::info!(address = %options.telemetry_addr, "serving /healthz, /readyz and /metrics");
    let telemetry_server = tokio::spawn(telemetry::serve(
        listener,
        health.clone(),
        metrics.clone(),
        stopped(stop.clone()),
    ));

    // Ready once the API server has answered: a replica that cannot reach it is useless
    // both as leader and as standby.
    tokio::spawn(mark_ready_when_api_answers(client.clone(), health.clone()));

    let reporter = Reporter {
        controller: "rocketmq-operator".into(),
        instance: Some(options.identity.clone()),
    };
    let context = Arc::new(Context::new(client.clone(), reporter, metrics.clone()));
    let exit = match options.lease.clone() {
        None => {
            metrics.set_leader(true);
            let stop = stop.clone();
            reconcile_and_watch(
                context,
                options.watch_namespace.as_deref(),
                options.failover.clone(),
                move || stopped(stop.clone()),
            )
            .await;
            Exit::Shutdown
        }
        Some(lease) => {
            lead_then_reconcile(
                client,
                lease,
                context,
                &options,
                &metrics,
                health.clone(),
                stop,
            )
            .await
        }
    };
    match exit {
        Exit::Shutdown => {
            let _ = telemetry_server.await;
        }
        // No stop signal will come; the server must not keep the process alive.
        Exit::LostLeadership => telemetry_server.abort(),
    }
    Ok(exit)
}

async fn lead_then_reconcile(
    client: Client,
    lease: LeaseConfig,
    context: Arc<Context>,
    options: &Options,
    metrics: &Metrics,
    health: Arc<Health>,
    stop: watch::Receiver<bool>,
) -> Exit {
    let (leading_sender, mut leading) = watch::channel(false);
    let elector = LeaseElector::new(client, lease);
    let elector_stop = stopped(stop.clone());
    let elector_health = health.clone();
    let elector_task = tokio::spawn(async move {
        elector
            .run(leading_sender, &elector_health, elector_stop)
            .await
    });

    tracing::info!("waiting for leadership");
    let mut stop_for_wait = stop.clone();
    tokio::select! {
        result = leading.wait_for(|leading| *leading) => {
            if result.is_err() {
                return Exit::Shutdown;
            }
        }
        _ = stop_for_wait.wait_for(|stop| *stop) => {
            let _ = elector_task.await;
            return Exit::Shutdown;
        }
    }
    metrics.set_leader(true);
    tracing::info!("leading: starting the controller");

    let shutdown_or_lost = {
        let stop = stop.clone();
        move || {
            let stop = stop.clone();
            let mut lost = leading.clone();
            async move {
                tokio::select! {
                    () = stopped(stop) => {}
                    _ = lost.wait_for(|leading| !*leading) => {}
                }
            }
        }
    };
    reconcile_and_watch(
        context,
        options.watch_namespace.as_deref(),
        options.failover.clone(),
        shutdown_or_lost,
    )
    .await;
    metrics.set_leader(false);
    if *stop.borrow() {
        // The elector sees the same stop signal and releases the Lease.
        let _ = elector_task.await;
        Exit::Shutdown
    } else {
        tracing::error!("lost leadership, exiting so a restart competes again");
        elector_task.abort();
        Exit::LostLeadership
    }
}

/// The reconciler and the failover watcher side by side, both until `shutdown()` resolves.
async fn reconcile_and_watch<F>(
    context: Arc<Context>,
    watch_namespace: Option<&str>,
    failover: WatcherSettings,
    shutdown: impl Fn() -> F,
) where
    F: std::future::Future<Output = ()> + Send + Sync + 'static,
{
    tokio::join!(
        reconciler::run(context.clone(), watch_namespace, shutdown()),
        failover::run(context, watch_namespace, failover, shutdown()),
    );
}

async fn mark_ready_when_api_answers(client: Client, health: Arc<Health>) {
    loop {
        match client.apiserver_version().await {
            Ok(version) => {
                tracing::info!(version = %version.git_version, "connected to the Kubernetes API");
                health.set_ready(true);
                return;
            }
            Err(error) => tracing::warn!(%error, "Kubernetes API not reachable yet"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    }
}

/// Resolves once `stop` turns true (or its sender is gone).
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the operator");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
