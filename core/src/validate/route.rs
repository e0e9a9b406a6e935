//! HTTPRoute checks: everything the proxy would otherwise discover at request time.

use super::{Check, fail, is_header_value, is_token};
use crate::hostname::is_valid_hostname;
use crate::model::{
    GrpcMatch, GrpcMethodMatchType, GrpcRoute, HeaderModifier, HttpFilter, HttpMatch, HttpRoute,
    HttpRule, PathMatch, PathModifier, RequestRedirect, StringMatch, TlsRoute, UrlRewrite,
    WeightedBackend,
};
use std::collections::HashSet;

const MAX_WEIGHT: u32 = 1_000_000;
const ALL_PPM: u32 = 1_000_000;
const REDIRECT_CODES: [u16; 5] = [301, 302, 303, 307, 308];

pub(super) fn http_route(r: &HttpRoute) -> Check {
    for (i, h) in r.hostnames.iter().enumerate() {
        if !is_valid_hostname(h) {
            return fail(format!("hostnames[{i}]"), format!("invalid hostname {h:?}"));
        }
    }
    for (i, rule) in r.rules.iter().enumerate() {
        http_rule(&format!("rules[{i}]"), rule)?;
    }
    Ok(())
}

pub(super) fn grpc_route(r: &GrpcRoute) -> Check {
    hostnames(&r.hostnames)?;
    for (i, rule) in r.rules.iter().enumerate() {
        let at = format!("rules[{i}]");
        for (j, m) in rule.matches.iter().enumerate() {
            grpc_match(&format!("{at}.matches[{j}]"), m)?;
        }
        grpc_filters(&format!("{at}.filters"), &rule.filters)?;
        for (j, b) in rule.backends.iter().enumerate() {
            let bat = format!("{at}.backendRefs[{j}]");
            weight(&bat, b)?;
            grpc_filters(&format!("{bat}.filters"), &b.filters)?;
        }
    }
    Ok(())
}

pub(super) fn tls_route(r: &TlsRoute) -> Check {
    hostnames(&r.hostnames)?;
    for (i, rule) in r.rules.iter().enumerate() {
        for (j, b) in rule.backends.iter().enumerate() {
            let bat = format!("rules[{i}].backendRefs[{j}]");
            weight(&bat, b)?;
            if !b.filters.is_empty() {
                return fail(
                    format!("{bat}.filters"),
                    "TLSRoute backends take no filters",
                );
            }
        }
    }
    Ok(())
}

fn hostnames(list: &[String]) -> Check {
    for (i, h) in list.iter().enumerate() {
        if !is_valid_hostname(h) {
            return fail(format!("hostnames[{i}]"), format!("invalid hostname {h:?}"));
        }
    }
    Ok(())
}

fn weight(at: &str, b: &WeightedBackend) -> Check {
    if b.weight > MAX_WEIGHT {
        return fail(format!("{at}.weight"), format!("weight above {MAX_WEIGHT}"));
    }
    Ok(())
}

/// gRPC names: no `/` (it separates service from method) and nothing a path would escape.
fn grpc_name(at: &str, name: &str) -> Check {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-$".contains(&b));
    if ok {
        Ok(())
    } else {
        fail(at, format!("invalid gRPC name {name:?}"))
    }
}

fn grpc_match(at: &str, m: &GrpcMatch) -> Check {
    if let Some(method) = &m.method {
        let mat = format!("{at}.method");
        if method.service.is_none() && method.method.is_none() {
            return fail(mat, "one of service and method is required");
        }
        for (field, value) in [("service", &method.service), ("method", &method.method)] {
            let Some(value) = value else { continue };
            let fat = format!("{mat}.{field}");
            match method.kind {
                GrpcMethodMatchType::Exact => grpc_name(&fat, value)?,
                GrpcMethodMatchType::RegularExpression => regex(&fat, value)?,
            }
        }
    }
    for (i, h) in m.headers.iter().enumerate() {
        if !is_token(&h.name) {
            return fail(
                format!("{at}.headers[{i}].name"),
                format!("invalid header name {:?}", h.name),
            );
        }
        string_match(&format!("{at}.headers[{i}].value"), &h.value)?;
    }
    Ok(())
}

/// GRPCRoute has no redirects or rewrites: a gRPC client could not follow them.
fn grpc_filters(at: &str, filters: &[HttpFilter]) -> Check {
    for (i, f) in filters.iter().enumerate() {
        if matches!(
            f,
            HttpFilter::RequestRedirect(_) | HttpFilter::UrlRewrite(_)
        ) {
            return fail(
                format!("{at}[{i}]"),
                "GRPCRoute supports RequestHeaderModifier, ResponseHeaderModifier and RequestMirror only",
            );
        }
    }
    filter_list(at, filters, false)
}

