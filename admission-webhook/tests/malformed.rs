//! What a broken or unexpected review gets back, over the real HTTPS server.

mod common;

use gatehouse_admission_webhook::source::SnapshotSource;
use serde_json::{Value, json};

fn review(kind: Value, operation: &str, object: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u1",
            "kind": kind,
            "name": "steal",
            "namespace": "carol",
            "operation": operation,
            "userInfo": {"username": "carol-dev", "groups": ["tenants:carol"]},
            "object": object,
        }
    }))
    .expect("json")
}

fn tenant_route(hostnames: Value) -> Value {
    json!({
        "apiVersion": "gatehouse.dev/v1alpha1",
        "kind": "TenantRoute",
        "metadata": {"name": "steal", "namespace": "carol"},
        "spec": {"hostnames": hostnames, "rules": []}
    })
}

fn tenant_route_kind() -> Value {
    json!({"group": "gatehouse.dev", "version": "v1alpha1", "kind": "TenantRoute"})
}

#[tokio::test]
async fn bodies_that_are_not_admission_reviews_get_400_with_a_reason() {
    let t = common::start_world().await;
    let mut c = t.client.connect().await.expect("connect");
    let cases: [(&[u8], &str); 5] = [
        (b"{not json", "not an admission.k8s.io/v1 AdmissionReview"),
        (b"", "not an admission.k8s.io/v1 AdmissionReview"),
        (
            br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":null}"#,
            "expected apiVersion admission.k8s.io/v1",
        ),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#,
            "has no request",
        ),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"kind":{"kind":"TenantRoute"},"operation":"CREATE"}}"#,
            "uid",
        ),
    ];
    for (body, says) in cases {
        let (status, answer) = c.post("/validate", body.to_vec()).await.expect("answered");
        let shown = String::from_utf8_lossy(&answer);
        assert_eq!(status, 400, "{shown}");
        let answer: Value = serde_json::from_slice(&answer).expect("400 body is a JSON Status");
        assert_eq!(answer["kind"], "Status");
        let message = answer["message"].as_str().expect("message");
        assert!(message.contains(says), "{message:?} should say {says:?}");
    }
    // The connection survives a 400 and the server still answers.
    let (status, _) = c.get("/healthz").await.expect("healthz");
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_object_that_breaks_its_schema_is_denied_naming_object_and_field() {
    let t = common::start_world().await;
    let mut c = t.client.connect().await.expect("connect");
    let body = review(
        tenant_route_kind(),
        "CREATE",
        tenant_route(json!(["ok.carol.dev", 7])),
    );
    let (status, answer) = c.post("/validate", body).await.expect("answered");
    assert_eq!(status, 200);
    let response = common::response(&answer);
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().expect("message");
    assert!(
        message.starts_with("TenantRoute carol/steal: object.spec.hostnames[1]: "),
        "{message}"
    );
    assert_eq!(response["status"]["reason"], "MalformedRequest");
    assert_eq!(response["status"]["code"], 400);
    assert_eq!(
        response["status"]["details"]["causes"][0]["field"],
        "object.spec.hostnames[1]"
    );

    // An object claiming another kind than the request is refused, not judged as that kind.
    let mut lying = tenant_route(json!(["x.carol.dev"]));
    lying["kind"] = json!("ReferenceGrant");
    let (_, answer) = c
        .post("/validate", review(tenant_route_kind(), "CREATE", lying))
        .await
        .expect("answered");
    let response = common::response(&answer);
    assert_eq!(response["allowed"], false);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("object.kind")
    );
}

#[tokio::test]
async fn kinds_and_operations_the_policy_does_not_judge_are_allowed() {
    let t = common::start_world().await;
    let mut c = t.client.connect().await.expect("connect");
    let pod = json!({"group": "", "version": "v1", "kind": "Pod"});
    let lookalike = json!({"group": "evil.example.com", "version": "v1", "kind": "TenantRoute"});
    for (kind, op) in [
        (pod, "CREATE"),
        (lookalike, "CREATE"),
        (tenant_route_kind(), "CONNECT"),
    ] {
        let body = review(kind.clone(), op, json!({"anything": true}));
        let (status, answer) = c.post("/validate", body).await.expect("answered");
        assert_eq!(status, 200);
        assert_eq!(common::response(&answer)["allowed"], true, "{kind} {op}");
    }
}

