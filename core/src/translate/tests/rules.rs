use super::*;
use crate::model::{
    BackendTarget, HeaderMatch, HeaderModifier, HttpFilter, HttpMatch, HttpRule, PathMatch,
    PathModifier, QueryParamMatch, RequestMirror, RequestRedirect, Retry, StringMatch, Timeouts,
    UrlRewrite,
};

const GW: &str = "[{name: http, port: 80, protocol: HTTP}]";

fn translate_rules(rules: &str) -> Translation {
    let r = route(
        "infra",
        "r",
        &format!("  parentRefs: [{{name: gw}}]\n  rules:\n{rules}"),
    );
    let svc = service("infra", "web", "[{port: 80}]");
    let mirror = service("infra", "shadow", "[{port: 80}]");
    run(&[CLASS, &gateway(GW), &svc, &mirror, &r])
}

fn rules_of(rules: &str) -> Vec<HttpRule> {
    let t = translate_rules(rules);
    assert!(t.problems.is_empty(), "{:?}", problems(&t));
    http_route(&t, "infra/r").rules.clone()
}

fn one_rule(rule: &str) -> HttpRule {
    let mut rules = rules_of(rule);
    assert_eq!(rules.len(), 1);
    rules.remove(0)
}

fn web() -> BackendTarget {
    BackendTarget::Service("infra/web:80".into())
}

#[test]
fn default_match_and_default_rule() {
    let rule = one_rule("  - backendRefs: [{name: web, port: 80}]\n");
    assert_eq!(rule.matches, [HttpMatch::default()]);
    assert_eq!(rule.matches[0].path, PathMatch::PathPrefix("/".into()));
    assert_eq!(rule.backends.len(), 1);
    assert_eq!(rule.backends[0].target, web());
    assert_eq!(rule.backends[0].weight, 1);

    // A route without rules gets the rule the API server would default.
    let t = run(&[
        CLASS,
        &gateway(GW),
        &route("infra", "r", "  parentRefs: [{name: gw}]\n"),
    ]);
    let rules = &http_route(&t, "infra/r").rules;
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].matches, [HttpMatch::default()]);
    assert!(rules[0].backends.is_empty());
}

#[test]
fn matches_are_mapped_with_defaults() {
    let rule = one_rule(
        "  - name: api
    matches:
    - path: {value: /api}
    - path: {type: Exact, value: /exact}
      method: POST
    - path: {type: RegularExpression, value: '/v[0-9]+/.*'}
      headers: [{name: x-env, value: prod}, {name: x-re, type: RegularExpression, value: 'a.*'}]
      queryParams: [{name: q, value: '1'}, {name: r, type: RegularExpression, value: '^x$'}]
    - {}
",
    );
    assert_eq!(rule.name.as_deref(), Some("api"));
    let want = vec![
        HttpMatch {
            path: PathMatch::PathPrefix("/api".into()),
            ..Default::default()
        },
        HttpMatch {
            path: PathMatch::Exact("/exact".into()),
            method: Some("POST".into()),
            ..Default::default()
        },
        HttpMatch {
            path: PathMatch::RegularExpression("/v[0-9]+/.*".into()),
            headers: vec![
                HeaderMatch {
                    name: "x-env".into(),
                    value: StringMatch::Exact("prod".into()),
                },
                HeaderMatch {
                    name: "x-re".into(),
                    value: StringMatch::RegularExpression("a.*".into()),
                },
            ],
            query_params: vec![
                QueryParamMatch {
                    name: "q".into(),
                    value: StringMatch::Exact("1".into()),
                },
                QueryParamMatch {
                    name: "r".into(),
                    value: StringMatch::RegularExpression("^x$".into()),
                },
            ],
            method: None,
        },
        HttpMatch::default(),
    ];
    assert_eq!(rule.matches, want);
}

