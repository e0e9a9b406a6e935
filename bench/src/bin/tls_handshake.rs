//! TLS benchmark: memory per loaded certificate and the cost of a handshake that picks one
//! of them by SNI.
//!
//! Starts `gatehouse proxy`, loads one HTTPS listener whose certificateRefs name N
//! certificates (ECDSA P-256, one exact name each, plus one wildcard), reads the proxy's RSS
//! before and after, then times full TLS 1.3 handshakes (fresh session each, random SNI among
//! the N) and resumed ones (session tickets), each followed by one HTTP/1.1 request so the
//! handshake is complete on both sides. Client and proxy share the machine's cores.

use anyhow::{Context, Result, anyhow, bail};
use clap::Parser;
use gatehouse_core::model::{
    Backend, BackendKey, BackendTarget, Certificate, CertificateAttachment, CertificateKey, Delta,
    HttpRoute, HttpRule, Listener, ListenerKey, ListenerProtocol, ListenerTls, Resource, RouteKey,
    TlsMode, WeightedBackend,
};
use rustls::pki_types::ServerName;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser, Debug)]
#[command(about = "Measures certificate memory and TLS handshake cost of `gatehouse proxy`")]
struct Args {
    #[arg(long)]
    gatehouse: PathBuf,
    /// Certificates loaded on the listener.
    #[arg(long, default_value_t = 1000)]
    certs: usize,
    /// Handshakes timed per kind.
    #[arg(long, default_value_t = 2000)]
    handshakes: usize,
    /// Load the certificates as tenant certificates (each attached to the listener for its
    /// name) instead of listing them in the listener's certificateRefs; also times one
    /// renewal from its upsert to the first handshake presenting it.
    #[arg(long)]
    attached: bool,
}

struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proxy {
    fn rss_bytes(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.0.id()))?;
        let kib = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| anyhow!("no VmRSS"))?;
        Ok(kib * 1024)
    }
}

fn free_addr() -> Result<SocketAddr> {
    Ok(std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?.local_addr()?)
}

/// One POST /v1/delta on its own connection.
fn push(admin: SocketAddr, delta: &Delta) -> Result<()> {
    let body = serde_json::to_vec(delta)?;
    let mut s = std::net::TcpStream::connect(admin)?;
    write!(
        s,
        "POST /v1/delta HTTP/1.1\r\nHost: admin\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(&body)?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    if !answer.starts_with("HTTP/1.1 200") {
        bail!("delta refused: {answer}");
    }
    Ok(())
}

fn certificate(key: &str, name: &str) -> Result<Resource> {
    Ok(certificate_with(key, name, None)?.0)
}

/// A certificate resource for `name` and the DER the proxy will present for it.
fn certificate_with(
    key: &str,
    name: &str,
    attachment: Option<CertificateAttachment>,
) -> Result<(Resource, Vec<u8>)> {
    let pair = rcgen::KeyPair::generate()?;
    let cert = rcgen::CertificateParams::new(vec![name.to_string()])?.self_signed(&pair)?;
    Ok((
        Resource::Certificate(Certificate {
            key: CertificateKey::from(key),
            version: 1,
            cert_pem: cert.pem(),
            key_pem: pair.serialize_pem(),
            attachment,
        }),
        cert.der().to_vec(),
    ))
}

fn attached_to(listener: &ListenerKey, name: &str) -> CertificateAttachment {
    CertificateAttachment {
        listeners: vec![listener.clone()],
        hostnames: vec![name.to_string()],
    }
}

/// The leaf the proxy presents for `name`.
async fn presented(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    name: &str,
) -> Result<Vec<u8>> {
    let tcp = TcpStream::connect(addr).await?;
    let tls = connector
        .connect(ServerName::try_from(name.to_string())?, tcp)
        .await?;
    let certs = tls.get_ref().1.peer_certificates().unwrap_or_default();
    Ok(certs.first().map(|c| c.to_vec()).unwrap_or_default())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1e6
}

