//! Table tests, one table per rule, each against a small world built for it.

use gatehouse_policy::testkit::*;
use gatehouse_policy::{
    Admins, ConflictReason, Decision, DenyReason, Kind, NamespaceTenant, Object, ObjectRef,
    Objects, Policy, Request, Snapshot, UserInfo, resolve_conflicts,
};

fn decide(objects: Objects, request: Request) -> Decision {
    Policy::new(Admins::default().with_group("platform-admins"))
        .decide(&Snapshot::new(objects), &request)
}

fn two_tenants() -> Objects {
    let tenants = vec![
        tenant("alice")
            .created(10)
            .namespaces(&["alice"])
            .domains(&["shop.example.com", "*.alice.example.com"])
            .listener("gw", "public", &[])
            .build(),
        tenant("bob")
            .created(20)
            .namespaces(&["bob"])
            .allow_unassigned()
            .listener("gw", "public", &[])
            .build(),
    ];
    Objects {
        tenants,
        namespaces: vec![namespace("alice", &[]), namespace("bob", &[])],
        ..Objects::default()
    }
}

#[test]
fn hostname_ownership_table() {
    use DenyReason::*;
    let mut world = two_tenants();
    world.tenant_routes.push(
        route("bob", "old")
            .hostnames(&["taken.example.net"])
            .tenant_route(),
    );
    let cases: &[(&str, &str, &str, Option<DenyReason>)] = &[
        ("alice", "alice", "shop.example.com", None),
        ("alice", "alice", "a.alice.example.com", None),
        ("alice", "alice", "*.alice.example.com", None),
        ("alice", "alice", "*.deep.alice.example.com", None),
        (
            "alice",
            "alice",
            "alice.example.com",
            Some(HostnameNotAssigned),
        ),
        (
            "alice",
            "alice",
            "www.shop.example.com",
            Some(HostnameNotAssigned),
        ),
        (
            "alice",
            "alice",
            "*.example.com",
            Some(WildcardOutsideClaims),
        ),
        (
            "bob",
            "bob",
            "shop.example.com",
            Some(HostnameClaimedByOtherTenant),
        ),
        (
            "bob",
            "bob",
            "x.alice.example.com",
            Some(HostnameClaimedByOtherTenant),
        ),
        (
            "bob",
            "bob",
            "*.example.com",
            Some(HostnameClaimedByOtherTenant),
        ),
        ("bob", "bob", "free.example.net", None),
        ("bob", "bob", "taken.example.net", None),
        ("bob", "bob", "*.example.net", Some(WildcardOutsideClaims)),
        ("bob", "bob", "SHOP.example.com", Some(InvalidHostname)),
        ("bob", "bob", "free.example.net.", Some(InvalidHostname)),
        ("bob", "bob", "", Some(InvalidHostname)),
    ];
    for (user, ns, hostname, want) in cases {
        let request = Request::create(
            Object::TenantRoute(route(ns, "r").hostnames(&[hostname]).tenant_route()),
            tenant_user(user),
        );
        let got = decide(world.clone(), request);
        assert_eq!(got.reason(), *want, "{user} using {hostname:?}: {got:?}");
    }
}

#[test]
fn first_come_never_shares_between_tenants_but_a_tenant_shares_with_itself() {
    let mut world = two_tenants();
    world.tenants.push(
        tenant("carol")
            .created(30)
            .namespaces(&["carol"])
            .allow_unassigned()
            .build(),
    );
    world.tenant_routes.push(
        route("bob", "old")
            .hostnames(&["blog.example.net"])
            .tenant_route(),
    );
    let same_tenant = Request::create(
        Object::TenantRoute(
            route("bob", "new")
                .hostnames(&["blog.example.net"])
                .tenant_route(),
        ),
        tenant_user("bob"),
    );
    assert_eq!(decide(world.clone(), same_tenant), Decision::Allowed);
    let other_tenant = Request::create(
        Object::TenantRoute(
            route("carol", "new")
                .hostnames(&["blog.example.net"])
                .tenant_route(),
        ),
        tenant_user("carol"),
    );
    let got = decide(world, other_tenant);
    assert_eq!(got.reason(), Some(DenyReason::HostnameInUse));
}

#[test]
fn an_update_does_not_conflict_with_its_own_stored_version() {
    let mut world = two_tenants();
    let stored = route("bob", "r").hostnames(&["blog.example.net"]);
    world.tenant_routes.push(stored.tenant_route());
    let request = Request::update(
        Object::TenantRoute(stored.tenant_route()),
        Object::TenantRoute(stored.clone().backend(None, "v2").tenant_route()),
        tenant_user("bob"),
    );
    assert_eq!(decide(world, request), Decision::Allowed);
}

