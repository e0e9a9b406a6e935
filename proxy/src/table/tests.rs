//! Table behaviour: apply deltas, then ask which route a request lands on.

use super::*;
use crate::table::compiled::RequestHeaders;
use gatehouse_core::model::{
    BackendKey, BackendTarget, HttpMatch, HttpRoute, HttpRule, ListenerProtocol, PathMatch,
    WeightedBackend,
};
use http::{HeaderMap, Method};

const SOCKET: &str = "127.0.0.1:8080";

fn listener(name: &str, hostname: Option<&str>) -> Resource {
    Resource::Listener(Listener {
        key: ListenerKey::new("ns", "gw", name),
        version: 1,
        address: "127.0.0.1".parse().unwrap(),
        port: 8080,
        protocol: ListenerProtocol::Http,
        hostname: hostname.map(str::to_string),
        tls: None,
    })
}

fn rule(path: PathMatch, backend: &str) -> HttpRule {
    HttpRule {
        matches: vec![HttpMatch {
            path,
            ..Default::default()
        }],
        backends: vec![WeightedBackend {
            target: BackendTarget::Service(BackendKey(backend.into())),
            weight: 1,
            filters: vec![],
        }],
        ..Default::default()
    }
}

fn route(name: &str, hostnames: &[&str], parents: &[&str], rules: Vec<HttpRule>) -> HttpRoute {
    HttpRoute {
        key: RouteKey::new("ns", name),
        version: 1,
        created_ms: 0,
        hostnames: hostnames.iter().map(|h| h.to_string()).collect(),
        parents: parents
            .iter()
            .map(|l| ListenerKey::new("ns", "gw", l))
            .collect(),
        rules,
    }
}

fn prefix(p: &str) -> PathMatch {
    PathMatch::PathPrefix(p.into())
}

fn apply(table: &Table, upserts: Vec<Resource>, removals: Vec<ResourceKey>) -> Table {
    table
        .apply(&Delta { upserts, removals })
        .expect("delta applies")
}

/// The backend a GET for `host` + `path` reaches, or None for a 404.
fn lookup(table: &Table, host: &str, path: &str) -> Option<String> {
    let headers = HeaderMap::new();
    let req = RequestView {
        method: &Method::GET,
        path,
        query: None,
        headers: RequestHeaders::Map(&headers),
    };
    let listener = table.select_listener(SOCKET.parse().unwrap(), host)?;
    let entry = table.route(&listener.key, host, &req)?;
    match &entry.rule().backends[0].target {
        BackendTarget::Service(k) => Some(k.0.clone()),
        BackendTarget::Invalid(r) => Some(format!("invalid: {r}")),
    }
}

#[test]
fn exact_hostname_beats_wildcard_and_falls_through_by_path() {
    let t = apply(
        &Table::default(),
        vec![
            listener("http", None),
            http_route(route(
                "exact",
                &["a.example.com"],
                &["http"],
                vec![rule(prefix("/only"), "exact")],
            )),
            http_route(route(
                "wild",
                &["*.example.com"],
                &["http"],
                vec![rule(prefix("/"), "wild")],
            )),
            http_route(route(
                "wilder",
                &["*.b.example.com"],
                &["http"],
                vec![rule(prefix("/"), "wilder")],
            )),
        ],
        vec![],
    );
    assert_eq!(
        lookup(&t, "a.example.com", "/only/x").as_deref(),
        Some("exact")
    );
    // The exact hostname's routes do not match this path: the wildcard serves it.
    assert_eq!(
        lookup(&t, "a.example.com", "/other").as_deref(),
        Some("wild")
    );
    assert_eq!(lookup(&t, "x.y.example.com", "/").as_deref(), Some("wild"));
    assert_eq!(
        lookup(&t, "c.b.example.com", "/").as_deref(),
        Some("wilder")
    );
    assert_eq!(lookup(&t, "example.com", "/"), None);
}

