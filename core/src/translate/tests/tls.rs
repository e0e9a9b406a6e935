//! Certificates from Secrets, GRPCRoutes and TLSRoutes.

use super::*;
use crate::model::{
    BackendTarget, CertificateKey, GrpcMethodMatchType, GrpcRoute, HttpFilter, ListenerKey,
    TlsRoute,
};

fn grpc_route<'t>(t: &'t Translation, key: &str) -> &'t GrpcRoute {
    match t.resources.get(&ResourceKey::GrpcRoute(key.into())) {
        Some(Resource::GrpcRoute(r)) => r,
        _ => panic!("no GRPCRoute {key}; have {:?}; {:?}", keys(t), problems(t)),
    }
}

fn tls_route<'t>(t: &'t Translation, key: &str) -> &'t TlsRoute {
    match t.resources.get(&ResourceKey::TlsRoute(key.into())) {
        Some(Resource::TlsRoute(r)) => r,
        _ => panic!("no TLSRoute {key}; have {:?}; {:?}", keys(t), problems(t)),
    }
}

const HTTPS: &str = "
  - name: https
    port: 443
    protocol: HTTPS
    allowedRoutes: {namespaces: {from: All}}
    tls: {certificateRefs: [{name: good}, {name: missing}, {name: opaque}, {name: broken}, {name: far, namespace: other}]}";

#[test]
fn certificate_refs_resolve_to_checked_secrets() {
    let key = rcgen::KeyPair::generate().unwrap();
    let expired = {
        let mut p = rcgen::CertificateParams::new(vec!["old.example.com".to_string()]).unwrap();
        p.not_before = rcgen::date_time_ymd(2019, 1, 1);
        p.not_after = rcgen::date_time_ymd(2020, 1, 1);
        p.self_signed(&key).unwrap().pem()
    };
    let t = run(&[
        CLASS,
        &gateway(HTTPS),
        &tls_secret("infra", "good", &["good.example.com"]),
        &secret("infra", "opaque", "Opaque", "x", "y"),
        &secret(
            "infra",
            "broken",
            "kubernetes.io/tls",
            &expired,
            &key.serialize_pem(),
        ),
        &tls_secret("other", "far", &["far.example.com"]),
    ]);
    let at = "Gateway infra/gw: spec.listeners[0].tls.certificateRefs";
    assert_eq!(
        problems(&t),
        [
            format!("{at}[1]: InvalidCertificateRef: Secret infra/missing not found"),
            format!(
                "{at}[2]: InvalidCertificateRef: Secret infra/opaque is of type Opaque, not kubernetes.io/tls"
            ),
            format!(
                "{at}[3]: InvalidCertificateRef: Secret infra/broken: tls.crt: certificate expired at 2020-01-01T00:00:00Z (Unix time 1577836800)"
            ),
            format!("{at}[4]: RefNotPermitted: no ReferenceGrant in other allows Secret far"),
        ]
    );
    // Only the invalid content is marked rejected: a caller keeps its last good version.
    let rejected: Vec<_> = t
        .problems
        .iter()
        .filter_map(|p| p.rejected.clone())
        .collect();
    assert_eq!(rejected, [ResourceKey::Certificate("infra/broken".into())]);
    let tls = listener(&t, "infra/gw/https").tls.clone().unwrap();
    assert_eq!(
        tls.certificates,
        [
            CertificateKey::from("infra/broken"),
            CertificateKey::from("infra/good")
        ]
    );
    let certs: Vec<_> = keys(&t)
        .into_iter()
        .filter(|k| k.starts_with("Certificate"))
        .collect();
    assert_eq!(certs, ["Certificate infra/good"]);
}

