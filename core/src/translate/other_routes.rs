//! GRPCRoutes and TLSRoutes → `GrpcRoute`s and `TlsRoute`s.
//!
//! Their parentRefs, filters and backendRefs have the same shape as HTTPRoute's (the
//! generated types differ only in name), so they are read as HTTPRoute's and go through the
//! same attachment, filter and backend code; only matches are their own.

use super::attach;
use super::backends::Needed;
use super::filters;
use super::index::Index;
use super::listeners::Gateways;
use super::routes::attach_all;
use super::rules::{self, RouteCtx};
use super::{Problem, label, version_of};
use crate::model::{
    BackendTarget, GrpcMatch, GrpcMethodMatch, GrpcMethodMatchType, GrpcRoute, GrpcRule,
    HeaderMatch, Resource, ResourceKey, RouteKey, StringMatch, TlsRoute, TlsRule, WeightedBackend,
};
use crate::validate::validate;
use gateway_api::experimental::grpcroutes::{
    GrpcRouteRules, GrpcRouteRulesMatchesHeadersType as HeaderType,
    GrpcRouteRulesMatchesMethodType as MethodType,
};
use gateway_api::experimental::httproutes::{
    HttpRouteParentRefs, HttpRouteRulesBackendRefs, HttpRouteRulesFilters,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Default)]
pub(super) struct OtherRoutes {
    pub grpc: Vec<GrpcRoute>,
    pub tls: Vec<TlsRoute>,
    pub backends: Needed,
}

/// Reads one generated type as another with the same fields.
fn same_shape<T: Serialize, U: DeserializeOwned>(value: &T) -> Result<U, String> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .map_err(|e| format!("unsupported value: {e}"))
}

fn parent_refs<T: Serialize>(
    refs: Option<&Vec<T>>,
    object: &str,
    problems: &mut Vec<Problem>,
) -> Vec<HttpRouteParentRefs> {
    let mut out = Vec::new();
    for (i, r) in refs.into_iter().flatten().enumerate() {
        match same_shape(r) {
            Ok(r) => out.push(r),
            Err(e) => problems.push(Problem::new(object, format!("spec.parentRefs[{i}]"), e)),
        }
    }
    out
}

pub(super) fn translate(
    index: &Index<'_>,
    gateways: &Gateways,
    problems: &mut Vec<Problem>,
) -> OtherRoutes {
    let mut out = OtherRoutes::default();
    for (&(ns, name), route) in &index.grpc_routes {
        let object = label("GRPCRoute", &route.metadata);
        let refs = parent_refs(route.spec.parent_refs.as_ref(), &object, problems);
        let hostnames = route.spec.hostnames.clone().unwrap_or_default();
        let view = attach::Route {
            kind: "GRPCRoute",
            namespace: ns,
            hostnames: &hostnames,
        };
        let Some(parents) = attach_all(index, gateways, &view, &refs, &object, problems) else {
            continue;
        };
        let key = RouteKey::new(ns, name);
        let mut ctx = RouteCtx {
            index,
            kind: "GRPCRoute",
            namespace: ns,
            object: object.clone(),
            problems: Vec::new(),
            backends: Needed::new(),
        };
        let rules: Result<Vec<GrpcRule>, Problem> = route
            .spec
            .rules
            .iter()
            .flatten()
            .enumerate()
            .map(|(i, r)| grpc_rule(&mut ctx, i, r))
            .collect();
        let rules = match rules {
            Ok(rules) if rules.is_empty() => vec![GrpcRule::default()],
            Ok(rules) => rules,
            Err(p) => {
                problems.push(p.rejecting(ResourceKey::GrpcRoute(key)));
                continue;
            }
        };
        let model = GrpcRoute {
            key: key.clone(),
            version: version_of(&route.metadata),
            created_ms: created_ms(&route.metadata),
            hostnames,
            parents,
            rules,
        };
        if let Err(e) = validate(&Resource::GrpcRoute(model.clone())) {
            problems.push(
                Problem::new(&object, format!("spec.{}", e.field), e.reason)
                    .rejecting(ResourceKey::GrpcRoute(key)),
            );
            continue;
        }
        problems.append(&mut ctx.problems);
        // Not `append`: it rebuilds the whole map, making a pass quadratic in routes.
        out.backends.extend(std::mem::take(&mut ctx.backends));
        out.grpc.push(model);
    }
    for (&(ns, name), route) in &index.tls_routes {
        let object = label("TLSRoute", &route.metadata);
        let refs = parent_refs(route.spec.parent_refs.as_ref(), &object, problems);
        let view = attach::Route {
            kind: "TLSRoute",
            namespace: ns,
            hostnames: &route.spec.hostnames,
        };
        let Some(parents) = attach_all(index, gateways, &view, &refs, &object, problems) else {
            continue;
        };
        let key = RouteKey::new(ns, name);
        let mut ctx = RouteCtx {
            index,
            kind: "TLSRoute",
            namespace: ns,
            object: object.clone(),
            problems: Vec::new(),
            backends: Needed::new(),
        };
        let mut rules = Vec::new();
        let mut fatal = None;
        for (i, r) in route.spec.rules.iter().enumerate() {
            let mut backends = Vec::new();
            for (j, b) in r.backend_refs.iter().enumerate() {
                match backend_ref(&mut ctx, &format!("spec.rules[{i}].backendRefs[{j}]"), b) {
                    Ok(b) => backends.push(b),
                    Err(p) => fatal = fatal.or(Some(p)),
                }
            }
            rules.push(TlsRule {
                name: r.name.clone(),
                backends,
            });
        }
        if let Some(p) = fatal {
            problems.push(p.rejecting(ResourceKey::TlsRoute(key)));
            continue;
        }
        let model = TlsRoute {
            key: key.clone(),
            version: version_of(&route.metadata),
            created_ms: created_ms(&route.metadata),
            hostnames: route.spec.hostnames.clone(),
            parents,
            rules,
        };
        if let Err(e) = validate(&Resource::TlsRoute(model.clone())) {
            problems.push(
                Problem::new(&object, format!("spec.{}", e.field), e.reason)
                    .rejecting(ResourceKey::TlsRoute(key)),
            );
            continue;
        }
        problems.append(&mut ctx.problems);
        // Not `append`: it rebuilds the whole map, making a pass quadratic in routes.
        out.backends.extend(std::mem::take(&mut ctx.backends));
        out.tls.push(model);
    }
    out
}

