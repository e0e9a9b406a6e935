//! Checks a model resource before the proxy applies it: a bad resource rejects the whole
//! delta, so the proxy never serves half of a change.
//!
//! Field paths use the Gateway API spelling (`backendRefs`, `requestRedirect.statusCode`)
//! rather than the model's, so a message reads the same whether the resource was translated
//! from YAML or sent over the wire, and translation can prefix them with `spec.`.

mod route;

use crate::hostname::is_valid_hostname;
use crate::model::{
    Backend, Certificate, Listener, ListenerProtocol, Resource, ResourceKey, TlsMode,
};
use thiserror::Error;

/// Why a resource was refused, naming the resource and the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{key}: {field}: {reason}")]
pub struct InvalidResource {
    pub key: ResourceKey,
    pub field: String,
    pub reason: String,
}

/// A failed check before the resource key is attached.
pub(crate) struct FieldError {
    pub field: String,
    pub reason: String,
}

pub(crate) type Check = Result<(), FieldError>;

pub(crate) fn fail(field: impl Into<String>, reason: impl Into<String>) -> Check {
    Err(FieldError {
        field: field.into(),
        reason: reason.into(),
    })
}

pub fn validate(resource: &Resource) -> Result<(), InvalidResource> {
    let result = match resource {
        Resource::Listener(l) => listener(l),
        Resource::HttpRoute(r) => route::http_route(r),
        Resource::Backend(b) => backend(b),
        Resource::Certificate(c) => certificate(c),
        Resource::GrpcRoute(r) => route::grpc_route(r),
        Resource::TlsRoute(r) => route::tls_route(r),
    };
    result.map_err(|e| InvalidResource {
        key: resource.key(),
        field: e.field,
        reason: e.reason,
    })
}

fn listener(l: &Listener) -> Check {
    if l.port == 0 {
        return fail("port", "port must not be 0");
    }
    if let Some(h) = &l.hostname
        && !is_valid_hostname(h)
    {
        return fail("hostname", format!("invalid hostname {h:?}"));
    }
    match (l.protocol, &l.tls) {
        (ListenerProtocol::Http | ListenerProtocol::Tcp, Some(_)) => {
            fail("tls", "tls is only allowed on HTTPS and TLS listeners")
        }
        (ListenerProtocol::Https | ListenerProtocol::Tls, None) => {
            fail("tls", "HTTPS and TLS listeners need a tls block")
        }
        (ListenerProtocol::Https, Some(tls)) if tls.mode == TlsMode::Passthrough => fail(
            "tls.mode",
            "HTTPS listeners terminate TLS; use a TLS listener for Passthrough",
        ),
        (_, Some(tls)) if tls.mode == TlsMode::Terminate && tls.certificates.is_empty() => fail(
            "tls.certificateRefs",
            "terminating TLS needs at least one certificate",
        ),
        _ => Ok(()),
    }
}

fn backend(b: &Backend) -> Check {
    match b.endpoints.iter().position(|e| e.port() == 0) {
        Some(i) => fail(format!("endpoints[{i}]"), "endpoint port must not be 0"),
        None => Ok(()),
    }
}

fn certificate(c: &Certificate) -> Check {
    for (field, pem) in [("certPem", &c.cert_pem), ("keyPem", &c.key_pem)] {
        if pem.trim().is_empty() {
            return fail(field, "PEM is empty");
        }
        if !pem.contains("-----BEGIN ") {
            return fail(field, "no PEM block found");
        }
    }
    if let Some(attachment) = &c.attachment {
        if attachment.listeners.is_empty() {
            return fail("attachment.listeners", "list at least one listener");
        }
        for (i, h) in attachment.hostnames.iter().enumerate() {
            if !crate::hostname::is_valid_hostname(h) {
                return fail(
                    format!("attachment.hostnames[{i}]"),
                    format!(
                        "{h:?} is not a lowercase hostname (a leading *. is the only wildcard)"
                    ),
                );
            }
        }
        if attachment.hostnames.is_empty() {
            return fail("attachment.hostnames", "list at least one hostname");
        }
    }
    Ok(())
}