#[test]
fn listener_hostname_intersects_route_hostnames() {
    let t = apply(
        &Table::default(),
        vec![
            listener("wild", Some("*.example.com")),
            http_route(route(
                "r",
                &["foo.example.com", "bar.other.org"],
                &["wild"],
                vec![rule(prefix("/"), "b")],
            )),
            http_route(route(
                "any",
                &[],
                &["wild"],
                vec![rule(prefix("/any"), "any")],
            )),
        ],
        vec![],
    );
    assert_eq!(lookup(&t, "foo.example.com", "/").as_deref(), Some("b"));
    assert_eq!(lookup(&t, "bar.other.org", "/"), None);
    // A route without hostnames takes the listener's.
    assert_eq!(
        lookup(&t, "zzz.example.com", "/any").as_deref(),
        Some("any")
    );
    assert_eq!(lookup(&t, "zzz.other.org", "/any"), None);
}

#[test]
fn listeners_on_one_socket_are_isolated_by_hostname() {
    let t = apply(
        &Table::default(),
        vec![
            listener("empty", None),
            listener("wild", Some("*.example.com")),
            listener("exact", Some("foo.example.com")),
            http_route(route(
                "e",
                &[],
                &["empty"],
                vec![rule(prefix("/"), "empty")],
            )),
            http_route(route("w", &[], &["wild"], vec![rule(prefix("/"), "wild")])),
            http_route(route(
                "x",
                &[],
                &["exact"],
                vec![rule(prefix("/x"), "exact")],
            )),
        ],
        vec![],
    );
    assert_eq!(
        lookup(&t, "foo.example.com", "/x").as_deref(),
        Some("exact")
    );
    // foo.example.com belongs to the exact listener: its other paths do not leak to others.
    assert_eq!(lookup(&t, "foo.example.com", "/y"), None);
    assert_eq!(lookup(&t, "bar.example.com", "/y").as_deref(), Some("wild"));
    assert_eq!(lookup(&t, "other.org", "/y").as_deref(), Some("empty"));
}

#[test]
fn precedence_across_routes_uses_age_then_name_then_rule_order() {
    let mut old = route("zzz-old", &[], &["http"], vec![rule(prefix("/p"), "old")]);
    old.created_ms = 1;
    let mut young_a = route(
        "aaa-young",
        &[],
        &["http"],
        vec![rule(prefix("/p"), "young-a")],
    );
    young_a.created_ms = 2;
    let mut young_b = route(
        "bbb-young",
        &[],
        &["http"],
        vec![rule(prefix("/q"), "young-b")],
    );
    young_b.created_ms = 2;
    let mut same_b = route("bbb", &[], &["http"], vec![rule(prefix("/q"), "bbb")]);
    same_b.created_ms = 2;
    let longer = route(
        "longer",
        &[],
        &["http"],
        vec![rule(prefix("/p/long"), "longer")],
    );
    let exact = route(
        "exact",
        &[],
        &["http"],
        vec![
            rule(PathMatch::Exact("/p/long/x".into()), "exact-first"),
            rule(PathMatch::Exact("/p/long/x".into()), "exact-second"),
        ],
    );
    let t = apply(
        &Table::default(),
        vec![
            listener("http", None),
            http_route(young_a),
            http_route(old),
            http_route(young_b),
            http_route(same_b),
            http_route(longer),
            http_route(exact),
        ],
        vec![],
    );
    assert_eq!(lookup(&t, "h", "/p").as_deref(), Some("old"));
    assert_eq!(lookup(&t, "h", "/q").as_deref(), Some("bbb"));
    assert_eq!(lookup(&t, "h", "/p/long/y").as_deref(), Some("longer"));
    assert_eq!(lookup(&t, "h", "/p/long/x").as_deref(), Some("exact-first"));
}

