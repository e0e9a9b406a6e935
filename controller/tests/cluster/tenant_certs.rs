//! TenantCertificates end to end: a real API server, the controller, a real proxy, and TLS
//! handshakes that check which certificate the proxy presents for a server name.

use super::*;
use gatehouse_crds::{Tenant, TenantCertificate, TenantRoute};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rcgen::{CertificateParams, KeyPair};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Accepts any certificate: the tests compare the presented DER byte for byte instead,
/// which says more than a chain check (it tells a renewal from the old certificate).
#[derive(Debug)]
struct RecordOnly(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for RecordOnly {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn connector() -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(RecordOnly(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

/// One TLS handshake naming `sni`, then `GET /` on it: the presented leaf, the status and
/// which echo backend answered.
async fn https_get(addr: SocketAddr, sni: &str) -> Result<(Vec<u8>, u16, String), String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let name = ServerName::try_from(sni.to_string()).map_err(|e| e.to_string())?;
    let tls = tokio::time::timeout(Duration::from_secs(5), connector().connect(name, tcp))
        .await
        .map_err(|_| "handshake timed out".to_string())?
        .map_err(|e| format!("handshake: {e}"))?;
    let leaf = tls
        .get_ref()
        .1
        .peer_certificates()
        .ok_or("no certificate")?[0]
        .to_vec();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = http::Request::get("/")
        .header("host", sni)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let res = tokio::time::timeout(Duration::from_secs(5), sender.send_request(req))
        .await
        .map_err(|_| "request timed out".to_string())?
        .map_err(|e| e.to_string())?;
    let status = res.status().as_u16();
    let body = res
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let body: Value = serde_json::from_slice(&body).unwrap_or_default();
    Ok((
        leaf,
        status,
        body["backend"].as_str().unwrap_or_default().to_string(),
    ))
}

struct Leaf {
    cert: String,
    key: String,
    der: Vec<u8>,
}

fn leaf(names: &[&str]) -> Leaf {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .unwrap()
        .self_signed(&key)
        .unwrap();
    Leaf {
        cert: cert.pem(),
        key: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

fn tls_secret(ns: &str, name: &str, crt: &str, key: &str) -> Value {
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            ..Default::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        data: Some(
            [
                ("tls.crt".to_string(), ByteString(crt.as_bytes().to_vec())),
                ("tls.key".to_string(), ByteString(key.as_bytes().to_vec())),
            ]
            .into(),
        ),
        ..Default::default()
    };
    serde_json::to_value(secret).unwrap()
}

fn tenant_certificate(ns: &str, name: &str, hostnames: &[&str], secret: &str) -> Value {
    json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "TenantCertificate",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"hostnames": hostnames, "secretName": secret},
    })
}

/// (status, reason, message) of a condition.
fn cert_condition(c: &TenantCertificate, kind: &str) -> Option<(String, String, String)> {
    c.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == kind)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_certificates_are_served_renewed_kept_when_broken_and_removed() {
    let Some(kubeconfig) = kubeconfig() else {
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    init_tracing();
    install_crds(&kubeconfig);
    let client: Client = gatehouse_controller::client::connect(Some(&kubeconfig))
        .await
        .expect("API client");
    let config_port = free_port();
    let _proxy = start_proxy(&[config_port], &[]);
    let controller = start_controller(&client, config_port, None);

    let suffix = unique();
    let infra = format!("gh-tcinfra-{suffix}");
    let alice_ns = format!("gh-tcalice-{suffix}");
    let bob_ns = format!("gh-tcbob-{suffix}");
    let class = format!("gatehouse-tcert-{suffix}");
    let shop = format!("shop-{suffix}.example.com");
    let bob_host = format!("bob-{suffix}.example.org");
    let (alice, bob) = (format!("tc-alice-{suffix}"), format!("tc-bob-{suffix}"));
    let namespaces = Api::<Namespace>::all(client.clone());
    create_namespaces(&client, &[&infra, &alice_ns, &bob_ns]).await;
    let classes: Api<GatewayClass> = Api::all(client.clone());
    our_class(&client, &class).await;
    // The platform's shared HTTPS listener and its own (default) certificate.
    let platform = leaf(&[&format!("*.platform-{suffix}.example")]);
    apply(
        &Api::<Secret>::namespaced(client.clone(), &infra),
        tls_secret(&infra, "platform-tls", &platform.cert, &platform.key),
    )
    .await;
    let port = free_port();
    let gateways: Api<Gateway> = Api::namespaced(client.clone(), &infra);
    apply(
        &gateways,
        json!({
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "shared", "namespace": infra},
            "spec": {"gatewayClassName": class, "listeners": [{
                "name": "https", "protocol": "HTTPS", "port": port,
                "allowedRoutes": {"namespaces": {"from": "All"}},
                "tls": {"mode": "Terminate", "certificateRefs": [{"name": "platform-tls"}]},
            }]},
        }),
    )
    .await;
    let tenants: Api<Tenant> = Api::all(client.clone());
    for (name, ns, domain) in [(&alice, &alice_ns, &shop), (&bob, &bob_ns, &bob_host)] {
        apply(&tenants, json!({
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "Tenant",
            "metadata": {"name": name},
            "spec": {
                "namespaces": {"names": [ns]},
                "domains": [domain],
                "listeners": [{"gatewayNamespace": infra, "gatewayName": "shared", "sectionNames": ["https"]}],
            },
        }))
        .await;
    }
    echo_service(
        &client,
        &alice_ns,
        start_echo(host_address(), "alice-echo").await,
    )
    .await;
    apply(
        &Api::<TenantRoute>::namespaced(client.clone(), &alice_ns),
        json!({
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "TenantRoute",
            "metadata": {"name": "shop", "namespace": alice_ns},
            "spec": {"hostnames": [shop], "http": [{"backendRefs": [{"name": "echo", "port": 80}]}]},
        }),
    )
    .await;
    let address: IpAddr = eventually("the shared Gateway has an address", || async {
        let g = gateways.get("shared").await.map_err(|e| e.to_string())?;
        let addresses = g.status.and_then(|s| s.addresses).unwrap_or_default();
        let first = addresses.first().ok_or("no address")?;
        first.value.parse::<IpAddr>().map_err(|e| e.to_string())
    })
    .await;
    let gateway_addr = SocketAddr::new(address, port);
    // Before any TenantCertificate, alice's hostname gets the platform certificate.
    eventually(
        "alice's route answers over the platform certificate",
        || async {
            match https_get(gateway_addr, &shop).await? {
                (der, 200, b) if der == platform.der && b == "alice-echo" => Ok(()),
                (der, s, b) => Err(format!("platform cert: {}, {s} {b}", der == platform.der)),
            }
        },
    )
    .await;

    // Alice's certificate: the next handshake for her hostname presents it.
    let alice_secrets = Api::<Secret>::namespaced(client.clone(), &alice_ns);
    let alice_certs = Api::<TenantCertificate>::namespaced(client.clone(), &alice_ns);
    let v1 = leaf(&[&shop]);
    apply(
        &alice_secrets,
        tls_secret(&alice_ns, "shop-tls", &v1.cert, &v1.key),
    )
    .await;
    apply(
        &alice_certs,
        tenant_certificate(&alice_ns, "shop", &[&shop], "shop-tls"),
    )
    .await;
    let platform_der: &[u8] = &platform.der;
    let served_with = |want: Vec<u8>, what: &'static str| {
        let shop = shop.clone();
        async move {
            eventually(what, || async {
                match https_get(gateway_addr, &shop).await? {
                    (der, 200, b) if der == want && b == "alice-echo" => Ok(()),
                    (der, s, b) => Err(format!(
                        "wanted cert presented: {}, platform: {}; {s} {b}",
                        der == want,
                        der == platform_der
                    )),
                }
            })
            .await
        }
    };
    served_with(
        v1.der.clone(),
        "alice's certificate is served for her hostname",
    )
    .await;
    let status = eventually("alice's TenantCertificate is Ready", || async {
        let c = alice_certs.get("shop").await.map_err(|e| e.to_string())?;
        let s = c.status.clone().ok_or("no status")?;
        match cert_condition(&c, "Ready") {
            Some((st, _, _)) if st == "True" && s.ready => Ok(s),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(status.served_hostnames, vec![shop.clone()]);
    assert!(status.not_after.is_some());
    assert_eq!(status.observed_generation, Some(1));
    eventually("alice's Tenant counts the certificate", || async {
        let t = tenants.get(&alice).await.map_err(|e| e.to_string())?;
        match t.status.map(|s| s.usage.certificates) {
            Some(1) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Bob claims alice's hostname (no webhook here, so the API server stores it): refused,
    // status names the owner, and his certificate is never presented for it.
    let stolen = leaf(&[&shop, &bob_host]);
    apply(
        &Api::<Secret>::namespaced(client.clone(), &bob_ns),
        tls_secret(&bob_ns, "steal-tls", &stolen.cert, &stolen.key),
    )
    .await;
    let bob_certs = Api::<TenantCertificate>::namespaced(client.clone(), &bob_ns);
    apply(
        &bob_certs,
        tenant_certificate(&bob_ns, "steal", &[&shop], "steal-tls"),
    )
    .await;
    let refusal = eventually("bob's TenantCertificate is refused", || async {
        let c = bob_certs.get("steal").await.map_err(|e| e.to_string())?;
        match cert_condition(&c, "Accepted") {
            Some((st, reason, message)) if st == "False" => {
                Ok((reason, message, c.status.unwrap_or_default()))
            }
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(refusal.0, "ClaimedByOtherTenant");
    assert_eq!(
        refusal.1,
        format!("hostname {shop} is owned by Tenant {alice}")
    );
    assert!(!refusal.2.ready && refusal.2.served_hostnames.is_empty());
    let (der, _, _) = https_get(gateway_addr, &shop).await.unwrap();
    assert_eq!(der, v1.der, "alice's hostname keeps alice's certificate");
    assert_ne!(der, stolen.der);

    // The Secret replaced by garbage: v1 keeps serving and status says why.
    apply(
        &alice_secrets,
        tls_secret(&alice_ns, "shop-tls", "garbage", "garbage"),
    )
    .await;
    let (reason, message) = eventually("status reports the broken Secret", || async {
        let c = alice_certs.get("shop").await.map_err(|e| e.to_string())?;
        match cert_condition(&c, "ResolvedRefs") {
            Some((st, reason, message)) if st == "False" => Ok((reason, message)),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(reason, "InvalidCertificate");
    assert!(
        message.contains("tls.crt") && message.contains("still serving the last good"),
        "{message}"
    );
    served_with(v1.der.clone(), "the last good certificate keeps serving").await;

    // Renewal: the next handshake gets the new certificate, and status is Ready again.
    let v2 = leaf(&[&shop]);
    apply(
        &alice_secrets,
        tls_secret(&alice_ns, "shop-tls", &v2.cert, &v2.key),
    )
    .await;
    served_with(v2.der.clone(), "the renewed certificate is served").await;
    eventually("Ready again after renewal", || async {
        let c = alice_certs.get("shop").await.map_err(|e| e.to_string())?;
        match cert_condition(&c, "Ready") {
            Some((st, _, _)) if st == "True" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Deleting the TenantCertificate: back to the platform certificate, route still served.
    alice_certs
        .delete("shop", &DeleteParams::default())
        .await
        .unwrap();
    served_with(
        platform.der.clone(),
        "the deleted certificate is no longer served",
    )
    .await;

    controller.abort();
    for ns in [&infra, &alice_ns, &bob_ns] {
        let _ = namespaces.delete(ns, &DeleteParams::default()).await;
    }
    for name in [&alice, &bob] {
        let _ = tenants.delete(name, &DeleteParams::default()).await;
    }
    let _ = classes.delete(&class, &DeleteParams::default()).await;
}
