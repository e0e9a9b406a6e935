//! Turns computed status into the writes the [`WriteQueue`] sends: server-side apply on the
//! status subresource, off the reconcile path.
//!
//! Two things keep writes from feeding back into endless reconciles: a condition keeps its
//! `lastTransitionTime` while its status is unchanged, and a status identical to the one
//! last accepted for the same object (by uid) is not queued again.

use crate::status::{Named, Statuses};
use crate::tenancy::TenancyObjects;
use crate::write_queue::{Desired, Target, WriteQueue};
use foldhash::HashMap;
use gatehouse_core::manifest::Object;
use gatehouse_crds::{Tenant, TenantCertificate, TenantRoute};
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;

pub use crate::write_queue::{FIELD_MANAGER, WriteError};

pub struct StatusWriter {
    queue: WriteQueue,
    /// What the last call submitted: a status equal to its entry here was submitted
    /// already, so it is neither serialised nor compared again.
    previous: Statuses,
}

impl StatusWriter {
    pub fn new(queue: WriteQueue) -> Self {
        StatusWriter {
            queue,
            previous: Statuses::default(),
        }
    }

    /// Forgets what was written and drops what is queued, so the next write sends
    /// everything again (another replica may have written in between).
    pub fn forget(&mut self) {
        self.queue.forget();
        self.previous = Statuses::default();
    }

    /// Queues what changed and returns at once; returns how many statuses were queued.
    pub fn write(
        &mut self,
        statuses: Statuses,
        objects: &[Object],
        tenancy: &TenancyObjects,
    ) -> usize {
        let now = Timestamp::now().to_string();
        let desired = changed(&statuses, &self.previous);
        self.previous = statuses;
        let mut cached = Cached::new(objects, tenancy);
        self.queue.submit(desired, |d, written| {
            // What the object carries now is read for the first write after a start (its
            // transition times) and for routes (other controllers' parents); otherwise the
            // last write says it, and indexing every cached object per write is not needed.
            let current = if written.is_none() || carries_others_parents(d.target.kind) {
                cached.status(&d.target, &d.id.1)
            } else {
                Value::Null
            };
            stamped(d, written.unwrap_or(&current), &current, &now)
        })
    }
}

/// The statuses that differ from `previous`, as the JSON a write would carry before
/// timestamps. Serialising is most of a pass's status cost at 10,000 routes, so an
/// unchanged status is skipped by comparing the typed values.
pub fn changed(statuses: &Statuses, previous: &Statuses) -> Vec<Desired> {
    let mut out = Vec::new();
    push(
        &mut out,
        "GatewayClass",
        &statuses.classes,
        &previous.classes,
    );
    push(&mut out, "Gateway", &statuses.gateways, &previous.gateways);
    push(
        &mut out,
        "ListenerSet",
        &statuses.listener_sets,
        &previous.listener_sets,
    );
    push(&mut out, "HTTPRoute", &statuses.routes, &previous.routes);
    push(
        &mut out,
        "GRPCRoute",
        &statuses.grpc_routes,
        &previous.grpc_routes,
    );
    push(
        &mut out,
        "TLSRoute",
        &statuses.tls_routes,
        &previous.tls_routes,
    );
    // Persistent on both sides: the diff skips what they share, so at 10,000 routes one
    // changed status costs about one comparison.
    for item in previous.tenant_routes.diff(&statuses.tenant_routes) {
        if let imbl::ordmap::DiffItem::Add(_, n)
        | imbl::ordmap::DiffItem::Update { new: (_, n), .. } = item
        {
            out.push(desired("TenantRoute", n));
        }
    }
    push(&mut out, "Tenant", &statuses.tenants, &previous.tenants);
    push(
        &mut out,
        "TenantCertificate",
        &statuses.tenant_certificates,
        &previous.tenant_certificates,
    );
    out
}

fn id_of<T>(n: &Named<T>) -> &str {
    n.uid.as_deref().unwrap_or(&n.name)
}

fn push<T: Serialize + PartialEq>(
    out: &mut Vec<Desired>,
    kind: &'static str,
    statuses: &[Named<T>],
    previous: &[Named<T>],
) {
    let previous: HashMap<(Option<&str>, &str), &Named<T>> = previous
        .iter()
        .map(|n| ((n.namespace.as_deref(), id_of(n)), n))
        .collect();
    let changed = statuses
        .iter()
        .filter(|n| previous.get(&(n.namespace.as_deref(), id_of(n))) != Some(n));
    out.extend(changed.map(|n| desired(kind, n)));
}

fn desired<T: Serialize>(kind: &'static str, n: &Named<T>) -> Desired {
    Desired {
        id: (kind, id_of(n).to_string()),
        target: Target {
            kind,
            namespace: n.namespace.clone(),
            name: n.name.clone(),
        },
        plain: to_value(&n.status),
    }
}

