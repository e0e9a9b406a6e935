//! Command line and the `run` subcommand: serve the webhook against a live cluster.

use crate::server::{self, ServerConfig, ServerError};
use crate::source::SnapshotSource;
use crate::tls::CertFiles;
use crate::watch::{self, Caches, NotSynced};
use crate::webhook::Webhook;
use clap::{Args, Parser, Subcommand};
#[cfg(test)]
use gatehouse_policy::SYSTEM_MASTERS;
use gatehouse_policy::{Admins, Policy};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(name = "gatehouse-admission-webhook", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch the cluster and answer AdmissionReviews on `--listen`.
    Run(RunArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[arg(long, env = "GATEHOUSE_WEBHOOK_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// PEM certificate chain; re-read every second.
    #[arg(long, env = "GATEHOUSE_WEBHOOK_TLS_CERT")]
    pub tls_cert: PathBuf,
    /// PEM private key matching `--tls-cert`; re-read every second.
    #[arg(long, env = "GATEHOUSE_WEBHOOK_TLS_KEY")]
    pub tls_key: PathBuf,
    /// Plain-HTTP `/metrics` and `/healthz`; must be a loopback address.
    #[arg(long, env = "GATEHOUSE_WEBHOOK_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Groups whose members are admins (`system:masters` always is). Repeatable, or
    /// comma-separated in the environment variable.
    #[arg(
        long = "admin-group",
        env = "GATEHOUSE_WEBHOOK_ADMIN_GROUPS",
        value_delimiter = ','
    )]
    pub admin_groups: Vec<String>,
    /// Users who are admins. Repeatable, or comma-separated in the environment variable.
    #[arg(
        long = "admin-user",
        env = "GATEHOUSE_WEBHOOK_ADMIN_USERS",
        value_delimiter = ','
    )]
    pub admin_users: Vec<String>,
    /// How often to look again for optional Gateway API CRDs (TLSRoute, ListenerSet, ...)
    /// that were not installed.
    #[arg(long, env = "GATEHOUSE_WEBHOOK_CRD_RECHECK_SECONDS", default_value_t = watch::DEFAULT_RECHECK.as_secs())]
    pub crd_recheck_seconds: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("--metrics-addr {0}: unauthenticated metrics are only served on loopback")]
    MetricsNotLoopback(SocketAddr),
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error("Kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    NotSynced(#[from] NotSynced),
    #[error("a server task stopped unexpectedly")]
    Stopped,
}

impl RunArgs {
    pub fn policy(&self) -> Policy {
        // An empty entry (a trailing comma, an unset value) names nobody.
        let named = |s: &&String| !s.trim().is_empty();
        let admins = self
            .admin_groups
            .iter()
            .filter(named)
            .fold(Admins::default(), |a, g| a.with_group(g.trim()));
        let admins = self
            .admin_users
            .iter()
            .filter(named)
            .fold(admins, |a, u| a.with_user(u.trim()));
        Policy::new(admins)
    }
}

pub async fn run(args: RunArgs) -> Result<(), RunError> {
    if let Some(addr) = args.metrics_addr
        && !addr.ip().is_loopback()
    {
        return Err(RunError::MetricsNotLoopback(addr));
    }
    let source = Arc::new(SnapshotSource::unsynced());
    let webhook = Arc::new(Webhook::new(args.policy(), source.clone()));
    // Serve before the caches sync, so the apiserver gets a clear "not synced" denial
    // instead of a connection refused that it may be configured to ignore.
    let server = server::start(
        webhook.clone(),
        ServerConfig {
            addr: args.listen,
            cert: CertFiles {
                cert: args.tls_cert,
                key: args.tls_key,
            },
            metrics_addr: args.metrics_addr,
            cert_poll: Duration::from_secs(1),
        },
    )
    .await?;
    let client = kube::Client::try_default().await?;
    let caches = Arc::new(Caches::new(client));
    let recheck = Duration::from_secs(args.crd_recheck_seconds.max(1));
    let snapshots = watch::keep_current(caches, source, webhook.metrics.clone(), recheck);
    tokio::select! {
        result = snapshots => result?,
        _ = server.wait() => {}
        _ = tokio::signal::ctrl_c() => return Ok(()),
    }
    Err(RunError::Stopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> RunArgs {
        let argv = ["webhook", "run", "--tls-cert", "c", "--tls-key", "k"];
        match Cli::try_parse_from(argv.iter().chain(args))
            .expect("parses")
            .command
        {
            Command::Run(run) => run,
        }
    }

    #[test]
    fn admin_groups_and_users_come_from_repeated_or_comma_separated_flags() {
        let admins = parse(&[
            "--admin-group",
            "platform-admins,sre",
            "--admin-group",
            "ops",
            "--admin-user",
            "alice,",
        ])
        .policy()
        .admins;
        let groups: Vec<&str> = admins.groups.iter().map(String::as_str).collect();
        assert_eq!(groups, ["ops", "platform-admins", "sre", SYSTEM_MASTERS]);
        let users: Vec<&str> = admins.users.iter().map(String::as_str).collect();
        assert_eq!(users, ["alice"]);
    }

    #[test]
    fn without_admin_flags_only_system_masters_is_admin() {
        let admins = parse(&[]).policy().admins;
        assert_eq!(admins, gatehouse_policy::Admins::default());
    }
}
