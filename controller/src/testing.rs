//! Fake objects for unit tests, written as the YAML a user would apply.

use gatehouse_core::manifest::{self, Object};

pub const CLASS: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: gatehouse, generation: 1}
spec: {controllerName: gatehouse.dev/gateway-controller}
";

/// A Gateway with one HTTP listener `http`; `extra` is appended inside `spec`.
pub fn gateway(ns: &str, name: &str, port: u16, extra: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: {ns}, generation: 2}}
spec:
  gatewayClassName: gatehouse
  listeners:
  - {{name: http, protocol: HTTP, port: {port}}}
{extra}"
    )
}

/// An HTTPRoute on Gateway `ns/gw` with one rule sending to `backend:80`.
pub fn route(ns: &str, name: &str, gw: &str, backend: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {ns}, generation: 3}}
spec:
  parentRefs: [{{name: {gw}}}]
  hostnames: [app.example.com]
  rules:
  - backendRefs: [{{name: {backend}, port: 80}}]
"
    )
}

pub fn service(ns: &str, name: &str) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {ns}}}
spec:
  ports: [{{name: http, port: 80}}]
"
    )
}

pub fn parse(docs: &[&str]) -> Vec<Object> {
    docs.iter()
        .flat_map(|d| match manifest::parse("test.yaml", d) {
            Ok(m) => m.objects,
            Err(e) => panic!("{e}"),
        })
        .collect()
}

/// A Tenant owning `namespace` and `domains` (a flow-style list), granted listener `section`
/// of the shared Gateway `infra/shared`; `first_come` lets it use unassigned hostnames.
pub fn tenant(
    name: &str,
    namespace: &str,
    domains: &str,
    section: &str,
    first_come: bool,
) -> gatehouse_crds::Tenant {
    serde_yaml::from_str(&format!(
        "apiVersion: gatehouse.dev/v1alpha1
kind: Tenant
metadata: {{name: {name}, generation: 1, creationTimestamp: '2026-01-01T00:00:00Z'}}
spec:
  namespaces: {{names: [{namespace}]}}
  domains: {domains}
  allowUnassignedHostnames: {first_come}
  listeners: [{{gatewayNamespace: infra, gatewayName: shared, sectionNames: [{section}]}}]
"
    ))
    .unwrap()
}
