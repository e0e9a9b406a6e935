//! `TenantRoute`: a tenant's HTTP or gRPC route, attached to the listeners its Tenant allows.

use crate::Hostname;
use gateway_api::experimental::grpcroutes::GrpcRouteRules;
use gateway_api::experimental::httproutes::HttpRouteRules;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Hostnames and Gateway API rules, with no parentRefs and no ports: where it attaches is
/// decided by the admin through the Tenant, never by the tenant.
// Each printcolumn repeats keys such as `type_`, which clippy mistakes for a duplicated
// attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "TenantRoute",
    plural = "tenantroutes",
    shortname = "troute",
    category = "gatehouse",
    namespaced,
    status = "TenantRouteStatus",
    derive = "Default",
    derive = "PartialEq",
    doc = "A tenant's HTTP or gRPC route on the listeners its Tenant allows.",
    printcolumn(
        name = "Hostnames",
        type_ = "string",
        json_path = ".spec.hostnames",
        description = "Hostnames this route asks for"
    ),
    printcolumn(
        name = "Accepted",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Accepted\")].status",
        description = "True when every hostname passed the tenancy policy; see status.hostnames for each one"
    ),
    printcolumn(
        name = "Programmed",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Programmed\")].status",
        description = "True when the proxies serve this route"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time since creation; on a first-come hostname the oldest route wins"
    )
)]
#[x_kube(validation = Rule::new("has(self.http) != has(self.grpc)").message("set exactly one of spec.http or spec.grpc"))]
#[serde(rename_all = "camelCase")]
pub struct TenantRouteSpec {
    #[schemars(length(max = 16), extend("x-kubernetes-list-type" = "set"))]
    #[x_kube(validation = Rule::new("size(self) > 0").message("list at least one hostname: a route without one would catch every host on a shared listener"))]
    pub hostnames: Vec<Hostname>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Vec<HttpRouteRules>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<Vec<GrpcRouteRules>>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantRouteStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// One entry per spec hostname: a route can be served for some hostnames and refused for
    /// others.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<HostnameStatus>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostnameStatus {
    pub hostname: String,
    pub accepted: bool,
    pub programmed: bool,
    /// Machine-readable, e.g. `Accepted`, `OwnedByOtherTenant`, `NotAssigned`.
    pub reason: String,
    pub message: String,
}
