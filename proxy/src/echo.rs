//! A small echo backend (`gatehouse echo`) for the quickstart, tests and benchmarks: it
//! answers every request with JSON naming itself and describing what it received, over
//! HTTP/1.1 or h2c. Test knobs ride on request headers: `x-echo-status` picks the status and
//! `x-echo-delay-ms` delays the answer.

use async_trait::async_trait;
use http::Response;
use pingora_core::apps::http_app::ServeHttp;
use pingora_core::protocols::http::ServerSession;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub struct EchoBackend {
    name: String,
    served: AtomicU64,
    /// Status answered when the request does not ask for one (tests use it for a failing
    /// endpoint next to a healthy one).
    default_status: u16,
}

impl EchoBackend {
    pub fn new(name: impl Into<String>) -> Self {
        Self::with_status(name, 200)
    }

    pub fn with_status(name: impl Into<String>, default_status: u16) -> Self {
        Self {
            name: name.into(),
            served: AtomicU64::new(0),
            default_status,
        }
    }

    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl ServeHttp for EchoBackend {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        self.served.fetch_add(1, Ordering::Relaxed);
        let req = session.req_header().clone();
        let mut body_len = 0usize;
        while let Ok(Some(chunk)) = session.read_request_body().await {
            body_len += chunk.len();
        }
        let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(ms) = header("x-echo-delay-ms").and_then(|v| v.parse().ok()) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let status = header("x-echo-status")
            .and_then(|v| v.parse::<u16>().ok())
            .unwrap_or(self.default_status);
        let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in req.headers.iter() {
            headers
                .entry(name.as_str().to_string())
                .or_default()
                .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
        }
        let host = req
            .uri
            .authority()
            .map(|a| a.to_string())
            .or_else(|| header("host").map(str::to_string));
        let body = serde_json::json!({
            "backend": self.name,
            "method": req.method.as_str(),
            "path": req.uri.path(),
            "query": req.uri.query(),
            "host": host,
            "protocol": format!("{:?}", req.version),
            "headers": headers,
            "bodyBytes": body_len,
        });
        let body = serde_json::to_vec_pretty(&body).unwrap_or_default();
        Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .header("content-length", body.len())
            .header("x-echo-backend", self.name.as_str())
            .body(body)
            .unwrap_or_default()
    }
}
