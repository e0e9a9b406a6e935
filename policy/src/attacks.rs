//! The tenant-attack matrix: one shared world and a table of named requests with the verdict
//! each must get. Kept as data so the webhook's end-to-end tests can replay the same matrix
//! over HTTPS. A few legitimate requests sit in the table too, so a policy that refuses
//! everything fails it.

use crate::decision::{Decision, DenyReason};
use crate::object::{Kind, Object};
use crate::request::{Admins, Request, UserInfo};
use crate::snapshot::Objects;
use crate::testkit::*;

pub struct AttackCase {
    pub name: &'static str,
    pub request: Request,
    pub expect: Expect,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    Allowed,
    /// Denied for `reason`, with a message containing `mentions` (usually the owner).
    Denied {
        reason: DenyReason,
        mentions: &'static str,
    },
}

impl Expect {
    /// `None` when `decision` is what this case expects, else what went wrong.
    pub fn mismatch(&self, decision: &Decision) -> Option<String> {
        match (self, decision) {
            (Expect::Allowed, Decision::Allowed) => None,
            (
                Expect::Denied { reason, mentions },
                Decision::Denied {
                    reason: got,
                    message,
                    ..
                },
            ) if reason == got => (!message.contains(mentions))
                .then(|| format!("message {message:?} does not mention {mentions:?}")),
            _ => Some(format!("expected {self:?}, got {decision:?}")),
        }
    }
}

/// Admins of the world: `system:masters` plus the `platform-admins` group.
pub fn admins() -> Admins {
    Admins::default().with_group("platform-admins")
}

/// alice owns claims and is strict; bob selects namespaces by label and sits at his route
/// and certificate limits; carol and dave (created in the same second) live on first-come
/// hostnames; erin sits at her hostname limit.
pub fn world() -> Objects {
    let tenants = vec![
        tenant("alice")
            .created(100)
            .namespaces(&["alice-shop", "alice-dev"])
            .domains(&["shop.example.com", "*.alice.example.com"])
            .listener("gateways", "public", &["http", "https"])
            .listener_set_ports(&[8443])
            .route_limit(10)
            .hostname_limit(10)
            .certificate_limit(5)
            .build(),
        tenant("bob")
            .created(200)
            .selector("team", "bob")
            .domains(&["*.bob.example.com", "api.example.org"])
            .allow_unassigned()
            .listener("gateways", "public", &[])
            .route_limit(3)
            .hostname_limit(5)
            .certificate_limit(1)
            .build(),
        tenant("carol")
            .created(300)
            .namespaces(&["carol"])
            .allow_unassigned()
            .listener("gateways", "public", &["http"])
            .listener_set_ports(&[8443])
            .build(),
        tenant("dave")
            .created(300)
            .namespaces(&["dave"])
            .allow_unassigned()
            .listener("gateways", "public", &["http"])
            .build(),
        tenant("erin")
            .created(500)
            .namespaces(&["erin"])
            .domains(&["*.erin.example.com"])
            .listener("gateways", "public", &[])
            .hostname_limit(2)
            .build(),
    ];
    let namespaces = vec![
        namespace("alice-shop", &[]),
        namespace("alice-dev", &[]),
        namespace("bob-web", &[("team", "bob")]),
        namespace("bob-db", &[("team", "bob")]),
        namespace("carol", &[]),
        namespace("dave", &[]),
        namespace("erin", &[]),
        namespace("gateways", &[]),
        namespace("platform", &[]),
        namespace("kube-system", &[]),
    ];
    let tenant_routes = vec![
        route("alice-shop", "web")
            .hostnames(&["shop.example.com"])
            .tenant_route(),
        route("bob-web", "r1")
            .hostnames(&["a.bob.example.com"])
            .tenant_route(),
        route("bob-web", "r2")
            .hostnames(&["b.bob.example.com"])
            .tenant_route(),
        route("carol", "blog")
            .hostnames(&["blog.carol.dev"])
            .created(300)
            .tenant_route(),
        route("erin", "a")
            .hostnames(&["a.erin.example.com"])
            .tenant_route(),
        route("erin", "b")
            .hostnames(&["b.erin.example.com"])
            .tenant_route(),
    ];
    let http_routes = vec![
        route("bob-web", "r3")
            .hostnames(&["api.example.org"])
            .parent("gateways", "public", None)
            .http_route(),
        route("platform", "status")
            .hostnames(&["status.example.net"])
            .parent("gateways", "public", None)
            .http_route(),
    ];
    let tenant_certificates = vec![certificate("bob-web", "api", &["api.example.org"])];
    let reference_grants = vec![reference_grant(
        "bob-db",
        "alice-reads-catalog",
        Kind::TenantRoute,
        "alice-shop",
        Some("catalog"),
    )];
    let gateways = vec![gateway(
        "gateways",
        "public",
        &[("http", 80), ("https", 443), ("admin", 9000)],
    )];
    let listener_sets = vec![
        listener_set("bob-web", "bob-ls", "gateways", "public")
            .listener("https", Some("c.bob.example.com"), 8443)
            .build(),
    ];
    Objects {
        tenants,
        namespaces,
        tenant_routes,
        tenant_certificates,
        http_routes,
        reference_grants,
        gateways,
        listener_sets,
        ..Objects::default()
    }
}

