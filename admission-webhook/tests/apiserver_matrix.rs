//! The whole tenant-attack matrix (`gatehouse_policy::attacks`) through a real kube-apiserver.
//!
//! The matrix's world is staged as real objects (Tenants, namespaces, routes, certificates,
//! ReferenceGrants, the shared Gateway, a ListenerSet); the webhook runs with watch caches on
//! the cluster and a ValidatingWebhookConfiguration; then every case's request is made by the
//! case's own identity (impersonated, with RBAC rights to write the tenancy kinds everywhere,
//! so that only the policy stands between a tenant and an attack). Each verdict is checked
//! against the table, with the layer that decided it: our webhook, or, for malformed
//! hostnames, the CRD schema that refuses them before admission. Allowed controls are stored
//! for real and undone before the next case, waiting until the webhook has seen both.
//!
//! Creation order is staged for real: the first claimant exists (and is in the webhook's
//! snapshot) before the second asks. The same-second race is then run as a real race.
//!
//! Needs `GATEHOUSE_KUBECONFIG` (scripts/test starts the cluster); says so loudly without it.

mod common;
mod live;

use gatehouse_admission_webhook::watch::DEFAULT_RECHECK;
use gatehouse_policy::attacks::{self, AttackCase, Expect};
use gatehouse_policy::{
    ConflictReason, DenyReason, Kind, Object, ObjectRef, Objects, Operation, Policy, Request,
    SYSTEM_MASTERS, Snapshot, UserInfo, resolve_conflicts,
};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::{Client, ResourceExt};
use live::{Cluster, LiveWebhook, Outcome};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Write;
use std::time::{Duration, Instant};

const REGISTRATION: &str = "gatehouse-test-matrix";
const WRITER_ROLE: &str = "gatehouse-test-matrix-writer";
const RACE_CASE: &str = "same-second tenant takes a first-come hostname";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_attack_matrix_through_a_real_apiserver() {
    let Some(cluster) = live::cluster("the attack matrix through the apiserver").await else {
        return;
    };
    cluster.install_crds();
    let cases = attacks::cases();
    grant_writers(&cluster, &cases);
    let staged = stage(&cluster.admin, &attacks::world()).await;

    let webhook =
        LiveWebhook::start(&cluster, Policy::new(attacks::admins()), DEFAULT_RECHECK).await;
    webhook.wait_synced().await;
    for (object, rv) in &staged {
        let r = object.object_ref();
        webhook
            .wait_seen(r.kind, r.namespace.as_deref(), &r.name, Some(rv))
            .await;
    }
    let registration = webhook.register(&cluster, REGISTRATION);
    wait_until_registration_is_live(&cluster).await;

    let mut clients = Clients::default();
    let mut table = String::new();
    let mut failures = Vec::new();
    for case in &cases {
        let client = clients.get(&cluster, &case.request.user).await;
        let outcome = send(&cluster.admin, &client, &case.request).await;
        let verdict = judge(&case.expect, &outcome);
        let _ = writeln!(
            table,
            "{:<5} {:<34} {} [{}]",
            if verdict.is_ok() { "ok" } else { "WRONG" },
            outcome.layer(),
            case.name,
            case.request.user.username
        );
        if let Err(why) = verdict {
            failures.push(format!("{}: {why}", case.name));
        }
        if let Outcome::Stored(rv) = &outcome {
            undo(&cluster.admin, &webhook, &case.request, rv).await;
        }
    }

    let race = cases
        .iter()
        .find(|c| c.name == RACE_CASE)
        .expect("the matrix has the same-second case");
    match same_second_race(&cluster, &webhook, &mut clients, race).await {
        Ok(how) => {
            let _ = writeln!(table, "ok    race: {how}");
        }
        Err(why) => {
            let _ = writeln!(table, "WRONG race: {why}");
            failures.push(format!("{RACE_CASE} (raced): {why}"));
        }
    }
    eprintln!("attack matrix through the apiserver:\n{table}");

    drop(registration);
    clean_up(&cluster);
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}\n\n{table}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(cases.len() >= 70, "the matrix shrank to {}", cases.len());
}

/// The identity each case's request is made as; one client per user.
#[derive(Default)]
struct Clients(HashMap<String, Client>);

impl Clients {
    async fn get(&mut self, cluster: &Cluster, user: &UserInfo) -> Client {
        let key = format!("{}|{}", user.username, user.groups.join(","));
        if !self.0.contains_key(&key) {
            let client = cluster.client_as(user).await;
            self.0.insert(key.clone(), client);
        }
        self.0[&key].clone()
    }
}

