//! Wiring: node registration and heartbeats, the binder, the kubelet API, and one
//! worker per pod bound to this node; orderly cleanup on shutdown.

use crate::config::AgentConfig;
use crate::ipam::Ipam;
use crate::kubelet_api::{self, TlsFiles};
use crate::logs::LogIndex;
use crate::mountpoints::Mountpoints;
use crate::pod_worker::{self, PodEvent};
use crate::{binder, cleanup, netns, node};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// What every pod worker reaches for.
pub struct Shared {
    pub client: Client,
    pub config: AgentConfig,
    pub ipam: Mutex<Ipam>,
    pub logs: LogIndex,
    pub mountpoints: Mountpoints,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("preparing {path}: {source}")]
    StateDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("bridge {bridge}: {source}")]
    Bridge {
        bridge: String,
        source: netns::NetError,
    },
    #[error(transparent)]
    Node(#[from] node::NodeError),
    #[error(transparent)]
    KubeletApi(#[from] kubelet_api::ApiError),
}

/// Runs until `stop` resolves, then stops every pod and removes what the agent made.
pub async fn run(
    client: Client,
    config: AgentConfig,
    tls: TlsFiles,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    std::fs::create_dir_all(config.pods_dir()).map_err(|source| AgentError::StateDir {
        path: config.pods_dir(),
        source,
    })?;
    let shared = Arc::new(Shared {
        mountpoints: Mountpoints::new(config.state_dir.join("mountpoints")),
        ipam: Mutex::new(Ipam::new(config.cidr)),
        logs: LogIndex::default(),
        client: client.clone(),
        config: config.clone(),
    });
    cleanup::sweep(&config, &shared.mountpoints).await;
    netns::ensure_bridge(&config.bridge, config.cidr)
        .await
        .map_err(|source| AgentError::Bridge {
            bridge: config.bridge.clone(),
            source,
        })?;
    let result = serve(shared.clone(), tls, stop).await;
    tracing::info!("stopping: cleaning up pods, namespaces and the bridge");
    let since = Timestamp::now();
    let status = node::status(&config, false, "gatehouse node agent stopped", since, since);
    if let Err(e) = node::write_status(&client, &config, status).await {
        tracing::warn!("{e}");
    }
    cleanup::sweep(&config, &shared.mountpoints).await;
    if let Err(e) = netns::delete_bridge(&config.bridge).await {
        tracing::warn!("{e}");
    }
    result
}

async fn serve(
    shared: Arc<Shared>,
    tls: TlsFiles,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    let cfg = &shared.config;
    node::register(&shared.client, cfg).await?;
    let since = Timestamp::now();
    node::write_status(
        &shared.client,
        cfg,
        node::status(cfg, true, "starting", since, since),
    )
    .await?;
    let addr = SocketAddr::new(cfg.cidr.gateway().into(), cfg.kubelet_port);
    let bound = kubelet_api::start(addr, &tls, &cfg.node_name, shared.logs.clone()).await?;
    tracing::info!(node = %cfg.node_name, kubelet_api = %bound, bridge = %cfg.bridge, cidr = %cfg.cidr, "node agent running");
    let mut tasks = JoinSet::new();
    tasks.spawn(node::heartbeat(shared.client.clone(), cfg.clone(), since));
    tasks.spawn(binder::run(shared.client.clone(), cfg.node_name.clone()));
    let mut workers: HashMap<String, watch::Sender<PodEvent>> = HashMap::new();
    let mut running = JoinSet::new();
    let api: Api<Pod> = Api::all(shared.client.clone());
    let pods = watcher(
        api,
        watcher::Config::default().fields(&format!("spec.nodeName={}", cfg.node_name)),
    )
    .default_backoff();
    futures_util::pin_mut!(pods, stop);
    // Pods seen since the last relist began; after it ends, workers of the rest are told Gone.
    let mut relisted: Option<HashSet<String>> = None;
    loop {
        let event = tokio::select! {
            _ = &mut stop => break,
            Some(_) = running.join_next(), if !running.is_empty() => continue,
            e = pods.next() => e,
        };
        let Some(event) = event else { break };
        let mut dispatch = |pod: Pod| {
            let Some(uid) = pod.metadata.uid.clone() else {
                return String::new();
            };
            let event = PodEvent::Present(Arc::new(pod));
            match workers.get(&uid) {
                Some(tx) if !tx.is_closed() => drop(tx.send(event)),
                _ => {
                    let (tx, rx) = watch::channel(event);
                    running.spawn(pod_worker::run(shared.clone(), uid.clone(), rx));
                    workers.insert(uid.clone(), tx);
                }
            }
            uid
        };
        match event {
            Ok(watcher::Event::Apply(pod)) => drop(dispatch(pod)),
            Ok(watcher::Event::Delete(pod)) => {
                if let Some(tx) = pod.metadata.uid.as_ref().and_then(|u| workers.remove(u)) {
                    let _ = tx.send(PodEvent::Gone);
                }
            }
            Ok(watcher::Event::Init) => relisted = Some(HashSet::new()),
            Ok(watcher::Event::InitApply(pod)) => {
                let uid = dispatch(pod);
                if let Some(seen) = relisted.as_mut() {
                    seen.insert(uid);
                }
            }
            Ok(watcher::Event::InitDone) => {
                let seen = relisted.take().unwrap_or_default();
                workers.retain(|uid, tx| {
                    let keep = seen.contains(uid);
                    if !keep {
                        let _ = tx.send(PodEvent::Gone);
                    }
                    keep
                });
            }
            Err(e) => tracing::warn!("watching this node's pods: {e}"),
        }
    }
    for tx in workers.values() {
        let _ = tx.send(PodEvent::Shutdown);
    }
    drop(workers);
    while running.join_next().await.is_some() {}
    tasks.abort_all();
    Ok(())
}
