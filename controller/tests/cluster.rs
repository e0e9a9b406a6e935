//! The controller against a real API server (conformance/cluster), a real proxy and a real
//! echo backend, all but the API server in this process.
//!
//! Skipped, loudly, without `GATEHOUSE_KUBECONFIG` (scripts/test sets it).

use bytes::Bytes;
use gatehouse_controller::addresses::Pool;
use gatehouse_proxy::Proxy;
use gatehouse_proxy::echo::EchoBackend;
use gatehouse_proxy::listeners;
use gateway_api::experimental::gatewayclasses::GatewayClass;
use gateway_api::experimental::gateways::Gateway;
use gateway_api::experimental::httproutes::HttpRoute;
use http_body_util::{BodyExt, Full};
use k8s_openapi::api::core::v1::{Namespace, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client};
use pingora_core::apps::http_app::HttpServer;
use serde_json::{Value, json};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

// TenantCertificate end-to-end test, kept apart so this file stays shared and small.
#[path = "cluster/tenant_certs.rs"]
mod tenant_certs;

const POOL: &str = "127.0.0.10-127.0.0.200";
const WAIT: Duration = Duration::from_secs(30);

fn kubeconfig() -> Option<PathBuf> {
    match std::env::var_os("GATEHOUSE_KUBECONFIG") {
        Some(path) => Some(path.into()),
        None => {
            // Written to stderr directly: libtest captures eprintln! of passing tests.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** SKIPPED: GATEHOUSE_KUBECONFIG is not set; the controller's cluster test \
                 needs a running API server (scripts/test starts one) ***\n"
            );
            None
        }
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Gateway API and Gatehouse CRDs, through the harness's own script.
fn install_crds(kubeconfig: &PathBuf) {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../conformance/cluster/install-crds");
    run(Command::new(script).env("KUBECONFIG", kubeconfig));
}

/// Where the echo backend listens.
fn host_address() -> IpAddr {
    // The API server refuses loopback endpoints, so the backend listens on the project's own
    // test address (198.18.0.0/15) that `conformance/cluster/testnet up` puts on a veth.
    let ip = std::env::var("GATEHOUSE_TEST_BACKEND_IP").expect(
        "GATEHOUSE_TEST_BACKEND_IP must name a test address (run `conformance/cluster/testnet up`; scripts/test does)",
    );
    ip.parse().expect("GATEHOUSE_TEST_BACKEND_IP is an IP")
}

async fn start_echo(ip: IpAddr, name: &str) -> SocketAddr {
    let server = HttpServer::new_app(EchoBackend::new(name));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    // Leaked on purpose: the backend lives as long as the test process.
    std::mem::forget(stop);
    listeners::serve(SocketAddr::new(ip, 0), Arc::new(server), stop_rx)
        .await
        .expect("echo backend binds")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn apply<K>(api: &Api<K>, object: Value)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let name = object["metadata"]["name"].as_str().unwrap().to_string();
    api.patch(
        &name,
        &PatchParams::apply("gatehouse-test").force(),
        &Patch::Apply(&object),
    )
    .await
    .unwrap_or_else(|e| panic!("applying {name}: {e}"));
}

/// Polls `check` until it returns `Some`, or fails with the last `Err` description.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(e) if start.elapsed() > WAIT => {
                panic!("{what}: still not true after {WAIT:?}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

fn condition(conditions: Option<&Vec<Condition>>, kind: &str) -> Option<(String, String)> {
    conditions?
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

fn expect(
    conditions: Option<&Vec<Condition>>,
    kind: &str,
    status: &str,
    reason: &str,
) -> Result<(), String> {
    let found = condition(conditions, kind);
    if found == Some((status.to_string(), reason.to_string())) {
        Ok(())
    } else {
        Err(format!("{kind} is {found:?}, want {status}/{reason}"))
    }
}

async fn get_status(addr: SocketAddr, host: &str, path: &str) -> Result<u16, String> {
    Ok(get(addr, host, path).await?.0)
}

/// Status and body of `GET path` with `Host: host`.
async fn get(addr: SocketAddr, host: &str, path: &str) -> Result<(u16, String), String> {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let req = http::Request::get(format!("http://{addr}{path}"))
        .header("host", host)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = tokio::time::timeout(Duration::from_secs(5), client.request(req))
        .await
        .map_err(|_| "timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

async fn expect_http(addr: SocketAddr, path: &str, want: u16) {
    eventually(&format!("GET {path} answers {want}"), || async {
        match get_status(addr, "app.example.com", path).await? {
            got if got == want => Ok(()),
            got => Err(format!("got {got}")),
        }
    })
    .await;
}

fn route(ns: &str, name: &str, path: &str, backend: &str) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "hostnames": ["app.example.com"],
            "rules": [{
                "matches": [{"path": {"type": "PathPrefix", "value": path}}],
                "backendRefs": [{"name": backend, "port": 80}],
            }],
        },
    })
}

async fn route_parent_conditions(
    api: &Api<HttpRoute>,
    name: &str,
) -> Result<Vec<Condition>, String> {
    let r = api.get(name).await.map_err(|e| e.to_string())?;
    let parents = r.status.map(|s| s.parents).unwrap_or_default();
    let ours = parents
        .into_iter()
        .find(|p| p.controller_name == gatehouse_controller::CONTROLLER_NAME)
        .ok_or("no status entry of ours yet")?;
    Ok(ours.conditions)
}

/// Creates these namespaces (kept if they exist).
async fn create_namespaces(client: &Client, names: &[&String]) {
    let api = Api::<Namespace>::all(client.clone());
    for name in names {
        apply(
            &api,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        )
        .await;
    }
}

/// A GatewayClass handled by our controller.
async fn our_class(client: &Client, name: &str) {
    apply(
        &Api::<GatewayClass>::all(client.clone()),
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
            "metadata": {"name": name},
            "spec": {"controllerName": gatehouse_controller::CONTROLLER_NAME},
        }),
    )
    .await;
}

