//! HTTPRoute status: one entry per parentRef that names one of our Gateways.

use super::{Condition, Ctx, generation, message_of, reason_of};
use crate::addresses::Assignment;
use gatehouse_core::model::{ResourceKey, RouteKey};
use gateway_api::experimental::httproutes::HttpRoute;
use serde::Serialize;

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

pub(super) fn status(ctx: &Ctx<'_>, route: &HttpRoute) -> Vec<RouteParentStatus> {
    let ns = route.metadata.namespace.clone().unwrap_or_default();
    let name = route.metadata.name.clone().unwrap_or_default();
    let object = format!("HTTPRoute {ns}/{name}");
    let problems = ctx.problems_of(&object);
    let generation = generation(&route.metadata);
    let key = ResourceKey::HttpRoute(RouteKey::new(&ns, &name));
    let served = ctx.plan.translation.resources.contains_key(&key);
    let rejected = problems.iter().find(|p| p.rejected.as_ref() == Some(&key));

    // References are resolved per route, not per parent: the same answer for every entry.
    let unresolved = problems.iter().find(|p| {
        p.field.contains("backendRef") && reason_of(p).is_some_and(|r| REF_REASONS.contains(&r))
    });
    let resolved = Condition::resolved_refs(unresolved.copied(), generation);

    let mut out = Vec::new();
    for (i, parent) in route.spec.parent_refs.iter().flatten().enumerate() {
        let group = parent.group.as_deref().unwrap_or(GATEWAY_GROUP);
        let kind = parent.kind.as_deref().unwrap_or("Gateway");
        let parent_key = (
            parent.namespace.clone().unwrap_or_else(|| ns.clone()),
            parent.name.clone(),
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
            parent_ref: serde_json::to_value(parent).unwrap_or_default(),
            controller_name: CONTROLLER,
            conditions: vec![accepted, resolved.clone()],
        });
    }
    out
}
