//! The Pingora `ProxyHttp` implementation: route lookup, filters, backend choice, retries
//! and timeouts, all decided from the snapshot the request started on.

use crate::filters::{self, RedirectInput};
use crate::mirror;
use crate::store::ConfigStore;
use crate::table::compiled::{RequestHeaders, RequestView, RouteKind};
use crate::table::{BackendState, Entry, Misdirected, Table};
use crate::tls::ServerNameSeen;
use crate::tunnel;
use async_trait::async_trait;
use bytes::Bytes;
use gatehouse_core::model::{
    AppProtocol, BackendTarget, HeaderModifier, HttpFilter, Listener, ListenerProtocol,
};
use pingora_core::protocols::ALPN;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, ErrorType, Result};
use pingora_http::{RequestHeader, ResponseHeader};
use pingora_proxy::{FailToProxy, ProxyHttp, Session};
use rand::Rng;
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Connection failures are retried on another endpoint this many times even without a
/// retry policy: nothing was sent, so it is always safe.
const CONNECT_RETRIES: u32 = 2;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Gateway {
    store: Arc<ConfigStore>,
}

impl Gateway {
    pub fn new(store: Arc<ConfigStore>) -> Self {
        Self { store }
    }
}

/// Per-request state; the table snapshot pins the config for the whole request.
pub struct RequestCtx {
    started: Instant,
    table: Option<Arc<Table>>,
    listener: Option<Arc<Listener>>,
    entry: Option<Entry>,
    backend_index: usize,
    backend: Option<Arc<BackendState>>,
    attempts: u32,
}

impl RequestCtx {
    fn rule_filters(&self) -> impl Iterator<Item = &HttpFilter> {
        let rule = self.entry.as_ref().map(|e| e.rule());
        let rule_filters = rule.map(|r| r.filters.iter()).into_iter().flatten();
        let backend_filters = rule
            .and_then(|r| r.backends.get(self.backend_index))
            .map(|b| b.filters.iter())
            .into_iter()
            .flatten();
        rule_filters.chain(backend_filters)
    }
}

/// Host without port, lowercased; HTTP/2's :authority and HTTP/1's Host both count.
fn request_host(req: &RequestHeader) -> Cow<'_, str> {
    // Borrowed until the one lowercased copy: this runs on every request.
    let raw = req
        .uri
        .host()
        .or_else(|| {
            req.headers
                .get(http::header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(strip_port)
        })
        .unwrap_or_default();
    normalise_host(raw)
}

/// A host as routing compares it: no trailing dot, lowercase. Most clients send it so,
/// and then it is not copied.
pub(crate) fn normalise_host(host: &str) -> Cow<'_, str> {
    let host = host.trim_end_matches('.');
    if host.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(host.to_ascii_lowercase())
    } else {
        Cow::Borrowed(host)
    }
}

pub(crate) fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

async fn respond(session: &mut Session, status: u16, body: &'static str) -> Result<bool> {
    let mut resp = ResponseHeader::build(status, Some(2))?;
    resp.insert_header("content-type", "text/plain")?;
    resp.insert_header("content-length", body.len().to_string())?;
    session.write_response_header(Box::new(resp), false).await?;
    session
        .write_response_body(Some(Bytes::from_static(body.as_bytes())), true)
        .await?;
    Ok(true)
}

pub(crate) fn pick_weighted(total: u64, weights: impl Iterator<Item = u32>) -> Option<usize> {
    if total == 0 {
        return None;
    }
    let mut roll = rand::rng().random_range(0..total);
    for (i, w) in weights.enumerate() {
        let w = u64::from(w);
        if roll < w {
            return Some(i);
        }
        roll -= w;
    }
    None
}

/// Applies the rule's request filters, in order, to the request that goes to the backend.
fn prepare_upstream(upstream: &mut RequestHeader, ctx: &RequestCtx) -> Result<()> {
    let Some(entry) = ctx.entry.as_ref() else {
        return Ok(());
    };
    let prefix = filters::matched_prefix(&entry.rule().matches[entry.matched as usize].path);
    for f in ctx.rule_filters() {
        match f {
            HttpFilter::RequestHeaderModifier(m) => filters::modify_headers(upstream, m),
            HttpFilter::UrlRewrite(rw) => {
                if let Some(host) = &rw.hostname {
                    upstream.insert_header("host", host.as_str())?;
                }
                if let Some(path) = &rw.path {
                    let new_path = filters::rewrite_path(upstream.uri.path(), path, prefix);
                    let uri = match upstream.uri.query() {
                        Some(q) => format!("{new_path}?{q}"),
                        None => new_path,
                    };
                    let uri = uri.parse().map_err(|e| {
                        Error::because(ErrorType::InternalError, "rewritten path", e)
                    })?;
                    upstream.set_uri(uri);
                }
            }
            HttpFilter::RequestMirror(m) => {
                if let (Some(table), BackendTarget::Service(key)) = (&ctx.table, &m.backend) {
                    let sampled =
                        m.ppm >= 1_000_000 || rand::rng().random_range(0..1_000_000) < m.ppm;
                    if let (true, Some(target)) =
                        (sampled, table.backend(key).and_then(|b| b.pick_endpoint()))
                    {
                        mirror::send(target, upstream);
                    }
                }
            }
            HttpFilter::ResponseHeaderModifier(_) | HttpFilter::RequestRedirect(_) => {}
        }
    }
    Ok(())
}

