//! Compact constructors for the objects the policy reads, shared by this crate's tests, the
//! attack matrix and (later) the webhook's end-to-end tests.

use crate::object::{Kind, Object};
use crate::request::UserInfo;
use crate::snapshot::Objects;
use gatehouse_crds::{
    Hostname, ListenerGrant, Tenant, TenantCertificate, TenantCertificateSpec, TenantRoute,
    TenantSpec,
};
use gateway_api::experimental::gatewayclasses::GatewayClass;
use gateway_api::experimental::gateways::Gateway;
use gateway_api::experimental::grpcroutes::GrpcRoute;
use gateway_api::experimental::httproutes::HttpRoute;
use gateway_api::experimental::listenersets::ListenerSet;
use gateway_api::experimental::referencegrants::ReferenceGrant;
use gateway_api::experimental::tlsroutes::TlsRoute;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, Time};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// A creation time `seconds` after the Unix epoch.
pub fn at(seconds: i64) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(seconds).expect("timestamp in range"))
}

pub fn meta(namespace: Option<&str>, name: &str, created: Option<i64>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        creation_timestamp: created.map(at),
        ..ObjectMeta::default()
    }
}

/// Builds typed objects through their JSON form, which is how the webhook receives them.
fn from_json<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("fixture matches the generated type")
}

pub fn admin() -> UserInfo {
    UserInfo::new(
        "platform-admin",
        &["system:masters", "system:authenticated"],
    )
}

pub fn tenant_user(tenant: &str) -> UserInfo {
    UserInfo::new(
        &format!("{tenant}-dev"),
        &[&format!("tenants:{tenant}"), "system:authenticated"],
    )
}

pub struct TenantBuilder(Tenant);

pub fn tenant(name: &str) -> TenantBuilder {
    let mut t = Tenant::new(name, TenantSpec::default());
    t.metadata.creation_timestamp = Some(at(0));
    TenantBuilder(t)
}

impl TenantBuilder {
    pub fn namespaces(mut self, names: &[&str]) -> Self {
        self.0.spec.namespaces.names = names.iter().map(|n| n.to_string()).collect();
        self
    }

    pub fn selector(mut self, key: &str, value: &str) -> Self {
        self.0.spec.namespaces.selector = Some(LabelSelector {
            match_labels: Some([(key.to_string(), value.to_string())].into()),
            match_expressions: None,
        });
        self
    }

    pub fn domains(mut self, domains: &[&str]) -> Self {
        self.0.spec.domains = domains.iter().map(|d| Hostname::from(*d)).collect();
        self
    }

    pub fn allow_unassigned(mut self) -> Self {
        self.0.spec.allow_unassigned_hostnames = true;
        self
    }

    pub fn listener(mut self, namespace: &str, gateway: &str, sections: &[&str]) -> Self {
        self.0.spec.listeners.push(ListenerGrant {
            gateway_namespace: namespace.to_string(),
            gateway_name: gateway.to_string(),
            section_names: sections.iter().map(|s| s.to_string()).collect(),
        });
        self
    }

    pub fn listener_set_ports(mut self, ports: &[i32]) -> Self {
        self.0.spec.listener_set_ports = ports.to_vec();
        self
    }

    pub fn route_limit(mut self, limit: i64) -> Self {
        self.0.spec.limits.routes = Some(limit);
        self
    }

    pub fn hostname_limit(mut self, limit: i64) -> Self {
        self.0.spec.limits.hostnames = Some(limit);
        self
    }

    pub fn certificate_limit(mut self, limit: i64) -> Self {
        self.0.spec.limits.certificates = Some(limit);
        self
    }

    pub fn created(mut self, seconds: i64) -> Self {
        self.0.metadata.creation_timestamp = Some(at(seconds));
        self
    }

    pub fn build(self) -> Tenant {
        self.0
    }

    pub fn object(self) -> Object {
        Object::Tenant(self.0)
    }
}

pub fn namespace(name: &str, labels: &[(&str, &str)]) -> Namespace {
    let mut ns = Namespace {
        metadata: meta(None, name, Some(0)),
        ..Namespace::default()
    };
    if !labels.is_empty() {
        ns.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
    }
    ns
}

/// One route, buildable as any route kind.
#[derive(Clone, Debug)]
pub struct RouteBuilder {
    namespace: String,
    name: String,
    created: Option<i64>,
    hostnames: Vec<String>,
    backends: Vec<Value>,
    mirror: Option<Value>,
    parents: Vec<Value>,
    default_gateways: bool,
}