/// The status each object carries in the watch caches, found by name (or uid for the
/// tenancy kinds). Each kind is indexed on its first lookup: the first status of one new
/// TenantRoute must not index the 20,000-odd other cached objects.
struct Cached<'a> {
    objects: &'a [Object],
    tenancy: &'a TenancyObjects,
    by_kind: HashMap<&'static str, HashMap<(Option<&'a str>, &'a str), CachedObject<'a>>>,
}

#[derive(Clone, Copy)]
enum CachedObject<'a> {
    Core(&'a Object),
    TenantRoute(&'a TenantRoute),
    Tenant(&'a Tenant),
    TenantCertificate(&'a TenantCertificate),
}

impl<'a> Cached<'a> {
    fn new(objects: &'a [Object], tenancy: &'a TenancyObjects) -> Self {
        Cached {
            objects,
            tenancy,
            by_kind: HashMap::default(),
        }
    }

    fn status(&mut self, target: &Target, uid: &str) -> Value {
        let (objects, tenancy) = (self.objects, self.tenancy);
        let index = self
            .by_kind
            .entry(target.kind)
            .or_insert_with(|| index(target.kind, objects, tenancy));
        // The tenancy kinds are found by uid (a deleted and recreated object is another).
        let key = match target.kind {
            "TenantRoute" | "Tenant" | "TenantCertificate" => (None, uid),
            _ => (target.namespace.as_deref(), target.name.as_str()),
        };
        match index.get(&key) {
            Some(CachedObject::Core(o)) => current_status(o),
            Some(CachedObject::TenantRoute(r)) => Some(to_value(&r.status)),
            Some(CachedObject::Tenant(t)) => Some(to_value(&t.status)),
            Some(CachedObject::TenantCertificate(c)) => Some(to_value(&c.status)),
            None => None,
        }
        .unwrap_or(Value::Null)
    }
}

/// The cached objects of one kind, by the key [`Cached::status`] looks them up with.
fn index<'a>(
    kind: &str,
    objects: &'a [Object],
    tenancy: &'a TenancyObjects,
) -> HashMap<(Option<&'a str>, &'a str), CachedObject<'a>> {
    fn by_uid<'a, T: kube::Resource>(
        list: &'a [Arc<T>],
        wrap: fn(&'a T) -> CachedObject<'a>,
    ) -> HashMap<(Option<&'a str>, &'a str), CachedObject<'a>> {
        list.iter()
            .filter_map(|o| Some(((None, o.meta().uid.as_deref()?), wrap(o))))
            .collect()
    }
    match kind {
        "TenantRoute" => by_uid(&tenancy.routes, CachedObject::TenantRoute),
        "Tenant" => by_uid(&tenancy.tenants, CachedObject::Tenant),
        "TenantCertificate" => by_uid(&tenancy.certificates, CachedObject::TenantCertificate),
        kind => objects
            .iter()
            .filter(|o| o.kind() == kind)
            .map(|o| ((o.namespace(), o.name()), CachedObject::Core(o)))
            .collect(),
    }
}

/// The status to send: `plain` with every condition's `lastTransitionTime` carried over
/// from `before` while its status holds. `current` is what the object carries now, whose
/// other controllers' route parents are kept.
fn stamped(d: &Desired, before: &Value, current: &Value, now: &str) -> Value {
    let mut status = d.plain.clone();
    match d.target.kind {
        kind if carries_others_parents(kind) => {
            for parent in status.as_array_mut().into_iter().flatten() {
                let old = find(&before["parents"], |p| {
                    p["parentRef"] == parent["parentRef"]
                        && p["controllerName"] == parent["controllerName"]
                });
                stamp(&mut parent["conditions"], &old["conditions"], now);
            }
            // `status.parents` is an atomic list: applying it replaces the whole list, so
            // other controllers' entries are carried over as they are.
            let mut parents: Vec<Value> = current["parents"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["controllerName"] != crate::plan::CONTROLLER_NAME)
                .cloned()
                .collect();
            parents.extend(status.as_array().cloned().unwrap_or_default());
            json!({ "parents": parents })
        }
        kind => {
            stamp(&mut status["conditions"], &before["conditions"], now);
            if matches!(kind, "Gateway" | "ListenerSet") {
                for listener in status["listeners"].as_array_mut().into_iter().flatten() {
                    let old = find(&before["listeners"], |l| l["name"] == listener["name"]);
                    stamp(&mut listener["conditions"], &old["conditions"], now);
                }
            }
            status
        }
    }
}

/// Route kinds: their `status.parents` holds other controllers' entries beside ours.
fn carries_others_parents(kind: &str) -> bool {
    matches!(kind, "HTTPRoute" | "GRPCRoute" | "TLSRoute")
}

fn to_value<T: Serialize>(t: &T) -> Value {
    serde_json::to_value(t).unwrap_or_default()
}

fn current_status(object: &Object) -> Option<Value> {
    let status = match object {
        Object::GatewayClass(o) => to_value(&o.status),
        Object::Gateway(o) => to_value(&o.status),
        Object::HttpRoute(o) => to_value(&o.status),
        Object::GrpcRoute(o) => to_value(&o.status),
        Object::TlsRoute(o) => to_value(&o.status),
        Object::ListenerSet(o) => to_value(&o.status),
        _ => return None,
    };
    Some(status)
}

