//! HTTPRoutes → `HttpRoute`s attached to listeners.

use super::attach::{self, Attachment};
use super::backends::Needed;
use super::index::Index;
use super::listeners::Gateways;
use super::rules::{self, RouteCtx};
use super::{Problem, label, version_of};
use crate::model::{HttpMatch, HttpRoute, HttpRule, Resource, ResourceKey, RouteKey};
use crate::validate::validate;
use gateway_api::experimental::httproutes::{HttpRoute as RouteObject, HttpRouteParentRefs};

#[derive(Default)]
pub(super) struct Routes {
    pub routes: Vec<HttpRoute>,
    /// Backends used by the emitted routes only.
    pub backends: Needed,
}

pub(super) fn translate(
    index: &Index<'_>,
    gateways: &Gateways,
    problems: &mut Vec<Problem>,
) -> Routes {
    let mut out = Routes::default();
    for (&(ns, name), route) in &index.routes {
        let object = label("HTTPRoute", &route.metadata);
        let Some(parents) = parents(index, gateways, ns, route, &object, problems) else {
            continue;
        };
        let mut ctx = RouteCtx {
            index,
            kind: "HTTPRoute",
            namespace: ns,
            object: object.clone(),
            problems: Vec::new(),
            backends: Needed::new(),
        };
        let mut rules = Vec::new();
        for (i, r) in route.spec.rules.iter().flatten().enumerate() {
            match rules::rule(&mut ctx, i, r) {
                Ok(rule) => rules.push(rule),
                Err(p) => {
                    problems.push(p.rejecting(ResourceKey::HttpRoute(RouteKey::new(ns, name))));
                    break;
                }
            }
        }
        if rules.len() != route.spec.rules.as_ref().map_or(0, Vec::len) {
            continue;
        }
        if rules.is_empty() {
            // What the API server would have defaulted: one rule matching everything.
            rules.push(HttpRule {
                matches: vec![HttpMatch::default()],
                ..Default::default()
            });
        }
        let model = HttpRoute {
            key: RouteKey::new(ns, name),
            version: version_of(&route.metadata),
            created_ms: route
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(0, |t| t.0.as_millisecond()),
            hostnames: route.spec.hostnames.clone().unwrap_or_default(),
            parents,
            rules,
        };
        if let Err(e) = validate(&Resource::HttpRoute(model.clone())) {
            problems.push(
                Problem::new(&object, format!("spec.{}", e.field), e.reason)
                    .rejecting(ResourceKey::HttpRoute(RouteKey::new(ns, name))),
            );
            continue;
        }
        problems.append(&mut ctx.problems);
        // Not `append`: it rebuilds the whole map, making a pass quadratic in routes.
        out.backends.extend(std::mem::take(&mut ctx.backends));
        out.routes.push(model);
    }
    out
}

/// The listeners the route attaches to, or `None` when there are none (after reporting
/// why, unless every parent belongs to another controller).
pub(super) fn parents(
    index: &Index<'_>,
    gateways: &Gateways,
    ns: &str,
    route: &RouteObject,
    object: &str,
    problems: &mut Vec<Problem>,
) -> Option<Vec<crate::model::ListenerKey>> {
    let view = attach::Route {
        kind: "HTTPRoute",
        namespace: ns,
        hostnames: route.spec.hostnames.as_deref().unwrap_or_default(),
    };
    let refs = route.spec.parent_refs.as_deref().unwrap_or_default();
    attach_all(index, gateways, &view, refs, object, problems)
}

/// The listeners a route's parentRefs land on, any kind of route; problems say why not.
pub(super) fn attach_all(
    index: &Index<'_>,
    gateways: &Gateways,
    view: &attach::Route<'_>,
    refs: &[HttpRouteParentRefs],
    object: &str,
    problems: &mut Vec<Problem>,
) -> Option<Vec<crate::model::ListenerKey>> {
    if refs.is_empty() {
        problems.push(Problem::new(
            object,
            "spec.parentRefs",
            "NoMatchingParent: the route names no parent",
        ));
        return None;
    }
    let mut parents = Vec::new();
    for (i, p) in refs.iter().enumerate() {
        match attach::attach(index, gateways, view, p) {
            Attachment::Listeners(keys) => parents.extend(keys),
            Attachment::Foreign => {}
            Attachment::Refused(reason) => problems.push(Problem::new(
                object,
                format!("spec.parentRefs[{i}]"),
                reason,
            )),
        }
    }
    parents.sort();
    parents.dedup();
    (!parents.is_empty()).then_some(parents)
}
