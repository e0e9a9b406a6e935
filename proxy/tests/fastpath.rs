//! The HTTP/1.1 fast path over real sockets: a hand-written backend answers with each body
//! framing (length, chunked with trailers, until close, `Connection: close`), closes idle
//! connections behind the proxy's back, and counts the connections it is given; a raw client
//! checks every byte that comes back and keeps its connection across fast and general
//! requests.

mod common;

use common::{Env, service_yaml};
use gatehouse_proxy::fastpath::framing::{BodyFraming, ChunkedScanner, response_head};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CHUNKED_BODY: &str = "5\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: yes\r\n\r\n";

/// Counts connections; answers by path.
struct RawBackend {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

async fn raw_backend() -> RawBackend {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let (c, r) = (connections.clone(), requests.clone());
    tokio::spawn(async move {
        loop {
            let (conn, _) = listener.accept().await.unwrap();
            c.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve_raw(conn, r.clone()));
        }
    });
    RawBackend {
        addr,
        connections,
        requests,
    }
}

async fn serve_raw(mut conn: TcpStream, requests: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        buf.drain(..head_end);
        let body_len: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse().unwrap_or(0))
            })
            .unwrap_or(0);
        while buf.len() < body_len {
            let mut chunk = [0u8; 4096];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..body_len);
        requests.fetch_add(1, Ordering::SeqCst);
        let path = head.split(' ').nth(1).unwrap_or("/").to_string();
        let seen = head
            .lines()
            .filter(|l| {
                let l = l.to_ascii_lowercase();
                l.starts_with("x-probe:") || l.starts_with("connection:")
            })
            .collect::<Vec<_>>()
            .join(",");
        let response = match path.as_str() {
            "/chunked" => format!(
                "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\nx-seen: {seen}\r\n\r\n{CHUNKED_BODY}"
            ),
            "/until-close" => "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nall of it".into(),
            "/conn-close" => {
                "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 4\r\n\r\nbye!".into()
            }
            "/early-hints" => {
                "HTTP/1.1 103 Early Hints\r\nlink: </s.css>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok".into()
            }
            _ => format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nx-seen: {seen}\r\n\r\n{path}", path.len()),
        };
        if conn.write_all(response.as_bytes()).await.is_err() {
            return;
        }
        match path.as_str() {
            "/until-close" | "/conn-close" => return,
            // Like a backend whose keep-alive timeout just expired: answers, then closes
            // the idle connection a moment later without saying so.
            "/then-idle-close" => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                return;
            }
            _ => {}
        }
    }
}

const CONFIG: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: gatehouse
  listeners: [{name: http, protocol: HTTP, port: {{PORT}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: plain, namespace: default}
spec:
  parentRefs: [{name: gw}]
  hostnames: [plain.test]
  rules: [{backendRefs: [{name: raw, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: filtered, namespace: default}
spec:
  parentRefs: [{name: gw}]
  hostnames: [filtered.test]
  rules:
    - filters: [{type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: x-probe, value: added}]}}]
      backendRefs: [{name: raw, port: 80}]
"#;

async fn env() -> (Env, RawBackend) {
    let mut env = Env::start().await;
    let backend = raw_backend().await;
    env.write("gateway.yaml", CONFIG);
    env.write(
        "raw.yaml",
        &service_yaml("default", "raw", &[backend.addr.port()], None),
    );
    let report = env.sync();
    assert!(report.errors.is_empty(), "config applies: {report:?}");
    env.wait_listening().await;
    (env, backend)
}

fn fast_requests(env: &Env) -> u64 {
    env.proxy.fast_path.as_ref().expect("fast path on").served()
}

/// A client that keeps one connection and reads responses by their framing.
struct Client {
    conn: TcpStream,
    buf: Vec<u8>,
}

struct Response {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Client {
    async fn connect(env: &Env) -> Client {
        Client {
            conn: TcpStream::connect(("127.0.0.1", env.port)).await.unwrap(),
            buf: Vec::new(),
        }
    }

    async fn fill(&mut self) -> usize {
        let mut chunk = [0u8; 8192];
        let n = tokio::time::timeout(Duration::from_secs(10), self.conn.read(&mut chunk))
            .await
            .expect("response within 10 s")
            .unwrap_or(0);
        self.buf.extend_from_slice(&chunk[..n]);
        n
    }

    async fn send(&mut self, request: &str) -> Response {
        self.conn.write_all(request.as_bytes()).await.unwrap();
        self.read_response().await
    }

    async fn read_response(&mut self) -> Response {
        let head = loop {
            match response_head(&self.buf).expect("response head parses") {
                Some(h) if h.status >= 200 => break h,
                Some(h) => {
                    self.buf.drain(..h.head_len);
                }
                None => assert!(self.fill().await > 0, "closed before a response head"),
            }
        };
        let head_text = String::from_utf8_lossy(&self.buf[..head.head_len]).to_string();
        self.buf.drain(..head.head_len);
        let body = match head.framing {
            BodyFraming::None => Vec::new(),
            BodyFraming::Length(n) => {
                while self.buf.len() < n as usize {
                    assert!(self.fill().await > 0, "closed inside the body");
                }
                self.buf.drain(..n as usize).collect()
            }
            BodyFraming::Chunked => {
                let mut scanner = ChunkedScanner::default();
                let mut scanned = 0;
                loop {
                    if let Some(end) = scanner.scan(&self.buf[scanned..]).unwrap() {
                        break self.buf.drain(..scanned + end).collect();
                    }
                    scanned = self.buf.len();
                    assert!(self.fill().await > 0, "closed inside a chunked body");
                }
            }
            BodyFraming::UntilClose => {
                while self.fill().await > 0 {}
                std::mem::take(&mut self.buf)
            }
        };
        Response {
            status: head.status,
            head: head_text,
            body,
        }
    }

    async fn is_closed(&mut self) -> bool {
        let mut chunk = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), self.conn.read(&mut chunk)).await,
            Ok(Ok(0) | Err(_))
        )
    }
}

