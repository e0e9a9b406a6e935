//! Watch caches over every kind the policy reads, and the task that turns them into
//! snapshots. Only exercised against a real kube-apiserver (`run` subcommand and the
//! cluster tests).
//!
//! Gatehouse's own CRDs and Namespaces are required: without them there is nothing to
//! decide against, so the webhook stays unsynced (and refuses writes) until they are
//! served. The Gateway API kinds are optional: a cluster may lack TLSRoute or ListenerSet,
//! and the webhook must still become ready. A missing optional kind is logged, re-checked
//! periodically (and at once when someone tries to write it), and writes of it are refused
//! until its watch has synced, so an object the caches cannot see is never admitted.
//!
//! Watch events reach the snapshot task as [`Change`]s: a change to a route-like object or
//! a ReferenceGrant is applied to a clone of the current snapshot in O(the object), while a
//! Tenant or Namespace change, a relist, or a newly watched kind rebuilds it from the caches.

use crate::metrics::Metrics;
use crate::source::SnapshotSource;
use futures_util::StreamExt;
use gatehouse_crds::{Tenant, TenantCertificate, TenantRoute};
use gatehouse_policy::{Change, Kind, Object, Objects, Snapshot};
use gateway_api::experimental::gateways::Gateway;
use gateway_api::experimental::grpcroutes::GrpcRoute;
use gateway_api::experimental::httproutes::HttpRoute;
use gateway_api::experimental::listenersets::ListenerSet;
use gateway_api::experimental::referencegrants::ReferenceGrant;
use gateway_api::experimental::tlsroutes::TlsRoute;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::ListParams;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Tenant and Namespace changes arriving closer together than this share one full rebuild:
/// an admin's `kubectl apply` of a hundred Tenants should cost a few rebuilds, not a hundred.
pub const DEBOUNCE: Duration = Duration::from_millis(100);

/// How often a missing optional CRD is looked for again.
pub const DEFAULT_RECHECK: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
#[error("watch cache for {kind} stopped before it synced")]
pub struct NotSynced {
    pub kind: Kind,
}

/// What the watchers tell the snapshot task.
#[derive(Debug)]
enum Event {
    Changed(Box<Change>),
    /// A watch listed its kind again (first sync, or after it lost its place): deletions
    /// may have been missed, so only a rebuild from the caches is right.
    Relisted(Kind),
    /// Someone wants a snapshot that reflects the caches as they are now.
    Poke,
}

impl Event {
    fn needs_rebuild(&self) -> bool {
        match self {
            Event::Changed(change) => {
                let (Change::Applied(o) | Change::Deleted(o)) = change.as_ref();
                matches!(o.kind(), Kind::Tenant | Kind::Namespace)
            }
            Event::Relisted(_) | Event::Poke => true,
        }
    }
}

/// One kind's watch: not started until its resource is known to be served.
struct Watched<K: Resource<DynamicType = ()> + 'static> {
    kind: Kind,
    optional: bool,
    store: OnceLock<Store<K>>,
}

