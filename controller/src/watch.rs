//! Watch caches over the kinds the translation reads. Each change, of any kind, pokes one
//! `Notify`; the reconciler debounces and re-reads every cache whole. An update that only
//! changed the status of a kind whose status we write is not a change: it is most often
//! our own write coming back.
//!
//! GatewayClass, Gateway and HTTPRoute are required: the caches are not ready until they
//! are listed. The other custom kinds (GRPCRoute, TLSRoute, ReferenceGrant, the
//! gatehouse.dev kinds) are optional: a cluster without their CRD must still be served, so
//! a missing one is logged, counts as listed and empty, and is looked for again every
//! `recheck` until it appears.

use crate::tenancy::TenancyObjects;
use futures_util::StreamExt;
use gatehouse_core::manifest::Object;
use gatehouse_crds::{GatewayClassConfig, Tenant, TenantCertificate, TenantRoute};
use gatehouse_policy::{Change, Object as PolicyObject};
use gateway_api::experimental::gatewayclasses::GatewayClass;
use gateway_api::experimental::gateways::Gateway;
use gateway_api::experimental::grpcroutes::GrpcRoute;
use gateway_api::experimental::httproutes::HttpRoute;
use gateway_api::experimental::listenersets::ListenerSet;
use gateway_api::experimental::referencegrants::ReferenceGrant;
use gateway_api::experimental::tlsroutes::TlsRoute;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::ListParams;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinSet;

pub struct Caches {
    classes: Store<GatewayClass>,
    gateways: Store<Gateway>,
    routes: Store<HttpRoute>,
    grpc_routes: Store<GrpcRoute>,
    tls_routes: Store<TlsRoute>,
    listener_sets: Store<ListenerSet>,
    /// Only `kubernetes.io/tls` Secrets: the only kind a listener may use, and the API
    /// server filters the rest out, so other Secrets never reach this process.
    secrets: Store<Secret>,
    grants: Store<ReferenceGrant>,
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    namespaces: Store<Namespace>,
    tenants: Store<Tenant>,
    tenant_routes: Store<TenantRoute>,
    tenant_certificates: Store<TenantCertificate>,
    class_configs: Store<GatewayClassConfig>,
    /// Only the Deployments we provisioned (by label).
    provisioned: Store<Deployment>,
    /// Changes of the kinds the tenancy policy reads, since the last pass took them.
    policy: Arc<PolicyLog>,
}

impl Caches {
    /// Starts one watch per kind on `tasks`; they run (and retry with backoff) until the
    /// set is dropped.
    /// `recheck` is how often a missing optional kind is looked for again.
    pub fn start(
        client: &Client,
        tasks: &mut JoinSet<()>,
        changed: &Arc<Changes>,
        recheck: Duration,
    ) -> Caches {
        let required = Presence::Required;
        let optional = Presence::Optional { recheck };
        let all = watcher::Config::default;
        // Kinds whose status this controller writes: our own writes come back as watch
        // events, and must not each cost a pass.
        let ours = StatusChanges::Ignored;
        let theirs = StatusChanges::Count;
        let policy = Arc::new(PolicyLog::default());
        Caches {
            classes: cache(client, tasks, changed, all(), required, ours, None),
            gateways: cache(client, tasks, changed, all(), required, ours, feed(&policy)),
            routes: cache(client, tasks, changed, all(), required, ours, feed(&policy)),
            grpc_routes: cache(client, tasks, changed, all(), optional, ours, None),
            tls_routes: cache(client, tasks, changed, all(), optional, ours, None),
            listener_sets: cache(client, tasks, changed, all(), optional, ours, None),
            secrets: cache(
                client,
                tasks,
                changed,
                all().fields("type=kubernetes.io/tls"),
                required,
                theirs,
                None,
            ),
            grants: cache(
                client,
                tasks,
                changed,
                all(),
                optional,
                theirs,
                feed(&policy),
            ),
            services: cache(client, tasks, changed, all(), required, theirs, None),
            slices: cache(client, tasks, changed, all(), required, theirs, None),
            namespaces: cache(
                client,
                tasks,
                changed,
                all(),
                required,
                theirs,
                feed(&policy),
            ),
            tenants: cache(client, tasks, changed, all(), optional, ours, feed(&policy)),
            tenant_routes: cache(client, tasks, changed, all(), optional, ours, feed(&policy)),
            tenant_certificates: cache(
                client,
                tasks,
                changed,
                all(),
                optional,
                ours,
                feed(&policy),
            ),
            class_configs: cache(client, tasks, changed, all(), optional, theirs, None),
            provisioned: cache(
                client,
                tasks,
                changed,
                all().labels(&crate::provision::apply::managed_selector()),
                required,
                theirs,
                None,
            ),
            policy,
        }
    }

