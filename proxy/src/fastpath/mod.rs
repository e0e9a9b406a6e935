//! The HTTP/1.1 fast path: plain-HTTP GETs without a body, on routes without filters,
//! retries or timeouts, forwarded with one parse of each head, the request head sent as
//! received, and pooled upstream connections.
//!
//! Why: on a keep-alive connection Pingora's general proxy spends about 15 µs of CPU per
//! request in its own machinery (two tasks joined by channels, a semaphore, an idle-watch
//! task spawned per pooled upstream connection, header maps built and serialised twice),
//! three times what nginx spends per request. Most requests of a public gateway are plain
//! GETs, which need none of it.
//!
//! Everything else goes to Pingora: a connection starts here and, at the first request the
//! fast path does not take, is handed over with the bytes already read, for the rest of
//! its life. The choice is made before anything is sent upstream, so it never changes what
//! a request gets, only how much it costs.

pub mod framing;
pub mod pool;

use crate::gateway::{normalise_host, pick_weighted, strip_port};
use crate::store::ConfigStore;
use crate::table::BackendState;
use crate::table::compiled::{CompiledRoute, RequestHeaders, RequestView, RouteKind};
use bytes::{Buf, BytesMut};
use framing::{BodyFraming, ChunkedScanner, MAX_HEADERS, RequestHead, response_head};
use gatehouse_core::model::{
    AppProtocol, BackendTarget, ListenerProtocol, Timeouts, WeightedBackend,
};
use http::Method;
use pingora_core::server::ShutdownWatch;
use pool::UpstreamPool;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// A connection that completes no request in a whole window closes: a keep-alive
/// connection idle, or a request head trickling in, for between one and two windows.
const IDLE_WINDOW: Duration = Duration::from_secs(30);
/// Larger heads go to the general path, which has its own limit and error.
const MAX_HEAD: usize = 64 * 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Endpoints tried when connecting fails (nothing was sent, so trying another is safe).
const CONNECT_ATTEMPTS: usize = 3;
const READ_CHUNK: usize = 16 * 1024;

pub struct FastPath {
    store: Arc<ConfigStore>,
    pool: UpstreamPool,
    served: AtomicU64,
}

/// What the fast path decided for the request at the start of the buffer.
enum Decision {
    Partial,
    General,
    Serve(Plan),
}

struct Plan {
    head_len: usize,
    /// The client's `Connection` line, not forwarded.
    connection_line: Option<std::ops::Range<usize>>,
    /// The client asked to close after this response.
    close: bool,
    backend: Arc<BackendState>,
    route: Arc<CompiledRoute>,
}

/// How forwarding one request ended.
enum Forwarded {
    /// The response went out whole; the downstream connection may carry another request.
    KeepAlive,
    /// The response went out (or an error answer did); the connection must close.
    Close,
}

impl FastPath {
    pub fn new(store: Arc<ConfigStore>) -> Self {
        Self {
            store,
            pool: UpstreamPool::default(),
            served: AtomicU64::new(0),
        }
    }

    /// Requests this fast path has answered (for stats and tests).
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Idle upstream connections held for reuse.
    pub fn idle_upstreams(&self) -> usize {
        self.pool.idle()
    }