/// RBAC for every non-`system:masters` identity in the table: write any tenancy or Gateway
/// API object and create or relabel namespaces, cluster-wide. Deliberately broad, so every
/// refusal in the matrix comes from the policy and not from RBAC.
fn grant_writers(cluster: &Cluster, cases: &[AttackCase]) {
    let groups: BTreeSet<&str> = cases
        .iter()
        .map(|c| &c.request.user)
        .filter(|u| !u.groups.iter().any(|g| g == SYSTEM_MASTERS))
        .flat_map(|u| u.groups.iter().map(String::as_str))
        .filter(|g| *g != "system:authenticated")
        .collect();
    let subjects: String = groups
        .iter()
        .map(|g| {
            format!("  - {{apiGroup: rbac.authorization.k8s.io, kind: Group, name: \"{g}\"}}\n")
        })
        .collect();
    let manifest = format!(
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {{name: {WRITER_ROLE}}}
rules:
  - apiGroups: [gatehouse.dev, gateway.networking.k8s.io]
    resources: ["*"]
    verbs: ["*"]
  - apiGroups: [""]
    resources: [namespaces]
    verbs: [get, list, watch, create, update, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: {WRITER_ROLE}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {WRITER_ROLE}}}
subjects:
{subjects}"#
    );
    cluster.must(&["apply", "-f", "-"], &manifest);
}

/// Every world object except namespaces, senior Tenants first.
fn world_objects(world: &Objects) -> Vec<Object> {
    let w = world.clone();
    let mut out: Vec<Object> = Vec::new();
    out.extend(w.tenants.into_iter().map(Object::Tenant));
    out.extend(w.gateways.into_iter().map(Object::Gateway));
    out.extend(w.reference_grants.into_iter().map(Object::ReferenceGrant));
    out.extend(w.tenant_routes.into_iter().map(Object::TenantRoute));
    out.extend(
        w.tenant_certificates
            .into_iter()
            .map(Object::TenantCertificate),
    );
    out.extend(w.http_routes.into_iter().map(Object::HttpRoute));
    out.extend(w.grpc_routes.into_iter().map(Object::GrpcRoute));
    out.extend(w.tls_routes.into_iter().map(Object::TlsRoute));
    out.extend(w.listener_sets.into_iter().map(Object::ListenerSet));
    out
}

const NAMESPACED_KINDS: [Kind; 8] = [
    Kind::TenantRoute,
    Kind::TenantCertificate,
    Kind::HttpRoute,
    Kind::GrpcRoute,
    Kind::TlsRoute,
    Kind::ListenerSet,
    Kind::ReferenceGrant,
    Kind::Gateway,
];

/// Makes the cluster hold exactly the world (as admin, before the webhook is registered):
/// other Tenants would change who is senior and whose claim a message names, and leftovers
/// in the world's namespaces would change quotas. Returns each object with its stored
/// resourceVersion.
async fn stage(admin: &Client, world: &Objects) -> Vec<(Object, String)> {
    let all = ListParams::default();
    live::api(admin, Kind::Tenant, None)
        .delete_collection(&DeleteParams::default(), &all)
        .await
        .expect("delete Tenants");
    // A leftover from a run where an attack was wrongly admitted.
    let _ = live::api(admin, Kind::GatewayClass, None)
        .delete("mine", &DeleteParams::default())
        .await;
    let _ = live::api(admin, Kind::Namespace, None)
        .delete("evil", &DeleteParams::default())
        .await;
    let mut staged = Vec::new();
    for ns in &world.namespaces {
        let rv = ensure_namespace(admin, ns).await;
        staged.push((Object::Namespace(ns.clone()), rv));
        let name = ns.name_any();
        for kind in NAMESPACED_KINDS {
            live::api(admin, kind, Some(&name))
                .delete_collection(&DeleteParams::default(), &all)
                .await
                .unwrap_or_else(|e| panic!("clearing {kind} in {name}: {e}"));
        }
    }
    for object in world_objects(world) {
        let rv = live::create(admin, &object)
            .await
            .unwrap_or_else(|e| panic!("staging {}: {e}", object.object_ref()));
        staged.push((object, rv));
    }
    staged
}

