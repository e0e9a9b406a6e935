//! Who may use a hostname: claims first, then first come for unassigned names.

use crate::claims::Coverage;
use crate::decision::DenyReason;
use crate::object::ObjectRef;
use crate::rule::Violation;
use crate::snapshot::{Snapshot, TenantId};
use crate::view::HostnameField;
use gatehouse_core::hostname::is_valid_hostname;

/// The form hostnames are indexed under. Only used on what is already stored: requests are
/// refused unless already canonical, so `Shop.Example.com.` can neither slip past an index
/// lookup nor be stored next to `shop.example.com`.
pub(crate) fn normalize(hostname: &str) -> String {
    hostname.trim_end_matches('.').to_ascii_lowercase()
}

/// `a.b.example.com` → `b.example.com`, `example.com`, `com`.
pub(crate) fn parent_suffixes(hostname: &str) -> impl Iterator<Item = &str> {
    hostname
        .match_indices('.')
        .map(move |(i, _)| &hostname[i + 1..])
        .filter(|s| !s.is_empty())
}

pub(crate) fn check_valid(field: &HostnameField) -> Result<(), Violation> {
    let raw = field.hostname.as_str();
    if is_valid_hostname(raw) {
        return Ok(());
    }
    let canonical = normalize(raw);
    let text = if is_valid_hostname(&canonical) {
        format!(
            "hostname {raw:?} must be written in lowercase without a trailing dot, as {canonical}"
        )
    } else {
        format!(
            "hostname {raw:?} is not a lowercase RFC 1123 hostname (a leading *. is the only wildcard allowed; IPs are refused)"
        )
    };
    Err(Violation::new(
        DenyReason::InvalidHostname,
        &field.field,
        text,
    ))
}

/// Checks that `tenant` may use `field.hostname` (already valid) in `subject`.
pub(crate) fn check_owned(
    snapshot: &Snapshot,
    tenant: TenantId,
    subject: &ObjectRef,
    field: &HostnameField,
) -> Result<(), Violation> {
    let hostname = field.hostname.as_str();
    let claimants = snapshot.claims.claimants(hostname);
    if let Some(foreign) = claimants.iter().find(|c| c.tenant != tenant) {
        let owner = snapshot.tenant_name(foreign.tenant);
        let text = match foreign.coverage {
            Coverage::Covers if foreign.claim == hostname => {
                format!("hostname {hostname} is owned by tenant {owner}")
            }
            Coverage::Covers => format!(
                "hostname {hostname} is owned by tenant {owner} (claim {})",
                foreign.claim
            ),
            Coverage::Overlaps => format!(
                "hostname {hostname} overlaps {}, owned by tenant {owner}",
                foreign.claim
            ),
        };
        return Err(Violation::new(
            DenyReason::HostnameClaimedByOtherTenant,
            &field.field,
            text,
        ));
    }
    if claimants.iter().any(|c| c.coverage == Coverage::Covers) {
        return Ok(());
    }

    let me = snapshot.tenant_name(tenant);
    if hostname.starts_with("*.") {
        return Err(Violation::new(
            DenyReason::WildcardOutsideClaims,
            &field.field,
            format!(
                "wildcard hostname {hostname} is outside the claims of tenant {me}; wildcards need a claim assigned by an admin (Tenant {me} spec.domains)"
            ),
        ));
    }
    if !snapshot.tenant(tenant).spec.allow_unassigned_hostnames {
        return Err(Violation::new(
            DenyReason::HostnameNotAssigned,
            &field.field,
            format!(
                "hostname {hostname} is not assigned to tenant {me}, which may only use its claims (Tenant {me} spec.domains)"
            ),
        ));
    }
    if let Some(holder) = snapshot
        .usage
        .senior_foreign_user(hostname, tenant, subject)
    {
        let owner = match holder.tenant {
            Some(t) => format!("tenant {}", snapshot.tenant_name(t)),
            None => "the platform (a namespace outside every tenant)".to_string(),
        };
        return Err(Violation::new(
            DenyReason::HostnameInUse,
            &field.field,
            format!(
                "hostname {hostname} is already used by {owner} in {}; unassigned hostnames are first come, never shared",
                holder.object
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_suffixes_drop_one_label_at_a_time() {
        let got: Vec<&str> = parent_suffixes("a.b.example.com").collect();
        assert_eq!(got, vec!["b.example.com", "example.com", "com"]);
        assert_eq!(parent_suffixes("localhost").count(), 0);
    }

    #[test]
    fn normalize_folds_case_and_trailing_dot() {
        assert_eq!(normalize("Shop.Example.COM."), "shop.example.com");
    }
}