/// RFC 9110 `token`: header names and methods.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header value the proxy can send without enabling response splitting.
pub(crate) fn is_header_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{CertificateKey, ListenerKey, ListenerTls};
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    fn http_listener() -> Listener {
        Listener {
            key: ListenerKey::new("ns", "gw", "http"),
            version: 1,
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 80,
            protocol: ListenerProtocol::Http,
            hostname: None,
            tls: None,
        }
    }

    fn field_of(r: Resource) -> String {
        validate(&r).unwrap_err().field
    }

    #[test]
    fn good_listener_passes() {
        assert!(validate(&Resource::Listener(http_listener())).is_ok());
    }

    #[test]
    fn listener_port_zero() {
        let l = Listener {
            port: 0,
            ..http_listener()
        };
        let err = validate(&Resource::Listener(l)).unwrap_err();
        assert_eq!(err.field, "port");
        assert_eq!(
            err.to_string(),
            "Listener ns/gw/http: port: port must not be 0"
        );
    }

    #[test]
    fn listener_bad_hostname() {
        let l = Listener {
            hostname: Some("Bad_Host".into()),
            ..http_listener()
        };
        assert_eq!(field_of(Resource::Listener(l)), "hostname");
    }

    #[test]
    fn listener_tls_rules() {
        let tls = |mode, certs: &[&str]| {
            Some(ListenerTls {
                mode,
                certificates: certs.iter().map(|c| CertificateKey::from(*c)).collect(),
            })
        };
        let cases = [
            (
                ListenerProtocol::Http,
                tls(TlsMode::Terminate, &["ns/c"]),
                Some("tls"),
            ),
            (ListenerProtocol::Https, None, Some("tls")),
            (
                ListenerProtocol::Https,
                tls(TlsMode::Passthrough, &[]),
                Some("tls.mode"),
            ),
            (
                ListenerProtocol::Https,
                tls(TlsMode::Terminate, &[]),
                Some("tls.certificateRefs"),
            ),
            (
                ListenerProtocol::Https,
                tls(TlsMode::Terminate, &["ns/c"]),
                None,
            ),
            (ListenerProtocol::Tls, tls(TlsMode::Passthrough, &[]), None),
            (ListenerProtocol::Tcp, None, None),
        ];
        for (protocol, tls, want) in cases {
            let l = Listener {
                protocol,
                tls: tls.clone(),
                ..http_listener()
            };
            let got = validate(&Resource::Listener(l)).err().map(|e| e.field);
            assert_eq!(got.as_deref(), want, "{protocol:?} {tls:?}");
        }
    }

    #[test]
    fn backend_endpoint_port_zero() {
        let b = Backend {
            key: "ns/svc:80".into(),
            version: 0,
            app_protocol: Default::default(),
            endpoints: vec![
                "10.0.0.1:8080".parse::<SocketAddr>().unwrap(),
                "10.0.0.2:0".parse().unwrap(),
            ],
        };
        assert_eq!(field_of(Resource::Backend(b)), "endpoints[1]");
    }

    #[test]
    fn certificate_pem_checks() {
        let pem = "-----BEGIN CERTIFICATE-----\nMII\n-----END CERTIFICATE-----\n";
        let cert = |c: &str, k: &str| Certificate {
            key: "ns/tls".into(),
            version: 0,
            cert_pem: c.into(),
            key_pem: k.into(),
            attachment: None,
        };
        assert!(validate(&Resource::Certificate(cert(pem, pem))).is_ok());
        assert_eq!(field_of(Resource::Certificate(cert("", pem))), "certPem");
        assert_eq!(field_of(Resource::Certificate(cert(pem, "  \n"))), "keyPem");
        assert_eq!(
            field_of(Resource::Certificate(cert("junk", pem))),
            "certPem"
        );
    }

    #[test]
    fn tokens_and_header_values() {
        assert!(is_token("X-Forwarded-For"));
        assert!(is_token("GET"));
        assert!(!is_token(""));
        assert!(!is_token("bad header"));
        assert!(!is_token("bad:header"));
        assert!(is_header_value("a b\tc"));
        assert!(!is_header_value("a\r\nb"));
        assert!(!is_header_value("a\0"));
    }
}
