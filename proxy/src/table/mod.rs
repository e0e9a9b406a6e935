//! The routing table: an immutable snapshot that requests read without locks, and that a
//! delta turns into the next snapshot in O(change).
//!
//! Persistent maps (`imbl`) make the copy-on-write cheap: a new snapshot shares every
//! untouched node with the old one, so a request that started on the old snapshot keeps a
//! consistent view until it ends, and an update never pays for the size of the table.
//! Maps that grow with the number of routes are B-trees (`OrdMap`): their nodes stay full,
//! where a hash trie at 100k entries leaves most slots of its leaves empty.

pub mod compiled;
mod grpc;
mod hosts;
mod sni;
mod tls_routes;

use crate::table::compiled::{
    CompileError, CompiledRoute, CompiledRule, RequestView, RouteKind, compile,
};
use crate::table::hosts::HostIndex;
use crate::table::sni::SniIndex;
use crate::table::tls_routes::TlsRouteIndex;
use gatehouse_core::certificate::{self, CertificateError};
use gatehouse_core::model::{
    Backend, CertificateKey, Delta, Listener, ListenerKey, ListenerProtocol, Resource, ResourceKey,
    RouteKey, TlsMode, TlsRoute,
};
use gatehouse_core::{hostname, validate};
use rustls::sign::CertifiedKey;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Invalid(#[from] validate::InvalidResource),
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// A certificate that does not parse, whose key does not match, or that is not valid now.
    #[error("Certificate {key}: {source}")]
    Certificate {
        key: CertificateKey,
        source: CertificateError,
    },
}

/// A certificate as the proxy serves it: parsed once at apply time, no PEM kept.
#[derive(Debug)]
pub struct ServedCertificate {
    pub version: u64,
    pub certified: Arc<CertifiedKey>,
    pub names: Box<[Box<str>]>,
    pub not_after: i64,
    /// A tenant's certificate: where it attaches itself.
    pub attachment: Option<ServedAttachment>,
}

/// A tenant certificate's listeners and the hostnames it is served for: those of the
/// delta's attachment that the certificate's own names cover (a hostname it does not cover
/// would only make clients fail, and could shadow a listener certificate that does).
#[derive(Debug, PartialEq, Eq)]
pub struct ServedAttachment {
    pub listeners: Box<[ListenerKey]>,
    pub hostnames: Box<[Box<str>]>,
}

/// How a connection on a TLS socket is handled, decided from its ClientHello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsHandling {
    /// HTTPS: terminate, then HTTP/1.1 or h2 by ALPN.
    TerminateHttp,
    /// TLS listener in Terminate mode: terminate, then a TLSRoute gets the plaintext.
    TerminateStream,
    /// TLS listener in Passthrough mode: a TLSRoute gets the encrypted bytes.
    Passthrough,
}

/// What a route map is keyed by: HTTPRoute and GRPCRoute names are separate namespaces.
type RouteId = (RouteKind, RouteKey);

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

impl RouteRef {
    fn id(&self) -> (RouteKind, &RouteKey) {
        (self.0.kind, &self.0.key)
    }
}

impl PartialEq for RouteRef {
    fn eq(&self, other: &Self) -> bool {
        self.id() == other.id()
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
        self.id().cmp(&other.id())
    }
}

/// A request whose Host belongs to another listener than its TLS server name chose.
#[derive(Debug, PartialEq, Eq)]
pub struct Misdirected;

