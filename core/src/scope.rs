//! What one proxy is sent: the part of the desired config that serves its Gateways.
//!
//! A proxy serving Gateway A must never hold Gateway B's routes or certificates (they may
//! belong to another tenant), and sending it only its share keeps its table and its
//! updates small.

use crate::model::{
    BackendKey, BackendTarget, HttpFilter, ListenerKey, Resource, ResourceKey, WeightedBackend,
};
use std::collections::BTreeSet;
use std::fmt;
use thiserror::Error;

/// Persistent: a copy costs O(1) and shares every node with the original, and
/// [`crate::diff::diff`] of two versions walks only the parts that differ, so handing a
/// new version to every proxy stream costs O(what changed), not O(the table).
pub type Config = imbl::OrdMap<ResourceKey, Resource>;

/// The Gateways a proxy serves.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// Every Gateway the controller programs.
    #[default]
    All,
    /// These `(namespace, name)`s only.
    Gateways(BTreeSet<(String, String)>),
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("gateway {given:?}: expected namespace/name")]
pub struct ScopeError {
    pub given: String,
}

impl Scope {
    /// From `namespace/name` strings; none at all means [`Scope::All`].
    pub fn parse<S: AsRef<str>>(gateways: &[S]) -> Result<Scope, ScopeError> {
        if gateways.is_empty() {
            return Ok(Scope::All);
        }
        gateways
            .iter()
            .map(|g| {
                let g = g.as_ref();
                match g.split_once('/') {
                    Some((ns, name))
                        if !ns.is_empty() && !name.is_empty() && !name.contains('/') =>
                    {
                        Ok((ns.to_string(), name.to_string()))
                    }
                    _ => Err(ScopeError {
                        given: g.to_string(),
                    }),
                }
            })
            .collect::<Result<_, _>>()
            .map(Scope::Gateways)
    }

    /// Whether `namespace/gateway` is served.
    pub fn serves(&self, namespace: &str, gateway: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Gateways(set) => set.contains(&(namespace.to_string(), gateway.to_string())),
        }
    }

    /// Whether the Gateway a listener key names is served.
    pub fn serves_listener(&self, listener: &ListenerKey) -> bool {
        let mut parts = listener.0.splitn(3, '/');
        match (parts.next(), parts.next()) {
            (Some(ns), Some(gateway)) => self.serves(ns, gateway),
            _ => false,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::All => f.write_str("all gateways"),
            Scope::Gateways(set) => {
                let names: Vec<String> = set.iter().map(|(ns, n)| format!("{ns}/{n}")).collect();
                f.write_str(&names.join(","))
            }
        }
    }
}

/// The listeners of the scope's Gateways, the routes attached to any of them, and the
/// backends and certificates those reference. Resources are passed on unchanged.
pub fn select(config: &Config, scope: &Scope) -> Config {
    if *scope == Scope::All {
        return config.clone();
    }
    let mut out = Config::new();
    let mut backends: BTreeSet<BackendKey> = BTreeSet::new();
    let mut certificates = BTreeSet::new();
    for (key, resource) in config {
        let keep = match resource {
            Resource::Listener(l) => {
                let served = scope.serves_listener(&l.key);
                if served {
                    let certs = l.tls.iter().flat_map(|t| t.certificates.iter());
                    certificates.extend(certs.cloned());
                }
                served
            }
            Resource::HttpRoute(r) => {
                let served = r.parents.iter().any(|p| scope.serves_listener(p));
                if served {
                    for rule in &r.rules {
                        collect(&mut backends, &rule.backends, &rule.filters);
                    }
                }
                served
            }
            Resource::GrpcRoute(r) => {
                let served = r.parents.iter().any(|p| scope.serves_listener(p));
                if served {
                    for rule in &r.rules {
                        collect(&mut backends, &rule.backends, &rule.filters);
                    }
                }
                served
            }
            Resource::TlsRoute(r) => {
                let served = r.parents.iter().any(|p| scope.serves_listener(p));
                if served {
                    for rule in &r.rules {
                        collect(&mut backends, &rule.backends, &[]);
                    }
                }
                served
            }
            // A tenant's certificate names the listeners it attaches to, like a route.
            Resource::Certificate(c) => c
                .attachment
                .as_ref()
                .is_some_and(|a| a.listeners.iter().any(|l| scope.serves_listener(l))),
            // Decided once every referrer has been seen.
            Resource::Backend(_) => false,
        };
        if keep {
            out.insert(key.clone(), resource.clone());
        }
    }
    let referenced = backends
        .into_iter()
        .map(ResourceKey::Backend)
        .chain(certificates.into_iter().map(ResourceKey::Certificate));
    for key in referenced {
        if let Some(resource) = config.get(&key) {
            out.insert(key, resource.clone());
        }
    }
    out
}

