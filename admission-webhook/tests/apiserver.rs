//! The webhook behind a real kube-apiserver: a ValidatingWebhookConfiguration sends it real
//! AdmissionReviews, its watch caches follow the real cluster, and tenants (impersonated
//! users with RBAC rights to write routes) get the policy's answers from `kubectl`.
//!
//! Needs `GATEHOUSE_KUBECONFIG` (scripts/test starts the cluster); without it the test says
//! so loudly and checks nothing.

mod common;
mod live;

use gatehouse_admission_webhook::watch::DEFAULT_RECHECK;
use gatehouse_policy::{Admins, Policy};
use live::{Cluster, LiveWebhook};
use std::process::Output;
use std::time::Duration;

const TENANT_GROUP: &str = "gatehouse-test-tenants";
const WEBHOOK_CONFIG: &str = "gatehouse-test-webhook";

/// `kubectl apply` as `as_user` (impersonated, in the test tenants' group) or as admin.
fn apply(cluster: &Cluster, as_user: Option<&str>, manifest: &str) -> Output {
    let (user, group) = match as_user {
        Some(user) => (format!("--as={user}"), format!("--as-group={TENANT_GROUP}")),
        None => return cluster.kubectl(&["apply", "-f", "-"], manifest),
    };
    cluster.kubectl(
        &[
            &user,
            &group,
            "--as-group=system:authenticated",
            "apply",
            "-f",
            "-",
        ],
        manifest,
    )
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

fn tenant_route(ns: &str, name: &str, hostname: &str) -> String {
    format!(
        "apiVersion: gatehouse.dev/v1alpha1\nkind: TenantRoute\nmetadata: {{name: {name}, namespace: {ns}}}\nspec: {{hostnames: [\"{hostname}\"], http: [{{backendRefs: [{{name: web, port: 80}}]}}]}}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_guards_a_real_apiserver() {
    let Some(k) = live::cluster("the webhook behind a real kube-apiserver").await else {
        return;
    };
    k.install_crds();
    // Tenants and routes left by an earlier run would own hostnames and quota first.
    for ns in ["wh-alice", "wh-bob"] {
        let _ = k.kubectl(
            &["delete", "tenantroutes.gatehouse.dev", "--all", "-n", ns],
            "",
        );
    }
    k.must(
        &[
            "delete",
            "tenants.gatehouse.dev",
            "--ignore-not-found",
            "wh-alice",
            "wh-bob",
        ],
        "",
    );
    k.must(&["apply", "-f", "-"], WORLD);

    let webhook = LiveWebhook::start(&k, Policy::new(Admins::default()), DEFAULT_RECHECK).await;
    webhook.wait_synced().await;
    let registration = webhook.register(&k, WEBHOOK_CONFIG);
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
        let out = apply(&k, Some(user), manifest);
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
    // a third does not. The webhook learns of the second from its watch event, applied to
    // the snapshot it serves, without rebuilding it.
    let counter = |name: &str| -> u64 {
        let text = webhook.webhook.render_metrics();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in metrics:\n{text}"))
    };
    let (builds, updates) = (
        counter("gatehouse_webhook_snapshot_builds_total"),
        counter("gatehouse_webhook_snapshot_updates_total"),
    );
    let second = apply(
        &k,
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
        let third = apply(
            &k,
            Some("wh-alice"),
            &tenant_route("wh-alice", "three", "b.alice.wh.example.com"),
        );
        if !third.status.success()
            && String::from_utf8_lossy(&third.stderr).contains("denied the request")
        {
            third_denied = true;
            break;
        }
        let _ = k.kubectl(
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
    if counter("gatehouse_webhook_snapshot_builds_total") != builds
        || counter("gatehouse_webhook_snapshot_updates_total") <= updates
    {
        failures.push(format!(
            "the second route reached the snapshot by a rebuild, not an incremental update: {}",
            webhook.webhook.render_metrics()
        ));
    }
    drop(registration);
    k.must(
        &[
            "delete",
            "tenants.gatehouse.dev",
            "--ignore-not-found",
            "wh-alice",
            "wh-bob",
        ],
        "",
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