fn created_ms(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> i64 {
    meta.creation_timestamp
        .as_ref()
        .map_or(0, |t| t.0.as_millisecond())
}

fn backend_ref<T: Serialize>(
    ctx: &mut RouteCtx<'_>,
    at: &str,
    b: &T,
) -> Result<WeightedBackend, Problem> {
    match same_shape::<T, HttpRouteRulesBackendRefs>(b) {
        Ok(b) => rules::backend(ctx, at, &b),
        Err(reason) => {
            ctx.problem(at, reason.clone());
            Ok(WeightedBackend {
                target: BackendTarget::Invalid(reason),
                weight: 1,
                filters: Vec::new(),
            })
        }
    }
}

fn grpc_rule(ctx: &mut RouteCtx<'_>, i: usize, r: &GrpcRouteRules) -> Result<GrpcRule, Problem> {
    let at = format!("spec.rules[{i}]");
    let matches = r
        .matches
        .iter()
        .flatten()
        .map(|m| GrpcMatch {
            method: m.method.as_ref().map(|mm| GrpcMethodMatch {
                kind: match mm.r#type {
                    Some(MethodType::RegularExpression) => GrpcMethodMatchType::RegularExpression,
                    Some(MethodType::Exact) | None => GrpcMethodMatchType::Exact,
                },
                service: mm.service.clone(),
                method: mm.method.clone(),
            }),
            headers: m
                .headers
                .iter()
                .flatten()
                .map(|h| HeaderMatch {
                    name: h.name.clone(),
                    value: match h.r#type {
                        Some(HeaderType::RegularExpression) => {
                            StringMatch::RegularExpression(h.value.clone())
                        }
                        Some(HeaderType::Exact) | None => StringMatch::Exact(h.value.clone()),
                    },
                })
                .collect(),
        })
        .collect();
    let mut filters = Vec::new();
    let mut broken = None;
    for (j, f) in r.filters.iter().flatten().enumerate() {
        let fat = format!("{at}.filters[{j}]");
        let converted = same_shape::<_, HttpRouteRulesFilters>(f)
            .and_then(|f| filters::rule_filter(ctx, &fat, &f));
        match converted {
            Ok(f) => filters.push(f),
            Err(reason) => {
                ctx.problem(fat, reason.clone());
                broken.get_or_insert(reason);
            }
        }
    }
    let backends = match broken {
        // As for HTTPRoute: a filter we cannot apply makes the rule fail, never run without it.
        Some(reason) => {
            filters.clear();
            vec![WeightedBackend {
                target: BackendTarget::Invalid(reason),
                weight: 1,
                filters: Vec::new(),
            }]
        }
        None => r
            .backend_refs
            .iter()
            .flatten()
            .enumerate()
            .map(|(j, b)| backend_ref(ctx, &format!("{at}.backendRefs[{j}]"), b))
            .collect::<Result<_, _>>()?,
    };
    Ok(GrpcRule {
        name: r.name.clone(),
        matches,
        filters,
        backends,
    })
}
