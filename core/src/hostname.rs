//! Hostname rules of the Gateway API, shared by translation, the proxy and the policy engine.
//!
//! A hostname here is a fully qualified domain name without a trailing dot, optionally
//! starting with a single `*.` wildcard label that stands for one or more labels.

use std::net::IpAddr;

const MAX_HOSTNAME_LEN: usize = 253;
const MAX_LABEL_LEN: usize = 63;

/// True for an RFC 1123 hostname in lowercase, optionally prefixed with `*.`.
///
/// IP addresses are refused even though they look like labels: the spec forbids them in
/// hostname fields, and accepting one would make a listener match a literal IP Host header.
pub fn is_valid_hostname(h: &str) -> bool {
    let rest = h.strip_prefix("*.").unwrap_or(h);
    if rest.is_empty() || h.len() > MAX_HOSTNAME_LEN || rest.parse::<IpAddr>().is_ok() {
        return false;
    }
    rest.split('.').all(is_valid_label)
}

fn is_valid_label(label: &str) -> bool {
    let bytes = label.as_bytes();
    let (Some(first), Some(last)) = (bytes.first(), bytes.last()) else {
        return false;
    };
    let inner_ok = bytes
        .iter()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    label.len() <= MAX_LABEL_LEN && inner_ok && *first != b'-' && *last != b'-'
}

fn is_wildcard(h: &str) -> bool {
    h.starts_with("*.")
}

/// Does `host` (a concrete request host) fall under `pattern` (exact or `*.` wildcard)?
///
/// A wildcard needs at least one label in its place, so `*.example.com` does not cover
/// `example.com` itself.
pub fn matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) if suffix.starts_with('.') => {
            host.len() > suffix.len() && ends_with_ignore_case(host, suffix) && {
                let head = &host[..host.len() - suffix.len()];
                !head.is_empty() && !head.ends_with('.')
            }
        }
        _ => pattern.eq_ignore_ascii_case(host),
    }
}

fn ends_with_ignore_case(s: &str, suffix: &str) -> bool {
    s.len() >= suffix.len()
        && s.is_char_boundary(s.len() - suffix.len())
        && s[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// The set of hosts served by both a listener hostname and a route hostname, as a single
/// hostname, or `None` when they have nothing in common.
pub fn intersect(listener: Option<&str>, route: &str) -> Option<String> {
    let Some(listener) = listener else {
        return Some(route.to_string());
    };
    if listener.eq_ignore_ascii_case(route) {
        return Some(route.to_string());
    }
    match (is_wildcard(listener), is_wildcard(route)) {
        (true, false) if matches(listener, route) => Some(route.to_string()),
        (false, true) if matches(route, listener) => Some(listener.to_string()),
        (true, true) => {
            // `*.a.example.com` lies inside `*.example.com`: the narrower one is the overlap.
            if matches(listener, &route[2..]) {
                Some(route.to_string())
            } else if matches(route, &listener[2..]) {
                Some(listener.to_string())
            } else {
                None
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_hostnames() {
        for h in [
            "example.com",
            "a.example.com",
            "*.example.com",
            "*.a.b.example.com",
            "localhost",
            "x-1.example-2.com",
            "0.example.com",
            "a",
            "123abc.io",
        ] {
            assert!(is_valid_hostname(h), "{h} should be valid");
        }
    }

    #[test]
    fn invalid_hostnames() {
        let too_long_label = format!("{}.com", "a".repeat(64));
        let too_long = format!("{}a", "abcdefghi.".repeat(26));
        for h in [
            "",
            "*",
            "*.",
            "**.example.com",
            "a.*.example.com",
            "example.*",
            "Example.com",
            "-a.example.com",
            "a-.example.com",
            "a..example.com",
            ".example.com",
            "example.com.",
            "exa_mple.com",
            "exa mple.com",
            "1.2.3.4",
            "::1",
            "example.com:80",
            too_long_label.as_str(),
            too_long.as_str(),
        ] {
            assert!(!is_valid_hostname(h), "{h:?} should be invalid");
        }
    }

    #[test]
    fn exact_matching_ignores_case() {
        assert!(matches("example.com", "example.com"));
        assert!(matches("example.com", "EXAMPLE.com"));
        assert!(matches("Example.COM", "example.com"));
        assert!(!matches("example.com", "a.example.com"));
        assert!(!matches("a.example.com", "example.com"));
        assert!(!matches("example.com", "example.org"));
    }

    #[test]
    fn wildcard_matching() {
        assert!(matches("*.example.com", "a.example.com"));
        assert!(matches("*.example.com", "a.b.example.com"));
        assert!(matches("*.example.com", "A.Example.COM"));
        assert!(!matches("*.example.com", "example.com"));
        assert!(!matches("*.example.com", ".example.com"));
        assert!(!matches("*.example.com", "a..example.com"));
        assert!(!matches("*.example.com", "aexample.com"));
        assert!(!matches("*.example.com", "a.example.org"));
        assert!(!matches("*.example.com", ""));
    }

    #[test]
    fn wildcard_pattern_against_wildcard_text_is_literal_suffix() {
        // Used by `intersect` to compare two wildcards via their suffixes.
        assert!(matches("*.example.com", "a.example.com"));
        assert!(!matches("*.a.example.com", "example.com"));
    }

    #[test]
    fn non_ascii_does_not_panic() {
        assert!(!matches("*.example.com", "é.example.co"));
        assert!(!matches("*.é", "aé"));
        assert!(matches("*.é", "a.é"));
    }

    #[test]
    fn intersections() {
        let table: &[(Option<&str>, &str, Option<&str>)] = &[
            (None, "a.example.com", Some("a.example.com")),
            (None, "*.example.com", Some("*.example.com")),
            (
                Some("a.example.com"),
                "a.example.com",
                Some("a.example.com"),
            ),
            (
                Some("A.example.com"),
                "a.example.com",
                Some("a.example.com"),
            ),
            (
                Some("*.example.com"),
                "*.example.com",
                Some("*.example.com"),
            ),
            (
                Some("*.example.com"),
                "a.example.com",
                Some("a.example.com"),
            ),
            (
                Some("*.example.com"),
                "a.b.example.com",
                Some("a.b.example.com"),
            ),
            (Some("*.example.com"), "example.com", None),
            (
                Some("a.example.com"),
                "*.example.com",
                Some("a.example.com"),
            ),
            (Some("example.com"), "*.example.com", None),
            (
                Some("*.example.com"),
                "*.a.example.com",
                Some("*.a.example.com"),
            ),
            (
                Some("*.a.example.com"),
                "*.example.com",
                Some("*.a.example.com"),
            ),
            (Some("*.example.com"), "*.example.org", None),
            (Some("*.a.example.com"), "*.b.example.com", None),
            (Some("a.example.com"), "b.example.com", None),
            (Some("foo.com"), "*.bar.com", None),
            (Some("*.foo.com"), "bar.com", None),
        ];
        for (listener, route, want) in table {
            assert_eq!(
                intersect(*listener, route).as_deref(),
                *want,
                "intersect({listener:?}, {route:?})"
            );
        }
    }
}