    /// Serves HTTP/1.1 requests on a connection accepted on `local` until it closes
    /// (`None`) or a request needs the general path: then the stream comes back with the
    /// bytes read from it and not handled, which the general path must read first.
    /// `server_name` is the TLS server name of a terminated connection (`None`: plain HTTP).
    pub async fn serve<S>(
        &self,
        mut down: S,
        local: SocketAddr,
        server_name: Option<&str>,
        shutdown: &ShutdownWatch,
    ) -> Option<(S, BytesMut)>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let mut buf = BytesMut::with_capacity(4096);
        // The upstream response passes through this buffer, kept for the connection's life.
        let mut response = BytesMut::with_capacity(READ_CHUNK);
        // One timer and one shutdown wait for the connection's life, not one per read: a
        // timer armed and cancelled per request costs more than the rest of the request's
        // user-space work. The timer is re-armed when it fires after a request was served.
        let idle = tokio::time::sleep(IDLE_WINDOW);
        tokio::pin!(idle);
        let mut served_in_window = false;
        let mut stop = shutdown.clone();
        let stopping = stop.changed();
        tokio::pin!(stopping);
        loop {
            let plan = loop {
                match decide(&self.store, &buf, local, server_name) {
                    Decision::Serve(plan) => break plan,
                    Decision::General => return Some((down, buf)),
                    Decision::Partial if buf.len() >= MAX_HEAD => return Some((down, buf)),
                    Decision::Partial => {}
                }
                if *shutdown.borrow() && buf.is_empty() {
                    return None;
                }
                let read = tokio::select! {
                    biased;
                    read = down.read_buf(&mut buf) => read,
                    _ = &mut stopping, if buf.is_empty() => return None,
                    () = &mut idle => {
                        if !std::mem::take(&mut served_in_window) {
                            return None;
                        }
                        idle.as_mut().reset(tokio::time::Instant::now() + IDLE_WINDOW);
                        continue;
                    }
                };
                match read {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            };
            let head = &buf[..plan.head_len];
            let head: std::borrow::Cow<'_, [u8]> = match &plan.connection_line {
                Some(line) => [&head[..line.start], &head[line.end..]].concat().into(),
                None => head.into(),
            };
            let outcome = self.forward(&mut down, &head, &plan, &mut response).await;
            buf.advance(plan.head_len);
            self.served.fetch_add(1, Ordering::Relaxed);
            served_in_window = true;
            match outcome {
                Forwarded::KeepAlive if !*shutdown.borrow() => {}
                _ => {
                    let _ = down.shutdown().await;
                    return None;
                }
            }
        }
    }

    async fn forward<S>(
        &self,
        down: &mut S,
        head: &[u8],
        plan: &Plan,
        response: &mut BytesMut,
    ) -> Forwarded
    where
        S: AsyncWrite + Unpin,
    {
        let mut endpoint_attempts = 0;
        let mut fresh_only = false;
        loop {
            let Some(addr) = plan.backend.pick_endpoint() else {
                return answer(down, "503 Service Unavailable").await;
            };
            // After a stale pooled connection, connect afresh; the other pooled ones stay.
            let pooled = if fresh_only {
                None
            } else {
                self.pool.take(addr)
            };
            let (mut up, reused) = match pooled {
                Some(conn) => (conn, true),
                None => match connect(addr).await {
                    Ok(conn) => (conn, false),
                    Err(e) => {
                        endpoint_attempts += 1;
                        tracing::debug!(%addr, error = %e, "fast path: connect failed");
                        if endpoint_attempts < CONNECT_ATTEMPTS {
                            continue;
                        }
                        return answer(down, "502 Bad Gateway").await;
                    }
                },
            };
            response.clear();
            match relay(down, &mut up, head, plan.close, response).await {
                Ok((status, reusable, keep_alive)) => {
                    tracing::debug!(
                        target: "access",
                        status,
                        route = %plan.route.key.0,
                        fast = true,
                        "{}",
                        RequestLine(head)
                    );
                    if reusable {
                        self.pool.put(addr, up);
                    }
                    return if keep_alive && !plan.close {
                        Forwarded::KeepAlive
                    } else {
                        Forwarded::Close
                    };
                }
                // A pooled connection the backend closed while it idled: nothing of the
                // request was processed, so a GET goes again on a new connection.
                Err(RelayError::ClosedBeforeResponse) if reused => {
                    fresh_only = true;
                    continue;
                }
                Err(RelayError::Failed(e)) => {
                    tracing::debug!(%addr, error = %e, "fast path: upstream failed");
                    return answer(down, "502 Bad Gateway").await;
                }
                Err(RelayError::ClosedBeforeResponse) => {
                    return answer(down, "502 Bad Gateway").await;
                }
                Err(RelayError::Midway) => return Forwarded::Close,
            }
        }
    }
}

fn decide(
    store: &ConfigStore,
    buf: &[u8],
    local: SocketAddr,
    server_name: Option<&str>,
) -> Decision {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let get = match framing::request_head(buf, &mut headers) {
        RequestHead::Partial => return Decision::Partial,
        RequestHead::General => return Decision::General,
        RequestHead::Simple(get) => get,
    };
    let host = normalise_host(strip_port(get.host));
    let (path, query) = match get.target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (get.target, None),
    };
    let table = store.snapshot();
    // Misdirected requests get their 421 from the general path.
    let Ok(Some(listener)) = table.request_listener(local, &host, server_name) else {
        return Decision::General;
    };
    let expected = match server_name {
        None => ListenerProtocol::Http,
        Some(_) => ListenerProtocol::Https,
    };
    if listener.protocol != expected {
        return Decision::General;
    }
    let view = RequestView {
        method: &Method::GET,
        path,
        query,
        headers: RequestHeaders::Parsed(get.headers),
    };
    let Some(entry) = table.route(&listener.key, &host, &view) else {
        return Decision::General;
    };
    let rule = entry.rule();
    let plain = entry.route.kind == RouteKind::Http
        && rule.filters.is_empty()
        && rule.retry.is_none()
        && rule.timeouts == Timeouts::default();
    if !plain {
        return Decision::General;
    }
    let qualified = |b: &WeightedBackend| match &b.target {
        BackendTarget::Service(key) if b.filters.is_empty() => table
            .backend(key)
            .filter(|s| !s.backend.endpoints.is_empty())
            .filter(|s| s.backend.app_protocol == AppProtocol::Http1),
        _ => None,
    };
    // Every backend of the rule must qualify, not only the one picked: the general path
    // would roll the weights again, skewing the split between backends.
    if !rule.backends.iter().all(|b| qualified(b).is_some()) {
        return Decision::General;
    }
    let Some(backend) = pick_weighted(rule.total_weight, rule.backends.iter().map(|b| b.weight))
        .and_then(|index| qualified(&rule.backends[index]))
    else {
        return Decision::General;
    };
    Decision::Serve(Plan {
        head_len: get.head_len,
        connection_line: get.connection_line,
        close: get.close,
        backend: backend.clone(),
        route: entry.route.clone(),
    })
}

