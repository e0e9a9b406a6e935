use super::*;
use crate::plan::plan;
use crate::testing::*;
use std::collections::BTreeMap;

fn pool() -> crate::addresses::Pool {
    "127.0.0.10-127.0.0.20".parse().unwrap()
}

/// Plans and computes status as if every proxy acknowledged everything.
fn statuses(docs: &[&str]) -> Statuses {
    let objects = parse(docs);
    let plan = plan(&objects, &pool(), &BTreeMap::new());
    let all = plan.translation.resources.clone();
    let programmed = programmed(&plan, &[proxy(&Scope::All, Some(&all))]);
    compute_with(&objects, &plan, &programmed)
}

/// A connected proxy serving `scope` that acknowledged `acked`.
fn proxy<'a>(scope: &'a Scope, acked: Option<&'a gatehouse_core::scope::Config>) -> ProxyAcks<'a> {
    ProxyAcks {
        name: "p1".into(),
        scope,
        acked,
        rejection: None,
    }
}

fn cond<'a>(conditions: &'a [Condition], kind: &str) -> (&'a str, &'a str) {
    let c = conditions
        .iter()
        .find(|c| c.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} condition in {conditions:?}"));
    (c.status, c.reason.as_str())
}

fn route_conditions(s: &Statuses, name: &str) -> Vec<Condition> {
    let r = s
        .routes
        .iter()
        .find(|r| r.name == name)
        .expect("route status");
    assert_eq!(r.status.len(), 1, "{:?}", r.status);
    assert_eq!(
        r.status[0].controller_name,
        "gatehouse.dev/gateway-controller"
    );
    r.status[0].conditions.clone()
}

#[test]
fn happy_path() {
    let s = statuses(&[
        CLASS,
        &gateway("ns", "gw", 8080, ""),
        &service("ns", "web"),
        &route("ns", "r", "gw", "web"),
    ]);
    assert_eq!(s.classes.len(), 1);
    assert_eq!(
        cond(&s.classes[0].status.conditions, "Accepted"),
        ("True", "Accepted")
    );
    let names: Vec<_> = s.classes[0]
        .status
        .supported_features
        .iter()
        .map(|f| f.name)
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    assert!(names.contains(&"HTTPRouteQueryParamMatching"));

    let gw = &s.gateways[0].status;
    assert_eq!(gw.addresses[0].value, "127.0.0.10");
    assert_eq!(cond(&gw.conditions, "Accepted"), ("True", "Accepted"));
    assert_eq!(cond(&gw.conditions, "Programmed"), ("True", "Programmed"));
    assert!(gw.conditions.iter().all(|c| c.observed_generation == 2));
    let l = &gw.listeners[0];
    assert_eq!(l.attached_routes, 1);
    assert_eq!(l.supported_kinds[0].kind, "HTTPRoute");
    for kind in ["Accepted", "Programmed", "ResolvedRefs"] {
        assert_eq!(cond(&l.conditions, kind).0, "True", "{kind}");
    }
    assert_eq!(cond(&l.conditions, "Conflicted"), ("False", "NoConflicts"));

    let r = route_conditions(&s, "r");
    assert_eq!(cond(&r, "Accepted"), ("True", "Accepted"));
    assert_eq!(cond(&r, "ResolvedRefs"), ("True", "ResolvedRefs"));
    assert!(r.iter().all(|c| c.observed_generation == 3));
}

#[test]
fn missing_backend_is_backend_not_found() {
    let s = statuses(&[
        CLASS,
        &gateway("ns", "gw", 8080, ""),
        &route("ns", "r", "gw", "nope"),
    ]);
    let r = route_conditions(&s, "r");
    assert_eq!(cond(&r, "Accepted"), ("True", "Accepted"));
    assert_eq!(cond(&r, "ResolvedRefs"), ("False", "BackendNotFound"));
}

#[test]
fn cross_namespace_backend_needs_a_grant() {
    let r = route("ns", "r", "gw", "web").replace("port: 80", "port: 80, namespace: other");
    let s = statuses(&[
        CLASS,
        &gateway("ns", "gw", 8080, ""),
        &service("other", "web"),
        &r,
    ]);
    assert_eq!(
        cond(&route_conditions(&s, "r"), "ResolvedRefs"),
        ("False", "RefNotPermitted")
    );
}

#[test]
fn unsupported_backend_kind() {
    let r = route("ns", "r", "gw", "web").replace("port: 80", "port: 80, kind: Pod");
    let s = statuses(&[CLASS, &gateway("ns", "gw", 8080, ""), &r]);
    assert_eq!(
        cond(&route_conditions(&s, "r"), "ResolvedRefs"),
        ("False", "InvalidKind")
    );
}

