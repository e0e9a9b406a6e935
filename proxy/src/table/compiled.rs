//! Routes compiled for matching: regexes built once at apply time, header names parsed,
//! prefixes normalised, so the request path does no parsing.

use gatehouse_core::model::{
    HttpFilter, HttpMatch, HttpRoute, ListenerKey, PathMatch, Retry, RouteKey, StringMatch,
    Timeouts, WeightedBackend,
};
use http::{HeaderMap, HeaderName, Method};
use regex::Regex;
use std::cmp::Reverse;

#[derive(Debug, thiserror::Error)]
#[error("{kind} {route}: {field}: {reason}")]
pub struct CompileError {
    pub kind: RouteKind,
    pub route: RouteKey,
    pub field: String,
    pub reason: String,
}

/// Which API kind a compiled route came from: HTTPRoutes and GRPCRoutes share the matching
/// machinery and the hostname index, but not their keys, and gRPC always goes upstream as h2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RouteKind {
    Http,
    Grpc,
}

impl std::fmt::Display for RouteKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RouteKind::Http => "HTTPRoute",
            RouteKind::Grpc => "GRPCRoute",
        })
    }
}

#[derive(Debug)]
pub struct CompiledRoute {
    pub kind: RouteKind,
    pub key: RouteKey,
    pub created_ms: i64,
    pub hostnames: Box<[Box<str>]>,
    pub parents: Box<[ListenerKey]>,
    pub rules: Box<[CompiledRule]>,
}

#[derive(Debug)]
pub struct CompiledRule {
    pub matches: Box<[CompiledMatch]>,
    pub filters: Box<[HttpFilter]>,
    pub backends: Box<[WeightedBackend]>,
    pub total_weight: u64,
    pub timeouts: Timeouts,
    pub retry: Option<Retry>,
}

#[derive(Debug)]
pub struct CompiledMatch {
    pub path: PathMatcher,
    pub headers: Box<[(HeaderName, StringMatcher)]>,
    pub query_params: Box<[(Box<str>, StringMatcher)]>,
    pub method: Option<Method>,
}

#[derive(Debug)]
pub enum PathMatcher {
    Exact(Box<str>),
    /// Stored without a trailing slash ("/" becomes ""), so matching is a plain segment check.
    Prefix(Box<str>),
    Regex(Regex),
}

#[derive(Debug)]
pub enum StringMatcher {
    Exact(Box<str>),
    Regex(Regex),
}

impl StringMatcher {
    fn is_match(&self, value: &str) -> bool {
        match self {
            StringMatcher::Exact(v) => **v == *value,
            StringMatcher::Regex(re) => re.is_match(value),
        }
    }
}

/// What the matcher needs from a request.
pub struct RequestView<'a> {
    pub method: &'a Method,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: RequestHeaders<'a>,
}

/// A request's headers: the general path's map, or the fast path's parse of the head, read
/// in place because most routes match no header and building a map per request would cost
/// more than the lookup.
#[derive(Clone, Copy)]
pub enum RequestHeaders<'a> {
    Map(&'a HeaderMap),
    Parsed(&'a [httparse::Header<'a>]),
}

impl RequestHeaders<'_> {
    /// Whether a value of header `name` satisfies `want`. Values that are not visible ASCII
    /// never match, in both forms (as `HeaderValue::to_str` has it).
    fn any_value(&self, name: &HeaderName, want: &StringMatcher) -> bool {
        match self {
            RequestHeaders::Map(map) => map
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| want.is_match(v)),
            RequestHeaders::Parsed(headers) => headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case(name.as_str()))
                .filter_map(|h| visible_ascii(h.value))
                .any(|v| want.is_match(v)),
        }
    }
}

fn visible_ascii(value: &[u8]) -> Option<&str> {
    value
        .iter()
        .all(|b| *b == b'\t' || (0x20..0x7f).contains(b))
        .then(|| std::str::from_utf8(value).ok())
        .flatten()
}

/// Sort key giving the spec's precedence between matches that share a hostname:
/// Exact path, then longest prefix, then method, most headers, most query params, then the
/// oldest route, then namespace/name, then rule order. Smaller sorts first.
pub type Precedence = (u8, Reverse<usize>, u8, Reverse<usize>, Reverse<usize>);

impl CompiledMatch {
    pub fn precedence(&self) -> Precedence {
        let (kind, len) = match &self.path {
            PathMatcher::Exact(p) => (0, p.len()),
            PathMatcher::Prefix(p) => (1, p.len()),
            PathMatcher::Regex(re) => (2, re.as_str().len()),
        };
        (
            kind,
            Reverse(len),
            u8::from(self.method.is_none()),
            Reverse(self.headers.len()),
            Reverse(self.query_params.len()),
        )
    }

