//! Runtime listener manager: binds and unbinds sockets as listeners come and go in the
//! table, without a restart. Each socket has its own accept loop; stopping one stops only
//! its accepting, so connections already open (on it or any other socket) run to the end.

use crate::fastpath::FastPath;
use crate::store::ConfigStore;
use crate::tls::TlsFrontend;
use crate::tls::connection::TlsSocket;
use pingora_core::apps::ServerApp;
use pingora_core::protocols::GetSocketDigest;
use pingora_core::protocols::SocketDigest;
use pingora_core::protocols::l4::stream::Stream as L4Stream;
use pingora_core::server::ShutdownWatch;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Sockets that failed to bind (address in use, no permission) are tried again this often.
const REBIND_INTERVAL: Duration = Duration::from_secs(2);

pub struct ListenerManager<A> {
    app: Arc<A>,
    /// Set when sockets may carry TLS listeners; without it every socket is plain HTTP.
    tls: Option<Arc<TlsFrontend>>,
    /// Set when plain-HTTP connections start on the HTTP/1.1 fast path.
    fast: Option<Arc<FastPath>>,
    shutdown: ShutdownWatch,
    bound: Mutex<BTreeMap<SocketAddr, watch::Sender<bool>>>,
    connections: Arc<AtomicUsize>,
}

/// Counts a connection from accept to close.
struct ConnectionGuard(Arc<AtomicUsize>);

impl ConnectionGuard {
    fn new(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count.clone())
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<A: ServerApp + Send + Sync + 'static> ListenerManager<A> {
    pub fn new(app: Arc<A>, shutdown: ShutdownWatch) -> Arc<Self> {
        Self::with_tls(app, None, None, shutdown)
    }