#[test]
fn route_from_another_namespace_is_not_allowed() {
    let s = statuses(&[
        CLASS,
        &gateway("ns", "gw", 8080, ""),
        &route("elsewhere", "r", "gw", "web").replace("{name: gw}", "{name: gw, namespace: ns}"),
    ]);
    let r = route_conditions(&s, "r");
    assert_eq!(cond(&r, "Accepted"), ("False", "NotAllowedByListeners"));
    assert_eq!(s.gateways[0].status.listeners[0].attached_routes, 0);
}

#[test]
fn hostname_mismatch_and_missing_section() {
    let listener_host = gateway("ns", "gw", 8080, "")
        .replace("port: 8080}", "port: 8080, hostname: other.example.com}");
    let bad_section =
        route("ns", "s", "gw", "web").replace("{name: gw}", "{name: gw, sectionName: nope}");
    let s = statuses(&[
        CLASS,
        &listener_host,
        &route("ns", "r", "gw", "web"),
        &bad_section,
    ]);
    assert_eq!(
        cond(&route_conditions(&s, "r"), "Accepted"),
        ("False", "NoMatchingListenerHostname")
    );
    assert_eq!(
        cond(&route_conditions(&s, "s"), "Accepted"),
        ("False", "NoMatchingParent")
    );
}

#[test]
fn foreign_parents_get_no_entry() {
    let foreign = gateway("ns", "theirs", 8080, "").replace("gatehouse\n", "other\n");
    let s = statuses(&[CLASS, &foreign, &route("ns", "r", "theirs", "web")]);
    assert!(s.routes.is_empty());
    assert!(s.gateways.is_empty());
}

#[test]
fn conflicting_listeners() {
    let gw = gateway("ns", "gw", 8080, "").replace(
        "  - {name: http, protocol: HTTP, port: 8080}\n",
        "  - {name: http, protocol: HTTP, port: 8080}\n  - {name: again, protocol: HTTP, port: 8080}\n  - {name: udp, protocol: UDP, port: 9000}\n",
    );
    let s = statuses(&[CLASS, &gw]);
    let g = &s.gateways[0].status;
    assert_eq!(
        cond(&g.conditions, "Accepted"),
        ("True", "ListenersNotValid")
    );
    assert_eq!(
        cond(&g.listeners[1].conditions, "Conflicted"),
        ("True", "HostnameConflict")
    );
    for kind in ["Accepted", "Programmed"] {
        assert_eq!(
            cond(&g.listeners[1].conditions, kind),
            ("False", "HostnameConflict"),
            "{kind}"
        );
    }
    assert_eq!(
        cond(&g.listeners[2].conditions, "Accepted"),
        ("False", "UnsupportedProtocol")
    );
    assert!(g.listeners[2].supported_kinds.is_empty());
    assert_eq!(
        cond(&g.listeners[0].conditions, "Accepted"),
        ("True", "Accepted")
    );
}

#[test]
fn address_outside_pool_and_unsupported_type() {
    let far = gateway(
        "ns",
        "far",
        8080,
        "  addresses: [{type: IPAddress, value: 10.9.9.9}]\n",
    );
    let host = gateway(
        "ns",
        "host",
        8080,
        "  addresses: [{type: Hostname, value: a.example}]\n",
    );
    let s = statuses(&[CLASS, &far, &host, &route("ns", "r", "far", "web")]);
    let far = &s.gateways.iter().find(|g| g.name == "far").unwrap().status;
    assert!(far.addresses.is_empty());
    assert_eq!(
        cond(&far.conditions, "Programmed"),
        ("False", "AddressNotUsable")
    );
    let host = &s.gateways.iter().find(|g| g.name == "host").unwrap().status;
    assert_eq!(
        cond(&host.conditions, "Accepted"),
        ("False", "UnsupportedAddress")
    );
    assert_eq!(
        cond(&route_conditions(&s, "r"), "Accepted"),
        ("False", "NoMatchingParent")
    );
}