#[derive(Clone, Default)]
pub struct Table {
    /// Bumped once per applied delta.
    pub version: u64,
    /// Every listener binds the unspecified address of its family on its port, whatever
    /// address it names: a provisioned proxy sits behind a Service, so the Gateway's address
    /// is not one of its own, and listeners sharing a port are told apart by hostname/SNI.
    bind_any: bool,
    listeners: imbl::HashMap<ListenerKey, Arc<Listener>>,
    /// Listeners bound to each socket, most specific hostname first.
    sockets: imbl::HashMap<SocketAddr, Arc<[Arc<Listener>]>>,
    routes: imbl::OrdMap<RouteId, Arc<CompiledRoute>>,
    /// Routes naming each listener as a parent, whether or not the listener exists yet.
    attached: imbl::HashMap<ListenerKey, imbl::OrdSet<RouteRef>>,
    hosts: imbl::HashMap<ListenerKey, HostIndex>,
    backends: imbl::HashMap<gatehouse_core::model::BackendKey, Arc<BackendState>>,
    certificates: imbl::HashMap<CertificateKey, Arc<ServedCertificate>>,
    /// Listeners naming each certificate, whether or not the certificate exists yet.
    /// A sorted slice rather than a persistent set: a certificate usually has one user, and
    /// a one-element B-tree node would cost more than the certificate's own index entries.
    certificate_users: imbl::HashMap<CertificateKey, Arc<[ListenerKey]>>,
    /// Per TLS-terminating listener, its certificates by name.
    sni: imbl::HashMap<ListenerKey, SniIndex>,
    /// Per listener, the tenant certificates attached to it by the hostnames they serve,
    /// whether or not the listener exists yet.
    attached_sni: imbl::HashMap<ListenerKey, SniIndex>,
    tls_routes: imbl::OrdMap<RouteKey, Arc<TlsRoute>>,
    /// TLSRoutes naming each listener as a parent, whether or not the listener exists yet.
    tls_attached: imbl::HashMap<ListenerKey, imbl::OrdSet<RouteKey>>,
    tls_hosts: imbl::HashMap<ListenerKey, TlsRouteIndex>,
}

/// Counts for stats and benchmarks.
#[derive(Debug, serde::Serialize)]
pub struct TableStats {
    pub version: u64,
    pub listeners: usize,
    pub routes: usize,
    pub backends: usize,
    pub certificates: usize,
    pub tls_routes: usize,
}

impl Table {
    /// An empty table whose listeners bind `0.0.0.0`/`::` on their port (see `bind_any`).
    pub fn binding_any_address() -> Self {
        Self {
            bind_any: true,
            ..Self::default()
        }
    }

    pub fn stats(&self) -> TableStats {
        TableStats {
            version: self.version,
            listeners: self.listeners.len(),
            routes: self.routes.len(),
            backends: self.backends.len(),
            certificates: self.certificates.len(),
            tls_routes: self.tls_routes.len(),
        }
    }

