//! Pure status computation: the objects as watched, the plan made from them and what the
//! proxies acknowledged go in; the status each of our objects should carry comes out.
//!
//! The core's `Problem`s name object and field and start their text with the spec's
//! condition reason (`BackendNotFound: ...`), so most conditions are read off them; what
//! they cannot say (who owns a parent, which listener a route landed on) is recomputed
//! here from the same objects.

mod class;
mod gateway;
mod listener_set;
mod route;
mod tenancy;
mod tenant_certs;
#[cfg(test)]
mod tests;

use crate::addresses::{Assignment, GatewayKey};
use crate::distribute::{Connected, Rejection};
use crate::plan::Plan;
use gatehouse_core::manifest::Object;
use gatehouse_core::model::{Resource, ResourceKey};
use gatehouse_core::scope::Scope;
use gatehouse_core::translate::Problem;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

pub use class::ClassStatus;
pub use gateway::{GatewayAddress, GatewayStatus, ListenerStatus, RouteKind};
pub use listener_set::ListenerSetStatus;
pub use route::RouteParentStatus;
pub use tenancy::{
    RouteStatusMemo, RouteStatuses, TenantRouteStatus, TenantStatus, route_statuses,
    tenant_statuses,
};
pub use tenant_certs::{TenantCertificateStatus, certificate_statuses};

/// A condition as the spec's `metav1.Condition`, minus `lastTransitionTime`: the writer
/// fills that in, carrying it over while status and reason stay the same.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub status: &'static str,
    pub reason: String,
    pub message: String,
    pub observed_generation: i64,
}

impl Condition {
    fn new(
        kind: &'static str,
        ok: bool,
        reason: &str,
        message: impl Into<String>,
        generation: i64,
    ) -> Self {
        Condition {
            kind,
            status: if ok { "True" } else { "False" },
            reason: reason.to_string(),
            message: message.into(),
            observed_generation: generation,
        }
    }

    /// ResolvedRefs: True, or False with the first unresolved reference's reason.
    fn resolved_refs(unresolved: Option<&Problem>, generation: i64) -> Self {
        match unresolved {
            Some(p) => Condition::new(
                "ResolvedRefs",
                false,
                reason_of(p).unwrap_or_default(),
                message_of(p),
                generation,
            ),
            None => Condition::new("ResolvedRefs", true, "ResolvedRefs", "", generation),
        }
    }

    pub fn is_true(&self) -> bool {
        self.status == "True"
    }
}

/// The status of one object, with what identifies it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Named<T> {
    pub namespace: Option<String>,
    pub name: String,
    /// Tells a recreated object from the old one with the same name.
    pub uid: Option<String>,
    pub status: T,
}

impl<T> Named<T> {
    fn new(meta: &ObjectMeta, status: T) -> Self {
        Named {
            namespace: meta.namespace.clone(),
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone(),
            status,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Statuses {
    pub classes: Vec<Named<ClassStatus>>,
    pub gateways: Vec<Named<GatewayStatus>>,
    pub listener_sets: Vec<Named<ListenerSetStatus>>,
    /// Only our entries of each route's `status.parents`.
    pub routes: Vec<Named<Vec<RouteParentStatus>>>,
    /// As `routes`, for GRPCRoutes.
    pub grpc_routes: Vec<Named<Vec<RouteParentStatus>>>,
    /// As `routes`, for TLSRoutes.
    pub tls_routes: Vec<Named<Vec<RouteParentStatus>>>,
    pub tenant_routes: RouteStatuses,
    pub tenants: Vec<Named<TenantStatus>>,
    pub tenant_certificates: Vec<Named<TenantCertificateStatus>>,
}

pub fn compute(objects: &[Object], plan: &Plan, programmed: &BTreeSet<GatewayKey>) -> Statuses {
    let programming = Programming {
        gateways: programmed.clone(),
        waiting: BTreeMap::new(),
    };
    compute_with(objects, plan, &programming)
}

/// [`compute`], with why each Gateway that is not Programmed is waiting.
pub fn compute_with(objects: &[Object], plan: &Plan, programming: &Programming) -> Statuses {
    let ctx = Ctx::new(objects, plan, &programming.gateways, &programming.waiting);
    let mut out = Statuses::default();
    // ListenerSets first: each Gateway reports how many it has attached.
    let mut attached_sets: BTreeMap<GatewayKey, i32> = BTreeMap::new();
    for object in objects {
        if let Object::ListenerSet(set) = object
            && let Some((gw, status)) = listener_set::status(&ctx, set)
        {
            *attached_sets.entry(gw).or_default() += i32::from(status.attached());
            out.listener_sets.push(Named::new(&set.metadata, status));
        }
    }
    for object in objects {
        match object {
            Object::GatewayClass(c)
                if ctx
                    .classes
                    .contains(c.metadata.name.as_deref().unwrap_or_default()) =>
            {
                let invalid = plan
                    .invalid_classes
                    .get(c.metadata.name.as_deref().unwrap_or_default());
                out.classes
                    .push(Named::new(&c.metadata, class::status(c, invalid)));
            }
            Object::Gateway(gw) => {
                let attached = attached_sets
                    .get(&crate::plan::gateway_key(gw))
                    .copied()
                    .unwrap_or_default();
                if let Some(status) = gateway::status(&ctx, gw, attached) {
                    out.gateways.push(Named::new(&gw.metadata, status));
                }
            }
            // A TenantRoute's stand-in reports through the TenantRoute.
            Object::HttpRoute(r)
                if r.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(crate::tenancy::ROUTE_PREFIX)) => {}
            Object::HttpRoute(r) => {
                let parents = route::status(&ctx, &route::RouteView::http(r));
                if !parents.is_empty() {
                    out.routes.push(Named::new(&r.metadata, parents));
                }
            }
            Object::GrpcRoute(r) => {
                let parents = route::status(&ctx, &route::RouteView::grpc(r));
                if !parents.is_empty() {
                    out.grpc_routes.push(Named::new(&r.metadata, parents));
                }
            }
            Object::TlsRoute(r) => {
                let parents = route::status(&ctx, &route::RouteView::tls(r));
                if !parents.is_empty() {
                    out.tls_routes.push(Named::new(&r.metadata, parents));
                }
            }
            _ => {}
        }
    }
    out
}

/// What one connected proxy serves and acknowledged, as status needs it.
pub struct ProxyAcks<'a> {
    /// Instance and address, for messages.
    pub name: String,
    pub scope: &'a Scope,
    /// `None` until its first snapshot is acknowledged.
    pub acked: Option<&'a gatehouse_core::scope::Config>,
    pub rejection: Option<&'a Rejection>,
}

impl<'a> From<&'a Connected> for ProxyAcks<'a> {
    fn from(c: &'a Connected) -> Self {
        ProxyAcks {
            name: c.name(),
            scope: &c.scope,
            acked: c.acked.as_deref(),
            rejection: c.rejection.as_ref(),
        }
    }
}

