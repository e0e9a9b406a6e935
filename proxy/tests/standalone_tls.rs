//! Standalone mode with TLS: a Secret, an HTTPS Gateway and routes from a directory of YAML;
//! editing the Secret swaps the certificate, and a broken edit keeps the last good one.

mod common;
#[path = "common/tls.rs"]
mod tls;

use common::{Env, service_yaml};
use std::net::SocketAddr;
use tls::{TestCa, connect, get, presented};

const GATEWAY: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: gatehouse
  listeners:
    - name: https
      protocol: HTTPS
      port: {{PORT}}
      hostname: app.example.com
      tls: {certificateRefs: [{name: app-tls}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: web, port: 80}]}]
"#;

fn secret_yaml(leaf: &tls::Leaf) -> String {
    let indent = |pem: &str| {
        pem.lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    };
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: app-tls, namespace: default}}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
        indent(&leaf.cert_pem),
        indent(&leaf.key_pem)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_edits_swap_the_certificate_and_broken_ones_keep_the_last_good() {
    let mut env = Env::start().await;
    let web = env.add_backend("web", 200).await;
    let ca = TestCa::new();
    let first = ca.leaf(&["app.example.com"]);
    env.write(
        "services.yaml",
        &service_yaml("default", "web", &[web.port()], None),
    );
    env.write("gateway.yaml", GATEWAY);
    env.write("secret.yaml", &secret_yaml(&first));
    let report = env.sync();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    env.wait_listening().await;
    let addr: SocketAddr = ([127, 0, 0, 1], env.port).into();
    let client = ca.client(&[b"h2"]);
    let conn = connect(&client, addr, "app.example.com").await.unwrap();
    assert_eq!(presented(&conn), first.der);
    let answer = get(conn, "app.example.com", "/").await;
    assert_eq!(
        (answer.status, answer.version),
        (200, http::Version::HTTP_2)
    );

    // A broken edit (key of another certificate) is reported and the first keeps serving.
    let other = ca.leaf(&["app.example.com"]);
    let broken = tls::Leaf {
        key_pem: other.key_pem.clone(),
        ..first.clone()
    };
    env.write("secret.yaml", &secret_yaml(&broken));
    let report = env.sync();
    assert_eq!(
        report.errors,
        [
            "Gateway default/gw: spec.listeners[0].tls.certificateRefs[0]: InvalidCertificateRef: Secret default/app-tls: tls.key: private key does not match the certificate's public key"
        ]
    );
    let conn = connect(&client, addr, "app.example.com").await.unwrap();
    assert_eq!(presented(&conn), first.der);

    // A good edit is served by the next handshake.
    env.write("secret.yaml", &secret_yaml(&other));
    let report = env.sync();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.upserts, 1, "only the certificate changed");
    let conn = connect(&client, addr, "app.example.com").await.unwrap();
    assert_eq!(presented(&conn), other.der);
    assert_eq!(get(conn, "app.example.com", "/").await.status, 200);
}

#[test]
fn quickstart_example_translates_with_its_certificate() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/quickstart");
    let mut objects = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let parsed = gatehouse_core::manifest::parse(&path.display().to_string(), &text)
            .unwrap_or_else(|e| panic!("{e}"));
        objects.extend(parsed.objects);
    }
    let options = gatehouse_proxy::standalone::options("127.0.0.1".parse().unwrap());
    let t = gatehouse_core::translate::translate(&objects, &options);
    let problems: Vec<String> = t.problems.iter().map(ToString::to_string).collect();
    assert!(problems.is_empty(), "{problems:?}");
    let certificate =
        gatehouse_core::model::ResourceKey::Certificate("default/quickstart-tls".into());
    assert!(t.resources.contains_key(&certificate));
}
