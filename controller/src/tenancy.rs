//! Tenant objects into the translation. A TenantRoute becomes one HTTPRoute the core already
//! knows how to translate (the data plane sees one route per TenantRoute, as written),
//! attached to the listeners its Tenant is granted and carrying only the hostnames the policy
//! engine says it holds. Who holds a contested hostname is decided by
//! `gatehouse_policy::resolve_conflicts` from the objects alone, so every controller replica
//! and every restart picks the same winner whatever order events arrived in.

use foldhash::HashSet;
use gatehouse_core::manifest::Object;
use gatehouse_crds::{Tenant, TenantCertificate, TenantRoute};
use gatehouse_policy::{
    ConflictReason, Conflicts, Kind, NamespaceTenant, Object as PolicyObject, ObjectRef, Objects,
    Snapshot, TenantUsage,
};
use gateway_api::experimental::httproutes::{HttpRoute, HttpRouteParentRefs, HttpRouteSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Names of the HTTPRoutes standing in for TenantRoutes start with this. A Kubernetes name
/// cannot contain `:`, so they never collide with a real HTTPRoute.
pub const ROUTE_PREFIX: &str = "tenantroute:";

/// The tenancy objects the watches hold, beside the core's objects.
#[derive(Clone, Debug, Default)]
pub struct TenancyObjects {
    /// The watch caches' own `Arc`s: at 10,000 routes or 1,000 Tenants a copy per pass
    /// costs milliseconds.
    pub tenants: Vec<Arc<Tenant>>,
    pub routes: Vec<Arc<TenantRoute>>,
    pub certificates: Vec<Arc<TenantCertificate>>,
}

#[derive(Clone, Debug, Default)]
pub struct Tenancy {
    /// HTTPRoutes to translate with the rest, one per TenantRoute that holds a hostname.
    pub routes: Vec<Arc<HttpRoute>>,
    /// Per TenantRoute (namespace, name): what the policy made of it. Persistent, so the
    /// pass keeps a copy for the next one in O(1).
    pub verdicts: imbl::OrdMap<(String, String), RouteVerdict>,
    /// Per Tenant name: usage and the hostnames its objects lost.
    pub tenants: BTreeMap<String, TenantVerdict>,
    /// Per TenantCertificate (namespace, name): what the policy made of it.
    pub certificates: imbl::OrdMap<(String, String), crate::tenant_certs::CertificateVerdict>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteVerdict {
    pub tenant: Option<String>,
    /// Why the whole route is not served (reason, message), if it is not.
    pub refused: Option<(&'static str, String)>,
    pub hostnames: Vec<HostnameVerdict>,
    /// The route decided (uid, generation): its status names them, so a verdict carries
    /// all that status reads of the route and statuses can follow the verdicts' changes.
    pub uid: Option<String>,
    pub generation: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostnameVerdict {
    pub hostname: String,
    pub held: bool,
    pub reason: &'static str,
    pub message: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantVerdict {
    pub usage: TenantUsage,
    /// Hostnames this tenant's objects wanted and lost: (hostname, reason, winner).
    pub lost: Vec<(String, String, String)>,
}

/// Whether an HTTPRoute is the stand-in of a TenantRoute.
pub fn is_stand_in(route: &HttpRoute) -> bool {
    route
        .metadata
        .name
        .as_deref()
        .is_some_and(|n| n.starts_with(ROUTE_PREFIX))
}

/// The HTTPRoute name standing in for a TenantRoute.
pub fn route_name(tenant_route: &str) -> String {
    format!("{ROUTE_PREFIX}{tenant_route}")
}

pub fn plan(objects: &[Object], tenancy: &TenancyObjects) -> Tenancy {
    plan_with(
        &snapshot(objects, tenancy),
        tenancy,
        &mut Memory::default(),
        None,
    )
}

/// The stand-ins of the last pass, by TenantRoute (namespace, name), with the
/// resourceVersion of the TenantRoute each was made from. An unchanged TenantRoute keeps
/// its stand-in, the very same `Arc`, so the translation knows it by its pointer and
/// nothing is copied.
#[derive(Default)]
struct StandIns(BTreeMap<(String, String), StandIn>);

/// A stand-in, with the resourceVersion of the TenantRoute it was made from.
type StandIn = (Option<String>, Arc<HttpRoute>);

/// What a pass remembers of the tenancy for the next: its stand-ins, and the verdicts
/// with the conflicts they came from, so that a pass whose policy changes only moved a
/// few route-like objects decides again only what those changes can reach.
#[derive(Default)]
pub struct Memory {
    stand_ins: StandIns,
    last: Option<Decided>,
}

struct Decided {
    conflicts: Conflicts,
    /// Per object that lost hostnames: (hostname, why, winner), sorted.
    lost: BTreeMap<ObjectRef, Vec<Loss>>,
    verdicts: imbl::OrdMap<(String, String), RouteVerdict>,
    certificates: imbl::OrdMap<(String, String), crate::tenant_certs::CertificateVerdict>,
}

type Loss = (String, ConflictReason, ObjectRef);

impl Memory {
    /// The next pass decides everything again (a new snapshot, a new leadership term).
    pub fn forget_verdicts(&mut self) {
        self.last = None;
    }
}

/// What the policy changes of a pass moved, when they moved only route-like objects
/// (routes, TenantCertificates, ListenerSets) and Gateways: the hostnames whose users
/// changed and the tenancy objects that changed. Anything else (a Tenant, a Namespace, a
/// ReferenceGrant, a rebuilt snapshot) leaves no `Touched` and the pass decides it all.
#[derive(Debug, Default)]
pub struct Touched {
    pub hostnames: BTreeSet<String>,
    pub objects: BTreeSet<ObjectRef>,
}

impl Touched {
    /// Applies `change` to `snapshot` ([`Snapshot::update`]) and notes what it moved;
    /// `Ok(false)`: applied, but of a kind whose effect on the verdicts this does not follow.
    pub fn update(
        &mut self,
        snapshot: &mut Snapshot,
        change: &gatehouse_policy::Change,
    ) -> Result<bool, gatehouse_policy::RebuildNeeded> {
        let object = match change {
            gatehouse_policy::Change::Applied(o) | gatehouse_policy::Change::Deleted(o) => o,
        };
        let followed = matches!(
            object.kind(),
            Kind::TenantRoute
                | Kind::TenantCertificate
                | Kind::HttpRoute
                | Kind::GrpcRoute
                | Kind::TlsRoute
                | Kind::ListenerSet
                | Kind::Gateway
                | Kind::GatewayClass
        );
        let object_ref = object.object_ref();
        self.hostnames
            .extend(snapshot.hostnames_used_by(&object_ref).iter().cloned());
        snapshot.update(change)?;
        if !followed {
            return Ok(false);
        }
        self.hostnames
            .extend(snapshot.hostnames_used_by(&object_ref).iter().cloned());
        if matches!(object.kind(), Kind::TenantRoute | Kind::TenantCertificate) {
            self.objects.insert(object_ref);
        }
        Ok(true)
    }
}

/// The policy's view of the world, built from every object. A caller that keeps it between
/// passes updates it per watched change instead ([`Snapshot::update`]).
pub fn snapshot(objects: &[Object], tenancy: &TenancyObjects) -> Snapshot {
    Snapshot::new(policy_objects(objects, tenancy))
}

/// Whether the policy reads objects of this kind (and so must hear of their changes).
pub fn is_policy_input(object: &PolicyObject) -> bool {
    match object {
        // Stand-ins are not hostname users of their own: their TenantRoute is.
        PolicyObject::HttpRoute(r) => !is_stand_in(r),
        PolicyObject::Namespace(_)
        | PolicyObject::Gateway(_)
        | PolicyObject::ReferenceGrant(_)
        | PolicyObject::Tenant(_)
        | PolicyObject::TenantRoute(_)
        | PolicyObject::TenantCertificate(_) => true,
        PolicyObject::GrpcRoute(_)
        | PolicyObject::TlsRoute(_)
        | PolicyObject::ListenerSet(_)
        | PolicyObject::GatewayClass(_) => false,
    }
}

/// [`plan`] against a snapshot of the same objects, with the memory of the last pass.
/// `touched`, when given, is everything the policy changes since that pass moved
/// ([`Touched::update`]), and only what it can reach is decided again; the result is the
/// same as deciding everything (tests hold it to that).
pub fn plan_with(
    snapshot: &Snapshot,
    tenancy: &TenancyObjects,
    memory: &mut Memory,
    touched: Option<&Touched>,
) -> Tenancy {
    let mut decided = match (memory.last.take(), touched) {
        (Some(mut last), Some(touched)) => {
            let affected = refresh_conflicts(&mut last, snapshot, touched);
            decide_again(
                &mut last,
                &mut memory.stand_ins,
                snapshot,
                tenancy,
                &affected,
            );
            last
        }
        _ => decide_all(&mut memory.stand_ins, snapshot, tenancy),
    };
    let out = Tenancy {
        routes: memory
            .stand_ins
            .0
            .values()
            .map(|(_, r)| r.clone())
            .collect(),
        verdicts: decided.verdicts.clone(),
        tenants: tenant_verdicts(snapshot, tenancy, &decided),
        certificates: decided.certificates.clone(),
    };
    decided.lost.retain(|_, l| !l.is_empty());
    memory.last = Some(decided);
    out
}

fn decide_all(stand_ins: &mut StandIns, snapshot: &Snapshot, tenancy: &TenancyObjects) -> Decided {
    let conflicts = Conflicts::resolve(snapshot);
    let mut lost: BTreeMap<ObjectRef, Vec<Loss>> = BTreeMap::new();
    for conflict in conflicts.iter() {
        for (loser, reason) in &conflict.losers {
            lost.entry(loser.clone()).or_default().push((
                conflict.hostname.clone(),
                *reason,
                conflict.winner.clone(),
            ));
        }
    }
    lost.values_mut().for_each(|l| l.sort());
    let mut previous = std::mem::take(stand_ins);
    let mut verdicts = imbl::OrdMap::new();
    for route in &tenancy.routes {
        let key = key_of(&route.metadata);
        let kept = previous.0.remove(&key);
        let (verdict, made) = decide_route(snapshot, route, &key, &lost, kept);
        if let Some(made) = made {
            stand_ins.0.insert(key.clone(), made);
        }
        verdicts.insert(key, verdict);
    }
    let mut certificates = imbl::OrdMap::new();
    for cert in &tenancy.certificates {
        let key = key_of(&cert.metadata);
        let verdict = decide_certificate(snapshot, cert, &key, &lost);
        certificates.insert(key, verdict);
    }
    Decided {
        conflicts,
        lost,
        verdicts,
        certificates,
    }
}

/// Decides the touched hostnames again; returns the tenancy objects whose losses changed,
/// with the touched ones.
fn refresh_conflicts(
    last: &mut Decided,
    snapshot: &Snapshot,
    touched: &Touched,
) -> BTreeSet<ObjectRef> {
    let mut affected = touched.objects.clone();
    for hostname in &touched.hostnames {
        let Some(replaced) = last.conflicts.refresh(snapshot, hostname) else {
            continue;
        };
        for (loser, _) in replaced.iter().flat_map(|c| &c.losers) {
            if let Some(losses) = last.lost.get_mut(loser) {
                losses.retain(|(h, _, _)| h != hostname);
            }
            affected.insert(loser.clone());
        }
        if let Some(conflict) = last.conflicts.get(hostname) {
            for (loser, reason) in &conflict.losers {
                let losses = last.lost.entry(loser.clone()).or_default();
                losses.push((hostname.clone(), *reason, conflict.winner.clone()));
                losses.sort();
                affected.insert(loser.clone());
            }
        }
    }
    affected
}

/// The verdicts (and stand-ins) of the `affected` tenancy objects decided again; the
/// others are as the last pass left them.
fn decide_again(
    last: &mut Decided,
    stand_ins: &mut StandIns,
    snapshot: &Snapshot,
    tenancy: &TenancyObjects,
    affected: &BTreeSet<ObjectRef>,
) {
    // Every cached object is looked up here each pass: hashed with foldhash, as SipHash
    // was a tenth of the controller's CPU at 10,000 routes.
    let wanted = |kind: Kind| -> HashSet<(&str, &str)> {
        affected
            .iter()
            .filter(|r| r.kind == kind)
            .map(|r| (r.namespace.as_deref().unwrap_or_default(), r.name.as_str()))
            .collect()
    };
    let mut routes = wanted(Kind::TenantRoute);
    for route in &tenancy.routes {
        if routes.is_empty() {
            break;
        }
        let (Some(ns), Some(name)) = (&route.metadata.namespace, &route.metadata.name) else {
            continue;
        };
        if !routes.remove(&(ns.as_str(), name.as_str())) {
            continue;
        }
        let key = (ns.clone(), name.clone());
        let kept = stand_ins.0.remove(&key);
        let (verdict, made) = decide_route(snapshot, route, &key, &last.lost, kept);
        if let Some(made) = made {
            stand_ins.0.insert(key.clone(), made);
        }
        last.verdicts.insert(key, verdict);
    }
    // Affected, yet not cached: gone.
    for (ns, name) in routes {
        let key = (ns.to_string(), name.to_string());
        stand_ins.0.remove(&key);
        last.verdicts.remove(&key);
    }
    let mut certificates = wanted(Kind::TenantCertificate);
    for cert in &tenancy.certificates {
        if certificates.is_empty() {
            break;
        }
        let (Some(ns), Some(name)) = (&cert.metadata.namespace, &cert.metadata.name) else {
            continue;
        };
        if !certificates.remove(&(ns.as_str(), name.as_str())) {
            continue;
        }
        let key = (ns.clone(), name.clone());
        let verdict = decide_certificate(snapshot, cert, &key, &last.lost);
        last.certificates.insert(key, verdict);
    }
    for (ns, name) in certificates {
        last.certificates
            .remove(&(ns.to_string(), name.to_string()));
    }
}

/// What an object lost, by its (namespace, name).
fn losses_of<'l>(
    lost: &'l BTreeMap<ObjectRef, Vec<Loss>>,
    kind: Kind,
    (ns, name): &(String, String),
) -> &'l [Loss] {
    let me = ObjectRef::new(kind, Some(ns), name);
    lost.get(&me).map(Vec::as_slice).unwrap_or_default()
}

/// One TenantRoute decided: its verdict, and its stand-in if the verdict lets it through
/// (`kept`, the last one, is reused if alike).
fn decide_route(
    snapshot: &Snapshot,
    route: &TenantRoute,
    key: &(String, String),
    lost: &BTreeMap<ObjectRef, Vec<Loss>>,
    kept: Option<StandIn>,
) -> (RouteVerdict, Option<StandIn>) {
    let losses = losses_of(lost, Kind::TenantRoute, key);
    let verdict = RouteVerdict {
        uid: route.metadata.uid.clone(),
        generation: route.metadata.generation.unwrap_or_default(),
        ..route_verdict(snapshot, route, &key.0, losses)
    };
    let made = match (&verdict.tenant, &verdict.refused) {
        (Some(tenant), None) => Some(stand_in(
            route,
            &key.0,
            &key.1,
            snapshot.tenant_by_name(tenant),
            &verdict,
            kept,
        )),
        _ => None,
    };
    (verdict, made)
}

fn decide_certificate(
    snapshot: &Snapshot,
    cert: &TenantCertificate,
    key: &(String, String),
    lost: &BTreeMap<ObjectRef, Vec<Loss>>,
) -> crate::tenant_certs::CertificateVerdict {
    let losses = losses_of(lost, Kind::TenantCertificate, key);
    crate::tenant_certs::verdict(snapshot, cert, &key.0, losses)
}

/// Per Tenant: usage, and the hostnames its routes and certificates lost.
fn tenant_verdicts(
    snapshot: &Snapshot,
    tenancy: &TenancyObjects,
    decided: &Decided,
) -> BTreeMap<String, TenantVerdict> {
    let mut out: BTreeMap<String, TenantVerdict> = tenancy
        .tenants
        .iter()
        .map(|tenant| {
            let name = tenant.metadata.name.clone().unwrap_or_default();
            let usage = snapshot.usage_of(&name).unwrap_or_default();
            (
                name,
                TenantVerdict {
                    usage,
                    lost: Vec::new(),
                },
            )
        })
        .collect();
    for (loser, losses) in &decided.lost {
        let key = (
            loser.namespace.clone().unwrap_or_default(),
            loser.name.clone(),
        );
        let tenant = match loser.kind {
            Kind::TenantRoute => decided.verdicts.get(&key).and_then(|v| v.tenant.as_ref()),
            Kind::TenantCertificate => decided
                .certificates
                .get(&key)
                .and_then(|v| v.tenant.as_ref()),
            _ => None,
        };
        if let Some(t) = tenant.and_then(|t| out.get_mut(t)) {
            for (hostname, reason, winner) in losses {
                t.lost
                    .push((hostname.clone(), reason.to_string(), winner.to_string()));
            }
        }
    }
    for t in out.values_mut() {
        t.lost.sort();
        t.lost.dedup();
    }
    out
}

fn route_verdict(
    snapshot: &Snapshot,
    route: &TenantRoute,
    ns: &str,
    losses: &[(String, ConflictReason, ObjectRef)],
) -> RouteVerdict {
    let tenant = match granted_tenant(snapshot, ns) {
        Ok(t) => t.metadata.name.clone().unwrap_or_default(),
        Err(refusal) => return refusal,
    };
    if route.spec.http.is_none() {
        return refused(
            Some(tenant),
            "UnsupportedValue",
            "spec.grpc: gRPC TenantRoutes are not served by this version yet".to_string(),
        );
    }
    let hostnames: Vec<HostnameVerdict> = route
        .spec
        .hostnames
        .iter()
        .map(|h| hostname_verdict(&h.as_str().to_ascii_lowercase(), losses))
        .collect();
    let refused_all = hostnames.iter().all(|h| !h.held).then(|| {
        (
            "HostnamesNotHeld",
            "every hostname of this route is held by another tenant".to_string(),
        )
    });
    RouteVerdict {
        tenant: Some(tenant),
        refused: refused_all,
        hostnames,
        ..RouteVerdict::default()
    }
}

/// The Tenant whose namespace `ns` is, if it is granted at least one listener; otherwise the
/// refusal an object in `ns` gets.
pub(crate) fn granted_tenant<'s>(
    snapshot: &'s Snapshot,
    ns: &str,
) -> Result<&'s Tenant, RouteVerdict> {
    let tenant = match snapshot.namespace_tenant(ns) {
        NamespaceTenant::One(t) => t,
        NamespaceTenant::None => {
            return Err(refused(
                None,
                "NoTenant",
                format!("namespace {ns} belongs to no Tenant"),
            ));
        }
        NamespaceTenant::Conflict(ts) => {
            return Err(refused(
                None,
                "TenantConflict",
                format!(
                    "namespace {ns} is selected by several Tenants ({}); an admin must resolve it",
                    ts.join(", ")
                ),
            ));
        }
    };
    let Some(spec) = snapshot.tenant_by_name(&tenant) else {
        return Err(refused(
            Some(tenant),
            "NoTenant",
            "the Tenant is gone".to_string(),
        ));
    };
    if spec.spec.listeners.is_empty() {
        return Err(refused(
            Some(tenant.clone()),
            "NoListeners",
            format!("Tenant {tenant} is granted no Gateway listeners (spec.listeners)"),
        ));
    }
    Ok(spec)
}

/// Whether an object keeps hostname `h` (lowercase) given the hostnames it lost.
pub(crate) fn hostname_verdict(
    h: &str,
    losses: &[(String, ConflictReason, ObjectRef)],
) -> HostnameVerdict {
    match losses.iter().find(|(lost, _, _)| *lost == h) {
        Some((_, reason, winner)) => HostnameVerdict {
            message: match reason {
                ConflictReason::ClaimedByOtherTenant => {
                    format!("hostname {h} is owned by {winner}")
                }
                _ => format!("hostname {h} was used first by {winner}"),
            },
            hostname: h.to_string(),
            held: false,
            reason: match reason {
                ConflictReason::ClaimedByOtherTenant => "ClaimedByOtherTenant",
                ConflictReason::FirstUsedByOther => "FirstUsedByOther",
                ConflictReason::ClaimOverlap => "ClaimOverlap",
            },
        },
        None => HostnameVerdict {
            hostname: h.to_string(),
            held: true,
            reason: "Accepted",
            message: String::new(),
        },
    }
}

fn refused(tenant: Option<String>, reason: &'static str, message: String) -> RouteVerdict {
    RouteVerdict {
        tenant,
        refused: Some((reason, message)),
        ..RouteVerdict::default()
    }
}

/// The HTTPRoute the core translates for a TenantRoute: its rules as written, the hostnames
/// it holds, and one parentRef per listener grant of its Tenant.
fn stand_in(
    route: &TenantRoute,
    ns: &str,
    name: &str,
    tenant: Option<&Tenant>,
    verdict: &RouteVerdict,
    previous: Option<StandIn>,
) -> StandIn {
    let parent_refs: Vec<HttpRouteParentRefs> = tenant
        .map(|t| t.spec.listeners.as_slice())
        .unwrap_or_default()
        .iter()
        .flat_map(|grant| {
            let sections: Vec<Option<String>> = if grant.section_names.is_empty() {
                vec![None]
            } else {
                grant.section_names.iter().cloned().map(Some).collect()
            };
            sections.into_iter().map(|section| HttpRouteParentRefs {
                group: Some("gateway.networking.k8s.io".to_string()),
                kind: Some("Gateway".to_string()),
                namespace: Some(grant.gateway_namespace.clone()),
                name: grant.gateway_name.clone(),
                section_name: section,
                port: None,
            })
        })
        .collect();
    let hostnames: Vec<String> = verdict
        .hostnames
        .iter()
        .filter(|h| h.held)
        .map(|h| h.hostname.clone())
        .collect();
    let version = route.metadata.resource_version.clone();
    if let Some((was, previous)) = previous {
        let meta = &previous.metadata;
        // The API server gives every write a new resourceVersion: the same one means the
        // same TenantRoute. Without one (tests, benchmarks), its parts are compared.
        let same_route = match (&was, &version) {
            (Some(a), Some(b)) if a == b => true,
            _ => {
                meta.generation == route.metadata.generation
                    && meta.uid == route.metadata.uid
                    && meta.creation_timestamp == route.metadata.creation_timestamp
                    && previous.spec.rules == route.spec.http
            }
        };
        if same_route
            && previous.spec.hostnames.as_ref() == Some(&hostnames)
            && previous.spec.parent_refs.as_ref() == Some(&parent_refs)
        {
            return (version, previous);
        }
    }
    let made = HttpRoute {
        metadata: ObjectMeta {
            namespace: Some(ns.to_string()),
            name: Some(route_name(name)),
            generation: route.metadata.generation,
            creation_timestamp: route.metadata.creation_timestamp.clone(),
            uid: route.metadata.uid.clone(),
            ..Default::default()
        },
        spec: HttpRouteSpec {
            hostnames: Some(hostnames),
            parent_refs: Some(parent_refs),
            rules: route.spec.http.clone(),
            ..Default::default()
        },
        status: None,
    };
    (version, Arc::new(made))
}

fn key_of(meta: &ObjectMeta) -> (String, String) {
    (
        meta.namespace.clone().unwrap_or_default(),
        meta.name.clone().unwrap_or_default(),
    )
}

fn policy_objects(objects: &[Object], tenancy: &TenancyObjects) -> Objects {
    let mut out = Objects::default();
    for o in objects {
        match o {
            Object::Namespace(n) => out.push(PolicyObject::Namespace((**n).clone())),
            // Stand-ins are not hostname users of their own: their TenantRoute is.
            Object::HttpRoute(r) if !is_stand_in(r) => {
                out.push(PolicyObject::HttpRoute((**r).clone()))
            }
            Object::Gateway(g) => out.push(PolicyObject::Gateway((**g).clone())),
            Object::ReferenceGrant(g) => out.push(PolicyObject::ReferenceGrant((**g).clone())),
            _ => {}
        }
    }
    for t in &tenancy.tenants {
        out.push(PolicyObject::Tenant((**t).clone()));
    }
    for r in &tenancy.routes {
        out.push(PolicyObject::TenantRoute((**r).clone()));
    }
    for c in &tenancy.certificates {
        out.push(PolicyObject::TenantCertificate((**c).clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::plan as make_plan;
    use crate::testing::*;
    use gatehouse_core::model::{ListenerKey, Resource, RouteKey};
    use std::collections::BTreeMap;

    fn tenant(name: &str, namespace: &str, domains: &str, first_come: bool) -> Arc<Tenant> {
        Arc::new(crate::testing::tenant(
            name, namespace, domains, "http", first_come,
        ))
    }

    fn tenant_route(ns: &str, name: &str, hostnames: &str, created: &str) -> TenantRoute {
        serde_yaml::from_str(&format!(
            "apiVersion: gatehouse.dev/v1alpha1
kind: TenantRoute
metadata: {{name: {name}, namespace: {ns}, generation: 4, creationTimestamp: '{created}'}}
spec:
  hostnames: {hostnames}
  http:
  - backendRefs: [{{name: web, port: 80}}]
"
        ))
        .unwrap()
    }

    fn namespace(name: &str) -> String {
        format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}\n")
    }

    /// The shared Gateway `infra/shared` (listener `http`, routes from all namespaces), the
    /// tenants' namespaces and a `web` Service in each.
    fn world() -> Vec<Object> {
        let all = "    allowedRoutes: {namespaces: {from: All}}\n";
        let gw = gateway("infra", "shared", 8080, "").replace(
            "  - {name: http, protocol: HTTP, port: 8080}\n",
            &format!("  - name: http\n    protocol: HTTP\n    port: 8080\n{all}"),
        );
        parse(&[
            CLASS,
            &gw,
            &namespace("infra"),
            &namespace("alice-web"),
            &namespace("bob-web"),
            &namespace("nobody"),
            &service("alice-web", "web"),
            &service("bob-web", "web"),
            &service("nobody", "web"),
        ])
    }

    fn served(
        objects: &[Object],
        tenancy: &Tenancy,
    ) -> BTreeMap<RouteKey, (Vec<String>, Vec<ListenerKey>)> {
        let mut all = objects.to_vec();
        all.extend(tenancy.routes.iter().cloned().map(Object::HttpRoute));
        let pool = "127.0.0.10-127.0.0.20".parse().unwrap();
        let plan = make_plan(&all, &pool, &BTreeMap::new());
        plan.translation
            .resources
            .into_iter()
            .map(|(_, r)| r)
            .filter_map(|r| match r {
                Resource::HttpRoute(r) => {
                    Some((r.key.clone(), (r.hostnames.clone(), r.parents.clone())))
                }
                _ => None,
            })
            .collect()
    }

    /// Verdicts and stand-ins.
    type Decided = (
        BTreeMap<(String, String), RouteVerdict>,
        Vec<Arc<HttpRoute>>,
    );

    /// What a pass decides about TenantRoutes, in a form two passes can be compared by.
    fn decided(
        pass: &mut crate::pass::Pass,
        objects: &[Object],
        tenancy_objects: &TenancyObjects,
        policy: crate::watch::PolicyChanges,
    ) -> Decided {
        let planned = pass.plan(crate::pass::PassInputs {
            policy,
            ..crate::pass::PassInputs::new(objects.to_vec(), tenancy_objects)
        });
        let routes = planned
            .objects
            .into_iter()
            .filter_map(|o| match o {
                Object::HttpRoute(r) => Some(r),
                _ => None,
            })
            .collect();
        (planned.tenancy.verdicts.into_iter().collect(), routes)
    }

    #[test]
    fn a_kept_snapshot_updated_per_change_decides_as_one_built_afresh() {
        use crate::watch::PolicyChanges::{Rebuild, Since};
        use gatehouse_policy::Change::{Applied, Deleted};
        let objects = world();
        let pool = || "127.0.0.10-127.0.0.20".parse().unwrap();
        let alice_first = tenant_route(
            "alice-web",
            "a",
            "[free.example.org]",
            "2026-02-01T00:00:01Z",
        );
        let bob_later = tenant_route("bob-web", "b", "[free.example.org]", "2026-02-01T00:00:05Z");
        let mut tenancy_objects = TenancyObjects {
            tenants: vec![
                tenant("alice", "alice-web", "['*.alice.example.com']", true),
                tenant("bob", "bob-web", "['*.bob.example.com']", true),
            ],
            routes: vec![alice_first.clone().into()],
            certificates: vec![],
        };
        let mut kept = crate::pass::Pass::new(pool());
        decided(&mut kept, &objects, &tenancy_objects, Rebuild);

        // bob's route arrives and loses the hostname to alice's older one...
        tenancy_objects.routes.push(bob_later.clone().into());
        let step = Since(vec![Applied(bob_later.clone().into())]);
        let incremental = decided(&mut kept, &objects, &tenancy_objects, step);
        let afresh = decided(
            &mut crate::pass::Pass::new(pool()),
            &objects,
            &tenancy_objects,
            Rebuild,
        );
        assert_eq!(incremental, afresh);
        let bob = &incremental.0[&("bob-web".to_string(), "b".to_string())];
        assert!(!bob.hostnames[0].held, "{bob:?}");

        // ...and wins it once alice's route is deleted.
        tenancy_objects
            .routes
            .retain(|r| r.metadata.name.as_deref() == Some("b"));
        let step = Since(vec![Deleted(alice_first.into())]);
        let incremental = decided(&mut kept, &objects, &tenancy_objects, step);
        let afresh = decided(
            &mut crate::pass::Pass::new(pool()),
            &objects,
            &tenancy_objects,
            Rebuild,
        );
        assert_eq!(incremental, afresh);
        let bob = &incremental.0[&("bob-web".to_string(), "b".to_string())];
        assert!(bob.hostnames[0].held, "{bob:?}");

        // A Tenant change cannot be applied in place: the pass rebuilds, and still agrees.
        tenancy_objects.tenants[1] = tenant("bob", "bob-web", "[free.example.org]", false);
        let step = Since(vec![Applied((*tenancy_objects.tenants[1]).clone().into())]);
        let incremental = decided(&mut kept, &objects, &tenancy_objects, step);
        let afresh = decided(
            &mut crate::pass::Pass::new(pool()),
            &objects,
            &tenancy_objects,
            Rebuild,
        );
        assert_eq!(incremental, afresh);
    }

    #[test]
    fn an_unchanged_tenant_route_keeps_its_stand_in_and_a_changed_one_gets_a_new_one() {
        let objects = world();
        let shop = |rules: &str| {
            let mut r = tenant_route(
                "alice-web",
                "shop",
                "[shop.example.com]",
                "2026-02-01T00:00:00Z",
            );
            r.spec.http = serde_yaml::from_str(rules).unwrap();
            r
        };
        let mut tenancy_objects = TenancyObjects {
            tenants: vec![tenant("alice", "alice-web", "[shop.example.com]", false)],
            routes: vec![shop("[{backendRefs: [{name: web, port: 80}]}]").into()],
            certificates: vec![],
        };
        let snapshot = |t: &TenancyObjects| snapshot(&objects, t);
        let mut memory = Memory::default();
        let first = plan_with(
            &snapshot(&tenancy_objects),
            &tenancy_objects,
            &mut memory,
            None,
        );
        let again = plan_with(
            &snapshot(&tenancy_objects),
            &tenancy_objects,
            &mut memory,
            None,
        );
        assert!(Arc::ptr_eq(&first.routes[0], &again.routes[0]));

        // New rules: a new stand-in carrying them.
        tenancy_objects.routes = vec![shop("[{backendRefs: [{name: web, port: 81}]}]").into()];
        let edited = plan_with(
            &snapshot(&tenancy_objects),
            &tenancy_objects,
            &mut memory,
            None,
        );
        assert!(!Arc::ptr_eq(&again.routes[0], &edited.routes[0]));
        assert_eq!(
            edited.routes[0].spec.rules,
            tenancy_objects.routes[0].spec.http
        );

        // Same route, but its Tenant is granted another listener: new parentRefs.
        tenancy_objects.tenants[0] = Arc::new(crate::testing::tenant(
            "alice",
            "alice-web",
            "[shop.example.com]",
            "https",
            false,
        ));
        let regranted = plan_with(
            &snapshot(&tenancy_objects),
            &tenancy_objects,
            &mut memory,
            None,
        );
        assert_ne!(
            edited.routes[0].spec.parent_refs,
            regranted.routes[0].spec.parent_refs
        );
        assert_eq!(
            *regranted.routes[0],
            *plan(&objects, &tenancy_objects).routes[0],
            "as made afresh"
        );
    }

    /// A small deterministic generator, so a failure names a step that replays.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self, below: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) as usize) % below
        }
    }

    /// Everything the tenancy decided, comparable between two passes.
    fn everything(t: &Tenancy) -> String {
        let mut routes: Vec<&HttpRoute> = t.routes.iter().map(|r| &**r).collect();
        routes.sort_by_key(|r| (r.metadata.namespace.clone(), r.metadata.name.clone()));
        format!(
            "{:#?}\n{:#?}\n{:#?}\n{routes:#?}",
            t.verdicts, t.tenants, t.certificates
        )
    }

    #[test]
    fn deciding_only_what_changes_reach_decides_as_deciding_everything() {
        use gatehouse_policy::Change::{Applied, Deleted};
        const HOSTNAMES: [&str; 6] = [
            "free.example.org",
            "shop.alice.example.com",
            "x.bob.example.com",
            "other.example.net",
            "*.alice.example.com",
            "y.bob.example.com",
        ];
        const NAMESPACES: [&str; 3] = ["alice-web", "bob-web", "nobody"];
        let objects = world();
        let mut tenancy_objects = TenancyObjects {
            tenants: vec![
                tenant("alice", "alice-web", "['*.alice.example.com']", true),
                tenant("bob", "bob-web", "['*.bob.example.com']", true),
            ],
            routes: vec![],
            certificates: vec![],
        };
        let mut memory = Memory::default();
        let mut kept = snapshot(&objects, &tenancy_objects);
        plan_with(&kept, &tenancy_objects, &mut memory, None);
        let mut rng = Lcg(0x7e4a);
        let mut incremental_passes = 0;
        for step in 0..300 {
            let mut changes = Vec::new();
            // A few changes per pass, as a burst of watch events brings them.
            for _ in 0..=rng.next(3) {
                let ns = NAMESPACES[rng.next(NAMESPACES.len())];
                let name = format!("o{}", rng.next(5));
                let mut hostnames = vec![HOSTNAMES[rng.next(HOSTNAMES.len())]];
                if rng.next(3) == 0 {
                    hostnames.push(HOSTNAMES[rng.next(HOSTNAMES.len())]);
                }
                let quoted: Vec<String> = hostnames.iter().map(|h| format!("'{h}'")).collect();
                let list = format!("[{}]", quoted.join(", "));
                let created = format!("2026-02-01T00:00:0{}Z", rng.next(4));
                let same = |m: &ObjectMeta| {
                    m.namespace.as_deref() == Some(ns) && m.name.as_deref() == Some(&name)
                };
                match rng.next(5) {
                    0 => {
                        let route = tenant_route(ns, &name, &list, &created);
                        tenancy_objects.routes.retain(|r| !same(&r.metadata));
                        tenancy_objects.routes.push(route.clone().into());
                        changes.push(Applied(route.into()));
                    }
                    1 => {
                        if let Some(i) = tenancy_objects
                            .routes
                            .iter()
                            .position(|r| same(&r.metadata))
                        {
                            let gone = tenancy_objects.routes.remove(i);
                            changes.push(Deleted((*gone).clone().into()));
                        }
                    }
                    2 => {
                        let cert: TenantCertificate = serde_yaml::from_str(&format!(
                            "apiVersion: gatehouse.dev/v1alpha1
kind: TenantCertificate
metadata: {{name: {name}, namespace: {ns}, creationTimestamp: '{created}'}}
spec: {{hostnames: {list}, secretName: tls}}
"
                        ))
                        .unwrap();
                        tenancy_objects.certificates.retain(|c| !same(&c.metadata));
                        tenancy_objects.certificates.push(Arc::new(cert.clone()));
                        changes.push(Applied(cert.into()));
                    }
                    3 => {
                        if let Some(i) = tenancy_objects
                            .certificates
                            .iter()
                            .position(|c| same(&c.metadata))
                        {
                            let gone = tenancy_objects.certificates.remove(i);
                            changes.push(Deleted((*gone).clone().into()));
                        }
                    }
                    _ => {
                        // Another tenant's route edited to a new hostname set.
                        let route = tenant_route(ns, &name, &list, "2026-02-01T00:00:02Z");
                        tenancy_objects.routes.retain(|r| !same(&r.metadata));
                        tenancy_objects.routes.push(route.clone().into());
                        changes.push(Applied(route.into()));
                    }
                }
            }
            let mut touched = Some(Touched::default());
            for change in &changes {
                if !touched.as_mut().unwrap().update(&mut kept, change).unwrap() {
                    touched = None;
                }
            }
            incremental_passes += usize::from(touched.is_some());
            let got = plan_with(&kept, &tenancy_objects, &mut memory, touched.as_ref());
            let want = plan(&objects, &tenancy_objects);
            assert_eq!(
                everything(&got),
                everything(&want),
                "step {step}, after {changes:?}"
            );
        }
        assert_eq!(
            incremental_passes, 300,
            "every pass took the incremental path"
        );
    }

    #[test]
    fn route_statuses_followed_through_changes_equal_statuses_computed_afresh() {
        use crate::status::{ProxyAcks, RouteStatusMemo};
        use crate::watch::PolicyChanges::Since;
        use gatehouse_core::scope::Scope;
        use gatehouse_policy::Change::{Applied, Deleted};
        const HOSTNAMES: [&str; 5] = [
            "shop.alice.example.com",
            "*.alice.example.com",
            "x.bob.example.com",
            "shop.example.org",
            "shop.carol.example.net",
        ];
        const NAMESPACES: [&str; 4] = ["alice-web", "bob-web", "nobody", "carol-web"];
        let mut objects = world();
        objects.extend(parse(&[&namespace("carol-web")]));
        let mut tenancy_objects = TenancyObjects {
            tenants: vec![
                tenant("alice", "alice-web", "['*.alice.example.com']", true),
                tenant(
                    "bob",
                    "bob-web",
                    "['*.bob.example.com', '*.example.org']",
                    true,
                ),
                // Granted a listener the Gateway does not have: accepted, never served.
                Arc::new(crate::testing::tenant(
                    "carol",
                    "carol-web",
                    "['*.carol.example.net']",
                    "nope",
                    true,
                )),
            ],
            routes: vec![],
            certificates: vec![],
        };
        let mut pass = crate::pass::Pass::new("127.0.0.10-127.0.0.20".parse().unwrap());
        let mut memo = RouteStatusMemo::default();
        let mut acked: Option<gatehouse_core::scope::Config> = None;
        let mut last_plan: Option<Arc<crate::pass::Planned>> = None;
        let mut rng = Lcg(0x5a7e);
        // How often each Programmed reason came up: the walk must reach them all.
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        for step in 0..250 {
            let mut changes = Vec::new();
            for _ in 0..=rng.next(2) {
                let ns = NAMESPACES[rng.next(NAMESPACES.len())];
                let name = format!("r{}", rng.next(4));
                let same = |m: &ObjectMeta| {
                    m.namespace.as_deref() == Some(ns) && m.name.as_deref() == Some(&name)
                };
                if rng.next(4) == 0 {
                    if let Some(i) = tenancy_objects
                        .routes
                        .iter()
                        .position(|r| same(&r.metadata))
                    {
                        let gone = tenancy_objects.routes.remove(i);
                        changes.push(Deleted((*gone).clone().into()));
                    }
                    continue;
                }
                // Sometimes a Service that is not there: ResolvedRefs and problems move.
                let backend = ["web", "web", "missing"][rng.next(3)];
                let route: TenantRoute = serde_yaml::from_str(&format!(
                    "apiVersion: gatehouse.dev/v1alpha1
kind: TenantRoute
metadata: {{name: {name}, namespace: {ns}, generation: {}, uid: u{step}, creationTimestamp: '2026-02-01T00:00:0{}Z'}}
spec:
  hostnames: ['{}']
  http:
  - backendRefs: [{{name: {backend}, port: 80}}]
",
                    1 + rng.next(3),
                    rng.next(4),
                    HOSTNAMES[rng.next(HOSTNAMES.len())],
                ))
                .unwrap();
                tenancy_objects.routes.retain(|r| !same(&r.metadata));
                tenancy_objects.routes.push(route.clone().into());
                changes.push(Applied(route.into()));
            }
            let planned = Arc::new(pass.plan(crate::pass::PassInputs {
                policy: Since(changes.clone()),
                ..crate::pass::PassInputs::new(objects.clone(), &tenancy_objects)
            }));
            let newest = planned.plan.translation.resources.clone();
            // The reporter may describe this plan or still the last one, while the proxy
            // (serving everything) acknowledged this plan, the last one, one before that,
            // or nothing yet; or no proxy is connected.
            for _ in 0..=rng.next(3) {
                let described = match (&last_plan, rng.next(3)) {
                    (Some(last), 0) => last.clone(),
                    _ => planned.clone(),
                };
                let ack = match rng.next(4) {
                    0 => Some(newest.clone()),
                    1 => last_plan
                        .as_ref()
                        .map(|p| p.plan.translation.resources.clone()),
                    2 => acked.clone(),
                    _ => None,
                };
                let proxies: Vec<ProxyAcks<'_>> = match rng.next(6) {
                    0 => vec![],
                    _ => vec![ProxyAcks {
                        name: "proxy".to_string(),
                        scope: &Scope::All,
                        acked: ack.as_ref(),
                        rejection: None,
                    }],
                };
                let followed = described.statuses(&tenancy_objects, &proxies, &mut memo);
                let afresh =
                    described.statuses(&tenancy_objects, &proxies, &mut RouteStatusMemo::default());
                assert_eq!(
                    followed.tenant_routes, afresh.tenant_routes,
                    "step {step}, after {changes:?}"
                );
                for s in afresh.tenant_routes.values() {
                    *reasons
                        .entry(s.status.conditions[2].reason.clone())
                        .or_default() += 1;
                }
                if ack.is_some() {
                    acked = ack;
                }
            }
            last_plan = Some(planned);
        }
        for reason in ["Programmed", "Pending", "NotAccepted", "NoListeners"] {
            assert!(reasons.contains_key(reason), "never {reason}: {reasons:?}");
        }
    }

    #[test]
    fn a_tenant_route_is_served_on_the_granted_listener() {
        let objects = world();
        let tenancy_objects = TenancyObjects {
            tenants: vec![tenant("alice", "alice-web", "[shop.example.com]", false)],
            routes: vec![
                tenant_route(
                    "alice-web",
                    "shop",
                    "[shop.example.com]",
                    "2026-02-01T00:00:00Z",
                )
                .into(),
            ],
            certificates: vec![],
        };
        let tenancy = plan(&objects, &tenancy_objects);
        let served = served(&objects, &tenancy);
        assert_eq!(
            served.get(&RouteKey::new("alice-web", "tenantroute:shop")),
            Some(&(
                vec!["shop.example.com".to_string()],
                vec![ListenerKey::new("infra", "shared", "http")]
            )),
            "{served:?}"
        );
        let verdict = &tenancy.verdicts[&("alice-web".to_string(), "shop".to_string())];
        assert_eq!(verdict.tenant.as_deref(), Some("alice"));
        assert!(verdict.refused.is_none());
        assert!(verdict.hostnames.iter().all(|h| h.held));
        assert_eq!(tenancy.tenants["alice"].usage.routes, 1);
    }

    #[test]
    fn a_hostname_claimed_by_another_tenant_is_not_served_and_names_the_owner() {
        let objects = world();
        let tenancy_objects = TenancyObjects {
            tenants: vec![
                tenant("alice", "alice-web", "[shop.example.com]", false),
                tenant("bob", "bob-web", "['*.bob.example.com']", true),
            ],
            routes: vec![
                tenant_route(
                    "bob-web",
                    "steal",
                    "[shop.example.com, www.bob.example.com]",
                    "2026-02-01T00:00:00Z",
                )
                .into(),
            ],
            certificates: vec![],
        };
        let tenancy = plan(&objects, &tenancy_objects);
        let verdict = &tenancy.verdicts[&("bob-web".to_string(), "steal".to_string())];
        let shop = &verdict.hostnames[0];
        assert!(!shop.held);
        assert_eq!(shop.reason, "ClaimedByOtherTenant");
        assert_eq!(
            shop.message,
            "hostname shop.example.com is owned by Tenant alice"
        );
        assert!(verdict.hostnames[1].held);
        let served = served(&objects, &tenancy);
        assert_eq!(
            served[&RouteKey::new("bob-web", "tenantroute:steal")].0,
            vec!["www.bob.example.com".to_string()],
            "only the held hostname reaches the proxy"
        );
        assert_eq!(
            tenancy.tenants["bob"].lost,
            vec![(
                "shop.example.com".to_string(),
                "ClaimedByOtherTenant".to_string(),
                "Tenant alice".to_string()
            )]
        );
    }

    #[test]
    fn first_come_hostnames_go_to_the_oldest_route_whatever_the_order() {
        let objects = world();
        let alice = tenant_route(
            "alice-web",
            "a",
            "[free.example.org]",
            "2026-02-01T00:00:05Z",
        );
        let bob = tenant_route("bob-web", "b", "[free.example.org]", "2026-02-01T00:00:01Z");
        for routes in [
            vec![alice.clone(), bob.clone()],
            vec![bob.clone(), alice.clone()],
        ] {
            let tenancy = plan(
                &objects,
                &TenancyObjects {
                    tenants: vec![
                        tenant("alice", "alice-web", "[]", true),
                        tenant("bob", "bob-web", "[]", true),
                    ],
                    routes: routes.into_iter().map(Arc::new).collect(),
                    certificates: vec![],
                },
            );
            let a = &tenancy.verdicts[&("alice-web".to_string(), "a".to_string())];
            let b = &tenancy.verdicts[&("bob-web".to_string(), "b".to_string())];
            assert!(b.refused.is_none() && b.hostnames[0].held, "{b:?}");
            assert_eq!(a.refused.as_ref().map(|r| r.0), Some("HostnamesNotHeld"));
            assert_eq!(
                a.hostnames[0].message,
                "hostname free.example.org was used first by TenantRoute bob-web/b"
            );
            assert_eq!(tenancy.routes.len(), 1);
        }
    }

    #[test]
    fn same_second_claims_are_decided_by_namespace_and_name() {
        let objects = world();
        let same = "2026-02-01T00:00:01Z";
        let tenancy = plan(
            &objects,
            &TenancyObjects {
                tenants: vec![
                    tenant("alice", "alice-web", "[]", true),
                    tenant("bob", "bob-web", "[]", true),
                ],
                routes: vec![
                    tenant_route("bob-web", "b", "[race.example.org]", same).into(),
                    tenant_route("alice-web", "a", "[race.example.org]", same).into(),
                ],
                certificates: vec![],
            },
        );
        let a = &tenancy.verdicts[&("alice-web".to_string(), "a".to_string())];
        let b = &tenancy.verdicts[&("bob-web".to_string(), "b".to_string())];
        assert!(a.hostnames[0].held, "alice-web/a sorts first");
        assert!(!b.hostnames[0].held);
    }

    #[test]
    fn a_route_outside_every_tenant_is_refused() {
        let objects = world();
        let tenancy = plan(
            &objects,
            &TenancyObjects {
                tenants: vec![tenant("alice", "alice-web", "[shop.example.com]", false)],
                routes: vec![
                    tenant_route("nobody", "r", "[x.example.com]", "2026-02-01T00:00:00Z").into(),
                ],
                certificates: vec![],
            },
        );
        let v = &tenancy.verdicts[&("nobody".to_string(), "r".to_string())];
        assert_eq!(v.refused.as_ref().map(|r| r.0), Some("NoTenant"));
        assert!(tenancy.routes.is_empty());
        assert!(
            !served(&objects, &tenancy)
                .keys()
                .any(|k| k.0.starts_with("nobody/"))
        );
    }
}
