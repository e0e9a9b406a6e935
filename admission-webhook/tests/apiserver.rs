//! The webhook behind a real kube-apiserver: a ValidatingWebhookConfiguration sends it real
//! AdmissionReviews, its watch caches follow the real cluster, and tenants (impersonated
//! users with RBAC rights to write routes) get the policy's answers from `kubectl`.
//!
//! Needs `GATEHOUSE_KUBECONFIG` (scripts/test starts the cluster); without it the test says
//! so loudly and checks nothing.

mod common;

use common::{Pki, replace};
use gatehouse_admission_webhook::server::{self, ServerConfig};
use gatehouse_admission_webhook::source::SnapshotSource;
use gatehouse_admission_webhook::tls::CertFiles;
use gatehouse_admission_webhook::watch::{Caches, DEFAULT_RECHECK, keep_current};
use gatehouse_admission_webhook::webhook::Webhook;
use gatehouse_policy::{Admins, Policy};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

const TENANT_GROUP: &str = "gatehouse-test-tenants";
const WEBHOOK_CONFIG: &str = "gatehouse-test-webhook";

struct Kubectl {
    bin: String,
    kubeconfig: String,
}

impl Kubectl {
    fn run(&self, as_user: Option<&str>, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--kubeconfig").arg(&self.kubeconfig);
        if let Some(user) = as_user {
            cmd.arg(format!("--as={user}"))
                .arg(format!("--as-group={TENANT_GROUP}"))
                .arg("--as-group=system:authenticated");
        }
        let mut child = cmd
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        let mut input = child.stdin.take().unwrap();
        input.write_all(stdin.as_bytes()).unwrap();
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn apply(&self, as_user: Option<&str>, manifest: &str) -> Output {
        self.run(as_user, &["apply", "-f", "-"], manifest)
    }

    fn must(&self, out: Output, what: &str) {
        assert!(
            out.status.success(),
            "{what}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Removes the webhook registration even when the test fails, so later tests writing these
/// kinds do not meet a webhook that is gone.
struct Registration<'a>(&'a Kubectl);

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(
            None,
            &[
                "delete",
                "validatingwebhookconfiguration",
                WEBHOOK_CONFIG,
                "--ignore-not-found",
            ],
            "",
        );
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Gateway API and Gatehouse CRDs, through the harness's own script.
fn install_crds(k: &Kubectl) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/cluster/install-crds");
    let out = Command::new(script)
        .env("KUBECONFIG", &k.kubeconfig)
        .output()
        .expect("install-crds runs");
    k.must(out, "installing CRDs");
}

const WORLD: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: wh-alice}
---
apiVersion: v1
kind: Namespace
metadata: {name: wh-bob, labels: {team: wh-bob}}
---
apiVersion: gatehouse.dev/v1alpha1
kind: Tenant
metadata: {name: wh-alice}
spec:
  namespaces: {names: [wh-alice]}
  domains: [shop.wh.example.com, "*.alice.wh.example.com"]
  limits: {routes: 2}
---
apiVersion: gatehouse.dev/v1alpha1
kind: Tenant
metadata: {name: wh-bob}
spec:
  namespaces: {selector: {matchLabels: {team: wh-bob}}}
  domains: ["*.bob.wh.example.com"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: gatehouse-test-tenant}
rules:
  - apiGroups: [gatehouse.dev, gateway.networking.k8s.io]
    resources: ["*"]
    verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: gatehouse-test-tenant}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: gatehouse-test-tenant}
subjects:
  - {apiGroup: rbac.authorization.k8s.io, kind: Group, name: gatehouse-test-tenants}
"#;

fn registration(port: u16, ca_pem: &str) -> String {
    format!(
        r#"apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {{name: {WEBHOOK_CONFIG}}}
webhooks:
  - name: tenancy.gatehouse.dev
    admissionReviewVersions: [v1]
    sideEffects: None
    failurePolicy: Fail
    timeoutSeconds: 5
    clientConfig:
      url: https://localhost:{port}/validate
      caBundle: {}
    rules:
      - apiGroups: [gatehouse.dev]
        apiVersions: ["*"]
        operations: [CREATE, UPDATE, DELETE]
        resources: [tenants, tenantroutes, tenantcertificates]
      - apiGroups: [gateway.networking.k8s.io]
        apiVersions: ["*"]
        operations: [CREATE, UPDATE, DELETE]
        resources: [gatewayclasses, gateways, httproutes, grpcroutes, tlsroutes, listenersets]
"#,
        base64(ca_pem.as_bytes())
    )
}