impl Gateway {
    /// Proxies an HTTP/1.1 Upgrade request through [`tunnel`], answering 502/504 itself if
    /// the backend fails before a response head was sent.
    async fn upgrade(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let Some(target) = ctx.backend.as_ref().and_then(|b| b.pick_endpoint()) else {
            return respond(session, 503, "no ready endpoint\n").await;
        };
        ctx.attempts += 1;
        let mut upstream = session.req_header().clone();
        prepare_upstream(&mut upstream, ctx)?;
        let response_filters: Vec<HeaderModifier> = ctx
            .rule_filters()
            .filter_map(|f| match f {
                HttpFilter::ResponseHeaderModifier(m) => Some(m.clone()),
                _ => None,
            })
            .collect();
        let edit = |head: &mut ResponseHeader| {
            for m in &response_filters {
                filters::modify_headers(head, m);
            }
        };
        if let Err(e) = tunnel::run(session, target, &upstream, edit).await {
            tracing::debug!(%target, error = %e, "upgrade tunnel ended with an error");
            if session.response_written().is_none() {
                let status = match e.etype() {
                    ErrorType::ConnectTimedout | ErrorType::ReadTimedout => 504,
                    _ => 502,
                };
                return respond(session, status, "upgrade failed\n").await;
            }
        }
        Ok(true)
    }

    async fn redirect(
        &self,
        session: &mut Session,
        ctx: &RequestCtx,
        redirect: &gatehouse_core::model::RequestRedirect,
    ) -> Result<bool> {
        let (entry, listener) = match (&ctx.entry, &ctx.listener) {
            (Some(e), Some(l)) => (e, l),
            _ => return respond(session, 500, "no route\n").await,
        };
        let req = session.req_header();
        let host = request_host(req);
        let matcher = &entry.rule().matches[entry.matched as usize].path;
        let scheme = match listener.protocol {
            ListenerProtocol::Https | ListenerProtocol::Tls => "https",
            _ => "http",
        };
        let location = filters::redirect_location(
            redirect,
            &RedirectInput {
                scheme,
                host: &host,
                listener_port: listener.port,
                path: req.uri.path(),
                query: req.uri.query(),
                matched_prefix: filters::matched_prefix(matcher),
            },
        );
        let mut resp = ResponseHeader::build(redirect.status_code, Some(3))?;
        resp.insert_header("location", location)?;
        resp.insert_header("content-length", "0")?;
        for f in ctx.rule_filters() {
            if let HttpFilter::ResponseHeaderModifier(m) = f {
                filters::modify_headers(&mut resp, m);
            }
        }
        session.write_response_header(Box::new(resp), true).await?;
        Ok(true)
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            started: Instant::now(),
            table: None,
            listener: None,
            entry: None,
            backend_index: 0,
            backend: None,
            attempts: 0,
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let table = self.store.snapshot();
        let req = session.req_header();
        let host = request_host(req);
        let Some(local) = session
            .as_downstream()
            .server_addr()
            .and_then(|a| a.as_inet())
            .copied()
        else {
            return respond(session, 404, "no listener\n").await;
        };
        let tls_name = session
            .as_downstream()
            .digest()
            .and_then(|d| d.ssl_digest.as_ref())
            .and_then(|ssl| ssl.extension.get::<ServerNameSeen>().cloned());
        let server_name = tls_name
            .as_ref()
            .map(|ServerNameSeen(n)| n.as_deref().unwrap_or(""));
        let listener = match table.request_listener(local, &host, server_name) {
            Ok(listener) => listener.cloned(),
            Err(Misdirected) => return respond(session, 421, "misdirected request\n").await,
        };
        let Some(listener) = listener else {
            return respond(session, 404, "no listener for this host\n").await;
        };
        let view = RequestView {
            method: &req.method,
            path: req.uri.path(),
            query: req.uri.query(),
            headers: RequestHeaders::Map(&req.headers),
        };
        let Some(entry) = table.route(&listener.key, &host, &view) else {
            return respond(session, 404, "no route\n").await;
        };
        ctx.listener = Some(listener);
        ctx.entry = Some(entry.clone());
        ctx.table = Some(table.clone());

        let rule = entry.rule();
        if let Some(HttpFilter::RequestRedirect(r)) = rule
            .filters
            .iter()
            .find(|f| matches!(f, HttpFilter::RequestRedirect(_)))
        {
            return self.redirect(session, ctx, r).await;
        }
        let Some(index) = pick_weighted(rule.total_weight, rule.backends.iter().map(|b| b.weight))
        else {
            return respond(session, 500, "no valid backend\n").await;
        };
        ctx.backend_index = index;
        let backend = match &rule.backends[index].target {
            BackendTarget::Service(key) => table.backend(key).cloned(),
            BackendTarget::Invalid(_) => None,
        };
        let Some(backend) = backend else {
            return respond(session, 500, "invalid backend\n").await;
        };
        if backend.backend.endpoints.is_empty() {
            return respond(session, 503, "no ready endpoint\n").await;
        }
        ctx.backend = Some(backend);
        let downstream = session.as_downstream();
        if !downstream.is_http2() && downstream.is_upgrade_req() {
            return self.upgrade(session, ctx).await;
        }
        Ok(false)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let backend = ctx
            .backend
            .clone()
            .ok_or_else(|| Error::explain(ErrorType::HTTPStatus(500), "no backend chosen"))?;
        let rule = ctx.entry.as_ref().map(|e| e.rule());
        if ctx.attempts > 0
            && let Some(backoff) = rule.and_then(|r| r.retry.as_ref()?.backoff_ms)
        {
            tokio::time::sleep(Duration::from_millis(backoff)).await;
        }
        ctx.attempts += 1;
        let addr: SocketAddr = backend
            .pick_endpoint()
            .ok_or_else(|| Error::explain(ErrorType::HTTPStatus(503), "no ready endpoint"))?;
        let mut peer = HttpPeer::new(addr, false, String::new());
        let timeouts = rule.map(|r| r.timeouts.clone()).unwrap_or_default();
        let remaining =
            match timeouts.request_ms {
                Some(ms) => {
                    let left = Duration::from_millis(ms).checked_sub(ctx.started.elapsed());
                    Some(left.ok_or_else(|| {
                        Error::explain(ErrorType::HTTPStatus(504), "request timeout")
                    })?)
                }
                None => None,
            };
        let per_try = timeouts.backend_request_ms.map(Duration::from_millis);
        let limit = match (remaining, per_try) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        peer.options.connection_timeout =
            Some(limit.map_or(CONNECT_TIMEOUT, |l| l.min(CONNECT_TIMEOUT)));
        peer.options.total_connection_timeout = peer.options.connection_timeout;
        peer.options.read_timeout = limit;
        peer.options.write_timeout = limit;
        // gRPC only exists over HTTP/2, whatever the Service port says.
        let grpc = ctx
            .entry
            .as_ref()
            .is_some_and(|e| e.route.kind == RouteKind::Grpc);
        if grpc || backend.backend.app_protocol == AppProtocol::H2c {
            peer.options.alpn = ALPN::H2;
        }
        Ok(Box::new(peer))
    }

