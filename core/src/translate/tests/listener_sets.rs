//! ListenerSets: admission by the Gateway, keys, conflicts, route attachment.

use super::*;

const NAMESPACES: &str = "
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: team-a, labels: {listeners: allowed}}}
- {apiVersion: v1, kind: Namespace, metadata: {name: team-b}}
";

/// Gateway `infra/gw` with one admin listener on port 80 for `admin.example.com`, admitting
/// ListenerSets as `allowed` says (flow-style `allowedListeners.namespaces`).
fn gateway_admitting(allowed: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: infra}}
spec:
  gatewayClassName: gatehouse
  allowedListeners: {{namespaces: {allowed}}}
  listeners:
  - {{name: admin, port: 80, protocol: HTTP, hostname: admin.example.com, allowedRoutes: {{namespaces: {{from: All}}}}}}
"
    )
}

fn listener_set(ns: &str, name: &str, created: &str, listeners: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {{name: {name}, namespace: {ns}, creationTimestamp: '{created}'}}
spec:
  parentRef: {{name: gw, namespace: infra}}
  listeners: {listeners}
"
    )
}

fn set_route(ns: &str, name: &str, parent: &str) -> String {
    route(
        ns,
        name,
        &format!(
            "  parentRefs: [{parent}]\n  rules: [{{backendRefs: [{{name: web, port: 80}}]}}]\n"
        ),
    )
}

const SHOP: &str = "[{name: shop, port: 80, protocol: HTTP, hostname: shop.team-a.example, allowedRoutes: {namespaces: {from: Same}}}]";

#[test]
fn admitted_listener_set_is_served_on_the_gateway_address_under_the_gateway_key() {
    let t = run(&[
        CLASS,
        NAMESPACES,
        &gateway_admitting("{from: All}"),
        &listener_set("team-a", "shop", "2026-01-01T00:00:00Z", SHOP),
    ]);
    assert_eq!(problems(&t), Vec::<String>::new());
    let l = listener(&t, "infra/gw/team-a/shop/shop");
    assert_eq!(l.port, 80);
    assert_eq!(l.hostname.as_deref(), Some("shop.team-a.example"));
    assert_eq!(l.address, listener(&t, "infra/gw/admin").address);
}

#[test]
fn gateways_admit_no_listener_set_unless_they_say_so() {
    for (allowed, admitted) in [
        ("{}", false),
        ("{from: None}", false),
        ("{from: Same}", false),
        ("{from: All}", true),
        (
            "{from: Selector, selector: {matchLabels: {listeners: allowed}}}",
            true,
        ),
        (
            "{from: Selector, selector: {matchLabels: {listeners: other}}}",
            false,
        ),
    ] {
        let t = run(&[
            CLASS,
            NAMESPACES,
            &gateway_admitting(allowed),
            &listener_set("team-a", "shop", "2026-01-01T00:00:00Z", SHOP),
        ]);
        let served = t
            .resources
            .contains_key(&ResourceKey::Listener("infra/gw/team-a/shop/shop".into()));
        assert_eq!(served, admitted, "allowedListeners {allowed}");
        if !admitted {
            assert_eq!(
                problems(&t),
                [
                    "ListenerSet team-a/shop: spec.parentRef: NotAllowed: Gateway infra/gw does not admit ListenerSets from namespace team-a"
                ],
                "allowedListeners {allowed}"
            );
        }
    }
}

#[test]
fn the_gateway_wins_conflicts_then_the_oldest_listener_set() {
    let t = run(&[
        CLASS,
        NAMESPACES,
        &gateway_admitting("{from: All}"),
        // Newer, declared first: must lose to the older one whatever the input order.
        &listener_set(
            "team-b",
            "late",
            "2026-02-01T00:00:00Z",
            "[{name: shop, port: 80, protocol: HTTP, hostname: shop.team-a.example}]",
        ),
        &listener_set(
            "team-a",
            "early",
            "2026-01-01T00:00:00Z",
            "[{name: admin, port: 80, protocol: HTTP, hostname: admin.example.com}, {name: shop, port: 80, protocol: HTTP, hostname: shop.team-a.example}, {name: tls, port: 80, protocol: HTTPS, hostname: tls.team-a.example, tls: {certificateRefs: [{name: missing}]}}]",
        ),
    ]);
    let p = problems(&t);
    assert!(
        p.contains(&"ListenerSet team-a/early: spec.listeners[0]: HostnameConflict: listener admin already serves this port and hostname".to_string()),
        "{p:?}"
    );
    assert!(
        p.iter().any(
            |p| p.starts_with("ListenerSet team-a/early: spec.listeners[2]: ProtocolConflict:")
        ),
        "{p:?}"
    );
    assert!(
        p.contains(&"ListenerSet team-b/late: spec.listeners[0]: HostnameConflict: listener shop already serves this port and hostname".to_string()),
        "{p:?}"
    );
    // The admin's listener and the older ListenerSet's serve; nothing of the newer one.
    let served: Vec<String> = keys(&t)
        .into_iter()
        .filter(|k| k.starts_with("Listener "))
        .collect();
    assert_eq!(
        served,
        [
            "Listener infra/gw/admin",
            "Listener infra/gw/team-a/early/shop"
        ]
    );
}

