//! Tenancy custom resources of Gatehouse, API group `gatehouse.dev/v1alpha1`.
//!
//! Admins own the cluster-scoped [`Tenant`]: which namespaces, domains, listeners and limits a
//! tenant gets. Tenants own [`TenantRoute`] and [`TenantCertificate`] in their namespaces. The
//! CRD manifests generated from these types live in `crds/yaml/` (see [`generate`]).

mod certificate;
mod class_config;
pub mod generate;
mod hostname;
mod route;
mod tenant;

pub use certificate::{TenantCertificate, TenantCertificateSpec, TenantCertificateStatus};
pub use class_config::{
    FleetRef, GatewayClassConfig, GatewayClassConfigSpec, ProvisionedProxy, ProxyMode,
};
pub use hostname::Hostname;
pub use route::{HostnameStatus, TenantRoute, TenantRouteSpec, TenantRouteStatus};
pub use tenant::{
    HostnameConflict, ListenerGrant, Tenant, TenantLimits, TenantNamespaces, TenantSpec,
    TenantStatus, TenantUsage,
};

/// API group of every Gatehouse tenancy resource.
pub const GROUP: &str = "gatehouse.dev";
/// The one served version; bumped only with a conversion story.
pub const VERSION: &str = "v1alpha1";
