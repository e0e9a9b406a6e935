//! Who uses which hostname now, and how much each tenant uses: the first-come and quota
//! bookkeeping.

use crate::hostnames::normalize;
use crate::object::{Kind, Object, ObjectRef, Seniority};
use crate::snapshot::{Objects, TenantId};
use crate::tenancy::TenancyIndex;
use crate::view;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub(crate) struct Usage {
    pub object: ObjectRef,
    /// `None` for objects in namespaces no tenant selects (the platform's own).
    pub tenant: Option<TenantId>,
    pub seniority: Seniority,
}

/// Persistent maps throughout, so a snapshot clones in O(1) and one object's change costs
/// O(its hostnames), not a rebuild.
#[derive(Clone, Default)]
pub(crate) struct UsageIndex {
    /// Every user of each hostname; usually one.
    by_hostname: imbl::HashMap<String, Arc<Vec<Usage>>>,
    /// Each stored object's normalized, deduplicated hostnames and who was charged; also
    /// the set of stored objects, so an update is recognised and not counted twice.
    by_object: imbl::HashMap<ObjectRef, Arc<Charged>>,
    /// Per tenant: hostname → number of its objects using it.
    tenant_hostnames: imbl::Vector<imbl::HashMap<String, u32>>,
    tenant_routes: imbl::Vector<usize>,
    tenant_certificates: imbl::Vector<usize>,
}

struct Charged {
    hostnames: Vec<String>,
    tenant: Option<TenantId>,
}

impl UsageIndex {
    pub fn build(objects: &Objects, tenancy: &TenancyIndex, tenant_count: usize) -> Self {
        let mut index = Self {
            tenant_hostnames: std::iter::repeat_n(imbl::HashMap::new(), tenant_count).collect(),
            tenant_routes: std::iter::repeat_n(0, tenant_count).collect(),
            tenant_certificates: std::iter::repeat_n(0, tenant_count).collect(),
            ..Self::default()
        };
        for object in objects.hostname_users() {
            index.put(&object, tenancy);
        }
        index
    }

    /// Records `object` as stored now, replacing its earlier version if any.
    pub fn put(&mut self, object: &Object, tenancy: &TenancyIndex) {
        let namespace = object.meta().namespace.as_deref().unwrap_or_default();
        // In a namespace two tenants select, the senior one is charged: admission refuses
        // new objects there, so this only shapes reports until it is resolved.
        let tenant = tenancy.tenants_of(namespace).first().copied();
        self.remove(&object.object_ref());
        self.add(object, tenant);
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
            let usage = Usage {
                object: object_ref.clone(),
                tenant,
                seniority: seniority.clone(),
            };
            let mut users = self.by_hostname.get(hostname).cloned().unwrap_or_default();
            Arc::make_mut(&mut users).push(usage);
            self.by_hostname.insert(hostname.clone(), users);
        }
        if let Some(t) = tenant {
            let counts = &mut self.tenant_hostnames[t];
            for hostname in &hostnames {
                let n = counts.get(hostname).copied().unwrap_or(0);
                counts.insert(hostname.clone(), n + 1);
            }
            match object.kind() {
                k if is_route(k) => self.tenant_routes[t] += 1,
                Kind::TenantCertificate => self.tenant_certificates[t] += 1,
                _ => {}
            }
        }
        self.by_object
            .insert(object_ref, Arc::new(Charged { hostnames, tenant }));
    }

    /// Forgets `object` (no-op if it is not stored).
    pub fn remove(&mut self, object: &ObjectRef) {
        let Some(charged) = self.by_object.remove(object) else {
            return;
        };
        for hostname in &charged.hostnames {
            let Some(mut users) = self.by_hostname.get(hostname).cloned() else {
                continue;
            };
            Arc::make_mut(&mut users).retain(|u| &u.object != object);
            if users.is_empty() {
                self.by_hostname.remove(hostname);
            } else {
                self.by_hostname.insert(hostname.clone(), users);
            }
        }
        if let Some(t) = charged.tenant {
            let counts = &mut self.tenant_hostnames[t];
            for hostname in &charged.hostnames {
                match counts.get(hostname).copied() {
                    Some(n) if n > 1 => {
                        counts.insert(hostname.clone(), n - 1);
                    }
                    _ => {
                        counts.remove(hostname);
                    }
                }
            }
            match object.kind {
                k if is_route(k) => self.tenant_routes[t] -= 1,
                Kind::TenantCertificate => self.tenant_certificates[t] -= 1,
                _ => {}
            }
        }
    }

    /// Each used hostname with its users, hostnames in no particular order.
    pub fn by_hostname(&self) -> impl Iterator<Item = (&str, &[Usage])> {
        self.by_hostname
            .iter()
            .map(|(h, users)| (h.as_str(), users.as_slice()))
    }

    /// The users of exactly `hostname` (normalized).
    pub fn users(&self, hostname: &str) -> &[Usage] {
        self.by_hostname
            .get(hostname)
            .map_or(&[], |users| users.as_slice())
    }

    /// The hostnames `object` is stored with, normalized and deduplicated.
    pub fn hostnames_of(&self, object: &ObjectRef) -> &[String] {
        self.by_object
            .get(object)
            .map_or(&[], |c| c.hostnames.as_slice())
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
        let old: &[String] = self
            .by_object
            .get(subject)
            .map_or(&[], |c| c.hostnames.as_slice());
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
