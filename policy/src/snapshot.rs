//! The world the policy decides against, indexed once so each decision is a few hash lookups.

use crate::claims::ClaimIndex;
use crate::object::{Kind, Object, ObjectRef, Seniority};
use crate::tenancy::{TenancyIndex, labels, namespace_name};
use crate::usage::UsageIndex;
use foldhash::HashMap;
use gatehouse_crds::{Tenant, TenantCertificate, TenantRoute};
use gateway_api::experimental::gateways::Gateway;
use gateway_api::experimental::grpcroutes::GrpcRoute;
use gateway_api::experimental::httproutes::HttpRoute;
use gateway_api::experimental::listenersets::ListenerSet;
use gateway_api::experimental::referencegrants::ReferenceGrant;
use gateway_api::experimental::tlsroutes::TlsRoute;
use k8s_openapi::api::core::v1::Namespace;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Position of a Tenant in [`Snapshot::tenants`], which is sorted oldest first: a lower id
/// is the senior tenant in every tie.
pub(crate) type TenantId = usize;

/// The current objects, as listed from the cluster (or a fixture).
#[derive(Clone, Debug, Default)]
pub struct Objects {
    pub tenants: Vec<Tenant>,
    pub namespaces: Vec<Namespace>,
    pub tenant_routes: Vec<TenantRoute>,
    pub tenant_certificates: Vec<TenantCertificate>,
    pub http_routes: Vec<HttpRoute>,
    pub grpc_routes: Vec<GrpcRoute>,
    pub tls_routes: Vec<TlsRoute>,
    pub reference_grants: Vec<ReferenceGrant>,
    pub gateways: Vec<Gateway>,
    pub listener_sets: Vec<ListenerSet>,
}

impl Objects {
    /// Files an object under its kind; kinds the policy does not keep are dropped.
    pub fn push(&mut self, object: Object) {
        match object {
            Object::Tenant(o) => self.tenants.push(o),
            Object::Namespace(o) => self.namespaces.push(o),
            Object::TenantRoute(o) => self.tenant_routes.push(o),
            Object::TenantCertificate(o) => self.tenant_certificates.push(o),
            Object::HttpRoute(o) => self.http_routes.push(o),
            Object::GrpcRoute(o) => self.grpc_routes.push(o),
            Object::TlsRoute(o) => self.tls_routes.push(o),
            Object::ReferenceGrant(o) => self.reference_grants.push(o),
            Object::Gateway(o) => self.gateways.push(o),
            Object::ListenerSet(o) => self.listener_sets.push(o),
            Object::GatewayClass(_) => {}
        }
    }

    /// Every object that can use a hostname, as [`Object`]s.
    pub(crate) fn hostname_users(&self) -> impl Iterator<Item = Object> + '_ {
        let routes = self.tenant_routes.iter().cloned().map(Object::TenantRoute);
        let certs = self
            .tenant_certificates
            .iter()
            .cloned()
            .map(Object::TenantCertificate);
        let http = self.http_routes.iter().cloned().map(Object::HttpRoute);
        let grpc = self.grpc_routes.iter().cloned().map(Object::GrpcRoute);
        let tls = self.tls_routes.iter().cloned().map(Object::TlsRoute);
        let sets = self.listener_sets.iter().cloned().map(Object::ListenerSet);
        routes
            .chain(certs)
            .chain(http)
            .chain(grpc)
            .chain(tls)
            .chain(sets)
    }
}

/// Cheap to clone: the parts only a Tenant or Namespace change can move are shared, and
/// the parts route-like objects move are persistent maps, so [`Snapshot::update`] on a
/// clone costs O(the changed object).
#[derive(Clone)]
pub struct Snapshot {
    pub(crate) tenants: Arc<Vec<Tenant>>,
    pub(crate) tenant_ids: Arc<HashMap<String, TenantId>>,
    pub(crate) tenancy: Arc<TenancyIndex>,
    pub(crate) claims: Arc<ClaimIndex>,
    pub(crate) usage: UsageIndex,
    pub(crate) grants_by_namespace: imbl::HashMap<String, Vec<ReferenceGrant>>,
    /// Name and labels of every namespace, for checking a Tenant's selector on write.
    pub(crate) namespaces: Arc<Vec<(String, BTreeMap<String, String>)>>,
}

/// One object as a watch reports it: stored (created or updated) or deleted.
#[derive(Clone, Debug)]
pub enum Change {
    Applied(Object),
    Deleted(Object),
}

/// A Tenant or Namespace changed: who owns which namespace may have moved, and with it
/// every count, so only [`Snapshot::new`] from the full set of objects is right.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {0} changed; the snapshot must be rebuilt from all objects")]
pub struct RebuildNeeded(pub Kind);

impl Snapshot {
    pub fn new(objects: Objects) -> Self {
        let mut tenants = objects.tenants.clone();
        tenants.sort_by_cached_key(|t| Seniority::of(&t.metadata));
        let tenant_ids = tenants
            .iter()
            .enumerate()
            .map(|(id, t)| (tenant_name(t).to_string(), id))
            .collect();
        let tenancy = TenancyIndex::build(&tenants, &objects.namespaces);
        let claims = ClaimIndex::build(&tenants);
        let usage = UsageIndex::build(&objects, &tenancy, tenants.len());
        let mut grants_by_namespace: HashMap<String, Vec<ReferenceGrant>> = HashMap::default();
        for grant in objects.reference_grants {
            let ns = grant.metadata.namespace.clone().unwrap_or_default();
            grants_by_namespace.entry(ns).or_default().push(grant);
        }
        let namespaces = objects
            .namespaces
            .iter()
            .map(|ns| (namespace_name(ns).to_string(), labels(ns)))
            .collect();
        Self {
            namespaces: Arc::new(namespaces),
            tenants: Arc::new(tenants),
            tenant_ids: Arc::new(tenant_ids),
            tenancy: Arc::new(tenancy),
            claims: Arc::new(claims),
            usage,
            grants_by_namespace: grants_by_namespace.into_iter().collect(),
        }
    }

