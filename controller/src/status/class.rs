//! GatewayClass status: we accept every class naming our controller and say what it serves.

use super::{Condition, generation};
use gateway_api::experimental::gatewayclasses::GatewayClass;
use serde::Serialize;

/// Conformance feature names the proxy implements (see the README's data-plane notes),
/// sorted as the spec requires.
pub const SUPPORTED_FEATURES: &[&str] = &[
    "Gateway",
    "GatewayPort8080",
    "HTTPRoute",
    "HTTPRouteBackendProtocolH2C",
    "HTTPRouteBackendProtocolWebSocket",
    "HTTPRouteBackendRequestHeaderModification",
    "HTTPRouteBackendTimeout",
    "HTTPRouteHostRewrite",
    "HTTPRouteMethodMatching",
    "HTTPRouteParentRefPort",
    "HTTPRoutePathRedirect",
    "HTTPRoutePathRewrite",
    "HTTPRoutePortRedirect",
    "HTTPRouteQueryParamMatching",
    "HTTPRouteRequestMirror",
    "HTTPRouteRequestTimeout",
    "HTTPRouteResponseHeaderModification",
    "HTTPRouteSchemeRedirect",
    "ListenerSet",
    "ReferenceGrant",
];

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassStatus {
    pub conditions: Vec<Condition>,
    pub supported_features: Vec<Feature>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Feature {
    pub name: &'static str,
}

/// `invalid_parameters`: why the class's `spec.parametersRef` cannot be used, if so.
pub(super) fn status(class: &GatewayClass, invalid_parameters: Option<&String>) -> ClassStatus {
    let accepted = match invalid_parameters {
        None => Condition::new(
            "Accepted",
            true,
            "Accepted",
            "handled by gatehouse",
            generation(&class.metadata),
        ),
        Some(why) => Condition::new(
            "Accepted",
            false,
            "InvalidParameters",
            why.clone(),
            generation(&class.metadata),
        ),
    };
    ClassStatus {
        conditions: vec![accepted],
        supported_features: SUPPORTED_FEATURES
            .iter()
            .map(|name| Feature { name })
            .collect(),
    }
}