/// The first line of a request head, for the access log.
struct RequestLine<'a>(&'a [u8]);

impl std::fmt::Display for RequestLine<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let line = self.0.split(|b| *b == b'\r').next().unwrap_or_default();
        f.write_str(&String::from_utf8_lossy(line))
    }
}

async fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let conn = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    conn.set_nodelay(true)?;
    Ok(conn)
}

/// An error answer; the connection closes after it.
async fn answer<S: AsyncWrite + Unpin>(down: &mut S, status: &str) -> Forwarded {
    let response = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let _ = down.write_all(response.as_bytes()).await;
    let _ = down.flush().await;
    Forwarded::Close
}

#[derive(Debug)]
enum RelayError {
    /// The upstream closed without a byte of response.
    ClosedBeforeResponse,
    /// Sending the request failed, or the upstream failed or did not answer HTTP, before
    /// anything went downstream: a 502 can still be sent.
    Failed(String),
    /// Part of the response went downstream before a failure: only closing is left.
    Midway,
}

/// Sends the request head upstream and the response downstream. Returns the status,
/// whether the upstream connection may be reused and whether the downstream may.
async fn relay<S: AsyncWrite + Unpin>(
    down: &mut S,
    up: &mut TcpStream,
    head: &[u8],
    close: bool,
    buf: &mut BytesMut,
) -> Result<(u16, bool, bool), RelayError> {
    if let Err(e) = up.write_all(head).await {
        return Err(match e.kind() {
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => {
                RelayError::ClosedBeforeResponse
            }
            _ => RelayError::Failed(e.to_string()),
        });
    }
    let mut sent_any = false;
    // Interim (1xx) responses are forwarded and the final one awaited.
    let head = loop {
        match response_head(buf) {
            Ok(Some(head)) if head.status < 200 => {
                let head_len = head.strip_hop_by_hop(buf);
                down.write_all(&buf[..head_len])
                    .await
                    .map_err(|_| RelayError::Midway)?;
                sent_any = true;
                buf.advance(head_len);
                continue;
            }
            Ok(Some(head)) => break head,
            Ok(None) => {}
            Err(e) if sent_any => {
                tracing::debug!(error = %e, "fast path: bad response after an interim one");
                return Err(RelayError::Midway);
            }
            Err(e) => return Err(RelayError::Failed(e.to_string())),
        }
        if buf.len() >= MAX_HEAD {
            return Err(RelayError::Failed("response head too large".into()));
        }
        match up.read_buf(buf).await {
            Ok(0) if buf.is_empty() && !sent_any => return Err(RelayError::ClosedBeforeResponse),
            Ok(0) => return Err(RelayError::Failed("closed in the response head".into())),
            Ok(_) => {}
            Err(e) if buf.is_empty() && !sent_any => {
                return match e.kind() {
                    std::io::ErrorKind::ConnectionReset => Err(RelayError::ClosedBeforeResponse),
                    _ => Err(RelayError::Failed(e.to_string())),
                };
            }
            Err(e) => return Err(RelayError::Failed(e.to_string())),
        }
    };
    // The head and whatever body arrived with it go out in one write, from the buffer they
    // arrived in.
    let head_len = head.strip_hop_by_hop(buf);
    let mut body = Body::new(head.framing);
    let (end, done) = body.take(&buf[head_len..]).map_err(RelayError::Failed)?;
    let mut extra = buf.len() > head_len + end;
    let written = match buf[..head_len].strip_suffix(b"\r\n") {
        // Says that this connection closes after the response, as the client asked.
        Some(fields) if close => {
            let body = &buf[head_len..head_len + end];
            let out = [fields, b"connection: close\r\n\r\n", body].concat();
            down.write_all(&out).await
        }
        _ => down.write_all(&buf[..head_len + end]).await,
    };
    written.map_err(|_| RelayError::Midway)?;
    let mut complete = done;
    while !complete {
        buf.clear();
        match up.read_buf(buf).await {
            Ok(0) if head.framing == BodyFraming::UntilClose => complete = true,
            Ok(0) | Err(_) => return Err(RelayError::Midway),
            Ok(_) => {
                let (end, done) = body.take(buf).map_err(|_| RelayError::Midway)?;
                down.write_all(&buf[..end])
                    .await
                    .map_err(|_| RelayError::Midway)?;
                extra = buf.len() > end;
                complete = done;
            }
        }
    }
    down.flush().await.map_err(|_| RelayError::Midway)?;
    let keep_alive = head.framing != BodyFraming::UntilClose;
    Ok((head.status, head.reusable && !extra, keep_alive))
}