    pub fn is_match(&self, req: &RequestView<'_>) -> bool {
        let path_ok = match &self.path {
            PathMatcher::Exact(p) => **p == *req.path,
            PathMatcher::Prefix(p) => prefix_matches(p, req.path),
            PathMatcher::Regex(re) => full_match(re, req.path),
        };
        path_ok
            && self.method.as_ref().is_none_or(|m| m == req.method)
            && self
                .headers
                .iter()
                .all(|(name, want)| req.headers.any_value(name, want))
            && self.query_params.iter().all(|(name, want)| {
                first_query_value(req.query, name).is_some_and(|v| want.is_match(&v))
            })
    }
}

/// Segment-wise prefix: `/foo` matches `/foo` and `/foo/bar`, never `/foobar`.
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix.is_empty(),
        None => false,
    }
}

fn full_match(re: &Regex, s: &str) -> bool {
    re.find(s)
        .is_some_and(|m| m.start() == 0 && m.end() == s.len())
}

/// The spec matches the first occurrence of a query parameter name exactly (case-sensitive).
fn first_query_value(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k) == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub(super) fn compile_regex(
    route: &RouteKey,
    field: String,
    pattern: &str,
) -> Result<Regex, CompileError> {
    // Anchoring is done at match time so the pattern's own alternations stay intact.
    Regex::new(pattern).map_err(|e| CompileError {
        kind: RouteKind::Http,
        route: route.clone(),
        field,
        reason: format!("invalid regular expression: {e}"),
    })
}

pub(super) fn compile_string(
    route: &RouteKey,
    field: String,
    m: &StringMatch,
) -> Result<StringMatcher, CompileError> {
    Ok(match m {
        StringMatch::Exact(v) => StringMatcher::Exact(v.as_str().into()),
        StringMatch::RegularExpression(p) => {
            StringMatcher::Regex(compile_regex(route, field, &format!("^(?:{p})$"))?)
        }
    })
}

pub(super) fn compile_match(
    route: &RouteKey,
    at: &str,
    m: &HttpMatch,
) -> Result<CompiledMatch, CompileError> {
    let path = match &m.path {
        PathMatch::Exact(p) => PathMatcher::Exact(p.as_str().into()),
        PathMatch::PathPrefix(p) => PathMatcher::Prefix(p.trim_end_matches('/').into()),
        PathMatch::RegularExpression(p) => {
            PathMatcher::Regex(compile_regex(route, format!("{at}.path.value"), p)?)
        }
    };
    let headers = m
        .headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|e| CompileError {
                kind: RouteKind::Http,
                route: route.clone(),
                field: format!("{at}.headers[{i}].name"),
                reason: e.to_string(),
            })?;
            let value = compile_string(route, format!("{at}.headers[{i}].value"), &h.value)?;
            Ok((name, value))
        })
        .collect::<Result<_, CompileError>>()?;
    let query_params = m
        .query_params
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let value = compile_string(route, format!("{at}.queryParams[{i}].value"), &q.value)?;
            Ok((q.name.as_str().into(), value))
        })
        .collect::<Result<_, CompileError>>()?;
    let method = m
        .method
        .as_deref()
        .map(|s| {
            Method::from_bytes(s.as_bytes()).map_err(|e| CompileError {
                kind: RouteKind::Http,
                route: route.clone(),
                field: format!("{at}.method"),
                reason: e.to_string(),
            })
        })
        .transpose()?;
    Ok(CompiledMatch {
        path,
        headers,
        query_params,
        method,
    })
}

