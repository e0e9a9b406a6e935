//! TenantRoute and Tenant status, from the tenancy verdicts, the translation of each
//! TenantRoute's stand-in HTTPRoute and what the proxies acknowledged.

use super::{Condition, Named, generation, message_of, reason_of};
use crate::plan::Plan;
use crate::tenancy::{ROUTE_PREFIX, Tenancy, TenancyObjects};
use gatehouse_core::model::{ResourceKey, RouteKey};
use gatehouse_core::translate::Problem;
use gatehouse_crds::{HostnameConflict, HostnameStatus, TenantUsage as Usage};
use serde::Serialize;
use std::collections::HashMap;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantRouteStatus {
    pub observed_generation: i64,
    pub hostnames: Vec<HostnameStatus>,
    pub conditions: Vec<Condition>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    pub observed_generation: i64,
    pub usage: Usage,
    pub conflicts: Vec<HostnameConflict>,
    pub conditions: Vec<Condition>,
}

pub fn route_statuses(
    objects: &TenancyObjects,
    tenancy: &Tenancy,
    plan: &Plan,
    programmed_routes: &super::ProgrammedRoutes,
) -> Vec<Named<TenantRouteStatus>> {
    // Problems by the stand-in they are about (`ns/tenantroute:name`); usually none.
    let mut problems_of: HashMap<&str, Vec<&Problem>> = HashMap::new();
    for p in &plan.translation.problems {
        if let Some(route) = p.object.strip_prefix("HTTPRoute ") {
            problems_of.entry(route).or_default().push(p);
        }
    }
    let resources = &plan.translation.resources;
    let mut out = Vec::with_capacity(objects.routes.len());
    // One key, refilled per route: at 10,000 routes allocations are most of the cost.
    let mut verdict_key = (String::new(), String::new());
    for route in &objects.routes {
        let ns = route.metadata.namespace.as_deref().unwrap_or_default();
        let name = route.metadata.name.as_deref().unwrap_or_default();
        verdict_key.0.clear();
        verdict_key.0.push_str(ns);
        verdict_key.1.clear();
        verdict_key.1.push_str(name);
        let Some(verdict) = tenancy.verdicts.get(&verdict_key) else {
            continue;
        };
        let generation = generation(&route.metadata);
        let key = RouteKey(format!("{ns}/{ROUTE_PREFIX}{name}"));
        let served = resources.contains_key(&ResourceKey::HttpRoute(key.clone()));
        let programmed = served && programmed_routes.contains(&key);
        let problems: &[&Problem] = problems_of
            .get(key.0.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();

        let hostnames: Vec<HostnameStatus> = verdict
            .hostnames
            .iter()
            .map(|h| HostnameStatus {
                hostname: h.hostname.clone(),
                accepted: h.held,
                programmed: h.held && programmed,
                reason: h.reason.to_string(),
                message: h.message.clone(),
            })
            .collect();
        let held = hostnames.iter().filter(|h| h.accepted).count();
        let accepted = match &verdict.refused {
            Some((reason, message)) => {
                Condition::new("Accepted", false, reason, message.clone(), generation)
            }
            None if held < hostnames.len() => Condition::new(
                "Accepted",
                false,
                "HostnameConflict",
                format!(
                    "{held} of {} hostnames held; see status.hostnames",
                    hostnames.len()
                ),
                generation,
            ),
            None => Condition::new("Accepted", true, "Accepted", "", generation),
        };
        let unresolved = problems.iter().copied().find(|p| {
            matches!(
                reason_of(p),
                Some("BackendNotFound" | "InvalidKind" | "RefNotPermitted" | "UnsupportedProtocol")
            )
        });
        let resolved = Condition::resolved_refs(unresolved, generation);
        let programmed_cond = if programmed {
            Condition::new("Programmed", true, "Programmed", "", generation)
        } else if verdict.refused.is_some() {
            Condition::new(
                "Programmed",
                false,
                "NotAccepted",
                "the route is not accepted",
                generation,
            )
        } else if !served {
            let why = problems
                .iter()
                .map(|p| message_of(p))
                .next()
                .unwrap_or_else(|| "no granted listener accepts the route".to_string());
            Condition::new("Programmed", false, "NoListeners", why, generation)
        } else {
            Condition::new(
                "Programmed",
                false,
                "Pending",
                "waiting for every proxy to acknowledge the route",
                generation,
            )
        };
        out.push(Named::new(
            &route.metadata,
            TenantRouteStatus {
                observed_generation: generation,
                hostnames,
                conditions: vec![accepted, resolved, programmed_cond],
            },
        ));
    }
    out
}

pub fn tenant_statuses(objects: &TenancyObjects, tenancy: &Tenancy) -> Vec<Named<TenantStatus>> {
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    objects
        .tenants
        .iter()
        .filter_map(|t| {
            let verdict = tenancy.tenants.get(t.metadata.name.as_deref()?)?;
            let generation = generation(&t.metadata);
            let conflicts: Vec<HostnameConflict> = verdict
                .lost
                .iter()
                .map(|(hostname, reason, winner)| HostnameConflict {
                    hostname: hostname.clone(),
                    reason: reason.clone(),
                    winner: winner.clone(),
                })
                .collect();
            let ready = if conflicts.is_empty() {
                Condition::new("Ready", true, "Ready", "", generation)
            } else {
                Condition::new(
                    "Ready",
                    false,
                    "HostnameConflicts",
                    format!(
                        "{} hostnames wanted by this tenant are held by others; see status.conflicts",
                        conflicts.len()
                    ),
                    generation,
                )
            };
            Some(Named::new(
                &t.metadata,
                TenantStatus {
                    observed_generation: generation,
                    usage: Usage {
                        routes: count(verdict.usage.routes),
                        hostnames: count(verdict.usage.hostnames),
                        certificates: count(verdict.usage.certificates),
                    },
                    conflicts,
                    conditions: vec![ready],
                },
            ))
        })
        .collect()
}