/// Which Gateways are Programmed, and for the others that could be, why not yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Programming {
    pub gateways: BTreeSet<GatewayKey>,
    pub waiting: BTreeMap<GatewayKey, String>,
}

/// A Gateway is Programmed when at least one proxy serves it and every proxy serving it
/// acknowledged its listeners as planned.
pub fn programmed(plan: &Plan, proxies: &[ProxyAcks<'_>]) -> Programming {
    let mut out = Programming::default();
    for (key, assignment) in &plan.addresses {
        if !matches!(assignment, Assignment::Assigned(_)) {
            continue;
        }
        let (ns, name) = key;
        let serving: Vec<&ProxyAcks<'_>> = proxies
            .iter()
            .filter(|p| p.scope.serves(ns, name))
            .collect();
        if serving.is_empty() {
            out.waiting.insert(
                key.clone(),
                "no proxy serving this Gateway is connected to the controller".to_string(),
            );
            continue;
        }
        let rejected = serving.iter().find_map(|p| {
            p.rejection
                .filter(|r| r.gateways.contains(key))
                .map(|r| (p, r))
        });
        if let Some((p, r)) = rejected {
            out.waiting.insert(
                key.clone(),
                format!(
                    "proxy {} rejected config version {}: {}",
                    p.name, r.version, r.error
                ),
            );
            continue;
        }
        let prefix = format!("{ns}/{name}/");
        // Listener keys sort first and by name: this Gateway's are one run of the map.
        let start = ResourceKey::Listener(gatehouse_core::model::ListenerKey(prefix.clone()));
        let listeners =
            plan.translation.resources.range(start..).take_while(
                |(k, _)| matches!(k, ResourceKey::Listener(l) if l.0.starts_with(&prefix)),
            );
        let behind = serving
            .iter()
            .filter(|p| {
                listeners
                    .clone()
                    .any(|(k, r)| p.acked.and_then(|a| a.get(k)) != Some(r))
            })
            .count();
        if behind == 0 {
            out.gateways.insert(key.clone());
        } else {
            out.waiting.insert(
                key.clone(),
                format!(
                    "waiting for {behind} of {} proxies serving this Gateway to acknowledge the configuration",
                    serving.len()
                ),
            );
        }
    }
    out
}

/// Routes whose planned version every proxy serving one of their Gateways acknowledged
/// (and at least one does).
pub fn programmed_routes(plan: &Plan, proxies: &[ProxyAcks<'_>]) -> ProgrammedRoutes {
    let resources = &plan.translation.resources;
    // The common case, a fleet serving every Gateway: what a proxy acknowledged shares
    // every unchanged node with the plan, so what it lacks is a diff of O(the change).
    let everywhere: Option<Vec<&gatehouse_core::scope::Config>> = proxies
        .iter()
        .map(|p| (*p.scope == Scope::All).then_some(p.acked).flatten())
        .collect();
    if let Some(acked) = everywhere.filter(|a| !a.is_empty()) {
        let mut behind = BTreeSet::new();
        for config in acked {
            for item in config.diff(resources) {
                if let imbl::ordmap::DiffItem::Add(ResourceKey::HttpRoute(k), _)
                | imbl::ordmap::DiffItem::Update {
                    new: (ResourceKey::HttpRoute(k), _),
                    ..
                } = item
                {
                    behind.insert(k.clone());
                }
            }
        }
        return ProgrammedRoutes::AllServedBut(behind);
    }
    ProgrammedRoutes::Only(
        resources
            .iter()
            .filter_map(|(k, r)| match (k, r) {
                (ResourceKey::HttpRoute(key), Resource::HttpRoute(route)) => {
                    let mut serving = proxies
                        .iter()
                        .filter(|p| route.parents.iter().any(|l| p.scope.serves_listener(l)))
                        .peekable();
                    let any = serving.peek().is_some();
                    let all = serving.all(|p| p.acked.and_then(|a| a.get(k)) == Some(r));
                    (any && all).then(|| key.clone())
                }
                _ => None,
            })
            .collect(),
    )
}

/// [`programmed_routes`]: asked only about routes the plan serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProgrammedRoutes {
    Only(BTreeSet<gatehouse_core::model::RouteKey>),
    /// Every served route but these.
    AllServedBut(BTreeSet<gatehouse_core::model::RouteKey>),
}

impl ProgrammedRoutes {
    /// Whether served route `key` is programmed.
    pub fn contains(&self, key: &gatehouse_core::model::RouteKey) -> bool {
        match self {
            ProgrammedRoutes::Only(set) => set.contains(key),
            ProgrammedRoutes::AllServedBut(set) => !set.contains(key),
        }
    }
}

/// What every part of the computation looks things up in.
struct Ctx<'a> {
    plan: &'a Plan,
    programmed: &'a BTreeSet<GatewayKey>,
    /// Why Gateways that are not Programmed wait.
    waiting: &'a BTreeMap<GatewayKey, String>,
    classes: BTreeSet<&'a str>,
    /// Our Gateways by (namespace, name).
    gateways: BTreeMap<GatewayKey, &'a gateway_api::experimental::gateways::Gateway>,
    /// ListenerSets whose Gateway is ours, by (namespace, name), with that Gateway.
    listener_sets: BTreeMap<GatewayKey, GatewayKey>,
    /// Problems by the object they name (`HTTPRoute ns/name`).
    problems: BTreeMap<&'a str, Vec<&'a Problem>>,
}

