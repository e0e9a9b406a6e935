//! TenantRoute and Tenant status, from the tenancy verdicts, the translation of each
//! TenantRoute's stand-in HTTPRoute and what the proxies acknowledged.

use super::{Condition, Named, ProgrammedRoutes, generation, message_of, reason_of};
use crate::plan::Plan;
use crate::tenancy::{ROUTE_PREFIX, RouteVerdict, Tenancy, TenancyObjects};
use gatehouse_core::model::{ResourceKey, RouteKey};
use gatehouse_core::scope::Config;
use gatehouse_core::translate::Problem;
use gatehouse_crds::{HostnameConflict, HostnameStatus, TenantUsage as Usage};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

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

/// TenantRoute statuses by (namespace, name). Persistent: the next ones are the last ones
/// patched, and the writer finds what to write by a diff that skips the shared part.
pub type RouteStatuses = imbl::OrdMap<(String, String), Named<TenantRouteStatus>>;

/// Every TenantRoute's status, from scratch.
pub fn route_statuses(
    tenancy: &Tenancy,
    plan: &Plan,
    programmed_routes: &ProgrammedRoutes,
) -> RouteStatuses {
    RouteStatusMemo::default().statuses(tenancy, plan, programmed_routes)
}

/// What the last TenantRoute statuses were computed from. A TenantRoute's status reads its
/// verdict, whether its stand-in is served, whether that is programmed, and the stand-in's
/// problems; each of these is persistent or small, so what differs since the last time is
/// found in O(the change), and only those routes are computed again. At 10,000 routes
/// computing all of them took most of a status computation.
#[derive(Default)]
pub struct RouteStatusMemo {
    last: Option<RouteInputs>,
}

struct RouteInputs {
    verdicts: imbl::OrdMap<(String, String), RouteVerdict>,
    resources: Config,
    programmed: ProgrammedRoutes,
    problems: StandInProblems,
    statuses: RouteStatuses,
}

/// Problems by the stand-in they are about (`ns/tenantroute:name`); usually none.
type StandInProblems = BTreeMap<String, Vec<Problem>>;

impl RouteStatusMemo {
    pub fn statuses(
        &mut self,
        tenancy: &Tenancy,
        plan: &Plan,
        programmed: &ProgrammedRoutes,
    ) -> RouteStatuses {
        let problems = stand_in_problems(plan);
        let resources = &plan.translation.resources;
        let status = |key: &(String, String), verdict: &RouteVerdict| {
            route_status(key, verdict, resources, programmed, &problems)
        };
        let patched = self.last.take().and_then(|last| {
            let keys = changed_routes(&last, tenancy, resources, programmed, &problems)?;
            let mut statuses = last.statuses;
            for key in keys {
                match tenancy.verdicts.get(&key) {
                    Some(verdict) => {
                        let s = status(&key, verdict);
                        statuses.insert(key, s);
                    }
                    None => {
                        statuses.remove(&key);
                    }
                }
            }
            Some(statuses)
        });
        let statuses = patched.unwrap_or_else(|| {
            tenancy
                .verdicts
                .iter()
                .map(|(key, verdict)| (key.clone(), status(key, verdict)))
                .collect()
        });
        self.last = Some(RouteInputs {
            verdicts: tenancy.verdicts.clone(),
            resources: resources.clone(),
            programmed: programmed.clone(),
            problems,
            statuses: statuses.clone(),
        });
        statuses
    }
}

fn stand_in_problems(plan: &Plan) -> StandInProblems {
    let mut out: StandInProblems = BTreeMap::new();
    for p in &plan.translation.problems {
        if let Some(route) = p.object.strip_prefix("HTTPRoute ")
            && route
                .split_once('/')
                .is_some_and(|(_, name)| name.starts_with(ROUTE_PREFIX))
        {
            out.entry(route.to_string()).or_default().push(p.clone());
        }
    }
    out
}

/// The TenantRoute a stand-in's key (`ns/tenantroute:name`) stands for.
fn tenant_route_of(stand_in: &str) -> Option<(String, String)> {
    let (ns, name) = stand_in.split_once('/')?;
    Some((ns.to_string(), name.strip_prefix(ROUTE_PREFIX)?.to_string()))
}

/// The TenantRoutes whose status inputs differ from `last`'s; `None` when that cannot be
/// told apart cheaply (how programming was worked out changed).
fn changed_routes(
    last: &RouteInputs,
    tenancy: &Tenancy,
    resources: &Config,
    programmed: &ProgrammedRoutes,
    problems: &StandInProblems,
) -> Option<BTreeSet<(String, String)>> {
    use imbl::ordmap::DiffItem;
    let mut out = BTreeSet::new();
    for item in last.verdicts.diff(&tenancy.verdicts) {
        let (DiffItem::Add(k, _) | DiffItem::Update { new: (k, _), .. } | DiffItem::Remove(k, _)) =
            item;
        out.insert(k.clone());
    }
    let stand_ins = |k: &RouteKey| tenant_route_of(&k.0);
    for item in last.resources.diff(resources) {
        let (DiffItem::Add(k, _) | DiffItem::Update { new: (k, _), .. } | DiffItem::Remove(k, _)) =
            item;
        if let ResourceKey::HttpRoute(k) = k {
            out.extend(stand_ins(k));
        }
    }
    let moved: Vec<&RouteKey> = match (&last.programmed, programmed) {
        (ProgrammedRoutes::AllServedBut(a), ProgrammedRoutes::AllServedBut(b))
        | (ProgrammedRoutes::Only(a), ProgrammedRoutes::Only(b)) => {
            a.symmetric_difference(b).collect()
        }
        _ => return None,
    };
    out.extend(moved.into_iter().filter_map(stand_ins));
    let keys: BTreeSet<&String> = last.problems.keys().chain(problems.keys()).collect();
    for k in keys {
        if last.problems.get(k) != problems.get(k) {
            out.extend(tenant_route_of(k));
        }
    }
    Some(out)
}

fn route_status(
    (ns, name): &(String, String),
    verdict: &RouteVerdict,
    resources: &Config,
    programmed_routes: &ProgrammedRoutes,
    problems_of: &StandInProblems,
) -> Named<TenantRouteStatus> {
    let generation = verdict.generation;
    let key = RouteKey(format!("{ns}/{ROUTE_PREFIX}{name}"));
    let served = resources.contains_key(&ResourceKey::HttpRoute(key.clone()));
    let programmed = served && programmed_routes.contains(&key);
    let problems: &[Problem] = problems_of
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
    let unresolved = problems.iter().find(|p| {
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
            .map(message_of)
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
    Named {
        namespace: Some(ns.clone()),
        name: name.clone(),
        uid: verdict.uid.clone(),
        status: TenantRouteStatus {
            observed_generation: generation,
            hostnames,
            conditions: vec![accepted, resolved, programmed_cond],
        },
    }
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
