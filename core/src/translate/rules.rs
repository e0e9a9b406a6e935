//! HTTPRoute rules → `HttpRule`s: matches, filters, backendRefs, timeouts and retries.

use super::Problem;
use super::backends::{self, BackendRef, Needed};
use super::filters;
use super::index::Index;
use crate::duration;
use crate::model::{
    BackendTarget, HeaderMatch, HttpMatch, HttpRule, PathMatch, QueryParamMatch, Retry,
    StringMatch, Timeouts, WeightedBackend,
};
use gateway_api::experimental::httproutes::{
    HttpRouteRules, HttpRouteRulesBackendRefs, HttpRouteRulesMatches,
    HttpRouteRulesMatchesHeadersType as HeaderType, HttpRouteRulesMatchesMethod as Method,
    HttpRouteRulesMatchesPathType as PathType, HttpRouteRulesMatchesQueryParamsType as QueryType,
    HttpRouteRulesRetry, HttpRouteRulesTimeouts,
};

/// The spec leaves the retry count to the implementation when only codes or backoff are given.
const DEFAULT_RETRY_ATTEMPTS: u32 = 1;

/// What converting one route accumulates; it is only kept if the route is emitted.
pub(super) struct RouteCtx<'a> {
    pub index: &'a Index<'a>,
    /// `HTTPRoute` or `GRPCRoute`: the `from` kind of ReferenceGrants.
    pub kind: &'static str,
    pub namespace: &'a str,
    pub object: String,
    pub problems: Vec<Problem>,
    pub backends: Needed,
}

impl RouteCtx<'_> {
    pub fn problem(&mut self, field: impl Into<String>, reason: impl Into<String>) {
        self.problems
            .push(Problem::new(&self.object, field, reason));
    }

    fn fatal(&self, field: impl Into<String>, reason: impl Into<String>) -> Problem {
        Problem::new(&self.object, field, reason)
    }
}

/// Converts rule `i`. An `Err` is content the model cannot hold at all (a negative
/// weight, a malformed duration); the caller drops the route for it.
pub(super) fn rule(
    ctx: &mut RouteCtx<'_>,
    i: usize,
    r: &HttpRouteRules,
) -> Result<HttpRule, Problem> {
    let at = format!("spec.rules[{i}]");
    let matches = match r.matches.as_deref() {
        None | Some([]) => vec![HttpMatch::default()],
        Some(ms) => ms.iter().map(http_match).collect(),
    };
    let timeouts = timeouts(ctx, &at, r.timeouts.as_ref())?;
    let retry = r.retry.as_ref().map(|rt| retry(ctx, &at, rt)).transpose()?;

    let mut filters = Vec::new();
    let mut broken = None;
    for (j, f) in r.filters.iter().flatten().enumerate() {
        let fat = format!("{at}.filters[{j}]");
        match filters::rule_filter(ctx, &fat, f) {
            Ok(f) => filters.push(f),
            Err(reason) => {
                ctx.problem(fat, reason.clone());
                broken.get_or_insert(reason);
            }
        }
    }
    let backends = match broken {
        // The spec wants a rule with a filter we cannot apply to answer 500, not to run
        // without it; a lone invalid backend says exactly that to the proxy.
        Some(reason) => {
            filters.clear();
            vec![WeightedBackend {
                target: BackendTarget::Invalid(reason),
                weight: 1,
                filters: Vec::new(),
            }]
        }
        None => {
            let refs = r.backend_refs.iter().flatten().enumerate();
            refs.map(|(j, b)| backend(ctx, &format!("{at}.backendRefs[{j}]"), b))
                .collect::<Result<_, _>>()?
        }
    };
    Ok(HttpRule {
        name: r.name.clone(),
        matches,
        filters,
        backends,
        timeouts,
        retry,
    })
}

