//! HTTPS for the apiserver (`POST /validate`), plus `/healthz` and `/metrics`, and an
//! optional plain-HTTP loopback listener for scraping without a client certificate dance.

use crate::tls::{CertFiles, CertReloader, TlsError};
use crate::webhook::Webhook;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

/// The apiserver caps request bodies at 3 MiB; an update carries the object twice.
const MAX_BODY: usize = 7 * 1024 * 1024;
/// Bounds on what an idle or slow peer can hold open.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    pub cert: CertFiles,
    /// Plain HTTP for `/metrics` and `/healthz`; keep it on loopback.
    pub metrics_addr: Option<SocketAddr>,
    pub cert_poll: Duration,
}

/// A running server; dropping it stops every listener, poller and connection.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    tasks: JoinSet<()>,
}

impl RunningServer {
    /// Waits until a listener task ends, which only happens if it panicked.
    pub async fn wait(mut self) {
        self.tasks.join_next().await;
    }
}

pub async fn start(
    webhook: Arc<Webhook>,
    config: ServerConfig,
) -> Result<RunningServer, ServerError> {
    let reloader = CertReloader::load(config.cert.clone())?;
    let acceptor = TlsAcceptor::from(Arc::new(reloader.server_config()?));
    let listener = bind(config.addr).await?;
    let addr = listener.local_addr().map_err(|source| ServerError::Bind {
        addr: config.addr,
        source,
    })?;
    let mut tasks = JoinSet::new();
    tasks.spawn(reloader.watch(config.cert_poll, webhook.metrics.clone()));
    tasks.spawn(serve_tls(listener, acceptor, webhook.clone()));
    let mut metrics_addr = None;
    if let Some(wanted) = config.metrics_addr {
        let listener = bind(wanted).await?;
        metrics_addr = listener.local_addr().ok();
        tasks.spawn(serve_plain(listener, webhook));
    }
    tracing::info!(%addr, ?metrics_addr, "admission webhook listening");
    Ok(RunningServer {
        addr,
        metrics_addr,
        tasks,
    })
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

async fn serve_tls(listener: TcpListener, acceptor: TlsAcceptor, webhook: Arc<Webhook>) {
    let mut connections = JoinSet::new();
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Usually EMFILE: back off instead of spinning on the error.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (acceptor, webhook) = (acceptor.clone(), webhook.clone());
        connections.spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => return tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => return tracing::debug!(%peer, "TLS handshake timed out"),
            };
            serve_connection(tls, webhook, true).await;
        });
        // Reap finished connections so the set does not grow with every one ever served.
        while connections.try_join_next().is_some() {}
    }
}

async fn serve_plain(listener: TcpListener, webhook: Arc<Webhook>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        connections.spawn(serve_connection(tcp, webhook.clone(), false));
        while connections.try_join_next().is_some() {}
    }
}

async fn serve_connection<S>(io: S, webhook: Arc<Webhook>, reviews: bool)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| route(webhook.clone(), request, reviews));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    if let Err(e) = builder.serve_connection(TokioIo::new(io), service).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

async fn route(
    webhook: Arc<Webhook>,
    request: Request<Incoming>,
    reviews: bool,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path();
    Ok(match (request.method(), path) {
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n".to_string()),
        // Ready once the caches have synced: until then every write is refused, so a
        // rollout should keep the old replicas serving.
        (&Method::GET, "/readyz") if webhook.source.is_synced() => {
            text(StatusCode::OK, "ok\n".to_string())
        }
        (&Method::GET, "/readyz") => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "watch caches not synced yet\n".to_string(),
        ),
        (&Method::GET, "/metrics") => {
            let mut response = text(StatusCode::OK, webhook.render_metrics());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("text/plain; version=0.0.4"),
            );
            response
        }
        (&Method::POST, "/validate") if reviews => validate(&webhook, request).await,
        (_, "/validate") if reviews => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "/validate takes POST with an AdmissionReview\n".to_string(),
        ),
        _ => text(StatusCode::NOT_FOUND, format!("no such endpoint: {path}\n")),
    })
}

async fn validate(webhook: &Webhook, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let body = Limited::new(request.into_body(), MAX_BODY).collect();
    let body = match tokio::time::timeout(BODY_TIMEOUT, body).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("cannot read the request body (limit {MAX_BODY} bytes): {e}\n"),
            );
        }
        Err(_) => {
            return text(
                StatusCode::REQUEST_TIMEOUT,
                "request body not received in time\n".to_string(),
            );
        }
    };
    let reply = webhook.review(&body);
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() =
        StatusCode::from_u16(reply.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    response
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
