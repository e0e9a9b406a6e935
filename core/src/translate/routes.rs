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
use std::sync::Arc;

#[derive(Default)]
pub(super) struct Routes {
    pub routes: Vec<Arc<HttpRoute>>,
    /// Backends used by the emitted routes only (empty from a remembering translation,
    /// whose memo counts them: [`super::incremental::HttpMemo::backends`]).
    pub backends: Needed,
    /// The backend the last route added used (already in `backends`).
    last_backend: Option<crate::model::BackendKey>,
}

impl Routes {
    fn add(&mut self, output: &RouteOutput, problems: &mut Vec<Problem>) {
        self.add_model(output, problems);
        if output.model.is_some() {
            // Looked up before cloning: most routes share their backends with others, and
            // routes come in namespace order, so most often with the route just before.
            for (key, target) in &output.backends {
                if self.last_backend.as_ref() == Some(key) {
                    continue;
                }
                if !self.backends.contains_key(key) {
                    self.backends.insert(key.clone(), target.clone());
                }
                self.last_backend = Some(key.clone());
            }
        }
    }

    /// The model and problems only: a remembering translation counts backends itself.
    fn add_model(&mut self, output: &RouteOutput, problems: &mut Vec<Problem>) {
        problems.extend(output.problems.iter().cloned());
        if let Some(model) = &output.model {
            self.routes.push(model.clone());
        }
    }
}

/// What one HTTPRoute contributes to a translation, given the rest of the world: kept per
/// route by the [`super::Translator`] so that an unchanged route is not converted again.
#[derive(Clone, Debug, Default)]
pub(super) struct RouteOutput {
    /// In the order a full translation reports them.
    pub problems: Vec<Problem>,
    pub model: Option<Arc<HttpRoute>>,
    /// Backends the model uses (empty when it is not emitted).
    pub backends: Needed,
}

pub(super) fn translate(
    index: &Index<'_>,
    gateways: &Gateways,
    problems: &mut Vec<Problem>,
    memo: Option<&mut super::incremental::HttpMemo>,
) -> Routes {
    let mut out = Routes::default();
    let convert = |&(ns, name): &(&str, &str), route: &Arc<RouteObject>| {
        one(index, gateways, ns, name, route)
    };
    match memo {
        None => {
            for (key, route) in &index.routes {
                out.add(&convert(key, route), problems);
            }
        }
        Some(memo) => {
            for (key, route) in &index.routes {
                memo.remember(key.0, key.1, route, || convert(key, route));
            }
            for output in memo.finish() {
                out.add_model(output, problems);
            }
        }
    }
    out
}

/// One HTTPRoute converted against the world `index` and `gateways` describe.
pub(super) fn one(
    index: &Index<'_>,
    gateways: &Gateways,
    ns: &str,
    name: &str,
    route: &RouteObject,
) -> RouteOutput {
    let mut out = RouteOutput::default();
    let object = label("HTTPRoute", &route.metadata);
    let Some(parents) = parents(index, gateways, ns, route, &object, &mut out.problems) else {
        return out;
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
                out.problems
                    .push(p.rejecting(ResourceKey::HttpRoute(RouteKey::new(ns, name))));
                return out;
            }
        }
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
    let resource = Resource::HttpRoute(Arc::new(model));
    if let Err(e) = validate(&resource) {
        out.problems.push(
            Problem::new(&object, format!("spec.{}", e.field), e.reason)
                .rejecting(ResourceKey::HttpRoute(RouteKey::new(ns, name))),
        );
        return out;
    }
    let Resource::HttpRoute(model) = resource else {
        unreachable!("built as an HTTPRoute just above")
    };
    out.problems.append(&mut ctx.problems);
    out.backends = ctx.backends;
    out.model = Some(model);
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
