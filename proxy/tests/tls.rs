//! TLS termination over real sockets: SNI certificate selection among many, certificate
//! swaps under traffic, refusal of bad certificates, HTTP/1.1 and h2 over TLS, and listener
//! isolation (421) on a shared port.

mod common;
#[path = "common/tls.rs"]
mod tls;

use common::{free_port, start_echo};
use gatehouse_core::model::{
    Delta, HttpRoute, HttpRule, ListenerKey, ListenerProtocol, Resource, RouteKey, TlsMode,
};
use gatehouse_proxy::Proxy;
use std::net::SocketAddr;
use std::time::Duration;
use tls::{
    TestCa, backend, connect, get, presented, tls_listener, upserts, wait_listening, weighted,
};

fn route(name: &str, hostnames: &[&str], listener: &str, backend_name: &str) -> Resource {
    Resource::HttpRoute(std::sync::Arc::new(HttpRoute {
        key: RouteKey::new("ns", name),
        version: 1,
        created_ms: 0,
        hostnames: hostnames.iter().map(|h| h.to_string()).collect(),
        parents: vec![ListenerKey::new("ns", "gw", listener)],
        rules: vec![HttpRule {
            backends: vec![weighted(backend_name)],
            ..Default::default()
        }],
    }))
}

struct Setup {
    proxy: Proxy,
    addr: SocketAddr,
    ca: TestCa,
}

