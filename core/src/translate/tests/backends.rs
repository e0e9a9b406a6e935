use super::*;
use crate::model::{AppProtocol, BackendTarget};
use std::net::SocketAddr;

const GW: &str =
    "[{name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}]";

fn grant(to_name: Option<&str>, from_ns: &str) -> String {
    let name = to_name.map(|n| format!(", name: {n}")).unwrap_or_default();
    format!(
        "apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {{name: g, namespace: backends}}
spec:
  from: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: {from_ns}}}]
  to: [{{group: '', kind: Service{name}}}]
"
    )
}

fn route_to(backend_ref: &str) -> String {
    route(
        "apps",
        "r",
        &format!(
            "  parentRefs: [{{name: gw, namespace: infra}}]\n  rules: [{{backendRefs: [{backend_ref}]}}]\n"
        ),
    )
}

fn targets(t: &Translation) -> Vec<BackendTarget> {
    http_route(t, "apps/r").rules[0]
        .backends
        .iter()
        .map(|b| b.target.clone())
        .collect()
}

#[test]
fn backend_ref_resolution() {
    let svc = service("backends", "web", "[{port: 80, name: http}]");
    let local = service("apps", "local", "[{port: 8080}]");
    let ok = |key: &str| Ok::<_, &str>(key.to_string());
    let table: &[(&str, Option<String>, Result<String, &str>)] = &[
        ("{name: local, port: 8080}", None, ok("apps/local:8080")),
        (
            "{name: local, port: 8080, namespace: apps, kind: Service, group: ''}",
            None,
            ok("apps/local:8080"),
        ),
        (
            "{name: web, namespace: backends, port: 80}",
            None,
            Err("RefNotPermitted: "),
        ),
        (
            "{name: web, namespace: backends, port: 80}",
            Some(grant(None, "apps")),
            ok("backends/web:80"),
        ),
        (
            "{name: web, namespace: backends, port: 80}",
            Some(grant(Some("web"), "apps")),
            ok("backends/web:80"),
        ),
        (
            "{name: web, namespace: backends, port: 80}",
            Some(grant(Some("db"), "apps")),
            Err("RefNotPermitted: "),
        ),
        (
            "{name: web, namespace: backends, port: 80}",
            Some(grant(None, "elsewhere")),
            Err("RefNotPermitted: "),
        ),
        (
            "{name: missing, port: 80}",
            None,
            Err("BackendNotFound: service apps/missing not found"),
        ),
        (
            "{name: local, port: 9}",
            None,
            Err("BackendNotFound: service apps/local has no port 9"),
        ),
        ("{name: local}", None, Err("needs a port")),
        (
            "{name: b, kind: Bucket, group: s3.example.com, port: 1}",
            None,
            Err("InvalidKind: unsupported backend kind s3.example.com/Bucket"),
        ),
    ];
    for (backend_ref, grant, want) in table {
        let r = route_to(backend_ref);
        let mut docs: Vec<&str> = vec![CLASS, &GW_DOC, &svc, &local, &r];
        if let Some(g) = grant {
            docs.push(g);
        }
        let t = run(&docs);
        match (targets(&t).as_slice(), want) {
            ([BackendTarget::Service(key)], Ok(want)) => {
                assert_eq!(&key.0, want, "{backend_ref}");
                assert!(t.problems.is_empty(), "{backend_ref}: {:?}", problems(&t));
                backend(&t, want);
            }
            ([BackendTarget::Invalid(reason)], Err(want)) => {
                assert!(reason.contains(want), "{backend_ref}: {reason}");
                assert_eq!(
                    problems(&t),
                    [format!(
                        "HTTPRoute apps/r: spec.rules[0].backendRefs[0]: {reason}"
                    )],
                );
                assert_eq!(
                    t.resources.len(),
                    2,
                    "no Backend for an invalid ref: {:?}",
                    keys(&t)
                );
            }
            (got, _) => panic!("{backend_ref}: {got:?}"),
        }
    }
}

static GW_DOC: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| gateway(GW));

#[test]
fn weights_default_to_one() {
    let svc = service("apps", "web", "[{port: 80}, {port: 81}]");
    let r = route_to(
        "{name: web, port: 80}, {name: web, port: 81, weight: 0}, {name: web, port: 80, weight: 7}",
    );
    let t = run(&[CLASS, &GW_DOC, &svc, &r]);
    let weights: Vec<u32> = http_route(&t, "apps/r").rules[0]
        .backends
        .iter()
        .map(|b| b.weight)
        .collect();
    assert_eq!(weights, [1, 0, 7]);
    assert_eq!(
        keys(&t),
        [
            "Listener infra/gw/http",
            "HTTPRoute apps/r",
            "Backend apps/web:80",
            "Backend apps/web:81"
        ]
    );
}

