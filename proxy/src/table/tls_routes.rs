//! Per-listener index of TLSRoutes by server name: exact names, then wildcard suffixes from
//! the longest down, then routes without hostnames; within a name the oldest route wins,
//! then namespace/name, as the spec breaks ties.

use gatehouse_core::hostname;
use gatehouse_core::model::TlsRoute;
use std::sync::Arc;

type Bucket = Arc<[Arc<TlsRoute>]>;

#[derive(Clone, Default)]
pub struct TlsRouteIndex {
    exact: imbl::HashMap<Box<str>, Bucket>,
    /// `*.example.com` is stored as `.example.com`.
    wildcard: imbl::HashMap<Box<str>, Bucket>,
    any: Option<Bucket>,
}

/// The names a route serves on a listener: the intersections of both sides' hostnames.
fn effective_hostnames(listener: Option<&str>, route: &TlsRoute) -> Vec<Option<String>> {
    let mut out: Vec<Option<String>> = if route.hostnames.is_empty() {
        vec![listener.map(str::to_string)]
    } else {
        route
            .hostnames
            .iter()
            .filter_map(|h| hostname::intersect(listener, h))
            .map(Some)
            .collect()
    };
    out.sort();
    out.dedup();
    out
}

impl TlsRouteIndex {
    fn get(&self, name: Option<&str>) -> Option<&Bucket> {
        match name {
            None => self.any.as_ref(),
            Some(h) => match h.strip_prefix('*') {
                Some(suffix) => self.wildcard.get(suffix),
                None => self.exact.get(h),
            },
        }
    }

    fn set(&mut self, name: Option<&str>, routes: Vec<Arc<TlsRoute>>) {
        let bucket = (!routes.is_empty()).then(|| Bucket::from(routes));
        match (name, bucket) {
            (None, b) => self.any = b,
            (Some(h), b) => {
                let (map, key) = match h.strip_prefix('*') {
                    Some(suffix) => (&mut self.wildcard, suffix),
                    None => (&mut self.exact, h),
                };
                match b {
                    Some(b) => {
                        map.insert(key.into(), b);
                    }
                    None => {
                        map.remove(key);
                    }
                }
            }
        }
    }

    pub fn insert(&mut self, listener_hostname: Option<&str>, route: &Arc<TlsRoute>) {
        for name in effective_hostnames(listener_hostname, route) {
            let mut routes: Vec<Arc<TlsRoute>> = self
                .get(name.as_deref())
                .map(|b| b.iter().filter(|r| r.key != route.key).cloned().collect())
                .unwrap_or_default();
            routes.push(route.clone());
            routes.sort_by(|a, b| {
                a.created_ms
                    .cmp(&b.created_ms)
                    .then_with(|| a.key.cmp(&b.key))
            });
            self.set(name.as_deref(), routes);
        }
    }

    pub fn remove(&mut self, listener_hostname: Option<&str>, route: &TlsRoute) {
        for name in effective_hostnames(listener_hostname, route) {
            let Some(old) = self.get(name.as_deref()) else {
                continue;
            };
            let routes: Vec<Arc<TlsRoute>> =
                old.iter().filter(|r| r.key != route.key).cloned().collect();
            self.set(name.as_deref(), routes);
        }
    }

    /// The route for a connection whose ClientHello named `server_name` ("" when it named none).
    pub fn lookup(&self, server_name: &str) -> Option<&Arc<TlsRoute>> {
        if let Some(b) = self.exact.get(server_name) {
            return b.first();
        }
        for (i, _) in server_name.match_indices('.') {
            if let Some(b) = self.wildcard.get(&server_name[i..]) {
                return b.first();
            }
        }
        self.any.as_ref().and_then(|b| b.first())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::model::{ListenerKey, TlsRule};

    fn route(name: &str, created_ms: i64, hostnames: &[&str]) -> Arc<TlsRoute> {
        Arc::new(TlsRoute {
            key: format!("ns/{name}").as_str().into(),
            version: 1,
            created_ms,
            hostnames: hostnames.iter().map(|h| h.to_string()).collect(),
            parents: vec![ListenerKey::new("ns", "gw", "tls")],
            rules: vec![TlsRule::default()],
        })
    }

    fn found(ix: &TlsRouteIndex, sni: &str) -> Option<String> {
        ix.lookup(sni).map(|r| r.key.0.clone())
    }

    #[test]
    fn exact_then_longest_wildcard_then_catch_all() {
        let mut ix = TlsRouteIndex::default();
        ix.insert(None, &route("any", 0, &[]));
        ix.insert(None, &route("wild", 0, &["*.example.com"]));
        ix.insert(None, &route("deep", 0, &["*.b.example.com"]));
        ix.insert(None, &route("exact", 0, &["a.example.com"]));
        assert_eq!(found(&ix, "a.example.com").as_deref(), Some("ns/exact"));
        assert_eq!(found(&ix, "x.b.example.com").as_deref(), Some("ns/deep"));
        assert_eq!(found(&ix, "x.y.example.com").as_deref(), Some("ns/wild"));
        assert_eq!(found(&ix, "other.org").as_deref(), Some("ns/any"));
        ix.remove(None, &route("any", 0, &[]));
        assert_eq!(found(&ix, "other.org"), None);
    }

    #[test]
    fn oldest_route_wins_a_shared_name_and_listener_hostname_narrows() {
        let mut ix = TlsRouteIndex::default();
        ix.insert(Some("*.example.com"), &route("new", 20, &["a.example.com"]));
        ix.insert(
            Some("*.example.com"),
            &route("old", 10, &["a.example.com", "a.example.org"]),
        );
        assert_eq!(found(&ix, "a.example.com").as_deref(), Some("ns/old"));
        assert_eq!(found(&ix, "a.example.org"), None);
    }
}
