//! Pure translation of Kubernetes Gateway API objects into the data-plane model.
//!
//! Nothing here talks to a cluster: the caller hands over every object it knows (from a
//! directory of YAML files or from a watch cache) and gets back the complete set of model
//! resources plus the problems found on the way. Output is deterministic so that
//! [`crate::diff::diff`] of two translations only reports real changes.

mod attach;
mod backends;
mod filters;
mod incremental;
mod index;
mod listener_sets;
mod listeners;
mod other_routes;
mod routes;
mod rules;
mod secrets;
mod selector;
#[cfg(test)]
mod tests;

pub use incremental::Translator;
pub use listener_sets::{as_gateway_listener, parent_gateway};
pub use secrets::{TLS_SECRET_TYPE, TlsSecretError, tls_secret_certificate};

use crate::manifest::{DEFAULT_NAMESPACE, Object};
use crate::model::{Resource, ResourceKey};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TranslateOptions {
    /// GatewayClass `spec.controllerName` this instance owns, e.g. `gatehouse.dev/gateway-controller`.
    pub controller_name: String,
    /// Bind address of a Gateway that asks for no `IPAddress` in `spec.addresses`.
    pub default_address: IpAddr,
    /// Serve a Gateway whose GatewayClass object is missing. Standalone mode wants this:
    /// a directory of YAML rarely bothers to include the cluster-scoped class.
    pub accept_gateways_without_class: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Translation {
    pub resources: crate::scope::Config,
    pub problems: Vec<Problem>,
}

/// Something in the input that could not be served as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// `HTTPRoute ns/name`.
    pub object: String,
    /// Path inside the object, e.g. `spec.rules[0].backendRefs[1]`.
    pub field: String,
    pub reason: String,
    /// Set when the problem made the translation drop the object's resource because its
    /// content is invalid (not merely unattached): a caller holding a last good version of
    /// that resource should keep serving it.
    pub rejected: Option<ResourceKey>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.object, self.field, self.reason)
    }
}

impl Problem {
    fn new(object: &str, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Problem {
            object: object.to_string(),
            field: field.into(),
            reason: reason.into(),
            rejected: None,
        }
    }

    fn rejecting(mut self, key: ResourceKey) -> Self {
        self.rejected = Some(key);
        self
    }
}

/// `objects` is anything yielding `&Object` (a slice, a `Vec` of references), so a caller
/// that substitutes a few objects need not copy the rest.
pub fn translate<'a>(
    objects: impl IntoIterator<Item = &'a Object>,
    opts: &TranslateOptions,
) -> Translation {
    translate_with(objects, opts, None)
}

fn translate_with<'a>(
    objects: impl IntoIterator<Item = &'a Object>,
    opts: &TranslateOptions,
    mut memory: Option<&mut incremental::Memory>,
) -> Translation {
    let mut problems = Vec::new();
    let index = index::Index::new(objects, &mut problems);
    let gateways = listeners::translate(&index, opts, &mut problems);
    let memo = memory
        .as_deref_mut()
        .map(|m| m.routes_memo(&index, &gateways));
    let mut routes = routes::translate(&index, &gateways, &mut problems, memo);
    let mut other = other_routes::translate(&index, &gateways, &mut problems);
    let backends = match memory.as_deref() {
        Some(m) => backends::emit(&index, m.http_backends().chain(&other.backends)),
        None => {
            routes.backends.append(&mut other.backends);
            backends::emit(&index, &routes.backends)
        }
    };

    let others = gateways
        .listeners
        .into_iter()
        .map(Resource::Listener)
        .chain(
            gateways
                .certificates
                .into_values()
                .map(Resource::Certificate),
        )
        .chain(other.grpc.into_iter().map(Resource::GrpcRoute))
        .chain(other.tls.into_iter().map(Resource::TlsRoute))
        .chain(backends.into_iter().map(Resource::Backend))
        .map(|r| (r.key(), r))
        .collect::<BTreeMap<ResourceKey, Resource>>();
    let resources = match memory {
        Some(m) => m.publish(&routes.routes, others),
        None => assemble(routes.routes, others.into_values()),
    };
    Translation {
        resources,
        problems,
    }
}

/// The config from scratch: the HTTPRoutes, then every other resource.
fn assemble(
    routes: impl IntoIterator<Item = Arc<crate::model::HttpRoute>>,
    others: impl IntoIterator<Item = Resource>,
) -> crate::scope::Config {
    routes
        .into_iter()
        .map(Resource::HttpRoute)
        .chain(others)
        .map(|r| (r.key(), r))
        .collect()
}

fn namespace_of(meta: &ObjectMeta) -> &str {
    meta.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
}

fn name_of(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

/// `Kind ns/name`, the way problems name namespaced objects.
fn label(kind: &str, meta: &ObjectMeta) -> String {
    format!("{kind} {}/{}", namespace_of(meta), name_of(meta))
}

fn version_of(meta: &ObjectMeta) -> u64 {
    meta.generation
        .and_then(|g| u64::try_from(g).ok())
        .unwrap_or(0)
}
