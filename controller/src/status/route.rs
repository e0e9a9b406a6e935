//! Route status (HTTPRoute, GRPCRoute, TLSRoute): one entry per parentRef that names one of
//! our Gateways.

use super::{Condition, Ctx, generation, message_of, reason_of};
use crate::addresses::Assignment;
use gatehouse_core::model::{ResourceKey, RouteKey};
use gateway_api::experimental::grpcroutes::GrpcRoute;
use gateway_api::experimental::httproutes::HttpRoute;
use gateway_api::experimental::tlsroutes::TlsRoute;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde_json::Value;

pub const CONTROLLER: &str = crate::plan::CONTROLLER_NAME;
const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteParentStatus {
    /// The parentRef exactly as written, which is how readers find their entry.
    pub parent_ref: serde_json::Value,
    pub controller_name: &'static str,
    pub conditions: Vec<Condition>,
}

const REF_REASONS: [&str; 4] = [
    "BackendNotFound",
    "RefNotPermitted",
    "InvalidKind",
    "UnsupportedValue",
];

/// What the status needs of a route, whatever its kind: the three kinds' parentRefs are
/// distinct types of the same shape, so they are read as JSON.
pub(super) struct RouteView<'a> {
    kind: &'static str,
    meta: &'a ObjectMeta,
    parent_refs: Vec<Value>,
    key: fn(RouteKey) -> ResourceKey,
}

impl<'a> RouteView<'a> {
    pub(super) fn http(r: &'a HttpRoute) -> Self {
        Self::new(
            "HTTPRoute",
            &r.metadata,
            r.spec.parent_refs.as_deref(),
            ResourceKey::HttpRoute,
        )
    }

    pub(super) fn grpc(r: &'a GrpcRoute) -> Self {
        Self::new(
            "GRPCRoute",
            &r.metadata,
            r.spec.parent_refs.as_deref(),
            ResourceKey::GrpcRoute,
        )
    }

    pub(super) fn tls(r: &'a TlsRoute) -> Self {
        Self::new(
            "TLSRoute",
            &r.metadata,
            r.spec.parent_refs.as_deref(),
            ResourceKey::TlsRoute,
        )
    }

    fn new<P: Serialize>(
        kind: &'static str,
        meta: &'a ObjectMeta,
        parent_refs: Option<&[P]>,
        key: fn(RouteKey) -> ResourceKey,
    ) -> Self {
        let parent_refs = parent_refs
            .unwrap_or_default()
            .iter()
            .map(|p| serde_json::to_value(p).unwrap_or_default())
            .collect();
        RouteView {
            kind,
            meta,
            parent_refs,
            key,
        }
    }
}

pub(super) fn status(ctx: &Ctx<'_>, route: &RouteView<'_>) -> Vec<RouteParentStatus> {
    let ns = route.meta.namespace.clone().unwrap_or_default();
    let name = route.meta.name.clone().unwrap_or_default();
    let object = format!("{} {ns}/{name}", route.kind);
    let problems = ctx.problems_of(&object);
    let generation = generation(route.meta);
    let key = (route.key)(RouteKey::new(&ns, &name));
    let served = ctx.plan.translation.resources.contains_key(&key);
    let rejected = problems.iter().find(|p| p.rejected.as_ref() == Some(&key));

    // References are resolved per route, not per parent: the same answer for every entry.
    let unresolved = problems.iter().find(|p| {
        p.field.contains("backendRef") && reason_of(p).is_some_and(|r| REF_REASONS.contains(&r))
    });
    let resolved = Condition::resolved_refs(unresolved.copied(), generation);

    let mut out = Vec::new();
    for (i, parent) in route.parent_refs.iter().enumerate() {
        let group = parent["group"].as_str().unwrap_or(GATEWAY_GROUP);
        let kind = parent["kind"].as_str().unwrap_or("Gateway");
        let parent_key = (
            parent["namespace"].as_str().unwrap_or(&ns).to_string(),
            parent["name"].as_str().unwrap_or_default().to_string(),
        );
        // Parents that are not our Gateways (or their ListenerSets) are someone else's to
        // report on.
        let gw = match kind {
            _ if group != GATEWAY_GROUP => continue,
            "Gateway" if ctx.gateways.contains_key(&parent_key) => parent_key,
            "ListenerSet" => match ctx.listener_sets.get(&parent_key) {
                Some(gw) => gw.clone(),
                None => continue,
            },
            _ => continue,
        };
        let at = format!("spec.parentRefs[{i}]");
        let refused = problems.iter().find(|p| p.field == at);
        let accepted = if let Some(Assignment::Assigned(_)) = ctx.plan.addresses.get(&gw) {
            match (refused, rejected) {
                (Some(p), _) => Condition::new(
                    "Accepted",
                    false,
                    reason_of(p).unwrap_or("NoMatchingParent"),
                    message_of(p),
                    generation,
                ),
                (None, Some(p)) => Condition::new(
                    "Accepted",
                    false,
                    "UnsupportedValue",
                    message_of(p),
                    generation,
                ),
                (None, None) if served => {
                    Condition::new("Accepted", true, "Accepted", "", generation)
                }
                (None, None) => Condition::new("Accepted", false, "Pending", "", generation),
            }
        } else {
            Condition::new(
                "Accepted",
                false,
                "NoMatchingParent",
                format!("{at}: Gateway {}/{} has no usable address", gw.0, gw.1),
                generation,
            )
        };
        out.push(RouteParentStatus {
            parent_ref: parent.clone(),
            controller_name: CONTROLLER,
            conditions: vec![accepted, resolved.clone()],
        });
    }
    out
}
