//! Write buffering for accepted connections.
//!
//! Pingora's own listeners give each accepted stream a small write buffer, and its HTTP/1
//! writers rely on that: a response head is written without a flush and goes out together
//! with the body when the body is finished (streamed and chunked bodies are flushed as they
//! are written). A stream built from a bare `TcpStream` has no buffer and no public way to
//! add one, so every head and body went out in separate `send`s: one extra syscall and one
//! extra wake-up of the client per response. This wrapper adds the buffer back.
//!
//! Terminated TLS needs it as much: the TLS stream seals and sends a record per write, so
//! an unbuffered head and body cost two records and two `send`s; buffered, they share one.

use async_trait::async_trait;
use bytes::Bytes;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::protocols::raw_connect::ProxyDigest;
use pingora_core::protocols::tls::{SslDigest, TlsRef};
use pingora_core::protocols::{
    ALPN, GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, SocketDigest, Ssl,
    TimingDigest, UniqueID, UniqueIDType,
};
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter, ReadBuf};

/// One TCP segment on a typical link, as Pingora's listeners use: a small response fits
/// whole, a large body is written straight through.
const WRITE_BUFFER: usize = 1460;

/// What a wrapped stream must offer for the wrapper to be a Pingora connection.
pub trait Inner:
    AsyncRead
    + AsyncWrite
    + Peek
    + UniqueID
    + Ssl
    + GetTimingDigest
    + GetProxyDigest
    + GetSocketDigest
    + Unpin
    + Send
    + Sync
    + std::fmt::Debug
{
}

impl<S> Inner for S where
    S: AsyncRead
        + AsyncWrite
        + Peek
        + UniqueID
        + Ssl
        + GetTimingDigest
        + GetProxyDigest
        + GetSocketDigest
        + Unpin
        + Send
        + Sync
        + std::fmt::Debug
{
}

#[derive(Debug)]
pub struct BufferedStream<S = L4Stream> {
    inner: BufWriter<S>,
    /// Bytes already read from the connection (by the fast path) and not yet handled:
    /// read again before anything new.
    unread: Bytes,
}

impl<S: Inner> BufferedStream<S> {
    pub fn new(stream: S) -> Self {
        Self::with_unread(stream, Bytes::new())
    }

    pub fn with_unread(stream: S, unread: Bytes) -> Self {
        Self {
            inner: BufWriter::with_capacity(WRITE_BUFFER, stream),
            unread,
        }
    }
}

impl<S: Inner> AsyncRead for BufferedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.unread.is_empty() {
            let n = self.unread.len().min(buf.remaining());
            let head = self.unread.split_to(n);
            buf.put_slice(&head);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: Inner> AsyncWrite for BufferedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl<S: Inner> Shutdown for BufferedStream<S> {
    async fn shutdown(&mut self) {
        // Flushes what is buffered before the FIN.
        if let Err(e) = AsyncWriteExt::shutdown(&mut self.inner).await {
            tracing::debug!(error = %e, "shutting down connection");
        }
    }
}

#[async_trait]
impl<S: Inner> Peek for BufferedStream<S> {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        if !self.unread.is_empty() {
            let n = self.unread.len().min(buf.len());
            buf[..n].copy_from_slice(&self.unread[..n]);
            return Ok(n == buf.len());
        }
        self.inner.get_mut().try_peek(buf).await
    }
}

impl<S: Inner> UniqueID for BufferedStream<S> {
    fn id(&self) -> UniqueIDType {
        self.inner.get_ref().id()
    }
}

impl<S: Inner> Ssl for BufferedStream<S> {
    // Delegated, not defaulted: the HTTP layer picks h2 by the negotiated ALPN, and routing
    // reads the server name from the TLS digest.
    fn get_ssl(&self) -> Option<&TlsRef> {
        self.inner.get_ref().get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<SslDigest>> {
        self.inner.get_ref().get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.get_ref().selected_alpn_proto()
    }
}

impl<S: Inner> GetTimingDigest for BufferedStream<S> {
    fn get_timing_digest(&self) -> Vec<Option<TimingDigest>> {
        self.inner.get_ref().get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_ref().get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_ref().get_write_pending_time()
    }
}

impl<S: Inner> GetProxyDigest for BufferedStream<S> {
    fn get_proxy_digest(&self) -> Option<Arc<ProxyDigest>> {
        self.inner.get_ref().get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: ProxyDigest) {
        self.inner.get_mut().set_proxy_digest(digest);
    }
}

impl<S: Inner> GetSocketDigest for BufferedStream<S> {
    fn get_socket_digest(&self) -> Option<Arc<SocketDigest>> {
        self.inner.get_ref().get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: SocketDigest) {
        self.inner.get_mut().set_socket_digest(digest);
    }
}