#[test]
fn grpc_routes_attach_to_https_listeners_with_matches_and_filters() {
    let grpc = "apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: echo, namespace: apps, generation: 2}
spec:
  parentRefs: [{name: gw, namespace: infra}]
  hostnames: [grpc.example.com]
  rules:
  - matches:
    - method: {service: pkg.Echo, method: Say}
      headers: [{name: x-tenant, value: blue}]
    - method: {type: RegularExpression, service: 'pkg\\.v[0-9]+\\.Echo'}
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {add: [{name: x-via, value: gatehouse}]}
    backendRefs: [{name: echo, port: 9000}]
  - backendRefs: [{name: nowhere, port: 9000}]
";
    let t = run(&[
        CLASS,
        &gateway(HTTPS),
        &tls_secret("infra", "good", &["grpc.example.com"]),
        grpc,
        &service("apps", "echo", "[{port: 9000}]"),
    ]);
    let r = grpc_route(&t, "apps/echo");
    assert_eq!(r.version, 2);
    assert_eq!(r.parents, [ListenerKey::new("infra", "gw", "https")]);
    let m = &r.rules[0].matches;
    let method = m[0].method.as_ref().unwrap();
    assert_eq!(
        (
            method.kind,
            method.service.as_deref(),
            method.method.as_deref()
        ),
        (GrpcMethodMatchType::Exact, Some("pkg.Echo"), Some("Say"))
    );
    assert_eq!(m[0].headers[0].name, "x-tenant");
    assert_eq!(
        m[1].method.as_ref().unwrap().kind,
        GrpcMethodMatchType::RegularExpression
    );
    assert!(matches!(
        r.rules[0].filters[0],
        HttpFilter::RequestHeaderModifier(_)
    ));
    assert_eq!(
        r.rules[0].backends[0].target,
        BackendTarget::Service("apps/echo:9000".into())
    );
    assert!(matches!(
        r.rules[1].backends[0].target,
        BackendTarget::Invalid(_)
    ));
    assert!(keys(&t).contains(&"Backend apps/echo:9000".to_string()));
    assert!(
        problems(&t)
            .iter()
            .any(|p| p
                .starts_with("GRPCRoute apps/echo: spec.rules[1].backendRefs[0]: BackendNotFound")),
        "{:?}",
        problems(&t)
    );
}

#[test]
fn tls_routes_attach_to_tls_listeners_only() {
    let gw = gateway(
        "
  - {name: pass, port: 8443, protocol: TLS, tls: {mode: Passthrough}, allowedRoutes: {namespaces: {from: All}}}
  - {name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}",
    );
    let tls_route_yaml = |name: &str, section: &str| {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1alpha2
kind: TLSRoute
metadata: {{name: {name}, namespace: apps}}
spec:
  parentRefs: [{{name: gw, namespace: infra, sectionName: {section}}}]
  hostnames: [db.example.com]
  rules: [{{backendRefs: [{{name: db, port: 5432}}]}}]
"
        )
    };
    let t = run(&[
        CLASS,
        &gw,
        &tls_route_yaml("db", "pass"),
        &tls_route_yaml("wrong", "http"),
        &route(
            "apps",
            "web",
            "  parentRefs: [{name: gw, namespace: infra, sectionName: pass}]\n",
        ),
        &service("apps", "db", "[{port: 5432}]"),
    ]);
    let r = tls_route(&t, "apps/db");
    assert_eq!(r.hostnames, ["db.example.com"]);
    assert_eq!(r.parents, [ListenerKey::new("infra", "gw", "pass")]);
    assert_eq!(
        r.rules[0].backends[0].target,
        BackendTarget::Service("apps/db:5432".into())
    );
    assert_eq!(
        problems(&t),
        [
            "HTTPRoute apps/web: spec.parentRefs[0]: NotAllowedByListeners: no selected listener of Gateway infra/gw admits HTTPRoutes from namespace apps",
            "TLSRoute apps/wrong: spec.parentRefs[0]: NotAllowedByListeners: no selected listener of Gateway infra/gw admits TLSRoutes from namespace apps",
        ]
    );
    // A passthrough listener carries no certificates.
    assert_eq!(
        listener(&t, "infra/gw/pass")
            .tls
            .as_ref()
            .unwrap()
            .certificates,
        []
    );
}
