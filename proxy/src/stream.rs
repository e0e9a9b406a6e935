//! The proxy's config source in a cluster: a stream from the leading controller.
//!
//! The proxy tries each controller address in turn and, once all have failed, waits a
//! capped exponential backoff with jitter before the next round. Whatever happens to the
//! stream, the table keeps serving the last config applied: a disconnect never clears it.
//! On every (re)connect the hello says what the proxy holds (the controller session and
//! version it last acknowledged, and every key), so the same controller can resume with a
//! delta and any other sends a snapshot that also removes leftovers.

use crate::store::ConfigStore;
use gatehouse_config_api::proxy_message::Kind;
use gatehouse_config_api::{
    Ack, ClientTls, ConfigClient, ConfigUpdate, Hello, Nack, ProxyMessage, TlsFileError,
    decode_delta, encode_keys,
};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::mpsc;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Backoff between rounds over every controller address.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The wait after `failed_rounds` rounds in a row: doubling from `min`, capped at `max`,
    /// then a random 50–100 % of that so a fleet does not reconnect in lockstep.
    pub fn wait(&self, failed_rounds: u32) -> Duration {
        let doubled = self.min.saturating_mul(1 << failed_rounds.min(16));
        let capped = doubled.min(self.max);
        capped.mul_f64(0.5 + rand::random::<f64>() / 2.0)
    }
}

#[derive(Clone, Debug)]
pub struct StreamConfig {
    /// `http://host:port` of each controller replica, tried in turn.
    pub controllers: Vec<String>,
    /// Gateways served (`namespace/name`); empty: all of the controller's.
    pub gateways: Vec<String>,
    pub backoff: Backoff,
    /// mTLS for `https://` controller URLs.
    pub tls: Option<ClientTls>,
}

