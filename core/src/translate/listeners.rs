//! Gateways → `Listener`s, plus what route attachment needs to know about each listener.

use super::index::{Index, RefEnd};
use super::secrets::{self, SecretProblem};
use super::{GATEWAY_GROUP, Problem, TranslateOptions, label, listener_sets, selector, version_of};
use crate::model::{
    Certificate, CertificateKey, Listener, ListenerKey, ListenerProtocol, ListenerTls, ResourceKey,
    TlsMode,
};
use crate::validate::validate;
use gateway_api::experimental::gateways::{
    Gateway, GatewayListeners, GatewayListenersAllowedRoutesNamespacesFrom as From,
    GatewayListenersAllowedRoutesNamespacesSelector as Selector, GatewayListenersTls,
    GatewayListenersTlsMode,
};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// Which route namespaces a listener admits.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Namespaces {
    Same,
    All,
    Selector(Selector),
    /// A selector we could not evaluate: admits nothing, the Gateway got a Problem.
    Nothing,
}

/// A served listener as route attachment sees it.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct ListenerView {
    pub key: ListenerKey,
    pub name: String,
    pub port: u16,
    pub protocol: ListenerProtocol,
    pub hostname: Option<String>,
    pub namespaces: Namespaces,
    /// Route kinds the listener admits (`HTTPRoute`, `GRPCRoute`, `TLSRoute`).
    pub kinds: Vec<&'static str>,
    /// The ListenerSet that added it; `None` for the Gateway's own.
    pub set: Option<(String, String)>,
}

impl ListenerView {
    pub fn admits(&self, kind: &str) -> bool {
        self.kinds.contains(&kind)
    }
}

/// A parent routes attach to: a Gateway or an accepted ListenerSet.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct GatewayView {
    /// The parent's own namespace (what `allowedRoutes.namespaces.from: Same` means).
    pub namespace: String,
    pub listeners: Vec<ListenerView>,
}

#[derive(Default)]
pub(super) struct Gateways {
    pub listeners: Vec<Listener>,
    /// The certificates served listeners reference, each once.
    pub certificates: BTreeMap<CertificateKey, Certificate>,
    /// Gateways this instance serves, by (namespace, name).
    pub ours: BTreeMap<(String, String), GatewayView>,
    /// Gateways that exist but belong to someone else; routes attached to them are not
    /// our business and produce no problem.
    pub foreign: BTreeSet<(String, String)>,
    /// ListenerSets our Gateways accepted, by (namespace, name).
    pub listener_sets: BTreeMap<(String, String), GatewayView>,
    /// ListenerSets whose Gateway belongs to someone else.
    pub foreign_sets: BTreeSet<(String, String)>,
}

pub(super) fn translate(
    index: &Index<'_>,
    opts: &TranslateOptions,
    problems: &mut Vec<Problem>,
) -> Gateways {
    let mut out = Gateways::default();
    for (&(ns, name), gw) in &index.gateways {
        let key = (ns.to_string(), name.to_string());
        let object = label("Gateway", &gw.metadata);
        let class = gw.spec.gateway_class_name.as_str();
        match index.classes.get(class) {
            Some(c) if c.spec.controller_name == opts.controller_name => {}
            Some(_) => {
                out.foreign.insert(key);
                continue;
            }
            None if opts.accept_gateways_without_class => {}
            None => {
                problems.push(Problem::new(
                    &object,
                    "spec.gatewayClassName",
                    format!("GatewayClass {class} not found"),
                ));
                out.foreign.insert(key);
                continue;
            }
        }
        let Some(address) = address(gw, &object, opts.default_address, problems) else {
            continue;
        };
        let owner = Owner {
            index,
            object: &object,
            kind: "Gateway",
            namespace: ns,
            key_prefix: format!("{ns}/{name}"),
            version: version_of(&gw.metadata),
            set: None,
            address,
        };
        let mut view = GatewayView {
            namespace: ns.to_string(),
            listeners: Vec::new(),
        };
        for (i, spec) in gw.spec.listeners.iter().enumerate() {
            let at = format!("spec.listeners[{i}]");
            if let Some((listener, listener_view)) =
                owner.listener(&at, spec, &view.listeners, &mut out.certificates, problems)
            {
                out.listeners.extend(listener);
                view.listeners.push(listener_view);
            }
        }
        listener_sets::attach(index, gw, address, &view, &mut out, problems);
        out.ours.insert(key, view);
    }
    listener_sets::note_foreign(index, &mut out);
    out
}