fn http_rule(at: &str, rule: &HttpRule) -> Check {
    for (i, m) in rule.matches.iter().enumerate() {
        http_match(&format!("{at}.matches[{i}]"), m)?;
    }
    // ReplacePrefixMatch rewrites "the part that matched", which only PathPrefix defines.
    let prefix_only = rule
        .matches
        .iter()
        .all(|m| matches!(m.path, PathMatch::PathPrefix(_)));
    filter_list(&format!("{at}.filters"), &rule.filters, prefix_only)?;
    for (i, b) in rule.backends.iter().enumerate() {
        let bat = format!("{at}.backendRefs[{i}]");
        if b.weight > MAX_WEIGHT {
            return fail(
                format!("{bat}.weight"),
                format!("weight above {MAX_WEIGHT}"),
            );
        }
        filter_list(&format!("{bat}.filters"), &b.filters, prefix_only)?;
    }
    if let (Some(request), Some(backend)) =
        (rule.timeouts.request_ms, rule.timeouts.backend_request_ms)
        && backend > request
    {
        return fail(
            format!("{at}.timeouts.backendRequest"),
            "backendRequest must not be longer than request",
        );
    }
    if let Some(retry) = &rule.retry {
        for (i, code) in retry.codes.iter().enumerate() {
            if !(400..=599).contains(code) {
                return fail(
                    format!("{at}.retry.codes[{i}]"),
                    format!("status code {code} is not between 400 and 599"),
                );
            }
        }
    }
    Ok(())
}

fn http_match(at: &str, m: &HttpMatch) -> Check {
    match &m.path {
        PathMatch::Exact(p) | PathMatch::PathPrefix(p) => {
            path_value(&format!("{at}.path.value"), p)?
        }
        PathMatch::RegularExpression(re) => regex(&format!("{at}.path.value"), re)?,
    }
    for (i, h) in m.headers.iter().enumerate() {
        if !is_token(&h.name) {
            return fail(
                format!("{at}.headers[{i}].name"),
                format!("invalid header name {:?}", h.name),
            );
        }
        string_match(&format!("{at}.headers[{i}].value"), &h.value)?;
    }
    for (i, q) in m.query_params.iter().enumerate() {
        if q.name.is_empty() {
            return fail(format!("{at}.queryParams[{i}].name"), "empty name");
        }
        string_match(&format!("{at}.queryParams[{i}].value"), &q.value)?;
    }
    match &m.method {
        Some(method) if !is_token(method) => {
            fail(format!("{at}.method"), format!("invalid method {method:?}"))
        }
        _ => Ok(()),
    }
}

fn string_match(at: &str, m: &StringMatch) -> Check {
    match m {
        StringMatch::Exact(_) => Ok(()),
        StringMatch::RegularExpression(re) => regex(at, re),
    }
}

fn regex(at: &str, re: &str) -> Check {
    match regex::Regex::new(re) {
        Ok(_) => Ok(()),
        Err(e) => fail(at, format!("invalid regular expression: {e}")),
    }
}

/// Paths the spec refuses because proxies and backends would normalise them differently.
fn path_value(at: &str, p: &str) -> Check {
    if !p.starts_with('/') {
        return fail(at, format!("path {p:?} must start with '/'"));
    }
    let bad = ["//", "/./", "/../", "%2f", "%2F", "#"]
        .iter()
        .find(|s| p.contains(*s))
        .copied()
        .or_else(|| ["/..", "/."].into_iter().find(|s| p.ends_with(s)));
    match bad {
        Some(s) => fail(at, format!("path {p:?} must not contain {s:?}")),
        None => Ok(()),
    }
}

fn filter_list(at: &str, filters: &[HttpFilter], prefix_only: bool) -> Check {
    let mut seen = HashSet::new();
    for (i, f) in filters.iter().enumerate() {
        let fat = format!("{at}[{i}]");
        let once = !matches!(f, HttpFilter::RequestMirror(_));
        if once && !seen.insert(std::mem::discriminant(f)) {
            return fail(fat, "this filter type may appear only once");
        }
        filter(&fat, f, prefix_only)?;
    }
    let has = |pred: fn(&HttpFilter) -> bool| filters.iter().any(pred);
    if has(|f| matches!(f, HttpFilter::RequestRedirect(_)))
        && has(|f| matches!(f, HttpFilter::UrlRewrite(_)))
    {
        return fail(at, "RequestRedirect and URLRewrite cannot be combined");
    }
    Ok(())
}