    /// Resolves once every cache has listed its kind once.
    pub async fn ready(&self) {
        // Errors mean the writer was dropped, i.e. the task set is going away.
        let _ = tokio::join!(
            self.classes.wait_until_ready(),
            self.gateways.wait_until_ready(),
            self.routes.wait_until_ready(),
            self.grpc_routes.wait_until_ready(),
            self.tls_routes.wait_until_ready(),
            self.listener_sets.wait_until_ready(),
            self.secrets.wait_until_ready(),
            self.grants.wait_until_ready(),
            self.services.wait_until_ready(),
            self.slices.wait_until_ready(),
            self.namespaces.wait_until_ready(),
            self.tenants.wait_until_ready(),
            self.tenant_routes.wait_until_ready(),
            self.tenant_certificates.wait_until_ready(),
            self.class_configs.wait_until_ready(),
            self.provisioned.wait_until_ready(),
        );
    }

    /// Everything cached, as the translation's input.
    pub fn objects(&self) -> Vec<Object> {
        // The caches' own `Arc`s: a pass copies pointers, and an unchanged route is the
        // same pointer pass after pass.
        fn all<K: Clone + Resource<DynamicType = ()>>(
            store: &Store<K>,
            wrap: fn(Arc<K>) -> Object,
        ) -> impl Iterator<Item = Object> {
            store.state().into_iter().map(wrap)
        }
        all(&self.classes, Object::GatewayClass)
            .chain(all(&self.gateways, Object::Gateway))
            .chain(all(&self.routes, Object::HttpRoute))
            .chain(all(&self.grpc_routes, Object::GrpcRoute))
            .chain(all(&self.tls_routes, Object::TlsRoute))
            .chain(all(&self.listener_sets, Object::ListenerSet))
            .chain(all(&self.secrets, Object::Secret))
            .chain(all(&self.grants, Object::ReferenceGrant))
            .chain(all(&self.services, Object::Service))
            .chain(all(&self.slices, Object::EndpointSlice))
            .chain(all(&self.namespaces, Object::Namespace))
            .collect()
    }
}

impl Caches {
    /// The policy changes watched since the last call. Take them before reading the caches:
    /// a change that lands in between is then both in what is read and in the next batch
    /// (applying it twice is harmless), never in neither.
    pub fn policy_changes(&self) -> PolicyChanges {
        self.policy.take()
    }

    /// GatewayClass parameters, and the Deployments we provisioned: `provision`'s inputs.
    pub fn provisioning(&self) -> (Vec<GatewayClassConfig>, Vec<Deployment>) {
        fn all<K: Clone + Resource<DynamicType = ()>>(store: &Store<K>) -> Vec<K> {
            store.state().into_iter().map(|o| (*o).clone()).collect()
        }
        (all(&self.class_configs), all(&self.provisioned))
    }

    /// The tenancy objects, beside [`Caches::objects`].
    pub fn tenancy(&self) -> TenancyObjects {
        TenancyObjects {
            tenants: self.tenants.state(),
            routes: self.tenant_routes.state(),
            certificates: self.tenant_certificates.state(),
        }
    }
}

/// Whether the caches may be ready without the kind being served.
#[derive(Clone, Copy, Debug)]
enum Presence {
    Required,
    Optional { recheck: Duration },
}

/// Watched changes for the policy snapshot the pass keeps.
#[derive(Debug, Default)]
pub struct PolicyLog(std::sync::Mutex<PolicyChanges>);