#[test]
fn programmed_waits_for_every_proxy() {
    let objects = parse(&[CLASS, &gateway("ns", "gw", 8080, "")]);
    let plan = plan(&objects, &pool(), &BTreeMap::new());
    let all = plan.translation.resources.clone();
    let empty = gatehouse_core::scope::Config::new();
    let half = [
        proxy(&Scope::All, Some(&all)),
        proxy(&Scope::All, Some(&empty)),
    ];
    assert!(programmed(&plan, &half).gateways.is_empty());
    let s = compute_with(&objects, &plan, &programmed(&plan, &half));
    let g = &s.gateways[0].status;
    assert_eq!(cond(&g.conditions, "Programmed"), ("False", "Pending"));
    assert_eq!(
        message(&g.conditions, "Programmed"),
        "waiting for 1 of 2 proxies serving this Gateway to acknowledge the configuration"
    );
    assert_eq!(
        cond(&g.listeners[0].conditions, "Programmed"),
        ("False", "Pending")
    );
    // Not yet through its first snapshot counts as behind too.
    let unknown = [proxy(&Scope::All, None)];
    assert!(programmed(&plan, &unknown).gateways.is_empty());
    let both = [
        proxy(&Scope::All, Some(&all)),
        proxy(&Scope::All, Some(&all)),
    ];
    assert_eq!(programmed(&plan, &both).gateways.len(), 1);
}

fn message<'a>(conditions: &'a [Condition], kind: &str) -> &'a str {
    &conditions.iter().find(|c| c.kind == kind).unwrap().message
}

#[test]
fn a_gateway_no_connected_proxy_serves_is_not_programmed() {
    let objects = parse(&[CLASS, &gateway("ns", "gw", 8080, "")]);
    let plan = plan(&objects, &pool(), &BTreeMap::new());
    let all = plan.translation.resources.clone();
    // A proxy serving another Gateway does not count.
    let other = Scope::parse(&["ns/other"]).unwrap();
    for proxies in [vec![], vec![proxy(&other, Some(&all))]] {
        let p = programmed(&plan, &proxies);
        assert!(p.gateways.is_empty());
        let s = compute_with(&objects, &plan, &p);
        let g = &s.gateways[0].status;
        assert_eq!(cond(&g.conditions, "Programmed"), ("False", "Pending"));
        assert_eq!(
            message(&g.conditions, "Programmed"),
            "no proxy serving this Gateway is connected to the controller"
        );
    }
    let mine = Scope::parse(&["ns/gw"]).unwrap();
    assert_eq!(
        programmed(&plan, &[proxy(&mine, Some(&all))])
            .gateways
            .len(),
        1
    );
}

#[test]
fn a_rejected_update_shows_in_the_affected_gateway_only() {
    let objects = parse(&[
        CLASS,
        &gateway("ns", "gw", 8080, ""),
        &gateway("ns", "other", 8081, ""),
    ]);
    let plan = plan(&objects, &pool(), &BTreeMap::new());
    let all = plan.translation.resources.clone();
    let rejection = crate::distribute::Rejection {
        version: 7,
        error: "HTTPRoute ns/r: bad regex".into(),
        gateways: [("ns".to_string(), "gw".to_string())].into(),
    };
    let mut p = proxy(&Scope::All, Some(&all));
    p.rejection = Some(&rejection);
    let programming = programmed(&plan, &[p]);
    assert_eq!(
        programming.gateways,
        [("ns".to_string(), "other".to_string())].into()
    );
    let s = compute_with(&objects, &plan, &programming);
    let gw = s.gateways.iter().find(|g| g.name == "gw").unwrap();
    assert_eq!(
        cond(&gw.status.conditions, "Programmed"),
        ("False", "Pending")
    );
    assert_eq!(
        message(&gw.status.conditions, "Programmed"),
        "proxy p1 rejected config version 7: HTTPRoute ns/r: bad regex"
    );
}

fn listener_set(ns: &str, name: &str, created: &str, listeners: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {{name: {name}, namespace: {ns}, generation: 4, creationTimestamp: '{created}'}}
spec:
  parentRef: {{name: gw, namespace: ns}}
  listeners: {listeners}
"
    )
}

fn set_status<'s>(s: &'s Statuses, name: &str) -> &'s ListenerSetStatus {
    &s.listener_sets
        .iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no status for ListenerSet {name}"))
        .status
}