    /// Every resource the table holds: what a controller that lost track of this proxy
    /// must reconcile against.
    pub fn keys(&self) -> Vec<gatehouse_core::model::ResourceKey> {
        use gatehouse_core::model::ResourceKey;
        let listeners = self.listeners.keys().cloned().map(ResourceKey::Listener);
        let routes = self.routes.keys().map(|(kind, key)| match kind {
            RouteKind::Http => ResourceKey::HttpRoute(key.clone()),
            RouteKind::Grpc => ResourceKey::GrpcRoute(key.clone()),
        });
        let tls_routes = self.tls_routes.keys().cloned().map(ResourceKey::TlsRoute);
        let backends = self.backends.keys().cloned().map(ResourceKey::Backend);
        let certificates = self
            .certificates
            .keys()
            .cloned()
            .map(ResourceKey::Certificate);
        let mut keys: Vec<ResourceKey> = listeners
            .chain(routes)
            .chain(tls_routes)
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

    /// The listener an HTTP request for `host` on `socket` belongs to. On a terminated TLS
    /// connection (`server_name` given, "" when the client sent none) the listener must be
    /// the one the server name chose: certificate and routes come from it, and a Host that
    /// belongs elsewhere must open its own connection (listener isolation, 421).
    pub fn request_listener(
        &self,
        socket: SocketAddr,
        host: &str,
        server_name: Option<&str>,
    ) -> Result<Option<&Arc<Listener>>, Misdirected> {
        let listener = self.select_listener(socket, host);
        if let Some(name) = server_name {
            let by_name = self.select_listener(socket, name);
            if by_name.map(|l| &l.key) != listener.map(|l| &l.key) {
                return Err(Misdirected);
            }
        }
        Ok(listener)
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

    /// How a TLS connection on `socket` naming `server_name` ("" for none) is handled, and
    /// by which listener. `None`: no TLS listener there serves that name.
    pub fn tls_listener(
        &self,
        socket: SocketAddr,
        server_name: &str,
    ) -> Option<(&Arc<Listener>, TlsHandling)> {
        let listener = self.select_listener(socket, server_name)?;
        let handling = match (listener.protocol, listener.tls.as_ref().map(|t| t.mode)) {
            (ListenerProtocol::Https, Some(TlsMode::Terminate)) => TlsHandling::TerminateHttp,
            (ListenerProtocol::Tls, Some(TlsMode::Terminate)) => TlsHandling::TerminateStream,
            (ListenerProtocol::Tls, Some(TlsMode::Passthrough)) => TlsHandling::Passthrough,
            _ => return None,
        };
        Some((listener, handling))
    }

    /// Whether connections on `socket` start with a TLS ClientHello.
    pub fn socket_is_tls(&self, socket: SocketAddr) -> bool {
        self.sockets.get(&socket).is_some_and(|ls| {
            ls.iter()
                .any(|l| matches!(l.protocol, ListenerProtocol::Https | ListenerProtocol::Tls))
        })
    }

    /// The certificate a listener presents for `server_name`: one naming it exactly (the
    /// listener's own, then a tenant's attached for that hostname), then one whose wildcard
    /// covers it (same order), then the listener's first loaded certificate.
    pub fn certificate_for(
        &self,
        listener: &Listener,
        server_name: Option<&str>,
    ) -> Option<Arc<CertifiedKey>> {
        let own = self.sni.get(&listener.key);
        let attached = self.attached_sni.get(&listener.key);
        let named = server_name
            .and_then(|name| {
                own.and_then(|ix| ix.lookup_exact(name))
                    .or_else(|| attached.and_then(|ix| ix.lookup_exact(name)))
                    .or_else(|| own.and_then(|ix| ix.lookup_wildcard(name)))
                    .or_else(|| attached.and_then(|ix| ix.lookup_wildcard(name)))
            })
            .and_then(|key| self.certificates.get(key));
        let chosen = named.or_else(|| {
            terminated_certificates(listener)
                .iter()
                .find_map(|k| self.certificates.get(k))
        })?;
        Some(chosen.certified.clone())
    }

    pub fn certificate(&self, key: &CertificateKey) -> Option<&Arc<ServedCertificate>> {
        self.certificates.get(key)
    }

    /// The TLSRoute serving `server_name` ("" for none) on a TLS listener.
    pub fn tls_route(&self, listener: &ListenerKey, server_name: &str) -> Option<&Arc<TlsRoute>> {
        self.tls_hosts.get(listener)?.lookup(server_name)
    }

    /// Applies a delta atomically: validated and compiled first, so a bad resource leaves the
    /// table as it was.
    pub fn apply(&self, delta: &Delta) -> Result<Table, ApplyError> {
        self.apply_at(delta, certificate::unix_now())
    }

    /// [`Table::apply`] with the clock certificates are checked against (Unix seconds).
    pub fn apply_at(&self, delta: &Delta, now: i64) -> Result<Table, ApplyError> {
        let mut compiled = Vec::with_capacity(delta.upserts.len());
        let mut loaded = Vec::new();
        for resource in &delta.upserts {
            validate::validate(resource)?;
            match resource {
                Resource::HttpRoute(route) => compiled.push(Arc::new(compile(route)?)),
                Resource::GrpcRoute(route) => compiled.push(Arc::new(grpc::compile_grpc(route)?)),
                Resource::Certificate(c) => {
                    let cert =
                        certificate::load(c, now).map_err(|source| ApplyError::Certificate {
                            key: c.key.clone(),
                            source,
                        })?;
                    let attachment = c.attachment.as_ref().map(|a| ServedAttachment {
                        listeners: a.listeners.clone().into(),
                        hostnames: a
                            .hostnames
                            .iter()
                            .filter(|h| certificate::covers(&cert.names, h))
                            .map(|h| Box::from(h.as_str()))
                            .collect(),
                    });
                    loaded.push(Arc::new(ServedCertificate {
                        version: c.version,
                        certified: cert.certified,
                        names: cert.names.into_iter().map(Box::from).collect(),
                        not_after: cert.not_after,
                        attachment,
                    }));
                }
                _ => {}
            }
        }
        let mut next = self.clone();
        next.version += 1;
        for key in &delta.removals {
            next.remove(key);
        }
        let mut compiled = compiled.into_iter();
        let mut loaded = loaded.into_iter();
        let mut routes = Vec::new();
        let mut tls_routes = Vec::new();
        for resource in &delta.upserts {
            match resource {
                Resource::Listener(l) => next.upsert_listener(l),
                Resource::HttpRoute(_) | Resource::GrpcRoute(_) => {
                    routes.push(compiled.next().expect("compiled in the same order"));
                }
                Resource::TlsRoute(r) => tls_routes.push(Arc::new(r.clone())),
                Resource::Backend(b) => {
                    let state = BackendState {
                        backend: b.clone(),
                        next: AtomicUsize::new(0),
                    };
                    next.backends.insert(b.key.clone(), Arc::new(state));
                }
                Resource::Certificate(c) => {
                    let served = loaded.next().expect("loaded in the same order");
                    next.upsert_certificate(&c.key, served);
                }
            }
        }
        next.upsert_routes(routes);
        for route in tls_routes {
            next.upsert_tls_route(route);
        }
        Ok(next)
    }

    fn remove(&mut self, key: &ResourceKey) {
        match key {
            ResourceKey::Listener(k) => self.remove_listener(k),
            ResourceKey::HttpRoute(k) => self.remove_route(&(RouteKind::Http, k.clone())),
            ResourceKey::GrpcRoute(k) => self.remove_route(&(RouteKind::Grpc, k.clone())),
            ResourceKey::TlsRoute(k) => self.remove_tls_route(k),
            ResourceKey::Backend(k) => {
                self.backends.remove(k);
            }
            ResourceKey::Certificate(k) => self.remove_certificate(k),
        }
    }

    fn upsert_listener(&mut self, listener: &Listener) {
        let mut listener = listener.clone();
        if self.bind_any {
            listener.address = match listener.address {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            };
        }
        let listener = Arc::new(listener);
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
        // The socket list holds the listeners themselves: any change (protocol, TLS) must
        // reach it, not only a new address or hostname.
        if old.as_deref() != Some(&*listener) {
            self.rebuild_socket(listener.socket_addr());
        }
        if rebind {
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
            self.reindex_tls_routes(&listener);
        }
        let old_refs = old
            .as_deref()
            .map(terminated_certificates)
            .unwrap_or_default();
        let new_refs = terminated_certificates(&listener);
        if old_refs != new_refs {
            self.set_listener_certificates(&listener.key, old_refs, new_refs);
        }
    }

    fn remove_listener(&mut self, key: &ListenerKey) {
        if let Some(old) = self.listeners.remove(key) {
            self.rebuild_socket(old.socket_addr());
            self.set_listener_certificates(key, terminated_certificates(&old), &[]);
        }
        self.hosts.remove(key);
        self.tls_hosts.remove(key);
    }

    /// Rebuilds one listener's certificate index (its own refs only) and who uses what.
    fn set_listener_certificates(
        &mut self,
        listener: &ListenerKey,
        old: &[CertificateKey],
        new: &[CertificateKey],
    ) {
        for key in old.iter().filter(|k| !new.contains(k)) {
            let users: Vec<ListenerKey> = self
                .certificate_users
                .get(key)
                .map(|u| u.iter().filter(|l| *l != listener).cloned().collect())
                .unwrap_or_default();
            if users.is_empty() {
                self.certificate_users.remove(key);
            } else {
                self.certificate_users.insert(key.clone(), users.into());
            }
        }
        for key in new {
            let mut users: Vec<ListenerKey> = self
                .certificate_users
                .get(key)
                .map(|u| u.to_vec())
                .unwrap_or_default();
            if let Err(at) = users.binary_search(listener) {
                users.insert(at, listener.clone());
                self.certificate_users.insert(key.clone(), users.into());
            }
        }
        if new.is_empty() {
            self.sni.remove(listener);
            return;
        }
        let mut index = SniIndex::default();
        for (order, key) in new.iter().enumerate() {
            if let Some(cert) = self.certificates.get(key) {
                index.insert(order as u32, key, &cert.names);
            }
        }
        self.sni.insert(listener.clone(), index);
    }

    /// Swaps one certificate: listeners using it are re-indexed only if its names changed.
    fn upsert_certificate(&mut self, key: &CertificateKey, served: Arc<ServedCertificate>) {
        let old = self.certificates.insert(key.clone(), served.clone());
        if old.as_ref().map(|o| &o.attachment) != Some(&served.attachment) {
            if let Some(a) = old.as_ref().and_then(|o| o.attachment.as_ref()) {
                self.detach(key, a);
            }
            if let Some(a) = &served.attachment {
                self.attach(key, a);
            }
        }
        if old.as_ref().is_some_and(|o| o.names == served.names) {
            return;
        }
        let users: Vec<ListenerKey> = self
            .certificate_users
            .get(key)
            .map(|u| u.to_vec())
            .unwrap_or_default();
        for listener in users {
            let order = self
                .listeners
                .get(&listener)
                .and_then(|l| terminated_certificates(l).iter().position(|k| k == key));
            if let (Some(order), Some(index)) = (order, self.sni.get_mut(&listener)) {
                if let Some(old) = &old {
                    index.remove(key, &old.names);
                }
                index.insert(order as u32, key, &served.names);
            }
        }
    }

    fn attach(&mut self, key: &CertificateKey, attachment: &ServedAttachment) {
        for listener in &attachment.listeners {
            let index = self.attached_sni.entry(listener.clone()).or_default();
            // One tenant certificate per hostname holds (the controller resolves conflicts);
            // equal claims fall to key order, so the outcome never depends on delta order.
            index.insert(0, key, &attachment.hostnames);
        }
    }

    fn detach(&mut self, key: &CertificateKey, attachment: &ServedAttachment) {
        for listener in &attachment.listeners {
            let Some(index) = self.attached_sni.get_mut(listener) else {
                continue;
            };
            index.remove(key, &attachment.hostnames);
            if index.is_empty() {
                self.attached_sni.remove(listener);
            }
        }
    }

    fn remove_certificate(&mut self, key: &CertificateKey) {
        let Some(old) = self.certificates.remove(key) else {
            return;
        };
        if let Some(a) = &old.attachment {
            self.detach(key, a);
        }
        let users: Vec<ListenerKey> = self
            .certificate_users
            .get(key)
            .map(|u| u.to_vec())
            .unwrap_or_default();
        for listener in users {
            if let Some(index) = self.sni.get_mut(&listener) {
                index.remove(key, &old.names);
            }
        }
    }

    fn reindex_tls_routes(&mut self, listener: &Listener) {
        let mut index = TlsRouteIndex::default();
        for key in self.tls_attached.get(&listener.key).into_iter().flatten() {
            if let Some(route) = self.tls_routes.get(key) {
                index.insert(listener.hostname.as_deref(), route);
            }
        }
        self.tls_hosts.insert(listener.key.clone(), index);
    }

    fn upsert_tls_route(&mut self, route: Arc<TlsRoute>) {
        self.remove_tls_route(&route.key);
        for parent in &route.parents {
            self.tls_attached
                .entry(parent.clone())
                .or_default()
                .insert(route.key.clone());
            if let Some(listener) = self.listeners.get(parent) {
                let hostname = listener.hostname.clone();
                self.tls_hosts
                    .entry(parent.clone())
                    .or_default()
                    .insert(hostname.as_deref(), &route);
            }
        }
        self.tls_routes.insert(route.key.clone(), route);
    }

    fn remove_tls_route(&mut self, key: &RouteKey) {
        let Some(old) = self.tls_routes.remove(key) else {
            return;
        };
        for parent in &old.parents {
            if let Some(routes) = self.tls_attached.get_mut(parent) {
                routes.remove(key);
                if routes.is_empty() {
                    self.tls_attached.remove(parent);
                }
            }
            let hostname = self.listeners.get(parent).and_then(|l| l.hostname.clone());
            if let Some(index) = self.tls_hosts.get_mut(parent) {
                index.remove(hostname.as_deref(), &old);
            }
        }
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
            .filter(|r| seen.insert((r.kind, r.key.clone())))
            .collect();
        routes.reverse();
        let mut by_listener: std::collections::HashMap<ListenerKey, Vec<Arc<CompiledRoute>>> =
            std::collections::HashMap::new();
        for route in routes {
            self.remove_route(&(route.kind, route.key.clone()));
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
            self.routes.insert((route.kind, route.key.clone()), route);
        }
        for (parent, routes) in by_listener {
            let hostname = self.listeners.get(&parent).and_then(|l| l.hostname.clone());
            self.hosts
                .entry(parent)
                .or_default()
                .insert(hostname.as_deref(), &routes);
        }
    }

    fn remove_route(&mut self, id: &RouteId) {
        let Some(old) = self.routes.remove(id) else {
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

/// The certificates a listener presents, in its certificateRefs order; none unless it
/// terminates TLS.
fn terminated_certificates(listener: &Listener) -> &[CertificateKey] {
    match &listener.tls {
        Some(tls) if tls.mode == TlsMode::Terminate => &tls.certificates,
        _ => &[],
    }
}

#[cfg(test)]
mod tests;