/// What happened to the policy's inputs since the last pass.
#[derive(Debug, Default)]
pub enum PolicyChanges {
    /// Rebuild from everything (first pass, a relist, or too many changes to be worth it).
    #[default]
    Rebuild,
    Since(Vec<Change>),
}

/// Past this many changes between passes a rebuild is as cheap, and a standby (which never
/// takes them) must not hoard them.
const POLICY_LOG_LIMIT: usize = 10_000;

impl PolicyLog {
    fn push(&self, change: Change) {
        let mut log = self.lock();
        match &mut *log {
            PolicyChanges::Rebuild => {}
            PolicyChanges::Since(changes) if changes.len() >= POLICY_LOG_LIMIT => {
                *log = PolicyChanges::Rebuild;
            }
            PolicyChanges::Since(changes) => changes.push(change),
        }
    }

    fn relisted(&self) {
        *self.lock() = PolicyChanges::Rebuild;
    }

    fn take(&self) -> PolicyChanges {
        std::mem::replace(&mut *self.lock(), PolicyChanges::Since(Vec::new()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PolicyChanges> {
        // A panic while holding the lock leaves a plain value behind, still usable.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where a kind the policy reads sends its changes.
struct PolicyFeed<K> {
    log: Arc<PolicyLog>,
    convert: fn(K) -> PolicyObject,
}

fn feed<K: Into<PolicyObject>>(log: &Arc<PolicyLog>) -> Option<PolicyFeed<K>> {
    Some(PolicyFeed {
        log: log.clone(),
        convert: K::into,
    })
}

/// Wakes the reconciler on every watched change, and counts them, so that it can tell a
/// lone change (served at once) from a burst (gathered).
#[derive(Default)]
pub struct Changes {
    notify: Notify,
    count: std::sync::atomic::AtomicU64,
}

impl Changes {
    pub fn record(&self) {
        self.count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.notify.notify_one();
    }

    /// Changes recorded since start-up.
    pub fn count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub async fn notified(&self) {
        self.notify.notified().await;
    }

    /// Whether a change was recorded since the last wake-up, consuming it.
    pub fn pending(&self) -> bool {
        use futures_util::FutureExt;
        self.notify.notified().now_or_never().is_some()
    }
}

/// Whether an update that changed only an object's status is a change to reconcile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StatusChanges {
    /// Status is input (a Service's load-balancer address): every update counts.
    Count,
    /// Status is our output: only a new generation, labels, annotations or deletion count.
    Ignored,
}

/// What of an object, besides its status, the translation reads: a new generation (the
/// API server bumps it on every spec change), labels, annotations, deletion.
fn fingerprint<K: Resource>(object: &K) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let meta = object.meta();
    let generation = meta.generation?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    generation.hash(&mut h);
    meta.labels.hash(&mut h);
    meta.annotations.hash(&mut h);
    meta.deletion_timestamp.is_some().hash(&mut h);
    Some(h.finish())
}

/// Fingerprints by uid, to tell a spec change from a status-only update.
#[derive(Default)]
struct Fingerprints(std::collections::HashMap<String, u64>);

impl Fingerprints {
    /// Records the object; true unless only its status changed since it was last seen.
    fn changed<K: Resource>(&mut self, object: &K) -> bool {
        let (Some(uid), Some(print)) = (object.meta().uid.clone(), fingerprint(object)) else {
            return true;
        };
        self.0.insert(uid, print) != Some(print)
    }
}

fn cache<K>(
    client: &Client,
    tasks: &mut JoinSet<()>,
    changed: &Arc<Changes>,
    config: watcher::Config,
    presence: Presence,
    status_changes: StatusChanges,
    policy: Option<PolicyFeed<K>>,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, mut writer) = reflector::store();
    let api: Api<K> = Api::all(client.clone());
    let changed = changed.clone();
    tasks.spawn(async move {
        if let Presence::Optional { recheck } = presence {
            wait_until_served(&api, recheck, || {
                // Listed, and empty: the caches can be ready without this kind.
                if let Some(p) = &policy {
                    p.log.relisted();
                }
                writer.apply_watcher_event(&watcher::Event::Init);
                writer.apply_watcher_event(&watcher::Event::InitDone);
                changed.record();
            })
            .await;
        }
        let stream = watcher(api, config)
            .default_backoff()
            // Field ownership is never read here and is most of a small object's size.
            .modify(|o| o.managed_fields_mut().clear())
            .reflect(writer);
        futures_util::pin_mut!(stream);
        let mut seen = Fingerprints::default();
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::Apply(o)) => {
                    if seen.changed(&o) || status_changes == StatusChanges::Count {
                        tracing::debug!(kind = %K::kind(&()), name = ?o.meta().name, "watched change");
                        if let Some(p) = &policy {
                            p.log.push(Change::Applied((p.convert)(o)));
                        }
                        changed.record();
                    }
                }
                Ok(watcher::Event::InitApply(o)) => {
                    seen.changed(&o);
                }
                Ok(watcher::Event::Delete(o)) => {
                    if let Some(uid) = &o.meta().uid {
                        seen.0.remove(uid);
                    }
                    if let Some(p) = &policy {
                        p.log.push(Change::Deleted((p.convert)(o)));
                    }
                    changed.record();
                }
                Ok(watcher::Event::InitDone) => {
                    // A relist replaced the store whole; deletions in between were never seen.
                    if let Some(p) = &policy {
                        p.log.relisted();
                    }
                    changed.record();
                }
                Ok(watcher::Event::Init) => {}
                Err(e) => tracing::warn!(kind = %K::kind(&()), "watch failed, retrying: {e}"),
            }
        }
    });
    reader
}

