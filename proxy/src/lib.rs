//! Gatehouse data plane: a Pingora HTTP proxy whose listeners and routes change at runtime
//! through deltas, without restarts and without cutting open connections.

pub mod admin;
pub mod buffered;
pub mod echo;
pub mod fastpath;
pub mod filters;
pub mod gateway;
pub mod listeners;
pub mod mirror;
pub mod standalone;
pub mod store;
pub mod stream;
pub mod table;
pub mod tls;
pub mod tunnel;

use crate::gateway::Gateway;
use crate::listeners::ListenerManager;
use crate::store::ConfigStore;
use pingora_core::apps::HttpServerOptions;
use pingora_core::server::configuration::ServerConf;
use pingora_proxy::HttpProxy;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::watch;

pub type GatewayApp = HttpProxy<Gateway>;

/// Idle upstream connections kept for reuse, per worker thread, over all backends. Pingora's
/// default (128) is below the concurrency of a busy listener: with more requests in flight
/// than that, every answer past the 128th closed its upstream connection and the next
/// request paid for a new connect.
const UPSTREAM_IDLE_PER_THREAD: usize = 1024;

/// Which address the listeners' sockets bind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Binding {
    /// The address each listener names (local mode: the Gateway's assigned address).
    #[default]
    AsConfigured,
    /// `0.0.0.0`/`::` on each listener's port, for a proxy behind a Service whose
    /// Gateway address is not its own (`--bind-any`).
    AnyAddress,
}

/// How a proxy runs, beyond its config.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub threads: usize,
    pub binding: Binding,
    /// Plain-HTTP GETs on simple routes skip Pingora's general proxy (see [`fastpath`]).
    pub http1_fast_path: bool,
}

impl Options {
    pub fn new(threads: usize) -> Self {
        Self {
            threads,
            binding: Binding::AsConfigured,
            http1_fast_path: true,
        }
    }
}

/// A running data plane inside the current tokio runtime.
pub struct Proxy {
    pub store: Arc<ConfigStore>,
    /// `None` when started without the HTTP/1.1 fast path.
    pub fast_path: Option<Arc<fastpath::FastPath>>,
    pub listeners: Arc<ListenerManager<GatewayApp>>,
    shutdown: watch::Sender<bool>,
}

impl Proxy {
    /// Starts the listener manager; sockets follow the store from here on.
    pub fn start(threads: usize) -> Proxy {
        Self::start_with(Options::new(threads))
    }

    pub fn start_with(options: Options) -> Proxy {
        let Options {
            threads,
            binding,
            http1_fast_path,
        } = options;
        let store = Arc::new(match binding {
            Binding::AsConfigured => ConfigStore::default(),
            Binding::AnyAddress => ConfigStore::binding_any_address(),
        });
        let conf = ServerConf {
            threads,
            upstream_keepalive_pool_size: UPSTREAM_IDLE_PER_THREAD,
            ..ServerConf::default()
        };
        let mut app = HttpProxy::new(Gateway::new(store.clone()), Arc::new(conf));
        app.handle_init_modules();
        let mut options = HttpServerOptions::default();
        options.h2c = true;
        app.server_options = Some(options);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let tls = match tls::TlsFrontend::new(store.clone()) {
            Ok(tls) => Some(tls),
            Err(e) => {
                tracing::error!(error = %e, "TLS unavailable; HTTPS and TLS listeners will not serve");
                None
            }
        };
        let fast_path = http1_fast_path.then(|| Arc::new(fastpath::FastPath::new(store.clone())));
        let listeners =
            ListenerManager::with_tls(Arc::new(app), tls, fast_path.clone(), shutdown_rx);
        tokio::spawn(listeners.clone().run(store.clone()));
        Proxy {
            store,
            fast_path,
            listeners,
            shutdown,
        }
    }

    /// Serves the admin API on `addr` (which may use port 0); returns the bound address.
    pub async fn serve_admin(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let api = admin::AdminApi::new(self.store.clone(), self.listeners.clone());
        let app = Arc::new(pingora_core::apps::http_app::HttpServer::new_app(api));
        listeners::serve(addr, app, self.shutdown.subscribe()).await
    }
}

impl Proxy {
    /// Graceful stop: no new connections, no more keep-alive reuse, and waits until open
    /// connections have finished or `grace` has passed. Returns the connections still open.
    pub async fn drain(&self, grace: std::time::Duration) -> usize {
        let _ = self.shutdown.send(true);
        let deadline = tokio::time::Instant::now() + grace;
        while self.listeners.connections() > 0 && tokio::time::Instant::now() < deadline {
            // Repeated because a connection finishing a request only starts idling later.
            self.listeners.close_idle().await;
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.listeners.connections()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}
