use anyhow::Context;
use clap::{Parser, Subcommand};
use gatehouse_config_api::ServerTls;
use gatehouse_controller::addresses::Pool;
use gatehouse_controller::leader::LeaseConfig;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

// Each pass allocates and frees copies of every cached object; allocation was a quarter of
// a pass's profile with the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    version,
    about = "Gatehouse controller: Gateway API objects in, proxy config and status out"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Watch the cluster and stream config to the proxies that connect, until stopped.
    Run {
        /// Kubeconfig file; without it, in-cluster config or KUBECONFIG.
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Where proxies connect for their config stream (gRPC, plaintext: keep it on a
        /// private network).
        #[arg(long, default_value = "0.0.0.0:18000")]
        config_listen: SocketAddr,
        /// Certificate (PEM) the config API presents to proxies; with --config-tls-key and
        /// --config-client-ca it turns on mTLS.
        #[arg(long, requires_all = ["config_tls_key", "config_client_ca"])]
        config_tls_cert: Option<PathBuf>,
        #[arg(long, requires_all = ["config_tls_cert", "config_client_ca"])]
        config_tls_key: Option<PathBuf>,
        /// CA bundle (PEM) proxy client certificates must chain to.
        #[arg(long, requires_all = ["config_tls_cert", "config_tls_key"])]
        config_client_ca: Option<PathBuf>,
        /// Range Gateway addresses are assigned from.
        #[arg(long, default_value = "127.0.0.10-127.0.0.200")]
        address_pool: Pool,
        /// Config API URL provisioned proxies connect to (`gatehouse proxy --controller`),
        /// unless their GatewayClassConfig names one.
        #[arg(long)]
        proxy_controller_url: Option<String>,
        /// Least time between two reconcile passes (a change after a quiet spell is served
        /// at once).
        #[arg(long, default_value = "50")]
        debounce_ms: u64,
        /// Elect one leader among replicas through a Lease; off for a single local replica.
        #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
        leader_election: bool,
        /// Namespace of the Lease (in a cluster, the controller's own).
        #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
        lease_namespace: String,
        #[arg(long, default_value = "gatehouse-controller")]
        lease_name: String,
        /// This replica's name in the Lease; defaults to host name and process id.
        #[arg(long, env = "POD_NAME")]
        identity: Option<String>,
        /// Seconds an unrenewed Lease stays its holder's.
        #[arg(long, default_value_t = 15)]
        lease_seconds: u64,
        /// Seconds between looks for an optional CRD (GRPCRoute, TLSRoute, ReferenceGrant,
        /// gatehouse.dev kinds) that is not installed.
        #[arg(long, default_value_t = 30)]
        crd_recheck_seconds: u64,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Run {
            kubeconfig,
            config_listen,
            config_tls_cert,
            config_tls_key,
            config_client_ca,
            address_pool,
            proxy_controller_url,
            debounce_ms,
            leader_election,
            lease_namespace,
            lease_name,
            identity,
            lease_seconds,
            crd_recheck_seconds,
        } => {
            let lease = leader_election.then(|| LeaseConfig {
                namespace: lease_namespace,
                name: lease_name,
                identity: identity.unwrap_or_else(default_identity),
                duration: Duration::from_secs(lease_seconds),
                renew_every: Duration::from_secs(lease_seconds.div_ceil(5).max(1)),
            });
            let client = gatehouse_controller::client::connect(kubeconfig.as_deref())
                .await
                .context("connecting to the API server")?;
            let config_tls = match (config_tls_cert, config_tls_key, config_client_ca) {
                (Some(cert), Some(key), Some(ca)) => Some(ServerTls::load(&cert, &key, &ca)?),
                _ => None,
            };
            let config = gatehouse_controller::Config {
                config_listen,
                config_tls,
                pool: address_pool,
                debounce: Duration::from_millis(debounce_ms),
                lease,
                proxy_controller_url,
                crd_recheck: Duration::from_secs(crd_recheck_seconds.max(1)),
            };
            gatehouse_controller::run(client, config).await?;
            Ok(())
        }
    }
}

fn default_identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "controller".to_string());
    format!("{host}-{}", std::process::id())
}
