//! The deployment manifests in charts/gatehouse against the real kube-apiserver: they render
//! with `kubectl kustomize` (base and an overlay that sets admin groups and the CA bundle),
//! register the webhook for exactly the kinds the policy judges, give its ServiceAccount
//! exactly the read access its watch caches need (proved by running them as that account),
//! and pass `kubectl apply --dry-run=server`.
//!
//! Needs `GATEHOUSE_KUBECONFIG` (scripts/test starts the cluster); says so loudly without it.

mod common;
mod live;

use gatehouse_admission_webhook::source::SnapshotSource;
use gatehouse_admission_webhook::watch::{Caches, keep_current};
use gatehouse_admission_webhook::webhook::Webhook;
use gatehouse_policy::{Kind, Policy, UserInfo};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Component, Path};
use std::sync::Arc;
use std::time::{Duration, Instant};

const NAMESPACE: &str = "gatehouse-system";
const SERVICE_ACCOUNT: &str = "gatehouse-webhook";

/// The webhook's object of that kind. The chart also holds the controller's RBAC
/// (`gatehouse-controller*`), exercised by controller/tests/provision.rs.
fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .filter(|d| {
            let name = d["metadata"]["name"].as_str().unwrap_or_default();
            !name.starts_with("gatehouse-controller")
        })
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("the chart has no {kind}"))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// (group, resource) of each kind, as RBAC rules and webhook rules name them.
fn resources(kinds: impl IntoIterator<Item = Kind>) -> BTreeSet<(String, String)> {
    kinds
        .into_iter()
        .map(|k| {
            let r = live::api_resource(k);
            (r.group, r.plural)
        })
        .collect()
}

