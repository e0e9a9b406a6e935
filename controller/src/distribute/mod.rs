//! Config distribution: proxies open a gRPC stream to the leading controller
//! (`gatehouse-config-api`), say which Gateways they serve and what they hold, and get
//! their share of the desired config: a snapshot, then versioned deltas they ACK or NACK.
//!
//! Only the leader serves streams; a standby refuses with UNAVAILABLE naming the leader,
//! and a leader that steps down ends its streams the same way, so proxies move on.
//!
//! The stream is plaintext HTTP/2: keep the port on a private network (mTLS is future work).

mod registry;
mod session;
mod stream;

pub use registry::{Connected, Registry};
pub use session::{Held, ProtocolError, Rejection, Session, full_resync};

use gatehouse_config_api::ServerTls;
use gatehouse_config_api::proxy_message::Kind;
use gatehouse_config_api::{ConfigServer, Distributor, OpenFuture, ProxyMessage, decode_keys};
use gatehouse_core::scope::{Config, Scope};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tonic::{Status, Streaming};

/// How long a new stream may take to say hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// The controller's end of every proxy stream.
pub struct Distribution {
    pub registry: Arc<Registry>,
    /// The full desired config; `None` while not leading or before the caches are complete.
    desired: watch::Receiver<Option<Arc<Config>>>,
    leading: watch::Receiver<bool>,
    /// Random per process: a proxy naming it in its hello held config from this process.
    session: Arc<str>,
    /// Where a standby looks up the leader's name.
    lease: Option<(Api<Lease>, String)>,
}

impl Distribution {
    pub fn new(
        registry: Arc<Registry>,
        desired: watch::Receiver<Option<Arc<Config>>>,
        leading: watch::Receiver<bool>,
        lease: Option<(Api<Lease>, String)>,
    ) -> Self {
        let session = format!("{:016x}", RandomState::new().hash_one(std::process::id()));
        Distribution {
            registry,
            desired,
            leading,
            session: session.into(),
            lease,
        }
    }
}

/// Serves the config API on `listener` until the future is dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    distribution: Arc<Distribution>,
    tls: Option<&ServerTls>,
) -> Result<(), tonic::transport::Error> {
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        server = server.tls_config(tls.config())?;
    }
    server
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .add_service(ConfigServer::new(distribution))
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
        .await
}

impl Distributor for Distribution {
    fn open(&self, peer: Option<SocketAddr>, messages: Streaming<ProxyMessage>) -> OpenFuture {
        let registry = self.registry.clone();
        let desired = self.desired.clone();
        let leading = self.leading.clone();
        let session = self.session.clone();
        let lease = self.lease.clone();
        Box::pin(async move {
            if !*leading.borrow() {
                return Err(Status::unavailable(standby_message(lease.as_ref()).await));
            }
            let mut messages = messages;
            let hello = match tokio::time::timeout(HELLO_TIMEOUT, messages.message()).await {
                Ok(Ok(Some(ProxyMessage {
                    kind: Some(Kind::Hello(hello)),
                }))) => hello,
                Ok(Ok(Some(_))) => {
                    return Err(Status::invalid_argument(
                        "the first message of a stream must be a hello",
                    ));
                }
                Ok(Ok(None)) => return Err(Status::cancelled("stream closed before the hello")),
                Ok(Err(status)) => return Err(status),
                Err(_) => {
                    return Err(Status::deadline_exceeded(format!(
                        "no hello within {HELLO_TIMEOUT:?}"
                    )));
                }
            };
            let scope = Scope::parse(&hello.gateways)
                .map_err(|e| Status::invalid_argument(format!("hello.gateways: {e}")))?;
            let ours = hello.held_session == *session;
            let resumed = if ours {
                registry.resume(&hello.instance, hello.held_version)
            } else {
                None
            };
            let (held, last_version) = match resumed {
                Some(config) => (Held::Known(config), hello.held_version),
                None => {
                    let keys = decode_keys(&hello.held_keys)
                        .map_err(|e| Status::invalid_argument(format!("hello.{e}")))?;
                    (
                        Held::Unknown(keys),
                        if ours { hello.held_version } else { 0 },
                    )
                }
            };
            tracing::info!(
                instance = %hello.instance,
                ?peer,
                %scope,
                resumed = matches!(held, Held::Known(_)),
                "proxy connected"
            );
            let session = Session::new(session, scope, held, last_version);
            let id = registry.connect(&hello.instance, peer, &session);
            let name = match peer {
                Some(p) => format!("{} ({p})", hello.instance),
                None => hello.instance.clone(),
            };
            let (out, updates) = mpsc::channel(4);
            tokio::spawn(stream::run(stream::Stream {
                id,
                name,
                session,
                registry,
                desired,
                leading,
                messages,
                out,
            }));
            let updates = futures_util::stream::unfold(updates, |mut rx| async move {
                rx.recv().await.map(|m| (m, rx))
            });
            Ok(Box::pin(updates) as gatehouse_config_api::UpdateStream)
        })
    }
}

/// What a standby tells a proxy: whom to look for instead.
async fn standby_message(lease: Option<&(Api<Lease>, String)>) -> String {
    let holder = match lease {
        Some((api, name)) => {
            match tokio::time::timeout(Duration::from_secs(2), api.get_opt(name)).await {
                Ok(Ok(Some(l))) => l.spec.and_then(|s| s.holder_identity),
                _ => None,
            }
        }
        None => None,
    };
    match holder.filter(|h| !h.is_empty()) {
        Some(h) => format!("this controller is a standby; the leader is {h}"),
        None => "this controller is a standby; the leader is not known".to_string(),
    }
}
