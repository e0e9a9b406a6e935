//! TLSRoute backends: connect to an endpoint of the route's backend and copy bytes both ways
//! until either side closes. Nothing can be answered inside someone else's TLS session, so
//! a connection without a usable backend is closed.

use crate::table::Table;
use gatehouse_core::model::{BackendTarget, Listener};
use rand::Rng;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Endpoints tried before giving up on a connection (nothing was sent, so retrying is safe).
const CONNECT_ATTEMPTS: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum SpliceError {
    #[error("no TLSRoute on listener {listener} serves server name {name:?}")]
    NoRoute { listener: String, name: String },
    #[error("TLSRoute {route}: no valid backend ({reason})")]
    NoBackend { route: String, reason: String },
    #[error("TLSRoute {route}: backend {backend} has no ready endpoint")]
    NoEndpoint { route: String, backend: String },
    #[error("TLSRoute {route}: cannot connect to {backend}: {error}")]
    Connect {
        route: String,
        backend: String,
        error: String,
    },
    #[error("copying bytes: {0}")]
    Io(#[from] std::io::Error),
}

/// Connects to a backend of the TLSRoute serving `name` on `listener`.
pub async fn connect_route(
    table: &Table,
    listener: &Listener,
    name: &str,
) -> Result<TcpStream, SpliceError> {
    let route = table
        .tls_route(&listener.key, name)
        .ok_or_else(|| SpliceError::NoRoute {
            listener: listener.key.to_string(),
            name: name.to_string(),
        })?
        .clone();
    let route_name = route.key.to_string();
    let backends: Vec<_> = route.rules.iter().flat_map(|r| r.backends.iter()).collect();
    let total: u64 = backends.iter().map(|b| u64::from(b.weight)).sum();
    let no_backend = |reason: &str| SpliceError::NoBackend {
        route: route_name.clone(),
        reason: reason.to_string(),
    };
    if total == 0 {
        return Err(no_backend("no backendRef with a weight"));
    }
    let mut roll = rand::rng().random_range(0..total);
    let chosen = backends
        .iter()
        .find(|b| {
            let w = u64::from(b.weight);
            if roll < w {
                return true;
            }
            roll -= w;
            false
        })
        .ok_or_else(|| no_backend("no backendRef with a weight"))?;
    let key = match &chosen.target {
        BackendTarget::Service(key) => key,
        BackendTarget::Invalid(reason) => return Err(no_backend(reason)),
    };
    let backend = table
        .backend(key)
        .ok_or_else(|| no_backend(&format!("backend {key} is unknown")))?;
    let mut last_error = None;
    let mut upstream = None;
    for _ in 0..CONNECT_ATTEMPTS.min(backend.backend.endpoints.len().max(1)) {
        let Some(addr) = backend.pick_endpoint() else {
            return Err(SpliceError::NoEndpoint {
                route: route_name,
                backend: key.to_string(),
            });
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => {
                upstream = Some(tcp);
                break;
            }
            Ok(Err(e)) => last_error = Some(format!("{addr}: {e}")),
            Err(_) => last_error = Some(format!("{addr}: timed out after {CONNECT_TIMEOUT:?}")),
        }
    }
    let upstream = upstream.ok_or_else(|| SpliceError::Connect {
        route: route_name,
        backend: key.to_string(),
        error: last_error.unwrap_or_default(),
    })?;
    let _ = upstream.set_nodelay(true);
    Ok(upstream)
}

/// Sends what was already read from the client, then copies both ways until both close.
pub async fn splice<S: AsyncRead + AsyncWrite + Unpin>(
    mut client: S,
    mut upstream: TcpStream,
    already_read: &[u8],
) -> Result<(), SpliceError> {
    upstream.write_all(already_read).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}
