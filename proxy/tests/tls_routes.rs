//! TLSRoute over real sockets: passthrough routes on the ClientHello's server name without
//! terminating (the client sees the backend's own certificate), terminate mode hands the
//! plaintext to the backend, and bad hellos close only their own connection.

mod common;
#[path = "common/tls.rs"]
mod tls;

use common::free_port;
use gatehouse_core::model::{ListenerProtocol, TlsMode};
use gatehouse_proxy::Proxy;
use std::net::SocketAddr;
use std::sync::Arc;
use tls::{TestCa, backend, connect, presented, tls_listener, tls_route, upserts, wait_listening};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// Answers each line with `{name}:{line}`.
async fn serve_lines<S>(stream: S, name: &'static str)
where
    S: tokio::io::AsyncRead + AsyncWrite + Unpin,
{
    let mut lines = BufReader::new(stream);
    let mut line = String::new();
    while lines.read_line(&mut line).await.unwrap_or(0) > 0 {
        let reply = format!("{name}:{line}");
        if lines.get_mut().write_all(reply.as_bytes()).await.is_err() {
            return;
        }
        line.clear();
    }
}

/// A backend terminating TLS itself with `leaf`.
async fn tls_backend(leaf: &tls::Leaf) -> SocketAddr {
    use rustls::pki_types::pem::PemObject;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der.clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    serve_lines(tls, "backend-tls").await;
                }
            });
        }
    });
    addr
}

async fn plain_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(serve_lines(tcp, "backend-plain"));
        }
    });
    addr
}

async fn round_trip<S: tokio::io::AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    line: &str,
) -> String {
    stream
        .write_all(format!("{line}\n").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 256];
    let mut got = Vec::new();
    while !got.ends_with(b"\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before the reply");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(got).unwrap()
}

struct Setup {
    _proxy: Proxy,
    addr: SocketAddr,
    ca: TestCa,
    backend_cert: tls::Leaf,
    proxy_cert: tls::Leaf,
}

/// One port, two TLS listeners: pass.example.com passes through to a TLS backend,
/// term.example.com terminates and sends plaintext to a line backend.
async fn setup() -> Setup {
    common::init_logs();
    let ca = TestCa::new();
    let backend_cert = ca.leaf(&["pass.example.com"]);
    let proxy_cert = ca.leaf(&["term.example.com"]);
    let proxy = Proxy::start(2);
    let port = free_port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let delta = upserts(vec![
        proxy_cert.resource("ns/term"),
        backend("secure", tls_backend(&backend_cert).await),
        backend("plain", plain_backend().await),
        tls_listener(
            "pass",
            port,
            ListenerProtocol::Tls,
            Some("pass.example.com"),
            TlsMode::Passthrough,
            &[],
        ),
        tls_listener(
            "term",
            port,
            ListenerProtocol::Tls,
            Some("term.example.com"),
            TlsMode::Terminate,
            &["ns/term"],
        ),
        tls_route("pass", &["pass.example.com"], "pass", "secure"),
        tls_route("term", &[], "term", "plain"),
    ]);
    proxy.store.apply(&delta).expect("config applies");
    wait_listening(addr).await;
    Setup {
        _proxy: proxy,
        addr,
        ca,
        backend_cert,
        proxy_cert,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_delivers_the_backends_own_certificate() {
    let s = setup().await;
    let client = s.ca.client(&[]);
    let mut conn = connect(&client, s.addr, "pass.example.com").await.unwrap();
    assert_eq!(presented(&conn), s.backend_cert.der);
    assert_eq!(round_trip(&mut conn, "one").await, "backend-tls:one\n");
    assert_eq!(round_trip(&mut conn, "two").await, "backend-tls:two\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_mode_sends_plaintext_to_the_route() {
    let s = setup().await;
    let client = s.ca.client(&[]);
    let mut conn = connect(&client, s.addr, "term.example.com").await.unwrap();
    assert_eq!(presented(&conn), s.proxy_cert.der);
    assert_eq!(round_trip(&mut conn, "hi").await, "backend-plain:hi\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_names_and_bad_hellos_close_only_their_connection() {
    let s = setup().await;
    let client = s.ca.client(&[]);
    // No listener serves this name: the handshake gets nowhere.
    assert!(
        connect(&client, s.addr, "nobody.example.com")
            .await
            .is_err()
    );
    // Plain HTTP on a TLS port, and a hello cut short: closed without an answer.
    for garbage in [
        &b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"[..],
        &[22, 3, 1, 0, 200, 1, 0][..],
    ] {
        let mut tcp = TcpStream::connect(s.addr).await.unwrap();
        tcp.write_all(garbage).await.unwrap();
        if garbage[0] == 22 {
            tcp.shutdown().await.unwrap();
        }
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), tcp.read(&mut buf))
            .await
            .expect("closed promptly")
            .unwrap_or(0);
        assert_eq!(n, 0, "no bytes answered to garbage");
    }
    // Every other connection is unaffected.
    let mut conn = connect(&client, s.addr, "pass.example.com").await.unwrap();
    assert_eq!(round_trip(&mut conn, "still").await, "backend-tls:still\n");
}