#[test]
fn quota_table() {
    use DenyReason::*;
    // (route limit, hostname limit, existing routes, request is an update, new hostnames, want)
    type Row = (
        Option<i64>,
        Option<i64>,
        usize,
        bool,
        &'static [&'static str],
        Option<DenyReason>,
    );
    let rows: &[Row] = &[
        (None, None, 50, false, &["a.alice.example.com"], None),
        (Some(3), None, 2, false, &["a.alice.example.com"], None),
        (
            Some(3),
            None,
            3,
            false,
            &["a.alice.example.com"],
            Some(RouteQuotaExceeded),
        ),
        (
            Some(0),
            None,
            0,
            false,
            &["a.alice.example.com"],
            Some(RouteQuotaExceeded),
        ),
        (Some(3), None, 3, true, &["h0.alice.example.com"], None),
        // Limit lowered below usage: existing routes stay editable.
        (Some(1), None, 3, true, &["h0.alice.example.com"], None),
        (None, Some(3), 3, false, &["h0.alice.example.com"], None),
        (
            None,
            Some(3),
            3,
            false,
            &["new.alice.example.com"],
            Some(HostnameQuotaExceeded),
        ),
        (
            None,
            Some(4),
            3,
            true,
            &["h0.alice.example.com", "new.alice.example.com"],
            None,
        ),
        (
            None,
            Some(3),
            3,
            true,
            &["h0.alice.example.com", "new.alice.example.com"],
            Some(HostnameQuotaExceeded),
        ),
        (None, Some(3), 3, true, &["swap.alice.example.com"], None),
    ];
    for (i, (routes, hostnames, existing, update, new, want)) in rows.iter().enumerate() {
        let mut world = two_tenants();
        let mut alice = tenant("alice")
            .created(10)
            .namespaces(&["alice"])
            .domains(&["*.alice.example.com"]);
        if let Some(l) = routes {
            alice = alice.route_limit(*l);
        }
        if let Some(l) = hostnames {
            alice = alice.hostname_limit(*l);
        }
        world.tenants[0] = alice.build();
        for n in 0..*existing {
            let h = format!("h{n}.alice.example.com");
            world.tenant_routes.push(
                route("alice", &format!("r{n}"))
                    .hostnames(&[&h])
                    .tenant_route(),
            );
        }
        let new_route = Object::TenantRoute(
            route("alice", if *update { "r0" } else { "new" })
                .hostnames(new)
                .tenant_route(),
        );
        let request = if *update {
            let old = route("alice", "r0")
                .hostnames(&["h0.alice.example.com"])
                .tenant_route();
            Request::update(Object::TenantRoute(old), new_route, tenant_user("alice"))
        } else {
            Request::create(new_route, tenant_user("alice"))
        };
        let got = decide(world, request);
        assert_eq!(got.reason(), *want, "row {i}: {got:?}");
    }
}

#[test]
fn certificate_quota_counts_only_certificates() {
    let mut world = two_tenants();
    world.tenants[0] = tenant("alice")
        .created(10)
        .namespaces(&["alice"])
        .domains(&["*.alice.example.com"])
        .certificate_limit(1)
        .route_limit(100)
        .build();
    world.tenant_routes.push(
        route("alice", "r")
            .hostnames(&["a.alice.example.com"])
            .tenant_route(),
    );
    let first = Request::create(
        Object::TenantCertificate(certificate("alice", "c1", &["a.alice.example.com"])),
        tenant_user("alice"),
    );
    assert_eq!(decide(world.clone(), first), Decision::Allowed);
    world
        .tenant_certificates
        .push(certificate("alice", "c1", &["a.alice.example.com"]));
    let second = Request::create(
        Object::TenantCertificate(certificate("alice", "c2", &["b.alice.example.com"])),
        tenant_user("alice"),
    );
    assert_eq!(
        decide(world, second).reason(),
        Some(DenyReason::CertificateQuotaExceeded)
    );
}

