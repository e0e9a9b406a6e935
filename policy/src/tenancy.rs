//! Namespace → tenant resolution, by listed names and by label selectors.

use crate::selector::selects;
use crate::snapshot::TenantId;
use foldhash::HashMap;
use gatehouse_crds::Tenant;
use k8s_openapi::api::core::v1::Namespace;
use std::collections::BTreeMap;

pub(crate) struct TenancyIndex {
    by_listed_name: HashMap<String, Vec<TenantId>>,
    by_namespace: HashMap<String, Vec<TenantId>>,
}

impl TenancyIndex {
    pub fn build(tenants: &[Tenant], namespaces: &[Namespace]) -> Self {
        let mut by_listed_name: HashMap<String, Vec<TenantId>> = HashMap::default();
        for (id, tenant) in tenants.iter().enumerate() {
            for name in &tenant.spec.namespaces.names {
                push_unique(by_listed_name.entry(name.clone()).or_default(), id);
            }
        }

        // Most selectors are a single matchLabels pair; indexing namespaces by label pair
        // keeps the build near-linear instead of tenants × namespaces.
        let mut by_label: HashMap<(&str, &str), Vec<&Namespace>> = HashMap::default();
        for ns in namespaces {
            for (k, v) in ns.metadata.labels.iter().flatten() {
                by_label.entry((k, v)).or_default().push(ns);
            }
        }

        let mut by_namespace: HashMap<String, Vec<TenantId>> = HashMap::default();
        for ns in namespaces {
            let name = namespace_name(ns);
            let listed = by_listed_name.get(name).cloned().unwrap_or_default();
            by_namespace.insert(name.to_string(), listed);
        }
        for (id, tenant) in tenants.iter().enumerate() {
            let Some(selector) = &tenant.spec.namespaces.selector else {
                continue;
            };
            let first_pair = selector.match_labels.iter().flatten().next();
            let candidates: Box<dyn Iterator<Item = &Namespace>> = match first_pair {
                Some((k, v)) => Box::new(
                    by_label
                        .get(&(k.as_str(), v.as_str()))
                        .into_iter()
                        .flatten()
                        .copied(),
                ),
                None => Box::new(namespaces.iter()),
            };
            for ns in candidates {
                if selects(selector, &labels(ns)) {
                    let entry = by_namespace
                        .entry(namespace_name(ns).to_string())
                        .or_default();
                    push_unique(entry, id);
                }
            }
        }
        for ids in by_namespace.values_mut() {
            ids.sort_unstable();
        }
        Self {
            by_listed_name,
            by_namespace,
        }
    }

    /// Tenants selecting `namespace`, oldest first. A namespace missing from the snapshot
    /// has no labels we know of, so only listed names count for it.
    pub fn tenants_of(&self, namespace: &str) -> &[TenantId] {
        self.by_namespace
            .get(namespace)
            .or_else(|| self.by_listed_name.get(namespace))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Tenants that list `namespace` by name, ignoring labels.
    pub fn listing(&self, namespace: &str) -> &[TenantId] {
        self.by_listed_name
            .get(namespace)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// Tenants that would select a namespace with this name and these labels; a linear scan,
/// used only for Namespace and Tenant writes, which are rare.
pub(crate) fn tenants_selecting(
    tenants: &[Tenant],
    name: &str,
    labels: &BTreeMap<String, String>,
) -> Vec<TenantId> {
    tenants
        .iter()
        .enumerate()
        .filter(|(_, t)| tenant_selects(t, name, labels))
        .map(|(id, _)| id)
        .collect()
}

pub(crate) fn tenant_selects(
    tenant: &Tenant,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> bool {
    let spec = &tenant.spec.namespaces;
    spec.names.iter().any(|n| n == name)
        || spec.selector.as_ref().is_some_and(|s| selects(s, labels))
}

pub(crate) fn namespace_name(ns: &Namespace) -> &str {
    ns.metadata.name.as_deref().unwrap_or("")
}

pub(crate) fn labels(ns: &Namespace) -> BTreeMap<String, String> {
    ns.metadata.labels.clone().unwrap_or_default()
}

fn push_unique(ids: &mut Vec<TenantId>, id: TenantId) {
    if !ids.contains(&id) {
        ids.push(id);
    }
}
