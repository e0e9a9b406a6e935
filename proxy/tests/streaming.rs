//! Downstream writes are buffered (head and body leave in one segment); a streamed response
//! must still reach the client piece by piece, while the backend is still producing it.

mod common;

use common::{Env, service_yaml};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const GATEWAY: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: gatehouse
  listeners: [{name: http, protocol: HTTP, port: {{PORT}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: stream, port: 80}]}]
"#;

/// A backend that sends the first chunk of a chunked response, then holds the rest back
/// until `release` fires.
async fn chunked_backend(release: oneshot::Receiver<()>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "proxy closed before sending the request");
            request.extend_from_slice(&buf[..n]);
        }
        conn.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            .await
            .unwrap();
        let _ = release.await;
        conn.write_all(b"4\r\nlast\r\n0\r\n\r\n").await.unwrap();
        // Keep the connection open until the proxy is done with it.
        let _ = conn.read(&mut buf).await;
    });
    port
}

/// Reads from `conn` into `seen` until it contains `want`, or fails after five seconds.
async fn read_until(conn: &mut TcpStream, seen: &mut Vec<u8>, want: &[u8]) {
    let wait = async {
        let mut buf = [0u8; 1024];
        while !seen.windows(want.len()).any(|w| w == want) {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "connection closed; got {:?}",
                String::from_utf8_lossy(seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
    };
    if tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .is_err()
    {
        panic!(
            "{:?} never arrived; got {:?}",
            String::from_utf8_lossy(want),
            String::from_utf8_lossy(seen)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_response_arrives_while_the_backend_is_still_sending() {
    let mut env = Env::start().await;
    let (release, released) = oneshot::channel();
    let backend = chunked_backend(released).await;
    env.write(
        "services.yaml",
        &service_yaml("default", "stream", &[backend], None),
    );
    env.write("gateway.yaml", GATEWAY);
    let report = env.sync();
    assert!(report.applied.is_some(), "{:?}", report.errors);
    env.wait_listening().await;

    let mut conn = TcpStream::connect(("127.0.0.1", env.port)).await.unwrap();
    conn.write_all(b"GET /events HTTP/1.1\r\nHost: stream.test\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    // The first chunk must not wait in a buffer for the rest of the body.
    read_until(&mut conn, &mut seen, b"first").await;
    assert!(seen.starts_with(b"HTTP/1.1 200"), "{seen:?}");
    assert!(!seen.windows(4).any(|w| w == b"last"));
    release.send(()).unwrap();
    read_until(&mut conn, &mut seen, b"0\r\n\r\n").await;
    assert!(seen.windows(4).any(|w| w == b"last"));
}
