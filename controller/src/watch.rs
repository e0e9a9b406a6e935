//! Watch caches over the kinds the translation reads. Each change, of any kind, pokes one
//! `Notify`; the reconciler debounces and re-reads every cache whole.
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
}

impl Caches {
    /// Starts one watch per kind on `tasks`; they run (and retry with backoff) until the
    /// set is dropped.
    /// `recheck` is how often a missing optional kind is looked for again.
    pub fn start(
        client: &Client,
        tasks: &mut JoinSet<()>,
        changed: &Arc<Notify>,
        recheck: Duration,
    ) -> Caches {
        let required = Presence::Required;
        let optional = Presence::Optional { recheck };
        let all = watcher::Config::default;
        Caches {
            classes: cache(client, tasks, changed, all(), required),
            gateways: cache(client, tasks, changed, all(), required),
            routes: cache(client, tasks, changed, all(), required),
            grpc_routes: cache(client, tasks, changed, all(), optional),
            tls_routes: cache(client, tasks, changed, all(), optional),
            listener_sets: cache(client, tasks, changed, all(), optional),
            secrets: cache(
                client,
                tasks,
                changed,
                all().fields("type=kubernetes.io/tls"),
                required,
            ),
            grants: cache(client, tasks, changed, all(), optional),
            services: cache(client, tasks, changed, all(), required),
            slices: cache(client, tasks, changed, all(), required),
            namespaces: cache(client, tasks, changed, all(), required),
            tenants: cache(client, tasks, changed, all(), optional),
            tenant_routes: cache(client, tasks, changed, all(), optional),
            tenant_certificates: cache(client, tasks, changed, all(), optional),
            class_configs: cache(client, tasks, changed, all(), optional),
            provisioned: cache(
                client,
                tasks,
                changed,
                all().labels(&crate::provision::apply::managed_selector()),
                required,
            ),
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
        fn all<K: Clone + Resource<DynamicType = ()>>(
            store: &Store<K>,
            wrap: fn(K) -> Object,
        ) -> impl Iterator<Item = Object> {
            store.state().into_iter().map(move |o| wrap((*o).clone()))
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
    /// GatewayClass parameters, and the Deployments we provisioned: `provision`'s inputs.
    pub fn provisioning(&self) -> (Vec<GatewayClassConfig>, Vec<Deployment>) {
        fn all<K: Clone + Resource<DynamicType = ()>>(store: &Store<K>) -> Vec<K> {
            store.state().into_iter().map(|o| (*o).clone()).collect()
        }
        (all(&self.class_configs), all(&self.provisioned))
    }

    /// The tenancy objects, beside [`Caches::objects`].
    pub fn tenancy(&self) -> TenancyObjects {
        fn all<K: Clone + Resource<DynamicType = ()>>(store: &Store<K>) -> Vec<K> {
            store.state().into_iter().map(|o| (*o).clone()).collect()
        }
        TenancyObjects {
            tenants: all(&self.tenants),
            routes: all(&self.tenant_routes),
            certificates: all(&self.tenant_certificates),
        }
    }
}

/// Whether the caches may be ready without the kind being served.
#[derive(Clone, Copy, Debug)]
enum Presence {
    Required,
    Optional { recheck: Duration },
}

fn cache<K>(
    client: &Client,
    tasks: &mut JoinSet<()>,
    changed: &Arc<Notify>,
    config: watcher::Config,
    presence: Presence,
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
                writer.apply_watcher_event(&watcher::Event::Init);
                writer.apply_watcher_event(&watcher::Event::InitDone);
                changed.notify_one();
            })
            .await;
        }
        let stream = watcher(api, config)
            .default_backoff()
            // Field ownership is never read here and is most of a small object's size.
            .modify(|o| o.managed_fields_mut().clear())
            .reflect(writer);
        futures_util::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(
                    watcher::Event::Apply(_) | watcher::Event::Delete(_) | watcher::Event::InitDone,
                ) => {
                    changed.notify_one();
                }
                Ok(_) => {}
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