#[test]
fn updates_replace_removals_remove_and_late_listeners_attach() {
    let r1 = route(
        "r",
        &["a.example.com"],
        &["http"],
        vec![rule(prefix("/"), "v1")],
    );
    // The route arrives before its listener.
    let t = apply(&Table::default(), vec![http_route(r1)], vec![]);
    assert_eq!(lookup(&t, "a.example.com", "/"), None);
    let t = apply(&t, vec![listener("http", None)], vec![]);
    assert_eq!(lookup(&t, "a.example.com", "/").as_deref(), Some("v1"));

    let r2 = route(
        "r",
        &["b.example.com"],
        &["http"],
        vec![rule(prefix("/"), "v2")],
    );
    let t2 = apply(&t, vec![http_route(r2)], vec![]);
    assert_eq!(lookup(&t2, "a.example.com", "/"), None);
    assert_eq!(lookup(&t2, "b.example.com", "/").as_deref(), Some("v2"));
    // The previous snapshot still answers as before: in-flight requests keep their view.
    assert_eq!(lookup(&t, "a.example.com", "/").as_deref(), Some("v1"));

    let t3 = apply(
        &t2,
        vec![],
        vec![ResourceKey::Listener(ListenerKey::new("ns", "gw", "http"))],
    );
    assert_eq!(lookup(&t3, "b.example.com", "/"), None);
    assert!(t3.socket_addrs().next().is_none());
    let t4 = apply(&t3, vec![listener("http", None)], vec![]);
    assert_eq!(lookup(&t4, "b.example.com", "/").as_deref(), Some("v2"));
    let t5 = apply(
        &t4,
        vec![],
        vec![ResourceKey::HttpRoute(RouteKey::new("ns", "r"))],
    );
    assert_eq!(lookup(&t5, "b.example.com", "/"), None);
    assert_eq!(t5.stats().routes, 0);
}

#[test]
fn listener_hostname_change_reindexes_its_routes() {
    let t = apply(
        &Table::default(),
        vec![
            listener("l", Some("*.one.test")),
            http_route(route("r", &[], &["l"], vec![rule(prefix("/"), "b")])),
        ],
        vec![],
    );
    assert_eq!(lookup(&t, "x.one.test", "/").as_deref(), Some("b"));
    let t = apply(&t, vec![listener("l", Some("*.two.test"))], vec![]);
    assert_eq!(lookup(&t, "x.one.test", "/"), None);
    assert_eq!(lookup(&t, "x.two.test", "/").as_deref(), Some("b"));
}

#[test]
fn a_bad_resource_rejects_the_whole_delta() {
    let t = apply(
        &Table::default(),
        vec![
            listener("http", None),
            http_route(route(
                "good",
                &[],
                &["http"],
                vec![rule(prefix("/"), "good")],
            )),
        ],
        vec![],
    );
    let bad = route(
        "bad",
        &[],
        &["http"],
        vec![rule(PathMatch::RegularExpression("([".into()), "bad")],
    );
    let replacement = route("good", &[], &["http"], vec![rule(prefix("/"), "changed")]);
    let err = t
        .apply(&Delta {
            upserts: vec![http_route(replacement), http_route(bad)],
            removals: vec![],
        })
        .err()
        .expect("bad regex is refused");
    let message = err.to_string();
    assert!(message.contains("ns/bad"), "{message}");
    assert!(message.contains("rules[0].matches[0].path"), "{message}");
    assert_eq!(lookup(&t, "h", "/").as_deref(), Some("good"));
}

#[test]
fn many_routes_on_distinct_hosts_each_resolve() {
    let mut upserts = vec![listener("http", None)];
    for i in 0..2_000 {
        upserts.push(http_route(route(
            &format!("r{i}"),
            &[&format!("r{i}.example.com")],
            &["http"],
            vec![rule(prefix("/"), &format!("b{i}"))],
        )));
    }
    let t = apply(&Table::default(), upserts, vec![]);
    for i in (0..2_000).step_by(97) {
        assert_eq!(
            lookup(&t, &format!("r{i}.example.com"), "/"),
            Some(format!("b{i}"))
        );
    }
    assert_eq!(lookup(&t, "r2000.example.com", "/"), None);
}

#[test]
fn one_delta_in_any_order_and_repeated_keys_keep_the_last_version() {
    let first = route(
        "r",
        &["a.example.com"],
        &["http"],
        vec![rule(prefix("/"), "first")],
    );
    let last = route(
        "r",
        &["b.example.com"],
        &["http"],
        vec![rule(prefix("/"), "last")],
    );
    let other = route("o", &[], &["http"], vec![rule(prefix("/o"), "other")]);
    // Routes before their listener, and one key twice.
    let t = apply(
        &Table::default(),
        vec![
            http_route(first),
            http_route(other),
            listener("http", None),
            http_route(last),
        ],
        vec![],
    );
    assert_eq!(lookup(&t, "a.example.com", "/"), None);
    assert_eq!(lookup(&t, "b.example.com", "/").as_deref(), Some("last"));
    assert_eq!(
        lookup(&t, "any.example.com", "/o").as_deref(),
        Some("other")
    );
    assert_eq!(t.stats().routes, 2);
}

