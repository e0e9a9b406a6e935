//! `Snapshot::update` against `Snapshot::new`: after every change of a long, seeded sequence
//! (creates, hostname edits and deletes of every route-like kind, ReferenceGrants coming and
//! going), the incrementally updated snapshot must decide every attack-matrix request and
//! report every conflict exactly as a snapshot rebuilt from all objects does.

use gatehouse_policy::attacks::{self, admins};
use gatehouse_policy::testkit::*;
use gatehouse_policy::{
    Change, Conflicts, Kind, Object, ObjectRef, Objects, Policy, RebuildNeeded, Snapshot,
    resolve_conflicts,
};
use std::collections::BTreeMap;

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

const NAMESPACES: [&str; 7] = [
    "alice-shop",
    "alice-dev",
    "bob-web",
    "bob-db",
    "carol",
    "dave",
    "platform",
];
const HOSTNAMES: [&str; 10] = [
    "shop.example.com",
    "x.alice.example.com",
    "a.bob.example.com",
    "z.bob.example.com",
    "blog.carol.dev",
    "new.dave.dev",
    "status.example.net",
    "a.erin.example.com",
    "*.alice.example.com",
    "api.example.org",
];

fn random_object(rng: &mut Lcg, step: usize) -> Object {
    let ns = NAMESPACES[rng.next(NAMESPACES.len())];
    let name = format!("o{}", rng.next(6));
    let mut hostnames = vec![HOSTNAMES[rng.next(HOSTNAMES.len())]];
    if rng.next(2) == 0 {
        hostnames.push(HOSTNAMES[rng.next(HOSTNAMES.len())]);
    }
    let builder = route(ns, &name)
        .hostnames(&hostnames)
        .created(rng.next(3) as i64 * 100 + step as i64 % 2)
        .parent("gateways", "public", None);
    match rng.next(6) {
        0 => Object::HttpRoute(builder.http_route()),
        1 => Object::GrpcRoute(builder.grpc_route()),
        2 => Object::TlsRoute(builder.tls_route()),
        3 => Object::TenantCertificate(certificate(ns, &name, &hostnames)),
        4 => Object::ListenerSet(
            listener_set(ns, &name, "gateways", "public")
                .listener("https", Some(hostnames[0]), 8443)
                .build(),
        ),
        _ => Object::TenantRoute(builder.tenant_route()),
    }
}

fn random_grant(rng: &mut Lcg) -> Object {
    let ns = NAMESPACES[rng.next(NAMESPACES.len())];
    let from = NAMESPACES[rng.next(NAMESPACES.len())];
    let kind = [Kind::TenantRoute, Kind::HttpRoute][rng.next(2)];
    let service = ["catalog", "db"][rng.next(2)];
    Object::ReferenceGrant(reference_grant(
        ns,
        &format!("g{}", rng.next(3)),
        kind,
        from,
        Some(service),
    ))
}

fn objects(stored: &BTreeMap<ObjectRef, Object>) -> Objects {
    let mut objects = Objects::default();
    for object in stored.values() {
        objects.push(object.clone());
    }
    objects
}

