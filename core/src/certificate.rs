//! Loads a certificate and its private key from PEM into what a TLS server serves, after the
//! checks that decide whether it may replace the version already serving: both parse, the
//! key belongs to the certificate, and the certificate is valid now.
//!
//! Translation (to report a bad Secret on its listener) and the proxy (to refuse a bad delta)
//! run the same checks, so a certificate one accepts the other accepts too.

use crate::model::Certificate;
use rustls::crypto::ring::sign::any_supported_type;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use std::sync::Arc;
use thiserror::Error;
use x509_parser::extensions::GeneralName;

/// Why a certificate was refused: the field (`certPem` or `keyPem`, named as in the model's
/// JSON, or `tls.crt` / `tls.key` once translation relabels it) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {reason}")]
pub struct CertificateError {
    pub field: &'static str,
    pub reason: String,
}

impl CertificateError {
    /// The certificate is well-formed but past its notAfter.
    pub fn is_expired(&self) -> bool {
        self.field == CERT_FIELD && self.reason.starts_with(EXPIRED)
    }
}

const EXPIRED: &str = "certificate expired at ";

pub const CERT_FIELD: &str = "certPem";
pub const KEY_FIELD: &str = "keyPem";

fn cert_error(reason: impl Into<String>) -> CertificateError {
    CertificateError {
        field: CERT_FIELD,
        reason: reason.into(),
    }
}

fn key_error(reason: impl Into<String>) -> CertificateError {
    CertificateError {
        field: KEY_FIELD,
        reason: reason.into(),
    }
}

/// A certificate ready to serve. Only the DER chain and the parsed key are kept (no PEM
/// text), so thousands of tenants' certificates stay small.
#[derive(Debug)]
pub struct LoadedCertificate {
    pub certified: Arc<CertifiedKey>,
    /// Lowercased DNS names the leaf covers (SANs, or the subject CN when it has no SAN);
    /// wildcards kept as `*.example.com`.
    pub names: Vec<String>,
    /// Unix seconds.
    pub not_after: i64,
}

/// Parses and checks `cert`; `now` is Unix seconds.
pub fn load(cert: &Certificate, now: i64) -> Result<LoadedCertificate, CertificateError> {
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| cert_error(format!("PEM does not parse: {e}")))?;
    let Some(leaf) = chain.first() else {
        return Err(cert_error("no CERTIFICATE block found"));
    };
    let (names, not_before, not_after) = inspect_leaf(leaf)?;
    if now > not_after {
        return Err(cert_error(format!(
            "{EXPIRED}{} (Unix time {not_after})",
            rfc3339(not_after)
        )));
    }
    if now < not_before {
        return Err(cert_error(format!(
            "certificate is not valid before {} (Unix time {not_before})",
            rfc3339(not_before)
        )));
    }
    let key = PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            key_error("no PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block found")
        }
        e => key_error(format!("PEM does not parse: {e}")),
    })?;
    let signing = any_supported_type(&key)
        .map_err(|e| key_error(format!("unsupported or malformed private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => {}
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            return Err(key_error(
                "private key does not match the certificate's public key",
            ));
        }
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(e) => return Err(cert_error(format!("certificate does not parse: {e}"))),
    }
    Ok(LoadedCertificate {
        certified: Arc::new(certified),
        names,
        not_after,
    })
}

type LeafFacts = (Vec<String>, i64, i64);

fn inspect_leaf(leaf: &CertificateDer<'_>) -> Result<LeafFacts, CertificateError> {
    let (_, x509) = x509_parser::parse_x509_certificate(leaf.as_ref())
        .map_err(|e| cert_error(format!("X.509 does not parse: {e}")))?;
    let mut names: Vec<String> = match x509.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some(d.trim_end_matches('.').to_ascii_lowercase()),
                _ => None,
            })
            .collect(),
        Ok(None) => Vec::new(),
        Err(e) => return Err(cert_error(format!("subjectAltName does not parse: {e}"))),
    };
    if names.is_empty() {
        names.extend(
            x509.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .map(|cn| cn.to_ascii_lowercase()),
        );
    }
    names.sort();
    names.dedup();
    let validity = x509.validity();
    Ok((
        names,
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    ))
}