    /// Applies one watched change in O(the object's size). Tenants and Namespaces are
    /// refused with [`RebuildNeeded`] (and the snapshot is left as it was); kinds the policy
    /// does not index (Gateways, GatewayClasses) change nothing.
    pub fn update(&mut self, change: &Change) -> Result<(), RebuildNeeded> {
        let (object, stored) = match change {
            Change::Applied(object) => (object, true),
            Change::Deleted(object) => (object, false),
        };
        match object {
            Object::Tenant(_) | Object::Namespace(_) => return Err(RebuildNeeded(object.kind())),
            Object::TenantRoute(_)
            | Object::TenantCertificate(_)
            | Object::HttpRoute(_)
            | Object::GrpcRoute(_)
            | Object::TlsRoute(_)
            | Object::ListenerSet(_) => {
                if stored {
                    self.usage.put(object, &self.tenancy);
                } else {
                    self.usage.remove(&object.object_ref());
                }
            }
            Object::ReferenceGrant(grant) => {
                let ns = grant.metadata.namespace.clone().unwrap_or_default();
                let mut grants = self.grants_by_namespace.remove(&ns).unwrap_or_default();
                grants.retain(|g| g.metadata.name != grant.metadata.name);
                if stored {
                    grants.push(grant.clone());
                }
                if !grants.is_empty() {
                    self.grants_by_namespace.insert(ns, grants);
                }
            }
            Object::Gateway(_) | Object::GatewayClass(_) => {}
        }
        Ok(())
    }

    /// The hostnames whose users a change of `object` moves: those it is stored with now
    /// (call before and after [`Snapshot::update`] for both sides).
    pub fn hostnames_used_by(&self, object: &ObjectRef) -> &[String] {
        self.usage.hostnames_of(object)
    }

    /// Every object stored as using exactly `hostname` (normalized).
    pub fn users_of(&self, hostname: &str) -> impl Iterator<Item = &ObjectRef> {
        self.usage.users(hostname).iter().map(|u| &u.object)
    }

    pub(crate) fn tenant(&self, id: TenantId) -> &Tenant {
        &self.tenants[id]
    }

    pub(crate) fn tenant_name(&self, id: TenantId) -> &str {
        tenant_name(&self.tenants[id])
    }

    /// The Tenant named `name`, if it exists in the snapshot.
    pub fn tenant_by_name(&self, name: &str) -> Option<&Tenant> {
        self.tenant_ids.get(name).map(|&id| &self.tenants[id])
    }

    /// Which tenant a namespace belongs to.
    /// What a tenant holds against its limits, counted the way quotas count it.
    pub fn usage_of(&self, tenant: &str) -> Option<TenantUsage> {
        let id = *self.tenant_ids.get(tenant)?;
        Some(TenantUsage {
            routes: self.usage.routes(id),
            hostnames: self.usage.distinct_hostnames(id),
            certificates: self.usage.certificates(id),
        })
    }

    /// Whether Tenant `tenant` may serve `hostname` on its own account: inside one of its
    /// claims, or unassigned (not wildcard) while the tenant takes unassigned hostnames.
    /// Contests with other tenants are [`crate::resolve_conflicts`]'s to decide; this is
    /// the check the admission webhook makes, for objects admitted before a Tenant changed.
    pub fn entitles(&self, tenant: &str, hostname: &str) -> Result<(), String> {
        let Some(&id) = self.tenant_ids.get(tenant) else {
            return Err(format!("Tenant {tenant} does not exist"));
        };
        let hostname = crate::hostnames::normalize(hostname);
        let claimants = self.claims.claimants(&hostname);
        if claimants
            .iter()
            .any(|c| c.tenant == id && c.coverage == crate::claims::Coverage::Covers)
        {
            return Ok(());
        }
        if hostname.starts_with("*.") {
            return Err(format!(
                "wildcard hostname {hostname} is outside the claims of Tenant {tenant} (spec.domains)"
            ));
        }
        if !self.tenant(id).spec.allow_unassigned_hostnames {
            return Err(format!(
                "hostname {hostname} is not assigned to Tenant {tenant}, which may only use its claims (spec.domains)"
            ));
        }
        Ok(())
    }

    pub fn namespace_tenant(&self, namespace: &str) -> NamespaceTenant {
        match self.tenancy.tenants_of(namespace) {
            [] => NamespaceTenant::None,
            [one] => NamespaceTenant::One(self.tenant_name(*one).to_string()),
            many => NamespaceTenant::Conflict(
                many.iter()
                    .map(|&id| self.tenant_name(id).to_string())
                    .collect(),
            ),
        }
    }
}

/// A tenant's routes, distinct hostnames and certificates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TenantUsage {
    pub routes: usize,
    pub hostnames: usize,
    pub certificates: usize,
}

/// The answer to "whose namespace is this?".
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamespaceTenant {
    None,
    One(String),
    /// Selected by several Tenants, oldest first: nobody may act in it until resolved.
    Conflict(Vec<String>),
}

pub(crate) fn tenant_name(tenant: &Tenant) -> &str {
    tenant.metadata.name.as_deref().unwrap_or("")
}
