//! A cluster without the optional Gateway API CRDs (TLSRoute, ListenerSet): the webhook must
//! still become ready and judge everything else, refuse writes of a kind it cannot see yet,
//! and start watching the kind once its CRD appears, both when a write asks for it and on
//! its periodic re-check.
//!
//! Removes those two CRDs from the shared test cluster for the duration (a guard reinstalls
//! them, also on failure); test binaries run one at a time, so no other test sees the gap.
//! Needs `GATEHOUSE_KUBECONFIG` (scripts/test starts the cluster); says so loudly without it.

mod common;
mod live;

use gatehouse_policy::testkit::{route, tenant, tenant_user};
use gatehouse_policy::{Admins, Kind, Object, Policy};
use live::{Cluster, LiveWebhook, Outcome};
use std::time::{Duration, Instant};

const OPTIONAL_CRDS: [&str; 2] = [
    "tlsroutes.gateway.networking.k8s.io",
    "listenersets.gateway.networking.k8s.io",
];
const REGISTRATION: &str = "gatehouse-test-optional-crds";
const TENANT: &str = "oc-tenant";

/// Puts the CRDs back however the test ends.
struct Reinstall<'a>(&'a Cluster);

impl Drop for Reinstall<'_> {
    fn drop(&mut self) {
        self.0.install_crds();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_is_ready_without_optional_crds_and_picks_them_up_later() {
    let Some(cluster) = live::cluster("the webhook without optional CRDs").await else {
        return;
    };
    cluster.install_crds();
    let _reinstall = Reinstall(&cluster);
    let mut delete = vec!["delete", "crd", "--ignore-not-found", "--wait"];
    delete.extend(OPTIONAL_CRDS);
    cluster.must(&delete, "");
    let group = format!("tenants:{TENANT}");
    cluster.must(
        &["apply", "-f", "-"],
        &format!(
            r#"apiVersion: v1
kind: Namespace
metadata: {{name: {TENANT}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: gatehouse-test-optional-crds}}
rules:
  - apiGroups: [gatehouse.dev, gateway.networking.k8s.io]
    resources: ["*"]
    verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: gatehouse-test-optional-crds}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: gatehouse-test-optional-crds}}
subjects:
  - {{apiGroup: rbac.authorization.k8s.io, kind: Group, name: "{group}"}}
"#
        ),
    );
    let _ = cluster.kubectl(
        &[
            "delete",
            "tenants.gatehouse.dev",
            "--ignore-not-found",
            TENANT,
        ],
        "",
    );
    // What an earlier run left in the namespace (the TLSRoutes went with their CRD).
    cluster.must(
        &[
            "delete",
            "tenantroutes.gatehouse.dev",
            "--all",
            "-n",
            TENANT,
        ],
        "",
    );
    let owner = tenant(TENANT)
        .namespaces(&[TENANT])
        .domains(&["*.oc.example.com"])
        .listener("gateways", "public", &[])
        .object();
    live::create(&cluster.admin, &owner)
        .await
        .expect("admin creates the tenant");

    // A re-check interval far longer than the test: only a write can make this one look.
    let on_demand = LiveWebhook::start(
        &cluster,
        Policy::new(Admins::default()),
        Duration::from_secs(3600),
    )
    .await;
    // And one that only its timer can make look again.
    let periodic = LiveWebhook::start(
        &cluster,
        Policy::new(Admins::default()),
        Duration::from_secs(1),
    )
    .await;
    on_demand.wait_synced().await;
    periodic.wait_synced().await;
    for webhook in [&on_demand, &periodic] {
        assert_eq!(
            *webhook.source.unwatched(),
            vec![Kind::TlsRoute, Kind::ListenerSet],
            "the missing kinds are skipped, the rest is watched"
        );
    }
    let registration = on_demand.register(&cluster, REGISTRATION);
    let user = tenant_user(TENANT);
    let client = cluster.client_as(&user).await;
    wait_until_judged(&client).await;

    // Ready: the watched kinds are judged as usual.
    let own = Object::TenantRoute(
        route(TENANT, "web")
            .hostnames(&["web.oc.example.com"])
            .tenant_route(),
    );
    let stolen = Object::TenantRoute(
        route(TENANT, "steal")
            .hostnames(&["web.elsewhere.example.net"])
            .tenant_route(),
    );
    let outcome = Outcome::of(live::create(&client, &own).await);
    assert!(matches!(outcome, Outcome::Stored(_)), "{outcome:?}");
    match Outcome::of(live::create(&client, &stolen).await) {
        Outcome::WebhookDenied { reason, .. } => assert_eq!(reason, "HostnameNotAssigned"),
        other => panic!("an unassigned hostname was not refused: {other:?}"),
    }

    // The CRDs appear. The first TLSRoute meets a webhook that cannot see TLSRoutes yet.
    cluster.install_crds();
    let mut wait = vec!["wait", "--for=condition=Established", "--timeout=60s"];
    let crds: Vec<String> = OPTIONAL_CRDS.iter().map(|c| format!("crd/{c}")).collect();
    wait.extend(crds.iter().map(String::as_str));
    cluster.must(&wait, "");
    let tls_route = |name: &str, hostname: &str| {
        Object::TlsRoute(
            route(TENANT, name)
                .hostnames(&[hostname])
                .parent("gateways", "public", None)
                .tls_route(),
        )
    };
    let first = tls_route("db", "db.oc.example.com");
    let outcome = create_when_served(&client, &first).await;
    match &outcome {
        Outcome::WebhookDenied {
            reason, message, ..
        } => {
            assert_eq!(reason, "KindNotWatched", "{message}");
            assert!(message.contains("not watching TLSRoute"), "{message}");
        }
        other => panic!(
            "a TLSRoute was judged before its watch synced: {other:?}; unwatched {:?}\n{}",
            on_demand.source.unwatched(),
            on_demand.webhook.render_metrics()
        ),
    }
    // That write made the webhook look again; once it watches TLSRoutes they are judged.
    wait_watched(&on_demand, Duration::from_secs(20)).await;
    let outcome = Outcome::of(live::create(&client, &first).await);
    assert!(matches!(outcome, Outcome::Stored(_)), "{outcome:?}");
    let hijack = tls_route("hijack", "db.elsewhere.example.net");
    match Outcome::of(live::create(&client, &hijack).await) {
        Outcome::WebhookDenied { reason, .. } => assert_eq!(reason, "HostnameNotAssigned"),
        other => panic!("a TLSRoute hijack was not refused: {other:?}"),
    }
    // The other webhook saw no write; its timer found the CRDs on its own.
    wait_watched(&periodic, Duration::from_secs(20)).await;

    drop(registration);
    let _ = cluster.kubectl(
        &[
            "delete",
            "tenants.gatehouse.dev",
            "--ignore-not-found",
            TENANT,
        ],
        "",
    );
    let _ = cluster.kubectl(
        &[
            "delete",
            "clusterrolebinding,clusterrole",
            "gatehouse-test-optional-crds",
            "--ignore-not-found",
        ],
        "",
    );
}

