//! Per-listener index from hostname to the route matches that may serve it.
//!
//! Buckets hold pointers to compiled routes, sorted by the spec's precedence, so a lookup is
//! a hash probe per candidate hostname plus a scan that stops at the first match. Changing a
//! route rebuilds only the buckets of its own hostnames.

use super::Entry;
use super::compiled::{CompiledRoute, RequestView};
use gatehouse_core::hostname;
use std::cmp::Reverse;
use std::sync::Arc;

type Bucket = Arc<[Entry]>;

#[derive(Clone, Default)]
pub struct HostIndex {
    exact: imbl::OrdMap<Box<str>, Bucket>,
    /// Keyed by the suffix a wildcard stands for: `*.example.com` is stored as `.example.com`.
    wildcard: imbl::OrdMap<Box<str>, Bucket>,
    any: Option<Bucket>,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Slot<'a> {
    Exact(&'a str),
    Wildcard(&'a str),
    Any,
}

/// Orders listener hostnames from most to least specific.
pub fn specificity(hostname: Option<&str>) -> (u8, Reverse<usize>) {
    match hostname {
        Some(h) if h.starts_with("*.") => (1, Reverse(h.len())),
        Some(h) => (0, Reverse(h.len())),
        None => (2, Reverse(0)),
    }
}

/// The hostnames a route serves on a listener: the intersections of both sides' hostnames.
fn effective_hostnames(listener: Option<&str>, route: &CompiledRoute) -> Vec<Option<String>> {
    let mut out: Vec<Option<String>> = if route.hostnames.is_empty() {
        vec![listener.map(str::to_string)]
    } else {
        route
            .hostnames
            .iter()
            .filter_map(|h| hostname::intersect(listener, h))
            .map(Some)
            .collect()
    };
    out.sort();
    out.dedup();
    out
}

/// One entry per (rule, match) of a route.
fn entries(route: &Arc<CompiledRoute>) -> impl Iterator<Item = Entry> + '_ {
    route.rules.iter().enumerate().flat_map(move |(r, rule)| {
        (0..rule.matches.len()).map(move |m| Entry {
            route: route.clone(),
            rule: r as u32,
            matched: m as u32,
        })
    })
}

/// The spec's order within a bucket: match precedence, then the oldest route, then
/// namespace/name, then rule and match order.
fn precedence(a: &Entry, b: &Entry) -> std::cmp::Ordering {
    let ma = &a.rule().matches[a.matched as usize];
    let mb = &b.rule().matches[b.matched as usize];
    ma.precedence()
        .cmp(&mb.precedence())
        .then(a.route.created_ms.cmp(&b.route.created_ms))
        .then_with(|| a.route.key.cmp(&b.route.key))
        .then(a.rule.cmp(&b.rule))
        .then(a.matched.cmp(&b.matched))
}

fn slot(hostname: &Option<String>) -> Slot<'_> {
    match hostname.as_deref() {
        None => Slot::Any,
        Some(h) => match h.strip_prefix('*') {
            Some(suffix) => Slot::Wildcard(suffix),
            None => Slot::Exact(h),
        },
    }
}

impl HostIndex {
    /// Adds the routes' matches under each of their effective hostnames; every bucket touched
    /// is rebuilt and sorted once, however many of the routes land in it.
    pub fn insert(&mut self, listener_hostname: Option<&str>, routes: &[Arc<CompiledRoute>]) {
        let mut added: std::collections::HashMap<Option<String>, Vec<Entry>> =
            std::collections::HashMap::new();
        for route in routes {
            for h in effective_hostnames(listener_hostname, route) {
                added.entry(h).or_default().extend(entries(route));
            }
        }
        for (h, new) in added {
            let mut bucket: Vec<Entry> = self
                .bucket(slot(&h))
                .iter()
                .flat_map(|b| b.iter().cloned())
                .chain(new)
                .collect();
            bucket.sort_by(precedence);
            self.set_bucket(slot(&h), bucket);
        }
    }

    pub fn remove(&mut self, listener_hostname: Option<&str>, route: &Arc<CompiledRoute>) {
        for h in effective_hostnames(listener_hostname, route) {
            if let Some(old) = self.bucket(slot(&h)) {
                let entries: Vec<Entry> = old
                    .iter()
                    .filter(|e| !Arc::ptr_eq(&e.route, route))
                    .cloned()
                    .collect();
                self.set_bucket(slot(&h), entries);
            }
        }
    }

    fn bucket(&self, slot: Slot<'_>) -> Option<Bucket> {
        match slot {
            Slot::Exact(h) => self.exact.get(h).cloned(),
            Slot::Wildcard(s) => self.wildcard.get(s).cloned(),
            Slot::Any => self.any.clone(),
        }
    }

    fn set_bucket(&mut self, slot: Slot<'_>, entries: Vec<Entry>) {
        let bucket = (!entries.is_empty()).then(|| Bucket::from(entries));
        match (slot, bucket) {
            (Slot::Exact(h), Some(b)) => {
                self.exact.insert(h.into(), b);
            }
            (Slot::Exact(h), None) => {
                self.exact.remove(h);
            }
            (Slot::Wildcard(s), Some(b)) => {
                self.wildcard.insert(s.into(), b);
            }
            (Slot::Wildcard(s), None) => {
                self.wildcard.remove(s);
            }
            (Slot::Any, b) => self.any = b,
        }
    }

    /// Exact hostname first, then wildcards from the longest suffix down, then routes without
    /// hostnames; within each, the first entry that matches wins.
    pub fn lookup(&self, host: &str, req: &RequestView<'_>) -> Option<Entry> {
        let first_match = |bucket: &Bucket| {
            bucket
                .iter()
                .find(|e| e.rule().matches[e.matched as usize].is_match(req))
                .cloned()
        };
        if let Some(found) = self.exact.get(host).and_then(first_match) {
            return Some(found);
        }
        for (i, _) in host.match_indices('.') {
            if let Some(found) = self.wildcard.get(&host[i..]).and_then(first_match) {
                return Some(found);
            }
        }
        self.any.as_ref().and_then(first_match)
    }
}