/// The address to bind: the first `IPAddress`, or the default when none is asked for.
/// Any address we cannot honour makes the Gateway unservable rather than silently bound
/// somewhere its author did not ask for.
fn address(
    gw: &Gateway,
    object: &str,
    default: IpAddr,
    problems: &mut Vec<Problem>,
) -> Option<IpAddr> {
    let addresses = gw.spec.addresses.as_deref().unwrap_or_default();
    let mut chosen = None;
    for (i, a) in addresses.iter().enumerate() {
        let at = format!("spec.addresses[{i}]");
        let kind = a.r#type.as_deref().unwrap_or("IPAddress");
        if kind != "IPAddress" {
            problems.push(Problem::new(
                object,
                format!("{at}.type"),
                format!("UnsupportedAddress: address type {kind} is not supported"),
            ));
            return None;
        }
        let value = a.value.as_deref().unwrap_or_default();
        match value.parse::<IpAddr>() {
            Ok(ip) if chosen.is_none() => chosen = Some(ip),
            Ok(_) => problems.push(Problem::new(object, at, "only the first address is used")),
            Err(_) => {
                problems.push(Problem::new(
                    object,
                    format!("{at}.value"),
                    format!("UnsupportedAddress: {value:?} is not an IP address"),
                ));
                return None;
            }
        }
    }
    Some(chosen.unwrap_or(default))
}

/// Two listeners of one Gateway (its own or added by ListenerSets) that the proxy could not
/// tell apart. The later one loses: the Gateway's own come first, then ListenerSets oldest
/// first.
fn conflict(
    earlier: &[ListenerView],
    spec: &GatewayListeners,
    protocol: ListenerProtocol,
    set: Option<&(String, String)>,
) -> Option<String> {
    for view in earlier {
        // Names are per parent: a ListenerSet may reuse a name its Gateway uses.
        if view.name == spec.name && view.set.as_ref() == set {
            return Some(format!("listener name {} is used twice", spec.name));
        }
        if i32::from(view.port) != spec.port {
            continue;
        }
        if transport(view.protocol) != transport(protocol) {
            return Some(format!(
                "ProtocolConflict: port {} is already used with another protocol by listener {}",
                spec.port, view.name
            ));
        }
        if view.hostname == spec.hostname {
            return Some(format!(
                "HostnameConflict: listener {} already serves this port and hostname",
                view.name
            ));
        }
    }
    None
}

/// Listeners on one port must agree on what the first bytes of a connection are.
fn transport(p: ListenerProtocol) -> &'static str {
    match p {
        ListenerProtocol::Http => "http",
        ListenerProtocol::Https | ListenerProtocol::Tls => "tls",
        ListenerProtocol::Tcp => "tcp",
    }
}

fn protocol(p: &str) -> Option<ListenerProtocol> {
    match p {
        "HTTP" => Some(ListenerProtocol::Http),
        "HTTPS" => Some(ListenerProtocol::Https),
        "TLS" => Some(ListenerProtocol::Tls),
        "TCP" => Some(ListenerProtocol::Tcp),
        _ => None,
    }
}