    pub fn with_tls(
        app: Arc<A>,
        tls: Option<Arc<TlsFrontend>>,
        fast: Option<Arc<FastPath>>,
        shutdown: ShutdownWatch,
    ) -> Arc<Self> {
        Arc::new(Self {
            app,
            tls,
            fast,
            shutdown,
            bound: Mutex::new(BTreeMap::new()),
            connections: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// Wakes connections idling between keep-alive requests so they close (used when draining).
    pub async fn close_idle(&self) {
        self.app.cleanup().await;
    }

    /// Open downstream connections on table sockets, upgraded tunnels included.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Requests answered by the HTTP/1.1 fast path, if it is on.
    pub fn fast_path_requests(&self) -> Option<u64> {
        self.fast.as_ref().map(|f| f.served())
    }

    /// Sockets currently accepting.
    pub fn bound(&self) -> Vec<SocketAddr> {
        self.lock().keys().copied().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<SocketAddr, watch::Sender<bool>>> {
        self.bound.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows the store until it is dropped.
    pub async fn run(self: Arc<Self>, store: Arc<ConfigStore>) {
        let mut changes = store.subscribe();
        let mut shutdown = self.shutdown.clone();
        loop {
            if *shutdown.borrow() {
                // Draining: stop accepting everywhere; open connections finish on their own.
                self.reconcile(&HashSet::new()).await;
                return;
            }
            let wanted: HashSet<SocketAddr> = store.snapshot().socket_addrs().copied().collect();
            let complete = self.reconcile(&wanted).await;
            tokio::select! {
                changed = changes.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => {}
                _ = tokio::time::sleep(REBIND_INTERVAL), if !complete => {}
            }
        }
    }

    /// Binds what is wanted and not bound, stops what is bound and not wanted. Returns
    /// false if some socket could not be bound.
    pub async fn reconcile(&self, wanted: &HashSet<SocketAddr>) -> bool {
        let stale: Vec<SocketAddr> = self
            .lock()
            .keys()
            .filter(|a| !wanted.contains(a))
            .copied()
            .collect();
        for addr in stale {
            if let Some(stop) = self.lock().remove(&addr) {
                let _ = stop.send(true);
                tracing::info!(%addr, "listener socket closed");
            }
        }
        let mut complete = true;
        for addr in wanted {
            if self.lock().contains_key(addr) {
                continue;
            }
            let tls_socket = match self.tls_socket(*addr) {
                Ok(t) => t,
                Err(e) => {
                    complete = false;
                    tracing::error!(%addr, error = %e, "cannot set up TLS for socket; will retry");
                    continue;
                }
            };
            match TcpListener::bind(addr).await {
                Ok(listener) => {
                    let (stop_tx, stop_rx) = watch::channel(false);
                    self.lock().insert(*addr, stop_tx);
                    tracing::info!(%addr, "listener socket bound");
                    tokio::spawn(accept_loop(
                        listener,
                        self.app.clone(),
                        tls_socket,
                        self.fast.clone(),
                        stop_rx,
                        self.shutdown.clone(),
                        Some(self.connections.clone()),
                    ));
                }
                Err(e) => {
                    complete = false;
                    tracing::warn!(%addr, error = %e, "cannot bind listener socket; will retry");
                }
            }
        }
        complete
    }

    fn tls_socket(
        &self,
        bound: SocketAddr,
    ) -> Result<Option<Arc<TlsSocket<A>>>, crate::tls::TlsSetupError> {
        let Some(tls) = &self.tls else {
            return Ok(None);
        };
        Ok(Some(Arc::new(TlsSocket {
            bound,
            acceptors: tls.acceptors(bound)?,
            app: self.app.clone(),
            store: tls.store().clone(),
        })))
    }
}

/// Serves one app on its own socket outside the table (the admin API, example backends).
pub async fn serve<A: ServerApp + Send + Sync + 'static>(
    addr: SocketAddr,
    app: Arc<A>,
    shutdown: ShutdownWatch,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let stop = shutdown.clone();
    tokio::spawn(accept_loop(listener, app, None, None, stop, shutdown, None));
    Ok(local)
}

async fn accept_loop<A: ServerApp + Send + Sync + 'static>(
    listener: TcpListener,
    app: Arc<A>,
    tls: Option<Arc<TlsSocket<A>>>,
    fast: Option<Arc<FastPath>>,
    mut stop: watch::Receiver<bool>,
    shutdown: ShutdownWatch,
    connections: Option<Arc<AtomicUsize>>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => accepted,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // Usually EMFILE: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let fast = fast.clone();
        let shutdown = shutdown.clone();
        let guard = connections.as_ref().map(ConnectionGuard::new);
        // Decided per connection: a socket's listeners may switch between HTTP and TLS.
        let tls = tls
            .as_ref()
            .filter(|t| t.store.snapshot().socket_is_tls(t.bound))
            .cloned();
        tokio::spawn(async move {
            match (tls, fast) {
                (Some(tls), fast) => {
                    let (stream, local) = pingora_stream(tcp);
                    if let Err(e) = tls.serve(stream, local, fast.as_deref(), &shutdown).await {
                        tracing::debug!(socket = %tls.bound, error = %e, "TLS connection closed");
                    }
                }
                // The fast path reads and writes the socket itself: a Pingora stream's
                // per-read bookkeeping (clock reads, digests) is only built for the
                // connections handed over.
                (None, Some(fast)) => match tcp.local_addr() {
                    Ok(local) => {
                        if let Some((tcp, unread)) = fast.serve(tcp, local, None, &shutdown).await {
                            let (stream, _) = pingora_stream(tcp);
                            serve_general(&app, stream, unread.freeze(), &shutdown).await;
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "connection gone before it was served"),
                },
                (None, None) => {
                    let (stream, _) = pingora_stream(tcp);
                    serve_general(&app, stream, Default::default(), &shutdown).await;
                }
            }
            drop(guard);
        });
    }
}

/// Wraps an accepted socket for Pingora, with the digest its logs and `client_addr` read;
/// returns the local address too, read once here where both paths find it.
fn pingora_stream(tcp: TcpStream) -> (L4Stream, Option<SocketAddr>) {
    let mut stream = L4Stream::from(tcp);
    let digest = SocketDigest::from_raw_fd(stream.as_raw_fd());
    let local = digest.local_addr().and_then(|a| a.as_inet()).copied();
    stream.set_socket_digest(digest);
    (stream, local)
}

/// Pingora's general proxy for the rest of a plain-HTTP connection, reading `unread`
/// (bytes a fast path already took from the socket) first.
async fn serve_general<A: ServerApp + Send + Sync + 'static>(
    app: &Arc<A>,
    stream: L4Stream,
    unread: bytes::Bytes,
    shutdown: &ShutdownWatch,
) {
    let stream = crate::buffered::BufferedStream::with_unread(stream, unread);
    app.process_new(Box::new(stream), shutdown).await;
}