#[test]
fn filters_are_mapped() {
    let rule = one_rule(
        "  - filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-set, value: '1'}]
        add: [{name: x-add, value: '2'}]
        remove: [x-remove]
    - type: ResponseHeaderModifier
      responseHeaderModifier: {add: [{name: x-resp, value: v}]}
    - type: URLRewrite
      urlRewrite: {hostname: internal.example.com, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}
    - type: RequestMirror
      requestMirror: {backendRef: {name: shadow, port: 80}, percent: 25}
    - type: RequestMirror
      requestMirror: {backendRef: {name: shadow, port: 80}, fraction: {numerator: 1, denominator: 3}}
    - type: RequestMirror
      requestMirror: {backendRef: {name: shadow, port: 80}}
    backendRefs:
    - name: web
      port: 80
      filters:
      - type: RequestHeaderModifier
        requestHeaderModifier: {set: [{name: x-backend, value: web}]}
",
    );
    let shadow = || BackendTarget::Service("infra/shadow:80".into());
    let want = vec![
        HttpFilter::RequestHeaderModifier(HeaderModifier {
            set: vec![("x-set".into(), "1".into())],
            add: vec![("x-add".into(), "2".into())],
            remove: vec!["x-remove".into()],
        }),
        HttpFilter::ResponseHeaderModifier(HeaderModifier {
            add: vec![("x-resp".into(), "v".into())],
            ..Default::default()
        }),
        HttpFilter::UrlRewrite(UrlRewrite {
            hostname: Some("internal.example.com".into()),
            path: Some(PathModifier::ReplacePrefixMatch("/v2".into())),
        }),
        HttpFilter::RequestMirror(RequestMirror {
            backend: shadow(),
            ppm: 250_000,
        }),
        HttpFilter::RequestMirror(RequestMirror {
            backend: shadow(),
            ppm: 333_333,
        }),
        HttpFilter::RequestMirror(RequestMirror {
            backend: shadow(),
            ppm: 1_000_000,
        }),
    ];
    assert_eq!(rule.filters, want);
    assert_eq!(
        rule.backends[0].filters,
        [HttpFilter::RequestHeaderModifier(HeaderModifier {
            set: vec![("x-backend".into(), "web".into())],
            ..Default::default()
        })]
    );
}

#[test]
fn redirects_are_mapped() {
    let rules = rules_of(
        "  - matches: [{path: {value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https, hostname: new.example.com, port: 8443, statusCode: 301, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
  - matches: [{path: {type: Exact, value: /x}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /y}}
",
    );
    assert_eq!(
        rules[0].filters,
        [HttpFilter::RequestRedirect(RequestRedirect {
            scheme: Some("https".into()),
            hostname: Some("new.example.com".into()),
            path: Some(PathModifier::ReplacePrefixMatch("/new".into())),
            port: Some(8443),
            status_code: 301,
        })]
    );
    assert_eq!(
        rules[1].filters,
        [HttpFilter::RequestRedirect(RequestRedirect {
            path: Some(PathModifier::ReplaceFullPath("/y".into())),
            status_code: 302,
            ..Default::default()
        })]
    );
}

#[test]
fn unsupported_filters_make_the_rule_answer_500() {
    let t = translate_rules(
        "  - filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: a, value: b}]}
    - type: ExtensionRef
      extensionRef: {group: example.com, kind: Thing, name: t}
    backendRefs: [{name: web, port: 80}]
  - backendRefs:
    - name: web
      port: 80
      weight: 3
      filters: [{type: CORS, cors: {allowOrigins: ['*']}}]
",
    );
    let r = http_route(&t, "infra/r");
    assert!(r.rules[0].filters.is_empty());
    assert_eq!(r.rules[0].backends.len(), 1);
    assert_eq!(
        r.rules[0].backends[0].target,
        BackendTarget::Invalid(
            "UnsupportedValue: filter type ExtensionRef is not supported".into()
        )
    );
    assert_eq!(r.rules[1].backends[0].weight, 3);
    assert_eq!(
        r.rules[1].backends[0].target,
        BackendTarget::Invalid("UnsupportedValue: filter type CORS is not supported".into())
    );
    assert_eq!(
        problems(&t),
        [
            "HTTPRoute infra/r: spec.rules[0].filters[1]: UnsupportedValue: filter type ExtensionRef is not supported",
            "HTTPRoute infra/r: spec.rules[1].backendRefs[0].filters[0]: UnsupportedValue: filter type CORS is not supported",
        ]
    );
    // Neither rule ended up using the Service, so no Backend is emitted for it.
    assert_eq!(keys(&t), ["Listener infra/gw/http", "HTTPRoute infra/r"]);
}

#[test]
fn mirror_problems() {
    let table = [
        (
            "{backendRef: {name: nope, port: 80}}",
            "spec.rules[0].filters[0].requestMirror.backendRef: BackendNotFound: service infra/nope not found",
        ),
        (
            "{backendRef: {name: shadow, port: 80}, percent: 150}",
            "spec.rules[0].filters[0]: requestMirror.percent 150 is not between 0 and 100",
        ),
        (
            "{backendRef: {name: shadow, port: 80}, percent: 5, fraction: {numerator: 1}}",
            "spec.rules[0].filters[0]: requestMirror: percent and fraction are mutually exclusive",
        ),
        (
            "{backendRef: {name: shadow, port: 80}, fraction: {numerator: 2, denominator: 1}}",
            "spec.rules[0].filters[0]: requestMirror.fraction 2/1 is not between 0 and 1",
        ),
    ];
    for (mirror, want) in table {
        let t = translate_rules(&format!(
            "  - filters: [{{type: RequestMirror, requestMirror: {mirror}}}]\n    backendRefs: [{{name: web, port: 80}}]\n"
        ));
        assert_eq!(
            problems(&t),
            [format!("HTTPRoute infra/r: {want}")],
            "{mirror}"
        );
        http_route(&t, "infra/r");
    }
}