fn client_config(resume: bool) -> Arc<rustls::ClientConfig> {
    #[derive(Debug)]
    struct AnyCert(Arc<rustls::crypto::CryptoProvider>);
    impl rustls::client::danger::ServerCertVerifier for AnyCert {
        fn verify_server_cert(
            &self,
            _: &rustls::pki_types::CertificateDer<'_>,
            _: &[rustls::pki_types::CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            m: &[u8],
            c: &rustls::pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            m: &[u8],
            c: &rustls::pki_types::CertificateDer<'_>,
            d: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                m,
                c,
                d,
                &self.0.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Arc::new(config)
}

/// Handshake, one request, read the whole answer; returns the handshake time.
async fn one(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    name: &str,
) -> Result<(Duration, bool)> {
    let started = Instant::now();
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let mut tls = connector
        .connect(ServerName::try_from(name.to_string())?, tcp)
        .await?;
    let took = started.elapsed();
    let resumed = tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed);
    tls.write_all(
        format!("GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut answer = Vec::new();
    tls.read_to_end(&mut answer).await.ok();
    if !answer.starts_with(b"HTTP/1.1 200") {
        bail!(
            "{name}: unexpected answer {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(80)])
        );
    }
    Ok((took, resumed))
}

/// Renews one tenant certificate among the loaded ones: prints the delta's size and the
/// time from sending it to the first handshake that presents the new certificate.
async fn renewal(
    admin: SocketAddr,
    addr: SocketAddr,
    listener: &ListenerKey,
    name: &str,
) -> Result<()> {
    let connector = tokio_rustls::TlsConnector::from(client_config(false));
    let mut samples = Vec::new();
    for round in 0..20 {
        let (resource, der) =
            certificate_with("bench/t0", name, Some(attached_to(listener, name)))?;
        let delta = Delta {
            upserts: vec![resource],
            removals: vec![],
        };
        let bytes = serde_json::to_vec(&delta)?.len();
        let started = Instant::now();
        push(admin, &delta)?;
        loop {
            if presented(&connector, addr, name).await? == der {
                break;
            }
            if started.elapsed() > Duration::from_secs(10) {
                bail!("renewal {round} not served after 10 s");
            }
        }
        samples.push((started.elapsed(), bytes));
    }
    let bytes = samples[0].1;
    let mut times: Vec<Duration> = samples.into_iter().map(|(t, _)| t).collect();
    times.sort();
    println!(
        "tenant_certificate_renewal n={} delta_bytes={bytes} upsert_to_served_p50_us={:.0} max_us={:.0}",
        times.len(),
        percentile(&times, 0.50),
        percentile(&times, 1.0)
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    let admin = free_addr()?;
    let port = free_addr()?.port();
    let backend = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let backend_addr = backend.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = backend.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    let proxy = Proxy(
        Command::new(&args.gatehouse)
            .args(["proxy", "--admin", &admin.to_string()])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .context("starting gatehouse")?,
    );
    for _ in 0..300 {
        if std::net::TcpStream::connect(admin).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let names: Vec<String> = (0..args.certs)
        .map(|i| format!("t{i}.bench.example"))
        .collect();
    let listener_key = ListenerKey::new("bench", "gw", "https");
    let mut refs: Vec<CertificateKey> = vec!["bench/wildcard".into()];
    if !args.attached {
        refs.extend((0..args.certs).map(|i| CertificateKey(format!("bench/t{i}"))));
    }
    let listener = Resource::Listener(Listener {
        key: ListenerKey::new("bench", "gw", "https"),
        version: 1,
        address: Ipv4Addr::LOCALHOST.into(),
        port,
        protocol: ListenerProtocol::Https,
        hostname: None,
        tls: Some(ListenerTls {
            mode: TlsMode::Terminate,
            certificates: refs,
        }),
    });
    let route = Resource::HttpRoute(Arc::new(HttpRoute {
        key: RouteKey::new("bench", "r"),
        version: 1,
        created_ms: 0,
        hostnames: vec![],
        parents: vec![ListenerKey::new("bench", "gw", "https")],
        rules: vec![HttpRule {
            backends: vec![WeightedBackend {
                target: BackendTarget::Service(BackendKey::new("bench", "echo", 80)),
                weight: 1,
                filters: vec![],
            }],
            ..Default::default()
        }],
    }));
    let echo = Resource::Backend(Backend {
        key: BackendKey::new("bench", "echo", 80),
        version: 1,
        app_protocol: Default::default(),
        endpoints: vec![backend_addr],
    });
    push(
        admin,
        &Delta {
            upserts: vec![echo, route],
            removals: vec![],
        },
    )?;
    std::thread::sleep(Duration::from_millis(300));
    let before = proxy.rss_bytes()?;
    let mut batch = vec![certificate("bench/wildcard", "*.bench.example")?];
    for (i, name) in names.iter().enumerate() {
        let attachment = args.attached.then(|| attached_to(&listener_key, name));
        batch.push(certificate_with(&format!("bench/t{i}"), name, attachment)?.0);
        if batch.len() == 1000 {
            push(
                admin,
                &Delta {
                    upserts: std::mem::take(&mut batch),
                    removals: vec![],
                },
            )?;
        }
    }
    batch.push(listener);
    push(
        admin,
        &Delta {
            upserts: batch,
            removals: vec![],
        },
    )?;
    std::thread::sleep(Duration::from_millis(300));
    let after = proxy.rss_bytes()?;
    println!(
        "tls_certificates mode={} n={} rss_before_mib={:.1} rss_after_mib={:.1} bytes_per_cert={}",
        if args.attached {
            "attached"
        } else {
            "listener_refs"
        },
        args.certs + 1,
        before as f64 / 1048576.0,
        after as f64 / 1048576.0,
        after.saturating_sub(before) / (args.certs as u64 + 1)
    );
    let addr: SocketAddr = (Ipv4Addr::LOCALHOST, port).into();
    if args.attached {
        renewal(admin, addr, &listener_key, &names[0]).await?;
    }
    for (kind, resume) in [("full", false), ("resumed", true)] {
        let connector = tokio_rustls::TlsConnector::from(client_config(resume));
        let mut times = Vec::with_capacity(args.handshakes);
        let mut resumed = 0;
        let started = Instant::now();
        for i in 0..args.handshakes {
            // Resumption needs the same name again; full handshakes walk all the names.
            let name = if resume {
                &names[0]
            } else {
                &names[(i * 7919) % names.len()]
            };
            let (took, was_resumed) = one(&connector, addr, name).await?;
            times.push(took);
            resumed += usize::from(was_resumed);
        }
        let elapsed = started.elapsed();
        times.sort();
        println!(
            "tls_handshake kind={kind} certs={} n={} resumed={} p50_us={:.0} p99_us={:.0} connections_per_s={:.0}",
            args.certs + 1,
            args.handshakes,
            resumed,
            percentile(&times, 0.50),
            percentile(&times, 0.99),
            args.handshakes as f64 / elapsed.as_secs_f64()
        );
    }
    Ok(())
}
