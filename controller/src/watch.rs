//! Watch caches over the kinds the translation reads. Each change, of any kind, pokes one
//! `Notify`; the reconciler debounces and re-reads every cache whole.

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
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::sync::Arc;
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
    pub fn start(client: &Client, tasks: &mut JoinSet<()>, changed: &Arc<Notify>) -> Caches {
        Caches {
            classes: cache(client, tasks, changed),
            gateways: cache(client, tasks, changed),
            routes: cache(client, tasks, changed),
            grpc_routes: cache(client, tasks, changed),
            tls_routes: cache(client, tasks, changed),
            listener_sets: cache(client, tasks, changed),
            secrets: cache_with(
                client,
                tasks,
                changed,
                watcher::Config::default().fields("type=kubernetes.io/tls"),
            ),
            grants: cache(client, tasks, changed),
            services: cache(client, tasks, changed),
            slices: cache(client, tasks, changed),
            namespaces: cache(client, tasks, changed),
            tenants: cache(client, tasks, changed),
            tenant_routes: cache(client, tasks, changed),
            tenant_certificates: cache(client, tasks, changed),
            class_configs: cache(client, tasks, changed),
            provisioned: cache_with(
                client,
                tasks,
                changed,
                watcher::Config::default().labels(&crate::provision::apply::managed_selector()),
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

fn cache<K>(client: &Client, tasks: &mut JoinSet<()>, changed: &Arc<Notify>) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    cache_with(client, tasks, changed, watcher::Config::default())
}

fn cache_with<K>(
    client: &Client,
    tasks: &mut JoinSet<()>,
    changed: &Arc<Notify>,
    config: watcher::Config,
) -> Store<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    let (reader, writer) = reflector::store();
    let api: Api<K> = Api::all(client.clone());
    let changed = changed.clone();
    let stream = watcher(api, config)
        .default_backoff()
        // Field ownership is never read here and is most of a small object's size.
        .modify(|o| o.managed_fields_mut().clear())
        .reflect(writer);
    tasks.spawn(async move {
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
