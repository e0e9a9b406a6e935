//! `GatewayClassConfig`: how the Gateways of a class get their proxies and addresses. A
//! GatewayClass names one through `spec.parametersRef`; a class without one runs in local
//! mode (addresses from the controller's pool, proxies the controller was told about).

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "GatewayClassConfig",
    plural = "gatewayclassconfigs",
    shortname = "gcc",
    category = "gatehouse",
    derive = "Default",
    derive = "PartialEq",
    doc = "Parameters of a Gatehouse GatewayClass: which proxies serve its Gateways.",
    printcolumn(
        name = "Mode",
        type_ = "string",
        json_path = ".spec.mode",
        description = "Local, SharedFleet or Provisioned"
    )
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.mode != 'SharedFleet' || has(self.sharedFleet)").message("mode SharedFleet needs spec.sharedFleet"))]
#[x_kube(validation = Rule::new("self.mode != 'Provisioned' || has(self.provisioned)").message("mode Provisioned needs spec.provisioned"))]
pub struct GatewayClassConfigSpec {
    pub mode: ProxyMode,
    /// The fleet every Gateway of the class is bound to (mode SharedFleet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_fleet: Option<FleetRef>,
    /// What to create for each Gateway (mode Provisioned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioned: Option<ProvisionedProxy>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ProxyMode {
    /// Addresses from the controller's `--address-pool`, served by the proxies it programs.
    #[default]
    Local,
    /// Gateways share an existing proxy fleet behind one Service; nothing is created per
    /// Gateway. The multi-tenant default.
    SharedFleet,
    /// The controller creates a Deployment and a Service per Gateway, in its namespace.
    Provisioned,
}

/// The Service in front of an existing proxy fleet.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FleetRef {
    #[schemars(length(min = 1, max = 63))]
    pub namespace: String,
    #[schemars(length(min = 1, max = 63))]
    pub service: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProvisionedProxy {
    /// Proxy container image (runs `gatehouse proxy`).
    #[schemars(length(min = 1, max = 512))]
    pub image: String,
    #[serde(default = "one")]
    #[schemars(range(min = 0, max = 100))]
    pub replicas: i32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// The controller's config API URL the proxies connect to; without it the controller's
    /// `--proxy-controller-url` is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 512))]
    pub controller_url: Option<String>,
}

fn one() -> i32 {
    1
}
