//! In-cluster modes of a GatewayClass (see `gatehouse_crds::GatewayClassConfig`):
//!
//! - **SharedFleet**: the class's Gateways are served by an existing proxy fleet; their
//!   address is the fleet Service's. Nothing is created per Gateway.
//! - **Provisioned**: each Gateway gets its own Deployment + Service (rendered by
//!   [`render`], applied by [`apply`]); its address is that Service's.
//!
//! [`resolve`] is pure: it decides, from the watched objects, each class's mode, each
//! in-cluster Gateway's address and what to apply. Local-mode Gateways are not its business.

pub mod apply;
mod mode;
pub mod render;

use crate::addresses::GatewayKey;
use crate::plan::{CONTROLLER_NAME, gateway_key};
use gatehouse_core::manifest::Object;
use gatehouse_crds::GatewayClassConfig;
use k8s_openapi::api::core::v1::Service;
use std::collections::BTreeMap;
use std::net::IpAddr;

pub use mode::{ClassMode, InvalidParameters, class_mode};
pub use render::{Rendered, object_name};

/// Where an in-cluster Gateway stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum External {
    /// From its Service: a load-balancer ingress IP if any, else the ClusterIP.
    Address(IpAddr),
    /// No address yet (Service missing, not ours, or without an IP): the reason says which.
    Awaiting(String),
    /// Its class's parameters are unusable.
    InvalidParameters(String),
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resolution {
    /// Our classes whose `spec.parametersRef` cannot be used.
    pub invalid_classes: BTreeMap<String, InvalidParameters>,
    /// Every Gateway of an in-cluster (or broken) class.
    pub external: BTreeMap<GatewayKey, External>,
    /// What to apply, one entry per provisioned Gateway.
    pub provisioned: BTreeMap<GatewayKey, Rendered>,
}

/// `default_controller_url` is the controller's `--proxy-controller-url`, used when the
/// parameters name none.
pub fn resolve(
    objects: &[Object],
    configs: &[GatewayClassConfig],
    default_controller_url: Option<&str>,
) -> Resolution {
    let mut out = Resolution::default();
    let mut modes = BTreeMap::new();
    for o in objects {
        let Object::GatewayClass(c) = o else { continue };
        if c.spec.controller_name != CONTROLLER_NAME {
            continue;
        }
        let name = c.metadata.name.clone().unwrap_or_default();
        match class_mode(c, configs) {
            Ok(mode) => {
                modes.insert(name, mode);
            }
            Err(e) => {
                out.invalid_classes.insert(name, e);
            }
        }
    }
    let services: BTreeMap<(&str, &str), &Service> = objects
        .iter()
        .filter_map(|o| match o {
            Object::Service(s) => Some((
                (
                    s.metadata.namespace.as_deref().unwrap_or_default(),
                    s.metadata.name.as_deref().unwrap_or_default(),
                ),
                &**s,
            )),
            _ => None,
        })
        .collect();
    for o in objects {
        let Object::Gateway(gw) = o else { continue };
        let class = gw.spec.gateway_class_name.as_str();
        let key = gateway_key(gw);
        if let Some(e) = out.invalid_classes.get(class) {
            out.external
                .insert(key, External::InvalidParameters(e.to_string()));
            continue;
        }
        let external = match modes.get(class) {
            None | Some(ClassMode::Local) => continue,
            Some(ClassMode::SharedFleet(fleet)) => {
                match services.get(&(fleet.namespace.as_str(), fleet.service.as_str())) {
                    Some(s) => service_address(s, &fleet.namespace, &fleet.service),
                    None => External::Awaiting(format!(
                        "fleet Service {}/{} not found",
                        fleet.namespace, fleet.service
                    )),
                }
            }
            Some(ClassMode::Provisioned(proxy)) => {
                let Some(url) = proxy.controller_url.as_deref().or(default_controller_url) else {
                    out.external.insert(
                        key,
                        External::InvalidParameters(format!(
                            "GatewayClass {class}: spec.provisioned.controllerUrl of its \
                             GatewayClassConfig is not set and the controller has no \
                             --proxy-controller-url"
                        )),
                    );
                    continue;
                };
                let name = object_name(&key.1);
                let existing = services.get(&(key.0.as_str(), name.as_str()));
                if existing.is_some_and(|s| !owned_by(s, &key.1)) {
                    External::Awaiting(format!(
                        "Service {}/{name} exists and was not created by Gatehouse for this \
                         Gateway; it is left alone: delete or rename it",
                        key.0
                    ))
                } else {
                    out.provisioned
                        .insert(key.clone(), render::render(gw, proxy, url));
                    match existing {
                        Some(s) => service_address(s, &key.0, &name),
                        None => External::Awaiting(format!("creating Service {}/{name}", key.0)),
                    }
                }
            }
        };
        out.external.insert(key, external);
    }
    out
}

/// Carries our label and a controller reference to a Gateway of this name. A Gateway
/// deleted and recreated under the same name takes its predecessor's objects over (the
/// apply rewrites the reference); anything else is someone else's.
fn owned_by(s: &Service, gateway: &str) -> bool {
    let ours = s
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(render::MANAGED_BY_LABEL))
        .is_some_and(|v| v == render::MANAGED_BY);
    ours && s
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.kind == "Gateway" && o.controller == Some(true) && o.name == gateway)
}

fn service_address(s: &Service, namespace: &str, name: &str) -> External {
    let ingress = s
        .status
        .as_ref()
        .and_then(|st| st.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .find_map(|i| i.ip.as_deref().and_then(|ip| ip.parse().ok()));
    let cluster_ip = s
        .spec
        .as_ref()
        .and_then(|sp| sp.cluster_ip.as_deref())
        .and_then(|ip| ip.parse().ok());
    match ingress.or(cluster_ip) {
        Some(ip) => External::Address(ip),
        None => External::Awaiting(format!(
            "Service {namespace}/{name} has no load-balancer IP and no ClusterIP"
        )),
    }
}

#[cfg(test)]
mod tests;
