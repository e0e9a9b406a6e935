//! Which listeners a route's parentRef lands on.

use super::GATEWAY_GROUP;
use super::index::Index;
use super::listeners::{Gateways, ListenerView, Namespaces};
use super::selector;
use crate::hostname::intersect;
use crate::model::ListenerKey;
use gateway_api::experimental::httproutes::HttpRouteParentRefs;

pub(super) enum Attachment {
    Listeners(Vec<ListenerKey>),
    /// The parent belongs to another controller: nothing to do, nothing to report.
    Foreign,
    /// The reason, starting with the spec's condition reason.
    Refused(String),
}

pub(super) struct Route<'r> {
    /// `HTTPRoute`, `GRPCRoute` or `TLSRoute`.
    pub kind: &'r str,
    pub namespace: &'r str,
    pub hostnames: &'r [String],
}

pub(super) fn attach(
    index: &Index<'_>,
    gateways: &Gateways,
    route: &Route<'_>,
    parent: &HttpRouteParentRefs,
) -> Attachment {
    let group = parent.group.as_deref().unwrap_or(GATEWAY_GROUP);
    let kind = parent.kind.as_deref().unwrap_or("Gateway");
    let ns = parent.namespace.as_deref().unwrap_or(route.namespace);
    let key = (ns.to_string(), parent.name.clone());
    let group_ok = group.is_empty() || group == GATEWAY_GROUP;
    let (parents, foreign) = match kind {
        "Gateway" if group_ok => (&gateways.ours, &gateways.foreign),
        "ListenerSet" if group_ok => (&gateways.listener_sets, &gateways.foreign_sets),
        _ => {
            return Attachment::Refused(format!(
                "NoMatchingParent: parent kind {group}/{kind} is not supported"
            ));
        }
    };
    let Some(gw) = parents.get(&key) else {
        if foreign.contains(&key) {
            return Attachment::Foreign;
        }
        return Attachment::Refused(format!(
            "NoMatchingParent: {kind} {ns}/{} not found",
            parent.name
        ));
    };

    let selected: Vec<&ListenerView> = gw
        .listeners
        .iter()
        .filter(|l| parent.section_name.as_ref().is_none_or(|s| *s == l.name))
        .filter(|l| parent.port.is_none_or(|p| p == i32::from(l.port)))
        .collect();
    if selected.is_empty() {
        let mut what = String::new();
        if let Some(s) = &parent.section_name {
            what += &format!(" named {s}");
        }
        if let Some(p) = parent.port {
            what += &format!(" on port {p}");
        }
        return Attachment::Refused(format!(
            "NoMatchingParent: {kind} {ns}/{} has no listener{what}",
            parent.name
        ));
    }

    let allowed: Vec<&ListenerView> = selected
        .into_iter()
        .filter(|l| {
            l.admits(route.kind) && admits_namespace(index, &gw.namespace, l, route.namespace)
        })
        .collect();
    if allowed.is_empty() {
        return Attachment::Refused(format!(
            "NotAllowedByListeners: no selected listener of {kind} {ns}/{} admits {}s from namespace {}",
            parent.name, route.kind, route.namespace
        ));
    }

    let mut keys: Vec<ListenerKey> = allowed
        .into_iter()
        .filter(|l| {
            route.hostnames.is_empty()
                || route
                    .hostnames
                    .iter()
                    .any(|h| intersect(l.hostname.as_deref(), h).is_some())
        })
        .map(|l| l.key.clone())
        .collect();
    if keys.is_empty() {
        return Attachment::Refused(format!(
            "NoMatchingListenerHostname: no listener of {kind} {ns}/{} shares a hostname with the route",
            parent.name
        ));
    }
    keys.sort();
    Attachment::Listeners(keys)
}

fn admits_namespace(index: &Index<'_>, gateway_ns: &str, l: &ListenerView, route_ns: &str) -> bool {
    match &l.namespaces {
        Namespaces::Same => gateway_ns == route_ns,
        Namespaces::All => true,
        Namespaces::Selector(sel) => {
            selector::matches(sel, &index.namespace_labels(route_ns)).unwrap_or(false)
        }
        Namespaces::Nothing => false,
    }
}
