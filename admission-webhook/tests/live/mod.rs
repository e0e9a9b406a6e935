//! The webhook wired to a real kube-apiserver (conformance/cluster): clients acting as
//! impersonated users, the webhook's watch caches on the live cluster, its registration,
//! and waiting until the snapshot it decides against has seen a change.
#![allow(dead_code)] // each test binary uses a different part

use crate::common::{Pki, replace};
use gatehouse_admission_webhook::server::{self, RunningServer, ServerConfig};
use gatehouse_admission_webhook::source::SnapshotSource;
use gatehouse_admission_webhook::tls::CertFiles;
use gatehouse_admission_webhook::watch::{Caches, keep_current};
use gatehouse_admission_webhook::webhook::Webhook;
use gatehouse_crds::{Tenant, TenantCertificate, TenantRoute};
use gatehouse_policy::{Kind, Object, Policy, UserInfo};
use gateway_api::experimental::gatewayclasses::GatewayClass;
use gateway_api::experimental::gateways::Gateway;
use gateway_api::experimental::grpcroutes::GrpcRoute;
use gateway_api::experimental::httproutes::HttpRoute;
use gateway_api::experimental::listenersets::ListenerSet;
use gateway_api::experimental::referencegrants::ReferenceGrant;
use gateway_api::experimental::tlsroutes::TlsRoute;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, PostParams};
use kube::{Client, ResourceExt};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// The webhook's name in its registration; the apiserver quotes it in every denial.
pub const WEBHOOK_NAME: &str = "tenancy.gatehouse.dev";

pub struct Cluster {
    pub kubeconfig: String,
    pub kubectl: String,
    pub admin: Client,
}

