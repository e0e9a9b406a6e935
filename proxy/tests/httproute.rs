//! HTTPRoute semantics over real sockets: YAML in, requests through the proxy to echo
//! backends, each case asserting status, which backend answered, and headers.

mod common;

use common::{Env, client, service_yaml};
use std::time::Duration;

const GATEWAY: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: gatehouse
  listeners:
    - {name: http, protocol: HTTP, port: {{PORT}}}
    - {name: wild, protocol: HTTP, port: {{PORT}}, hostname: "*.wild.test"}
    - {name: exact, protocol: HTTP, port: {{PORT}}, hostname: "exact.wild.test"}
"#;

const ROUTES: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: matches, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [match.test]
  rules:
    - matches: [{path: {type: Exact, value: /exact}}]
      backendRefs: [{name: v1, port: 80}]
    - matches: [{path: {type: PathPrefix, value: /prefix}}]
      backendRefs: [{name: v2, port: 80}]
    - matches: [{path: {type: RegularExpression, value: "/regex/[0-9]+"}}]
      backendRefs: [{name: v3, port: 80}]
    - matches: [{path: {value: /hdr}, headers: [{name: x-env, value: canary}]}]
      backendRefs: [{name: v2, port: 80}]
    - matches: [{path: {value: /hdr}, headers: [{name: x-ver, type: RegularExpression, value: "v[0-9]+"}]}]
      backendRefs: [{name: v3, port: 80}]
    - matches: [{path: {value: /hdr}}]
      backendRefs: [{name: v1, port: 80}]
    - matches: [{path: {value: /q}, queryParams: [{name: debug, value: "1"}]}]
      backendRefs: [{name: v3, port: 80}]
    - matches: [{path: {value: /q}, queryParams: [{name: id, type: RegularExpression, value: "[a-z]+"}]}]
      backendRefs: [{name: v2, port: 80}]
    - matches: [{path: {value: /q}}]
      backendRefs: [{name: v1, port: 80}]
    - matches: [{path: {value: /method}}]
      backendRefs: [{name: v1, port: 80}]
    - matches: [{path: {value: /method}, method: POST}]
      backendRefs: [{name: v2, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: prec, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [prec.test]
  rules:
    - matches: [{path: {value: /p}}]
      backendRefs: [{name: v1, port: 80}]
    - matches: [{path: {value: /p/longer}}]
      backendRefs: [{name: v2, port: 80}]
    - matches: [{path: {type: Exact, value: /p/longer/exact}}]
      backendRefs: [{name: v3, port: 80}]
    - matches: [{path: {value: /h}, headers: [{name: x-a, value: "1"}]}]
      backendRefs: [{name: v1, port: 80}]
    - matches: [{path: {value: /h}, headers: [{name: x-a, value: "1"}, {name: x-b, value: "1"}]}]
      backendRefs: [{name: v2, port: 80}]
    - matches: [{path: {value: /qp}, queryParams: [{name: a, value: "1"}]}]
      backendRefs: [{name: v1, port: 80}]
    - matches: [{path: {value: /qp}, queryParams: [{name: a, value: "1"}, {name: b, value: "1"}]}]
      backendRefs: [{name: v2, port: 80}]
    - matches: [{path: {value: /rule-order}}]
      backendRefs: [{name: v1, port: 80}]
    - matches: [{path: {value: /rule-order}}]
      backendRefs: [{name: v2, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: zz-old, namespace: default, creationTimestamp: "2020-01-01T00:00:00Z"}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [prec.test]
  rules: [{matches: [{path: {value: /age}}], backendRefs: [{name: v1, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: aa-new, namespace: default, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [prec.test]
  rules:
    - {matches: [{path: {value: /age}}], backendRefs: [{name: v2, port: 80}]}
    - {matches: [{path: {value: /alpha}}], backendRefs: [{name: v3, port: 80}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ab-new, namespace: default, creationTimestamp: "2024-01-01T00:00:00Z"}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [prec.test]
  rules: [{matches: [{path: {value: /alpha}}], backendRefs: [{name: v1, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: host-exact, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [h.host.test]
  rules: [{backendRefs: [{name: v1, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: host-wild, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: ["*.host.test"]
  rules: [{backendRefs: [{name: v2, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: wild-any, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: wild}]
  rules: [{backendRefs: [{name: v3, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: wild-intersect, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: wild}]
  hostnames: [a.wild.test, b.other.test]
  rules: [{backendRefs: [{name: v1, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: exact-listener, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: exact}]
  rules: [{matches: [{path: {value: /x}}], backendRefs: [{name: v2, port: 80}]}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: filters, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [filters.test]
  rules:
    - matches: [{path: {value: /reqhdr}}]
      filters:
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set: [{name: x-set, value: s}]
            add: [{name: x-add, value: a}]
            remove: [x-remove]
      backendRefs: [{name: v1, port: 80}]
    - matches: [{path: {value: /resphdr}}]
      filters:
        - type: ResponseHeaderModifier
          responseHeaderModifier:
            set: [{name: x-resp, value: r}]
            add: [{name: x-resp-add, value: a}]
            remove: [x-echo-backend]
      backendRefs: [{name: v1, port: 80}]
    - matches: [{path: {value: /redirect-scheme}}]
      filters: [{type: RequestRedirect, requestRedirect: {scheme: https}}]
    - matches: [{path: {value: /redirect-host}}]
      filters: [{type: RequestRedirect, requestRedirect: {hostname: other.test, statusCode: 301}}]
    - matches: [{path: {value: /redirect-port}}]
      filters: [{type: RequestRedirect, requestRedirect: {port: 8443}}]
    - matches: [{path: {value: /redirect-full}}]
      filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /new}}}]
    - matches: [{path: {value: /redirect-prefix}}]
      filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /moved}}}]
    - matches: [{path: {value: /rewrite-host}}]
      filters: [{type: URLRewrite, urlRewrite: {hostname: rewritten.test}}]
      backendRefs: [{name: v1, port: 80}]
    - matches: [{path: {value: /rewrite-full}}]
      filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /full}}}]
      backendRefs: [{name: v1, port: 80}]
    - matches: [{path: {value: /rewrite-prefix}}]
      filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /stripped}}}]
      backendRefs: [{name: v1, port: 80}]
    - matches: [{path: {value: /mirror}}]
      filters: [{type: RequestMirror, requestMirror: {backendRef: {name: mirror, port: 80}}}]
      backendRefs: [{name: v1, port: 80}]
    - matches: [{path: {value: /mirror-dead}}]
      filters: [{type: RequestMirror, requestMirror: {backendRef: {name: dead, port: 80}}}]
      backendRefs: [{name: v1, port: 80}]
    - matches: [{path: {value: /backend-filter}}]
      backendRefs:
        - name: v1
          port: 80
          filters:
            - type: RequestHeaderModifier
              requestHeaderModifier: {set: [{name: x-backend, value: "yes"}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: weights, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [weights.test]
  rules:
    - matches: [{path: {value: /zero}}]
      backendRefs: [{name: v1, port: 80, weight: 1}, {name: v2, port: 80, weight: 0}]
    - matches: [{path: {value: /split}}]
      backendRefs: [{name: v1, port: 80, weight: 1}, {name: v2, port: 80, weight: 1}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: errors, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [errors.test]
  rules:
    - matches: [{path: {value: /missing}}]
      backendRefs: [{name: nope, port: 80}]
    - matches: [{path: {value: /no-endpoints}}]
      backendRefs: [{name: empty, port: 80}]
    - matches: [{path: {value: /cross-ns}}]
      backendRefs: [{name: v2, namespace: ungranted, port: 80}]
    - matches: [{path: {value: /cross-ns-granted}}]
      backendRefs: [{name: v2, namespace: granted, port: 80}]
    - matches: [{path: {value: /backend-timeout}}]
      timeouts: {backendRequest: 200ms}
      backendRefs: [{name: v1, port: 80}]
    - matches: [{path: {value: /request-timeout}}]
      timeouts: {request: 300ms}
      backendRefs: [{name: v1, port: 80}]
    - matches: [{path: {value: /retry}}]
      retry: {codes: [503], attempts: 3}
      backendRefs: [{name: flaky, port: 80}]
    - matches: [{path: {value: /no-retry}}]
      backendRefs: [{name: flaky, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: allow-default, namespace: granted}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default}]
  to: [{group: "", kind: Service}]
"#;

/// One request and what the user must see.
#[derive(Default, Clone)]
struct Case {
    name: &'static str,
    method: &'static str,
    host: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    status: u16,
    backend: Option<&'static str>,
    echo_path: Option<&'static str>,
    echo_host: Option<&'static str>,
    /// Request headers the backend must (Some) or must not (None) have seen.
    echo_headers: Vec<(&'static str, Option<Vec<&'static str>>)>,
    /// Response headers the client must (Some) or must not (None) see.
    response_headers: Vec<(&'static str, Option<String>)>,
}

fn get(name: &'static str, host: &'static str, path: &'static str, backend: &'static str) -> Case {
    Case {
        name,
        method: "GET",
        host,
        path,
        status: 200,
        backend: Some(backend),
        ..Default::default()
    }
}

fn status(name: &'static str, host: &'static str, path: &'static str, status: u16) -> Case {
    Case {
        name,
        method: "GET",
        host,
        path,
        status,
        ..Default::default()
    }
}

impl Case {
    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }
    fn method(mut self, m: &'static str) -> Self {
        self.method = m;
        self
    }
    fn echo_path(mut self, p: &'static str) -> Self {
        self.echo_path = Some(p);
        self
    }
    fn echo_host(mut self, h: &'static str) -> Self {
        self.echo_host = Some(h);
        self
    }
    fn echo_header(mut self, name: &'static str, values: Option<Vec<&'static str>>) -> Self {
        self.echo_headers.push((name, values));
        self
    }
    fn response_header(mut self, name: &'static str, value: Option<String>) -> Self {
        self.response_headers.push((name, value));
        self
    }
}

fn cases(port: u16) -> Vec<Case> {
    let loc = |s: &str| Some(s.replace("{{PORT}}", &port.to_string()));
    vec![
        // Path matches.
        get("exact path", "match.test", "/exact", "v1"),
        status(
            "exact path is not a prefix",
            "match.test",
            "/exact/more",
            404,
        ),
        get("prefix", "match.test", "/prefix", "v2"),
        get("prefix subpath", "match.test", "/prefix/a/b", "v2"),
        status("prefix is segment-wise", "match.test", "/prefixed", 404),
        get("regex", "match.test", "/regex/42", "v3"),
        status(
            "regex matches the whole path",
            "match.test",
            "/regex/42/x",
            404,
        ),
        // Header, query and method matches.
        get("header exact", "match.test", "/hdr", "v2").header("x-env", "canary"),
        get("header regex", "match.test", "/hdr", "v3").header("x-ver", "v12"),
        get("header no match falls back", "match.test", "/hdr", "v1").header("x-env", "prod"),
        get("query exact", "match.test", "/q?debug=1", "v3"),
        get("query regex", "match.test", "/q?id=abc", "v2"),
        get("query no match", "match.test", "/q?id=123", "v1"),
        get("method match", "match.test", "/method", "v2").method("POST"),
        get("method other", "match.test", "/method", "v1"),
        // Precedence within and across routes.
        get("shorter prefix", "prec.test", "/p/x", "v1"),
        get("longest prefix wins", "prec.test", "/p/longer/x", "v2"),
        get("exact beats prefix", "prec.test", "/p/longer/exact", "v3"),
        get("more headers win", "prec.test", "/h", "v2")
            .header("x-a", "1")
            .header("x-b", "1"),
        get(
            "fewer headers when only they match",
            "prec.test",
            "/h",
            "v1",
        )
        .header("x-a", "1"),
        get("more query params win", "prec.test", "/qp?a=1&b=1", "v2"),
        get("first rule wins ties", "prec.test", "/rule-order", "v1"),
        get("oldest route wins ties", "prec.test", "/age", "v1"),
        get(
            "namespace/name breaks equal age",
            "prec.test",
            "/alpha",
            "v3",
        ),
        // Hostnames.
        get("exact hostname beats wildcard", "h.host.test", "/", "v1"),
        get("wildcard hostname", "x.host.test", "/", "v2"),
        get("wildcard spans labels", "a.b.host.test", "/", "v2"),
        status("wildcard needs a label", "host.test", "/", 404),
        get("hostname with port and case", "H.HOST.TEST:1234", "/", "v1"),
        get(
            "route without hostnames takes the listener's",
            "zz.wild.test",
            "/",
            "v3",
        ),
        get("listener/route intersection", "a.wild.test", "/", "v1"),
        status("route hostname outside listener", "b.other.test", "/", 404),
        get(
            "exact listener serves its routes",
            "exact.wild.test",
            "/x",
            "v2",
        ),
        status("listener isolation", "exact.wild.test", "/y", 404),
        status("nothing matches", "nomatch.test", "/", 404),
        // Filters.
        get("request header modifier", "filters.test", "/reqhdr", "v1")
            .header("x-set", "orig")
            .header("x-add", "c")
            .header("x-remove", "gone")
            .echo_header("x-set", Some(vec!["s"]))
            .echo_header("x-add", Some(vec!["c", "a"]))
            .echo_header("x-remove", None),
        get("response header modifier", "filters.test", "/resphdr", "v1")
            .response_header("x-resp", Some("r".into()))
            .response_header("x-resp-add", Some("a".into()))
            .response_header("x-echo-backend", None),
        status(
            "redirect scheme",
            "filters.test",
            "/redirect-scheme?k=v",
            302,
        )
        .response_header(
            "location",
            Some("https://filters.test/redirect-scheme?k=v".into()),
        ),
        status(
            "redirect hostname 301",
            "filters.test",
            "/redirect-host",
            301,
        )
        .response_header("location", loc("http://other.test:{{PORT}}/redirect-host")),
        status("redirect port", "filters.test", "/redirect-port", 302).response_header(
            "location",
            Some("http://filters.test:8443/redirect-port".into()),
        ),
        status(
            "redirect full path",
            "filters.test",
            "/redirect-full/a",
            302,
        )
        .response_header("location", loc("http://filters.test:{{PORT}}/new")),
        status("redirect prefix", "filters.test", "/redirect-prefix/a", 302)
            .response_header("location", loc("http://filters.test:{{PORT}}/moved/a")),
        get("rewrite hostname", "filters.test", "/rewrite-host", "v1").echo_host("rewritten.test"),
        get(
            "rewrite full path",
            "filters.test",
            "/rewrite-full/a/b",
            "v1",
        )
        .echo_path("/full"),
        get(
            "rewrite prefix",
            "filters.test",
            "/rewrite-prefix/a/b",
            "v1",
        )
        .echo_path("/stripped/a/b"),
        get(
            "mirror to dead backend never fails",
            "filters.test",
            "/mirror-dead",
            "v1",
        ),
        get("backendRef filter", "filters.test", "/backend-filter", "v1")
            .echo_header("x-backend", Some(vec!["yes"])),
        get("zero weight never chosen", "weights.test", "/zero", "v1"),
        // Errors.
        status("missing Service is 500", "errors.test", "/missing", 500),
        status(
            "no ready endpoint is 503",
            "errors.test",
            "/no-endpoints",
            503,
        ),
        status(
            "cross-namespace without grant is 500",
            "errors.test",
            "/cross-ns",
            500,
        ),
        get(
            "cross-namespace with grant",
            "errors.test",
            "/cross-ns-granted",
            "granted-v2",
        ),
        status(
            "backend timeout is 504",
            "errors.test",
            "/backend-timeout",
            504,
        )
        .header("x-echo-delay-ms", "2000"),
        status(
            "request timeout is 504",
            "errors.test",
            "/request-timeout",
            504,
        )
        .header("x-echo-delay-ms", "2000"),
        get("within timeout", "errors.test", "/backend-timeout", "v1")
            .header("x-echo-delay-ms", "10"),
    ]
}

async fn setup() -> Env {
    let mut env = Env::start().await;
    let mut services = String::new();
    for (name, status) in [
        ("v1", 200),
        ("v2", 200),
        ("v3", 200),
        ("mirror", 200),
        ("fail", 503),
    ] {
        let addr = env.add_backend(name, status).await;
        services += &service_yaml("default", name, &[addr.port()], None);
        services += "---\n";
    }
    let granted = env.add_backend("granted-v2", 200).await;
    services += &service_yaml("granted", "v2", &[granted.port()], None);
    services += "---\n";
    services += &service_yaml("ungranted", "v2", &[granted.port()], None);
    services += "---\n";
    let flaky = [
        env.backends["fail"].addr.port(),
        env.backends["v1"].addr.port(),
    ];
    services += &service_yaml("default", "flaky", &flaky, None);
    services += "---\n";
    services += &service_yaml("default", "dead", &[common::free_port()], None);
    services += r#"---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: default}
spec: {ports: [{name: http, port: 80}]}
"#;
    env.write("gateway.yaml", GATEWAY);
    env.write("services.yaml", &services);
    env.write("routes.yaml", ROUTES);
    let report = env.sync();
    assert!(
        report.applied.is_some(),
        "config applied: {:?}",
        report.errors
    );
    env.wait_listening().await;
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_semantics_table() {
    let env = setup().await;
    let http = client();
    let mut failures = Vec::new();
    for case in cases(env.port) {
        let mut req = http
            .request(case.method.parse().unwrap(), env.url(case.path))
            .header("host", case.host);
        for (k, v) in &case.headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.expect(case.name);
        let got_status = resp.status().as_u16();
        let resp_headers = resp.headers().clone();
        let body = resp.bytes().await.unwrap();
        let echo: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let mut problems = Vec::new();
        if got_status != case.status {
            problems.push(format!("status {got_status}, want {}", case.status));
        }
        for (field, want) in [
            ("backend", case.backend),
            ("path", case.echo_path),
            ("host", case.echo_host),
        ] {
            if let Some(want) = want
                && echo[field] != want
            {
                problems.push(format!("backend saw {field} {}, want {want}", echo[field]));
            }
        }
        for (name, want) in &case.echo_headers {
            let got = &echo["headers"][*name];
            match want {
                Some(values) if *got != serde_json::json!(values) => {
                    problems.push(format!("backend saw {name}: {got}, want {values:?}"))
                }
                None if !got.is_null() => {
                    problems.push(format!("backend saw {name}: {got}, want none"))
                }
                _ => {}
            }
        }
        for (name, want) in &case.response_headers {
            let got = resp_headers
                .get(*name)
                .map(|v| v.to_str().unwrap().to_string());
            if got != *want {
                problems.push(format!("response {name}: {got:?}, want {want:?}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}", case.name, problems.join("; ")));
        }
    }
    assert!(
        failures.is_empty(),
        "failed cases:\n{}",
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weights_retries_and_mirrors() {
    let env = setup().await;
    let http = client();
    let send = |path: &'static str| {
        http.get(env.url(path))
            .header(
                "host",
                if path.starts_with("/split") {
                    "weights.test"
                } else if path.contains("retry") {
                    "errors.test"
                } else {
                    "filters.test"
                },
            )
            .send()
    };

    // A 1:1 split reaches both backends.
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..200 {
        let echo: serde_json::Value = send("/split").await.unwrap().json().await.unwrap();
        *seen
            .entry(echo["backend"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    assert!(seen.get("v1").copied().unwrap_or(0) > 40, "split {seen:?}");
    assert!(seen.get("v2").copied().unwrap_or(0) > 40, "split {seen:?}");

    // One endpoint of `flaky` always answers 503: with a retry policy the client never sees it.
    let before = env.served("fail");
    for _ in 0..20 {
        assert_eq!(send("/retry").await.unwrap().status(), 200);
    }
    assert!(
        env.served("fail") > before,
        "the failing endpoint was tried"
    );
    // Without one, some requests get the 503.
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(send("/no-retry").await.unwrap().status().as_u16());
    }
    assert!(statuses.contains(&503), "{statuses:?}");

    // Mirrors receive a copy; the main request is answered by the main backend.
    let before = env.served("mirror");
    for _ in 0..5 {
        let echo: serde_json::Value = send("/mirror").await.unwrap().json().await.unwrap();
        assert_eq!(echo["backend"], "v1");
    }
    for _ in 0..100 {
        if env.served("mirror") >= before + 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(env.served("mirror"), before + 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_file_keeps_the_last_good_config() {
    let mut env = setup().await;
    let http = client();
    let url = env.url("/exact");
    let ok = || http.get(&url).header("host", "match.test").send();
    assert_eq!(ok().await.unwrap().status(), 200);

    env.write(
        "routes.yaml",
        &ROUTES.replace("type: Exact, value: /exact", "type: Exactly, value: /exact"),
    );
    let report = env.sync();
    assert!(report.applied.is_none());
    let error = report.errors.join("\n");
    assert!(error.contains("routes.yaml"), "{error}");
    assert!(error.contains("HTTPRoute default/matches"), "{error}");
    assert!(
        error.contains("spec.rules[0].matches[0].path.type"),
        "{error}"
    );
    assert_eq!(
        ok().await.unwrap().status(),
        200,
        "last good config still serves"
    );

    // A regex that does not compile is refused with its field, and nothing changes.
    env.write(
        "routes.yaml",
        &ROUTES.replace("/regex/[0-9]+", "/regex/[0-9+"),
    );
    let report = env.sync();
    let error = report.errors.join("\n");
    assert!(error.contains("default/matches"), "{error}");
    assert!(error.contains("rules[2].matches[0].path"), "{error}");
    assert_eq!(ok().await.unwrap().status(), 200);
}
