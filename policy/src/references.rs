//! Cross-namespace references: backendRefs and ListenerSet certificateRefs.

use crate::decision::DenyReason;
use crate::object::{Object, ObjectRef};
use crate::rule::{RuleResult, Violation};
use crate::snapshot::{Snapshot, TenantId};
use crate::view::{self, Reference};

pub(crate) fn check_backends(snapshot: &Snapshot, tenant: TenantId, object: &Object) -> RuleResult {
    let subject = object.object_ref();
    for backend in view::backend_refs(object) {
        if !(backend.group.is_empty() && backend.kind == "Service") {
            return Err(Violation::new(
                DenyReason::UnsupportedBackendKind,
                &backend.field,
                format!(
                    "backendRef to {} {:?} (group {:?}) is not allowed; tenants may only send traffic to core Services",
                    backend.kind, backend.name, backend.group
                ),
            ));
        }
        check_reach(snapshot, tenant, &subject, &backend, "backendRef")?;
    }
    Ok(())
}

pub(crate) fn check_certificate_refs(
    snapshot: &Snapshot,
    tenant: TenantId,
    object: &Object,
) -> RuleResult {
    let Object::ListenerSet(set) = object else {
        return Ok(());
    };
    let subject = object.object_ref();
    for (i, listener) in set.spec.listeners.iter().enumerate() {
        let refs = listener
            .tls
            .iter()
            .flat_map(|tls| tls.certificate_refs.iter().flatten());
        for (j, cert) in refs.enumerate() {
            let reference = Reference {
                field: format!("spec.listeners[{i}].tls.certificateRefs[{j}]"),
                group: cert.group.clone().unwrap_or_default(),
                kind: cert.kind.clone().unwrap_or_else(|| "Secret".to_string()),
                name: cert.name.clone(),
                namespace: cert.namespace.clone(),
                section_name: None,
            };
            check_reach(snapshot, tenant, &subject, &reference, "certificateRef")?;
        }
    }
    Ok(())
}

/// Same namespace, or another namespace of the same tenant, or a ReferenceGrant in the
/// target namespace naming this kind and namespace.
fn check_reach(
    snapshot: &Snapshot,
    tenant: TenantId,
    subject: &ObjectRef,
    target: &Reference,
    what: &str,
) -> RuleResult {
    let from_ns = subject.namespace.as_deref().unwrap_or("");
    let to_ns = target.namespace_or(from_ns);
    if to_ns == from_ns || snapshot.tenancy.tenants_of(to_ns) == [tenant] {
        return Ok(());
    }
    if granted(snapshot, subject, from_ns, to_ns, target) {
        return Ok(());
    }
    let owner = crate::namespaces::names(snapshot, snapshot.tenancy.tenants_of(to_ns));
    Err(Violation::new(
        DenyReason::ReferenceNotPermitted,
        &target.field,
        format!(
            "{what} to {} {to_ns}/{} reaches into namespace {to_ns}, owned by {owner}, and no ReferenceGrant there allows {} from namespace {from_ns}",
            target.kind, target.name, subject.kind
        ),
    ))
}

fn granted(
    snapshot: &Snapshot,
    subject: &ObjectRef,
    from_ns: &str,
    to_ns: &str,
    target: &Reference,
) -> bool {
    let Some(grants) = snapshot.grants_by_namespace.get(to_ns) else {
        return false;
    };
    grants.iter().any(|grant| {
        let from_ok = grant.spec.from.iter().any(|f| {
            f.group == subject.kind.group()
                && f.kind == subject.kind.as_str()
                && f.namespace == from_ns
        });
        let to_ok = grant.spec.to.iter().any(|t| {
            t.group == target.group
                && t.kind == target.kind
                && t.name.as_ref().is_none_or(|n| *n == target.name)
        });
        from_ok && to_ok
    })
}
