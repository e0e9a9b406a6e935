//! TLS on table sockets: one rustls server config per socket whose certificate resolver
//! reads the current table snapshot, so a certificate delta reaches the next handshake with
//! no rebuild; session tickets and a session cache for resumption; ALPN h2 + http/1.1 on
//! HTTPS listeners.
//!
//! A connection's ClientHello is read first ([`connection`]) so its server name picks the
//! listener before anything is decided: passthrough, terminate for HTTP, or terminate for a
//! TLSRoute. Terminated HTTP connections carry their server name into the request path as a
//! [`ServerNameSeen`] in the TLS digest, where a Host naming another listener gets 421.

pub mod connection;
mod splice;

use crate::store::ConfigStore;
use async_trait::async_trait;
use pingora_core::listeners::TlsAccept;
use pingora_core::listeners::tls::{Acceptor, TlsSettings};
use pingora_core::protocols::tls::TlsRef;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{
    ClientHello, ProducesTickets, ResolvesServerCert, ServerSessionMemoryCache,
    StoresServerSessions,
};
use rustls::sign::CertifiedKey;
use std::any::Any;
use std::net::SocketAddr;
use std::sync::Arc;

/// TLS 1.2 session IDs kept per process for resumption (TLS 1.3 and ticket-capable 1.2
/// clients resume from tickets and need no server state).
const SESSION_CACHE_SIZE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("creating the session ticket key: {0}")]
    Ticketer(rustls::Error),
    #[error("building the TLS server config: {0}")]
    Config(rustls::Error),
}

/// The server name a terminated connection's ClientHello carried (lowercase, or `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerNameSeen(pub Option<String>);

/// What every TLS socket shares: the config source, the ticket keys and the session cache.
pub struct TlsFrontend {
    store: Arc<ConfigStore>,
    provider: Arc<CryptoProvider>,
    ticketer: Arc<dyn ProducesTickets>,
    sessions: Arc<dyn StoresServerSessions>,
}

/// The acceptors of one socket: HTTPS listeners negotiate h2/http1.1, TLS listeners no ALPN.
pub struct SocketAcceptors {
    pub http: Acceptor,
    pub stream: Acceptor,
}

impl TlsFrontend {
    pub fn new(store: Arc<ConfigStore>) -> Result<Arc<Self>, TlsSetupError> {
        Ok(Arc::new(Self {
            store,
            provider: Arc::new(rustls::crypto::ring::default_provider()),
            ticketer: rustls::crypto::ring::Ticketer::new().map_err(TlsSetupError::Ticketer)?,
            sessions: ServerSessionMemoryCache::new(SESSION_CACHE_SIZE),
        }))
    }

    pub fn store(&self) -> &Arc<ConfigStore> {
        &self.store
    }

    /// Acceptors for the socket bound at `socket`.
    pub fn acceptors(&self, socket: SocketAddr) -> Result<SocketAcceptors, TlsSetupError> {
        let resolver = Arc::new(SniResolver {
            store: self.store.clone(),
            socket,
        });
        Ok(SocketAcceptors {
            http: self.acceptor(resolver.clone(), vec![b"h2".to_vec(), b"http/1.1".to_vec()])?,
            stream: self.acceptor(resolver, Vec::new())?,
        })
    }

    fn acceptor(
        &self,
        resolver: Arc<SniResolver>,
        alpn: Vec<Vec<u8>>,
    ) -> Result<Acceptor, TlsSetupError> {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
            .map_err(TlsSetupError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        config.alpn_protocols = alpn;
        config.ticketer = self.ticketer.clone();
        config.session_storage = self.sessions.clone();
        // Pingora's settings type is how an acceptor gets post-handshake callbacks; its own
        // config is then replaced by ours, which has the ticketer and the session cache.
        let mut settings = TlsSettings::with_callbacks(Box::new(RecordServerName))
            .map_err(|e| TlsSetupError::Config(rustls::Error::General(e.to_string())))?;
        settings.set_cert_resolver(resolver);
        let mut acceptor = settings.build();
        acceptor.acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        Ok(acceptor)
    }
}

/// Picks the certificate from the snapshot current at the handshake.
struct SniResolver {
    store: Arc<ConfigStore>,
    socket: SocketAddr,
}

impl std::fmt::Debug for SniResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SniResolver")
            .field("socket", &self.socket)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let table = self.store.snapshot();
        let name = hello
            .server_name()
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase());
        let (listener, _) = table.tls_listener(self.socket, name.as_deref().unwrap_or(""))?;
        table.certificate_for(listener, name.as_deref())
    }
}

struct RecordServerName;

#[async_trait]
impl TlsAccept for RecordServerName {
    async fn handshake_complete_callback(
        &self,
        tls: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        let name = tls
            .server_name()
            .map(|n| n.trim_end_matches('.').to_ascii_lowercase());
        Some(Arc::new(ServerNameSeen(name)))
    }
}
