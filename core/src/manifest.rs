//! Reads the Kubernetes objects Gatehouse cares about out of YAML text.
//!
//! A file is all or nothing: if one document is malformed the whole file is refused, so a
//! caller watching a directory keeps serving that file's last good version instead of a
//! half-edited one. Objects of kinds we do not use are skipped and reported as warnings.

use gateway_api::experimental::gatewayclasses::GatewayClass;
use gateway_api::experimental::gateways::Gateway;
use gateway_api::experimental::grpcroutes::GrpcRoute;
use gateway_api::experimental::httproutes::HttpRoute;
use gateway_api::experimental::listenersets::ListenerSet;
use gateway_api::experimental::referencegrants::ReferenceGrant;
use gateway_api::experimental::tlsroutes::TlsRoute;
use k8s_openapi::api::core::v1::{Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_yaml::Value;
use std::fmt;
use std::sync::Arc;
use thiserror::Error;

const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";
/// Versions whose schema the experimental v1 types can read for the kinds we use.
const GATEWAY_VERSIONS: [&str; 2] = ["v1", "v1beta1"];
/// TLSRoute reached v1 late; manifests written for the alpha versions read the same.
const TLS_ROUTE_VERSIONS: [&str; 3] = ["v1", "v1alpha3", "v1alpha2"];
/// What the API server assumes when an object of a namespaced kind names no namespace.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Every kind is shared: a watch cache already holds each object in an `Arc`, a pass copies
/// the list of them each time (at 10,000 routes, 800-odd bytes inline per object made that
/// copy tens of megabytes), and a translation that remembers routes tells an unchanged one
/// by its pointer.
#[derive(Clone, PartialEq)]
pub enum Object {
    GatewayClass(Arc<GatewayClass>),
    Gateway(Arc<Gateway>),
    HttpRoute(Arc<HttpRoute>),
    ReferenceGrant(Arc<ReferenceGrant>),
    Service(Arc<Service>),
    EndpointSlice(Arc<EndpointSlice>),
    Namespace(Arc<Namespace>),
    GrpcRoute(Arc<GrpcRoute>),
    TlsRoute(Arc<TlsRoute>),
    /// Listeners added to a Gateway by whoever its `allowedListeners` admits.
    ListenerSet(Arc<ListenerSet>),
    /// Only `kubernetes.io/tls` Secrets are used (as listener certificates).
    Secret(Arc<Secret>),
}

impl fmt::Debug for Object {
    // Secrets hold private keys: their content never reaches logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::GatewayClass(o) => o.fmt(f),
            Object::Gateway(o) => o.fmt(f),
            Object::HttpRoute(o) => o.fmt(f),
            Object::ReferenceGrant(o) => o.fmt(f),
            Object::Service(o) => o.fmt(f),
            Object::EndpointSlice(o) => o.fmt(f),
            Object::Namespace(o) => o.fmt(f),
            Object::GrpcRoute(o) => o.fmt(f),
            Object::TlsRoute(o) => o.fmt(f),
            Object::ListenerSet(o) => o.fmt(f),
            Object::Secret(o) => f
                .debug_struct("Secret")
                .field("metadata", &o.metadata)
                .field("type", &o.type_)
                .finish_non_exhaustive(),
        }
    }
}

