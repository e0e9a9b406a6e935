//! `--bind-any`: a proxy behind a Service gets connections on its own addresses, not on
//! the Gateway's. Its listeners name an address this machine does not have (10.255.255.1,
//! as a load balancer's would be) and must still serve on loopback, told apart by hostname.

mod common;

use common::{Env, client, service_yaml};
use gatehouse_proxy::Binding;
use std::net::IpAddr;
use std::time::Duration;

/// Not an address of this machine: binding it fails with EADDRNOTAVAIL.
const FOREIGN: &str = "10.255.255.1";

const CONFIG: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: gatehouse
  listeners:
    - {name: a, protocol: HTTP, port: {{PORT}}, hostname: a.test}
    - {name: b, protocol: HTTP, port: {{PORT}}, hostname: b.test}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: a, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: a}]
  rules: [{backendRefs: [{name: svc-a, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: b, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: b}]
  rules: [{backendRefs: [{name: svc-b, port: 80}]}]
"#;

async fn env(binding: Binding) -> Env {
    let mut env = Env::start_with(binding, FOREIGN.parse::<IpAddr>().unwrap()).await;
    let a = env.add_backend("svc-a", 200).await;
    let b = env.add_backend("svc-b", 200).await;
    env.write("gateway.yaml", CONFIG);
    env.write(
        "services.yaml",
        &format!(
            "{}---\n{}",
            service_yaml("default", "svc-a", &[a.port()], None),
            service_yaml("default", "svc-b", &[b.port()], None)
        ),
    );
    let report = env.sync();
    assert!(report.errors.is_empty(), "config applies: {report:?}");
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listeners_naming_a_foreign_address_serve_on_every_local_address() {
    let env = env(Binding::AnyAddress).await;
    env.wait_listening().await;
    assert_eq!(
        env.proxy.listeners.bound(),
        vec![format!("0.0.0.0:{}", env.port).parse().unwrap()],
        "both listeners share one wildcard socket"
    );
    let http = client();
    for (host, backend) in [("a.test", "svc-a"), ("b.test", "svc-b")] {
        let before = env.served(backend);
        let resp = http
            .get(env.url("/"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{host} is served on loopback");
        assert_eq!(env.served(backend), before + 1, "{host} reaches {backend}");
    }
    let other = http
        .get(env.url("/"))
        .header("host", "c.test")
        .send()
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        404,
        "a host no listener names is not served"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_bind_any_a_foreign_address_is_not_served_locally() {
    let env = env(Binding::AsConfigured).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        env.proxy.listeners.bound().is_empty(),
        "{FOREIGN} cannot be bound here"
    );
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", env.port))
            .await
            .is_err(),
        "nothing listens on loopback"
    );
}
