//! Protocols and listener lifecycle over real sockets: h2c on both sides, listeners bound
//! and unbound at runtime.

mod common;

use common::{Env, free_port, service_yaml};
use gatehouse_core::model::{
    Delta, Listener, ListenerKey, ListenerProtocol, Resource, ResourceKey,
};
use std::time::Duration;

const GATEWAY: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: gatehouse
  listeners: [{name: http, protocol: HTTP, port: {{PORT}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
    - matches: [{path: {value: /h1}}]
      backendRefs: [{name: plain, port: 80}]
    - matches: [{path: {value: /h2c}}]
      backendRefs: [{name: h2c, port: 80}]
"#;

async fn setup() -> Env {
    let mut env = Env::start().await;
    let plain = env.add_backend("plain", 200).await;
    let h2c = env.add_backend("h2c", 200).await;
    let services = format!(
        "{}---\n{}",
        service_yaml("default", "plain", &[plain.port()], None),
        service_yaml("default", "h2c", &[h2c.port()], Some("kubernetes.io/h2c"))
    );
    env.write("services.yaml", &services);
    env.write("gateway.yaml", GATEWAY);
    let report = env.sync();
    assert!(report.applied.is_some(), "{:?}", report.errors);
    env.wait_listening().await;
    env
}

async fn protocol_seen(client: &reqwest::Client, url: String) -> (reqwest::Version, String) {
    let resp = client.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let version = resp.version();
    let echo: serde_json::Value = resp.json().await.unwrap();
    (version, echo["protocol"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_downstream_and_upstream() {
    let env = setup().await;
    let h1 = common::client();
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .build()
        .unwrap();
    // Downstream protocol is the client's; upstream follows the Service's appProtocol.
    assert_eq!(
        protocol_seen(&h1, env.url("/h1")).await,
        (reqwest::Version::HTTP_11, "HTTP/1.1".into())
    );
    assert_eq!(
        protocol_seen(&h1, env.url("/h2c")).await,
        (reqwest::Version::HTTP_11, "HTTP/2.0".into())
    );
    assert_eq!(
        protocol_seen(&h2, env.url("/h1")).await,
        (reqwest::Version::HTTP_2, "HTTP/1.1".into())
    );
    assert_eq!(
        protocol_seen(&h2, env.url("/h2c")).await,
        (reqwest::Version::HTTP_2, "HTTP/2.0".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_are_bound_and_unbound_at_runtime() {
    let env = setup().await;
    let http = common::client();
    // A kept-alive connection on the first listener must survive everything below.
    let keepalive = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    assert_eq!(
        keepalive.get(env.url("/h1")).send().await.unwrap().status(),
        200
    );

    let extra_port = free_port();
    let extra = Listener {
        key: ListenerKey::new("default", "gw", "extra"),
        version: 1,
        address: "127.0.0.1".parse().unwrap(),
        port: extra_port,
        protocol: ListenerProtocol::Http,
        hostname: None,
        tls: None,
    };
    env.proxy
        .store
        .apply(&Delta {
            upserts: vec![Resource::Listener(extra)],
            removals: vec![],
        })
        .unwrap();
    let extra_url = format!("http://127.0.0.1:{extra_port}/h1");
    let mut bound = false;
    for _ in 0..200 {
        if let Ok(resp) = http.get(&extra_url).send().await {
            // The route is attached to the Gateway's `http` listener only.
            assert_eq!(resp.status(), 404);
            bound = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(bound, "the new listener was bound");
    assert!(
        env.proxy
            .listeners
            .bound()
            .iter()
            .any(|a| a.port() == extra_port)
    );

    env.proxy
        .store
        .apply(&Delta {
            upserts: vec![],
            removals: vec![ResourceKey::Listener(ListenerKey::new(
                "default", "gw", "extra",
            ))],
        })
        .unwrap();
    let mut closed = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", extra_port))
            .await
            .is_err()
        {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(closed, "the removed listener stopped accepting");
    assert_eq!(
        keepalive.get(env.url("/h1")).send().await.unwrap().status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_file_becomes_a_minimal_delta() {
    let mut env = setup().await;
    env.write(
        "gateway.yaml",
        &GATEWAY.replace("value: /h2c", "value: /h2c-renamed"),
    );
    let report = env.sync();
    assert_eq!((report.upserts, report.removals), (1, 0), "{report:?}");
    let http = common::client();
    assert_eq!(
        http.get(env.url("/h2c-renamed"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http.get(env.url("/h2c")).send().await.unwrap().status(),
        404
    );
    // Nothing changed: nothing is applied.
    let report = env.sync();
    assert!(report.applied.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_finishes_open_requests_and_refuses_new_ones() {
    let env = setup().await;
    let http = common::client();
    let slow = tokio::spawn(
        http.get(env.url("/h1"))
            .header("x-echo-delay-ms", "400")
            .send(),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(env.proxy.listeners.connections(), 1);
    let left = env.proxy.drain(Duration::from_secs(5)).await;
    assert_eq!(left, 0, "drain waited for the open request");
    assert_eq!(slow.await.unwrap().unwrap().status(), 200);
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", env.port))
            .await
            .is_err(),
        "no new connections while draining"
    );
}
