//! Translation that remembers: a [`Translator`] keeps, per HTTPRoute, the route as it was
//! last converted and what it produced, and converts again only routes that changed, or all
//! of them when something every route reads changed (Gateways and their listeners,
//! ListenerSets, Services' ports, ReferenceGrants, Namespace labels). The result is always
//! what [`super::translate`] returns for the same objects; tests hold it to that.
//!
//! Tenants change routes all day and admins rarely change Gateways, so at 10,000 routes
//! one changed route costs a comparison per route instead of a conversion per route.

use super::backends::Target;
use super::index::Index;
use super::listeners::{GatewayView, Gateways};
use super::routes::RouteOutput;
use super::{TranslateOptions, Translation};
use crate::manifest::Object;
use crate::model::{BackendKey, HttpRoute, Resource, ResourceKey, RouteKey};
use crate::scope::Config;
use gateway_api::experimental::httproutes::HttpRoute as RouteObject;
use gateway_api::experimental::referencegrants::ReferenceGrantSpec;
use k8s_openapi::api::core::v1::ServicePort;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// [`super::translate`] with memory between calls; see the module docs.
pub struct Translator {
    opts: TranslateOptions,
    memory: Memory,
}

impl Translator {
    pub fn new(opts: TranslateOptions) -> Self {
        Translator {
            opts,
            memory: Memory::default(),
        }
    }

    pub fn translate<'a>(&mut self, objects: impl IntoIterator<Item = &'a Object>) -> Translation {
        super::translate_with(objects, &self.opts, Some(&mut self.memory))
    }

    /// How many HTTPRoutes the last call converted (the rest were remembered).
    pub fn converted_last(&self) -> usize {
        self.memory.http.converted
    }
}

#[derive(Default)]
pub(super) struct Memory {
    context: Option<RouteContext>,
    http: HttpMemo,
    /// The last output, and its resources other than HTTPRoutes: the next output is this
    /// one patched, sharing every untouched node, so that comparing and diffing the two
    /// (for every proxy stream) costs O(the change).
    published: Option<(Config, BTreeMap<ResourceKey, Resource>)>,
}

impl Memory {
    /// The backends the remembered HTTPRoutes use, each once.
    pub(super) fn http_backends(&self) -> impl Iterator<Item = (&BackendKey, &Target)> {
        self.http.backends.iter().map(|(k, (t, _))| (k, t))
    }

    /// Called once the index and the listeners are known, before any route: forgets every
    /// route when what routes read changed.
    pub(super) fn routes_memo(&mut self, index: &Index<'_>, gateways: &Gateways) -> &mut HttpMemo {
        let matches = self
            .context
            .as_ref()
            .is_some_and(|c| c.matches(index, gateways));
        if !matches {
            self.context = Some(RouteContext::capture(index, gateways));
            self.http.forget();
        }
        self.http.start();
        self.http.forgotten = !matches;
        &mut self.http
    }

    /// The resources of this call: the HTTPRoutes the memo holds now, and `others` (every
    /// other kind, as translated afresh). Built by patching the last output when the memo
    /// says which routes changed; from scratch otherwise. Either way the same map.
    pub(super) fn publish(
        &mut self,
        routes: &[Arc<HttpRoute>],
        others: BTreeMap<ResourceKey, Resource>,
    ) -> Config {
        let patched = match self.published.take() {
            Some((mut out, last_others)) if !self.http.forgotten => {
                let route_key =
                    |(ns, name): &(String, String)| ResourceKey::HttpRoute(RouteKey::new(ns, name));
                for key in &self.http.gone {
                    out.remove(&route_key(key));
                }
                for (key, model) in &self.http.converted_keys {
                    match model {
                        Some(m) => {
                            out.insert(route_key(key), Resource::HttpRoute(m.clone()));
                        }
                        None => {
                            out.remove(&route_key(key));
                        }
                    }
                }
                for key in last_others.keys().filter(|k| !others.contains_key(*k)) {
                    out.remove(key);
                }
                for (key, resource) in &others {
                    if last_others.get(key) != Some(resource) {
                        out.insert(key.clone(), resource.clone());
                    }
                }
                out
            }
            _ => super::assemble(routes.iter().cloned(), others.values().cloned()),
        };
        self.published = Some((patched.clone(), others));
        patched
    }
}

/// Per HTTPRoute, in key order: the route as last converted and what it produced.
#[derive(Default)]
pub(super) struct HttpMemo {
    /// Taken out (`None`) as they are remembered again: moving out must not allocate a
    /// placeholder per route.
    last: Vec<Option<Entry>>,
    cursor: usize,
    next: Vec<Option<Entry>>,
    converted: usize,
    /// This call remembered nothing: every route was converted afresh.
    forgotten: bool,
    /// Routes converted this call, with the model each produced (if any).
    converted_keys: Vec<(NsName, Option<Arc<HttpRoute>>)>,
    /// Routes remembered last call and gone in this one.
    gone: Vec<NsName>,
    /// The backends the remembered routes' models use, with how many use each: kept up
    /// as routes are converted and dropped, so that an unchanged route costs no backend
    /// bookkeeping.
    backends: BTreeMap<BackendKey, (Target, usize)>,
}

/// A route's (namespace, name).
type NsName = (String, String);

struct Entry {
    namespace: String,
    name: String,
    input: Arc<RouteObject>,
    output: RouteOutput,
}

impl HttpMemo {
    fn forget(&mut self) {
        self.last.clear();
        self.backends.clear();
        self.cursor = 0;
    }

