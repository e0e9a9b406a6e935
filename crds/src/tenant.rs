//! `Tenant`: the admin-owned, cluster-scoped grant of namespaces, domains, listeners and limits.

use crate::Hostname;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What an admin grants one tenant. Tenants cannot edit it: the policy engine only lets
/// admins write Tenants.
// Each printcolumn repeats keys such as `type_`, which clippy mistakes for a duplicated
// attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "Tenant",
    plural = "tenants",
    shortname = "tnt",
    category = "gatehouse",
    status = "TenantStatus",
    derive = "Default",
    derive = "PartialEq",
    doc = "A tenant of the shared Gateways: its namespaces, the domains assigned to it, the listeners its routes may attach to, and its limits.",
    printcolumn(
        name = "Domains",
        type_ = "string",
        json_path = ".spec.domains",
        description = "Hostnames the admin assigned to this tenant (exact names and *.suffix wildcards)"
    ),
    printcolumn(
        name = "Routes",
        type_ = "integer",
        json_path = ".status.usage.routes",
        description = "Routes in the tenant's namespaces, counted against spec.limits.routes"
    ),
    printcolumn(
        name = "Route-Limit",
        type_ = "integer",
        json_path = ".spec.limits.routes",
        description = "Most routes the tenant may have; empty means unlimited"
    ),
    printcolumn(
        name = "Conflicts",
        type_ = "string",
        json_path = ".status.conflicts[*].hostname",
        description = "Hostnames this tenant wants but another tenant holds"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "True when the controller applied this tenant without conflicts"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time since the tenant was created; older tenants win first-come hostname ties"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct TenantSpec {
    /// Namespaces that belong to this tenant. A namespace selected by two tenants is a
    /// conflict: neither tenant may create objects in it until an admin resolves it.
    pub namespaces: TenantNamespaces,
    /// Hostname claims assigned by the admin: exact names (`shop.example.com`) and wildcard
    /// suffixes (`*.shop.example.com`). Claims of two tenants may not overlap.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), extend("x-kubernetes-list-type" = "set"))]
    pub domains: Vec<Hostname>,
    /// Lets the tenant use hostnames nobody has been assigned, first come first served. A
    /// wildcard hostname always needs a claim.
    #[serde(default)]
    pub allow_unassigned_hostnames: bool,
    /// Gateway listeners the tenant's routes may attach to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64))]
    pub listeners: Vec<ListenerGrant>,
    /// Ports the tenant's ListenerSets may open on the shared Gateways.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), extend("x-kubernetes-list-type" = "set"))]
    #[x_kube(validation = Rule::new("self.all(p, p >= 1 && p <= 65535)").message("ports are between 1 and 65535"))]
    pub listener_set_ports: Vec<i32>,
    #[serde(default)]
    pub limits: TenantLimits,
}

/// Namespaces by name, by label selector, or both (a namespace matching either belongs).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("(has(self.names) && size(self.names) > 0) || has(self.selector)").message("select namespaces by names, a label selector, or both"))]
#[serde(rename_all = "camelCase")]
pub struct TenantNamespaces {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 1024), extend("x-kubernetes-list-type" = "set"))]
    pub names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// One Gateway, and optionally only some of its listeners, open to the tenant's routes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListenerGrant {
    pub gateway_namespace: String,
    pub gateway_name: String,
    /// Listener names on that Gateway; empty means all of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), extend("x-kubernetes-list-type" = "set"))]
    pub section_names: Vec<String>,
}

/// Per-tenant limits; an absent limit is unlimited.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TenantLimits {
    /// TenantRoutes plus HTTPRoutes, GRPCRoutes and TLSRoutes in the tenant's namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0").message("limits must not be negative"))]
    pub routes: Option<i64>,
    /// Distinct hostnames across the tenant's routes, certificates and ListenerSets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0").message("limits must not be negative"))]
    pub hostnames: Option<i64>,
    /// TenantCertificates in the tenant's namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0").message("limits must not be negative"))]
    pub certificates: Option<i64>,
    /// Enforced by the proxy across all of the tenant's hostnames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0").message("limits must not be negative"))]
    pub requests_per_second: Option<i64>,
    /// Enforced by the proxy across all of the tenant's hostnames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("self >= 0").message("limits must not be negative"))]
    pub concurrent_connections: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub usage: TenantUsage,
    /// Hostnames this tenant uses or claims that another tenant holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<HostnameConflict>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// Current usage, to read next to `spec.limits`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantUsage {
    pub routes: i64,
    pub hostnames: i64,
    pub certificates: i64,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HostnameConflict {
    pub hostname: String,
    /// Why this tenant lost, e.g. `ClaimedByOtherTenant` or `FirstUsedByOtherTenant`.
    pub reason: String,
    /// The object holding the hostname, as `Kind namespace/name` or `Tenant name`.
    pub winner: String,
}