/// A proxy in this process following the controllers whose config API listens on
/// `config_ports` (tried in turn), serving `gateways` (none: all).
fn start_proxy(config_ports: &[u16], gateways: &[String]) -> Proxy {
    let proxy = Proxy::start(2);
    let stream = gatehouse_proxy::stream::StreamConfig {
        controllers: config_ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}"))
            .collect(),
        gateways: gateways.to_vec(),
        backoff: gatehouse_proxy::stream::Backoff {
            min: Duration::from_millis(50),
            max: Duration::from_millis(500),
        },
        tls: None,
    };
    tokio::spawn(gatehouse_proxy::stream::run(proxy.store.clone(), stream));
    proxy
}

/// A controller replica serving its config API on `config_port`.
fn start_controller(
    client: &Client,
    config_port: u16,
    lease: Option<gatehouse_controller::leader::LeaseConfig>,
) -> tokio::task::JoinHandle<Result<(), gatehouse_controller::RunError>> {
    tokio::spawn(gatehouse_controller::run(
        client.clone(),
        gatehouse_controller::Config {
            config_listen: SocketAddr::from(([127, 0, 0, 1], config_port)),
            config_tls: None,
            pool: POOL.parse().unwrap(),
            debounce: Duration::from_millis(50),
            lease,
            proxy_controller_url: None,
            crd_recheck: Duration::from_secs(1),
        },
    ))
}

