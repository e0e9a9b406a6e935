//! A small HTTPS client that trusts one CA: what the benchmark and the end-to-end tests use
//! to talk to the webhook as the apiserver would (TLS, HTTP/1.1 keep-alive).

use bytes::Bytes;
use http::{Method, Request, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("CA bundle: {0}")]
    Ca(String),
    #[error("{addr}: {stage}: {source}")]
    Io {
        addr: SocketAddr,
        stage: &'static str,
        source: std::io::Error,
    },
    #[error("{addr}: {what}: {source}")]
    Http {
        addr: SocketAddr,
        what: String,
        source: hyper::Error,
    },
}

#[derive(Clone)]
pub struct HttpsClient {
    connector: TlsConnector,
    addr: SocketAddr,
    server_name: ServerName<'static>,
}

impl HttpsClient {
    /// `server_name` must be in the serving certificate's subjectAltName.
    pub fn new(ca_pem: &[u8], addr: SocketAddr, server_name: &str) -> Result<Self, ClientError> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_pem) {
            let cert = cert.map_err(|e| ClientError::Ca(e.to_string()))?;
            roots
                .add(cert)
                .map_err(|e| ClientError::Ca(e.to_string()))?;
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(crate::tls::provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Ca(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let server_name = ServerName::try_from(server_name.to_string())
            .map_err(|e| ClientError::Ca(format!("server name {server_name:?}: {e}")))?;
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            addr,
            server_name,
        })
    }

    async fn handshake(&self) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ClientError> {
        let addr = self.addr;
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Io {
                addr,
                stage: "connect",
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        self.connector
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|source| ClientError::Io {
                addr,
                stage: "TLS handshake",
                source,
            })
    }

    /// The leaf certificate a brand-new handshake is served.
    pub async fn peer_certificate(&self) -> Result<CertificateDer<'static>, ClientError> {
        let tls = self.handshake().await?;
        let (_, session) = tls.get_ref();
        session
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| leaf.clone().into_owned())
            .ok_or_else(|| ClientError::Ca("server sent no certificate".to_string()))
    }

    /// One keep-alive connection; requests on it are sent one after another.
    pub async fn connect(&self) -> Result<Connection, ClientError> {
        let tls = self.handshake().await?;
        let addr = self.addr;
        let (sender, connection) = http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|source| ClientError::Http {
                addr,
                what: "HTTP/1.1 handshake".to_string(),
                source,
            })?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Connection { sender, addr })
    }
}

pub struct Connection {
    sender: http1::SendRequest<Full<Bytes>>,
    addr: SocketAddr,
}

impl Connection {
    pub async fn post(&mut self, path: &str, body: Vec<u8>) -> Result<(u16, Bytes), ClientError> {
        self.send(Method::POST, path, Bytes::from(body)).await
    }

    pub async fn get(&mut self, path: &str) -> Result<(u16, Bytes), ClientError> {
        self.send(Method::GET, path, Bytes::new()).await
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(u16, Bytes), ClientError> {
        let addr = self.addr;
        let what = format!("{method} {path}");
        let fail = |source| ClientError::Http {
            addr,
            what: what.clone(),
            source,
        };
        let request = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::HOST, "localhost")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))
            .expect("static request parts are valid");
        self.sender.ready().await.map_err(fail)?;
        let response = self.sender.send_request(request).await.map_err(fail)?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map_err(fail)?;
        Ok((status, body.to_bytes()))
    }
}
