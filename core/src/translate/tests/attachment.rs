use super::*;
use crate::model::ListenerKey;

const NAMESPACES: &str = "
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: apps, labels: {shared-gateway: 'true'}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: other}}
";

fn parents(t: &Translation, key: &str) -> Vec<String> {
    http_route(t, key)
        .parents
        .iter()
        .map(ListenerKey::to_string)
        .collect()
}

/// Translates one route against a Gateway and returns its parents, or the problems.
fn attach(gateway_listeners: &str, route_ns: &str, spec: &str) -> Result<Vec<String>, Vec<String>> {
    let gw = gateway(gateway_listeners);
    let r = route(route_ns, "r", spec);
    let t = run(&[CLASS, NAMESPACES, &gw, &r]);
    let key = format!("{route_ns}/r");
    if t.resources
        .contains_key(&ResourceKey::HttpRoute(key.as_str().into()))
    {
        Ok(parents(&t, &key))
    } else {
        Err(problems(&t))
    }
}

#[test]
fn listener_hostname_intersection() {
    let listeners = "
  - {name: any, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}
  - {name: wild, port: 8080, protocol: HTTP, hostname: '*.example.com', allowedRoutes: {namespaces: {from: All}}}
  - {name: exact, port: 8081, protocol: HTTP, hostname: foo.example.com, allowedRoutes: {namespaces: {from: All}}}";
    let table: &[(&str, &[&str])] = &[
        ("[]", &["any", "exact", "wild"]),
        ("[foo.example.com]", &["any", "exact", "wild"]),
        ("[bar.example.com]", &["any", "wild"]),
        ("['*.example.com']", &["any", "exact", "wild"]),
        ("[example.com]", &["any"]),
        ("[other.org, bar.example.com]", &["any", "wild"]),
    ];
    for (hostnames, want) in table {
        let spec =
            format!("  hostnames: {hostnames}\n  parentRefs: [{{name: gw, namespace: infra}}]\n");
        let want: Vec<String> = want.iter().map(|l| format!("infra/gw/{l}")).collect();
        assert_eq!(attach(listeners, "apps", &spec), Ok(want), "{hostnames}");
    }
}

#[test]
fn no_hostname_overlap_is_a_problem() {
    let listeners = "[{name: exact, port: 80, protocol: HTTP, hostname: foo.example.com, allowedRoutes: {namespaces: {from: All}}}]";
    let spec = "  hostnames: [bar.example.com]\n  parentRefs: [{name: gw, namespace: infra}]\n";
    assert_eq!(
        attach(listeners, "apps", spec),
        Err(vec![
            "HTTPRoute apps/r: spec.parentRefs[0]: NoMatchingListenerHostname: no listener of Gateway infra/gw shares a hostname with the route".to_string()
        ])
    );
}

#[test]
fn allowed_routes_namespaces() {
    let listener = |from: &str| {
        format!("[{{name: l, port: 80, protocol: HTTP, allowedRoutes: {{namespaces: {from}}}}}]")
    };
    let same = listener("{from: Same}");
    let default = "[{name: l, port: 80, protocol: HTTP}]".to_string();
    let all = listener("{from: All}");
    let by_label = listener("{from: Selector, selector: {matchLabels: {shared-gateway: 'true'}}}");
    let by_name = listener(
        "{from: Selector, selector: {matchExpressions: [{key: kubernetes.io/metadata.name, operator: In, values: [other]}]}}",
    );
    let table: &[(&str, &str, bool)] = &[
        (&same, "infra", true),
        (&same, "apps", false),
        (&default, "infra", true),
        (&default, "apps", false),
        (&all, "apps", true),
        (&all, "other", true),
        (&by_label, "apps", true),
        (&by_label, "other", false),
        (&by_label, "unknown", false),
        (&by_name, "other", true),
        (&by_name, "apps", false),
    ];
    for (listeners, ns, admitted) in table {
        let spec = "  parentRefs: [{name: gw, namespace: infra}]\n";
        match attach(listeners, ns, spec) {
            Ok(p) => assert!(*admitted, "{listeners} admitted {ns}: {p:?}"),
            Err(problems) => {
                assert!(!admitted, "{listeners} refused {ns}: {problems:?}");
                assert_eq!(problems.len(), 1);
                assert!(
                    problems[0].contains("NotAllowedByListeners"),
                    "{problems:?}"
                );
            }
        }
    }
}

#[test]
fn selector_without_selector_admits_nothing() {
    let listeners =
        "[{name: l, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Selector}}}]";
    let err = attach(listeners, "infra", "  parentRefs: [{name: gw}]\n").unwrap_err();
    assert_eq!(
        err,
        [
            "Gateway infra/gw: spec.listeners[0].allowedRoutes.namespaces.selector: from: Selector needs a selector",
            "HTTPRoute infra/r: spec.parentRefs[0]: NotAllowedByListeners: no selected listener of Gateway infra/gw admits HTTPRoutes from namespace infra",
        ]
    );
}