pub(super) fn backend(
    ctx: &mut RouteCtx<'_>,
    at: &str,
    b: &HttpRouteRulesBackendRefs,
) -> Result<WeightedBackend, Problem> {
    let weight = b.weight.unwrap_or(1);
    let weight = u32::try_from(weight).map_err(|_| {
        ctx.fatal(
            format!("{at}.weight"),
            format!("weight {weight} is negative"),
        )
    })?;
    let mut filters = Vec::new();
    for (k, f) in b.filters.iter().flatten().enumerate() {
        let fat = format!("{at}.filters[{k}]");
        match filters::backend_filter(ctx, &fat, f) {
            Ok(f) => filters.push(f),
            Err(reason) => {
                ctx.problem(fat, reason.clone());
                return Ok(WeightedBackend {
                    target: BackendTarget::Invalid(reason),
                    weight,
                    filters: Vec::new(),
                });
            }
        }
    }
    let bref = BackendRef {
        group: b.group.as_deref(),
        kind: b.kind.as_deref(),
        name: &b.name,
        namespace: b.namespace.as_deref(),
        port: b.port,
    };
    let target = match backends::resolve(ctx.index, ctx.kind, ctx.namespace, &bref) {
        Ok((key, target)) => {
            ctx.backends.insert(key.clone(), target);
            BackendTarget::Service(key)
        }
        Err(reason) => {
            ctx.problem(at, reason.clone());
            BackendTarget::Invalid(reason)
        }
    };
    Ok(WeightedBackend {
        target,
        weight,
        filters,
    })
}

fn http_match(m: &HttpRouteRulesMatches) -> HttpMatch {
    let path = m.path.as_ref().map_or_else(PathMatch::default, |p| {
        let value = p.value.clone().unwrap_or_else(|| "/".to_string());
        match p.r#type {
            Some(PathType::Exact) => PathMatch::Exact(value),
            Some(PathType::PathPrefix) | None => PathMatch::PathPrefix(value),
            Some(PathType::RegularExpression) => PathMatch::RegularExpression(value),
        }
    });
    let headers = m.headers.iter().flatten().map(|h| HeaderMatch {
        name: h.name.clone(),
        value: match h.r#type {
            Some(HeaderType::RegularExpression) => StringMatch::RegularExpression(h.value.clone()),
            Some(HeaderType::Exact) | None => StringMatch::Exact(h.value.clone()),
        },
    });
    let query_params = m.query_params.iter().flatten().map(|q| QueryParamMatch {
        name: q.name.clone(),
        value: match q.r#type {
            Some(QueryType::RegularExpression) => StringMatch::RegularExpression(q.value.clone()),
            Some(QueryType::Exact) | None => StringMatch::Exact(q.value.clone()),
        },
    });
    HttpMatch {
        path,
        headers: headers.collect(),
        query_params: query_params.collect(),
        method: m.method.as_ref().map(|m| method(m).to_string()),
    }
}

fn method(m: &Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
    }
}

fn duration_ms(
    ctx: &RouteCtx<'_>,
    field: String,
    value: Option<&String>,
) -> Result<Option<u64>, Problem> {
    value
        .map(|v| duration::parse_ms(v).map_err(|e| ctx.fatal(field, e.to_string())))
        .transpose()
}

fn timeouts(
    ctx: &RouteCtx<'_>,
    at: &str,
    t: Option<&HttpRouteRulesTimeouts>,
) -> Result<Timeouts, Problem> {
    let Some(t) = t else {
        return Ok(Timeouts::default());
    };
    // A zero timeout switches the timeout off (GEP-1742), which the model spells `None`.
    let request_ms = duration_ms(ctx, format!("{at}.timeouts.request"), t.request.as_ref())?
        .filter(|ms| *ms != 0);
    let backend_request_ms = duration_ms(
        ctx,
        format!("{at}.timeouts.backendRequest"),
        t.backend_request.as_ref(),
    )?
    .filter(|ms| *ms != 0);
    Ok(Timeouts {
        request_ms,
        backend_request_ms,
    })
}

fn retry(ctx: &RouteCtx<'_>, at: &str, r: &HttpRouteRulesRetry) -> Result<Retry, Problem> {
    let attempts = match r.attempts {
        None => DEFAULT_RETRY_ATTEMPTS,
        Some(n) => u32::try_from(n).map_err(|_| {
            ctx.fatal(
                format!("{at}.retry.attempts"),
                format!("attempts {n} is out of range"),
            )
        })?,
    };
    let codes = r
        .codes
        .iter()
        .flatten()
        .enumerate()
        .map(|(k, c)| {
            u16::try_from(*c).map_err(|_| {
                ctx.fatal(
                    format!("{at}.retry.codes[{k}]"),
                    format!("status code {c} is out of range"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let backoff_ms = duration_ms(ctx, format!("{at}.retry.backoff"), r.backoff.as_ref())?;
    Ok(Retry {
        codes,
        attempts,
        backoff_ms,
    })
}
