//! Lookup tables over the input objects, built once per translation.

use super::{GATEWAY_GROUP, Problem, name_of, namespace_of};
use crate::manifest::Object;
use foldhash::HashSet;
use gateway_api::experimental::gatewayclasses::GatewayClass;
use gateway_api::experimental::gateways::Gateway;
use gateway_api::experimental::grpcroutes::GrpcRoute;
use gateway_api::experimental::httproutes::HttpRoute;
use gateway_api::experimental::listenersets::ListenerSet;
use gateway_api::experimental::referencegrants::ReferenceGrant;
use gateway_api::experimental::tlsroutes::TlsRoute;
use k8s_openapi::api::core::v1::{Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Label the EndpointSlice controller sets to tie a slice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Label the API server puts on every Namespace; selectors commonly rely on it even when
/// the Namespace object itself was not part of the input.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

type NsName<'a> = (&'a str, &'a str);

#[derive(Default)]
pub(super) struct Index<'a> {
    pub classes: BTreeMap<&'a str, &'a GatewayClass>,
    pub gateways: BTreeMap<NsName<'a>, &'a Gateway>,
    /// In (namespace, name) order, one per name; only ever walked in order, so a sorted
    /// list rather than a map built again every pass.
    pub routes: Vec<(NsName<'a>, &'a Arc<HttpRoute>)>,
    pub grpc_routes: BTreeMap<NsName<'a>, &'a GrpcRoute>,
    pub tls_routes: BTreeMap<NsName<'a>, &'a TlsRoute>,
    pub listener_sets: BTreeMap<NsName<'a>, &'a ListenerSet>,
    pub secrets: BTreeMap<NsName<'a>, &'a Secret>,
    pub services: BTreeMap<NsName<'a>, &'a Service>,
    /// Keyed by namespace and the owning Service's name.
    pub slices: BTreeMap<NsName<'a>, Vec<&'a EndpointSlice>>,
    /// Keyed by the namespace they grant access to.
    pub grants: BTreeMap<&'a str, Vec<&'a ReferenceGrant>>,
    /// Only namespaces that have labels.
    pub namespace_labels: BTreeMap<&'a str, &'a BTreeMap<String, String>>,
}

fn duplicate(object: &Object) -> Problem {
    Problem::new(
        &object.display(),
        "metadata.name",
        "defined more than once; the first definition is used",
    )
}

/// One side of a cross-namespace reference, for ReferenceGrant checks.
pub(super) struct RefEnd<'r> {
    pub group: &'r str,
    pub kind: &'r str,
    pub namespace: &'r str,
}