impl<K> Watched<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + Into<Object>
        + 'static,
{
    fn required(kind: Kind) -> Self {
        Self {
            kind,
            optional: false,
            store: OnceLock::new(),
        }
    }

    fn optional(kind: Kind) -> Self {
        Self {
            optional: true,
            ..Self::required(kind)
        }
    }

    /// Starts the watch unless it runs already; `Ok(false)` when an optional kind is not
    /// served by the apiserver (its CRD, or the version we read, is not installed).
    async fn start(
        &self,
        client: &Client,
        events: &mpsc::UnboundedSender<Event>,
        tasks: &Mutex<JoinSet<()>>,
    ) -> Result<bool, kube::Error> {
        if self.store.get().is_some() {
            return Ok(true);
        }
        let api = Api::<K>::all(client.clone());
        if self.optional {
            match api.list_metadata(&ListParams::default().limit(1)).await {
                Ok(_) => {}
                Err(kube::Error::Api(status)) if status.is_not_found() => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        let store = spawn(api, self.kind, events.clone(), tasks);
        // Only `keep_current` starts watches, one call at a time, so this never loses a race.
        let _ = self.store.set(store);
        Ok(true)
    }

    async fn wait_synced(&self) -> Result<(), NotSynced> {
        match self.store.get() {
            Some(store) => store
                .wait_until_ready()
                .await
                .map_err(|_| NotSynced { kind: self.kind }),
            None => Ok(()),
        }
    }

    fn owned(&self) -> Vec<K> {
        self.store.get().map_or_else(Vec::new, |store| {
            store.state().iter().map(|k| K::clone(k)).collect()
        })
    }

    fn resource_version(&self, namespace: Option<&str>, name: &str) -> Option<String> {
        let mut key = ObjectRef::<K>::new(name);
        if let Some(ns) = namespace {
            key = key.within(ns);
        }
        let object = self.store.get()?.get(&key)?;
        Some(object.resource_version().unwrap_or_default())
    }
}

/// Runs `$body` once per watched kind with `$w` bound to its [`Watched`].
macro_rules! each_kind {
    ($caches:expr, |$w:ident| $body:expr) => {{
        let c = $caches;
        {
            let $w = &c.tenants;
            $body
        }
        {
            let $w = &c.namespaces;
            $body
        }
        {
            let $w = &c.tenant_routes;
            $body
        }
        {
            let $w = &c.tenant_certificates;
            $body
        }
        {
            let $w = &c.http_routes;
            $body
        }
        {
            let $w = &c.grpc_routes;
            $body
        }
        {
            let $w = &c.tls_routes;
            $body
        }
        {
            let $w = &c.reference_grants;
            $body
        }
        {
            let $w = &c.gateways;
            $body
        }
        {
            let $w = &c.listener_sets;
            $body
        }
    }};
}

/// One reflector store per kind the policy reads. Secrets are deliberately absent.
pub struct Caches {
    client: Client,
    events: mpsc::UnboundedSender<Event>,
    /// Taken by the one [`keep_current`] task.
    receiver: Mutex<Option<mpsc::UnboundedReceiver<Event>>>,
    /// The watcher tasks; dropped (and so stopped) with the caches.
    tasks: Mutex<JoinSet<()>>,
    tenants: Watched<Tenant>,
    namespaces: Watched<Namespace>,
    tenant_routes: Watched<TenantRoute>,
    tenant_certificates: Watched<TenantCertificate>,
    http_routes: Watched<HttpRoute>,
    grpc_routes: Watched<GrpcRoute>,
    tls_routes: Watched<TlsRoute>,
    reference_grants: Watched<ReferenceGrant>,
    gateways: Watched<Gateway>,
    listener_sets: Watched<ListenerSet>,
}

impl Caches {
    /// Caches with no watch started yet; [`keep_current`] starts them.
    pub fn new(client: Client) -> Self {
        let (events, receiver) = mpsc::unbounded_channel();
        Self {
            client,
            events,
            receiver: Mutex::new(Some(receiver)),
            tasks: Mutex::new(JoinSet::new()),
            tenants: Watched::required(Kind::Tenant),
            namespaces: Watched::required(Kind::Namespace),
            tenant_routes: Watched::required(Kind::TenantRoute),
            tenant_certificates: Watched::required(Kind::TenantCertificate),
            http_routes: Watched::optional(Kind::HttpRoute),
            grpc_routes: Watched::optional(Kind::GrpcRoute),
            tls_routes: Watched::optional(Kind::TlsRoute),
            reference_grants: Watched::optional(Kind::ReferenceGrant),
            gateways: Watched::optional(Kind::Gateway),
            listener_sets: Watched::optional(Kind::ListenerSet),
        }
    }

    /// Every kind these caches read (and so every kind the webhook's RBAC must let it list
    /// and watch).
    pub fn kinds(&self) -> Vec<Kind> {
        let mut kinds = Vec::new();
        each_kind!(self, |w| kinds.push(w.kind));
        kinds
    }

    /// Starts every watch not running yet whose kind is served. Returns the optional kinds
    /// that are not (or could not be checked: that is retried like a missing CRD).
    pub async fn start_available(&self) -> Vec<Kind> {
        let mut missing = Vec::new();
        each_kind!(
            self,
            |w| match w.start(&self.client, &self.events, &self.tasks).await {
                Ok(true) => {}
                Ok(false) => missing.push(w.kind),
                Err(e) => {
                    tracing::warn!(kind = %w.kind, error = %e, "could not check whether the kind is served; retrying later");
                    missing.push(w.kind);
                }
            }
        );
        missing
    }

    /// Waits until every started watch has listed its kind once.
    pub async fn wait_synced(&self) -> Result<(), NotSynced> {
        each_kind!(self, |w| w.wait_synced().await?);
        Ok(())
    }

    pub fn objects(&self) -> Objects {
        Objects {
            tenants: self.tenants.owned(),
            namespaces: self.namespaces.owned(),
            tenant_routes: self.tenant_routes.owned(),
            tenant_certificates: self.tenant_certificates.owned(),
            http_routes: self.http_routes.owned(),
            grpc_routes: self.grpc_routes.owned(),
            tls_routes: self.tls_routes.owned(),
            reference_grants: self.reference_grants.owned(),
            gateways: self.gateways.owned(),
            listener_sets: self.listener_sets.owned(),
        }
    }

    /// The resourceVersion of the object as the cache holds it, if it does.
    pub fn resource_version(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<String> {
        let mut found = None;
        each_kind!(self, |w| if w.kind == kind {
            found = w.resource_version(namespace, name);
        });
        found
    }

    /// Asks for a snapshot rebuilt from the caches as they are now.
    pub fn poke(&self) {
        let _ = self.events.send(Event::Poke);
    }
}

fn spawn<K>(
    api: Api<K>,
    kind: Kind,
    events: mpsc::UnboundedSender<Event>,
    tasks: &Mutex<JoinSet<()>>,
) -> Store<K>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + Into<Object>
        + 'static,
{
    let (reader, writer) = reflector::store();
    let stream =
        reflector::reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
    let task = async move {
        let mut stream = std::pin::pin!(stream);
        // The reflector has written each event to the store before it reaches us, so a
        // rebuild that reads the store never lags an event still in the channel.
        while let Some(event) = stream.next().await {
            let event = match event {
                Ok(watcher::Event::Apply(k)) => Event::Changed(Box::new(Change::Applied(k.into()))),
                Ok(watcher::Event::Delete(k)) => {
                    Event::Changed(Box::new(Change::Deleted(k.into())))
                }
                Ok(watcher::Event::InitDone) => Event::Relisted(kind),
                // Objects listed during a relist are not in the store until InitDone.
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => continue,
                Err(e) => {
                    tracing::warn!(%kind, error = %e, "watch failed; retrying with backoff");
                    continue;
                }
            };
            if events.send(event).is_err() {
                return; // the snapshot task is gone
            }
        }
    };
    tasks.lock().unwrap_or_else(|p| p.into_inner()).spawn(task);
    reader
}

/// Publishes a snapshot once every started cache has synced, then keeps it current: watch
/// events on route-like kinds are applied to the published snapshot, anything that moves
/// tenancy rebuilds it. Looks for missing optional kinds every `recheck` and when asked.
pub async fn keep_current(
    caches: Arc<Caches>,
    source: Arc<SnapshotSource>,
    metrics: Arc<Metrics>,
    recheck: Duration,
) -> Result<(), NotSynced> {
    let mut events = caches
        .receiver
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .expect("one snapshot task per set of caches");
    let mut missing = caches.start_available().await;
    log_missing(&missing, &[], recheck);
    caches.wait_synced().await?;
    tracing::info!("watch caches synced");
    rebuild(&caches, &source, &metrics).await;
    source.set_unwatched(missing.clone());
    loop {
        let first = tokio::select! {
            event = events.recv() => event,
            _ = tokio::time::sleep(recheck), if !missing.is_empty() => None,
            _ = source.recheck_requested(), if !missing.is_empty() => None,
        };
        let look_again = first.is_none();
        let mut batch: Vec<Event> = first.into_iter().collect();
        while let Ok(event) = events.try_recv() {
            batch.push(event);
        }
        for event in &batch {
            if let Event::Relisted(kind) = event {
                tracing::debug!(%kind, "watch relisted; rebuilding the snapshot");
            }
        }
        let mut full = batch.iter().any(Event::needs_rebuild);
        if look_again {
            let still = caches.start_available().await;
            log_missing(&still, &missing, recheck);
            if still.len() < missing.len() {
                caches.wait_synced().await?;
                tracing::info!("watch caches synced");
                full = true;
            }
            missing = still;
        }
        if full {
            tokio::time::sleep(DEBOUNCE).await;
            // Whatever arrived meanwhile is already in the caches the rebuild reads.
            while events.try_recv().is_ok() {}
            rebuild(&caches, &source, &metrics).await;
        } else if !batch.is_empty() {
            let build = source.begin_build();
            let mut next = source
                .load()
                .map(|s| Snapshot::clone(&s))
                .unwrap_or_else(|| Snapshot::new(Objects::default()));
            for event in &batch {
                if let Event::Changed(change) = event {
                    // Tenants and Namespaces went the `full` way above.
                    let _ = next.update(change);
                }
            }
            source.publish(next, build);
            metrics.snapshot_updated();
        }
        // Only now does the snapshot hold the kinds that just started, so only now may
        // their writes be judged.
        source.set_unwatched(missing.clone());
    }
}

/// Replaces the published snapshot with one built from everything the caches hold.
async fn rebuild(caches: &Arc<Caches>, source: &SnapshotSource, metrics: &Metrics) {
    let build = source.begin_build();
    let from = caches.clone();
    // Indexing 100k routes takes long enough that it must not stall a runtime worker.
    let snapshot = tokio::task::spawn_blocking(move || Snapshot::new(from.objects()))
        .await
        .expect("snapshot build does not panic");
    source.publish(snapshot, build);
    metrics.snapshot_built();
}

fn log_missing(now: &[Kind], before: &[Kind], recheck: Duration) {
    for kind in now.iter().filter(|k| !before.contains(k)) {
        tracing::warn!(
            %kind,
            "{kind} is not served by the apiserver (CRD not installed); not watching it, \
             refusing writes of it, re-checking every {}s",
            recheck.as_secs()
        );
    }
    for kind in before.iter().filter(|k| !now.contains(k)) {
        tracing::info!(%kind, "{kind} is served now; watching it");
    }
}