/// The registration is live once the webhook refuses a tenant's (dry-run) Gateway.
async fn wait_until_judged(client: &kube::Client) {
    let probe = Object::Gateway(gatehouse_policy::testkit::gateway(
        TENANT,
        "probe",
        &[("http", 80)],
    ));
    let dry_run = kube::api::PostParams {
        dry_run: true,
        ..Default::default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let result = live::api_for(client, &probe)
            .create(&dry_run, &live::manifest(&probe))
            .await
            .map(|_| String::new());
        if let Outcome::WebhookDenied { .. } = Outcome::of(result) {
            return;
        }
        assert!(Instant::now() < deadline, "registration never took effect");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Creates `object`, retrying while the apiserver itself does not serve the new CRD yet.
async fn create_when_served(client: &kube::Client, object: &Object) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match live::create(client, object).await {
            Err(kube::Error::Api(status)) if status.is_not_found() => {
                assert!(Instant::now() < deadline, "the CRD is never served");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            result => return Outcome::of(result),
        }
    }
}

async fn wait_watched(webhook: &LiveWebhook, within: Duration) {
    let deadline = Instant::now() + within;
    while !webhook.source.unwatched().is_empty() {
        assert!(
            Instant::now() < deadline,
            "still not watching {:?} after {within:?}",
            webhook.source.unwatched()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
