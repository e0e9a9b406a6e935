#![allow(dead_code)]
//! TLS test kit: a test CA issuing certificates with rcgen, model resources for them, and a
//! client that says which certificate the server presented.

use gatehouse_core::model::{
    Backend, BackendKey, BackendTarget, Certificate, CertificateKey, Delta, Listener, ListenerKey,
    ListenerProtocol, ListenerTls, Resource, RouteKey, TlsMode, TlsRoute, TlsRule, WeightedBackend,
};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use rcgen::{CertificateParams, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    pub der: CertificateDer<'static>,
}

/// A leaf certificate with its key, as PEM, and the DER the server will present.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "gatehouse test CA");
        let cert = params.self_signed(&key).unwrap();
        TestCa {
            der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    pub fn leaf(&self, names: &[&str]) -> Leaf {
        self.leaf_with(names, |_| {})
    }

    pub fn leaf_with(&self, names: &[&str], edit: impl FnOnce(&mut CertificateParams)) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        edit(&mut params);
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    /// A client trusting only this CA, offering `alpn`.
    pub fn client(&self, alpn: &[&[u8]]) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.der.clone()).unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        // Each test handshake must show the certificate served now, not resume an old session.
        config.resumption = rustls::client::Resumption::disabled();
        TlsConnector::from(Arc::new(config))
    }
}

impl Leaf {
    pub fn resource(&self, key: &str) -> Resource {
        Resource::Certificate(Certificate {
            key: CertificateKey::from(key),
            version: 1,
            cert_pem: self.cert_pem.clone(),
            key_pem: self.key_pem.clone(),
            attachment: None,
        })
    }
}

pub async fn connect(
    connector: &TlsConnector,
    addr: SocketAddr,
    sni: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(sni.to_string()).unwrap();
    connector.connect(name, tcp).await
}

/// The leaf certificate the server presented on this connection.
pub fn presented(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

pub fn negotiated_alpn(stream: &TlsStream<TcpStream>) -> Option<Vec<u8>> {
    stream.get_ref().1.alpn_protocol().map(|p| p.to_vec())
}

pub struct Answer {
    pub status: u16,
    pub version: http::Version,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_default()
    }
}

/// Sends one GET on an established TLS connection, over h2 or HTTP/1.1 as ALPN decided.
pub async fn get(stream: TlsStream<TcpStream>, host: &str, path: &str) -> Answer {
    let h2 = negotiated_alpn(&stream).as_deref() == Some(b"h2");
    let io = hyper_util::rt::TokioIo::new(stream);
    let req = http::Request::get(format!("https://{host}{path}"))
        .header("host", host)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = if h2 {
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                .await
                .unwrap();
        tokio::spawn(conn);
        // h2 carries the host in :authority; a Host header is not allowed alongside it.
        let (mut parts, body) = req.into_parts();
        parts.headers.remove("host");
        sender
            .send_request(http::Request::from_parts(parts, body))
            .await
            .unwrap()
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        tokio::spawn(conn);
        let (mut parts, body) = req.into_parts();
        parts.uri = path.parse().unwrap();
        sender
            .send_request(http::Request::from_parts(parts, body))
            .await
            .unwrap()
    };
    let status = resp.status().as_u16();
    let version = resp.version();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        version,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub fn tls_listener(
    name: &str,
    port: u16,
    protocol: ListenerProtocol,
    hostname: Option<&str>,
    mode: TlsMode,
    certificates: &[&str],
) -> Resource {
    Resource::Listener(Listener {
        key: ListenerKey::new("ns", "gw", name),
        version: 1,
        address: "127.0.0.1".parse().unwrap(),
        port,
        protocol,
        hostname: hostname.map(str::to_string),
        tls: Some(ListenerTls {
            mode,
            certificates: certificates
                .iter()
                .map(|c| CertificateKey::from(*c))
                .collect(),
        }),
    })
}

pub fn backend(name: &str, endpoint: SocketAddr) -> Resource {
    Resource::Backend(Backend {
        key: BackendKey::new("ns", name, 80),
        version: 1,
        app_protocol: Default::default(),
        endpoints: vec![endpoint],
    })
}

pub fn weighted(name: &str) -> WeightedBackend {
    WeightedBackend {
        target: BackendTarget::Service(BackendKey::new("ns", name, 80)),
        weight: 1,
        filters: vec![],
    }
}

pub fn tls_route(name: &str, hostnames: &[&str], listener: &str, backend: &str) -> Resource {
    Resource::TlsRoute(TlsRoute {
        key: RouteKey::new("ns", name),
        version: 1,
        created_ms: 0,
        hostnames: hostnames.iter().map(|h| h.to_string()).collect(),
        parents: vec![ListenerKey::new("ns", "gw", listener)],
        rules: vec![TlsRule {
            name: None,
            backends: vec![weighted(backend)],
        }],
    })
}

pub fn upserts(upserts: Vec<Resource>) -> Delta {
    Delta {
        upserts,
        removals: vec![],
    }
}

/// Waits until `addr` accepts TCP connections.
pub async fn wait_listening(addr: SocketAddr) {
    for _ in 0..300 {
        if TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("{addr} never started listening");
}

/// Accepts any certificate: to see what a server presents for a name it has no certificate for.
pub fn insecure_client() -> TlsConnector {
    #[derive(Debug)]
    struct AcceptAnything(Arc<rustls::crypto::CryptoProvider>);
    impl rustls::client::danger::ServerCertVerifier for AcceptAnything {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
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
            dss: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider)))
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::disabled();
    TlsConnector::from(Arc::new(config))
}

/// A verifying client limited to one TLS version.
pub fn client_with_version(
    ca: &TestCa,
    version: &'static rustls::SupportedProtocolVersion,
) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[version])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    TlsConnector::from(Arc::new(config))
}

/// A verifying client that keeps sessions to resume (rustls' default in-memory store).
pub fn resuming_client(ca: &TestCa) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der.clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}