/// Whether a certificate naming `names` (as [`LoadedCertificate::names`]) is valid for
/// `hostname` (lowercase; exact or `*.` wildcard). A wildcard SAN covers one label, as a
/// TLS client checks it; a wildcard hostname needs the same wildcard SAN, since no exact
/// name covers every host it stands for.
pub fn covers<S: AsRef<str>>(names: &[S], hostname: &str) -> bool {
    names.iter().any(|n| {
        let n = n.as_ref();
        if n == hostname {
            return true;
        }
        match (n.strip_prefix("*."), hostname.split_once('.')) {
            (Some(suffix), Some((label, parent))) => label != "*" && parent == suffix,
            _ => false,
        }
    })
}

/// Unix seconds as a UTC date for messages and status (no time-zone database needed).
pub fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Now, in Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};

    fn make(names: &[&str], not_after: Option<(i32, u8, u8)>) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        if let Some((y, m, d)) = not_after {
            params.not_before = rcgen::date_time_ymd(y - 1, m, d);
            params.not_after = rcgen::date_time_ymd(y, m, d);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn model(cert_pem: &str, key_pem: &str) -> Certificate {
        Certificate {
            key: "ns/c".into(),
            version: 1,
            cert_pem: cert_pem.into(),
            key_pem: key_pem.into(),
            attachment: None,
        }
    }

    #[test]
    fn good_certificate_loads_with_its_names() {
        let (c, k) = make(&["App.Example.com", "*.example.org"], None);
        let loaded = load(&model(&c, &k), unix_now()).unwrap();
        assert_eq!(loaded.names, ["*.example.org", "app.example.com"]);
        assert_eq!(loaded.certified.cert.len(), 1);
    }

    #[test]
    fn garbage_is_refused_per_field() {
        let (c, k) = make(&["a.example.com"], None);
        let err = load(&model("not a pem", &k), unix_now()).unwrap_err();
        assert_eq!(err.field, CERT_FIELD);
        let broken = c.replace("MII", "MIX");
        let err = load(&model(&broken, &k), unix_now()).unwrap_err();
        assert_eq!(err.field, CERT_FIELD, "{err}");
        let err = load(&model(&c, "junk"), unix_now()).unwrap_err();
        assert_eq!(err.field, KEY_FIELD);
        assert!(err.reason.contains("no PRIVATE KEY"), "{err}");
    }

    #[test]
    fn key_of_another_certificate_is_refused() {
        let (c, _) = make(&["a.example.com"], None);
        let (_, other_key) = make(&["a.example.com"], None);
        let err = load(&model(&c, &other_key), unix_now()).unwrap_err();
        assert_eq!(err.field, KEY_FIELD);
        assert_eq!(
            err.reason,
            "private key does not match the certificate's public key"
        );
    }

    #[test]
    fn expired_certificate_is_refused_with_its_date() {
        let (c, k) = make(&["a.example.com"], Some((2020, 1, 2)));
        let err = load(&model(&c, &k), unix_now()).unwrap_err();
        assert_eq!(err.field, CERT_FIELD);
        assert!(err.is_expired());
        assert!(
            err.reason
                .starts_with("certificate expired at 2020-01-02T00:00:00Z"),
            "{err}"
        );
        // The same certificate was fine while it was valid.
        assert!(load(&model(&c, &k), 1_570_000_000).is_ok());
    }

    #[test]
    fn coverage_follows_tls_client_rules() {
        let names = ["*.example.com", "shop.example.org"];
        assert!(covers(&names, "app.example.com"));
        assert!(covers(&names, "*.example.com"));
        assert!(covers(&names, "shop.example.org"));
        assert!(
            !covers(&names, "a.b.example.com"),
            "a wildcard covers one label"
        );
        assert!(!covers(&names, "example.com"));
        assert!(
            !covers(&names, "*.example.org"),
            "no exact name covers a wildcard"
        );
        assert!(!covers(&names, "www.example.org"));
    }

    #[test]
    fn dates_render_as_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
