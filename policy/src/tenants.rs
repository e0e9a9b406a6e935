//! Consistency of Tenant writes: claims and namespaces of two tenants never overlap.

use crate::decision::DenyReason;
use crate::hostnames::{check_valid, normalize};
use crate::rule::{RuleResult, Violation};
use crate::snapshot::{Snapshot, tenant_name};
use crate::tenancy::tenant_selects;
use crate::view::HostnameField;
use gatehouse_crds::Tenant;

pub(crate) fn check(snapshot: &Snapshot, tenant: &Tenant) -> RuleResult {
    let me = tenant_name(tenant);
    let is_other = |id: &usize| snapshot.tenant_name(*id) != me;

    for (i, claim) in tenant.spec.domains.iter().enumerate() {
        let field = HostnameField {
            field: format!("spec.domains[{i}]"),
            hostname: claim.as_str().to_string(),
        };
        check_valid(&field)?;
        let hostname = normalize(claim.as_str());
        let claimants = snapshot.claims.claimants(&hostname);
        if let Some(other) = claimants.iter().find(|c| is_other(&c.tenant)) {
            return Err(Violation::new(
                DenyReason::ClaimOverlap,
                &field.field,
                format!(
                    "claim {hostname} overlaps {}, assigned to tenant {}; claims of two tenants may not overlap",
                    other.claim,
                    snapshot.tenant_name(other.tenant)
                ),
            ));
        }
    }

    for (i, ns) in tenant.spec.namespaces.names.iter().enumerate() {
        if let Some(other) = snapshot
            .tenancy
            .tenants_of(ns)
            .iter()
            .find(|id| is_other(id))
        {
            return Err(namespace_taken(
                snapshot,
                &format!("spec.namespaces.names[{i}]"),
                ns,
                *other,
            ));
        }
    }
    if tenant.spec.namespaces.selector.is_some() {
        for (ns, labels) in snapshot.namespaces.iter() {
            if !tenant_selects(tenant, ns, labels) {
                continue;
            }
            if let Some(other) = snapshot
                .tenancy
                .tenants_of(ns)
                .iter()
                .find(|id| is_other(id))
            {
                return Err(namespace_taken(
                    snapshot,
                    "spec.namespaces.selector",
                    ns,
                    *other,
                ));
            }
        }
    }
    Ok(())
}

fn namespace_taken(snapshot: &Snapshot, field: &str, ns: &str, other: usize) -> Violation {
    Violation::new(
        DenyReason::NamespaceConflict,
        field,
        format!(
            "namespace {ns} already belongs to tenant {}; a namespace can belong to one tenant only",
            snapshot.tenant_name(other)
        ),
    )
}
