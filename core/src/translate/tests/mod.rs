//! Translation tests: inputs are YAML, read through `manifest` as the proxy would.

mod attachment;
mod backends;
mod gateways;
mod incremental;
mod listener_sets;
mod rules;
mod tls;

use super::{TranslateOptions, Translation, translate};
use crate::manifest::{self, Object};
use crate::model::{Backend, HttpRoute, Listener, Resource, ResourceKey};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

pub(super) const CONTROLLER: &str = "gatehouse.dev/gateway-controller";

pub(super) const CLASS: &str = "
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: gatehouse}
spec: {controllerName: gatehouse.dev/gateway-controller}
";

pub(super) fn opts() -> TranslateOptions {
    TranslateOptions {
        controller_name: CONTROLLER.to_string(),
        default_address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        accept_gateways_without_class: false,
    }
}

pub(super) fn objects(docs: &[&str]) -> Vec<Object> {
    let text = docs.join("\n---\n");
    manifest::parse("test.yaml", &text)
        .unwrap_or_else(|e| panic!("{e}"))
        .objects
}

pub(super) fn run(docs: &[&str]) -> Translation {
    translate(&objects(docs), &opts())
}

/// A Gateway `infra/gw` of the `gatehouse` class with the given flow-style listener list.
pub(super) fn gateway(listeners: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: infra, generation: 3}}
spec:
  gatewayClassName: gatehouse
  listeners: {listeners}
"
    )
}

/// An HTTPRoute with the given `spec` (YAML, indented by two spaces).
pub(super) fn route(namespace: &str, name: &str, spec: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {namespace}}}
spec:
{spec}"
    )
}

pub(super) fn service(namespace: &str, name: &str, ports: &str) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {namespace}}}
spec: {{ports: {ports}}}
"
    )
}

/// A `kubernetes.io/tls` Secret with a fresh self-signed certificate for `names`.
pub(super) fn tls_secret(namespace: &str, name: &str, names: &[&str]) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap()
            .self_signed(&key)
            .unwrap();
    secret(
        namespace,
        name,
        "kubernetes.io/tls",
        &cert.pem(),
        &key.serialize_pem(),
    )
}

pub(super) fn secret(namespace: &str, name: &str, kind: &str, crt: &str, key: &str) -> String {
    let indent = |pem: &str| {
        pem.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    format!(
        "apiVersion: v1
kind: Secret
metadata: {{name: {name}, namespace: {namespace}}}
type: {kind}
stringData:
  tls.crt: |
{}  tls.key: |
{}",
        indent(crt),
        indent(key)
    )
}

pub(super) fn problems(t: &Translation) -> Vec<String> {
    t.problems.iter().map(ToString::to_string).collect()
}

pub(super) fn keys(t: &Translation) -> Vec<String> {
    t.resources.keys().map(ToString::to_string).collect()
}

pub(super) fn listener<'t>(t: &'t Translation, key: &str) -> &'t Listener {
    match t.resources.get(&ResourceKey::Listener(key.into())) {
        Some(Resource::Listener(l)) => l,
        _ => panic!("no listener {key}; have {:?}", keys(t)),
    }
}

pub(super) fn http_route<'t>(t: &'t Translation, key: &str) -> &'t HttpRoute {
    match t.resources.get(&ResourceKey::HttpRoute(key.into())) {
        Some(Resource::HttpRoute(r)) => r,
        _ => panic!(
            "no route {key}; have {:?}; problems {:?}",
            keys(t),
            problems(t)
        ),
    }
}

pub(super) fn backend<'t>(t: &'t Translation, key: &str) -> &'t Backend {
    match t.resources.get(&ResourceKey::Backend(key.into())) {
        Some(Resource::Backend(b)) => b,
        _ => panic!("no backend {key}; have {:?}", keys(t)),
    }
}

#[test]
fn output_does_not_depend_on_input_order() {
    let docs = [
        CLASS.to_string(),
        gateway(
            "[{name: http, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: All}}}]",
        ),
        route(
            "apps",
            "a",
            "  parentRefs: [{name: gw, namespace: infra}]\n  rules: [{backendRefs: [{name: web, port: 80}]}]\n",
        ),
        route(
            "apps",
            "b",
            "  parentRefs: [{name: gw, namespace: infra}]\n  rules: [{backendRefs: [{name: missing, port: 80}]}]\n",
        ),
        service("apps", "web", "[{port: 80}]"),
    ];
    let forward: Vec<&str> = docs.iter().map(String::as_str).collect();
    let mut backward = forward.clone();
    backward.reverse();
    assert_eq!(run(&forward), run(&backward));
}

#[test]
fn duplicate_objects_keep_the_first() {
    let t = run(&[
        CLASS,
        &service("apps", "web", "[{port: 80}]"),
        &service("apps", "web", "[{port: 81}]"),
    ]);
    assert_eq!(
        problems(&t),
        ["Service apps/web: metadata.name: defined more than once; the first definition is used"]
    );
}
