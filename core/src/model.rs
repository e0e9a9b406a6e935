//! The data-plane config model.
//!
//! It mirrors the Gateway API one-to-one: a `Listener` per Gateway listener, an `HttpRoute`
//! per HTTPRoute (its hostnames and rules kept as written, never multiplied out), likewise a
//! `GrpcRoute` per GRPCRoute and a `TlsRoute` per TLSRoute, a `Backend` per Service port with
//! its endpoints, a `Certificate` per TLS secret. Every resource has a
//! stable key and a version, and the proxy receives them as [`Delta`]s: upserts and removals
//! by key, so a change costs O(change) on the wire and in the proxy.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Version of a resource as the source saw it (a generation or resourceVersion).
pub type Version = u64;

macro_rules! key_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_string())
            }
        }
    };
}

key_type!(
    /// `namespace/gateway/listener` for a Gateway's own listener,
    /// `namespace/gateway/set-namespace/set/listener` for one a ListenerSet adds: either way
    /// it starts with its Gateway's `namespace/gateway/`.
    ListenerKey
);
key_type!(
    /// `namespace/name` of the route object.
    RouteKey
);
key_type!(
    /// `namespace/service:port`.
    BackendKey
);
key_type!(
    /// `namespace/secret`.
    CertificateKey
);

impl ListenerKey {
    pub fn new(namespace: &str, gateway: &str, listener: &str) -> Self {
        Self(format!("{namespace}/{gateway}/{listener}"))
    }

    /// A listener the ListenerSet `set_namespace/set` adds to `namespace/gateway`.
    pub fn in_set(
        (namespace, gateway): (&str, &str),
        (set_namespace, set): (&str, &str),
        listener: &str,
    ) -> Self {
        Self(format!(
            "{namespace}/{gateway}/{set_namespace}/{set}/{listener}"
        ))
    }
}

impl RouteKey {
    pub fn new(namespace: &str, name: &str) -> Self {
        Self(format!("{namespace}/{name}"))
    }
}