/// The namespace exists (not terminating) with exactly the world's labels.
async fn ensure_namespace(admin: &Client, ns: &Namespace) -> String {
    let api = live::api(admin, Kind::Namespace, None);
    let name = ns.name_any();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match api.get_opt(&name).await.expect("get namespace") {
            None => {
                return live::create(admin, &Object::Namespace(ns.clone()))
                    .await
                    .expect("create namespace");
            }
            Some(live) if live.metadata.deletion_timestamp.is_some() => {
                assert!(
                    Instant::now() < deadline,
                    "namespace {name} still terminating"
                );
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Some(_) => {
                return live::replace_with(admin, admin, &Object::Namespace(ns.clone()))
                    .await
                    .expect("relabel namespace");
            }
        }
    }
}

/// The apiserver picks a new registration up a moment after it is stored: wait until a
/// tenant's (dry-run) Gateway is refused by the webhook.
async fn wait_until_registration_is_live(cluster: &Cluster) {
    let probe = Object::Gateway(gatehouse_policy::testkit::gateway(
        "alice-shop",
        "registration-probe",
        &[("http", 80)],
    ));
    let tenant = cluster
        .client_as(&gatehouse_policy::testkit::tenant_user("alice"))
        .await;
    let dry_run = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let result = live::api_for(&tenant, &probe)
            .create(&dry_run, &live::manifest(&probe))
            .await
            .map(|o| o.resource_version().unwrap_or_default());
        if let Outcome::WebhookDenied { .. } = Outcome::of(result) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the webhook registration never took effect"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The case's request, made through the apiserver as `client`.
async fn send(admin: &Client, client: &Client, request: &Request) -> Outcome {
    let result = match (request.operation, &request.object, &request.old_object) {
        (Operation::Create, Some(object), _) => live::create(client, object).await,
        (Operation::Update, Some(object), _) => live::replace_with(admin, client, object).await,
        (Operation::Delete, _, Some(old)) => {
            live::delete(client, old).await.map(|()| String::new())
        }
        _ => panic!("matrix request without the object its operation needs: {request:?}"),
    };
    Outcome::of(result)
}

fn judge(expect: &Expect, outcome: &Outcome) -> Result<(), String> {
    match (expect, outcome) {
        (Expect::Allowed, Outcome::Stored(_)) => Ok(()),
        (
            Expect::Denied { reason, mentions },
            Outcome::WebhookDenied {
                reason: got,
                code,
                message,
            },
        ) => {
            let mut problems = Vec::new();
            if got != reason.as_str() {
                problems.push(format!("reason {got} not {reason}"));
            }
            if *code != 403 {
                problems.push(format!("code {code} not 403"));
            }
            if !message.contains(mentions) {
                problems.push(format!("message does not mention {mentions:?}"));
            }
            if problems.is_empty() {
                Ok(())
            } else {
                Err(format!("{}: {message}", problems.join(", ")))
            }
        }
        // Malformed hostnames are the CRD schema's to refuse, before any webhook runs; the
        // refusal must still say which field.
        (
            Expect::Denied {
                reason: DenyReason::InvalidHostname,
                ..
            },
            Outcome::ApiserverRefused {
                code: 422, message, ..
            },
        ) if message.contains("spec.hostnames") => Ok(()),
        (expect, outcome) => Err(format!("expected {expect:?}, got {outcome:?}")),
    }
}

/// Puts back what an admitted request changed, waiting until the webhook has seen the
/// change and then the undo, so the next case meets the world as staged.
async fn undo(admin: &Client, webhook: &LiveWebhook, request: &Request, rv: &str) {
    let target = request.target().expect("matrix requests name an object");
    let (kind, ns, name) = (target.kind, target.namespace.as_deref(), &target.name);
    match (request.operation, &request.object, &request.old_object) {
        (Operation::Create, Some(object), _) => {
            webhook.wait_seen(kind, ns, name, Some(rv)).await;
            live::delete(admin, object).await.expect("undo create");
            webhook.wait_seen(kind, ns, name, None).await;
        }
        (Operation::Update, _, Some(old)) => {
            webhook.wait_seen(kind, ns, name, Some(rv)).await;
            let rv = live::replace_with(admin, admin, old)
                .await
                .expect("undo update");
            webhook.wait_seen(kind, ns, name, Some(&rv)).await;
        }
        (Operation::Delete, _, Some(old)) => {
            webhook.wait_seen(kind, ns, name, None).await;
            let rv = live::create(admin, old).await.expect("undo delete");
            webhook.wait_seen(kind, ns, name, Some(&rv)).await;
        }
        _ => unreachable!("send checked the request's shape"),
    }
}

/// The same-second case as a real race: the world's first claimant (carol/blog) is removed,
/// then carol recreates it while dave creates his claim at the same moment. Neither is
/// stored while the other is admitted, so the webhook may admit both; then the controller
/// side must name one stable winner from the objects as stored, by their real
/// creationTimestamps (namespace/name breaking a same-second tie). If the webhook did see
/// one first, the other must be refused naming it.
async fn same_second_race(
    cluster: &Cluster,
    webhook: &LiveWebhook,
    clients: &mut Clients,
    case: &AttackCase,
) -> Result<String, String> {
    let world = attacks::world();
    let first = world
        .tenant_routes
        .iter()
        .find(|r| r.metadata.namespace.as_deref() == Some("carol"))
        .cloned()
        .map(Object::TenantRoute)
        .expect("the world's first-come claimant");
    let second = case.request.object.clone().expect("a create");
    let hostname = "blog.carol.dev";
    let (a, b) = (first.object_ref(), second.object_ref());
    live::delete(&cluster.admin, &first)
        .await
        .map_err(|e| format!("removing {a}: {e}"))?;
    webhook
        .wait_seen(a.kind, a.namespace.as_deref(), &a.name, None)
        .await;

    let carol = clients
        .get(cluster, &gatehouse_policy::testkit::tenant_user("carol"))
        .await;
    let dave = clients.get(cluster, &case.request.user).await;
    let (first_result, second_result) =
        tokio::join!(live::create(&carol, &first), live::create(&dave, &second));
    match (Outcome::of(first_result), Outcome::of(second_result)) {
        (Outcome::Stored(rv_a), Outcome::Stored(rv_b)) => {
            webhook
                .wait_seen(a.kind, a.namespace.as_deref(), &a.name, Some(&rv_a))
                .await;
            webhook
                .wait_seen(b.kind, b.namespace.as_deref(), &b.name, Some(&rv_b))
                .await;
            let created = |r: &ObjectRef| {
                let api = live::api(&cluster.admin, r.kind, r.namespace.as_deref());
                let name = r.name.clone();
                async move {
                    let stored = api.get(&name).await.expect("stored object");
                    stored
                        .metadata
                        .creation_timestamp
                        .expect("creationTimestamp")
                }
            };
            let (time_a, time_b) = (created(&a).await, created(&b).await);
            let key = |t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time, r: &ObjectRef| {
                (t.0, r.namespace.clone(), r.name.clone())
            };
            let (winner, loser) = if key(&time_a, &a) <= key(&time_b, &b) {
                (&a, &b)
            } else {
                (&b, &a)
            };
            let snapshot = Snapshot::new(webhook.caches.objects());
            let conflict = resolve_conflicts(&snapshot)
                .into_iter()
                .find(|c| c.hostname == hostname)
                .ok_or_else(|| format!("both admitted, but no conflict reported for {hostname}"))?;
            let lost = (loser.clone(), ConflictReason::FirstUsedByOther);
            if &conflict.winner != winner || !conflict.losers.contains(&lost) {
                return Err(format!(
                    "both admitted ({a} created {}, {b} created {}); resolve_conflicts gave {conflict:?}, want winner {winner}",
                    time_a.0, time_b.0
                ));
            }
            Ok(format!(
                "both admitted (the webhook cannot see an object that is not stored yet): \
                 {a} created {}, {b} created {}; resolve_conflicts on the stored objects names \
                 {winner} the winner and {loser} the loser",
                time_a.0, time_b.0
            ))
        }
        (
            Outcome::Stored(_),
            Outcome::WebhookDenied {
                reason, message, ..
            },
        ) if reason == DenyReason::HostnameInUse.as_str() && message.contains(&a.to_string()) => {
            Ok(format!("{a} won; {b} refused naming it: {message}"))
        }
        (
            Outcome::WebhookDenied {
                reason, message, ..
            },
            Outcome::Stored(_),
        ) if reason == DenyReason::HostnameInUse.as_str() && message.contains(&b.to_string()) => {
            Ok(format!("{b} won; {a} refused naming it: {message}"))
        }
        (x, y) => Err(format!("{a}: {x:?}; {b}: {y:?}")),
    }
}

/// Tenants are cluster-wide policy: remove the world's so later tests meet none of it.
fn clean_up(cluster: &Cluster) {
    let tenants: Vec<String> = attacks::world()
        .tenants
        .iter()
        .map(|t| t.name_any())
        .collect();
    let mut args = vec!["delete", "tenants.gatehouse.dev", "--ignore-not-found"];
    args.extend(tenants.iter().map(String::as_str));
    let _ = cluster.kubectl(&args, "");
    let _ = cluster.kubectl(
        &[
            "delete",
            "clusterrolebinding,clusterrole",
            WRITER_ROLE,
            "--ignore-not-found",
        ],
        "",
    );
}
