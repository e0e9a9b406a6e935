//! Turns two complete configurations into the delta between them.

use crate::model::{Delta, Resource, ResourceKey};
use crate::scope::Config;
use imbl::ordmap::DiffItem;

/// Upserts what is new or changed, removes what is gone.
///
/// Upserts go dependencies first (backends and certificates, then listeners, then routes)
/// and removals dependents first, so a proxy applying the list in order never holds a
/// route whose listener or backend it has not seen.
///
/// Two versions of one [`Config`] share the nodes nobody changed, and those are skipped
/// unread: the cost is O(the change), not O(the table).
pub fn diff(old: &Config, new: &Config) -> Delta {
    let mut upserts: Vec<&Resource> = Vec::new();
    let mut removals: Vec<&ResourceKey> = Vec::new();
    for item in old.diff(new) {
        match item {
            DiffItem::Add(_, resource)
            | DiffItem::Update {
                new: (_, resource), ..
            } => upserts.push(resource),
            DiffItem::Remove(key, _) => removals.push(key),
        }
    }
    upserts.sort_by_key(|r| (upsert_rank(&r.key()), r.key()));
    removals.sort_by_key(|k| (removal_rank(k), *k));

    Delta {
        upserts: upserts.into_iter().cloned().collect(),
        removals: removals.into_iter().cloned().collect(),
    }
}

/// Sorts removals the way [`diff`] does: dependents first.
pub fn order_removals(keys: &mut [ResourceKey]) {
    keys.sort_by(|a, b| (removal_rank(a), a).cmp(&(removal_rank(b), b)));
}

fn upsert_rank(key: &ResourceKey) -> u8 {
    match key {
        ResourceKey::Backend(_) | ResourceKey::Certificate(_) => 0,
        ResourceKey::Listener(_) => 1,
        ResourceKey::HttpRoute(_) | ResourceKey::GrpcRoute(_) | ResourceKey::TlsRoute(_) => 2,
    }
}

fn removal_rank(key: &ResourceKey) -> u8 {
    2 - upsert_rank(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn listener(name: &str, port: u16) -> Resource {
        Resource::Listener(Listener {
            key: ListenerKey::new("ns", "gw", name),
            version: 1,
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port,
            protocol: ListenerProtocol::Http,
            hostname: None,
            tls: None,
        })
    }

    fn route(name: &str) -> Resource {
        Resource::HttpRoute(std::sync::Arc::new(HttpRoute {
            key: RouteKey::new("ns", name),
            version: 1,
            created_ms: 0,
            hostnames: vec![],
            parents: vec![ListenerKey::new("ns", "gw", "http")],
            rules: vec![HttpRule::default()],
        }))
    }

    fn backend(name: &str, endpoints: &[&str]) -> Resource {
        Resource::Backend(Backend {
            key: BackendKey::new("ns", name, 80),
            version: 0,
            app_protocol: AppProtocol::Http1,
            endpoints: endpoints.iter().map(|e| e.parse().unwrap()).collect(),
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

    fn map(resources: &[Resource]) -> Config {
        resources.iter().map(|r| (r.key(), r.clone())).collect()
    }

    fn shown(delta: &Delta) -> (Vec<String>, Vec<String>) {
        (
            delta.upserts.iter().map(|r| r.key().to_string()).collect(),
            delta.removals.iter().map(ToString::to_string).collect(),
        )
    }

    #[test]
    fn identical_is_empty() {
        let m = map(&[
            listener("http", 80),
            route("a"),
            backend("s", &["10.0.0.1:80"]),
        ]);
        assert!(diff(&m, &m).is_empty());
        assert!(diff(&Config::new(), &Config::new()).is_empty());
    }

    #[test]
    fn from_nothing_upserts_in_dependency_order() {
        let new = map(&[
            route("a"),
            listener("http", 80),
            backend("s", &[]),
            certificate("tls"),
            route("b"),
        ]);
        let (upserts, removals) = shown(&diff(&Config::new(), &new));
        assert_eq!(
            upserts,
            [
                "Backend ns/s:80",
                "Certificate ns/tls",
                "Listener ns/gw/http",
                "HTTPRoute ns/a",
                "HTTPRoute ns/b",
            ]
        );
        assert!(removals.is_empty());
    }

    #[test]
    fn to_nothing_removes_dependents_first() {
        let old = map(&[
            backend("s", &[]),
            route("a"),
            certificate("tls"),
            listener("http", 80),
        ]);
        let (upserts, removals) = shown(&diff(&old, &Config::new()));
        assert!(upserts.is_empty());
        assert_eq!(
            removals,
            [
                "HTTPRoute ns/a",
                "Listener ns/gw/http",
                "Backend ns/s:80",
                "Certificate ns/tls",
            ]
        );
    }

    #[test]
    fn changed_values_are_upserted() {
        let old = map(&[
            listener("http", 80),
            backend("s", &["10.0.0.1:80"]),
            route("a"),
        ]);
        let new = map(&[
            listener("http", 8080),
            backend("s", &["10.0.0.1:80", "10.0.0.2:80"]),
            route("a"),
            route("b"),
        ]);
        let delta = diff(&old, &new);
        let (upserts, removals) = shown(&delta);
        assert_eq!(
            upserts,
            ["Backend ns/s:80", "Listener ns/gw/http", "HTTPRoute ns/b"]
        );
        assert!(removals.is_empty());
        assert_eq!(delta.upserts[1], listener("http", 8080));
    }

    #[test]
    fn version_only_change_counts() {
        let old = map(&[listener("http", 80)]);
        let mut bumped = listener("http", 80);
        if let Resource::Listener(l) = &mut bumped {
            l.version = 2;
        }
        let delta = diff(&old, &map(&[bumped.clone()]));
        assert_eq!(delta.upserts, [bumped]);
    }

    #[test]
    fn mixed_upserts_and_removals() {
        let old = map(&[listener("a", 80), route("old"), backend("gone", &[])]);
        let new = map(&[listener("a", 80), route("new"), backend("s", &[])]);
        let (upserts, removals) = shown(&diff(&old, &new));
        assert_eq!(upserts, ["Backend ns/s:80", "HTTPRoute ns/new"]);
        assert_eq!(removals, ["HTTPRoute ns/old", "Backend ns/gone:80"]);
    }

    /// Versions of one config share untouched nodes, and the diff skips those: every
    /// change next to a skipped part must still be found. (imbl 6.1 lost some of them,
    /// so a proxy could acknowledge a delta that lacked a changed route.)
    #[test]
    fn every_change_between_versions_sharing_nodes_is_found() {
        let backends: Vec<Resource> = (0..2000)
            .map(|i| backend(&format!("s{i:04}"), &["10.0.0.1:80"]))
            .collect();
        let base = map(&backends);
        for changed in (0..2000).step_by(7) {
            let mut next = base.clone();
            let moved = backend(&format!("s{changed:04}"), &["10.0.0.2:80"]);
            next.insert(moved.key(), moved.clone());
            assert_eq!(diff(&base, &next).upserts, [moved], "backend {changed}");
            assert_eq!(diff(&next, &base).upserts, [backends[changed].clone()]);
        }
    }
}