impl Object {
    /// The Kubernetes kind, as written in YAML.
    pub fn kind(&self) -> &'static str {
        match self {
            Object::GatewayClass(_) => "GatewayClass",
            Object::Gateway(_) => "Gateway",
            Object::HttpRoute(_) => "HTTPRoute",
            Object::ReferenceGrant(_) => "ReferenceGrant",
            Object::Service(_) => "Service",
            Object::EndpointSlice(_) => "EndpointSlice",
            Object::Namespace(_) => "Namespace",
            Object::GrpcRoute(_) => "GRPCRoute",
            Object::TlsRoute(_) => "TLSRoute",
            Object::ListenerSet(_) => "ListenerSet",
            Object::Secret(_) => "Secret",
        }
    }

    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Object::GatewayClass(o) => &o.metadata,
            Object::Gateway(o) => &o.metadata,
            Object::HttpRoute(o) => &o.metadata,
            Object::ReferenceGrant(o) => &o.metadata,
            Object::Service(o) => &o.metadata,
            Object::EndpointSlice(o) => &o.metadata,
            Object::Namespace(o) => &o.metadata,
            Object::GrpcRoute(o) => &o.metadata,
            Object::TlsRoute(o) => &o.metadata,
            Object::ListenerSet(o) => &o.metadata,
            Object::Secret(o) => &o.metadata,
        }
    }

    /// `None` for cluster-scoped kinds; namespaced objects parsed here always have one.
    pub fn namespace(&self) -> Option<&str> {
        if is_namespaced(self.kind()) {
            Some(
                self.metadata()
                    .namespace
                    .as_deref()
                    .unwrap_or(DEFAULT_NAMESPACE),
            )
        } else {
            None
        }
    }

    pub fn name(&self) -> &str {
        self.metadata().name.as_deref().unwrap_or_default()
    }

    /// `HTTPRoute ns/name`, or `GatewayClass name` for cluster-scoped kinds.
    pub fn display(&self) -> String {
        describe(self.kind(), self.namespace(), self.name())
    }
}

fn describe(kind: &str, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

fn is_namespaced(kind: &str) -> bool {
    !matches!(kind, "GatewayClass" | "Namespace")
}

/// The objects of one file, and what was skipped in it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Manifest {
    pub objects: Vec<Object>,
    pub warnings: Vec<ManifestWarning>,
}

/// An object that was skipped, not an error: the file is still used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestWarning {
    pub file: String,
    /// 1-based, counting `---` separated documents as editors do.
    pub document: usize,
    pub object: String,
    pub reason: String,
}

impl fmt::Display for ManifestWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.file, self.object, self.reason)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub struct ManifestError {
    pub file: String,
    /// 1-based, counting `---` separated documents as editors do.
    pub document: usize,
    /// `HTTPRoute default/foo` once the document got far enough to name its object.
    pub object: Option<String>,
    /// Path inside the object, e.g. `spec.rules[0].matches[0].path.type`.
    pub field: Option<String>,
    pub reason: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.file)?;
        match &self.object {
            Some(object) => write!(f, "{object}: ")?,
            None => write!(f, "document {}: ", self.document)?,
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.reason)
    }
}

/// Parses every document of `text`; `file` only labels errors and warnings.
pub fn parse(file: &str, text: &str) -> Result<Manifest, ManifestError> {
    let mut parser = Parser {
        file,
        document: 0,
        out: Manifest::default(),
    };
    for doc in serde_yaml::Deserializer::from_str(text) {
        parser.document += 1;
        let value = Value::deserialize(doc).map_err(|e| parser.error(None, None, e.to_string()))?;
        parser.value(value)?;
    }
    Ok(parser.out)
}

struct Parser<'a> {
    file: &'a str,
    document: usize,
    out: Manifest,
}