#[test]
fn updates_decide_exactly_like_a_rebuild() {
    let policy = Policy::new(admins());
    let cases = attacks::cases();
    let mut stored: BTreeMap<ObjectRef, Object> = BTreeMap::new();
    let world = attacks::world();
    for object in objects_of(world.clone()) {
        stored.insert(object.object_ref(), object);
    }
    let mut incremental = Snapshot::new(objects(&stored));
    let mut conflicts = Conflicts::resolve(&incremental);
    let mut rng = Lcg(0x5eed);
    for step in 0..400 {
        let change = match rng.next(4) {
            // Delete something stored (a world route, or one made earlier).
            0 => {
                let deletable: Vec<&Object> = stored
                    .values()
                    .filter(|o| !matches!(o.kind(), Kind::Tenant | Kind::Namespace))
                    .collect();
                Change::Deleted(deletable[rng.next(deletable.len())].clone())
            }
            1 => Change::Applied(random_grant(&mut rng)),
            _ => Change::Applied(random_object(&mut rng, step)),
        };
        match &change {
            Change::Applied(o) => stored.insert(o.object_ref(), o.clone()),
            Change::Deleted(o) => stored.remove(&o.object_ref()),
        };
        let object = match &change {
            Change::Applied(o) | Change::Deleted(o) => o.object_ref(),
        };
        let mut touched: Vec<String> = incremental.hostnames_used_by(&object).to_vec();
        incremental
            .update(&change)
            .expect("route-like kinds update");
        touched.extend_from_slice(incremental.hostnames_used_by(&object));
        for hostname in &touched {
            conflicts.refresh(&incremental, hostname);
        }
        let rebuilt = Snapshot::new(objects(&stored));
        for case in &cases {
            let got = policy.decide(&incremental, &case.request);
            let want = policy.decide(&rebuilt, &case.request);
            assert_eq!(
                format!("{got:?}"),
                format!("{want:?}"),
                "step {step} ({change:?}), case {}",
                case.name
            );
        }
        assert_eq!(
            resolve_conflicts(&incremental),
            resolve_conflicts(&rebuilt),
            "step {step}: conflicts after {change:?}"
        );
        assert_eq!(
            conflicts.iter().cloned().collect::<Vec<_>>(),
            resolve_conflicts(&rebuilt),
            "step {step}: conflicts refreshed for {touched:?} after {change:?}"
        );
    }
}

#[test]
fn tenant_and_namespace_changes_ask_for_a_rebuild_and_change_nothing() {
    let world = attacks::world();
    let mut snapshot = Snapshot::new(world.clone());
    let probe = &attacks::cases()[0];
    let policy = Policy::new(admins());
    let before = format!("{:?}", policy.decide(&snapshot, &probe.request));
    let tenant = Object::Tenant(world.tenants[0].clone());
    assert_eq!(
        snapshot.update(&Change::Deleted(tenant)),
        Err(RebuildNeeded(Kind::Tenant))
    );
    let ns = Object::Namespace(namespace("bob-web", &[]));
    assert_eq!(
        snapshot.update(&Change::Applied(ns)),
        Err(RebuildNeeded(Kind::Namespace))
    );
    assert_eq!(
        format!("{:?}", policy.decide(&snapshot, &probe.request)),
        before
    );
}

#[test]
fn an_update_leaves_the_snapshot_it_was_cloned_from_alone() {
    let world = attacks::world();
    let original = Snapshot::new(world.clone());
    let mut next = original.clone();
    // carol's first-come hostname is freed in `next` only.
    let blog = world
        .tenant_routes
        .iter()
        .find(|r| r.metadata.namespace.as_deref() == Some("carol"))
        .cloned()
        .expect("carol/blog");
    next.update(&Change::Deleted(Object::TenantRoute(blog)))
        .expect("routes update");
    let policy = Policy::new(admins());
    let dave_takes_it = gatehouse_policy::Request::create(
        Object::TenantRoute(
            route("dave", "blog")
                .hostnames(&["blog.carol.dev"])
                .tenant_route(),
        ),
        tenant_user("dave"),
    );
    assert!(!policy.decide(&original, &dave_takes_it).is_allowed());
    assert!(policy.decide(&next, &dave_takes_it).is_allowed());
}

fn objects_of(world: Objects) -> Vec<Object> {
    let mut out: Vec<Object> = Vec::new();
    out.extend(world.tenants.into_iter().map(Object::from));
    out.extend(world.namespaces.into_iter().map(Object::from));
    out.extend(world.tenant_routes.into_iter().map(Object::from));
    out.extend(world.tenant_certificates.into_iter().map(Object::from));
    out.extend(world.http_routes.into_iter().map(Object::from));
    out.extend(world.grpc_routes.into_iter().map(Object::from));
    out.extend(world.tls_routes.into_iter().map(Object::from));
    out.extend(world.reference_grants.into_iter().map(Object::from));
    out.extend(world.gateways.into_iter().map(Object::from));
    out.extend(world.listener_sets.into_iter().map(Object::from));
    out
}
