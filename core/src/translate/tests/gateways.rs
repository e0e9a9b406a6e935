use super::*;
use crate::model::{CertificateKey, ListenerProtocol, ListenerTls, TlsMode};

const GRANT_SECRETS_TO_INFRA: &str = "
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: certs, namespace: certs}
spec:
  from: [{group: gateway.networking.k8s.io, kind: Gateway, namespace: infra}]
  to: [{group: '', kind: Secret}]
";

#[test]
fn listeners_are_translated() {
    let gw = gateway(
        "
  - {name: http, port: 80, protocol: HTTP, hostname: '*.example.com'}
  - name: https
    port: 443
    protocol: HTTPS
    tls: {certificateRefs: [{name: site}, {name: other, namespace: certs}, {name: site, kind: Secret, group: ''}]}
  - {name: tls, port: 8443, protocol: TLS, tls: {mode: Passthrough}}
  - {name: tcp, port: 5432, protocol: TCP}",
    );
    let site = tls_secret("infra", "site", &["site.example.com"]);
    let other = tls_secret("certs", "other", &["other.example.com"]);
    let t = run(&[CLASS, &gw, GRANT_SECRETS_TO_INFRA, &site, &other]);
    assert!(t.problems.is_empty(), "{:?}", problems(&t));
    assert_eq!(
        keys(&t),
        [
            "Listener infra/gw/http",
            "Listener infra/gw/https",
            "Listener infra/gw/tcp",
            "Listener infra/gw/tls",
            "Certificate certs/other",
            "Certificate infra/site",
        ]
    );
    let http = listener(&t, "infra/gw/http");
    assert_eq!(http.version, 3);
    assert_eq!(http.port, 80);
    assert_eq!(http.address, opts().default_address);
    assert_eq!(http.protocol, ListenerProtocol::Http);
    assert_eq!(http.hostname.as_deref(), Some("*.example.com"));
    assert_eq!(http.tls, None);
    assert_eq!(
        listener(&t, "infra/gw/https").tls,
        Some(ListenerTls {
            mode: TlsMode::Terminate,
            certificates: vec![
                CertificateKey::from("certs/other"),
                CertificateKey::from("infra/site")
            ],
        })
    );
    let tls = listener(&t, "infra/gw/tls");
    assert_eq!(tls.protocol, ListenerProtocol::Tls);
    assert_eq!(tls.tls.as_ref().map(|t| t.mode), Some(TlsMode::Passthrough));
    assert_eq!(listener(&t, "infra/gw/tcp").protocol, ListenerProtocol::Tcp);
}

#[test]
fn bad_listeners_are_skipped_with_a_problem() {
    let gw = gateway(
        "
  - {name: udp, port: 53, protocol: UDP}
  - {name: big, port: 70000, protocol: HTTP}
  - {name: zero, port: 0, protocol: HTTP}
  - {name: host, port: 80, protocol: HTTP, hostname: 'Not_Valid'}
  - {name: notls, port: 443, protocol: HTTPS}
  - {name: secretless, port: 443, protocol: HTTPS, tls: {certificateRefs: [{name: s, namespace: certs}]}}
  - {name: ok, port: 80, protocol: HTTP}
  - {name: ok, port: 81, protocol: HTTP}
  - {name: clash, port: 80, protocol: HTTP}
  - {name: proto, port: 80, protocol: TCP}",
    );
    let t = run(&[CLASS, &gw]);
    assert_eq!(keys(&t), ["Listener infra/gw/ok"]);
    let want = [
        "Gateway infra/gw: spec.listeners[0].protocol: UnsupportedProtocol: UDP is not supported",
        "Gateway infra/gw: spec.listeners[1].port: port 70000 is out of range",
        "Gateway infra/gw: spec.listeners[2].port: port must not be 0",
        "Gateway infra/gw: spec.listeners[3].hostname: invalid hostname \"Not_Valid\"",
        "Gateway infra/gw: spec.listeners[4].tls: HTTPS and TLS listeners need a tls block",
        // Not served for want of a usable certificate; the ref's own problem says why (and
        // routes may still attach to it, so it counts them in attachedRoutes).
        "Gateway infra/gw: spec.listeners[5].tls.certificateRefs[0]: RefNotPermitted: no ReferenceGrant in certs allows Secret s",
        "Gateway infra/gw: spec.listeners[7]: listener name ok is used twice",
        "Gateway infra/gw: spec.listeners[8]: HostnameConflict: listener ok already serves this port and hostname",
        "Gateway infra/gw: spec.listeners[9]: ProtocolConflict: port 80 is already used with another protocol by listener ok",
    ];
    assert_eq!(problems(&t), want);
}