#[test]
fn routes_attach_to_the_parent_they_name() {
    let t = run(&[
        CLASS,
        NAMESPACES,
        &gateway_admitting("{from: All}"),
        &listener_set("team-a", "shop", "2026-01-01T00:00:00Z", SHOP),
        &service("team-a", "web", "[{port: 80}]"),
        &service("infra", "web", "[{port: 80}]"),
        &set_route(
            "team-a",
            "via-set",
            "{kind: ListenerSet, group: gateway.networking.k8s.io, name: shop}",
        ),
        &set_route("infra", "via-gateway", "{name: gw}"),
        // allowedRoutes Same means the ListenerSet's namespace, not the Gateway's.
        &set_route(
            "infra",
            "outsider",
            "{kind: ListenerSet, name: shop, namespace: team-a}",
        ),
        &set_route("team-a", "missing", "{kind: ListenerSet, name: nope}"),
    ]);
    assert_eq!(
        http_route(&t, "team-a/via-set").parents,
        [crate::model::ListenerKey::from("infra/gw/team-a/shop/shop")]
    );
    // A route on the Gateway does not spill onto ListenerSet listeners.
    assert_eq!(
        http_route(&t, "infra/via-gateway").parents,
        [crate::model::ListenerKey::from("infra/gw/admin")]
    );
    let p = problems(&t);
    assert!(
        p.iter().any(|p| p.starts_with("HTTPRoute infra/outsider: spec.parentRefs[0]: NotAllowedByListeners: no selected listener of ListenerSet team-a/shop admits HTTPRoutes from namespace infra")),
        "{p:?}"
    );
    assert!(
        p.iter().any(|p| p.starts_with("HTTPRoute team-a/missing: spec.parentRefs[0]: NoMatchingParent: ListenerSet team-a/nope not found")),
        "{p:?}"
    );
}

#[test]
fn listener_set_certificates_need_a_grant_from_listener_sets() {
    let secret = tls_secret("certs", "shop", &["tls.team-a.example"]);
    let set = listener_set(
        "team-a",
        "shop",
        "2026-01-01T00:00:00Z",
        "[{name: tls, port: 443, protocol: HTTPS, hostname: tls.team-a.example, tls: {certificateRefs: [{name: shop, namespace: certs}]}}]",
    );
    let grant = |kind: &str| {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {{name: g, namespace: certs}}
spec:
  from: [{{group: gateway.networking.k8s.io, kind: {kind}, namespace: team-a}}]
  to: [{{group: '', kind: Secret}}]
"
        )
    };
    let gw = gateway_admitting("{from: All}");
    let key = ResourceKey::Listener("infra/gw/team-a/shop/tls".into());
    // A grant for Gateways does not cover ListenerSets.
    let t = run(&[CLASS, NAMESPACES, &gw, &set, &secret, &grant("Gateway")]);
    assert!(!t.resources.contains_key(&key));
    assert!(
        problems(&t).iter().any(|p| p.contains("RefNotPermitted")),
        "{:?}",
        problems(&t)
    );
    let t = run(&[CLASS, NAMESPACES, &gw, &set, &secret, &grant("ListenerSet")]);
    assert!(t.resources.contains_key(&key), "{:?}", problems(&t));
}

#[test]
fn listener_sets_of_other_controllers_gateways_are_left_alone() {
    let foreign_gw = "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: infra}
spec:
  gatewayClassName: someone-else
  allowedListeners: {namespaces: {from: All}}
  listeners: [{name: admin, port: 80, protocol: HTTP}]
";
    let other_class = "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: someone-else}
spec: {controllerName: example.com/other}
";
    let t = run(&[
        CLASS,
        other_class,
        NAMESPACES,
        foreign_gw,
        &listener_set("team-a", "shop", "2026-01-01T00:00:00Z", SHOP),
        &set_route("team-a", "via-set", "{kind: ListenerSet, name: shop}"),
    ]);
    assert_eq!(problems(&t), Vec::<String>::new());
    assert!(t.resources.is_empty(), "{:?}", keys(&t));
}
