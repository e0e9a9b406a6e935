//! `TenantCertificate`: a tenant's TLS certificate for hostnames it owns.

use crate::Hostname;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Points at a `kubernetes.io/tls` Secret in the same namespace, the shape cert-manager
/// writes, so tenants keep their existing issuance flow.
// Each printcolumn repeats keys such as `type_`, which clippy mistakes for a duplicated
// attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "TenantCertificate",
    plural = "tenantcertificates",
    shortname = "tcert",
    category = "gatehouse",
    namespaced,
    status = "TenantCertificateStatus",
    derive = "Default",
    derive = "PartialEq",
    doc = "A TLS certificate the shared Gateways serve for hostnames the tenant owns.",
    printcolumn(
        name = "Hostnames",
        type_ = "string",
        json_path = ".spec.hostnames",
        description = "Hostnames the certificate is for"
    ),
    printcolumn(
        name = "Secret",
        type_ = "string",
        json_path = ".spec.secretName",
        description = "kubernetes.io/tls Secret in this namespace holding the key pair"
    ),
    printcolumn(
        name = "Ready",
        type_ = "boolean",
        json_path = ".status.ready",
        description = "True when the proxies serve this certificate"
    ),
    printcolumn(
        name = "Expires",
        type_ = "date",
        json_path = ".status.notAfter",
        description = "Expiry (notAfter) of the certificate in the Secret"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "Time since creation"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct TenantCertificateSpec {
    #[schemars(length(max = 100), extend("x-kubernetes-list-type" = "set"))]
    #[x_kube(validation = Rule::new("size(self) > 0").message("list at least one hostname"))]
    pub hostnames: Vec<Hostname>,
    #[schemars(length(max = 253))]
    #[x_kube(validation = Rule::new("self != ''").message("name the kubernetes.io/tls Secret in this namespace"))]
    pub secret_name: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantCertificateStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default)]
    pub ready: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<Time>,
    /// The spec hostnames the certificate covers and the tenant owns: the ones actually served.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub served_hostnames: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}
