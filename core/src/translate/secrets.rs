//! `kubernetes.io/tls` Secrets → `Certificate`s for the listeners that reference them.

use super::index::Index;
use crate::certificate::{self, CERT_FIELD};
use crate::model::{Certificate, CertificateKey};
use k8s_openapi::api::core::v1::Secret;

pub const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";
const CERT_KEY: &str = "tls.crt";
const PRIVATE_KEY: &str = "tls.key";

/// Why a certificateRef cannot be served.
pub(super) enum SecretProblem {
    /// The ref cannot point at anything servable (missing, wrong type, no data): drop it.
    Unusable(String),
    /// The Secret's content is refused: a last good version of it may keep serving.
    Invalid(String),
}

/// Why a Secret cannot hold a serving certificate at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TlsSecretError {
    #[error("type is {0}, not {TLS_SECRET_TYPE}")]
    WrongType(String),
    #[error("needs both {CERT_KEY} and {PRIVATE_KEY}")]
    MissingData,
}

/// The PEM pair of a `kubernetes.io/tls` Secret as the certificate `key`, versioned by the
/// Secret's resourceVersion; its content is not checked here (see [`certificate::load`]).
pub fn tls_secret_certificate(
    secret: &Secret,
    key: CertificateKey,
) -> Result<Certificate, TlsSecretError> {
    let kind = secret.type_.as_deref().unwrap_or("Opaque");
    if kind != TLS_SECRET_TYPE {
        return Err(TlsSecretError::WrongType(kind.to_string()));
    }
    let (Some(cert_pem), Some(key_pem)) = (field(secret, CERT_KEY), field(secret, PRIVATE_KEY))
    else {
        return Err(TlsSecretError::MissingData);
    };
    Ok(Certificate {
        key,
        version: secret
            .metadata
            .resource_version
            .as_deref()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        cert_pem,
        key_pem,
        attachment: None,
    })
}

fn field(secret: &Secret, name: &str) -> Option<String> {
    let from_data = secret
        .data
        .as_ref()
        .and_then(|d| d.get(name))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned());
    from_data.or_else(|| secret.string_data.as_ref()?.get(name).cloned())
}

/// The certificate in Secret `ns/name`, checked as the proxy will check it (now).
pub(super) fn certificate(
    index: &Index<'_>,
    ns: &str,
    name: &str,
) -> Result<Certificate, SecretProblem> {
    let Some(secret) = index.secrets.get(&(ns, name)) else {
        return Err(SecretProblem::Unusable(format!(
            "InvalidCertificateRef: Secret {ns}/{name} not found"
        )));
    };
    let key = CertificateKey(format!("{ns}/{name}"));
    let cert = tls_secret_certificate(secret, key).map_err(|e| {
        SecretProblem::Unusable(match e {
            TlsSecretError::WrongType(kind) => format!(
                "InvalidCertificateRef: Secret {ns}/{name} is of type {kind}, not {TLS_SECRET_TYPE}"
            ),
            TlsSecretError::MissingData => format!(
                "InvalidCertificateRef: Secret {ns}/{name} needs both {CERT_KEY} and {PRIVATE_KEY}"
            ),
        })
    })?;
    if let Err(e) = certificate::load(&cert, certificate::unix_now()) {
        let data_key = if e.field == CERT_FIELD {
            CERT_KEY
        } else {
            PRIVATE_KEY
        };
        return Err(SecretProblem::Invalid(format!(
            "InvalidCertificateRef: Secret {ns}/{name}: {data_key}: {}",
            e.reason
        )));
    }
    Ok(cert)
}