#[test]
fn reference_table() {
    let mut world = two_tenants();
    world.tenants[0] = tenant("alice")
        .created(10)
        .namespaces(&["alice", "alice-data"])
        .domains(&["*.alice.example.com"])
        .build();
    world.namespaces.push(namespace("alice-data", &[]));
    world.namespaces.push(namespace("shared", &[]));
    world.reference_grants = vec![
        reference_grant("bob", "one", Kind::TenantRoute, "alice", Some("api")),
        reference_grant("shared", "all", Kind::TenantRoute, "alice", None),
    ];
    let rows: &[(Option<&str>, &str, bool)] = &[
        (None, "web", true),
        (Some("alice"), "web", true),
        (Some("alice-data"), "db", true),
        (Some("bob"), "api", true),
        (Some("bob"), "admin", false),
        (Some("shared"), "anything", true),
        (Some("kube-system"), "kube-dns", false),
        (Some("unknown"), "svc", false),
    ];
    for (ns, service, allowed) in rows {
        let request = Request::create(
            Object::TenantRoute(
                route("alice", "r")
                    .hostnames(&["a.alice.example.com"])
                    .backend(*ns, service)
                    .tenant_route(),
            ),
            tenant_user("alice"),
        );
        let got = decide(world.clone(), request);
        assert_eq!(got.is_allowed(), *allowed, "{ns:?}/{service}: {got:?}");
        if !allowed {
            assert_eq!(got.reason(), Some(DenyReason::ReferenceNotPermitted));
        }
    }
}

#[test]
fn admin_table() {
    let gateway = || Object::Gateway(gateway("gw", "public", &[("http", 80)]));
    let rows: &[(UserInfo, bool)] = &[
        (UserInfo::new("root", &["system:masters"]), true),
        (UserInfo::new("ops", &["platform-admins"]), true),
        (UserInfo::new("release-bot", &[]), true),
        (UserInfo::new("alice-dev", &["tenants:alice"]), false),
        (UserInfo::new("system:masters", &[]), false),
        (UserInfo::new("mallory", &["platform-admins-not"]), false),
    ];
    let policy = Policy::new(
        Admins::default()
            .with_group("platform-admins")
            .with_user("release-bot"),
    );
    let snapshot = Snapshot::new(two_tenants());
    for (user, allowed) in rows {
        for request in [
            Request::create(gateway(), user.clone()),
            Request::delete(gateway(), user.clone()),
            Request::create(tenant("new").namespaces(&["new"]).object(), user.clone()),
            Request::create(Object::GatewayClass(gateway_class("gc")), user.clone()),
        ] {
            let got = policy.decide(&snapshot, &request);
            assert_eq!(
                got.is_allowed(),
                *allowed,
                "{user:?} {:?}: {got:?}",
                request.kind
            );
        }
    }
}

#[test]
fn namespace_resolution_table() {
    let tenants = vec![
        tenant("alice")
            .created(1)
            .namespaces(&["a1"])
            .selector("tenant", "alice")
            .build(),
        tenant("bob")
            .created(2)
            .namespaces(&["b1", "shared"])
            .build(),
        tenant("carol")
            .created(3)
            .selector("tenant", "carol")
            .build(),
    ];
    let namespaces = vec![
        namespace("a1", &[]),
        namespace("a2", &[("tenant", "alice")]),
        namespace("b1", &[]),
        namespace("shared", &[("tenant", "carol")]),
        namespace("none", &[("tenant", "nobody")]),
    ];
    let snapshot = Snapshot::new(Objects {
        tenants,
        namespaces,
        ..Objects::default()
    });
    let one = |t: &str| NamespaceTenant::One(t.to_string());
    let rows = [
        ("a1", one("alice")),
        ("a2", one("alice")),
        ("b1", one("bob")),
        (
            "shared",
            NamespaceTenant::Conflict(vec!["bob".into(), "carol".into()]),
        ),
        ("none", NamespaceTenant::None),
        ("not-in-snapshot", NamespaceTenant::None),
    ];
    for (ns, want) in rows {
        assert_eq!(snapshot.namespace_tenant(ns), want, "{ns}");
    }
    let in_conflict = Request::create(
        Object::TenantRoute(
            route("shared", "r")
                .hostnames(&["x.example.net"])
                .tenant_route(),
        ),
        tenant_user("bob"),
    );
    let got = Policy::default().decide(&snapshot, &in_conflict);
    assert_eq!(got.reason(), Some(DenyReason::NamespaceConflict));
    assert!(
        format!("{got:?}").contains("tenant bob and tenant carol"),
        "{got:?}"
    );
}

#[test]
fn standard_routes_outside_tenant_namespaces_are_left_to_rbac() {
    let mut world = two_tenants();
    world.namespaces.push(namespace("platform", &[]));
    let request = Request::create(
        Object::HttpRoute(route("platform", "catchall").http_route()),
        admin(),
    );
    assert_eq!(decide(world, request), Decision::Allowed);
}

#[test]
fn malformed_requests_are_refused() {
    let route = Object::TenantRoute(
        route("bob", "r")
            .hostnames(&["a.example.net"])
            .tenant_route(),
    );
    let mut wrong_kind = Request::create(route.clone(), tenant_user("bob"));
    wrong_kind.kind = Kind::Tenant;
    let mut update_without_old = Request::create(route, tenant_user("bob"));
    update_without_old.operation = gatehouse_policy::Operation::Update;
    for request in [wrong_kind, update_without_old] {
        assert_eq!(
            decide(two_tenants(), request).reason(),
            Some(DenyReason::MalformedRequest)
        );
    }
}

