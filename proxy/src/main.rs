use anyhow::Context;
use clap::{Parser, Subcommand};
use gatehouse_proxy::{Binding, Options, Proxy, echo::EchoBackend, listeners, standalone, stream};
use pingora_core::apps::HttpServerOptions;
use pingora_core::apps::http_app::HttpServer;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

// Many small, long-lived allocations (one set per route): mimalloc keeps RSS closer to
// what is live than the system allocator does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "gatehouse", version, about = "Gatehouse gateway data plane")]
struct Cli {
    /// Worker threads; defaults to the number of cores.
    #[arg(long, global = true, env = "GATEHOUSE_THREADS")]
    threads: Option<usize>,
    /// On SIGTERM, how long open connections may take to finish before exit.
    /// Send every request through Pingora's general proxy, including the plain-HTTP GETs
    /// the HTTP/1.1 fast path would take (for comparison, or if the fast path misbehaves).
    #[arg(long, global = true, env = "GATEHOUSE_NO_HTTP1_FAST_PATH")]
    no_http1_fast_path: bool,
    #[arg(long, global = true, default_value_t = 30)]
    drain_seconds: u64,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy, configured by the controller's config stream (or, without
    /// --controller, only through the admin API).
    Proxy {
        /// Admin API address (deltas in, stats out). Keep it on loopback.
        #[arg(long, default_value = "127.0.0.1:9901")]
        admin: SocketAddr,
        /// Controller config API, e.g. http://gatehouse-controller:18000 (repeatable: the
        /// replicas, tried in turn until the leader accepts).
        #[arg(long = "controller")]
        controllers: Vec<String>,
        /// Gateway this proxy serves, as namespace/name (repeatable); none: every Gateway
        /// of the controller's classes.
        #[arg(long = "gateway", requires = "controllers")]
        gateways: Vec<String>,
        /// CA (PEM) the controller's certificate must chain to; needed for https://
        /// controller URLs, with --client-cert and --client-key (mTLS).
        #[arg(long, requires_all = ["client_cert", "client_key"])]
        controller_ca: Option<PathBuf>,
        /// This proxy's client certificate (PEM) for the config stream.
        #[arg(long, requires_all = ["controller_ca", "client_key"])]
        client_cert: Option<PathBuf>,
        #[arg(long, requires_all = ["controller_ca", "client_cert"])]
        client_key: Option<PathBuf>,
        /// Bind every listener on 0.0.0.0 (or ::) at its port instead of the address it
        /// names: for a proxy behind a Service, whose Gateway address is not its own.
        /// Listeners sharing a port are then told apart by hostname and SNI only.
        #[arg(long)]
        bind_any: bool,
    },
    /// Serve a directory of Kubernetes YAML (Gateway, HTTPRoute, GRPCRoute, TLSRoute, Service,
    /// EndpointSlice, kubernetes.io/tls Secret...),
    /// applying every change to it as a delta.
    Standalone {
        #[arg(long)]
        config: PathBuf,
        /// Address listeners bind when their Gateway names none.
        #[arg(long, default_value = "127.0.0.1")]
        address: IpAddr,
        #[arg(long)]
        admin: Option<SocketAddr>,
        /// How often the directory is checked for changes.
        #[arg(long, default_value_t = 200)]
        poll_ms: u64,
    },
    /// A small echo backend for examples and tests.
    Echo {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long, default_value = "echo")]
        name: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,pingora_core=warn,pingora_proxy=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let drain_seconds = cli.drain_seconds;
    let threads = cli
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let options = Options {
        http1_fast_path: !cli.no_http1_fast_path,
        ..Options::new(threads)
    };
    let runtime = build_runtime(threads)?;
    runtime.block_on(async move {
        match cli.command {
            Command::Proxy {
                admin,
                controllers,
                gateways,
                controller_ca,
                client_cert,
                client_key,
                bind_any,
            } => {
                gatehouse_core::scope::Scope::parse(&gateways).context("--gateway")?;
                let tls = stream::client_tls(&controllers, controller_ca, client_cert, client_key)?;
                let binding = if bind_any {
                    Binding::AnyAddress
                } else {
                    Binding::AsConfigured
                };
                let proxy = Proxy::start_with(Options {
                    binding,
                    ..options
                });
                let addr = proxy
                    .serve_admin(admin)
                    .await
                    .context("binding admin API")?;
                tracing::info!(%addr, threads, "proxy ready; admin API listening");
                let stream = stream::StreamConfig {
                    controllers,
                    gateways,
                    backoff: stream::Backoff::default(),
                    tls,
                };
                tokio::select! {
                    () = stream::run(proxy.store.clone(), stream.clone()), if !stream.controllers.is_empty() => {}
                    () = wait_for_signal() => {}
                }
                drain(&proxy, drain_seconds).await;
            }
            Command::Standalone {
                config,
                address,
                admin,
                poll_ms,
            } => {
                let proxy = Proxy::start_with(options);
                if let Some(admin) = admin {
                    let addr = proxy
                        .serve_admin(admin)
                        .await
                        .context("binding admin API")?;
                    tracing::info!(%addr, "admin API listening");
                }
                let watcher = standalone::Watcher::new(
                    config,
                    standalone::options(address),
                    proxy.store.clone(),
                );
                tokio::select! {
                    _ = watcher.run(Duration::from_millis(poll_ms)) => {}
                    _ = wait_for_signal() => {}
                }
                drain(&proxy, drain_seconds).await;
            }
            Command::Echo { listen, name } => {
                let mut server = HttpServer::new_app(EchoBackend::new(name.clone()));
                let mut options = HttpServerOptions::default();
                options.h2c = true;
                server.server_options = Some(options);
                let (_stop, stop_rx) = tokio::sync::watch::channel(false);
                let addr = listeners::serve(listen, Arc::new(server), stop_rx)
                    .await
                    .with_context(|| format!("binding {listen}"))?;
                tracing::info!(%addr, %name, "echo backend listening");
                wait_for_signal().await;
            }
        }
        anyhow::Ok(())
    })
}

/// One worker gets a current-thread runtime: every task then runs on the thread that polls
/// the sockets, with no work-stealing queues, no cross-thread wake-ups and no parked idle
/// worker to unpark. More workers share one multi-thread runtime.
fn build_runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}

async fn drain(proxy: &Proxy, seconds: u64) {
    tracing::info!(
        connections = proxy.listeners.connections(),
        "draining: no new connections"
    );
    let left = proxy.drain(Duration::from_secs(seconds)).await;
    tracing::info!(left, "drained");
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
