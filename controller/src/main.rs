use anyhow::Context;
use clap::{Parser, Subcommand};
use gatehouse_controller::addresses::Pool;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    /// Watch the cluster and program the proxies until stopped.
    Run {
        /// Kubeconfig file; without it, in-cluster config or KUBECONFIG.
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
        /// Admin API address of a proxy to program (repeatable).
        #[arg(long = "proxy-admin", required = true)]
        proxy_admin: Vec<SocketAddr>,
        /// Range Gateway addresses are assigned from.
        #[arg(long, default_value = "127.0.0.10-127.0.0.200")]
        address_pool: Pool,
        /// Quiet time after a change before reconciling.
        #[arg(long, default_value = "50")]
        debounce_ms: u64,
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
            proxy_admin,
            address_pool,
            debounce_ms,
        } => {
            let client = gatehouse_controller::client::connect(kubeconfig.as_deref())
                .await
                .context("connecting to the API server")?;
            let config = gatehouse_controller::Config {
                proxies: proxy_admin,
                pool: address_pool,
                debounce: Duration::from_millis(debounce_ms),
            };
            gatehouse_controller::run(client, config).await;
            Ok(())
        }
    }
}