/// Every (group, resource) a list of rules names, with the verbs or operations given to it.
fn rule_resources(rules: &Value, what: &str) -> Vec<((String, String), Vec<String>)> {
    let mut out = Vec::new();
    for rule in rules.as_array().expect("rules is a list") {
        for group in strings(&rule["apiGroups"]) {
            for resource in strings(&rule["resources"]) {
                out.push(((group.clone(), resource), strings(&rule[what])));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_renders_registers_every_judged_kind_and_grants_only_what_the_watches_need() {
    let Some(cluster) = live::cluster("the deployment manifests").await else {
        return;
    };
    cluster.install_crds();
    let docs = live::chart_documents(&live::chart_dir());

    // The registration: every kind the policy judges, nothing else, failing closed.
    let registration = find(&docs, "ValidatingWebhookConfiguration");
    let webhooks = registration["webhooks"].as_array().expect("webhooks");
    assert_eq!(webhooks.len(), 1);
    let webhook = &webhooks[0];
    assert_eq!(webhook["name"], live::WEBHOOK_NAME);
    assert_eq!(webhook["failurePolicy"], "Fail");
    assert_eq!(webhook["sideEffects"], "None");
    assert_eq!(strings(&webhook["admissionReviewVersions"]), ["v1"]);
    let timeout = webhook["timeoutSeconds"].as_u64().expect("timeoutSeconds");
    assert!((1..=10).contains(&timeout), "timeoutSeconds {timeout}");
    assert_eq!(
        webhook["clientConfig"]["service"]["name"],
        find(&docs, "Service")["metadata"]["name"]
    );
    let rules = rule_resources(&webhook["rules"], "operations");
    let registered: BTreeSet<_> = rules.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(registered, resources(Kind::ALL), "registered kinds");
    for ((group, resource), operations) in &rules {
        let want: &[&str] = if resource == "namespaces" {
            &["CREATE", "UPDATE"]
        } else {
            &["CREATE", "UPDATE", "DELETE"]
        };
        assert_eq!(operations, want, "operations on {group}/{resource}");
    }

    // RBAC: list and watch exactly what the caches read; no Secrets, no writes.
    let caches_as_webhook = Caches::new(cluster.admin.clone());
    let role = find(&docs, "ClusterRole");
    let grants = rule_resources(&role["rules"], "verbs");
    let granted: BTreeSet<_> = grants.iter().map(|(r, _)| r.clone()).collect();
    assert_eq!(granted, resources(caches_as_webhook.kinds()), "RBAC kinds");
    for ((group, resource), verbs) in &grants {
        assert_eq!(verbs, &["list", "watch"], "verbs on {group}/{resource}");
    }

    // The whole base passes the apiserver's own validation (its namespace must exist).
    cluster.must(&["apply", "-f", "-"], &to_json(&[find(&docs, "Namespace")]));
    let out = cluster.must(
        &["apply", "--dry-run=server", "-f", "-"],
        &to_json(&docs.iter().collect::<Vec<_>>()),
    );
    assert!(out.contains("(server dry run)"), "{out}");

    // The RBAC, applied for real, is enough: the watch caches sync as that ServiceAccount.
    let rbac: Vec<&Value> = ["ServiceAccount", "ClusterRole", "ClusterRoleBinding"]
        .iter()
        .map(|k| find(&docs, k))
        .collect();
    cluster.must(&["apply", "-f", "-"], &to_json(&rbac));
    let account = format!("system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}");
    let as_webhook = cluster
        .client_as(&UserInfo::new(
            &account,
            &[
                "system:serviceaccounts",
                &format!("system:serviceaccounts:{NAMESPACE}"),
                "system:authenticated",
            ],
        ))
        .await;
    let source = Arc::new(SnapshotSource::unsynced());
    let metrics = Webhook::new(Policy::default(), source.clone()).metrics;
    let task = tokio::spawn(keep_current(
        Arc::new(Caches::new(as_webhook)),
        source.clone(),
        metrics,
        Duration::from_secs(3600),
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !source.is_synced() {
        assert!(
            !task.is_finished(),
            "the snapshot task stopped: {:?}",
            task.await
        );
        assert!(
            Instant::now() < deadline,
            "watch caches did not sync as {account}: its RBAC is not enough"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        source.unwatched().is_empty(),
        "with every CRD installed, {:?} were still refused to {account}",
        source.unwatched()
    );
    task.abort();
    for (verb, resource) in [
        ("get", "secrets"),
        ("list", "secrets"),
        ("create", "tenantroutes.gatehouse.dev"),
        ("update", "tenants.gatehouse.dev"),
        ("delete", "httproutes.gateway.networking.k8s.io"),
    ] {
        let out = cluster.kubectl(&["auth", "can-i", verb, resource, "--as", &account], "");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "no",
            "{account} may {verb} {resource}"
        );
    }

    // An overlay configures admin groups (the webhook reads them from the generated
    // ConfigMap) and the CA bundle.
    let overlay = tempfile::tempdir().expect("tempdir");
    let base = relative_to(overlay.path(), &live::chart_dir());
    std::fs::write(
        overlay.path().join("kustomization.yaml"),
        format!(
            "resources: [\"{base}\"]\n\
             configMapGenerator:\n\
             - name: gatehouse-webhook\n  behavior: merge\n  literals: [\"admin-groups=sre,platform-admins\"]\n\
             patches:\n\
             - target: {{kind: ValidatingWebhookConfiguration, name: gatehouse-tenancy}}\n  patch: |-\n    \
             - op: add\n      path: /webhooks/0/clientConfig/caBundle\n      value: Zm9v\n"
        ),
    )
    .expect("write overlay");
    let configured = live::chart_documents(overlay.path());
    let config = find(&configured, "ConfigMap");
    assert_eq!(config["data"]["admin-groups"], "sre,platform-admins");
    let config_name = config["metadata"]["name"].as_str().expect("name");
    let env = &find(&configured, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"];
    let admin_groups = env
        .as_array()
        .expect("env")
        .iter()
        .find(|e| e["name"] == "GATEHOUSE_WEBHOOK_ADMIN_GROUPS")
        .expect("the Deployment passes the admin groups");
    assert_eq!(
        admin_groups["valueFrom"]["configMapKeyRef"]["name"], config_name,
        "the Deployment reads the overlay's ConfigMap"
    );
    assert_eq!(
        find(&configured, "ValidatingWebhookConfiguration")["webhooks"][0]["clientConfig"]["caBundle"],
        "Zm9v"
    );
    let out = cluster.must(
        &["apply", "--dry-run=server", "-f", "-"],
        &to_json(&configured.iter().collect::<Vec<_>>()),
    );
    assert!(out.contains("(server dry run)"), "{out}");

    let _ = cluster.kubectl(
        &[
            "delete",
            "clusterrolebinding,clusterrole",
            SERVICE_ACCOUNT,
            "--ignore-not-found",
        ],
        "",
    );
}

/// A `kind: List` of the documents, which `kubectl apply -f -` takes as one input.
fn to_json(docs: &[&Value]) -> String {
    serde_json::json!({"apiVersion": "v1", "kind": "List", "items": docs}).to_string()
}

/// `to` as a path relative to `from` (kustomize refuses absolute paths to bases).
fn relative_to(from: &Path, to: &Path) -> String {
    let to = to.canonicalize().expect("chart dir exists");
    let from = from.canonicalize().expect("overlay dir exists");
    let ups = from
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .count();
    let down = to.strip_prefix("/").expect("absolute");
    format!("{}{}", "../".repeat(ups), down.display())
}
