//! Which listeners a tenant's objects may attach to, and which ports its ListenerSets open.

use crate::decision::DenyReason;
use crate::object::{GATEWAY_GROUP, Object};
use crate::rule::{RuleResult, Violation};
use crate::snapshot::{Snapshot, TenantId};
use crate::view;
use gatehouse_crds::ListenerGrant;

/// parentRefs of standard routes must point at a listener the Tenant grants, or at a
/// ListenerSet of the same tenant.
pub(crate) fn check_parent_refs(
    snapshot: &Snapshot,
    tenant: TenantId,
    object: &Object,
) -> RuleResult {
    let Some(parents) = view::parent_refs(object) else {
        return Ok(());
    };
    let name = snapshot.tenant_name(tenant);
    if view::uses_default_gateways(object) {
        return Err(Violation::new(
            DenyReason::ListenerNotAllowed,
            "spec.useDefaultGateways",
            format!(
                "attaching to the default Gateways is not allowed; tenant {name} may only use the listeners in Tenant {name} spec.listeners"
            ),
        ));
    }
    let route_ns = object.meta().namespace.as_deref().unwrap_or("");
    let grants = &snapshot.tenant(tenant).spec.listeners;
    for parent in parents {
        let ns = parent.namespace_or(route_ns);
        let allowed = match (parent.group.as_str(), parent.kind.as_str()) {
            (GATEWAY_GROUP, "Gateway") => grants
                .iter()
                .any(|g| grant_covers(g, ns, &parent.name, parent.section_name.as_deref())),
            (GATEWAY_GROUP, "ListenerSet") => snapshot.tenancy.tenants_of(ns) == [tenant],
            _ => false,
        };
        if !allowed {
            let section = parent
                .section_name
                .as_deref()
                .map_or(String::from(" (all listeners)"), |s| {
                    format!(" listener {s}")
                });
            return Err(Violation::new(
                DenyReason::ListenerNotAllowed,
                &parent.field,
                format!(
                    "{} {ns}/{}{section} is not among the listeners tenant {name} may use (Tenant {name} spec.listeners)",
                    parent.kind, parent.name
                ),
            ));
        }
    }
    Ok(())
}

fn grant_covers(grant: &ListenerGrant, ns: &str, gateway: &str, section: Option<&str>) -> bool {
    grant.gateway_namespace == ns
        && grant.gateway_name == gateway
        && (grant.section_names.is_empty()
            || section.is_some_and(|s| grant.section_names.iter().any(|g| g == s)))
}

/// A ListenerSet must hang off a Gateway the tenant was granted and use granted ports.
pub(crate) fn check_listener_set(
    snapshot: &Snapshot,
    tenant: TenantId,
    object: &Object,
) -> RuleResult {
    let Object::ListenerSet(set) = object else {
        return Ok(());
    };
    let spec = &snapshot.tenant(tenant).spec;
    let name = snapshot.tenant_name(tenant);
    let own_ns = set.metadata.namespace.as_deref().unwrap_or("");
    let parent = &set.spec.parent_ref;
    let parent_ns = parent.namespace.as_deref().unwrap_or(own_ns);
    let parent_granted = spec
        .listeners
        .iter()
        .any(|g| g.gateway_namespace == parent_ns && g.gateway_name == parent.name);
    if !parent_granted {
        return Err(Violation::new(
            DenyReason::ListenerNotAllowed,
            "spec.parentRef",
            format!(
                "Gateway {parent_ns}/{} is not among the Gateways tenant {name} may use (Tenant {name} spec.listeners)",
                parent.name
            ),
        ));
    }
    for (i, listener) in set.spec.listeners.iter().enumerate() {
        if !spec.listener_set_ports.contains(&listener.port) {
            return Err(Violation::new(
                DenyReason::PortNotAllowed,
                &format!("spec.listeners[{i}].port"),
                format!(
                    "port {} is not one tenant {name} may open; allowed: {:?} (Tenant {name} spec.listenerSetPorts)",
                    listener.port, spec.listener_set_ports
                ),
            ));
        }
    }
    Ok(())
}