fn denied(reason: DenyReason, mentions: &'static str) -> Expect {
    Expect::Denied { reason, mentions }
}

fn create(object: impl Into<Object>, user: UserInfo) -> Request {
    Request::create(object.into(), user)
}

fn tr(ns: &str, name: &str, hostnames: &[&str]) -> Object {
    Object::TenantRoute(route(ns, name).hostnames(hostnames).tenant_route())
}

fn cert(ns: &str, name: &str, hostnames: &[&str]) -> Object {
    Object::TenantCertificate(certificate(ns, name, hostnames))
}

macro_rules! case {
    ($name:literal, $request:expr, $expect:expr $(,)?) => {
        AttackCase {
            name: $name,
            request: $request,
            expect: $expect,
        }
    };
}

/// The attacks (and a few legitimate controls), each against [`world`] with [`admins`].
pub fn cases() -> Vec<AttackCase> {
    use DenyReason::*;
    let alice = || tenant_user("alice");
    let bob = || tenant_user("bob");
    let carol = || tenant_user("carol");
    let dave = || tenant_user("dave");
    let erin = || tenant_user("erin");
    let world_tenant = |name: &str| {
        Object::Tenant(
            world()
                .tenants
                .into_iter()
                .find(|t| t.metadata.name.as_deref() == Some(name))
                .expect("tenant in world"),
        )
    };
    let public_gateway = || Object::Gateway(world().gateways[0].clone());

    vec![
        // Hostname hijacks.
        case!(
            "exact hijack of a foreign claim",
            create(tr("bob-web", "steal", &["shop.example.com"]), bob()),
            denied(HostnameClaimedByOtherTenant, "owned by tenant alice")
        ),
        case!(
            "subdomain under a foreign wildcard claim",
            create(tr("carol", "steal", &["login.alice.example.com"]), carol()),
            denied(HostnameClaimedByOtherTenant, "tenant alice")
        ),
        case!(
            "deep subdomain under a foreign wildcard claim",
            create(tr("carol", "steal", &["a.b.alice.example.com"]), carol()),
            denied(HostnameClaimedByOtherTenant, "tenant alice")
        ),
        case!(
            "wildcard equal to a foreign wildcard claim",
            create(tr("carol", "steal", &["*.alice.example.com"]), carol()),
            denied(HostnameClaimedByOtherTenant, "tenant alice")
        ),
        case!(
            "wildcard covering a foreign exact claim",
            create(tr("bob-web", "steal", &["*.example.com"]), bob()),
            denied(HostnameClaimedByOtherTenant, "owned by tenant alice")
        ),
        case!(
            "wildcard inside a foreign wildcard claim",
            create(tr("carol", "steal", &["*.x.alice.example.com"]), carol()),
            denied(HostnameClaimedByOtherTenant, "tenant alice")
        ),
        case!(
            "top-level wildcard over everyone",
            create(tr("carol", "steal", &["*.com"]), carol()),
            denied(HostnameClaimedByOtherTenant, "overlaps")
        ),
        case!(
            "hijack hidden after an own hostname",
            create(
                tr(
                    "alice-shop",
                    "mixed",
                    &["shop.example.com", "a.bob.example.com"]
                ),
                alice()
            ),
            denied(HostnameClaimedByOtherTenant, "tenant bob")
        ),
        case!(
            "uppercase spelling of a foreign claim",
            create(tr("carol", "steal", &["Shop.Example.com"]), carol()),
            denied(InvalidHostname, "shop.example.com")
        ),
        case!(
            "trailing-dot spelling of a foreign claim",
            create(tr("carol", "steal", &["shop.example.com."]), carol()),
            denied(InvalidHostname, "trailing dot")
        ),
        case!(
            "case and trailing dot together",
            create(tr("carol", "steal", &["Shop.Example.com."]), carol()),
            denied(InvalidHostname, "lowercase")
        ),
        case!(
            "IP address as hostname",
            create(tr("carol", "ip", &["10.0.0.1"]), carol()),
            denied(InvalidHostname, "10.0.0.1")
        ),
        case!(
            "wildcard in a middle label",
            create(tr("carol", "mid", &["shop.*.example.com"]), carol()),
            denied(InvalidHostname, "wildcard")
        ),
        case!(
            "bare star hostname",
            create(tr("carol", "star", &["*"]), carol()),
            denied(InvalidHostname, "\"*\"")
        ),
        case!(
            "wildcard outside own claims",
            create(tr("carol", "wild", &["*.carol.dev"]), carol()),
            denied(WildcardOutsideClaims, "tenant carol")
        ),
        case!(
            "unassigned hostname by a claims-only tenant",
            create(tr("alice-shop", "extra", &["random.example.net"]), alice()),
            denied(HostnameNotAssigned, "tenant alice")
        ),
        case!(
            "first-come hostname already used by another tenant",
            create(tr("dave", "blog", &["blog.carol.dev"]), dave()),
            denied(HostnameInUse, "tenant carol")
        ),
        case!(
            "same-second tenant takes a first-come hostname",
            create(
                Object::TenantRoute(
                    route("dave", "blog2")
                        .hostnames(&["blog.carol.dev"])
                        .created(300)
                        .tenant_route()
                ),
                dave()
            ),
            denied(HostnameInUse, "TenantRoute carol/blog")
        ),
        case!(
            "hostname served by the platform",
            create(tr("dave", "status", &["status.example.net"]), dave()),
            denied(HostnameInUse, "platform")
        ),
        case!(
            "HTTPRoute without hostnames catches every host",
            create(
                Object::HttpRoute(
                    route("carol", "catchall")
                        .parent("gateways", "public", Some("http"))
                        .http_route()
                ),
                carol()
            ),
            denied(MissingHostname, "every host")
        ),
        case!(
            "standard HTTPRoute hijacks a foreign claim",
            create(
                Object::HttpRoute(
                    route("carol", "h")
                        .hostnames(&["shop.example.com"])
                        .parent("gateways", "public", Some("http"))
                        .http_route()
                ),
                carol()
            ),
            denied(HostnameClaimedByOtherTenant, "tenant alice")
        ),
        case!(
            "TLSRoute hijacks a foreign wildcard claim",
            create(
                Object::TlsRoute(
                    route("carol", "t")
                        .hostnames(&["db.alice.example.com"])
                        .parent("gateways", "public", Some("http"))
                        .tls_route()
                ),
                carol()
            ),
            denied(HostnameClaimedByOtherTenant, "tenant alice")
        ),
        case!(
            "GRPCRoute takes a first-come hostname",
            create(
                Object::GrpcRoute(
                    route("dave", "g")
                        .hostnames(&["blog.carol.dev"])
                        .parent("gateways", "public", Some("http"))
                        .grpc_route()
                ),
                dave()
            ),
            denied(HostnameInUse, "tenant carol")
        ),
        // Certificates.
        case!(
            "certificate for a foreign exact domain",
            create(cert("carol", "c", &["shop.example.com"]), carol()),
            denied(HostnameClaimedByOtherTenant, "tenant alice")
        ),
        case!(
            "certificate for a foreign wildcard domain",
            create(cert("carol", "c", &["*.alice.example.com"]), carol()),
            denied(HostnameClaimedByOtherTenant, "tenant alice")
        ),
        case!(
            "wildcard certificate over foreign claims",
            create(cert("carol", "c", &["*.example.com"]), carol()),
            denied(HostnameClaimedByOtherTenant, "overlaps")
        ),
        case!(
            "certificate for another tenant's first-come hostname",
            create(cert("dave", "c", &["blog.carol.dev"]), dave()),
            denied(HostnameInUse, "tenant carol")
        ),
        // References.
        case!(
            "backendRef into another tenant's namespace",
            create(
                Object::TenantRoute(
                    route("alice-shop", "x")
                        .hostnames(&["x.alice.example.com"])
                        .backend(Some("bob-db"), "db")
                        .tenant_route()
                ),
                alice()
            ),
            denied(ReferenceNotPermitted, "tenant bob")
        ),
        case!(
            "ReferenceGrant names another Service",
            create(
                Object::TenantRoute(
                    route("alice-shop", "x")
                        .hostnames(&["x.alice.example.com"])
                        .backend(Some("bob-db"), "secrets")
                        .tenant_route()
                ),
                alice()
            ),
            denied(ReferenceNotPermitted, "no ReferenceGrant")
        ),
        case!(
            "ReferenceGrant is for another namespace",
            create(
                Object::TenantRoute(
                    route("carol", "x")
                        .hostnames(&["x.carol.dev"])
                        .backend(Some("bob-db"), "catalog")
                        .tenant_route()
                ),
                carol()
            ),
            denied(ReferenceNotPermitted, "tenant bob")
        ),
        case!(
            "ReferenceGrant is for another route kind",
            create(
                Object::HttpRoute(
                    route("alice-shop", "x")
                        .hostnames(&["x.alice.example.com"])
                        .parent("gateways", "public", Some("https"))
                        .backend(Some("bob-db"), "catalog")
                        .http_route()
                ),
                alice()
            ),
            denied(ReferenceNotPermitted, "HTTPRoute from namespace alice-shop")
        ),
        case!(
            "backendRef into a platform namespace",
            create(
                Object::TenantRoute(
                    route("alice-shop", "x")
                        .hostnames(&["x.alice.example.com"])
                        .backend(Some("kube-system"), "kube-dns")
                        .tenant_route()
                ),
                alice()
            ),
            denied(ReferenceNotPermitted, "no tenant")
        ),
        case!(
            "request mirror into another tenant's namespace",
            create(
                Object::TenantRoute(
                    route("alice-shop", "x")
                        .hostnames(&["x.alice.example.com"])
                        .mirror_to(Some("bob-db"), "db")
                        .tenant_route()
                ),
                alice()
            ),
            denied(ReferenceNotPermitted, "tenant bob")
        ),
        case!(
            "gRPC backendRef into another tenant's namespace",
            create(
                Object::TenantRoute(
                    route("alice-shop", "x")
                        .hostnames(&["x.alice.example.com"])
                        .backend(Some("carol"), "api")
                        .tenant_grpc_route()
                ),
                alice()
            ),
            denied(ReferenceNotPermitted, "tenant carol")
        ),
        case!(
            "backendRef to a non-Service kind",
            create(
                Object::TenantRoute(
                    route("alice-shop", "x")
                        .hostnames(&["x.alice.example.com"])
                        .backend_of_kind("", "Secret", "tokens")
                        .tenant_route()
                ),
                alice()
            ),
            denied(UnsupportedBackendKind, "Secret")
        ),
        case!(
            "ListenerSet certificate from another tenant",
            create(
                Object::ListenerSet(
                    listener_set("alice-shop", "ls", "gateways", "public")
                        .listener("https", Some("shop.example.com"), 8443)
                        .certificate(Some("bob-web"), "api-tls")
                        .build()
                ),
                alice()
            ),
            denied(ReferenceNotPermitted, "tenant bob")
        ),
        // Admin-owned objects.
        case!(
            "tenant creates a Gateway",
            create(
                Object::Gateway(gateway("alice-shop", "mine", &[("http", 80)])),
                alice()
            ),
            denied(NotAdmin, "alice-dev")
        ),
        case!(
            "tenant edits the shared Gateway's listeners",
            Request::update(
                public_gateway(),
                Object::Gateway(gateway("gateways", "public", &[("http", 80), ("ssh", 22)])),
                alice()
            ),
            denied(NotAdmin, "Gateway gateways/public")
        ),
        case!(
            "tenant deletes the shared Gateway",
            Request::delete(public_gateway(), bob()),
            denied(NotAdmin, "delete")
        ),
        case!(
            "tenant creates a GatewayClass",
            create(Object::GatewayClass(gateway_class("mine")), carol()),
            denied(NotAdmin, "GatewayClass")
        ),
        case!(
            "tenant raises its own limits",
            Request::update(
                world_tenant("bob"),
                tenant("bob")
                    .created(200)
                    .selector("team", "bob")
                    .route_limit(1000)
                    .object(),
                bob()
            ),
            denied(NotAdmin, "Tenant bob")
        ),
        case!(
            "tenant adds a domain to itself",
            Request::update(
                world_tenant("carol"),
                tenant("carol")
                    .created(300)
                    .namespaces(&["carol"])
                    .domains(&["*.example.net"])
                    .object(),
                carol()
            ),
            denied(NotAdmin, "Tenant carol")
        ),
        case!(
            "tenant creates a Tenant",
            create(
                tenant("mallory")
                    .namespaces(&["alice-shop"])
                    .domains(&["*.example.com"])
                    .object(),
                dave()
            ),
            denied(NotAdmin, "Tenant mallory")
        ),
        case!(
            "tenant deletes another Tenant",
            Request::delete(world_tenant("alice"), bob()),
            denied(NotAdmin, "Tenant alice")
        ),
        // Quotas.
        case!(
            "one route over the route limit",
            create(tr("bob-web", "r4", &["d.bob.example.com"]), bob()),
            denied(RouteQuotaExceeded, "Tenant bob spec.limits.routes")
        ),
        case!(
            "route limit bypass through a standard kind",
            create(
                Object::GrpcRoute(
                    route("bob-db", "g")
                        .hostnames(&["a.bob.example.com"])
                        .parent("gateways", "public", None)
                        .grpc_route()
                ),
                bob()
            ),
            denied(RouteQuotaExceeded, "tenant bob")
        ),
        case!(
            "hostname limit bypass with many small routes",
            create(tr("erin", "c", &["c.erin.example.com"]), erin()),
            denied(HostnameQuotaExceeded, "Tenant erin spec.limits.hostnames")
        ),
        case!(
            "hostname limit bypass by growing an existing route",
            Request::update(
                tr("erin", "a", &["a.erin.example.com"]),
                tr("erin", "a", &["a.erin.example.com", "z.erin.example.com"]),
                erin()
            ),
            denied(HostnameQuotaExceeded, "tenant erin")
        ),
        case!(
            "certificate limit bypass",
            create(cert("bob-web", "second", &["a.bob.example.com"]), bob()),
            denied(
                CertificateQuotaExceeded,
                "Tenant bob spec.limits.certificates"
            )
        ),
        // Listeners.
        case!(
            "ListenerSet on a forbidden port",
            create(
                Object::ListenerSet(
                    listener_set("alice-shop", "ls", "gateways", "public")
                        .listener("ssh", Some("ssh.alice.example.com"), 22)
                        .build()
                ),
                alice()
            ),
            denied(PortNotAllowed, "Tenant alice spec.listenerSetPorts")
        ),
        case!(
            "ListenerSet on a Gateway not granted",
            create(
                Object::ListenerSet(
                    listener_set("alice-shop", "ls", "gateways", "internal")
                        .listener("https", Some("shop.example.com"), 8443)
                        .build()
                ),
                alice()
            ),
            denied(ListenerNotAllowed, "gateways/internal")
        ),
        case!(
            "ListenerSet listener without hostname",
            create(
                Object::ListenerSet(
                    listener_set("carol", "ls", "gateways", "public")
                        .listener("any", None, 8443)
                        .build()
                ),
                carol()
            ),
            denied(MissingHostname, "every host")
        ),
        case!(
            "ListenerSet hostname in a foreign claim",
            create(
                Object::ListenerSet(
                    listener_set("carol", "ls", "gateways", "public")
                        .listener("https", Some("shop.example.com"), 8443)
                        .build()
                ),
                carol()
            ),
            denied(HostnameClaimedByOtherTenant, "tenant alice")
        ),
        case!(
            "HTTPRoute on a listener section not granted",
            create(
                Object::HttpRoute(
                    route("carol", "h")
                        .hostnames(&["h.carol.dev"])
                        .parent("gateways", "public", Some("admin"))
                        .http_route()
                ),
                carol()
            ),
            denied(ListenerNotAllowed, "tenant carol")
        ),
        case!(
            "HTTPRoute on every section when only some are granted",
            create(
                Object::HttpRoute(
                    route("carol", "h")
                        .hostnames(&["h.carol.dev"])
                        .parent("gateways", "public", None)
                        .http_route()
                ),
                carol()
            ),
            denied(ListenerNotAllowed, "all listeners")
        ),
        case!(
            "HTTPRoute on the default Gateways",
            create(
                Object::HttpRoute(
                    route("carol", "h")
                        .hostnames(&["h.carol.dev"])
                        .default_gateways()
                        .http_route()
                ),
                carol()
            ),
            denied(ListenerNotAllowed, "default Gateways")
        ),
        case!(
            "HTTPRoute on another tenant's ListenerSet",
            create(
                Object::HttpRoute(
                    route("alice-shop", "h")
                        .hostnames(&["h.alice.example.com"])
                        .parent_listener_set("bob-web", "bob-ls")
                        .http_route()
                ),
                alice()
            ),
            denied(ListenerNotAllowed, "ListenerSet bob-web/bob-ls")
        ),
        // Namespaces and tenants.
        case!(
            "new namespace labelled into another tenant",
            create(
                Object::Namespace(namespace("evil", &[("team", "bob")])),
                carol()
            ),
            denied(NotAdmin, "tenant bob")
        ),
        case!(
            "own namespace relabelled into a second tenant",
            Request::update(
                Object::Namespace(namespace("carol", &[])),
                Object::Namespace(namespace("carol", &[("team", "bob")])),
                carol()
            ),
            denied(NamespaceConflict, "tenant bob")
        ),
        case!(
            "TenantRoute in a platform namespace",
            create(tr("platform", "x", &["x.example.net"]), carol()),
            denied(NamespaceWithoutTenant, "platform")
        ),
        case!(
            "admin gives a second tenant an overlapping wildcard claim",
            create(
                tenant("mallory")
                    .namespaces(&["mallory"])
                    .domains(&["*.example.com"])
                    .object(),
                admin()
            ),
            denied(ClaimOverlap, "tenant alice")
        ),
        case!(
            "admin gives a second tenant an existing namespace",
            create(
                tenant("mallory").namespaces(&["alice-shop"]).object(),
                admin()
            ),
            denied(NamespaceConflict, "tenant alice")
        ),
        case!(
            "admin selector swallows another tenant's namespaces",
            create(tenant("mallory").selector("team", "bob").object(), admin()),
            denied(NamespaceConflict, "tenant bob")
        ),
        // Legitimate controls: the same shapes, done right.
        case!(
            "control: own exact claim",
            create(tr("alice-dev", "shop2", &["shop.example.com"]), alice()),
            Expect::Allowed
        ),
        case!(
            "control: own wildcard claim and subdomain",
            create(
                tr(
                    "alice-shop",
                    "w",
                    &[
                        "*.alice.example.com",
                        "*.x.alice.example.com",
                        "a.alice.example.com"
                    ]
                ),
                alice()
            ),
            Expect::Allowed
        ),
        case!(
            "control: fresh first-come hostname",
            create(tr("dave", "d", &["new.dave.dev"]), dave()),
            Expect::Allowed
        ),
        case!(
            "control: backendRef allowed by a ReferenceGrant",
            create(
                Object::TenantRoute(
                    route("alice-shop", "x")
                        .hostnames(&["x.alice.example.com"])
                        .backend(Some("bob-db"), "catalog")
                        .tenant_route()
                ),
                alice()
            ),
            Expect::Allowed
        ),
        case!(
            "control: backendRef across own namespaces",
            create(
                Object::TenantRoute(
                    route("alice-shop", "x")
                        .hostnames(&["x.alice.example.com"])
                        .backend(Some("alice-dev"), "api")
                        .tenant_route()
                ),
                alice()
            ),
            Expect::Allowed
        ),
        case!(
            "control: ListenerSet on a granted port",
            create(
                Object::ListenerSet(
                    listener_set("alice-shop", "ls", "gateways", "public")
                        .listener("https", Some("shop.example.com"), 8443)
                        .certificate(None, "shop-tls")
                        .build()
                ),
                alice()
            ),
            Expect::Allowed
        ),
        case!(
            "control: reusing a counted hostname at the hostname limit",
            create(tr("erin", "a2", &["a.erin.example.com"]), erin()),
            Expect::Allowed
        ),
        case!(
            "control: swapping a hostname at the hostname limit",
            Request::update(
                tr("erin", "a", &["a.erin.example.com"]),
                tr("erin", "a", &["z.erin.example.com"]),
                erin()
            ),
            Expect::Allowed
        ),
        case!(
            "control: updating a route at the route limit",
            Request::update(
                tr("bob-web", "r1", &["a.bob.example.com"]),
                tr("bob-web", "r1", &["a.bob.example.com", "e.bob.example.com"]),
                bob()
            ),
            Expect::Allowed
        ),
        case!(
            "control: deleting an own route",
            Request::delete(tr("bob-web", "r1", &["a.bob.example.com"]), bob()),
            Expect::Allowed
        ),
        case!(
            "control: admin edits the shared Gateway",
            Request::update(
                public_gateway(),
                Object::Gateway(gateway("gateways", "public", &[("http", 80)])),
                admin()
            ),
            Expect::Allowed
        ),
        case!(
            "control: admin in the configured group raises a limit",
            Request::update(
                world_tenant("bob"),
                tenant("bob")
                    .created(200)
                    .selector("team", "bob")
                    .domains(&["*.bob.example.com", "api.example.org"])
                    .route_limit(10)
                    .object(),
                UserInfo::new("ops", &["platform-admins"])
            ),
            Expect::Allowed
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Policy, Snapshot};
    use std::collections::HashSet;

    #[test]
    fn every_attack_gets_its_verdict() {
        let snapshot = Snapshot::new(world());
        let policy = Policy::new(admins());
        let failures: Vec<String> = cases()
            .iter()
            .filter_map(|case| {
                let decision = policy.decide(&snapshot, &case.request);
                case.expect
                    .mismatch(&decision)
                    .map(|why| format!("{}: {why}", case.name))
            })
            .collect();
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn matrix_is_large_and_names_are_unique() {
        let cases = cases();
        let attacks = cases.iter().filter(|c| c.expect != Expect::Allowed).count();
        assert!(attacks >= 40, "only {attacks} attacks");
        let names: HashSet<&str> = cases.iter().map(|c| c.name).collect();
        assert_eq!(names.len(), cases.len(), "duplicate case names");
    }

    #[test]
    fn every_denial_names_object_and_field() {
        let snapshot = Snapshot::new(world());
        let policy = Policy::new(admins());
        for case in cases() {
            if let Decision::Denied { field, message, .. } = policy.decide(&snapshot, &case.request)
            {
                let subject = case.request.target().expect("target").to_string();
                assert!(message.starts_with(&subject), "{}: {message}", case.name);
                assert!(message.contains(&field), "{}: {message}", case.name);
            }
        }
    }
}