/// Backends a rule sends to or mirrors to.
fn collect(out: &mut BTreeSet<BackendKey>, backends: &[WeightedBackend], filters: &[HttpFilter]) {
    let mirrors = |filters: &[HttpFilter]| -> Vec<BackendKey> {
        filters
            .iter()
            .filter_map(|f| match f {
                HttpFilter::RequestMirror(m) => match &m.backend {
                    BackendTarget::Service(k) => Some(k.clone()),
                    BackendTarget::Invalid(_) => None,
                },
                _ => None,
            })
            .collect()
    };
    out.extend(mirrors(filters));
    for b in backends {
        if let BackendTarget::Service(k) = &b.target {
            out.insert(k.clone());
        }
        out.extend(mirrors(&b.filters));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn listener(gw: &str, name: &str, cert: Option<&str>) -> Resource {
        Resource::Listener(Listener {
            key: ListenerKey::new("ns", gw, name),
            version: 1,
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 443,
            protocol: ListenerProtocol::Https,
            hostname: None,
            tls: cert.map(|c| ListenerTls {
                mode: TlsMode::Terminate,
                certificates: vec![CertificateKey(format!("ns/{c}"))],
            }),
        })
    }

    fn to(service: &str) -> WeightedBackend {
        WeightedBackend {
            target: BackendTarget::Service(BackendKey::new("ns", service, 80)),
            weight: 1,
            filters: vec![],
        }
    }

    fn http_route(name: &str, parents: &[(&str, &str)], rule: HttpRule) -> Resource {
        Resource::HttpRoute(std::sync::Arc::new(HttpRoute {
            key: RouteKey::new("ns", name),
            version: 1,
            created_ms: 0,
            hostnames: vec![],
            parents: parents
                .iter()
                .map(|(gw, l)| ListenerKey::new("ns", gw, l))
                .collect(),
            rules: vec![rule],
        }))
    }

    fn backend(service: &str) -> Resource {
        Resource::Backend(Backend {
            key: BackendKey::new("ns", service, 80),
            version: 0,
            app_protocol: AppProtocol::Http1,
            endpoints: vec![],
        })
    }

    fn certificate(name: &str) -> Resource {
        Resource::Certificate(Certificate {
            key: CertificateKey(format!("ns/{name}")),
            version: 0,
            cert_pem: "c".into(),
            key_pem: "k".into(),
            attachment: None,
        })
    }

    /// Gateways a and b, each with a listener, a certificate, a route and a backend; one
    /// route attached to both; a mirror target only a's route uses.
    fn two_gateways() -> Config {
        let mirrored = HttpRule {
            backends: vec![to("a-svc")],
            filters: vec![HttpFilter::RequestMirror(RequestMirror {
                backend: BackendTarget::Service(BackendKey::new("ns", "a-mirror", 80)),
                ppm: 1_000_000,
            })],
            ..HttpRule::default()
        };
        let shared = HttpRule {
            backends: vec![to("shared-svc")],
            ..HttpRule::default()
        };
        let b_only = HttpRule {
            backends: vec![to("b-svc")],
            ..HttpRule::default()
        };
        [
            listener("a", "https", Some("a-cert")),
            listener("b", "https", Some("b-cert")),
            certificate("a-cert"),
            certificate("b-cert"),
            http_route("a-route", &[("a", "https")], mirrored),
            http_route("b-route", &[("b", "https")], b_only),
            http_route("shared", &[("a", "https"), ("b", "https")], shared),
            backend("a-svc"),
            backend("a-mirror"),
            backend("b-svc"),
            backend("shared-svc"),
            backend("unused"),
        ]
        .into_iter()
        .map(|r| (r.key(), r))
        .collect()
    }

    fn names(config: &Config) -> Vec<String> {
        config.keys().map(ToString::to_string).collect()
    }

    #[test]
    fn a_gateway_gets_its_own_share_and_nothing_of_the_other() {
        let scope = Scope::parse(&["ns/a"]).unwrap();
        let got = select(&two_gateways(), &scope);
        assert_eq!(
            names(&got),
            [
                "Listener ns/a/https",
                "HTTPRoute ns/a-route",
                "HTTPRoute ns/shared",
                "Backend ns/a-mirror:80",
                "Backend ns/a-svc:80",
                "Backend ns/shared-svc:80",
                "Certificate ns/a-cert",
            ]
        );
        // Passed on unchanged: a shared route keeps both parents.
        let shared = ResourceKey::HttpRoute(RouteKey::new("ns", "shared"));
        assert_eq!(got[&shared], two_gateways()[&shared]);
    }

    #[test]
    fn the_other_gateway_never_sees_the_first_ones_resources() {
        let got = select(&two_gateways(), &Scope::parse(&["ns/b"]).unwrap());
        let shown = names(&got).join(" ");
        for private in ["ns/a/", "a-route", "a-cert", "a-svc", "a-mirror"] {
            assert!(!shown.contains(private), "{private} leaked into {shown}");
        }
        assert!(shown.contains("b-cert") && shown.contains("HTTPRoute ns/shared"));
    }

    #[test]
    fn all_and_both_gateways_get_everything_referenced() {
        let config = two_gateways();
        assert_eq!(select(&config, &Scope::All), config);
        let both = select(&config, &Scope::parse(&["ns/a", "ns/b"]).unwrap());
        let mut expected = config.clone();
        expected.remove(&ResourceKey::Backend(BackendKey::new("ns", "unused", 80)));
        assert_eq!(both, expected);
    }

    #[test]
    fn an_unknown_gateway_gets_nothing() {
        let got = select(&two_gateways(), &Scope::parse(&["other/a"]).unwrap());
        assert!(got.is_empty(), "{:?}", names(&got));
    }

    #[test]
    fn tls_and_grpc_routes_bring_their_backends() {
        let mut config = two_gateways();
        let tls = Resource::TlsRoute(TlsRoute {
            key: RouteKey::new("ns", "t"),
            version: 0,
            created_ms: 0,
            hostnames: vec![],
            parents: vec![ListenerKey::new("ns", "b", "https")],
            rules: vec![TlsRule {
                name: None,
                backends: vec![to("unused")],
            }],
        });
        config.insert(tls.key(), tls);
        let got = select(&config, &Scope::parse(&["ns/b"]).unwrap());
        assert!(got.contains_key(&ResourceKey::Backend(BackendKey::new("ns", "unused", 80))));
        let a = select(&config, &Scope::parse(&["ns/a"]).unwrap());
        assert!(!a.contains_key(&ResourceKey::TlsRoute(RouteKey::new("ns", "t"))));
    }

    #[test]
    fn malformed_gateway_names_are_refused() {
        assert_eq!(Scope::parse::<&str>(&[]).unwrap(), Scope::All);
        for bad in ["a", "/a", "a/", "a/b/c"] {
            assert_eq!(
                Scope::parse(&[bad]).unwrap_err().to_string(),
                format!("gateway {bad:?}: expected namespace/name")
            );
        }
    }

    #[test]
    fn tenant_certificates_follow_the_listeners_they_attach_to() {
        let attached = |name: &str, gw: &str| {
            Resource::Certificate(Certificate {
                key: CertificateKey(format!("team/tenantcertificate:{name}")),
                version: 0,
                cert_pem: "c".into(),
                key_pem: "k".into(),
                attachment: Some(CertificateAttachment {
                    listeners: vec![ListenerKey::new("ns", gw, "https")],
                    hostnames: vec![format!("{name}.example")],
                }),
            })
        };
        let config: Config = [
            listener("a", "https", None),
            listener("b", "https", None),
            attached("shop", "a"),
            attached("blog", "b"),
        ]
        .into_iter()
        .map(|r| (r.key(), r))
        .collect();
        let scope = Scope::parse(&["ns/a"]).unwrap();
        let keys: Vec<String> = select(&config, &scope)
            .keys()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            keys,
            [
                "Listener ns/a/https",
                "Certificate team/tenantcertificate:shop"
            ]
        );
    }
}
