//! Fake objects in (Gateway, Tenants, Secrets, TenantCertificates), certificate resources
//! and status out; the resources then go through a real proxy table and its SNI choice.

use super::*;
use crate::status::{TenantCertificateStatus, certificate_statuses, tenant_statuses};
use crate::tenancy;
use crate::testing::*;
use gatehouse_core::model::Delta;
use gatehouse_proxy::table::Table;
use k8s_openapi::ByteString;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::sync::Arc;

const GATEWAY: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: shared, namespace: infra, generation: 1}
spec:
  gatewayClassName: gatehouse
  listeners:
  - {name: http, protocol: HTTP, port: 8080, allowedRoutes: {namespaces: {from: All}}}
  - name: https
    protocol: HTTPS
    port: 8443
    allowedRoutes: {namespaces: {from: All}}
    tls: {mode: Terminate, certificateRefs: [{name: platform-tls}]}
";

struct Pem {
    cert: String,
    key: String,
    der: Vec<u8>,
}

fn pem(names: &[&str], not_after: Option<(i32, u8, u8)>) -> Pem {
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    if let Some((y, m, d)) = not_after {
        params.not_before = rcgen::date_time_ymd(y - 1, m, d);
        params.not_after = rcgen::date_time_ymd(y, m, d);
    }
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Pem {
        cert: cert.pem(),
        key: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

fn secret(ns: &str, name: &str, crt: &str, key: &str) -> Object {
    Object::Secret(std::sync::Arc::new(Secret {
        metadata: ObjectMeta {
            namespace: Some(ns.into()),
            name: Some(name.into()),
            resource_version: Some("7".into()),
            ..Default::default()
        },
        type_: Some(TLS_SECRET_TYPE.into()),
        data: Some(
            [
                ("tls.crt".to_string(), ByteString(crt.as_bytes().to_vec())),
                ("tls.key".to_string(), ByteString(key.as_bytes().to_vec())),
            ]
            .into(),
        ),
        ..Default::default()
    }))
}

fn tenant(name: &str, namespace: &str, domains: &str) -> Arc<gatehouse_crds::Tenant> {
    Arc::new(crate::testing::tenant(
        name, namespace, domains, "https", false,
    ))
}

fn tenant_cert(ns: &str, name: &str, hostnames: &str, secret: &str) -> Arc<TenantCertificate> {
    Arc::new(serde_yaml::from_str(&format!(
        "apiVersion: gatehouse.dev/v1alpha1
kind: TenantCertificate
metadata: {{name: {name}, namespace: {ns}, generation: 2, uid: uid-{name}, creationTimestamp: '2026-02-01T00:00:00Z'}}
spec: {{hostnames: {hostnames}, secretName: {secret}}}
"
    ))
    .unwrap())
}

struct World {
    platform: Pem,
    objects: Vec<Object>,
    tenancy: TenancyObjects,
}

/// The shared Gateway with its platform certificate, Tenants alice (shop.example.com and
/// *.shop.example.com) and bob (bob.example.org), and no TenantCertificates yet.
fn world() -> World {
    let platform = pem(&["*.platform.example"], None);
    let namespace = |n: &str| format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {n}}}\n");
    let mut objects = parse(&[
        CLASS,
        GATEWAY,
        &namespace("infra"),
        &namespace("alice-web"),
        &namespace("bob-web"),
    ]);
    objects.push(secret(
        "infra",
        "platform-tls",
        &platform.cert,
        &platform.key,
    ));
    World {
        platform,
        objects,
        tenancy: TenancyObjects {
            tenants: vec![
                tenant(
                    "alice",
                    "alice-web",
                    "[shop.example.com, '*.shop.example.com']",
                ),
                tenant("bob", "bob-web", "[bob.example.org]"),
            ],
            routes: vec![],
            certificates: vec![],
        },
    }
}

struct Reconciled {
    resources: gatehouse_core::scope::Config,
    statuses: BTreeMap<String, TenantCertificateStatus>,
    tenancy: Tenancy,
    /// The resources applied to a real proxy table.
    table: Table,
}

