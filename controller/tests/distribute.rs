//! The config stream end to end in this process: the controller's `Distribution` served on
//! a real socket, real proxies following it with `gatehouse_proxy::stream`. The desired
//! config is set directly (no cluster needed); cluster.rs covers the path from objects.

use gatehouse_config_api::{
    ClientTls, ConfigClient, Hello, ProxyMessage, ServerTls, proxy_message::Kind,
};
use gatehouse_controller::distribute::{self, Distribution, Registry};
use gatehouse_core::model::*;
use gatehouse_core::scope::Config;
use gatehouse_proxy::Proxy;
use gatehouse_proxy::stream::{Backoff, StreamConfig};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// One controller's config API, with the knobs the reconciler would turn.
struct Controller {
    url: String,
    desired: watch::Sender<Option<Arc<Config>>>,
    leading: watch::Sender<bool>,
    registry: Arc<Registry>,
    server: JoinHandle<()>,
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn controller(leading: bool) -> Controller {
    controller_with_tls(leading, None).await
}

async fn controller_with_tls(leading: bool, tls: Option<ServerTls>) -> Controller {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scheme = if tls.is_some() { "https" } else { "http" };
    let url = format!("{scheme}://{}", listener.local_addr().unwrap());
    let (desired, desired_rx) = watch::channel(None);
    let (leading, leading_rx) = watch::channel(leading);
    let registry = Arc::new(Registry::new(Arc::new(Notify::new())));
    let distribution = Distribution::new(registry.clone(), desired_rx, leading_rx, None);
    let server = tokio::spawn(async move {
        distribute::serve(listener, Arc::new(distribution), tls.as_ref())
            .await
            .unwrap();
    });
    Controller {
        url,
        desired,
        leading,
        registry,
        server,
    }
}

/// A proxy following `controllers` in turn; the task is its stream client.
fn proxy(controllers: &[&Controller], gateways: &[&str]) -> (Proxy, JoinHandle<()>) {
    proxy_with_tls(controllers, gateways, None)
}

fn proxy_with_tls(
    controllers: &[&Controller],
    gateways: &[&str],
    tls: Option<ClientTls>,
) -> (Proxy, JoinHandle<()>) {
    let proxy = Proxy::start(1);
    let config = StreamConfig {
        controllers: controllers.iter().map(|c| c.url.clone()).collect(),
        gateways: gateways.iter().map(ToString::to_string).collect(),
        backoff: Backoff {
            min: Duration::from_millis(20),
            max: Duration::from_millis(200),
        },
        tls,
    };
    let task = tokio::spawn(gatehouse_proxy::stream::run(proxy.store.clone(), config));
    (proxy, task)
}

/// One free port per Gateway name, the same for every test (several proxies in this
/// process may then contend for it: only the log notices; these tests read the tables).
fn port_of(gw: &str) -> u16 {
    static PORTS: std::sync::Mutex<std::collections::BTreeMap<String, u16>> =
        std::sync::Mutex::new(std::collections::BTreeMap::new());
    let mut ports = PORTS.lock().unwrap();
    *ports.entry(gw.to_string()).or_insert_with(|| {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    })
}

fn listener(gw: &str) -> Resource {
    Resource::Listener(Listener {
        key: ListenerKey::new("ns", gw, "http"),
        version: 0,
        address: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
        port: port_of(gw),
        protocol: ListenerProtocol::Http,
        hostname: None,
        tls: None,
    })
}

fn route(name: &str, gw: &str, path_regex: Option<&str>) -> Resource {
    let mut rule = HttpRule {
        backends: vec![WeightedBackend {
            target: BackendTarget::Service(BackendKey::new("ns", &format!("{gw}-svc"), 80)),
            weight: 1,
            filters: vec![],
        }],
        ..HttpRule::default()
    };
    if let Some(re) = path_regex {
        rule.matches = vec![HttpMatch {
            path: PathMatch::RegularExpression(re.into()),
            ..HttpMatch::default()
        }];
    }
    Resource::HttpRoute(Arc::new(HttpRoute {
        key: RouteKey::new("ns", name),
        version: 0,
        created_ms: 0,
        hostnames: vec![],
        parents: vec![ListenerKey::new("ns", gw, "http")],
        rules: vec![rule],
    }))
}

fn backend(gw: &str) -> Resource {
    Resource::Backend(Backend {
        key: BackendKey::new("ns", &format!("{gw}-svc"), 80),
        version: 0,
        app_protocol: AppProtocol::Http1,
        endpoints: vec![SocketAddr::from(([10, 0, 0, 1], 80))],
    })
}

fn config(resources: &[Resource]) -> Option<Arc<Config>> {
    Some(Arc::new(
        resources.iter().map(|r| (r.key(), r.clone())).collect(),
    ))
}

fn held(proxy: &Proxy) -> Vec<String> {
    let mut keys: Vec<String> = proxy
        .store
        .snapshot()
        .keys()
        .iter()
        .map(ToString::to_string)
        .collect();
    keys.sort();
    keys
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn sorted(keys: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = keys.iter().map(ToString::to_string).collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_gets_a_snapshot_then_deltas_and_its_acks_reach_the_registry() {
    let c = controller(true).await;
    c.desired.send_replace(config(&[
        listener("a"),
        backend("a"),
        route("r1", "a", None),
    ]));
    let (p, _task) = proxy(&[&c], &[]);
    let want = sorted(&[
        "Listener ns/a/http",
        "Backend ns/a-svc:80",
        "HTTPRoute ns/r1",
    ]);
    until("snapshot applied", || held(&p) == want).await;
    until("ack recorded", || {
        c.registry
            .connected()
            .first()
            .and_then(|p| p.acked.as_ref().map(|a| a.len()))
            == Some(3)
    })
    .await;
    let version = p.store.snapshot().version;

    c.desired.send_replace(config(&[
        listener("a"),
        backend("a"),
        route("r2", "a", None),
    ]));
    let want = sorted(&[
        "Listener ns/a/http",
        "Backend ns/a-svc:80",
        "HTTPRoute ns/r2",
    ]);
    until("delta applied", || held(&p) == want).await;
    // One atomic update for the change.
    assert_eq!(p.store.snapshot().version, version + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_proxy_is_resynced_and_a_reconnect_resumes_without_a_snapshot() {
    let c = controller(true).await;
    let base = [listener("a"), backend("a"), route("keep", "a", None)];
    c.desired.send_replace(config(&base));
    let (first, task) = proxy(&[&c], &[]);
    let want = sorted(&[
        "Listener ns/a/http",
        "Backend ns/a-svc:80",
        "HTTPRoute ns/keep",
    ]);
    until("first proxy synced", || held(&first) == want).await;

    // Restart: a new process (new instance, empty table) gets everything again.
    task.abort();
    drop(first);
    let (second, _task2) = proxy(&[&c], &[]);
    until("restarted proxy synced", || held(&second) == want).await;

    // The stream drops (leadership flaps) while the config changes; the same controller
    // session resumes with just the difference, so the table moves by one update.
    until("registry has the ack", || {
        c.registry.connected().iter().any(|p| p.acked.is_some())
    })
    .await;
    let before = second.store.snapshot().version;
    c.leading.send_replace(false);
    until("stream closed", || c.registry.connected().is_empty()).await;
    let mut changed = base.to_vec();
    changed.push(route("added", "a", None));
    c.desired.send_replace(config(&changed));
    assert_eq!(held(&second), want, "keeps serving while disconnected");
    c.leading.send_replace(true);
    let want = sorted(&[
        "Listener ns/a/http",
        "Backend ns/a-svc:80",
        "HTTPRoute ns/keep",
        "HTTPRoute ns/added",
    ]);
    until("resumed", || held(&second) == want).await;
    assert_eq!(second.store.snapshot().version, before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_controller_snapshot_removes_stale_resources_and_keeps_the_rest() {
    let old = controller(true).await;
    old.desired.send_replace(config(&[
        listener("a"),
        backend("a"),
        route("keep", "a", None),
        route("stale", "a", None),
    ]));
    let new = controller(false).await;
    let (p, _task) = proxy(&[&old, &new], &[]);
    until("synced from the old leader", || held(&p).len() == 4).await;

    // The old leader dies; while nobody serves, the proxy keeps its table.
    drop(old);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(held(&p).len(), 4);

    // The new leader knows nothing of what the proxy holds: its snapshot removes the
    // route deleted meanwhile and leaves what is still wanted.
    new.desired.send_replace(config(&[
        listener("a"),
        backend("a"),
        route("keep", "a", None),
    ]));
    let version = p.store.snapshot().version;
    new.leading.send_replace(true);
    let want = sorted(&[
        "Listener ns/a/http",
        "Backend ns/a-svc:80",
        "HTTPRoute ns/keep",
    ]);
    until("converged on the new leader", || held(&p) == want).await;
    assert_eq!(
        p.store.snapshot().version,
        version + 1,
        "one atomic snapshot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_refuses_with_unavailable_naming_itself_a_standby() {
    let standby = controller(false).await;
    let mut client = ConfigClient::connect(&standby.url, Duration::from_secs(2), None)
        .await
        .unwrap();
    let hello = ProxyMessage {
        kind: Some(Kind::Hello(Hello {
            instance: "x".into(),
            ..Hello::default()
        })),
    };
    let err = client
        .open(futures_util::stream::iter([hello]))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unavailable);
    assert_eq!(
        err.message(),
        "this controller is a standby; the leader is not known"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_scoped_to_one_gateway_never_receives_the_others() {
    let c = controller(true).await;
    let (pa, _ta) = proxy(&[&c], &["ns/a"]);
    let (pb, _tb) = proxy(&[&c], &["ns/b"]);
    let full = [
        listener("a"),
        listener("b"),
        backend("a"),
        backend("b"),
        route("ra", "a", None),
        route("rb", "b", None),
    ];
    c.desired.send_replace(config(&full));
    let want_a = sorted(&[
        "Listener ns/a/http",
        "Backend ns/a-svc:80",
        "HTTPRoute ns/ra",
    ]);
    let want_b = sorted(&[
        "Listener ns/b/http",
        "Backend ns/b-svc:80",
        "HTTPRoute ns/rb",
    ]);
    until("a synced", || held(&pa) == want_a).await;
    until("b synced", || held(&pb) == want_b).await;
    // A change to b only reaches b.
    let a_version = pa.store.snapshot().version;
    let mut more = full.to_vec();
    more.push(route("rb2", "b", None));
    c.desired.send_replace(config(&more));
    until("b got rb2", || {
        held(&pb).contains(&"HTTPRoute ns/rb2".into())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(held(&pa), want_a);
    assert_eq!(pa.store.snapshot().version, a_version, "no update for a");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_update_keeps_the_old_config_and_is_reported() {
    let c = controller(true).await;
    let good = [listener("a"), backend("a"), route("ok", "a", None)];
    c.desired.send_replace(config(&good));
    let (p, _task) = proxy(&[&c], &[]);
    let want = sorted(&[
        "Listener ns/a/http",
        "Backend ns/a-svc:80",
        "HTTPRoute ns/ok",
    ]);
    until("synced", || held(&p) == want).await;

    // Not a valid regular expression: the proxy's table refuses the whole update.
    let mut bad = good.to_vec();
    bad.push(route("bad", "a", Some("/(unclosed")));
    bad.push(route("fine", "a", None));
    c.desired.send_replace(config(&bad));
    until("rejection reported", || {
        c.registry
            .connected()
            .first()
            .is_some_and(|p| p.rejection.is_some())
    })
    .await;
    let connected = c.registry.connected();
    let rejection = connected[0].rejection.as_ref().unwrap();
    assert!(
        rejection.error.contains("HTTPRoute ns/bad")
            && rejection.error.contains("regular expression"),
        "{}",
        rejection.error
    );
    assert_eq!(rejection.gateways, [("ns".into(), "a".into())].into());
    // Atomic: not even the valid route of the same update was applied.
    assert_eq!(held(&p), want);

    // A fix is applied and clears the report.
    let mut fixed = good.to_vec();
    fixed.push(route("fine", "a", None));
    c.desired.send_replace(config(&fixed));
    until("fix applied", || {
        held(&p).contains(&"HTTPRoute ns/fine".into())
    })
    .await;
    until("rejection cleared", || {
        c.registry
            .connected()
            .first()
            .is_some_and(|p| p.rejection.is_none())
    })
    .await;
}

/// A CA for the config stream's mTLS tests.
struct TestCa(rcgen::Issuer<'static, rcgen::KeyPair>, String);

impl TestCa {
    fn new(name: &str) -> TestCa {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        TestCa(rcgen::Issuer::new(params, key), pem)
    }

    /// (certificate, key) PEM for `names` (host names or IP addresses).
    fn leaf(&self, names: &[&str]) -> (Vec<u8>, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(ToString::to_string).collect();
        let params = rcgen::CertificateParams::new(names).unwrap();
        let cert = params.signed_by(&key, &self.0).unwrap();
        (cert.pem().into_bytes(), key.serialize_pem().into_bytes())
    }

    fn pem(&self) -> Vec<u8> {
        self.1.clone().into_bytes()
    }
}

/// A controller on 127.0.0.1 with a certificate from `server_ca`, accepting proxies whose
/// certificates chain to `client_ca`.
async fn mtls_controller(server_ca: &TestCa, client_ca: &TestCa) -> Controller {
    let (cert, key) = server_ca.leaf(&["127.0.0.1", "localhost"]);
    let tls = ServerTls {
        cert,
        key,
        client_ca: client_ca.pem(),
    };
    let c = controller_with_tls(true, Some(tls)).await;
    c.desired.send_replace(config(&[
        listener("m"),
        backend("m"),
        route("rm", "m", None),
    ]));
    c
}

fn client_tls(trusted: &TestCa, issuer: &TestCa) -> ClientTls {
    let (cert, key) = issuer.leaf(&["proxy.gatehouse.test"]);
    ClientTls {
        ca: trusted.pem(),
        cert,
        key,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_mtls_a_proxy_holding_a_certificate_from_the_client_ca_is_served() {
    let (servers, proxies) = (TestCa::new("servers"), TestCa::new("proxies"));
    let c = mtls_controller(&servers, &proxies).await;
    let (p, _task) = proxy_with_tls(&[&c], &[], Some(client_tls(&servers, &proxies)));
    let want = sorted(&[
        "Listener ns/m/http",
        "Backend ns/m-svc:80",
        "HTTPRoute ns/rm",
    ]);
    until("snapshot over mTLS", || held(&p) == want).await;
    until("ack recorded", || c.registry.connected().len() == 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_mtls_a_proxy_without_a_valid_client_certificate_gets_nothing() {
    let (servers, proxies, strangers) = (
        TestCa::new("servers"),
        TestCa::new("proxies"),
        TestCa::new("strangers"),
    );
    let c = mtls_controller(&servers, &proxies).await;
    // A certificate from another CA, and plaintext: neither gets a stream.
    let (foreign, _t1) = proxy_with_tls(&[&c], &[], Some(client_tls(&servers, &strangers)));
    let plain_url = c.url.replace("https://", "http://");
    let plain = Controller {
        url: plain_url,
        desired: watch::channel(None).0,
        leading: watch::channel(true).0,
        registry: c.registry.clone(),
        server: tokio::spawn(async {}),
    };
    let (cleartext, _t2) = proxy(&[&plain], &[]);
    // And a raw client that offers no certificate at all.
    let ca_only = ClientTls {
        ca: servers.pem(),
        cert: Vec::new(),
        key: Vec::new(),
    };
    let no_cert = ConfigClient::connect(&c.url, Duration::from_secs(2), Some(&ca_only)).await;
    if let Ok(mut client) = no_cert {
        let hello = ProxyMessage {
            kind: Some(Kind::Hello(Hello::default())),
        };
        let opened = client.open(futures_util::stream::iter([hello])).await;
        assert!(
            opened.is_err(),
            "a client without a certificate opened a stream"
        );
    }
    // Give them time to try, with several reconnects.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(held(&foreign).is_empty(), "{:?}", held(&foreign));
    assert!(held(&cleartext).is_empty(), "{:?}", held(&cleartext));
    assert!(c.registry.connected().is_empty());

    // The same controller still serves a proxy with the right certificate.
    let (good, _t3) = proxy_with_tls(&[&c], &[], Some(client_tls(&servers, &proxies)));
    until("snapshot over mTLS", || !held(&good).is_empty()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_does_not_trust_the_controller_certificate_refuses_it() {
    let (servers, proxies, other) = (
        TestCa::new("servers"),
        TestCa::new("proxies"),
        TestCa::new("other"),
    );
    let c = mtls_controller(&servers, &proxies).await;
    // Its client certificate is fine, but it trusts another CA for the controller.
    let (p, _task) = proxy_with_tls(&[&c], &[], Some(client_tls(&other, &proxies)));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(held(&p).is_empty(), "{:?}", held(&p));
    assert!(c.registry.connected().is_empty());
}