pub fn route(namespace: &str, name: &str) -> RouteBuilder {
    RouteBuilder {
        namespace: namespace.to_string(),
        name: name.to_string(),
        created: Some(1_000),
        hostnames: Vec::new(),
        backends: Vec::new(),
        mirror: None,
        parents: Vec::new(),
        default_gateways: false,
    }
}

fn backend_json(namespace: Option<&str>, name: &str) -> Value {
    let mut b = json!({"name": name, "port": 80});
    if let Some(ns) = namespace {
        b["namespace"] = json!(ns);
    }
    b
}

impl RouteBuilder {
    pub fn hostnames(mut self, hostnames: &[&str]) -> Self {
        self.hostnames = hostnames.iter().map(|h| h.to_string()).collect();
        self
    }

    pub fn created(mut self, seconds: i64) -> Self {
        self.created = Some(seconds);
        self
    }

    /// A Service backend; `namespace: None` means the route's own namespace.
    pub fn backend(mut self, namespace: Option<&str>, service: &str) -> Self {
        self.backends.push(backend_json(namespace, service));
        self
    }

    pub fn backend_of_kind(mut self, group: &str, kind: &str, name: &str) -> Self {
        self.backends
            .push(json!({"group": group, "kind": kind, "name": name, "port": 80}));
        self
    }

    pub fn mirror_to(mut self, namespace: Option<&str>, service: &str) -> Self {
        self.mirror = Some(backend_json(namespace, service));
        self
    }

    pub fn parent(mut self, namespace: &str, gateway: &str, section: Option<&str>) -> Self {
        let mut p = json!({"name": gateway, "namespace": namespace});
        if let Some(s) = section {
            p["sectionName"] = json!(s);
        }
        self.parents.push(p);
        self
    }

    pub fn parent_listener_set(mut self, namespace: &str, name: &str) -> Self {
        self.parents
            .push(json!({"kind": "ListenerSet", "name": name, "namespace": namespace}));
        self
    }

    pub fn default_gateways(mut self) -> Self {
        self.default_gateways = true;
        self
    }

    fn rules(&self, with_filters: bool) -> Value {
        let backends = if self.backends.is_empty() {
            vec![backend_json(None, "web")]
        } else {
            self.backends.clone()
        };
        let mut rule = json!({"backendRefs": backends});
        if let (Some(mirror), true) = (&self.mirror, with_filters) {
            rule["filters"] =
                json!([{"type": "RequestMirror", "requestMirror": {"backendRef": mirror}}]);
        }
        json!([rule])
    }

    fn metadata(&self) -> Value {
        serde_json::to_value(meta(Some(&self.namespace), &self.name, self.created))
            .expect("metadata serializes")
    }

    fn standard(&self, kind: &str, with_filters: bool) -> Value {
        let mut spec = json!({"rules": self.rules(with_filters)});
        if !self.hostnames.is_empty() {
            spec["hostnames"] = json!(self.hostnames);
        }
        if !self.parents.is_empty() {
            spec["parentRefs"] = json!(self.parents);
        }
        if self.default_gateways {
            spec["useDefaultGateways"] = json!("All");
        }
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": kind,
            "metadata": self.metadata(),
            "spec": spec,
        })
    }

    pub fn tenant_route(&self) -> TenantRoute {
        self.tenant_route_with("http")
    }

    pub fn tenant_grpc_route(&self) -> TenantRoute {
        self.tenant_route_with("grpc")
    }

    fn tenant_route_with(&self, protocol: &str) -> TenantRoute {
        from_json(json!({
            "apiVersion": "gatehouse.dev/v1alpha1",
            "kind": "TenantRoute",
            "metadata": self.metadata(),
            "spec": {"hostnames": self.hostnames, protocol: self.rules(true)},
        }))
    }

    pub fn http_route(&self) -> HttpRoute {
        from_json(self.standard("HTTPRoute", true))
    }

    pub fn grpc_route(&self) -> GrpcRoute {
        from_json(self.standard("GRPCRoute", true))
    }

    pub fn tls_route(&self) -> TlsRoute {
        let mut value = self.standard("TLSRoute", false);
        if value["spec"].get("hostnames").is_none() {
            value["spec"]["hostnames"] = json!([]);
        }
        from_json(value)
    }

    pub fn object(&self, kind: Kind) -> Object {
        match kind {
            Kind::HttpRoute => Object::HttpRoute(self.http_route()),
            Kind::GrpcRoute => Object::GrpcRoute(self.grpc_route()),
            Kind::TlsRoute => Object::TlsRoute(self.tls_route()),
            _ => Object::TenantRoute(self.tenant_route()),
        }
    }
}