/// Where the response body stands.
enum Body {
    None,
    Length(u64),
    Chunked(ChunkedScanner),
    UntilClose,
}

impl Body {
    fn new(framing: BodyFraming) -> Self {
        match framing {
            BodyFraming::None => Body::None,
            BodyFraming::Length(n) => Body::Length(n),
            BodyFraming::Chunked => Body::Chunked(ChunkedScanner::default()),
            BodyFraming::UntilClose => Body::UntilClose,
        }
    }

    /// How many bytes of `bytes` belong to the body, and whether the body is complete.
    fn take(&mut self, bytes: &[u8]) -> Result<(usize, bool), String> {
        match self {
            Body::None => Ok((0, true)),
            Body::Length(left) => {
                let n = bytes
                    .len()
                    .min(usize::try_from(*left).unwrap_or(usize::MAX));
                *left -= n as u64;
                Ok((n, *left == 0))
            }
            Body::Chunked(scanner) => match scanner.scan(bytes).map_err(|e| e.to_string())? {
                Some(end) => Ok((end, true)),
                None => Ok((bytes.len(), false)),
            },
            Body::UntilClose => Ok((bytes.len(), false)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;
    use tokio::sync::watch;
    use tokio::time::Instant;

    fn fast_path() -> FastPath {
        FastPath::new(Arc::new(ConfigStore::default()))
    }

    fn local() -> SocketAddr {
        "127.0.0.1:8080".parse().unwrap()
    }

    /// Runs `serve` on one end of an in-memory connection after `client` wrote `sent`, and
    /// returns how long it ran and whether it handed the connection over.
    async fn serve_after(sent: &[u8], shutdown: watch::Receiver<bool>) -> (Duration, bool) {
        let (mut client, server) = duplex(4096);
        client.write_all(sent).await.unwrap();
        let started = Instant::now();
        // Bounded, so that a connection that never closes fails the test instead of hanging it.
        let fast = fast_path();
        let served = fast.serve(server, local(), None, &shutdown);
        let handed_over = tokio::time::timeout(IDLE_WINDOW * 4, served)
            .await
            .expect("the connection closes")
            .is_some();
        drop(client);
        (started.elapsed(), handed_over)
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_nothing_closes_after_one_idle_window() {
        let (_stop, shutdown) = watch::channel(false);
        let (ran, handed_over) = serve_after(b"", shutdown).await;
        assert!(!handed_over);
        assert!(
            ran >= IDLE_WINDOW && ran < IDLE_WINDOW + Duration::from_secs(1),
            "closed after {ran:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_that_never_completes_closes_after_one_idle_window() {
        let (_stop, shutdown) = watch::channel(false);
        let (ran, handed_over) = serve_after(b"GET / HTTP/1.1\r\nHost: a.example", shutdown).await;
        assert!(!handed_over);
        assert!(
            ran >= IDLE_WINDOW && ran < IDLE_WINDOW + Duration::from_secs(1),
            "closed after {ran:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_closes_an_idle_connection_at_once() {
        let (stop, shutdown) = watch::channel(false);
        let serving = tokio::spawn(serve_after(b"", shutdown));
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.send(true).unwrap();
        let (ran, handed_over) = serving.await.unwrap();
        assert!(!handed_over);
        assert!(ran < Duration::from_secs(2), "closed after {ran:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_on_no_fast_route_is_handed_over_with_its_bytes() {
        let (mut client, server) = duplex(4096);
        let request = b"GET / HTTP/1.1\r\nHost: unknown.example\r\n\r\n";
        client.write_all(request).await.unwrap();
        let (_stop, shutdown) = watch::channel(false);
        let (_, unread) = fast_path()
            .serve(server, local(), None, &shutdown)
            .await
            .expect("handed over");
        assert_eq!(&unread[..], &request[..]);
    }
}
