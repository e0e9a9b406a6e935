//! The verdict and why.

use crate::object::ObjectRef;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    Allowed,
    Denied {
        reason: DenyReason,
        /// JSON path of the offending field, e.g. `spec.hostnames[0]`; empty when the whole
        /// object is refused.
        field: String,
        /// Names the object, the field and the owner of what was contested.
        message: String,
    },
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allowed)
    }

    pub fn reason(&self) -> Option<DenyReason> {
        match self {
            Decision::Allowed => None,
            Decision::Denied { reason, .. } => Some(*reason),
        }
    }

    pub(crate) fn deny(object: &ObjectRef, field: &str, reason: DenyReason, text: &str) -> Self {
        let message = if field.is_empty() {
            format!("{object}: {text}")
        } else {
            format!("{object}: {field}: {text}")
        };
        Decision::Denied {
            reason,
            field: field.to_string(),
            message,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DenyReason {
    /// Only admins may write this kind, or change which tenant a namespace belongs to.
    NotAdmin,
    /// The request itself is inconsistent (e.g. kind and object disagree).
    MalformedRequest,
    /// Not a lowercase RFC 1123 hostname (uppercase, trailing dot, IP, misplaced `*`).
    InvalidHostname,
    /// A route or ListenerSet listener without a hostname would catch every host.
    MissingHostname,
    /// Inside, or overlapping, another tenant's admin-assigned claim.
    HostnameClaimedByOtherTenant,
    /// Unassigned, but another tenant (or a platform route) already uses it.
    HostnameInUse,
    /// Unassigned and the tenant may only use its claims.
    HostnameNotAssigned,
    /// Wildcards are only allowed inside the tenant's own claims.
    WildcardOutsideClaims,
    /// Two Tenants' claims overlap.
    ClaimOverlap,
    /// Two Tenants select the same namespace.
    NamespaceConflict,
    /// A tenant-only kind in a namespace no Tenant selects.
    NamespaceWithoutTenant,
    RouteQuotaExceeded,
    HostnameQuotaExceeded,
    CertificateQuotaExceeded,
    /// A reference into another namespace without a ReferenceGrant there.
    ReferenceNotPermitted,
    /// A backendRef to something other than a core Service.
    UnsupportedBackendKind,
    /// A parentRef (or default Gateway attachment) the Tenant does not grant.
    ListenerNotAllowed,
    /// A ListenerSet port the Tenant does not grant.
    PortNotAllowed,
}

impl DenyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DenyReason::NotAdmin => "NotAdmin",
            DenyReason::MalformedRequest => "MalformedRequest",
            DenyReason::InvalidHostname => "InvalidHostname",
            DenyReason::MissingHostname => "MissingHostname",
            DenyReason::HostnameClaimedByOtherTenant => "HostnameClaimedByOtherTenant",
            DenyReason::HostnameInUse => "HostnameInUse",
            DenyReason::HostnameNotAssigned => "HostnameNotAssigned",
            DenyReason::WildcardOutsideClaims => "WildcardOutsideClaims",
            DenyReason::ClaimOverlap => "ClaimOverlap",
            DenyReason::NamespaceConflict => "NamespaceConflict",
            DenyReason::NamespaceWithoutTenant => "NamespaceWithoutTenant",
            DenyReason::RouteQuotaExceeded => "RouteQuotaExceeded",
            DenyReason::HostnameQuotaExceeded => "HostnameQuotaExceeded",
            DenyReason::CertificateQuotaExceeded => "CertificateQuotaExceeded",
            DenyReason::ReferenceNotPermitted => "ReferenceNotPermitted",
            DenyReason::UnsupportedBackendKind => "UnsupportedBackendKind",
            DenyReason::ListenerNotAllowed => "ListenerNotAllowed",
            DenyReason::PortNotAllowed => "PortNotAllowed",
        }
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