/// The stream's TLS from the proxy's flags: every controller URL must be `https://` when
/// the files are given and `http://` when they are not, so a typo never silently sends the
/// stream in the clear.
pub fn client_tls(
    controllers: &[String],
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
) -> Result<Option<ClientTls>, TlsSetupError> {
    let tls = match (ca, cert, key) {
        (Some(ca), Some(cert), Some(key)) => Some(ClientTls::load(&ca, &cert, &key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https://" } else { "http://" };
    if let Some(url) = controllers.iter().find(|u| !u.starts_with(scheme)) {
        return Err(TlsSetupError::Scheme {
            url: url.clone(),
            expected: scheme,
        });
    }
    Ok(tls)
}

#[derive(Debug, Error)]
pub enum TlsSetupError {
    #[error(transparent)]
    File(#[from] TlsFileError),
    #[error(
        "--controller {url}: expected a {expected} URL (https:// goes with --controller-ca, --client-cert and --client-key)"
    )]
    Scheme { url: String, expected: &'static str },
}

#[derive(Debug, Error)]
pub enum StreamError {
    #[error("controller {url}: connecting: {reason}")]
    Connect { url: String, reason: String },
    #[error("controller {url}: {status}")]
    Status { url: String, status: tonic::Status },
    #[error("controller {url}: the stream ended")]
    Ended { url: String },
}

/// What the proxy acknowledged last: the controller session and the version there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Held {
    session: String,
    version: u64,
}

/// Keeps the store fed from the controllers; runs until dropped.
pub async fn run(store: Arc<ConfigStore>, config: StreamConfig) {
    let mut held = Held::default();
    let mut failed_rounds = 0;
    loop {
        let mut progressed = false;
        for url in &config.controllers {
            let mut applied = false;
            let tls = config.tls.as_ref();
            let result = follow(&store, url, tls, &config.gateways, &mut held, &mut applied).await;
            progressed |= applied;
            match result {
                Err(StreamError::Status { status, .. })
                    if status.code() == tonic::Code::Unavailable =>
                {
                    tracing::info!(%url, "controller unavailable: {}", status.message());
                }
                Err(e) => tracing::warn!("{e}"),
                Ok(()) => {}
            }
        }
        failed_rounds = if progressed { 0 } else { failed_rounds + 1 };
        let wait = config.backoff.wait(failed_rounds);
        tracing::debug!(?wait, "every controller tried; waiting");
        tokio::time::sleep(wait).await;
    }
}

/// One stream to one controller, until it fails. `applied` tells whether any update got
/// through (the caller then resets its backoff).
async fn follow(
    store: &ConfigStore,
    url: &str,
    tls: Option<&ClientTls>,
    gateways: &[String],
    held: &mut Held,
    applied: &mut bool,
) -> Result<(), StreamError> {
    let mut client = ConfigClient::connect(url, CONNECT_TIMEOUT, tls)
        .await
        .map_err(|e| StreamError::Connect {
            url: url.to_string(),
            reason: source_chain(&e),
        })?;
    let (out, outbound) = mpsc::channel(16);
    let hello = Hello {
        instance: store.instance.to_string(),
        gateways: gateways.to_vec(),
        held_session: held.session.clone(),
        held_version: held.version,
        held_keys: encode_keys(&store.snapshot().keys()),
    };
    // Queued before the call: the controller answers the call only after the hello.
    out.send(message(Kind::Hello(hello)))
        .await
        .map_err(|_| ended(url))?;
    let outbound = futures_util::stream::unfold(outbound, |mut rx| async move {
        rx.recv().await.map(|m| (m, rx))
    });
    let status = |status| StreamError::Status {
        url: url.to_string(),
        status,
    };
    let mut updates = client.open(outbound).await.map_err(status)?;
    tracing::info!(%url, "config stream open");
    while let Some(update) = updates.message().await.map_err(status)? {
        let answer = apply(store, &update, url);
        if matches!(answer, Kind::Ack(_)) {
            *held = Held {
                session: update.session.clone(),
                version: update.version,
            };
            *applied = true;
        }
        out.send(message(answer)).await.map_err(|_| ended(url))?;
    }
    Err(ended(url))
}

/// Applies one update whole or not at all; the answer to send back.
fn apply(store: &ConfigStore, update: &ConfigUpdate, url: &str) -> Kind {
    let result = decode_delta(update)
        .map_err(|e| e.to_string())
        .and_then(|delta| {
            store
                .apply(&delta)
                .map(|table_version| (delta, table_version))
                .map_err(|e| format!("config update {}: {e}", update.version))
        });
    match result {
        Ok((delta, table_version)) => {
            tracing::info!(
                %url,
                version = update.version,
                snapshot = update.snapshot,
                upserts = delta.upserts.len(),
                removals = delta.removals.len(),
                table_version,
                "config update applied"
            );
            Kind::Ack(Ack {
                version: update.version,
            })
        }
        Err(error) => {
            tracing::warn!(%url, version = update.version, "config update rejected: {error}");
            Kind::Nack(Nack {
                version: update.version,
                error,
            })
        }
    }
}

fn message(kind: Kind) -> ProxyMessage {
    ProxyMessage { kind: Some(kind) }
}

fn ended(url: &str) -> StreamError {
    StreamError::Ended {
        url: url.to_string(),
    }
}

/// tonic's transport errors say little at the top ("transport error"); the cause is below.
fn source_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_is_capped_and_jittered() {
        let b = Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        for (rounds, full) in [(0, 100), (1, 200), (3, 800), (5, 2000), (40, 2000)] {
            for _ in 0..50 {
                let w = b.wait(rounds).as_millis();
                assert!(w >= full / 2 && w <= full, "round {rounds}: {w} ms");
            }
        }
        let spread: std::collections::BTreeSet<u128> =
            (0..50).map(|_| b.wait(4).as_millis()).collect();
        assert!(spread.len() > 5, "no jitter: {spread:?}");
    }

    #[test]
    fn controller_urls_must_match_the_tls_flags() {
        let https = vec!["https://ctl:18000".to_string()];
        let err = client_tls(&https, None, None, None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("https://ctl:18000") && err.contains("http://"),
            "{err}"
        );

        let dir = std::env::temp_dir().join(format!("gh-stream-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem = dir.join("x.pem");
        std::fs::write(
            &pem,
            "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let http = vec!["http://ctl:18000".to_string()];
        let files = || (Some(pem.clone()), Some(pem.clone()), Some(pem.clone()));
        let (ca, cert, key) = files();
        let err = client_tls(&http, ca, cert, key).unwrap_err().to_string();
        assert!(err.contains("expected a https://"), "{err}");
        let (ca, cert, key) = files();
        assert!(client_tls(&https, ca, cert, key).unwrap().is_some());

        let missing = dir.join("missing.pem");
        let err = client_tls(&https, Some(missing), Some(pem.clone()), Some(pem))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("--controller-ca ") && err.contains("missing.pem"),
            "{err}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
