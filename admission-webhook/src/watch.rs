//! Watch caches over every kind the policy reads, and the task that turns them into
//! snapshots. Only exercised against a real kube-apiserver (`run` subcommand).

use crate::metrics::Metrics;
use crate::source::SnapshotSource;
use futures_util::StreamExt;
use gatehouse_crds::{Tenant, TenantCertificate, TenantRoute};
use gatehouse_policy::{Objects, Snapshot};
use gateway_api::experimental::gateways::Gateway;
use gateway_api::experimental::grpcroutes::GrpcRoute;
use gateway_api::experimental::httproutes::HttpRoute;
use gateway_api::experimental::listenersets::ListenerSet;
use gateway_api::experimental::referencegrants::ReferenceGrant;
use gateway_api::experimental::tlsroutes::TlsRoute;
use k8s_openapi::api::core::v1::Namespace;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;

/// Changes arriving closer together than this share one rebuild: a `kubectl apply` of a
/// hundred routes should cost a few snapshots, not a hundred.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

#[derive(Debug, thiserror::Error)]
#[error("watch cache for {kind} stopped before it synced")]
pub struct NotSynced {
    pub kind: &'static str,
}

/// One reflector store per kind the policy reads. Secrets are deliberately absent.
pub struct Caches {
    tenants: Store<Tenant>,
    namespaces: Store<Namespace>,
    tenant_routes: Store<TenantRoute>,
    tenant_certificates: Store<TenantCertificate>,
    http_routes: Store<HttpRoute>,
    grpc_routes: Store<GrpcRoute>,
    tls_routes: Store<TlsRoute>,
    reference_grants: Store<ReferenceGrant>,
    gateways: Store<Gateway>,
    listener_sets: Store<ListenerSet>,
}

impl Caches {
    /// Starts one watcher per kind on `tasks`; each pokes `changed` after every event.
    pub fn start(client: &Client, changed: &Arc<Notify>, tasks: &mut JoinSet<()>) -> Self {
        let watch = |kind| (client.clone(), changed.clone(), kind);
        Self {
            tenants: spawn(watch("Tenant"), tasks),
            namespaces: spawn(watch("Namespace"), tasks),
            tenant_routes: spawn(watch("TenantRoute"), tasks),
            tenant_certificates: spawn(watch("TenantCertificate"), tasks),
            http_routes: spawn(watch("HTTPRoute"), tasks),
            grpc_routes: spawn(watch("GRPCRoute"), tasks),
            tls_routes: spawn(watch("TLSRoute"), tasks),
            reference_grants: spawn(watch("ReferenceGrant"), tasks),
            gateways: spawn(watch("Gateway"), tasks),
            listener_sets: spawn(watch("ListenerSet"), tasks),
        }
    }

    pub async fn wait_synced(&self) -> Result<(), NotSynced> {
        async fn ready<K>(store: &Store<K>, kind: &'static str) -> Result<(), NotSynced>
        where
            K: Resource<DynamicType = ()> + Clone + 'static,
        {
            store
                .wait_until_ready()
                .await
                .map_err(|_| NotSynced { kind })
        }
        ready(&self.tenants, "Tenant").await?;
        ready(&self.namespaces, "Namespace").await?;
        ready(&self.tenant_routes, "TenantRoute").await?;
        ready(&self.tenant_certificates, "TenantCertificate").await?;
        ready(&self.http_routes, "HTTPRoute").await?;
        ready(&self.grpc_routes, "GRPCRoute").await?;
        ready(&self.tls_routes, "TLSRoute").await?;
        ready(&self.reference_grants, "ReferenceGrant").await?;
        ready(&self.gateways, "Gateway").await?;
        ready(&self.listener_sets, "ListenerSet").await
    }

    pub fn objects(&self) -> Objects {
        fn owned<K: Resource<DynamicType = ()> + Clone + 'static>(store: &Store<K>) -> Vec<K> {
            store.state().iter().map(|k| K::clone(k)).collect()
        }
        Objects {
            tenants: owned(&self.tenants),
            namespaces: owned(&self.namespaces),
            tenant_routes: owned(&self.tenant_routes),
            tenant_certificates: owned(&self.tenant_certificates),
            http_routes: owned(&self.http_routes),
            grpc_routes: owned(&self.grpc_routes),
            tls_routes: owned(&self.tls_routes),
            reference_grants: owned(&self.reference_grants),
            gateways: owned(&self.gateways),
            listener_sets: owned(&self.listener_sets),
        }
    }
}

fn spawn<K>(
    (client, changed, kind): (Client, Arc<Notify>, &'static str),
    tasks: &mut JoinSet<()>,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let api = Api::<K>::all(client);
    let events =
        reflector::reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
    tasks.spawn(async move {
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            match event {
                // Objects listed during a relist are not in the store until InitDone.
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                Ok(_) => changed.notify_one(),
                Err(e) => tracing::warn!(kind, error = %e, "watch failed; retrying with backoff"),
            }
        }
    });
    reader
}

/// Publishes a snapshot once every cache has synced, then again after each burst of changes.
pub async fn keep_current(
    caches: Arc<Caches>,
    changed: Arc<Notify>,
    source: Arc<SnapshotSource>,
    metrics: Arc<Metrics>,
) -> Result<(), NotSynced> {
    caches.wait_synced().await?;
    tracing::info!("watch caches synced");
    loop {
        let from = caches.clone();
        // Indexing 100k routes takes long enough that it must not stall a runtime worker.
        let snapshot = tokio::task::spawn_blocking(move || Snapshot::new(from.objects()))
            .await
            .expect("snapshot build does not panic");
        source.publish(snapshot);
        metrics.snapshot_built();
        changed.notified().await;
        tokio::time::sleep(DEBOUNCE).await;
    }
}