fn names(conflict: &gatehouse_policy::Conflict) -> Vec<String> {
    conflict.losers.iter().map(|(o, _)| o.to_string()).collect()
}

#[test]
fn same_second_first_come_conflict_has_a_stable_winner() {
    let build = |reverse: bool| {
        let mut world = two_tenants();
        world.tenants.push(
            tenant("carol")
                .created(30)
                .namespaces(&["carol"])
                .allow_unassigned()
                .build(),
        );
        let mut routes = vec![
            route("carol", "blog")
                .hostnames(&["blog.example.net"])
                .created(500)
                .tenant_route(),
            route("bob", "blog")
                .hostnames(&["blog.example.net"])
                .created(500)
                .tenant_route(),
        ];
        if reverse {
            routes.reverse();
        }
        world.tenant_routes = routes;
        resolve_conflicts(&Snapshot::new(world))
    };
    let conflicts = build(false);
    assert_eq!(
        conflicts,
        build(true),
        "order of listing changed the winner"
    );
    assert_eq!(conflicts.len(), 1);
    // Same second: namespace "bob" sorts before "carol".
    assert_eq!(
        conflicts[0].winner,
        ObjectRef::new(Kind::TenantRoute, Some("bob"), "blog")
    );
    assert_eq!(names(&conflicts[0]), vec!["TenantRoute carol/blog"]);
    assert_eq!(conflicts[0].losers[0].1, ConflictReason::FirstUsedByOther);
}

#[test]
fn older_creation_time_beats_name_order() {
    let mut world = two_tenants();
    world.tenants.push(
        tenant("carol")
            .created(30)
            .namespaces(&["carol"])
            .allow_unassigned()
            .build(),
    );
    world.tenant_routes = vec![
        route("bob", "blog")
            .hostnames(&["blog.example.net"])
            .created(501)
            .tenant_route(),
        route("carol", "blog")
            .hostnames(&["blog.example.net"])
            .created(500)
            .tenant_route(),
    ];
    let conflicts = resolve_conflicts(&Snapshot::new(world));
    assert_eq!(conflicts[0].winner.namespace.as_deref(), Some("carol"));
}

#[test]
fn a_claim_beats_an_earlier_first_come_user() {
    let mut world = two_tenants();
    world.tenant_routes = vec![
        route("bob", "early")
            .hostnames(&["x.alice.example.com"])
            .created(1)
            .tenant_route(),
        route("alice", "late")
            .hostnames(&["x.alice.example.com"])
            .created(900)
            .tenant_route(),
    ];
    let conflicts = resolve_conflicts(&Snapshot::new(world));
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].winner, ObjectRef::tenant("alice"));
    assert_eq!(
        conflicts[0].losers,
        vec![(
            ObjectRef::new(Kind::TenantRoute, Some("bob"), "early"),
            ConflictReason::ClaimedByOtherTenant
        )]
    );
}

#[test]
fn overlapping_claims_go_to_the_older_tenant() {
    let mut world = two_tenants();
    world.tenants.push(
        tenant("zed")
            .created(5)
            .namespaces(&["zed"])
            .domains(&["*.example.com"])
            .build(),
    );
    let conflicts = resolve_conflicts(&Snapshot::new(world));
    let claims: Vec<_> = conflicts
        .iter()
        .map(|c| (c.hostname.as_str(), c.winner.name.as_str()))
        .collect();
    // zed (created 5) is older than alice (10): alice's overlapping claims lose to it.
    assert!(claims.contains(&("shop.example.com", "zed")), "{claims:?}");
    assert!(
        claims.contains(&("*.alice.example.com", "zed")),
        "{claims:?}"
    );
    assert!(conflicts.iter().all(|c| {
        c.losers
            .iter()
            .all(|(l, r)| l.name == "alice" && *r == ConflictReason::ClaimOverlap)
    }));
}

#[test]
fn no_conflicts_in_a_consistent_world() {
    let mut world = two_tenants();
    world.tenant_routes = vec![
        route("alice", "a")
            .hostnames(&["shop.example.com"])
            .tenant_route(),
        route("alice", "b")
            .hostnames(&["shop.example.com"])
            .tenant_route(),
        route("bob", "c")
            .hostnames(&["free.example.net"])
            .tenant_route(),
    ];
    assert!(resolve_conflicts(&Snapshot::new(world)).is_empty());
}
