//! Gateway status: addresses, Accepted/Programmed, and per listener what it admits, how
//! many routes attached and why it is or is not served.

use super::{Condition, Ctx, generation, message_of, reason_of};
use crate::addresses::Assignment;
use crate::plan::gateway_key;
use gatehouse_core::model::{ListenerKey, Resource, ResourceKey};
use gatehouse_core::translate::Problem;
use gateway_api::experimental::gateways::{Gateway, GatewayListeners};
use serde::Serialize;

const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayStatus {
    pub addresses: Vec<GatewayAddress>,
    pub attached_listener_sets: i32,
    pub conditions: Vec<Condition>,
    pub listeners: Vec<ListenerStatus>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GatewayAddress {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerStatus {
    pub name: String,
    pub supported_kinds: Vec<RouteKind>,
    pub attached_routes: i32,
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RouteKind {
    pub group: &'static str,
    pub kind: &'static str,
}

pub(super) fn status(ctx: &Ctx<'_>, gw: &Gateway, attached_sets: i32) -> Option<GatewayStatus> {
    let key = gateway_key(gw);
    if !ctx.gateways.contains_key(&key) {
        return None;
    }
    let generation = generation(&gw.metadata);
    let assignment = ctx.plan.addresses.get(&key)?;
    let object = format!("Gateway {}/{}", key.0, key.1);
    let problems = ctx.problems_of(&object);
    let programmed = ctx.programmed.contains(&key);

    let listeners: Vec<ListenerStatus> = gw
        .spec
        .listeners
        .iter()
        .enumerate()
        .map(|(i, spec)| {
            let at = format!("spec.listeners[{i}]");
            let lkey = ListenerKey::new(&key.0, &key.1, &spec.name);
            listener(
                ctx, spec, &at, problems, &lkey, assignment, programmed, generation,
            )
        })
        .collect();

    let invalid = listeners
        .iter()
        .filter(|l| {
            l.conditions
                .iter()
                .any(|c| c.kind == "Accepted" && !c.is_true())
        })
        .count();
    let parameters = crate::plan::parameters_ref(gw);
    let accepted = match assignment {
        _ if parameters.is_some() => Condition::new(
            "Accepted",
            false,
            "InvalidParameters",
            format!(
                "spec.infrastructure.parametersRef: Gatehouse takes no parameters ({} given)",
                parameters.as_deref().unwrap_or_default()
            ),
            generation,
        ),
        Assignment::InvalidParameters(reason) => Condition::new(
            "Accepted",
            false,
            "InvalidParameters",
            reason.clone(),
            generation,
        ),
        Assignment::Unsupported { field, reason } => Condition::new(
            "Accepted",
            false,
            "UnsupportedAddress",
            format!("{field}: {reason}"),
            generation,
        ),
        _ if invalid > 0 => Condition::new(
            "Accepted",
            invalid < listeners.len(),
            "ListenersNotValid",
            format!("{invalid} of {} listeners are not valid", listeners.len()),
            generation,
        ),
        _ => Condition::new("Accepted", true, "Accepted", "", generation),
    };
    let programmed_cond = match assignment {
        _ if parameters.is_some() => Condition::new(
            "Programmed",
            false,
            "Invalid",
            "the Gateway is not accepted",
            generation,
        ),
        Assignment::Assigned(_) if programmed => {
            Condition::new("Programmed", true, "Programmed", "", generation)
        }
        Assignment::Assigned(_) => Condition::new(
            "Programmed",
            false,
            "Pending",
            ctx.waiting.get(&key).map_or(
                "waiting for every proxy to acknowledge the configuration",
                String::as_str,
            ),
            generation,
        ),
        Assignment::NotUsable(ip) => Condition::new(
            "Programmed",
            false,
            "AddressNotUsable",
            format!("spec.addresses[0]: {ip} is not in the address pool"),
            generation,
        ),
        Assignment::Exhausted => Condition::new(
            "Programmed",
            false,
            "AddressNotAssigned",
            "the address pool is exhausted",
            generation,
        ),
        Assignment::Awaiting(reason) => Condition::new(
            "Programmed",
            false,
            "AddressNotAssigned",
            reason.clone(),
            generation,
        ),
        Assignment::Unsupported { .. } | Assignment::InvalidParameters(_) => Condition::new(
            "Programmed",
            false,
            "Invalid",
            "the Gateway is not accepted",
            generation,
        ),
    };
    Some(GatewayStatus {
        addresses: assignment
            .address()
            .map(|ip| GatewayAddress {
                kind: "IPAddress",
                value: ip.to_string(),
            })
            .into_iter()
            .collect(),
        attached_listener_sets: attached_sets,
        conditions: vec![accepted, programmed_cond],
        listeners,
    })
}

#[allow(clippy::too_many_arguments)]
pub(super) fn listener(
    ctx: &Ctx<'_>,
    spec: &GatewayListeners,
    at: &str,
    problems: &[&Problem],
    key: &ListenerKey,
    assignment: &Assignment,
    gateway_programmed: bool,
    generation: i64,
) -> ListenerStatus {
    // The owner's problems about this listener (its own field or one below it).
    let problems: Vec<&Problem> = problems
        .iter()
        .copied()
        .filter(|p| p.field == at || p.field.starts_with(&format!("{at}.")))
        .collect();
    let served = ctx
        .plan
        .translation
        .resources
        .contains_key(&ResourceKey::Listener(key.clone()));
    let at_fields = [
        at.to_string(),
        format!("{at}.protocol"),
        format!("{at}.port"),
    ];
    // The core drops a listener for problems on these fields; others (a bad certificate
    // ref, an unsupported route kind) leave it served.
    let fatal = problems.iter().find(|p| at_fields.contains(&p.field));
    let assigned = matches!(assignment, Assignment::Assigned(_));

    let unresolved = problems.iter().find(|p| {
        matches!(
            reason_of(p),
            Some("InvalidCertificateRef" | "RefNotPermitted" | "InvalidRouteKinds")
        )
    });
    // A TLS listener without a usable certificate is valid but cannot serve its clients.
    let certificate_missing =
        !served && unresolved.is_some_and(|p| p.field.contains(".certificateRefs"));
    let accepted = fatal.is_none() && (served || !assigned || certificate_missing);

    let conflict =
        fatal.filter(|p| matches!(reason_of(p), Some("HostnameConflict" | "ProtocolConflict")));
    let conflicted = match conflict {
        Some(p) => Condition::new(
            "Conflicted",
            true,
            reason_of(p).unwrap_or_default(),
            message_of(p),
            generation,
        ),
        None => Condition::new("Conflicted", false, "NoConflicts", "", generation),
    };

    let accepted_cond = match fatal {
        None if accepted => Condition::new("Accepted", true, "Accepted", "", generation),
        None => Condition::new(
            "Accepted",
            false,
            "UnsupportedValue",
            "not served",
            generation,
        ),
        Some(p) => {
            let reason = reason_of(p)
                .filter(|r| {
                    matches!(
                        *r,
                        "UnsupportedProtocol"
                            | "PortUnavailable"
                            | "HostnameConflict"
                            | "ProtocolConflict"
                    )
                })
                .unwrap_or("UnsupportedValue");
            Condition::new("Accepted", false, reason, message_of(p), generation)
        }
    };

    let resolved = Condition::resolved_refs(unresolved.copied(), generation);

    let programmed = if let Some(p) = conflict {
        // A conflicted listener says why in every condition, as the spec asks.
        Condition::new(
            "Programmed",
            false,
            reason_of(p).unwrap_or("Invalid"),
            message_of(p),
            generation,
        )
    } else if !accepted {
        Condition::new(
            "Programmed",
            false,
            "Invalid",
            "the listener is not accepted",
            generation,
        )
    } else if certificate_missing {
        Condition::new(
            "Programmed",
            false,
            "Invalid",
            "no usable certificate: see ResolvedRefs",
            generation,
        )
    } else if assigned && gateway_programmed {
        Condition::new("Programmed", true, "Programmed", "", generation)
    } else {
        Condition::new("Programmed", false, "Pending", "", generation)
    };

    let attached = ctx
        .plan
        .translation
        .resources
        .values()
        .filter(|r| matches!(r, Resource::HttpRoute(route) if route.parents.contains(key)))
        .count();
    ListenerStatus {
        name: spec.name.clone(),
        supported_kinds: supported_kinds(spec),
        attached_routes: i32::try_from(attached).unwrap_or(i32::MAX),
        conditions: vec![accepted_cond, programmed, resolved, conflicted],
    }
}

fn supported_kinds(spec: &GatewayListeners) -> Vec<RouteKind> {
    if !matches!(spec.protocol.as_str(), "HTTP" | "HTTPS") {
        return Vec::new();
    }
    let kinds = spec
        .allowed_routes
        .as_ref()
        .and_then(|a| a.kinds.as_deref())
        .unwrap_or_default();
    let http = kinds.is_empty()
        || kinds.iter().any(|k| {
            k.kind == "HTTPRoute" && k.group.as_deref().is_none_or(|g| g == GATEWAY_GROUP)
        });
    if http {
        vec![RouteKind {
            group: GATEWAY_GROUP,
            kind: "HTTPRoute",
        }]
    } else {
        Vec::new()
    }
}
