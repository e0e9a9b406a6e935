//! Uniform views of the hostnames and references inside the different route kinds.
//!
//! HTTPRoute, GRPCRoute, TLSRoute and TenantRoute each have their own generated Rust types
//! for parentRefs and backendRefs, with the same JSON shape. Reading them through JSON keeps
//! one implementation, and finds backend references nested in filters (request mirrors,
//! external auth) that a hand-written walk would have to be updated for with every release.

use crate::object::Object;
use serde::Serialize;
use serde_json::Value;

/// A hostname as written, with where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HostnameField {
    pub field: String,
    pub hostname: String,
}

/// A reference to another object (backendRef, parentRef, certificateRef).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reference {
    pub field: String,
    pub group: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub section_name: Option<String>,
}

impl Reference {
    pub fn namespace_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.namespace.as_deref().unwrap_or(default)
    }
}

pub(crate) fn hostnames(object: &Object) -> Vec<HostnameField> {
    let list = |field: &str, hs: &mut dyn Iterator<Item = &str>| -> Vec<HostnameField> {
        hs.enumerate()
            .map(|(i, h)| HostnameField {
                field: format!("{field}[{i}]"),
                hostname: h.to_string(),
            })
            .collect()
    };
    match object {
        Object::TenantRoute(r) => list(
            "spec.hostnames",
            &mut r.spec.hostnames.iter().map(|h| h.as_str()),
        ),
        Object::TenantCertificate(c) => list(
            "spec.hostnames",
            &mut c.spec.hostnames.iter().map(|h| h.as_str()),
        ),
        Object::HttpRoute(r) => list(
            "spec.hostnames",
            &mut r.spec.hostnames.iter().flatten().map(String::as_str),
        ),
        Object::GrpcRoute(r) => list(
            "spec.hostnames",
            &mut r.spec.hostnames.iter().flatten().map(String::as_str),
        ),
        Object::TlsRoute(r) => list(
            "spec.hostnames",
            &mut r.spec.hostnames.iter().map(String::as_str),
        ),
        Object::ListenerSet(ls) => ls
            .spec
            .listeners
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                l.hostname.as_ref().map(|h| HostnameField {
                    field: format!("spec.listeners[{i}].hostname"),
                    hostname: h.clone(),
                })
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Every backend reference in the route's rules, including those inside filters.
pub(crate) fn backend_refs(object: &Object) -> Vec<Reference> {
    let mut out = Vec::new();
    match object {
        Object::TenantRoute(r) => {
            walk(&to_json(&r.spec.http), "spec.http", &mut out);
            walk(&to_json(&r.spec.grpc), "spec.grpc", &mut out);
        }
        Object::HttpRoute(r) => walk(&to_json(&r.spec.rules), "spec.rules", &mut out),
        Object::GrpcRoute(r) => walk(&to_json(&r.spec.rules), "spec.rules", &mut out),
        Object::TlsRoute(r) => walk(&to_json(&r.spec.rules), "spec.rules", &mut out),
        _ => {}
    }
    out
}

/// parentRefs of a standard route; `None` for kinds that have none.
pub(crate) fn parent_refs(object: &Object) -> Option<Vec<Reference>> {
    let refs = match object {
        Object::HttpRoute(r) => to_json(&r.spec.parent_refs),
        Object::GrpcRoute(r) => to_json(&r.spec.parent_refs),
        Object::TlsRoute(r) => to_json(&r.spec.parent_refs),
        _ => return None,
    };
    let Value::Array(items) = refs else {
        return Some(Vec::new());
    };
    Some(
        items
            .iter()
            .enumerate()
            .map(|(i, v)| reference(v, format!("spec.parentRefs[{i}]"), "Gateway", GATEWAY))
            .collect(),
    )
}

/// True when the route asks to attach to the cluster's default Gateways, which bypasses
/// parentRefs and so the Tenant's listener grant.
pub(crate) fn uses_default_gateways(object: &Object) -> bool {
    let value = match object {
        Object::HttpRoute(r) => to_json(&r.spec.use_default_gateways),
        Object::GrpcRoute(r) => to_json(&r.spec.use_default_gateways),
        Object::TlsRoute(r) => to_json(&r.spec.use_default_gateways),
        _ => return false,
    };
    matches!(value, Value::String(s) if s != "None")
}

const GATEWAY: &str = crate::object::GATEWAY_GROUP;

fn to_json<T: Serialize>(value: &T) -> Value {
    // These are plain generated structs; serialization cannot fail, and Null simply yields
    // no references if it ever did.
    serde_json::to_value(value).unwrap_or(Value::Null)
}

fn walk(value: &Value, path: &str, out: &mut Vec<Reference>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_path = format!("{path}.{key}");
                match (key.as_str(), child) {
                    ("backendRefs", Value::Array(items)) => {
                        for (i, item) in items.iter().enumerate() {
                            let item_path = format!("{child_path}[{i}]");
                            out.push(reference(item, item_path.clone(), "Service", ""));
                            walk(item, &item_path, out);
                        }
                    }
                    ("backendRef", Value::Object(_)) => {
                        out.push(reference(child, child_path, "Service", ""));
                    }
                    _ => walk(child, &child_path, out),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

fn reference(value: &Value, field: String, default_kind: &str, default_group: &str) -> Reference {
    let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
    Reference {
        field,
        group: text("group").unwrap_or_else(|| default_group.to_string()),
        kind: text("kind").unwrap_or_else(|| default_kind.to_string()),
        name: text("name").unwrap_or_default(),
        namespace: text("namespace"),
        section_name: text("sectionName"),
    }
}
