//! Shared by the end-to-end tests: a throwaway CA, a real server on loopback serving the
//! attack-matrix world, and AdmissionReview bodies built the way the apiserver sends them.
#![allow(dead_code)] // each test binary uses a different part

use gatehouse_admission_webhook::client::HttpsClient;
use gatehouse_admission_webhook::server::{self, RunningServer, ServerConfig};
use gatehouse_admission_webhook::source::SnapshotSource;
use gatehouse_admission_webhook::tls::CertFiles;
use gatehouse_admission_webhook::webhook::Webhook;
use gatehouse_policy::{Operation, Policy, Request, attacks};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SerialNumber};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub struct Pki {
    pub ca_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: Vec<u8>,
}

impl Pki {
    pub fn new() -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "gatehouse test CA");
        let ca = params.self_signed(&key).expect("self-signed CA");
        Self {
            ca_pem: ca.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A serving certificate for `localhost`, told apart from others by `cn` and `serial`.
    pub fn leaf(&self, cn: &str, serial: u64) -> Leaf {
        let key = KeyPair::generate().expect("leaf key");
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.serial_number = Some(SerialNumber::from(serial));
        let cert = params.signed_by(&key, &self.issuer).expect("signed leaf");
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

/// Replaces a file the way kubelet and cert-manager do: write aside, then rename over.
pub fn replace(path: &Path, contents: &[u8]) {
    let aside = path.with_extension("new");
    std::fs::write(&aside, contents).expect("write");
    std::fs::rename(&aside, path).expect("rename");
}

pub struct TestServer {
    pub server: RunningServer,
    pub client: HttpsClient,
    pub webhook: Arc<Webhook>,
    pub pki: Pki,
    pub leaf: Leaf,
    pub cert: PathBuf,
    pub key: PathBuf,
    _dir: tempfile::TempDir,
}

/// The real server on 127.0.0.1:0 deciding against the attack-matrix world.
pub async fn start_world() -> TestServer {
    start(SnapshotSource::fixed(attacks::world())).await
}

pub async fn start(source: SnapshotSource) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new();
    let leaf = pki.leaf("webhook-1", 1);
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    replace(&cert, leaf.cert_pem.as_bytes());
    replace(&key, leaf.key_pem.as_bytes());
    let webhook = Arc::new(Webhook::new(
        Policy::new(attacks::admins()),
        Arc::new(source),
    ));
    let server = server::start(
        webhook.clone(),
        ServerConfig {
            addr: "127.0.0.1:0".parse().expect("addr"),
            cert: CertFiles {
                cert: cert.clone(),
                key: key.clone(),
            },
            metrics_addr: Some("127.0.0.1:0".parse().expect("addr")),
            cert_poll: Duration::from_secs(1),
        },
    )
    .await
    .expect("server starts");
    let client = HttpsClient::new(pki.ca_pem.as_bytes(), server.addr, "localhost").expect("client");
    TestServer {
        server,
        client,
        webhook,
        pki,
        leaf,
        cert,
        key,
        _dir: dir,
    }
}

fn operation(op: Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
    }
}

/// The AdmissionReview the apiserver would send for `request`.
pub fn review(uid: &str, request: &Request) -> Vec<u8> {
    let target = request.target().expect("matrix requests name an object");
    // The webhook ignores the version; every served version shares one schema.
    let version = "v1";
    let body = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": request.kind.group(), "version": version, "kind": request.kind.as_str()},
            "resource": {"group": request.kind.group(), "version": version, "resource": "irrelevant"},
            "name": target.name,
            "namespace": target.namespace,
            "operation": operation(request.operation),
            "userInfo": {"username": request.user.username, "groups": request.user.groups},
            "object": request.object.as_ref().map(to_json),
            "oldObject": request.old_object.as_ref().map(to_json),
            "dryRun": false,
        }
    });
    serde_json::to_vec(&body).expect("review serializes")
}

fn to_json(object: &gatehouse_policy::Object) -> Value {
    serde_json::to_value(object).expect("object serializes")
}

/// The `response` of an AdmissionReview answer.
pub fn response(body: &[u8]) -> Value {
    let review: Value = serde_json::from_slice(body).expect("answer is JSON");
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1", "{review}");
    assert_eq!(review["kind"], "AdmissionReview", "{review}");
    review["response"].clone()
}