mod certificates {
    use super::*;
    use gatehouse_core::model::{Certificate, ListenerTls, TlsMode};

    struct Made {
        resource: Resource,
        der: Vec<u8>,
    }

    fn cert(key: &str, names: &[&str]) -> Made {
        let pair = rcgen::KeyPair::generate().unwrap();
        let made =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap()
                .self_signed(&pair)
                .unwrap();
        Made {
            resource: Resource::Certificate(Certificate {
                key: key.into(),
                version: 1,
                cert_pem: made.pem(),
                key_pem: pair.serialize_pem(),
                attachment: None,
            }),
            der: made.der().to_vec(),
        }
    }

    fn https(refs: &[&str]) -> Resource {
        Resource::Listener(Listener {
            key: ListenerKey::new("ns", "gw", "https"),
            version: 1,
            address: "127.0.0.1".parse().unwrap(),
            port: 8080,
            protocol: ListenerProtocol::Https,
            hostname: None,
            tls: Some(ListenerTls {
                mode: TlsMode::Terminate,
                certificates: refs.iter().map(|r| CertificateKey::from(*r)).collect(),
            }),
        })
    }

    /// The DER of the certificate presented for `name`.
    fn served(table: &Table, name: &str) -> Option<Vec<u8>> {
        let listener = table.listener(&ListenerKey::new("ns", "gw", "https"))?;
        let key = table.certificate_for(listener, Some(name))?;
        Some(key.cert[0].to_vec())
    }

    #[test]
    fn certificate_arriving_after_its_listener_is_indexed() {
        let a = cert("ns/a", &["a.example.com"]);
        let t = apply(&Table::default(), vec![https(&["ns/a"])], vec![]);
        assert_eq!(served(&t, "a.example.com"), None);
        let t = apply(&t, vec![a.resource], vec![]);
        assert_eq!(served(&t, "a.example.com"), Some(a.der));
    }

    #[test]
    fn swap_with_new_names_moves_the_index_and_removal_falls_back_to_the_default() {
        let default = cert("ns/default", &["default.example.com"]);
        let a = cert("ns/a", &["a.example.com"]);
        let t = apply(
            &Table::default(),
            vec![default.resource, a.resource, https(&["ns/default", "ns/a"])],
            vec![],
        );
        assert_eq!(served(&t, "a.example.com"), Some(a.der.clone()));
        // Same key, different name: a.example.com now gets the default, b.example.com the new one.
        let b = cert("ns/a", &["b.example.com"]);
        let t2 = apply(&t, vec![b.resource], vec![]);
        assert_eq!(served(&t2, "b.example.com"), Some(b.der.clone()));
        assert_eq!(served(&t2, "a.example.com"), Some(default.der.clone()));
        // The earlier snapshot is untouched: connections that started on it see the old state.
        assert_eq!(served(&t, "a.example.com"), Some(a.der));
        let t3 = apply(&t2, vec![], vec![ResourceKey::Certificate("ns/a".into())]);
        assert_eq!(served(&t3, "b.example.com"), Some(default.der.clone()));
        assert_eq!(t3.stats().certificates, 1);
        // Dropping the ref from the listener stops serving it even though it is loaded.
        let t4 = apply(&t2, vec![https(&["ns/default"])], vec![]);
        assert_eq!(served(&t4, "b.example.com"), Some(default.der));
    }

    #[test]
    fn a_delta_with_a_bad_certificate_changes_nothing() {
        let a = cert("ns/a", &["a.example.com"]);
        let t = apply(
            &Table::default(),
            vec![a.resource, https(&["ns/a"])],
            vec![],
        );
        let mismatched = match (
            cert("ns/a", &["a.example.com"]).resource,
            cert("x", &[]).resource,
        ) {
            (Resource::Certificate(mut c), Resource::Certificate(other)) => {
                c.key_pem = other.key_pem;
                Resource::Certificate(c)
            }
            _ => unreachable!(),
        };
        let err = t
            .apply(&Delta {
                upserts: vec![listener("extra", None), mismatched],
                removals: vec![],
            })
            .err()
            .expect("refused");
        assert_eq!(
            err.to_string(),
            "Certificate ns/a: keyPem: private key does not match the certificate's public key"
        );
        assert_eq!(served(&t, "a.example.com"), Some(a.der));
    }