impl<'a> Ctx<'a> {
    fn new(
        objects: &'a [Object],
        plan: &'a Plan,
        programmed: &'a BTreeSet<GatewayKey>,
        waiting: &'a BTreeMap<GatewayKey, String>,
    ) -> Self {
        let classes = crate::plan::our_classes(objects);
        let gateways: BTreeMap<GatewayKey, &gateway_api::experimental::gateways::Gateway> = objects
            .iter()
            .filter_map(|o| match o {
                Object::Gateway(gw) if classes.contains(gw.spec.gateway_class_name.as_str()) => {
                    Some((crate::plan::gateway_key(gw), &**gw))
                }
                _ => None,
            })
            .collect();
        let listener_sets = objects
            .iter()
            .filter_map(|o| match o {
                Object::ListenerSet(set) => {
                    let gw = gatehouse_core::translate::parent_gateway(set)?;
                    gateways.contains_key(&gw).then(|| {
                        let ns = set.metadata.namespace.clone().unwrap_or_default();
                        ((ns, set.metadata.name.clone().unwrap_or_default()), gw)
                    })
                }
                _ => None,
            })
            .collect();
        let mut problems: BTreeMap<&str, Vec<&Problem>> = BTreeMap::new();
        for p in &plan.translation.problems {
            problems.entry(p.object.as_str()).or_default().push(p);
        }
        Ctx {
            plan,
            programmed,
            waiting,
            classes,
            gateways,
            listener_sets,
            problems,
        }
    }

    fn problems_of(&self, object: &str) -> &[&'a Problem] {
        self.problems
            .get(object)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }
}

/// The spec reason a problem's text starts with (`BackendNotFound: ...`), if any.
fn reason_of(p: &Problem) -> Option<&str> {
    let (head, _) = p.reason.split_once(':')?;
    let word = !head.is_empty()
        && head.starts_with(|c: char| c.is_ascii_uppercase())
        && head.chars().all(|c| c.is_ascii_alphanumeric());
    word.then_some(head)
}

/// The message a condition shows for a problem: where, then why.
fn message_of(p: &Problem) -> String {
    format!("{}: {}", p.field, p.reason)
}

fn generation(meta: &ObjectMeta) -> i64 {
    meta.generation.unwrap_or_default()
}