    async fn upstream_request_filter(
        &self,
        _session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        prepare_upstream(upstream, ctx)
    }

    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let status = upstream.status.as_u16();
        let retry = ctx.entry.as_ref().and_then(|e| e.rule().retry.as_ref());
        if let Some(retry) = retry
            && retry.codes.contains(&status)
            && ctx.attempts <= retry.attempts
        {
            let mut e = Error::explain(ErrorType::HTTPStatus(status), "retryable status");
            e.set_retry(true);
            return Err(e);
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        _session: &mut Session,
        upstream: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        for f in ctx.rule_filters() {
            if let HttpFilter::ResponseHeaderModifier(m) = f {
                filters::modify_headers(upstream, m);
            }
        }
        Ok(())
    }

    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let policy = ctx
            .entry
            .as_ref()
            .and_then(|en| en.rule().retry.as_ref())
            .map_or(0, |r| r.attempts);
        if ctx.attempts <= CONNECT_RETRIES.max(policy) {
            e.set_retry(true);
        }
        e
    }

    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        _ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let code = match e.etype() {
            ErrorType::HTTPStatus(code) => *code,
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout => 504,
            _ => match e.esource() {
                pingora_error::ErrorSource::Upstream => 502,
                pingora_error::ErrorSource::Downstream => match e.etype() {
                    ErrorType::WriteError | ErrorType::ReadError | ErrorType::ConnectionClosed => 0,
                    _ => 400,
                },
                _ => 500,
            },
        };
        if code > 0 {
            let _ = session.respond_error(code).await;
        }
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    async fn logging(&self, session: &mut Session, e: Option<&Error>, ctx: &mut RequestCtx) {
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        tracing::debug!(
            target: "access",
            status,
            route = ctx.entry.as_ref().map(|e| e.route.key.0.as_str()),
            attempts = ctx.attempts,
            error = e.map(|e| e.to_string()),
            "{}",
            session.request_summary()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_normalised() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:80"), "[::1]");
        let mut req = RequestHeader::build("GET", b"/", None).unwrap();
        req.insert_header("host", "Foo.Example.COM.:80").unwrap();
        assert_eq!(request_host(&req), "foo.example.com");
    }

    #[test]
    fn weighted_pick_respects_zero_weights() {
        assert_eq!(pick_weighted(0, [0, 0].into_iter()), None);
        for _ in 0..100 {
            assert_eq!(pick_weighted(5, [0, 5, 0].into_iter()), Some(1));
        }
    }
}
