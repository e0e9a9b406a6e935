//! The slice of the kubelet's HTTPS API the API server uses for `kubectl logs`:
//! `GET /containerLogs/{namespace}/{pod}/{container}` (follow, tailLines, timestamps,
//! previous, sinceSeconds, limitBytes), plus `/healthz`. Clients must present a
//! certificate signed by the cluster CA (the API server's kubelet-client certificate).

use crate::logs::{LogIndex, LogQuery, render};
use bytes::Bytes;
use futures_util::stream;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use k8s_openapi::jiff::Timestamp;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

const FOLLOW_POLL: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
    #[error("kubelet API TLS setup: {0}")]
    Tls(String),
    #[error("kubelet API: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Serving certificate files; without them a self-signed one for the node IP is made.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub client_ca: PathBuf,
}

fn read(path: &Path) -> Result<Vec<u8>, ApiError> {
    std::fs::read(path).map_err(|e| ApiError::File {
        path: path.into(),
        reason: e.to_string(),
    })
}

fn server_config(
    tls: &TlsFiles,
    node_ip: IpAddr,
    node_name: &str,
) -> Result<rustls::ServerConfig, ApiError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (chain, key) = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(&read(cert)?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ApiError::File {
                    path: cert.clone(),
                    reason: e.to_string(),
                })?;
            let key = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| ApiError::File {
                path: key.clone(),
                reason: e.to_string(),
            })?;
            (chain, key)
        }
        _ => {
            let mut params = rcgen::CertificateParams::new(vec![node_name.to_string()])
                .map_err(|e| ApiError::Tls(e.to_string()))?;
            params
                .subject_alt_names
                .push(rcgen::SanType::IpAddress(node_ip));
            let key = rcgen::KeyPair::generate().map_err(|e| ApiError::Tls(e.to_string()))?;
            let cert = params
                .self_signed(&key)
                .map_err(|e| ApiError::Tls(e.to_string()))?;
            let der = PrivateKeyDer::try_from(key.serialize_der())
                .map_err(|e| ApiError::Tls(e.to_string()))?;
            (vec![cert.der().clone()], der)
        }
    };
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_slice_iter(&read(&tls.client_ca)?) {
        let ca = ca.map_err(|e| ApiError::File {
            path: tls.client_ca.clone(),
            reason: e.to_string(),
        })?;
        roots.add(ca).map_err(|e| ApiError::File {
            path: tls.client_ca.clone(),
            reason: e.to_string(),
        })?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| ApiError::Tls(e.to_string()))?;
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ApiError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| ApiError::Tls(e.to_string()))
}

/// Binds and serves in the background; returns the bound address.
pub async fn start(
    addr: SocketAddr,
    tls: &TlsFiles,
    node_name: &str,
    logs: LogIndex,
) -> Result<SocketAddr, ApiError> {
    let mut config = server_config(tls, addr.ip(), node_name)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ApiError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ApiError::Bind { addr, source })?;
    tokio::spawn(async move {
        loop {
            let Ok((tcp, peer)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let (acceptor, logs) = (acceptor.clone(), logs.clone());
            tokio::spawn(async move {
                let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp))
                    .await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => return tracing::debug!(%peer, "kubelet API handshake: {e}"),
                    Err(_) => return,
                };
                let service = service_fn(move |req| {
                    let logs = logs.clone();
                    async move { Ok::<_, Infallible>(handle(req, &logs).await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    Ok(bound)
}

type Body = BoxBody<Bytes, Infallible>;

fn text(status: StatusCode, body: String) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(body)).boxed())
        .expect("a valid response")
}

async fn handle(req: Request<Incoming>, logs: &LogIndex) -> Response<Body> {
    if req.method() != Method::GET {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET is served\n".into(),
        );
    }
    let path = req.uri().path().to_string();
    if path == "/healthz" {
        return text(StatusCode::OK, "ok".into());
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["containerLogs", ns, pod, container] = parts.as_slice() else {
        return text(
            StatusCode::NOT_FOUND,
            format!(
                "{path}: the node agent serves only /containerLogs/<namespace>/<pod>/<container>\n"
            ),
        );
    };
    let query = match LogQuery::parse(req.uri().query()) {
        Ok(q) => q,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("{e}\n")),
    };
    let source = match logs.source(ns, pod, container, query.previous) {
        Ok(s) => s,
        Err(e) => return text(StatusCode::NOT_FOUND, format!("{e}\n")),
    };
    let content = match tokio::fs::read(&source.path).await {
        Ok(c) => c,
        Err(e) => {
            return text(
                StatusCode::NOT_FOUND,
                format!("{}: {e}\n", source.path.display()),
            );
        }
    };
    // Only whole lines; a partial last line is sent once complete when following.
    let whole = content
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let first = render(
        &String::from_utf8_lossy(&content[..whole]),
        &query,
        Timestamp::now(),
    );
    if !query.follow || query.previous {
        return text(StatusCode::OK, first);
    }
    let (ns, pod, container) = (ns.to_string(), pod.to_string(), container.to_string());
    let logs = logs.clone();
    let follow = LogQuery {
        tail_lines: None,
        since_seconds: None,
        limit_bytes: None,
        ..query
    };
    let state = (Some(first), whole as u64, logs, source, follow);
    let body = stream::unfold(state, move |(pending, offset, logs, source, q)| {
        let (ns, pod, container) = (ns.clone(), pod.clone(), container.clone());
        async move {
            if let Some(chunk) = pending {
                return Some((
                    Ok(Frame::data(Bytes::from(chunk))),
                    (None, offset, logs, source, q),
                ));
            }
            loop {
                let live = logs.is_live(&ns, &pod, &container, source.run);
                let bytes = tokio::fs::read(&source.path).await.unwrap_or_default();
                let tail = bytes.get(offset as usize..).unwrap_or_default();
                if let Some(end) = tail.iter().rposition(|b| *b == b'\n') {
                    let chunk = render(
                        &String::from_utf8_lossy(&tail[..=end]),
                        &q,
                        Timestamp::now(),
                    );
                    let next = offset + end as u64 + 1;
                    return Some((
                        Ok(Frame::data(Bytes::from(chunk))),
                        (None, next, logs, source, q),
                    ));
                }
                if !live {
                    return None;
                }
                tokio::time::sleep(FOLLOW_POLL).await;
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "text/plain; charset=utf-8")
        .body(BodyExt::boxed(StreamBody::new(body)))
        .expect("a valid response")
}
