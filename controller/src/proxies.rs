//! Keeps every proxy's table equal to the desired config, each proxy on its own task so a
//! slow or dead one never holds the others back.
//!
//! A proxy is tracked by the `instance` its stats report: a new instance is a restarted,
//! empty proxy and gets the whole config; a known one gets the difference from what it last
//! acknowledged. Any failure forgets what the proxy holds, so the next attempt resyncs it.

use bytes::Bytes;
use gatehouse_core::diff::diff;
use gatehouse_core::model::{Delta, Resource, ResourceKey};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::{Notify, watch};

pub type Config = BTreeMap<ResourceKey, Resource>;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an idle proxy is asked for its instance, to notice restarts without changes.
const RECHECK: Duration = Duration::from_secs(2);
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

#[derive(Debug, Error)]
#[error("proxy admin {addr}: {action}: {reason}")]
pub struct AdminError {
    pub addr: SocketAddr,
    /// `GET /v1/stats` or `POST /v1/delta`.
    pub action: &'static str,
    pub reason: String,
}

/// A client for one proxy's admin API.
#[derive(Clone)]
pub struct AdminClient {
    addr: SocketAddr,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl AdminClient {
    pub fn new(addr: SocketAddr) -> Self {
        let http = Client::builder(TokioExecutor::new()).build_http();
        AdminClient { addr, http }
    }

    /// The proxy's per-process id.
    pub async fn instance(&self) -> Result<String, AdminError> {
        let action = "GET /v1/stats";
        let stats = self
            .call(action, http::Method::GET, "/v1/stats", Bytes::new())
            .await?;
        stats["instance"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.error(action, "the stats carry no instance".to_string()))
    }

    /// The proxy's instance and every resource key it holds.
    pub async fn keys(&self) -> Result<(String, Vec<ResourceKey>), AdminError> {
        let action = "GET /v1/keys";
        let reply = self
            .call(action, http::Method::GET, "/v1/keys", Bytes::new())
            .await?;
        let instance = reply["instance"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.error(action, "the reply carries no instance".to_string()))?;
        let keys = serde_json::from_value(reply["keys"].clone())
            .map_err(|e| self.error(action, format!("unreadable keys: {e}")))?;
        Ok((instance, keys))
    }

    /// Applies a delta; returns the proxy's new config version.
    pub async fn apply(&self, delta: &Delta) -> Result<u64, AdminError> {
        let action = "POST /v1/delta";
        let body = serde_json::to_vec(delta).map_err(|e| self.error(action, e.to_string()))?;
        let reply = self
            .call(action, http::Method::POST, "/v1/delta", body.into())
            .await?;
        Ok(reply["version"].as_u64().unwrap_or_default())
    }

    fn error(&self, action: &'static str, reason: String) -> AdminError {
        AdminError {
            addr: self.addr,
            action,
            reason,
        }
    }

    async fn call(
        &self,
        action: &'static str,
        method: http::Method,
        path: &str,
        body: Bytes,
    ) -> Result<serde_json::Value, AdminError> {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("http://{}{path}", self.addr))
            .header("content-type", "application/json")
            .body(Full::new(body))
            .map_err(|e| self.error(action, e.to_string()))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            let value: serde_json::Value = serde_json::from_slice(&body)
                .map_err(|e| format!("status {status}, unreadable reply: {e}"))?;
            if !status.is_success() {
                return Err(format!("status {status}: {}", value["error"]));
            }
            Ok(value)
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(result) => result.map_err(|reason| self.error(action, reason)),
            Err(_) => Err(self.error(action, "timed out".to_string())),
        }
    }
}

/// One proxy as the reconciler sees it.
pub struct ProxyHandle {
    pub addr: SocketAddr,
    /// The config the proxy last acknowledged in full (empty while it is unreachable).
    pub acked: watch::Receiver<Arc<Config>>,
}

/// Starts the task that keeps the proxy at `addr` on `desired` (which stays `None` until
/// the caches are complete: pushing a partial view would tear down live routes).
/// `acked_changed` is notified whenever what the proxy acknowledged changes.
pub fn spawn(
    tasks: &mut tokio::task::JoinSet<()>,
    addr: SocketAddr,
    desired: watch::Receiver<Option<Arc<Config>>>,
    acked_changed: Arc<Notify>,
) -> ProxyHandle {
    let (acked_tx, acked) = watch::channel(Arc::new(Config::new()));
    let sync = ProxySync {
        client: AdminClient::new(addr),
        desired,
        acked: acked_tx,
        acked_changed,
        held: None,
    };
    tasks.spawn(sync.run());
    ProxyHandle { addr, acked }
}

struct ProxySync {
    client: AdminClient,
    desired: watch::Receiver<Option<Arc<Config>>>,
    acked: watch::Sender<Arc<Config>>,
    acked_changed: Arc<Notify>,
    /// The proxy's instance and what it holds, as far as we know.
    held: Option<(String, Arc<Config>)>,
}

impl ProxySync {
    async fn run(mut self) {
        let mut backoff = BACKOFF_MIN;
        loop {
            let want = self.desired.borrow_and_update().clone();
            let Some(want) = want else {
                // Not leading: whoever leads next may change the proxy behind our back.
                self.held = None;
                self.ack(Arc::new(Config::new()));
                if self.desired.changed().await.is_err() {
                    return;
                }
                continue;
            };
            match self.sync(&want).await {
                Ok(()) => {
                    backoff = BACKOFF_MIN;
                    self.ack(want);
                    tokio::select! {
                        changed = self.desired.changed() => if changed.is_err() { return },
                        () = tokio::time::sleep(RECHECK) => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(retry_in = ?backoff, "{e}");
                    self.held = None;
                    self.ack(Arc::new(Config::new()));
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }

    fn ack(&self, config: Arc<Config>) {
        let changed = self.acked.send_if_modified(|current| {
            let differs = **current != *config;
            if differs {
                *current = config;
            }
            differs
        });
        if changed {
            self.acked_changed.notify_one();
        }
    }

    async fn sync(&mut self, want: &Arc<Config>) -> Result<(), AdminError> {
        let mut instance = self.client.instance().await?;
        let delta = match &self.held {
            Some((known, held)) if *known == instance => diff(held, want),
            _ => {
                // What the proxy holds is unknown (it restarted, or this controller did, or
                // another replica led before): send everything, and remove whatever it holds
                // that is no longer wanted.
                tracing::info!(proxy = %self.client.addr, "resyncing the proxy's whole config");
                // The keys carry their own instance: the proxy may have restarted since.
                let (current, holds) = self.client.keys().await?;
                instance = current;
                full_resync(&holds, want)
            }
        };
        if !delta.is_empty() {
            let version = self.client.apply(&delta).await?;
            tracing::info!(
                proxy = %self.client.addr,
                version,
                upserts = delta.upserts.len(),
                removals = delta.removals.len(),
                "delta applied"
            );
        }
        self.held = Some((instance, want.clone()));
        Ok(())
    }
}

/// The delta that takes a proxy holding `holds` (contents unknown) to exactly `want`.
pub fn full_resync(holds: &[ResourceKey], want: &Config) -> Delta {
    let mut delta = diff(&Config::new(), want);
    delta.removals = holds
        .iter()
        .filter(|k| !want.contains_key(k))
        .cloned()
        .collect();
    delta
}