/// One controller at a time: two would both claim every Gateway of our controller name.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_programs_proxy_and_writes_status() {
    let Some(kubeconfig) = kubeconfig() else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    init_tracing();
    install_crds(&kubeconfig);
    let client: Client = gatehouse_controller::client::connect(Some(&kubeconfig))
        .await
        .expect("API client");

    let config_port = free_port();
    let _proxy = start_proxy(&[config_port], &[]);
    let backend_ip = host_address();
    let echo = start_echo(backend_ip, "echo").await;
    let pool: Pool = POOL.parse().unwrap();
    let controller = start_controller(&client, config_port, None);

    let suffix = unique();
    let ns = format!("gh-ctl-{suffix}");
    let class = format!("gatehouse-test-{suffix}");
    let port = free_port();
    create_namespaces(&client, &[&ns]).await;
    our_class(&client, &class).await;
    let gateways: Api<Gateway> = Api::namespaced(client.clone(), &ns);
    apply(&gateways, json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": ns},
        "spec": {"gatewayClassName": class, "listeners": [{"name": "http", "protocol": "HTTP", "port": port}]},
    })).await;
    echo_service(&client, &ns, echo).await;
    let routes: Api<HttpRoute> = Api::namespaced(client.clone(), &ns);
    apply(&routes, route(&ns, "web", "/", "echo")).await;

    let classes: Api<GatewayClass> = Api::all(client.clone());
    eventually("GatewayClass is Accepted", || async {
        let c = classes.get(&class).await.map_err(|e| e.to_string())?;
        let status = c.status.ok_or("no status")?;
        if status
            .supported_features
            .as_ref()
            .is_none_or(|f| f.is_empty())
        {
            return Err("no supportedFeatures".into());
        }
        expect(status.conditions.as_ref(), "Accepted", "True", "Accepted")
    })
    .await;

    let address: IpAddr = eventually("Gateway is Programmed with an address", || async {
        let g = gateways.get("gw").await.map_err(|e| e.to_string())?;
        let status = g.status.ok_or("no status")?;
        expect(status.conditions.as_ref(), "Accepted", "True", "Accepted")?;
        expect(
            status.conditions.as_ref(),
            "Programmed",
            "True",
            "Programmed",
        )?;
        let listener = status
            .listeners
            .as_ref()
            .and_then(|l| l.first())
            .ok_or("no listener status")?;
        if listener.attached_routes != 1 {
            return Err(format!("attachedRoutes {}", listener.attached_routes));
        }
        let address = status
            .addresses
            .as_ref()
            .and_then(|a| a.first())
            .ok_or("no address")?;
        address.value.parse::<IpAddr>().map_err(|e| e.to_string())
    })
    .await;
    assert!(pool.contains(address), "{address} is not from {POOL}");
    let gateway_addr = SocketAddr::new(address, port);

    eventually("route web is Accepted and resolved", || async {
        let c = route_parent_conditions(&routes, "web").await?;
        expect(Some(&c), "Accepted", "True", "Accepted")?;
        expect(Some(&c), "ResolvedRefs", "True", "ResolvedRefs")
    })
    .await;
    expect_http(gateway_addr, "/", 200).await;

    // A change to the route is live without anything else moving.
    apply(&routes, route(&ns, "web", "/v2", "echo")).await;
    expect_http(gateway_addr, "/v2/items", 200).await;
    expect_http(gateway_addr, "/", 404).await;

    routes
        .delete("web", &DeleteParams::default())
        .await
        .unwrap();
    expect_http(gateway_addr, "/v2/items", 404).await;

    apply(&routes, route(&ns, "broken", "/", "missing")).await;
    eventually("route broken has BackendNotFound", || async {
        let c = route_parent_conditions(&routes, "broken").await?;
        expect(Some(&c), "Accepted", "True", "Accepted")?;
        expect(Some(&c), "ResolvedRefs", "False", "BackendNotFound")
    })
    .await;
    expect_http(gateway_addr, "/", 500).await;

    controller.abort();
    let _ = Api::<Namespace>::all(client.clone())
        .delete(&ns, &DeleteParams::default())
        .await;
    let _ = classes.delete(&class, &DeleteParams::default()).await;
}

/// Logs to the test's output when RUST_LOG is set.
fn init_tracing() {
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
}

/// A unique suffix for this run's object names.
fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{:x}{nanos:x}", std::process::id())
}

