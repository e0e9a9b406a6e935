//! Gatehouse data plane: a Pingora HTTP proxy whose listeners and routes change at runtime
//! through deltas, without restarts and without cutting open connections.

pub mod admin;
pub mod buffered;
pub mod echo;
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

/// A running data plane inside the current tokio runtime.
pub struct Proxy {
    pub store: Arc<ConfigStore>,
    pub listeners: Arc<ListenerManager<GatewayApp>>,
    shutdown: watch::Sender<bool>,
}

impl Proxy {
    /// Starts the listener manager; sockets follow the store from here on.
    pub fn start(threads: usize) -> Proxy {
        Self::start_with(threads, Binding::AsConfigured)
    }

    pub fn start_with(threads: usize, binding: Binding) -> Proxy {
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
        let listeners = ListenerManager::with_tls(Arc::new(app), tls, shutdown_rx);
        tokio::spawn(listeners.clone().run(store.clone()));
        Proxy {
            store,
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