impl Parser<'_> {
    fn error(&self, object: Option<String>, field: Option<&str>, reason: String) -> ManifestError {
        ManifestError {
            file: self.file.to_string(),
            document: self.document,
            object,
            field: field.map(str::to_string),
            reason,
        }
    }

    fn value(&mut self, mut value: Value) -> Result<(), ManifestError> {
        if value.is_null() {
            return Ok(());
        }
        if !value.is_mapping() {
            return Err(self.error(
                None,
                None,
                "expected a mapping (a Kubernetes object)".into(),
            ));
        }
        let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_string);
        let kind = text(&value, "kind")
            .ok_or_else(|| self.error(None, Some("kind"), "kind is required".into()))?;
        let api_version = text(&value, "apiVersion")
            .ok_or_else(|| self.error(None, Some("apiVersion"), "apiVersion is required".into()))?;
        if kind == "List" || (kind.ends_with("List") && value.get("items").is_some()) {
            return self.list(value);
        }

        let meta = value.get("metadata");
        let name = meta.map(|m| text(m, "name")).unwrap_or_default();
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            let object = Some(kind.clone());
            return Err(self.error(object, Some("metadata.name"), "name is required".into()));
        };
        let namespace = is_namespaced(&kind).then(|| {
            meta.and_then(|m| text(m, "namespace"))
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string())
        });
        let object = describe(&kind, namespace.as_deref(), &name);
        if let (Some(ns), Some(meta)) = (&namespace, value.get_mut("metadata")) {
            meta["namespace"] = Value::String(ns.clone());
        }

        let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
        let gateway = group == GATEWAY_GROUP && GATEWAY_VERSIONS.contains(&version);
        let parsed = match (kind.as_str(), group, version) {
            ("GatewayClass", _, _) if gateway => {
                self.typed(&object, value).map(Object::GatewayClass)
            }
            ("Gateway", _, _) if gateway => self.typed(&object, value).map(Object::Gateway),
            ("HTTPRoute", _, _) if gateway => self
                .typed(&object, value)
                .map(|r| Object::HttpRoute(Arc::new(r))),
            ("GRPCRoute", _, _) if gateway => self.typed(&object, value).map(Object::GrpcRoute),
            ("ListenerSet", GATEWAY_GROUP, "v1") => {
                self.typed(&object, value).map(Object::ListenerSet)
            }
            ("TLSRoute", GATEWAY_GROUP, v) if TLS_ROUTE_VERSIONS.contains(&v) => {
                self.typed(&object, value).map(Object::TlsRoute)
            }
            ("Secret", "", "v1") => self.typed(&object, value).map(Object::Secret),
            ("ReferenceGrant", _, _) if gateway => {
                self.typed(&object, value).map(Object::ReferenceGrant)
            }
            ("Service", "", "v1") => self.typed(&object, value).map(Object::Service),
            ("Namespace", "", "v1") => self.typed(&object, value).map(Object::Namespace),
            ("EndpointSlice", "discovery.k8s.io", "v1") => {
                self.typed(&object, value).map(Object::EndpointSlice)
            }
            _ => {
                self.out.warnings.push(ManifestWarning {
                    file: self.file.to_string(),
                    document: self.document,
                    object,
                    reason: format!("{api_version} {kind} is not used by Gatehouse; skipped"),
                });
                return Ok(());
            }
        }?;
        self.out.objects.push(parsed);
        Ok(())
    }

    fn list(&mut self, value: Value) -> Result<(), ManifestError> {
        match value.get("items") {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Sequence(items)) => {
                for item in items.clone() {
                    self.value(item)?;
                }
                Ok(())
            }
            Some(_) => Err(self.error(None, Some("items"), "items must be a list".into())),
        }
    }

    fn typed<T: DeserializeOwned>(&self, object: &str, value: Value) -> Result<T, ManifestError> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let field = (e.path().iter().next().is_some()).then(|| e.path().to_string());
            self.error(
                Some(object.to_string()),
                field.as_deref(),
                e.into_inner().to_string(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Manifest {
        parse("test.yaml", text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn multi_document_with_empty_documents() {
        let m = parse_ok(
            r#"
---
# only a comment
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{port: 80, name: http}]
---
---
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: gatehouse}
spec: {controllerName: gatehouse.dev/gateway-controller}
"#,
        );
        let shown: Vec<_> = m.objects.iter().map(Object::display).collect();
        assert_eq!(shown, ["Service default/web", "GatewayClass gatehouse"]);
        assert!(m.warnings.is_empty());
        assert_eq!(m.objects[0].namespace(), Some("default"));
        assert_eq!(
            m.objects[0].metadata().namespace.as_deref(),
            Some("default")
        );
        assert_eq!(m.objects[1].namespace(), None);
        assert_eq!(m.objects[1].name(), "gatehouse");
        assert_eq!(m.objects[1].kind(), "GatewayClass");
    }

    #[test]
    fn empty_file_is_fine() {
        assert!(parse_ok("").objects.is_empty());
        assert!(parse_ok("---\n").objects.is_empty());
    }

    #[test]
    fn list_items_are_expanded() {
        let m = parse_ok(
            r#"
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: apps, labels: {team: a}}
- apiVersion: gateway.networking.k8s.io/v1beta1
  kind: ReferenceGrant
  metadata: {name: g, namespace: apps}
  spec:
    from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: web}]
    to: [{group: "", kind: Service}]
- apiVersion: v1
  kind: ConfigMap
  metadata: {name: cm}
"#,
        );
        let shown: Vec<_> = m.objects.iter().map(Object::display).collect();
        assert_eq!(shown, ["Namespace apps", "ReferenceGrant apps/g"]);
        assert_eq!(m.warnings.len(), 1);
        assert_eq!(m.warnings[0].object, "ConfigMap default/cm");
        assert_eq!(m.warnings[0].document, 1);
    }

    #[test]
    fn unknown_kinds_and_versions_are_warnings() {
        let m = parse_ok(
            r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: x}
---
apiVersion: discovery.k8s.io/v1beta1
kind: EndpointSlice
metadata: {name: s}
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: g}
"#,
        );
        assert!(m.objects.is_empty());
        let docs: Vec<_> = m.warnings.iter().map(|w| w.document).collect();
        assert_eq!(docs, [1, 2, 3]);
        assert_eq!(
            m.warnings[0].to_string(),
            "test.yaml: Deployment x/d: apps/v1 Deployment is not used by Gatehouse; skipped"
        );
    }

    #[test]
    fn bad_field_names_object_and_path() {
        let err = parse(
            "examples/x.yaml",
            r#"
apiVersion: v1
kind: Namespace
metadata: {name: ok}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: foo}
spec:
  rules:
  - matches:
    - path: {type: Prefix, value: /}
"#,
        )
        .unwrap_err();
        assert_eq!(err.document, 2);
        assert_eq!(err.object.as_deref(), Some("HTTPRoute default/foo"));
        assert_eq!(
            err.field.as_deref(),
            Some("spec.rules[0].matches[0].path.type")
        );
        let shown = err.to_string();
        assert!(
            shown.starts_with(
                "examples/x.yaml: HTTPRoute default/foo: spec.rules[0].matches[0].path.type: unknown variant `Prefix`"
            ),
            "{shown}"
        );
    }

    #[test]
    fn k8s_types_report_paths_too() {
        let err = parse(
            "s.yaml",
            "apiVersion: v1\nkind: Service\nmetadata: {name: s, namespace: n}\nspec:\n  ports: [{port: eighty}]\n",
        )
        .unwrap_err();
        assert_eq!(err.object.as_deref(), Some("Service n/s"));
        assert_eq!(err.field.as_deref(), Some("spec.ports[0].port"));
    }

    #[test]
    fn syntax_error_names_document() {
        let text = "apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\nkind: [unclosed\n";
        let err = parse("y.yaml", text).unwrap_err();
        assert_eq!(err.object, None);
        assert_eq!(err.document, 2);
        assert!(err.to_string().starts_with("y.yaml: document 2: "), "{err}");
    }

    #[test]
    fn missing_kind_or_name() {
        let err = parse("z.yaml", "apiVersion: v1\nmetadata: {name: a}\n").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("kind"));
        assert_eq!(
            err.to_string(),
            "z.yaml: document 1: kind: kind is required"
        );
        let err = parse("z.yaml", "apiVersion: v1\nkind: Service\nmetadata: {}\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "z.yaml: Service: metadata.name: name is required"
        );
        let err = parse("z.yaml", "- a\n- b\n").unwrap_err();
        assert_eq!(err.document, 1);
    }
}
