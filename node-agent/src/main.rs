use anyhow::Context;
use clap::{Parser, Subcommand};
use gatehouse_node_agent::config::AgentConfig;
use gatehouse_node_agent::image_map::ImageMap;
use gatehouse_node_agent::ipam::PodCidr;
use gatehouse_node_agent::kubelet_api::TlsFiles;
use gatehouse_node_agent::names::{Prefixes, check, check_ifname};
use gatehouse_node_agent::{agent, launcher};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    version,
    about = "Gatehouse node agent: runs a cluster's pods as local processes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register the node and run the pods bound to it until SIGINT/SIGTERM.
    Run(Box<RunArgs>),
    /// Internal: inside a pod's namespaces, mount volumes and exec the container's program.
    Launch { spec: PathBuf },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Kubeconfig with the node's identity (system:node:<name>).
    #[arg(long)]
    kubeconfig: PathBuf,
    #[arg(long)]
    node_name: String,
    /// JSON object: image repository (no tag) -> local program.
    #[arg(long)]
    image_map: PathBuf,
    /// Pod addresses; the first host address goes to the bridge and is the node's InternalIP.
    #[arg(long, default_value = "198.19.0.0/16")]
    pod_cidr: PodCidr,
    #[arg(long, default_value = "ghpods0")]
    bridge: String,
    #[arg(long, default_value = "ghpod-")]
    netns_prefix: String,
    #[arg(long, default_value = "ghp")]
    veth_prefix: String,
    #[arg(long, default_value = "/var/tmp/gatehouse-node-agent")]
    state_dir: PathBuf,
    #[arg(long, default_value = "10250")]
    kubelet_port: u16,
    /// CA whose certificates may call the kubelet API (the API server's client cert).
    #[arg(long)]
    client_ca_file: PathBuf,
    /// Kubelet API serving certificate and key; self-signed when absent.
    #[arg(long, requires = "tls_private_key_file")]
    tls_cert_file: Option<PathBuf>,
    #[arg(long, requires = "tls_cert_file")]
    tls_private_key_file: Option<PathBuf>,
    #[arg(long, default_value = "1000")]
    restart_backoff_ms: u64,
    #[arg(long, default_value = "60")]
    restart_backoff_max_s: u64,
    #[arg(long, default_value = "10")]
    heartbeat_s: u64,
    #[arg(long, default_value = "10")]
    shutdown_grace_s: u64,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Launch { spec } => {
            let spec = launcher::read_spec(&spec)?;
            Err(launcher::launch(&spec).into())
        }
        Command::Run(args) => run(*args),
    }
}

#[tokio::main]
async fn run(a: RunArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    check("--node-name", &a.node_name, 63)?;
    check_ifname("--bridge", &a.bridge)?;
    let config = AgentConfig {
        prefixes: Prefixes::new(&a.netns_prefix, &a.veth_prefix)?,
        images: ImageMap::load(&a.image_map)?,
        agent_exe: std::env::current_exe().context("locating this binary for the launcher")?,
        node_name: a.node_name,
        cidr: a.pod_cidr,
        bridge: a.bridge,
        state_dir: a.state_dir,
        kubelet_port: a.kubelet_port,
        restart_backoff: Duration::from_millis(a.restart_backoff_ms),
        restart_backoff_max: Duration::from_secs(a.restart_backoff_max_s),
        heartbeat: Duration::from_secs(a.heartbeat_s.max(1)),
        shutdown_grace: Duration::from_secs(a.shutdown_grace_s),
    };
    let kubeconfig = kube::config::Kubeconfig::read_from(&a.kubeconfig)
        .with_context(|| format!("reading {}", a.kubeconfig.display()))?;
    let client_config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .with_context(|| format!("using {}", a.kubeconfig.display()))?;
    let client = kube::Client::try_from(client_config)?;
    let tls = TlsFiles {
        cert: a.tls_cert_file,
        key: a.tls_private_key_file,
        client_ca: a.client_ca_file,
    };
    agent::run(client, config, tls, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
