//! HTTPRoute filters as pure functions over request parts, so every rule of the spec is
//! unit-tested without sockets.

use crate::table::compiled::PathMatcher;
use gatehouse_core::model::{HeaderModifier, PathModifier, RequestRedirect};
use pingora_http::{RequestHeader, ResponseHeader};

/// Header edits shared by requests and responses.
pub trait HeaderEdit {
    fn set(&mut self, name: &str, value: &str);
    fn add(&mut self, name: &str, value: &str);
    fn remove(&mut self, name: &str);
}

macro_rules! header_edit {
    ($t:ty) => {
        impl HeaderEdit for $t {
            fn set(&mut self, name: &str, value: &str) {
                let _ = self.insert_header(name.to_string(), value);
            }
            fn add(&mut self, name: &str, value: &str) {
                let _ = self.append_header(name.to_string(), value);
            }
            fn remove(&mut self, name: &str) {
                let _ = self.remove_header(name);
            }
        }
    };
}
header_edit!(RequestHeader);
header_edit!(ResponseHeader);

/// Set replaces, add appends, remove deletes; in that order, as the spec lists them.
pub fn modify_headers(headers: &mut impl HeaderEdit, m: &HeaderModifier) {
    for (name, value) in &m.set {
        headers.set(name, value);
    }
    for (name, value) in &m.add {
        headers.add(name, value);
    }
    for name in &m.remove {
        headers.remove(name);
    }
}

/// The prefix the request matched, needed by `ReplacePrefixMatch`.
pub fn matched_prefix(path: &PathMatcher) -> Option<&str> {
    match path {
        PathMatcher::Prefix(p) => Some(p),
        _ => None,
    }
}

/// Rewrites `path` (no query) per the modifier. `ReplacePrefixMatch` swaps the matched prefix
/// segment-wise, so `/foo` -> `/bar` turns `/foo/x` into `/bar/x`, and a `/` replacement
/// never leaves a double slash.
pub fn rewrite_path(path: &str, modifier: &PathModifier, prefix: Option<&str>) -> String {
    match modifier {
        PathModifier::ReplaceFullPath(p) => p.clone(),
        PathModifier::ReplacePrefixMatch(replacement) => {
            let prefix = prefix.unwrap_or("");
            let rest = path.strip_prefix(prefix).unwrap_or(path);
            let mut out = replacement.trim_end_matches('/').to_string();
            if !rest.is_empty() && !rest.starts_with('/') {
                out.push('/');
            }
            out.push_str(rest);
            if !out.starts_with('/') {
                out.insert(0, '/');
            }
            out
        }
    }
}

/// What the redirect needs to know about the request and the listener it came in on.
pub struct RedirectInput<'a> {
    pub scheme: &'a str,
    pub host: &'a str,
    pub listener_port: u16,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub matched_prefix: Option<&'a str>,
}

/// The `Location` of a RequestRedirect. Port rules follow the spec: an explicit port wins; a
/// scheme change implies that scheme's well-known port; otherwise the listener's port. Well-
/// known ports are left out of the URL.
pub fn redirect_location(r: &RequestRedirect, req: &RedirectInput<'_>) -> String {
    let scheme = r.scheme.as_deref().unwrap_or(req.scheme);
    let host = r.hostname.as_deref().unwrap_or(req.host);
    let port = r.port.unwrap_or(match r.scheme.as_deref() {
        Some("https") => 443,
        Some("http") => 80,
        _ => req.listener_port,
    });
    let default_port = match scheme {
        "https" => 443,
        _ => 80,
    };
    let path = match &r.path {
        Some(m) => rewrite_path(req.path, m, req.matched_prefix),
        None => req.path.to_string(),
    };
    let mut location = format!("{scheme}://{host}");
    if port != default_port {
        location.push_str(&format!(":{port}"));
    }
    location.push_str(&path);
    if let Some(q) = req.query {
        location.push('?');
        location.push_str(q);
    }
    location
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_rewrites_follow_the_spec_examples() {
        let cases = [
            ("/prefix/one/two", "/prefix/one", "/one", "/one/two"),
            ("/strip-prefix/three", "/strip-prefix", "/", "/three"),
            ("/strip-prefix", "/strip-prefix", "/", "/"),
            ("/foo", "/foo", "/bar", "/bar"),
            ("/foo/", "/foo", "/bar", "/bar/"),
            ("/foo/x", "/foo", "/bar/", "/bar/x"),
            ("/anything", "", "/root", "/root/anything"),
        ];
        for (path, prefix, replacement, want) in cases {
            let got = rewrite_path(
                path,
                &PathModifier::ReplacePrefixMatch(replacement.into()),
                Some(prefix),
            );
            assert_eq!(got, want, "{path} with prefix {prefix} -> {replacement}");
        }
        assert_eq!(
            rewrite_path("/a/b", &PathModifier::ReplaceFullPath("/one".into()), None),
            "/one"
        );
    }

    fn input<'a>(path: &'a str, query: Option<&'a str>) -> RedirectInput<'a> {
        RedirectInput {
            scheme: "http",
            host: "example.com",
            listener_port: 8080,
            path,
            query,
            matched_prefix: Some("/old"),
        }
    }

    #[test]
    fn redirect_ports_and_schemes() {
        let base = RequestRedirect {
            status_code: 302,
            ..Default::default()
        };
        assert_eq!(
            redirect_location(&base, &input("/p", None)),
            "http://example.com:8080/p"
        );
        let https = RequestRedirect {
            scheme: Some("https".into()),
            ..base.clone()
        };
        assert_eq!(
            redirect_location(&https, &input("/p", Some("a=1"))),
            "https://example.com/p?a=1"
        );
        let host_port = RequestRedirect {
            hostname: Some("other.example".into()),
            port: Some(8443),
            scheme: Some("https".into()),
            ..base.clone()
        };
        assert_eq!(
            redirect_location(&host_port, &input("/p", None)),
            "https://other.example:8443/p"
        );
        let port_80 = RequestRedirect {
            port: Some(80),
            ..base.clone()
        };
        assert_eq!(
            redirect_location(&port_80, &input("/p", None)),
            "http://example.com/p"
        );
        let prefix = RequestRedirect {
            path: Some(PathModifier::ReplacePrefixMatch("/new".into())),
            ..base
        };
        assert_eq!(
            redirect_location(&prefix, &input("/old/x", None)),
            "http://example.com:8080/new/x"
        );
    }

    #[test]
    fn header_modifier_order_is_set_add_remove() {
        let mut h = RequestHeader::build("GET", b"/", None).unwrap();
        h.insert_header("keep", "1").unwrap();
        h.insert_header("replace", "old").unwrap();
        h.insert_header("drop", "x").unwrap();
        modify_headers(
            &mut h,
            &HeaderModifier {
                set: vec![("replace".into(), "new".into())],
                add: vec![("keep".into(), "2".into())],
                remove: vec!["drop".into()],
            },
        );
        let all = |n: &str| {
            h.headers
                .get_all(n)
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(all("replace"), ["new"]);
        assert_eq!(all("keep"), ["1", "2"]);
        assert!(all("drop").is_empty());
    }
}
