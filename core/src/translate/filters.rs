//! HTTPRoute filters → model filters.
//!
//! A filter we cannot honour makes its rule (or backendRef) answer 500, as the spec asks,
//! so conversion errors are reasons for that rather than reasons to drop the route.

use super::backends::{self, BackendRef};
use super::rules::RouteCtx;
use crate::model::{
    BackendTarget, HeaderModifier, HttpFilter, PathModifier, RequestMirror, RequestRedirect,
    UrlRewrite,
};
use gateway_api::experimental::httproutes::{
    HttpRouteRulesBackendRefsFilters, HttpRouteRulesFilters as Filter,
    HttpRouteRulesFiltersRequestMirror as Mirror, HttpRouteRulesFiltersRequestRedirect as Redirect,
    HttpRouteRulesFiltersRequestRedirectPathType as RedirectPathType,
    HttpRouteRulesFiltersRequestRedirectScheme as Scheme, HttpRouteRulesFiltersType as Type,
    HttpRouteRulesFiltersUrlRewrite as Rewrite,
    HttpRouteRulesFiltersUrlRewritePathType as RewritePathType,
};

const ALL_PPM: u32 = 1_000_000;
const DEFAULT_REDIRECT_STATUS: i64 = 302;

/// Converts a rule-level filter; `at` is its field path, used for mirror problems.
pub(super) fn rule_filter(
    ctx: &mut RouteCtx<'_>,
    at: &str,
    f: &Filter,
) -> Result<HttpFilter, String> {
    let name = |t: &Type| match t {
        Type::RequestHeaderModifier => "RequestHeaderModifier",
        Type::ResponseHeaderModifier => "ResponseHeaderModifier",
        Type::RequestMirror => "RequestMirror",
        Type::RequestRedirect => "RequestRedirect",
        Type::UrlRewrite => "URLRewrite",
        Type::ExtensionRef => "ExtensionRef",
        Type::Cors => "CORS",
        Type::ExternalAuth => "ExternalAuth",
    };
    let missing = |field: &str| format!("filter type {} needs {field}", name(&f.r#type));
    match f.r#type {
        Type::RequestHeaderModifier => {
            let m = f
                .request_header_modifier
                .as_ref()
                .ok_or_else(|| missing("requestHeaderModifier"))?;
            Ok(HttpFilter::RequestHeaderModifier(HeaderModifier {
                set: m
                    .set
                    .iter()
                    .flatten()
                    .map(|h| (h.name.clone(), h.value.clone()))
                    .collect(),
                add: m
                    .add
                    .iter()
                    .flatten()
                    .map(|h| (h.name.clone(), h.value.clone()))
                    .collect(),
                remove: m.remove.clone().unwrap_or_default(),
            }))
        }
        Type::ResponseHeaderModifier => {
            let m = f
                .response_header_modifier
                .as_ref()
                .ok_or_else(|| missing("responseHeaderModifier"))?;
            Ok(HttpFilter::ResponseHeaderModifier(HeaderModifier {
                set: m
                    .set
                    .iter()
                    .flatten()
                    .map(|h| (h.name.clone(), h.value.clone()))
                    .collect(),
                add: m
                    .add
                    .iter()
                    .flatten()
                    .map(|h| (h.name.clone(), h.value.clone()))
                    .collect(),
                remove: m.remove.clone().unwrap_or_default(),
            }))
        }
        Type::RequestRedirect => redirect(
            f.request_redirect
                .as_ref()
                .ok_or_else(|| missing("requestRedirect"))?,
        ),
        Type::UrlRewrite => rewrite(
            f.url_rewrite
                .as_ref()
                .ok_or_else(|| missing("urlRewrite"))?,
        ),
        Type::RequestMirror => {
            let m = f
                .request_mirror
                .as_ref()
                .ok_or_else(|| missing("requestMirror"))?;
            mirror(ctx, at, m)
        }
        Type::ExtensionRef | Type::Cors | Type::ExternalAuth => Err(format!(
            "UnsupportedValue: filter type {} is not supported",
            name(&f.r#type)
        )),
    }
}

/// BackendRef filters have their own generated type with the same schema; going through
/// JSON lets one conversion serve both.
pub(super) fn backend_filter(
    ctx: &mut RouteCtx<'_>,
    at: &str,
    f: &HttpRouteRulesBackendRefsFilters,
) -> Result<HttpFilter, String> {
    let same: Filter = serde_json::to_value(f)
        .and_then(serde_json::from_value)
        .map_err(|e| format!("cannot read filter: {e}"))?;
    rule_filter(ctx, at, &same)
}

fn redirect(r: &Redirect) -> Result<HttpFilter, String> {
    let status = r.status_code.unwrap_or(DEFAULT_REDIRECT_STATUS);
    let status_code =
        u16::try_from(status).map_err(|_| format!("UnsupportedValue: status code {status}"))?;
    let port = r
        .port
        .map(|p| {
            u16::try_from(p).map_err(|_| format!("UnsupportedValue: port {p} is out of range"))
        })
        .transpose()?;
    let path = match &r.path {
        None => None,
        Some(p) => Some(path_modifier(
            matches!(p.r#type, RedirectPathType::ReplaceFullPath),
            p.replace_full_path.as_ref(),
            p.replace_prefix_match.as_ref(),
        )?),
    };
    Ok(HttpFilter::RequestRedirect(RequestRedirect {
        scheme: r.scheme.as_ref().map(|s| match s {
            Scheme::Http => "http".to_string(),
            Scheme::Https => "https".to_string(),
        }),
        hostname: r.hostname.clone(),
        path,
        port,
        status_code,
    }))
}

fn rewrite(r: &Rewrite) -> Result<HttpFilter, String> {
    let path = match &r.path {
        None => None,
        Some(p) => Some(path_modifier(
            matches!(p.r#type, RewritePathType::ReplaceFullPath),
            p.replace_full_path.as_ref(),
            p.replace_prefix_match.as_ref(),
        )?),
    };
    Ok(HttpFilter::UrlRewrite(UrlRewrite {
        hostname: r.hostname.clone(),
        path,
    }))
}

fn path_modifier(
    full: bool,
    full_path: Option<&String>,
    prefix: Option<&String>,
) -> Result<PathModifier, String> {
    match (full, full_path, prefix) {
        (true, Some(p), _) => Ok(PathModifier::ReplaceFullPath(p.clone())),
        (false, _, Some(p)) => Ok(PathModifier::ReplacePrefixMatch(p.clone())),
        (true, None, _) => Err("path type ReplaceFullPath needs replaceFullPath".into()),
        (false, _, None) => Err("path type ReplacePrefixMatch needs replacePrefixMatch".into()),
    }
}

fn mirror(ctx: &mut RouteCtx<'_>, at: &str, m: &Mirror) -> Result<HttpFilter, String> {
    let ppm = match (m.percent, &m.fraction) {
        (Some(_), Some(_)) => {
            return Err("requestMirror: percent and fraction are mutually exclusive".into());
        }
        (None, None) => ALL_PPM,
        (Some(p), None) => u32::try_from(p)
            .ok()
            .filter(|p| *p <= 100)
            .map(|p| p * (ALL_PPM / 100))
            .ok_or_else(|| format!("requestMirror.percent {p} is not between 0 and 100"))?,
        (None, Some(f)) => {
            let den = f.denominator.unwrap_or(100);
            if den <= 0 || f.numerator < 0 || f.numerator > den {
                return Err(format!(
                    "requestMirror.fraction {}/{den} is not between 0 and 1",
                    f.numerator
                ));
            }
            // i64 keeps numerator * 1e6 from overflowing before the division.
            u32::try_from(i64::from(f.numerator) * i64::from(ALL_PPM) / i64::from(den))
                .unwrap_or(ALL_PPM)
        }
    };
    let r = &m.backend_ref;
    let bref = BackendRef {
        group: r.group.as_deref(),
        kind: r.kind.as_deref(),
        name: &r.name,
        namespace: r.namespace.as_deref(),
        port: r.port,
    };
    let backend = match backends::resolve(ctx.index, ctx.kind, ctx.namespace, &bref) {
        Ok((key, target)) => {
            ctx.backends.insert(key.clone(), target);
            BackendTarget::Service(key)
        }
        Err(reason) => {
            ctx.problem(format!("{at}.requestMirror.backendRef"), reason.clone());
            BackendTarget::Invalid(reason)
        }
    };
    Ok(HttpFilter::RequestMirror(RequestMirror { backend, ppm }))
}