#[tokio::test]
async fn before_the_caches_sync_tenant_kinds_are_refused_and_others_pass() {
    let t = common::start(SnapshotSource::unsynced()).await;
    let mut c = t.client.connect().await.expect("connect");
    let body = review(
        tenant_route_kind(),
        "CREATE",
        tenant_route(json!(["blog.carol.dev"])),
    );
    let (_, answer) = c.post("/validate", body).await.expect("answered");
    let response = common::response(&answer);
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().expect("message");
    assert!(
        message.contains("webhook caches not synced yet"),
        "{message}"
    );
    assert!(message.contains("TenantRoute carol/steal"), "{message}");
    assert_eq!(response["status"]["code"], 503);

    let pod = json!({"group": "", "version": "v1", "kind": "Pod"});
    let (_, answer) = c
        .post("/validate", review(pod, "CREATE", json!({})))
        .await
        .expect("answered");
    assert_eq!(common::response(&answer)["allowed"], true);

    let build = t.webhook.source.begin_build();
    t.webhook.source.publish(
        gatehouse_policy::Snapshot::new(gatehouse_policy::attacks::world()),
        build,
    );
    let body = review(
        tenant_route_kind(),
        "CREATE",
        tenant_route(json!(["new.carol.dev"])),
    );
    let (_, answer) = c.post("/validate", body).await.expect("answered");
    assert_eq!(
        common::response(&answer)["allowed"],
        true,
        "allowed once synced"
    );
}

#[tokio::test]
async fn other_paths_and_methods_are_refused_plainly() {
    let t = common::start_world().await;
    let mut c = t.client.connect().await.expect("connect");
    assert_eq!(c.get("/validate").await.expect("answered").0, 405);
    assert_eq!(c.get("/mutate").await.expect("answered").0, 404);
    let (status, body) = c.get("/healthz").await.expect("answered");
    assert_eq!((status, &body[..]), (200, &b"ok\n"[..]));
}

#[tokio::test]
async fn writes_of_an_unwatched_optional_kind_are_refused_until_it_is_watched() {
    let t = common::start_world().await;
    t.webhook
        .source
        .set_unwatched(vec![gatehouse_policy::Kind::TlsRoute]);
    let mut c = t.client.connect().await.expect("connect");
    let tls_route_kind =
        json!({"group": "gateway.networking.k8s.io", "version": "v1", "kind": "TLSRoute"});
    let tls_route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "TLSRoute",
        "metadata": {"name": "steal", "namespace": "carol"},
        "spec": {"hostnames": ["t.carol.dev"], "rules": [{"backendRefs": [{"name": "web", "port": 443}]}]}
    });
    let (_, answer) = c
        .post(
            "/validate",
            review(tls_route_kind.clone(), "CREATE", tls_route.clone()),
        )
        .await
        .expect("answered");
    let response = common::response(&answer);
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 503);
    assert_eq!(response["status"]["reason"], "KindNotWatched");
    let message = response["status"]["message"].as_str().expect("message");
    assert!(message.contains("TLSRoute carol/steal"), "{message}");
    assert!(message.contains("not watching TLSRoute"), "{message}");

    // Deleting is judged on who asks alone, and watched kinds are judged as usual.
    let mut delete: Value =
        serde_json::from_slice(&review(tls_route_kind, "DELETE", Value::Null)).expect("json");
    delete["request"]["oldObject"] = tls_route;
    let delete = serde_json::to_vec(&delete).expect("json");
    let (_, answer) = c.post("/validate", delete).await.expect("answered");
    assert_eq!(common::response(&answer)["allowed"], true);
    let body = review(
        tenant_route_kind(),
        "CREATE",
        tenant_route(json!(["new.carol.dev"])),
    );
    let (_, answer) = c.post("/validate", body).await.expect("answered");
    assert_eq!(common::response(&answer)["allowed"], true);
}