    /// A tenant's certificate attached to the `ns/gw/https` listener for `hostnames`.
    fn tenant_cert(key: &str, names: &[&str], hostnames: &[&str]) -> Made {
        let mut made = cert(key, names);
        if let Resource::Certificate(c) = &mut made.resource {
            c.attachment = Some(gatehouse_core::model::CertificateAttachment {
                listeners: vec![ListenerKey::new("ns", "gw", "https")],
                hostnames: hostnames.iter().map(|h| h.to_string()).collect(),
            });
        }
        made
    }

    #[test]
    fn a_tenant_certificate_serves_its_hostnames_and_the_listener_keeps_its_default() {
        let default = cert("ns/default", &["*.platform.example", "*.shop.example"]);
        let shop = tenant_cert(
            "t/tenantcertificate:shop",
            &["www.shop.example", "api.shop.example"],
            &["www.shop.example"],
        );
        let t = apply(
            &Table::default(),
            vec![default.resource, https(&["ns/default"]), shop.resource],
            vec![],
        );
        assert_eq!(served(&t, "www.shop.example"), Some(shop.der.clone()));
        // A name the certificate covers but the attachment does not list stays the listener's.
        assert_eq!(served(&t, "api.shop.example"), Some(default.der.clone()));
        assert_eq!(served(&t, "other.example"), Some(default.der.clone()));
        // Removing the tenant certificate: its hostname falls back to the listener's own.
        let t2 = apply(
            &t,
            vec![],
            vec![ResourceKey::Certificate("t/tenantcertificate:shop".into())],
        );
        assert_eq!(served(&t2, "www.shop.example"), Some(default.der));
        assert_eq!(
            served(&t, "www.shop.example"),
            Some(shop.der),
            "old snapshot kept"
        );
    }

    #[test]
    fn exact_beats_wildcard_across_listener_and_tenant_certificates() {
        let own_wild = cert("ns/wild", &["*.shop.example"]);
        let own_exact = cert("ns/exact", &["pay.shop.example"]);
        let tenant_exact = tenant_cert("t/tc:a", &["www.shop.example"], &["www.shop.example"]);
        let tenant_wild = tenant_cert("t/tc:w", &["*.blog.example"], &["*.blog.example"]);
        let t = apply(
            &Table::default(),
            vec![
                own_wild.resource,
                own_exact.resource,
                https(&["ns/wild", "ns/exact"]),
                tenant_exact.resource,
                tenant_wild.resource,
            ],
            vec![],
        );
        assert_eq!(served(&t, "www.shop.example"), Some(tenant_exact.der));
        assert_eq!(served(&t, "pay.shop.example"), Some(own_exact.der));
        assert_eq!(served(&t, "x.shop.example"), Some(own_wild.der.clone()));
        assert_eq!(served(&t, "a.blog.example"), Some(tenant_wild.der));
        assert_eq!(served(&t, "a.b.blog.example"), Some(own_wild.der));
    }

    #[test]
    fn a_hostname_the_certificate_does_not_cover_is_never_served_with_it() {
        let default = cert("ns/default", &["default.example"]);
        let liar = tenant_cert(
            "t/tc:liar",
            &["mine.example"],
            &["mine.example", "bank.example"],
        );
        let t = apply(
            &Table::default(),
            vec![default.resource, https(&["ns/default"]), liar.resource],
            vec![],
        );
        assert_eq!(served(&t, "mine.example"), Some(liar.der));
        assert_eq!(served(&t, "bank.example"), Some(default.der));
    }