fn tenant_route(ns: &str, name: &str, hostname: &str) -> String {
    format!(
        "apiVersion: gatehouse.dev/v1alpha1\nkind: TenantRoute\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{hostnames: [\"{hostname}\"], http: [{{backendRefs: [{{name: web, port: 80}}]}}]}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_guards_a_real_apiserver() {
    let Ok(kubeconfig) = std::env::var("GATEHOUSE_KUBECONFIG") else {
        eprintln!(
            "\n*** SKIPPED: GATEHOUSE_KUBECONFIG is not set; the webhook was not run behind a \
             real kube-apiserver. scripts/test sets it. ***\n"
        );
        return;
    };
    let k = Kubectl {
        bin: std::env::var("GATEHOUSE_KUBECTL").unwrap_or_else(|_| "kubectl".into()),
        kubeconfig: kubeconfig.clone(),
    };
    install_crds(&k);
    k.must(k.apply(None, WORLD), "admin creates the world");

    // The webhook, with caches watching the real cluster.
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let leaf = pki.leaf("webhook", 1);
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    replace(&cert, leaf.cert_pem.as_bytes());
    replace(&key, leaf.key_pem.as_bytes());
    let source = Arc::new(SnapshotSource::unsynced());
    let webhook = Arc::new(Webhook::new(Policy::new(Admins::default()), source.clone()));
    let server = server::start(
        webhook.clone(),
        ServerConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            cert: CertFiles { cert, key },
            metrics_addr: None,
            cert_poll: Duration::from_secs(1),
        },
    )
    .await
    .expect("webhook starts");
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let caches = Arc::new(Caches::new(client));
    let snapshots = tokio::spawn(keep_current(
        caches,
        source.clone(),
        webhook.metrics.clone(),
        DEFAULT_RECHECK,
    ));
    for _ in 0..600 {
        if source.is_synced() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        source.is_synced(),
        "watch caches synced against the real apiserver"
    );

    k.must(
        k.apply(None, &registration(server.addr.port(), &pki.ca_pem)),
        "registering the webhook",
    );
    let _registration = Registration(&k);
    // Let the apiserver pick the registration up.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // (user, manifest, allowed, what the refusal must say)
    let cases: Vec<(&str, &str, String, bool, &str)> = vec![
        (
            "own claimed hostname",
            "wh-alice",
            tenant_route("wh-alice", "shop", "shop.wh.example.com"),
            true,
            "",
        ),
        (
            "exact hijack of a foreign claim",
            "wh-bob",
            tenant_route("wh-bob", "steal", "shop.wh.example.com"),
            false,
            "owned by tenant wh-alice",
        ),
        (
            "wildcard over a foreign claim",
            "wh-bob",
            tenant_route("wh-bob", "wild", "*.wh.example.com"),
            false,
            "wh-bob/wild",
        ),
        (
            "own wildcard claim",
            "wh-bob",
            tenant_route("wh-bob", "api", "api.bob.wh.example.com"),
            true,
            "",
        ),
        (
            "a tenant creates a Tenant",
            "wh-bob",
            "apiVersion: gatehouse.dev/v1alpha1\nkind: Tenant\nmetadata: {name: wh-mallory}\nspec: {namespaces: {names: [wh-bob]}, domains: [shop.wh.example.com]}\n".into(),
            false,
            "Tenant",
        ),
        (
            "a tenant creates a Gateway",
            "wh-bob",
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: mine, namespace: wh-bob}\nspec: {gatewayClassName: x, listeners: [{name: http, protocol: HTTP, port: 80}]}\n".into(),
            false,
            "Gateway",
        ),
    ];
    let mut failures = Vec::new();
    for (name, user, manifest, allowed, says) in &cases {
        let out = k.apply(Some(user), manifest);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let denied_by_webhook = stderr.contains("denied the request");
        match allowed {
            true if !out.status.success() => failures.push(format!("{name}: refused: {stderr}")),
            false if !denied_by_webhook || !stderr.contains(says) => failures.push(format!(
                "{name}: want a webhook denial naming {says:?}, got success={} {stderr}",
                out.status.success()
            )),
            _ => {}
        }
    }
    // The quota counts what the apiserver stored: alice has 1 route of 2, a second fits and
    // a third does not.
    let second = k.apply(
        Some("wh-alice"),
        &tenant_route("wh-alice", "two", "a.alice.wh.example.com"),
    );
    if !second.status.success() {
        failures.push(format!(
            "second route refused: {}",
            String::from_utf8_lossy(&second.stderr)
        ));
    }
    let mut third_denied = false;
    for _ in 0..20 {
        // The caches see the second route a moment after it is stored.
        let third = k.apply(
            Some("wh-alice"),
            &tenant_route("wh-alice", "three", "b.alice.wh.example.com"),
        );
        if !third.status.success()
            && String::from_utf8_lossy(&third.stderr).contains("denied the request")
        {
            third_denied = true;
            break;
        }
        let _ = k.run(
            None,
            &[
                "delete",
                "tenantroute",
                "-n",
                "wh-alice",
                "three",
                "--ignore-not-found",
            ],
            "",
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if !third_denied {
        failures.push("route quota of 2 was not enforced on the third route".into());
    }
    drop(_registration);
    snapshots.abort();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