/// Whoever declares listeners: a Gateway, or a ListenerSet on behalf of its Gateway.
pub(super) struct Owner<'a> {
    pub index: &'a Index<'a>,
    /// `Gateway ns/name` or `ListenerSet ns/name`, as problems name it.
    pub object: &'a str,
    /// `Gateway` or `ListenerSet`: the `from` side of ReferenceGrants for certificates.
    pub kind: &'static str,
    /// The owner's own namespace: certificate refs default to it.
    pub namespace: &'a str,
    /// Listener keys are `<key_prefix>/<listener name>`.
    pub key_prefix: String,
    pub version: u64,
    pub set: Option<(String, String)>,
    pub address: IpAddr,
}

impl Owner<'_> {
    fn problem(
        &self,
        problems: &mut Vec<Problem>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) {
        problems.push(Problem::new(self.object, field, reason));
    }

    fn namespace(&self) -> &str {
        self.namespace
    }

    pub(super) fn listener(
        &self,
        at: &str,
        spec: &GatewayListeners,
        earlier: &[ListenerView],
        certificates: &mut BTreeMap<CertificateKey, Certificate>,
        problems: &mut Vec<Problem>,
    ) -> Option<(Option<Listener>, ListenerView)> {
        let Some(protocol) = protocol(&spec.protocol) else {
            self.problem(
                problems,
                format!("{at}.protocol"),
                format!("UnsupportedProtocol: {} is not supported", spec.protocol),
            );
            return None;
        };
        if let Some(conflict) = conflict(earlier, spec, protocol, self.set.as_ref()) {
            self.problem(problems, at, conflict);
            return None;
        }
        let Ok(port) = u16::try_from(spec.port) else {
            self.problem(
                problems,
                format!("{at}.port"),
                format!("port {} is out of range", spec.port),
            );
            return None;
        };
        let listener = Listener {
            key: ListenerKey(format!("{}/{}", self.key_prefix, spec.name)),
            version: self.version,
            address: self.address,
            port,
            protocol,
            hostname: spec.hostname.clone(),
            tls: spec
                .tls
                .as_ref()
                .map(|tls| self.tls(&format!("{at}.tls"), tls, certificates, problems)),
        };
        // A terminating listener whose certificates are all unusable is not served, but
        // routes still attach to it (and count in attachedRoutes): the cause is already
        // reported against its certificateRefs, and fixing the Secret brings it up.
        let mut served = true;
        if let Err(e) = validate(&crate::model::Resource::Listener(listener.clone())) {
            let unusable_certificates = e.field == "tls.certificateRefs"
                && spec
                    .tls
                    .as_ref()
                    .is_some_and(|t| !t.certificate_refs.as_deref().unwrap_or_default().is_empty());
            if !unusable_certificates {
                self.problem(problems, format!("{at}.{}", e.field), e.reason);
                return None;
            }
            served = false;
        }
        let view = ListenerView {
            key: listener.key.clone(),
            name: spec.name.clone(),
            port,
            protocol,
            hostname: spec.hostname.clone(),
            namespaces: self.namespaces(at, spec, problems),
            kinds: self.admitted_kinds(at, spec, protocol, problems),
            set: self.set.clone(),
        };
        Some((served.then_some(listener), view))
    }

    fn tls(
        &self,
        at: &str,
        tls: &GatewayListenersTls,
        served: &mut BTreeMap<CertificateKey, Certificate>,
        problems: &mut Vec<Problem>,
    ) -> ListenerTls {
        let mode = match tls.mode {
            Some(GatewayListenersTlsMode::Passthrough) => TlsMode::Passthrough,
            Some(GatewayListenersTlsMode::Terminate) | None => TlsMode::Terminate,
        };
        if mode == TlsMode::Passthrough {
            // The backend presents its own certificate; refs here are not used.
            return ListenerTls {
                mode,
                certificates: Vec::new(),
            };
        }
        let mut certificates = Vec::new();
        for (j, r) in tls.certificate_refs.iter().flatten().enumerate() {
            let field = format!("{at}.certificateRefs[{j}]");
            let group = r.group.as_deref().unwrap_or_default();
            let kind = r.kind.as_deref().unwrap_or("Secret");
            if !group.is_empty() || kind != "Secret" {
                self.problem(
                    problems,
                    field,
                    format!("InvalidCertificateRef: unsupported kind {group}/{kind}"),
                );
                continue;
            }
            let ns = r.namespace.as_deref().unwrap_or(self.namespace());
            let from = RefEnd {
                group: GATEWAY_GROUP,
                kind: self.kind,
                namespace: self.namespace(),
            };
            let to = RefEnd {
                group: "",
                kind: "Secret",
                namespace: ns,
            };
            if !self.index.reference_allowed(&from, &to, &r.name) {
                self.problem(
                    problems,
                    field,
                    format!(
                        "RefNotPermitted: no ReferenceGrant in {ns} allows Secret {}",
                        r.name
                    ),
                );
                continue;
            }
            let key = CertificateKey(format!("{ns}/{}", r.name));
            match secrets::certificate(self.index, ns, &r.name) {
                Ok(cert) => {
                    served.insert(key.clone(), cert);
                }
                Err(SecretProblem::Unusable(reason)) => {
                    self.problem(problems, field, reason);
                    continue;
                }
                Err(SecretProblem::Invalid(reason)) => {
                    // Keep the ref: a caller holding the last good certificate keeps it serving.
                    problems.push(
                        Problem::new(self.object, field, reason)
                            .rejecting(ResourceKey::Certificate(key.clone())),
                    );
                }
            }
            certificates.push(key);
        }
        certificates.sort();
        certificates.dedup();
        ListenerTls { mode, certificates }
    }

    fn namespaces(
        &self,
        at: &str,
        spec: &GatewayListeners,
        problems: &mut Vec<Problem>,
    ) -> Namespaces {
        let ns = spec
            .allowed_routes
            .as_ref()
            .and_then(|a| a.namespaces.as_ref());
        match ns.and_then(|n| n.from.as_ref()) {
            None | Some(From::Same) => Namespaces::Same,
            Some(From::All) => Namespaces::All,
            Some(From::Selector) => {
                let field = format!("{at}.allowedRoutes.namespaces.selector");
                let Some(sel) = ns.and_then(|n| n.selector.clone()) else {
                    self.problem(problems, field, "from: Selector needs a selector");
                    return Namespaces::Nothing;
                };
                // Evaluate once now so a broken selector is reported per listener, not per route.
                if let Err(e) = selector::matches(&sel, &Default::default()) {
                    self.problem(problems, field, e);
                    return Namespaces::Nothing;
                }
                Namespaces::Selector(sel)
            }
        }
    }

    /// The listener's `allowedRoutes.kinds`, or the kinds its protocol carries by default;
    /// a kind its protocol cannot carry is reported and left out.
    fn admitted_kinds(
        &self,
        at: &str,
        spec: &GatewayListeners,
        protocol: ListenerProtocol,
        problems: &mut Vec<Problem>,
    ) -> Vec<&'static str> {
        let supported: &[&'static str] = match protocol {
            ListenerProtocol::Http | ListenerProtocol::Https => &["HTTPRoute", "GRPCRoute"],
            ListenerProtocol::Tls => &["TLSRoute"],
            ListenerProtocol::Tcp => &[],
        };
        let kinds = spec
            .allowed_routes
            .as_ref()
            .and_then(|a| a.kinds.as_deref())
            .unwrap_or_default();
        if kinds.is_empty() {
            return supported.to_vec();
        }
        let mut admitted = Vec::new();
        for (j, k) in kinds.iter().enumerate() {
            let group = k.group.as_deref().unwrap_or(GATEWAY_GROUP);
            let known = supported.iter().find(|s| **s == k.kind);
            if let (true, Some(kind)) = (group == GATEWAY_GROUP, known) {
                admitted.push(*kind);
            } else {
                self.problem(
                    problems,
                    format!("{at}.allowedRoutes.kinds[{j}]"),
                    format!(
                        "InvalidRouteKinds: {group}/{} is not supported on a {} listener",
                        k.kind, spec.protocol
                    ),
                );
            }
        }
        admitted
    }
}