#[test]
fn timeouts_and_retry() {
    let rules = rules_of(
        "  - timeouts: {request: 10s, backendRequest: 1500ms}
    retry: {codes: [502, 503], attempts: 3, backoff: 100ms}
  - timeouts: {request: 0s}
    retry: {codes: [500]}
  - {}
",
    );
    assert_eq!(
        rules[0].timeouts,
        Timeouts {
            request_ms: Some(10_000),
            backend_request_ms: Some(1_500),
        }
    );
    assert_eq!(
        rules[0].retry,
        Some(Retry {
            codes: vec![502, 503],
            attempts: 3,
            backoff_ms: Some(100),
        })
    );
    assert_eq!(
        rules[1].timeouts,
        Timeouts::default(),
        "0s disables the timeout"
    );
    assert_eq!(rules[1].retry.as_ref().map(|r| r.attempts), Some(1));
    assert_eq!(rules[2].timeouts, Timeouts::default());
    assert_eq!(rules[2].retry, None);
}

#[test]
fn invalid_content_drops_the_route() {
    let table = [
        (
            "  - matches: [{path: {type: RegularExpression, value: '/(unclosed'}}]\n",
            "spec.rules[0].matches[0].path.value: invalid regular expression: ",
        ),
        (
            "  - {}\n  - matches: [{}, {headers: [{name: x, type: RegularExpression, value: '['}]}]\n",
            "spec.rules[1].matches[1].headers[0].value: invalid regular expression: ",
        ),
        (
            "  - matches: [{path: {value: nope}}]\n",
            "spec.rules[0].matches[0].path.value: path \"nope\" must start with '/'",
        ),
        (
            "  - timeouts: {request: 1.5s}\n",
            "spec.rules[0].timeouts.request: invalid duration \"1.5s\"",
        ),
        (
            "  - timeouts: {request: 1s, backendRequest: 2s}\n",
            "spec.rules[0].timeouts.backendRequest: backendRequest must not be longer than request",
        ),
        (
            "  - retry: {backoff: soon}\n",
            "spec.rules[0].retry.backoff: invalid duration",
        ),
        (
            "  - retry: {codes: [200]}\n",
            "spec.rules[0].retry.codes[0]: status code 200 is not between 400 and 599",
        ),
        (
            "  - retry: {attempts: -1}\n",
            "spec.rules[0].retry.attempts: attempts -1 is out of range",
        ),
        (
            "  - matches: [{path: {type: Exact, value: /a}}]\n    filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}]\n",
            "spec.rules[0].filters[0].urlRewrite.path.replacePrefixMatch: ReplacePrefixMatch needs",
        ),
        (
            "  - filters: [{type: RequestRedirect, requestRedirect: {statusCode: 200}}]\n",
            "spec.rules[0].filters[0].requestRedirect.statusCode: status code 200 is not a redirect status",
        ),
    ];
    for (rules, want) in table {
        let t = translate_rules(rules);
        assert_eq!(keys(&t), ["Listener infra/gw/http"], "{rules}");
        let problems = problems(&t);
        assert_eq!(problems.len(), 1, "{rules}: {problems:?}");
        let want = format!("HTTPRoute infra/r: {want}");
        assert!(problems[0].starts_with(&want), "{rules}: {problems:?}");
    }
}

#[test]
fn bad_route_hostname_drops_the_route() {
    let r = route(
        "infra",
        "r",
        "  hostnames: ['Bad_Host']\n  parentRefs: [{name: gw}]\n",
    );
    let t = run(&[CLASS, &gateway(GW), &r]);
    assert_eq!(
        problems(&t),
        ["HTTPRoute infra/r: spec.hostnames[0]: invalid hostname \"Bad_Host\""]
    );
}

#[test]
fn route_metadata_is_carried() {
    let r = "
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: infra, generation: 4, creationTimestamp: '2024-01-02T03:04:05Z'}
spec:
  hostnames: [b.example.com, a.example.com]
  parentRefs: [{name: gw}]
";
    let t = run(&[CLASS, &gateway(GW), r]);
    let route = http_route(&t, "infra/r");
    assert_eq!(route.version, 4);
    assert_eq!(route.created_ms, 1_704_164_645_000);
    assert_eq!(
        route.hostnames,
        ["b.example.com", "a.example.com"],
        "kept as written"
    );
    assert_eq!(
        route.parents,
        [crate::model::ListenerKey::new("infra", "gw", "http")]
    );
}