impl BackendKey {
    pub fn new(namespace: &str, service: &str, port: u16) -> Self {
        Self(format!("{namespace}/{service}:{port}"))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ListenerProtocol {
    #[serde(rename = "HTTP")]
    Http,
    #[serde(rename = "HTTPS")]
    Https,
    #[serde(rename = "TLS")]
    Tls,
    #[serde(rename = "TCP")]
    Tcp,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Listener {
    pub key: ListenerKey,
    #[serde(default)]
    pub version: Version,
    /// Address the proxy binds; listeners sharing `address:port` are told apart by hostname.
    pub address: IpAddr,
    pub port: u16,
    pub protocol: ListenerProtocol,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerTls>,
}

impl Listener {
    pub fn socket_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.port)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TlsMode {
    Terminate,
    Passthrough,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListenerTls {
    pub mode: TlsMode,
    #[serde(default)]
    pub certificates: Vec<CertificateKey>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRoute {
    pub key: RouteKey,
    #[serde(default)]
    pub version: Version,
    /// Creation time in Unix milliseconds: the spec's first tie-breaker between routes.
    #[serde(default)]
    pub created_ms: i64,
    #[serde(default)]
    pub hostnames: Vec<String>,
    /// The listeners this route is attached to (its accepted parentRefs).
    pub parents: Vec<ListenerKey>,
    pub rules: Vec<HttpRule>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Empty means the spec default: a single `PathPrefix /` match.
    #[serde(default)]
    pub matches: Vec<HttpMatch>,
    #[serde(default)]
    pub filters: Vec<HttpFilter>,
    #[serde(default)]
    pub backends: Vec<WeightedBackend>,
    #[serde(default)]
    pub timeouts: Timeouts,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HttpMatch {
    #[serde(default)]
    pub path: PathMatch,
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
    #[serde(default)]
    pub query_params: Vec<QueryParamMatch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value")]
pub enum PathMatch {
    Exact(String),
    PathPrefix(String),
    RegularExpression(String),
}

impl Default for PathMatch {
    fn default() -> Self {
        PathMatch::PathPrefix("/".to_string())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value")]
pub enum StringMatch {
    Exact(String),
    RegularExpression(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderMatch {
    pub name: String,
    #[serde(rename = "match")]
    pub value: StringMatch,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueryParamMatch {
    pub name: String,
    #[serde(rename = "match")]
    pub value: StringMatch,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Timeouts {
    /// Whole request, including retries; `None` means no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_ms: Option<u64>,
    /// One attempt against one backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_request_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retry {
    /// Response codes that are retried; connection failures are always retried.
    #[serde(default)]
    pub codes: Vec<u16>,
    /// Retries after the first attempt.
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "PascalCase")]
pub enum HttpFilter {
    RequestHeaderModifier(HeaderModifier),
    ResponseHeaderModifier(HeaderModifier),
    RequestRedirect(RequestRedirect),
    #[serde(rename = "URLRewrite")]
    UrlRewrite(UrlRewrite),
    RequestMirror(RequestMirror),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderModifier {
    #[serde(default)]
    pub set: Vec<(String, String)>,
    #[serde(default)]
    pub add: Vec<(String, String)>,
    #[serde(default)]
    pub remove: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value")]
pub enum PathModifier {
    ReplaceFullPath(String),
    ReplacePrefixMatch(String),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestRedirect {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathModifier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// 301 or 302 (the spec's default).
    #[serde(default = "default_redirect_status")]
    pub status_code: u16,
}

fn default_redirect_status() -> u16 {
    302
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UrlRewrite {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathModifier>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestMirror {
    pub backend: BackendTarget,
    /// Share of requests mirrored, in parts per million (1_000_000 = all).
    #[serde(default = "all_ppm")]
    pub ppm: u32,
}

fn all_ppm() -> u32 {
    1_000_000
}

/// Where a backendRef points once the source resolved it. `Invalid` keeps its share of the
/// traffic (the spec wants those requests answered 500) and says why for logs and status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum BackendTarget {
    Service(BackendKey),
    Invalid(String),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightedBackend {
    pub target: BackendTarget,
    #[serde(default = "default_weight")]
    pub weight: u32,
    #[serde(default)]
    pub filters: Vec<HttpFilter>,
}

fn default_weight() -> u32 {
    1
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppProtocol {
    /// HTTP/1.1, including plain `Upgrade` (WebSocket) requests.
    #[default]
    #[serde(rename = "http")]
    Http1,
    /// `kubernetes.io/h2c`: HTTP/2 with prior knowledge.
    #[serde(rename = "kubernetes.io/h2c")]
    H2c,
    /// `kubernetes.io/ws`: WebSocket over HTTP/1.1.
    #[serde(rename = "kubernetes.io/ws")]
    WebSocket,
}

impl AppProtocol {
    /// Maps a Service port's `appProtocol`; unknown values fall back to HTTP/1.1 as the spec allows.
    pub fn from_service(app_protocol: Option<&str>) -> Self {
        match app_protocol {
            Some("kubernetes.io/h2c") => AppProtocol::H2c,
            Some("kubernetes.io/ws" | "kubernetes.io/wss") => AppProtocol::WebSocket,
            _ => AppProtocol::Http1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    pub key: BackendKey,
    #[serde(default)]
    pub version: Version,
    #[serde(default)]
    pub app_protocol: AppProtocol,
    /// Ready endpoints only; a backend with none answers 503.
    #[serde(default)]
    pub endpoints: Vec<SocketAddr>,
}

/// A GRPCRoute as written: its rules match on gRPC service and method and on headers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcRoute {
    pub key: RouteKey,
    #[serde(default)]
    pub version: Version,
    /// Creation time in Unix milliseconds: the spec's first tie-breaker between routes.
    #[serde(default)]
    pub created_ms: i64,
    #[serde(default)]
    pub hostnames: Vec<String>,
    pub parents: Vec<ListenerKey>,
    pub rules: Vec<GrpcRule>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Empty matches every gRPC request.
    #[serde(default)]
    pub matches: Vec<GrpcMatch>,
    /// RequestHeaderModifier, ResponseHeaderModifier and RequestMirror only.
    #[serde(default)]
    pub filters: Vec<HttpFilter>,
    #[serde(default)]
    pub backends: Vec<WeightedBackend>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<GrpcMethodMatch>,
    #[serde(default)]
    pub headers: Vec<HeaderMatch>,
}

/// Matches the request path `/{service}/{method}`; an absent side matches any value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GrpcMethodMatch {
    #[serde(rename = "type", default)]
    pub kind: GrpcMethodMatchType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum GrpcMethodMatchType {
    #[default]
    Exact,
    RegularExpression,
}

/// A TLSRoute as written: connections are routed by their SNI host name only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsRoute {
    pub key: RouteKey,
    #[serde(default)]
    pub version: Version,
    #[serde(default)]
    pub created_ms: i64,
    #[serde(default)]
    pub hostnames: Vec<String>,
    pub parents: Vec<ListenerKey>,
    pub rules: Vec<TlsRule>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub backends: Vec<WeightedBackend>,
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Certificate {
    pub key: CertificateKey,
    #[serde(default)]
    pub version: Version,
    pub cert_pem: String,
    pub key_pem: String,
    /// Set for a tenant's certificate (a TenantCertificate): it then attaches itself to
    /// listeners, so adding or renewing one is one upsert and no Listener is rewritten.
    /// Unset for a certificate a listener names in its own `tls.certificates`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<CertificateAttachment>,
}

/// Where a tenant's certificate is served: on these listeners, for these hostnames only
/// (exact or `*.` wildcard). The listener's own certificates stay its default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateAttachment {
    pub listeners: Vec<ListenerKey>,
    pub hostnames: Vec<String>,
}

impl fmt::Debug for Certificate {
    // Private keys never reach logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificate")
            .field("key", &self.key)
            .field("version", &self.version)
            .field("attachment", &self.attachment)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind")]
pub enum Resource {
    Listener(Listener),
    /// Shared: at 10,000 routes the controller's plan, what it publishes and what each proxy
    /// session holds are the same routes, and an unchanged route compares by pointer.
    HttpRoute(Arc<HttpRoute>),
    Backend(Backend),
    Certificate(Certificate),
    GrpcRoute(GrpcRoute),
    TlsRoute(TlsRoute),
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "key")]
pub enum ResourceKey {
    Listener(ListenerKey),
    HttpRoute(RouteKey),
    Backend(BackendKey),
    Certificate(CertificateKey),
    GrpcRoute(RouteKey),
    TlsRoute(RouteKey),
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceKey::Listener(k) => write!(f, "Listener {k}"),
            ResourceKey::HttpRoute(k) => write!(f, "HTTPRoute {k}"),
            ResourceKey::Backend(k) => write!(f, "Backend {k}"),
            ResourceKey::Certificate(k) => write!(f, "Certificate {k}"),
            ResourceKey::GrpcRoute(k) => write!(f, "GRPCRoute {k}"),
            ResourceKey::TlsRoute(k) => write!(f, "TLSRoute {k}"),
        }
    }
}

impl Resource {
    pub fn key(&self) -> ResourceKey {
        match self {
            Resource::Listener(r) => ResourceKey::Listener(r.key.clone()),
            Resource::HttpRoute(r) => ResourceKey::HttpRoute(r.key.clone()),
            Resource::Backend(r) => ResourceKey::Backend(r.key.clone()),
            Resource::Certificate(r) => ResourceKey::Certificate(r.key.clone()),
            Resource::GrpcRoute(r) => ResourceKey::GrpcRoute(r.key.clone()),
            Resource::TlsRoute(r) => ResourceKey::TlsRoute(r.key.clone()),
        }
    }
}

/// One atomic change to the proxy's config: applied whole or not at all.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delta {
    #[serde(default)]
    pub upserts: Vec<Resource>,
    #[serde(default)]
    pub removals: Vec<ResourceKey>,
}

impl Delta {
    pub fn is_empty(&self) -> bool {
        self.upserts.is_empty() && self.removals.is_empty()
    }
}