/// One reconcile as the controller runs it, every proxy acknowledging what it was sent.
fn reconcile(world: &World, memory: &mut Memory) -> Reconciled {
    let tenancy = tenancy::plan(&world.objects, &world.tenancy);
    let pool = "127.0.0.10-127.0.0.20".parse().unwrap();
    let mut plan = crate::plan::plan(&world.objects, &pool, &BTreeMap::new());
    let outcomes = serve(
        &world.objects,
        &world.tenancy,
        &tenancy,
        &plan.translation.resources,
        memory,
        certificate::unix_now(),
    );
    add_to(&mut plan.translation.resources, &outcomes);
    let resources = plan.translation.resources;
    // One proxy serving every Gateway, having acknowledged everything.
    let proxy = crate::status::ProxyAcks {
        name: "proxy".into(),
        scope: &gatehouse_core::scope::Scope::All,
        acked: Some(&resources),
        rejection: None,
    };
    let statuses = certificate_statuses(&world.tenancy, &tenancy, &outcomes, &[proxy])
        .into_iter()
        .map(|n| (n.name, n.status))
        .collect();
    let table = Table::default()
        .apply(&Delta {
            upserts: resources.values().cloned().collect(),
            removals: vec![],
        })
        .expect("the proxy accepts what the controller sends");
    Reconciled {
        resources,
        statuses,
        tenancy,
        table,
    }
}

impl Reconciled {
    /// The DER of the certificate the HTTPS listener presents for `name`.
    fn served(&self, name: &str) -> Vec<u8> {
        let listener = self
            .table
            .listener(&ListenerKey::new("infra", "shared", "https"))
            .expect("https listener");
        self.table
            .certificate_for(listener, Some(name))
            .expect("a certificate")
            .cert[0]
            .to_vec()
    }

    fn condition(&self, cert: &str, kind: &str) -> (bool, String, String) {
        let c = self.statuses[cert]
            .conditions
            .iter()
            .find(|c| c.kind == kind)
            .unwrap_or_else(|| panic!("{cert} has no {kind} condition"));
        (c.is_true(), c.reason.clone(), c.message.clone())
    }
}

#[test]
fn a_tenant_certificate_is_one_resource_served_for_its_hostnames_on_granted_listeners() {
    let mut world = world();
    let shop = pem(&["shop.example.com", "*.shop.example.com"], None);
    world
        .objects
        .push(secret("alice-web", "shop-tls", &shop.cert, &shop.key));
    world.tenancy.certificates.push(tenant_cert(
        "alice-web",
        "shop",
        "[shop.example.com, '*.shop.example.com']",
        "shop-tls",
    ));
    let r = reconcile(&world, &mut Memory::default());

    let key = ResourceKey::Certificate(certificate_key("alice-web", "shop"));
    let Some(Resource::Certificate(c)) = r.resources.get(&key) else {
        panic!(
            "no resource for the TenantCertificate: {:?}",
            r.resources.keys().collect::<Vec<_>>()
        );
    };
    assert_eq!(
        c.attachment,
        Some(CertificateAttachment {
            listeners: vec![ListenerKey::new("infra", "shared", "https")],
            hostnames: vec!["shop.example.com".into(), "*.shop.example.com".into()],
        })
    );
    // The listener itself names only the platform certificate: nothing rewrote it.
    let Some(Resource::Listener(l)) = r.resources.get(&ResourceKey::Listener(ListenerKey::new(
        "infra", "shared", "https",
    ))) else {
        panic!("no https listener");
    };
    assert_eq!(
        l.tls.as_ref().unwrap().certificates,
        vec![CertificateKey::from("infra/platform-tls")]
    );

    assert_eq!(r.served("shop.example.com"), shop.der);
    assert_eq!(r.served("www.shop.example.com"), shop.der);
    assert_eq!(r.served("app.platform.example"), world.platform.der);

    let status = &r.statuses["shop"];
    assert!(status.ready);
    assert_eq!(
        status.served_hostnames,
        ["shop.example.com", "*.shop.example.com"]
    );
    assert!(status.not_after.is_some());
    assert_eq!(
        r.condition("shop", "Ready"),
        (true, "Ready".into(), "".into())
    );
    assert_eq!(r.tenancy.tenants["alice"].usage.certificates, 1);
    let tenants = tenant_statuses(&world.tenancy, &r.tenancy);
    let alice = tenants.iter().find(|t| t.name == "alice").unwrap();
    assert_eq!(alice.status.usage.certificates, 1);
}

