//! Per-tenant limits on routes, distinct hostnames and certificates.
//!
//! A write is refused only if it raises usage above the limit: an update never adds an
//! object, and lowering a limit below current usage must not freeze the tenant's existing
//! objects.

use crate::decision::DenyReason;
use crate::hostnames::normalize;
use crate::object::{Kind, Object};
use crate::rule::{RuleResult, Violation};
use crate::snapshot::{Snapshot, TenantId};
use crate::usage::is_route;
use crate::view;

pub(crate) fn check(snapshot: &Snapshot, tenant: TenantId, object: &Object) -> RuleResult {
    let subject = object.object_ref();
    let usage = &snapshot.usage;
    let exists = usage.contains(&subject);
    let limits = &snapshot.tenant(tenant).spec.limits;
    let name = snapshot.tenant_name(tenant);

    let count_check = |before: usize, limit: Option<i64>, what: &str, field: &str, reason| {
        let after = if exists { before } else { before + 1 };
        exceeds(before, after, limit).map_or(Ok(()), |limit| {
            Err(Violation::new(
                reason,
                "",
                format!(
                    "tenant {name} already has {before} {what}, its limit is {limit} (Tenant {name} {field})"
                ),
            ))
        })
    };
    if is_route(object.kind()) {
        count_check(
            usage.routes(tenant),
            limits.routes,
            "routes",
            "spec.limits.routes",
            DenyReason::RouteQuotaExceeded,
        )?;
    }
    if object.kind() == Kind::TenantCertificate {
        count_check(
            usage.certificates(tenant),
            limits.certificates,
            "certificates",
            "spec.limits.certificates",
            DenyReason::CertificateQuotaExceeded,
        )?;
    }

    let fields = view::hostnames(object);
    let hostnames: Vec<String> = fields.iter().map(|f| normalize(&f.hostname)).collect();
    let before = usage.distinct_hostnames(tenant);
    let after = usage.distinct_hostnames_after(tenant, &subject, &hostnames);
    if let Some(limit) = exceeds(before, after, limits.hostnames) {
        let field = match object.kind() {
            Kind::ListenerSet => "spec.listeners",
            _ => "spec.hostnames",
        };
        return Err(Violation::new(
            DenyReason::HostnameQuotaExceeded,
            field,
            format!(
                "this would bring tenant {name} to {after} distinct hostnames, its limit is {limit} (Tenant {name} spec.limits.hostnames)"
            ),
        ));
    }
    Ok(())
}

/// The limit, when `after` breaks it and is a rise.
fn exceeds(before: usize, after: usize, limit: Option<i64>) -> Option<usize> {
    // A negative limit cannot pass the CRD's CEL rule; if one slips in it means "none".
    let limit = usize::try_from(limit?.max(0)).unwrap_or(usize::MAX);
    (after > limit && after > before).then_some(limit)
}
