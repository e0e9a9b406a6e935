//! ListenerSets: listeners that objects in other namespaces (typically tenants) add to a
//! Gateway whose `allowedListeners` admits them.
//!
//! A ListenerSet's listeners are served on its Gateway's address, keyed under the Gateway
//! (so whatever selects a Gateway's listeners selects them too) and checked for conflicts
//! after the Gateway's own listeners, ListenerSets oldest first: an admin's listener always
//! wins over a tenant's, an older ListenerSet over a newer one.

use super::index::Index;
use super::listeners::{GatewayView, Gateways, Owner};
use super::{GATEWAY_GROUP, Problem, label, name_of, namespace_of, version_of};
use gateway_api::experimental::gateways::{
    Gateway, GatewayAllowedListenersNamespacesFrom as From, GatewayListeners,
};
use gateway_api::experimental::listenersets::{ListenerSet, ListenerSetListeners};
use std::net::IpAddr;

/// The Gateway (namespace, name) a ListenerSet names as its parent, if it names a Gateway.
pub fn parent_gateway(set: &ListenerSet) -> Option<(String, String)> {
    let parent = &set.spec.parent_ref;
    let group = parent.group.as_deref().unwrap_or(GATEWAY_GROUP);
    let kind = parent.kind.as_deref().unwrap_or("Gateway");
    if group != GATEWAY_GROUP || kind != "Gateway" {
        return None;
    }
    let ns = parent
        .namespace
        .clone()
        .unwrap_or_else(|| namespace_of(&set.metadata).to_string());
    Some((ns, parent.name.clone()))
}

/// A ListenerSet listener read as a Gateway listener: the two share one schema, so one
/// code path validates, serves and reports both.
pub fn as_gateway_listener(listener: &ListenerSetListeners) -> Option<GatewayListeners> {
    serde_json::to_value(listener)
        .ok()
        .and_then(|v| serde_json::from_value(v).ok())
}

/// Adds the listeners of every ListenerSet that `gw` admits to `out`, and records each
/// accepted ListenerSet as a parent routes can attach to.
pub(super) fn attach(
    index: &Index<'_>,
    gw: &Gateway,
    address: IpAddr,
    gateway: &GatewayView,
    out: &mut Gateways,
    problems: &mut Vec<Problem>,
) {
    let gw_key = (
        namespace_of(&gw.metadata).to_string(),
        name_of(&gw.metadata).to_string(),
    );
    let mut sets: Vec<&ListenerSet> = index
        .listener_sets
        .values()
        .copied()
        .filter(|s| parent_gateway(s).as_ref() == Some(&gw_key))
        .collect();
    sets.sort_by_key(|s| {
        (
            s.metadata.creation_timestamp.clone(),
            namespace_of(&s.metadata),
            name_of(&s.metadata),
        )
    });
    // Every listener accepted so far on this Gateway, for conflict checks.
    let mut taken = gateway.listeners.clone();
    for set in sets {
        let object = label("ListenerSet", &set.metadata);
        let set_ns = namespace_of(&set.metadata);
        let set_name = name_of(&set.metadata);
        if let Err(reason) = admits(index, gw, set_ns) {
            problems.push(Problem::new(&object, "spec.parentRef", reason));
            continue;
        }
        let owner = Owner {
            index,
            object: &object,
            kind: "ListenerSet",
            namespace: set_ns,
            key_prefix: format!("{}/{}/{set_ns}/{set_name}", gw_key.0, gw_key.1),
            version: version_of(&set.metadata),
            set: Some((set_ns.to_string(), set_name.to_string())),
            address,
        };
        let mut view = GatewayView {
            namespace: set_ns.to_string(),
            listeners: Vec::new(),
        };
        for (i, l) in set.spec.listeners.iter().enumerate() {
            let at = format!("spec.listeners[{i}]");
            let Some(spec) = as_gateway_listener(l) else {
                problems.push(Problem::new(&object, at, "unreadable listener"));
                continue;
            };
            if let Some((listener, listener_view)) =
                owner.listener(&at, &spec, &taken, &mut out.certificates, problems)
            {
                out.listeners.extend(listener);
                taken.push(listener_view.clone());
                view.listeners.push(listener_view);
            }
        }
        out.listener_sets
            .insert((set_ns.to_string(), set_name.to_string()), view);
    }
}

/// Remembers the ListenerSets of Gateways that belong to someone else, so routes attached
/// to them are left alone rather than reported.
pub(super) fn note_foreign(index: &Index<'_>, out: &mut Gateways) {
    for (&(ns, name), set) in &index.listener_sets {
        if parent_gateway(set).is_some_and(|gw| out.foreign.contains(&gw)) {
            out.foreign_sets.insert((ns.to_string(), name.to_string()));
        }
    }
}

/// Whether the Gateway's `allowedListeners` admits ListenerSets from `set_ns`; the reason
/// starts with the spec's condition reason when not.
fn admits(index: &Index<'_>, gw: &Gateway, set_ns: &str) -> Result<(), String> {
    let gw_ns = namespace_of(&gw.metadata);
    let gw_name = name_of(&gw.metadata);
    let namespaces = gw
        .spec
        .allowed_listeners
        .as_ref()
        .and_then(|a| a.namespaces.as_ref());
    let allowed = match namespaces.and_then(|n| n.from.as_ref()) {
        // The spec's default is to admit no ListenerSet.
        None | Some(From::None) => false,
        Some(From::Same) => set_ns == gw_ns,
        Some(From::All) => true,
        Some(From::Selector) => {
            let Some(selector) = namespaces.and_then(|n| n.selector.as_ref()) else {
                return Err(format!(
                    "NotAllowed: Gateway {gw_ns}/{gw_name} selects ListenerSet namespaces with no selector"
                ));
            };
            let requirements =
                selector
                    .match_expressions
                    .iter()
                    .flatten()
                    .map(|e| crate::selector::Requirement {
                        key: &e.key,
                        operator: &e.operator,
                        values: e.values.as_deref().unwrap_or_default(),
                    });
            crate::selector::matches(
                selector.match_labels.as_ref(),
                requirements,
                &index.namespace_labels(set_ns),
            )
            .map_err(|e| format!("NotAllowed: Gateway {gw_ns}/{gw_name}: {e}"))?
        }
    };
    if allowed {
        Ok(())
    } else {
        Err(format!(
            "NotAllowed: Gateway {gw_ns}/{gw_name} does not admit ListenerSets from namespace {set_ns}"
        ))
    }
}