#[test]
fn another_tenants_hostname_is_refused_naming_the_owner_and_never_served() {
    let mut world = world();
    let stolen = pem(&["shop.example.com", "bob.example.org"], None);
    world
        .objects
        .push(secret("bob-web", "steal-tls", &stolen.cert, &stolen.key));
    world.tenancy.certificates.push(tenant_cert(
        "bob-web",
        "steal",
        "[shop.example.com, bob.example.org]",
        "steal-tls",
    ));
    world.tenancy.certificates.push(tenant_cert(
        "bob-web",
        "unassigned",
        "[free.example.net]",
        "steal-tls",
    ));
    let r = reconcile(&world, &mut Memory::default());

    let (ok, reason, message) = r.condition("steal", "Accepted");
    assert!(!ok);
    assert_eq!(reason, "ClaimedByOtherTenant");
    assert_eq!(
        message,
        "hostname shop.example.com is owned by Tenant alice"
    );
    assert_eq!(r.statuses["steal"].served_hostnames, ["bob.example.org"]);
    assert_eq!(r.served("bob.example.org"), stolen.der);
    assert_eq!(
        r.served("shop.example.com"),
        world.platform.der,
        "alice's hostname never gets bob's certificate"
    );
    assert_eq!(
        r.tenancy.tenants["bob"].lost,
        vec![(
            "shop.example.com".to_string(),
            "ClaimedByOtherTenant".to_string(),
            "Tenant alice".to_string()
        )]
    );

    let (ok, reason, message) = r.condition("unassigned", "Accepted");
    assert!(!ok);
    assert_eq!(reason, "HostnameNotOwned");
    assert!(
        message.contains("free.example.net is not assigned to Tenant bob"),
        "{message}"
    );
    assert!(!r.statuses["unassigned"].ready);
    assert!(
        !r.resources
            .contains_key(&ResourceKey::Certificate(certificate_key(
                "bob-web",
                "unassigned"
            )))
    );
}

#[test]
fn a_hostname_the_certificate_does_not_cover_is_not_served_and_status_says_so() {
    let mut world = world();
    let narrow = pem(&["shop.example.com"], None);
    world
        .objects
        .push(secret("alice-web", "shop-tls", &narrow.cert, &narrow.key));
    world.tenancy.certificates.push(tenant_cert(
        "alice-web",
        "shop",
        "[shop.example.com, www.shop.example.com]",
        "shop-tls",
    ));
    let r = reconcile(&world, &mut Memory::default());
    assert_eq!(r.statuses["shop"].served_hostnames, ["shop.example.com"]);
    assert_eq!(r.served("shop.example.com"), narrow.der);
    assert_eq!(r.served("www.shop.example.com"), world.platform.der);
    let (ok, reason, message) = r.condition("shop", "ResolvedRefs");
    assert!(!ok);
    assert_eq!(reason, "HostnameNotCovered");
    assert!(message.contains("www.shop.example.com"), "{message}");
}