#[test]
fn gateway_class_decides_ownership() {
    let foreign_class = "
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: other}
spec: {controllerName: example.com/other}
";
    let gw = |class: &str, name: &str| {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {name}, namespace: infra}}
spec: {{gatewayClassName: {class}, listeners: [{{name: http, port: 80, protocol: HTTP}}]}}
"
        )
    };
    let docs = [
        CLASS.to_string(),
        foreign_class.to_string(),
        gw("gatehouse", "mine"),
        gw("other", "theirs"),
        gw("ghost", "orphan"),
    ];
    let docs: Vec<&str> = docs.iter().map(String::as_str).collect();

    let strict = translate(&objects(&docs), &opts());
    assert_eq!(keys(&strict), ["Listener infra/mine/http"]);
    assert_eq!(
        problems(&strict),
        ["Gateway infra/orphan: spec.gatewayClassName: GatewayClass ghost not found"]
    );

    let standalone = TranslateOptions {
        accept_gateways_without_class: true,
        ..opts()
    };
    let lenient = translate(&objects(&docs), &standalone);
    assert_eq!(
        keys(&lenient),
        ["Listener infra/mine/http", "Listener infra/orphan/http"]
    );
    assert!(lenient.problems.is_empty());
}

#[test]
fn gateway_addresses() {
    let gw = |addresses: &str| {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: infra}}
spec:
  gatewayClassName: gatehouse
  addresses: {addresses}
  listeners: [{{name: http, port: 80, protocol: HTTP}}]
"
        )
    };
    let table: &[(&str, Option<&str>, &[&str])] = &[
        ("[]", Some("0.0.0.0"), &[]),
        ("[{value: 10.1.2.3}]", Some("10.1.2.3"), &[]),
        ("[{type: IPAddress, value: '::1'}]", Some("::1"), &[]),
        (
            "[{type: IPAddress, value: 10.0.0.1}, {value: 10.0.0.2}]",
            Some("10.0.0.1"),
            &["Gateway infra/gw: spec.addresses[1]: only the first address is used"],
        ),
        (
            "[{type: Hostname, value: lb.example.com}]",
            None,
            &[
                "Gateway infra/gw: spec.addresses[0].type: UnsupportedAddress: address type Hostname is not supported",
            ],
        ),
        (
            "[{value: not-an-ip}]",
            None,
            &[
                "Gateway infra/gw: spec.addresses[0].value: UnsupportedAddress: \"not-an-ip\" is not an IP address",
            ],
        ),
    ];
    for (addresses, want, want_problems) in table {
        let t = run(&[CLASS, &gw(addresses)]);
        let got = t.resources.values().next().map(|r| match r {
            Resource::Listener(l) => l.address.to_string(),
            other => panic!("{other:?}"),
        });
        assert_eq!(got.as_deref(), *want, "{addresses}");
        assert_eq!(problems(&t), *want_problems, "{addresses}");
    }
}

#[test]
fn unsupported_route_kinds_are_reported() {
    let gw = gateway(
        "
  - name: http
    port: 80
    protocol: HTTP
    allowedRoutes: {kinds: [{kind: HTTPRoute}, {kind: GRPCRoute}, {kind: TLSRoute}]}",
    );
    let t = run(&[CLASS, &gw]);
    assert_eq!(
        problems(&t),
        [
            "Gateway infra/gw: spec.listeners[0].allowedRoutes.kinds[2]: InvalidRouteKinds: gateway.networking.k8s.io/TLSRoute is not supported on a HTTP listener"
        ]
    );
}