fn get(host: &str, path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nx-probe: sent\r\n\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_gets_take_the_fast_path_over_one_reused_upstream_connection() {
    let (env, backend) = env().await;
    let mut client = Client::connect(&env).await;
    for i in 0..20 {
        let path = format!("/item/{i}?q=1");
        let resp = client.send(&get("plain.test:80", &path)).await;
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.body,
            path.as_bytes(),
            "the target reaches the backend as sent"
        );
        assert!(
            resp.head.contains("x-seen: x-probe: sent"),
            "request headers are forwarded: {}",
            resp.head
        );
    }
    assert_eq!(
        fast_requests(&env),
        20,
        "every plain GET took the fast path"
    );
    assert_eq!(
        backend.connections.load(Ordering::SeqCst),
        1,
        "sequential requests share one pooled upstream connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_asking_to_close_are_served_fast_and_the_upstream_connection_is_kept() {
    let (env, backend) = env().await;
    for i in 0..3 {
        let mut client = Client::connect(&env).await;
        let path = format!("/close/{i}");
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: plain.test\r\nConnection: close\r\nx-probe: sent\r\n\r\n"
        );
        let resp = client.send(&request).await;
        assert_eq!(resp.body, path.as_bytes());
        assert!(
            resp.head.contains("connection: close"),
            "the answer says the connection closes: {}",
            resp.head
        );
        assert!(
            !resp.head.contains("x-seen: x-probe: sent,connection"),
            "Connection is the client's hop, not forwarded: {}",
            resp.head
        );
        assert!(client.is_closed().await, "closed after the response");
    }
    assert_eq!(fast_requests(&env), 3);
    assert_eq!(
        backend.connections.load(Ordering::SeqCst),
        1,
        "the upstream connection outlives the client connections"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_early_hints_and_close_delimited_responses_arrive_whole() {
    let (env, _backend) = env().await;
    let mut client = Client::connect(&env).await;
    let chunked = client.send(&get("plain.test", "/chunked")).await;
    assert_eq!(chunked.status, 200);
    assert_eq!(
        chunked.body,
        CHUNKED_BODY.as_bytes(),
        "chunks and trailers as sent"
    );
    let hinted = client.send(&get("plain.test", "/early-hints")).await;
    assert_eq!((hinted.status, hinted.body.as_slice()), (200, &b"ok"[..]));
    // Same client connection still usable after both.
    let again = client.send(&get("plain.test", "/after")).await;
    assert_eq!(again.body, b"/after");

    let closing = client.send(&get("plain.test", "/conn-close")).await;
    assert_eq!(closing.body, b"bye!");
    assert!(
        !closing.head.to_ascii_lowercase().contains("connection:"),
        "the upstream's Connection header is hop-by-hop: {}",
        closing.head
    );
    let next = client.send(&get("plain.test", "/still-open")).await;
    assert_eq!(
        next.body, b"/still-open",
        "an upstream closing its connection does not close the client's"
    );

    let until_close = client.send(&get("plain.test", "/until-close")).await;
    assert_eq!(until_close.body, b"all of it");
    assert!(
        client.is_closed().await,
        "a body ended by close can only be relayed by closing"
    );
    assert_eq!(fast_requests(&env), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooled_connection_the_backend_closed_is_replaced_not_failed() {
    let (env, backend) = env().await;
    let mut client = Client::connect(&env).await;
    for round in 0..5 {
        let resp = client.send(&get("plain.test", "/then-idle-close")).await;
        assert_eq!(resp.status, 200, "round {round}");
        // The backend closes the pooled connection meanwhile.
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(backend.requests.load(Ordering::SeqCst), 5);
    assert_eq!(backend.connections.load(Ordering::SeqCst), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_requests_are_handed_to_the_general_proxy_on_the_same_connection() {
    let (env, backend) = env().await;
    let mut client = Client::connect(&env).await;
    let first = client.send(&get("plain.test", "/one")).await;
    assert_eq!(first.body, b"/one");
    // A filter, then a body: both need the general path. The connection moves there with
    // the bytes the fast path had read.
    let filtered = client.send(&get("filtered.test", "/filtered")).await;
    assert_eq!(filtered.status, 200);
    assert!(
        filtered.head.contains("x-probe: added"),
        "the filter ran: {}",
        filtered.head
    );
    client
        .conn
        .write_all(b"POST /two HTTP/1.1\r\nHost: plain.test\r\ncontent-length: 3\r\n\r\nabc")
        .await
        .unwrap();
    let post = client.read_response().await;
    assert_eq!((post.status, post.body.as_slice()), (200, &b"/two"[..]));
    let after = client.send(&get("plain.test", "/three")).await;
    assert_eq!(after.body, b"/three");
    assert_eq!(fast_requests(&env), 1, "only the first request was fast");
    assert_eq!(backend.requests.load(Ordering::SeqCst), 4);

    let mut other = Client::connect(&env).await;
    let unknown = other.send(&get("nobody.test", "/")).await;
    assert_eq!(
        unknown.status, 404,
        "no route: answered by the general path"
    );
}