fn find(list: &Value, pred: impl Fn(&Value) -> bool) -> Value {
    list.as_array()
        .and_then(|l| l.iter().find(|v| pred(v)))
        .cloned()
        .unwrap_or(Value::Null)
}

/// Gives each condition in `new` its `lastTransitionTime`: the old one while the status is
/// the same, `now` otherwise.
fn stamp(new: &mut Value, old: &Value, now: &str) {
    for c in new.as_array_mut().into_iter().flatten() {
        let before = find(old, |o| o["type"] == c["type"]);
        let time = match before.get("lastTransitionTime") {
            Some(t) if before["status"] == c["status"] && t.is_string() => t.clone(),
            _ => json!(now),
        };
        c["lastTransitionTime"] = time;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_keep_time_while_status_holds() {
        let old = json!([
            {"type": "Accepted", "status": "True", "lastTransitionTime": "2020-01-01T00:00:00Z"},
            {"type": "Programmed", "status": "False", "lastTransitionTime": "2020-01-01T00:00:00Z"}
        ]);
        let mut new = json!([
            {"type": "Accepted", "status": "True", "reason": "Accepted"},
            {"type": "Programmed", "status": "True"},
            {"type": "ResolvedRefs", "status": "True"}
        ]);
        stamp(&mut new, &old, "NOW");
        assert_eq!(new[0]["lastTransitionTime"], "2020-01-01T00:00:00Z");
        assert_eq!(new[1]["lastTransitionTime"], "NOW");
        assert_eq!(new[2]["lastTransitionTime"], "NOW");
    }

    fn statuses(docs: &[&str]) -> Statuses {
        use crate::testing::*;
        let objects = parse(docs);
        let pool = "127.0.0.10-127.0.0.20".parse().unwrap();
        let plan = crate::plan::plan(&objects, &pool, &Default::default());
        crate::status::compute(&objects, &plan, &Default::default())
    }

    fn kinds(desired: &[Desired]) -> Vec<&str> {
        desired.iter().map(|d| d.target.kind).collect()
    }

    #[test]
    fn only_statuses_that_changed_are_submitted() {
        use crate::testing::*;
        let gateway = gateway("infra", "shared", 8080, "");
        let svc = service("infra", "app");
        let route = route("infra", "app", "shared", "app");
        let before = statuses(&[CLASS, &gateway, &route, &svc]);
        assert_eq!(
            kinds(&changed(&before, &Statuses::default())),
            ["GatewayClass", "Gateway", "HTTPRoute"],
            "the first pass submits everything"
        );
        assert!(changed(&before, &before).is_empty(), "nothing changed");

        // The route's backend goes away: its status changes, the others do not.
        let after = statuses(&[CLASS, &gateway, &route]);
        assert_eq!(kinds(&changed(&after, &before)), ["HTTPRoute"]);
    }

    #[test]
    fn what_objects_carry_is_found_by_name_or_for_tenancy_kinds_by_uid() {
        use crate::testing::*;
        let mut objects = parse(&[CLASS, &gateway("infra", "shared", 8080, "")]);
        let Object::Gateway(gw) = &mut objects[1] else {
            panic!("the second object is the Gateway")
        };
        Arc::make_mut(gw).status = serde_json::from_value(json!({
            "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                "message": "", "lastTransitionTime": "2020-01-01T00:00:00Z"}]
        }))
        .unwrap();
        let mut route: TenantRoute = serde_yaml::from_str(
            "apiVersion: gatehouse.dev/v1alpha1
kind: TenantRoute
metadata: {name: web, namespace: alice-web, uid: uid-web}
spec: {hostnames: [shop.example.com], rules: []}
",
        )
        .unwrap();
        route.status = serde_json::from_value(json!({
            "conditions": [{"type": "Accepted", "status": "True", "reason": "Accepted",
                "message": "", "lastTransitionTime": "2021-01-01T00:00:00Z"}]
        }))
        .unwrap();
        let tenancy = TenancyObjects {
            routes: vec![Arc::new(route)],
            ..Default::default()
        };
        let mut cached = Cached::new(&objects, &tenancy);
        let target = |kind, ns: Option<&str>, name: &str| Target {
            kind,
            namespace: ns.map(str::to_string),
            name: name.to_string(),
        };
        let gw = cached.status(&target("Gateway", Some("infra"), "shared"), "any");
        assert_eq!(
            gw["conditions"][0]["lastTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
        assert_eq!(
            cached.status(&target("Gateway", Some("other"), "shared"), "any"),
            Value::Null
        );
        let web = target("TenantRoute", Some("alice-web"), "web");
        assert_eq!(
            cached.status(&web, "uid-web")["conditions"][0]["lastTransitionTime"],
            "2021-01-01T00:00:00Z"
        );
        assert_eq!(
            cached.status(&web, "uid-of-a-recreated-web"),
            Value::Null,
            "another object of the same name carries nothing yet"
        );
    }
}