    /// Keeps what route `ns/name` produces: remembered if it is unchanged, else
    /// `convert()`. Routes must come in key order, as the index holds them.
    pub(super) fn remember(
        &mut self,
        ns: &str,
        name: &str,
        route: &Arc<RouteObject>,
        convert: impl FnOnce() -> RouteOutput,
    ) {
        // Most routes are the very object remembered at the cursor: one pointer comparison,
        // no string comparison (the same object has the same key).
        if let Some(slot) = self.last.get_mut(self.cursor)
            && slot.as_ref().is_some_and(|e| Arc::ptr_eq(&e.input, route))
        {
            let entry = slot.take();
            self.cursor += 1;
            self.next.push(entry);
            return;
        }
        while self.last.get(self.cursor).is_some_and(|e| {
            e.as_ref()
                .is_none_or(|e| (e.namespace.as_str(), e.name.as_str()) < (ns, name))
        }) {
            self.cursor += 1;
        }
        let remembered = self.last.get_mut(self.cursor).filter(|e| {
            e.as_ref().is_some_and(|e| {
                e.namespace == ns
                    && e.name == name
                    && (Arc::ptr_eq(&e.input, route) || *e.input == **route)
            })
        });
        let entry = match remembered.and_then(Option::take) {
            Some(e) => e,
            None => {
                self.converted += 1;
                let output = convert();
                for (key, target) in &output.backends {
                    self.backends
                        .entry(key.clone())
                        .or_insert_with(|| (target.clone(), 0))
                        .1 += 1;
                }
                self.converted_keys
                    .push(((ns.to_string(), name.to_string()), output.model.clone()));
                Entry {
                    namespace: ns.to_string(),
                    name: name.to_string(),
                    input: route.clone(),
                    output,
                }
            }
        };
        self.next.push(Some(entry));
    }

    /// After the last route: what was not remembered again is gone; the outputs in order.
    pub(super) fn finish(&mut self) -> impl Iterator<Item = &RouteOutput> {
        self.gone.clear();
        for e in self.last.iter().flatten() {
            self.gone.push((e.namespace.clone(), e.name.clone()));
            for key in e.output.backends.keys() {
                if let Some((_, uses)) = self.backends.get_mut(key) {
                    *uses -= 1;
                    if *uses == 0 {
                        self.backends.remove(key);
                    }
                }
            }
        }
        self.last = std::mem::take(&mut self.next);
        self.cursor = 0;
        self.last.iter().flatten().map(|e| &e.output)
    }

    fn start(&mut self) {
        self.converted = 0;
        self.forgotten = false;
        self.converted_keys.clear();
        self.gone.clear();
        self.next.clear();
        self.next.reserve(self.last.len());
        self.cursor = 0;
    }
}

/// Everything an HTTPRoute's conversion reads besides the route itself.
#[derive(PartialEq)]
struct RouteContext {
    parents: ParentViews,
    namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
    /// A backendRef reads a Service's existence and ports, nothing else.
    service_ports: BTreeMap<(String, String), Option<Vec<ServicePort>>>,
    grants: BTreeMap<String, Vec<ReferenceGrantSpec>>,
}

#[derive(PartialEq)]
struct ParentViews {
    ours: BTreeMap<(String, String), GatewayView>,
    foreign: BTreeSet<(String, String)>,
    listener_sets: BTreeMap<(String, String), GatewayView>,
    foreign_sets: BTreeSet<(String, String)>,
}

impl ParentViews {
    fn of(g: &Gateways) -> Self {
        ParentViews {
            ours: g.ours.clone(),
            foreign: g.foreign.clone(),
            listener_sets: g.listener_sets.clone(),
            foreign_sets: g.foreign_sets.clone(),
        }
    }

    fn matches(&self, g: &Gateways) -> bool {
        self.ours == g.ours
            && self.foreign == g.foreign
            && self.listener_sets == g.listener_sets
            && self.foreign_sets == g.foreign_sets
    }
}

fn ports_of(s: &k8s_openapi::api::core::v1::Service) -> Option<&Vec<ServicePort>> {
    s.spec.as_ref().and_then(|s| s.ports.as_ref())
}

impl RouteContext {
    fn capture(index: &Index<'_>, gateways: &Gateways) -> Self {
        RouteContext {
            parents: ParentViews::of(gateways),
            namespace_labels: index
                .namespace_labels
                .iter()
                .map(|(ns, l)| (ns.to_string(), (*l).clone()))
                .collect(),
            service_ports: index
                .services
                .iter()
                .map(|(&(ns, name), s)| ((ns.to_string(), name.to_string()), ports_of(s).cloned()))
                .collect(),
            grants: index
                .grants
                .iter()
                .map(|(ns, gs)| (ns.to_string(), gs.iter().map(|g| g.spec.clone()).collect()))
                .collect(),
        }
    }

    /// Compared in place, without building a second context: this runs every pass.
    fn matches(&self, index: &Index<'_>, gateways: &Gateways) -> bool {
        fn same<A, B>(
            mut a: impl ExactSizeIterator<Item = A>,
            b: impl ExactSizeIterator<Item = B>,
            eq: impl Fn(A, B) -> bool,
        ) -> bool {
            a.len() == b.len() && b.into_iter().all(|y| a.next().is_some_and(|x| eq(x, y)))
        }
        self.parents.matches(gateways)
            && same(
                self.namespace_labels.iter(),
                index.namespace_labels.iter(),
                |(ns, l), (ns2, l2)| ns == ns2 && l == *l2,
            )
            && same(
                self.service_ports.iter(),
                index.services.iter(),
                |((ns, name), ports), (&(ns2, name2), s)| {
                    ns == ns2 && name == name2 && ports.as_ref() == ports_of(s)
                },
            )
            && same(
                self.grants.iter(),
                index.grants.iter(),
                |(ns, specs), (ns2, gs)| {
                    ns == ns2
                        && specs.len() == gs.len()
                        && specs.iter().zip(gs).all(|(a, b)| *a == b.spec)
                },
            )
    }
}