fn filter(at: &str, f: &HttpFilter, prefix_only: bool) -> Check {
    match f {
        HttpFilter::RequestHeaderModifier(m) => {
            header_modifier(&format!("{at}.requestHeaderModifier"), m)
        }
        HttpFilter::ResponseHeaderModifier(m) => {
            header_modifier(&format!("{at}.responseHeaderModifier"), m)
        }
        HttpFilter::RequestRedirect(r) => {
            redirect(&format!("{at}.requestRedirect"), r, prefix_only)
        }
        HttpFilter::UrlRewrite(r) => rewrite(&format!("{at}.urlRewrite"), r, prefix_only),
        HttpFilter::RequestMirror(m) if m.ppm > ALL_PPM => fail(
            format!("{at}.requestMirror"),
            "mirrored share is above 100%",
        ),
        HttpFilter::RequestMirror(_) => Ok(()),
    }
}

fn header_modifier(at: &str, m: &HeaderModifier) -> Check {
    for (list, pairs) in [("set", &m.set), ("add", &m.add)] {
        let mut names = HashSet::new();
        for (i, (name, value)) in pairs.iter().enumerate() {
            if !is_token(name) {
                return fail(
                    format!("{at}.{list}[{i}].name"),
                    format!("invalid header name {name:?}"),
                );
            }
            if !names.insert(name.to_ascii_lowercase()) {
                return fail(
                    format!("{at}.{list}[{i}].name"),
                    format!("header {name:?} listed twice"),
                );
            }
            if !is_header_value(value) {
                return fail(
                    format!("{at}.{list}[{i}].value"),
                    "header value contains control characters",
                );
            }
        }
    }
    for (i, name) in m.remove.iter().enumerate() {
        if !is_token(name) {
            return fail(
                format!("{at}.remove[{i}]"),
                format!("invalid header name {name:?}"),
            );
        }
    }
    Ok(())
}

fn redirect(at: &str, r: &RequestRedirect, prefix_only: bool) -> Check {
    if let Some(s) = &r.scheme
        && s != "http"
        && s != "https"
    {
        return fail(format!("{at}.scheme"), format!("unsupported scheme {s:?}"));
    }
    rewrite_hostname(&format!("{at}.hostname"), r.hostname.as_deref())?;
    if r.port == Some(0) {
        return fail(format!("{at}.port"), "port must not be 0");
    }
    if !REDIRECT_CODES.contains(&r.status_code) {
        return fail(
            format!("{at}.statusCode"),
            format!("status code {} is not a redirect status", r.status_code),
        );
    }
    path_modifier(&format!("{at}.path"), r.path.as_ref(), prefix_only)
}

fn rewrite(at: &str, r: &UrlRewrite, prefix_only: bool) -> Check {
    rewrite_hostname(&format!("{at}.hostname"), r.hostname.as_deref())?;
    path_modifier(&format!("{at}.path"), r.path.as_ref(), prefix_only)
}

/// A rewritten Host header must name one host, so wildcards are out.
fn rewrite_hostname(at: &str, h: Option<&str>) -> Check {
    match h {
        Some(h) if !is_valid_hostname(h) || h.starts_with('*') => {
            fail(at, format!("invalid hostname {h:?}"))
        }
        _ => Ok(()),
    }
}

