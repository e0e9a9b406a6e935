//! GRPCRoutes compiled into the same matchers as HTTPRoutes: a gRPC call is an HTTP/2 POST
//! to `/{service}/{method}`, so a method match is a path match and the hostname index,
//! precedence and filters are shared.

use super::compiled::{
    CompileError, CompiledMatch, CompiledRoute, CompiledRule, PathMatcher, RouteKind,
    StringMatcher, compile_regex, compile_string,
};
use gatehouse_core::model::{GrpcMatch, GrpcMethodMatchType, GrpcRoute, RouteKey, Timeouts};
use http::HeaderName;

/// Any single path segment, for the side of a method match that was left out.
const ANY_NAME: &str = "[^/]+";

fn method_path(route: &RouteKey, at: &str, m: &GrpcMatch) -> Result<PathMatcher, CompileError> {
    let Some(method) = &m.method else {
        return Ok(PathMatcher::Prefix("".into()));
    };
    let field = format!("{at}.method");
    let regex = |pattern: String| {
        compile_regex(route, field.clone(), &pattern)
            .map(PathMatcher::Regex)
            .map_err(|e| CompileError {
                kind: RouteKind::Grpc,
                ..e
            })
    };
    match (method.kind, &method.service, &method.method) {
        (GrpcMethodMatchType::Exact, Some(s), Some(m)) => {
            Ok(PathMatcher::Exact(format!("/{s}/{m}").into()))
        }
        (GrpcMethodMatchType::Exact, Some(s), None) => {
            Ok(PathMatcher::Prefix(format!("/{s}").into()))
        }
        (GrpcMethodMatchType::Exact, None, m) => regex(format!(
            "^/{ANY_NAME}/{}$",
            m.as_deref().map_or(ANY_NAME.to_string(), regex::escape)
        )),
        (GrpcMethodMatchType::RegularExpression, s, m) => regex(format!(
            "^/(?:{})/(?:{})$",
            s.as_deref().unwrap_or(ANY_NAME),
            m.as_deref().unwrap_or(ANY_NAME)
        )),
    }
}

fn compile_grpc_match(
    route: &RouteKey,
    at: &str,
    m: &GrpcMatch,
) -> Result<CompiledMatch, CompileError> {
    let grpc_error = |e: CompileError| CompileError {
        kind: RouteKind::Grpc,
        ..e
    };
    let path = method_path(route, at, m)?;
    let headers = m
        .headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let name = HeaderName::from_bytes(h.name.as_bytes()).map_err(|e| CompileError {
                kind: RouteKind::Grpc,
                route: route.clone(),
                field: format!("{at}.headers[{i}].name"),
                reason: e.to_string(),
            })?;
            let value = compile_string(route, format!("{at}.headers[{i}].value"), &h.value)
                .map_err(grpc_error)?;
            Ok((name, value))
        })
        .collect::<Result<Box<[(HeaderName, StringMatcher)]>, CompileError>>()?;
    Ok(CompiledMatch {
        path,
        headers,
        query_params: Box::new([]),
        method: None,
    })
}

pub fn compile_grpc(route: &GrpcRoute) -> Result<CompiledRoute, CompileError> {
    let key = &route.key;
    let rules = route
        .rules
        .iter()
        .enumerate()
        .map(|(r, rule)| {
            let matches = if rule.matches.is_empty() {
                vec![compile_grpc_match(
                    key,
                    &format!("rules[{r}].matches[0]"),
                    &GrpcMatch::default(),
                )?]
            } else {
                rule.matches
                    .iter()
                    .enumerate()
                    .map(|(m, gm)| compile_grpc_match(key, &format!("rules[{r}].matches[{m}]"), gm))
                    .collect::<Result<Vec<_>, _>>()?
            };
            Ok(CompiledRule {
                matches: matches.into(),
                filters: rule.filters.clone().into(),
                backends: rule.backends.clone().into(),
                total_weight: rule.backends.iter().map(|b| u64::from(b.weight)).sum(),
                timeouts: Timeouts::default(),
                retry: None,
            })
        })
        .collect::<Result<Vec<_>, CompileError>>()?;
    Ok(CompiledRoute {
        kind: RouteKind::Grpc,
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
    use crate::table::compiled::{RequestHeaders, RequestView};
    use gatehouse_core::model::{GrpcMethodMatch, GrpcRule};
    use http::{HeaderMap, Method};

    fn matcher(
        kind: GrpcMethodMatchType,
        service: Option<&str>,
        method: Option<&str>,
    ) -> CompiledMatch {
        let m = GrpcMatch {
            method: Some(GrpcMethodMatch {
                kind,
                service: service.map(str::to_string),
                method: method.map(str::to_string),
            }),
            headers: vec![],
        };
        compile_grpc_match(&"ns/r".into(), "m", &m).unwrap()
    }

    fn hits(m: &CompiledMatch, path: &str) -> bool {
        let headers = HeaderMap::new();
        m.is_match(&RequestView {
            method: &Method::POST,
            path,
            query: None,
            headers: RequestHeaders::Map(&headers),
        })
    }

    #[test]
    fn exact_service_and_method() {
        let m = matcher(GrpcMethodMatchType::Exact, Some("pkg.Echo"), Some("Say"));
        assert!(hits(&m, "/pkg.Echo/Say"));
        assert!(!hits(&m, "/pkg.Echo/SayMore"));
        assert!(!hits(&m, "/pkg.Echo2/Say"));
    }

    #[test]
    fn exact_service_or_method_alone() {
        let service = matcher(GrpcMethodMatchType::Exact, Some("pkg.Echo"), None);
        assert!(hits(&service, "/pkg.Echo/Anything"));
        assert!(!hits(&service, "/pkg.EchoX/Anything"));
        let method = matcher(GrpcMethodMatchType::Exact, None, Some("Say"));
        assert!(hits(&method, "/any.Service/Say"));
        assert!(!hits(&method, "/any.Service/Sayx"));
        assert!(!hits(&method, "/a/b/Say"));
    }

    #[test]
    fn regex_sides_are_anchored() {
        let m = matcher(
            GrpcMethodMatchType::RegularExpression,
            Some(r"pkg\.v[0-9]+\.Echo"),
            Some("Say|Shout"),
        );
        assert!(hits(&m, "/pkg.v2.Echo/Shout"));
        assert!(!hits(&m, "/pkg.v2.Echo/Whisper"));
        assert!(!hits(&m, "/xpkg.v2.Echo/Say"));
    }

    #[test]
    fn bad_regex_is_named_as_grpc_route() {
        let route = GrpcRoute {
            key: "ns/bad".into(),
            version: 1,
            created_ms: 0,
            hostnames: vec![],
            parents: vec![],
            rules: vec![GrpcRule {
                matches: vec![GrpcMatch {
                    method: Some(GrpcMethodMatch {
                        kind: GrpcMethodMatchType::RegularExpression,
                        service: Some("(".into()),
                        method: None,
                    }),
                    headers: vec![],
                }],
                ..Default::default()
            }],
        };
        let err = compile_grpc(&route).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("GRPCRoute ns/bad: rules[0].matches[0].method"),
            "{err}"
        );
    }
}