pub fn certificate(namespace: &str, name: &str, hostnames: &[&str]) -> TenantCertificate {
    TenantCertificate {
        metadata: meta(Some(namespace), name, Some(1_000)),
        spec: TenantCertificateSpec {
            hostnames: hostnames.iter().map(|h| Hostname::from(*h)).collect(),
            secret_name: format!("{name}-tls"),
        },
        status: None,
    }
}

/// A ListenerSet; add listeners with [`ListenerSetBuilder::listener`].
pub struct ListenerSetBuilder {
    value: Value,
}

pub fn listener_set(
    namespace: &str,
    name: &str,
    gateway_ns: &str,
    gateway: &str,
) -> ListenerSetBuilder {
    ListenerSetBuilder {
        value: json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "ListenerSet",
            "metadata": serde_json::to_value(meta(Some(namespace), name, Some(1_000))).expect("metadata"),
            "spec": {
                "parentRef": {"name": gateway, "namespace": gateway_ns},
                "listeners": [],
            },
        }),
    }
}

impl ListenerSetBuilder {
    pub fn listener(mut self, name: &str, hostname: Option<&str>, port: i32) -> Self {
        let mut l = json!({"name": name, "port": port, "protocol": "HTTPS"});
        if let Some(h) = hostname {
            l["hostname"] = json!(h);
        }
        push(&mut self.value["spec"]["listeners"], l);
        self
    }

    /// Adds a certificateRef to the last listener.
    pub fn certificate(mut self, namespace: Option<&str>, secret: &str) -> Self {
        let mut r = json!({"name": secret});
        if let Some(ns) = namespace {
            r["namespace"] = json!(ns);
        }
        if let Some(Value::Array(listeners)) = self.value["spec"].get_mut("listeners")
            && let Some(last) = listeners.last_mut()
        {
            push(&mut last["tls"]["certificateRefs"], r);
        }
        self
    }

    pub fn build(self) -> ListenerSet {
        from_json(self.value)
    }
}

fn push(array: &mut Value, item: Value) {
    match array {
        Value::Array(items) => items.push(item),
        other => *other = json!([item]),
    }
}

/// A ReferenceGrant in `namespace` letting `from_kind` objects in `from_namespace` reach
/// Services (all of them, or the one named).
pub fn reference_grant(
    namespace: &str,
    name: &str,
    from_kind: Kind,
    from_namespace: &str,
    service: Option<&str>,
) -> ReferenceGrant {
    let mut to = json!({"group": "", "kind": "Service"});
    if let Some(s) = service {
        to["name"] = json!(s);
    }
    from_json(json!({
        "apiVersion": "gateway.networking.k8s.io/v1beta1",
        "kind": "ReferenceGrant",
        "metadata": serde_json::to_value(meta(Some(namespace), name, Some(0))).expect("metadata"),
        "spec": {
            "from": [{"group": from_kind.group(), "kind": from_kind.as_str(), "namespace": from_namespace}],
            "to": [to],
        },
    }))
}

pub fn gateway(namespace: &str, name: &str, listeners: &[(&str, i32)]) -> Gateway {
    let listeners: Vec<Value> = listeners
        .iter()
        .map(|(n, port)| json!({"name": n, "port": port, "protocol": "HTTP"}))
        .collect();
    from_json(json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": serde_json::to_value(meta(Some(namespace), name, Some(0))).expect("metadata"),
        "spec": {"gatewayClassName": "gatehouse", "listeners": listeners},
    }))
}

pub fn gateway_class(name: &str) -> GatewayClass {
    from_json(json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "GatewayClass",
        "metadata": {"name": name},
        "spec": {"controllerName": "gatehouse.dev/controller"},
    }))
}

/// A world at platform scale for benchmarks: every tenant owns a wildcard and an exact
/// domain, may take unassigned hostnames, and has `routes_per_tenant` routes under its
/// wildcard.
pub fn scale_world(tenants: usize, routes_per_tenant: usize) -> Objects {
    let mut w = Objects::default();
    for t in 0..tenants {
        let name = format!("t{t}");
        w.tenants.push(
            tenant(&name)
                .created(t as i64)
                .namespaces(&[&name])
                .domains(&[
                    &format!("*.{name}.example.com"),
                    &format!("{name}.example.org"),
                ])
                .allow_unassigned()
                .listener("gw", "public", &[])
                .route_limit(1_000)
                .hostname_limit(1_000)
                .build(),
        );
        w.namespaces.push(namespace(&name, &[]));
        for r in 0..routes_per_tenant {
            w.tenant_routes.push(
                route(&name, &format!("r{r}"))
                    .hostnames(&[&format!("r{r}.{name}.example.com")])
                    .tenant_route(),
            );
        }
    }
    w
}
