//! Admin API on a loopback socket: deltas in, stats out, for standalone mode and tests. The
//! controller's stream (`stream`) feeds the same `ConfigStore::apply`.
//!
//! It is unauthenticated by design and must stay on loopback or a private socket.

use crate::store::ConfigStore;
use async_trait::async_trait;
use gatehouse_core::model::Delta;
use http::{Response, StatusCode};
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use std::sync::Arc;

/// Largest delta accepted in one request (a full 1M-route load is sent in batches).
const MAX_BODY: usize = 512 << 20;

pub struct AdminApi<A> {
    store: Arc<ConfigStore>,
    listeners: Arc<crate::listeners::ListenerManager<A>>,
}

impl<A> AdminApi<A> {
    pub fn new(
        store: Arc<ConfigStore>,
        listeners: Arc<crate::listeners::ListenerManager<A>>,
    ) -> Self {
        Self { store, listeners }
    }

    fn apply(&self, body: &[u8]) -> (StatusCode, serde_json::Value) {
        let delta: Delta = match serde_json::from_slice(body) {
            Ok(d) => d,
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({ "error": format!("malformed delta: {e}") }),
                );
            }
        };
        match self.store.apply(&delta) {
            Ok(version) => (StatusCode::OK, serde_json::json!({ "version": version })),
            Err(e) => (
                StatusCode::BAD_REQUEST,
                serde_json::json!({ "error": e.to_string() }),
            ),
        }
    }
}

async fn read_body(session: &mut ServerSession) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = session
        .read_request_body()
        .await
        .map_err(|e| e.to_string())?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("body larger than {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn json(status: StatusCode, value: &serde_json::Value) -> Response<Vec<u8>> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .header("content-length", body.len())
        .body(body)
        .unwrap_or_default()
}

#[async_trait]
impl<A: pingora_core::apps::ServerApp + Send + Sync + 'static> ServeHttp for AdminApi<A> {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let method = session.req_header().method.clone();
        let path = session.req_header().uri.path().to_string();
        match (method.as_str(), path.as_str()) {
            ("GET", "/healthz") => json(StatusCode::OK, &serde_json::json!({ "ok": true })),
            ("GET", "/v1/stats") => {
                let table = self.store.snapshot();
                let mut stats = serde_json::to_value(table.stats()).unwrap_or_default();
                stats["instance"] = serde_json::json!(self.store.instance.to_string());
                stats["boundSockets"] = serde_json::json!(self.listeners.bound());
                stats["connections"] = serde_json::json!(self.listeners.connections());
                stats["fastPathRequests"] = serde_json::json!(self.listeners.fast_path_requests());
                json(StatusCode::OK, &stats)
            }
            ("GET", "/v1/keys") => {
                let keys = self.store.snapshot().keys();
                json(
                    StatusCode::OK,
                    &serde_json::json!({ "instance": self.store.instance.to_string(), "keys": keys }),
                )
            }
            ("POST", "/v1/delta") => match read_body(session).await {
                Ok(body) => {
                    let (status, value) = self.apply(&body);
                    json(status, &value)
                }
                Err(e) => json(StatusCode::BAD_REQUEST, &serde_json::json!({ "error": e })),
            },
            _ => json(
                StatusCode::NOT_FOUND,
                &serde_json::json!({ "error": "unknown endpoint" }),
            ),
        }
    }
}
