//! `rocketmq-operator`: reconciles `RocketMQCluster` resources. Flags map onto
//! [`rocketmq_operator::process::Options`]; everything else lives in the library.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use clap::Parser;
use rocketmq_operator::{
    failover::WatcherSettings,
    leader::LeaseConfig,
    process::{self, Exit, Options},
    telemetry::DEFAULT_TELEMETRY_ADDR,
};

/// Kubernetes operator for RocketMQ 5 clusters.
#[derive(Parser, Debug)]
#[command(name = "rocketmq-operator", version)]
struct Flags {
    /// Namespace whose clusters to reconcile; every namespace when empty.
    #[arg(long, env = "WATCH_NAMESPACE", default_value = "")]
    watch_namespace: String,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "TELEMETRY_ADDR", default_value = DEFAULT_TELEMETRY_ADDR)]
    telemetry_addr: SocketAddr,
    /// Run without leader election (only safe with a single replica).
    #[arg(long)]
    no_leader_election: bool,
    /// Name of the leader-election Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "rocketmq-operator")]
    lease_name: String,
    /// Namespace of the Lease: the operator's own.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// This replica's identity in the Lease and in Events.
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Seconds a Lease stays valid after its last renewal.
    #[arg(long, default_value_t = 15)]
    lease_duration_seconds: u64,
    /// Seconds between two looks of the failover watcher at each cluster's controllers.
    #[arg(long, default_value_t = 3)]
    failover_poll_seconds: u64,
    /// Seconds a broker group's master pod may be gone or NotReady before the operator asks
    /// the controllers to elect another master (when they have not already).
    #[arg(long, default_value_t = 30)]
    failover_grace_seconds: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for people, not for log collectors reading a pipe.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,kube=warn".into()),
        )
        .init();
    let flags = Flags::parse();
    let identity = flags
        .identity
        .unwrap_or_else(|| format!("rocketmq-operator-{}", std::process::id()));
    let lease = (!flags.no_leader_election).then(|| {
        let mut lease = LeaseConfig::new(flags.lease_name, flags.lease_namespace, identity.clone());
        lease.lease_duration = Duration::from_secs(flags.lease_duration_seconds.max(3));
        // client-go's proportions: renew deadline 2/3 and retry period 2/15 of the lease.
        lease.renew_deadline = lease.lease_duration * 2 / 3;
        lease.retry_period = lease.lease_duration * 2 / 15;
        lease
    });
    let failover = WatcherSettings {
        poll_interval: Duration::from_secs(flags.failover_poll_seconds.max(1)),
        elect_grace: Duration::from_secs(flags.failover_grace_seconds),
        ..WatcherSettings::default()
    };
    let options = Options {
        failover,
        watch_namespace: Some(flags.watch_namespace).filter(|namespace| !namespace.is_empty()),
        telemetry_addr: flags.telemetry_addr,
        lease,
        identity,
    };
    match process::run(options).await {
        Ok(Exit::Shutdown) => ExitCode::SUCCESS,
        Ok(Exit::LostLeadership) => ExitCode::from(2),
        Err(error) => {
            tracing::error!(%error, "operator failed");
            ExitCode::FAILURE
        }
    }
}
