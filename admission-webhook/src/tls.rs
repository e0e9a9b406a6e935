//! The serving certificate, read from files that cert-manager or a Secret volume rewrites
//! in place, and swapped under live connections without a restart.

use crate::metrics::Metrics;
use arc_swap::ArcSwap;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: no PEM CERTIFICATE block")]
    NoCertificate { path: PathBuf },
    #[error("{path}: {what}: {source}")]
    Pem {
        path: PathBuf,
        what: &'static str,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path}: private key: {source}")]
    Key {
        path: PathBuf,
        source: rustls::Error,
    },
    #[error("{cert} and {key}: the key does not belong to the certificate: {source}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        source: rustls::Error,
    },
    #[error("TLS server configuration: {0}")]
    Config(rustls::Error),
}

#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl CertFiles {
    fn read(&self) -> Result<(Vec<u8>, Vec<u8>), TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| TlsError::Read {
                path: path.to_path_buf(),
                source,
            })
        };
        Ok((read(&self.cert)?, read(&self.key)?))
    }

    fn parse(&self, cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey, TlsError> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| TlsError::Pem {
                path: self.cert.clone(),
                what: "certificate chain",
                source,
            })?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate {
                path: self.cert.clone(),
            });
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|source| TlsError::Pem {
            path: self.key.clone(),
            what: "private key",
            source,
        })?;
        let signing = provider()
            .key_provider
            .load_private_key(key)
            .map_err(|source| TlsError::Key {
                path: self.key.clone(),
                source,
            })?;
        let certified = CertifiedKey::new(chain, signing);
        // Writers replace the two files one after the other; a half-written pair must be
        // refused, not served with a key that cannot sign for the certificate.
        certified
            .keys_match()
            .map_err(|source| TlsError::Mismatch {
                cert: self.cert.clone(),
                key: self.key.clone(),
                source,
            })?;
        Ok(certified)
    }
}

pub fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Hands every handshake the current pair. Swapping the `Arc` leaves connections already
/// established on the old certificate untouched.
#[derive(Debug)]
pub struct ServingCert {
    current: ArcSwap<CertifiedKey>,
}

impl ResolvesServerCert for ServingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// Loads the pair once (an error here stops startup) and keeps the files' last contents so
/// the poller can tell a change.
pub struct CertReloader {
    files: CertFiles,
    serving: Arc<ServingCert>,
    seen: (Vec<u8>, Vec<u8>),
}

impl CertReloader {
    pub fn load(files: CertFiles) -> Result<Self, TlsError> {
        let seen = files.read()?;
        let key = files.parse(&seen.0, &seen.1)?;
        Ok(Self {
            files,
            serving: Arc::new(ServingCert {
                current: ArcSwap::from_pointee(key),
            }),
            seen,
        })
    }

    pub fn serving(&self) -> Arc<ServingCert> {
        self.serving.clone()
    }

    pub fn server_config(&self) -> Result<rustls::ServerConfig, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(self.serving());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    /// Checks the files once. Content, not mtime, decides: kubelet swaps Secret volumes by
    /// symlink (the target's mtime can go backwards) and two writes in one second share an
    /// mtime. Reading two small files a second costs nothing.
    pub fn poll(&mut self, metrics: &Metrics) {
        let contents = match self.files.read() {
            Ok(contents) => contents,
            Err(e) => {
                // Mid-rotation a file can be briefly missing; keep serving and look again.
                tracing::debug!(error = %e, "serving certificate not readable; keeping the current one");
                return;
            }
        };
        if contents == self.seen {
            return;
        }
        let parsed = self.files.parse(&contents.0, &contents.1);
        // Remembered even when bad, so a broken pair is reported once, not every second.
        self.seen = contents;
        match parsed {
            Ok(key) => {
                self.serving.current.store(Arc::new(key));
                metrics.cert_reloaded(true);
                tracing::info!(cert = %self.files.cert.display(), "serving certificate reloaded");
            }
            Err(e) => {
                metrics.cert_reloaded(false);
                tracing::warn!(error = %e, "new serving certificate refused; the previous one keeps serving");
            }
        }
    }

    pub async fn watch(mut self, every: Duration, metrics: Arc<Metrics>) {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.poll(&metrics);
        }
    }
}