/// The cluster scripts/test started, or `None` (after saying so loudly) without one.
pub async fn cluster(test: &str) -> Option<Cluster> {
    let Ok(kubeconfig) = std::env::var("GATEHOUSE_KUBECONFIG") else {
        eprintln!(
            "\n*** SKIPPED {test}: GATEHOUSE_KUBECONFIG is not set; nothing was run against a \
             real kube-apiserver. scripts/test sets it. ***\n"
        );
        return None;
    };
    let kubectl = std::env::var("GATEHOUSE_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let admin = client(&kubeconfig, None).await;
    Some(Cluster {
        kubeconfig,
        kubectl,
        admin,
    })
}

async fn client(kubeconfig: &str, user: Option<&UserInfo>) -> Client {
    let mut config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::read_from(kubeconfig).expect("kubeconfig reads"),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("kubeconfig is usable");
    // One request, one outcome: kube-rs would otherwise retry a 503 (such as the webhook's
    // "not watching this kind yet") and hide the first answer.
    config.default_retry = false;
    if let Some(user) = user {
        config.auth_info.impersonate = Some(user.username.clone());
        config.auth_info.impersonate_groups = Some(user.groups.clone());
    }
    Client::try_from(config).expect("client")
}

impl Cluster {
    /// A client whose every request the apiserver treats as coming from `user`.
    pub async fn client_as(&self, user: &UserInfo) -> Client {
        client(&self.kubeconfig, Some(user)).await
    }

    pub fn kubectl(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl runs");
        let mut input = child.stdin.take().expect("stdin");
        input.write_all(stdin.as_bytes()).expect("write stdin");
        drop(input);
        child.wait_with_output().expect("kubectl finishes")
    }

    pub fn must(&self, args: &[&str], stdin: &str) -> String {
        let out = self.kubectl(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Gateway API (experimental channel) and Gatehouse CRDs, through the harness's script.
    pub fn install_crds(&self) {
        let script =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../conformance/cluster/install-crds");
        let out = Command::new(script)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("GATEHOUSE_KUBECTL", &self.kubectl)
            .output()
            .expect("install-crds runs");
        assert!(
            out.status.success(),
            "install-crds: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Where the apiserver serves `kind`, in the version the webhook's caches read.
pub fn api_resource(kind: Kind) -> ApiResource {
    match kind {
        Kind::Tenant => ApiResource::erase::<Tenant>(&()),
        Kind::TenantRoute => ApiResource::erase::<TenantRoute>(&()),
        Kind::TenantCertificate => ApiResource::erase::<TenantCertificate>(&()),
        Kind::HttpRoute => ApiResource::erase::<HttpRoute>(&()),
        Kind::GrpcRoute => ApiResource::erase::<GrpcRoute>(&()),
        Kind::TlsRoute => ApiResource::erase::<TlsRoute>(&()),
        Kind::Gateway => ApiResource::erase::<Gateway>(&()),
        Kind::GatewayClass => ApiResource::erase::<GatewayClass>(&()),
        Kind::ListenerSet => ApiResource::erase::<ListenerSet>(&()),
        Kind::ReferenceGrant => ApiResource::erase::<ReferenceGrant>(&()),
        Kind::Namespace => ApiResource::erase::<Namespace>(&()),
    }
}

pub fn api(client: &Client, kind: Kind, namespace: Option<&str>) -> Api<DynamicObject> {
    let resource = api_resource(kind);
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

/// `object` as the manifest a client sends: in the version the apiserver serves, without
/// the fixture's creation time (the apiserver sets its own).
pub fn manifest(object: &Object) -> DynamicObject {
    let mut value = serde_json::to_value(object).expect("object serializes");
    let resource = api_resource(object.kind());
    value["apiVersion"] = Value::String(resource.api_version.clone());
    if let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("creationTimestamp");
        meta.remove("resourceVersion");
    }
    serde_json::from_value(value).expect("a manifest is a DynamicObject")
}

pub fn api_for(client: &Client, object: &Object) -> Api<DynamicObject> {
    let meta = object.meta();
    api(client, object.kind(), meta.namespace.as_deref())
}

pub fn name_of(object: &Object) -> String {
    object.meta().name.clone().unwrap_or_default()
}

/// Creates `object` as `client`; returns the stored resourceVersion.
pub async fn create(client: &Client, object: &Object) -> Result<String, kube::Error> {
    let stored = api_for(client, object)
        .create(&PostParams::default(), &manifest(object))
        .await?;
    Ok(stored.resource_version().unwrap_or_default())
}

/// Replaces the stored object with `object` (its spec, labels and so on) as `client`,
/// at the stored resourceVersion; returns the new one.
pub async fn replace_with(
    admin: &Client,
    client: &Client,
    object: &Object,
) -> Result<String, kube::Error> {
    let name = name_of(object);
    let live = api_for(admin, object).get(&name).await?;
    let mut new = manifest(object);
    new.metadata.resource_version = live.metadata.resource_version.clone();
    let stored = api_for(client, object)
        .replace(&name, &PostParams::default(), &new)
        .await?;
    Ok(stored.resource_version().unwrap_or_default())
}

pub async fn delete(client: &Client, object: &Object) -> Result<(), kube::Error> {
    api_for(client, object)
        .delete(&name_of(object), &DeleteParams::default())
        .await
        .map(|_| ())
}

/// The real webhook: HTTPS server, watch caches on the cluster, snapshot task.
pub struct LiveWebhook {
    pub server: RunningServer,
    pub webhook: Arc<Webhook>,
    pub source: Arc<SnapshotSource>,
    pub caches: Arc<Caches>,
    pub pki: Pki,
    snapshots: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for LiveWebhook {
    fn drop(&mut self) {
        self.snapshots.abort();
    }
}

impl LiveWebhook {
    pub async fn start(cluster: &Cluster, policy: Policy, recheck: Duration) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::new();
        let leaf = pki.leaf("webhook", 1);
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        replace(&cert, leaf.cert_pem.as_bytes());
        replace(&key, leaf.key_pem.as_bytes());
        let source = Arc::new(SnapshotSource::unsynced());
        let webhook = Arc::new(Webhook::new(policy, source.clone()));
        let server = server::start(
            webhook.clone(),
            ServerConfig {
                addr: "127.0.0.1:0".parse().expect("addr"),
                cert: CertFiles { cert, key },
                metrics_addr: None,
                cert_poll: Duration::from_secs(1),
            },
        )
        .await
        .expect("webhook starts");
        let caches = Arc::new(Caches::new(cluster.admin.clone()));
        let task = keep_current(
            caches.clone(),
            source.clone(),
            webhook.metrics.clone(),
            recheck,
        );
        let snapshots = tokio::spawn(async move {
            if let Err(e) = task.await {
                panic!("snapshot task: {e}");
            }
        });
        Self {
            server,
            webhook,
            source,
            caches,
            pki,
            snapshots,
            _dir: dir,
        }
    }

    pub async fn wait_synced(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.source.is_synced() {
            assert!(
                Instant::now() < deadline,
                "watch caches did not sync against the real apiserver within 60s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the snapshot requests are decided against has seen the object at
    /// `resource_version` (or, with `None`, has seen it gone): the cache must hold exactly
    /// that, and then a snapshot built after that moment must be published.
    pub async fn wait_seen(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        name: &str,
        resource_version: Option<&str>,
    ) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let held = self.caches.resource_version(kind, namespace, name);
            if held.as_deref() == resource_version {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the webhook's cache never saw {kind} {namespace:?}/{name} at {resource_version:?} (holds {held:?})"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.wait_next_snapshot().await;
    }

    /// Waits for a snapshot whose build started after this call.
    pub async fn wait_next_snapshot(&self) {
        let after = self.source.builds_started();
        self.caches.poke();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.source.published_build() <= after {
            assert!(
                Instant::now() < deadline,
                "no snapshot was published within 30s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// A ValidatingWebhookConfiguration sending every kind the policy judges to this
    /// webhook, removed again when the returned guard drops (also when a test fails).
    pub fn register<'a>(&self, cluster: &'a Cluster, name: &'a str) -> Registration<'a> {
        let manifest = registration(name, self.server.addr.port(), &self.pki.ca_pem);
        cluster.must(&["apply", "-f", "-"], &manifest);
        Registration { cluster, name }
    }
}

pub struct Registration<'a> {
    cluster: &'a Cluster,
    name: &'a str,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let _ = self.cluster.kubectl(
            &[
                "delete",
                "validatingwebhookconfiguration",
                self.name,
                "--ignore-not-found",
            ],
            "",
        );
    }
}

/// The chart's ValidatingWebhookConfiguration (its rules and selectors exactly), renamed
/// and pointed at the webhook on `localhost:port` instead of the in-cluster Service.
fn registration(name: &str, port: u16, ca_pem: &str) -> String {
    let mut config = chart_documents(&chart_dir())
        .into_iter()
        .find(|d| d["kind"] == "ValidatingWebhookConfiguration")
        .expect("the chart registers the webhook");
    config["metadata"]["name"] = Value::String(name.to_string());
    for webhook in config["webhooks"]
        .as_array_mut()
        .expect("webhooks is a list")
    {
        webhook["clientConfig"] = serde_json::json!({
            "url": format!("https://localhost:{port}/validate"),
            "caBundle": base64(ca_pem.as_bytes()),
        });
    }
    serde_json::to_string(&config).expect("json")
}

pub fn chart_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../charts/gatehouse")
}

/// `kubectl kustomize DIR`, one JSON value per rendered document.
pub fn chart_documents(dir: &Path) -> Vec<Value> {
    let kubectl = std::env::var("GATEHOUSE_KUBECTL").unwrap_or_else(|_| "kubectl".into());
    let out = Command::new(kubectl)
        .arg("kustomize")
        .arg(dir)
        .output()
        .expect("kubectl kustomize runs");
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            let value: serde_yaml::Value =
                serde::Deserialize::deserialize(doc).expect("rendered YAML parses");
            serde_json::to_value(value).expect("YAML is JSON")
        })
        .collect()
}

pub fn base64(bytes: &[u8]) -> String {
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

/// How a request through the apiserver ended, and which layer decided it.
#[derive(Debug)]
pub enum Outcome {
    Stored(String),
    /// Refused by our webhook: the apiserver relays its status reason, code and message.
    WebhookDenied {
        reason: String,
        code: u16,
        message: String,
    },
    /// Refused before admission webhooks run: schema, CEL rules, RBAC, or not found.
    ApiserverRefused {
        reason: String,
        code: u16,
        message: String,
    },
}

impl Outcome {
    pub fn of(result: Result<String, kube::Error>) -> Self {
        match result {
            Ok(rv) => Outcome::Stored(rv),
            Err(kube::Error::Api(status)) => {
                let by_webhook = status
                    .message
                    .contains(&format!("admission webhook \"{WEBHOOK_NAME}\" denied"));
                let (reason, code, message) = (status.reason, status.code, status.message);
                if by_webhook {
                    Outcome::WebhookDenied {
                        reason,
                        code,
                        message,
                    }
                } else {
                    Outcome::ApiserverRefused {
                        reason,
                        code,
                        message,
                    }
                }
            }
            Err(other) => panic!("request did not reach the apiserver: {other}"),
        }
    }

    pub fn layer(&self) -> &'static str {
        match self {
            Outcome::Stored(_) => "stored",
            Outcome::WebhookDenied { .. } => "webhook",
            Outcome::ApiserverRefused { code: 422, .. } => "apiserver validation (schema/CEL)",
            Outcome::ApiserverRefused { code: 403, .. } => "apiserver authorization (RBAC)",
            Outcome::ApiserverRefused { .. } => "apiserver (other)",
        }
    }
}
