//! The objects the policy reasons about, and how to name them in messages.

use gatehouse_crds::{Tenant, TenantCertificate, TenantRoute};
use gateway_api::experimental::gatewayclasses::GatewayClass;
use gateway_api::experimental::gateways::Gateway;
use gateway_api::experimental::grpcroutes::GrpcRoute;
use gateway_api::experimental::httproutes::HttpRoute;
use gateway_api::experimental::listenersets::ListenerSet;
use gateway_api::experimental::referencegrants::ReferenceGrant;
use gateway_api::experimental::tlsroutes::TlsRoute;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Serialize};
use std::fmt;

pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Kind {
    Tenant,
    TenantRoute,
    TenantCertificate,
    #[serde(rename = "HTTPRoute")]
    HttpRoute,
    #[serde(rename = "GRPCRoute")]
    GrpcRoute,
    #[serde(rename = "TLSRoute")]
    TlsRoute,
    Gateway,
    GatewayClass,
    ListenerSet,
    ReferenceGrant,
    Namespace,
}

impl Kind {
    /// Every kind the policy judges, and so every kind the webhook must be registered for.
    pub const ALL: [Kind; 11] = [
        Kind::Tenant,
        Kind::TenantRoute,
        Kind::TenantCertificate,
        Kind::HttpRoute,
        Kind::GrpcRoute,
        Kind::TlsRoute,
        Kind::Gateway,
        Kind::GatewayClass,
        Kind::ListenerSet,
        Kind::ReferenceGrant,
        Kind::Namespace,
    ];

    /// The Kubernetes kind name, as written in manifests and ReferenceGrants.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tenant => "Tenant",
            Kind::TenantRoute => "TenantRoute",
            Kind::TenantCertificate => "TenantCertificate",
            Kind::HttpRoute => "HTTPRoute",
            Kind::GrpcRoute => "GRPCRoute",
            Kind::TlsRoute => "TLSRoute",
            Kind::Gateway => "Gateway",
            Kind::GatewayClass => "GatewayClass",
            Kind::ListenerSet => "ListenerSet",
            Kind::ReferenceGrant => "ReferenceGrant",
            Kind::Namespace => "Namespace",
        }
    }

    pub fn group(self) -> &'static str {
        match self {
            Kind::Tenant | Kind::TenantRoute | Kind::TenantCertificate => gatehouse_crds::GROUP,
            Kind::Namespace => "",
            _ => GATEWAY_GROUP,
        }
    }

    /// Kinds only cluster admins may write: they decide who gets which listener and domain.
    pub fn is_admin_only(self) -> bool {
        matches!(self, Kind::Tenant | Kind::Gateway | Kind::GatewayClass)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kind, namespace and name: enough to find an object and to name it in a message.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn new(kind: Kind, namespace: Option<&str>, name: &str) -> Self {
        Self {
            kind,
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }

    pub fn tenant(name: &str) -> Self {
        Self::new(Kind::Tenant, None, name)
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {}/{}", self.kind, ns, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Sort key for "who came first": creation time, then namespace/name so that two objects
/// created in the same second still get one stable answer. Unknown times sort last, as if
/// created now, which is what an object still being admitted is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Seniority {
    created_unknown: bool,
    created: Option<Time>,
    namespace: String,
    name: String,
}

impl Seniority {
    pub fn of(meta: &ObjectMeta) -> Self {
        Self {
            created_unknown: meta.creation_timestamp.is_none(),
            created: meta.creation_timestamp.clone(),
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: meta.name.clone().unwrap_or_default(),
        }
    }
}

/// Any object the policy is asked about or keeps in its snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Object {
    Tenant(Tenant),
    TenantRoute(TenantRoute),
    TenantCertificate(TenantCertificate),
    #[serde(rename = "HTTPRoute")]
    HttpRoute(HttpRoute),
    #[serde(rename = "GRPCRoute")]
    GrpcRoute(GrpcRoute),
    #[serde(rename = "TLSRoute")]
    TlsRoute(TlsRoute),
    Gateway(Gateway),
    GatewayClass(GatewayClass),
    ListenerSet(ListenerSet),
    ReferenceGrant(ReferenceGrant),
    Namespace(Namespace),
}

impl Object {
    pub fn kind(&self) -> Kind {
        match self {
            Object::Tenant(_) => Kind::Tenant,
            Object::TenantRoute(_) => Kind::TenantRoute,
            Object::TenantCertificate(_) => Kind::TenantCertificate,
            Object::HttpRoute(_) => Kind::HttpRoute,
            Object::GrpcRoute(_) => Kind::GrpcRoute,
            Object::TlsRoute(_) => Kind::TlsRoute,
            Object::Gateway(_) => Kind::Gateway,
            Object::GatewayClass(_) => Kind::GatewayClass,
            Object::ListenerSet(_) => Kind::ListenerSet,
            Object::ReferenceGrant(_) => Kind::ReferenceGrant,
            Object::Namespace(_) => Kind::Namespace,
        }
    }

    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Object::Tenant(o) => &o.metadata,
            Object::TenantRoute(o) => &o.metadata,
            Object::TenantCertificate(o) => &o.metadata,
            Object::HttpRoute(o) => &o.metadata,
            Object::GrpcRoute(o) => &o.metadata,
            Object::TlsRoute(o) => &o.metadata,
            Object::Gateway(o) => &o.metadata,
            Object::GatewayClass(o) => &o.metadata,
            Object::ListenerSet(o) => &o.metadata,
            Object::ReferenceGrant(o) => &o.metadata,
            Object::Namespace(o) => &o.metadata,
        }
    }

    pub fn object_ref(&self) -> ObjectRef {
        let meta = self.meta();
        let name = meta
            .name
            .as_deref()
            .or(meta.generate_name.as_deref())
            .unwrap_or("");
        ObjectRef::new(self.kind(), meta.namespace.as_deref(), name)
    }
}

macro_rules! object_from {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        $(impl From<$ty> for Object {
            fn from(object: $ty) -> Self {
                Object::$variant(object)
            }
        })*
    };
}

object_from!(
    Tenant(Tenant),
    TenantRoute(TenantRoute),
    TenantCertificate(TenantCertificate),
    HttpRoute(HttpRoute),
    GrpcRoute(GrpcRoute),
    TlsRoute(TlsRoute),
    Gateway(Gateway),
    GatewayClass(GatewayClass),
    ListenerSet(ListenerSet),
    ReferenceGrant(ReferenceGrant),
    Namespace(Namespace),
);
