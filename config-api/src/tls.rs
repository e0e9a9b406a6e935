//! Mutual TLS for the config stream. A snapshot carries every certificate's private key, so
//! in a shared cluster the controller must prove who it is and must serve only proxies that
//! prove who they are: it presents a server certificate and requires a client certificate
//! chained to the CA the operator names; each proxy verifies the controller against its CA.

use std::path::{Path, PathBuf};
use thiserror::Error;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

#[derive(Debug, Error)]
#[error("{flag} {}: {reason}", path.display())]
pub struct TlsFileError {
    pub flag: &'static str,
    pub path: PathBuf,
    pub reason: String,
}

/// Reads a PEM file named by `flag`, refusing one that holds no PEM block.
pub fn read_pem(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsFileError> {
    let error = |reason: String| TlsFileError {
        flag,
        path: path.to_path_buf(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    if !pem.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(error("no PEM block in the file".to_string()));
    }
    Ok(pem)
}

/// The controller's side: its identity and the CA proxies' certificates must chain to.
#[derive(Clone)]
pub struct ServerTls {
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
    pub client_ca: Vec<u8>,
}

impl ServerTls {
    pub fn load(cert: &Path, key: &Path, client_ca: &Path) -> Result<Self, TlsFileError> {
        Ok(ServerTls {
            cert: read_pem("--config-tls-cert", cert)?,
            key: read_pem("--config-tls-key", key)?,
            client_ca: read_pem("--config-client-ca", client_ca)?,
        })
    }

    /// Client certificates are required, not optional: a proxy without one is refused in
    /// the handshake.
    pub fn config(&self) -> ServerTlsConfig {
        ServerTlsConfig::new()
            .identity(Identity::from_pem(&self.cert, &self.key))
            .client_ca_root(Certificate::from_pem(&self.client_ca))
            .client_auth_optional(false)
    }
}

/// A proxy's side: the CA the controller's certificate must chain to, and its own identity.
#[derive(Clone)]
pub struct ClientTls {
    pub ca: Vec<u8>,
    pub cert: Vec<u8>,
    pub key: Vec<u8>,
}

impl ClientTls {
    pub fn load(ca: &Path, cert: &Path, key: &Path) -> Result<Self, TlsFileError> {
        Ok(ClientTls {
            ca: read_pem("--controller-ca", ca)?,
            cert: read_pem("--client-cert", cert)?,
            key: read_pem("--client-key", key)?,
        })
    }

    /// The controller is checked against the URL's host name or IP address.
    pub fn config(&self) -> ClientTlsConfig {
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca))
            .identity(Identity::from_pem(&self.cert, &self.key))
    }
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls { .. }")
    }
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientTls { .. }")
    }
}