/// Returns once the API server serves `K`. While it does not, calls `on_missing` once and
/// looks again every `recheck`; errors other than "not found" are retried the same way.
async fn wait_until_served<K>(api: &Api<K>, recheck: Duration, on_missing: impl FnOnce())
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let kind = K::kind(&());
    let mut on_missing = Some(on_missing);
    loop {
        let wait = match api.list_metadata(&ListParams::default().limit(1)).await {
            Ok(_) => break,
            // A resource the API server does not serve answers a plain-text 404, not a Status.
            Err(kube::Error::Api(status)) if status.code == 404 => {
                if let Some(f) = on_missing.take() {
                    tracing::warn!(
                        %kind,
                        "{kind} is not served by the API server (CRD not installed): not watching it, \
                         looking again every {}s",
                        recheck.as_secs_f64()
                    );
                    f();
                }
                recheck
            }
            // Most likely the API server is briefly away: soon, not after a whole recheck.
            Err(e) => {
                tracing::warn!(%kind, "could not check whether {kind} is served, looking again: {e}");
                recheck.min(Duration::from_secs(1))
            }
        };
        tokio::time::sleep(wait).await;
    }
    if on_missing.is_none() {
        tracing::info!(%kind, "{kind} is served now: watching it");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn route(generation: i64, labels: serde_json::Value, status: serde_json::Value) -> HttpRoute {
        serde_json::from_value(json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "app", "namespace": "shop", "uid": "u1",
                         "generation": generation, "labels": labels},
            "spec": {},
            "status": {"parents": status},
        }))
        .unwrap()
    }

    #[test]
    fn a_status_only_update_is_not_a_change() {
        let mut seen = Fingerprints::default();
        assert!(seen.changed(&route(1, json!({}), json!([]))), "new object");
        let parent =
            json!([{"parentRef": {"name": "gw"}, "controllerName": "x", "conditions": []}]);
        assert!(
            !seen.changed(&route(1, json!({}), parent.clone())),
            "status only"
        );
        assert!(
            seen.changed(&route(2, json!({}), parent.clone())),
            "spec changed"
        );
        assert!(
            seen.changed(&route(2, json!({"a": "b"}), parent)),
            "labels changed"
        );
    }

    #[test]
    fn objects_without_a_generation_always_count() {
        let mut seen = Fingerprints::default();
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": "a", "uid": "u"}})).unwrap();
        assert!(seen.changed(&ns));
        assert!(seen.changed(&ns));
    }
}
