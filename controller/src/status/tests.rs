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
    let programmed = programmed(&plan, &[&all]);
    compute(&objects, &plan, &programmed)
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
    assert_eq!(
        cond(&g.listeners[1].conditions, "Programmed"),
        ("False", "Invalid")
    );
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
    let empty = BTreeMap::new();
    assert!(programmed(&plan, &[&all, &empty]).is_empty());
    let s = compute(&objects, &plan, &programmed(&plan, &[&all, &empty]));
    let g = &s.gateways[0].status;
    assert_eq!(cond(&g.conditions, "Programmed"), ("False", "Pending"));
    assert_eq!(
        cond(&g.listeners[0].conditions, "Programmed"),
        ("False", "Pending")
    );
    assert_eq!(programmed(&plan, &[&all, &all]).len(), 1);
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