fn path_modifier(at: &str, p: Option<&PathModifier>, prefix_only: bool) -> Check {
    match p {
        None => Ok(()),
        Some(PathModifier::ReplaceFullPath(p)) => path_value(&format!("{at}.replaceFullPath"), p),
        Some(PathModifier::ReplacePrefixMatch(p)) => {
            if !prefix_only {
                return fail(
                    format!("{at}.replacePrefixMatch"),
                    "ReplacePrefixMatch needs every match of the rule to be a PathPrefix match",
                );
            }
            path_value(&format!("{at}.replacePrefixMatch"), p)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::validate;
    use crate::model::*;

    fn route(rule: HttpRule) -> Resource {
        Resource::HttpRoute(std::sync::Arc::new(HttpRoute {
            key: RouteKey::new("ns", "r"),
            version: 0,
            created_ms: 0,
            hostnames: vec!["example.com".into()],
            parents: vec![ListenerKey::new("ns", "gw", "http")],
            rules: vec![rule],
        }))
    }

    fn with_match(m: HttpMatch) -> Resource {
        route(HttpRule {
            matches: vec![HttpMatch::default(), m],
            ..Default::default()
        })
    }

    fn with_filter(f: HttpFilter) -> Resource {
        route(HttpRule {
            filters: vec![f],
            ..Default::default()
        })
    }

    fn err(r: Resource) -> (String, String) {
        let e = validate(&r).expect_err("should be invalid");
        (e.field, e.reason)
    }

    fn redirect(status_code: u16) -> HttpFilter {
        HttpFilter::RequestRedirect(RequestRedirect {
            status_code,
            ..Default::default()
        })
    }

    #[test]
    fn default_rule_is_valid() {
        assert!(validate(&route(HttpRule::default())).is_ok());
    }

    #[test]
    fn bad_path_regex_names_the_field() {
        let r = with_match(HttpMatch {
            path: PathMatch::RegularExpression("/(unclosed".into()),
            ..Default::default()
        });
        let e = validate(&r).unwrap_err();
        assert_eq!(e.field, "rules[0].matches[1].path.value");
        assert!(
            e.to_string().starts_with(
                "HTTPRoute ns/r: rules[0].matches[1].path.value: invalid regular expression: "
            ),
            "{e}"
        );
    }

    #[test]
    fn bad_header_and_query_regex() {
        let bad = StringMatch::RegularExpression("[".into());
        let r = with_match(HttpMatch {
            headers: vec![HeaderMatch {
                name: "x-a".into(),
                value: bad.clone(),
            }],
            ..Default::default()
        });
        assert_eq!(err(r).0, "rules[0].matches[1].headers[0].value");
        let r = with_match(HttpMatch {
            query_params: vec![QueryParamMatch {
                name: "q".into(),
                value: bad,
            }],
            ..Default::default()
        });
        assert_eq!(err(r).0, "rules[0].matches[1].queryParams[0].value");
    }

    #[test]
    fn bad_header_name_and_method() {
        let r = with_match(HttpMatch {
            headers: vec![HeaderMatch {
                name: "x a".into(),
                value: StringMatch::Exact("v".into()),
            }],
            ..Default::default()
        });
        assert_eq!(err(r).0, "rules[0].matches[1].headers[0].name");
        let r = with_match(HttpMatch {
            method: Some("GE T".into()),
            ..Default::default()
        });
        assert_eq!(err(r).0, "rules[0].matches[1].method");
    }

    #[test]
    fn paths_must_be_clean_and_absolute() {
        for p in [
            "foo", "", "/a//b", "/a/../b", "/a/./b", "/a%2fb", "/a#b", "/a/..", "/a/.",
        ] {
            let r = with_match(HttpMatch {
                path: PathMatch::PathPrefix(p.into()),
                ..Default::default()
            });
            assert_eq!(err(r).0, "rules[0].matches[1].path.value", "{p:?}");
        }
        for p in ["/", "/a", "/a/", "/a.b/c..d"] {
            let r = with_match(HttpMatch {
                path: PathMatch::Exact(p.into()),
                ..Default::default()
            });
            assert!(validate(&r).is_ok(), "{p:?}");
        }
    }

    #[test]
    fn bad_route_hostname() {
        let mut r = route(HttpRule::default());
        if let Resource::HttpRoute(h) = &mut r {
            std::sync::Arc::make_mut(h).hostnames.push("*".into());
        }
        assert_eq!(err(r).0, "hostnames[1]");
    }

    #[test]
    fn redirect_status_codes() {
        for code in [301, 302, 303, 307, 308] {
            assert!(validate(&with_filter(redirect(code))).is_ok(), "{code}");
        }
        for code in [200, 300, 304, 404] {
            assert_eq!(
                err(with_filter(redirect(code))).0,
                "rules[0].filters[0].requestRedirect.statusCode"
            );
        }
    }

    #[test]
    fn redirect_fields() {
        let f = |r: RequestRedirect| {
            err(with_filter(HttpFilter::RequestRedirect(RequestRedirect {
                status_code: 302,
                ..r
            })))
            .0
        };
        let base = RequestRedirect::default;
        assert_eq!(
            f(RequestRedirect {
                scheme: Some("ftp".into()),
                ..base()
            }),
            "rules[0].filters[0].requestRedirect.scheme"
        );
        assert_eq!(
            f(RequestRedirect {
                hostname: Some("*.example.com".into()),
                ..base()
            }),
            "rules[0].filters[0].requestRedirect.hostname"
        );
        assert_eq!(
            f(RequestRedirect {
                port: Some(0),
                ..base()
            }),
            "rules[0].filters[0].requestRedirect.port"
        );
        assert_eq!(
            f(RequestRedirect {
                path: Some(PathModifier::ReplaceFullPath("x".into())),
                ..base()
            }),
            "rules[0].filters[0].requestRedirect.path.replaceFullPath"
        );
    }

    #[test]
    fn replace_prefix_match_needs_prefix_matches() {
        let rewrite = HttpFilter::UrlRewrite(UrlRewrite {
            hostname: None,
            path: Some(PathModifier::ReplacePrefixMatch("/new".into())),
        });
        let rule = |path: PathMatch| HttpRule {
            matches: vec![
                HttpMatch::default(),
                HttpMatch {
                    path,
                    ..Default::default()
                },
            ],
            filters: vec![rewrite.clone()],
            ..Default::default()
        };
        assert!(validate(&route(rule(PathMatch::PathPrefix("/a".into())))).is_ok());
        // No matches at all means the default PathPrefix match.
        assert!(validate(&with_filter(rewrite.clone())).is_ok());
        let (field, _) = err(route(rule(PathMatch::Exact("/a".into()))));
        assert_eq!(
            field,
            "rules[0].filters[0].urlRewrite.path.replacePrefixMatch"
        );

        // The same holds for a filter on a backendRef of that rule.
        let mut r = rule(PathMatch::Exact("/a".into()));
        r.filters.clear();
        r.backends.push(WeightedBackend {
            target: BackendTarget::Service("ns/s:80".into()),
            weight: 1,
            filters: vec![rewrite],
        });
        assert_eq!(
            err(route(r)).0,
            "rules[0].backendRefs[0].filters[0].urlRewrite.path.replacePrefixMatch"
        );
    }

    #[test]
    fn filter_combinations() {
        let rule = HttpRule {
            filters: vec![redirect(302), HttpFilter::UrlRewrite(UrlRewrite::default())],
            ..Default::default()
        };
        assert_eq!(err(route(rule)).0, "rules[0].filters");
        let rule = HttpRule {
            filters: vec![redirect(302), redirect(301)],
            ..Default::default()
        };
        assert_eq!(err(route(rule)).0, "rules[0].filters[1]");
        let mirror = HttpFilter::RequestMirror(RequestMirror {
            backend: BackendTarget::Invalid("x".into()),
            ppm: 1_000_000,
        });
        let rule = HttpRule {
            filters: vec![mirror.clone(), mirror],
            ..Default::default()
        };
        assert!(validate(&route(rule)).is_ok());
    }

    #[test]
    fn header_modifier_checks() {
        let m = |set: Vec<(&str, &str)>, remove: Vec<&str>| {
            with_filter(HttpFilter::RequestHeaderModifier(HeaderModifier {
                set: set
                    .into_iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
                add: vec![],
                remove: remove.into_iter().map(String::from).collect(),
            }))
        };
        assert!(validate(&m(vec![("x-a", "1")], vec!["x-b"])).is_ok());
        let at = "rules[0].filters[0].requestHeaderModifier";
        assert_eq!(
            err(m(vec![("x a", "1")], vec![])).0,
            format!("{at}.set[0].name")
        );
        assert_eq!(
            err(m(vec![("x-a", "1"), ("X-A", "2")], vec![])).0,
            format!("{at}.set[1].name")
        );
        assert_eq!(
            err(m(vec![("x-a", "1\r\n")], vec![])).0,
            format!("{at}.set[0].value")
        );
        assert_eq!(err(m(vec![], vec!["a:b"])).0, format!("{at}.remove[0]"));
    }

    #[test]
    fn weights_timeouts_retry_mirror() {
        let backend = |weight| WeightedBackend {
            target: BackendTarget::Service("ns/s:80".into()),
            weight,
            filters: vec![],
        };
        let rule = HttpRule {
            backends: vec![backend(0), backend(1_000_000), backend(1_000_001)],
            ..Default::default()
        };
        assert_eq!(err(route(rule)).0, "rules[0].backendRefs[2].weight");

        let rule = HttpRule {
            timeouts: Timeouts {
                request_ms: Some(1000),
                backend_request_ms: Some(2000),
            },
            ..Default::default()
        };
        assert_eq!(err(route(rule)).0, "rules[0].timeouts.backendRequest");

        let rule = HttpRule {
            retry: Some(Retry {
                codes: vec![503, 200],
                attempts: 2,
                backoff_ms: None,
            }),
            ..Default::default()
        };
        assert_eq!(err(route(rule)).0, "rules[0].retry.codes[1]");

        let f = HttpFilter::RequestMirror(RequestMirror {
            backend: BackendTarget::Service("ns/s:80".into()),
            ppm: 1_000_001,
        });
        assert_eq!(err(with_filter(f)).0, "rules[0].filters[0].requestMirror");
    }
}
