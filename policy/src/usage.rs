//! Who uses which hostname now, and how much each tenant uses: the first-come and quota
//! bookkeeping.

use crate::hostnames::normalize;
use crate::object::{Kind, Object, ObjectRef, Seniority};
use crate::snapshot::{Objects, TenantId};
use crate::tenancy::TenancyIndex;
use crate::view;
use std::collections::HashMap;

#[derive(Clone, Debug)]
pub(crate) struct Usage {
    pub object: ObjectRef,
    /// `None` for objects in namespaces no tenant selects (the platform's own).
    pub tenant: Option<TenantId>,
    pub hostname: String,
    pub seniority: Seniority,
}

#[derive(Default)]
pub(crate) struct UsageIndex {
    pub usages: Vec<Usage>,
    by_hostname: HashMap<String, Vec<usize>>,
    /// Normalized, deduplicated hostnames of each stored object; also the set of stored
    /// objects, so an update is recognised and not counted twice.
    by_object: HashMap<ObjectRef, Vec<String>>,
    /// Per tenant: hostname → number of its objects using it.
    tenant_hostnames: Vec<HashMap<String, u32>>,
    tenant_routes: Vec<usize>,
    tenant_certificates: Vec<usize>,
}

impl UsageIndex {
    pub fn build(objects: &Objects, tenancy: &TenancyIndex, tenant_count: usize) -> Self {
        let mut index = Self {
            tenant_hostnames: vec![HashMap::new(); tenant_count],
            tenant_routes: vec![0; tenant_count],
            tenant_certificates: vec![0; tenant_count],
            ..Self::default()
        };
        for object in objects.hostname_users() {
            let namespace = object.meta().namespace.clone().unwrap_or_default();
            // In a namespace two tenants select, the senior one is charged: admission
            // refuses new objects there, so this only shapes reports until it is resolved.
            let tenant = tenancy.tenants_of(&namespace).first().copied();
            index.add(&object, tenant);
        }
        index
    }

    fn add(&mut self, object: &Object, tenant: Option<TenantId>) {
        let object_ref = object.object_ref();
        let seniority = Seniority::of(object.meta());
        let mut hostnames: Vec<String> = view::hostnames(object)
            .into_iter()
            .map(|h| normalize(&h.hostname))
            .collect();
        hostnames.sort();
        hostnames.dedup();
        for hostname in &hostnames {
            self.by_hostname
                .entry(hostname.clone())
                .or_default()
                .push(self.usages.len());
            self.usages.push(Usage {
                object: object_ref.clone(),
                tenant,
                hostname: hostname.clone(),
                seniority: seniority.clone(),
            });
        }
        if let Some(t) = tenant {
            for hostname in &hostnames {
                *self.tenant_hostnames[t]
                    .entry(hostname.clone())
                    .or_default() += 1;
            }
            match object.kind() {
                k if is_route(k) => self.tenant_routes[t] += 1,
                Kind::TenantCertificate => self.tenant_certificates[t] += 1,
                _ => {}
            }
        }
        self.by_object.insert(object_ref, hostnames);
    }

    pub fn contains(&self, object: &ObjectRef) -> bool {
        self.by_object.contains_key(object)
    }

    /// The oldest user of exactly `hostname` outside `tenant`, ignoring `subject` itself.
    pub fn senior_foreign_user(
        &self,
        hostname: &str,
        tenant: TenantId,
        subject: &ObjectRef,
    ) -> Option<&Usage> {
        self.by_hostname
            .get(hostname)?
            .iter()
            .map(|&i| &self.usages[i])
            .filter(|u| u.tenant != Some(tenant) && &u.object != subject)
            .min_by(|a, b| a.seniority.cmp(&b.seniority))
    }

    pub fn routes(&self, tenant: TenantId) -> usize {
        self.tenant_routes[tenant]
    }

    pub fn certificates(&self, tenant: TenantId) -> usize {
        self.tenant_certificates[tenant]
    }

    pub fn distinct_hostnames(&self, tenant: TenantId) -> usize {
        self.tenant_hostnames[tenant].len()
    }

    /// Distinct hostnames of `tenant` if `subject` is stored with `new_hostnames`
    /// (normalized) instead of its current version.
    pub fn distinct_hostnames_after(
        &self,
        tenant: TenantId,
        subject: &ObjectRef,
        new_hostnames: &[String],
    ) -> usize {
        let counts = &self.tenant_hostnames[tenant];
        let old: &[String] = self.by_object.get(subject).map_or(&[], Vec::as_slice);
        let only_in_old = |h: &String| old.contains(h) && counts.get(h) == Some(&1);
        let removed = old.iter().filter(|h| only_in_old(h)).count();
        let mut added: Vec<&String> = new_hostnames
            .iter()
            .filter(|h| !counts.contains_key(*h) || only_in_old(h))
            .collect();
        added.sort();
        added.dedup();
        counts.len() - removed + added.len()
    }
}

pub(crate) fn is_route(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::TenantRoute | Kind::HttpRoute | Kind::GrpcRoute | Kind::TlsRoute
    )
}