#[test]
fn allowed_route_kinds() {
    let tcp = "[{name: l, port: 80, protocol: TCP}]";
    let only_grpc =
        "[{name: l, port: 80, protocol: HTTP, allowedRoutes: {kinds: [{kind: GRPCRoute}]}}]";
    let explicit = "[{name: l, port: 80, protocol: HTTP, allowedRoutes: {kinds: [{group: gateway.networking.k8s.io, kind: HTTPRoute}]}}]";
    let spec = "  parentRefs: [{name: gw}]\n";
    assert!(attach(tcp, "infra", spec).is_err());
    assert!(attach(only_grpc, "infra", spec).is_err());
    assert_eq!(
        attach(explicit, "infra", spec),
        Ok(vec!["infra/gw/l".to_string()])
    );
}

#[test]
fn section_name_and_port_select_listeners() {
    let listeners = "
  - {name: a, port: 80, protocol: HTTP, hostname: a.example.com}
  - {name: b, port: 80, protocol: HTTP, hostname: b.example.com}
  - {name: c, port: 8080, protocol: HTTP}";
    let table: &[(&str, Result<&[&str], &str>)] = &[
        ("{name: gw}", Ok(&["a", "b", "c"])),
        ("{name: gw, sectionName: b}", Ok(&["b"])),
        ("{name: gw, port: 80}", Ok(&["a", "b"])),
        ("{name: gw, port: 8080}", Ok(&["c"])),
        ("{name: gw, sectionName: a, port: 80}", Ok(&["a"])),
        (
            "{name: gw, sectionName: a, port: 8080}",
            Err("has no listener named a on port 8080"),
        ),
        (
            "{name: gw, sectionName: nope}",
            Err("has no listener named nope"),
        ),
        ("{name: gw, port: 9}", Err("has no listener on port 9")),
        (
            "{name: nope}",
            Err("NoMatchingParent: Gateway infra/nope not found"),
        ),
        (
            "{name: gw, namespace: apps}",
            Err("NoMatchingParent: Gateway apps/gw not found"),
        ),
        (
            "{name: gw, kind: Service, group: ''}",
            Err("parent kind /Service is not supported"),
        ),
    ];
    for (parent, want) in table {
        let spec = format!("  parentRefs: [{parent}]\n");
        match (attach(listeners, "infra", &spec), want) {
            (Ok(got), Ok(want)) => {
                let want: Vec<String> = want.iter().map(|l| format!("infra/gw/{l}")).collect();
                assert_eq!(got, want, "{parent}");
            }
            (Err(problems), Err(want)) => {
                assert_eq!(problems.len(), 1, "{parent}: {problems:?}");
                assert!(problems[0].contains(want), "{parent}: {problems:?}");
            }
            (got, _) => panic!("{parent}: unexpected {got:?}"),
        }
    }
}

#[test]
fn several_parents_are_merged_and_deduplicated() {
    let listeners = "
  - {name: a, port: 80, protocol: HTTP}
  - {name: b, port: 81, protocol: HTTP}";
    let spec = "  parentRefs: [{name: gw, sectionName: b}, {name: gw}, {name: gw, sectionName: a}, {name: missing}]\n";
    let t = run(&[CLASS, &gateway(listeners), &route("infra", "r", spec)]);
    assert_eq!(parents(&t, "infra/r"), ["infra/gw/a", "infra/gw/b"]);
    assert_eq!(
        problems(&t),
        [
            "HTTPRoute infra/r: spec.parentRefs[3]: NoMatchingParent: Gateway infra/missing not found"
        ]
    );
}

#[test]
fn routes_on_foreign_gateways_are_silently_ignored() {
    let foreign = "
apiVersion: gateway.networking.k8s.io/v1
kind: List
items:
- apiVersion: gateway.networking.k8s.io/v1
  kind: GatewayClass
  metadata: {name: other}
  spec: {controllerName: example.com/other}
- apiVersion: gateway.networking.k8s.io/v1
  kind: Gateway
  metadata: {name: theirs, namespace: infra}
  spec: {gatewayClassName: other, listeners: [{name: http, port: 80, protocol: HTTP}]}
";
    let r = route("infra", "r", "  parentRefs: [{name: theirs}]\n");
    let t = run(&[CLASS, foreign, &r]);
    assert!(t.resources.is_empty(), "{:?}", keys(&t));
    assert!(t.problems.is_empty(), "{:?}", problems(&t));
}

#[test]
fn route_without_parent_refs() {
    let t = run(&[CLASS, &route("infra", "r", "  rules: [{}]\n")]);
    assert!(t.resources.is_empty());
    assert_eq!(
        problems(&t),
        ["HTTPRoute infra/r: spec.parentRefs: NoMatchingParent: the route names no parent"]
    );
}