pub fn compile(route: &HttpRoute) -> Result<CompiledRoute, CompileError> {
    let key = &route.key;
    let rules = route
        .rules
        .iter()
        .enumerate()
        .map(|(r, rule)| {
            let matches = if rule.matches.is_empty() {
                vec![compile_match(
                    key,
                    &format!("rules[{r}].matches[0]"),
                    &HttpMatch::default(),
                )?]
            } else {
                rule.matches
                    .iter()
                    .enumerate()
                    .map(|(m, hm)| compile_match(key, &format!("rules[{r}].matches[{m}]"), hm))
                    .collect::<Result<Vec<_>, _>>()?
            };
            Ok(CompiledRule {
                matches: matches.into(),
                filters: rule.filters.clone().into(),
                backends: rule.backends.clone().into(),
                total_weight: rule.backends.iter().map(|b| u64::from(b.weight)).sum(),
                timeouts: rule.timeouts.clone(),
                retry: rule.retry.clone(),
            })
        })
        .collect::<Result<Vec<_>, CompileError>>()?;
    Ok(CompiledRoute {
        kind: RouteKind::Http,
        key: key.clone(),
        created_ms: route.created_ms,
        hostnames: route.hostnames.iter().map(|h| h.as_str().into()).collect(),
        parents: route.parents.clone().into(),
        rules: rules.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_is_segment_wise() {
        assert!(prefix_matches("/foo", "/foo"));
        assert!(prefix_matches("/foo", "/foo/"));
        assert!(prefix_matches("/foo", "/foo/bar"));
        assert!(!prefix_matches("/foo", "/foobar"));
        assert!(prefix_matches("", "/anything"));
        assert!(!prefix_matches("/foo", "/"));
    }

    #[test]
    fn query_first_value_decoded() {
        assert_eq!(
            first_query_value(Some("a=1&b=x%20y&a=2"), "a").as_deref(),
            Some("1")
        );
        assert_eq!(
            first_query_value(Some("a=1&b=x%20y"), "b").as_deref(),
            Some("x y")
        );
        assert_eq!(first_query_value(Some("a=1"), "A"), None);
        assert_eq!(first_query_value(None, "a"), None);
        assert_eq!(first_query_value(Some("flag"), "flag").as_deref(), Some(""));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn regex_path_must_match_whole_path() {
        let key = RouteKey::from("ns/r");
        let m = compile_match(
            &key,
            "m",
            &HttpMatch {
                path: PathMatch::RegularExpression("/v[0-9]+/items".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let headers = HeaderMap::new();
        let view = |path| RequestView {
            method: &Method::GET,
            path,
            query: None,
            headers: RequestHeaders::Map(&headers),
        };
        assert!(m.is_match(&view("/v2/items")));
        assert!(!m.is_match(&view("/v2/items/extra")));
        assert!(!m.is_match(&view("/x/v2/items")));
    }

    #[test]
    fn header_matches_read_a_parsed_head_as_they_read_a_header_map() {
        let m = compile_match(
            &RouteKey::from("ns/r"),
            "m",
            &HttpMatch {
                headers: vec![gatehouse_core::model::HeaderMatch {
                    name: "X-Env".into(),
                    value: StringMatch::RegularExpression("^(canary|beta)$".into()),
                }],
                ..Default::default()
            },
        )
        .unwrap();
        for (head, want) in [
            ("x-env: canary", true),
            ("X-ENV: beta", true),
            ("x-env: prod\r\nx-env: canary", true),
            ("x-env: prod", false),
            ("x-other: canary", false),
            ("x-env: can\u{e9}ry", false),
        ] {
            let raw = format!("GET / HTTP/1.1\r\nhost: h\r\n{head}\r\n\r\n");
            let mut parsed = [httparse::EMPTY_HEADER; 8];
            let mut req = httparse::Request::new(&mut parsed);
            req.parse(raw.as_bytes()).unwrap();
            let mut map = HeaderMap::new();
            for h in req.headers.iter() {
                map.append(
                    http::HeaderName::from_bytes(h.name.as_bytes()).unwrap(),
                    http::HeaderValue::from_bytes(h.value).unwrap(),
                );
            }
            let view = |headers| RequestView {
                method: &Method::GET,
                path: "/",
                query: None,
                headers,
            };
            assert_eq!(
                m.is_match(&view(RequestHeaders::Parsed(req.headers))),
                want,
                "parsed {head:?}"
            );
            assert_eq!(
                m.is_match(&view(RequestHeaders::Map(&map))),
                want,
                "map {head:?}"
            );
        }
    }

    #[test]
    fn bad_regex_names_its_field() {
        let route = HttpRoute {
            key: "ns/bad".into(),
            version: 1,
            created_ms: 0,
            hostnames: vec![],
            parents: vec![],
            rules: vec![gatehouse_core::model::HttpRule {
                matches: vec![HttpMatch {
                    path: PathMatch::RegularExpression("(".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let err = compile(&route).unwrap_err();
        assert_eq!(err.field, "rules[0].matches[0].path.value");
        assert!(err.to_string().starts_with("HTTPRoute ns/bad: rules[0]"));
    }

    #[test]
    fn precedence_orders_exact_then_longest_prefix_then_method_headers_query() {
        let key = RouteKey::from("ns/r");
        let mk = |m: HttpMatch| compile_match(&key, "m", &m).unwrap().precedence();
        let exact = mk(HttpMatch {
            path: PathMatch::Exact("/a".into()),
            ..Default::default()
        });
        let long = mk(HttpMatch {
            path: PathMatch::PathPrefix("/a/b".into()),
            ..Default::default()
        });
        let short = mk(HttpMatch {
            path: PathMatch::PathPrefix("/a".into()),
            ..Default::default()
        });
        let with_method = mk(HttpMatch {
            path: PathMatch::PathPrefix("/a".into()),
            method: Some("GET".into()),
            ..Default::default()
        });
        let with_header = mk(HttpMatch {
            path: PathMatch::PathPrefix("/a".into()),
            headers: vec![gatehouse_core::model::HeaderMatch {
                name: "x".into(),
                value: StringMatch::Exact("1".into()),
            }],
            ..Default::default()
        });
        assert!(exact < long);
        assert!(long < short);
        assert!(with_method < with_header);
        assert!(with_header < short);
    }
}
