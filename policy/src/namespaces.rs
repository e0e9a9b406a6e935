//! Namespace writes: labels decide tenancy, so moving a namespace between tenants is an
//! admin act.

use crate::decision::DenyReason;
use crate::rule::{RuleResult, Violation};
use crate::snapshot::{Snapshot, TenantId};
use crate::tenancy::{labels, namespace_name, tenants_selecting};
use k8s_openapi::api::core::v1::Namespace;

pub(crate) fn check(
    snapshot: &Snapshot,
    new: &Namespace,
    old: Option<&Namespace>,
    is_admin: bool,
) -> RuleResult {
    let name = namespace_name(new);
    let after = tenants_selecting(&snapshot.tenants, name, &labels(new));
    if after.len() > 1 {
        return Err(Violation::new(
            DenyReason::NamespaceConflict,
            "metadata.labels",
            format!(
                "namespace {name} would be selected by {}; a namespace can belong to one tenant only",
                names(snapshot, &after)
            ),
        ));
    }
    if is_admin {
        return Ok(());
    }
    let before = match old {
        Some(old) => tenants_selecting(&snapshot.tenants, name, &labels(old)),
        // Listing a namespace by name is the admin's decision already made on the Tenant.
        None => snapshot.tenancy.listing(name).to_vec(),
    };
    if before != after {
        return Err(Violation::new(
            DenyReason::NotAdmin,
            "metadata.labels",
            format!(
                "these labels would move namespace {name} from {} to {}; only admins may change which tenant a namespace belongs to",
                names(snapshot, &before),
                names(snapshot, &after)
            ),
        ));
    }
    Ok(())
}

/// `tenant a and tenant b`, or `no tenant`: how messages name the owners of something.
pub(crate) fn names(snapshot: &Snapshot, ids: &[TenantId]) -> String {
    match ids {
        [] => "no tenant".to_string(),
        ids => ids
            .iter()
            .map(|&id| format!("tenant {}", snapshot.tenant_name(id)))
            .collect::<Vec<_>>()
            .join(" and "),
    }
}