impl<'a> Index<'a> {
    /// Indexes `objects`; a second object with the same kind and name is reported and
    /// ignored so the result does not depend on which file the caller read last.
    pub fn new(objects: impl IntoIterator<Item = &'a Object>, problems: &mut Vec<Problem>) -> Self {
        /// Keeps the first object of a name; a kind's own map tells a duplicate apart, so
        /// only kinds indexed by something else need the `seen` set.
        fn first<'a, K: Ord, V>(map: &mut BTreeMap<K, &'a V>, key: K, value: &'a V) -> bool {
            match map.entry(key) {
                std::collections::btree_map::Entry::Occupied(_) => false,
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(value);
                    true
                }
            }
        }
        let mut ix = Index::default();
        // Hashed, not ordered: thousands of namespaces share long name prefixes, and
        // comparing them was a tenth of a pass at 10,000 routes.
        let mut seen = HashSet::default();
        // HTTPRoutes are most of the objects: gathered, then built into their map in one
        // sorted bulk load, several times faster than one insertion each at 10,000.
        let mut routes: Vec<(NsName<'a>, &'a Arc<HttpRoute>, &'a Object)> = Vec::new();
        for object in objects {
            let meta = object.metadata();
            let ns_name = (namespace_of(meta), name_of(meta));
            let fresh = match object {
                Object::GatewayClass(o) => first(&mut ix.classes, name_of(meta), o),
                Object::Gateway(o) => first(&mut ix.gateways, ns_name, o),
                Object::HttpRoute(o) => {
                    routes.push((ns_name, o, object));
                    true
                }
                Object::GrpcRoute(o) => first(&mut ix.grpc_routes, ns_name, o),
                Object::TlsRoute(o) => first(&mut ix.tls_routes, ns_name, o),
                Object::ListenerSet(o) => first(&mut ix.listener_sets, ns_name, o),
                Object::Secret(o) => first(&mut ix.secrets, ns_name, o),
                Object::Service(o) => first(&mut ix.services, ns_name, o),
                Object::ReferenceGrant(o) => {
                    let fresh = seen.insert((object.kind(), ns_name.0, ns_name.1));
                    if fresh {
                        ix.grants.entry(ns_name.0).or_default().push(o);
                    }
                    fresh
                }
                Object::EndpointSlice(o) => {
                    let fresh = seen.insert((object.kind(), ns_name.0, ns_name.1));
                    let service = meta.labels.as_ref().and_then(|l| l.get(SERVICE_NAME_LABEL));
                    if let (true, Some(service)) = (fresh, service) {
                        let key = (ns_name.0, service.as_str());
                        ix.slices.entry(key).or_default().push(o);
                    }
                    fresh
                }
                Object::Namespace(o) => {
                    let fresh = seen.insert((object.kind(), "", ns_name.1));
                    if let (true, Some(labels)) = (fresh, &o.metadata.labels) {
                        ix.namespace_labels.insert(name_of(meta), labels);
                    }
                    fresh
                }
            };
            if !fresh {
                problems.push(duplicate(object));
            }
        }
        ix.routes.reserve(routes.len());
        // Stand-ins come in order, and strictly so (one per name): one comparison per
        // route tells, and spares sorting and the duplicate check.
        if routes.windows(2).all(|w| w[0].0 < w[1].0) {
            ix.routes
                .extend(routes.into_iter().map(|(key, route, _)| (key, route)));
            return ix;
        }
        // Stable: of two routes with one name, the first given stays first, and is kept.
        routes.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, route, object) in routes {
            if ix.routes.last().is_some_and(|(last, _)| *last == key) {
                problems.push(duplicate(object));
            } else {
                ix.routes.push((key, route));
            }
        }
        ix
    }

    /// The labels of a namespace as a selector sees them.
    pub fn namespace_labels(&self, namespace: &str) -> BTreeMap<String, String> {
        let mut labels = self
            .namespace_labels
            .get(namespace)
            .map(|l| (*l).clone())
            .unwrap_or_default();
        labels.insert(NAMESPACE_NAME_LABEL.to_string(), namespace.to_string());
        labels
    }

    /// Whether a ReferenceGrant in the target's namespace lets `from` refer to the object
    /// `to_name` of kind `to`. Same-namespace references need no grant.
    pub fn reference_allowed(&self, from: &RefEnd<'_>, to: &RefEnd<'_>, to_name: &str) -> bool {
        if from.namespace == to.namespace {
            return true;
        }
        let grants = self
            .grants
            .get(to.namespace)
            .map(Vec::as_slice)
            .unwrap_or_default();
        grants.iter().any(|g| {
            let from_ok = g.spec.from.iter().any(|f| {
                f.group == from.group && f.kind == from.kind && f.namespace == from.namespace
            });
            let to_ok = g.spec.to.iter().any(|t| {
                t.group == to.group
                    && t.kind == to.kind
                    && t.name
                        .as_deref()
                        .is_none_or(|n| n.is_empty() || n == to_name)
            });
            from_ok && to_ok
        })
    }
}

/// How a route of `kind` (`HTTPRoute`, `GRPCRoute`, `TLSRoute`) appears as the `from` side
/// of a ReferenceGrant.
pub(super) fn route_end<'r>(kind: &'r str, namespace: &'r str) -> RefEnd<'r> {
    RefEnd {
        group: GATEWAY_GROUP,
        kind,
        namespace,
    }
}