/// One HTTPS listener (no hostname) with `certs` as its certificateRefs, routing to "web".
async fn https_with(certs: Vec<(String, tls::Leaf)>) -> Setup {
    common::init_logs();
    let proxy = Proxy::start(2);
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let web = start_echo("web", 200).await;
    let refs: Vec<&str> = certs.iter().map(|(k, _)| k.as_str()).collect();
    let mut resources: Vec<Resource> = certs.iter().map(|(k, l)| l.resource(k)).collect();
    resources.push(backend("web", web.addr));
    resources.push(tls_listener(
        "https",
        port,
        ListenerProtocol::Https,
        None,
        TlsMode::Terminate,
        &refs,
    ));
    resources.push(route("web", &[], "https", "web"));
    proxy
        .store
        .apply(&upserts(resources))
        .expect("config applies");
    wait_listening(addr).await;
    Setup {
        proxy,
        addr,
        ca: TestCa::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_picks_exact_over_wildcard_among_a_thousand_certificates() {
    let ca = TestCa::new();
    let mut certs = Vec::new();
    // The first ref is the listener's default; the wildcard comes next, then 1,000 exact names.
    certs.push(("ns/default".to_string(), ca.leaf(&["default.example.net"])));
    certs.push(("ns/wildcard".to_string(), ca.leaf(&["*.example.com"])));
    for i in 0..1000 {
        let name = format!("t{i}.example.com");
        certs.push((format!("ns/t{i}"), ca.leaf(&[name.as_str()])));
    }
    let want = |key: &str| certs.iter().find(|(k, _)| k == key).unwrap().1.der.clone();
    let mut setup = https_with(certs.clone()).await;
    setup.ca = ca;
    assert_eq!(setup.proxy.store.snapshot().stats().certificates, 1002);
    let client = setup.ca.client(&[b"http/1.1"]);
    for i in [0, 1, 499, 998, 999] {
        let conn = connect(&client, setup.addr, &format!("t{i}.example.com"))
            .await
            .unwrap();
        assert_eq!(presented(&conn), want(&format!("ns/t{i}")), "t{i}");
    }
    // A name only the wildcard covers gets the wildcard; the exact certificates still win theirs.
    let conn = connect(&client, setup.addr, "other.example.com")
        .await
        .unwrap();
    assert_eq!(presented(&conn), want("ns/wildcard"));
    let answer = get(conn, "other.example.com", "/hello").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["path"], "/hello");
    // No certificate names it: the listener's default (first) certificate is presented, which
    // a verifying client then refuses for this name.
    let refused = connect(&client, setup.addr, "nobody.example.org").await;
    let err = refused.unwrap_err().to_string();
    assert!(
        err.contains("NotValidForName") || err.contains("not valid for name"),
        "{err}"
    );
    let insecure = tls::insecure_client();
    let conn = connect(&insecure, setup.addr, "nobody.example.org")
        .await
        .unwrap();
    assert_eq!(presented(&conn), want("ns/default"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_certificate_serves_next_handshake_while_open_connections_continue() {
    let ca = TestCa::new();
    let first = ca.leaf(&["app.example.com"]);
    let mut setup = https_with(vec![("ns/app".into(), first.clone())]).await;
    setup.ca = ca;
    let client = setup.ca.client(&[b"h2"]);
    // An h2 connection opened on the first certificate, kept across the swap.
    let old = connect(&client, setup.addr, "app.example.com")
        .await
        .unwrap();
    assert_eq!(presented(&old), first.der);
    let io = hyper_util::rt::TokioIo::new(old);
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = || {
        http::Request::get("https://app.example.com/before")
            .body(http_body_util::Empty::<hyper::body::Bytes>::new())
            .unwrap()
    };
    assert_eq!(sender.send_request(request()).await.unwrap().status(), 200);

    let second = setup.ca.leaf(&["app.example.com"]);
    setup
        .proxy
        .store
        .apply(&upserts(vec![second.resource("ns/app")]))
        .expect("swap applies");
    let fresh = connect(&client, setup.addr, "app.example.com")
        .await
        .unwrap();
    assert_eq!(
        presented(&fresh),
        second.der,
        "next handshake gets the new certificate"
    );
    assert_eq!(get(fresh, "app.example.com", "/after").await.status, 200);
    // The connection opened before the swap keeps working.
    for _ in 0..3 {
        assert_eq!(sender.send_request(request()).await.unwrap().status(), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_certificates_are_refused_and_the_good_one_keeps_serving() {
    let ca = TestCa::new();
    let good = ca.leaf(&["app.example.com"]);
    let mut setup = https_with(vec![("ns/app".into(), good.clone())]).await;
    setup.ca = ca;
    let other = setup.ca.leaf(&["app.example.com"]);
    let expired = setup.ca.leaf_with(&["app.example.com"], |p| {
        p.not_before = rcgen::date_time_ymd(2019, 1, 1);
        p.not_after = rcgen::date_time_ymd(2020, 1, 1);
    });
    let garbage = tls::Leaf {
        cert_pem: "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
            .into(),
        ..good.clone()
    };
    let mismatched = tls::Leaf {
        key_pem: other.key_pem.clone(),
        ..good.clone()
    };
    let version = setup.proxy.store.snapshot().version;
    let cases = [
        (garbage, "Certificate ns/app: certPem: X.509 does not parse"),
        (
            mismatched,
            "Certificate ns/app: keyPem: private key does not match the certificate's public key",
        ),
        (
            expired,
            "Certificate ns/app: certPem: certificate expired at 2020-01-01T00:00:00Z",
        ),
    ];
    let client = setup.ca.client(&[b"http/1.1"]);
    for (bad, want) in cases {
        // Sent with an unrelated valid change: the delta is refused whole.
        let delta = Delta {
            upserts: vec![bad.resource("ns/app"), other.resource("ns/unrelated")],
            removals: vec![],
        };
        let err = setup.proxy.store.apply(&delta).unwrap_err().to_string();
        assert!(err.starts_with(want), "{err}");
        let table = setup.proxy.store.snapshot();
        assert_eq!(table.version, version, "nothing of the delta was applied");
        assert!(table.certificate(&"ns/unrelated".into()).is_none());
        let conn = connect(&client, setup.addr, "app.example.com")
            .await
            .unwrap();
        assert_eq!(
            presented(&conn),
            good.der,
            "the good certificate keeps serving"
        );
        assert_eq!(get(conn, "app.example.com", "/").await.status, 200);
    }
    // The admin API says the same to whoever pushed the delta.
    let admin = setup
        .proxy
        .serve_admin("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let resp = common::client()
        .post(format!("http://{admin}/v1/delta"))
        .json(&upserts(vec![
            tls::Leaf {
                key_pem: "junk".into(),
                ..good.clone()
            }
            .resource("ns/app"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body["error"],
        "Certificate ns/app: keyPem: no PEM block found"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_and_h2_over_tls_by_alpn() {
    let ca = TestCa::new();
    let leaf = ca.leaf(&["app.example.com"]);
    let mut setup = https_with(vec![("ns/app".into(), leaf)]).await;
    setup.ca = ca;
    for (alpn, version, upstream) in [
        (&b"h2"[..], http::Version::HTTP_2, "HTTP/1.1"),
        (&b"http/1.1"[..], http::Version::HTTP_11, "HTTP/1.1"),
    ] {
        let client = setup.ca.client(&[alpn]);
        let conn = connect(&client, setup.addr, "app.example.com")
            .await
            .unwrap();
        assert_eq!(tls::negotiated_alpn(&conn).as_deref(), Some(alpn));
        let answer = get(conn, "app.example.com", "/v").await;
        assert_eq!((answer.status, answer.version), (200, version));
        assert_eq!(answer.json()["protocol"], upstream);
        assert_eq!(answer.json()["host"], "app.example.com");
    }
    // Both TLS versions are offered.
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let client = tls::client_with_version(&setup.ca, version);
        let conn = connect(&client, setup.addr, "app.example.com")
            .await
            .unwrap();
        assert_eq!(conn.get_ref().1.protocol_version(), Some(version.version));
        assert_eq!(get(conn, "app.example.com", "/").await.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_resume_from_tickets() {
    let ca = TestCa::new();
    let leaf = ca.leaf(&["app.example.com"]);
    let mut setup = https_with(vec![("ns/app".into(), leaf)]).await;
    setup.ca = ca;
    let client = tls::resuming_client(&setup.ca);
    let first = connect(&client, setup.addr, "app.example.com")
        .await
        .unwrap();
    assert_eq!(
        first.get_ref().1.handshake_kind(),
        Some(rustls::HandshakeKind::Full)
    );
    // TLS 1.3 tickets arrive after the handshake: a request makes sure they were read.
    assert_eq!(get(first, "app.example.com", "/").await.status, 200);
    let second = connect(&client, setup.addr, "app.example.com")
        .await
        .unwrap();
    assert_eq!(
        second.get_ref().1.handshake_kind(),
        Some(rustls::HandshakeKind::Resumed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_outside_the_sni_listener_gets_421() {
    common::init_logs();
    let ca = TestCa::new();
    let proxy = Proxy::start(2);
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let a = start_echo("a", 200).await;
    let b = start_echo("b", 200).await;
    let cert_a = ca.leaf(&["a.example.com"]);
    let cert_b = ca.leaf(&["b.example.com"]);
    let delta = upserts(vec![
        cert_a.resource("ns/a"),
        cert_b.resource("ns/b"),
        backend("a", a.addr),
        backend("b", b.addr),
        tls_listener(
            "a",
            port,
            ListenerProtocol::Https,
            Some("a.example.com"),
            TlsMode::Terminate,
            &["ns/a"],
        ),
        tls_listener(
            "b",
            port,
            ListenerProtocol::Https,
            Some("b.example.com"),
            TlsMode::Terminate,
            &["ns/b"],
        ),
        route("a", &[], "a", "a"),
        route("b", &[], "b", "b"),
    ]);
    proxy.store.apply(&delta).unwrap();
    wait_listening(addr).await;
    let fast = proxy.fast_path.clone().expect("fast path on by default");
    for alpn in [&b"h2"[..], &b"http/1.1"[..]] {
        let fast_before = fast.served();
        let client = ca.client(&[alpn]);
        let conn = connect(&client, addr, "a.example.com").await.unwrap();
        assert_eq!(presented(&conn), cert_a.der);
        let answer = get(conn, "a.example.com", "/").await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json()["backend"], "a");
        let conn = connect(&client, addr, "b.example.com").await.unwrap();
        assert_eq!(presented(&conn), cert_b.der);
        assert_eq!(get(conn, "b.example.com", "/").await.json()["backend"], "b");
        // SNI chose listener a; Host names listener b (or no listener): misdirected.
        let conn = connect(&client, addr, "a.example.com").await.unwrap();
        let answer = get(conn, "b.example.com", "/").await;
        assert_eq!(answer.status, 421, "{alpn:?}");
        let conn = connect(&client, addr, "a.example.com").await.unwrap();
        assert_eq!(get(conn, "c.example.com", "/").await.status, 421);
        // The HTTP/1.1 fast path serves the two matching GETs and leaves the misdirected
        // ones to the general path; h2 never starts on it.
        let fast_served = if alpn == b"h2" { 0 } else { 2 };
        assert_eq!(fast.served() - fast_before, fast_served, "{alpn:?}");
    }
    assert_eq!(a.echo.served(), 2);
    assert_eq!(b.echo.served(), 2);
    tokio::time::sleep(Duration::from_millis(10)).await;
}
