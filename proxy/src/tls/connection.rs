//! One connection on a TLS socket: read the ClientHello (bounded in size and time, the
//! bytes kept), pick the listener by its server name, then pass the bytes through, or
//! terminate and hand the plaintext to HTTP or to a TLSRoute backend. A malformed or slow
//! hello closes only this connection.

use super::{SocketAcceptors, splice};
use crate::table::{Table, TlsHandling};
use gatehouse_core::client_hello::{self, ClientHello, HelloError, MAX_HELLO};
use pingora_core::apps::ServerApp;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::protocols::{ALPN, Ssl};
use pingora_core::server::ShutdownWatch;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// A client gets this long to send its whole ClientHello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// A TLS handshake (after the hello) gets this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Room for the record headers around a hello of `MAX_HELLO` bytes split into small records.
const MAX_HELLO_BYTES: usize = MAX_HELLO + 4096;

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("client sent no complete ClientHello within {0:?}")]
    HelloTimeout(Duration),
    #[error("connection closed before the ClientHello was complete")]
    HelloTruncated,
    #[error("reading the ClientHello: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Hello(#[from] HelloError),
    #[error("no TLS listener on {socket} serves server name {name:?}")]
    NoListener { socket: SocketAddr, name: String },
    #[error("TLS handshake: {0}")]
    Handshake(String),
    #[error("TLS handshake took longer than {0:?}")]
    HandshakeTimeout(Duration),
    #[error(transparent)]
    Splice(#[from] splice::SpliceError),
}

/// Reads until the ClientHello parses; returns it and every byte read.
pub async fn read_hello<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(ClientHello, Vec<u8>), ConnectionError> {
    let mut buf = Vec::with_capacity(2048);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(ConnectionError::HelloTruncated);
        }
        buf.extend_from_slice(&chunk[..n]);
        match client_hello::parse(&buf) {
            Ok(hello) => return Ok((hello, buf)),
            Err(HelloError::Incomplete) if buf.len() < MAX_HELLO_BYTES => {}
            Err(HelloError::Incomplete) => return Err(HelloError::TooLarge.into()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Everything a TLS connection needs from its socket.
pub struct TlsSocket<A> {
    pub bound: SocketAddr,
    pub acceptors: SocketAcceptors,
    pub app: Arc<A>,
    pub store: Arc<crate::store::ConfigStore>,
}

impl<A: ServerApp + Send + Sync + 'static> TlsSocket<A> {
    /// Serves one connection accepted on `local`; terminated HTTPS starts on the HTTP/1.1
    /// `fast` path when given one and the client did not choose h2.
    pub async fn serve(
        &self,
        mut stream: L4Stream,
        local: Option<SocketAddr>,
        fast: Option<&crate::fastpath::FastPath>,
        shutdown: &ShutdownWatch,
    ) -> Result<(), ConnectionError> {
        let (hello, bytes) = tokio::time::timeout(HELLO_TIMEOUT, read_hello(&mut stream))
            .await
            .map_err(|_| ConnectionError::HelloTimeout(HELLO_TIMEOUT))??;
        let table: Arc<Table> = self.store.snapshot();
        let name = hello.server_name.unwrap_or_default();
        let Some((listener, handling)) = table.tls_listener(self.bound, &name) else {
            return Err(ConnectionError::NoListener {
                socket: self.bound,
                name,
            });
        };
        let listener = listener.clone();
        match handling {
            TlsHandling::Passthrough => {
                let upstream = splice::connect_route(&table, &listener, &name).await?;
                // A long-lived tunnel must not pin an old snapshot of the whole table.
                drop(table);
                splice::splice(stream, upstream, &bytes).await?;
            }
            TlsHandling::TerminateHttp => {
                stream.rewind(&bytes);
                let tls = self.handshake(&self.acceptors.http, stream).await?;
                drop(table);
                let h2 = tls.selected_alpn_proto() == Some(ALPN::H2);
                let (tls, unread) = match fast {
                    Some(fast) if !h2 => {
                        let local = local.unwrap_or(self.bound);
                        match fast.serve(tls, local, Some(&name), shutdown).await {
                            Some(handed_over) => handed_over,
                            None => return Ok(()),
                        }
                    }
                    _ => (tls, Default::default()),
                };
                let tls = crate::buffered::BufferedStream::with_unread(tls, unread.freeze());
                self.app.process_new(Box::new(tls), shutdown).await;
            }
            TlsHandling::TerminateStream => {
                stream.rewind(&bytes);
                drop(table);
                let tls = self.handshake(&self.acceptors.stream, stream).await?;
                let table = self.store.snapshot();
                let upstream = splice::connect_route(&table, &listener, &name).await?;
                drop(table);
                splice::splice(tls, upstream, &[]).await?;
            }
        }
        Ok(())
    }

    async fn handshake(
        &self,
        acceptor: &pingora_core::listeners::tls::Acceptor,
        stream: L4Stream,
    ) -> Result<pingora_core::protocols::tls::TlsStream<L4Stream>, ConnectionError> {
        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.tls_handshake(stream))
            .await
            .map_err(|_| ConnectionError::HandshakeTimeout(HANDSHAKE_TIMEOUT))?
            .map_err(|e| ConnectionError::Handshake(e.to_string()))
    }
}
