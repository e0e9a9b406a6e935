//! backendRefs → Service ports, and Service ports → `Backend`s with their endpoints.

use super::index::{Index, RefEnd, route_end};
use crate::model::{AppProtocol, Backend, BackendKey};
use k8s_openapi::api::core::v1::ServicePort;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// The Service port a resolved backendRef points at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Target {
    pub namespace: String,
    pub service: String,
    pub port_name: Option<String>,
    pub app_protocol: Option<String>,
}

/// Backends the emitted routes use, keyed like the model.
pub(super) type Needed = BTreeMap<BackendKey, Target>;

/// The fields every kind of backendRef shares.
pub(super) struct BackendRef<'r> {
    pub group: Option<&'r str>,
    pub kind: Option<&'r str>,
    pub name: &'r str,
    pub namespace: Option<&'r str>,
    pub port: Option<i32>,
}

/// Resolves a ref made by a route of kind `route_kind` in `route_ns`. The error is the
/// reason the spec would put in the route's ResolvedRefs condition, followed by details.
pub(super) fn resolve(
    index: &Index<'_>,
    route_kind: &str,
    route_ns: &str,
    r: &BackendRef<'_>,
) -> Result<(BackendKey, Target), String> {
    let group = r.group.unwrap_or_default();
    let kind = r.kind.unwrap_or("Service");
    if !group.is_empty() || kind != "Service" {
        return Err(format!(
            "InvalidKind: unsupported backend kind {group}/{kind}"
        ));
    }
    let ns = r.namespace.unwrap_or(route_ns);
    let Some(port) = r.port else {
        return Err(format!(
            "UnsupportedValue: backendRef to Service {ns}/{} needs a port",
            r.name
        ));
    };
    let Ok(port) = u16::try_from(port) else {
        return Err(format!("UnsupportedValue: port {port} is out of range"));
    };
    let to = RefEnd {
        group: "",
        kind: "Service",
        namespace: ns,
    };
    if !index.reference_allowed(&route_end(route_kind, route_ns), &to, r.name) {
        return Err(format!(
            "RefNotPermitted: no ReferenceGrant in namespace {ns} allows {route_kind}s from {route_ns} to use Service {}",
            r.name
        ));
    }
    let Some(service) = index.services.get(&(ns, r.name)) else {
        return Err(format!(
            "BackendNotFound: service {ns}/{} not found",
            r.name
        ));
    };
    let ports = service
        .spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default();
    let Some(sp) = ports.iter().find(|p| p.port == i32::from(port)) else {
        return Err(format!(
            "BackendNotFound: service {ns}/{} has no port {port}",
            r.name
        ));
    };
    let target = Target {
        namespace: ns.to_string(),
        service: r.name.to_string(),
        port_name: non_empty(sp),
        app_protocol: sp.app_protocol.clone(),
    };
    Ok((BackendKey::new(ns, r.name, port), target))
}

fn non_empty(sp: &ServicePort) -> Option<String> {
    sp.name.clone().filter(|n| !n.is_empty())
}

/// One `Backend` per needed key; a key given twice yields the same `Backend` twice.
pub(super) fn emit<'n>(
    index: &Index<'_>,
    needed: impl IntoIterator<Item = (&'n BackendKey, &'n Target)>,
) -> Vec<Backend> {
    needed
        .into_iter()
        .map(|(key, t)| {
            let slices = index
                .slices
                .get(&(t.namespace.as_str(), t.service.as_str()))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let mut endpoints: Vec<SocketAddr> = slices
                .iter()
                .flat_map(|s| endpoints(s, t.port_name.as_deref()))
                .collect();
            endpoints.sort();
            endpoints.dedup();
            Backend {
                key: key.clone(),
                version: 0,
                app_protocol: AppProtocol::from_service(t.app_protocol.as_deref()),
                endpoints,
            }
        })
        .collect()
}

/// Ready addresses of one slice on the port named like the Service port. An endpoint
/// without a ready condition counts as ready: the field is optional and consumers are
/// told to assume readiness when it is absent.
fn endpoints(slice: &EndpointSlice, port_name: Option<&str>) -> Vec<SocketAddr> {
    if !matches!(slice.address_type.as_str(), "IPv4" | "IPv6") {
        return Vec::new();
    }
    let port = slice
        .ports
        .iter()
        .flatten()
        .find(|p| p.name.as_deref().filter(|n| !n.is_empty()) == port_name)
        .and_then(|p| p.port)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0);
    let Some(port) = port else {
        return Vec::new();
    };
    slice
        .endpoints
        .iter()
        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false))
        .flat_map(|e| &e.addresses)
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, port))
        .collect()
}