/// Service `echo` in `ns` with one ready endpoint at `backend`.
async fn echo_service(client: &Client, ns: &str, backend: SocketAddr) {
    apply(
        &Api::<Service>::namespaced(client.clone(), ns),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "echo", "namespace": ns},
            "spec": {"ports": [{"name": "http", "port": 80}]},
        }),
    )
    .await;
    apply(&Api::<EndpointSlice>::namespaced(client.clone(), ns), json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "echo-1", "namespace": ns, "labels": {"kubernetes.io/service-name": "echo"}},
        "addressType": if backend.is_ipv4() { "IPv4" } else { "IPv6" },
        "ports": [{"name": "http", "port": backend.port()}],
        "endpoints": [{"addresses": [backend.ip().to_string()], "conditions": {"ready": true}}],
    })).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_routes_are_served_and_conflicts_name_the_owner() {
    use gatehouse_crds::{Tenant, TenantRoute};
    let Some(kubeconfig) = kubeconfig() else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    init_tracing();
    install_crds(&kubeconfig);
    let client: Client = gatehouse_controller::client::connect(Some(&kubeconfig))
        .await
        .expect("API client");
    let config_port = free_port();
    let _proxy = start_proxy(&[config_port], &[]);
    let controller = start_controller(&client, config_port, None);

    let suffix = unique();
    let infra = format!("gh-infra-{suffix}");
    let alice_ns = format!("gh-alice-{suffix}");
    let bob_ns = format!("gh-bob-{suffix}");
    let class = format!("gatehouse-tenancy-{suffix}");
    let shop = format!("shop-{suffix}.example.com");
    let bob_host = format!("www.bob-{suffix}.example.com");
    let namespaces = Api::<Namespace>::all(client.clone());
    create_namespaces(&client, &[&infra, &alice_ns, &bob_ns]).await;
    let classes: Api<GatewayClass> = Api::all(client.clone());
    our_class(&client, &class).await;
    // The admin's shared Gateway: tenants' routes come from their own namespaces.
    let port = free_port();
    let gateways: Api<Gateway> = Api::namespaced(client.clone(), &infra);
    apply(
        &gateways,
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "shared", "namespace": infra},
            "spec": {"gatewayClassName": class, "listeners": [{
                "name": "http", "protocol": "HTTP", "port": port,
                "allowedRoutes": {"namespaces": {"from": "All"}},
            }]},
        }),
    )
    .await;
    let tenants: Api<Tenant> = Api::all(client.clone());
    for (name, ns, domain) in [
        (format!("alice-{suffix}"), &alice_ns, shop.clone()),
        (
            format!("bob-{suffix}"),
            &bob_ns,
            format!("*.bob-{suffix}.example.com"),
        ),
    ] {
        apply(&tenants, json!({
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "Tenant",
            "metadata": {"name": name},
            "spec": {
                "namespaces": {"names": [ns]},
                "domains": [domain],
                "listeners": [{"gatewayNamespace": infra, "gatewayName": "shared", "sectionNames": ["http"]}],
            },
        }))
        .await;
    }
    let ip = host_address();
    echo_service(&client, &alice_ns, start_echo(ip, "alice-echo").await).await;
    echo_service(&client, &bob_ns, start_echo(ip, "bob-echo").await).await;

    let tenant_route = |ns: &str, name: &str, hostnames: Vec<&str>| {
        json!({
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "TenantRoute",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"hostnames": hostnames, "http": [{"backendRefs": [{"name": "echo", "port": 80}]}]},
        })
    };
    let alice_routes: Api<TenantRoute> = Api::namespaced(client.clone(), &alice_ns);
    apply(&alice_routes, tenant_route(&alice_ns, "shop", vec![&shop])).await;

    let address: IpAddr = eventually("the shared Gateway has an address", || async {
        let g = gateways.get("shared").await.map_err(|e| e.to_string())?;
        let addresses = g.status.and_then(|s| s.addresses).unwrap_or_default();
        let first = addresses.first().ok_or("no address")?;
        first.value.parse::<IpAddr>().map_err(|e| e.to_string())
    })
    .await;
    let gateway_addr = SocketAddr::new(address, port);
    let served_by = |host: String| async move {
        let (status, body) = get(gateway_addr, &host, "/").await?;
        let body: Value = serde_json::from_str(&body).map_err(|_| format!("{status}: {body}"))?;
        Ok::<_, String>((
            status,
            body["backend"].as_str().unwrap_or_default().to_string(),
        ))
    };
    eventually("alice's TenantRoute serves her hostname", || async {
        match served_by(shop.clone()).await? {
            (200, b) if b == "alice-echo" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    eventually("alice's TenantRoute is Accepted and Programmed", || async {
        let r = alice_routes.get("shop").await.map_err(|e| e.to_string())?;
        let s = r.status.ok_or("no status")?;
        expect(Some(&s.conditions), "Accepted", "True", "Accepted")?;
        expect(Some(&s.conditions), "Programmed", "True", "Programmed")?;
        match s.hostnames.as_slice() {
            [h] if h.accepted && h.programmed => Ok(()),
            other => Err(format!("hostnames {other:?}")),
        }
    })
    .await;

    // Bob asks for alice's hostname next to his own (no webhook here, so the API server
    // stores it): the controller serves only his own hostname and says who owns the other.
    let bob_routes: Api<TenantRoute> = Api::namespaced(client.clone(), &bob_ns);
    apply(
        &bob_routes,
        tenant_route(&bob_ns, "steal", vec![&shop, &bob_host]),
    )
    .await;
    eventually("bob's own hostname is served by his backend", || async {
        match served_by(bob_host.clone()).await? {
            (200, b) if b == "bob-echo" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let stolen = eventually("bob's route reports the conflict", || async {
        let r = bob_routes.get("steal").await.map_err(|e| e.to_string())?;
        let s = r.status.ok_or("no status")?;
        expect(Some(&s.conditions), "Accepted", "False", "HostnameConflict")?;
        let h = s
            .hostnames
            .iter()
            .find(|h| h.hostname == shop)
            .ok_or("no hostname entry")?;
        if h.accepted || h.programmed || h.reason != "ClaimedByOtherTenant" {
            return Err(format!("{h:?}"));
        }
        Ok(h.message.clone())
    })
    .await;
    assert_eq!(
        stolen,
        format!("hostname {shop} is owned by Tenant alice-{suffix}")
    );
    assert_eq!(
        served_by(shop.clone()).await.unwrap(),
        (200, "alice-echo".to_string()),
        "alice keeps her hostname"
    );
    let bob_tenant = eventually("bob's Tenant lists the conflict", || async {
        let t = tenants
            .get(&format!("bob-{suffix}"))
            .await
            .map_err(|e| e.to_string())?;
        let s = t.status.ok_or("no status")?;
        if s.conflicts.is_empty() {
            return Err("no conflicts yet".into());
        }
        Ok(s)
    })
    .await;
    assert_eq!(bob_tenant.conflicts[0].hostname, shop);
    assert_eq!(
        bob_tenant.conflicts[0].winner,
        format!("Tenant alice-{suffix}")
    );
    assert_eq!(bob_tenant.usage.routes, 1);

    // Alice deletes her route: the hostname is still hers by claim, so bob still does not get it.
    alice_routes
        .delete("shop", &DeleteParams::default())
        .await
        .unwrap();
    eventually("alice's hostname is gone from the proxy", || async {
        match get_status(gateway_addr, &shop, "/").await? {
            404 => Ok(()),
            other => Err(format!("got {other}")),
        }
    })
    .await;

    controller.abort();
    for ns in [&infra, &alice_ns, &bob_ns] {
        let _ = namespaces.delete(ns, &DeleteParams::default()).await;
    }
    for name in [format!("alice-{suffix}"), format!("bob-{suffix}")] {
        let _ = tenants.delete(&name, &DeleteParams::default()).await;
    }
    let _ = classes.delete(&class, &DeleteParams::default()).await;
}

/// Two replicas share a Lease: one programs the proxy, and when it dies without a word the
/// other takes over; traffic never stops, and what changed meanwhile reaches the proxy,
/// removals included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_from_a_dead_leader_and_traffic_keeps_flowing() {
    use gatehouse_controller::leader::LeaseConfig;
    use k8s_openapi::api::coordination::v1::Lease;
    let Some(kubeconfig) = kubeconfig() else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    init_tracing();
    install_crds(&kubeconfig);
    let client: Client = gatehouse_controller::client::connect(Some(&kubeconfig))
        .await
        .expect("API client");
    let suffix = unique();
    let ns = format!("gh-lease-{suffix}");
    let class = format!("gatehouse-lease-{suffix}");
    let namespaces = Api::<Namespace>::all(client.clone());
    create_namespaces(&client, &[&ns]).await;

    let ports = [("a", free_port()), ("b", free_port())];
    let _proxy = start_proxy(&[ports[0].1, ports[1].1], &[]);
    let replica = |identity: &str| {
        let lease = LeaseConfig {
            namespace: ns.clone(),
            name: "gatehouse-controller".into(),
            identity: identity.into(),
            duration: Duration::from_secs(3),
            renew_every: Duration::from_millis(500),
        };
        let port = ports.iter().find(|(id, _)| *id == identity).unwrap().1;
        start_controller(&client, port, Some(lease))
    };
    let mut replicas = vec![("a", replica("a")), ("b", replica("b"))];

    let classes: Api<GatewayClass> = Api::all(client.clone());
    our_class(&client, &class).await;
    let port = free_port();
    let gateways: Api<Gateway> = Api::namespaced(client.clone(), &ns);
    apply(&gateways, json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": ns},
        "spec": {"gatewayClassName": class, "listeners": [{"name": "http", "protocol": "HTTP", "port": port}]},
    }))
    .await;
    echo_service(&client, &ns, start_echo(host_address(), "echo").await).await;
    let routes: Api<HttpRoute> = Api::namespaced(client.clone(), &ns);
    apply(&routes, route(&ns, "web", "/web", "echo")).await;
    apply(&routes, route(&ns, "old", "/old", "echo")).await;

    let address: IpAddr = eventually("the Gateway is Programmed with an address", || async {
        let g = gateways.get("gw").await.map_err(|e| e.to_string())?;
        let status = g.status.ok_or("no status")?;
        expect(
            status.conditions.as_ref(),
            "Programmed",
            "True",
            "Programmed",
        )?;
        let first = status
            .addresses
            .as_ref()
            .and_then(|a| a.first())
            .ok_or("no address")?;
        first.value.parse::<IpAddr>().map_err(|e| e.to_string())
    })
    .await;
    let gateway_addr = SocketAddr::new(address, port);
    expect_http(gateway_addr, "/web", 200).await;
    expect_http(gateway_addr, "/old", 200).await;

    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);
    let holder = |lease: &Lease| {
        lease
            .spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone())
            .unwrap_or_default()
    };
    let before = leases.get("gatehouse-controller").await.unwrap();
    let leader = holder(&before);
    let transitions = before.spec.as_ref().and_then(|s| s.lease_transitions);
    assert!(leader == "a" || leader == "b", "holder {leader:?}");

    // The leader dies without releasing; a route is removed while nobody leads.
    let i = replicas.iter().position(|(id, _)| *id == leader).unwrap();
    let (_, dead) = replicas.remove(i);
    dead.abort();
    let _ = dead.await;
    routes
        .delete("old", &DeleteParams::default())
        .await
        .unwrap();

    // Until the standby takes over (lease 3 s), the proxy keeps serving what it has.
    let started = Instant::now();
    let mut served = 0;
    while started.elapsed() < Duration::from_secs(4) {
        let got = get_status(gateway_addr, "app.example.com", "/web").await;
        assert_eq!(got, Ok(200), "after {:?}", started.elapsed());
        served += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served > 20);
    let after = eventually("the standby holds the lease", || async {
        let l = leases
            .get("gatehouse-controller")
            .await
            .map_err(|e| e.to_string())?;
        if holder(&l) == replicas[0].0 {
            Ok(l)
        } else {
            Err(format!("holder {:?}", holder(&l)))
        }
    })
    .await;
    assert_eq!(
        after.spec.as_ref().and_then(|s| s.lease_transitions),
        transitions.map(|t| t + 1)
    );
    // The new leader knew nothing of what the proxy held: it resynced, removal included.
    expect_http(gateway_addr, "/old", 404).await;
    expect_http(gateway_addr, "/web", 200).await;
    apply(&routes, route(&ns, "new", "/new", "echo")).await;
    expect_http(gateway_addr, "/new/x", 200).await;

    for (_, r) in replicas {
        r.abort();
    }
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
    let _ = classes.delete(&class, &DeleteParams::default()).await;
}