    #[test]
    fn renewal_is_one_upsert_and_the_next_handshake_gets_it() {
        let default = cert("ns/default", &["default.example"]);
        let v1 = tenant_cert("t/tc:shop", &["www.shop.example"], &["www.shop.example"]);
        let t = apply(
            &Table::default(),
            vec![default.resource, https(&["ns/default"]), v1.resource],
            vec![],
        );
        let listener_before = t.listener(&ListenerKey::new("ns", "gw", "https")).cloned();
        let v2 = tenant_cert("t/tc:shop", &["www.shop.example"], &["www.shop.example"]);
        let t2 = apply(&t, vec![v2.resource], vec![]);
        assert_eq!(served(&t2, "www.shop.example"), Some(v2.der));
        assert!(Arc::ptr_eq(
            &listener_before.unwrap(),
            t2.listener(&ListenerKey::new("ns", "gw", "https")).unwrap()
        ));
        // Moving the attachment to another hostname drops the old one.
        let v3 = tenant_cert(
            "t/tc:shop",
            &["www.shop.example", "new.shop.example"],
            &["new.shop.example"],
        );
        let t3 = apply(&t2, vec![v3.resource], vec![]);
        assert_eq!(served(&t3, "new.shop.example"), Some(v3.der));
        assert_eq!(served(&t3, "www.shop.example"), Some(default.der));
    }

    #[test]
    fn a_tenant_certificate_waits_for_its_listener() {
        let default = cert("ns/default", &["default.example"]);
        let shop = tenant_cert("t/tc:shop", &["www.shop.example"], &["www.shop.example"]);
        let t = apply(&Table::default(), vec![shop.resource], vec![]);
        assert_eq!(served(&t, "www.shop.example"), None);
        let t = apply(&t, vec![default.resource, https(&["ns/default"])], vec![]);
        assert_eq!(served(&t, "www.shop.example"), Some(shop.der.clone()));
        // Removing and re-adding the listener keeps the attachment.
        let t = apply(
            &t,
            vec![],
            vec![ResourceKey::Listener(ListenerKey::new("ns", "gw", "https"))],
        );
        let t = apply(&t, vec![https(&["ns/default"])], vec![]);
        assert_eq!(served(&t, "www.shop.example"), Some(shop.der));
    }
}

#[test]
fn binding_any_address_puts_every_listener_on_the_wildcard_socket_of_its_port() {
    let table = apply(
        &Table::binding_any_address(),
        vec![listener("a", Some("a.test")), listener("b", Some("b.test"))],
        vec![],
    );
    let sockets: Vec<SocketAddr> = table.socket_addrs().copied().collect();
    assert_eq!(sockets, vec!["0.0.0.0:8080".parse().unwrap()]);
    // A connection accepted on any local address of the port finds its listener by host.
    let local: SocketAddr = "10.1.2.3:8080".parse().unwrap();
    let chosen = |host| table.select_listener(local, host).map(|l| l.key.clone());
    assert_eq!(chosen("a.test"), Some(ListenerKey::new("ns", "gw", "a")));
    assert_eq!(chosen("b.test"), Some(ListenerKey::new("ns", "gw", "b")));
    assert_eq!(chosen("c.test"), None);

    let as_configured = apply(&Table::default(), vec![listener("a", None)], vec![]);
    let sockets: Vec<SocketAddr> = as_configured.socket_addrs().copied().collect();
    assert_eq!(sockets, vec![SOCKET.parse().unwrap()]);
}

#[test]
fn a_request_belongs_to_the_listener_its_server_name_chose_or_is_misdirected() {
    let table = apply(
        &Table::default(),
        vec![listener("a", Some("a.test")), listener("b", Some("b.test"))],
        vec![],
    );
    let socket: SocketAddr = SOCKET.parse().unwrap();
    let key = |r: Result<Option<&Arc<Listener>>, Misdirected>| r.map(|l| l.map(|l| l.key.clone()));
    let a = Ok(Some(ListenerKey::new("ns", "gw", "a")));
    assert_eq!(key(table.request_listener(socket, "a.test", None)), a);
    assert_eq!(
        key(table.request_listener(socket, "a.test", Some("a.test"))),
        a
    );
    assert_eq!(
        key(table.request_listener(socket, "b.test", Some("a.test"))),
        Err(Misdirected)
    );
    assert_eq!(
        key(table.request_listener(socket, "c.test", Some("a.test"))),
        Err(Misdirected)
    );
    // Plain HTTP has no server name to disagree with.
    assert_eq!(
        key(table.request_listener(socket, "c.test", None)),
        Ok(None)
    );
}

fn http_route(route: HttpRoute) -> Resource {
    Resource::HttpRoute(Arc::new(route))
}