#[test]
fn negative_weight_drops_the_route() {
    let svc = service("apps", "web", "[{port: 80}]");
    let t = run(&[
        CLASS,
        &GW_DOC,
        &svc,
        &route_to("{name: web, port: 80, weight: -1}"),
    ]);
    assert_eq!(keys(&t), ["Listener infra/gw/http"]);
    assert_eq!(
        problems(&t),
        ["HTTPRoute apps/r: spec.rules[0].backendRefs[0].weight: weight -1 is negative"]
    );
}

const SLICES: &str = "
apiVersion: v1
kind: List
items:
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: web-a, namespace: apps, labels: {kubernetes.io/service-name: web}}
  addressType: IPv4
  ports: [{name: http, port: 8080}, {name: metrics, port: 9090}]
  endpoints:
  - {addresses: [10.0.0.2], conditions: {ready: true}}
  - {addresses: [10.0.0.1]}
  - {addresses: [10.0.0.3], conditions: {ready: false}}
  - {addresses: [10.0.0.2, 10.0.0.4], conditions: {ready: true, serving: true}}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: web-b, namespace: apps, labels: {kubernetes.io/service-name: web}}
  addressType: IPv6
  ports: [{name: http, port: 8080}]
  endpoints:
  - {addresses: ['fd00::1']}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: web-fqdn, namespace: apps, labels: {kubernetes.io/service-name: web}}
  addressType: FQDN
  ports: [{name: http, port: 8080}]
  endpoints:
  - {addresses: [web.example.com]}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: other, namespace: apps, labels: {kubernetes.io/service-name: other}}
  addressType: IPv4
  ports: [{name: http, port: 8080}]
  endpoints:
  - {addresses: [10.9.9.9]}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: web-elsewhere, namespace: infra, labels: {kubernetes.io/service-name: web}}
  addressType: IPv4
  ports: [{name: http, port: 8080}]
  endpoints:
  - {addresses: [10.8.8.8]}
";

#[test]
fn endpoints_come_from_ready_slice_addresses() {
    let svc = service(
        "apps",
        "web",
        "[{name: http, port: 80, appProtocol: kubernetes.io/h2c}, {name: metrics, port: 9000}, {name: admin, port: 7000}]",
    );
    let r = route_to("{name: web, port: 80}, {name: web, port: 9000}, {name: web, port: 7000}");
    let t = run(&[CLASS, &GW_DOC, &svc, SLICES, &r]);
    let addrs = |key: &str| -> Vec<String> {
        backend(&t, key)
            .endpoints
            .iter()
            .map(SocketAddr::to_string)
            .collect()
    };
    assert_eq!(
        addrs("apps/web:80"),
        [
            "10.0.0.1:8080",
            "10.0.0.2:8080",
            "10.0.0.4:8080",
            "[fd00::1]:8080"
        ]
    );
    assert_eq!(
        addrs("apps/web:9000"),
        ["10.0.0.1:9090", "10.0.0.2:9090", "10.0.0.4:9090"]
    );
    assert!(addrs("apps/web:7000").is_empty());
    assert_eq!(backend(&t, "apps/web:80").app_protocol, AppProtocol::H2c);
    assert_eq!(
        backend(&t, "apps/web:9000").app_protocol,
        AppProtocol::Http1
    );
}

#[test]
fn unnamed_service_port_matches_unnamed_slice_port() {
    let svc = service(
        "apps",
        "solo",
        "[{port: 80, appProtocol: kubernetes.io/ws}]",
    );
    let slice = "
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: solo-x, namespace: apps, labels: {kubernetes.io/service-name: solo}}
addressType: IPv4
ports: [{name: '', port: 3000}]
endpoints: [{addresses: [10.1.1.1]}]
";
    let t = run(&[
        CLASS,
        &GW_DOC,
        &svc,
        slice,
        &route_to("{name: solo, port: 80}"),
    ]);
    let b = backend(&t, "apps/solo:80");
    assert_eq!(
        b.endpoints,
        ["10.1.1.1:3000".parse::<SocketAddr>().unwrap()]
    );
    assert_eq!(b.app_protocol, AppProtocol::WebSocket);
}

#[test]
fn backends_of_unattached_routes_are_not_emitted() {
    let svc = service("apps", "web", "[{port: 80}]");
    let r = route(
        "apps",
        "r",
        "  parentRefs: [{name: nope, namespace: infra}]\n  rules: [{backendRefs: [{name: web, port: 80}]}]\n",
    );
    let t = run(&[CLASS, &GW_DOC, &svc, &r]);
    assert_eq!(keys(&t), ["Listener infra/gw/http"]);
}
