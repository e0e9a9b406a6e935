//! Rules for what tenants write in their namespaces: routes, certificates, ListenerSets.

use crate::decision::DenyReason;
use crate::hostnames::{check_owned, check_valid};
use crate::object::{Kind, Object};
use crate::rule::{RuleResult, Violation};
use crate::snapshot::Snapshot;
use crate::{listeners, quotas, references, view};

pub(crate) fn check(snapshot: &Snapshot, object: &Object) -> RuleResult {
    let subject = object.object_ref();
    let namespace = subject.namespace.as_deref().unwrap_or("");
    let tenant = match snapshot.tenancy.tenants_of(namespace) {
        [] if matches!(object.kind(), Kind::TenantRoute | Kind::TenantCertificate) => {
            return Err(Violation::new(
                DenyReason::NamespaceWithoutTenant,
                "metadata.namespace",
                format!(
                    "namespace {namespace} belongs to no tenant; {} objects only work in a namespace a Tenant selects",
                    object.kind()
                ),
            ));
        }
        // The platform's own namespaces: RBAC decides who writes there.
        [] => return Ok(()),
        [one] => *one,
        many => {
            let names: Vec<String> = many
                .iter()
                .map(|&id| format!("tenant {}", snapshot.tenant_name(id)))
                .collect();
            return Err(Violation::new(
                DenyReason::NamespaceConflict,
                "metadata.namespace",
                format!(
                    "namespace {namespace} is selected by {}; nothing is admitted there until an admin gives it to one tenant",
                    names.join(" and ")
                ),
            ));
        }
    };

    check_hostnames_present(object)?;
    for field in view::hostnames(object) {
        check_valid(&field)?;
        check_owned(snapshot, tenant, &subject, &field)?;
    }
    listeners::check_parent_refs(snapshot, tenant, object)?;
    listeners::check_listener_set(snapshot, tenant, object)?;
    references::check_backends(snapshot, tenant, object)?;
    references::check_certificate_refs(snapshot, tenant, object)?;
    quotas::check(snapshot, tenant, object)
}

/// On a shared listener, a route or listener without a hostname matches every host not
/// claimed more specifically: it would serve other tenants' traffic.
fn check_hostnames_present(object: &Object) -> RuleResult {
    if let Object::ListenerSet(set) = object {
        for (i, listener) in set.spec.listeners.iter().enumerate() {
            if listener.hostname.as_deref().is_none_or(str::is_empty) {
                return Err(Violation::new(
                    DenyReason::MissingHostname,
                    &format!("spec.listeners[{i}].hostname"),
                    format!(
                        "listener {} has no hostname; a tenant listener without one would take traffic for every host on port {}",
                        listener.name, listener.port
                    ),
                ));
            }
        }
        return Ok(());
    }
    if view::hostnames(object).is_empty() {
        return Err(Violation::new(
            DenyReason::MissingHostname,
            "spec.hostnames",
            "no hostnames; a tenant route without one would match every host on a shared listener"
                .to_string(),
        ));
    }
    Ok(())
}