#[test]
fn listener_sets_report_admission_conflicts_and_attachment() {
    let admit_all = "  allowedListeners: {namespaces: {from: All}}\n";
    let s = statuses(&[
        CLASS,
        &gateway("ns", "gw", 8080, admit_all),
        &service("team", "web"),
        // Partly conflicting (its second listener repeats the Gateway's port without a
        // hostname, as the Gateway's own `http` does): accepted, one listener refused.
        &listener_set(
            "team",
            "partial",
            "2026-01-01T00:00:00Z",
            "[{name: shop, port: 8080, protocol: HTTP, hostname: shop.example}, {name: clash, port: 8080, protocol: HTTP}]",
        ),
        // Wholly conflicting with the older one: not accepted.
        &listener_set(
            "team",
            "late",
            "2026-02-01T00:00:00Z",
            "[{name: shop, port: 8080, protocol: HTTP, hostname: shop.example}]",
        ),
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: team, generation: 3}
spec:
  parentRefs: [{kind: ListenerSet, name: partial}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
",
    ]);
    let partial = set_status(&s, "partial");
    assert_eq!(cond(&partial.conditions, "Accepted"), ("True", "Accepted"));
    assert_eq!(
        cond(&partial.conditions, "Programmed"),
        ("True", "Programmed")
    );
    assert!(
        partial
            .conditions
            .iter()
            .all(|c| c.observed_generation == 4)
    );
    let shop = &partial.listeners[0];
    assert_eq!((shop.name.as_str(), shop.attached_routes), ("shop", 1));
    assert_eq!(cond(&shop.conditions, "Programmed"), ("True", "Programmed"));
    let clash = &partial.listeners[1];
    for kind in ["Accepted", "Programmed"] {
        assert_eq!(
            cond(&clash.conditions, kind),
            ("False", "HostnameConflict"),
            "{kind}"
        );
    }
    assert_eq!(
        cond(&clash.conditions, "Conflicted"),
        ("True", "HostnameConflict")
    );

    let late = set_status(&s, "late");
    assert_eq!(
        cond(&late.conditions, "Accepted"),
        ("False", "ListenersNotValid")
    );
    assert_eq!(
        cond(&late.conditions, "Programmed"),
        ("False", "ListenersNotValid")
    );
    assert_eq!(
        cond(&late.listeners[0].conditions, "Conflicted"),
        ("True", "HostnameConflict")
    );

    assert_eq!(s.gateways[0].status.attached_listener_sets, 1);
    let r = route_conditions(&s, "r");
    assert_eq!(cond(&r, "Accepted"), ("True", "Accepted"));
}

#[test]
fn listener_sets_a_gateway_does_not_admit_are_told_so() {
    let s = statuses(&[
        CLASS,
        &gateway("ns", "gw", 8080, ""),
        &listener_set(
            "team",
            "shop",
            "2026-01-01T00:00:00Z",
            "[{name: shop, port: 8080, protocol: HTTP, hostname: shop.example}]",
        ),
    ]);
    let shop = set_status(&s, "shop");
    assert_eq!(cond(&shop.conditions, "Accepted"), ("False", "NotAllowed"));
    assert_eq!(
        cond(&shop.conditions, "Programmed"),
        ("False", "NotAllowed")
    );
    assert!(shop.listeners.is_empty());
    assert_eq!(s.gateways[0].status.attached_listener_sets, 0);
}

fn grpc_route(ns: &str, name: &str, gw: &str, backend: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{name: {name}, namespace: {ns}, generation: 4}}
spec:
  parentRefs: [{{name: {gw}}}]
  hostnames: [grpc.example.com]
  rules:
  - backendRefs: [{{name: {backend}, port: 80}}]
"
    )
}

#[test]
fn grpc_route_reports_accepted_and_unresolved_backends() {
    let s = statuses(&[
        CLASS,
        &gateway("ns", "gw", 8080, ""),
        &service("ns", "web"),
        &grpc_route("ns", "good", "gw", "web"),
        &grpc_route("ns", "broken", "gw", "missing"),
    ]);
    let of = |name: &str| {
        let r = s
            .grpc_routes
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no status for GRPCRoute {name}: {:?}", s.grpc_routes));
        assert_eq!(r.status.len(), 1);
        assert_eq!(r.status[0].parent_ref, serde_json::json!({"name": "gw"}));
        r.status[0].conditions.clone()
    };
    let good = of("good");
    assert_eq!(cond(&good, "Accepted"), ("True", "Accepted"));
    assert_eq!(cond(&good, "ResolvedRefs"), ("True", "ResolvedRefs"));
    assert!(good.iter().all(|c| c.observed_generation == 4));
    let broken = of("broken");
    assert_eq!(cond(&broken, "ResolvedRefs"), ("False", "BackendNotFound"));
    assert!(
        s.routes.is_empty(),
        "GRPCRoutes are not reported as HTTPRoutes"
    );
}

#[test]
fn tls_route_on_a_gateway_without_tls_listener_is_not_accepted() {
    let tls = "apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {name: t, namespace: ns, generation: 5}
spec:
  parentRefs: [{name: gw}]
  hostnames: [tls.example.com]
  rules:
  - backendRefs: [{name: web, port: 443}]
";
    let s = statuses(&[
        CLASS,
        &gateway("ns", "gw", 8080, ""),
        &service("ns", "web"),
        tls,
    ]);
    let r = &s.tls_routes[0];
    assert_eq!(r.name, "t");
    let c = &r.status[0].conditions;
    assert_eq!(cond(c, "Accepted").0, "False");
    assert!(c.iter().all(|c| c.observed_generation == 5));
}