/// A cluster without an optional CRD (here TenantRoute's) is still served: the controller's
/// caches become ready without it, and once the CRD is installed the controller notices
/// (its recheck is 1 s in these tests) and serves the new kind too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_optional_crd_does_not_stall_the_controller() {
    use gatehouse_crds::{Tenant, TenantRoute};
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let Some(kubeconfig) = kubeconfig() else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    init_tracing();
    install_crds(&kubeconfig);
    let client: Client = gatehouse_controller::client::connect(Some(&kubeconfig))
        .await
        .expect("API client");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let _ = crds
        .delete("tenantroutes.gatehouse.dev", &DeleteParams::default())
        .await;
    let all_tenant_routes: Api<TenantRoute> = Api::all(client.clone());
    eventually("TenantRoute is no longer served", || async {
        match all_tenant_routes
            .list_metadata(&kube::api::ListParams::default().limit(1))
            .await
        {
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e.to_string()),
            Ok(_) => Err("still served".into()),
        }
    })
    .await;

    let config_port = free_port();
    let _proxy = start_proxy(&[config_port], &[]);
    let controller = start_controller(&client, config_port, None);
    let suffix = unique();
    let ns = format!("gh-nocrd-{suffix}");
    let class = format!("gatehouse-nocrd-{suffix}");
    let port = free_port();
    let namespaces = Api::<Namespace>::all(client.clone());
    create_namespaces(&client, &[&ns]).await;
    let classes: Api<GatewayClass> = Api::all(client.clone());
    our_class(&client, &class).await;
    let gateways: Api<Gateway> = Api::namespaced(client.clone(), &ns);
    apply(&gateways, json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": ns},
        "spec": {"gatewayClassName": class, "listeners": [{"name": "http", "protocol": "HTTP", "port": port}]},
    })).await;
    echo_service(&client, &ns, start_echo(host_address(), "nocrd-echo").await).await;
    apply(
        &Api::<HttpRoute>::namespaced(client.clone(), &ns),
        route(&ns, "web", "/", "echo"),
    )
    .await;
    let address: IpAddr = eventually("the Gateway has an address", || async {
        let g = gateways.get("gw").await.map_err(|e| e.to_string())?;
        let addresses = g.status.and_then(|s| s.addresses).unwrap_or_default();
        let first = addresses.first().ok_or("no address")?;
        first.value.parse::<IpAddr>().map_err(|e| e.to_string())
    })
    .await;
    let gateway_addr = SocketAddr::new(address, port);
    eventually(
        "the HTTPRoute is served without the TenantRoute CRD",
        || async {
            match get_status(gateway_addr, "app.example.com", "/").await? {
                200 => Ok(()),
                other => Err(format!("got {other}")),
            }
        },
    )
    .await;

    // The CRD comes back: a TenantRoute created now is served without a restart.
    install_crds(&kubeconfig);
    let host = format!("www.nocrd-{suffix}.example.com");
    let tenants: Api<Tenant> = Api::all(client.clone());
    let tenant = format!("nocrd-{suffix}");
    apply(&tenants, json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "Tenant",
        "metadata": {"name": tenant},
        "spec": {
            "namespaces": {"names": [ns]},
            "domains": [host],
            "listeners": [{"gatewayNamespace": ns, "gatewayName": "gw", "sectionNames": ["http"]}],
        },
    }))
    .await;
    let tenant_routes: Api<TenantRoute> = Api::namespaced(client.clone(), &ns);
    // Right after the CRD is re-created its resource may not be served for a moment.
    eventually("the TenantRoute is stored", || async {
        tenant_routes
            .patch(
                "site",
                &PatchParams::apply("gatehouse-test").force(),
                &Patch::Apply(json!({
                    "apiVersion": "gatehouse.dev/v1alpha1", "kind": "TenantRoute",
                    "metadata": {"name": "site", "namespace": ns},
                    "spec": {"hostnames": [host], "http": [{"backendRefs": [{"name": "echo", "port": 80}]}]},
                })),
            )
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    })
    .await;
    eventually("the TenantRoute is served once its CRD is back", || async {
        match get_status(gateway_addr, &host, "/").await? {
            200 => Ok(()),
            other => Err(format!("got {other}")),
        }
    })
    .await;

    controller.abort();
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
    let _ = tenants.delete(&tenant, &DeleteParams::default()).await;
    let _ = classes.delete(&class, &DeleteParams::default()).await;
}
