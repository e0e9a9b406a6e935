//! The routing table: an immutable snapshot that requests read without locks, and that a
//! delta turns into the next snapshot in O(change).
//!
//! Persistent maps (`imbl`) make the copy-on-write cheap: a new snapshot shares every
//! untouched node with the old one, so a request that started on the old snapshot keeps a
//! consistent view until it ends, and an update never pays for the size of the table.
//! Maps that grow with the number of routes are B-trees (`OrdMap`): their nodes stay full,
//! where a hash trie at 100k entries leaves most slots of its leaves empty.

pub mod compiled;
mod hosts;

use crate::table::compiled::{CompileError, CompiledRoute, CompiledRule, RequestView, compile};
use crate::table::hosts::HostIndex;
use gatehouse_core::model::{
    Backend, Certificate, CertificateKey, Delta, Listener, ListenerKey, Resource, ResourceKey,
    RouteKey,
};
use gatehouse_core::{hostname, validate};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Invalid(#[from] validate::InvalidResource),
    #[error(transparent)]
    Compile(#[from] CompileError),
}

/// A backend as the proxy serves it; the counter spreads requests over endpoints.
#[derive(Debug)]
pub struct BackendState {
    pub backend: Backend,
    next: AtomicUsize,
}

impl BackendState {
    pub fn pick_endpoint(&self) -> Option<SocketAddr> {
        let eps = &self.backend.endpoints;
        (!eps.is_empty()).then(|| eps[self.next.fetch_add(1, Ordering::Relaxed) % eps.len()])
    }
}

/// One matching entry of a bucket: a route's rule and one of its matches.
#[derive(Clone, Debug)]
pub struct Entry {
    pub route: Arc<CompiledRoute>,
    pub rule: u32,
    pub matched: u32,
}

impl Entry {
    pub fn rule(&self) -> &CompiledRule {
        &self.route.rules[self.rule as usize]
    }
}

/// A route held by pointer but ordered by key, so sets of routes cost a pointer each.
#[derive(Clone, Debug)]
struct RouteRef(Arc<CompiledRoute>);

impl PartialEq for RouteRef {
    fn eq(&self, other: &Self) -> bool {
        self.0.key == other.0.key
    }
}
impl Eq for RouteRef {}
impl PartialOrd for RouteRef {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for RouteRef {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.key.cmp(&other.0.key)
    }
}

#[derive(Clone, Default)]
pub struct Table {
    /// Bumped once per applied delta.
    pub version: u64,
    listeners: imbl::HashMap<ListenerKey, Arc<Listener>>,
    /// Listeners bound to each socket, most specific hostname first.
    sockets: imbl::HashMap<SocketAddr, Arc<[Arc<Listener>]>>,
    routes: imbl::OrdMap<RouteKey, Arc<CompiledRoute>>,
    /// Routes naming each listener as a parent, whether or not the listener exists yet.
    attached: imbl::HashMap<ListenerKey, imbl::OrdSet<RouteRef>>,
    hosts: imbl::HashMap<ListenerKey, HostIndex>,
    backends: imbl::HashMap<gatehouse_core::model::BackendKey, Arc<BackendState>>,
    certificates: imbl::HashMap<CertificateKey, Arc<Certificate>>,
}

/// Counts for stats and benchmarks.
#[derive(Debug, serde::Serialize)]
pub struct TableStats {
    pub version: u64,
    pub listeners: usize,
    pub routes: usize,
    pub backends: usize,
    pub certificates: usize,
}

impl Table {
    pub fn stats(&self) -> TableStats {
        TableStats {
            version: self.version,
            listeners: self.listeners.len(),
            routes: self.routes.len(),
            backends: self.backends.len(),
            certificates: self.certificates.len(),
        }
    }

    /// Every resource the table holds: what a controller that lost track of this proxy
    /// must reconcile against.
    pub fn keys(&self) -> Vec<gatehouse_core::model::ResourceKey> {
        use gatehouse_core::model::ResourceKey;
        let listeners = self.listeners.keys().cloned().map(ResourceKey::Listener);
        let routes = self.routes.keys().cloned().map(ResourceKey::HttpRoute);
        let backends = self.backends.keys().cloned().map(ResourceKey::Backend);
        let certificates = self
            .certificates
            .keys()
            .cloned()
            .map(ResourceKey::Certificate);
        let mut keys: Vec<ResourceKey> = listeners
            .chain(routes)
            .chain(backends)
            .chain(certificates)
            .collect();
        keys.sort();
        keys
    }

    pub fn socket_addrs(&self) -> impl Iterator<Item = &SocketAddr> {
        self.sockets.keys()
    }

    pub fn backend(&self, key: &gatehouse_core::model::BackendKey) -> Option<&Arc<BackendState>> {
        self.backends.get(key)
    }

    pub fn listener(&self, key: &ListenerKey) -> Option<&Arc<Listener>> {
        self.listeners.get(key)
    }

    /// The listener a request on `socket` for `host` belongs to: exact hostname, then the
    /// longest wildcard, then a listener without hostname. Listeners bound to the wildcard
    /// address also serve connections accepted on a specific local address of that port.
    pub fn select_listener(&self, socket: SocketAddr, host: &str) -> Option<&Arc<Listener>> {
        let on_socket = self.sockets.get(&socket).or_else(|| {
            let any = match socket {
                SocketAddr::V4(_) => std::net::IpAddr::from([0u8; 4]),
                SocketAddr::V6(_) => std::net::IpAddr::from([0u16; 8]),
            };
            self.sockets.get(&SocketAddr::new(any, socket.port()))
        })?;
        on_socket.iter().find(|l| match &l.hostname {
            Some(h) => hostname::matches(h, host),
            None => true,
        })
    }

    /// The best match for a request on a listener, per the spec's precedence.
    pub fn route(
        &self,
        listener: &ListenerKey,
        host: &str,
        req: &RequestView<'_>,
    ) -> Option<Entry> {
        self.hosts.get(listener)?.lookup(host, req)
    }

    /// Applies a delta atomically: validated and compiled first, so a bad resource leaves the
    /// table as it was.
    pub fn apply(&self, delta: &Delta) -> Result<Table, ApplyError> {
        let mut compiled = Vec::with_capacity(delta.upserts.len());
        for resource in &delta.upserts {
            validate::validate(resource)?;
            if let Resource::HttpRoute(route) = resource {
                compiled.push(Arc::new(compile(route)?));
            }
        }
        let mut next = self.clone();
        next.version += 1;
        for key in &delta.removals {
            next.remove(key);
        }
        let mut compiled = compiled.into_iter();
        let mut routes = Vec::new();
        for resource in &delta.upserts {
            match resource {
                Resource::Listener(l) => next.upsert_listener(l),
                Resource::HttpRoute(_) => {
                    routes.push(compiled.next().expect("compiled in the same order"));
                }
                Resource::Backend(b) => {
                    let state = BackendState {
                        backend: b.clone(),
                        next: AtomicUsize::new(0),
                    };
                    next.backends.insert(b.key.clone(), Arc::new(state));
                }
                Resource::Certificate(c) => {
                    next.certificates.insert(c.key.clone(), Arc::new(c.clone()));
                }
            }
        }
        next.upsert_routes(routes);
        Ok(next)
    }

    fn remove(&mut self, key: &ResourceKey) {
        match key {
            ResourceKey::Listener(k) => self.remove_listener(k),
            ResourceKey::HttpRoute(k) => self.remove_route(k),
            ResourceKey::Backend(k) => {
                self.backends.remove(k);
            }
            ResourceKey::Certificate(k) => {
                self.certificates.remove(k);
            }
        }
    }

    fn upsert_listener(&mut self, listener: &Listener) {
        let listener = Arc::new(listener.clone());
        let old = self
            .listeners
            .insert(listener.key.clone(), listener.clone());
        let rebind = old.as_ref().is_none_or(|o| {
            o.socket_addr() != listener.socket_addr() || o.hostname != listener.hostname
        });
        if let Some(old) = &old
            && old.socket_addr() != listener.socket_addr()
        {
            self.rebuild_socket(old.socket_addr());
        }
        if rebind {
            self.rebuild_socket(listener.socket_addr());
            // Effective hostnames depend on the listener's hostname: re-index its routes.
            let mut index = HostIndex::default();
            let routes: Vec<Arc<CompiledRoute>> = self
                .attached
                .get(&listener.key)
                .into_iter()
                .flatten()
                .map(|r| r.0.clone())
                .collect();
            index.insert(listener.hostname.as_deref(), &routes);
            self.hosts.insert(listener.key.clone(), index);
        }
    }

    fn remove_listener(&mut self, key: &ListenerKey) {
        if let Some(old) = self.listeners.remove(key) {
            self.rebuild_socket(old.socket_addr());
        }
        self.hosts.remove(key);
    }

    fn rebuild_socket(&mut self, addr: SocketAddr) {
        let mut on_socket: Vec<Arc<Listener>> = self
            .listeners
            .values()
            .filter(|l| l.socket_addr() == addr)
            .cloned()
            .collect();
        if on_socket.is_empty() {
            self.sockets.remove(&addr);
            return;
        }
        on_socket.sort_by(|a, b| {
            hosts::specificity(a.hostname.as_deref())
                .cmp(&hosts::specificity(b.hostname.as_deref()))
                .then_with(|| a.key.cmp(&b.key))
        });
        self.sockets.insert(addr, on_socket.into());
    }

    /// Routes go in after the delta's listeners, and each hostname bucket is rebuilt once
    /// for all of the delta's routes rather than once per route: a bulk load of routes that
    /// share a bucket stays linear. A key upserted twice in one delta keeps its last version.
    fn upsert_routes(&mut self, routes: Vec<Arc<CompiledRoute>>) {
        let mut seen = std::collections::HashSet::new();
        let mut routes: Vec<_> = routes
            .into_iter()
            .rev()
            .filter(|r| seen.insert(r.key.clone()))
            .collect();
        routes.reverse();
        let mut by_listener: std::collections::HashMap<ListenerKey, Vec<Arc<CompiledRoute>>> =
            std::collections::HashMap::new();
        for route in routes {
            self.remove_route(&route.key);
            // Mutating through entry/get_mut edits nodes this snapshot already owns in place,
            // instead of copying a path of shared nodes for every route of a large delta.
            for parent in route.parents.iter() {
                self.attached
                    .entry(parent.clone())
                    .or_default()
                    .insert(RouteRef(route.clone()));
                if self.listeners.contains_key(parent) {
                    by_listener
                        .entry(parent.clone())
                        .or_default()
                        .push(route.clone());
                }
            }
            self.routes.insert(route.key.clone(), route);
        }
        for (parent, routes) in by_listener {
            let hostname = self.listeners.get(&parent).and_then(|l| l.hostname.clone());
            self.hosts
                .entry(parent)
                .or_default()
                .insert(hostname.as_deref(), &routes);
        }
    }

    fn remove_route(&mut self, key: &RouteKey) {
        let Some(old) = self.routes.remove(key) else {
            return;
        };
        for parent in old.parents.iter() {
            if let Some(routes) = self.attached.get_mut(parent) {
                routes.remove(&RouteRef(old.clone()));
                if routes.is_empty() {
                    self.attached.remove(parent);
                }
            }
            if let Some(listener) = self.listeners.get(parent) {
                let hostname = listener.hostname.clone();
                if let Some(index) = self.hosts.get_mut(parent) {
                    index.remove(hostname.as_deref(), &old);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