#[test]
fn a_broken_secret_keeps_the_last_good_certificate_until_the_process_restarts() {
    let mut world = world();
    let good = pem(&["shop.example.com"], None);
    world
        .objects
        .push(secret("alice-web", "shop-tls", &good.cert, &good.key));
    world.tenancy.certificates.push(tenant_cert(
        "alice-web",
        "shop",
        "[shop.example.com]",
        "shop-tls",
    ));
    let mut memory = Memory::default();
    let before = reconcile(&world, &mut memory);
    let key = ResourceKey::Certificate(certificate_key("alice-web", "shop"));

    let other = pem(&["shop.example.com"], None);
    let expired = pem(&["shop.example.com"], Some((2020, 1, 2)));
    let broken = [
        (
            secret("alice-web", "shop-tls", "garbage", "garbage"),
            "InvalidCertificate",
            "tls.crt: no CERTIFICATE block found",
        ),
        (
            secret("alice-web", "shop-tls", &good.cert, &other.key),
            "InvalidCertificate",
            "tls.key: private key does not match",
        ),
        (
            secret("alice-web", "shop-tls", &expired.cert, &expired.key),
            "Expired",
            "tls.crt: certificate expired at 2020-01-02T00:00:00Z",
        ),
        (
            secret("alice-web", "other-name", &good.cert, &good.key),
            "SecretNotFound",
            "Secret alice-web/shop-tls",
        ),
    ];
    for (replacement, want_reason, want_text) in broken {
        let mut objects = world.objects.clone();
        objects.retain(|o| o.name() != "shop-tls");
        objects.push(replacement);
        let broken_world = World {
            platform: pem(&["unused.example"], None),
            objects,
            tenancy: world.tenancy.clone(),
        };
        let after = reconcile(&broken_world, &mut memory);
        assert_eq!(
            after.resources.get(&key),
            before.resources.get(&key),
            "the last good version is sent unchanged ({want_reason})"
        );
        assert_eq!(after.served("shop.example.com"), good.der);
        let (ok, reason, message) = after.condition("shop", "ResolvedRefs");
        assert!(!ok);
        assert_eq!(reason, want_reason);
        assert!(message.contains(want_text), "{message}");
        assert!(
            message.contains("still serving the last good certificate"),
            "{message}"
        );
        assert!(
            after.statuses["shop"].ready,
            "something good is still served"
        );
        assert_eq!(after.condition("shop", "Ready").1, want_reason);

        // A new process has no last good version: nothing is served, status says why.
        let fresh = reconcile(&broken_world, &mut Memory::default());
        assert!(!fresh.resources.contains_key(&key));
        assert_eq!(fresh.served("shop.example.com"), world.platform.der);
        assert!(!fresh.statuses["shop"].ready);
        assert_eq!(fresh.condition("shop", "ResolvedRefs").1, want_reason);
    }

    // Renewal: a new valid Secret replaces the last good version.
    let renewed = pem(&["shop.example.com"], None);
    world.objects.retain(|o| o.name() != "shop-tls");
    world
        .objects
        .push(secret("alice-web", "shop-tls", &renewed.cert, &renewed.key));
    let after = reconcile(&world, &mut memory);
    assert_eq!(after.served("shop.example.com"), renewed.der);
    assert!(after.condition("shop", "Ready").0);

    // Deleting the TenantCertificate removes it and forgets its last good version.
    world.tenancy.certificates.clear();
    let gone = reconcile(&world, &mut memory);
    assert!(!gone.resources.contains_key(&key));
    assert!(memory.0.is_empty());
}

#[test]
fn a_tenant_granted_no_https_listener_serves_nothing_and_says_why() {
    let mut world = world();
    Arc::make_mut(&mut world.tenancy.tenants[0]).spec.listeners[0].section_names =
        vec!["http".into()];
    let good = pem(&["shop.example.com"], None);
    world
        .objects
        .push(secret("alice-web", "shop-tls", &good.cert, &good.key));
    world.tenancy.certificates.push(tenant_cert(
        "alice-web",
        "shop",
        "[shop.example.com]",
        "shop-tls",
    ));
    let r = reconcile(&world, &mut Memory::default());
    let (ok, reason, message) = r.condition("shop", "Programmed");
    assert!(!ok);
    assert_eq!(reason, "NotServed");
    assert!(message.contains("no HTTPS listener"), "{message}");
    assert_eq!(r.served("shop.example.com"), world.platform.der);
}
